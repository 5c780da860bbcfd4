/*  gateway/sb_mcp_stateless.c — MCP 2026-07-28, the stateless revision:
    its request checks (Mcp-Method and Mcp-Name mirrored from the body,
    params._meta with protocol version, client capabilities and log level),
    server/discover, the tasks extension's requests, inputResponses and
    requestState, prompts/get asking for missing arguments, and the
    resultType and serverInfo every reply of that revision carries. The
    dispatch is sb_mcp.c's; see sb_mcp.h for the contract. */
#include "sb_mcp_int.h"
#include "sb_crypto.h"
#include "sb_relay.h"
#include "sb_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_BASE64_PREFIX    "=?base64?"
#define SB_BASE64_SUFFIX    "?="

bool
sb_mcp_input_params (sb_rpc_t *rpc, sb_mcp_outcome_t *out, json_t **responses_p, char **state_p)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    json_t *responses = json_object_get (rpc->params, "inputResponses");
    json_t *state = json_object_get (rpc->params, "requestState");
    if (responses && !json_is_object (responses)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "inputResponses must be an object: for each inputRequests key, the client's result.");
        return false;
    }
    const char *key;
    json_t *value;
    json_object_foreach (responses, key, value)
        if (!json_is_object (value)) {
            snprintf (message, sizeof message, "inputResponses.%.64s must be an object: the client's "
                      "result for that request.", key);
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            return false;
        }
    if (state && (!json_is_string (state) || json_string_length (state) > SB_MAX_REQUEST_STATE_LEN)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "requestState must be the string the server sent, unchanged.");
        return false;
    }
    if (!responses_p)
        return true;
    *state_p = state? strdup (json_string_value (state)): NULL;
    if (state && !*state_p) {
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return false;
    }
    *responses_p = json_incref (responses);
    return true;
}

//  ---------------------------------------------------------------------------
//  The tasks extension (SEP-2663, 2026-07-28 only)

bool
sb_mcp_is_task_method (const char *m)
{
    return strcmp (m, "tasks/get") == 0 || strcmp (m, "tasks/update") == 0
        || strcmp (m, "tasks/cancel") == 0;
}

void
sb_mcp_missing_tasks (sb_mcp_outcome_t *out, const json_t *id, const char *message)
{
    json_t *reply = json_pack ("{s:s, s:O, s:{s:i, s:s, s:{s:{s:{s:{}}}}}}", "jsonrpc", "2.0",
                               "id", id? sb_unconst (id): json_null (), "error",
                               "code", SB_RPC_MISSING_CAPABILITY, "message", message,
                               "data", "requiredCapabilities", "extensions", SB_MCP_TASKS_EXTENSION);
    char *body = reply? json_dumps (reply, JSON_COMPACT): NULL;
    json_decref (reply);
    if (body)
        sb_mcp_out_reply (out, 400, body);
    else
        sb_mcp_out_error (out, 500, id, SB_RPC_INTERNAL_ERROR, "Internal error");
}

bool
sb_mcp_task_id_ok (const json_t *id)
{
    if (!json_is_string (id))
        return false;
    const char *text = json_string_value (id);
    size_t len = json_string_length (id);
    if (len == 0 || len > SB_MAX_TASK_ID_TEXT)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '-' || c == '_'))
            return false;
    }
    return true;
}

