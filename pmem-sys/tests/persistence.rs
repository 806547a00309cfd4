//! The persistence checker over every tier this CPU can run.
//!
//! Each operation of each runnable table (copy, move in both overlap
//! directions and onto itself, set, their `_noflush` variants, flush,
//! invalidate, and the fence alone) is recorded and judged by
//! `pmem_sys::oracle::Checker`, for every destination offset
//! 0..=127 with every length 0..=1024, under several non-temporal
//! thresholds, then over random large cases, and the no-flush leaves'
//! streaming path at 8 MiB (they stream only from `NOFLUSH_NT_MIN`,
//! 4 MiB). The test-only `test/portable64+*` table (a portable 64-byte
//! vector through the same algorithm, standing in for AVX-512) is checked
//! with the others. Alongside, the bytes are
//! compared with a reference and the neighbourhood of the destination is
//! checked untouched, so the record cannot drift from what the CPU did.
//!
//! Run with `cargo test -p pmem-sys --release --features record --test persistence`
//! (the release build matters: about 10^7 records are judged).
#![cfg(feature = "record")]

use pmem_sys::engine::dispatch::{self, CopyTier, FlushKind};
use pmem_sys::engine::trace;
use pmem_sys::engine::{Ops, detect, knobs};
use pmem_sys::oracle::{self, Checker, LINE, Rule};
use std::sync::Mutex;

/// The threshold is global: tests that set it, and every test that copies
/// (whose record depends on it), run one at a time.
static THRESHOLD_LOCK: Mutex<()> = Mutex::new(());

const MAX_OFF: usize = 127;
const MAX_LEN: usize = 1024;

/// Every runnable table; the first call prints the tables checked and the
/// ones skipped, with why.
fn runnable_tables() -> Vec<(&'static Ops, bool)> {
    static REPORTED: std::sync::Once = std::sync::Once::new();
    let f = detect::features();
    let mut v = Vec::new();
    let mut lines = Vec::new();
    for (c, fl) in dispatch::all_pairs() {
        let t = dispatch::table(c, fl).expect("all_pairs returns pairs with tables");
        match dispatch::runnable(c, fl, f) {
            Some(t) => {
                v.push((t, c != CopyTier::Temporal));
                lines.push(format!("checking {}", t.name));
            }
            None => lines.push(format!(
                "SKIPPED: {} (this CPU lacks {}; it has: {})",
                t.name,
                missing(c, fl, f),
                f.names()
            )),
        }
    }
    // The test-only tables: the generic algorithm over a portable 64-byte
    // vector (the stand-in for AVX-512), runnable on every CPU.
    for t in dispatch::test_tables() {
        v.push((t, true));
        lines.push(format!("checking {}", t.name));
    }
    REPORTED.call_once(|| println!("{}", lines.join("\n")));
    assert!(!v.is_empty(), "no runnable table at all");
    v
}

/// What this CPU lacks to run a pair.
fn missing(c: CopyTier, fl: FlushKind, f: &detect::Features) -> String {
    let need = [
        (c == CopyTier::Avx512f && !f.avx512f, "avx512f"),
        (c == CopyTier::Avx2 && !f.avx2, "avx2"),
        (c == CopyTier::Sse2 && !f.sse2, "sse2"),
        (fl == FlushKind::Clwb && !f.clwb, "clwb"),
        (fl == FlushKind::ClflushOpt && !f.clflushopt, "clflushopt"),
        (fl == FlushKind::Clflush && !f.clflush, "clflush"),
        (fl == FlushKind::DcCvap && !f.dc_cvap, "dc-cvap"),
    ];
    need.iter()
        .filter(|(lacks, _)| *lacks)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Zero-filled memory aligned to a page, so offsets are offsets from a
/// line boundary.
struct Arena {
    words: Vec<Page>,
}
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Page([u8; 4096]);

impl Arena {
    fn new(bytes: usize) -> Self {
        Arena {
            words: vec![Page([0; 4096]); bytes.div_ceil(4096)],
        }
    }
    fn len(&self) -> usize {
        self.words.len() * 4096
    }
    fn ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr().cast()
    }
    fn bytes(&mut self) -> &mut [u8] {
        let n = self.len();
        // SAFETY: the pages are one contiguous, initialised allocation of n bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), n) }
    }
}

/// A small deterministic generator (xorshift64*): reproducible cases
/// without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Copy,
    CopyNoFlush,
    Set,
    SetNoFlush,
    /// Overlapping move with the source `delta` bytes above the destination.
    MoveDown,
    /// Overlapping move with the source `delta` bytes below.
    MoveUp,
    MoveNoFlushDown,
    MoveNoFlushUp,
    /// `move(d, d, n)` of bytes the caller stored earlier.
    MoveSelf,
    MoveNoFlushSelf,
    /// Write-back of bytes the caller stored with plain pointer writes.
    Flush,
    Invalidate,
    /// The fence alone.
    Fence,
}

