//! x86_64: the guarded copy routines and how to redirect the instruction
//! pointer saved in a signal frame.
//!
//! The routines are written in assembly because the signal handler must
//! know exactly which instructions may fault and what the registers hold
//! when they do; compiled Rust gives neither promise. Each routine has two
//! ranges of instructions that may fault, each with a recovery point (the
//! kernel's exception table, `_ASM_EXTABLE`, in miniature):
//!
//! 1. The fast copy, glibc's `memmove-vec-unaligned-erms` shape without its
//!    `rep movsb`: up to 8 vectors, straight-line overlapping moves from
//!    both ends (all loads before any store); longer, the first vector
//!    unaligned, then aligned stores 8 vectors per iteration (streaming
//!    stores and a fence for copies larger than the caches), then the
//!    last 4 to 8 vectors straight-line, the last 4 ending at the end. Through it RSI points at the first source
//!    byte not yet known to be copied, RDI at its destination, and R9 at
//!    the end of the source.
//! 2. The exact copy: a byte loop. A fault in (1), where a block may be
//!    partly stored, recovers to (2) at RSI/RDI, which copies byte by byte
//!    until it faults again at the first bad byte; its recovery point
//!    returns RCX, the bytes not copied. The count is exact whichever
//!    instruction faulted first, for the price of a second fault and at
//!    most one block of byte copies, on the error path only.
//!
//! The kernel's `copy_mc_enhanced_fast_string` is a single `rep movsb`,
//! which would make (2) unnecessary. It is not used here because on the
//! project's Zen 3 virtual machine `rep movsb` measured about 100 ns for
//! 64 bytes and 7 µs for a misaligned 4 KiB (glibc's `memcpy`: 4 ns and
//! 0.3 µs), whatever the ERMS/FSRM flags promise.
//!
//! The routine is stamped out twice: AVX2 (32-byte vectors) where the CPU
//! has it and `PMEM_SYS_NO_AVX2` is unset, SSE2 (16 bytes, baseline)
//! elsewhere. The symbols are global so that Rust can name them, and hidden
//! so that they never appear among the exports of `libpmem_sys.so`.

use core::arch::global_asm;
use core::sync::atomic::{AtomicUsize, Ordering};

