/*  tests/50_db_integration.c — db/sb_db against a real PostgreSQL:
    migrations (twice, and four processes at once, on fresh databases),
    row-level security, the services' role (no superuser, no BYPASSRLS),
    every tenant-owned table (found in information_schema, so a new one is
    covered) cascading on tenant deletion and isolated by forced RLS, plans
    as a table, the audit row task_create writes, the asynchronous connection (FIFO answers, errors
    through the callback, the queue limit, a query timeout, a killed
    backend) and a whole cluster stopped mid-query then started again.

    Uses the ctest `postgres` fixture for most cases; the stop/start case
    runs its own private cluster through scripts/pg.sh, so it can stop it. */
#include "sb_db.h"
#include "sb_clock.h"
#include "sb_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAX_CONNINFO  1024    /* conninfo strings built here */
#define S_MAX_ANSWERS   2000    /* callbacks recorded by one test */
#define S_PROCESS_MAX_MS 250    /* one sb_db_process call must return within this */

static char *s_conninfo;        /* the fixture's conninfo */

/*  What the callbacks saw, in order. */
typedef struct {
    int count;                  /* callbacks so far */
    int ok;                     /* ... with a result */
    int failed;                 /* ... with an error */
    int order [S_MAX_ANSWERS];  /* the `arg` index of each answer, in order */
    char value [S_MAX_ANSWERS][32]; /* first cell of each result ("" on error) */
    char error [S_MAX_ANSWERS][256]; /* each error ("" on success) */
} s_answers_t;

static s_answers_t s_answers;

/*  Callback argument: the query's index, stored in the pointer. */
static void
s_on_answer (const PGresult *res, const char *error, void *arg)
{
    int i = s_answers.count++;
    assert_true (i < S_MAX_ANSWERS);
    assert_true ((res == NULL) != (error == NULL));
    s_answers.order [i] = (int) (intptr_t) arg;
    s_answers.value [i][0] = 0;
    s_answers.error [i][0] = 0;
    if (res) {
        s_answers.ok++;
        if (PQntuples (res) > 0 && PQnfields (res) > 0)
            snprintf (s_answers.value [i], sizeof s_answers.value [i], "%s",
                      PQgetvalue (res, 0, 0));
    }
    else {
        s_answers.failed++;
        snprintf (s_answers.error [i], sizeof s_answers.error [i], "%s", error);
    }
}

/*  Runs the event loop until `count` answers arrived or `timeout_ms`
    passed; asserts no sb_db_process call blocks. Returns 0 or -1. */
static int
s_run_until (sb_db_t *db, int count, int timeout_ms)
{
    int64_t deadline = sb_clock_mono_ms () + timeout_ms;
    while (s_answers.count < count) {
        int64_t left = sb_clock_left_ms (deadline);
        if (left == 0)
            return -1;
        int wait = sb_db_timeout_ms (db);
        if (wait < 0 || wait > left)
            wait = (int) left;
        if (wait > 100)
            wait = 100;
        struct pollfd pfd = { .fd = sb_db_fd (db), .events = sb_db_wants (db) };
        poll (&pfd, pfd.fd >= 0? 1: 0, wait);
        int64_t start = sb_clock_mono_ms ();
        sb_db_process (db);
        assert_in_range (sb_clock_mono_ms () - start, 0, S_PROCESS_MAX_MS);
    }
    return 0;
}

/*  Runs the loop until the connection is up. */
static int
s_run_until_connected (sb_db_t *db, int timeout_ms)
{
    int64_t deadline = sb_clock_mono_ms () + timeout_ms;
    while (!sb_db_connected (db)) {
        if (sb_clock_left_ms (deadline) == 0)
            return -1;
        int wait = sb_db_timeout_ms (db);
        if (wait < 0 || wait > 50)
            wait = 50;
        struct pollfd pfd = { .fd = sb_db_fd (db), .events = sb_db_wants (db) };
        poll (&pfd, pfd.fd >= 0? 1: 0, wait);
        sb_db_process (db);
    }
    return 0;
}

/*  Runs one statement on a blocking connection; asserts success. */
static void
s_exec_ok (PGconn *conn, const char *sql)
{
    PGresult *res = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    PQclear (res);
}

