#!/usr/bin/env bash
# tests/oauth-e2e/run.sh — runs one node:test file of the OAuth end-to-end
# tests (Node 22 from node_modules) against an HTTPS farm started for it
# (farm.sh), then stops the farm.
#
#   tests/oauth-e2e/run.sh BUILD_DIR WORK_DIR TEST_FILE
#
# The test gets the farm through the environment (farm.sh lists it) and
# trusts the test CA through NODE_EXTRA_CA_CERTS. Fails when the test fails
# or a farm process does not exit 0 on SIGTERM.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/oauth-e2e/farm.sh
source "$here/farm.sh"

[[ $# -eq 3 ]] || sb_die "usage: $0 BUILD_DIR WORK_DIR TEST_FILE"
build=$(cd "$1" && pwd) || sb_die "no build folder $1"
mkdir -p "$2"
work=$(cd "$2" && pwd)
test_file=$3
started=$SECONDS
NODE_TEST_TIMEOUT_MS=60000      # one test of the file, at most

sb_oauth_deps || exit 1

stopped=0
s_stop () {
    ((stopped)) && return 0
    stopped=1
    sb_oauth_stop
}
trap 's_stop; exit 1' INT TERM
trap 's_stop' EXIT

sb_oauth_start "$build" "$work" || exit 1
farm_ready=$SECONDS

NODE_EXTRA_CA_CERTS=$SB_OAUTH_CA_FILE \
    "$SB_OAUTH_NODE" --test --test-reporter=spec --test-timeout=$NODE_TEST_TIMEOUT_MS "$test_file"
tests_rc=$?

farm_rc=0
s_stop || farm_rc=$?
sb_say "oauth-e2e: farm start $((farm_ready - started)) s, tests $((SECONDS - farm_ready)) s"
((farm_rc == 0)) || sb_say "oauth-e2e: a farm process did not stop cleanly"
[[ -z "$SB_OAUTH_SETUP_ERROR" ]] || sb_say "oauth-e2e: NOT SET UP: $SB_OAUTH_SETUP_ERROR"
((tests_rc == 0 && farm_rc == 0))
