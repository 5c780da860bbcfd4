/*  payload/sb_payload.h — the JSON conventions that travel inside job
    results between workers and gateways, with one typed encode and one
    checked decode that both sides call (proto/PROTOCOL.md, "Result
    conventions"):

      promote signal   NOTIFY      {"jsonrpc":"2.0","method":"switchboard/promote"}
      input-required   RESULT ok   {"resultType":"input_required",
                                    "inputRequests":{key:{"method","params"}…},
                                    "inputsUsed":[key…]}
      failure          RESULT not ok  {"error": sentence[, "rpc_error":
                                    {"code","message"[,"data"]}][, "retry_after": s]}
      answer           a question's response  {"result": …} | {"error": {"code","message"[,"data"]}}

    proto/ carries each of them as opaque JSON text in its result map
    (proto/sb_job.h) and links no JSON; this library sits beside it for the
    two sides that read JSON, gateways and workers. The broker links neither
    (cmake/sb_layers.cmake). Decoders read text from the network: every
    check fails into one -1 with a sentence in *why, never an assert. */
#ifndef SB_PAYLOAD_H_INCLUDED
#define SB_PAYLOAD_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_job.h"

#define SB_PAYLOAD_PROMOTE_METHOD   "switchboard/promote"
/*  The promote signal, exactly (a NOTIFY's notification text). */
#define SB_PAYLOAD_PROMOTE_JSON     "{\"jsonrpc\":\"2.0\",\"method\":\"" SB_PAYLOAD_PROMOTE_METHOD "\"}"
#define SB_MAX_INPUT_REQUESTS       8       /* questions one input-required result carries */
#define SB_MAX_INPUTS_USED          64      /* keys one input-required result says it used */
#define SB_MAX_RETRY_AFTER_S        86400   /* largest retry_after a failure may give */
/*  JSON-RPC error codes a question may be answered with. */
#define SB_PAYLOAD_NOT_ASKED        -32601  /* no client is asked this method */
#define SB_PAYLOAD_MISSING_CAPABILITY -32021 /* the client did not declare the capability;
                                               data: {requiredCapabilities} */

/*  ---------------------------------------------------------------------
    The promote signal: a worker asks the gateway to turn its call into a
    task (PROTOCOL.md, "Tasks"). */

/*  True when `len` bytes of `json` are the promote signal: a JSON-RPC
    notification (no id) whose method is SB_PAYLOAD_PROMOTE_METHOD. Anything
    else, JSON or not, is not. */
bool sb_payload_is_promote (const char *json, size_t len);

/*  ---------------------------------------------------------------------
    Questions a job may ask the client. */

/*  The client capability (SB_JOB_CAP_*) a question `method` with `params`
    (may be NULL) needs: elicitation/create (url mode: ELICIT_URL),
    sampling/createMessage, roots/list. 0 for any other method: no client
    is asked it. */
uint32_t sb_payload_question_cap (const char *method, const json_t *params);

/*  The requiredCapabilities object (a new ClientCapabilities reference)
    that names capability `cap` (one SB_JOB_CAP_* bit), for a -32021 error;
    NULL for 0 or an unknown bit. */
json_t *sb_payload_question_required (uint32_t cap);

/*  ---------------------------------------------------------------------
    Input-required results (MCP 2026-07-28, PROTOCOL.md "Input-required
    results"). */
typedef struct {
    json_t *requests;   /* inputRequests: key → {"method": str, "params": object} (owned) */
    json_t *used;       /* inputsUsed: the keys answered from the job's inputs (owned array) */
} sb_input_required_t;

/*  The result text (new string) for `self`: `requests` must hold 1 to
    SB_MAX_INPUT_REQUESTS questions under keys of 1 to SB_MAX_INPUT_KEY_LEN
    bytes, each exactly {"method", "params": object} of a method
    sb_payload_question_cap knows; `used` (NULL: none) an array of at most
    SB_MAX_INPUTS_USED such keys. NULL when it breaks one of those rules or
    out of memory. */
