//! Fault-safe copies: reads (and checked writes) that report a bus error
//! as `EIO` instead of killing the process.
//!
//! ## Why
//!
//! Loading a poisoned line of persistent memory raises a machine check,
//! which Linux turns into `SIGBUS` (`BUS_MCEERR_AR`) for the thread that
//! consumed it. On any shared file mapping, a page past the end of a file
//! that another process truncated raises `SIGBUS` (`BUS_ADRERR`) on the
//! next access. Both kill the program, and from Python they kill the
//! interpreter. The kernel's answer for its own copies is `copy_mc` (once
//! `memcpy_mcsafe`); PMDK's only answer is to read through `pread`.
//!
//! ## How: an exception table in user space
//!
//! The copy runs in a routine written in assembly (`x86_64.rs`) whose
//! memory-touching instructions lie in known address ranges, each with a
//! recovery point inside the same routine that ends up returning the bytes
//! not copied. A `SIGBUS` handler, installed once by the first guarded
//! call, looks at the instruction pointer saved in the signal frame: if it
//! lies in a guarded range and the signal is a synchronous fault, the
//! handler rewrites the saved instruction pointer to that range's recovery
//! point and returns. The kernel resumes the thread there, the routine
//! returns normally, and no Rust frame is ever skipped: no
//! `setjmp`/`longjmp`, no unwinding through foreign frames, no thread-local
//! state.
//!
//! Every other `SIGBUS` goes to the disposition the process had when the
//! handler was installed:
//!
//! - a handler is called as the kernel would call it (with `siginfo` and
//!   context if it asked for `SA_SIGINFO`; the handler's signal mask is
//!   installed with ours, and `SA_RESETHAND` is honoured);
//! - `SIG_DFL`: the default action is restored; a fault then re-executes
//!   the faulting instruction, which faults again and terminates the
//!   process with a core dump exactly as before, and a signal sent by
//!   `kill` or an asynchronous `BUS_MCEERR_AO` is queued again (with its
//!   original `siginfo` where the kernel allows it: on the thread whose id
//!   is the process id);
//! - `SIG_IGN`: a signal sent by a process stays ignored; a fault cannot be
//!   ignored (the kernel forces the default action), so it is treated as
//!   `SIG_DFL`.
//!
//! Apart from calling the previous handler, ours only reads memory written
//! before it was installed, calls `sigaction` and `syscall`, and saves and
//! restores `errno`: it is async-signal-safe. Faults are delivered to the
//! faulting thread with its own signal frame, so concurrent faulting copies
//! need no locking.
//!
//! ## What is fault-safe
//!
//! - `memcpy_from_pmem` and `copy_mc` (C: `pmem_sys_copy_mc`): the whole
//!   copy, source and destination.
//! - `memcpy_to_pmem_checked` (C: `pmem_sys_memcpy_to_pmem_checked`) and
//!   `memset_pmem_checked` (Rust only): a faulting destination; see below
//!   for the one window left on cache-line-granular mappings.
//! - Not fault-safe: `memcpy_to_pmem`, `memmove`, `memset`, `persist`, the
//!   flush calls, and any direct access through a pointer (C), a
//!   `memoryview` or a numpy array (Python). Those fault as plain memory
//!   does, and the process's own `SIGBUS` disposition decides.
//!
//! ## The checked write
//!
//! On **page-granular** mappings (any file outside a DAX mount: where a
//! truncation can happen) and **byte-granular** ones (eADR), durability
//! never depends on non-temporal stores: `wmb_pmem`'s msync, or the
//! visibility of the store, does it. There the checked write is simply the
//! guarded copy (ordinary stores), followed by the same msync bookkeeping
//! as `memcpy_to_pmem`: it is fault-safe from the first byte to the last,
//! with the exact count.
//!
//! On **cache-line-granular** mappings (MAP_SYNC on DAX, device-DAX, and
//! memory this library did not map), the engine's tiers matter: AVX-512,
//! AVX2 and SSE2 non-temporal bodies with written-back edges, chosen with
//! the flush instruction. They are compiled Rust with no recovery point,
//! and rewriting every tier in assembly would duplicate the engine. The
//! checked write there probes the destination: it stores the first 4 bytes
//! of each page with a guarded non-temporal store (a store, so it takes the
//! page fault, if any, where it can be recovered: past the end of the file,
//! or a filesystem that cannot allocate the page), 16 pages at a time, then
//! copies those pages with the ordinary engine call, so every tier, the
//! non-temporal threshold and the knobs apply unchanged. The reported
//! offset is then the start of the faulting page.
//!
//! The trade-off is a residual window there, stated plainly: a page that
//! becomes unbacked *between* its probe and the engine's stores to it (a
//! truncation racing with the write, within the few microseconds one batch
//! of 64 KiB takes) is not caught, and neither is a fault on the *source*
//! beyond the 4 bytes read for each probe; those raise `SIGBUS` through the
//! process's disposition as an unchecked `memcpy_to_pmem` would. Stores do
//! not consume poison, so a media error on the destination shows up on a
//! later read, not here. A guarded assembly body per vector width and flush
//! instruction would close the window at the cost of a second
//! implementation of every tier to keep in step with the engine.
//!
//! ## Limits
//!
//! - Only `SIGBUS` is handled: a copy from an unmapped address still
//!   raises `SIGSEGV`.
//! - The handler is installed lazily, by the first guarded call (or
//!   [`install_handler`]), and from then on the library is never unloaded
//!   (`RTLD_NODELETE`): `dlclose` cannot pull the handler's code away.
//! - A program that installs its own `SIGBUS` handler *after* the first
//!   guarded call must chain to the one it replaces (as the JVM and most
//!   runtimes do), or guarded calls stop being guarded.
//! - A thread that blocks `SIGBUS` cannot recover: the kernel forces the
//!   default action on a blocked synchronous fault.
//! - x86_64 only. Elsewhere the calls are plain copies (`GUARDED` false)
//!   and a fault behaves as without this library.
//!
//! ## Speed
//!
//! `memcpy_from_pmem` is one call to the guarded routine: the vector copy
//! glibc's `memcpy` uses, with the fault handling costing nothing until a
//! fault happens. Measured on the project's 2-vCPU Zen 3 machine, shared
//! and busy (load average 5-8), with `make -C tests/fault bench`: hot
//! caches, source a mapped file, the best of 5 alternating rounds of 15
//! batches; ranges are over 3-5 runs:
//!
//! | size | 64 B | 256 B | 1 KiB | 4 KiB | 16 KiB | 64 KiB | 256 KiB | 1 MiB | 16 MiB |
//! |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
//! | `memcpy`, GB/s | 13.5 | 36.2 | 36.2 | 39.1 | 37.5 | 38.4 | 32 | 27-28 | 3-5.5 |
//! | `memcpy_from_pmem`, GB/s | 7.3 | 23.3 | 31.6 | 38.0 | 36.4 | 38.3 | 32.7 | 24-28 | 3-5.6 |
//! | ratio | 0.54 | 0.64 | 0.87 | 0.96-0.97 | 0.94-0.98 | 0.98-1.01 | 1.01-1.03 | 0.90-1.01 | 0.6-1.6 |
//!
//! From 4 KiB up it keeps within a few percent of `memcpy` (the goal was
//! 0.95x); 16 MiB is memory-bound, and there both sides swing between 3
//! and 5.5 GB/s from run to run as other tenants load the memory bus.
//! Short copies pay a fixed 4 ns more (two calls through the PLT and GOT
//! and the check that the handler is installed, against `memcpy`'s one).
//! Between 8 KiB and its non-temporal threshold glibc uses `rep movsb`,
//! which wins by up to 5% at 16 KiB when source and destination are
//! equally aligned, and loses badly otherwise (a misaligned 4 KiB
//! `rep movsb` took 7 µs here). Above three quarters of the last-level
//! cache (48 MiB here, glibc's threshold too) both switch to streaming
//! stores: 0.85-0.92x at 64 and 128 MiB (glibc also interleaves pages and
//! prefetches; a plain prefetch did not help here), against 0.50-0.58x
//! with ordinary stores.
//!
//! The checked write against `memcpy_to_pmem`: into the library's
//! page-granular mapping, where it is the guarded copy with ordinary
//! stores, 1.15-1.7x *faster* from 4 KiB to 1 MiB (the engine streams
//! there) and 0.76x at 16 MiB; into memory the library did not map (probe,
//! then the engine), 0.64x at 4 KiB, 0.86-0.91x from 16 to 256 KiB, 0.98x
//! at 1 MiB.

