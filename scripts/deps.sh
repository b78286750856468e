#!/usr/bin/env bash
# Installs the Debian 12 packages Kiln needs to build, test and run its demo.
# Idempotent and quiet when nothing is missing. This is the one list of dependencies.
set -euo pipefail

PACKAGES=(
  # toolchain
  cmake ninja-build ccache g++ pkg-config
  # libraries
  libmodbus-dev libmosquitto-dev libzstd-dev libsqlite3-dev libprotobuf-dev protobuf-compiler
  libtomlplusplus-dev libfmt-dev libcli11-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # real peers used by the system tests and the demo
  mosquitto mosquitto-clients openssl curl
  # headless browser of the dashboard's system test
  chromium
)
# Node.js runs the system tests (independent Sparkplug decoder from npm).
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
