//! Which table runs. Selection is a pure function of (features, knobs); the
//! result is published through one atomic pointer that starts at a table of
//! resolver trampolines, ifunc-style: the first call detects, selects,
//! stores and forwards; every later call is one load and one indirect call.

use super::{Features, Knobs, Ops, detect, knobs};
use crate::arch;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// The copy half of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyTier {
    /// x86_64: 64-byte non-temporal stores.
    Avx512f,
    /// x86_64: 32-byte non-temporal stores.
    Avx2,
    /// x86_64: 16-byte non-temporal stores.
    Sse2,
    /// Ordinary stores only, every line written back.
    Temporal,
}

/// The flush half of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushKind {
    /// x86_64 CLWB: write back, line may stay cached.
    Clwb,
    /// x86_64 CLFLUSHOPT: write back and evict, weakly ordered.
    ClflushOpt,
    /// x86_64 CLFLUSH: write back and evict, ordered with stores.
    Clflush,
    /// aarch64 DC CVAP: clean to the point of persistence.
    DcCvap,
    /// aarch64 DC CVAC: clean to the point of coherency.
    DcCvac,
    /// No flush instruction (portable fallback).
    None,
}

impl CopyTier {
    /// The name used in table names.
    pub fn name(self) -> &'static str {
        match self {
            CopyTier::Avx512f => "avx512f",
            CopyTier::Avx2 => "avx2",
            CopyTier::Sse2 => "sse2",
            CopyTier::Temporal => "temporal",
        }
    }
}

impl FlushKind {
    /// The name used in table names.
    pub fn name(self) -> &'static str {
        match self {
            FlushKind::Clwb => "clwb",
            FlushKind::ClflushOpt => "clflushopt",
            FlushKind::Clflush => "clflush",
            FlushKind::DcCvap => "dc-cvap",
            FlushKind::DcCvac => "dc-cvac",
            FlushKind::None => "none",
        }
    }
}

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

/// The table for a (copy, flush) pair, if this build has one.
pub fn table(copy: CopyTier, flush: FlushKind) -> Option<&'static Ops> {
    arch::table(copy, flush)
}

/// The table for a pair, only if this CPU can run it: the safe way to get
/// any tier directly (tests use it to run every tier, naming the ones they
/// skip).
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
#[cfg(feature = "test-tables")]
pub fn test_tables() -> &'static [Ops] {
    arch::test_tables()
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
            if table(c, fl).is_some() {
                v.push((c, fl));
            }
        }
    }
    v
}

pub(crate) static THRESHOLD: AtomicUsize = AtomicUsize::new(256);

static CURRENT: AtomicPtr<Ops> = AtomicPtr::new(&RESOLVER as *const Ops as *mut Ops);

/// The table in use; the resolver table until the first call resolves.
#[inline(always)]
pub(crate) fn current() -> &'static Ops {
    #[allow(unsafe_code)]
    // SAFETY: CURRENT only ever holds the address of a `static Ops`
    // (RESOLVER or a table of `arch`), which lives forever and is immutable.
    unsafe {
        &*CURRENT.load(Ordering::Acquire)
    }
}

/// The table in use, resolving it first if needed.
pub(crate) fn resolved() -> &'static Ops {
    let t = current();
    if core::ptr::eq(t, &RESOLVER) {
        resolve()
    } else {
        t
    }
}

/// Selects from the knobs and publishes; called on first use and by
/// `set_option`.
pub(crate) fn reselect(k: &Knobs) -> &'static Ops {
    let f = detect::features();
    let (copy, flush) = select(f, k);
    let t = table(copy, flush).expect("select returns only pairs that have a table");
    THRESHOLD.store(
        k.movnt_threshold.unwrap_or_else(|| default_threshold(f)),
        Ordering::Relaxed,
    );
    CURRENT.store(t as *const Ops as *mut Ops, Ordering::Release);
    t
}

fn resolve() -> &'static Ops {
    reselect(&knobs::current())
}

mod trampolines {
    #![allow(unsafe_code)]
    //! The resolver table: each entry resolves, then forwards with the
    //! same arguments, so the first call of any operation does the work.

    use super::resolve;

    /// # Safety
    /// As [`crate::engine::Ops::copy`].
    pub(super) unsafe fn copy(d: *mut u8, s: *const u8, n: usize) {
        (resolve().copy)(d, s, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::copy_noflush`].
    pub(super) unsafe fn copy_noflush(d: *mut u8, s: *const u8, n: usize) {
        (resolve().copy_noflush)(d, s, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::move`].
    pub(super) unsafe fn r#move(d: *mut u8, s: *const u8, n: usize) {
        (resolve().r#move)(d, s, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::move_noflush`].
    pub(super) unsafe fn move_noflush(d: *mut u8, s: *const u8, n: usize) {
        (resolve().move_noflush)(d, s, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::set`].
    pub(super) unsafe fn set(d: *mut u8, c: u8, n: usize) {
        (resolve().set)(d, c, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::set_noflush`].
    pub(super) unsafe fn set_noflush(d: *mut u8, c: u8, n: usize) {
        (resolve().set_noflush)(d, c, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::flush`].
    pub(super) unsafe fn flush(p: *const u8, n: usize) {
        (resolve().flush)(p, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::invalidate`].
    pub(super) unsafe fn invalidate(p: *const u8, n: usize) {
        (resolve().invalidate)(p, n)
    }
    /// # Safety
    /// As [`crate::engine::Ops::fence`].
    pub(super) unsafe fn fence() {
        (resolve().fence)()
    }
}

static RESOLVER: Ops = Ops {
    name: "unresolved",
    copy: trampolines::copy,
    copy_noflush: trampolines::copy_noflush,
    r#move: trampolines::r#move,
    move_noflush: trampolines::move_noflush,
    set: trampolines::set,
    set_noflush: trampolines::set_noflush,
    flush: trampolines::flush,
    invalidate: trampolines::invalidate,
    fence: trampolines::fence,
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
                assert!(table(pair.0, pair.1).is_some(), "{pair:?} has no table");
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
            let t = table(c, f).unwrap();
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
