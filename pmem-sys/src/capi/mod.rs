//! The C ABI: the only home of exported symbols (feature `capi`).
//!
//! Kernel names are kept verbatim; everything else starts with `pmem_sys_`,
//! so nothing collides with PMDK's libpmem or libpmem2. Errors follow libc:
//! NULL or -1, `errno`, and a thread-local message from
//! `pmem_sys_errormsg()` naming the call, the argument and the reason.
//! Fallible entry points catch panics and turn them into an error; the copy
//! and flush paths cannot panic.
//!
//! The doc comments below are copied into `include/pmem.h` by cbindgen and
//! are written for C readers, in the kernel-doc style of the kernel's
//! `include/linux/pmem.h`.

#![allow(unsafe_code, non_camel_case_types)]

use crate::knobs::{self, KnobError};
use crate::mapping::{self, Granularity};
use crate::{Error, api};
use core::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::cell::UnsafeCell;
use std::collections::BTreeSet;
use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock};

/// Persistent memory, as the kernel's `void __pmem`: cbindgen writes this
/// type as `void __pmem` in the header.
pub type pmem_void = c_void;

/// Major version of the library.
pub const PMEM_SYS_VERSION_MAJOR: c_int = 0;
/// Minor version of the library.
pub const PMEM_SYS_VERSION_MINOR: c_int = 1;
/// Patch version of the library.
pub const PMEM_SYS_VERSION_PATCH: c_int = 0;

/// Granularity: the CPU caches are in the persistence domain (eADR).
pub const PMEM_SYS_GRANULARITY_BYTE: c_int = 0;
/// Granularity: flush cache lines, then fence (MAP_SYNC accepted, device-DAX).
pub const PMEM_SYS_GRANULARITY_CACHE_LINE: c_int = 1;
/// Granularity: the page cache stands between stores and media (msync).
pub const PMEM_SYS_GRANULARITY_PAGE: c_int = 2;

/// pmem_sys_map_file: create the file if missing, grow it if shorter.
pub const PMEM_SYS_FILE_CREATE: c_uint = 1;
/// pmem_sys_map_file: with CREATE, fail with EEXIST if the file exists.
pub const PMEM_SYS_FILE_EXCL: c_uint = 2;
/// pmem_sys_map_file: with CREATE, grow with ftruncate (sparse) instead of
/// allocating every block.
pub const PMEM_SYS_FILE_SPARSE: c_uint = 4;
/// pmem_sys_map_file: with CREATE, path is a directory; map an unnamed
/// temporary file created in it (O_TMPFILE).
pub const PMEM_SYS_FILE_TMPFILE: c_uint = 8;
/// pmem_sys_map_file: map an existing file read-only (opened O_RDONLY,
/// mapped PROT_READ), so a user who may only read it can map it. Alone:
/// with any other flag, EINVAL. Never creates or changes the file.
pub const PMEM_SYS_FILE_RDONLY: c_uint = 16;

/// Size of the per-thread error buffer: a path of PATH_MAX bytes and the
/// rest of the sentence fit; a longer message is cut at a character
/// boundary and ends in "...".
const ERRMSG_CAP: usize = 4608;

thread_local! {
    // A fixed buffer, overwritten in place and never freed while the thread
    // lives: the pointer pmem_sys_errormsg() returns stays valid however
    // many calls fail after it was taken. No destructor, so it can be read
    // even while the thread's other thread-locals are being torn down.
    static LAST_ERROR: UnsafeCell<[u8; ERRMSG_CAP]> = const { UnsafeCell::new([0; ERRMSG_CAP]) };
}

fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

fn record(e: &Error) {
    let msg = e.message.replace('\0', "?");
    let (text, cut) = if msg.len() < ERRMSG_CAP {
        (msg.as_str(), "")
    } else {
        let mut end = ERRMSG_CAP - 4;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        (&msg[..end], "...")
    };
    LAST_ERROR.with(|buf| {
        let dst = buf.get().cast::<u8>();
        // SAFETY: `dst` is this thread's buffer of ERRMSG_CAP bytes; only
        // this thread touches it, and no Rust reference to it exists (the
        // C caller may hold a pointer, which stays valid: the bytes change
        // in place). text.len() + cut.len() + 1 <= ERRMSG_CAP by the cut
        // above.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), dst, text.len());
            core::ptr::copy_nonoverlapping(cut.as_ptr(), dst.add(text.len()), cut.len());
            *dst.add(text.len() + cut.len()) = 0;
        }
    });
    set_errno(e.errno);
}

