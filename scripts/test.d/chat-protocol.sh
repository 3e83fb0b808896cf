#!/usr/bin/env bash
# Protocol test of the release `wskit-chat` (SPEC §3, §4) with an independent client, Python
# `websockets` (pinned, in .venv): examples/chat/e2e/protocol.py, once per adapter that
# `--adapter` accepts. Each server gets its own HS256 secret (WSKIT_JWT_SECRET), one allowed
# Origin, and RUST_LOG=debug so that the check for leaked tokens sees everything it logs; the
# last check stops it with SIGINT and expects close 1001, then the server must exit with 0.
# In CI (CI=true) a missing tool is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
CHECK=chat-protocol
# shellcheck source=scripts/lib/chat-server.sh
. scripts/lib/chat-server.sh

WEBSOCKETS_VERSION=17.4
command -v python3 >/dev/null || missing python3
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || missing "python3 venv support"
fi
if ! .venv/bin/python -m pip show websockets 2>/dev/null | grep -q "^Version: $WEBSOCKETS_VERSION\$"; then
    .venv/bin/python -m pip install -q "websockets==$WEBSOCKETS_VERSION" || missing "websockets $WEBSOCKETS_VERSION (pip)"
fi

chat_build || exit 1
origin=http://allowed.example

status=0
ran=()
failed=()
adapters=$(chat_adapters)
[ -n "$adapters" ] || { echo "$CHECK: $CHAT_BIN accepts no adapter"; exit 1; }
for adapter in $adapters; do
    port=$(free_port)
    log=$(mktemp)
    secret="chat-protocol-$RANDOM$RANDOM"
    echo "$CHECK [$adapter]: wskit-chat on 127.0.0.1:$port"
    ok=1
    if WSKIT_JWT_SECRET=$secret RUST_LOG=debug chat_start "$adapter" "$port" "$log" --allowed-origin "$origin"; then
        timeout 300 .venv/bin/python examples/chat/e2e/protocol.py "http://127.0.0.1:$port" \
            --allowed-origin "$origin" --jwt-secret "$secret" \
            --server-pid "$CHAT_PID" --server-log "$log" 2>&1 | sed "s/^/  [$adapter] /"
        [ "${PIPESTATUS[0]}" -eq 0 ] || ok=0
        # The last check sent SIGINT; the server must now exit by itself, with status 0.
        reaped=0
        chat_reap 15 || reaped=$?
        if [ "$reaped" -eq 2 ]; then
            echo "$CHECK [$adapter]: the server was still running after the test"
            chat_stop
            ok=0
        elif [ "$reaped" -ne 0 ]; then
            ok=0
        fi
    else
        ok=0
    fi
    ran+=("$adapter")
    if [ "$ok" -eq 1 ]; then
        echo "$CHECK [$adapter]: ok"
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
