//! Mappings: `memremap_pmem` and `pmem_sys_map_file`, the registry of what
//! this library mapped (`registry`), and each mapping's store granularity
//! with the reason for it (`classify`).

mod classify;
mod deep;
pub(crate) mod dirty;
pub mod eadr;
mod registry;
mod sys;

pub use crate::granularity::Granularity;
pub(crate) use deep::deep_sync;
pub use registry::{
    Region, granularity, mapping_size, reason, reason_text, region_at, unmap, unmap_range,
};
pub(crate) use registry::{
    Route, msync_page_parts, msync_range, no_special_mappings, page_granular_parts, route,
};
pub use sys::page_size;

use crate::Error;
use crate::knobs;
use classify::{Target, check_fd, classify, fd_path, huge_align, size_as_usize};
use std::ffi::CString;
use std::path::Path;

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
/// Maps `[offset, offset + size)` of `fd` (read-only unless `writable`);
/// the shared core of `memremap_pmem` and `pmem_sys_map_file`.
fn map_fd(
    call: &str,
    fd: i32,
    offset: u64,
    size: usize,
    writable: bool,
) -> Result<(usize, usize), Error> {
    let k = knobs::current();
    let sysfs = k.sysfs_root();
    let (target, st) = check_fd(call, fd, sysfs, writable)?;
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
    let m = sys::map_aligned(fd, offset, map_len, align, probe_len, writable)
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
    registry::insert(region);
    crate::record::map(call, fd, offset, m.addr, size, granularity);
    Ok((m.addr, size))
}
/// `memremap_pmem`: maps `[offset, offset + size)` of an open regular file
/// or device-DAX node, shared and read-write. Returns the address.
pub fn memremap(fd: i32, offset: u64, size: usize) -> Result<usize, Error> {
    map_fd("memremap_pmem", fd, offset, size, true).map(|(a, _)| a)
}

/// [`memremap`] without write permission (`PROT_READ`): the descriptor may
/// be read-only, as for `mmap` with `PROT_READ`. Storing to the mapping
/// raises SIGSEGV; the caller must not store. Returns the address.
pub fn memremap_readonly(fd: i32, offset: u64, size: usize) -> Result<usize, Error> {
    map_fd("memremap_pmem", fd, offset, size, false).map(|(a, _)| a)
}

/// [`map_file`] of an existing file, opened read-only and mapped without
/// write permission, so a user who may only read the file can map it.
/// `size == 0` maps the whole file. Storing to the mapping raises SIGSEGV;
/// the caller must not store.
pub fn map_file_readonly(path: &Path, size: usize) -> Result<(usize, usize), Error> {
    open_and_map(path, size, 0, 0, false)
}

/// `pmem_sys_map_file`: opens (optionally creates) and maps a file.
/// Returns the address and the mapped length.
pub fn map_file(path: &Path, size: usize, flags: u32, mode: u32) -> Result<(usize, usize), Error> {
    open_and_map(path, size, flags, mode, true)
}

