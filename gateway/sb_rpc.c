/*  gateway/sb_rpc.c — JSON-RPC 2.0 envelope parsing and reply building.
    Every check fails into one INVALID outcome with the standard code and a
    sentence; nothing here trusts the body's shape. */
#include "sb_rpc.h"
#include "sb_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Marks `rpc` invalid with `code` and a formatted message; returns code.
static int
s_invalid (sb_rpc_t *rpc, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_invalid (sb_rpc_t *rpc, int code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (rpc->error_msg, sizeof rpc->error_msg, fmt, args);
    va_end (args);
    rpc->kind = SB_RPC_KIND_INVALID;
    rpc->error_code = code;
    rpc->method = NULL;
    rpc->params = NULL;
    return code;
}

bool
sb_rpc_id_valid (const json_t *id)
{
    return json_is_string (id) || json_is_integer (id);
}

int
sb_rpc_parse (const char *body, size_t len, sb_rpc_t *rpc)
{
    memset (rpc, 0, sizeof *rpc);
    if (len > SB_MAX_HTTP_BODY)
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "Request body is larger than %u bytes",
                          (unsigned) SB_MAX_HTTP_BODY);
    json_error_t error;
    rpc->root = sb_json_parse (body, len, JSON_DECODE_ANY, &error);
    if (!rpc->root)
        return s_invalid (rpc, SB_RPC_PARSE_ERROR, "Parse error: %s (line %d, column %d)",
                          error.text, error.line, error.column);
    if (json_is_array (rpc->root))
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "Batch requests are not supported");
    if (!json_is_object (rpc->root))
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "A JSON-RPC message must be an object");

    json_t *id = json_object_get (rpc->root, "id");
    if (id && !sb_rpc_id_valid (id))
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "\"id\" must be a string or an integer");
    rpc->id = id;

    json_t *version = json_object_get (rpc->root, "jsonrpc");
    if (!json_is_string (version) || strcmp (json_string_value (version), "2.0") != 0)
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");

    json_t *method = json_object_get (rpc->root, "method");
    if (!method) {
        //  A response from the client (to a server request) needs an id
        //  and exactly one of result / error.
        bool has_result = json_object_get (rpc->root, "result") != NULL;
        bool has_error = json_object_get (rpc->root, "error") != NULL;
        if (id && has_result != has_error) {
            rpc->kind = SB_RPC_KIND_RESPONSE;
            return 0;
        }
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "\"method\" is missing");
    }
    if (!json_is_string (method))
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "\"method\" must be a string");
    size_t method_len = json_string_length (method);
    const char *name = json_string_value (method);
    if (method_len == 0 || method_len > SB_MAX_RPC_METHOD_LEN || strlen (name) != method_len)
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "\"method\" is empty, too long or holds NUL");

    json_t *params = json_object_get (rpc->root, "params");
    if (params && !json_is_object (params) && !json_is_array (params))
        return s_invalid (rpc, SB_RPC_INVALID_REQUEST, "\"params\" must be an object or an array");

    rpc->method = name;
    rpc->params = params;
    rpc->kind = id? SB_RPC_KIND_REQUEST: SB_RPC_KIND_NOTIFICATION;
    return 0;
}

void
sb_rpc_clear (sb_rpc_t *rpc)
{
    json_decref (rpc->root);
    memset (rpc, 0, sizeof *rpc);
}

//  Wraps `member` (taken) as the "result" or "error" of a reply to `id`.
static char *
s_reply (const json_t *id, const char *key, json_t *member)
{
    char *text = NULL;
    json_t *reply = json_object ();
    if (!reply || !member)
        goto out;
    json_t *id_copy = id? json_deep_copy (id): json_null ();
    if (json_object_set_new (reply, "jsonrpc", json_string ("2.0"))
    ||  json_object_set_new (reply, "id", id_copy)
    ||  json_object_set (reply, key, member))
        goto out;
    text = sb_json_dump (reply, NULL);
out:
    json_decref (member);
    json_decref (reply);
    return text;
}

char *
sb_rpc_result (const json_t *id, json_t *result)
{
    return s_reply (id, "result", result);
}

char *
sb_rpc_result_text (const json_t *id, const char *result, size_t len)
{
    char *id_text = id? json_dumps (id, JSON_COMPACT | JSON_ENCODE_ANY): NULL;
    const char *id_json = id_text? id_text: "null";
    static const char head [] = "{\"jsonrpc\":\"2.0\",\"id\":";
    static const char middle [] = ",\"result\":";
    size_t id_len = strlen (id_json);
    size_t size = sizeof head - 1 + id_len + sizeof middle - 1 + len + 2;
    char *text = (id_text || !id)? malloc (size): NULL;
    if (text) {
        char *at = text;
        memcpy (at, head, sizeof head - 1);     at += sizeof head - 1;
        memcpy (at, id_json, id_len);           at += id_len;
        memcpy (at, middle, sizeof middle - 1); at += sizeof middle - 1;
        memcpy (at, result, len);               at += len;
        *at++ = '}';
        *at = 0;
    }
    free (id_text);
    return text;
}

char *
sb_rpc_error (const json_t *id, int code, const char *message)
{
    json_t *error = json_pack ("{s:i, s:s}", "code", code, "message", message? message: "");
    if (!error)     //  message was not valid UTF-8 (e.g. quoted from bad input)
        error = json_pack ("{s:i, s:s}", "code", code, "message", "Invalid request");
    return s_reply (id, "error", error);
}
