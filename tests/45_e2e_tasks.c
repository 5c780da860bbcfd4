/*  tests/45_e2e_tasks.c — the MCP tasks extension (SEP-2663) through a
    whole farm of real processes: gateway → broker → api worker running the
    conformance fixtures, and the task worker keeping tasks in a real
    PostgreSQL. What a 2026-07-28 client that declares
    io.modelcontextprotocol/tasks sees over HTTP:

      - a slow tool answers with CreateTaskResult (flat, resultType "task",
        ISO timestamps, integer ttlMs and pollIntervalMs), tasks/get resolves
        at once and, polled, ends completed with the tool's result inlined;
        a fast call of the same tool is answered synchronously, and so is
        any call from a client without the extension;
      - a tool error ends completed with isError, a JSON-RPC error from the
        worker ends failed with that error and no result;
      - tasks/cancel is acknowledged with an empty result, the task ends
        cancelled, and its job is really stopped (the only api worker, with
        credit 1, serves the next call at once); cancelling again is
        acknowledged the same;
      - a task that asks the client parks input_required with its questions;
        tasks/update answers them, one at a time or all at once, and the
        task resumes to its result;
      - questions asked before the task exists are ordinary input-required
        rounds, and the task's result uses their answers;
      - another tenant, or another user of the same tenant, cannot read,
        answer or cancel a task (unknown, -32602), nor can anyone reach a
        task that does not exist;
      - a second gateway on the same broker serves the tasks of the first,
        and its tasks/cancel stops the job the first one runs;
      - a connector tool whose upstream call outlasts the api worker's
        --task-promote-ms becomes a task and ends with the upstream's answer;
      - a listen stream following taskIds gets notifications/tasks with
        each task's state at once and when it ends, for the user's own
        tasks only;
      - a worker killed mid-task: the read-only job runs again elsewhere;
      - a gateway that stops while it runs a task's job stops the job, and
        the task reads as failed from the other gateway.

    Waiting is polling with a deadline, never a bare sleep. */
#include "sb_farm.h"
#include "sb_harness.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "sb_rpc_assert.h"

#define CALL_WAIT_MS    15000       /* one HTTP request */
#define TASK_WAIT_MS    20000       /* a task reaching the status a test waits for */
#define EXT             "{\"extensions\":{\"io.modelcontextprotocol/tasks\":{}},\"elicitation\":{}}"
#define NO_EXT          "{\"elicitation\":{}}"

static sb_farm_t *s_farm;
static char s_other_token [2048];           /* a token for tenant "other" */
static char s_colleague_token [2048];       /* another user of tenant "demo" */
static pid_t s_gateway_b;                   /* a second gateway on the same broker */
static char s_gateway_b_url [64];

//  A second gateway, same broker, same key and public URL (the token's
//  audience), so the farm's tokens are good on both.
static int
s_start_gateway_b (void)
{
    int port = sb_harness_free_port ();
    char listen [32];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (s_gateway_b_url, sizeof s_gateway_b_url, "http://127.0.0.1:%d", port);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", s_farm->frontend,
        "--token-key-file", s_farm->key_file, "--session-key-file", s_farm->session_key_file,
        "--connectors", SB_TEST_CONNECTORS,
        "--public-url", s_farm->gateway_url, "--log-level", "info", NULL
    };
    s_gateway_b = sb_harness_spawn (argv, NULL);
    char url [128];
    snprintf (url, sizeof url, "%s/healthz", s_gateway_b_url);
    return s_gateway_b > 0 && sb_harness_wait_http_ok (url, SB_HARNESS_WAIT_MS) == 0? 0: -1;
}

//  Runs `sql` (with the tenant id `tenant` as $1) on the farm's database
//  as the services' role, across tenants on purpose. Returns 0 or -1.
static int
s_db_exec (const char *sql, const char *tenant)
{
    char *conninfo = sb_harness_pg_conninfo ();
    PGconn *conn = conninfo ? PQconnectdb (conninfo) : NULL;
    free (conninfo);
    int rc = -1;
    if (conn && PQstatus (conn) == CONNECTION_OK) {
        PQclear (PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)"));
        const char *params [] = { tenant };
        PGresult *res = PQexecParams (conn, sql, 1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
        if (rc)
            fprintf (stderr, "45_e2e_tasks: %s: %s", sql, PQresultErrorMessage (res));
        PQclear (res);
    }
    PQfinish (conn);
    return rc;
}

static int
s_setup (void **state)
{
    //  One api worker holding one job at a time: a job that is not
    //  stopped on cancel blocks every later call.
    s_farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1, .api_credit = 1 });
    if (!s_farm)
        return -1;
    //  A task belongs to a tenant `tenants` lists (migration 004); the
    //  farm's migrations made "demo".
    if (s_db_exec ("INSERT INTO tenants (id, name) VALUES ($1, 'Other') "
                   "ON CONFLICT (id) DO NOTHING", "other"))
        return -1;
    if (sb_farm_mint (s_farm, "other", "e2e", s_other_token, sizeof s_other_token)
    ||  sb_farm_mint (s_farm, "demo", "colleague", s_colleague_token, sizeof s_colleague_token))
        return -1;
    return s_start_gateway_b ();
}

