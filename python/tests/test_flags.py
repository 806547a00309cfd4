"""Per-call store flags (``write`` and ``memset`` keywords, PMDK's
``PMEM_F_MEM_*``) and ``deep_persist`` (issue 12 item 3).

Every flag and every valid combination writes the right bytes at every
granularity and size class (checked through an independent ``open()``);
the durability each flag promises is checked where the kernel shows it,
on a page-granular file: a dirty page in the page cache is not durable.
"""

from __future__ import annotations

import errno
import inspect
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

import pypmem
from conftest import FILE_SIZE, PAGE, file_bytes, page_dirty

FLAG_NAMES = ("nontemporal", "temporal", "flush", "drain")
DEFAULTS = {"nontemporal": False, "temporal": False, "flush": True, "drain": False}


def _combinations() -> list[dict[str, bool]]:
    out = []
    for values in itertools.product([False, True], repeat=4):
        kw = dict(zip(FLAG_NAMES, values))
        if kw["nontemporal"] and kw["temporal"]:
            continue
        if kw["drain"] and not kw["flush"]:
            continue
        out.append(kw)
    return out


VALID = _combinations()
INVALID = [
    ({"nontemporal": True, "temporal": True}, "choose one"),
    ({"drain": True, "flush": False}, "drain=True with flush=False"),
    ({"nontemporal": True, "temporal": True, "drain": True}, "choose one"),
]
# Sizes around the cache line, the non-temporal threshold's usual range,
# a page, and past DETACH_AT (the GIL is released).
SIZES = [1, 7, 63, 64, 65, 257, PAGE + 3, 70_000]


def _id(kw: dict[str, bool]) -> str:
    return ",".join(f"{k}={v}" for k, v in kw.items() if v != DEFAULTS[k]) or "defaults"


@pytest.mark.parametrize("kw", VALID, ids=[_id(k) for k in VALID])
def test_write_with_flags_writes_the_bytes(mapped: tuple[pypmem.Mapping, Path, bytes], kw: dict[str, bool]) -> None:
    m, path, data = mapped
    expect = bytearray(data)
    at = 3
    for n in SIZES:
        chunk = bytes((at + i * 7) & 0xFF for i in range(n))
        m.write(at, chunk, **kw)
        expect[at : at + n] = chunk
        at += n + 5
    m.write(at, bytearray(b"via a bytearray"), **kw)  # the buffer-export path
    expect[at : at + 15] = b"via a bytearray"
    m.persist()
    assert file_bytes(path) == bytes(expect)


@pytest.mark.parametrize("kw", VALID, ids=[_id(k) for k in VALID])
def test_memset_with_flags_fills_the_bytes(mapped: tuple[pypmem.Mapping, Path, bytes], kw: dict[str, bool]) -> None:
    m, path, data = mapped
    expect = bytearray(data)
    at = 1
    for k, n in enumerate(SIZES):
        m.memset(at, k + 1, n, **kw)
        expect[at : at + n] = bytes([k + 1]) * n
        at += n + 3
    m.persist()
    assert file_bytes(path) == bytes(expect)


@pytest.mark.parametrize("kw,why", INVALID, ids=[_id(k) for k, _ in INVALID])
def test_contradictory_flags_are_refused_and_change_nothing(data_file: tuple[Path, bytes], kw: dict[str, bool], why: str) -> None:
    path, data = data_file
    with pypmem.map_file(path) as m:
        with pytest.raises(ValueError, match=f"Mapping.write: .*{why}"):
            m.write(0, b"nope", **kw)
        with pytest.raises(ValueError, match=f"Mapping.memset: .*{why}"):
            m.memset(0, 1, 4, **kw)
        m.persist()
    assert file_bytes(path) == data


@pytest.mark.parametrize("name", FLAG_NAMES)
def test_flags_are_keyword_only_bools(data_file: tuple[Path, bytes], name: str) -> None:
    path, data = data_file
    with pypmem.map_file(path) as m:
        bad: Any = 1
        with pytest.raises(TypeError):
            m.write(0, b"x", **{name: bad})
        with pytest.raises(TypeError):
            m.memset(0, 1, 1, **{name: bad})
        with pytest.raises(TypeError):
            m.write(0, b"x", False)  # type: ignore[misc]
        with pytest.raises(TypeError, match="unexpected keyword"):
            m.write(0, b"x", nodrain=True)  # type: ignore[call-arg]
        m.persist()
    assert file_bytes(path) == data


