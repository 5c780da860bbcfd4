/*  workers/sb_inputs.c — the questions of 2026-07-28 calls, settled in the
    worker against the answers the job carries (sb_inputs.h; PROTOCOL.md,
    "Input-required results"). Moved out of the worker core, which only
    calls in here when a job with inputs starts, asks, or has answers to
    deliver. */
#include "sb_inputs.h"
#include "sb_worker_int.h"
#include "sb_payload.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
sb_inputs_load (sb_worker_job_t *job)
{
    if (!job->spec.inputs)
        return 0;
    job->inputs = json_loads (job->spec.inputs, JSON_REJECT_DUPLICATES, NULL);
    job->used = json_array ();
    return json_is_object (job->inputs) && job->used ? 0 : -1;
}

//  True when `response` has the shape of a client's result for `method`.
static bool
s_response_ok (const char *method, const json_t *response)
{
    if (!json_is_object (response))
        return false;
    if (strcmp (method, "elicitation/create") == 0) {
        const char *action = json_string_value (json_object_get (response, "action"));
        json_t *content = json_object_get (response, "content");
        return action && (strcmp (action, "accept") == 0 || strcmp (action, "decline") == 0
                          || strcmp (action, "cancel") == 0)
            && (!content || json_is_object (content));
    }
    if (strcmp (method, "sampling/createMessage") == 0) {
        json_t *content = json_object_get (response, "content");
        return json_is_string (json_object_get (response, "role"))
            && (json_is_object (content) || json_is_array (content));
    }
    return json_is_array (json_object_get (response, "roots"));
}

static void
s_queue_settle (sb_worker_job_t *job)
{
    if (job->queued)
        return;
    char *corr_id = strdup (job->corr_id);
    if (corr_id && zlistx_add_end (job->worker->settle, corr_id))
        job->queued = true;
    else
        free (corr_id);
}

int
sb_inputs_ask (sb_worker_job_t *job, size_t slot, uint32_t id, const char *key,
               const char *request_json)
{
    char name [SB_MAX_INPUT_KEY_LEN + 16];
    if (!key) {
        snprintf (name, sizeof name, "input_%u", id);
        key = name;
    }
    size_t len = strlen (key);
    if (len == 0 || len > SB_MAX_INPUT_KEY_LEN)
        return -1;
    for (size_t i = 0; i < SB_MAX_ASKS_PER_JOB; i++)
        if (job->asks [i].id && strcmp (job->asks [i].key, key) == 0)
            return -1;
    size_t index;
    json_t *done;
    json_array_foreach (job->used, index, done)
        if (strcmp (json_string_value (done), key) == 0)
            return -1;
    json_t *request = json_loads (request_json, JSON_REJECT_DUPLICATES, NULL);
    const char *method = json_string_value (json_object_get (request, "method"));
    json_t *params = json_object_get (request, "params");
    if (!method || (params && !json_is_object (params))) {
        json_decref (request);
        return -1;
    }
    uint32_t needed = sb_payload_question_cap (method, params);
    json_t *required = sb_payload_question_required (needed);
    json_t *response = json_object_get (job->inputs, key);
    char *answer = NULL, *open = NULL;
    char message [160];
    if (!needed) {
        snprintf (message, sizeof message, "MCP clients are not asked %.64s", method);
        answer = sb_payload_answer_error (SB_PAYLOAD_NOT_ASKED, message, NULL);
    }
    else
    if (!(job->spec.caps & needed)) {
        snprintf (message, sizeof message, "The client did not declare the capability "
                  "%.64s needs.", method);
        json_t *data = required ? json_pack ("{s:O}", "requiredCapabilities", required) : NULL;
        answer = data ? sb_payload_answer_error (SB_PAYLOAD_MISSING_CAPABILITY, message, data) : NULL;
        json_decref (data);
    }
    else
    if (s_response_ok (method, response)) {
        answer = sb_payload_answer_result (response);
        if (answer && json_array_append_new (job->used, json_string (key))) {
            free (answer);
            answer = NULL;
        }
    }
    else {
        //  Not answered yet, or not answered properly: ask (again).
        json_t *empty = params ? NULL : json_object ();
        json_t *doc = json_pack ("{s:s, s:O}", "method", method, "params", params ? params : empty);
        open = doc ? json_dumps (doc, JSON_COMPACT) : NULL;
        json_decref (doc);
        json_decref (empty);
    }
    json_decref (required);
    json_decref (request);
    if (!answer && !open)
        return -1;
    memcpy (job->asks [slot].key, key, len + 1);
    job->asks [slot].answer = answer;
    job->asks [slot].request = open;
    s_queue_settle (job);
    return 0;
}

