"""Python rows of `make bench`: pypmem's Mapping against the stdlib's mmap.

    python bench_py.py full|smoke

Run by tests/bench/run.sh with the venv Python that has pypmem installed
(build/venv-python, made by `bash python/run-tests.sh`), and with
PMEM_SYS_FORCE_GRANULARITY=cache_line so that the tmpfs file behaves as
real persistent memory would. Both columns write the same file through
their own mapping, walking the same offsets (destinations cold), with the
same loop around the call; repetitions alternate which goes first. Prints
a markdown table; machine-readable `@ py_<row> <size> <ours> <stdlib>`
lines go to stderr.

The two columns do not promise the same thing: pypmem's writes go through
memcpy_to_pmem (written back or non-temporal, not fenced), stdlib mmap's
slice assignment only stores into the cache. One row adds
`pypmem.wmb_pmem()` after every write, the price of durability per call.
"""

import mmap
import os
import statistics
import sys
import time

import pypmem

MiB = 1024 * 1024
FILE_LEN = 64 * MiB


def open_ours(path, size):
    return pypmem.map_file(path, size)


def walk(n, count):
    step = (n + 63) // 64 * 64
    span = FILE_LEN - step
    return [(i * step) % span for i in range(count)]


def timed(fn, offsets):
    t0 = time.perf_counter_ns()
    fn(offsets)
    return (time.perf_counter_ns() - t0) / len(offsets)


def main():
    mode = sys.argv[1]
    reps = 3 if mode == "smoke" else 9
    count = 200 if mode == "smoke" else 5000
    d = os.environ.get("PMEM_BENCH_DIR") or "/dev/shm"
    path = os.path.join(d, f"pmem-sys-bench-py.{os.getpid()}")
    with open(path, "wb") as f:
        f.truncate(FILE_LEN)
    try:
        ours = open_ours(path, FILE_LEN)
        fd = os.open(path, os.O_RDWR)
        mm = mmap.mmap(fd, FILE_LEN)
        os.close(fd)
    finally:
        os.unlink(path)
    # Fault every page in through both mappings before timing.
    page = b"\1" * 4096
    for off in range(0, FILE_LEN, 4096):
        mm[off:off + 4096] = page
    ours_view = memoryview(ours)
    for off in range(0, FILE_LEN, 4096):
        ours_view[off] = 1

    try:
        import numpy as np
    except ImportError:
        np = None

    rows = []  # (label, size, ours_fn or None, stdlib_fn or None)
    for n in (8, 64, 4096):
        data = bytes(range(256)) * (n // 256) + bytes(range(n % 256))

        def w_ours(offs, data=data):
            w = ours.write
            for o in offs:
                w(o, data)

        def w_fence_ours(offs, data=data):
            w = ours.write
            fence = pypmem.wmb_pmem
            for o in offs:
                w(o, data)
                fence()

        def slice_ours(offs, data=data, n=n):
            for o in offs:
                ours[o:o + n] = data

        def slice_mm(offs, data=data, n=n):
            for o in offs:
                mm[o:o + n] = data

        def r_ours(offs, n=n):
            r = ours.read
            for o in offs:
                r(o, n)

        def r_mm(offs, n=n):
            for o in offs:
                mm[o:o + n]

        has_write = hasattr(ours, "write")
        has_read = hasattr(ours, "read")
        rows.append(("`Mapping.write(off, b)` vs `mm[a:b] = b`", n, w_ours if has_write else None, slice_mm))
        rows.append(("`Mapping.write` + `pypmem.wmb_pmem()` vs `mm[a:b] = b`", n, w_fence_ours if has_write else None, slice_mm))
        rows.append(("`Mapping[a:b] = b` vs `mm[a:b] = b`", n, slice_ours, slice_mm))
        rows.append(("`Mapping.read(off, n)` vs `mm[a:b]`", n, r_ours if has_read else None, r_mm))
        if np is not None:
            a_ours = np.frombuffer(ours, dtype=np.uint8)
            a_mm = np.frombuffer(mm, dtype=np.uint8)
            arr = np.frombuffer(data, dtype=np.uint8)

            def np_ours(offs, a=a_ours, arr=arr, n=n):
                for o in offs:
                    a[o:o + n] = arr

            def np_mm(offs, a=a_mm, arr=arr, n=n):
                for o in offs:
                    a[o:o + n] = arr

            rows.append(("numpy view slice assignment (pypmem vs mmap)", n, np_ours, np_mm))

    print("\n### Python (per call; pypmem writes with memcpy_to_pmem, stdlib mmap only stores)\n")
    print(f"pypmem {getattr(pypmem, '__version__', '?')}, table `{pypmem.implementation()}`, "
          f"granularity `{ours.granularity}`; {sys.version.split()[0]}"
          f"{', numpy ' + np.__version__ if np is not None else ''}.\n")
    if np is None:
        print("SKIPPED: numpy rows (numpy is not installed in the venv)\n")
    print("| operation | size | pypmem | stdlib mmap | time pypmem/mmap |")
    print("|---|---:|---:|---:|---:|")
    for label, n, f_ours, f_mm in rows:
        if f_ours is None:
            print(f"| {label} | {n} B | SKIPPED (no such method) | – | – |")
            continue
        offs = walk(n, count)
        f_ours(offs[:50])
        f_mm(offs[:50])
        vo, vm = [], []
        for r in range(reps):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for k in order:
                if k == 0:
                    vo.append(timed(f_ours, offs))
                else:
                    vm.append(timed(f_mm, offs))
        mo, mmed = statistics.median(vo), statistics.median(vm)
        size = f"{n} B" if n < 1024 else f"{n // 1024} KiB"
        print(f"| {label} | {size} | {mo:.0f} ns ({min(vo):.0f}–{max(vo):.0f}) | "
              f"{mmed:.0f} ns ({min(vm):.0f}–{max(vm):.0f}) | {mo / mmed:.2f} |")
        key = "py_" + "".join(ch for ch in label.split(" vs ")[0] if ch.isalnum()).lower()
        print(f"@ {key} {n} {mo:.3f} {mmed:.3f}", file=sys.stderr)
        sys.stdout.flush()
    # The mappings stay open until exit: numpy views still export them.


if __name__ == "__main__":
    main()
