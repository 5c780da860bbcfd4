/*  oauth/sb_oauth_meta.h — what the authorization server publishes and
    sends back, built purely: its metadata document (RFC 8414), the
    redirects that end an authorization (code or error, with `iss` per
    RFC 9207), and dynamic client registration requests (RFC 7591)
    validated into client metadata or the RFC's error. */
#ifndef SB_OAUTH_META_H_INCLUDED
#define SB_OAUTH_META_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"
#include "sb_oauth.h"

#define SB_OAUTH_MAX_ISSUER         512     /* bytes of the issuer URL */
#define SB_OAUTH_MAX_REDIRECT_URIS  8       /* redirect URIs one client registers */
#define SB_OAUTH_MAX_CLIENT_NAME    200     /* bytes of a client_name */
#define SB_OAUTH_MAX_REGISTER_BODY  16384   /* bytes of a registration request */
#define SB_OAUTH_MAX_REDIRECT_URL   8192    /* bytes of a redirect we build */

/*  True when `issuer` may be an issuer: https://host[:port][/path] without
    query, fragment, userinfo or a trailing '/', or the same with http when
    the host is loopback (127.0.0.1, [::1], localhost). */
bool sb_oauth_issuer_valid (const char *issuer);

/*  True when `uri` is https with a host, or http on a loopback host, and
    has no fragment, no userinfo and only visible ASCII. */
bool sb_oauth_redirect_uri_valid (const char *uri);

/*  The RFC 8414 document for `issuer` offering `scopes_supported`
    (space-separated): endpoints under the issuer (/authorize, /token,
    /register, /revoke, /.well-known/jwks.json), code + S256 only, the
    two grants, the three token endpoint auth methods, iss on responses
    and Client ID Metadata Documents. A new string (caller frees), or NULL
    when the issuer is invalid or memory ran out. */
char *sb_oauth_metadata_json (const char *issuer, const char *scopes_supported)
    SB_MUST_USE;

/*  The URL that sends an authorization code back: `redirect_uri` with
    code, state (when not NULL or "") and iss appended to its query,
    query-escaped. A new string, or NULL past SB_OAUTH_MAX_REDIRECT_URL or
    when memory ran out. */
char *sb_oauth_code_redirect (const char *redirect_uri, const char *code, const char *state,
                              const char *issuer)
    SB_MUST_USE;

/*  The same for an error (error, error_description, state, iss). */
char *sb_oauth_error_redirect (const char *redirect_uri, const sb_oauth_error_t *error,
                               const char *state, const char *issuer)
    SB_MUST_USE;

//  The grants a client registers, as bits.
#define SB_OAUTH_GRANT_BIT_CODE     1u      /* authorization_code */
#define SB_OAUTH_GRANT_BIT_REFRESH  2u      /* refresh_token */

//  Validated client metadata.
typedef struct {
    size_t redirect_uri_count;
    char redirect_uris [SB_OAUTH_MAX_REDIRECT_URIS][SB_OAUTH_MAX_URI + 1];
    sb_oauth_auth_t auth;                           /* token_endpoint_auth_method */
    unsigned int grants;                            /* SB_OAUTH_GRANT_BIT_* */
    char client_name [SB_OAUTH_MAX_CLIENT_NAME + 1];/* "" when not given */
    char scope [SB_OAUTH_MAX_SCOPE + 1];            /* "" when not given */
} sb_oauth_client_metadata_t;

typedef struct {
    sb_oauth_kind_t kind;
    union {
        sb_oauth_client_metadata_t metadata;    /* kind == SB_OAUTH_VALID */
        sb_oauth_error_t error;                 /* kind == SB_OAUTH_REFUSED */
    };
} sb_oauth_register_outcome_t;

/*  Validates a POST /register body (`len` bytes of JSON) against the
    server's `scopes_supported`. RFC 7591 defaults: auth method
    client_secret_basic, grant authorization_code, response type code.
    Unknown members are ignored (§2). The outcome (large: heap it) is the
    metadata or invalid_redirect_uri / invalid_client_metadata. */
void sb_oauth_register_validate (const char *body, size_t len, const char *scopes_supported,
                                 sb_oauth_register_outcome_t *outcome);

/*  The RFC 7591 name of an auth method ("none", "client_secret_basic"…). */
const char *sb_oauth_auth_name (sb_oauth_auth_t auth);

#endif
