/*  tests/11_proto_payload.c — unit tests of the codec of the JSON shapes
    inside job results (payload/sb_payload.h): each shape round-trips, the
    encoder refuses what breaks a rule, and the decoder rejects malformed
    text with a sentence naming the rule. */
#include "sb_payload.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

//  Decodes `text` as an input-required result; returns the rc, *why set.
static int
s_ir_decode (const char *text, sb_input_required_t *out, const char **why)
{
    return sb_payload_input_required_decode (text, strlen (text), out, why);
}

static void
test_promote (void **state)
{
    const char *text = SB_PAYLOAD_PROMOTE_JSON;
    assert_true (sb_payload_is_promote (text, strlen (text)));
    //  Key order and spacing do not matter; the method does.
    const char *spaced = "{ \"method\" : \"switchboard/promote\", \"jsonrpc\": \"2.0\" }";
    assert_true (sb_payload_is_promote (spaced, strlen (spaced)));
    const char *not_ones [] = {
        "{\"jsonrpc\":\"2.0\",\"method\":\"switchboard/promote\",\"id\":1}",    //  a request
        "{\"jsonrpc\":\"2.0\",\"method\":\"switchboard/promoted\"}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}",
        "[\"switchboard/promote\"]",
        "{\"method\":\"switchboard/promote\"",                                 //  cut short
        "switchboard/promote",
        "",
    };
    for (size_t i = 0; i < sizeof not_ones / sizeof not_ones [0]; i++)
        assert_false (sb_payload_is_promote (not_ones [i], strlen (not_ones [i])));
    assert_false (sb_payload_is_promote (NULL, 0));
    //  Only `len` bytes count: a prefix of the signal is not the signal.
    assert_false (sb_payload_is_promote (text, strlen (text) - 1));
}

static void
test_question_cap (void **state)
{
    json_t *url = json_pack ("{s:s}", "mode", "url");
    assert_int_equal (sb_payload_question_cap ("elicitation/create", NULL), SB_JOB_CAP_ELICITATION);
    assert_int_equal (sb_payload_question_cap ("elicitation/create", url), SB_JOB_CAP_ELICIT_URL);
    assert_int_equal (sb_payload_question_cap ("sampling/createMessage", NULL), SB_JOB_CAP_SAMPLING);
    assert_int_equal (sb_payload_question_cap ("roots/list", NULL), SB_JOB_CAP_ROOTS);
    assert_int_equal (sb_payload_question_cap ("tools/call", NULL), 0);
    assert_int_equal (sb_payload_question_cap (NULL, NULL), 0);
    json_decref (url);

    json_t *required = sb_payload_question_required (SB_JOB_CAP_ELICIT_URL);
    assert_true (json_is_object (json_object_get (json_object_get (required, "elicitation"), "url")));
    json_decref (required);
    required = sb_payload_question_required (SB_JOB_CAP_ROOTS);
    assert_true (json_is_object (json_object_get (required, "roots")));
    json_decref (required);
    assert_null (sb_payload_question_required (0));
    assert_null (sb_payload_question_required (SB_JOB_CAP_ROOTS | SB_JOB_CAP_SAMPLING));
}

static void
test_input_required_round_trip (void **state)
{
    sb_input_required_t in = {
        .requests = json_pack ("{s:{s:s, s:{s:s}}, s:{s:s, s:{}}}",
                               "confirm", "method", "elicitation/create", "params", "message", "Sure?",
                               "input_2", "method", "roots/list", "params"),
        .used = json_pack ("[s]", "user_name")
    };
    assert_null (sb_payload_input_requests_check (in.requests));
    char *text = sb_payload_input_required_encode (&in);
    assert_non_null (text);
    sb_input_required_t out;
    const char *why = "unset";
    assert_int_equal (s_ir_decode (text, &out, &why), 1);
    assert_null (why);
    assert_true (json_equal (out.requests, in.requests));
    assert_true (json_equal (out.used, in.used));
    sb_payload_input_required_clear (&out);
    assert_null (out.requests);
    free (text);

    //  No inputsUsed given: encoded as [], and an absent one decodes as [].
    json_decref (in.used);
    in.used = NULL;
    text = sb_payload_input_required_encode (&in);
    assert_non_null (strstr (text, "\"inputsUsed\":[]"));
    free (text);
    assert_int_equal (s_ir_decode ("{\"resultType\":\"input_required\",\"inputRequests\":"
                                   "{\"k\":{\"method\":\"roots/list\",\"params\":{}}}}", &out, &why), 1);
    assert_true (json_is_array (out.used));
    assert_int_equal (json_array_size (out.used), 0);
    sb_payload_input_required_clear (&out);
    json_decref (in.requests);
}

