/*  payload/sb_payload.c — encode and decode of the JSON shapes inside job
    results (sb_payload.h). Each shape's rules are written once, in the
    checks here, and the encoder refuses what the decoder would. */
#include "sb_payload.h"
#include "sb_attr.h"
#include "sb_json.h"

#include <string.h>

//  Parses `len` bytes of `json` into an object (new reference), or NULL.
static json_t *
s_object (const char *json, size_t len)
{
    if (!json)
        return NULL;
    json_t *doc = sb_json_parse (json, len, JSON_REJECT_DUPLICATES, NULL);
    if (doc && !json_is_object (doc)) {
        json_decref (doc);
        doc = NULL;
    }
    return doc;
}

//  True when `key` is 1..SB_MAX_INPUT_KEY_LEN bytes.
static bool
s_key_ok (const char *key)
{
    size_t len = key? strlen (key): 0;
    return len > 0 && len <= SB_MAX_INPUT_KEY_LEN;
}

//  ---------------------------------------------------------------------
//  The promote signal

bool
sb_payload_is_promote (const char *json, size_t len)
{
    //  A cheap look first: most notifications are progress and logs.
    static const char needle [] = SB_PAYLOAD_PROMOTE_METHOD;
    if (!json || len < sizeof needle - 1 || !memmem (json, len, needle, sizeof needle - 1))
        return false;
    json_t *note = s_object (json, len);
    const char *method = json_string_value (json_object_get (note, "method"));
    bool promote = note && !json_object_get (note, "id") && method
                && strcmp (method, SB_PAYLOAD_PROMOTE_METHOD) == 0;
    json_decref (note);
    return promote;
}

//  ---------------------------------------------------------------------
//  Questions

uint32_t
sb_payload_question_cap (const char *method, const json_t *params)
{
    if (!method)
        return 0;
    if (strcmp (method, "elicitation/create") == 0) {
        const char *mode = json_string_value (json_object_get (params, "mode"));
        return mode && strcmp (mode, "url") == 0? SB_JOB_CAP_ELICIT_URL: SB_JOB_CAP_ELICITATION;
    }
    if (strcmp (method, "sampling/createMessage") == 0)
        return SB_JOB_CAP_SAMPLING;
    if (strcmp (method, "roots/list") == 0)
        return SB_JOB_CAP_ROOTS;
    return 0;
}

json_t *
sb_payload_question_required (uint32_t cap)
{
    switch (cap) {
        case SB_JOB_CAP_ELICITATION:
            return json_pack ("{s:{}}", "elicitation");
        case SB_JOB_CAP_ELICIT_URL:
            return json_pack ("{s:{s:{}}}", "elicitation", "url");
        case SB_JOB_CAP_SAMPLING:
            return json_pack ("{s:{}}", "sampling");
        case SB_JOB_CAP_ROOTS:
            return json_pack ("{s:{}}", "roots");
        default:
            return NULL;
    }
}

//  ---------------------------------------------------------------------
//  Input-required results

const char *
sb_payload_input_requests_check (const json_t *requests)
{
    if (!json_is_object (requests) || json_object_size (requests) == 0)
        return "inputRequests must be an object with at least one question";
    if (json_object_size (requests) > SB_MAX_INPUT_REQUESTS)
        return "inputRequests holds more questions than one result may carry";
    const char *key;
    json_t *request;
    json_object_foreach (sb_unconst (requests), key, request) {
        if (!s_key_ok (key))
            return "each inputRequests key must be 1 to 64 bytes";
        json_t *params = json_object_get (request, "params");
        if (!json_is_object (request) || json_object_size (request) != 2 || !json_is_object (params)
        ||  !json_is_string (json_object_get (request, "method")))
            return "each question must be exactly {\"method\": string, \"params\": object}";
        if (!sb_payload_question_cap (json_string_value (json_object_get (request, "method")), params))
            return "a question's method must be elicitation/create, sampling/createMessage or roots/list";
    }
    return NULL;
}

//  Checks the inputRequests and inputsUsed of an input-required result;
//  NULL when they keep the rules, else the rule broken.
static const char *
s_input_required_check (const json_t *requests, const json_t *used)
{
    const char *why = sb_payload_input_requests_check (requests);
    if (why)
        return why;
    if (used && !json_is_array (used))
        return "inputsUsed must be an array of keys";
    if (json_array_size (used) > SB_MAX_INPUTS_USED)
        return "inputsUsed names more keys than one result may carry";
    size_t index;
    json_t *each;
    json_array_foreach (used, index, each)
        if (!s_key_ok (json_string_value (each)))
            return "each inputsUsed key must be a string of 1 to 64 bytes";
    return NULL;
}

char *
sb_payload_input_required_encode (const sb_input_required_t *self)
{
    if (!self || s_input_required_check (self->requests, self->used))
        return NULL;
    json_t *used = self->used? json_incref (self->used): json_array ();
    json_t *doc = used? json_pack ("{s:s, s:O, s:o}", "resultType", "input_required",
                                   "inputRequests", self->requests, "inputsUsed", used): NULL;
    char *text = doc? sb_json_dump (doc, NULL): NULL;
    json_decref (doc);
    return text;
}

