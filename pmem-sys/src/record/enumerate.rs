//! Crash points and the images checked at each.
//!
//! [`check_trace`] replays a trace through the [`Model`]; after every
//! event it lists the uncertain units and picks the images to check: all
//! of them when there are at most `max_images`, otherwise the
//! *program-order prefixes* (every unit holds the newest content written
//! up to some event, for each event) plus `max_images` random images drawn
//! from a generator seeded with the seed and the crash point, so a run is
//! reproducible from its seed. An image already checked (same bytes, at
//! any crash point) is not checked again.
//!
//! The generator is SplitMix64, written out here rather than taken from a
//! crate so that a seed printed by one version reproduces the same images
//! with every later one.

use super::format::{ReadError, Reader, Record};
use super::model::{Model, ModelError, Uncertain};
use std::collections::HashSet;
use std::io::Read;

/// How many images to check.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// At most this many images per crash point, plus the program-order
    /// prefixes when sampling; every image when there are no more.
    pub max_images: usize,
    /// The sampling seed.
    pub seed: u64,
    /// Check only this crash point (and, with `choice`, only that image).
    pub only_point: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_images: 4096,
            seed: 0,
            only_point: None,
        }
    }
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Crash points visited.
    pub crash_points: usize,
    /// Crash points with at least one uncertain unit.
    pub uncertain_points: usize,
    /// Crash points where every image was checked.
    pub exhaustive_points: usize,
    /// Crash points where images were sampled.
    pub sampled_points: usize,
    /// Images the check ran on.
    pub images_checked: usize,
    /// Images skipped because the same bytes were checked already.
    pub duplicates: usize,
    /// The most uncertain units at one crash point.
    pub max_uncertain: usize,
}

/// One uncertain unit of a failing image, described.
#[derive(Clone, Debug)]
pub struct UnitReport {
    /// `FILE [a, b)`.
    pub unit: String,
    /// True when the image holds the unit's newest content.
    pub durable: bool,
    /// What the image holds and what it could have held.
    pub text: String,
}

/// A failing image.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The crash point: the number of events before the power failure.
    pub point: usize,
    /// The event the crash follows.
    pub after: String,
    /// The event that would have come next, if any.
    pub before: Option<String>,
    /// One entry per uncertain unit.
    pub units: Vec<UnitReport>,
    /// `POINT:c1,c2,...`, the image's name for `--image`.
    pub spec: String,
    /// What the check said (its output, or the exception).
    pub detail: String,
}

impl Failure {
    /// The multi-line report.
    pub fn render(&self) -> String {
        let mut s = format!("crash point {}: after {}\n", self.point, self.after);
        if let Some(b) = &self.before {
            s.push_str(&format!("  (before {b})\n"));
        }
        if self.units.is_empty() {
            s.push_str("  no uncertain unit: this image is what the program left durable\n");
        }
        for u in &self.units {
            s.push_str(&format!(
                "  {} {}: {}\n",
                if u.durable {
                    "durable    "
                } else {
                    "NOT durable"
                },
                u.unit,
                u.text
            ));
        }
        s.push_str(&format!("  image: {}\n", self.spec));
        if !self.detail.is_empty() {
            s.push_str("  check said:\n");
            for l in self.detail.trim_end().lines() {
                s.push_str(&format!("    {l}\n"));
            }
        }
        s
    }
}