static void
test_input_required_not_one (void **state)
{
    sb_input_required_t out;
    const char *why;
    //  Ordinary results, and text that is not JSON, are not input-required.
    const char *others [] = {
        "{\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}",
        "{\"content\":[{\"type\":\"text\",\"text\":\"input_required\"}]}",
        "{\"resultType\":\"complete\",\"note\":\"input_required\"}",
        "not json input_required",
        "",
    };
    for (size_t i = 0; i < sizeof others / sizeof others [0]; i++) {
        assert_int_equal (s_ir_decode (others [i], &out, &why), 0);
        assert_null (out.requests);
        assert_null (why);
    }
}

static void
test_input_required_malformed (void **state)
{
    static const struct {
        const char *text;
        const char *why;        //  a word the sentence must hold
    } cases [] = {
        { "{\"resultType\":\"input_required\"}", "at least one question" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{}}", "at least one question" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":[]}", "at least one question" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{\"\":"
          "{\"method\":\"roots/list\",\"params\":{}}}}", "key" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":"
          "{\"method\":\"roots/list\"}}}", "exactly" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":"
          "{\"method\":\"roots/list\",\"params\":[]}}}", "exactly" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":"
          "{\"method\":\"roots/list\",\"params\":{},\"id\":1}}}", "exactly" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":"
          "{\"method\":\"tools/call\",\"params\":{}}}}", "method" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":"
          "{\"method\":\"roots/list\",\"params\":{}}},\"inputsUsed\":{}}", "inputsUsed" },
        { "{\"resultType\":\"input_required\",\"inputRequests\":{\"k\":"
          "{\"method\":\"roots/list\",\"params\":{}}},\"inputsUsed\":[1]}", "inputsUsed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        sb_input_required_t out;
        const char *why = NULL;
        assert_int_equal (s_ir_decode (cases [i].text, &out, &why), -1);
        assert_non_null (why);
        assert_non_null (strstr (why, cases [i].why));
        assert_null (out.requests);
        assert_null (out.used);
    }
    //  The questions alone, as the task store checks them.
    json_t *no_params = json_pack ("{s:{s:s}}", "k", "method", "roots/list");
    assert_non_null (strstr (sb_payload_input_requests_check (no_params), "exactly"));
    json_decref (no_params);
    assert_non_null (strstr (sb_payload_input_requests_check (NULL), "at least one question"));

    //  A key one byte too long, and one question too many.
    char key [SB_MAX_INPUT_KEY_LEN + 2];
    memset (key, 'k', sizeof key - 1);
    key [sizeof key - 1] = 0;
    sb_input_required_t in = { .requests = json_object () };
    json_object_set_new (in.requests, key, json_pack ("{s:s, s:{}}", "method", "roots/list", "params"));
    assert_null (sb_payload_input_required_encode (&in));
    json_t *doc = json_pack ("{s:s, s:o}", "resultType", "input_required", "inputRequests", in.requests);
    char *text = json_dumps (doc, JSON_COMPACT);
    json_decref (doc);
    sb_input_required_t out;
    const char *why = NULL;
    assert_int_equal (s_ir_decode (text, &out, &why), -1);
    assert_non_null (strstr (why, "key"));
    free (text);

    in.requests = json_object ();
    for (int i = 0; i <= SB_MAX_INPUT_REQUESTS; i++) {
        char name [16];
        snprintf (name, sizeof name, "q%d", i);
        json_object_set_new (in.requests, name, json_pack ("{s:s, s:{}}", "method", "roots/list", "params"));
    }
    assert_null (sb_payload_input_required_encode (&in));
    json_object_del (in.requests, "q0");
    text = sb_payload_input_required_encode (&in);
    assert_non_null (text);             //  exactly SB_MAX_INPUT_REQUESTS is fine
    free (text);
    json_decref (in.requests);
}

