//! Every runnable table of the engine (and the test-only portable 64-byte
//! table) against a reference: random
//! sequences of copy, move (overlapping in either direction or not), set,
//! their `_noflush` variants, flush and invalidate, at random offsets and
//! lengths, under a random non-temporal threshold. After each operation the
//! whole arena must equal a shadow updated with `copy_from_slice`,
//! `copy_within` and `fill`; AddressSanitizer (cargo fuzz's default)
//! catches any access outside the arena.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pmem_sys::engine::{Ops, detect, dispatch, knobs};
use std::sync::OnceLock;

/// The arena: large enough for several lines of head, body and tail at
/// every alignment, small enough to fuzz fast.
const SIZE: usize = 16 * 1024;

#[derive(Arbitrary, Debug)]
enum Kind {
    Copy,
    CopyNoFlush,
    Move,
    MoveNoFlush,
    Set,
    SetNoFlush,
    Flush,
    Invalidate,
}

#[derive(Arbitrary, Debug)]
struct Step {
    kind: Kind,
    dst: u16,
    src: u16,
    len: u16,
    byte: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    table: u8,
    /// An index into [`THRESHOLDS`]; None keeps the CPU's default.
    threshold: Option<u8>,
    steps: Vec<Step>,
}

/// The thresholds tried: the edges of a line and of the head/body/tail
/// split. A fixed set, because every distinct threshold makes a snapshot of
/// every table and a process keeps at most `dispatch::MAX_SNAPSHOTS`.
const THRESHOLDS: [usize; 12] = [0, 1, 8, 63, 64, 65, 255, 256, 1000, 4096, 8192, 16384];

/// The runnable (copy, flush) pairs, then the test-only tables (the
/// portable 64-byte vector through the same algorithm), by index.
fn table_count() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| runnable_pairs().len() + dispatch::test_tables().len())
}

fn runnable_pairs() -> &'static [(dispatch::CopyTier, dispatch::FlushKind)] {
    static P: OnceLock<Vec<(dispatch::CopyTier, dispatch::FlushKind)>> = OnceLock::new();
    P.get_or_init(|| {
        let f = detect::features();
        dispatch::all_pairs()
            .into_iter()
            .filter(|&(c, fl)| dispatch::runnable(c, fl, f).is_some())
            .collect()
    })
}

/// Table `i` as a snapshot with the threshold now in force.
fn table(i: usize) -> &'static Ops {
    let pairs = runnable_pairs();
    match pairs.get(i) {
        Some(&(c, fl)) => dispatch::runnable(c, fl, detect::features()).expect("runnable"),
        None => dispatch::test_tables()[i - pairs.len()],
    }
}

fuzz_target!(|input: Input| {
    let thr = input
        .threshold
        .map(|i| THRESHOLDS[i as usize % THRESHOLDS.len()].to_string());
    knobs::set_option("PMEM_SYS_MOVNT_THRESHOLD", thr.as_deref())
        .expect("a byte count from a fixed set is a valid threshold");
    // After set_option: the snapshot carries the threshold just set.
    let t = table(input.table as usize % table_count());

    let mut pm: Vec<u8> = (0..SIZE).map(|i| (i * 13 + 7) as u8).collect();
    let source: Vec<u8> = (0..SIZE).map(|i| (i * 29 + 1) as u8).collect();
    let mut shadow = pm.clone();
    for s in input.steps.iter().take(64) {
        let dst = s.dst as usize % SIZE;
        let len = s.len as usize % (SIZE - dst + 1);
        let src = s.src as usize % (SIZE - len + 1);
        let p = pm.as_mut_ptr();
        // SAFETY: dst + len <= SIZE and src + len <= SIZE, in arenas of
        // SIZE bytes; copy reads the separate `source` arena, so its ranges
        // never overlap; move is overlap-safe by contract.
        unsafe {
            match s.kind {
                Kind::Copy => t.copy(p.add(dst), source.as_ptr().add(src), len),
                Kind::CopyNoFlush => t.copy_noflush(p.add(dst), source.as_ptr().add(src), len),
                Kind::Move => t.r#move(p.add(dst), p.add(src), len),
                Kind::MoveNoFlush => t.move_noflush(p.add(dst), p.add(src), len),
                Kind::Set => t.set(p.add(dst), s.byte, len),
                Kind::SetNoFlush => t.set_noflush(p.add(dst), s.byte, len),
                Kind::Flush => (t.flush)(p.add(dst), len),
                Kind::Invalidate => (t.invalidate)(p.add(dst), len),
            }
            (t.fence)();
        }
        match s.kind {
            Kind::Copy | Kind::CopyNoFlush => {
                shadow[dst..dst + len].copy_from_slice(&source[src..src + len])
            }
            Kind::Move | Kind::MoveNoFlush => shadow.copy_within(src..src + len, dst),
            Kind::Set | Kind::SetNoFlush => shadow[dst..dst + len].fill(s.byte),
            Kind::Flush | Kind::Invalidate => {}
        }
        if pm != shadow {
            let i = pm.iter().zip(&shadow).position(|(a, b)| a != b).unwrap();
            panic!(
                "{} {:?} dst {dst} src {src} len {len} threshold {}: byte {i} is {:#04x}, expected {:#04x}",
                t.name, s.kind, t.selection.threshold, pm[i], shadow[i]
            );
        }
    }
});
