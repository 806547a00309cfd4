"""A typed usage example: mypy --strict must accept it against the stubs."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

import pypmem


def save(path: str, records: list[bytes]) -> int:
    with pypmem.map_file(path, 1 << 16, create=True) as m:
        offset = 0
        for r in records:
            m.write(offset, r)
            offset += len(r)
        m.write(offset, b"end", nontemporal=True, drain=True)
        m.memset(offset + 3, 0, 5, temporal=True, flush=False)
        m.persist(0, offset)
        m.deep_persist(0, offset)
        first: int = m[0]
        head: bytes = m[0:4]
        m[0] = first
        m[0:4] = head
        buf = bytearray(4)
        n: int = m.readinto(0, buf)
        g: str = m.granularity
        assert g in ("byte", "cache_line", "page") and m.is_pmem in (True, False)
        as_buffer: Buffer = m  # Mapping implements the buffer protocol
        # numpy's stubs accept any Buffer from Python 3.12 on; through a
        # memoryview on 3.11 too.
        view: npt.NDArray[np.uint8] = np.frombuffer(memoryview(as_buffer), dtype=np.uint8)
        view[8] = 1
        del view
        with memoryview(m) as mv:
            mv[9] = 2
        m.write_back(8, 2)
        pypmem.wmb_pmem()
        m.flush(8, 2)
        ro: bool = m.readonly
        assert not ro and bytes(m)[8] == 1
        return n + len(m) + m.size + len(m.read(0, 1)) + len(m.reason)


def options() -> str:
    pypmem.set_option("PMEM_SYS_NO_MOVNT", 1)
    pypmem.set_option("PMEM_SYS_NO_MOVNT", None)
    names: list[str] = pypmem.option_names()
    return pypmem.get_option(names[0]) + pypmem.implementation() + pypmem.cpu_features()


def remap(fd: int) -> bool:
    m = pypmem.memremap_pmem(fd, 0, 4096)
    m.memset(0, 0, 4096)
    m.close()
    closed: bool = m.closed
    return closed and pypmem.arch_has_pmem_api() and pypmem.movnt_threshold() > 0
