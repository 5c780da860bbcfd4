/*  tests/38_workers_task.c — the task role (workers/sb_task_role.h) as a
    real sb-worker process against a fake broker and the real test
    PostgreSQL: the task store's ops end to end, from job to row and back.

      - create → get: working, every Task field, ISO 8601 UTC timestamps;
      - finish completed / failed / input_required → get shows result,
        error (with statusMessage) or the outstanding inputRequests; a
        terminal or cancelled task takes no outcome;
      - update: a partial answer keeps the task input_required with the
        other request only; the last answer resumes it once (merged inputs,
        round + 1, working); keys not asked are ignored; two updates racing
        on two workers resume it exactly once;
      - cancel: a task not yet terminal is cancelled, a terminal one stays;
      - another tenant, another subject, an unknown id: "not found";
      - a task still working past its run deadline reads as failed;
      - an expired task is not found, and the sweep deletes its row;
      - malformed jobs and data end failed with a sentence.

    Every tenant used here starts with a prefix unique to this run; the rows
    are deleted at the end. */
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
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

#define HEARTBEAT_MS    200
#define WAIT_MS         10000       /* a RESULT, at most */
#define CHANGE_WAIT_MS  15000       /* a task reaching a state the test waits for */
#define ID_SIZE         48          /* a task id of this test, with its NUL */

typedef struct {
    fake_broker_t *broker;      /* fake broker the worker registers with */
    pid_t pid;                  /* the sb-worker --role task process */
    sb_msg_t held;              /* a message that came while the test waited on another */
    bool holding;               /* `held` is set */
} s_worker_t;

static s_worker_t s_one;        /* the worker most tests use */
static s_worker_t *s_workers [2];   /* the workers running now */
static char s_prefix [32];      /* tenants of this run start with it */
static char *s_conninfo;        /* the test PostgreSQL */
static int s_seq;               /* numbers correlation and task ids */

//  ---------------------------------------------------------------------
//  The workers

//  Answers the heartbeats of every running worker but `busy`, so none
//  presumes its broker gone while the test talks to another; a message
//  other than a heartbeat is held for the next s_recv of its worker.
static void
s_keep_alive (s_worker_t *busy)
{
    for (size_t i = 0; i < sizeof s_workers / sizeof s_workers [0]; i++) {
        s_worker_t *w = s_workers [i];
        if (!w || w == busy || !w->broker || !w->broker->worker || w->holding)
            continue;
        if (fake_broker_recv (w->broker, &w->held, 0) == 0)
            w->holding = true;
    }
}

//  The next message (not a heartbeat) from `w` within `timeout_ms`,
//  keeping the other workers alive meanwhile. Returns 0 or -1.
static int
s_recv (s_worker_t *w, sb_msg_t *msg, int timeout_ms)
{
    if (w->holding) {
        *msg = w->held;
        memset (&w->held, 0, sizeof w->held);
        w->holding = false;
        return 0;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        s_keep_alive (w);
        int64_t left = deadline - zclock_mono ();
        if (left < 0)
            return -1;
        if (fake_broker_recv (w->broker, msg, left > 50 ? 50 : (int) left) == 0)
            return 0;
    }
}

