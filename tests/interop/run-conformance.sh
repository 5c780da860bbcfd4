#!/usr/bin/env bash
# tests/interop/run-conformance.sh — the official MCP conformance suite
# (@modelcontextprotocol/conformance, pinned in package-lock.json) against a
# real farm: every active server scenario of spec versions 2025-06-18 and
# 2025-11-25, through tests/interop/auth-proxy.mjs (the CLI cannot send a
# bearer token; the proxy adds it and changes nothing else).
#
#   tests/interop/run-conformance.sh BUILD_DIR [WORK_DIR]
#
# WORK_DIR (default BUILD_DIR/interop-conformance) gets the farm's logs and
# the suite's results (results/server-<scenario>-<time>/checks.json).
# Exit status is the suite's own verdict against conformance-baseline.yml:
#   a scenario fails and is listed     → fine (a known to-do)
#   a scenario fails and is not listed → fails (a regression)
#   a scenario passes but is listed    → fails (stale baseline: remove the entry)
# and also fails when a farm process does not exit 0 on SIGTERM.
# SB_CONFORMANCE_SCENARIO=name runs one scenario only (still against the baseline);
# SB_CONFORMANCE_SUITE=active leaves out the suite's pending scenarios (default: all — they pass).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/interop/farm.sh
source "$here/farm.sh"

[[ $# -ge 1 ]] || sb_die "usage: $0 BUILD_DIR [WORK_DIR]"
build=$(cd "$1" && pwd) || sb_die "no build folder $1"
work=${2:-$build/interop-conformance}
mkdir -p "$work"
work=$(cd "$work" && pwd)
baseline=$here/conformance-baseline.yml
spec_version=2025-11-25     # cumulative: 2025-06-18's scenarios and 2025-11-25's
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

sb_interop_start "$build" "$work/farm" || exit 1

rm -rf "$work/results"
args=(server --url "$SB_INTEROP_MCP_URL" --expected-failures "$baseline" --output-dir "$work/results")
if [[ -n "${SB_CONFORMANCE_SCENARIO:-}" ]]; then
    args+=(--scenario "$SB_CONFORMANCE_SCENARIO")
else
    args+=(--suite "${SB_CONFORMANCE_SUITE:-all}" --spec-version "$spec_version")
fi
sb_say "interop: conformance ${args[*]}"
PATH="$SB_INTEROP_DIR/node_modules/.bin:$PATH" conformance "${args[@]}" >"$work/conformance.log" 2>&1
suite_rc=$?

# One line per scenario from the saved checks: passed/failed checks, and
# whether the baseline lists it.
"$SB_INTEROP_NODE" --input-type=module - "$work/results" "$baseline" <<'EOF' | tee "$work/summary.txt"
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const [results, baselineFile] = process.argv.slice(2);
const listed = new Set(readFileSync(baselineFile, 'utf8').split('\n')
    .map((l) => l.match(/^\s*-\s*([\w.-]+)/)?.[1]).filter(Boolean));
const rows = new Map();
for (const dir of readdirSync(results).sort()) {
    const m = dir.match(/^server-(.+)-\d{4}-\d\d-\d\dT/);
    if (!m) continue;
    let checks = [];
    try { checks = JSON.parse(readFileSync(join(results, dir, 'checks.json'), 'utf8')); } catch {}
    const failed = checks.filter((c) => c.status === 'FAILURE');
    rows.set(m[1], { ok: checks.filter((c) => c.status === 'SUCCESS').length,
                     warn: checks.filter((c) => c.status === 'WARNING').length,
                     failed, listed: listed.has(m[1]) });
}
let pass = 0, fail = 0;
console.log('scenario                              result  checks ok/failed  baseline');
for (const [name, r] of rows) {
    const passed = r.failed.length === 0;
    passed ? pass++ : fail++;
    const verdict = passed ? (r.listed ? 'STALE (passes; remove from baseline)' : '')
                           : (r.listed ? 'expected' : 'UNEXPECTED');
    console.log(`${name.padEnd(37)} ${(passed ? 'pass' : 'FAIL').padEnd(7)} ` +
                `${String(r.ok).padStart(6)}/${String(r.failed.length).padEnd(9)} ${verdict}`);
    if (!passed && !r.listed)
        for (const c of r.failed)
            console.log(`    ${c.id}: ${(c.errorMessage ?? c.description ?? '').slice(0, 200)}`);
}
console.log(`${pass} scenarios pass, ${fail} fail (${rows.size} run)`);
EOF

farm_rc=0
s_stop || farm_rc=$?
sb_say "interop: conformance took $((SECONDS - started)) s; full output in $work/conformance.log"
if ((suite_rc != 0)); then
    sb_say "interop: the suite's verdict against the baseline is a failure; its summary:"
    # The baseline verdict: "Unexpected failures" / "Stale baseline entries"
    # each followed by the scenario names.
    sed -n '/Unexpected failures (not in baseline)\|Stale baseline entries/,$p' "$work/conformance.log" \
        | sed 's/\x1b\[[0-9;]*m//g' >&2
fi
((farm_rc == 0)) || sb_say "interop: a farm process did not stop cleanly"
((suite_rc == 0 && farm_rc == 0))
