//! Proof that the persistence checker bites: hand-made broken records, and
//! real records of the engine with one event removed or moved, must each be
//! caught, with a message that names the byte range at fault.
//!
//! Run with `cargo test -p pmem-sys --release --features record --test persistence_broken`.
#![cfg(feature = "record")]

use pmem_sys::engine::trace::{self, Event};
use pmem_sys::oracle::{self, Checker, Kind, Rule, Violation, describe_range};

/// A line-aligned fake destination: the checker only does arithmetic on
/// addresses, so hand-made records need no memory.
const DST: usize = 0x10_0000;

fn store(off: usize, len: usize) -> Event {
    Event::Store {
        addr: DST + off,
        len,
    }
}
fn stream(off: usize, len: usize) -> Event {
    Event::Stream {
        addr: DST + off,
        len,
    }
}
fn flush(off: usize) -> Event {
    Event::Flush {
        addr: (DST + off) & !63,
        len: 64,
    }
}

/// Asserts that checking `events` reports a violation of `kind` over
/// exactly `[start, end)` (relative to `DST`) whose message names that
/// range, and returns all violations.
fn expect(
    events: &[Event],
    len: usize,
    rule: Rule,
    kind: Kind,
    start: isize,
    end: isize,
) -> Vec<Violation> {
    let bad = match oracle::check(events, DST, len, rule) {
        Ok(sum) => panic!(
            "{kind:?} at [{start}, {end}) not caught: the checker accepted {events:?} ({sum:?})"
        ),
        Err(v) => v,
    };
    let range = describe_range(DST, start, end);
    let hit = bad
        .iter()
        .find(|v| v.kind == kind && v.start == start && v.end == end);
    let hit = hit.unwrap_or_else(|| {
        panic!(
            "expected {kind:?} over {range}, got:\n{}",
            oracle::render(&bad)
        )
    });
    assert!(
        hit.message.contains(&range),
        "message does not name the range {range}: {}",
        hit.message
    );
    bad
}

#[test]
fn a_correct_record_passes() {
    // 8 bytes of head, two streamed lines, 16 bytes of tail: the shape of
    // a real copy of 152 bytes at offset 56.
    let ev = [
        store(56, 8),
        flush(56),
        stream(64, 32),
        stream(96, 32),
        stream(128, 32),
        stream(160, 32),
        store(192, 16),
        flush(192),
        Event::Fence,
    ];
    let sum = oracle::check(&ev, DST + 56, 152, Rule::WriteBack)
        .unwrap_or_else(|v| panic!("{}", oracle::render(&v)));
    assert_eq!(
        (
            sum.stores,
            sum.streams,
            sum.flushes,
            sum.fences,
            sum.streamed_bytes
        ),
        (2, 4, 2, 1, 128)
    );
    // An empty operation followed by its fence.
    oracle::check(&[Event::Fence], DST, 0, Rule::WriteBack).unwrap();
}

#[test]
fn tail_not_flushed() {
    let ev = [store(0, 64), store(64, 36), flush(0), Event::Fence];
    let bad = expect(&ev, 100, Rule::WriteBack, Kind::NotFlushed, 64, 100);
    assert_eq!(
        bad.len(),
        1,
        "only the tail is at fault:\n{}",
        oracle::render(&bad)
    );
    assert!(
        bad[0].message.contains("never written back"),
        "{}",
        bad[0].message
    );
    assert_eq!(bad[0].event, Some(1), "names the store");
}

#[test]
fn flush_before_store() {
    let ev = [store(0, 64), flush(0), store(32, 8), Event::Fence];
    let bad = expect(&ev, 64, Rule::WriteBack, Kind::FlushBeforeStore, 32, 40);
    assert_eq!(bad.len(), 1, "{}", oracle::render(&bad));
    assert!(
        bad[0].message.contains("before the last ordinary store"),
        "{}",
        bad[0].message
    );
    // Flushing first and storing afterwards, with nothing else.
    expect(
        &[flush(0), store(0, 64), Event::Fence],
        64,
        Rule::WriteBack,
        Kind::FlushBeforeStore,
        0,
        64,
    );
}

#[test]
fn missing_fence() {
    // Non-temporal stores with no fence at all.
    let bad = expect(
        &[stream(0, 64), stream(64, 64)],
        128,
        Rule::WriteBack,
        Kind::NotFenced,
        0,
        128,
    );
    assert!(bad[0].message.contains("no fence"), "{}", bad[0].message);
    // A fence, but before the write-back of the tail.
    let ev = [stream(0, 64), store(64, 10), Event::Fence, flush(64)];
    let bad = expect(&ev, 74, Rule::WriteBack, Kind::NotFenced, 64, 74);
    assert_eq!(
        bad.len(),
        1,
        "the streamed line was fenced:\n{}",
        oracle::render(&bad)
    );
    // Byte granularity needs the fence too.
    expect(&[store(0, 8)], 8, Rule::NoFlush, Kind::NotFenced, 0, 8);
}

#[test]
fn store_past_the_end_and_before_the_start() {
    let ev = [store(0, 72), flush(0), flush(64), Event::Fence];
    expect(&ev, 70, Rule::WriteBack, Kind::StoreOutside, 70, 72);
    let ev = [
        Event::Store {
            addr: DST - 8,
            len: 16,
        },
        flush(0),
        Event::Fence,
    ];
    let bad = expect(&ev, 8, Rule::WriteBack, Kind::StoreOutside, -8, 0);
    assert!(bad[0].message.contains("dst-8"), "{}", bad[0].message);
    expect(
        &[stream(64, 64), Event::Fence],
        100,
        Rule::WriteBack,
        Kind::StoreOutside,
        100,
        128,
    );
}

