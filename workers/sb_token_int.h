/*  workers/sb_token_int.h — what the token role's modules share: the
    role's state, and the answers every HTTP job ends with. The role
    (sb_token_role.c) dispatches a job by its op to a module:

      oauth/authorize   sb_oauth_authorize.c   the sign-in and consent page
      oauth/token       sb_oauth_token.c       codes and refresh tokens for access tokens
      oauth/revoke      sb_oauth_token.c       RFC 7009 revocation
      oauth/jwks        sb_oauth_keys.c        the public key set, for gateways
      oauth/register    sb_oauth_register.c    RFC 7591 registration
      (lookups)         sb_oauth_clients.c     a client by ID; https IDs via sb_cimd.c
      (pages)           sb_page.c              what the HTML pages share: buffer, headers, CSRF
      admin/http        sb_admin.c             the admin API
      audit/record      sb_audit.c             a refusal a gateway decided, to the audit log
      (no op)           sb_quota_sync.c        the quota service: USAGE stored, LIMITS sent

    Each HTTP op's data is an sb_http_request_t (payload/sb_http_payload.h)
    and its result an sb_http_response_t: the gateway relays both. Every
    step with state runs on the role's sb_db_loop; CPU-heavy steps
    (Argon2id) run on its sb_offload pool. */
#ifndef SB_TOKEN_INT_H_INCLUDED
#define SB_TOKEN_INT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_crypto.h"
#include "sb_cimd.h"
#include "sb_db_loop.h"
#include "sb_http_payload.h"
#include "sb_jwks.h"
#include "sb_oauth.h"
#include "sb_offload.h"
#include "sb_token_role.h"
#include "sb_worker.h"

#define SB_TOKEN_SUBKEY_LEN     32      /* bytes of a key derived from --secret-key-file */
#define SB_TOKEN_MAX_ROW_KEY    32      /* bytes of a key a table row holds sealed (a seed, a data key) */
#define SB_MAX_TOKEN_DB_JOBS    512     /* jobs waiting for the database at once; more: unavailable */
#define SB_TOKEN_GUARD_MS       20      /* a job's query is given up this long before its deadline */
#define SB_OAUTH_CODE_TTL_S     120     /* seconds an authorization code stays redeemable */

//  A sign-in of sb_oauth_authorize.c waiting on the hashing threads.
typedef struct _sb_oauth_signin_t sb_oauth_signin_t;

#define SB_OAUTH_REFRESH_TTL_S  (30 * 24 * 3600)    /* a refresh token's, from its issue (SB_OAUTH_ACCESS_TTL_S: sb_oauth.h) */
#define SB_OAUTH_KEY_CHECK_MS   2000    /* the current signing key is re-read after this long */
#define SB_OAUTH_KID_BYTES      12      /* random bytes of a kid (16 base64url characters) */

//  The current signing key as this worker last read it (sb_oauth_keys.c).
typedef struct {
    char kid [SB_MAX_KID_LEN + 1];      /* "" until read */
    uint8_t seed [SB_ED25519_KEY_LEN];  /* the Ed25519 private seed, opened */
    int64_t read_ms;                    /* sb_clock_mono_ms of the last read */
} sb_oauth_signing_key_t;

typedef struct _sb_register_limit_t sb_register_limit_t;

struct _sb_token_role_t {
    sb_worker_t *worker;            /* our worker (borrowed) */
    sb_db_loop_t *db_loop;          /* asynchronous connection on the worker's reactor */
    sb_offload_t *offload;          /* threads for password hashing */
    char issuer [SB_OAUTH_MAX_URI + 1];     /* --issuer: the authorization server's URL */
    char resource [SB_OAUTH_MAX_URI + 1];   /* issuer + "/mcp": the one resource served */
    uint8_t secret [64];            /* --secret-key-file's bytes (SB_MIN_TOKEN_SECRET_LEN..64) */
    size_t secret_len;              /* 0: no secret configured */
    sb_oauth_signin_t *signins;     /* sign-ins on the hashing threads (sb_oauth_authorize.c) */

    sb_oauth_signing_key_t signing_key;     /* the current signing key, cached */

    struct _sb_admin_hashing_t *admin_hashing;  /* sb_admin.c: jobs whose password is being hashed */
    sb_cimd_t *cimd;                /* Client ID Metadata Document fetches */
    sb_register_limit_t *register_limit;    /* /register's per-address counts (sb_oauth_register.c) */
    struct _sb_connectors_t *connectors;    /* --connectors (one reference), NULL when none given */
    struct _sb_conn_keys_t *conn_keys;      /* data keys of connection secrets (sb_conn_keys.c) */
    struct _sb_provider_t *provider;        /* providers' token endpoints (sb_provider.c) */
    struct _sb_connections_t *connections;  /* refreshes in flight, the sweep (sb_connections.c) */
    struct _sb_connect_t *connect;          /* connect flows waiting on a provider (sb_connect.c) */
    struct _sb_quota_sync_t *quota_sync;    /* the quota service: usage and limits (sb_quota_sync.c) */
};

