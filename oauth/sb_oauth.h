/*  oauth/sb_oauth.h — the pure core of the OAuth 2.1 authorization server
    (issue 20, item 3): what a request to /authorize or /token means, or
    which RFC 6749 error it gets, decided without I/O. The gateway's shell
    (later) parses a request with these functions and then either answers
    the error or hands the validated request to the token worker, which
    does the stateful half (codes, refresh families, the database: see
    docs/OAUTH.md). PKCE S256 verification lives here too, for the worker.

    Every outcome is a tagged union: SB_OAUTH_VALID with the request, or
    SB_OAUTH_REFUSED with an sb_oauth_error_t. A refused request changes
    nothing anywhere, because nothing has been asked of anyone yet. */
#ifndef SB_OAUTH_H_INCLUDED
#define SB_OAUTH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_OAUTH_MAX_CLIENT_ID      512     /* bytes: a CIMD client ID is an HTTPS URL */
#define SB_OAUTH_MAX_SECRET         256     /* bytes of a client secret */
#define SB_OAUTH_MAX_URI            2048    /* bytes of a redirect URI or resource */
#define SB_OAUTH_MAX_STATE          1024    /* bytes of the client's state */
#define SB_OAUTH_MAX_CODE           256     /* bytes of an authorization code */
#define SB_OAUTH_MAX_REFRESH        256     /* bytes of a refresh token */
#define SB_OAUTH_MAX_SCOPE          1024    /* bytes of a scope string */
#define SB_OAUTH_MAX_DESCRIPTION    256     /* bytes of an error_description */
#define SB_OAUTH_MAX_AUTHORIZATION  2048    /* bytes of an Authorization header value */
#define SB_OAUTH_PKCE_MIN           43      /* chars of a code verifier or challenge, RFC 7636 §4.1 */
#define SB_OAUTH_PKCE_MAX           128
#define SB_OAUTH_PKCE_S256_LEN      43      /* base64url of a SHA-256 without padding */
#define SB_OAUTH_ACCESS_TTL_S       900     /* an access token's lifetime, seconds (the token
                                               service issues it, the gateways' revocations outlive it) */

//  The scopes the server offers: reading tools, and tools that change
//  data (issue 20, item 4). What an /authorize without `scope` gets for a
//  client that registered none: both. ChatGPT registers no scope and omits
//  it when a user reconnects; a read-only default would leave its write
//  tools refused until the person connected again. The consent page names
//  both, so the person decides.
#define SB_OAUTH_SCOPES_SUPPORTED   "mcp:tools mcp:write"
#define SB_OAUTH_SCOPE_DEFAULT      "mcp:tools mcp:write"
#define SB_OAUTH_SCOPE_TOOLS        "mcp:tools"     /* any /mcp request needs it */

#define SB_OAUTH_CHATGPT_REDIRECT   "https://chatgpt.com/connector_platform_oauth_redirect"
#define SB_OAUTH_CHATGPT_PREFIX     "https://chatgpt.com/connector/oauth/"
#define SB_OAUTH_CHATGPT_MAX_ID     128     /* chars of the <id> in ChatGPT's second form */

//  The error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2 and
//  RFC 8707 §2. ACCESS_DENIED is the person's "Deny" at /authorize.
typedef enum {
    SB_OAUTH_INVALID_REQUEST = 1,
    SB_OAUTH_INVALID_CLIENT,
    SB_OAUTH_INVALID_GRANT,
    SB_OAUTH_UNAUTHORIZED_CLIENT,
    SB_OAUTH_UNSUPPORTED_GRANT_TYPE,
    SB_OAUTH_UNSUPPORTED_RESPONSE_TYPE,
    SB_OAUTH_INVALID_SCOPE,
    SB_OAUTH_INVALID_TARGET,
    SB_OAUTH_INVALID_REDIRECT_URI,
    SB_OAUTH_INVALID_CLIENT_METADATA,
    SB_OAUTH_ACCESS_DENIED
} sb_oauth_code_t;

//  An error as the endpoint answers it.
typedef struct {
    sb_oauth_code_t code;                           /* the `error` */
    int status;                                     /* HTTP status: 400, or 401 for invalid_client */
    char description [SB_OAUTH_MAX_DESCRIPTION];    /* the `error_description`, a sentence */
    bool redirect;      /* /authorize: send to the client's redirect_uri (else show a page) */
    bool basic_challenge; /* /token: answer WWW-Authenticate: Basic (client tried Basic) */
} sb_oauth_error_t;

