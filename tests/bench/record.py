"""Writes a full run into BENCHMARKS.md between its markers.

    python3 record.py BENCHMARKS.md RUN.md DATE COMMAND SECONDS

Only the text between the two markers is replaced, so the prose around it
(the analysis of the targets, written by people) survives a new run. A
missing file or missing markers get a fresh skeleton.
"""

import sys

BEGIN = "<!-- recorded run: begin (written by tests/bench/record.py) -->"
END = "<!-- recorded run: end -->"

SKELETON = f"""# Benchmarks

`make bench` measures pmem-sys against PMDK's libpmem in one process, side
by side; see tests/bench/README.md for the method.

{BEGIN}
{END}
"""


def main():
    path, run, date, command, seconds = sys.argv[1:6]
    with open(run) as f:
        body = f.read().strip()
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = SKELETON
    if BEGIN not in text or END not in text:
        text = text.rstrip() + "\n\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = f"{BEGIN}\n\n## Recorded run\n\n{date}, `{command}`, {seconds} s.\n\n{body}\n\n{END}"
    with open(path, "w") as f:
        f.write(head + block + tail)


if __name__ == "__main__":
    main()
