//! The crash-test persistence model agrees with the engine's persistence
//! checker.
//!
//! For each runnable table and each store operation (copy, set, and a
//! move whose source overlaps its destination from above or below, with
//! and without write-back), over offsets and lengths around the line size
//! and the non-temporal threshold, the engine's instruction-level record
//! (`engine::trace`) is judged by `oracle::Checker` and, event by event,
//! replayed through `record::model::Model`. After every event (every crash
//! point inside the operation) the images the model allows, projected on
//! each destination byte, must be exactly what the checker's rules allow
//! for that prefix of the record:
//!
//! - a byte the checker calls durable holds the new value in every image;
//! - a byte never written holds the old value in every image;
//! - a byte written but not yet durable (not written back, written back
//!   before its last store, or not fenced) holds the old value in some
//!   images and the new one in others;
//!
//! with one documented difference under byte granularity (eADR, the
//! `_noflush` variants): the model takes an ordinary store as durable at
//! once, where the checker asks for a fence; so there a byte whose last
//! write was an ordinary store is expected new in every image. After the
//! final fence the model allows exactly one image: the destination all
//! new, nothing else changed.
//!
//! Run with `cargo test -p pmem-sys --release --features record --test crash_model`.
#![cfg(feature = "record")]

use pmem_sys::Granularity;
use pmem_sys::engine::dispatch::{self, CopyTier};
use pmem_sys::engine::trace::{self, Event};
use pmem_sys::engine::{Ops, detect};
use pmem_sys::oracle::{Checker, Kind, Rule};
use pmem_sys::record::format::{Call, Data, Record};
use pmem_sys::record::model::Model;

const PAGE: usize = 4096;
const OLD: u8 = 0xa5;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Copy,
    CopyNoFlush,
    Set,
    SetNoFlush,
    Move,
    MoveNoFlush,
}

/// Where a move's source starts relative to its destination: above it for
/// even lengths, below it for odd ones, so both directions of an
/// overlapping move run over the same lengths.
fn move_shift(n: usize) -> isize {
    if n.is_multiple_of(2) { 5 } else { -3 }
}

/// What the checker's rules say of one byte after a prefix of the record.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Allowed {
    New,
    Old,
    Either,
}

struct Arena {
    /// Owns the memory `base` points into.
    _buf: Vec<u8>,
    base: usize,
}

impl Arena {
    fn new(len: usize) -> Arena {
        let buf = vec![OLD; len + 2 * PAGE];
        let base = (buf.as_ptr() as usize + PAGE - 1) & !(PAGE - 1);
        Arena { _buf: buf, base }
    }
}

/// Runs `op` of table `t` on `[dst, dst + n)` and returns the record.
///
/// # Safety
/// `dst` writable and `src` readable for `n` bytes, not overlapping
/// except for the moves.
unsafe fn record(t: &Ops, op: Op, dst: *mut u8, src: *const u8, fill: u8, n: usize) -> Vec<Event> {
    trace::start();
    // SAFETY: the caller's contract.
    unsafe {
        match op {
            Op::Copy => t.copy(dst, src, n),
            Op::CopyNoFlush => t.copy_noflush(dst, src, n),
            Op::Set => t.set(dst, fill, n),
            Op::SetNoFlush => t.set_noflush(dst, fill, n),
            Op::Move => t.r#move(dst, src, n),
            Op::MoveNoFlush => t.move_noflush(dst, src, n),
        }
        (t.fence)();
    }
    trace::take()
}

/// The checker's verdict per destination byte for `events`.
fn allowed(
    checker: &mut Checker,
    events: &[Event],
    dst: usize,
    n: usize,
    rule: Rule,
) -> Vec<Allowed> {
    let mut a = vec![Allowed::New; n];
    if let Err(vs) = checker.check(events, dst, n, rule) {
        for v in vs {
            let what = match v.kind {
                Kind::NotWritten => Allowed::Old,
                Kind::NotFlushed | Kind::FlushBeforeStore | Kind::NotFenced => Allowed::Either,
                k => panic!("a prefix of an accepted record has a {k:?}: {}", v.message),
            };
            let (from, to) = (v.start.max(0) as usize, (v.end.max(0) as usize).min(n));
            a[from..to.max(from)].fill(what);
        }
    }
    a
}