static int
s_teardown (void **state)
{
    if (s_gateway_b > 0)
        assert_int_equal (sb_harness_stop (s_gateway_b), 0);
    sb_farm_stop (&s_farm);
    //  Its tasks go with it (the foreign key cascades).
    return s_db_exec ("DELETE FROM tenants WHERE id = $1", "other");
}

//  POSTs a 2026-07-28 request `method` with `params` (taken; _meta added
//  with `caps`) to gateway `base` (NULL: the farm's) as `token` (NULL: the
//  farm's). Mcp-Name is `name` when not NULL. Returns the reply (new) and
//  its HTTP status in *status.
static json_t *
s_post (const char *base, const char *token, const char *method, const char *name,
        json_t *params, const char *caps, long *status)
{
    json_t *meta = json_pack ("{s:s, s:o, s:{s:s, s:s}}",
        "io.modelcontextprotocol/protocolVersion", "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities", json_loads (caps, 0, NULL),
        "io.modelcontextprotocol/clientInfo", "name", "e2e", "version", "1");
    json_object_set_new (params, "_meta", meta);
    json_t *request = json_pack ("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 7, "method", method,
                                 "params", params);
    char *body = json_dumps (request, JSON_COMPACT);
    json_decref (request);
    char url [128], auth [2200], method_header [64], name_header [256];
    snprintf (url, sizeof url, "%s/mcp", base? base: s_farm->gateway_url);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", token? token: s_farm->token);
    snprintf (method_header, sizeof method_header, "Mcp-Method: %s", method);
    snprintf (name_header, sizeof name_header, "Mcp-Name: %s", name? name: "");
    const char *headers [] = { auth, "Content-Type: application/json",
                               "Accept: application/json, text/event-stream",
                               "MCP-Protocol-Version: 2026-07-28", method_header,
                               name? name_header: NULL, NULL };
    char *resp = NULL;
    assert_int_equal (sb_harness_http ("POST", url, headers, body, strlen (body), CALL_WAIT_MS,
                                       status, &resp), 0);
    free (body);
    json_t *reply = resp? json_loads (resp, 0, NULL): NULL;
    if (!reply)
        fail_msg ("no JSON reply (HTTP %ld): %s", *status, resp? resp: "(none)");
    free (resp);
    return reply;
}

//  tools/call `tool` with `args` (JSON text) and `caps`; HTTP 200 asserted
//  unless `status` is given.
static json_t *
s_call (const char *tool, const char *args, const char *caps, long *status)
{
    long ignored = 0;
    json_t *params = json_pack ("{s:s, s:o}", "name", tool, "arguments", json_loads (args, 0, NULL));
    json_t *reply = s_post (NULL, NULL, "tools/call", tool, params, caps, status? status: &ignored);
    if (!status && ignored != 200)
        fail_msg ("HTTP %ld for %s: %s", ignored, tool, json_dumps (reply, JSON_COMPACT));
    return reply;
}

//  tasks/get, tasks/update (with `responses`, JSON text) or tasks/cancel
//  for `task_id` at gateway `base` as `token` (NULLs: the farm's).
static json_t *
s_task (const char *base, const char *token, const char *method, const char *task_id,
        const char *responses)
{
    long status = 0;
    json_t *params = json_pack ("{s:s}", "taskId", task_id);
    if (responses)
        json_object_set_new (params, "inputResponses", json_loads (responses, 0, NULL));
    json_t *reply = s_post (base, token, method, task_id, params, EXT, &status);
    assert_int_equal (status, 200);
    return reply;
}

