#!/usr/bin/env bash
# pmem-sys against PMDK's libpmem, side by side.
#
#   bash tests/bench/run.sh full    # make bench: every row, records BENCHMARKS.md
#   bash tests/bench/run.sh smoke   # make bench-smoke: every row briefly, no timing asserted
#
# Expects the library staged in build/stage (make stage). Installs Debian's
# libpmem-dev when it is missing and this runs as root with apt-get; without
# it, prints how to install it and measures this library's rows alone.
# Environment: PMEM_BENCH_DIR (default /dev/shm) holds the 1 GiB file;
# PMEM_BENCH_REPS overrides the repetitions per row (full 21, smoke 3);
# PMEM_BENCH_NO_PMDK=1 measures without PMDK.
set -euo pipefail

mode=${1:-}
case "$mode" in
full | smoke) ;;
*)
    echo "usage: $0 full|smoke" >&2
    exit 2
    ;;
esac

if [ "$(uname -m)" != x86_64 ]; then
    # The harness times with x86 fences and has x86 reference loops.
    echo "SKIPPED: make bench-$mode (the harness is x86_64 only; this is $(uname -m))"
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$root/build/bench
mkdir -p "$out"
export PKG_CONFIG_PATH="$root/build/stage/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

if ! pkg-config --exists pmem-sys; then
    echo "bench: pkg-config cannot find pmem-sys; run 'make stage' first (make bench does)" >&2
    exit 2
fi

# ---- PMDK -----------------------------------------------------------------
pmdk_flags=()
pmdk_version=""
# PMEM_BENCH_NO_PMDK=1 builds without PMDK even when it is installed (to
# test that path).
have_pmdk() { [ -z "${PMEM_BENCH_NO_PMDK:-}" ] && pkg-config --exists libpmem; }
if [ -z "${PMEM_BENCH_NO_PMDK:-}" ] && ! pkg-config --exists libpmem && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench: installing libpmem-dev (PMDK) with apt-get" >&2
    # Other jobs may hold the dpkg lock; wait for it rather than fail.
    apt_q=(-o DPkg::Lock::Timeout=300 -qq)
    if ! DEBIAN_FRONTEND=noninteractive apt-get "${apt_q[@]}" install -y --no-install-recommends libpmem-dev >/dev/null; then
        apt-get "${apt_q[@]}" update >/dev/null || true
        DEBIAN_FRONTEND=noninteractive apt-get "${apt_q[@]}" install -y --no-install-recommends libpmem-dev >/dev/null || true
    fi
fi
if have_pmdk; then
    pmdk_version=$(dpkg-query -W -f='${Version}' libpmem1 2>/dev/null || pkg-config --modversion libpmem)
    pmdk_flags=(-DHAVE_PMDK "-DPMDK_VERSION=\"$pmdk_version\"" $(pkg-config --cflags libpmem))
    pmdk_libs=$(pkg-config --libs libpmem)
elif [ -n "${PMEM_BENCH_NO_PMDK:-}" ]; then
    pmdk_libs=""
    echo "bench: PMEM_BENCH_NO_PMDK is set: measuring pmem-sys alone" >&2
else
    pmdk_libs=""
    cat >&2 <<'EOF'
