//! Crash-consistency recording: what a program made durable, and when.
//!
//! With `PMEM_SYS_RECORD=<path>` in the environment (read at the first
//! mapping), or between [`start`] and [`stop`] (`pmem_sys_record_start` /
//! `pmem_sys_record_stop` in C, `pypmem.crashtest.record_start` /
//! `record_stop` in Python), every mapping this library makes, the native calls and the
//! `libpmem.so.1` compatibility layer alike, is recorded to a trace file:
//! each store call with its range and data, each write-back, fence, msync,
//! persist and unmap, in program order (the order the calls took the
//! recorder's lock), with the recording thread and the calling site.
//! `pmem-sys-crashtest` and `pypmem.crashtest.check` replay the trace
//! through the [persistence model](model) and check every image a power
//! failure could leave.
//!
//! ## Stores that bypass the library
//!
//! A store through a plain pointer (C, a numpy view, libpmemobj writing an
//! object and then calling `pmem_persist`) is not a call. The recorder
//! keeps a *shadow* of each recorded mapping (what the trace says it
//! holds); at every recorded call it compares the mapping with the shadow
//! first, and records each difference as a `direct store` made just before
//! that call, with that call's site. Direct stores are ordinary cached
//! stores: not written back until a write-back or msync covers them.
//! Comparing costs a pass over the recorded mappings per call (measured:
//! about 5 us per call with a 64 KiB mapping, 70 us with 1 MiB, 20 ms with
//! 64 MiB; see crashtest/README.md); the shadow costs one copy of each
//! mapping in memory.
//!
//! ## Cost when off
//!
//! Each hook in `api.rs` and `mapping` is one relaxed load of an atomic
//! flag and a branch; everything else lives in `#[cold]` functions.
//!
//! ## The trace format, version 1
//!
//! Little-endian throughout. A 24-byte header: the magic `PMSYSTRC`, then
//! four `u32`: the format version (1), the cache-line size, the page size
//! and the recording process id. Then records, each a tag byte and its
//! fields, in program order; `thread` numbers recording threads from 1,
//! `site` is 0 (unknown) or an id a `SITE` record defined earlier, `call`
//! is a one-byte code ([`format::Call`]), `map` an id a `MAP` record
//! defined earlier, and `offset` counts from the start of that mapping:
//!
//! | tag | record | fields after the tag |
//! |---|---|---|
//! | 1 | SITE | `u32 id, u32 n, n bytes` (UTF-8 `function (file:line)`) |
//! | 2 | MAP | `u32 thread, u32 site, u8 call, u32 map, u8 granularity (0 byte, 1 cache line, 2 page), u64 file_offset, u64 dev, u64 ino, u32 n, n bytes path, u64 len, len bytes content` |
//! | 3 | UNMAP | `u32 thread, u32 site, u32 map` |
//! | 4 | STORE | `u32 thread, u32 site, u8 call, u32 map, u64 offset, u64 len, u8 flags, then 1 fill byte if flags & 2 else len data bytes`; flags bit 0: written back (or non-temporal) by the call |
//! | 5 | WRITE_BACK | `u32 thread, u32 site, u8 call, u32 map, u64 offset, u64 len` |
//! | 6 | FENCE | `u32 thread, u32 site, u8 call` |
//! | 7 | MSYNC | `u32 thread, u32 site, u32 map, u64 offset, u64 len` (msync succeeded) |
//! | 8 | PERSIST | `u32 thread, u32 site, u8 call, u32 map, u64 offset, u64 len` |
//! | 9 | END | `u32 thread` |
//!
//! A reader stops cleanly at a record cut short (a killed workload). The
//! trace holds each mapping's content once, when mapped, and after that
//! only what changed: the data of each store (a fill byte for a memset)
//! and each direct store's changed bytes. Recording a 64 MiB mapping
//! through 10^5 small calls therefore needs the mapping's size on disk
//! plus the data written, and in memory the shadow (one copy of the
//! mapping) plus a 1 MiB write buffer.
//!
//! ## The model
//!
//! See [`model`] for the rules and [`enumerate`] for how images are
//! chosen. The model is stated for x86-64, as the engine assumes.

#![allow(unsafe_code)]

pub mod enumerate;
pub mod format;
pub mod model;

use crate::Error;
use crate::granularity::Granularity;
pub use format::Call;
use format::{Record, Writer};
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, Once};

