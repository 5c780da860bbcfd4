/*  gateway/sb_rpc.h — the JSON-RPC 2.0 envelope of MCP messages: parsing and
    validation of one request body, and building of result / error replies.

    Pure functions over bytes and jansson values (no sockets, no h2o), so the
    unit tests and the fuzz target drive them directly. Batches (JSON arrays)
    are refused: MCP 2025-06-18 removed them. */
#ifndef SB_RPC_H_INCLUDED
#define SB_RPC_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_MAX_HTTP_BODY            (1u << 20)  /* largest POST /mcp body, bytes */
#define SB_MAX_RPC_METHOD_LEN       128         /* longest method name, bytes */
#define SB_MAX_RPC_ERROR_LEN        256         /* longest error message, bytes */

/* Standard JSON-RPC error codes. */
#define SB_RPC_PARSE_ERROR          -32700
#define SB_RPC_INVALID_REQUEST      -32600
#define SB_RPC_METHOD_NOT_FOUND     -32601
#define SB_RPC_INVALID_PARAMS       -32602
#define SB_RPC_INTERNAL_ERROR       -32603

typedef enum {
    SB_RPC_KIND_INVALID = 0,    /* error_code / error_msg say why */
    SB_RPC_KIND_REQUEST,        /* method + id: must be answered */
    SB_RPC_KIND_NOTIFICATION,   /* method, no id: answered with 202 */
    SB_RPC_KIND_RESPONSE,       /* result or error from the client: 202 */
} sb_rpc_kind_t;

/*  One parsed message. Pointers other than `root` are borrowed from it. */
typedef struct {
    sb_rpc_kind_t kind;                     /* what the body is */
    json_t *root;                           /* parsed body (owned), NULL on parse error */
    json_t *id;                             /* request id (string or integer), or NULL */
    const char *method;                     /* method name, or NULL */
    json_t *params;                         /* params (object or array), or NULL */
    int error_code;                         /* INVALID: SB_RPC_* code */
    char error_msg [SB_MAX_RPC_ERROR_LEN];  /* INVALID: a sentence for the client */
} sb_rpc_t;

/*  Parses `len` bytes of `body` into `rpc` (which need not be initialised).
    Returns 0 for a valid message, or the JSON-RPC error code (negative) with
    rpc->kind INVALID; rpc->id is still set when the body had a valid id, so
    the error reply can carry it. Always call sb_rpc_clear afterwards. */
int sb_rpc_parse (const char *body, size_t len, sb_rpc_t *rpc) SB_MUST_USE;

/*  Releases rpc->root and zeroes `rpc`. Safe on a zeroed or cleared rpc. */
void sb_rpc_clear (sb_rpc_t *rpc);

/*  {"jsonrpc":"2.0","id":id,"result":result} as compact JSON text (new
    string, caller frees). Takes the reference to `result`. `id` is borrowed;
    NULL gives "id":null. Returns NULL only when out of memory. */
char *sb_rpc_result (const json_t *id, json_t *result) SB_MUST_USE;

/*  The same reply around `result`, `len` bytes of JSON text that the caller
    has already checked (sb_json_scan): spliced in as they are, not parsed
    and printed again. Returns a new string, or NULL when out of memory. */
char *sb_rpc_result_text (const json_t *id, const char *result, size_t len) SB_MUST_USE;

/*  {"jsonrpc":"2.0","id":id,"error":{"code":code,"message":message}}, same
    ownership as sb_rpc_result. */
char *sb_rpc_error (const json_t *id, int code, const char *message) SB_MUST_USE;

/*  True when id is a valid JSON-RPC id for MCP (string or integer). */
bool sb_rpc_id_valid (const json_t *id);

#endif
