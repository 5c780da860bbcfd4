/*  gateway/sb_mcp.c — MCP method dispatch over a parsed JSON-RPC message and
    the mapping of broker replies into tool results. Every error a person may
    see is a full sentence. */
#include "sb_mcp.h"
#include "sb_attr.h"
#include "sb_json.h"
#include "sb_relay.h"
#include "sb_session.h"
#include "sb_subs.h"
#include "sb_crypto.h"
#include "sb_json_scan.h"
#include "sb_job.h"

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

#define SB_META_VERSION     "io.modelcontextprotocol/protocolVersion"
#define SB_META_CAPS        "io.modelcontextprotocol/clientCapabilities"
#define SB_META_LOG_LEVEL   "io.modelcontextprotocol/logLevel"
#define SB_META_SERVER_INFO "io.modelcontextprotocol/serverInfo"
#define SB_META_SUBSCRIPTION "io.modelcontextprotocol/subscriptionId"
#define SB_BASE64_PREFIX    "=?base64?"
#define SB_BASE64_SUFFIX    "?="

bool
sb_mcp_version_supported (const char *version, size_t len)
{
    if (version && len == strlen (SB_MCP_PROTOCOL_MODERN)
    &&  memcmp (version, SB_MCP_PROTOCOL_MODERN, len) == 0)
        return true;
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
    //  Every revision initialize negotiates has GET streams, where a
    //  connectors reload sends list_changed and resources/updated
    //  (gateway/sb_notify.c).
    json_t *caps = json_pack ("{s:{s:b}, s:{}, s:{s:b, s:b}, s:{s:b}, s:{}}",
                              "tools", "listChanged", 1, "logging",
                              "resources", "subscribe", 1, "listChanged", 1,
                              "prompts", "listChanged", 1, "completions");
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

//  True when the caller may see and call `tool`.
static bool
s_tool_shown (const sb_mcp_env_t *env, const sb_tool_t *tool)
{
    return !sb_tool_hidden (tool) || (env->shown & SB_LIST_TOOLS);
}

//  True when the caller may see and get prompt `name`.
static bool
s_prompt_shown (const sb_mcp_env_t *env, const char *name)
{
    return (env->shown & SB_LIST_PROMPTS) || !env->connectors
        || !sb_connectors_prompt_hidden (env->connectors, name);
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
    //  A page holds up to `page` tools the caller may see; the cursor is the
    //  index after the last one looked at, so hidden tools only shorten it.
    size_t page = env->page_size? env->page_size: SB_MAX_TOOLS;
    size_t end = offset;
    json_t *tools = json_array ();
    for (; tools && end < count && json_array_size (tools) < page; end++) {
        const sb_tool_t *tool = sb_connectors_tool_at (env->connectors, end);
        if (!s_tool_shown (env, tool))
            continue;
        json_t *descriptor = sb_tool_descriptor (tool);
        if (!descriptor || json_array_append_new (tools, descriptor)) {
            json_decref (tools);
            tools = NULL;
        }
    }
    while (end < count && !s_tool_shown (env, sb_connectors_tool_at (env->connectors, end)))
        end++;                          //  no cursor to a page of hidden tools only
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

//  A 2026-07-28 request's inputResponses (an object of objects: the client's
//  result for each inputRequests key) and requestState (a string), copied
//  into `out`; false after answering -32602 when either is malformed.
static bool
s_input_params (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    json_t *responses = json_object_get (rpc->params, "inputResponses");
    json_t *state = json_object_get (rpc->params, "requestState");
    if (responses && !json_is_object (responses)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "inputResponses must be an object: for each inputRequests key, the client's result.");
        return false;
    }
    const char *key;
    json_t *value;
    json_object_foreach (responses, key, value)
        if (!json_is_object (value)) {
            snprintf (message, sizeof message, "inputResponses.%.64s must be an object: the client's "
                      "result for that request.", key);
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            return false;
        }
    if (state && (!json_is_string (state) || json_string_length (state) > SB_MAX_REQUEST_STATE_LEN)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "requestState must be the string the server sent, unchanged.");
        return false;
    }
    out->input_responses = json_incref (responses);
    out->request_state = state? strdup (json_string_value (state)): NULL;
    if (state && !out->request_state) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return false;
    }
    return true;
}

//  ---------------------------------------------------------------------------
//  The tasks extension (SEP-2663, 2026-07-28 only)