static void
s_start (s_worker_t *w)
{
    for (size_t i = 0; i < sizeof s_workers / sizeof s_workers [0]; i++)
        if (!s_workers [i]) {
            s_workers [i] = w;
            break;
        }
    w->broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (w->broker);
    char heartbeat [16], db [1024], migrations [512];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "task", "--broker", w->broker->endpoint,
        "--credit", "8", "--heartbeat-ms", heartbeat, db, migrations, NULL
    };
    w->pid = sb_harness_spawn (argv, NULL);
    assert_true (w->pid > 0);
    sb_msg_t msg = { 0 };
    //  It migrates before it registers: allow for that
    assert_int_equal (s_recv (w, &msg, 30000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    assert_string_equal (msg.service, "task");
    sb_msg_reset (&msg);
}

static void
s_stop (s_worker_t *w)
{
    for (size_t i = 0; i < sizeof s_workers / sizeof s_workers [0]; i++)
        if (s_workers [i] == w)
            s_workers [i] = NULL;
    if (w->holding)
        sb_msg_reset (&w->held);
    w->holding = false;
    if (w->pid > 0) {
        int wstatus = sb_harness_stop (w->pid);
        w->pid = -1;
        assert_true (WIFEXITED (wstatus));
        assert_int_equal (WEXITSTATUS (wstatus), 0);
    }
    fake_broker_destroy (&w->broker);
}

//  A tenant of this run: "<prefix>-<name>", listed in `tenants` (a task
//  belongs to a known tenant: migration 004).
static const char *
s_tenant (const char *name)
{
    static char tenants [4][64];
    static int next;
    char *tenant = tenants [next++ % 4];
    snprintf (tenant, 64, "%s-%s", s_prefix, name);
    PGconn *conn = PQconnectdb (s_conninfo);
    assert_int_equal (PQstatus (conn), CONNECTION_OK);
    const char *params [] = { tenant };
    PGresult *res = PQexecParams (conn, "INSERT INTO tenants (id, name) VALUES ($1, $1) "
                                        "ON CONFLICT (id) DO NOTHING",
                                  1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        fail_msg ("tenant %s: %s", tenant, PQresultErrorMessage (res));
    PQclear (res);
    PQfinish (conn);
    return tenant;
}

//  A fresh task id.
static void
s_new_id (char id [ID_SIZE])
{
    snprintf (id, ID_SIZE, "T%s_%d", s_prefix + 3, ++s_seq);
}

//  Sends one job to `w` for `tenant` without waiting (corr_id out).
static void
s_send (s_worker_t *w, const char *tenant, sb_job_t *job, char corr_id [32])
{
    snprintf (corr_id, 32, "c%d", ++s_seq);
    zframe_t *payload = sb_job_encode (job);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    msg.command = SB_CMD_JOB;
    snprintf (msg.corr_id, sizeof msg.corr_id, "%s", corr_id);
    snprintf (msg.tenant, sizeof msg.tenant, "%s", tenant);
    msg.timeout_ms = WAIT_MS;
    msg.attempt = 1;
    msg.payload = payload;
    assert_non_null (w->broker->worker);
    assert_int_equal (sb_msg_send (w->broker->router, &msg, w->broker->worker), 0);
    sb_msg_reset (&msg);
}

//  Waits for the RESULT of `corr_id`: its status and JSON (new).
static json_t *
s_wait (s_worker_t *w, const char *corr_id, sb_status_t *status)
{
    sb_msg_t msg = { 0 };
    if (s_recv (w, &msg, WAIT_MS))
        fail_msg ("no RESULT %s in %d ms", corr_id, WAIT_MS);
    if (msg.command != SB_CMD_RESULT || strcmp (msg.corr_id, corr_id) != 0 || !msg.payload)
        fail_msg ("expected RESULT %s, got %s %s", corr_id, sb_cmd_name (msg.command), msg.corr_id);
    sb_job_result_t result = { 0 };
    assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload),
                                            &result), 0);
    *status = msg.status;
    json_t *json = json_loads (result.result, 0, NULL);
    if (!json)
        fail_msg ("result is not JSON: %s", result.result);
    sb_job_result_clear (&result);
    sb_msg_reset (&msg);
    return json;
}

//  One job, its result; fails unless RESULT is `want`.
static json_t *
s_call (s_worker_t *w, const char *tenant, sb_job_t *job, sb_status_t want)
{
    char corr_id [32];
    s_send (w, tenant, job, corr_id);
    sb_status_t status;
    json_t *result = s_wait (w, corr_id, &status);
    if (status != want) {
        char *text = json_dumps (result, JSON_COMPACT);
        fail_msg ("%s: status %s, want %s: %s", job->op, sb_status_name (status),
                  sb_status_name (want), text);
    }
    return result;
}

//  The ops, as the gateway sends them.
static json_t *
s_create_with (const char *tenant, const char *id, const char *subject, const char *data,
               const char *inputs, sb_status_t want)
{
    sb_job_t job = { .op = "task/create", .task = sb_unconst (id), .subject = sb_unconst (subject),
                     .connector = "conformance", .tool = "test_tool_with_task",
                     .args = "{\"n\":1,\"text\":\"caf\\u00e9\"}", .inputs = sb_unconst (inputs),
                     .caps = 3, .round = 1, .data = sb_unconst (data) };
    return s_call (&s_one, tenant, &job, want);
}

static json_t *
s_create (const char *tenant, const char *id, const char *subject)
{
    return s_create_with (tenant, id, subject, "{\"ttlMs\":600000,\"pollIntervalMs\":250,"
                          "\"runMs\":600000}", NULL, SB_STATUS_OK);
}

static json_t *
s_op (const char *op, const char *tenant, const char *id, const char *subject, const char *data)
{
    sb_job_t job = { .op = sb_unconst (op), .task = sb_unconst (id), .subject = sb_unconst (subject),
                     .data = sb_unconst (data) };
    return s_call (&s_one, tenant, &job, SB_STATUS_OK);
}

//  task/get's task (borrowed from *reply_p, which the caller frees).
static json_t *
s_get (const char *tenant, const char *id, const char *subject, json_t **reply_p)
{
    *reply_p = s_op ("task/get", tenant, id, subject, NULL);
    assert_true (json_is_true (json_object_get (*reply_p, "found")));
    json_t *task = json_object_get (*reply_p, "task");
    assert_true (json_is_object (task));
    return task;
}

static const char *
s_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    if (!value)
        fail_msg ("no string %s", key);
    return value;
}

static void
s_assert_found (json_t *reply, bool found)
{
    assert_true (json_is_boolean (json_object_get (reply, "found")));
    assert_int_equal (json_is_true (json_object_get (reply, "found")), found);
    json_decref (reply);
}

