//! The system calls behind mappings: `mmap` with `MAP_SYNC`, aligned
//! address reservation, `msync`, and file descriptor helpers. The only
//! unsafe code of the mapping module.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;

/// The page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
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
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd)
    }
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
/// address aligned to `align` (a power of two, at least a page), trying
/// `MAP_SHARED_VALIDATE | MAP_SYNC` first and plain `MAP_SHARED` when the
/// filesystem refuses it.
pub fn map_aligned(fd: i32, offset: u64, len: usize, align: usize) -> Result<Mapped, i32> {
    let page = page_size();
    let len = len.checked_add(page - 1).ok_or(libc::ENOMEM)? & !(page - 1);
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
    let map = |flags: i32| {
        // SAFETY: MAP_FIXED over our own reservation [addr, addr + len),
        // which nothing else can be using.
        let p = unsafe {
            libc::mmap(
                addr as *mut _,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags | libc::MAP_FIXED,
                fd,
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            Err(errno())
        } else {
            Ok(())
        }
    };
    let sync_refused = match map(libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC) {
        Ok(()) => None,
        // EOPNOTSUPP: not a DAX mapping. EINVAL: a kernel older than 4.15
        // that knows neither flag.
        Err(e @ (libc::EOPNOTSUPP | libc::EINVAL)) => match map(libc::MAP_SHARED) {
            Ok(()) => Some(e),
            Err(e2) => {
                unmap(addr, len);
                return Err(e2);
            }
        },
        Err(e) => {
            unmap(addr, len);
            return Err(e);
        }
    };
    Ok(Mapped { addr, len, sync_refused })
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
        Ok(())
    } else {
        Err(errno())
    }
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
