//! The copy, fill and move algorithms, written once.
//!
//! Every tier of the engine is one of these functions instantiated with a
//! vector type (how wide a store is, and how to make it non-temporal) and a
//! flush type (which instruction writes a cache line back). Only the leaves
//! in `arch/` carry `#[target_feature]`; everything here is
//! `#[inline(always)]` so it is compiled inside those leaves with their
//! instruction set.
//!
//! The shape of a durable copy (after PMDK's libpmem2 and the kernel's
//! `__memcpy_flushcache`):
//!
//! ```text
//!  dst:  |--head--|=========== body ===========|--tail--|
//!        temporal  non-temporal, whole 64-byte  temporal
//!        + flush   lines, no flush needed       + flush
//! ```
//!
//! Copies shorter than the non-temporal threshold are temporal throughout
//! and every touched line is flushed. The threshold is an argument of
//! every leaf (`nt_from`), taken from the caller's snapshot: one call never
//! mixes the table of one configuration with the threshold of another.
//!
//! Copy and fill are one algorithm over a [`Source`] of bytes: memory
//! ([`Src`]) or one repeated byte ([`Splat`]).
//!
//! A destination and length that are both 8-byte aligned never see a store narrower than 8 bytes, so aligned
//! words are never torn into bytes.

#![allow(unsafe_code)]

use crate::trace;
use core::ptr;

/// Bytes in one non-temporal body step: the x86 cache line.
pub(crate) const LINE: usize = 64;

/// A SIMD register type of one instruction set.
pub(crate) trait Vector: Copy {
    /// Bytes per load or store.
    const WIDTH: usize;
    /// # Safety
    /// `p` is valid for reading `WIDTH` bytes (any alignment).
    unsafe fn load(p: *const u8) -> Self;
    /// # Safety
    /// `p` is valid for writing `WIDTH` bytes (any alignment).
    unsafe fn store(p: *mut u8, v: Self);
    /// Non-temporal store.
    /// # Safety
    /// `p` is valid for writing `WIDTH` bytes and aligned to `WIDTH`.
    unsafe fn stream(p: *mut u8, v: Self);
    /// Every byte set to `b`.
    /// # Safety
    /// The instruction set of `Self` is available.
    unsafe fn splat(b: u8) -> Self;
    /// Non-temporal store of one 8-byte word (x86 MOVNTI). Only the
    /// non-temporal tiers call it; the default is an ordinary store.
    /// # Safety
    /// `p` is valid for writing 8 bytes and 8-byte aligned.
    #[inline(always)]
    unsafe fn stream_word(p: *mut u8, v: u64) {
        // SAFETY: the caller's contract.
        unsafe { ptr::write_unaligned(p.cast::<u64>(), v) }
    }
    /// Bytes a flushing copy of at most [`BLOCKS_UP_TO`] bytes loads into
    /// registers and stores before writing their lines back: a power of
    /// two, a multiple of `WIDTH` and of [`LINE`]. The x86 tiers use their
    /// whole register file; the default, [`FLUSH_CHUNK`], makes short and
    /// long copies alike.
    const BLOCK: usize = FLUSH_CHUNK;
    /// Copies `BLOCK` bytes from `s` to `d` with ordinary stores (not
    /// recorded: [`Source::store_block`] records them).
    ///
    /// # Safety
    /// `s` readable and `d` writable for `BLOCK` bytes, no overlap; the
    /// instruction set of `Self` is available.
    #[inline(always)]
    unsafe fn copy_block(d: *mut u8, s: *const u8) {
        // SAFETY: every offset is below `BLOCK`, the caller's contract.
        unsafe {
            for k in 0..Self::BLOCK / Self::WIDTH {
                Self::store(d.add(k * Self::WIDTH), Self::load(s.add(k * Self::WIDTH)));
            }
        }
    }
}

/// A cache-line write-back instruction.
pub(crate) trait Flush {
    /// False for the "no flush" variant used on byte-granular (eADR) and
    /// page-granular mappings.
    const ACTIVE: bool;
    /// Cache-line size in bytes (a power of two).
    fn line_size() -> usize;
    /// # Safety
    /// `p` is a mapped address.
    unsafe fn flush_line(p: *const u8);
    /// Asks for the line at `p` in a writable state ahead of the stores to
    /// it (x86 PREFETCHW); a hint, with no effect on what is stored or
    /// when it is durable. The default does nothing.
    ///
    /// # Safety
    /// `p` is a mapped address.
    #[inline(always)]
    unsafe fn prefetch_for_store(_p: *const u8) {}
}

