/*  workers/sb_conn.h — what the token role's connection modules share
    (issue 21; proto/PROTOCOL.md "Connections", docs/CONNECTIONS.md):

      sb_conn_keys.c      the data keys that seal connection secrets, and
                          their rotation (admin API, sb-admin)
      sb_conn_admin.c     the admin API's /admin/tenants/{id}/connections…
                          and /admin/connection-keys…
      sb_provider.c       a provider's token endpoint: code exchange and
                          refresh, on the role's own curl loop
      sb_connections.c    connection/credential: read, open, refresh once
                          (single flight in the worker, a lease in
                          PostgreSQL across workers), the proactive sweep
      sb_connect.c        /connect/{connector} and /connect/callback, and
                          the signed connect tickets

    Everything runs on the token worker's reactor: one statement per step
    on the role's sb_db_loop (SQL functions in migrations 011-013 lock
    what they need), HTTP on curl multi, no blocking call. No secret (token,
    key, code, verifier, ticket) is ever logged. */
#ifndef SB_CONN_H_INCLUDED
#define SB_CONN_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_connector.h"
#include "sb_token_int.h"

#define SB_CONN_MIN_LIFETIME_S      60      /* a token answered has at least this long left */
#define SB_CONNECT_TICKET_TTL_S     600     /* a connect link is good this long */
#define SB_CONNECT_FLOW_TTL_S       600     /* from the connect page's POST to the callback */
#define SB_CONN_KEY_ID_LEN          16      /* a data key's id: 16 base64url characters */
#define SB_MAX_CONN_SECRET          16384   /* an access token, refresh token or API key, bytes */

//  ---------------------------------------------------------------------
//  Data keys (sb_conn_keys.c)
//
//  Secrets are sealed with AES-256-GCM (sb_aead_seal) under a random data
//  key; data keys live in connection_keys sealed under
//  sb_token_subkey ("connection-keys"), with their id as associated data.
//  The worker keeps every key it has opened in memory (wiped at destroy)
//  and the id of the current one, re-read after SB_OAUTH_KEY_CHECK_MS.

typedef struct _sb_conn_keys_t sb_conn_keys_t;

/*  Creates the role's key ring (empty) / destroys it, wiping the keys. */
sb_conn_keys_t *sb_conn_keys_new (void) SB_MUST_USE;
void sb_conn_keys_destroy (sb_conn_keys_t **self_p);

/*  Called when the key ring knows the current key (and every key in the
    table, so any row can be opened) for `*job_p`, which the callee must
    end (or go on with). `key_id` is the current key's id (borrowed). */
typedef void (sb_conn_keys_fn) (sb_worker_job_t **job_p, const char *key_id, void *arg);

/*  Makes sure the ring holds the current key and every key of
    connection_keys: at once when read less than SB_OAUTH_KEY_CHECK_MS ago
    and `need_id` (NULL: none) is known, else after reading the table,
    where a current key is made when none is (race-safe among workers).
    When the keys cannot be had (no master secret, the database failed, a
    key that does not open) the job is ended "failed" with a sentence,
    `free_arg (arg)` is called and `cb` is not. */
void sb_conn_keys_ready (sb_token_role_t *self, sb_worker_job_t *job, const char *need_id,
                         sb_conn_keys_fn *cb, void *arg, void (*free_arg) (void *arg));

/*  The same without a job (the proactive sweep): `cb` is called with
    `key_id`, or with NULL and a sentence in `error` when the keys cannot
    be had. */
typedef void (sb_conn_keys_plain_fn) (const char *key_id, const char *error, void *arg);
void sb_conn_keys_ready_plain (sb_token_role_t *self, const char *need_id,
                               sb_conn_keys_plain_fn *cb, void *arg);

/*  Seals `plain` (`len` bytes) for `tenant`'s `connector`, column
    `column` ("access", "refresh", "api_key", "verifier"), under key
    `key_id`, which the ring must hold. The associated data is
    "<tenant>/<connector>/<column>". Returns a new buffer of nonce 12 ||
    ciphertext || tag 16 (`*out_len` bytes), or NULL (unknown key, out of
    memory, `len` above SB_MAX_CONN_SECRET). */
