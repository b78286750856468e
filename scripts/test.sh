#!/usr/bin/env bash
# Installs what is missing, builds Kiln (Debug, AddressSanitizer + UBSan, warnings as
# errors) and runs every test: unit tests and the system tests that start real Mosquitto,
# kiln-sim and kiln-edge on loopback ports.
#   KILN_BUILD_DIR   build directory (default build/test)
#   KILN_TEST_ARGS   extra ctest arguments, e.g. "-L unit" or "-R Payload"
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

# Node packages of the system tests (independent Sparkplug decoder, MQTT client), from the
# lockfile. Skipped when node_modules already matches it.
if [ ! -f tests/system/node_modules/.package-lock.json ] ||
   [ tests/system/package-lock.json -nt tests/system/node_modules/.package-lock.json ]; then
  (cd tests/system && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# uPlot for the web dashboard, which CMake embeds into kiln-server (web/CMakeLists.txt),
# from the lockfile. Skipped when node_modules already matches it.
if [ ! -f web/node_modules/.package-lock.json ] ||
   [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

BUILD_DIR=${KILN_BUILD_DIR:-build/test}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DKILN_SANITIZE=address,undefined -DKILN_WERROR=ON -DKILN_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD_DIR" -j2
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 ${KILN_TEST_ARGS:-}