bench: PMDK's libpmem is not installed, so only pmem-sys's rows are measured.
       To compare, install it and rerun:  sudo apt-get install libpmem-dev
       (Debian/Ubuntu; elsewhere build PMDK from https://github.com/pmem/pmdk)
EOF
fi

# ---- build -----------------------------------------------------------------
libdir=$(pkg-config --variable=libdir pmem-sys)
# shellcheck disable=SC2046
gcc -O2 -g -std=gnu11 -Wall -Wextra -Werror $(pkg-config --cflags pmem-sys) "${pmdk_flags[@]}" \
    "$here/bench.c" -o "$out/bench" \
    $(pkg-config --libs pmem-sys) -Wl,-rpath,"$libdir" $pmdk_libs -lpthread

# ---- environment: defaults for both libraries, except what the method forces
for v in $(env | sed -n 's/^\(PMEM_SYS_[A-Z0-9_]*\)=.*/\1/p; s/^\(PMEM_NO_[A-Z0-9_]*\)=.*/\1/p'); do
    echo "bench: ignoring $v from the environment (the benchmark measures defaults)" >&2
    unset "$v"
done
unset PMEM_MOVNT_THRESHOLD PMEM_NO_GENERIC_MEMCPY PMEM_NO_FLUSH PMEM_AVX PMEM_AVX512F 2>/dev/null || true
export PMEM_SYS_FORCE_GRANULARITY=cache_line   # a tmpfs file: force what real pmem would give
export PMEM_IS_PMEM_FORCE=1                     # the same for PMDK

# The harness maps a 1 GiB file (plus 64 MiB for the Python rows). A small
# /dev/shm (containers often get 64 MiB) falls back to $TMPDIR or /tmp: the
# page cache of a disk file behaves the same for these rows.
need_kib=$(((1024 + 64 + 16) * 1024))
avail_kib() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
bench_dir=${PMEM_BENCH_DIR:-/dev/shm}
if [ "$(avail_kib "$bench_dir" || echo 0)" -lt "$need_kib" ] 2>/dev/null; then
    if [ -n "${PMEM_BENCH_DIR:-}" ]; then
        echo "bench: $bench_dir has less than $((need_kib / 1024)) MiB free" >&2
        exit 2
    fi
    bench_dir=${TMPDIR:-/tmp}
    echo "bench: /dev/shm has less than $((need_kib / 1024)) MiB free; using $bench_dir" >&2
fi
export PMEM_BENCH_DIR=$bench_dir

md=$out/$mode.md
raw=$out/$mode.raw
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
status=0
"$out/bench" "$mode" >"$md" 2>"$raw" || status=$?
grep -v '^@ ' "$raw" >&2 || true
if [ "$status" != 0 ]; then
    cat "$md"
    echo "bench: the harness failed (exit $status)" >&2
    exit "$status"
fi

# ---- Python rows ------------------------------------------------------------
venv_py=$root/build/venv-python/bin/python
if [ -x "$venv_py" ] && "$venv_py" -c 'import pypmem' 2>/dev/null; then
    "$venv_py" "$here/bench_py.py" "$mode" >>"$md" 2>>"$raw" || {
        echo "bench: the Python rows failed" >&2
        exit 1
    }
else
    why="pypmem is not installed in build/venv-python; 'bash python/run-tests.sh' installs it"
    [ -x "$venv_py" ] || why="no venv at build/venv-python; 'bash python/run-tests.sh' creates it"
    printf '\n### Python\n\nSKIPPED: Python rows (%s)\n' "$why" >>"$md"
    echo "SKIPPED: Python rows ($why)" >&2
fi
# ---- libpmem.so.1 (pmdk-compat) against PMDK through the same ABI ----------
# bench_abi loads both into namespaces of their own (dlmopen), so no -l here.
compat_so=$libdir/pmem-sys/libpmem.so.1
pmdk_so=$(ldconfig -p 2>/dev/null | awk '$1 == "libpmem.so.1" && $NF !~ /pmem-sys/ { print $NF; exit }')
if [ ! -e "$compat_so" ]; then
    printf '\n### libpmem.so.1 through the ABI\n\nSKIPPED: ABI rows (%s missing; make stage builds it)\n' "$compat_so" >>"$md"
    echo "SKIPPED: ABI rows ($compat_so missing)" >&2
elif [ -z "$pmdk_so" ] || [ -n "${PMEM_BENCH_NO_PMDK:-}" ]; then
    printf '\n### libpmem.so.1 through the ABI\n\nSKIPPED: ABI rows (no PMDK libpmem.so.1 to compare with; apt-get install libpmem1)\n' >>"$md"
    echo "SKIPPED: ABI rows (PMDK's libpmem.so.1 not installed)" >&2
else
    gcc -O2 -g -std=gnu11 -Wall -Wextra -Werror "$here/bench_abi.c" -o "$out/bench_abi" -ldl
    printf '\n### libpmem.so.1 (pmdk-compat) against PMDK %s, the same calls through the same ABI\n' "$pmdk_version" >>"$md"
    printf '\nReplacement `%s`, PMDK `%s`, each loaded with `dlmopen(LM_ID_NEWLM)`.\n' "$compat_so" "$pmdk_so" >>"$md"
    "$out/bench_abi" "$mode" "$compat_so" "$pmdk_so" >>"$md" 2>>"$raw" || {
        grep -v '^@ ' "$raw" >&2 || true
        echo "bench: the ABI rows failed" >&2
        exit 1
    }
fi

# ---- fio through libpmem.so.1 against PMDK (full only; ~3.5 min) -----------
# tests/libpmem/run.sh bench-fio: the same fio jobs alternating the two
# libraries, each run's loaded libpmem.so.1 checked (make bench-libpmem-fio).
if [ "$mode" = full ] && [ -f "$compat_so" ] && [ -n "$pmdk_so" ] && command -v fio >/dev/null; then
    printf '
### fio (libpmem engine) on libpmem.so.1 against PMDK, alternating

```
' >>"$md"
    if BUILD="$out" bash "$root/tests/libpmem/run.sh" "$(dirname "$compat_so")" bench-fio >"$out/fio.txt" 2>&1; then
        grep -E '^   [a-z]+ bs=' "$out/fio.txt" | sed 's/^   //' >>"$md"
    else
        echo "FAILED: $(tail -n 1 "$out/fio.txt")" >>"$md"
    fi
    printf '```
' >>"$md"
elif [ "$mode" = full ]; then
    printf '
SKIPPED: fio rows (needs fio, %s and PMDK'"'"'s libpmem.so.1)
' "$compat_so" >>"$md"
fi
elapsed=$(($(date +%s) - t0))

# ---- targets and the record -------------------------------------------------
tstatus=0
if command -v python3 >/dev/null; then
    python3 "$here/targets.py" "$mode" "$raw" >>"$md" || tstatus=$?
else
    printf '\nSKIPPED: target check (no python3)\n' >>"$md"
fi
cat "$md"
echo
echo "bench: $mode run took ${elapsed}s; table in $md"
if [ "$tstatus" != 0 ]; then
    echo "bench: some rows produced no valid number (see above)" >&2
    exit 1
fi

if [ "$mode" = full ]; then
    python3 "$here/record.py" "$root/BENCHMARKS.md" "$md" "$started" "make bench (bash tests/bench/run.sh full)" "$elapsed"
    echo "bench: recorded in BENCHMARKS.md"
fi
