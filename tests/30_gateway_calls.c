/*  tests/30_gateway_calls.c — calls that talk while they run, through the
    real sb-gateway binary and a fake broker run in this test (a ROUTER in a
    zactor thread speaking the proto codec): NOTIFY (progress, log messages
    filtered by logging/setLevel), ASK relayed to the client as an "sb:" id
    request and its ANSWER, ASKs refused for clients without the capability,
    notifications/cancelled → CANCEL, malformed "sb:" ids.

    The fake broker (tests/30_gateway_support.h) answers by the tool
    arguments' text: talk, ask, sample, hold, whoami (the job's subject). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sb_crypto.h"
#include "sb_token.h"
#include "sb_job.h"
#include "sb_msg.h"
#include "sb_harness.h"
#include "30_gateway_support.h"

//  A POST with the session's headers (if any), in a thread / to its end.
static tg_http_t *
s_start (const char *session, const char *token, const char *body)
{
    char id [600];
    const char *headers [] = { id, "MCP-Protocol-Version: 2025-11-25", NULL };
    snprintf (id, sizeof id, "Mcp-Session-Id: %s", session ? session : "");
    return tg_start (session ? headers : NULL, token, body);
}

static tg_http_t *
s_post (const char *session, const char *token, const char *body)
{
    tg_http_t *h = s_start (session, token, body);
    tg_join (h);
    assert_int_equal (h->rc, 0);
    return h;
}

//  The first event id on a stream body (the priming event's), new string.
static char *
s_first_id (tg_http_t *h)
{
    pthread_mutex_lock (&h->lock);
    const char *id = h->response.body? strstr (h->response.body, "id: "): NULL;
    char *copy = id? strndup (id + 4, strcspn (id + 4, "\n")): NULL;
    pthread_mutex_unlock (&h->lock);
    return copy;
}

//  A new session with client capabilities `caps` (JSON object text).
static char *
s_session (const char *caps)
{
    char body [512];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
              "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":%s,\"clientInfo\":{\"name\":\"t\","
              "\"version\":\"1\"}}}", caps);
    tg_http_t *h = s_post (NULL, tg_token, body);
    assert_int_equal (h->status, 200);
    assert_true (strlen (h->session_id) > 10);
    char *id = strdup (h->session_id);
    tg_free (h);
    return id;
}

static void
s_expect_status (const char *session, const char *token, const char *body, long status)
{
    tg_http_t *h = s_post (session, token, body);
    if (h->status != status)
        fail_msg ("status %ld, expected %ld for %s: %s", h->status, status, body, h->response.body? h->response.body: "");
    tg_free (h);
}

//  ---------------------------------------------------------------------------
//  Fixture

static int
s_setup (void **state)
{
    return tg_fixture_start ("calls");
}

static int
s_teardown (void **state)
{
    return tg_fixture_stop ();
}

#define CALL(id, query, meta) \
    "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"method\":\"tools/call\",\"params\":{\"name\":" \
    "\"search_accounts\",\"arguments\":{\"query\":\"" query "\"}" meta "}}"

//  ---------------------------------------------------------------------------
//  Tests

//  Progress notifications carry the client's token and come before the
//  result; without setLevel every log message is sent.
static void
test_progress_and_logs (void **state)
{
    char *session = s_session ("{}");
    tg_http_t *h = s_post (session, tg_token, CALL ("\"p-1\"", "talk", ",\"_meta\":{\"progressToken\":\"tok-1\"}"));
    assert_int_equal (h->status, 200);
    assert_string_equal (h->content_type, "text/event-stream");
    json_t *events = tg_events (h);
    assert_int_equal (json_array_size (events), 7);
    for (size_t i = 0; i < 3; i++) {
        json_t *event = json_array_get (events, i);
        assert_string_equal (json_string_value (json_object_get (event, "method")), "notifications/progress");
        assert_string_equal (json_string_value (json_object_get (event, "jsonrpc")), "2.0");
        json_t *params = json_object_get (event, "params");
        assert_string_equal (json_string_value (json_object_get (params, "progressToken")), "tok-1");
        assert_int_equal (json_integer_value (json_object_get (params, "progress")), (int) i + 1);
    }
    const char *levels [] = { "debug", "info", "error" };
    for (size_t i = 0; i < 3; i++) {
        json_t *event = json_array_get (events, 3 + i);
        assert_string_equal (json_string_value (json_object_get (event, "method")), "notifications/message");
        assert_string_equal (json_string_value (json_object_get (json_object_get (event, "params"), "level")),
                             levels [i]);
    }
    json_t *reply = json_array_get (events, 6);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "p-1");
    assert_non_null (json_object_get (reply, "result"));
    json_decref (events);
    tg_free (h);

    //  An integer token is kept as an integer; a call without one gets no progress.
    h = s_post (session, tg_token, CALL ("2", "talk", ",\"_meta\":{\"progressToken\":42}"));
    events = tg_events (h);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (
        json_array_get (events, 0), "params"), "progressToken")), 42);
    json_decref (events);
    tg_free (h);
    h = s_post (session, tg_token, CALL ("3", "talk", ""));
    events = tg_events (h);
    assert_int_equal (json_array_size (events), 4);
    assert_string_equal (json_string_value (json_object_get (json_array_get (events, 0), "method")),
                         "notifications/message");
    json_decref (events);
    tg_free (h);
    free (session);
}

//  A tools/call job carries the caller's token subject, with a session
//  and without.
static void
test_job_subject (void **state)
{
    char *session = s_session ("{}");
    tg_http_t *h = s_post (session, tg_token, CALL ("7", "whoami", ""));
    assert_int_equal (h->status, 200);
    assert_non_null (h->response.body);
    assert_non_null (strstr (h->response.body, "subject=tester"));
    tg_free (h);
    h = s_post (NULL, tg_token, CALL ("8", "whoami", ""));
    assert_non_null (h->response.body);
    assert_non_null (strstr (h->response.body, "subject=tester"));
    tg_free (h);
    free (session);
}

//  logging/setLevel filters the session's log messages, and only its.
static void
test_log_level (void **state)
{
    char *session = s_session ("{}");
    char *other = s_session ("{}");
    s_expect_status (session, tg_token, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\","
                     "\"params\":{\"level\":\"warning\"}}", 200);
    tg_http_t *h = s_post (session, tg_token, CALL ("4", "talk", ""));
    json_t *events = tg_events (h);
    assert_int_equal (json_array_size (events), 2);
    json_t *message = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (json_object_get (message, "params"), "level")),
                         "error");
    assert_non_null (json_object_get (json_array_get (events, 1), "result"));
    json_decref (events);
    tg_free (h);

    h = s_post (other, tg_token, CALL ("5", "talk", ""));
    events = tg_events (h);
    assert_int_equal (json_array_size (events), 4);
    json_decref (events);
    tg_free (h);

    //  A stateless JSON-mode call drops notifications: one JSON response.
    h = s_post (NULL, tg_token, CALL ("6", "talk", ""));
    assert_string_equal (h->content_type, "application/json");
    json_t *reply = json_loads (h->response.body, 0, NULL);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 6);
    json_decref (reply);
    tg_free (h);
    free (session);
    free (other);
}

//  An ASK reaches the client as a request with an "sb:" id; the client's
//  response becomes an ANSWER with the token's tenant.
static void
test_ask_and_answer (void **state)
{
    char *session = s_session ("{\"elicitation\":{}}");
    int answers = tg_broker_int ("ANSWERS");
    tg_http_t *h = s_start (session, tg_token, CALL ("\"e-1\"", "ask", ""));
    json_t *ask = tg_wait_method (h, "elicitation/create");
    const char *id = json_string_value (json_object_get (ask, "id"));
    assert_non_null (id);
    assert_true (strncmp (id, "sb:", 3) == 0);
    assert_true (strlen (id) > 6 && streq (id + strlen (id) - 2, ":1"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (ask, "params"), "message")),
                         "Which account?");

    //  Another tenant's token with the same id: routed with *its* tenant, so
    //  the broker (here: the fake one) does not deliver it to the job.
    char body [512];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"result\":{\"action\":\"decline\"}}", id);
    s_expect_status (NULL, tg_other, body, 202);
    tg_wait_count ("ANSWERS", answers + 1);
    char command [32];
    snprintf (command, sizeof command, "ANSWER %d", answers);
    char *seen = tg_broker_ask (command);
    assert_true (strncmp (seen, "globex 1 ", 9) == 0);
    zstr_free (&seen);

    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"result\":{\"action\":\"accept\","
              "\"content\":{\"name\":\"Acme\"}},\"tenant\":\"globex\"}", id);
    s_expect_status (session, tg_token, body, 202);
    tg_join (h);
    assert_int_equal (h->rc, 0);
    snprintf (command, sizeof command, "ANSWER %d", answers + 1);
    seen = tg_broker_ask (command);
    char expected [160];
    snprintf (expected, sizeof expected, "acme 1 %.*s {\"result\":{\"action\":\"accept\",\"content\":"
              "{\"name\":\"Acme\"}}}", (int) strlen (id + 3) - 2, id + 3);
    assert_string_equal (seen, expected);
    zstr_free (&seen);
    json_t *events = tg_events (h);
    json_t *reply = json_array_get (events, json_array_size (events) - 1);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "e-1");
    json_t *structured = json_object_get (json_object_get (reply, "result"), "structuredContent");
    assert_string_equal (json_string_value (json_object_get (structured, "answer")),
                         "{\"result\":{\"action\":\"accept\",\"content\":{\"name\":\"Acme\"}}}");
    json_decref (events);
    json_decref (ask);
    tg_free (h);
    free (session);
}

//  A client without the capability: the ASK is answered at once with an
//  error, never sent to the client.
static void
test_ask_refused (void **state)
{
    char *session = s_session ("{\"elicitation\":{}}");
    tg_http_t *h = s_post (session, tg_token, CALL ("7", "sample", ""));
    json_t *events = tg_events (h);
    assert_int_equal (json_array_size (events), 1);
    json_t *structured = json_object_get (json_object_get (json_array_get (events, 0), "result"),
                                          "structuredContent");
    json_t *answer = json_loads (json_string_value (json_object_get (structured, "answer")), 0, NULL);
    json_t *error = json_object_get (answer, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32601);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")),
                             "cannot answer sampling/createMessage"));
    json_decref (answer);
    json_decref (events);
    tg_free (h);

    //  Stateless (no capabilities known), JSON mode: refused the same way.
    h = s_post (NULL, tg_token, CALL ("8", "ask", ""));
    assert_string_equal (h->content_type, "application/json");
    assert_non_null (strstr (h->response.body, "cannot answer elicitation/create"));
    tg_free (h);
    free (session);
}

//  Responses whose id is not one of ours are refused, and reach no broker.
static void
test_bad_answer_ids (void **state)
{
    char *session = s_session ("{}");
    int answers = tg_broker_int ("ANSWERS");
    const char *ids [] = {
        "\"sb:\"", "\"sb::1\"", "\"sb:abc:0\"", "\"sb:abc:01\"", "\"sb:abc:-1\"", "\"sb:abc:\"",
        "\"sb:abc:4294967296\"", "\"sb:a b:1\"", "\"sb:abc:1x\"", "\"sb:abc:1:2\"", "\"SB:abc:1\"",
        "\"sb:abc\"", "\"other\"", "5",
        "\"sb:0123456789012345678901234567890123456789012345678901234567890123456789:1\"", NULL
    };
    for (int i = 0; ids [i]; i++) {
        char body [256];
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}", ids [i]);
        s_expect_status (session, tg_token, body, 400);
    }
    //  The largest ask id is well formed.
    s_expect_status (session, tg_token,
                     "{\"jsonrpc\":\"2.0\",\"id\":\"sb:abc:4294967295\",\"error\":{\"code\":-1,\"message\":\"no\"}}",
                     202);
    tg_wait_count ("ANSWERS", answers + 1);
    char command [32];
    snprintf (command, sizeof command, "ANSWER %d", answers);
    char *seen = tg_broker_ask (command);
    assert_string_equal (seen, "acme 4294967295 abc {\"error\":{\"code\":-1,\"message\":\"no\"}}");
    zstr_free (&seen);
    free (session);
}

//  notifications/cancelled: CANCEL to the broker, the stream ends without a
//  response, a late REPLY is dropped.
static void
test_cancel (void **state)
{
    char *session = s_session ("{}");
    int received = tg_broker_int ("RECEIVED");
    tg_http_t *h = s_start (session, tg_token, CALL ("\"c-1\"", "hold", ""));
    tg_wait_count ("RECEIVED", received + 1);
    json_decref (tg_wait_method (h, "notifications/message"));

    //  Unknown ids, another session, malformed: ignored (202), nothing cancelled.
    char *stranger = s_session ("{}");
    s_expect_status (stranger, tg_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-1\"}}", 202);
    s_expect_status (session, tg_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-2\"}}", 202);
    s_expect_status (session, tg_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":{}}}", 202);
    s_expect_status (NULL, tg_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-1\"}}", 202);
    free (stranger);
    int cancels = tg_broker_int ("CANCELS");

    s_expect_status (session, tg_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-1\",\"reason\":\"changed my mind\"}}", 202);
    tg_join (h);
    assert_int_equal (h->rc, 0);
    assert_int_equal (h->status, 200);
    json_t *events = tg_events (h);
    assert_int_equal (json_array_size (events), 1);         //  the message, no response
    json_decref (events);
    tg_wait_count ("CANCELS", cancels + 1);
    char *after = tg_broker_ask ("CANCELS");
    char corr [2][80];
    assert_int_equal (sscanf (after, "%*d %79s %79s", corr [0], corr [1]), 2);
    assert_string_equal (corr [0], corr [1]);               //  CANCEL names the held job
    zstr_free (&after);

    //  The late REPLY: dropped. A call after it proves the gateway has read
    //  it (one socket, in order); the cancelled stream then replays its
    //  message and nothing else.
    char *ok = tg_broker_ask ("LATE");
    zstr_free (&ok);
    tg_http_t *next = s_post (session, tg_token, CALL ("9", "plain", ""));
    assert_non_null (strstr (next->response.body, "plain"));
    tg_free (next);
    char *first = s_first_id (h);
    assert_non_null (first);
    char last [160], with [600];
    snprintf (last, sizeof last, "Last-Event-ID: %s", first);
    snprintf (with, sizeof with, "Mcp-Session-Id: %s", session);
    const char *headers [] = { last, with, "Accept: text/event-stream", NULL };
    char url [128];
    snprintf (url, sizeof url, "%s/mcp", tg_base);
    size_t auth_size = strlen (tg_token) + 32;
    char *auth = malloc (auth_size);
    snprintf (auth, auth_size, "Authorization: Bearer %s", tg_token);
    const char *all [] = { headers [0], headers [1], headers [2], auth, NULL };
    char *body = NULL;
    long status = 0;
    assert_int_equal (sb_harness_http ("GET", url, all, NULL, 0, TG_WAIT_MS, &status, &body), 0);
    assert_int_equal (status, 200);
    assert_non_null (strstr (body? body: "", "holding"));
    assert_null (strstr (body? body: "", "late"));
    free (body);
    free (auth);
    free (first);
    tg_free (h);
    free (session);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_progress_and_logs),
        cmocka_unit_test (test_job_subject),
        cmocka_unit_test (test_log_level),
        cmocka_unit_test (test_ask_and_answer),
        cmocka_unit_test (test_ask_refused),
        cmocka_unit_test (test_bad_answer_ids),
        cmocka_unit_test (test_cancel),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
