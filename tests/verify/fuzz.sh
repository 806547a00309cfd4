#!/usr/bin/env bash
# make fuzz FUZZ_SECONDS=N: runs every cargo-fuzz target of pmem-sys/fuzz for
# N seconds each (AddressSanitizer, release with debug assertions).
#
# Needs a nightly toolchain beside stable; prints SKIPPED without one.
# Installs cargo-fuzz into ~/.cargo/bin on a fresh machine. The corpus
# grows in pmem-sys/fuzz/corpus/<target> (not committed); a crash leaves
# its input in pmem-sys/fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail

secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
fuzz_dir=$root/pmem-sys/fuzz
target_dir=$root/target/fuzz
export PATH=$HOME/.cargo/bin:$PATH

case $secs in
    '' | *[!0-9]*) echo "fuzz.sh: FUZZ_SECONDS must be a whole number of seconds, not '$secs'" >&2; exit 2 ;;
esac

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "SKIPPED: fuzzing (no nightly toolchain; cargo-fuzz needs one: rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked --quiet
fi

cd "$fuzz_dir"
flags=(-O -a --target-dir "$target_dir")
echo "== building the fuzz targets ($(cargo +nightly fuzz --version), $(rustc +nightly --version))"
cargo +nightly fuzz build "${flags[@]}"

status=0
for t in $(cargo +nightly fuzz list); do
    echo "== fuzz $t for ${secs}s"
    mkdir -p "corpus/$t"
    log=$(mktemp)
    if cargo +nightly fuzz run "${flags[@]}" "$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
        echo "   $t: ${runs:-?} runs in ${secs}s, ${cov:-cov: ?}, no failure"
    else
        status=1
        # The cause (a panic message, a sanitizer report) comes well before
        # the input dump at the end: show both.
        grep -m1 -A12 -E "panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)" "$log" || true
        echo "..."
        tail -40 "$log"
        echo "FAILED: fuzz target $t; the input is in $fuzz_dir/artifacts/$t/"
        echo "  reproduce: (cd $fuzz_dir && cargo +nightly fuzz run ${flags[*]} $t artifacts/$t/<file>)"
    fi
    rm -f "$log"
done
exit $status
