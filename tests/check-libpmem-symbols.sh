#!/usr/bin/env bash
# libpmem.so.1 (pmdk-compat/) against PMDK's ABI: exactly the names of LIST,
# each defined as NAME@@LIBPMEM_1.0 (objdump -T), nothing else exported, the
# SONAME libpmem.so.1, BIND_NOW; and libpmem_sys.so exports none of them.
#   check-libpmem-symbols.sh LIBPMEM LIBPMEM_SYS LIST
set -euo pipefail
lib=$1 native=$2 list=$3
fail() { echo "check-libpmem-symbols: $*" >&2; exit 1; }

# Defined dynamic symbols as "NAME VERSION", the version node's own ABS
# entry left out (every versioned library has it).
defined=$(objdump -T "$lib" | awk '$0 ~ /^[0-9a-f]+ / && $0 !~ /\*UND\*/ {print $NF, $(NF-1)}' \
    | grep -v '^LIBPMEM_1.0 LIBPMEM_1.0$' | sort)
expected=$(sed 's/$/ LIBPMEM_1.0/' "$list" | sort)
if ! diff -u <(printf '%s\n' "$expected") <(printf '%s\n' "$defined"); then
    fail "$lib: exports differ from $list, each @@LIBPMEM_1.0 (- expected, + actual)"
fi
# The default version (@@), not a hidden one (@): objdump prints hidden
# versions in parentheses.
if objdump -T "$lib" | grep -q '(LIBPMEM_1.0)'; then
    fail "$lib: some names are versioned LIBPMEM_1.0 but not as the default (@@)"
fi
[ "$(wc -l < "$list")" -eq 23 ] || fail "$list must hold PMDK 1.12's 23 names"
readelf -d "$lib" | grep -q 'SONAME.*\[libpmem\.so\.1\]' || fail "$lib: SONAME is not libpmem.so.1"
readelf -d "$lib" | grep -Eq 'FLAGS.*BIND_NOW|FLAGS_1.*NOW' || fail "$lib: not linked with -z now"
readelf -V "$lib" | grep -q 'Name: LIBPMEM_1.0' || fail "$lib: no LIBPMEM_1.0 version definition"
echo "check-libpmem-symbols: $lib exports the $(wc -l < "$list") names of $list, each @@LIBPMEM_1.0, nothing else"

# Where Debian's libpmem is installed, its list is ours.
sys=/usr/lib/x86_64-linux-gnu/libpmem.so.1
if [ -e "$sys" ]; then
    theirs=$(objdump -T "$sys" | awk '$0 ~ /^[0-9a-f]+ / && $0 !~ /\*UND\*/ {print $NF, $(NF-1)}' \
        | grep -v '^LIBPMEM_1.0 LIBPMEM_1.0$' | sort)
    diff -u <(printf '%s\n' "$theirs") <(printf '%s\n' "$defined") \
        || fail "the exports differ from $sys's"
    echo "check-libpmem-symbols: the same names and versions as $sys"
else
    echo "SKIPPED: comparison with Debian's libpmem.so.1 (not installed; apt-get install libpmem1)"
fi

# libpmem_sys.so shares no name with the list.
[ -f "$native" ] || fail "$native: missing (make lib)"
clash=$(comm -12 <(sort "$list") <(nm -D --defined-only "$native" | awk '{print $3}' | sort -u))
[ -z "$clash" ] || fail "$native exports PMDK names: $clash"
echo "check-libpmem-symbols: $native exports none of them"
