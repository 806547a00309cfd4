//! Every architecture but x86_64: no guarded routine yet. Copies are plain
//! copies, a fault raises SIGBUS as it would without this library, and no
//! handler is installed. (aarch64 could follow the kernel's
//! `copy_mc_user_highpage` with an `ldr`/`str` loop and the exception table
//! idea of this module; it is not done because it cannot be tested here.)

/// This architecture does not recover from faults in copies.
pub(crate) const GUARDED: bool = false;

/// Nothing to measure.
pub(crate) fn init() {}

/// Nothing to override.
pub(crate) fn set_stream_from(_bytes: usize) {}

/// Never streams.
#[inline(always)]
pub(crate) fn stream_from() -> usize {
    usize::MAX
}

/// A routine's entry point.
pub(crate) type Routine = unsafe extern "C" fn(*mut u8, *const u8, usize, usize) -> usize;

/// A plain copy; always reports every byte copied.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes; no overlap.
unsafe extern "C" fn plain_copy(dst: *mut u8, src: *const u8, n: usize, _: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::copy_nonoverlapping(src, dst, n) };
    0
}

/// The only routine: a plain copy.
pub(crate) const fn entry(_kind: super::GuardedKind) -> Routine {
    plain_copy
}

/// A plain 4-byte store; never reports a fault.
///
/// # Safety
/// `dst` writable for 4 bytes.
#[inline(always)]
pub(crate) unsafe fn probe_store4(dst: *mut u8, value: u32) -> bool {
    // SAFETY: the caller's contract.
    unsafe { dst.cast::<u32>().write_unaligned(value) };
    true
}

/// Never redirects: there is no guarded instruction.
///
/// # Safety
/// None.
#[inline(always)]
pub(crate) unsafe fn redirect(_ctx: *mut libc::c_void) -> bool {
    false
}