/// Why checking stopped without a verdict.
#[derive(Debug)]
pub enum CheckError {
    /// The trace could not be read.
    Read(ReadError),
    /// A record the model refused.
    Model(ModelError),
    /// The check itself could not run (not: it said "inconsistent").
    Check(String),
    /// `--image` named a crash point or choice the trace does not have.
    NoSuchImage(String),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Read(e) => write!(f, "{e}"),
            CheckError::Model(e) => write!(f, "trace: {e}"),
            CheckError::Check(e) => write!(f, "running the check: {e}"),
            CheckError::NoSuchImage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CheckError {}

/// The verdict.
#[derive(Debug)]
pub struct Outcome {
    /// The counts.
    pub stats: Stats,
    /// The first failing image, if one failed.
    pub failure: Option<Failure>,
    /// True when the trace's last record was cut short.
    pub truncated: bool,
    /// The model at the end (files, for naming images).
    pub model: Model,
}

/// A parsed `POINT:c1,c2,...` image name.
pub fn parse_spec(s: &str) -> Option<(usize, Vec<usize>)> {
    let (p, c) = s.split_once(':')?;
    let point = p.trim().parse().ok()?;
    let choice = if c.trim().is_empty() {
        Vec::new()
    } else {
        c.split(',')
            .map(|x| x.trim().parse().ok())
            .collect::<Option<Vec<usize>>>()?
    };
    Some((point, choice))
}

/// The SplitMix64 step.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The images to check at one crash point, and whether that is all of
/// them. Exhaustive lists count in mixed radix, first unit fastest.
pub fn plan(
    model: &Model,
    un: &[Uncertain],
    max_images: usize,
    seed: u64,
    point: usize,
) -> (Vec<Vec<usize>>, bool) {
    let counts: Vec<usize> = un.iter().map(|u| u.candidates.len()).collect();
    let total = counts.iter().try_fold(1usize, |a, c| a.checked_mul(*c));
    if let Some(total) = total.filter(|t| *t <= max_images.max(1)) {
        let mut out = Vec::with_capacity(total);
        let mut c = vec![0usize; counts.len()];
        for _ in 0..total {
            out.push(c.clone());
            for (i, n) in counts.iter().enumerate() {
                c[i] += 1;
                if c[i] < *n {
                    break;
                }
                c[i] = 0;
            }
        }
        return (out, true);
    }
    // Program-order prefixes: for each event that wrote a candidate, every
    // unit holds its newest candidate no later than that event.
    let mut cuts: Vec<usize> = un
        .iter()
        .flat_map(|u| (0..u.candidates.len()).map(move |i| (u, i)))
        .map(|(u, i)| model.version(u, i).event)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Vec<usize>> = cuts
        .iter()
        .map(|&t| {
            un.iter()
                .map(|u| {
                    (0..u.candidates.len())
                        .rev()
                        .find(|&i| model.version(u, i).event <= t)
                        .unwrap_or(0)
                })
                .collect()
        })
        .collect();
    let mut state = seed ^ (point as u64).wrapping_mul(0xd1b5_4a32_d192_ed03);
    for _ in 0..max_images {
        out.push(
            counts
                .iter()
                .map(|n| (splitmix(&mut state) % *n as u64) as usize)
                .collect(),
        );
    }
    (out, false)
}

fn unit_report(model: &Model, u: &Uncertain, c: usize) -> UnitReport {
    let file = &model.files[u.file];
    let r = model.unit_range(u.file, u.unit);
    let newest = u.candidates.len() - 1;
    let writer = |i: usize| {
        let ev = model.version(u, i).event;
        if i == 0 {
            format!("its last durable content (as of event #{ev})")
        } else {
            format!("the content written by {}", model.describe_event(ev))
        }
    };
    let text = if c == newest {
        format!("holds {}", writer(c))
    } else {
        format!(
            "holds {}; newest not durable: {}",
            writer(c),
            writer(newest)
        )
    };
    UnitReport {
        unit: format!("{} [{:#x}, {:#x})", file.path, r.start, r.end),
        durable: c == newest,
        text,
    }
}

/// The model after the whole trace (its files: names for the images) and
/// each file's content when first mapped, in the model's file order: the
/// image of a file at crash points before the workload mapped it.
pub fn files_of<R: Read>(trace: R) -> Result<(Model, Vec<Vec<u8>>), CheckError> {
    let mut rd = Reader::new(trace).map_err(CheckError::Read)?;
    let mut m = Model::new(rd.header.line as usize, rd.header.page as usize);
    let mut firsts: Vec<Vec<u8>> = Vec::new();
    while let Some(r) = rd.next_record().map_err(CheckError::Read)? {
        m.apply(&r).map_err(CheckError::Model)?;
        if let Record::Map {
            file_offset,
            initial,
            ..
        } = &r
            && m.files.len() > firsts.len()
        {
            let mut c = vec![0u8; *file_offset as usize];
            c.extend_from_slice(initial);
            firsts.push(c);
        }
    }
    Ok((m, firsts))
}

/// Replays `trace`, calling `check(model, uncertain, choice)` on each image
/// chosen; `Ok(None)` from it means the image passed, `Ok(Some(detail))`
/// that it failed. Stops at the first failure.
pub fn check_trace<R: Read>(
    trace: R,
    opts: &Options,
    only_choice: Option<&[usize]>,
    mut check: impl FnMut(&Model, &[Uncertain], &[usize]) -> Result<Option<String>, String>,
) -> Result<Outcome, CheckError> {
    let mut rd = Reader::new(trace).map_err(CheckError::Read)?;
    let mut model = Model::new(rd.header.line as usize, rd.header.page as usize);
    let mut stats = Stats::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut failure: Option<Failure> = None;
    let mut found_point = false;
    while let Some(r) = rd.next_record().map_err(CheckError::Read)? {
        let Some(point) = model.apply(&r).map_err(CheckError::Model)? else {
            continue;
        };
        if let Some(f) = failure.as_mut() {
            f.before = Some(model.describe_event(point));
            break;
        }
        if matches!(r, Record::End { .. }) && point > 1 {
            // The end changes nothing: its crash point is the previous one.
            stats.crash_points += 1;
            continue;
        }
        if opts.only_point.is_some_and(|p| p != point) {
            continue;
        }
        found_point = true;
        stats.crash_points += 1;
        let un = model.uncertain();
        stats.max_uncertain = stats.max_uncertain.max(un.len());
        if !un.is_empty() {
            stats.uncertain_points += 1;
        }
        let images = match only_choice {
            Some(c) => {
                if c.len() != un.len() || c.iter().zip(&un).any(|(c, u)| *c >= u.candidates.len()) {
                    let shape: Vec<String> = un
                        .iter()
                        .map(|u| format!("0..{}", u.candidates.len() - 1))
                        .collect();
                    return Err(CheckError::NoSuchImage(format!(
                        "crash point {point} has {} uncertain units with candidates [{}]; the image asked for does not fit (has the workload changed?)",
                        un.len(),
                        shape.join(",")
                    )));
                }
                vec![c.to_vec()]
            }
            None => {
                let (images, all) = plan(&model, &un, opts.max_images, opts.seed, point);
                if all {
                    stats.exhaustive_points += 1;
                } else {
                    stats.sampled_points += 1;
                }
                images
            }
        };
        for choice in images {
            if only_choice.is_none() && !seen.insert(model.fingerprint(&un, &choice)) {
                stats.duplicates += 1;
                continue;
            }
            stats.images_checked += 1;
            if let Some(detail) = check(&model, &un, &choice).map_err(CheckError::Check)? {
                let spec = format!(
                    "{point}:{}",
                    choice
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                failure = Some(Failure {
                    point,
                    after: model.describe_event(point),
                    before: None,
                    units: un
                        .iter()
                        .zip(&choice)
                        .map(|(u, c)| unit_report(&model, u, *c))
                        .collect(),
                    spec,
                    detail,
                });
                break;
            }
        }
    }
    if let Some(p) = opts.only_point.filter(|_| !found_point) {
        return Err(CheckError::NoSuchImage(format!(
            "crash point {p} is not in the trace ({} events)",
            model.event()
        )));
    }
    Ok(Outcome {
        stats,
        failure,
        truncated: rd.truncated,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::super::format::{Call, Data, Writer};
    use super::*;
    use crate::granularity::Granularity;

    fn trace(rs: &[Record]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), 64, 4096, 1).unwrap();
        for r in rs {
            w.write(r).unwrap();
        }
        w.into_inner()
    }

    fn map(len: usize) -> Record {
        Record::Map {
            thread: 1,
            site: 0,
            call: Call::MapFile,
            map: 1,
            granularity: Granularity::CacheLine,
            file_offset: 0,
            dev: 1,
            ino: 1,
            path: "log".into(),
            initial: vec![0; len],
        }
    }
    fn put(off: u64, v: u8, wb: bool) -> Record {
        Record::Store {
            thread: 1,
            site: 0,
            call: Call::MemcpyToPmem,
            map: 1,
            offset: off,
            written_back: wb,
            data: Data::Fill(v, 8),
        }
    }
    fn fence() -> Record {
        Record::Fence {
            thread: 1,
            site: 0,
            call: Call::WmbPmem,
        }
    }

    /// "Record at line 1, then the tail at line 0", with or without the
    /// fence between; the check: tail set implies record set.
    fn log(fenced: bool) -> Vec<u8> {
        let mut rs = vec![map(256), put(64, 7, true)];
        if fenced {
            rs.push(fence());
        }
        rs.extend([put(0, 1, true), fence(), Record::End { thread: 1 }]);
        trace(&rs)
    }

    fn tail_implies_record(
        m: &Model,
        un: &[Uncertain],
        c: &[usize],
    ) -> Result<Option<String>, String> {
        let img = m.image(0, un, c);
        Ok((img[0] == 1 && img[64] != 7).then(|| "tail set, record missing".to_owned()))
    }

    #[test]
    fn the_correct_log_passes_every_image_and_the_unfenced_one_fails() {
        let o = check_trace(
            &log(true)[..],
            &Options::default(),
            None,
            tail_implies_record,
        )
        .unwrap();
        assert!(o.failure.is_none());
        assert_eq!(o.stats.sampled_points, 0);
        assert!(o.stats.images_checked >= 3);
        let o = check_trace(
            &log(false)[..],
            &Options::default(),
            None,
            tail_implies_record,
        )
        .unwrap();
        let f = o.failure.expect("the missing fence is caught");
        assert_eq!(f.point, 3);
        assert!(
            f.after.contains("#3 memcpy_to_pmem [0x0, 0x8)"),
            "{}",
            f.after
        );
        assert!(f.before.as_deref().unwrap().contains("wmb_pmem"));
        assert_eq!(f.units.len(), 2);
        let r = f.render();
        assert!(r.contains("NOT durable log [0x40, 0x80)"), "{r}");
        assert!(r.contains("durable     log [0x0, 0x40)"), "{r}");
        // The spec names exactly that image again.
        let (p, c) = parse_spec(&f.spec).unwrap();
        let o = check_trace(
            &log(false)[..],
            &Options {
                only_point: Some(p),
                ..Options::default()
            },
            Some(&c),
            tail_implies_record,
        )
        .unwrap();
        assert!(o.failure.is_some());
        assert_eq!(o.stats.images_checked, 1);
    }

    #[test]
    fn a_spec_that_does_not_fit_is_an_error() {
        let opts = Options {
            only_point: Some(3),
            ..Options::default()
        };
        let e = check_trace(&log(false)[..], &opts, Some(&[0]), tail_implies_record).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        let opts = Options {
            only_point: Some(99),
            ..Options::default()
        };
        let e = check_trace(&log(false)[..], &opts, Some(&[]), tail_implies_record).unwrap_err();
        assert!(e.to_string().contains("not in the trace"), "{e}");
        assert_eq!(parse_spec("3:1,0"), Some((3, vec![1, 0])));
        assert_eq!(parse_spec("3:"), Some((3, vec![])));
        assert_eq!(parse_spec("x:1"), None);
    }

    #[test]
    fn many_uncertain_units_are_sampled_reproducibly_with_the_prefixes() {
        // 14 lines stored without a fence: 2^14 images, above 4096.
        let mut rs = vec![map(14 * 64)];
        for l in 0..14 {
            rs.push(put(l * 64, 1 + l as u8, true));
        }
        let t = trace(&rs);
        let mut seen = Vec::new();
        let opts = Options {
            max_images: 100,
            seed: 42,
            only_point: Some(15),
        };
        let o = check_trace(&t[..], &opts, None, |m, un, c| {
            seen.push(m.fingerprint(un, c));
            Ok(None)
        })
        .unwrap();
        assert_eq!(o.stats.sampled_points, 1);
        let mut again = Vec::new();
        check_trace(&t[..], &opts, None, |m, un, c| {
            again.push(m.fingerprint(un, c));
            Ok(None)
        })
        .unwrap();
        assert_eq!(seen, again, "same seed, same images");
        // The 15 prefixes (none .. all 14 lines) are among the images.
        let prefixes = check_prefixes(&t, &opts);
        assert_eq!(prefixes, 15);
        let o2 = check_trace(&t[..], &Options { seed: 43, ..opts }, None, |_, _, _| {
            Ok(None)
        })
        .unwrap();
        assert!(o2.stats.images_checked > 15);
    }

    fn check_prefixes(t: &[u8], opts: &Options) -> usize {
        let mut n = 0;
        check_trace(t, opts, None, |_, _, c| {
            let k = c.iter().take_while(|x| **x == 1).count();
            if c[k..].iter().all(|x| *x == 0) {
                n += 1;
            }
            Ok(None)
        })
        .unwrap();
        n
    }

    #[test]
    fn an_image_seen_at_an_earlier_crash_point_is_not_checked_again() {
        let t = trace(&[
            map(128),
            put(0, 1, true),
            fence(),
            fence(),
            Record::End { thread: 1 },
        ]);
        let o = check_trace(&t[..], &Options::default(), None, |_, _, _| Ok(None)).unwrap();
        // Points: map (1 image), store (2: old, new), fence, fence, end.
        assert_eq!(o.stats.images_checked, 2);
        assert!(o.stats.duplicates >= 2);
    }
}
