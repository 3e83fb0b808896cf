#!/usr/bin/env bash
# Type export check (SPEC §5): regenerates the chat routes' export, compiles the TypeScript with
# the real `tsc --strict` next to a client that narrows on `message.type` (and must reject a
# wrong message), and validates the AsyncAPI documents with the real @asyncapi/parser.
# The tricky-shapes golden is compiled and validated too.
#
# Node packages come from the committed package.json + package-lock.json (`npm ci`).
# In CI (CI=true) a missing tool is a failure; elsewhere the check is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing() {
    if [ "${CI:-}" = "true" ]; then
        echo "typescript check: $1 is missing (required in CI)" >&2
        exit 1
    fi
    echo "typescript check: SKIPPED, $1 is missing (install it to run this check)"
    exit 0
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "installing Node.js from Debian packages"
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null || true
    fi
fi
command -v node >/dev/null || missing "node"
command -v npm >/dev/null || missing "npm"
command -v cargo >/dev/null || missing "cargo"

if [ ! -x node_modules/.bin/tsc ] || [ ! -d node_modules/@asyncapi/parser ]; then
    echo "installing the pinned npm devDependencies (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "generating the chat export"
cargo run --quiet --locked -p wskit --features garde --example export_chat -- --out "$out/chat"

golden=core/tests/golden
if ! diff -ru "$golden/chat" "$out/chat" >"$out/golden.diff"; then
    cat "$out/golden.diff"
    echo "the chat export differs from $golden/chat: regenerate it with" >&2
    echo "  UPDATE_GOLDEN=1 cargo test -p wskit --features garde --test export_golden" >&2
    exit 1
fi

tsc_flags=(--strict --noEmit --target es2022 --lib es2022,dom --module esnext
    --moduleResolution bundler --forceConsistentCasingInFileNames)

cp core/tests/ts/client.ts "$out/chat/client.ts"
echo "tsc --strict: chat websocket-types.ts + client.ts"
node_modules/.bin/tsc "${tsc_flags[@]}" "$out/chat/client.ts"
echo "tsc --strict: shapes websocket-types.ts"
node_modules/.bin/tsc "${tsc_flags[@]}" "$golden/shapes/websocket-types.ts"

echo "@asyncapi/parser: asyncapi.json"
node core/tests/ts/validate-asyncapi.mjs "$out/chat/asyncapi.json" "$golden/shapes/asyncapi.json"

echo "typescript check: ok ($(node_modules/.bin/tsc --version), @asyncapi/parser $(node -p 'require("./node_modules/@asyncapi/parser/package.json").version'))"