//  Which half of an outcome holds.
typedef enum {
    SB_OAUTH_VALID = 1,
    SB_OAUTH_REFUSED
} sb_oauth_kind_t;

/*  The `error` string of a code ("invalid_request"…), static. */
const char *sb_oauth_code_name (sb_oauth_code_t code);

//  --------------------------------------------------------------------
//  /token

typedef enum {
    SB_OAUTH_GRANT_AUTHORIZATION_CODE = 1,
    SB_OAUTH_GRANT_REFRESH_TOKEN
} sb_oauth_grant_t;

//  How a client authenticated at /token.
typedef enum {
    SB_OAUTH_AUTH_NONE = 1,     /* a public client: client_id alone (PKCE binds it) */
    SB_OAUTH_AUTH_BASIC,        /* client_secret_basic */
    SB_OAUTH_AUTH_POST          /* client_secret_post */
} sb_oauth_auth_t;

//  A syntactically valid token request. Empty strings are absent fields.
typedef struct {
    sb_oauth_grant_t grant;
    sb_oauth_auth_t auth;
    char client_id [SB_OAUTH_MAX_CLIENT_ID + 1];
    char client_secret [SB_OAUTH_MAX_SECRET + 1];       /* "" for AUTH_NONE */
    char code [SB_OAUTH_MAX_CODE + 1];                  /* authorization_code */
    char redirect_uri [SB_OAUTH_MAX_URI + 1];           /* authorization_code */
    char code_verifier [SB_OAUTH_PKCE_MAX + 1];         /* authorization_code */
    char refresh_token [SB_OAUTH_MAX_REFRESH + 1];      /* refresh_token */
    char scope [SB_OAUTH_MAX_SCOPE + 1];                /* refresh_token, optional narrowing */
    char resource [SB_OAUTH_MAX_URI + 1];               /* RFC 8707, optional */
} sb_oauth_token_request_t;

typedef struct {
    sb_oauth_kind_t kind;
    union {
        sb_oauth_token_request_t request;   /* kind == SB_OAUTH_VALID */
        sb_oauth_error_t error;             /* kind == SB_OAUTH_REFUSED */
    };
} sb_oauth_token_outcome_t;

/*  Validates a POST /token: `body` (`len` bytes, form-urlencoded) and the
    Authorization header's value (`authorization`, NULL when absent). Fills
    *outcome. Whether the client, code or refresh token exist, and whether
    the verifier matches the stored challenge, is the token worker's to
    decide: this checks what the request alone can show. */
void sb_oauth_token_validate (const char *body, size_t len, const char *authorization,
                              sb_oauth_token_outcome_t *outcome);

//  A syntactically valid revocation request (RFC 7009 §2.1): the client
//  authenticates as at /token.
#define SB_OAUTH_MAX_REVOKED_TOKEN  4096    /* bytes of the token to revoke (an access token is a JWT) */

typedef struct {
    sb_oauth_auth_t auth;
    char client_id [SB_OAUTH_MAX_CLIENT_ID + 1];
    char client_secret [SB_OAUTH_MAX_SECRET + 1];       /* "" for AUTH_NONE */
    char token [SB_OAUTH_MAX_REVOKED_TOKEN + 1];
    char token_type_hint [32];                          /* "" when absent; any value is only a hint */
} sb_oauth_revoke_request_t;

typedef struct {
    sb_oauth_kind_t kind;
    union {
        sb_oauth_revoke_request_t request;  /* kind == SB_OAUTH_VALID */
        sb_oauth_error_t error;             /* kind == SB_OAUTH_REFUSED */
    };
} sb_oauth_revoke_outcome_t;

/*  Validates a POST /revoke: the form `body` and the Authorization header
    (NULL when absent), with /token's client authentication rules; `token`
    is required (invalid_request). A hint the server does not know is
    ignored (§2.1: the server searches every token type it has). */
void sb_oauth_revoke_validate (const char *body, size_t len, const char *authorization,
                               sb_oauth_revoke_outcome_t *outcome);

/*  Reads an Authorization header "Basic <base64(id:secret)>" whose id and
    secret are each form-urlencoded (RFC 6749 §2.3.1) into the buffers.
    Returns 0, or -1 when it is not Basic, not strict standard base64, has
    no ':', an empty id, a bad escape, or a part does not fit. */
