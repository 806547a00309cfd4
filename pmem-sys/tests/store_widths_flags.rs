//! The 8-byte store guarantee through the per-call flags, the paths
//! libpmem.so.1 (pmdk-compat) calls for PMDK's `pmem_memcpy`,
//! `pmem_memmove` and `pmem_memset` with every `PMEM_F_MEM_*` combination:
//! for a destination and a length that are both 8-byte aligned, every store
//! (temporal or non-temporal, flushing or no-flush half) is at least 8
//! bytes wide and 8-byte aligned, on the table this CPU selects and on the
//! lower tiers the knobs force. Read from the store log of the `record`
//! build, as tests/store_widths.rs does for the tables directly.
#![cfg(feature = "record")]

use pmem_sys::engine::{knobs, trace};
use pmem_sys::{
    F_NODRAIN, memcpy_flags_unchecked_bits, memmove_flags_unchecked_bits,
    memset_flags_unchecked_bits,
};

#[test]
fn flagged_stores_never_tear_an_aligned_word() {
    let src: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    let mut dst = vec![0u8; 4096 + 256];
    let base = (dst.as_mut_ptr() as usize).next_multiple_of(64) - dst.as_mut_ptr() as usize;
    let (mut checked, mut stores, mut streams) = (0u64, 0u64, 0u64);
    // The selected table, then the tiers below it that this CPU can run
    // (a knob the CPU does not need changes nothing, which is fine).
    let settings: [&[(&str, &str)]; 4] = [
        &[],
        &[("PMEM_SYS_NO_AVX512F", "1")],
        &[("PMEM_SYS_NO_AVX512F", "1"), ("PMEM_SYS_NO_AVX2", "1")],
        &[("PMEM_SYS_NO_MOVNT", "1")],
    ];
    for setting in settings {
        for name in [
            "PMEM_SYS_NO_AVX512F",
            "PMEM_SYS_NO_AVX2",
            "PMEM_SYS_NO_MOVNT",
        ] {
            knobs::set_option(name, None).unwrap();
        }
        for (k, v) in setting {
            knobs::set_option(k, Some(v)).unwrap();
        }
        let table = pmem_sys::implementation();
        // Every defined flag combination, and an unknown bit.
        for flags in (0..64u32).chain([64]) {
            for doff in (0..=64).step_by(8) {
                for len in (8..=1024).step_by(8).filter(|l| l % 56 == 0 || *l <= 136) {
                    for op in 0..3 {
                        trace::start();
                        // SAFETY: base + doff + len <= dst.len(); src has
                        // len bytes; the move's ranges lie inside dst.
                        unsafe {
                            let d = dst.as_mut_ptr().add(base + doff);
                            let f = flags | F_NODRAIN;
                            let _ = match op {
                                0 => memcpy_flags_unchecked_bits(d, src.as_ptr(), len, f),
                                1 => memset_flags_unchecked_bits(d, 0x33, len, f),
                                _ => memmove_flags_unchecked_bits(d, d.add(8), len, f),
                            };
                        }
                        for e in trace::take() {
                            match e {
                                trace::Event::Store { .. } => stores += 1,
                                trace::Event::Stream { .. } => streams += 1,
                                _ => {}
                            }
                            if let trace::Event::Store { addr, len: w }
                            | trace::Event::Stream { addr, len: w } = e
                            {
                                assert!(
                                    w >= 8 && addr % 8 == 0,
                                    "{table} flags {flags:#x} op {op}: a {w}-byte store at offset {} (doff {doff}, len {len})",
                                    addr as isize - (dst.as_ptr() as usize + base) as isize
                                );
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
        pmem_sys::wmb_pmem();
    }
    // The log saw both kinds of store (NONTEMPORAL streams even 8 bytes),
    // so the checks above ran on real stores.
    assert!(
        checked > 0 && stores > 0 && streams > 0,
        "{checked} {stores} {streams}"
    );
}
