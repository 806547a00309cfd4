"""``python -m pypmem info [PATH...]``: what pmem-sys sees on this machine.

Prints what the C library's ``pmeminfo`` prints: the CPU features detected,
the operation table selected, the non-temporal threshold and the options in
force; then, for each PATH, the store granularity a mapping of it gets and
why. A directory is probed with an unnamed temporary file inside it; a
missing file is created with 4096 bytes (and left in place, as pmeminfo
does).
"""

from __future__ import annotations

import os
import stat
import sys

import pypmem

USAGE = "usage: python -m pypmem info [PATH...]"


def probe(path: str) -> int:
    """Prints the granularity and reason of a mapping of ``path``; returns
    0 on success and 1 (after printing the error) on failure."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    try:
        if st is not None and stat.S_ISDIR(st.st_mode):
            m = pypmem.map_file(path, 4096, create=True, tmpfile=True, mode=0o644)
        elif st is None:
            m = pypmem.map_file(path, 4096, create=True, mode=0o644)
        else:
            m = pypmem.map_file(path)
    except OSError as e:
        print(f"{path}: error: {e.strerror}")
        return 1
    with m:
        print(f"{path}: granularity {m.granularity} (is_pmem {'yes' if m.is_pmem else 'no'})")
        print(f"  reason: {m.reason}")
    return 0


def info(paths: list[str]) -> int:
    """The ``info`` command; returns the exit status."""
    knobs = pypmem.knobs_report()
    print(f"pmem-sys {pypmem.ENGINE_VERSION} (pypmem {pypmem.__version__})")
    print(f"cpu features:   {pypmem.cpu_features()}")
    print(f"implementation: {pypmem.implementation()}")
    print(f"nt threshold:   {pypmem.movnt_threshold()} bytes")
    print(f"pmem api:       {'yes' if pypmem.arch_has_pmem_api() else 'no'}")
    print(f"knobs:          {'' if knobs else '(none)'}")
    for line in knobs.splitlines():
        print(f"  {line}")
    rc = 0
    for p in paths:
        rc |= probe(p)
    return rc


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m pypmem``; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] != "info":
        print(f"python -m pypmem: unknown command {args[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    return info(args[1:])


if __name__ == "__main__":
    sys.exit(main())
