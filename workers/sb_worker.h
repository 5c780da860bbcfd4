/*  workers/sb_worker.h — the worker core every role shares.

    A worker is one DEALER connected to the broker's backend and one event
    loop (sb_reactor) that holds many jobs at once:

      - READY(service = role name, credit, heartbeat_ms) on connect;
      - HEARTBEAT every heartbeat_ms; any message from the broker proves it
        alive; none for SB_HEARTBEAT_LIVENESS intervals
        (proto/sb_limits.h) → the socket is
        recreated and READY sent again, with a growing backoff. Jobs of the
        old session are abandoned (the broker has already answered them);
      - JOB → decoded (proto/sb_job.h) and handed to the role; the role
        answers with sb_worker_job_done, now or later from the loop;
      - each job's deadline (timeout_ms of the JOB): when it passes, the
        role's abandon callback releases the job and no RESULT is sent;
      - SIGTERM/SIGINT: new jobs are refused, in-flight jobs finish or hit
        their deadline, then DISCONNECT and sb_worker_run returns.

    Roles (workers/sb_api.h, sb_token_role.h, sb_webhook_role.h) plug in
    through sb_worker_role_t and register their own fds and timers on the
    worker's reactor. */
#ifndef SB_WORKER_H_INCLUDED
#define SB_WORKER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_msg.h"
#include "sb_job.h"
#include "sb_payload.h"
#include "sb_reactor.h"

#define SB_WORKER_MAX_BACKOFF_MS    5000    /* longest wait between reconnects */
#define SB_WORKER_DRAIN_LINGER_MS   1000    /* time DISCONNECT gets to leave on exit */
#define SB_MAX_WORKER_DRAIN_MS      SB_MAX_TIMEOUT_MS   /* drain never outlasts a job */
/*  Most jobs held at once: the broker keeps us at `credit`; twice that is
    only a guard against a peer that ignores credit (refused as overloaded). */
#define SB_WORKER_MAX_JOBS(credit)  ((size_t) (credit) * 2)

typedef struct _sb_worker_t sb_worker_t;
typedef struct _sb_worker_job_t sb_worker_job_t;

/*  What a role provides. `state` is the role's own object. */
typedef struct {
    /*  Starts `job` (owned by the worker until done). The role must end it
        exactly once with sb_worker_job_done — during this call or later —
        unless the worker calls `abandon` first. */
    void (*start) (void *state, sb_worker_job_t *job);
    /*  The job's deadline passed, its session ended, it was cancelled or
        (2026-07-28) it ended with an input-required result: release
        everything attached to it (sb_worker_job_data) and never answer it.
        The worker frees the job after this returns. */
    void (*abandon) (void *state, sb_worker_job_t *job);
} sb_worker_role_t;

/*  Creates a worker for service `service` that will connect to `endpoint`
    (e.g. "tcp://127.0.0.1:5556") once sb_worker_run starts. `credit` is the
    number of jobs held at once (1..SB_MAX_CREDIT). Returns NULL on bad
    arguments or when out of memory. */
sb_worker_t *sb_worker_new (const char *endpoint, const char *service,
                            uint32_t credit, uint32_t heartbeat_ms) SB_MUST_USE;

/*  Destroys the worker: abandons jobs still held, closes the socket, nulls
    the caller's pointer. Idempotent. */
void sb_worker_destroy (sb_worker_t **self_p);

/*  Plugs the role in (both borrowed; must outlive the worker's run). */
void sb_worker_set_role (sb_worker_t *self, const sb_worker_role_t *role, void *state);

/*  The reactor roles register their fds and timers on (borrowed). */
sb_reactor_t *sb_worker_reactor (sb_worker_t *self);

/*  The service name the worker registered with (borrowed). */
const char *sb_worker_service (sb_worker_t *self);

/*  Installs SIGTERM/SIGINT handlers that make every running worker drain
    and return (they only set a flag). Call once from main, before any
    ZeroMQ socket is created. */
void sb_worker_handle_signals (void);