//  The result of `reply` (borrowed); fails on an error.
static json_t *
s_result (json_t *reply)
{
    json_t *result = json_object_get (reply, "result");
    if (!json_is_object (result))
        fail_msg ("expected a result: %s", json_dumps (reply, JSON_COMPACT));
    return result;
}

//  True when `text` is an ISO 8601 UTC timestamp as we write them.
static bool
s_is_iso (const char *text)
{
    struct tm tm;
    const char *rest = text? strptime (text, "%Y-%m-%dT%H:%M:%S", &tm): NULL;
    return rest && (*rest == '.' || *rest == 'Z');
}

//  Asserts a CreateTaskResult; returns its taskId (new string).
static char *
s_assert_created (json_t *reply)
{
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "resultType")), "task");
    assert_null (json_object_get (r, "task"));
    assert_null (json_object_get (r, "result"));
    assert_null (json_object_get (r, "inputRequests"));
    assert_null (json_object_get (r, "requestState"));
    assert_string_equal (json_string_value (json_object_get (r, "status")), "working");
    assert_true (s_is_iso (json_string_value (json_object_get (r, "createdAt"))));
    assert_true (s_is_iso (json_string_value (json_object_get (r, "lastUpdatedAt"))));
    assert_true (json_integer_value (json_object_get (r, "ttlMs")) > 0);
    assert_true (json_integer_value (json_object_get (r, "pollIntervalMs")) > 0);
    const char *id = json_string_value (json_object_get (r, "taskId"));
    assert_non_null (id);
    assert_true (strlen (id) >= 16);
    return strdup (id);
}

//  Polls tasks/get until the task's status is `status` (or terminal);
//  returns the last result's reply (new).
static json_t *
s_wait_status (const char *base, const char *task_id, const char *status)
{
    int64_t until = sb_harness_now_ms () + TASK_WAIT_MS;
    for (;;) {
        json_t *reply = s_task (base, NULL, "tasks/get", task_id, NULL);
        json_t *r = s_result (reply);
        assert_string_equal (json_string_value (json_object_get (r, "resultType")), "complete");
        assert_string_equal (json_string_value (json_object_get (r, "taskId")), task_id);
        assert_null (json_object_get (r, "requestState"));
        const char *now = json_string_value (json_object_get (r, "status"));
        assert_non_null (now);
        if (strcmp (now, status) == 0 || strcmp (now, "completed") == 0 || strcmp (now, "failed") == 0
        ||  strcmp (now, "cancelled") == 0)
            return reply;
        if (sb_harness_now_ms () > until)
            fail_msg ("task %s did not become %s in %d ms (still %s)", task_id, status, TASK_WAIT_MS, now);
        json_decref (reply);
        sb_harness_pause_ms (50);
    }
}

//  The first text of a CallToolResult.
static const char *
s_text (json_t *result)
{
    return json_string_value (json_object_get (json_array_get (json_object_get (result, "content"), 0),
                                               "text"));
}

//  Asserts error `code` (message holding `text`) and frees `reply`.
static void
s_assert_error (json_t *reply, int code, const char *text)
{
    sb_assert_rpc_error (reply, code, text);
    json_decref (reply);
}

//  Asserts an empty acknowledgement: resultType complete, no task fields.
static void
s_assert_ack (json_t *reply)
{
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "resultType")), "complete");
    const char *fields [] = { "taskId", "status", "result", "error", "inputRequests", NULL };
    for (int i = 0; fields [i]; i++)
        assert_null (json_object_get (r, fields [i]));
    json_decref (reply);
}

//  ---------------------------------------------------------------------------
//  A listen stream read raw (non-blocking, in this thread)

typedef struct {
    int fd;
    char buf [65536];               /* what came so far, NUL-terminated */
    size_t len;
} s_raw_t;

