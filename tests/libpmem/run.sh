#!/usr/bin/env bash
# tests/libpmem/run.sh - `make test-libpmem`: real PMDK programs on the
# replacement libpmem.so.1 (issue 12 item 4), and the fio comparison.
#
#   run.sh LIBDIR [SUITE...]   SUITE: fio diff pools (default: all three),
#                              qemu (make test-libpmem-qemu), bench-fio
#                              (make bench-libpmem-fio)
#   LIBDIR      the directory holding the replacement libpmem.so.1
#   --reference instead of LIBDIR: run the suites with Debian's libpmem in
#               both roles (a check of the harness; the loader checks then
#               expect Debian's file)
#
# Every program run on the replacement goes through `on repl`: LD_LIBRARY_PATH
# names LIBDIR and LD_DEBUG=libs writes the loader's log to a file per
# process; the run passes only when every process of it called the init of
# LIBDIR/libpmem.so.1 and of no other libpmem.so.1, and its stderr holds no
# loader complaint ("no version information available", a missing version
# node or symbol).  `on real` runs the same on Debian's library and checks
# that Debian's file was the one loaded.  The QEMU suite reads the same
# proof from /proc/PID/maps of the running VM.
#
# Settings: LIBPMEM_KEEP=1 keeps the work directory; BUILD (default build/)
# holds the compiled test programs.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(mkdir -p "${BUILD:-$root/build}/libpmem" && cd "${BUILD:-$root/build}/libpmem" && pwd)

if [ "${1:-}" = --reference ]; then
    mode=reference
else
    mode=replacement
    [ -n "${1:-}" ] || { echo "usage: run.sh LIBDIR|--reference [fio|diff|pools|qemu|bench-fio...]" >&2; exit 2; }
    repl_dir=$(cd "$1" 2>/dev/null && pwd) || { echo "test-libpmem: no directory $1" >&2; exit 2; }
    [ -f "$repl_dir/libpmem.so.1" ] || { echo "test-libpmem: no $repl_dir/libpmem.so.1 (make libpmem)" >&2; exit 2; }
fi
shift
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(fio diff pools)

failures=0
passes=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
pass() { echo "PASS $*"; passes=$((passes + 1)); }
skip() { echo "SKIPPED: $*"; }

