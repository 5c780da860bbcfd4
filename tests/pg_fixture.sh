#!/bin/bash
# tests/pg_fixture.sh start|stop DIR — the ctest `postgres` fixture: a fresh
# private PostgreSQL cluster for one test run. `start` writes the libpq
# conninfo to DIR/conninfo (SB_TEST_PG_FILE); `stop` stops the cluster.
set -euo pipefail
# shellcheck source=scripts/pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/pg.sh"

case "${1:-}" in
    start)
        [[ -n "${2:-}" ]] || sb_die "usage: $0 start|stop DIR"
        sb_pg_start "$2" fresh off
        echo "postgres fixture: $(sb_pg_conninfo "$2")"
        ;;
    stop)
        [[ -n "${2:-}" ]] || sb_die "usage: $0 start|stop DIR"
        sb_pg_stop "$2"
        echo "postgres fixture stopped"
        ;;
    *)
        sb_die "usage: $0 start|stop DIR"
        ;;
esac