/// No flush at all: the platform or the page cache takes care of it.
pub(crate) struct NoFlush;

impl Flush for NoFlush {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn line_size() -> usize {
        LINE
    }
    /// # Safety
    /// The contract of [`Flush::flush_line`].
    #[inline(always)]
    unsafe fn flush_line(_: *const u8) {}
}

/// Where the bytes of a store come from: memory for a copy, one repeated
/// byte for a fill. The algorithm below is written once over it; each
/// method is `#[inline(always)]`, so a fill compiles to register stores.
pub(crate) trait Source<V: Vector>: Copy {
    /// `V::WIDTH` bytes at offset `i`.
    ///
    /// # Safety
    /// For memory, `i + V::WIDTH` bytes are readable.
    unsafe fn vector(self, i: usize) -> V;
    /// 8 bytes at offset `i` (any alignment).
    ///
    /// # Safety
    /// For memory, `i + 8` bytes are readable.
    unsafe fn u64(self, i: usize) -> u64;
    /// 4 bytes at offset `i`.
    ///
    /// # Safety
    /// For memory, `i + 4` bytes are readable.
    unsafe fn u32(self, i: usize) -> u32;
    /// 2 bytes at offset `i`.
    ///
    /// # Safety
    /// For memory, `i + 2` bytes are readable.
    unsafe fn u16(self, i: usize) -> u16;
    /// The byte at offset `i`.
    ///
    /// # Safety
    /// For memory, `i + 1` bytes are readable.
    unsafe fn u8(self, i: usize) -> u8;
    /// The same source `off` bytes further on.
    ///
    /// # Safety
    /// For memory, the result stays inside the source range.
    unsafe fn at(self, off: usize) -> Self;
    /// Stores the `V::BLOCK` bytes at offset `i` to `d + i`, recorded.
    ///
    /// # Safety
    /// `d + i` writable for `V::BLOCK` bytes; for memory, `i + V::BLOCK`
    /// bytes are readable; the instruction set of `V` is available.
    #[inline(always)]
    unsafe fn store_block(self, d: *mut u8, i: usize) {
        // SAFETY: the caller's contract covers every offset below.
        unsafe { store_vectors::<V, Self>(d, self, i, V::BLOCK) }
    }
}

/// A copy's source: readable memory.
#[derive(Clone, Copy)]
pub(crate) struct Src(pub(crate) *const u8);

impl<V: Vector> Source<V> for Src {
    /// # Safety
    /// The contract of [`Source::vector`].
    #[inline(always)]
    unsafe fn vector(self, i: usize) -> V {
        // SAFETY: the caller's contract.
        unsafe { V::load(self.0.add(i)) }
    }
    /// # Safety
    /// The contract of [`Source::u64`].
    #[inline(always)]
    unsafe fn u64(self, i: usize) -> u64 {
        // SAFETY: the caller's contract.
        unsafe { ptr::read_unaligned(self.0.add(i).cast::<u64>()) }
    }
    /// # Safety
    /// The contract of [`Source::u32`].
    #[inline(always)]
    unsafe fn u32(self, i: usize) -> u32 {
        // SAFETY: the caller's contract.
        unsafe { ptr::read_unaligned(self.0.add(i).cast::<u32>()) }
    }
    /// # Safety
    /// The contract of [`Source::u16`].
    #[inline(always)]
    unsafe fn u16(self, i: usize) -> u16 {
        // SAFETY: the caller's contract.
        unsafe { ptr::read_unaligned(self.0.add(i).cast::<u16>()) }
    }
    /// # Safety
    /// The contract of [`Source::u8`].
    #[inline(always)]
    unsafe fn u8(self, i: usize) -> u8 {
        // SAFETY: the caller's contract.
        unsafe { *self.0.add(i) }
    }
    /// # Safety
    /// The contract of [`Source::at`].
    #[inline(always)]
    unsafe fn at(self, off: usize) -> Self {
        // SAFETY: the caller's contract.
        Src(unsafe { self.0.add(off) })
    }
    /// # Safety
    /// The contract of [`Source::store_block`].
    #[inline(always)]
    unsafe fn store_block(self, d: *mut u8, i: usize) {
        // SAFETY: the caller's contract; the lines recorded are the ones
        // `copy_block` stores.
        unsafe {
            for k in 0..V::BLOCK / V::WIDTH {
                trace::store(d.add(i + k * V::WIDTH), V::WIDTH);
            }
            V::copy_block(d.add(i), self.0.add(i));
        }
    }
}