static void
test_failure (void **state)
{
    //  A plain failure, one with a JSON-RPC error, one with retry_after.
    sb_failure_t in = { .message = "the upstream said no" };
    char *text = sb_payload_failure_encode (&in);
    assert_string_equal (text, "{\"error\":\"the upstream said no\"}");
    sb_failure_t out;
    const char *why = "unset";
    assert_int_equal (sb_payload_failure_decode (text, strlen (text), &out, &why), 0);
    assert_null (why);
    assert_string_equal (out.message, "the upstream said no");
    assert_null (out.rpc_error);
    assert_int_equal (out.retry_after, 0);
    sb_payload_failure_clear (&out);
    free (text);

    in.rpc_error = json_pack ("{s:i, s:s, s:{s:{s:{}}}}", "code", -32021, "message", "needs roots",
                              "data", "requiredCapabilities", "roots");
    in.retry_after = 30;
    text = sb_payload_failure_encode (&in);
    assert_non_null (text);
    assert_int_equal (sb_payload_failure_decode (text, strlen (text), &out, &why), 0);
    assert_string_equal (out.message, "the upstream said no");
    assert_true (json_equal (out.rpc_error, in.rpc_error));
    assert_int_equal (out.retry_after, 30);
    sb_payload_failure_clear (&out);
    free (text);

    //  The encoder refuses a malformed rpc_error and a retry_after out of range.
    in.retry_after = SB_MAX_RETRY_AFTER_S + 1;
    assert_null (sb_payload_failure_encode (&in));
    in.retry_after = 0;
    json_object_del (in.rpc_error, "message");
    assert_null (sb_payload_failure_encode (&in));
    json_decref (in.rpc_error);

    //  No message: "failed".
    sb_failure_t bare = { 0 };
    text = sb_payload_failure_encode (&bare);
    assert_string_equal (text, "{\"error\":\"failed\"}");
    free (text);

    static const struct {
        const char *text;
        const char *why;
    } cases [] = {
        { "not json", "JSON object" },
        { "[\"error\"]", "JSON object" },
        { "{\"error\":42}", "error must be a string" },
        { "{\"error\":\"x\",\"rpc_error\":{\"code\":\"-32021\",\"message\":\"m\"}}", "rpc_error" },
        { "{\"error\":\"x\",\"rpc_error\":{\"code\":-32021}}", "rpc_error" },
        { "{\"error\":\"x\",\"rpc_error\":{\"code\":1,\"message\":\"m\",\"extra\":1}}", "rpc_error" },
        { "{\"error\":\"x\",\"retry_after\":0}", "retry_after" },
        { "{\"error\":\"x\",\"retry_after\":\"5\"}", "retry_after" },
        { "{\"error\":\"x\",\"retry_after\":86401}", "retry_after" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        why = NULL;
        assert_int_equal (sb_payload_failure_decode (cases [i].text, strlen (cases [i].text), &out, &why), -1);
        assert_non_null (strstr (why, cases [i].why));
        assert_null (out.message);
        assert_null (out.rpc_error);
    }
}

static void
test_answer (void **state)
{
    json_t *roots = json_pack ("{s:[]}", "roots");
    char *text = sb_payload_answer_result (roots);
    json_t *result, *error;
    const char *why = "unset";
    assert_int_equal (sb_payload_answer_decode (text, strlen (text), &result, &error, &why), 0);
    assert_null (why);
    assert_null (error);
    assert_true (json_equal (result, roots));
    json_decref (result);
    json_decref (roots);
    free (text);

    json_t *data = json_pack ("{s:{s:{}}}", "requiredCapabilities", "sampling");
    text = sb_payload_answer_error (-32021, "no sampling", data);
    assert_int_equal (sb_payload_answer_decode (text, strlen (text), &result, &error, &why), 0);
    assert_null (result);
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32021);
    assert_string_equal (json_string_value (json_object_get (error, "message")), "no sampling");
    assert_true (json_equal (json_object_get (error, "data"), data));
    json_decref (error);
    json_decref (data);
    free (text);

    //  A message cut inside a UTF-8 sequence still makes a well-formed error.
    text = sb_payload_answer_error (-32601, "caf\xc3", NULL);
    assert_non_null (text);
    assert_int_equal (sb_payload_answer_decode (text, strlen (text), &result, &error, &why), 0);
    assert_non_null (error);
    json_decref (error);
    free (text);

    const char *bad [] = {
        "{}",
        "{\"result\":{},\"error\":{\"code\":1,\"message\":\"m\"}}",
        "{\"error\":{\"message\":\"m\"}}",
        "{\"error\":\"m\"}",
        "[]",
        "nope",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        why = NULL;
        assert_int_equal (sb_payload_answer_decode (bad [i], strlen (bad [i]), &result, &error, &why), -1);
        assert_non_null (why);
        assert_null (result);
        assert_null (error);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_promote),
        cmocka_unit_test (test_question_cap),
        cmocka_unit_test (test_input_required_round_trip),
        cmocka_unit_test (test_input_required_not_one),
        cmocka_unit_test (test_input_required_malformed),
        cmocka_unit_test (test_failure),
        cmocka_unit_test (test_answer),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
