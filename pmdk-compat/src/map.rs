//! `pmem_map_file`, `pmem_unmap`, `pmem_is_pmem`, `pmem_msync` and
//! `pmem_deep_drain`: PMDK 1.12's file contract on pmem-sys's mappings.
//!
//! Files that accept MAP_SYNC, and device-DAX, are mapped with pmem-sys's
//! `memremap`, so the engine knows their granularity (an eADR mapping is
//! never flushed). A file that refuses MAP_SYNC is mapped plainly and not
//! registered with the engine: stores to it are flushed and fenced, as
//! PMDK does, instead of the engine's msync at every drain (a PMDK program
//! calls `pmem_msync` itself where `is_pmem` is 0). With
//! `PMEM_SYS_FORCE_GRANULARITY` set, every mapping goes through
//! `memremap`, so the forced granularity applies.

use crate::errormsg;
use crate::ranges::{Kind, Ranges};
use pmem_sys::Error;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// `PMEM_FILE_CREATE` and friends.
pub const FILE_CREATE: i32 = 1;
/// `PMEM_FILE_EXCL`.
pub const FILE_EXCL: i32 = 2;
/// `PMEM_FILE_SPARSE`.
pub const FILE_SPARSE: i32 = 4;
/// `PMEM_FILE_TMPFILE`.
pub const FILE_TMPFILE: i32 = 8;
const FILE_ALL: i32 = FILE_CREATE | FILE_EXCL | FILE_SPARSE | FILE_TMPFILE;
/// The flags PMDK accepts (and then ignores) for device-DAX.
const DAX_VALID: i32 = FILE_CREATE | FILE_SPARSE;

const CALL: &str = "pmem_map_file";

static RANGES: RwLock<Ranges> = RwLock::new(Ranges::new());

/// Set once this layer has made a page-granular mapping in pmem-sys's
/// registry (only with `PMEM_SYS_FORCE_GRANULARITY=page`): until then no
/// store of this library can have left a range for the drain to msync, and
/// the drain is the bare fence (the engine's drain also asks a thread-local
/// list, which costs a `__tls_get_addr` call in a shared library).
pub static PAGE_MAPPINGS: AtomicBool = AtomicBool::new(false);

fn ranges_read() -> std::sync::RwLockReadGuard<'static, Ranges> {
    // The tracker is consistent between statements; a panic elsewhere
    // does not make it unusable.
    RANGES.read().unwrap_or_else(|p| p.into_inner())
}

fn ranges_write() -> std::sync::RwLockWriteGuard<'static, Ranges> {
    RANGES.write().unwrap_or_else(|p| p.into_inner())
}

/// The result of a successful map.
pub struct Mapped {
    /// Start address.
    pub addr: usize,
    /// Bytes mapped (the file's size).
    pub len: usize,
    /// The errno a refused MAP_SYNC left, which PMDK leaves in `errno` on
    /// success (fio and others may read it).
    pub sync_errno: Option<i32>,
}

fn last_errno() -> i32 {
    Error::last_errno()
}

/// What a path is, as PMDK classifies it before anything else.
enum FileType {
    Missing,
    Normal,
    DevDax { size: u64, region: Option<String> },
}

fn sysfs_root() -> String {
    pmem_sys::knobs::current().sysfs_root().to_owned()
}

