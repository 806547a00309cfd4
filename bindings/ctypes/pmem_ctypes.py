#!/usr/bin/env python3
"""libpmem_sys from Python with nothing but ctypes.

No extension module and no initialisation call: the library is opened
with dlopen(RTLD_NOW), which resolves every symbol up front, and its first
call already runs on the operation table chosen for this CPU (the table
pointer starts at a resolver that selects and installs it).

Run as a script it maps a file, writes through the library, makes the
write durable, unmaps and reads the file back:

    PMEM_SYS_LIB=/usr/local/lib/libpmem_sys.so.0 python3 pmem_ctypes.py [FILE]

The library is found through PMEM_SYS_LIB, else the libdir pkg-config
reports for pmem-sys, else the dynamic loader's search for the SONAME.
"""

import ctypes
import os
import subprocess
import sys
import tempfile

SONAME = "libpmem_sys.so.0"

PMEM_SYS_FILE_CREATE = 1
PMEM_SYS_FILE_EXCL = 2
PMEM_SYS_FILE_SPARSE = 4
PMEM_SYS_FILE_TMPFILE = 8
GRANULARITY_NAMES = {0: "byte", 1: "cache line", 2: "page"}


def find_library(env=os.environ):
    """Returns (path, how it was found)."""
    if env.get("PMEM_SYS_LIB"):
        return env["PMEM_SYS_LIB"], "PMEM_SYS_LIB"
    try:
        libdir = subprocess.run(
            ["pkg-config", "--variable=libdir", "pmem-sys"],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        libdir = ""
    if libdir and os.path.exists(os.path.join(libdir, SONAME)):
        return os.path.join(libdir, SONAME), "pkg-config"
    return SONAME, "default search"


class Library:
    """The C API, declared for ctypes, raising OSError on failure."""

    def __init__(self, path):
        # use_errno: ctypes saves errno right after each foreign call, so
        # nothing Python does in between can clobber it.
        self.dll = ctypes.CDLL(path, mode=os.RTLD_NOW, use_errno=True)
        d = self.dll
        vp, sz = ctypes.c_void_p, ctypes.c_size_t

        def declare(name, restype, argtypes, errcheck=None):
            f = getattr(d, name)
            f.restype, f.argtypes = restype, argtypes
            if errcheck is not None:
                f.errcheck = errcheck
            return f

        d.pmem_sys_errormsg.restype = ctypes.c_char_p
        d.pmem_sys_errormsg.argtypes = []
        null_is_error = self._raise_if(lambda r: r is None)
        minus_one_is_error = self._raise_if(lambda r: r == -1)

        self.map_file = declare("pmem_sys_map_file", vp,
                                [ctypes.c_char_p, sz, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(sz)],
                                null_is_error)
        self.memremap = declare("memremap_pmem", vp, [ctypes.c_int, ctypes.c_uint64, sz], null_is_error)
        self.memunmap = declare("memunmap_pmem", ctypes.c_int, [vp], minus_one_is_error)
        self.memcpy_to_pmem = declare("memcpy_to_pmem", None, [vp, vp, sz])
        self.memcpy_from_pmem = declare("memcpy_from_pmem", ctypes.c_int, [vp, vp, sz])
        self.wmb_pmem = declare("wmb_pmem", None, [])
        self.persist = declare("pmem_sys_persist", ctypes.c_int, [vp, sz], minus_one_is_error)
        self.drain = declare("pmem_sys_drain", ctypes.c_int, [], minus_one_is_error)
        self.granularity = declare("pmem_sys_granularity", ctypes.c_int, [vp, sz], minus_one_is_error)
        self.mapping_size = declare("pmem_sys_mapping_size", sz, [vp])
        self.reason = declare("pmem_sys_mapping_reason", ctypes.c_char_p, [vp], null_is_error)
        self.impl = declare("pmem_sys_impl", ctypes.c_char_p, [])
        self.version = declare("pmem_sys_version", ctypes.c_char_p, [])
        self.arch_has_pmem_api = declare("arch_has_pmem_api", ctypes.c_bool, [])

    def _raise_if(self, failed):
        def errcheck(result, func, args):
            if failed(result):
                err = ctypes.get_errno()
                msg = self.dll.pmem_sys_errormsg().decode("utf-8", "replace")
                # OSError(errno, ...) picks the subclass: FileNotFoundError
                # for ENOENT, FileExistsError for EEXIST, PermissionError...
                raise OSError(err, msg)
            return result
        return errcheck


def main(argv):
    path, how = find_library()
    lib = Library(path)
    # The very first call does real work: there is no init function.
    print(f"library: {path} (found by {how})")
    print(f"version {lib.version().decode()}, implementation {lib.impl().decode()}")

    with tempfile.TemporaryDirectory() as tmp:
        target = argv[1] if len(argv) > 1 else os.path.join(tmp, "hello.pmem")
        mapped = ctypes.c_size_t(0)
        addr = lib.map_file(target.encode(), 4096, PMEM_SYS_FILE_CREATE, 0o600, ctypes.byref(mapped))
        print(f"mapped {mapped.value} bytes of {target}")
        print(f"granularity: {GRANULARITY_NAMES[lib.granularity(addr, mapped.value)]}")
        print(f"reason: {lib.reason(addr).decode()}")

        message = b"hello from ctypes"
        lib.memcpy_to_pmem(addr + 64, message, len(message))
        lib.drain()                      # order and complete the copy
        lib.persist(addr, mapped.value)  # or make a whole range durable

        back = ctypes.create_string_buffer(len(message))
        lib.memcpy_from_pmem(back, addr + 64, len(message))
        lib.memunmap(addr)

        with open(target, "rb") as f:
            on_disk = f.read()[64:64 + len(message)]
        if back.raw != message or on_disk != message:
            print(f"round trip FAILED: read back {back.raw!r}, file holds {on_disk!r}")
            return 1
        print("round trip ok")

        try:
            lib.map_file(os.path.join(tmp, "missing").encode(), 0, 0, 0, None)
        except FileNotFoundError as e:
            print(f"missing file: errno {e.errno} ({e.strerror})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
