"""Bus errors do not crash Python: a file truncated under the mapping makes
every guarded method raise OSError(EIO) instead of SIGBUS.

Only direct access through a memoryview or numpy array is unguarded (it is
an ordinary load or store); that is documented and not exercised here.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pypmem

PAGE = os.sysconf("SC_PAGE_SIZE")

GUARDED: list[tuple[str, Callable[[pypmem.Mapping], Any]]] = [
    ("read", lambda m: m.read(PAGE, 10)),
    ("read across the end", lambda m: m.read(PAGE - 5, 10)),
    ("large read", lambda m: m.read(0, 4 * PAGE)),
    ("readinto", lambda m: m.readinto(PAGE, bytearray(100))),
    ("item", lambda m: m[2 * PAGE]),
    ("slice", lambda m: m[PAGE : PAGE + 3]),
    ("extended slice", lambda m: m[PAGE::PAGE]),
    ("write", lambda m: m.write(PAGE, b"x" * 8)),
    ("large write", lambda m: m.write(0, b"k" * (4 * PAGE))),  # page 0 keeps its bytes
    ("set item", lambda m: m.__setitem__(PAGE, 1)),
    ("set slice", lambda m: m.__setitem__(slice(PAGE, PAGE + 2), b"ab")),
    ("memset", lambda m: m.memset(PAGE - 1, 7, 2)),
    ("bytes of a slice", lambda m: bytes(m[0 : 2 * PAGE])),
    ("bytes of the mapping", lambda m: bytes(m)),  # __bytes__: the guarded copy
]


@pytest.mark.parametrize("name,call", GUARDED, ids=[g[0] for g in GUARDED])
def test_truncated_file_raises_eio_instead_of_crashing(tmp_path: Path, granularity: str, name: str, call: Callable[[pypmem.Mapping], Any]) -> None:
    path = tmp_path / "shrinking.pmem"
    path.write_bytes(b"k" * (4 * PAGE))
    with pypmem.map_file(path) as m:
        os.truncate(path, PAGE)  # pages 1..3 of the mapping are gone
        with pytest.raises(OSError) as e:
            call(m)
        assert e.value.errno == errno.EIO, e.value
        assert "bus error" in str(e.value) and "Mapping." in str(e.value)
        assert m.read(0, 10) == b"k" * 10  # the first page still works
        m.write(0, b"still")
        m.persist(0, PAGE)
    assert path.read_bytes()[:5] == b"still"


def test_bytes_of_a_truncated_mapping_survives_in_a_child(tmp_path: Path) -> None:
    """bytes(m) went through the buffer protocol (an unguarded memcpy) and
    killed the interpreter with SIGBUS; in a child process so that a
    regression is reported as a failure, not a crash of the test run."""
    import subprocess
    import sys

    path = tmp_path / "shrinking.pmem"
    path.write_bytes(b"k" * (4 * PAGE))
    code = (
        "import errno, os, sys, pypmem\n"
        f"m = pypmem.map_file({str(path)!r})\n"
        f"os.truncate({str(path)!r}, {PAGE})\n"
        "try:\n    bytes(m)\nexcept OSError as e:\n    sys.exit(0 if e.errno == errno.EIO else 3)\n"
        "sys.exit(4)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, r.stderr)


def test_flush_and_persist_on_cache_line_mappings_are_probed(tmp_path: Path) -> None:
    """On cache-line mappings flush, write_back and persist execute flush instructions,
    which fault like loads; they are probed first."""
    path = tmp_path / "flush.pmem"
    path.write_bytes(bytes(4 * PAGE))
    pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", "cache_line")
    try:
        m = pypmem.map_file(path)
    finally:
        pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", None)
    with m:
        os.truncate(path, PAGE)
        for call in (lambda: m.flush(0, 2 * PAGE), lambda: m.write_back(0, 2 * PAGE), lambda: m.persist(PAGE, 1), lambda: m.persist()):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.errno == errno.EIO
        m.flush(0, PAGE)
        m.persist(0, PAGE)
