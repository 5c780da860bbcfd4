/*  tests/50_db_integration.c — db/sb_db against a real PostgreSQL:
    migrations (twice, and four processes at once, on fresh databases),
    row-level security, the asynchronous connection (FIFO answers, errors
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
