#!/usr/bin/env bash
# tests/interop/npm-ci.sh — installs tests/interop/node_modules (`npm ci`,
# only when package-lock.json changed since the last install) and checks
# that Node 22 runs. The ctest fixture 60_interop_npm runs it once before the
# interop tests; the run-*.sh scripts call the same function themselves.
set -uo pipefail
# shellcheck source=tests/interop/farm.sh
source "$(dirname "${BASH_SOURCE[0]}")/farm.sh"
sb_interop_deps || exit 1
sb_say "interop: $("$SB_INTEROP_NODE" --version) at $SB_INTEROP_NODE;" \
       "conformance $("$SB_INTEROP_NODE" "$SB_INTEROP_DIR/node_modules/.bin/conformance" --version)"
