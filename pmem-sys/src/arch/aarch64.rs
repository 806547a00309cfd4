//! aarch64: temporal copies (Arm has no non-temporal store that bypasses
//! the cache for persistence) and DC CVAP, clean to the point of
//! persistence (Armv8.2 FEAT_DPB), else DC CVAC, clean to the point of
//! coherency.
//!
//! Completion: the Arm Architecture Reference Manual (DDI 0487, "Ordering
//! and completion of data and instruction cache instructions") says a data
//! cache maintenance instruction is only guaranteed complete after a DSB,
//! so the fence is `DSB SY`; a DMB would order it but not wait for it.
//!
//! Not built or run on this project's CI machines (x86_64 only, and no
//! aarch64 Rust target is installed here, so this file is not even
//! compiled): written to the manual, untested on hardware.

use super::algo::Flush;
use super::portable::Words;
use super::{CopyTier, FlushKind, Table};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The smallest data cache line, from CTR_EL0.DminLine (log2 of words).
fn line_size() -> usize {
    static LINE: AtomicUsize = AtomicUsize::new(0);
    let l = LINE.load(Ordering::Relaxed);
    if l != 0 {
        return l;
    }
    let ctr: u64;
    // SAFETY: Linux lets user space read CTR_EL0 (it traps and emulates
    // where the hardware does not allow it).
    unsafe {
        core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags))
    };
    let l = 4usize << ((ctr >> 16) & 0xf);
    LINE.store(l, Ordering::Relaxed);
    l
}

/// A data-cache maintenance instruction by virtual address, emitted with
/// inline assembly (the same shape as x86_64's `asm_flush!`).
macro_rules! dc_flush {
    ($(#[$doc:meta])* $name:ident, $insn:literal) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl Flush for $name {
            const ACTIVE: bool = true;
            #[inline(always)]
            fn line_size() -> usize {
                line_size()
            }
            /// # Safety
            /// The contract of [`Flush::flush_line`].
            #[inline(always)]
            unsafe fn flush_line(p: *const u8) {
                // SAFETY: the caller's contract (a mapped address); the
                // dispatcher runs DC CVAP only where the CPU has FEAT_DPB.
                unsafe {
                    core::arch::asm!(concat!($insn, ", {}"), in(reg) p, options(nostack, preserves_flags));
                }
            }
        }
    };
}

dc_flush!(
    /// DC CVAP, written as its system-instruction encoding (op1=3, CRn=7,
    /// CRm=12, op2=1) so assemblers without FEAT_DPB accept it.
    DcCvap,
    "sys #3, c7, c12, #1"
);
dc_flush!(
    /// DC CVAC: clean to the point of coherency.
    DcCvac,
    "dc cvac"
);
dc_flush!(
    /// Invalidation: clean and invalidate to the point of coherency.
    DcCivac,
    "dc civac"
);

super::fence_leaf!(
    /// DSB SY: waits for every earlier cache maintenance instruction (see
    /// the module's note on completion).
    dsb_fence,
    "dsb sy"
);

static TEMPORAL_DC_CVAP: Table = super::ops_table!(#[target_feature(enable = "neon")], Words, false, DcCvap, DcCivac, dsb_fence,
    CopyTier::Temporal, FlushKind::DcCvap, "aarch64/temporal+dc-cvap");
static TEMPORAL_DC_CVAC: Table = super::ops_table!(#[target_feature(enable = "neon")], Words, false, DcCvac, DcCivac, dsb_fence,
    CopyTier::Temporal, FlushKind::DcCvac, "aarch64/temporal+dc-cvac");

pub(crate) fn table(copy: CopyTier, flush: FlushKind) -> Option<&'static Table> {
    match (copy, flush) {
        (CopyTier::Temporal, FlushKind::DcCvap) => Some(&TEMPORAL_DC_CVAP),
        (CopyTier::Temporal, FlushKind::DcCvac) => Some(&TEMPORAL_DC_CVAC),
        _ => None,
    }
}

pub(crate) fn has_pmem_api() -> bool {
    true
}
