//! Mappings: `memremap_pmem` and `pmem_sys_map_file`, the registry of what
//! this library mapped, and each mapping's store granularity with the
//! reason for it.
//!
//! The copy path asks the registry one question, "is this address in a
//! byte- or page-granular mapping?", so the answer is kept where it is
//! cheapest: a counter that is zero while no such mapping exists (then the
//! question costs one load), and otherwise a small sorted table read under
//! a sequence counter (a seqlock). The read side is plain loads: no locked
//! instruction, which on x86 waits for every write-back and non-temporal
//! store in flight and so would turn each copy into a fence (measured by
//! `make bench`: 16 copies of 64 B under one fence went from 14 ns to
//! 112 ns per copy with an `ArcSwap` load, whose debt slot is a locked
//! swap, on the path; see BENCHMARKS.md).

pub(crate) mod dirty;
pub mod eadr;
mod sys;

pub use sys::page_size;

use crate::Error;
use crate::engine::knobs;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex};

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

/// Flags of [`map_file`] (and `pmem_sys_map_file`).
pub struct MapFlags;

impl MapFlags {
    /// Create the file if it does not exist; grow it to `size` if shorter.
    pub const CREATE: u32 = 1;
    /// With CREATE: fail with EEXIST if the file exists.
    pub const EXCL: u32 = 2;
    /// With CREATE: grow with ftruncate (a sparse file) instead of
    /// allocating every block.
    pub const SPARSE: u32 = 4;
    /// With CREATE: `path` is a directory; map an unnamed temporary file
    /// in it (O_TMPFILE), gone when unmapped.
    pub const TMPFILE: u32 = 8;
    /// Every defined bit.
    pub const ALL: u32 = Self::CREATE | Self::EXCL | Self::SPARSE | Self::TMPFILE;
}

/// One mapping of this library.
#[derive(Debug)]
pub struct Region {
    /// Start address.
    pub start: usize,
    /// Length as asked for.
    pub len: usize,
    /// Length passed to mmap (page-rounded).
    pub map_len: usize,
    /// Store granularity.
    pub granularity: Granularity,
    /// Why it has that granularity, for humans.
    pub reason: CString,
}

static REGISTRY: Mutex<BTreeMap<usize, Arc<Region>>> = Mutex::new(BTreeMap::new());
/// Slots of the seqlock table. With more byte- or page-granular mappings
/// than this at once, lookups take the registry lock instead (correct,
/// just slower).
const SPECIAL_SLOTS: usize = 64;

/// The sorted byte- and page-granular mappings as plain atomics under a
/// sequence counter: the writer (holding the registry lock, so there is
/// one) makes `seq` odd, rewrites the slots and makes it even again; a
/// reader retries when `seq` was odd or changed while it read. Reads are
/// `Relaxed` loads between an `Acquire` load and an `Acquire` fence, plain
/// `mov`s on x86.
struct SpecialTable {
    seq: AtomicUsize,
    len: AtomicUsize,
    start: [AtomicUsize; SPECIAL_SLOTS],
    end: [AtomicUsize; SPECIAL_SLOTS],
    granularity: [AtomicUsize; SPECIAL_SLOTS],
}

impl SpecialTable {
    const fn new() -> Self {
        SpecialTable {
            seq: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            start: [const { AtomicUsize::new(0) }; SPECIAL_SLOTS],
            end: [const { AtomicUsize::new(0) }; SPECIAL_SLOTS],
            granularity: [const { AtomicUsize::new(0) }; SPECIAL_SLOTS],
        }
    }