/// The model's verdict per destination byte: the values it holds across
/// the images.
fn modelled(m: &Model, off: usize, n: usize, new: &[u8]) -> Vec<Allowed> {
    let un = m.uncertain();
    let file = &m.files[0];
    let by_unit: std::collections::HashMap<usize, &pmem_sys::record::model::Uncertain> =
        un.iter().map(|u| (u.unit, u)).collect();
    (0..n)
        .map(|b| {
            let at = off + b;
            let mut vals: Vec<u8> = match by_unit.get(&(at / 64)) {
                Some(u) => (0..u.candidates.len())
                    .map(|c| m.version(u, c).data[at - m.unit_range(u.file, u.unit).start])
                    .collect(),
                None => vec![file.current[at]],
            };
            vals.sort();
            vals.dedup();
            let (has_new, has_old) = (vals.contains(&new[b]), vals.contains(&OLD));
            assert!(
                vals.len() <= 2 && (has_new || has_old),
                "byte {b}: values {vals:?}"
            );
            match (has_old, has_new) {
                (true, true) => Allowed::Either,
                (true, false) => Allowed::Old,
                _ => Allowed::New,
            }
        })
        .collect()
}

/// One case: every prefix agrees; returns the number of crash points.
fn agree(checker: &mut Checker, t: &Ops, op: Op, off: usize, n: usize) -> usize {
    let mut arena = Arena::new(off + n + PAGE);
    let mut src_arena = Arena::new(n);
    let dst = (arena.base + PAGE + off) as *mut u8;
    let src = match op {
        // Inside the arena: [dst - 3, dst + n + 5) lies in it.
        Op::Move | Op::MoveNoFlush => dst.wrapping_offset(move_shift(n)),
        _ => src_arena.base as *mut u8,
    };
    let new: Vec<u8> = match op {
        Op::Copy | Op::CopyNoFlush | Op::Move | Op::MoveNoFlush => (0..n)
            .map(|i| (i * 7 % 251) as u8 ^ 0x0f)
            .map(|v| if v == OLD { 0 } else { v })
            .collect(),
        Op::Set | Op::SetNoFlush => vec![0x3c; n],
    };
    let len = (off + n).div_ceil(PAGE) * PAGE + PAGE;
    // SAFETY: src holds n bytes of src_arena, or of `arena` around dst for
    // a move (the arena has a page on each side of [dst, dst + n)); the
    // mapping window [base, base + len) lies inside `arena`. The new bytes
    // are placed at the source first; a move then carries them to dst.
    let events = unsafe {
        std::ptr::copy_nonoverlapping(new.as_ptr(), src, n);
        let ev = record(t, op, dst, src, 0x3c, n);
        // The destination really holds the new bytes.
        assert_eq!(std::slice::from_raw_parts(dst, n), &new[..]);
        ev
    };
    let _ = &mut arena;
    let _ = &mut src_arena;
    let base = arena.base;
    let dst = base + PAGE + off;
    let (rule, granularity) = match op {
        Op::Copy | Op::Set | Op::Move => (Rule::WriteBack, Granularity::CacheLine),
        Op::CopyNoFlush | Op::SetNoFlush | Op::MoveNoFlush => (Rule::NoFlush, Granularity::Byte),
    };
    let what = || format!("{} {op:?} off {off} len {n}", t.name);
    if let Err(v) = checker.check(&events, dst, n, rule) {
        panic!(
            "{}: the checker refuses the operation itself: {}",
            what(),
            pmem_sys::oracle::render(&v)
        );
    }
    let mut m = Model::new(64, PAGE);
    m.apply(&Record::Map {
        thread: 1,
        site: 0,
        call: Call::MapFile,
        map: 1,
        granularity,
        file_offset: 0,
        dev: 1,
        ino: 1,
        path: "arena".into(),
        initial: vec![OLD; len],
    })
    .unwrap();
    let moff = PAGE + off;
    // Per byte: was its last write so far an ordinary store?
    let mut last_ordinary = vec![false; n];
    for (p, e) in events.iter().enumerate() {
        let r = match *e {
            Event::Store { addr, len } | Event::Stream { addr, len } => {
                let streamed = matches!(e, Event::Stream { .. });
                let a = addr - dst;
                for b in &mut last_ordinary[a..a + len] {
                    *b = !streamed;
                }
                Record::Store {
                    thread: 1,
                    site: 0,
                    call: Call::MemcpyToPmem,
                    map: 1,
                    offset: (addr - base) as u64,
                    written_back: streamed,
                    data: Data::Bytes(new[a..a + len].to_vec()),
                }
            }
            Event::Flush { addr, len } => Record::WriteBack {
                thread: 1,
                site: 0,
                call: Call::ArchWbCachePmem,
                map: 1,
                offset: (addr - base) as u64,
                len: len as u64,
            },
            Event::Fence => Record::Fence {
                thread: 1,
                site: 0,
                call: Call::WmbPmem,
            },
        };
        m.apply(&r)
            .unwrap_or_else(|e| panic!("{}: event #{p}: {e}", what()));
        let mut want = allowed(checker, &events[..=p], dst, n, rule);
        if granularity == Granularity::Byte {
            for (w, o) in want.iter_mut().zip(&last_ordinary) {
                if *o {
                    *w = Allowed::New;
                }
            }
        }
        let got = modelled(&m, moff, n, &new);
        if let Some(b) = (0..n).find(|&b| want[b] != got[b]) {
            panic!(
                "{}: after event #{p} ({e:?}) byte {b}: the checker's rules allow {:?}, the model {:?}\nrecord: {events:?}",
                what(),
                want[b],
                got[b]
            );
        }
        // Nothing outside the destination ever changes.
        for u in m.uncertain() {
            let r = m.unit_range(u.file, u.unit);
            for c in 0..u.candidates.len() {
                let d = &m.version(&u, c).data;
                for (i, v) in d.iter().enumerate() {
                    let at = r.start + i;
                    assert!(
                        at >= moff && at < moff + n || *v == OLD,
                        "{}: byte outside changed",
                        what()
                    );
                }
            }
        }
    }
    assert!(
        m.uncertain().is_empty(),
        "{}: after the fence the model still has uncertain units",
        what()
    );
    assert_eq!(&m.files[0].current[moff..moff + n], &new[..]);
    events.len()
}

#[test]
fn the_model_allows_exactly_what_the_checker_allows() {
    let f = detect::features();
    let mut tables: Vec<&'static Ops> = Vec::new();
    for (c, fl) in dispatch::all_pairs() {
        match dispatch::runnable(c, fl, f) {
            Some(t) => tables.push(t),
            None => println!("SKIPPED: {:?}+{:?}: this CPU cannot run it", c, fl),
        }
        let _ = CopyTier::Temporal;
    }
    assert!(!tables.is_empty());
    let mut checker = Checker::new();
    let mut points = 0;
    let mut cases = 0;
    let offs = [0usize, 1, 7, 8, 9, 31, 32, 56, 63];
    let lens = [
        0usize, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 255,
        256, 257, 511, 1000, 4099,
    ];
    for t in &tables {
        for op in [
            Op::Copy,
            Op::CopyNoFlush,
            Op::Set,
            Op::SetNoFlush,
            Op::Move,
            Op::MoveNoFlush,
        ] {
            for &off in &offs {
                for &n in &lens {
                    points += agree(&mut checker, t, op, off, n);
                    cases += 1;
                }
            }
        }
        println!("checked {}", t.name);
    }
    println!("{cases} operations, {points} crash points agree");
}
