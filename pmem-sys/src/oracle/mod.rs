//! The persistence checker: the test oracle that judges a record of the
//! engine's stores, flushes and fences (`crate::engine::trace`). Compiled
//! only with the `record` feature, which only tests enable: none of it is
//! in the library users link.
//!
//! The checker is a small pmemcheck that needs no Valgrind. For one
//! operation followed by its fence it asserts that
//!
//! - every byte of the destination was written, and either its last write
//!   was a non-temporal store, or it lies in a cache line written back
//!   *after* its last ordinary store (under [`Rule::WriteBack`]; under
//!   [`Rule::NoFlush`], for byte- and page-granular memory, an ordinary
//!   store is enough and any flush is an error);
//! - a fence follows every event that makes a byte durable (the
//!   non-temporal store, the write-back, or under `NoFlush` the store);
//! - nothing outside the destination was stored to;
//! - no line is written back twice, and none is written back without an
//!   ordinary store to write back (superfluous flushes, which pmemcheck
//!   reports too: a line written only by non-temporal stores, a line never
//!   written, a line outside the destination).
//!
//! Each violation names the byte range it concerns, relative to the
//! destination and as absolute addresses, and the event that caused it.

use crate::trace::Event;
use std::fmt;

/// The cache-line size the checker assumes (x86_64 and the aarch64
/// CPUs this library runs on).
pub const LINE: usize = 64;

/// What makes a byte durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Cache-line granularity (ADR): an ordinary store must be written
    /// back after it, then fenced; a non-temporal store must be fenced.
    WriteBack,
    /// Byte granularity (eADR) or page granularity: stores must be
    /// fenced, and the operation must issue no write-back at all (the
    /// `_noflush` entries of a table).
    NoFlush,
}

/// The kinds of mistake the checker finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A destination byte no event wrote.
    NotWritten,
    /// A byte whose last ordinary store no write-back of its line followed.
    NotFlushed,
    /// A byte whose line was written back, but only before its last
    /// ordinary store.
    FlushBeforeStore,
    /// A byte made durable (streamed, written back, or stored under
    /// `NoFlush`) with no fence after that.
    NotFenced,
    /// A store or non-temporal store to bytes outside the destination.
    StoreOutside,
    /// A write-back of a line that no byte of the destination is in.
    FlushOutside,
    /// A second write-back of the same line.
    FlushTwice,
    /// A write-back of a line with no ordinary store to write back
    /// (never written, or written only by non-temporal stores).
    FlushClean,
    /// A write-back in an operation that must not issue any.
    FlushForbidden,
    /// A write-back event that is not one whole aligned line.
    FlushMalformed,
}

/// One mistake: its kind, the byte range (offsets from the
/// destination, negative before it), the index of the event that
/// caused it, and a message naming all three.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What is wrong.
    pub kind: Kind,
    /// First byte concerned, relative to the destination.
    pub start: isize,
    /// One past the last byte concerned, relative to the destination.
    pub end: isize,
    /// The event (index in the record) that caused it, if one did.
    pub event: Option<usize>,
    /// The human-readable report.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a correct record contained, for tests that assert the shape of
/// a tier (say, "a temporal tier streams nothing").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Ordinary store events.
    pub stores: usize,
    /// Non-temporal store events.
    pub streams: usize,
    /// Bytes whose last write was a non-temporal store.
    pub streamed_bytes: usize,
    /// Write-back events.
    pub flushes: usize,
    /// Fence events.
    pub fences: usize,
}

/// Writes `[dst+a, dst+b) = [0x.., 0x..)`.
pub fn describe_range(dst: usize, start: isize, end: isize) -> String {
    let rel = |o: isize| {
        if o < 0 {
            format!("dst-{}", o.unsigned_abs())
        } else {
            format!("dst+{o}")
        }
    };
    let abs = |o: isize| dst.wrapping_add_signed(o);
    format!(
        "[{}, {}) = [{:#x}, {:#x})",
        rel(start),
        rel(end),
        abs(start),
        abs(end)
    )
}

