/*  jwt/sb_token.h — the gateway's signed access tokens (JWT, HS256 or
    EdDSA).

    The gateway validates a bearer token without any database: the token is
    a JWT signed with HMAC-SHA256 under the gateway's token key (HS256), or
    with Ed25519 (EdDSA, RFC 8037) under a private key only the signing
    service holds, whose public key the gateway finds by the header's `kid`
    in its key set (sb_jwks.h). Claims:
      iss  "switchboard"        aud  the MCP resource URL (audience)
      sub  the user             ten  tenant ID      client_id  the OAuth client
                                (RFC 9068; "cid", its old name, is read too)
      jti  a unique ID (OAuth-issued tokens)
      scope  space-separated    iat / nbf / exp  seconds since the epoch
    `iss`, `ten`, `sub` and `exp` are required. A token is refused before
    `nbf`, with an `iat` in the future, and after `exp` (each within
    SB_TOKEN_CLOCK_SKEW_S). Each part must be canonical base64url: "="
    padding or non-zero trailing bits are malformed.
    The tenant of every job comes from `ten`, never from the request body.
    Algorithms other than HS256 and EdDSA (including "none") are refused. */
#ifndef SB_TOKEN_H_INCLUDED
#define SB_TOKEN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_crypto.h"
#include "sb_msg.h"

typedef struct _sb_jwks_t sb_jwks_t;

#define SB_MAX_TOKEN_LEN        4096    /* longest bearer token accepted, bytes */
#define SB_MIN_TOKEN_KEY_LEN    32      /* shortest signing key, bytes */
#define SB_TOKEN_CLOCK_SKEW_S   30      /* clock skew tolerated on exp, nbf and iat, seconds */

#define SB_TOKEN_MAX_ISSUER     512     /* bytes of an iss */
#define SB_TOKEN_MAX_CLIENT_ID  512     /* bytes of a client_id: a metadata document's URL fits */
#define SB_TOKEN_MAX_JWT_ID     64      /* bytes of a jti */

typedef struct {
    char issuer [SB_TOKEN_MAX_ISSUER + 1];  /* iss; "" when issuing: SB_TOKEN_ISSUER */
    char tenant [SB_MAX_TENANT_LEN + 1];    /* ten */
    char subject [129];                     /* sub */
    char client_id [SB_TOKEN_MAX_CLIENT_ID + 1];    /* client_id */
    char jwt_id [SB_TOKEN_MAX_JWT_ID + 1];  /* jti; "" when issuing: none */
    char scope [513];                       /* scope */
    char audience [513];                    /* aud */
    int64_t issued_at;                      /* iat, seconds */
    int64_t expires_at;                     /* exp, seconds */
} sb_token_claims_t;

typedef enum {
    SB_TOKEN_OK         = 0,
    SB_TOKEN_MALFORMED  = -1,   /* not a well-formed HS256 JWT with our claims */
    SB_TOKEN_BAD_SIG    = -2,   /* signature does not verify */
    SB_TOKEN_EXPIRED    = -3,   /* exp is in the past (beyond the skew) */
    SB_TOKEN_AUDIENCE   = -4,   /* aud does not match the expected audience */
    SB_TOKEN_NOT_YET_VALID = -5,    /* nbf or iat is in the future (beyond the skew) */
} sb_token_rc_t;

/*  Issues a token for `claims` signed with `key`. Returns a new string
    (caller frees) or NULL if the key is too short or a claim is invalid
    (no subject, a bad tenant, exp not after iat). */
char *sb_token_issue (const sb_token_claims_t *claims, const uint8_t *key, size_t key_len)
    SB_MUST_USE;

/*  Issues a token for `claims` signed with EdDSA under Ed25519 private seed
    `seed`, its header naming `kid` (sb_jwks_kid_valid). New string, or NULL
    on a bad kid or claim. */
char *sb_token_issue_eddsa (const sb_token_claims_t *claims, const uint8_t seed [SB_ED25519_KEY_LEN],
                            const char *kid) SB_MUST_USE;