    /// Replaces the contents with `v` (sorted by start, disjoint); one
    /// writer at a time.
    fn publish(&self, v: &[(usize, usize, Granularity)]) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, r) in v.iter().take(SPECIAL_SLOTS).enumerate() {
            self.start[i].store(r.0, Ordering::Relaxed);
            self.end[i].store(r.1, Ordering::Relaxed);
            self.granularity[i].store(r.2 as usize, Ordering::Relaxed);
        }
        self.len.store(v.len(), Ordering::Release);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The granularity of the entry containing `addr` (`Some(None)`: no
    /// entry), or `None` when the entries do not fit the slots.
    #[inline]
    fn lookup(&self, addr: usize) -> Option<Option<Granularity>> {
        loop {
            let seq = self.seq.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let n = self.len.load(Ordering::Relaxed);
                if n > SPECIAL_SLOTS {
                    return None;
                }
                // The first slot whose start lies above addr.
                let (mut lo, mut hi) = (0, n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if self.start[mid].load(Ordering::Relaxed) <= addr {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                let found = match lo.checked_sub(1) {
                    Some(i) if addr < self.end[i].load(Ordering::Relaxed) => {
                        Some(self.granularity[i].load(Ordering::Relaxed))
                    }
                    _ => None,
                };
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == seq {
                    return Some(found.map(|g| {
                        if g == Granularity::Byte as usize {
                            Granularity::Byte
                        } else {
                            Granularity::Page
                        }
                    }));
                }
            }
            core::hint::spin_loop();
        }
    }
}

static SPECIAL_TABLE: SpecialTable = SpecialTable::new();

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<usize, Arc<Region>>> {
    // The map is always consistent between statements; a panic elsewhere
    // while holding the lock does not make it unusable.
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn publish_special(reg: &BTreeMap<usize, Arc<Region>>) {
    let v: Vec<_> = reg
        .values()
        .filter(|r| r.granularity != Granularity::CacheLine)
        .map(|r| (r.start, r.start + r.map_len, r.granularity))
        .collect();
    // The caller holds the registry lock: this is the only writer.
    SPECIAL_TABLE.publish(&v);
}

/// The granularity of `addr` if it lies in a byte- or page-granular
/// mapping of this library; `None` for cache-line mappings and memory this
/// library did not map (both are treated as cache-line).
#[inline(always)]
pub(crate) fn special_granularity(addr: usize) -> Option<Granularity> {
    // No byte- or page-granular mapping at all: one load, no seqlock.
    if SPECIAL_TABLE.len.load(Ordering::Acquire) == 0 {
        return None;
    }
    special_lookup(addr)
}

#[inline(never)]
fn special_lookup(addr: usize) -> Option<Granularity> {
    SPECIAL_TABLE.lookup(addr).unwrap_or_else(|| {
        // More special mappings than slots: ask the registry itself.
        region_at(addr)
            .map(|r| r.granularity)
            .filter(|g| *g != Granularity::CacheLine)
    })
}

/// The registered mapping that contains `[start, end)`.
pub(crate) fn registry_region_containing(start: usize, end: usize) -> Option<Arc<Region>> {
    let reg = registry();
    let (_, r) = reg.range(..=start).next_back()?;
    (end <= r.start + r.map_len.max(r.len)).then(|| r.clone())
}

/// The mapping of this library containing `addr`.
pub fn region_at(addr: usize) -> Option<Arc<Region>> {
    let reg = registry();
    let (_, r) = reg.range(..=addr).next_back()?;
    (addr < r.start + r.len.max(1)).then(|| r.clone())
}

fn fd_path(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("fd {fd}"))
}

/// Where a file lives, from mountinfo.
struct Mount {
    point: String,
    fstype: String,
    /// A `dax`, `dax=always` or `dax=inode` mount or superblock option.
    dax_option: Option<String>,
}

/// The mount of a device (the longest mount point that is a prefix of
/// `path`), from /proc/self/mountinfo.
fn mount_of(dev: libc::dev_t, path: &str) -> Option<Mount> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let mut best: Option<Mount> = None;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if f.len() < 6 || f[2] != want {
            continue;
        }
        let point = f[4].replace("\\040", " ");
        let fits = path.starts_with(&point) || !path.starts_with('/');
        if fits && best.as_ref().is_none_or(|b| point.len() > b.point.len()) {
            let mut options = f[5]
                .split(',')
                .chain(r.get(2).copied().unwrap_or("").split(','));
            let dax_option = options
                .find(|o| *o == "dax" || o.starts_with("dax="))
                .map(str::to_owned);
            best = Some(Mount {
                point,
                fstype: r.first().copied().unwrap_or("?").to_owned(),
                dax_option,
            });
        }
    }
    best
}

