"""Round trips through write/read, item and slice access, memoryview and
numpy, each checked through an independent open() of the file."""

from __future__ import annotations

import array
import os
from pathlib import Path

import numpy as np
import pytest

import pypmem
from conftest import FILE_SIZE, file_bytes

Mapped = tuple[pypmem.Mapping, Path, bytes]


def test_map_reports_size_and_contents(mapped: Mapped) -> None:
    m, path, data = mapped
    assert len(m) == m.size == FILE_SIZE
    assert m.read(0, FILE_SIZE) == data
    assert bytes(m) == data
    assert m.is_pmem == (m.granularity != "page")
    assert isinstance(m.reason, str) and m.reason


@pytest.mark.parametrize("offset,length", [(0, 1), (1, 7), (63, 2), (64, 64), (100, 4096), (4095, 4097), (0, 65536), (1, 70000), (FILE_SIZE - 8, 8)])
def test_write_then_read_back(mapped: Mapped, offset: int, length: int) -> None:
    m, path, data = mapped
    payload = os.urandom(length)
    m.write(offset, payload)
    m.persist(offset, length)
    assert m.read(offset, length) == payload
    want = data[:offset] + payload + data[offset + length :]
    assert file_bytes(path) == want


def test_write_accepts_every_bytes_like(mapped: Mapped) -> None:
    m, path, data = mapped
    m.write(0, bytearray(b"ab"))
    m.write(2, memoryview(b"cd"))
    m.write(4, array.array("B", b"ef"))
    m.write(6, np.frombuffer(b"gh", dtype=np.uint8))
    m.write(8, np.array([0x6A69], dtype="<u2"))  # multi-byte items: raw bytes
    m.write(10, b"")
    m.persist()
    assert file_bytes(path)[:10] == b"abcdefghij"


def test_write_from_non_contiguous_sources(mapped: Mapped) -> None:
    m, path, _ = mapped
    m.write(0, memoryview(b"a-b-c-d-")[::2])
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3).T  # Fortran order
    m.write(4, arr)
    m.persist()
    assert file_bytes(path)[:10] == b"abcd" + bytes([0, 3, 1, 4, 2, 5])


def test_write_from_a_view_of_the_mapping_itself_overlapping(mapped: Mapped) -> None:
    m, path, data = mapped
    with memoryview(m) as v:
        m.write(10, v[0:100])  # source and destination overlap
        m[200:300] = v[150:250]
    m.persist()
    want = bytearray(data)
    want[10:110] = data[0:100]
    want[200:300] = want[150:250]
    assert file_bytes(path) == bytes(want)


def test_item_and_slice_access(mapped: Mapped) -> None:
    m, path, data = mapped
    assert m[0] == data[0] and m[-1] == data[-1] and m[1000] == data[1000]
    assert m[10:20] == data[10:20]
    assert m[-10:] == data[-10:]
    assert m[20:10] == b""
    assert m[::4096] == data[::4096]
    assert m[100:10:-3] == data[100:10:-3]
    assert m[: 3 * 65536 : 3] == data[: 3 * 65536 : 3]
    m[5] = 0xAB
    m[-2] = 0
    m[30:34] = b"WXYZ"
    m[40:50:3] = b"1234"
    m[70000:200000] = bytes(130000)
    m.persist()
    want = bytearray(data)
    want[5] = 0xAB
    want[-2] = 0
    want[30:34] = b"WXYZ"
    want[40:50:3] = b"1234"
    want[70000:200000] = bytes(130000)
    assert file_bytes(path) == bytes(want)


def test_readinto(mapped: Mapped) -> None:
    m, _, data = mapped
    buf = bytearray(100)
    assert m.readinto(50, buf) == 100 and bytes(buf) == data[50:150]
    arr = np.zeros(80000, dtype=np.uint8)
    assert m.readinto(3, arr) == 80000 and arr.tobytes() == data[3:80003]
    strided = bytearray(20)
    assert m.readinto(7, memoryview(strided)[::2]) == 10
    assert bytes(strided[::2]) == data[7:17] and bytes(strided[1::2]) == bytes(10)
    assert m.readinto(0, bytearray()) == 0


def test_readinto_a_view_of_the_mapping_itself(mapped: Mapped) -> None:
    m, path, data = mapped
    with memoryview(m) as v:
        assert m.readinto(0, v[10:110]) == 100
    m.persist()
    want = bytearray(data)
    want[10:110] = data[0:100]
    assert file_bytes(path) == bytes(want)


def test_memset(mapped: Mapped) -> None:
    m, path, data = mapped
    m.memset(3, 0x5A, 10)
    m.memset(1000, 0, 100000)
    m.memset(0, 7, 0)
    m.persist()
    want = bytearray(data)
    want[3:13] = b"\x5a" * 10
    want[1000:101000] = bytes(100000)
    assert file_bytes(path) == bytes(want)