char *sb_payload_input_required_encode (const sb_input_required_t *self)
    __attribute__ ((warn_unused_result));

/*  Checks an inputRequests object alone, by the encoder's rules: NULL when
    it keeps them, else a sentence naming the rule broken. (The task store
    checks the questions a task keeps with it.) */
const char *sb_payload_input_requests_check (const json_t *requests);

/*  Reads `len` bytes of a RESULT's JSON text. Returns 0 when it is not an
    input-required result (not JSON, or no resultType "input_required": an
    ordinary result), `out` left empty; 1 with `out` filled (clear it
    afterwards; an absent inputsUsed is an empty array); -1 when it says
    resultType "input_required" but breaks a rule of the encoder, with
    *why a sentence naming the rule. */
int sb_payload_input_required_decode (const char *json, size_t len, sb_input_required_t *out,
                                      const char **why)
    __attribute__ ((warn_unused_result));

/*  Releases what `self` holds and zeroes it. */
void sb_payload_input_required_clear (sb_input_required_t *self);

/*  ---------------------------------------------------------------------
    Failures: the result of a job that did not succeed. */
typedef struct {
    char *message;      /* "error": a sentence for a person (owned), or NULL */
    json_t *rpc_error;  /* "rpc_error": a JSON-RPC error for the client (owned), or NULL */
    int retry_after;    /* "retry_after": seconds before trying again, 0: not given */
} sb_failure_t;

/*  True when `error` is a JSON-RPC error object: an integer "code", a
    string "message", optionally "data", nothing else. */
bool sb_payload_rpc_error_ok (const json_t *error);

/*  The result text (new string) for `self`: "error" (NULL: "failed"),
    "rpc_error" when set (must pass sb_payload_rpc_error_ok), "retry_after"
    when 1..SB_MAX_RETRY_AFTER_S. NULL when rpc_error is malformed,
    retry_after is out of range, or out of memory. */
char *sb_payload_failure_encode (const sb_failure_t *self)
    __attribute__ ((warn_unused_result));

/*  Reads `len` bytes of a failed RESULT's JSON text into `out` (clear it
    afterwards). Returns 0, or -1 with *why when the text is not a JSON
    object, "error" is not a string, "rpc_error" is not a JSON-RPC error
    object or "retry_after" not an integer 1..SB_MAX_RETRY_AFTER_S. */
int sb_payload_failure_decode (const char *json, size_t len, sb_failure_t *out,
                               const char **why)
    __attribute__ ((warn_unused_result));

/*  Releases what `self` holds and zeroes it. */
void sb_payload_failure_clear (sb_failure_t *self);

/*  ---------------------------------------------------------------------
    Answers: the response a question gets (from the client through ANSWER,
    or settled in the worker from a 2026-07-28 job's inputs). */

/*  {"result": result} (new text; `result` borrowed, any JSON value), or
    NULL when out of memory. */
char *sb_payload_answer_result (const json_t *result)
    __attribute__ ((warn_unused_result));

/*  {"error": {"code": code, "message": message[, "data": data]}} (new
    text; `data` borrowed, may be NULL). A message cut inside a UTF-8
    sequence is replaced by "the client cannot answer this request".
    NULL when out of memory. */
char *sb_payload_answer_error (int code, const char *message, const json_t *data)
    __attribute__ ((warn_unused_result));

/*  Reads `len` bytes of an answer: returns 0 with *result (a new
    reference) and *error NULL, or with *error (a JSON-RPC error object,
    new reference) and *result NULL; -1 with *why when it is not an object
    holding exactly one of "result" and a well-formed "error". */
int sb_payload_answer_decode (const char *json, size_t len, json_t **result, json_t **error,
                              const char **why)
    __attribute__ ((warn_unused_result));

#endif
