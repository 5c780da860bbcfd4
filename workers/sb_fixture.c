/*  workers/sb_fixture.c — the builtin fixture tools (see sb_fixture.h).

    Content fixtures answer at once. Timed fixtures (logging, progress,
    reconnection) keep an s_run_t with the next step's due time; one reactor
    timer fires for the earliest. Asking fixtures (sampling, elicitation)
    keep an s_run_t until the client's answer arrives. Question fixtures
    (S_INPUTS, the 2026-07-28 input-required ones) ask a table of keyed
    questions in stages, each stage once the one before is answered, and
    build their result from the answers. The texts and shapes follow the
    conformance suite's everything-server and scenario descriptions.

    Task fixtures (the tasks extension, SEP-2663) send the promote signal
    (sb_worker_job_promote) themselves: S_LATER ones promote at once and
    answer from a timer (greet, with no delay, answers at once and never
    promotes); S_INPUTS ones promote before asking (the questions then
    belong to the task) or, like test_tool_with_task, ask first and promote
    once every answer was an acceptance, then answer from a timer. Every
    timer belongs to its s_run_t, so abandoning the job releases it. */
#include "sb_fixture.h"
#include "sb_clock.h"
#include "sb_log.h"
#include "sb_text.h"

#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A 1x1 red PNG and a minimal WAV, as the conformance suite's server uses.
#define S_IMAGE "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
#define S_AUDIO "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

typedef enum {
    S_CONTENT,          /* answers fixed content at once */
    S_LOGGING,          /* three notifications/message, 50 ms apart */
    S_PROGRESS,         /* three notifications/progress, 50 ms apart */
    S_DELAY,            /* answers after 100 ms (test_reconnection) */
    S_SAMPLING,         /* asks sampling/createMessage */
    S_ELICIT,           /* asks elicitation/create */
    S_INPUTS,           /* asks keyed questions in stages (s_question_t) */
    S_LATER,            /* answers after a delay from its spec or its arguments */
} s_kind_t;

/*  When a task fixture sends the promote signal. */
typedef enum {
    S_PROMOTE_NEVER = 0,        /* an ordinary tool */
    S_PROMOTE_FIRST,            /* before anything else (S_LATER: when it waits at all) */
    S_PROMOTE_ACCEPTED,         /* S_INPUTS: once every question was accepted; then it
                                   answers after delay_ms */
} s_promote_t;

#define S_DELAY_FROM_ARGS   (-1)        /* delay_ms: the "seconds" argument */
#define S_MAX_DELAY_MS      600000      /* longest wait a fixture's arguments may ask */

#define S_MAX_QUESTIONS 4       /* questions one S_INPUTS fixture asks */

/*  One question of an S_INPUTS fixture. */
typedef struct {
    const char *key;            /* its inputRequests key */
    int stage;                  /* asked once every earlier stage is answered */
    bool optional;              /* a refusal is reported, not fatal */
    const char *request;        /* {"method": …, "params": …} */
} s_question_t;

typedef struct _s_run_t s_run_t;

typedef struct {
    const char *name;           /* fixture name */
    s_kind_t kind;              /* how it runs */
    const char *result;         /* S_CONTENT / S_DELAY: the CallToolResult; asks: result prefix */
    const s_question_t *questions;          /* S_INPUTS: up to S_MAX_QUESTIONS, NULL key ends */
    char *(*finish) (const s_run_t *run);   /* S_INPUTS, S_LATER: the result text */
} s_spec_t;

/*  How a task fixture runs, beyond its s_spec_t (same name). */
typedef struct {
    const char *name;           /* the fixture */
    s_promote_t promote;        /* when it sends the promote signal */
    int delay_ms;               /* S_LATER, S_PROMOTE_ACCEPTED: wait before the answer */
    bool is_error;              /* S_LATER: the result is a tool execution error */
    const char *rpc_error;      /* S_LATER: end with this JSON-RPC error instead */
} s_task_t;

#define S_ASK_NAME(message) \
    "{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"form\",\"message\":\"" message "\"," \
    "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}," \
    "\"required\":[\"name\"]}}}"
#define S_ASK_CONFIRM(message) \
    "{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"form\",\"message\":\"" message "\"," \
    "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}}," \
    "\"required\":[\"ok\"]}}}"
#define S_ASK_YES(message) \
    "{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"form\",\"message\":\"" message "\"," \
    "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"confirm\":{\"type\":\"boolean\"}}," \
    "\"required\":[\"confirm\"]}}}"
#define S_SAMPLE(text, tokens) \
    "{\"method\":\"sampling/createMessage\",\"params\":{\"messages\":[{\"role\":\"user\"," \
    "\"content\":{\"type\":\"text\",\"text\":\"" text "\"}}],\"maxTokens\":" #tokens "}}"
#define S_ROOTS "{\"method\":\"roots/list\",\"params\":{}}"

static const s_question_t s_q_elicitation [] = {
    { "user_name", 0, false, S_ASK_NAME ("What is your name?") }, { NULL, 0, false, NULL } };
static const s_question_t s_q_sampling [] = {
    { "capital_question", 0, false, S_SAMPLE ("What is the capital of France?", 100) }, { NULL, 0, false, NULL } };
static const s_question_t s_q_roots [] = {
    { "client_roots", 0, false, S_ROOTS }, { NULL, 0, false, NULL } };
