//! `pypmem.Mapping`: a mapped file as a writable buffer-protocol object whose
//! copies go through the engine.
//!
//! The rules that keep Python from crashing, in one place:
//!
//! - Every method first does everything that may run Python code
//!   (converting arguments through `__index__`, borrowing buffers through
//!   `__buffer__`, allocating the result, which may start the garbage
//!   collector and its finalizers), then takes a [`Hold`] and touches the
//!   mapped memory without running Python code until it is done.
//! - A hold that releases the GIL, and every hold on free-threaded Python,
//!   counts itself in with [`Lifecycle::enter`]; `close()` refuses with
//!   BufferError while anything is counted in, so memory is never unmapped
//!   under a copy running in another thread. With the GIL held and no Python
//!   code running, nothing can call `close()` until the hold ends, so there
//!   a check of the closed bit is enough: that keeps the atomic
//!   read-modify-writes off the path of small copies.
//! - `__getbuffer__` counts an export and points the view's `obj` back at
//!   the Mapping (as CPython's mmapmodule does with `PyBuffer_FillInfo`), so
//!   the Mapping outlives every memoryview and numpy array; `close()` refuses
//!   while any export is alive. `__releasebuffer__` only counts down and
//!   never raises.
//! - Offsets and lengths are checked against the immutable length before any
//!   memory is touched.

#![allow(unsafe_code)]

use crate::buffer::{Release, Source, Target, exact_bytes};
use crate::lifecycle::{Close, Lifecycle, Operation};
use crate::os_error;
use pmem_sys::mapping::{self, Granularity};
use pyo3::exceptions::{PyBufferError, PyIndexError, PyOSError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::marker::Ungil;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PySlice, PySliceMethods};
use std::ffi::c_int;

/// Copies of at least this many bytes release the GIL (the rule:
/// below it, the cost of dropping and retaking the GIL, about 100 ns, is a
/// large share of the copy; above it the copy takes microseconds).
pub(crate) const DETACH_AT: usize = 64 * 1024;

/// A file or device-DAX range mapped by pmem-sys.
///
/// Create one with :func:`pypmem.map_file` or :func:`pypmem.memremap_pmem`.
/// It supports the buffer protocol (writable): ``memoryview(m)`` and
/// ``numpy.frombuffer(m, dtype=numpy.uint8)`` see the mapped bytes without
/// copying. Stores made that way are ordinary stores: they are durable only
/// after :meth:`persist` of their range, and they are not protected against
/// media errors (use :meth:`read` and :meth:`write` for that).
///
/// :meth:`flush` is durable when it returns, as ``mmap.flush()`` is (it
/// is :meth:`persist`); :meth:`write_back` is the write-back without a
/// fence. ``readonly=True`` (or a read-only descriptor) maps without write
/// permission: stores raise TypeError and exports are read-only.
/// ``bytes(m)`` is a guarded copy; ``bytearray(m)``, ``hashlib`` and other
/// consumers of the buffer protocol read the memory directly, unguarded.
///
/// ``close()`` raises BufferError while a memoryview, numpy array or other
/// export is alive; every other use after ``close()`` raises ValueError.
#[pyclass(frozen, weakref, module = "pypmem", name = "Mapping")]
pub struct Mapping {
    addr: usize,
    len: usize,
    state: Lifecycle,
    granularity: Granularity,
    reason: String,
    page: usize,
    readonly: bool,
}

/// Permission to touch the mapped memory (see [`Mapping::hold`]). Copies
/// made under it release the GIL only if the hold was taken for that,
/// which also counts it in: a copy cannot release the GIL unprotected.
pub(crate) struct Hold<'a> {
    _counted: Option<Operation<'a>>,
    detach: bool,
}

impl Hold<'_> {
    /// Runs `f`, without the GIL if this hold was taken to release it.
    #[inline(always)]
    fn run<T: Ungil>(&self, py: Python<'_>, f: impl Ungil + FnOnce() -> T) -> T {
        if self.detach { py.detach(f) } else { f() }
    }
}

/// A range already checked against the mapping.
#[derive(Clone, Copy)]
struct Range {
    offset: usize,
    len: usize,
}

fn closed(call: &str) -> PyErr {
    PyValueError::new_err(format!("{call}: the mapping is closed"))
}

/// A bus error (media error, or the file truncated under the mapping)
/// caught by the engine's guarded copy: OSError(EIO) naming the call, the
/// range and where the copy stopped. Also the msync or sysfs failure of a
/// flagged store's drain or a deep flush, with its errno.
#[cold]
fn fault(call: &str, r: Range, e: pmem_sys::Error) -> PyErr {
    PyOSError::new_err((
        e.errno,
        format!(
            "{call}: range [{}, {}): {}",
            r.offset,
            r.offset + r.len,
            e.message
        ),
    ))
}

fn byte_value(call: &str, value: &Bound<'_, PyAny>) -> PyResult<u8> {
    let v: i64 = value.extract().map_err(|_| {
        let t = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyTypeError::new_err(format!("{call}: value: an integer is required, not '{t}'"))
    })?;
    u8::try_from(v)
        .map_err(|_| PyValueError::new_err(format!("{call}: value {v}: must be in range(0, 256)")))
}

