# shellcheck shell=bash
# scripts/pg.sh — a private PostgreSQL 15 cluster in a folder, for the tests
# (tests/pg_fixture.sh) and for the farm (scripts/farm.sh). Source it.
#
#   sb_pg_start DIR [fresh|keep] [fsync]   start (initdb first when needed)
#   sb_pg_stop DIR                          stop (pg_ctl stop, then by PID)
#   sb_pg_conninfo DIR                      print the libpq conninfo
#   sb_pg_destroy DIR                       stop and delete every file of the cluster
#   sb_pg_pid DIR                           print the postmaster's PID (when it runs)
#   sb_pg_restart DIR                       start a cluster that died, on its own port
#
# The cluster listens on 127.0.0.1 only, on a free port, with no unix
# socket at all; authentication is `trust` for loopback TCP and nothing
# else. It has a database `switchboard` owned by the role `switchboard`,
# the application role the services connect as (the conninfo names it):
# no superuser, no BYPASSRLS, so the FORCEd row-level security of
# db/migrations binds it even though it owns the tables — as the compose
# file's `switchboard` role (docker/postgres-init/10-app-role.sh). Only
# this script and the tests' set-up use the superuser `postgres`. Trust on
# loopback is sound as the cluster is private to this host's users.
# initdb and pg_ctl refuse to run as root, so as root they run as the
# `postgres` user, which must own (and reach) the data folder. When DIR is
# under a folder `postgres` cannot enter (a clone in /root, say), the
# cluster lives under /tmp instead and DIR/pgroot names it.
#
# SB_PG_PORT, when set, is tried first instead of a random free port.
# Files in DIR: conninfo, port, pgroot (when relocated); the cluster
# folder (DIR or the relocated one) holds data/ and postgres.log.

