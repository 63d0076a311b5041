#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's main command: installs what is missing, builds, and runs the demo in the
# foreground. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)"

data=${MESHPROM_DEMO_DATA:-build/demo-data}
listen=${MESHPROM_DEMO_LISTEN:-127.0.0.1:9090}
mkdir -p "$data"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

build/release/cmd/meshprom --config.file=configs/demo.yml --storage.tsdb.path="$data" \
  --storage.tsdb.retention.time=6h --web.listen-address="$listen" --web.enable-lifecycle &
pids+=($!)

for _ in $(seq 1 50); do
  if curl -fsS "http://$listen/-/ready" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
echo "meshprom is up: http://$listen/  (metrics: http://$listen/metrics; Ctrl-C stops)"
wait "${pids[0]}"