/*  Runs the loop until a stop was requested (signal or sb_worker_stop) and
    all jobs are done or abandoned. Returns 0, or -1 on a fatal error
    (socket creation or polling failed). */
int sb_worker_run (sb_worker_t *self) SB_MUST_USE;

/*  Requests a graceful stop (same as SIGTERM). */
void sb_worker_stop (sb_worker_t *self);

/*  Number of jobs held right now. */
size_t sb_worker_jobs (sb_worker_t *self);

/*  Job accessors (all borrowed from the job). */
const char *sb_worker_job_corr_id (const sb_worker_job_t *job);
const char *sb_worker_job_tenant (const sb_worker_job_t *job);
const sb_job_t *sb_worker_job_spec (const sb_worker_job_t *job);
int64_t sb_worker_job_deadline (const sb_worker_job_t *job);  /* monotonic ms */
uint32_t sb_worker_job_flags (const sb_worker_job_t *job);
uint32_t sb_worker_job_attempt (const sb_worker_job_t *job);
sb_worker_t *sb_worker_job_worker (const sb_worker_job_t *job);

/*  The role's per-job state (NULL until set). */
void sb_worker_job_set_data (sb_worker_job_t *job, void *data);
void *sb_worker_job_data (const sb_worker_job_t *job);

/*  Ends *job_p: sends RESULT(status, {"v":1,"result":result_json}) to the
    broker unless the job's session has ended, frees the job and nulls the
    caller's pointer. `result_json` is borrowed JSON text. For
    SB_STATUS_FAILED it should be {"error": "..."}. */
void sb_worker_job_done (sb_worker_job_t **job_p, sb_status_t status,
                         const char *result_json);

/*  Convenience: ends *job_p with SB_STATUS_FAILED and {"error": message}. */
void sb_worker_job_fail (sb_worker_job_t **job_p, const char *message);

/*  Convenience: ends *job_p as failed with "unknown op <op>" — what every
    role answers for an op it does not serve. */
void sb_worker_job_fail_unknown_op (sb_worker_job_t **job_p);

/*  ---------------------------------------------------------------------
    Talking to the client during a call (see proto/PROTOCOL.md, NOTIFY/ASK
    and "Input-required results").

    A job may send notifications (JSON-RPC notifications without an id:
    notifications/progress — the gateway adds the client's progressToken —
    or notifications/message for logs) and ask the client questions
    (JSON-RPC requests without an id: elicitation/create,
    sampling/createMessage, roots/list). If the broker CANCELs the job, the
    role's abandon callback runs and the core answers RESULT `cancelled`.

    How a question is answered depends on the call. For clients of MCP up to
    2025-11-25 the gateway numbers it, sends it to the client and routes the
    answer back (ASK/ANSWER). A 2026-07-28 call (sb_worker_job_round > 0)
    has no server requests: the worker settles each question itself against
    the answers the job carries — the client lacks the capability (error
    -32021), or an answer is given (result) — and delivers that on the next
    loop turn; a question left open ends the job with an input-required
    result once nothing else is left to deliver, and the role's abandon
    callback runs. The client then sends the request again, with the
    answer under the question's key, and the job runs again from the start:
    a role asks in the same order every run, and before it changes
    anything. That settlement lives in workers/sb_inputs.c. */

#define SB_MAX_ASKS_PER_JOB SB_MAX_INPUT_REQUESTS   /* questions one job may have open at once */
#define SB_WORKER_MAX_LOCAL_ANSWERS SB_MAX_INPUTS_USED  /* answers one 2026-07-28 job may get
                                                           from its inputs */

/*  Sends a notification (borrowed JSON text) for the job's call.
    Returns 0, or -1 when it could not be sent (too large, no broker). */
int sb_worker_job_notify (sb_worker_job_t *job, const char *notification_json)
    SB_MUST_USE;

