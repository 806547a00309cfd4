//! The registry of this library's mappings, and the one question the copy
//! path asks it.
//!
//! The copy path asks the registry one question, "is this address in a
//! byte- or page-granular mapping?", so the answer is kept where it is
//! cheapest: a counter that is zero while no such mapping exists (then the
//! question costs one load), and otherwise a small sorted table read under
//! a sequence counter (a seqlock). The read side is plain loads: no locked
//! instruction, which on x86 waits for every write-back and non-temporal
//! store in flight and so would turn each copy into a fence (measured by
//! `make bench`: 16 copies of 64 B under one fence went from 14 ns to
//! 112 ns per copy with an `ArcSwap` load, whose debt slot is a locked
//! swap, on the path; see BENCHMARKS.md).

use super::{Granularity, dirty, page_size, sys};
use crate::Error;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex};

/// One mapping of this library.
#[derive(Debug)]
pub struct Region {
    /// Start address.
    pub start: usize,
    /// Length as asked for.
    pub len: usize,
    /// Length passed to mmap (page-rounded).
    pub map_len: usize,
    /// Store granularity.
    pub granularity: Granularity,
    /// Why it has that granularity, for humans.
    pub reason: CString,
}

static REGISTRY: Mutex<BTreeMap<usize, Arc<Region>>> = Mutex::new(BTreeMap::new());
/// Slots of the seqlock table. With more byte- or page-granular mappings
/// than this at once, lookups take the registry lock instead (correct,
/// just slower).
const SPECIAL_SLOTS: usize = 64;

/// The sorted byte- and page-granular mappings as plain atomics under a
/// sequence counter: the writer (holding the registry lock, so there is
/// one) makes `seq` odd, rewrites the slots and makes it even again; a
/// reader retries when `seq` was odd or changed while it read. Reads are
/// `Relaxed` loads between an `Acquire` load and an `Acquire` fence, plain
/// `mov`s on x86.
struct SpecialTable {
    seq: AtomicUsize,
    len: AtomicUsize,
    start: [AtomicUsize; SPECIAL_SLOTS],
    end: [AtomicUsize; SPECIAL_SLOTS],
    granularity: [AtomicUsize; SPECIAL_SLOTS],
}

impl SpecialTable {
    const fn new() -> Self {
        SpecialTable {
            seq: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            start: [const { AtomicUsize::new(0) }; SPECIAL_SLOTS],
            end: [const { AtomicUsize::new(0) }; SPECIAL_SLOTS],
            granularity: [const { AtomicUsize::new(0) }; SPECIAL_SLOTS],
        }
    }

    /// Replaces the contents with `v` (sorted by start, disjoint); one
    /// writer at a time.
    fn publish(&self, v: &[(usize, usize, Granularity)]) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, r) in v.iter().take(SPECIAL_SLOTS).enumerate() {
            self.start[i].store(r.0, Ordering::Relaxed);
            self.end[i].store(r.1, Ordering::Relaxed);
            self.granularity[i].store(r.2 as usize, Ordering::Relaxed);
        }
        self.len.store(v.len(), Ordering::Release);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The run of memory `addr` lies in: the granularity of the entry
    /// containing it (`None`: no entry) and where that answer stops
    /// holding (the entry's end, or the start of the next entry above, or
    /// `usize::MAX`). `None` when the entries do not fit the slots.
    #[inline]
    fn lookup(&self, addr: usize) -> Option<(Option<Granularity>, usize)> {
        loop {
            let seq = self.seq.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let n = self.len.load(Ordering::Relaxed);
                if n > SPECIAL_SLOTS {
                    return None;
                }
                // The first slot whose start lies above addr.
                let (mut lo, mut hi) = (0, n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if self.start[mid].load(Ordering::Relaxed) <= addr {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                let run = match lo.checked_sub(1) {
                    Some(i) if addr < self.end[i].load(Ordering::Relaxed) => (
                        Some(self.granularity[i].load(Ordering::Relaxed)),
                        self.end[i].load(Ordering::Relaxed),
                    ),
                    _ if lo < n => (None, self.start[lo].load(Ordering::Relaxed)),
                    _ => (None, usize::MAX),
                };
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == seq {
                    let g = run.0.map(|g| {
                        if g == Granularity::Byte as usize {
                            Granularity::Byte
                        } else {
                            Granularity::Page
                        }
                    });
                    return Some((g, run.1));
                }
            }
            core::hint::spin_loop();
        }
    }
}

