//! How to copy and flush, per instruction set, and nothing else: the
//! generic algorithm ([`algo`]) with its vector and flush traits, the
//! vector types, flush instructions and fences of each instruction set, and
//! the static tables of leaves stamped out from them. Nothing here knows
//! about knobs, snapshots or mappings: `crate::engine` depends on this
//! module, never the reverse.

#![allow(unsafe_code)]

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod algo;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod generic;
#[cfg(any(not(target_arch = "x86_64"), feature = "test-tables"))]
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::{has_pmem_api, table};
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) use generic::{has_pmem_api, table};
#[cfg(feature = "test-tables")]
pub(crate) use portable::test_tables;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{has_pmem_api, table};

/// Defines a fence leaf: the fence instruction and its trace event emitted
/// together, from this one place, so that neither can be removed without
/// the other. (Deleting the whole leaf removes the event too, which the
/// persistence checker catches; deleting the instruction here is caught by
/// `tests/verify/disasm.sh`, which looks for it in every leaf named
/// `*fence` of the release library.)
macro_rules! fence_leaf {
    ($(#[$doc:meta])* $name:ident, $insn:literal) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// None; `unsafe` only to fit the table.
        pub(super) unsafe fn $name() {
            crate::trace::fence();
            // SAFETY: a fence: no operands, no memory of its own touched.
            unsafe { core::arch::asm!($insn, options(nostack, preserves_flags)) }
        }
    };
}
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) use fence_leaf;

/// The copy half of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyTier {
    /// x86_64: 64-byte non-temporal stores.
    Avx512f,
    /// x86_64: 32-byte non-temporal stores.
    Avx2,
    /// x86_64: 16-byte non-temporal stores.
    Sse2,
    /// Ordinary stores only, every line written back.
    Temporal,
}

/// The flush half of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushKind {
    /// x86_64 CLWB: write back, line may stay cached.
    Clwb,
    /// x86_64 CLFLUSHOPT: write back and evict, weakly ordered.
    ClflushOpt,
    /// x86_64 CLFLUSH: write back and evict, ordered with stores.
    Clflush,
    /// aarch64 DC CVAP: clean to the point of persistence.
    DcCvap,
    /// aarch64 DC CVAC: clean to the point of coherency.
    DcCvac,
    /// No flush instruction (portable fallback).
    None,
}

impl CopyTier {
    /// The name used in table names.
    pub fn name(self) -> &'static str {
        match self {
            CopyTier::Avx512f => "avx512f",
            CopyTier::Avx2 => "avx2",
            CopyTier::Sse2 => "sse2",
            CopyTier::Temporal => "temporal",
        }
    }
}

impl FlushKind {
    /// The name used in table names.
    pub fn name(self) -> &'static str {
        match self {
            FlushKind::Clwb => "clwb",
            FlushKind::ClflushOpt => "clflushopt",
            FlushKind::Clflush => "clflush",
            FlushKind::DcCvap => "dc-cvap",
            FlushKind::DcCvac => "dc-cvac",
            FlushKind::None => "none",
        }
    }
}

/// `copy(dst, src, n, nt_from)` and `move(dst, src, n, nt_from)`: stores
/// of at least `nt_from` bytes take the non-temporal path (in a tier that
/// has one). `extern "C"`: a leaf never unwinds, so the C ABI's entry
/// points, which may not unwind either, can end in a tail call to it.
pub type LeafCopy = unsafe extern "C" fn(*mut u8, *const u8, usize, usize);
/// `set(dst, byte, n, nt_from)`.
pub type LeafSet = unsafe extern "C" fn(*mut u8, u8, usize, usize);
/// `flush(addr, n)`.
pub type RangeFn = unsafe fn(*const u8, usize);

/// The store leaves of one flush behaviour: with the table's write-back
/// instruction, or without any (byte- and page-granular memory). The
/// choice between the two halves is made once per call, by the caller.
#[derive(Clone, Copy, Debug)]
pub struct Half {
    /// Copy, non-overlapping. Not fenced.
    pub copy: LeafCopy,
    /// Overlap-safe copy. Not fenced.
    pub r#move: LeafCopy,
    /// Fill. Not fenced.
    pub set: LeafSet,
}

