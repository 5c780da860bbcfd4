/*  gateway/sb_subs.h — resources/subscribe on this gateway: which session
    follows which resource URIs, so that a reload of the connectors can send
    notifications/resources/updated to the sessions whose resources changed.

    Sessions are signed, not stored (sb_session.h), so this table is the
    only state a subscription has, and it is local to the gateway process
    that took the resources/subscribe, like log levels and GET streams. A
    session is known here by its key (the hex of its signature) and carries
    its owner string (the Mcp-Session-Id, which names its SSE streams).

    Bounded: at most SB_MAX_SUBS_PER_SESSION URIs per session, at most
    SB_MAX_SUB_SESSIONS sessions and SB_MAX_SUBS_BYTES bytes of URIs and
    owners in all; a URI longer than SB_MAX_SUB_URI_LEN is refused. Going
    past a limit is refused with a sentence (sb_subs_strerror), never
    growth and never silent eviction: a client is told it was not
    subscribed. Sessions past their expiry are forgotten first when room is
    needed (sb_subs_purge). Pure data: no h2o, no sockets. */
#ifndef SB_SUBS_H_INCLUDED
#define SB_SUBS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_MAX_SUBS_PER_SESSION 64              /* resource URIs one session follows */
#define SB_MAX_SUB_SESSIONS     4096            /* sessions with subscriptions, per gateway */
#define SB_MAX_SUB_URI_LEN      2048            /* one subscribed URI, bytes */
#define SB_MAX_SUB_KEY_LEN      128             /* a session key, bytes */
#define SB_MAX_SUB_OWNER_LEN    512             /* a session's owner string, bytes */
#define SB_MAX_SUBS_BYTES       (16u << 20)     /* URIs and owners held in all, bytes */

/*  Outcomes of sb_subs_add. */
typedef enum {
    SB_SUBS_OK              =  0,   /* subscribed (or already was) */
    SB_SUBS_URI_TOO_LONG    = -1,   /* the URI is longer than SB_MAX_SUB_URI_LEN */
    SB_SUBS_SESSION_FULL    = -2,   /* the session already follows SB_MAX_SUBS_PER_SESSION */
    SB_SUBS_TABLE_FULL      = -3,   /* SB_MAX_SUB_SESSIONS or SB_MAX_SUBS_BYTES reached */
    SB_SUBS_INVALID         = -4,   /* empty or oversized key or owner */
    SB_SUBS_NO_MEMORY       = -5,   /* out of memory */
} sb_subs_rc_t;

typedef struct _sb_subs_t sb_subs_t;

/*  Creates an empty table. NULL when out of memory. */
sb_subs_t *sb_subs_new (void);

/*  Destroys the table and nulls the caller's pointer. Idempotent. */
void sb_subs_destroy (sb_subs_t **self_p);

/*  Subscribes session `key` (whose streams are named `owner`, both copied)
    to `uri`, the session expiring at `expires` (any clock, the one
    sb_subs_purge is given). Subscribing again to the same URI is SB_SUBS_OK
    and holds one entry. When the table is full, sessions expired at `now`
    are forgotten before refusing. Returns an sb_subs_rc_t. */
int sb_subs_add (sb_subs_t *self, const char *key, const char *owner, int64_t expires,
                 int64_t now, const char *uri) __attribute__ ((warn_unused_result));

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

/*  A sentence for the client saying why sb_subs_add refused (static). */
const char *sb_subs_strerror (int rc);

#endif
