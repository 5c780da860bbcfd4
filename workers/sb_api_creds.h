/*  workers/sb_api_creds.h — the api role's tenant credentials: what it
    asks the token service for (op "connection/credential",
    proto/PROTOCOL.md "Connections") before it calls a connector whose
    auth.credential is `tenant`, and keeps in memory.

    A cache per worker, keyed by (tenant, connector), holds a `connected`
    answer (secret, kind, version, vars) until SB_API_CREDS_MARGIN_S
    before its expires_in ends, or SB_API_CREDS_NO_EXPIRY_MS when the
    answer gives none (so a revoked or remade connection is seen again
    soon). At most SB_API_CREDS_MAX entries, a clock (second chance)
    evicts the oldest unused one. A secret is wiped (sb_crypto_wipe) when
    its entry goes, and never logged.

    Single flight: every call waiting for the same key shares one worker
    request; the answer goes to each of them — but a `missing` or `broken`
    answer, whose connect link is signed for the user who asked, only to
    the waits of that user: the others get SB_CRED_ASK_AGAIN and ask with
    their own subject. An answer other than `connected` is not kept. */
#ifndef SB_API_CREDS_H_INCLUDED
#define SB_API_CREDS_H_INCLUDED

#include "sb_attr.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sb_worker.h"

#define SB_API_CREDS_MAX            4096    /* (tenant, connector) credentials kept */
#define SB_API_CREDS_MARGIN_S       60      /* dropped this long before the token expires */
#define SB_API_CREDS_NO_EXPIRY_MS   300000  /* kept this long when no expiry is known */
#define SB_API_CREDS_TIMEOUT_MS     10000   /* a credential request waits at most this */
#define SB_API_CREDS_RESERVE_MS     2000    /* of the job's time left, kept for the call (half when less) */
#define SB_API_CREDS_MIN_LEFT_MS    50      /* no request with less of the job's time left */

typedef struct _sb_api_creds_t sb_api_creds_t;
typedef struct _sb_api_creds_wait_t sb_api_creds_wait_t;

/*  What the token service said. Every pointer is borrowed for the call
    it is passed to (a callback copies what it keeps). */
typedef enum {
    SB_CRED_CONNECTED = 0,      /* secret, kind, version, vars */
    SB_CRED_MISSING,            /* no connection: detail, connect_url (NULL for API keys) */
    SB_CRED_BROKEN,             /* one that cannot be used: detail, connect_url */
    SB_CRED_FAILED,             /* RESULT failed: detail (a sentence), retry_after_s */
    SB_CRED_UNAVAILABLE,        /* no answer in time, no token service, a bad answer */
    SB_CRED_ASK_AGAIN,          /* missing or broken, answered to another user: fetch again */
} sb_cred_state_t;

typedef struct {
    sb_cred_state_t state;
    const char *secret;         /* CONNECTED: the access token or API key */
    bool api_key;               /* CONNECTED: kind api_key (else oauth2) */
    uint64_t version;           /* CONNECTED: the connection's credential version, >= 1 */
    const json_t *vars;         /* CONNECTED: the provider's kept fields, an object or NULL */
    const char *detail;         /* MISSING, BROKEN, FAILED: a sentence, or NULL */
    const char *connect_url;    /* MISSING, BROKEN: where to connect, or NULL */
    uint32_t retry_after_s;     /* FAILED: when to try again, 0: no advice */
} sb_cred_t;

/*  Called once with the answer for a wait (sb_api_creds_fetch), from the
    loop; the wait is gone by then (forget its handle). */
typedef void (sb_api_creds_fn) (const sb_cred_t *cred, void *arg);

/*  A cache for `worker` (borrowed). NULL when out of memory. */
sb_api_creds_t *sb_api_creds_new (sb_worker_t *worker) SB_MUST_USE;

/*  Forgets every request in flight (their waits are not called), wipes
    and frees every secret, nulls the caller's pointer. */
void sb_api_creds_destroy (sb_api_creds_t **self_p);

/*  The cached credential for (`tenant`, `connector`) still valid now:
    returns true with *cred filled (borrowed until the next call into
    this module), false on a miss (an expired entry is dropped). */
bool sb_api_creds_lookup (sb_api_creds_t *self, const char *tenant, const char *connector,
                          sb_cred_t *cred);

/*  Asks the token service for the credential of `job`'s tenant for
    `connector`, on behalf of `job` (its subject; a timeout of its time
    left less SB_API_CREDS_RESERVE_MS, at most SB_API_CREDS_TIMEOUT_MS);
    `stale` > 0: the version an upstream refused (the service renews it
    unless it has a newer one). Joins a request already in flight for the
    same key (one asked with a `stale` at least as high). `fn` is called later, exactly once, unless the wait
    is cancelled. Returns the wait, or NULL (nothing will be called)
    when the request could not be sent: then *why says why. */
sb_api_creds_wait_t *sb_api_creds_fetch (sb_api_creds_t *self, sb_worker_job_t *job,
                                         const char *connector, uint64_t stale,
                                         sb_api_creds_fn *fn, void *arg, const char **why)
    SB_MUST_USE;

/*  Drops a wait (its callback will not be called); the request goes on
    for the others and still fills the cache. NULL is ignored. */
void sb_api_creds_cancel (sb_api_creds_t *self, sb_api_creds_wait_t **wait_p);

/*  Drops the cached credential for the key if its version is `version`
    or older (an upstream refused it). */
void sb_api_creds_evict (sb_api_creds_t *self, const char *tenant, const char *connector,
                         uint64_t version);

/*  Counters for logs and tests: entries cached, requests sent so far. */
size_t sb_api_creds_size (sb_api_creds_t *self);
uint64_t sb_api_creds_requests (sb_api_creds_t *self);

#endif
