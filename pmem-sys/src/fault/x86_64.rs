//! x86_64: the guarded copy routine and how to read and redirect the
//! instruction pointer saved in a signal frame.
//!
//! The routine is written in assembly because the signal handler must know
//! exactly which instruction may fault and what the registers hold when it
//! does; compiled Rust gives neither promise. It is the shape of the
//! kernel's `copy_mc_enhanced_fast_string`: one `rep movsb`, which the CPU
//! leaves restartable at a fault, with RCX counting the bytes not yet
//! copied, RSI and RDI pointing at the first of them. The recovery point
//! returns RCX.
//!
//! On CPUs with ERMS/FSRM (every Intel core since Ivy Bridge, AMD since Zen
//! 3) `rep movsb` is the microcoded fast copy that glibc's own `memcpy`
//! switches to between a few KiB and the size of the L2 cache; see the
//! crate's benchmark numbers in the module documentation of `fault`.
//!
//! The symbols are global so that Rust can name them, and hidden so that
//! they never appear among the exports of `libpmem_sys.so`.

use core::arch::global_asm;

global_asm!(
    ".pushsection .text.__pmem_sys_copy_mc_movsb,\"ax\",@progbits",
    ".p2align 5",
    ".globl __pmem_sys_copy_mc_movsb",
    ".hidden __pmem_sys_copy_mc_movsb",
    ".type __pmem_sys_copy_mc_movsb,@function",
    "__pmem_sys_copy_mc_movsb:",
    ".cfi_startproc",
    // System V: rdi = dst, rsi = src, rdx = n. DF is clear on entry.
    "    mov rcx, rdx",
    ".globl __pmem_sys_copy_mc_movsb_fault",
    ".hidden __pmem_sys_copy_mc_movsb_fault",
    "__pmem_sys_copy_mc_movsb_fault:",
    // The only instruction that touches the caller's memory.
    "    rep movsb",
    ".globl __pmem_sys_copy_mc_movsb_fault_end",
    ".hidden __pmem_sys_copy_mc_movsb_fault_end",
    "__pmem_sys_copy_mc_movsb_fault_end:",
    "    xor eax, eax",
    "    ret",
    // Recovery point: the handler moved RIP here from the faulting
    // `rep movsb`; RCX holds the bytes it had not copied.
    ".globl __pmem_sys_copy_mc_movsb_fixup",
    ".hidden __pmem_sys_copy_mc_movsb_fixup",
    "__pmem_sys_copy_mc_movsb_fixup:",
    "    mov rax, rcx",
    "    ret",
    ".cfi_endproc",
    ".size __pmem_sys_copy_mc_movsb, . - __pmem_sys_copy_mc_movsb",
    ".popsection",
);

extern "C" {
    /// Copies `n` bytes from `src` to `dst`; returns the bytes not copied
    /// (0 on success) when a SIGBUS interrupted it and the handler of
    /// `super` redirected it to its recovery point.
    fn __pmem_sys_copy_mc_movsb(dst: *mut u8, src: *const u8, n: usize) -> usize;
    // Labels inside the routine; only their addresses are used.
    static __pmem_sys_copy_mc_movsb_fault: u8;
    static __pmem_sys_copy_mc_movsb_fault_end: u8;
    static __pmem_sys_copy_mc_movsb_fixup: u8;
}

/// This architecture recovers from faults in guarded copies.
pub(crate) const GUARDED: bool = true;

/// Runs the guarded copy.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes apart from pages that
/// raise SIGBUS; no overlap; the handler of `super` is installed.
#[inline(always)]
pub(crate) unsafe fn copy_mc(dst: *mut u8, src: *const u8, n: usize) -> usize {
    // SAFETY: the caller's contract; the routine follows the C ABI.
    unsafe { __pmem_sys_copy_mc_movsb(dst, src, n) }
}

/// The recovery point for a fault at instruction address `ip`, if `ip` is
/// a guarded instruction of this library. Async-signal-safe: three
/// PC-relative address computations and comparisons.
#[inline(always)]
fn fixup_for(ip: usize) -> Option<usize> {
    // SAFETY: only the addresses of the labels are taken, never their
    // contents. (Rust before 1.82 requires `unsafe` for this.)
    #[allow(unused_unsafe)]
    let (start, end, fixup) = unsafe {
        (
            core::ptr::addr_of!(__pmem_sys_copy_mc_movsb_fault) as usize,
            core::ptr::addr_of!(__pmem_sys_copy_mc_movsb_fault_end) as usize,
            core::ptr::addr_of!(__pmem_sys_copy_mc_movsb_fixup) as usize,
        )
    };
    (start <= ip && ip < end).then_some(fixup)
}

/// If the interrupted context stopped at a guarded instruction, moves it
/// to the recovery point and returns true. Async-signal-safe.
///
/// # Safety
/// `ctx` is the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
#[inline(always)]
pub(crate) unsafe fn redirect(ctx: *mut libc::c_void) -> bool {
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: the caller's contract: a live, writable signal frame.
    let rip = unsafe { &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] };
    match fixup_for(*rip as usize) {
        Some(fixup) => {
            *rip = fixup as libc::greg_t;
            true
        }
        None => false,
    }
}
