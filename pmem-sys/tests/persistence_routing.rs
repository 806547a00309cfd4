//! The routing of the public API judged by the persistence checker:
//! copies, fills and moves into byte-, page- and cache-line-granular
//! mappings (forced with `PMEM_SYS_FORCE_GRANULARITY`), each recorded with
//! its `wmb_pmem`. Byte- and page-granular memory must see no write-back at
//! all (a flush there is a pure loss of speed, which no content test can
//! see); cache-line-granular memory must see the write-backs that make its
//! ordinary stores durable.
//!
//! Run with `cargo test -p pmem-sys --release --features record --test persistence_routing`.
#![cfg(feature = "record")]

use pmem_sys::engine::knobs;
use pmem_sys::engine::trace;
use pmem_sys::oracle::{self, Checker, Rule};
use pmem_sys::{Granularity, MapFlags, mapping};

const SIZE: usize = 256 * 1024;

/// The forcing knob is process-wide: one mapping is made at a time.
static KNOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A file mapped by the library with its granularity forced.
struct Forced {
    addr: *mut u8,
    _dir: tempfile::TempDir,
}

impl Forced {
    fn new(g: Granularity) -> Forced {
        let dir = tempfile::tempdir().expect("temporary directory");
        let _g = KNOB.lock().unwrap_or_else(|p| p.into_inner());
        knobs::set_option("PMEM_SYS_FORCE_GRANULARITY", Some(g.name())).unwrap();
        let mapped = mapping::map_file(&dir.path().join("f"), SIZE, MapFlags::CREATE, 0o600);
        knobs::set_option("PMEM_SYS_FORCE_GRANULARITY", None).unwrap();
        let (addr, len) = mapped.expect("map_file");
        assert_eq!(len, SIZE);
        assert_eq!(mapping::granularity("test", addr, SIZE).unwrap(), g);
        Forced {
            addr: addr as *mut u8,
            _dir: dir,
        }
    }
}

impl Drop for Forced {
    fn drop(&mut self) {
        mapping::unmap(self.addr as usize).expect("unmap");
    }
}

#[derive(Clone, Copy, Debug)]
enum Call {
    Memcpy,
    Memset,
    MoveDown,
    MoveUp,
}

/// Records every call at several offsets and lengths into one mapping of
/// granularity `g`, judges each record, and returns the write-backs seen.
fn judge(g: Granularity) -> usize {
    let m = Forced::new(g);
    let rule = match g {
        Granularity::CacheLine => Rule::WriteBack,
        _ => Rule::NoFlush,
    };
    let src: Vec<u8> = (0..SIZE / 2).map(|i| (i * 13 + 1) as u8).collect();
    let threshold = pmem_sys::engine::movnt_threshold();
    let mut checker = Checker::new();
    let mut flushes = 0;
    let mut cases = 0;
    for off in [0usize, 7, 64 + 13] {
        for n in [
            1usize,
            5,
            8,
            63,
            64,
            100,
            255,
            1000,
            4096 + 13,
            64 * 1024 + 5,
        ] {
            for call in [Call::Memcpy, Call::Memset, Call::MoveDown, Call::MoveUp] {
                let delta = n / 3 + 1;
                // SAFETY: every range lies inside the mapping: the
                // destination at 32 KiB + off, delta < 22 KiB before it
                // and n + delta < 87 KiB past it.
                let ev = unsafe {
                    let d = m.addr.add(32 * 1024 + off);
                    trace::start();
                    match call {
                        Call::Memcpy => pmem_sys::memcpy_to_pmem(d, src.as_ptr(), n),
                        Call::Memset => pmem_sys::memset_pmem(d, 0x3c, n),
                        Call::MoveDown => pmem_sys::memmove_to_pmem(d, d.add(delta), n),
                        Call::MoveUp => pmem_sys::memmove_to_pmem(d, d.sub(delta), n),
                    }
                    pmem_sys::wmb_pmem();
                    (trace::take(), d as usize)
                };
                let (ev, d) = ev;
                let what = format!(
                    "{call:?} into a {}-granular mapping, offset {off} length {n}",
                    g.name()
                );
                let sum = checker
                    .check(&ev, d, n, rule)
                    .unwrap_or_else(|v| panic!("{what}:\n{}", oracle::render(&v)));
                if rule == Rule::WriteBack && n < threshold {
                    // Below the threshold every store is ordinary: each
                    // needs its write-back (the checker saw them all).
                    assert!(sum.flushes > 0, "{what}: no write-back");
                }
                flushes += sum.flushes;
                cases += 1;
            }
        }
    }
    println!(
        "{}-granular: {cases} records, {flushes} write-backs (threshold {threshold})",
        g.name()
    );
    flushes
}

#[test]
fn byte_granular_memory_is_never_written_back() {
    assert_eq!(judge(Granularity::Byte), 0);
}

#[test]
fn page_granular_memory_is_never_written_back() {
    assert_eq!(judge(Granularity::Page), 0);
}

#[test]
fn cache_line_granular_memory_is_written_back() {
    assert!(judge(Granularity::CacheLine) > 0);
}
