/*  workers/sb_api.h — the api role: runs connector tools against upstream
    HTTP APIs with libcurl's multi interface, driven from the worker's own
    reactor (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), so one process holds
    as many upstream calls at once as its credit allows.

    Per tools/call job: find the tool, check and render its request, send it
    with the connector's credentials, a per-request timeout of
    min(time left, connector timeout) and a response-size cap; retry
    retry-safe requests on connect errors and 429/502/503/504 with
    exponential backoff, jitter and Retry-After, always inside the job's
    deadline; map the response into an MCP CallToolResult (RESULT OK). A
    call of a tool that may become a task (taskSupport optional or
    required) whose upstream request runs longer than --task-promote-ms
    sends the promote signal. Op "ping" answers {"pong":true,"role":"api"}. */
#ifndef SB_API_H_INCLUDED
#define SB_API_H_INCLUDED

#include "sb_attr.h"
#include "sb_worker.h"

#define SB_API_MAX_ATTEMPTS     4           /* tries per upstream request */
#define SB_API_BACKOFF_BASE_MS  100         /* first retry waits about this */
#define SB_API_BACKOFF_MAX_MS   2000        /* backoff ceiling (Retry-After may ask more) */
#define SB_API_MIN_ATTEMPT_MS   50          /* no retry with less time left than this */
#define SB_API_CONNECT_TIMEOUT_MS 5000      /* TCP/TLS connect, at most */
#define SB_MAX_API_RESPONSE     (8u << 20)  /* upstream body kept, whatever the connector says */
#define SB_API_MAX_CONNECTIONS  (SB_MAX_REACTOR_ITEMS - 64) /* open upstream sockets; more calls queue in curl */
#define SB_API_CACHED_CONNECTIONS 256       /* idle keep-alive connections kept */
#define SB_API_IDLE_HANDLES     64          /* finished curl handles kept for reuse */
#define SB_API_TASK_PROMOTE_MS  1000        /* default of --task-promote-ms */
#define SB_MAX_TASK_PROMOTE_MS  600000      /* its largest value */

typedef struct _sb_api_t sb_api_t;

/*  Creates the api role for `worker` (borrowed): loads the connectors in
    `connectors_dir`, applies base-URL overrides `connector_urls`
    ("name=url,…", may be empty) and sets up the curl multi handle on the
    worker's reactor. Returns NULL with an error logged. */
sb_api_t *sb_api_new (sb_worker_t *worker, const char *connectors_dir,
                      const char *connector_urls) SB_MUST_USE;

/*  Abandons calls in progress, frees everything, nulls the caller's pointer. */
void sb_api_destroy (sb_api_t **self_p);

/*  Reloads the connectors (what SIGHUP does, through sb-worker's loop):
    re-reads the folder given to sb_api_new with the same base-URL
    overrides and builtin-fixture checks. When the new set fails, keeps the
    old one, logs connectors_reload_failed with the reason and returns -1.
    Otherwise jobs from now on run against the new set and it returns 0;
    calls in flight hold a reference to the set they started with, which
    is freed when the last of them ends. */
int sb_api_reload (sb_api_t *self);

/*  Sets --task-promote-ms (1..SB_MAX_TASK_PROMOTE_MS; default
    SB_API_TASK_PROMOTE_MS): a call of an HTTP tool whose taskSupport is not
    "forbidden" sends the promote signal (sb_worker_job_promote) when its
    upstream request is still running this long after it started, so a
    2026-07-28 client that declared the tasks extension gets a task instead
    of waiting. Applies to calls that start afterwards. Returns 0, or -1 for
    a value out of range. */
int sb_api_set_task_promote_ms (sb_api_t *self, uint32_t promote_ms) SB_MUST_USE;

/*  The callbacks to pass to sb_worker_set_role with the sb_api_t. */
extern const sb_worker_role_t sb_api_role;

#endif
