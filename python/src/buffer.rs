//! Borrowing the bytes of other Python objects through the buffer protocol.
//!
//! PyO3's `PyBuffer<T>` boxes its `Py_buffer` and checks the item format;
//! an 8-byte `write` cannot afford either, so these wrappers keep the
//! `Py_buffer` on the stack and ask for the simplest export (`PyBUF_SIMPLE`:
//! a contiguous run of bytes, format ignored). Only exporters that cannot
//! give one (a strided memoryview, a transposed numpy array) take the slow
//! path through a contiguous copy, as `bytes(obj)` would.

#![allow(unsafe_code)]

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// A held export, released on drop (with the GIL, which every holder has).
pub(crate) struct Held(ffi::Py_buffer);

impl Held {
    /// `PyObject_GetBuffer(obj, flags)`, or the exporter's exception.
    fn get(obj: &Bound<'_, PyAny>, flags: std::ffi::c_int) -> PyResult<Held> {
        let mut view = ffi::Py_buffer::new();
        // SAFETY: `obj` is a live object and `view` a writable Py_buffer;
        // on failure the exporter leaves nothing to release.
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut view, flags) } == 0 {
            Ok(Held(view))
        } else {
            Err(PyErr::fetch(obj.py()))
        }
    }

    fn len(&self) -> usize {
        // A successful export never has a negative length.
        self.0.len.max(0) as usize
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: `self.0` was filled by a successful PyObject_GetBuffer and
        // is released exactly once; the GIL is held (these never cross a
        // `detach`).
        unsafe { ffi::PyBuffer_Release(&mut self.0) };
    }
}

/// Releases an export filled in place (the fast path of `Mapping.write`).
pub(crate) struct Release<'a>(pub(crate) &'a mut ffi::Py_buffer);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        // SAFETY: filled by a successful PyObject_GetBuffer, released once,
        // with the GIL held.
        unsafe { ffi::PyBuffer_Release(self.0) };
    }
}

/// The bytes of an exact `bytes` object (not a subclass, which could
/// override the buffer protocol), read in place without a buffer export:
/// `PyBytes_AsStringAndSize` is one call where an export is a fill and a
/// release, and the commonest argument of a small write is a bytes literal.
/// The bytes stay valid while the caller holds `obj` (bytes are immutable
/// and the caller's reference keeps them alive), also without the GIL.
#[inline(always)]
pub(crate) fn exact_bytes(obj: &Bound<'_, PyAny>) -> Option<(*const u8, usize)> {
    // SAFETY: reads the type pointer of a live object and the address of a
    // static type object; nothing is dereferenced.
    let is_bytes = unsafe { ffi::Py_TYPE(obj.as_ptr()) == &raw mut ffi::PyBytes_Type };
    if !is_bytes {
        return None;
    }
    let mut p: *mut std::ffi::c_char = std::ptr::null_mut();
    let mut n: ffi::Py_ssize_t = 0;
    // SAFETY: `obj` is an exact bytes object, for which the call only
    // reads its size and data pointer and cannot fail.
    if unsafe { ffi::PyBytes_AsStringAndSize(obj.as_ptr(), &mut p, &mut n) } != 0 {
        // Not reachable for an exact bytes object; leave no exception behind.
        drop(PyErr::fetch(obj.py()));
        return None;
    }
    Some((p as *const u8, n.max(0) as usize))
}

fn supports_buffer(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `obj` is a live object.
    unsafe { ffi::PyObject_CheckBuffer(obj.as_ptr()) != 0 }
}

/// The bytes of a bytes-like object, to copy from.
pub(crate) enum Source {
    /// Borrowed in place.
    Direct(Held),
    /// Gathered from a non-contiguous exporter.
    Gathered(Vec<u8>),
}

