/*  gateway/sb_relay.c — notifications, questions and answers inside a call,
    and the logging levels of sessions. */
#include "gateway/sb_relay.h"
#include "gateway/sb_rpc.h"
#include "gateway/sb_session.h"
#include "proto/sb_job.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_levels [] = { "debug", "info", "notice", "warning", "error",
                                   "critical", "alert", "emergency", NULL };

int
sb_relay_level (const char *name)
{
    for (int i = 0; name && s_levels [i]; i++)
        if (strcmp (name, s_levels [i]) == 0)
            return i;
    return -1;
}

//  The JSON object in a result map's `result`, with a string "method" and
//  params absent or an object; NULL otherwise.
static json_t *
s_message (const uint8_t *payload, size_t size)
{
    if (!payload || size == 0)
        return NULL;
    sb_job_result_t result = { 0 };
    if (sb_job_result_decode (payload, size, &result))
        return NULL;
    json_t *doc = result.result? json_loads (result.result, JSON_REJECT_DUPLICATES, NULL): NULL;
    sb_job_result_clear (&result);
    json_t *params = json_object_get (doc, "params");
    if (!json_is_object (doc) || !json_is_string (json_object_get (doc, "method"))
    ||  (params && !json_is_object (params))) {
        json_decref (doc);
        return NULL;
    }
    return doc;
}