/// Runs a fallible entry point: an error or a panic becomes `fallback`
/// with errno and the message set.
fn guard<T>(call: &str, fallback: T, f: impl FnOnce() -> Result<T, Error>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            record(&e);
            fallback
        }
        Err(_) => {
            record(&Error::new(
                libc::EIO,
                call,
                "internal error",
                "a bug in pmem-sys (a Rust panic); please report it",
            ));
            fallback
        }
    }
}

/// A C copy of `s` that lives as long as the process. The library keeps
/// one copy of every distinct string it has returned this way (table
/// names, knob reports and values, reason sentences: a handful in
/// practice), so a pointer handed to C can never dangle.
fn interned(s: &str) -> *const c_char {
    static STRINGS: Mutex<BTreeSet<&'static CStr>> = Mutex::new(BTreeSet::new());
    let c = CString::new(s.replace('\0', "?")).unwrap_or_default();
    let mut set = STRINGS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(kept) = set.get(c.as_c_str()) {
        return kept.as_ptr();
    }
    let kept: &'static CStr = Box::leak(c.into_boxed_c_str());
    set.insert(kept);
    kept.as_ptr()
}

/// Reads a C string argument; `None` for NULL.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn arg_str<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: the caller's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

/* ---- The 2015 kernel API --------------------------------------------- */

/// memcpy_to_pmem - copy data to persistent memory
/// @dst: destination, in persistent memory
/// @src: source
/// @n: number of bytes
///
/// When this returns, the data has left the CPU caches or is on its way to
/// the media by non-temporal stores; it is not yet ordered. Call
/// wmb_pmem() before relying on it. On a page-granular mapping the range is
/// remembered and wmb_pmem() msyncs it. @n == 0 does nothing and accepts
/// NULL pointers. The ranges must not overlap (see pmem_sys_memmove()).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy_to_pmem(dst: *mut pmem_void, src: *const c_void, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { api::memcpy_to_pmem(dst.cast(), src.cast(), n) }
}

/// memcpy_from_pmem - copy data from persistent memory, surviving bus errors
/// @dst: destination, ordinary memory
/// @src: source, in persistent memory
/// @n: number of bytes
///
/// Returns 0, or -1 with errno EIO when a page of either range raised
/// SIGBUS (a media error, or a file truncated under the mapping by another
/// descriptor or process); every byte before the fault has been copied and
/// pmem_sys_errormsg() names the offset. The process goes on and the rest
/// of the mapping stays usable. pmem_sys_copy_mc() returns the count. The
/// first call installs a SIGBUS handler that recovers only faults of this
/// library's guarded copies and passes every other SIGBUS to the handler
/// installed before it (or the default action). Fault-safe on x86_64; a
/// plain copy elsewhere. @n == 0 does nothing and accepts NULL pointers.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, except for pages that
/// raise SIGBUS; not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy_from_pmem(
    dst: *mut c_void,
    src: *const pmem_void,
    n: usize,
) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { api::copy_mc(dst.cast(), src.cast(), n) } {
        0 => 0,
        left => copy_failed("memcpy_from_pmem", "src", src.cast(), n - left, n),
    }
}

/// Records the EIO of a guarded copy and returns -1; kept out of line so
/// that the formatting stays off the copy's fast path.
#[cold]
#[inline(never)]
fn copy_failed(call: &str, side: &str, base: *const u8, off: usize, n: usize) -> c_int {
    record(&api::bus_error(call, side, base, off, n));
    -1
}

/// pmem_sys_copy_mc - copy, reporting how much a bus error left uncopied
/// @dst: destination
/// @src: source
/// @n: number of bytes
///
/// The kernel's copy_mc_to_kernel(): copies like memcpy_from_pmem() and
/// returns the number of bytes NOT copied: 0 on success; after a SIGBUS on
/// either range, the bytes from the fault to the end (bytes
/// [0, @n - returned) were copied). Sets neither errno nor the message.
///
/// # Safety
/// As memcpy_from_pmem().
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_copy_mc(
    dst: *mut c_void,
    src: *const pmem_void,
    n: usize,
) -> usize {
    // SAFETY: the caller's contract.
    unsafe { api::copy_mc(dst.cast(), src.cast(), n) }
}

