/*  gateway/sb_broker_client.h — the gateway's side of the broker protocol:
    one DEALER socket driven from the gateway's h2o event loop, and the
    in-flight table that matches REPLY messages to the calls waiting for them.

    The socket's ZMQ_FD is watched by h2o without h2o reading it; because
    that fd only signals edges, the client drains every message whenever it
    fires and once more after every send. Each call has its own local
    deadline (the job's timeout plus a grace period), so a dead broker still
    yields a timeout. A reply for an unknown or expired correlation ID is
    dropped and counted. */
#ifndef SB_BROKER_CLIENT_H_INCLUDED
#define SB_BROKER_CLIENT_H_INCLUDED

#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>
#include <czmq.h>
#include <stdint.h>

#include "proto/sb_msg.h"

#define SB_MAX_GATEWAY_INFLIGHT     10000   /* calls waiting for a reply at once */
#define SB_BROKER_GRACE_MS          2000    /* local deadline = job timeout + this */
#define SB_BROKER_SNDHWM            20000   /* messages queued toward the broker */

typedef struct _sb_broker_client_t sb_broker_client_t;
typedef struct _sb_broker_call_t sb_broker_call_t;

/*  Called exactly once per call (unless cancelled) with the outcome: the
    broker's REPLY, or SB_STATUS_TIMEOUT when the local deadline passed.
    `payload` is borrowed for the duration of the callback (may be NULL).
    The call handle is freed after the callback returns. */
typedef void (sb_broker_reply_fn) (void *arg, sb_status_t status,
                                   const uint8_t *payload, size_t size);

/*  Return codes of sb_broker_client_request. */
#define SB_BROKER_SENT      0       /* the job is on its way; the callback will come */
#define SB_BROKER_FULL     -1       /* SB_MAX_GATEWAY_INFLIGHT calls already wait */
#define SB_BROKER_BUSY     -2       /* the socket would block (broker unreachable, HWM) */
#define SB_BROKER_INVALID  -3       /* a field breaks a protocol limit */

/*  Connects a DEALER to `endpoint` and watches it on `loop`. Every call
    gets `timeout_ms` as its job deadline. Returns NULL on failure. */
sb_broker_client_t *sb_broker_client_new (h2o_loop_t *loop, const char *endpoint,
                                          uint32_t timeout_ms);

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
    __attribute__ ((warn_unused_result));

/*  Forgets a call whose requester is gone: no callback will come, a late
    reply is dropped. Nulls *call_p. Safe on NULL. */
void sb_broker_client_cancel (sb_broker_client_t *self, sb_broker_call_t **call_p);

/*  Answers every waiting call now with SB_STATUS_TIMEOUT (used when the
    gateway stops and cannot wait any longer). */
void sb_broker_client_expire_all (sb_broker_client_t *self);

/*  Calls waiting for a reply now. */
size_t sb_broker_client_pending (sb_broker_client_t *self);

/*  Replies dropped because no call waited for them (unknown, expired or
    cancelled), and messages dropped as malformed. */
uint64_t sb_broker_client_dropped (sb_broker_client_t *self);

#endif
