//! The system calls behind mappings: `mmap` with `MAP_SYNC`, aligned
//! address reservation, `msync`, and file descriptor helpers. The only
//! unsafe code of the mapping module.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;

pub use crate::granularity::page_size;

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `fstat`, or the errno.
pub fn fstat(fd: i32) -> Result<libc::stat, i32> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writing a `struct stat`.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if r == 0 {
        // SAFETY: fstat succeeded and filled the struct.
        Ok(unsafe { st.assume_init() })
    } else {
        Err(errno())
    }
}

/// The access mode bits (`O_RDONLY`, `O_WRONLY`, `O_RDWR`) of `fd`.
pub fn access_mode(fd: i32) -> Result<i32, i32> {
    // SAFETY: F_GETFL takes no pointer argument.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r & libc::O_ACCMODE)
    }
}

/// `open(2)` with close-on-exec; the fd or the errno.
pub fn open(path: &CString, flags: i32, mode: libc::mode_t) -> Result<i32, i32> {
    // SAFETY: `path` is a valid NUL-terminated string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    if fd < 0 { Err(errno()) } else { Ok(fd) }
}

/// `close(2)`, ignoring errors (the descriptor is gone either way).
pub fn close(fd: i32) {
    // SAFETY: the caller owns `fd`.
    unsafe { libc::close(fd) };
}

/// `unlink(2)`, ignoring errors (best-effort clean-up).
pub fn unlink(path: &CString) {
    // SAFETY: valid NUL-terminated path.
    unsafe { libc::unlink(path.as_ptr()) };
}

