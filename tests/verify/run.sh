#!/usr/bin/env bash
# make test-verify: the verification legs of issue 7.
#
#   0. cargo fmt --check over the workspace and the fuzz crate
#      (rustfmt.toml);
#   1. the persistence checker over every tier this CPU runs (skipped
#      tiers are named), the broken-record tests, the dispatch coverage,
#      the API's routing by granularity (no write-back into byte- and
#      page-granular mappings, write-backs into cache-line ones);
#   2. cargo clippy -D warnings on pmem-sys, all features, all targets;
#   3. Miri on the pure unit tests (SKIPPED where nightly has no miri);
#   4. the C tests under AddressSanitizer + UndefinedBehaviorSanitizer;
#   5. the C tests under Valgrind memcheck;
#   6. a fuzz smoke, about a minute over all targets, as root or when
#      CI=true or FUZZ_SMOKE=1 (otherwise SKIPPED; `make fuzz` runs it on demand).
#
# Every leg runs even when an earlier one fails; the summary lists each
# as passed, FAILED or SKIPPED, and the exit status is 1 if any failed.
# Set VERIFY_ONLY="checker clippy ..." to run some legs only.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export PATH=$HOME/.cargo/bin:$PATH
CARGO=${CARGO:-cargo}
stage=$root/build/stage
out=$root/build/verify
mkdir -p "$out"

summary=()
failed=0
leg() { echo; echo "=== verify: $*"; }
pass() { summary+=("passed   $1"); }
fail() { summary+=("FAILED   $1"); failed=1; }
skip() { echo "SKIPPED: $1 ($2)"; summary+=("SKIPPED  $1 ($2)"); }
wanted() { [ -z "${VERIFY_ONLY:-}" ] || [[ " $VERIFY_ONLY " == *" $1 "* ]]; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
    command -v apt-get >/dev/null || return 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
        { as_root apt-get update -q >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; }
}

# ---- 0. formatting -----------------------------------------------------------
if wanted fmt; then
    leg "cargo fmt --check (workspace and pmem-sys/fuzz)"
    if ! $CARGO fmt --version >/dev/null 2>&1; then
        skip "cargo fmt --check" "rustfmt is not installed (rustup component add rustfmt)"
    elif $CARGO fmt --all --check && $CARGO fmt --manifest-path pmem-sys/fuzz/Cargo.toml --all --check; then
        pass "cargo fmt --check"
    else
        fail "cargo fmt --check (run cargo fmt --all)"
    fi
fi

# ---- 1. the persistence checker -------------------------------------------
if wanted checker; then
    leg "persistence checker (release, feature record)"
    if $CARGO test -p pmem-sys --release --features record --lib \
        --test persistence --test persistence_broken --test persistence_dispatch --test persistence_routing \
        --test persistence_flags \
        -- --nocapture --test-threads=1; then
        pass "persistence checker, broken records, dispatch coverage, routing by granularity"
    else
        fail "persistence checker, broken records, dispatch coverage, routing by granularity"
    fi
fi

# ---- 2. clippy ----------------------------------------------------------------
if wanted clippy; then
    leg "clippy -D warnings (pmem-sys, all features, all targets)"
    # As for Miri below: no rustup downloads from a script.
    if ! $CARGO clippy --version >/dev/null 2>&1; then
        skip "clippy" "cargo clippy is not installed (rustup component add clippy)"
    elif $CARGO clippy -p pmem-sys --all-features --all-targets -- -D warnings; then
        pass "clippy -D warnings"
    else
        fail "clippy -D warnings"
    fi
fi

# ---- 3. Miri ----------------------------------------------------------------------
# The pure unit tests (knob parsing, the selection ladder, the split
# arithmetic, the dirty-range merging, the C constants) and
# tests/persistence_miri.rs (the algorithm's no-flush leaves). Tests that
# run CPUID, inline assembly or mmap are left out: Miri cannot execute
# them; so is the exhaustive ladder enumeration, which takes Miri an hour.
miri_tests=(engine::knobs:: engine::dispatch:: engine::algo:: engine::detect::tests::names mapping::dirty:: capi::tests:: noflush_leaves)
if wanted miri; then
    leg "Miri (nightly)"
    if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        skip "Miri" "no nightly toolchain"
    else
        # Only a component already installed: rustup would download from
        # static.rust-lang.org, which is not one of the registries CI may use.
        installed=$(rustup component list --toolchain nightly --installed 2>/dev/null)
        if ! grep -q '^miri' <<<"$installed"; then
            skip "Miri" "the nightly toolchain has no miri component (rustup component add miri rust-src --toolchain nightly)"
        elif ! grep -q '^rust-src' <<<"$installed"; then
            # cargo miri setup would ask rustup to download rust-src.
            skip "Miri" "the nightly toolchain has no rust-src component, which Miri's sysroot needs (rustup component add rust-src --toolchain nightly)"
        elif ! timeout 600 $CARGO +nightly miri setup >/dev/null 2>&1; then
            skip "Miri" "cargo miri setup failed (it needs the rust-src component)"
        else
            filters=()
            for t in "${miri_tests[@]}"; do filters+=("$t"); done
            if MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}" \
                $CARGO +nightly miri test -p pmem-sys --features capi --lib --test persistence_miri -- \
                "${filters[@]}" --skip every_table_is_reachable; then
                pass "Miri (${miri_tests[*]})"
            else
                fail "Miri"
            fi
        fi
    fi
