/*  tests/46_e2e_audit.c — refused attempts on another's data reach the
    audit log, through a whole farm of real processes (gateway → broker →
    token and task workers → PostgreSQL):

      - user B of another tenant, and user B of the same tenant, send A's
        Mcp-Session-Id: 404 for them, and session_refused (other_tenant,
        other_user) under B's tenant with B as actor — the gateway decides,
        the token worker writes (op audit/record);
      - the same users ask for, answer and cancel A's task: "Unknown task"
        for them, and task_refused (get/update/cancel, other_tenant,
        other_user) under B's tenant — the task store decides and writes;
      - a token of the farm's key for another audience: 401 and
        audience_refused; a token with mcp:tools only calling a tool that
        writes: 403 insufficient_scope and scope_refused;
      - a taskId nobody holds is refused without a record (a guess is
        nobody's data), and A's own requests are never recorded.

    The log is read from PostgreSQL directly, polling with a deadline: a
    gateway's record is sent after its refusal is answered. */
#include "sb_farm.h"
#include "sb_harness.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define CALL_WAIT_MS    15000       /* one HTTP request */
#define AUDIT_WAIT_MS   10000       /* a gateway's record reaching the log */
#define RIVAL           "rival46"   /* the other tenant, made for this test */
#define EXT             "{\"extensions\":{\"io.modelcontextprotocol/tasks\":{}},\"elicitation\":{}}"

static sb_farm_t *s_farm;
static char s_alice [2048];         /* A: demo / alice-46 */
static char s_bob [2048];           /* B, same tenant: demo / bob-46 */
static char s_carol [2048];         /* B, other tenant: rival46 / carol-46 */

//  ---------------------------------------------------------------------------
//  The database, as the services' role, across tenants on purpose

static PGconn *
s_db (void)
{
    char *conninfo = sb_harness_pg_conninfo ();
    PGconn *conn = conninfo? PQconnectdb (conninfo): NULL;
    free (conninfo);
    if (!conn || PQstatus (conn) != CONNECTION_OK)
        fail_msg ("no database: %s", conn? PQerrorMessage (conn): "no conninfo");
    PQclear (PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)"));
    return conn;
}

