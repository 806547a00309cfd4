//! `libpmem.so.1` on the pmem-sys engine: the 23 functions of PMDK 1.12's
//! `libpmem`, with its contract, for programs built against PMDK (fio,
//! QEMU, libpmemobj, pmempool, ...).
//!
//! This crate is the only home of those names. It depends on `pmem-sys`
//! without the `capi` feature, so none of pmem-sys's own C names
//! (`pmem_sys_*`, the kernel's `memcpy_to_pmem`, ...) is compiled in; the
//! engine is shared, not copied.
//!
//! ## How the shared object is made
//!
//! PMDK's consumers are linked `BIND_NOW` against versioned names
//! (`pmem_map_file@@LIBPMEM_1.0`): the replacement must carry exactly that
//! version node, or the loader warns ("no version information available")
//! or refuses it. That needs a linker version script. rustc already passes
//! its own version script when it links a `cdylib`, and a second one
//! conflicts (GNU ld refuses two; rust-lld keeps rustc's). So this crate
//! is built as a `staticlib`, and the Makefile links the archive into
//! `libpmem.so.1` with the C compiler:
//!
//! ```text
//! cc -shared -Wl,-soname,libpmem.so.1 -Wl,--version-script=pmdk-compat/libpmem.map \
//!    -Wl,-z,now -Wl,--gc-sections -Wl,-u,pmem_map_file ... libpmdk_compat.a -lpthread ...
//! ```
//!
//! One script, ours (`libpmem.map`: the 23 names under `LIBPMEM_1.0`,
//! `local: *` for everything else), works with either linker. The other
//! way seen to work, a wrapper that rewrites rustc's linker command line,
//! depends on the form of that command line, which is not a stable
//! interface. `-u` names each export so the linker keeps it from the
//! archive; `--gc-sections` drops what they do not reach.
//!
//! ## Where PMDK's contract and pmem-sys's differ
//!
//! This layer follows PMDK (see `README.md` in this folder for the list):
//! `pmem_map_file` truncates with `PMEM_FILE_CREATE`; `pmem_is_pmem` is 1
//! only on MAP_SYNC and device-DAX mappings of this library; stores to
//! memory whose file refused MAP_SYNC are flushed and fenced (PMDK
//! programs msync such memory themselves), not msynced by the drain.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod autoflush;
mod env;
mod errormsg;
mod map;
mod ranges;
mod version;

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// PMDK's `PMEM_F_MEM_*` flags have the values of the engine's per-call
/// flags (NODRAIN 1, NONTEMPORAL 2, TEMPORAL 4, WC 8, WB 16, NOFLUSH 32),
/// so they are the engine's constants.
pub use pmem_sys::{F_NODRAIN, F_NOFLUSH, F_NONTEMPORAL, F_TEMPORAL, F_WB, F_WC};
/// Every flag PMDK 1.12 defines. Other bits are accepted and ignored, as
/// PMDK's release builds do.
pub const F_VALID: u32 = pmem_sys::F_ALL;

static READY: AtomicBool = AtomicBool::new(false);
/// `PMEM_NO_FLUSH=1`: never write back.
static NO_FLUSH: AtomicBool = AtomicBool::new(false);
/// `PMEM_IS_PMEM_FORCE`: 0 unset, 1 never, 2 always.
static IS_PMEM_FORCE: AtomicU8 = AtomicU8::new(0);

/// Reads PMDK's environment variables once, before the engine's first
/// use by this layer (PMDK reads them when it is loaded).
#[inline(always)]
fn init() {
    if !READY.load(Ordering::Acquire) {
        init_slow();
    }
}

#[cold]
#[inline(never)]
fn init_slow() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = catch_unwind(|| {
            let saved = errormsg::errno();
            let plan = env::plan(|n| std::env::var(n).ok());
            for (name, value) in &plan.knobs {
                // The plan only produces well-formed values of known knobs.
                let _ = pmem_sys::engine::knobs::set_option(name, Some(value));
            }
            NO_FLUSH.store(plan.no_flush, Ordering::Relaxed);
            let force = match plan.is_pmem_force {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            };
            IS_PMEM_FORCE.store(force, Ordering::Relaxed);
            errormsg::set_errno(saved);
        });
        READY.store(true, Ordering::Release);
    });
}

