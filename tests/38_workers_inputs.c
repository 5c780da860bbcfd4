/*  tests/38_workers_inputs.c — MCP 2026-07-28 input-required results in
    the worker: the api worker as a real process (sb-worker --role api)
    between a fake broker and a fake upstream (tests/38_workers_fake.c),
    sent jobs that carry "inputs" (the client's answers), "caps" and
    "round" as a 2026-07-28 gateway sends them.

    Checked: a question with no answer ends the job with an input-required
    result (never an ASK); an answer given under the question's key is
    delivered and the fixture completes; a malformed answer is asked again;
    unknown answers are ignored and not reported as used; two rounds, three
    questions at once, questions the client has no capability for (left out,
    or -32021 when the tool cannot go on), the round number reaching the
    tool, malformed inputs; the confirmation of a tool that changes data
    (create_task) asked the same way; and a job without inputs still asking
    by ASK as older revisions do. Every wait is on a message, never a
    sleep. */
#include <czmq.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "tests/sb_harness.h"

#define WAIT_MS     5000
#define ALL_CAPS    (SB_JOB_CAP_SAMPLING | SB_JOB_CAP_ELICITATION | SB_JOB_CAP_ROOTS)

static fake_upstream_t *s_up;
static fake_broker_t *s_broker;
static pid_t s_worker = -1;

static int
s_setup (void **state)
{
    zsys_handler_set (NULL);
    s_up = fake_upstream_new ();
    assert_non_null (s_up);
    s_broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (s_broker);
    char urls [128], connectors [512];
    snprintf (urls, sizeof urls, "sandbox-crm=%s", fake_upstream_url (s_up));
    snprintf (connectors, sizeof connectors, "%s/connectors", SB_SOURCE_DIR);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "api", "--broker", s_broker->endpoint,
        "--credit", "8", "--heartbeat-ms", "200", "--connectors", connectors,
        "--connector-urls", urls, "--log-level", "info", NULL
    };
    const char *env [] = { "SB_SANDBOX_CRM_TOKEN=test-token", NULL };
    s_worker = sb_harness_spawn (argv, env);
    assert_true (s_worker > 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, 10000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    sb_msg_reset (&msg);
    return 0;
}

static int
s_teardown (void **state)
{
    if (s_worker > 0 && sb_harness_alive (s_worker))
        assert_int_equal (sb_harness_stop (s_worker), 0);
    fake_broker_destroy (&s_broker);
    fake_upstream_destroy (&s_up);
    return 0;
}

//  Runs `tool` as a 2026-07-28 job with `inputs` (NULL: an older
//  revision's job), `caps` and `round`; returns the parsed result and sets
//  *status. Asserts that the next message is the job's RESULT (no ASK).
static json_t *
s_run (const char *corr_id, const char *tool, const char *args, const char *inputs,
       uint32_t caps, uint32_t round, sb_status_t *status)
{
    sb_job_t job = { .op = "tools/call", .connector = "conformance", .tool = (char *) tool,
                     .args = (char *) (args ? args : "{}"), .inputs = (char *) inputs,
                     .caps = caps, .round = round };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    assert_int_equal (fake_broker_send_job (s_broker, corr_id, WAIT_MS, 0, &payload), 0);
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, corr_id, WAIT_MS, status, &text), 0);
    json_t *result = json_loads (text, 0, NULL);
    if (!result)
        fail_msg ("result is not JSON: %s", text);
    free (text);
    return result;
}

//  Asserts an input-required result asking exactly `keys` (NULL-ended) and
//  reporting `used` (NULL-ended) as answered from the inputs.
static void
s_assert_input_required (json_t *result, const char *const keys [], const char *const used [])
{
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    json_t *requests = json_object_get (result, "inputRequests");
    size_t count = 0;
    for (; keys [count]; count++) {
        json_t *request = json_object_get (requests, keys [count]);
        if (!request)
            fail_msg ("inputRequests lacks \"%s\"", keys [count]);
        assert_true (json_is_string (json_object_get (request, "method")));
        assert_true (json_is_object (json_object_get (request, "params")));
    }
    assert_int_equal (json_object_size (requests), count);
    json_t *got = json_object_get (result, "inputsUsed");
    size_t n = 0;
    for (; used [n]; n++)
        assert_string_equal (json_string_value (json_array_get (got, n)), used [n]);
    assert_int_equal (json_array_size (got), n);
    assert_null (json_object_get (result, "content"));
}

