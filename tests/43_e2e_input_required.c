/*  tests/43_e2e_input_required.c — MCP 2026-07-28 input-required results
    through a whole farm of real processes (gateway → broker → api worker
    running the conformance fixtures, and back), as a 2026-07-28 client
    sees them over HTTP:

      - a call whose tool asks the client gets an input-required result
        with the question and a requestState; the retry with the answer and
        the requestState gets the tool's result;
      - several rounds, each with a new requestState that carries the
        answers of the rounds before, so the client sends only the new one;
      - a missing or wrong answer asks again, for at most
        SB_MAX_INPUT_ROUNDS rounds; a tampered requestState, or one
        presented for another tool, other arguments, another user or
        another tenant, is refused with -32602;
      - questions only for the capabilities the client declared; a tool
        that cannot go on without one gets -32021 with HTTP 400;
      - on an SSE response the result is the last event and no server
        request is ever sent on the stream;
      - with no task store (no task worker), a call that would become a
        task is answered synchronously, and tasks/get gets -32603.

    The token worker is not started (no PostgreSQL needed). */
#include "sb_job.h"
#include "sb_farm.h"
#include "sb_harness.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sb_rpc_assert.h"

#define CALL_WAIT_MS    15000

static sb_farm_t *s_farm;
static char s_other_token [2048];           /* a token for tenant "other" */
static char s_colleague_token [2048];       /* a token for another user of tenant "demo" */

static int
s_setup (void **state)
{
    //  A short call deadline: test_no_task_store waits for task/create to
    //  time out (there is no task worker).
    s_farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1, .no_token_worker = true,
                                                .call_timeout_ms = 3000 });
    if (!s_farm)
        return -1;
    if (sb_farm_mint (s_farm, "other", "e2e", s_other_token, sizeof s_other_token)
    ||  sb_farm_mint (s_farm, "demo", "colleague", s_colleague_token, sizeof s_colleague_token))
        return -1;
    return 0;
}

static int
s_teardown (void **state)
{
    sb_farm_stop (&s_farm);
    return 0;
}

//  The last complete JSON-RPC message of an SSE body (new reference).
static json_t *
s_last_event (const char *body, int *requests)
{
    json_t *last = NULL;
    *requests = 0;
    for (const char *line = body; line && *line; ) {
        const char *end = strchr (line, '\n');
        size_t len = end? (size_t) (end - line): strlen (line);
        if (len > 5 && strncmp (line, "data:", 5) == 0) {
            json_t *message = json_loadb (line + 5, len - 5, 0, NULL);
            if (json_object_get (message, "method") && json_object_get (message, "id"))
                (*requests)++;
            if (json_object_get (message, "result") || json_object_get (message, "error")) {
                json_decref (last);
                last = message;
            }
            else
                json_decref (message);
        }
        line = end? end + 1: NULL;
    }
    return last;
}