//  True for the methods of the tasks extension this gateway serves.
static bool
s_task_method (const char *m)
{
    return strcmp (m, "tasks/get") == 0 || strcmp (m, "tasks/update") == 0
        || strcmp (m, "tasks/cancel") == 0;
}

//  Answers -32021 naming the tasks extension as the missing capability
//  (HTTP 400, like every 2026-07-28 -32021).
static void
s_missing_tasks (sb_mcp_outcome_t *out, const json_t *id, const char *message)
{
    json_t *reply = json_pack ("{s:s, s:O, s:{s:i, s:s, s:{s:{s:{s:{}}}}}}", "jsonrpc", "2.0",
                               "id", id? sb_unconst (id): json_null (), "error",
                               "code", SB_RPC_MISSING_CAPABILITY, "message", message,
                               "data", "requiredCapabilities", "extensions", SB_MCP_TASKS_EXTENSION);
    out->action = SB_MCP_REPLY;
    out->http_status = 400;
    out->body = reply? json_dumps (reply, JSON_COMPACT): NULL;
    json_decref (reply);
    if (!out->body)
        s_error (out, 500, id, SB_RPC_INTERNAL_ERROR, "Internal error");
}

//  True when `id` could be a taskId this gateway issued: 1..64 bytes of
//  base64url. Anything else is no task of ours.
static bool
s_task_id_ok (const json_t *id)
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

//  tasks/get, tasks/update, tasks/cancel: checked here, answered by the
//  task store (SB_MCP_TASK). An id we could not have issued is unknown.
static void
s_tasks_request (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    const char *m = rpc->method;
    if (!out->tasks) {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "%s needs the client to declare the " SB_MCP_TASKS_EXTENSION
                  " extension in _meta clientCapabilities.extensions.", m);
        s_missing_tasks (out, rpc->id, message);
        return;
    }
    if (!json_is_object (rpc->params) || !json_is_string (json_object_get (rpc->params, "taskId"))) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "params.taskId must be the taskId (a string) "
                 "the server returned when it created the task.");
        return;
    }
    json_t *task_id = json_object_get (rpc->params, "taskId");
    if (!s_task_id_ok (task_id)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "Unknown task: no task has this taskId.");
        return;
    }
    if (strcmp (m, "tasks/update") == 0) {
        json_t *responses = json_object_get (rpc->params, "inputResponses");
        if (!json_is_object (responses)) {
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tasks/update needs params.inputResponses: "
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
                s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
                return;
            }
        out->input_responses = json_incref (responses);
    }
    out->task_id = strdup (json_string_value (task_id));
    out->id = json_deep_copy (rpc->id);
    if (!out->task_id || !out->id) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    out->action = SB_MCP_TASK;
    out->task_method = strcmp (m, "tasks/get") == 0? "tasks/get":
                       strcmp (m, "tasks/update") == 0? "tasks/update": "tasks/cancel";
}

static void
s_tools_call (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    sb_connectors_t *connectors = env->connectors;
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
    if (!tool || !s_tool_shown (env, tool)) {
        snprintf (message, sizeof message, "Unknown tool: %.128s", json_string_value (name));
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        return;
    }
    sb_task_support_t task_support = sb_tool_task_support (tool);
    if (task_support == SB_TASK_REQUIRED && !out->tasks) {
        //  It runs only as a task, and only a 2026-07-28 client that
        //  declares the extension can take one.
        if (out->modern) {
            snprintf (message, sizeof message, "The tool %.64s runs as a task: the client must declare "
                      "the " SB_MCP_TASKS_EXTENSION " extension to call it.", json_string_value (name));
            s_missing_tasks (out, rpc->id, message);
        }
        else {
            snprintf (message, sizeof message, "The tool %.64s runs only as a task, which needs an "
                      "MCP 2026-07-28 client that supports the " SB_MCP_TASKS_EXTENSION " extension.",
                      json_string_value (name));
            s_result (out, rpc->id, sb_mcp_error_result (message, "needs_tasks", 0));
        }
        return;
    }
    out->task_capable = out->tasks && task_support != SB_TASK_FORBIDDEN;
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
    out->args = sb_json_dump (args, NULL);
    json_decref (empty);
    json_t *meta = json_object_get (rpc->params, "_meta");
    json_t *token = json_is_object (meta)? json_object_get (meta, "progressToken"): NULL;
    out->progress = json_is_string (token) || json_is_integer (token);
    out->progress_token = out->progress? json_incref (token): NULL;
    if (!out->args) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    if (out->modern && !s_input_params (rpc, out))
        return;
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
    for (size_t i = json_array_size (items); list == sb_connectors_prompts && i-- > 0;)
        if (!s_prompt_shown (env, json_string_value (json_object_get (json_array_get (items, i),
                                                                      "name"))))
            json_array_remove (items, i);
    s_result (out, rpc->id, json_pack ("{s:o}", key, items));
}

