/*  gateway/sb_mcp.c — MCP method dispatch over a parsed JSON-RPC message,
    for every revision; the outcome it fills (a tagged union); the methods
    every revision has (initialize, ping, the lists with signed cursors,
    tools/call's checks, resources, prompts, completion, logging). What is
    2026-07-28's alone is in sb_mcp_stateless.c and sb_mcp_listen.c, the
    mapping of broker replies in sb_mcp_reply.c (sb_mcp_int.h). Every
    error a person may see is a full sentence. */
#include "sb_mcp_int.h"
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

//  The revisions' names, by sb_mcp_revision_t.
static const char *s_revisions [] = {
    [SB_MCP_2025_03_26] = "2025-03-26",
    [SB_MCP_2025_06_18] = "2025-06-18",
    [SB_MCP_2025_11_25] = "2025-11-25",
    [SB_MCP_2026_07_28] = "2026-07-28",
};
#define S_REVISIONS (sizeof s_revisions / sizeof s_revisions [0])

const char sb_mcp_instructions [] =
    "switchboard connects you to this organisation's business systems (CRM and "
    "other SaaS tools). Use tools/list to see what is available; each tool says "
    "what it reads or changes.";

json_t *
sb_mcp_supported (void)
{
    json_t *versions = json_array ();
    for (size_t i = S_REVISIONS; versions && i-- > 0; )
        if (s_revisions [i])
            json_array_append_new (versions, json_string (s_revisions [i]));
    return versions;
}

sb_mcp_revision_t
sb_mcp_revision_parse (const char *name, size_t len)
{
    for (size_t i = 0; name && i < S_REVISIONS; i++)
        if (s_revisions [i] && strlen (s_revisions [i]) == len && memcmp (name, s_revisions [i], len) == 0)
            return (sb_mcp_revision_t) i;
    return SB_MCP_REVISION_NONE;
}

const char *
sb_mcp_revision_name (sb_mcp_revision_t revision)
{
    return (size_t) revision < S_REVISIONS? s_revisions [revision]: NULL;
}

sb_mcp_revision_t
sb_mcp_negotiate (const char *requested)
{
    sb_mcp_revision_t revision = requested? sb_mcp_revision_parse (requested, strlen (requested))
                                          : SB_MCP_REVISION_NONE;
    return revision == SB_MCP_REVISION_NONE || SB_MCP_STATELESS (revision)? SB_MCP_REVISION_LATEST: revision;
}

//  Frees what the payload of `out`'s kind owns and zeroes it.
static void
s_release (sb_mcp_outcome_t *out)
{
    switch (out->action) {
        case SB_MCP_REPLY:
            free (out->as.reply.body);
            json_decref (out->as.reply.client_caps);
            free (out->as.reply.subscribe_uri);
            break;
        case SB_MCP_ACCEPTED:
            json_decref (out->as.accepted.cancel_id);
            json_decref (out->as.accepted.response);
            break;
        case SB_MCP_CALL:
            json_decref (out->as.call.id);
            free (out->as.call.args);
            json_decref (out->as.call.progress_token);
            json_decref (out->as.call.input_responses);
            free (out->as.call.request_state);
            break;
        case SB_MCP_LISTEN:
            json_decref (out->as.listen.id);
            free (out->as.listen.body);
            json_decref (out->as.listen.uris);
            json_decref (out->as.listen.tasks);
            break;
        case SB_MCP_TASK:
            json_decref (out->as.task.id);
            free (out->as.task.task_id);
            json_decref (out->as.task.input_responses);
            break;
        case SB_MCP_EVENTS:
            json_decref (out->as.events.id);
            free (out->as.events.uri);
            free (out->as.events.connector);
            break;
    }
    memset (&out->as, 0, sizeof out->as);
}

void
sb_mcp_out_become (sb_mcp_outcome_t *out, sb_mcp_action_t action)
{
    if (out->action != action) {
        s_release (out);
        out->action = action;
    }
}

