#!/usr/bin/env bash
# The chat page's script type-checks (tsc --strict --checkJs) against the types that
# `wskit-chat export` generates from the running server's routes.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund --loglevel=error
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run --quiet --locked -p wskit-chat -- export --out "$out"
cp examples/chat/web/app.js "$out/app.js"
node_modules/.bin/tsc --strict --noEmit --allowJs --checkJs --target es2022 --lib es2022,dom \
    --module esnext --moduleResolution bundler --skipLibCheck "$out/app.js"
echo "chat page: app.js type-checks against the exported websocket-types.ts"
