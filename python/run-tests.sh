#!/usr/bin/env bash
# The Python package's tests, as `make test-python` runs them.
#
# 1. python/dist.sh (what `make wheel` runs): the manylinux2014 abi3 wheel
#    and the sdist in build/dist, checked with auditwheel and twine;
# 2. a fresh virtual environment in build/venv-python (made anew each run)
#    with pytest, numpy, hypothesis and mypy from PyPI, and that wheel
#    installed as a user would install it from PyPI (not an editable build);
# 3. pytest on python/tests against the installed package, then the same
#    on a newer CPython if one is installed (the wheel is abi3);
# 4. `python -m pypmem info`;
# 5. mypy --strict on a typed usage example (must pass) and on a file of
#    mistakes (each must be reported), against the installed stubs;
# 6. pip install from the sdist of step 1 and a smoke test.
#
# Exits non-zero on the first failure. Environment:
#   PYTHON=...                 interpreter for the venv (default: the first
#                              python3, python3.13, python3.12, python3.11
#                              that is 3.11 or newer)
#   PYPMEM_MODEL_EXAMPLES=N    sequences of the property test (default 2000)
#   PYPMEM_SECOND_PYTHON=0     skip the run on a newer interpreter
#   PYPMEM_SKIP_SDIST=1        skip step 6 (prints SKIPPED)
#   BUILD=dir                  venvs, caches, dist (default build/)
#   DIST=dir                   where step 1 writes (default $BUILD/dist)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BUILD: where venvs, the dist and caches go (make passes its BUILD).
BUILD=${BUILD:-$ROOT/build}
VENV="$BUILD/venv-python"
DIST=${DIST:-$BUILD/dist}
REQS=("pytest>=8" "numpy>=1.26" "hypothesis>=6.100" "mypy>=1.10")
t0=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - t0)); }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    echo "installing with apt-get: $*"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# --- tools ------------------------------------------------------------------
step "tools"
python_ok() { "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
PY=""
for cand in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if command -v "$cand" >/dev/null && python_ok "$cand"; then PY=$(command -v "$cand"); break; fi
done
if [ -z "$PY" ]; then
    apt_install python3 python3-venv python3-pip
    python_ok python3 || { echo "no Python 3.11 or newer with venv available" >&2; exit 1; }
    PY=$(command -v python3)
fi
command -v nm >/dev/null && command -v readelf >/dev/null || apt_install binutils
command -v cargo >/dev/null || { echo "cargo (Rust) is required to build the extension" >&2; exit 1; }
echo "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])')), cargo: $(cargo --version)"

# Knobs in the environment would change what the tests expect; the tests
# set the ones they need themselves.
for v in $(env | sed -n 's/^\(PMEM_SYS_[A-Z0-9_]*\)=.*/\1/p'); do
    echo "note: unsetting $v for the tests"
    unset "$v"
done

# --- wheel and sdist --------------------------------------------------------
step "python/dist.sh: wheel and sdist in $DIST"
BUILD="$BUILD" DIST="$DIST" bash "$ROOT/python/dist.sh"

# --- virtual environment ----------------------------------------------------
step "virtual environment $VENV"
# Made anew each run, so nothing of an earlier build (an editable install, a
# stale extension) can answer for the wheel; pip's cache makes this ~20 s.
rm -rf "$VENV"
"$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --disable-pip-version-check "${REQS[@]}"

# --- install ----------------------------------------------------------------
step "pip install the wheel"
WHEEL=$(ls "$DIST"/pypmem-*-cp311-abi3-manylinux2014_x86_64*.whl)
SDIST=$(ls "$DIST"/pypmem-*.tar.gz)
"$VPY" -m pip install -q --disable-pip-version-check --no-deps "$WHEEL"
# The package imported below must be that wheel's files, not a checkout.
(cd / && "$VPY" - "$WHEEL" <<'PYEOF'
import importlib.metadata as md, pathlib, sys, sysconfig
import pypmem, pypmem._pypmem as ext
site = pathlib.Path(sysconfig.get_paths()["platlib"]).resolve()
for mod in (pypmem, ext):
    where = pathlib.Path(mod.__file__).resolve()
    assert where.is_relative_to(site), f"{mod.__name__} imported from {where}, not from {site}"
dist = md.distribution("pypmem")
assert '"editable": true' not in (dist.read_text("direct_url.json") or ""), "an editable install"
wheel = dist.read_text("WHEEL") or ""
assert "Tag: cp311-abi3-manylinux2014_x86_64" in wheel, wheel
print("installed", pathlib.Path(sys.argv[1]).name, "->", where)
PYEOF
)

# Everything below runs from a directory without a pypmem/ folder, so the
# installed package is the one imported.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- pytest -----------------------------------------------------------------
step "pytest"
(cd "$ROOT/python/tests" && "$VPY" -m pytest -p no:cacheprovider -q -ra --durations=5 -o console_output_style=classic \
    --rootdir "$ROOT/python/tests" "$ROOT/python/tests")

# --- a newer interpreter ----------------------------------------------------
# The same abi3 build on the newest other CPython here (3.12+ also runs the
# test of a Python-level __buffer__ that closes the mapping).
NEWER=""
PYENV_VERSIONS="${PYENV_ROOT:-$HOME/.pyenv}/versions"
for cand in python3.14 python3.13 python3.12 "$PYENV_VERSIONS"/3.14*/bin/python3 "$PYENV_VERSIONS"/3.13*/bin/python3 "$PYENV_VERSIONS"/3.12*/bin/python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        NEWER=$(command -v "$cand"); break
    fi
done
if [ "${PYPMEM_SECOND_PYTHON:-1}" = 0 ]; then
    echo "SKIPPED: tests on a second interpreter (PYPMEM_SECOND_PYTHON=0)"
elif [ -z "$NEWER" ] || [ "$("$NEWER" -c 'import sys; print(sys.version_info[:2])')" = "$("$VPY" -c 'import sys; print(sys.version_info[:2])')" ]; then
    echo "SKIPPED: tests on a second interpreter (no other CPython 3.12+ found)"
else
    V2="$BUILD/venv-python-newer"
    step "pytest on $("$NEWER" -c 'import sys; print("Python %d.%d" % sys.version_info[:2])') ($V2)"
    if [ "$("$V2/bin/python" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" != "$("$NEWER" -c 'import sys; print(sys.version_info[:2])')" ]; then
        rm -rf "$V2"
        "$NEWER" -m venv "$V2"
    fi
    if [ "$(cat "$V2/.pypmem-requirements" 2>/dev/null)" != "${REQS[*]}" ]; then
        "$V2/bin/python" -m pip install -q --disable-pip-version-check "${REQS[@]}"
        echo "${REQS[*]}" > "$V2/.pypmem-requirements"
    fi
    # The same abi3 wheel, installed as is: this is what the wheel's abi3
    # tag promises.
    "$V2/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
    # The property test already ran above; everything else runs again here.
    (cd "$ROOT/python/tests" && "$V2/bin/python" -m pytest -p no:cacheprovider -q -ra \
        -o console_output_style=classic --rootdir "$ROOT/python/tests" --ignore "$ROOT/python/tests/test_model.py" "$ROOT/python/tests")
fi

# --- the command line -------------------------------------------------------
step "python -m pypmem info"
# info never creates a file: give it one (and the directory, probed with
# an unnamed temporary file).
head -c 4096 /dev/zero > "$WORK/info.pmem"
(cd "$WORK" && "$VPY" -m pypmem info "$WORK/info.pmem" "$WORK" && "$VPY" -m pypmem --version)

# --- stubs ------------------------------------------------------------------
step "mypy --strict against the installed stubs"
MYPY=("$VPY" -m mypy --strict --no-error-summary --cache-dir "$BUILD/mypy-cache-python")
(cd "$WORK" && "${MYPY[@]}" "$ROOT/python/tests/typing/usage_ok.py" && "${MYPY[@]}" -p pypmem)
echo "usage_ok.py and the pypmem package type-check"
want=$(grep -c '# E:' "$ROOT/python/tests/typing/usage_bad.py")
set +e
bad_out=$(cd "$WORK" && "${MYPY[@]}" "$ROOT/python/tests/typing/usage_bad.py" 2>&1)
set -e
lines_with_errors=$(printf '%s\n' "$bad_out" | sed -n 's/^[^:]*usage_bad.py:\([0-9]*\): error:.*/\1/p' | sort -u)
marked=$(grep -n '# E:' "$ROOT/python/tests/typing/usage_bad.py" | cut -d: -f1 | sort -u)
if [ "$lines_with_errors" != "$marked" ]; then
    echo "mypy did not report exactly the marked lines of usage_bad.py" >&2
    echo "marked: $(echo $marked)  reported: $(echo $lines_with_errors)" >&2
    printf '%s\n' "$bad_out" >&2
    exit 1
fi
echo "usage_bad.py: mypy reports all $want marked mistakes and nothing else"

# --- sdist ------------------------------------------------------------------
if [ "${PYPMEM_SKIP_SDIST:-0}" = 1 ]; then
    echo "SKIPPED: sdist build and install (PYPMEM_SKIP_SDIST=1)"
else
    step "pip install from the sdist"
    listing=$(tar -tzf "$SDIST")
    for want in pmem-sys/src/api.rs python/src/mapping.rs pypmem/_pypmem.pyi pypmem/py.typed; do
        grep -q "/$want\$" <<<"$listing" || { echo "the sdist lacks $want" >&2; exit 1; }
    done
    # With the documented minimum Rust (rust-version in Cargo.toml) when
    # rustup has that toolchain, else with the default one, said so.
    msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
    tc=$( (rustup toolchain list 2>/dev/null || true) |
        awk -v v="$msrv" 'index($1, v "-") == 1 || index($1, v ".") == 1 { print $1; exit }')
    if [ -n "$tc" ]; then
        export RUSTUP_TOOLCHAIN=$tc
        echo "building the sdist with Rust $msrv, the documented minimum ($tc)"
    else
        echo "SKIPPED: the sdist build with Rust $msrv, the documented minimum (rustup toolchain install $msrv); built with $(rustc --version)"
    fi
    # A target dir of its own: building the sdist's copies of the crates in
    # the workspace's target/ would make the next workspace build start over.
    CARGO_TARGET_DIR="$BUILD/target-python-sdist" "$VPY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$SDIST"
    unset RUSTUP_TOOLCHAIN
    (cd "$WORK" && "$VPY" - <<'EOF'
import pypmem, tempfile, os
with tempfile.TemporaryDirectory() as d:
    with pypmem.map_file(os.path.join(d, "s.pmem"), 4096, create=True) as m:
        m.write(0, b"from the sdist")
        m.persist()
        assert m.read(0, 14) == b"from the sdist"
print("sdist install works:", pypmem.__version__, pypmem.implementation())
EOF
    )
fi

step "python tests passed"
