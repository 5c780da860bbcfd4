/*  broker/sb_broker.h — the switchboard broker, as a component.

    Gateways connect DEALER sockets to the frontend ROUTER and send REQUEST
    (and HEARTBEAT, so the broker knows them; a BROADCAST from one is passed
    to every other gateway heard from lately: sb_gateways.h);
    workers connect DEALER sockets to the backend ROUTER and send READY,
    HEARTBEAT, RESULT and DISCONNECT (proto/PROTOCOL.md), and PUBLISH: a
    registered worker's news about a topic workers may publish
    (`resource_updated`) goes to every gateway known as a BROADCAST. The broker queues
    each job per (service, tenant), dispatches it to a worker with free
    credit, and routes the worker's RESULT back to the gateway that asked as
    a REPLY, by correlation ID. Every job is answered exactly once: with the
    worker's result, or `timeout`, `worker_lost`, `overloaded`, `duplicate`,
    `unavailable`, `malformed` or `bad_version`. The payload is never decoded.

    A service with no registered worker (PROTOCOL.md, "No worker") keeps its
    jobs waiting for no_worker_grace_ms from the broker's start or from the
    moment its last worker left; after that its waiting jobs, and every new
    one, are answered `unavailable` with retry_after_ms
    SB_BROKER_UNAVAILABLE_RETRY_MS. A service whose workers are all busy is
    not unavailable: its jobs wait for credit. A gateway's HEARTBEAT is
    answered with a HEARTBEAT, so gateways can tell a live broker.

    One thread, one poll loop, no blocking call. sb-broker (sb_broker_main.c)
    is a thin main around it; tests start it in-process through
    sb_broker_actor on tcp://127.0.0.1:*.
*/
#ifndef SB_BROKER_H_INCLUDED
#define SB_BROKER_H_INCLUDED

#include <czmq.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_MAX_SERVICES         64      /* most services with jobs waiting at once */
#define SB_MAX_ATTEMPTS         10      /* hard cap on the max-attempts setting */
#define SB_BROKER_BATCH         256     /* messages read per socket per loop turn */
#define SB_MAX_CALL_MESSAGES    10000   /* NOTIFY + ASK + ANSWER passed on per job */
#define SB_BROKER_TICK_MS       25      /* housekeeping period (heartbeats, expiry) */
#define SB_LOG_RATE_MS          1000    /* at most one malformed-frame log line per period */
#define SB_DEFAULT_NO_WORKER_GRACE_MS 2000  /* wait for a (re)starting worker before `unavailable` */
#define SB_BROKER_UNAVAILABLE_RETRY_MS 5000 /* retry_after_ms sent with `unavailable` */
#define SB_BROKER_USAGE_RESEND_MS 5000  /* an unacknowledged USAGE batch is sent again after this */
#define SB_BROKER_WANT_MS       5000    /* USAGE want=1 is asked again this often until loaded */
#define SB_DEFAULT_USAGE_FLUSH_MS 1000  /* default period of the USAGE flush */
#define SB_MIN_USAGE_FLUSH_MS   10      /* usage_flush_ms bounds */
#define SB_MAX_USAGE_FLUSH_MS   60000
#define SB_DEFAULT_QUOTA_TENANTS 1000000 /* tenants the quota table holds (SB_QUOTA_MAX_TENANTS) */
#define SB_DEFAULT_PLAN_RATE    600     /* default plan: cost units per minute */
#define SB_DEFAULT_PLAN_BURST   100     /* default plan: burst */
#define SB_DEFAULT_PLAN_IN_FLIGHT 32    /* default plan: metered jobs alive at once */
#define SB_DEFAULT_PLAN_WEIGHT  1       /* default plan: weight in the fair queues */

/*  The wall clock (Unix ms) the quotas read: billing periods and the
    minute of a usage flush. Tests inject one to cross a month boundary. */
typedef int64_t (sb_broker_wall_fn) (void *arg);

