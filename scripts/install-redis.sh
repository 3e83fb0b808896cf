#!/usr/bin/env bash
# Installs redis-server (Debian package) for the Redis backplane tests, when it is missing.
# The tests start their own private instance on a free port; nothing is started here, and the
# package's system service is left alone (stopped where this script could install it).
# In CI (CI=true) a failed install is an error; elsewhere a warning (the tests then skip loudly).
set -uo pipefail

if command -v redis-server >/dev/null 2>&1; then
    echo "redis-server: $(redis-server --version | head -n1)"
    exit 0
fi

fail() {
    if [ "${CI:-}" = "true" ]; then
        echo "install-redis: $1" >&2
        exit 1
    fi
    echo "install-redis: WARNING: $1; the Redis backplane tests will be skipped" >&2
    exit 0
}

command -v apt-get >/dev/null 2>&1 || fail "no apt-get: install redis-server by hand"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo: install redis-server by hand"
    sudo="sudo"
fi

echo "install-redis: apt-get install redis-server"
# policy-rc.d keeps the package from starting its own service (the tests run their own).
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && made_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
{ $sudo apt-get install -y -qq redis-server >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq redis-server >/dev/null 2>&1; }; }
status=$?
[ -n "$made_policy" ] && $sudo rm -f "$policy"
[ $status -eq 0 ] || fail "apt-get install redis-server failed"
command -v redis-server >/dev/null 2>&1 || fail "redis-server still not on PATH after the install"
echo "redis-server: $(redis-server --version | head -n1)"