static int
s_db_exec (const char *sql, const char *tenant)
{
    PGconn *conn = s_db ();
    const char *params [] = { tenant };
    PGresult *res = PQexecParams (conn, sql, 1, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
    if (rc)
        fprintf (stderr, "46_e2e_audit: %s: %s", sql, PQresultErrorMessage (res));
    PQclear (res);
    PQfinish (conn);
    return rc;
}

//  Rows of audit_log for `tenant`, `actor`, `action` whose detail has
//  `key` = `value`.
static long
s_audits (const char *tenant, const char *actor, const char *action, const char *key,
          const char *value)
{
    PGconn *conn = s_db ();
    const char *params [] = { tenant, actor, action, key, value };
    PGresult *res = PQexecParams (conn,
        "SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND actor = $2 AND action = $3"
        " AND detail ->> $4 = $5", 5, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK)
        fail_msg ("audit_log: %s", PQresultErrorMessage (res));
    long count = strtol (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    PQfinish (conn);
    return count;
}

//  Waits (polling, with a deadline) until s_audits reaches `expected`;
//  asserts it is then exactly that.
static void
s_expect_audits (long expected, const char *tenant, const char *actor, const char *action,
                 const char *key, const char *value)
{
    struct timespec start, now;
    clock_gettime (CLOCK_MONOTONIC, &start);
    long count = s_audits (tenant, actor, action, key, value);
    while (count < expected) {
        clock_gettime (CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > AUDIT_WAIT_MS)
            break;
        usleep (20 * 1000);
        count = s_audits (tenant, actor, action, key, value);
    }
    if (count != expected)
        fail_msg ("audit_log %s/%s/%s %s=%s: %ld rows, expected %ld", tenant, actor, action, key,
                  value, count, expected);
}

//  Refusals (actions *_refused) of `actor` in `tenant`.
static long
s_refusals_of (const char *tenant, const char *actor)
{
    PGconn *conn = s_db ();
    const char *params [] = { tenant, actor };
    PGresult *res = PQexecParams (conn, "SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND actor = $2"
                                  " AND action LIKE '%\\_refused'", 2, NULL, params, NULL, NULL, 0);
    long count = PQresultStatus (res) == PGRES_TUPLES_OK? strtol (PQgetvalue (res, 0, 0), NULL, 10): -1;
    PQclear (res);
    PQfinish (conn);
    return count;
}

//  ---------------------------------------------------------------------------
//  Tokens and requests

//  A token of the farm's key for `tenant`, `subject`, `scope`, `audience`.
static void
s_mint (const char *tenant, const char *subject, const char *scope, const char *audience,
        char *token, size_t size)
{
    char command [1024];
    snprintf (command, sizeof command,
              "%s --key-file %s --tenant %s --subject %s --client-id e2e-audit --scope '%s' "
              "--audience %s --ttl 600", sb_harness_bin ("sb-token"), s_farm->key_file, tenant,
              subject, scope, audience);
    FILE *pipe = popen (command, "r");
    assert_non_null (pipe);
    if (!fgets (token, (int) size, pipe))
        *token = 0;
    token [strcspn (token, "\r\n")] = 0;
    assert_int_equal (pclose (pipe), 0);
    assert_true (strlen (token) > 20);
}

//  POST /mcp as `token` with `body` and extra headers (NULL-terminated);
//  returns the reply (new) and the status and Mcp-Session-Id it had.
static json_t *
s_post (const char *token, const char *body, const char *const *extra, long *status,
        char *session, size_t session_size)
{
    char url [128], auth [2200];
    snprintf (url, sizeof url, "%s/mcp", s_farm->gateway_url);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *headers [12] = { auth, "Content-Type: application/json",
                                 "Accept: application/json, text/event-stream" };
    size_t count = 3;
    for (size_t i = 0; extra && extra [i] && count < 11; i++)
        headers [count++] = extra [i];
    sb_harness_request_t request = { .method = "POST", .url = url, .headers = headers,
                                     .body = body, .body_len = strlen (body),
                                     .timeout_ms = CALL_WAIT_MS };
    sb_harness_response_t response;
    assert_int_equal (sb_harness_request (&request, &response), 0);
    *status = response.status;
    if (session)
        sb_harness_header (&response, "Mcp-Session-Id", session, session_size);
    json_t *reply = response.body? json_loads (response.body, 0, NULL): NULL;
    if (!reply)
        fail_msg ("no JSON reply (HTTP %ld): %s", *status, response.body? response.body: "(none)");
    sb_harness_response_clear (&response);
    return reply;
}

//  A 2026-07-28 request `method` with `params` (JSON object text, _meta
//  added) as `token`; HTTP 200 asserted; the reply (new).
static json_t *
s_post_modern (const char *token, const char *method, const char *name, const char *params)
{
    json_t *p = json_loads (params, 0, NULL);
    json_object_set_new (p, "_meta", json_pack ("{s:s, s:o, s:{s:s, s:s}}",
        "io.modelcontextprotocol/protocolVersion", "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities", json_loads (EXT, 0, NULL),
        "io.modelcontextprotocol/clientInfo", "name", "e2e", "version", "1"));
    json_t *request = json_pack ("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 9, "method", method,
                                 "params", p);
    char *body = json_dumps (request, JSON_COMPACT);
    json_decref (request);
    char method_header [64], name_header [256];
    snprintf (method_header, sizeof method_header, "Mcp-Method: %s", method);
    snprintf (name_header, sizeof name_header, "Mcp-Name: %s", name);
    const char *extra [] = { "MCP-Protocol-Version: 2026-07-28", method_header, name_header, NULL };
    long status = 0;
    json_t *reply = s_post (token, body, extra, &status, NULL, 0);
    free (body);
    if (status != 200)
        fail_msg ("HTTP %ld for %s", status, method);
    return reply;
}

//  Asserts `reply` (taken) is "Unknown task" (-32602).
static void
s_assert_unknown_task (json_t *reply)
{
    json_t *error = json_object_get (reply, "error");
    if (!error)
        fail_msg ("expected an error: %s", json_dumps (reply, JSON_COMPACT));
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32602);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")), "Unknown task"));
    json_decref (reply);
}

//  ---------------------------------------------------------------------------
//  Fixture

static int
s_setup (void **state)
{
    s_farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1 });
    if (!s_farm)
        return -1;
    if (s_db_exec ("INSERT INTO tenants (id, name) VALUES ($1, 'Rival') ON CONFLICT (id) DO NOTHING",
                   RIVAL))
        return -1;
    return sb_farm_mint (s_farm, "demo", "alice-46", s_alice, sizeof s_alice)
        || sb_farm_mint (s_farm, "demo", "bob-46", s_bob, sizeof s_bob)
        || sb_farm_mint (s_farm, RIVAL, "carol-46", s_carol, sizeof s_carol)? -1: 0;
}

