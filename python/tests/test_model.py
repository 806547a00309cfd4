"""A property test: thousands of random sequences of map, write, read,
slice, view, release, persist and close, compared with a bytearray model.

Never a crash, only the documented exceptions, and the contents (read back
through the mapping while it is open, through an independent open() of the
file once it is closed) always equal to the model.
"""

from __future__ import annotations

import os
import random
import tempfile
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import pypmem
from conftest import file_bytes

SIZE = 2 * 4096 + 100  # not a multiple of the page size
EXAMPLES = int(os.environ.get("PYPMEM_MODEL_EXAMPLES", "2000"))
STEPS = int(os.environ.get("PYPMEM_MODEL_STEPS", "15"))

# Offsets and lengths reach a little past the end, so refusals are exercised.
offsets = st.integers(min_value=-3, max_value=SIZE + 3)
lengths = st.integers(min_value=-2, max_value=SIZE + 3)
# Drawing a length and a seed is much cheaper for hypothesis than drawing
# every byte, and still gives distinct contents to every write.
payloads = st.builds(
    lambda n, seed: random.Random(seed).randbytes(n),
    st.integers(min_value=0, max_value=64) | st.integers(min_value=0, max_value=SIZE + 2),
    st.integers(min_value=0, max_value=2**32),
)
# The per-call flags of write and memset: mostly the plain call.
store_flags = st.sampled_from(
    [{}] * 4
    + [
        {"nontemporal": True},
        {"temporal": True},
        {"flush": False},
        {"drain": True},
        {"nontemporal": True, "drain": True},
        {"temporal": True, "flush": False},
    ]
)
indices = st.integers(min_value=-SIZE - 2, max_value=SIZE + 2)
slice_parts = st.none() | indices
steps = st.none() | st.sampled_from([1, 2, 3, 7, -1, -2, -5, 4096])


def expect_refused(exc: type[BaseException], f: Any, *args: Any) -> None:
    try:
        f(*args)
    except exc:
        return
    raise AssertionError(f"{f} {args} should raise {exc.__name__}")


class MappingModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory(prefix="pypmem-model-")
        self.path = os.path.join(self.dir.name, "model.pmem")
        self.model = bytearray(os.urandom(SIZE))
        with open(self.path, "wb") as f:
            f.write(self.model)
        self.m: pypmem.Mapping | None = None
        self.views: list[tuple[Any, int]] = []

    @initialize(granularity=st.sampled_from(["page", "cache_line", "byte"]))
    def start(self, granularity: str) -> None:
        pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", None if granularity == "page" else granularity)
        self.m = pypmem.map_file(self.path)
        pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", None)

    def teardown(self) -> None:
        self.views.clear()
        if self.m is not None:
            self.m.close()
        self.dir.cleanup()

    # -- helpers ---------------------------------------------------------
    def fits(self, offset: int, length: int) -> bool:
        return 0 <= offset and 0 <= length and offset + length <= SIZE

    # -- rules while mapped ----------------------------------------------
    @precondition(lambda self: self.m is not None)
    @rule(offset=offsets, data=payloads, flags=store_flags)
    def write(self, offset: int, data: bytes, flags: dict[str, bool]) -> None:
        assert self.m is not None
        if self.fits(offset, len(data)):
            self.m.write(offset, data, **flags)
            self.model[offset : offset + len(data)] = data
        else:
            expect_refused(ValueError, lambda: self.m.write(offset, data, **flags))

    @precondition(lambda self: self.m is not None)
    @rule(offset=offsets, length=lengths)
    def read(self, offset: int, length: int) -> None:
        assert self.m is not None
        if self.fits(offset, length):
            assert self.m.read(offset, length) == self.model[offset : offset + length]
        else:
            expect_refused(ValueError, self.m.read, offset, length)

    @precondition(lambda self: self.m is not None)
    @rule(offset=offsets, length=st.integers(min_value=0, max_value=200))
    def readinto(self, offset: int, length: int) -> None:
        assert self.m is not None
        buf = bytearray(length)
        if self.fits(offset, length):
            assert self.m.readinto(offset, buf) == length
            assert buf == self.model[offset : offset + length]
        else:
            expect_refused(ValueError, self.m.readinto, offset, buf)

    @precondition(lambda self: self.m is not None)
    @rule(offset=offsets, value=st.integers(min_value=0, max_value=255), length=lengths, flags=store_flags)
    def memset(self, offset: int, value: int, length: int, flags: dict[str, bool]) -> None:
        assert self.m is not None
        if self.fits(offset, length):
            self.m.memset(offset, value, length, **flags)
            self.model[offset : offset + length] = bytes([value]) * length
        else:
            expect_refused(ValueError, lambda: self.m.memset(offset, value, length, **flags))

    @precondition(lambda self: self.m is not None)
    @rule(i=indices)
    def get_item(self, i: int) -> None:
        assert self.m is not None
        if -SIZE <= i < SIZE:
            assert self.m[i] == self.model[i]
        else:
            expect_refused(IndexError, self.m.__getitem__, i)

    @precondition(lambda self: self.m is not None)
    @rule(i=indices, value=st.integers(min_value=0, max_value=255))
    def set_item(self, i: int, value: int) -> None:
        assert self.m is not None
        if -SIZE <= i < SIZE:
            self.m[i] = value
            self.model[i] = value
        else:
            expect_refused(IndexError, self.m.__setitem__, i, value)

    @precondition(lambda self: self.m is not None)
    @rule(a=slice_parts, b=slice_parts, step=steps)
    def get_slice(self, a: int | None, b: int | None, step: int | None) -> None:
        assert self.m is not None
        assert self.m[a:b:step] == bytes(self.model[a:b:step])

    @precondition(lambda self: self.m is not None)
    @rule(a=slice_parts, b=slice_parts, step=steps, fill=st.integers(0, 255), delta=st.sampled_from([0, 0, 0, 1, -1]))
    def set_slice(self, a: int | None, b: int | None, step: int | None, fill: int, delta: int) -> None:
        assert self.m is not None
        n = len(self.model[a:b:step])
        data = bytes([fill]) * max(0, n + delta)
        if len(data) == n:
            self.m[a:b:step] = data
            self.model[a:b:step] = data
        else:
            expect_refused(ValueError, self.m.__setitem__, slice(a, b, step), data)

    @precondition(lambda self: self.m is not None)
    @rule(kind=st.sampled_from(["memoryview", "numpy", "view-slice", "numpy-of-view"]), a=st.integers(0, SIZE), n=st.integers(0, 64))
    def view(self, kind: str, a: int, n: int) -> None:
        assert self.m is not None
        b = min(SIZE, a + n)
        if kind == "memoryview":
            v: Any = memoryview(self.m)
            base = 0
        elif kind == "numpy":
            v = np.frombuffer(self.m, dtype=np.uint8)
            base = 0
        elif kind == "view-slice":
            with memoryview(self.m) as whole:
                v = whole[a:b]
            base = a
        else:
            v = np.asarray(memoryview(self.m))[a:b]
            base = a
        self.views.append((v, base))

    @precondition(lambda self: self.views)
    @rule(which=st.integers(0, 2**16), at=st.integers(0, 2**16), fill=st.integers(0, 255))
    def write_through_view(self, which: int, at: int, fill: int) -> None:
        v, base = self.views[which % len(self.views)]
        n = len(v)
        if n == 0:
            return
        i = at % n
        v[i] = fill
        self.model[base + i] = fill

    @precondition(lambda self: self.views)
    @rule(which=st.integers(0, 2**16))
    def release(self, which: int) -> None:
        v, _ = self.views.pop(which % len(self.views))
        if isinstance(v, memoryview):
            v.release()

    @precondition(lambda self: self.m is not None)
    @rule(offset=offsets, length=st.none() | lengths, how=st.sampled_from(["persist", "flush", "write_back+wmb", "deep_persist"]))
    def persist(self, offset: int, length: int | None, how: str) -> None:
        assert self.m is not None
        n = SIZE - offset if length is None else length
        f = {"persist": self.m.persist, "flush": self.m.flush, "deep_persist": self.m.deep_persist}.get(how, self.m.write_back)
        if self.fits(offset, n):
            f(offset, length)
            if how == "write_back+wmb":
                pypmem.wmb_pmem()
        else:
            expect_refused(ValueError, f, offset, length)

    @precondition(lambda self: self.m is not None)
    @rule()
    def close(self) -> None:
        assert self.m is not None
        if self.views:
            expect_refused(BufferError, self.m.close)
            assert not self.m.closed
            return
        self.m.close()
        assert self.m.closed
        self.m.close()  # twice is fine
        expect_refused(ValueError, self.m.read, 0, 1)
        expect_refused(ValueError, memoryview, self.m)
        self.m = None
        assert file_bytes(self.path) == self.model

    # -- rules while closed ----------------------------------------------
    @precondition(lambda self: self.m is None)
    @rule()
    def remap(self) -> None:
        self.m = pypmem.map_file(self.path)
        assert len(self.m) == SIZE

    @invariant()
    def contents_match_the_model(self) -> None:
        if self.m is not None:
            assert bytes(self.m) == self.model


MappingModel.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMappingModel = MappingModel.TestCase
