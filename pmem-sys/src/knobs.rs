//! What the user forced: the `PMEM_SYS_*` settings, read once from the
//! environment and changeable at run time (`crate::engine::set_option`).
//!
//! Plain data: parsing, the environment, the values in force and their
//! history for [`report`]. This module knows nothing of the engine: the
//! engine selects from the knobs while holding their lock (`read`,
//! `update`), so a selection always matches the knobs it was made from.
//!
//! Every `PMEM_SYS_NO_*` knob has one polarity: `1` disables that feature,
//! `0` (or unset) leaves it to the CPU. A malformed value is ignored and
//! kept in [`report`], never a crash.

use crate::granularity::Granularity;
use std::sync::Mutex;

/// The knobs in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// `PMEM_SYS_NO_AVX512F=1`: no AVX-512F copies.
    pub no_avx512f: bool,
    /// `PMEM_SYS_NO_AVX2=1`: no AVX2 copies.
    pub no_avx2: bool,
    /// `PMEM_SYS_NO_MOVNT=1`: no non-temporal stores at all (temporal copies).
    pub no_movnt: bool,
    /// `PMEM_SYS_NO_CLWB=1`: do not write back with CLWB.
    pub no_clwb: bool,
    /// `PMEM_SYS_NO_CLFLUSHOPT=1`: do not write back with CLFLUSHOPT.
    pub no_clflushopt: bool,
    /// `PMEM_SYS_MOVNT_THRESHOLD=<bytes>`: overrides the CPU's default.
    pub movnt_threshold: Option<usize>,
    /// `PMEM_SYS_FORCE_GRANULARITY=byte|cache_line|page`: for new mappings.
    pub force_granularity: Option<Granularity>,
    /// `PMEM_SYS_SYSFS_ROOT`: where sysfs is (default `/sys`).
    pub sysfs_root: Option<String>,
}

/// Every knob's name, in the order they are reported.
pub const NAMES: [&str; 8] = [
    "PMEM_SYS_NO_AVX512F",
    "PMEM_SYS_NO_AVX2",
    "PMEM_SYS_NO_MOVNT",
    "PMEM_SYS_NO_CLWB",
    "PMEM_SYS_NO_CLFLUSHOPT",
    "PMEM_SYS_MOVNT_THRESHOLD",
    "PMEM_SYS_FORCE_GRANULARITY",
    "PMEM_SYS_SYSFS_ROOT",
];

/// Why a knob was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnobError {
    /// Not one of [`NAMES`].
    UnknownName,
    /// The value does not parse; the text says what was expected.
    Malformed(&'static str),
}

fn parse_switch(v: &str) -> Result<bool, KnobError> {
    match v {
        "1" => Ok(true),
        "0" | "" => Ok(false),
        _ => Err(KnobError::Malformed("expected 1 (disable) or 0 (enable)")),
    }
}

