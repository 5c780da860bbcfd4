#!/usr/bin/env bash
# tests/interop/run-conformance-next.sh — the 0.2 line of the official MCP
# conformance suite (the `conformance-next` npm alias in package.json) against
# the same farm as run-conformance.sh: the server scenarios one spec revision
# requires (`conformance server --requirements REV`), plus the extension and
# pending scenarios the suite runs without scoring, judged against
# conformance-baseline-next-REV.yml.
#
#   tests/interop/run-conformance-next.sh REV BUILD_DIR [WORK_DIR]
#
# REV is a requirement set the installed 0.2 line publishes (`conformance list
# --help` names them: 2025-11-25 and 2026-07-28 in 0.2.0-alpha.12). WORK_DIR
# defaults to BUILD_DIR/interop-conformance-next-REV. Everything else —
# farm, auth proxy, summary, exit status, SB_CONFORMANCE_SCENARIO — is
# run-conformance.sh's.
set -uo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: $0 REV BUILD_DIR [WORK_DIR]" >&2
    exit 2
fi
rev=$1
shift
# 2026-07-28 runs the tasks extension's scenarios: its task store needs
# PostgreSQL in the farm.
pg=0
[[ $rev == 2026-07-28 ]] && pg=1
SB_INTEROP_PG=$pg SB_CONFORMANCE_REQUIREMENTS=$rev exec "$(dirname "${BASH_SOURCE[0]}")/run-conformance.sh" "$@"
