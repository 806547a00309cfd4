"""pypmem: persistent memory for Python.

Map a file with :func:`map_file` (or an open descriptor with
:func:`memremap_pmem`) and get a :class:`Mapping`: a writable buffer that
``memoryview`` and ``numpy.frombuffer`` see without copying, whose
:meth:`Mapping.write` and :meth:`Mapping.read` go through pmem-sys'
engine (non-temporal copies, cache-line write-back, fences, or msync where
the file sits behind the page cache), and whose :meth:`Mapping.persist`
makes a range durable.

The engine is linked into the extension; no system library is needed.
"""

from pypmem._pypmem import (
    DETACH_AT,
    ENGINE_VERSION,
    Mapping,
    __version__,
    arch_has_pmem_api,
    arch_has_wmb_pmem,
    cpu_features,
    get_option,
    implementation,
    knobs_report,
    map_file,
    memremap_pmem,
    movnt_threshold,
    option_names,
    set_option,
    wmb_pmem,
)

from pypmem import _pypmem


class _OctalMode(int):
    """A permission that prints in octal, so that ``help(map_file)`` shows
    ``mode=0o666`` (the text signature names this object; a plain int
    would print as 438)."""

    def __repr__(self) -> str:
        return oct(self)


_pypmem._MODE_0o666 = _OctalMode(0o666)  # type: ignore[attr-defined]

__all__ = [
    "DETACH_AT",
    "ENGINE_VERSION",
    "Mapping",
    "__version__",
    "arch_has_pmem_api",
    "arch_has_wmb_pmem",
    "cpu_features",
    "get_option",
    "implementation",
    "knobs_report",
    "map_file",
    "memremap_pmem",
    "movnt_threshold",
    "option_names",
    "set_option",
    "wmb_pmem",
]