static SPECIAL_TABLE: SpecialTable = SpecialTable::new();

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<usize, Arc<Region>>> {
    // The map is always consistent between statements; a panic elsewhere
    // while holding the lock does not make it unusable.
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn publish_special(reg: &BTreeMap<usize, Arc<Region>>) {
    let v: Vec<_> = reg
        .values()
        .filter(|r| r.granularity != Granularity::CacheLine)
        .map(|r| (r.start, r.start + r.map_len, r.granularity))
        .collect();
    // The caller holds the registry lock: this is the only writer.
    SPECIAL_TABLE.publish(&v);
}

/// True while this library has no byte- or page-granular mapping: every
/// store then takes the flushing half, and this one load is all the
/// routing it costs.
#[inline(always)]
pub(crate) fn no_special_mappings() -> bool {
    SPECIAL_TABLE.len.load(Ordering::Acquire) == 0
}

/// How a range is stored, written back and made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Cache-line-granular memory, or memory this library did not map:
    /// ordinary stores are written back.
    WriteBack,
    /// Wholly inside one byte- or page-granular mapping: no write-back;
    /// page-granular ranges are msynced by the fence.
    Special(Granularity),
    /// Across the edge of a byte- or page-granular mapping (mmap places
    /// mappings side by side): every line is written back, which is
    /// harmless where it is not needed, and the range is also remembered
    /// for the fence's msync, which clips it to the page-granular
    /// mappings it overlaps.
    Mixed,
}

/// The route of `[addr, addr + n)`. While no byte- or page-granular
/// mapping exists this is one load, no seqlock.
#[inline(always)]
pub(crate) fn route(addr: usize, n: usize) -> Route {
    if no_special_mappings() {
        return Route::WriteBack;
    }
    special_route(addr, n)
}

#[inline(never)]
fn special_route(addr: usize, n: usize) -> Route {
    let (g, run_end) = SPECIAL_TABLE
        .lookup(addr)
        .unwrap_or_else(|| registry_run(addr));
    if addr.saturating_add(n) > run_end {
        return Route::Mixed;
    }
    g.map_or(Route::WriteBack, Route::Special)
}

/// [`SpecialTable::lookup`] from the registry itself, for more special
/// mappings than slots.
fn registry_run(addr: usize) -> (Option<Granularity>, usize) {
    let reg = registry();
    if let Some((_, r)) = reg.range(..=addr).next_back()
        && addr < r.start + r.map_len
        && r.granularity != Granularity::CacheLine
    {
        return (Some(r.granularity), r.start + r.map_len);
    }
    let next = reg
        .range(addr.saturating_add(1)..)
        .find(|(_, r)| r.granularity != Granularity::CacheLine)
        .map_or(usize::MAX, |(start, _)| *start);
    (None, next)
}

/// The registered mappings that overlap `[start, end)`, in address order.
pub(crate) fn regions_overlapping(start: usize, end: usize) -> Vec<Arc<Region>> {
    let reg = registry();
    let mut v: Vec<Arc<Region>> = reg
        .range(..end)
        .rev()
        .map(|(_, r)| r)
        .take_while(|r| r.start + r.map_len.max(r.len) > start)
        .cloned()
        .collect();
    v.reverse();
    v
}

/// The mapping of this library containing `addr`.
pub fn region_at(addr: usize) -> Option<Arc<Region>> {
    let reg = registry();
    let (_, r) = reg.range(..=addr).next_back()?;
    (addr < r.start + r.len.max(1)).then(|| r.clone())
}

/// Registers a new mapping (and publishes it to the copy path's table if
/// it is byte- or page-granular).
pub(super) fn insert(region: Region) {
    let granularity = region.granularity;
    let mut reg = registry();
    reg.insert(region.start, Arc::new(region));
    if granularity != Granularity::CacheLine {
        publish_special(&reg);
    }
}

/// `memunmap_pmem`: unmaps a mapping of this library given its start.
pub fn unmap(addr: usize) -> Result<(), Error> {
    const CALL: &str = "memunmap_pmem";
    let mut reg = registry();
    let Some(region) = reg.remove(&addr) else {
        let why = if addr == 0 {
            "NULL".to_owned()
        } else {
            match reg.range(..=addr).next_back() {
                Some((_, r)) if addr < r.start + r.map_len => {
                    format!("inside the mapping at {:#x} but not its start", r.start)
                }
                _ => "not a mapping of this library (never mapped, or already unmapped)".to_owned(),
            }
        };
        return Err(Error::new(
            libc::EINVAL,
            CALL,
            format_args!("addr {addr:#x}"),
            why,
        ));
    };
    if region.granularity != Granularity::CacheLine {
        publish_special(&reg);
    }
    drop(reg);
    if region.granularity == Granularity::Page {
        dirty::sync_before_unmap(region.start, region.start + region.map_len);
    }
    let _rec = crate::record::unmap(region.start);
    sys::unmap(region.start, region.map_len);
    Ok(())
}

