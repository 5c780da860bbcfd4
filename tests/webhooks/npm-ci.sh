#!/usr/bin/env bash
# tests/webhooks/npm-ci.sh DEST — installs the webhook tests' npm packages
# (package.json here, pinned by the committed package-lock.json: stripe,
# @octokit/webhooks-methods, standardwebhooks, svix, and Node 22 as the
# `node` package) into DEST (a folder of the build, e.g. BUILD/webhooks-node)
# with `npm ci`, only when the lock changed since DEST's last install; copies
# this folder's scripts (*.mjs) beside them, so they resolve the packages
# from DEST/node_modules; then checks that DEST/node_modules/.bin/node is
# Node 22. Serialised by a lock in DEST, so concurrent callers install once.
# Fails with a sentence when npm is missing (scripts/deps.sh installs it):
# the webhook tests need the providers' own libraries, there is nothing to
# skip to. The ctest fixture 38_wh_npm runs it; tests/48_e2e_webhooks* may too.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/../../scripts/lib.sh"

SB_WEBHOOKS_NODE_MAJOR=22

[[ $# -eq 1 ]] || sb_die "usage: $0 DEST"
mkdir -p "$1" || sb_die "cannot make $1"
dest=$(cd "$1" && pwd)
node="$dest/node_modules/.bin/node"
stamp="$dest/node_modules/.sb-installed"
want=$(cat "$here/package.json" "$here/package-lock.json" "$here/.npmrc" | sha256sum | cut -d' ' -f1)

(
    flock -w 600 9 || sb_die "timed out waiting for another npm ci in $dest"
    have=
    [[ -s "$stamp" ]] && have=$(<"$stamp")
    if [[ "$have" != "$want" || ! -x "$node" ]]; then
        command -v npm >/dev/null || sb_die "npm is not installed (scripts/deps.sh installs it)"
        sb_say "webhooks: npm ci in $dest (package-lock.json changed or not installed)"
        cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$dest/" || exit 1
        (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
        echo "$want" >"$stamp"
    fi
    cp "$here"/*.mjs "$dest/" || exit 1
) 9>"$dest/.npm-ci.lock" || exit 1

version=$("$node" --version 2>/dev/null) ||
    sb_die "$node does not run (did node@22's preinstall script run?)"
[[ $version == "v$SB_WEBHOOKS_NODE_MAJOR."* ]] || sb_die "$node is $version, not Node $SB_WEBHOOKS_NODE_MAJOR"
sb_say "webhooks: $version at $node"