def test_memoryview_and_numpy_stores_are_in_the_file_after_persist(mapped: Mapped) -> None:
    m, path, data = mapped
    a = np.frombuffer(m, dtype=np.uint8)
    assert a.flags.writeable and a.size == FILE_SIZE
    assert a[:100].tobytes() == data[:100]
    a[0:4] = [1, 2, 3, 4]
    words = np.frombuffer(m, dtype=np.uint64, count=2, offset=64)
    words[:] = [2**64 - 1, 0x0102030405060708]
    with memoryview(m) as v:
        assert not v.readonly and v.format == "B" and v.nbytes == FILE_SIZE
        v[100:103] = b"xyz"
        assert m.read(100, 3) == b"xyz"  # the mapping sees the view's store
    del a, words
    m.write_back(0, 200)
    m.persist(0, 200)
    got = file_bytes(path)
    assert got[0:4] == bytes([1, 2, 3, 4])
    assert got[64:80] == b"\xff" * 8 + (0x0102030405060708).to_bytes(8, "little")
    assert got[100:103] == b"xyz"
    assert got[200:] == data[200:]


def test_write_back_then_wmb_pmem(mapped: Mapped) -> None:
    m, path, _ = mapped
    with memoryview(m) as v:
        v[0:5] = b"fence"
    m.write_back(0, 5)
    pypmem.wmb_pmem()
    assert file_bytes(path)[:5] == b"fence"


def test_flush_alone_makes_view_stores_visible_in_the_file(mapped: Mapped) -> None:
    m, path, _ = mapped
    with memoryview(m) as v:
        v[8:13] = b"alone"
    m.flush(8, 5)  # durable by itself, as mmap.flush() is
    assert file_bytes(path)[8:13] == b"alone"


def test_write_then_wmb_pmem_without_persist(mapped: Mapped) -> None:
    m, path, _ = mapped
    m.write(4096, b"drained")
    pypmem.wmb_pmem()
    assert file_bytes(path)[4096:4103] == b"drained"


def test_persist_and_flush_defaults_cover_the_whole_mapping(mapped: Mapped) -> None:
    m, path, data = mapped
    m.write_back()
    m.flush()
    m.flush(4096)  # mmap.flush(offset) form
    m.persist()
    m.persist(FILE_SIZE)  # empty range at the end is fine
    m.persist(10, 0)
    assert file_bytes(path) == data


def test_map_file_create_exclusive_sparse_and_pathlike(tmp_path: Path) -> None:
    p = tmp_path / "new.pmem"
    with pypmem.map_file(p, 12345, create=True, exclusive=True) as m:
        assert len(m) == 12345 and bytes(m) == bytes(12345)
        m.write(0, b"new")
        m.persist()
    assert os.path.getsize(p) == 12345 and file_bytes(p)[:3] == b"new"
    with pypmem.map_file(str(p).encode(), 0) as m:  # bytes path, whole file
        assert m.read(0, 3) == b"new"
    q = tmp_path / "sparse.pmem"
    with pypmem.map_file(str(q), 1 << 20, create=True, sparse=True, mode=0o600) as m:
        assert len(m) == 1 << 20
    assert os.stat(q).st_mode & 0o777 == 0o600 & ~_umask()
    with pypmem.map_file(p, 100) as m:  # a prefix of an existing file
        assert len(m) == 100


def test_map_file_tmpfile_leaves_no_file(tmp_path: Path) -> None:
    with pypmem.map_file(tmp_path, 8192, create=True, tmpfile=True) as m:
        m.write(0, b"anonymous")
        assert m.read(0, 9) == b"anonymous"
    assert list(tmp_path.iterdir()) == []


def test_memremap_pmem(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    page = os.sysconf("SC_PAGE_SIZE")
    with open(path, "r+b") as f:
        m = pypmem.memremap_pmem(f, page, 2 * page)  # object with fileno()
        m2 = pypmem.memremap_pmem(f.fileno(), 0, 100)
    with m, m2:  # the descriptor may be closed before the mapping
        assert m.read(0, 2 * page) == data[page : 3 * page]
        assert bytes(m2) == data[:100]
        m.write(0, b"remapped")
        m.persist()
    assert file_bytes(path)[page : page + 8] == b"remapped"


def _umask() -> int:
    u = os.umask(0)
    os.umask(u)
    return u


def test_bytes_subclasses_and_other_buffers_take_the_export_path(mapped: Mapped) -> None:
    """Exact bytes are read in place (no export); a subclass, bytearray or
    memoryview goes through the buffer protocol. All write the same bytes."""

    class Sub(bytes):
        pass

    m, path, _ = mapped
    for k, src in enumerate([b"exact", Sub(b"subcl"), bytearray(b"array"), memoryview(b"mview"), b""]):
        m.write(100 + 8 * k, src)
        if len(src):
            m[200 + 8 * k : 200 + 8 * k + len(src)] = src
    m.persist()
    got = file_bytes(path)
    for k, want in enumerate([b"exact", b"subcl", b"array", b"mview"]):
        assert got[100 + 8 * k : 105 + 8 * k] == want and got[200 + 8 * k : 205 + 8 * k] == want