void
sb_mcp_out_reply (sb_mcp_outcome_t *out, int http_status, char *body)
{
    sb_mcp_out_become (out, SB_MCP_REPLY);
    free (out->as.reply.body);
    out->as.reply.body = body;
    out->http_status = body? http_status: 500;
}

void
sb_mcp_out_error (sb_mcp_outcome_t *out, int http_status, const json_t *id, int code, const char *message)
{
    sb_mcp_out_reply (out, http_status, sb_rpc_error (id, code, message));
}

void
sb_mcp_out_result (sb_mcp_outcome_t *out, const json_t *id, json_t *result)
{
    char *body = sb_rpc_result (id, result);
    if (body)
        sb_mcp_out_reply (out, 200, body);
    else
        sb_mcp_out_error (out, 500, id, SB_RPC_INTERNAL_ERROR, "Internal error");
}

static void
s_initialize (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *requested = NULL;
    json_t *client_caps = NULL;
    if (rpc->params) {
        if (!json_is_object (rpc->params)) {
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "initialize params must be an object");
            return;
        }
        json_t *pv = json_object_get (rpc->params, "protocolVersion");
        if (pv && !json_is_string (pv)) {
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "protocolVersion must be a string");
            return;
        }
        requested = json_string_value (pv);
        client_caps = json_object_get (rpc->params, "capabilities");
        if (client_caps && !json_is_object (client_caps)) {
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "capabilities must be an object");
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
    sb_mcp_revision_t negotiated = sb_mcp_negotiate (requested);
    json_t *result = json_pack ("{s:s, s:o, s:{s:s, s:s}, s:s}",
        "protocolVersion", sb_mcp_revision_name (negotiated),
        "capabilities", caps,
        "serverInfo", "name", "switchboard", "version", env->version? env->version: "0",
        "instructions", sb_mcp_instructions);
    sb_mcp_out_result (out, rpc->id, result);
    if (out->http_status == 200) {
        out->as.reply.negotiated = negotiated;
        out->as.reply.client_caps = json_incref (client_caps);
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
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/list params must be an object");
        return;
    }
    json_t *cursor = rpc->params? json_object_get (rpc->params, "cursor"): NULL;
    if (cursor && !json_is_string (cursor)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "cursor must be a string");
        return;
    }
    size_t count = env->connectors? sb_connectors_tool_count (env->connectors): 0;
    size_t offset = 0;
    if (cursor && s_cursor_decode (env, json_string_value (cursor), count, &offset)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
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
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    sb_mcp_out_result (out, rpc->id, result);
}

static void
s_tools_call (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    sb_connectors_t *connectors = env->connectors;
    char message [SB_MAX_RPC_ERROR_LEN];
    if (!json_is_object (rpc->params)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/call params must be an object");
        return;
    }
    json_t *name = json_object_get (rpc->params, "name");
    if (!json_is_string (name)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/call needs a string \"name\"");
        return;
    }
    const sb_tool_t *tool = connectors? sb_connectors_find_tool (connectors, json_string_value (name)): NULL;
    if (!tool || !s_tool_shown (env, tool)) {
        snprintf (message, sizeof message, "Unknown tool: %.128s", json_string_value (name));
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        return;
    }
    sb_task_support_t task_support = sb_tool_task_support (tool);
    if (task_support == SB_TASK_REQUIRED && !out->tasks) {
        //  It runs only as a task, and only a 2026-07-28 client that
        //  declares the extension can take one.
        if (SB_MCP_STATELESS (out->revision)) {
            snprintf (message, sizeof message, "The tool %.64s runs as a task: the client must declare "
                      "the " SB_MCP_TASKS_EXTENSION " extension to call it.", json_string_value (name));
            sb_mcp_missing_tasks (out, rpc->id, message);
        }
        else {
            snprintf (message, sizeof message, "The tool %.64s runs only as a task, which needs an "
                      "MCP 2026-07-28 client that supports the " SB_MCP_TASKS_EXTENSION " extension.",
                      json_string_value (name));
            sb_mcp_out_result (out, rpc->id, sb_mcp_error_result (message, "needs_tasks", 0));
        }
        return;
    }
    json_t *args = json_object_get (rpc->params, "arguments");
    if (args && !json_is_object (args)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "tools/call \"arguments\" must be an object");
        return;
    }
    json_t *empty = args? NULL: json_object ();
    if (!args)
        args = empty;
    char *error = NULL;
    if (sb_tool_check_args (tool, args, &error)) {
        //  A tool-level error: the model can read it and correct itself.
        sb_mcp_out_result (out, rpc->id, sb_mcp_error_result (
            error? error: "The arguments do not match the tool's input schema.",
            "invalid_arguments", 0));
        free (error);
        json_decref (empty);
        return;
    }
    sb_mcp_out_become (out, SB_MCP_CALL);
    out->as.call.task_capable = out->tasks && task_support != SB_TASK_FORBIDDEN;
    out->as.call.args = sb_json_dump (args, NULL);
    json_decref (empty);
    json_t *meta = json_object_get (rpc->params, "_meta");
    json_t *token = json_is_object (meta)? json_object_get (meta, "progressToken"): NULL;
    out->as.call.progress = json_is_string (token) || json_is_integer (token);
    out->as.call.progress_token = out->as.call.progress? json_incref (token): NULL;
    out->as.call.tool = tool;
    out->as.call.id = json_deep_copy (rpc->id);
    if (!out->as.call.args || !out->as.call.id) {
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    if (SB_MCP_STATELESS (out->revision))
        sb_mcp_input_params (rpc, out, &out->as.call.input_responses, &out->as.call.request_state);
}

