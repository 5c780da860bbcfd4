#!/bin/bash
# docker/secrets.sh [DIR] — makes the secret files docker-compose.yml mounts
# (default DIR: docker/secrets, or $SB_SECRETS_DIR): postgres_password (the
# superuser's), db_password (the services' role), sandbox_api_key,
# session_key (the gateways' key for session IDs, cursors and requestState),
# admin_key (the operator key of the admin API, for sb-admin) and secret_key
# (the token service's: it seals the signing keys kept in PostgreSQL, so
# losing it loses them), each 32 random bytes as hex. Files that exist are kept, so running it again
# changes nothing. DIR is made mode 0700: the files themselves are 0644,
# since the containers' own users (postgres, switchboard) read them.
set -euo pipefail
dir=${1:-${SB_SECRETS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets}}
mkdir -p "$dir"
chmod 0700 "$dir"
for name in postgres_password db_password sandbox_api_key session_key admin_key secret_key; do
    if [[ ! -s "$dir/$name" ]]; then
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/$name.tmp"
        echo >>"$dir/$name.tmp"
        chmod 0644 "$dir/$name.tmp"
        mv "$dir/$name.tmp" "$dir/$name"
        echo "secrets: made $dir/$name"
    fi
done