#![allow(unsafe_code)]

#[cfg(not(target_arch = "x86_64"))]
mod fallback;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(not(target_arch = "x86_64"))]
use fallback as arch;
#[cfg(target_arch = "x86_64")]
use x86_64 as arch;

use crate::mapping;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// True where copies recover from faults (x86_64); false where the
/// fault-safe calls are plain copies.
pub const GUARDED: bool = arch::GUARDED;

// si_code values of SIGBUS (include/uapi/asm-generic/siginfo.h). libc
// lacks the two machine-check codes.
const BUS_ADRALN: c_int = 1;
const BUS_ADRERR: c_int = 2;
const BUS_OBJERR: c_int = 3;
/// Action required: the thread consumed poison at this instruction.
const BUS_MCEERR_AR: c_int = 4;
/// Action optional: poison found elsewhere, reported asynchronously (not
/// recovered: it names no instruction of ours).
#[allow(dead_code)]
const BUS_MCEERR_AO: c_int = 5;

/// The disposition `SIGBUS` had before ours: written once, before our
/// handler is installed, and only read afterwards.
struct Previous(UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written only inside `INSTALL.call_once`, before the `sigaction`
// call that installs the handler reading it; never written again.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new(MaybeUninit::uninit()));
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// Installs the `SIGBUS` handler if no guarded call has yet. Idempotent
/// and thread-safe; a program may call it early so that a handler it
/// installs afterwards (and which chains) sees ours as the previous one.
/// Does nothing where [`GUARDED`] is false.
#[inline(always)]
pub fn install_handler() {
    if GUARDED && !INSTALLED.load(Ordering::Acquire) {
        install_slow();
    }
}

/// Which guarded routine a snapshot of the engine uses. Selected with the
/// copy tier from the CPU and the knobs (`crate::engine::dispatch`), so
/// `PMEM_SYS_NO_AVX2`, at start or through `set_option`, reaches it, and
/// `pmem_sys_impl()` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardedKind {
    /// x86_64: 32-byte AVX2 loads and stores (streaming stores past the
    /// last-level cache's size).
    Avx2,
    /// x86_64: 16-byte SSE2 loads and stores; elsewhere the plain copy.
    Sse2,
}