#[test]
fn bytes_never_written() {
    let ev = [store(0, 16), store(24, 8), flush(0), Event::Fence];
    let bad = expect(&ev, 32, Rule::WriteBack, Kind::NotWritten, 16, 24);
    assert_eq!(bad.len(), 1, "{}", oracle::render(&bad));
}

#[test]
fn superfluous_flushes() {
    // The same line twice.
    let ev = [store(0, 64), flush(0), flush(0), Event::Fence];
    let bad = expect(&ev, 64, Rule::WriteBack, Kind::FlushTwice, 0, 64);
    assert!(bad[0].message.contains("twice"), "{}", bad[0].message);
    // Twice even when stored to in between: the first write-back was wasted.
    expect(
        &[store(0, 8), flush(0), store(8, 8), flush(0), Event::Fence],
        64,
        Rule::WriteBack,
        Kind::FlushTwice,
        0,
        64,
    );
    // A line written only by non-temporal stores.
    expect(
        &[stream(0, 64), flush(0), Event::Fence],
        64,
        Rule::WriteBack,
        Kind::FlushClean,
        0,
        64,
    );
    // A line never written.
    expect(
        &[store(0, 64), flush(0), flush(64), Event::Fence],
        64,
        Rule::WriteBack,
        Kind::FlushOutside,
        64,
        128,
    );
    expect(
        &[store(0, 8), flush(0), flush(8), Event::Fence],
        128,
        Rule::NoFlush,
        Kind::FlushForbidden,
        0,
        64,
    );
    // Not one aligned line.
    expect(
        &[
            store(0, 8),
            Event::Flush {
                addr: DST + 4,
                len: 64,
            },
            Event::Fence,
        ],
        8,
        Rule::WriteBack,
        Kind::FlushMalformed,
        4,
        68,
    );
}

#[test]
fn write_back_of_streamed_bytes_after_a_temporal_store_is_not_needed() {
    // A later non-temporal store supersedes an earlier ordinary one: the
    // byte is durable by the stream, so no write-back is required, and one
    // would be superfluous.
    let ev = [store(0, 64), stream(0, 64), Event::Fence];
    oracle::check(&ev, DST, 64, Rule::WriteBack)
        .unwrap_or_else(|v| panic!("{}", oracle::render(&v)));
}

/// Real records of the engine: removing any single event, or moving a
/// write-back to before the stores it covers, must be caught.
#[test]
fn every_mutation_of_real_records_is_caught() {
    use pmem_sys::engine::{detect, dispatch};
    let mut checker = Checker::new();
    #[repr(C, align(64))]
    struct Buf([u8; 1024]);
    let mut dst = Box::new(Buf([0; 1024]));
    let src = [0xa5u8; 512];
    let mut mutations = 0;
    let f = detect::features();
    let mut tables = Vec::new();
    for (c, fl) in dispatch::all_pairs() {
        match dispatch::runnable(c, fl, f) {
            Some(t) => tables.push(t),
            None => println!(
                "SKIPPED: mutations of {} records (not runnable on this CPU: {})",
                dispatch::table(c, fl).map_or("?", |t| t.name),
                f.names()
            ),
        }
    }
    // The portable 64-byte stand-in for AVX-512 too.
    tables.extend(dispatch::test_tables());
    for t in tables {
        for (off, n) in [(0, 1), (3, 60), (56, 152), (1, 300), (64, 256), (17, 500)] {
            let d = dst.0.as_mut_ptr().wrapping_add(off);
            trace::start();
            // SAFETY: d..d+n and src..src+n lie in their buffers (off + n <= 1024, n <= 512).
            unsafe {
                t.copy(d, src.as_ptr(), n);
                (t.fence)();
            }
            let real = trace::take();
            let (base, rule) = (d as usize, Rule::WriteBack);
            checker
                .check(&real, base, n, rule)
                .unwrap_or_else(|v| panic!("{} off {off} n {n}:\n{}", t.name, oracle::render(&v)));
            for i in 0..real.len() {
                let mut ev = real.clone();
                let gone = ev.remove(i);
                assert!(
                    checker.check(&ev, base, n, rule).is_err(),
                    "{}: removing event #{i} {gone:?} of {real:?} was not caught",
                    t.name
                );
                mutations += 1;
            }
            for (i, e) in real.iter().enumerate() {
                if let Event::Flush { addr, .. } = *e {
                    // Move the write-back to the front, before every store.
                    let mut ev = real.clone();
                    ev.remove(i);
                    ev.insert(0, *e);
                    let v = checker
                        .check(&ev, base, n, rule)
                        .expect_err("a write-back moved before its stores was not caught");
                    assert!(v.iter().any(|x| x.kind == Kind::FlushBeforeStore || x.kind == Kind::FlushClean), "{addr:#x}: {}", oracle::render(&v));
                    mutations += 1;
                }
            }
            // One byte more than the operation was asked for.
            let v = checker
                .check(&real, base, n + 1, rule)
                .expect_err("a byte not covered was not caught");
            assert!(
                v.iter()
                    .any(|x| x.kind == Kind::NotWritten && x.start == n as isize),
                "{}",
                oracle::render(&v)
            );
        }
    }
    println!("{mutations} mutations of real records, all caught");
}