/// One guarded copy routine: `$name(dst, src, n) -> bytes not copied`.
/// `$w` is the vector width in bytes, `$v` the register prefix (`xmm` or
/// `ymm`), `$ldu`/`$sta` the unaligned-load and aligned-store mnemonics,
/// `$x16` the 16-byte move, `$vzu` the instruction that ends the routine's
/// use of vector state (`vzeroupper`, or a `nop` for SSE2).
// One line of assembly per source line, as the assembler reads it;
// rustfmt would put every token of the concat! on a line of its own.
#[rustfmt::skip]
macro_rules! copy_mc_routine {
    ($name:literal, $w:literal, $v:literal, $ldu:literal, $sta:literal, $nt:literal, $x16:literal, $vzu:literal) => {
        global_asm!(concat!(
            ".pushsection .text.", $name, ",\"ax\",@progbits\n",
            ".p2align 5\n",
            ".globl ", $name, "\n.hidden ", $name, "\n.type ", $name, ",@function\n",
            $name, ":\n",
            ".cfi_startproc\n",
            // System V: rdi = dst, rsi = src, rdx = n, rcx = the size
            // from which the bulk is copied with streaming stores.
            "    lea r9, [rsi + rdx]\n",
            "    mov r11, rcx\n",
            ".globl ", $name, "_fast\n.hidden ", $name, "_fast\n",
            $name, "_fast:\n",
            "    cmp rdx, ", $w, "\n",
            "    jb 6f\n",
            // Up to 8 vectors: straight-line, all loads before any store,
            // the first and last vectors overlapping in the middle.
            "    cmp rdx, 2 * ", $w, "\n",
            "    ja 12f\n",
            "    ", $ldu, " ", $v, "0, [rsi]\n",
            "    ", $ldu, " ", $v, "1, [rsi + rdx - ", $w, "]\n",
            "    ", $ldu, " [rdi], ", $v, "0\n",
            "    ", $ldu, " [rdi + rdx - ", $w, "], ", $v, "1\n",
            "    jmp 9f\n",
            "12:\n",
            "    cmp rdx, 4 * ", $w, "\n",
            "    ja 13f\n",
            "    ", $ldu, " ", $v, "0, [rsi]\n",
            "    ", $ldu, " ", $v, "1, [rsi + ", $w, "]\n",
            "    ", $ldu, " ", $v, "2, [rsi + rdx - ", $w, "]\n",
            "    ", $ldu, " ", $v, "3, [rsi + rdx - 2 * ", $w, "]\n",
            "    ", $ldu, " [rdi], ", $v, "0\n",
            "    ", $ldu, " [rdi + ", $w, "], ", $v, "1\n",
            "    ", $ldu, " [rdi + rdx - ", $w, "], ", $v, "2\n",
            "    ", $ldu, " [rdi + rdx - 2 * ", $w, "], ", $v, "3\n",
            "    jmp 9f\n",
            "13:\n",
            "    cmp rdx, 8 * ", $w, "\n",
            "    ja 14f\n",
            "    ", $ldu, " ", $v, "0, [rsi]\n",
            "    ", $ldu, " ", $v, "1, [rsi + ", $w, "]\n",
            "    ", $ldu, " ", $v, "2, [rsi + 2 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "3, [rsi + 3 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "4, [rsi + rdx - ", $w, "]\n",
            "    ", $ldu, " ", $v, "5, [rsi + rdx - 2 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "6, [rsi + rdx - 3 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "7, [rsi + rdx - 4 * ", $w, "]\n",
            "    ", $ldu, " [rdi], ", $v, "0\n",
            "    ", $ldu, " [rdi + ", $w, "], ", $v, "1\n",
            "    ", $ldu, " [rdi + 2 * ", $w, "], ", $v, "2\n",
            "    ", $ldu, " [rdi + 3 * ", $w, "], ", $v, "3\n",
            "    ", $ldu, " [rdi + rdx - ", $w, "], ", $v, "4\n",
            "    ", $ldu, " [rdi + rdx - 2 * ", $w, "], ", $v, "5\n",
            "    ", $ldu, " [rdi + rdx - 3 * ", $w, "], ", $v, "6\n",
            "    ", $ldu, " [rdi + rdx - 4 * ", $w, "], ", $v, "7\n",
            "    jmp 9f\n",
            // Longer: the first vector, then advance to the destination's
            // next vector boundary (a whole vector if already aligned).
            "14:\n",
            "    ", $ldu, " ", $v, "0, [rsi]\n",
            "    ", $ldu, " [rdi], ", $v, "0\n",
            "    mov rcx, rdi\n",
            "    neg rcx\n",
            "    and rcx, ", $w, " - 1\n",
            "    jnz 2f\n",
            "    mov rcx, ", $w, "\n",
            "2:\n",
            "    add rsi, rcx\n",
            "    add rdi, rcx\n",
            "    mov rcx, r9\n",
            "    sub rcx, rsi\n",
            "    cmp rdx, r11\n",
            "    jae 16f\n",
            "    cmp rcx, 8 * ", $w, "\n",
            "    jb 4f\n",
            ".p2align 4\n",
            "3:\n",
            "    ", $ldu, " ", $v, "0, [rsi]\n",
            "    ", $ldu, " ", $v, "1, [rsi + ", $w, "]\n",
            "    ", $ldu, " ", $v, "2, [rsi + 2 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "3, [rsi + 3 * ", $w, "]\n",
            "    ", $sta, " [rdi], ", $v, "0\n",
            "    ", $sta, " [rdi + ", $w, "], ", $v, "1\n",
            "    ", $sta, " [rdi + 2 * ", $w, "], ", $v, "2\n",
            "    ", $sta, " [rdi + 3 * ", $w, "], ", $v, "3\n",
            "    ", $ldu, " ", $v, "0, [rsi + 4 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "1, [rsi + 5 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "2, [rsi + 6 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "3, [rsi + 7 * ", $w, "]\n",
            "    ", $sta, " [rdi + 4 * ", $w, "], ", $v, "0\n",
            "    ", $sta, " [rdi + 5 * ", $w, "], ", $v, "1\n",
            "    ", $sta, " [rdi + 6 * ", $w, "], ", $v, "2\n",
            "    ", $sta, " [rdi + 7 * ", $w, "], ", $v, "3\n",
            "    add rsi, 8 * ", $w, "\n",
            "    add rdi, 8 * ", $w, "\n",
            "    sub rcx, 8 * ", $w, "\n",
            "    cmp rcx, 8 * ", $w, "\n",
            "    jae 3b\n",
            // Fewer than 8 vectors are left: the last 4 vectors, ending at
            // the end (overlapping bytes already copied), after 4 more from
            // RSI if more than 4 are left. All loads before any store.
            "4:\n",
            "    test rcx, rcx\n",
            "    jz 9f\n",
            "    lea rax, [rdi + rcx]\n",
            "    cmp rcx, 4 * ", $w, "\n",
            "    jbe 5f\n",
            "    ", $ldu, " ", $v, "0, [rsi]\n",
            "    ", $ldu, " ", $v, "1, [rsi + ", $w, "]\n",
            "    ", $ldu, " ", $v, "2, [rsi + 2 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "3, [rsi + 3 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "4, [r9 - ", $w, "]\n",
            "    ", $ldu, " ", $v, "5, [r9 - 2 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "6, [r9 - 3 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "7, [r9 - 4 * ", $w, "]\n",
            "    ", $sta, " [rdi], ", $v, "0\n",
            "    ", $sta, " [rdi + ", $w, "], ", $v, "1\n",
            "    ", $sta, " [rdi + 2 * ", $w, "], ", $v, "2\n",
            "    ", $sta, " [rdi + 3 * ", $w, "], ", $v, "3\n",
            "    jmp 15f\n",
            "5:\n",
            "    ", $ldu, " ", $v, "4, [r9 - ", $w, "]\n",
            "    ", $ldu, " ", $v, "5, [r9 - 2 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "6, [r9 - 3 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "7, [r9 - 4 * ", $w, "]\n",
            "15:\n",
            "    ", $ldu, " [rax - ", $w, "], ", $v, "4\n",
            "    ", $ldu, " [rax - 2 * ", $w, "], ", $v, "5\n",
            "    ", $ldu, " [rax - 3 * ", $w, "], ", $v, "6\n",
            "    ", $ldu, " [rax - 4 * ", $w, "], ", $v, "7\n",
            "    jmp 9f\n",
            // Larger than the caches: the same loop with streaming stores
            // (as glibc's `memcpy` above its non-temporal threshold), then
            // a fence so they are ordered like ordinary stores for the
            // caller, then the tail. Kept apart so that no other path falls
            // into its fence.
            "16:\n",
            "    cmp rcx, 8 * ", $w, "\n",
            "    jb 17f\n",
            ".p2align 4\n",
            "18:\n",
            "    ", $ldu, " ", $v, "0, [rsi]\n",
            "    ", $ldu, " ", $v, "1, [rsi + ", $w, "]\n",
            "    ", $ldu, " ", $v, "2, [rsi + 2 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "3, [rsi + 3 * ", $w, "]\n",
            "    ", $nt, " [rdi], ", $v, "0\n",
            "    ", $nt, " [rdi + ", $w, "], ", $v, "1\n",
            "    ", $nt, " [rdi + 2 * ", $w, "], ", $v, "2\n",
            "    ", $nt, " [rdi + 3 * ", $w, "], ", $v, "3\n",
            "    ", $ldu, " ", $v, "0, [rsi + 4 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "1, [rsi + 5 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "2, [rsi + 6 * ", $w, "]\n",
            "    ", $ldu, " ", $v, "3, [rsi + 7 * ", $w, "]\n",
            "    ", $nt, " [rdi + 4 * ", $w, "], ", $v, "0\n",
            "    ", $nt, " [rdi + 5 * ", $w, "], ", $v, "1\n",
            "    ", $nt, " [rdi + 6 * ", $w, "], ", $v, "2\n",
            "    ", $nt, " [rdi + 7 * ", $w, "], ", $v, "3\n",
            "    add rsi, 8 * ", $w, "\n",
            "    add rdi, 8 * ", $w, "\n",
            "    sub rcx, 8 * ", $w, "\n",
            "    cmp rcx, 8 * ", $w, "\n",
            "    jae 18b\n",
            "17:\n",
            "    sfence\n",
            "    jmp 4b\n",
            // Shorter than one vector: two overlapping moves of the largest
            // size that fits (glibc's scheme).
            "6:\n",
            "    cmp rdx, 16\n",
            "    jb 7f\n",
            "    ", $x16, " xmm0, [rsi]\n",
            "    ", $x16, " xmm1, [rsi + rdx - 16]\n",
            "    ", $x16, " [rdi], xmm0\n",
            "    ", $x16, " [rdi + rdx - 16], xmm1\n",
            "    jmp 9f\n",
            "7:\n",
            "    cmp rdx, 8\n",
            "    jb 8f\n",
            "    mov rax, [rsi]\n",
            "    mov r10, [rsi + rdx - 8]\n",
            "    mov [rdi], rax\n",
            "    mov [rdi + rdx - 8], r10\n",
            "    jmp 9f\n",
            "8:\n",
            "    cmp rdx, 4\n",
            "    jb 5f\n",
            "    mov eax, [rsi]\n",
            "    mov r10d, [rsi + rdx - 4]\n",
            "    mov [rdi], eax\n",
            "    mov [rdi + rdx - 4], r10d\n",
            "    jmp 9f\n",
            "5:\n",
            "    test rdx, rdx\n",
            "    jz 9f\n",
            "    movzx eax, byte ptr [rsi]\n",
            "    mov [rdi], al\n",
            "    cmp rdx, 2\n",
            "    jb 9f\n",
            "    movzx eax, word ptr [rsi + rdx - 2]\n",
            "    mov [rdi + rdx - 2], ax\n",
            "9:\n",
            "    ", $vzu, "\n",
            "    xor eax, eax\n",
            ".globl ", $name, "_fast_end\n.hidden ", $name, "_fast_end\n",
            $name, "_fast_end:\n",
            "    ret\n",
            // Recovery point of the fast copy: continue from RSI/RDI byte
            // by byte.
            ".globl ", $name, "_retry\n.hidden ", $name, "_retry\n",
            $name, "_retry:\n",
            "    ", $vzu, "\n",
            // Streaming stores may be in flight: order them first.
            "    sfence\n",
            "    mov rcx, r9\n",
            "    sub rcx, rsi\n",
            "    jz 7f\n",
            ".globl ", $name, "_exact\n.hidden ", $name, "_exact\n",
            $name, "_exact:\n",
            "6:\n",
            "    movzx eax, byte ptr [rsi]\n",
            "    mov [rdi], al\n",
            "    add rsi, 1\n",
            "    add rdi, 1\n",
            "    sub rcx, 1\n",
            "    jnz 6b\n",
            ".globl ", $name, "_exact_end\n.hidden ", $name, "_exact_end\n",
            $name, "_exact_end:\n",
            "7:\n",
            "    xor eax, eax\n",
            "    ret\n",
            // Recovery point of the byte loop: RCX bytes were not copied.
            ".globl ", $name, "_fixup\n.hidden ", $name, "_fixup\n",
            $name, "_fixup:\n",
            "    mov rax, rcx\n",
            "    ret\n",
            ".cfi_endproc\n",
            ".size ", $name, ", . - ", $name, "\n",
            ".popsection\n",
        ));
    };
}

copy_mc_routine!(
    "__pmem_sys_copy_mc_avx2",
    "32",
    "ymm",
    "vmovdqu",
    "vmovdqa",
    "vmovntdq",
    "vmovdqu",
    "vzeroupper"
);
copy_mc_routine!(
    "__pmem_sys_copy_mc_sse2",
    "16",
    "xmm",
    "movdqu",
    "movdqa",
    "movntdq",
    "movdqu",
    "nop"
);

// The checked writes' probe: one 4-byte non-temporal store (MOVNTI, SSE2).
// A store, so it takes a write fault where one would come (past the end of
// the file, a filesystem that cannot allocate the page); non-temporal, so
// it does not read the line into the cache only to have the engine's
// non-temporal stores evict it again, which cost a cache miss per page.
global_asm!(
    ".pushsection .text.__pmem_sys_probe_nt,\"ax\",@progbits",
    ".p2align 4",
    ".globl __pmem_sys_probe_nt",
    ".hidden __pmem_sys_probe_nt",
    ".type __pmem_sys_probe_nt,@function",
    "__pmem_sys_probe_nt:",
    ".cfi_startproc",
    ".globl __pmem_sys_probe_nt_store",
    ".hidden __pmem_sys_probe_nt_store",
    "__pmem_sys_probe_nt_store:",
    "    movnti dword ptr [rdi], esi",
    ".globl __pmem_sys_probe_nt_store_end",
    ".hidden __pmem_sys_probe_nt_store_end",
    "__pmem_sys_probe_nt_store_end:",
    "    xor eax, eax",
    "    ret",
    ".globl __pmem_sys_probe_nt_fixup",
    ".hidden __pmem_sys_probe_nt_fixup",
    "__pmem_sys_probe_nt_fixup:",
    "    mov eax, 1",
    "    ret",
    ".cfi_endproc",
    ".size __pmem_sys_probe_nt, . - __pmem_sys_probe_nt",
    ".popsection",
);

unsafe extern "C" {
    /// Stores `value` at `dst` (4 bytes, any alignment) with MOVNTI;
    /// returns 1 if the store raised SIGBUS, 0 otherwise.
    fn __pmem_sys_probe_nt(dst: *mut u8, value: u32) -> u32;
    static __pmem_sys_probe_nt_store: u8;
    static __pmem_sys_probe_nt_store_end: u8;
    static __pmem_sys_probe_nt_fixup: u8;
}

/// Stores the 4 bytes `value` at `dst` non-temporally; false if the store
/// raised SIGBUS. Not fenced: the caller's later stores to the same bytes
/// and its fence take care of it.
///
/// # Safety
/// `dst` writable for 4 bytes, except for a page that raises SIGBUS; the
/// handler of `super` is installed.
#[inline(always)]
pub(crate) unsafe fn probe_store4(dst: *mut u8, value: u32) -> bool {
    // SAFETY: the caller's contract; the routine follows the C ABI.
    unsafe { __pmem_sys_probe_nt(dst, value) == 0 }
}

/// The addresses a routine's signal-frame redirection needs.
macro_rules! routine_symbols {
    ($entry:ident, $fast:ident, $fast_end:ident, $retry:ident, $exact:ident, $exact_end:ident, $fixup:ident) => {
        unsafe extern "C" {
            /// Copies `n` bytes from `src` to `dst`; returns the bytes not
            /// copied (0 on success) after a SIGBUS that the handler of
            /// `super` redirected to a recovery point.
            fn $entry(dst: *mut u8, src: *const u8, n: usize, stream_from: usize) -> usize;
            // Labels inside the routine; only their addresses are used.
            static $fast: u8;
            static $fast_end: u8;
            static $retry: u8;
            static $exact: u8;
            static $exact_end: u8;
            static $fixup: u8;
        }
    };
}

routine_symbols!(
    __pmem_sys_copy_mc_avx2,
    __pmem_sys_copy_mc_avx2_fast,
    __pmem_sys_copy_mc_avx2_fast_end,
    __pmem_sys_copy_mc_avx2_retry,
    __pmem_sys_copy_mc_avx2_exact,
    __pmem_sys_copy_mc_avx2_exact_end,
    __pmem_sys_copy_mc_avx2_fixup
);
routine_symbols!(
    __pmem_sys_copy_mc_sse2,
    __pmem_sys_copy_mc_sse2_fast,
    __pmem_sys_copy_mc_sse2_fast_end,
    __pmem_sys_copy_mc_sse2_retry,
    __pmem_sys_copy_mc_sse2_exact,
    __pmem_sys_copy_mc_sse2_exact_end,
    __pmem_sys_copy_mc_sse2_fixup
);

/// Copies of at least this many bytes stream their bulk past the caches
/// (`usize::MAX`: never); see [`streaming_threshold`]. A property of the
/// machine (its cache size), computed once, not a configuration: whether a
/// routine may stream at all is the snapshot's choice (`Guarded::streams`).
static STREAM_FROM: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Where a copy stops fitting in the caches, so that streaming stores win:
/// glibc's rule, three quarters of the last-level cache (`sysconf` reports
/// 64 MiB on the project's Zen 3 VM, so 48 MiB, glibc's threshold there
/// too). Measured: at 64 and 128 MiB ordinary stores ran at 0.50-0.58x
/// glibc's streaming `memcpy`.
fn streaming_threshold() -> usize {
    // SAFETY: sysconf has no preconditions.
    let l3 = unsafe { libc::sysconf(libc::_SC_LEVEL3_CACHE_SIZE) };
    if l3 > 0 {
        (l3 as usize / 4 * 3).max(4 << 20)
    } else {
        32 << 20
    }
}

/// Measures the machine; called once, by the handler's installation.
pub(crate) fn init() {
    STREAM_FROM.store(streaming_threshold(), Ordering::Relaxed);
}

/// Overrides the streaming threshold (tests use 0 to run the streaming
/// loop on small buffers).
pub(crate) fn set_stream_from(bytes: usize) {
    STREAM_FROM.store(bytes, Ordering::Relaxed);
}

/// The streaming threshold in force.
#[inline(always)]
pub(crate) fn stream_from() -> usize {
    STREAM_FROM.load(Ordering::Relaxed)
}

/// A guarded routine's entry point (C ABI, see `routine_symbols!`).
pub(crate) type Routine = unsafe extern "C" fn(*mut u8, *const u8, usize, usize) -> usize;

/// The routine of a kind. The AVX2 one may only be chosen where AVX2 was
/// detected (with the OS saving YMM state): the engine's selection sees to
/// it.
pub(crate) const fn entry(kind: super::GuardedKind) -> Routine {
    match kind {
        super::GuardedKind::Avx2 => __pmem_sys_copy_mc_avx2,
        super::GuardedKind::Sse2 => __pmem_sys_copy_mc_sse2,
    }
}

/// This architecture recovers from faults in guarded copies.
pub(crate) const GUARDED: bool = true;

/// The recovery point for a fault at instruction address `ip`, if `ip` is
/// a guarded instruction of this library. Async-signal-safe: PC-relative
/// address computations and comparisons, nothing else.
#[inline(always)]
fn fixup_for(ip: usize) -> Option<usize> {
    // Only the addresses of the labels are taken, never their contents:
    // safe since Rust 1.82 (the minimum is 1.95).
    let table: [(usize, usize, usize); 5] = {
        use core::ptr::addr_of;
        [
            (
                addr_of!(__pmem_sys_probe_nt_store) as usize,
                addr_of!(__pmem_sys_probe_nt_store_end) as usize,
                addr_of!(__pmem_sys_probe_nt_fixup) as usize,
            ),
            (
                addr_of!(__pmem_sys_copy_mc_avx2_fast) as usize,
                addr_of!(__pmem_sys_copy_mc_avx2_fast_end) as usize,
                addr_of!(__pmem_sys_copy_mc_avx2_retry) as usize,
            ),
            (
                addr_of!(__pmem_sys_copy_mc_avx2_exact) as usize,
                addr_of!(__pmem_sys_copy_mc_avx2_exact_end) as usize,
                addr_of!(__pmem_sys_copy_mc_avx2_fixup) as usize,
            ),
            (
                addr_of!(__pmem_sys_copy_mc_sse2_fast) as usize,
                addr_of!(__pmem_sys_copy_mc_sse2_fast_end) as usize,
                addr_of!(__pmem_sys_copy_mc_sse2_retry) as usize,
            ),
            (
                addr_of!(__pmem_sys_copy_mc_sse2_exact) as usize,
                addr_of!(__pmem_sys_copy_mc_sse2_exact_end) as usize,
                addr_of!(__pmem_sys_copy_mc_sse2_fixup) as usize,
            ),
        ]
    };
    table
        .iter()
        .find(|(start, end, _)| *start <= ip && ip < *end)
        .map(|e| e.2)
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
