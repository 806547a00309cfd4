//! `pypmem._pypmem`: the Python boundary of pmem-sys.
//!
//! The engine is linked in as a Rust dependency, without the `capi` feature,
//! so the extension exports `PyInit__pypmem` and nothing else and needs no
//! libpmem_sys.so at run time. Each error of the library (an errno and a
//! message naming call, argument and reason) becomes `OSError(errno,
//! message)`, which CPython turns into the matching subclass
//! (FileNotFoundError, PermissionError, FileExistsError, ...).

#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod buffer;
mod lifecycle;
mod mapping;
mod record;

use mapping::Mapping;
use pmem_sys::MapFlags;
use pmem_sys::engine::knobs::{self, KnobError};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyString};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// `OSError(errno, message)`: CPython picks the subclass from the errno.
pub(crate) fn os_error(e: pmem_sys::Error) -> PyErr {
    PyOSError::new_err((e.errno, e.message))
}

/// An error of the engine's mapping calls in Python's terms: the message
/// names the Python call and its keyword arguments (not the C flags); a bad
/// offset or length (EINVAL about a size, an offset or a range) is a
/// ValueError, as everywhere else in the package; an OSError carries
/// `filename` when the call was given a path.
fn mapping_error(call: &str, e: pmem_sys::Error, filename: Option<&Bound<'_, PyAny>>) -> PyErr {
    // The engine's message is "engine_call: argument: reason".
    let rest = e
        .message
        .split_once(": ")
        .map_or(e.message.as_str(), |(_, r)| r);
    let mut msg = format!("{call}: {rest}");
    for (c, py) in [
        ("PMEM_SYS_FILE_CREATE", "create=True"),
        ("PMEM_SYS_FILE_EXCL", "exclusive=True"),
        ("PMEM_SYS_FILE_SPARSE", "sparse=True"),
        ("PMEM_SYS_FILE_TMPFILE", "tmpfile=True"),
    ] {
        msg = msg.replace(c, py);
    }
    let argument = rest.split(": ").next().unwrap_or("");
    let about_extent = ["size ", "offset ", "range ["]
        .iter()
        .any(|a| argument.starts_with(a))
        || rest.ends_with("the file is empty and size is 0");
    if std::io::Error::from_raw_os_error(e.errno).kind() == std::io::ErrorKind::InvalidInput
        && about_extent
    {
        return PyValueError::new_err(msg);
    }
    match filename {
        Some(f) => PyOSError::new_err((e.errno, msg, f.clone().unbind())),
        None => PyOSError::new_err((e.errno, msg)),
    }
}

/// A path argument as `os.fspath` sees it: str (encoded with the file
/// system encoding, as `open()` does), bytes, or an os.PathLike. Returns
/// the path and the str or bytes object (for OSError.filename).
fn fs_path<'py>(path: &Bound<'py, PyAny>) -> PyResult<(PathBuf, Bound<'py, PyAny>)> {
    let os = path.py().import("os")?;
    let p = os.call_method1("fspath", (path,))?;
    let bytes = match p.cast::<PyBytes>() {
        Ok(b) => b.as_bytes().to_vec(),
        Err(_) => p.extract::<OsString>()?.into_vec(),
    };
    if bytes.contains(&0) {
        return Err(PyValueError::new_err(
            "pypmem.map_file: path: embedded null byte",
        ));
    }
    Ok((PathBuf::from(OsString::from_vec(bytes)), p))
}

fn non_negative(call: &str, what: &str, v: i64) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| PyValueError::new_err(format!("{call}: {what} {v}: negative")))
}

fn to_usize(call: &str, what: &str, v: u64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| {
        PyValueError::new_err(format!("{call}: {what} {v}: larger than the address space"))
    })
}

