//! x86_64: SSE2, AVX2 and AVX-512F vectors with non-temporal stores; CLWB,
//! CLFLUSHOPT and CLFLUSH write-backs; SFENCE.
//!
//! CLWB and CLFLUSHOPT have no intrinsic in `core::arch`, so they are
//! emitted with inline assembly; the assembler accepts them whatever the
//! target features, and the dispatcher only runs them where CPUID says so.

use super::algo::{Flush, LINE, Vector};
use super::{CopyTier, FlushKind, Table};
use core::arch::x86_64::*;

/// One vector type over its four intrinsics. The methods are only ever
/// inlined into leaves compiled with the matching `#[target_feature]` (see
/// `ops_table!`), so the intrinsics are available wherever they end up.
macro_rules! vector {
    ($name:ident, $reg:ty, $width:literal, $load:ident, $store:ident, $stream:ident, $splat:ident,
     $mov:literal, [$(($breg:tt, $boff:literal)),*]) => {
        #[derive(Clone, Copy)]
        pub(crate) struct $name($reg);

        impl Vector for $name {
            const WIDTH: usize = $width;
            /// # Safety
            /// The contract of [`Vector::load`].
            #[inline(always)]
            unsafe fn load(p: *const u8) -> Self {
                // SAFETY: the caller's contract; inlined only into leaves with
                // the instruction set enabled.
                unsafe { $name($load(p.cast())) }
            }
            /// # Safety
            /// The contract of [`Vector::store`].
            #[inline(always)]
            unsafe fn store(p: *mut u8, v: Self) {
                // SAFETY: as in `load`.
                unsafe { $store(p.cast(), v.0) }
            }
            /// # Safety
            /// The contract of [`Vector::stream`].
            #[inline(always)]
            unsafe fn stream(p: *mut u8, v: Self) {
                // SAFETY: as in `load`.
                unsafe { $stream(p.cast(), v.0) }
            }
            /// # Safety
            /// The contract of [`Vector::splat`].
            #[inline(always)]
            unsafe fn splat(b: u8) -> Self {
                // SAFETY: as in `load`.
                $name(unsafe { $splat(b as i8) })
            }
            /// # Safety
            /// The contract of [`Vector::stream_word`].
            #[inline(always)]
            unsafe fn stream_word(p: *mut u8, v: u64) {
                // MOVNTI: SSE2, so present in every tier.
                // SAFETY: the caller's contract.
                unsafe { _mm_stream_si64(p.cast(), v as i64) }
            }
            /// Every register of the instruction set (16; 32 for
            /// AVX-512), as PMDK's temporal copies load them.
            const BLOCK: usize = [$($boff),*].len() * $width;
            /// # Safety
            /// The contract of [`Vector::copy_block`].
            #[inline(always)]
            unsafe fn copy_block(d: *mut u8, s: *const u8) {
                // SAFETY: the caller's contract: `s` readable and `d`
                // writable for the `BLOCK` bytes addressed; the
                // instruction set is enabled in every leaf this is
                // inlined into; every register used is declared clobbered.
                unsafe { load_all_then_store_all!($mov, d, s, $(($breg, $boff)),*) }
            }
        }

        // The block's registers cover it exactly, one `WIDTH` apart.
        const _: () = {
            let offsets = [$($boff),*];
            let mut k = 0;
            while k < offsets.len() {
                assert!(offsets[k] == k * $width);
                k += 1;
            }
        };
    };
}

/// Loads every register named, then stores every one: each tier's
/// `copy_block`. In assembly because the order is the point: LLVM turns
/// the same loads and stores written with intrinsics into a loop of four
/// loads and four stores (BENCHMARKS.md, "TEMPORAL copies: blocks and chunks").
macro_rules! load_all_then_store_all {
    ($mov:literal, $d:expr, $s:expr, $(($reg:tt, $off:literal)),*) => {
        core::arch::asm!(
            $(concat!($mov, " ", $reg, ", [{s} + ", $off, "]"),)*
            $(concat!($mov, " [{d} + ", $off, "], ", $reg),)*
            s = in(reg) $s,
            d = in(reg) $d,
            $(out($reg) _,)*
            options(nostack, preserves_flags)
        )
    };
}

// The register lists stay four to a line.
#[rustfmt::skip]
vector!(
    Sse2,
    __m128i,
    16,
    _mm_loadu_si128,
    _mm_storeu_si128,
    _mm_stream_si128,
    _mm_set1_epi8,
    "movdqu",
    [
        ("xmm0", 0), ("xmm1", 16), ("xmm2", 32), ("xmm3", 48),
        ("xmm4", 64), ("xmm5", 80), ("xmm6", 96), ("xmm7", 112),
        ("xmm8", 128), ("xmm9", 144), ("xmm10", 160), ("xmm11", 176),
        ("xmm12", 192), ("xmm13", 208), ("xmm14", 224), ("xmm15", 240)
    ]
);
#[rustfmt::skip]
vector!(
    Avx2,
    __m256i,
    32,
    _mm256_loadu_si256,
    _mm256_storeu_si256,
    _mm256_stream_si256,
    _mm256_set1_epi8,
    "vmovdqu",
    [
        ("ymm0", 0), ("ymm1", 32), ("ymm2", 64), ("ymm3", 96),
        ("ymm4", 128), ("ymm5", 160), ("ymm6", 192), ("ymm7", 224),
        ("ymm8", 256), ("ymm9", 288), ("ymm10", 320), ("ymm11", 352),
        ("ymm12", 384), ("ymm13", 416), ("ymm14", 448), ("ymm15", 480)
    ]
);
#[rustfmt::skip]
vector!(
    Avx512,
    __m512i,
    64,
    _mm512_loadu_si512,
    _mm512_storeu_si512,
    _mm512_stream_si512,
    _mm512_set1_epi8,
    "vmovdqu64",
    [
        ("zmm0", 0), ("zmm1", 64), ("zmm2", 128), ("zmm3", 192),
        ("zmm4", 256), ("zmm5", 320), ("zmm6", 384), ("zmm7", 448),
        ("zmm8", 512), ("zmm9", 576), ("zmm10", 640), ("zmm11", 704),
        ("zmm12", 768), ("zmm13", 832), ("zmm14", 896), ("zmm15", 960),
        ("zmm16", 1024), ("zmm17", 1088), ("zmm18", 1152), ("zmm19", 1216),
        ("zmm20", 1280), ("zmm21", 1344), ("zmm22", 1408), ("zmm23", 1472),
        ("zmm24", 1536), ("zmm25", 1600), ("zmm26", 1664), ("zmm27", 1728),
        ("zmm28", 1792), ("zmm29", 1856), ("zmm30", 1920), ("zmm31", 1984)
    ]
);