/// Unmaps `[start, end)` (page-aligned) from every mapping of this library
/// it overlaps, keeping the parts outside it registered: PMDK's
/// `pmem_unmap` of part of a mapping (the compatibility layer's). The
/// calling thread's unfenced page-granular ranges of each affected mapping
/// are msynced first, as `unmap` does.
pub fn unmap_range(start: usize, end: usize) -> Result<(), Error> {
    let page = page_size();
    if !start.is_multiple_of(page) || !end.is_multiple_of(page) || end < start {
        return Err(Error::new(
            libc::EINVAL,
            "unmap_range",
            format_args!("[{start:#x}, {end:#x})"),
            "not a page-aligned range",
        ));
    }
    let mut reg = registry();
    let first = reg
        .range(..=start)
        .next_back()
        .filter(|(_, r)| r.start + r.map_len > start)
        .map_or(start, |(s, _)| *s);
    let hit: Vec<Arc<Region>> = reg
        .range(first..end)
        .map(|(_, r)| r.clone())
        .filter(|r| r.start + r.map_len > start)
        .collect();
    let mut special = false;
    let mut page_granular = Vec::new();
    for r in &hit {
        reg.remove(&r.start);
        special |= r.granularity != Granularity::CacheLine;
        if r.granularity == Granularity::Page {
            page_granular.push((r.start, r.start + r.map_len));
        }
        let piece = |s: usize, e: usize| Region {
            start: s,
            // The asked length where it reaches into the piece, else the
            // piece (device-DAX maps whole alignment units past it).
            len: match (r.start + r.len).min(e).saturating_sub(s) {
                0 => e - s,
                l => l,
            },
            map_len: e - s,
            granularity: r.granularity,
            reason: r.reason.clone(),
        };
        if r.start < start {
            reg.insert(r.start, Arc::new(piece(r.start, start)));
        }
        if r.start + r.map_len > end {
            reg.insert(end, Arc::new(piece(end, r.start + r.map_len)));
        }
    }
    if special {
        publish_special(&reg);
    }
    drop(reg);
    for (s, e) in page_granular {
        dirty::sync_before_unmap(s, e);
    }
    crate::record::unmap_range(start, end);
    for r in &hit {
        let (s, e) = (r.start.max(start), (r.start + r.map_len).min(end));
        sys::unmap(s, e - s);
    }
    Ok(())
}

/// The length of the mapping that starts at `addr`.
pub fn mapping_size(addr: usize) -> Result<usize, Error> {
    registry().get(&addr).map(|r| r.len).ok_or_else(|| {
        Error::new(
            libc::EINVAL,
            "pmem_sys_mapping_size",
            format_args!("addr {addr:#x}"),
            "not the start of a mapping of this library",
        )
    })
}

/// The granularity of `[addr, addr + n)`, which must lie inside one mapping.
pub fn granularity(call: &str, addr: usize, n: usize) -> Result<Granularity, Error> {
    let end = addr.checked_add(n.max(1));
    let r = region_at(addr).filter(|r| end.is_some_and(|e| e <= r.start + r.len));
    r.map(|r| r.granularity).ok_or_else(|| {
        Error::new(
            libc::EINVAL,
            call,
            format_args!("range [{addr:#x}, +{n})"),
            "not inside one mapping of this library",
        )
    })
}

/// The reason of the mapping containing `addr` (valid while it is mapped).
pub fn reason(addr: usize) -> Result<Arc<Region>, Error> {
    region_at(addr).ok_or_else(|| {
        Error::new(
            libc::EINVAL,
            "pmem_sys_mapping_reason",
            format_args!("addr {addr:#x}"),
            "not inside a mapping of this library",
        )
    })
}

/// The reason text of a region.
pub fn reason_text(r: &Region) -> &CStr {
    &r.reason
}