fn file_type(path: &CStr, shown: &str) -> Result<FileType, Error> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is writable.
    if unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) } != 0 {
        let e = last_errno();
        if e == libc::ENOENT {
            return Ok(FileType::Missing);
        }
        return Err(Error::os(e, CALL, format_args!("path {shown}"), "stat"));
    }
    // SAFETY: stat succeeded and filled the struct.
    let st = unsafe { st.assume_init() };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Ok(FileType::Normal),
        libc::S_IFCHR => {
            let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
            let root = sysfs_root();
            let base = Path::new(&root).join(format!("dev/char/{maj}:{min}"));
            let is_dax = std::fs::canonicalize(base.join("subsystem"))
                .ok()
                .is_some_and(|p| p.file_name().is_some_and(|n| n == "dax"));
            if !is_dax {
                return Err(Error::new(
                    libc::EINVAL,
                    CALL,
                    format_args!("path {shown}"),
                    "a character device that is not device-DAX",
                ));
            }
            let size = std::fs::read_to_string(base.join("size"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    Error::new(
                        libc::EINVAL,
                        CALL,
                        format_args!("path {shown}"),
                        "cannot read the device-DAX size from sysfs",
                    )
                })?;
            let region = pmem_sys::mapping::eadr::region_of(&root, "char", maj, min);
            Ok(FileType::DevDax { size, region })
        }
        _ => Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("path {shown}"),
            "not a regular file, a directory or a device-DAX device",
        )),
    }
}

/// An open descriptor, closed on drop; unlinks the path it created unless
/// the map succeeded.
struct Opened {
    fd: i32,
    created: Option<CString>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        let keep = errormsg::errno();
        // SAFETY: this struct owns `fd`; `created` is NUL-terminated.
        unsafe {
            libc::close(self.fd);
            if let Some(p) = &self.created {
                libc::unlink(p.as_ptr());
            }
        }
        errormsg::set_errno(keep);
    }
}

fn open(path: &CStr, flags: i32, mode: libc::mode_t) -> Result<i32, i32> {
    // SAFETY: NUL-terminated path; the mode is passed as C's varargs int.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    if fd < 0 { Err(last_errno()) } else { Ok(fd) }
}

