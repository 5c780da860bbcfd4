/*  oauth/sb_oauth.c — /token and /authorize requests validated into
    outcomes, client_secret_basic, scopes and PKCE S256 (see sb_oauth.h).
    Each check that refuses names the RFC error and writes one sentence;
    the first failing check decides, in the order RFC 6749 §4.1.2.1 asks
    for /authorize (client and redirect URI before anything redirectable). */
#include "sb_oauth.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sb_crypto.h"
#include "sb_oauth_form.h"

const char *
sb_oauth_code_name (sb_oauth_code_t code)
{
    switch (code) {
        case SB_OAUTH_INVALID_REQUEST:              return "invalid_request";
        case SB_OAUTH_INVALID_CLIENT:               return "invalid_client";
        case SB_OAUTH_INVALID_GRANT:                return "invalid_grant";
        case SB_OAUTH_UNAUTHORIZED_CLIENT:          return "unauthorized_client";
        case SB_OAUTH_UNSUPPORTED_GRANT_TYPE:       return "unsupported_grant_type";
        case SB_OAUTH_UNSUPPORTED_RESPONSE_TYPE:    return "unsupported_response_type";
        case SB_OAUTH_INVALID_SCOPE:                return "invalid_scope";
        case SB_OAUTH_INVALID_TARGET:               return "invalid_target";
        case SB_OAUTH_INVALID_REDIRECT_URI:         return "invalid_redirect_uri";
        case SB_OAUTH_INVALID_CLIENT_METADATA:      return "invalid_client_metadata";
        case SB_OAUTH_ACCESS_DENIED:                return "access_denied";
    }
    return "invalid_request";
}

//  Fills `error`: 400 unless the code is invalid_client (401).
static void
s_error (sb_oauth_error_t *error, sb_oauth_code_t code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_error (sb_oauth_error_t *error, sb_oauth_code_t code, const char *format, ...)
{
    memset (error, 0, sizeof *error);
    error->code = code;
    error->status = code == SB_OAUTH_INVALID_CLIENT? 401: 400;
    va_list args;
    va_start (args, format);
    vsnprintf (error->description, sizeof error->description, format, args);
    va_end (args);
}

//  Copies `value` (NULL: "") into `out` of `size` bytes; -1 when too long.
static int
s_copy (char *out, size_t size, const char *value)
{
    if (!value)
        value = "";
    size_t len = strlen (value);
    if (len >= size)
        return -1;
    memcpy (out, value, len + 1);
    return 0;
}

//  Strict standard base64 (RFC 4648 §4, padded) into `out`.
static int
s_base64_decode (const char *in, size_t len, char *out, size_t out_size, size_t *out_len)
{
    static const char alphabet [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len == 0 || len % 4)
        return -1;
    size_t pad = in [len - 1] == '='? (in [len - 2] == '='? 2: 1): 0;
    size_t used = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned int bits = 0;
        for (size_t j = 0; j < 4; j++) {
            char c = in [i + j];
            unsigned int sextet = 0;
            if (c == '=' && i + j >= len - pad)
                sextet = 0;
            else {
                const char *at = c? strchr (alphabet, c): NULL;
                if (!at)
                    return -1;
                sextet = (unsigned int) (at - alphabet);
            }
            bits = bits << 6 | sextet;
        }
        size_t bytes = i + 4 == len? 3 - pad: 3;
        //  Canonical: the bits under the padding are zero.
        if ((pad == 1 && i + 4 == len && (bits & 0xff)) || (pad == 2 && i + 4 == len && (bits & 0xffff)))
            return -1;
        for (size_t k = 0; k < bytes; k++) {
            if (used + 1 >= out_size)
                return -1;
            out [used++] = (char) (bits >> (16 - 8 * k));
        }
    }
    out [used] = 0;
    *out_len = used;
    return 0;
}