/// What kind of file a descriptor is, once checked.
enum Target {
    Regular {
        size: u64,
    },
    DeviceDax {
        size: u64,
        align: usize,
        region: Option<String>,
    },
}

fn read_sysfs_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Checks `fd` in the order the contract gives: open, file type, access mode.
fn check_fd(call: &str, fd: i32, sysfs: &str) -> Result<(Target, libc::stat), Error> {
    if fd < 0 {
        return Err(Error::new(
            libc::EBADF,
            call,
            format_args!("fd {fd}"),
            "not a file descriptor",
        ));
    }
    let st = sys::fstat(fd).map_err(|e| Error::os(e, call, format_args!("fd {fd}"), "fstat"))?;
    let target = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Target::Regular {
            size: st.st_size as u64,
        },
        libc::S_IFCHR => {
            let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
            let base = Path::new(sysfs).join(format!("dev/char/{maj}:{min}"));
            let subsystem = std::fs::read_link(base.join("subsystem")).ok();
            let is_dax = subsystem
                .as_ref()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n == "dax");
            if !is_dax {
                return Err(Error::new(
                    libc::ENODEV,
                    call,
                    format_args!("fd {fd} ({})", fd_path(fd)),
                    "a character device that is not device-DAX",
                ));
            }
            let size = read_sysfs_u64(&base.join("size")).unwrap_or(0);
            let align = read_sysfs_u64(&base.join("align")).unwrap_or(2 << 20) as usize;
            let region = eadr::region_of(sysfs, "char", maj, min);
            Target::DeviceDax {
                size,
                align: align.max(page_size()),
                region,
            }
        }
        kind => {
            let what = match kind {
                libc::S_IFDIR => "a directory",
                libc::S_IFIFO => "a pipe",
                libc::S_IFSOCK => "a socket",
                libc::S_IFBLK => "a block device (map a file on a DAX filesystem, or device-DAX)",
                _ => "not a regular file",
            };
            return Err(Error::new(
                libc::EINVAL,
                call,
                format_args!("fd {fd} ({})", fd_path(fd)),
                what,
            ));
        }
    };
    let mode =
        sys::access_mode(fd).map_err(|e| Error::os(e, call, format_args!("fd {fd}"), "fcntl"))?;
    if mode != libc::O_RDWR {
        let how = if mode == libc::O_RDONLY {
            "opened read-only"
        } else {
            "opened write-only"
        };
        return Err(Error::new(
            libc::EACCES,
            call,
            format_args!("fd {fd} ({})", fd_path(fd)),
            format_args!(
                "{how}; a read-write descriptor is required for a shared writable mapping"
            ),
        ));
    }
    Ok((target, st))
}

/// The alignment that lets a mapping of `len` bytes use huge pages.
fn huge_align(len: usize) -> usize {
    const MIB2: usize = 2 << 20;
    const GIB1: usize = 1 << 30;
    if len >= 2 * GIB1 {
        GIB1
    } else if len >= MIB2 {
        MIB2
    } else {
        page_size()
    }
}