/// msyncs `[addr, addr + n)` of a page-granular mapping, page-rounded.
pub(crate) fn msync_range(call: &str, addr: usize, n: usize) -> Result<(), Error> {
    let page = page_size();
    let s = addr & !(page - 1);
    let e = (addr + n + page - 1) & !(page - 1);
    sys::msync(s, e - s).map_err(|errno| {
        Error::os(
            errno,
            call,
            format_args!("range [{addr:#x}, +{n})"),
            "msync",
        )
    })
}

/// msyncs the parts of `[addr, addr + n)` that lie in page-granular
/// mappings, each page-rounded (a [`Route::Mixed`] range).
pub(crate) fn msync_page_parts(call: &str, addr: usize, n: usize) -> Result<(), Error> {
    for (s, e) in page_granular_parts(addr, addr.saturating_add(n)) {
        msync_range(call, s, e - s)?;
    }
    Ok(())
}

/// The parts of `[start, end)` that lie in page-granular mappings still
/// registered, in address order: a range may span neighbouring mappings
/// (mmap places them side by side), and a part whose mapping is gone needs
/// no sync.
pub(crate) fn page_granular_parts(start: usize, end: usize) -> Vec<(usize, usize)> {
    regions_overlapping(start, end)
        .iter()
        .filter(|r| r.granularity == Granularity::Page)
        .map(|r| (start.max(r.start), end.min(r.start + r.map_len)))
        .collect()
}

#[cfg(test)]
mod special_table_tests {
    use super::*;

    /// The run of `addr` by a linear search: the containing entry and its
    /// end, or no entry and the start of the next one above.
    fn naive(v: &[(usize, usize, Granularity)], addr: usize) -> (Option<Granularity>, usize) {
        match v.iter().find(|r| r.0 <= addr && addr < r.1) {
            Some(r) => (Some(r.2), r.1),
            None => (
                None,
                v.iter()
                    .map(|r| r.0)
                    .filter(|&s| s > addr)
                    .min()
                    .unwrap_or(usize::MAX),
            ),
        }
    }

    fn entries(k: usize) -> Vec<(usize, usize, Granularity)> {
        (0..k)
            .map(|i| {
                (
                    0x1000 * (2 * i + 1),
                    0x1000 * (2 * i + 2),
                    if i % 2 == 0 {
                        Granularity::Page
                    } else {
                        Granularity::Byte
                    },
                )
            })
            .collect()
    }

    #[test]
    fn lookup_matches_a_linear_search_up_to_the_slots() {
        let t = SpecialTable::new();
        for k in 0..=SPECIAL_SLOTS {
            let v = entries(k);
            t.publish(&v);
            for addr in (0..0x1000 * (2 * k + 3)).step_by(0x400).chain([usize::MAX]) {
                assert_eq!(
                    t.lookup(addr),
                    Some(naive(&v, addr)),
                    "{k} entries, addr {addr:#x}"
                );
            }
        }
        t.publish(&entries(SPECIAL_SLOTS + 1));
        assert_eq!(
            t.lookup(0x1000),
            None,
            "more entries than slots defers to the registry"
        );
        t.publish(&entries(1));
        assert_eq!(t.lookup(0x1000), Some((Some(Granularity::Page), 0x2000)));
        assert_eq!(t.lookup(0x800), Some((None, 0x1000)));
        assert_eq!(t.lookup(0x2000), Some((None, usize::MAX)));
    }

    /// A reader racing a writer sees one published state or the other,
    /// never a mix of two.
    #[test]
    fn a_reader_never_sees_a_torn_table() {
        let t = SpecialTable::new();
        let a = entries(16);
        let b: Vec<_> = a
            .iter()
            .map(|r| {
                (
                    r.0,
                    r.0 + 0x800,
                    if r.2 == Granularity::Page {
                        Granularity::Byte
                    } else {
                        Granularity::Page
                    },
                )
            })
            .collect();
        t.publish(&a);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..20_000 {
                    t.publish(if i % 2 == 0 { &b } else { &a });
                }
                stop.store(true, Ordering::Relaxed);
            });
            let mut checked = 0u64;
            while !stop.load(Ordering::Relaxed) || checked < 1000 {
                for addr in [0x1000, 0x1900, 0x5000, 0x5c00] {
                    let got = t.lookup(addr).unwrap();
                    assert!(
                        got == naive(&a, addr) || got == naive(&b, addr),
                        "addr {addr:#x}: {got:?}"
                    );
                    checked += 1;
                }
            }
        });
    }
}
