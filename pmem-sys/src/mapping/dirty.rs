//! Page-granular durability: stores into a page-granular mapping are
//! remembered per thread, and `wmb_pmem()` turns them into `msync` calls
//! (page-rounded, merged, each dirty page once). An `msync` failure inside
//! the void `wmb_pmem()` is kept for the thread and reported by the next
//! `pmem_sys_drain()` or `pmem_sys_persist()`.

use super::{Granularity, registry_region_containing, sys};
use crate::Error;
use std::cell::RefCell;

/// Above this many ranges the list is merged in place, so a thread that
/// never fences does not grow it without bound.
const COMPACT_AT: usize = 4096;

thread_local! {
    static DIRTY: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
    static PENDING: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Remembers `[addr, addr + n)` as dirty for the calling thread.
pub(crate) fn record(addr: usize, n: usize) {
    if n == 0 {
        return;
    }
    DIRTY.with(|d| {
        let mut d = d.borrow_mut();
        if let Some(last) = d.last_mut() {
            // Sequential writes extend the last range instead of adding one.
            if addr >= last.0 && addr <= last.1 {
                last.1 = last.1.max(addr + n);
                return;
            }
        }
        d.push((addr, addr + n));
        if d.len() >= COMPACT_AT {
            let merged = merge_pages(std::mem::take(&mut *d), sys::page_size());
            *d = merged;
        }
    });
}

/// Sorts, rounds to pages and merges ranges that touch or overlap.
pub(crate) fn merge_pages(mut v: Vec<(usize, usize)>, page: usize) -> Vec<(usize, usize)> {
    for r in v.iter_mut() {
        r.0 &= !(page - 1);
        r.1 = (r.1 + page - 1) & !(page - 1);
    }
    v.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// msyncs every range this thread dirtied; a failure is kept for
/// [`take_pending`]. Ranges whose mapping is gone are dropped.
pub(crate) fn sync_dirty() {
    let ranges = DIRTY.with(|d| std::mem::take(&mut *d.borrow_mut()));
    if ranges.is_empty() {
        return;
    }
    for (s, e) in merge_pages(ranges, sys::page_size()) {
        // Clip to the mapping still registered there: a range of a mapping
        // unmapped since the store needs no sync and must not be touched.
        let Some(region) = registry_region_containing(s, e) else {
            continue;
        };
        if region.granularity != Granularity::Page {
            continue;
        }
        let (s, e) = (s.max(region.start), e.min(region.start + region.map_len));
        match sys::msync(s, e - s) {
            Ok(()) => {}
            // ENOMEM: no longer mapped. Another thread unmapped the range
            // between the registry check and the msync (its own data is
            // its own business); there is nothing left to sync through it.
            Err(libc::ENOMEM) => {}
            Err(errno) => {
                let err = Error::os(
                    errno,
                    "wmb_pmem",
                    format_args!("msync of [{s:#x}, {e:#x})"),
                    "msync failed",
                );
                PENDING.with(|p| p.borrow_mut().get_or_insert(err).clone());
            }
        }
    }
}

/// Before `[start, end)` is unmapped: msyncs the ranges this thread
/// dirtied inside it (so they are not lost, nor left to be synced later at
/// an address that may be mapped again) and forgets them. A failure is
/// kept like one of `wmb_pmem()`.
pub(crate) fn sync_before_unmap(start: usize, end: usize) {
    let inside: Vec<(usize, usize)> = DIRTY.with(|d| {
        let mut d = d.borrow_mut();
        let (inside, outside) = d.iter().partition(|r| r.0 < end && r.1 > start);
        *d = outside;
        inside
    });
    for (s, e) in merge_pages(inside, sys::page_size()) {
        let (s, e) = (s.max(start), e.min(end));
        if let Err(errno) = sys::msync(s, e - s) {
            let err = Error::os(
                errno,
                "memunmap_pmem",
                format_args!("msync of [{s:#x}, {e:#x})"),
                "msync failed",
            );
            PENDING.with(|p| p.borrow_mut().get_or_insert(err).clone());
        }
    }
}

/// Takes the error a void `wmb_pmem()` of this thread recorded, if any.
pub(crate) fn take_pending() -> Option<Error> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// Whether this thread has dirty page-granular ranges waiting.
pub fn has_dirty() -> bool {
    DIRTY.with(|d| !d.borrow().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_rounds_to_pages_and_joins_neighbours() {
        let v = vec![
            (5000, 5001),
            (10, 20),
            (4096, 4100),
            (3 * 4096 + 1, 3 * 4096 + 2),
        ];
        assert_eq!(merge_pages(v, 4096), vec![(0, 8192), (3 * 4096, 4 * 4096)]);
        assert_eq!(
            merge_pages(vec![(0, 4096), (4096, 4097)], 4096),
            vec![(0, 8192)]
        );
        assert_eq!(merge_pages(vec![], 4096), vec![]);
    }
}
