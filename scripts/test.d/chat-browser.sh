#!/usr/bin/env bash
# End-to-end test of the chat page in headless Chromium (Debian's `chromium`, driven by the pinned
# npm `playwright-core`): examples/chat/e2e/chat.spec.mjs against the release `wskit-chat`, once
# per adapter its `--adapter` accepts. Each server runs with `--allowed-origin` set to the page's
# own origin; mid-scenario it is restarted (SIGINT, clean exit, same port) and both pages must
# reconnect and re-join their room. Screenshots go to ${CARGO_TARGET_DIR:-target}/e2e/.
# In CI (CI=true) a missing tool is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
CHECK=chat-browser
# shellcheck source=scripts/lib/chat-server.sh
. scripts/lib/chat-server.sh

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "$CHECK: installing chromium from Debian packages"
    { apt-get update -qq && apt-get install -y -qq chromium; } >/dev/null 2>&1
fi
[ -x "$chromium" ] || missing "chromium ($chromium)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -qq && apt-get install -y -qq nodejs npm; } >/dev/null 2>&1
    fi
fi
command -v node >/dev/null || missing node
command -v python3 >/dev/null || missing python3
if [ ! -f node_modules/playwright-core/package.json ]; then
    npm ci --no-audit --no-fund --loglevel=error || missing "playwright-core (npm ci)"
fi
export CHROMIUM="$chromium"

chat_build || exit 1
artifacts=${CARGO_TARGET_DIR:-target}/e2e
mkdir -p "$artifacts"

# run_scenario ADAPTER PORT LOG: runs the page scenario; on its `RESTART` line restarts the
# server on the same port and answers `restarted` (or `failed`).
run_scenario() {
    local adapter=$1 port=$2 log=$3 status=0 line from to e2e_pid
    coproc E2E {
        CHAT_RESTART=stdio exec timeout 300 node examples/chat/e2e/chat.spec.mjs \
            "http://127.0.0.1:$port" "$artifacts/chat-$adapter.png" 2>&1
    }
    # shellcheck disable=SC2153 # E2E_PID is set by coproc
    e2e_pid=$E2E_PID
    exec {from}<&"${E2E[0]}" {to}>&"${E2E[1]}"
    while IFS= read -r line <&"$from"; do
        echo "  [$adapter] $line"
        if [ "$line" = RESTART ]; then
            echo "  [$adapter] restarting the server"
            if chat_stop && chat_start "$adapter" "$port" "$log" --allowed-origin "http://127.0.0.1:$port"; then
                echo restarted >&"$to"
            else
                status=1
                echo failed >&"$to"
            fi
        fi
    done
    wait "$e2e_pid" || status=1
    exec {from}<&- {to}>&-
    return "$status"
}

status=0
ran=()
failed=()
adapters=$(chat_adapters)
[ -n "$adapters" ] || { echo "$CHECK: $CHAT_BIN accepts no adapter"; exit 1; }
for adapter in $adapters; do
    port=$(free_port)
    log=$(mktemp)
    echo "$CHECK [$adapter]: wskit-chat on 127.0.0.1:$port"
    ok=1
    if chat_start "$adapter" "$port" "$log" --allowed-origin "http://127.0.0.1:$port"; then
        run_scenario "$adapter" "$port" "$log" || ok=0
        chat_stop || ok=0
    else
        ok=0
    fi
    ran+=("$adapter")
    if [ "$ok" -eq 1 ]; then
        echo "$CHECK [$adapter]: ok (screenshot $artifacts/chat-$adapter.png)"
    else
        failed+=("$adapter")
        status=1
        echo "$CHECK [$adapter]: FAILED; server log:"
        tail -30 "$log"
    fi
    rm -f "$log"
done
chat_summary "${ran[*]}" "${failed[*]}"
exit "$status"