//  resources/read or subscribe of a URI no resource or template matches:
//  -32002 with the URI in data.
static void
s_not_found (sb_rpc_t *rpc, const char *uri, sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    snprintf (message, sizeof message, "Resource not found: %.160s", uri);
    json_t *reply = json_pack ("{s:s, s:O, s:{s:i, s:s, s:{s:s}}}", "jsonrpc", "2.0", "id", rpc->id,
                               "error", "code", SB_RPC_RESOURCE_NOT_FOUND, "message", message,
                               "data", "uri", uri);
    out->action = SB_MCP_REPLY;
    out->http_status = 200;
    out->body = reply? sb_json_dump (reply, NULL): NULL;
    json_decref (reply);
    if (!out->body)
        s_error (out, 200, rpc->id, SB_RPC_RESOURCE_NOT_FOUND, "Resource not found");
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
        free (error);
        s_not_found (rpc, uri, out);
        return;
    }
    s_result (out, rpc->id, json_pack ("{s:o}", "contents", contents));
}

//  resources/subscribe (a URI a resource or template matches) and
//  unsubscribe (any URI): {}, with the URI in `out` for the gateway's
//  table (sb_gateway_subscribe), which may still refuse it.
static void
s_resources_subscribe (sb_rpc_t *rpc, const sb_mcp_env_t *env, bool on, sb_mcp_outcome_t *out)
{
    const char *uri = s_string_param (rpc, rpc->params, "uri", out);
    if (!uri)
        return;
    json_t *contents = NULL;
    char *error = NULL;
    if (on && (!env->connectors
           ||  sb_connectors_resource_read (env->connectors, uri, &contents, &error))) {
        free (error);
        s_not_found (rpc, uri, out);
        return;
    }
    json_decref (contents);
    out->subscribe_uri = strdup (uri);
    if (!out->subscribe_uri) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    out->subscribe = on? 1: -1;
    s_result (out, rpc->id, json_object ());
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

//  MCP 2026-07-28 prompts/get without some required arguments: take them
//  from the answer under SB_MCP_PROMPT_INPUT_KEY, else ask for them with an
//  input-required result when the client can be asked. Returns the
//  arguments to render with (new reference; may be NULL) and false, or
//  true after answering.
static bool
s_prompt_inputs (sb_rpc_t *rpc, const sb_mcp_env_t *env, const char *name, json_t **args,
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
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
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
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
    else
        s_result (out, rpc->id, result);
    return true;
}

static void
s_prompts_get (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *name = s_string_param (rpc, rpc->params, "name", out);
    if (!name)
        return;
    if (!s_prompt_shown (env, name)) {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "There is no prompt named \"%.64s\".", name);
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        return;
    }
    json_t *args = json_incref (json_object_get (rpc->params, "arguments"));
    if (args && !json_is_object (args)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "prompts/get \"arguments\" must be an object");
        json_decref (args);
        return;
    }
    if (out->modern && (!s_input_params (rpc, out) || s_prompt_inputs (rpc, env, name, &args, out))) {
        json_decref (args);
        return;
    }
    json_t *result = NULL;
    char *error = NULL;
    if (!env->connectors || sb_connectors_prompt_get (env->connectors, name, args, &result, &error)) {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "%.200s", error? error: "Unknown prompt");
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        free (error);
        json_decref (args);
        return;
    }
    json_decref (args);
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
    bool unseen = strcmp (key, "name") == 0 && !s_prompt_shown (env, json_string_value (ref_name));
    json_t *completion = env->connectors && !unseen
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
    s_error (out, 400, id, SB_RPC_HEADER_MISMATCH, message);
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

