/*  tests/30_gateway_modern.c — MCP revision 2026-07-28 through the real
    sb-gateway binary and a fake broker run in this test (a ROUTER in a
    zactor thread speaking the proto codec): stateless requests with version
    and capabilities in _meta, server/discover, the Mcp-Method / Mcp-Name
    headers checked against the body (-32020), resultType and the cache
    fields on results, log messages only at the request's _meta logLevel,
    removed methods (404), GET/DELETE (405), an unsupported version (-32022),
    a worker's ASK answered with an error (a 2026-07-28 worker asks through
    an input-required result instead; tests/43_e2e_input_required.c runs
    those rounds through a real farm), inputResponses and requestState
    checked before any job (-32602), and prompts/get asking for its missing
    argument with an input-required result. Every malformed variant gets
    its status and code, and no job reaches the broker for it.

    The fake broker is the one of 30_gateway_calls.c; it acts on the tool
    arguments' text:
      "talk"    NOTIFY progress 1..3, NOTIFY messages debug, info and error,
                then REPLY ok
      "ask"     ASK elicitation/create (ask 1); on the ANSWER, REPLY ok with
                the answer in structuredContent
      else      REPLY ok at once
    Everything the test waits for is an event it can observe, never a bare
    sleep. */
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






//  ---------------------------------------------------------------------------
//  Fixture

static int
s_setup (void **state)
{
    return tg_fixture_start ("modern");
}

static int
s_teardown (void **state)
{
    return tg_fixture_stop ();
}

#define META(caps, extra) \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"," \
    "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"t\",\"version\":\"1\"}," \
    "\"io.modelcontextprotocol/clientCapabilities\":" caps extra "}"
#define REQ(id, method, params) \
    "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"method\":\"" method "\",\"params\":{" params "}}"
#define CALL(id, query, meta) \
    REQ (id, "tools/call", "\"name\":\"search_accounts\",\"arguments\":{\"query\":\"" query "\"}," meta)

#define H_VERSION   "MCP-Protocol-Version: 2026-07-28"
#define H_CALL      "Mcp-Method: tools/call"
#define H_TOOL      "Mcp-Name: search_accounts"

//  POSTs `body` with `headers`; asserts `status` and, for JSON, returns the
//  parsed body (new reference; NULL for other types).
static json_t *
s_expect (const char **headers, const char *body, long status)
{
    tg_http_t *h = tg_post (headers, tg_token, body);
    if (h->status != status)
        fail_msg ("status %ld, expected %ld for %s: %s", h->status, status, body, h->response.body? h->response.body: "");
    json_t *json = strcmp (h->content_type, "application/json") == 0 && h->response.body
                 ? json_loads (h->response.body, 0, NULL): NULL;
    tg_free (h);
    return json;
}

static int
s_code (json_t *reply)
{
    return (int) json_integer_value (json_object_get (json_object_get (reply, "error"), "code"));
}

//  Asserts `reply` is an error `code` whose message contains `text`.
static void
s_assert_error (json_t *reply, int code, const char *text)
{
    assert_non_null (reply);
    assert_int_equal (s_code (reply), code);
    const char *message = json_string_value (json_object_get (json_object_get (reply, "error"), "message"));
    assert_non_null (message);
    if (text && !strstr (message, text))
        fail_msg ("message \"%s\" lacks \"%s\"", message, text);
    json_decref (reply);
}

//  Asserts a modern error reply: no result, the request's id kept.
static void
s_assert_modern_error (json_t *reply)
{
    assert_non_null (reply);
    assert_null (json_object_get (reply, "result"));
    assert_non_null (json_object_get (reply, "id"));
}

//  Asserts a modern result: resultType complete, serverInfo; cache fields
//  iff `cacheable`. Returns the result (borrowed from reply).
static json_t *
s_assert_modern (json_t *reply, bool cacheable)
{
    json_t *result = json_object_get (reply, "result");
    assert_non_null (result);
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    json_t *info = json_object_get (json_object_get (result, "_meta"), "io.modelcontextprotocol/serverInfo");
    assert_string_equal (json_string_value (json_object_get (info, "name")), "switchboard");
    assert_true (json_is_string (json_object_get (info, "version")));
    if (cacheable) {
        assert_true (json_is_integer (json_object_get (result, "ttlMs")));
        assert_string_equal (json_string_value (json_object_get (result, "cacheScope")), "private");
    }
    else {
        assert_null (json_object_get (result, "ttlMs"));
        assert_null (json_object_get (result, "cacheScope"));
    }
    return result;
}

