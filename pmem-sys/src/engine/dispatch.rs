//! Which snapshot runs. Selection is a pure function of (features, knobs)
//! ([`selection`]); the snapshot for a selection is built once and
//! interned ([`snapshot`]); publication happens in one place
//! (`publish`), through one atomic pointer that starts at a snapshot of
//! resolver trampolines, ifunc-style: the first call detects, selects,
//! publishes and forwards; every later call is one load and one indirect
//! call.
//!
//! ## No lost update
//!
//! The first call's resolution and [`set_option`] both select and publish
//! while holding the knobs' lock, so neither can publish a selection made
//! from knobs older than the other's; and the resolution publishes only by
//! compare-and-swap against the resolver snapshot, so it can never replace
//! a snapshot that `set_option` (or another first call) published.
//!
//! ## Snapshot memory
//!
//! Snapshots are leaked boxes, interned by their [`Selection`] (copy tier,
//! flush, fault-safe routine, thresholds), so a snapshot handed out lives
//! forever and a call in flight can never see it freed. What can vary
//! without bound is the threshold, a number: the interned set is capped at
//! [`MAX_SNAPSHOTS`] (a few hundred bytes each); a `set_option` that would
//! need one more distinct snapshot is refused, and changes nothing.

use super::{Features, Knobs, Ops, detect};
use crate::arch::{self, Half, Table};
pub use crate::arch::{CopyTier, FlushKind};
use crate::fault::{Guarded, GuardedKind};
use crate::knobs::{self, KnobError};
use core::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

/// The x86_64 ladder: the widest non-temporal store the CPU and the knobs
/// allow, and the best write-back instruction. Each `NO` knob removes only
/// its own rung.
pub fn select_x86_64(f: &Features, k: &Knobs) -> (CopyTier, FlushKind) {
    let copy = if k.no_movnt {
        CopyTier::Temporal
    } else if f.avx512f && !k.no_avx512f {
        CopyTier::Avx512f
    } else if f.avx2 && !k.no_avx2 {
        CopyTier::Avx2
    } else if f.sse2 {
        CopyTier::Sse2
    } else {
        CopyTier::Temporal
    };
    let flush = if f.clwb && !k.no_clwb {
        FlushKind::Clwb
    } else if f.clflushopt && !k.no_clflushopt {
        FlushKind::ClflushOpt
    } else {
        FlushKind::Clflush
    };
    (copy, flush)
}

/// The aarch64 ladder: temporal copies, DC CVAP where present.
pub fn select_aarch64(f: &Features, _k: &Knobs) -> (CopyTier, FlushKind) {
    (
        CopyTier::Temporal,
        if f.dc_cvap {
            FlushKind::DcCvap
        } else {
            FlushKind::DcCvac
        },
    )
}

/// The selection for this architecture.
pub fn select(f: &Features, k: &Knobs) -> (CopyTier, FlushKind) {
    if cfg!(target_arch = "x86_64") {
        select_x86_64(f, k)
    } else if cfg!(target_arch = "aarch64") {
        select_aarch64(f, k)
    } else {
        (CopyTier::Temporal, FlushKind::None)
    }
}

/// The default non-temporal threshold for a CPU.
///
/// Measured with `make bench` on AMD EPYC (Zen, 2 vCPUs under KVM,
/// CLFLUSHOPT, no CLWB; BENCHMARKS.md has the sweep): a persist of 8-192 B
/// by non-temporal stores completed at the fence in 96-104 ns against
/// 148-163 ns for ordinary stores plus CLFLUSHOPT (PMDK, threshold 256:
/// 151-162 ns), because the fence waits for a write-combining buffer
/// instead of a write-back round trip; from 256 B up every threshold at or
/// below the size was within noise. Batched (16 copies per fence), 8-16 B
/// were as fast either way and 32-48 B about 15% slower non-temporal, a
/// cost the per-operation case repays. So on AMD every copy of at least one
/// aligned 8-byte word goes non-temporal (8; below that no word is whole).
/// PMDK's own NONTEMPORAL flag was likewise faster for 8-64 B on a Zen 3
/// with CLWB (PMDK 1.12.1: a persist of 8 or 64 B in 128-130 ns with the
/// flag, 205-213 ns without). Elsewhere PMDK's 256 bytes stays until measured:
/// on Intel Optane a partial-line non-temporal write is a read-modify-write
/// in the module. `PMEM_SYS_MOVNT_THRESHOLD` overrides both.
pub fn default_threshold(f: &Features) -> usize {
    if f.amd { 8 } else { 256 }
}