/// An unnamed file in the directory `dir`: O_TMPFILE, or where the
/// filesystem lacks it, a file made by mkstemp and unlinked at once.
fn tmpfile(dir: &CStr, excl: bool, shown: &str) -> Result<i32, Error> {
    let excl = if excl { libc::O_EXCL } else { 0 };
    match open(dir, libc::O_TMPFILE | libc::O_RDWR | excl, 0o600) {
        Ok(fd) => Ok(fd),
        Err(libc::EOPNOTSUPP) => {
            let mut templ = dir.to_bytes().to_vec();
            templ.extend_from_slice(b"/pmem.XXXXXX\0");
            // SAFETY: `templ` is a writable NUL-terminated template.
            let fd = unsafe { libc::mkostemp(templ.as_mut_ptr().cast(), libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(Error::os(
                    last_errno(),
                    CALL,
                    format_args!("path {shown}"),
                    "mkstemp in the directory (no O_TMPFILE)",
                ));
            }
            // SAFETY: mkstemp wrote the name into the template.
            unsafe { libc::unlink(templ.as_ptr().cast()) };
            Ok(fd)
        }
        Err(e) => Err(Error::os(
            e,
            CALL,
            format_args!("path {shown}"),
            "open(O_TMPFILE) in the directory",
        )),
    }
}

/// `pmem_map_file`, checks in PMDK's order (so the same bad call fails
/// with the same errno): the path's type, the flags, the length rules,
/// then open, size, map.
pub fn map_file(path: &CStr, len: usize, flags: i32, mode: libc::mode_t) -> Result<Mapped, Error> {
    let shown = String::from_utf8_lossy(path.to_bytes()).into_owned();
    let ftype = file_type(path, &shown)?;
    if flags & !FILE_ALL != 0 {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("flags {flags:#x}"),
            format_args!("unknown bits {:#x}", flags & !FILE_ALL),
        ));
    }
    let (mut flags, mut len) = (flags, len);
    let mut dax = None;
    if let FileType::DevDax { size, region } = ftype {
        if flags & !DAX_VALID != 0 {
            return Err(Error::new(
                libc::EINVAL,
                CALL,
                format_args!("flags {flags:#x}"),
                "only PMEM_FILE_CREATE and PMEM_FILE_SPARSE are accepted (and ignored) for device-DAX",
            ));
        }
        if len != 0 && len as u64 != size {
            return Err(Error::new(
                libc::EINVAL,
                CALL,
                format_args!("len {len}"),
                format_args!(
                    "device-DAX {shown} is mapped whole: len must be 0 or its size ({size})"
                ),
            ));
        }
        flags = 0;
        len = 0;
        dax = Some((size, region));
    }
    let create = flags & FILE_CREATE != 0;
    if create && len > i64::MAX as usize {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("len {len}"),
            "larger than a file offset can be",
        ));
    }
    if len != 0 && !create {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("len {len}"),
            "a length is only allowed with PMEM_FILE_CREATE (0 maps the whole file)",
        ));
    }
    if len == 0 && create {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            "len 0",
            "PMEM_FILE_CREATE needs the length to create or truncate to",
        ));
    }
    if flags & FILE_TMPFILE != 0 && !create {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("flags {flags:#x}"),
            "PMEM_FILE_TMPFILE requires PMEM_FILE_CREATE",
        ));
    }
    let excl = flags & FILE_EXCL != 0;

    // Open, remembering whether this call created the file, so that a
    // refusal leaves nothing behind.
    let opened = if flags & FILE_TMPFILE != 0 {
        Opened {
            fd: tmpfile(path, excl, &shown)?,
            created: None,
        }
    } else if create {
        let os = |e| Error::os(e, CALL, format_args!("path {shown}"), "open");
        match open(path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode) {
            Ok(fd) => Opened {
                fd,
                created: Some(path.to_owned()),
            },
            Err(libc::EEXIST) if !excl => {
                // Exists (or is a dangling symbolic link, which O_CREAT
                // alone follows and creates).
                match open(path, libc::O_RDWR, 0) {
                    Ok(fd) => Opened { fd, created: None },
                    Err(libc::ENOENT) => Opened {
                        fd: open(path, libc::O_RDWR | libc::O_CREAT, mode).map_err(os)?,
                        created: None,
                    },
                    Err(e) => return Err(os(e)),
                }
            }
            Err(e) => return Err(os(e)),
        }
    } else {
        let fd = open(path, libc::O_RDWR, 0)
            .map_err(|e| Error::os(e, CALL, format_args!("path {shown}"), "open"))?;
        Opened { fd, created: None }
    };
    let fd = opened.fd;

    let mut old_size = None;
    if create {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `st` is writable; `fd` is open.
        if unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0 {
            // SAFETY: fstat filled it.
            old_size = Some(unsafe { st.assume_init() }.st_size);
        }
        let sized = size_file(fd, len, flags & FILE_SPARSE != 0);
        if let Err(e) = sized {
            restore_size(&opened, old_size);
            return Err(e);
        }
    } else if dax.is_none() {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: as above.
        if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
            return Err(Error::os(
                last_errno(),
                CALL,
                format_args!("path {shown}"),
                "fstat",
            ));
        }
        // SAFETY: fstat filled it.
        len = unsafe { st.assume_init() }.st_size as usize;
    } else if let Some((size, _)) = &dax {
        len = *size as usize;
    }

    let r = map_fd(fd, len, dax.map(|(_, region)| region), &shown);
    match r {
        Ok(m) => {
            let mut opened = opened;
            opened.created = None; // keep the file
            drop(opened);
            Ok(m)
        }
        Err(e) => {
            restore_size(&opened, old_size);
            Err(e)
        }
    }
}

/// CREATE's sizing: exactly `len` (extending or truncating), with every
/// block allocated unless SPARSE.
fn size_file(fd: i32, len: usize, sparse: bool) -> Result<(), Error> {
    // SAFETY: no pointers.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        return Err(Error::os(
            last_errno(),
            CALL,
            format_args!("len {len}"),
            "ftruncate",
        ));
    }
    if !sparse {
        // SAFETY: no pointers; returns the error number.
        let e = unsafe { libc::posix_fallocate(fd, 0, len as libc::off_t) };
        if e != 0 {
            return Err(Error::os(
                e,
                CALL,
                format_args!("len {len}"),
                "posix_fallocate (use PMEM_FILE_SPARSE for a sparse file)",
            ));
        }
    }
    Ok(())
}

