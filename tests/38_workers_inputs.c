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
    by ASK as older revisions do. The tasks extension's fixtures (greet,
    slow_compute, failing_job, protocol_error_job, confirm_delete,
    multi_input, test_tool_with_task): their results, the promote NOTIFY
    sent or not (and before the questions that belong to the task), the
    input-required ends with their keys, and jobs abandoned (deadline,
    CANCEL) while a fixture's timer is armed — the worker must neither
    answer them nor touch their freed state (the sanitizer build's worker
    aborts on that, and its exit status is checked at teardown). Every wait
    is on a message, never a sleep. */
#include <czmq.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_harness.h"
#include "sb_attr.h"

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
    snprintf (connectors, sizeof connectors, "%s", SB_TEST_CONNECTORS);
    const char *argv [] = {
        sb_harness_bin ("sb-worker-fixtures"), "--role", "api", "--broker", s_broker->endpoint,
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
    sb_job_t job = { .op = "tools/call", .connector = "conformance", .tool = sb_unconst (tool),
                     .args = sb_unconst (args ? args : "{}"), .inputs = sb_unconst (inputs),
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
                     .args = sb_unconst (args), .inputs = "{}", .caps = SB_JOB_CAP_ELICITATION, .round = 1 };
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

//  ---------------------------------------------------------------------
//  Task fixtures (the tasks extension)

#define PROMOTE_JSON    "{\"jsonrpc\":\"2.0\",\"method\":\"switchboard/promote\"}"

/*  What a job sent besides its RESULT. */
typedef struct {
    int promotes;               /* promote NOTIFYs */
    int64_t sent_at;            /* when the JOB went out */
    int64_t promoted_at;        /* when the first promote came (0: none) */
    int64_t ended_at;           /* when the RESULT came */
} s_seen_t;

//  Sends `tool` as a job (inputs NULL: an older revision's) with `timeout_ms`
//  and returns its parsed RESULT, counting promote NOTIFYs on the way; any
//  other message fails the test.
static json_t *
s_run_task (const char *corr_id, const char *tool, const char *args, const char *inputs,
            uint32_t caps, uint32_t round, uint32_t timeout_ms, sb_status_t *status, s_seen_t *seen)
{
    memset (seen, 0, sizeof *seen);
    sb_job_t job = { .op = "tools/call", .connector = "conformance", .tool = sb_unconst (tool),
                     .args = sb_unconst (args ? args : "{}"), .inputs = sb_unconst (inputs),
                     .caps = caps, .round = round };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    seen->sent_at = zclock_mono ();
    assert_int_equal (fake_broker_send_job (s_broker, corr_id, timeout_ms, 0, &payload), 0);
    while (true) {
        sb_msg_t msg = { 0 };
        if (fake_broker_recv (s_broker, &msg, (int) timeout_ms + WAIT_MS))
            fail_msg ("no RESULT for %s", corr_id);
        sb_job_result_t body = { 0 };
        if (strcmp (msg.corr_id, corr_id) != 0 || !msg.payload
        ||  sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload), &body))
            fail_msg ("%s: unexpected %s for %s", corr_id, sb_cmd_name (msg.command), msg.corr_id);
        if (msg.command == SB_CMD_NOTIFY) {
            assert_string_equal (body.result, PROMOTE_JSON);
            if (seen->promotes++ == 0)
                seen->promoted_at = zclock_mono ();
            sb_job_result_clear (&body);
            sb_msg_reset (&msg);
            continue;
        }
        if (msg.command != SB_CMD_RESULT)
            fail_msg ("%s: unexpected %s", corr_id, sb_cmd_name (msg.command));
        seen->ended_at = zclock_mono ();
        *status = msg.status;
        json_t *result = json_loads (body.result, 0, NULL);
        if (!result)
            fail_msg ("result is not JSON: %s", body.result);
        sb_job_result_clear (&body);
        sb_msg_reset (&msg);
        return result;
    }
}

//  Expects the promote NOTIFY of `corr_id` and then nothing for `quiet_ms`.
static void
s_expect_promote_only (const char *corr_id, int quiet_ms)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
    assert_int_equal (msg.command, SB_CMD_NOTIFY);
    assert_string_equal (msg.corr_id, corr_id);
    sb_msg_reset (&msg);
    if (fake_broker_recv (s_broker, &msg, quiet_ms) == 0)
        fail_msg ("unexpected %s for %s", sb_cmd_name (msg.command), msg.corr_id);
}