//  True when params is an object; else answers -32602.
static bool
s_params (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    if (json_is_object (rpc->params))
        return true;
    char message [SB_MAX_RPC_ERROR_LEN];
    snprintf (message, sizeof message, "%.128s params must be an object", rpc->method);
    sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
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
    sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
    return NULL;
}

//  resources/list, resources/templates/list, prompts/list: one page; a
//  cursor is never issued, so any cursor given is invalid.
static void
s_catalog_list (sb_rpc_t *rpc, const sb_mcp_env_t *env, const char *key,
                json_t *(*list) (sb_connectors_t *), sb_mcp_outcome_t *out)
{
    if (rpc->params && !json_is_object (rpc->params)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "params must be an object");
        return;
    }
    if (rpc->params && json_object_get (rpc->params, "cursor")) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
                 "The cursor is not valid; list again from the start.");
        return;
    }
    json_t *items = env->connectors? list (env->connectors): json_array ();
    if (!json_is_array (items)) {
        json_decref (items);
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    for (size_t i = json_array_size (items); list == sb_connectors_prompts && i-- > 0;)
        if (!s_prompt_shown (env, json_string_value (json_object_get (json_array_get (items, i),
                                                                      "name"))))
            json_array_remove (items, i);
    sb_mcp_out_result (out, rpc->id, json_pack ("{s:o}", key, items));
}

bool
sb_mcp_events_uri (sb_connectors_t *connectors, const char *uri)
{
    size_t n = strlen (SB_MCP_EVENTS_PREFIX);
    return connectors && strncmp (uri, SB_MCP_EVENTS_PREFIX, n) == 0 && uri [n]
        && sb_connectors_find (connectors, uri + n) != NULL;
}

//  The set's resource templates and the event log's (new array).
static json_t *
s_resource_templates (sb_connectors_t *connectors)
{
    json_t *items = sb_connectors_resource_templates (connectors);
    if (json_is_array (items)
    &&  json_array_append_new (items, json_pack ("{s:s, s:s, s:s, s:s, s:s}",
                               "uriTemplate", SB_MCP_EVENTS_TEMPLATE, "name", "events",
                               "title", "Events",
                               "description", "The latest events a connector's provider sent "
                               "(webhooks), newest first; subscribe to hear of new ones.",
                               "mimeType", "application/json"))) {
        json_decref (items);
        return NULL;
    }
    return items;
}