/// Maps `[offset, offset + size)` of `fd`; the shared core of
/// `memremap_pmem` and `pmem_sys_map_file`.
fn map_fd(call: &str, fd: i32, offset: u64, size: usize) -> Result<(usize, usize), Error> {
    let k = knobs::current();
    let sysfs = k.sysfs_root();
    let (target, st) = check_fd(call, fd, sysfs)?;
    if size == 0 {
        return Err(Error::new(libc::EINVAL, call, "size 0", "nothing to map"));
    }
    let page = page_size() as u64;
    if !offset.is_multiple_of(page) {
        return Err(Error::new(
            libc::EINVAL,
            call,
            format_args!("offset {offset}"),
            format_args!("not a multiple of the page size ({page})"),
        ));
    }
    let end = offset
        .checked_add(size as u64)
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or_else(|| {
            Error::new(
                libc::EOVERFLOW,
                call,
                format_args!("offset {offset} + size {size}"),
                "overflows a file offset",
            )
        })?;
    let (file_size, align) = match &target {
        Target::Regular { size } => (*size, huge_align(size_as_usize(size))),
        Target::DeviceDax { size, align, .. } => {
            if !offset.is_multiple_of(*align as u64) {
                return Err(Error::new(
                    libc::EINVAL,
                    call,
                    format_args!("offset {offset}"),
                    format_args!("not a multiple of the device-DAX alignment ({align})"),
                ));
            }
            (*size, huge_align(size_as_usize(size)).max(*align))
        }
    };
    if end > file_size {
        return Err(Error::new(
            libc::EINVAL,
            call,
            format_args!("range [{offset}, {end})"),
            format_args!(
                "ends past the end of the file ({file_size} bytes); refused now rather than SIGBUS later"
            ),
        ));
    }
    let map_len = match &target {
        // device-DAX must be mapped in whole alignment units.
        Target::DeviceDax { align, .. } => size.div_ceil(*align) * *align,
        Target::Regular { .. } => size,
    };
    let align = align.min(huge_align(map_len)).max(page_size());
    let probe_len = match &target {
        Target::DeviceDax { align, .. } => *align,
        Target::Regular { .. } => page_size(),
    };
    let m = sys::map_aligned(fd, offset, map_len, align, probe_len)
        .map_err(|e| Error::os(e, call, format_args!("fd {fd}"), "mmap"))?;

    let path = fd_path(fd);
    let (actual, actual_reason) = classify(&target, &st, &path, m.sync_refused, sysfs);
    let (granularity, reason) = match k.force_granularity {
        Some(g) => (
            g,
            format!(
                "granularity forced to {} by PMEM_SYS_FORCE_GRANULARITY (the file itself: {actual_reason})",
                g.name()
            ),
        ),
        None => (actual, actual_reason),
    };
    let region = Region {
        start: m.addr,
        len: size,
        map_len: m.len,
        granularity,
        reason: CString::new(reason.replace('\0', "?")).unwrap_or_default(),
    };
    let mut reg = registry();
    reg.insert(m.addr, Arc::new(region));
    if granularity != Granularity::CacheLine {
        publish_special(&reg);
    }
    Ok((m.addr, size))
}

fn size_as_usize(s: &u64) -> usize {
    usize::try_from(*s).unwrap_or(usize::MAX)
}