/// The line size the model assumes.
pub const LINE: usize = 64;

static ON: AtomicBool = AtomicBool::new(false);
static PID: AtomicU32 = AtomicU32::new(0);
static NEXT_THREAD: AtomicU32 = AtomicU32::new(1);
static REC: Mutex<Option<Recorder>> = Mutex::new(None);
/// Names the calling site (see [`set_site_hook`]).
pub type SiteHook = fn() -> Option<String>;
static SITE_HOOK: Mutex<Option<SiteHook>> = Mutex::new(None);

thread_local! {
    static THREAD: Cell<u32> = const { Cell::new(0) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// True while recording: one relaxed load, for the hooks' fast path.
#[inline(always)]
pub fn on() -> bool {
    ON.load(Relaxed)
}

struct LiveMap {
    id: u32,
    addr: usize,
    len: usize,
    shadow: Vec<u8>,
    /// What a piece left by a partial unmap needs to be recorded anew.
    file: FileId,
    /// Mapped by the caller, not by this library (see [`adopt`]): it may be
    /// unmapped behind the recorder's back.
    adopted: bool,
}

#[derive(Clone)]
struct FileId {
    call: Call,
    file_offset: u64,
    dev: u64,
    ino: u64,
    path: String,
    granularity: Granularity,
}

struct Recorder {
    out: Writer<BufWriter<File>>,
    maps: Vec<LiveMap>,
    next_map: u32,
    sites_by_ip: HashMap<usize, u32>,
    sites_by_text: HashMap<String, u32>,
    error: Option<std::io::Error>,
}

/// Marks the calling thread as inside a recorded call, so the library
/// calls it makes are not recorded again. Dropped when the call returns.
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

fn thread_id() -> u32 {
    THREAD.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_THREAD.fetch_add(1, Relaxed));
        }
        t.get()
    })
}

fn lock() -> MutexGuard<'static, Option<Recorder>> {
    REC.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets (or clears) a function that names the calling site, tried before
/// the native stack: the Python extension names the Python line.
pub fn set_site_hook(f: Option<SiteHook>) {
    *SITE_HOOK.lock().unwrap_or_else(|e| e.into_inner()) = f;
}

/// Where a site is looked for: the first stack frame outside this library,
/// `libpmem*` (the compatibility layer, libpmemobj) and the Python
/// extension.
mod site {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static LIBRARY: Mutex<Option<HashMap<usize, bool>>> = Mutex::new(None);

    fn module_of(ip: usize) -> Option<(usize, String)> {
        let mut info: libc::Dl_info = unsafe_zeroed();
        // SAFETY: dladdr only reads the loader's tables; `info` is valid.
        if unsafe { libc::dladdr(ip as *const _, &mut info) } == 0 || info.dli_fname.is_null() {
            return None;
        }
        // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
        let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
        Some((info.dli_fbase as usize, name.to_string_lossy().into_owned()))
    }

    fn unsafe_zeroed() -> libc::Dl_info {
        // SAFETY: Dl_info is plain data (pointers); all-zero is valid.
        unsafe { std::mem::zeroed() }
    }

    /// Whether the frame at `ip` belongs to the libraries a site skips:
    /// this library's own shared object, `libpmem*` (libpmem.so.1,
    /// libpmemobj) and the Python extension, as whole modules. Where
    /// pmem-sys is linked statically (a Rust program, a C program with
    /// libpmem_sys.a), its frames share the program's module and are told
    /// apart by their symbol: `pmem_sys::`, the tracer's own, and the C
    /// exports.
    fn is_library(ip: usize) -> bool {
        let Some((base, name)) = module_of(ip) else {
            return false;
        };
        let mut cache = LIBRARY.lock().unwrap_or_else(|e| e.into_inner());
        let map = cache.get_or_insert_with(HashMap::new);
        let own = module_of(is_library as *const () as usize).map(|m| m.0);
        let whole = *map.entry(base).or_insert_with(|| {
            let file = name.rsplit('/').next().unwrap_or(&name);
            file.starts_with("libpmem") || file.starts_with("_pypmem")
        });
        if whole {
            return true;
        }
        if Some(base) != own {
            return false;
        }
        // Cached per address (the key is the address itself, which no
        // module base equals).
        *map.entry(ip | 1 << 63)
            .or_insert_with(|| static_library_frame(ip))
    }

