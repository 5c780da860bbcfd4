/*  broker/sb_queue.c — per-tenant FIFOs of one service, served by weighted
    deficit round robin. See sb_queue.h.

    `ring` lists the tenants that have jobs waiting; the tenant at its head
    is the one whose turn it is (`in_turn` once its turn's quantum was
    added). Pop serves it while its next job fits in its deficit, else
    moves it to the tail and goes on with the next. A tenant whose FIFO
    empties is freed, so memory follows the jobs waiting, not the tenants
    ever seen. */
#include "sb_queue.h"

#include <czmq.h>
#include <string.h>

typedef struct _sb_tenant_queue_t {
    char tenant [SB_MAX_TENANT_LEN + 1];    /* tenant ID, key in `tenants` */
    zlistx_t *jobs;                         /* sb_flight_t *, borrowed, oldest first */
    void *ring_handle;                      /* node in the service's ring */
    uint64_t deficit;                       /* cost units it may still send (DRR) */
    uint32_t weight;                        /* 1..SB_DRR_MAX_WEIGHT, from its last push */
    bool in_turn;                           /* at the ring's head with this turn's quantum added */
} sb_tenant_queue_t;

struct _sb_queue_t {
    char service [SB_MAX_SERVICE_LEN + 1];  /* service name */
    zhashx_t *tenants;                      /* tenant → sb_tenant_queue_t *, owned */
    zlistx_t *ring;                         /* sb_tenant_queue_t *, borrowed, next to serve first */
    size_t size;                            /* jobs waiting across tenants */
    size_t max_tenant;                      /* limit per tenant FIFO */
    size_t max_service;                     /* limit on `size` */
};

static void
s_tenant_destroy (void **item_p)
{
    sb_tenant_queue_t *tq = (sb_tenant_queue_t *) *item_p;
    if (!tq)
        return;
    zlistx_destroy (&tq->jobs);
    free (tq);
    *item_p = NULL;
}

sb_queue_t *
sb_queue_new (const char *service, size_t max_tenant, size_t max_service)
{
    sb_queue_t *self = (sb_queue_t *) calloc (1, sizeof (sb_queue_t));
    if (!self)
        return NULL;
    snprintf (self->service, sizeof (self->service), "%s", service);
    self->tenants = zhashx_new ();
    self->ring = zlistx_new ();
    if (!self->tenants || !self->ring) {
        sb_queue_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->tenants, s_tenant_destroy);
    self->max_tenant = max_tenant < SB_MAX_TENANT_QUEUE ? max_tenant : SB_MAX_TENANT_QUEUE;
    self->max_service = max_service < SB_MAX_SERVICE_QUEUE ? max_service : SB_MAX_SERVICE_QUEUE;
    return self;
}

void
sb_queue_destroy (sb_queue_t **self_p)
{
    sb_queue_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->ring);
    zhashx_destroy (&self->tenants);
    free (self);
    *self_p = NULL;
}

//  A job's cost in the fair queue: its quota cost, at least 1.
static uint64_t
s_cost (const sb_flight_t *flight)
{
    return flight->cost > 0 ? flight->cost : 1;
}

//  Cost units one turn gives the tenant.
static uint64_t
s_quantum (const sb_tenant_queue_t *tq)
{
    return (uint64_t) SB_DRR_QUANTUM * tq->weight;
}

//  The tenant's FIFO, created (at the ring's tail) when absent; NULL on
//  allocation failure. Its weight becomes `weight`, clamped.
static sb_tenant_queue_t *
s_tenant_require (sb_queue_t *self, const char *tenant, uint32_t weight)
{
    if (weight < 1)
        weight = 1;
    if (weight > SB_DRR_MAX_WEIGHT)
        weight = SB_DRR_MAX_WEIGHT;
    sb_tenant_queue_t *tq = (sb_tenant_queue_t *) zhashx_lookup (self->tenants, tenant);
    if (tq) {
        tq->weight = weight;
        return tq;
    }
    tq = (sb_tenant_queue_t *) calloc (1, sizeof (sb_tenant_queue_t));
    if (!tq)
        return NULL;
    snprintf (tq->tenant, sizeof (tq->tenant), "%s", tenant);
    tq->weight = weight;
    tq->jobs = zlistx_new ();
    if (tq->jobs)
        tq->ring_handle = zlistx_add_end (self->ring, tq);
    if (!tq->jobs || !tq->ring_handle) {
        zlistx_destroy (&tq->jobs);
        free (tq);
        return NULL;
    }
    zhashx_insert (self->tenants, tq->tenant, tq);
    return tq;
}

//  Frees a tenant FIFO that has become empty.
static void
s_tenant_release_if_empty (sb_queue_t *self, sb_tenant_queue_t *tq)
{
    if (zlistx_size (tq->jobs) > 0)
        return;
    zlistx_delete (self->ring, tq->ring_handle);
    zhashx_delete (self->tenants, tq->tenant);     //  destructor frees tq
}

