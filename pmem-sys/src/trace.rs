//! Hooks that record every store, flush and fence of the engine, for the
//! persistence checker in `crate::oracle` (feature `record`).
//!
//! Without the `record` feature the hooks are empty `#[inline(always)]`
//! functions and vanish from the build: no branch, no call, nothing to pay
//! on the copy path. With it, each event is appended to a per-thread log
//! that tests read back with `take` (feature `record` only) and hand to
//! the checker.
//!
//! Stores the engine does not make, such as the caller's plain pointer
//! writes that `arch_wb_cache_pmem` then writes back, are modelled by
//! recording them with `note_store` before the operation.

#[cfg(not(feature = "record"))]
mod imp {
    #[inline(always)]
    pub(crate) fn store(_: *const u8, _: usize) {}
    #[inline(always)]
    pub(crate) fn stream(_: *const u8, _: usize) {}
    #[inline(always)]
    pub(crate) fn flush(_: *const u8, _: usize) {}
    #[inline(always)]
    pub(crate) fn fence() {}
}

#[cfg(feature = "record")]
mod imp {
    use std::cell::RefCell;

    /// One recorded event: what happened to which byte range.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Event {
        /// An ordinary (write-back cached) store of `len` bytes at `addr`.
        Store {
            /// First byte stored.
            addr: usize,
            /// Bytes stored.
            len: usize,
        },
        /// A non-temporal store.
        Stream {
            /// First byte stored.
            addr: usize,
            /// Bytes stored.
            len: usize,
        },
        /// A cache-line write-back of the line at `addr`.
        Flush {
            /// Start of the line.
            addr: usize,
            /// The line size.
            len: usize,
        },
        /// A store fence.
        Fence,
    }

    thread_local! {
        static LOG: RefCell<Option<Vec<Event>>> = const { RefCell::new(None) };
    }

    fn push(e: Event) {
        LOG.with(|l| {
            if let Some(v) = l.borrow_mut().as_mut() {
                v.push(e);
            }
        });
    }

    /// Starts recording on this thread (dropping anything recorded before).
    pub fn start() {
        LOG.with(|l| *l.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns the events in order.
    pub fn take() -> Vec<Event> {
        LOG.with(|l| l.borrow_mut().take().unwrap_or_default())
    }

    /// Records an ordinary store the engine did not make: a test models
    /// the caller's plain pointer writes with it, before asking the engine
    /// to write them back.
    pub fn note_store(addr: *const u8, len: usize) {
        push(Event::Store {
            addr: addr as usize,
            len,
        });
    }

    pub(crate) fn store(p: *const u8, len: usize) {
        push(Event::Store {
            addr: p as usize,
            len,
        });
    }
    pub(crate) fn stream(p: *const u8, len: usize) {
        push(Event::Stream {
            addr: p as usize,
            len,
        });
    }
    pub(crate) fn flush(p: *const u8, len: usize) {
        push(Event::Flush {
            addr: p as usize,
            len,
        });
    }
    pub(crate) fn fence() {
        push(Event::Fence);
    }
}

pub(crate) use imp::*;
#[cfg(feature = "record")]
pub use imp::{Event, note_store, start, take};