/// A refused call puts an existing file back to the size it found.
fn restore_size(opened: &Opened, old: Option<libc::off_t>) {
    if let (None, Some(old)) = (&opened.created, old) {
        let keep = errormsg::errno();
        // SAFETY: no pointers.
        unsafe { libc::ftruncate(opened.fd, old) };
        errormsg::set_errno(keep);
    }
}

/// Whether pmem-sys's registry should hold every mapping (a forced
/// granularity applies to all of them).
fn granularity_forced() -> bool {
    pmem_sys::knobs::current().force_granularity.is_some()
}

fn page_size() -> usize {
    pmem_sys::mapping::page_size()
}

fn map_fd(fd: i32, len: usize, dax: Option<Option<String>>, shown: &str) -> Result<Mapped, Error> {
    if len == 0 {
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("path {shown}"),
            "the file is empty: nothing to map",
        ));
    }
    let memremap = |kind: Kind, sync_errno| {
        let addr = pmem_sys::mapping::memremap(fd, 0, len)
            .map_err(|e| Error::new(e.errno, CALL, format_args!("path {shown}"), e.message))?;
        // The registry's mapping is page-rounded (device-DAX: whole
        // alignment units); track what it really covers.
        let region = pmem_sys::mapping::region_at(addr);
        let map_len = region.as_ref().map_or(len, |r| r.map_len);
        if region.is_some_and(|r| r.granularity == pmem_sys::Granularity::Page) {
            PAGE_MAPPINGS.store(true, Ordering::Relaxed);
        }
        ranges_write().insert(addr, addr + map_len, kind, true);
        Ok(Mapped {
            addr,
            len,
            sync_errno,
        })
    };
    if let Some(region) = dax {
        return memremap(Kind::DevDax { region }, None);
    }
    // Does the file accept MAP_SYNC? A one-page probe (never fixed, so a
    // refusal touches no other mapping).
    // SAFETY: a new mapping at an address the kernel chooses.
    let probe = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
            fd,
            0,
        )
    };
    if probe != libc::MAP_FAILED {
        // SAFETY: the probe mapping is ours.
        unsafe { libc::munmap(probe, page_size()) };
        return memremap(Kind::MapSync, None);
    }
    let e = last_errno();
    if e != libc::EOPNOTSUPP && e != libc::EINVAL {
        return Err(Error::os(e, CALL, format_args!("path {shown}"), "mmap"));
    }
    if granularity_forced() {
        return memremap(Kind::Plain, Some(e));
    }
    let addr = map_plain(fd, len)
        .map_err(|errno| Error::os(errno, CALL, format_args!("path {shown}"), "mmap"))?;
    let end = addr + len.div_ceil(page_size()) * page_size();
    ranges_write().insert(addr, end, Kind::Plain, false);
    Ok(Mapped {
        addr,
        len,
        sync_errno: Some(e),
    })
}

/// A shared mapping of `len` bytes of `fd` at an address aligned for huge
/// pages (2 MiB from 2 MiB up, 1 GiB from 2 GiB up), as PMDK places its
/// mappings: reserve, map over the aligned part, release the rest.
fn map_plain(fd: i32, len: usize) -> Result<usize, i32> {
    const MIB2: usize = 2 << 20;
    const GIB1: usize = 1 << 30;
    let page = page_size();
    let len = len.div_ceil(page) * page;
    let align = if len >= 2 * GIB1 {
        GIB1
    } else if len >= MIB2 {
        MIB2
    } else {
        page
    };
    let span = len.checked_add(align).ok_or(libc::ENOMEM)?;
    // SAFETY: a new inaccessible anonymous reservation.
    let res = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if res == libc::MAP_FAILED {
        return Err(last_errno());
    }
    let base = res as usize;
    let start = base.div_ceil(align) * align;
    // SAFETY: [start, start + len) lies inside our own reservation.
    let m = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            0,
        )
    };
    if m == libc::MAP_FAILED {
        let e = last_errno();
        // SAFETY: the reservation is ours (a failed MAP_FIXED leaves it
        // reserved or unmapped, and munmap of either is harmless).
        unsafe { libc::munmap(res, span) };
        return Err(e);
    }
    // SAFETY: the parts of our reservation outside [start, start + len).
    unsafe {
        if start > base {
            libc::munmap(res, start - base);
        }
        let tail = start + len;
        if base + span > tail {
            libc::munmap(tail as *mut libc::c_void, base + span - tail);
        }
    }
    Ok(start)
}

