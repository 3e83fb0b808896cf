# shellcheck shell=bash
# Sourced by scripts/test.d/chat-browser.sh and chat-protocol.sh: builds the release
# `wskit-chat`, lists the adapters its `--adapter` accepts (of tokio, async-std, smol,
# blocking), and starts/stops it on a port.
# Callers set CHECK (their name, for messages) and run from the repository root.

in_ci() { [ "${CI:-}" = "true" ]; }

# missing WHAT: in CI a missing tool fails the check; elsewhere the check is skipped.
missing() {
    if in_ci; then
        echo "$CHECK: $1 is missing (CI: failing)"
        exit 1
    fi
    echo "$CHECK: $1 is missing; skipping (outside CI)"
    exit 0
}

# Builds the server; sets CHAT_BIN. A CHAT_BIN already set (a binary built elsewhere) is used
# as it is.
chat_build() {
    if [ -n "${CHAT_BIN:-}" ]; then
        [ -x "$CHAT_BIN" ] || { echo "$CHECK: CHAT_BIN=$CHAT_BIN is not executable"; return 1; }
        return 0
    fi
    cargo build --release --locked -q -p wskit-chat || return 1
    CHAT_BIN=${CARGO_TARGET_DIR:-target}/release/wskit-chat
}

CHAT_ADAPTERS=${CHAT_ADAPTERS:-"tokio async-std smol blocking"}

# The adapters of CHAT_ADAPTERS that `wskit-chat --adapter` accepts (clap refuses
# an unknown value before it prints the help).
chat_adapters() {
    local a
    for a in $CHAT_ADAPTERS; do
        "$CHAT_BIN" --adapter "$a" --help >/dev/null 2>&1 && echo "$a"
    done
}

# chat_summary RAN FAILED: names the adapters not run, run and failed.
chat_summary() {
    local a
    for a in $CHAT_ADAPTERS; do
        case " $1 " in *" $a "*) ;; *) echo "$CHECK: $a not run (wskit-chat --adapter does not accept it)" ;; esac
    done
    echo "$CHECK: adapters run: $1; failed: ${2:-none}"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True while CHAT_PID runs (a zombie, exited but not yet reaped, does not count).
chat_running() {
    local state
    state=$(awk '{print $3}' "/proc/$CHAT_PID/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# chat_start ADAPTER PORT LOG [ARGS...]: starts the server (log appended to LOG), sets
# CHAT_PID, waits up to 10 s for it to listen.
chat_start() {
    local adapter=$1 port=$2 log=$3
    shift 3
    "$CHAT_BIN" --adapter "$adapter" --addr "127.0.0.1:$port" "$@" >>"$log" 2>&1 &
    CHAT_PID=$!
    local _
    for _ in $(seq 100); do
        chat_running || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$CHECK [$adapter]: the server did not start listening on port $port; its log:"
    tail -20 "$log"
    chat_stop >/dev/null
    return 1
}

# chat_reap [SECONDS]: waits (default 15 s) for CHAT_PID to exit by itself; 0 iff it exited
# with status 0, 2 if it is still running.
chat_reap() {
    [ -n "${CHAT_PID:-}" ] || return 0
    local _
    for _ in $(seq "$((${1:-15} * 10))"); do
        chat_running || break
        sleep 0.1
    done
    chat_running && return 2
    local status=0
    wait "$CHAT_PID" || status=$?
    CHAT_PID=""
    if [ "$status" -ne 0 ]; then
        echo "$CHECK: the server exited with status $status"
        return 1
    fi
}

# Stops the server with SIGINT (Ctrl-C) and checks that it exits cleanly within 15 s;
# SIGKILL and failure otherwise.
chat_stop() {
    [ -n "${CHAT_PID:-}" ] || return 0
    kill -INT "$CHAT_PID" 2>/dev/null
    local status=0
    chat_reap 15 || status=$?
    if [ "$status" -eq 2 ]; then
        echo "$CHECK: the server did not stop within 15 s of SIGINT; killing it"
        kill -KILL "$CHAT_PID" 2>/dev/null
        wait "$CHAT_PID" 2>/dev/null
        CHAT_PID=""
    fi
    return "$status"
}
