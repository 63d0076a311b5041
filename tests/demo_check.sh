#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/demo_check.sh: the README's main command tried as a new user would: starts
# scripts/demo.sh, waits (bounded) until the dashboard and the emojivoto data are served,
# then presses Ctrl-C (SIGINT to the demo) and checks that it stopped everything it started.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/meshprom-demo.XXXXXX)
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
  console.log(s.address().port); s.close(); })' 2>/dev/null || echo 29090)
listen="127.0.0.1:$port"
fail() { echo "demo: FAIL: $*"; tail -20 "$work/demo.log" || true; exit 1; }

# A background job of a script starts with SIGINT ignored, and a shell cannot trap a signal
# ignored at entry: restore the default so that the demo sees Ctrl-C as from a terminal.
setsid env --default-signal=INT MESHPROM_DEMO_LISTEN="$listen" MESHPROM_DEMO_DATA="$work/data" \
  "$src/scripts/demo.sh" > "$work/demo.log" 2>&1 &
demo=$!
cleanup() {
  kill -KILL -- "-$demo" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

query='sum(increase(response_total{direction="inbound", namespace="emojivoto"}[1m])) by (deployment)'
ok=""
for _ in $(seq 1 240); do # the first run may still be building: up to 4 minutes
  if curl -fsS "http://$listen/" 2>/dev/null | grep -q '<base href="/">' &&
     curl -fsS "http://$listen/api/v1/query" --data-urlencode "query=$query" 2>/dev/null |
       grep -q '"deployment":"web"'; then
    ok=1; break
  fi
  kill -0 "$demo" 2>/dev/null || fail "the demo exited early"
  sleep 1
done
[ -n "$ok" ] || fail "no dashboard or no emojivoto data on $listen"
grep -q "dashboard at http://$listen/" "$work/demo.log" || fail "the demo did not print the dashboard URL"
for p in /static/app.js /static/uPlot.iife.min.js /namespaces/emojivoto /graph /targets; do
  curl -fsS -o /dev/null "http://$listen$p" || fail "GET $p"
done

# Ctrl-C: SIGINT to the demo script; it must stop meshsim and meshprom and exit.
children=$(pgrep -g "$demo" | grep -v "^$demo$" || true)
kill -INT "$demo"
for _ in $(seq 1 100); do kill -0 "$demo" 2>/dev/null || break; sleep 0.2; done
kill -0 "$demo" 2>/dev/null && fail "the demo did not exit on Ctrl-C"
for c in $children; do
  for _ in $(seq 1 50); do kill -0 "$c" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$c" 2>/dev/null && fail "process $c ($(cat /proc/$c/comm 2>/dev/null)) outlived the demo"
done
echo "demo: ok (dashboard, data and Ctrl-C)"