int
sb_oauth_basic_parse (const char *authorization, char *client_id, size_t id_size,
                      char *secret, size_t secret_size)
{
    if (strncasecmp (authorization, "Basic ", 6) != 0)
        return -1;
    const char *text = authorization + 6;
    while (*text == ' ')
        text++;
    size_t len = strlen (text);
    while (len && text [len - 1] == ' ')
        len--;
    if (len > SB_OAUTH_MAX_AUTHORIZATION)
        return -1;
    char decoded [SB_OAUTH_MAX_AUTHORIZATION];
    size_t decoded_len;
    if (s_base64_decode (text, len, decoded, sizeof decoded, &decoded_len))
        return -1;
    if (memchr (decoded, 0, decoded_len))
        return -1;
    const char *colon = strchr (decoded, ':');
    if (!colon || colon == decoded)
        return -1;
    size_t out_len;
    if (sb_oauth_form_decode (decoded, (size_t) (colon - decoded), client_id, id_size, &out_len)
    ||  sb_oauth_form_decode (colon + 1, strlen (colon + 1), secret, secret_size, &out_len))
        return -1;
    return 0;
}

//  True when `text` is a non-empty run of visible ASCII (VSCHAR, %x20-7E
//  without the space), as codes, tokens and client IDs are.
static bool
s_vschar (const char *text)
{
    if (!*text)
        return false;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

//  Copies the form's `name` into `out` or refuses with invalid_request.
static int
s_field (const sb_oauth_form_t *form, const char *name, bool required, char *out, size_t size,
         sb_oauth_error_t *error)
{
    const char *value = sb_oauth_form_get (form, name);
    if (!value) {
        out [0] = 0;
        if (!required)
            return 0;
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The %s parameter is missing.", name);
        return -1;
    }
    if (s_copy (out, size, value)) {
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The %s parameter is too long.", name);
        return -1;
    }
    return 0;
}

static int
s_form (const char *text, size_t len, sb_oauth_form_t **form_p, sb_oauth_error_t *error)
{
    char bad_name [SB_OAUTH_MAX_FORM_NAME + 1];
    sb_oauth_form_rc_t rc = sb_oauth_form_parse (text, len, form_p, bad_name, sizeof bad_name);
    if (rc == SB_OAUTH_FORM_OK)
        return 0;
    if (bad_name [0] && s_vschar (bad_name))
        s_error (error, SB_OAUTH_INVALID_REQUEST, "%s The parameter: %s.",
                 sb_oauth_form_strerror (rc), bad_name);
    else
        s_error (error, SB_OAUTH_INVALID_REQUEST, "%s", sb_oauth_form_strerror (rc));
    return -1;
}

//  The client authentication part of a token request.
static int
s_token_client (const sb_oauth_form_t *form, const char *authorization,
                sb_oauth_token_request_t *request, sb_oauth_error_t *error)
{
    const char *form_secret = sb_oauth_form_get (form, "client_secret");
    const char *form_id = sb_oauth_form_get (form, "client_id");
    if (authorization) {
        if (strncasecmp (authorization, "Basic ", 6) != 0) {
            s_error (error, SB_OAUTH_INVALID_CLIENT,
                     "The token endpoint accepts only Basic client authentication in the Authorization header.");
            error->basic_challenge = true;
            return -1;
        }
        if (form_secret) {
            s_error (error, SB_OAUTH_INVALID_REQUEST,
                     "The client authenticated twice: client_secret_basic and client_secret_post.");
            return -1;
        }
        if (sb_oauth_basic_parse (authorization, request->client_id, sizeof request->client_id,
                                  request->client_secret, sizeof request->client_secret)) {
            s_error (error, SB_OAUTH_INVALID_CLIENT, "The Basic credentials are malformed.");
            error->basic_challenge = true;
            return -1;
        }
        if (form_id && strcmp (form_id, request->client_id) != 0) {
            s_error (error, SB_OAUTH_INVALID_REQUEST,
                     "The client_id parameter differs from the client authenticated.");
            return -1;
        }
        request->auth = SB_OAUTH_AUTH_BASIC;
    }
    else {
        if (!form_id) {
            s_error (error, SB_OAUTH_INVALID_CLIENT,
                     "The client is not identified: send client_id or authenticate.");
            return -1;
        }
        if (s_field (form, "client_id", true, request->client_id, sizeof request->client_id, error)
        ||  s_field (form, "client_secret", false, request->client_secret,
                     sizeof request->client_secret, error))
            return -1;
        request->auth = form_secret? SB_OAUTH_AUTH_POST: SB_OAUTH_AUTH_NONE;
    }
    if (!s_vschar (request->client_id)) {
        s_error (error, SB_OAUTH_INVALID_CLIENT, "The client_id is not a valid client identifier.");
        return -1;
    }
    return 0;
}

void
sb_oauth_token_validate (const char *body, size_t len, const char *authorization,
                         sb_oauth_token_outcome_t *outcome)
{
    memset (outcome, 0, sizeof *outcome);
    outcome->kind = SB_OAUTH_REFUSED;
    sb_oauth_error_t *error = &outcome->error;
    sb_oauth_token_request_t request;
    memset (&request, 0, sizeof request);
    sb_oauth_form_t *form = NULL;
    if (s_form (body, len, &form, error))
        return;
    const char *grant = sb_oauth_form_get (form, "grant_type");
    if (!grant) {
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The grant_type parameter is missing.");
        goto out;
    }
    if (strcmp (grant, "authorization_code") == 0)
        request.grant = SB_OAUTH_GRANT_AUTHORIZATION_CODE;
    else
    if (strcmp (grant, "refresh_token") == 0)
        request.grant = SB_OAUTH_GRANT_REFRESH_TOKEN;
    else {
        s_error (error, SB_OAUTH_UNSUPPORTED_GRANT_TYPE,
                 "Only the authorization_code and refresh_token grants are supported.");
        goto out;
    }
    if (s_token_client (form, authorization, &request, error))
        goto out;
    if (s_field (form, "resource", false, request.resource, sizeof request.resource, error))
        goto out;
    if (request.resource [0] && !sb_oauth_absolute_uri (request.resource)) {
        s_error (error, SB_OAUTH_INVALID_TARGET,
                 "The resource must be an absolute URI without a fragment.");
        goto out;
    }
    if (request.grant == SB_OAUTH_GRANT_AUTHORIZATION_CODE) {
        if (s_field (form, "code", true, request.code, sizeof request.code, error)
        ||  s_field (form, "redirect_uri", true, request.redirect_uri, sizeof request.redirect_uri, error)
        ||  s_field (form, "code_verifier", true, request.code_verifier,
                     sizeof request.code_verifier, error))
            goto out;
        if (!s_vschar (request.code)) {
            s_error (error, SB_OAUTH_INVALID_GRANT, "The authorization code is malformed.");
            goto out;
        }
        if (!sb_oauth_pkce_syntax (request.code_verifier)) {
            s_error (error, SB_OAUTH_INVALID_REQUEST,
                     "The code_verifier must be 43 to 128 unreserved characters.");
            goto out;
        }
    }
    else {
        if (s_field (form, "refresh_token", true, request.refresh_token,
                     sizeof request.refresh_token, error)
        ||  s_field (form, "scope", false, request.scope, sizeof request.scope, error))
            goto out;
        if (!s_vschar (request.refresh_token)) {
            s_error (error, SB_OAUTH_INVALID_GRANT, "The refresh token is malformed.");
            goto out;
        }
        if (request.scope [0] && !sb_oauth_scope_valid (request.scope)) {
            s_error (error, SB_OAUTH_INVALID_SCOPE, "The scope is malformed.");
            goto out;
        }
    }
    outcome->kind = SB_OAUTH_VALID;
    outcome->request = request;
out:
    sb_oauth_form_destroy (&form);
}

void
sb_oauth_revoke_validate (const char *body, size_t len, const char *authorization,
                          sb_oauth_revoke_outcome_t *outcome)
{
    memset (outcome, 0, sizeof *outcome);
    outcome->kind = SB_OAUTH_REFUSED;
    sb_oauth_error_t *error = &outcome->error;
    sb_oauth_form_t *form = NULL;
    if (s_form (body, len, &form, error))
        return;
    //  s_token_client fills the client fields of a token request: borrow one.
    sb_oauth_token_request_t *client = calloc (1, sizeof *client);
    sb_oauth_revoke_request_t *request = calloc (1, sizeof *request);
    if (!client || !request)
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The server is out of memory.");
    else
    if (s_token_client (form, authorization, client, error) == 0
    &&  s_field (form, "token", true, request->token, sizeof request->token, error) == 0
    &&  s_field (form, "token_type_hint", false, request->token_type_hint,
                 sizeof request->token_type_hint, error) == 0) {
        request->auth = client->auth;
        memcpy (request->client_id, client->client_id, sizeof request->client_id);
        memcpy (request->client_secret, client->client_secret, sizeof request->client_secret);
        outcome->kind = SB_OAUTH_VALID;
        outcome->request = *request;
    }
    if (client)
        sb_crypto_wipe (client->client_secret, sizeof client->client_secret);
    if (request)
        sb_crypto_wipe (request->client_secret, sizeof request->client_secret);
    free (client);
    free (request);
    sb_oauth_form_destroy (&form);
}

//  --------------------------------------------------------------------
//  Scopes, URIs

static bool
s_nqchar (unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

bool
sb_oauth_scope_valid (const char *scope)
{
    size_t len = strlen (scope);
    if (len == 0 || len > SB_OAUTH_MAX_SCOPE || scope [0] == ' ' || scope [len - 1] == ' ')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) scope [i];
        if (c == ' ') {
            if (scope [i + 1] == ' ')
                return false;
        }
        else
        if (!s_nqchar (c))
            return false;
    }
    return true;
}