//  greet answers at once and never promotes; slow_compute promotes only
//  when it waits, and answers after the seconds asked.
static void
test_task_timed (void **state)
{
    sb_status_t status;
    s_seen_t seen;
    json_t *result = s_run_task ("tk-greet", "greet", "{\"name\":\"World\"}", "{}", ALL_CAPS, 1,
                                 WAIT_MS, &status, &seen);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_text_of (result), "Hello, World!");
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_int_equal (seen.promotes, 0);
    json_decref (result);
    //  The arguments are checked first: a name is required.
    result = s_run_task ("tk-greet-2", "greet", "{}", "{}", ALL_CAPS, 1, WAIT_MS, &status, &seen);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_int_equal (seen.promotes, 0);
    json_decref (result);

    result = s_run_task ("tk-sc-0", "slow_compute", "{\"seconds\":0,\"label\":\"instant\"}", "{}",
                         ALL_CAPS, 1, WAIT_MS, &status, &seen);
    assert_string_equal (s_text_of (result), "Computed instant in 0s");
    assert_int_equal (seen.promotes, 0);
    json_decref (result);

    result = s_run_task ("tk-sc-1", "slow_compute", "{\"seconds\":1,\"label\":\"wire\"}", "{}",
                         ALL_CAPS, 1, WAIT_MS, &status, &seen);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_text_of (result), "Computed wire in 1s");
    assert_int_equal (seen.promotes, 1);
    assert_true (seen.promoted_at - seen.sent_at < 500);        //  at once, not at the end
    assert_true (seen.ended_at - seen.sent_at >= 990);
    json_decref (result);

    //  Fractions of a second, the default label, an older revision's job.
    result = s_run_task ("tk-sc-2", "slow_compute", "{\"seconds\":0.25}", NULL, 0, 0, WAIT_MS,
                         &status, &seen);
    assert_string_equal (s_text_of (result), "Computed slow_compute in 0.25s");
    assert_int_equal (seen.promotes, 1);
    assert_true (seen.ended_at - seen.sent_at >= 240);
    json_decref (result);

    //  Out of the schema's range: refused before it runs.
    result = s_run_task ("tk-sc-3", "slow_compute", "{\"seconds\":601}", "{}", ALL_CAPS, 1,
                         WAIT_MS, &status, &seen);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_int_equal (seen.promotes, 0);
    json_decref (result);
}

//  failing_job: a tool execution error after about a second;
//  protocol_error_job: a JSON-RPC error. Both promote first.
static void
test_task_errors (void **state)
{
    sb_status_t status;
    s_seen_t seen;
    json_t *result = s_run_task ("tk-fail", "failing_job", "{}", "{}", ALL_CAPS, 1, WAIT_MS,
                                 &status, &seen);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text_of (result), "failing_job failed on purpose"));
    assert_int_equal (seen.promotes, 1);
    assert_true (seen.ended_at - seen.sent_at >= 990);
    json_decref (result);

    result = s_run_task ("tk-proto", "protocol_error_job", "{}", "{}", ALL_CAPS, 1, WAIT_MS,
                         &status, &seen);
    assert_int_equal (status, SB_STATUS_FAILED);
    json_t *error = json_object_get (result, "rpc_error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32603);
    assert_string_equal (json_string_value (json_object_get (error, "message")),
                         "protocol_error_job failed on purpose: an internal error, reported as a "
                         "JSON-RPC error");
    assert_string_equal (json_string_value (json_object_get (result, "error")),
                         json_string_value (json_object_get (error, "message")));
    assert_null (json_object_get (result, "content"));
    assert_int_equal (seen.promotes, 1);
    json_decref (result);
}

#define CONFIRM_YES     "\"confirm\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}"

