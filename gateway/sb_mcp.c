/*  gateway/sb_mcp.c — MCP method dispatch over a parsed JSON-RPC message and
    the mapping of broker replies into tool results. Every error a person may
    see is a full sentence. */
#include "gateway/sb_mcp.h"
#include "gateway/sb_relay.h"
#include "common/sb_crypto.h"
#include "proto/sb_job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_CURSOR_MAC_LEN   12      /* signature bytes kept in a cursor */

static const char *s_versions [] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };

static const char s_instructions [] =
    "switchboard connects you to this organisation's business systems (CRM and "
    "other SaaS tools). Use tools/list to see what is available; each tool says "
    "what it reads or changes.";

bool
sb_mcp_version_supported (const char *version, size_t len)
{
    for (int i = 0; version && s_versions [i]; i++)
        if (strlen (s_versions [i]) == len && memcmp (version, s_versions [i], len) == 0)
            return true;
    return false;
}

const char *
sb_mcp_negotiate_version (const char *requested)
{
    for (int i = 0; requested && s_versions [i]; i++)
        if (strcmp (requested, s_versions [i]) == 0)
            return s_versions [i];
    return SB_MCP_PROTOCOL_LATEST;
}

//  Fills `out` with a JSON-RPC error reply.
static void
s_error (sb_mcp_outcome_t *out, int http_status, const json_t *id, int code, const char *message)
{
    out->action = SB_MCP_REPLY;
    out->http_status = http_status;
    out->body = sb_rpc_error (id, code, message);
}

//  Fills `out` with a JSON-RPC result reply (takes `result`).
static void
s_result (sb_mcp_outcome_t *out, const json_t *id, json_t *result)
{
    out->action = SB_MCP_REPLY;
    out->http_status = 200;
    out->body = sb_rpc_result (id, result);
    if (!out->body)
        s_error (out, 500, id, SB_RPC_INTERNAL_ERROR, "Internal error");
}

static void
s_initialize (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *requested = NULL;
    json_t *client_caps = NULL;
    if (rpc->params) {
        if (!json_is_object (rpc->params)) {
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "initialize params must be an object");
            return;
        }
        json_t *pv = json_object_get (rpc->params, "protocolVersion");
        if (pv && !json_is_string (pv)) {
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "protocolVersion must be a string");
            return;
        }
        requested = json_string_value (pv);
        client_caps = json_object_get (rpc->params, "capabilities");
        if (client_caps && !json_is_object (client_caps)) {
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "capabilities must be an object");
            return;
        }
    }
    //  Advertise only what is answered: list_changed and resource updates
    //  are not sent yet, so they stay false.
    json_t *caps = json_pack ("{s:{s:b}, s:{}, s:{s:b, s:b}, s:{s:b}, s:{}}",
                              "tools", "listChanged", 0, "logging",
                              "resources", "subscribe", 0, "listChanged", 0,
                              "prompts", "listChanged", 0, "completions");
    const char *negotiated = sb_mcp_negotiate_version (requested);
    json_t *result = json_pack ("{s:s, s:o, s:{s:s, s:s}, s:s}",
        "protocolVersion", negotiated,
        "capabilities", caps,
        "serverInfo", "name", "switchboard", "version", env->version? env->version: "0",
        "instructions", s_instructions);
    s_result (out, rpc->id, result);
    if (out->http_status == 200) {
        out->negotiated = negotiated;
        out->client_caps = json_incref (client_caps);
    }
}

//  The signature of a tools/list cursor at `offset` over `count` tools.
static void
s_cursor_mac (const sb_mcp_env_t *env, size_t offset, size_t count, char *out, size_t size)
{
    static const uint8_t fixed_key [SB_HMAC_SHA256_LEN] = { 0x73, 0x62 };
    char data [64];
    int n = snprintf (data, sizeof data, "tools:%zu:%zu", offset, count);
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (env->cursor_key? env->cursor_key: fixed_key, SB_HMAC_SHA256_LEN,
                    (const uint8_t *) data, (size_t) n, mac);
    char *text = sb_base64url_encode (mac, SB_CURSOR_MAC_LEN);
    snprintf (out, size, "%s", text? text: "");
    free (text);
}

