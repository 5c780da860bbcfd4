#!/bin/bash
# scripts/deps.sh [--build] — installs the Debian 12 packages switchboard needs, only
# when some are missing (checked with dpkg-query first, so a second run is
# quick and needs no network). Runs as root, or through sudo otherwise.
set -euo pipefail

# What builds switchboard: docker/Dockerfile's build stage installs exactly
# this list too (`deps.sh --build`), so the image and a machine cannot drift.
SB_BUILD_DEPS=(
    build-essential cmake pkg-config
    libzmq3-dev libczmq-dev libmsgpack-dev libjansson-dev
    libcurl4-openssl-dev libssl-dev libpq-dev libh2o-evloop-dev
    libcmocka-dev libpcre2-dev libargon2-dev
    libxml2-dev         # Salesforce's SOAP webhooks (workers/sb_wh_verify.c)
    ca-certificates
)
# What the tests and tools need on top.
SB_DEPS=(
    "${SB_BUILD_DEPS[@]}"
    postgresql
    docker.io           # the engine the container test starts (tests/50_compose_up.sh)
    docker-compose      # Debian's Compose v1: validates and runs docker/docker-compose.yml
    debootstrap         # makes the debian:bookworm-slim base image (no registry here)
    wrk                 # the benchmarks' load generator (bench/load)
    jq                  # scripts/up --check compares tools/list with the CRM's tools
    cppcheck            # static analysis of the sources (tests/50_lint_cppcheck.sh)
    curl
    chromium            # the headless browser that drives the sign-in page (60_oauth_browser)
    libnss3-tools       # certutil: chromium's NSS database trusts the test CA (60_oauth_browser)
)

# --build: only SB_BUILD_DEPS, no node/npm (docker/Dockerfile's build stage).
if [[ "${1:-}" == --build ]]; then
    SB_DEPS=("${SB_BUILD_DEPS[@]}")
    sb_with_node=0
elif [[ $# -gt 0 ]]; then
    echo "usage: scripts/deps.sh [--build]" >&2
    exit 2
else
    sb_with_node=1
fi

missing=()
for pkg in "${SB_DEPS[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
# Node.js and npm run the interop tests (the official MCP conformance suite
# and SDK, pinned by tests/interop/package-lock.json). Any node >= 18 with
# npm will do — the tests install Node 22 for themselves from npm — so a
# machine that already has both (from any package) keeps them.
if ((sb_with_node)) && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then
    missing+=(nodejs npm)
fi

if ((${#missing[@]} == 0)); then
    echo "deps: all ${#SB_DEPS[@]} packages$( ((sb_with_node)) && echo " and node/npm") present"
    exit 0
fi

echo "deps: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "deps: missing packages and neither root nor sudo: ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
# The postgresql package starts a system cluster (main, port 5432) by
# default; switchboard runs its own private clusters, so skip that one.
if [[ ! -e /etc/postgresql-common/createcluster.conf ]] && [[ " ${missing[*]} " == *" postgresql "* ]]; then
    "${as_root[@]}" mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | "${as_root[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"
echo "deps: done"