type FlagKeywords<'a, 'py> = (
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
);

/// The keywords `nontemporal`, `temporal`, `flush` and `drain` of `write`
/// and `memset` as given (each a bool, or None for its default), as
/// [`store_flags`].
#[cold]
fn flag_keywords(call: &str, kw: FlagKeywords<'_, '_>) -> PyResult<Option<u32>> {
    let get = |name: &str, v: Option<&Bound<'_, PyAny>>, default: bool| -> PyResult<bool> {
        match v {
            None => Ok(default),
            Some(v) => v.extract::<bool>().map_err(|_| {
                let t = v
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                PyTypeError::new_err(format!("{call}: {name}: a bool is required, not '{t}'"))
            }),
        }
    };
    store_flags(
        call,
        get("nontemporal", kw.0, false)?,
        get("temporal", kw.1, false)?,
        get("flush", kw.2, true)?,
        get("drain", kw.3, false)?,
    )
}

/// The engine's flags for the keywords of `write` and `memset`; `None` for
/// the defaults (the checked memcpy_to_pmem / memset_pmem path).
#[inline(always)]
fn store_flags(
    call: &str,
    nontemporal: bool,
    temporal: bool,
    flush: bool,
    drain: bool,
) -> PyResult<Option<u32>> {
    if !nontemporal && !temporal && flush && !drain {
        return Ok(None);
    }
    if nontemporal && temporal {
        return Err(PyValueError::new_err(format!(
            "{call}: nontemporal=True and temporal=True: choose one"
        )));
    }
    if drain && !flush {
        return Err(PyValueError::new_err(format!(
            "{call}: drain=True with flush=False: a fence without the write-back makes nothing durable"
        )));
    }
    let mut f = 0;
    for (on, bit) in [
        (nontemporal, pmem_sys::F_NONTEMPORAL),
        (temporal, pmem_sys::F_TEMPORAL),
        (!flush, pmem_sys::F_NOFLUSH),
        (!drain, pmem_sys::F_NODRAIN),
    ] {
        if on {
            f |= bit;
        }
    }
    Ok(Some(f))
}

impl Mapping {
    /// Wraps a mapping of pmem-sys starting at `addr`, `len` bytes long;
    /// unmaps it again if it cannot be described.
    pub(crate) fn adopt(call: &str, addr: usize, len: usize, readonly: bool) -> PyResult<Mapping> {
        let described =
            mapping::granularity(call, addr, len).and_then(|g| Ok((g, mapping::reason(addr)?)));
        match described {
            Ok((granularity, region)) => Ok(Mapping {
                addr,
                len,
                state: Lifecycle::default(),
                granularity,
                reason: mapping::reason_text(&region).to_string_lossy().into_owned(),
                page: mapping::page_size(),
                readonly,
            }),
            Err(e) => {
                let _ = mapping::unmap(addr);
                Err(os_error(e))
            }
        }
    }

