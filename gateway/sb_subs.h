/*  gateway/sb_subs.h — resources/subscribe on this gateway: which session
    follows which resource URIs, so that a reload of the connectors can send
    notifications/resources/updated to the sessions whose resources changed.

    Sessions are signed, not stored (sb_session.h), so this table is the
    only state a subscription has. Each gateway process has its own; the
    one that took the resources/subscribe tells the others (BROADCAST
    "subscribed", sb_cluster.h), so every table holds every session's
    subscriptions, best effort. A
    session is known here by its key (the hex of its signature) and carries
    its owner string (the Mcp-Session-Id, which names its SSE streams).

    Bounded: at most SB_MAX_SUBS_PER_SESSION URIs per session, at most
    SB_MAX_SUB_SESSIONS sessions and SB_MAX_SUBS_BYTES bytes of URIs and
    owners in all; a URI longer than SB_MAX_SUB_URI_LEN is refused. Going
    past a limit is refused with a sentence (sb_subs_strerror), never
    growth and never silent eviction: a client is told it was not
    subscribed. Sessions past their expiry are forgotten first when room is
    needed (sb_subs_purge). Pure data: no h2o, no sockets.

    The same table holds the listen streams of MCP 2026-07-28
    (subscriptions/listen), which has no sessions: each listen stream
    carries its own filter (which list_changed notifications, which
    resource URIs), the JSON-RPC id of its request (the subscriptionId)
    and its tenant, and lives exactly as long as its stream. Bounded too:
    at most SB_MAX_LISTEN_URIS URIs a stream, SB_MAX_LISTEN_PER_TENANT
    streams a tenant and SB_MAX_LISTEN_STREAMS in all, their bytes counted
    in SB_MAX_SUBS_BYTES with the sessions'. */
#ifndef SB_SUBS_H_INCLUDED
#define SB_SUBS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_MAX_SUBS_PER_SESSION 64              /* resource URIs one session follows */
#define SB_MAX_SUB_SESSIONS     4096            /* sessions with subscriptions, per gateway */
#define SB_MAX_SUB_URI_LEN      2048            /* one subscribed URI, bytes */
#define SB_MAX_SUB_KEY_LEN      128             /* a session key (or a listen stream's tenant), bytes */
#define SB_MAX_SUB_OWNER_LEN    512             /* a session's owner string, bytes */
#define SB_MAX_SUBS_BYTES       (16u << 20)     /* URIs, owners, tenants and ids held in all, bytes */
#define SB_MAX_LISTEN_URIS      64              /* resourceSubscriptions of one listen stream */
#define SB_MAX_LISTEN_PER_TENANT  256           /* open listen streams of one tenant, per gateway */
#define SB_MAX_LISTEN_STREAMS   4096            /* open listen streams, per gateway */
#define SB_MAX_LISTEN_ID_LEN    256             /* a listen request's id as JSON text, bytes */

/*  Outcomes of sb_subs_add. */
typedef enum {
    SB_SUBS_OK              =  0,   /* subscribed (or already was) */
    SB_SUBS_URI_TOO_LONG    = -1,   /* the URI is longer than SB_MAX_SUB_URI_LEN */
    SB_SUBS_SESSION_FULL    = -2,   /* the session already follows SB_MAX_SUBS_PER_SESSION */
    SB_SUBS_TABLE_FULL      = -3,   /* SB_MAX_SUB_SESSIONS or SB_MAX_SUBS_BYTES reached */
    SB_SUBS_INVALID         = -4,   /* empty or oversized key or owner */
    SB_SUBS_NO_MEMORY       = -5,   /* out of memory */
    SB_SUBS_TOO_MANY_URIS   = -6,   /* a listen stream asks for more than SB_MAX_LISTEN_URIS */
    SB_SUBS_TENANT_FULL     = -7,   /* the tenant has SB_MAX_LISTEN_PER_TENANT listen streams */
    SB_SUBS_LISTEN_FULL     = -8,   /* SB_MAX_LISTEN_STREAMS listen streams are open */
} sb_subs_rc_t;

typedef struct _sb_subs_t sb_subs_t;

/*  Creates an empty table. NULL when out of memory. */
sb_subs_t *sb_subs_new (void) SB_MUST_USE;

/*  Destroys the table and nulls the caller's pointer. Idempotent. */
void sb_subs_destroy (sb_subs_t **self_p);

/*  Subscribes session `key` (whose streams are named `owner`, both copied)
    to `uri`, the session expiring at `expires` (any clock, the one
    sb_subs_purge is given). Subscribing again to the same URI is SB_SUBS_OK
    and holds one entry. When the table is full, sessions expired at `now`
    are forgotten before refusing. Returns an sb_subs_rc_t. */
