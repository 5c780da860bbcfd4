/*  workers/sb_webhook_role.h — the webhook role (service "webhook"):
    events in from SaaS providers, verified, stored once and told to the
    gateways (proto/PROTOCOL.md "Webhooks"; docs/WEBHOOKS.md). Its
    modules and their shared state are in sb_wh_int.h.

    Ops (RESULT ok unless said):

      webhook/receive   tenant "_webhook"; data {"endpoint", "method",
                        "query", "headers": [[name, value]…], "remote"},
                        the raw request body as the job's `body`
                        → an HTTP response (payload/sb_http_payload.h):
                        2xx with the scheme's reply once every event is
                        committed (a duplicate too: stored once), 401 not
                        verified, 404 unknown or disabled endpoint, 400
                        verified but unreadable, 503 with retry-after when
                        the database could not take the events.
      events/read       the caller's tenant; data {"connector", "limit"
                        1..SB_WH_MAX_READ (default SB_WH_DEFAULT_READ)}
                        → {"events": [{"id", "type", "endpoint",
                        "received_at", "body" | "body_base64"}…]}, newest
                        first, at most SB_MAX_JSON_SIZE in all.
      ping              → {"pong":true,"role":"webhook","db":"ok"|"none",
                        "stats":{…}}: the counters of the webhook_stats line
                        (received, stored, duplicates, refused by reason,
                        unavailable, abandoned, batches with their sizes'
                        mean, most and histogram, published, reads)

    The role reads the endpoints' secrets itself (sb_wh_keys.h) with the
    master secret the token role seals them under (--secret-key-file or
    SB_SECRET_KEY). Verified events wait in a batch that one statement
    commits (group commit, --webhook-batch-max events at most; 1: every
    request alone); each request is answered after that commit. After a
    commit that stored new events it PUBLISHes `resource_updated`
    "switchboard://events/{connector}" once per (tenant, connector).

    With --db it also runs the deliverer (sb_wh_deliver.h: deliveries
    out to the tenants' subscriptions, from PostgreSQL, on its own
    connection) unless --webhook-deliver-max is 0.

    Without --db the role answers ping only and webhook/receive with 503
    (an old farm that starts it so); with --db it needs the master secret. */
#ifndef SB_WEBHOOK_ROLE_H_INCLUDED
#define SB_WEBHOOK_ROLE_H_INCLUDED

#include "sb_attr.h"
#include "sb_worker.h"

#define SB_WH_DEFAULT_BATCH_MAX     256     /* --webhook-batch-max's default, events */
#define SB_WH_MAX_BATCH_MAX         4096    /* --webhook-batch-max, at most */
#define SB_WH_CONNECT_TIMEOUT_MS    10000   /* start-up connect, at most */

//  What the role is started with (sb-worker's options).
typedef struct {
    const char *conninfo;           /* --db; "": no database (ping only) */
    const char *migrations_dir;     /* --migrations */
    const char *secret_key_file;    /* --secret-key-file; "": SB_SECRET_KEY holds the secret */
    int batch_max;                  /* --webhook-batch-max: events one statement stores, at most */
    //  Deliveries out (sb_wh_deliver.h), with --db only
    int deliver_max;                /* --webhook-deliver-max; 0: this worker delivers nothing */
    const char *retry_schedule;     /* --webhook-retry-schedule */
    int delivery_timeout_ms;        /* --webhook-delivery-timeout-ms */
    int disable_after_s;            /* --webhook-disable-after-s */
    const char *allow_hosts;        /* --webhook-allow-hosts (tests only) */
} sb_webhook_config_t;

typedef struct _sb_webhook_role_t sb_webhook_role_t;

/*  Reads the master secret, connects to the database (blocking, bounded by
    SB_WH_CONNECT_TIMEOUT_MS), applies the migrations, then opens the
    asynchronous connection on the worker's reactor and starts the stats
    timer. Returns NULL with an error logged (no secret with --db, a bad
    --webhook-batch-max, the database unreachable). */
sb_webhook_role_t *sb_webhook_role_new (sb_worker_t *worker, const sb_webhook_config_t *config)
    SB_MUST_USE;

/*  Closes the connection (the batch in flight is dropped unanswered: its
    jobs are the worker's to abandon), wipes the secrets, frees the role
    and nulls the caller's pointer. Idempotent. */
void sb_webhook_role_destroy (sb_webhook_role_t **self_p);

/*  The callbacks to pass to sb_worker_set_role with the sb_webhook_role_t. */
extern const sb_worker_role_t sb_webhook_role;

#endif
