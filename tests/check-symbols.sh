#!/usr/bin/env bash
# Compares the dynamic symbols a shared library defines with the committed
# list: exactly the intended exports, nothing more (no Rust internals, no
# name shared with PMDK's libpmem or libpmem2).
#   check-symbols.sh LIB LIST
set -euo pipefail
lib=$1 list=$2
actual=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
if ! diff -u "$list" <(printf '%s\n' "$actual"); then
    echo "check-symbols: $lib exports differ from $list (- expected, + actual)" >&2
    exit 1
fi
# Every export is a kernel name or carries the pmem_sys_ prefix; none uses
# PMDK's prefixes pmem_ (other than pmem_sys_) or pmem2_.
kernel='^(memremap_pmem|memunmap_pmem|memcpy_to_pmem|memcpy_from_pmem|wmb_pmem|arch_has_wmb_pmem|arch_has_pmem_api|clear_pmem|arch_wb_cache_pmem|arch_invalidate_pmem)$'
bad=$(printf '%s\n' "$actual" | grep -Ev "$kernel" | grep -Ev '^pmem_sys_' || true)
if [ -n "$bad" ]; then
    echo "check-symbols: exports outside the naming rule: $bad" >&2
    exit 1
fi
echo "check-symbols: $(printf '%s\n' "$actual" | wc -l) exports, exactly as listed"

# And, where PMDK is installed, no export shares a name with libpmem or
# libpmem2 (both libraries must live in one process).
for pmdk in /usr/lib/x86_64-linux-gnu/libpmem.so.1 /usr/lib/x86_64-linux-gnu/libpmem2.so.1; do
    if [ -e "$pmdk" ]; then
        clash=$(comm -12 <(printf '%s\n' "$actual") <(nm -D --defined-only "$pmdk" | awk '{print $3}' | sort -u))
        if [ -n "$clash" ]; then
            echo "check-symbols: names shared with $pmdk: $clash" >&2
            exit 1
        fi
        echo "check-symbols: no name shared with $(basename "$pmdk")"
    else
        echo "SKIPPED: collision check against $(basename "$pmdk") (not installed; apt-get install libpmem-dev libpmem2-dev)"
    fi
done