/*  Asks the gateway to turn the job's call into a task (MCP Tasks
    extension, SEP-2663): sends NOTIFY with exactly SB_PAYLOAD_PROMOTE_JSON
    (payload/sb_payload.h).
    A role calls it when the call will take a while (the api role when an
    upstream request runs longer than --task-promote-ms; task fixtures at
    once). The gateway decides: for a 2026-07-28 call of a task-capable
    tool from a client that declared io.modelcontextprotocol/tasks, it
    answers the client with CreateTaskResult and keeps waiting for this
    job's RESULT, which becomes the task's outcome; for any other call it
    ignores the signal (never relays it to the client) and the job goes on
    as before. Nothing changes for the job either way: it still ends with
    sb_worker_job_done, and in 2026-07-28 input-required mode its questions
    still end it with an input-required result — promote BEFORE asking
    the questions that belong to the task, so the gateway knows of the task
    first. Sent at most once per job run: later calls send nothing and
    return 0. Returns 0, or -1 when it could not be sent (no broker). */
int sb_worker_job_promote (sb_worker_job_t *job)
    SB_MUST_USE;

/*  Called once with the client's JSON-RPC response text (borrowed: a
    {"result": …} or {"error": …} object) to an ask. The callback may end
    the job. Not called if the job ends first. */
typedef void (sb_worker_answer_fn) (sb_worker_job_t *job, const char *response_json, void *arg);

/*  Asks the client (request: borrowed JSON text {"method": …, "params": …})
    under `key` (1..SB_MAX_INPUT_KEY_LEN bytes; NULL: "input_<ask id>"),
    the inputRequests key of a 2026-07-28 call (ignored for older ones).
    Returns the ask's id (> 0), or -1 when SB_MAX_ASKS_PER_JOB are open,
    the key is malformed or already asked in this run, the request is not
    a JSON object with a string "method", or it could not be sent. */
int sb_worker_job_ask_key (sb_worker_job_t *job, const char *key, const char *request_json,
                           sb_worker_answer_fn *on_answer, void *arg)
    SB_MUST_USE;

/*  sb_worker_job_ask_key with the key NULL. */
int sb_worker_job_ask (sb_worker_job_t *job, const char *request_json,
                       sb_worker_answer_fn *on_answer, void *arg)
    SB_MUST_USE;

/*  Which request of a 2026-07-28 call the job runs for (1 = the first,
    n = after n-1 input-required results whose requestState the gateway
    verified); 0 for calls of older revisions. */
uint32_t sb_worker_job_round (const sb_worker_job_t *job);

/*  Ends *job_p with a JSON-RPC error for the client instead of a result
    (`error_json`: borrowed {"code": int, "message": str, "data": …} text,
    e.g. the -32021 error an ask was refused with): RESULT failed
    {"error": message, "rpc_error": error}. The gateway passes -32021 on as
    the JSON-RPC error of a 2026-07-28 call; other calls get an isError
    result with the message. A malformed `error_json` fails the job plainly. */
void sb_worker_job_fail_rpc (sb_worker_job_t **job_p, const char *error_json);

/*  ---------------------------------------------------------------------
    Asking another service (proto/PROTOCOL.md, "Worker requests").

    A role that holds `parent` may send a job of its own to another service
    (the api role asks service `token` for a tenant's credential). The
    REQUEST carries the parent's tenant and corr_id (the broker checks
    both) and a fresh corr_id of its own; its deadline is `timeout_ms`,
    cut to the parent's time left. The REPLY comes back on the worker's
    socket and `on_reply` is called exactly once, from the loop, with:
      - the REPLY's status, its result's JSON text (`result_json`, borrowed
        for the call; NULL unless the status is ok or failed and the
        payload decoded) and its retry_after_ms;
      - SB_STATUS_TIMEOUT when no REPLY came by the deadline plus
        SB_WORKER_REQUEST_GRACE_MS;
      - SB_STATUS_UNAVAILABLE when the connection to the broker was reset
        (the broker will never answer it).
    The callback does not depend on `parent` living on: it is called the
    same after the parent job ended. It is never called after
    sb_worker_request_cancel, nor during sb_worker_request itself, nor once
    sb_worker_run has returned (sb_worker_destroy frees what is pending
    without calling). It may send or cancel requests. */
