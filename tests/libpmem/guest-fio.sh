#!/bin/sh
# tests/libpmem/guest-fio.sh - /extra/run inside the DAX test bed's VM
# (tests/libpmem/run.sh qemu puts it there through DAX_EXTRA_ROOT).
#
# fio from Debian, with /extra/lib/libpmem.so.1 (the replacement) as the
# only libpmem.so.1 in the guest, on real (emulated) persistent memory:
#   fsdax   the libpmem engine on the ext4 -o dax mount WITHOUT
#           PMEM_IS_PMEM_FORCE: fio refuses a file whose pmem_map_file says
#           is_pmem 0, so the 16 verified jobs pass only when the MAP_SYNC
#           mapping is reported as pmem; the same job on the guest's tmpfs
#           must be refused.
#   devdax  the dev-dax engine on /dev/dax0.0 (second boot, right after the
#           conversion and before the test bed writes its device-DAX
#           records), 4 MiB at 128 MiB, write then randread, verified.
# Prints PASS/FAIL lines (counted by tests/dax/run.sh); exit 1 on a failure.
stage=$1
want=/extra/lib/libpmem.so.1
export LD_LIBRARY_PATH=/extra/lib
status=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; status=1; }

# runfio LABEL JOB [VAR=value...]: fio with the loader's log in
# /tmp/ld.LABEL.*; returns fio's status.
runfio() {
    label=$1 job=$2
    shift 2
    rm -f /tmp/ld."$label".*
    env "$@" LD_DEBUG=libs LD_DEBUG_OUTPUT=/tmp/ld."$label" /usr/bin/fio --eta=never "$job" \
        >/tmp/"$label".out 2>/tmp/"$label".err
}

# loaded LABEL: the replacement was the libpmem.so.1 loaded, no warning.
loaded() {
    got=$(cat /tmp/ld."$1".* 2>/dev/null | grep -o 'calling init: .*/libpmem\.so\.1$' | sed 's/calling init: //' | sort -u)
    if [ "$got" != "$want" ]; then
        fail "guest fio $1: loaded '${got:-no libpmem.so.1}', want $want"
        return 1
    fi
    if grep -qE 'no version information|symbol lookup error|undefined symbol|version .LIBPMEM' /tmp/"$1".err; then
        fail "guest fio $1: loader warning: $(head -n1 /tmp/"$1".err)"
        return 1
    fi
    return 0
}

case $stage in
fsdax)
    rm -f /mnt/pmem/fio.pmem
    if runfio fsdax /extra/fsdax.fio -u PMEM_IS_PMEM_FORCE; then
        n=$(grep -c 'err= 0' /tmp/fsdax.out)
        if [ "$n" = 16 ] && loaded fsdax; then
            pass "guest fio libpmem engine on fsdax (ext4 -o dax, MAP_SYNC, no PMEM_IS_PMEM_FORCE): 16 jobs verified on $want"
        elif [ "$n" != 16 ]; then
            fail "guest fio on fsdax: $n of 16 jobs without error"
        fi
    else
        fail "guest fio on fsdax: $(grep -m1 -iE 'verify|err=|error' /tmp/fsdax.out /tmp/fsdax.err)"
    fi
    rm -f /mnt/pmem/fio.pmem
    mkdir -p /mnt/fio-tmpfs && mount -t tmpfs -o size=16m tmpfs /mnt/fio-tmpfs
    if runfio tmpfs /extra/tmpfs.fio -u PMEM_IS_PMEM_FORCE; then
        fail "guest fio ran on tmpfs without PMEM_IS_PMEM_FORCE (is_pmem must be 0 there)"
    elif grep -q 'does not point to persistent memory' /tmp/tmpfs.out /tmp/tmpfs.err && loaded tmpfs; then
        pass "guest fio refuses tmpfs without PMEM_IS_PMEM_FORCE (is_pmem 0 off DAX)"
    else
        fail "guest fio on tmpfs failed for another reason: $(tail -n 3 /tmp/tmpfs.out /tmp/tmpfs.err | tr '\n' ' ')"
    fi
    umount /mnt/fio-tmpfs
    ;;
devdax)
    if runfio devdax /extra/devdax.fio; then
        n=$(grep -c 'err= 0' /tmp/devdax.out)
        if [ "$n" = 2 ] && loaded devdax; then
            pass "guest fio dev-dax engine on /dev/dax0.0: write and randread of 4 MiB verified on $want"
        elif [ "$n" != 2 ]; then
            fail "guest fio dev-dax: $n of 2 jobs without error"
        fi
    else
        fail "guest fio dev-dax: $(grep -m1 -iE 'verify|err=|error' /tmp/devdax.out /tmp/devdax.err)"
    fi
    ;;
*)
    echo "INFO /extra/run: nothing for stage $stage"
    ;;
esac
exit $status