static const s_question_t s_q_confirm [] = {
    { "confirm", 0, false, S_ASK_CONFIRM ("Please confirm") }, { NULL, 0, false, NULL } };
static const s_question_t s_q_multiple [] = {
    { "user_name", 0, false, S_ASK_NAME ("What is your name?") },
    { "greeting", 0, false, S_SAMPLE ("Generate a greeting", 50) },
    { "client_roots", 0, false, S_ROOTS }, { NULL, 0, false, NULL } };
static const s_question_t s_q_rounds [] = {
    { "step1", 0, false, S_ASK_NAME ("Step 1: What is your name?") },
    { "step2", 1, false, "{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"form\","
      "\"message\":\"Step 2: What is your favorite color?\",\"requestedSchema\":{\"type\":\"object\","
      "\"properties\":{\"color\":{\"type\":\"string\"}},\"required\":[\"color\"]}}}" }, { NULL, 0, false, NULL } };
static const s_question_t s_q_capabilities [] = {
    { "user_name", 0, true, S_ASK_NAME ("What is your name?") },
    { "capital_question", 0, true, S_SAMPLE ("What is the capital of France?", 100) }, { NULL, 0, false, NULL } };
static const s_question_t s_q_needs_sampling [] = {
    { "completion", 0, false, S_SAMPLE ("Say hello.", 20) }, { NULL, 0, false, NULL } };
static const s_question_t s_q_streaming [] = {
    { "confirm", 0, false, S_ASK_CONFIRM ("Please confirm to continue") }, { NULL, 0, false, NULL } };
//  Task fixtures. A message's {argument} is replaced by the call's argument.
static const s_question_t s_q_delete [] = {
    { "confirm", 0, false, S_ASK_YES ("Delete {filename}?") }, { NULL, 0, false, NULL } };
static const s_question_t s_q_two [] = {
    { "user_name", 0, false, S_ASK_NAME ("What is your name?") },
    { "friend_name", 0, false, S_ASK_NAME ("Whom shall I greet with you?") }, { NULL, 0, false, NULL } };

static char *s_finish_hello (const s_run_t *run);
static char *s_finish_sampled (const s_run_t *run);
static char *s_finish_roots (const s_run_t *run);
static char *s_finish_confirm (const s_run_t *run);
static char *s_finish_multiple (const s_run_t *run);
static char *s_finish_rounds (const s_run_t *run);
static char *s_finish_listing (const s_run_t *run);
static char *s_finish_greet (const s_run_t *run);
static char *s_finish_computed (const s_run_t *run);
static char *s_finish_failing (const s_run_t *run);
static char *s_finish_delete (const s_run_t *run);
static char *s_finish_two (const s_run_t *run);
static char *s_finish_task_hello (const s_run_t *run);

//  protocol_error_job's ending: a JSON-RPC error, not a result.
#define S_PROTOCOL_ERROR \
    "{\"code\":-32603,\"message\":\"protocol_error_job failed on purpose: an internal error, " \
    "reported as a JSON-RPC error\"}"

static const char s_elicit_1034 [] =
    "{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"form\","
    "\"message\":\"Please review and update the form fields with defaults\","
    "\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"description\":\"User name\",\"default\":\"John Doe\"},"
    "\"age\":{\"type\":\"integer\",\"description\":\"User age\",\"default\":30},"
    "\"score\":{\"type\":\"number\",\"description\":\"User score\",\"default\":95.5},"
    "\"status\":{\"type\":\"string\",\"description\":\"User status\","
    "\"enum\":[\"active\",\"inactive\",\"pending\"],\"default\":\"active\"},"
    "\"verified\":{\"type\":\"boolean\",\"description\":\"Verification status\",\"default\":true}},"
    "\"required\":[]}}}";

static const char s_elicit_1330 [] =
    "{\"method\":\"elicitation/create\",\"params\":{\"mode\":\"form\","
    "\"message\":\"Please select options from the enum fields\","
    "\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
    "\"untitledSingle\":{\"type\":\"string\",\"description\":\"Select one option\","
    "\"enum\":[\"option1\",\"option2\",\"option3\"]},"
    "\"titledSingle\":{\"type\":\"string\",\"description\":\"Select one option with titles\","
    "\"oneOf\":[{\"const\":\"value1\",\"title\":\"First Option\"},{\"const\":\"value2\",\"title\":\"Second Option\"},"
    "{\"const\":\"value3\",\"title\":\"Third Option\"}]},"
    "\"legacyEnum\":{\"type\":\"string\",\"description\":\"Select one option (legacy)\","
    "\"enum\":[\"opt1\",\"opt2\",\"opt3\"],\"enumNames\":[\"Option One\",\"Option Two\",\"Option Three\"]},"
    "\"untitledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options\",\"minItems\":1,"
    "\"maxItems\":3,\"items\":{\"type\":\"string\",\"enum\":[\"option1\",\"option2\",\"option3\"]}},"
    "\"titledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options with titles\","
    "\"minItems\":1,\"maxItems\":3,\"items\":{\"anyOf\":[{\"const\":\"value1\",\"title\":\"First Choice\"},"
    "{\"const\":\"value2\",\"title\":\"Second Choice\"},{\"const\":\"value3\",\"title\":\"Third Choice\"}]}}},"
    "\"required\":[]}}}";