static void
s_assert_applied (json_t *reply, bool applied)
{
    assert_true (json_is_boolean (json_object_get (reply, "applied")));
    assert_int_equal (json_is_true (json_object_get (reply, "applied")), applied);
    json_decref (reply);
}

//  2026-11-23T21:40:00.123Z exactly.
static bool
s_is_iso (const char *text)
{
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!text || strlen (text) != strlen (shape))
        return false;
    for (size_t i = 0; shape [i]; i++)
        if (shape [i] == 'd' ? text [i] < '0' || text [i] > '9' : text [i] != shape [i])
            return false;
    return true;
}

//  A task in input_required with requests k1 and k2 and one answer (k0) kept.
static void
s_input_required (const char *tenant, const char *id, const char *subject)
{
    json_decref (s_create (tenant, id, subject));
    s_assert_applied (s_op ("task/finish", tenant, id, NULL,
        "{\"status\":\"input_required\",\"inputRequests\":{"
        "\"k1\":{\"method\":\"elicitation/create\",\"params\":{\"message\":\"Name?\"}},"
        "\"k2\":{\"method\":\"roots/list\",\"params\":{}}},"
        "\"inputs\":{\"k0\":{\"action\":\"accept\",\"content\":{\"ok\":true}}},\"round\":2}"), true);
}

//  A blocking connection with the system switch on (for looking at rows
//  across tenants and cleaning up).
static PGconn *
s_pg (void)
{
    PGconn *conn = PQconnectdb (s_conninfo);
    assert_int_equal (PQstatus (conn), CONNECTION_OK);
    PGresult *res = PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    PQclear (res);
    return conn;
}