impl GuardedKind {
    /// `avx2` or `sse2`.
    pub fn name(self) -> &'static str {
        match self {
            GuardedKind::Avx2 => "avx2",
            GuardedKind::Sse2 => "sse2",
        }
    }
}

/// The guarded copy of one snapshot: its routine, and whether it may
/// stream (not under `PMEM_SYS_NO_MOVNT`).
#[derive(Clone, Copy, Debug)]
pub struct Guarded {
    /// Which routine.
    pub kind: GuardedKind,
    /// Whether its bulk may bypass the caches (non-temporal stores).
    pub streams: bool,
    entry: arch::Routine,
}

impl Guarded {
    /// The guarded copy of a kind.
    pub const fn new(kind: GuardedKind, streams: bool) -> Self {
        Guarded {
            kind,
            streams,
            entry: arch::entry(kind),
        }
    }

    /// A guarded copy entering `entry` (the engine's resolver trampoline,
    /// which resolves and then runs the selected routine).
    pub(crate) const fn with_entry(kind: GuardedKind, streams: bool, entry: arch::Routine) -> Self {
        Guarded {
            kind,
            streams,
            entry,
        }
    }

    /// The address of the routine's first instruction (tests compare it
    /// with the routines' symbols).
    #[doc(hidden)]
    pub fn entry_address(&self) -> usize {
        self.entry as *const () as usize
    }
}