/*  Settings (sb_broker_config_defaults fills every field). */
typedef struct {
    const char *frontend;       /* endpoint gateways connect to, e.g. tcp://127.0.0.1:5555 */
    const char *backend;        /* endpoint workers connect to */
    uint32_t heartbeat_ms;      /* interval for workers whose READY gives 0 */
    uint32_t max_tenant_queue;  /* jobs waiting per (service, tenant) */
    uint32_t max_service_queue; /* jobs waiting per service */
    uint32_t max_attempts;      /* dispatches of a retry-safe job before worker_lost */
    uint32_t late_grace_ms;     /* how long a timed-out job holds its worker's credit */
    uint32_t stats_ms;          /* period of the counters log line, 0 = never */
    uint32_t drain_ms;          /* on stop, longest wait for running jobs */
    uint32_t gateway_expiry_ms; /* a gateway silent this long gets no more BROADCASTs */
    uint32_t no_worker_grace_ms;/* a service with no worker this long gets `unavailable` */
    bool quotas;                /* enforce quotas (false: no limits, no LIMITS/USAGE, weight 1) */
    const char *quota_service;  /* service whose workers send LIMITS and store USAGE */
    uint32_t usage_flush_ms;    /* period of the USAGE flush, SB_MIN/MAX_USAGE_FLUSH_MS */
    uint32_t max_quota_tenants; /* tenants the quota table holds (then one overflow state) */
    uint32_t default_rate;      /* limits of tenants without a known plan (plan "default"): */
    uint32_t default_burst;     /*   rate per minute and burst (0 = unlimited), */
    uint32_t default_in_flight; /*   in-flight cap (0 = unlimited), */
    uint32_t default_weight;    /*   weight 1..SB_QUOTA_MAX_WEIGHT; no monthly allowance */
    sb_broker_wall_fn *wall_ms; /* wall clock for the quotas; NULL: sb_clock_wall_ms */
    void *wall_arg;             /* its argument */
} sb_broker_config_t;

/*  What the broker has done since it started (and three gauges). */
typedef struct {
    uint64_t jobs_received;         /* well-formed REQUESTs */
    uint64_t jobs_dispatched;       /* JOBs sent to workers, retries included */
    uint64_t jobs_retried;          /* jobs queued again after their worker was lost */
    uint64_t jobs_replied;          /* REPLYs sent to gateways and asking workers, any status */
    uint64_t results_routed;        /* RESULTs delivered as a REPLY */
    uint64_t timeouts;              /* REPLY timeout */
    uint64_t worker_lost;           /* REPLY worker_lost */
    uint64_t overloaded;            /* REPLY overloaded */
    uint64_t duplicates;            /* REPLY duplicate */
    uint64_t unavailable;           /* REPLY unavailable (no worker for the service) */
    uint64_t malformed_frontend;    /* bad messages from gateways (answered or not) */
    uint64_t malformed_backend;     /* bad messages from workers */
    uint64_t bad_version;           /* messages of another protocol version, either side */
    uint64_t late_results_dropped;  /* RESULTs for jobs no longer held or timed out */
    uint64_t unknown_worker_dropped;/* messages from workers not registered */
    uint64_t replies_undeliverable; /* REPLYs the socket refused (gateway gone) */
    uint64_t workers_registered;    /* READYs accepted */
    uint64_t workers_expired;       /* workers lost by silence or unreachable */
    uint64_t workers_disconnected;  /* workers that sent DISCONNECT */
    uint64_t jobs_cancelled;        /* CANCELs that stopped a queued or running job */
    uint64_t call_messages_routed;  /* NOTIFY, ASK and ANSWER passed on */
    uint64_t call_messages_dropped; /* those refused: job not held, wrong sender or tenant, over the cap */
    uint64_t broadcasts_received;   /* well-formed BROADCASTs from gateways */
    uint64_t broadcasts_delivered;  /* copies of them sent to other gateways */
    uint64_t broadcasts_undeliverable; /* copies the socket refused (gateway gone, HWM) */
    uint64_t gateways_joined;       /* gateways heard from for the first time (or again after expiry) */
    uint64_t gateways_expired;      /* gateways forgotten: silence, DISCONNECT or unreachable */
    uint64_t gateways_refused;      /* gateways not remembered: the table was full */
    uint64_t worker_requests;       /* well-formed REQUESTs from workers (also in jobs_received
                                       when accepted past the checks) */
    uint64_t worker_requests_refused; /* those refused by its checks (malformed, or overloaded
                                       past SB_MAX_WORKER_REQUESTS) */
    uint64_t worker_replies;        /* REPLYs sent to asking workers, any status */
    uint64_t publishes;             /* PUBLISHes from registered workers passed on to every
                                       gateway (copies in broadcasts_delivered/_undeliverable) */
    uint64_t publish_refused;       /* PUBLISHes dropped: from a gateway (also malformed_frontend),
                                       from an unregistered worker, or a topic workers may not
                                       publish (an oversized one is malformed_backend: undecodable) */
    uint64_t jobs_metered;          /* metered REQUESTs admitted by the quotas */
    uint64_t limited_in_flight;     /* REPLY limited, by reason: in_flight */
    uint64_t limited_rate;          /*   rate */
    uint64_t limited_monthly;       /*   monthly */
    uint64_t limited_budget;        /*   budget */
    uint64_t limits_received;       /* LIMITS applied (from a worker of the quota service) */
    uint64_t limits_entries;        /* entries in them */
    uint64_t limits_ignored;        /* LIMITS dropped because quotas are off */
    uint64_t limits_wanted;         /* USAGE want=1 sent (asking for a snapshot) */
    uint64_t usage_batches_sent;    /* USAGE batches sent for the first time */
    uint64_t usage_batches_acked;   /* USAGE_ACKs that matched the batch waiting for one */
    uint64_t usage_batches_resent;  /* batches sent again (no ack within SB_BROKER_USAGE_RESEND_MS) */
    uint64_t usage_acks_stale;      /* USAGE_ACKs for another seq (a want, or a late duplicate) */
    uint64_t limits_loaded;         /* gauge: 1 once a full snapshot was applied */
    uint64_t quota_tenants;         /* gauge: tenants in the quota table */
    uint64_t gateways;              /* gauge: gateways known now */
    uint64_t workers;               /* gauge: registered now */
    uint64_t jobs_queued;           /* gauge: waiting for a worker */
    uint64_t jobs_running;          /* gauge: held by workers */
} sb_broker_counters_t;

