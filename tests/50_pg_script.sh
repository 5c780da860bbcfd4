#!/bin/bash
# tests/50_pg_script.sh WORK_DIR — scripts/pg.sh on its own: a cluster
# starts, answers on loopback TCP as role `switchboard`, keeps its data
# across a stop/start in `keep` mode, loses it in `fresh` mode, and — as
# root — still works when its folder is under one the `postgres` user cannot
# enter (a clone in /root), by living under /tmp instead.
set -euo pipefail
# shellcheck source=scripts/pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/pg.sh"
work=${1:?usage: $0 WORK_DIR}
psql=$SB_PG_BIN/psql

fail () { echo "FAIL: $*"; exit 1; }
q () { "$psql" -X -tAq -v ON_ERROR_STOP=1 "$(sb_pg_conninfo "$1")" -c "$2"; }

rm -rf "$work"
mkdir -p "$work/locked"
chmod 700 "$work/locked"        # only the owner (root, when root) may enter
dir=$work/locked/pg
trap 'sb_pg_destroy "$dir"; rm -rf "$work"' EXIT

sb_pg_start "$dir" fresh off || fail "start"
conninfo=$(sb_pg_conninfo "$dir")
[[ "$conninfo" == "host=127.0.0.1 port="*" dbname=switchboard user=switchboard" ]] ||
    fail "conninfo: $conninfo"
[[ "$(q "$dir" 'SELECT current_user')" == switchboard ]] || fail "role"
[[ "$(q "$dir" "SELECT setting FROM pg_settings WHERE name = 'listen_addresses'")" == 127.0.0.1 ]] ||
    fail "listen_addresses"
[[ -z "$(q "$dir" "SELECT setting FROM pg_settings WHERE name = 'unix_socket_directories'")" ]] ||
    fail "a unix socket is open"
if [[ $(id -u) -eq 0 ]]; then
    [[ -s "$dir/pgroot" ]] || fail "as root under a locked folder the cluster should be relocated"
fi

q "$dir" "CREATE TABLE kept (x int); INSERT INTO kept VALUES (1)" >/dev/null
sb_pg_stop "$dir"
sb_pg_running "$dir" && fail "still running after stop"
[[ ! -e "$dir/conninfo" ]] || fail "conninfo left after stop"

sb_pg_start "$dir" keep off || fail "restart (keep)"
[[ "$(q "$dir" 'SELECT x FROM kept')" == 1 ]] || fail "data lost in keep mode"

sb_pg_start "$dir" fresh off || fail "restart (fresh)"
[[ "$(q "$dir" "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'")" == 0 ]] ||
    fail "data kept in fresh mode"
sb_pg_stop "$dir"
sb_pg_stop "$dir"               # twice is fine
echo "pg.sh: OK"