    /// Permission to touch the mapped memory until the result is dropped;
    /// ValueError if closed. With `detach`, copies under the hold release
    /// the GIL. Take it after the last step that may run Python code.
    #[inline(always)]
    fn hold(&self, call: &str, detach: bool) -> PyResult<Hold<'_>> {
        #[cfg(not(Py_GIL_DISABLED))]
        if !detach {
            // The GIL is held and stays held: no other thread runs, and this
            // one runs no Python code, until the hold is dropped.
            return if self.state.is_closed() {
                Err(closed(call))
            } else {
                Ok(Hold {
                    _counted: None,
                    detach,
                })
            };
        }
        match self.state.enter() {
            Some(op) => Ok(Hold {
                _counted: Some(op),
                detach,
            }),
            None => Err(closed(call)),
        }
    }

    /// [`Mapping::hold`] for a copy of `n` bytes: the GIL is released from
    /// [`DETACH_AT`] bytes on.
    #[inline(always)]
    fn hold_for(&self, call: &str, n: usize) -> PyResult<Hold<'_>> {
        self.hold(call, n >= DETACH_AT)
    }

    #[inline(always)]
    fn ensure_open(&self, call: &str) -> PyResult<()> {
        if self.state.is_closed() {
            Err(closed(call))
        } else {
            Ok(())
        }
    }

    /// The error of a store into a read-only mapping: TypeError (as `mmap`
    /// raises for `ACCESS_READ`), or ValueError once it is closed, as for
    /// every other use after `close()`.
    #[cold]
    fn read_only(&self, call: &str) -> PyErr {
        if self.state.is_closed() {
            return closed(call);
        }
        PyTypeError::new_err(format!(
            "{call}: the mapping is read-only (mapped with readonly=True or from a read-only descriptor)"
        ))
    }

    /// Checks `[offset, offset + len)`.
    #[inline(always)]
    fn range(&self, call: &str, offset: i64, len: usize) -> PyResult<Range> {
        match usize::try_from(offset) {
            Ok(o) if o <= self.len && len <= self.len - o => Ok(Range { offset: o, len }),
            _ => Err(self.range_error(call, offset, len as i128)),
        }
    }

    /// Checks an offset and an optional length (default: to the end).
    fn range_opt(&self, call: &str, offset: i64, length: Option<i64>) -> PyResult<Range> {
        let len = match length {
            None => match usize::try_from(offset) {
                Ok(o) if o <= self.len => self.len - o,
                _ => return Err(self.range_error(call, offset, 0)),
            },
            Some(n) => usize::try_from(n).map_err(|_| self.range_error(call, offset, n as i128))?,
        };
        self.range(call, offset, len)
    }

    #[cold]
    fn range_error(&self, call: &str, offset: i64, len: i128) -> PyErr {
        let why = if offset < 0 {
            format!("offset {offset}: negative")
        } else if len < 0 {
            format!("length {len}: negative")
        } else if offset as u64 > self.len as u64 {
            format!(
                "offset {offset}: past the end of the mapping ({} bytes)",
                self.len
            )
        } else {
            format!(
                "offset {offset} + length {len}: past the end of the mapping ({} bytes)",
                self.len
            )
        };
        PyValueError::new_err(format!("{call}: {why}"))
    }

    #[inline(always)]
    fn at(&self, offset: usize) -> *mut u8 {
        (self.addr + offset) as *mut u8
    }

    /// Copies `r.len` bytes from `src` into the mapping at `r` with the
    /// engine's checked copy (a bus error becomes OSError(EIO)), or, with
    /// `flags` (see [`store_flags`]), with the engine's flagged copy after a
    /// guarded probe of each destination page.
    ///
    /// # Safety
    /// `src` is readable for `r.len` bytes for the whole call and `r` was
    /// checked.
    #[inline(always)]
    unsafe fn store(
        &self,
        py: Python<'_>,
        hold: &Hold<'_>,
        call: &str,
        r: Range,
        src: *const u8,
        flags: Option<u32>,
    ) -> PyResult<()> {
        let (dst, n, s) = (self.at(r.offset) as usize, r.len, src as usize);
        if s < dst + n && dst < s + n {
            // SAFETY: the caller's contract.
            return unsafe { self.store_overlapping(py, hold, call, r, src, flags) };
        }
        // SAFETY: the caller's contract; no overlap (checked above).
        unsafe { self.store_apart(py, hold, call, r, src, flags) }
    }

    /// [`Mapping::store`] from a source that is a view of this mapping
    /// overlapping the destination (the copy requires that they do not):
    /// takes a private copy first, itself fault-safe. Out of line, so that
    /// the common path inlines into its caller.
    ///
    /// # Safety
    /// As [`Mapping::store`].
    #[cold]
    #[inline(never)]
    unsafe fn store_overlapping(
        &self,
        py: Python<'_>,
        hold: &Hold<'_>,
        call: &str,
        r: Range,
        src: *const u8,
        flags: Option<u32>,
    ) -> PyResult<()> {
        let tmp = self.read_vec_at(py, hold, call, src, r)?;
        // SAFETY: `tmp` holds `r.len` bytes and is not in the mapping.
        unsafe { self.store_apart(py, hold, call, r, tmp.as_ptr(), flags) }
    }

    /// [`Mapping::store`] once the source is known not to overlap `r`.
    ///
    /// # Safety
    /// As [`Mapping::store`], and `src` does not overlap `r`.
    #[inline(always)]
    unsafe fn store_apart(
        &self,
        py: Python<'_>,
        hold: &Hold<'_>,
        call: &str,
        r: Range,
        src: *const u8,
        flags: Option<u32>,
    ) -> PyResult<()> {
        let (dst, n, s) = (self.at(r.offset) as usize, r.len, src as usize);
        let Some(flags) = flags else {
            // SAFETY: the caller's contract.
            let copy = move || unsafe {
                pmem_sys::memcpy_to_pmem_checked(dst as *mut u8, s as *const u8, n)
            };
            return hold.run(py, copy).map_err(|e| fault(call, r, e));
        };
        // SAFETY: the caller's contract.
        unsafe { self.store_flagged(py, hold, call, r, src, flags) }
    }

    /// [`Mapping::store_apart`] with per-call flags.
    ///
    /// # Safety
    /// As [`Mapping::store_apart`]; `flags` were built from the engine's
    /// F_* constants.
    #[inline(never)]
    unsafe fn store_flagged(
        &self,
        py: Python<'_>,
        hold: &Hold<'_>,
        call: &str,
        r: Range,
        src: *const u8,
        flags: u32,
    ) -> PyResult<()> {
        // The engine's flagged copy is not itself guarded: a guarded load of
        // each destination page first turns a truncated page into
        // OSError(EIO), as for flush (a page truncated between the probe and
        // the copy is not caught, the window of cache-line mappings).
        self.probe(call, r)?;
        let (dst, n, s) = (self.at(r.offset) as usize, r.len, src as usize);
        // SAFETY: the caller's contract.
        let copy =
            move || unsafe { pmem_sys::memcpy_flags(dst as *mut u8, s as *const u8, n, flags) };
        hold.run(py, copy).map_err(|e| fault(call, r, e))
    }

    /// Whether a store with `flags` ends with the fence (and so, on a
    /// page-granular mapping, an msync that must not hold the GIL).
    #[inline(always)]
    fn drains(&self, flags: Option<u32>, n: usize) -> bool {
        n >= DETACH_AT
            || flags.is_some_and(|f| {
                f & (pmem_sys::F_NODRAIN | pmem_sys::F_NOFLUSH) == 0
                    && self.granularity == Granularity::Page
            })
    }

    /// Copies `r.len` bytes at `src` (which may lie in a mapping) into a new
    /// vector, fault-safe.
    fn read_vec_at(
        &self,
        py: Python<'_>,
        hold: &Hold<'_>,
        call: &str,
        src: *const u8,
        r: Range,
    ) -> PyResult<Vec<u8>> {
        let mut v = vec![0u8; r.len];
        let (s, d, n) = (src as usize, v.as_mut_ptr() as usize, r.len);
        // SAFETY: `v` is writable for `n` bytes; `src` is readable for `n`
        // bytes (a held export or this mapping, held open by the caller) or
        // faults, which the guarded copy reports.
        let copy =
            move || unsafe { pmem_sys::memcpy_from_pmem_checked(d as *mut u8, s as *const u8, n) };
        hold.run(py, copy).map_err(|e| fault(call, r, e))?;
        Ok(v)
    }

    /// Before an operation the engine does not guard (the flush
    /// instructions of flush and persist, which fault like loads), read one
    /// byte of each page of `r` through a guarded copy, so a page that would
    /// raise SIGBUS is reported as OSError(EIO) instead.
    fn probe(&self, call: &str, r: Range) -> PyResult<()> {
        let page = self.page;
        let mut off = r.offset;
        let end = r.offset + r.len;
        while off < end {
            let p = self.at(off);
            // SAFETY: `off` is inside the checked range, held open by the
            // caller; one byte.
            let result = unsafe { pmem_sys::memcpy_from_pmem_checked(&mut 0u8, p, 1) };
            result.map_err(|e| fault(call, r, e))?;
            off = (off / page + 1) * page;
        }
        Ok(())
    }

    /// Copies the mapping's bytes at `r` to `dst` with the guarded copy of
    /// memcpy_from_pmem, which reports a bus error (OSError(EIO)) instead of
    /// crashing.
    ///
    /// # Safety
    /// `dst` is writable for `r.len` bytes, does not overlap the mapping
    /// (see [`Mapping::overlaps`]) and `r` was checked.
    #[inline(always)]
    unsafe fn load(
        &self,
        py: Python<'_>,
        hold: &Hold<'_>,
        call: &str,
        r: Range,
        dst: *mut u8,
    ) -> PyResult<()> {
        let (src, d, n) = (self.at(r.offset) as usize, dst as usize, r.len);
        // SAFETY: the caller's contract.
        let copy = move || unsafe {
            pmem_sys::memcpy_from_pmem_checked(d as *mut u8, src as *const u8, n)
        };
        hold.run(py, copy).map_err(|e| fault(call, r, e))
    }

    fn overlaps(&self, p: *const u8, n: usize) -> bool {
        let p = p as usize;
        p < self.addr + self.len && self.addr < p + n
    }

    /// Reads `r` into a new `bytes` object without zeroing it first. Takes
    /// its own hold.
    #[inline(always)]
    fn read_bytes<'py>(
        &self,
        py: Python<'py>,
        call: &str,
        r: Range,
    ) -> PyResult<Bound<'py, PyBytes>> {
        // SAFETY: a NULL source asks CPython for an uninitialised object of
        // `r.len` bytes, owned by us until returned.
        let obj = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyBytes_FromStringAndSize(std::ptr::null(), r.len as ffi::Py_ssize_t),
            )?
        };
        // Allocating may have run finalizers: hold only now.
        let hold = self.hold_for(call, r.len)?;
        // SAFETY: `obj` is a bytes object; its buffer has `r.len` bytes and is
        // ours alone (no other reference exists yet). Bytes objects are never
        // inside a mapping, so there is no overlap.
        unsafe {
            let dst = ffi::PyBytes_AsString(obj.as_ptr()) as *mut u8;
            self.load(py, &hold, call, r, dst)?;
            Ok(obj.cast_into_unchecked())
        }
    }

    /// Reads `r` into a vector (the slow paths). The caller holds.
    fn read_vec(&self, py: Python<'_>, hold: &Hold<'_>, call: &str, r: Range) -> PyResult<Vec<u8>> {
        self.read_vec_at(py, hold, call, self.at(r.offset), r)
    }

    fn index(&self, call: &str, key: &Bound<'_, PyAny>) -> PyResult<usize> {
        let i: isize = key.extract().map_err(|e: PyErr| {
            if e.is_instance_of::<PyTypeError>(key.py()) {
                let t = key
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                PyTypeError::new_err(format!(
                    "{call}: indices must be integers or slices, not '{t}'"
                ))
            } else {
                e
            }
        })?;
        let n = self.len as isize;
        let j = if i < 0 { i + n } else { i };
        if (0..n).contains(&j) {
            Ok(j as usize)
        } else {
            Err(PyIndexError::new_err(format!(
                "{call}: index {i}: out of range for a mapping of {} bytes",
                self.len
            )))
        }
    }

    /// `persist` and `flush`: write back and fence, or msync.
    #[inline(always)]
    fn durable(
        &self,
        py: Python<'_>,
        call: &str,
        offset: i64,
        length: Option<i64>,
    ) -> PyResult<()> {
        let r = self.range_opt(call, offset, length)?;
        // msync is a system call that may wait for the disk: never hold the
        // GIL across it.
        let hold = self.hold(
            call,
            r.len >= DETACH_AT || self.granularity == Granularity::Page,
        )?;
        if self.granularity == Granularity::CacheLine {
            self.probe(call, r)?;
        }
        let (p, n) = (self.at(r.offset) as usize, r.len);
        // SAFETY: `r` is inside the mapping, held open by `hold`.
        hold.run(py, move || unsafe { pmem_sys::persist(p as *const u8, n) })
            .map_err(os_error)
    }

    fn unmap_now(&self) -> PyResult<()> {
        mapping::unmap(self.addr).map_err(os_error)
    }
}