/*  Verifies an HS256 `token` with `key` at time `now_s`. `audience` may be
    NULL to skip the audience check. Fills `claims` on SB_TOKEN_OK, and on
    SB_TOKEN_AUDIENCE (every other check passed: the claims are the
    signer's, for another resource). */
sb_token_rc_t sb_token_verify (const char *token, const uint8_t *key, size_t key_len,
                               const char *audience, int64_t now_s,
                               sb_token_claims_t *claims)
    SB_MUST_USE;

/*  Verifies `token` at time `now_s`: HS256 under `key` (NULL: HS256 is
    refused), EdDSA under the key of its `kid` in `jwks` (NULL: EdDSA is
    refused; a kid the set does not hold is SB_TOKEN_BAD_SIG). The rest as
    sb_token_verify. */
sb_token_rc_t sb_token_verify_keys (const char *token, const uint8_t *key, size_t key_len,
                                    const sb_jwks_t *jwks, const char *audience, int64_t now_s,
                                    sb_token_claims_t *claims)
    SB_MUST_USE;

/*  A cache of verified tokens, so that a client sending the same token on
    every request has its signature checked and its claims decoded once.
    It is keyed on the whole token text, compared in constant time: a hit
    is a token this cache already verified with its own key and audience,
    so it proves nothing new and skips nothing that could differ. Expiry is
    checked again on every hit against the caller's clock. Direct-mapped,
    SB_TOKEN_CACHE_SLOTS entries chosen by a hash seeded at random: a new
    token takes its slot from whichever token held it. Only tokens that
    verified are kept; refusals are never cached. Not thread-safe: one
    cache per event loop. */
#define SB_TOKEN_CACHE_SLOTS    1024

typedef struct _sb_token_cache_t sb_token_cache_t;

/*  A new, empty cache verifying with `key` (copied) and `audience` (copied;
    NULL to skip the audience check). NULL on a short key or no memory. */
sb_token_cache_t *sb_token_cache_new (const uint8_t *key, size_t key_len, const char *audience)
    SB_MUST_USE;

/*  Destroys the cache, wiping the keys and tokens it held. NULL-safe. */
void sb_token_cache_destroy (sb_token_cache_t **self_p);

/*  sb_token_verify (token, key, key_len, audience, now_s, claims) with the
    cache's key and audience, answered from the cache when `token` (NUL-
    terminated) verified before and has not expired. */
sb_token_rc_t sb_token_cache_verify (sb_token_cache_t *self, const char *token, int64_t now_s,
                                     sb_token_claims_t *claims)
    SB_MUST_USE;

/*  Accepts `issuer` (copied; NULL: none) as a token's `iss` besides
    SB_TOKEN_ISSUER: the authorization server's URL, which OAuth-issued
    tokens carry. Forgets every token verified so far. Returns 0 or -1
    (no memory; the old issuer stays). */
int sb_token_cache_set_issuer (sb_token_cache_t *self, const char *issuer) SB_MUST_USE;

/*  Lets the cache verify EdDSA tokens with `jwks` (borrowed: it must
    outlive the cache or be replaced first; NULL: HS256 only). Forgets every
    token verified so far, so that a key taken out of the set stops working
    at once. */
void sb_token_cache_set_jwks (sb_token_cache_t *self, const sb_jwks_t *jwks);

/*  Forgets `token` (NUL-terminated) if the cache holds it, so that the
    next sb_token_cache_verify checks it in full: a token the gateway
    refused after it verified (revoked, sb_revoke.h) is not kept. */
void sb_token_cache_forget (sb_token_cache_t *self, const char *token);

/*  Counters for tests and stats: verifications answered from the cache,
    and those that had to verify the token. */
void sb_token_cache_counts (const sb_token_cache_t *self, uint64_t *hits, uint64_t *misses);

/*  Human-readable reason for an rc ("expired", "bad signature"…). */
const char *sb_token_strerror (sb_token_rc_t rc);

#endif