/// A fill's source: one byte, repeated, already broadcast to a vector and
/// a word.
#[derive(Clone, Copy)]
pub(crate) struct Splat<V> {
    v: V,
    w: u64,
}

impl<V: Vector> Splat<V> {
    /// # Safety
    /// The instruction set of `V` is available.
    #[inline(always)]
    pub(crate) unsafe fn new(c: u8) -> Self {
        Splat {
            // SAFETY: the caller's contract.
            v: unsafe { V::splat(c) },
            w: u64::from_ne_bytes([c; 8]),
        }
    }
}

impl<V: Vector> Source<V> for Splat<V> {
    /// # Safety
    /// The contract of [`Source::vector`].
    #[inline(always)]
    unsafe fn vector(self, _: usize) -> V {
        self.v
    }
    /// # Safety
    /// The contract of [`Source::u64`].
    #[inline(always)]
    unsafe fn u64(self, _: usize) -> u64 {
        self.w
    }
    /// # Safety
    /// The contract of [`Source::u32`].
    #[inline(always)]
    unsafe fn u32(self, _: usize) -> u32 {
        self.w as u32
    }
    /// # Safety
    /// The contract of [`Source::u16`].
    #[inline(always)]
    unsafe fn u16(self, _: usize) -> u16 {
        self.w as u16
    }
    /// # Safety
    /// The contract of [`Source::u8`].
    #[inline(always)]
    unsafe fn u8(self, _: usize) -> u8 {
        self.w as u8
    }
    /// # Safety
    /// The contract of [`Source::at`].
    #[inline(always)]
    unsafe fn at(self, _: usize) -> Self {
        self
    }
}

/// An ordinary vector store, recorded.
///
/// # Safety
/// `p` is valid for writing `V::WIDTH` bytes; the instruction set of `V`
/// is available.
#[inline(always)]
unsafe fn store<V: Vector>(p: *mut u8, v: V) {
    trace::store(p, V::WIDTH);
    // SAFETY: the caller's contract.
    unsafe { V::store(p, v) }
}

/// A non-temporal vector store, recorded.
///
/// # Safety
/// `p` is valid for writing `V::WIDTH` bytes and aligned to it; the
/// instruction set of `V` is available.
#[inline(always)]
unsafe fn stream<V: Vector>(p: *mut u8, v: V) {
    trace::stream(p, V::WIDTH);
    // SAFETY: the caller's contract.
    unsafe { V::stream(p, v) }
}

/// A non-temporal 8-byte store, recorded.
///
/// # Safety
/// `p` is valid for writing 8 bytes and 8-byte aligned.
#[inline(always)]
unsafe fn stream_word<V: Vector>(p: *mut u8, v: u64) {
    trace::stream(p, 8);
    // SAFETY: the caller's contract.
    unsafe { V::stream_word(p, v) }
}

/// An ordinary scalar store, recorded.
///
/// # Safety
/// `p` is valid for writing `size_of::<T>()` bytes.
#[inline(always)]
unsafe fn store_scalar<T: Copy>(p: *mut u8, v: T) {
    trace::store(p, core::mem::size_of::<T>());
    // SAFETY: the caller's contract.
    unsafe { ptr::write_unaligned(p.cast::<T>(), v) }
}

/// Writes back every line that `[p, p + n)` touches.
///
/// # Safety
/// The range is mapped; the instruction of `F` is available.
#[inline(always)]
pub(crate) unsafe fn flush_range<F: Flush>(p: *const u8, n: usize) {
    if !F::ACTIVE || n == 0 {
        return;
    }
    let line = F::line_size();
    let end = p as usize + n;
    let mut a = p as usize & !(line - 1);
    while a < end {
        trace::flush(a as *const u8, line);
        // SAFETY: `a` lies in a line of the mapped range.
        unsafe { F::flush_line(a as *const u8) };
        a += line;
    }
}

