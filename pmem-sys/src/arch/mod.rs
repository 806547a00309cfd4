//! How to copy and flush, per instruction set, and nothing else: vector
//! types, flush instructions and fences, and the tables stamped out from
//! the generic algorithm in `engine::algo`.

#![allow(unsafe_code)]

#[cfg(target_arch = "aarch64")]
mod aarch64;
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
            crate::engine::trace::fence();
            // SAFETY: a fence: no operands, no memory of its own touched.
            unsafe { core::arch::asm!($insn, options(nostack, preserves_flags)) }
        }
    };
}
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) use fence_leaf;

/// Stamps out one table: the leaves of every operation for one vector type,
/// one flush and one invalidate instruction. The leading attributes (a
/// `#[target_feature]`) go on every leaf that stores.
macro_rules! ops_table {
    ($(#[$leaf:meta])*, $V:ty, $nt:literal, $F:ty, $Inv:ty, $fence:path, $name:expr) => {{
        use crate::engine::algo::{self, NoFlush};
        use crate::engine::Ops;

        // SAFETY (all leaves): the caller upholds `Ops`' contract (ranges
        // valid, table runnable on this CPU), which is exactly what the
        // generic algorithm requires.
        $(#[$leaf])*
        unsafe fn copy(d: *mut u8, s: *const u8, n: usize) {
            algo::copy::<$V, $F, $nt>(d, s, n)
        }
        $(#[$leaf])*
        unsafe fn copy_noflush(d: *mut u8, s: *const u8, n: usize) {
            algo::copy::<$V, NoFlush, $nt>(d, s, n)
        }
        $(#[$leaf])*
        unsafe fn r#move(d: *mut u8, s: *const u8, n: usize) {
            algo::r#move::<$V, $F, $nt>(d, s, n)
        }
        $(#[$leaf])*
        unsafe fn move_noflush(d: *mut u8, s: *const u8, n: usize) {
            algo::r#move::<$V, NoFlush, $nt>(d, s, n)
        }
        $(#[$leaf])*
        unsafe fn set(d: *mut u8, c: u8, n: usize) {
            algo::set::<$V, $F, $nt>(d, c, n)
        }
        $(#[$leaf])*
        unsafe fn set_noflush(d: *mut u8, c: u8, n: usize) {
            algo::set::<$V, NoFlush, $nt>(d, c, n)
        }
        unsafe fn flush(p: *const u8, n: usize) {
            algo::flush_range::<$F>(p, n)
        }
        unsafe fn invalidate(p: *const u8, n: usize) {
            algo::flush_range::<$Inv>(p, n)
        }
        Ops {
            name: $name,
            copy,
            copy_noflush,
            r#move,
            move_noflush,
            set,
            set_noflush,
            flush,
            invalidate,
            fence: $fence,
        }
    }};
}
pub(crate) use ops_table;
