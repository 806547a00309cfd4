#!/usr/bin/env bash
# make test-install: `make install` into a temporary DESTDIR, as a packager
# would run it, then checks what a user and a debugger find there, and that
# `make uninstall` removes all of it. About 5 s once the libraries are built.
#
#   bash tests/install.sh              (make test-install does this)
#
# Checks: the shared libraries are stripped (no .symtab, no .debug_*) and
# name their debug file in .gnu_debuglink; that file sits in .debug/ beside
# them, with the same build id, and gdb finds source lines through it; the
# static library has no debug or LLVM bitcode sections and links a C program
# that runs; LICENSE-MIT, LICENSE-APACHE and README.md are in the doc
# directory; `man` finds a page for every exported function; uninstall
# leaves no file behind. Prints the installed sizes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
MAKE=${MAKE:-make}
prefix=/usr/local
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "install: FAILED: $*" >&2; exit 1; }

"$MAKE" --no-print-directory -C "$here" install DESTDIR="$dest" PREFIX="$prefix" >"$dest.log" 2>&1 ||
    { cat "$dest.log" >&2; rm -f "$dest.log"; fail "make install"; }
rm -f "$dest.log"
lib=$dest$prefix/lib
doc=$dest$prefix/share/doc/pmem-sys
man=$dest$prefix/share/man

build_id() { readelf -n "$1" | sed -n 's/.*Build ID: *//p'; }

shared=("$lib"/libpmem_sys.so.[0-9]*.[0-9]*.[0-9]*)
[ -e "$lib/pmem-sys/libpmem.so.1" ] && shared+=("$lib/pmem-sys/libpmem.so.1")
for so in "${shared[@]}"; do
    [ -f "$so" ] || fail "$so not installed"
    name=${so#"$dest"}
    sections=$(readelf -S -W "$so")
    if grep -qE '\.symtab|\.debug_' <<<"$sections"; then
        fail "$name is not stripped: $(grep -oE '\.symtab|\.debug_[a-z_]+' <<<"$sections" | tr '\n' ' ')"
    fi
    dbg=$(dirname "$so")/.debug/$(basename "$so").debug
    [ -f "$dbg" ] || fail "no debug file $dbg"
    link=$(readelf -p .gnu_debuglink "$so" 2>/dev/null | sed -n 's/^ *\[ *0\] *//p')
    [ "$link" = "$(basename "$dbg")" ] || fail "$name: .gnu_debuglink is '$link', not $(basename "$dbg")"
    readelf -S -W "$dbg" | grep -q '\.debug_line' || fail "$dbg has no line table"
    [ -n "$(build_id "$so")" ] && [ "$(build_id "$so")" = "$(build_id "$dbg")" ] ||
        fail "$name and its debug file have different build ids"
    echo "install: $name stripped, debug info in ${dbg#"$dest"}"
done

# A debugger finds the source line of an exported function through the
# debuglink alone.
if command -v gdb >/dev/null; then
    out=$(gdb -nx -batch -ex 'info line memcpy_to_pmem' "${shared[0]}" 2>&1)
    grep -q 'Line [0-9]* of ".*\.rs"' <<<"$out" || fail "gdb found no source line for memcpy_to_pmem: $out"
    echo "install: gdb: ${out##*$'\n'}"
else
    echo "SKIPPED: install: gdb check of the debug info (gdb not installed; apt-get install gdb)"
fi

# The static library: no debug info, no embedded LLVM bitcode, and it links.
a=$lib/libpmem_sys.a
if objdump -h "$a" 2>/dev/null | grep -qE ' \.debug_| \.llvmbc'; then
    fail "libpmem_sys.a still has $(objdump -h "$a" | grep -oE ' \.debug_[a-z_]+| \.llvmbc' | sort -u | tr '\n' ' ')"
fi
cat >"$dest/static.c" <<'EOF'
#include <pmem.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	char buf[64] = { 0 };
	memcpy_to_pmem((void __pmem *)buf, "static", 7);
	wmb_pmem();
	printf("install: static link runs: %s on %s\n", buf, pmem_sys_impl());
	return strcmp(buf, "static") != 0;
}
EOF
${CC:-cc} -std=c11 -I"$dest$prefix/include" "$dest/static.c" "$a" \
    $(sed -n 's/^Libs.private: *//p' "$lib/pkgconfig/pmem-sys.pc") -o "$dest/static"
"$dest/static"

for f in LICENSE-MIT LICENSE-APACHE README.md; do
    cmp -s "$here/$f" "$doc/$f" || fail "$f missing from ${doc#"$dest"} (or differs)"
done
echo "install: LICENSE-MIT, LICENSE-APACHE, README.md in ${doc#"$dest"}"

if command -v man >/dev/null; then
    n=0
    for sym in $(cat "$here/tests/symbols.txt"); do
        MANPATH=$man man -w "$sym" >/dev/null 2>&1 || fail "man $sym: no page under ${man#"$dest"}"
        n=$((n + 1))
    done
    MANPATH=$man man -w 7 pmem_sys >/dev/null 2>&1 || fail "man 7 pmem_sys: no page"
    for prog in "$dest$prefix"/bin/*; do
        [ -e "$prog" ] || continue
        MANPATH=$man man -w 1 "$(basename "$prog")" >/dev/null 2>&1 ||
            fail "the installed program $(basename "$prog") has no man page (write its README or man/NAME.1.md)"
        n=$((n + 1))
    done
    echo "install: man finds a page for each of the $n exported functions and installed programs, and pmem_sys(7)"
else
    echo "SKIPPED: install: man lookups (man not installed; apt-get install man-db)"
fi

printf '\n%-44s %10s\n' "installed file" "bytes"
while IFS= read -r f; do
    printf '%-44s %10d\n' "${f#"$dest$prefix/"}" "$(stat -c %s "$f")"
done < <(find "$lib" -name 'lib*.so*' -type f -o -name '*.a' -type f -o -name '*.debug' -type f | sort)

"$MAKE" --no-print-directory -C "$here" uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null
left=$(find "$dest" -mindepth 1 \( -type f -o -type l \) ! -name 'static*' | sed "s|^$dest||")
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install: uninstall removes every installed file"
