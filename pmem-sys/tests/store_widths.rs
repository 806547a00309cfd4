//! No aligned word is ever torn: for a destination and a length that are
//! both 8-byte aligned, every store the engine issues (temporal or
//! non-temporal, in every runnable tier, for copy, fill and move) is at
//! least 8 bytes wide and 8-byte aligned. Read from the store log of the
//! `record` build.
#![cfg(feature = "record")]

use pmem_sys::engine::dispatch::{all_pairs, runnable, test_tables};
use pmem_sys::engine::{detect, trace};

#[test]
fn aligned_destinations_see_only_whole_aligned_words() {
    let f = detect::features();
    let src: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    let mut dst = vec![0u8; 4096 + 256];
    let base = (dst.as_mut_ptr() as usize).next_multiple_of(64) - dst.as_mut_ptr() as usize;
    let mut tested = 0;
    let mut tables = Vec::new();
    for (c, fl) in all_pairs() {
        match runnable(c, fl, f) {
            Some(t) => tables.push(t),
            None => println!("SKIPPED: {}+{} (this CPU lacks it)", c.name(), fl.name()),
        }
    }
    // The portable 64-byte stand-in for AVX-512 too.
    tables.extend(test_tables());
    for t in tables {
        for doff in (0..=128).step_by(8) {
            for len in (8..=1024).step_by(8) {
                for op in 0..4 {
                    trace::start();
                    // SAFETY: base + doff + len <= dst.len(); src has len bytes.
                    unsafe {
                        let d = dst.as_mut_ptr().add(base + doff);
                        match op {
                            0 => t.copy(d, src.as_ptr(), len),
                            1 => t.set(d, 0x33, len),
                            2 => t.r#move(d, src.as_ptr(), len),
                            // Overlapping, both directions.
                            _ => {
                                t.r#move(d, d.add(8), len.min(4096 + 256 - base - doff - 8));
                                t.r#move(d.add(8), d, len.min(4096 + 256 - base - doff - 8));
                            }
                        }
                    }
                    for e in trace::take() {
                        if let trace::Event::Store { addr, len: w }
                        | trace::Event::Stream { addr, len: w } = e
                        {
                            assert!(
                                w >= 8 && addr % 8 == 0,
                                "{} op {op}: a {w}-byte store at offset {} (doff {doff}, len {len})",
                                t.name,
                                addr as isize - (dst.as_ptr() as usize + base) as isize
                            );
                        }
                    }
                }
            }
        }
        tested += 1;
    }
    assert!(tested > 0);
}
