/*  workers/sb_fixture.c — the builtin fixture tools (see sb_fixture.h).

    Content fixtures answer at once. Timed fixtures (logging, progress,
    reconnection) keep an s_run_t with the next step's due time; one reactor
    timer fires for the earliest. Asking fixtures (sampling, elicitation)
    keep an s_run_t until the client's answer arrives. The texts and shapes
    follow the conformance suite's everything-server. */
#include "workers/sb_fixture.h"
#include "common/sb_clock.h"
#include "common/sb_log.h"

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
} s_kind_t;

typedef struct {
    const char *name;           /* fixture name */
    s_kind_t kind;              /* how it runs */
    const char *result;         /* S_CONTENT / S_DELAY: the CallToolResult; asks: result prefix */
} s_spec_t;

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
      "{\"content\":[{\"type\":\"text\",\"text\":\"This is a simple text response for testing.\"}]}" },
    { "test_image_content", S_CONTENT,
      "{\"content\":[{\"type\":\"image\",\"data\":\"" S_IMAGE "\",\"mimeType\":\"image/png\"}]}" },
    { "test_audio_content", S_CONTENT,
      "{\"content\":[{\"type\":\"audio\",\"data\":\"" S_AUDIO "\",\"mimeType\":\"audio/wav\"}]}" },
    { "test_embedded_resource", S_CONTENT,
      "{\"content\":[{\"type\":\"resource\",\"resource\":{\"uri\":\"test://embedded-resource\","
      "\"mimeType\":\"text/plain\",\"text\":\"This is an embedded resource content.\"}}]}" },
    { "test_multiple_content_types", S_CONTENT,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Multiple content types test:\"},"
      "{\"type\":\"image\",\"data\":\"" S_IMAGE "\",\"mimeType\":\"image/png\"},"
      "{\"type\":\"resource\",\"resource\":{\"uri\":\"test://mixed-content-resource\","
      "\"mimeType\":\"application/json\",\"text\":\"{\\\"test\\\":\\\"data\\\",\\\"value\\\":123}\"}}]}" },
    { "test_error_handling", S_CONTENT,
      "{\"content\":[{\"type\":\"text\",\"text\":\"This tool intentionally returns an error for testing\"}],"
      "\"isError\":true}" },
    { "json_schema_2020_12_tool", S_CONTENT, NULL },    // echoes its arguments
    { "test_tool_with_logging", S_LOGGING,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Tool with logging executed successfully\"}]}" },
    { "test_tool_with_progress", S_PROGRESS,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Tool with progress executed successfully\"}]}" },
    { "test_reconnection", S_DELAY,
      "{\"content\":[{\"type\":\"text\",\"text\":\"Reconnection test completed successfully. If you "
      "received this, the client properly reconnected after stream closure.\"}]}" },
    { "test_sampling", S_SAMPLING, "LLM response: " },
    { "test_elicitation", S_ELICIT, "User response: " },
    { "test_elicitation_sep1034_defaults", S_ELICIT, "Elicitation completed: " },
    { "test_elicitation_sep1330_enums", S_ELICIT, "Elicitation completed: " },
};

typedef struct {
    sb_fixture_t *owner;        /* runner */
    sb_worker_job_t *job;       /* the job it answers */
    const s_spec_t *spec;       /* what it runs */
    int step;                   /* notifications sent so far */
    int64_t due;                /* monotonic ms of the next step, -1: waiting for an answer */
} s_run_t;

struct _sb_fixture_t {
    sb_reactor_t *reactor;      /* the worker's loop (borrowed) */
    int timer;                  /* fires at the earliest due step */
    zlistx_t *runs;             /* s_run_t still going (owned) */
};

//  Formats a new string (caller frees); NULL when out of memory.
static char *
s_strfmt (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static char *
s_strfmt (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int len = vsnprintf (NULL, 0, fmt, ap);
    va_end (ap);
    char *text = len >= 0 ? malloc ((size_t) len + 1) : NULL;
    if (text) {
        va_start (ap, fmt);
        vsnprintf (text, (size_t) len + 1, fmt, ap);
        va_end (ap);
    }
    return text;
}

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

//  One step of a timed fixture: a notification, or the final answer.
static void
s_run_step (s_run_t *run)
{
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
        text = s_strfmt ("The client did not answer the %s request: %s",
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
        text = s_strfmt ("%s%s", run->spec->result, said ? said : "No response");
        s_run_finish (run, s_text_result (text ? text : "", false));
    }
    else {
        const char *action = json_string_value (json_object_get (result, "action"));
        json_t *content = json_object_get (result, "content");
        char *dumped = json_dumps (content ? content : json_object_get (result, "nothing"),
                                   JSON_COMPACT | JSON_ENCODE_ANY);
        text = s_strfmt ("%saction=%s, content=%s", run->spec->result,
                                action ? action : "unknown", dumped && content ? dumped : "{}");
        free (dumped);
        s_run_finish (run, s_text_result (text ? text : "", false));
    }
    free (text);
    json_decref (response);
    (void) job;
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
        char *text = s_strfmt ("JSON Schema 2020-12 tool called with: %s", dumped ? dumped : "{}");
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
    run->due = -1;
    sb_worker_job_set_data (job, run);
    if (spec->kind == S_LOGGING || spec->kind == S_PROGRESS) {
        s_run_step (run);               // the first notification goes out at once
        return;
    }
    if (spec->kind == S_DELAY) {
        run->due = sb_clock_mono_ms () + 2 * SB_FIXTURE_STEP_MS;
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
        free (run);
    }
    zlistx_destroy (&self->runs);
    if (self->timer >= 0)
        sb_reactor_timer_free (self->reactor, self->timer);
    free (self);
    *self_p = NULL;
}