fn open_and_map(
    path: &Path,
    size: usize,
    flags: u32,
    mode: u32,
    writable: bool,
) -> Result<(usize, usize), Error> {
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
        let access = if writable {
            libc::O_RDWR
        } else {
            libc::O_RDONLY
        };
        let fd = sys::open(&cpath, access, 0)
            .map_err(|e| Error::os(e, CALL, format_args!("path {display}"), "open"))?;
        (fd, false)
    };

    let mut result = size_and_map(
        CALL,
        fd,
        &display.to_string(),
        size,
        flags,
        created,
        writable,
    );
    if let (true, Ok((addr, _))) = (created, &result) {
        // The new name must survive a crash too: fsync its directory.
        if let Err(e) = sys::fsync_parent_dir(path) {
            let _ = unmap(*addr);
            result = Err(Error::os(
                e,
                CALL,
                format_args!("path {display}"),
                "fsync of the parent directory",
            ));
        }
    }
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
    writable: bool,
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
        // The new size must survive a crash before the caller stores
        // into it: fsync the file (its size and allocation).
        if let Err(e) = sys::fsync(fd) {
            if !created {
                let _ = sys::ftruncate(fd, old);
            }
            return Err(Error::os(
                e,
                call,
                format_args!("path {display}"),
                "fsync of the grown file",
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
            match check_fd(call, fd, k.sysfs_root(), writable)? {
                (Target::DeviceDax { size, .. }, _) => size_as_usize(&size),
                _ => 0,
            }
        }
    } else {
        size
    };
    let r = map_fd(call, fd, 0, want, writable);
    if r.is_err() && grown && !created {
        let _ = sys::ftruncate(fd, old);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::registry::{Route, insert, route};
    use super::{Granularity, Region, dirty, sys};

    /// Three neighbouring pages registered as a cache-line, a
    /// page-granular and a cache-line mapping, as mmap may place them.
    /// Returns the base; the caller unmaps the three.
    fn neighbours(page: usize) -> usize {
        let base = sys::anonymous_shared(3 * page);
        for (k, granularity) in [
            Granularity::CacheLine,
            Granularity::Page,
            Granularity::CacheLine,
        ]
        .into_iter()
        .enumerate()
        {
            insert(Region {
                start: base + k * page,
                len: page,
                map_len: page,
                granularity,
                reason: std::ffi::CString::new("test").unwrap(),
            });
        }
        base
    }

    fn msynced() -> Vec<(usize, usize)> {
        sys::MSYNCED.with(|m| std::mem::take(&mut *m.borrow_mut()))
    }

    /// A store, a write-back or a persist whose range runs across the edge
    /// of a page-granular mapping into a cache-line neighbour (or the
    /// reverse) must make both parts durable: the page part by msync, the
    /// cache-line part by write-back. The route was chosen by the first
    /// byte alone: starting in the cache-line page, the page-granular part
    /// was never msynced (and starting in the page-granular page, the
    /// cache-line part was never written back).
    #[test]
    #[allow(unsafe_code)]
    fn a_range_across_a_page_granular_edge_is_made_durable_in_both_parts() {
        let page = sys::page_size();
        let base = neighbours(page);
        let (low_edge, high_edge) = (base + page, base + 2 * page);
        assert_eq!(route(base, 64), Route::WriteBack);
        assert_eq!(route(low_edge, page), Route::Special(Granularity::Page));
        assert_eq!(route(low_edge - 8, 16), Route::Mixed);
        assert_eq!(route(high_edge - 8, 8), Route::Special(Granularity::Page));
        assert_eq!(route(high_edge - 8, 16), Route::Mixed);
        assert_eq!(route(high_edge, 64), Route::WriteBack);

        let src = [0x5au8; 16];
        msynced();
        #[cfg(feature = "record")]
        crate::trace::start();
        // SAFETY: here and below, the 16 bytes lie in the mapped pages.
        unsafe { crate::api::memcpy_to_pmem((low_edge - 8) as *mut u8, src.as_ptr(), 16) };
        crate::api::wmb_pmem();
        assert_eq!(msynced(), vec![(low_edge, page)], "store from below");

        // SAFETY: as above.
        unsafe { crate::api::memcpy_to_pmem((high_edge - 8) as *mut u8, src.as_ptr(), 16) };
        crate::api::wmb_pmem();
        assert_eq!(msynced(), vec![(low_edge, page)], "store into above");
        #[cfg(feature = "record")]
        {
            let flushed: Vec<usize> = crate::trace::take()
                .into_iter()
                .filter_map(|e| match e {
                    crate::trace::Event::Flush { addr, .. } => Some(addr),
                    _ => None,
                })
                .collect();
            assert!(flushed.contains(&(low_edge - 64)), "{flushed:x?}");
            assert!(flushed.contains(&high_edge), "{flushed:x?}");
        }

        // SAFETY: as above.
        unsafe { crate::api::arch_wb_cache_pmem((low_edge - 8) as *const u8, 16) };
        crate::api::wmb_pmem();
        assert_eq!(msynced(), vec![(low_edge, page)], "write-back");

        // SAFETY: as above.
        unsafe { crate::api::persist((high_edge - 8) as *const u8, 16) }.unwrap();
        assert_eq!(msynced(), vec![(low_edge, page)], "persist");
        assert!(!dirty::has_dirty());

        for k in 0..3 {
            super::unmap(base + k * page).unwrap();
        }
    }
}
