"""Crash-consistency testing from pytest.

:func:`check` runs a workload against a fresh mapping while pmem-sys
records every store, write-back, fence and msync (and, by comparing the
mapping with a shadow at each call, the stores made through memoryviews and
numpy arrays), then calls a check on every image of the file that a power
failure at any point could have left, under the x86-64 persistence rules
(see the ``pmem-sys-crashtest`` README). A failing image raises
AssertionError naming the crash point (the call, and the Python line that
made it), which lines were and were not durable, and how to check that one
image again::

    import pypmem.crashtest

    def test_log_survives_power_failure():
        def workload(m):
            m.write(64, record)        # the record...
            pypmem.wmb_pmem()          # ...durable...
            m.write(0, tail)           # ...before the tail that counts it
            pypmem.wmb_pmem()

        def consistent(path):
            data = open(path, "rb").read()
            assert tail_of(data) == 0 or record_ok(data)

        pypmem.crashtest.check(workload, consistent, size=4096)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Callable

import pypmem
from pypmem import _pypmem

__all__ = ["check", "record_start", "record_stop"]

record_start = _pypmem.record_start
record_stop = _pypmem.record_stop


def check(
    workload: Callable[[pypmem.Mapping], object],
    check: Callable[[str], object],
    size: int = 4096,
    *,
    granularity: str | None = "cache_line",
    name: str = "pool.pmem",
    max_images: int = 4096,
    seed: int = 0,
    image: str | None = None,
) -> dict[str, Any]:
    """Runs ``workload(mapping)`` on a fresh, zeroed file of ``size`` bytes
    mapped with :func:`pypmem.map_file`, recording it, then calls
    ``check(path)`` on every image of that file a power failure could leave
    (``path`` is a temporary copy named ``name``; a directory of images
    named as the originals when the workload maps other files too). The
    check fails an image by raising (an ``assert``) or returning False.

    ``granularity`` is the rule set the run is judged by: ``"cache_line"``
    (persistent memory with ADR: flush and fence), ``"byte"`` (eADR), or
    ``None`` for what the file system gives (page granularity on tmpfs).
    At each crash point every image is checked when there are at most
    ``max_images``; otherwise ``max_images`` random ones drawn with
    ``seed`` plus the program-order prefixes. ``image`` checks only the
    image a failure report named.

    Raises AssertionError with the report for the first failing image;
    returns the counts (crash points, images checked, ...) otherwise. The
    workload's own exceptions propagate unchanged.
    """
    if granularity is not None and granularity not in ("byte", "cache_line", "page"):
        raise ValueError(
            f"pypmem.crashtest.check: granularity {granularity!r}: "
            "'byte', 'cache_line', 'page' or None"
        )
    with tempfile.TemporaryDirectory(prefix="pypmem-crashtest.") as tmp:
        trace = os.path.join(tmp, "trace.pmtrace")
        images = os.path.join(tmp, "images")
        os.mkdir(images)
        path = os.path.join(tmp, name)
        forced = pypmem.get_option("PMEM_SYS_FORCE_GRANULARITY")
        if granularity is not None:
            pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", granularity)
        try:
            _pypmem.record_start(trace)
            try:
                m = pypmem.map_file(path, size, create=True)
                try:
                    workload(m)
                finally:
                    # A view the workload still holds keeps it mapped; the
                    # recording has seen its stores either way.
                    with contextlib.suppress(BufferError, ValueError):
                        m.close()
            finally:
                _pypmem.record_stop()
        finally:
            pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", forced or None)
        report, stats = _pypmem._crash_check(trace, images, check, max_images, seed, image)
    if report is not None:
        raise AssertionError(
            "a crash image fails its check (granularity "
            f"{granularity or 'of the file system'}; {stats['images_checked']} images checked)\n"
            f"{report}"
            f"  check this image alone: pypmem.crashtest.check(..., image={stats['image']!r})"
        )
    return dict(stats)