/// Makes copies of at least `bytes` stream their bulk past the caches
/// (default: three quarters of the last-level cache). For tests, which
/// pass 0 to exercise the streaming loop on small buffers.
#[doc(hidden)]
pub fn set_streaming_threshold(bytes: usize) {
    install_handler();
    arch::set_stream_from(bytes);
}

/// Whether the handler is installed in this process.
pub fn handler_installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

#[cold]
#[inline(never)]
fn install_slow() {
    INSTALL.call_once(|| {
        pin_this_object();
        arch::init();
        // SAFETY: sigaction with valid pointers; PREVIOUS is written before
        // the handler that reads it exists (see `Previous`).
        unsafe {
            loop {
                let mut old: libc::sigaction = core::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, core::ptr::null(), &mut old) != 0 {
                    break;
                }
                (*PREVIOUS.0.get()).write(old);
                let mut new: libc::sigaction = core::mem::zeroed();
                new.sa_sigaction =
                    on_sigbus as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
                // The previous handler runs inside ours: give it the mask
                // and the blocking behaviour it asked for.
                new.sa_mask = old.sa_mask;
                new.sa_flags = libc::SA_SIGINFO
                    | libc::SA_ONSTACK
                    | (old.sa_flags & (libc::SA_RESTART | libc::SA_NODEFER));
                let mut replaced: libc::sigaction = core::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, &new, &mut replaced) != 0 {
                    break;
                }
                if replaced.sa_sigaction == old.sa_sigaction && replaced.sa_flags == old.sa_flags {
                    break;
                }
                // Another thread changed the disposition between our two
                // calls: put its choice back and chain to that instead.
                libc::sigaction(libc::SIGBUS, &replaced, core::ptr::null_mut());
            }
        }
        INSTALLED.store(true, Ordering::Release);
    });
}

/// Keeps the shared object holding the handler loaded for good: a
/// `dlclose` after the handler is installed would leave the process's
/// `SIGBUS` disposition pointing into unmapped code. `RTLD_NOLOAD` finds
/// the object already loaded; `RTLD_NODELETE` marks it never to be
/// unloaded; the handle is deliberately kept. In an executable this is a
/// harmless no-op.
fn pin_this_object() {
    // SAFETY: dladdr fills `info` for an address of this object; dlopen
    // with RTLD_NOLOAD never loads anything new.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        let here =
            on_sigbus as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as *const c_void;
        if libc::dladdr(here, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            );
        }
    }
}

/// Copies `n` bytes from `src` to `dst` with the guarded routine `g`,
/// recovering from `SIGBUS` on either side; returns the bytes *not*
/// copied, as the kernel's `copy_mc` does: 0 on success, otherwise
/// `n - copied` where `[0, copied)` were copied. Where [`GUARDED`] is false
/// this is a plain copy returning 0. (The public form is
/// `pmem_sys::copy_mc`, which takes `g` from the engine's snapshot.)
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, except for pages that
/// raise `SIGBUS`; the ranges do not overlap. A fault other than `SIGBUS`
/// (an unmapped address) is not recovered.
#[inline]
pub(crate) unsafe fn copy_mc(g: &Guarded, dst: *mut u8, src: *const u8, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    install_handler();
    // Branchless: a routine that may not stream gets usize::MAX.
    let stream_from = arch::stream_from() | (!g.streams as usize).wrapping_neg();
    // SAFETY: the caller's contract; the handler is installed; the routine
    // follows the C ABI and was selected only where the CPU runs it.
    unsafe { (g.entry)(dst, src, n, stream_from) }
}

