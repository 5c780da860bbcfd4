/*  tests/38_workers_roles.c — the token and webhook workers as real
    processes against a fake broker: they register with their role as the
    service, heartbeat, answer "ping" (the token worker from the real test
    PostgreSQL, with migrations applied) and refuse unknown ops; the
    webhook worker drops a USAGE (it is not the quota service). The token
    worker's audit/record writes a gateway's refusal to audit_log and
    refuses any action a gateway does not decide, and malformed data. */
#include <czmq.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_harness.h"
#include "sb_attr.h"
#include "sb_job.h"

#include <libpq-fe.h>

#define HEARTBEAT_MS    200
#define WAIT_MS         5000

typedef struct {
    fake_broker_t *broker;      /* fake broker the worker registers with */
    pid_t pid;                  /* the sb-worker process */
} s_worker_t;

static s_worker_t s_slot;       /* the one worker a test runs */
static s_worker_t *s_current;   /* set while it may need cleaning up */

static int
s_cleanup (void **state)
{
    if (s_current) {
        if (s_current->pid > 0 && sb_harness_alive (s_current->pid))
            sb_harness_kill (s_current->pid);
        fake_broker_destroy (&s_current->broker);
        s_current = NULL;
    }
    return 0;
}

//  Starts sb-worker --role `role` with extra arguments and waits for READY.
static void
s_start (s_worker_t *w, const char *role, const char *extra1, const char *extra2)
{
    s_current = w;
    w->pid = -1;
    w->broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (w->broker);
    char heartbeat [16];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", role, "--broker", w->broker->endpoint,
        "--credit", "4", "--heartbeat-ms", heartbeat, "--log-level", "info",
        extra1, extra2, NULL
    };
    w->pid = sb_harness_spawn (argv, NULL);
    assert_true (w->pid > 0);
    sb_msg_t msg = { 0 };
    //  The token worker migrates before it registers: allow for that
    assert_int_equal (fake_broker_recv (w->broker, &msg, 30000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    assert_string_equal (msg.service, role);
    assert_int_equal (msg.credit, 4);
    sb_msg_reset (&msg);
    assert_int_equal (fake_broker_wait_heartbeats (w->broker, 2, 10 * HEARTBEAT_MS), 0);
}

static void
s_stop (s_worker_t *w)
{
    int wstatus = sb_harness_stop (w->pid);
    w->pid = -1;
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 0);
    fake_broker_destroy (&w->broker);
    s_current = NULL;
}

static json_t *
s_call (s_worker_t *w, const char *corr_id, const char *op, sb_status_t *status)
{
    assert_int_equal (fake_broker_send_op (w->broker, corr_id, 3000, 0, op, NULL, NULL), 0);
    char *text = NULL;
    assert_int_equal (fake_broker_result (w->broker, corr_id, WAIT_MS, status, &text), 0);
    json_t *json = json_loads (text, 0, NULL);
    if (!json)
        fail_msg ("result is not JSON: %s", text);
    free (text);
    return json;
}

static void
test_token_ping_db (void **state)
{
    char *conninfo = sb_harness_pg_conninfo ();
    assert_non_null (conninfo);
    char migrations [512];
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    char db [1024];
    snprintf (db, sizeof db, "--db=%s", conninfo);
    free (conninfo);

    s_worker_t *w = &s_slot;
    s_start (w, "token", db, migrations);
    sb_status_t status;
    json_t *result = s_call (w, "tping-1", "ping", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "pong")));
    assert_string_equal (json_string_value (json_object_get (result, "role")), "token");
    assert_string_equal (json_string_value (json_object_get (result, "db")), "ok");
    assert_true (json_integer_value (json_object_get (result, "migrations")) >= 1);
    json_decref (result);

    result = s_call (w, "tping-2", "no_such_op", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_string_equal (json_string_value (json_object_get (result, "error")), "unknown op no_such_op");
    json_decref (result);
    s_stop (w);
}

