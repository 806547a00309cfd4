"""What a user porting from the standard library's ``mmap`` relies on:
``flush()`` is durable, a file one may only read can be mapped read-only,
and ``help()`` prints what the user would type."""

from __future__ import annotations

import ctypes
import errno
import os
import pydoc
from pathlib import Path

import numpy as np
import pytest

import pypmem
from conftest import file_bytes, page_dirty, unprivileged

PAGE = os.sysconf("SC_PAGE_SIZE")


def test_flush_is_durable_as_mmap_flush_is(page_cache_file: Path) -> None:
    """On a page-granular mapping flush() msyncs: the dirty page is written
    back when it returns (the kernel's page flags say so). write_back() only
    remembers the range for the fence, which msyncs it."""
    with pypmem.map_file(page_cache_file) as m:
        assert m.granularity == "page"
        m.write(PAGE + 8, b"durable?")
        assert page_dirty(m, PAGE)
        m.flush(PAGE + 8, 8)
        assert not page_dirty(m, PAGE), "flush() left the page dirty: not durable"

        with memoryview(m) as v:  # an ordinary store through a view
            v[2 * PAGE] = 7
        assert page_dirty(m, 2 * PAGE)
        m.flush()  # mmap.flush() with no arguments: the whole mapping
        assert not page_dirty(m, 2 * PAGE)

        m.write(3 * PAGE, b"later")
        m.write_back(3 * PAGE, 5)
        assert page_dirty(m, 3 * PAGE)  # write_back alone does not msync
        pypmem.wmb_pmem()
        assert not page_dirty(m, 3 * PAGE)
    assert file_bytes(page_cache_file)[PAGE + 8 : PAGE + 16] == b"durable?"


def test_flush_takes_mmap_flush_arguments(tmp_path: Path) -> None:
    p = tmp_path / "f.pmem"
    p.write_bytes(bytes(2 * PAGE))
    with pypmem.map_file(p) as m:
        m.write(10, b"abc")
        assert m.flush() is None
        assert m.flush(0) is None
        assert m.flush(0, PAGE) is None
        m.flush(5, 10)  # unaligned offsets are fine here (mmap requires page alignment)
        m.flush(offset=PAGE, length=PAGE)
        with pytest.raises(ValueError, match="past the end"):
            m.flush(PAGE, PAGE + 1)
    assert file_bytes(p)[10:13] == b"abc"


# --- read-only mappings -----------------------------------------------------


def test_map_file_readonly(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    before = os.stat(path)
    with pypmem.map_file(path, readonly=True) as m:
        assert m.readonly and "readonly" in repr(m)
        assert bytes(m) == data and m.read(5, 5) == data[5:10] and m[3] == data[3]
        for store in (
            lambda: m.write(0, b"x"),
            lambda: m.memset(0, 1, 1),
            lambda: m.__setitem__(0, 1),
            lambda: m.__setitem__(slice(0, 2), b"xy"),
            lambda: m.__setitem__(slice(0, 4, 2), b"xy"),
        ):
            with pytest.raises(TypeError, match="read-only"):
                store()
        with memoryview(m) as v:
            assert v.readonly
            with pytest.raises(TypeError):
                v[0] = 1
        a = np.frombuffer(m, dtype=np.uint8)
        assert not a.flags.writeable and a[7] == data[7]
        del a
        with pytest.raises(TypeError, match="not writable"):
            ctypes.c_char.from_buffer(m)  # asks for a writable export
        m.flush()  # nothing to write back, but allowed, as with mmap
        m.persist()
        m.readinto(0, bytearray(4))
    assert file_bytes(path) == data
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_memremap_of_a_read_only_descriptor_is_read_only(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with open(path, "rb") as f:
        m = pypmem.memremap_pmem(f, PAGE, PAGE)
    with m:
        assert m.readonly and m.read(0, 8) == data[PAGE : PAGE + 8]
        with pytest.raises(TypeError, match="read-only"):
            m.write(0, b"x")
    with open(path, "r+b") as f:
        with pypmem.memremap_pmem(f, 0, PAGE) as rw, pypmem.memremap_pmem(f, 0, PAGE, readonly=True) as ro:
            assert not rw.readonly and ro.readonly
            rw.write(0, b"seen")
            assert ro.read(0, 4) == b"seen"  # the same file, shared
            rw.persist()
    assert file_bytes(path)[:4] == b"seen"


def test_readonly_missing_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as e:
        pypmem.map_file(tmp_path / "none", readonly=True)
    assert e.value.filename == str(tmp_path / "none")
    assert list(tmp_path.iterdir()) == []


def test_a_user_who_may_only_read_can_map_read_only(world_readable_file: Path) -> None:
    p = world_readable_file
    with unprivileged():
        with pytest.raises(PermissionError) as e:
            pypmem.map_file(p)  # read-write: refused, as open(p, "r+b") is
        assert e.value.errno == errno.EACCES and e.value.filename == str(p)
        with pypmem.map_file(p, readonly=True) as m:
            assert m.read(0, 3) == b"rrr" and m.readonly
        with open(p, "rb") as f, pypmem.memremap_pmem(f, 0, PAGE) as m2:
            assert m2.readonly and m2[0:1] == b"r"
    assert file_bytes(p) == b"r" * PAGE


# --- help() -----------------------------------------------------------------


def test_help_shows_the_mode_in_octal() -> None:
    text = pydoc.render_doc(pypmem.map_file, renderer=pydoc.plaintext)
    assert "mode=0o666" in text and "438" not in text, text[:400]
    assert "readonly=False" in text


def test_bytes_of_a_mapping_is_a_copy_that_leaves_no_export(tmp_path: Path) -> None:
    p = tmp_path / "b.pmem"
    p.write_bytes(b"0123456789" * 10)
    m = pypmem.map_file(p)
    b = bytes(m)
    assert b == b"0123456789" * 10 and type(b) is bytes
    m.close()  # no export is alive
    with pytest.raises(ValueError, match="closed"):
        bytes(m)


def test_stores_into_a_closed_read_only_mapping_say_closed(data_file: tuple[Path, bytes]) -> None:
    m = pypmem.map_file(data_file[0], readonly=True)
    m.close()
    for store in (lambda: m.write(0, b"x"), lambda: m.memset(0, 1, 1), lambda: m.__setitem__(0, 1)):
        with pytest.raises(ValueError, match="closed"):
            store()
