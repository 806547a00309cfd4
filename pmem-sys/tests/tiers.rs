//! Every tier this CPU can run, called directly through its table: copy,
//! fill and move (and their no-flush variants) over a matrix of destination
//! offsets, source offsets and lengths, checked against a reference, with
//! guard bytes around the destination and PROT_NONE pages on both sides of
//! source and destination. Tiers this CPU cannot run are printed as
//! SKIPPED. Besides the tables the dispatcher can select, the test-only
//! `test/portable64+*` table (the generic algorithm over a portable
//! 64-byte vector, standing in for AVX-512) runs everywhere.

use pmem_sys::engine::dispatch::{self, CopyTier, all_pairs, runnable};
use pmem_sys::engine::{NOFLUSH_NT_MIN, Ops, detect};

/// Every table this CPU can run, test tables included; the ones it cannot
/// run are printed as SKIPPED with their names.
fn tables(what: &str) -> Vec<&'static Ops> {
    let f = detect::features();
    let mut v = Vec::new();
    for (c, fl) in all_pairs() {
        match runnable(c, fl, f) {
            Some(t) => v.push(t),
            None => println!(
                "SKIPPED: {} {what}: this CPU lacks it (it has: {})",
                dispatch::table(c, fl).map_or("?", |t| t.name),
                f.names()
            ),
        }
    }
    v.extend(dispatch::test_tables());
    v
}

/// The length of the large case: at least 8 MiB, so that the no-flush
/// leaves (which stream only from `NOFLUSH_NT_MIN`, 4 MiB) take their
/// non-temporal path too, and odd so that every copy has a ragged tail.
const BIG: usize = 8 * 1024 * 1024 + 13;

const PAGE: usize = 4096;
const GUARD: u8 = 0xA5;

/// `len` usable bytes with a PROT_NONE page on each side.
struct Fenced {
    base: *mut u8,
    total: usize,
    len: usize,
}

impl Fenced {
    fn new(len: usize) -> Fenced {
        let inner = len.div_ceil(PAGE) * PAGE;
        let total = inner + 2 * PAGE;
        // SAFETY: a fresh anonymous mapping; then the first and last page
        // are made inaccessible.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            let p = p as *mut u8;
            assert_eq!(libc::mprotect(p.cast(), PAGE, libc::PROT_NONE), 0);
            assert_eq!(
                libc::mprotect(p.add(PAGE + inner).cast(), PAGE, libc::PROT_NONE),
                0
            );
            Fenced {
                base: p,
                total,
                len: inner,
            }
        }
    }
    fn slice(&mut self) -> &mut [u8] {
        // SAFETY: the accessible middle of our own mapping.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(PAGE), self.len) }
    }
    fn start(&self) -> *mut u8 {
        // SAFETY: within the mapping.
        unsafe { self.base.add(PAGE) }
    }
}

impl Drop for Fenced {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.base.cast(), self.total) };
    }
}

fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=300).collect();
    let mut p = 512;
    while p <= 64 * 1024 {
        v.extend([p - 1, p, p + 1]);
        p *= 2;
    }
    v
}

const SRC_OFFSETS: [usize; 7] = [0, 1, 7, 8, 9, 31, 63];
const SLACK: usize = 128;

fn pattern(buf: &mut [u8], seed: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8;
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Copy,
    CopyNoFlush,
    Move,
    MoveNoFlush,
    Set,
    SetNoFlush,
    /// The flushing copy with no non-temporal threshold (what
    /// `PMEM_F_MEM_TEMPORAL` reaches): every length takes the chunked,
    /// written-back path, blocks of AVX-512 registers included.
    CopyTemporal,
    /// The same for the fill.
    SetTemporal,
}

