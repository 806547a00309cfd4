//! Crash-consistency recording and checking from Python: `record_start`,
//! `record_stop` and `_crash_check`, which `pypmem.crashtest.check` builds
//! on (see python/pypmem/crashtest.py and pmem_sys::record).

use crate::os_error;
use pmem_sys::record::enumerate::{self, Options};
use pmem_sys::record::model::{Model, Uncertain};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};

/// The calling Python line, for the trace's sites: the innermost frame
/// outside the pypmem package, as ``function (file.py:line)``.
fn python_site() -> Option<String> {
    Python::try_attach(|py| -> Option<String> {
        let sys = py.import("sys").ok()?;
        let mut frame = sys.call_method1("_getframe", (0,)).ok()?;
        loop {
            if frame.is_none() {
                return None;
            }
            let code = frame.getattr("f_code").ok()?;
            let file: String = code.getattr("co_filename").ok()?.extract().ok()?;
            let in_package = Path::new(&file)
                .parent()
                .and_then(|d| d.file_name())
                .is_some_and(|d| d == "pypmem");
            if !in_package {
                let name: String = code.getattr("co_name").ok()?.extract().ok()?;
                let line: u32 = frame.getattr("f_lineno").ok()?.extract().ok()?;
                let base = Path::new(&file)
                    .file_name()
                    .map_or(file.clone(), |b| b.to_string_lossy().into_owned());
                return Some(format!("{name} ({base}:{line})"));
            }
            frame = frame.getattr("f_back").ok()?;
        }
    })
    .flatten()
}

/// Starts recording every mapping made from now on to the trace file
/// ``path`` (see the C library's pmem_sys_record_start). Sites are the
/// calling Python lines. Raises OSError (EBUSY while recording).
#[pyfunction]
pub(crate) fn record_start(path: PathBuf) -> PyResult<()> {
    pmem_sys::record::start(&path).map_err(os_error)?;
    pmem_sys::record::set_site_hook(Some(python_site));
    Ok(())
}

/// Ends recording and closes the trace. Raises OSError (EINVAL when not
/// recording, or the error writing the trace).
#[pyfunction]
pub(crate) fn record_stop() -> PyResult<()> {
    pmem_sys::record::set_site_hook(None);
    pmem_sys::record::stop().map_err(os_error)
}

/// Writes the image of every recorded file into `dir` (named as the
/// originals; a file mapped only later as it was when first mapped) and
/// returns the path the check is given: the file, or `dir` for several.
fn write_images(
    m: &Model,
    files: &Model,
    firsts: &[Vec<u8>],
    un: &[Uncertain],
    choice: &[usize],
    dir: &Path,
) -> std::io::Result<PathBuf> {
    let mut first = None;
    for (f, file) in files.files.iter().enumerate() {
        let name = Path::new(&file.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty() && !file.path.contains(" (deleted)"))
            .unwrap_or_else(|| format!("file{f}"));
        let p = dir.join(name);
        if f < m.files.len() {
            std::fs::write(&p, m.image(f, un, choice))?;
        } else {
            std::fs::write(&p, &firsts[f])?;
        }
        first.get_or_insert(p);
    }
    Ok(if files.files.len() == 1 {
        first.unwrap_or_else(|| dir.to_path_buf())
    } else {
        dir.to_path_buf()
    })
}

/// Replays the trace at ``trace`` and calls ``check(path)`` on every image
/// chosen (written into ``image_dir``); the check fails an image by raising
/// or returning False. Returns ``(report or None, stats)``.
#[pyfunction]
#[pyo3(signature = (trace, image_dir, check, max_images=4096, seed=0, image=None))]
pub(crate) fn _crash_check<'py>(
    py: Python<'py>,
    trace: PathBuf,
    image_dir: PathBuf,
    check: Bound<'py, PyAny>,
    max_images: usize,
    seed: u64,
    image: Option<&str>,
) -> PyResult<(Option<String>, Bound<'py, PyDict>)> {
    const CALL: &str = "pypmem.crashtest.check";
    if max_images == 0 {
        return Err(PyValueError::new_err(format!(
            "{CALL}: max_images 0: at least 1 is needed"
        )));
    }
    let open = || {
        std::fs::File::open(&trace)
            .map(std::io::BufReader::new)
            .map_err(|e| PyOSError::new_err(format!("{CALL}: trace {}: {e}", trace.display())))
    };
    let (files, firsts) =
        enumerate::files_of(open()?).map_err(|e| PyOSError::new_err(format!("{CALL}: {e}")))?;
    let f = open()?;
    let spec = match image {
        Some(i) => Some(enumerate::parse_spec(i).ok_or_else(|| {
            PyValueError::new_err(format!(
                "{CALL}: image {i:?}: not 'POINT:c1,c2,...' as a failure report names it"
            ))
        })?),
        None => None,
    };
    let opts = Options {
        max_images,
        seed,
        only_point: spec.as_ref().map(|s| s.0),
    };
    // A Python exception raised by the check itself is kept here and
    // re-raised after the replay (the replay's closure cannot return it).
    let mut raised: Option<PyErr> = None;
    let outcome = enumerate::check_trace(
        std::io::BufReader::new(f),
        &opts,
        spec.as_ref().map(|s| s.1.as_slice()),
        |m, un, c| {
            let path = write_images(m, &files, &firsts, un, c, &image_dir)
                .map_err(|e| format!("writing the image: {e}"))?;
            match check.call1((path.clone(),)) {
                Ok(v) => {
                    if v.is_instance_of::<pyo3::types::PyBool>() && !v.is_truthy().unwrap_or(true) {
                        Ok(Some(format!("check({}) returned False", path.display())))
                    } else {
                        Ok(None)
                    }
                }
                Err(e) => {
                    let text = format!(
                        "check({}) raised {}",
                        path.display(),
                        e.value(py)
                            .repr()
                            .map_or_else(|_| "?".into(), |r| r.to_string())
                    );
                    if e.is_instance_of::<pyo3::exceptions::PyAssertionError>(py)
                        || e.is_instance_of::<pyo3::exceptions::PyException>(py)
                    {
                        Ok(Some(text))
                    } else {
                        // KeyboardInterrupt, SystemExit: stop and re-raise.
                        raised = Some(e);
                        Err("interrupted".into())
                    }
                }
            }
        },
    );
    if let Some(e) = raised {
        return Err(e);
    }
    let outcome = outcome.map_err(|e| match e {
        enumerate::CheckError::NoSuchImage(w) => {
            PyValueError::new_err(format!("{CALL}: image: {w}"))
        }
        e => PyOSError::new_err(format!("{CALL}: {e}")),
    })?;
    let s = outcome.stats;
    let stats = PyDict::new(py);
    stats.set_item("crash_points", s.crash_points)?;
    stats.set_item("uncertain_points", s.uncertain_points)?;
    stats.set_item("exhaustive_points", s.exhaustive_points)?;
    stats.set_item("sampled_points", s.sampled_points)?;
    stats.set_item("images_checked", s.images_checked)?;
    stats.set_item("duplicates", s.duplicates)?;
    stats.set_item("max_uncertain", s.max_uncertain)?;
    stats.set_item("seed", seed)?;
    stats.set_item(
        "files",
        outcome
            .model
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect::<Vec<_>>(),
    )?;
    if let Some(f) = &outcome.failure {
        stats.set_item("image", &f.spec)?;
    }
    Ok((outcome.failure.map(|f| f.render()), stats))
}
