//! A 16-byte "vector" made of two machine words: the temporal copy of
//! architectures without a SIMD tier of their own. It has no non-temporal
//! store; `stream` is an ordinary store and tables built on it never take
//! the non-temporal path.

use crate::engine::algo::Vector;
use core::ptr;

#[derive(Clone, Copy)]
pub(crate) struct Words([u64; 2]);

impl Vector for Words {
    const WIDTH: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        Words(ptr::read_unaligned(p.cast::<[u64; 2]>()))
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        // Two 8-byte stores, never narrower: aligned words are not torn.
        ptr::write_unaligned(p.cast::<u64>(), v.0[0]);
        ptr::write_unaligned(p.add(8).cast::<u64>(), v.0[1]);
    }
    #[inline(always)]
    unsafe fn stream(p: *mut u8, v: Self) {
        Self::store(p, v)
    }
    #[inline(always)]
    unsafe fn splat(b: u8) -> Self {
        let w = u64::from_ne_bytes([b; 8]);
        Words([w, w])
    }
}
