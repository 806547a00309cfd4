//! The fault-safe copy follows the engine's snapshot: `PMEM_SYS_NO_AVX2`,
//! set at run time, switches `copy_mc` from the AVX2 routine to the SSE2
//! one (the entry point the snapshot calls is the SSE2 routine's symbol),
//! `pmem_sys_impl()` names the change, and restoring the knob brings the
//! AVX2 routine back. (At start, through the environment, the same is
//! checked by `fault.rs`'s `the_sse2_routine_counts_exactly_too`.)

/// The knobs are process-wide: the tests take turns.
static KNOBS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    fn __pmem_sys_copy_mc_avx2(dst: *mut u8, src: *const u8, n: usize, stream_from: usize)
    -> usize;
    fn __pmem_sys_copy_mc_sse2(dst: *mut u8, src: *const u8, n: usize, stream_from: usize)
    -> usize;
}

#[test]
#[cfg(target_arch = "x86_64")]
fn no_avx2_switches_the_guarded_routine_and_the_name_says_so() {
    use pmem_sys::engine::{self, detect, knobs};
    use pmem_sys::fault::GuardedKind;
    let _turn = KNOBS.lock().unwrap_or_else(|p| p.into_inner());

    let avx2 = __pmem_sys_copy_mc_avx2 as *const () as usize;
    let sse2 = __pmem_sys_copy_mc_sse2 as *const () as usize;
    assert_ne!(avx2, sse2);
    let copies = || {
        let src: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut dst = vec![0u8; 5000];
        // SAFETY: both buffers hold 5000 bytes.
        let left = unsafe { pmem_sys::copy_mc(dst.as_mut_ptr(), src.as_ptr(), 5000) };
        assert_eq!((left, &dst), (0, &src));
    };
    if !detect::features().avx2 {
        println!("SKIPPED: the AVX2 guarded routine (no AVX2 on this CPU)");
        return;
    }
    knobs::set_option("PMEM_SYS_NO_AVX2", Some("0")).unwrap();
    let before = engine::resolved();
    let name_before = pmem_sys::implementation();
    assert_eq!(before.guarded.kind, GuardedKind::Avx2, "{name_before}");
    assert_eq!(before.guarded.entry_address(), avx2, "{name_before}");
    assert!(!name_before.contains("mc_sse2"), "{name_before}");
    copies();

    knobs::set_option("PMEM_SYS_NO_AVX2", Some("1")).unwrap();
    let after = engine::resolved();
    let name_after = pmem_sys::implementation();
    assert_eq!(after.guarded.kind, GuardedKind::Sse2, "{name_after}");
    assert_eq!(
        after.guarded.entry_address(),
        sse2,
        "the snapshot's copy_mc must enter the SSE2 routine"
    );
    // The name says SSE2: the SSE2 copy tier, or an AVX-512 tier with the
    // SSE2 routine named.
    assert!(
        name_after.contains("/sse2+") || name_after.ends_with("+mc_sse2"),
        "{name_after}"
    );
    assert_eq!(
        knobs::get_option("PMEM_SYS_NO_AVX2").as_deref(),
        Some("1"),
        "get_option agrees"
    );
    copies();

    knobs::set_option("PMEM_SYS_NO_AVX2", None).unwrap();
    assert_eq!(engine::resolved().guarded.entry_address(), avx2);
    assert_eq!(pmem_sys::implementation(), name_before);
    println!("{name_before} -> {name_after} -> {name_before}");
}

/// Without non-temporal stores the guarded copy does not stream either.
#[test]
fn no_movnt_stops_the_guarded_copy_streaming() {
    use pmem_sys::engine::{self, knobs};
    let _turn = KNOBS.lock().unwrap_or_else(|p| p.into_inner());
    knobs::set_option("PMEM_SYS_NO_MOVNT", Some("1")).unwrap();
    assert!(!engine::resolved().guarded.streams);
    knobs::set_option("PMEM_SYS_NO_MOVNT", Some("0")).unwrap();
    assert!(engine::resolved().guarded.streams);
    knobs::set_option("PMEM_SYS_NO_MOVNT", None).unwrap();
}
