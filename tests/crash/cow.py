"""A two-slot atomic update (copy-on-write with a valid flag) on a pypmem
mapping, correct and broken, for pypmem.crashtest (the C twin is cow.c).

Line 0 holds the valid slot's index and its generation; slots 0 and 1 are
two lines each. An update writes the whole new version into the slot that
is not valid, makes it durable, then flips the flag.
"""

from __future__ import annotations

import struct

import pypmem

LINE = 64
SLOT = 2 * LINE
SIZE = 4096


def slot_at(s: int) -> int:
    return LINE + s * SLOT


def version(gen: int) -> bytes:
    return struct.pack("<Q", gen) * (SLOT // 8)


def update_correct(m: pypmem.Mapping, gen: int) -> None:
    valid = struct.unpack_from("<Q", m.read(0, 8))[0]
    other = valid ^ 1
    m.write(slot_at(other), version(gen))
    pypmem.wmb_pmem()
    m.write(0, struct.pack("<QQ", other, gen))
    pypmem.wmb_pmem()


def update_flag_early(m: pypmem.Mapping, gen: int) -> None:
    valid = struct.unpack_from("<Q", m.read(0, 8))[0]
    other = valid ^ 1
    m.write(slot_at(other), version(gen))
    m.write(0, struct.pack("<QQ", other, gen))  # GUILTY(flag-early)
    pypmem.wmb_pmem()


def update_in_place(m: pypmem.Mapping, gen: int) -> None:
    valid = struct.unpack_from("<Q", m.read(0, 8))[0]
    m.write(slot_at(valid), version(gen))  # GUILTY(in-place)
    pypmem.wmb_pmem()
    m.write(0, struct.pack("<QQ", valid, gen))
    pypmem.wmb_pmem()


VARIANTS = {
    "correct": update_correct,
    "flag-early": update_flag_early,
    "in-place": update_in_place,
}


def workload(variant: str, n: int):  # type: ignore[no-untyped-def]
    update = VARIANTS[variant]

    def run(m: pypmem.Mapping) -> None:
        for gen in range(1, n + 1):
            update(m, gen)

    return run


def check(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    valid, gen = struct.unpack_from("<QQ", data, 0)
    assert valid in (0, 1), f"valid flag {valid}"
    s = data[slot_at(valid) : slot_at(valid) + SLOT]
    assert s == version(gen), f"slot {valid} does not hold generation {gen} whole"
