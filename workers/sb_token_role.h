/*  workers/sb_token_role.h — the token role: the authorization server's
    stateful half (docs/OAUTH.md) and the admin API, as jobs of the
    `token` service (proto/PROTOCOL.md, "HTTP jobs"; the modules are listed
    in sb_token_int.h). Start-up is blocking (connect and migrations,
    before the loop); then everything runs on the worker's reactor. A
    "ping" proves the asynchronous PostgreSQL connection works:

        {"pong":true,"role":"token","db":"ok","migrations":N}
        {"pong":false,"role":"token","db":"unavailable"}   (within SB_TOKEN_PING_DB_MS)
*/
#ifndef SB_TOKEN_ROLE_H_INCLUDED
#define SB_TOKEN_ROLE_H_INCLUDED

#include "sb_attr.h"
#include "sb_worker.h"

#define SB_TOKEN_CONNECT_TIMEOUT_MS 10000   /* start-up connect, at most */
#define SB_TOKEN_PING_DB_MS         1000    /* a ping waits this long for the database */
#define SB_MAX_TOKEN_PINGS          256     /* pings waiting for the database at once */
#define SB_MIN_TOKEN_SECRET_LEN     32      /* bytes of --secret-key-file's first line, at least */
#define SB_MAX_TOKEN_HASH_THREADS   16      /* --hash-threads, at most */
#define SB_MAX_REFRESH_WINDOW_S     86400   /* --refresh-window-s, at most */
#define SB_MAX_REFRESH_SWEEP_MS     3600000 /* --refresh-sweep-ms, at most */

//  What the role is started with (sb-worker's options).
typedef struct {
    const char *conninfo;           /* --db */
    const char *migrations_dir;     /* --migrations */
    const char *issuer;             /* --issuer: the gateways' --public-url; "" refuses OAuth jobs */
    const char *secret_key_file;    /* --secret-key-file; "": SB_SECRET_KEY holds the secret itself,
                                       and without either what needs it is refused */
    const char *connectors_dir;     /* --connectors: which connectors keep tenants' credentials */
    const char *connector_urls;     /* --connector-urls: base-URL overrides (OAuth endpoints given as paths follow) */
    int hash_threads;               /* --hash-threads: Argon2id runs on these */
    const char *cimd_allow_hosts;   /* --cimd-allow-hosts: IPs the SSRF guard lets through (tests) */
    const char *cimd_ca_file;       /* --cimd-ca-file: CA bundle for metadata documents; "": the system's */
    int refresh_window_s;           /* --refresh-window-s: the sweep renews tokens ending within it */
    int refresh_sweep_ms;           /* --refresh-sweep-ms: the sweep's period, 0: no sweep */
    int limits_poll_ms;             /* --limits-poll-ms: how often changed limits are looked for
                                       (workers/sb_quota_sync.h); 0: SB_LIMITS_POLL_MS */
} sb_token_config_t;

typedef struct _sb_token_role_t sb_token_role_t;

/*  Reads the secret, connects to the database (blocking, bounded by
    SB_TOKEN_CONNECT_TIMEOUT_MS), applies the migrations, then opens the
    asynchronous connection on the worker's reactor and starts the hashing
    threads. Returns NULL with an error logged. */
sb_token_role_t *sb_token_role_new (sb_worker_t *worker, const sb_token_config_t *config)
    SB_MUST_USE;

/*  Closes the connection, frees the role and nulls the caller's pointer. */
void sb_token_role_destroy (sb_token_role_t **self_p);

/*  The callbacks to pass to sb_worker_set_role with the sb_token_role_t. */
extern const sb_worker_role_t sb_token_role;

#endif
