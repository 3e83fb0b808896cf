#!/usr/bin/env bash
# wskit-chat against the Bun peer, side by side, per server CPU-second.
#
# Builds release wskit-chat and wsbench, installs the Bun peer (npm ci) if missing, then for each
# round runs every server in turn (order alternating between rounds), a fresh server process per
# run, pinned with `taskset -c 0` while wsbench runs on `taskset -c 1`:
#   room  (200 members, 10 senders, closed loop)      deliveries per server CPU-second, p99
#   echo  (50 connections, closed loop)                round trips per server CPU-second, p99
#   room and echo again at a fixed offered load (--room-rate, --echo-rate): p99 at the same load
# then idle (10,000 authenticated connections: server RSS per connection), and a connection-count
# sweep of `room` (wskit tokio and Bun) plotted to benches/results/room-sweep.png.
# Prints a Markdown table of medians and ratios against Bun (also saved next to the JSON lines).
#
# Usage: benches/compare.sh [--rounds N] [--warmup S] [--duration S] [--long] [--no-sweep]
#                           [--no-idle] [--adapters "tokio async-std blocking"] [--out DIR]
#                           [--sweep "50 200 1000"] [--room-rate N] [--echo-rate N] [--no-build]
# Default run: about 9 minutes with four servers. --long: 5 rounds of 10 s and a wider sweep
# (about 30 minutes).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCHES="$ROOT/benches"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
ROUNDS=3 WARMUP=1.5 DURATION=4 SWEEP=1 SWEEP_ROUNDS=2 IDLE=1 BUILD=1 ADAPTERS="" OUT="$BENCHES/results"
ROOM_RATE=1000 ECHO_RATE=8000 IDLE_CONNS=10000
SWEEP_MEMBERS="50 200 1000 5000"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --long) ROUNDS=5 DURATION=10 SWEEP_ROUNDS=3 SWEEP_MEMBERS="20 50 200 1000 3000 8000"; shift ;;
    --no-sweep) SWEEP=0; shift ;;
    --sweep) SWEEP_MEMBERS=$2; shift 2 ;;
    --no-idle) IDLE=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --adapters) ADAPTERS=$2; shift 2 ;;
    --room-rate) ROOM_RATE=$2; shift 2 ;;
    --echo-rate) ECHO_RATE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"

if ((BUILD)); then
  echo "== building release wskit-chat and wsbench (target: $TARGET)"
  (cd "$ROOT" && cargo build --release -p wskit-chat -p wskit-bench --bin wskit-chat --bin wsbench)
fi
CHAT="$TARGET/release/wskit-chat"
WSBENCH="$TARGET/release/wsbench"

BUN_DIR="$BENCHES/peers/bun"
BUN="$BUN_DIR/node_modules/@oven/bun-linux-x64/bin/bun"
if [[ ! -x "$BUN" || ! -d "$BUN_DIR/node_modules/zod" ]]; then
  echo "== installing the Bun peer (bun, zod) with npm ci"
  (cd "$BUN_DIR" && npm ci --no-audit --no-fund)
fi

if [[ -z "$ADAPTERS" ]]; then
  # Whichever adapters this wskit-chat offers: clap lists them when given a value it lacks.
  ADAPTERS=$({ "$CHAT" --adapter '?' 2>&1 || true; } | sed -n 's/.*possible values: \([^]]*\)\].*/\1/p' | tr -d ',')
  ADAPTERS=${ADAPTERS:-tokio}
fi
SERVERS=()
for a in $ADAPTERS; do SERVERS+=("wskit-$a"); done
SERVERS+=(bun)
echo "== servers: ${SERVERS[*]}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PORT=3917
SERVER_PID=""
start_server() { # name
  local name=$1
  case "$name" in
    wskit-*) RUST_LOG=warn taskset -c 0 "$CHAT" --addr "127.0.0.1:$PORT" --adapter "${name#wskit-}" \
               >"$OUT/server-$name.log" 2>&1 &
             SERVER_PID=$! ;;
    bun) (cd "$BUN_DIR" && exec taskset -c 0 "$BUN" server.ts --port "$PORT") \
               >"$OUT/server-$name.log" 2>&1 &
         SERVER_PID=$! ;;
  esac
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server $name did not start; log:" >&2; cat "$OUT/server-$name.log" >&2; exit 1
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  PORT=$((PORT + 1)) # a fresh port: no TIME_WAIT leftovers between runs
}
trap '[[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null; true' EXIT

run() { # jsonl name args...
  local jsonl=$1 name=$2; shift 2
  start_server "$name"
  echo "-- $name: wsbench $*"
  local out
  out=$(taskset -c 1 "$WSBENCH" "$@" --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --label "$name" --warmup "$WARMUP" --duration "$DURATION" --json) || echo "   (run failed)"
  grep '^{' <<<"$out" >>"$jsonl" || true
  grep -v '^{' <<<"$out" | sed 's/^/   /' || true
  stop_server
}

STAMP=$(date +%Y%m%d-%H%M%S)
JSONL="$OUT/compare-$STAMP.jsonl"
echo "== $ROUNDS rounds, warmup $WARMUP s, window $DURATION s; results in $JSONL"
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${SERVERS[@]}")
  if ((r % 2 == 0)); then # alternate the order so drift in machine load hits all servers alike
    order=(); for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[i]}"); done
  fi
  echo "== round $r: ${order[*]}"
  for s in "${order[@]}"; do
    run "$JSONL" "$s" room --members 200 --senders 10
    run "$JSONL" "$s" echo --conns 50
    # The same at a fixed offered load, for p99 at the same load.
    run "$JSONL" "$s" room --members 200 --senders 10 --rate "$ROOM_RATE"
    run "$JSONL" "$s" echo --conns 50 --rate "$ECHO_RATE"
  done
done
if ((IDLE)); then
  echo "== idle: $IDLE_CONNS authenticated connections"
  for s in "${SERVERS[@]}"; do run "$JSONL" "$s" idle --conns "$IDLE_CONNS"; done
fi

if ((SWEEP)); then
  SWEEP_JSONL="$OUT/sweep-$STAMP.jsonl"
  echo "== sweep: room members $SWEEP_MEMBERS (10 senders); results in $SWEEP_JSONL"
  for ((r = 1; r <= SWEEP_ROUNDS; r++)); do
    for m in $SWEEP_MEMBERS; do
      pair=("wskit-tokio" bun); ((r % 2 == 0)) && pair=(bun "wskit-tokio")
      for s in "${pair[@]}"; do run "$SWEEP_JSONL" "$s" room --members "$m" --senders 10; done
    done
  done
  "$WSBENCH" plot --input "$SWEEP_JSONL" --out "$OUT/room-sweep.png" --scenario room \
    --rate deliveries --title "room fan-out, 10 senders x window 8, closed loop: wskit-chat (tokio) vs Bun, server on one core (medians of $SWEEP_ROUNDS)"
fi

if [[ -s "$JSONL" ]]; then
  echo
  echo "== summary (medians; ratios against bun)"
  "$WSBENCH" compare --input "$JSONL" --baseline bun | tee "$OUT/compare-$STAMP.md"
fi