int sb_subs_add (sb_subs_t *self, const char *key, const char *owner, int64_t expires,
                 int64_t now, const char *uri) SB_MUST_USE;

/*  Unsubscribes session `key` from `uri`; a session left with none is
    forgotten. Returns 0, or -1 when it was not subscribed (not an error for
    resources/unsubscribe). */
int sb_subs_remove (sb_subs_t *self, const char *key, const char *uri);

/*  Forgets every subscription of session `key` (DELETE of the session). */
void sb_subs_drop (sb_subs_t *self, const char *key);

/*  Forgets the sessions whose expiry is before `now`. Returns how many. */
size_t sb_subs_purge (sb_subs_t *self, int64_t now);

/*  True when session `key` follows `uri`. */
bool sb_subs_has (sb_subs_t *self, const char *key, const char *uri);

/*  URIs session `key` follows; sessions with any; bytes held. */
size_t sb_subs_count (sb_subs_t *self, const char *key);
size_t sb_subs_sessions (sb_subs_t *self);
size_t sb_subs_bytes (sb_subs_t *self);

/*  Calls `fn` once per (session, URI), the owner and URI borrowed for the
    call. `fn` must not change the table. */
typedef void (sb_subs_fn) (const char *owner, const char *uri, void *arg);
void sb_subs_each (sb_subs_t *self, sb_subs_fn *fn, void *arg);

/*  A sentence for the client saying why sb_subs_add or sb_subs_listen_add
    refused (static). */
const char *sb_subs_strerror (int rc);

//  ---------------------------------------------------------------------------
//  Listen streams (MCP 2026-07-28 subscriptions/listen)

typedef struct _sb_subs_listener_t sb_subs_listener_t;

/*  Adds a listen stream of `tenant` whose request had the JSON-RPC id `id`
    (its compact JSON text, e.g. "7" or "\"a\""), following the lists of
    `lists` (SB_LIST_* bits of connector/sb_connector.h) and the `count` URIs
    of `uris` (all copied; a URI given twice is kept once). Its stream is
    set afterwards (sb_subs_listen_set_stream). On SB_SUBS_OK sets
    *listener_p to the new listener, owned by the table; otherwise leaves
    it NULL. Refuses past the limits above (SB_SUBS_TOO_MANY_URIS,
    SB_SUBS_URI_TOO_LONG, SB_SUBS_TENANT_FULL, SB_SUBS_LISTEN_FULL,
    SB_SUBS_TABLE_FULL for bytes), and SB_SUBS_INVALID for an empty or
    oversized tenant or id. Returns an sb_subs_rc_t. */
int sb_subs_listen_add (sb_subs_t *self, const char *tenant, const char *id, unsigned lists,
                        const char *const *uris, size_t count, sb_subs_listener_t **listener_p)
    SB_MUST_USE;

/*  Forgets the listener (its stream ended or went away) and nulls the
    caller's pointer. Idempotent. */
void sb_subs_listen_remove (sb_subs_listener_t **listener_p);

/*  Sets the stream the listener's notifications go to (the caller's
    handle, borrowed: the caller removes the listener before the handle
    dies). */
void sb_subs_listen_set_stream (sb_subs_listener_t *listener, void *stream);

/*  The listener's number: unique on this table, never reused, so a
    number kept across a call that may end streams can be looked up again
    (sb_subs_listen_lookup) instead of keeping a pointer that may dangle. */
uint64_t sb_subs_listen_number (const sb_subs_listener_t *listener);

/*  The listener numbered `number`, or NULL when it is gone. */
sb_subs_listener_t *sb_subs_listen_lookup (sb_subs_t *self, uint64_t number);

/*  What a listener holds (borrowed from it). */
void *sb_subs_listen_stream (const sb_subs_listener_t *listener);
const char *sb_subs_listen_id (const sb_subs_listener_t *listener);
const char *sb_subs_listen_tenant (const sb_subs_listener_t *listener);
unsigned sb_subs_listen_lists (const sb_subs_listener_t *listener);
size_t sb_subs_listen_uri_count (const sb_subs_listener_t *listener);
const char *sb_subs_listen_uri (const sb_subs_listener_t *listener, size_t index);

/*  Listen streams open for `tenant` (NULL: for everyone). */
size_t sb_subs_listeners (sb_subs_t *self, const char *tenant);

/*  Calls `fn` once per listener, oldest first. `fn` must not change the
    table: a caller whose actions may end streams collects the numbers
    first and looks each up again before acting (see sb_notify.c). */
typedef void (sb_subs_listen_fn) (sb_subs_listener_t *listener, void *arg);
void sb_subs_listen_each (sb_subs_t *self, sb_subs_listen_fn *fn, void *arg);

#endif
