//! Each knob forced in its own process (knobs are read from the
//! environment once): the selected table is the one the ladder predicts
//! from /proc/cpuinfo, and copies through the public API are correct.

use std::process::Command;

fn cpu_flags() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
    let line = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .expect("flags line");
    line.split_whitespace().map(str::to_owned).collect()
}

/// The table name the knobs should give on this CPU, worked out from
/// /proc/cpuinfo independently of the library's own detection. The
/// fault-safe copy is AVX2 for the AVX2 and AVX-512 tiers unless
/// `PMEM_SYS_NO_AVX2=1`; only an AVX-512 tier with SSE2's routine has it
/// named (`+mc_sse2`).
fn expected(env: &[(&str, &str)]) -> String {
    let flags = cpu_flags();
    let has = |f: &str| flags.iter().any(|x| x == f);
    let set = |k: &str| env.iter().any(|(n, v)| *n == k && *v == "1");
    let copy = if set("PMEM_SYS_NO_MOVNT") {
        "temporal"
    } else if has("avx512f") && !set("PMEM_SYS_NO_AVX512F") {
        "avx512f"
    } else if has("avx2") && !set("PMEM_SYS_NO_AVX2") {
        "avx2"
    } else {
        "sse2"
    };
    let flush = if has("clwb") && !set("PMEM_SYS_NO_CLWB") {
        "clwb"
    } else if has("clflushopt") && !set("PMEM_SYS_NO_CLFLUSHOPT") {
        "clflushopt"
    } else {
        "clflush"
    };
    let mc = if copy == "avx512f" && set("PMEM_SYS_NO_AVX2") {
        "+mc_sse2"
    } else {
        ""
    };
    format!("x86_64/{copy}+{flush}{mc}")
}

#[test]
#[cfg(target_arch = "x86_64")]
fn each_knob_in_its_own_process() {
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("PMEM_SYS_NO_AVX512F", "1")],
        vec![("PMEM_SYS_NO_AVX2", "1")],
        vec![("PMEM_SYS_NO_AVX512F", "1"), ("PMEM_SYS_NO_AVX2", "1")],
        vec![("PMEM_SYS_NO_MOVNT", "1")],
        vec![("PMEM_SYS_NO_CLWB", "1")],
        vec![("PMEM_SYS_NO_CLFLUSHOPT", "1")],
        vec![("PMEM_SYS_NO_CLWB", "1"), ("PMEM_SYS_NO_CLFLUSHOPT", "1")],
        vec![("PMEM_SYS_NO_AVX2", "0")],
        vec![("PMEM_SYS_MOVNT_THRESHOLD", "0")],
        vec![("PMEM_SYS_MOVNT_THRESHOLD", "1000000")],
        // Malformed values are ignored (and reported), never fatal.
        vec![("PMEM_SYS_NO_AVX2", "yes")],
        vec![("PMEM_SYS_MOVNT_THRESHOLD", "-5")],
        vec![("PMEM_SYS_FORCE_GRANULARITY", "sometimes")],
    ];
    let exe = std::env::current_exe().unwrap();
    for case in cases {
        let want = expected(&case);
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--ignored",
            "--exact",
            "child_process_checks",
            "--nocapture",
            "--test-threads=1",
        ]);
        for (k, _) in std::env::vars() {
            if k.starts_with("PMEM_SYS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(case.iter().copied())
            .env("PMEM_SYS_TEST_EXPECT", &want);
        let out = cmd.output().expect("run the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{case:?}: child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("child ok: {want}")),
            "{case:?}: {stdout}"
        );
        println!("{case:?} -> {want}");
    }
}

/// Runs in a child process with the knobs in its environment.
#[test]
#[ignore = "run by each_knob_in_its_own_process in a child process"]
fn child_process_checks() {
    let want =
        std::env::var("PMEM_SYS_TEST_EXPECT").expect("PMEM_SYS_TEST_EXPECT is set by the parent");
    assert_eq!(pmem_sys::implementation(), want);

    // Threshold in force.
    match std::env::var("PMEM_SYS_MOVNT_THRESHOLD")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(t) => assert_eq!(pmem_sys::engine::movnt_threshold(), t),
        None => assert!(pmem_sys::engine::movnt_threshold() > 0),
    }
    // Malformed values are reported by name.
    for k in [
        "PMEM_SYS_NO_AVX2",
        "PMEM_SYS_MOVNT_THRESHOLD",
        "PMEM_SYS_FORCE_GRANULARITY",
    ] {
        if let Ok(v) = std::env::var(k) {
            let mut probe = pmem_sys::engine::Knobs::default();
            if probe.set(k, Some(&v)).is_err() {
                let report = pmem_sys::engine::knobs::report();
                assert!(
                    report.contains(&format!("{k}=")) && report.contains("ignored"),
                    "{report}"
                );
            }
        }
    }

    // Correctness through the public API, on ordinary memory.
    let src: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut dst = vec![0u8; 70_200];
    for len in (0..=2048).chain([4095, 4096, 65_537]) {
        for off in [0usize, 1, 8, 63] {
            dst.fill(0xEE);
            // SAFETY: off + len <= dst.len() and len <= src.len().
            unsafe { pmem_sys::memcpy_to_pmem(dst.as_mut_ptr().add(off), src.as_ptr(), len) };
            pmem_sys::wmb_pmem();
            assert_eq!(
                &dst[off..off + len],
                &src[..len],
                "copy len {len} off {off}"
            );
            assert!(
                dst[..off]
                    .iter()
                    .chain(&dst[off + len..])
                    .all(|&b| b == 0xEE)
            );
            // SAFETY: as above.
            unsafe { pmem_sys::memset_pmem(dst.as_mut_ptr().add(off), 0x11, len) };
            assert!(dst[off..off + len].iter().all(|&b| b == 0x11));
            // SAFETY: overlapping move inside dst.
            unsafe {
                pmem_sys::memmove_to_pmem(
                    dst.as_mut_ptr().add(off + 3),
                    dst.as_ptr().add(off),
                    len.min(1000),
                )
            };
        }
    }

    // A run-time change re-selects atomically, and restoring brings the
    // original table back.
    pmem_sys::engine::knobs::set_option("PMEM_SYS_NO_MOVNT", Some("1")).unwrap();
    assert!(pmem_sys::implementation().contains("/temporal+"));
    pmem_sys::engine::knobs::set_option(
        "PMEM_SYS_NO_MOVNT",
        std::env::var("PMEM_SYS_NO_MOVNT")
            .ok()
            .as_deref()
            .filter(|v| *v == "1" || *v == "0"),
    )
    .unwrap();
    assert_eq!(pmem_sys::implementation(), want);
    println!("child ok: {want}");
}