/// The granularity a mapping really has, and why.
fn classify(
    target: &Target,
    st: &libc::stat,
    path: &str,
    sync_refused: Option<i32>,
    sysfs: &str,
) -> (Granularity, String) {
    match target {
        Target::DeviceDax { region, .. } => {
            let d = eadr::domain(sysfs, region.as_deref());
            if d.eadr {
                (
                    Granularity::Byte,
                    format!(
                        "device-DAX {path}; {}: byte granularity (eADR), no flush needed",
                        d.note
                    ),
                )
            } else {
                (
                    Granularity::CacheLine,
                    format!(
                        "device-DAX {path}; {}: cache-line granularity, durability by flush and fence",
                        d.note
                    ),
                )
            }
        }
        Target::Regular { .. } => {
            let m = mount_of(st.st_dev, path).unwrap_or(Mount {
                point: "?".into(),
                fstype: "unknown filesystem".into(),
                dax_option: None,
            });
            let (mnt, fstype) = (&m.point, &m.fstype);
            match sync_refused {
                Some(e) => {
                    let why = match &m.dax_option {
                        // dax=inode, or a file that cannot be DAX: the mount
                        // alone does not decide.
                        Some(opt) => format!(
                            "{mnt} is mounted with {opt} ({fstype}) but {path} is not a DAX file"
                        ),
                        None => format!("{mnt} is not a DAX mount ({fstype})"),
                    };
                    (
                        Granularity::Page,
                        format!(
                            "MAP_SYNC refused ({}): {why}; page granularity, durability by msync",
                            sys::errno_name(e)
                        ),
                    )
                }
                None => {
                    let region = eadr::region_of(
                        sysfs,
                        "block",
                        libc::major(st.st_dev),
                        libc::minor(st.st_dev),
                    );
                    let d = eadr::domain(sysfs, region.as_deref());
                    if d.eadr {
                        (
                            Granularity::Byte,
                            format!(
                                "MAP_SYNC accepted: {mnt} is a DAX mount ({fstype}); {}: byte granularity (eADR), no flush needed",
                                d.note
                            ),
                        )
                    } else {
                        (
                            Granularity::CacheLine,
                            format!(
                                "MAP_SYNC accepted: {mnt} is a DAX mount ({fstype}); {}: cache-line granularity, durability by flush and fence",
                                d.note
                            ),
                        )
                    }
                }
            }
        }
    }
}

/// `memremap_pmem`: maps `[offset, offset + size)` of an open regular file
/// or device-DAX node, shared and read-write. Returns the address.
pub fn memremap(fd: i32, offset: u64, size: usize) -> Result<usize, Error> {
    map_fd("memremap_pmem", fd, offset, size).map(|(a, _)| a)
}

/// `pmem_sys_map_file`: opens (optionally creates) and maps a file.
/// Returns the address and the mapped length.
pub fn map_file(path: &Path, size: usize, flags: u32, mode: u32) -> Result<(usize, usize), Error> {
    const CALL: &str = "pmem_sys_map_file";
    if flags & !MapFlags::ALL != 0 {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("flags {flags:#x}"),
            format_args!("unknown bits {:#x}", flags & !MapFlags::ALL),
        ));
    }
    let create = flags & MapFlags::CREATE != 0;
    if !create && flags & (MapFlags::EXCL | MapFlags::TMPFILE) != 0 {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("flags {flags:#x}"),
            "EXCL and TMPFILE require PMEM_SYS_FILE_CREATE",
        ));
    }
    if create && size == 0 {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            "size 0",
            "PMEM_SYS_FILE_CREATE needs the size to create",
        ));
    }
    let display = path.display();
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .ok()
        .filter(|c| !c.as_bytes().is_empty())
        .ok_or_else(|| {
            Error::new(
                libc::EINVAL,
                CALL,
                format_args!("path {:?}", path.as_os_str()),
                "empty or contains a NUL byte",
            )
        })?;
    let mode = mode as libc::mode_t;

    // Open, remembering whether this call created the file so a failure
    // can remove it again.
    let (fd, created) = if flags & MapFlags::TMPFILE != 0 {
        let fd = sys::open(&cpath, libc::O_TMPFILE | libc::O_RDWR, mode).map_err(|e| {
            Error::os(
                e,
                CALL,
                format_args!("path {display}"),
                "open(O_TMPFILE) of the directory",
            )
        })?;
        (fd, false)
    } else if create {
        match sys::open(&cpath, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode) {
            Ok(fd) => (fd, true),
            Err(libc::EEXIST) if flags & MapFlags::EXCL == 0 => {
                let fd = sys::open(&cpath, libc::O_RDWR, 0)
                    .map_err(|e| Error::os(e, CALL, format_args!("path {display}"), "open"))?;
                (fd, false)
            }
            Err(libc::EEXIST) => {
                return Err(Error::new(
                    libc::EEXIST,
                    CALL,
                    format_args!("path {display}"),
                    "exists and PMEM_SYS_FILE_EXCL was given",
                ));
            }
            Err(e) => return Err(Error::os(e, CALL, format_args!("path {display}"), "create")),
        }
    } else {
        let fd = sys::open(&cpath, libc::O_RDWR, 0)
            .map_err(|e| Error::os(e, CALL, format_args!("path {display}"), "open"))?;
        (fd, false)
    };

    let result = size_and_map(CALL, fd, &display.to_string(), size, flags, created);
    sys::close(fd);
    if result.is_err() && created {
        sys::unlink(&cpath);
    }
    result
}