/// Stores `n` bytes of `src` with ordinary stores, using overlapping
/// first/last stores instead of byte loops. Stores are never narrower than
/// 8 bytes when `n >= 8`, and they start at offsets `0, k*width, n - width`,
/// so an 8-aligned `d` and `n` keep every store 8-aligned.
///
/// # Safety
/// `d` writable for `n` bytes, `src` readable for `n` bytes, no overlap;
/// the instruction set of `V` is available.
#[inline(always)]
unsafe fn store_temporal<V: Vector, S: Source<V>>(d: *mut u8, src: S, n: usize) {
    // SAFETY: (whole body) every offset stored and read is below `n`, by
    // the bounds of each branch; the caller's contract covers `n` bytes.
    unsafe {
        if n >= V::WIDTH {
            let mut i = 0;
            while i + V::WIDTH <= n {
                store(d.add(i), src.vector(i));
                i += V::WIDTH;
            }
            if i < n {
                let j = n - V::WIDTH;
                store(d.add(j), src.vector(j));
            }
        } else if n >= 8 {
            let mut i = 0;
            while i + 8 <= n {
                store_scalar(d.add(i), src.u64(i));
                i += 8;
            }
            if i < n {
                let j = n - 8;
                store_scalar(d.add(j), src.u64(j));
            }
        } else if n >= 4 {
            let (a, b) = (src.u32(0), src.u32(n - 4));
            store_scalar(d, a);
            store_scalar(d.add(n - 4), b);
        } else if n >= 2 {
            let (a, b) = (src.u16(0), src.u16(n - 2));
            store_scalar(d, a);
            store_scalar(d.add(n - 2), b);
        } else if n == 1 {
            store_scalar(d, src.u8(0));
        }
    }
}

/// Bytes of ordinary stores issued before their lines are written back,
/// in a flushing temporal store longer than [`BLOCKS_UP_TO`]: sixteen
/// lines, written back while the next chunk's lines are on their way (see
/// [`store_flushed`]). Measured with stand-alone C loops of AVX-512
/// stores, CLWB and an SFENCE per 4 KiB copy into cold lines, on the Intel
/// Xeon of BENCHMARKS.md's 2026-12-03 sections: the whole 4 KiB stored
/// before any write-back 904-920 ns, chunks of 256 B 740, of 1 KiB
/// 681-687, of 2 KiB 723-730. Process to process the same loop varied by
/// 10 %.
pub(crate) const FLUSH_CHUNK: usize = 16 * LINE;

/// The longest flushing temporal store that goes in blocks of
/// [`Vector::BLOCK`] (one 2 KiB block of AVX-512 registers, PMDK's
/// structure), each written back as soon as it is stored; there is no
/// next chunk to ask for ahead of time in so short a store.
pub(crate) const BLOCKS_UP_TO: usize = 2 * FLUSH_CHUNK;

/// [`store_temporal`] and the write-back of every touched line with `F`.
/// Up to [`FLUSH_CHUNK`] bytes: every store, then every write-back. Up to
/// [`BLOCKS_UP_TO`]: blocks of [`Vector::BLOCK`]. Beyond: chunks of
/// [`FLUSH_CHUNK`], and before each chunk is written back the lines of the
/// next one are asked for ([`Flush::prefetch_for_store`]), so their
/// ownership requests overlap the write-backs. Measured through
/// libpmem.so.1 against PMDK on the Xeon (BENCHMARKS.md, "TEMPORAL copies:
/// blocks and chunks"): fio's `direct=0` 4 KiB writes (a file the L3
/// holds) 1.47x PMDK's bandwidth, where 2 KiB blocks gave 0.94x and plain
/// 1 KiB chunks 1.07x; cold 4-64 KiB copies 0.88-1.01x PMDK's time with
/// AVX-512 and 0.93-0.95x with AVX2, where plain chunks gave 0.87-1.16x
/// and 1.03-1.08x.
///
/// # Safety
/// As [`store_temporal`]; the instruction of `F` is available.
#[inline(always)]
unsafe fn store_flushed<V: Vector, F: Flush, S: Source<V>>(d: *mut u8, src: S, n: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        if !F::ACTIVE || n <= FLUSH_CHUNK {
            store_temporal::<V, S>(d, src, n);
            flush_range::<F>(d, n);
        } else if n <= BLOCKS_UP_TO {
            store_chunks::<V, F, S>(d, src, n, V::BLOCK, false);
        } else {
            store_chunks::<V, F, S>(d, src, n, FLUSH_CHUNK, true);
        }
    }
}