//  True when the `len` bytes at `token` are one of `list`'s tokens.
static bool
s_scope_has (const char *list, const char *token, size_t len)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn (p, " ");
        if (n == len && n && memcmp (p, token, n) == 0)
            return true;
        p += n;
    }
    return false;
}

bool
sb_oauth_scope_subset (const char *scope, const char *allowed)
{
    const char *p = scope;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn (p, " ");
        if (n && !s_scope_has (allowed, p, n))
            return false;
        p += n;
    }
    return true;
}

bool
sb_oauth_absolute_uri (const char *uri)
{
    size_t len = strlen (uri);
    if (len == 0 || len > SB_OAUTH_MAX_URI)
        return false;
    const unsigned char *p = (const unsigned char *) uri;
    if (!((p [0] >= 'a' && p [0] <= 'z') || (p [0] >= 'A' && p [0] <= 'Z')))
        return false;
    size_t i = 1;
    while ((p [i] >= 'a' && p [i] <= 'z') || (p [i] >= 'A' && p [i] <= 'Z')
       ||  (p [i] >= '0' && p [i] <= '9') || p [i] == '+' || p [i] == '-' || p [i] == '.')
        i++;
    if (p [i] != ':' || p [i + 1] == 0)
        return false;
    for (; i < len; i++)
        if (p [i] < 0x21 || p [i] > 0x7e || p [i] == '#')
            return false;
    return true;
}