/// pmem_sys_memcpy_to_pmem_checked - memcpy_to_pmem() surviving bus errors
/// @dst: destination, in persistent memory
/// @src: source
/// @n: number of bytes
///
/// Returns 0, or -1 with errno EIO when the destination raised SIGBUS (a
/// file truncated under the mapping); every byte before the reported
/// offset has been copied and is on its way as after memcpy_to_pmem() (not
/// fenced), and pmem_sys_errormsg() names the offset. On page- and
/// byte-granular mappings the whole copy is guarded and the offset exact.
/// On cache-line-granular memory each destination page is first probed
/// with a guarded store, then copied by the same engine as
/// memcpy_to_pmem(); the offset is that of the faulting page, and a page
/// truncated in the microseconds between its probe and its copy, or a
/// source that faults, may still raise SIGBUS. Fault-safe on x86_64; an
/// unchecked memcpy_to_pmem() elsewhere.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, except for destination
/// pages that raise SIGBUS; not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_memcpy_to_pmem_checked(
    dst: *mut pmem_void,
    src: *const c_void,
    n: usize,
) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { api::copy_checked(dst.cast(), src.cast(), n) } {
        Ok(()) => 0,
        Err(off) => copy_failed(
            "pmem_sys_memcpy_to_pmem_checked",
            "dst",
            dst.cast_const().cast(),
            off,
            n,
        ),
    }
}

/// wmb_pmem - make earlier writes to persistent memory durable
///
/// Makes every earlier memcpy_to_pmem(), clear_pmem(), pmem_sys_memset(),
/// pmem_sys_memmove() and arch_wb_cache_pmem() of the calling thread
/// durable. On x86_64 this is an SFENCE, issued on every platform, eADR
/// included. Ranges of page-granular mappings written by those calls are
/// msynced here; an msync failure is kept and reported by the next
/// pmem_sys_drain() or pmem_sys_persist() of this thread.
#[unsafe(no_mangle)]
pub extern "C" fn wmb_pmem() {
    api::wmb_pmem()
}

/// arch_has_wmb_pmem - can wmb_pmem() make stores durable on this CPU?
///
/// True on x86_64 and aarch64; false for the portable fallback, where only
/// page-granular mappings (msync) are durable.
#[unsafe(no_mangle)]
pub extern "C" fn arch_has_wmb_pmem() -> bool {
    api::arch_has_wmb_pmem()
}

/// arch_has_pmem_api - does this CPU have the flush and fence instructions
/// the pmem API needs?
#[unsafe(no_mangle)]
pub extern "C" fn arch_has_pmem_api() -> bool {
    api::arch_has_pmem_api()
}

/// memremap_pmem - map a range of a file or device-DAX node
/// @fd: an open regular file or device-DAX character device, read-write
/// @offset: start in the file, a multiple of the page size (of the
///          device's alignment for device-DAX)
/// @size: bytes to map, non-zero, not past the end of the file
///
/// Maps shared and read-write, asking for MAP_SYNC first and falling back
/// to MAP_SHARED when the filesystem refuses it (see
/// pmem_sys_granularity()). The address is aligned for huge pages. @fd may
/// be closed afterwards. Returns the address, or NULL with errno set
/// (EBADF, EINVAL, EACCES, EOVERFLOW, ENODEV, ENOMEM...) and the reason in
/// pmem_sys_errormsg().
///
/// # Safety
/// None beyond those of mmap: the mapping is new memory.
#[unsafe(no_mangle)]
pub extern "C" fn memremap_pmem(fd: c_int, offset: u64, size: usize) -> *mut pmem_void {
    guard("memremap_pmem", core::ptr::null_mut(), || {
        mapping::memremap(fd, offset, size).map(|a| a as *mut pmem_void)
    })
}

/// memunmap_pmem - unmap a mapping made by this library
/// @addr: the start address memremap_pmem() or pmem_sys_map_file() returned
///
/// Returns 0, or -1 with errno EINVAL for NULL, an address inside but not
/// at the start of a mapping, an unknown address, or a second unmap.
#[unsafe(no_mangle)]
pub extern "C" fn memunmap_pmem(addr: *mut pmem_void) -> c_int {
    guard("memunmap_pmem", -1, || {
        mapping::unmap(addr as usize).map(|()| 0)
    })
}

/* ---- Later kernel calls ---------------------------------------------- */

