#!/usr/bin/env bash
# What `make test` needs besides Rust, in one place (make deps; the first
# step of make test).
#
# As root with apt-get (a fresh machine, CI), installs whatever is missing:
# the Debian packages below and koffi for the Node.js binding (npm ci, at
# the version bindings/node/package-lock.json pins). Without root it
# installs nothing and lists what is missing; each suite then prints its own
# `SKIPPED:` line naming the command that enables it. Takes about a second
# when everything is present, 1-3 minutes on a fresh machine.
#
#   bash tests/deps.sh            install (root) or report (not root)
#   bash tests/deps.sh --list     print the Debian packages, one per line
#   bash tests/deps.sh --need SUITE PACKAGE:COMMAND-OR-/FILE...
#                                 for a suite's own packages: exit 0 when all
#                                 are present (installing them as root), else
#                                 print "SKIPPED: SUITE: ..." naming the
#                                 command and exit 1
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# package             what needs it (checked by: command or file)
deps=(
    "build-essential    C tests and examples             cmd:cc"
    "pkg-config         C tests, Go binding              cmd:pkg-config"
    "binutils           symbol checks, install test      cmd:objcopy"
    "sparse             __pmem address-space checks      cmd:sparse"
    "valgrind           C tests under Valgrind           cmd:valgrind"
    "libpmem-dev        PMDK collision check, make bench file:/usr/include/libpmem.h"
    "libpmem2-dev       PMDK collision check             file:/usr/include/libpmem2.h"
    "libpmem1           libpmem.so.1 ABI comparison      file:/usr/lib/$(uname -m)-linux-gnu/libpmem.so.1"
    "golang-go          Go binding                       cmd:go"
    "npm                Node.js binding (koffi)          cmd:npm"
    "man-db             man page checks                  cmd:man"
    "groff-base         man page checks                  cmd:groff"
    "gdb                debug-info check of make install cmd:gdb"
    "python3-venv       Python package tests             cmd:python3"
    "fio                README's PMDK example (doc test) cmd:fio"
)

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # Without package lists (a fresh machine) the first attempt fails.
    apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}

if [ "${1:-}" = --need ]; then
    suite=${2:?usage: deps.sh --need SUITE PACKAGE:CHECK...}
    shift 2
    missing=()
    for item in "$@"; do
        pkg=${item%%:*} what=${item#*:}
        if [[ $what == /* ]]; then [ -e "$what" ] && continue; else command -v "$what" >/dev/null && continue; fi
        missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && exit 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "deps: $suite: installing ${missing[*]} with apt-get"
        apt_install "${missing[@]}" && exit 0
        echo "deps: $suite: apt-get install ${missing[*]} failed" >&2
        exit 1
    fi
    echo "SKIPPED: $suite (needs ${missing[*]}: sudo apt-get install ${missing[*]})"
    exit 1
fi

if [ "${1:-}" = --list ]; then
    for d in "${deps[@]}"; do echo "${d%% *}"; done
    exit 0
fi

present() { # check
    case $1 in
    cmd:*) command -v "${1#cmd:}" >/dev/null ;;
    file:*) [ -e "${1#file:}" ] ;;
    esac
}

missing=()
for d in "${deps[@]}"; do
    pkg=${d%% *}
    check=${d##* }
    present "$check" || missing+=("$pkg")
done

root=0
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && root=1

if [ ${#missing[@]} -gt 0 ]; then
    if [ $root = 1 ]; then
        echo "deps: installing with apt-get: ${missing[*]}"
        apt_install "${missing[@]}" || { echo "deps: apt-get install ${missing[*]} failed" >&2; exit 1; }
    else
        echo "deps: not root: nothing installed. Missing: ${missing[*]}"
        echo "deps: the suites that need them print SKIPPED; to run every suite: sudo bash tests/deps.sh (or: sudo apt-get install ${missing[*]})"
    fi
fi

# Minimised Debian images divert man to a stub that prints a notice; the man
# page checks need the real one.
if [ $root = 1 ] && [ -e /usr/bin/man.REAL ]; then
    echo "deps: restoring /usr/bin/man (diverted to a stub by the image's minimisation)"
    rm -f /usr/bin/man && dpkg-divert --quiet --remove --rename /usr/bin/man
fi

# koffi, for the Node.js binding: npm ci at the locked version, skipped when
# node_modules already came from this lock file (the stamp is the one
# bindings/run-tests.sh writes).
node_dir=$here/bindings/node
stamp=$node_dir/node_modules/.pmem-sys-lock.sha256
want=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -e "$node_dir/node_modules/koffi/package.json" ]; then
    if [ $root = 1 ] && command -v npm >/dev/null; then
        echo "deps: npm ci in bindings/node (koffi)"
        (cd "$node_dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) && echo "$want" > "$stamp" ||
            { echo "deps: npm ci in bindings/node failed" >&2; exit 1; }
    elif [ $root = 0 ]; then
        echo "deps: koffi not installed: (cd bindings/node && npm ci) enables the Node.js tests"
    fi
fi
echo "deps: ok"
