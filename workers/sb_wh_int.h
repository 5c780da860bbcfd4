/*  workers/sb_wh_int.h — what the webhook role's modules share: the
    role's state, the endpoint cache's entries, a request on its way from
    JOB to answer, and the counters. The role (sb_webhook_role.c) owns the
    lifecycle, the key ring and the endpoint cache, and dispatches by op:

      webhook/receive   sb_wh_ingest.c     verify, group commit, answer, PUBLISH
      events/read       sb_wh_ingest.c     a tenant's event log
      ping              sb_webhook_role.c

    Everything runs on the worker's reactor; the database is the role's
    own sb_db_loop (one statement at a time per connection, so no
    transaction spans loop turns). */
#ifndef SB_WH_INT_H_INCLUDED
#define SB_WH_INT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_db_loop.h"
#include "sb_limits.h"
#include "sb_webhook_role.h"
#include "sb_wh_deliver.h"
#include "sb_wh_keys.h"
#include "sb_wh_verify.h"
#include "sb_worker.h"

#define SB_WH_ENDPOINT_TTL_MS   5000    /* a cached endpoint is read again after this (rotation, disable) */
#define SB_WH_NEGATIVE_TTL_MS   1000    /* an unknown endpoint is remembered this long */
#define SB_WH_MAX_ENDPOINTS     4096    /* endpoints the cache holds; past it the least used goes */
#define SB_WH_MAX_ENDPOINT_ID   64      /* an endpoint ID, characters (^[A-Za-z0-9_-]{8,64}$) */
#define SB_WH_MIN_ENDPOINT_ID   8
#define SB_WH_MAX_CONNECTOR     64      /* a connector name, characters (migration 015) */
#define SB_WH_MAX_WAITING       8192    /* requests between verification and answer at once; more: 503 */
#define SB_WH_MAX_BATCH_BYTES   (16u << 20) /* bodies one statement carries, bytes (twice that in hex) */
#define SB_WH_MAX_QUEUE_BYTES   (256u << 20)    /* bodies waiting for a statement, bytes; more: 503 */
#define SB_WH_MAX_STATEMENTS    2       /* group commits on the connection at once: the running
                                           one and, when full, the next */
#define SB_WH_KEYS_RETRY_MS     1000    /* a key missing from a ring read this recently is not re-read */
#define SB_WH_TICK_MS           1000    /* the role's housekeeping timer */
#define SB_WH_STATS_MS          10000   /* the stats line, at most this often when anything changed */
#define SB_WH_RETRY_AFTER_S     5       /* a 503's retry-after, seconds */
#define SB_WH_DEFAULT_READ      20      /* events/read's default limit */
#define SB_WH_MAX_READ          100     /* events/read's limit, at most */

typedef struct _sb_wh_req_t sb_wh_req_t;

/*  A cached endpoint (or an unknown ID: found false). */
typedef struct {
    char id [SB_WH_MAX_ENDPOINT_ID + 1];
    bool found;                         /* false: a negative entry */
    bool enabled;                       /* found: false answers 404 */
    bool loading;                       /* a read is out: requests wait in `waiters` */
    char tenant [SB_MAX_TENANT_LEN + 1];
    char connector [SB_WH_MAX_CONNECTOR + 1];
    sb_wh_verifier_t *verifier;         /* found and enabled: its scheme, options, secrets */
    int64_t loaded_ms;                  /* sb_clock_mono_ms of the read; 0: never read */
    int64_t used_ms;                    /* the last request for it (eviction) */
    sb_wh_req_t *waiters;               /* requests waiting for the read, FIFO */
    sb_wh_req_t **waiters_tail;
} sb_wh_endpoint_t;

/*  An event of a verified request (strings in the request's allocation). */
typedef struct {
    const char *key;
    const char *type;
} sb_wh_req_event_t;

/*  One webhook/receive from its JOB to its answer. The job slot is NULL
    once the job was abandoned (its deadline passed): the request still
    goes through its batch (storing is idempotent), unanswered. */
struct _sb_wh_req_t {
    sb_webhook_role_t *role;
    sb_worker_job_t *job;               /* NULL: abandoned */
    char endpoint [SB_WH_MAX_ENDPOINT_ID + 1];
    struct json_t *data;                /* the job's data, parsed: owns the header strings */
    sb_wh_header_t headers [SB_MAX_WEBHOOK_HEADERS];
    size_t header_count;
    //  Once verified (SB_WH_OK):
    char tenant [SB_MAX_TENANT_LEN + 1];
    char connector [SB_WH_MAX_CONNECTOR + 1];
    sb_wh_req_event_t *events;          /* event_count, in one allocation with their strings */
    size_t event_count;
    char *reply;                        /* the 2xx body */
    char *reply_type;                   /* its content-type */
    uint8_t *body;                      /* the raw body, copied (the job may end first) */
    size_t body_len;
    bool gone;                          /* the commit found its endpoint deleted */
    sb_wh_req_t *next;                  /* in an endpoint's waiters, the queue or a batch */
};