#[pymethods]
impl Mapping {
    /// Copies the bytes of ``data`` (any bytes-like object) to ``offset``
    /// with memcpy_to_pmem: written back (or non-temporal), not fenced.
    /// Durable after :meth:`persist` of the range or :func:`pypmem.wmb_pmem`
    /// in the same thread. Raises ValueError if the range does not fit.
    ///
    /// Keywords choose how, per call (PMDK's ``PMEM_F_MEM_*`` flags):
    /// ``nontemporal=True`` streams with non-temporal stores whatever the
    /// size, ``temporal=True`` never does (ordinary stores, then
    /// write-back); ``flush=False`` leaves the bytes in the CPU cache (or,
    /// on a page-granular mapping, not remembered for msync): durable only
    /// after a later :meth:`persist`; ``drain=True`` ends with the fence,
    /// so the bytes are durable when the call returns (raises OSError if an
    /// msync failed). ``nontemporal`` with ``temporal``, and ``drain`` with
    /// ``flush=False``, raise ValueError.
    // The keywords are taken as objects and converted only when given:
    // four `bool` parameters cost about 6 ns per call on the hot path
    // without any keyword (measured against this form; BENCHMARKS.md).
    #[inline]
    #[pyo3(
        signature = (offset, data, /, *, nontemporal=None, temporal=None, flush=None, drain=None),
        text_signature = "($self, offset, data, /, *, nontemporal=False, temporal=False, flush=True, drain=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        offset: i64,
        data: &Bound<'_, PyAny>,
        nontemporal: Option<&Bound<'_, PyAny>>,
        temporal: Option<&Bound<'_, PyAny>>,
        flush: Option<&Bound<'_, PyAny>>,
        drain: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        const CALL: &str = "Mapping.write";
        if self.readonly {
            return Err(self.read_only(CALL));
        }
        let flags = match (nontemporal, temporal, flush, drain) {
            (None, None, None, None) => None,
            kw => flag_keywords(CALL, kw)?,
        };
        if let Some((p, n)) = exact_bytes(data) {
            let r = self.range(CALL, offset, n)?;
            let hold = self.hold(CALL, self.drains(flags, n))?;
            // SAFETY: `data` (immutable bytes) is held by the caller for the
            // whole call; `r` is checked; `hold` keeps the mapping open.
            return unsafe { self.store(py, &hold, CALL, r, p, flags) };
        }
        // Other exporters: borrow the buffer in place (no Result or enum moves
        // of the 80-byte Py_buffer); anything unusual goes to Source.
        let mut view = ffi::Py_buffer::new();
        // SAFETY: `data` is a live object and `view` a writable Py_buffer.
        if unsafe { ffi::PyObject_GetBuffer(data.as_ptr(), &mut view, ffi::PyBUF_SIMPLE) } != 0 {
            let first = PyErr::fetch(py);
            let src = Source::slow(data, CALL, first)?;
            let r = self.range(CALL, offset, src.len())?;
            let hold = self.hold(CALL, self.drains(flags, r.len))?;
            // SAFETY: `src` holds the bytes; `r` is checked; held.
            return unsafe { self.store(py, &hold, CALL, r, src.ptr(), flags) };
        }
        let (p, n) = (view.buf as *const u8, view.len.max(0) as usize);
        let _release = Release(&mut view);
        let r = self.range(CALL, offset, n)?;
        let hold = self.hold(CALL, self.drains(flags, n))?;
        // SAFETY: the export stays held until `_release` drops, after the
        // copy; `r` is checked; `hold` keeps the mapping open.
        unsafe { self.store(py, &hold, CALL, r, p, flags) }
    }

    /// Returns ``length`` bytes from ``offset`` as ``bytes``, copied with
    /// memcpy_from_pmem: a media error raises OSError(EIO) instead of
    /// crashing. Raises ValueError if the range does not fit.
    fn read<'py>(
        &self,
        py: Python<'py>,
        offset: i64,
        length: i64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        const CALL: &str = "Mapping.read";
        self.ensure_open(CALL)?;
        let r = self.range_opt(CALL, offset, Some(length))?;
        self.read_bytes(py, CALL, r)
    }

    /// Fills ``buffer`` (a writable bytes-like object) with ``len(buffer)``
    /// bytes from ``offset``; returns the number of bytes copied. Raises
    /// ValueError if they do not fit, TypeError if ``buffer`` is not writable.
    fn readinto(&self, py: Python<'_>, offset: i64, buffer: &Bound<'_, PyAny>) -> PyResult<usize> {
        const CALL: &str = "Mapping.readinto";
        self.ensure_open(CALL)?;
        let t = Target::get(buffer, CALL)?;
        let r = self.range(CALL, offset, t.len())?;
        let hold = self.hold_for(CALL, r.len)?;
        match t.direct_ptr() {
            Some(p) if !self.overlaps(p, r.len) => {
                // SAFETY: the export is writable for `r.len` bytes and stays
                // held by `t`; no overlap with the mapping.
                unsafe { self.load(py, &hold, CALL, r, p)? };
            }
            Some(p) => {
                // A view of this mapping: read first, then store (memmove
                // semantics, through the engine because it is pmem).
                let v = self.read_vec(py, &hold, CALL, r)?;
                let (dst, n) = (p as usize, r.len);
                // SAFETY: `p` is inside this mapping (held open by `hold`) and
                // writable for `n` bytes; `v` is a separate vector.
                unsafe { pmem_sys::memcpy_to_pmem_checked(dst as *mut u8, v.as_ptr(), n) }
                    .map_err(|e| fault(CALL, r, e))?;
            }
            None => {
                let v = self.read_vec(py, &hold, CALL, r)?;
                t.scatter(py, &v)?;
            }
        }
        Ok(r.len)
    }

    /// Sets ``length`` bytes from ``offset`` to ``value`` (0 to 255) through
    /// the engine (written back, not fenced). Takes :meth:`write`'s
    /// keywords ``nontemporal``, ``temporal``, ``flush`` and ``drain``.
    #[pyo3(
        signature = (offset, value, length, /, *, nontemporal=None, temporal=None, flush=None, drain=None),
        text_signature = "($self, offset, value, length, /, *, nontemporal=False, temporal=False, flush=True, drain=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn memset(
        &self,
        py: Python<'_>,
        offset: i64,
        value: &Bound<'_, PyAny>,
        length: i64,
        nontemporal: Option<&Bound<'_, PyAny>>,
        temporal: Option<&Bound<'_, PyAny>>,
        flush: Option<&Bound<'_, PyAny>>,
        drain: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        const CALL: &str = "Mapping.memset";
        if self.readonly {
            return Err(self.read_only(CALL));
        }
        let flags = match (nontemporal, temporal, flush, drain) {
            (None, None, None, None) => None,
            kw => flag_keywords(CALL, kw)?,
        };
        let c = byte_value(CALL, value)?;
        let r = self.range_opt(CALL, offset, Some(length))?;
        let hold = self.hold(CALL, self.drains(flags, r.len))?;
        let (dst, n) = (self.at(r.offset) as usize, r.len);
        let Some(flags) = flags else {
            // SAFETY: `r` is inside the mapping, held open by `hold`.
            return hold
                .run(py, move || unsafe {
                    pmem_sys::memset_pmem_checked(dst as *mut u8, c, n)
                })
                .map_err(|e| fault(CALL, r, e));
        };
        // Guarded probe first, as for a flagged write.
        self.probe(CALL, r)?;
        // SAFETY: `r` is inside the mapping, held open by `hold`; the flags
        // were built from the engine's F_* constants.
        hold.run(py, move || unsafe {
            pmem_sys::memset_flags(dst as *mut u8, c, n, flags)
        })
        .map_err(|e| fault(CALL, r, e))
    }

    /// Makes the range durable and then flushes the device's own write
    /// queues (pmem_deep_persist): on device-DAX the region's ``deep_flush``
    /// is written, on a page-granular mapping it is msync; elsewhere it is
    /// :meth:`persist`. For data that must survive a failure of the
    /// platform's ADR as well. ``length=None`` means to the end; raises
    /// OSError if the flush fails.
    #[pyo3(signature = (offset=0, length=None))]
    fn deep_persist(&self, py: Python<'_>, offset: i64, length: Option<i64>) -> PyResult<()> {
        const CALL: &str = "Mapping.deep_persist";
        let r = self.range_opt(CALL, offset, length)?;
        // A system call (sysfs write or msync) may wait: never with the GIL.
        let hold = self.hold(CALL, true)?;
        if self.granularity == Granularity::CacheLine {
            self.probe(CALL, r)?;
        }
        let (p, n) = (self.at(r.offset) as usize, r.len);
        // SAFETY: `r` is inside the mapping, held open by `hold`.
        hold.run(py, move || unsafe {
            pmem_sys::deep_persist(p as *const u8, n)
        })
        .map_err(|e| fault(CALL, r, e))
    }

    /// Writes the range back from the CPU caches (the kernel's
    /// arch_wb_cache_pmem) after stores made through a memoryview or numpy,
    /// without a fence: several ranges can share one
    /// :func:`pypmem.wmb_pmem`, which makes them durable. On a page-granular
    /// mapping the range is remembered for that fence's msync. ``length=None``
    /// means to the end. For durability in one call use :meth:`persist`.
    #[pyo3(signature = (offset=0, length=None))]
    fn write_back(&self, py: Python<'_>, offset: i64, length: Option<i64>) -> PyResult<()> {
        const CALL: &str = "Mapping.write_back";
        let r = self.range_opt(CALL, offset, length)?;
        let hold = self.hold_for(CALL, r.len)?;
        if self.granularity == Granularity::CacheLine {
            // Flush instructions fault like loads on a page that is gone.
            self.probe(CALL, r)?;
        }
        let (p, n) = (self.at(r.offset) as usize, r.len);
        // SAFETY: `r` is inside the mapping, held open by `hold`.
        hold.run(py, move || unsafe {
            pmem_sys::arch_wb_cache_pmem(p as *const u8, n)
        });
        Ok(())
    }

    /// Makes the range durable, as the standard library's ``mmap.flush()``
    /// does: msync on a page-granular mapping, write back and fence
    /// elsewhere. The same as :meth:`persist`; takes ``mmap.flush``'s
    /// arguments (``offset`` need not be page-aligned here). Raises OSError
    /// if msync fails. ``length=None`` means to the end. The write-back
    /// without a fence is :meth:`write_back`.
    #[pyo3(signature = (offset=0, length=None))]
    fn flush(&self, py: Python<'_>, offset: i64, length: Option<i64>) -> PyResult<()> {
        self.durable(py, "Mapping.flush", offset, length)
    }

    /// Makes the range durable: write back and fence, or msync on a
    /// page-granular mapping. Covers every store to the range however it was
    /// made (write, slice assignment, memoryview, numpy). Raises OSError if
    /// msync fails. ``length=None`` means to the end.
    #[pyo3(signature = (offset=0, length=None))]
    fn persist(&self, py: Python<'_>, offset: i64, length: Option<i64>) -> PyResult<()> {
        self.durable(py, "Mapping.persist", offset, length)
    }

    /// Unmaps. Raises BufferError while a memoryview, numpy array or other
    /// buffer export is alive (or another thread is copying); once they are
    /// released it succeeds. Closing twice is allowed. Does not persist.
    fn close(&self) -> PyResult<()> {
        match self.state.close() {
            Close::Now => self.unmap_now(),
            Close::Already => Ok(()),
            Close::Exported(n) => Err(PyBufferError::new_err(format!(
                "Mapping.close: {n} buffer export(s) (memoryview, numpy array, ...) still alive; release them first"
            ))),
            Close::Busy(_) => Err(PyBufferError::new_err(
                "Mapping.close: the mapping is in use by an operation in progress (another thread's copy, or a callback of this one)",
            )),
        }
    }

    /// A copy of the whole mapping as ``bytes``, made with the guarded copy
    /// of :meth:`read` (a media error or a truncated file raises
    /// OSError(EIO) instead of killing the process). ``bytes(m)`` calls it.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        const CALL: &str = "Mapping.__bytes__";
        self.ensure_open(CALL)?;
        self.read_bytes(
            py,
            CALL,
            Range {
                offset: 0,
                len: self.len,
            },
        )
    }

    /// True if the mapping was made read-only (``readonly=True``, or
    /// :func:`pypmem.memremap_pmem` of a read-only descriptor): stores raise
    /// TypeError and buffer exports are read-only.
    #[getter]
    fn readonly(&self) -> PyResult<bool> {
        self.ensure_open("Mapping.readonly")?;
        Ok(self.readonly)
    }

    /// True once :meth:`close` has succeeded; readable after close.
    #[getter]
    fn closed(&self) -> bool {
        self.state.is_closed()
    }

    /// The mapped length in bytes (the same as ``len(m)``).
    #[getter]
    fn size(&self) -> PyResult<usize> {
        self.ensure_open("Mapping.size")?;
        Ok(self.len)
    }

    /// ``"byte"`` (eADR: stores are durable once visible), ``"cache_line"``
    /// (flush and fence) or ``"page"`` (msync).
    #[getter]
    fn granularity(&self) -> PyResult<&'static str> {
        self.ensure_open("Mapping.granularity")?;
        Ok(self.granularity.name())
    }

    /// True for byte and cache-line granularity: stores reach persistence
    /// by flush and fence, without msync.
    #[getter]
    fn is_pmem(&self) -> PyResult<bool> {
        self.ensure_open("Mapping.is_pmem")?;
        Ok(self.granularity != Granularity::Page)
    }

    /// Why the mapping has its granularity, in a sentence.
    #[getter]
    fn reason(&self) -> PyResult<&str> {
        self.ensure_open("Mapping.reason")?;
        Ok(&self.reason)
    }

    fn __len__(&self) -> PyResult<usize> {
        self.ensure_open("Mapping.__len__")?;
        Ok(self.len)
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        const CALL: &str = "Mapping.__getitem__";
        if let Ok(slice) = key.cast::<PySlice>() {
            // No ensure_open here: the length is immutable, and every path
            // below takes a hold, which refuses a closed mapping.
            let s = slice.indices(self.len as isize)?;
            if s.step == 1 || s.slicelength <= 1 {
                let start = if s.slicelength == 0 {
                    0
                } else {
                    s.start as usize
                };
                return Ok(self
                    .read_bytes(
                        py,
                        CALL,
                        Range {
                            offset: start,
                            len: s.slicelength,
                        },
                    )?
                    .into_any());
            }
            // Extended slice: read the span once, then pick.
            let last = s.start + (s.slicelength as isize - 1) * s.step;
            let (lo, hi) = (s.start.min(last) as usize, s.start.max(last) as usize);
            let span = {
                let r = Range {
                    offset: lo,
                    len: hi - lo + 1,
                };
                let hold = self.hold_for(CALL, r.len)?;
                self.read_vec(py, &hold, CALL, r)?
            };
            let picked: Vec<u8> = (0..s.slicelength as isize)
                .map(|k| span[(s.start + k * s.step) as usize - lo])
                .collect();
            return Ok(PyBytes::new(py, &picked).into_any());
        }
        self.ensure_open(CALL)?;
        let i = self.index(CALL, key)?;
        let hold = self.hold(CALL, false)?;
        let mut b = 0u8;
        // SAFETY: one byte, not inside the mapping.
        unsafe { self.load(py, &hold, CALL, Range { offset: i, len: 1 }, &mut b)? };
        Ok(b.into_pyobject(py)?.into_any())
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        const CALL: &str = "Mapping.__setitem__";
        if self.readonly {
            return Err(self.read_only(CALL));
        }
        if let Ok(slice) = key.cast::<PySlice>() {
            let s = slice.indices(self.len as isize)?;
            // The commonest case first, without ensure_open: the hold
            // refuses a closed mapping.
            if let Some((p, n)) = exact_bytes(value)
                && s.step == 1
                && n == s.slicelength
                && n != 0
            {
                let r = Range {
                    offset: s.start as usize,
                    len: n,
                };
                let hold = self.hold_for(CALL, n)?;
                // SAFETY: `value` (immutable bytes) is held by the caller
                // for the whole call; `r` lies inside the mapping (slice
                // indices are clipped to it); `hold` keeps it open.
                return unsafe { self.store(py, &hold, CALL, r, p, None) };
            }
            self.ensure_open(CALL)?;
            let src = Source::get(value, CALL)?;
            if src.len() != s.slicelength {
                return Err(PyValueError::new_err(format!(
                    "{CALL}: slice of {} bytes, data of {} bytes: the lengths must match",
                    s.slicelength,
                    src.len()
                )));
            }
            if s.slicelength == 0 {
                return Ok(());
            }
            let r = Range {
                offset: s.start as usize,
                len: s.slicelength,
            };
            let hold = self.hold_for(CALL, r.len)?;
            if s.step == 1 {
                // SAFETY: `src` holds the bytes; `r` lies inside the mapping
                // (slice indices are clipped to it); `hold` keeps it open.
                return unsafe { self.store(py, &hold, CALL, r, src.ptr(), None) };
            }
            // Extended slice: byte by byte, from a private (fault-safe) copy
            // in case the source is a view of this mapping.
            let data = self.read_vec_at(py, &hold, CALL, src.ptr(), r)?;
            let (base, start, step) = (self.addr, s.start, s.step);
            let scatter = move || {
                for (k, b) in data.iter().enumerate() {
                    let at = base + (start + k as isize * step) as usize;
                    // SAFETY: `at` is inside the mapping (slice indices are
                    // clipped to it), held open by `hold`.
                    unsafe { pmem_sys::memcpy_to_pmem_checked(at as *mut u8, b, 1)? };
                }
                Ok(())
            };
            return hold.run(py, scatter).map_err(|e| fault(CALL, r, e));
        }
        self.ensure_open(CALL)?;
        let i = self.index(CALL, key)?;
        let b = byte_value(CALL, value)?;
        let hold = self.hold(CALL, false)?;
        // SAFETY: `i` is inside the mapping, held open by `hold`.
        unsafe { self.store(py, &hold, CALL, Range { offset: i, len: 1 }, &b, None) }
    }

    fn __delitem__(&self, _key: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "Mapping.__delitem__: a mapping has a fixed size; bytes cannot be deleted",
        ))
    }

    /// Exports the mapped bytes (format "B"; writable unless the mapping is
    /// read-only) and counts the export.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        if view.is_null() {
            return Err(PyBufferError::new_err(
                "Mapping.__getbuffer__: view is NULL",
            ));
        }
        if !this.state.export() {
            return Err(closed("Mapping.__getbuffer__"));
        }
        // SAFETY: `view` is CPython's to fill; FillInfo sets `view->obj` to a
        // new reference to the Mapping, which keeps it (and so the memory,
        // since close() refuses while the export is counted) alive until
        // PyBuffer_Release. shape/strides point into the view itself.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                this.addr as *mut std::ffi::c_void,
                this.len as ffi::Py_ssize_t,
                c_int::from(this.readonly),
                flags,
            )
        };
        if rc != 0 {
            this.state.unexport();
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// Counts the export out; never raises.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.state.unexport();
    }

    /// Returns the mapping itself; the ``with`` block closes it.
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes (BufferError if exports are alive, as for :meth:`close`).
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close()
    }

    fn __repr__(&self) -> String {
        if self.state.is_closed() {
            "<pypmem.Mapping closed>".to_owned()
        } else {
            format!(
                "<pypmem.Mapping size={} granularity={}{} exports={}>",
                self.len,
                self.granularity.name(),
                if self.readonly { " readonly" } else { "" },
                self.state.exports()
            )
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Nothing else can reach the object now: every export and every
        // operation holds a reference. Unmap unless close() already did.
        if self.state.close() == Close::Now {
            let _ = mapping::unmap(self.addr);
        }
    }
}