fn page_size() -> usize {
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            let p = crate::mapping::page_size();
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// The checked write (see the module documentation). On byte- and
/// page-granular mappings, the guarded copy itself (remembered for
/// `wmb_pmem`'s msync on page-granular ones). Elsewhere (cache-line
/// granularity) each destination page is probed with a guarded store, then
/// the probed pages are copied with `copy`. Returns `Err(offset)` when the
/// copy stopped at `dst + offset`; `[0, offset)` was copied.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, except for destination
/// pages that raise `SIGBUS`; `copy` has the contract of `memcpy_to_pmem`.
pub(crate) unsafe fn copy_checked(
    guarded: &Guarded,
    dst: *mut u8,
    src: *const u8,
    n: usize,
    mut copy: impl FnMut(*mut u8, *const u8, usize),
) -> Result<(), usize> {
    if GUARDED
        && n != 0
        && let mapping::Route::Special(g) = mapping::route(dst as usize, n)
    {
        // SAFETY: the caller's contract.
        let left = unsafe { copy_mc(guarded, dst, src, n) };
        return finish_unflushed(g, dst, n, left);
    }
    // SAFETY: in both closures [off, off + len) lies inside both ranges; the
    // probe stores bytes `copy` stores again right after. The probe's source
    // bytes are read with the guarded copy too, so a faulting source page
    // at a probe point is reported rather than raised.
    unsafe {
        by_checked_pages(
            dst,
            n,
            |off, len| {
                if len >= 4 {
                    let mut v = 0u32;
                    copy_mc(guarded, (&mut v as *mut u32).cast(), src.add(off), 4) == 0
                        && probe(dst.add(off), v)
                } else {
                    copy_mc(guarded, dst.add(off), src.add(off), 1) == 0
                }
            },
            |off, len| copy(dst.add(off), src.add(off), len),
        )
    }
}

/// The checked fill: [`copy_checked`] for `memset_pmem`.
///
/// # Safety
/// `dst` writable for `n` bytes, except for pages that raise `SIGBUS`;
/// `set` has the contract of `memset_pmem`.
pub(crate) unsafe fn set_checked(
    guarded: &Guarded,
    dst: *mut u8,
    c: u8,
    n: usize,
    mut set: impl FnMut(*mut u8, u8, usize),
) -> Result<(), usize> {
    if GUARDED
        && n != 0
        && let mapping::Route::Special(g) = mapping::route(dst as usize, n)
    {
        // The guarded copy from a filled buffer, a chunk at a time.
        let fill = [c; 4096];
        let mut off = 0;
        while off < n {
            let len = (n - off).min(fill.len());
            // SAFETY: the caller's contract; `fill` holds `len` bytes.
            let left = unsafe { copy_mc(guarded, dst.add(off), fill.as_ptr(), len) };
            if left != 0 {
                return finish_unflushed(g, dst, n, n - off - len + left);
            }
            off += len;
        }
        return finish_unflushed(g, dst, n, 0);
    }
    // SAFETY: in both closures [off, off + len) lies inside the range.
    unsafe {
        by_checked_pages(
            dst,
            n,
            |off, len| {
                if len >= 4 {
                    probe(dst.add(off), u32::from_ne_bytes([c; 4]))
                } else {
                    copy_mc(guarded, dst.add(off), &c, 1) == 0
                }
            },
            |off, len| set(dst.add(off), c, len),
        )
    }
}

/// Ends a checked write done by the guarded copy alone, `left` of `n`
/// bytes not written: on a page-granular mapping the written part is
/// remembered for `wmb_pmem`'s msync; on a byte-granular one a visible
/// store is durable and nothing is left to do.
fn finish_unflushed(
    g: mapping::Granularity,
    dst: *mut u8,
    n: usize,
    left: usize,
) -> Result<(), usize> {
    let done = n - left;
    if g == mapping::Granularity::Page {
        mapping::dirty::record(dst as usize, done);
    }
    if left == 0 { Ok(()) } else { Err(done) }
}

/// Pages probed ahead of each engine call of a checked write.
const PROBE_BATCH: usize = 16;

/// The guarded probe store of 4 bytes: true when it did not fault.
///
/// # Safety
/// `dst` writable for 4 bytes, except for a page that raises SIGBUS.
#[inline(always)]
unsafe fn probe(dst: *mut u8, v: u32) -> bool {
    install_handler();
    // SAFETY: the caller's contract; the handler is installed.
    unsafe { arch::probe_store4(dst, v) }
}

/// Walks `[dst, dst + n)` in batches of [`PROBE_BATCH`] pages:
/// `probe(off, len)` on the start of each page of the batch (`len` bytes
/// of the page are in the range; a guarded store, true when it did not
/// fault), then one `write(off, len)` for the batch. When a probe faults,
/// the pages before it are still written.
///
/// The probe is a non-temporal store: an ordinary one read each probed line
/// into the cache, and the engine's non-temporal stores to the same line
/// then waited for that miss, page after page (0.65-0.75x the unchecked
/// write, probing page by page with a byte store, on the project's
/// machine). Batching makes one engine call per batch; the window in which
/// a truncation goes unnoticed is one batch's copy time (64 KiB: a few
/// microseconds).
///
/// # Safety
/// The closures' own contracts; `dst` is only used for page arithmetic.
unsafe fn by_checked_pages(
    dst: *mut u8,
    n: usize,
    mut probe: impl FnMut(usize, usize) -> bool,
    mut write: impl FnMut(usize, usize),
) -> Result<(), usize> {
    if !GUARDED {
        write(0, n);
        return Ok(());
    }
    let page = page_size();
    let mut off = 0;
    while off < n {
        let mut end = off;
        for _ in 0..PROBE_BATCH {
            if end == n {
                break;
            }
            let next = n.min(end + (page - (dst as usize + end) % page));
            if !probe(end, next - end) {
                if end > off {
                    write(off, end - off);
                }
                return Err(end);
            }
            end = next;
        }
        write(off, end - off);
        off = end;
    }
    Ok(())
}

/// A synchronous fault raised by the instruction at the saved instruction
/// pointer (as opposed to `kill`, `sigqueue` or an asynchronous
/// machine-check report).
fn is_synchronous_fault(code: c_int) -> bool {
    matches!(code, BUS_ADRALN | BUS_ADRERR | BUS_OBJERR | BUS_MCEERR_AR)
}

extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler; `redirect` only edits the saved registers.
    unsafe {
        if is_synchronous_fault((*info).si_code) && arch::redirect(ctx) {
            return;
        }
        chain(sig, info, ctx);
    }
}

