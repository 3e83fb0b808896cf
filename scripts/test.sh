#!/usr/bin/env bash
# The whole test suite. Installs what it needs where it can; in CI (CI=true) a missing tool is
# a failure, never a skip. Ends with the line `N passed, N failed`.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()

step() {
    local name=$1
    shift
    echo "==> $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "<== $name: ok"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "<== $name: FAILED"
    fi
}

# Rust tests: count the individual tests cargo reports, not just the step.
cargo_tests() {
    local log
    log=$(mktemp)
    cargo test --locked "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    local p f
    p=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | paste -sd+ | bc)
    f=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | paste -sd+ | bc)
    rust_passed=$((rust_passed + ${p:-0}))
    rust_failed=$((rust_failed + ${f:-0}))
    rm -f "$log"
    return "$status"
}

command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc >/dev/null; }

# Tools the Rust tests themselves use (the Redis backplane tests start their own redis-server).
step "install redis-server" bash scripts/install-redis.sh

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
rust_passed=0
rust_failed=0
step "cargo test --workspace" cargo_tests --workspace
step "cargo test -p wskit --features garde" cargo_tests -p wskit --features garde
step "no runtime in the core" bash -c '! cargo tree -p wskit -e normal --locked | grep -E "\b(tokio|async-std|smol|mio|tungstenite)\b"'

for extra in scripts/test.d/*.sh; do
    [ -e "$extra" ] || continue
    step "$(basename "$extra" .sh)" bash "$extra"
done

total_passed=$((passed + rust_passed))
total_failed=$((failed + rust_failed))
if [ ${#failures[@]} -gt 0 ]; then
    echo "failed steps: ${failures[*]}"
fi
echo "$total_passed passed, $total_failed failed"
[ "$failed" -eq 0 ]