    const C_EXPORTS: [&str; 10] = [
        "memcpy_to_pmem",
        "memcpy_from_pmem",
        "wmb_pmem",
        "clear_pmem",
        "arch_wb_cache_pmem",
        "arch_invalidate_pmem",
        "arch_has_pmem_api",
        "arch_has_wmb_pmem",
        "memremap_pmem",
        "memunmap_pmem",
    ];

    fn library_symbol(name: &str) -> bool {
        let n = name.trim_start_matches('<');
        n.starts_with("pmem_sys::")
            || n.starts_with("backtrace::")
            || n.starts_with("pmem_sys_")
            || C_EXPORTS.contains(&n)
    }

    /// A frame of the program's own module is the library's when every
    /// function inlined into it is (a caller's function with the
    /// library's inlined into it is the caller's).
    fn static_library_frame(ip: usize) -> bool {
        let (mut any, mut all) = (false, true);
        backtrace::resolve((ip - 1) as *mut _, |sym| {
            any = true;
            all &= sym.name().is_some_and(|n| library_symbol(&n.to_string()));
        });
        any && all
    }

    /// The first return address outside the libraries.
    pub(super) fn caller() -> Option<usize> {
        let mut found = None;
        backtrace::trace(|frame| {
            let ip = frame.ip() as usize;
            if ip == 0 || is_library(ip) {
                return true;
            }
            found = Some(ip);
            false
        });
        found
    }

    /// `function (file:line)`, or `function+0xoff (module)`: the innermost
    /// function at `ip` that is not the library's (inlining may put the
    /// library's functions at the caller's address).
    pub(super) fn describe(ip: usize) -> String {
        let mut text: Option<String> = None;
        let mut fallback: Option<String> = None;
        // Resolve the call instruction, not the one after it.
        backtrace::resolve((ip - 1) as *mut _, |sym| {
            if text.is_some() {
                return;
            }
            let name = sym.name().map(|n| n.to_string());
            let file = sym
                .filename()
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().into_owned());
            let t = match (&name, file, sym.lineno()) {
                (Some(n), Some(f), Some(l)) => Some(format!("{n} ({f}:{l})")),
                (Some(n), _, _) => Some(n.clone()),
                _ => None,
            };
            if name.as_deref().is_some_and(library_symbol) {
                fallback = fallback.take().or(t);
            } else {
                text = t;
            }
        });
        text.or(fallback).unwrap_or_else(|| match module_of(ip) {
            Some((base, name)) => format!("{name}+{:#x}", ip - base),
            None => format!("{ip:#x}"),
        })
    }
}

/// A site not yet given an id: a return address, or a text from the hook.
enum SiteKey {
    None,
    Ip(usize),
    Text(String),
}

/// Found before the recorder's lock is taken: the Python hook takes the
/// GIL, and a thread holding the GIL may be waiting for the lock.
fn site_key() -> SiteKey {
    let hook = *SITE_HOOK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(text) = hook.and_then(|h| h()) {
        return SiteKey::Text(text);
    }
    match site::caller() {
        Some(ip) => SiteKey::Ip(ip),
        None => SiteKey::None,
    }
}

impl Recorder {
    fn site(&mut self, key: SiteKey) -> u32 {
        let next = (self.sites_by_ip.len() + self.sites_by_text.len() + 1) as u32;
        let (id, text) = match key {
            SiteKey::None => return 0,
            SiteKey::Ip(ip) => {
                if let Some(id) = self.sites_by_ip.get(&ip) {
                    return *id;
                }
                self.sites_by_ip.insert(ip, next);
                (next, site::describe(ip))
            }
            SiteKey::Text(t) => {
                if let Some(id) = self.sites_by_text.get(&t) {
                    return *id;
                }
                self.sites_by_text.insert(t.clone(), next);
                (next, t)
            }
        };
        let r = self.out.write(&Record::Site { id, text });
        self.keep(r);
        id
    }