/// A write-back instruction emitted with inline assembly.
macro_rules! asm_flush {
    ($name:ident, $insn:literal) => {
        pub(crate) struct $name;

        impl Flush for $name {
            const ACTIVE: bool = true;
            #[inline(always)]
            fn line_size() -> usize {
                LINE
            }
            /// # Safety
            /// The contract of [`Flush::flush_line`].
            #[inline(always)]
            unsafe fn flush_line(p: *const u8) {
                // SAFETY: the caller's contract (a mapped address); the
                // dispatcher runs this only where CPUID reports it.
                unsafe {
                    core::arch::asm!(concat!($insn, " [{}]"), in(reg) p, options(nostack, preserves_flags));
                }
            }
            /// PREFETCHW. Implemented by every CPU with CLWB or CLFLUSHOPT
            /// (Intel since Broadwell, AMD in every 64-bit CPU), and
            /// executed as a no-op by the Intel CPUs before it, so it is
            /// safe wherever CLFLUSH runs too (`prefetchw_comes_with_clwb`
            /// checks this machine).
            ///
            /// # Safety
            /// The contract of [`Flush::prefetch_for_store`].
            #[inline(always)]
            unsafe fn prefetch_for_store(p: *const u8) {
                // SAFETY: a hint on a mapped address: no fault, no store.
                unsafe {
                    core::arch::asm!("prefetchw [{}]", in(reg) p, options(nostack, preserves_flags));
                }
            }
        }
    };
}

asm_flush!(Clwb, "clwb");
asm_flush!(ClflushOpt, "clflushopt");
asm_flush!(Clflush, "clflush");

super::fence_leaf!(
    /// SFENCE: orders (and, for persistence, waits for) every earlier CLWB,
    /// CLFLUSHOPT and non-temporal store. Issued on every platform, eADR
    /// included, because non-temporal stores sit in write-combining buffers
    /// that eADR does not cover until they are fenced.
    sfence,
    "sfence"
);

/// Stamps the three flush variants of one copy tier. Invalidation uses
/// CLFLUSHOPT in the CLFLUSHOPT table and CLFLUSH elsewhere: a CPU with
/// CLWB is not promised CLFLUSHOPT, and CLFLUSH always exists.
macro_rules! copy_tier {
    ($feature:literal, $V:ty, $nt:literal, $tier:expr, $copy:literal) => {
        [
            ops_table!(#[target_feature(enable = $feature)], $V, $nt, Clwb, Clflush, sfence,
                       $tier, FlushKind::Clwb, concat!("x86_64/", $copy, "+clwb")),
            ops_table!(#[target_feature(enable = $feature)], $V, $nt, ClflushOpt, ClflushOpt, sfence,
                       $tier, FlushKind::ClflushOpt, concat!("x86_64/", $copy, "+clflushopt")),
            ops_table!(#[target_feature(enable = $feature)], $V, $nt, Clflush, Clflush, sfence,
                       $tier, FlushKind::Clflush, concat!("x86_64/", $copy, "+clflush")),
        ]
    };
}
use super::ops_table;

static AVX512F: [Table; 3] = copy_tier!("avx512f", Avx512, true, CopyTier::Avx512f, "avx512f");
static AVX2: [Table; 3] = copy_tier!("avx2", Avx2, true, CopyTier::Avx2, "avx2");
static SSE2: [Table; 3] = copy_tier!("sse2", Sse2, true, CopyTier::Sse2, "sse2");
// The temporal tier uses SSE2 registers (baseline on x86_64) for ordinary
// stores only.
static TEMPORAL: [Table; 3] = copy_tier!("sse2", Sse2, false, CopyTier::Temporal, "temporal");

pub(crate) fn table(copy: CopyTier, flush: FlushKind) -> Option<&'static Table> {
    let row = match copy {
        CopyTier::Avx512f => &AVX512F,
        CopyTier::Avx2 => &AVX2,
        CopyTier::Sse2 => &SSE2,
        CopyTier::Temporal => &TEMPORAL,
    };
    match flush {
        FlushKind::Clwb => Some(&row[0]),
        FlushKind::ClflushOpt => Some(&row[1]),
        FlushKind::Clflush => Some(&row[2]),
        _ => None,
    }
}

pub(crate) fn has_pmem_api() -> bool {
    true
}