typedef struct _sb_broker_t sb_broker_t;

/*  Fills `config` with the defaults: tcp://127.0.0.1:5555 / :5556,
    heartbeat 1000 ms, queues SB_DEFAULT_TENANT_QUEUE /
    SB_DEFAULT_SERVICE_QUEUE, 3 attempts, grace 5000 ms, stats every
    10000 ms, drain 5000 ms, gateway expiry SB_GATEWAY_LIVENESS ×
    SB_GATEWAY_HEARTBEAT_MS, no-worker grace SB_DEFAULT_NO_WORKER_GRACE_MS,
    quotas on with quota service "token", usage flush
    SB_DEFAULT_USAGE_FLUSH_MS, the SB_DEFAULT_PLAN_* limits, the system's
    wall clock. */
void sb_broker_config_defaults (sb_broker_config_t *config);

/*  Creates the broker and binds both sockets (`tcp://127.0.0.1:*` picks a
    free port; sb_broker_frontend/backend give the real endpoint). The
    config is copied. Returns NULL (after logging why) when a bind fails. */
sb_broker_t *sb_broker_new (const sb_broker_config_t *config) SB_MUST_USE;

/*  Destroys the broker, closing its sockets; nulls the caller's pointer.
    Idempotent. Jobs still held are dropped unanswered: call sb_broker_run
    to the end first for a clean stop. */
void sb_broker_destroy (sb_broker_t **self_p);

/*  The endpoints actually bound (borrowed). */
const char *sb_broker_frontend (sb_broker_t *self);
const char *sb_broker_backend (sb_broker_t *self);

/*  Runs the loop until `*stop` becomes non-zero (set it from a signal
    handler; may be NULL), or `pipe` (may be NULL) delivers "$TERM".
    On `*stop` or a "STOP" command the broker drains: new requests get
    `overloaded`, waiting jobs get `overloaded`, running jobs get up to
    drain_ms to finish (then `worker_lost`), workers get DISCONNECT.
    "$TERM" ends at once. "COUNTERS" on the pipe is answered with one
    frame holding an sb_broker_counters_t. Returns 0, or -1 on a socket
    error. */
int sb_broker_run (sb_broker_t *self, volatile sig_atomic_t *stop, zsock_t *pipe) SB_MUST_USE;

/*  Copies the counters. Only from the broker's own thread (or after
    sb_broker_run returned); other threads use sb_broker_actor_counters. */
void sb_broker_counters (sb_broker_t *self, sb_broker_counters_t *out);

/*  zactor body for tests: `args` is a const sb_broker_config_t * (read
    before the actor signals). After the start signal it sends one
    message, "READY" frontend backend or "ERROR", then runs the loop. */
void sb_broker_actor (zsock_t *pipe, void *args);

/*  Starts a broker actor and reads its endpoints into `frontend` and
    `backend` (new strings, the caller frees). Returns NULL on failure. */
zactor_t *sb_broker_actor_start (const sb_broker_config_t *config,
                                 char **frontend, char **backend) SB_MUST_USE;

/*  Asks a broker actor for its counters. Returns 0, or -1 when it did not
    answer within timeout_ms. */
int sb_broker_actor_counters (zactor_t *actor, sb_broker_counters_t *out, int timeout_ms)
    SB_MUST_USE;

#endif
