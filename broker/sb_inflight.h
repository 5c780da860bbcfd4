/*  broker/sb_inflight.h — the broker's table of jobs it holds, keyed by
    correlation ID, from the REQUEST that brought them until their REPLY.

    A job (sb_flight_t) is QUEUED (waiting in its service's queue), RUNNING
    (a worker holds it) or EXPIRED (its deadline passed while a worker held
    it: the gateway has been told `timeout`, and the entry stays as a
    tombstone so the worker's credit is returned when its late result comes,
    or after a grace period). The table owns every entry; queues and workers
    only point at them.

    Besides the hash by correlation ID, the table keeps a binary min-heap on
    each entry's `due` time (its deadline, or the end of its grace period),
    so the broker finds the next job to time out in O(1) and removes it in
    O(log n) without scanning.
*/
#ifndef SB_INFLIGHT_H_INCLUDED
#define SB_INFLIGHT_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "sb_attr.h"
#include "sb_msg.h"

#define SB_MAX_IN_FLIGHT        1000000     /* most jobs the broker holds at once */

struct _sb_worker_t;
struct _sb_tenant_queue_t;
struct _sb_quota_state_t;

typedef enum {
    SB_FLIGHT_QUEUED  = 0,  /* waiting in its (service, tenant) queue */
    SB_FLIGHT_RUNNING = 1,  /* dispatched; `worker` holds it */
    SB_FLIGHT_EXPIRED = 2,  /* deadline passed while running; gateway answered */
} sb_flight_state_t;

/*  One job. A record shared by the broker's modules, so its fields are
    public; only sb_inflight creates and frees it. */
typedef struct {
    char corr_id [SB_MAX_CORR_ID_LEN + 1];  /* key; unique among held jobs */
    char service [SB_MAX_SERVICE_LEN + 1];  /* service the job asks for */
    char tenant [SB_MAX_TENANT_LEN + 1];    /* tenant it runs for */
    zframe_t *gateway;                      /* routing id of the asker, owned: a gateway on the
                                               frontend, or (from_worker) a worker on the backend */
    bool from_worker;                       /* a worker's REQUEST (PROTOCOL.md "Worker requests") */
    struct _sb_worker_t *asker;             /* from_worker: the asking worker while registered */
    zframe_t *payload;                      /* opaque body, owned; kept while a retry may need it */
    uint32_t flags;                         /* SB_FLAG_* from the REQUEST */
    uint32_t cost;                          /* REQUEST cost: 0 not metered, else 1..SB_MAX_COST
                                               (the fair queue counts it as at least 1) */
    struct _sb_quota_state_t *quota;        /* metered and admitted: its tenant's quota state
                                               (sb_quota.h), released with the job; else NULL */
    sb_msg_quota_t policy;                  /* metered: the rate policy at admission, sent in
                                               every REPLY to it; zero otherwise */
    uint32_t attempt;                       /* dispatches so far (0 while first queued) */
    uint32_t call_messages;                 /* NOTIFY/ASK/ANSWER passed on (cap SB_MAX_CALL_MESSAGES) */
    int64_t deadline;                       /* monotonic ms when the gateway stops waiting */
    int64_t due;                            /* heap key: deadline, or end of the grace period */
    size_t heap_index;                      /* position in the table's heap */
    sb_flight_state_t state;                /* see above */
    struct _sb_worker_t *worker;            /* holder while RUNNING or EXPIRED, else NULL */
    struct _sb_tenant_queue_t *tqueue;      /* tenant queue while QUEUED, else NULL */
    void *queue_handle;                     /* its node in that queue while QUEUED */
} sb_flight_t;

typedef struct _sb_inflight_t sb_inflight_t;

/*  Creates an empty table that holds at most `max_size` entries
    (at most SB_MAX_IN_FLIGHT). Returns NULL on allocation failure. */
sb_inflight_t *sb_inflight_new (size_t max_size) SB_MUST_USE;

/*  Frees every entry and the table; nulls the caller's pointer. Idempotent. */
void sb_inflight_destroy (sb_inflight_t **self_p);

/*  Adds a QUEUED entry from a well-formed REQUEST. Takes `*gateway` and
    msg->payload (both nulled). The caller has checked that corr_id is not
    held yet. Returns the entry (owned by the table), or NULL when the table
    is full (then nothing is taken). */
sb_flight_t *sb_inflight_add (sb_inflight_t *self, sb_msg_t *request,
                              zframe_t **gateway, int64_t deadline) SB_MUST_USE;

/*  The entry for `corr_id`, or NULL. */
sb_flight_t *sb_inflight_lookup (sb_inflight_t *self, const char *corr_id);

/*  Removes and frees the entry; nulls the caller's pointer. The caller has
    already taken it out of any queue and worker, and released its quota. */
void sb_inflight_remove (sb_inflight_t *self, sb_flight_t **flight_p);

/*  The entry with the earliest due time if that time is <= now, else NULL.
    The entry stays in the table. */
sb_flight_t *sb_inflight_due (sb_inflight_t *self, int64_t now);

/*  Earliest due time of any entry, or INT64_MAX when the table is empty. */
int64_t sb_inflight_next_due (sb_inflight_t *self);

/*  Changes an entry's due time and restores the heap. */
void sb_inflight_set_due (sb_inflight_t *self, sb_flight_t *flight, int64_t due);

/*  Appends to `out` (a zlistx without destructor) every entry whose
    worker is `worker`, so the caller can change them safely. */
void sb_inflight_collect (sb_inflight_t *self, const struct _sb_worker_t *worker,
                          zlistx_t *out);

/*  Appends to `out` every entry (same rules as sb_inflight_collect). */
void sb_inflight_collect_all (sb_inflight_t *self, zlistx_t *out);

/*  Number of entries held. */
size_t sb_inflight_size (sb_inflight_t *self);

#endif