void
sb_mcp_tasks_request (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    const char *m = rpc->method;
    if (!out->tasks) {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "%s needs the client to declare the " SB_MCP_TASKS_EXTENSION
                  " extension in _meta clientCapabilities.extensions.", m);
        sb_mcp_missing_tasks (out, rpc->id, message);
        return;
    }
    if (!json_is_object (rpc->params) || !json_is_string (json_object_get (rpc->params, "taskId"))) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "params.taskId must be the taskId (a string) "
                 "the server returned when it created the task.");
        return;
    }
    json_t *task_id = json_object_get (rpc->params, "taskId");
    if (!sb_mcp_task_id_ok (task_id)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "Unknown task: no task has this taskId.");
        return;
    }
    json_t *responses = NULL;
    if (strcmp (m, "tasks/update") == 0) {
        responses = json_object_get (rpc->params, "inputResponses");
        if (!json_is_object (responses)) {
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tasks/update needs params.inputResponses: "
                     "an object with the client's result for each inputRequests key it answers.");
            return;
        }
        const char *key;
        json_t *value;
        json_object_foreach (responses, key, value)
            if (!json_is_object (value)) {
                char message [SB_MAX_RPC_ERROR_LEN];
                snprintf (message, sizeof message, "inputResponses.%.64s must be an object: the client's "
                          "result for that request.", key);
                sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
                return;
            }
    }
    sb_mcp_out_become (out, SB_MCP_TASK);
    out->as.task.input_responses = json_incref (responses);
    out->as.task.task_id = strdup (json_string_value (task_id));
    out->as.task.id = json_deep_copy (rpc->id);
    if (!out->as.task.task_id || !out->as.task.id) {
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    out->as.task.method = strcmp (m, "tasks/get") == 0? "tasks/get":
                          strcmp (m, "tasks/update") == 0? "tasks/update": "tasks/cancel";
}

//  The required arguments of prompt `name` that `args` lacks (new array of
//  argument descriptors), or NULL when none is missing or no such prompt.
static json_t *
s_prompt_missing (const sb_mcp_env_t *env, const char *name, const json_t *args)
{
    json_t *prompts = env->connectors? sb_connectors_prompts (env->connectors): NULL;
    json_t *missing = NULL;
    size_t index;
    json_t *prompt;
    json_array_foreach (prompts, index, prompt) {
        if (strcmp (json_string_value (json_object_get (prompt, "name")), name) != 0)
            continue;
        size_t i;
        json_t *arg;
        json_array_foreach (json_object_get (prompt, "arguments"), i, arg) {
            const char *arg_name = json_string_value (json_object_get (arg, "name"));
            if (!json_is_true (json_object_get (arg, "required")) || json_object_get (args, arg_name))
                continue;
            if (!missing)
                missing = json_array ();
            json_array_append (missing, arg);
        }
        break;
    }
    json_decref (prompts);
    return missing;
}

bool
sb_mcp_prompt_inputs (sb_rpc_t *rpc, const sb_mcp_env_t *env, const char *name, json_t **args,
                 sb_mcp_outcome_t *out)
{
    json_t *missing = s_prompt_missing (env, name, *args);
    if (!missing)
        return false;
    char message [SB_MAX_RPC_ERROR_LEN];
    json_t *responses = json_object_get (rpc->params, "inputResponses");
    json_t *answer = json_object_get (responses, SB_MCP_PROMPT_INPUT_KEY);
    const char *action = json_string_value (json_object_get (answer, "action"));
    json_t *content = json_object_get (answer, "content");
    if (action && strcmp (action, "accept") != 0) {
        snprintf (message, sizeof message, "Prompt \"%.64s\" needs the argument \"%.64s\", and the "
                  "user did not give it (%.16s).", name,
                  json_string_value (json_object_get (json_array_get (missing, 0), "name")), action);
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        json_decref (missing);
        return true;
    }
    //  Fill in what the user gave; every other argument stays as sent.
    json_t *filled = *args? json_deep_copy (*args): json_object ();
    json_t *still = json_array ();
    size_t index;
    json_t *arg;
    json_array_foreach (missing, index, arg) {
        const char *arg_name = json_string_value (json_object_get (arg, "name"));
        json_t *value = json_object_get (content, arg_name);
        if (json_is_string (value))
            json_object_set (filled, arg_name, value);
        else
            json_array_append (still, arg);
    }
    json_decref (missing);
    json_decref (*args);
    *args = filled;
    if (json_array_size (still) == 0 || !(out->caps & SB_CLIENT_ELICITATION)) {
        json_decref (still);
        return false;                   //  render, or refuse the missing argument
    }
    json_t *properties = json_object ();
    json_t *required = json_array ();
    json_array_foreach (still, index, arg) {
        json_t *description = json_object_get (arg, "description");
        json_t *title = json_object_get (arg, "title");
        json_t *property = json_pack ("{s:s}", "type", "string");
        if (json_is_string (title))
            json_object_set (property, "title", title);
        if (json_is_string (description))
            json_object_set (property, "description", description);
        json_object_set_new (properties, json_string_value (json_object_get (arg, "name")), property);
        json_array_append (required, json_object_get (arg, "name"));
    }
    json_t *first = json_object_get (json_array_get (still, 0), "description");
    if (json_array_size (still) == 1 && json_is_string (first))
        snprintf (message, sizeof message, "%.200s", json_string_value (first));
    else
        snprintf (message, sizeof message, "Prompt \"%.64s\" needs %zu more argument%s.", name,
                  json_array_size (still), json_array_size (still) == 1? "": "s");
    json_decref (still);
    json_t *result = json_pack ("{s:s, s:{s:{s:s, s:{s:s, s:s, s:{s:s, s:o, s:o}}}}}",
        "resultType", "input_required",
        "inputRequests", SB_MCP_PROMPT_INPUT_KEY, "method", "elicitation/create",
        "params", "mode", "form", "message", message,
        "requestedSchema", "type", "object", "properties", properties, "required", required);
    if (!result)
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
    else
        sb_mcp_out_result (out, rpc->id, result);
    return true;
}

