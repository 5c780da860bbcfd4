/*  tests/30_gateway_inputs.c — unit tests of MCP 2026-07-28 input-required
    results in the gateway's pure layers: the requestState codec and the
    reading of a worker's input-required result (gateway/sb_relay.c), and
    in sb_mcp_handle the inputResponses / requestState checks of a
    tools/call, the prompts/get that asks for its missing arguments, the
    -32021 error of a tool that needs a capability, and resultType kept on
    an input-required reply (gateway/sb_mcp.c). No sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sb_crypto.h"
#include "sb_mcp.h"
#include "sb_relay.h"
#include "sb_session.h"
#include "sb_job.h"

static sb_connectors_t *s_connectors;
static const uint8_t s_key [SB_HMAC_SHA256_LEN] = { 1, 2, 3, 4 };
static const uint8_t s_other_key [SB_HMAC_SHA256_LEN] = { 1, 2, 3, 5 };
static const sb_relay_binding_t s_binding = { "acme", "ann", "tools/call", "lookup", "{\"a\":1,\"b\":[2]}" };

static int
s_setup (void **state)
{
    char *error = NULL;
    s_connectors = sb_connectors_load (SB_TEST_CONNECTORS, &error);
    if (!s_connectors)
        fprintf (stderr, "connectors: %s\n", error? error: "?");
    free (error);
    return s_connectors? 0: -1;
}

static int
s_teardown (void **state)
{
    sb_connectors_destroy (&s_connectors);
    return 0;
}

//  ---------------------------------------------------------------------------
//  requestState

//  Decodes `token` for `binding` at `now`; returns the rc, asserting the
//  contract's outputs on either side.
static int
s_decode (const uint8_t *key, const sb_relay_binding_t *binding, const char *token, int64_t now,
          uint32_t *round, json_t **answers)
{
    const char *why = "unset";
    int rc = sb_relay_state_decode (key, binding, token, now, round, answers, &why);
    if (rc == 0) {
        assert_null (why);
        assert_true (json_is_object (*answers));
    }
    else {
        assert_non_null (why);
        assert_null (*answers);
        assert_int_equal (*round, 0);
    }
    return rc;
}

static void
test_state_round_trip (void **state)
{
    json_t *answers = json_pack ("{s:{s:s, s:{s:s}}}", "user_name", "action", "accept", "content",
                                 "name", "Alice");
    char *token = sb_relay_state_encode (s_key, &s_binding, 1000, 3, answers);
    assert_non_null (token);
    assert_non_null (strchr (token, '.'));
    uint32_t round = 0;
    json_t *got = NULL;
    assert_int_equal (s_decode (s_key, &s_binding, token, 1000, &round, &got), 0);
    assert_int_equal (round, 3);
    assert_true (json_equal (got, answers));
    json_decref (got);

    //  The arguments' key order does not matter.
    sb_relay_binding_t reordered = s_binding;
    reordered.args = "{ \"b\": [2], \"a\": 1 }";
    assert_int_equal (s_decode (s_key, &reordered, token, 999, &round, &got), 0);
    json_decref (got);

    //  Expired one second after `expires`.
    const char *why = NULL;
    assert_int_equal (sb_relay_state_decode (s_key, &s_binding, token, 1001, &round, &got, &why), -1);
    assert_non_null (strstr (why, "expired"));
    free (token);
    json_decref (answers);
}

//  Every part of the binding, the key and every byte of the token matter.
static void
test_state_refused (void **state)
{
    json_t *answers = json_object ();
    char *token = sb_relay_state_encode (s_key, &s_binding, 5000, 2, answers);
    assert_non_null (token);
    uint32_t round = 0;
    json_t *got = NULL;
    const sb_relay_binding_t others [] = {
        { "globex", "ann", "tools/call", "lookup", "{\"a\":1,\"b\":[2]}" },
        { "acme", "bob", "tools/call", "lookup", "{\"a\":1,\"b\":[2]}" },
        { "acme", NULL, "tools/call", "lookup", "{\"a\":1,\"b\":[2]}" },
        { "acme", "ann", "prompts/get", "lookup", "{\"a\":1,\"b\":[2]}" },
        { "acme", "ann", "tools/call", "lookup2", "{\"a\":1,\"b\":[2]}" },
        { "acme", "ann", "tools/call", "lookup", "{\"a\":2,\"b\":[2]}" },
        { "acme", "ann", "tools/call", "lookup", NULL },
        //  Fields run together differently: the length prefixes tell them apart.
        { "acmeann", "", "tools/call", "lookup", "{\"a\":1,\"b\":[2]}" },
    };
    for (size_t i = 0; i < sizeof others / sizeof others [0]; i++)
        assert_int_equal (s_decode (s_key, &others [i], token, 0, &round, &got), -1);
    assert_int_equal (s_decode (s_other_key, &s_binding, token, 0, &round, &got), -1);

    //  A flipped character anywhere, an addition, a cut.
    size_t len = strlen (token);
    char *copy = malloc (len + 16);
    for (size_t i = 0; i < len; i++) {
        memcpy (copy, token, len + 1);
        copy [i] = copy [i] == 'A'? 'B': 'A';
        assert_int_equal (s_decode (s_key, &s_binding, copy, 0, &round, &got), -1);
    }
    snprintf (copy, len + 16, "%s-TAMPERED", token);
    assert_int_equal (s_decode (s_key, &s_binding, copy, 0, &round, &got), -1);
    memcpy (copy, token, len - 1);
    copy [len - 1] = 0;
    assert_int_equal (s_decode (s_key, &s_binding, copy, 0, &round, &got), -1);
    free (copy);
    const char *junk [] = { "", ".", "abc", ".abc", "abc.", "a.b.c", "!!!.###", NULL };
    for (int i = 0; junk [i]; i++)
        assert_int_equal (s_decode (s_key, &s_binding, junk [i], 0, &round, &got), -1);
    assert_int_equal (s_decode (s_key, &s_binding, NULL, 0, &round, &got), -1);
    free (token);

    //  Signed, but outside what a retry may carry: the first round (no
    //  state is issued for it) and rounds past SB_MAX_INPUT_ROUNDS.
    const uint32_t rounds [] = { 0, 1, SB_MAX_INPUT_ROUNDS + 1 };
    for (size_t i = 0; i < 3; i++) {
        token = sb_relay_state_encode (s_key, &s_binding, 5000, rounds [i], answers);
        assert_non_null (token);
        const char *why = NULL;
        assert_int_equal (sb_relay_state_decode (s_key, &s_binding, token, 0, &round, &got, &why), -1);
        assert_non_null (strstr (why, "could not be read"));
        free (token);
    }
    json_decref (answers);
}

//  A state that would exceed SB_MAX_REQUEST_STATE_LEN is not made.
static void
test_state_size_limit (void **state)
{
    size_t size = SB_MAX_REQUEST_STATE_LEN;
    char *text = malloc (size + 1);
    memset (text, 'x', size);
    text [size] = 0;
    json_t *answers = json_pack ("{s:{s:s}}", "big", "text", text);
    assert_null (sb_relay_state_encode (s_key, &s_binding, 9, 2, answers));
    json_decref (answers);
    text [size / 2] = 0;
    answers = json_pack ("{s:{s:s}}", "half", "text", text);
    char *token = sb_relay_state_encode (s_key, &s_binding, 9, 2, answers);
    assert_non_null (token);
    assert_true (strlen (token) <= SB_MAX_REQUEST_STATE_LEN);
    free (token);
    json_decref (answers);
    free (text);
}

//  ---------------------------------------------------------------------------
//  A worker's input-required result

static int
s_input_required (const char *result, unsigned caps, json_t **requests, json_t **used)
{
    zframe_t *frame = sb_job_result_encode (result);
    assert_non_null (frame);
    int rc = sb_relay_input_required (zframe_data (frame), zframe_size (frame), caps, requests, used);
    zframe_destroy (&frame);
    if (rc != 1) {
        assert_null (*requests);
        assert_null (*used);
    }
    return rc;
}

#define ELICIT  "{\"method\":\"elicitation/create\",\"params\":{\"message\":\"?\",\"requestedSchema\":{}}}"
#define SAMPLE  "{\"method\":\"sampling/createMessage\",\"params\":{\"messages\":[],\"maxTokens\":5}}"
#define ALL     (SB_CLIENT_SAMPLING | SB_CLIENT_ELICITATION | SB_CLIENT_ROOTS)

static void
test_input_required_parse (void **state)
{
    json_t *requests = NULL, *used = NULL;
    assert_int_equal (s_input_required ("{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":" ELICIT
                                        ",\"b\":" SAMPLE "},\"inputsUsed\":[\"x\"]}", ALL, &requests, &used), 1);
    assert_int_equal (json_object_size (requests), 2);
    assert_string_equal (json_string_value (json_array_get (used, 0)), "x");
    json_decref (requests);
    json_decref (used);
    //  inputsUsed may be absent.
    assert_int_equal (s_input_required ("{\"resultType\":\"input_required\",\"inputRequests\":{\"r\":"
                                        "{\"method\":\"roots/list\",\"params\":{}}}}", ALL, &requests, &used), 1);
    assert_int_equal (json_array_size (used), 0);
    json_decref (requests);
    json_decref (used);

    //  Not one: a tool result, no resultType, another resultType, no JSON.
    assert_int_equal (s_input_required ("{\"content\":[]}", ALL, &requests, &used), 0);
    assert_int_equal (s_input_required ("{\"resultType\":\"complete\"}", ALL, &requests, &used), 0);
    assert_int_equal (s_input_required ("nope", ALL, &requests, &used), 0);
    assert_int_equal (sb_relay_input_required (NULL, 0, ALL, &requests, &used), 0);

    //  Malformed ones.
    const char *bad [] = {
        "{\"resultType\":\"input_required\"}",
        "{\"resultType\":\"input_required\",\"inputRequests\":{}}",
        "{\"resultType\":\"input_required\",\"inputRequests\":[]}",
        "{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":{\"method\":\"tools/call\",\"params\":{}}}}",
        "{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":{\"method\":\"roots/list\"}}}",
        "{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":{\"method\":\"roots/list\",\"params\":{},\"id\":1}}}",
        "{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":" ELICIT "},\"inputsUsed\":{}}",
        "{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":" ELICIT "},\"inputsUsed\":[1]}",
        "{\"resultType\":\"input_required\",\"inputRequests\":{\"a_very_long_key_a_very_long_key_a_very_long_key"
        "_a_very_long_key_x\":" ELICIT "}}",
        NULL
    };
    for (int i = 0; bad [i]; i++)
        if (s_input_required (bad [i], ALL, &requests, &used) != -1)
            fail_msg ("accepted: %s", bad [i]);
    //  A question the client declared no capability for.
    assert_int_equal (s_input_required ("{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":" ELICIT
                                        "}}", SB_CLIENT_SAMPLING, &requests, &used), -1);
    assert_int_equal (s_input_required ("{\"resultType\":\"input_required\",\"inputRequests\":{\"a\":"
                                        "{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"url\"}}}}",
                                        SB_CLIENT_ELICITATION, &requests, &used), -1);
}

//  ---------------------------------------------------------------------------
//  sb_mcp_handle for 2026-07-28

#define META(caps) \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"," \
    "\"io.modelcontextprotocol/clientCapabilities\":" caps "}"

//  Handles a modern `method` request with `name` mirrored in Mcp-Name.
static void
s_handle (const char *method, const char *name, const char *body, sb_mcp_outcome_t *out)
{
    sb_mcp_headers_t headers = {
        .protocol = "2026-07-28", .protocol_len = 10,
        .method = method, .method_len = strlen (method),
        .name = name, .name_len = name? strlen (name): 0,
    };
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "1", .headers = &headers };
    sb_mcp_handle (&env, body, strlen (body), out);
}

//  The error code and message of a REPLY outcome's body (message copied).
static int
s_error_of (const sb_mcp_outcome_t *out, char *message, size_t size)
{
    assert_int_equal (out->action, SB_MCP_REPLY);
    json_t *reply = json_loads (out->as.reply.body, 0, NULL);
    json_t *error = json_object_get (reply, "error");
    snprintf (message, size, "%s", json_string_value (json_object_get (error, "message"))
                                   ? json_string_value (json_object_get (error, "message")): "");
    int code = (int) json_integer_value (json_object_get (error, "code"));
    json_decref (reply);
    return code;
}

static void
test_call_input_params (void **state)
{
    sb_mcp_outcome_t out;
    s_handle ("tools/call", "test_input_required_result_elicitation",
              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
              "\"test_input_required_result_elicitation\",\"arguments\":{},\"inputResponses\":{\"user_name\":"
              "{\"action\":\"accept\"}},\"requestState\":\"abc.def\"," META ("{\"elicitation\":{},\"roots\":{}}") "}}",
              &out);
    assert_int_equal (out.action, SB_MCP_CALL);
    assert_int_equal (out.revision, SB_MCP_2026_07_28);
    assert_int_equal (out.caps, SB_CLIENT_ELICITATION | SB_CLIENT_ROOTS);
    assert_non_null (json_object_get (out.as.call.input_responses, "user_name"));
    assert_string_equal (out.as.call.request_state, "abc.def");
    sb_mcp_outcome_clear (&out);

    //  Neither given: nothing handed over.
    s_handle ("tools/call", "test_simple_text", "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\","
              "\"params\":{\"name\":\"test_simple_text\"," META ("{}") "}}", &out);
    assert_int_equal (out.action, SB_MCP_CALL);
    assert_null (out.as.call.input_responses);
    assert_null (out.as.call.request_state);
    assert_int_equal (out.caps, 0);
    sb_mcp_outcome_clear (&out);

    const char *bad [][2] = {
        { "\"inputResponses\":null", "inputResponses must be an object" },
        { "\"inputResponses\":[]", "inputResponses must be an object" },
        { "\"inputResponses\":{\"user_name\":12345}", "inputResponses.user_name must be an object" },
        { "\"inputResponses\":{\"a\":{},\"b\":\"x\"}", "inputResponses.b" },
        { "\"requestState\":7", "requestState must be the string" },
        { "\"requestState\":null", "requestState must be the string" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char body [512], message [256];
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                  "{\"name\":\"test_simple_text\",%s," META ("{}") "}}", bad [i][0]);
        s_handle ("tools/call", "test_simple_text", body, &out);
        assert_int_equal (s_error_of (&out, message, sizeof message), SB_RPC_INVALID_PARAMS);
        if (!strstr (message, bad [i][1]))
            fail_msg ("\"%s\" lacks \"%s\"", message, bad [i][1]);
        sb_mcp_outcome_clear (&out);
    }
    //  Older revisions know neither field: ignored.
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "1" };
    const char *legacy = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
                         "{\"name\":\"test_simple_text\",\"inputResponses\":5,\"requestState\":[]}}";
    sb_mcp_handle (&env, legacy, strlen (legacy), &out);
    assert_int_equal (out.action, SB_MCP_CALL);
    assert_null (out.as.call.input_responses);
    sb_mcp_outcome_clear (&out);
}

#define PROMPT  "test_input_required_result_prompt"
#define GET(params, caps) \
    "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"prompts/get\",\"params\":{\"name\":\"" PROMPT "\"," \
    params META (caps) "}}"

//  The result object of a REPLY outcome (new reference).
static json_t *
s_result_of (const sb_mcp_outcome_t *out)
{
    assert_int_equal (out->action, SB_MCP_REPLY);
    assert_int_equal (out->http_status, 200);
    json_t *reply = json_loads (out->as.reply.body, 0, NULL);
    json_t *result = json_incref (json_object_get (reply, "result"));
    json_decref (reply);
    assert_non_null (result);
    return result;
}

static void
test_prompt_inputs (void **state)
{
    sb_mcp_outcome_t out;
    char message [256];
    //  Missing its argument, client with elicitation: asked for it.
    s_handle ("prompts/get", PROMPT, GET ("", "{\"elicitation\":{}}"), &out);
    json_t *result = s_result_of (&out);
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    json_t *request = json_object_get (json_object_get (result, "inputRequests"), SB_MCP_PROMPT_INPUT_KEY);
    assert_string_equal (json_string_value (json_object_get (request, "method")), "elicitation/create");
    json_t *params = json_object_get (request, "params");
    assert_string_equal (json_string_value (json_object_get (params, "message")),
                         "What context should the prompt use?");
    json_t *schema = json_object_get (params, "requestedSchema");
    assert_string_equal (json_string_value (json_object_get (json_object_get (json_object_get (schema,
                         "properties"), "context"), "type")), "string");
    assert_string_equal (json_string_value (json_array_get (json_object_get (schema, "required"), 0)), "context");
    assert_null (json_object_get (result, "messages"));
    json_t *info = json_object_get (json_object_get (result, "_meta"), "io.modelcontextprotocol/serverInfo");
    assert_non_null (info);
    json_decref (result);
    sb_mcp_outcome_clear (&out);

    //  The answer fills it in.
    s_handle ("prompts/get", PROMPT, GET ("\"inputResponses\":{\"" SB_MCP_PROMPT_INPUT_KEY "\":{\"action\":"
              "\"accept\",\"content\":{\"context\":\"the Q3 report\"}}},", "{\"elicitation\":{}}"), &out);
    result = s_result_of (&out);
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    const char *text = json_string_value (json_object_get (json_object_get (json_array_get (
        json_object_get (result, "messages"), 0), "content"), "text"));
    assert_string_equal (text, "Answer with this context in mind: the Q3 report");
    json_decref (result);
    sb_mcp_outcome_clear (&out);

    //  An argument given in arguments wins; nothing is asked.
    s_handle ("prompts/get", PROMPT, GET ("\"arguments\":{\"context\":\"given\"},", "{\"elicitation\":{}}"), &out);
    result = s_result_of (&out);
    assert_non_null (json_object_get (result, "messages"));
    json_decref (result);
    sb_mcp_outcome_clear (&out);

    //  Accepted without the value, or with a non-string: asked again.
    s_handle ("prompts/get", PROMPT, GET ("\"inputResponses\":{\"" SB_MCP_PROMPT_INPUT_KEY "\":{\"action\":"
              "\"accept\",\"content\":{\"context\":5}}},", "{\"elicitation\":{}}"), &out);
    result = s_result_of (&out);
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    json_decref (result);
    sb_mcp_outcome_clear (&out);

    //  Declined: -32602 naming the argument.
    s_handle ("prompts/get", PROMPT, GET ("\"inputResponses\":{\"" SB_MCP_PROMPT_INPUT_KEY "\":{\"action\":"
              "\"decline\"}},", "{\"elicitation\":{}}"), &out);
    assert_int_equal (s_error_of (&out, message, sizeof message), SB_RPC_INVALID_PARAMS);
    assert_non_null (strstr (message, "\"context\""));
    assert_non_null (strstr (message, "decline"));
    sb_mcp_outcome_clear (&out);

    //  A client without elicitation is not asked: the missing argument is refused.
    s_handle ("prompts/get", PROMPT, GET ("", "{\"sampling\":{}}"), &out);
    assert_int_equal (s_error_of (&out, message, sizeof message), SB_RPC_INVALID_PARAMS);
    assert_non_null (strstr (message, "needs the argument \"context\""));
    sb_mcp_outcome_clear (&out);

    //  Malformed inputResponses: -32602 before anything else.
    s_handle ("prompts/get", PROMPT, GET ("\"inputResponses\":7,", "{\"elicitation\":{}}"), &out);
    assert_int_equal (s_error_of (&out, message, sizeof message), SB_RPC_INVALID_PARAMS);
    sb_mcp_outcome_clear (&out);

    //  Older revisions: the missing argument is refused as before.
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "1" };
    const char *legacy = "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"prompts/get\",\"params\":{\"name\":\""
                         PROMPT "\"}}";
    sb_mcp_handle (&env, legacy, strlen (legacy), &out);
    assert_int_equal (s_error_of (&out, message, sizeof message), SB_RPC_INVALID_PARAMS);
    sb_mcp_outcome_clear (&out);
}

//  A worker's -32021: passed on as the JSON-RPC error; anything else not.
static void
test_call_error (void **state)
{
    json_t *id = json_integer (9);
    const char *payloads [] = {
        "{\"error\":\"no sampling\",\"rpc_error\":{\"code\":-32021,\"message\":\"no sampling\","
        "\"data\":{\"requiredCapabilities\":{\"sampling\":{}}}}}",
        "{\"error\":\"x\",\"rpc_error\":{\"code\":-32603,\"message\":\"x\"}}",
        "{\"error\":\"x\",\"rpc_error\":{\"code\":-32021,\"message\":\"x\"}}",
        "{\"error\":\"x\"}",
        NULL
    };
    for (int i = 0; payloads [i]; i++) {
        zframe_t *frame = sb_job_result_encode (payloads [i]);
        char *body = sb_mcp_call_error (id, zframe_data (frame), zframe_size (frame));
        zframe_destroy (&frame);
        if (i > 0) {
            assert_null (body);
            continue;
        }
        json_t *reply = json_loads (body, 0, NULL);
        assert_int_equal (json_integer_value (json_object_get (reply, "id")), 9);
        json_t *error = json_object_get (reply, "error");
        assert_int_equal (json_integer_value (json_object_get (error, "code")), SB_RPC_MISSING_CAPABILITY);
        assert_true (json_is_object (json_object_get (json_object_get (json_object_get (error, "data"),
                                                      "requiredCapabilities"), "sampling")));
        json_decref (reply);
        free (body);
    }
    assert_null (sb_mcp_call_error (id, NULL, 0));
    json_decref (id);

    //  An input-required result keeps its resultType.
    char *body = sb_mcp_stateless_reply (strdup ("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"resultType\":"
                                              "\"input_required\",\"inputRequests\":{}}}"), "1", false);
    json_t *reply = json_loads (body, 0, NULL);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    assert_non_null (json_object_get (json_object_get (result, "_meta"), "io.modelcontextprotocol/serverInfo"));
    json_decref (reply);
    free (body);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_state_round_trip),
        cmocka_unit_test (test_state_refused),
        cmocka_unit_test (test_state_size_limit),
        cmocka_unit_test (test_input_required_parse),
        cmocka_unit_test (test_call_input_params),
        cmocka_unit_test (test_prompt_inputs),
        cmocka_unit_test (test_call_error),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