/*  Derives the key for `purpose` ("signing-keys", "csrf"…) from the
    role's secret: HMAC-SHA256 (secret, "switchboard/" purpose). Returns 0,
    or -1 when the role has no secret (--secret-key-file not given). */
int sb_token_subkey (const sb_token_role_t *self, const char *purpose,
                     uint8_t key [SB_TOKEN_SUBKEY_LEN])
    SB_MUST_USE;

/*  Seals `secret` (`len` bytes, at most SB_TOKEN_MAX_ROW_KEY) under
    `box_key` (an sb_token_subkey) with `id` as associated data, and writes
    the box as hex into `sealed_hex` (2 * (len + SB_AEAD_OVERHEAD) + 1
    bytes): a key as a table row stores it (signing_keys,
    connection_keys). Returns 0, or -1. */
int sb_token_row_key_seal (const uint8_t box_key [SB_TOKEN_SUBKEY_LEN], const char *id,
                           const uint8_t *secret, size_t len, char *sealed_hex)
    SB_MUST_USE;

/*  Opens `sealed_hex`, what sb_token_row_key_seal wrote for `id` and a
    `len`-byte secret, under `box_key` into `secret`. Returns 0; -1 when
    the text is not the hex of a box of that size (the row is unreadable);
    -2 when the box does not open (another secret sealed it, or the row
    was altered: another id, another box). */
int sb_token_row_key_open (const uint8_t box_key [SB_TOKEN_SUBKEY_LEN], const char *id,
                           const char *sealed_hex, uint8_t *secret, size_t len)
    SB_MUST_USE;

/*  Wipes the string *text_p (a secret: a token, a code, a cookie), frees
    it and nulls the pointer. NULL: nothing. */
void sb_token_wipe_free (char **text_p);

/*  A step that cannot start: ends the job "failed" with `why` (*job_p is
    then NULL) and hands the caller's `arg` to `free_arg` (NULL: nothing
    to free), as the step would have once done. */
void sb_token_fail_arg (sb_worker_job_t **job_p, const char *why, void *arg,
                        void (*free_arg) (void *arg));

/*  Runs one statement for `job` (borrowed, not yet answered): `answer` is
    called with the result as for sb_db_loop_job_query. When the database
    does not answer SB_TOKEN_GUARD_MS before the job's deadline, or
    SB_MAX_TOKEN_DB_JOBS already wait, or memory runs out, the job is
    ended "failed" with a sentence (the gateway answers 503) and `answer`
    is not called. One statement per step: the connection is shared by
    every job, so no transaction may stay open across loop turns; a step
    that reads and writes is one SQL function that locks what it needs. */
int sb_token_query (sb_token_role_t *self, sb_worker_job_t *job, const char *sql,
                    int nparams, const char *const *params, sb_db_loop_answer_fn *answer,
                    void *arg, void (*free_arg) (void *arg));

/*  The worker abandons `job`: if it waits on a statement of
    sb_token_query, the statement's answer will not be called, and its
    `free_arg` is called now. Returns true when the job waited on one. */
bool sb_token_query_abandon (sb_token_role_t *self, sb_worker_job_t *job);

/*  Decodes `job`'s data as an HTTP request into `request` (zeroed).
    Returns 0; or -1, having answered the job "failed" with the reason
    (the gateway sent something it must not), and *job_p is NULL. */
int sb_token_http_request (sb_worker_job_t **job_p, sb_http_request_t *request)
    SB_MUST_USE;

/*  Ends the job with `response` as its result and clears the response.
    A response that cannot be encoded ends the job "failed". */
void sb_token_http_answer (sb_worker_job_t **job_p, sb_http_response_t *response);

/*  Ends the job with a JSON response: `status`, `json` as the body,
    Content-Type application/json, Cache-Control no-store, Pragma
    no-cache (RFC 6749 §5.1). */
void sb_token_http_json (sb_worker_job_t **job_p, int status, const char *json);

/*  Ends the job with an OAuth error as /token, /revoke and /register
    answer it (RFC 6749 §5.2): `error.status`, {"error",
    "error_description"}, and WWW-Authenticate: Basic when
    error.basic_challenge. */
void sb_token_http_oauth_error (sb_worker_job_t **job_p, const sb_oauth_error_t *error);

