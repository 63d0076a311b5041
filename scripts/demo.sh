#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's main command: installs what is missing, builds, then runs the demo in the
# foreground: meshsim's emojivoto preset (four meshed deployments behind a fake Kubernetes API
# on 127.0.0.1:16443) and meshprom with configs/demo.yml (Linkerd's prometheus.yml pointed at
# that API), and prints the dashboard's URL. Ctrl-C stops everything it started.
# MESHPROM_DEMO_LISTEN (127.0.0.1:9090) and MESHPROM_DEMO_DATA (build/demo-data) override.
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
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build/release/meshsim/meshsim --preset emojivoto --k8s-listen 127.0.0.1:16443 &
pids+=($!)
build/release/cmd/meshprom --config.file=configs/demo.yml --storage.tsdb.path="$data" \
  --storage.tsdb.retention.time=6h --web.listen-address="$listen" --web.enable-lifecycle &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "http://$listen/-/ready" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
echo "meshprom is up: dashboard at http://$listen/ (data appears within one 10 s scrape; Ctrl-C stops)"
wait -n "${pids[@]}"