SB_PG_BIN=${SB_PG_BIN:-/usr/lib/postgresql/15/bin}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# s_pg_as_owner CMD… — runs CMD as the cluster's owner (postgres when root).
s_pg_as_owner () {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# s_pg_root DIR — prints the folder that holds data/ and postgres.log,
# creating it (owned by the cluster's owner) when needed.
s_pg_root () {
    local dir=$1 root
    if [[ -s "$dir/pgroot" ]]; then
        root=$(<"$dir/pgroot")
        if [[ -d "$root" ]]; then echo "$root"; return 0; fi
    fi
    if [[ $(id -u) -ne 0 ]]; then echo "$dir"; return 0; fi
    chown postgres: "$dir"
    if runuser -u postgres -- test -x "$dir" -a -w "$dir"; then
        echo "$dir"
        return 0
    fi
    # `postgres` cannot reach DIR: keep the cluster under /tmp.
    root=$(mktemp -d /tmp/switchboard-pg.XXXXXX) || return 1
    chown postgres: "$root"
    echo "$root" >"$dir/pgroot"
    echo "$root"
}

# s_pg_psql DIR SQL — runs SQL as the superuser against database postgres.
s_pg_psql () {
    local port
    port=$(<"$1/port")
    "$SB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U postgres -d postgres -c "$2" >/dev/null
}

# sb_pg_running DIR — true when the cluster of DIR is up.
sb_pg_running () {
    local root
    [[ -d "$1" ]] || return 1
    root=$(s_pg_root "$1") || return 1
    [[ -f "$root/data/postmaster.pid" ]] || return 1
    s_pg_as_owner "$SB_PG_BIN/pg_ctl" -D "$root/data" status >/dev/null 2>&1
}

# sb_pg_start DIR [fresh|keep] [fsync] — starts the cluster of DIR.
# fresh (default) wipes any earlier data; keep reuses it. fsync is `off`
# (default, for tests) or `on`. Writes DIR/conninfo and DIR/port.
sb_pg_start () {
    local dir=$1 mode=${2:-fresh} fsync=${3:-off}
    local root data port attempt

    [[ -x "$SB_PG_BIN/initdb" ]] || { sb_say "pg: $SB_PG_BIN/initdb not found (run scripts/deps.sh)"; return 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if sb_pg_running "$dir"; then
        sb_pg_stop "$dir"
    fi
    root=$(s_pg_root "$dir") || return 1
    data=$root/data
    if [[ "$mode" == fresh ]]; then
        rm -rf "$data"
    fi
    rm -f "$dir/conninfo"

    if [[ ! -f "$data/PG_VERSION" ]]; then
        rm -rf "$data"
        s_pg_as_owner "$SB_PG_BIN/initdb" -D "$data" -U postgres -E UTF8 \
            --locale=C --auth=trust --no-sync >"$root/initdb.log" 2>&1 ||
            { sb_say "pg: initdb failed:"; cat "$root/initdb.log" >&2; return 1; }
        # Loopback TCP only; no unix socket, so no `local` lines either.
        s_pg_as_owner tee "$data/pg_hba.conf" >/dev/null <<'HBA'
# switchboard private cluster: trust on loopback only
host    all     all     127.0.0.1/32    trust
host    all     all     ::1/128         trust
HBA
        echo "include_if_exists = 'switchboard.conf'" |
            s_pg_as_owner tee -a "$data/postgresql.conf" >/dev/null
    fi

    for attempt in 1 2 3 4 5; do
        if [[ $attempt == 1 && -n "${SB_PG_PORT:-}" ]]; then
            port=$SB_PG_PORT        # a fixed port (restart tests, compose-like setups)
        else
            port=$(sb_free_port) || { sb_say "pg: no free port"; return 1; }
        fi
        s_pg_as_owner tee "$data/switchboard.conf" >/dev/null <<CONF
# Written by scripts/pg.sh at every start.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = $fsync
synchronous_commit = $fsync
full_page_writes = $fsync
max_connections = 200
shared_buffers = 32MB
logging_collector = off
log_min_messages = warning
CONF
        if s_pg_as_owner "$SB_PG_BIN/pg_ctl" -D "$data" -l "$root/postgres.log" \
               -w -t 60 -s start >/dev/null 2>&1; then
            echo "$port" >"$dir/port"
            s_pg_psql "$dir" "
                DO \$\$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard') THEN
                    CREATE ROLE switchboard LOGIN;
                  END IF;
                END \$\$;
                ALTER ROLE switchboard NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;" ||
                return 1
            if ! "$SB_PG_BIN/psql" -X -tAq -h 127.0.0.1 -p "$port" -U postgres -d postgres \
                   -c "SELECT 1 FROM pg_database WHERE datname = 'switchboard'" | grep -q 1; then
                s_pg_psql "$dir" "CREATE DATABASE switchboard OWNER switchboard" || return 1
            fi
            echo "host=127.0.0.1 port=$port dbname=switchboard user=switchboard" >"$dir/conninfo"
            return 0
        fi
        # Most likely a lost race for the port: try another one.
        sb_say "pg: start on port $port failed (attempt $attempt); see $root/postgres.log"
    done
    tail -n 20 "$root/postgres.log" >&2 || true
    return 1
}

# sb_pg_stop DIR — stops the cluster of DIR (fast shutdown), by PID when
# pg_ctl cannot. Succeeds when nothing runs.
sb_pg_stop () {
    local dir=$1 root pid
    [[ -d "$dir" ]] || return 0
    root=$(s_pg_root "$dir") || return 0
    rm -f "$dir/conninfo"
    [[ -f "$root/data/postmaster.pid" ]] || return 0
    pid=$(head -n 1 "$root/data/postmaster.pid")
    if ! s_pg_as_owner "$SB_PG_BIN/pg_ctl" -D "$root/data" -m fast -w -t 30 -s stop >/dev/null 2>&1; then
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -QUIT "$pid" 2>/dev/null || true   # immediate shutdown
            local deadline=$((SECONDS + 10))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    return 0
}

# sb_pg_pid DIR — prints the PID of the cluster's postmaster; fails when
# the cluster is not running.
sb_pg_pid () {
    local root pid
    [[ -d "$1" ]] || return 1
    root=$(s_pg_root "$1") || return 1
    [[ -f "$root/data/postmaster.pid" ]] || return 1
    pid=$(head -n 1 "$root/data/postmaster.pid")
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# sb_pg_restart DIR — starts again, with its data, a cluster of DIR that
# sb_pg_start started and that has since died (killed, crashed): on the
# same port (switchboard.conf keeps it), so the conninfo its clients hold
# stays right. PostgreSQL recovers from its WAL. Fails when it does not
# start (e.g. backends of the dead one still hold its shared memory: try
# again a little later).
sb_pg_restart () {
    local dir=$1 root port
    root=$(s_pg_root "$dir") || return 1
    [[ -s "$dir/port" && -f "$root/data/switchboard.conf" ]] ||
        { sb_say "pg: $dir was never started"; return 1; }
    port=$(<"$dir/port")
    s_pg_as_owner "$SB_PG_BIN/pg_ctl" -D "$root/data" -l "$root/postgres.log" \
        -w -t 60 -s start >/dev/null 2>&1 || return 1
    echo "host=127.0.0.1 port=$port dbname=switchboard user=switchboard" >"$dir/conninfo"
}

# sb_pg_conninfo DIR — prints the conninfo of a running cluster.
sb_pg_conninfo () {
    [[ -s "$1/conninfo" ]] || return 1
    cat "$1/conninfo"
}

# sb_pg_destroy DIR — stops the cluster of DIR and deletes its data, the
# relocated folder under /tmp included, and DIR itself.
sb_pg_destroy () {
    local dir=$1 root
    [[ -d "$dir" ]] || return 0
    sb_pg_stop "$dir"
    if [[ -s "$dir/pgroot" ]]; then
        root=$(<"$dir/pgroot")
        [[ "$root" == /tmp/switchboard-pg.* ]] && rm -rf "$root"
    fi
    rm -rf "$dir"
}