//  ---------------------------------------------------------------------------
//  MCP 2026-07-28: per-request metadata, mirrored headers, server/discover

//  A -32020 reply (HTTP 400) whose message names the header.
static void
s_mismatch (sb_mcp_outcome_t *out, const json_t *id, const char *header, const char *problem)
{
    //  Precisions bound every part, so the sentence always fits (22 + 32 +
    //  8 + 160 + 1 bytes < SB_MAX_RPC_ERROR_LEN): never cut mid-word.
    char message [SB_MAX_RPC_ERROR_LEN];
    snprintf (message, sizeof message, "Header mismatch: the %.32s header %.160s.", header, problem);
    sb_mcp_out_error (out, 400, id, SB_RPC_HEADER_MISMATCH, message);
}

//  True when `len` bytes of `value` are a valid header value (visible
//  ASCII, space, tab).
static bool
s_header_chars_ok (const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) value [i];
        if (!(c == '\t' || (c >= 0x20 && c <= 0x7e)))
            return false;
    }
    return true;
}

//  Decodes an Mcp-Name value (plain, or =?base64?…?= with standard base64)
//  into `out` (NUL-terminated). Returns its length, or -1 when malformed.
static int
s_header_decode (const char *value, size_t len, char *out, size_t size)
{
    size_t prefix = strlen (SB_BASE64_PREFIX), suffix = strlen (SB_BASE64_SUFFIX);
    if (len >= prefix + suffix && memcmp (value, SB_BASE64_PREFIX, prefix) == 0
    &&  memcmp (value + len - suffix, SB_BASE64_SUFFIX, suffix) == 0) {
        char url [SB_MAX_MCP_NAME_HEADER];
        size_t n = len - prefix - suffix;
        if (n == 0 || n >= sizeof url)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char c = value [prefix + i];
            url [i] = c == '+'? '-': c == '/'? '_': c;
            if (c == '-' || c == '_')
                return -1;      //  base64url letters are not standard base64
        }
        size_t decoded = 0;
        if (sb_base64url_decode (url, n, (uint8_t *) out, size - 1, &decoded))
            return -1;
        out [decoded] = 0;
        return (int) decoded;
    }
    if (len >= size)
        return -1;
    memcpy (out, value, len);
    out [len] = 0;
    return (int) len;
}

