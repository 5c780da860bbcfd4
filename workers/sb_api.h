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
    sends the promote signal. Op "ping" answers {"pong":true,"role":"api"}.

    A tool marked "request": {"builtin": "<name>"} is run by the worker
    itself, with no upstream, by the builtin runners given to sb_api_new
    (sb_api_builtins_t). The product sb-worker gives none, so it refuses
    a connector with such a tool at load; the test worker
    sb-worker-fixtures (tests/fixtures/) gives the conformance fixtures. */
#ifndef SB_API_H_INCLUDED
#define SB_API_H_INCLUDED

#include "sb_attr.h"
#include <jansson.h>
#include <stdbool.h>

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
#define SB_API_CONNECT_POLL_MS  2000        /* while the user connects: ask for the credential this often */
#define SB_API_CONNECT_MIN_LEFT_MS 1000     /* stop waiting for a connection with less time left than this */

typedef struct _sb_api_t sb_api_t;

/*  Runners of builtin tools, one table for all of them: the hook through
    which a build adds tools the api worker answers itself. Every member
    is required. */
typedef struct {
    /*  True when `name` is a builtin these runners have. */
    bool (*known) (const char *name);
    /*  Their state on `reactor` (borrowed), or NULL when out of memory. */
    void *(*create) (sb_reactor_t *reactor);
    /*  Releases every builtin still running (their jobs are not
        answered), frees the state, nulls the caller's pointer. */
    void (*destroy) (void **state_p);
    /*  Runs builtin `name` for `job` with `args` (borrowed JSON object,
        already checked against the tool's inputSchema); ends the job now
        or later. */
    void (*start) (void *state, sb_worker_job_t *job, const char *name, const json_t *args);
    /*  If `job` is running a builtin, releases its state and returns
        true (the job is not answered); false for any other job. */
    bool (*abandon) (void *state, sb_worker_job_t *job);
} sb_api_builtins_t;

/*  Creates the api role for `worker` (borrowed): loads the connectors in
    `connectors_dir` (one folder or a ':'-separated list,
    sb_connectors_load), applies base-URL overrides `connector_urls`
    ("name=url,…", may be empty) and sets up the curl multi handle on the
    worker's reactor. `builtins` (borrowed, static; NULL: none) runs the
    builtin tools; a connector with a builtin tool that `builtins` does
    not know (other than the gateway's own, SB_BUILTIN_TOGGLE_*) is
    refused at load with an error naming the tool. Returns NULL with an
    error logged. */
sb_api_t *sb_api_new (sb_worker_t *worker, const char *connectors_dir,
                      const char *connector_urls, const sb_api_builtins_t *builtins) SB_MUST_USE;

/*  Abandons calls in progress, frees everything, nulls the caller's pointer. */
void sb_api_destroy (sb_api_t **self_p);

/*  Reloads the connectors (what SIGHUP does, through sb-worker's loop):
    re-reads the folders given to sb_api_new with the same base-URL
    overrides and builtin checks. When the new set fails, keeps the
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
