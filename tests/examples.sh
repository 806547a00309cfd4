#!/usr/bin/env bash
# The C examples, run as a user would and checked: hello writes its
# greeting into the file; pmeminfo PATH... prints the granularity and the
# reason for each path (page on tmpfs and on a plain directory here).
set -euo pipefail
stage=$1
export LD_LIBRARY_PATH=$stage/lib
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

c-examples/hello "$dir/hello.pmem" > "$dir/hello.out"
grep -q 'wrote and read back: "Hello, persistent memory!"' "$dir/hello.out"
# The granularity by name, as pmeminfo prints it (not "granularity 2").
grep -q '^mapped 4096 bytes, granularity page, implementation ' "$dir/hello.out" ||
    { echo "hello: unexpected output:"; cat "$dir/hello.out"; exit 1; }
grep -qa 'Hello, persistent memory!' "$dir/hello.pmem" || { echo "hello: greeting not in the file"; exit 1; }

shm=$(mktemp -p /dev/shm pmem-sys-XXXXXX)
trap 'rm -rf "$dir" "$shm"' EXIT
truncate -s 8192 "$shm"
c-examples/pmeminfo "$dir/hello.pmem" "$dir" "$shm" "$dir/does/not/exist" > "$dir/info.out" || true
cat "$dir/info.out"
grep -q '^implementation: x86_64/' "$dir/info.out"
grep -q "^$dir/hello.pmem: granularity page" "$dir/info.out"
grep -q "^$dir: granularity page" "$dir/info.out"
grep -q "^$shm: granularity page" "$dir/info.out"
grep -q 'reason: MAP_SYNC refused (EOPNOTSUPP): /dev/shm is not a DAX mount (tmpfs)' "$dir/info.out"
grep -q "^$dir/does/not/exist: error: pmem_sys_map_file: path $dir/does/not/exist: open: No such file or directory$" "$dir/info.out"

# pmeminfo creates and modifies nothing (issue 15 item 6): a missing path
# is an error and stays missing; an existing file keeps its size and times;
# a file the user may only read is enough; --version.
before=$(stat -c '%s %Y %Z' "$dir/hello.pmem")
if c-examples/pmeminfo "$dir/missing.pmem" > "$dir/missing.out"; then
    echo "pmeminfo: exit 0 for a missing path"; exit 1
fi
grep -q "^$dir/missing.pmem: error: pmem_sys_map_file: path $dir/missing.pmem: open: No such file or directory$" "$dir/missing.out"
[ ! -e "$dir/missing.pmem" ] || { echo "pmeminfo created $dir/missing.pmem"; exit 1; }
sleep 1.1 # a change would move the times
c-examples/pmeminfo "$dir/hello.pmem" > /dev/null
[ "$(stat -c '%s %Y %Z' "$dir/hello.pmem")" = "$before" ] || { echo "pmeminfo changed $dir/hello.pmem"; exit 1; }
listing=$(ls -A "$dir")
c-examples/pmeminfo "$dir" > /dev/null
[ "$(ls -A "$dir")" = "$listing" ] || { echo "pmeminfo left a file in $dir"; ls -A "$dir"; exit 1; }
chmod 0444 "$dir/hello.pmem"
chmod 0755 "$dir"
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
        setpriv --reuid=65534 --regid=65534 --clear-groups env LD_LIBRARY_PATH="$LD_LIBRARY_PATH" \
            c-examples/pmeminfo "$dir/hello.pmem" > "$dir/ro.out" || { cat "$dir/ro.out"; exit 1; }
        grep -q "^$dir/hello.pmem: granularity page" "$dir/ro.out"
    else
        echo "SKIPPED: pmeminfo on a read-only file (root, and setpriv cannot drop to uid 65534)"
    fi
else
    c-examples/pmeminfo "$dir/hello.pmem" > "$dir/ro.out" || { cat "$dir/ro.out"; exit 1; }
    grep -q "^$dir/hello.pmem: granularity page" "$dir/ro.out"
fi
c-examples/pmeminfo --version | grep -qx 'pmeminfo (pmem-sys [0-9]*\.[0-9]*\.[0-9]*)'
if c-examples/pmeminfo --bogus 2>/dev/null; then echo "pmeminfo accepted --bogus"; exit 1; fi
PMEM_SYS_FORCE_GRANULARITY=cache_line PMEM_SYS_NO_AVX2=1 c-examples/pmeminfo "$shm" > "$dir/forced.out"
grep -q "^$shm: granularity cache_line (is_pmem yes)" "$dir/forced.out"
grep -q 'forced to cache_line by PMEM_SYS_FORCE_GRANULARITY' "$dir/forced.out"
grep -q 'PMEM_SYS_NO_AVX2=1 (from the environment)' "$dir/forced.out"
echo "examples: hello and pmeminfo behave as documented"