//  POSTs a 2026-07-28 `method` (tools/call or prompts/get) for `name` with
//  `params` (taken; _meta added with `caps`, a JSON object text) and
//  `token` (NULL: the farm's). Returns the reply (new), its HTTP status in
//  *status. An SSE reply is reduced to its last message; a server request
//  on the stream fails the test.
static json_t *
s_post (const char *token, const char *method, const char *name, json_t *params,
        const char *caps, const char *extra_meta, long *status)
{
    json_t *meta = json_pack ("{s:s, s:o, s:{s:s, s:s}}",
        "io.modelcontextprotocol/protocolVersion", "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities", json_loads (caps, 0, NULL),
        "io.modelcontextprotocol/clientInfo", "name", "e2e", "version", "1");
    if (extra_meta) {
        json_t *extra = json_loads (extra_meta, 0, NULL);
        json_object_update (meta, extra);
        json_decref (extra);
    }
    json_object_set_new (params, "name", json_string (name));
    json_object_set_new (params, "_meta", meta);
    json_t *request = json_pack ("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 7, "method", method,
                                 "params", params);
    char *body = json_dumps (request, JSON_COMPACT);
    json_decref (request);

    char url [128], auth [2200], method_header [64], name_header [256];
    snprintf (url, sizeof url, "%s/mcp", s_farm->gateway_url);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", token? token: s_farm->token);
    snprintf (method_header, sizeof method_header, "Mcp-Method: %s", method);
    snprintf (name_header, sizeof name_header, "Mcp-Name: %s", name);
    const char *headers [] = { auth, "Content-Type: application/json",
                               "Accept: application/json, text/event-stream",
                               "MCP-Protocol-Version: 2026-07-28", method_header, name_header, NULL };
    char *resp = NULL;
    assert_int_equal (sb_harness_http ("POST", url, headers, body, strlen (body), CALL_WAIT_MS,
                                       status, &resp), 0);
    free (body);
    json_t *reply = NULL;
    if (resp && resp [0] == '{')
        reply = json_loads (resp, 0, NULL);
    else {
        int requests = 0;
        reply = s_last_event (resp, &requests);
        assert_int_equal (requests, 0);
    }
    if (!reply)
        fail_msg ("no JSON-RPC reply in: %s", resp? resp: "(none)");
    free (resp);
    return reply;
}

//  A tools/call with no arguments, answers (JSON text or NULL) and a state.
static json_t *
s_call (const char *tool, const char *caps, const char *answers, const char *request_state, long *status)
{
    json_t *params = json_pack ("{s:{}}", "arguments");
    if (answers)
        json_object_set_new (params, "inputResponses", json_loads (answers, 0, NULL));
    if (request_state)
        json_object_set_new (params, "requestState", json_string (request_state));
    return s_post (NULL, "tools/call", tool, params, caps, NULL, status);
}

//  Asserts an input-required result asking exactly `keys` (NULL-ended);
//  returns its requestState (new string).
static char *
s_assert_input_required (json_t *reply, const char *const keys [])
{
    json_t *result = json_object_get (reply, "result");
    if (!result)
        fail_msg ("no result: %s", json_dumps (reply, JSON_COMPACT));
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    json_t *requests = json_object_get (result, "inputRequests");
    size_t count = 0;
    for (; keys [count]; count++)
        if (!json_object_get (requests, keys [count]))
            fail_msg ("inputRequests lacks %s", keys [count]);
    assert_int_equal (json_object_size (requests), count);
    assert_non_null (json_object_get (json_object_get (result, "_meta"), "io.modelcontextprotocol/serverInfo"));
    const char *state = json_string_value (json_object_get (result, "requestState"));
    assert_non_null (state);
    return strdup (state);
}

//  The first text of a complete result.
static const char *
s_text_of (json_t *reply)
{
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    return json_string_value (json_object_get (json_array_get (json_object_get (result, "content"), 0), "text"));
}

#define ALL_CAPS    "{\"elicitation\":{},\"sampling\":{},\"roots\":{}}"
#define TASKS_CAPS  "{\"extensions\":{\"io.modelcontextprotocol/tasks\":{}}}"
#define ALICE       "{\"user_name\":{\"action\":\"accept\",\"content\":{\"name\":\"Alice\"}}}"