//  Decodes a cursor "<offset>.<mac>" into *offset; -1 when it is not ours.
static int
s_cursor_decode (const sb_mcp_env_t *env, const char *cursor, size_t count, size_t *offset)
{
    if (strlen (cursor) > SB_MAX_CURSOR_LEN || *cursor < '0' || *cursor > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (cursor, &end, 10);
    if (errno || *end != '.' || value == 0 || value >= count)
        return -1;
    char mac [64];
    s_cursor_mac (env, (size_t) value, count, mac, sizeof mac);
    if (strlen (end + 1) != strlen (mac) || !sb_crypto_equal (end + 1, mac, strlen (mac)))
        return -1;
    *offset = (size_t) value;
    return 0;
}

static void
s_tools_list (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    if (rpc->params && !json_is_object (rpc->params)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/list params must be an object");
        return;
    }
    json_t *cursor = rpc->params? json_object_get (rpc->params, "cursor"): NULL;
    if (cursor && !json_is_string (cursor)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "cursor must be a string");
        return;
    }
    size_t count = env->connectors? sb_connectors_tool_count (env->connectors): 0;
    size_t offset = 0;
    if (cursor && s_cursor_decode (env, json_string_value (cursor), count, &offset)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "The cursor is not valid; list the tools again from the start.");
        return;
    }
    size_t page = env->page_size? env->page_size: SB_MAX_TOOLS;
    size_t end = count - offset > page? offset + page: count;
    json_t *tools = json_array ();
    for (size_t i = offset; tools && i < end; i++) {
        json_t *descriptor = sb_tool_descriptor (sb_connectors_tool_at (env->connectors, i));
        if (!descriptor || json_array_append_new (tools, descriptor)) {
            json_decref (tools);
            tools = NULL;
        }
    }
    json_t *result = tools? json_pack ("{s:o}", "tools", tools): NULL;
    if (result && end < count) {
        char mac [64], next [SB_MAX_CURSOR_LEN];
        s_cursor_mac (env, end, count, mac, sizeof mac);
        snprintf (next, sizeof next, "%zu.%s", end, mac);
        json_object_set_new (result, "nextCursor", json_string (next));
    }
    if (!result) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    s_result (out, rpc->id, result);
}

static void
s_tools_call (sb_rpc_t *rpc, sb_connectors_t *connectors, sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    if (!json_is_object (rpc->params)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/call params must be an object");
        return;
    }
    json_t *name = json_object_get (rpc->params, "name");
    if (!json_is_string (name)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/call needs a string \"name\"");
        return;
    }
    const sb_tool_t *tool = connectors? sb_connectors_find_tool (connectors, json_string_value (name)): NULL;
    if (!tool) {
        snprintf (message, sizeof message, "Unknown tool: %.128s", json_string_value (name));
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        return;
    }
    json_t *args = json_object_get (rpc->params, "arguments");
    if (args && !json_is_object (args)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/call \"arguments\" must be an object");
        return;
    }
    json_t *empty = args? NULL: json_object ();
    if (!args)
        args = empty;
    char *error = NULL;
    if (sb_tool_check_args (tool, args, &error)) {
        //  A tool-level error: the model can read it and correct itself.
        s_result (out, rpc->id, sb_mcp_error_result (
            error? error: "The arguments do not match the tool's input schema.",
            "invalid_arguments", 0));
        free (error);
        json_decref (empty);
        return;
    }
    out->args = json_dumps (args, JSON_COMPACT);
    json_decref (empty);
    json_t *meta = json_object_get (rpc->params, "_meta");
    json_t *token = json_is_object (meta)? json_object_get (meta, "progressToken"): NULL;
    out->progress = json_is_string (token) || json_is_integer (token);
    out->progress_token = out->progress? json_incref (token): NULL;
    if (!out->args) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    out->action = SB_MCP_CALL;
    out->tool = tool;
    out->id = json_deep_copy (rpc->id);
}

//  True when params is an object; else answers -32602.
static bool
s_params (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    if (json_is_object (rpc->params))
        return true;
    char message [SB_MAX_RPC_ERROR_LEN];
    snprintf (message, sizeof message, "%.128s params must be an object", rpc->method);
    s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
    return false;
}