static const s_spec_t s_specs [] = {
    { "test_simple_text", S_CONTENT,
      "{\"content\":[{\"type\":\"text\",\"text\":\"This is a simple text response for testing.\"}]}", NULL, NULL },
    { "test_image_content", S_CONTENT,
      "{\"content\":[{\"type\":\"image\",\"data\":\"" S_IMAGE "\",\"mimeType\":\"image/png\"}]}", NULL, NULL },
    { "test_audio_content", S_CONTENT,
      "{\"content\":[{\"type\":\"audio\",\"data\":\"" S_AUDIO "\",\"mimeType\":\"audio/wav\"}]}", NULL, NULL },
    { "test_embedded_resource", S_CONTENT,
      "{\"content\":[{\"type\":\"resource\",\"resource\":{\"uri\":\"test://embedded-resource\","
      "\"mimeType\":\"text/plain\",\"text\":\"This is an embedded resource content.\"}}]}", NULL, NULL },
    { "test_multiple_content_types", S_CONTENT,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Multiple content types test:\"},"
      "{\"type\":\"image\",\"data\":\"" S_IMAGE "\",\"mimeType\":\"image/png\"},"
      "{\"type\":\"resource\",\"resource\":{\"uri\":\"test://mixed-content-resource\","
      "\"mimeType\":\"application/json\",\"text\":\"{\\\"test\\\":\\\"data\\\",\\\"value\\\":123}\"}}]}", NULL, NULL },
    { "test_error_handling", S_CONTENT,
      "{\"content\":[{\"type\":\"text\",\"text\":\"This tool intentionally returns an error for testing\"}],"
      "\"isError\":true}", NULL, NULL },
    { "json_schema_2020_12_tool", S_CONTENT, NULL, NULL, NULL },    // echoes its arguments
    { "test_tool_with_logging", S_LOGGING,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Tool with logging executed successfully\"}]}", NULL, NULL },
    { "test_tool_with_progress", S_PROGRESS,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Tool with progress executed successfully\"}]}", NULL, NULL },
    { "test_reconnection", S_DELAY,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Reconnection test completed successfully. If you "
      "received this, the client properly reconnected after stream closure.\"}]}", NULL, NULL },
    { "test_sampling", S_SAMPLING, "LLM response: ", NULL, NULL },
    { "test_elicitation", S_ELICIT, "User response: ", NULL, NULL },
    { "test_elicitation_sep1034_defaults", S_ELICIT, "Elicitation completed: ", NULL, NULL },
    { "test_elicitation_sep1330_enums", S_ELICIT, "Elicitation completed: ", NULL, NULL },
    { "test_logging_tool", S_LOGGING,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Logging tool executed successfully\"}]}", NULL, NULL },
    { "test_input_required_result_elicitation", S_INPUTS, NULL, s_q_elicitation, s_finish_hello },
    { "test_input_required_result_sampling", S_INPUTS, NULL, s_q_sampling, s_finish_sampled },
    { "test_input_required_result_list_roots", S_INPUTS, NULL, s_q_roots, s_finish_roots },
    { "test_input_required_result_request_state", S_INPUTS, NULL, s_q_confirm, s_finish_confirm },
    { "test_input_required_result_tampered_state", S_INPUTS, NULL, s_q_confirm, s_finish_confirm },
    { "test_input_required_result_multiple_inputs", S_INPUTS, NULL, s_q_multiple, s_finish_multiple },
    { "test_input_required_result_multi_round", S_INPUTS, NULL, s_q_rounds, s_finish_rounds },
    { "test_input_required_result_capabilities", S_INPUTS, NULL, s_q_capabilities, s_finish_listing },
    { "test_missing_capability", S_INPUTS, NULL, s_q_needs_sampling, s_finish_sampled },
    { "test_streaming_elicitation", S_INPUTS, NULL, s_q_streaming, s_finish_listing },
    //  The tasks extension (SEP-2663; conformance 0.2's tasks-* scenarios), with s_tasks.
    { "greet", S_LATER, NULL, NULL, s_finish_greet },
    { "slow_compute", S_LATER, NULL, NULL, s_finish_computed },
    { "failing_job", S_LATER, NULL, NULL, s_finish_failing },
    { "protocol_error_job", S_LATER, NULL, NULL, NULL },
    { "confirm_delete", S_INPUTS, NULL, s_q_delete, s_finish_delete },
    { "multi_input", S_INPUTS, NULL, s_q_two, s_finish_two },
    { "test_tool_with_task", S_INPUTS, NULL, s_q_elicitation, s_finish_task_hello },
};

static const s_task_t s_tasks [] = {
    { "greet", S_PROMOTE_NEVER, 0, false, NULL },
    { "slow_compute", S_PROMOTE_FIRST, S_DELAY_FROM_ARGS, false, NULL },
    { "failing_job", S_PROMOTE_FIRST, SB_FIXTURE_FAIL_MS, true, NULL },
    { "protocol_error_job", S_PROMOTE_FIRST, SB_FIXTURE_RPC_ERROR_MS, false, S_PROTOCOL_ERROR },
    { "confirm_delete", S_PROMOTE_FIRST, 0, false, NULL },
    { "multi_input", S_PROMOTE_FIRST, 0, false, NULL },
    { "test_tool_with_task", S_PROMOTE_ACCEPTED, SB_FIXTURE_TASK_MS, false, NULL },
};