//  One round: asked, answered with the requestState, done.
static void
test_round_trip (void **state)
{
    long status = 0;
    json_t *reply = s_call ("test_input_required_result_elicitation", ALL_CAPS, NULL, NULL, &status);
    assert_int_equal (status, 200);
    char *request_state = s_assert_input_required (reply, (const char *[]) { "user_name", NULL });
    json_t *request = json_object_get (json_object_get (json_object_get (reply, "result"), "inputRequests"),
                                       "user_name");
    assert_string_equal (json_string_value (json_object_get (request, "method")), "elicitation/create");
    json_decref (reply);

    reply = s_call ("test_input_required_result_elicitation", ALL_CAPS, ALICE, request_state, &status);
    assert_int_equal (status, 200);
    assert_string_equal (s_text_of (reply), "Hello, Alice!");
    json_decref (reply);

    //  The verified state reaches the tool as a later round.
    reply = s_call ("test_input_required_result_request_state", ALL_CAPS, NULL, NULL, &status);
    char *confirm_state = s_assert_input_required (reply, (const char *[]) { "confirm", NULL });
    json_decref (reply);
    reply = s_call ("test_input_required_result_request_state", ALL_CAPS,
                    "{\"confirm\":{\"action\":\"accept\",\"content\":{\"ok\":true}}}", confirm_state, &status);
    assert_non_null (strstr (s_text_of (reply), "state-ok"));
    json_decref (reply);

    //  The answer without a state is taken too (extra keys ignored).
    reply = s_call ("test_input_required_result_elicitation", ALL_CAPS,
                    "{\"user_name\":{\"action\":\"accept\",\"content\":{\"name\":\"Bo\"}},\"x\":{\"y\":1}}", NULL,
                    &status);
    assert_string_equal (s_text_of (reply), "Hello, Bo!");
    json_decref (reply);
    free (request_state);
    free (confirm_state);
}

//  Three rounds: each state carries the answers before it.
static void
test_multi_round (void **state)
{
    const char *tool = "test_input_required_result_multi_round";
    long status = 0;
    json_t *reply = s_call (tool, ALL_CAPS, NULL, NULL, &status);
    char *first = s_assert_input_required (reply, (const char *[]) { "step1", NULL });
    json_decref (reply);
    reply = s_call (tool, ALL_CAPS, "{\"step1\":{\"action\":\"accept\",\"content\":{\"name\":\"Alice\"}}}",
                    first, &status);
    char *second = s_assert_input_required (reply, (const char *[]) { "step2", NULL });
    assert_string_not_equal (first, second);
    json_decref (reply);
    //  Only the new answer: step1 comes back from the state.
    reply = s_call (tool, ALL_CAPS, "{\"step2\":{\"action\":\"accept\",\"content\":{\"color\":\"blue\"}}}",
                    second, &status);
    assert_string_equal (s_text_of (reply), "Alice's favorite color is blue.");
    json_decref (reply);
    //  Without the state the first answer is gone: asked again.
    reply = s_call (tool, ALL_CAPS, "{\"step2\":{\"action\":\"accept\",\"content\":{\"color\":\"blue\"}}}",
                    NULL, &status);
    char *again = s_assert_input_required (reply, (const char *[]) { "step1", NULL });
    json_decref (reply);
    free (first);
    free (second);
    free (again);
}

//  A wrong or malformed answer asks again; three kinds at once.
static void
test_missing_and_multiple (void **state)
{
    long status = 0;
    json_t *reply = s_call ("test_input_required_result_elicitation", ALL_CAPS,
                            "{\"wrong_key\":{\"action\":\"accept\",\"content\":{}}}", NULL, &status);
    char *state1 = s_assert_input_required (reply, (const char *[]) { "user_name", NULL });
    json_decref (reply);
    reply = s_call ("test_input_required_result_elicitation", ALL_CAPS, "{\"user_name\":{\"nothing\":1}}",
                    state1, &status);
    char *state2 = s_assert_input_required (reply, (const char *[]) { "user_name", NULL });
    json_decref (reply);
    //  Not an object: a protocol error.
    reply = s_call ("test_input_required_result_elicitation", ALL_CAPS, "{\"user_name\":12345}", NULL, &status);
    sb_assert_rpc_error (reply, -32602, "inputResponses.user_name");
    json_decref (reply);

    reply = s_call ("test_input_required_result_multiple_inputs", ALL_CAPS, NULL, NULL, &status);
    char *state3 = s_assert_input_required (reply, (const char *[]) { "user_name", "greeting", "client_roots",
                                                                     NULL });
    json_decref (reply);
    reply = s_call ("test_input_required_result_multiple_inputs", ALL_CAPS,
                    "{\"user_name\":{\"action\":\"accept\",\"content\":{\"name\":\"Alice\"}},"
                    "\"greeting\":{\"role\":\"assistant\",\"content\":{\"type\":\"text\",\"text\":\"Hi!\"},"
                    "\"model\":\"m\"},\"client_roots\":{\"roots\":[{\"uri\":\"file:///r\"}]}}", state3, &status);
    assert_string_equal (s_text_of (reply), "Hello, Alice! Greeting: Hi! Roots: file:///r.");
    json_decref (reply);
    free (state1);
    free (state2);
    free (state3);
}

