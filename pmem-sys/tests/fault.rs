//! Fault-safe copies: a file truncated under a live mapping, read and
//! written past its new end through the guarded calls, from one thread and
//! from several; and the SIGBUS handler chain, each case in a child process
//! of its own because a signal disposition belongs to the whole process.
//!
//! x86_64 only: elsewhere the guarded calls are plain copies (see
//! `pmem_sys::fault`), and this file says so and tests nothing.

use pmem_sys::api;
use pmem_sys::fault;
use pmem_sys::mapping;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PAGES: usize = 4;
/// Pages the file keeps after the truncation; pages `KEPT..PAGES` fault.
const KEPT: usize = 2;

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn pattern(i: usize) -> u8 {
    (i * 7 + 3) as u8
}

/// A mapping of `PAGES` pages filled with `pattern`, whose file was then
/// truncated to `KEPT` pages through a second descriptor.
struct Truncated {
    addr: *mut u8,
    len: usize,
    /// Mapped by the library (page-granular here) or by plain `mmap` (which
    /// the library treats as cache-line-granular memory).
    registered: bool,
    _dir: tempfile::TempDir,
}

impl Truncated {
    fn new() -> Self {
        Self::make(true)
    }

    /// Mapped with plain `mmap`, so the checked writes take their
    /// cache-line path: probe, then the engine's tiers.
    fn unregistered() -> Self {
        Self::make(false)
    }

    fn make(registered: bool) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("victim");
        let len = PAGES * page();
        let addr = if registered {
            let (addr, mapped) =
                mapping::map_file(&path, len, pmem_sys::MapFlags::CREATE, 0o600).expect("map_file");
            assert_eq!(mapped, len);
            addr as *mut u8
        } else {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .expect("create");
            f.set_len(len as u64).expect("size");
            // SAFETY: a fresh shared mapping of a file we own.
            let p = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            p.cast()
        };
        for i in 0..len {
            // SAFETY: inside the fresh mapping, before the truncation.
            unsafe { addr.add(i).write(pattern(i)) };
        }
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("second descriptor");
        other
            .set_len((KEPT * page()) as u64)
            .expect("truncate through the second descriptor");
        Truncated {
            addr,
            len,
            registered,
            _dir: dir,
        }
    }

    /// The first byte past the new end of the file.
    fn end(&self) -> usize {
        KEPT * page()
    }
}

impl Drop for Truncated {
    fn drop(&mut self) {
        if self.registered {
            mapping::unmap(self.addr as usize).expect("unmap");
        } else {
            // SAFETY: our own mapping, no longer used.
            unsafe { libc::munmap(self.addr.cast(), self.len) };
        }
    }
}