const ALL_OPS: [Op; 13] = [
    Op::Copy,
    Op::CopyNoFlush,
    Op::Set,
    Op::SetNoFlush,
    Op::MoveDown,
    Op::MoveUp,
    Op::MoveNoFlushDown,
    Op::MoveNoFlushUp,
    Op::MoveSelf,
    Op::MoveNoFlushSelf,
    Op::Flush,
    Op::Invalidate,
    Op::Fence,
];

impl Op {
    fn rule(self) -> Rule {
        match self {
            Op::CopyNoFlush
            | Op::SetNoFlush
            | Op::MoveNoFlushDown
            | Op::MoveNoFlushUp
            | Op::MoveNoFlushSelf => Rule::NoFlush,
            _ => Rule::WriteBack,
        }
    }
    /// Whether the operation writes data the engine may stream.
    fn may_stream(self) -> bool {
        !matches!(
            self,
            Op::MoveSelf | Op::MoveNoFlushSelf | Op::Flush | Op::Invalidate | Op::Fence
        )
    }
}

/// Where and how much: the destination offset from a page boundary, the
/// length, the distance of a move's source, and a seed for the contents.
#[derive(Clone, Copy)]
struct Case {
    off: usize,
    n: usize,
    delta: usize,
    seed: u8,
}

/// One worker's state: its arena, a reference copy, the checker's buffers.
struct Runner {
    arena: Arena,
    expect: Vec<u8>,
    checker: Checker,
    cases: u64,
}

/// Where the destination window starts in the arena, leaving room for a
/// source below it (moves up) and a guard zone.
fn layout(max_len: usize) -> (usize, usize) {
    let room = max_len + 4096;
    (room, 2 * room + max_len + 4096)
}

impl Runner {
    fn new(max_len: usize) -> Self {
        let (_, size) = layout(max_len);
        Runner {
            arena: Arena::new(size),
            expect: Vec::new(),
            checker: Checker::new(),
            cases: 0,
        }
    }

