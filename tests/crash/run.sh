#!/usr/bin/env bash
# The crash-consistency proof: programs whose correctness is known, run
# under pmem-sys-crashtest. Every correct program must pass every image;
# every planted bug must fail, with the guilty call's line named in the
# report. A missed bug is a failure of this script.
#
#   bash tests/crash/run.sh STAGE CRASHTEST
#
# STAGE is an installed copy of the library (make stage), CRASHTEST the
# pmem-sys-crashtest binary. About 10-20 s.
set -uo pipefail

stage=$(cd "$1" && pwd)
# Absolute: some cases run the tool from their own working directory.
ct=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PKG_CONFIG_PATH="$stage/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# Images and traces go here, so the test can see they are cleaned up.
mkdir "$work/tmp"
export TMPDIR="$work/tmp"

CC=${CC:-gcc}
for p in log cow two; do
    # -O0 -g: the report's file:line names the very line of the call.
    $CC -std=c11 -g -O0 -Wall -Wextra -Werror $(pkg-config --cflags pmem-sys) \
        "$here/$p.c" -o "$work/$p" $(pkg-config --libs pmem-sys) -Wl,-rpath,"$stage/lib" || exit 1
done

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# guilty PROGRAM VARIANT: the line numbers marked GUILTY(VARIANT).
guilty() {
    local lines
    lines=$(grep -n "GUILTY($2)" "$here/$1.c" | cut -d: -f1)
    if [ "$1/$2" = log/no-flush ]; then
        # Two markers, one per #ifdef branch: keep the one compiled.
        if grep -q PMEM_SYS_F_NOFLUSH "$stage/include/pmem.h"; then
            lines=$(echo "$lines" | head -1)
        else
            lines=$(echo "$lines" | tail -1)
        fi
    fi
    echo "$lines"
}