/// Hands a signal that is not ours to the previous disposition.
///
/// A C program's handler may `siglongjmp` out of this frame and
/// `on_sigbus`'s (a common way to recover from its own faults): both hold
/// nothing that needs dropping, which is what makes that jump sound.
///
/// # Safety
/// Called from `on_sigbus` with its arguments.
unsafe fn chain(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the handler runs only after PREVIOUS was written (see
    // `install_slow`); errno is the calling thread's.
    unsafe {
        let errno = *libc::__errno_location();
        let prev = &*(*PREVIOUS.0.get()).as_ptr();
        let code = (*info).si_code;
        let handler = prev.sa_sigaction;
        let fault = is_synchronous_fault(code);
        if handler == libc::SIG_IGN && !fault {
            // Sent by a process and ignored before us: still ignored.
        } else if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
            if prev.sa_flags & libc::SA_RESETHAND != 0 {
                reset_default(sig);
            }
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                    core::mem::transmute(handler);
                f(sig, info, ctx);
            } else {
                let f: extern "C" fn(c_int) = core::mem::transmute(handler);
                f(sig);
            }
        } else {
            // The default action. A fault is left to happen again: on
            // return the instruction re-executes and the kernel, finding
            // SIG_DFL, terminates the process with the original fault
            // state in the core dump. Anything else is queued again.
            reset_default(sig);
            if !fault {
                requeue(sig, info);
            }
        }
        *libc::__errno_location() = errno;
    }
}

