#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/web/api_diff.sh: optional differential test of the HTTP API against a real Prometheus
# (the Debian package, 2.42 here). Not part of ctest; skips (exit 0) when prometheus, promtool
# or the meshprom binary is missing.
#
#   tests/web/api_diff.sh [path/to/meshprom]     (default: build/cmd/meshprom)
#
# Both servers read the same block, written by `promtool tsdb create-blocks-from openmetrics`
# from a small OpenMetrics file, and answer the same list of requests on 127.0.0.1; bodies
# and status codes are compared byte for byte. Requests where 2.42 and 2.55 are known to
# differ (and meshprom follows 2.55) are listed in KNOWN and only reported. Prints
# "N passed, N failed" and exits 1 on an unexpected difference.
set -u
MESHPROM=${1:-build/cmd/meshprom}
for bin in prometheus promtool; do
  command -v "$bin" >/dev/null || { echo "api_diff: $bin not installed, skipped"; exit 0; }
done
[ -x "$MESHPROM" ] || { echo "api_diff: $MESHPROM not built, skipped"; exit 0; }

work=$(mktemp -d /tmp/mp-apidiff-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

T0=1700000000 # data starts here (seconds)
{
  echo '# TYPE reqs counter'
  for i in $(seq 0 40); do
    t=$((T0 + i * 15))
    echo "reqs_total{job=\"api\",code=\"200\"} $((i * 10)) $t"
    echo "reqs_total{job=\"api\",code=\"500\"} $((i / 4)) $t"
    echo "reqs_total{job=\"web\",code=\"200\"} $((i * 3)).5 $t"
  done
  echo '# TYPE temp gauge'
  for i in $(seq 0 40); do
    echo "temp{room=\"a\"} $(( (i * 7) % 23 )).25 $((T0 + i * 15))"
  done
  echo '# EOF'
} > "$work/in.om"
promtool tsdb create-blocks-from openmetrics "$work/in.om" "$work/a" >/dev/null || {
  echo "api_diff: promtool failed"; exit 1; }
cp -r "$work/a" "$work/b"
cat > "$work/prometheus.yml" <<'EOF'
global:
  external_labels:
    replica: r1
EOF

port_a=$((20000 + RANDOM % 5000))
port_b=$((port_a + 1))
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/a" \
  --storage.tsdb.retention.time=100y --web.listen-address=127.0.0.1:$port_a \
  >"$work/prom.log" 2>&1 &
pids+=($!)
"$MESHPROM" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/b" \
  --storage.tsdb.retention.time=100y --web.listen-address=127.0.0.1:$port_b \
  >"$work/mesh.log" 2>&1 &
pids+=($!)
for port in $port_a $port_b; do
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/-/ready" && break
    sleep 0.1
  done
done

T=$((T0 + 300))
REQS=(
  "/api/v1/query?query=reqs_total&time=$T"
  "/api/v1/query?query=sort(reqs_total)&time=$T"
  "/api/v1/query?query=sum+by+(job)+(rate(reqs_total[5m]))&time=$T"
  "/api/v1/query?query=temp&time=$T.5"
  "/api/v1/query?query=temp[1m]&time=$T"
  "/api/v1/query?query=scalar(temp)&time=$T"
  "/api/v1/query?query=1e21&time=1.5"
  "/api/v1/query?query=vector(1e-7)&time=1.5"
  "/api/v1/query?query=\"a<b\"&time=2"
  "/api/v1/query_range?query=temp&start=$T0&end=$T&step=60"
  "/api/v1/query_range?query=rate(reqs_total{code=\"200\"}[1m])&start=$T0&end=$T&step=1m"
  "/api/v1/query_range?query=1&start=0&end=2&step=1"
  "/api/v1/series?match[]=reqs_total&start=$T0&end=$T"
  "/api/v1/series?match[]={job=\"web\"}&match[]=temp&start=$T0&end=$T"
  "/api/v1/labels?start=$T0&end=$T"
  "/api/v1/label/job/values?start=$T0&end=$T"
  "/api/v1/label/__name__/values?start=$T0&end=$T"
  "/api/v1/format_query?query=sum(rate(x[5m]))by(job)"
  "/api/v1/query?query=up{"
  "/api/v1/query?query=up&time=abc"
  "/api/v1/query_range?query=up&start=10&end=5&step=1"
  "/api/v1/query_range?query=up&start=1&end=5&step=0"
  "/api/v1/query_range?query=up&start=0&end=11001&step=1"
  "/api/v1/query_range?query=up[5m]&start=0&end=11&step=1"
  "/api/v1/series"
  "/api/v1/series?match[]={}"
  "/api/v1/label/1a/values"
  "/api/v1/rules"
  "/api/v1/alerts"
  "/api/v1/alertmanagers"
  "/api/v1/status/walreplay"
  "/api/v1/admin/tsdb/snapshot"
  "/api/v1/targets"
  "/api/v1/metadata"
  "/api/v1/targets/metadata"
  "/api/v1/status/config"
  "/api/v1/status/tsdb"
  "/api/v1/query_exemplars?query=temp&start=$T0&end=$T"
  "/api/v1/query_exemplars?query=1"
  "/federate?match[]=temp"
  "/federate"
  "/api/v1/nope"
)
# Reported, not failed: 2.55 adds droppedTargetCounts (targets) and scrape_protocols to the
# re-serialised config; status/tsdb: an empty head that follows loaded blocks has min = max =
# the last block's end + 1 in Prometheus, INT64_MAX/INT64_MIN in meshprom's tsdb.
KNOWN=("/api/v1/targets" "/api/v1/status/config" "/api/v1/status/tsdb")

# both must have loaded the block, or every comparison would be of empty answers
for port in $port_a $port_b; do
  curl -g -s "http://127.0.0.1:$port/api/v1/query?query=count(reqs_total)&time=$T" |
    grep -q '"value":\[[0-9]*,"3"\]' || { echo "api_diff: no data on port $port"; exit 1; }
done
pass=0
fail=0
for r in "${REQS[@]}"; do
  a=$(curl -g -s -w ' [%{http_code}]' "http://127.0.0.1:$port_a$r")
  b=$(curl -g -s -w ' [%{http_code}]' "http://127.0.0.1:$port_b$r")
  if [ "$a" == "$b" ]; then
    pass=$((pass + 1))
  else
    known=0
    for k in "${KNOWN[@]}"; do [ "$k" == "$r" ] && known=1; done
    if [ $known == 1 ]; then
      echo "KNOWN $r"
    else
      fail=$((fail + 1))
      echo "DIFF $r"
      echo "  prometheus: $a"
      echo "  meshprom:   $b"
    fi
  fi
done
echo "api_diff: $pass passed, $fail failed"
[ $fail == 0 ]