# expect GRANULARITY PROGRAM VARIANT N STATUS
expect() {
    local gran=$1 prog=$2 variant=$3 n=$4 want=$5
    local out="$work/out.$prog.$variant.$gran"
    local env=()
    [ "$gran" != native ] && env=(PMEM_SYS_FORCE_GRANULARITY="$gran")
    env "${env[@]}" "$ct" --check "$work/$prog --check {}" --seed 1 -- \
        "$work/$prog" "$work/$prog.pmem" "$variant" "$n" >"$out" 2>&1
    local rc=$?
    local name="$prog $variant ($gran granularity, $n steps)"
    if [ "$rc" != "$want" ]; then
        bad "$name: exit $rc, want $want"
        sed 's/^/    /' "$out"
        return
    fi
    if [ "$want" = 1 ]; then
        local line
        line=$(guilty "$prog" "$variant")
        if [ -z "$line" ]; then
            bad "$name: no GUILTY($variant) marker in $prog.c"
        elif grep -q "$prog\.c:$line)" "$out"; then
            ok "$name: caught, report names $prog.c:$line"
        else
            bad "$name: caught, but the report does not name $prog.c:$line"
            sed 's/^/    /' "$out"
            return
        fi
        # The printed command reproduces exactly that image.
        local repro
        repro=$(sed -n 's/^  reproduce: //p' "$out")
        repro=${repro//--save DIR/--save $work/saved.$prog.$variant}
        if [ -z "$repro" ]; then
            bad "$name: no reproduce line"
            return
        fi
        env "${env[@]}" PATH="$(dirname "$ct"):$PATH" bash -c "$repro" >"$out.repro" 2>&1
        rc=$?
        local img="$work/saved.$prog.$variant/$prog.pmem"
        if [ "$rc" = 1 ] && [ -f "$img" ] && ! "$work/$prog" --check "$img" 2>/dev/null; then
            ok "$name: the reproduce command fails the same image again"
        else
            bad "$name: reproduce exit $rc (want 1), saved image failing: $( [ -f "$img" ] && echo yes || echo missing)"
            sed 's/^/    /' "$out.repro"
        fi
    else
        ok "$name: every image passed ($(grep -o '[0-9]* images checked' "$out"))"
    fi
}

for g in cache_line byte; do
    expect $g log correct 4 0
    expect $g log direct-correct 4 0
    expect $g log tail-first 3 1
    expect $g log no-fence 3 1
    expect $g cow correct 4 0
    expect $g cow flag-early 3 1
    expect $g cow in-place 3 1
done
expect cache_line log no-flush 3 1
expect cache_line log direct-store 3 1
# Two files: {} is a directory holding one image per file, named as the
# originals.
for variant in correct no-fence; do
    rm -rf "$work/two.d" && mkdir "$work/two.d"
    want=0 && [ $variant = no-fence ] && want=1
    PMEM_SYS_FORCE_GRANULARITY=cache_line "$ct" --check "ls {} >$work/two.ls; $work/two --check {}" \
        --seed 1 -- "$work/two" "$work/two.d" $variant >"$work/out.two" 2>&1
    rc=$?
    line=$(grep -n "GUILTY(no-fence)" "$here/two.c" | cut -d: -f1)
    if [ "$rc" != "$want" ]; then
        bad "two files, $variant: exit $rc, want $want"
        sed 's/^/    /' "$work/out.two"
    elif [ "$(tr '\n' ' ' <"$work/two.ls")" != "data.pmem index.pmem " ]; then
        bad "two files, $variant: the image directory holds: $(cat "$work/two.ls")"
    elif [ $want = 1 ] && ! grep -q "two\.c:$line)" "$work/out.two"; then
        bad "two files, $variant: caught, but the report does not name two.c:$line"
        sed 's/^/    /' "$work/out.two"
    else
        ok "two files, $variant: exit $want, images data.pmem and index.pmem in one directory"
    fi
done

# What the file system gives (page granularity on tmpfs or a disk file):
# the correct programs pass there too.
expect native log correct 4 0
expect native cow correct 4 0

# Usage errors and a failing workload: exit 2.
"$ct" --check "true" -- "$work/log" "$work/x.pmem" correct 1 >/dev/null 2>&1
[ $? = 2 ] && ok "--check without {}: exit 2" || bad "--check without {} did not exit 2"
"$ct" --check "true {}" -- "$work/log" "$work/x.pmem" nonsense 1 >/dev/null 2>&1
[ $? = 2 ] && ok "a failing workload: exit 2" || bad "a failing workload did not exit 2"
"$ct" --check "true {}" -- true >/dev/null 2>&1
[ $? = 2 ] && ok "a workload that maps nothing: exit 2" || bad "a workload that maps nothing did not exit 2"
"$ct" --check "true {}" >/dev/null 2>&1
[ $? = 2 ] && ok "no workload: exit 2" || bad "no workload did not exit 2"

# libpmemobj through pmem-sys's libpmem.so.1: a transactional program
# passes every sampled image (pmempool check plus its invariant); one that
# updates outside a transaction, credit before debit, fails. The pool (8
# MiB) is created before recording; images go to /dev/shm when there is
# one (each check opens and msyncs the pool). About 25 s.
if bash "$here/../deps.sh" --need test-crash libpmemobj-dev:/usr/include/libpmemobj.h \
        pmdk-tools:pmempool; then
    if [ ! -e "$stage/lib/pmem-sys/libpmem.so.1" ]; then
        bad "libpmemobj: $stage/lib/pmem-sys/libpmem.so.1 missing (make stage builds it)"
    elif $CC -std=gnu11 -g -O0 -Wall -Wextra -Werror "$here/obj.c" -o "$work/obj" -lpmemobj; then
        objtmp=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d -p "$work/tmp")
        obj_case() { # VARIANT WANT
            rm -f "$work/pool"
            (cd "$work" && ./obj create pool) || { bad "libpmemobj: creating the pool"; return; }
            local out="$work/out.obj.$1"
            (cd "$work" && LD_LIBRARY_PATH="$stage/lib/pmem-sys" PMEM_IS_PMEM_FORCE=1 \
                PMEM_SYS_FORCE_GRANULARITY=cache_line TMPDIR="$objtmp" \
                "$ct" --check 'pmempool check -q {} && ./obj --check {}' --max-images 4 --seed 1 \
                -- ./obj "$1" pool 1) >"$out" 2>&1
            local rc=$?
            local line
            line=$(grep -n "GUILTY($1)" "$here/obj.c" | cut -d: -f1)
            if [ "$rc" != "$2" ]; then
                bad "libpmemobj $1: exit $rc, want $2"
                sed 's/^/    /' "$out" | cut -c1-300
            elif [ "$2" = 1 ] && ! grep -q "obj\.c:$line)" "$out"; then
                bad "libpmemobj $1: caught, but the report does not name obj.c:$line"
                sed 's/^/    /' "$out" | cut -c1-300
            else
                ok "libpmemobj $1: exit $2 ($(grep -o '[0-9]* images checked' "$out"))${line:+, report names obj.c:$line}"
            fi
        }
        obj_case tx 0
        obj_case unsafe 1
        [ -z "$(ls -A "$objtmp")" ] || bad "left in $objtmp: $(ls -A "$objtmp")"
        rmdir "$objtmp"
    else
        bad "libpmemobj: compiling obj.c"
    fi
fi

# Python: pypmem.crashtest.check on the Python twins (test_crash.py). The
# package comes from make test-python's environment when it has
# pypmem.crashtest, else it is built into a fresh one (about a minute).
build=$(dirname "$stage")
py=""
for cand in "${CRASH_PYTHON:-}" "$build/venv-python/bin/python"; do
    if [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import pypmem.crashtest, pytest' 2>/dev/null; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "building pypmem into a fresh virtual environment"
    if python3 -m venv "$work/venv" >/dev/null &&
        "$work/venv/bin/pip" install -q pytest "$here/../../python" >"$work/pip.log" 2>&1; then
        py="$work/venv/bin/python"
    else
        bad "installing pypmem for the Python crash tests"
        sed 's/^/    /' "$work/pip.log"
    fi
fi
if [ -n "$py" ]; then
    if PYTHONDONTWRITEBYTECODE=1 "$py" -m pytest -q -p no:cacheprovider "$here/test_crash.py" >"$work/pytest.log" 2>&1; then
        ok "Python: $(tail -1 "$work/pytest.log")"
    else
        bad "Python: pytest tests/crash/test_crash.py"
        sed 's/^/    /' "$work/pytest.log"
    fi
fi

# Every temporary image and trace was removed.
if [ -z "$(ls -A "$work/tmp")" ]; then
    ok "temporary directories cleaned up"
else
    bad "left in TMPDIR: $(ls -A "$work/tmp")"
fi

echo "tests/crash: $pass passed, $fail failed"
[ "$fail" = 0 ]