//  Sends audit/record with `data` (tenant "demo", the fake broker's) and
//  returns its result (new) and status.
static json_t *
s_audit (s_worker_t *w, const char *corr_id, const char *data, sb_status_t *status)
{
    sb_job_t job = { .op = "audit/record", .data = sb_unconst (data) };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    assert_int_equal (fake_broker_send_job (w->broker, corr_id, 3000, 0, &payload), 0);
    char *text = NULL;
    assert_int_equal (fake_broker_result (w->broker, corr_id, WAIT_MS, status, &text), 0);
    json_t *json = json_loads (text, 0, NULL);
    if (!json)
        fail_msg ("result is not JSON: %s", text);
    free (text);
    return json;
}

//  Rows of audit_log for tenant demo, actor `actor`, action `action`.
static long
s_audit_rows (const char *actor, const char *action)
{
    char *conninfo = sb_harness_pg_conninfo ();
    PGconn *conn = conninfo? PQconnectdb (conninfo): NULL;
    free (conninfo);
    assert_true (conn && PQstatus (conn) == CONNECTION_OK);
    PQclear (PQexec (conn, "SELECT set_config ('switchboard.tenant_id', 'demo', false)"));
    const char *params [] = { actor, action };
    PGresult *res = PQexecParams (conn, "SELECT count(*) FROM audit_log WHERE tenant_id = 'demo'"
                                  " AND actor = $1 AND action = $2", 2, NULL, params, NULL, NULL, 0);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    long count = strtol (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    PQfinish (conn);
    return count;
}

static void
test_token_audit_record (void **state)
{
    char *conninfo = sb_harness_pg_conninfo ();
    assert_non_null (conninfo);
    char db [1024];
    snprintf (db, sizeof db, "--db=%s", conninfo);
    free (conninfo);
    s_worker_t *w = &s_slot;
    s_start (w, "token", db, NULL);

    long before = s_audit_rows ("user:38", "scope_refused");
    sb_status_t status;
    json_t *result = s_audit (w, "audit-1", "{\"action\":\"scope_refused\",\"subject\":\"user:38\","
                              "\"detail\":{\"needed\":\"mcp:tools mcp:write\"}}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "recorded")));
    json_decref (result);
    assert_int_equal (s_audit_rows ("user:38", "scope_refused"), before + 1);
    //  An access token the gateway refused on the admin API.
    long admin = s_audit_rows ("user:38", "admin_refused");
    result = s_audit (w, "audit-2", "{\"action\":\"admin_refused\",\"subject\":\"user:38\","
                      "\"detail\":{\"method\":\"GET\",\"path\":\"/admin/tenants\"}}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "recorded")));
    json_decref (result);
    assert_int_equal (s_audit_rows ("user:38", "admin_refused"), admin + 1);

    //  Refused, writing nothing: an action the services write themselves,
    //  malformed data, no subject, a detail that is not an object or too big.
    char big [3000];
    snprintf (big, sizeof big, "{\"action\":\"scope_refused\",\"subject\":\"user:38\","
              "\"detail\":{\"x\":\"%02900d\"}}", 0);
    const char *bad [] = {
        "{\"action\":\"task_created\",\"subject\":\"user:38\",\"detail\":{}}",
        "{\"action\":\"token_issued\",\"subject\":\"user:38\"}",
        "not json",
        "[\"scope_refused\"]",
        "{\"action\":\"scope_refused\",\"detail\":{}}",
        "{\"action\":\"scope_refused\",\"subject\":\"\",\"detail\":{}}",
        "{\"action\":\"scope_refused\",\"subject\":\"user:38\",\"detail\":[1]}",
        big,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char corr_id [32];
        snprintf (corr_id, sizeof corr_id, "audit-bad-%zu", i);
        result = s_audit (w, corr_id, bad [i], &status);
        if (status != SB_STATUS_FAILED)
            fail_msg ("bad record %zu: status %d", i, (int) status);
        assert_non_null (strstr (json_string_value (json_object_get (result, "error")), "audit/record"));
        json_decref (result);
    }
    assert_int_equal (s_audit_rows ("user:38", "scope_refused"), before + 1);
    assert_int_equal (s_audit_rows ("user:38", "task_created"), 0);
    assert_int_equal (s_audit_rows ("user:38", "token_issued"), 0);
    s_stop (w);
}

static void
test_token_db_outage (void **state)
{
    //  The worker reaches PostgreSQL through a proxy the test can cut
    char *conninfo = sb_harness_pg_conninfo ();
    assert_non_null (conninfo);
    const char *port_at = strstr (conninfo, "port=");
    assert_non_null (port_at);
    fake_proxy_t *proxy = fake_proxy_new ((int) strtol (port_at + 5, NULL, 10));
    assert_non_null (proxy);
    char db [1024];
    snprintf (db, sizeof db, "--db=%s host=127.0.0.1 port=%d", conninfo, fake_proxy_port (proxy));
    free (conninfo);

    s_worker_t *w = &s_slot;
    s_start (w, "token", db, NULL);
    sb_status_t status;
    json_t *result = s_call (w, "out-1", "ping", &status);
    assert_true (json_is_true (json_object_get (result, "pong")));
    json_decref (result);

    //  Database gone: a prompt "unavailable", not a hang
    fake_proxy_set_down (proxy, true);
    int64_t start = zclock_mono ();
    result = s_call (w, "out-2", "ping", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_false (json_is_true (json_object_get (result, "pong")));
    assert_string_equal (json_string_value (json_object_get (result, "db")), "unavailable");
    assert_true (zclock_mono () - start < 2000);
    json_decref (result);

    //  Back again: the worker reconnects by itself
    fake_proxy_set_down (proxy, false);
    int64_t deadline = zclock_mono () + 30000;
    bool pong = false;
    for (int i = 0; !pong && zclock_mono () < deadline; i++) {
        char corr_id [32];
        snprintf (corr_id, sizeof corr_id, "out-back-%d", i);
        result = s_call (w, corr_id, "ping", &status);
        pong = json_is_true (json_object_get (result, "pong"));
        json_decref (result);
    }
    assert_true (pong);
    s_stop (w);
    fake_proxy_destroy (&proxy);
}

static void
test_token_needs_db (void **state)
{
    //  Without a reachable database the token worker refuses to start
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", "tcp://127.0.0.1:1",
        "--db", "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2", NULL
    };
    pid_t pid = sb_harness_spawn (argv, NULL);
    assert_true (pid > 0);
    int64_t deadline = zclock_mono () + 20000;
    while (sb_harness_alive (pid) && zclock_mono () < deadline) {
        zpoller_t *idle = zpoller_new (NULL);
        zpoller_wait (idle, 20);        // poll the process state
        zpoller_destroy (&idle);
    }
    assert_false (sb_harness_alive (pid));
    int wstatus = sb_harness_stop (pid);
    assert_true (WIFEXITED (wstatus));
    assert_int_not_equal (WEXITSTATUS (wstatus), 0);
}

static void
test_webhook_ping (void **state)
{
    s_worker_t *w = &s_slot;
    s_start (w, "webhook", NULL, NULL);
    //  USAGE to a role that stores none: dropped, neither ACKed nor
    //  answered with LIMITS (the worker reads in order, so anything it
    //  sent back would come before the ping's RESULT)
    sb_msg_t usage = { 0 };
    assert_int_equal (sb_msg_set_usage (&usage, 7, 1, "broker-test", NULL), 0);
    assert_int_equal (sb_msg_send (w->broker->router, &usage, w->broker->worker), 0);
    sb_msg_reset (&usage);
    sb_status_t status;
    json_t *result = s_call (w, "wping-1", "ping", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "pong")));
    assert_string_equal (json_string_value (json_object_get (result, "role")), "webhook");
    json_decref (result);
    result = s_call (w, "wping-2", "tools/call", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    json_decref (result);
    s_stop (w);
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_teardown (test_webhook_ping, s_cleanup),
        cmocka_unit_test_teardown (test_token_ping_db, s_cleanup),
        cmocka_unit_test_teardown (test_token_audit_record, s_cleanup),
        cmocka_unit_test_teardown (test_token_db_outage, s_cleanup),
        cmocka_unit_test (test_token_needs_db),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
