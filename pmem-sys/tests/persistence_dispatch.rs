//! Coverage of the dispatch: every table the x86_64 selection can return is
//! reached by some (features, knobs) combination, and every table this CPU
//! can run, once selected through the knobs as a user would, passes the
//! persistence checker through the public API (`memcpy_to_pmem`,
//! `memmove_to_pmem`, `memset_pmem`, `clear_pmem`, `arch_wb_cache_pmem`,
//! `arch_invalidate_pmem`, `persist`, each followed by `wmb_pmem`).
//!
//! Run with `cargo test -p pmem-sys --release --features record --test persistence_dispatch`.
#![cfg(feature = "record")]

use pmem_sys::engine::dispatch::{self, CopyTier, FlushKind};
use pmem_sys::engine::trace;
use pmem_sys::engine::{Features, Knobs, detect, knobs};
use pmem_sys::oracle::{self, Checker, Rule};
use std::collections::BTreeMap;

const SWITCHES: [&str; 5] = [
    "PMEM_SYS_NO_AVX512F",
    "PMEM_SYS_NO_AVX2",
    "PMEM_SYS_NO_MOVNT",
    "PMEM_SYS_NO_CLWB",
    "PMEM_SYS_NO_CLFLUSHOPT",
];

/// The knob set with bit i of `bits` turning `SWITCHES[i]` on.
fn knobs_of(bits: u32) -> Knobs {
    let mut k = Knobs::default();
    for (i, name) in SWITCHES.iter().enumerate() {
        k.set(name, Some(if bits & (1 << i) != 0 { "1" } else { "0" }))
            .unwrap();
    }
    k
}

fn switches_of(bits: u32) -> String {
    let on: Vec<&str> = SWITCHES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    if on.is_empty() {
        "no knobs".to_owned()
    } else {
        on.join("=1 ") + "=1"
    }
}

/// Every x86_64 CPU this ladder distinguishes: SSE2 and CLFLUSH are
/// architectural on x86_64, and every subset of the other features it
/// reads (AVX-512F without AVX2 included: the ladder must not care).
fn every_x86_cpu() -> impl Iterator<Item = Features> {
    (0u32..1 << 5).map(|b| Features {
        sse2: true,
        avx: b & 1 != 0,
        avx2: b & 1 != 0,
        avx512f: b & 2 != 0,
        clflush: true,
        clflushopt: b & 4 != 0,
        clwb: b & 8 != 0,
        amd: b & 16 != 0,
        dc_cvap: false,
    })
}

#[cfg(target_arch = "x86_64")]
#[test]
fn every_x86_64_table_is_reached_by_some_features_and_knobs() {
    let mut witness: BTreeMap<String, String> = BTreeMap::new();
    for f in every_x86_cpu() {
        for bits in 0..1 << SWITCHES.len() {
            let (c, fl) = dispatch::select(&f, &knobs_of(bits));
            let t = dispatch::table(c, fl)
                .unwrap_or_else(|| panic!("select returned {c:?}+{fl:?}, which has no table"));
            // A selected table must also be runnable on the CPU it was selected for.
            assert!(
                dispatch::runnable(c, fl, &f).is_some(),
                "{} selected for a CPU that cannot run it: {f:?} {}",
                t.name,
                switches_of(bits)
            );
            witness
                .entry(t.name.to_owned())
                .or_insert_with(|| format!("CPU with [{}], {}", f.names(), switches_of(bits)));
        }
    }
    let pairs = dispatch::all_pairs();
    assert_eq!(pairs.len(), 12, "x86_64 has 4 copy tiers x 3 flushes");
    for (c, fl) in pairs {
        let name = dispatch::table(c, fl).unwrap().name;
        let w = witness
            .get(name)
            .unwrap_or_else(|| panic!("table {name} is never selected"));
        println!("{name:28} reached by {w}");
    }
}

/// A knob set that makes this CPU select `(c, fl)`, if there is one.
fn knobs_selecting(c: CopyTier, fl: FlushKind, f: &Features) -> Option<u32> {
    (0..1 << SWITCHES.len()).find(|&bits| dispatch::select(f, &knobs_of(bits)) == (c, fl))
}