/// Runs a fallible entry point: a panic (a bug) becomes an error with
/// `errno` EIO rather than unwinding into C.
fn guarded<T>(call: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    init();
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        errormsg::fail(&pmem_sys::Error::new(
            libc::EIO,
            call,
            "-",
            "internal error (a panic in pmem-sys); please report it",
        ));
        fallback
    })
}

/// Unmaps a piece of a mapping pmem-sys's registry holds, keeping the rest
/// registered.
fn registry_unmap(
    _registry_start: usize,
    piece: std::ops::Range<usize>,
) -> Result<(), pmem_sys::Error> {
    pmem_sys::mapping::unmap_range(piece.start, piece.end)
}

// ---------------------------------------------------------------------
// Stores. Hot paths: no allocation, no lock, panic-free by construction.

/// The drain: the engine's fence, plus the msync of page-granular ranges
/// only when such mappings exist (see [`map::PAGE_MAPPINGS`]).
#[inline(always)]
fn drain() {
    if map::PAGE_MAPPINGS.load(Ordering::Relaxed) || pmem_sys::record::on() {
        drain_slow();
    } else {
        // SAFETY: the fence has no preconditions.
        unsafe { (pmem_sys::engine::ops().fence)() };
    }
}

/// [`drain`] with msyncs or crash-test recording, out of line so the
/// fast path keeps nothing live across the fence (no register saved).
#[inline(never)]
fn drain_slow() {
    if map::PAGE_MAPPINGS.load(Ordering::Relaxed) {
        pmem_sys::wmb_pmem();
    } else {
        let _rec = pmem_sys::record::fence(pmem_sys::record::Call::WmbPmem);
        // SAFETY: the fence has no preconditions.
        unsafe { (pmem_sys::engine::ops().fence)() };
    }
}

/// The flags that choose the stores (everything but NODRAIN).
const F_STORE_KIND: u32 = F_NONTEMPORAL | F_TEMPORAL | F_WC | F_WB | F_NOFLUSH;

/// The copy behind every memmove/memcpy form: PMDK's `pmem_memcpy*` is a
/// memmove too, so overlapping ranges are safe through either name (the
/// engine's move is its copy when the ranges do not overlap). Flags go to
/// the engine (unknown bits masked off, as PMDK ignores them);
/// `PMEM_NO_FLUSH=1` adds NOFLUSH; the drain is this layer's ([`drain`]).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn store_move(dst: *mut c_void, src: *const c_void, n: usize, flags: u32) -> *mut c_void {
    init();
    let flags = flags & F_VALID;
    let (d, s) = (dst.cast::<u8>(), src.cast::<u8>());
    if n != 0 {
        let no_flush = if NO_FLUSH.load(Ordering::Relaxed) {
            F_NOFLUSH
        } else {
            0
        };
        if (flags | no_flush) & F_STORE_KIND == 0 {
            // SAFETY: the caller's contract.
            unsafe { pmem_sys::memmove_to_pmem(d, s, n) };
        } else {
            // With NODRAIN the engine reports nothing (only a drain can fail).
            // SAFETY: the caller's contract.
            let _ = unsafe {
                pmem_sys::memmove_flags_unchecked_bits(d, s, n, flags | no_flush | F_NODRAIN)
            };
        }
    }
    if flags & (F_NODRAIN | F_NOFLUSH) == 0 {
        drain();
    }
    dst
}

/// The fill behind every memset form, as [`store_move`].
///
/// # Safety
/// `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn store_set(dst: *mut c_void, c: c_int, n: usize, flags: u32) -> *mut c_void {
    init();
    let flags = flags & F_VALID;
    let d = dst.cast::<u8>();
    if n != 0 {
        let no_flush = if NO_FLUSH.load(Ordering::Relaxed) {
            F_NOFLUSH
        } else {
            0
        };
        if (flags | no_flush) & F_STORE_KIND == 0 {
            // SAFETY: the caller's contract.
            unsafe { pmem_sys::memset_pmem(d, c as u8, n) };
        } else {
            // SAFETY: the caller's contract.
            let _ = unsafe {
                pmem_sys::memset_flags_unchecked_bits(d, c as u8, n, flags | no_flush | F_NODRAIN)
            };
        }
    }
    if flags & (F_NODRAIN | F_NOFLUSH) == 0 {
        drain();
    }
    dst
}

