//! `pmem-sys-crashtest`: runs a workload under recording, then checks
//! every image of its files that a power failure could leave.
//!
//! ```text
//! pmem-sys-crashtest --check 'CMD {}' [--max-images N] [--seed S] -- WORKLOAD [ARGS...]
//! ```
//!
//! Exit status: 0 when every image passes, 1 when one fails (the report
//! names the crash point, the uncertain units and a command reproducing
//! that image), 2 for a usage error or a workload that failed by itself.
//! See README.md beside this file, and `pmem_sys::record` for the trace
//! format and the persistence model.

use clap::Parser;
use pmem_sys::record::enumerate::{self, CheckError, Options, Outcome};
use pmem_sys::record::model::{Model, Uncertain};
use std::ffi::OsString;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Crash-consistency testing for programs using pmem-sys (libpmem_sys.so
/// or libpmem.so.1): records the workload's persistence, then runs CMD on
/// every image of its files a power failure could leave.
#[derive(Parser, Debug)]
#[command(name = "pmem-sys-crashtest", version, about)]
struct Args {
    /// The check, run by `sh -c` for each image with `{}` replaced by the
    /// image's path (a directory of images, named as the originals, when
    /// the workload mapped several files); exit 0 means consistent.
    #[arg(long, value_name = "CMD")]
    check: String,

    /// Check every image of a crash point when there are at most N;
    /// otherwise N random images plus the program-order prefixes.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_images: usize,

    /// Seed of the random sample (default: drawn from the clock, and
    /// printed so the run can be repeated).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,

    /// Check only this image, as named by a failure report
    /// (`POINT:c1,c2,...`).
    #[arg(long, value_name = "POINT:CHOICES")]
    image: Option<String>,

    /// Keep the first failing image (or the --image) in DIR.
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,

    /// The program to run, with its arguments.
    #[arg(last = true, required = true, value_name = "WORKLOAD")]
    workload: Vec<OsString>,
}

const USAGE: u8 = 2;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("pmem-sys-crashtest: {msg}");
    ExitCode::from(USAGE)
}

fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// Where each recorded file's image goes, and the path `{}` stands for.
struct Images {
    names: Vec<PathBuf>,
    arg: PathBuf,
    /// Each file's bytes on disk after the workload (for the parts no
    /// mapping covered).
    finals: Vec<Vec<u8>>,
    /// Each file's content when first mapped: its image at crash points
    /// before that (the workload has not touched it through pmem-sys yet).
    firsts: Vec<Vec<u8>>,
}

impl Images {
    fn new(dir: PathBuf, model: &Model, firsts: Vec<Vec<u8>>) -> std::io::Result<Images> {
        std::fs::create_dir_all(&dir)?;
        let mut names = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for (i, f) in model.files.iter().enumerate() {
            let base = Path::new(&f.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| !n.is_empty() && !n.starts_with("#") && !f.path.contains(" (deleted)"))
                .unwrap_or_else(|| format!("file{i}"));
            let mut name = base.clone();
            let mut k = 1;
            while !taken.insert(name.clone()) {
                k += 1;
                name = format!("{base}.{k}");
            }
            names.push(dir.join(name));
        }
        let arg = if names.len() == 1 {
            names[0].clone()
        } else {
            dir.clone()
        };
        let finals = model
            .files
            .iter()
            .map(|f| std::fs::read(&f.path).unwrap_or_default())
            .collect();
        Ok(Images {
            names,
            arg,
            finals,
            firsts,
        })
    }

    fn write(&self, model: &Model, un: &[Uncertain], choice: &[usize]) -> std::io::Result<()> {
        for (f, name) in self.names.iter().enumerate() {
            // A file the workload maps only later is as it was then.
            let img = if f < model.files.len() {
                model.image(f, un, choice)
            } else {
                self.firsts[f].clone()
            };
            let mut full = self.finals[f].clone();
            if full.len() < img.len() {
                full.resize(img.len(), 0);
            }
            full[..img.len()].copy_from_slice(&img);
            std::fs::write(name, &full)?;
        }
        Ok(())
    }
}

