//! The engine's algorithm under Miri: the `_noflush` leaves of the SSE2 and
//! temporal tables (SSE2 is baseline on x86_64, and the no-flush leaves use
//! no inline assembly, which Miri cannot run) copy, move and fill every
//! alignment and the lengths around the vector width, the line and the
//! flushing leaves' non-temporal threshold, into buffers with nothing to
//! spare, so Miri sees any out-of-bounds access or read of uninitialised
//! memory. Natively it is a quick content test.
//!
//! The no-flush leaves stream only from `NOFLUSH_NT_MIN` (4 MiB) up, so
//! every length here takes their ordinary-store path, in both tables, under
//! Miri too (which could not run the non-temporal store: it is inline
//! assembly in `core::arch`). Their streaming path is covered natively by
//! `tests/tiers.rs` and the checker in `tests/persistence.rs`, at 8 MiB.
//!
//! `cargo +nightly miri test -p pmem-sys --test persistence_miri` (run by
//! `make test-verify`). CPUID and the knobs are not touched: Miri cannot
//! execute CPUID.
#![cfg(target_arch = "x86_64")]

use pmem_sys::engine::dispatch::{self, CopyTier, FlushKind};

/// Every length up to 40 and the lengths around the line and the threshold
/// natively; under Miri, which is about a thousand times slower, the
/// lengths at the edges only.
fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = if cfg!(miri) {
        (0..=17).chain(31..=33).collect()
    } else {
        (0..=40).collect()
    };
    for around in [64usize, 128, 256] {
        v.extend(around - 2..=around + 2);
    }
    v.push(300);
    v
}

/// Destination offsets into the allocation (whose own alignment Miri
/// randomises).
fn offsets() -> Vec<usize> {
    if cfg!(miri) {
        vec![0, 1, 7, 8, 15, 33]
    } else {
        (0..64).collect()
    }
}

#[test]
fn noflush_leaves_are_exact_at_every_alignment() {
    for copy in [CopyTier::Sse2, CopyTier::Temporal] {
        let t =
            dispatch::table(copy, FlushKind::Clflush).expect("x86_64 has SSE2 and temporal tables");
        for n in lengths() {
            assert!(n < pmem_sys::engine::NOFLUSH_NT_MIN);
            for off in offsets() {
                // Exactly off + n bytes: one byte more written is out of bounds.
                let src: Vec<u8> = (0..n).map(|i| (i * 7 + off) as u8).collect();
                let mut dst = vec![0xccu8; off + n];
                // SAFETY: dst has off + n bytes, src n; separate allocations.
                unsafe { t.copy_noflush(dst.as_mut_ptr().add(off), src.as_ptr(), n) };
                assert_eq!(&dst[off..], &src[..], "{} copy off {off} n {n}", t.name);
                assert!(
                    dst[..off].iter().all(|&b| b == 0xcc),
                    "{} copy wrote before dst",
                    t.name
                );

                // SAFETY: as above, one buffer.
                unsafe { t.set_noflush(dst.as_mut_ptr().add(off), 0x5a, n) };
                assert!(
                    dst[off..].iter().all(|&b| b == 0x5a),
                    "{} set off {off} n {n}",
                    t.name
                );

                // An overlapping move in each direction inside one buffer of
                // exactly the bytes the two ranges span.
                let delta = n / 3 + 1;
                for down in [true, false] {
                    let mut buf: Vec<u8> = (0..off + n + delta).map(|i| i as u8).collect();
                    let mut want = buf.clone();
                    let (d, s) = if down {
                        (off, off + delta)
                    } else {
                        (off + delta, off)
                    };
                    want.copy_within(s..s + n, d);
                    // SAFETY: both ranges lie inside buf; the move is overlap-safe.
                    unsafe { t.move_noflush(buf.as_mut_ptr().add(d), buf.as_ptr().add(s), n) };
                    assert_eq!(buf, want, "{} move off {off} n {n} down {down}", t.name);
                }
            }
        }
    }
}