/// [`store_flushed`] over destination chunks that end on multiples of
/// `chunk` (a power of two, so of 8: an 8-aligned `d` and `n` still never
/// see a store narrower than 8 bytes), each written back once stored,
/// after asking for the next chunk's lines when `ahead`. A whole chunk of
/// `V::BLOCK` bytes is one [`Source::store_block`]; other whole chunks
/// are unrolled.
///
/// # Safety
/// As [`store_flushed`]; `chunk` is `V::BLOCK` or [`FLUSH_CHUNK`].
#[inline(always)]
unsafe fn store_chunks<V: Vector, F: Flush, S: Source<V>>(
    d: *mut u8,
    src: S,
    n: usize,
    chunk: usize,
    ahead: bool,
) {
    // SAFETY: (whole body) the caller's contract; each chunk `[i, end)`
    // lies inside `[0, n)`.
    unsafe {
        let mut i = 0;
        while i < n {
            let next = ((d as usize + i) & !(chunk - 1)) + chunk;
            let end = (next - d as usize).min(n);
            if end - i != chunk {
                store_temporal::<V, S>(d.add(i), src.at(i), end - i);
            } else if chunk == V::BLOCK {
                src.store_block(d, i);
            } else {
                store_vectors::<V, S>(d, src, i, chunk);
            }
            if ahead {
                let (mut q, next_end) = (end, (end + chunk).min(n));
                while q < next_end {
                    F::prefetch_for_store(d.add(q));
                    q += LINE;
                }
            }
            flush_range::<F>(d.add(i), end - i);
            i = end;
        }
    }
}

/// The `len` bytes at offset `i` of `src` to `d + i`, a vector at a time,
/// recorded; `len` a multiple of `V::WIDTH` (constant where it is called,
/// so the loop unrolls).
///
/// # Safety
/// `d + i` writable for `len` bytes; for memory, `i + len` bytes of `src`
/// are readable; the instruction set of `V` is available.
#[inline(always)]
unsafe fn store_vectors<V: Vector, S: Source<V>>(d: *mut u8, src: S, i: usize, len: usize) {
    // SAFETY: every offset is below `i + len`, the caller's contract.
    unsafe {
        for k in 0..len / V::WIDTH {
            let j = i + k * V::WIDTH;
            store(d.add(j), src.vector(j));
        }
    }
}

/// Splits `[d, d + n)` into a head up to the first line boundary, whole
/// lines, and a tail. Returns `(head, body_end)`.
#[inline(always)]
pub fn split(d: usize, n: usize) -> (usize, usize) {
    let head = d.wrapping_neg() & (LINE - 1);
    let head = head.min(n);
    let body = (n - head) & !(LINE - 1);
    (head, head + body)
}

/// Below this size the no-flush variants (byte- and page-granular
/// memory, where nothing needs writing back) copy with ordinary stores:
/// there a non-temporal store only saves cache, and costs the next read a
/// miss. Measured with `make -C tests/fault bench` into a page-granular
/// mapping: ordinary stores were 1.15-3.5x faster than the non-temporal
/// path from 64 B to 1 MiB, and 0.67-0.76x at 16 MiB; 4 MiB splits that
/// range (the sizes between were not measured). Applied when a snapshot
/// is built (its no-flush threshold is at least this), not in the leaves.
pub const NOFLUSH_NT_MIN: usize = 4 << 20;

/// Whether a store of `n` bytes takes the non-temporal path: only in a
/// tier that has one (`NT`), from `nt_from` bytes on.
#[inline(always)]
fn use_nt<const NT: bool>(n: usize, nt_from: usize) -> bool {
    NT && n >= nt_from
}

/// Whether a partial line `[d, d + n)` is whole aligned 8-byte words,
/// which [`store_edge`] may then store non-temporally.
#[inline(always)]
fn whole_words(d: usize, n: usize) -> bool {
    n != 0 && (d | n) & 7 == 0
}