//  Opens a 2026-07-28 subscriptions/listen on gateway `base` (its URL) as
//  the farm's token, following `task_ids` (a JSON array text).
static void
s_raw_listen (s_raw_t *raw, const char *base, const char *task_ids)
{
    int port = atoi (strrchr (base, ':') + 1);
    raw->fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (raw->fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal (connect (raw->fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char body [1024];
    int body_len = snprintf (body, sizeof body,
        "{\"jsonrpc\":\"2.0\",\"id\":\"watch\",\"method\":\"subscriptions/listen\",\"params\":{"
        "\"notifications\":{\"taskIds\":%s},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
        "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":%s}}}", task_ids, EXT);
    char *request = NULL;
    int len = asprintf (&request, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n"
                        "Content-Length: %d\r\n\r\n%s", port, s_farm->token, body_len, body);
    assert_true (len > 0);
    assert_int_equal (send (raw->fd, request, (size_t) len, 0), len);
    free (request);
    raw->len = 0;
    raw->buf [0] = 0;
}

//  Reads until what came holds `text`; fails after TASK_WAIT_MS.
static void
s_raw_wait (s_raw_t *raw, const char *text)
{
    int64_t until = sb_harness_now_ms () + TASK_WAIT_MS;
    while (!strstr (raw->buf, text)) {
        int64_t left = until - sb_harness_now_ms ();
        if (left <= 0)
            fail_msg ("the listen stream never carried %s; it has: %s", text, raw->buf);
        struct pollfd pfd = { .fd = raw->fd, .events = POLLIN };
        if (poll (&pfd, 1, (int) left) <= 0)
            continue;
        ssize_t n = recv (raw->fd, raw->buf + raw->len, sizeof raw->buf - 1 - raw->len, 0);
        if (n <= 0)
            fail_msg ("the listen stream ended before %s: %s", text, raw->buf);
        raw->len += (size_t) n;
        raw->buf [raw->len] = 0;
    }
}

//  ---------------------------------------------------------------------------
//  Tests

//  Created, resolvable at once, completed with the result inlined; fast
//  calls and clients without the extension are answered synchronously.
static void
test_lifecycle (void **state)
{
    json_t *reply = s_call ("slow_compute", "{\"seconds\":1,\"label\":\"e2e\"}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    reply = s_task (NULL, NULL, "tasks/get", id, NULL);      //  durable before it was returned
    assert_string_equal (json_string_value (json_object_get (s_result (reply), "taskId")), id);
    json_decref (reply);
    reply = s_wait_status (NULL, id, "completed");
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "status")), "completed");
    json_t *result = json_object_get (r, "result");
    assert_non_null (result);
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text (result), "e2e"));
    assert_null (json_object_get (json_object_get (result, "_meta"), "io.modelcontextprotocol/related-task"));
    assert_null (json_object_get (r, "error"));
    json_decref (reply);
    free (id);

    //  Fast: no task.
    reply = s_call ("slow_compute", "{\"seconds\":0}", EXT, NULL);
    r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "resultType")), "complete");
    assert_null (json_object_get (r, "taskId"));
    assert_non_null (s_text (r));
    json_decref (reply);
    //  Without the extension: synchronous, however slow.
    reply = s_call ("slow_compute", "{\"seconds\":1}", NO_EXT, NULL);
    r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "resultType")), "complete");
    assert_null (json_object_get (r, "taskId"));
    json_decref (reply);
    //  A sync-only tool never becomes a task.
    reply = s_call ("greet", "{\"name\":\"World\"}", EXT, NULL);
    r = s_result (reply);
    assert_string_equal (s_text (r), "Hello, World!");
    assert_null (json_object_get (r, "taskId"));
    json_decref (reply);
    //  A task-only tool refuses a client without the extension.
    long status = 0;
    reply = s_call ("failing_job", "{}", NO_EXT, &status);
    assert_int_equal (status, 400);
    s_assert_error (reply, -32021, "io.modelcontextprotocol/tasks");
}

//  A tool error is a completed task with isError; a JSON-RPC error from the
//  worker is a failed task with that error.
static void
test_errors (void **state)
{
    json_t *reply = s_call ("failing_job", "{}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    reply = s_wait_status (NULL, id, "completed");
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "status")), "completed");
    assert_true (json_is_true (json_object_get (json_object_get (r, "result"), "isError")));
    json_decref (reply);
    free (id);

    reply = s_call ("protocol_error_job", "{}", EXT, NULL);
    id = s_assert_created (reply);
    json_decref (reply);
    reply = s_wait_status (NULL, id, "failed");
    r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "status")), "failed");
    assert_null (json_object_get (r, "result"));
    json_t *error = json_object_get (r, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32603);
    assert_true (json_is_string (json_object_get (error, "message")));
    json_decref (reply);
    free (id);
}

