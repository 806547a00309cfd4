#!/usr/bin/env bash
# tests/dax/run.sh - `make test-dax`: libpmem_sys on real DAX, in a VM.
#
# Boots a Debian kernel under QEMU (TCG, -cpu max) with an emulated NVDIMM
# backed by a file on the host, three times on the same image:
#   1. fsdax   persistence mem-ctrl: ext4 -o dax, CACHE_LINE + MAP_SYNC,
#              copies under every tier, records written; tmpfs gives PAGE
#   2. eadr    persistence cpu: cpu_cache, records read back, BYTE; the
#              namespace becomes device-DAX, /dev/dax0.0 gives BYTE
#   3. devdax  persistence mem-ctrl: /dev/dax0.0 gives CACHE_LINE
# and looks for the records in the backing file after boots 1 and 3.
# See tests/dax/README.md.  Run as root; it installs what it needs with
# apt-get and caches the rest under build/dax/.
#
# Each step has a timeout and its own exit status:
#    2 preflight          20 build-library       30/31 boot-fsdax (VM/checks)
#   10 host-packages      21 build-guest-program 40    host-records-fsdax
#   11 kernel             22 initramfs           50/51 boot-eadr (VM/checks)
#                                                60/61 boot-devdax (VM/checks)
#                                                70    host-records-devdax
# The last line is "test-dax: PASSED (...)" or
# "test-dax: FAILED at step NAME (exit N): why".
#
# Settings (environment):
#   DAX_LIB, DAX_INCLUDE  test this libpmem_sys.a and include directory
#                         instead of running `make lib`
#   DAX_GUEST_ENV         extra VAR=value words for the guest's environment,
#                         e.g. "PMEM_SYS_FORCE_GRANULARITY=page" (the test
#                         must then fail: a check of the checks)
#   DAX_BOOT_TIMEOUT      seconds per boot (default 240)
#   DAX_KEEP=1            keep the work directory after a pass
#   DAX_VERBOSE=1         print the whole guest console, not only the checks
#   DAX_BOOTS=1           stop after the first boot and its host check (one
#                         boot instead of three; make test-libpmem-qemu)
#   DAX_EXTRA_ROOT        a directory copied into the initramfs; when it
#                         holds an executable extra/run, the guest runs
#                         `/extra/run fsdax` at the end of the first boot and
#                         `/extra/run devdax` in the second once /dev/dax0.0
#                         exists (its PASS/FAIL lines count like the others)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dax_dir=$root/build/dax
cache=$dax_dir/cache
boot_timeout=${DAX_BOOT_TIMEOUT:-240}
image_size=256M
t0=$(date +%s)

# ------------------------------------------------------------ step helpers
step_name=preflight
step_code=2
step_t0=$t0
step() {
    step_done
    step_name=$1 step_code=$2 step_t0=$(date +%s)
    echo "== test-dax: step $step_name"
}
step_done() {
    [ "$step_name" = preflight ] || echo "   ($step_name took $(($(date +%s) - step_t0)) s)"
}
# fail [CODE] WHY: the final line names the step and the reason.
fail() {
    code=$step_code
    if [[ $1 =~ ^[0-9]+$ ]]; then code=$1; shift; fi
    [ -n "${work:-}" ] && echo "   work directory kept for inspection: $work"
    echo "test-dax: FAILED at step $step_name (exit $code): $*"
    exit "$code"
}
# run SECONDS CMD...: a command with a timeout; its output goes to the log.
run() {
    local secs=$1; shift
    timeout --kill-after=10 "$secs" "$@" >>"$steplog" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        tail -n 30 "$steplog" | sed 's/^/   | /'
        [ $rc -eq 124 ] && fail "timed out after ${secs}s: $*"
        fail "exit $rc: $*"
    fi
}

# --------------------------------------------------------------- preflight
[ "$(id -u)" = 0 ] || fail "must run as root (it installs Debian packages)"
[ "$(uname -m)" = x86_64 ] || fail "needs an x86_64 host"
mkdir -p "$cache" || fail "cannot create $cache"
# Concurrent runs share the cache (apt-get and the kernel download hold
# flock on build/dax/cache/.lock) but each gets its own work directory.
work=$(mktemp -d "$dax_dir/run.XXXXXX") || fail "cannot create a work directory"
steplog=$work/host.log
: >"$steplog"
echo "test-dax: work directory $work"