/// Maps a file and returns a :class:`Mapping`.
///
/// ``size=0`` maps the whole existing file. ``create=True`` creates the file
/// if needed and grows it to ``size`` (allocating every block unless
/// ``sparse=True``); ``exclusive=True`` fails with FileExistsError if it
/// exists. ``tmpfile=True`` (with ``create``) maps an unnamed temporary file
/// inside the directory ``path``. ``mode`` is the permission of a new file
/// (before the umask). ``readonly=True`` opens the file read-only and maps
/// it without write permission, as ``mmap`` with ``ACCESS_READ`` does: a
/// user who may only read the file can map it; stores raise TypeError.
/// Bad sizes raise ValueError; OS failures raise the matching OSError
/// subclass with ``filename`` set to ``path``.
#[pyfunction]
#[pyo3(
    signature = (path, size=0, *, create=false, exclusive=false, sparse=false, tmpfile=false, readonly=false, mode=0o666),
    text_signature = "(path, size=0, *, create=False, exclusive=False, sparse=False, tmpfile=False, readonly=False, mode=_MODE_0o666)"
)]
#[allow(clippy::too_many_arguments)]
fn map_file(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    size: i64,
    create: bool,
    exclusive: bool,
    sparse: bool,
    tmpfile: bool,
    readonly: bool,
    mode: i64,
) -> PyResult<Mapping> {
    const CALL: &str = "pypmem.map_file";
    let (path, name) = fs_path(path)?;
    let size = to_usize(CALL, "size", non_negative(CALL, "size", size)?)?;
    let mode = u32::try_from(mode)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{CALL}: mode {mode:#o}: not a permission (0 to 0o7777)"
            ))
        })?;
    let refuse = |why: &str| Err(PyValueError::new_err(format!("{CALL}: {why}")));
    if !create {
        for (on, what) in [(exclusive, "exclusive"), (tmpfile, "tmpfile")] {
            if on {
                return refuse(&format!("{what}=True: requires create=True"));
            }
        }
    } else if readonly {
        return refuse("readonly=True: cannot be combined with create=True");
    } else if size == 0 {
        return refuse("size 0: create=True needs the size of the file to create");
    }
    let mut flags = 0;
    for (on, bit) in [
        (create, MapFlags::CREATE),
        (exclusive, MapFlags::EXCL),
        (sparse, MapFlags::SPARSE),
        (tmpfile, MapFlags::TMPFILE),
    ] {
        if on {
            flags |= bit;
        }
    }
    // Creating a large file allocates every block: do it without the GIL.
    let (addr, len) = py
        .detach(|| {
            if readonly {
                pmem_sys::mapping::map_file_readonly(&path, size)
            } else {
                pmem_sys::mapping::map_file(&path, size, flags, mode)
            }
        })
        .map_err(|e| mapping_error(CALL, e, Some(&name)))?;
    Mapping::adopt(CALL, addr, len, readonly)
}

/// Maps ``[offset, offset + size)`` of an open file or device-DAX node
/// (the kernel's memremap_pmem). ``fd`` is an integer descriptor or an
/// object with ``fileno()``; it may be closed afterwards. A descriptor
/// opened read-only gets a read-only mapping (as with ``mmap``), and so does
/// any descriptor with ``readonly=True``. ``offset`` must be a multiple of
/// the page size and the range must lie inside the file (ValueError).
#[pyfunction]
#[pyo3(signature = (fd, offset, size, *, readonly=None))]
fn memremap_pmem(
    py: Python<'_>,
    fd: &Bound<'_, PyAny>,
    offset: i64,
    size: i64,
    readonly: Option<bool>,
) -> PyResult<Mapping> {
    const CALL: &str = "pypmem.memremap_pmem";
    let fd = as_fd(fd)?;
    let offset = non_negative(CALL, "offset", offset)?;
    let size = to_usize(CALL, "size", non_negative(CALL, "size", size)?)?;
    let readonly = match readonly {
        Some(r) => r,
        None => opened_read_only(py, fd)?,
    };
    let addr = py
        .detach(|| {
            if readonly {
                pmem_sys::mapping::memremap_readonly(fd, offset, size)
            } else {
                pmem_sys::mapping::memremap(fd, offset, size)
            }
        })
        .map_err(|e| mapping_error(CALL, e, None))?;
    Mapping::adopt(CALL, addr, size, readonly)
}

/// Whether `fd` was opened read-only (`fcntl(F_GETFL)`); false when that
/// cannot be told (a bad descriptor is then reported by the mapping call).
fn opened_read_only(py: Python<'_>, fd: i32) -> PyResult<bool> {
    let fcntl = py.import("fcntl")?;
    let os = py.import("os")?;
    let getfl = fcntl.getattr("F_GETFL")?;
    match fcntl.call_method1("fcntl", (fd, getfl)) {
        Ok(fl) => {
            let accmode: i64 = os.getattr("O_ACCMODE")?.extract()?;
            let rdonly: i64 = os.getattr("O_RDONLY")?.extract()?;
            Ok(fl.extract::<i64>()? & accmode == rdonly)
        }
        Err(_) => Ok(false),
    }
}

#[allow(unsafe_code)]
fn as_fd(obj: &Bound<'_, PyAny>) -> PyResult<i32> {
    // SAFETY: `obj` is a live object; the call returns -1 with an exception
    // set on failure (TypeError for objects without fileno()).
    let fd = unsafe { pyo3::ffi::PyObject_AsFileDescriptor(obj.as_ptr()) };
    if fd < 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    Ok(fd)
}