bool
sb_mcp_stateless_check (sb_rpc_t *rpc, const sb_mcp_headers_t *h, sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    const char *m = rpc->method;
    if (!h->method) {
        s_mismatch (out, rpc->id, "Mcp-Method", "is missing");
        return false;
    }
    if (h->method_len != strlen (m) || memcmp (h->method, m, h->method_len) != 0) {
        snprintf (message, sizeof message, "value '%.*s' does not match the body's method '%.64s'",
                  (int) (h->method_len < 64? h->method_len: 64), h->method, m);
        s_mismatch (out, rpc->id, "Mcp-Method", message);
        return false;
    }
    const char *key = strcmp (m, "tools/call") == 0 || strcmp (m, "prompts/get") == 0? "name":
                      strcmp (m, "resources/read") == 0? "uri":
                      sb_mcp_is_task_method (m)? "taskId": NULL;
    if (key) {
        if (!h->name) {
            s_mismatch (out, rpc->id, "Mcp-Name", "is missing");
            return false;
        }
        char name [SB_MAX_MCP_NAME_HEADER];
        int len = h->name_len < SB_MAX_MCP_NAME_HEADER && s_header_chars_ok (h->name, h->name_len)
                ? s_header_decode (h->name, h->name_len, name, sizeof name): -1;
        if (len < 0) {
            s_mismatch (out, rpc->id, "Mcp-Name", "is malformed (invalid characters or base64)");
            return false;
        }
        json_t *body_value = json_object_get (rpc->params, key);
        if (!json_is_string (body_value) || json_string_length (body_value) != (size_t) len
        ||  memcmp (json_string_value (body_value), name, (size_t) len) != 0) {
            snprintf (message, sizeof message, "does not match the body's params.%s", key);
            s_mismatch (out, rpc->id, "Mcp-Name", message);
            return false;
        }
    }
    json_t *meta = json_is_object (rpc->params)? json_object_get (rpc->params, "_meta"): NULL;
    json_t *version = json_object_get (meta, SB_META_VERSION);
    json_t *caps = json_object_get (meta, SB_META_CAPS);
    json_t *level = json_object_get (meta, SB_META_LOG_LEVEL);
    if (!json_is_object (meta) || !json_is_string (version) || !json_is_object (caps)) {
        sb_mcp_out_error (out, 400, rpc->id, SB_RPC_INVALID_PARAMS,
                 "MCP 2026-07-28 requests need params._meta with \"" SB_META_VERSION "\" (a string) "
                 "and \"" SB_META_CAPS "\" (an object).");
        return false;
    }
    if (json_string_length (version) != h->protocol_len
    ||  memcmp (json_string_value (version), h->protocol, h->protocol_len) != 0) {
        s_mismatch (out, rpc->id, "MCP-Protocol-Version", "does not match params._meta's protocolVersion");
        return false;
    }
    out->caps = sb_session_caps_from_json (caps);
    json_t *extensions = json_object_get (caps, "extensions");
    out->tasks = json_is_object (json_object_get (extensions, SB_MCP_TASKS_EXTENSION));
    if (level) {
        int value = sb_relay_level (json_string_value (level));
        if (value < 0) {
            sb_mcp_out_error (out, 400, rpc->id, SB_RPC_INVALID_PARAMS,
                     "\"" SB_META_LOG_LEVEL "\" must be one of debug, info, notice, warning, error, "
                     "critical, alert, emergency.");
            return false;
        }
        out->log_level = value + 1;
    }
    return true;
}

void
sb_mcp_discover (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    //  2026-07-28 delivers list_changed and resources/updated on
    //  subscriptions/listen streams (sb_notify.c), after a reload.
    json_t *caps = json_pack ("{s:{s:b}, s:{}, s:{s:b, s:b}, s:{s:b}, s:{}, s:{s:{}}}",
                              "tools", "listChanged", 1, "logging",
                              "resources", "subscribe", 1, "listChanged", 1,
                              "prompts", "listChanged", 1, "completions",
                              "extensions", SB_MCP_TASKS_EXTENSION);
    json_t *versions = sb_mcp_supported ();
    sb_mcp_out_result (out, rpc->id, json_pack ("{s:o, s:o, s:s}", "supportedVersions", versions,
                                       "capabilities", caps, "instructions", sb_mcp_instructions));
}