uint8_t *sb_conn_seal (sb_token_role_t *self, const char *key_id, const char *tenant,
                       const char *connector, const char *column, const void *plain, size_t len,
                       size_t *out_len) SB_MUST_USE;

/*  Opens what sb_conn_seal made. Returns a new NUL-terminated string
    (wipe it with sb_crypto_wipe before free), or NULL when the key is not
    in the ring, the tag does not verify (moved or altered ciphertext, or
    another master secret) or memory runs out. */
char *sb_conn_open (sb_token_role_t *self, const char *key_id, const char *tenant,
                    const char *connector, const char *column, const uint8_t *sealed,
                    size_t sealed_len) SB_MUST_USE;

/*  libpq's bytea text form ("\x0a1b…") of `data`, and back. New strings /
    buffers, NULL on bad input or out of memory. */
char *sb_conn_bytea_text (const uint8_t *data, size_t len) SB_MUST_USE;
uint8_t *sb_conn_bytea_parse (const char *text, size_t *len) SB_MUST_USE;

/*  Called when a rotation ended for `*job_p`, which the callee must end:
    `key_id` the new current key and `previous` the one it replaced (NULL
    when none was current), or `error` a sentence (both NULL). */
typedef void (sb_conn_keys_rotate_fn) (sb_worker_job_t **job_p, const char *key_id,
                                       const char *previous, const char *error, void *arg);

/*  Makes a new data key current (connection_key_rotate); the ring reads
    it at its next use. Rows under the previous key stay readable until
    they are re-sealed (the admin API's reseal). Ends the job itself as
    sb_token_query does when the database cannot be asked, or when no key
    can be made (then calls `free_arg (arg)`, not `cb`). */
void sb_conn_keys_rotate (sb_token_role_t *self, sb_worker_job_t *job, sb_conn_keys_rotate_fn *cb,
                          void *arg, void (*free_arg) (void *arg));

//  ---------------------------------------------------------------------
//  The admin API's connection routes (sb_conn_admin.c, docs/ADMIN.md)

/*  Serves an admin/http job that sb_admin.c routed here, its method and
    path one of GET tenants/{id}/connections, PUT and DELETE
    tenants/{id}/connections/{connector}, GET connection-keys, POST
    connection-keys/rotate and POST connection-keys/reseal. `http` (the
    request, its body), `segments` (`count` decoded path segments after
    /admin/) and `limit` (reseal's ?limit, NULL when absent) are borrowed
    for the call. Ends the job now or later. */
void sb_conn_admin_http (sb_token_role_t *self, sb_worker_job_t *job,
                         const sb_http_request_t *http, char *const *segments, size_t count,
                         const char *limit);

//  ---------------------------------------------------------------------
//  A provider's token endpoint (sb_provider.c)

typedef struct _sb_provider_t sb_provider_t;

/*  What the provider's token endpoint answered (RFC 6749 §5.1). Strings
    owned; sb_provider_tokens_clear wipes and frees them. */
typedef struct {
    char *access_token;         /* required */
    char *refresh_token;        /* NULL: not rotated (keep the one you have) */
    int64_t expires_in;         /* seconds; -1: the provider did not say */
    char *scope;                /* NULL: as asked */
    json_t *vars;               /* the string fields the connector keeps (auth.oauth2.keep), {} if none */
} sb_provider_tokens_t;
void sb_provider_tokens_clear (sb_provider_tokens_t *tokens);

typedef enum {
    SB_PROVIDER_OK = 0,         /* tokens set */
    SB_PROVIDER_REFUSED,        /* invalid_grant (or invalid_client, unauthorized_client):
                                   the grant is dead; reconnecting is the only way on */
    SB_PROVIDER_TRANSIENT,      /* network error, timeout, 5xx, 429, an answer that does not
                                   parse: try again later (retry_after_s may say when) */
} sb_provider_outcome_t;

