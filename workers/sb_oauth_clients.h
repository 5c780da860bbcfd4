/*  workers/sb_oauth_clients.h — finding an OAuth client for the token
    role's modules (/authorize, /token, /revoke): one statement on the
    role's database loop, answered as a typed row. Clients are global
    (db/migrations/004: a client registers before any tenant is known).
    A client ID that is an HTTPS URL is a Client ID Metadata Document
    client: its row is the cache of the fetched document (kind
    `metadata_document`). */
#ifndef SB_OAUTH_CLIENTS_H_INCLUDED
#define SB_OAUTH_CLIENTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_oauth.h"
#include "sb_oauth_meta.h"
#include "sb_token_int.h"

#define SB_OAUTH_SECRET_HASH_LEN    32      /* SHA-256 of a client secret */

//  A client as stored; strings owned by the row.
typedef struct {
    char *client_id;
    char *kind;                         /* registered, metadata_document, static */
    char *client_name;                  /* NULL when none */
    char *redirect_uris [SB_OAUTH_MAX_REDIRECT_URIS];
    size_t redirect_uri_count;
    char *auth_method;                  /* none, client_secret_basic, client_secret_post */
    uint8_t secret_hash [SB_OAUTH_SECRET_HASH_LEN];
    bool has_secret;                    /* auth_method is not none */
    char *scope;                        /* registered scopes; NULL: the default */
    bool revoked;                       /* revoked_at is set: treat as unknown */
    bool chatgpt;                       /* a registered redirect URI is ChatGPT's */
    bool fresh;                         /* metadata_document: the cache has not expired */
    bool usable_stale;                  /* metadata_document: fetched within SB_CIMD_MAX_STALE_S */
} sb_oauth_client_row_t;

/*  The answer: `client` (borrowed for the call; NULL when there is no such
    client, or it was revoked) for `*job_p`, which the callee must end.
    `error` is a sentence when the database failed (client NULL). */
typedef void (sb_oauth_client_fn) (sb_worker_job_t **job_p, const sb_oauth_client_row_t *client,
                                   const char *error, void *arg);

/*  Looks `client_id` up for `job` and calls `cb` (job, client, error,
    arg), or ends the job itself as sb_token_query does when the database
    cannot be asked. A client ID that is an https URL resolves through
    its metadata document when its row is missing or stale (sb_cimd.h):
    the same call serves /authorize and /token for both kinds of client.
    While the document is fetched the job waits in the role's sb_cimd
    (the role's abandon asks it too). */
void sb_oauth_client_find (sb_token_role_t *self, sb_worker_job_t *job, const char *client_id,
                           sb_oauth_client_fn *cb, void *arg);

/*  sb_oauth_client_find for an `arg` the caller cannot lose: when `cb`
    will not be called (the job is ended for want of the database, given
    up or abandoned), `free_arg (arg)` is. */
void sb_oauth_client_find_owned (sb_token_role_t *self, sb_worker_job_t *job,
                                 const char *client_id, sb_oauth_client_fn *cb, void *arg,
                                 void (*free_arg) (void *arg));

/*  The core's view of `row` (oauth/sb_oauth.h), borrowing its strings. */
void sb_oauth_client_view (const sb_oauth_client_row_t *row, sb_oauth_client_t *view);

/*  True when `secret` hashes (SHA-256) to the row's secret hash, compared
    in constant time; false for a client without a secret. */
bool sb_oauth_client_secret_ok (const sb_oauth_client_row_t *row, const char *secret);

#endif
