#!/bin/sh
# docker/entrypoint.sh — the image's entrypoint, `sb-entrypoint COMMAND…`:
# hands the process its secrets from files (Compose `secrets:`, mounted
# under /run/secrets) so that neither the compose file nor `docker inspect`
# ever holds a secret, then execs COMMAND (the process stays the child of
# the container's init, which forwards SIGHUP and SIGTERM to it).
#
#   SB_DATABASE_PASSWORD_FILE=PATH   the database password; it goes into a
#       private libpq password file (PGPASSFILE, mode 0600), which libpq
#       reads itself: the password is in no environment variable.
#   SB_SECRET_ENV="VAR=PATH …"       sets each VAR to the first line of the
#       file PATH, inside this container only: for what a binary reads from
#       its environment alone (a connector's token, SB_<CONNECTOR>_TOKEN,
#       the sandbox's SB_SANDBOX_API_KEY).
set -eu

s_die () {
    echo "sb-entrypoint: $*" >&2
    exit 1
}

if [ -n "${SB_DATABASE_PASSWORD_FILE:-}" ]; then
    [ -r "$SB_DATABASE_PASSWORD_FILE" ] ||
        s_die "cannot read SB_DATABASE_PASSWORD_FILE=$SB_DATABASE_PASSWORD_FILE"
    rm -f /tmp/sb-pgpass.*
    PGPASSFILE=$(umask 077 && mktemp /tmp/sb-pgpass.XXXXXX)
    # One .pgpass line for any host, port, database and user, with \ and :
    # escaped as libpq wants. printf is a shell builtin: no argv shows it.
    printf '*:*:*:*:%s\n' "$(head -n 1 "$SB_DATABASE_PASSWORD_FILE" |
        sed -e 's/\\/\\\\/g' -e 's/:/\\:/g')" >"$PGPASSFILE"
    export PGPASSFILE
    unset SB_DATABASE_PASSWORD_FILE
fi

for pair in ${SB_SECRET_ENV:-}; do
    var=${pair%%=*}
    path=${pair#*=}
    case $var in
        ''|[0-9]*|*[!A-Za-z0-9_]*) s_die "SB_SECRET_ENV: '$pair' is not VAR=PATH" ;;
    esac
    if [ "$path" = "$pair" ] || [ ! -r "$path" ]; then
        s_die "SB_SECRET_ENV: cannot read '$path' for $var"
    fi
    value=$(head -n 1 "$path")
    [ -n "$value" ] || s_die "SB_SECRET_ENV: '$path' for $var is empty"
    export "$var=$value"
done
unset SB_SECRET_ENV pair var path value

[ $# -gt 0 ] || s_die "no command to run"
exec "$@"
