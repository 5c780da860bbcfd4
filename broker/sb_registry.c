/*  broker/sb_registry.c — workers by routing id and by service.
    See sb_registry.h. */
#include "sb_registry.h"

#include <string.h>

struct _sb_registry_t {
    zhashx_t *workers;          /* hex routing id → sb_worker_t *, owned */
    zhashx_t *services;         /* service → zlistx_t of sb_worker_t *, owned lists */
    size_t max_workers;         /* hard limit on registered workers */
};

static void
s_worker_destroy (void **item_p)
{
    sb_worker_t *worker = (sb_worker_t *) *item_p;
    if (!worker)
        return;
    zframe_destroy (&worker->identity);
    free (worker->key);
    free (worker);
    *item_p = NULL;
}

static void
s_list_destroy (void **item_p)
{
    zlistx_destroy ((zlistx_t **) item_p);
}

sb_registry_t *
sb_registry_new (size_t max_workers)
{
    sb_registry_t *self = (sb_registry_t *) calloc (1, sizeof (sb_registry_t));
    if (!self)
        return NULL;
    self->workers = zhashx_new ();
    self->services = zhashx_new ();
    if (!self->workers || !self->services) {
        sb_registry_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->workers, s_worker_destroy);
    zhashx_set_destructor (self->services, s_list_destroy);
    self->max_workers = max_workers < SB_MAX_WORKERS ? max_workers : SB_MAX_WORKERS;
    return self;
}

void
sb_registry_destroy (sb_registry_t **self_p)
{
    sb_registry_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->services);
    zhashx_destroy (&self->workers);
    free (self);
    *self_p = NULL;
}

sb_worker_t *
sb_registry_lookup (sb_registry_t *self, zframe_t *identity)
{
    char *key = zframe_strhex (identity);
    if (!key)
        return NULL;
    sb_worker_t *worker = (sb_worker_t *) zhashx_lookup (self->workers, key);
    free (key);
    return worker;
}

sb_worker_t *
sb_registry_add (sb_registry_t *self, zframe_t *identity, const char *service,
                 uint32_t credit, uint32_t heartbeat_ms, int64_t now)
{
    if (zhashx_size (self->workers) >= self->max_workers)
        return NULL;
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->services, service);
    if (!list) {
        list = zlistx_new ();
        if (!list)
            return NULL;
        zhashx_insert (self->services, service, list);
    }
    sb_worker_t *worker = (sb_worker_t *) calloc (1, sizeof (sb_worker_t));
    if (!worker)
        return NULL;
    worker->key = zframe_strhex (identity);
    worker->identity = zframe_dup (identity);
    worker->service_handle = zlistx_add_end (list, worker);
    if (!worker->key || !worker->identity || !worker->service_handle) {
        if (worker->service_handle)
            zlistx_delete (list, worker->service_handle);
        void *item = worker;
        s_worker_destroy (&item);
        return NULL;
    }
    snprintf (worker->service, sizeof (worker->service), "%s", service);
    worker->credit = credit;
    if (heartbeat_ms < SB_MIN_HEARTBEAT_MS)
        heartbeat_ms = SB_MIN_HEARTBEAT_MS;
    if (heartbeat_ms > SB_MAX_HEARTBEAT_MS)
        heartbeat_ms = SB_MAX_HEARTBEAT_MS;
    worker->heartbeat_ms = heartbeat_ms;
    worker->heartbeat_at = now + heartbeat_ms;
    sb_registry_touch (worker, now);
    zhashx_insert (self->workers, worker->key, worker);
    return worker;
}

void
sb_registry_remove (sb_registry_t *self, sb_worker_t **worker_p)
{
    sb_worker_t *worker = *worker_p;
    if (!worker)
        return;
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->services, worker->service);
    assert (list);
    zlistx_delete (list, worker->service_handle);
    if (zlistx_size (list) == 0)
        zhashx_delete (self->services, worker->service);
    zhashx_delete (self->workers, worker->key);    //  destructor frees it
    *worker_p = NULL;
}

void
sb_registry_touch (sb_worker_t *worker, int64_t now)
{
    worker->expires_at = now + (int64_t) worker->heartbeat_ms * SB_HEARTBEAT_LIVENESS;
}

sb_worker_t *
sb_registry_pick (sb_registry_t *self, const char *service)
{
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->services, service);
    if (!list)
        return NULL;
    //  The list is in least-recently-picked order, so the first of the
    //  least loaded is also the one that waited longest
    sb_worker_t *best = NULL;
    sb_worker_t *worker = (sb_worker_t *) zlistx_first (list);
    while (worker) {
        if (worker->running < worker->credit && !worker->unreachable
        && (!best || worker->running < best->running))
            best = worker;
        worker = (sb_worker_t *) zlistx_next (list);
    }
    if (best)
        zlistx_move_end (list, best->service_handle);
    return best;
}

sb_worker_t *
sb_registry_any (sb_registry_t *self, const char *service, const char *avoid)
{
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->services, service);
    if (!list)
        return NULL;
    sb_worker_t *fallback = NULL;
    sb_worker_t *chosen = NULL;
    for (sb_worker_t *worker = (sb_worker_t *) zlistx_first (list); worker && !chosen;
         worker = (sb_worker_t *) zlistx_next (list)) {
        if (worker->unreachable)
            continue;
        if (avoid && streq (worker->key, avoid))
            fallback = worker;
        else
            chosen = worker;
    }
    if (!chosen)
        chosen = fallback;
    if (chosen)
        zlistx_move_end (list, chosen->service_handle);
    return chosen;
}

void
sb_registry_collect (sb_registry_t *self, zlistx_t *out)
{
    sb_worker_t *worker = (sb_worker_t *) zhashx_first (self->workers);
    while (worker) {
        zlistx_add_end (out, worker);
        worker = (sb_worker_t *) zhashx_next (self->workers);
    }
}

size_t
sb_registry_size (sb_registry_t *self)
{
    return zhashx_size (self->workers);
}

size_t
sb_registry_service_size (sb_registry_t *self, const char *service)
{
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->services, service);
    return list ? zlistx_size (list) : 0;
}
