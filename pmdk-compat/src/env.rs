//! PMDK's environment variables, read once as PMDK reads them and turned
//! into the engine's knobs (`PMEM_SYS_*`) or into this layer's own
//! switches. A `PMEM_SYS_*` knob set in the environment wins over the PMDK
//! variable that maps to it.
//!
//! | PMDK variable | as PMDK reads it | here |
//! |---|---|---|
//! | `PMEM_IS_PMEM_FORCE` | `atoi`: 0 never, 1 always, else detect | the same |
//! | `PMEM_NO_CLWB` | `"1"` | `PMEM_SYS_NO_CLWB=1` |
//! | `PMEM_NO_CLFLUSHOPT` | `"1"` | `PMEM_SYS_NO_CLFLUSHOPT=1` |
//! | `PMEM_NO_MOVNT` | `"1"` | `PMEM_SYS_NO_MOVNT=1` |
//! | `PMEM_MOVNT_THRESHOLD` | `atoll`, ignored when negative | `PMEM_SYS_MOVNT_THRESHOLD` |
//! | `PMEM_AVX` | `"0"` disables the AVX copies | `PMEM_SYS_NO_AVX2=1` |
//! | `PMEM_AVX512F` | `"0"` disables the AVX-512F copies | `PMEM_SYS_NO_AVX512F=1` |
//! | `PMEM_NO_FLUSH` | `"1"` never flush, `"0"` always flush | `1`: stores and `pmem_flush` skip write-back everywhere; `0`: `PMEM_SYS_FORCE_GRANULARITY=cache_line` for this layer's mappings (eADR mappings are flushed too) |
//! | `PMEM_NO_GENERIC_MEMCPY` | only used on CPUs without PMDK's own copies | accepted and ignored: the engine has a copy for every CPU |
//! | `PMEM_MMAP_HINT` | an address to map near (debugging) | accepted and ignored: mappings are placed at a huge-page-aligned address the kernel chooses |

/// What the environment asks of this layer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Engine knobs to set, `(name, value)`.
    pub knobs: Vec<(&'static str, String)>,
    /// `PMEM_IS_PMEM_FORCE`: `Some(false)` never, `Some(true)` always.
    pub is_pmem_force: Option<bool>,
    /// `PMEM_NO_FLUSH=1`: never write back (the platform flushes caches).
    pub no_flush: bool,
}

/// C's `atoll`: optional leading white space and sign, then digits up to
/// the first non-digit; 0 when there are none (saturating instead of
/// overflowing).
pub fn atoll(s: &str) -> i64 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
    }
    v
}