/// The fence: makes every earlier write, memset and write_back of the
/// calling thread durable (msyncing page-granular ranges it dirtied). Raises
/// OSError if an msync failed since the last report.
#[pyfunction]
fn wmb_pmem(py: Python<'_>) -> PyResult<()> {
    py.detach(pmem_sys::drain).map_err(os_error)
}

/// True where this CPU can make stores durable by flush and fence.
#[pyfunction]
fn arch_has_pmem_api() -> bool {
    pmem_sys::arch_has_pmem_api()
}

/// True where :func:`wmb_pmem` orders and completes write-backs.
#[pyfunction]
fn arch_has_wmb_pmem() -> bool {
    pmem_sys::arch_has_wmb_pmem()
}

/// The name of the operation table in use, e.g. ``"x86_64/avx2+clwb"``
/// (the same string as the C library's pmem_sys_impl()).
#[pyfunction]
fn implementation() -> &'static str {
    pmem_sys::implementation()
}

/// The CPU features detected, space separated.
#[pyfunction]
fn cpu_features() -> String {
    pmem_sys::cpu_features()
}

/// Copies of at least this many bytes use non-temporal stores.
#[pyfunction]
fn movnt_threshold() -> usize {
    pmem_sys::engine::movnt_threshold()
}

/// One line per option that differs from its default, then one per ignored
/// environment value; empty when nothing is forced.
#[pyfunction]
fn knobs_report() -> String {
    knobs::report()
}

fn knob_error(name: &str, value: Option<&str>, e: KnobError) -> PyErr {
    let msg = match e {
        KnobError::UnknownName => {
            format!("pypmem.set_option: name {name:?}: not an option of pmem-sys")
        }
        KnobError::Malformed(why) => format!(
            "pypmem.set_option: value {:?} for {name}: {why}",
            value.unwrap_or("")
        ),
    };
    PyValueError::new_err(msg)
}

/// Sets an option as if ``name=value`` were in the environment (for example
/// ``set_option("PMEM_SYS_NO_MOVNT", 1)``) and re-selects the engine.
/// ``value`` is a str, an int or a bool; None restores the default. Raises
/// ValueError for an unknown name or a malformed value.
#[pyfunction]
#[pyo3(signature = (name, value))]
fn set_option(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let text: Option<String> = match value {
        None => None,
        Some(v) if v.is_instance_of::<PyBool>() => {
            Some(if v.extract::<bool>()? { "1" } else { "0" }.to_owned())
        }
        Some(v) if v.is_instance_of::<PyInt>() => Some(v.str()?.to_string()),
        Some(v) if v.is_instance_of::<PyString>() => Some(v.extract::<String>()?),
        Some(v) => {
            let t = v
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            return Err(PyTypeError::new_err(format!(
                "pypmem.set_option: value: str, int, bool or None required, not '{t}'"
            )));
        }
    };
    knobs::set_option(name, text.as_deref()).map_err(|e| knob_error(name, text.as_deref(), e))
}

/// The value of an option in force, written as in the environment (``""``
/// for an unset text option; PMEM_SYS_MOVNT_THRESHOLD reads as the
/// threshold in force). Raises ValueError for an unknown name.
#[pyfunction]
fn get_option(name: &str) -> PyResult<String> {
    knobs::get_option(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "pypmem.get_option: name {name:?}: not an option of pmem-sys"
        ))
    })
}

/// The names :func:`set_option` and :func:`get_option` accept.
#[pyfunction]
fn option_names() -> Vec<&'static str> {
    knobs::NAMES.to_vec()
}

#[pymodule]
fn _pypmem(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Mapping>()?;
    m.add_function(wrap_pyfunction!(map_file, m)?)?;
    m.add_function(wrap_pyfunction!(memremap_pmem, m)?)?;
    m.add_function(wrap_pyfunction!(wmb_pmem, m)?)?;
    m.add_function(wrap_pyfunction!(arch_has_pmem_api, m)?)?;
    m.add_function(wrap_pyfunction!(arch_has_wmb_pmem, m)?)?;
    m.add_function(wrap_pyfunction!(implementation, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_features, m)?)?;
    m.add_function(wrap_pyfunction!(movnt_threshold, m)?)?;
    m.add_function(wrap_pyfunction!(knobs_report, m)?)?;
    m.add_function(wrap_pyfunction!(set_option, m)?)?;
    m.add_function(wrap_pyfunction!(get_option, m)?)?;
    m.add_function(wrap_pyfunction!(option_names, m)?)?;
    m.add_function(wrap_pyfunction!(record::record_start, m)?)?;
    m.add_function(wrap_pyfunction!(record::record_stop, m)?)?;
    m.add_function(wrap_pyfunction!(record::_crash_check, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("ENGINE_VERSION", pmem_sys::VERSION)?;
    m.add("DETACH_AT", mapping::DETACH_AT)?;
    Ok(())
}