    fn keep(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    /// The mapping holding `[addr, addr + n)`, if recorded.
    fn find(&self, addr: usize, n: usize) -> Option<usize> {
        self.maps.iter().position(|m| {
            addr >= m.addr && addr.checked_add(n).is_some_and(|e| e <= m.addr + m.len)
        })
    }

    /// Records every change of every mapping since its shadow, as direct
    /// stores attributed to the call about to be recorded.
    fn compare(&mut self, thread: u32, site: u32) {
        // A mapping the caller made and unmapped itself is gone: record the
        // unmap rather than read freed address space.
        let mut i = 0;
        while i < self.maps.len() {
            let m = &self.maps[i];
            // SAFETY: msync(MS_ASYNC) reads no memory; it fails with ENOMEM
            // when part of the range is not mapped.
            if m.adopted && unsafe { libc::msync(m.addr as *mut _, m.len, libc::MS_ASYNC) } != 0 {
                let m = self.maps.remove(i);
                let r = self.out.write(&Record::Unmap {
                    thread,
                    site,
                    map: m.id,
                });
                self.keep(r);
            } else {
                i += 1;
            }
        }
        for i in 0..self.maps.len() {
            let m = &mut self.maps[i];
            // SAFETY: a live mapping of this library, readable for `len`
            // bytes until it is unmapped (unmap removes it from `maps`
            // first, under this lock). Other threads may store to it
            // meanwhile: such a store shows up here or at the next call.
            let live = unsafe { std::slice::from_raw_parts(m.addr as *const u8, m.len) };
            let ranges = diff_ranges(live, &m.shadow);
            let id = m.id;
            for (off, len) in ranges {
                let data = &live[off..off + len];
                self.maps[i].shadow[off..off + len].copy_from_slice(data);
                let r = self
                    .out
                    .store_head(
                        thread,
                        site,
                        Call::Direct,
                        id,
                        off as u64,
                        false,
                        len as u64,
                        None,
                    )
                    .and_then(|_| self.out.raw(data));
                self.keep(r);
            }
        }
    }
}

/// Ranges where `live` differs from `shadow`, as (offset, length): runs
/// of differing bytes, joined when less than a line apart.
pub fn diff_ranges(live: &[u8], shadow: &[u8]) -> Vec<(usize, usize)> {
    const CHUNK: usize = 4096;
    let mut out: Vec<(usize, usize)> = Vec::new();
    let n = live.len().min(shadow.len());
    let mut c = 0;
    while c < n {
        let e = (c + CHUNK).min(n);
        if live[c..e] != shadow[c..e] {
            let mut i = c;
            while i < e {
                if live[i] != shadow[i] {
                    let start = i;
                    while i < e && live[i] != shadow[i] {
                        i += 1;
                    }
                    match out.last_mut() {
                        Some((o, l)) if start - (*o + *l) < LINE => *l = i - *o,
                        _ => out.push((start, i - start)),
                    }
                } else {
                    i += 1;
                }
            }
        }
        c = e;
    }
    out
}

/// Where a store's bytes come from.
#[derive(Clone, Copy)]
pub(crate) enum Src {
    /// `n` bytes at this address.
    Bytes(*const u8),
    /// One byte, repeated.
    Fill(u8),
}

/// A [`Src`] as two scalars, passed in registers to the cold recording
/// path: passed as the enum itself, it was written to the stack before
/// the hook's `on()` test, two stores on every store call's fast path.
#[derive(Clone, Copy)]
struct SrcWord {
    word: usize,
    fill: bool,
}

impl SrcWord {
    #[inline(always)]
    fn of(src: Src) -> Self {
        match src {
            Src::Bytes(p) => SrcWord {
                word: p as usize,
                fill: false,
            },
            Src::Fill(c) => SrcWord {
                word: c as usize,
                fill: true,
            },
        }
    }