//  The request checks of 2026-07-28; false after answering.
static bool
s_modern_check (sb_rpc_t *rpc, const sb_mcp_headers_t *h, sb_mcp_outcome_t *out)
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
                      s_task_method (m)? "taskId": NULL;
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
        s_error (out, 400, rpc->id, SB_RPC_INVALID_PARAMS,
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
            s_error (out, 400, rpc->id, SB_RPC_INVALID_PARAMS,
                     "\"" SB_META_LOG_LEVEL "\" must be one of debug, info, notice, warning, error, "
                     "critical, alert, emergency.");
            return false;
        }
        out->log_level = value + 1;
    }
    return true;
}

static void
s_discover (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    //  2026-07-28 delivers list_changed and resources/updated on
    //  subscriptions/listen streams (sb_notify.c), after a reload.
    json_t *caps = json_pack ("{s:{s:b}, s:{}, s:{s:b, s:b}, s:{s:b}, s:{}, s:{s:{}}}",
                              "tools", "listChanged", 1, "logging",
                              "resources", "subscribe", 1, "listChanged", 1,
                              "prompts", "listChanged", 1, "completions",
                              "extensions", SB_MCP_TASKS_EXTENSION);
    json_t *versions = json_pack ("[s]", SB_MCP_PROTOCOL_MODERN);
    for (int i = 0; versions && s_versions [i]; i++)
        json_array_append_new (versions, json_string (s_versions [i]));
    s_result (out, rpc->id, json_pack ("{s:o, s:o, s:s}", "supportedVersions", versions,
                                       "capabilities", caps, "instructions", s_instructions));
}

//  The list_changed keys of a subscriptions/listen filter and their bits.
static const struct {
    const char *key;                /* SubscriptionFilter field */
    unsigned bit;                   /* SB_LIST_* */
} s_listen_lists [] = {
    { "toolsListChanged", SB_LIST_TOOLS },
    { "promptsListChanged", SB_LIST_PROMPTS },
    { "resourcesListChanged", SB_LIST_RESOURCES },
};

//  The resourceSubscriptions of a listen filter (`asked`, present): fills
//  `uris` (an empty array) with those a resource or template matches,
//  each once. Returns 0, or answers -32602 and returns -1.
static int
s_listen_uris (sb_rpc_t *rpc, const sb_mcp_env_t *env, json_t *asked, json_t *uris,
               sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    if (!json_is_array (asked)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "params.notifications.resourceSubscriptions "
                 "must be an array of resource URIs (strings).");
        return -1;
    }
    if (json_array_size (asked) > SB_MAX_LISTEN_URIS) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, sb_subs_strerror (SB_SUBS_TOO_MANY_URIS));
        return -1;
    }
    size_t index;
    json_t *uri;
    json_array_foreach (asked, index, uri) {
        if (!json_is_string (uri) || json_string_length (uri) > SB_MAX_SUB_URI_LEN) {
            snprintf (message, sizeof message, "params.notifications.resourceSubscriptions[%zu] must be a "
                      "resource URI: a string of at most %d bytes.", index, SB_MAX_SUB_URI_LEN);
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            return -1;
        }
    }
    //  A URI no resource or template matches now is not followed, and the
    //  acknowledgement leaves it out: "the subset the server agreed to honor".
    json_array_foreach (asked, index, uri) {
        bool seen = false;
        for (size_t i = 0; i < json_array_size (uris) && !seen; i++)
            seen = json_equal (json_array_get (uris, i), uri);
        json_t *contents = NULL;
        char *error = NULL;
        if (!seen && env->connectors
        &&  sb_connectors_resource_read (env->connectors, json_string_value (uri), &contents, &error) == 0)
            json_array_append (uris, uri);
        json_decref (contents);
        free (error);
    }
    return 0;
}

