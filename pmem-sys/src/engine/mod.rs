//! The engine: one immutable snapshot of everything a call needs (the
//! copy, fill and move leaves with and without flushes, the flush, the
//! fence, the fault-safe copy, the non-temporal thresholds and the name),
//! chosen from the CPU and the knobs, reached through one atomic pointer
//! that each call loads once.
//!
//! - [`detect`] knows what the CPU has;
//! - [`crate::knobs`] knows what the user forced (plain data);
//! - [`dispatch`] selects (a pure function of both), builds the snapshot
//!   and publishes it, in one place;
//! - `crate::arch` holds the algorithm, written once, and its leaves per
//!   instruction set. This module depends on it, never the reverse.
//!
//! Dependencies run one way: `engine` → `arch`, `knobs`, `fault`;
//! `mapping` → `knobs`; `api` → all of them.

#![allow(unsafe_code)]

pub mod detect;
pub mod dispatch;

pub use crate::arch::algo::{NOFLUSH_NT_MIN, split};
pub use crate::arch::{CopyTier, FlushKind, Half, LeafCopy, LeafSet, RangeFn};
pub use crate::knobs::Knobs;
pub use crate::trace;
pub use detect::Features;
pub use dispatch::{Selection, get_option, select, set_option};

/// The knobs with the calls that change what runs (the path
/// `pmem_sys::engine::knobs` of earlier versions).
pub mod knobs {
    pub use super::dispatch::{get_option, set_option};
    pub use crate::knobs::*;
}

/// One snapshot: a complete, immutable configuration of the engine. Every
/// function uses the same vector width, flush instruction and thresholds.
/// A knob change builds a new snapshot and publishes it; a call in flight
/// finishes on the one it loaded. Snapshots are interned and never freed
/// (see [`dispatch`] for the bound), so a `&'static Ops` stays valid.
///
/// Every operation is `unsafe`: the caller guarantees that the ranges are
/// mapped and writable (or readable) for `n` bytes, and that the snapshot
/// is runnable on this CPU (see [`dispatch::runnable`]).
#[derive(Debug)]
pub struct Ops {
    /// `<arch>/<copy>+<flush>`, for example `x86_64/avx2+clwb`, with
    /// `+mc_<routine>` appended when the fault-safe copy is not the one
    /// the copy tier implies (see [`dispatch::select_guarded`]).
    pub name: &'static str,
    /// What was selected; `selection.threshold` is the non-temporal
    /// threshold for memory that needs flushes (stores of at least that
    /// many bytes take the non-temporal path).
    pub selection: Selection,
    /// The threshold for memory that needs no flushes (byte- and
    /// page-granular): `selection.threshold`, but at least
    /// [`NOFLUSH_NT_MIN`]. Kept computed, for the store path.
    pub noflush_threshold: usize,
    /// The store leaves that write back (cache-line-granular memory),
    /// copied into the snapshot so a call reaches a leaf in two loads.
    pub flushing: Half,
    /// The store leaves without flush instructions.
    pub noflush: Half,
    /// Write back every line of a range (CLWB, CLFLUSHOPT, CLFLUSH, DC CVAP...).
    pub flush: RangeFn,
    /// Write back and invalidate every line of a range.
    pub invalidate: RangeFn,
    /// Order every earlier flush and non-temporal store before later stores.
    pub fence: unsafe fn(),
    /// The fault-safe copy (`copy_mc`, `memcpy_from_pmem`).
    pub guarded: crate::fault::Guarded,
    /// The static table the leaves come from (`None` for the resolver).
    pub(crate) table: Option<&'static crate::arch::Table>,
}

impl Ops {
    /// The half for memory that needs flushes (`true`) or not, with its
    /// non-temporal threshold.
    #[inline(always)]
    pub fn half(&self, flush: bool) -> (&Half, usize) {
        if flush {
            (&self.flushing, self.selection.threshold)
        } else {
            (&self.noflush, self.noflush_threshold)
        }
    }

    /// Copy, then write back the lines written with ordinary stores. Not fenced.
    ///
    /// # Safety
    /// `s` readable and `d` writable for `n` bytes, no overlap; the
    /// snapshot is runnable.
    #[inline(always)]
    pub unsafe fn copy(&self, d: *mut u8, s: *const u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (self.flushing.copy)(d, s, n, self.selection.threshold) }
    }

    /// The same copy without flush instructions (byte- and page-granular memory).
    ///
    /// # Safety
    /// As [`Ops::copy`].
    #[inline(always)]
    pub unsafe fn copy_noflush(&self, d: *mut u8, s: *const u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (self.noflush.copy)(d, s, n, self.noflush_threshold) }
    }

    /// Overlap-safe [`Ops::copy`].
    ///
    /// # Safety
    /// `s` readable and `d` writable for `n` bytes (they may overlap); the
    /// snapshot is runnable.
    #[inline(always)]
    pub unsafe fn r#move(&self, d: *mut u8, s: *const u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (self.flushing.r#move)(d, s, n, self.selection.threshold) }
    }

    /// Overlap-safe [`Ops::copy_noflush`].
    ///
    /// # Safety
    /// As [`Ops::move`].
    #[inline(always)]
    pub unsafe fn move_noflush(&self, d: *mut u8, s: *const u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (self.noflush.r#move)(d, s, n, self.noflush_threshold) }
    }

    /// Fill, then write back. Not fenced.
    ///
    /// # Safety
    /// `d` writable for `n` bytes; the snapshot is runnable.
    #[inline(always)]
    pub unsafe fn set(&self, d: *mut u8, c: u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (self.flushing.set)(d, c, n, self.selection.threshold) }
    }

    /// Fill without flush instructions.
    ///
    /// # Safety
    /// As [`Ops::set`].
    #[inline(always)]
    pub unsafe fn set_noflush(&self, d: *mut u8, c: u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (self.noflush.set)(d, c, n, self.noflush_threshold) }
    }
}

/// The snapshot in use (the resolver's until the first call resolves;
/// its operations resolve, then forward).
#[inline(always)]
pub fn ops() -> &'static Ops {
    dispatch::current()
}

/// The snapshot in use, resolved.
#[inline(always)]
pub fn resolved() -> &'static Ops {
    dispatch::resolved()
}

/// The non-temporal threshold in force: copies of at least this many
/// bytes use non-temporal stores for their whole cache lines, and for the
/// aligned 8-byte words of their partial lines where `arch::algo` finds it
/// pays.
pub fn movnt_threshold() -> usize {
    resolved().selection.threshold
}

/// The name of the snapshot in use, e.g. `x86_64/avx2+clwb`.
pub fn implementation() -> &'static str {
    resolved().name
}
