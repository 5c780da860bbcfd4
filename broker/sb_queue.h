/*  broker/sb_queue.h — the waiting jobs of one service: one FIFO per tenant,
    served by weighted deficit round robin across tenants (PROTOCOL.md
    "Quotas", "Fair queues") so a tenant that floods the service cannot
    starve the others, and a tenant of weight 4 gets four times the share
    of one of weight 1 while both have jobs waiting.

    Deficit round robin: the tenants with jobs waiting form a ring. When a
    tenant's turn comes, its deficit grows by weight × SB_DRR_QUANTUM cost
    units; it sends jobs while the next one's cost (at least 1) fits in its
    deficit, then the turn passes on and what is left of the deficit stays
    for its next turn. A tenant whose FIFO empties leaves the ring and
    loses its deficit (an idle tenant saves no credit).

    Both levels are bounded: a push beyond the tenant's limit or the
    service's limit is refused (the broker answers `overloaded`). A job put
    back after its worker was lost goes to the front of its tenant's FIFO
    and is never refused (it was already admitted once).

    The queue does not own the jobs (sb_inflight does); it records in each
    job where it sits, so any job can be taken out in O(1) when its
    deadline passes.
*/
#ifndef SB_QUEUE_H_INCLUDED
#define SB_QUEUE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "sb_attr.h"
#include "sb_inflight.h"

#define SB_MAX_TENANT_QUEUE     10000       /* hard cap: jobs waiting per (service, tenant) */
#define SB_MAX_SERVICE_QUEUE    100000      /* hard cap: jobs waiting per service */
#define SB_DEFAULT_TENANT_QUEUE 1000        /* default limit per (service, tenant) */
#define SB_DEFAULT_SERVICE_QUEUE 10000      /* default limit per service */
#define SB_DRR_QUANTUM          1           /* cost units a turn adds per unit of weight */
#define SB_DRR_MAX_WEIGHT       100         /* weights are clamped to 1..this (a plan's range) */

/* Returns of sb_queue_push. */
#define SB_QUEUE_OK             0
#define SB_QUEUE_TENANT_FULL   -1   /* the tenant's FIFO is at its limit */
#define SB_QUEUE_SERVICE_FULL  -2   /* the service's total is at its limit */
#define SB_QUEUE_NO_MEMORY     -3

typedef struct _sb_queue_t sb_queue_t;

/*  Creates the empty queue of `service` with the given limits (clamped to
    the hard caps). Returns NULL on allocation failure. */
sb_queue_t *sb_queue_new (const char *service, size_t max_tenant, size_t max_service) SB_MUST_USE;

/*  Destroys the queue (not the jobs in it, whose queue fields are left
    stale); nulls the caller's pointer. Idempotent. */
void sb_queue_destroy (sb_queue_t **self_p);

/*  Appends `flight` (QUEUED, not in any queue) to its tenant's FIFO.
    `weight` (clamped to 1..SB_DRR_MAX_WEIGHT) becomes the tenant's weight
    in this queue from its next turn on. The job's cost is flight->cost,
    at least 1. Returns SB_QUEUE_OK or a negative SB_QUEUE_* code (nothing
    changed). */
int sb_queue_push (sb_queue_t *self, sb_flight_t *flight, uint32_t weight)
    SB_MUST_USE;

/*  Whether a job of `tenant` would fit now: SB_QUEUE_OK,
    SB_QUEUE_TENANT_FULL or SB_QUEUE_SERVICE_FULL (sb_queue_push's checks,
    in its order). Changes nothing. */
int sb_queue_room (sb_queue_t *self, const char *tenant);

/*  Puts `flight` at the front of its tenant's FIFO, beyond the limits
    (`weight` as for sb_queue_push). Returns SB_QUEUE_OK or
    SB_QUEUE_NO_MEMORY. */
int sb_queue_push_front (sb_queue_t *self, sb_flight_t *flight, uint32_t weight)
    SB_MUST_USE;

/*  Takes the next job by weighted deficit round robin, or NULL when
    empty. The job's queue fields are cleared. O(1) while the tenant whose
    turn it is can afford its next job; otherwise at most two passes over
    the tenants waiting (the second adds the turns nobody could use at
    once). */
sb_flight_t *sb_queue_pop (sb_queue_t *self) SB_MUST_USE;

/*  Takes `flight` (which is in this queue) out. */
void sb_queue_remove (sb_queue_t *self, sb_flight_t *flight);

/*  Jobs waiting in the whole service / tenants that have jobs waiting. */
size_t sb_queue_size (sb_queue_t *self);
size_t sb_queue_tenants (sb_queue_t *self);

/*  The service name (borrowed). */
const char *sb_queue_service (sb_queue_t *self);

#endif
