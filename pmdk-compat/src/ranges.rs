//! The mappings this layer made, as PMDK's map tracker keeps them: what
//! `pmem_is_pmem` answers from, what `pmem_deep_drain` walks, and what
//! `pmem_unmap` splits when part of a mapping goes.
//!
//! This is PMDK's model (a mapping is persistent memory when it was mapped
//! with MAP_SYNC or is device-DAX), kept apart from pmem-sys's registry,
//! which knows granularities, not MAP_SYNC, and is not told about the
//! plain mappings of files that refused MAP_SYNC.

use std::collections::BTreeMap;
use std::ops::Range;

/// How a mapping was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// MAP_SYNC refused: a plain shared mapping (not persistent memory).
    Plain,
    /// A file on a DAX filesystem mapped with MAP_SYNC.
    MapSync,
    /// A device-DAX character device; `region` names its nvdimm region
    /// (`region0`), whose `deep_flush` attribute `pmem_deep_drain` writes.
    DevDax { region: Option<String> },
}

impl Kind {
    /// Persistent memory in PMDK's sense.
    pub fn is_pmem(&self) -> bool {
        !matches!(self, Kind::Plain)
    }
}

/// One tracked range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// One past the last byte.
    pub end: usize,
    /// How it was mapped.
    pub kind: Kind,
    /// Also in pmem-sys's registry (mapped with `memremap`), so unmapping
    /// any of it must go through the registry.
    pub registered: bool,
    /// The registry's mapping starts here (a split keeps the original).
    pub registry_start: usize,
}

/// A piece removed by [`Ranges::remove`].
#[derive(Debug, PartialEq, Eq)]
pub struct Removed {
    /// The bytes removed.
    pub range: Range<usize>,
    /// As in [`Entry`].
    pub registered: bool,
    /// As in [`Entry`].
    pub registry_start: usize,
}

/// Disjoint ranges by start address.
#[derive(Debug, Default)]
pub struct Ranges(BTreeMap<usize, Entry>);

impl Ranges {
    /// An empty tracker.
    pub const fn new() -> Self {
        Ranges(BTreeMap::new())
    }

    /// Tracks `[start, end)`.
    pub fn insert(&mut self, start: usize, end: usize, kind: Kind, registered: bool) {
        self.0.insert(
            start,
            Entry {
                end,
                kind,
                registered,
                registry_start: start,
            },
        );
    }

    /// The entries overlapping `[start, end)`, as `(start, entry)`.
    fn overlapping(&self, start: usize, end: usize) -> Vec<(usize, Entry)> {
        let first = self
            .0
            .range(..=start)
            .next_back()
            .filter(|(_, e)| e.end > start)
            .map(|(s, _)| *s)
            .unwrap_or(start);
        self.0
            .range(first..end)
            .filter(|(s, e)| **s < end && e.end > start)
            .map(|(s, e)| (*s, e.clone()))
            .collect()
    }

    /// Stops tracking `[start, end)`, splitting entries that stick out on
    /// either side; returns the removed pieces in address order.
    pub fn remove(&mut self, start: usize, end: usize) -> Vec<Removed> {
        let mut out = Vec::new();
        for (s, e) in self.overlapping(start, end) {
            self.0.remove(&s);
            if s < start {
                self.0.insert(
                    s,
                    Entry {
                        end: start,
                        ..e.clone()
                    },
                );
            }
            if e.end > end {
                self.0.insert(end, e.clone());
            }
            out.push(Removed {
                range: s.max(start)..e.end.min(end),
                registered: e.registered,
                registry_start: e.registry_start,
            });
        }
        out
    }

