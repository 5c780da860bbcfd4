/*  proto/sb_job.h — job and result payloads (the body inside REQUEST/JOB and
    REPLY/RESULT frames), msgpack maps. The broker never reads these.

    Job:    { "v": 1, "op": str, "connector": str, "tool": str, "args": str }
            op "tools/call": run connector tool with args (JSON object text)
            op "ping":       prove the worker (and its database) is alive
    Result: { "v": 1, "result": str }    result: JSON text. For tools/call it
            is an MCP CallToolResult (content, structuredContent, isError, _meta).

    Unknown keys are ignored (forward compatible); wrong types, over-long
    strings or a missing "op"/"result" are malformed.
*/
#ifndef SB_JOB_H_INCLUDED
#define SB_JOB_H_INCLUDED

#include <czmq.h>
#include "proto/sb_msg.h"

#define SB_JOB_VERSION          1
#define SB_MAX_OP_LEN           32          /* op name, bytes */
#define SB_MAX_NAME_LEN         128         /* connector / tool name, bytes */
#define SB_MAX_JSON_SIZE        (SB_MAX_PAYLOAD_SIZE - 1024)  /* args / result text */

/*  A job payload. All strings owned (malloc), NULL when absent. */
typedef struct {
    char *op;           /* "tools/call", "ping" */
    char *connector;    /* tools/call: connector name */
    char *tool;         /* tools/call: tool name */
    char *args;         /* tools/call: arguments, JSON object text */
} sb_job_t;

/*  A result payload. */
typedef struct {
    char *result;       /* JSON text */
} sb_job_result_t;

/*  Encodes a job into a new frame; NULL if a field breaks a limit or op is NULL. */
zframe_t *sb_job_encode (const sb_job_t *job);

/*  Decodes `size` bytes into `job` (zeroed by the caller or by sb_job_clear).
    Returns 0, or -2 (SB_MSG_MALFORMED) with `job` cleared. */
int sb_job_decode (const uint8_t *data, size_t size, sb_job_t *job);

/*  Frees the strings of `job` and zeroes it. */
void sb_job_clear (sb_job_t *job);

/*  Same for results. */
zframe_t *sb_job_result_encode (const char *result_json);
int sb_job_result_decode (const uint8_t *data, size_t size, sb_job_result_t *result);
void sb_job_result_clear (sb_job_result_t *result);

#endif
