"""pypmem.crashtest on programs whose correctness is known: every correct
program passes every image; every planted bug fails, and the failure names
the guilty line (marked GUILTY(variant) in the program). A missed bug fails
this test.

Run with pytest in an environment where pypmem is installed (tests/crash/run.sh).
"""

from __future__ import annotations

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import cow  # noqa: E402
import log  # noqa: E402
import pypmem.crashtest  # noqa: E402

PROGRAMS = {"log": log, "cow": cow}
BUGS = [
    ("log", "tail-first"),
    ("log", "no-flush"),
    ("log", "no-fence"),
    ("log", "direct-store"),
    ("cow", "flag-early"),
    ("cow", "in-place"),
]
CORRECT = [("log", "correct"), ("log", "direct-correct"), ("cow", "correct")]


def guilty_line(program: str, variant: str) -> int:
    with open(PROGRAMS[program].__file__) as f:
        lines = [i + 1 for i, line in enumerate(f) if f"GUILTY({variant})" in line]
    assert len(lines) == 1, f"{program}.py: {len(lines)} GUILTY({variant}) markers"
    return lines[0]


@pytest.mark.parametrize("granularity", ["cache_line", "byte", None])
@pytest.mark.parametrize("program,variant", CORRECT)
def test_correct_programs_pass_every_image(program: str, variant: str, granularity: str | None) -> None:
    p = PROGRAMS[program]
    stats = pypmem.crashtest.check(p.workload(variant, 4), p.check, size=p.SIZE, granularity=granularity)
    assert stats["images_checked"] >= 1
    assert stats["crash_points"] >= 4


@pytest.mark.parametrize("program,variant", BUGS)
def test_planted_bugs_are_caught_and_the_guilty_call_named(program: str, variant: str) -> None:
    p = PROGRAMS[program]
    with pytest.raises(AssertionError) as e:
        pypmem.crashtest.check(p.workload(variant, 3), p.check, size=p.SIZE)
    report = str(e.value)
    line = guilty_line(program, variant)
    assert f"{program}.py:{line})" in report, report
    # The report's image can be checked alone, and fails again.
    image = re.search(r"image=('[0-9]+:[0-9,]*')", report)
    assert image, report
    with pytest.raises(AssertionError):
        pypmem.crashtest.check(p.workload(variant, 3), p.check, size=p.SIZE, image=image.group(1).strip("'"))


def test_planted_bugs_pass_where_the_file_system_forgives_them() -> None:
    # With page granularity (tmpfs) the tail and the record share one page,
    # written back as a whole: the missing fence cannot be seen there. The
    # model says so rather than report a bug that cannot happen.
    stats = pypmem.crashtest.check(log.workload("no-fence", 3), log.check, size=log.SIZE, granularity="page")
    assert stats["images_checked"] >= 1


def test_a_check_returning_false_fails_the_image() -> None:
    with pytest.raises(AssertionError, match="returned False"):
        pypmem.crashtest.check(log.workload("correct", 1), lambda path: False, size=log.SIZE)


def test_the_workloads_own_error_propagates_and_recording_stops() -> None:
    def boom(m: pypmem.Mapping) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        pypmem.crashtest.check(boom, log.check)
    # Recording stopped: a new one can start.
    stats = pypmem.crashtest.check(log.workload("correct", 1), log.check, size=log.SIZE)
    assert stats["images_checked"] >= 1


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="granularity"):
        pypmem.crashtest.check(log.workload("correct", 1), log.check, granularity="huge")
    with pytest.raises(ValueError, match="max_images"):
        pypmem.crashtest.check(log.workload("correct", 1), log.check, max_images=0)
    with pytest.raises(ValueError, match="image"):
        pypmem.crashtest.check(log.workload("correct", 1), log.check, image="nonsense")


def test_a_second_file_gives_the_check_a_directory_of_images() -> None:
    import tempfile

    seen: list[object] = []
    with tempfile.TemporaryDirectory() as d:
        other = os.path.join(d, "other.pmem")

        def workload(m: pypmem.Mapping) -> None:
            m.write(0, b"A")
            pypmem.wmb_pmem()
            with pypmem.map_file(other, 4096, create=True) as o:
                o.write(0, b"B")
                pypmem.wmb_pmem()

        def check(path: str) -> None:
            seen.append(sorted(os.listdir(path)) if os.path.isdir(path) else path)

        pypmem.crashtest.check(workload, check)
    # Every image, even before the second file was mapped, is a directory
    # holding both files under their own names.
    assert seen and all(s == ["other.pmem", "pool.pmem"] for s in seen), seen