//  Every other fixture: never promotes.
static const s_task_t s_no_task = { NULL, S_PROMOTE_NEVER, 0, false, NULL };

/*  The argument of an S_INPUTS question's answer callback. */
typedef struct {
    s_run_t *run;               /* its run */
    size_t index;               /* the question in run->spec->questions */
} s_slot_t;

struct _s_run_t {
    sb_fixture_t *owner;        /* runner */
    sb_worker_job_t *job;       /* the job it answers */
    const s_spec_t *spec;       /* what it runs */
    const s_task_t *task;       /* how it runs as a task (s_no_task: never one) */
    int step;                   /* notifications sent so far */
    int64_t due;                /* monotonic ms of the next step, -1: waiting for an answer */
    int stage;                  /* S_INPUTS: the stage being asked */
    int waiting;                /* S_INPUTS: its questions not answered yet */
    json_t *answers;            /* S_INPUTS: key → the client's {"result"|"error": …} */
    json_t *args;               /* S_INPUTS, S_LATER: a copy of the call's arguments */
    s_slot_t slots [S_MAX_QUESTIONS];   /* S_INPUTS: callback arguments */
};

struct _sb_fixture_t {
    sb_reactor_t *reactor;      /* the worker's loop (borrowed) */
    int timer;                  /* fires at the earliest due step */
    zlistx_t *runs;             /* s_run_t still going (owned) */
};

static const s_spec_t *
s_find (const char *name)
{
    for (size_t i = 0; name && i < sizeof s_specs / sizeof s_specs [0]; i++)
        if (strcmp (s_specs [i].name, name) == 0)
            return &s_specs [i];
    return NULL;
}

bool
sb_fixture_known (const char *name)
{
    return s_find (name) != NULL;
}

static void
s_answer (sb_worker_job_t **job_p, json_t *result)
{
    char *text = result ? json_dumps (result, JSON_COMPACT) : NULL;
    json_decref (result);
    if (text)
        sb_worker_job_done (job_p, SB_STATUS_OK, text);
    else
        sb_worker_job_fail (job_p, "could not build the fixture result");
    free (text);
}

static json_t *
s_text_result (const char *text, bool is_error)
{
    return json_pack ("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text,
                      "isError", is_error);
}

static void
s_arm (sb_fixture_t *self)
{
    int64_t due = -1;
    for (s_run_t *run = zlistx_first (self->runs); run; run = zlistx_next (self->runs))
        if (run->due >= 0 && (due < 0 || run->due < due))
            due = run->due;
    sb_reactor_timer_set (self->reactor, self->timer, due);
}

//  Forgets `run` (its job stays alive unless the caller ends it).
static void
s_run_drop (s_run_t *run)
{
    sb_fixture_t *self = run->owner;
    sb_worker_job_set_data (run->job, NULL);
    void *handle = zlistx_find (self->runs, run);
    if (handle)
        zlistx_delete (self->runs, handle);
    json_decref (run->answers);
    json_decref (run->args);
    free (run);
    s_arm (self);
}

//  Ends the run's job with `result` (taken).
static void
s_run_finish (s_run_t *run, json_t *result)
{
    sb_worker_job_t *job = run->job;
    s_run_drop (run);
    s_answer (&job, result);
}

//  Sends the promote signal for the run's job (the gateway may make the
//  call a task; see sb_worker_job_promote).
static void
s_promote (s_run_t *run)
{
    if (sb_worker_job_promote (run->job))
        sb_log_warn ("fixture_promote_failed", "corr_id=%s fixture=%s",
                     sb_worker_job_corr_id (run->job), run->spec->name);
}

//  The end of an S_LATER run, or of an S_INPUTS run that waited after its
//  answers: the result its finish builds, or the spec's JSON-RPC error.
static void
s_run_end (s_run_t *run)
{
    const char *rpc_error = run->task->rpc_error;
    if (rpc_error) {
        sb_worker_job_t *job = run->job;
        s_run_drop (run);
        sb_worker_job_fail_rpc (&job, rpc_error);
        return;
    }
    char *text = run->spec->finish (run);
    s_run_finish (run, s_text_result (text ? text : "The tool could not build its answer.",
                                      !text || run->task->is_error));
    free (text);
}

//  One step of a timed fixture: a notification, or the final answer.
static void
s_run_step (s_run_t *run)
{
    if (run->spec->kind == S_LATER || run->spec->kind == S_INPUTS) {
        s_run_end (run);
        return;
    }
    static const char *const logs [] = {
        "Tool execution started", "Tool processing data", "Tool execution completed"
    };
    if (run->spec->kind == S_DELAY || run->step == 3) {
        json_error_t jerr;
        s_run_finish (run, json_loads (run->spec->result, 0, &jerr));
        return;
    }
    json_t *note = run->spec->kind == S_LOGGING
        ? json_pack ("{s:s, s:s, s:{s:s, s:s, s:s}}", "jsonrpc", "2.0",
                     "method", "notifications/message", "params", "level", "info",
                     "logger", "conformance", "data", logs [run->step])
        : json_pack ("{s:s, s:s, s:{s:i, s:i, s:s}}", "jsonrpc", "2.0",
                     "method", "notifications/progress", "params", "progress", run->step * 50,
                     "total", 100, "message", run->step == 0 ? "Completed step 0 of 100"
                     : run->step == 1 ? "Completed step 50 of 100" : "Completed step 100 of 100");
    char *text = note ? json_dumps (note, JSON_COMPACT) : NULL;
    json_decref (note);
    if (!text || sb_worker_job_notify (run->job, text))
        sb_log_warn ("fixture_notify_failed", "corr_id=%s fixture=%s step=%d",
                     sb_worker_job_corr_id (run->job), run->spec->name, run->step);
    free (text);
    run->step++;
    run->due = sb_clock_mono_ms () + (run->step == 3 ? 0 : SB_FIXTURE_STEP_MS);
    s_arm (run->owner);
}

