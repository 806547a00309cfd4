#!/usr/bin/env python3
"""Runs the code blocks of the READMEs verbatim, as a new user would.

    python3 tests/doc/readme_blocks.py [--list] [README ...]

Each README is one session: a fresh temporary directory as the working
directory and as $HOME, and one bash process that runs the README's blocks
in order, so what one block exports or installs the next one sees. The
environment is cleaned of what would let a block pass by accident
(PKG_CONFIG_PATH, LD_LIBRARY_PATH, PMEM_SYS_LIB, PMEM_SYS_* knobs,
VIRTUAL_ENV): a README must say how the user sets them.

Markers, an HTML comment on the line right before the opening fence:

    <!-- fragment -->     not run: part of a larger program, sample output,
                          a command that cannot run inside `make test`
    <!-- file: NAME -->   the block is written to NAME in the session's
                          current directory (not run); a later block uses it
    <!-- cwd: repo -->    a shell block run in the repository checkout
                          (`make install ...`, `pip install ./python`)
    <!-- requires: fio --> the block runs only where these commands exist,
                          else prints SKIPPED (may stack with one above)

Unmarked blocks run by language: sh/bash/shell in the session; c compiled
with `cc -std=c11 -Wall -Werror $(pkg-config --cflags --libs pmem-sys)` and
run; python with `python3` (whichever the session's PATH finds, e.g. a
virtual environment a block activated); js with `node`, from the current
directory (so `require` sees its node_modules). Any other language, or a
block without one, must be marked: the runner refuses to guess.

The only rewrites: `/path/to/pmem-sys` becomes the checkout, and paths
under `/mnt/pmem...` (the persistent-memory mount the examples assume)
move into the session's temporary directory, which is created first.

Caches (pip, npm) live in build/doc-cache so repeated runs do not
download again. Exit status 0 only if every block of every README ran.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT = ["README.md", "python/README.md", "bindings/README.md",
           "bindings/go/README.md", "bindings/node/README.md",
           "bindings/ctypes/README.md"]
FENCE = re.compile(r"^(```+|~~~+)\s*([^\s`]*)\s*(.*)$")
MARKER = re.compile(r"^<!--\s*(fragment|file:\s*(\S+)|cwd:\s*repo|requires:\s*([^>]*?))\s*-->\s*$")
SHELL = {"sh", "bash", "shell"}
RUNNABLE = SHELL | {"c", "python", "js", "javascript"}
TIMEOUT = int(os.environ.get("DOC_TIMEOUT", "900"))
# What each README's session needs; a missing tool prints SKIPPED.
REQUIRES = {"README.md": ["cc", "pkg-config", "cargo", "python3"],
            "python/README.md": ["cargo", "python3"],
            "bindings/README.md": [],
            "bindings/go/README.md": ["go", "cc", "pkg-config", "cargo"],
            "bindings/node/README.md": ["node", "npm", "cargo"],
            "bindings/ctypes/README.md": ["cc", "cargo", "python3"]}


class Block:
    def __init__(self, path, line, lang, text, marker, name):
        self.path, self.line, self.lang, self.text = path, line, lang, text
        self.marker, self.name = marker, name  # marker: None|fragment|file|repo

    def where(self):
        return f"{self.path}:{self.line}"


def blocks(path):
    """The fenced blocks of a Markdown file, with the marker before each."""
    lines = open(os.path.join(REPO, path), encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        # Markers stack on the lines right above the fence.
        marker = name = None
        requires = []
        j = start - 2
        while j >= 0 and MARKER.match(lines[j].strip()):
            mk = MARKER.match(lines[j].strip())
            j -= 1
            if mk.group(1).startswith("requires"):
                requires += mk.group(3).split()
                continue
            if marker is not None:
                continue
            if mk.group(1) == "fragment":
                marker = "fragment"
            elif mk.group(1).startswith("file"):
                marker, name = "file", mk.group(2)
            else:
                marker = "repo"
        b = Block(path, start, lang, "\n".join(body) + "\n", marker, name)
        b.requires = requires
        out.append(b)
    return out


def rewrite(text, tmp):
    text = text.replace("/path/to/pmem-sys", REPO)
    return re.sub(r"/mnt/(pmem\w*)", lambda m: f"{tmp}/mnt/{m.group(1)}", text)


def script_for(path, bs, tmp):
    """One bash script running the README's blocks in order."""
    out = ["set -e",
           'trap \'echo "doc-test: FAILED in block $DOC_BLOCK" >&2\' ERR']
    for n, b in enumerate(bs):
        if b.marker == "fragment":
            out.append(f'echo "== {b.where()} ({b.lang or "no language"}): fragment, not run"')
            continue
        missing = [t for t in b.requires if shutil.which(t) is None]
        if missing:
            out.append(f'echo "SKIPPED: {b.where()}: needs {" ".join(missing)}"')
            continue
        text = rewrite(b.text, tmp)
        for d in sorted(set(re.findall(r"/mnt/(pmem\w*)", b.text))):
            os.makedirs(f"{tmp}/mnt/{d}", exist_ok=True)
        delim = f"PMEM_DOC_BLOCK_{n}_EOF"
        out.append(f'DOC_BLOCK="{b.where()}"')
        if b.marker == "file":
            out.append(f'echo "== {b.where()} ({b.lang}): written to {b.name}"')
            out.append(f"cat > {b.name} <<'{delim}'\n{text}{delim}")
            continue
        if b.lang not in RUNNABLE:
            raise SystemExit(
                f"{b.where()}: a ```{b.lang or ''} block cannot be run; "
                "mark it <!-- fragment --> or <!-- file: NAME -->")
        out.append(f'echo "== {b.where()} ({b.lang}{", in the checkout" if b.marker == "repo" else ""})"')
        if b.lang in SHELL:
            if b.marker == "repo":
                out.append(f'pushd "{REPO}" >/dev/null')
            out.append(text)
            if b.marker == "repo":
                out.append("popd >/dev/null")
            continue
        if b.marker == "repo":
            raise SystemExit(f"{b.where()}: <!-- cwd: repo --> is for shell blocks")
        ext = {"c": "c", "python": "py", "js": "js", "javascript": "js"}[b.lang]
        f = f"doc-block-{n}.{ext}"
        out.append(f"cat > {f} <<'{delim}'\n{text}{delim}")
        if ext == "c":
            out.append(f"cc -std=c11 -Wall -Werror {f} -o doc-block-{n} "
                       "$(pkg-config --cflags --libs pmem-sys)")
            out.append(f"./doc-block-{n}")
        elif ext == "py":
            out.append(f"python3 {f}")
        else:
            out.append(f"node {f}")
    out.append('echo "== all blocks ran"')
    return "\n".join(out) + "\n"