/// Runs `op` of `t` for one (dst offset, src offset, len) at both ends of
/// the fenced buffers and checks the result and the guards.
fn check_one(
    t: &Ops,
    op: Op,
    dst: &mut Fenced,
    src: &mut Fenced,
    doff: usize,
    soff: usize,
    len: usize,
) {
    let cap = dst.len;
    // Placement A: at the given offsets from the start (a PROT_NONE page
    // just before offset 0), guard bytes around. Placement B, once per
    // length: ending exactly at the PROT_NONE page after each buffer.
    let placements: &[bool] = if doff == 0 && soff == 0 {
        &[false, true]
    } else {
        &[false]
    };
    for &place_end in placements {
        let d_at = if place_end { cap - len } else { doff };
        let s_at = if place_end { src.len - len } else { soff };
        dst.slice().fill(GUARD);
        // SAFETY (all calls below): d_at + len <= cap and s_at + len <=
        // src.len, both within accessible memory; the table is runnable.
        unsafe {
            let d = dst.start().add(d_at);
            let s = src.start().add(s_at);
            match op {
                Op::Copy => t.copy(d, s, len),
                Op::CopyNoFlush => t.copy_noflush(d, s, len),
                Op::Move => t.r#move(d, s, len),
                Op::MoveNoFlush => t.move_noflush(d, s, len),
                Op::Set => t.set(d, 0x5C, len),
                Op::SetNoFlush => t.set_noflush(d, 0x5C, len),
                Op::CopyTemporal => (t.flushing.copy)(d, s, len, usize::MAX),
                Op::SetTemporal => (t.flushing.set)(d, 0x5C, len, usize::MAX),
            }
            (t.fence)();
        }
        let sref = &src.slice()[s_at..s_at + len].to_vec();
        let got = &dst.slice()[d_at..d_at + len].to_vec();
        let ok = match op {
            Op::Set | Op::SetNoFlush | Op::SetTemporal => got.iter().all(|&b| b == 0x5C),
            _ => got == &sref[..],
        };
        assert!(
            ok,
            "{} {op:?}: wrong bytes, dst+{d_at} src+{s_at} len {len}",
            t.name
        );
        let whole = dst.slice();
        let (before, after) = (&whole[..d_at], &whole[d_at + len..]);
        assert!(
            before.iter().all(|&b| b == GUARD),
            "{} {op:?}: stored before dst, dst+{d_at} len {len}",
            t.name
        );
        assert!(
            after.iter().take(SLACK).all(|&b| b == GUARD),
            "{} {op:?}: stored past the end, dst+{d_at} len {len}",
            t.name
        );
    }
}

fn run_matrix(op: Op) {
    const {
        assert!(
            BIG >= 2 * NOFLUSH_NT_MIN,
            "the large case must stream in every leaf"
        )
    };
    let mut ran = 0;
    for t in tables(&format!("{op:?}")) {
        let max = 64 * 1024 + 1;
        let mut dst = Fenced::new(max + 64 + SLACK);
        let mut src = Fenced::new(max + 64);
        pattern(src.slice(), 7);
        for len in lengths() {
            for doff in 0..=64 {
                for soff in SRC_OFFSETS {
                    check_one(t, op, &mut dst, &mut src, doff, soff, len);
                }
            }
        }
        // A large case (the streaming path of every leaf, no-flush ones
        // included) at several offsets.
        let mut dst = Fenced::new(BIG + 64 + SLACK);
        let mut src = Fenced::new(BIG + 64);
        pattern(src.slice(), 3);
        for (doff, soff) in [(0, 0), (13, 7), (64, 63)] {
            check_one(t, op, &mut dst, &mut src, doff, soff, BIG);
        }
        println!("tested {} {op:?}", t.name);
        ran += 1;
    }
    assert!(ran > 0, "no tier ran");
}

#[test]
fn copy_every_tier() {
    run_matrix(Op::Copy);
}
#[test]
fn copy_noflush_every_tier() {
    run_matrix(Op::CopyNoFlush);
}
#[test]
fn move_every_tier_disjoint() {
    run_matrix(Op::Move);
}
#[test]
fn move_noflush_every_tier_disjoint() {
    run_matrix(Op::MoveNoFlush);
}
#[test]
fn set_every_tier() {
    run_matrix(Op::Set);
}
#[test]
fn set_noflush_every_tier() {
    run_matrix(Op::SetNoFlush);
}
#[test]
fn copy_temporal_every_tier() {
    run_matrix(Op::CopyTemporal);
}
#[test]
fn set_temporal_every_tier() {
    run_matrix(Op::SetTemporal);
}