//  confirm_delete: promotes, then its question ends the run input-required
//  (key "confirm", naming the file); the answer decides the result.
static void
test_task_confirm_delete (void **state)
{
    sb_status_t status;
    s_seen_t seen;
    const char *args = "{\"filename\":\"notes.txt\"}";
    json_t *result = s_run_task ("tk-cd-1", "confirm_delete", args, "{}", ALL_CAPS, 1, WAIT_MS,
                                 &status, &seen);
    assert_int_equal (status, SB_STATUS_OK);
    assert_int_equal (seen.promotes, 1);
    s_assert_input_required (result, (const char *[]) { "confirm", NULL }, (const char *[]) { NULL });
    json_t *params = json_object_get (json_object_get (json_object_get (result, "inputRequests"),
                                                       "confirm"), "params");
    assert_string_equal (json_string_value (json_object_get (params, "message")), "Delete notes.txt?");
    json_t *props = json_object_get (json_object_get (params, "requestedSchema"), "properties");
    assert_string_equal (json_string_value (json_object_get (json_object_get (props, "confirm"), "type")),
                         "boolean");
    json_decref (result);

    result = s_run_task ("tk-cd-2", "confirm_delete", args, "{" CONFIRM_YES "}", ALL_CAPS, 2, WAIT_MS,
                         &status, &seen);
    assert_string_equal (s_text_of (result), "Deleted notes.txt");
    assert_int_equal (seen.promotes, 1);
    json_decref (result);

    static const char *const no [] = {
        "{\"confirm\":{\"action\":\"decline\"}}",
        "{\"confirm\":{\"action\":\"accept\",\"content\":{\"confirm\":false}}}",
        "{\"confirm\":{\"action\":\"cancel\"}}",
    };
    for (size_t i = 0; i < 3; i++) {
        result = s_run_task ("tk-cd-3", "confirm_delete", args, no [i], ALL_CAPS, 2, WAIT_MS,
                             &status, &seen);
        assert_string_equal (s_text_of (result), "Kept notes.txt");
        json_decref (result);
    }
}

#define NAME_PARTIAL    "\"user_name\":{\"action\":\"accept\",\"content\":{\"name\":\"partial-1\",\"confirm\":true}}"
#define FRIEND_PARTIAL  "\"friend_name\":{\"action\":\"accept\",\"content\":{\"name\":\"partial-2\",\"confirm\":true}}"

//  multi_input: two questions of one stage, in one input-required end; a
//  partial answer asks the other one only; both → a result naming both.
static void
test_task_multi_input (void **state)
{
    sb_status_t status;
    s_seen_t seen;
    json_t *result = s_run_task ("tk-mi-1", "multi_input", "{}", "{}", ALL_CAPS, 1, WAIT_MS,
                                 &status, &seen);
    assert_int_equal (seen.promotes, 1);
    s_assert_input_required (result, (const char *[]) { "user_name", "friend_name", NULL },
                             (const char *[]) { NULL });
    json_decref (result);
    result = s_run_task ("tk-mi-2", "multi_input", "{}", "{" FRIEND_PARTIAL "}", ALL_CAPS, 2, WAIT_MS,
                         &status, &seen);
    s_assert_input_required (result, (const char *[]) { "user_name", NULL },
                             (const char *[]) { "friend_name", NULL });
    json_decref (result);
    result = s_run_task ("tk-mi-3", "multi_input", "{}", "{" NAME_PARTIAL "," FRIEND_PARTIAL "}",
                         ALL_CAPS, 3, WAIT_MS, &status, &seen);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_text_of (result), "Hello, partial-1 and partial-2!");
    assert_int_equal (seen.promotes, 1);
    json_decref (result);
    result = s_run_task ("tk-mi-4", "multi_input", "{}",
                         "{\"user_name\":{\"action\":\"decline\"},\"friend_name\":{\"action\":\"cancel\"}}",
                         ALL_CAPS, 2, WAIT_MS, &status, &seen);
    assert_string_equal (s_text_of (result), "Hello, someone and someone!");
    json_decref (result);
}

