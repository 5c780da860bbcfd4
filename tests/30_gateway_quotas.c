/*  tests/30_gateway_quotas.c — the gateway's side of the quotas
    (proto/PROTOCOL.md "Quotas") through the real sb-gateway and the fake
    broker of tests/30_gateway_support.c:

      - a tools/call REQUEST carries its tool's cost and, when the
        connector declares an upstream_budget, the connector and that
        budget; under 2026-07-28 only the first round costs (the round that
        brings the client's answer carries cost 0, the budget still);
      - a REPLY `limited` becomes an isError CallToolResult with one
        sentence and _meta {error_type, retry_after}, for each reason, for
        2025-11-25 (JSON and in a session's stream) and 2026-07-28, and for
        a call that may become a task;
      - a REPLY with a quota group puts RateLimit-Policy and RateLimit on a
        JSON response; none on a stream, none without a group, none for an
        in-flight cap.

    A connector fixture written here ("metered": tool metered_search, cost
    7, upstream budget 500 per 24 h, optional task support) is loaded with
    the test connectors. Everything waits for replies, never a sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_harness.h"
#include "30_gateway_support.h"

static char s_dir [] = "/tmp/sb-30-quotas-XXXXXX";
static char s_file [64];

#define METERED \
    "{\"name\":\"metered\",\"title\":\"Metered CRM\",\"display_name\":\"the metered CRM\"," \
    " \"base_url\":\"http://127.0.0.1:9\"," \
    " \"upstream_budget\":{\"requests\":500,\"window_s\":86400}," \
    " \"tools\":[{\"name\":\"metered_search\",\"description\":\"d\",\"cost\":7," \
    "   \"taskSupport\":\"optional\"," \
    "   \"inputSchema\":{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\"}}," \
    "                  \"required\":[\"query\"]}," \
    "   \"request\":{\"method\":\"GET\",\"path\":\"/q\",\"query\":{\"q\":\"{query}\"}}," \
    "   \"result\":{\"mapping\":\"object\",\"noun\":\"thing\"}}]}"

//  A 2025-11-25 tools/call of `tool` with `query` (no session: a JSON answer).
#define CALL(tool, query) \
    "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"" tool "\"," \
    "\"arguments\":{\"query\":\"" query "\"}}}"

#define MODERN_META(caps) \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"," \
    "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"t\",\"version\":\"1\"}," \
    "\"io.modelcontextprotocol/clientCapabilities\":" caps "}"

static int
s_setup (void **state)
{
    if (!mkdtemp (s_dir))
        return -1;
    snprintf (s_file, sizeof s_file, "%s/metered.json", s_dir);
    FILE *file = fopen (s_file, "w");
    if (!file)
        return -1;
    fputs (METERED, file);
    fclose (file);
    char connectors [1024];
    snprintf (connectors, sizeof connectors, "%s:%s", SB_TEST_CONNECTORS, s_dir);
    return tg_fixture_start_with ("quotas", connectors);
}

static int
s_teardown (void **state)
{
    int rc = tg_fixture_stop ();
    unlink (s_file);
    rmdir (s_dir);
    return rc;
}

//  The response's header `name`, or "" when absent (static buffer).
static const char *
s_header (tg_http_t *h, const char *name)
{
    static char value [256];
    if (!sb_harness_header (&h->response, name, value, sizeof value))
        value [0] = 0;
    return value;
}

//  The JSON body of a finished POST (asserts JSON), new reference.
static json_t *
s_json (tg_http_t *h)
{
    assert_int_equal (h->status, 200);
    assert_string_equal (h->content_type, "application/json");
    json_t *json = json_loads (h->response.body, 0, NULL);
    assert_non_null (json);
    return json;
}

//  Asserts `result` is a refusal: isError, one text holding `fragment`,
//  _meta exactly {error_type, retry_after}.
static void
s_assert_refusal (json_t *result, const char *error_type, int retry_after, const char *fragment)
{
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_t *content = json_object_get (result, "content");
    assert_int_equal (json_array_size (content), 1);
    const char *text = json_string_value (json_object_get (json_array_get (content, 0), "text"));
    assert_non_null (text);
    if (!strstr (text, fragment))
        fail_msg ("sentence \"%s\" lacks \"%s\"", text, fragment);
    json_t *meta = json_object_get (result, "_meta");
    assert_string_equal (json_string_value (json_object_get (meta, "error_type")), error_type);
    assert_int_equal (json_integer_value (json_object_get (meta, "retry_after")), retry_after);
}

//  A tools/call (`call`, a CALL) the mock broker answers `limited`: the
//  refusal (as s_assert_refusal) and the RateLimit-Policy and RateLimit
//  fields ("" when absent).
static void
s_refused_call (const char *call, const char *error_type, int retry_after, const char *fragment,
                const char *policy, const char *ratelimit)
{
    tg_http_t *h = tg_post (NULL, tg_token, call);
    json_t *reply = s_json (h);
    s_assert_refusal (json_object_get (reply, "result"), error_type, retry_after, fragment);
    assert_string_equal (s_header (h, "RateLimit-Policy"), policy);
    assert_string_equal (s_header (h, "RateLimit"), ratelimit);
    json_decref (reply);
    tg_free (h);
}

//  The REQUEST's metering fields: its tool's cost, the connector's budget.
static void
test_metering (void **state)
{
    tg_http_t *h = tg_post (NULL, tg_token, CALL ("search_accounts", "plain"));
    json_t *reply = s_json (h);
    assert_null (json_object_get (json_object_get (reply, "result"), "isError"));
    json_decref (reply);
    char *meter = tg_broker_ask ("METER");
    assert_string_equal (meter, "1 - 0 0 0");       //  cost 1 by default, no budget
    zstr_free (&meter);
    tg_free (h);

    h = tg_post (NULL, tg_token, CALL ("metered_search", "plain"));
    assert_int_equal (h->status, 200);
    meter = tg_broker_ask ("METER");
    assert_string_equal (meter, "7 metered 500 86400 0");
    zstr_free (&meter);
    tg_free (h);
}

//  Each reason the broker gives, as a 2025-11-25 JSON answer: the sentence,
//  the _meta, and the RateLimit fields of a windowed limit.
static void
test_refusals (void **state)
{
    tg_http_t *h = tg_post (NULL, tg_token, CALL ("metered_search", "limited_rate"));
    json_t *reply = s_json (h);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 5);
    s_assert_refusal (json_object_get (reply, "result"), "rate_limited", 3,
                      "Rate limit reached: your plan \"pro\" allows 1,200 tool calls per minute");
    s_assert_refusal (json_object_get (reply, "result"), "rate_limited", 3,
                      "ask your administrator for a bigger plan");
    assert_string_equal (s_header (h, "RateLimit-Policy"), "\"pro\";q=1200;w=60");
    assert_string_equal (s_header (h, "RateLimit"), "\"pro\";r=0;t=15");
    json_decref (reply);
    tg_free (h);

    //  Monthly: retry_after is the period's end, not the broker's capped hour.
    s_refused_call (CALL ("metered_search", "limited_monthly"), "monthly_quota_exceeded", 3 * 86400,
                    "you have used 1,000 of the 1,000 tool calls your plan \"free\" includes per "
                    "billing month. It renews on ",
                    "\"free\";q=1000;w=2592000", "\"free\";r=0;t=259200");

    //  In flight: no window, so no RateLimit fields.
    s_refused_call (CALL ("metered_search", "limited_in_flight"), "too_many_in_flight", 1,
                    "Too many tool calls at once: your plan \"free\" allows 4 running at the same "
                    "time",
                    "", "");

    //  The connector's budget, named as the connector names itself.
    s_refused_call (CALL ("metered_search", "limited_budget"), "upstream_budget_exhausted", 60,
                    "Usage budget of the metered CRM used up: your connection may make 500 calls "
                    "every 24 hours",
                    "\"metered\";q=500;w=86400", "\"metered\";r=0;t=3600");
}

//  An admitted call's rate policy becomes the RateLimit fields; a REPLY
//  without a group gives none; a stream's headers are gone before the
//  REPLY, so none there either, and a refusal there is the same result.
static void
test_policy_headers (void **state)
{
    tg_http_t *h = tg_post (NULL, tg_token, CALL ("metered_search", "policy"));
    json_t *reply = s_json (h);
    json_t *result = json_object_get (reply, "result");
    assert_null (json_object_get (result, "isError"));
    assert_string_equal (json_string_value (json_object_get (json_array_get (
        json_object_get (result, "content"), 0), "text")), "metered");
    assert_string_equal (s_header (h, "RateLimit-Policy"), "\"pro\";q=1200;w=60");
    assert_string_equal (s_header (h, "RateLimit"), "\"pro\";r=1187;t=1");
    json_decref (reply);
    tg_free (h);

    h = tg_post (NULL, tg_token, CALL ("metered_search", "plain"));
    assert_int_equal (h->status, 200);
    assert_string_equal (s_header (h, "RateLimit-Policy"), "");
    assert_string_equal (s_header (h, "RateLimit"), "");
    tg_free (h);

    //  In a session (a stream): the refusal as the stream's last event.
    h = tg_post (NULL, tg_token, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                 "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
                 "\"version\":\"1\"}}}");
    assert_int_equal (h->status, 200);
    char session [600];
    snprintf (session, sizeof session, "Mcp-Session-Id: %s", h->session_id);
    tg_free (h);
    const char *headers [] = { session, "MCP-Protocol-Version: 2025-11-25", NULL };
    h = tg_post (headers, tg_token, CALL ("metered_search", "limited_rate"));
    assert_int_equal (h->status, 200);
    assert_string_equal (h->content_type, "text/event-stream");
    assert_string_equal (s_header (h, "RateLimit-Policy"), "");
    json_t *events = tg_events (h);
    json_t *last = json_array_get (events, json_array_size (events) - 1);
    assert_int_equal (json_integer_value (json_object_get (last, "id")), 5);
    s_assert_refusal (json_object_get (last, "result"), "rate_limited", 3, "Try again in 3 seconds");
    json_decref (events);
    tg_free (h);
}

//  2026-07-28: the refusal with resultType; a call that may become a task
//  is refused the same way; the round that brings an answer costs 0.
static void
test_modern (void **state)
{
    const char *headers [] = { "MCP-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call",
                               "Mcp-Name: metered_search", NULL };
    tg_http_t *h = tg_post (headers, tg_token,
        "{\"jsonrpc\":\"2.0\",\"id\":\"m-1\",\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"metered_search\",\"arguments\":{\"query\":\"limited_in_flight\"}," MODERN_META ("{}") "}}");
    json_t *reply = s_json (h);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    s_assert_refusal (result, "too_many_in_flight", 1, "Too many tool calls at once");
    json_decref (reply);
    tg_free (h);

    //  Task-capable (the client declared the extension, the tool allows it).
    h = tg_post (headers, tg_token,
        "{\"jsonrpc\":\"2.0\",\"id\":\"m-2\",\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"metered_search\",\"arguments\":{\"query\":\"limited_monthly\"},"
        MODERN_META ("{\"extensions\":{\"io.modelcontextprotocol/tasks\":{}}}") "}}");
    reply = s_json (h);
    s_assert_refusal (json_object_get (reply, "result"), "monthly_quota_exceeded", 3 * 86400,
                      "Monthly quota reached");
    assert_string_equal (s_header (h, "RateLimit-Policy"), "\"free\";q=1000;w=2592000");
    json_decref (reply);
    tg_free (h);

    //  Round 1 costs 7 and asks a question ...
    h = tg_post (headers, tg_token,
        "{\"jsonrpc\":\"2.0\",\"id\":\"m-3\",\"method\":\"tools/call\",\"params\":{\"name\":"
        "\"metered_search\",\"arguments\":{\"query\":\"needinput\"},"
        MODERN_META ("{\"elicitation\":{}}") "}}");
    reply = s_json (h);
    char *meter = tg_broker_ask ("METER");
    assert_string_equal (meter, "7 metered 500 86400 1");
    zstr_free (&meter);
    result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    const char *request_state = json_string_value (json_object_get (result, "requestState"));
    assert_non_null (request_state);
    char body [8192];
    snprintf (body, sizeof body,
              "{\"jsonrpc\":\"2.0\",\"id\":\"m-4\",\"method\":\"tools/call\",\"params\":{\"name\":"
              "\"metered_search\",\"arguments\":{\"query\":\"needinput\"},\"requestState\":\"%s\","
              "\"inputResponses\":{\"q\":{\"action\":\"accept\",\"content\":{}}},"
              MODERN_META ("{\"elicitation\":{}}") "}}", request_state);
    json_decref (reply);
    tg_free (h);
    //  ... round 2 brings the answer: free, the budget still named.
    h = tg_post (headers, tg_token, body);
    reply = s_json (h);
    assert_null (json_object_get (json_object_get (reply, "result"), "isError"));
    meter = tg_broker_ask ("METER");
    assert_string_equal (meter, "0 metered 500 86400 2");
    zstr_free (&meter);
    json_decref (reply);
    tg_free (h);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_metering),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_policy_headers),
        cmocka_unit_test (test_modern),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
