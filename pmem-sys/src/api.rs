//! The kernel's pmem API as Rust functions, with the mapping-aware routing
//! that makes it honest on every file: cache-line memory is flushed,
//! byte-granular (eADR) memory is not, and page-granular memory is
//! remembered and msynced by [`wmb_pmem`].

#![allow(unsafe_code)]

use crate::Error;
use crate::engine::{self, ops};
use crate::mapping::{self, Granularity, dirty};

/// Runs a store operation with the table in use, choosing the variant the
/// destination needs: `flush == true` for cache-line memory (and memory
/// this library did not map), `false` for byte- and page-granular mappings,
/// whose range is then remembered for `wmb_pmem`'s msync.
#[inline(always)]
fn route_store(dst: *mut u8, n: usize, store: impl FnOnce(&'static engine::Ops, bool)) {
    let special = mapping::special_granularity(dst as usize);
    store(ops(), special.is_none());
    if special == Some(Granularity::Page) {
        dirty::record(dst as usize, n);
    }
}

/// Copies `n` bytes to persistent memory; when it returns the data has left
/// the CPU caches or is on its way by non-temporal stores. Not fenced: call
/// [`wmb_pmem`] to make it durable.
///
/// # Safety
/// `src` is readable and `dst` writable for `n` bytes, and they do not
/// overlap. With `n == 0` any pointers are accepted.
#[inline]
pub unsafe fn memcpy_to_pmem(dst: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    route_store(dst, n, |t, flush| unsafe {
        if flush {
            (t.copy)(dst, src, n)
        } else {
            (t.copy_noflush)(dst, src, n)
        }
    });
}

/// Overlap-safe [`memcpy_to_pmem`].
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes (they may overlap).
#[inline]
pub unsafe fn memmove_to_pmem(dst: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    route_store(dst, n, |t, flush| unsafe {
        if flush {
            (t.r#move)(dst, src, n)
        } else {
            (t.move_noflush)(dst, src, n)
        }
    });
}

/// Fills `n` bytes with `c` and writes them back; not fenced.
///
/// # Safety
/// `dst` writable for `n` bytes.
#[inline]
pub unsafe fn memset_pmem(dst: *mut u8, c: u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    route_store(dst, n, |t, flush| unsafe {
        if flush {
            (t.set)(dst, c, n)
        } else {
            (t.set_noflush)(dst, c, n)
        }
    });
}

/// Zeroes `n` bytes of persistent memory (kernel 4.4's `clear_pmem`).
///
/// # Safety
/// `dst` writable for `n` bytes.
#[inline]
pub unsafe fn clear_pmem(dst: *mut u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { memset_pmem(dst, 0, n) }
}

/// Writes back a range written with ordinary stores (kernel 4.5's
/// `arch_wb_cache_pmem`); not fenced.
///
/// # Safety
/// `addr` is mapped for `n` bytes.
#[inline]
pub unsafe fn arch_wb_cache_pmem(addr: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    match mapping::special_granularity(addr as usize) {
        // SAFETY: the caller's contract.
        None => unsafe { (ops().flush)(addr, n) },
        Some(Granularity::Page) => dirty::record(addr as usize, n),
        Some(_) => {}
    }
}

/// Writes back and invalidates a range (`arch_invalidate_pmem`); not fenced.
///
/// # Safety
/// `addr` is mapped for `n` bytes.
#[inline]
pub unsafe fn arch_invalidate_pmem(addr: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    if mapping::special_granularity(addr as usize) == Some(Granularity::Page) {
        dirty::record(addr as usize, n);
    }
    // SAFETY: the caller's contract.
    unsafe { (ops().invalidate)(addr, n) }
}

/// Copies from persistent memory, surviving a bus error: returns 0, or -1
/// with `errno` set to `EIO` when a page of either range raised `SIGBUS`
/// (a media error, or a file truncated under the mapping), after copying
/// every byte before the fault. The process goes on. [`copy_mc`] tells how
/// many bytes were copied; [`memcpy_from_pmem_checked`] says it in an
/// [`Error`]. Fault-safe on x86_64 only (see [`crate::fault`]).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, except for pages that
/// raise `SIGBUS`; no overlap.
#[inline]
pub unsafe fn memcpy_from_pmem(dst: *mut u8, src: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract.
    if unsafe { crate::fault::copy_mc(dst, src, n) } == 0 {
        0
    } else {
        // SAFETY: the calling thread's errno slot.
        unsafe { *libc::__errno_location() = libc::EIO };
        -1
    }
}

/// The kernel's `copy_mc`: copies like [`memcpy_from_pmem`] and returns the
/// number of bytes *not* copied (0 on success; on a fault, bytes
/// `[0, n - returned)` were copied).
///
/// # Safety
/// As [`memcpy_from_pmem`].
#[inline]
pub unsafe fn copy_mc(dst: *mut u8, src: *const u8, n: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { crate::fault::copy_mc(dst, src, n) }
}

/// The `EIO` of a guarded copy that stopped at `side + off`.
pub(crate) fn bus_error(call: &str, side: &str, base: *const u8, off: usize, n: usize) -> Error {
    Error::new(
        libc::EIO,
        call,
        format_args!("{side}+{off} ({:#x})", base as usize + off),
        format_args!(
            "bus error (SIGBUS): the page is not backed (file truncated under the mapping) or holds a media error; {off} of {n} bytes copied"
        ),
    )
}

/// [`memcpy_from_pmem`] with the fault described: `Err` with errno `EIO`
/// and a message naming the byte offset where the copy stopped.
///
/// # Safety
/// As [`memcpy_from_pmem`].
pub unsafe fn memcpy_from_pmem_checked(
    dst: *mut u8,
    src: *const u8,
    n: usize,
) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    match unsafe { crate::fault::copy_mc(dst, src, n) } {
        0 => Ok(()),
        left => Err(bus_error("memcpy_from_pmem", "src", src, n - left, n)),
    }
}

/// [`memcpy_to_pmem`] that survives a faulting destination: `Err` with
/// errno `EIO` and a message naming the byte offset where the copy
/// stopped, every byte before it copied and on its way as after
/// [`memcpy_to_pmem`] (not fenced). Exact and fully guarded on page- and
/// byte-granular mappings; on cache-line-granular memory each page is
/// probed with a guarded store before the engine copies it (so every copy
/// tier applies), the offset is the faulting page's, and a page truncated
/// between its probe and its copy is not caught (see [`crate::fault`]).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, except for destination
/// pages that raise `SIGBUS`; no overlap.
pub unsafe fn memcpy_to_pmem_checked(dst: *mut u8, src: *const u8, n: usize) -> Result<(), Error> {
    // SAFETY: the caller's contract; `memcpy_to_pmem` has the contract
    // `copy_checked` asks of its copy function.
    unsafe { crate::fault::copy_checked(dst, src, n, memcpy_to_pmem) }
        .map_err(|off| bus_error("memcpy_to_pmem_checked", "dst", dst, off, n))
}

/// [`memset_pmem`] that survives a faulting destination, as
/// [`memcpy_to_pmem_checked`]: `Err` with errno `EIO` naming the offset
/// where the fill stopped, every byte before it filled.
///
/// # Safety
/// `dst` writable for `n` bytes, except for pages that raise `SIGBUS`.
pub unsafe fn memset_pmem_checked(dst: *mut u8, c: u8, n: usize) -> Result<(), Error> {
    // SAFETY: the caller's contract; `memset_pmem` has the contract
    // `set_checked` asks of its fill function.
    unsafe { crate::fault::set_checked(dst, c, n, memset_pmem) }
        .map_err(|off| bus_error("memset_pmem_checked", "dst", dst, off, n))
}

/// The fence: makes every earlier `memcpy_to_pmem`, `clear_pmem`,
/// `memset_pmem`, `memmove_to_pmem` and `arch_wb_cache_pmem` of the calling
/// thread durable (msyncing page-granular ranges). An msync failure is kept
/// for [`drain`] and [`persist`].
#[inline]
pub fn wmb_pmem() {
    // SAFETY: the fence has no preconditions.
    unsafe { (ops().fence)() };
    if dirty::has_dirty() {
        dirty::sync_dirty();
    }
}

/// [`wmb_pmem`], reporting an msync failure recorded since the last report.
pub fn drain() -> Result<(), Error> {
    wmb_pmem();
    dirty::take_pending().map_or(Ok(()), Err)
}

/// Makes `[addr, addr + n)` durable: write back and fence, or msync on a
/// page-granular mapping. Also reports an msync failure a void
/// [`wmb_pmem`] of this thread recorded.
///
/// # Safety
/// `addr` is mapped for `n` bytes.
pub unsafe fn persist(addr: *const u8, n: usize) -> Result<(), Error> {
    let pending = dirty::take_pending();
    let now = match mapping::special_granularity(addr as usize) {
        Some(Granularity::Page) if n != 0 => {
            mapping::msync_range("pmem_sys_persist", addr as usize, n)
        }
        Some(_) => {
            // SAFETY: no preconditions.
            unsafe { (ops().fence)() };
            Ok(())
        }
        None => {
            // SAFETY: the caller's contract.
            unsafe {
                (ops().flush)(addr, n);
                (ops().fence)();
            }
            Ok(())
        }
    };
    match pending {
        Some(e) => Err(e),
        None => now,
    }
}

/// True where this CPU can make stores durable by flush and fence.
pub fn arch_has_pmem_api() -> bool {
    crate::arch::has_pmem_api()
}

/// True where [`wmb_pmem`] orders and completes write-backs (the same as
/// [`arch_has_pmem_api`] since PCOMMIT was withdrawn).
pub fn arch_has_wmb_pmem() -> bool {
    crate::arch::has_pmem_api()
}

/// The name of the table in use, e.g. `x86_64/avx2+clwb`.
pub fn implementation() -> &'static str {
    engine::implementation()
}

/// The CPU features detected, space separated.
pub fn cpu_features() -> String {
    engine::detect::features().names()
}
