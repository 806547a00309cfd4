#!/usr/bin/env bash
# The release library's machine code holds its fence and write-back
# instructions: a check no recording can fool. The persistence checker
# judges trace events, so an edit that deletes an instruction but keeps its
# event passes it; this reads the instructions themselves.
#
#   bash tests/verify/disasm.sh path/to/libpmem_sys.so   (run by make test)
#
# x86_64: every fence leaf (a function of pmem_sys::arch whose name ends in
# "fence") contains SFENCE; every write-back leaf (pmem_sys::arch::*::flush
# and ::invalidate) contains CLWB, CLFLUSHOPT or CLFLUSH, and the three
# instructions each appear in some leaf; every store leaf of a
# non-temporal tier (AVX512F, AVX2, SSE2 ::copy, ::move, ::set and their
# _noflush forms) contains that tier's non-temporal vector store (VMOVNTDQ
# from a ZMM or YMM register, MOVNTDQ), and no leaf of the temporal tier
# contains any non-temporal store. Elsewhere: SKIPPED.
set -uo pipefail

lib=${1:?usage: disasm.sh path/to/libpmem_sys.so}
arch=$(uname -m)
if [ "$arch" != x86_64 ]; then
    echo "SKIPPED: disassembly check (written for x86_64; this is $arch)"
    exit 0
fi
if ! command -v objdump >/dev/null; then
    echo "SKIPPED: disassembly check (objdump not installed: apt-get install binutils)"
    exit 0
fi
[ -f "$lib" ] || { echo "disasm: $lib not found" >&2; exit 1; }

# One line per function: "<demangled name>\t<instruction mnemonics...>".
funcs=$(objdump -d -C --no-show-raw-insn "$lib" | awk '
    /^[0-9a-f]+ <.*>:$/ {
        if (name != "") print name "\t" insns
        name = $0; sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name); insns = ""; next
    }
    /^ +[0-9a-f]+:\t/ { split($0, f, "\t"); split(f[2], w, " "); insns = insns " " w[1]; if (w[1] ~ /movnt/) insns = insns ":" w[2] }
    END { if (name != "") print name "\t" insns }')

fail=0
# Each leaf that passes is listed only with DISASM_VERBOSE=1.
ok() { if [ -n "${DISASM_VERBOSE:-}" ]; then echo "ok: $*"; fi; }
fences=$(grep -E '^pmem_sys::arch::[A-Za-z0-9_:{}]*fence'$'\t' <<<"$funcs")
flushes=$(grep -E '^pmem_sys::arch::[A-Za-z0-9_:{}]*::(flush|invalidate)'$'\t' <<<"$funcs")
if [ -z "$fences" ]; then
    echo "disasm: no fence leaf (pmem_sys::arch::...fence) in $lib: the check cannot run" >&2
    exit 1
fi
if [ -z "$flushes" ]; then
    echo "disasm: no write-back leaf (pmem_sys::arch::...::flush) in $lib: the check cannot run" >&2
    exit 1
fi
while IFS=$'\t' read -r name insns; do
    if [[ " $insns " == *" sfence "* ]]; then
        ok "$name contains sfence"
    else
        echo "FAILED: fence leaf $name has no sfence:$insns" >&2
        fail=1
    fi
done <<<"$fences"
seen=""
while IFS=$'\t' read -r name insns; do
    found=""
    for i in clwb clflushopt clflush; do
        [[ " $insns " == *" $i "* ]] && found="$found $i"
    done
    if [ -z "$found" ]; then
        echo "FAILED: write-back leaf $name has no clwb, clflushopt or clflush:$insns" >&2
        fail=1
    else
        ok "$name contains$found"
        seen="$seen$found"
    fi
done <<<"$flushes"
for i in clwb clflushopt clflush; do
    if [[ " $seen " != *" $i "* ]]; then
        echo "FAILED: no write-back leaf contains $i" >&2
        fail=1
    fi
done
stores=$(grep -E '^pmem_sys::arch::x86_64::(AVX512F|AVX2|SSE2|TEMPORAL)::(copy|move|set)(_noflush)?'$'\t' <<<"$funcs")
if [ -z "$stores" ]; then
    echo "disasm: no store leaf (pmem_sys::arch::x86_64::<TIER>::copy...) in $lib: the check cannot run" >&2
    exit 1
fi
while IFS=$'\t' read -r name insns; do
    case $name in
    *::AVX512F::*) want='vmovntdq:%zmm' ;;
    *::AVX2::*) want='vmovntdq:%ymm' ;;
    *::SSE2::*) want='movntdq:%xmm' ;;
    *) want= ;;
    esac
    if [ -z "$want" ]; then
        if [[ "$insns" == *movnt* ]]; then
            echo "FAILED: temporal leaf $name has a non-temporal store" >&2
            fail=1
        else
            ok "$name has no non-temporal store"
        fi
    elif [[ "$insns" == *" $want"* ]]; then
        ok "$name contains ${want%%:*} from ${want#*:}"
    else
        echo "FAILED: store leaf $name has no ${want%%:*} from ${want#*:}" >&2
        fail=1
    fi
done <<<"$stores"
[ $fail = 0 ] && echo "disassembly check: passed ($(wc -l <<<"$fences") fence leaves, $(wc -l <<<"$flushes") write-back leaves, $(wc -l <<<"$stores") store leaves)"
exit $fail
