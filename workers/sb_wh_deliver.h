/*  workers/sb_wh_deliver.h — the webhook role's deliverer: events out to
    tenants' own endpoints (proto/PROTOCOL.md "Webhooks", "Deliveries
    out"; docs/WEBHOOKS.md; db/migrations/017_webhook_delivery.sql).

    Deliveries are rows of webhook_deliveries, not jobs: the deliverer
    claims due ones from PostgreSQL on its own database connection (an
    sb_db_loop beside the role's) with a lease (owner: this deliverer's
    random ID; until: now + the attempt's timeout + SB_WH_DELIVER_LEASE_MARGIN_MS),
    so a worker that dies leaves its claims to another once the lease has
    passed. It polls every SB_WH_DELIVER_POLL_MS while idle and at once
    when a claim came back full or an attempt ended.

    Limits: a subscription's max_in_flight holds across workers (the claim
    counts every lease in force) and in memory; its rate_per_s caps one
    claim and a token bucket per subscription (burst rate_per_s) paces
    the attempts this deliverer starts; the deliverer holds at most
    `max_in_flight` deliveries at once (--webhook-deliver-max).

    An attempt: POST to the subscription's URL (http or https) with
        content-type: application/json
        webhook-id: msg_<delivery id>        (the same for every attempt)
        webhook-timestamp: <unix seconds at sending>
        webhook-signature: v1,<base64>       (sb_wh_sign_standard, the
                                              subscription's whsec_ secret
                                              opened with sb_wh_keys)
    and the body {"type", "timestamp" (the event's receipt, RFC 3339),
    "data": the event's body when it is JSON, else {"body_base64": …},
    "event": {"id" (its row in the tenant's event log), "key" (the
    provider's event ID), "endpoint", "connector"}}, through the SSRF
    guard (workers/sb_ssrf.h; --webhook-allow-hosts, tests only), within
    the attempt timeout. Every attempt is recorded (webhook_attempts: the
    HTTP status, 0 when none came — refused by the guard, connection
    refused or reset, timeout —, the latency, an error sentence, the
    response's first SB_WH_DELIVER_MAX_EXCERPT bytes as UTF-8 text).

    Outcome: 2xx delivered. 410 Gone: the endpoint is gone — dead, and the
    subscription is disabled at once. Anything else is a failure: the next
    attempt comes after the retry schedule's next delay with ±20% jitter;
    after the schedule's last attempt the delivery is dead (a dead letter
    sb-admin lists and replays; a replayed one keeps its attempts, so it
    gets one more attempt, and is dead again if that one fails too). A subscription whose deliveries all fail
    for longer than `disable_after_s` is disabled, its pending deliveries
    dead, an audit record webhook_subscription_disabled for its tenant and
    a log line. */
#ifndef SB_WH_DELIVER_H_INCLUDED
#define SB_WH_DELIVER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_reactor.h"

#define SB_WH_DELIVER_POLL_MS           200     /* idle: look for due deliveries this often */
#define SB_WH_DELIVER_LEASE_MARGIN_MS   3000    /* a lease outlasts the attempt's timeout by this */
#define SB_WH_DELIVER_MAX_EXCERPT       1024    /* bytes of the response kept per attempt */
#define SB_WH_DELIVER_MAX_RESPONSE      (1024 * 1024)   /* bytes of a response read at most */
#define SB_WH_DELIVER_MAX_SCHEDULE      32      /* attempts in a retry schedule */
#define SB_WH_DELIVER_MAX_DELAY_S       604800  /* one delay of the schedule, at most (7 days) */
#define SB_WH_DELIVER_MAX               1024    /* --webhook-deliver-max, at most */
#define SB_WH_DELIVER_MAX_TIMEOUT_MS    120000  /* --webhook-delivery-timeout-ms, at most */
#define SB_WH_DELIVER_MAX_SUBS          4096    /* subscriptions whose buckets are kept */
#define SB_WH_DELIVER_JITTER_PERCENT    20      /* a retry's delay ± this much */
#define SB_WH_DELIVER_MAX_DISABLE_S     31536000    /* --webhook-disable-after-s, at most (a year) */