//  ---------------------------------------------------------------------------
//  Tests

//  server/discover: versions, capabilities, no session minted. Older
//  revisions do not know the method.
static void
test_discover (void **state)
{
    const char *headers [] = { H_VERSION, "Mcp-Method: server/discover", NULL };
    tg_http_t *h = tg_post (headers, tg_token, REQ ("1", "server/discover", META ("{}", "")));
    assert_int_equal (h->status, 200);
    assert_string_equal (h->session_id, "");
    json_t *reply = json_loads (h->response.body, 0, NULL);
    json_t *result = s_assert_modern (reply, true);
    json_t *versions = json_object_get (result, "supportedVersions");
    assert_int_equal (json_array_size (versions), 4);
    assert_string_equal (json_string_value (json_array_get (versions, 0)), "2026-07-28");
    assert_string_equal (json_string_value (json_array_get (versions, 1)), "2025-11-25");
    assert_string_equal (json_string_value (json_array_get (versions, 2)), "2025-06-18");
    assert_non_null (json_object_get (json_object_get (result, "capabilities"), "tools"));
    assert_true (json_is_string (json_object_get (result, "instructions")));
    json_decref (reply);
    tg_free (h);

    const char *legacy [] = { "MCP-Protocol-Version: 2025-11-25", NULL };
    s_assert_error (s_expect (legacy, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server/discover\"}", 200),
                    -32601, "server/discover");
}

//  Lists and reads carry resultType and the cache fields; an unknown
//  resource is -32602 (it was -32002).
static void
test_catalog (void **state)
{
    const char *list [] = { H_VERSION, "Mcp-Method: tools/list", NULL };
    json_t *reply = s_expect (list, REQ ("1", "tools/list", META ("{}", "")), 200);
    json_t *result = s_assert_modern (reply, true);
    assert_true (json_array_size (json_object_get (result, "tools")) > 0);
    json_decref (reply);

    const char *prompts [] = { H_VERSION, "Mcp-Method: prompts/list", NULL };
    reply = s_expect (prompts, REQ ("2", "prompts/list", META ("{}", "")), 200);
    s_assert_modern (reply, true);
    json_decref (reply);

    const char *read [] = { H_VERSION, "Mcp-Method: resources/read", "Mcp-Name: test://nowhere", NULL };
    s_assert_error (s_expect (read, REQ ("3", "resources/read", "\"uri\":\"test://nowhere\"," META ("{}", "")), 200),
                    -32602, "Resource not found");
}

//  A tool call: a JSON response with resultType, not cacheable; nothing
//  else changed in the result.
static void
test_call (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, "Mcp-Session-Id: not-a-session", NULL };
    tg_http_t *h = tg_post (headers, tg_token, CALL ("\"c-1\"", "plain", META ("{}", "")));
    assert_int_equal (h->status, 200);
    assert_string_equal (h->content_type, "application/json");
    assert_string_equal (h->session_id, "");
    json_t *reply = json_loads (h->response.body, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "c-1");
    json_t *result = s_assert_modern (reply, false);
    assert_string_equal (json_string_value (json_object_get (json_array_get (
        json_object_get (result, "content"), 0), "text")), "plain");
    json_decref (reply);
    tg_free (h);

    //  Arguments refused by the schema: still a modern result.
    reply = s_expect (headers, REQ ("2", "tools/call", "\"name\":\"search_accounts\",\"arguments\":{\"query\":5},"
                                    META ("{}", "")), 200);
    result = s_assert_modern (reply, false);
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_decref (reply);

    //  Mcp-Name in the base64 sentinel form is decoded before comparing.
    const char *encoded [] = { H_VERSION, H_CALL, "Mcp-Name: =?base64?c2VhcmNoX2FjY291bnRz?=", NULL };
    reply = s_expect (encoded, CALL ("3", "plain", META ("{}", "")), 200);
    s_assert_modern (reply, false);
    json_decref (reply);
}