//  Rows of `tenant` with id `id` (0 or 1).
static int
s_rows (PGconn *conn, const char *tenant, const char *id)
{
    const char *params [] = { tenant, id };
    PGresult *res = PQexecParams (conn, "SELECT 1 FROM tasks WHERE tenant_id = $1 AND id = $2",
                                  2, NULL, params, NULL, NULL, 0);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    int rows = PQntuples (res);
    PQclear (res);
    return rows;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_create_get (void **state)
{
    const char *tenant = s_tenant ("a");
    char id [ID_SIZE];
    s_new_id (id);
    json_t *reply = s_create (tenant, id, "alice");
    json_t *task = json_object_get (reply, "task");
    assert_string_equal (s_str (task, "taskId"), id);
    assert_string_equal (s_str (task, "status"), "working");
    assert_true (s_is_iso (s_str (task, "createdAt")));
    assert_true (s_is_iso (s_str (task, "lastUpdatedAt")));
    assert_string_equal (s_str (task, "createdAt"), s_str (task, "lastUpdatedAt"));
    assert_true (json_is_integer (json_object_get (task, "ttlMs")));
    assert_int_equal (json_integer_value (json_object_get (task, "ttlMs")), 600000);
    assert_int_equal (json_integer_value (json_object_get (task, "pollIntervalMs")), 250);
    assert_int_equal (json_object_size (task), 6);
    char created [32];
    snprintf (created, sizeof created, "%s", s_str (task, "createdAt"));
    json_decref (reply);

    json_t *got = s_get (tenant, id, "alice", &reply);
    assert_string_equal (s_str (got, "taskId"), id);
    assert_string_equal (s_str (got, "status"), "working");
    assert_string_equal (s_str (got, "createdAt"), created);
    assert_true (s_is_iso (s_str (got, "lastUpdatedAt")));
    assert_int_equal (json_integer_value (json_object_get (got, "ttlMs")), 600000);
    assert_int_equal (json_integer_value (json_object_get (got, "pollIntervalMs")), 250);
    const char *never [] = { "statusMessage", "result", "error", "inputRequests", "requestState",
                             "resultType", NULL };
    for (int i = 0; never [i]; i++)
        assert_null (json_object_get (got, never [i]));
    json_decref (reply);

    //  The same create again (a retried job) is the same task, not a second.
    reply = s_create (tenant, id, "alice");
    assert_string_equal (s_str (json_object_get (reply, "task"), "createdAt"), created);
    json_decref (reply);
    //  …but another user cannot take its id.
    reply = s_create_with (tenant, id, "mallory", "{\"ttlMs\":1000,\"pollIntervalMs\":1,"
                           "\"runMs\":1000}", NULL, SB_STATUS_FAILED);
    assert_non_null (strstr (s_str (reply, "error"), "already in use"));
    json_decref (reply);
    got = s_get (tenant, id, "alice", &reply);
    assert_string_equal (s_str (got, "status"), "working");
    json_decref (reply);
}

static void
test_finish (void **state)
{
    const char *tenant = s_tenant ("f");
    char done [ID_SIZE], broken [ID_SIZE], asking [ID_SIZE];
    s_new_id (done);
    s_new_id (broken);
    s_new_id (asking);

    //  completed: the CallToolResult as the gateway sent it
    json_decref (s_create (tenant, done, "alice"));
    const char *result = "{\"content\":[{\"type\":\"text\",\"text\":\"Done: caf\\u00e9\"}],"
                         "\"structuredContent\":{\"z\":1,\"a\":[1.5,null]},\"isError\":false}";
    char data [512];
    snprintf (data, sizeof data, "{\"status\":\"completed\",\"result\":%s}", result);
    s_assert_applied (s_op ("task/finish", tenant, done, NULL, data), true);
    json_t *reply;
    json_t *task = s_get (tenant, done, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "completed");
    json_t *want = json_loads (result, 0, NULL);
    assert_true (json_equal (json_object_get (task, "result"), want));
    json_decref (want);
    assert_null (json_object_get (task, "error"));
    assert_null (json_object_get (task, "inputRequests"));
    assert_true (strcmp (s_str (task, "lastUpdatedAt"), s_str (task, "createdAt")) >= 0);
    json_decref (reply);
    //  Terminal: no second outcome.
    s_assert_applied (s_op ("task/finish", tenant, done, NULL,
                            "{\"status\":\"failed\",\"error\":{\"code\":-1,\"message\":\"x\"}}"), false);
    task = s_get (tenant, done, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "completed");
    json_decref (reply);

    //  failed: the JSON-RPC error, its message as the statusMessage
    json_decref (s_create (tenant, broken, "alice"));
    s_assert_applied (s_op ("task/finish", tenant, broken, NULL,
        "{\"status\":\"failed\",\"error\":{\"code\":-32603,\"message\":\"Upstream down\","
        "\"data\":{\"retry\":true}}}"), true);
    task = s_get (tenant, broken, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "failed");
    json_t *error = json_object_get (task, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32603);
    assert_string_equal (s_str (error, "message"), "Upstream down");
    assert_true (json_is_true (json_object_get (json_object_get (error, "data"), "retry")));
    assert_string_equal (s_str (task, "statusMessage"), "Upstream down");
    assert_null (json_object_get (task, "result"));
    json_decref (reply);

    //  input_required: the requests, nothing else
    s_input_required (tenant, asking, "alice");
    task = s_get (tenant, asking, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "input_required");
    json_t *requests = json_object_get (task, "inputRequests");
    assert_int_equal (json_object_size (requests), 2);
    assert_string_equal (s_str (json_object_get (requests, "k1"), "method"), "elicitation/create");
    assert_string_equal (s_str (json_object_get (requests, "k2"), "method"), "roots/list");
    assert_null (json_object_get (task, "result"));
    assert_null (json_object_get (task, "inputs"));
    json_decref (reply);
    //  Not working: an outcome is not applied.
    s_assert_applied (s_op ("task/finish", tenant, asking, NULL,
                            "{\"status\":\"completed\",\"result\":{\"content\":[]}}"), false);

    //  finish is the tenant's: another tenant's finish does nothing
    char other [ID_SIZE];
    s_new_id (other);
    json_decref (s_create (tenant, other, "alice"));
    s_assert_applied (s_op ("task/finish", s_tenant ("f2"), other, NULL,
                            "{\"status\":\"completed\",\"result\":{\"content\":[]}}"), false);
    s_assert_applied (s_op ("task/finish", tenant, "no-such-task", NULL,
                            "{\"status\":\"completed\",\"result\":{\"content\":[]}}"), false);
    task = s_get (tenant, other, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "working");
    json_decref (reply);
}

static void
test_cancel (void **state)
{
    const char *tenant = s_tenant ("c");
    char running [ID_SIZE], asking [ID_SIZE], done [ID_SIZE];
    s_new_id (running);
    s_new_id (asking);
    s_new_id (done);

    json_decref (s_create (tenant, running, "alice"));
    s_assert_found (s_op ("task/cancel", tenant, running, "alice", NULL), true);
    json_t *reply;
    json_t *task = s_get (tenant, running, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "cancelled");
    assert_string_equal (s_str (task, "statusMessage"), "Cancelled by the client.");
    json_decref (reply);
    //  The job's outcome comes too late: the task stays cancelled.
    s_assert_applied (s_op ("task/finish", tenant, running, NULL,
                            "{\"status\":\"completed\",\"result\":{\"content\":[]}}"), false);
    task = s_get (tenant, running, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "cancelled");
    assert_null (json_object_get (task, "result"));
    json_decref (reply);
    //  Cancelling again: still found, still cancelled.
    s_assert_found (s_op ("task/cancel", tenant, running, "alice", NULL), true);

    //  input_required → cancelled, its requests gone
    s_input_required (tenant, asking, "alice");
    s_assert_found (s_op ("task/cancel", tenant, asking, "alice", NULL), true);
    task = s_get (tenant, asking, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "cancelled");
    assert_null (json_object_get (task, "inputRequests"));
    json_decref (reply);
    //  …and an update finds nothing to answer.
    reply = s_op ("task/update", tenant, asking, "alice", "{\"k1\":{},\"k2\":{}}");
    assert_true (json_is_true (json_object_get (reply, "found")));
    assert_null (json_object_get (reply, "resume"));
    json_decref (reply);

    //  Terminal: unchanged.
    json_decref (s_create (tenant, done, "alice"));
    s_assert_applied (s_op ("task/finish", tenant, done, NULL,
                            "{\"status\":\"completed\",\"result\":{\"content\":[]}}"), true);
    s_assert_found (s_op ("task/cancel", tenant, done, "alice", NULL), true);
    task = s_get (tenant, done, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "completed");
    assert_null (json_object_get (task, "statusMessage"));
    json_decref (reply);
}

static void
test_update (void **state)
{
    const char *tenant = s_tenant ("u");
    char id [ID_SIZE];
    s_new_id (id);
    s_input_required (tenant, id, "alice");

    //  One of two answered, plus a key never asked: still input_required,
    //  only k2 outstanding.
    json_t *reply = s_op ("task/update", tenant, id, "alice",
                          "{\"k1\":{\"action\":\"accept\",\"content\":{\"name\":\"Ada\"}},"
                          "\"nope\":{\"x\":1}}");
    assert_true (json_is_true (json_object_get (reply, "found")));
    assert_null (json_object_get (reply, "resume"));
    json_decref (reply);
    json_t *task = s_get (tenant, id, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "input_required");
    json_t *requests = json_object_get (task, "inputRequests");
    assert_int_equal (json_object_size (requests), 1);
    assert_non_null (json_object_get (requests, "k2"));
    json_decref (reply);

    //  Only keys not outstanding (k1 again, unknown): nothing changes.
    reply = s_op ("task/update", tenant, id, "alice", "{\"k1\":{\"action\":\"decline\"},\"zz\":1}");
    assert_true (json_is_true (json_object_get (reply, "found")));
    assert_null (json_object_get (reply, "resume"));
    json_decref (reply);
    task = s_get (tenant, id, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "input_required");
    assert_int_equal (json_object_size (json_object_get (task, "inputRequests")), 1);
    json_decref (reply);

    //  The last one: resume, with every answer kept so far.
    reply = s_op ("task/update", tenant, id, "alice", "{\"k2\":{\"roots\":[]}}");
    assert_true (json_is_true (json_object_get (reply, "found")));
    json_t *resume = json_object_get (reply, "resume");
    assert_true (json_is_object (resume));
    assert_string_equal (s_str (resume, "connector"), "conformance");
    assert_string_equal (s_str (resume, "tool"), "test_tool_with_task");
    assert_string_equal (s_str (resume, "args"), "{\"n\":1,\"text\":\"caf\\u00e9\"}");
    assert_int_equal (json_integer_value (json_object_get (resume, "caps")), 3);
    assert_int_equal (json_integer_value (json_object_get (resume, "round")), 3);
    json_t *inputs = json_loads (s_str (resume, "inputs"), 0, NULL);
    json_t *want = json_loads ("{\"k0\":{\"action\":\"accept\",\"content\":{\"ok\":true}},"
                               "\"k1\":{\"action\":\"accept\",\"content\":{\"name\":\"Ada\"}},"
                               "\"k2\":{\"roots\":[]}}", 0, NULL);
    assert_true (json_equal (inputs, want));
    json_decref (inputs);
    json_decref (want);
    json_decref (reply);
    task = s_get (tenant, id, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "working");
    assert_null (json_object_get (task, "inputRequests"));
    json_decref (reply);

    //  Working now: another update changes nothing, resumes nothing.
    reply = s_op ("task/update", tenant, id, "alice", "{\"k2\":{\"roots\":[]}}");
    assert_true (json_is_true (json_object_get (reply, "found")));
    assert_null (json_object_get (reply, "resume"));
    json_decref (reply);

    //  The resumed round asks again: the answers it reports replace those kept.
    s_assert_applied (s_op ("task/finish", tenant, id, NULL,
        "{\"status\":\"input_required\",\"inputRequests\":{\"k3\":{\"method\":\"roots/list\",\"params\":{}}},"
        "\"inputs\":{\"k2\":{\"roots\":[]}},\"round\":3}"), true);
    reply = s_op ("task/update", tenant, id, "alice", "{\"k3\":{\"roots\":[{\"uri\":\"file:///\"}]}}");
    resume = json_object_get (reply, "resume");
    assert_int_equal (json_integer_value (json_object_get (resume, "round")), 4);
    inputs = json_loads (s_str (resume, "inputs"), 0, NULL);
    assert_int_equal (json_object_size (inputs), 2);
    assert_non_null (json_object_get (inputs, "k2"));
    assert_non_null (json_object_get (inputs, "k3"));
    json_decref (inputs);
    json_decref (reply);
}

static void
test_not_found (void **state)
{
    const char *tenant = s_tenant ("n");
    const char *stranger = s_tenant ("n-other");
    char id [ID_SIZE];
    s_new_id (id);
    s_input_required (tenant, id, "alice");
    const char *answers = "{\"k1\":{},\"k2\":{}}";

    //  Another tenant, another user of the same tenant, an unknown id.
    struct { const char *tenant, *id, *subject; } strangers [] = {
        { stranger, id, "alice" }, { tenant, id, "bob" }, { tenant, id, "" },
        { tenant, "no-such-task", "alice" },
    };
    for (size_t i = 0; i < sizeof strangers / sizeof strangers [0]; i++) {
        s_assert_found (s_op ("task/get", strangers [i].tenant, strangers [i].id,
                              strangers [i].subject, NULL), false);
        s_assert_found (s_op ("task/update", strangers [i].tenant, strangers [i].id,
                              strangers [i].subject, answers), false);
        s_assert_found (s_op ("task/cancel", strangers [i].tenant, strangers [i].id,
                              strangers [i].subject, NULL), false);
    }
    //  …and none of them changed it.
    json_t *reply;
    json_t *task = s_get (tenant, id, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "input_required");
    assert_int_equal (json_object_size (json_object_get (task, "inputRequests")), 2);
    json_decref (reply);

    //  An empty subject is a subject of its own.
    char anonymous [ID_SIZE];
    s_new_id (anonymous);
    json_decref (s_create (tenant, anonymous, ""));
    task = s_get (tenant, anonymous, "", &reply);
    assert_string_equal (s_str (task, "status"), "working");
    json_decref (reply);
    s_assert_found (s_op ("task/get", tenant, anonymous, "alice", NULL), false);
}

static void
test_run_deadline (void **state)
{
    const char *tenant = s_tenant ("d");
    char id [ID_SIZE];
    s_new_id (id);
    json_decref (s_create_with (tenant, id, "alice",
                                "{\"ttlMs\":600000,\"pollIntervalMs\":1,\"runMs\":1}", NULL,
                                SB_STATUS_OK));
    //  Nothing reports back: once runMs has passed, get says failed.
    int64_t deadline = zclock_mono () + CHANGE_WAIT_MS;
    json_t *reply = NULL, *task = NULL;
    while (true) {
        task = s_get (tenant, id, "alice", &reply);
        if (strcmp (s_str (task, "status"), "working") != 0)
            break;
        json_decref (reply);
        if (zclock_mono () > deadline)
            fail_msg ("the task stayed working past its run deadline");
    }
    assert_string_equal (s_str (task, "status"), "failed");
    json_t *error = json_object_get (task, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32603);
    assert_string_equal (s_str (error, "message"), "The task stopped: the process running it did "
                         "not report back before its deadline.");
    assert_string_equal (s_str (task, "statusMessage"), s_str (error, "message"));
    json_decref (reply);
    //  A late outcome does not change it.
    s_assert_applied (s_op ("task/finish", tenant, id, NULL,
                            "{\"status\":\"completed\",\"result\":{\"content\":[]}}"), false);
}

static void
test_expiry_and_sweep (void **state)
{
    const char *tenant = s_tenant ("x");
    char id [ID_SIZE];
    s_new_id (id);
    json_decref (s_create_with (tenant, id, "alice",
                                "{\"ttlMs\":1,\"pollIntervalMs\":1,\"runMs\":600000}", NULL,
                                SB_STATUS_OK));
    //  Past its ttl: not found, whatever asks.
    int64_t deadline = zclock_mono () + CHANGE_WAIT_MS;
    while (true) {
        json_t *reply = s_op ("task/get", tenant, id, "alice", NULL);
        bool found = json_is_true (json_object_get (reply, "found"));
        json_decref (reply);
        if (!found)
            break;
        if (zclock_mono () > deadline)
            fail_msg ("the task was still found past its ttl");
    }
    s_assert_found (s_op ("task/cancel", tenant, id, "alice", NULL), false);
    s_assert_applied (s_op ("task/finish", tenant, id, NULL,
                            "{\"status\":\"completed\",\"result\":{\"content\":[]}}"), false);

    //  A worker sweeps at start: a second one deletes the row.
    PGconn *conn = s_pg ();
    assert_int_equal (s_rows (conn, tenant, id), 1);
    s_worker_t second = { 0 };
    s_start (&second);
    deadline = zclock_mono () + CHANGE_WAIT_MS;
    while (s_rows (conn, tenant, id) != 0) {
        sb_msg_t msg = { 0 };
        //  waits on the second worker's traffic (heartbeats) between looks
        if (s_recv (&second, &msg, HEARTBEAT_MS) == 0)
            fail_msg ("unexpected %s from the second worker", sb_cmd_name (msg.command));
        if (zclock_mono () > deadline)
            fail_msg ("the sweep did not delete the expired task");
    }
    PQfinish (conn);
    s_stop (&second);
}

//  Two workers, two connections: both get the last answer at once; the
//  task resumes once.
static void
test_concurrent_updates (void **state)
{
    const char *tenant = s_tenant ("r");
    s_worker_t second = { 0 };
    s_start (&second);
    for (int attempt = 0; attempt < 5; attempt++) {
        char id [ID_SIZE];
        s_new_id (id);
        s_input_required (tenant, id, "alice");
        sb_job_t job = { .op = "task/update", .task = id, .subject = "alice",
                         .data = "{\"k1\":{\"action\":\"accept\"},\"k2\":{\"roots\":[]}}" };
        char first_id [32], second_id [32];
        s_send (&s_one, tenant, &job, first_id);
        s_send (&second, tenant, &job, second_id);
        sb_status_t status;
        json_t *a = s_wait (&s_one, first_id, &status);
        assert_int_equal (status, SB_STATUS_OK);
        json_t *b = s_wait (&second, second_id, &status);
        assert_int_equal (status, SB_STATUS_OK);
        assert_true (json_is_true (json_object_get (a, "found")));
        assert_true (json_is_true (json_object_get (b, "found")));
        int resumes = !!json_object_get (a, "resume") + !!json_object_get (b, "resume");
        assert_int_equal (resumes, 1);
        json_t *resume = json_object_get (a, "resume") ? json_object_get (a, "resume")
                                                       : json_object_get (b, "resume");
        assert_int_equal (json_integer_value (json_object_get (resume, "round")), 3);
        json_decref (a);
        json_decref (b);
        json_t *reply;
        json_t *task = s_get (tenant, id, "alice", &reply);
        assert_string_equal (s_str (task, "status"), "working");
        json_decref (reply);
    }
    s_stop (&second);
}

static void
test_malformed (void **state)
{
    const char *tenant = s_tenant ("m");
    char id [ID_SIZE];
    s_new_id (id);
    //  create: data, args, inputs and names checked before anything is stored
    const char *bad_data [] = {
        NULL, "not json", "[1]", "{}", "{\"ttlMs\":0,\"pollIntervalMs\":1,\"runMs\":1}",
        "{\"ttlMs\":86400001,\"pollIntervalMs\":1,\"runMs\":1}",
        "{\"ttlMs\":1000,\"pollIntervalMs\":3600001,\"runMs\":1}",
        "{\"ttlMs\":1000,\"pollIntervalMs\":1,\"runMs\":600001}",
        "{\"ttlMs\":\"1000\",\"pollIntervalMs\":1,\"runMs\":1}",
        "{\"ttlMs\":1000.5,\"pollIntervalMs\":1,\"runMs\":1}",
        "{\"ttlMs\":1000,\"pollIntervalMs\":1}",
    };
    for (size_t i = 0; i < sizeof bad_data / sizeof bad_data [0]; i++) {
        json_t *reply = s_create_with (tenant, id, "alice", bad_data [i], NULL, SB_STATUS_FAILED);
        assert_non_null (strstr (s_str (reply, "error"), "task/create"));
        json_decref (reply);
    }
    json_t *reply = s_create_with (tenant, id, "alice", "{\"ttlMs\":1000,\"pollIntervalMs\":1,"
                                   "\"runMs\":1000}", "[\"not an object\"]", SB_STATUS_FAILED);
    //  (the worker core refuses inputs that are not an object before the role sees them)
    assert_true (json_is_string (json_object_get (reply, "error")));
    json_decref (reply);
    sb_job_t job = { .op = "task/create", .task = id, .subject = "alice", .connector = "c",
                     .tool = "t", .args = "[]", .data = "{\"ttlMs\":1,\"pollIntervalMs\":1,\"runMs\":1}" };
    reply = s_call (&s_one, tenant, &job, SB_STATUS_FAILED);
    assert_non_null (strstr (s_str (reply, "error"), "args"));
    json_decref (reply);
    job.args = "{}";
    job.tool = NULL;
    reply = s_call (&s_one, tenant, &job, SB_STATUS_FAILED);
    assert_non_null (strstr (s_str (reply, "error"), "tool"));
    json_decref (reply);
    job.tool = "t";
    job.subject = "\xff\xfe";
    reply = s_call (&s_one, tenant, &job, SB_STATUS_FAILED);
    assert_non_null (strstr (s_str (reply, "error"), "UTF-8"));
    json_decref (reply);
    s_assert_found (s_op ("task/get", tenant, id, "alice", NULL), false);   //  none was made

    //  Fields every op needs
    const char *ops [] = { "task/get", "task/update", "task/cancel", "task/finish", "task/create" };
    for (size_t i = 0; i < sizeof ops / sizeof ops [0]; i++) {
        sb_job_t no_task = { .op = sb_unconst (ops [i]), .subject = "alice", .data = "{}" };
        reply = s_call (&s_one, tenant, &no_task, SB_STATUS_FAILED);
        assert_non_null (strstr (s_str (reply, "error"), "needs a task id"));
        json_decref (reply);
    }
    for (size_t i = 0; i < 3; i++) {
        sb_job_t no_subject = { .op = sb_unconst (ops [i]), .task = id, .data = "{}" };
        reply = s_call (&s_one, tenant, &no_subject, SB_STATUS_FAILED);
        assert_non_null (strstr (s_str (reply, "error"), "needs a subject"));
        json_decref (reply);
    }

    //  finish: only the three outcomes, each in its shape; nothing applied
    json_decref (s_create (tenant, id, "alice"));
    const char *bad_outcomes [] = {
        NULL, "nope", "[]", "{}", "{\"status\":\"working\"}", "{\"status\":\"cancelled\"}",
        "{\"status\":\"completed\"}", "{\"status\":\"completed\",\"result\":[1]}",
        "{\"status\":\"failed\",\"error\":{\"message\":\"no code\"}}",
        "{\"status\":\"failed\",\"error\":{\"code\":\"1\",\"message\":\"x\"}}",
        "{\"status\":\"failed\",\"error\":\"text\"}",
        "{\"status\":\"input_required\",\"inputRequests\":{},\"inputs\":{},\"round\":1}",
        "{\"status\":\"input_required\",\"inputRequests\":{\"k\":1},\"inputs\":{},\"round\":1}",
        "{\"status\":\"input_required\",\"inputRequests\":{\"k\":{\"params\":{}}},\"round\":1}",
        "{\"status\":\"input_required\",\"inputRequests\":{\"k\":{\"method\":\"m\"}},\"round\":0}",
        "{\"status\":\"input_required\",\"inputRequests\":{\"k\":{\"method\":\"m\"}},\"round\":17}",
        "{\"status\":\"input_required\",\"inputRequests\":{\"k\":{\"method\":\"m\"}},"
        "\"inputs\":[],\"round\":1}",
    };
    for (size_t i = 0; i < sizeof bad_outcomes / sizeof bad_outcomes [0]; i++) {
        sb_job_t finish = { .op = "task/finish", .task = id, .data = sb_unconst (bad_outcomes [i]) };
        reply = s_call (&s_one, tenant, &finish, SB_STATUS_FAILED);
        if (!strstr (s_str (reply, "error"), "task/finish"))
            fail_msg ("outcome %zu: %s", i, s_str (reply, "error"));
        json_decref (reply);
    }
    json_t *task = s_get (tenant, id, "alice", &reply);
    assert_string_equal (s_str (task, "status"), "working");
    json_decref (reply);

    //  update: inputResponses must be an object
    const char *bad_responses [] = { NULL, "[]", "\"k1\"", "{\"k1\":" };
    for (size_t i = 0; i < sizeof bad_responses / sizeof bad_responses [0]; i++) {
        sb_job_t update = { .op = "task/update", .task = id, .subject = "alice",
                            .data = sb_unconst (bad_responses [i]) };
        reply = s_call (&s_one, tenant, &update, SB_STATUS_FAILED);
        assert_non_null (strstr (s_str (reply, "error"), "inputResponses"));
        json_decref (reply);
    }

    //  Ops the role does not serve
    sb_job_t unknown = { .op = "tools/call", .tool = "t", .args = "{}" };
    reply = s_call (&s_one, tenant, &unknown, SB_STATUS_FAILED);
    assert_string_equal (s_str (reply, "error"), "unknown op tools/call");
    json_decref (reply);
}

static void
test_ping (void **state)
{
    sb_job_t job = { .op = "ping" };
    json_t *reply = s_call (&s_one, s_tenant ("p"), &job, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (reply, "pong")));
    assert_string_equal (s_str (reply, "role"), "task");
    assert_string_equal (s_str (reply, "db"), "ok");
    assert_true (json_integer_value (json_object_get (reply, "migrations")) >= 3);
    json_decref (reply);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "h1t%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    s_start (&s_one);
    return 0;
}