int sb_oauth_basic_parse (const char *authorization, char *client_id, size_t id_size,
                          char *secret, size_t secret_size)
    SB_MUST_USE;

//  --------------------------------------------------------------------
//  /authorize

//  The registered client, as the token worker returns it; borrowed.
typedef struct {
    const char *client_id;
    const char *const *redirect_uris;   /* registered, compared exactly */
    size_t redirect_uri_count;
    const char *scope;                  /* registered scopes, space-separated; NULL: none */
    bool chatgpt;                       /* ChatGPT's redirect URIs are accepted too */
} sb_oauth_client_t;

//  What the server offers; borrowed.
typedef struct {
    const char *scopes_supported;       /* space-separated */
    const char *default_scope;          /* for a client with none registered */
    const char *resource;               /* the one resource served, or NULL: any absolute URI */
} sb_oauth_policy_t;

//  A valid authorization request.
typedef struct {
    char client_id [SB_OAUTH_MAX_CLIENT_ID + 1];
    char redirect_uri [SB_OAUTH_MAX_URI + 1];       /* the one to send the code to */
    char state [SB_OAUTH_MAX_STATE + 1];            /* "" when the client sent none */
    char code_challenge [SB_OAUTH_PKCE_MAX + 1];    /* S256 */
    char scope [SB_OAUTH_MAX_SCOPE + 1];            /* asked, or the registered/default */
    char resource [SB_OAUTH_MAX_URI + 1];           /* "" when absent */
} sb_oauth_authorize_request_t;

typedef struct {
    sb_oauth_kind_t kind;
    union {
        sb_oauth_authorize_request_t request;   /* kind == SB_OAUTH_VALID */
        struct {
            sb_oauth_error_t error;             /* error.redirect says where it goes */
            char redirect_uri [SB_OAUTH_MAX_URI + 1];   /* when error.redirect */
            char state [SB_OAUTH_MAX_STATE + 1];        /* when error.redirect */
        } refused;                              /* kind == SB_OAUTH_REFUSED */
    };
} sb_oauth_authorize_outcome_t;

/*  Reads client_id from an /authorize query (so the shell can look the
    client up). Returns 0, or -1 when the query is malformed or has none. */
int sb_oauth_authorize_client_id (const char *query, size_t len, char *client_id, size_t size)
    SB_MUST_USE;

/*  Validates GET /authorize's query (`len` bytes) against the registered
    `client` (NULL: unknown) and the server's `policy`. Errors about the
    client or the redirect URI are shown on a page (error.redirect false:
    RFC 6749 §4.1.2.1 forbids redirecting them); the others go back to the
    validated redirect URI with the state. */
void sb_oauth_authorize_validate (const char *query, size_t len, const sb_oauth_client_t *client,
                                  const sb_oauth_policy_t *policy,
                                  sb_oauth_authorize_outcome_t *outcome);

/*  True when `uri` is one of ChatGPT's redirect URIs. */
bool sb_oauth_chatgpt_redirect (const char *uri);

/*  True when `scope` is 1*NQCHAR tokens separated by single spaces
    (RFC 6749 §3.3) and no longer than SB_OAUTH_MAX_SCOPE. */
bool sb_oauth_scope_valid (const char *scope);

/*  True when every token of `scope` is a token of `allowed`. */
bool sb_oauth_scope_subset (const char *scope, const char *allowed);

/*  True when `uri` is an absolute URI (scheme ":" rest) without fragment,
    of visible ASCII only (RFC 8707 §2 `resource`). */
bool sb_oauth_absolute_uri (const char *uri);

//  --------------------------------------------------------------------
//  PKCE (RFC 7636)

/*  True when `text` is 43–128 unreserved characters (a code verifier or an
    S256 challenge's alphabet). */
bool sb_oauth_pkce_syntax (const char *text);

/*  The S256 challenge of `verifier` into `challenge` (base64url of its
    SHA-256, no padding). Returns 0, or -1 when the verifier's syntax is
    wrong or hashing failed. */
int sb_oauth_pkce_challenge (const char *verifier, char challenge [SB_OAUTH_PKCE_S256_LEN + 1])
    SB_MUST_USE;

/*  True when `verifier` is well formed and its S256 challenge equals
    `challenge`, compared in constant time (sb_crypto_equal). */
bool sb_oauth_pkce_verify (const char *verifier, const char *challenge);

#endif