/// Overlapping moves in both directions, every tier, against
/// `copy_within` as the reference.
#[test]
fn move_overlapping_both_directions_every_tier() {
    for t in tables("overlapping move") {
        let mut buf = Fenced::new(16 * 1024);
        let mut lens: Vec<usize> = (0..=260).collect();
        lens.extend([511, 512, 513, 1023, 4096, 4097, 8191]);
        for len in lens {
            for shift in [1usize, 7, 8, 31, 63, 64, 65, 200] {
                for base in [0usize, 1, 13, 64] {
                    for forward in [true, false] {
                        let (s, d) = if forward {
                            (base + shift, base)
                        } else {
                            (base, base + shift)
                        };
                        if s.max(d) + len > buf.len {
                            continue;
                        }
                        pattern(buf.slice(), len as u8);
                        let mut expect = buf.slice().to_vec();
                        expect.copy_within(s..s + len, d);
                        // SAFETY: both ranges inside the accessible buffer.
                        unsafe {
                            let p = buf.start();
                            t.r#move(p.add(d), p.add(s), len);
                            (t.fence)();
                        }
                        assert!(
                            buf.slice() == &expect[..],
                            "{} move len {len} shift {shift} base {base} forward {forward}",
                            t.name
                        );
                    }
                }
            }
        }
        println!("tested {} overlapping move", t.name);
    }
}

/// 8-byte aligned destinations and lengths, densely: the results are
/// right. (That no store narrower than 8 bytes is issued for them is
/// asserted from the store log in `tests/store_widths.rs`.)
#[test]
fn aligned_words_copy_correctly_every_tier() {
    for t in tables("aligned words") {
        let mut dst = Fenced::new(4096);
        let mut src = Fenced::new(4096);
        pattern(src.slice(), 1);
        for doff in (0..=128).step_by(8) {
            for len in (0..=1024).step_by(8) {
                check_one(t, Op::Copy, &mut dst, &mut src, doff, 8, len);
            }
        }
    }
}

/// Overlapping moves of the large length in both directions: the
/// streaming path of `move` and `move_noflush`.
#[test]
fn move_overlapping_large_every_tier() {
    for t in tables("large overlapping move") {
        let mut buf = Fenced::new(BIG + (1 << 20) + 4096);
        for (shift, base, forward) in [(64, 0, true), (4097, 13, false), (1 << 20, 7, true)] {
            let moves: [unsafe fn(&Ops, *mut u8, *const u8, usize); 2] =
                [Ops::r#move, Ops::move_noflush];
            for mv in moves {
                let (s, d) = if forward {
                    (base + shift, base)
                } else {
                    (base, base + shift)
                };
                let len = buf.len - s.max(d);
                assert!(len >= 2 * NOFLUSH_NT_MIN);
                pattern(buf.slice(), shift as u8);
                let mut expect = buf.slice().to_vec();
                expect.copy_within(s..s + len, d);
                // SAFETY: both ranges inside the accessible buffer.
                unsafe {
                    let p = buf.start();
                    mv(t, p.add(d), p.add(s), len);
                    (t.fence)();
                }
                assert!(
                    buf.slice() == &expect[..],
                    "{} large move len {len} shift {shift} base {base} forward {forward}",
                    t.name
                );
            }
        }
        println!("tested {} large overlapping move", t.name);
    }
}

/// The AVX-512 tier really runs where the CPU has it: detection agrees
/// with the kernel's view of the CPU (/proc/cpuinfo lists `avx512f` only
/// when the OS saves the ZMM state), and the tier's tables are among the
/// ones the tests above run. Elsewhere it is SKIPPED by name.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_tier_runs_where_the_cpu_has_it() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let kernel_says = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|w| w == "avx512f"));
    let f = detect::features();
    let avx512: Vec<_> = all_pairs()
        .into_iter()
        .filter(|(c, _)| *c == CopyTier::Avx512f)
        .collect();
    assert_eq!(avx512.len(), 3, "one AVX-512 table per flush instruction");
    if !cpuinfo.is_empty() {
        assert_eq!(
            f.avx512f, kernel_says,
            "detection disagrees with /proc/cpuinfo"
        );
    }
    let run: Vec<&str> = tables("AVX-512 check").iter().map(|t| t.name).collect();
    for (c, fl) in avx512 {
        let name = dispatch::table(c, fl).unwrap().name;
        if runnable(c, fl, f).is_some() {
            assert!(run.contains(&name), "{name} is runnable but not tested");
            println!("{name} runs here");
        } else if f.avx512f {
            println!(
                "SKIPPED: {name}: this CPU has avx512f but lacks {}",
                fl.name()
            );
        } else {
            println!("SKIPPED: {name}: this CPU lacks avx512f");
        }
    }
    assert!(
        run.iter().any(|n| n.starts_with("test/portable64+")),
        "the portable 64-byte stand-in for AVX-512 did not run"
    );
}