static void
s_on_timer (sb_reactor_t *reactor, void *arg)
{
    sb_fixture_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    //  Steps may end runs, so collect the due ones first.
    s_run_t *due [64];
    size_t count = 0;
    for (s_run_t *run = zlistx_first (self->runs); run && count < 64; run = zlistx_next (self->runs))
        if (run->due >= 0 && run->due <= now)
            due [count++] = run;
    for (size_t i = 0; i < count; i++) {
        due [i]->due = -1;
        s_run_step (due [i]);
    }
    s_arm (self);
}

//  The client's answer to a sampling or elicitation request.
static void
s_on_answer (sb_worker_job_t *job, const char *response_json, void *arg)
{
    s_run_t *run = arg;
    json_error_t jerr;
    json_t *response = json_loads (response_json ? response_json : "", 0, &jerr);
    json_t *result = json_object_get (response, "result");
    json_t *error = json_object_get (response, "error");
    char *text = NULL;
    if (!json_is_object (result)) {
        const char *message = json_string_value (json_object_get (error, "message"));
        text = sb_strfmt ("The client did not answer the %s request: %s",
                          run->spec->kind == S_SAMPLING ? "sampling" : "elicitation",
                          message ? message : "no result");
        s_run_finish (run, s_text_result (text ? text : "no answer", true));
    }
    else
    if (run->spec->kind == S_SAMPLING) {
        json_t *content = json_object_get (result, "content");
        const char *said = json_string_value (json_object_get (content, "text"));
        if (!said && json_is_array (content))
            said = json_string_value (json_object_get (json_array_get (content, 0), "text"));
        text = sb_strfmt ("%s%s", run->spec->result, said ? said : "No response");
        s_run_finish (run, s_text_result (text ? text : "", false));
    }
    else {
        const char *action = json_string_value (json_object_get (result, "action"));
        json_t *content = json_object_get (result, "content");
        char *dumped = json_dumps (content ? content : json_object_get (result, "nothing"),
                                   JSON_COMPACT | JSON_ENCODE_ANY);
        text = sb_strfmt ("%saction=%s, content=%s", run->spec->result,
                          action ? action : "unknown", dumped && content ? dumped : "{}");
        free (dumped);
        s_run_finish (run, s_text_result (text ? text : "", false));
    }
    free (text);
    json_decref (response);
    (void) job;
}

//  ---------------------------------------------------------------------------
//  Question fixtures (S_INPUTS)

//  The client's result for question `key`, or NULL (unanswered or refused).
static json_t *
s_result_of (const s_run_t *run, const char *key)
{
    json_t *result = json_object_get (json_object_get (run->answers, key), "result");
    return json_is_object (result) ? result : NULL;
}

//  A string member of the content an elicitation returned, or NULL.
static const char *
s_elicited (const s_run_t *run, const char *key, const char *field)
{
    json_t *result = s_result_of (run, key);
    const char *action = json_string_value (json_object_get (result, "action"));
    if (!action || strcmp (action, "accept") != 0)
        return NULL;
    return json_string_value (json_object_get (json_object_get (result, "content"), field));
}

//  The text a sampling result carries, or NULL.
static const char *
s_sampled (const s_run_t *run, const char *key)
{
    json_t *content = json_object_get (s_result_of (run, key), "content");
    const char *said = json_string_value (json_object_get (content, "text"));
    if (!said && json_is_array (content))
        said = json_string_value (json_object_get (json_array_get (content, 0), "text"));
    return said;
}

//  "uri (name), …" of a roots result (new string), or NULL.
static char *
s_roots (const s_run_t *run, const char *key)
{
    json_t *roots = json_object_get (s_result_of (run, key), "roots");
    char *text = strdup ("");
    size_t index;
    json_t *root;
    json_array_foreach (roots, index, root) {
        const char *uri = json_string_value (json_object_get (root, "uri"));
        const char *name = json_string_value (json_object_get (root, "name"));
        char *more = text ? sb_strfmt ("%s%s%s%s%s%s", text, *text ? ", " : "", uri ? uri : "?",
                                       name ? " (" : "", name ? name : "", name ? ")" : "") : NULL;
        free (text);
        text = more;
    }
    return text;
}

//  One line about the answer to question `q`: what came back or why not.
static char *
s_describe (const s_run_t *run, const s_question_t *q)
{
    json_t *answer = json_object_get (run->answers, q->key);
    json_t *error = json_object_get (answer, "error");
    if (error)
        return sb_strfmt ("%s: not answered (%s)", q->key,
                          json_string_value (json_object_get (error, "message"))
                          ? json_string_value (json_object_get (error, "message")) : "error");
    if (strstr (q->request, "sampling/createMessage")) {
        const char *said = s_sampled (run, q->key);
        return sb_strfmt ("%s: %s", q->key, said ? said : "no text");
    }
    if (strstr (q->request, "roots/list")) {
        char *roots = s_roots (run, q->key);
        char *text = sb_strfmt ("%s: %s", q->key, roots && *roots ? roots : "no roots");
        free (roots);
        return text;
    }
    json_t *result = s_result_of (run, q->key);
    const char *action = json_string_value (json_object_get (result, "action"));
    char *content = json_dumps (json_object_get (result, "content"), JSON_COMPACT | JSON_ENCODE_ANY);
    char *text = sb_strfmt ("%s: action=%s, content=%s", q->key, action ? action : "unknown",
                            content ? content : "{}");
    free (content);
    return text;
}