/// Runs the check on the image at `arg`: `Ok(None)` pass, `Ok(Some(out))`
/// fail with its output.
fn run_check(cmd: &str, arg: &Path) -> Result<Option<String>, String> {
    let line = cmd.replace("{}", &quote(&arg.to_string_lossy()));
    let out = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("sh -c {}: {e}", quote(&line)))?;
    if out.status.success() {
        return Ok(None);
    }
    if out.status.code() == Some(127) || out.status.code() == Some(126) {
        return Err(format!(
            "{} exited with {} (command not found or not executable): {}",
            quote(&line),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut detail = format!("{} -> {}\n", line, out.status);
    for s in [&out.stdout, &out.stderr] {
        let t = String::from_utf8_lossy(s);
        let t: String = t.chars().take(2000).collect();
        detail.push_str(&t);
    }
    Ok(Some(detail))
}

fn record(args: &Args, trace: &Path) -> Result<(), ExitCode> {
    let status = Command::new(&args.workload[0])
        .args(&args.workload[1..])
        .env("PMEM_SYS_RECORD", trace)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| {
            fail(format_args!(
                "cannot run the workload {:?}: {e}",
                args.workload[0]
            ))
        })?;
    if !status.success() {
        return Err(fail(format_args!(
            "the workload failed by itself ({status}); nothing was checked"
        )));
    }
    if !trace.exists() {
        return Err(fail(
            "the workload mapped nothing through pmem-sys (no trace was written): is it linked against libpmem_sys.so or libpmem.so.1?",
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.check.contains("{}") {
        return fail("--check: the command has no {} to stand for the image");
    }
    if args.max_images == 0 {
        return fail("--max-images: must be at least 1");
    }
    let spec = match &args.image {
        Some(s) => match enumerate::parse_spec(s) {
            Some(p) => Some(p),
            None => {
                return fail(format_args!(
                    "--image {s:?}: not POINT:c1,c2,... as a failure report prints it"
                ));
            }
        },
        None => None,
    };
    let seed = args.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (t ^ (std::process::id() as u64) << 32) % 1_000_000_007
    });
    let tmp = match tempfile::Builder::new()
        .prefix("pmem-sys-crashtest.")
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => return fail(format_args!("creating a temporary directory: {e}")),
    };
    let trace = tmp.path().join("trace.pmtrace");
    let t0 = Instant::now();
    if let Err(code) = record(&args, &trace) {
        return code;
    }
    let recorded = t0.elapsed();
    let trace_size = std::fs::metadata(&trace).map(|m| m.len()).unwrap_or(0);

    let opts = Options {
        max_images: args.max_images,
        seed,
        only_point: spec.as_ref().map(|s| s.0),
    };
    // A first pass learns the files (the images' names and sizes).
    let first_pass = File::open(&trace)
        .map_err(|e| e.to_string())
        .and_then(|f| enumerate::files_of(BufReader::new(f)).map_err(|e| e.to_string()));
    let (files, firsts) = match first_pass {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    if files.files.is_empty() {
        return fail("the workload mapped nothing through pmem-sys while recording");
    }
    let images = match Images::new(tmp.path().join("images"), &files, firsts) {
        Ok(i) => i,
        Err(e) => return fail(format_args!("preparing the image directory: {e}")),
    };
    let t1 = Instant::now();
    let outcome: Result<Outcome, CheckError> = File::open(&trace)
        .map_err(|e| CheckError::Check(e.to_string()))
        .and_then(|f| {
            enumerate::check_trace(
                BufReader::new(f),
                &opts,
                spec.as_ref().map(|s| s.1.as_slice()),
                |m, un, c| {
                    images
                        .write(m, un, c)
                        .map_err(|e| format!("writing the image: {e}"))?;
                    run_check(&args.check, &images.arg)
                },
            )
        });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let s = outcome.stats;
    if outcome.truncated {
        eprintln!(
            "pmem-sys-crashtest: warning: the trace ends inside a record (the workload was killed?); checked what was recorded"
        );
    }
    println!(
        "pmem-sys-crashtest: {} file(s) [{}]; {} crash points ({} with uncertain units, at most {} at one point); {} images checked, {} duplicates skipped; exhaustive at {} points, sampled at {} (seed {seed}, {} random images per point plus the program-order prefixes); recording {:.2?} ({} bytes of trace), checking {:.2?}",
        files.files.len(),
        files
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        s.crash_points,
        s.uncertain_points,
        s.max_uncertain,
        s.images_checked,
        s.duplicates,
        s.exhaustive_points,
        s.sampled_points,
        args.max_images,
        recorded,
        trace_size,
        t1.elapsed(),
    );
    match outcome.failure {
        None => {
            if let (Some(dir), Some(_)) = (&args.save, &spec) {
                save(&images, dir);
            }
            println!("pmem-sys-crashtest: every image passed");
            ExitCode::SUCCESS
        }
        Some(f) => {
            println!("pmem-sys-crashtest: FAILED: an image is inconsistent");
            print!("{}", f.render());
            let mut cmd = vec![
                "pmem-sys-crashtest".to_owned(),
                "--check".to_owned(),
                quote(&args.check),
                "--max-images".to_owned(),
                args.max_images.to_string(),
                "--seed".to_owned(),
                seed.to_string(),
                "--image".to_owned(),
                f.spec.clone(),
                "--save".to_owned(),
                "DIR".to_owned(),
                "--".to_owned(),
            ];
            cmd.extend(args.workload.iter().map(|w| quote(&w.to_string_lossy())));
            println!("  reproduce: {}", cmd.join(" "));
            if let Some(dir) = &args.save {
                // The failing image is the last one written.
                save(&images, dir);
            }
            ExitCode::from(1)
        }
    }
}

fn save(images: &Images, dir: &Path) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("pmem-sys-crashtest: --save {}: {e}", dir.display());
        return;
    }
    for n in &images.names {
        let to = dir.join(n.file_name().unwrap_or_default());
        match std::fs::copy(n, &to) {
            Ok(_) => println!("  image saved: {}", to.display()),
            Err(e) => eprintln!("pmem-sys-crashtest: --save {}: {e}", to.display()),
        }
    }
}
