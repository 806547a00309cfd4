#!/usr/bin/env bash
# Builds what would be uploaded to PyPI, and checks it (make wheel):
#
#   build/dist/pypmem-VERSION-cp311-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#   build/dist/pypmem-VERSION.tar.gz
#
# The wheel is linked by zig (PyPI's `ziglang`) against glibc 2.17's symbol
# versions, so it serves every x86_64 Linux with glibc 2.17 or newer (RHEL 7+,
# Debian 8+, Ubuntu 14.04+) and CPython 3.11 or newer (abi3). Checks, each of
# which fails the script:
#   - `auditwheel show` reports manylinux_2_17 (manylinux2014) and no
#     external library beyond libc, libpthread, libdl;
#   - the extension has no symbol table and no debug sections (stripped);
#   - the wheel and the sdist carry LICENSE-MIT and LICENSE-APACHE, equal to
#     the top-level files;
#   - `twine check --strict` accepts both.
#
# The tools live in build/venv-dist (created once, reused while REQS is
# unchanged). Environment: BUILD=dir (default build), DIST=dir (default
# $BUILD/dist), PYTHON=interpreter.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DIST=${DIST:-$BUILD/dist}
VENV=$BUILD/venv-dist
REQS=("maturin>=1.8,<2" "ziglang>=0.13,<0.18" "auditwheel>=6,<7" "twine>=6.1,<8")
t0=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - t0)); }
fail() { echo "dist: $*" >&2; exit 1; }

step "tools ($VENV)"
PY=${PYTHON:-python3}
if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "${REQS[*]}" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQS[@]}"
    echo "${REQS[*]}" > "$VENV/.requirements"
else
    echo "reused (requirements unchanged)"
fi
export PATH="$VENV/bin:$PATH"   # maturin finds zig as `python -m ziglang` here

step "maturin build (zig, manylinux2014, stripped)"
rm -rf "$DIST"
mkdir -p "$DIST"
# `--profile release-python` (Cargo.toml): fat LTO, one codegen unit.
# `strip = true` is in pyproject.toml; --compatibility makes maturin refuse
# to tag a wheel whose symbols need a newer glibc.
maturin build --profile release-python --zig --compatibility manylinux2014 --strip \
    -m "$ROOT/python/Cargo.toml" --out "$DIST"
step "maturin sdist"
maturin sdist -m "$ROOT/python/Cargo.toml" --out "$DIST"

shopt -s nullglob
wheels=("$DIST"/pypmem-*-cp311-abi3-*.whl)
sdists=("$DIST"/pypmem-*.tar.gz)
[ ${#wheels[@]} = 1 ] || fail "expected one abi3 wheel in $DIST, found: ${wheels[*]:-none}"
[ ${#sdists[@]} = 1 ] || fail "expected one sdist in $DIST, found: ${sdists[*]:-none}"
WHEEL=${wheels[0]}
SDIST=${sdists[0]}
case "$WHEEL" in
*manylinux2014_x86_64*) ;;
*) fail "$(basename "$WHEEL") is not tagged manylinux2014_x86_64" ;;
esac

step "auditwheel show"
report=$(auditwheel show "$WHEEL")
echo "$report"
tr -s ' \n' ' ' <<<"$report" | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' ||
    fail "auditwheel does not find the wheel consistent with manylinux_2_17_x86_64"

step "contents"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -m zipfile -e "$WHEEL" "$WORK/wheel"
so=$(echo "$WORK"/wheel/pypmem/_pypmem*.so)
[ -f "$so" ] || fail "no extension in the wheel"
if readelf -S "$so" | grep -qE '\.symtab|\.debug_'; then
    fail "the extension in the wheel is not stripped: $(readelf -S "$so" | grep -oE '\.symtab|\.debug_[a-z]+' | tr '\n' ' ')"
fi
for f in LICENSE-MIT LICENSE-APACHE; do
    cmp -s "$ROOT/$f" "$WORK"/wheel/pypmem-*.dist-info/licenses/"$f" || fail "the wheel lacks .dist-info/licenses/$f (or it differs)"
    tar -xzf "$SDIST" -C "$WORK" --wildcards "pypmem-*/$f"
    cmp -s "$ROOT/$f" "$WORK"/pypmem-*/"$f" || fail "the sdist lacks $f (or it differs)"
done
echo "extension stripped; LICENSE-MIT and LICENSE-APACHE in the wheel and the sdist"

step "twine check --strict"
twine check --strict "$WHEEL" "$SDIST"

printf '\n%-80s %8s\n' "file" "bytes"
for f in "$WHEEL" "$SDIST" "$so"; do
    printf '%-80s %8d\n' "$(basename "$f")" "$(stat -c %s "$f")"
done
echo "dist: ok ($((SECONDS - t0))s)"
