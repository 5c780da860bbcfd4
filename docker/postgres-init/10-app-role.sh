#!/bin/bash
# docker/postgres-init/10-app-role.sh — run once by the postgres image, on
# an empty data volume (/docker-entrypoint-initdb.d): creates the role the
# services connect as, $SB_APP_ROLE, with the password in the file
# $SB_APP_PASSWORD_FILE, and gives it the database $POSTGRES_DB. The role
# owns what the migrations create but is no superuser and may not bypass
# row-level security, so the FORCEd tenant policies of db/migrations bind it.
# The server reads the password file itself (pg_read_file): it is in no
# command line and no environment variable.
set -euo pipefail
: "${SB_APP_ROLE:?set SB_APP_ROLE}" "${SB_APP_PASSWORD_FILE:?set SB_APP_PASSWORD_FILE}"
[[ -s "$SB_APP_PASSWORD_FILE" ]] || { echo "10-app-role: $SB_APP_PASSWORD_FILE is missing or empty" >&2; exit 1; }
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v role="$SB_APP_ROLE" -v pwfile="$SB_APP_PASSWORD_FILE" -v db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L',
              :'role', split_part(pg_read_file(:'pwfile'), E'\n', 1)) \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'db', :'role') \gexec
SQL
echo "10-app-role: role $SB_APP_ROLE owns database $POSTGRES_DB (no superuser, no BYPASSRLS)"