//  Ends `job` with its open questions as an input-required result.
static void
s_input_required (sb_worker_t *self, sb_worker_job_t *job)
{
    sb_input_required_t result = { .requests = json_object (), .used = json_incref (job->used) };
    for (size_t i = 0; result.requests && i < SB_MAX_ASKS_PER_JOB; i++)
        if (job->asks [i].id && job->asks [i].request)
            json_object_set_new (result.requests, job->asks [i].key,
                                 json_loads (job->asks [i].request, 0, NULL));
    char *text = sb_payload_input_required_encode (&result);
    sb_log_info ("job_input_required", "corr_id=%s round=%u questions=%zu", job->corr_id,
                 job->spec.round, json_object_size (result.requests));
    sb_payload_input_required_clear (&result);
    zhashx_delete (self->jobs, job->corr_id);
    if (!text)
        sb_worker_send_failed (self, job->corr_id, SB_STATUS_FAILED,
                               "the tool's questions could not be sent to the client");
    else
    if (sb_clock_mono_ms () < job->deadline_ms)
        sb_worker_send_result (self, job->corr_id, SB_STATUS_OK, text);
    free (text);
    if (self->role && self->role->abandon)
        self->role->abandon (self->role_state, job);
    sb_worker_job_free (&job);
}

//  Delivers a 2026-07-28 job's settled answers (each may ask more), then
//  ends it with an input-required result if a question is still open.
static void
s_settle (sb_worker_t *self, sb_worker_job_t *job)
{
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    memcpy (corr_id, job->corr_id, sizeof corr_id);
    while (true) {
        size_t slot = SB_MAX_ASKS_PER_JOB;
        for (size_t i = 0; i < SB_MAX_ASKS_PER_JOB && slot == SB_MAX_ASKS_PER_JOB; i++)
            if (job->asks [i].id && job->asks [i].answer)
                slot = i;
        if (slot == SB_MAX_ASKS_PER_JOB)
            break;
        if (++job->delivered > SB_WORKER_MAX_LOCAL_ANSWERS) {
            sb_worker_job_fail (&job, "the tool asked the client too many questions");
            return;
        }
        sb_worker_answer_fn *on_answer = job->asks [slot].on_answer;
        void *arg = job->asks [slot].arg;
        char *answer = job->asks [slot].answer;
        job->asks [slot].answer = NULL;
        job->asks [slot].id = 0;            //  free the slot before the callback may end the job
        on_answer (job, answer, arg);
        free (answer);
        job = zhashx_lookup (self->jobs, corr_id);
        if (!job)
            return;                         //  the role ended it
    }
    for (size_t i = 0; i < SB_MAX_ASKS_PER_JOB; i++)
        if (job->asks [i].id && job->asks [i].request) {
            s_input_required (self, job);
            return;
        }
}

void
sb_inputs_settle_all (sb_worker_t *self)
{
    char *corr_id;
    while ((corr_id = zlistx_first (self->settle))) {
        corr_id = zlistx_detach_cur (self->settle);
        sb_worker_job_t *job = zhashx_lookup (self->jobs, corr_id);
        free (corr_id);
        if (job) {
            job->queued = false;
            s_settle (self, job);
        }
    }
}
