#!/usr/bin/env bash
# Autobahn protocol compliance: kosoku (the Autobahn TestSuite's cases, run natively) against
# the autobahn-echo server, once per adapter wired into it. Cases 12.* and 13.* (permessage-
# deflate) are excluded: wskit does not negotiate compression.
# Passes iff every case is OK, NON-STRICT or INFORMATIONAL. In CI (CI=true) a missing tool is a
# failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/../.."

KOSOKU_VERSION=0.1.0
in_ci() { [ "${CI:-}" = "true" ]; }
missing() {
    if in_ci; then
        echo "autobahn: $1 is missing (CI: failing)"
        exit 1
    fi
    echo "autobahn: $1 is missing; skipping (outside CI)"
    exit 0
}

command -v python3 >/dev/null || missing python3
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || missing "python3 venv support"
fi
if ! .venv/bin/python -m pip show kosoku 2>/dev/null | grep -q "^Version: $KOSOKU_VERSION\$"; then
    .venv/bin/python -m pip install -q "kosoku==$KOSOKU_VERSION" || missing "kosoku $KOSOKU_VERSION (pip)"
fi
[ -x .venv/bin/kosoku ] || missing kosoku

cargo build --release --locked -q -p wskit-tests --bin autobahn-echo || exit 1
bin=target/release/autobahn-echo

free_port() {
    .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=""
    fi
}
trap stop_server EXIT

status=0
for adapter in $("$bin" --list-adapters); do
    port=$(free_port)
    log=$(mktemp)
    "$bin" --adapter "$adapter" --addr "127.0.0.1:$port" 2>"$log" &
    server_pid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    report=$(mktemp -d)
    timeout 900 .venv/bin/kosoku -x '12.*' -x '13.*' -o "$report" "127.0.0.1:$port" >"$report/kosoku.out" 2>&1
    rc=$?
    stop_server
    counts=$(.venv/bin/python - "$report" <<'PY'
import collections, glob, json, os, sys
counts = collections.Counter()
bad = []
for path in glob.glob(os.path.join(sys.argv[1], "*_case_*.json")):
    with open(path) as f:
        case = json.load(f)
    counts[case.get("behavior")] += 1
    if case.get("behavior") not in ("OK", "NON-STRICT", "INFORMATIONAL"):
        bad.append(f'{case.get("id")}: {case.get("behavior")} / close {case.get("behaviorClose")}')
total = sum(counts.values())
print(f"{total} cases: {counts['OK']} OK, {counts['NON-STRICT']} NON-STRICT, "
      f"{counts['INFORMATIONAL']} INFORMATIONAL, {total - counts['OK'] - counts['NON-STRICT'] - counts['INFORMATIONAL']} failed")
for line in sorted(bad):
    print("  " + line)
sys.exit(1 if bad or total == 0 else 0)
PY
)
    parsed=$?
    echo "autobahn [$adapter]: $counts"
    if [ "$rc" -ne 0 ] || [ "$parsed" -ne 0 ]; then
        echo "autobahn [$adapter]: FAILED (kosoku exit $rc); kosoku output:"
        tail -20 "$report/kosoku.out"
        echo "server log:"
        tail -20 "$log"
        status=1
    fi
    rm -rf "$report" "$log"
done
exit $status
