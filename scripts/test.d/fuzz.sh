#!/usr/bin/env bash
# Fuzzing smoke run: builds every cargo-fuzz target in fuzz/ and runs each one for a short,
# bounded time (FUZZ_SECONDS, default 20) on a scratch copy of its committed corpus and
# regression inputs, so the committed corpus never churns. A crash fails the step; libFuzzer
# leaves the input in fuzz/artifacts/<target>/ (add it to fuzz/regressions/<target>/).
#
# Installs cargo-fuzz when it is missing. Uses the nightly toolchain when installed; otherwise
# the stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags; machines here can only
# have the stable toolchain). In CI (CI=true) a missing tool is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"

seconds=${FUZZ_SECONDS:-20}

missing() {
    if [ "${CI:-}" = "true" ]; then
        echo "fuzz: $1 is missing (a failure in CI)" >&2
        exit 1
    fi
    echo "fuzz: $1 is missing; skipping the fuzzing smoke run" >&2
    exit 0
}

if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked || missing cargo-fuzz
fi

if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    toolchain=()
    export RUSTC_BOOTSTRAP=1
fi

cargo "${toolchain[@]}" fuzz build

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in $(cargo "${toolchain[@]}" fuzz list); do
    corpus="$scratch/$target"
    mkdir -p "$corpus"
    for dir in "corpus/$target" "regressions/$target"; do
        [ -d "$dir" ] || continue
        find "$dir" -maxdepth 1 -type f ! -name 'README*' -exec cp {} "$corpus/" \;
    done
    echo "fuzz: $target for ${seconds}s on $(find "$corpus" -type f | wc -l) seed inputs"
    if ! cargo "${toolchain[@]}" fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 2>"$scratch/$target.log"; then
        # The tail holds the panic message, the crashing input's path and the final stats.
        tail -n 60 "$scratch/$target.log" >&2
        failed+=("$target")
    else
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' \
            "$scratch/$target.log" || true
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash"
