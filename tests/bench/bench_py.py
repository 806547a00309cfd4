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

A second table (issue 16 item 7) compares them on a page-granular mapping,
best of 41 interleaved rounds, with the targets: methods at most 1.0x,
slices at most 1.1x, and write + persist (or the durable flush) at most
1.0x of slice assignment + `mm.flush(off, n)`.
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
    page_granular(mode, d)


# Issue 16 item 7: pypmem at the standard library's speed, per call, on a
# page-granular file (the granularity every ordinary file gets), side by
# side with mmap in this process. (label, size, target ratio or None).
PAGE_TARGETS = {"write": 1.0, "read": 1.0, "slice=": 1.1, "slice": 1.1, "durable": 1.0}


def page_granular(mode, d):
    rounds = 5 if mode == "smoke" else 41
    count = 200 if mode == "smoke" else 4000
    path = os.path.join(d, f"pmem-sys-bench-py-page.{os.getpid()}")
    with open(path, "wb") as f:
        f.truncate(FILE_LEN)
    pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", "page")
    try:
        m = pypmem.map_file(path, FILE_LEN)
        fd = os.open(path, os.O_RDWR)
        mm = mmap.mmap(fd, FILE_LEN)
        os.close(fd)
    finally:
        pypmem.set_option("PMEM_SYS_FORCE_GRANULARITY", None)
        os.unlink(path)
    mm[:] = b"\1" * FILE_LEN  # every page present in both mappings
    rows = []
    for n in (8, 64, 4096):
        data = bytes(range(256)) * (n // 256) + bytes(range(n % 256))

        def w_m(offs, data=data):
            w = m.write
            for o in offs:
                w(o, data)

        def r_m(offs, n=n):
            r = m.read
            for o in offs:
                r(o, n)

        def set_m(offs, data=data, n=n):
            for o in offs:
                m[o:o + n] = data

        def get_m(offs, n=n):
            for o in offs:
                m[o:o + n]

        def set_mm(offs, data=data, n=n):
            for o in offs:
                mm[o:o + n] = data

        def get_mm(offs, n=n):
            for o in offs:
                mm[o:o + n]

        def persist_m(offs, data=data, n=n):
            w, p = m.write, m.persist
            for o in offs:
                w(o, data)
                p(o, n)

        def flush_m(offs, data=data, n=n):
            w, f = m.write, m.flush
            for o in offs:
                w(o, data)
                f(o, n)

        def flush_mm(offs, data=data, n=n):
            f = mm.flush
            for o in offs:
                mm[o:o + n] = data
                a = o & ~(mmap.PAGESIZE - 1)  # mmap.flush wants a page-aligned offset
                f(a, o + n - a)

        rows += [
            ("write", "`m.write(off, b)` vs `mm[a:b] = b`", n, w_m, set_mm),
            ("read", "`m.read(off, n)` vs `mm[a:b]`", n, r_m, get_mm),
            ("slice=", "`m[a:b] = b` vs `mm[a:b] = b`", n, set_m, set_mm),
            ("slice", "`m[a:b]` vs `mm[a:b]`", n, get_m, get_mm),
            ("durable", "`m.write` + `m.persist(off, n)` vs `mm[a:b] = b` + `mm.flush(off, n)`", n, persist_m, flush_mm),
            ("durable", "`m.write` + `m.flush(off, n)` vs `mm[a:b] = b` + `mm.flush(off, n)`", n, flush_m, flush_mm),
        ]
    print("\n### Python at the standard library's speed (page-granular file)\n")
    print(f"Per call, best of {rounds} interleaved rounds of {count} calls (durable rows: {count // 4}) "
          f"on a page-granular mapping of a file in `{d}`, pypmem beside `mmap.mmap` of the same file "
          f"in the same process; the median ratio in brackets. Targets (issue 16 item 7): "
          f"methods at 8 and 64 B ≤ 1.0×, slices ≤ 1.1×, the durable path ≤ 1.0×; 4 KiB rows informative.\n")
    print("| operation | size | pypmem | stdlib mmap | pypmem/mmap | target |")
    print("|---|---:|---:|---:|---:|---|")
    for key, label, n, f_m, f_mm in rows:
        offs = walk(n, count // 4 if key == "durable" else count)
        f_m(offs[:50])
        f_mm(offs[:50])
        vo, vm = [], []
        for r in range(rounds):
            first, second = (f_m, f_mm) if r % 2 == 0 else (f_mm, f_m)
            a, b = timed(first, offs), timed(second, offs)
            (vo, vm)[first is f_mm].append(a)
            (vm, vo)[first is f_mm].append(b)
        bo, bm = min(vo), min(vm)
        ratio, med = bo / bm, statistics.median(vo) / statistics.median(vm)
        target = PAGE_TARGETS[key] if n < 4096 else None
        verdict = "–" if target is None else (f"≤ {target:.1f}× " + ("met" if ratio <= target else "**missed**"))
        size = f"{n} B" if n < 1024 else f"{n // 1024} KiB"
        print(f"| {label} | {size} | {bo:.0f} ns | {bm:.0f} ns | {ratio:.2f} ({med:.2f}) | {verdict} |")
        tag = "py_page_" + "".join(ch for ch in label.split(" vs ")[0] if ch.isalnum()).lower()
        print(f"@ {tag} {n} {bo:.3f} {bm:.3f}", file=sys.stderr)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
