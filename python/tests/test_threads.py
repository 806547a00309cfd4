"""Threads: disjoint writers, a closer racing holders of views, a closer
racing a large copy that runs without the GIL, and the GIL rule itself
(copies below DETACH_AT keep it, larger ones release it)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pypmem
from conftest import file_bytes

THREADS = 8


def run_threads(n: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def wrap(i: int) -> None:
        try:
            target(i)
        except BaseException as e:  # reported below, with the thread's number
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def test_eight_threads_write_disjoint_ranges_and_persist(tmp_path: Path) -> None:
    chunk = 96 * 1024  # above DETACH_AT: these copies run without the GIL
    path = tmp_path / "threads.pmem"
    m = pypmem.map_file(path, THREADS * chunk, create=True)
    start = threading.Barrier(THREADS)

    def writer(i: int) -> None:
        start.wait()
        base = i * chunk
        for rnd in range(20):
            fill = bytes([(i * 31 + rnd) & 0xFF])
            m.write(base, fill * 100)  # small: keeps the GIL
            m.write(base + 100, fill * (chunk - 100))  # large: releases it
            m.persist(base, chunk)
        m.persist(base, chunk)

    run_threads(THREADS, writer)
    m.close()
    got = file_bytes(path)
    for i in range(THREADS):
        assert got[i * chunk : (i + 1) * chunk] == bytes([(i * 31 + 19) & 0xFF]) * chunk, f"thread {i}"


def test_closing_thread_gets_buffer_error_while_others_hold_views(tmp_path: Path) -> None:
    m = pypmem.map_file(tmp_path / "views.pmem", 1 << 16, create=True)
    holding = threading.Barrier(THREADS)  # 7 holders + the closer
    closed_tried = threading.Event()
    outcome: list[str] = []

    def holder(i: int) -> None:
        if i == 0:
            holding.wait()
            try:
                m.close()
                outcome.append("closed")
            except BufferError as e:
                outcome.append(f"BufferError: {e}")
            closed_tried.set()
            return
        view: Any = memoryview(m) if i % 2 else np.frombuffer(m, dtype=np.uint8)
        view[i] = i
        holding.wait()
        closed_tried.wait()
        if isinstance(view, memoryview):
            view.release()
        del view

    run_threads(THREADS, holder)
    assert len(outcome) == 1 and outcome[0].startswith("BufferError") and "7 buffer export" in outcome[0], outcome
    assert not m.closed
    assert m.read(0, THREADS) == bytes(range(THREADS))
    m.close()  # every view released: now it succeeds
    assert m.closed


def test_close_racing_a_large_copy_without_the_gil(tmp_path: Path) -> None:
    """close() from another thread while a copy runs with the GIL released:
    either the close is refused (BufferError) and the copy completes, or
    the close wins before the copy starts and the copy raises ValueError.
    Never a crash, never both."""
    size = 64 << 20
    big = os.urandom(1 << 20) * 64
    seen: set[str] = set()
    for attempt in range(6):
        m = pypmem.map_file(tmp_path / f"race{attempt}.pmem", size, create=True, sparse=True)
        started = threading.Event()
        result: list[str] = []

        def copy() -> None:
            started.set()
            try:
                m.write(0, big)
                result.append("written")
            except ValueError:
                result.append("closed first")

        t = threading.Thread(target=copy)
        t.start()
        started.wait()
        if attempt % 2:
            time.sleep(0.001)
        closes: list[str] = []
        while t.is_alive() and not m.closed:
            try:
                m.close()
                closes.append("closed")
            except BufferError as e:
                assert "in use by an operation in progress" in str(e)
                closes.append("refused")
                time.sleep(0.0005)
        t.join()
        if result == ["written"]:
            # Refused while the copy ran, or closed just after it finished.
            if m.closed:
                assert closes[-1] == "closed"
                with open(tmp_path / f"race{attempt}.pmem", "rb") as f:
                    f.seek(size - 10)
                    assert f.read() == big[-10:]
                seen.add("closed after the copy")
            else:
                assert m.read(size - 10, 10) == big[-10:]
                m.close()
                seen.add("refused during the copy")
        else:
            assert result == ["closed first"] and closes[-1] == "closed", (result, closes)
            seen.add("closed first")
    print(f"outcomes seen: {sorted(seen)}")


@pytest.fixture
def gil_watcher() -> Iterator[Callable[[Callable[[], Any]], int]]:
    """Runs a call and says how often another thread ran Python code
    during it. The switch interval is made huge, so the other thread runs
    only when the caller releases the GIL itself."""
    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1
            if counter[0] % 64 == 0:
                time.sleep(0)  # hand the GIL back so the caller can resume

    old = sys.getswitchinterval()
    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.01)
    sys.setswitchinterval(100.0)

    def watch(call: Callable[[], Any], tries: int = 1) -> int:
        """The most the other thread advanced during one of ``tries`` calls.
        Waking a thread can take milliseconds on a loaded machine, so a
        release is looked for over several calls; a call that keeps the GIL
        shows 0 every time."""
        most = 0
        for _ in range(tries):
            time.sleep(0.001)  # let the spinner take and give back the GIL
            before = counter[0]
            call()
            most = max(most, counter[0] - before)
            if most:
                break
        return most

    try:
        yield watch
    finally:
        sys.setswitchinterval(old)
        stop.set()
        t.join()


def test_small_copies_keep_the_gil_large_ones_release_it(tmp_path: Path, gil_watcher: Callable[[Callable[[], Any]], int]) -> None:
    size = 32 << 20
    m = pypmem.map_file(tmp_path / "gil.pmem", size, create=True)
    small = b"s" * (pypmem.DETACH_AT - 1)
    large = b"L" * size
    buf = bytearray(size)
    try:
        small_buf = bytearray(len(small))
        for keeps in (
            lambda: m.write(0, small),
            lambda: m.read(0, len(small)),
            lambda: m.readinto(0, small_buf),
            lambda: m.memset(0, 1, len(small)),
        ):
            assert gil_watcher(keeps, tries=5) == 0
        for releases in (
            lambda: m.write(0, large),
            lambda: m.read(0, size),
            lambda: m.readinto(0, buf),
            lambda: m.memset(0, 1, size),
        ):
            assert gil_watcher(releases, tries=20) > 0
    finally:
        m.close()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="a Python-level __buffer__ needs Python 3.12")
def test_close_from_a_buffer_callback_during_write(tmp_path: Path) -> None:
    """Python code that runs while write() borrows its argument may close
    the mapping: the close succeeds (nothing is touched yet) and write()
    then raises ValueError instead of writing into unmapped memory."""
    m = pypmem.map_file(tmp_path / "cb.pmem", 4096, create=True)

    class Sneaky:
        def __buffer__(self, flags: int) -> memoryview:
            m.close()
            return memoryview(b"data")

    with pytest.raises(ValueError, match="closed"):
        m.write(0, Sneaky())  # type: ignore[arg-type]
    assert m.closed