/*  SB_MAX_WORKER_REQUESTS (proto/sb_limits.h): requests one worker has in
    flight at once; the broker answers one more `overloaded`. */
#define SB_WORKER_REQUEST_GRACE_MS  1000    /* a silent broker's request ends this long after its deadline */
typedef void (sb_worker_reply_fn) (sb_status_t status, const char *result_json,
                                   uint32_t retry_after_ms, void *arg);
/*  Sends `job` (borrowed) to `service` on behalf of `parent`; `flags` as a
    REQUEST's (SB_FLAG_RETRY_SAFE). Returns the request's id (> 0), or -1
    (nothing will be called) when SB_MAX_WORKER_REQUESTS are in flight,
    the job does not encode, the service is this worker's own, the parent
    has no time left, or the worker has no connection to the broker now
    (or could not queue the message). A broker refusal (`malformed`,
    `overloaded`, `unavailable`, `duplicate`…) comes as a REPLY, to
    `on_reply`. */
int64_t sb_worker_request (sb_worker_job_t *parent, const char *service, const sb_job_t *job,
                           uint32_t timeout_ms, uint32_t flags, sb_worker_reply_fn *on_reply,
                           void *arg) SB_MUST_USE;
/*  Forgets request `id`: its callback will not be called (a REPLY that
    still comes is dropped). Sends nothing to the broker. Unknown ids are
    ignored. For a role's destroy, or a waiter that no longer needs it. */
void sb_worker_request_cancel (sb_worker_t *self, int64_t id);
/*  Requests in flight now. */
size_t sb_worker_requests (sb_worker_t *self);

/*  Quotas (proto/PROTOCOL.md "Quotas"). The broker sends USAGE to one
    worker of the quota service; the role that owns the plans (the token
    role, workers/sb_quota_sync.c) registers for it, stores the entries
    and answers USAGE_ACK with the same seq once they are committed, and
    when `want` is set sends a full snapshot of the limits. A USAGE
    reaching a worker with no handler is logged and dropped. `*payload` is
    the handler's (it destroys it); `broker_id` is borrowed for the call. */
typedef void (sb_worker_usage_fn) (void *arg, uint64_t seq, bool want, const char *broker_id,
                                   zframe_t **payload);
void sb_worker_on_usage (sb_worker_t *self, sb_worker_usage_fn *fn, void *arg);
/*  Sends LIMITS (`snapshot` 0 a change, 1 a part of a snapshot, 2 its last
    part) with `*payload` (taken: sb_quota_limits_encode), or USAGE_ACK.
    Return 0, or -1 when there is no connection to the broker now or the
    message could not be queued (then the caller tries again later). */
int sb_worker_send_limits (sb_worker_t *self, uint64_t seq, uint32_t snapshot,
                           zframe_t **payload) SB_MUST_USE;
int sb_worker_send_usage_ack (sb_worker_t *self, uint64_t seq) SB_MUST_USE;
/*  How many sessions with the broker this worker has opened (each READY
    counts one). A sender of a message in several parts (a LIMITS
    snapshot) compares it across parts: parts sent before a session ended
    were lost with its socket, so the whole must be sent again. */
uint64_t sb_worker_sessions (sb_worker_t *self);

/*  Publishing to every gateway (proto/PROTOCOL.md "Webhooks", PUBLISH):
    sends PUBLISH for `tenant` about `topic` with `len` bytes of `payload`
    (borrowed; at most SB_MAX_BROADCAST_SIZE). The broker sends it on to
    every gateway as BROADCAST; best effort, nothing is answered. Returns
    0, or -1 when a field breaks its bounds, there is no connection to the
    broker now or the message could not be queued. */
int sb_worker_publish (sb_worker_t *self, const char *tenant, const char *topic,
                       const void *payload, size_t len) SB_MUST_USE;

#endif