/*  `tokens` (owned by the callee on OK: clear it) or `detail`, a sentence
    without secrets for logs and the connection's status_detail. */
typedef void (sb_provider_fn) (sb_provider_outcome_t outcome, sb_provider_tokens_t *tokens,
                               const char *detail, int retry_after_s, void *arg);

/*  Creates the token-endpoint client on `reactor` (one curl loop of its
    own). `allow_hosts`: as --cimd-allow-hosts, nothing else is special
    (providers are the operator's configuration, not user input, so no
    SSRF guard: the connector file names them). */
sb_provider_t *sb_provider_new (sb_reactor_t *reactor) SB_MUST_USE;
void sb_provider_destroy (sb_provider_t **self_p);

/*  POSTs to `connector`'s token endpoint (client authentication as its
    auth.oauth2 says) the form of a grant: authorization_code (`code`,
    `verifier`, `redirect_uri` set, `refresh_token` NULL) or refresh_token
    (`refresh_token` set, the others NULL). Waits at most until the
    monotonic time `deadline_ms`. Returns a request id (> 0) and calls
    `cb` once from the loop later; or -1 (nothing is called) when out of
    memory or the connector is not oauth2 or has no client_id. */
int64_t sb_provider_token (sb_provider_t *self, const sb_connector_t *connector,
                           const char *code, const char *verifier, const char *redirect_uri,
                           const char *refresh_token, int64_t deadline_ms, sb_provider_fn *cb,
                           void *arg) SB_MUST_USE;

/*  Forgets request `id` (its transfer is stopped, `cb` never called). */
void sb_provider_cancel (sb_provider_t *self, int64_t id);

//  ---------------------------------------------------------------------
//  connection/credential (sb_connections.c)

typedef struct _sb_connections_t sb_connections_t;

/*  Creates the refreshes' state for `role` (its db_loop, provider and
    connectors set up), taking one timer of the worker's reactor: every
    `sweep_ms` (0: never) the proactive sweep refreshes connected OAuth
    connections whose access token ends within `window_s`. NULL when out
    of memory or timers. */
sb_connections_t *sb_connections_new (sb_token_role_t *role, int window_s, int sweep_ms)
    SB_MUST_USE;

/*  Stops the sweep, cancels provider calls and forgets waiting jobs (they
    stay the worker's): before the role's database loop is destroyed,
    whose closing answers the statements still in flight. */
void sb_connections_stop (sb_connections_t *self);

/*  Frees what is left (after the database loop) and nulls the pointer. */
void sb_connections_destroy (sb_connections_t **self_p);

/*  Serves op connection/credential (a worker request, PROTOCOL.md
    "Connections"): ends the job now or later. */
void sb_connections_credential (sb_token_role_t *self, sb_worker_job_t *job);

/*  The worker abandons `job`: if it waits for a refresh or a statement
    here, forget it and return true. */
bool sb_connections_abandon (sb_token_role_t *self, sb_worker_job_t *job);

//  ---------------------------------------------------------------------
//  Connect flow (sb_connect.c)

/*  The connect link for `tenant`'s `subject` and `connector`:
    "<issuer>/connect/<connector>?ticket=<t>", t an HMAC-signed
    (sb_token_subkey "connect-ticket") base64url ticket good for
    SB_CONNECT_TICKET_TTL_S. A new string, or NULL when the role has no
    issuer or no secret. */
char *sb_connect_url (sb_token_role_t *self, const char *tenant, const char *subject,
                      const char *connector) SB_MUST_USE;

/*  connect/start (GET: the confirmation page; POST: the flow starts, 302
    to the provider) and connect/callback (the provider's redirect back):
    HTTP jobs. Each ends the job now or later. */
void sb_connect_start (sb_token_role_t *self, sb_worker_job_t *job);
void sb_connect_callback (sb_token_role_t *self, sb_worker_job_t *job);

/*  The worker abandons `job`: if it waits on the provider here, forget it
    and return true. */
bool sb_connect_abandon (sb_token_role_t *self, sb_worker_job_t *job);

#endif