/*  First cell of a one-value query, as a long. */
static long
s_scalar (PGconn *conn, const char *sql)
{
    PGresult *res = PQexec (conn, sql);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    long value = strtol (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    return value;
}

/*  Creates a fresh database owned by `switchboard` (as the superuser of the
    test cluster) and writes its conninfo into `out`. */
static void
s_fresh_database (const char *tag, char *out, size_t size)
{
    char admin [S_MAX_CONNINFO];
    //  Later keywords override earlier ones in a libpq conninfo.
    snprintf (admin, sizeof admin, "%s user=postgres dbname=postgres", s_conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (admin, 10000, &error);
    if (!conn)
        fail_msg ("admin connect: %s", error);
    char sql [256];
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS sbtest_%s_%d", tag, (int) getpid ());
    s_exec_ok (conn, sql);
    snprintf (sql, sizeof sql, "CREATE DATABASE sbtest_%s_%d OWNER switchboard", tag, (int) getpid ());
    s_exec_ok (conn, sql);
    PQfinish (conn);
    snprintf (out, size, "%s dbname=sbtest_%s_%d", s_conninfo, tag, (int) getpid ());
}

static void
test_connect_blocking_gives_up (void **state)
{
    int port = sb_harness_free_port ();
    char conninfo [S_MAX_CONNINFO];
    snprintf (conninfo, sizeof conninfo, "host=127.0.0.1 port=%d dbname=x user=x", port);
    char *error = NULL;
    int64_t start = sb_clock_mono_ms ();
    PGconn *conn = sb_db_connect_blocking (conninfo, 600, &error);
    assert_null (conn);
    assert_non_null (error);
    assert_in_range (sb_clock_mono_ms () - start, 500, 3000);
    free (error);
}

static void
test_migrate_twice_is_idempotent (void **state)
{
    char conninfo [S_MAX_CONNINFO];
    s_fresh_database ("twice", conninfo, sizeof conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (conninfo, 10000, &error);
    assert_non_null (conn);

    int rc = sb_db_migrate (conn, SB_SOURCE_DIR "/db/migrations", &error);
    if (rc)
        fail_msg ("first migrate: %s", error);
    long applied = s_scalar (conn, "SELECT count(*) FROM schema_migrations");
    assert_true (applied >= 2);
    rc = sb_db_migrate (conn, NULL, &error);     //  NULL: the default folder
    if (rc)
        fail_msg ("second migrate: %s", error);
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM schema_migrations"), applied);
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM tenants WHERE id = 'demo'"), 1);
    PQfinish (conn);
    free (error);
}

static void
test_migrate_bad_folder_fails (void **state)
{
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (s_conninfo, 10000, &error);
    assert_non_null (conn);
    int rc = sb_db_migrate (conn, "/nonexistent/migrations", &error);
    assert_int_equal (rc, -1);
    assert_non_null (error);
    assert_non_null (strstr (error, "/nonexistent/migrations"));
    free (error);
    PQfinish (conn);
}

static void
test_migrate_concurrently_is_safe (void **state)
{
    char conninfo [S_MAX_CONNINFO];
    s_fresh_database ("concurrent", conninfo, sizeof conninfo);
    enum { MIGRATORS = 4 };
    pid_t pids [MIGRATORS];
    for (int i = 0; i < MIGRATORS; i++) {
        pids [i] = fork ();
        assert_true (pids [i] >= 0);
        if (pids [i] == 0) {
            char *error = NULL;
            PGconn *conn = sb_db_connect_blocking (conninfo, 10000, &error);
            if (!conn || sb_db_migrate (conn, NULL, &error)) {
                fprintf (stderr, "migrator %d: %s\n", i, error? error: "?");
                _exit (1);
            }
            PQfinish (conn);
            _exit (0);
        }
    }
    for (int i = 0; i < MIGRATORS; i++) {
        int status;
        assert_int_equal (waitpid (pids [i], &status, 0), pids [i]);
        assert_true (WIFEXITED (status));
        assert_int_equal (WEXITSTATUS (status), 0);
    }
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (conninfo, 10000, &error);
    assert_non_null (conn);
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM schema_migrations"),
                      s_scalar (conn, "SELECT count(DISTINCT version) FROM schema_migrations"));
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM tenants WHERE id = 'demo'"), 1);
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM audit_log"), 0);   //  RLS: no tenant set
    PQfinish (conn);
}

static void
test_row_level_security (void **state)
{
    char conninfo [S_MAX_CONNINFO];
    s_fresh_database ("rls", conninfo, sizeof conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (conninfo, 10000, &error);
    assert_non_null (conn);
    assert_int_equal (sb_db_migrate (conn, NULL, &error), 0);
    s_exec_ok (conn, "INSERT INTO tenants (id, name) VALUES ('acme', 'Acme')");
    s_exec_ok (conn, "BEGIN");
    s_exec_ok (conn, "SELECT set_config('switchboard.tenant_id', 'acme', true)");
    s_exec_ok (conn, "INSERT INTO connections (tenant_id, connector) VALUES ('acme', 'x')");
    s_exec_ok (conn, "COMMIT");

    //  No tenant set: nothing visible.
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM connections"), 0);
    //  Each tenant sees its own rows only.
    s_exec_ok (conn, "SELECT set_config('switchboard.tenant_id', 'demo', false)");
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM connections"), 1);
    assert_int_equal (s_scalar (conn,
        "SELECT count(*) FROM connections WHERE tenant_id = 'acme'"), 0);
    //  Writing another tenant's row is refused.
    PGresult *res = PQexec (conn,
        "INSERT INTO connections (tenant_id, connector) VALUES ('acme', 'y')");
    assert_int_equal (PQresultStatus (res), PGRES_FATAL_ERROR);
    assert_non_null (strstr (PQresultErrorMessage (res), "row-level security"));
    PQclear (res);
    //  The system setting spans tenants, on purpose.
    s_exec_ok (conn, "SELECT set_config('switchboard.tenant_id', '', false)");
    s_exec_ok (conn, "SELECT set_config('switchboard.system', 'on', false)");
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM connections"), 2);
    //  Deleting a tenant deletes its data.
    s_exec_ok (conn, "DELETE FROM tenants WHERE id = 'acme'");
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM connections"), 1);
    PQfinish (conn);
}

/*  The tables with a tenant_id column (tenant-owned), by name, from
    information_schema: a new table is covered without editing this list. */
#define S_MAX_TENANT_TABLES 64

static int
s_tenant_tables (PGconn *conn, char names [][64])
{
    PGresult *res = PQexec (conn,
        "SELECT c.table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'"
        "   AND t.table_type = 'BASE TABLE' ORDER BY 1");
    if (PQresultStatus (res) != PGRES_TUPLES_OK)
        fail_msg ("tenant tables: %s", PQresultErrorMessage (res));
    int count = PQntuples (res);
    assert_in_range (count, 1, S_MAX_TENANT_TABLES);
    for (int i = 0; i < count; i++)
        snprintf (names [i], 64, "%s", PQgetvalue (res, i, 0));
    PQclear (res);
    return count;
}

/*  Rows of `table` whose tenant_id is `tenant`, as the session sees them. */
static long
s_count_of (PGconn *conn, const char *table, const char *tenant)
{
    char *ident = PQescapeIdentifier (conn, table, strlen (table));
    assert_non_null (ident);
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM %s WHERE tenant_id = $1", ident);
    PQfreemem (ident);
    const char *params [] = { tenant };
    PGresult *res = PQexecParams (conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    long value = strtol (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    return value;
}

/*  Runs `sql` with $1 = `tenant`; returns the status. */
static ExecStatusType
s_exec_as (PGconn *conn, const char *sql, const char *tenant, char *error, size_t size)
{
    const char *params [] = { tenant };
    PGresult *res = PQexecParams (conn, sql, 1, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus (res);
    if (error)
        snprintf (error, size, "%s", PQresultErrorMessage (res));
    PQclear (res);
    return status;
}

/*  One row of `tenant` in every tenant-owned table of the migrations,
    written in one transaction acting for that tenant (so each passes the
    tenant policy's WITH CHECK). The client "c1" must exist. */
static void
s_fill_tenant (PGconn *conn, const char *tenant)
{
    static const char *const statements [] = {
        "SELECT set_config ('switchboard.tenant_id', $1, true)",
        "INSERT INTO connections (tenant_id, connector) VALUES ($1, 'x')",
        "SELECT audit ($1, 'test', 'filled', '{}')",
        "SELECT * FROM task_create ($1, 't1', 'alice', 'x', 'y', '{}', '{}', 0, 1,"
        "                           60000, 1000, 1000)",
        "INSERT INTO users (tenant_id, email, password_hash)"
        " VALUES ($1, 'alice@example.com', '$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA')",
        "INSERT INTO oauth_grants (tenant_id, user_id, client_id, scope)"
        " SELECT $1, id, 'c1', 'mcp' FROM users WHERE tenant_id = $1",
        "INSERT INTO oauth_codes (code_hash, tenant_id, user_id, client_id, redirect_uri,"
        "                         code_challenge, scope, expires_at)"
        " SELECT sha256 (convert_to ($1 || '-code', 'UTF8')), $1, id, 'c1',"
        "        'https://client.example/cb', repeat ('A', 43), 'mcp', now () + interval '1 minute'"
        " FROM users WHERE tenant_id = $1",
        "INSERT INTO refresh_families (tenant_id, user_id, client_id, scope)"
        " SELECT $1, id, 'c1', 'mcp' FROM users WHERE tenant_id = $1",
        "INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, generation, expires_at)"
        " SELECT sha256 (convert_to ($1 || '-refresh', 'UTF8')), $1, id, 1,"
        "        now () + interval '30 days'"
        " FROM refresh_families WHERE tenant_id = $1",
        "SELECT connect_flow_create (sha256 (convert_to ($1 || '-state', 'UTF8')), $1, 'alice', 'x',"
        "                            '\\x00'::bytea, 'k1', sha256 (convert_to ($1 || '-cookie', 'UTF8')),"
        "                            'https://auth.example/connect/callback', 600)",
        "INSERT INTO usage_months (tenant_id, period_start, calls)"
        " VALUES ($1, quota_period_start (1, now ()), 1)",
        "INSERT INTO usage_minutes (tenant_id, minute, calls)"
        " VALUES ($1, date_trunc ('minute', now ()), 1)",
        //  Webhooks (migration 015): an endpoint, its event, a subscription,
        //  the event's delivery to it and an attempt.
        "INSERT INTO webhook_endpoints (id, tenant_id, connector, scheme, key_id, secret_enc)"
        " VALUES ('we_' || $1 || '_endpoint', $1, 'x', 'github', 'k1', '\\x00'::bytea)",
        "INSERT INTO webhook_events (tenant_id, endpoint_id, connector, event_key, body)"
        " VALUES ($1, 'we_' || $1 || '_endpoint', 'x', 'e1', '\\x7b7d'::bytea)",
        "INSERT INTO webhook_subscriptions (id, tenant_id, url, key_id, secret_enc)"
        " VALUES ('ws_' || $1 || '_subscription', $1, 'https://hook.example/in', 'k1',"
        "         '\\x00'::bytea)",
        "INSERT INTO webhook_deliveries (tenant_id, subscription_id, event_id)"
        " SELECT $1, 'ws_' || $1 || '_subscription', id FROM webhook_events WHERE tenant_id = $1",
        "INSERT INTO webhook_attempts (tenant_id, delivery_id, status, latency_ms)"
        " SELECT $1, id, 200, 1 FROM webhook_deliveries WHERE tenant_id = $1",
    };
    s_exec_ok (conn, "BEGIN");
    for (size_t i = 0; i < sizeof statements / sizeof statements [0]; i++) {
        char error [512];
        ExecStatusType status = s_exec_as (conn, statements [i], tenant, error, sizeof error);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            fail_msg ("fill %s: %s: %s", tenant, statements [i], error);
    }
    s_exec_ok (conn, "COMMIT");
}

//  The services' role is no superuser and cannot bypass row-level
//  security: the policies bind it although it owns the tables.
static void
test_app_role_is_bound_by_rls (void **state)
{
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (s_conninfo, 10000, &error);
    assert_non_null (conn);
    PGresult *res = PQexec (conn,
        "SELECT rolsuper, rolbypassrls, current_user FROM pg_roles WHERE rolname = current_user");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), 1);
    assert_string_equal (PQgetvalue (res, 0, 0), "f");
    assert_string_equal (PQgetvalue (res, 0, 1), "f");
    assert_string_equal (PQgetvalue (res, 0, 2), "switchboard");
    PQclear (res);
    assert_int_equal (sb_db_check_role (conn, &error), 0);
    PQfinish (conn);

    //  The superuser is refused, by the check and at start-up.
    char admin [S_MAX_CONNINFO];
    snprintf (admin, sizeof admin, "%s user=postgres", s_conninfo);
    conn = sb_db_connect_blocking (admin, 10000, &error);
    assert_non_null (conn);
    assert_int_equal (sb_db_check_role (conn, &error), -1);
    assert_non_null (strstr (error, "\"postgres\" is a superuser or has BYPASSRLS"));
    PQfinish (conn);
    free (error);
    assert_int_equal (sb_db_prepare (admin, NULL, 10000), -1);
}

//  Every table with a tenant_id: a foreign key on tenant_id alone to
//  tenants that cascades on delete, row-level security enabled and
//  forced, and the tenant policy. Plans are a table tenants refer to.
static void
test_tenant_tables_cascade_and_rls (void **state)
{
    char conninfo [S_MAX_CONNINFO];
    s_fresh_database ("tenancy", conninfo, sizeof conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (conninfo, 10000, &error);
    assert_non_null (conn);
    if (sb_db_migrate (conn, NULL, &error))
        fail_msg ("migrate: %s", error);

    char tables [S_MAX_TENANT_TABLES][64];
    int count = s_tenant_tables (conn, tables);
    assert_true (count >= 8);
    for (int i = 0; i < count; i++) {
        const char *params [] = { tables [i] };
        PGresult *res = PQexecParams (conn,
            "SELECT"
            "  (SELECT count(*) FROM pg_constraint k"
            "   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attname = 'tenant_id'"
            "   WHERE k.conrelid = c.oid AND k.contype = 'f'"
            "     AND k.confrelid = 'tenants'::regclass AND k.conkey = ARRAY[a.attnum]"
            "     AND k.confdeltype = 'c'),"
            "  c.relrowsecurity, c.relforcerowsecurity,"
            "  (SELECT count(*) FROM pg_policy p"
            "   WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation')"
            " FROM pg_class c WHERE c.oid = ('public.' || quote_ident ($1))::regclass",
            1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
            fail_msg ("%s: %s", tables [i], PQresultErrorMessage (res));
        if (strcmp (PQgetvalue (res, 0, 0), "1") != 0)
            fail_msg ("%s: no ON DELETE CASCADE foreign key tenant_id -> tenants", tables [i]);
        if (strcmp (PQgetvalue (res, 0, 1), "t") != 0 || strcmp (PQgetvalue (res, 0, 2), "t") != 0)
            fail_msg ("%s: row-level security not enabled and forced", tables [i]);
        if (strcmp (PQgetvalue (res, 0, 3), "1") != 0)
            fail_msg ("%s: no tenant_isolation policy", tables [i]);
        PQclear (res);
    }
    //  Plans: a table, not a CHECK list.
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM plans WHERE id IN ('free', 'pro', 'enterprise')"), 3);
    s_exec_ok (conn, "INSERT INTO tenants (id, name, plan) VALUES ('big', 'Big', 'enterprise')");
    PGresult *res = PQexec (conn, "INSERT INTO tenants (id, name, plan) VALUES ('odd', 'Odd', 'gold')");
    assert_int_equal (PQresultStatus (res), PGRES_FATAL_ERROR);
    assert_non_null (strstr (PQresultErrorMessage (res), "tenants_plan_fkey"));
    PQclear (res);
    //  001's CHECK list is gone: a new plan is a row.
    s_exec_ok (conn, "INSERT INTO plans (id, name) VALUES ('team', 'Team')");
    s_exec_ok (conn, "UPDATE tenants SET plan = 'team' WHERE id = 'big'");
    res = PQexec (conn, "DELETE FROM plans WHERE id = 'team'");             //  in use
    assert_int_equal (PQresultStatus (res), PGRES_FATAL_ERROR);
    PQclear (res);
    PQfinish (conn);
}

//  As the services' role, acting for tenant A: B's rows, in every
//  tenant-owned table, are invisible and can be neither written nor
//  changed; a task of an unknown tenant is refused; deleting B removes
//  its rows from every table and leaves A's.
static void
test_tenant_isolation_and_deletion (void **state)
{
    char conninfo [S_MAX_CONNINFO];
    s_fresh_database ("isolation", conninfo, sizeof conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (conninfo, 10000, &error);
    assert_non_null (conn);
    if (sb_db_migrate (conn, NULL, &error))
        fail_msg ("migrate: %s", error);
    s_exec_ok (conn, "INSERT INTO tenants (id, name) VALUES ('ta', 'A'), ('tb', 'B')");
    s_exec_ok (conn, "INSERT INTO oauth_clients (client_id, kind, redirect_uris)"
                     " VALUES ('c1', 'registered', ARRAY['https://client.example/cb'])");
    s_fill_tenant (conn, "ta");
    s_fill_tenant (conn, "tb");

    char tables [S_MAX_TENANT_TABLES][64];
    int count = s_tenant_tables (conn, tables);
    s_exec_ok (conn, "SELECT set_config ('switchboard.tenant_id', 'ta', false)");
    for (int i = 0; i < count; i++) {
        //  A sees its own row in every table (the fill covered them all) …
        if (s_count_of (conn, tables [i], "ta") < 1)
            fail_msg ("%s: tenant A's row is missing (is the table in s_fill_tenant?)", tables [i]);
        //  … and none of B's.
        if (s_count_of (conn, tables [i], "tb") != 0)
            fail_msg ("%s: tenant A sees tenant B's rows", tables [i]);
    }
    //  The task_create of the fill is in A's audit log.
    assert_int_equal (s_scalar (conn,
        "SELECT count(*) FROM audit_log WHERE action = 'task_created' AND actor = 'alice'"
        " AND detail->>'task' = 't1'"), 1);

    //  Writing B's rows, or moving A's to B, is refused; changing or
    //  deleting B's rows touches nothing.
    char message [512];
    assert_int_equal (s_exec_as (conn, "INSERT INTO users (tenant_id, email, password_hash)"
                                       " VALUES ($1, 'mallory@example.com', '$argon2id$x')",
                                 "tb", message, sizeof message), PGRES_FATAL_ERROR);
    assert_non_null (strstr (message, "row-level security"));
    assert_int_equal (s_exec_as (conn, "SELECT audit ($1, 'mallory', 'forged', '{}')",
                                 "tb", message, sizeof message), PGRES_FATAL_ERROR);
    assert_non_null (strstr (message, "row-level security"));
    assert_int_equal (s_exec_as (conn, "UPDATE users SET tenant_id = $1",
                                 "tb", message, sizeof message), PGRES_FATAL_ERROR);
    assert_non_null (strstr (message, "row-level security"));
    s_exec_ok (conn, "UPDATE users SET disabled_at = now () WHERE tenant_id = 'tb'");
    s_exec_ok (conn, "DELETE FROM refresh_tokens WHERE tenant_id = 'tb'");
    assert_int_equal (s_scalar (conn, "SELECT count(*) FROM users WHERE disabled_at IS NOT NULL"), 0);
    //  A task of a tenant `tenants` does not list is refused, clearly.
    assert_int_equal (s_exec_as (conn, "SELECT * FROM task_create ($1, 't2', 's', 'x', 'y', '{}',"
                                       " '{}', 0, 1, 60000, 1000, 1000)",
                                 "nobody", message, sizeof message), PGRES_FATAL_ERROR);
    assert_non_null (strstr (message, "tenant \"nobody\" is unknown"));

    //  Deleting B removes its rows everywhere; A's stay.
    s_exec_ok (conn, "SELECT set_config ('switchboard.tenant_id', '', false)");
    s_exec_ok (conn, "SELECT set_config ('switchboard.system', 'on', false)");
    for (int i = 0; i < count; i++)
        assert_true (s_count_of (conn, tables [i], "tb") >= 1);
    s_exec_ok (conn, "DELETE FROM tenants WHERE id = 'tb'");
    for (int i = 0; i < count; i++) {
        if (s_count_of (conn, tables [i], "tb") != 0)
            fail_msg ("%s: rows of a deleted tenant remain", tables [i]);
        assert_true (s_count_of (conn, tables [i], "ta") >= 1);
    }
    PQfinish (conn);
}

static void
test_async_queries_in_order (void **state)
{
    memset (&s_answers, 0, sizeof s_answers);
    sb_db_t *db = sb_db_new (s_conninfo);
    assert_non_null (db);
    enum { QUERIES = 200 };
    for (int i = 0; i < QUERIES; i++) {
        char number [16];
        snprintf (number, sizeof number, "%d", i);
        const char *params [] = { number };
        assert_int_equal (sb_db_query (db, "SELECT $1::int * 2", 1, params,
                                       s_on_answer, (void *) (intptr_t) i), 0);
    }
    assert_int_equal (s_run_until (db, QUERIES, 20000), 0);
    assert_true (sb_db_connected (db));
    assert_int_equal (s_answers.ok, QUERIES);
    for (int i = 0; i < QUERIES; i++) {
        assert_int_equal (s_answers.order [i], i);
        assert_int_equal (strtol (s_answers.value [i], NULL, 10), 2 * i);
    }
    sb_db_destroy (&db);
    assert_null (db);
    sb_db_destroy (&db);            //  idempotent
}

static void
test_async_error_reported (void **state)
{
    memset (&s_answers, 0, sizeof s_answers);
    sb_db_t *db = sb_db_new (s_conninfo);
    const char *null_param [] = { NULL };
    assert_int_equal (sb_db_query (db, "SELECT * FROM no_such_table", 0, NULL,
                                   s_on_answer, (void *) 0), 0);
    assert_int_equal (sb_db_query (db, "SELECT 1/0", 0, NULL, s_on_answer, (void *) 1), 0);
    assert_int_equal (sb_db_query (db, "SELECT coalesce($1::text, 'null')", 1, null_param,
                                   s_on_answer, (void *) 2), 0);
    assert_int_equal (s_run_until (db, 3, 10000), 0);
    assert_int_equal (s_answers.failed, 2);
    assert_non_null (strstr (s_answers.error [0], "no_such_table"));
    assert_non_null (strstr (s_answers.error [1], "division by zero"));
    assert_string_equal (s_answers.value [2], "null");
    sb_db_destroy (&db);
}

static void
test_async_queue_limit_and_shutdown (void **state)
{
    memset (&s_answers, 0, sizeof s_answers);
    sb_db_t *db = sb_db_new (s_conninfo);
    for (int i = 0; i < SB_MAX_DB_QUEUE; i++)
        assert_int_equal (sb_db_query (db, "SELECT 1", 0, NULL, s_on_answer,
                                       (void *) (intptr_t) i), 0);
    assert_int_equal (sb_db_query (db, "SELECT 1", 0, NULL, s_on_answer, NULL), -1);
    sb_db_destroy (&db);
    assert_int_equal (s_answers.count, SB_MAX_DB_QUEUE);
    assert_int_equal (s_answers.failed, SB_MAX_DB_QUEUE);
    assert_string_equal (s_answers.error [0], "shutting down");
}

static void
test_async_query_timeout_then_recovers (void **state)
{
    memset (&s_answers, 0, sizeof s_answers);
    sb_db_t *db = sb_db_new (s_conninfo);
    assert_int_equal (s_run_until_connected (db, 10000), 0);
    int64_t start = sb_clock_mono_ms ();
    assert_int_equal (sb_db_query (db, "SELECT pg_sleep(60)", 0, NULL, s_on_answer, (void *) 0), 0);
    assert_int_equal (s_run_until (db, 1, SB_DB_QUERY_TIMEOUT_MS + 5000), 0);
    assert_true (sb_clock_mono_ms () - start >= SB_DB_QUERY_TIMEOUT_MS - 50);
    assert_non_null (strstr (s_answers.error [0], "timed out"));
    //  The next query gets a fresh connection.
    assert_int_equal (sb_db_query (db, "SELECT 42", 0, NULL, s_on_answer, (void *) 1), 0);
    assert_int_equal (s_run_until (db, 2, 10000), 0);
    assert_string_equal (s_answers.value [1], "42");
    sb_db_destroy (&db);
}

static void
test_async_backend_killed (void **state)
{
    memset (&s_answers, 0, sizeof s_answers);
    sb_db_t *db = sb_db_new (s_conninfo);
    assert_int_equal (sb_db_query (db, "SELECT pg_backend_pid()", 0, NULL, s_on_answer, (void *) 0), 0);
    assert_int_equal (s_run_until (db, 1, 10000), 0);
    char backend [32];
    snprintf (backend, sizeof backend, "%s", s_answers.value [0]);

    //  A long query, then two behind it; the backend is killed under them.
    assert_int_equal (sb_db_query (db, "SELECT pg_sleep(3)", 0, NULL, s_on_answer, (void *) 1), 0);
    assert_int_equal (sb_db_query (db, "SELECT 1", 0, NULL, s_on_answer, (void *) 2), 0);
    sb_db_process (db);             //  sends the sleep
    char *error = NULL;
    PGconn *admin = sb_db_connect_blocking (s_conninfo, 10000, &error);
    assert_non_null (admin);
    const char *params [] = { backend };
    PGresult *res = PQexecParams (admin, "SELECT pg_terminate_backend($1::int)",
                                  1, NULL, params, NULL, NULL, 0);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    PQclear (res);
    PQfinish (admin);

    assert_int_equal (s_run_until (db, 3, 10000), 0);
    assert_int_equal (s_answers.order [1], 1);
    assert_true (s_answers.error [1][0] != 0);
    //  Back up by itself: a later query works.
    assert_int_equal (sb_db_query (db, "SELECT 7", 0, NULL, s_on_answer, (void *) 3), 0);
    assert_int_equal (s_run_until (db, 4, 10000), 0);
    assert_string_equal (s_answers.value [3], "7");
    sb_db_destroy (&db);
}

/*  Runs scripts/pg.sh `sb_pg_start DIR keep off`, `sb_pg_stop DIR` or
    `sb_pg_destroy DIR`; SB_PG_PORT makes a restart reuse `port`. */
static int
s_pg_script (const char *action, const char *dir, int port)
{
    char command [2048];
    snprintf (command, sizeof command,
              "SB_PG_PORT=%d bash -c 'source \"%s/scripts/pg.sh\" && %s \"%s\"%s'",
              port, SB_SOURCE_DIR, action, dir,
              strcmp (action, "sb_pg_start") == 0? " keep off": "");
    return system (command);
}

static void
test_async_cluster_stopped_and_restarted (void **state)
{
    char dir [1024];
    snprintf (dir, sizeof dir, "%s/../test-pg-restart-%d", SB_BIN_DIR, (int) getpid ());
    int port = sb_harness_free_port ();
    assert_int_equal (s_pg_script ("sb_pg_start", dir, port), 0);
    char conninfo [S_MAX_CONNINFO];
    snprintf (conninfo, sizeof conninfo,
              "host=127.0.0.1 port=%d dbname=switchboard user=switchboard", port);

    memset (&s_answers, 0, sizeof s_answers);
    sb_db_t *db = sb_db_new (conninfo);
    assert_int_equal (s_run_until_connected (db, 10000), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal (sb_db_query (db, i == 0? "SELECT pg_sleep(30)": "SELECT 1", 0, NULL,
                                       s_on_answer, (void *) (intptr_t) i), 0);
    sb_db_process (db);
    assert_int_equal (s_pg_script ("sb_pg_stop", dir, port), 0);

    //  Every pending query is answered with an error, well before its deadline.
    int64_t start = sb_clock_mono_ms ();
    assert_int_equal (s_run_until (db, 5, 10000), 0);
    assert_true (sb_clock_mono_ms () - start < SB_DB_QUERY_TIMEOUT_MS);
    assert_int_equal (s_answers.failed, 5);
    assert_false (sb_db_connected (db));

    //  While down, a query fails instead of hanging.
    assert_int_equal (sb_db_query (db, "SELECT 1", 0, NULL, s_on_answer, (void *) 5), 0);
    assert_int_equal (s_run_until (db, 6, SB_DB_QUERY_TIMEOUT_MS + 2000), 0);
    assert_true (s_answers.error [5][0] != 0);

    //  The cluster comes back on the same port: the connection recovers.
    assert_int_equal (s_pg_script ("sb_pg_start", dir, port), 0);
    assert_int_equal (s_run_until_connected (db, 15000), 0);
    assert_int_equal (sb_db_query (db, "SELECT 'back'", 0, NULL, s_on_answer, (void *) 6), 0);
    assert_int_equal (s_run_until (db, 7, 10000), 0);
    assert_string_equal (s_answers.value [6], "back");
    sb_db_destroy (&db);
    assert_int_equal (s_pg_script ("sb_pg_destroy", dir, port), 0);
}

int
main (void)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo) {
        fprintf (stderr, "50_db_integration: the postgres fixture did not run\n");
        return 1;
    }
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_connect_blocking_gives_up),
        cmocka_unit_test (test_migrate_twice_is_idempotent),
        cmocka_unit_test (test_migrate_bad_folder_fails),
        cmocka_unit_test (test_migrate_concurrently_is_safe),
        cmocka_unit_test (test_row_level_security),
        cmocka_unit_test (test_app_role_is_bound_by_rls),
        cmocka_unit_test (test_tenant_tables_cascade_and_rls),
        cmocka_unit_test (test_tenant_isolation_and_deletion),
        cmocka_unit_test (test_async_queries_in_order),
        cmocka_unit_test (test_async_error_reported),
        cmocka_unit_test (test_async_queue_limit_and_shutdown),
        cmocka_unit_test (test_async_query_timeout_then_recovers),
        cmocka_unit_test (test_async_backend_killed),
        cmocka_unit_test (test_async_cluster_stopped_and_restarted),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    free (s_conninfo);
    return failed;
}
