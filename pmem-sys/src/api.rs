//! The kernel's pmem API as Rust functions, with the mapping-aware routing
//! that makes it honest on every file: cache-line memory is flushed,
//! byte-granular (eADR) memory is not, and page-granular memory is
//! remembered and msynced by [`wmb_pmem`].

#![allow(unsafe_code)]

use crate::Error;
use crate::arch::Half;
use crate::engine::{self, Ops, ops};
use crate::mapping::{self, Granularity, Route, dirty};
use crate::record::{self, Call, Src};

/// Per-call flag: do not drain (no fence, no msync) after the store; a
/// later [`drain`] or [`wmb_pmem`] does it. PMDK's `PMEM_F_MEM_NODRAIN`.
pub const F_NODRAIN: u32 = 1;
/// Per-call flag: non-temporal stores for every whole cache line, and for
/// the aligned words of partial lines, whatever the size (the threshold is
/// ignored). No effect in a temporal table (`PMEM_SYS_NO_MOVNT=1`). Wins
/// over [`F_TEMPORAL`]. PMDK's `PMEM_F_MEM_NONTEMPORAL`.
pub const F_NONTEMPORAL: u32 = 2;
/// Per-call flag: ordinary stores only, whatever the size, each line
/// written back. PMDK's `PMEM_F_MEM_TEMPORAL`.
pub const F_TEMPORAL: u32 = 4;
/// Per-call flag: as [`F_NONTEMPORAL`] (write-combining). PMDK's
/// `PMEM_F_MEM_WC`.
pub const F_WC: u32 = 8;
/// Per-call flag: as [`F_TEMPORAL`] (write-back). PMDK's `PMEM_F_MEM_WB`.
pub const F_WB: u32 = 16;
/// Per-call flag: no write-back instruction and no drain: the data is
/// stored (non-temporally only with [`F_NONTEMPORAL`]/[`F_WC`] or above the
/// no-flush threshold) and left for a later flush or persist of the range.
/// Page-granular ranges are not remembered for [`wmb_pmem`]'s msync either.
/// PMDK's `PMEM_F_MEM_NOFLUSH`.
pub const F_NOFLUSH: u32 = 32;
/// Every defined per-call flag.
pub const F_ALL: u32 = F_NODRAIN | F_NONTEMPORAL | F_TEMPORAL | F_WC | F_WB | F_NOFLUSH;

/// One store operation of a [`Half`], as a type, so that the routing
/// below is written once and each operation's path compiles to direct
/// jumps (no closure to pass by reference, hence tail calls). `s` is the
/// source address for a copy or a move, the byte for a fill.
trait Store {
    /// # Safety
    /// `h`'s operation is safe on `[d, d + n)` with source `s`.
    unsafe fn run(h: &Half, d: *mut u8, s: usize, n: usize, nt_from: usize);
}

struct CopyOp;
struct MoveOp;
struct SetOp;

impl Store for CopyOp {
    /// # Safety
    /// The contract of [`Store::run`].
    #[inline(always)]
    unsafe fn run(h: &Half, d: *mut u8, s: usize, n: usize, nt_from: usize) {
        // SAFETY: the caller's contract.
        unsafe { (h.copy)(d, s as *const u8, n, nt_from) }
    }
}