static int
s_teardown (void **state)
{
    //  A sanitizer report at exit makes the status non-zero: that fails the run.
    bool clean = true;
    if (s_one.pid > 0) {
        int wstatus = sb_harness_stop (s_one.pid);
        clean = WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0;
        if (!clean)
            fprintf (stderr, "the task worker did not exit cleanly (0x%x)\n", (unsigned) wstatus);
        s_one.pid = -1;
    }
    fake_broker_destroy (&s_one.broker);
    s_workers [0] = s_workers [1] = NULL;
    //  This run's rows go.
    int rc = -1;
    PGconn *conn = s_conninfo ? PQconnectdb (s_conninfo) : NULL;
    if (conn && PQstatus (conn) == CONNECTION_OK) {
        char pattern [48];
        snprintf (pattern, sizeof pattern, "%s-%%", s_prefix);
        PQclear (PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)"));
        const char *params [] = { pattern };
        //  Deleting the tenants deletes their tasks (the foreign key cascades).
        PGresult *res = PQexecParams (conn, "DELETE FROM tenants WHERE id LIKE $1",
                                      1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear (res);
    }
    PQfinish (conn);
    free (s_conninfo);
    return clean ? rc : -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ping),
        cmocka_unit_test (test_expiry_and_sweep),
        cmocka_unit_test (test_create_get),
        cmocka_unit_test (test_finish),
        cmocka_unit_test (test_cancel),
        cmocka_unit_test (test_update),
        cmocka_unit_test (test_not_found),
        cmocka_unit_test (test_run_deadline),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_concurrent_updates),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
