"""An append-only log on a pypmem mapping, correct and with planted bugs,
for pypmem.crashtest (see test_crash.py; the C twin is log.c).

Line 0 holds the magic and the tail (the number of committed records);
record i fills line 1 + i. A record must be durable before the tail that
counts it. Each planted bug has one line marked GUILTY(variant): the call
the failure report must name.
"""

from __future__ import annotations

import struct
import zlib

import pypmem

LINE = 64
MAGIC = 0x676F6C2D6D656D70
SIZE = 4096


def record(i: int) -> bytes:
    body = struct.pack("<QQ", i, i * 7 + 1) + bytes([0x40 + i]) * (LINE - 24)
    return body + struct.pack("<Q", zlib.crc32(body))


def tail(n: int) -> bytes:
    return struct.pack("<Q", n)


def at(i: int) -> int:
    return LINE * (1 + i)


def append_correct(m: pypmem.Mapping, i: int) -> None:
    m.write(at(i), record(i))
    pypmem.wmb_pmem()
    m.write(8, tail(i + 1))
    pypmem.wmb_pmem()


def append_direct_correct(m: pypmem.Mapping, i: int) -> None:
    with memoryview(m) as v:
        v[at(i) : at(i) + LINE] = record(i)
    m.persist(at(i), LINE)
    with memoryview(m) as v:
        v[8:16] = tail(i + 1)
    m.persist(8, 8)


def append_tail_first(m: pypmem.Mapping, i: int) -> None:
    m.write(8, tail(i + 1))  # GUILTY(tail-first)
    pypmem.wmb_pmem()
    m.write(at(i), record(i))
    pypmem.wmb_pmem()


def append_no_flush(m: pypmem.Mapping, i: int) -> None:
    # The record is stored through a memoryview and its write_back() is
    # left out: the fence completes nothing for it.
    with memoryview(m) as v:
        v[at(i) : at(i) + LINE] = record(i)
    pypmem.wmb_pmem()  # GUILTY(no-flush)
    m.write(8, tail(i + 1))
    pypmem.wmb_pmem()


def append_no_fence(m: pypmem.Mapping, i: int) -> None:
    m.write(at(i), record(i))
    m.write(8, tail(i + 1))  # GUILTY(no-fence)
    pypmem.wmb_pmem()


def append_direct_store(m: pypmem.Mapping, i: int) -> None:
    # The record goes through a memoryview and is never written back; only
    # the tail is persisted. The recorder attributes the store to the next
    # call, the write of the tail.
    with memoryview(m) as v:
        v[at(i) : at(i) + LINE] = record(i)
    m.write(8, tail(i + 1))  # GUILTY(direct-store)
    m.persist(8, 8)


VARIANTS = {
    "correct": append_correct,
    "direct-correct": append_direct_correct,
    "tail-first": append_tail_first,
    "no-flush": append_no_flush,
    "no-fence": append_no_fence,
    "direct-store": append_direct_store,
}


def workload(variant: str, n: int):  # type: ignore[no-untyped-def]
    append = VARIANTS[variant]

    def run(m: pypmem.Mapping) -> None:
        m.write(0, struct.pack("<Q", MAGIC))
        pypmem.wmb_pmem()
        for i in range(n):
            append(m, i)

    return run


def check(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == SIZE, f"{len(data)} bytes"
    magic, n = struct.unpack_from("<QQ", data, 0)
    if magic != MAGIC:
        assert n == 0, f"no magic but tail {n}"
        return
    for i in range(n):
        r = data[at(i) : at(i) + LINE]
        assert r == record(i), f"tail {n} but record {i} is not valid"