static int
s_teardown (void **state)
{
    sb_farm_stop (&s_farm);
    //  Its audit rows go with it (the foreign key cascades); demo's stay
    //  under subjects no other test uses.
    return s_db_exec ("DELETE FROM tenants WHERE id = $1", RIVAL);
}

//  ---------------------------------------------------------------------------
//  Tests

static const char s_init [] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\","
    "\"capabilities\":{},\"clientInfo\":{\"name\":\"e2e\",\"version\":\"1\"}}}";
static const char s_ping [] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}";

//  A's session, used by B of another tenant and B of A's tenant.
static void
test_session (void **state)
{
    long status = 0;
    char session [512] = "";
    json_decref (s_post (s_alice, s_init, NULL, &status, session, sizeof session));
    assert_int_equal (status, 200);
    assert_true (strlen (session) > 10);
    char header [600];
    snprintf (header, sizeof header, "Mcp-Session-Id: %s", session);
    const char *with [] = { header, "MCP-Protocol-Version: 2025-11-25", NULL };
    json_decref (s_post (s_alice, s_ping, with, &status, NULL, 0));
    assert_int_equal (status, 200);

    long other_tenant = s_audits (RIVAL, "carol-46", "session_refused", "reason", "other_tenant");
    long other_user = s_audits ("demo", "bob-46", "session_refused", "reason", "other_user");
    json_decref (s_post (s_carol, s_ping, with, &status, NULL, 0));
    assert_int_equal (status, 404);
    json_decref (s_post (s_bob, s_ping, with, &status, NULL, 0));
    assert_int_equal (status, 404);
    s_expect_audits (other_tenant + 1, RIVAL, "carol-46", "session_refused", "reason", "other_tenant");
    s_expect_audits (other_user + 1, "demo", "bob-46", "session_refused", "reason", "other_user");
    //  A forged session ID is nobody's: refused, not recorded.
    const char *forged [] = { "Mcp-Session-Id: forged-session-id", NULL };
    json_decref (s_post (s_carol, s_ping, forged, &status, NULL, 0));
    assert_int_equal (status, 404);
    //  The session still works for A, who is never recorded.
    json_decref (s_post (s_alice, s_ping, with, &status, NULL, 0));
    assert_int_equal (status, 200);
    //  One more genuine attempt: once its record is in, a record of the
    //  forged one (sent before it, on the same path) would be too.
    json_decref (s_post (s_carol, s_ping, with, &status, NULL, 0));
    assert_int_equal (status, 404);
    s_expect_audits (other_tenant + 2, RIVAL, "carol-46", "session_refused", "reason", "other_tenant");
    assert_int_equal (s_refusals_of (RIVAL, "carol-46"), other_tenant + 2);
    assert_int_equal (s_refusals_of ("demo", "alice-46"), 0);
}