/// A call's name, the call, and whether the caller stores first (the
/// calls that only write back).
type ApiCall<'a> = (&'static str, Box<dyn Fn() + 'a>, bool);

#[repr(C, align(4096))]
struct Buf([u8; 8192]);

#[test]
fn every_runnable_table_selected_through_the_knobs_passes_the_checker() {
    let f = detect::features();
    let mut buf = Box::new(Buf([0; 8192]));
    let src: Vec<u8> = (0..2048u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut checker = Checker::new();
    let mut ran = Vec::new();
    for (c, fl) in dispatch::all_pairs() {
        let t = dispatch::table(c, fl).unwrap();
        if dispatch::runnable(c, fl, f).is_none() {
            println!(
                "SKIPPED: {} through the API (this CPU cannot run it: it has {})",
                t.name,
                f.names()
            );
            continue;
        }
        let Some(bits) = knobs_selecting(c, fl, f) else {
            println!(
                "SKIPPED: {} through the API (runnable, but no knob set selects it on this CPU; persistence.rs checks it directly)",
                t.name
            );
            continue;
        };
        for (i, name) in SWITCHES.iter().enumerate() {
            knobs::set_option(name, Some(if bits & (1 << i) != 0 { "1" } else { "0" })).unwrap();
        }
        knobs::set_option("PMEM_SYS_MOVNT_THRESHOLD", None).unwrap();
        assert_eq!(
            pmem_sys::implementation(),
            t.name,
            "{} should select it",
            switches_of(bits)
        );

        let base = buf.0.as_mut_ptr();
        let mut cases = 0;
        for off in 0..=127usize {
            for n in (0..=320).chain((321..=2048).step_by(37)) {
                // SAFETY: off + n <= 127 + 2048 and the moves below reach at
                // most 2 * 2048 + 127 + n/2 < 8192; the copy source is a
                // separate buffer of 2048 bytes.
                unsafe {
                    let d = base.add(off + 2048);
                    let ops: [ApiCall; 8] = [
                        (
                            "memcpy_to_pmem",
                            Box::new(|| pmem_sys::memcpy_to_pmem(d, src.as_ptr(), n)),
                            false,
                        ),
                        (
                            "memmove_to_pmem (src above)",
                            Box::new(|| pmem_sys::memmove_to_pmem(d, d.add(n / 2 + 1), n)),
                            false,
                        ),
                        (
                            "memmove_to_pmem (src below)",
                            Box::new(|| pmem_sys::memmove_to_pmem(d, d.sub(n / 3 + 1), n)),
                            false,
                        ),
                        (
                            "memset_pmem",
                            Box::new(|| pmem_sys::memset_pmem(d, 0xee, n)),
                            false,
                        ),
                        ("clear_pmem", Box::new(|| pmem_sys::clear_pmem(d, n)), false),
                        (
                            "arch_wb_cache_pmem",
                            Box::new(|| pmem_sys::arch_wb_cache_pmem(d, n)),
                            true,
                        ),
                        (
                            "arch_invalidate_pmem",
                            Box::new(|| pmem_sys::arch_invalidate_pmem(d, n)),
                            true,
                        ),
                        (
                            "persist",
                            Box::new(|| pmem_sys::persist(d, n).unwrap()),
                            true,
                        ),
                    ];
                    for (what, op, plain_stores_first) in &ops {
                        trace::start();
                        if *plain_stores_first {
                            // The caller's own stores, which these calls write back.
                            core::ptr::write_bytes(d, 0x11, n);
                            trace::note_store(d, n);
                        }
                        op();
                        pmem_sys::wmb_pmem();
                        let ev = trace::take();
                        if let Err(v) = checker.check(&ev, d as usize, n, Rule::WriteBack) {
                            panic!(
                                "{} via {what}, offset {off} length {n}:\n{}\nrecord: {ev:?}",
                                t.name,
                                oracle::render(&v)
                            );
                        }
                        cases += 1;
                    }
                }
            }
        }
        println!(
            "{}: {cases} API records checked (selected by {})",
            t.name,
            switches_of(bits)
        );
        ran.push(t.name);
    }
    for name in SWITCHES {
        knobs::set_option(name, None).unwrap();
    }
    assert!(!ran.is_empty(), "no table ran");
}