//  A tool that keeps asking stops after SB_MAX_INPUT_ROUNDS rounds.
static void
test_rounds_bounded (void **state)
{
    long status = 0;
    char *request_state = NULL;
    for (int round = 1; round < SB_MAX_INPUT_ROUNDS; round++) {
        //  A malformed answer every time: asked again, one round further.
        json_t *reply = s_call ("test_input_required_result_elicitation", ALL_CAPS,
                                round > 1? "{\"user_name\":{\"action\":\"maybe\"}}": NULL, request_state, &status);
        free (request_state);
        request_state = s_assert_input_required (reply, (const char *[]) { "user_name", NULL });
        json_decref (reply);
    }
    json_t *reply = s_call ("test_input_required_result_elicitation", ALL_CAPS,
                            "{\"user_name\":{\"action\":\"maybe\"}}", request_state, &status);
    json_t *result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"), "error_type")),
                         "too_many_rounds");
    json_decref (reply);
    free (request_state);
}

//  A requestState works only for the request it was made for.
static void
test_state_refused (void **state)
{
    long status = 0;
    json_t *reply = s_call ("test_input_required_result_tampered_state", ALL_CAPS, NULL, NULL, &status);
    char *good = s_assert_input_required (reply, (const char *[]) { "confirm", NULL });
    json_decref (reply);
    const char *answer = "{\"confirm\":{\"action\":\"accept\",\"content\":{\"ok\":true}}}";

    size_t size = strlen (good) + 16;
    char *tampered = malloc (size);
    snprintf (tampered, size, "%s-TAMPERED", good);
    reply = s_call ("test_input_required_result_tampered_state", ALL_CAPS, answer, tampered, &status);
    assert_int_equal (status, 200);
    sb_assert_rpc_error (reply, -32602, "requestState is not valid");
    json_decref (reply);
    free (tampered);
    //  Another tool.
    reply = s_call ("test_input_required_result_request_state", ALL_CAPS, answer, good, &status);
    sb_assert_rpc_error (reply, -32602, "requestState is not valid");
    json_decref (reply);
    //  Another tenant.
    json_t *params = json_pack ("{s:{}, s:s, s:o}", "arguments", "requestState", good,
                                "inputResponses", json_loads (answer, 0, NULL));
    reply = s_post (s_other_token, "tools/call", "test_input_required_result_tampered_state", params,
                    ALL_CAPS, NULL, &status);
    sb_assert_rpc_error (reply, -32602, "requestState is not valid");
    json_decref (reply);
    //  Another user of the same tenant.
    params = json_pack ("{s:{}, s:s, s:o}", "arguments", "requestState", good,
                        "inputResponses", json_loads (answer, 0, NULL));
    reply = s_post (s_colleague_token, "tools/call", "test_input_required_result_tampered_state", params,
                    ALL_CAPS, NULL, &status);
    sb_assert_rpc_error (reply, -32602, "requestState is not valid");
    json_decref (reply);
    //  The right one still works.
    reply = s_call ("test_input_required_result_tampered_state", ALL_CAPS, answer, good, &status);
    assert_non_null (strstr (s_text_of (reply), "state-ok"));
    json_decref (reply);
    free (good);

    //  Other arguments.
    params = json_pack ("{s:{s:s}}", "arguments", "prompt", "one");
    reply = s_post (NULL, "tools/call", "test_sampling", params, ALL_CAPS, NULL, &status);
    char *sampling = s_assert_input_required (reply, (const char *[]) { "input_1", NULL });
    json_decref (reply);
    params = json_pack ("{s:{s:s}, s:s, s:{s:{s:s, s:{s:s, s:s}}}}", "arguments", "prompt", "two",
                        "requestState", sampling, "inputResponses", "input_1", "role", "assistant",
                        "content", "type", "text", "text", "x");
    reply = s_post (NULL, "tools/call", "test_sampling", params, ALL_CAPS, NULL, &status);
    sb_assert_rpc_error (reply, -32602, "requestState is not valid");
    json_decref (reply);
    free (sampling);
}

