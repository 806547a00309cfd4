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