char *
sb_mcp_unsupported_version (const json_t *id, const char *requested, size_t len)
{
    json_t *versions = sb_mcp_supported ();
    char text [72];
    snprintf (text, sizeof text, "%.*s", (int) (len < 64? len: 64), requested);
    json_t *asked = json_stringn (text, strlen (text));
    if (!asked)
        asked = json_string ("");       //  not UTF-8
    json_t *reply = json_pack ("{s:s, s:O, s:{s:i, s:s, s:{s:o, s:o}}}", "jsonrpc", "2.0",
        "id", id? sb_unconst (id): json_null (),
        "error", "code", SB_RPC_UNSUPPORTED_VERSION, "message", "Unsupported protocol version",
        "data", "supported", versions, "requested", asked);
    char *body = reply? json_dumps (reply, JSON_COMPACT): NULL;
    json_decref (reply);
    return body;
}

char *
sb_mcp_stateless_reply (char *body, const char *version, bool cacheable)
{
    json_t *reply = body? json_loads (body, 0, NULL): NULL;
    json_t *result = json_object_get (reply, "result");
    json_t *error = json_object_get (reply, "error");
    if (json_is_object (result)) {
        if (!json_is_string (json_object_get (result, "resultType")))
            json_object_set_new (result, "resultType", json_string ("complete"));
        if (cacheable) {
            json_object_set_new (result, "ttlMs", json_integer (0));
            json_object_set_new (result, "cacheScope", json_string ("private"));
        }
        json_t *meta = json_object_get (result, "_meta");
        if (!meta) {
            meta = json_object ();
            json_object_set_new (result, "_meta", meta);
        }
        if (json_is_object (meta))
            json_object_set_new (meta, SB_META_SERVER_INFO, json_pack ("{s:s, s:s}",
                                 "name", "switchboard", "version", version? version: "0"));
    }
    else
    if (json_is_object (error)
    &&  json_integer_value (json_object_get (error, "code")) == SB_RPC_RESOURCE_NOT_FOUND)
        json_object_set_new (error, "code", json_integer (SB_RPC_INVALID_PARAMS));
    else {
        json_decref (reply);
        return body;
    }
    char *text = json_dumps (reply, JSON_COMPACT);
    json_decref (reply);
    if (!text)
        return body;
    free (body);
    return text;
}

bool
sb_mcp_cacheable (const char *m)
{
    return strcmp (m, "tools/list") == 0 || strcmp (m, "prompts/list") == 0
        || strcmp (m, "resources/list") == 0 || strcmp (m, "resources/templates/list") == 0
        || strcmp (m, "resources/read") == 0 || strcmp (m, "server/discover") == 0;
}

bool
sb_mcp_legacy_meta_mismatch (sb_rpc_t *rpc, const sb_mcp_headers_t *h, sb_mcp_outcome_t *out)
{
    json_t *meta = json_is_object (rpc->params)? json_object_get (rpc->params, "_meta"): NULL;
    json_t *version = json_is_object (meta)? json_object_get (meta, SB_META_VERSION): NULL;
    if (!version)
        return false;
    if (!h || !h->protocol) {
        s_mismatch (out, rpc->id, "MCP-Protocol-Version", "is missing (params._meta names a protocol version)");
        return true;
    }
    if (json_is_string (version) && json_string_length (version) == h->protocol_len
    &&  memcmp (json_string_value (version), h->protocol, h->protocol_len) == 0)
        return false;
    s_mismatch (out, rpc->id, "MCP-Protocol-Version", "does not match params._meta's protocolVersion");
    return true;
}
