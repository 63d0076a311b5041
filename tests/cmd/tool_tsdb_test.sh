#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# meshpromtool tsdb create-blocks-from / dump / analyze end to end; differential against
# promtool 2.42 when it is installed (skipped otherwise).
# Usage: tests/cmd/tool_tsdb_test.sh <meshpromtool binary>
set -euo pipefail
tool=$1
tmp=$(mktemp -d /tmp/mp_tool_tsdb_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 5 series, samples every 900.5 s over 8 h (4 windows), values whose text is Go's %g, plus
# one sample far in the future (year 2100) and one at a year-3000 timestamp.
awk 'BEGIN {
  split("0 1 -2 0.25 1e-07 1.5e+300 NaN +Inf -Inf 12345", vals, " ");
  print "# HELP req_total requests" > "/dev/stderr";
  n = 0;
  for (s = 0; s < 5; s++) {
    metric = (s < 3) ? "req" : "temp_celsius";
    if (s == 0 || s == 3) print "# TYPE " metric " gauge";
    for (i = 0; i < 32; i++) {
      t = 1700000000 + i * 900.5;
      v = vals[(s * 7 + i) % 10 + 1];
      if (s < 3) printf "%s{code=\"%d\",path=\"/a\\\\b\\\"c\"} %s %.1f\n", metric, 200 + s, v, t;
      else printf "%s{zone=\"z%d\"} %s %.1f\n", metric, s, v, t;
    }
    if (s == 0) printf "%s{code=\"200\",path=\"/a\\\\b\\\"c\"} 7 4102444800\n", metric;
    if (s == 4) printf "%s{zone=\"z4\"} 8 32503680000\n", metric;
  }
  print "# EOF";
}' > "$tmp/in.om" 2>/dev/null

# expected dump lines (unordered), in promtool's format
awk '/^#/ {next} {
  split($0, a, " "); name = substr(a[1], 1, index(a[1], "{") - 1);
  lab = substr(a[1], index(a[1], "{") + 1); lab = substr(lab, 1, length(lab) - 1);
  gsub(/,/, ", ", lab); gsub(/\\\\\\"/, "\\\\\\\"", lab);
  ts = a[3]; if (ts !~ /\./) ts = ts ".0"; sub(/\.0$/, "000", ts); sub(/\.5$/, "500", ts);
  printf "{__name__=\"%s\", %s} %s %s\n", name, lab, a[2], ts }' "$tmp/in.om" | LC_ALL=C sort > "$tmp/expected"

"$tool" tsdb create-blocks-from openmetrics "$tmp/in.om" "$tmp/m" > "$tmp/create.out" || fail "create-blocks-from exit $?"
nblocks=$(find "$tmp/m" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$nblocks" -eq 6 ] || fail "expected 6 blocks, got $nblocks"
head -1 "$tmp/create.out" | grep -q '^BLOCK ULID  *MIN TIME  *MAX TIME  *DURATION  *NUM SAMPLES  *NUM CHUNKS  *NUM SERIES  *SIZE$' ||
  fail "block table header: $(head -1 "$tmp/create.out")"
[ "$(wc -l < "$tmp/create.out")" -eq 7 ] || fail "block table has $(wc -l < "$tmp/create.out") lines"
"$tool" tsdb dump "$tmp/m" > "$tmp/dump" || fail "dump exit $?"
LC_ALL=C sort "$tmp/dump" | cmp -s - "$tmp/expected" || { fail "round trip differs"; diff <(LC_ALL=C sort "$tmp/dump") "$tmp/expected" | head || true; }
# time order inside each series, series in label order
awk '{ key = $0; sub(/} .*/, "}", key); split($0, f, " "); t = f[NF];
  if (key == prev && t + 0 <= pt + 0) { print "order: " $0; exit 1 }
  if (key < prev) { print "series order: " $0; exit 1 } prev = key; pt = t }' "$tmp/dump" || fail "dump order"
# --match and time range
"$tool" tsdb dump --match='temp_celsius{zone=~"z[34]"}' --min-time=1700003600000 --max-time=1700007200000 "$tmp/m" > "$tmp/sel"
[ "$(wc -l < "$tmp/sel")" -eq 8 ] || fail "selected $(wc -l < "$tmp/sel") lines, want 8"
grep -vq '^{__name__="temp_celsius", zone="z[34]"} ' "$tmp/sel" && fail "selection has other series"
if "$tool" tsdb dump --match='{a=' "$tmp/m" 2> "$tmp/err"; then fail "bad --match accepted"; fi
grep -q '^1:4: parse error: unexpected end of input inside braces$' "$tmp/err" || fail "bad --match message: $(cat "$tmp/err")"

# analyze: the last block (by min time) has the year-3000 sample only
"$tool" tsdb analyze --extended "$tmp/m" > "$tmp/an" || fail "analyze exit $?"
grep -q '^Series: 1$' "$tmp/an" || fail "analyze series"
grep -q '^Postings (unique label pairs): 2$' "$tmp/an" || fail "analyze postings"
grep -q '^Compaction analysis:$' "$tmp/an" || fail "analyze --extended"
grep -q '^Chunk statistics:$' "$tmp/an" || fail "analyze chunk statistics"
first=$(sed -n 2p "$tmp/create.out" | cut -d' ' -f1)
"$tool" tsdb analyze --limit=3 "$tmp/m" "$first" > "$tmp/an1" || fail "analyze block exit $?"
grep -q '^Series: 5$' "$tmp/an1" || fail "analyze first block series: $(grep Series "$tmp/an1")"
grep -q '^Label names: 4$' "$tmp/an1" || fail "analyze first block label names"
grep -q '^Postings entries (total label pairs): 13$' "$tmp/an1" || fail "analyze entries"
if "$tool" tsdb analyze "$tmp/m" 01ARZ3NDEKTSV4RRFFQ69G5FAV 2> "$tmp/err"; then fail "unknown block accepted"; fi
grep -q 'block 01ARZ3NDEKTSV4RRFFQ69G5FAV not found' "$tmp/err" || fail "unknown block message"

