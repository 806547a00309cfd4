"""Mistakes the stubs must catch: mypy must report one error per marked line."""

import pypmem

m = pypmem.map_file("x", 4096, create=True)
m.write(0, "text")  # E: str is not a buffer
m.write("0", b"x")  # E: offset is an int
s: str = m.read(0, 4)  # E: read returns bytes
m.persist(length="all")  # E: length is int | None
pypmem.map_file("x", 10, True)  # E: create is keyword-only
m.granularity = "page"  # E: read-only property
x: int = m[0:2]  # E: a slice is bytes
pypmem.no_such_function()  # E: not in the module
m.write(0, b"x", drain="yes")  # E: drain is a bool
m.write(0, b"x", True)  # E: the flags are keyword-only
m.memset(0, 1, 2, nodrain=True)  # E: no such keyword