//  resources/read of the event log of a connector: the webhook service
//  answers (SB_MCP_EVENTS, gateway/sb_webhook.c).
static void
s_events_read (sb_rpc_t *rpc, const char *uri, sb_mcp_outcome_t *out)
{
    char *copy = strdup (uri);
    char *connector = strdup (uri + strlen (SB_MCP_EVENTS_PREFIX));
    json_t *id = json_incref (rpc->id);
    if (!copy || !connector || !id) {
        free (copy);
        free (connector);
        json_decref (id);
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    sb_mcp_out_become (out, SB_MCP_EVENTS);
    out->http_status = 0;
    out->as.events.id = id;
    out->as.events.uri = copy;
    out->as.events.connector = connector;
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
    char *body = reply? sb_json_dump (reply, NULL): NULL;
    json_decref (reply);
    if (body)
        sb_mcp_out_reply (out, 200, body);
    else
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_RESOURCE_NOT_FOUND, "Resource not found");
}

static void
s_resources_read (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *uri = s_string_param (rpc, rpc->params, "uri", out);
    if (!uri)
        return;
    if (sb_mcp_events_uri (env->connectors, uri)) {
        s_events_read (rpc, uri, out);
        return;
    }
    json_t *contents = NULL;
    char *error = NULL;
    if (!env->connectors || sb_connectors_resource_read (env->connectors, uri, &contents, &error)) {
        free (error);
        s_not_found (rpc, uri, out);
        return;
    }
    sb_mcp_out_result (out, rpc->id, json_pack ("{s:o}", "contents", contents));
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
    if (on && !sb_mcp_events_uri (env->connectors, uri)
    &&  (!env->connectors || sb_connectors_resource_read (env->connectors, uri, &contents, &error))) {
        free (error);
        s_not_found (rpc, uri, out);
        return;
    }
    json_decref (contents);
    char *copy = strdup (uri);
    if (!copy) {
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    sb_mcp_out_result (out, rpc->id, json_object ());
    if (out->http_status == 200) {
        out->as.reply.subscribe_uri = copy;
        out->as.reply.subscribe = on? 1: -1;
    }
    else
        free (copy);
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
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        return;
    }
    json_t *args = json_incref (json_object_get (rpc->params, "arguments"));
    if (args && !json_is_object (args)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "prompts/get \"arguments\" must be an object");
        json_decref (args);
        return;
    }
    if (SB_MCP_STATELESS (out->revision)
    &&  (!sb_mcp_input_params (rpc, out, NULL, NULL) || sb_mcp_prompt_inputs (rpc, env, name, &args, out))) {
        json_decref (args);
        return;
    }
    json_t *result = NULL;
    char *error = NULL;
    if (!env->connectors || sb_connectors_prompt_get (env->connectors, name, args, &result, &error)) {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "%.200s", error? error: "Unknown prompt");
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        free (error);
        json_decref (args);
        return;
    }
    json_decref (args);
    sb_mcp_out_result (out, rpc->id, result);
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
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
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
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    sb_mcp_out_result (out, rpc->id, json_pack ("{s:o}", "completion", completion));
}

static void
s_set_level (sb_rpc_t *rpc, sb_mcp_outcome_t *out)
{
    int level = sb_relay_level (json_string_value (json_object_get (rpc->params, "level")));
    if (level >= 0) {
        //  Kept by the endpoint for the session; notifications/message
        //  from workers below it are not sent.
        sb_mcp_out_result (out, rpc->id, json_object ());
        if (out->http_status == 200)
            out->as.reply.set_level = level + 1;
        return;
    }
    sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS,
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

//  Dispatch of a checked 2026-07-28 request.
static void
s_stateless_request (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    const char *m = rpc->method;
    if (strcmp (m, "server/discover") == 0)
        sb_mcp_discover (rpc, out);
    else
    if (strcmp (m, "subscriptions/listen") == 0)
        sb_mcp_listen (rpc, env, out);
    else
    if (strcmp (m, "tools/list") == 0)
        s_tools_list (rpc, env, out);
    else
    if (strcmp (m, "tools/call") == 0) {
        //  Mcp-Param-* headers against the arguments (sb_param_header.h).
        char problem [SB_PARAM_HEADER_PROBLEM];
        if (sb_param_headers_check_call (env->headers->params, env->connectors, rpc->params,
                                         problem, sizeof problem))
            sb_mcp_out_error (out, 400, rpc->id, SB_RPC_HEADER_MISMATCH, problem);
        else
            s_tools_call (rpc, env, out);
    }
    else
    if (strcmp (m, "resources/list") == 0)
        s_catalog_list (rpc, env, "resources", sb_connectors_resources, out);
    else
    if (strcmp (m, "resources/templates/list") == 0)
        s_catalog_list (rpc, env, "resourceTemplates", s_resource_templates, out);
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
    if (sb_mcp_is_task_method (m))
        sb_mcp_tasks_request (rpc, out);
    else {
        //  Unknown, or gone in this revision (initialize, ping,
        //  logging/setLevel, resources/subscribe…): 404 as the transport says.
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "Method not found: %.128s (MCP 2026-07-28)", m);
        sb_mcp_out_error (out, 404, rpc->id, SB_RPC_METHOD_NOT_FOUND, message);
        return;
    }
    if (out->action == SB_MCP_REPLY && out->as.reply.body)
        out->as.reply.body = sb_mcp_stateless_reply (out->as.reply.body, env->version, sb_mcp_cacheable (m));
}