/// Copies `len` bytes (overlap allowed), flushes and drains.
///
/// # Safety
/// As memmove(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memmove_persist(
    dst: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_move(dst, src, len, 0) }
}

/// Copies `len` bytes, flushes and drains.
///
/// # Safety
/// As memcpy(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memcpy_persist(
    dst: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_move(dst, src, len, 0) }
}

/// Fills `len` bytes, flushes and drains.
///
/// # Safety
/// As memset(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memset_persist(
    dst: *mut c_void,
    c: c_int,
    len: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_set(dst, c, len, 0) }
}

/// Copies `len` bytes (overlap allowed) and flushes; no drain.
///
/// # Safety
/// As memmove(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memmove_nodrain(
    dst: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_move(dst, src, len, F_NODRAIN) }
}

/// Copies `len` bytes and flushes; no drain.
///
/// # Safety
/// As memcpy(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memcpy_nodrain(
    dst: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_move(dst, src, len, F_NODRAIN) }
}

/// Fills `len` bytes and flushes; no drain.
///
/// # Safety
/// As memset(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memset_nodrain(
    dst: *mut c_void,
    c: c_int,
    len: usize,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_set(dst, c, len, F_NODRAIN) }
}

/// Copies with PMEM_F_MEM_* flags.
///
/// # Safety
/// As memmove(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memmove(
    dst: *mut c_void,
    src: *const c_void,
    len: usize,
    flags: c_uint,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_move(dst, src, len, flags) }
}

/// Copies with PMEM_F_MEM_* flags.
///
/// # Safety
/// As memcpy(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memcpy(
    dst: *mut c_void,
    src: *const c_void,
    len: usize,
    flags: c_uint,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_move(dst, src, len, flags) }
}

/// Fills with PMEM_F_MEM_* flags.
///
/// # Safety
/// As memset(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memset(
    dst: *mut c_void,
    c: c_int,
    len: usize,
    flags: c_uint,
) -> *mut c_void {
    // SAFETY: the caller's contract.
    unsafe { store_set(dst, c, len, flags) }
}

/// Writes back `[addr, addr + len)` and drains.
///
/// # Safety
/// The range is mapped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_persist(addr: *const c_void, len: usize) {
    if !READY.load(Ordering::Acquire)
        || NO_FLUSH.load(Ordering::Relaxed)
        || map::PAGE_MAPPINGS.load(Ordering::Relaxed)
    {
        // SAFETY: the caller's contract.
        return unsafe { persist_slow(addr, len) };
    }
    // Write back (nothing on byte-granular memory), then fence.
    // SAFETY: the caller's contract.
    unsafe { pmem_sys::arch_wb_cache_pmem(addr.cast(), len) };
    drain();
}

/// [`pmem_persist`] before the first initialisation, under
/// `PMEM_NO_FLUSH=1` or with page-granular mappings, out of line: the
/// common path then saves no register before its write-back (stack
/// stores there queue behind the caller's cold-line stores; see
/// BENCHMARKS.md).
///
/// # Safety
/// As [`pmem_persist`].
#[inline(never)]
unsafe fn persist_slow(addr: *const c_void, len: usize) {
    init();
    if NO_FLUSH.load(Ordering::Relaxed) {
        drain();
    } else if map::PAGE_MAPPINGS.load(Ordering::Relaxed) {
        // void, as in PMDK: an msync error of a forced page-granular
        // mapping has nowhere to go.
        // SAFETY: the caller's contract.
        let _ = unsafe { pmem_sys::persist(addr.cast(), len) };
    } else {
        // The common path, on the first call.
        // SAFETY: the caller's contract.
        unsafe { pmem_sys::arch_wb_cache_pmem(addr.cast(), len) };
        drain();
    }
}