/// clear_pmem - zero a range of persistent memory
/// @addr: start, in persistent memory
/// @n: number of bytes
///
/// Like memcpy_to_pmem() from a zero source: not fenced.
///
/// # Safety
/// `addr` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clear_pmem(addr: *mut pmem_void, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { api::clear_pmem(addr.cast(), n) }
}

/// arch_wb_cache_pmem - write back a range written with ordinary stores
/// @addr: start, in persistent memory
/// @n: number of bytes
///
/// Writes back every cache line the range touches (CLWB, CLFLUSHOPT or
/// CLFLUSH; DC CVAP on aarch64). Not fenced: follow with wmb_pmem().
///
/// # Safety
/// `addr` mapped for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn arch_wb_cache_pmem(addr: *mut pmem_void, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { api::arch_wb_cache_pmem(addr.cast_const().cast(), n) }
}

/// arch_invalidate_pmem - write back and invalidate a range
/// @addr: start, in persistent memory
/// @n: number of bytes
///
/// Not fenced: follow with wmb_pmem().
///
/// # Safety
/// `addr` mapped for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn arch_invalidate_pmem(addr: *mut pmem_void, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { api::arch_invalidate_pmem(addr.cast_const().cast(), n) }
}

/* ---- pmem-sys extras -------------------------------------------------- */

/// pmem_sys_memset - fill a range of persistent memory
/// @dst: start, in persistent memory
/// @c: the byte value (converted to unsigned char)
/// @n: number of bytes
///
/// Like memcpy_to_pmem(): written back or streamed, not fenced.
///
/// # Safety
/// `dst` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_memset(dst: *mut pmem_void, c: c_int, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { api::memset_pmem(dst.cast(), c as u8, n) }
}

/// pmem_sys_memmove - copy to persistent memory, ranges may overlap
/// @dst: destination, in persistent memory
/// @src: source
/// @n: number of bytes
///
/// Like memcpy_to_pmem(), correct for overlap in either direction.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_memmove(dst: *mut pmem_void, src: *const c_void, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { api::memmove_to_pmem(dst.cast(), src.cast(), n) }
}

/// pmem_sys_persist - make a range durable now
/// @addr: start, in persistent memory
/// @n: number of bytes
///
/// Writes back and fences (cache-line granularity), fences (byte), or
/// msyncs the page-rounded range (page). Returns 0, or -1 with errno when
/// the msync fails or when an earlier wmb_pmem() of this thread recorded
/// an msync failure.
///
/// # Safety
/// `addr` mapped for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_persist(addr: *const pmem_void, n: usize) -> c_int {
    guard("pmem_sys_persist", -1, || {
        // SAFETY: the caller's contract.
        unsafe { api::persist(addr.cast(), n) }.map(|()| 0)
    })
}

/// pmem_sys_memcpy_flags and friends: do not drain after the store; a
/// later pmem_sys_drain() or wmb_pmem() does (PMDK's PMEM_F_MEM_NODRAIN).
pub const PMEM_SYS_F_NODRAIN: c_uint = 1;
/// Non-temporal stores whatever the size (the threshold is ignored); no
/// effect in a temporal table. Wins over TEMPORAL (PMEM_F_MEM_NONTEMPORAL).
pub const PMEM_SYS_F_NONTEMPORAL: c_uint = 2;
/// Ordinary stores whatever the size, each line written back
/// (PMEM_F_MEM_TEMPORAL).
pub const PMEM_SYS_F_TEMPORAL: c_uint = 4;
/// As PMEM_SYS_F_NONTEMPORAL (PMEM_F_MEM_WC).
pub const PMEM_SYS_F_WC: c_uint = 8;
/// As PMEM_SYS_F_TEMPORAL (PMEM_F_MEM_WB).
pub const PMEM_SYS_F_WB: c_uint = 16;
/// No write-back instruction and no drain: the data is left for a later
/// flush or persist of the range; page-granular ranges are not remembered
/// for wmb_pmem()'s msync either (PMEM_F_MEM_NOFLUSH).
pub const PMEM_SYS_F_NOFLUSH: c_uint = 32;

// Literals for cbindgen; the same values as the Rust API's, checked here.
const _: () = assert!(
    PMEM_SYS_F_NODRAIN == api::F_NODRAIN
        && PMEM_SYS_F_NONTEMPORAL == api::F_NONTEMPORAL
        && PMEM_SYS_F_TEMPORAL == api::F_TEMPORAL
        && PMEM_SYS_F_WC == api::F_WC
        && PMEM_SYS_F_WB == api::F_WB
        && PMEM_SYS_F_NOFLUSH == api::F_NOFLUSH
);