/// `ftruncate(2)`.
pub fn ftruncate(fd: i32, len: u64) -> Result<(), i32> {
    // SAFETY: no pointers.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `posix_fallocate(3)` of `[0, len)`.
pub fn fallocate(fd: i32, len: u64) -> Result<(), i32> {
    // SAFETY: no pointers; posix_fallocate returns the error number.
    match unsafe { libc::posix_fallocate(fd, 0, len as libc::off_t) } {
        0 => Ok(()),
        e => Err(e),
    }
}

/// `fsync(2)`.
pub fn fsync(fd: i32) -> Result<(), i32> {
    // SAFETY: no pointers.
    if unsafe { libc::fsync(fd) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// `fsync(2)` of the directory that holds `path` (`.` for a bare name), so
/// that a name just created in it survives a crash.
pub fn fsync_parent_dir(path: &std::path::Path) -> Result<(), i32> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let c = CString::new(parent.as_os_str().as_encoded_bytes()).map_err(|_| libc::EINVAL)?;
    let fd = open(&c, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let r = fsync(fd);
    close(fd);
    r
}

/// How a range ended up mapped.
pub struct Mapped {
    /// Start address.
    pub addr: usize,
    /// Length passed to mmap (page-rounded).
    pub len: usize,
    /// `None` when `MAP_SYNC` was accepted, else the errno that refused it.
    pub sync_refused: Option<i32>,
}

/// Maps `[offset, offset + len)` of `fd` shared and read-write at an
/// address aligned to `align` (a power of two, at least a page), with
/// `MAP_SHARED_VALIDATE | MAP_SYNC` when the file accepts it and plain
/// `MAP_SHARED` otherwise. `probe_len` is the smallest length the file can
/// be mapped with (a page, or the device-DAX alignment). With `writable`
/// false the mapping (and the probe) is `PROT_READ` only, which a
/// read-only descriptor allows.
///
/// Why probe first instead of trying MAP_SYNC over the reservation: on
/// current kernels a refused `MAP_FIXED` mmap can leave a hole where the
/// reservation was, and another thread's `mmap(NULL, ...)` may take it
/// before the retry, which would then map over that thread's memory. The
/// probe is an ordinary (non-fixed) mapping, so a refusal touches nothing.
pub fn map_aligned(
    fd: i32,
    offset: u64,
    len: usize,
    align: usize,
    probe_len: usize,
    writable: bool,
) -> Result<Mapped, i32> {
    let prot = if writable {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    let page = page_size();
    let len = len.checked_add(page - 1).ok_or(libc::ENOMEM)? & !(page - 1);
    let sync_refused = probe_map_sync(fd, offset, probe_len, prot);
    let flags = match sync_refused {
        None => libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
        Some(_) => libc::MAP_SHARED,
    };
    let reserve_len = len.checked_add(align - page).ok_or(libc::ENOMEM)?;
    // SAFETY: an anonymous PROT_NONE reservation at an address the kernel
    // chooses; it touches no existing mapping.
    let r = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            reserve_len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if r == libc::MAP_FAILED {
        return Err(errno());
    }
    let start = r as usize;
    let addr = (start + align - 1) & !(align - 1);
    // Trim the reservation to [addr, addr + len).
    // SAFETY: both pieces lie inside the reservation made above.
    unsafe {
        if addr > start {
            libc::munmap(start as *mut _, addr - start);
        }
        let end = start + reserve_len;
        if end > addr + len {
            libc::munmap((addr + len) as *mut _, end - (addr + len));
        }
    }
    // SAFETY: MAP_FIXED over our own reservation [addr, addr + len), which
    // nothing else can be using.
    let p = unsafe {
        libc::mmap(
            addr as *mut _,
            len,
            prot,
            flags | libc::MAP_FIXED,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        let e = errno();
        release_reservation(addr, len);
        return Err(e);
    }
    Ok(Mapped {
        addr,
        len,
        sync_refused,
    })
}

/// `None` when `fd` accepts `MAP_SYNC` at `offset`, else the errno of the
/// refusal (EOPNOTSUPP: not DAX; EINVAL: a kernel before 4.15).
fn probe_map_sync(fd: i32, offset: u64, probe_len: usize, prot: i32) -> Option<i32> {
    // SAFETY: a new mapping at an address the kernel chooses, removed again.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            probe_len,
            prot,
            libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Some(errno());
    }
    // SAFETY: the probe mapping made just above.
    unsafe { libc::munmap(p, probe_len) };
    None
}

/// After a failed `MAP_FIXED`, the reservation may still be there or may
/// have been removed (and the range taken by another thread since). Only
/// an empty range is claimed and released; an occupied one is left alone,
/// at worst leaking an inaccessible reservation rather than unmapping
/// someone else's memory.
fn release_reservation(addr: usize, len: usize) {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let p = unsafe {
        libc::mmap(
            addr as *mut _,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p != libc::MAP_FAILED {
        // Claimed (or, on kernels before 4.17 that ignore NOREPLACE,
        // placed elsewhere): ours either way.
        unmap(p as usize, len);
    }
}

/// `munmap(2)` of a range this module mapped.
pub fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller passes a range it mapped and no longer uses.
    unsafe { libc::munmap(addr as *mut _, len) };
}

/// `msync(MS_SYNC)` of a page-aligned range.
pub fn msync(addr: usize, len: usize) -> Result<(), i32> {
    // SAFETY: msync reads no user memory; on an unmapped range it fails
    // with ENOMEM rather than faulting.
    if unsafe { libc::msync(addr as *mut _, len, libc::MS_SYNC) } == 0 {
        crate::record::msync(addr, len);
        #[cfg(test)]
        MSYNCED.with(|m| m.borrow_mut().push((addr, len)));
        Ok(())
    } else {
        Err(errno())
    }
}

/// A fresh anonymous shared mapping of `len` bytes, for unit tests that
/// register pieces of it as mappings of this library.
#[cfg(test)]
pub(crate) fn anonymous_shared(len: usize) -> usize {
    // SAFETY: a new mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p as usize
}

#[cfg(test)]
thread_local! {
    /// The ranges this thread msynced successfully, for unit tests.
    pub(crate) static MSYNCED: std::cell::RefCell<Vec<(usize, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The symbolic name of the errno values mapping code reports.
pub fn errno_name(e: i32) -> String {
    match e {
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENODEV => "ENODEV".into(),
        libc::EACCES => "EACCES".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::EIO => "EIO".into(),
        _ => format!("errno {e}"),
    }
}
