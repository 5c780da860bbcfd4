/*  tests/fuzz/fuzz_oauth_form.c — fuzz target for the OAuth core's
    decoders that face the network (oauth/): the form parser of /token,
    /revoke and /authorize, the /token and /authorize validators behind it,
    client_secret_basic, and registration bodies.

    Each input is read as a form, as a /token body (with no Authorization
    header and with the input's first line as one), as an /authorize query
    for a fixed client, and as a registration body. Invariants: a parsed
    form keeps every limit, has no name twice, and written out again with
    sb_oauth_query_append parses back to the same pairs; an outcome is
    exactly one of its kinds, a refusal has a known code, a 400 or 401 and
    a sentence; a valid /token request has what its grant needs (a well
    formed PKCE verifier for codes); a valid /authorize request has a
    registered (or ChatGPT's) redirect URI, an S256-shaped challenge and
    scopes the client may have; a redirected error never goes to an
    unregistered URI. A violation aborts.

    Seeds (tests/fuzz/corpus/oauth_form): good /token bodies for both
    grants, /authorize queries as ChatGPT sends them, a registration body,
    and near misses (bad escapes, repeats, plain PKCE). With -DSB_FUZZ=ON
    (clang) this is a libFuzzer target; otherwise tests/fuzz/sb_fuzz_replay.c
    replays the corpus on every ctest run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_oauth.h"
#include "sb_oauth_form.h"
#include "sb_oauth_meta.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_oauth_form: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

#define S_SCOPES "mcp:tools mcp:write"

static const char *const s_uris [] = { "https://app.example.com/cb", "http://127.0.0.1:8976/cb" };
static const sb_oauth_client_t s_client = {
    .client_id = "chatgpt", .redirect_uris = s_uris, .redirect_uri_count = 2, .chatgpt = true
};
static const sb_oauth_policy_t s_policy = { .scopes_supported = S_SCOPES, .default_scope = "mcp:tools" };

static void
s_check_error (const sb_oauth_error_t *error)
{
    CHECK (error->code >= SB_OAUTH_INVALID_REQUEST && error->code <= SB_OAUTH_INVALID_CLIENT_METADATA);
    CHECK (error->status == 400 || error->status == 401);
    size_t len = strnlen (error->description, sizeof error->description);
    CHECK (len > 0 && len < sizeof error->description);
}

//  The form: limits, no repeats, and a round trip through the escaper.
static void
s_form (const char *text, size_t size)
{
    sb_oauth_form_t *form = NULL;
    char bad [SB_OAUTH_MAX_FORM_NAME + 1];
    sb_oauth_form_rc_t rc = sb_oauth_form_parse (text, size, &form, bad, sizeof bad);
    CHECK (rc <= SB_OAUTH_FORM_NO_MEMORY);
    CHECK ((rc == SB_OAUTH_FORM_OK) == (form != NULL));
    CHECK (strnlen (bad, sizeof bad) < sizeof bad);
    if (!form)
        return;
    size_t count = sb_oauth_form_size (form);
    CHECK (count <= SB_OAUTH_MAX_FORM_PARAMS);
    char *again = NULL;
    size_t again_len = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = sb_oauth_form_name (form, i);
        const char *value = sb_oauth_form_value (form, i);
        CHECK (name && value && name [0]);
        CHECK (strlen (name) <= SB_OAUTH_MAX_FORM_NAME && strlen (value) <= SB_OAUTH_MAX_FORM_VALUE);
        const char *got = sb_oauth_form_get (form, name);
        CHECK (value [0]? got == value: got == NULL);
        for (size_t j = 0; j < i; j++)
            CHECK (strcmp (sb_oauth_form_name (form, j), name) != 0);
        CHECK (sb_oauth_query_append (&again, &again_len, 4 * SB_OAUTH_MAX_FORM_BODY,
                                      i? "&": "", false) == 0);
        CHECK (sb_oauth_query_append (&again, &again_len, 4 * SB_OAUTH_MAX_FORM_BODY, name, true) == 0);
        CHECK (sb_oauth_query_append (&again, &again_len, 4 * SB_OAUTH_MAX_FORM_BODY, "=", false) == 0);
        CHECK (sb_oauth_query_append (&again, &again_len, 4 * SB_OAUTH_MAX_FORM_BODY, value, true) == 0);
    }
    //  Escaped, the text may grow past the body limit; below it, it must
    //  parse back to the same pairs.
    if (again && again_len <= SB_OAUTH_MAX_FORM_BODY) {
        sb_oauth_form_t *round = NULL;
        CHECK (sb_oauth_form_parse (again, again_len, &round, NULL, 0) == SB_OAUTH_FORM_OK);
        CHECK (sb_oauth_form_size (round) == count);
        for (size_t i = 0; i < count; i++) {
            CHECK (strcmp (sb_oauth_form_name (round, i), sb_oauth_form_name (form, i)) == 0);
            CHECK (strcmp (sb_oauth_form_value (round, i), sb_oauth_form_value (form, i)) == 0);
        }
        sb_oauth_form_destroy (&round);
    }
    free (again);
    sb_oauth_form_destroy (&form);
    CHECK (form == NULL);
}

static void
s_token (const char *text, size_t size, const char *authorization)
{
    static sb_oauth_token_outcome_t outcome;
    sb_oauth_token_validate (text, size, authorization, &outcome);
    CHECK (outcome.kind == SB_OAUTH_VALID || outcome.kind == SB_OAUTH_REFUSED);
    if (outcome.kind == SB_OAUTH_REFUSED) {
        s_check_error (&outcome.error);
        CHECK (!outcome.error.redirect);
        return;
    }
    const sb_oauth_token_request_t *request = &outcome.request;
    CHECK (request->client_id [0]);
    CHECK ((request->auth == SB_OAUTH_AUTH_BASIC) == (authorization != NULL));
    if (request->auth == SB_OAUTH_AUTH_NONE)
        CHECK (request->client_secret [0] == 0);
    if (request->grant == SB_OAUTH_GRANT_AUTHORIZATION_CODE)
        CHECK (request->code [0] && request->redirect_uri [0]
            && sb_oauth_pkce_syntax (request->code_verifier));
    else {
        CHECK (request->grant == SB_OAUTH_GRANT_REFRESH_TOKEN);
        CHECK (request->refresh_token [0]);
        CHECK (!request->scope [0] || sb_oauth_scope_valid (request->scope));
    }
    CHECK (!request->resource [0] || sb_oauth_absolute_uri (request->resource));
}

//  /revoke: the same client rules as /token, and a token.
static void
s_revoke (const char *text, size_t size, const char *authorization)
{
    static sb_oauth_revoke_outcome_t outcome;
    sb_oauth_revoke_validate (text, size, authorization, &outcome);
    CHECK (outcome.kind == SB_OAUTH_VALID || outcome.kind == SB_OAUTH_REFUSED);
    if (outcome.kind == SB_OAUTH_REFUSED) {
        s_check_error (&outcome.error);
        CHECK (!outcome.error.redirect);
        return;
    }
    const sb_oauth_revoke_request_t *request = &outcome.request;
    CHECK (request->client_id [0] && request->token [0]);
    CHECK ((request->auth == SB_OAUTH_AUTH_BASIC) == (authorization != NULL));
    if (request->auth == SB_OAUTH_AUTH_NONE)
        CHECK (request->client_secret [0] == 0);
}

static bool
s_registered (const char *uri)
{
    for (size_t i = 0; i < s_client.redirect_uri_count; i++)
        if (strcmp (uri, s_uris [i]) == 0)
            return true;
    return sb_oauth_chatgpt_redirect (uri);
}

static void
s_authorize (const char *text, size_t size)
{
    static sb_oauth_authorize_outcome_t outcome;
    sb_oauth_authorize_validate (text, size, &s_client, &s_policy, &outcome);
    CHECK (outcome.kind == SB_OAUTH_VALID || outcome.kind == SB_OAUTH_REFUSED);
    if (outcome.kind == SB_OAUTH_REFUSED) {
        s_check_error (&outcome.refused.error);
        if (outcome.refused.error.redirect) {
            CHECK (s_registered (outcome.refused.redirect_uri));
            char *url = sb_oauth_error_redirect (outcome.refused.redirect_uri, &outcome.refused.error,
                                                 outcome.refused.state, "https://auth.example.com");
            CHECK (url && strncmp (url, outcome.refused.redirect_uri,
                                   strlen (outcome.refused.redirect_uri)) == 0);
            free (url);
        }
        else
            CHECK (outcome.refused.redirect_uri [0] == 0);
        return;
    }
    const sb_oauth_authorize_request_t *request = &outcome.request;
    CHECK (strcmp (request->client_id, "chatgpt") == 0);
    CHECK (s_registered (request->redirect_uri));
    CHECK (sb_oauth_pkce_syntax (request->code_challenge));
    CHECK (sb_oauth_scope_valid (request->scope) && sb_oauth_scope_subset (request->scope, S_SCOPES));
    char *url = sb_oauth_code_redirect (request->redirect_uri, "code", request->state,
                                        "https://auth.example.com");
    CHECK (url);        //  every part is bounded well below SB_OAUTH_MAX_REDIRECT_URL
    free (url);
}

static void
s_register (const char *text, size_t size)
{
    static sb_oauth_register_outcome_t outcome;
    sb_oauth_register_validate (text, size, S_SCOPES, &outcome);
    if (outcome.kind == SB_OAUTH_REFUSED) {
        s_check_error (&outcome.error);
        CHECK (outcome.error.code == SB_OAUTH_INVALID_REDIRECT_URI
            || outcome.error.code == SB_OAUTH_INVALID_CLIENT_METADATA);
        return;
    }
    CHECK (outcome.kind == SB_OAUTH_VALID);
    const sb_oauth_client_metadata_t *metadata = &outcome.metadata;
    CHECK (metadata->redirect_uri_count >= 1 && metadata->redirect_uri_count <= SB_OAUTH_MAX_REDIRECT_URIS);
    for (size_t i = 0; i < metadata->redirect_uri_count; i++)
        CHECK (sb_oauth_redirect_uri_valid (metadata->redirect_uris [i]));
    CHECK (metadata->grants & SB_OAUTH_GRANT_BIT_CODE);
    CHECK (!metadata->scope [0] || sb_oauth_scope_subset (metadata->scope, S_SCOPES));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > SB_OAUTH_MAX_FORM_BODY + 64)
        return 0;               //  refused on length alone; nothing to learn
    char *text = malloc (size + 1);
    CHECK (text);
    memcpy (text, data, size);
    text [size] = 0;
    s_form (text, size);
    s_token (text, size, NULL);
    s_revoke (text, size, NULL);
    //  The first line as an Authorization header, the rest as the body.
    const char *newline = memchr (text, '\n', size);
    if (newline) {
        size_t header_len = (size_t) (newline - text);
        char *header = strndup (text, header_len);
        CHECK (header);
        char id [SB_OAUTH_MAX_CLIENT_ID + 1], secret [SB_OAUTH_MAX_SECRET + 1];
        if (sb_oauth_basic_parse (header, id, sizeof id, secret, sizeof secret) == 0)
            CHECK (id [0] && strlen (id) <= SB_OAUTH_MAX_CLIENT_ID);
        if (strlen (header) == header_len) {
            s_token (newline + 1, size - header_len - 1, header);
            s_revoke (newline + 1, size - header_len - 1, header);
        }
        free (header);
    }
    s_authorize (text, size);
    s_register (text, size);
    free (text);
    return 0;
}