/// One coherent set of leaves: every function uses the same vector width
/// and the same flush instruction. Immutable statics.
///
/// Every function is `unsafe`: the caller guarantees that the ranges are
/// mapped and writable (or readable) for `n` bytes, and that the table is
/// runnable on this CPU.
#[derive(Debug)]
pub struct Table {
    /// `<arch>/<copy>+<flush>`, for example `x86_64/avx2+clwb`.
    pub name: &'static str,
    /// The copy tier.
    pub copy_tier: CopyTier,
    /// The flush instruction.
    pub flush_kind: FlushKind,
    /// The leaves that write back what they store with ordinary stores.
    pub flushing: Half,
    /// The same leaves without flush instructions.
    pub noflush: Half,
    /// Write back every line of a range (CLWB, CLFLUSHOPT, CLFLUSH, DC CVAP...).
    pub flush: RangeFn,
    /// Write back and invalidate every line of a range.
    pub invalidate: RangeFn,
    /// Order every earlier flush and non-temporal store before later stores.
    pub fence: unsafe fn(),
}

/// Stamps out one table: the leaves of every operation for one vector type,
/// one flush and one invalidate instruction. The leading attributes (a
/// `#[target_feature]`) go on every leaf that stores.
macro_rules! ops_table {
    ($(#[$leaf:meta])*, $V:ty, $nt:literal, $F:ty, $Inv:ty, $fence:path,
     $copy_tier:expr, $flush_kind:expr, $name:expr) => {{
        use crate::arch::algo::{self, NoFlush};
        use crate::arch::{Half, Table};

        /// # Safety
        /// As [`Half::copy`] with this table's flush.
        $(#[$leaf])*
        unsafe extern "C" fn copy(d: *mut u8, s: *const u8, n: usize, nt_from: usize) {
            // SAFETY: the caller upholds `Table`'s contract (ranges valid,
            // table runnable on this CPU), which is what `algo` requires.
            unsafe { algo::copy::<$V, $F, $nt>(d, s, n, nt_from) }
        }
        /// # Safety
        /// As [`Half::copy`], no flush.
        $(#[$leaf])*
        unsafe extern "C" fn copy_noflush(d: *mut u8, s: *const u8, n: usize, nt_from: usize) {
            // SAFETY: as in `copy`.
            unsafe { algo::copy::<$V, NoFlush, $nt>(d, s, n, nt_from) }
        }
        /// # Safety
        /// As [`Half::move`] with this table's flush.
        $(#[$leaf])*
        unsafe extern "C" fn r#move(d: *mut u8, s: *const u8, n: usize, nt_from: usize) {
            // SAFETY: as in `copy`.
            unsafe { algo::r#move::<$V, $F, $nt>(d, s, n, nt_from) }
        }
        /// # Safety
        /// As [`Half::move`], no flush.
        $(#[$leaf])*
        unsafe extern "C" fn move_noflush(d: *mut u8, s: *const u8, n: usize, nt_from: usize) {
            // SAFETY: as in `copy`.
            unsafe { algo::r#move::<$V, NoFlush, $nt>(d, s, n, nt_from) }
        }
        /// # Safety
        /// As [`Half::set`] with this table's flush.
        $(#[$leaf])*
        unsafe extern "C" fn set(d: *mut u8, c: u8, n: usize, nt_from: usize) {
            // SAFETY: as in `copy`.
            unsafe { algo::set::<$V, $F, $nt>(d, c, n, nt_from) }
        }
        /// # Safety
        /// As [`Half::set`], no flush.
        $(#[$leaf])*
        unsafe extern "C" fn set_noflush(d: *mut u8, c: u8, n: usize, nt_from: usize) {
            // SAFETY: as in `copy`.
            unsafe { algo::set::<$V, NoFlush, $nt>(d, c, n, nt_from) }
        }
        /// # Safety
        /// As [`Table::flush`].
        unsafe fn flush(p: *const u8, n: usize) {
            // SAFETY: as in `copy`.
            unsafe { algo::flush_range::<$F>(p, n) }
        }
        /// # Safety
        /// As [`Table::invalidate`].
        unsafe fn invalidate(p: *const u8, n: usize) {
            // SAFETY: as in `copy`.
            unsafe { algo::flush_range::<$Inv>(p, n) }
        }
        Table {
            name: $name,
            copy_tier: $copy_tier,
            flush_kind: $flush_kind,
            flushing: Half { copy, r#move, set },
            noflush: Half {
                copy: copy_noflush,
                r#move: move_noflush,
                set: set_noflush,
            },
            flush,
            invalidate,
            fence: $fence,
        }
    }};
}
pub(crate) use ops_table;