impl Store for MoveOp {
    /// # Safety
    /// The contract of [`Store::run`].
    #[inline(always)]
    unsafe fn run(h: &Half, d: *mut u8, s: usize, n: usize, nt_from: usize) {
        // Disjoint ranges (nearly every move) take the copy leaf: it needs
        // no stack frame, where the move leaf's overlapping path saves six
        // registers on entry, and those stores queue behind the copy's own
        // stores to cold lines (BENCHMARKS.md, the ABI rows after caa9bca).
        if (d as usize).abs_diff(s) >= n {
            // SAFETY: the caller's contract; the ranges do not overlap.
            unsafe { (h.copy)(d, s as *const u8, n, nt_from) }
        } else {
            // SAFETY: the caller's contract.
            unsafe { (h.r#move)(d, s as *const u8, n, nt_from) }
        }
    }
}

impl Store for SetOp {
    /// # Safety
    /// The contract of [`Store::run`].
    #[inline(always)]
    unsafe fn run(h: &Half, d: *mut u8, s: usize, n: usize, nt_from: usize) {
        // SAFETY: the caller's contract.
        unsafe { (h.set)(d, s as u8, n, nt_from) }
    }
}

/// Runs store `S` with the half of snapshot `t` that `[dst, dst + n)`
/// needs, choosing once. While no byte- or page-granular mapping exists
/// (the common case) that is one load and a tail call to the flushing
/// leaf; otherwise [`routed`], out of line.
///
/// # Safety
/// `S` is safe to run with either half of `t` on `[dst, dst + n)`.
#[inline(always)]
unsafe fn store<S: Store>(t: &'static Ops, dst: *mut u8, s: usize, n: usize) {
    if mapping::no_special_mappings() {
        // SAFETY: the caller's contract.
        return unsafe { S::run(&t.flushing, dst, s, n, t.selection.threshold) };
    }
    // SAFETY: the caller's contract.
    unsafe { routed::<S>(t, dst, s, n, None) }
}

/// The lookup: the flushing half for cache-line memory and memory this
/// library did not map (a tail call), the no-flush half for byte- and
/// page-granular mappings, whose range is then remembered for
/// `wmb_pmem`'s msync. `nt_from` forces a non-temporal threshold (the
/// per-call flags); `None` takes the half's own.
///
/// # Safety
/// As [`store`].
#[inline(never)]
unsafe fn routed<S: Store>(
    t: &'static Ops,
    dst: *mut u8,
    s: usize,
    n: usize,
    nt_from: Option<usize>,
) {
    let flushing_nt_from = nt_from.unwrap_or(t.selection.threshold);
    match mapping::route(dst as usize, n) {
        // SAFETY: the caller's contract.
        Route::WriteBack => unsafe { S::run(&t.flushing, dst, s, n, flushing_nt_from) },
        Route::Special(g) => {
            // SAFETY: the caller's contract.
            unsafe {
                S::run(
                    &t.noflush,
                    dst,
                    s,
                    n,
                    nt_from.unwrap_or(t.noflush_threshold),
                )
            };
            if g == Granularity::Page {
                dirty::record(dst as usize, n);
            }
        }
        Route::Mixed => {
            // SAFETY: the caller's contract.
            unsafe { S::run(&t.flushing, dst, s, n, flushing_nt_from) };
            dirty::record(dst as usize, n);
        }
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
    record::store_call(Call::MemcpyToPmem, dst, Src::Bytes(src), n, true);
    // SAFETY: the caller's contract, for either half.
    unsafe { store::<CopyOp>(ops(), dst, src as usize, n) }
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
    record::store_call(Call::MemmoveToPmem, dst, Src::Bytes(src), n, true);
    // SAFETY: the caller's contract, for either half.
    unsafe { store::<MoveOp>(ops(), dst, src as usize, n) }
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
    record::store_call(Call::MemsetPmem, dst, Src::Fill(c), n, true);
    // SAFETY: the caller's contract, for either half.
    unsafe { store::<SetOp>(ops(), dst, c as usize, n) }
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

/// The `EINVAL` of a flags argument with bits this library does not define.
#[inline(always)]
fn check_flags(call: &str, flags: u32) -> Result<(), Error> {
    if flags & !F_ALL == 0 {
        Ok(())
    } else {
        Err(unknown_flags(call, flags))
    }
}

/// [`check_flags`]'s error, out of line: formatted in the caller, it gave
/// every flags call a large stack frame and register saves on its fast
/// path.
#[cold]
#[inline(never)]
fn unknown_flags(call: &str, flags: u32) -> Error {
    Error::new(
        libc::EINVAL,
        call,
        format_args!("flags {flags:#x}"),
        format_args!(
            "unknown bits {:#x} (defined: NODRAIN 1, NONTEMPORAL 2, TEMPORAL 4, WC 8, WB 16, NOFLUSH 32)",
            flags & !F_ALL
        ),
    )
}

/// The non-temporal threshold the flags force, if any.
#[inline(always)]
fn forced_nt_from(flags: u32) -> Option<usize> {
    if flags & (F_NONTEMPORAL | F_WC) != 0 {
        Some(0)
    } else if flags & (F_TEMPORAL | F_WB) != 0 {
        Some(usize::MAX)
    } else {
        None
    }
}

/// A store with per-call flags, every defined bit honoured and any other
/// bit ignored; then the drain unless NODRAIN or NOFLUSH. Inlined into
/// each flags call (and across crates into `libpmem.so.1`'s), with the
/// same one-load fast path as [`store`].
///
/// # Safety
/// `S` is safe to run with either half of the snapshot on `[dst, dst + n)`.
#[inline(always)]
unsafe fn store_flags<S: Store>(dst: *mut u8, s: usize, n: usize, flags: u32) -> Result<(), Error> {
    let t = engine::resolved();
    if n != 0 {
        let forced = forced_nt_from(flags);
        if flags & F_NOFLUSH != 0 {
            let nt_from = forced.unwrap_or(t.noflush_threshold);
            // SAFETY: the caller's contract.
            unsafe { S::run(&t.noflush, dst, s, n, nt_from) };
            return Ok(());
        }
        if mapping::no_special_mappings() {
            let nt_from = forced.unwrap_or(t.selection.threshold);
            // SAFETY: the caller's contract.
            unsafe { S::run(&t.flushing, dst, s, n, nt_from) };
        } else {
            // SAFETY: the caller's contract.
            unsafe { routed::<S>(t, dst, s, n, forced) };
        }
    }
    if flags & (F_NODRAIN | F_NOFLUSH) != 0 {
        Ok(())
    } else {
        drain()
    }
}

/// [`memcpy_to_pmem`] with per-call flags ([`F_NODRAIN`], [`F_NONTEMPORAL`],
/// [`F_TEMPORAL`], [`F_WC`], [`F_WB`], [`F_NOFLUSH`]); drains (fence, and
/// msync of page-granular ranges) unless NODRAIN or NOFLUSH. `Err` with
/// `EINVAL` for an undefined flag bit (nothing is stored), or the drain's
/// msync error.
///
/// # Safety
/// As [`memcpy_to_pmem`].
pub unsafe fn memcpy_flags(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    flags: u32,
) -> Result<(), Error> {
    check_flags("pmem_sys_memcpy_flags", flags)?;
    // SAFETY: the caller's contract.
    unsafe { memcpy_flags_unchecked_bits(dst, src, n, flags) }
}

/// [`memcpy_flags`] ignoring undefined flag bits, as PMDK does (for the
/// compatibility layer).
///
/// # Safety
/// As [`memcpy_to_pmem`].
#[inline]
pub unsafe fn memcpy_flags_unchecked_bits(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    flags: u32,
) -> Result<(), Error> {
    record::store_flags_call(Call::MemcpyFlags, dst, Src::Bytes(src), n, flags);
    // SAFETY: the caller's contract, for either half.
    unsafe { store_flags::<CopyOp>(dst, src as usize, n, flags) }
}

/// [`memmove_to_pmem`] with per-call flags, as [`memcpy_flags`].
///
/// # Safety
/// As [`memmove_to_pmem`].
pub unsafe fn memmove_flags(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    flags: u32,
) -> Result<(), Error> {
    check_flags("pmem_sys_memmove_flags", flags)?;
    // SAFETY: the caller's contract.
    unsafe { memmove_flags_unchecked_bits(dst, src, n, flags) }
}

/// [`memmove_flags`] ignoring undefined flag bits.
///
/// # Safety
/// As [`memmove_to_pmem`].
#[inline]
pub unsafe fn memmove_flags_unchecked_bits(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    flags: u32,
) -> Result<(), Error> {
    record::store_flags_call(Call::MemmoveFlags, dst, Src::Bytes(src), n, flags);
    // SAFETY: the caller's contract, for either half.
    unsafe { store_flags::<MoveOp>(dst, src as usize, n, flags) }
}

/// [`memset_pmem`] with per-call flags, as [`memcpy_flags`].
///
/// # Safety
/// As [`memset_pmem`].
pub unsafe fn memset_flags(dst: *mut u8, c: u8, n: usize, flags: u32) -> Result<(), Error> {
    check_flags("pmem_sys_memset_flags", flags)?;
    // SAFETY: the caller's contract.
    unsafe { memset_flags_unchecked_bits(dst, c, n, flags) }
}

/// [`memset_flags`] ignoring undefined flag bits.
///
/// # Safety
/// As [`memset_pmem`].
#[inline]
pub unsafe fn memset_flags_unchecked_bits(
    dst: *mut u8,
    c: u8,
    n: usize,
    flags: u32,
) -> Result<(), Error> {
    record::store_flags_call(Call::MemsetFlags, dst, Src::Fill(c), n, flags);
    // SAFETY: the caller's contract, for either half.
    unsafe { store_flags::<SetOp>(dst, c as usize, n, flags) }
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
    if record::on() || !mapping::no_special_mappings() {
        // SAFETY: the caller's contract.
        return unsafe { wb_cache_routed(addr, n) };
    }
    // SAFETY: the caller's contract.
    unsafe { (ops().flush)(addr, n) }
}

/// [`arch_wb_cache_pmem`] when recording or when byte- or page-granular
/// mappings exist: out of line, so the common path is two loads and a
/// tail call (no register saved before the caller's fence).
///
/// # Safety
/// As [`arch_wb_cache_pmem`].
#[inline(never)]
unsafe fn wb_cache_routed(addr: *const u8, n: usize) {
    drop(record::write_back(Call::ArchWbCachePmem, addr, n));
    let route = mapping::route(addr as usize, n);
    if matches!(route, Route::WriteBack | Route::Mixed) {
        // SAFETY: the caller's contract.
        unsafe { (ops().flush)(addr, n) };
    }
    if matches!(route, Route::Special(Granularity::Page) | Route::Mixed) {
        dirty::record(addr as usize, n);
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
    drop(record::write_back(Call::ArchInvalidatePmem, addr, n));
    if matches!(
        mapping::route(addr as usize, n),
        Route::Special(Granularity::Page) | Route::Mixed
    ) {
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
    if unsafe { copy_mc(dst, src, n) } == 0 {
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
    // SAFETY: the caller's contract; the snapshot's routine runs on this CPU.
    unsafe { crate::fault::copy_mc(&ops().guarded, dst, src, n) }
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
    match unsafe { copy_mc(dst, src, n) } {
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
    record::store_call(Call::MemcpyToPmemChecked, dst, Src::Bytes(src), n, true);
    // SAFETY: the caller's contract.
    unsafe { copy_checked(dst, src, n) }
        .map_err(|off| bus_error("memcpy_to_pmem_checked", "dst", dst, off, n))
}

/// The checked copy: `Err(offset)` where it stopped.
///
/// # Safety
/// As [`memcpy_to_pmem_checked`].
pub(crate) unsafe fn copy_checked(dst: *mut u8, src: *const u8, n: usize) -> Result<(), usize> {
    let t = engine::resolved();
    // SAFETY: the caller's contract; the closure stores as
    // `memcpy_to_pmem` does, with the same snapshot as the probes.
    unsafe {
        crate::fault::copy_checked(&t.guarded, dst, src, n, |d, s, len| {
            routed::<CopyOp>(t, d, s as usize, len, None)
        })
    }
}

/// [`memset_pmem`] that survives a faulting destination, as
/// [`memcpy_to_pmem_checked`]: `Err` with errno `EIO` naming the offset
/// where the fill stopped, every byte before it filled.
///
/// # Safety
/// `dst` writable for `n` bytes, except for pages that raise `SIGBUS`.
pub unsafe fn memset_pmem_checked(dst: *mut u8, c: u8, n: usize) -> Result<(), Error> {
    record::store_call(Call::MemsetPmemChecked, dst, Src::Fill(c), n, true);
    let t = engine::resolved();
    // SAFETY: the caller's contract; the closure fills as `memset_pmem`
    // does, with the same snapshot as the probes.
    unsafe {
        crate::fault::set_checked(&t.guarded, dst, c, n, |d, c, len| {
            routed::<SetOp>(t, d, c as usize, len, None)
        })
    }
    .map_err(|off| bus_error("memset_pmem_checked", "dst", dst, off, n))
}

/// The fence: makes every earlier `memcpy_to_pmem`, `clear_pmem`,
/// `memset_pmem`, `memmove_to_pmem` and `arch_wb_cache_pmem` of the calling
/// thread durable (msyncing page-granular ranges). An msync failure is kept
/// for [`drain`] and [`persist`].
#[inline]
pub fn wmb_pmem() {
    drop(record::fence(Call::WmbPmem));
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
    drop(record::persist(Call::Persist, addr, n));
    let pending = dirty::take_pending();
    let t = ops();
    let route = mapping::route(addr as usize, n);
    let now = match route {
        Route::Special(Granularity::Page) if n != 0 => {
            mapping::msync_range("pmem_sys_persist", addr as usize, n)
        }
        Route::Special(_) => {
            // SAFETY: no preconditions.
            unsafe { (t.fence)() };
            Ok(())
        }
        Route::WriteBack | Route::Mixed => {
            // SAFETY: the caller's contract; flush and fence come from the
            // same snapshot.
            unsafe {
                (t.flush)(addr, n);
                (t.fence)();
            }
            if route == Route::Mixed {
                mapping::msync_page_parts("pmem_sys_persist", addr as usize, n)
            } else {
                Ok(())
            }
        }
    };
    match pending {
        Some(e) => Err(e),
        None => now,
    }
}

/// Makes `[addr, addr + n)` durable beyond the memory controller's queues:
/// writes the lines back (on cache-line-granular memory), fences, and
/// then, on a device-DAX mapping whose nvdimm region has a `deep_flush`
/// attribute in sysfs (under `PMEM_SYS_SYSFS_ROOT`), writes `1` to it;
/// otherwise msyncs the page-rounded range (for a file on a DAX
/// filesystem the kernel then flushes the region too). `Err` with the
/// errno of the failed write or msync. Slow (a system call): for rare
/// points such as the end of a checkpoint.
///
/// # Safety
/// `addr` is mapped for `n` bytes.
pub unsafe fn deep_flush(addr: *const u8, n: usize) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    unsafe { deep("pmem_sys_deep_flush", addr, n) }
}

/// [`deep_flush`], also reporting an msync failure a void [`wmb_pmem`] of
/// this thread recorded (as [`persist`] does).
///
/// # Safety
/// `addr` is mapped for `n` bytes.
pub unsafe fn deep_persist(addr: *const u8, n: usize) -> Result<(), Error> {
    let pending = dirty::take_pending();
    // SAFETY: the caller's contract.
    let now = unsafe { deep("pmem_sys_deep_persist", addr, n) };
    match pending {
        Some(e) => Err(e),
        None => now,
    }
}

/// # Safety
/// `addr` is mapped for `n` bytes.
unsafe fn deep(call: &str, addr: *const u8, n: usize) -> Result<(), Error> {
    drop(record::persist(Call::DeepFlush, addr, n));
    let t = ops();
    // SAFETY: the caller's contract; flush and fence from one snapshot.
    unsafe {
        if n != 0 && !matches!(mapping::route(addr as usize, n), Route::Special(_)) {
            (t.flush)(addr, n);
        }
        (t.fence)();
    }
    mapping::deep_sync(call, addr as usize, n)
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
