/*  gateway/sb_mcp_reply.c — a broker REPLY to a tools/call mapped into the
    JSON-RPC response for the client: the worker's CallToolResult, a
    JSON-RPC error it asked for (payload/sb_payload.h failures), or an
    isError result with a sentence for a person and _meta for machines. */
#include "sb_mcp_int.h"
#include "sb_json_scan.h"
#include "sb_payload.h"
#include "sb_ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

//  Decodes a failed REPLY payload into `out` (clear it afterwards); -1
//  when it is not a failure as payload/sb_payload.h has it.
static int
s_failure (const uint8_t *payload, size_t size, sb_failure_t *out)
{
    memset (out, 0, sizeof *out);
    sb_job_result_t result = { 0 };
    if (!payload || size == 0 || sb_job_result_decode (payload, size, &result) || !result.result) {
        sb_job_result_clear (&result);
        return -1;
    }
    const char *why = NULL;
    int rc = sb_payload_failure_decode (result.result, strlen (result.result), out, &why);
    sb_job_result_clear (&result);
    return rc;
}

char *
sb_mcp_call_error (const json_t *id, const uint8_t *payload, size_t size)
{
    sb_failure_t failure;
    json_t *error = s_failure (payload, size, &failure) == 0? failure.rpc_error: NULL;
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
    sb_payload_failure_clear (&failure);
    return body;
}

json_t *
sb_mcp_rpc_error (const uint8_t *payload, size_t size)
{
    sb_failure_t failure;
    json_t *error = NULL;
    if (s_failure (payload, size, &failure) == 0) {
        error = failure.rpc_error;          //  taken
        failure.rpc_error = NULL;
    }
    sb_payload_failure_clear (&failure);
    return error;
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
    sb_failure_t failure = { 0 };
    bool readable = status != SB_STATUS_OK && s_failure (payload, size, &failure) == 0;
    if (!readable)
        sb_payload_failure_clear (&failure);        //  read as a failure that gives nothing
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
            int seconds = failure.retry_after? failure.retry_after: SB_MCP_DEFAULT_RETRY_S;
            snprintf (sentence, sizeof sentence,
                      "switchboard is handling too many requests right now. Please try again in %d "
                      "second%s.", (int) seconds, seconds == 1? "": "s");
            result = sb_mcp_error_result (sentence, type, (int) seconds);
            break;
        }
        case SB_STATUS_UNAVAILABLE: {
            //  From the broker (no worker serves the tool's service: the
            //  broker client passes its retry advice as a failure) or from
            //  the gateway itself (the broker is unreachable: no payload,
            //  the heartbeat silence is the advice)
            int seconds = readable? (failure.retry_after? failure.retry_after: SB_MCP_DEFAULT_RETRY_S)
                                  : SB_MCP_UNREACHABLE_RETRY_S;
            snprintf (sentence, sizeof sentence, "%s Please try again in %d second%s.",
                      readable? "The service that runs this tool is unavailable right now "
                                "(none of its workers is running)."
                              : "switchboard cannot reach its job broker right now, so the tool "
                                "was not run.",
                      seconds, seconds == 1? "": "s");
            result = sb_mcp_error_result (sentence, type, seconds);
            break;
        }
        case SB_STATUS_LIMITED: {
            //  Without its quota group (sb_call.c answers with it): the
            //  retry advice alone, in the same shape.
            sb_msg_quota_t none = { 0 };
            sb_limited_t limited;
            sb_limited_describe (&none, readable? (uint32_t) failure.retry_after * 1000: 0, NULL,
                                 NULL, 0, &limited);
            result = sb_limited_result (&limited);
            break;
        }
        case SB_STATUS_FAILED: {
            if (failure.message)
                snprintf (sentence, sizeof sentence, "The tool could not be run: %.*s",
                          SB_MAX_MCP_ERROR_DETAIL, failure.message);
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
    sb_payload_failure_clear (&failure);
    if (!result)
        return sb_rpc_error (id, SB_RPC_INTERNAL_ERROR, "Internal error");
    return sb_rpc_result (id, result);
}