work=$(mktemp -d /dev/shm/test-libpmem.XXXXXX) || { echo "cannot create a work directory in /dev/shm" >&2; exit 2; }
chmod 755 "$work"
cleanup() { if [ "${LIBPMEM_KEEP:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
mkdir -p "$work/ld"

# Debian's libpmem.so.1, as the loader finds it without LD_LIBRARY_PATH.
system_libpmem() {
    local ldc
    ldc=$(command -v ldconfig || echo /sbin/ldconfig) # not in a user's PATH on Debian
    "$ldc" -p 2>/dev/null | awk '$1 == "libpmem.so.1" && /x86-64/ {print $NF; exit}'
}

# --------------------------------------------------------------- packages
# need SUITE PACKAGE:COMMAND-OR-FILE...: true when all are present; as root
# it installs what is missing; otherwise prints SKIPPED naming the package.
need() {
    local suite=$1; shift
    local missing=() item pkg what
    for item in "$@"; do
        pkg=${item%%:*} what=${item#*:}
        if [[ $what == /* ]]; then [ -e "$what" ] && continue; else command -v "$what" >/dev/null && continue; fi
        missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "   installing ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get install -y -q --no-install-recommends "${missing[@]}" ||
            { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }; } \
            >"$work/apt.log" 2>&1 || { tail -n 5 "$work/apt.log"; fail "$suite: apt-get install ${missing[*]}"; return 1; }
        return 0
    fi
    skip "$suite: install ${missing[*]} (or run as root, which installs them)"
    return 1
}

# ------------------------------------------------------- the loader proof
# on repl|real LABEL CMD...: runs CMD with that libpmem.so.1; stdout and
# stderr in $work/LABEL.out and .err; returns CMD's status.  The loader's
# log goes to $work/ld/LABEL.PID.
on() {
    local which=$1 label=$2; shift 2
    local -a envs=(LD_DEBUG=libs LD_DEBUG_OUTPUT="$work/ld/$label")
    if [ "$which" = repl ] && [ $mode = replacement ]; then
        envs+=(LD_LIBRARY_PATH="$repl_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    fi
    env "${envs[@]}" "$@" >"$work/$label.out" 2>"$work/$label.err"
}

# expected_lib repl|real: the file that must have been loaded.
expected_lib() {
    if [ "$1" = repl ] && [ $mode = replacement ]; then echo "$repl_dir/libpmem.so.1"; else system_libpmem; fi
}

# loader_warnings LABEL: the loader's complaints in LABEL's stderr and log.
loader_warnings() {
    grep -hE 'no version information available|version .LIBPMEM_[0-9.]*. not found|symbol lookup error|undefined symbol|cannot open shared object|wrong ELF class' \
        "$work/$1.err" "$work/ld/$1".* 2>/dev/null | head -n 3
}

# loaded LABEL repl|real: PASS when every process of LABEL loaded the
# expected libpmem.so.1 and nothing else of that name, and no loader
# warning is in LABEL.err.
loaded() {
    local label=$1 which=$2 want got bad
    want=$(expected_lib "$which")
    got=$(cat "$work/ld/$label".* 2>/dev/null | grep -o 'calling init: .*/libpmem\.so\.1$' | sed 's/^calling init: //' | sort | uniq -c)
    bad=$(loader_warnings "$label")
    if [ -z "$got" ]; then
        fail "$label: no process of it loaded a libpmem.so.1 (LD_DEBUG=libs)"
        return 1
    fi
    if [ -n "$bad" ]; then
        fail "$label: loader warning: $bad"
        return 1
    fi
    if [ "$(echo "$got" | awk '{print $2}' | sort -u)" != "$want" ]; then
        fail "$label: loaded $(echo "$got" | awk '{print $2}' | sort -u | tr '\n' ' ')instead of $want"
        return 1
    fi
    echo "     $label: $(echo "$got" | awk '{s += $1} END {print s}') process(es) loaded $want, no loader warning"
    return 0
}

# The proof can fail: an unversioned libpmem.so.1 (one function) in front
# of Debian's must be reported as the wrong file and with the loader's
# warning.
selftest_loader() {
    command -v gcc >/dev/null && [ -e /usr/include/libpmem.h ] || return 0
    mkdir -p "$work/stub"
    printf 'const char *pmem_check_version(unsigned a, unsigned b) { (void)a; (void)b; return 0; }\n' >"$work/stub/stub.c"
    printf '#include <libpmem.h>\nint main(void) { return pmem_check_version(1, 0) != 0; }\n' >"$work/stub/main.c"
    gcc -shared -fPIC -o "$work/stub/libpmem.so.1" -Wl,-soname,libpmem.so.1 "$work/stub/stub.c" &&
        gcc -o "$work/stub/main" "$work/stub/main.c" -Wl,-z,now -lpmem || { fail "loader self-test: build"; return 0; }
    env LD_DEBUG=libs LD_DEBUG_OUTPUT="$work/ld/selftest" LD_LIBRARY_PATH="$work/stub" "$work/stub/main" \
        >"$work/selftest.out" 2>"$work/selftest.err"
    local w
    w=$(loader_warnings selftest)
    if [[ $w == *"no version information available"* ]] &&
        ! (loaded selftest real >/dev/null); then
        pass "loader check: an unversioned libpmem.so.1 is caught (wrong file, \"no version information available\")"
    else
        fail "loader check: an unversioned libpmem.so.1 in LD_LIBRARY_PATH was not caught (warnings: ${w:-none})"
    fi
}

# ------------------------------------------------------------------ fio
fio_job() { # FILE SIZE: the 16 verified jobs, one after another
    local file=$1 size=$2 d s rw
    printf '[global]\nioengine=libpmem\nfilename=%s\nsize=%s\nbs=4k\niodepth=1\nverify=crc32c\ndo_verify=1\nverify_fatal=1\n' "$file" "$size"
    for d in 0 1; do
        for s in 0 1; do
            # A read job verifies what the write job before it wrote.
            for rw in write read randwrite randread; do
                printf '\n[%s-direct%s-sync%s]\nrw=%s\ndirect=%s\nsync=%s\nstonewall\n' "$rw" "$d" "$s" "$rw" "$d" "$s"
            done
        done
    done
}

# fio_check JSON SIZE: every job without error, every byte written or read.
fio_check() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
size = int(sys.argv[2])
bad = []
jobs = d["jobs"]
for j in jobs:
    name, rw = j["jobname"], j["job options"]["rw"]
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    if j["error"] != 0:
        bad.append("%s: error %d" % (name, j["error"]))
    if "write" in rw and not (w == size and r == size):
        bad.append("%s: wrote %d, read back %d of %d" % (name, w, r, size))
    if "write" not in rw and not (w == 0 and r == size):
        bad.append("%s: read %d of %d" % (name, r, size))
if len(jobs) != 16:
    bad.append("%d jobs, want 16" % len(jobs))
print("; ".join(bad) if bad else "ok %d jobs" % len(jobs))
sys.exit(1 if bad else 0)
EOF
}

suite_fio() {
    echo "== fio (ioengine=libpmem, rw=write|read|randwrite|randread x direct=0|1 x sync=0|1, verify=crc32c)"
    need fio fio:fio python3:python3 || return 0
    local size=4m file=$work/fio.pmem
    fio_job "$file" "$size" >"$work/fio.job"
    rm -f "$file"
    if on repl fio env PMEM_IS_PMEM_FORCE=1 fio --output-format=json "$work/fio.job"; then
        local res
        if res=$(fio_check "$work/fio.out" $((4 << 20))); then
            loaded fio repl && pass "fio: 16 jobs verified on the replacement ($res)"
        else
            fail "fio: $res"
        fi
    else
        fail "fio exited non-zero: $(grep -m1 -iE 'verify|err=|error' "$work/fio.out" "$work/fio.err" | head -n1)"
    fi
    # Checks of the checks: a corrupted block must fail verification, and
    # without PMEM_IS_PMEM_FORCE fio must refuse tmpfs (is_pmem == 0).
    rm -f "$file"
    printf '[global]\nioengine=libpmem\nfilename=%s\nsize=1m\nbs=4k\nverify=crc32c\ndo_verify=1\n[w]\nrw=write\nstonewall\n[r]\nrw=read\nstonewall\nexec_prerun=sh -c "printf XXXXXXXX | dd of=%s bs=1 seek=20000 conv=notrunc 2>/dev/null"\n' \
        "$file" "$file" >"$work/fio-corrupt.job"
    if on repl fio-corrupt env PMEM_IS_PMEM_FORCE=1 fio "$work/fio-corrupt.job"; then
        fail "fio: a block corrupted between the write and the read job passed verification"
    elif grep -q 'verify failed' "$work/fio-corrupt.out" "$work/fio-corrupt.err"; then
        loaded fio-corrupt repl && pass "fio: a corrupted block fails verification (the check can fail)"
    else
        fail "fio: the corrupted run failed for another reason: $(grep -m1 -i 'err' "$work/fio-corrupt.out")"
    fi
    rm -f "$file"
    if on repl fio-noforce env -u PMEM_IS_PMEM_FORCE fio --section=w "$work/fio-corrupt.job"; then
        fail "fio: ran on tmpfs without PMEM_IS_PMEM_FORCE (is_pmem must be 0 there)"
    elif grep -q 'does not point to persistent memory' "$work/fio-noforce.out" "$work/fio-noforce.err"; then
        loaded fio-noforce repl && pass "fio: refuses tmpfs without PMEM_IS_PMEM_FORCE=1 (is_pmem 0)"
    else
        fail "fio: without PMEM_IS_PMEM_FORCE it failed for another reason: $(grep -m1 -i 'err' "$work/fio-noforce.out")"
    fi
    rm -f "$file"
    local dax
    dax=$(ls /dev/dax[0-9]*.[0-9]* 2>/dev/null | head -n1)
    if [ -z "$dax" ]; then
        skip "fio dev-dax engine: no /dev/daxX.Y device on this machine"
    else
        printf '[global]\nioengine=dev-dax\nfilename=%s\nsize=4m\nbs=4k\nverify=crc32c\ndo_verify=1\nverify_fatal=1\n[w]\nrw=write\n[r]\nrw=randread\nstonewall\n' "$dax" >"$work/fio-dax.job"
        if on repl fio-devdax fio "$work/fio-dax.job"; then
            loaded fio-devdax repl && pass "fio dev-dax engine on $dax: write and randread verified"
        else
            fail "fio dev-dax on $dax: $(grep -m1 -iE 'verify|err=' "$work/fio-devdax.out")"
        fi
    fi
}

# ------------------------------------------------------------ differential
# Deliberate differences, one per entry: CASE#what is left out of both lines
# (a sed expression)#what the replacement's whole line must match#why.
allowed_diffs=(
    'missing/2^62/CS#s/ \(size\|file\)=.*//#ret=NULL .*file=absent\(ENOENT\) entries=0$#PMDK leaves the file it created behind (4 EiB sparse on tmpfs, empty where ftruncate fails) when the map fails; pmem_map_file must leave no file it created (issue 12 item 2)'
    'missing/2^62/C#s/ \(size\|file\)=.*//#ret=NULL .*file=absent\(ENOENT\) entries=0$#PMDK leaves the file it created behind when posix_fallocate or ftruncate fails; the replacement removes the file it created'
)

suite_diff() {
    echo "== differential table (tests/libpmem/diff.c): Debian's libpmem and the replacement, separate processes"
    need diff gcc:gcc libpmem-dev:/usr/include/libpmem.h || return 0
    gcc -std=gnu11 -O2 -Wall -Wextra -Werror "$here/diff.c" -o "$build/diff" -lpmem -pthread 2>"$work/diff-cc.err" ||
        { cat "$work/diff-cc.err"; fail "diff: diff.c does not build"; return 0; }
    local fsdir setting label n total=0 ok=1 applied=0
    # tmpfs and the repository's file system; PMEM_IS_PMEM_FORCE unset, 1, 0
    # Settings: FS:ENVIRONMENT (words VAR=value; "-" none).  PMDK reads
    # PMEM_IS_PMEM_FORCE with atoi-like rules; the other variables change
    # only how stores are made, so every line must stay the same.
    local -a settings=(
        tmpfs:- tmpfs:PMEM_IS_PMEM_FORCE=1 tmpfs:PMEM_IS_PMEM_FORCE=0
        buildfs:- buildfs:PMEM_IS_PMEM_FORCE=1 buildfs:PMEM_IS_PMEM_FORCE=0
        tmpfs:PMEM_IS_PMEM_FORCE=2 tmpfs:PMEM_IS_PMEM_FORCE=yes tmpfs:PMEM_IS_PMEM_FORCE=
        tmpfs:PMEM_IS_PMEM_FORCE=-1 tmpfs:PMEM_IS_PMEM_FORCE=1x
        tmpfs:PMEM_NO_FLUSH=1 tmpfs:PMEM_NO_FLUSH=0
        "tmpfs:PMEM_NO_MOVNT=1 PMEM_IS_PMEM_FORCE=1" "tmpfs:PMEM_MOVNT_THRESHOLD=0 PMEM_IS_PMEM_FORCE=1"
        "tmpfs:PMEM_NO_CLWB=1 PMEM_NO_CLFLUSHOPT=1 PMEM_IS_PMEM_FORCE=1"
        "tmpfs:PMEM_AVX512F=0 PMEM_AVX=0 PMEM_IS_PMEM_FORCE=1"
    )
    local st
    for st in "${settings[@]}"; do
        fsdir=$work
        [ "${st%%:*}" = buildfs ] && fsdir=$build
        setting=${st#*:}
        {
            local tag
            tag=$(echo "$st" | sed 's/[ :=]/_/g')
            local -a e=(env -u PMEM_IS_PMEM_FORCE)
            # shellcheck disable=SC2206 # words VAR=value
            [ "$setting" = - ] || e=(env -u PMEM_IS_PMEM_FORCE $setting)
            for which in real repl; do
                label=diff-$tag-$which
                rm -rf "$fsdir/d-$label" && mkdir -p "$fsdir/d-$label"
                if ! on $which "$label" "${e[@]}" "$build/diff" "$fsdir/d-$label"; then
                    fail "diff $tag: the program failed on $which: $(tail -n1 "$work/$label.err")"
                    ok=0
                fi
                loaded "$label" $which >/dev/null || ok=0
                rm -rf "$fsdir/d-$label"
            done
            n=$(wc -l <"$work/diff-$tag-real.out")
            total=$((total + n))
            # Drop the deliberate differences once the replacement's line
            # is what the entry says; what remains must be identical.
            local a name re why filt_real=$work/diff-$tag-real.f filt_repl=$work/diff-$tag-repl.f
            cp "$work/diff-$tag-real.out" "$filt_real"
            cp "$work/diff-$tag-repl.out" "$filt_repl"
            for a in "${allowed_diffs[@]}"; do
                IFS='#' read -r name cut re why <<<"$a"
                local line
                line=$(awk -v n="$name" '$1 == n' "$filt_repl")
                if [ -n "$line" ] && [[ $line =~ $re ]]; then
                    awk -v n="$name" '$1 == n {print > "/dev/stderr"; next} {print}' "$filt_real" 2>"$filt_real.c" >"$filt_real.t"
                    awk -v n="$name" '$1 == n {print > "/dev/stderr"; next} {print}' "$filt_repl" 2>"$filt_repl.c" >"$filt_repl.t"
                    sed "$cut" "$filt_real.c" >>"$filt_real.t" && mv "$filt_real.t" "$filt_real"
                    sed "$cut" "$filt_repl.c" >>"$filt_repl.t" && mv "$filt_repl.t" "$filt_repl"
                    applied=$((applied + 1))
                fi
            done
            if [ "$n" -lt 150 ]; then
                fail "diff $tag: only $n lines from Debian's libpmem"
                ok=0
            elif ! diff -u "$filt_real" "$filt_repl" >"$work/diff-$tag.diff"; then
                fail "diff $tag: $(grep -c '^+[^+]' "$work/diff-$tag.diff") line(s) differ (- Debian's libpmem, + the replacement):"
                grep '^[-+][^-+]' "$work/diff-$tag.diff" | head -n 40 | sed 's/^/     /'
                ok=0
            fi
        }
    done
    [ $ok = 1 ] && pass "diff: $total lines (${#settings[@]} settings: tmpfs and $(stat -f -c %T "$build"), PMEM_IS_PMEM_FORCE unset, 1, 0, odd values, store knobs) identical; $applied line(s) compared without the file state, deliberate differences listed in run.sh"
    for a in "${allowed_diffs[@]}"; do
        IFS='#' read -r name cut re why <<<"$a"
        echo "     deliberate: $name: $why"
    done
}

# ----------------------------------------------------------------- pools
# pool_round KIND WRITER VERIFIER FORCE: pmempool create on WRITER's
# library, the pools program writes on WRITER, pmempool check on both,
# the pools program verifies on VERIFIER.
pool_round() {
    local kind=$1 w=$2 v=$3 force=$4 seed=$RANDOM
    local tag=$kind-$w-to-$v-force$force pool=$work/pool-$kind-$w-$v-$force
    local -a e=(env -u PMEM_IS_PMEM_FORCE)
    [ "$force" = unset ] || e=(env PMEM_IS_PMEM_FORCE=$force)
    local -a create
    case $kind in
        obj) create=(pmempool create obj --size=32M --layout=ct-pools "$pool") ;;
        blk) create=(pmempool create blk 512 "$pool") ;;
        log) create=(pmempool create log "$pool") ;;
    esac
    rm -f "$pool"
    on "$w" "$tag-create" "${e[@]}" "${create[@]}" || { fail "$tag: ${create[*]}: $(tail -n1 "$work/$tag-create.err")"; return; }
    loaded "$tag-create" "$w" >/dev/null || return
    on "$w" "$tag-write" "${e[@]}" "$build/pools" "$kind-write" "$pool" "$seed" ||
        { fail "$tag: write on $w: $(tail -n1 "$work/$tag-write.out") $(tail -n1 "$work/$tag-write.err")"; return; }
    loaded "$tag-write" "$w" >/dev/null || return
    local c
    for c in repl real; do
        on $c "$tag-check-$c" pmempool check -v "$pool" ||
            { fail "$tag: pmempool check on $c: $(tail -n1 "$work/$tag-check-$c.out")"; return; }
        grep -q ': consistent$' "$work/$tag-check-$c.out" ||
            { fail "$tag: pmempool check on $c does not say consistent: $(tail -n1 "$work/$tag-check-$c.out")"; return; }
        loaded "$tag-check-$c" $c >/dev/null || return
    done
    on "$v" "$tag-verify" "${e[@]}" "$build/pools" "$kind-verify" "$pool" "$seed" ||
        { fail "$tag: verify on $v: $(tail -n1 "$work/$tag-verify.out") $(tail -n1 "$work/$tag-verify.err")"; return; }
    loaded "$tag-verify" "$v" >/dev/null || return
    # The verification can fail: a wrong seed must be refused.
    if on "$v" "$tag-wrongseed" "${e[@]}" "$build/pools" "$kind-verify" "$pool" $((seed + 1)); then
        fail "$tag: verify with a wrong seed passed"
        return
    fi
    pass "$kind pool: created and written on $w, pmempool check consistent on both, verified on $v (PMEM_IS_PMEM_FORCE=$force): $(tail -n1 "$work/$tag-verify.out" | sed 's/^ok //')"
    rm -f "$pool"
}

suite_pools() {
    echo "== libpmemobj, libpmemblk, libpmemlog and pmempool"
    need pools gcc:gcc pmdk-tools:pmempool libpmemobj-dev:/usr/include/libpmemobj.h \
        libpmemblk-dev:/usr/include/libpmemblk.h libpmemlog-dev:/usr/include/libpmemlog.h || return 0
    gcc -std=gnu11 -O2 -Wall -Wextra -Werror "$here/pools.c" -o "$build/pools" \
        -lpmemobj -lpmemblk -lpmemlog -lpmem 2>"$work/pools-cc.err" ||
        { cat "$work/pools-cc.err"; fail "pools: pools.c does not build"; return 0; }
    local kind force
    for kind in obj blk log; do
        for force in unset 1; do
            pool_round $kind repl real $force
            pool_round $kind real repl $force
        done
    done
}

# ------------------------------------------------------------------ QEMU
# The DAX test bed's first boot with a wrapper qemu-system-x86_64 first in
# PATH: it runs the real one with LD_LIBRARY_PATH naming the replacement and
# keeps a copy of /proc/PID/maps of the running VM.
suite_qemu() {
    echo "== QEMU: the DAX test bed (tests/dax/run.sh, DAX_BOOTS=${DAX_BOOTS:-1} of 3 boots) with the replacement loaded"
    if [ "$(id -u)" != 0 ]; then skip "qemu: tests/dax/run.sh needs root"; return 0; fi
    need qemu qemu-system-x86:qemu-system-x86_64 || return 0
    local real_qemu want
    real_qemu=$(command -v qemu-system-x86_64)
    want=$(expected_lib repl)
    mkdir -p "$work/qemu-bin"
    cat >"$work/qemu-bin/qemu-system-x86_64" <<EOF
#!/bin/sh
# written by tests/libpmem/run.sh: the real QEMU on the replacement
case " \$* " in *" -kernel "*)
    ( i=0; while [ \$i -lt 300 ]; do
          if grep -q 'libpmem\.so\.1' /proc/\$\$/maps 2>/dev/null && [ "\$(readlink /proc/\$\$/exe)" = "$real_qemu" ]; then
              cp /proc/\$\$/maps "$work/qemu-maps.\$\$"; exit 0; fi
          i=\$((i + 1)); sleep 0.1; done ) &
esac
if [ $mode = replacement ]; then
    LD_LIBRARY_PATH="${repl_dir:-}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"; export LD_LIBRARY_PATH
fi
exec "$real_qemu" "\$@"
EOF
    chmod 755 "$work/qemu-bin/qemu-system-x86_64"
    # fio inside the VM (guest-fio.sh): fio and its libraries, and the
    # library under test as the guest's only libpmem.so.1.
    local x=$work/extra-root l
    mkdir -p "$x/extra/lib" "$x/usr/bin"
    install -m 755 "$here/guest-fio.sh" "$x/extra/run"
    strip --strip-unneeded -o "$x/extra/lib/libpmem.so.1" "$want"
    cp /usr/bin/fio "$x/usr/bin/fio"
    for l in $( (ldd /usr/bin/fio; ldd "$want") | grep -o '/[^ ]*' | sort -u); do
        case $l in */libpmem.so.1) continue ;; esac
        mkdir -p "$x$(dirname "$l")" && cp -L "$l" "$x$l"
    done
    fio_job /mnt/pmem/fio.pmem 1m >"$x/extra/fsdax.fio"
    printf '[global]\nioengine=libpmem\nfilename=/mnt/fio-tmpfs/fio.pmem\nsize=1m\nbs=4k\n[w]\nrw=write\n' >"$x/extra/tmpfs.fio"
    printf '[global]\nioengine=dev-dax\nfilename=/dev/dax0.0\noffset=128m\nsize=4m\nbs=4k\nverify=crc32c\ndo_verify=1\nverify_fatal=1\n[w]\nrw=write\n[r]\nrw=randread\nstonewall\n' >"$x/extra/devdax.fio"
    PATH="$work/qemu-bin:$PATH" DAX_EXTRA_ROOT="$x" DAX_KEEP=1 DAX_BOOTS=${DAX_BOOTS:-1} bash "$root/tests/dax/run.sh" >"$work/dax.out" 2>&1
    local rc=$? daxwork
    grep -E '^test-dax: |FAIL|guest fio' "$work/dax.out" | sed 's/^ */   | /'
    daxwork=$(sed -n 's/^   work directory kept[^/]*//p' "$work/dax.out" | tail -n1)
    if [ $rc -ne 0 ]; then
        fail "qemu: the DAX test bed failed with the replacement (exit $rc): $(tail -n1 "$work/dax.out")"
        return 0
    fi
    local maps n=0 bad=0 m
    for m in "$work"/qemu-maps.*; do
        [ -e "$m" ] || continue
        n=$((n + 1))
        maps=$(grep -o '/[^ ]*libpmem\.so\.1[^ ]*$' "$m" | sort -u)
        if [ "$maps" != "$(readlink -f "$want")" ]; then
            fail "qemu: /proc/$(basename "$m" | cut -d. -f2)/maps maps ${maps:-no libpmem.so.1}, want $want"
            bad=1
        fi
    done
    if [ $n -eq 0 ]; then fail "qemu: no /proc/PID/maps of a running VM was captured"; bad=1; fi
    if [ -n "$daxwork" ] && grep -hE 'no version information available|version .LIBPMEM|symbol lookup error' "$daxwork"/host.log >/dev/null 2>&1; then
        fail "qemu: loader warning in $daxwork/host.log"
        bad=1
    fi
    if ! grep -q 'PASS guest fio libpmem engine on fsdax' "$work/dax.out"; then
        fail "qemu: the guest's fio on fsdax did not report (tests/libpmem/guest-fio.sh)"
        bad=1
    fi
    if [ "${DAX_BOOTS:-1}" = 3 ]; then
        grep -q 'PASS guest fio dev-dax engine' "$work/dax.out" ||
            { fail "qemu: the guest's fio dev-dax engine did not report"; bad=1; }
    else
        skip "fio dev-dax engine in the VM: /dev/dax0.0 exists from the second boot on (DAX_BOOTS=3 runs it)"
    fi
    [ -n "$daxwork" ] && [ -d "$daxwork" ] && rm -rf "$daxwork"
    [ $bad = 0 ] && pass "qemu: $(tail -n1 "$work/dax.out" | sed 's/^test-dax: //'); /proc/PID/maps of $n VM(s) show $want and no other libpmem"
    qemu_lsa "$real_qemu" "$want"
}

