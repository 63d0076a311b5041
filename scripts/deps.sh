#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages meshprom needs to build and test, and only those missing.
# Idempotent: when everything is present it installs nothing and does not touch the network.
set -euo pipefail

pkgs=(build-essential cmake pkg-config git
      libcurl4-openssl-dev libmicrohttpd-dev libsnappy-dev libzstd-dev
      libprotobuf-c-dev protobuf-c-compiler libyaml-dev libcrypt-dev libcriterion-dev
      libpcre2-dev libxxhash-dev libjson-c-dev zlib1g-dev curl openssl procps)
# the dashboard's charting library comes from npm at build time; a Node.js from elsewhere
# (nodesource, nvm) is used when present
if ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi
if [ "${MP_DEPS_EXTRA:-}" != "" ]; then
  # shellcheck disable=SC2206
  pkgs+=(${MP_DEPS_EXTRA})
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