# ------------------------------------------------ step: host-packages (10)
step host-packages 10
static_busybox() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }
have_tools() {
    command -v qemu-system-x86_64 >/dev/null && command -v cpio >/dev/null &&
        [ -x /sbin/mke2fs ] && static_busybox && command -v gcc >/dev/null
}
install_tools() {
    have_tools && return 0
    local pkgs=(qemu-system-x86 busybox-static cpio e2fsprogs gcc libc6-dev)
    export DEBIAN_FRONTEND=noninteractive
    # Without recommends: no GUI, firmware or extra emulators.  When the
    # package lists are missing or stale, refresh them and try again.
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends "${pkgs[@]}"; }
}
if ! have_tools; then
    echo "   installing qemu-system-x86 busybox-static cpio e2fsprogs with apt-get"
    export -f install_tools have_tools static_busybox
    run 900 flock -w 900 "$cache/.lock" bash -c install_tools
fi
have_tools || fail "qemu-system-x86_64, cpio, /sbin/mke2fs, a static /bin/busybox or gcc still missing"
echo "   $(qemu-system-x86_64 --version | head -n1)"

# ------------------------------------------------------- step: kernel (11)
# The Debian cloud kernel: small, ext4 and FS_DAX built in, the NVDIMM
# drivers as modules.  Unpacked with dpkg -x, never installed on the host.
step kernel 11
modules="libnvdimm nfit nd_btt nd_pmem dax_pmem device_dax"
fetch_kernel() {
    set -e
    local kdir=$cache/kernel
    [ -s "$kdir/vmlinuz" ] && [ -s "$kdir/modules/device_dax.ko" ] && return 0
    local pkg
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$pkg" ]; then
        apt-get update -q
        pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    [ -n "$pkg" ] || { echo "no linux-image-*-cloud-amd64 package known to apt"; return 1; }
    local tmp
    tmp=$(mktemp -d "$cache/kernel-dl.XXXXXX")
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg")
    dpkg -x "$tmp"/*.deb "$tmp/x"
    rm -rf "$kdir.new" && mkdir -p "$kdir.new/modules"
    cp "$tmp"/x/boot/vmlinuz-* "$kdir.new/vmlinuz"
    local m f
    for m in $MODULES; do
        f=$(find "$tmp/x/lib/modules" -name "$m.ko*" | head -n1)
        [ -n "$f" ] || { echo "module $m not in $pkg"; return 1; }
        case $f in *.ko) cp "$f" "$kdir.new/modules/$m.ko" ;;
                   *.ko.xz) xz -dc "$f" >"$kdir.new/modules/$m.ko" ;;
                   *.ko.zst) zstd -dcq "$f" >"$kdir.new/modules/$m.ko" ;; esac
    done
    echo "$pkg" >"$kdir.new/package"
    rm -rf "$tmp" "$kdir" && mv "$kdir.new" "$kdir"
}
export -f fetch_kernel
export cache MODULES="$modules"
run 600 flock -w 900 "$cache/.lock" bash -c fetch_kernel
kernel=$cache/kernel/vmlinuz
echo "   $(cat "$cache/kernel/package")"

# ------------------------------------------------ step: build-library (20)
step build-library 20
if [ -n "${DAX_LIB:-}" ]; then
    lib=$DAX_LIB include=${DAX_INCLUDE:?DAX_INCLUDE must name the directory of pmem.h}
    echo "   using DAX_LIB=$lib"
else
    run 1800 make -C "$root" lib
    lib=$root/target/release/libpmem_sys.a include=$root/include
fi
[ -s "$lib" ] || fail "$lib is missing"
[ -s "$include/pmem.h" ] || fail "$include/pmem.h is missing"

# ------------------------------------------ step: build-guest-program (21)
# One static binary: no libraries to carry into the guest, and the host runs
# the same file to scan the backing file.
step build-guest-program 21
guest_test=$work/guest_test
run 300 gcc -std=c11 -Wall -Wextra -O2 -static -I"$include" "$here/guest_test.c" "$lib" \
    -o "$guest_test" -lpthread -ldl -lm
# Warnings about our own source (not glibc's notes on static linking).
grep -E 'guest_test\.c:.*warning:' "$steplog" | sed 's/^/   /'
# libpmem.so.1's code (pmdk-compat) on the same DAX: a second static
# program, linked with the crate's archive (DAX_COMPAT_LIB overrides).
if [ -n "${DAX_COMPAT_LIB:-}" ]; then
    compat_lib=$DAX_COMPAT_LIB
else
    run 1800 make -C "$root" libpmem
    compat_lib=${CARGO_TARGET_DIR:-$root/target}/release/libpmdk_compat.a
fi
[ -s "$compat_lib" ] || fail "$compat_lib is missing"
compat_guest=$work/compat_guest
run 300 gcc -std=c11 -Wall -Wextra -O2 -static "$here/compat_guest.c" "$compat_lib" \
    -o "$compat_guest" -lpthread -ldl -lm
grep -E 'compat_guest\.c:.*warning:' "$steplog" | sed 's/^/   /'

# ---------------------------------------------------- step: initramfs (22)
step initramfs 22
initrd=$work/initrd.cpio
build_initramfs() {
    set -e
    local r=$work/initramfs
    mkdir -p "$r"/{bin,sbin,etc,lib/modules,proc,sys,dev,tmp,mnt}
    cp /bin/busybox "$r/bin/busybox"
    strip -o "$r/bin/guest_test" "$guest_test"    # no debug info to carry
    strip -o "$r/bin/compat_guest" "$compat_guest"
    install -m 0755 "$here/init" "$r/init"
    # The real mke2fs (busybox's makes ext2 only) with its shared libraries.
    cp /sbin/mke2fs "$r/sbin/mke2fs"
    cp /etc/mke2fs.conf "$r/etc/" 2>/dev/null || true
    local l
    for l in $(ldd /sbin/mke2fs | grep -o '/[^ ]*'); do
        mkdir -p "$r$(dirname "$l")"
        cp -L "$l" "$r$l"
    done
    cp "$cache"/kernel/modules/*.ko "$r/lib/modules/"
    if [ -n "$DAX_EXTRA_ROOT" ]; then cp -a "$DAX_EXTRA_ROOT"/. "$r"/; fi
    # Uncompressed: TCG unpacks it faster than it would decompress it.
    (cd "$r" && find . | cpio -o -H newc --quiet) >"$initrd"
}
export -f build_initramfs
export work here guest_test compat_guest initrd DAX_EXTRA_ROOT="${DAX_EXTRA_ROOT:-}"
run 120 bash -c build_initramfs
echo "   $(du -h "$initrd" | cut -f1) initramfs"

# ------------------------------------------------------------ boot helper
image=$work/nvdimm.img
truncate -s "$image_size" "$image" || fail "cannot create $image"
nonce=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
total_pass=0

# boot STAGE PERSISTENCE [VAR=value...]: one VM run; its console is in
# $work/STAGE.log.  Fails with the step's code (VM) or code+1 (checks).
boot() {
    local stage=$1 persistence=$2; shift 2
    local log=$work/$stage.log
    local cmdline="console=ttyS0 quiet panic=-1 dax_stage=$stage dax_nonce=$nonce $* ${DAX_GUEST_ENV:-}"
    timeout --kill-after=10 "$boot_timeout" qemu-system-x86_64 \
        -nodefaults -no-reboot -display none -monitor none \
        -accel tcg -cpu max -smp 1 \
        -machine pc,nvdimm=on,nvdimm-persistence="$persistence" \
        -m 512M,slots=2,maxmem=2G \
        -object memory-backend-file,id=nvmem0,share=on,mem-path="$image",size="$image_size" \
        -device nvdimm,id=nvdimm0,memdev=nvmem0 \
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
        -serial file:"$log" >>"$steplog" 2>&1
    local rc=$?
    tr -d '\r' <"$log" >"$log.txt" && mv "$log.txt" "$log"
    if [ "${DAX_VERBOSE:-0}" = 1 ]; then
        sed 's/^/   | /' "$log"
    else
        grep -E '^(PASS|FAIL|INFO) ' "$log" | sed 's/^/   /'
    fi
    total_pass=$((total_pass + $(grep -c '^PASS ' "$log")))
    if ! grep -q '^GUEST-DONE ' "$log"; then
        echo "   last lines of the console:"
        tail -n 25 "$log" | sed 's/^/   | /'
        tail -n 5 "$steplog" | sed 's/^/   | /'
        [ $rc -eq 124 ] && fail "the VM did not power off within ${boot_timeout}s"
        fail "the VM stopped (qemu exit $rc) before the guest finished"
    fi
    local nfail
    nfail=$(grep -c '^FAIL ' "$log")
    if [ "$nfail" -ne 0 ]; then
        fail $((step_code + 1)) "$nfail guest check(s) failed, first: $(grep -m1 '^FAIL ' "$log" | cut -c6-)"
    fi
    grep -q '^GUEST-DONE .* failures=0$' "$log" ||
        fail $((step_code + 1)) "the guest reports failures without a FAIL line: $(grep '^GUEST-DONE' "$log")"
}

# host_scan N_FSDAX N_DEVDAX: the records, as bytes in the backing file.
host_scan() {
    local n
    n=$(grep -a -c "PMEMSYS-REC nonce=$nonce" "$image")
    echo "   grep: $n record header(s) of run $nonce in $image"
    timeout 120 "$guest_test" scan-image "$image" "$nonce" "$1" "$2" >"$work/scan.log" 2>&1
    local rc=$?
    sed 's/^/   /' "$work/scan.log"
    total_pass=$((total_pass + $(grep -c '^PASS ' "$work/scan.log")))
    [ $rc -eq 0 ] || fail "$(grep -m1 '^FAIL ' "$work/scan.log" | cut -c6-)"
    [ "$n" -ge 1 ] || fail "grep finds no record header in the backing file"
}

# --------------------------------------------- step: boot-fsdax (30, 31)
step boot-fsdax 30
boot fsdax mem-ctrl
records=$(awk '/^RECORDS-WRITTEN / {print $2; exit}' "$work/fsdax.log")
tiers=$(grep -m1 '^INFO tiers offered' "$work/fsdax.log" | cut -d: -f2 | wc -w)
[ -n "$records" ] || fail 31 "the guest did not say how many records it wrote"

# ------------------------------------------- step: host-records-fsdax (40)
step host-records-fsdax 40
host_scan "$records" -

if [ "${DAX_BOOTS:-3}" = 1 ]; then
    step_done
    if [ "${DAX_KEEP:-0}" = 1 ]; then echo "   work directory kept: $work"; else rm -rf "$work"; fi
    echo "test-dax: $total_pass passed, 0 failed"
    echo "test-dax: PASSED (first boot only: fsdax CACHE_LINE with MAP_SYNC, $records records under $tiers tiers," \
        "tmpfs PAGE, records in the backing file; $(($(date +%s) - t0)) s)"
    exit 0
fi

# ---------------------------------------------- step: boot-eadr (50, 51)
step boot-eadr 50
boot eadr cpu dax_records="$records"

# -------------------------------------------- step: boot-devdax (60, 61)
step boot-devdax 60
boot devdax mem-ctrl

# ------------------------------------------ step: host-records-devdax (70)
step host-records-devdax 70
host_scan - 2
step_done

# ------------------------------------------------------------------ done
if [ "${DAX_KEEP:-0}" = 1 ]; then echo "   work directory kept: $work"; else rm -rf "$work"; fi
echo "test-dax: $total_pass passed, 0 failed"
echo "test-dax: PASSED (fsdax CACHE_LINE with MAP_SYNC, $records records under $tiers tiers, eADR BYTE," \
    "device-DAX CACHE_LINE and BYTE, tmpfs PAGE, records in the backing file and read back after reboot;" \
    "$(($(date +%s) - t0)) s)"