# QEMU's own call into libpmem: with a pmem=on backend and a label area,
# QEMU 7.2 copies a guest's label write with pmem_memcpy_persist.  One short
# boot (guest-lsa.c, lsa-init) writes a random marker; gdb counts the calls
# into the loaded libpmem.so.1 (and says which file it is), and the marker
# must be in the backing file where the label area lives (its last 128 KiB).
qemu_lsa() {
    local real_qemu=$1 want=$2 kdir=$root/build/dax/cache/kernel d=$work/lsa
    if [ ! -s "$kdir/vmlinuz" ]; then
        skip "qemu label write: no kernel in $kdir (tests/dax/run.sh fetches it)"
        return 0
    fi
    need qemu-lsa gdb:gdb cpio:cpio || return 0
    mkdir -p "$d"/r/bin "$d"/r/lib/modules "$d"/r/proc "$d"/r/sys "$d"/r/dev "$d"/r/tmp
    cp /bin/busybox "$d/r/bin/" && cp "$kdir"/modules/*.ko "$d/r/lib/modules/" &&
        install -m 755 "$here/lsa-init" "$d/r/init" &&
        gcc -static -O2 -Wall -Wextra -Werror -o "$d/r/bin/guest-lsa" "$here/guest-lsa.c" &&
        (cd "$d/r" && find . | cpio -o -H newc --quiet) >"$d/initrd" &&
        truncate -s 256M "$d/img" || { fail "qemu label write: setup"; return 0; }
    local marker
    marker=LSA-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')
    local -a envs=()
    [ $mode = replacement ] && envs=(LD_LIBRARY_PATH="$repl_dir")
    env "${envs[@]}" timeout 180 gdb -q -batch -ex 'set pagination off' -ex 'break main' -ex run \
        -ex 'info sharedlibrary libpmem\.so\.1' -ex 'dprintf pmem_memcpy_persist,"LSA-CALL pmem_memcpy_persist\n"' \
        -ex continue --args "$real_qemu" -nodefaults -no-reboot -display none -monitor none \
        -accel tcg -cpu max -smp 1 -machine pc,nvdimm=on -m 512M,slots=2,maxmem=2G \
        -object memory-backend-file,id=nv,share=on,pmem=on,mem-path="$d/img",size=256M \
        -device nvdimm,id=nvdimm0,memdev=nv,label-size=128K \
        -kernel "$kdir/vmlinuz" -initrd "$d/initrd" -append "console=ttyS0 quiet panic=-1 lsa_marker=$marker" \
        -serial file:"$d/console.log" >"$d/gdb.out" 2>&1
    local got calls at
    got=$(grep -o '/[^ ]*libpmem\.so\.1$' "$d/gdb.out" | sort -u)
    calls=$(grep -c '^LSA-CALL pmem_memcpy_persist' "$d/gdb.out")
    at=$(dd if="$d/img" iflag=skip_bytes,count_bytes skip=$((256 * 1048576 - 131072 + 4096)) count=${#marker} 2>/dev/null)
    if ! tr -d '\r' <"$d/console.log" | grep -q '^LSA-WRITTEN'; then
        fail "qemu label write: the guest did not write: $(tr -d '\r' <"$d/console.log" | grep -m1 -E 'FAIL|panic' || tail -n 2 "$d/console.log")"
    elif [ "$got" != "$want" ]; then
        fail "qemu label write: gdb shows ${got:-no libpmem.so.1} loaded, want $want"
    elif grep -qE 'no version information|symbol lookup error|version .LIBPMEM' "$d/gdb.out"; then
        fail "qemu label write: loader warning: $(grep -m1 -E 'no version|symbol lookup|version .LIBPMEM' "$d/gdb.out")"
    elif [ "$calls" -lt 1 ]; then
        fail "qemu label write: QEMU never called pmem_memcpy_persist"
    elif [ "$at" != "$marker" ]; then
        fail "qemu label write: the marker is not in the backing file's label area (found '$at')"
    else
        pass "qemu label write: QEMU called pmem_memcpy_persist of $want $calls time(s) (gdb), the guest's marker is in the backing file's label area"
    fi
}

# ------------------------------------------------------------ bench-fio
# The same fio job alternately on Debian's libpmem and the replacement;
# prints each round's ratio and the medians, by wall clock and per CPU
# second (bytes / (usr + sys) time: less sensitive to a busy machine).  The
# read job is a control: fio's libpmem engine reads with plain memcpy, so its
# ratio shows the noise of the measurement.
suite_bench_fio() {
    echo "== fio bandwidth: Debian's libpmem vs the replacement, alternating"
    need bench-fio fio:fio python3:python3 || return 0
    local rounds_main=${BENCH_FIO_ROUNDS:-15} secs=${BENCH_FIO_SECONDS:-2}
    local job name rw bs direct sync rounds
    for job in "write 4k 1 1 $rounds_main" "write 4k 0 0 3" "write 64k 1 1 3" "randwrite 4k 1 1 3" "read 4k 1 1 3"; do
        read -r rw bs direct sync rounds <<<"$job"
        name="$rw bs=$bs direct=$direct sync=$sync"
        local file=$work/bench.pmem r which
        rm -f "$file"
        printf '[global]\nioengine=libpmem\nfilename=%s\nsize=64m\nbs=%s\nrw=%s\ndirect=%s\nsync=%s\ntime_based=1\nruntime=%s\nramp_time=1\n[j]\n' \
            "$file" "$bs" "$rw" "$direct" "$sync" "$secs" >"$work/bench.job"
        : >"$work/bench.bw"
        for r in $(seq 1 "$rounds"); do
            for which in real repl; do
                if ! on $which bench-$which-$r env PMEM_IS_PMEM_FORCE=1 fio --output-format=json "$work/bench.job"; then
                    fail "bench-fio: $name on $which failed"
                    return
                fi
                loaded bench-$which-$r $which >/dev/null || return
                python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; bw=j["write"]["bw_bytes"]+j["read"]["bw_bytes"]; cpu=(j["usr_cpu"]+j["sys_cpu"])/100; print(sys.argv[2], bw, bw/cpu if cpu > 0 else 0)' \
                    "$work/bench-$which-$r.out" $which >>"$work/bench.bw"
            done
        done
        python3 - "$work/bench.bw" "$name" <<'EOF'
import random, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
real = [(float(b), float(c)) for w, b, c in rows if w == "real"]
repl = [(float(b), float(c)) for w, b, c in rows if w == "repl"]
ratios = [b[0] / a[0] for a, b in zip(real, repl)]
cratios = [b[1] / a[1] for a, b in zip(real, repl) if a[1] > 0 and b[1] > 0]
mib = lambda v: "%.0f" % (v / 2**20)
# A 95 % interval for the median wall ratio: percentile bootstrap, fixed seed.
rng = random.Random(12)
meds = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
print("   %-32s PMDK %s MiB/s, replacement %s MiB/s: ratio %.2fx wall (95%% interval %.2f-%.2f), %.2fx per CPU second (medians of %d; wall ratios %s)" % (
    sys.argv[2], mib(statistics.median(r[0] for r in real)), mib(statistics.median(r[0] for r in repl)),
    statistics.median(ratios), meds[50], meds[1949], statistics.median(cratios) if cratios else 0, len(ratios),
    " ".join("%.2f" % r for r in ratios)))
EOF
    done
    pass "bench-fio: alternating rounds of ${secs} s per job (ratios above; targets in BENCHMARKS.md)"
}

# ------------------------------------------------------------------ main
echo "test-libpmem: $mode run; replacement: $(expected_lib repl); Debian's: $(system_libpmem || true)"
t0=$(date +%s)
selftest_loader
for s in "${suites[@]}"; do
    case $s in
        # In the scratch directory: fio leaves its verify state files
        # (and exec_prerun output) in its working directory.
        # (Not a subshell: the pass and fail counts must survive.)
        fio) cd "$work" && suite_fio; cd "$OLDPWD" ;;
        diff) suite_diff ;;
        pools) suite_pools ;;
        qemu) suite_qemu ;;
        bench-fio) suite_bench_fio ;;
        *) echo "test-libpmem: unknown suite $s" >&2; exit 2 ;;
    esac
done
echo "test-libpmem: $passes passed, $failures failed ($(($(date +%s) - t0)) s)"
[ $failures -eq 0 ]