int
sb_payload_input_required_decode (const char *json, size_t len, sb_input_required_t *out,
                                  const char **why)
{
    memset (out, 0, sizeof *out);
    *why = NULL;
    //  An ordinary result is far more common: look before parsing.
    static const char needle [] = "input_required";
    if (!json || !memmem (json, len, needle, sizeof needle - 1))
        return 0;
    json_t *doc = s_object (json, len);
    const char *type = json_string_value (json_object_get (doc, "resultType"));
    if (!type || strcmp (type, "input_required") != 0) {
        json_decref (doc);
        return 0;
    }
    json_t *requests = json_object_get (doc, "inputRequests");
    json_t *used = json_object_get (doc, "inputsUsed");
    *why = s_input_required_check (requests, used);
    if (!*why) {
        out->requests = json_incref (requests);
        out->used = used? json_incref (used): json_array ();
        if (!out->used) {
            sb_payload_input_required_clear (out);
            *why = "out of memory";
        }
    }
    json_decref (doc);
    return *why? -1: 1;
}

void
sb_payload_input_required_clear (sb_input_required_t *self)
{
    if (!self)
        return;
    json_decref (self->requests);
    json_decref (self->used);
    memset (self, 0, sizeof *self);
}

//  ---------------------------------------------------------------------
//  Failures

bool
sb_payload_rpc_error_ok (const json_t *error)
{
    size_t size = json_object_size (error);
    return json_is_object (error) && json_is_integer (json_object_get (error, "code"))
        && json_is_string (json_object_get (error, "message"))
        && size == (json_object_get (error, "data")? 3u: 2u);
}

char *
sb_payload_failure_encode (const sb_failure_t *self)
{
    if (!self || (self->rpc_error && !sb_payload_rpc_error_ok (self->rpc_error))
    ||  self->retry_after < 0 || self->retry_after > SB_MAX_RETRY_AFTER_S)
        return NULL;
    json_t *doc = json_pack ("{s:s}", "error", self->message? self->message: "failed");
    if (doc && self->rpc_error && json_object_set (doc, "rpc_error", self->rpc_error)) {
        json_decref (doc);
        doc = NULL;
    }
    if (doc && self->retry_after
    &&  json_object_set_new (doc, "retry_after", json_integer (self->retry_after))) {
        json_decref (doc);
        doc = NULL;
    }
    char *text = doc? sb_json_dump (doc, NULL): NULL;
    json_decref (doc);
    return text;
}

int
sb_payload_failure_decode (const char *json, size_t len, sb_failure_t *out, const char **why)
{
    memset (out, 0, sizeof *out);
    *why = NULL;
    json_t *doc = s_object (json, len);
    json_t *error = json_object_get (doc, "error");
    json_t *rpc_error = json_object_get (doc, "rpc_error");
    json_t *after = json_object_get (doc, "retry_after");
    if (!doc)
        *why = "a failure must be a JSON object";
    else
    if (error && !json_is_string (error))
        *why = "a failure's error must be a string";
    else
    if (rpc_error && !sb_payload_rpc_error_ok (rpc_error))
        *why = "a failure's rpc_error must be {\"code\": integer, \"message\": string[, \"data\"]}";
    else
    if (after && (!json_is_integer (after) || json_integer_value (after) < 1
                  || json_integer_value (after) > SB_MAX_RETRY_AFTER_S))
        *why = "a failure's retry_after must be an integer of seconds, 1 to 86400";
    else {
        out->message = error? strdup (json_string_value (error)): NULL;
        out->rpc_error = rpc_error? json_incref (rpc_error): NULL;
        out->retry_after = after? (int) json_integer_value (after): 0;
        if (error && !out->message) {
            sb_payload_failure_clear (out);
            *why = "out of memory";
        }
    }
    json_decref (doc);
    return *why? -1: 0;
}

void
sb_payload_failure_clear (sb_failure_t *self)
{
    if (!self)
        return;
    free (self->message);
    json_decref (self->rpc_error);
    memset (self, 0, sizeof *self);
}

//  ---------------------------------------------------------------------
//  Answers

char *
sb_payload_answer_result (const json_t *result)
{
    json_t *doc = result? json_pack ("{s:O}", "result", sb_unconst (result)): NULL;
    char *text = doc? sb_json_dump (doc, NULL): NULL;
    json_decref (doc);
    return text;
}

char *
sb_payload_answer_error (int code, const char *message, const json_t *data)
{
    json_t *error = json_pack ("{s:i, s:s}", "code", code, "message", message? message: "");
    if (!error)         //  the message was cut inside a UTF-8 sequence
        error = json_pack ("{s:i, s:s}", "code", code, "message", "the client cannot answer this request");
    if (error && data && json_object_set (error, "data", sb_unconst (data))) {
        json_decref (error);
        error = NULL;
    }
    json_t *doc = error? json_pack ("{s:o}", "error", error): NULL;
    char *text = doc? sb_json_dump (doc, NULL): NULL;
    json_decref (doc);
    return text;
}

int
sb_payload_answer_decode (const char *json, size_t len, json_t **result, json_t **error,
                          const char **why)
{
    *result = *error = NULL;
    *why = NULL;
    json_t *doc = s_object (json, len);
    json_t *got = json_object_get (doc, "result");
    json_t *failed = json_object_get (doc, "error");
    if (!doc)
        *why = "an answer must be a JSON object";
    else
    if (!got == !failed)
        *why = "an answer must hold exactly one of result and error";
    else
    if (failed && !sb_payload_rpc_error_ok (failed))
        *why = "an answer's error must be {\"code\": integer, \"message\": string[, \"data\"]}";
    else
    if (got)
        *result = json_incref (got);
    else
        *error = json_incref (failed);
    json_decref (doc);
    return *why? -1: 0;
}