//  A's task, asked for, answered and cancelled by the strangers.
static void
test_task (void **state)
{
    json_t *reply = s_post_modern (s_alice, "tools/call", "confirm_delete",
                                   "{\"name\":\"confirm_delete\",\"arguments\":{\"filename\":\"a.txt\"}}");
    const char *id = json_string_value (json_object_get (json_object_get (reply, "result"), "taskId"));
    if (!id)
        fail_msg ("expected a task: %s", json_dumps (reply, JSON_COMPACT));
    char task [128];
    snprintf (task, sizeof task, "%s", id);
    json_decref (reply);
    char params [256];
    snprintf (params, sizeof params, "{\"taskId\":\"%s\"}", task);
    char update [320];
    snprintf (update, sizeof update, "{\"taskId\":\"%s\",\"inputResponses\":{\"x\":{}}}", task);

    struct { const char *token, *tenant, *actor, *reason; } strangers [] = {
        { s_carol, RIVAL, "carol-46", "other_tenant" },
        { s_bob, "demo", "bob-46", "other_user" },
    };
    for (size_t i = 0; i < 2; i++) {
        long before = s_audits (strangers [i].tenant, strangers [i].actor, "task_refused",
                                "reason", strangers [i].reason);
        long gets = s_audits (strangers [i].tenant, strangers [i].actor, "task_refused", "op", "get");
        s_assert_unknown_task (s_post_modern (strangers [i].token, "tasks/get", task, params));
        s_assert_unknown_task (s_post_modern (strangers [i].token, "tasks/update", task, update));
        s_assert_unknown_task (s_post_modern (strangers [i].token, "tasks/cancel", task, params));
        //  Written by the store in the statement that refused: there now.
        assert_int_equal (s_audits (strangers [i].tenant, strangers [i].actor, "task_refused",
                                    "reason", strangers [i].reason), before + 3);
        assert_int_equal (s_audits (strangers [i].tenant, strangers [i].actor, "task_refused",
                                    "op", "get"), gets + 1);
    }
    //  A guessed taskId is nobody's: refused, not recorded.
    long rival = s_refusals_of (RIVAL, "carol-46");
    s_assert_unknown_task (s_post_modern (s_carol, "tasks/get", "AAAAAAAAAAAAAAAAAAAAAA",
                                          "{\"taskId\":\"AAAAAAAAAAAAAAAAAAAAAA\"}"));
    assert_int_equal (s_refusals_of (RIVAL, "carol-46"), rival);
    //  A's own task, untouched, cancelled by A; A is never recorded.
    reply = s_post_modern (s_alice, "tasks/get", task, params);
    assert_string_equal (json_string_value (json_object_get (json_object_get (reply, "result"), "status")),
                         "input_required");
    json_decref (reply);
    json_decref (s_post_modern (s_alice, "tasks/cancel", task, params));
    assert_int_equal (s_refusals_of ("demo", "alice-46"), 0);
}

//  A token of the farm's key for another resource; a token without the
//  scope a tool needs.
static void
test_audience_and_scope (void **state)
{
    char token [2048];
    long status = 0;
    long audience = s_audits (RIVAL, "dave-46", "audience_refused", "audience",
                              "https://elsewhere.example/mcp");
    s_mint (RIVAL, "dave-46", "mcp:tools mcp:write", "https://elsewhere.example/mcp", token, sizeof token);
    json_decref (s_post (token, s_ping, NULL, &status, NULL, 0));
    assert_int_equal (status, 401);
    s_expect_audits (audience + 1, RIVAL, "dave-46", "audience_refused", "audience",
                     "https://elsewhere.example/mcp");

    char resource [128];
    snprintf (resource, sizeof resource, "%s/mcp", s_farm->gateway_url);
    s_mint (RIVAL, "erin-46", "mcp:tools", resource, token, sizeof token);
    //  Reading is fine: tools/list.
    json_decref (s_post (token, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}", NULL, &status,
                         NULL, 0));
    assert_int_equal (status, 200);
    long scope = s_audits (RIVAL, "erin-46", "scope_refused", "needed", "mcp:tools mcp:write");
    json_t *reply = s_post (token, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
                            "{\"name\":\"create_task\",\"arguments\":{\"title\":\"Call back\"}}}",
                            NULL, &status, NULL, 0);
    assert_int_equal (status, 403);
    assert_non_null (json_object_get (reply, "error"));
    json_decref (reply);
    s_expect_audits (scope + 1, RIVAL, "erin-46", "scope_refused", "needed", "mcp:tools mcp:write");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_session),
        cmocka_unit_test (test_task),
        cmocka_unit_test (test_audience_and_scope),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