/// Restores `SIG_DFL`. Async-signal-safe.
///
/// # Safety
/// None beyond changing the process's disposition.
unsafe fn reset_default(sig: c_int) {
    // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask.
    unsafe {
        let mut dfl: libc::sigaction = core::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, core::ptr::null_mut());
    }
}

/// Sends `sig` to the calling thread again, with its original `siginfo`
/// where the kernel allows it. It stays pending (blocked while the handler
/// runs) and is delivered when the handler returns.
///
/// # Safety
/// `info` is the signal's siginfo.
unsafe fn requeue(sig: c_int, info: *mut libc::siginfo_t) {
    // SAFETY: plain system calls on the calling process and thread.
    unsafe {
        let pid = libc::getpid();
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        // The kernel accepts a forged si_code only from the thread whose id
        // is the process id; other threads fall back to tgkill.
        if libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, sig, info) != 0 {
            libc::syscall(libc::SYS_tgkill, pid, tid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_synchronous_codes_are_recovered() {
        for code in [BUS_ADRALN, BUS_ADRERR, BUS_OBJERR, BUS_MCEERR_AR] {
            assert!(is_synchronous_fault(code), "{code}");
        }
        for code in [
            BUS_MCEERR_AO,
            libc::SI_USER,
            libc::SI_QUEUE,
            libc::SI_TKILL,
            0x80,
        ] {
            assert!(!is_synchronous_fault(code), "{code}");
        }
    }

    /// Every length and alignment, with ordinary stores and with the
    /// streaming loop forced on (both are correct, so other tests running
    /// meanwhile only see a different speed).
    #[test]
    fn copy_mc_copies_every_length_and_alignment_without_faults() {
        install_handler();
        let mut kinds = vec![GuardedKind::Sse2];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            kinds.push(GuardedKind::Avx2);
        } else {
            println!("SKIPPED: the AVX2 guarded routine (no AVX2 on this CPU)");
        }
        for kind in kinds {
            for stream_from in [usize::MAX, 0] {
                arch::set_stream_from(stream_from);
                every_length_and_alignment(&Guarded::new(kind, true));
            }
        }
        arch::init();
    }

    fn every_length_and_alignment(g: &Guarded) {
        let src: Vec<u8> = (0..1200u32).map(|i| (i * 13 + 1) as u8).collect();
        let mut dst = vec![0u8; 1300];
        for n in 0..=1100usize {
            for (so, d_off) in [
                (0usize, 0usize),
                (1, 0),
                (0, 1),
                (7, 31),
                (32, 33),
                (33, 32),
            ] {
                dst.fill(0);
                // SAFETY: both buffers hold at least offset + n bytes.
                let left =
                    unsafe { copy_mc(g, dst.as_mut_ptr().add(d_off), src.as_ptr().add(so), n) };
                assert_eq!(left, 0, "n={n}");
                assert_eq!(
                    &dst[d_off..d_off + n],
                    &src[so..so + n],
                    "n={n} src+{so} dst+{d_off}"
                );
                assert!(
                    dst[..d_off]
                        .iter()
                        .chain(&dst[d_off + n..])
                        .all(|&b| b == 0),
                    "n={n}: wrote outside"
                );
            }
        }
    }
}
