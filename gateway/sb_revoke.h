/*  gateway/sb_revoke.h — the access tokens a gateway refuses before they
    expire: a bounded list of revocations, checked on every bearer token
    after it verified.

    The gateways check tokens without a database, so when the operator
    deletes a tenant, removes a user, resets a password, revokes a client
    or a tenant's (user's) tokens, the refresh tokens die in PostgreSQL at
    once but the access tokens already issued would live out their
    SB_OAUTH_ACCESS_TTL_S. The gateway that relayed the admin request adds
    a revocation here and tells the others (BROADCAST tokens_revoked,
    sb_cluster.h), which add the same.

    A revocation names one of three scopes, each with the time it was made
    (`revoked_at`, wall-clock seconds):
      - a tenant:            every token whose `ten` is it
      - a tenant's subject:  every token of that tenant whose `sub` is it
      - a client:            every token whose `client_id` is it, any tenant
    and refuses a matching token whose `iat` is not after `revoked_at`
    (iat <= revoked_at: a token issued in the same second as the
    revocation is refused, since it may have been issued just before it; a
    token issued a second later or more is accepted, so a user added again
    or signing in after a password reset works). A token without iat is
    refused by any revocation that matches it.

    An entry is kept SB_REVOKE_KEEP_S (the access-token lifetime plus the
    clock skew): after that every token it could match has expired. The
    list holds at most SB_MAX_REVOCATIONS entries. When it is full, expired
    entries are swept first; if none expired, the entry with the oldest
    `revoked_at` is dropped and its time raises a floor: every token issued
    at or before the floor is refused (whatever its tenant) until the floor
    itself is SB_REVOKE_KEEP_S old. Safe (nothing revoked comes back) at
    the price of sending some clients to refresh; the caller logs it.

    The check is three hash probes (tenant; tenant and subject; client)
    into SB_REVOKE_BUCKETS chains, nothing when the list is empty. Not
    thread-safe: one list per event loop. */
#ifndef SB_REVOKE_H_INCLUDED
#define SB_REVOKE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_oauth.h"
#include "sb_token.h"

#define SB_MAX_REVOCATIONS      4096    /* entries held at once; more: the oldest is dropped */
#define SB_REVOKE_BUCKETS       8192    /* hash chains (a power of two) */
#define SB_REVOKE_MAX_SUBJECT   128     /* bytes of a subject (a token's sub) */
#define SB_REVOKE_KEEP_S        (SB_OAUTH_ACCESS_TTL_S + SB_TOKEN_CLOCK_SKEW_S)
                                        /* seconds an entry lives after its revoked_at */

typedef struct _sb_revoke_t sb_revoke_t;

typedef enum {
    SB_REVOKE_ADDED     = 0,    /* a new entry */
    SB_REVOKE_KEPT      = 1,    /* the same scope was held: its time is now the later of both */
    SB_REVOKE_STALE     = 2,    /* revoked_at is SB_REVOKE_KEEP_S old: nothing it matches lives */
    SB_REVOKE_FULL      = 3,    /* added after dropping the oldest entry: the floor rose */
    SB_REVOKE_INVALID   = -1,   /* not one of the three scopes, a field too long, a bad time */
    SB_REVOKE_NOMEM     = -2,
} sb_revoke_rc_t;

/*  Why a token is refused: SB_REVOKE_NONE (0) when it is not. */
typedef enum {
    SB_REVOKE_NONE      = 0,
    SB_REVOKE_BY_TENANT,        /* its tenant's tokens were revoked (or the tenant deleted) */
    SB_REVOKE_BY_SUBJECT,       /* its user's tokens were revoked (removed, password reset) */
    SB_REVOKE_BY_CLIENT,        /* its client was revoked */
    SB_REVOKE_BY_FLOOR,         /* issued before the floor of a full list */
} sb_revoke_why_t;

/*  A new, empty list; NULL on no memory. */
sb_revoke_t *sb_revoke_new (void) SB_MUST_USE;

/*  Destroys the list. NULL-safe. */
void sb_revoke_destroy (sb_revoke_t **self_p);

/*  Adds a revocation at `revoked_at` (seconds) of the scope given by
    `tenant`, `subject` and `client_id` (NULL or "": not given): a tenant
    alone, a tenant and a subject, or a client alone; anything else is
    SB_REVOKE_INVALID, as is a tenant, subject or client_id longer than
    the claims hold, or revoked_at more than SB_TOKEN_CLOCK_SKEW_S after
    `now_s`. */
sb_revoke_rc_t sb_revoke_add (sb_revoke_t *self, const char *tenant, const char *subject,
                              const char *client_id, int64_t revoked_at, int64_t now_s)
    SB_MUST_USE;

/*  Whether the token of `claims` (verified) is revoked at `now_s`. */
sb_revoke_why_t sb_revoke_check (sb_revoke_t *self, const sb_token_claims_t *claims,
                                 int64_t now_s);

/*  A sentence for a refusal ("Its tenant's access tokens were revoked."). */
const char *sb_revoke_reason (sb_revoke_why_t why);

/*  Entries held now (expired ones not yet swept included), and the floor
    (0: none). */
size_t sb_revoke_size (const sb_revoke_t *self);
int64_t sb_revoke_floor (const sb_revoke_t *self);

#endif
