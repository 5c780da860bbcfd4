/*  gateway/sb_relay.h — the messages a tool call exchanges with its client
    while it runs (proto/PROTOCOL.md, "Inside a call"), as pure functions
    over bytes and jansson values (no sockets, no h2o), so that unit tests
    and the fuzz target drive them directly:

      - a worker's NOTIFY becomes the notification sent on the call's SSE
        stream: notifications/progress gets the client's progressToken,
        notifications/message is filtered by the session's logging level;
      - a worker's ASK becomes a JSON-RPC request to the client with id
        "sb:<corr_id>:<ask_id>" when the client can answer it (it declared
        the capability and the call has a stream), else a JSON-RPC error
        response that the gateway sends straight back as the ANSWER;
      - a client's response to such an id is checked and reduced to the
        {"result": …} or {"error": …} object that ANSWER carries.

    MCP 2026-07-28 has no server requests: a worker's questions come back as
    an input-required result instead (proto/PROTOCOL.md), which the client
    answers by sending the request again with inputResponses and the
    requestState it was given. Here are the pieces of that which need no
    socket: reading a worker's input-required result, and the requestState
    itself — the answers collected in earlier rounds and the round number,
    HMAC-signed over the tenant, the user, the method, the tool and its
    arguments, so that it cannot be altered, nor replayed by another user
    or account, for another tool or arguments, nor after
    SB_REQUEST_STATE_TTL_S.

    Plus the bounded per-gateway map of logging levels set by
    logging/setLevel. Each gateway keeps its own map; the gateway that took
    the logging/setLevel tells the others (sb_cluster.h), so a session's
    level holds wherever its calls run. */
#ifndef SB_RELAY_H_INCLUDED
#define SB_RELAY_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_msg.h"

#define SB_MAX_LOG_LEVELS       4096    /* sessions whose logging level a gateway keeps */
#define SB_RELAY_ID_PREFIX      "sb:"   /* ids of the requests a worker asks */
#define SB_MAX_RELAY_ID_LEN     (3 + SB_MAX_CORR_ID_LEN + 1 + 10)   /* "sb:<corr_id>:<ask_id>" */

#define SB_MAX_REQUEST_STATE_LEN    (64 * 1024)     /* an encoded requestState, bytes */
#define SB_REQUEST_STATE_TTL_S      900             /* how long a requestState is accepted */

/*  Log levels (RFC 5424 order, as MCP names them), from 0 (debug) to 7. */
#define SB_LOG_LEVEL_DEBUG      0
#define SB_LOG_LEVEL_EMERGENCY  7

/*  The level named `name` ("debug" … "emergency"), or -1. */
int sb_relay_level (const char *name);

/*  The notification to send (new JSON-RPC 2.0 text) for a NOTIFY `payload`
    (a sb_job result map whose `result` is a JSON-RPC notification without
    id), or NULL when it is dropped; then *why (static) says why:
    "malformed", "unsupported" (a method other than notifications/progress
    and notifications/message), "no_progress_token" (the request asked for
    no progress) or "below_level". `progress_token` (the request's
    _meta.progressToken, may be NULL) replaces any token the worker gave;
    messages below `min_level` are dropped. */
char *sb_relay_notification (const uint8_t *payload, size_t size, const json_t *progress_token,
                             int min_level, const char **why) SB_MUST_USE;

/*  What to do with an ASK: exactly one of *request (the JSON-RPC request to
    send on the call's stream, id "sb:<corr_id>:<ask_id>") and *refusal (a
    {"error": …} response for the worker, sent back at once as ANSWER) is
    set (new strings), unless out of memory (both NULL, returns -1).
    `caps` are the session's SB_CLIENT_* bits, `streamed` whether the call
    has an SSE stream. Methods relayed: elicitation/create (form mode needs
    the elicitation capability, url mode its url member), sampling/createMessage
    (sampling) and roots/list (roots). */
int sb_relay_ask (const uint8_t *payload, size_t size, const char *corr_id, uint32_t ask_id,
                  unsigned caps, bool streamed, char **request, char **refusal);

/*  Parses an id "sb:<corr_id>:<ask_id>" strictly: corr_id 1–SB_MAX_CORR_ID_LEN
    printable ASCII bytes other than space and ':', ask_id decimal without
    leading zeros, 1–UINT32_MAX. Returns 0 and fills corr_id (at least
    SB_MAX_CORR_ID_LEN + 1 bytes) and *ask_id, or -1. */
int sb_relay_parse_id (const char *id, char *corr_id, uint32_t *ask_id) SB_MUST_USE;

/*  The ANSWER text (new string) for a client's JSON-RPC response object:
    {"result": …} or {"error": …}, or NULL when it has neither or both. */
char *sb_relay_answer (const json_t *response) SB_MUST_USE;

/*  What a requestState is bound to (all borrowed). */
typedef struct {
    const char *tenant;     /* the caller's tenant (from the token) */
    const char *principal;  /* the caller within it (the token's subject) */
    const char *method;     /* the request's method, e.g. "tools/call" */
    const char *name;       /* the tool (or prompt) named */
    const char *args;       /* its arguments, JSON text (key order does not matter); may be NULL */
} sb_relay_binding_t;

/*  A requestState (new string) carrying `round` and `answers` (an object,
    borrowed) until `expires` (Unix seconds), signed under `key`
    (SB_HMAC_SHA256_LEN bytes) for `binding`. NULL when it would be longer
    than SB_MAX_REQUEST_STATE_LEN or out of memory. */
char *sb_relay_state_encode (const uint8_t *key, const sb_relay_binding_t *binding,
                             int64_t expires, uint32_t round, const json_t *answers) SB_MUST_USE;

/*  Verifies `token` for `binding` at `now` (Unix seconds). Returns 0 with
    *round (2..SB_MAX_INPUT_ROUNDS) and *answers (new reference, an object
    of objects), or -1 with *why: a sentence for the client (altered or
    bound to something else, expired, malformed). */
int sb_relay_state_decode (const uint8_t *key, const sb_relay_binding_t *binding,
                           const char *token, int64_t now, uint32_t *round,
                           json_t **answers, const char **why) SB_MUST_USE;

/*  Reads a worker's REPLY payload (a sb_job result map). Returns 0 when it
    is not an input-required result; 1 with *requests (the inputRequests
    object) and *used (the keys answered from inputs, an array of strings)
    as new references; -1 when it claims to be one but breaks a rule of
    payload/sb_payload.h (no question or more than SB_MAX_INPUT_REQUESTS, a
    key of 0 or more than SB_MAX_INPUT_KEY_LEN bytes, a question that is not
    {method, params} of elicitation/create, sampling/createMessage or
    roots/list), or asks a question needing a capability missing from
    `caps` (SB_CLIENT_* bits). */
int sb_relay_input_required (const uint8_t *payload, size_t size, unsigned caps,
                             json_t **requests, json_t **used) SB_MUST_USE;

/*  The logging levels set in sessions on this gateway. */
typedef struct _sb_levels_t sb_levels_t;

sb_levels_t *sb_levels_new (void) SB_MUST_USE;
void sb_levels_destroy (sb_levels_t **self_p);

/*  Sets the level of session `key`; when SB_MAX_LOG_LEVELS sessions are
    kept already, the one set longest ago is forgotten first. */
void sb_levels_set (sb_levels_t *self, const char *key, int level);

/*  The level of session `key`, SB_LOG_LEVEL_DEBUG (everything) when unset. */
int sb_levels_get (sb_levels_t *self, const char *key);

/*  Sessions kept now. */
size_t sb_levels_count (sb_levels_t *self);

#endif