impl Knobs {
    /// Sets `name` from its textual `value`; `None` restores the default.
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), KnobError> {
        let v = value.map(str::trim);
        let switch = |v: Option<&str>| v.map_or(Ok(false), parse_switch);
        match name {
            "PMEM_SYS_NO_AVX512F" => self.no_avx512f = switch(v)?,
            "PMEM_SYS_NO_AVX2" => self.no_avx2 = switch(v)?,
            "PMEM_SYS_NO_MOVNT" => self.no_movnt = switch(v)?,
            "PMEM_SYS_NO_CLWB" => self.no_clwb = switch(v)?,
            "PMEM_SYS_NO_CLFLUSHOPT" => self.no_clflushopt = switch(v)?,
            "PMEM_SYS_MOVNT_THRESHOLD" => {
                self.movnt_threshold = match v {
                    None | Some("") => None,
                    Some(s) => Some(s.parse::<usize>().map_err(|_| {
                        KnobError::Malformed("expected a byte count (a non-negative integer)")
                    })?),
                }
            }
            "PMEM_SYS_FORCE_GRANULARITY" => {
                self.force_granularity = match v {
                    None | Some("") => None,
                    Some(s) => Some(
                        Granularity::parse(s)
                            .ok_or(KnobError::Malformed("expected byte, cache_line or page"))?,
                    ),
                }
            }
            "PMEM_SYS_SYSFS_ROOT" => {
                self.sysfs_root = match v {
                    None | Some("") => None,
                    Some(s) if s.starts_with('/') => Some(s.to_owned()),
                    Some(_) => return Err(KnobError::Malformed("expected an absolute path")),
                }
            }
            _ => return Err(KnobError::UnknownName),
        }
        Ok(())
    }

    /// The value of `name` as set, written as in the environment; `None`
    /// for an unknown name. Unset string knobs and an unset threshold read
    /// as "" (`crate::engine::get_option` reads the threshold in force).
    pub fn get(&self, name: &str) -> Option<String> {
        let b = |on: bool| if on { "1" } else { "0" }.to_owned();
        Some(match name {
            "PMEM_SYS_NO_AVX512F" => b(self.no_avx512f),
            "PMEM_SYS_NO_AVX2" => b(self.no_avx2),
            "PMEM_SYS_NO_MOVNT" => b(self.no_movnt),
            "PMEM_SYS_NO_CLWB" => b(self.no_clwb),
            "PMEM_SYS_NO_CLFLUSHOPT" => b(self.no_clflushopt),
            "PMEM_SYS_MOVNT_THRESHOLD" => self
                .movnt_threshold
                .map_or(String::new(), |t| t.to_string()),
            "PMEM_SYS_FORCE_GRANULARITY" => self
                .force_granularity
                .map_or(String::new(), |g| g.name().to_owned()),
            "PMEM_SYS_SYSFS_ROOT" => self.sysfs_root().to_owned(),
            _ => return None,
        })
    }

    /// Where sysfs is read from.
    pub fn sysfs_root(&self) -> &str {
        self.sysfs_root.as_deref().unwrap_or("/sys")
    }

    /// Knobs from `lookup` (the environment, in production); malformed
    /// values are skipped and described in the second result.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Knobs, Vec<String>) {
        let mut k = Knobs::default();
        let mut bad = Vec::new();
        for name in NAMES {
            if let Some(v) = lookup(name)
                && let Err(KnobError::Malformed(why)) = k.set(name, Some(&v))
            {
                bad.push(format!("{name}={v:?} ignored: {why}"));
            }
        }
        (k, bad)
    }
}

struct State {
    knobs: Knobs,
    /// Environment values that were ignored, with the reason.
    malformed: Vec<String>,
    /// Names set through [`set_option`] since start.
    set_at_run_time: Vec<&'static str>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    // A poisoned lock only means a panic elsewhere while holding it; the
    // knobs themselves are always in a consistent state.
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(|| {
        let (knobs, malformed) = Knobs::from_lookup(|n| std::env::var(n).ok());
        State {
            knobs,
            malformed,
            set_at_run_time: Vec::new(),
        }
    });
    f(state)
}

/// A copy of the knobs in force (from the environment on first use).
pub fn current() -> Knobs {
    with_state(|s| s.knobs.clone())
}

/// Runs `f` on the knobs in force while holding their lock: a selection
/// made inside cannot race with [`update`].
pub(crate) fn read<T>(f: impl FnOnce(&Knobs) -> T) -> T {
    with_state(|s| f(&s.knobs))
}

/// Sets `name` from `value` (as if `name=value` had been in the
/// environment; `None` restores the default) and hands the new knobs to
/// `apply`, all under the knobs' lock. The knobs change only if both the
/// value parses and `apply` succeeds.
pub(crate) fn update(
    name: &str,
    value: Option<&str>,
    apply: impl FnOnce(&Knobs) -> Result<(), KnobError>,
) -> Result<(), KnobError> {
    with_state(|s| {
        let mut k = s.knobs.clone();
        k.set(name, value)?;
        apply(&k)?;
        s.knobs = k;
        let static_name = NAMES.iter().find(|n| **n == name).copied().unwrap_or("?");
        if !s.set_at_run_time.contains(&static_name) {
            s.set_at_run_time.push(static_name);
        }
        s.malformed.retain(|m| !m.starts_with(&format!("{name}=")));
        Ok(())
    })
}

