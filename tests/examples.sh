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
grep -q "^$dir/does/not/exist: error: pmem_sys_map_file: path $dir/does/not/exist: create: No such file or directory$" "$dir/info.out"
PMEM_SYS_FORCE_GRANULARITY=cache_line PMEM_SYS_NO_AVX2=1 c-examples/pmeminfo "$shm" > "$dir/forced.out"
grep -q "^$shm: granularity cache_line (is_pmem yes)" "$dir/forced.out"
grep -q 'forced to cache_line by PMEM_SYS_FORCE_GRANULARITY' "$dir/forced.out"
grep -q 'PMEM_SYS_NO_AVX2=1 (from the environment)' "$dir/forced.out"
echo "examples: hello and pmeminfo behave as documented"
