/*  broker/sb_registry.h — the workers the broker knows, per service.

    A worker registers with READY (service, credit, heartbeat interval).
    It stays alive as long as the broker hears from it: every message it
    sends pushes its expiry to SB_HEARTBEAT_LIVENESS intervals ahead. The
    broker heartbeats each worker at the worker's own interval, so the
    worker notices a dead broker the same way.

    Credit is how many jobs a worker may hold at once; the registry picks,
    for a service, the least loaded worker with free credit, rotating among
    equals so the load spreads.
*/
#ifndef SB_REGISTRY_H_INCLUDED
#define SB_REGISTRY_H_INCLUDED

#include <czmq.h>
#include <stdint.h>
#include "sb_attr.h"
#include "sb_msg.h"

#define SB_MAX_WORKERS          4096    /* most workers registered at once */
/* SB_HEARTBEAT_LIVENESS, SB_MIN/MAX_HEARTBEAT_MS: proto/sb_limits.h */

/*  One registered worker. A record shared with the broker state machine,
    so its fields are public; only the registry creates and frees it. */
typedef struct _sb_worker_t {
    char *key;                              /* routing id as hex, key in the registry */
    zframe_t *identity;                     /* routing id on the backend socket, owned */
    char service [SB_MAX_SERVICE_LEN + 1];  /* the service it serves */
    uint32_t credit;                        /* most jobs it holds at once */
    uint32_t running;                       /* jobs it holds now (tombstones included) */
    uint32_t requests;                      /* its own REQUESTs in flight (≤ SB_MAX_WORKER_REQUESTS) */
    uint32_t heartbeat_ms;                  /* its heartbeat interval */
    int64_t expires_at;                     /* monotonic ms: expired when reached */
    int64_t heartbeat_at;                   /* monotonic ms: next broker heartbeat due */
    bool unreachable;                       /* a send failed: never picked, expired next tick */
    void *service_handle;                   /* node in its service's worker list */
} sb_worker_t;

typedef struct _sb_registry_t sb_registry_t;

/*  Creates an empty registry for at most `max_workers` (≤ SB_MAX_WORKERS). */
sb_registry_t *sb_registry_new (size_t max_workers) SB_MUST_USE;

/*  Frees every worker and the registry; nulls the caller's pointer. Idempotent. */
void sb_registry_destroy (sb_registry_t **self_p);

/*  The worker with this routing id, or NULL. */
sb_worker_t *sb_registry_lookup (sb_registry_t *self, zframe_t *identity);

/*  Registers a worker (the routing id is copied). `heartbeat_ms` is
    clamped to [SB_MIN_HEARTBEAT_MS, SB_MAX_HEARTBEAT_MS]. The caller has
    checked that it is not registered yet. Returns the worker, or NULL when
    the registry is full. */
sb_worker_t *sb_registry_add (sb_registry_t *self, zframe_t *identity,
                              const char *service, uint32_t credit,
                              uint32_t heartbeat_ms, int64_t now) SB_MUST_USE;

/*  Unregisters and frees the worker; nulls the caller's pointer. */
void sb_registry_remove (sb_registry_t *self, sb_worker_t **worker_p);

/*  Notes that the worker was heard from at `now`. */
void sb_registry_touch (sb_worker_t *worker, int64_t now);

/*  For `service`, the reachable worker with free credit that holds the
    fewest jobs (rotating among equals), or NULL when every worker is full
    or none serves it. */
sb_worker_t *sb_registry_pick (sb_registry_t *self, const char *service);

/*  For `service`, a reachable worker whatever its credit (for messages
    that are not jobs: USAGE), preferring one whose key is not `avoid`
    (NULL: no preference), rotating. NULL when none is reachable. */
sb_worker_t *sb_registry_any (sb_registry_t *self, const char *service, const char *avoid);

/*  Appends to `out` (a zlistx without destructor) every worker, so the
    caller may remove some while walking the list. */
void sb_registry_collect (sb_registry_t *self, zlistx_t *out);

/*  Workers registered, in all / for one service. */
size_t sb_registry_size (sb_registry_t *self);
size_t sb_registry_service_size (sb_registry_t *self, const char *service);

#endif
