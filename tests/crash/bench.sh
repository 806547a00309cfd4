#!/usr/bin/env bash
# The cost of crash-test recording (a benchmark, not a test):
#
#   bash tests/crash/bench.sh STAGE
#
# For mappings of 64 KiB, 1 MiB and 64 MiB, the time per call with
# recording off and on, the trace's size and the peak resident memory.
# Recording compares every recorded mapping with its shadow at each call,
# so its cost per call grows with the mapped size.
set -euo pipefail
stage=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
export PKG_CONFIG_PATH="$stage/lib/pkgconfig"
cc -std=c11 -O2 $(pkg-config --cflags pmem-sys) "$here/bench.c" -o "$work/bench" \
    $(pkg-config --libs pmem-sys) -Wl,-rpath,"$stage/lib"
export PMEM_SYS_FORCE_GRANULARITY=cache_line
for case in "65536 100000" "1048576 100000" "67108864 1000"; do
    set -- $case
    for mode in api direct; do
        off=$("$work/bench" "$work/f" "$1" "$2" "$mode")
        on=$(PMEM_SYS_RECORD="$work/trace" "$work/bench" "$work/f" "$1" "$2" "$mode")
        echo "off: $off"
        echo "on:  $on; trace $(stat -c %s "$work/trace") bytes"
    done
done