//  A string member of params, or NULL after answering -32602.
static const char *
s_string_param (sb_rpc_t *rpc, json_t *params, const char *name, sb_mcp_outcome_t *out)
{
    json_t *value = json_object_get (params, name);
    if (json_is_string (value) && json_string_length (value) > 0)
        return json_string_value (value);
    char message [SB_MAX_RPC_ERROR_LEN];
    snprintf (message, sizeof message, "%.128s needs a non-empty string \"%s\"", rpc->method, name);
    s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
    return NULL;
}

//  resources/list, resources/templates/list, prompts/list: one page; a
//  cursor is never issued, so any cursor given is invalid.
static void
s_catalog_list (sb_rpc_t *rpc, const sb_mcp_env_t *env, const char *key,
                json_t *(*list) (sb_connectors_t *), sb_mcp_outcome_t *out)
{
    if (rpc->params && !json_is_object (rpc->params)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "params must be an object");
        return;
    }
    if (rpc->params && json_object_get (rpc->params, "cursor")) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "The cursor is not valid; list again from the start.");
        return;
    }
    json_t *items = env->connectors? list (env->connectors): json_array ();
    if (!json_is_array (items)) {
        json_decref (items);
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    s_result (out, rpc->id, json_pack ("{s:o}", key, items));
}

static void
s_resources_read (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *uri = s_string_param (rpc, rpc->params, "uri", out);
    if (!uri)
        return;
    json_t *contents = NULL;
    char *error = NULL;
    if (!env->connectors || sb_connectors_resource_read (env->connectors, uri, &contents, &error)) {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "Resource not found: %.160s", uri);
        out->action = SB_MCP_REPLY;
        out->http_status = 200;
        json_t *err = json_pack ("{s:i, s:s, s:{s:s}}", "code", SB_RPC_RESOURCE_NOT_FOUND,
                                 "message", message, "data", "uri", uri);
        char *body = NULL;
        json_t *reply = err? json_pack ("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", rpc->id, "error", err): NULL;
        body = reply? json_dumps (reply, JSON_COMPACT): NULL;
        json_decref (reply);
        free (error);
        if (body)
            out->body = body;
        else
            s_error (out, 200, rpc->id, SB_RPC_RESOURCE_NOT_FOUND, "Resource not found");
        return;
    }
    s_result (out, rpc->id, json_pack ("{s:o}", "contents", contents));
}

static void
s_resources_subscribe (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    //  Acknowledged; notifications/resources/updated are not sent yet
    //  (initialize advertises subscribe: false).
    if (s_string_param (rpc, rpc->params, "uri", out))
        s_result (out, rpc->id, json_object ());
}

static void
s_prompts_get (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *name = s_string_param (rpc, rpc->params, "name", out);
    if (!name)
        return;
    json_t *args = json_object_get (rpc->params, "arguments");
    if (args && !json_is_object (args)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "prompts/get \"arguments\" must be an object");
        return;
    }
    json_t *result = NULL;
    char *error = NULL;
    if (!env->connectors || sb_connectors_prompt_get (env->connectors, name, args, &result, &error)) {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "%.200s", error? error: "Unknown prompt");
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        free (error);
        return;
    }
    s_result (out, rpc->id, result);
}

static void
s_complete (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    json_t *ref = json_object_get (rpc->params, "ref");
    json_t *argument = json_object_get (rpc->params, "argument");
    json_t *type = json_object_get (ref, "type");
    const char *ref_type = json_string_value (type);
    const char *key = ref_type && strcmp (ref_type, "ref/prompt") == 0? "name":
                      ref_type && strcmp (ref_type, "ref/resource") == 0? "uri": NULL;
    json_t *ref_name = key? json_object_get (ref, key): NULL;
    json_t *arg_name = json_object_get (argument, "name");
    json_t *value = json_object_get (argument, "value");
    if (!json_is_object (ref) || !key || !json_is_string (ref_name)
    ||  !json_is_object (argument) || !json_is_string (arg_name) || !json_is_string (value)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "completion/complete needs ref {type: ref/prompt with name, or ref/resource with uri} "
                 "and argument {name, value}");
        return;
    }
    json_t *completion = env->connectors
        ? sb_connectors_complete (env->connectors, ref_type, json_string_value (ref_name),
                                  json_string_value (arg_name), json_string_value (value))
        : json_pack ("{s:[], s:i, s:b}", "values", "total", 0, "hasMore", 0);
    if (!completion) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    s_result (out, rpc->id, json_pack ("{s:o}", "completion", completion));
}