fn size_and_map(
    call: &str,
    fd: i32,
    display: &str,
    size: usize,
    flags: u32,
    created: bool,
) -> Result<(usize, usize), Error> {
    let st =
        sys::fstat(fd).map_err(|e| Error::os(e, call, format_args!("path {display}"), "fstat"))?;
    let is_reg = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    let old = st.st_size as u64;
    let mut grown = false;
    if is_reg && flags & MapFlags::CREATE != 0 && old < size as u64 {
        let grow = if flags & MapFlags::SPARSE != 0 {
            sys::ftruncate(fd, size as u64)
        } else {
            sys::fallocate(fd, size as u64)
        };
        if let Err(e) = grow {
            if !created {
                // Leave an existing file as it was found.
                let _ = sys::ftruncate(fd, old);
            }
            return Err(Error::os(
                e,
                call,
                format_args!("size {size}"),
                "growing the file",
            ));
        }
        grown = true;
    }
    let want = if size == 0 {
        if is_reg {
            if old == 0 {
                return Err(Error::new(
                    libc::EINVAL,
                    call,
                    format_args!("path {display}"),
                    "the file is empty and size is 0",
                ));
            }
            size_as_usize(&old)
        } else {
            // device-DAX: its size from sysfs, found by map_fd's checks.
            let k = knobs::current();
            match check_fd(call, fd, k.sysfs_root())? {
                (Target::DeviceDax { size, .. }, _) => size_as_usize(&size),
                _ => 0,
            }
        }
    } else {
        size
    };
    let r = map_fd(call, fd, 0, want);
    if r.is_err() && grown && !created {
        let _ = sys::ftruncate(fd, old);
    }
    r
}

/// `memunmap_pmem`: unmaps a mapping of this library given its start.
pub fn unmap(addr: usize) -> Result<(), Error> {
    const CALL: &str = "memunmap_pmem";
    let mut reg = registry();
    let Some(region) = reg.remove(&addr) else {
        let why = if addr == 0 {
            "NULL".to_owned()
        } else {
            match reg.range(..=addr).next_back() {
                Some((_, r)) if addr < r.start + r.map_len => {
                    format!("inside the mapping at {:#x} but not its start", r.start)
                }
                _ => "not a mapping of this library (never mapped, or already unmapped)".to_owned(),
            }
        };
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("addr {addr:#x}"),
            why,
        ));
    };
    if region.granularity != Granularity::CacheLine {
        publish_special(&reg);
    }
    drop(reg);
    if region.granularity == Granularity::Page {
        dirty::sync_before_unmap(region.start, region.start + region.map_len);
    }
    sys::unmap(region.start, region.map_len);
    Ok(())
}

/// The length of the mapping that starts at `addr`.
pub fn mapping_size(addr: usize) -> Result<usize, Error> {
    registry().get(&addr).map(|r| r.len).ok_or_else(|| {
        Error::new(
            libc::EINVAL,
            "pmem_sys_mapping_size",
            format_args!("addr {addr:#x}"),
            "not the start of a mapping of this library",
        )
    })
}