/// pmem_sys_memcpy_flags - copy to persistent memory with per-call flags
/// @dst: destination, in persistent memory
/// @src: source
/// @n: number of bytes
/// @flags: PMEM_SYS_F_NODRAIN, _NONTEMPORAL, _TEMPORAL, _WC, _WB, _NOFLUSH
///
/// memcpy_to_pmem() with the store kind chosen by @flags, then the drain
/// (fence, and msync of page-granular ranges) unless NODRAIN or NOFLUSH.
/// Returns 0, or -1 with errno: EINVAL for an undefined flag bit (nothing
/// is stored), or the drain's msync error.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes; not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_memcpy_flags(
    dst: *mut pmem_void,
    src: *const c_void,
    n: usize,
    flags: c_uint,
) -> c_int {
    guard("pmem_sys_memcpy_flags", -1, || {
        // SAFETY: the caller's contract.
        unsafe { api::memcpy_flags(dst.cast(), src.cast(), n, flags) }.map(|()| 0)
    })
}

/// pmem_sys_memmove_flags - overlap-safe pmem_sys_memcpy_flags()
/// @dst: destination, in persistent memory
/// @src: source (may overlap @dst)
/// @n: number of bytes
/// @flags: as for pmem_sys_memcpy_flags()
///
/// Returns 0, or -1 with errno as pmem_sys_memcpy_flags().
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_memmove_flags(
    dst: *mut pmem_void,
    src: *const c_void,
    n: usize,
    flags: c_uint,
) -> c_int {
    guard("pmem_sys_memmove_flags", -1, || {
        // SAFETY: the caller's contract.
        unsafe { api::memmove_flags(dst.cast(), src.cast(), n, flags) }.map(|()| 0)
    })
}

/// pmem_sys_memset_flags - fill persistent memory with per-call flags
/// @dst: destination, in persistent memory
/// @c: the byte (converted to unsigned char)
/// @n: number of bytes
/// @flags: as for pmem_sys_memcpy_flags()
///
/// Returns 0, or -1 with errno as pmem_sys_memcpy_flags().
///
/// # Safety
/// `dst` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_memset_flags(
    dst: *mut pmem_void,
    c: c_int,
    n: usize,
    flags: c_uint,
) -> c_int {
    guard("pmem_sys_memset_flags", -1, || {
        // SAFETY: the caller's contract.
        unsafe { api::memset_flags(dst.cast(), c as u8, n, flags) }.map(|()| 0)
    })
}

/// pmem_sys_deep_flush - make a range durable past the memory controller
/// @addr: start, in persistent memory
/// @n: number of bytes
///
/// Writes the lines back (cache-line granularity) and fences; then, on a
/// device-DAX mapping whose nvdimm region has a deep_flush attribute in
/// sysfs (under PMEM_SYS_SYSFS_ROOT), writes 1 to it, and otherwise
/// msyncs the page-rounded range. A system call: for rare points such as
/// the end of a checkpoint. Returns 0, or -1 with errno of the failed
/// write or msync.
///
/// # Safety
/// `addr` mapped for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_deep_flush(addr: *const pmem_void, n: usize) -> c_int {
    guard("pmem_sys_deep_flush", -1, || {
        // SAFETY: the caller's contract.
        unsafe { api::deep_flush(addr.cast(), n) }.map(|()| 0)
    })
}

/// pmem_sys_deep_persist - pmem_sys_deep_flush() that also reports
/// @addr: start, in persistent memory
/// @n: number of bytes
///
/// pmem_sys_deep_flush(), also returning -1 with errno when an earlier
/// wmb_pmem() of this thread recorded an msync failure (as
/// pmem_sys_persist() does).
///
/// # Safety
/// `addr` mapped for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_deep_persist(addr: *const pmem_void, n: usize) -> c_int {
    guard("pmem_sys_deep_persist", -1, || {
        // SAFETY: the caller's contract.
        unsafe { api::deep_persist(addr.cast(), n) }.map(|()| 0)
    })
}