static int
s_push (sb_queue_t *self, sb_flight_t *flight, uint32_t weight, bool front)
{
    sb_tenant_queue_t *tq = s_tenant_require (self, flight->tenant, weight);
    if (!tq)
        return SB_QUEUE_NO_MEMORY;
    void *handle = front ? zlistx_add_start (tq->jobs, flight)
                         : zlistx_add_end (tq->jobs, flight);
    if (!handle) {
        s_tenant_release_if_empty (self, tq);
        return SB_QUEUE_NO_MEMORY;
    }
    flight->tqueue = tq;
    flight->queue_handle = handle;
    self->size++;
    return SB_QUEUE_OK;
}

int
sb_queue_room (sb_queue_t *self, const char *tenant)
{
    if (self->size >= self->max_service)
        return SB_QUEUE_SERVICE_FULL;
    sb_tenant_queue_t *tq = (sb_tenant_queue_t *) zhashx_lookup (self->tenants, tenant);
    if (tq && zlistx_size (tq->jobs) >= self->max_tenant)
        return SB_QUEUE_TENANT_FULL;
    return SB_QUEUE_OK;
}

int
sb_queue_push (sb_queue_t *self, sb_flight_t *flight, uint32_t weight)
{
    assert (flight->tqueue == NULL);
    int rc = sb_queue_room (self, flight->tenant);
    if (rc)
        return rc;
    return s_push (self, flight, weight, false);
}

int
sb_queue_push_front (sb_queue_t *self, sb_flight_t *flight, uint32_t weight)
{
    assert (flight->tqueue == NULL);
    return s_push (self, flight, weight, true);
}

void
sb_queue_remove (sb_queue_t *self, sb_flight_t *flight)
{
    sb_tenant_queue_t *tq = flight->tqueue;
    assert (tq);
    zlistx_delete (tq->jobs, flight->queue_handle);
    flight->tqueue = NULL;
    flight->queue_handle = NULL;
    self->size--;
    s_tenant_release_if_empty (self, tq);
}

//  Serves the tenant at the ring's head if its next job fits in its
//  deficit (starting its turn first); else ends its turn (it moves to the
//  tail). Returns the job taken, or NULL.
static sb_flight_t *
s_turn (sb_queue_t *self, sb_tenant_queue_t *tq)
{
    if (!tq->in_turn) {
        tq->deficit += s_quantum (tq);
        tq->in_turn = true;
    }
    sb_flight_t *flight = (sb_flight_t *) zlistx_first (tq->jobs);
    assert (flight);
    uint64_t cost = s_cost (flight);
    if (cost <= tq->deficit) {
        tq->deficit -= cost;
        sb_queue_remove (self, flight);     //  frees tq when it was its last job
        return flight;
    }
    tq->in_turn = false;
    zlistx_move_end (self->ring, tq->ring_handle);
    return NULL;
}

sb_flight_t *
sb_queue_pop (sb_queue_t *self)
{
    size_t tenants = zlistx_size (self->ring);
    if (tenants == 0)
        return NULL;
    //  One turn each, in ring order, until a tenant can send
    for (size_t turn = 0; turn < tenants; turn++) {
        sb_flight_t *flight = s_turn (self, (sb_tenant_queue_t *) zlistx_first (self->ring));
        if (flight)
            return flight;
    }
    //  Nobody could afford its next job (costs above the quanta): the
    //  fewest whole rounds after which someone can. Give every tenant all
    //  but the last of those rounds at once, then the last round in order
    //  picks the same tenant that many single rounds would have.
    uint64_t rounds = UINT64_MAX;
    for (sb_tenant_queue_t *tq = (sb_tenant_queue_t *) zlistx_first (self->ring); tq;
         tq = (sb_tenant_queue_t *) zlistx_next (self->ring)) {
        uint64_t need = s_cost ((sb_flight_t *) zlistx_first (tq->jobs)) - tq->deficit;
        uint64_t quantum = s_quantum (tq);
        uint64_t tenant_rounds = (need + quantum - 1) / quantum;
        if (tenant_rounds < rounds)
            rounds = tenant_rounds;
    }
    assert (rounds >= 1 && rounds != UINT64_MAX);
    for (sb_tenant_queue_t *tq = (sb_tenant_queue_t *) zlistx_first (self->ring); tq;
         tq = (sb_tenant_queue_t *) zlistx_next (self->ring))
        tq->deficit += (rounds - 1) * s_quantum (tq);
    for (size_t turn = 0; turn < tenants; turn++) {
        sb_flight_t *flight = s_turn (self, (sb_tenant_queue_t *) zlistx_first (self->ring));
        if (flight)
            return flight;
    }
    assert (false);             //  the round computed above lets one tenant send
    return NULL;
}

size_t
sb_queue_size (sb_queue_t *self)
{
    return self->size;
}

size_t
sb_queue_tenants (sb_queue_t *self)
{
    return zlistx_size (self->ring);
}

const char *
sb_queue_service (sb_queue_t *self)
{
    return self->service;
}
