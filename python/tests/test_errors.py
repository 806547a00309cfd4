"""Every documented error, and that the file is unchanged after each
refused call."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pypmem
from conftest import FILE_SIZE, file_bytes

N = FILE_SIZE

# (id, call, exception, message pattern)
REFUSED: list[tuple[str, Callable[[pypmem.Mapping], Any], type[BaseException], str]] = [
    ("write past end", lambda m: m.write(N - 3, b"abcd"), ValueError, "Mapping.write: offset .* past the end"),
    ("write offset past end", lambda m: m.write(N + 1, b""), ValueError, "past the end"),
    ("write negative offset", lambda m: m.write(-1, b"a"), ValueError, "negative"),
    ("write huge offset", lambda m: m.write(2**64, b"a"), OverflowError, ""),
    ("write str", lambda m: m.write(0, "text"), TypeError, "bytes-like object is required, not 'str'"),
    ("write int", lambda m: m.write(0, 5), TypeError, "bytes-like"),
    ("write None", lambda m: m.write(0, None), TypeError, "bytes-like"),
    ("write offset str", lambda m: m.write("0", b"a"), TypeError, ""),
    ("write offset float", lambda m: m.write(1.0, b"a"), TypeError, ""),
    ("write missing arg", lambda m: m.write(0), TypeError, ""),
    ("read past end", lambda m: m.read(N - 1, 2), ValueError, "past the end"),
    ("read negative length", lambda m: m.read(0, -1), ValueError, "negative"),
    ("read negative offset", lambda m: m.read(-5, 1), ValueError, "negative"),
    ("readinto past end", lambda m: m.readinto(N - 1, bytearray(2)), ValueError, "past the end"),
    ("readinto bytes", lambda m: m.readinto(0, b"ro"), TypeError, "writable bytes-like"),
    ("readinto str", lambda m: m.readinto(0, "s"), TypeError, "writable bytes-like"),
    ("readinto readonly numpy", lambda m: m.readinto(0, np.frombuffer(b"xy", dtype=np.uint8)), TypeError, "writable"),
    ("memset past end", lambda m: m.memset(N - 1, 0, 2), ValueError, "past the end"),
    ("memset value 256", lambda m: m.memset(0, 256, 1), ValueError, "range\\(0, 256\\)"),
    ("memset value -1", lambda m: m.memset(0, -1, 1), ValueError, "range"),
    ("memset value bytes", lambda m: m.memset(0, b"a", 1), TypeError, "integer"),
    ("flush past end", lambda m: m.flush(1, N), ValueError, "Mapping.flush: .*past the end"),
    ("write_back past end", lambda m: m.write_back(1, N), ValueError, "Mapping.write_back: .*past the end"),
    ("persist past end", lambda m: m.persist(N + 1), ValueError, "past the end"),
    ("persist negative length", lambda m: m.persist(0, -4), ValueError, "negative"),
    ("item past end", lambda m: m[N], IndexError, "out of range"),
    ("item before start", lambda m: m[-N - 1], IndexError, "out of range"),
    ("set item past end", lambda m: m.__setitem__(N, 1), IndexError, "out of range"),
    ("set item 256", lambda m: m.__setitem__(0, 256), ValueError, "range"),
    ("set item bytes", lambda m: m.__setitem__(0, b"a"), TypeError, "integer"),
    ("item str", lambda m: m["a"], TypeError, "indices must be integers or slices"),
    ("item float", lambda m: m[1.5], TypeError, "indices"),
    ("item huge", lambda m: m[2**70], (IndexError, OverflowError), ""),  # type: ignore[dict-item]
    ("slice length mismatch", lambda m: m.__setitem__(slice(0, 4), b"abc"), ValueError, "lengths must match"),
    ("extended slice mismatch", lambda m: m.__setitem__(slice(0, 10, 2), b"abc"), ValueError, "lengths must match"),
    ("slice clipped at end", lambda m: m.__setitem__(slice(N - 2, N + 2), b"abcd"), ValueError, "lengths must match"),
    ("slice str", lambda m: m.__setitem__(slice(0, 1), "a"), TypeError, "bytes-like"),
    ("slice zero step", lambda m: m[::0], ValueError, "step cannot be zero"),
    ("delete item", lambda m: m.__delitem__(0), TypeError, "fixed size"),
]


@pytest.mark.parametrize("name,call,exc,pattern", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_calls_raise_and_leave_the_file_unchanged(
    data_file: tuple[Path, bytes], name: str, call: Callable[[pypmem.Mapping], Any], exc: Any, pattern: str
) -> None:
    path, data = data_file
    with pypmem.map_file(path) as m:
        with pytest.raises(exc, match=pattern or None):
            call(m)
        m.persist()
        assert bytes(m) == data
    assert file_bytes(path) == data


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as e:
        pypmem.map_file(tmp_path / "missing")
    assert e.value.errno == errno.ENOENT and "missing" in str(e.value)
    assert e.value.filename == str(tmp_path / "missing")  # as open() sets it
    assert not (tmp_path / "missing").exists()
    with pytest.raises(FileNotFoundError) as e:
        pypmem.map_file(bytes(tmp_path / "missing"))
    assert e.value.filename == bytes(tmp_path / "missing")


def test_exclusive_on_existing_file_is_file_exists(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with pytest.raises(FileExistsError) as e:
        pypmem.map_file(path, 4096, create=True, exclusive=True)
    assert e.value.errno == errno.EEXIST
    # In Python's terms, not the C flag's, and naming the path.
    assert "exclusive=True" in str(e.value) and "PMEM_SYS" not in str(e.value)
    assert e.value.filename == str(path)
    assert file_bytes(path) == data


def test_read_only_descriptor_asked_for_writing_is_permission_error(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(PermissionError) as e:
            pypmem.memremap_pmem(fd, 0, 4096, readonly=False)
        assert e.value.errno == errno.EACCES and "read-only" in str(e.value)
        assert e.value.filename is None  # a descriptor, not a path
    finally:
        os.close(fd)
    fd = os.open(path, os.O_WRONLY)
    try:
        with pytest.raises(PermissionError, match="write-only"):
            pypmem.memremap_pmem(fd, 0, 4096)
    finally:
        os.close(fd)
    assert file_bytes(path) == data


def test_directory_without_tmpfile_is_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        pypmem.map_file(tmp_path)


def test_path_under_a_file_is_not_a_directory(data_file: tuple[Path, bytes]) -> None:
    with pytest.raises(NotADirectoryError):
        pypmem.map_file(data_file[0] / "child", 4096, create=True)


def test_bad_descriptor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        pypmem.memremap_pmem(-1, 0, 4096)
    fd = os.open(tmp_path, os.O_RDONLY)
    os.close(fd)  # a descriptor number that is not open
    with pytest.raises(OSError) as e:
        pypmem.memremap_pmem(fd, 0, 4096)
    assert e.value.errno == errno.EBADF
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as e:
            pypmem.memremap_pmem(r, 0, 4096)
        assert e.value.errno == errno.EINVAL and "pipe" in str(e.value)
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises(TypeError):
        pypmem.memremap_pmem("3", 0, 4096)


def test_memremap_range_checks(data_file: tuple[Path, bytes]) -> None:
    """Bad offsets and lengths are ValueError, as everywhere in the package."""
    path, data = data_file
    with open(path, "r+b") as f:
        with pytest.raises(ValueError, match="pypmem.memremap_pmem: range .*past the end of the file"):
            pypmem.memremap_pmem(f, 0, FILE_SIZE + 1)
        with pytest.raises(ValueError, match="pypmem.memremap_pmem: offset 100: not a multiple of the page size"):
            pypmem.memremap_pmem(f, 100, 4096)
        with pytest.raises(ValueError, match="negative"):
            pypmem.memremap_pmem(f, -4096, 10)
        with pytest.raises(ValueError, match="negative"):
            pypmem.memremap_pmem(f, 0, -1)
        with pytest.raises(ValueError, match="size 0"):
            pypmem.memremap_pmem(f, 0, 0)
    assert file_bytes(path) == data


def test_map_file_argument_errors(tmp_path: Path, data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="pypmem.map_file: .*empty and size is 0"):
        pypmem.map_file(empty)
    with pytest.raises(ValueError, match="pypmem.map_file: size 0: create=True needs the size"):
        pypmem.map_file(tmp_path / "x", 0, create=True)
    with pytest.raises(ValueError, match="pypmem.map_file: range .*past the end of the file"):
        pypmem.map_file(path, 2 * FILE_SIZE)  # longer than the file, no create
    with pytest.raises(ValueError, match="exclusive=True: requires create=True"):
        pypmem.map_file(path, exclusive=True)
    with pytest.raises(ValueError, match="tmpfile=True: requires create=True"):
        pypmem.map_file(tmp_path, 4096, tmpfile=True)
    with pytest.raises(ValueError, match="readonly=True: cannot be combined with create=True"):
        pypmem.map_file(tmp_path / "r", 4096, create=True, readonly=True)
    with pytest.raises(ValueError, match="negative"):
        pypmem.map_file(path, -1)
    with pytest.raises(ValueError, match="mode"):
        pypmem.map_file(tmp_path / "m", 10, create=True, mode=0o10000)
    with pytest.raises(TypeError):
        pypmem.map_file(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="null byte"):
        pypmem.map_file("nul\0byte")
    with pytest.raises(TypeError):
        pypmem.map_file(path, 10, True)  # type: ignore[misc]  # create is keyword-only
    assert file_bytes(path) == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.pmem", "empty"]


def test_options() -> None:
    names = pypmem.option_names()
    assert "PMEM_SYS_NO_MOVNT" in names and len(names) == len(set(names))
    before = pypmem.implementation()
    try:
        pypmem.set_option("PMEM_SYS_NO_MOVNT", 1)
        assert pypmem.get_option("PMEM_SYS_NO_MOVNT") == "1"
        assert "PMEM_SYS_NO_MOVNT=1" in pypmem.knobs_report()
        pypmem.set_option("PMEM_SYS_NO_MOVNT", False)
        assert pypmem.get_option("PMEM_SYS_NO_MOVNT") == "0"
        pypmem.set_option("PMEM_SYS_MOVNT_THRESHOLD", "4096")
        assert pypmem.get_option("PMEM_SYS_MOVNT_THRESHOLD") == "4096"
        with pytest.raises(ValueError, match="not an option"):
            pypmem.set_option("PMEM_SYS_NO_SUCH", "1")
        with pytest.raises(ValueError, match="expected 1 \\(disable\\) or 0"):
            pypmem.set_option("PMEM_SYS_NO_AVX2", "yes")
        with pytest.raises(ValueError, match="not an option"):
            pypmem.get_option("PMEM_NO_MOVNT")
        with pytest.raises(TypeError):
            pypmem.set_option("PMEM_SYS_NO_AVX2", 1.0)  # type: ignore[arg-type]
    finally:
        pypmem.set_option("PMEM_SYS_NO_MOVNT", None)
        pypmem.set_option("PMEM_SYS_MOVNT_THRESHOLD", None)
    assert pypmem.implementation() == before
    assert pypmem.knobs_report() == ""
