/*  gateway/sb_broker_client.h — the gateway's side of the broker protocol:
    one DEALER socket driven from the gateway's h2o event loop, and the
    in-flight table that matches REPLY messages to the calls waiting for them.

    The socket's ZMQ_FD is watched by h2o without h2o reading it; because
    that fd only signals edges, the client drains every message whenever it
    fires and once more after every send. Each call has its own local
    deadline (the job's timeout plus a grace period), so a dead broker still
    yields a timeout. A reply for an unknown or expired correlation ID is
    dropped and counted.

    Inside a call (proto/PROTOCOL.md, "Inside a call") the broker also passes
    NOTIFY and ASK for a waiting call; they go to the call's event callback
    (dropped and counted when no call waits). The gateway sends CANCEL for
    its own calls and ANSWER for any call (no state needed).

    Gateways tell each other news through the broker (PROTOCOL.md,
    "Broadcasts"): sb_broker_client_broadcast sends a BROADCAST, which the
    broker passes to every other gateway it heard from lately; the
    BROADCASTs that arrive here go to the callback of
    sb_broker_client_on_broadcast. So that the broker knows this gateway,
    the client sends HEARTBEAT when it starts and every
    SB_GATEWAY_HEARTBEAT_MS.

    The broker answers each HEARTBEAT, so a live broker is heard at least
    once an interval. When nothing has come from it for SB_BROKER_SILENT_MS
    (since the client started, or since its last message), the broker is
    unreachable: a new request is not sent but refused at once with
    SB_BROKER_UNREACHABLE, so the caller can answer its client now rather
    than after the whole deadline. The first message from the broker ends
    that. A REPLY `unavailable` reaches the callback with a result payload
    {"retry_after": seconds} made from its retry_after_ms (1 s without
    one), as a worker's `overloaded` would carry it.

    Quotas (PROTOCOL.md "Quotas"): a request sent with
    sb_broker_client_request_metered carries its cost and upstream budget;
    a REPLY's quota group (the limit that refused it, status `limited`, or
    an admitted metered job's rate policy) goes to the call's quota
    callback (sb_broker_client_on_quota) just before its reply callback. */
#ifndef SB_BROKER_CLIENT_H_INCLUDED
#define SB_BROKER_CLIENT_H_INCLUDED

#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>
#include <czmq.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_msg.h"

#define SB_MAX_GATEWAY_INFLIGHT     10000   /* calls waiting for a reply at once */
#define SB_BROKER_GRACE_MS          2000    /* local deadline = job timeout + this */
#define SB_BROKER_SNDHWM            20000   /* messages queued toward the broker */
/* Silence after which the broker is held unreachable (PROTOCOL.md, "Gateway heartbeats"). */
#define SB_BROKER_SILENT_MS         (SB_GATEWAY_LIVENESS * SB_GATEWAY_HEARTBEAT_MS)

typedef struct _sb_broker_client_t sb_broker_client_t;
typedef struct _sb_broker_call_t sb_broker_call_t;

/*  Called exactly once per call (unless cancelled) with the outcome: the
    broker's REPLY, or SB_STATUS_TIMEOUT when the local deadline passed.
    `payload` is borrowed for the duration of the callback (may be NULL).
    The call handle is freed after the callback returns. */
typedef void (sb_broker_reply_fn) (void *arg, sb_status_t status,
                                   const uint8_t *payload, size_t size);

/*  Called for each NOTIFY (ask_id 0) or ASK (ask_id > 0) that the broker
    passes on for a waiting call; `payload` (a sb_job result map) is borrowed
    for the duration of the callback. It must not cancel or abort the call. */
typedef void (sb_broker_event_fn) (void *arg, sb_cmd_t command, uint32_t ask_id,
                                   const uint8_t *payload, size_t size);

/*  Called for each BROADCAST another gateway sent: `tenant` (whose token
    caused it), `topic` and `payload` (at most SB_MAX_BROADCAST_SIZE bytes)
    are borrowed for the duration of the callback. The payload is as the
    sender wrote it: the callback checks it. */
typedef void (sb_broker_broadcast_fn) (void *arg, const char *tenant, const char *topic,
                                       const uint8_t *payload, size_t size);

/*  Called, just before the reply callback, when the REPLY carries a quota
    group (PROTOCOL.md "Quotas"): status `limited` (which limit refused the
    job), or a metered job's rate policy at admission (limit > 0, reason
    ""). `quota` is borrowed for the duration of the callback;
    `retry_after_ms` is the REPLY's advice (0 = none). */