fi

# ---- the staged library, for the C legs ------------------------------------------------
c_legs_possible=1
if wanted asan || wanted valgrind; then
    leg "staging the library (make stage)"
    if [ ! -f tests/c/Makefile ]; then
        c_legs_possible=0
        skip "C tests under sanitizers and Valgrind" "tests/c/Makefile not found"
    elif ! make --no-print-directory stage >"$out/stage.log" 2>&1; then
        tail -20 "$out/stage.log"
        c_legs_possible=0
        fail "make stage (needed by the C legs)"
    fi
fi

# ---- 4. ASan + UBSan --------------------------------------------------------------------
if wanted asan && [ $c_legs_possible = 1 ]; then
    leg "C tests under AddressSanitizer + UndefinedBehaviorSanitizer (gcc)"
    san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    probe() { echo 'int main(void){return 0;}' | ${CC:-gcc} $san -x c - -o "$out/asan-probe" >/dev/null 2>&1; }
    probe || apt_install libasan8 libubsan1 || true
    if ! probe; then
        skip "C tests under ASan+UBSan" "${CC:-gcc} cannot link -fsanitize=address,undefined (libasan/libubsan missing)"
    elif ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
        make --no-print-directory -C tests/c STAGE="$stage" BUILD_DIR="$out/asan" \
        EXTRA_CFLAGS="$san" EXTRA_LDFLAGS="$san" test; then
        pass "C tests under ASan+UBSan"
    else
        fail "C tests under ASan+UBSan"
    fi
fi

# ---- 5. Valgrind memcheck ------------------------------------------------------------
# Valgrind knows no AVX-512, and older releases lack CLWB or CLFLUSHOPT.
# The table is forced down one knob at a time, only when Valgrind reports
# an instruction it cannot decode; the table used is printed.
if wanted valgrind && [ $c_legs_possible = 1 ]; then
    leg "C tests under Valgrind memcheck"
    command -v valgrind >/dev/null || apt_install valgrind || true
    if ! command -v valgrind >/dev/null; then
        skip "C tests under Valgrind" "valgrind is not installed and apt-get could not install it"
    else
        vg="valgrind -q --error-exitcode=99 --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite"
        configs=("" "PMEM_SYS_NO_AVX512F=1" "PMEM_SYS_NO_AVX512F=1 PMEM_SYS_NO_CLWB=1"
            "PMEM_SYS_NO_AVX512F=1 PMEM_SYS_NO_CLWB=1 PMEM_SYS_NO_CLFLUSHOPT=1"
            "PMEM_SYS_NO_AVX512F=1 PMEM_SYS_NO_AVX2=1 PMEM_SYS_NO_CLWB=1 PMEM_SYS_NO_CLFLUSHOPT=1"
            "PMEM_SYS_NO_MOVNT=1 PMEM_SYS_NO_CLWB=1 PMEM_SYS_NO_CLFLUSHOPT=1")
        vg_ok=0
        for knobs in "${configs[@]}"; do
            echo "--- valgrind $(valgrind --version), knobs: ${knobs:-none}"
            log=$out/valgrind.log
            # shellcheck disable=SC2086 # knobs is a list of NAME=VALUE words
            env $knobs make --no-print-directory -C tests/c STAGE="$stage" BUILD_DIR="$out/valgrind" \
                TEST_WRAPPER="$vg" test >"$log" 2>&1
            rc=$?
            if [ $rc = 0 ]; then
                cat "$log"
                vg_ok=1
                break
            fi
            if grep -q "unhandled instruction bytes\|Illegal opcode\|unrecognised instruction" "$log"; then
                echo "valgrind cannot decode an instruction of this table; forcing the next one down"
                continue
            fi
            cat "$log"
            break
        done
        if [ $vg_ok = 1 ]; then pass "C tests under Valgrind (knobs: ${knobs:-none})"; else fail "C tests under Valgrind"; fi
    fi
fi

# ---- 6. fuzz smoke ---------------------------------------------------------------------
if wanted fuzz; then
    leg "fuzz smoke"
    # Run as root (a fresh machine set up by `make test`, and CI) or on
    # request; a user's unprivileged run skips it, saying how to run it.
    if [ "${CI:-}" = true ] || [ "${FUZZ_SMOKE:-}" = 1 ] || [ "$(id -u)" = 0 ]; then
        # About a minute in all: 30 s for each of the two targets.
        log=$out/fuzz.log
        bash tests/verify/fuzz.sh "${FUZZ_SMOKE_SECONDS:-30}" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        if grep -q '^SKIPPED' "$log"; then
            summary+=("SKIPPED  fuzz smoke ($(grep -m1 '^SKIPPED' "$log" | sed 's/^SKIPPED: //'))")
        elif [ "$rc" = 0 ]; then
            pass "fuzz smoke (${FUZZ_SMOKE_SECONDS:-30} s per target)"
        else
            fail "fuzz smoke"
        fi
    else
        skip "fuzz smoke" "runs as root, or with CI=true or FUZZ_SMOKE=1: FUZZ_SMOKE=1 make test-verify; make fuzz FUZZ_SECONDS=N runs it on demand"
    fi
fi

echo
echo "=== verify: summary"
for s in "${summary[@]}"; do echo "  $s"; done
exit $failed
