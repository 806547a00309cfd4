#!/usr/bin/env bash
# Runs the Go, Node.js and ctypes bindings against an installed copy of the
# library, as their users would find it:
#
#   bash bindings/run-tests.sh STAGE_DIR      (make test-bindings does this)
#
# STAGE_DIR is an install prefix: lib/libpmem_sys.so.0, lib/pkgconfig/
# pmem-sys.pc, include/pmem.h (make stage). Go links through pkg-config and
# finds the .so at run time through LD_LIBRARY_PATH; Node loads the file
# named by PMEM_SYS_LIB (one test also finds it through pkg-config and
# through the loader's search); ctypes dlopens PMEM_SYS_LIB with RTLD_NOW.
#
# A missing toolchain prints "SKIPPED: ..." and the other suites still run.
# With CI=true (or BINDINGS_INSTALL=1) the toolchains are installed first:
# Debian's golang-go, and koffi from npm at the version package-lock.json
# pins. Go never downloads anything: the module uses only the standard
# library, and GOPROXY=off makes any attempt fail loudly.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: bash bindings/run-tests.sh STAGE_DIR" >&2
    exit 2
fi
stage=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
lib=$stage/lib/libpmem_sys.so.0
if [ ! -e "$lib" ] || [ ! -e "$stage/lib/pkgconfig/pmem-sys.pc" ]; then
    echo "bindings: $stage is not an install of pmem-sys (no lib/libpmem_sys.so.0 or lib/pkgconfig/pmem-sys.pc); run make stage" >&2
    exit 2
fi
export PKG_CONFIG_PATH="$stage/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

install=0
if [ "${CI:-}" = true ] || [ "${BINDINGS_INSTALL:-}" = 1 ]; then
    install=1
fi

apt_install() {
    # Without lists (a fresh machine) the first attempt fails; update once.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; }
}

passed=()
failed=()
skipped=()

skip() { # suite, reason
    echo "SKIPPED: $1 tests ($2)"
    skipped+=("$1")
}

run_suite() { # suite, command...
    local name=$1
    shift
    echo "== bindings: $name"
    if "$@"; then
        passed+=("$name")
    else
        echo "bindings: $name tests FAILED" >&2
        failed+=("$name")
    fi
}

if [ $install = 1 ] && ! command -v pkg-config >/dev/null; then
    apt_install pkg-config
fi

# ---- Go ---------------------------------------------------------------------
go_tests() {
    cd "$here/go" || return 1
    # Go 1.19 wants a cache directory; CI may run without HOME.
    if [ -z "${HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then
        export GOCACHE=/tmp/pmem-sys-go-cache GOPATH=/tmp/pmem-sys-gopath
    fi
    export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOSUMDB=off CGO_ENABLED=1
    export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "go: $(go version); pkg-config pmem-sys: $(pkg-config --cflags --libs pmem-sys)"
    timeout 300 go vet ./... &&
        timeout 900 go test -race -count=1 -v ./...
}

if [ $install = 1 ] && ! command -v go >/dev/null; then
    apt_install golang-go
fi
if ! command -v go >/dev/null; then
    skip go "go not installed; apt-get install golang-go"
elif ! command -v pkg-config >/dev/null; then
    skip go "pkg-config not installed"
elif ! command -v "${CC:-gcc}" >/dev/null; then
    skip go "no C compiler for cgo"
else
    run_suite go go_tests
fi

# ---- Node.js ----------------------------------------------------------------
node_tests() {
    cd "$here/node" || return 1
    # koffi's "exports" do not list package.json, so read the file itself.
    echo "node $(node --version), koffi $(node -p "JSON.parse(require('fs').readFileSync('node_modules/koffi/package.json', 'utf8')).version")"
    PMEM_SYS_LIB=$lib timeout 300 node --test test/pmem.test.js test/fault.test.js test/flags.test.js
}

node_major=0
if command -v node >/dev/null; then
    node_major=$(node -p 'process.versions.node.split(".")[0]')
fi
if [ $install = 1 ] && [ "$node_major" -ge 18 ] && command -v npm >/dev/null; then
    # npm ci reinstalls from scratch; skip it when the lock file is the one
    # the installed modules came from.
    stamp=$here/node/node_modules/.pmem-sys-lock.sha256
    want=$(sha256sum "$here/node/package-lock.json" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -e "$here/node/node_modules/koffi/package.json" ]; then
        (cd "$here/node" && timeout 300 npm ci --no-audit --no-fund) && echo "$want" > "$stamp"
    fi
fi
if [ "$node_major" -lt 18 ]; then
    skip node "node 18 or later not installed"
elif [ ! -e "$here/node/node_modules/koffi/package.json" ]; then
    skip node "koffi not installed; run npm ci in bindings/node, or set BINDINGS_INSTALL=1"
else
    run_suite node node_tests
fi

# ---- Python ctypes ----------------------------------------------------------
ctypes_tests() {
    cd "$here/ctypes" || return 1
    echo "$(command -v python3): $(python3 --version)"
    PMEM_SYS_LIB=$lib timeout 300 python3 -m unittest -v test_pmem_ctypes
}

if ! command -v python3 >/dev/null; then
    skip ctypes "python3 not installed"
else
    run_suite ctypes ctypes_tests
fi

echo "bindings: passed: ${passed[*]:-none}; failed: ${failed[*]:-none}; skipped: ${skipped[*]:-none}"
[ ${#failed[@]} -eq 0 ]