typedef void (sb_broker_quota_fn) (void *arg, const sb_msg_quota_t *quota,
                                   uint32_t retry_after_ms);

/*  What a metered REQUEST carries (PROTOCOL.md "Quotas"; sb_msg_set_metering
    checks the bounds): `cost` 0..SB_MAX_COST (0 = not metered), `conn` the
    connector whose per-connection upstream budget the job spends (NULL or
    "" for none) and that budget (both 0 for none). */
typedef struct {
    uint32_t cost;              /* quota units the job counts */
    const char *conn;           /* connector name, or NULL */
    uint32_t budget_limit;      /* upstream calls per window, 0 = no budget */
    uint32_t budget_window_s;   /* the budget's window, 0 = no budget */
} sb_broker_meter_t;

/*  Which of the client's job deadlines a request gets. */
typedef enum {
    SB_BROKER_DEADLINE_CALL = 0,    /* timeout_ms */
    SB_BROKER_DEADLINE_LONG,        /* long_timeout_ms (calls that may become tasks) */
    SB_BROKER_DEADLINE_HTTP,        /* http_timeout_ms (HTTP jobs) */
    SB_BROKER_DEADLINE_WEBHOOK,     /* webhook_timeout_ms (webhook/receive, events/read) */
} sb_broker_deadline_t;

/*  Return codes of sb_broker_client_request. */
#define SB_BROKER_SENT      0       /* the job is on its way; the callback will come */
#define SB_BROKER_FULL     -1       /* SB_MAX_GATEWAY_INFLIGHT calls already wait */
#define SB_BROKER_BUSY     -2       /* the socket would block (broker unreachable, HWM) */
#define SB_BROKER_INVALID  -3       /* a field breaks a protocol limit */
#define SB_BROKER_UNREACHABLE -4    /* not sent: nothing heard from the broker for SB_BROKER_SILENT_MS */

/*  Connects a DEALER to `endpoint` and watches it on `loop`. Every call
    gets `timeout_ms` as its job deadline. Returns NULL on failure. */
sb_broker_client_t *sb_broker_client_new (h2o_loop_t *loop, const char *endpoint,
                                          uint32_t timeout_ms) SB_MUST_USE;

/*  The same, and calls sent with sb_broker_client_request_long get
    `long_timeout_ms` (the jobs of tool calls that may become tasks). */
sb_broker_client_t *sb_broker_client_new_long (h2o_loop_t *loop, const char *endpoint,
                                               uint32_t timeout_ms, uint32_t long_timeout_ms)
    SB_MUST_USE;

/*  The same, and calls sent with sb_broker_client_request_http get
    `http_timeout_ms` (the HTTP jobs of the authorization server and the
    admin API, gateway/sb_http_job.c). */
sb_broker_client_t *sb_broker_client_new_all (h2o_loop_t *loop, const char *endpoint,
                                              uint32_t timeout_ms, uint32_t long_timeout_ms,
                                              uint32_t http_timeout_ms)
    SB_MUST_USE;

/*  Sets the job deadline of requests sent with SB_BROKER_DEADLINE_WEBHOOK
    (the webhooks' jobs, gateway/sb_webhook.c; the HTTP jobs' until set).
    Call before any such request is sent. */
void sb_broker_client_set_webhook_timeout (sb_broker_client_t *self, uint32_t timeout_ms);

/*  Stops watching the socket, answers nothing more (pending calls are
    cancelled without callbacks: destroy them first if they matter), closes
    the socket and nulls the caller's pointer. Idempotent. */
void sb_broker_client_destroy (sb_broker_client_t **self_p);

/*  Sends REQUEST `service` for `tenant` with `flags` and `*payload` (taken,
    even on failure). On SB_BROKER_SENT, *call_p is the handle that
    sb_broker_client_cancel accepts and `cb(arg, …)` will be called once. */
int sb_broker_client_request (sb_broker_client_t *self, const char *service,
                              const char *tenant, uint32_t flags, zframe_t **payload,
                              sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **call_p)
    SB_MUST_USE;

/*  sb_broker_client_request with the long job deadline. */
int sb_broker_client_request_long (sb_broker_client_t *self, const char *service,
                                   const char *tenant, uint32_t flags, zframe_t **payload,
                                   sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **call_p)
    SB_MUST_USE;

