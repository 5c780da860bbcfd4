/*  gateway/sb_relay.c — notifications, questions and answers inside a call,
    and the logging levels of sessions. */
#include "sb_relay.h"
#include "sb_attr.h"
#include "sb_rpc.h"
#include "sb_session.h"
#include "sb_crypto.h"
#include "sb_job.h"
#include "sb_log.h"
#include "sb_payload.h"

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
        json_object_set (params, "progressToken", sb_unconst (progress_token));
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

//  A session's SB_CLIENT_* bits are the job's SB_JOB_CAP_* bits, so the
//  codec's answer to "which capability does this question need" is ours.
_Static_assert (SB_CLIENT_SAMPLING == SB_JOB_CAP_SAMPLING && SB_CLIENT_ELICITATION == SB_JOB_CAP_ELICITATION
                && SB_CLIENT_ROOTS == SB_JOB_CAP_ROOTS && SB_CLIENT_ELICIT_URL == SB_JOB_CAP_ELICIT_URL,
                "SB_CLIENT_* and SB_JOB_CAP_* must name the same capabilities");

//  A {"error": {code, message}} response for the worker.
static char *
s_refusal (int code, const char *message)
{
    return sb_payload_answer_error (code, message, NULL);
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
    unsigned needed = sb_payload_question_cap (method, params);

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
    if (result)
        return sb_payload_answer_result (result);
    //  The worker gets a well-formed error whatever the client sent.
    if (!sb_payload_rpc_error_ok (error))
        return sb_payload_answer_error (SB_RPC_INVALID_REQUEST, "the client answered with a malformed "
                                        "JSON-RPC error", NULL);
    return sb_payload_answer_error ((int) json_integer_value (json_object_get (error, "code")),
                                    json_string_value (json_object_get (error, "message")),
                                    json_object_get (error, "data"));
}

//  ---------------------------------------------------------------------------
//  Input-required results and requestState (MCP 2026-07-28)

#define S_STATE_VERSION     1
#define S_STATE_DOMAIN      "switchboard requestState 1"

//  The signature of `payload` (base64url text) for `binding` into `mac`.
//  The arguments enter as a digest of their canonical form (keys sorted),
//  so that key order on the retry does not matter; each field is length-
//  prefixed, so that no two bindings read the same.
static int
s_state_mac (const uint8_t *key, const sb_relay_binding_t *binding, const char *payload,
             uint8_t mac [SB_HMAC_SHA256_LEN])
{
    json_t *args = binding->args? json_loads (binding->args, JSON_DECODE_ANY, NULL): NULL;
    char *canonical = args? json_dumps (args, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY): NULL;
    json_decref (args);
    const char *text = canonical? canonical: binding->args? binding->args: "";
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (key, SB_HMAC_SHA256_LEN, (const uint8_t *) text, strlen (text), digest);
    free (canonical);
    char digest_hex [2 * SB_HMAC_SHA256_LEN + 1];
    sb_hex_encode (digest, sizeof digest, digest_hex);
    const char *tenant = binding->tenant? binding->tenant: "";
    const char *principal = binding->principal? binding->principal: "";
    const char *method = binding->method? binding->method: "";
    const char *name = binding->name? binding->name: "";
    size_t size = strlen (S_STATE_DOMAIN) + strlen (tenant) + strlen (principal) + strlen (method)
                + strlen (name) + strlen (payload) + sizeof digest_hex + 6 * 21;
    char *data = malloc (size);
    if (!data)
        return -1;
    int len = snprintf (data, size, "%s\n%zu:%s%zu:%s%zu:%s%zu:%s%s\n%s", S_STATE_DOMAIN,
                        strlen (tenant), tenant, strlen (principal), principal,
                        strlen (method), method, strlen (name), name, digest_hex, payload);
    if (len < 0 || (size_t) len >= size) {
        free (data);
        return -1;
    }
    sb_hmac_sha256 (key, SB_HMAC_SHA256_LEN, (const uint8_t *) data, (size_t) len, mac);
    free (data);
    return 0;
}