fn guarded_or_skip(what: &str) -> bool {
    if !fault::GUARDED {
        println!(
            "SKIPPED: {what} (this architecture has no guarded copy; the calls are plain copies)"
        );
    }
    fault::GUARDED
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[test]
fn read_past_the_new_end_returns_eio_after_copying_what_it_could() {
    if !guarded_or_skip("faulting reads") {
        return;
    }
    let t = Truncated::new();
    let p = page();
    // From 100 bytes into the last kept page, across the new end.
    let start = t.end() - p + 100;
    let n = 2 * p;
    let good = t.end() - start;
    let mut dst = vec![0u8; n];
    // SAFETY: the source is mapped (partly unbacked), dst holds n bytes.
    let left = unsafe { api::copy_mc(dst.as_mut_ptr(), t.addr.add(start), n) };
    assert_eq!(
        left,
        n - good,
        "copy_mc reports the bytes past the new end as not copied"
    );
    for (i, &b) in dst[..good].iter().enumerate() {
        assert_eq!(b, pattern(start + i), "byte {i} before the fault");
    }

    let mut dst = vec![0u8; n];
    // SAFETY: as above.
    let rc = unsafe { api::memcpy_from_pmem(dst.as_mut_ptr(), t.addr.add(start), n) };
    assert_eq!((rc, errno()), (-1, libc::EIO));
    assert_eq!(
        dst[good - 1],
        pattern(start + good - 1),
        "the copy went up to the fault"
    );

    // SAFETY: as above.
    let e = unsafe { api::memcpy_from_pmem_checked(dst.as_mut_ptr(), t.addr.add(start), n) }
        .unwrap_err();
    assert_eq!(e.errno, libc::EIO);
    assert!(
        e.message
            .starts_with(&format!("memcpy_from_pmem: src+{good} (")),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(&format!("{good} of {n} bytes copied")),
        "{}",
        e.message
    );

    // A read that starts on an unbacked page copies nothing.
    // SAFETY: as above.
    assert_eq!(
        unsafe { api::copy_mc(dst.as_mut_ptr(), t.addr.add(t.end() + 8), 16) },
        16
    );

    // The process goes on, and the rest of the mapping still reads.
    let mut all = vec![0u8; t.end()];
    // SAFETY: the kept pages are backed.
    assert_eq!(
        unsafe { api::memcpy_from_pmem(all.as_mut_ptr(), t.addr, t.end()) },
        0
    );
    assert!(all.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    assert!(fault::handler_installed());
}

/// Every phase of the routine faulting: each short-copy size class, the
/// first vector with the destination aligned or not, the 8-vector loop,
/// the one-vector loop and the overlapping last vector. The count is exact
/// and nothing past the fault is written.
#[test]
fn the_count_is_exact_wherever_the_fault_falls() {
    if !guarded_or_skip("fault position matrix") {
        return;
    }
    if std::env::var_os("PMEM_SYS_TEST_STREAM_EVERYTHING").is_some() {
        fault::set_streaming_threshold(0);
        println!("streaming stores from 0 bytes");
    }
    println!(
        "guarded routine: {} ({})",
        pmem_sys::engine::resolved().guarded.kind.name(),
        pmem_sys::implementation()
    );
    let t = Truncated::new();
    let mut buf = vec![0u8; 6000 + 64];
    for misalign in [0usize, 1, 31] {
        for n in [
            1usize, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 100, 255, 256, 257, 300, 511, 1000,
            5000,
        ] {
            for good in [
                0usize, 1, 2, 3, 5, 8, 15, 16, 30, 31, 32, 33, 100, 127, 128, 129, 200, 255, 256,
                257, 290, 511, 512, 999, 4097, 5000,
            ] {
                if good > n {
                    continue;
                }
                buf.fill(0xEE);
                let dst = &mut buf[misalign..misalign + n];
                let start = t.end() - good;
                // SAFETY: dst holds n bytes; the source is mapped.
                let left = unsafe { api::copy_mc(dst.as_mut_ptr(), t.addr.add(start), n) };
                let want = n.saturating_sub(good);
                assert_eq!(left, want, "misalign={misalign} n={n} good={good}");
                for (i, &b) in dst[..good].iter().enumerate() {
                    assert_eq!(
                        b,
                        pattern(start + i),
                        "misalign={misalign} n={n} good={good}: byte {i}"
                    );
                }
                assert!(
                    dst[good..].iter().all(|&b| b == 0xEE),
                    "misalign={misalign} n={n} good={good}: wrote past the fault"
                );
            }
        }
    }
}

/// The SSE2 routine, which CPUs without AVX2 run: the same matrix in a
/// child process with `PMEM_SYS_NO_AVX2=1`.
#[test]
fn the_sse2_routine_counts_exactly_too() {
    if !guarded_or_skip("SSE2 routine") {
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "the_count_is_exact_wherever_the_fault_falls",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("PMEM_SYS_NO_AVX2", "1");
    let (status, text) = run_bounded(cmd, CHILD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{text}");
    assert!(text.contains("guarded routine: sse2"), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// Page-granular (a file the library mapped): the guarded copy itself.
/// The streaming loop copies larger than the caches use, on small buffers:
/// the same matrix in a child process with the threshold at 0.
#[test]
fn the_streaming_loop_counts_exactly_too() {
    if !guarded_or_skip("streaming loop") {
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "the_count_is_exact_wherever_the_fault_falls",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("PMEM_SYS_TEST_STREAM_EVERYTHING", "1");
    let (status, text) = run_bounded(cmd, CHILD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{text}");
    assert!(text.contains("streaming stores from 0 bytes"), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
fn checked_write_past_the_new_end_returns_eio_after_writing_what_it_could() {
    if !guarded_or_skip("faulting checked writes") {
        return;
    }
    checked_writes(&Truncated::new());
}

/// Cache-line-granular (memory the library did not map): probe each page,
/// then the engine's tiers.
#[test]
fn checked_write_through_the_engine_returns_eio_too() {
    if !guarded_or_skip("faulting checked writes, engine path") {
        return;
    }
    checked_writes(&Truncated::unregistered());
}

fn checked_writes(t: &Truncated) {
    let p = page();
    let start = t.end() - p + 100;
    let n = 2 * p;
    let good = t.end() - start;
    let src: Vec<u8> = (0..n).map(|i| !pattern(i)).collect();
    // SAFETY: the destination is mapped (partly unbacked), src holds n bytes.
    let e = unsafe { api::memcpy_to_pmem_checked(t.addr.add(start), src.as_ptr(), n) }.unwrap_err();
    assert_eq!(e.errno, libc::EIO);
    assert!(
        e.message
            .starts_with(&format!("memcpy_to_pmem_checked: dst+{good} (")),
        "{}",
        e.message
    );
    api::wmb_pmem();
    let mut back = vec![0u8; good];
    // SAFETY: the kept pages are backed.
    assert_eq!(
        unsafe { api::memcpy_from_pmem(back.as_mut_ptr(), t.addr.add(start), good) },
        0
    );
    assert_eq!(
        back,
        src[..good],
        "every byte before the faulting page was written"
    );

    // Every length and offset around a page boundary, inside the kept
    // pages: the checked write is the engine's copy.
    for off in [0usize, 1, 63, 64, p - 1] {
        for len in [0usize, 1, 63, 64, 65, p - 1, p, p + 1] {
            if off + len > t.end() {
                continue;
            }
            let src: Vec<u8> = (0..len).map(|i| pattern(i + off + len)).collect();
            // SAFETY: inside the kept pages.
            unsafe { api::memcpy_to_pmem_checked(t.addr.add(off), src.as_ptr(), len) }
                .expect("backed pages");
            let mut back = vec![0u8; len];
            // SAFETY: as above.
            assert_eq!(
                unsafe { api::copy_mc(back.as_mut_ptr(), t.addr.add(off), len) },
                0
            );
            assert_eq!(back, src, "off={off} len={len}");
        }
    }
    // The checked fill: the same contract.
    // SAFETY: as above.
    let e = unsafe { api::memset_pmem_checked(t.addr.add(start), 0xA5, n) }.unwrap_err();
    assert_eq!(e.errno, libc::EIO);
    assert!(
        e.message
            .starts_with(&format!("memset_pmem_checked: dst+{good} (")),
        "{}",
        e.message
    );
    // SAFETY: the kept pages are backed.
    assert_eq!(
        unsafe { api::memcpy_from_pmem(back.as_mut_ptr(), t.addr.add(start), good) },
        0
    );
    assert!(
        back.iter().all(|&b| b == 0xA5),
        "every byte before the faulting page was filled"
    );
    // SAFETY: as above.
    unsafe { api::memset_pmem_checked(t.addr, 0x5A, t.end()) }.expect("backed pages");
    // SAFETY: as above.
    assert_eq!(unsafe { *t.addr.add(t.end() - 1) }, 0x5A);

    // A first chunk shorter than the 4-byte probe: 2 bytes before the end.
    let tail: Vec<u8> = (0..10u8).collect();
    // SAFETY: as above.
    let e = unsafe { api::memcpy_to_pmem_checked(t.addr.add(t.end() - 2), tail.as_ptr(), 10) }
        .unwrap_err();
    assert!(
        e.message.starts_with("memcpy_to_pmem_checked: dst+2 ("),
        "{}",
        e.message
    );
    // SAFETY: the kept pages are backed.
    assert_eq!(
        unsafe { core::slice::from_raw_parts(t.addr.add(t.end() - 2), 2) },
        &tail[..2]
    );
    // SAFETY: as above.
    let e = unsafe { api::memset_pmem_checked(t.addr.add(t.end() - 3), 0x11, 10) }.unwrap_err();
    assert!(
        e.message.starts_with("memset_pmem_checked: dst+3 ("),
        "{}",
        e.message
    );
    // SAFETY: as above.
    assert_eq!(
        unsafe { core::slice::from_raw_parts(t.addr.add(t.end() - 3), 3) },
        &[0x11; 3]
    );

    // A checked write that starts on an unbacked page writes nothing.
    // SAFETY: as above.
    let e = unsafe { api::memcpy_to_pmem_checked(t.addr.add(t.end() + 8), src.as_ptr(), 16) }
        .unwrap_err();
    assert!(
        e.message.starts_with("memcpy_to_pmem_checked: dst+0 ("),
        "{}",
        e.message
    );
}

#[test]
fn concurrent_faulting_reads() {
    if !guarded_or_skip("concurrent faulting reads") {
        return;
    }
    let t = Truncated::new();
    let p = page();
    let (addr, end) = (t.addr as usize, t.end());
    let faults = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for th in 0..4usize {
            let faults = &faults;
            s.spawn(move || {
                let mut dst = vec![0u8; 2 * p];
                for k in 0..300usize {
                    let start = end - p + (th * 131 + k * 17) % p;
                    let good = end - start;
                    // SAFETY: the mapping outlives the scope; dst holds 2p.
                    let left = unsafe {
                        api::copy_mc(dst.as_mut_ptr(), (addr + start) as *const u8, 2 * p)
                    };
                    assert_eq!(left, 2 * p - good, "thread {th} iteration {k}");
                    assert_eq!(dst[good - 1], pattern(start + good - 1));
                    faults.fetch_add(1, Ordering::Relaxed);
                    // SAFETY: the kept pages are backed.
                    let rc =
                        unsafe { api::memcpy_from_pmem(dst.as_mut_ptr(), addr as *const u8, p) };
                    assert_eq!(rc, 0);
                    assert_eq!(dst[p - 1], pattern(p - 1));
                }
            });
        }
    });
    assert_eq!(faults.load(Ordering::Relaxed), 1200);
}

#[test]
fn zero_length_accepts_null() {
    // SAFETY: n == 0 touches nothing.
    unsafe {
        assert_eq!(api::copy_mc(core::ptr::null_mut(), core::ptr::null(), 0), 0);
        assert_eq!(
            api::memcpy_from_pmem(core::ptr::null_mut(), core::ptr::null(), 0),
            0
        );
        api::memcpy_to_pmem_checked(core::ptr::null_mut(), core::ptr::null(), 0).unwrap();
    }
}

/* ---- The handler chain, one child process per case ------------------- */

const CHILD_ENV: &str = "PMEM_SYS_FAULT_CHILD";

/// How long a child may run before it counts as hung: a child that keeps
/// re-faulting (a handler that returns to the faulting instruction without
/// fixing anything) never ends by itself. Generous: the matrix children
/// take a few seconds on a loaded machine.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` with its output captured; kills it and returns `Err` with
/// what it printed if it has not exited after `limit`.
fn run_bounded(
    mut cmd: Command,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String), String> {
    use std::io::Read;
    let mut ch = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    // Drained by threads, so a chatty child never blocks on a full pipe.
    let mut out = ch.stdout.take().unwrap();
    let mut err = ch.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = ch.try_wait().expect("wait for the child") {
            break Some(st);
        }
        if start.elapsed() >= limit {
            let _ = ch.kill();
            let _ = ch.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&t_out.join().unwrap()),
        String::from_utf8_lossy(&t_err.join().unwrap())
    );
    status.map(|st| (st, text.clone())).ok_or_else(|| {
        format!(
            "the child did not finish within {} s and was killed (a fault it keeps retaking?); its output:\n{text}",
            limit.as_secs_f32()
        )
    })
}

/// Runs `case` in a fresh copy of this test binary, failing (not hanging)
/// if it does not finish within `CHILD_TIMEOUT`.
fn child(case: &str) -> (std::process::ExitStatus, String) {
    child_bounded(case, CHILD_TIMEOUT).unwrap_or_else(|e| panic!("child {case}: {e}"))
}

fn child_bounded(
    case: &str,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String), String> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_entry_point",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, case);
    run_bounded(cmd, limit)
}

#[test]
#[ignore = "entry point of the child processes the handler-chain tests spawn"]
fn child_entry_point() {
    let case = std::env::var(CHILD_ENV).expect("run by the handler-chain tests only");
    // No core files from the cases that die on purpose.
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    match case.as_str() {
        "own-handler" => own_handler_case(),
        "default-action" => default_action_case(),
        "ignored" => ignored_case(),
        "default-raise" => default_raise_case(),
        "refault-forever" => refault_forever_case(),
        other => panic!("unknown case {other}"),
    }
    println!("child {case}: survived");
}

/// A handler that fixes nothing: the faulting load is retried, faults
/// again, forever.
extern "C" fn useless_handler(_sig: i32, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    SEEN.fetch_add(1, Ordering::Relaxed);
}

/// Keeps re-faulting until killed: the parent must report it, not hang.
fn refault_forever_case() {
    set_disposition(
        useless_handler as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize,
        libc::SA_SIGINFO,
    );
    let t = Truncated::new();
    println!("child refault-forever: faulting");
    // SAFETY: deliberately faults, and the handler makes it fault again.
    let v = unsafe { core::ptr::read_volatile(t.addr.add(t.end()) as *const u64) };
    println!("child refault-forever: read {v} (should never get here)");
}

static SEEN: AtomicUsize = AtomicUsize::new(0);
static SEEN_ADDR: AtomicUsize = AtomicUsize::new(0);
static SEEN_CODE: AtomicUsize = AtomicUsize::new(0);

/// The program's own handler: records the fault and puts an anonymous page
/// where the faulting one was, so the instruction succeeds when retried.
extern "C" fn own_handler(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: a valid siginfo from the kernel; mmap over our own page.
    unsafe {
        let addr = (*info).si_addr() as usize;
        SEEN.fetch_add(1, Ordering::SeqCst);
        SEEN_ADDR.store(addr, Ordering::SeqCst);
        SEEN_CODE.store((*info).si_code as usize, Ordering::SeqCst);
        if (*info).si_code > 0 {
            let p = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            libc::mmap(
                (addr & !(p - 1)) as *mut libc::c_void,
                p,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
        }
    }
}

fn set_disposition(handler: usize, flags: i32) {
    // SAFETY: sigaction with a valid struct.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        assert_eq!(libc::sigaction(libc::SIGBUS, &sa, core::ptr::null_mut()), 0);
    }
}

/// The process installs its handler, then the library installs its own on
/// the first guarded call: the library's faults stay the library's, every
/// other SIGBUS reaches the process's handler.
fn own_handler_case() {
    set_disposition(
        own_handler as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) as usize,
        libc::SA_SIGINFO,
    );
    let t = Truncated::new();
    assert!(!fault::handler_installed());
    let mut dst = vec![0u8; 64];
    // SAFETY: an unbacked source page; dst holds 64 bytes.
    assert_eq!(
        unsafe { api::copy_mc(dst.as_mut_ptr(), t.addr.add(t.end()), 64) },
        64
    );
    assert!(fault::handler_installed());
    assert_eq!(
        SEEN.load(Ordering::SeqCst),
        0,
        "a fault inside the library reached the process's handler"
    );

    // A fault outside the library: an ordinary load.
    let target = t.addr as usize + t.end() + 3 * 8;
    // SAFETY: the load faults; our handler maps a zero page there.
    let v = unsafe { core::ptr::read_volatile(target as *const u64) };
    assert_eq!(v, 0, "the handler's fresh page was read");
    assert_eq!(
        SEEN.load(Ordering::SeqCst),
        1,
        "the process's handler did not see the foreign fault"
    );
    assert_eq!(SEEN_ADDR.load(Ordering::SeqCst), target);
    assert_eq!(SEEN_CODE.load(Ordering::SeqCst), libc::BUS_ADRERR as usize);

    // A SIGBUS sent by a process is not a fault, even mid-library.
    // SAFETY: raise has no preconditions.
    unsafe { libc::raise(libc::SIGBUS) };
    assert_eq!(SEEN.load(Ordering::SeqCst), 2);
    assert_eq!(SEEN_CODE.load(Ordering::SeqCst) as i32, libc::SI_TKILL);

    // And the library still recovers afterwards.
    // SAFETY: the last page is still unbacked.
    assert_eq!(
        unsafe { api::copy_mc(dst.as_mut_ptr(), t.addr.add(t.len - 64), 64) },
        64
    );
    assert_eq!(SEEN.load(Ordering::SeqCst), 2);
}

/// With SIG_DFL before the library, a foreign fault still kills the
/// process by SIGBUS (the parent checks how it died).
fn default_action_case() {
    set_disposition(libc::SIG_DFL, 0);
    let t = Truncated::new();
    let mut dst = vec![0u8; 64];
    // SAFETY: as in own_handler_case.
    assert_eq!(
        unsafe { api::copy_mc(dst.as_mut_ptr(), t.addr.add(t.end()), 64) },
        64
    );
    println!("child default-action: library fault recovered");
    // SAFETY: deliberately faults; the default action ends the process.
    let v = unsafe { core::ptr::read_volatile(t.addr.add(t.end()) as *const u64) };
    println!("child default-action: read {v} from an unbacked page (should have died)");
}

/// With SIG_DFL before the library, a SIGBUS sent by a process (not a
/// fault) still kills by SIGBUS: the library queues it again.
fn default_raise_case() {
    set_disposition(libc::SIG_DFL, 0);
    fault::install_handler();
    assert!(fault::handler_installed());
    println!("child default-raise: raising");
    // SAFETY: raise has no preconditions.
    unsafe { libc::raise(libc::SIGBUS) };
    println!("child default-raise: raise returned (should have died)");
}

/// With SIG_IGN before the library, a SIGBUS sent by a process stays
/// ignored; a fault cannot be ignored and kills by SIGBUS.
fn ignored_case() {
    set_disposition(libc::SIG_IGN, 0);
    let t = Truncated::new();
    let mut dst = vec![0u8; 64];
    // SAFETY: as in own_handler_case.
    assert_eq!(
        unsafe { api::copy_mc(dst.as_mut_ptr(), t.addr.add(t.end()), 64) },
        64
    );
    // SAFETY: raise has no preconditions.
    unsafe { libc::raise(libc::SIGBUS) };
    println!("child ignored: raised SIGBUS was ignored");
    // SAFETY: deliberately faults.
    let v = unsafe { core::ptr::read_volatile(t.addr.add(t.end()) as *const u64) };
    println!("child ignored: read {v} from an unbacked page (should have died)");
}

#[test]
fn process_handler_still_receives_foreign_faults() {
    if !guarded_or_skip("handler chain") {
        return;
    }
    let (status, out) = child("own-handler");
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("child own-handler: survived"), "{out}");
}

#[test]
fn default_action_still_kills_on_foreign_faults() {
    if !guarded_or_skip("handler chain") {
        return;
    }
    let (status, out) = child("default-action");
    assert!(out.contains("library fault recovered"), "{out}");
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}\n{out}");
}

#[test]
fn default_action_still_kills_on_a_sent_sigbus() {
    if !guarded_or_skip("handler chain") {
        return;
    }
    let (status, out) = child("default-raise");
    assert!(out.contains("child default-raise: raising"), "{out}");
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}\n{out}");
}

#[test]
fn ignored_sigbus_stays_ignored_but_faults_still_kill() {
    if !guarded_or_skip("handler chain") {
        return;
    }
    let (status, out) = child("ignored");
    assert!(out.contains("raised SIGBUS was ignored"), "{out}");
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}\n{out}");
}

/// A child that keeps re-faulting makes its test fail within the timeout
/// instead of hanging `make test`: here with a 2-second limit.
#[test]
fn a_child_that_keeps_refaulting_fails_within_the_timeout() {
    if !guarded_or_skip("re-faulting child") {
        return;
    }
    let start = Instant::now();
    let err = child_bounded("refault-forever", Duration::from_secs(2))
        .expect_err("a child that re-faults forever ended by itself");
    assert!(err.contains("did not finish within 2 s"), "{err}");
    assert!(err.contains("child refault-forever: faulting"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}
