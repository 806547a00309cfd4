//! Property tests (proptest) of the engine's pure units: the split of a
//! destination into head, whole lines and tail; the selection of a table
//! from (CPU features, knobs); and the parsing of the knobs. Each property
//! is checked on a few thousand generated inputs, shrunk to a minimal one
//! on failure.

use pmem_sys::engine::dispatch::{self, CopyTier, FlushKind};
use pmem_sys::engine::{Features, split};
use pmem_sys::knobs::{KnobError, Knobs, NAMES};
use proptest::prelude::*;

const LINE: usize = 64;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4096,
        // No regression files written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/* ---- split --------------------------------------------------------------- */

proptest! {
    #![proptest_config(config())]

    /// Head, body and tail cover `[d, d + n)` exactly; the head ends on a
    /// line boundary (unless it is the whole range); the body is whole
    /// aligned lines, and every whole aligned line of the range is in it.
    #[test]
    fn split_is_head_whole_lines_tail(d in 0usize..(1 << 48), n in 0usize..(1 << 24)) {
        let (head, body_end) = split(d, n);
        prop_assert!(head <= body_end && body_end <= n);
        prop_assert!(head < LINE);
        prop_assert_eq!((body_end - head) % LINE, 0);
        prop_assert!(n - body_end < LINE, "tail of {} bytes", n - body_end);
        // The head is as long as it takes to reach a line boundary.
        prop_assert_eq!(head, ((LINE - d % LINE) % LINE).min(n));
        if head < n {
            prop_assert_eq!((d + head) % LINE, 0);
        }
        // The body holds every whole aligned line of the range: counted
        // independently from the first boundary at or after d.
        let first = d.next_multiple_of(LINE);
        let whole = if d + n >= first { (d + n - first) / LINE } else { 0 };
        prop_assert_eq!((body_end - head) / LINE, whole);
    }

    /// Small destinations near the top of a line, every length around it.
    #[test]
    fn split_of_short_ranges(d in 0usize..256, n in 0usize..300) {
        let (head, body_end) = split(d, n);
        prop_assert_eq!(head + (body_end - head) + (n - body_end), n);
        prop_assert!(body_end == head || (d + head) % LINE == 0);
    }
}

/* ---- selection ------------------------------------------------------------ */

fn features() -> impl Strategy<Value = Features> {
    proptest::collection::vec(any::<bool>(), 9).prop_map(|b| Features {
        sse2: b[0],
        avx: b[1],
        avx2: b[2],
        avx512f: b[3],
        clflush: b[4],
        clflushopt: b[5],
        clwb: b[6],
        amd: b[7],
        dc_cvap: b[8],
    })
}

const SWITCHES: [&str; 5] = [
    "PMEM_SYS_NO_AVX512F",
    "PMEM_SYS_NO_AVX2",
    "PMEM_SYS_NO_MOVNT",
    "PMEM_SYS_NO_CLWB",
    "PMEM_SYS_NO_CLFLUSHOPT",
];

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        proptest::collection::vec(any::<bool>(), SWITCHES.len()),
        proptest::option::of(any::<usize>()),
        proptest::option::of(prop_oneof![Just("byte"), Just("cache_line"), Just("page")]),
    )
        .prop_map(|(sw, thr, gran)| {
            let mut k = Knobs::default();
            for (name, on) in SWITCHES.iter().zip(sw) {
                k.set(name, Some(if on { "1" } else { "0" })).unwrap();
            }
            k.set(
                "PMEM_SYS_MOVNT_THRESHOLD",
                thr.map(|t| t.to_string()).as_deref(),
            )
            .unwrap();
            k.set("PMEM_SYS_FORCE_GRANULARITY", gran).unwrap();
            k
        })
}

/// The knob that removes a copy tier's rung, if it has one.
fn knob_of_copy(c: CopyTier) -> Option<&'static str> {
    match c {
        CopyTier::Avx512f => Some("PMEM_SYS_NO_AVX512F"),
        CopyTier::Avx2 => Some("PMEM_SYS_NO_AVX2"),
        _ => None,
    }
}

fn knob_of_flush(f: FlushKind) -> Option<&'static str> {
    match f {
        FlushKind::Clwb => Some("PMEM_SYS_NO_CLWB"),
        FlushKind::ClflushOpt => Some("PMEM_SYS_NO_CLFLUSHOPT"),
        _ => None,
    }
}

