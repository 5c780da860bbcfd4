/*  sandbox/sb_sandbox.h — sb-sandbox, a small CRM-like SaaS API for demos,
    tests and benchmarks: JSON over REST on one h2o event loop, a Bearer
    API key, seeded data (sandbox/sb_crm.h), and a fault-injection admin
    API (/_sandbox/faults) that delays or fails upstream calls on demand.

    Endpoints (all JSON):
        GET    /healthz                       200 {"status":"ok"}
        GET    /v1/<type>?q=&limit=&cursor=…  search (type: accounts, contacts,
                                              leads, opportunities, tasks)
        GET    /v1/<type>/<id>                one record, 404 when missing
        POST   /v1/tasks                      create a task (201, 422 on bad input)
        POST   /_sandbox/faults               {"delay_ms","status","count",
                                               "path_prefix","retry_after"}
        GET    /_sandbox/faults, DELETE /_sandbox/faults
        GET    /_sandbox/stats                request counts
    The /v1 API wants "Authorization: Bearer <api key>", or, when the
    sandbox is given a key header (--api-key-header X-API-Key), the bare key
    in that header and nowhere else (as an api_key_header connector sends
    it); /healthz and /_sandbox do not (the sandbox listens on loopback for
    tests).

    With an OAuth client configured (sb_sandbox_enable_oauth), the sandbox
    is also an OAuth 2 provider: /oauth/authorize, /oauth/token,
    /oauth/revoke, the test controls under /_sandbox/oauth, Bearer access
    tokens on /v1 besides the API key, and GET /v1/me (who the token is);
    see sandbox/sb_sandbox_oauth.h. */
#ifndef SB_SANDBOX_H_INCLUDED
#define SB_SANDBOX_H_INCLUDED

#include <signal.h>
#include <stdbool.h>

#include "sb_attr.h"

#define SB_SANDBOX_MAX_BODY     (64u << 10) /* request body answered with JSON 413 above */
#define SB_SANDBOX_MAX_FAULTS   16          /* fault rules active at once */
#define SB_SANDBOX_MAX_DELAY_MS 60000       /* longest injected delay */
#define SB_SANDBOX_MAX_TIMERS   32          /* distinct delay values in use at once */
#define SB_SANDBOX_DRAIN_MS     3000        /* wait for delayed requests at shutdown */
#define SB_SANDBOX_MAX_KEY_HEADER 65        /* API key header name, bytes with the NUL */

typedef struct _sb_sandbox_t sb_sandbox_t;

//  The OAuth provider's settings (borrowed while sb_sandbox_enable_oauth runs).
typedef struct {
    const char *client_id;      /* the one client's ID */
    const char *client_secret;  /* its secret; "" or NULL: a public client */
    long access_ttl_s;          /* access tokens' life, 1..86400 */
    long refresh_grace_s;       /* how long a rotated-away refresh token still works, 0..86400 */
    bool rotate;                /* a new refresh token on every refresh */
    const char *instance_url;   /* instance_url of token answers; "" or NULL:
                                   http://127.0.0.1:<port> */
} sb_sandbox_oauth_config_t;

/*  Creates the server listening on `listen` ("127.0.0.1:8090"; port 0 picks
    one) with the given API key and data seed. The key is wanted as
    "Authorization: Bearer <key>" when `key_header` is NULL or "", else as
    "<key_header>: <key>" only (a header name of letters, digits and '-',
    any case). Returns NULL (logged) when the key or header is malformed or
    the address cannot be bound. */
sb_sandbox_t *sb_sandbox_new (const char *listen, const char *api_key, const char *key_header,
                              unsigned seed) SB_MUST_USE;

/*  Turns the OAuth provider on with `config`. Returns 0, or -1 (logged)
    when the settings are wrong or it is on already. */
int sb_sandbox_enable_oauth (sb_sandbox_t *self, const sb_sandbox_oauth_config_t *config)
    SB_MUST_USE;

/*  The port it listens on. */
int sb_sandbox_port (sb_sandbox_t *self);

/*  Runs the event loop until *stop becomes non-zero, then stops accepting,
    lets delayed requests finish (up to SB_SANDBOX_DRAIN_MS) and returns 0. */
int sb_sandbox_run (sb_sandbox_t *self, volatile sig_atomic_t *stop);

/*  Destroys the server and nulls the caller's pointer. Idempotent. */
void sb_sandbox_destroy (sb_sandbox_t **self_p);

#endif
