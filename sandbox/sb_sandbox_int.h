/*  sandbox/sb_sandbox_int.h — private to sandbox/: the server's state and
    the response helpers that the API handlers (sb_sandbox_api.c) share
    with the server and admin code (sb_sandbox.c). */
#ifndef SB_SANDBOX_INT_H_INCLUDED
#define SB_SANDBOX_INT_H_INCLUDED

#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_crm.h"
#include "sb_sandbox.h"

#define SB_SANDBOX_MAX_PARAM 512    /* one decoded query parameter value, bytes */

/*  Sends `body` (taken) as JSON with `status`. */
void sb_sandbox_send_json (h2o_req_t *req, int status, json_t *body);

/*  Sends `text` (JSON of `len` bytes, taken: freed here) with `status`. */
void sb_sandbox_send_text (h2o_req_t *req, int status, char *text, size_t len);

/*  Sends `text` (`len` bytes of `content_type`, taken: freed here; NULL
    sends a 500) with `status`. */
void sb_sandbox_send (h2o_req_t *req, int status, const char *content_type, char *text,
                      size_t len);

/*  The server's timeout of `ms` milliseconds (h2o 2.2 timeouts have one
    duration each), made when none has it; NULL when SB_SANDBOX_MAX_TIMERS
    are in use. Borrowed: it stays while an entry is linked to it. */
h2o_timeout_t *sb_sandbox_timeout (sb_sandbox_t *self, uint64_t ms);

/*  The server's event loop. */
h2o_evloop_t *sb_sandbox_loop (sb_sandbox_t *self);

/*  Sends {"error": code, "message": message} with `status`. */
void sb_sandbox_send_error (h2o_req_t *req, int status, const char *code, const char *message);

/*  Finds query parameter `name` and percent-decodes it into `out`.
    Returns 1 found, 0 absent, -1 malformed or longer than `size` - 1. */
int sb_sandbox_query_param (h2o_req_t *req, const char *name, char *out, size_t size) SB_MUST_USE;

/*  Handles a /v1 request (already authenticated) whose path segments after
    "/v1" are `segments` (decoded, `count` of them). Counts it in by_type. */
void sb_sandbox_api_handle (sb_crm_t *crm, h2o_req_t *req, char **segments, size_t count,
                            uint64_t by_type [SB_CRM_TYPES]);

#endif
