//! Vectors made of machine words, for the generic algorithm.
//!
//! - [`Words`], 16 bytes: the temporal copy of architectures without a
//!   SIMD tier of their own. It has no non-temporal store; `stream` is an
//!   ordinary store and tables built on it never take the non-temporal
//!   path.
//! - `Wide64` (feature `test-tables`, which only this crate's own tests
//!   enable): 64 bytes, the width of an AVX-512 register, so that the
//!   generic algorithm at a 64-byte vector width (one vector per cache
//!   line: no inner loop, every edge store a whole line) runs in the tier
//!   matrix and under the persistence checker on every machine. Its table,
//!   `test/portable64+<flush>`, is the stand-in for the AVX-512 tier: of
//!   that tier, only the leaf's intrinsics (`_mm512_loadu_si512`,
//!   `_mm512_storeu_si512`, `_mm512_stream_si512`, `_mm512_set1_epi8`)
//!   are then left untested on a CPU without AVX-512F.

// Not every architecture uses `Words`: x86_64 builds this module only for
// the test table.
#![cfg_attr(target_arch = "x86_64", allow(dead_code))]

use super::algo::Vector;
use core::ptr;

#[derive(Clone, Copy)]
pub(crate) struct Words([u64; 2]);

impl Vector for Words {
    const WIDTH: usize = 16;
    /// # Safety
    /// The contract of [`Vector::load`].
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller's contract (`p` readable for WIDTH bytes).
        Words(unsafe { ptr::read_unaligned(p.cast::<[u64; 2]>()) })
    }
    /// # Safety
    /// The contract of [`Vector::store`].
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        // Two 8-byte stores, never narrower: aligned words are not torn.
        // SAFETY: the caller's contract (`p` writable for WIDTH bytes).
        unsafe {
            ptr::write_unaligned(p.cast::<u64>(), v.0[0]);
            ptr::write_unaligned(p.add(8).cast::<u64>(), v.0[1]);
        }
    }
    /// # Safety
    /// The contract of [`Vector::stream`].
    #[inline(always)]
    unsafe fn stream(p: *mut u8, v: Self) {
        // SAFETY: as `store`.
        unsafe { Self::store(p, v) }
    }
    /// # Safety
    /// The contract of [`Vector::splat`].
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        let w = u64::from_ne_bytes([b; 8]);
        Words([w, w])
    }
}

#[cfg(feature = "test-tables")]
pub(crate) use wide::test_tables;

#[cfg(feature = "test-tables")]
mod wide {
    use crate::arch::algo::Vector;
    use crate::arch::{CopyTier, FlushKind, Table};
    use core::ptr;

    /// Eight machine words: one 64-byte vector.
    #[derive(Clone, Copy)]
    pub(crate) struct Wide64([u64; 8]);

    /// One 8-byte non-temporal store where the CPU has one (x86_64 MOVNTI,
    /// baseline SSE2), else an ordinary store.
    ///
    /// # Safety
    /// `p` is writable for 8 bytes and 8-byte aligned.
    #[inline(always)]
    unsafe fn stream_u64(p: *mut u8, v: u64) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's contract; SSE2 is baseline on x86_64.
        unsafe {
            core::arch::x86_64::_mm_stream_si64(p.cast(), v as i64)
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: the caller's contract.
        unsafe {
            ptr::write_unaligned(p.cast::<u64>(), v)
        }
    }

    impl Vector for Wide64 {
        const WIDTH: usize = 64;
        /// # Safety
        /// The contract of [`Vector::load`].
        #[inline(always)]
        unsafe fn load(p: *const u8) -> Self {
            // SAFETY: the caller's contract (`p` readable for 64 bytes).
            Wide64(unsafe { ptr::read_unaligned(p.cast::<[u64; 8]>()) })
        }
        /// # Safety
        /// The contract of [`Vector::store`].
        #[inline(always)]
        unsafe fn store(p: *mut u8, v: Self) {
            // Eight 8-byte stores, never narrower: aligned words are not torn.
            for (i, w) in v.0.into_iter().enumerate() {
                // SAFETY: the caller's contract (`p` writable for 64 bytes).
                unsafe { ptr::write_unaligned(p.add(8 * i).cast::<u64>(), w) };
            }
        }
        /// # Safety
        /// The contract of [`Vector::stream`].
        #[inline(always)]
        unsafe fn stream(p: *mut u8, v: Self) {
            for (i, w) in v.0.into_iter().enumerate() {
                // SAFETY: the caller's contract (`p` writable for 64 bytes
                // and 64-byte aligned, so each word is 8-byte aligned).
                unsafe { stream_u64(p.add(8 * i), w) };
            }
        }
        /// # Safety
        /// The contract of [`Vector::splat`].
        #[inline(always)]
        unsafe fn splat(b: u8) -> Self {
            Wide64([u64::from_ne_bytes([b; 8]); 8])
        }
        /// # Safety
        /// The contract of [`Vector::stream_word`].
        #[inline(always)]
        unsafe fn stream_word(p: *mut u8, v: u64) {
            // SAFETY: the caller's contract.
            unsafe { stream_u64(p, v) }
        }
    }

    #[cfg(target_arch = "x86_64")]
    static TABLES: [Table; 1] = [super::super::ops_table!(
        , Wide64, true,
        super::super::x86_64::Clflush, super::super::x86_64::Clflush,
        super::super::x86_64::sfence,
        CopyTier::Avx512f, FlushKind::Clflush, "test/portable64+clflush")];
    #[cfg(target_arch = "aarch64")]
    static TABLES: [Table; 1] = [super::super::ops_table!(
        , Wide64, true,
        super::super::aarch64::DcCvac, super::super::aarch64::DcCivac,
        super::super::aarch64::dsb_fence,
        CopyTier::Avx512f, FlushKind::DcCvac, "test/portable64+dc-cvac")];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    static TABLES: [Table; 1] = [super::super::ops_table!(
        , Wide64, true,
        crate::arch::algo::NoFlush, crate::arch::algo::NoFlush,
        super::super::generic::fence, CopyTier::Avx512f, FlushKind::None, "test/portable64+none")];

    /// The tables only tests use. Each runs on every CPU of its
    /// architecture: the flush is the baseline one (CLFLUSH, DC CVAC).
    pub(crate) fn test_tables() -> &'static [Table] {
        &TABLES
    }
}