/// pmem_sys_drain - wmb_pmem() that reports failures
///
/// The same work as wmb_pmem(); returns 0, or -1 with errno when an msync
/// of a page-granular range failed (now or in an earlier wmb_pmem() of
/// this thread).
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_drain() -> c_int {
    guard("pmem_sys_drain", -1, || api::drain().map(|()| 0))
}

/// pmem_sys_map_file - open, optionally create, and map a file
/// @path: the file (a directory with PMEM_SYS_FILE_TMPFILE)
/// @size: bytes to map; 0 without CREATE maps the whole existing file
/// @flags: PMEM_SYS_FILE_CREATE, _EXCL, _SPARSE, _TMPFILE, or _RDONLY alone
/// @mode: permissions of a created file
/// @mapped_size: if not NULL, receives the mapped length
///
/// Without CREATE a non-zero @size maps the first @size bytes (EINVAL when
/// the file is shorter). CREATE grows a shorter file to @size and never
/// shrinks a longer one. Returns the address, or NULL with errno set; a
/// file this call created is removed again on failure.
///
/// With PMEM_SYS_FILE_RDONLY the mapping is read-only: reads,
/// memcpy_from_pmem() and the granularity and reason calls work; any store
/// into it (memcpy_to_pmem() included) raises SIGSEGV.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `mapped_size` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_map_file(
    path: *const c_char,
    size: usize,
    flags: c_uint,
    mode: libc::mode_t,
    mapped_size: *mut usize,
) -> *mut pmem_void {
    guard("pmem_sys_map_file", core::ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let p = unsafe { arg_str(path) }.ok_or_else(|| {
            Error::new(
                libc::EINVAL,
                "pmem_sys_map_file",
                "path NULL",
                "a path is required",
            )
        })?;
        let p = std::path::Path::new(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p.to_bytes()),
        );
        let (addr, len) = if flags & PMEM_SYS_FILE_RDONLY != 0 {
            if flags != PMEM_SYS_FILE_RDONLY {
                return Err(Error::new(
                    libc::EINVAL,
                    "pmem_sys_map_file",
                    format_args!("flags {flags:#x}"),
                    "PMEM_SYS_FILE_RDONLY maps an existing file as it is; \
                     it takes no other flag",
                ));
            }
            mapping::map_file_readonly(p, size)?
        } else {
            mapping::map_file(p, size, flags, mode)?
        };
        if !mapped_size.is_null() {
            // SAFETY: the caller's contract: NULL or writable.
            unsafe { *mapped_size = len };
        }
        Ok(addr as *mut pmem_void)
    })
}

/// pmem_sys_mapping_size - the length of a mapping, as asked for
/// @addr: the start of a mapping of this library
///
/// Returns the length in bytes (not rounded to pages), or 0 with errno
/// EINVAL when @addr is not the start of a mapping.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_mapping_size(addr: *const pmem_void) -> usize {
    guard("pmem_sys_mapping_size", 0, || {
        mapping::mapping_size(addr as usize)
    })
}

/// pmem_sys_granularity - the store granularity of a range
/// @addr: start
/// @n: number of bytes; the range must lie inside one mapping
///
/// Returns PMEM_SYS_GRANULARITY_BYTE, _CACHE_LINE or _PAGE, or -1 with
/// errno EINVAL when the range is not inside one mapping of this library.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_granularity(addr: *const pmem_void, n: usize) -> c_int {
    guard("pmem_sys_granularity", -1, || {
        mapping::granularity("pmem_sys_granularity", addr as usize, n).map(|g| g as c_int)
    })
}

/// pmem_sys_is_pmem - is a range finer than page granularity?
/// @addr: start
/// @n: number of bytes
///
/// True for byte and cache-line granularity. False for page granularity,
/// and false with errno EINVAL for a range outside the mappings of this
/// library.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_is_pmem(addr: *const pmem_void, n: usize) -> bool {
    guard("pmem_sys_is_pmem", false, || {
        mapping::granularity("pmem_sys_is_pmem", addr as usize, n).map(|g| g != Granularity::Page)
    })
}

/// pmem_sys_mapping_reason - why a mapping has its granularity
/// @addr: any address inside a mapping of this library
///
/// Returns a sentence such as "MAP_SYNC refused (EOPNOTSUPP): /tmp is not
/// a DAX mount (tmpfs); page granularity, durability by msync"; NULL with
/// errno EINVAL for other addresses.
///
/// Lifetime: the string stays valid for the life of the process, after
/// the mapping is unmapped too (the library keeps one copy of each
/// distinct reason). Do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_mapping_reason(addr: *const pmem_void) -> *const c_char {
    guard("pmem_sys_mapping_reason", core::ptr::null(), || {
        // Interned, not the region's own copy: a caller may well print the
        // reason after unmapping (printf's arguments run in any order).
        mapping::reason(addr as usize)
            .map(|r| interned(&mapping::reason_text(&r).to_string_lossy()))
    })
}

