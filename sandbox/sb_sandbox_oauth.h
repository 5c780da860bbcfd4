/*  sandbox/sb_sandbox_oauth.h — private to sandbox/: the sandbox's OAuth 2
    provider, what the tests of tenant connections sign in to and count
    refreshes on (off unless sb-sandbox is given --oauth-client-id).

    One confidential client (or a public one when no secret is set). The
    authorization code flow with PKCE S256 (required): GET /oauth/authorize
    shows a sign-in page, POST /oauth/authorize (the page's form, or a test
    without the page) redirects back with a single-use code (60 s).
    POST /oauth/token (RFC 6749: authorization_code, refresh_token; client
    authentication client_secret_basic or client_secret_post) answers an
    access token with a TTL, a refresh token, the scope and `instance_url`.
    With rotation on, every refresh gives a new refresh token; the one it
    replaced still refreshes for --oauth-refresh-grace-s seconds (a worker
    killed between the provider's answer and its commit leaves a usable
    token), and after that its reuse revokes the grant (invalid_grant).
    With rotation off the answer carries no refresh token and the first one
    stays. POST /oauth/revoke (RFC 7009) revokes the token's whole grant.

    Test controls, no auth (the sandbox listens on loopback):
        GET    /_sandbox/oauth/grants     per grant: refreshes, code_exchanges,
                                          api_requests, revoked, access_expires_in,
                                          max_concurrent_refreshes, grace_reuses
        GET    /_sandbox/oauth/grants/<id>/tokens   the tokens the grant holds now
                                          (access, refresh, previous, retired), for
                                          tests that grep logs for secrets
        POST   /_sandbox/oauth/faults     {"mode": "down"|"invalid_grant"|"slow",
                                           "delay_ms", "count"} on /oauth/token
        GET, DELETE /_sandbox/oauth/faults
        POST   /_sandbox/oauth/expire     {"grant"}: its access tokens expire now
        POST   /_sandbox/oauth/revoke     {"grant"}: revoked
    A slow answer waits on an h2o timer, never blocking the loop, and is
    worked out when it fires: the grant rotates even when the client has
    gone by then (as a provider does that committed before the client
    hung up).

    No token, code, verifier or secret is ever logged: grant IDs, accounts
    and outcomes are. */
#ifndef SB_SANDBOX_OAUTH_H_INCLUDED
#define SB_SANDBOX_OAUTH_H_INCLUDED

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"
#include "sb_sandbox.h"

#define SB_SANDBOX_OAUTH_MAX_GRANTS     1024    /* grants held (revoked ones are reused first) */
#define SB_SANDBOX_OAUTH_MAX_CODES      256     /* authorization codes held at once */
#define SB_SANDBOX_OAUTH_CODE_TTL_MS    60000   /* an authorization code's life */
#define SB_SANDBOX_OAUTH_MAX_BODY       16384   /* bytes of a form body or an authorize query */
#define SB_SANDBOX_OAUTH_MAX_ACCOUNT    64      /* bytes of an account name */
#define SB_SANDBOX_OAUTH_MAX_SLOW       64      /* token answers held back by "slow" at once */
#define SB_SANDBOX_OAUTH_MAX_CLIENT     256     /* bytes of the client ID or secret */
#define SB_SANDBOX_OAUTH_MAX_TTL_S      86400   /* longest access token TTL and grace */

typedef struct _sb_sandbox_oauth_t sb_sandbox_oauth_t;

//  What a Bearer token sent to /v1 is.
typedef enum {
    SB_SANDBOX_BEARER_UNKNOWN = 0,  /* not an access token of this provider */
    SB_SANDBOX_BEARER_LIVE,         /* a live grant's unexpired token */
    SB_SANDBOX_BEARER_EXPIRED       /* expired, or its grant is revoked */
} sb_sandbox_bearer_t;

/*  Creates the provider of `sandbox` from `config` (checked: a client ID of
    visible ASCII, TTL 1..SB_SANDBOX_OAUTH_MAX_TTL_S, grace 0..same; logged
    when wrong). `instance_url` is what token answers carry as instance_url.
    Returns NULL when the configuration is wrong or memory ran out. */
sb_sandbox_oauth_t *sb_sandbox_oauth_new (sb_sandbox_t *sandbox,
                                          const sb_sandbox_oauth_config_t *config,
                                          const char *instance_url) SB_MUST_USE;

/*  Destroys the provider (wiping its tokens) and nulls the caller's
    pointer. Idempotent. Call it only when no slow answer is pending. */
void sb_sandbox_oauth_destroy (sb_sandbox_oauth_t **self_p);

/*  Answers a request whose path (without the query) starts with "/oauth/". */
void sb_sandbox_oauth_handle (sb_sandbox_oauth_t *self, h2o_req_t *req, const char *path);

/*  Answers a request whose path starts with "/_sandbox/oauth". */
void sb_sandbox_oauth_admin (sb_sandbox_oauth_t *self, h2o_req_t *req, const char *path);

/*  Looks up the access token `token` (`len` bytes). When it is live,
    counts an API request on its grant and copies the grant's account and
    ID (each buffer SB_SANDBOX_OAUTH_MAX_ACCOUNT bytes). */
sb_sandbox_bearer_t sb_sandbox_oauth_bearer (sb_sandbox_oauth_t *self, const char *token,
                                             size_t len, char *account, char *grant);

/*  Token answers held back by the "slow" fault now. */
size_t sb_sandbox_oauth_pending (sb_sandbox_oauth_t *self);

#endif
