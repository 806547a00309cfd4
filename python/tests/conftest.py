"""Shared fixtures: files with known contents, mapped at each granularity.

Every check of "what is in the file" goes through an independent ``open()``
of the file, never through the mapping under test.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pypmem

FILE_SIZE = 256 * 1024  # larger than DETACH_AT, so large copies are covered


def file_bytes(path: Path | str) -> bytes:
    """The file's contents as another process would read them."""
    with open(path, "rb") as f:
        return f.read()


def fill(path: Path, size: int = FILE_SIZE, seed: int = 1) -> bytes:
    """Writes ``size`` reproducible pseudo-random bytes to ``path``."""
    data = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(size))
    path.write_bytes(data)
    return data


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    """A file with known contents."""
    p = tmp_path / "data.pmem"
    return p, fill(p)


# The three granularities. This machine has no persistent memory, so the
# finer two are forced with PMEM_SYS_FORCE_GRANULARITY: the engine then
# really uses flush instructions (cache_line) or no flushes (byte) on the
# page-cache file, which is valid on ordinary memory, and msync for page.
GRANULARITIES = ["page", "cache_line", "byte"]


@pytest.fixture(params=GRANULARITIES)
def granularity(request: pytest.FixtureRequest) -> Iterator[str]:
    """Forces new mappings to a granularity for the duration of a test."""
    g: str = request.param
    pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", None if g == "page" else g)
    try:
        yield g
    finally:
        pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", None)


@pytest.fixture
def mapped(data_file: tuple[Path, bytes], granularity: str) -> Iterator[tuple[pypmem.Mapping, Path, bytes]]:
    """A mapping of ``data_file`` at each granularity, closed afterwards."""
    path, data = data_file
    m = pypmem.map_file(path)
    assert m.granularity == granularity
    try:
        yield m, path, data
    finally:
        m.close()


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """As root, acts as nobody (effective ids only, restored afterwards):
    root may open any file read-write, so it cannot show the point."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def world_readable_file() -> Iterator[Path]:
    """A file anyone may read and nobody but its owner may write, in a
    directory anyone may enter (pytest's tmp_path is private to its user)."""
    d = Path(tempfile.mkdtemp(prefix="pypmem-ro-"))
    try:
        os.chmod(d, 0o755)
        p = d / "readable.pmem"
        p.write_bytes(b"r" * os.sysconf("SC_PAGE_SIZE"))
        os.chmod(p, 0o444)
        yield p
    finally:
        shutil.rmtree(d)


PAGE = os.sysconf("SC_PAGE_SIZE")
KPF_DIRTY = 1 << 4  # include/uapi/linux/kernel-page-flags.h


def page_flags(addr: int) -> int | None:
    """The kernel's flags of the page frame behind virtual address ``addr``
    of this process (/proc/self/pagemap, then /proc/kpageflags), or None
    when the frame number is hidden (not root) or the page is not present."""
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(addr // PAGE * 8)
        entry = struct.unpack("<Q", f.read(8))[0]
    pfn = entry & ((1 << 55) - 1)
    if not entry >> 63 or pfn == 0:
        return None
    with open("/proc/kpageflags", "rb") as f:
        f.seek(pfn * 8)
        flags: int = struct.unpack("<Q", f.read(8))[0]
        return flags


@pytest.fixture
def page_cache_file(tmp_path: Path) -> Iterator[Path]:
    """A file on a filesystem with write-back (dirty pages are cleaned only
    by msync or the flusher), or SKIPPED."""
    if not os.access("/proc/kpageflags", os.R_OK):
        print("SKIPPED: durability checks through the page flags: /proc/kpageflags is not readable (needs root)")
        pytest.skip("/proc/kpageflags is not readable (needs root)")
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout.strip()
    if fs in ("tmpfs", "ramfs", ""):
        print(f"SKIPPED: durability checks through the page flags: {tmp_path} is on {fs or 'an unknown filesystem'}, which has no write-back")
        pytest.skip(f"{tmp_path} has no write-back ({fs})")
    p = tmp_path / "dirty.pmem"
    p.write_bytes(bytes(4 * PAGE))
    os.sync()
    yield p


def page_dirty(m: pypmem.Mapping, offset: int) -> bool:
    """Whether the page cache holds the page of ``m`` at ``offset`` dirty
    (written to and not yet written back: not durable)."""
    with memoryview(m) as v:
        base = ctypes.addressof(ctypes.c_char.from_buffer(v))
    flags = page_flags(base + offset)
    assert flags is not None, "the page frame is not visible"
    return bool(flags & KPF_DIRTY)