static void
s_set_level (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    int level = sb_relay_level (json_string_value (json_object_get (rpc->params, "level")));
    if (level >= 0) {
        //  Kept by the endpoint for the session; notifications/message
        //  from workers below it are not sent.
        s_result (out, rpc->id, json_object ());
        if (out->http_status == 200)
            out->set_level = level + 1;
        return;
    }
    s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
             "logging/setLevel needs \"level\": one of debug, info, notice, warning, error, "
             "critical, alert, emergency");
}

//  notifications/cancelled {requestId, reason}: the id to cancel, when the
//  notification is well formed (a malformed one is ignored, as MCP says).
static json_t *
s_cancel_id (sb_rpc_t *rpc)
{
    if (strcmp (rpc->method, "notifications/cancelled") != 0 || !json_is_object (rpc->params))
        return NULL;
    json_t *id = json_object_get (rpc->params, "requestId");
    return sb_rpc_id_valid (id)? json_incref (id): NULL;
}

void
sb_mcp_handle (const sb_mcp_env_t *env, const char *body, size_t len, sb_mcp_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    sb_rpc_t rpc;
    if (sb_rpc_parse (body, len, &rpc)) {
        s_error (out, 400, rpc.id, rpc.error_code, rpc.error_msg);
        sb_rpc_clear (&rpc);
        return;
    }
    const char *m = rpc.method;
    if (rpc.kind != SB_RPC_KIND_REQUEST) {
        //  Notifications (initialized, cancelled…) and client responses
        //  need no answer.
        out->action = SB_MCP_ACCEPTED;
        out->http_status = 202;
        if (rpc.kind == SB_RPC_KIND_RESPONSE)
            out->response = json_incref (rpc.root);
        else
            out->cancel_id = s_cancel_id (&rpc);
    }
    else
    if (strcmp (m, "initialize") == 0)
        s_initialize (&rpc, env, out);
    else
    if (strcmp (m, "ping") == 0)
        s_result (out, rpc.id, json_object ());
    else
    if (strcmp (m, "tools/list") == 0)
        s_tools_list (&rpc, env, out);
    else
    if (strcmp (m, "tools/call") == 0)
        s_tools_call (&rpc, env->connectors, out);
    else
    if (strcmp (m, "logging/setLevel") == 0) {
        if (s_params (&rpc, out))
            s_set_level (&rpc, out);
    }
    else
    if (strcmp (m, "resources/list") == 0)
        s_catalog_list (&rpc, env, "resources", sb_connectors_resources, out);
    else
    if (strcmp (m, "resources/templates/list") == 0)
        s_catalog_list (&rpc, env, "resourceTemplates", sb_connectors_resource_templates, out);
    else
    if (strcmp (m, "prompts/list") == 0)
        s_catalog_list (&rpc, env, "prompts", sb_connectors_prompts, out);
    else
    if (strcmp (m, "resources/read") == 0) {
        if (s_params (&rpc, out))
            s_resources_read (&rpc, env, out);
    }
    else
    if ((strcmp (m, "resources/subscribe") == 0 || strcmp (m, "resources/unsubscribe") == 0)) {
        if (s_params (&rpc, out))
            s_resources_subscribe (&rpc, out);
    }
    else
    if (strcmp (m, "prompts/get") == 0) {
        if (s_params (&rpc, out))
            s_prompts_get (&rpc, env, out);
    }
    else
    if (strcmp (m, "completion/complete") == 0) {
        if (s_params (&rpc, out))
            s_complete (&rpc, env, out);
    }
    else {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "Method not found: %.128s", m);
        s_error (out, 200, rpc.id, SB_RPC_METHOD_NOT_FOUND, message);
    }
    sb_rpc_clear (&rpc);
}