/// `pmem_unmap`: munmap's contract (a page-aligned start, any length, the
/// pages touched are unmapped, unmapped holes are fine), with the tracker
/// and pmem-sys's registry told first.
pub fn unmap(addr: usize, len: usize) -> Result<(), Error> {
    let page = page_size();
    if !addr.is_multiple_of(page) || len == 0 {
        return Err(Error::new(
            libc::EINVAL,
            "pmem_unmap",
            format_args!("addr {addr:#x} len {len}"),
            "munmap needs a page-aligned address and a non-zero length",
        ));
    }
    let end = addr.checked_add(len.div_ceil(page) * page).ok_or_else(|| {
        Error::new(
            libc::EINVAL,
            "pmem_unmap",
            format_args!("addr {addr:#x} len {len}"),
            "the range wraps around the address space",
        )
    })?;
    let removed = ranges_write().remove(addr, end);
    for piece in removed.iter().filter(|p| p.registered) {
        crate::registry_unmap(piece.registry_start, piece.range.clone())?;
    }
    // SAFETY: munmap's contract is the caller's: pmem_unmap, like munmap,
    // removes whatever is mapped in the range.
    if unsafe { libc::munmap(addr as *mut libc::c_void, len) } != 0 {
        return Err(Error::os(
            last_errno(),
            "pmem_unmap",
            format_args!("addr {addr:#x} len {len}"),
            "munmap",
        ));
    }
    Ok(())
}

/// `pmem_is_pmem` without `PMEM_IS_PMEM_FORCE`.
pub fn is_pmem(addr: usize, len: usize) -> bool {
    ranges_read().is_pmem(addr, len)
}

/// `pmem_msync`: msync(MS_SYNC) of the pages holding the range (the start
/// rounded down to a page, as PMDK does; a zero length syncs nothing and
/// succeeds on a page-aligned address).
pub fn msync(addr: usize, len: usize) -> Result<(), Error> {
    let page = page_size();
    let start = addr & !(page - 1);
    let len2 = len.saturating_add(addr - start);
    // SAFETY: msync reads no memory; the kernel checks the range.
    if unsafe { libc::msync(start as *mut libc::c_void, len2, libc::MS_SYNC) } != 0 {
        return Err(Error::os(
            last_errno(),
            "pmem_msync",
            format_args!("range [{addr:#x}, +{len})"),
            "msync",
        ));
    }
    pmem_sys::record::msync(start, len2);
    Ok(())
}

/// `pmem_deep_drain`: for each piece of the range, device-DAX: a fence and
/// a write of `1` to its region's `deep_flush` (skipped when the attribute
/// is absent or reads 0); MAP_SYNC files and anything else: msync.
pub fn deep_drain(addr: usize, len: usize) -> Result<(), Error> {
    if len == 0 {
        return Ok(());
    }
    let pieces = ranges_read().pieces(addr, len);
    for (r, kind) in pieces {
        match kind {
            Some(Kind::DevDax { region }) => {
                pmem_sys::wmb_pmem();
                if let Some(region) = region {
                    write_deep_flush(&sysfs_root(), &region);
                }
            }
            _ => msync(r.start, r.end - r.start).map_err(|e| {
                Error::new(
                    e.errno,
                    "pmem_deep_drain",
                    format_args!("range [{addr:#x}, +{len})"),
                    e.message,
                )
            })?,
        }
    }
    Ok(())
}

