/*  broker/sb_queue.c — per-tenant FIFOs of one service, served round-robin.
    See sb_queue.h.

    `ring` lists the tenants that have jobs waiting; pop takes from the
    tenant at its head, then moves that tenant to the tail. A tenant whose
    FIFO empties is freed, so memory follows the jobs waiting, not the
    tenants ever seen. */
#include "sb_queue.h"

#include <czmq.h>
#include <string.h>

typedef struct _sb_tenant_queue_t {
    char tenant [SB_MAX_TENANT_LEN + 1];    /* tenant ID, key in `tenants` */
    zlistx_t *jobs;                         /* sb_flight_t *, borrowed, oldest first */
    void *ring_handle;                      /* node in the service's ring */
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

//  The tenant's FIFO, created (at the ring's tail) when absent; NULL on
//  allocation failure.
static sb_tenant_queue_t *
s_tenant_require (sb_queue_t *self, const char *tenant)
{
    sb_tenant_queue_t *tq = (sb_tenant_queue_t *) zhashx_lookup (self->tenants, tenant);
    if (tq)
        return tq;
    tq = (sb_tenant_queue_t *) calloc (1, sizeof (sb_tenant_queue_t));
    if (!tq)
        return NULL;
    snprintf (tq->tenant, sizeof (tq->tenant), "%s", tenant);
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
s_push (sb_queue_t *self, sb_flight_t *flight, bool front)
{
    sb_tenant_queue_t *tq = s_tenant_require (self, flight->tenant);
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
sb_queue_push (sb_queue_t *self, sb_flight_t *flight)
{
    assert (flight->tqueue == NULL);
    if (self->size >= self->max_service)
        return SB_QUEUE_SERVICE_FULL;
    sb_tenant_queue_t *tq = (sb_tenant_queue_t *) zhashx_lookup (self->tenants, flight->tenant);
    if (tq && zlistx_size (tq->jobs) >= self->max_tenant)
        return SB_QUEUE_TENANT_FULL;
    return s_push (self, flight, false);
}

int
sb_queue_push_front (sb_queue_t *self, sb_flight_t *flight)
{
    assert (flight->tqueue == NULL);
    return s_push (self, flight, true);
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

sb_flight_t *
sb_queue_pop (sb_queue_t *self)
{
    sb_tenant_queue_t *tq = (sb_tenant_queue_t *) zlistx_first (self->ring);
    if (!tq)
        return NULL;
    sb_flight_t *flight = (sb_flight_t *) zlistx_first (tq->jobs);
    assert (flight);
    //  Serve this tenant's next job after every other tenant had a turn
    zlistx_move_end (self->ring, tq->ring_handle);
    sb_queue_remove (self, flight);
    return flight;
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
