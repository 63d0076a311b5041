#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/ui/run.sh BUILD_DIR: the dashboard's browser test. Starts meshsim's emojivoto preset
# with its fake Kubernetes API and meshprom with configs/demo.yml (its api_server pointed at
# the fake's port), then runs dashboard.test.mjs in Debian's headless Chromium. Exit 77
# (ctest's skip) when chromium or node is missing. Stops everything it started.
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ] || ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "ui: chromium, node or npm missing: skipped"
  exit 77
fi

# playwright-core from npm, installed once into the build tree (not committed)
deps="$build/ui-tests"
if [ ! -d "$deps/node_modules/playwright-core" ] ||
   ! cmp -s "$src/tests/ui/package-lock.json" "$deps/package-lock.json"; then
  mkdir -p "$deps"
  cp "$src/tests/ui/package.json" "$src/tests/ui/package-lock.json" "$deps/"
  (cd "$deps" && npm ci --no-audit --no-fund --loglevel=error)
fi
# ES modules resolve packages next to the script, so the script runs from there
cp "$src/tests/ui/dashboard.test.mjs" "$deps/"

work=$(mktemp -d /tmp/meshprom-ui.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
    console.log(s.address().port); s.close(); })'
}
k8s_port=$(free_port)
web_port=$(free_port)
sed "s#api_server: http://127.0.0.1:16443#api_server: http://127.0.0.1:$k8s_port#" \
  "$src/configs/demo.yml" > "$work/demo.yml"

# the proxies' addresses are drawn per run, so that two runs at once (ctest -j in two build
# trees, the demo) do not fight over the preset's default 127.1.0.x:4191
ip_base="127.$((100 + RANDOM % 150)).$((RANDOM % 250)).1"
"$build/meshsim/meshsim" --preset emojivoto --k8s-listen "127.0.0.1:$k8s_port" \
  --ip-base "$ip_base" > "$work/meshsim.log" 2>&1 &
pids+=($!)
"$build/cmd/meshprom" --config.file="$work/demo.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$web_port" > "$work/meshprom.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$web_port/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

status=0
CHROMIUM="$chromium" node "$deps/dashboard.test.mjs" "http://127.0.0.1:$web_port" "$build/ui-screenshots" || status=$?
if [ $status -ne 0 ]; then
  echo "== meshprom log (last 30 lines)"; tail -30 "$work/meshprom.log"
  echo "== meshsim log (last 10 lines)"; tail -10 "$work/meshsim.log"
  echo "screenshots: $build/ui-screenshots"
fi
exit $status