/// Which edges of a non-temporal copy `[d, d + n)` with the given split go
/// non-temporal: `(head, tail)`.
///
/// An edge of whole aligned words is stored with MOVNTI, as the kernel's
/// `__memcpy_flushcache` does, so the fence waits for a write-combining
/// buffer instead of a write-back round trip. Measured on AMD Zen with
/// CLFLUSHOPT (BENCHMARKS.md, `make bench`): an 8-64 B persist 99 ns
/// instead of 150 ns, and a 1000 B one 8 bytes past a line start 206 ns
/// instead of 318 ns (PMDK: 200 ns). A ragged edge (not whole words) is
/// stored with ordinary stores and written back: mixing both kinds of
/// store in one line measured about 3x slower than either. The head goes
/// non-temporal only if the tail does too (or there is none): a head of
/// words with a ragged ordinary tail measured 7-12% slower than both edges
/// ordinary (100 B at +8), in either order.
#[inline(always)]
fn edges_nt(d: usize, head: usize, body_end: usize, n: usize) -> (bool, bool) {
    let tail = n - body_end;
    let tail_nt = whole_words(d + body_end, tail);
    (whole_words(d, head) && (tail == 0 || tail_nt), tail_nt)
}

/// A partial line of a non-temporal store (its head or its tail, or all
/// of one shorter than a line): whole aligned words by non-temporal stores
/// when `nt` (see [`edges_nt`]), else ordinary stores and a write-back.
/// Without a flush (`NoFlush`), where ordinary stores suffice, always those.
///
/// # Safety
/// As [`store_durable`]; with `nt`, `[d, d + n)` is whole aligned words.
#[inline(always)]
unsafe fn store_edge<V: Vector, F: Flush, S: Source<V>>(d: *mut u8, src: S, n: usize, nt: bool) {
    // SAFETY: (whole body) the caller's contract; with `nt` every word
    // `[d + i, d + i + 8)` lies in the range and is 8-aligned.
    unsafe {
        if !(F::ACTIVE && nt) {
            store_temporal::<V, S>(d, src, n);
            flush_range::<F>(d, n);
            return;
        }
        let mut i = 0;
        while i < n {
            stream_word::<V>(d.add(i), src.u64(i));
            i += 8;
        }
    }
}

/// The durable store, copy or fill: temporal head and tail written back
/// with `F`, non-temporal body when `n >= nt_from`. Not fenced.
///
/// # Safety
/// `src` readable and `d` writable for `n` bytes; no overlap; the
/// instruction set of `V` and the instruction of `F` are available.
#[inline(always)]
pub(crate) unsafe fn store_durable<V: Vector, F: Flush, S: Source<V>, const NT: bool>(
    d: *mut u8,
    src: S,
    n: usize,
    nt_from: usize,
) {
    // SAFETY: (whole body) the caller's contract; every offset below is
    // inside `[0, n)` by the split.
    unsafe {
        if !use_nt::<NT>(n, nt_from) {
            store_flushed::<V, F, S>(d, src, n);
            return;
        }
        let (head, body_end) = split(d as usize, n);
        let (head_nt, tail_nt) = edges_nt(d as usize, head, body_end, n);
        // Ordinary stores before any non-temporal one: on AMD Zen an
        // ordinary store that misses the cache measured about 110 ns
        // slower after the non-temporal body than before it (1003 B at
        // +7: 1.5x PMDK's time with the tail last, 1.1x with it first;
        // BENCHMARKS.md).
        if head != 0 && !head_nt {
            store_edge::<V, F, S>(d, src, head, false);
        }
        if body_end < n && !tail_nt {
            store_edge::<V, F, S>(d.add(body_end), src.at(body_end), n - body_end, false);
        }
        if head != 0 && head_nt {
            store_edge::<V, F, S>(d, src, head, true);
        }
        let mut i = head;
        while i < body_end {
            let mut j = 0;
            while j < LINE {
                stream(d.add(i + j), src.vector(i + j));
                j += V::WIDTH;
            }
            i += LINE;
        }
        if body_end < n && tail_nt {
            store_edge::<V, F, S>(d.add(body_end), src.at(body_end), n - body_end, true);
        }
    }
}

