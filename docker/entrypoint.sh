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
# The binaries read every other secret from its file themselves: a
# connector's token from the file SB_<CONNECTOR>_TOKEN_FILE names, the
# sandbox's key from SB_SANDBOX_API_KEY_FILE; no environment holds one.
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

[ $# -gt 0 ] || s_die "no command to run"
exec "$@"
