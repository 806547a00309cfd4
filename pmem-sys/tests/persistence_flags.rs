//! The persistence checker's rules for the per-call flags
//! (`memcpy_flags`, `memmove_flags`, `memset_flags`), through the public
//! API, in every table the knobs select on this CPU, into memory of every
//! granularity (memory the library did not map, and mappings forced to
//! byte, cache-line and page granularity):
//!
//! - every record passes the checker (write-back rule for cache-line
//!   memory, no-flush rule for byte, page and NOFLUSH stores);
//! - NOFLUSH issues no write-back and no fence: the data is left
//!   unflushed;
//! - NODRAIN issues no fence; without NODRAIN (and NOFLUSH) the call ends
//!   with one;
//! - NONTEMPORAL (and WC) streams every whole line of the destination even
//!   far below the threshold, in every table that has non-temporal stores;
//! - TEMPORAL (and WB) never streams, even far above the threshold
//!   (unless NONTEMPORAL is given too: it wins);
//! - bytes read back equal a reference, and nothing around them changes.
//!
//! Run with `cargo test -p pmem-sys --release --features record --test persistence_flags`.
#![cfg(feature = "record")]

use pmem_sys::engine::{self, CopyTier, knobs, trace};
use pmem_sys::oracle::{self, Checker, Rule};
use pmem_sys::{
    F_NODRAIN, F_NOFLUSH, F_NONTEMPORAL, F_TEMPORAL, F_WB, F_WC, MapFlags, memcpy_flags,
    memmove_flags, memset_flags, wmb_pmem,
};

const SWITCHES: [&str; 5] = [
    "PMEM_SYS_NO_AVX512F",
    "PMEM_SYS_NO_AVX2",
    "PMEM_SYS_NO_MOVNT",
    "PMEM_SYS_NO_CLWB",
    "PMEM_SYS_NO_CLFLUSHOPT",
];

const AREA: usize = 3 * 8192 + 4096;

#[derive(Clone, Copy, Debug)]
enum Op {
    Copy,
    Set,
    MoveUp,
    MoveDown,
}

/// Bytes of `[d, d + n)` that lie in whole cache lines.
fn whole_line_bytes(d: usize, n: usize) -> usize {
    let first = (d + 63) & !63;
    let last = (d + n) & !63;
    last.saturating_sub(first)
}

struct Case<'a> {
    table: &'a str,
    nt_tier: bool,
    special: bool,
    what: &'a str,
}

/// Runs one flagged store at `base + off` and judges it.
/// `at`: the offset and the length.
fn run(
    c: &Case,
    checker: &mut Checker,
    base: *mut u8,
    model: &mut [u8],
    op: Op,
    flags: u32,
    (off, n): (usize, usize),
) {
    let src: Vec<u8> = (0..n + 64).map(|i| (i * 7 + n + off) as u8).collect();
    let (dst_off, src_off) = match op {
        Op::MoveUp => (off + 13, off),
        Op::MoveDown => (off, off + 9),
        _ => (off, 0),
    };
    // SAFETY: every range lies inside the area of AREA bytes at `base`.
    let d = unsafe { base.add(dst_off) };
    trace::start();
    // SAFETY: as above; `src` holds n + 64 bytes.
    let r = unsafe {
        match op {
            Op::Copy => memcpy_flags(d, src.as_ptr(), n, flags),
            Op::Set => memset_flags(d, 0xa5, n, flags),
            Op::MoveUp | Op::MoveDown => memmove_flags(d, base.add(src_off), n, flags),
        }
    };
    let call = trace::take();
    r.unwrap_or_else(|e| panic!("{}: {e}", c.what));
    match op {
        Op::Copy => model[dst_off..dst_off + n].copy_from_slice(&src[..n]),
        Op::Set => model[dst_off..dst_off + n].fill(0xa5),
        Op::MoveUp | Op::MoveDown => model.copy_within(src_off..src_off + n, dst_off),
    }
    trace::start();
    if flags & (F_NODRAIN | F_NOFLUSH) != 0 {
        wmb_pmem();
    }
    let mut events = call.clone();
    events.extend(trace::take());

    let what = format!(
        "{} {} {op:?} flags {flags:#x} n {n} at +{dst_off}",
        c.table, c.what
    );
    let noflush = flags & F_NOFLUSH != 0;
    let rule = if noflush || c.special {
        Rule::NoFlush
    } else {
        Rule::WriteBack
    };
    let sum = checker
        .check(&events, d as usize, n, rule)
        .unwrap_or_else(|v| panic!("{what}:\n{}\nrecord: {events:?}", oracle::render(&v)));
    let fences = call
        .iter()
        .filter(|e| matches!(e, trace::Event::Fence))
        .count();
    let flushes = call
        .iter()
        .filter(|e| matches!(e, trace::Event::Flush { .. }))
        .count();
    if noflush {
        assert_eq!(flushes, 0, "{what}: NOFLUSH wrote lines back");
        assert_eq!(fences, 0, "{what}: NOFLUSH fenced");
    } else if flags & F_NODRAIN != 0 {
        assert_eq!(fences, 0, "{what}: NODRAIN fenced");
    } else {
        assert!(fences >= 1, "{what}: no drain");
    }
    if flags & (F_NONTEMPORAL | F_WC) != 0 {
        if c.nt_tier {
            let want = whole_line_bytes(d as usize, n);
            assert!(
                sum.streamed_bytes >= want,
                "{what}: NONTEMPORAL streamed {} bytes, the destination has {want} in whole lines",
                sum.streamed_bytes
            );
        } else {
            assert_eq!(sum.streams, 0, "{what}: a temporal table streamed");
        }
    } else if flags & (F_TEMPORAL | F_WB) != 0 {
        assert_eq!(sum.streams, 0, "{what}: TEMPORAL streamed");
    }
    // SAFETY: the area is AREA readable bytes.
    let now = unsafe { std::slice::from_raw_parts(base, AREA) };
    if let Some(i) = (0..AREA).find(|&i| now[i] != model[i]) {
        panic!(
            "{what}: byte {i} is {:#x}, expected {:#x}",
            now[i], model[i]
        );
    }
}