/// The granularity of `[addr, addr + n)`, which must lie inside one mapping.
pub fn granularity(call: &str, addr: usize, n: usize) -> Result<Granularity, Error> {
    let end = addr.checked_add(n.max(1));
    let r = region_at(addr).filter(|r| end.is_some_and(|e| e <= r.start + r.len));
    r.map(|r| r.granularity).ok_or_else(|| {
        Error::new(
            libc::EINVAL,
            call,
            format_args!("range [{addr:#x}, +{n})"),
            "not inside one mapping of this library",
        )
    })
}

/// The reason of the mapping containing `addr` (valid while it is mapped).
pub fn reason(addr: usize) -> Result<Arc<Region>, Error> {
    region_at(addr).ok_or_else(|| {
        Error::new(
            libc::EINVAL,
            "pmem_sys_mapping_reason",
            format_args!("addr {addr:#x}"),
            "not inside a mapping of this library",
        )
    })
}

/// The reason text of a region.
pub fn reason_text(r: &Region) -> &CStr {
    &r.reason
}

/// msyncs `[addr, addr + n)` of a page-granular mapping, page-rounded.
pub(crate) fn msync_range(call: &str, addr: usize, n: usize) -> Result<(), Error> {
    let page = page_size();
    let s = addr & !(page - 1);
    let e = (addr + n + page - 1) & !(page - 1);
    sys::msync(s, e - s).map_err(|errno| {
        Error::os(
            errno,
            call,
            format_args!("range [{addr:#x}, +{n})"),
            "msync",
        )
    })
}

#[cfg(test)]
mod special_table_tests {
    use super::*;

    fn naive(v: &[(usize, usize, Granularity)], addr: usize) -> Option<Granularity> {
        v.iter().find(|r| r.0 <= addr && addr < r.1).map(|r| r.2)
    }

    fn entries(k: usize) -> Vec<(usize, usize, Granularity)> {
        (0..k)
            .map(|i| {
                (
                    0x1000 * (2 * i + 1),
                    0x1000 * (2 * i + 2),
                    if i % 2 == 0 {
                        Granularity::Page
                    } else {
                        Granularity::Byte
                    },
                )
            })
            .collect()
    }

    #[test]
    fn lookup_matches_a_linear_search_up_to_the_slots() {
        let t = SpecialTable::new();
        for k in 0..=SPECIAL_SLOTS {
            let v = entries(k);
            t.publish(&v);
            for addr in (0..0x1000 * (2 * k + 3)).step_by(0x400).chain([usize::MAX]) {
                assert_eq!(
                    t.lookup(addr),
                    Some(naive(&v, addr)),
                    "{k} entries, addr {addr:#x}"
                );
            }
        }
        t.publish(&entries(SPECIAL_SLOTS + 1));
        assert_eq!(
            t.lookup(0x1000),
            None,
            "more entries than slots defers to the registry"
        );
        t.publish(&entries(1));
        assert_eq!(t.lookup(0x1000), Some(Some(Granularity::Page)));
    }

    /// A reader racing a writer sees one published state or the other,
    /// never a mix of two.
    #[test]
    fn a_reader_never_sees_a_torn_table() {
        let t = SpecialTable::new();
        let a = entries(16);
        let b: Vec<_> = a
            .iter()
            .map(|r| {
                (
                    r.0,
                    r.0 + 0x800,
                    if r.2 == Granularity::Page {
                        Granularity::Byte
                    } else {
                        Granularity::Page
                    },
                )
            })
            .collect();
        t.publish(&a);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..20_000 {
                    t.publish(if i % 2 == 0 { &b } else { &a });
                }
                stop.store(true, Ordering::Relaxed);
            });
            let mut checked = 0u64;
            while !stop.load(Ordering::Relaxed) || checked < 1000 {
                for addr in [0x1000, 0x1900, 0x5000, 0x5c00] {
                    let got = t.lookup(addr).unwrap();
                    assert!(
                        got == naive(&a, addr) || got == naive(&b, addr),
                        "addr {addr:#x}: {got:?}"
                    );
                    checked += 1;
                }
            }
        });
    }
}