bool
sb_oauth_chatgpt_redirect (const char *uri)
{
    if (strcmp (uri, SB_OAUTH_CHATGPT_REDIRECT) == 0)
        return true;
    size_t prefix = strlen (SB_OAUTH_CHATGPT_PREFIX);
    if (strncmp (uri, SB_OAUTH_CHATGPT_PREFIX, prefix) != 0)
        return false;
    const char *id = uri + prefix;
    size_t len = strlen (id);
    if (len == 0 || len > SB_OAUTH_CHATGPT_MAX_ID)
        return false;
    for (const char *p = id; *p; p++)
        if (!(sb_oauth_unreserved (*p) && *p != '.' && *p != '~'))
            return false;
    return true;
}

//  --------------------------------------------------------------------
//  /authorize

int
sb_oauth_authorize_client_id (const char *query, size_t len, char *client_id, size_t size)
{
    sb_oauth_form_t *form = NULL;
    if (sb_oauth_form_parse (query, len, &form, NULL, 0))
        return -1;
    int rc = s_copy (client_id, size, sb_oauth_form_get (form, "client_id"));
    if (rc == 0 && !client_id [0])
        rc = -1;
    sb_oauth_form_destroy (&form);
    return rc;
}

//  The redirect URI the request names, checked against the client: its
//  absence is fine only when exactly one is registered (RFC 6749 §3.1.2.3).
static int
s_authorize_redirect (const sb_oauth_form_t *form, const sb_oauth_client_t *client,
                      char *out, size_t size, sb_oauth_error_t *error)
{
    const char *asked = sb_oauth_form_get (form, "redirect_uri");
    if (!asked) {
        if (client->redirect_uri_count == 1 && !s_copy (out, size, client->redirect_uris [0]))
            return 0;
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The redirect_uri parameter is missing.");
        return -1;
    }
    bool registered = false;
    for (size_t i = 0; i < client->redirect_uri_count && !registered; i++)
        registered = strcmp (asked, client->redirect_uris [i]) == 0;
    if (!registered && client->chatgpt)
        registered = sb_oauth_chatgpt_redirect (asked);
    if (!registered) {
        s_error (error, SB_OAUTH_INVALID_REQUEST,
                 "The redirect_uri is not one this client registered.");
        return -1;
    }
    if (s_copy (out, size, asked)) {
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The redirect_uri parameter is too long.");
        return -1;
    }
    return 0;
}