    /// Runs `op` of table `t` at `base + off` for `n` bytes, judges the
    /// record and the bytes, and panics with the full report on failure.
    fn run(&mut self, t: &Ops, nt_tier: bool, op: Op, c: Case) {
        let Case {
            off,
            n,
            delta,
            seed,
        } = c;
        self.cases += 1;
        let (base, size) = layout(n.max(MAX_LEN));
        assert!(size <= self.arena.len());
        let p = self.arena.ptr();
        let d_off = base + off;
        // Distinct contents everywhere, so a wrong byte cannot match by luck.
        let lo = d_off.saturating_sub(n + 2 * LINE);
        let hi = (d_off + 2 * n + 2 * LINE).min(self.arena.len());
        for (i, b) in self.arena.bytes()[lo..hi].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed) | 1;
        }
        let s_off = match op {
            Op::MoveDown | Op::MoveNoFlushDown => d_off + delta,
            Op::MoveUp | Op::MoveNoFlushUp => d_off - delta,
            _ => d_off,
        };
        let src_len = if matches!(op, Op::Copy | Op::CopyNoFlush) {
            n
        } else {
            0
        };
        // The source of a copy lies past the destination window.
        let copy_src = hi.min(self.arena.len() - src_len);
        let copy_src = if copy_src < d_off + n {
            d_off + n
        } else {
            copy_src
        };
        self.expect.clear();
        self.expect.extend_from_slice(&self.arena.bytes()[lo..hi]);
        let exp = &mut self.expect;
        let (dl, sl) = (d_off - lo, s_off.wrapping_sub(lo));
        let fill = seed ^ 0x5a;
        match op {
            Op::Copy | Op::CopyNoFlush => {
                let src: Vec<u8> = self.arena.bytes()[copy_src..copy_src + n].to_vec();
                exp[dl..dl + n].copy_from_slice(&src);
            }
            Op::Set | Op::SetNoFlush => exp[dl..dl + n].fill(fill),
            Op::MoveDown | Op::MoveUp | Op::MoveNoFlushDown | Op::MoveNoFlushUp => {
                exp.copy_within(sl..sl + n, dl)
            }
            _ => {}
        }
        // SAFETY: every pointer below stays inside the arena: the window
        // [lo, hi) holds the destination and the moved source, and
        // copy_src + n <= arena length; ranges of copy do not overlap.
        let events = unsafe {
            let d = p.add(d_off);
            let s = p.add(s_off);
            trace::start();
            match op {
                Op::Copy => t.copy(d, p.add(copy_src), n),
                Op::CopyNoFlush => t.copy_noflush(d, p.add(copy_src), n),
                Op::Set => t.set(d, fill, n),
                Op::SetNoFlush => t.set_noflush(d, fill, n),
                Op::MoveDown | Op::MoveUp => t.r#move(d, s, n),
                Op::MoveNoFlushDown | Op::MoveNoFlushUp => t.move_noflush(d, s, n),
                Op::MoveSelf => {
                    trace::note_store(d, n);
                    t.r#move(d, d, n)
                }
                Op::MoveNoFlushSelf => {
                    trace::note_store(d, n);
                    t.move_noflush(d, d, n)
                }
                Op::Flush => {
                    trace::note_store(d, n);
                    (t.flush)(d, n)
                }
                Op::Invalidate => {
                    trace::note_store(d, n);
                    (t.invalidate)(d, n)
                }
                Op::Fence => {}
            }
            (t.fence)();
            trace::take()
        };
        let what = || {
            format!(
                "{} {op:?} offset {off} length {n} delta {delta} threshold {}",
                t.name,
                pmem_sys::engine::movnt_threshold()
            )
        };
        let len = if op == Op::Fence { 0 } else { n };
        let sum = match self
            .checker
            .check(&events, p as usize + d_off, len, op.rule())
        {
            Ok(sum) => sum,
            Err(v) => panic!("{}:\n{}\nrecord: {events:?}", what(), oracle::render(&v)),
        };
        if self.arena.bytes()[lo..hi] != self.expect[..] {
            let got = &self.arena.bytes()[lo..hi];
            let first = got
                .iter()
                .zip(&self.expect)
                .position(|(a, b)| a != b)
                .unwrap();
            panic!(
                "{}: byte dst{:+} is {:#04x}, expected {:#04x}",
                what(),
                lo as isize + first as isize - d_off as isize,
                got[first],
                self.expect[first]
            );
        }
        // The shape of the tier: when the copy is at or above the
        // threshold, exactly the whole lines of the body are streamed, and
        // for a flushing copy or fill also each partial-line edge that is
        // whole aligned 8-byte words; else nothing.
        let thr = pmem_sys::engine::movnt_threshold();
        // The no-flush variants stream only from NOFLUSH_NT_MIN up.
        let thr = if op.rule() == Rule::NoFlush {
            thr.max(pmem_sys::engine::NOFLUSH_NT_MIN)
        } else {
            thr
        };
        let streamed = if nt_tier && op.may_stream() && n >= thr {
            let d = p as usize + d_off;
            let head = (d.wrapping_neg() & (LINE - 1)).min(n);
            let body = (n - head) & !(LINE - 1);
            let tail = n - head - body;
            let words = |a: usize, len: usize| len != 0 && (a | len).is_multiple_of(8);
            let tail_nt = words(d + head + body, tail);
            let head_nt = words(d, head) && (tail == 0 || tail_nt);
            let edges = if matches!(op, Op::Copy | Op::Set) {
                (if head_nt { head } else { 0 }) + (if tail_nt { tail } else { 0 })
            } else {
                0
            };
            body + edges
        } else {
            0
        };
        assert_eq!(sum.streamed_bytes, streamed, "{}: bytes streamed", what());
        if op.rule() == Rule::NoFlush || op == Op::Fence {
            assert_eq!(sum.flushes, 0, "{}", what());
        }
        if op == Op::Fence {
            assert_eq!(events, [trace::Event::Fence], "{}", what());
        }
    }

    /// Every op at every offset 0..=max_off with every length 0..=1024.
    fn matrix(&mut self, t: &Ops, nt_tier: bool, ops: &[Op], max_off: usize) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ t.name.len() as u64);
        for off in 0..=max_off {
            for n in 0..=MAX_LEN {
                for &op in ops {
                    let delta = match op {
                        // An overlapping move: 1 <= delta < n.
                        Op::MoveDown | Op::MoveUp | Op::MoveNoFlushDown | Op::MoveNoFlushUp
                            if n > 1 =>
                        {
                            1 + rng.below(n - 1)
                        }
                        _ => 0,
                    };
                    if delta == 0
                        && matches!(
                            op,
                            Op::MoveDown | Op::MoveUp | Op::MoveNoFlushDown | Op::MoveNoFlushUp
                        )
                    {
                        continue;
                    }
                    self.run(
                        t,
                        nt_tier,
                        op,
                        Case {
                            off,
                            n,
                            delta,
                            seed: (off + n) as u8,
                        },
                    );
                }
            }
        }
    }
}