fn has_copy(f: &Features, c: CopyTier) -> bool {
    match c {
        CopyTier::Avx512f => f.avx512f,
        CopyTier::Avx2 => f.avx2,
        CopyTier::Sse2 => f.sse2,
        CopyTier::Temporal => true,
    }
}

/// Wider is better: the order of the x86_64 ladder.
fn rank(c: CopyTier) -> u8 {
    match c {
        CopyTier::Temporal => 0,
        CopyTier::Sse2 => 1,
        CopyTier::Avx2 => 2,
        CopyTier::Avx512f => 3,
    }
}

proptest! {
    #![proptest_config(config())]

    /// Every selection has a table in this build, and (on a CPU with the
    /// architectural baseline) one the CPU can run.
    #[test]
    fn every_selection_has_a_runnable_table(f in features(), k in knobs()) {
        let (c, fl) = dispatch::select(&f, &k);
        prop_assert!(dispatch::table(c, fl).is_some(), "{:?}+{:?} has no table", c, fl);
        let baseline = if cfg!(target_arch = "x86_64") { f.sse2 && f.clflush } else { true };
        if baseline {
            prop_assert!(dispatch::runnable(c, fl, &f).is_some(), "{:?}+{:?} not runnable", c, fl);
        }
    }

    /// The x86_64 ladder: a tier or flush is chosen only if the CPU has it
    /// and no knob removes it; PMEM_SYS_NO_MOVNT means temporal copies.
    #[test]
    fn x86_64_selection_respects_features_and_knobs(f in features(), k in knobs()) {
        let (c, fl) = dispatch::select_x86_64(&f, &k);
        prop_assert!(has_copy(&f, c), "{:?} chosen without the feature", c);
        if let Some(name) = knob_of_copy(c) {
            prop_assert_eq!(k.get(name), Some("0".to_owned()), "{:?} chosen with {}=1", c, name);
        }
        if k.no_movnt {
            prop_assert_eq!(c, CopyTier::Temporal);
        }
        if let Some(name) = knob_of_flush(fl) {
            prop_assert_eq!(k.get(name), Some("0".to_owned()), "{:?} chosen with {}=1", fl, name);
        }
        match fl {
            FlushKind::Clwb => prop_assert!(f.clwb),
            FlushKind::ClflushOpt => prop_assert!(f.clflushopt && (!f.clwb || k.no_clwb)),
            FlushKind::Clflush => prop_assert!(
                (!f.clwb || k.no_clwb) && (!f.clflushopt || k.no_clflushopt)
            ),
            other => prop_assert!(false, "x86_64 selected {:?}", other),
        }
    }

    /// Each knob removes only its own rung: turning on the knob of a rung
    /// that is not the one selected changes nothing; and the threshold and
    /// granularity knobs never change the table.
    #[test]
    fn a_knob_removes_only_its_own_rung(f in features(), k in knobs(), i in 0usize..SWITCHES.len()) {
        let before = dispatch::select_x86_64(&f, &k);
        let name = SWITCHES[i];
        let mine = knob_of_copy(before.0) == Some(name)
            || knob_of_flush(before.1) == Some(name)
            || (name == "PMEM_SYS_NO_MOVNT" && before.0 != CopyTier::Temporal);
        let mut k2 = k.clone();
        k2.set(name, Some("1")).unwrap();
        let after = dispatch::select_x86_64(&f, &k2);
        if mine {
            prop_assert_ne!(after, before, "{}=1 did not remove {:?}", name, before);
        } else {
            prop_assert_eq!(after, before, "{}=1 changed the selection", name);
        }
        let mut k3 = k.clone();
        k3.set("PMEM_SYS_MOVNT_THRESHOLD", Some("12345")).unwrap();
        k3.set("PMEM_SYS_FORCE_GRANULARITY", Some("page")).unwrap();
        prop_assert_eq!(dispatch::select_x86_64(&f, &k3), before);
    }

    /// More CPU features never select a narrower copy tier.
    #[test]
    fn more_features_never_select_a_narrower_tier(f in features(), k in knobs(), i in 0usize..4) {
        let mut g = f;
        match i {
            0 => g.sse2 = true,
            1 => { g.avx = true; g.avx2 = true }
            2 => g.avx512f = true,
            _ => g.clwb = true,
        }
        let (c1, _) = dispatch::select_x86_64(&f, &k);
        let (c2, _) = dispatch::select_x86_64(&g, &k);
        prop_assert!(rank(c2) >= rank(c1), "{:?} -> {:?}", c1, c2);
    }
}

/* ---- knob parsing ------------------------------------------------------- */