//  Notifications only as the request asks: progress with a token, log
//  messages at or above _meta logLevel, none without it; no priming event.
static void
test_call_notifications (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    //  Neither: a JSON response, the messages dropped.
    tg_http_t *h = tg_post (headers, tg_token, CALL ("4", "talk", META ("{}", "")));
    assert_string_equal (h->content_type, "application/json");
    json_t *reply = json_loads (h->response.body, 0, NULL);
    s_assert_modern (reply, false);
    json_decref (reply);
    tg_free (h);

    //  A progress token: progress, no log messages.
    h = tg_post (headers, tg_token, CALL ("5", "talk", META ("{}", ",\"progressToken\":\"t5\"")));
    assert_string_equal (h->content_type, "text/event-stream");
    assert_null (strstr (h->response.body, "retry:"));
    json_t *events = tg_events (h);
    assert_int_equal (json_array_size (events), 4);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal (json_string_value (json_object_get (json_array_get (events, i), "method")),
                             "notifications/progress");
    s_assert_modern (json_array_get (events, 3), false);
    json_decref (events);
    tg_free (h);

    //  logLevel warning: only the error message.
    h = tg_post (headers, tg_token, CALL ("6", "talk", META ("{}", ",\"io.modelcontextprotocol/logLevel\":\"warning\"")));
    assert_string_equal (h->content_type, "text/event-stream");
    events = tg_events (h);
    assert_int_equal (json_array_size (events), 2);
    json_t *message = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (message, "method")), "notifications/message");
    assert_string_equal (json_string_value (json_object_get (json_object_get (message, "params"), "level")),
                         "error");
    s_assert_modern (json_array_get (events, 1), false);
    json_decref (events);
    tg_free (h);
}

//  2026-07-28: closing the response is the cancellation. A client that
//  leaves a streamed call (HTTP/2 or HTTP/1.1), or a JSON one (HTTP/2),
//  gets its job CANCELled in the broker; the stream's events carry no IDs
//  (no resumption in that revision). An HTTP/1.1 JSON call is only seen to
//  be abandoned when its reply is written (h2o reads nothing meanwhile).
static void
test_close_cancels (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    const char *modes [] = { ",\"progressToken\":\"t7\"", ",\"progressToken\":\"t8\"", "" };
    for (int i = 0; i < 3; i++) {
        char body [1024];
        snprintf (body, sizeof body,
                  "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":"
                  "{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"hold\"},"
                  "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
                  "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"t\",\"version\":\"1\"},"
                  "\"io.modelcontextprotocol/clientCapabilities\":{},"
                  "\"io.modelcontextprotocol/logLevel\":\"info\"%s}}}", 70 + i, modes [i]);
        int received = tg_broker_int ("RECEIVED");
        int cancels = tg_broker_int ("CANCELS");
        tg_http_t *h = i == 1? tg_start (headers, tg_token, body)
                             : tg_start_http2 (headers, tg_token, body);
        tg_wait_count ("RECEIVED", received + 1);
        if (i < 2) {
            //  The held job's info message arrives, without an event ID.
            json_decref (tg_wait_method (h, "notifications/message"));
            pthread_mutex_lock (&h->lock);
            assert_null (strstr (h->response.body, "id:"));
            pthread_mutex_unlock (&h->lock);
        }
        tg_hang_up (h);
        tg_wait_count ("CANCELS", cancels + 1);
        tg_free (h);
    }
    //  The gateway still serves (nothing freed twice, nothing leaked).
    json_t *reply = s_expect (headers, CALL ("79", "plain", META ("{}", "")), 200);
    s_assert_modern (reply, false);
    json_decref (reply);
}

//  A worker's question inside a 2026-07-28 call is answered at once with
//  an error, even for a client declaring elicitation: no server request is
//  ever sent on its stream.
static void
test_ask_refused (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    int answers = tg_broker_int ("ANSWERS");
    tg_http_t *h = tg_post (headers, tg_token, CALL ("7", "ask", META ("{\"elicitation\":{}}",
                                                   ",\"progressToken\":1")));
    assert_int_equal (h->status, 200);
    assert_null (strstr (h->response.body, "elicitation/create"));
    //  No notification came before the reply: JSON, although a progress
    //  token was given (the stream would only have opened for one).
    assert_string_equal (h->content_type, "application/json");
    json_t *events = json_loads (h->response.body, 0, NULL);
    json_t *result = s_assert_modern (events, false);
    json_t *answer = json_loads (json_string_value (json_object_get (json_object_get (result, "structuredContent"),
                                                                     "answer")), 0, NULL);
    json_t *error = json_object_get (answer, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32601);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")), "input-required"));
    json_decref (answer);
    json_decref (events);
    tg_free (h);
    tg_wait_count ("ANSWERS", answers + 1);
}