/// The checker, holding its scratch buffers so that a test can judge
/// millions of records without allocating for each.
#[derive(Default)]
pub struct Checker {
    /// Per destination byte: 1 + index of its last write, 0 for none.
    last_write: Vec<u32>,
    /// Per destination byte: whether that write was non-temporal.
    streamed: Vec<bool>,
    /// Per line of the window: 1 + index of its last write-back.
    last_flush: Vec<u32>,
    /// Per line: an ordinary store happened since its last write-back.
    dirty: Vec<bool>,
}

/// The per-byte verdict, coalesced into ranges for the report.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Durable,
    NotWritten,
    NotFlushed { store: u32 },
    FlushBeforeStore { store: u32, flush: u32 },
    NotFenced { event: u32 },
}

impl Checker {
    /// A checker with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges `events`, the record of one operation on
    /// `[dst, dst + len)` followed by its fence.
    pub fn check(
        &mut self,
        events: &[Event],
        dst: usize,
        len: usize,
        rule: Rule,
    ) -> Result<Summary, Vec<Violation>> {
        let mut bad = Vec::new();
        let mut sum = Summary::default();
        let end = dst + len;
        // The window: every line that holds a byte of the destination.
        let lo = dst & !(LINE - 1);
        let hi = if len == 0 {
            lo
        } else {
            (end + LINE - 1) & !(LINE - 1)
        };
        let nlines = (hi - lo) / LINE;
        self.last_write.clear();
        self.last_write.resize(len, 0);
        self.streamed.clear();
        self.streamed.resize(len, false);
        self.last_flush.clear();
        self.last_flush.resize(nlines, 0);
        self.dirty.clear();
        self.dirty.resize(nlines, false);

        let rel = |a: usize| a.wrapping_sub(dst) as isize;
        let mut last_fence = 0u32;
        let mut report = |kind: Kind, a: usize, b: usize, event: usize, what: String| {
            let (start, end) = (rel(a), rel(b));
            bad.push(Violation {
                kind,
                start,
                end,
                event: Some(event),
                message: format!(
                    "bytes {}: {what} (event #{event})",
                    describe_range(dst, start, end)
                ),
            });
        };

        for (i, e) in events.iter().enumerate() {
            let seq = i as u32 + 1;
            match *e {
                Event::Store { addr, len: n } | Event::Stream { addr, len: n } => {
                    let nt = matches!(e, Event::Stream { .. });
                    if nt {
                        sum.streams += 1;
                    } else {
                        sum.stores += 1;
                    }
                    let what = if nt { "non-temporal store" } else { "store" };
                    let (a, b) = (addr, addr + n);
                    if a < dst {
                        report(
                            Kind::StoreOutside,
                            a,
                            b.min(dst),
                            i,
                            format!("{what} outside the destination (before its start)"),
                        );
                    }
                    if b > end {
                        report(
                            Kind::StoreOutside,
                            a.max(end),
                            b,
                            i,
                            format!("{what} outside the destination (past its end)"),
                        );
                    }
                    let (a, b) = (a.max(dst), b.min(end));
                    if a < b {
                        self.last_write[a - dst..b - dst].fill(seq);
                        self.streamed[a - dst..b - dst].fill(nt);
                        if !nt {
                            for l in (a - lo) / LINE..=(b - 1 - lo) / LINE {
                                self.dirty[l] = true;
                            }
                        }
                    }
                }
                Event::Flush { addr, len: n } => {
                    sum.flushes += 1;
                    if rule == Rule::NoFlush {
                        report(
                            Kind::FlushForbidden,
                            addr,
                            addr + n,
                            i,
                            "written back by an operation that must not flush".into(),
                        );
                        continue;
                    }
                    if n != LINE || addr % LINE != 0 {
                        report(
                            Kind::FlushMalformed,
                            addr,
                            addr + n,
                            i,
                            format!("write-back of {n} bytes, not one aligned {LINE}-byte line"),
                        );
                        continue;
                    }
                    if addr < lo || addr >= hi {
                        report(
                            Kind::FlushOutside,
                            addr,
                            addr + n,
                            i,
                            "line written back holds no byte of the destination".into(),
                        );
                        continue;
                    }
                    let l = (addr - lo) / LINE;
                    if self.last_flush[l] != 0 {
                        let first = self.last_flush[l] - 1;
                        report(
                            Kind::FlushTwice,
                            addr,
                            addr + n,
                            i,
                            format!("line written back twice (first at event #{first})"),
                        );
                    } else if !self.dirty[l] {
                        report(Kind::FlushClean, addr, addr + n, i, "line written back with no ordinary store to write back (never written, or written only by non-temporal stores)".into());
                    }
                    self.last_flush[l] = seq;
                    self.dirty[l] = false;
                }
                Event::Fence => {
                    sum.fences += 1;
                    last_fence = seq;
                }
            }
        }

        // Per byte: written, durable, fenced; coalesced into ranges.
        let verdict = |b: usize| -> Verdict {
            let w = self.last_write[b];
            if w == 0 {
                return Verdict::NotWritten;
            }
            let durable_at = if self.streamed[b] || rule == Rule::NoFlush {
                w
            } else {
                let f = self.last_flush[(dst + b - lo) / LINE];
                if f == 0 {
                    return Verdict::NotFlushed { store: w };
                }
                if f < w {
                    return Verdict::FlushBeforeStore { store: w, flush: f };
                }
                f
            };
            if durable_at > last_fence {
                Verdict::NotFenced { event: durable_at }
            } else {
                Verdict::Durable
            }
        };
        let same_kind =
            |x: Verdict, y: Verdict| core::mem::discriminant(&x) == core::mem::discriminant(&y);
        let mut b = 0;
        while b < len {
            let v = verdict(b);
            let mut e = b + 1;
            while e < len && same_kind(verdict(e), v) {
                e += 1;
            }
            let (kind, event, what) = match v {
                Verdict::Durable => {
                    b = e;
                    continue;
                }
                Verdict::NotWritten => (Kind::NotWritten, None, "never written".to_owned()),
                Verdict::NotFlushed { store } => (
                    Kind::NotFlushed,
                    Some(store as usize - 1),
                    format!(
                        "written by ordinary stores (the first at event #{}) and never written back",
                        store - 1
                    ),
                ),
                Verdict::FlushBeforeStore { store, flush } => (
                    Kind::FlushBeforeStore,
                    Some(store as usize - 1),
                    format!(
                        "line written back (event #{}) before the last ordinary store to it (event #{})",
                        flush - 1,
                        store - 1
                    ),
                ),
                Verdict::NotFenced { event } => (
                    Kind::NotFenced,
                    Some(event as usize - 1),
                    if last_fence == 0 {
                        format!(
                            "no fence at all after the event that makes them durable (the first at event #{})",
                            event - 1
                        )
                    } else {
                        format!(
                            "made durable (event #{}) after the last fence (event #{})",
                            event - 1,
                            last_fence - 1
                        )
                    },
                ),
            };
            let (start, end) = (b as isize, e as isize);
            bad.push(Violation {
                kind,
                start,
                end,
                event,
                message: format!("bytes {}: {what}", describe_range(dst, start, end)),
            });
            b = e;
        }
        sum.streamed_bytes = self
            .streamed
            .iter()
            .zip(&self.last_write)
            .filter(|(s, w)| **s && **w != 0)
            .count();
        if bad.is_empty() { Ok(sum) } else { Err(bad) }
    }
}

/// Judges one record with a fresh [`Checker`].
pub fn check(
    events: &[Event],
    dst: usize,
    len: usize,
    rule: Rule,
) -> Result<Summary, Vec<Violation>> {
    Checker::new().check(events, dst, len, rule)
}

/// Joins violations into one report, one per line.
pub fn render(v: &[Violation]) -> String {
    v.iter()
        .map(|x| x.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
