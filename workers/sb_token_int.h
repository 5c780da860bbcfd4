/*  workers/sb_token_int.h — what the token role's modules share: the
    role's state, and the answers every HTTP job ends with. The role
    (sb_token_role.c) dispatches a job by its op to a module:

      oauth/authorize   sb_oauth_authorize.c   the sign-in and consent page
      oauth/token       sb_oauth_token.c       codes and refresh tokens for access tokens
      oauth/revoke      sb_oauth_token.c       RFC 7009 revocation
      oauth/jwks        sb_oauth_keys.c        the public key set, for gateways
      oauth/register    sb_oauth_register.c    RFC 7591 registration
      (lookups)         sb_oauth_clients.c     a client by ID; https IDs via sb_cimd.c
      admin/http        sb_admin.c             the admin API

    Each HTTP op's data is an sb_http_request_t (payload/sb_http_payload.h)
    and its result an sb_http_response_t: the gateway relays both. Every
    step with state runs on the role's sb_db_loop; CPU-heavy steps
    (Argon2id) run on its sb_offload pool. */
#ifndef SB_TOKEN_INT_H_INCLUDED
#define SB_TOKEN_INT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_cimd.h"
#include "sb_db_loop.h"
#include "sb_http_payload.h"
#include "sb_oauth.h"
#include "sb_offload.h"
#include "sb_token_role.h"
#include "sb_worker.h"

#define SB_TOKEN_SUBKEY_LEN     32      /* bytes of a key derived from --secret-key-file */
#define SB_MAX_TOKEN_DB_JOBS    512     /* jobs waiting for the database at once; more: unavailable */
#define SB_TOKEN_GUARD_MS       20      /* a job's query is given up this long before its deadline */

typedef struct _sb_register_limit_t sb_register_limit_t;

struct _sb_token_role_t {
    sb_worker_t *worker;            /* our worker (borrowed) */
    sb_db_loop_t *db_loop;          /* asynchronous connection on the worker's reactor */
    sb_offload_t *offload;          /* threads for password hashing */
    char issuer [SB_OAUTH_MAX_URI + 1];     /* --issuer: the authorization server's URL */
    char resource [SB_OAUTH_MAX_URI + 1];   /* issuer + "/mcp": the one resource served */
    uint8_t secret [64];            /* --secret-key-file's bytes (SB_MIN_TOKEN_SECRET_LEN..64) */
    size_t secret_len;              /* 0: no secret configured */
    sb_cimd_t *cimd;                /* Client ID Metadata Document fetches */
    sb_register_limit_t *register_limit;    /* /register's per-address counts (sb_oauth_register.c) */
};

/*  Derives the key for `purpose` ("signing-keys", "csrf"…) from the
    role's secret: HMAC-SHA256 (secret, "switchboard/" purpose). Returns 0,
    or -1 when the role has no secret (--secret-key-file not given). */
int sb_token_subkey (const sb_token_role_t *self, const char *purpose,
                     uint8_t key [SB_TOKEN_SUBKEY_LEN])
    SB_MUST_USE;

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
//  The modules' entry points

/*  oauth/register (sb_oauth_register.c): RFC 7591 registration. */
void sb_oauth_register (sb_token_role_t *self, sb_worker_job_t *job);

/*  Frees /register's state (the role's destroy). */
void sb_oauth_register_destroy (sb_token_role_t *self);

#endif