/// Writes back `[addr, addr + len)`; no drain.
///
/// # Safety
/// The range is mapped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_flush(addr: *const c_void, len: usize) {
    init();
    if !NO_FLUSH.load(Ordering::Relaxed) {
        // SAFETY: the caller's contract.
        unsafe { pmem_sys::arch_wb_cache_pmem(addr.cast(), len) };
    }
}

/// Waits for earlier flushes and non-temporal stores of this thread.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_drain() {
    init();
    drain();
}

/// Writes back `[addr, addr + len)` whatever the platform (even eADR or
/// `PMEM_NO_FLUSH=1`); no drain.
///
/// # Safety
/// The range is mapped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_deep_flush(addr: *const c_void, len: usize) {
    init();
    if len != 0 {
        let _rec =
            pmem_sys::record::write_back(pmem_sys::record::Call::DeepFlush, addr.cast(), len);
        // SAFETY: the caller's contract.
        unsafe { (pmem_sys::engine::ops().flush)(addr.cast(), len) };
    }
}

/// Makes `[addr, addr + len)` durable beyond the persistence domain:
/// device-DAX: drain, then the region's `deep_flush`; elsewhere msync.
/// 0, or -1 with errno.
///
/// # Safety
/// The range is mapped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_deep_drain(addr: *const c_void, len: usize) -> c_int {
    guarded("pmem_deep_drain", -1, || {
        match map::deep_drain(addr as usize, len) {
            Ok(()) => 0,
            Err(e) => {
                errormsg::fail(&e);
                -1
            }
        }
    })
}

/// `pmem_deep_flush` then `pmem_deep_drain`.
///
/// # Safety
/// The range is mapped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_deep_persist(addr: *const c_void, len: usize) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        pmem_deep_flush(addr, len);
        pmem_deep_drain(addr, len)
    }
}

/// msync of the pages holding the range: 0, or -1 with errno.
///
/// # Safety
/// None beyond msync(2)'s: the kernel checks the range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_msync(addr: *const c_void, len: usize) -> c_int {
    guarded("pmem_msync", -1, || match map::msync(addr as usize, len) {
        Ok(()) => 0,
        Err(e) => {
            errormsg::fail(&e);
            -1
        }
    })
}

/// 1 when every nvdimm region flushes CPU caches on power loss, 0 when
/// not (or there is none), -1 on error.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_has_auto_flush() -> c_int {
    guarded("pmem_has_auto_flush", -1, || {
        autoflush::has_auto_flush(pmem_sys::knobs::current().sysfs_root())
    })
}

/// Always 0: no x86 platform drains in hardware (PMDK says the same).
#[unsafe(no_mangle)]
pub extern "C" fn pmem_has_hw_drain() -> c_int {
    0
}

/// 1 when the whole range lies in MAP_SYNC or device-DAX mappings made by
/// `pmem_map_file`; `PMEM_IS_PMEM_FORCE` overrides (but a length of 0 is
/// always 0).
///
/// # Safety
/// None: the range is not accessed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_is_pmem(addr: *const c_void, len: usize) -> c_int {
    guarded("pmem_is_pmem", 0, || {
        // Crash-test recording: libpmemobj maps its pool itself and asks
        // here first; record that mapping from now on (one load when off).
        pmem_sys::record::adopt(addr as usize, len);
        match IS_PMEM_FORCE.load(Ordering::Relaxed) {
            1 => 0,
            // Forced on, an empty range is still not persistent memory (PMDK).
            2 => c_int::from(len != 0),
            _ => c_int::from(map::is_pmem(addr as usize, len)),
        }
    })
}