static const char *
s_text_of (json_t *result)
{
    return json_string_value (json_object_get (json_array_get (json_object_get (result, "content"), 0), "text"));
}

#define NAME_ALICE  "\"user_name\":{\"action\":\"accept\",\"content\":{\"name\":\"Alice\"}}"

//  One question: asked back, answered, answered badly, answered with extras.
static void
test_one_question (void **state)
{
    sb_status_t status;
    json_t *result = s_run ("in-1", "test_input_required_result_elicitation", NULL, "{}",
                            ALL_CAPS, 1, &status);
    assert_int_equal (status, SB_STATUS_OK);
    s_assert_input_required (result, (const char *[]) { "user_name", NULL }, (const char *[]) { NULL });
    json_t *request = json_object_get (json_object_get (result, "inputRequests"), "user_name");
    assert_string_equal (json_string_value (json_object_get (request, "method")), "elicitation/create");
    assert_string_equal (json_string_value (json_object_get (json_object_get (request, "params"), "message")),
                         "What is your name?");
    json_decref (result);

    result = s_run ("in-2", "test_input_required_result_elicitation", NULL, "{" NAME_ALICE "}",
                    ALL_CAPS, 2, &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_null (json_object_get (result, "resultType"));
    assert_string_equal (s_text_of (result), "Hello, Alice!");
    json_decref (result);

    //  Not an elicitation result: asked again.
    result = s_run ("in-3", "test_input_required_result_elicitation", NULL,
                    "{\"user_name\":{\"name\":\"Alice\"}}", ALL_CAPS, 1, &status);
    s_assert_input_required (result, (const char *[]) { "user_name", NULL }, (const char *[]) { NULL });
    json_decref (result);

    //  A wrong key only: asked again; extra keys beside the right one: ignored.
    result = s_run ("in-4", "test_input_required_result_elicitation", NULL,
                    "{\"wrong_key\":{\"action\":\"accept\",\"content\":{}}}", ALL_CAPS, 1, &status);
    s_assert_input_required (result, (const char *[]) { "user_name", NULL }, (const char *[]) { NULL });
    json_decref (result);
    result = s_run ("in-5", "test_input_required_result_elicitation", NULL,
                    "{\"extra\":{\"action\":\"accept\"}," NAME_ALICE ",\"more\":5}", ALL_CAPS, 1, &status);
    assert_string_equal (s_text_of (result), "Hello, Alice!");
    json_decref (result);

    //  Declined: the tool still answers, with no greeting.
    result = s_run ("in-6", "test_input_required_result_elicitation", NULL,
                    "{\"user_name\":{\"action\":\"decline\"}}", ALL_CAPS, 2, &status);
    assert_string_equal (s_text_of (result), "No name was given, so nobody was greeted.");
    json_decref (result);
}

//  Two questions one after the other: two input-required results, then the
//  answer; the second reports the first answer as used.
static void
test_multi_round (void **state)
{
    sb_status_t status;
    const char *tool = "test_input_required_result_multi_round";
    json_t *result = s_run ("mr-1", tool, NULL, "{}", ALL_CAPS, 1, &status);
    s_assert_input_required (result, (const char *[]) { "step1", NULL }, (const char *[]) { NULL });
    json_decref (result);
    result = s_run ("mr-2", tool, NULL, "{\"step1\":{\"action\":\"accept\",\"content\":{\"name\":\"Alice\"}}}",
                    ALL_CAPS, 2, &status);
    s_assert_input_required (result, (const char *[]) { "step2", NULL }, (const char *[]) { "step1", NULL });
    json_decref (result);
    result = s_run ("mr-3", tool, NULL, "{\"step1\":{\"action\":\"accept\",\"content\":{\"name\":\"Alice\"}},"
                    "\"step2\":{\"action\":\"accept\",\"content\":{\"color\":\"blue\"}}}", ALL_CAPS, 3, &status);
    assert_string_equal (s_text_of (result), "Alice's favorite color is blue.");
    json_decref (result);
}

#define ROOTS_ANSWER    "\"client_roots\":{\"roots\":[{\"uri\":\"file:///test/root\",\"name\":\"Test Root\"}]}"
#define GREETING_ANSWER "\"greeting\":{\"role\":\"assistant\",\"content\":{\"type\":\"text\",\"text\":\"Hello there!\"}," \
                        "\"model\":\"m\",\"stopReason\":\"endTurn\"}"

//  Three questions of three kinds in one result; a partial answer asks the
//  rest again.
static void
test_multiple_inputs (void **state)
{
    sb_status_t status;
    const char *tool = "test_input_required_result_multiple_inputs";
    json_t *result = s_run ("mi-1", tool, NULL, "{}", ALL_CAPS, 1, &status);
    s_assert_input_required (result, (const char *[]) { "user_name", "greeting", "client_roots", NULL },
                             (const char *[]) { NULL });
    json_decref (result);
    result = s_run ("mi-2", tool, NULL, "{" NAME_ALICE "," ROOTS_ANSWER "}", ALL_CAPS, 2, &status);
    s_assert_input_required (result, (const char *[]) { "greeting", NULL },
                             (const char *[]) { "user_name", "client_roots", NULL });
    json_decref (result);
    result = s_run ("mi-3", tool, NULL, "{" NAME_ALICE "," GREETING_ANSWER "," ROOTS_ANSWER "}",
                    ALL_CAPS, 3, &status);
    assert_string_equal (s_text_of (result),
                         "Hello, Alice! Greeting: Hello there! Roots: file:///test/root (Test Root).");
    json_decref (result);

    result = s_run ("mi-4", "test_input_required_result_list_roots", NULL, "{" ROOTS_ANSWER "}",
                    ALL_CAPS, 2, &status);
    assert_string_equal (s_text_of (result), "Client roots: file:///test/root (Test Root)");
    json_decref (result);
}

//  Questions the client declared no capability for: never in the result;
//  a tool that cannot go on without one ends with -32021.
static void
test_capabilities (void **state)
{
    sb_status_t status;
    const char *tool = "test_input_required_result_capabilities";
    json_t *result = s_run ("cap-1", tool, NULL, "{}", SB_JOB_CAP_SAMPLING, 1, &status);
    s_assert_input_required (result, (const char *[]) { "capital_question", NULL }, (const char *[]) { NULL });
    json_decref (result);
    //  An answer to the question it may not ask is not used.
    result = s_run ("cap-2", tool, NULL, "{" NAME_ALICE ",\"capital_question\":{\"role\":\"assistant\","
                    "\"content\":{\"type\":\"text\",\"text\":\"Paris\"}}}", SB_JOB_CAP_SAMPLING, 2, &status);
    const char *text = s_text_of (result);
    assert_non_null (strstr (text, "capital_question: Paris"));
    assert_non_null (strstr (text, "user_name: not answered (The client did not declare"));
    json_decref (result);
    //  Neither capability: nothing to ask, an answer at once.
    result = s_run ("cap-3", tool, NULL, "{}", 0, 1, &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_non_null (strstr (s_text_of (result), "capital_question: not answered"));
    json_decref (result);
    //  A tool that cannot go on without elicitation, for a client without it.
    result = s_run ("cap-4", "test_input_required_result_elicitation", NULL, "{}",
                    SB_JOB_CAP_SAMPLING, 1, &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    json_t *error = json_object_get (result, "rpc_error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32021);
    assert_non_null (json_object_get (json_object_get (json_object_get (error, "data"), "requiredCapabilities"),
                                      "elicitation"));
    assert_true (json_is_string (json_object_get (result, "error")));
    json_decref (result);

    result = s_run ("cap-5", "test_missing_capability", NULL, "{}", SB_JOB_CAP_ELICITATION, 1, &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    error = json_object_get (result, "rpc_error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32021);
    json_t *required = json_object_get (json_object_get (error, "data"), "requiredCapabilities");
    assert_true (json_is_object (json_object_get (required, "sampling")));
    assert_int_equal (json_object_size (required), 1);
    json_decref (result);
    result = s_run ("cap-6", "test_missing_capability", NULL, "{}", SB_JOB_CAP_SAMPLING, 1, &status);
    s_assert_input_required (result, (const char *[]) { "completion", NULL }, (const char *[]) { NULL });
    json_decref (result);
}

//  The round reaches the tool: state-ok only once a requestState came back.
static void
test_round (void **state)
{
    sb_status_t status;
    const char *answer = "{\"confirm\":{\"action\":\"accept\",\"content\":{\"ok\":true}}}";
    json_t *result = s_run ("rs-1", "test_input_required_result_request_state", NULL, answer,
                            ALL_CAPS, 2, &status);
    assert_non_null (strstr (s_text_of (result), "state-ok"));
    assert_non_null (strstr (s_text_of (result), "round 2"));
    json_decref (result);
    result = s_run ("rs-2", "test_input_required_result_request_state", NULL, answer, ALL_CAPS, 1, &status);
    assert_null (strstr (s_text_of (result), "state-ok"));
    json_decref (result);
}

//  Inputs that are not a JSON object: the job fails, it does not run.
static void
test_bad_inputs (void **state)
{
    sb_status_t status;
    json_t *result = s_run ("bad-1", "test_input_required_result_elicitation", NULL, "[1]",
                            ALL_CAPS, 1, &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_string_equal (json_string_value (json_object_get (result, "error")), "malformed job");
    json_decref (result);
    result = s_run ("bad-2", "test_input_required_result_elicitation", NULL, "{\"a\":1,\"a\":2}",
                    ALL_CAPS, 1, &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    json_decref (result);
}

//  A tool that changes data asks for confirmation the same way: first an
//  input-required result and no upstream call, then the call once confirmed;
//  a client without elicitation is not asked and the call goes ahead.
static void
test_confirmation (void **state)
{
    sb_status_t status;
    const char *args = "{\"title\":\"Call back\",\"priority\":\"high\"}";
    int created = fake_upstream_tasks_created (s_up);
    sb_job_t job = { .op = "tools/call", .connector = "sandbox-crm", .tool = "create_task",
                     .args = (char *) args, .inputs = "{}", .caps = SB_JOB_CAP_ELICITATION, .round = 1 };
    zframe_t *payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_broker, "cf-1", WAIT_MS, 0, &payload), 0);
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, "cf-1", WAIT_MS, &status, &text), 0);
    json_t *result = json_loads (text, 0, NULL);
    free (text);
    s_assert_input_required (result, (const char *[]) { "input_1", NULL }, (const char *[]) { NULL });
    json_decref (result);
    assert_int_equal (fake_upstream_tasks_created (s_up), created);

    job.inputs = "{\"input_1\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}}";
    job.round = 2;
    payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_broker, "cf-2", WAIT_MS, 0, &payload), 0);
    assert_int_equal (fake_broker_result (s_broker, "cf-2", WAIT_MS, &status, &text), 0);
    result = json_loads (text, 0, NULL);
    free (text);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"), "confirmation")),
                         "accepted");
    json_decref (result);
    assert_int_equal (fake_upstream_tasks_created (s_up), created + 1);

    job.inputs = "{}";
    job.caps = 0;
    job.round = 1;
    payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_broker, "cf-3", WAIT_MS, 0, &payload), 0);
    assert_int_equal (fake_broker_result (s_broker, "cf-3", WAIT_MS, &status, &text), 0);
    result = json_loads (text, 0, NULL);
    free (text);
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"), "confirmation")),
                         "not_asked");
    json_decref (result);
    assert_int_equal (fake_upstream_tasks_created (s_up), created + 2);
}

