//! Page-granular durability: stores into a page-granular mapping are
//! remembered per thread, and `wmb_pmem()` turns them into `msync` calls
//! (page-rounded, merged, each dirty page once). An `msync` failure inside
//! the void `wmb_pmem()` is kept for the thread and reported by the next
//! `pmem_sys_drain()` or `pmem_sys_persist()`.

use super::{page_granular_parts, sys};
use crate::Error;
use std::cell::{Cell, RefCell};

/// When the list reaches this many ranges it is merged in place, so a
/// thread that never fences does not grow it without bound. After a merge
/// the next one waits until the list has doubled: merging a list that
/// stays long (stores to more than this many scattered pages) at every
/// push would sort it on every store.
const COMPACT_AT: usize = 4096;

/// The smallest page size there is: two ranges that touch the same or
/// adjacent blocks of this size are kept as one (they are msynced by
/// whole pages anyway, so no page is added).
const MIN_PAGE: usize = 4096;

/// The older ranges of a thread (see [`LAST`]).
struct Dirty {
    ranges: Vec<(usize, usize)>,
    /// Length at which [`push`] merges `ranges` next.
    compact_at: usize,
}

thread_local! {
    /// The range recorded last, kept apart from [`DIRTY`] so that the
    /// commonest case, a store into the same or the next page, is one
    /// thread-local access with no borrow flag and no destructor to
    /// register (a `Cell` of plain data). Empty (`(0, 0)`) only when
    /// [`DIRTY`] is empty too, so [`has_dirty`] needs only this.
    static LAST: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    static DIRTY: RefCell<Dirty> = const {
        RefCell::new(Dirty { ranges: Vec::new(), compact_at: COMPACT_AT })
    };
    static PENDING: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Remembers `[addr, addr + n)` as dirty for the calling thread.
#[inline]
pub(crate) fn record(addr: usize, n: usize) {
    if n == 0 {
        return;
    }
    LAST.with(|last| {
        let (s, e) = last.get();
        // A store from the first block of the last range up to the block
        // after its end joins it: sequential stores, repeated ones and
        // scattered ones within a page.
        if e != 0 && addr >= s & !(MIN_PAGE - 1) && addr <= e.next_multiple_of(MIN_PAGE) {
            last.set((s.min(addr), e.max(addr + n)));
            return;
        }
        if e != 0 {
            push((s, e));
        }
        last.set((addr, addr + n));
    });
}

/// Moves a range out of [`LAST`] into the list, merging the list in place
/// when it is long (see [`COMPACT_AT`]).
#[cold]
fn push(r: (usize, usize)) {
    DIRTY.with(|d| {
        let d = &mut *d.borrow_mut();
        d.ranges.push(r);
        if d.ranges.len() >= d.compact_at {
            d.ranges = merge_pages(std::mem::take(&mut d.ranges), sys::page_size());
            d.compact_at = COMPACT_AT.max(2 * d.ranges.len());
            #[cfg(test)]
            tests::MERGES.with(|m| m.set(m.get() + 1));
        }
    });
}

/// Every range this thread dirtied, taken (the thread is clean after).
fn take_all() -> Vec<(usize, usize)> {
    let last = LAST.with(|l| l.replace((0, 0)));
    let mut v = DIRTY.with(|d| {
        let d = &mut *d.borrow_mut();
        d.compact_at = COMPACT_AT;
        std::mem::take(&mut d.ranges)
    });
    if last.1 != 0 {
        v.push(last);
    }
    v
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
    let ranges = take_all();
    if ranges.is_empty() {
        return;
    }
    for (s, e) in merge_pages(ranges, sys::page_size()) {
        // A range of a mapping unmapped since the store must not be
        // touched.
        for (s, e) in page_granular_parts(s, e) {
            match sys::msync(s, e - s) {
                Ok(()) => {}
                // ENOMEM: no longer mapped. Another thread unmapped the
                // range between the registry check and the msync (its own
                // data is its own business); nothing is left to sync there.
                Err(libc::ENOMEM) => {}
                Err(errno) => keep_failure("wmb_pmem", s, e, errno),
            }
        }
    }
}

/// Before `[start, end)` is unmapped: msyncs the ranges this thread
/// dirtied inside it (so they are not lost, nor left to be synced later at
/// an address that may be mapped again) and forgets them. A failure is
/// kept like one of `wmb_pmem()`.
pub(crate) fn sync_before_unmap(start: usize, end: usize) {
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for r in take_all() {
        if r.0 >= end || r.1 <= start {
            outside.push(r);
            continue;
        }
        inside.push(r);
        // The parts of a range that reach into neighbouring mappings stay
        // dirty for them.
        if r.0 < start {
            outside.push((r.0, start));
        }
        if r.1 > end {
            outside.push((end, r.1));
        }
    }
    // The ranges outside go back, the newest (last in the list) as LAST.
    if let Some(newest) = outside.pop() {
        LAST.with(|l| l.set(newest));
        DIRTY.with(|d| d.borrow_mut().ranges = outside);
    }
    for (s, e) in merge_pages(inside, sys::page_size()) {
        let (s, e) = (s.max(start), e.min(end));
        if let Err(errno) = sys::msync(s, e - s) {
            keep_failure("memunmap_pmem", s, e, errno);
        }
    }
}

/// Keeps the first msync failure of this thread for [`take_pending`].
fn keep_failure(call: &str, s: usize, e: usize, errno: i32) {
    let err = Error::os(
        errno,
        call,
        format_args!("msync of [{s:#x}, {e:#x})"),
        "msync failed",
    );
    PENDING.with(|p| {
        p.borrow_mut().get_or_insert(err);
    });
}

/// Takes the error a void `wmb_pmem()` of this thread recorded, if any.
pub(crate) fn take_pending() -> Option<Error> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// Whether this thread has dirty page-granular ranges waiting.
#[inline]
pub fn has_dirty() -> bool {
    LAST.with(|l| l.get().1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Granularity;

    thread_local! {
        /// How many times this thread's list was merged.
        pub(super) static MERGES: Cell<usize> = const { Cell::new(0) };
    }

    #[test]
    fn ranges_extend_the_last_then_queue_and_are_taken_once() {
        assert!(!has_dirty());
        record(0x10_000, 8);
        record(0x10_008, 8); // extends
        record(0x10_000, 4); // repeats
        record(0x10_800, 8); // same page, with a gap
        record(0x11_000, 8); // the next page
        record(0x50_000, 16); // queues the first
        record(0x4f_ff0, 4); // the page before: a range of its own
        record(0x90_000, 1);
        assert!(has_dirty());
        assert_eq!(
            take_all(),
            vec![
                (0x10_000, 0x11_008),
                (0x50_000, 0x50_010),
                (0x4f_ff0, 0x4f_ff4),
                (0x90_000, 0x90_001)
            ]
        );
        assert!(!has_dirty());
        assert!(take_all().is_empty());
    }

    /// Two page-granular mappings side by side (as mmap places them), a
    /// store at the end of the lower and one at the start of the upper:
    /// their ranges merge into one that spans both, and the fence must
    /// msync both pages. It msynced neither: the merged range lay in no
    /// single mapping, so it was dropped. Unmapping one of them must not
    /// forget the other's part either.
    #[test]
    fn a_range_spanning_neighbouring_mappings_is_synced_in_each() {
        let page = sys::page_size();
        let base = sys::anonymous_shared(2 * page);
        for k in 0..2 {
            super::super::registry::insert(super::super::Region {
                start: base + k * page,
                len: page,
                map_len: page,
                granularity: Granularity::Page,
                reason: std::ffi::CString::new("test").unwrap(),
            });
        }
        sys::MSYNCED.with(|m| m.borrow_mut().clear());
        record(base + page - 8, 8);
        record(base + page, 8);
        sync_dirty();
        assert!(take_pending().is_none());
        let synced = sys::MSYNCED.with(|m| std::mem::take(&mut *m.borrow_mut()));
        assert_eq!(synced, vec![(base, page), (base + page, page)]);

        // The same, but the lower mapping is unmapped before the fence: its
        // page is msynced then, and the upper one must stay dirty for the
        // fence (the whole range was forgotten with the lower mapping).
        record(base + page - 8, 8);
        record(base + page, 8);
        super::super::unmap(base).unwrap();
        assert_eq!(
            sys::MSYNCED.with(|m| std::mem::take(&mut *m.borrow_mut())),
            vec![(base, page)]
        );
        assert!(has_dirty(), "the upper mapping's page must stay dirty");
        sync_dirty();
        assert!(take_pending().is_none());
        assert_eq!(
            sys::MSYNCED.with(|m| std::mem::take(&mut *m.borrow_mut())),
            vec![(base + page, page)]
        );
        super::super::unmap(base + page).unwrap();
    }

    /// Stores scattered over more pages than COMPACT_AT, with no fence:
    /// the list must not be merged on every store (it was: once it held
    /// 4096 distinct pages, every push sorted it again).
    #[test]
    fn scattered_stores_merge_the_list_rarely() {
        let pages = 3 * COMPACT_AT;
        for k in 0..4 * pages {
            // Every other page, in a scrambled order, so nothing merges.
            let page = (k * 7919) % pages;
            record(0x1000_0000 + 2 * page * MIN_PAGE, 8);
        }
        let merges = MERGES.with(|m| m.get());
        let v = take_all();
        assert_eq!(merge_pages(v, MIN_PAGE).len(), pages);
        assert!(merges <= 8, "{merges} merges for {} stores", 4 * pages);
    }

    #[test]
    fn unmapping_the_last_range_keeps_the_older_ones() {
        record(0x10_000, 8);
        record(0x50_000, 8);
        // Nothing is mapped at these addresses, so the msync fails; only
        // the ranges left behind matter here.
        sync_before_unmap(0x50_000, 0x51_000);
        let _ = take_pending();
        assert!(has_dirty(), "the older range must still be remembered");
        assert_eq!(take_all(), vec![(0x10_000, 0x10_008)]);
        assert!(!has_dirty());
    }

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