//  Only what the client declared is asked; -32021 with HTTP 400 when the
//  tool cannot go on without it.
static void
test_capabilities (void **state)
{
    long status = 0;
    json_t *reply = s_call ("test_input_required_result_capabilities", "{\"sampling\":{}}", NULL, NULL, &status);
    char *request_state = s_assert_input_required (reply, (const char *[]) { "capital_question", NULL });
    json_decref (reply);
    free (request_state);

    reply = s_call ("test_missing_capability", "{}", NULL, NULL, &status);
    assert_int_equal (status, 400);
    sb_assert_rpc_error (reply, -32021, NULL);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 7);
    json_t *required = json_object_get (json_object_get (json_object_get (reply, "error"), "data"),
                                        "requiredCapabilities");
    assert_true (json_is_object (json_object_get (required, "sampling")));
    json_decref (reply);

    //  A progress token asks for a stream, but the stream would only open
    //  with a notification: the error still comes as JSON with its 400.
    json_t *params = json_pack ("{s:{}}", "arguments");
    reply = s_post (NULL, "tools/call", "test_missing_capability", params, "{}",
                    "{\"progressToken\":\"p2\"}", &status);
    assert_int_equal (status, 400);
    sb_assert_rpc_error (reply, -32021, NULL);
    json_decref (reply);

    reply = s_call ("test_missing_capability", "{\"sampling\":{}}", NULL, NULL, &status);
    assert_int_equal (status, 200);
    request_state = s_assert_input_required (reply, (const char *[]) { "completion", NULL });
    json_decref (reply);
    free (request_state);
}

//  With a progress token the reply is a stream: its last event is the
//  input-required result, and no request is sent on it (s_post checks).
static void
test_streamed (void **state)
{
    long status = 0;
    json_t *params = json_pack ("{s:{}}", "arguments");
    json_t *reply = s_post (NULL, "tools/call", "test_streaming_elicitation", params, ALL_CAPS,
                            "{\"progressToken\":\"p1\",\"io.modelcontextprotocol/logLevel\":\"debug\"}", &status);
    assert_int_equal (status, 200);
    char *request_state = s_assert_input_required (reply, (const char *[]) { "confirm", NULL });
    json_decref (reply);
    free (request_state);
}

//  No task store (this farm runs no task worker): a call that would become
//  a task is answered synchronously once task/create has timed out, and
//  tasks/get says the store is unavailable (-32603), never a hang.
static void
test_no_task_store (void **state)
{
    long status = 0;
    json_t *params = json_pack ("{s:{s:i}}", "arguments", "seconds", 1);
    json_t *reply = s_post (NULL, "tools/call", "slow_compute", params, TASKS_CAPS, NULL, &status);
    assert_int_equal (status, 200);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    assert_null (json_object_get (result, "taskId"));
    assert_non_null (strstr (s_text_of (reply), "Computed"));
    json_decref (reply);

    params = json_pack ("{s:s}", "taskId", "AAAAAAAAAAAAAAAAAAAAAA");
    reply = s_post (NULL, "tasks/get", "AAAAAAAAAAAAAAAAAAAAAA", params, TASKS_CAPS, NULL, &status);
    assert_int_equal (status, 200);
    sb_assert_rpc_error (reply, -32603, "task store is unavailable");
    json_decref (reply);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_multi_round),
        cmocka_unit_test (test_missing_and_multiple),
        cmocka_unit_test (test_rounds_bounded),
        cmocka_unit_test (test_state_refused),
        cmocka_unit_test (test_capabilities),
        cmocka_unit_test (test_streamed),
        cmocka_unit_test (test_no_task_store),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