/// The fault-safe copy for a selection: the AVX2 routine where the copy
/// tier is AVX2 or AVX-512 and `PMEM_SYS_NO_AVX2` is unset, otherwise SSE2
/// (the plain copy outside x86_64); streaming only when non-temporal
/// stores are allowed. Every tier but AVX-512 therefore implies its
/// routine (avx2 → avx2; sse2, temporal → sse2); an AVX-512 tier with
/// `PMEM_SYS_NO_AVX2=1` uses SSE2, and its name says so (`+mc_sse2`).
pub fn select_guarded(copy: CopyTier, f: &Features, k: &Knobs) -> (GuardedKind, bool) {
    let kind = match copy {
        CopyTier::Avx512f | CopyTier::Avx2 if f.avx2 && !k.no_avx2 => GuardedKind::Avx2,
        _ => GuardedKind::Sse2,
    };
    (kind, !k.no_movnt)
}

/// The routine a tier implies, when its name does not say otherwise.
fn implied_guarded(copy: CopyTier) -> GuardedKind {
    match copy {
        CopyTier::Avx512f | CopyTier::Avx2 => GuardedKind::Avx2,
        CopyTier::Sse2 | CopyTier::Temporal => GuardedKind::Sse2,
    }
}

/// Everything that decides a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Selection {
    /// The copy tier.
    pub copy: CopyTier,
    /// The flush instruction.
    pub flush: FlushKind,
    /// The fault-safe copy's routine.
    pub guarded: GuardedKind,
    /// Whether the fault-safe copy may stream.
    pub guarded_streams: bool,
    /// The non-temporal threshold for memory that needs flushes.
    pub threshold: usize,
}

/// The complete selection for (features, knobs): a pure function.
pub fn selection(f: &Features, k: &Knobs) -> Selection {
    let (copy, flush) = select(f, k);
    selection_for(copy, flush, f, k)
}

/// The selection of a given (copy, flush) pair, the rest from (features,
/// knobs).
pub fn selection_for(copy: CopyTier, flush: FlushKind, f: &Features, k: &Knobs) -> Selection {
    let (guarded, guarded_streams) = select_guarded(copy, f, k);
    Selection {
        copy,
        flush,
        guarded,
        guarded_streams,
        threshold: k.movnt_threshold.unwrap_or_else(|| default_threshold(f)),
    }
}

/// The most snapshots a process creates (see the module documentation).
pub const MAX_SNAPSHOTS: usize = 256;

static INTERNED: Mutex<Vec<&'static Ops>> = Mutex::new(Vec::new());

/// The snapshot of a selection (built on first use, then shared); `None`
/// when this build has no table for its pair, or when [`MAX_SNAPSHOTS`]
/// distinct snapshots exist already.
pub fn snapshot(sel: Selection) -> Option<&'static Ops> {
    intern(arch::table(sel.copy, sel.flush)?, sel, MAX_SNAPSHOTS)
}