static char *
s_finish_hello (const s_run_t *run)
{
    const char *name = s_elicited (run, "user_name", "name");
    return name ? sb_strfmt ("Hello, %s!", name)
                : strdup ("No name was given, so nobody was greeted.");
}

static char *
s_finish_sampled (const s_run_t *run)
{
    const char *said = s_sampled (run, run->spec->questions [0].key);
    return sb_strfmt ("LLM response: %s", said ? said : "No response");
}

static char *
s_finish_roots (const s_run_t *run)
{
    char *roots = s_roots (run, "client_roots");
    char *text = sb_strfmt ("Client roots: %s", roots && *roots ? roots : "none");
    free (roots);
    return text;
}

//  The request-state fixtures: "state-ok" once the call came back with a
//  requestState the gateway verified (round 2 or later).
static char *
s_finish_confirm (const s_run_t *run)
{
    json_t *result = s_result_of (run, "confirm");
    json_t *ok = json_object_get (json_object_get (result, "content"), "ok");
    const char *answer = json_is_true (ok) ? "confirmed" : "not confirmed";
    uint32_t round = sb_worker_job_round (run->job);
    if (round >= 2)
        return sb_strfmt ("The user %s; state-ok (requestState verified, round %u).", answer, round);
    if (round == 1)
        return sb_strfmt ("The user %s; no requestState came back with the answer.", answer);
    return sb_strfmt ("The user %s.", answer);
}

static char *
s_finish_multiple (const s_run_t *run)
{
    const char *name = s_elicited (run, "user_name", "name");
    const char *greeting = s_sampled (run, "greeting");
    char *roots = s_roots (run, "client_roots");
    char *text = sb_strfmt ("Hello, %s! Greeting: %s Roots: %s.", name ? name : "whoever you are",
                            greeting ? greeting : "none.", roots && *roots ? roots : "none");
    free (roots);
    return text;
}

static char *
s_finish_rounds (const s_run_t *run)
{
    const char *name = s_elicited (run, "step1", "name");
    const char *color = s_elicited (run, "step2", "color");
    return sb_strfmt ("%s's favorite color is %s.", name ? name : "Someone", color ? color : "unknown");
}

static char *
s_finish_listing (const s_run_t *run)
{
    char *text = strdup ("Answers:");
    for (const s_question_t *q = run->spec->questions; text && q->key; q++) {
        char *line = s_describe (run, q);
        char *more = line ? sb_strfmt ("%s %s;", text, line) : NULL;
        free (line);
        free (text);
        text = more;
    }
    return text;
}

//  A string argument of the call, or `otherwise`.
static const char *
s_arg_or (const s_run_t *run, const char *name, const char *otherwise)
{
    const char *value = json_string_value (json_object_get (run->args, name));
    return value ? value : otherwise;
}

//  True when the elicitation answered under `key` was accepted with
//  content.confirm true.
static bool
s_confirmed (const s_run_t *run, const char *key)
{
    json_t *result = s_result_of (run, key);
    const char *action = json_string_value (json_object_get (result, "action"));
    return action && strcmp (action, "accept") == 0
        && json_is_true (json_object_get (json_object_get (result, "content"), "confirm"));
}

static char *
s_finish_greet (const s_run_t *run)
{
    return sb_strfmt ("Hello, %s!", s_arg_or (run, "name", ""));
}

//  slow_compute: "Computed {label} in {seconds}s", whole seconds without a
//  decimal point.
static char *
s_finish_computed (const s_run_t *run)
{
    json_t *seconds = json_object_get (run->args, "seconds");
    const char *label = s_arg_or (run, "label", "slow_compute");
    if (json_is_integer (seconds))
        return sb_strfmt ("Computed %s in %llds", label, (long long) json_integer_value (seconds));
    return sb_strfmt ("Computed %s in %gs", label, json_number_value (seconds));
}

static char *
s_finish_failing (const s_run_t *run)
{
    return strdup ("failing_job failed on purpose: a tool execution error, reported as a result "
                   "with isError true.");
}

static char *
s_finish_delete (const s_run_t *run)
{
    return sb_strfmt ("%s %s", s_confirmed (run, "confirm") ? "Deleted" : "Kept",
                      s_arg_or (run, "filename", ""));
}

//  multi_input: both names, or "someone" for a question not accepted.
static char *
s_finish_two (const s_run_t *run)
{
    const char *user = s_elicited (run, "user_name", "name");
    const char *friend = s_elicited (run, "friend_name", "name");
    return sb_strfmt ("Hello, %s and %s!", user ? user : "someone", friend ? friend : "someone");
}

static char *
s_finish_task_hello (const s_run_t *run)
{
    const char *name = s_elicited (run, "user_name", "name");
    return name ? sb_strfmt ("Hello, %s! (finished as a task)", name)
                : strdup ("No name was given, so nobody was greeted.");
}

