//! The store granularity of a mapping: shared by the knobs (which can
//! force it) and the mappings (which have it), so neither depends on the
//! other for it. Public as `pmem_sys::mapping::Granularity`.

/// How fine-grained durability is on a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Granularity {
    /// The platform flushes CPU caches on power loss (eADR): a store is
    /// durable once visible; only non-temporal stores need the fence.
    Byte = 0,
    /// Persistent memory mapped directly (MAP_SYNC, device-DAX): flush the
    /// lines, then fence.
    CacheLine = 1,
    /// The page cache stands between stores and media: msync.
    Page = 2,
}

impl Granularity {
    /// `byte`, `cache_line` or `page`.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Byte => "byte",
            Granularity::CacheLine => "cache_line",
            Granularity::Page => "page",
        }
    }

    /// The inverse of [`Granularity::name`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "byte" => Some(Granularity::Byte),
            "cache_line" => Some(Granularity::CacheLine),
            "page" => Some(Granularity::Page),
            _ => None,
        }
    }
}

/// The size of a page, the unit of [`Granularity::Page`] (4096 when the
/// system cannot say). Here rather than in `mapping`, so the recorder can
/// use it without depending back on the mappings that call it.
#[allow(unsafe_code)]
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}
