"""The export and close rules: close() refuses with BufferError while any
buffer export is alive, views keep the Mapping alive, and every use after
close raises ValueError."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pypmem
from conftest import file_bytes


@pytest.fixture
def m(data_file: tuple[Path, bytes]) -> pypmem.Mapping:
    return pypmem.map_file(data_file[0])


def test_close_with_live_memoryview(m: pypmem.Mapping) -> None:
    v = memoryview(m)
    with pytest.raises(BufferError, match="1 buffer export"):
        m.close()
    assert not m.closed
    assert m[0] == v[0]  # still usable after the refusal
    v.release()
    m.close()
    assert m.closed


def test_close_with_live_numpy_array(m: pypmem.Mapping) -> None:
    a = np.frombuffer(m, dtype=np.uint8)
    b = np.frombuffer(m, dtype=np.uint32, count=4)
    with pytest.raises(BufferError, match="2 buffer export"):
        m.close()
    del a
    with pytest.raises(BufferError, match="1 buffer export"):
        m.close()
    del b
    m.close()


def test_close_with_live_slice_of_a_memoryview(m: pypmem.Mapping) -> None:
    v = memoryview(m)
    s = v[10:20]
    v.release()  # the slice still holds the export
    with pytest.raises(BufferError):
        m.close()
    s.release()
    m.close()


def test_close_with_numpy_array_made_from_a_memoryview(m: pypmem.Mapping) -> None:
    v = memoryview(m)
    a = np.asarray(v)[5:9]
    del v  # the array keeps the memoryview, which keeps the export
    gc.collect()
    with pytest.raises(BufferError):
        m.close()
    del a
    m.close()


def test_bytes_and_copies_leave_no_export(m: pypmem.Mapping) -> None:
    data = bytes(m)
    _ = bytearray(m)
    _ = np.array(m, dtype=np.uint8)  # a copy
    _ = m[:]
    _ = m.read(0, 10)
    with memoryview(m):
        pass
    assert len(data) == len(m)
    m.close()


def test_context_manager_closes_and_refuses_with_exports(data_file: tuple[Path, bytes]) -> None:
    with pypmem.map_file(data_file[0]) as m:
        assert not m.closed
    assert m.closed
    v = None
    with pytest.raises(BufferError):
        with pypmem.map_file(data_file[0]) as m2:
            v = memoryview(m2)
    assert v is not None and not m2.closed
    v.release()
    m2.close()


def test_close_twice_is_fine(m: pypmem.Mapping) -> None:
    m.close()
    m.close()
    assert m.closed


def test_view_keeps_the_mapping_alive(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    m = pypmem.map_file(path)
    ref = weakref.ref(m)
    a = np.frombuffer(m, dtype=np.uint8)
    del m
    gc.collect()
    assert ref() is not None, "the array must keep the Mapping alive"
    assert a[:64].tobytes() == data[:64]
    a[0] = 99
    del a
    gc.collect()
    assert ref() is None, "the Mapping is freed (and unmapped) with its last view"
    assert file_bytes(path)[0] == 99  # stores to a shared mapping reach the file


def test_repr_before_and_after_close(m: pypmem.Mapping) -> None:
    with memoryview(m):
        assert "exports=1" in repr(m)
    m.close()
    assert repr(m) == "<pypmem.Mapping closed>"


def _uses() -> list[tuple[str, Callable[[pypmem.Mapping], Any]]]:
    return [
        ("write", lambda m: m.write(0, b"x")),
        ("read", lambda m: m.read(0, 1)),
        ("readinto", lambda m: m.readinto(0, bytearray(1))),
        ("memset", lambda m: m.memset(0, 1, 1)),
        ("flush", lambda m: m.flush()),
        ("write_back", lambda m: m.write_back()),
        ("bytes", lambda m: bytes(m)),
        ("readonly", lambda m: m.readonly),
        ("persist", lambda m: m.persist()),
        ("len", lambda m: len(m)),
        ("size", lambda m: m.size),
        ("granularity", lambda m: m.granularity),
        ("is_pmem", lambda m: m.is_pmem),
        ("reason", lambda m: m.reason),
        ("item", lambda m: m[0]),
        ("slice", lambda m: m[0:1]),
        ("set item", lambda m: m.__setitem__(0, 1)),
        ("set slice", lambda m: m.__setitem__(slice(0, 1), b"x")),
        ("memoryview", lambda m: memoryview(m)),
        ("numpy", lambda m: np.frombuffer(m, dtype=np.uint8)),
        ("bytes", lambda m: bytes(m)),
        ("bool", lambda m: bool(m)),
    ]


@pytest.mark.parametrize("name,use", _uses(), ids=[u[0] for u in _uses()])
def test_every_use_after_close_raises_value_error(data_file: tuple[Path, bytes], name: str, use: Callable[[pypmem.Mapping], Any]) -> None:
    path, data = data_file
    m = pypmem.map_file(path)
    m.close()
    with pytest.raises(ValueError, match="closed"):
        use(m)
    assert m.closed
    assert file_bytes(path) == data


def test_class_is_final_and_not_constructible() -> None:
    with pytest.raises(TypeError):
        pypmem.Mapping()
    with pytest.raises(TypeError):

        class Sub(pypmem.Mapping):  # type: ignore[misc]
            pass