/*  The counters (ping's "stats", the stats line). */
typedef struct {
    uint64_t received;                  /* webhook/receive jobs */
    uint64_t stored;                    /* events stored new */
    uint64_t duplicates;                /* events already there */
    uint64_t refused_unverified;        /* 401 */
    uint64_t refused_unknown;           /* 404: unknown, disabled or deleted endpoint */
    uint64_t refused_unreadable;        /* 400 */
    uint64_t refused_malformed;         /* RESULT failed: the job's data broke its shape */
    uint64_t challenges;                /* 2xx at once, nothing stored */
    uint64_t unavailable;               /* 503 */
    uint64_t abandoned;                 /* jobs whose deadline passed before the answer */
    uint64_t batches;                   /* group-commit statements */
    uint64_t batch_events;              /* events in them, in all */
    uint64_t batch_requests;            /* requests in them, in all */
    uint64_t batch_max;                 /* the most events one statement carried */
    uint64_t batch_hist [8];            /* statements by events: 1, 2-3, 4-7, …, 64-127, 128+ */
    uint64_t published;                 /* resource_updated PUBLISHes sent */
    uint64_t publish_failed;            /* not sent (no broker now) */
    uint64_t reads;                     /* events/read jobs */
} sb_wh_stats_t;

struct _sb_webhook_role_t {
    sb_worker_t *worker;                /* our worker (borrowed) */
    sb_reactor_t *reactor;              /* its loop (borrowed) */
    sb_db_loop_t *db_loop;              /* the ingest connection; NULL without --db */
    sb_wh_keys_t *keys;                 /* the data keys (sb_wh_keys.h); NULL without --db */
    sb_wh_deliver_t *deliver;           /* deliveries out (sb_wh_deliver.h); NULL: none here */
    int64_t keys_read_ms;               /* the last ring read that succeeded; 0: none */
    bool keys_reading;                  /* the periodic ring read is out */
    struct _zhashx_t *endpoints;        /* id → sb_wh_endpoint_t (the cache) */
    int tick_timer;                     /* housekeeping (ring re-read, stats line) */
    int flush_timer;                    /* the end of this loop turn: send a batch */
    int batch_max;                      /* --webhook-batch-max */
    //  The group commit (sb_wh_ingest.c)
    sb_wh_req_t *queue;                 /* verified requests waiting for a statement, FIFO */
    sb_wh_req_t **queue_tail;
    size_t queue_events;                /* events in `queue` */
    size_t queue_bytes;                 /* their bodies, bytes */
    size_t statements;                  /* group commits on the connection now */
    size_t waiting;                     /* requests held (cache waiters, queue, statements) */
    sb_wh_outcome_t outcome;            /* sb_wh_verify's scratch (one verify at a time) */
    sb_wh_stats_t stats;
    sb_wh_stats_t logged;               /* the counters the last stats line showed */
    int64_t stats_ms;                   /* when the last stats line was written */
    bool closing;                       /* being destroyed: callbacks only release */
};

//  ---------------------------------------------------------------------
//  sb_webhook_role.c: the endpoint cache

/*  Finds req->endpoint in the cache, reading it (and the key ring, when
    its key is missing) from the database when absent or stale; calls
    sb_wh_ingest_endpoint_ready now or once read. Takes `req`. */
void sb_wh_endpoint_lookup (sb_webhook_role_t *self, sb_wh_req_t *req);

/*  Frees `req` (what it holds; never its job, which must be answered or
    detached first) and nulls the caller's pointer. */
void sb_wh_req_free (sb_wh_req_t **req_p);

//  ---------------------------------------------------------------------
//  sb_wh_ingest.c

/*  Starts a webhook/receive job. */
void sb_wh_ingest_receive (sb_webhook_role_t *self, sb_worker_job_t *job);

/*  The endpoint cache's answer for `req` (taken): verify, then queue. */
void sb_wh_ingest_endpoint_ready (sb_webhook_role_t *self, sb_wh_req_t *req,
                                  const sb_wh_endpoint_t *endpoint, bool unavailable);

/*  Sends a batch when the connection may take one: called at the end of
    a loop turn (flush_timer) and after every statement. */
void sb_wh_ingest_flush (sb_webhook_role_t *self);

/*  Starts an events/read job. */
void sb_wh_ingest_read (sb_webhook_role_t *self, sb_worker_job_t *job);

/*  The worker abandons `job`: a receive's request stays in its batch,
    unanswered; a read's query is detached. */
void sb_wh_ingest_abandon (sb_webhook_role_t *self, sb_worker_job_t *job);

/*  Answers `req`'s job (if any) with an HTTP response: `status`, a JSON
    `body` (borrowed) and, for 503, retry-after. The request stays the
    caller's; its job slot is emptied. */
void sb_wh_answer (sb_wh_req_t *req, int status, const char *content_type, const char *body,
                   size_t len);

#endif