impl Source {
    /// Borrows `obj`'s bytes; TypeError naming `call` when `obj` is not
    /// bytes-like.
    #[inline]
    pub(crate) fn get(obj: &Bound<'_, PyAny>, call: &str) -> PyResult<Source> {
        match Held::get(obj, ffi::PyBUF_SIMPLE) {
            Ok(h) => Ok(Source::Direct(h)),
            Err(e) => Self::slow(obj, call, e),
        }
    }

    /// The rest of [`Source::get`] after `PyBUF_SIMPLE` failed with `first`.
    #[cold]
    pub(crate) fn slow(obj: &Bound<'_, PyAny>, call: &str, first: PyErr) -> PyResult<Source> {
        if !supports_buffer(obj) {
            return Err(PyTypeError::new_err(format!(
                "{call}: a bytes-like object is required, not '{}'",
                type_name(obj)
            )));
        }
        // A strided export: ask for the full description and gather it.
        let held = Held::get(obj, ffi::PyBUF_FULL_RO).map_err(|_| first)?;
        let mut out = vec![0u8; held.len()];
        // SAFETY: `out` has room for `held.len()` bytes, the length of the view.
        let r = unsafe {
            ffi::PyBuffer_ToContiguous(out.as_mut_ptr().cast(), &held.0, held.0.len, b'C' as _)
        };
        if r != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        Ok(Source::Gathered(out))
    }

    /// Start of the bytes.
    #[inline]
    pub(crate) fn ptr(&self) -> *const u8 {
        match self {
            Source::Direct(h) => h.0.buf as *const u8,
            Source::Gathered(v) => v.as_ptr(),
        }
    }

    /// Number of bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Source::Direct(h) => h.len(),
            Source::Gathered(v) => v.len(),
        }
    }
}

/// The bytes of a writable bytes-like object, to copy into.
pub(crate) enum Target {
    /// Borrowed in place.
    Direct(Held),
    /// A strided export: fill a contiguous copy, then scatter it.
    Scattered(Held),
}

impl Target {
    /// Borrows `obj`'s bytes for writing; TypeError naming `call` when it is
    /// not a writable bytes-like object.
    pub(crate) fn get(obj: &Bound<'_, PyAny>, call: &str) -> PyResult<Target> {
        match Held::get(obj, ffi::PyBUF_WRITABLE) {
            Ok(h) => Ok(Target::Direct(h)),
            Err(first) => {
                let not_writable = || {
                    PyTypeError::new_err(format!(
                        "{call}: a writable bytes-like object is required, not '{}'",
                        type_name(obj)
                    ))
                };
                if !supports_buffer(obj) {
                    return Err(not_writable());
                }
                if let Ok(h) = Held::get(obj, ffi::PyBUF_FULL) {
                    return Ok(Target::Scattered(h));
                }
                // Exporters refuse a writable view of read-only memory with
                // BufferError (bytes) or ValueError (numpy): if a read-only
                // view succeeds, the argument is of the wrong kind.
                if Held::get(obj, ffi::PyBUF_FULL_RO).is_ok() {
                    return Err(not_writable());
                }
                Err(first)
            }
        }
    }

    /// Number of bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Target::Direct(h) | Target::Scattered(h) => h.len(),
        }
    }

    /// Where to copy to directly, or `None` for a strided export.
    pub(crate) fn direct_ptr(&self) -> Option<*mut u8> {
        match self {
            Target::Direct(h) => Some(h.0.buf as *mut u8),
            Target::Scattered(_) => None,
        }
    }

    /// Scatters `bytes` (exactly `len()` of them) into a strided export.
    pub(crate) fn scatter(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        let Target::Scattered(h) = self else {
            return Ok(());
        };
        debug_assert_eq!(bytes.len(), h.len());
        // SAFETY: `bytes` holds `h.0.len` bytes and the view is writable.
        let r = unsafe {
            ffi::PyBuffer_FromContiguous(&h.0, bytes.as_ptr().cast(), h.0.len, b'C' as _)
        };
        if r != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(())
    }
}