//  test_tool_with_task: asks first WITHOUT promoting; once the name is in,
//  promotes and greets a moment later. A refusal answers at once, no task.
static void
test_task_after_input (void **state)
{
    sb_status_t status;
    s_seen_t seen;
    json_t *result = s_run_task ("tk-tt-1", "test_tool_with_task", "{}", "{}", ALL_CAPS, 1, WAIT_MS,
                                 &status, &seen);
    assert_int_equal (seen.promotes, 0);
    s_assert_input_required (result, (const char *[]) { "user_name", NULL }, (const char *[]) { NULL });
    json_decref (result);

    result = s_run_task ("tk-tt-2", "test_tool_with_task", "{}", "{" NAME_ALICE "}", ALL_CAPS, 2,
                         WAIT_MS, &status, &seen);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_text_of (result), "Hello, Alice! (finished as a task)");
    assert_int_equal (seen.promotes, 1);
    assert_true (seen.ended_at - seen.promoted_at >= 250);
    json_decref (result);

    result = s_run_task ("tk-tt-3", "test_tool_with_task", "{}", "{\"user_name\":{\"action\":\"decline\"}}",
                         ALL_CAPS, 2, WAIT_MS, &status, &seen);
    assert_string_equal (s_text_of (result), "No name was given, so nobody was greeted.");
    assert_int_equal (seen.promotes, 0);
    json_decref (result);

    //  A client that cannot be asked: -32021, and no task.
    result = s_run_task ("tk-tt-4", "test_tool_with_task", "{}", "{}", SB_JOB_CAP_SAMPLING, 1,
                         WAIT_MS, &status, &seen);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (result, "rpc_error"), "code")),
                      -32021);
    assert_int_equal (seen.promotes, 0);
    json_decref (result);

    //  An older revision: ASK, then the promote, then the result.
    sb_job_t job = { .op = "tools/call", .connector = "conformance", .tool = "test_tool_with_task",
                     .args = "{}" };
    zframe_t *payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_broker, "tk-tt-5", WAIT_MS, 0, &payload), 0);
    uint32_t ask_id = 0;
    char *text = NULL;
    assert_int_equal (fake_broker_ask (s_broker, "tk-tt-5", WAIT_MS, &ask_id, &text), 0);
    assert_non_null (strstr (text, "What is your name?"));
    free (text);
    assert_int_equal (fake_broker_answer (s_broker, "tk-tt-5", ask_id,
                                          "{\"result\":{\"action\":\"accept\",\"content\":{\"name\":\"Bob\"}}}"), 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
    assert_int_equal (msg.command, SB_CMD_NOTIFY);
    sb_msg_reset (&msg);
    assert_int_equal (fake_broker_result (s_broker, "tk-tt-5", WAIT_MS, &status, &text), 0);
    assert_non_null (strstr (text, "Hello, Bob! (finished as a task)"));
    free (text);
}

//  Jobs abandoned while a fixture's timer is armed: nothing is answered,
//  the freed state is never touched when the timer would have fired, and
//  the worker goes on serving.
static void
test_task_abandoned (void **state)
{
    sb_status_t status;
    s_seen_t seen;
    //  The deadline passes before slow_compute's 500 ms.
    sb_job_t job = { .op = "tools/call", .connector = "conformance", .tool = "slow_compute",
                     .args = "{\"seconds\":0.5}", .inputs = "{}", .caps = ALL_CAPS, .round = 1 };
    zframe_t *payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_broker, "ab-deadline", 200, 0, &payload), 0);
    s_expect_promote_only ("ab-deadline", 400);
    //  test_tool_with_task's 300 ms after the promote, cut by the deadline.
    sb_job_t named = { .op = "tools/call", .connector = "conformance", .tool = "test_tool_with_task",
                       .args = "{}", .inputs = "{" NAME_ALICE "}", .caps = ALL_CAPS, .round = 2 };
    payload = sb_job_encode (&named);
    assert_int_equal (fake_broker_send_job (s_broker, "ab-named", 150, 0, &payload), 0);
    s_expect_promote_only ("ab-named", 350);

    //  CANCEL: RESULT cancelled at once, the 60 s timer released.
    job.args = "{\"seconds\":60}";
    payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_broker, "ab-cancel", 120000, 0, &payload), 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
    assert_int_equal (msg.command, SB_CMD_NOTIFY);
    sb_msg_reset (&msg);
    assert_int_equal (sb_msg_set_cancel (&msg, "ab-cancel"), 0);
    assert_int_equal (sb_msg_send (s_broker->router, &msg, s_broker->worker), 0);
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, "ab-cancel", 2000, &status, &text), 0);
    assert_int_equal (status, SB_STATUS_CANCELLED);
    free (text);

    //  Still serving, past the time the abandoned timers were due.
    json_t *result = s_run_task ("ab-after", "slow_compute", "{\"seconds\":0.3,\"label\":\"after\"}",
                                 "{}", ALL_CAPS, 1, WAIT_MS, &status, &seen);
    assert_string_equal (s_text_of (result), "Computed after in 0.3s");
    json_decref (result);
    result = s_run_task ("ab-ping", "greet", "{\"name\":\"again\"}", "{}", ALL_CAPS, 1, WAIT_MS,
                         &status, &seen);
    assert_string_equal (s_text_of (result), "Hello, again!");
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
        cmocka_unit_test (test_task_timed),
        cmocka_unit_test (test_task_errors),
        cmocka_unit_test (test_task_confirm_delete),
        cmocka_unit_test (test_task_multi_input),
        cmocka_unit_test (test_task_after_input),
        cmocka_unit_test (test_task_abandoned),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