fn every_case(c: &Case, base: *mut u8) -> usize {
    let mut checker = Checker::new();
    // SAFETY: the area is AREA readable bytes.
    let mut model = unsafe { std::slice::from_raw_parts(base, AREA) }.to_vec();
    let threshold = engine::movnt_threshold();
    // Far below the threshold (but with whole lines), and far above it.
    let lengths = [1usize, 8, 64, 100, 128, 1000, 8192];
    let mut cases = 0;
    for flags in 0..64u32 {
        for (i, &n) in lengths.iter().enumerate() {
            for op in [Op::Copy, Op::Set, Op::MoveUp, Op::MoveDown] {
                let off = [0usize, 8, 13, 64 + 8][(i + flags as usize) % 4];
                run(c, &mut checker, base, &mut model, op, flags, (off, n));
                cases += 1;
            }
        }
    }
    assert!(threshold > 128 || !c.nt_tier || threshold == 0 || cases > 0);
    cases
}

#[test]
fn every_flag_in_every_table_and_granularity() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let mut total = 0;
    // The copy rungs and flush rungs the knobs reach.
    for copy in [0u32, 1, 3, 4] {
        for flush in [0u32, 8, 24] {
            let bits = copy | flush;
            for (i, name) in SWITCHES.iter().enumerate() {
                let v = if bits & (1 << i) != 0 { "1" } else { "0" };
                knobs::set_option(name, Some(v)).unwrap();
            }
            let t = engine::resolved();
            if seen.contains(&t.name) {
                continue;
            }
            seen.push(t.name);
            let nt_tier = t.selection.copy != CopyTier::Temporal;
            println!(
                "checking {} (threshold {}, no-flush threshold {})",
                t.name, t.selection.threshold, t.noflush_threshold
            );
            // Memory the library did not map: cache-line rules.
            let mut heap = vec![0u8; AREA];
            total += every_case(
                &Case {
                    table: t.name,
                    nt_tier,
                    special: false,
                    what: "heap",
                },
                heap.as_mut_ptr(),
            );
            for g in ["cache_line", "byte", "page"] {
                knobs::set_option("PMEM_SYS_FORCE_GRANULARITY", Some(g)).unwrap();
                let path = dir.path().join(format!("{}-{g}", seen.len()));
                let (addr, _) = pmem_sys::mapping::map_file(&path, AREA, MapFlags::CREATE, 0o600)
                    .expect("map_file");
                knobs::set_option("PMEM_SYS_FORCE_GRANULARITY", None).unwrap();
                total += every_case(
                    &Case {
                        table: t.name,
                        nt_tier,
                        special: g != "cache_line",
                        what: g,
                    },
                    addr as *mut u8,
                );
                pmem_sys::mapping::unmap(addr).unwrap();
            }
        }
    }
    for name in SWITCHES {
        knobs::set_option(name, None).unwrap();
    }
    println!("{} tables, {total} flagged stores judged", seen.len());
    assert!(total > 0);
}