/// One line per knob that differs from its default, then one per ignored
/// environment value. Empty when nothing is forced.
pub fn report() -> String {
    with_state(|s| {
        let default = Knobs::default();
        let mut lines = Vec::new();
        for name in NAMES {
            let (ours, def) = (
                s.knobs.get(name).unwrap_or_default(),
                default.get(name).unwrap_or_default(),
            );
            if ours != def {
                let how = if s.set_at_run_time.contains(&name) {
                    "set at run time"
                } else {
                    "from the environment"
                };
                lines.push(format!("{name}={ours} ({how})"));
            }
        }
        lines.extend(s.malformed.iter().cloned());
        lines.join("\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_have_one_polarity() {
        let mut k = Knobs::default();
        k.set("PMEM_SYS_NO_AVX2", Some("1")).unwrap();
        assert!(k.no_avx2);
        k.set("PMEM_SYS_NO_AVX2", Some("0")).unwrap();
        assert!(!k.no_avx2);
        k.set("PMEM_SYS_NO_AVX2", Some("1")).unwrap();
        k.set("PMEM_SYS_NO_AVX2", None).unwrap();
        assert!(!k.no_avx2);
        for bad in ["yes", "2", "true", "-1", "01"] {
            assert!(
                matches!(
                    k.set("PMEM_SYS_NO_CLWB", Some(bad)),
                    Err(KnobError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        let mut k = Knobs::default();
        assert_eq!(
            k.set("PMEM_SYS_NO_AVX3", Some("1")),
            Err(KnobError::UnknownName)
        );
        assert_eq!(k.get("PMEM_NO_MOVNT"), None);
    }

    #[test]
    fn threshold_granularity_and_sysfs_parse() {
        let mut k = Knobs::default();
        k.set("PMEM_SYS_MOVNT_THRESHOLD", Some("4096")).unwrap();
        assert_eq!(k.movnt_threshold, Some(4096));
        assert!(k.set("PMEM_SYS_MOVNT_THRESHOLD", Some("4k")).is_err());
        assert_eq!(
            k.movnt_threshold,
            Some(4096),
            "a refused value changes nothing"
        );
        k.set("PMEM_SYS_FORCE_GRANULARITY", Some("cache_line"))
            .unwrap();
        assert_eq!(k.force_granularity, Some(Granularity::CacheLine));
        assert!(k.set("PMEM_SYS_FORCE_GRANULARITY", Some("line")).is_err());
        assert!(k.set("PMEM_SYS_SYSFS_ROOT", Some("relative/sys")).is_err());
        k.set("PMEM_SYS_SYSFS_ROOT", Some("/tmp/fake")).unwrap();
        assert_eq!(k.sysfs_root(), "/tmp/fake");
    }

    #[test]
    fn malformed_environment_values_are_reported_and_ignored() {
        let env = |n: &str| match n {
            "PMEM_SYS_NO_AVX2" => Some("1".to_owned()),
            "PMEM_SYS_NO_CLWB" => Some("yes".to_owned()),
            "PMEM_SYS_MOVNT_THRESHOLD" => Some("lots".to_owned()),
            _ => None,
        };
        let (k, bad) = Knobs::from_lookup(env);
        assert!(k.no_avx2 && !k.no_clwb && k.movnt_threshold.is_none());
        assert_eq!(bad.len(), 2);
        assert!(
            bad[0].starts_with("PMEM_SYS_NO_CLWB=\"yes\" ignored"),
            "{}",
            bad[0]
        );
    }
}