//  True when every question of the run was answered with an accepted
//  elicitation.
static bool
s_all_accepted (const s_run_t *run)
{
    for (const s_question_t *q = run->spec->questions; q->key; q++) {
        const char *action = json_string_value (json_object_get (s_result_of (run, q->key), "action"));
        if (!action || strcmp (action, "accept") != 0)
            return false;
    }
    return true;
}

//  The request of question `q` for this run (new string): params.message's
//  {argument} placeholders replaced by the call's string arguments.
static char *
s_question_request (const s_run_t *run, const s_question_t *q)
{
    json_t *request = json_loads (q->request, 0, NULL);
    json_t *params = json_object_get (request, "params");
    const char *message = json_string_value (json_object_get (params, "message"));
    if (!message || !strchr (message, '{')) {
        json_decref (request);
        return strdup (q->request);
    }
    char *text = strdup ("");
    const char *at = message;
    while (text && *at) {
        //  The text up to the next {name}, then the argument it names
        //  (a brace that names no string argument stays as it is).
        const char *open = strchr (at, '{');
        const char *close = open ? strchr (open, '}') : NULL;
        const char *value = NULL;
        char name [64];
        if (close && (size_t) (close - open) <= sizeof name) {
            snprintf (name, sizeof name, "%.*s", (int) (close - open - 1), open + 1);
            value = json_string_value (json_object_get (run->args, name));
        }
        size_t plain = open ? (size_t) (open - at) : strlen (at);
        char *more = sb_strfmt ("%s%.*s%s", text, (int) plain, at, value ? value : open ? "{" : "");
        free (text);
        text = more;
        at += plain + (value ? (size_t) (close - open + 1) : open ? 1 : 0);
    }
    char *dumped = NULL;
    if (text && json_object_set_new (params, "message", json_string (text)) == 0)
        dumped = json_dumps (request, JSON_COMPACT);
    free (text);
    json_decref (request);
    return dumped;
}

static void s_inputs_ask (s_run_t *run);

//  The client's response to one question of an S_INPUTS fixture.
static void
s_on_input (sb_worker_job_t *job, const char *response_json, void *arg)
{
    s_slot_t *slot = arg;
    s_run_t *run = slot->run;
    const s_question_t *q = &run->spec->questions [slot->index];
    json_t *response = json_loads (response_json ? response_json : "", 0, NULL);
    if (!json_is_object (response))
        response = json_pack ("{s:{s:i, s:s}}", "error", "code", -32603, "message", "unreadable answer");
    json_object_set_new (run->answers, q->key, response);
    if (--run->waiting > 0)
        return;
    //  The stage is complete: a required question refused ends the call.
    for (const s_question_t *each = run->spec->questions; each->key; each++) {
        json_t *error = json_object_get (json_object_get (run->answers, each->key), "error");
        if (!error || each->optional)
            continue;
        if (json_integer_value (json_object_get (error, "code")) == -32021) {
            //  The client lacks the capability: say so as 2026-07-28 wants.
            char *text = json_dumps (error, JSON_COMPACT);
            s_run_drop (run);
            sb_worker_job_fail_rpc (&job, text);
            free (text);
            return;
        }
        const char *message = json_string_value (json_object_get (error, "message"));
        char *text = sb_strfmt ("The client did not answer the question \"%s\": %s", each->key,
                                message ? message : "no result");
        s_run_finish (run, s_text_result (text ? text : "The client did not answer.", true));
        free (text);
        return;
    }
    run->stage++;
    s_inputs_ask (run);
}

//  Asks the questions of the run's stage, or finishes when none is left.
static void
s_inputs_ask (s_run_t *run)
{
    for (size_t i = 0; run->spec->questions [i].key; i++) {
        const s_question_t *q = &run->spec->questions [i];
        if (q->stage != run->stage)
            continue;
        run->slots [i].run = run;
        run->slots [i].index = i;
        char *request = s_question_request (run, q);
        int id = request ? sb_worker_job_ask_key (run->job, q->key, request, s_on_input,
                                                  &run->slots [i]) : -1;
        free (request);
        if (id < 0) {
            //  Questions asked before stay with the job, which ends here.
            s_run_finish (run, s_text_result ("switchboard could not ask the client (too many "
                                              "open questions, or the broker is gone).", true));
            return;
        }
        run->waiting++;
    }
    if (run->waiting > 0)
        return;
    if (run->task->promote == S_PROMOTE_ACCEPTED && s_all_accepted (run)) {
        //  The answers are in: the rest of the work is a task's.
        s_promote (run);
        run->due = sb_clock_mono_ms () + run->task->delay_ms;
        s_arm (run->owner);
        return;
    }
    s_run_end (run);
}

static const char *
s_arg (const json_t *args, const char *name)
{
    const char *value = json_string_value (json_object_get (args, name));
    return value ? value : "";
}