//  inputResponses and requestState are checked before any job: malformed
//  ones and a requestState this gateway did not sign for this call get
//  -32602; well-formed answers without a state go out with the job.
static void
test_call_inputs (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    int received = tg_broker_int ("RECEIVED");
    s_assert_error (s_expect (headers, REQ ("1", "tools/call", "\"name\":\"search_accounts\",\"arguments\":"
                                            "{\"query\":\"x\"},\"inputResponses\":null," META ("{}", "")), 200),
                    -32602, "inputResponses must be an object");
    s_assert_error (s_expect (headers, REQ ("2", "tools/call", "\"name\":\"search_accounts\",\"arguments\":"
                                            "{\"query\":\"x\"},\"inputResponses\":{\"q\":12345},"
                                            META ("{}", "")), 200),
                    -32602, "inputResponses.q must be an object");
    const char *states [] = { "nonsense", "eyJ2IjoxfQ.AAAA", "a.b-TAMPERED", NULL };
    for (int i = 0; states [i]; i++) {
        char body [1024];
        snprintf (body, sizeof body, REQ ("3", "tools/call", "\"name\":\"search_accounts\",\"arguments\":"
                  "{\"query\":\"x\"},\"requestState\":\"%s\"," META ("{\"elicitation\":{}}", "")), states [i]);
        json_t *reply = s_expect (headers, body, 200);
        s_assert_modern_error (reply);
        s_assert_error (reply, -32602, "requestState is not valid");
    }
    assert_int_equal (tg_broker_int ("RECEIVED"), received);

    json_t *reply = s_expect (headers, REQ ("4", "tools/call", "\"name\":\"search_accounts\",\"arguments\":"
                                            "{\"query\":\"plain\"},\"inputResponses\":{\"q\":{\"action\":"
                                            "\"accept\"}}," META ("{}", "")), 200);
    json_t *result = s_assert_modern (reply, false);
    assert_string_equal (json_string_value (json_object_get (json_array_get (
        json_object_get (result, "content"), 0), "text")), "plain");
    json_decref (reply);
    assert_int_equal (tg_broker_int ("RECEIVED"), received + 1);
}

//  A prompt missing a required argument asks for it (the client declared
//  elicitation); the retry with the answer renders it.
static void
test_prompt_inputs (void **state)
{
    const char *headers [] = { H_VERSION, "Mcp-Method: prompts/get",
                               "Mcp-Name: test_input_required_result_prompt", NULL };
    json_t *reply = s_expect (headers, REQ ("1", "prompts/get", "\"name\":\"test_input_required_result_prompt\","
                                            META ("{\"elicitation\":{}}", "")), 200);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    json_t *request = json_object_get (json_object_get (result, "inputRequests"), "prompt_arguments");
    assert_string_equal (json_string_value (json_object_get (request, "method")), "elicitation/create");
    json_decref (reply);

    reply = s_expect (headers, REQ ("2", "prompts/get", "\"name\":\"test_input_required_result_prompt\","
                                    "\"inputResponses\":{\"prompt_arguments\":{\"action\":\"accept\","
                                    "\"content\":{\"context\":\"budgets\"}}}," META ("{\"elicitation\":{}}", "")), 200);
    result = s_assert_modern (reply, false);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json_array_get (
        json_object_get (result, "messages"), 0), "content"), "text")), "Answer with this context in mind: budgets");
    json_decref (reply);

    s_assert_error (s_expect (headers, REQ ("3", "prompts/get", "\"name\":\"test_input_required_result_prompt\","
                                            META ("{}", "")), 200),
                    -32602, "needs the argument \"context\"");
}