    fn src(self) -> Src {
        if self.fill {
            Src::Fill(self.word as u8)
        } else {
            Src::Bytes(self.word as *const u8)
        }
    }
}

/// Starts an event: returns the guard, and whether this call is to be
/// recorded (not nested in another recorded call).
#[cold]
fn begin() -> (Guard, bool) {
    let outer = DEPTH.with(|d| {
        let v = d.get();
        d.set(v + 1);
        v == 0
    });
    (Guard(()), outer && PID.load(Relaxed) == std::process::id())
}

/// Hook of the API's store calls: a store of `n` bytes at `dst` (from
/// `src`, which the caller guarantees readable for `n` bytes), written back
/// or streamed by the call when `written_back`. Returns nothing, so the
/// caller's tail call stays one: the API's stores call no other hook.
#[inline(always)]
pub(crate) fn store_call(call: Call, dst: *const u8, src: Src, n: usize, written_back: bool) {
    if on() {
        drop(store_slow(call, dst, SrcWord::of(src), n, written_back));
    }
}

/// [`store_call`] for the per-call flags: written back unless `F_NOFLUSH`
/// (then left in the cache, or streamed with `F_NONTEMPORAL`/`F_WC`); the
/// drain that follows is recorded by `wmb_pmem`'s hook.
#[inline(always)]
pub(crate) fn store_flags_call(call: Call, dst: *const u8, src: Src, n: usize, flags: u32) {
    const NONTEMPORAL_OR_WC: u32 = 2 | 8;
    const NOFLUSH: u32 = 32;
    if on() {
        let written_back = flags & NOFLUSH == 0 || flags & NONTEMPORAL_OR_WC != 0;
        drop(store_slow(call, dst, SrcWord::of(src), n, written_back));
    }
}

#[cold]
#[inline(never)]
fn store_slow(call: Call, dst: *const u8, src: SrcWord, n: usize, written_back: bool) -> Guard {
    let src = src.src();
    let (g, rec) = begin();
    if !rec || n == 0 {
        return g;
    }
    let key = site_key();
    let thread = thread_id();
    let mut r = lock();
    let Some(r) = r.as_mut() else { return g };
    let site = r.site(key);
    r.compare(thread, site);
    let Some(i) = r
        .find(dst as usize, n)
        .or_else(|| r.adopt(thread, site, dst as usize, n))
    else {
        return g;
    };
    let (id, off) = (r.maps[i].id, dst as usize - r.maps[i].addr);
    let res = match src {
        Src::Bytes(p) => {
            // SAFETY: the store call's contract: `p` is readable for `n`
            // bytes (read here before the call stores, so a memmove's
            // overlapping source still holds the bytes it will copy).
            let data = unsafe { std::slice::from_raw_parts(p, n) };
            r.maps[i].shadow[off..off + n].copy_from_slice(data);
            r.out
                .store_head(
                    thread,
                    site,
                    call,
                    id,
                    off as u64,
                    written_back,
                    n as u64,
                    None,
                )
                .and_then(|_| r.out.raw(data))
        }
        Src::Fill(c) => {
            r.maps[i].shadow[off..off + n].fill(c);
            r.out.store_head(
                thread,
                site,
                call,
                id,
                off as u64,
                written_back,
                n as u64,
                Some(c),
            )
        }
    };
    r.keep(res);
    g
}

/// The kinds of non-store event.
#[derive(Clone, Copy)]
enum Kind {
    WriteBack,
    Persist,
    Fence,
    Unmap,
}

#[cold]
#[inline(never)]
fn range_slow(kind: Kind, call: Call, addr: usize, n: usize) -> Guard {
    let (g, rec) = begin();
    if !rec {
        return g;
    }
    let key = site_key();
    let thread = thread_id();
    let mut r = lock();
    let Some(r) = r.as_mut() else { return g };
    let site = r.site(key);
    r.compare(thread, site);
    let res = match kind {
        Kind::Fence => r.out.write(&Record::Fence { thread, site, call }),
        Kind::Unmap => match r.maps.iter().position(|m| m.addr == addr) {
            Some(i) => {
                let m = r.maps.remove(i);
                r.out.write(&Record::Unmap {
                    thread,
                    site,
                    map: m.id,
                })
            }
            None => Ok(()),
        },
        Kind::WriteBack | Kind::Persist => {
            match r.find(addr, n).or_else(|| r.adopt(thread, site, addr, n)) {
                Some(i) => {
                    let (map, offset, len) =
                        (r.maps[i].id, (addr - r.maps[i].addr) as u64, n as u64);
                    r.out.write(&if matches!(kind, Kind::Persist) {
                        Record::Persist {
                            thread,
                            site,
                            call,
                            map,
                            offset,
                            len,
                        }
                    } else {
                        Record::WriteBack {
                            thread,
                            site,
                            call,
                            map,
                            offset,
                            len,
                        }
                    })
                }
                // A fence-like persist of memory this library did not map
                // still completes this thread's write-backs.
                None if matches!(kind, Kind::Persist) => {
                    r.out.write(&Record::Fence { thread, site, call })
                }
                None => Ok(()),
            }
        }
    };
    r.keep(res);
    g
}

/// Hook: lines of `[addr, addr + n)` written back, not fenced.
#[doc(hidden)]
#[inline(always)]
pub fn write_back(call: Call, addr: *const u8, n: usize) -> Option<Guard> {
    if !on() {
        return None;
    }
    Some(range_slow(Kind::WriteBack, call, addr as usize, n))
}

/// Hook: the calling thread's fence.
#[doc(hidden)]
#[inline(always)]
pub fn fence(call: Call) -> Option<Guard> {
    if !on() {
        return None;
    }
    Some(range_slow(Kind::Fence, call, 0, 0))
}

/// Hook: write back `[addr, addr + n)` and fence (msync on page
/// granularity).
#[doc(hidden)]
#[inline(always)]
pub fn persist(call: Call, addr: *const u8, n: usize) -> Option<Guard> {
    if !on() {
        return None;
    }
    Some(range_slow(Kind::Persist, call, addr as usize, n))
}

/// Hook: the mapping at `addr` is about to be unmapped.
#[doc(hidden)]
#[inline(always)]
pub fn unmap(addr: usize) -> Option<Guard> {
    if !on() {
        return None;
    }
    Some(range_slow(Kind::Unmap, Call::Memunmap, addr, 0))
}

/// Hook: `msync` of `[addr, addr + n)` succeeded. Recorded even inside
/// another recorded call (`wmb_pmem` msyncs page-granular ranges).
#[doc(hidden)]
#[inline(always)]
pub fn msync(addr: usize, n: usize) {
    if on() {
        msync_slow(addr, n);
    }
}

#[cold]
#[inline(never)]
fn msync_slow(addr: usize, n: usize) {
    if PID.load(Relaxed) != std::process::id() {
        return;
    }
    let key = if DEPTH.with(|d| d.get()) == 0 {
        site_key()
    } else {
        SiteKey::None
    };
    let thread = thread_id();
    let mut r = lock();
    let Some(r) = r.as_mut() else { return };
    let site = r.site(key);
    r.compare(thread, site);
    // msync is page-granular: clip to each recorded mapping it covers.
    let end = addr.saturating_add(n);
    let hits: Vec<(u32, u64, u64)> = r
        .maps
        .iter()
        .filter(|m| m.addr < end && addr < m.addr + m.len)
        .map(|m| {
            let a = addr.max(m.addr);
            let b = end.min(m.addr + m.len);
            (m.id, (a - m.addr) as u64, (b - a) as u64)
        })
        .collect();
    for (map, offset, len) in hits {
        let res = r.out.write(&Record::Msync {
            thread,
            site,
            map,
            offset,
            len,
        });
        r.keep(res);
    }
}

/// Starts recording from `PMEM_SYS_RECORD`, once: at the first mapping of
/// this library, or the first memory the caller maps itself ([`adopt`]).
fn env_start() {
    static ENV: Once = Once::new();
    ENV.call_once(|| {
        if let Some(p) = std::env::var_os("PMEM_SYS_RECORD").filter(|p| !p.is_empty())
            && let Err(e) = start(Path::new(&p))
        {
            eprintln!("pmem-sys: PMEM_SYS_RECORD: {}", e.message);
        }
    });
}

/// Hook: a new mapping of `fd` at `offset`, `[addr, addr + len)`, made by
/// `call` (`memremap_pmem` or `pmem_sys_map_file`). Starts recording from
/// `PMEM_SYS_RECORD` the first time.
pub(crate) fn map(
    call: &str,
    fd: i32,
    offset: u64,
    addr: usize,
    len: usize,
    granularity: Granularity,
) {
    env_start();
    if on() {
        let call = if call == "memremap_pmem" {
            Call::Memremap
        } else {
            Call::MapFile
        };
        map_slow(call, fd, offset, addr, len, granularity);
    }
}

#[cold]
#[inline(never)]
fn map_slow(call: Call, fd: i32, offset: u64, addr: usize, len: usize, granularity: Granularity) {
    if PID.load(Relaxed) != std::process::id() {
        return;
    }
    let key = site_key();
    let thread = thread_id();
    // SAFETY: fstat writes into `st`, which is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let (dev, ino) = if unsafe { libc::fstat(fd, &mut st) } == 0 {
        (st.st_dev, st.st_ino)
    } else {
        (0, 0)
    };
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut r = lock();
    let Some(r) = r.as_mut() else { return };
    let site = r.site(key);
    r.compare(thread, site);
    let file = FileId {
        call,
        file_offset: offset,
        dev,
        ino,
        path,
        granularity,
    };
    r.add_map(thread, site, file, addr, len);
}

