/*  proto/sb_job.h — job and result payloads (the body inside REQUEST/JOB and
    REPLY/RESULT frames), msgpack maps. The broker never reads these.

    Job:    { "v": 1, "op": str, "connector": str, "tool": str, "args": str,
              "inputs": str, "caps": uint, "round": uint,
              "task": str, "subject": str, "data": str, "body": bin }
            op "tools/call": run connector tool with args (JSON object text)
            op "ping":       prove the worker (and its database) is alive
            inputs (MCP 2026-07-28 calls only): the client's answers so far,
            JSON object text {key: result}; its presence means the worker's
            questions go back as an input-required result, never as ASK.
            caps: the SB_JOB_CAP_* the client declared; round: which
            request of the call this is (1 = the first, no requestState).
            task, subject, data (the task store's ops, service "task",
            workers/sb_task_role.h): the task's id, the token's subject
            (the user; "" allowed), and op-specific JSON text.
            body (op "webhook/receive", PROTOCOL.md "Webhooks"): the raw
            HTTP request body, any bytes (NUL included), msgpack bin (a str
            is malformed), at most SB_MAX_JOB_BODY; may be empty.
    Result: { "v": 1, "result": str }    result: JSON text. For tools/call it
            is an MCP CallToolResult (content, structuredContent, isError, _meta).

    Unknown keys are ignored (forward compatible); wrong types, over-long
    strings or bodies, or a missing "op"/"result" are malformed.
*/
#ifndef SB_JOB_H_INCLUDED
#define SB_JOB_H_INCLUDED

#include <czmq.h>
#include "sb_msg.h"

#define SB_JOB_VERSION          1
#define SB_MAX_OP_LEN           32          /* op name, bytes */
#define SB_MAX_NAME_LEN         128         /* connector / tool name, bytes */
#define SB_MAX_JSON_SIZE        (SB_MAX_PAYLOAD_SIZE - 1024)  /* args / result text */
#define SB_MAX_INPUT_ROUNDS     16          /* input-required rounds one call may take */
#define SB_MAX_INPUT_KEY_LEN    64          /* an inputRequests key, bytes */
#define SB_MAX_TASK_ID_LEN      64          /* a task id: printable ASCII, no space, bytes */
#define SB_MAX_SUBJECT_LEN      256         /* a token's subject (the user), bytes */

/*  Client capabilities a job carries (the "caps" bits). */
#define SB_JOB_CAP_SAMPLING     0x01u       /* sampling/createMessage */
#define SB_JOB_CAP_ELICITATION  0x02u       /* elicitation/create, form mode */
#define SB_JOB_CAP_ROOTS        0x04u       /* roots/list */
#define SB_JOB_CAP_ELICIT_URL   0x08u       /* elicitation/create, url mode */

/*  A job payload. All strings owned (malloc), NULL when absent. */
typedef struct {
    char *op;           /* "tools/call", "ping" */
    char *connector;    /* tools/call: connector name */
    char *tool;         /* tools/call: tool name */
    char *args;         /* tools/call: arguments, JSON object text */
    char *inputs;       /* 2026-07-28 calls: the client's answers, JSON object text; NULL: none */
    uint32_t caps;      /* with inputs or a task: SB_JOB_CAP_* bits */
    uint32_t round;     /* with inputs or a task: 1..SB_MAX_INPUT_ROUNDS (0 when absent) */
    char *task;         /* task store ops: the task id, 1..SB_MAX_TASK_ID_LEN bytes 0x21..0x7e */
    char *subject;      /* task store ops, tools/call: the token's subject, ≤ SB_MAX_SUBJECT_LEN bytes */
    char *data;         /* task store ops: op-specific JSON text, ≤ SB_MAX_JSON_SIZE bytes */
    uint8_t *body;      /* webhook/receive: the raw request body (msgpack bin), any bytes;
                           NULL when absent (PROTOCOL.md "Webhooks") */
    size_t body_len;    /* its length, ≤ SB_MAX_JOB_BODY */
} sb_job_t;

/*  A result payload. */
typedef struct {
    char *result;       /* JSON text */
} sb_job_result_t;

/*  Encodes a job into a new frame; NULL if a field breaks a limit (a task
    id that is empty or holds a byte outside 0x21..0x7e included, a body
    longer than SB_MAX_JOB_BODY, a body_len with no body), op is NULL or
    the whole payload is larger than SB_MAX_PAYLOAD_SIZE. "caps" and
    "round" are written only with inputs or a task (round 0 is written as
    1). "body" is written when body is not NULL (body_len 0: an empty bin). */
zframe_t *sb_job_encode (const sb_job_t *job) __attribute__ ((warn_unused_result));

/*  Decodes `size` bytes into `job` (zeroed by the caller or by sb_job_clear).
    Returns 0, or -2 (SB_MSG_MALFORMED) with `job` cleared: a known key of the
    wrong type, text over its limit or with a NUL byte, a "task" that is
    empty or holds a byte outside 0x21..0x7e, "caps" above UINT32_MAX,
    "round" outside 1..SB_MAX_INPUT_ROUNDS, a "body" that is not bin or is
    longer than SB_MAX_JOB_BODY, or no "op". With inputs and no "round",
    round is 1. A present body, even empty, is not NULL (an empty one is
    an owned 1-byte allocation with body_len 0); absent: NULL and 0. */
int sb_job_decode (const uint8_t *data, size_t size, sb_job_t *job)
    __attribute__ ((warn_unused_result));

/*  Frees the strings and the body of `job` and zeroes it. */
void sb_job_clear (sb_job_t *job);

/*  Same for results. */
zframe_t *sb_job_result_encode (const char *result_json) __attribute__ ((warn_unused_result));
int sb_job_result_decode (const uint8_t *data, size_t size, sb_job_result_t *result)
    __attribute__ ((warn_unused_result));
void sb_job_result_clear (sb_job_result_t *result);

#endif