//  Missing, different or malformed mirrored headers: 400 with -32020, and
//  no job is sent.
static void
test_header_mismatch (void **state)
{
    int received = tg_broker_int ("RECEIVED");
    const char *no_method [] = { H_VERSION, H_TOOL, NULL };
    s_assert_error (s_expect (no_method, CALL ("1", "x", META ("{}", "")), 400), -32020, "Mcp-Method header is missing");
    const char *other_method [] = { H_VERSION, "Mcp-Method: tools/list", H_TOOL, NULL };
    s_assert_error (s_expect (other_method, CALL ("2", "x", META ("{}", "")), 400), -32020, "does not match");
    const char *case_method [] = { H_VERSION, "Mcp-Method: Tools/Call", H_TOOL, NULL };
    s_assert_error (s_expect (case_method, CALL ("3", "x", META ("{}", "")), 400), -32020, "Mcp-Method");
    const char *no_name [] = { H_VERSION, H_CALL, NULL };
    s_assert_error (s_expect (no_name, CALL ("4", "x", META ("{}", "")), 400), -32020, "Mcp-Name header is missing");
    const char *other_name [] = { H_VERSION, H_CALL, "Mcp-Name: delete_everything", NULL };
    s_assert_error (s_expect (other_name, CALL ("5", "x", META ("{}", "")), 400), -32020, "params.name");
    const char *bad_base64 [] = { H_VERSION, H_CALL, "Mcp-Name: =?base64?not*base64?=", NULL };
    s_assert_error (s_expect (bad_base64, CALL ("6", "x", META ("{}", "")), 400), -32020, "malformed");
    const char *other_base64 [] = { H_VERSION, H_CALL, "Mcp-Name: =?base64?c2VhcmNoX2FjY291bnQ=?=", NULL };
    s_assert_error (s_expect (other_base64, CALL ("7", "x", META ("{}", "")), 400), -32020, "params.name");
    const char *non_ascii [] = { H_VERSION, H_CALL, "Mcp-Name: search_accounts\xc3\xa9", NULL };
    s_assert_error (s_expect (non_ascii, CALL ("8", "x", META ("{}", "")), 400), -32020, "malformed");
    //  resources/read and prompts/get compare params.uri / params.name.
    const char *read [] = { H_VERSION, "Mcp-Method: resources/read", "Mcp-Name: test://a", NULL };
    s_assert_error (s_expect (read, REQ ("9", "resources/read", "\"uri\":\"test://b\"," META ("{}", "")), 400),
                    -32020, "params.uri");
    const char *prompt [] = { H_VERSION, "Mcp-Method: prompts/get", NULL };
    s_assert_error (s_expect (prompt, REQ ("10", "prompts/get", "\"name\":\"p\"," META ("{}", "")), 400),
                    -32020, "Mcp-Name");
    //  The body's protocolVersion must be the header's.
    const char *list [] = { H_VERSION, "Mcp-Method: tools/list", NULL };
    s_assert_error (s_expect (list, REQ ("11", "tools/list", "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                                         "\"2025-11-25\",\"io.modelcontextprotocol/clientCapabilities\":{}}"), 400),
                    -32020, "MCP-Protocol-Version");
    //  A body in the 2026-07-28 form under an older header, or none.
    const char *legacy [] = { "MCP-Protocol-Version: 2025-11-25", NULL };
    s_assert_error (s_expect (legacy, REQ ("12", "tools/list", META ("{}", "")), 400), -32020, "MCP-Protocol-Version");
    s_assert_error (s_expect (NULL, REQ ("13", "tools/list", META ("{}", "")), 400), -32020, "is missing");
    assert_int_equal (tg_broker_int ("RECEIVED"), received);
}