# bad inputs: message and exit code 1 as promtool
bad() { # name, content, expected stderr pattern
  printf '%b' "$2" > "$tmp/$1.om"
  set +e; "$tool" tsdb create-blocks-from openmetrics "$tmp/$1.om" "$tmp/o_$1" > /dev/null 2> "$tmp/$1.err"; rc=$?; set -e
  [ "$rc" -eq 1 ] || fail "$1: exit $rc"
  grep -q "$3" "$tmp/$1.err" || fail "$1: message $(cat "$tmp/$1.err")"
}
bad noeof 'a 1 1\n' 'data does not end with # EOF'
bad garbage 'a{ 1 1\n# EOF\n' '^getting min and max timestamp: next: '
bad nots 'a 1\n# EOF\n' 'expected timestamp for series got none'
bad duplabel 'a{b="x",b="y"} 2 1\n# EOF\n' 'add sample: label name "b" is not unique: invalid sample'
# an empty label value is an absent label, as in Prometheus
printf 'a{b="",c="d"} 1 1\na{c="d"} 2 2\n# EOF\n' > "$tmp/empty.om"
"$tool" tsdb create-blocks-from openmetrics -q "$tmp/empty.om" "$tmp/o_empty" || fail "empty value: exit $?"
[ "$("$tool" tsdb dump "$tmp/o_empty" | tr '\n' '|')" = '{__name__="a", c="d"} 1 1000|{__name__="a", c="d"} 2 2000|' ] ||
  fail "empty value: kept as a label"
# out of order across a batch of 5000 (inside one batch promtool drops it silently)
awk 'BEGIN { for (i = 1; i <= 5001; i++) print "a " i " " i; print "a 0 2"; print "# EOF" }' > "$tmp/ooo.om"
set +e; "$tool" tsdb create-blocks-from openmetrics -q "$tmp/ooo.om" "$tmp/o_ooo" 2> "$tmp/ooo.err"; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "ooo: exit $rc"
grep -q 'add sample: out of order sample' "$tmp/ooo.err" || fail "ooo: message $(cat "$tmp/ooo.err")"
printf 'a 1 2\na 5 1\n# EOF\n' > "$tmp/ooo1.om"
"$tool" tsdb create-blocks-from openmetrics -q "$tmp/ooo1.om" "$tmp/o_ooo1" || fail "ooo within a batch: exit $?"
[ "$("$tool" tsdb dump "$tmp/o_ooo1")" = '{__name__="a"} 1 2000' ] || fail "ooo within a batch: not dropped"

# differential against promtool 2.42
if command -v promtool > /dev/null; then
  promtool tsdb create-blocks-from openmetrics "$tmp/in.om" "$tmp/p" > "$tmp/pcreate.out"
  mkdir -p "$tmp/p/wal" "$tmp/m/wal" # promtool 2.42's read-only open needs a wal dir
  promtool tsdb dump "$tmp/p" > "$tmp/pp"
  promtool tsdb dump "$tmp/m" > "$tmp/pm"
  "$tool" tsdb dump "$tmp/p" > "$tmp/mp"
  for f in pp pm mp; do cmp -s "$tmp/dump" "$tmp/$f" || fail "dump $f differs from ours"; done
  # same windows, same counts
  cut -c28- "$tmp/pcreate.out" | awk '{print $1, $2, $4, $5, $6}' > "$tmp/pc"
  cut -c28- "$tmp/create.out" | awk '{print $1, $2, $4, $5, $6}' > "$tmp/mc"
  cmp -s "$tmp/pc" "$tmp/mc" || { fail "block tables differ"; diff "$tmp/pc" "$tmp/mc" || true; }
  pfirst=$(sed -n 2p "$tmp/pcreate.out" | cut -d' ' -f1)
  for d in "p $pfirst" "m $first"; do
    set -- $d
    promtool tsdb analyze "$tmp/$1" "$2" | grep -E '^(Series|Label names|Postings)' > "$tmp/pa_$1"
    "$tool" tsdb analyze "$tmp/$1" "$2" | grep -E '^(Series|Label names|Postings)' > "$tmp/ma_$1"
    cmp -s "$tmp/pa_$1" "$tmp/ma_$1" || fail "analyze counts differ on $1"
  done
  for f in noeof garbage nots duplabel; do
    set +e; promtool tsdb create-blocks-from openmetrics "$tmp/$f.om" "$tmp/po_$f" 2> /dev/null; rc=$?; set -e
    [ "$rc" -eq 1 ] || fail "promtool $f: exit $rc"
  done
  set +e; promtool tsdb create-blocks-from openmetrics -q "$tmp/ooo.om" "$tmp/po_ooo" 2> /dev/null; rc=$?; set -e
  [ "$rc" -eq 1 ] || fail "promtool ooo: exit $rc"
else
  echo "promtool not installed: differential part skipped"
fi

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "tool_tsdb: all passed"