char *
sb_relay_state_encode (const uint8_t *key, const sb_relay_binding_t *binding,
                       int64_t expires, uint32_t round, const json_t *answers)
{
    json_t *doc = json_pack ("{s:i, s:I, s:i, s:O}", "v", S_STATE_VERSION, "exp", (json_int_t) expires,
                             "round", (int) round, "answers", sb_unconst (answers));
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    //  Base64url grows text by 4/3: refuse before encoding what cannot fit.
    char *payload = text && strlen (text) / 3 * 4 + 64 <= SB_MAX_REQUEST_STATE_LEN
                  ? sb_base64url_encode ((const uint8_t *) text, strlen (text)): NULL;
    free (text);
    uint8_t mac [SB_HMAC_SHA256_LEN];
    char *signature = payload && s_state_mac (key, binding, payload, mac) == 0
                    ? sb_base64url_encode (mac, sizeof mac): NULL;
    char *token = NULL;
    if (signature) {
        size_t payload_len = strlen (payload), signature_len = strlen (signature);
        size_t size = payload_len + signature_len + 2;
        token = size <= SB_MAX_REQUEST_STATE_LEN + 1? malloc (size): NULL;
        if (token) {            //  "<payload>.<signature>"
            memcpy (token, payload, payload_len);
            token [payload_len] = '.';
            memcpy (token + payload_len + 1, signature, signature_len + 1);
        }
    }
    free (payload);
    free (signature);
    return token;
}

int
sb_relay_state_decode (const uint8_t *key, const sb_relay_binding_t *binding,
                       const char *token, int64_t now, uint32_t *round,
                       json_t **answers, const char **why)
{
    *answers = NULL;
    *round = 0;
    *why = "The requestState is not valid for this request: it was altered, or it belongs to "
           "another tool, other arguments, another user or another account. Call again without it.";
    size_t len = token? strlen (token): 0;
    const char *dot = token? strchr (token, '.'): NULL;
    if (len == 0 || len > SB_MAX_REQUEST_STATE_LEN || !dot || dot == token)
        return -1;
    uint8_t given [SB_HMAC_SHA256_LEN + 1];
    size_t given_len = 0;
    if (sb_base64url_decode_strict (dot + 1, strlen (dot + 1), given, sizeof given, &given_len)
    ||  given_len != SB_HMAC_SHA256_LEN)
        return -1;
    char *payload = strndup (token, (size_t) (dot - token));
    uint8_t mac [SB_HMAC_SHA256_LEN];
    int rc = payload? s_state_mac (key, binding, payload, mac): -1;
    if (rc || !sb_crypto_equal (mac, given, sizeof mac)) {
        free (payload);
        return -1;
    }
    //  Signed by us: what follows fails only if this gateway's own encoder
    //  changed (another version) or the key leaked.
    *why = "The requestState could not be read; call again without it.";
    size_t size = strlen (payload) / 4 * 3 + 3, text_len = 0;
    char *text = malloc (size + 1);
    json_t *doc = NULL;
    if (text && sb_base64url_decode_strict (payload, strlen (payload), (uint8_t *) text, size, &text_len) == 0) {
        text [text_len] = 0;
        doc = json_loads (text, JSON_REJECT_DUPLICATES, NULL);
    }
    free (text);
    free (payload);
    json_t *exp = json_object_get (doc, "exp");
    json_t *rounds = json_object_get (doc, "round");
    json_t *got = json_object_get (doc, "answers");
    bool ok = json_integer_value (json_object_get (doc, "v")) == S_STATE_VERSION
           && json_is_integer (exp) && json_is_integer (rounds)
           && json_integer_value (rounds) >= 2 && json_integer_value (rounds) <= SB_MAX_INPUT_ROUNDS
           && json_is_object (got);
    const char *k;
    json_t *value;
    json_object_foreach (got, k, value)
        ok = ok && json_is_object (value);
    if (ok && json_integer_value (exp) < now) {
        *why = "The requestState has expired: the answers came too late. Call again without it.";
        ok = false;
    }
    if (ok) {
        *round = (uint32_t) json_integer_value (rounds);
        *answers = json_incref (got);
        *why = NULL;
    }
    json_decref (doc);
    return ok? 0: -1;
}

int
sb_relay_input_required (const uint8_t *payload, size_t size, unsigned caps,
                         json_t **requests, json_t **used)
{
    *requests = *used = NULL;
    sb_job_result_t result = { 0 };
    if (!payload || size == 0 || sb_job_result_decode (payload, size, &result) || !result.result) {
        sb_job_result_clear (&result);
        return 0;
    }
    sb_input_required_t asked = { 0 };
    const char *why = NULL;
    int rc = sb_payload_input_required_decode (result.result, strlen (result.result), &asked, &why);
    sb_job_result_clear (&result);
    if (rc <= 0) {
        if (rc < 0)
            sb_log_warn ("input_required_malformed", "%s", why);
        return rc;
    }
    const char *key;
    json_t *request;
    json_object_foreach (asked.requests, key, request) {
        unsigned needed = sb_payload_question_cap (json_string_value (json_object_get (request, "method")),
                                                   json_object_get (request, "params"));
        if (!(caps & needed)) {
            sb_log_info ("input_required_refused", "the client did not declare what question %s needs", key);
            sb_payload_input_required_clear (&asked);
            return -1;
        }
    }
    *requests = asked.requests;
    *used = asked.used;
    return 1;
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