//  A 2026-07-28 message.
static void
s_stateless (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    if (rpc->kind == SB_RPC_KIND_RESPONSE) {
        sb_mcp_out_error (out, 400, rpc->id, SB_RPC_INVALID_REQUEST,
                 "MCP 2026-07-28 clients send no JSON-RPC responses: input requests are answered "
                 "by retrying the request with inputResponses.");
        return;
    }
    if (rpc->kind == SB_RPC_KIND_NOTIFICATION) {
        //  None is defined on HTTP in this revision (closing the stream
        //  cancels); taken and ignored.
        sb_mcp_out_become (out, SB_MCP_ACCEPTED);
        out->http_status = 202;
        return;
    }
    if (sb_mcp_stateless_check (rpc, env->headers, out))
        s_stateless_request (rpc, env, out);
    if (out->action != SB_MCP_CALL)
        out->log_level = 0;
}

void
sb_mcp_handle (const sb_mcp_env_t *env, const char *body, size_t len, sb_mcp_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    sb_rpc_t rpc;
    if (sb_rpc_parse (body, len, &rpc)) {
        sb_mcp_out_error (out, 400, rpc.id, rpc.error_code, rpc.error_msg);
        sb_rpc_clear (&rpc);
        return;
    }
    const char *m = rpc.method;
    const sb_mcp_headers_t *h = env->headers;
    out->revision = h && h->protocol? sb_mcp_revision_parse (h->protocol, h->protocol_len)
                                    : SB_MCP_REVISION_DEFAULT;
    if (SB_MCP_STATELESS (out->revision))
        s_stateless (&rpc, env, out);
    else
    if (rpc.kind == SB_RPC_KIND_REQUEST && sb_mcp_legacy_meta_mismatch (&rpc, env->headers, out))
        ;
    else
    if (rpc.kind != SB_RPC_KIND_REQUEST) {
        //  Notifications (initialized, cancelled…) and client responses
        //  need no answer.
        sb_mcp_out_become (out, SB_MCP_ACCEPTED);
        out->http_status = 202;
        if (rpc.kind == SB_RPC_KIND_RESPONSE)
            out->as.accepted.response = json_incref (rpc.root);
        else
            out->as.accepted.cancel_id = s_cancel_id (&rpc);
    }
    else
    if (strcmp (m, "initialize") == 0)
        s_initialize (&rpc, env, out);
    else
    if (strcmp (m, "ping") == 0)
        sb_mcp_out_result (out, rpc.id, json_object ());
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
        s_catalog_list (&rpc, env, "resourceTemplates", s_resource_templates, out);
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
        sb_mcp_out_error (out, 200, rpc.id, SB_RPC_METHOD_NOT_FOUND, message);
    }
    sb_rpc_clear (&rpc);
}

void
sb_mcp_outcome_clear (sb_mcp_outcome_t *out)
{
    s_release (out);
    memset (out, 0, sizeof *out);
}