//  Cancel: acknowledged, cancelled, the job stopped, idempotent.
static void
test_cancel (void **state)
{
    json_t *reply = s_call ("slow_compute", "{\"seconds\":60}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    s_assert_ack (s_task (NULL, NULL, "tasks/cancel", id, NULL));
    reply = s_wait_status (NULL, id, "cancelled");
    assert_string_equal (json_string_value (json_object_get (s_result (reply), "status")), "cancelled");
    json_decref (reply);
    //  The one api worker (credit 1) is free again: this answers well
    //  before the cancelled job's 60 s would have passed.
    reply = s_call ("greet", "{\"name\":\"next\"}", EXT, NULL);
    assert_string_equal (s_text (s_result (reply)), "Hello, next!");
    json_decref (reply);
    s_assert_ack (s_task (NULL, NULL, "tasks/cancel", id, NULL));
    reply = s_task (NULL, NULL, "tasks/get", id, NULL);
    assert_string_equal (json_string_value (json_object_get (s_result (reply), "status")), "cancelled");
    json_decref (reply);
    free (id);
}

//  Questions inside a task: input_required, answered by tasks/update.
static void
test_input (void **state)
{
    json_t *reply = s_call ("confirm_delete", "{\"filename\":\"a.txt\"}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    reply = s_wait_status (NULL, id, "input_required");
    json_t *requests = json_object_get (s_result (reply), "inputRequests");
    assert_int_equal (json_object_size (requests), 1);
    const char *key = json_object_iter_key (json_object_iter (requests));
    assert_string_equal (json_string_value (json_object_get (json_object_get (requests, key), "method")),
                         "elicitation/create");
    char answers [256];
    snprintf (answers, sizeof answers, "{\"%s\":{\"action\":\"accept\",\"content\":{\"confirm\":true}},"
              "\"never-asked\":{\"action\":\"accept\"}}", key);
    json_decref (reply);
    s_assert_ack (s_task (NULL, NULL, "tasks/update", id, answers));
    reply = s_wait_status (NULL, id, "completed");
    assert_non_null (strstr (s_text (json_object_get (s_result (reply), "result")), "Deleted a.txt"));
    json_decref (reply);
    free (id);

    //  Two questions at once, answered one at a time.
    reply = s_call ("multi_input", "{}", EXT, NULL);
    id = s_assert_created (reply);
    json_decref (reply);
    reply = s_wait_status (NULL, id, "input_required");
    requests = json_object_get (s_result (reply), "inputRequests");
    assert_int_equal (json_object_size (requests), 2);
    void *iter = json_object_iter (requests);
    char first [80], second [80];
    snprintf (first, sizeof first, "%s", json_object_iter_key (iter));
    snprintf (second, sizeof second, "%s", json_object_iter_key (json_object_iter_next (requests, iter)));
    json_decref (reply);
    snprintf (answers, sizeof answers, "{\"%s\":{\"action\":\"accept\",\"content\":{\"name\":\"one\"}}}", first);
    s_assert_ack (s_task (NULL, NULL, "tasks/update", id, answers));
    reply = s_task (NULL, NULL, "tasks/get", id, NULL);
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "status")), "input_required");
    requests = json_object_get (r, "inputRequests");
    assert_int_equal (json_object_size (requests), 1);
    assert_non_null (json_object_get (requests, second));
    json_decref (reply);
    snprintf (answers, sizeof answers, "{\"%s\":{\"action\":\"accept\",\"content\":{\"name\":\"two\"}}}", second);
    s_assert_ack (s_task (NULL, NULL, "tasks/update", id, answers));
    reply = s_wait_status (NULL, id, "completed");
    const char *text = s_text (json_object_get (s_result (reply), "result"));
    assert_non_null (strstr (text, "one"));
    assert_non_null (strstr (text, "two"));
    json_decref (reply);
    free (id);
}

//  Questions before the task: ordinary input-required rounds, then a task
//  whose result uses the answer.
static void
test_input_before_task (void **state)
{
    json_t *reply = s_call ("test_tool_with_task", "{}", EXT, NULL);
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "resultType")), "input_required");
    assert_null (json_object_get (r, "taskId"));
    json_t *requests = json_object_get (r, "inputRequests");
    const char *key = json_object_iter_key (json_object_iter (requests));
    assert_non_null (key);
    json_t *params = json_pack ("{s:s, s:{}, s:{s:{s:s, s:{s:s}}}, s:O}", "name", "test_tool_with_task",
                                "arguments", "inputResponses", key,
                                "action", "accept", "content", "name", "Alice",
                                "requestState", json_object_get (r, "requestState"));
    long status = 0;
    json_t *second = s_post (NULL, NULL, "tools/call", "test_tool_with_task", params, EXT, &status);
    json_decref (reply);
    assert_int_equal (status, 200);
    char *id = s_assert_created (second);
    json_decref (second);
    reply = s_wait_status (NULL, id, "completed");
    assert_non_null (strstr (s_text (json_object_get (s_result (reply), "result")), "Alice"));
    json_decref (reply);
    free (id);
}

