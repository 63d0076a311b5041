#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Each module is a folder with public headers; code outside a module may include only them.
# Public headers: common/*.h whose name is listed in PUBLIC_COMMON, <module>/<module>.h, and
# configs/config.h. Tests of a module may include that module's private headers; fuzz targets
# (tests/fuzz/) and benchmarks (bench/) exercise internals of any module and are exempt.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
public_re='^(common/(err|alloc|str|labels|matcher|time|log|metrics)\.h|configs/config\.h|web/web\.h|tsdb/tsdb\.h|query/query\.h|scraper/scraper\.h|remote/remote\.h|meshsim/meshsim\.h)$'
while IFS= read -r -d '' f; do
  case "$f" in tests/fuzz/* | bench/*) continue ;; esac
  owner=${f%%/*}
  [ "$owner" = tests ] && owner=$(echo "$f" | cut -d/ -f2)
  while IFS= read -r inc; do
    [[ "$inc" == */* ]] || continue   # same-folder include
    mod=${inc%%/*}
    [ "$mod" = "$owner" ] && continue
    if ! [[ "$inc" =~ $public_re ]]; then
      echo "$f: includes private header $inc"
      status=1
    fi
  done < <(grep -oE '^#include "[^"]+"' "$f" | sed -E 's/#include "(.*)"/\1/')
done < <(find common configs web cmd tests tsdb query scraper remote bench -name '*.[ch]' -print0 2>/dev/null)
exit $status