proptest! {
    #![proptest_config(config())]

    /// Any value for any known knob is accepted or refused as malformed,
    /// never as an unknown name; a refused value changes nothing.
    #[test]
    fn a_malformed_value_changes_nothing(
        k in knobs(),
        i in 0usize..NAMES.len(),
        v in proptest::option::of(".{0,24}"),
    ) {
        let name = NAMES[i];
        let mut k2 = k.clone();
        match k2.set(name, v.as_deref()) {
            Ok(()) => {}
            Err(KnobError::Malformed(why)) => {
                prop_assert!(!why.is_empty());
                prop_assert_eq!(&k2, &k, "a refused {}={:?} changed the knobs", name, v);
            }
            Err(e) => prop_assert!(false, "{}: {:?}", name, e),
        }
    }

    /// Names that are not knobs are refused as such, and change nothing.
    #[test]
    fn unknown_names_are_refused(k in knobs(), name in "[A-Z_]{0,30}", v in ".{0,8}") {
        prop_assume!(!NAMES.contains(&name.as_str()));
        let mut k2 = k.clone();
        prop_assert_eq!(k2.set(&name, Some(&v)), Err(KnobError::UnknownName));
        prop_assert_eq!(k2, k);
        prop_assert_eq!(Knobs::default().get(&name), None);
    }

    /// Switches take 1, 0 or empty, with any surrounding blanks (values are
    /// trimmed), and read back as 1 or 0; anything else is malformed.
    #[test]
    fn switches_parse_and_read_back(
        i in 0usize..SWITCHES.len(),
        v in prop_oneof![Just("1"), Just("0"), Just("")],
        pre in "[ \t]{0,3}",
        post in "[ \t]{0,3}",
        junk in "[^01\\s]{1,4}",
    ) {
        let name = SWITCHES[i];
        let mut k = Knobs::default();
        k.set(name, Some(&format!("{pre}{v}{post}"))).unwrap();
        prop_assert_eq!(k.get(name).unwrap(), if v == "1" { "1" } else { "0" });
        let before = k.clone();
        prop_assert!(matches!(k.set(name, Some(&junk)), Err(KnobError::Malformed(_))));
        prop_assert_eq!(&k, &before);
        k.set(name, None).unwrap();
        prop_assert_eq!(k.get(name).unwrap(), "0");
    }

    /// The threshold takes any byte count (an optional `+` included, as
    /// Rust's integer parsing has it), and nothing that is not one.
    #[test]
    fn threshold_takes_byte_counts_only(n in any::<usize>(), junk in "[0-9]{0,3}[^0-9+\\s][0-9]{0,3}") {
        let mut k = Knobs::default();
        k.set("PMEM_SYS_MOVNT_THRESHOLD", Some(&format!(" {n} "))).unwrap();
        prop_assert_eq!(k.movnt_threshold, Some(n));
        prop_assert!(k.set("PMEM_SYS_MOVNT_THRESHOLD", Some(&junk)).is_err());
        prop_assert_eq!(k.movnt_threshold, Some(n));
        k.set("PMEM_SYS_MOVNT_THRESHOLD", Some("")).unwrap();
        prop_assert_eq!(k.movnt_threshold, None);
    }

    /// Reading the environment: every well-formed value is applied as
    /// `set` would apply it, and each malformed one is reported once,
    /// naming its knob, and skipped.
    #[test]
    fn from_lookup_applies_the_good_and_reports_the_bad(
        vals in proptest::collection::vec(proptest::option::of(prop_oneof![
            Just("1".to_owned()), Just("0".to_owned()), Just("page".to_owned()),
            Just("/sys".to_owned()), Just("4096".to_owned()), ".{0,6}",
        ]), NAMES.len()),
    ) {
        let lookup = |name: &str| {
            NAMES.iter().position(|n| *n == name).and_then(|i| vals[i].clone())
        };
        let (k, bad) = Knobs::from_lookup(lookup);
        let mut expect = Knobs::default();
        let mut refused = Vec::new();
        for (name, v) in NAMES.iter().zip(&vals) {
            if let Some(v) = v
                && expect.set(name, Some(v)).is_err() {
                    refused.push(*name);
                }
        }
        prop_assert_eq!(k, expect);
        prop_assert_eq!(bad.len(), refused.len(), "{:?}", bad);
        for (msg, name) in bad.iter().zip(&refused) {
            prop_assert!(msg.starts_with(name), "{} does not name {}", msg, name);
        }
    }
}