/// The durable copy.
///
/// # Safety
/// As [`store_durable`] with memory at `s`.
#[inline(always)]
pub(crate) unsafe fn copy<V: Vector, F: Flush, const NT: bool>(
    d: *mut u8,
    s: *const u8,
    n: usize,
    nt_from: usize,
) {
    // SAFETY: the caller's contract.
    unsafe { store_durable::<V, F, Src, NT>(d, Src(s), n, nt_from) }
}

/// The durable fill.
///
/// # Safety
/// As [`store_durable`] (no source memory).
#[inline(always)]
pub(crate) unsafe fn set<V: Vector, F: Flush, const NT: bool>(
    d: *mut u8,
    c: u8,
    n: usize,
    nt_from: usize,
) {
    // SAFETY: the caller's contract; `V`'s instruction set is available.
    unsafe { store_durable::<V, F, Splat<V>, NT>(d, Splat::new(c), n, nt_from) }
}

/// One step of an overlapping move: at most one line, bounced through the
/// stack so the stores cannot clobber source bytes not yet read.
///
/// # Safety
/// `s` readable and `d` writable for `len <= LINE` bytes (they may
/// overlap); the instruction sets of `V` and `F` are available.
#[inline(always)]
unsafe fn move_piece<V: Vector, F: Flush>(d: *mut u8, s: *const u8, len: usize, nt: bool) {
    #[repr(align(64))]
    struct Bounce([u8; LINE]);
    let mut b = Bounce([0; LINE]);
    // SAFETY: (whole body) the caller's contract; the bounce buffer holds
    // a whole line, and `len <= LINE`.
    unsafe {
        ptr::copy_nonoverlapping(s, b.0.as_mut_ptr(), len);
        if nt && len == LINE && (d as usize).is_multiple_of(LINE) {
            let mut j = 0;
            while j < LINE {
                stream(d.add(j), V::load(b.0.as_ptr().add(j)));
                j += V::WIDTH;
            }
        } else {
            store_temporal::<V, Src>(d, Src(b.0.as_ptr()), len);
            flush_range::<F>(d, len);
        }
    }
}

/// The durable move: [`copy`] when the ranges do not overlap; otherwise
/// line by line, forwards when `d < s` and backwards when `d > s`, so every
/// source byte is read before any store can reach it.
///
/// # Safety
/// `s` readable and `d` writable for `n` bytes (they may overlap); the
/// instruction sets are available.
#[inline(always)]
pub(crate) unsafe fn r#move<V: Vector, F: Flush, const NT: bool>(
    d: *mut u8,
    s: *const u8,
    n: usize,
    nt_from: usize,
) {
    let (du, su) = (d as usize, s as usize);
    // SAFETY: (whole body) the caller's contract; each piece lies inside
    // `[0, n)` of both ranges.
    unsafe {
        if du == su || du.abs_diff(su) >= n {
            if du != su {
                copy::<V, F, NT>(d, s, n, nt_from);
            } else {
                // Moving onto itself stores nothing, but the caller still
                // expects the range to be on its way to the media.
                flush_range::<F>(d, n);
            }
            return;
        }
        let nt = use_nt::<NT>(n, nt_from);
        let (head, body_end) = split(du, n);
        if du < su {
            if head != 0 {
                move_piece::<V, F>(d, s, head, nt);
            }
            let mut i = head;
            while i < body_end {
                move_piece::<V, F>(d.add(i), s.add(i), LINE, nt);
                i += LINE;
            }
            if i < n {
                move_piece::<V, F>(d.add(i), s.add(i), n - i, nt);
            }
        } else {
            if body_end < n {
                move_piece::<V, F>(d.add(body_end), s.add(body_end), n - body_end, nt);
            }
            let mut i = body_end;
            while i > head {
                i -= LINE;
                move_piece::<V, F>(d.add(i), s.add(i), LINE, nt);
            }
            if head != 0 {
                move_piece::<V, F>(d, s, head, nt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_range_exactly() {
        for d in 0..130usize {
            for n in 0..300usize {
                let (head, body_end) = split(d, n);
                assert!(head <= n && body_end <= n, "d={d} n={n}");
                assert!(head < LINE);
                assert_eq!((body_end - head) % LINE, 0);
                assert!(n - body_end < LINE || head + (n - head) == body_end);
                if head < n {
                    assert_eq!((d + head) % LINE, 0, "body starts on a line, d={d} n={n}");
                }
            }
        }
    }
}
