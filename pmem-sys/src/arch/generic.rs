//! The portable fallback: ordinary stores and a full memory fence. This
//! architecture has no user-space way to write cache lines back, so
//! `arch_has_pmem_api()` is false and only page-granular mappings (msync)
//! are durable.

use super::algo::NoFlush;
use super::portable::Words;
use super::{CopyTier, FlushKind, Table};

/// # Safety
/// None; `unsafe` only to fit the table.
pub(super) unsafe fn fence() {
    crate::trace::fence();
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

static TEMPORAL_NONE: Table = super::ops_table!(, Words, false, NoFlush, NoFlush, fence,
    CopyTier::Temporal, FlushKind::None, "generic/temporal+none");

pub(crate) fn table(copy: CopyTier, flush: FlushKind) -> Option<&'static Table> {
    match (copy, flush) {
        (CopyTier::Temporal, FlushKind::None) => Some(&TEMPORAL_NONE),
        _ => None,
    }
}

pub(crate) fn has_pmem_api() -> bool {
    false
}