//  The checks whose errors go back to the client's redirect URI.
static int
s_authorize_request (const sb_oauth_form_t *form, const sb_oauth_client_t *client,
                     const sb_oauth_policy_t *policy, sb_oauth_authorize_request_t *request,
                     sb_oauth_error_t *error)
{
    const char *response_type = sb_oauth_form_get (form, "response_type");
    if (!response_type) {
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The response_type parameter is missing.");
        return -1;
    }
    if (strcmp (response_type, "code") != 0) {
        s_error (error, SB_OAUTH_UNSUPPORTED_RESPONSE_TYPE, "Only response_type=code is supported.");
        return -1;
    }
    const char *challenge = sb_oauth_form_get (form, "code_challenge");
    const char *method = sb_oauth_form_get (form, "code_challenge_method");
    if (!challenge) {
        s_error (error, SB_OAUTH_INVALID_REQUEST,
                 "PKCE is required: send code_challenge with code_challenge_method=S256.");
        return -1;
    }
    if (!method || strcmp (method, "S256") != 0) {
        s_error (error, SB_OAUTH_INVALID_REQUEST,
                 "The code_challenge_method must be S256; plain is not accepted.");
        return -1;
    }
    if (!sb_oauth_pkce_syntax (challenge)
    ||  s_copy (request->code_challenge, sizeof request->code_challenge, challenge)) {
        s_error (error, SB_OAUTH_INVALID_REQUEST,
                 "The code_challenge must be 43 to 128 unreserved characters.");
        return -1;
    }
    //  The scope: asked, or the client's registered, or the default
    //  (ChatGPT omits it when a user reconnects).
    const char *registered = client->scope && client->scope [0]? client->scope: NULL;
    const char *allowed = registered? registered: policy->scopes_supported;
    const char *asked = sb_oauth_form_get (form, "scope");
    if (asked) {
        if (!sb_oauth_scope_valid (asked)) {
            s_error (error, SB_OAUTH_INVALID_SCOPE, "The scope is malformed.");
            return -1;
        }
        if (!sb_oauth_scope_subset (asked, policy->scopes_supported)
        ||  !sb_oauth_scope_subset (asked, allowed)) {
            s_error (error, SB_OAUTH_INVALID_SCOPE,
                     "The scope asks for something this client may not have.");
            return -1;
        }
    }
    else
        asked = registered? registered: policy->default_scope;
    if (s_copy (request->scope, sizeof request->scope, asked)) {
        s_error (error, SB_OAUTH_INVALID_SCOPE, "The scope is too long.");
        return -1;
    }
    if (s_field (form, "resource", false, request->resource, sizeof request->resource, error))
        return -1;
    if (request->resource [0]) {
        if (!sb_oauth_absolute_uri (request->resource)) {
            s_error (error, SB_OAUTH_INVALID_TARGET,
                     "The resource must be an absolute URI without a fragment.");
            return -1;
        }
        if (policy->resource && strcmp (request->resource, policy->resource) != 0) {
            s_error (error, SB_OAUTH_INVALID_TARGET, "The resource is not served here.");
            return -1;
        }
    }
    return 0;
}

