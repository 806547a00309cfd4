"""The package as installed: what the extension exports, docstrings, the
command line."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pypmem
import pypmem.__main__
import pypmem._pypmem
from conftest import unprivileged


def test_extension_exports_only_its_init_function() -> None:
    nm = shutil.which("nm")
    assert nm, "nm (binutils) is required; run-tests.sh installs it"
    so = pypmem._pypmem.__file__
    assert so is not None
    out = subprocess.run([nm, "-D", "--defined-only", so], check=True, capture_output=True, text=True).stdout
    names = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    assert names == ["PyInit__pypmem"], names


def test_extension_does_not_need_libpmem_sys() -> None:
    so = pypmem._pypmem.__file__
    assert so is not None
    out = subprocess.run(["readelf", "-d", so], check=True, capture_output=True, text=True).stdout
    assert "libpmem_sys" not in out
    assert "libpython" not in out  # abi3 extensions resolve Python from the interpreter


def test_is_an_abi3_extension() -> None:
    assert pypmem._pypmem.__file__ is not None
    assert pypmem._pypmem.__file__.endswith(".abi3.so")


def test_every_public_name_has_a_docstring() -> None:
    assert pypmem.__doc__
    missing = []
    for name in pypmem.__all__:
        obj = getattr(pypmem, name)
        if callable(obj) and not (obj.__doc__ or "").strip():
            missing.append(name)
    for name, member in inspect.getmembers(pypmem.Mapping):
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        if not (getattr(member, "__doc__", None) or "").strip():
            missing.append(f"Mapping.{name}")
    assert not missing, missing


def test_version_and_engine() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", pypmem.__version__)
    assert re.fullmatch(r"\d+\.\d+\.\d+", pypmem.ENGINE_VERSION)
    assert re.fullmatch(r"[a-z0-9_]+/[a-z0-9_]+\+[a-z0-9_]+", pypmem.implementation()), pypmem.implementation()
    assert isinstance(pypmem.cpu_features(), str)
    assert isinstance(pypmem.arch_has_pmem_api(), bool)
    assert pypmem.arch_has_wmb_pmem() == pypmem.arch_has_pmem_api()
    assert pypmem.movnt_threshold() > 0
    pypmem.wmb_pmem()


def test_stubs_and_marker_are_installed() -> None:
    pkg = Path(pypmem.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_pypmem.pyi").is_file()
    stub = (pkg / "_pypmem.pyi").read_text()
    for name in pypmem.__all__:
        assert re.search(rf"\b{re.escape(name)}\b", stub), f"{name} missing from the stubs"


def _info(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pypmem", *args], capture_output=True, text=True)


def test_info_command_creates_and_modifies_nothing(tmp_path: Path) -> None:
    f = tmp_path / "probe.pmem"
    f.write_bytes(b"p" * 8192)
    os.chmod(f, 0o444)  # a file the user may only read (root ignores this; readonly is checked below)
    before = f.stat()
    missing = tmp_path / "missing.pmem"
    r = _info("info", str(f), str(tmp_path), str(missing), str(tmp_path / "no" / "such"))
    assert r.returncode == 1, r  # the missing paths are errors
    out = r.stdout
    assert f"implementation: {pypmem.implementation()}" in out
    assert f"{f}: granularity " in out and "reason: " in out
    assert f"{tmp_path}: granularity " in out
    assert f"{missing}: error: No such file or directory" in out
    assert "no/such: error: No such file or directory" in out
    assert not missing.exists()  # never created
    after = f.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == (before.st_size, before.st_mtime_ns, before.st_ctime_ns)
    assert f.read_bytes() == b"p" * 8192
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.pmem"]  # the directory probe left nothing


def test_info_opens_files_read_only(world_readable_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user who may only read a file can probe it (it was opened read-write:
    "Permission denied")."""
    with unprivileged():
        rc = pypmem.__main__.main(["info", str(world_readable_file)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"{world_readable_file}: granularity page" in out


@pytest.mark.parametrize("args,code", [([], 2), (["--help"], 0), (["bogus"], 2), (["info", "--help"], 0)])
def test_info_usage(args: list[str], code: int) -> None:
    r = _info(*args)
    assert r.returncode == code, r
    assert "usage: python -m pypmem" in r.stdout + r.stderr


@pytest.mark.parametrize("args", [["--version"], ["info", "--version"]])
def test_version_option(args: list[str]) -> None:
    r = _info(*args)
    assert r.returncode == 0, r
    assert r.stdout.strip() == f"pypmem {pypmem.__version__} (pmem-sys {pypmem.ENGINE_VERSION})"
