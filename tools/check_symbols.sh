#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every global symbol a module library defines carries the module's prefix.
# Usage: tools/check_symbols.sh BUILD_DIR
set -euo pipefail
build=${1:-build/release}
status=0
check() {
  local lib=$1 re=$2
  [ -f "$lib" ] || return 0
  local bad
  bad=$(nm -g --defined-only "$lib" | awk 'NF==3 {print $3}' | grep -vE '^__(odr_asan|asan|ubsan)' | grep -vE "$re" || true)
  if [ -n "$bad" ]; then
    echo "$lib: symbols without the module prefix:"; echo "$bad"; status=1
  fi
}
check "$build/common/libmp_common.a" '^mp_'
check "$build/configs/libmp_configs.a" '^cfg_'
check "$build/web/libmp_web.a" '^web_'
check "$build/tsdb/libmp_tsdb.a" '^tsdb_'
check "$build/remote/libmp_remote.a" '^remote_'
check "$build/query/libmp_query.a" '^query_'
check "$build/scraper/libmp_scraper.a" '^scrape_'
check "$build/meshsim/libmp_meshsim.a" '^meshsim_'
check "$build/cmd/libmp_cmd_flags.a" '^cmd_'
check "$build/cmd/libmp_cmd_tool.a" '^cmd_'
exit $status