//  ---------------------------------------------------------------------
//  oauth/authorize (sb_oauth_authorize.c)

/*  Serves `job` (op oauth/authorize): GET shows the sign-in and consent
    page for a valid request (or the error page, or the error redirect);
    POST checks the CSRF pair, validates the carried request again, and
    on Allow verifies the password on self->offload, then issues a code
    (302) or shows the page again with one generic sentence. Ends the job. */
void sb_oauth_authorize_start (sb_token_role_t *self, sb_worker_job_t *job);

/*  The worker abandons `job`: if it is a sign-in waiting on the hashing
    threads, it is forgotten (the hash's end then only frees its state)
    and this returns true. Otherwise false: the job is not parked here. */
bool sb_oauth_authorize_abandon (sb_token_role_t *self, sb_worker_job_t *job);

//  The signing keys (sb_oauth_keys.c)

/*  Called with the current signing key (borrowed for the call) for
    `*job_p`, which the callee must end. */
typedef void (sb_oauth_key_fn) (sb_worker_job_t **job_p, const sb_oauth_signing_key_t *key,
                                void *arg);

/*  Finds the current signing key for `job` and calls `cb` with it: at once
    when this worker read it less than SB_OAUTH_KEY_CHECK_MS ago, else after
    reading it from the database, where one is made if none is current
    (race-safe among workers). When the key cannot be had (no
    --secret-key-file, the database failed, a key that does not open under
    the secret) the job is ended "failed" with a sentence, `free_arg (arg)`
    is called and `cb` is not. */
void sb_oauth_keys_current (sb_token_role_t *self, sb_worker_job_t *job, sb_oauth_key_fn *cb,
                            void *arg, void (*free_arg) (void *arg));

/*  Called when a rotation ended for `*job_p`, which the callee must end:
    `kid` the new current key and `retired` the key it replaced (NULL when
    none was current), or `error` a sentence (both NULL). */
typedef void (sb_oauth_rotate_fn) (sb_worker_job_t **job_p, const char *kid, const char *retired,
                                   const char *error, void *arg);

/*  Makes a new signing key current and retires the current one (which the
    key set keeps listing while tokens it signed may live). For the admin
    API's key rotation. Ends the job itself as sb_token_query does when the
    database cannot be asked (then calls `free_arg (arg)`, not `cb`). */
void sb_oauth_keys_rotate (sb_token_role_t *self, sb_worker_job_t *job, sb_oauth_rotate_fn *cb,
                           void *arg, void (*free_arg) (void *arg));

/*  Forgets the cached key, wiping its seed (the role's destroy). */
void sb_oauth_keys_forget (sb_token_role_t *self);

/*  oauth/jwks: answers {"keys": [...]}, the public keys of the current
    key and of keys retired less than SB_OAUTH_ACCESS_TTL_S +
    SB_TOKEN_CLOCK_SKEW_S ago, newest first, at most SB_MAX_JWKS_KEYS. */
void sb_oauth_jwks (sb_token_role_t *self, sb_worker_job_t *job);

//  ---------------------------------------------------------------------
//  /token and /revoke (sb_oauth_token.c)

/*  oauth/token: the job's data is the POST /token request. */
void sb_oauth_token (sb_token_role_t *self, sb_worker_job_t *job);

/*  oauth/revoke: the job's data is the POST /revoke request (RFC 7009). */
void sb_oauth_revoke (sb_token_role_t *self, sb_worker_job_t *job);

/*  The admin API (sb_admin.c, docs/ADMIN.md): answers the job, an HTTP
    request under /admin/ that the gateway authenticated, now or later. */
void sb_admin_http (sb_token_role_t *self, sb_worker_job_t *job);

/*  The worker abandons `job`: if the admin API parked it while a password
    is hashed, forgets it (the hash is discarded) and returns true. */
bool sb_admin_abandon (sb_token_role_t *self, sb_worker_job_t *job);

/*  audit/record (sb_audit.c): writes the refusal in the job's data
    ({"action", "subject", "detail"}; the action one a gateway decides)
    to the audit log under the job's tenant, the subject as actor, and
    ends the job with {"recorded": bool} (false: a tenant `tenants` does
    not list, logged instead). Bad data ends the job "failed". */
void sb_audit_record (sb_token_role_t *self, sb_worker_job_t *job);
//  The modules' entry points

/*  oauth/register (sb_oauth_register.c): RFC 7591 registration. */
void sb_oauth_register (sb_token_role_t *self, sb_worker_job_t *job);

/*  Frees /register's state (the role's destroy). */
void sb_oauth_register_destroy (sb_token_role_t *self);

#endif
