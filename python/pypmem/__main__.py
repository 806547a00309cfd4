"""``python -m pypmem info [PATH...]``: what pmem-sys sees on this machine.

Prints what the C library's ``pmeminfo`` prints: the CPU features detected,
the operation table selected, the non-temporal threshold and the options in
force; then, for each PATH, the store granularity a mapping of it gets and
why. It never creates or modifies anything: an existing file or device is
opened read-only and mapped read-only; a directory is probed with an
unnamed temporary file inside it (O_TMPFILE, sparse, so no block is
allocated and nothing is left behind; it needs write permission on the
directory); a missing path is reported as an error. ``--version`` prints
the versions.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

import pypmem


def probe(path: str) -> int:
    """Prints the granularity and reason of a mapping of ``path``; returns
    0 on success and 1 (after printing the error) on failure."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            m = pypmem.map_file(path, 4096, create=True, tmpfile=True, sparse=True, mode=0o600)
        else:
            m = pypmem.map_file(path, readonly=True)
    except (OSError, ValueError) as e:
        print(f"{path}: error: {e.strerror if isinstance(e, OSError) and e.strerror else e}")
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


def parser() -> argparse.ArgumentParser:
    """The command line: ``info [PATH...]`` and ``--version``."""
    version = f"pypmem {pypmem.__version__} (pmem-sys {pypmem.ENGINE_VERSION})"
    ap = argparse.ArgumentParser(
        prog="python -m pypmem",
        description="What pmem-sys sees on this machine, and what a mapping of each PATH gets.",
    )
    ap.add_argument("--version", action="version", version=version)
    sub = ap.add_subparsers(dest="command", metavar="info", required=True)
    p_info = sub.add_parser(
        "info",
        help="the engine, the CPU, the options; then each PATH's granularity (read-only)",
        description="Never creates or modifies anything: files are opened and mapped read-only.",
    )
    p_info.add_argument("--version", action="version", version=version)
    p_info.add_argument("paths", nargs="*", metavar="PATH", help="a file, device-DAX node or directory")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m pypmem``; returns the exit status."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    paths: list[str] = args.paths
    return info(paths)


if __name__ == "__main__":
    sys.exit(main())