//  Malformed _meta: 400 with -32602, no job sent.
static void
test_bad_meta (void **state)
{
    int received = tg_broker_int ("RECEIVED");
    const char *call [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    s_assert_error (s_expect (call, CALL ("1", "x", "\"_x\":0"), 400), -32602, "_meta");
    s_assert_error (s_expect (call, CALL ("2", "x", "\"_meta\":[]"), 400), -32602, "_meta");
    s_assert_error (s_expect (call, CALL ("3", "x", "\"_meta\":{\"io.modelcontextprotocol/clientCapabilities\":{}}"), 400),
                    -32602, "protocolVersion");
    s_assert_error (s_expect (call, CALL ("4", "x", "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}"), 400),
                    -32602, "clientCapabilities");
    s_assert_error (s_expect (call, CALL ("5", "x", META ("[]", "")), 400), -32602, "clientCapabilities");
    s_assert_error (s_expect (call, CALL ("6", "x", "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":7,"
                                         "\"io.modelcontextprotocol/clientCapabilities\":{}}"), 400), -32602, "protocolVersion");
    s_assert_error (s_expect (call, CALL ("7", "x", META ("{}", ",\"io.modelcontextprotocol/logLevel\":\"loud\"")), 400),
                    -32602, "logLevel");
    const char *list [] = { H_VERSION, "Mcp-Method: tools/list", NULL };
    s_assert_error (s_expect (list, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/list\"}", 400), -32602, "_meta");
    assert_int_equal (tg_broker_int ("RECEIVED"), received);
}

//  What 2026-07-28 removed: methods (404 -32601), client responses (400),
//  GET and DELETE (405); an unknown version gets -32022 with the list.
static void
test_removed_and_versions (void **state)
{
    const char *methods [] = { "initialize", "ping", "logging/setLevel", "resources/subscribe",
                               "resources/unsubscribe", "no/such", NULL };
    for (int i = 0; methods [i]; i++) {
        char method [64], body [512];
        snprintf (method, sizeof method, "Mcp-Method: %s", methods [i]);
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{%s}}",
                  methods [i], META ("{}", ""));
        const char *headers [] = { H_VERSION, method, NULL };
        s_assert_error (s_expect (headers, body, 404), -32601, methods [i]);
    }
    const char *version [] = { H_VERSION, NULL };
    s_assert_error (s_expect (version, "{\"jsonrpc\":\"2.0\",\"id\":\"sb:abc:1\",\"result\":{}}", 400),
                    -32600, "inputResponses");
    json_t *none = s_expect (version, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 202);
    assert_null (none);

    const char *unknown [] = { "MCP-Protocol-Version: 1900-01-01", NULL };
    json_t *reply = s_expect (unknown, REQ ("\"v\"", "tools/list", ""), 400);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "v");
    json_t *data = json_object_get (json_object_get (reply, "error"), "data");
    assert_string_equal (json_string_value (json_object_get (data, "requested")), "1900-01-01");
    assert_string_equal (json_string_value (json_array_get (json_object_get (data, "supported"), 0)), "2026-07-28");
    s_assert_error (reply, -32022, "Unsupported protocol version");

    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", tg_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", tg_token);
    const char *headers [] = { auth, H_VERSION, "Accept: text/event-stream", NULL };
    const char *verbs [] = { "GET", "DELETE", NULL };
    for (int i = 0; verbs [i]; i++) {
        char *body = NULL;
        long status = 0;
        assert_int_equal (sb_harness_http (verbs [i], url, headers, NULL, 0, TG_WAIT_MS, &status, &body), 0);
        assert_int_equal (status, 405);
        free (body);
    }
}

//  The tasks extension at the gateway, before any job: server/discover
//  advertises it (under extensions, not a v1 "tasks" slot); tasks/get,
//  update and cancel need it declared (-32021 naming it, HTTP 400), Mcp-Name
//  equal to params.taskId (-32020), a taskId we could have issued (else
//  unknown: -32602) and, for tasks/update, inputResponses an object of
//  objects (-32602); a tool whose taskSupport is "required" is refused to a
//  client without it (-32021); listen with taskIds needs it too; the v1
//  methods tasks/result and tasks/list do not exist (404, -32601). None of
//  these reaches the broker.
#define EXT "{\"extensions\":{\"io.modelcontextprotocol/tasks\":{}}}"

//  Asserts a -32021 reply naming the tasks extension; frees it.
static void
s_assert_needs_tasks (json_t *reply)
{
    json_t *data = json_object_get (json_object_get (reply, "error"), "data");
    json_t *extensions = json_object_get (json_object_get (data, "requiredCapabilities"), "extensions");
    assert_true (json_is_object (json_object_get (extensions, "io.modelcontextprotocol/tasks")));
    s_assert_error (reply, -32021, "io.modelcontextprotocol/tasks");
}