/// Opens (or creates) and maps a file; NULL with errno on refusal.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `mapped_lenp` and
/// `is_pmemp` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_map_file(
    path: *const c_char,
    len: usize,
    flags: c_int,
    mode: libc::mode_t,
    mapped_lenp: *mut usize,
    is_pmemp: *mut c_int,
) -> *mut c_void {
    guarded("pmem_map_file", std::ptr::null_mut(), || {
        let saved = errormsg::errno();
        if path.is_null() {
            errormsg::fail(&pmem_sys::Error::new(
                libc::EINVAL,
                "pmem_map_file",
                "path NULL",
                "a path is required",
            ));
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract: a NUL-terminated string.
        let path = unsafe { CStr::from_ptr(path) };
        match map::map_file(path, len, flags, mode) {
            Ok(m) => {
                // SAFETY: the caller's contract on the out-pointers.
                unsafe {
                    if !mapped_lenp.is_null() {
                        *mapped_lenp = m.len;
                    }
                    if !is_pmemp.is_null() {
                        *is_pmemp = pmem_is_pmem(m.addr as *const c_void, m.len);
                    }
                }
                // What PMDK leaves: the errno of the refused MAP_SYNC
                // attempt when it fell back, else what the caller had.
                errormsg::set_errno(m.sync_errno.unwrap_or(saved));
                m.addr as *mut c_void
            }
            Err(e) => {
                errormsg::fail(&e);
                std::ptr::null_mut()
            }
        }
    })
}

/// Unmaps `[addr, addr + len)` as munmap(2) does, also from part of a
/// mapping; 0, or -1 with errno.
///
/// # Safety
/// Nothing in the range is used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_unmap(addr: *mut c_void, len: usize) -> c_int {
    guarded("pmem_unmap", -1, || match map::unmap(addr as usize, len) {
        Ok(()) => 0,
        Err(e) => {
            errormsg::fail(&e);
            -1
        }
    })
}

/// NULL when a caller built for `major.minor` can use this library, else
/// a message (also `pmem_errormsg()`).
#[unsafe(no_mangle)]
pub extern "C" fn pmem_check_version(major: c_uint, minor: c_uint) -> *const c_char {
    guarded(
        "pmem_check_version",
        errormsg::ptr(),
        || match version::check(major, minor) {
            None => std::ptr::null(),
            Some(m) => {
                errormsg::set(&m);
                errormsg::ptr()
            }
        },
    )
}

/// The calling thread's last error message; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_errormsg() -> *const c_char {
    errormsg::ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PMDK's variables reach the engine's knobs when the layer starts
    /// (the only test here that calls `init`, so it sees the first call).
    #[test]
    fn pmdk_environment_sets_the_engines_knobs() {
        // SAFETY: no other test of this binary reads or writes these
        // variables, and none starts a thread that reads the environment.
        unsafe {
            std::env::set_var("PMEM_NO_CLWB", "1");
            std::env::set_var("PMEM_MOVNT_THRESHOLD", "4096");
            std::env::set_var("PMEM_NO_FLUSH", "1");
            std::env::set_var("PMEM_IS_PMEM_FORCE", "1");
        }
        init();
        let k = pmem_sys::knobs::current();
        assert!(k.no_clwb, "PMEM_NO_CLWB=1 -> PMEM_SYS_NO_CLWB=1");
        assert_eq!(k.movnt_threshold, Some(4096));
        assert_eq!(pmem_sys::engine::movnt_threshold(), 4096);
        assert!(
            !pmem_sys::implementation().contains("clwb"),
            "{}",
            pmem_sys::implementation()
        );
        assert!(NO_FLUSH.load(Ordering::Relaxed));
        assert_eq!(IS_PMEM_FORCE.load(Ordering::Relaxed), 2);
        let x = 0u64;
        // SAFETY: pmem_is_pmem does not access the range.
        assert_eq!(unsafe { pmem_is_pmem((&raw const x).cast(), 8) }, 1);
    }

    /// The flags are the engine's constants (re-exported), so this checks
    /// that the engine's values are PMDK's.
    #[test]
    fn flag_values_are_pmdks() {
        assert_eq!(
            [F_NODRAIN, F_NONTEMPORAL, F_TEMPORAL, F_WC, F_WB, F_NOFLUSH],
            [1, 2, 4, 8, 16, 32]
        );
        assert_eq!(F_VALID, 63);
        assert_eq!(
            [
                map::FILE_CREATE,
                map::FILE_EXCL,
                map::FILE_SPARSE,
                map::FILE_TMPFILE
            ],
            [1, 2, 4, 8]
        );
    }
}
