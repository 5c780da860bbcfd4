#!/usr/bin/env bash
# tests/interop/run-conformance.sh — the official MCP conformance suite
# (@modelcontextprotocol/conformance, pinned in package-lock.json) against a
# real farm, through tests/interop/auth-proxy.mjs (the CLI cannot send a
# bearer token; the proxy adds it and changes nothing else).
#
#   tests/interop/run-conformance.sh BUILD_DIR [WORK_DIR]
#
# Two lines of the suite are installed side by side:
#   0.1.x (default)  @modelcontextprotocol/conformance 0.1.16: every server
#                    scenario of spec versions 2025-06-18 and 2025-11-25,
#                    judged against conformance-baseline.yml
#   0.2.x            the `conformance-next` npm alias (0.2.0-alpha.N), with
#                    SB_CONFORMANCE_REQUIREMENTS=REV: exactly the server
#                    scenarios spec revision REV requires (`--requirements
#                    REV`, e.g. 2025-11-25 or 2026-07-28) plus the ones the
#                    suite runs but does not score (extensions, pending),
#                    judged against conformance-baseline-next-REV.yml
#                    (run-conformance-next.sh REV BUILD_DIR sets this up)
#
# WORK_DIR (default BUILD_DIR/interop-conformance[-next-REV]) gets the farm's
# logs and the suite's results (results/server-<scenario>-<time>/checks.json).
# Exit status is the verdict against the baseline, with the suite's own
# --expected-failures semantics (a WARNING counts as a failure; an entry is a
# whole scenario, or `scenario:check-id` for one check of it):
#   it fails and is listed     → fine (a known to-do)
#   it fails and is not listed → fails (a regression)
#   it passes but is listed    → fails (stale baseline: remove the entry)
# The suite judges the scenarios it scores; the summary below applies the
# same rules to every scenario run (the 0.2 line does not score extensions or
# pending scenarios, but their entries must be exact too).
# It also fails when a farm process does not exit 0 on SIGTERM.
# SB_CONFORMANCE_SCENARIO=name runs one scenario only (still against the baseline);
# SB_CONFORMANCE_SUITE=active leaves out the 0.1 line's pending scenarios (default: all — they pass).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/interop/farm.sh
source "$here/farm.sh"