//  A task is its tenant's and its user's: everyone else gets "unknown".
static void
test_isolation (void **state)
{
    json_t *reply = s_call ("confirm_delete", "{\"filename\":\"mine.txt\"}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    reply = s_wait_status (NULL, id, "input_required");
    const char *key = json_object_iter_key (json_object_iter (json_object_get (s_result (reply),
                                                                               "inputRequests")));
    char answers [256];
    snprintf (answers, sizeof answers, "{\"%s\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}}", key);
    json_decref (reply);
    const char *strangers [] = { s_other_token, s_colleague_token, NULL };
    for (int i = 0; strangers [i]; i++) {
        s_assert_error (s_task (NULL, strangers [i], "tasks/get", id, NULL), -32602, "Unknown task");
        s_assert_error (s_task (NULL, strangers [i], "tasks/update", id, answers), -32602, "Unknown task");
        s_assert_error (s_task (NULL, strangers [i], "tasks/cancel", id, NULL), -32602, "Unknown task");
    }
    //  Untouched by them.
    reply = s_task (NULL, NULL, "tasks/get", id, NULL);
    assert_string_equal (json_string_value (json_object_get (s_result (reply), "status")), "input_required");
    json_decref (reply);
    s_assert_ack (s_task (NULL, NULL, "tasks/cancel", id, NULL));
    s_assert_error (s_task (NULL, NULL, "tasks/get", "AAAAAAAAAAAAAAAAAAAAAA", NULL), -32602, "Unknown task");
    free (id);
}

//  Any gateway serves any task; a cancel on one stops the job another runs.
static void
test_two_gateways (void **state)
{
    json_t *reply = s_call ("slow_compute", "{\"seconds\":60,\"label\":\"far\"}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    reply = s_task (s_gateway_b_url, NULL, "tasks/get", id, NULL);
    assert_string_equal (json_string_value (json_object_get (s_result (reply), "status")), "working");
    json_decref (reply);
    s_assert_ack (s_task (s_gateway_b_url, NULL, "tasks/cancel", id, NULL));
    reply = s_wait_status (NULL, id, "cancelled");
    assert_string_equal (json_string_value (json_object_get (s_result (reply), "status")), "cancelled");
    json_decref (reply);
    //  Gateway A heard of it and stopped the job: the one worker is free.
    reply = s_call ("greet", "{\"name\":\"after\"}", EXT, NULL);
    assert_string_equal (s_text (s_result (reply)), "Hello, after!");
    json_decref (reply);
    free (id);
}

//  A connector tool marked "taskSupport": "optional": a slow upstream call
//  becomes a task once it outlasts the api worker's --task-promote-ms
//  (1 s), and the task ends with the upstream's answer; a fast one is
//  answered as usual.
static void
test_connector_tool (void **state)
{
    json_t *reply = s_call ("search_accounts", "{\"query\":\"Acme\"}", EXT, NULL);
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "resultType")), "complete");
    assert_null (json_object_get (r, "taskId"));
    json_decref (reply);

    sb_farm_sandbox_faults (s_farm, "{\"delay_ms\":2500,\"count\":1,\"path_prefix\":\"/v1/accounts\"}");
    reply = s_call ("search_accounts", "{\"query\":\"Acme\"}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    reply = s_wait_status (NULL, id, "completed");
    json_t *result = json_object_get (s_result (reply), "result");
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text (result), "Acme"));
    json_decref (reply);
    free (id);
}