/*  The defaults of the options. */
#define SB_WH_DELIVER_SCHEDULE          "0,5,300,1800,7200,18000,36000,36000"
#define SB_WH_DELIVER_TIMEOUT_MS        10000
#define SB_WH_DELIVER_DISABLE_AFTER_S   432000  /* 5 days */
#define SB_WH_DELIVER_DEFAULT_MAX       64

typedef struct _sb_wh_deliver_t sb_wh_deliver_t;

typedef struct {
    const char *conninfo;           /* PostgreSQL (the role's --db) */
    const uint8_t *secret;          /* the master secret (--secret-key-file), copied */
    size_t secret_len;              /* 32..64 */
    const char *retry_schedule;     /* --webhook-retry-schedule; NULL: the default */
    int timeout_ms;                 /* --webhook-delivery-timeout-ms, 1..SB_WH_DELIVER_MAX_TIMEOUT_MS */
    int disable_after_s;            /* --webhook-disable-after-s, 1..SB_WH_DELIVER_MAX_DISABLE_S */
    const char *allow_hosts;        /* --webhook-allow-hosts (tests): IPs the SSRF guard lets by */
    int max_in_flight;              /* --webhook-deliver-max, 1..SB_WH_DELIVER_MAX */
} sb_wh_deliver_config_t;

/*  What the deliverer did since it started (tests and logs). */
typedef struct {
    uint64_t claimed;               /* deliveries claimed */
    uint64_t attempts;              /* attempts made (recorded or not) */
    uint64_t delivered;             /* 2xx */
    uint64_t failed;                /* attempts that failed (any cause) */
    uint64_t refused;               /* of which the SSRF guard refused */
    uint64_t dead;                  /* deliveries that became dead letters */
    uint64_t disabled;              /* subscriptions this deliverer disabled */
    uint64_t held;                  /* deliveries held now (claimed, not yet recorded) */
} sb_wh_deliver_stats_t;

/*  Parses a retry schedule: comma-separated delays in seconds
    (0..SB_WH_DELIVER_MAX_DELAY_S), 1..SB_WH_DELIVER_MAX_SCHEDULE of them;
    one per attempt: the first must be 0 (a new delivery is sent as soon
    as it is due), each next one is the wait after a failed attempt. Fills `delays`
    (SB_WH_DELIVER_MAX_SCHEDULE entries) and `*count`. Returns 0, or -1
    with a sentence in `error` (`error_size` bytes). */
int sb_wh_deliver_parse_schedule (const char *text, int *delays, size_t *count, char *error,
                                  size_t error_size) SB_MUST_USE;

/*  Creates the deliverer on `reactor` (borrowed, outliving it) with
    `config` (copied): its database loop (it connects at once), its curl
    loop, its key ring, and the poll timer, and starts polling. Returns
    NULL with the reason logged (a bad option: config_invalid; out of
    memory or of reactor timers). */
sb_wh_deliver_t *sb_wh_deliver_new (sb_reactor_t *reactor, const sb_wh_deliver_config_t *config)
    SB_MUST_USE;

/*  Stops: deliveries claimed and not yet sent are let go (one blocking
    statement, at most a second; else their leases run out), transfers in
    flight are dropped (their leases run out: another worker sends them
    again), and frees. Nulls the caller's pointer. Idempotent. */
void sb_wh_deliver_destroy (sb_wh_deliver_t **self_p);

/*  The counters so far. */
void sb_wh_deliver_stats (const sb_wh_deliver_t *self, sb_wh_deliver_stats_t *stats);

/*  The deliverer's lease owner ID (tests). */
const char *sb_wh_deliver_owner (const sb_wh_deliver_t *self);

#endif