/// [`snapshot`] of table `t` with a given cap. The first call's
/// resolution, which happens once per process, may go one past
/// [`MAX_SNAPSHOTS`], so it never fails.
fn intern(t: &'static Table, sel: Selection, cap: usize) -> Option<&'static Ops> {
    let mut interned = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = interned
        .iter()
        .find(|s| s.selection == sel && s.table.is_some_and(|x| core::ptr::eq(x, t)))
    {
        return Some(s);
    }
    if interned.len() >= cap {
        return None;
    }
    let s: &'static Ops = Box::leak(Box::new(build(t, sel)));
    interned.push(s);
    Some(s)
}

fn build(t: &'static Table, sel: Selection) -> Ops {
    debug_assert_eq!((t.copy_tier, t.flush_kind), (sel.copy, sel.flush));
    let name = if sel.guarded == implied_guarded(sel.copy) {
        t.name
    } else {
        // Bounded with the snapshots themselves.
        Box::leak(format!("{}+mc_{}", t.name, sel.guarded.name()).into_boxed_str())
    };
    Ops {
        name,
        selection: sel,
        noflush_threshold: sel.threshold.max(super::NOFLUSH_NT_MIN),
        flushing: t.flushing,
        noflush: t.noflush,
        flush: t.flush,
        invalidate: t.invalidate,
        fence: t.fence,
        guarded: Guarded::new(sel.guarded, sel.guarded_streams),
        table: Some(t),
    }
}

/// The snapshot of a (copy, flush) pair with the rest of the selection in
/// force (the fault-safe copy and threshold the knobs give), if this build
/// has a table for it.
pub fn table(copy: CopyTier, flush: FlushKind) -> Option<&'static Ops> {
    arch::table(copy, flush)?;
    let f = detect::features();
    knobs::read(|k| snapshot(selection_for(copy, flush, f, k)))
}

/// The snapshot of a pair, only if this CPU can run it: the safe way to
/// get any tier directly (tests use it to run every tier, naming the ones
/// they skip).
pub fn runnable(copy: CopyTier, flush: FlushKind, f: &Features) -> Option<&'static Ops> {
    let copy_ok = match copy {
        CopyTier::Avx512f => f.avx512f,
        CopyTier::Avx2 => f.avx2,
        CopyTier::Sse2 => f.sse2,
        CopyTier::Temporal => true,
    };
    let flush_ok = match flush {
        FlushKind::Clwb => f.clwb,
        FlushKind::ClflushOpt => f.clflushopt,
        FlushKind::Clflush => f.clflush,
        FlushKind::DcCvap => f.dc_cvap,
        FlushKind::DcCvac | FlushKind::None => true,
    };
    if copy_ok && flush_ok {
        table(copy, flush)
    } else {
        None
    }
}

/// Tables that only tests use (feature `test-tables`, which this crate's
/// own tests turn on): the generic algorithm over a portable 64-byte
/// vector, standing in for AVX-512 where the CPU lacks it. Runnable on
/// every CPU of the architecture; never selected.
/// Each is a snapshot with the fault-safe copy and threshold the knobs
/// give, like [`table`]'s.
#[cfg(feature = "test-tables")]
pub fn test_tables() -> Vec<&'static Ops> {
    let f = detect::features();
    arch::test_tables()
        .iter()
        .filter_map(|t| {
            knobs::read(|k| {
                intern(
                    t,
                    selection_for(t.copy_tier, t.flush_kind, f, k),
                    MAX_SNAPSHOTS,
                )
            })
        })
        .collect()
}

/// Every (copy, flush) pair this build has a table for.
pub fn all_pairs() -> Vec<(CopyTier, FlushKind)> {
    let copies = [
        CopyTier::Avx512f,
        CopyTier::Avx2,
        CopyTier::Sse2,
        CopyTier::Temporal,
    ];
    let flushes = [
        FlushKind::Clwb,
        FlushKind::ClflushOpt,
        FlushKind::Clflush,
        FlushKind::DcCvap,
        FlushKind::DcCvac,
        FlushKind::None,
    ];
    let mut v = Vec::new();
    for c in copies {
        for fl in flushes {
            if arch::table(c, fl).is_some() {
                v.push((c, fl));
            }
        }
    }
    v
}

static CURRENT: AtomicPtr<Ops> = AtomicPtr::new(&RESOLVER as *const Ops as *mut Ops);