impl Recorder {
    fn add_map(&mut self, thread: u32, site: u32, file: FileId, addr: usize, len: usize) {
        // SAFETY: a mapping of this library, readable for `len` bytes.
        let content = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
        let id = self.next_map;
        self.next_map += 1;
        let res = self
            .out
            .map_head(
                thread,
                site,
                file.call,
                id,
                file.granularity,
                file.file_offset,
                file.dev,
                file.ino,
                &file.path,
                len as u64,
            )
            .and_then(|_| self.out.raw(content));
        self.keep(res);
        self.maps.push(LiveMap {
            id,
            addr,
            len,
            shadow: content.to_vec(),
            file,
            adopted: false,
        });
    }
}

/// One line of /proc/self/maps: a shared file mapping.
struct Vma {
    start: usize,
    end: usize,
    offset: u64,
    dev: u64,
    ino: u64,
    path: String,
}

/// The shared file mapping holding `addr`, from /proc/self/maps.
fn vma_of(addr: usize) -> Option<Vma> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        // start-end perms offset major:minor inode path
        let mut f = line.split_whitespace();
        let (range, perms, offset, dev, ino) =
            (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let path = f.collect::<Vec<_>>().join(" ");
        let (a, b) = range.split_once('-')?;
        let (a, b) = (
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        );
        if addr < a || addr >= b {
            continue;
        }
        let ino: u64 = ino.parse().ok()?;
        if perms.as_bytes().get(3) != Some(&b's') || ino == 0 {
            return None;
        }
        let (ma, mi) = dev.split_once(':')?;
        let (ma, mi) = (
            u32::from_str_radix(ma, 16).ok()?,
            u32::from_str_radix(mi, 16).ok()?,
        );
        return Some(Vma {
            start: a,
            end: b,
            offset: u64::from_str_radix(offset, 16).ok()?,
            dev: libc::makedev(ma, mi),
            ino,
            path,
        });
    }
    None
}