def environment(tmp):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PMEM_SYS_") and k not in {
               "PKG_CONFIG_PATH", "LD_LIBRARY_PATH", "PMEM_SYS_LIB",
               "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
               "GOFLAGS", "GOPATH", "GOCACHE", "CGO_LDFLAGS", "CGO_CFLAGS"}}
    # The fresh $HOME must not hide the Rust toolchain the user has.
    real_home = os.path.expanduser("~")
    env.setdefault("RUSTUP_HOME", os.path.join(real_home, ".rustup"))
    env.setdefault("CARGO_HOME", os.path.join(real_home, ".cargo"))
    cache = os.path.join(REPO, "build", "doc-cache")
    env.update(HOME=f"{tmp}/home", PIP_CACHE_DIR=f"{cache}/pip",
               npm_config_cache=f"{cache}/npm",
               GOTOOLCHAIN="local",
               PIP_DISABLE_PIP_VERSION_CHECK="1", npm_config_fund="false",
               npm_config_audit="false", npm_config_update_notifier="false")
    if "VIRTUAL_ENV" in os.environ:  # drop a venv's bin from PATH
        venv_bin = os.path.join(os.environ["VIRTUAL_ENV"], "bin")
        env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if p != venv_bin)
    return env


def main(argv):
    listing = "--list" in argv
    paths = [a for a in argv if not a.startswith("--")] or DEFAULT
    failed = []
    for path in paths:
        if not os.path.exists(os.path.join(REPO, path)):
            print(f"SKIPPED: {path}: not in this checkout")
            continue
        missing = [t for t in REQUIRES.get(path, []) if shutil.which(t) is None]
        if missing and not listing:
            print(f"SKIPPED: {path}: {', '.join(missing)} not installed")
            continue
        bs = blocks(path)
        if listing:
            for b in bs:
                print(f"{b.where()}: {b.lang or '-'} {b.marker or 'run'} {b.name or ''}")
            continue
        tmp = tempfile.mkdtemp(prefix="pmem-doc-")
        try:
            os.makedirs(f"{tmp}/home")
            os.makedirs(f"{tmp}/work")
            try:
                script = script_for(path, bs, tmp)
            except SystemExit as e:  # a block the runner refuses to guess about
                print(f"doc-test: {e}", file=sys.stderr)
                print(f"==== {path}: FAILED (not run)", flush=True)
                failed.append(path)
                continue
            with open(f"{tmp}/session.sh", "w") as f:
                f.write(script)
            t0 = time.monotonic()
            print(f"==== {path}: {len(bs)} blocks, session in {tmp}", flush=True)
            try:
                r = subprocess.run(["bash", f"{tmp}/session.sh"], cwd=f"{tmp}/work",
                                   env=environment(tmp), timeout=TIMEOUT)
                ok = r.returncode == 0
            except subprocess.TimeoutExpired:
                print(f"doc-test: {path}: timed out after {TIMEOUT} s", file=sys.stderr)
                ok = False
            print(f"==== {path}: {'passed' if ok else 'FAILED'} ({time.monotonic() - t0:.0f} s)", flush=True)
            if not ok:
                failed.append(path)
        finally:
            if os.environ.get("DOC_KEEP") != "1":
                shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        print(f"doc-test: FAILED: {' '.join(failed)}", file=sys.stderr)
        return 1
    if not listing:
        print("doc-test: every block of every README ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
