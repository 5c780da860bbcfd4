/*  tests/38_workers_fake.h — test doubles for the worker integration tests:

    - a fake broker: a ROUTER socket bound on 127.0.0.1 that speaks the real
      codec (proto/sb_msg.h), answers the worker's heartbeats, sends JOBs
      and hands every other message to the test (LIMITS only when asked);
    - a fake upstream: a small threaded HTTP/1.1 server (keep-alive) that
      serves the sandbox-crm connector's account endpoints and task creation
      (POST /v1/tasks), with knobs for
      delay, injected 503s and oversized bodies, and counters the test reads.

    Both synchronise on messages and conditions with deadlines, never on
    sleeps. */
#ifndef SB_WORKERS_FAKE_H_INCLUDED
#define SB_WORKERS_FAKE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "sb_msg.h"
#include "sb_job.h"

//  ---------------------------------------------------------------------
//  Fake broker

typedef struct {
    zsock_t *router;            /* bound ROUTER, the worker connects here */
    int port;                   /* TCP port */
    char endpoint [64];         /* tcp://127.0.0.1:port */
    zframe_t *worker;           /* routing id of the last worker that sent READY */
    bool answer_heartbeats;     /* reply HEARTBEAT to a known worker's heartbeat */
    bool disconnect_unknown;    /* reply DISCONNECT to traffic from unknown workers */
    int heartbeats;             /* heartbeats received */
    bool keep_limits;           /* hand LIMITS to the test (else counted and dropped: a token
                                   worker pushes them unasked, workers/sb_quota_sync.h) */
    int limits;                 /* LIMITS dropped */
} fake_broker_t;

/*  Binds a ROUTER on `port` (retrying until the port is free, up to 5 s). */
fake_broker_t *fake_broker_new (int port);

/*  Closes the socket (linger 0) and frees. */
void fake_broker_destroy (fake_broker_t **self_p);

/*  Next message other than HEARTBEAT (answered and counted) and, unless
    keep_limits, LIMITS (counted), within
    `timeout_ms`. Returns 0 with `msg` filled (caller resets), or -1. */
int fake_broker_recv (fake_broker_t *self, sb_msg_t *msg, int timeout_ms);

/*  Waits until `count` heartbeats in total were received. 0 or -1. */
int fake_broker_wait_heartbeats (fake_broker_t *self, int count, int timeout_ms);

/*  Sends a JOB to the registered worker with `payload` (taken; may be
    NULL). Returns 0 or -1. */
int fake_broker_send_job (fake_broker_t *self, const char *corr_id, uint32_t timeout_ms,
                          uint32_t flags, zframe_t **payload);

/*  Builds a job payload (op, tool, args may be NULL) and sends it. */
int fake_broker_send_op (fake_broker_t *self, const char *corr_id, uint32_t timeout_ms,
                         uint32_t flags, const char *op, const char *tool, const char *args);

/*  Waits for the RESULT of `corr_id` (other results are an error). Returns
    0 with *status and *json (new string, caller frees), or -1. */
int fake_broker_result (fake_broker_t *self, const char *corr_id, int timeout_ms,
                        sb_status_t *status, char **json);

/*  Waits for the ASK of `corr_id` (anything else is an error), as the
    gateway would receive it. Returns 0 with *ask_id and *json (the request
    text, new string, caller frees), or -1. */
int fake_broker_ask (fake_broker_t *self, const char *corr_id, int timeout_ms,
                     uint32_t *ask_id, char **json);

/*  Sends ANSWER(corr_id, tenant "demo", ask_id) with `response_json` (a
    JSON-RPC response: {"result": …} or {"error": …}) to the worker, as the
    broker passes on a client's answer. Returns 0 or -1. */
int fake_broker_answer (fake_broker_t *self, const char *corr_id, uint32_t ask_id,
                        const char *response_json);

//  ---------------------------------------------------------------------
//  Fake upstream (HTTP)

typedef struct fake_upstream_t fake_upstream_t;

/*  Starts the server on a free port. */
fake_upstream_t *fake_upstream_new (void);

/*  Stops accepting and frees (connection threads end when peers close). */
void fake_upstream_destroy (fake_upstream_t **self_p);

/*  http://127.0.0.1:port */
const char *fake_upstream_url (fake_upstream_t *self);

/*  Knobs: every response waits `delay_ms`; the next `count` requests get
    503 with Retry-After `retry_after_s` (-1: no header); responses are
    padded to `bytes` (0: natural size). */
void fake_upstream_set_delay (fake_upstream_t *self, int delay_ms);
void fake_upstream_fail_next (fake_upstream_t *self, int count, int retry_after_s);
void fake_upstream_set_padding (fake_upstream_t *self, size_t bytes);

/*  bad_output: account lists name each account by a number, which breaks
    search_accounts' outputSchema (items[].name is a string). */
void fake_upstream_set_bad_output (fake_upstream_t *self, bool bad_output);

/*  Counters: requests received, most requests in progress at once (reset
    by fake_upstream_reset), connections accepted, last Authorization. */
int fake_upstream_requests (fake_upstream_t *self);
int fake_upstream_max_inflight (fake_upstream_t *self);
int fake_upstream_connections (fake_upstream_t *self);
int fake_upstream_tasks_created (fake_upstream_t *self);   /* POST /v1/tasks served */
void fake_upstream_last_auth (fake_upstream_t *self, char *buf, size_t size);
void fake_upstream_reset (fake_upstream_t *self);

/*  Answers 401 (invalid_token) to every later request whose Authorization
    is exactly `auth` (adds to the list; fake_upstream_reset clears it). */
void fake_upstream_refuse_auth (fake_upstream_t *self, const char *auth);

//  ---------------------------------------------------------------------
//  Fake network: a TCP proxy to 127.0.0.1:target_port that can be cut

typedef struct fake_proxy_t fake_proxy_t;

/*  Starts a proxy on a free port forwarding to 127.0.0.1:`target_port`. */
fake_proxy_t *fake_proxy_new (int target_port);

/*  Stops it and frees it once its threads have ended. */
void fake_proxy_destroy (fake_proxy_t **self_p);

/*  Its port. */
int fake_proxy_port (fake_proxy_t *self);

/*  down: every open connection is closed (within ~50 ms) and new ones are
    accepted and closed at once; up: forwarding resumes for new connections. */
void fake_proxy_set_down (fake_proxy_t *self, bool down);

#endif