//  {"jsonrpc":"2.0", ["id": id,] "method": method, "params": params} as text.
static char *
s_rebuild (const char *id, const char *method, json_t *params)
{
    json_t *out = json_pack ("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (out && id)
        json_object_set_new (out, "id", json_string (id));
    if (out && params)
        json_object_set (out, "params", params);
    char *text = out? json_dumps (out, JSON_COMPACT): NULL;
    json_decref (out);
    return text;
}

char *
sb_relay_notification (const uint8_t *payload, size_t size, const json_t *progress_token,
                       int min_level, const char **why)
{
    char *text = NULL;
    json_t *doc = s_message (payload, size);
    *why = "malformed";
    if (!doc || json_object_get (doc, "id"))
        goto out;
    const char *method = json_string_value (json_object_get (doc, "method"));
    json_t *params = json_object_get (doc, "params");
    if (strcmp (method, "notifications/progress") == 0) {
        if (!params || !json_is_number (json_object_get (params, "progress")))
            goto out;
        if (!progress_token) {
            *why = "no_progress_token";
            goto out;
        }
        json_object_set (params, "progressToken", (json_t *) progress_token);
    }
    else
    if (strcmp (method, "notifications/message") == 0) {
        int level = sb_relay_level (json_string_value (json_object_get (params, "level")));
        if (level < 0 || !json_object_get (params, "data"))
            goto out;
        if (level < min_level) {
            *why = "below_level";
            goto out;
        }
    }
    else {
        *why = "unsupported";
        goto out;
    }
    text = s_rebuild (NULL, method, params);
    *why = text? NULL: "out_of_memory";
out:
    json_decref (doc);
    return text;
}

//  A {"error": {code, message}} response for the worker.
static char *
s_refusal (int code, const char *message)
{
    json_t *doc = json_pack ("{s:{s:i, s:s}}", "error", "code", code, "message", message);
    if (!doc)   //  the method quoted was cut inside a UTF-8 sequence
        doc = json_pack ("{s:{s:i, s:s}}", "error", "code", code,
                         "message", "the client cannot answer this request");
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    return text;
}

int
sb_relay_ask (const uint8_t *payload, size_t size, const char *corr_id, uint32_t ask_id,
              unsigned caps, bool streamed, char **request, char **refusal)
{
    *request = *refusal = NULL;
    char message [SB_MAX_RPC_ERROR_LEN];
    json_t *doc = s_message (payload, size);
    if (!doc) {
        *refusal = s_refusal (SB_RPC_INVALID_REQUEST,
                              "the gateway could not read the question (not a JSON-RPC request)");
        return *refusal? 0: -1;
    }
    const char *method = json_string_value (json_object_get (doc, "method"));
    json_t *params = json_object_get (doc, "params");
    unsigned needed = 0;
    if (strcmp (method, "elicitation/create") == 0) {
        const char *mode = json_string_value (json_object_get (params, "mode"));
        needed = mode && strcmp (mode, "url") == 0? SB_CLIENT_ELICIT_URL: SB_CLIENT_ELICITATION;
    }
    else
    if (strcmp (method, "sampling/createMessage") == 0)
        needed = SB_CLIENT_SAMPLING;
    else
    if (strcmp (method, "roots/list") == 0)
        needed = SB_CLIENT_ROOTS;

    if (!needed)
        snprintf (message, sizeof message, "the gateway does not pass %.64s to clients", method);
    else
    if (!(caps & needed))
        snprintf (message, sizeof message, "the client cannot answer %.64s (it did not declare "
                  "the capability in its session)", method);
    else
    if (!streamed)
        snprintf (message, sizeof message, "the client cannot answer %.64s (the call has no "
                  "stream to ask on)", method);
    else {
        char id [SB_MAX_RELAY_ID_LEN + 1];
        snprintf (id, sizeof id, "%s%s:%u", SB_RELAY_ID_PREFIX, corr_id, ask_id);
        *request = s_rebuild (id, method, params);
        json_decref (doc);
        return *request? 0: -1;
    }
    json_decref (doc);
    *refusal = s_refusal (SB_RPC_METHOD_NOT_FOUND, message);
    return *refusal? 0: -1;
}

int
sb_relay_parse_id (const char *id, char *corr_id, uint32_t *ask_id)
{
    size_t prefix = strlen (SB_RELAY_ID_PREFIX);
    if (!id || strncmp (id, SB_RELAY_ID_PREFIX, prefix) != 0)
        return -1;
    const char *start = id + prefix;
    size_t len = 0;
    while (start [len] && start [len] != ':') {
        if (start [len] < 0x21 || start [len] > 0x7e)
            return -1;
        len++;
    }
    if (len == 0 || len > SB_MAX_CORR_ID_LEN || start [len] != ':')
        return -1;
    const char *digits = start + len + 1;
    size_t count = strspn (digits, "0123456789");
    if (count == 0 || count > 10 || digits [count] || digits [0] == '0')
        return -1;
    uint64_t value = 0;
    for (size_t i = 0; i < count; i++)
        value = value * 10 + (uint64_t) (digits [i] - '0');
    if (value > UINT32_MAX)
        return -1;
    memcpy (corr_id, start, len);
    corr_id [len] = 0;
    *ask_id = (uint32_t) value;
    return 0;
}

char *
sb_relay_answer (const json_t *response)
{
    json_t *result = json_object_get (response, "result");
    json_t *error = json_object_get (response, "error");
    if ((result != NULL) == (error != NULL))
        return NULL;
    json_t *doc = json_pack ("{s:O}", result? "result": "error", result? result: error);
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    return text;
}

//  ---------------------------------------------------------------------------
//  Logging levels

struct _sb_levels_t {
    zhashx_t *levels;           /* key → (void *) (level + 1) */
    char **order;               /* SB_MAX_LOG_LEVELS keys, oldest first from head */
    size_t head, count;         /* ring of `order` */
};

sb_levels_t *
sb_levels_new (void)
{
    sb_levels_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->levels = zhashx_new ();
    self->order = calloc (SB_MAX_LOG_LEVELS, sizeof (char *));
    if (!self->levels || !self->order) {
        sb_levels_destroy (&self);
        return NULL;
    }
    return self;
}

void
sb_levels_destroy (sb_levels_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_levels_t *self = *self_p;
    for (size_t i = 0; self->order && i < self->count; i++)
        free (self->order [(self->head + i) % SB_MAX_LOG_LEVELS]);
    free (self->order);
    zhashx_destroy (&self->levels);
    free (self);
    *self_p = NULL;
}

void
sb_levels_set (sb_levels_t *self, const char *key, int level)
{
    void *value = (void *) (intptr_t) (level + 1);
    if (zhashx_lookup (self->levels, key)) {
        zhashx_update (self->levels, key, value);
        return;
    }
    char *copy = strdup (key);
    if (!copy)
        return;
    if (self->count == SB_MAX_LOG_LEVELS) {
        char *oldest = self->order [self->head];
        zhashx_delete (self->levels, oldest);
        free (oldest);
        self->head = (self->head + 1) % SB_MAX_LOG_LEVELS;
        self->count--;
    }
    if (zhashx_insert (self->levels, key, value)) {
        free (copy);
        return;
    }
    self->order [(self->head + self->count) % SB_MAX_LOG_LEVELS] = copy;
    self->count++;
}

int
sb_levels_get (sb_levels_t *self, const char *key)
{
    intptr_t value = (intptr_t) zhashx_lookup (self->levels, key);
    return value? (int) value - 1: SB_LOG_LEVEL_DEBUG;
}

size_t
sb_levels_count (sb_levels_t *self)
{
    return self->count;
}