impl Recorder {
    /// Starts recording the caller's own shared file mapping that holds
    /// `[addr, addr + n)`; returns its index in `maps`.
    fn adopt(&mut self, thread: u32, site: u32, addr: usize, n: usize) -> Option<usize> {
        let v = vma_of(addr)?;
        if addr.checked_add(n)? > v.end {
            return None;
        }
        let granularity = crate::knobs::current()
            .force_granularity
            .unwrap_or(Granularity::Page);
        let file = FileId {
            call: Call::Adopt,
            file_offset: v.offset,
            dev: v.dev,
            ino: v.ino,
            path: v.path,
            granularity,
        };
        self.add_map(thread, site, file, v.start, v.end - v.start);
        let i = self.maps.len() - 1;
        self.maps[i].adopted = true;
        Some(i)
    }
}

/// Hook: `[addr, addr + n)` is persistent memory the caller mapped itself
/// (libpmemobj maps its pool and asks `pmem_is_pmem`): records the shared
/// file mapping holding it, if it is not recorded yet, with the granularity
/// `PMEM_SYS_FORCE_GRANULARITY` names (page granularity without it). A
/// store, write-back or persist of an unrecorded address does the same.
pub fn adopt(addr: usize, n: usize) {
    env_start();
    if on() {
        adopt_slow(addr, n);
    }
}

#[cold]
#[inline(never)]
fn adopt_slow(addr: usize, n: usize) {
    if PID.load(Relaxed) != std::process::id() {
        return;
    }
    let key = site_key();
    let thread = thread_id();
    let mut r = lock();
    let Some(r) = r.as_mut() else { return };
    if r.find(addr, n.max(1)).is_some() {
        return;
    }
    let site = r.site(key);
    r.compare(thread, site);
    r.adopt(thread, site, addr, n.max(1));
}

/// Hook: `[start, end)` is about to be unmapped from every mapping it
/// overlaps (PMDK's partial `pmem_unmap`). Each overlapped mapping is
/// recorded as unmapped, and the pieces that stay as new mappings.
pub(crate) fn unmap_range(start: usize, end: usize) {
    if on() {
        unmap_range_slow(start, end);
    }
}