fn set_threshold(v: Option<&str>) {
    knobs::set_option("PMEM_SYS_MOVNT_THRESHOLD", v)
        .expect("the threshold knob accepts a byte count");
}

/// Runs `work` for every runnable table, split over the CPUs.
fn for_each_table(work: impl Fn(&mut Runner, &Ops, bool) + Sync, max_len: usize) -> u64 {
    let tables = runnable_tables();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(tables.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut r = Runner::new(max_len);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(t, nt)) = tables.get(i) else { break };
                    work(&mut r, t, nt);
                }
                total.fetch_add(r.cases, std::sync::atomic::Ordering::Relaxed);
            });
        }
    });
    total.into_inner()
}

/// The full matrix at the CPU's default threshold, for every operation.
#[test]
fn every_tier_every_offset_every_length() {
    let _g = THRESHOLD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    set_threshold(None);
    let cases = for_each_table(|r, t, nt| r.matrix(t, nt, &ALL_OPS, MAX_OFF), MAX_LEN);
    println!(
        "{cases} records checked at threshold {}",
        pmem_sys::engine::movnt_threshold()
    );
}

/// The data operations under other thresholds: 0 (every whole line
/// streamed), 256 (PMDK's default), an odd value, and one above every
/// length (temporal throughout). Offsets 0..=63 here: the algorithm sees
/// only the offset within a line, so 64..=127 repeat those classes (the
/// test above runs them all once), and this keeps the test near 20 s.
#[test]
fn every_tier_under_other_thresholds() {
    let _g = THRESHOLD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let ops = [Op::Copy, Op::Set, Op::MoveDown, Op::MoveUp];
    let mut cases = 0;
    for thr in ["0", "256", "1000", "4096"] {
        set_threshold(Some(thr));
        assert_eq!(
            pmem_sys::engine::movnt_threshold(),
            thr.parse::<usize>().unwrap()
        );
        cases += for_each_table(|r, t, nt| r.matrix(t, nt, &ops, LINE - 1), MAX_LEN);
    }
    set_threshold(None);
    println!("{cases} records checked at thresholds 0, 256, 1000, 4096");
}

/// Random large cases: lengths up to 256 KiB, offsets up to a page, every
/// operation, thresholds varied.
#[test]
fn random_large_cases() {
    const MAX: usize = 256 * 1024;
    const PER_TABLE: usize = 600;
    let _g = THRESHOLD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut cases = 0;
    for (round, thr) in [None, Some("0"), Some("8192")].into_iter().enumerate() {
        set_threshold(thr);
        cases += for_each_table(
            |r, t, nt| {
                let mut rng = Rng(0xdead_beef_u64 ^ (round as u64) << 32 ^ t.name.len() as u64);
                for i in 0..PER_TABLE / 3 {
                    // Log-uniform lengths from 1 KiB to 256 KiB.
                    let k = rng.below(18).max(1);
                    let n = MAX_LEN + rng.below(1 << k).min(MAX - MAX_LEN);
                    let off = rng.below(4096);
                    let op = ALL_OPS[rng.below(ALL_OPS.len())];
                    let delta = 1 + rng.below(n - 1);
                    r.run(
                        t,
                        nt,
                        op,
                        Case {
                            off,
                            n,
                            delta,
                            seed: i as u8,
                        },
                    );
                }
            },
            MAX,
        );
    }
    set_threshold(None);
    println!("{cases} random large records checked");
}

/// The streaming path of every leaf, the no-flush ones included: they
/// stream only from `NOFLUSH_NT_MIN` (4 MiB) up, which no other case here
/// reaches. Copies, fills and overlapping moves of 8 MiB + 13 at a line
/// boundary, at odd offsets and at a word offset, at the default
/// threshold. (The flushing leaves stream from the threshold up, which
/// the cases above cover.) Few cases: each judges 8 Mi bytes.
#[test]
fn every_leaf_streams_at_8_mib() {
    const BIG: usize = 8 * 1024 * 1024 + 13;
    const { assert!(BIG >= 2 * pmem_sys::engine::NOFLUSH_NT_MIN) };
    let _g = THRESHOLD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    set_threshold(None);
    let cases = for_each_table(
        |r, t, nt| {
            for (off, op) in [
                (0, Op::CopyNoFlush),
                (4096 + 13, Op::CopyNoFlush),
                (8, Op::SetNoFlush),
                (7, Op::MoveNoFlushDown),
                (64, Op::MoveNoFlushUp),
            ] {
                let c = Case {
                    off,
                    n: BIG,
                    delta: BIG / 3 + 1,
                    seed: off as u8,
                };
                r.run(t, nt, op, c);
            }
        },
        BIG,
    );
    println!("{cases} records of 8 MiB + 13 checked");
}
