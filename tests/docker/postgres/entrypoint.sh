#!/bin/bash
# tests/docker/postgres/entrypoint.sh — the stand-in's entrypoint, doing what
# the official image's docker-entrypoint.sh does for docker-compose.yml: on
# an empty PGDATA, initdb with POSTGRES_USER and its password, scram auth
# for every TCP client, POSTGRES_DB created, then each file of
# /docker-entrypoint-initdb.d run in order (*.sh executed when executable,
# sourced otherwise; *.sql through psql) against a server on its unix
# socket only; finally postgres itself, listening on every address.
set -euo pipefail

# s_file_env VAR [DEFAULT] — VAR from VAR or the file VAR_FILE names.
s_file_env () {
    local var=$1 file_var="${1}_FILE" def=${2:-}
    if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
        echo "error: both $var and $file_var are set" >&2
        exit 1
    fi
    local value=$def
    if [[ -n "${!var:-}" ]]; then
        value=${!var}
    elif [[ -n "${!file_var:-}" ]]; then
        value=$(<"${!file_var}")
    fi
    export "$var"="$value"
    unset "$file_var"
}

if [[ "${1:-}" == postgres && $(id -u) == 0 ]]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [[ "${1:-}" == postgres && ! -s "$PGDATA/PG_VERSION" ]]; then
    s_file_env POSTGRES_PASSWORD
    s_file_env POSTGRES_USER postgres
    s_file_env POSTGRES_DB "$POSTGRES_USER"
    [[ -n "$POSTGRES_PASSWORD" ]] || { echo "error: POSTGRES_PASSWORD(_FILE) is not set" >&2; exit 1; }
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is words, as in the official image
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
           -E UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -s start
    export PGPASSWORD=$POSTGRES_PASSWORD
    psql=(psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --no-password)
    if [[ "$POSTGRES_DB" != postgres ]]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case $f in
            *.sh) if [[ -x "$f" ]]; then echo "running $f"; "$f"; else echo "sourcing $f"; # shellcheck disable=SC1090
                      . "$f"; fi ;;
            *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *) if [[ -e "$f" ]]; then echo "ignoring $f"; fi ;;
        esac
    done
    unset PGPASSWORD
    pg_ctl -D "$PGDATA" -m fast -w -s stop
    echo "PostgreSQL init process complete; ready for start up."
fi

if [[ "${1:-}" == postgres ]]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