/// pmem_sys_errormsg - the last error of the calling thread
///
/// Names the call, the argument and the reason. Never NULL; empty when no
/// call of this thread has failed.
///
/// Lifetime: the pointer is the same for every call from one thread and
/// stays valid until that thread exits; it points to a per-thread buffer
/// whose content the thread's next failing call overwrites in place. So
/// `printf("%d %s\n", memunmap_pmem(p), pmem_sys_errormsg())` is safe in
/// either evaluation order (it prints the new message or the previous
/// one); copy the text to keep it past the thread's next failure. A
/// message longer than 4607 bytes is cut and ends in "...". Do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_errormsg() -> *const c_char {
    LAST_ERROR.with(|buf| buf.get().cast::<c_char>().cast_const())
}

/// pmem_sys_version - the library version, "MAJOR.MINOR.PATCH"
///
/// Lifetime: a constant string, valid for the life of the process.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// pmem_sys_impl - the operation table in use
///
/// `<arch>/<copy>+<flush>`, for example "x86_64/avx2+clwb",
/// "x86_64/temporal+clflush", "aarch64/temporal+dc-cvap" or
/// "generic/temporal+none".
///
/// Lifetime: valid for the life of the process, also after
/// pmem_sys_set_option() selects another table (the call then returns
/// another string). Do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_impl() -> *const c_char {
    guard("pmem_sys_impl", core::ptr::null(), || {
        Ok(interned(api::implementation()))
    })
}

/// pmem_sys_movnt_threshold - copies of at least this many bytes use
/// non-temporal stores (whole cache lines, and aligned 8-byte words of
/// partial lines where that pays)
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_movnt_threshold() -> usize {
    crate::engine::movnt_threshold()
}

/// pmem_sys_cpu_features - the CPU features detected
///
/// Space separated, named as in /proc/cpuinfo ("sse2 avx avx2 clflush
/// clflushopt clwb").
///
/// Lifetime: computed once, valid for the life of the process.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_cpu_features() -> *const c_char {
    static NAMES: OnceLock<CString> = OnceLock::new();
    NAMES
        .get_or_init(|| CString::new(api::cpu_features()).unwrap_or_default())
        .as_ptr()
}

/// pmem_sys_knobs - the knobs in force
///
/// One line per knob that differs from its default ("PMEM_SYS_NO_AVX2=1
/// (from the environment)"), then one per malformed environment value and
/// why it was ignored. Empty when nothing is forced.
///
/// Lifetime: valid for the life of the process, from any thread; a later
/// pmem_sys_set_option() does not change it (call again for the new
/// report). The library keeps one copy of each distinct report. Do not
/// free it.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_knobs() -> *const c_char {
    guard("pmem_sys_knobs", core::ptr::null(), || {
        Ok(interned(&knobs::report()))
    })
}

/// pmem_sys_set_option - change a knob at run time
/// @name: the environment variable's name, e.g. "PMEM_SYS_NO_AVX2"
/// @value: written as in the environment ("1", "0", "4096", "page"...);
///         NULL restores the default
///
/// Re-selects the operation table atomically: calls in flight finish on
/// the old one. Returns 0, or -1 with errno EINVAL for an unknown name or a
/// malformed value (nothing changes then).
///
/// # Safety
/// `name` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_set_option(name: *const c_char, value: *const c_char) -> c_int {
    guard("pmem_sys_set_option", -1, || {
        // SAFETY: the caller's contract.
        let (n, v) = unsafe { (arg_str(name), arg_str(value)) };
        let n = n.ok_or_else(|| {
            Error::new(
                libc::EINVAL,
                "pmem_sys_set_option",
                "name NULL",
                "a knob name is required",
            )
        })?;
        let name = n.to_string_lossy();
        let value = v.map(|v| v.to_string_lossy());
        crate::engine::set_option(&name, value.as_deref())
            .map(|()| 0)
            .map_err(|e| match e {
                KnobError::UnknownName => Error::new(
                    libc::EINVAL,
                    "pmem_sys_set_option",
                    format_args!("name {name:?}"),
                    "not a knob of pmem-sys",
                ),
                KnobError::Malformed(why) => Error::new(
                    libc::EINVAL,
                    "pmem_sys_set_option",
                    format_args!("value {:?} for {name}", value.as_deref().unwrap_or("")),
                    why,
                ),
            })
    })
}