/// The snapshot in use; the resolver's until the first call resolves.
#[inline(always)]
pub(crate) fn current() -> &'static Ops {
    // SAFETY: CURRENT only ever holds the address of RESOLVER (a static)
    // or of an interned snapshot, which is never freed; both are
    // immutable.
    unsafe { &*CURRENT.load(Ordering::Acquire) }
}

/// The snapshot in use, resolving it first if needed.
#[inline(always)]
pub(crate) fn resolved() -> &'static Ops {
    let t = current();
    if core::ptr::eq(t, &RESOLVER) {
        resolve()
    } else {
        t
    }
}

/// The one place a snapshot is published for every call to see. `from`:
/// `None` to replace whatever is current (a knob change), `Some(RESOLVER)`
/// to publish only if nothing was published yet (first use).
fn publish(s: &'static Ops, from: Option<&'static Ops>) -> &'static Ops {
    let new = s as *const Ops as *mut Ops;
    match from {
        None => {
            CURRENT.store(new, Ordering::Release);
            s
        }
        Some(old) => match CURRENT.compare_exchange(
            old as *const Ops as *mut Ops,
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => s,
            // SAFETY: as in `current`.
            Err(now) => unsafe { &*now },
        },
    }
}

/// First use: selects under the knobs' lock and publishes by
/// compare-and-swap against the resolver.
#[cold]
#[inline(never)]
fn resolve() -> &'static Ops {
    let f = detect::features();
    knobs::read(|k| {
        let sel = selection(f, k);
        let t =
            arch::table(sel.copy, sel.flush).expect("select returns only pairs that have a table");
        let s = intern(t, sel, MAX_SNAPSHOTS + 1).expect("one past the cap is kept for this call");
        publish(s, Some(&RESOLVER))
    })
}

/// Sets a knob at run time, as if `name=value` had been in the environment
/// (`None` restores the default), and publishes the snapshot the new knobs
/// select. Atomic: a call in flight finishes on the snapshot it loaded;
/// a first call racing with this one cannot undo it. On error nothing
/// changes.
pub fn set_option(name: &str, value: Option<&str>) -> Result<(), KnobError> {
    let f = detect::features();
    knobs::update(name, value, |k| {
        let s = snapshot(selection(f, k)).ok_or(KnobError::Malformed(
            "too many distinct configurations in this process (at most 256 snapshots, each threshold value makes new ones)",
        ))?;
        publish(s, None);
        Ok(())
    })
}

/// The value in force for `name`, or `None` for an unknown name. The
/// threshold reads as the threshold in force (the CPU's default when unset).
pub fn get_option(name: &str) -> Option<String> {
    if name == "PMEM_SYS_MOVNT_THRESHOLD" {
        return Some(resolved().selection.threshold.to_string());
    }
    knobs::current().get(name)
}

mod trampolines {
    //! The resolver snapshot's operations: each resolves, then forwards
    //! with the same arguments to the resolved snapshot (with its own
    //! thresholds), so the first call of any operation does the work.

    use super::resolve;

