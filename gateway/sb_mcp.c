/*  gateway/sb_mcp.c — MCP method dispatch over a parsed JSON-RPC message and
    the mapping of broker replies into tool results. Every error a person may
    see is a full sentence. */
#include "gateway/sb_mcp.h"
#include "proto/sb_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_versions [] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };

static const char s_instructions [] =
    "switchboard connects you to this organisation's business systems (CRM and "
    "other SaaS tools). Use tools/list to see what is available; each tool says "
    "what it reads or changes.";

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
s_initialize (sb_rpc_t *rpc, const char *version, sb_mcp_outcome_t *out)
{
    const char *requested = NULL;
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
    }
    json_t *result = json_pack ("{s:s, s:{s:{s:b}}, s:{s:s, s:s}, s:s}",
        "protocolVersion", sb_mcp_negotiate_version (requested),
        "capabilities", "tools", "listChanged", 0,
        "serverInfo", "name", "switchboard", "version", version? version: "0",
        "instructions", s_instructions);
    s_result (out, rpc->id, result);
}

static void
s_tools_list (sb_rpc_t *rpc, sb_connectors_t *connectors, sb_mcp_outcome_t *out)
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
    //  One page holds every tool (SB_MAX_TOOLS bounds it); no nextCursor.
    json_t *tools = json_array ();
    size_t count = connectors? sb_connectors_tool_count (connectors): 0;
    for (size_t i = 0; tools && i < count; i++) {
        json_t *descriptor = sb_tool_descriptor (sb_connectors_tool_at (connectors, i));
        if (!descriptor || json_array_append_new (tools, descriptor)) {
            json_decref (tools);
            tools = NULL;
        }
    }
    if (!tools) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    s_result (out, rpc->id, json_pack ("{s:o}", "tools", tools));
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
    if (!out->args) {
        s_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    out->action = SB_MCP_CALL;
    out->tool = tool;
    out->id = json_deep_copy (rpc->id);
}

void
sb_mcp_handle (sb_connectors_t *connectors, const char *version,
               const char *body, size_t len, sb_mcp_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    sb_rpc_t rpc;
    if (sb_rpc_parse (body, len, &rpc)) {
        s_error (out, 400, rpc.id, rpc.error_code, rpc.error_msg);
        sb_rpc_clear (&rpc);
        return;
    }
    if (rpc.kind != SB_RPC_KIND_REQUEST) {
        //  Notifications (initialized, cancelled…) and client responses
        //  need no answer.
        out->action = SB_MCP_ACCEPTED;
        out->http_status = 202;
    }
    else
    if (strcmp (rpc.method, "initialize") == 0)
        s_initialize (&rpc, version, out);
    else
    if (strcmp (rpc.method, "ping") == 0)
        s_result (out, rpc.id, json_object ());
    else
    if (strcmp (rpc.method, "tools/list") == 0)
        s_tools_list (&rpc, connectors, out);
    else
    if (strcmp (rpc.method, "tools/call") == 0)
        s_tools_call (&rpc, connectors, out);
    else {
        char message [SB_MAX_RPC_ERROR_LEN];
        snprintf (message, sizeof message, "Method not found: %.128s", rpc.method);
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
