//! The life of a mapping as one atomic word, so that `close()` can never
//! unmap memory that a buffer export or a copy in another thread still uses.
//!
//! CPython's `mmap` keeps an export count under the GIL; this class must also
//! be correct without one (free-threaded Python) and while a large copy runs
//! with the GIL released. So the word holds three things that change together:
//!
//! - bit 63: closed;
//! - bits 32..63: live buffer exports (memoryviews, numpy arrays, ...);
//! - bits 0..32: operations in flight (a method between its argument checks
//!   and its last access to the mapped memory).
//!
//! Every user increments first and then looks at the closed bit; `close()`
//! flips the word from "open, nothing in use" to "closed" with one
//! compare-and-swap. Both act on one atomic, so they are totally ordered:
//! either the user saw "closed" (and backs out), or `close()` saw the user
//! (and refuses). Nothing ever waits, so nothing can deadlock against the GIL.

use std::sync::atomic::{AtomicU64, Ordering};

const CLOSED: u64 = 1 << 63;
const EXPORT: u64 = 1 << 32;
const OP: u64 = 1;
const OPS: u64 = EXPORT - 1;
const EXPORTS: u64 = (CLOSED - 1) & !OPS;

/// The state word of one mapping.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle(AtomicU64);

/// What [`Lifecycle::close`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// This call closed it: the caller must unmap now.
    Now,
    /// It was closed before.
    Already,
    /// This many buffer exports are alive.
    Exported(u64),
    /// This many operations are in flight (another thread's copy, or a
    /// buffer or index callback of this thread that calls `close()`).
    Busy(u64),
}

/// Keeps one operation counted until dropped.
pub(crate) struct Operation<'a>(&'a Lifecycle);

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(OP, Ordering::Release);
    }
}

impl Lifecycle {
    /// Counts an operation in, or `None` when closed.
    #[inline(always)]
    pub(crate) fn enter(&self) -> Option<Operation<'_>> {
        let before = self.0.fetch_add(OP, Ordering::Acquire);
        if before & CLOSED != 0 {
            self.0.fetch_sub(OP, Ordering::Release);
            return None;
        }
        Some(Operation(self))
    }

    /// Counts a buffer export in; false when closed.
    pub(crate) fn export(&self) -> bool {
        let before = self.0.fetch_add(EXPORT, Ordering::Acquire);
        if before & CLOSED != 0 {
            self.0.fetch_sub(EXPORT, Ordering::Release);
            return false;
        }
        true
    }

    /// Counts a buffer export out. Called only for a successful
    /// [`Lifecycle::export`] (CPython calls `bf_releasebuffer` once per
    /// successful `bf_getbuffer`), so it cannot underflow.
    pub(crate) fn unexport(&self) {
        self.0.fetch_sub(EXPORT, Ordering::Release);
    }

    /// Closes if nothing is in use.
    pub(crate) fn close(&self) -> Close {
        let mut now = self.0.load(Ordering::Acquire);
        loop {
            if now & CLOSED != 0 {
                return Close::Already;
            }
            if now & EXPORTS != 0 {
                return Close::Exported((now & EXPORTS) >> 32);
            }
            if now & OPS != 0 {
                return Close::Busy(now & OPS);
            }
            match self
                .0
                .compare_exchange(now, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Close::Now,
                Err(seen) => now = seen,
            }
        }
    }

    /// Whether `close()` has succeeded.
    #[inline(always)]
    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Live buffer exports (for `repr`).
    pub(crate) fn exports(&self) -> u64 {
        (self.0.load(Ordering::Acquire) & EXPORTS) >> 32
    }
}