static void
test_tasks_gateway (void **state)
{
    int received = tg_broker_int ("RECEIVED");
    const char *discover [] = { H_VERSION, "Mcp-Method: server/discover", NULL };
    json_t *reply = s_expect (discover, REQ ("1", "server/discover", META ("{}", "")), 200);
    json_t *caps = json_object_get (s_assert_modern (reply, true), "capabilities");
    assert_true (json_is_object (json_object_get (json_object_get (caps, "extensions"),
                                                  "io.modelcontextprotocol/tasks")));
    assert_null (json_object_get (caps, "tasks"));
    json_decref (reply);

    const char *methods [] = { "tasks/get", "tasks/update", "tasks/cancel", NULL };
    for (int i = 0; methods [i]; i++) {
        char method [64], body [1024];
        snprintf (method, sizeof method, "Mcp-Method: %s", methods [i]);
        const char *headers [] = { H_VERSION, method, "Mcp-Name: abc", NULL };
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":"
                  "{\"taskId\":\"abc\",\"inputResponses\":{},%s}}", methods [i], META ("{}", ""));
        s_assert_needs_tasks (s_expect (headers, body, 400));
        //  Declared, but no task of ours could have that id.
        const char *odd [] = { H_VERSION, method, "Mcp-Name: ../etc", NULL };
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"%s\",\"params\":"
                  "{\"taskId\":\"../etc\",\"inputResponses\":{},%s}}", methods [i], META (EXT, ""));
        s_assert_error (s_expect (odd, body, 200), -32602, "Unknown task");
        //  Mcp-Name missing or not the taskId.
        const char *no_name [] = { H_VERSION, method, NULL };
        s_assert_error (s_expect (no_name, body, 400), -32020, "Mcp-Name header is missing");
        const char *other [] = { H_VERSION, method, "Mcp-Name: abd", NULL };
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"%s\",\"params\":"
                  "{\"taskId\":\"abc\",\"inputResponses\":{},%s}}", methods [i], META (EXT, ""));
        s_assert_error (s_expect (other, body, 400), -32020, "params.taskId");
        //  No taskId at all.
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"%s\",\"params\":{%s}}",
                  methods [i], META (EXT, ""));
        s_assert_error (s_expect (no_name, body, 400), -32020, "Mcp-Name");
    }
    const char *update [] = { H_VERSION, "Mcp-Method: tasks/update", "Mcp-Name: abc", NULL };
    s_assert_error (s_expect (update, REQ ("5", "tasks/update", "\"taskId\":\"abc\"," META (EXT, "")), 200),
                    -32602, "inputResponses");
    s_assert_error (s_expect (update, REQ ("6", "tasks/update", "\"taskId\":\"abc\",\"inputResponses\":"
                                          "{\"k\":1}," META (EXT, "")), 200), -32602, "inputResponses.k");

    //  A tool that runs only as a task.
    const char *required [] = { H_VERSION, H_CALL, "Mcp-Name: failing_job", NULL };
    s_assert_needs_tasks (s_expect (required, REQ ("7", "tools/call", "\"name\":\"failing_job\","
                                                   "\"arguments\":{}," META ("{}", "")), 400));
    //  An older revision has no tasks at all: a sentence, as a tool error.
    const char *legacy [] = { "MCP-Protocol-Version: 2025-11-25", NULL };
    reply = s_expect (legacy, "{\"jsonrpc\":\"2.0\",\"id\":71,\"method\":\"tools/call\",\"params\":"
                      "{\"name\":\"failing_job\",\"arguments\":{}}}", 200);
    json_t *legacy_result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (legacy_result, "isError")));
    const char *text = json_string_value (json_object_get (json_array_get (
        json_object_get (legacy_result, "content"), 0), "text"));
    assert_non_null (text);
    assert_non_null (strstr (text, "runs only as a task"));
    json_decref (reply);
    //  Task notifications on a listen stream.
    const char *listen [] = { H_VERSION, "Mcp-Method: subscriptions/listen", NULL };
    s_assert_needs_tasks (s_expect (listen, REQ ("8", "subscriptions/listen", "\"notifications\":"
                                                 "{\"taskIds\":[\"abc\"]}," META ("{}", "")), 400));
    //  The v1 methods are gone.
    const char *gone [] = { "tasks/result", "tasks/list", NULL };
    for (int i = 0; gone [i]; i++) {
        char method [64], body [1024];
        snprintf (method, sizeof method, "Mcp-Method: %s", gone [i]);
        const char *headers [] = { H_VERSION, method, NULL };
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"%s\",\"params\":{%s}}",
                  gone [i], META (EXT, ""));
        s_assert_error (s_expect (headers, body, 404), -32601, gone [i]);
    }
    assert_int_equal (tg_broker_int ("RECEIVED"), received);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_discover),
        cmocka_unit_test (test_catalog),
        cmocka_unit_test (test_call),
        cmocka_unit_test (test_call_notifications),
        cmocka_unit_test (test_close_cancels),
        cmocka_unit_test (test_ask_refused),
        cmocka_unit_test (test_call_inputs),
        cmocka_unit_test (test_prompt_inputs),
        cmocka_unit_test (test_header_mismatch),
        cmocka_unit_test (test_bad_meta),
        cmocka_unit_test (test_removed_and_versions),
        cmocka_unit_test (test_tasks_gateway),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