//  subscriptions/listen (2026-07-28): the filter checked, the stream to
//  open described in `out` (SB_MCP_LISTEN), its acknowledgement in body.
static void
s_listen (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    json_t *filter = json_object_get (rpc->params, "notifications");
    if (!json_is_object (filter)) {
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "subscriptions/listen needs "
                 "params.notifications, an object saying which notifications to send.");
        return;
    }
    char *id = json_dumps (rpc->id, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t id_len = id? strlen (id): 0;
    free (id);
    if (id_len == 0 || id_len > SB_MAX_LISTEN_ID_LEN) {
        snprintf (message, sizeof message, "The id of a subscriptions/listen request must be at most "
                  "%d bytes of JSON (it names the subscription).", SB_MAX_LISTEN_ID_LEN);
        s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        return;
    }
    unsigned lists = 0;
    json_t *honoured = json_object ();
    for (size_t i = 0; i < sizeof s_listen_lists / sizeof s_listen_lists [0]; i++) {
        json_t *value = json_object_get (filter, s_listen_lists [i].key);
        if (value && !json_is_boolean (value)) {
            snprintf (message, sizeof message, "params.notifications.%s must be true or false.",
                      s_listen_lists [i].key);
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            json_decref (honoured);
            return;
        }
        if (json_is_true (value)) {
            lists |= s_listen_lists [i].bit;
            json_object_set_new (honoured, s_listen_lists [i].key, json_true ());
        }
    }
    if (json_object_get (filter, "taskIds") && !out->tasks) {
        json_decref (honoured);
        s_missing_tasks (out, rpc->id, "Task status notifications (params.notifications.taskIds) need the "
                         "client to declare the " SB_MCP_TASKS_EXTENSION " extension.");
        return;
    }
    //  Task status: followed for the well-formed ids (whose tasks they are
    //  is checked with each tasks/get the gateway makes for the stream).
    json_t *task_ids = json_object_get (filter, "taskIds");
    json_t *tasks = NULL;
    if (task_ids) {
        if (!json_is_array (task_ids) || json_array_size (task_ids) > SB_MAX_LISTEN_TASKS) {
            snprintf (message, sizeof message, "params.notifications.taskIds must be an array of at "
                      "most %d taskIds.", SB_MAX_LISTEN_TASKS);
            s_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            json_decref (honoured);
            return;
        }
        tasks = json_array ();
        size_t i;
        json_t *task_id;
        json_array_foreach (task_ids, i, task_id) {
            bool seen = false;
            for (size_t j = 0; j < json_array_size (tasks) && !seen; j++)
                seen = json_equal (json_array_get (tasks, j), task_id);
            if (!seen && s_task_id_ok (task_id))
                json_array_append (tasks, task_id);
        }
        json_object_set (honoured, "taskIds", tasks);
    }
    json_t *asked = json_object_get (filter, "resourceSubscriptions");
    json_t *uris = asked? json_array (): NULL;
    if (asked && s_listen_uris (rpc, env, asked, uris, out)) {
        json_decref (uris);
        json_decref (tasks);
        json_decref (honoured);
        return;
    }
    if (uris)
        json_object_set (honoured, "resourceSubscriptions", uris);
    json_t *ack = json_pack ("{s:s, s:s, s:{s:{s:O}, s:o}}", "jsonrpc", "2.0",
                             "method", "notifications/subscriptions/acknowledged",
                             "params", "_meta", SB_META_SUBSCRIPTION, rpc->id, "notifications", honoured);
    out->body = ack? json_dumps (ack, JSON_COMPACT): NULL;
    json_decref (ack);
    if (!out->body) {
        json_decref (uris);
        json_decref (tasks);
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    out->action = SB_MCP_LISTEN;
    out->listen_tasks = tasks;
    out->http_status = 200;
    out->id = json_incref (rpc->id);
    out->listen_lists = lists;
    out->listen_uris = uris;
}

char *
sb_mcp_listen_end (const char *id, const char *version)
{
    json_t *value = id? json_loads (id, JSON_DECODE_ANY, NULL): NULL;
    json_t *reply = value? json_pack ("{s:s, s:O, s:{s:s, s:{s:O, s:{s:s, s:s}}}}", "jsonrpc", "2.0",
                                      "id", value, "result", "resultType", "complete",
                                      "_meta", SB_META_SUBSCRIPTION, value, SB_META_SERVER_INFO,
                                      "name", "switchboard", "version", version? version: "0"): NULL;
    char *text = reply? json_dumps (reply, JSON_COMPACT): NULL;
    json_decref (reply);
    json_decref (value);
    return text;
}

char *
sb_mcp_listen_note (const char *id, const char *method, const char *uri)
{
    json_t *value = id? json_loads (id, JSON_DECODE_ANY, NULL): NULL;
    json_t *note = value && method? json_pack ("{s:s, s:s, s:{s:{s:O}}}", "jsonrpc", "2.0",
                                               "method", method, "params", "_meta",
                                               SB_META_SUBSCRIPTION, value): NULL;
    if (note && uri
    &&  json_object_set_new (json_object_get (note, "params"), "uri", json_string (uri))) {
        json_decref (note);
        note = NULL;
    }
    char *text = note? json_dumps (note, JSON_COMPACT): NULL;
    json_decref (note);
    json_decref (value);
    return text;
}

char *
sb_mcp_listen_task_note (const char *id, const json_t *task)
{
    json_t *value = id? json_loads (id, JSON_DECODE_ANY, NULL): NULL;
    json_t *params = value && json_is_object (task)? json_deep_copy (task): NULL;
    json_t *note = NULL;
    if (params && !json_object_set_new (params, "_meta", json_pack ("{s:O}", SB_META_SUBSCRIPTION, value)))
        note = json_pack ("{s:s, s:s, s:O}", "jsonrpc", "2.0", "method", "notifications/tasks",
                          "params", params);
    char *text = note? json_dumps (note, JSON_COMPACT): NULL;
    json_decref (note);
    json_decref (params);
    json_decref (value);
    return text;
}

char *
sb_mcp_unsupported_version (const json_t *id, const char *requested, size_t len)
{
    json_t *versions = json_pack ("[s]", SB_MCP_PROTOCOL_MODERN);
    for (int i = 0; versions && s_versions [i]; i++)
        json_array_append_new (versions, json_string (s_versions [i]));
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
sb_mcp_modern_reply (char *body, const char *version, bool cacheable)
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

//  True for the methods whose 2026-07-28 results are CacheableResults.
static bool
s_cacheable (const char *m)
{
    return strcmp (m, "tools/list") == 0 || strcmp (m, "prompts/list") == 0
        || strcmp (m, "resources/list") == 0 || strcmp (m, "resources/templates/list") == 0
        || strcmp (m, "resources/read") == 0 || strcmp (m, "server/discover") == 0;
}

//  Dispatch of a checked 2026-07-28 request.
static void
s_modern_request (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *m = rpc->method;
    if (strcmp (m, "server/discover") == 0)
        s_discover (rpc, out);
    else
    if (strcmp (m, "subscriptions/listen") == 0)
        s_listen (rpc, env, out);
    else
    if (strcmp (m, "tools/list") == 0)
        s_tools_list (rpc, env, out);
    else
    if (strcmp (m, "tools/call") == 0) {
        //  Mcp-Param-* headers against the arguments (sb_param_header.h).
        char problem [SB_PARAM_HEADER_PROBLEM];
        if (sb_param_headers_check_call (env->headers->params, env->connectors, rpc->params,
                                         problem, sizeof problem))
            s_error (out, 400, rpc->id, SB_RPC_HEADER_MISMATCH, problem);
        else
            s_tools_call (rpc, env, out);
    }
    else
    if (strcmp (m, "resources/list") == 0)
        s_catalog_list (rpc, env, "resources", sb_connectors_resources, out);
    else
    if (strcmp (m, "resources/templates/list") == 0)
        s_catalog_list (rpc, env, "resourceTemplates", sb_connectors_resource_templates, out);
    else
    if (strcmp (m, "prompts/list") == 0)
        s_catalog_list (rpc, env, "prompts", sb_connectors_prompts, out);
    else
    if (strcmp (m, "resources/read") == 0)
        s_resources_read (rpc, env, out);
    else
    if (strcmp (m, "prompts/get") == 0)
        s_prompts_get (rpc, env, out);
    else
    if (strcmp (m, "completion/complete") == 0)
        s_complete (rpc, env, out);
    else
    if (s_task_method (m))
        s_tasks_request (rpc, out);
    else {
        //  Unknown, or gone in this revision (initialize, ping,
        //  logging/setLevel, resources/subscribe…): 404 as the transport says.
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "Method not found: %.128s (MCP 2026-07-28)", m);
        s_error (out, 404, rpc->id, SB_RPC_METHOD_NOT_FOUND, message);
        return;
    }
    if (out->action == SB_MCP_REPLY && out->body)
        out->body = sb_mcp_modern_reply (out->body, env->version, s_cacheable (m));
}

//  A 2026-07-28 message (out->modern set).
static void
s_modern (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    if (rpc->kind == SB_RPC_KIND_RESPONSE) {
        s_error (out, 400, rpc->id, SB_RPC_INVALID_REQUEST,
                 "MCP 2026-07-28 clients send no JSON-RPC responses: input requests are answered "
                 "by retrying the request with inputResponses.");
        return;
    }
    if (rpc->kind == SB_RPC_KIND_NOTIFICATION) {
        //  None is defined on HTTP in this revision (closing the stream
        //  cancels); taken and ignored.
        out->action = SB_MCP_ACCEPTED;
        out->http_status = 202;
        return;
    }
    if (s_modern_check (rpc, env->headers, out))
        s_modern_request (rpc, env, out);
    if (out->action != SB_MCP_CALL)
        out->log_level = 0;
}

//  True when the header names 2026-07-28.
static bool
s_header_modern (const sb_mcp_headers_t *h)
{
    return h && h->protocol && h->protocol_len == strlen (SB_MCP_PROTOCOL_MODERN)
        && memcmp (h->protocol, SB_MCP_PROTOCOL_MODERN, h->protocol_len) == 0;
}

//  An older-revision request whose params._meta names a protocol version
//  other than the header's: answers -32020 and returns true.
static bool
s_legacy_meta_mismatch (sb_rpc_t *rpc, const sb_mcp_headers_t *h, sb_mcp_outcome_t *out)
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
    if (s_header_modern (env->headers)) {
        out->modern = true;
        s_modern (&rpc, env, out);
    }
    else
    if (rpc.kind == SB_RPC_KIND_REQUEST && s_legacy_meta_mismatch (&rpc, env->headers, out))
        ;
    else
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
        s_tools_call (&rpc, env, out);
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
            s_resources_subscribe (&rpc, env, strcmp (m, "resources/subscribe") == 0, out);
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
    free (out->task_id);
    json_decref (out->response);
    json_decref (out->progress_token);
    json_decref (out->cancel_id);
    json_decref (out->input_responses);
    free (out->request_state);
    free (out->subscribe_uri);
    json_decref (out->listen_uris);
    json_decref (out->listen_tasks);
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
sb_mcp_call_error (const json_t *id, const uint8_t *payload, size_t size)
{
    json_t *detail = s_payload_json (payload, size);
    json_t *error = json_object_get (detail, "rpc_error");
    json_t *data = json_object_get (error, "data");
    const char *message = json_string_value (json_object_get (error, "message"));
    char *body = NULL;
    if (json_integer_value (json_object_get (error, "code")) == SB_RPC_MISSING_CAPABILITY && message
    &&  json_is_object (json_object_get (data, "requiredCapabilities"))) {
        json_t *reply = json_pack ("{s:s, s:O, s:{s:i, s:s, s:{s:O}}}", "jsonrpc", "2.0",
            "id", id? sb_unconst (id): json_null (), "error", "code", SB_RPC_MISSING_CAPABILITY,
            "message", message, "data", "requiredCapabilities",
            json_object_get (data, "requiredCapabilities"));
        body = reply? json_dumps (reply, JSON_COMPACT): NULL;
        json_decref (reply);
    }
    json_decref (detail);
    return body;
}

json_t *
sb_mcp_rpc_error (const uint8_t *payload, size_t size)
{
    json_t *detail = s_payload_json (payload, size);
    json_t *error = json_object_get (detail, "rpc_error");
    json_t *data = json_object_get (error, "data");
    json_t *copy = NULL;
    if (json_is_integer (json_object_get (error, "code"))
    &&  json_is_string (json_object_get (error, "message")))
        copy = json_pack ("{s:O, s:O}", "code", json_object_get (error, "code"),
                          "message", json_object_get (error, "message"));
    if (copy && data)
        json_object_set (copy, "data", data);
    json_decref (detail);
    return copy;
}

char *
sb_mcp_call_reply (const json_t *id, sb_status_t status, const uint8_t *payload, size_t size)
{
    char sentence [512];
    if (status == SB_STATUS_OK) {
        //  The worker's CallToolResult goes out as it came: checked by a
        //  scan, not parsed and printed again (the costliest step of a
        //  reply when it was done with jansson).
        sb_job_result_t ok = { 0 };
        char content = 0;
        char *body = NULL;
        if (payload && sb_job_result_decode (payload, size, &ok) == 0 && ok.result
        &&  sb_json_scan (ok.result, strlen (ok.result), "content", &content) == 0
        &&  content == '[')         //  an object whose content is an array
            body = sb_rpc_result_text (id, ok.result, strlen (ok.result));
        sb_job_result_clear (&ok);
        if (body)
            return body;
    }
    json_t *detail = status == SB_STATUS_OK? NULL: s_payload_json (payload, size);
    json_t *result = NULL;
    const char *type = sb_status_name (status);

    switch (status) {
        case SB_STATUS_OK:
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