[[ $# -ge 1 ]] || sb_die "usage: $0 BUILD_DIR [WORK_DIR]"
build=$(cd "$1" && pwd) || sb_die "no build folder $1"
requirements=${SB_CONFORMANCE_REQUIREMENTS:-}
if [[ -n "$requirements" ]]; then
    [[ $requirements =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] ||
        sb_die "SB_CONFORMANCE_REQUIREMENTS=$requirements is not a spec revision (YYYY-MM-DD)"
    # The alias and the 0.1 line both declare the `conformance` bin: run each by path.
    cli=$here/node_modules/conformance-next/dist/index.js
    baseline=$here/conformance-baseline-next-$requirements.yml
    work=${2:-$build/interop-conformance-next-$requirements}
else
    cli=$here/node_modules/@modelcontextprotocol/conformance/dist/index.js
    baseline=$here/conformance-baseline.yml
    work=${2:-$build/interop-conformance}
fi
spec_version=2025-11-25     # 0.1 line, cumulative: 2025-06-18's scenarios and 2025-11-25's
[[ -f "$baseline" ]] || sb_die "no baseline $baseline"
mkdir -p "$work"
work=$(cd "$work" && pwd)
started=$SECONDS

sb_interop_deps || exit 1
[[ -f "$cli" ]] || sb_die "$cli is not installed (package.json / npm ci)"

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
    [[ -n "$requirements" ]] && args+=(--spec-version "$requirements")
elif [[ -n "$requirements" ]]; then
    args+=(--requirements "$requirements")
else
    args+=(--suite "${SB_CONFORMANCE_SUITE:-all}" --spec-version "$spec_version")
fi
sb_say "interop: conformance $("$SB_INTEROP_NODE" "$cli" --version) ${args[*]}"
PATH="$SB_INTEROP_DIR/node_modules/.bin:$PATH" "$SB_INTEROP_NODE" "$cli" "${args[@]}" \
    >"$work/conformance.log" 2>&1
suite_rc=$?

# One line per scenario from the saved checks (ok/warnings/failed checks, the
# verdict against the baseline), and the same judgement as the suite's over
# every scenario run, scored or not: exit 1 on an unexpected failure or a
# stale entry.
"$SB_INTEROP_NODE" --input-type=module - "$work/results" "$baseline" "${SB_CONFORMANCE_SCENARIO:-}" \
    <<'EOF' | tee "$work/summary.txt"
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const [results, baselineFile, onlyScenario] = process.argv.slice(2);
// `server:` entries: "- scenario" (the whole scenario) or "- scenario:check-id".
const whole = new Set(), checkLevel = new Map();
let section = '';
for (const line of readFileSync(baselineFile, 'utf8').split('\n')) {
    const key = line.match(/^(\w+):/);
    if (key) { section = key[1]; continue; }
    const m = line.match(/^\s*-\s*["']?([\w.\/-]+)(?::([\w.\/-]+))?["']?\s*(#.*)?$/);
    if (!m || section !== 'server') continue;
    if (m[2]) checkLevel.set(m[1], (checkLevel.get(m[1]) ?? new Set()).add(m[2]));
    else whole.add(m[1]);
}
const bad = (c) => c.status === 'FAILURE' || c.status === 'WARNING';
const rank = (s) => s === 'FAILURE' ? 3 : s === 'WARNING' ? 2 : s === 'SUCCESS' ? 1 : 0;
const rows = new Map();
for (const dir of readdirSync(results).sort()) {
    const m = dir.match(/^server-(.+)-\d{4}-\d\d-\d\dT/);
    if (!m) continue;
    let checks = [];
    try { checks = JSON.parse(readFileSync(join(results, dir, 'checks.json'), 'utf8')); }
    catch (e) { checks = [{ id: 'checks.json', status: 'FAILURE', errorMessage: `unreadable: ${e.message}` }]; }
    // A check ID may repeat: its worst status counts, as in the suite.
    const worst = new Map();
    for (const c of checks)
        if (c.status !== 'INFO' && rank(c.status) >= rank(worst.get(c.id)?.status)) worst.set(c.id, c);
    rows.set(m[1], { ok: checks.filter((c) => c.status === 'SUCCESS').length,
                     warn: checks.filter((c) => c.status === 'WARNING').length,
                     failed: checks.filter((c) => c.status === 'FAILURE').length,
                     worst: [...worst.values()] });
}
let pass = 0, fail = 0, wrong = 0;
console.log('scenario                                        result  ok/warn/failed  baseline');
for (const [name, r] of rows) {
    const failing = r.worst.filter(bad);
    const passed = failing.length === 0;
    passed ? pass++ : fail++;
    let verdict = '', unexpected = [], stale = [];
    if (whole.has(name)) {
        verdict = passed ? 'STALE (passes; remove from baseline)' : 'expected';
        if (passed) stale.push(name);
    } else {
        const listed = checkLevel.get(name) ?? new Set();
        unexpected = failing.filter((c) => !listed.has(c.id));
        stale = [...listed].filter((id) => !failing.some((c) => c.id === id)).map((id) => `${name}:${id}`);
        verdict = unexpected.length ? 'UNEXPECTED' : '';
        if (stale.length) verdict = (verdict ? verdict + ', ' : '') + `STALE ${stale.join(' ')}`;
        if (!verdict && failing.length) verdict = `expected (${failing.length} listed checks)`;
    }
    if (unexpected.length || stale.length) wrong++;
    console.log(`${name.padEnd(47)} ${(passed ? 'pass' : 'FAIL').padEnd(7)} ` +
                `${String(r.ok).padStart(3)}/${r.warn}/${String(r.failed).padEnd(9)} ${verdict}`);
    for (const c of unexpected)
        console.log(`    ${c.status} ${c.id}: ${(c.errorMessage ?? c.description ?? '').slice(0, 200)}`);
}
for (const name of [...whole, ...checkLevel.keys()])
    if (!onlyScenario && !rows.has(name)) { wrong++; console.log(`${name.padEnd(47)} not run  STALE (not in this run)`); }
console.log(`${pass} scenarios pass, ${fail} fail (${rows.size} run); ` +
            `${wrong ? wrong + ' differ from' : 'all match'} the baseline`);
process.exit(wrong ? 1 : 0);
EOF
summary_rc=${PIPESTATUS[0]}

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
((summary_rc == 0)) || sb_say "interop: the summary above differs from $(basename "$baseline")"
((farm_rc == 0)) || sb_say "interop: a farm process did not stop cleanly"
((suite_rc == 0 && summary_rc == 0 && farm_rc == 0))
