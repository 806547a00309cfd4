"""Tests of the plain-dlopen path: ctypes.CDLL on the installed library.

Run with the library's path in PMEM_SYS_LIB:
    PMEM_SYS_LIB=.../libpmem_sys.so.0 python3 -m unittest -v test_pmem_ctypes
"""

import ctypes
import errno
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pmem_ctypes  # noqa: E402

LIB_PATH, LIB_HOW = pmem_ctypes.find_library()


def run_python(code, **env_changes):
    env = dict(os.environ, **env_changes)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=HERE)


class PlainDlopen(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lib = pmem_ctypes.Library(LIB_PATH)

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def test_example_script_runs(self):
        r = subprocess.run([sys.executable, os.path.join(HERE, "pmem_ctypes.py")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("round trip ok", r.stdout)
        self.assertIn(f"missing file: errno {errno.ENOENT}", r.stdout)

    def test_readme_sample_output_is_current(self):
        # The README shows the script's output; it must be what the script
        # prints now, up to what differs per machine and run (temporary
        # directory, library path, implementation, granularity, reason).
        readme = open(os.path.join(HERE, "README.md"), encoding="utf-8").read()
        sample = re.search(r"```\n(library: .*?)```", readme, re.S)
        self.assertIsNotNone(sample, "no sample output block in README.md")
        r = subprocess.run([sys.executable, os.path.join(HERE, "pmem_ctypes.py")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        def shape(text):
            text = re.sub(r"/tmp/tmp\w+", "TMP", text)
            text = re.sub(r"(?m)^library: .*$", "library: LIB", text)
            text = re.sub(r"implementation \S+", "implementation IMPL", text)
            text = re.sub(r"(?m)^granularity: .*$", "granularity: G", text)
            text = re.sub(r"(?m)^reason: .*$", "reason: R", text)
            return text.strip().splitlines()

        self.assertEqual(shape(sample.group(1)), shape(r.stdout))

    def test_first_call_needs_no_init(self):
        # A fresh process whose first call into the library is a copy: the
        # dispatch resolves itself on that call.
        code = (
            "import ctypes, os\n"
            f"lib = ctypes.CDLL({LIB_PATH!r}, mode=os.RTLD_NOW)\n"
            "dst = ctypes.create_string_buffer(300)\n"
            "src = bytes(range(256)) + b'tail'\n"
            "lib.memcpy_to_pmem.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]\n"
            "lib.memcpy_to_pmem(dst, src, len(src))\n"
            "lib.wmb_pmem()\n"
            "assert dst.raw[:len(src)] == src, dst.raw\n"
            "lib.pmem_sys_impl.restype = ctypes.c_char_p\n"
            "print(lib.pmem_sys_impl().decode())\n"
        )
        r = run_python(code)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^[a-z0-9_]+/[a-z0-9]+\+[a-z0-9-]+$")

    def test_rtld_now_resolves_every_header_function(self):
        # RTLD_NOW already failed the load if a symbol the library needs
        # were missing; here every function pmem.h declares must be there.
        header = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(LIB_PATH))), "include", "pmem.h")
        if not os.path.exists(header):
            self.skipTest(f"no pmem.h beside the library ({header})")
        with open(header) as f:
            text = f.read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments
        text = re.sub(r"//[^\n]*", " ", text)
        text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)  # preprocessor lines
        text = text.replace('extern "C" {', " ").replace("}", " ")
        names = set()
        for statement in text.split(";"):
            m = re.search(r"\b([A-Za-z_]\w*)\s*\(", statement)
            if m:
                names.add(m.group(1))
        # The C API has about thirty functions; far fewer means the parse broke.
        self.assertGreater(len(names), 20, sorted(names))
        dll = ctypes.CDLL(LIB_PATH, mode=os.RTLD_NOW)
        missing = [n for n in sorted(names) if not hasattr(dll, n)]
        self.assertEqual(missing, [])

    def test_missing_file_is_enoent_with_message(self):
        path = os.path.join(self.dir, "absent.pmem")
        with self.assertRaises(FileNotFoundError) as cm:
            self.lib.map_file(path.encode(), 0, 0, 0, None)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertIn("pmem_sys_map_file", cm.exception.strerror)
        self.assertIn(path, cm.exception.strerror)

    def test_excl_and_bad_flags(self):
        path = os.path.join(self.dir, "f.pmem")
        with open(path, "wb") as f:
            f.write(b"keep me")
        with self.assertRaises(FileExistsError):
            self.lib.map_file(path.encode(), 4096, pmem_ctypes.PMEM_SYS_FILE_CREATE | pmem_ctypes.PMEM_SYS_FILE_EXCL, 0o600, None)
        with self.assertRaises(OSError) as cm:
            self.lib.map_file(path.encode(), 4096, 0x100, 0o600, None)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertIn("unknown bits", cm.exception.strerror)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"keep me")

    def test_memremap_read_only_fd_is_eacces(self):
        path = os.path.join(self.dir, "ro.pmem")
        with open(path, "wb") as f:
            f.write(bytes(8192))
        fd = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        with self.assertRaises(PermissionError) as cm:
            self.lib.memremap(fd, 0, 4096)
        self.assertEqual(cm.exception.errno, errno.EACCES)
        self.assertIn("read-only", cm.exception.strerror)

    def test_round_trip_through_the_file(self):
        path = os.path.join(self.dir, "rt.pmem")
        size = 3 * 4096 + 100
        mapped = ctypes.c_size_t()
        addr = self.lib.map_file(path.encode(), size, pmem_ctypes.PMEM_SYS_FILE_CREATE, 0o600, ctypes.byref(mapped))
        self.assertEqual(mapped.value, size)
        self.assertEqual(self.lib.mapping_size(addr), size)
        data = os.urandom(9000)
        self.lib.memcpy_to_pmem(addr + 7, data, len(data))
        self.lib.drain()
        self.lib.persist(addr, size)
        self.assertIn(pmem_ctypes.GRANULARITY_NAMES[self.lib.granularity(addr, size)], ("byte", "cache line", "page"))
        self.lib.memunmap(addr)
        with self.assertRaises(OSError) as cm:
            self.lib.memunmap(addr)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        with open(path, "rb") as f:
            on_disk = f.read()
        self.assertEqual(len(on_disk), size)
        self.assertEqual(on_disk[7:7 + len(data)], data)
        self.assertEqual(on_disk[:7], bytes(7))


if __name__ == "__main__":
    unittest.main(verbosity=2)