    /// # Safety
    /// As [`crate::engine::Ops::copy`].
    pub(super) unsafe extern "C" fn copy(d: *mut u8, s: *const u8, n: usize, _: usize) {
        // SAFETY: the caller's contract.
        unsafe { resolve().copy(d, s, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::copy_noflush`].
    pub(super) unsafe extern "C" fn copy_noflush(d: *mut u8, s: *const u8, n: usize, _: usize) {
        // SAFETY: the caller's contract.
        unsafe { resolve().copy_noflush(d, s, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::move`].
    pub(super) unsafe extern "C" fn r#move(d: *mut u8, s: *const u8, n: usize, _: usize) {
        // SAFETY: the caller's contract.
        unsafe { resolve().r#move(d, s, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::move_noflush`].
    pub(super) unsafe extern "C" fn move_noflush(d: *mut u8, s: *const u8, n: usize, _: usize) {
        // SAFETY: the caller's contract.
        unsafe { resolve().move_noflush(d, s, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::set`].
    pub(super) unsafe extern "C" fn set(d: *mut u8, c: u8, n: usize, _: usize) {
        // SAFETY: the caller's contract.
        unsafe { resolve().set(d, c, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::set_noflush`].
    pub(super) unsafe extern "C" fn set_noflush(d: *mut u8, c: u8, n: usize, _: usize) {
        // SAFETY: the caller's contract.
        unsafe { resolve().set_noflush(d, c, n) }
    }
    /// # Safety
    /// As `crate::fault::copy_mc` (the stream threshold passed is ignored:
    /// the resolved snapshot's routine decides).
    pub(super) unsafe extern "C" fn copy_mc(d: *mut u8, s: *const u8, n: usize, _: usize) -> usize {
        // SAFETY: the caller's contract.
        unsafe { crate::fault::copy_mc(&resolve().guarded, d, s, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::flush`].
    pub(super) unsafe fn flush(p: *const u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (resolve().flush)(p, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::invalidate`].
    pub(super) unsafe fn invalidate(p: *const u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { (resolve().invalidate)(p, n) }
    }
    /// # Safety
    /// As [`crate::engine::Ops::fence`].
    pub(super) unsafe fn fence() {
        // SAFETY: no preconditions.
        unsafe { (resolve().fence)() }
    }
}

const RESOLVER_FLUSHING: Half = Half {
    copy: trampolines::copy,
    r#move: trampolines::r#move,
    set: trampolines::set,
};

const RESOLVER_NOFLUSH: Half = Half {
    copy: trampolines::copy_noflush,
    r#move: trampolines::move_noflush,
    set: trampolines::set_noflush,
};

/// The snapshot in place before the first call: every operation resolves,
/// then forwards.
static RESOLVER: Ops = Ops {
    name: "unresolved",
    selection: Selection {
        copy: CopyTier::Temporal,
        flush: FlushKind::None,
        guarded: GuardedKind::Sse2,
        guarded_streams: false,
        threshold: usize::MAX,
    },
    noflush_threshold: usize::MAX,
    flushing: RESOLVER_FLUSHING,
    noflush: RESOLVER_NOFLUSH,
    flush: trampolines::flush,
    invalidate: trampolines::invalidate,
    fence: trampolines::fence,
    guarded: Guarded::with_entry(GuardedKind::Sse2, false, trampolines::copy_mc),
    table: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_x86() -> Features {
        Features {
            sse2: true,
            avx: true,
            avx2: true,
            avx512f: true,
            clflush: true,
            clflushopt: true,
            clwb: true,
            ..Features::default()
        }
    }

    fn knobs(set: &[&str]) -> Knobs {
        let mut k = Knobs::default();
        for n in set {
            k.set(n, Some("1")).unwrap();
        }
        k
    }

    #[test]
    fn ladder_takes_the_best_rung() {
        assert_eq!(
            select_x86_64(&all_x86(), &Knobs::default()),
            (CopyTier::Avx512f, FlushKind::Clwb)
        );
        let f = Features {
            avx512f: false,
            clwb: false,
            ..all_x86()
        };
        assert_eq!(
            select_x86_64(&f, &Knobs::default()),
            (CopyTier::Avx2, FlushKind::ClflushOpt)
        );
        let f = Features {
            sse2: true,
            clflush: true,
            ..Features::default()
        };
        assert_eq!(
            select_x86_64(&f, &Knobs::default()),
            (CopyTier::Sse2, FlushKind::Clflush)
        );
        assert_eq!(
            select_x86_64(&Features::default(), &Knobs::default()),
            (CopyTier::Temporal, FlushKind::Clflush)
        );
    }

    #[test]
    fn each_knob_removes_only_its_own_rung() {
        let f = all_x86();
        assert_eq!(
            select_x86_64(&f, &knobs(&["PMEM_SYS_NO_AVX2"])).0,
            CopyTier::Avx512f,
            "AVX-512 present but AVX2 disabled"
        );
        assert_eq!(
            select_x86_64(&f, &knobs(&["PMEM_SYS_NO_AVX512F"])).0,
            CopyTier::Avx2,
            "AVX-512 present but disabled"
        );
        assert_eq!(
            select_x86_64(&f, &knobs(&["PMEM_SYS_NO_AVX512F", "PMEM_SYS_NO_AVX2"])).0,
            CopyTier::Sse2
        );
        assert_eq!(
            select_x86_64(&f, &knobs(&["PMEM_SYS_NO_MOVNT"])),
            (CopyTier::Temporal, FlushKind::Clwb)
        );
        assert_eq!(
            select_x86_64(&f, &knobs(&["PMEM_SYS_NO_CLWB"])).1,
            FlushKind::ClflushOpt
        );
        assert_eq!(
            select_x86_64(&f, &knobs(&["PMEM_SYS_NO_CLFLUSHOPT"])).1,
            FlushKind::Clwb
        );
        assert_eq!(
            select_x86_64(&f, &knobs(&["PMEM_SYS_NO_CLWB", "PMEM_SYS_NO_CLFLUSHOPT"])).1,
            FlushKind::Clflush
        );
        let no_avx512_hw = Features {
            avx512f: false,
            ..f
        };
        assert_eq!(
            select_x86_64(&no_avx512_hw, &knobs(&["PMEM_SYS_NO_AVX2"])).0,
            CopyTier::Sse2
        );
    }

    #[test]
    fn aarch64_ladder() {
        let f = Features {
            dc_cvap: true,
            ..Features::default()
        };
        assert_eq!(
            select_aarch64(&f, &Knobs::default()),
            (CopyTier::Temporal, FlushKind::DcCvap)
        );
        assert_eq!(
            select_aarch64(&Features::default(), &Knobs::default()),
            (CopyTier::Temporal, FlushKind::DcCvac)
        );
    }

    /// Every table of this architecture is reachable from some (features,
    /// knobs) pair, and every selection has a table.
    #[test]
    fn every_table_is_reachable_and_every_selection_exists() {
        let names = [
            "PMEM_SYS_NO_AVX512F",
            "PMEM_SYS_NO_AVX2",
            "PMEM_SYS_NO_MOVNT",
            "PMEM_SYS_NO_CLWB",
            "PMEM_SYS_NO_CLFLUSHOPT",
        ];
        let mut reached = HashSet::new();
        for fbits in 0u32..(1 << 8) {
            let f = Features {
                sse2: fbits & 1 != 0,
                avx2: fbits & 2 != 0,
                avx512f: fbits & 4 != 0,
                clflush: fbits & 8 != 0,
                clflushopt: fbits & 16 != 0,
                clwb: fbits & 32 != 0,
                dc_cvap: fbits & 64 != 0,
                amd: fbits & 128 != 0,
                avx: fbits & 2 != 0,
            };
            for kbits in 0u32..(1 << names.len()) {
                let set: Vec<&str> = names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| kbits & (1 << i) != 0)
                    .map(|(_, n)| *n)
                    .collect();
                let pair = select(&f, &knobs(&set));
                assert!(
                    arch::table(pair.0, pair.1).is_some(),
                    "{pair:?} has no table"
                );
                reached.insert(pair);
            }
        }
        for pair in all_pairs() {
            assert!(reached.contains(&pair), "table {pair:?} is unreachable");
        }
    }

    #[test]
    fn table_names_follow_the_pattern() {
        for (c, f) in all_pairs() {
            let t = arch::table(c, f).unwrap();
            let arch = t.name.split('/').next().unwrap();
            assert_eq!(t.name, format!("{arch}/{}+{}", c.name(), f.name()));
        }
    }

    #[test]
    fn threshold_defaults_by_vendor() {
        assert_eq!(
            default_threshold(&Features {
                amd: true,
                ..Features::default()
            }),
            8
        );
        assert_eq!(default_threshold(&Features::default()), 256);
    }
}
