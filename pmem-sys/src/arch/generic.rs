//! The portable fallback: ordinary stores and a full memory fence. This
//! architecture has no user-space way to write cache lines back, so
//! `arch_has_pmem_api()` is false and only page-granular mappings (msync)
//! are durable.

use super::portable::Words;
use crate::engine::algo::NoFlush;
use crate::engine::{CopyTier, FlushKind, Ops};

/// # Safety
/// None; `unsafe` only to fit the table.
pub(super) unsafe fn fence() {
    crate::engine::trace::fence();
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

static TEMPORAL_NONE: Ops =
    super::ops_table!(, Words, false, NoFlush, NoFlush, fence, "generic/temporal+none");

pub(crate) fn table(copy: CopyTier, flush: FlushKind) -> Option<&'static Ops> {
    match (copy, flush) {
        (CopyTier::Temporal, FlushKind::None) => Some(&TEMPORAL_NONE),
        _ => None,
    }
}

pub(crate) fn has_pmem_api() -> bool {
    false
}
