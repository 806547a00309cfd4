//! x86_64: SSE2, AVX2 and AVX-512F vectors with non-temporal stores; CLWB,
//! CLFLUSHOPT and CLFLUSH write-backs; SFENCE.
//!
//! CLWB and CLFLUSHOPT have no intrinsic in `core::arch`, so they are
//! emitted with inline assembly; the assembler accepts them whatever the
//! target features, and the dispatcher only runs them where CPUID says so.

use crate::engine::algo::{Flush, Vector, LINE};
use crate::engine::{CopyTier, FlushKind, Ops};
use core::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct Sse2(__m128i);
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256i);
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512i);

// The methods below are only ever inlined into leaves compiled with the
// matching `#[target_feature]` (see `ops_table!`), so the intrinsics are
// available wherever they end up.

impl Vector for Sse2 {
    const WIDTH: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        Sse2(_mm_loadu_si128(p.cast()))
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        _mm_storeu_si128(p.cast(), v.0)
    }
    #[inline(always)]
    unsafe fn stream(p: *mut u8, v: Self) {
        _mm_stream_si128(p.cast(), v.0)
    }
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        Sse2(_mm_set1_epi8(b as i8))
    }
}

impl Vector for Avx2 {
    const WIDTH: usize = 32;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        Avx2(_mm256_loadu_si256(p.cast()))
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        _mm256_storeu_si256(p.cast(), v.0)
    }
    #[inline(always)]
    unsafe fn stream(p: *mut u8, v: Self) {
        _mm256_stream_si256(p.cast(), v.0)
    }
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        Avx2(_mm256_set1_epi8(b as i8))
    }
}

impl Vector for Avx512 {
    const WIDTH: usize = 64;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        Avx512(_mm512_loadu_si512(p.cast()))
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        _mm512_storeu_si512(p.cast(), v.0)
    }
    #[inline(always)]
    unsafe fn stream(p: *mut u8, v: Self) {
        _mm512_stream_si512(p.cast(), v.0)
    }
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        Avx512(_mm512_set1_epi8(b as i8))
    }
}

pub(crate) struct Clwb;
pub(crate) struct ClflushOpt;
pub(crate) struct Clflush;

impl Flush for Clwb {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn line_size() -> usize {
        LINE
    }
    #[inline(always)]
    unsafe fn flush_line(p: *const u8) {
        core::arch::asm!("clwb [{}]", in(reg) p, options(nostack, preserves_flags));
    }
}

impl Flush for ClflushOpt {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn line_size() -> usize {
        LINE
    }
    #[inline(always)]
    unsafe fn flush_line(p: *const u8) {
        core::arch::asm!("clflushopt [{}]", in(reg) p, options(nostack, preserves_flags));
    }
}

impl Flush for Clflush {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn line_size() -> usize {
        LINE
    }
    #[inline(always)]
    unsafe fn flush_line(p: *const u8) {
        _mm_clflush(p)
    }
}

/// SFENCE: orders (and, for persistence, waits for) every earlier CLWB,
/// CLFLUSHOPT and non-temporal store. Issued on every platform, eADR
/// included, because non-temporal stores sit in write-combining buffers
/// that eADR does not cover until they are fenced.
///
/// # Safety
/// None; `unsafe` only to fit the table.
unsafe fn sfence() {
    crate::engine::trace::fence();
    _mm_sfence()
}

/// Stamps the three flush variants of one copy tier. Invalidation uses
/// CLFLUSHOPT in the CLFLUSHOPT table and CLFLUSH elsewhere: a CPU with
/// CLWB is not promised CLFLUSHOPT, and CLFLUSH always exists.
macro_rules! copy_tier {
    ($feature:literal, $V:ty, $nt:literal, $copy:literal) => {
        [
            ops_table!(#[target_feature(enable = $feature)], $V, $nt, Clwb, Clflush, sfence,
                       concat!("x86_64/", $copy, "+clwb")),
            ops_table!(#[target_feature(enable = $feature)], $V, $nt, ClflushOpt, ClflushOpt, sfence,
                       concat!("x86_64/", $copy, "+clflushopt")),
            ops_table!(#[target_feature(enable = $feature)], $V, $nt, Clflush, Clflush, sfence,
                       concat!("x86_64/", $copy, "+clflush")),
        ]
    };
}
use super::ops_table;

static AVX512F: [Ops; 3] = copy_tier!("avx512f", Avx512, true, "avx512f");
static AVX2: [Ops; 3] = copy_tier!("avx2", Avx2, true, "avx2");
static SSE2: [Ops; 3] = copy_tier!("sse2", Sse2, true, "sse2");
// The temporal tier uses SSE2 registers (baseline on x86_64) for ordinary
// stores only.
static TEMPORAL: [Ops; 3] = copy_tier!("sse2", Sse2, false, "temporal");

pub(crate) fn table(copy: CopyTier, flush: FlushKind) -> Option<&'static Ops> {
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
