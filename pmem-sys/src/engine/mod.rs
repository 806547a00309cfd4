//! The engine: one table of coherent copy, fill, flush and fence operations,
//! chosen once from the CPU and the knobs, reached through one atomic
//! pointer.
//!
//! - [`detect`] knows what the CPU has;
//! - [`crate::knobs`] knows what the user forced (re-exported here as
//!   `engine::knobs` for existing users);
//! - [`dispatch`] decides which table runs (a pure function of both) and
//!   publishes it;
//! - `algo` is the copy algorithm, written once; `crate::arch` stamps out
//!   its leaves per instruction set.

pub(crate) mod algo;
pub mod detect;
pub mod dispatch;
pub mod trace;

pub use crate::knobs::{self, Knobs};
pub use algo::{NOFLUSH_NT_MIN, split};
pub use detect::Features;
pub use dispatch::{CopyTier, FlushKind, select};

/// `copy(dst, src, n)` and `move(dst, src, n)`.
pub type CopyFn = unsafe fn(*mut u8, *const u8, usize);
/// `set(dst, byte, n)`.
pub type SetFn = unsafe fn(*mut u8, u8, usize);
/// `flush(addr, n)`.
pub type RangeFn = unsafe fn(*const u8, usize);

/// One coherent set of operations: every function of a table uses the same
/// vector width and the same flush instruction. Tables are immutable
/// statics, so swapping the current one is always safe: a call in flight
/// finishes on the table it started with.
///
/// Every function is `unsafe`: the caller guarantees that the ranges are
/// mapped and writable (or readable) for `n` bytes, and that the table is
/// runnable on this CPU (see [`dispatch::runnable`]).
#[derive(Debug)]
pub struct Ops {
    /// `<arch>/<copy>+<flush>`, for example `x86_64/avx2+clwb`.
    pub name: &'static str,
    /// Copy, then write back the lines written with ordinary stores. Not fenced.
    pub copy: CopyFn,
    /// The same copy without flush instructions (byte- and page-granular memory).
    pub copy_noflush: CopyFn,
    /// Overlap-safe `copy`.
    pub r#move: CopyFn,
    /// Overlap-safe `copy_noflush`.
    pub move_noflush: CopyFn,
    /// Fill, then write back. Not fenced.
    pub set: SetFn,
    /// Fill without flush instructions.
    pub set_noflush: SetFn,
    /// Write back every line of a range (CLWB, CLFLUSHOPT, CLFLUSH, DC CVAP...).
    pub flush: RangeFn,
    /// Write back and invalidate every line of a range.
    pub invalidate: RangeFn,
    /// Order every earlier flush and non-temporal store before later stores.
    pub fence: unsafe fn(),
}

/// The table in use (resolving it on first use).
#[inline(always)]
pub fn ops() -> &'static Ops {
    dispatch::current()
}

/// The non-temporal threshold in force, read on the copy path.
#[inline(always)]
pub(crate) fn movnt_threshold_fast() -> usize {
    dispatch::THRESHOLD.load(core::sync::atomic::Ordering::Relaxed)
}

/// The non-temporal threshold in force: copies of at least this many bytes
/// use non-temporal stores for their whole cache lines, and for the aligned
/// 8-byte words of their partial lines where `engine::algo` finds it pays.
pub fn movnt_threshold() -> usize {
    dispatch::resolved();
    movnt_threshold_fast()
}

/// The name of the table in use, e.g. `x86_64/avx2+clwb`.
pub fn implementation() -> &'static str {
    dispatch::resolved().name
}