    /// PMDK's rule: 1 when every byte of `[addr, addr + len)` lies in
    /// tracked persistent memory (adjacent mappings may share the range);
    /// 0 for `len == 0`.
    pub fn is_pmem(&self, addr: usize, len: usize) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        if len == 0 {
            return false;
        }
        let mut at = addr;
        while at < end {
            match self.0.range(..=at).next_back() {
                Some((_, e)) if e.end > at && e.kind.is_pmem() => at = e.end,
                _ => return false,
            }
        }
        true
    }

    /// `[addr, addr + len)` cut into the tracked persistent-memory pieces
    /// (`Some(kind)`) and the gaps between them (`None`), in order.
    pub fn pieces(&self, addr: usize, len: usize) -> Vec<(Range<usize>, Option<Kind>)> {
        let end = addr.saturating_add(len);
        let mut out = Vec::new();
        if len == 0 {
            return out;
        }
        let mut at = addr;
        for (s, e) in self.overlapping(addr, end) {
            if !e.kind.is_pmem() {
                continue;
            }
            if s > at {
                out.push((at..s, None));
            }
            let piece_end = e.end.min(end);
            out.push((at.max(s)..piece_end, Some(e.kind)));
            at = piece_end;
        }
        if at < end {
            out.push((at..end, None));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: usize = 0x1000;

    fn dax() -> Kind {
        Kind::DevDax {
            region: Some("region0".into()),
        }
    }

    #[test]
    fn is_pmem_needs_every_byte_in_persistent_memory() {
        let mut r = Ranges::new();
        r.insert(10 * P, 12 * P, Kind::MapSync, true);
        r.insert(12 * P, 13 * P, dax(), true); // adjacent
        r.insert(20 * P, 21 * P, Kind::Plain, false);
        assert!(r.is_pmem(10 * P, 3 * P), "two adjacent mappings");
        assert!(r.is_pmem(11 * P + 7, 1));
        assert!(!r.is_pmem(10 * P, 3 * P + 1), "one byte past the end");
        assert!(!r.is_pmem(10 * P - 1, 2), "one byte before the start");
        assert!(!r.is_pmem(10 * P, 0), "len 0 is 0, as PMDK");
        assert!(!r.is_pmem(20 * P, 1), "a plain mapping is not pmem");
        assert!(!r.is_pmem(usize::MAX - 1, 5), "wrapping range");
        assert!(!Ranges::new().is_pmem(10 * P, 1));
    }

    #[test]
    fn remove_splits_on_both_sides() {
        let mut r = Ranges::new();
        r.insert(10 * P, 20 * P, Kind::MapSync, true);
        let gone = r.remove(12 * P, 14 * P);
        assert_eq!(
            gone,
            vec![Removed {
                range: 12 * P..14 * P,
                registered: true,
                registry_start: 10 * P
            }]
        );
        assert!(r.is_pmem(10 * P, 2 * P));
        assert!(!r.is_pmem(12 * P, 1));
        assert!(!r.is_pmem(13 * P, P));
        assert!(r.is_pmem(14 * P, 6 * P));
        assert_eq!(
            r.0.get(&(14 * P)).map(|e| e.registry_start),
            Some(10 * P),
            "the tail remembers the registry mapping it came from"
        );
        // Removing across the gap and both pieces.
        let gone = r.remove(11 * P, 15 * P);
        assert_eq!(
            gone.iter().map(|g| g.range.clone()).collect::<Vec<_>>(),
            vec![11 * P..12 * P, 14 * P..15 * P]
        );
        assert!(r.is_pmem(10 * P, P) && r.is_pmem(15 * P, 5 * P));
        assert!(r.remove(0, 5 * P).is_empty(), "nothing there");
        assert_eq!(r.remove(0, usize::MAX).len(), 2);
        assert!(r.0.is_empty());
    }

    #[test]
    fn pieces_cut_gaps_and_kinds() {
        let mut r = Ranges::new();
        r.insert(10 * P, 12 * P, Kind::MapSync, true);
        r.insert(14 * P, 15 * P, dax(), true);
        r.insert(15 * P, 16 * P, Kind::Plain, false);
        assert_eq!(
            r.pieces(9 * P, 8 * P),
            vec![
                (9 * P..10 * P, None),
                (10 * P..12 * P, Some(Kind::MapSync)),
                (12 * P..14 * P, None),
                (14 * P..15 * P, Some(dax())),
                (15 * P..17 * P, None),
            ]
        );
        assert_eq!(
            r.pieces(11 * P, 10),
            vec![(11 * P..11 * P + 10, Some(Kind::MapSync))]
        );
        assert!(r.pieces(11 * P, 0).is_empty());
    }
}