/*  sb_broker_client_request with the HTTP jobs' deadline. */
int sb_broker_client_request_http (sb_broker_client_t *self, const char *service,
                                   const char *tenant, uint32_t flags, zframe_t **payload,
                                   sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **call_p)
    SB_MUST_USE;

/*  sb_broker_client_request with `deadline` and, when `meter` is not NULL,
    its metering fields in the REQUEST (SB_BROKER_INVALID when one breaks
    a bound). */
int sb_broker_client_request_metered (sb_broker_client_t *self, const char *service,
                                      const char *tenant, uint32_t flags,
                                      sb_broker_deadline_t deadline, const sb_broker_meter_t *meter,
                                      zframe_t **payload, sb_broker_reply_fn *cb, void *arg,
                                      sb_broker_call_t **call_p)
    SB_MUST_USE;

/*  Routes the REPLY's quota group to `fn` (with the call's arg), before
    the reply callback. Without it the group is dropped. */
void sb_broker_client_on_quota (sb_broker_call_t *call, sb_broker_quota_fn *fn);

/*  Forgets a call whose requester is gone: no callback will come, a late
    reply is dropped. Nulls *call_p. Safe on NULL. */
void sb_broker_client_cancel (sb_broker_client_t *self, sb_broker_call_t **call_p);

/*  Routes the call's NOTIFY and ASK messages to `fn` (with the call's arg).
    Without it they are dropped and counted. */
void sb_broker_client_on_event (sb_broker_call_t *call, sb_broker_event_fn *fn);

/*  The correlation ID of a waiting call (borrowed from it). */
const char *sb_broker_call_corr_id (const sb_broker_call_t *call);

/*  Cancels a call for good: sends CANCEL for its job (the broker stops it and
    answers nothing), then forgets it like sb_broker_client_cancel (no
    callback; a late REPLY, NOTIFY or ASK is dropped and counted). Nulls
    *call_p. Returns 0, or -1 when CANCEL could not be queued (the call is
    forgotten all the same; the job then runs to its deadline). */
int sb_broker_client_abort (sb_broker_client_t *self, sb_broker_call_t **call_p);

/*  Sends ANSWER (the client's response to question `ask_id` of job
    `corr_id`) for `tenant` with `*payload` (a sb_job result map; taken,
    even on failure). Needs no waiting call: any gateway routes answers.
    Returns SB_BROKER_SENT, SB_BROKER_BUSY or SB_BROKER_INVALID. */
int sb_broker_client_answer (sb_broker_client_t *self, const char *corr_id, const char *tenant,
                             uint32_t ask_id, zframe_t **payload)
    SB_MUST_USE;

/*  Sends BROADCAST `topic` for `tenant` with `size` bytes of `payload`
    (copied; at most SB_MAX_BROADCAST_SIZE) to the broker, which passes it
    to every other gateway (not back to this one). Fire and forget: nothing
    is answered, and a gateway the broker does not know at that moment
    (starting, cut off) never gets it. Returns SB_BROKER_SENT,
    SB_BROKER_BUSY (not queued: broker unreachable, HWM) or
    SB_BROKER_INVALID (a field or the size breaks a limit). */
int sb_broker_client_broadcast (sb_broker_client_t *self, const char *tenant, const char *topic,
                                const void *payload, size_t size)
    SB_MUST_USE;

/*  Routes the BROADCASTs that arrive to `fn(arg, …)`; NULL: they are
    dropped (and counted as received). */
void sb_broker_client_on_broadcast (sb_broker_client_t *self, sb_broker_broadcast_fn *fn,
                                    void *arg);

/*  BROADCASTs sent by this gateway (queued to the broker) and received
    from others, since the client started. */
uint64_t sb_broker_client_broadcasts_sent (sb_broker_client_t *self);
uint64_t sb_broker_client_broadcasts_received (sb_broker_client_t *self);

/*  Answers every waiting call now with SB_STATUS_TIMEOUT (used when the
    gateway stops and cannot wait any longer). */
void sb_broker_client_expire_all (sb_broker_client_t *self);

/*  False while the broker is held unreachable: nothing heard from it for
    SB_BROKER_SILENT_MS (requests are then refused with SB_BROKER_UNREACHABLE). */
bool sb_broker_client_reachable (sb_broker_client_t *self);

/*  Calls waiting for a reply now. */
size_t sb_broker_client_pending (sb_broker_client_t *self);

/*  Replies, notifications and questions dropped because no call waited for
    them (unknown, expired or cancelled), and messages dropped as malformed. */
uint64_t sb_broker_client_dropped (sb_broker_client_t *self);

#endif
