#!/usr/bin/env bash
# tests/interop/run-node-tests.sh — runs node:test files (Node 22 from
# node_modules) against a real farm started for them, then stops the farm.
#
#   tests/interop/run-node-tests.sh BUILD_DIR WORK_DIR TEST_FILE…
#
# The tests get the farm through the environment (see farm.sh):
#   SB_INTEROP_GATEWAY_MCP_URL, SB_INTEROP_MCP_URL, SB_INTEROP_TOKEN_FILE,
#   SB_INTEROP_SANDBOX_URL, SB_FARM_DIR (logs in $SB_FARM_DIR/logs/<name>.log),
#   SB_INTEROP_TOOLS_PAGE_SIZE (5 here, so tools/list really pages).
# Fails when a test fails or a farm process does not exit 0 on SIGTERM.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/interop/farm.sh
source "$here/farm.sh"

[[ $# -ge 3 ]] || sb_die "usage: $0 BUILD_DIR WORK_DIR TEST_FILE…"
build=$(cd "$1" && pwd) || sb_die "no build folder $1"
mkdir -p "$2"
work=$(cd "$2" && pwd)
shift 2
started=$SECONDS

sb_interop_deps || exit 1

stopped=0
s_stop () {
    ((stopped)) && return 0
    stopped=1
    sb_interop_stop
}
trap 's_stop; exit 1' INT TERM
trap 's_stop' EXIT

export SB_INTEROP_TOOLS_PAGE_SIZE=${SB_INTEROP_TOOLS_PAGE_SIZE:-5}
sb_interop_start "$build" "$work/farm" || exit 1
export SB_INTEROP_GATEWAY_MCP_URL SB_INTEROP_MCP_URL SB_INTEROP_TOKEN_FILE SB_INTEROP_SANDBOX_URL SB_FARM_DIR

"$SB_INTEROP_NODE" --test --test-reporter=spec --test-timeout=60000 "$@"
tests_rc=$?

farm_rc=0
s_stop || farm_rc=$?
sb_say "interop: node tests took $((SECONDS - started)) s"
((farm_rc == 0)) || sb_say "interop: a farm process did not stop cleanly"
((tests_rc == 0 && farm_rc == 0))