//  The request a sampling or elicitation fixture sends (new string).
static char *
s_ask_request (const s_spec_t *spec, const json_t *args)
{
    if (strcmp (spec->name, "test_elicitation_sep1034_defaults") == 0)
        return strdup (s_elicit_1034);
    if (strcmp (spec->name, "test_elicitation_sep1330_enums") == 0)
        return strdup (s_elicit_1330);
    json_t *request;
    if (spec->kind == S_SAMPLING)
        request = json_pack ("{s:s, s:{s:[{s:s, s:{s:s, s:s}}], s:i}}",
                             "method", "sampling/createMessage", "params", "messages",
                             "role", "user", "content", "type", "text", "text",
                             s_arg (args, "prompt"),
                             "maxTokens", 100);
    else
        request = json_pack ("{s:s, s:{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}}, s:[s]}}}",
                             "method", "elicitation/create", "params", "mode", "form",
                             "message", s_arg (args, "message"),
                             "requestedSchema", "type", "object", "properties", "response",
                             "type", "string", "description", "User's response",
                             "required", "response");
    char *text = request ? json_dumps (request, JSON_COMPACT) : NULL;
    json_decref (request);
    return text;
}

void
sb_fixture_start (sb_fixture_t *self, sb_worker_job_t *job, const char *name,
                  const json_t *args)
{
    const s_spec_t *spec = s_find (name);
    json_error_t jerr;
    if (!spec) {
        char text [256];
        snprintf (text, sizeof text, "This worker has no builtin fixture \"%.64s\".", name ? name : "");
        s_answer (&job, s_text_result (text, true));
        return;
    }
    if (spec->kind == S_CONTENT) {
        if (spec->result) {
            s_answer (&job, json_loads (spec->result, 0, &jerr));
            return;
        }
        char *dumped = json_dumps (args, JSON_COMPACT);
        char *text = sb_strfmt ("JSON Schema 2020-12 tool called with: %s", dumped ? dumped : "{}");
        free (dumped);
        s_answer (&job, s_text_result (text ? text : "", false));
        free (text);
        return;
    }
    s_run_t *run = calloc (1, sizeof *run);
    if (!run || !zlistx_add_end (self->runs, run)) {
        free (run);
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    run->owner = self;
    run->job = job;
    run->spec = spec;
    run->task = &s_no_task;
    for (size_t i = 0; i < sizeof s_tasks / sizeof s_tasks [0]; i++)
        if (strcmp (s_tasks [i].name, spec->name) == 0)
            run->task = &s_tasks [i];
    run->due = -1;
    sb_worker_job_set_data (job, run);
    run->args = args ? json_deep_copy (args) : json_object ();
    if (!run->args) {
        s_run_finish (run, s_text_result ("out of memory", true));
        return;
    }
    if (spec->kind == S_LOGGING || spec->kind == S_PROGRESS) {
        s_run_step (run);               // the first notification goes out at once
        return;
    }
    if (spec->kind == S_DELAY) {
        run->due = sb_clock_mono_ms () + 2 * SB_FIXTURE_STEP_MS;
        s_arm (self);
        return;
    }
    if (spec->kind == S_INPUTS) {
        run->answers = json_object ();
        if (!run->answers) {
            s_run_finish (run, s_text_result ("out of memory", true));
            return;
        }
        if (run->task->promote == S_PROMOTE_FIRST)
            s_promote (run);            //  before the questions, which belong to the task
        s_inputs_ask (run);
        return;
    }
    if (spec->kind == S_LATER) {
        int64_t delay = run->task->delay_ms;
        if (delay == S_DELAY_FROM_ARGS) {
            double seconds = json_number_value (json_object_get (args, "seconds"));
            delay = seconds <= 0 ? 0
                  : seconds * 1000 >= S_MAX_DELAY_MS ? S_MAX_DELAY_MS
                  : (int64_t) (seconds * 1000 + 0.5);
            if (seconds > 0 && delay == 0)
                delay = 1;
        }
        if (delay <= 0) {
            s_run_end (run);            //  nothing to wait for: no task either
            return;
        }
        if (run->task->promote == S_PROMOTE_FIRST)
            s_promote (run);
        run->due = sb_clock_mono_ms () + delay;
        s_arm (self);
        return;
    }
    char *request = s_ask_request (spec, args);
    int id = request ? sb_worker_job_ask (job, request, s_on_answer, run) : -1;
    free (request);
    if (id < 0)
        s_run_finish (run, s_text_result ("switchboard could not send the request to the client "
                                          "(too many open questions, or the broker is gone).", true));
}

bool
sb_fixture_abandon (sb_fixture_t *self, sb_worker_job_t *job)
{
    void *data = sb_worker_job_data (job);
    if (!data || !zlistx_find (self->runs, data))
        return false;
    s_run_drop (data);
    return true;
}

sb_fixture_t *
sb_fixture_new (sb_reactor_t *reactor)
{
    sb_fixture_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->runs = zlistx_new ();
    self->timer = sb_reactor_timer_new (reactor, s_on_timer, self);
    if (!self->runs || self->timer < 0) {
        sb_fixture_destroy (&self);
        return NULL;
    }
    return self;
}

void
sb_fixture_destroy (sb_fixture_t **self_p)
{
    sb_fixture_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    s_run_t *run;
    while (self->runs && (run = zlistx_first (self->runs))) {
        sb_worker_job_set_data (run->job, NULL);
        zlistx_delete (self->runs, zlistx_cursor (self->runs));
        json_decref (run->answers);
        json_decref (run->args);
        free (run);
    }
    zlistx_destroy (&self->runs);
    if (self->timer >= 0)
        sb_reactor_timer_free (self->reactor, self->timer);
    free (self);
    *self_p = NULL;
}