//  A listen stream that follows taskIds (on gateway B, the tasks run from
//  A): each task's state at once, then again when its status changes,
//  as tasks/get gives it to this user: another tenant's task, though
//  named, never shows; an id that cannot be ours is left out of the
//  acknowledgement.
static void
test_task_notifications (void **state)
{
    long status = 0;
    json_t *params = json_pack ("{s:s, s:{s:i, s:s}}", "name", "slow_compute", "arguments", "seconds", 1,
                                "label", "theirs");
    json_t *reply = s_post (NULL, s_other_token, "tools/call", "slow_compute", params, EXT, &status);
    char *theirs = s_assert_created (reply);
    json_decref (reply);
    reply = s_call ("slow_compute", "{\"seconds\":2,\"label\":\"watched\"}", EXT, NULL);
    char *mine = s_assert_created (reply);
    json_decref (reply);

    s_raw_t raw;
    char ids [256], expect [256];
    snprintf (ids, sizeof ids, "[\"%s\",\"%s\",\"not a task id\"]", mine, theirs);
    s_raw_listen (&raw, s_gateway_b_url, ids);
    snprintf (expect, sizeof expect, "\"taskIds\":[\"%s\",\"%s\"]", mine, theirs);
    s_raw_wait (&raw, "notifications/subscriptions/acknowledged");
    s_raw_wait (&raw, expect);
    snprintf (expect, sizeof expect, "\"taskId\":\"%s\"", mine);
    s_raw_wait (&raw, expect);                          //  its state now
    s_raw_wait (&raw, "\"status\":\"completed\"");      //  and when it ended
    s_raw_wait (&raw, "watched");
    assert_non_null (strstr (raw.buf, "\"method\":\"notifications/tasks\""));
    assert_non_null (strstr (raw.buf, "\"io.modelcontextprotocol/subscriptionId\":\"watch\""));
    reply = s_wait_status (NULL, mine, "completed");
    json_decref (reply);
    snprintf (expect, sizeof expect, "\"taskId\":\"%s\"", theirs);
    assert_null (strstr (raw.buf, expect));
    close (raw.fd);
    free (mine);
    free (theirs);
}

//  A worker that dies while it runs a task's job: slow_compute is
//  read-only, so the broker queues the job again, a worker that joins later
//  runs it from the start (its second promote changes nothing), and the
//  task completes with the tool's own result.
static void
test_worker_dies (void **state)
{
    json_t *reply = s_call ("slow_compute", "{\"seconds\":2,\"label\":\"again\"}", EXT, NULL);
    char *id = s_assert_created (reply);
    json_decref (reply);
    sb_harness_kill (s_farm->api_workers [0]);
    s_farm->api_workers [0] = -1;
    reply = s_task (NULL, NULL, "tasks/get", id, NULL);
    assert_string_equal (json_string_value (json_object_get (s_result (reply), "status")), "working");
    json_decref (reply);
    sb_farm_add_api_worker (s_farm);
    reply = s_wait_status (NULL, id, "completed");
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "status")), "completed");
    json_t *result = json_object_get (r, "result");
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text (result), "again"));
    json_decref (reply);
    free (id);
}

//  A gateway that stops while it runs a task's job stops that job and marks
//  the task failed: another gateway reports it, and the one worker is free.
//  (Last: it stops the second gateway.)
static void
test_gateway_stops (void **state)
{
    long status = 0;
    json_t *params = json_pack ("{s:s, s:{s:i}}", "name", "slow_compute", "arguments", "seconds", 60);
    json_t *reply = s_post (s_gateway_b_url, NULL, "tools/call", "slow_compute", params, EXT, &status);
    assert_int_equal (status, 200);
    char *id = s_assert_created (reply);
    json_decref (reply);
    assert_int_equal (sb_harness_stop (s_gateway_b), 0);
    s_gateway_b = 0;
    //  Recorded before gateway B exited (it waits for the store's answer):
    //  the very first tasks/get elsewhere says so, no polling.
    reply = s_task (NULL, NULL, "tasks/get", id, NULL);
    json_t *r = s_result (reply);
    assert_string_equal (json_string_value (json_object_get (r, "status")), "failed");
    const char *message = json_string_value (json_object_get (json_object_get (r, "error"), "message"));
    assert_non_null (message);
    assert_non_null (strstr (message, "shut down"));
    json_decref (reply);
    reply = s_call ("greet", "{\"name\":\"still here\"}", EXT, NULL);
    assert_string_equal (s_text (s_result (reply)), "Hello, still here!");
    json_decref (reply);
    free (id);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_lifecycle),
        cmocka_unit_test (test_errors),
        cmocka_unit_test (test_cancel),
        cmocka_unit_test (test_input),
        cmocka_unit_test (test_input_before_task),
        cmocka_unit_test (test_isolation),
        cmocka_unit_test (test_two_gateways),
        cmocka_unit_test (test_connector_tool),
        cmocka_unit_test (test_task_notifications),
        cmocka_unit_test (test_worker_dies),
        cmocka_unit_test (test_gateway_stops),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