void
sb_mcp_outcome_clear (sb_mcp_outcome_t *out)
{
    free (out->body);
    free (out->args);
    json_decref (out->id);
    json_decref (out->client_caps);
    json_decref (out->response);
    json_decref (out->progress_token);
    json_decref (out->cancel_id);
    memset (out, 0, sizeof *out);
}

json_t *
sb_mcp_error_result (const char *text, const char *error_type, int retry_after)
{
    json_t *result = json_pack ("{s:[{s:s, s:s}], s:b, s:{s:s}}",
        "content", "type", "text", "text", text,
        "isError", 1,
        "_meta", "error_type", error_type);
    if (!result)    //  text was not UTF-8: say something generic instead
        result = json_pack ("{s:[{s:s, s:s}], s:b, s:{s:s}}",
            "content", "type", "text", "text", "The tool call failed.",
            "isError", 1, "_meta", "error_type", error_type);
    if (result && retry_after > 0)
        json_object_set_new (json_object_get (result, "_meta"), "retry_after",
                             json_integer (retry_after));
    return result;
}

//  Decodes a REPLY payload into its result JSON (new reference) or NULL.
static json_t *
s_payload_json (const uint8_t *payload, size_t size)
{
    if (!payload || size == 0)
        return NULL;
    sb_job_result_t result = { 0 };
    if (sb_job_result_decode (payload, size, &result))
        return NULL;
    json_t *json = result.result? json_loads (result.result, 0, NULL): NULL;
    sb_job_result_clear (&result);
    if (json && !json_is_object (json)) {
        json_decref (json);
        json = NULL;
    }
    return json;
}

char *
sb_mcp_call_reply (const json_t *id, sb_status_t status, const uint8_t *payload, size_t size)
{
    char sentence [512];
    json_t *detail = s_payload_json (payload, size);
    json_t *result = NULL;
    const char *type = sb_status_name (status);

    switch (status) {
        case SB_STATUS_OK:
            if (detail && json_is_array (json_object_get (detail, "content"))) {
                result = json_incref (detail);
                break;
            }
            result = sb_mcp_error_result (
                "switchboard received an unreadable answer from the service running this tool. "
                "Please try again; if it keeps happening, contact support.", "malformed", 0);
            break;
        case SB_STATUS_TIMEOUT:
            result = sb_mcp_error_result (
                "The tool call took too long and was stopped. The connected service may be slow "
                "right now; please try again in a moment.", type, 0);
            break;
        case SB_STATUS_WORKER_LOST:
            result = sb_mcp_error_result (
                "The tool call was interrupted before it finished. It was not retried automatically "
                "because it may already have changed data; please check before trying again.", type, 0);
            break;
        case SB_STATUS_OVERLOADED: {
            json_t *after = detail? json_object_get (detail, "retry_after"): NULL;
            json_int_t seconds = json_is_integer (after)? json_integer_value (after): SB_MCP_DEFAULT_RETRY_S;
            if (seconds < 1 || seconds > 86400)
                seconds = SB_MCP_DEFAULT_RETRY_S;
            snprintf (sentence, sizeof sentence,
                      "switchboard is handling too many requests right now. Please try again in %d "
                      "second%s.", (int) seconds, seconds == 1? "": "s");
            result = sb_mcp_error_result (sentence, type, (int) seconds);
            break;
        }
        case SB_STATUS_FAILED: {
            json_t *error = detail? json_object_get (detail, "error"): NULL;
            if (json_is_string (error))
                snprintf (sentence, sizeof sentence, "The tool could not be run: %.*s",
                          SB_MAX_MCP_ERROR_DETAIL, json_string_value (error));
            else
                snprintf (sentence, sizeof sentence, "The tool could not be run.");
            result = sb_mcp_error_result (sentence, type, 0);
            break;
        }
        default:
            result = sb_mcp_error_result (
                "switchboard could not process this tool call because of an internal error. "
                "Please try again; if it keeps happening, contact support.", type, 0);
            break;
    }
    json_decref (detail);
    if (!result)
        return sb_rpc_error (id, SB_RPC_INTERNAL_ERROR, "Internal error");
    return sb_rpc_result (id, result);
}