/// pmem_sys_get_option - the value of a knob in force
/// @name: the environment variable's name
///
/// Returns the value written as in the environment ("" for an unset string
/// knob; PMEM_SYS_MOVNT_THRESHOLD reads as the threshold in force); NULL
/// with errno EINVAL for an unknown name.
///
/// Lifetime: valid for the life of the process, from any thread; a later
/// pmem_sys_set_option() does not change it. The library keeps one copy
/// of each distinct value returned (a few bytes per value ever set). Do
/// not free it.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_get_option(name: *const c_char) -> *const c_char {
    guard("pmem_sys_get_option", core::ptr::null(), || {
        // SAFETY: the caller's contract.
        let n = unsafe { arg_str(name) }.ok_or_else(|| {
            Error::new(
                libc::EINVAL,
                "pmem_sys_get_option",
                "name NULL",
                "a knob name is required",
            )
        })?;
        let name = n.to_string_lossy();
        crate::engine::get_option(&name)
            .map(|v| interned(&v))
            .ok_or_else(|| {
                Error::new(
                    libc::EINVAL,
                    "pmem_sys_get_option",
                    format_args!("name {name:?}"),
                    "not a knob of pmem-sys",
                )
            })
    })
}

/// pmem_sys_record_start - record every mapping made from now on
/// @path: the trace file to create (or truncate)
///
/// Records each mapping this library makes after the call (native calls
/// and libpmem.so.1 alike): its content when mapped, then every store,
/// write-back, fence, msync, persist and unmap, and the stores made
/// through plain pointers (found by comparing the mapping with a shadow at
/// each call), until pmem_sys_record_stop() or exit. pmem-sys-crashtest
/// replays the trace. Setting the environment variable PMEM_SYS_RECORD to
/// a path does the same from the first mapping on. Returns 0, or -1 with errno:
/// EINVAL for a NULL path, EBUSY while recording, or the error creating
/// the file.
///
/// # Safety
/// @path is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_sys_record_start(path: *const c_char) -> c_int {
    guard("pmem_sys_record_start", -1, || {
        // SAFETY: the caller's contract.
        let p = unsafe { arg_str(path) }.ok_or_else(|| {
            Error::new(
                libc::EINVAL,
                "pmem_sys_record_start",
                "path NULL",
                "a path is required",
            )
        })?;
        let p = std::path::Path::new(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p.to_bytes()),
        );
        crate::record::start(p).map(|()| 0)
    })
}

/// pmem_sys_record_stop - end recording and close the trace
///
/// Records the plain-pointer stores since the last call, ends the trace
/// and closes it. Returns 0, or -1 with errno: EINVAL when not recording,
/// or the first error writing the trace.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_sys_record_stop() -> c_int {
    guard("pmem_sys_record_stop", -1, || {
        crate::record::stop().map(|()| 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapFlags;

    #[test]
    fn version_constants_match_the_crate() {
        let v =
            format!("{PMEM_SYS_VERSION_MAJOR}.{PMEM_SYS_VERSION_MINOR}.{PMEM_SYS_VERSION_PATCH}");
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn constants_match_the_rust_side() {
        assert_eq!(PMEM_SYS_GRANULARITY_BYTE, Granularity::Byte as c_int);
        assert_eq!(
            PMEM_SYS_GRANULARITY_CACHE_LINE,
            Granularity::CacheLine as c_int
        );
        assert_eq!(PMEM_SYS_GRANULARITY_PAGE, Granularity::Page as c_int);
        assert_eq!(PMEM_SYS_FILE_CREATE, MapFlags::CREATE);
        assert_eq!(PMEM_SYS_FILE_EXCL, MapFlags::EXCL);
        assert_eq!(PMEM_SYS_FILE_SPARSE, MapFlags::SPARSE);
        assert_eq!(PMEM_SYS_FILE_TMPFILE, MapFlags::TMPFILE);
        assert_eq!(PMEM_SYS_FILE_RDONLY & MapFlags::ALL, 0);
    }
}