void
sb_oauth_authorize_validate (const char *query, size_t len, const sb_oauth_client_t *client,
                             const sb_oauth_policy_t *policy, sb_oauth_authorize_outcome_t *outcome)
{
    memset (outcome, 0, sizeof *outcome);
    outcome->kind = SB_OAUTH_REFUSED;
    sb_oauth_error_t *error = &outcome->refused.error;
    sb_oauth_authorize_request_t *request = malloc (sizeof *request);
    sb_oauth_form_t *form = NULL;
    if (!request) {
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The server ran out of memory.");
        return;
    }
    memset (request, 0, sizeof *request);
    //  Shown on a page: a malformed query, an unknown client, a redirect
    //  URI that is missing or not registered.
    if (s_form (query, len, &form, error))
        goto out;
    const char *client_id = sb_oauth_form_get (form, "client_id");
    if (!client_id) {
        s_error (error, SB_OAUTH_INVALID_REQUEST, "The client_id parameter is missing.");
        goto out;
    }
    if (!client || !client->client_id || strcmp (client_id, client->client_id) != 0) {
        s_error (error, SB_OAUTH_INVALID_CLIENT, "The client is not registered.");
        error->status = 400;        //  a page, not a 401 with a challenge
        goto out;
    }
    if (s_copy (request->client_id, sizeof request->client_id, client_id)
    ||  s_authorize_redirect (form, client, request->redirect_uri, sizeof request->redirect_uri, error))
        goto out;
    //  From here on errors go back to the client, with its state.
    if (s_field (form, "state", false, request->state, sizeof request->state, error)) {
        goto out;       //  a state we cannot return whole: shown on the page
    }
    if (s_authorize_request (form, client, policy, request, error)) {
        error->redirect = true;
        memcpy (outcome->refused.redirect_uri, request->redirect_uri, sizeof request->redirect_uri);
        memcpy (outcome->refused.state, request->state, sizeof request->state);
        goto out;
    }
    outcome->kind = SB_OAUTH_VALID;
    outcome->request = *request;
out:
    sb_oauth_form_destroy (&form);
    free (request);
}

//  --------------------------------------------------------------------
//  PKCE

bool
sb_oauth_pkce_syntax (const char *text)
{
    size_t len = strnlen (text, SB_OAUTH_PKCE_MAX + 1);
    if (len < SB_OAUTH_PKCE_MIN || len > SB_OAUTH_PKCE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!sb_oauth_unreserved (text [i]))
            return false;
    return true;
}

int
sb_oauth_pkce_challenge (const char *verifier, char challenge [SB_OAUTH_PKCE_S256_LEN + 1])
{
    if (!sb_oauth_pkce_syntax (verifier))
        return -1;
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!EVP_Digest (verifier, strlen (verifier), digest, &digest_len, EVP_sha256 (), NULL)
    ||  digest_len != 32)
        return -1;
    char *encoded = sb_base64url_encode (digest, digest_len);
    if (!encoded)
        return -1;
    int rc = s_copy (challenge, SB_OAUTH_PKCE_S256_LEN + 1, encoded);
    free (encoded);
    return rc;
}

bool
sb_oauth_pkce_verify (const char *verifier, const char *challenge)
{
    char computed [SB_OAUTH_PKCE_S256_LEN + 1];
    if (sb_oauth_pkce_challenge (verifier, computed))
        return false;
    if (strnlen (challenge, SB_OAUTH_PKCE_S256_LEN + 1) != SB_OAUTH_PKCE_S256_LEN)
        return false;
    return sb_crypto_equal (computed, challenge, SB_OAUTH_PKCE_S256_LEN);
}