//  Without inputs (MCP up to 2025-11-25) the same fixture asks by ASK and
//  completes with the ANSWER.
static void
test_older_revision (void **state)
{
    sb_job_t job = { .op = "tools/call", .connector = "conformance",
                     .tool = "test_input_required_result_elicitation", .args = "{}" };
    zframe_t *payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_broker, "old-1", WAIT_MS, 0, &payload), 0);
    uint32_t ask_id = 0;
    char *text = NULL;
    assert_int_equal (fake_broker_ask (s_broker, "old-1", WAIT_MS, &ask_id, &text), 0);
    assert_non_null (strstr (text, "What is your name?"));
    free (text);
    assert_int_equal (fake_broker_answer (s_broker, "old-1", ask_id,
                                          "{\"result\":{\"action\":\"accept\",\"content\":{\"name\":\"Bob\"}}}"), 0);
    sb_status_t status;
    assert_int_equal (fake_broker_result (s_broker, "old-1", WAIT_MS, &status, &text), 0);
    json_t *result = json_loads (text, 0, NULL);
    free (text);
    assert_string_equal (s_text_of (result), "Hello, Bob!");
    json_decref (result);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_one_question),
        cmocka_unit_test (test_multi_round),
        cmocka_unit_test (test_multiple_inputs),
        cmocka_unit_test (test_capabilities),
        cmocka_unit_test (test_round),
        cmocka_unit_test (test_bad_inputs),
        cmocka_unit_test (test_confirmation),
        cmocka_unit_test (test_older_revision),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