def test_flagged_stores_on_a_read_only_or_closed_mapping(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with pypmem.map_file(path, readonly=True) as m:
        with pytest.raises(TypeError, match="read-only"):
            m.write(0, b"x", drain=True)
        with pytest.raises(TypeError, match="read-only"):
            m.memset(0, 1, 1, nontemporal=True)
        m.deep_persist()  # nothing to write back, but allowed, as persist is
    m = pypmem.map_file(path)
    m.close()
    for call in (lambda: m.write(0, b"x", drain=True), lambda: m.memset(0, 0, 1, temporal=True), lambda: m.deep_persist()):
        with pytest.raises(ValueError, match="closed"):
            call()
    assert file_bytes(path) == data


def test_flagged_stores_survive_a_truncated_file(tmp_path: Path, granularity: str) -> None:
    path = tmp_path / "shrinking.pmem"
    path.write_bytes(b"k" * (4 * PAGE))
    with pypmem.map_file(path) as m:
        os.truncate(path, PAGE)
        for call in (
            lambda: m.write(PAGE, b"x" * 8, nontemporal=True),
            lambda: m.write(PAGE - 4, b"x" * 8, drain=True),
            lambda: m.write(0, b"x" * (2 * PAGE), flush=False),
            lambda: m.memset(PAGE, 1, 16, temporal=True),
        ):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.errno == errno.EIO, e.value
        if granularity == "cache_line":  # flush instructions fault like loads: probed
            with pytest.raises(OSError) as e:
                m.deep_persist(0, 2 * PAGE)
            assert e.value.errno == errno.EIO
        m.write(0, b"still", drain=True)
    assert path.read_bytes()[:5] == b"still"


def test_deep_persist_makes_the_range_durable(mapped: tuple[pypmem.Mapping, Path, bytes]) -> None:
    m, path, data = mapped
    m.write(100, b"deep")
    with memoryview(m) as v:
        v[5000:5004] = b"view"
    m.deep_persist(100, 4)
    m.deep_persist(5000, 4)
    m.deep_persist()  # the whole mapping
    m.deep_persist(FILE_SIZE)  # an empty range at the end
    with pytest.raises(ValueError, match="Mapping.deep_persist: .*past the end"):
        m.deep_persist(1, FILE_SIZE)
    got = file_bytes(path)
    assert got[100:104] == b"deep" and got[5000:5004] == b"view"


# --- what each flag promises, where the kernel shows it ----------------------


def test_drain_makes_a_write_durable_when_it_returns(page_cache_file: Path) -> None:
    with pypmem.map_file(page_cache_file) as m:
        assert m.granularity == "page"
        m.write(8, b"plain")
        assert page_dirty(m, 0)  # default: written back "in flight", not fenced
        m.write(PAGE + 8, b"drained", drain=True)
        assert not page_dirty(m, PAGE), "write(drain=True) returned before the msync"
        m.memset(2 * PAGE, 9, 10, drain=True)
        assert not page_dirty(m, 2 * PAGE), "memset(drain=True) returned before the msync"
        pypmem.wmb_pmem()
        assert not page_dirty(m, 0)


def test_flush_false_leaves_the_bytes_for_a_later_persist(page_cache_file: Path) -> None:
    """flush=False: not written back, so the thread's fence does not make it
    durable (the page stays dirty after wmb_pmem); persist of the range
    does."""
    with pypmem.map_file(page_cache_file) as m:
        m.write(8, b"cached", flush=False)
        m.memset(PAGE, 1, 8, flush=False)
        pypmem.wmb_pmem()
        assert page_dirty(m, 0) and page_dirty(m, PAGE)
        m.persist(0, 2 * PAGE)
        assert not page_dirty(m, 0) and not page_dirty(m, PAGE)


@pytest.mark.parametrize("kw", [{"nontemporal": True}, {"temporal": True}])
def test_nontemporal_and_temporal_keep_the_default_promise(page_cache_file: Path, kw: dict[str, bool]) -> None:
    """Which instructions store is not visible from Python; what each flag
    promises is: written back (remembered for the fence's msync here), so
    the thread's fence makes it durable."""
    with pypmem.map_file(page_cache_file) as m:
        m.write(8, b"x" * 300, **kw)
        m.memset(PAGE, 2, 300, **kw)
        assert page_dirty(m, 0) and page_dirty(m, PAGE)
        pypmem.wmb_pmem()
        assert not page_dirty(m, 0) and not page_dirty(m, PAGE)


def test_deep_persist_on_a_page_granular_mapping_msyncs(page_cache_file: Path) -> None:
    with pypmem.map_file(page_cache_file) as m:
        m.write(3 * PAGE, b"deep")
        assert page_dirty(m, 3 * PAGE)
        m.deep_persist(3 * PAGE, 4)
        assert not page_dirty(m, 3 * PAGE)


def test_signatures_show_the_defaults() -> None:
    for method in (pypmem.Mapping.write, pypmem.Mapping.memset):
        params = inspect.signature(method).parameters
        assert {k: params[k].default for k in FLAG_NAMES} == DEFAULTS
        assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in FLAG_NAMES)