#[cold]
#[inline(never)]
fn unmap_range_slow(start: usize, end: usize) {
    if PID.load(Relaxed) != std::process::id() {
        return;
    }
    let key = site_key();
    let thread = thread_id();
    let mut r = lock();
    let Some(r) = r.as_mut() else { return };
    let site = r.site(key);
    r.compare(thread, site);
    let mut i = 0;
    while i < r.maps.len() {
        let (a, b) = (r.maps[i].addr, r.maps[i].addr + r.maps[i].len);
        if a >= end || b <= start {
            i += 1;
            continue;
        }
        let m = r.maps.remove(i);
        let res = r.out.write(&Record::Unmap {
            thread,
            site,
            map: m.id,
        });
        r.keep(res);
        for (s, e) in [(a, start.min(b)), (end.max(a), b)] {
            if s < e {
                let mut f = m.file.clone();
                f.file_offset += (s - a) as u64;
                r.add_map(thread, site, f, s, e - s);
            }
        }
    }
}

extern "C" fn at_fork_child() {
    ON.store(false, Relaxed);
}

extern "C" fn at_exit() {
    if on() && PID.load(Relaxed) == std::process::id() {
        let _ = stop_with("atexit");
    }
}

/// Starts recording every mapping made from now on to the trace file
/// `path` (created or truncated). Mappings made before are not recorded.
pub fn start(path: &Path) -> Result<(), Error> {
    const CALL: &str = "pmem_sys_record_start";
    static HOOKS: Once = Once::new();
    let mut g = lock();
    if g.is_some() {
        return Err(Error::new(
            libc::EBUSY,
            CALL,
            format_args!("path {}", path.display()),
            "already recording (call pmem_sys_record_stop first)",
        ));
    }
    let f = File::create(path).map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            CALL,
            format_args!("path {}", path.display()),
            format_args!("creating the trace: {e}"),
        )
    })?;
    let page = crate::granularity::page_size() as u32;
    let out = Writer::new(
        BufWriter::with_capacity(1 << 20, f),
        LINE as u32,
        page,
        std::process::id(),
    )
    .map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            CALL,
            format_args!("path {}", path.display()),
            format_args!("writing the trace: {e}"),
        )
    })?;
    *g = Some(Recorder {
        out,
        maps: Vec::new(),
        next_map: 1,
        sites_by_ip: HashMap::new(),
        sites_by_text: HashMap::new(),
        error: None,
    });
    HOOKS.call_once(|| {
        // SAFETY: registering plain extern "C" functions with no captured
        // state; both only touch atomics and the recorder's lock.
        unsafe {
            libc::pthread_atfork(None, None, Some(at_fork_child));
            libc::atexit(at_exit);
        }
    });
    PID.store(std::process::id(), Relaxed);
    ON.store(true, Relaxed);
    Ok(())
}

fn stop_with(call: &str) -> Result<(), Error> {
    let mut g = lock();
    let Some(mut r) = g.take() else {
        return Err(Error::new(libc::EINVAL, call, "recording", "not recording"));
    };
    ON.store(false, Relaxed);
    let thread = THREAD.try_with(|t| t.get()).unwrap_or(0);
    r.compare(thread, 0);
    let res = r.out.write(&Record::End { thread });
    r.keep(res);
    let res = r.out.flush();
    r.keep(res);
    match r.error {
        Some(e) => Err(Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            call,
            "trace",
            format_args!("writing the trace failed: {e}"),
        )),
        None => Ok(()),
    }
}

/// Stops recording: records the direct stores since the last call, ends
/// the trace and closes it. `EINVAL` when not recording; the first write
/// error of the trace, if any, otherwise.
pub fn stop() -> Result<(), Error> {
    stop_with("pmem_sys_record_stop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ranges_finds_runs_and_joins_near_ones() {
        let shadow = vec![0u8; 10000];
        let mut live = shadow.clone();
        assert!(diff_ranges(&live, &shadow).is_empty());
        live[5] = 1;
        live[6] = 1;
        live[40] = 1; // < 64 bytes after the first run: joined
        live[500] = 2;
        live[4095] = 3;
        live[4096] = 3; // across the chunk boundary: joined
        assert_eq!(
            diff_ranges(&live, &shadow),
            vec![(5, 36), (500, 1), (4095, 2)]
        );
        live[9999] = 4;
        assert_eq!(diff_ranges(&live, &shadow).last(), Some(&(9999, 1)));
    }
}