/// Writes `1` to `<sysfs>/bus/nd/devices/<region>/deep_flush` unless it is
/// missing or reads `0` (no deep flush needed); failures to write are not
/// errors (PMDK 1.12 ignores them too: the data is already in the
/// persistence domain of a platform without the attribute).
fn write_deep_flush(sysfs_root: &str, region: &str) {
    let path = Path::new(sysfs_root).join(format!("bus/nd/devices/{region}/deep_flush"));
    match std::fs::read(&path) {
        Ok(v) if v == b"0\n" => {}
        Ok(_) => {
            let _ = std::fs::write(&path, b"1");
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_sys::mapping::{mapping_size, region_at};
    use std::os::fd::AsRawFd;

    /// Part of a mapping pmem-sys's registry holds goes from the registry
    /// too; the pieces on either side stay registered and mapped.
    #[test]
    fn partial_unmap_splits_the_registry() {
        let page = page_size();
        let f = tempfile::tempfile().unwrap();
        f.set_len(4 * page as u64).unwrap();
        let addr = pmem_sys::mapping::memremap(f.as_raw_fd(), 0, 4 * page).unwrap();
        ranges_write().insert(addr, addr + 4 * page, Kind::MapSync, true);
        assert!(is_pmem(addr, 4 * page));

        unmap(addr + page, 1).unwrap(); // one byte: its page goes
        let head = region_at(addr).expect("head registered");
        assert_eq!((head.start, head.map_len), (addr, page));
        assert_eq!(mapping_size(addr).unwrap(), page);
        assert!(
            region_at(addr + page).is_none(),
            "the hole is not registered"
        );
        let tail = region_at(addr + 2 * page).expect("tail registered");
        assert_eq!(
            (tail.start, tail.map_len, tail.len),
            (addr + 2 * page, 2 * page, 2 * page)
        );
        assert!(is_pmem(addr, page) && is_pmem(addr + 2 * page, 2 * page));
        assert!(!is_pmem(addr, 2 * page), "the hole is not pmem");
        assert!(msync(addr + page, 1).is_err(), "the page is unmapped");
        assert!(msync(addr, 1).is_ok() && msync(addr + 3 * page, 1).is_ok());

        unmap(addr, 4 * page).unwrap();
        assert!(region_at(addr).is_none() && region_at(addr + 3 * page).is_none());
        assert!(!is_pmem(addr, 1));
        assert_eq!(msync(addr, 4 * page).unwrap_err().errno, libc::ENOMEM);
    }

    #[test]
    fn deep_flush_attribute_is_written_only_when_it_asks() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().join("bus/nd/devices");
        for (region, before) in [
            ("region0", Some("1\n")),
            ("region1", Some("0\n")),
            ("region2", None),
        ] {
            std::fs::create_dir_all(r.join(region)).unwrap();
            if let Some(b) = before {
                std::fs::write(r.join(region).join("deep_flush"), b).unwrap();
            }
        }
        let root_s = root.path().to_str().unwrap();
        // A file that reads back what was written stands in for the attribute.
        std::fs::write(r.join("region0/deep_flush"), "x\n").unwrap();
        write_deep_flush(root_s, "region0");
        assert_eq!(std::fs::read(r.join("region0/deep_flush")).unwrap(), b"1");
        write_deep_flush(root_s, "region1");
        assert_eq!(
            std::fs::read(r.join("region1/deep_flush")).unwrap(),
            b"0\n",
            "0: not needed"
        );
        write_deep_flush(root_s, "region2");
        assert!(
            !r.join("region2/deep_flush").exists(),
            "absent: nothing created"
        );
    }

    #[test]
    fn unmap_refuses_what_munmap_refuses() {
        assert_eq!(unmap(1, 10).unwrap_err().errno, libc::EINVAL);
        assert_eq!(unmap(page_size(), 0).unwrap_err().errno, libc::EINVAL);
        assert_eq!(
            unmap(usize::MAX & !(page_size() - 1), 2 * page_size())
                .unwrap_err()
                .errno,
            libc::EINVAL
        );
    }
}
