/*  workers/sb_quota_sync.h — the quota service's side of the broker's
    quotas (proto/PROTOCOL.md "Quotas"), run by the token role, which owns
    the plans and tenants in PostgreSQL (db/migrations/014_quotas.sql):

      - USAGE from the broker: its entries are stored in one statement,
        quota_usage_record (broker_id, seq, entries), which also records
        the batch, so a batch sent twice is counted once; once that
        statement answers (true: stored, false: stored before) the batch
        is acknowledged with USAGE_ACK seq. A failed statement is not
        acknowledged: the broker sends the batch again. An empty batch has
        nothing to store and is acknowledged at once;
      - `want` in a USAGE: a full snapshot of the limits as LIMITS parts,
        every plan (quota_plans_since (0)) then the tenants
        SB_QUOTA_SYNC_PAGE at a time (quota_tenants_since (0, after,
        page)), each part snapshot 1 and the last 2;
      - every `poll_ms`, quota_version (): when it moved past the version
        this worker last pushed, the plans and tenants changed since go
        out as LIMITS snapshot 0 (paged the same way). A worker that just
        started has pushed nothing, so its first poll pushes every plan
        and tenant: a change made while no worker of the service ran
        (a migration at start-up, plain SQL) still reaches the broker.

    One statement of a snapshot or a push runs at a time and each answer
    sends one part, so the loop is never held; a `want` waits for the
    statement in flight, then replaces a push (whose changes the snapshot
    carries) or a snapshot for another broker. Any failure (the database,
    a send) ends the pass: the broker asks again, the next poll pushes
    again. The statements run on the role's database loop without a job. */
#ifndef SB_QUOTA_SYNC_H_INCLUDED
#define SB_QUOTA_SYNC_H_INCLUDED

#include <stdint.h>

#include "sb_attr.h"
#include "sb_db_loop.h"
#include "sb_worker.h"

#define SB_QUOTA_SYNC_PAGE          1000    /* tenants per statement and per LIMITS part */
#define SB_QUOTA_SYNC_MAX_RECORDS   16      /* USAGE batches being stored at once; more wait
                                               for the broker's resend */
#define SB_LIMITS_POLL_MS           1000    /* --limits-poll-ms, by default */
#define SB_MIN_LIMITS_POLL_MS       50      /* --limits-poll-ms, at least */
#define SB_MAX_LIMITS_POLL_MS       600000  /* --limits-poll-ms, at most (10 minutes) */

typedef struct _sb_quota_sync_t sb_quota_sync_t;

/*  Registers for USAGE on `worker` and starts polling every `poll_ms`
    (SB_MIN_LIMITS_POLL_MS..SB_MAX_LIMITS_POLL_MS) on `db_loop`; both
    borrowed, and the loop must be destroyed between sb_quota_sync_stop
    and sb_quota_sync_destroy (its pending statements are answered then).
    Takes one timer of the worker's reactor. Returns NULL on a bad
    argument or when out of memory or timers. */
sb_quota_sync_t *sb_quota_sync_new (sb_worker_t *worker, sb_db_loop_t *db_loop, uint32_t poll_ms)
    SB_MUST_USE;

/*  Stops: no more polls, sends or acknowledgements; USAGE is dropped. */
void sb_quota_sync_stop (sb_quota_sync_t *self);

/*  Stops and frees; nulls the caller's pointer. Idempotent. */
void sb_quota_sync_destroy (sb_quota_sync_t **self_p);

#endif