/// C's `atoi` (on the values that matter here, `atoll` narrowed).
pub fn atoi(s: &str) -> i32 {
    atoll(s).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The plan for an environment given by `lookup`.
pub fn plan(lookup: impl Fn(&str) -> Option<String>) -> Plan {
    let mut p = Plan::default();
    let mut knob = |ours: &'static str, value: String| {
        if lookup(ours).is_none() {
            p.knobs.push((ours, value));
        }
    };
    let is = |name: &str, v: &str| lookup(name).as_deref() == Some(v);
    if is("PMEM_NO_CLWB", "1") {
        knob("PMEM_SYS_NO_CLWB", "1".into());
    }
    if is("PMEM_NO_CLFLUSHOPT", "1") {
        knob("PMEM_SYS_NO_CLFLUSHOPT", "1".into());
    }
    if is("PMEM_NO_MOVNT", "1") {
        knob("PMEM_SYS_NO_MOVNT", "1".into());
    }
    if is("PMEM_AVX", "0") {
        knob("PMEM_SYS_NO_AVX2", "1".into());
    }
    if is("PMEM_AVX512F", "0") {
        knob("PMEM_SYS_NO_AVX512F", "1".into());
    }
    if let Some(t) = lookup("PMEM_MOVNT_THRESHOLD") {
        let t = atoll(&t);
        if t >= 0 {
            knob("PMEM_SYS_MOVNT_THRESHOLD", t.to_string());
        }
    }
    if is("PMEM_NO_FLUSH", "0") {
        knob("PMEM_SYS_FORCE_GRANULARITY", "cache_line".into());
    }
    p.no_flush = is("PMEM_NO_FLUSH", "1");
    p.is_pmem_force = lookup("PMEM_IS_PMEM_FORCE").and_then(|v| match atoi(&v) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    });
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn atoll_reads_as_c_does() {
        for (s, v) in [
            ("0", 0),
            ("1", 1),
            (" 12", 12),
            ("\t+7", 7),
            ("-3", -3),
            ("4k", 4),
            ("k4", 0),
            ("", 0),
            ("01", 1),
            ("99999999999999999999999", i64::MAX),
            ("-99999999999999999999999", i64::MIN),
        ] {
            assert_eq!(atoll(s), v, "{s:?}");
        }
        assert_eq!(atoi("99999999999"), i32::MAX);
    }

    #[test]
    fn is_pmem_force_follows_atoi() {
        let f = |v: &str| plan(env(&[("PMEM_IS_PMEM_FORCE", v)])).is_pmem_force;
        assert_eq!(f("1"), Some(true));
        assert_eq!(f("01"), Some(true));
        assert_eq!(f("1yes"), Some(true));
        assert_eq!(f("0"), Some(false));
        assert_eq!(f("no"), Some(false), "atoi(\"no\") is 0");
        assert_eq!(f(""), Some(false));
        assert_eq!(f("2"), None, "other values leave detection on");
        assert_eq!(f("-1"), None);
        assert_eq!(plan(env(&[])).is_pmem_force, None);
    }

    #[test]
    fn switches_map_to_knobs_only_with_pmdk_values() {
        let p = plan(env(&[
            ("PMEM_NO_CLWB", "1"),
            ("PMEM_NO_CLFLUSHOPT", "yes"), // PMDK compares with "1"
            ("PMEM_NO_MOVNT", "1"),
            ("PMEM_AVX", "0"),
            ("PMEM_AVX512F", "1"), // only "0" disables
            ("PMEM_MOVNT_THRESHOLD", "4096x"),
        ]));
        assert_eq!(
            p.knobs,
            vec![
                ("PMEM_SYS_NO_CLWB", "1".to_string()),
                ("PMEM_SYS_NO_MOVNT", "1".to_string()),
                ("PMEM_SYS_NO_AVX2", "1".to_string()),
                ("PMEM_SYS_MOVNT_THRESHOLD", "4096".to_string()),
            ]
        );
        assert!(!p.no_flush);
        let p = plan(env(&[("PMEM_AVX512F", "0"), ("PMEM_NO_CLFLUSHOPT", "1")]));
        assert_eq!(
            p.knobs,
            vec![
                ("PMEM_SYS_NO_CLFLUSHOPT", "1".to_string()),
                ("PMEM_SYS_NO_AVX512F", "1".to_string()),
            ]
        );
    }

    #[test]
    fn negative_threshold_is_ignored() {
        assert!(
            plan(env(&[("PMEM_MOVNT_THRESHOLD", "-1")]))
                .knobs
                .is_empty()
        );
        assert_eq!(
            plan(env(&[("PMEM_MOVNT_THRESHOLD", "junk")])).knobs,
            vec![("PMEM_SYS_MOVNT_THRESHOLD", "0".to_string())],
            "atoll(junk) is 0, as PMDK reads it"
        );
    }

    #[test]
    fn pmem_sys_knobs_win() {
        let p = plan(env(&[
            ("PMEM_NO_CLWB", "1"),
            ("PMEM_SYS_NO_CLWB", "0"),
            ("PMEM_MOVNT_THRESHOLD", "64"),
            ("PMEM_SYS_MOVNT_THRESHOLD", "128"),
        ]));
        assert!(p.knobs.is_empty(), "{:?}", p.knobs);
    }

    #[test]
    fn no_flush() {
        assert!(plan(env(&[("PMEM_NO_FLUSH", "1")])).no_flush);
        let p = plan(env(&[("PMEM_NO_FLUSH", "0")]));
        assert!(!p.no_flush);
        assert_eq!(
            p.knobs,
            vec![("PMEM_SYS_FORCE_GRANULARITY", "cache_line".to_string())]
        );
        let p = plan(env(&[("PMEM_NO_FLUSH", "true")]));
        assert!(
            !p.no_flush && p.knobs.is_empty(),
            "only 0 and 1 mean anything"
        );
    }
}
