/*  tests/18_oauth_unit.c — unit tests of oauth/ (lib sb_oauth): the form
    parser and its limits, client_secret_basic, /token and /authorize
    requests validated into outcomes with every RFC 6749 error they give,
    ChatGPT's redirect URIs, scopes, PKCE S256 (RFC 7636 Appendix B), the
    RFC 8414 metadata, the RFC 9207 redirects and RFC 7591 registration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_oauth.h"
#include "sb_oauth_form.h"
#include "sb_oauth_meta.h"

#define VERIFIER    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"   /* RFC 7636 Appendix B */
#define CHALLENGE   "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
#define ISSUER      "https://auth.example.com"
#define SCOPES      "mcp:tools mcp:write"

//  --------------------------------------------------------------------
//  Form

static sb_oauth_form_rc_t
s_parse (const char *text, sb_oauth_form_t **form, char *bad, size_t bad_size)
{
    return sb_oauth_form_parse (text, strlen (text), form, bad, bad_size);
}

static void
test_form_decodes (void **state)
{
    sb_oauth_form_t *form = NULL;
    char bad [64];
    assert_int_equal (s_parse ("a=1+2&b=%41%2f%7E&&c&d=&e=x%3Dy=z&", &form, bad, sizeof bad),
                      SB_OAUTH_FORM_OK);
    assert_non_null (form);
    assert_int_equal (sb_oauth_form_size (form), 5);
    assert_string_equal (sb_oauth_form_get (form, "a"), "1 2");
    assert_string_equal (sb_oauth_form_get (form, "b"), "A/~");
    //  Without a value, a parameter reads as absent (RFC 6749 §3.1).
    assert_null (sb_oauth_form_get (form, "c"));
    assert_null (sb_oauth_form_get (form, "d"));
    assert_string_equal (sb_oauth_form_get (form, "e"), "x=y=z");
    assert_null (sb_oauth_form_get (form, "f"));
    assert_string_equal (sb_oauth_form_name (form, 2), "c");
    assert_string_equal (sb_oauth_form_value (form, 4), "x=y=z");
    assert_null (sb_oauth_form_name (form, 5));
    sb_oauth_form_destroy (&form);
    assert_null (form);
    sb_oauth_form_destroy (&form);

    //  An empty body is an empty form.
    assert_int_equal (sb_oauth_form_parse ("", 0, &form, NULL, 0), SB_OAUTH_FORM_OK);
    assert_int_equal (sb_oauth_form_size (form), 0);
    sb_oauth_form_destroy (&form);
    //  A name may be escaped as well.
    assert_int_equal (s_parse ("client%5Fid=x", &form, NULL, 0), SB_OAUTH_FORM_OK);
    assert_string_equal (sb_oauth_form_get (form, "client_id"), "x");
    sb_oauth_form_destroy (&form);
}

static void
test_form_refuses (void **state)
{
    sb_oauth_form_t *form = NULL;
    char bad [64];
    const char *escapes [] = { "a=%", "a=%4", "a=%zz", "a=%4g", "a=%00", "a=b%", "%=1", "a%0=1" };
    for (size_t i = 0; i < sizeof escapes / sizeof escapes [0]; i++) {
        assert_int_equal (s_parse (escapes [i], &form, bad, sizeof bad), SB_OAUTH_FORM_BAD_ESCAPE);
        assert_null (form);
    }
    assert_int_equal (s_parse ("a=1&b=2&a=3", &form, bad, sizeof bad), SB_OAUTH_FORM_REPEATED);
    assert_string_equal (bad, "a");
    //  Repeated even when one of them is empty, or escaped differently.
    assert_int_equal (s_parse ("scope=&scope=x", &form, bad, sizeof bad), SB_OAUTH_FORM_REPEATED);
    assert_int_equal (s_parse ("scope=x&sc%6Fpe=y", &form, bad, sizeof bad), SB_OAUTH_FORM_REPEATED);
    assert_string_equal (bad, "scope");
    assert_int_equal (s_parse ("=1", &form, bad, sizeof bad), SB_OAUTH_FORM_EMPTY_NAME);
    assert_null (form);
    assert_string_not_equal (sb_oauth_form_strerror (SB_OAUTH_FORM_REPEATED), "");

    //  The named limits, one past each, and each limit itself accepted.
    char *text = malloc (SB_OAUTH_MAX_FORM_BODY + 16);
    assert_non_null (text);
    memset (text, 'x', SB_OAUTH_MAX_FORM_BODY + 1);
    text [0] = 'a';
    text [1] = '=';
    assert_int_equal (sb_oauth_form_parse (text, SB_OAUTH_MAX_FORM_BODY + 1, &form, bad, sizeof bad),
                      SB_OAUTH_FORM_TOO_LONG);
    //  A value at the limit passes, one more byte does not.
    assert_int_equal (sb_oauth_form_parse (text, 2 + SB_OAUTH_MAX_FORM_VALUE, &form, bad, sizeof bad),
                      SB_OAUTH_FORM_OK);
    assert_int_equal (strlen (sb_oauth_form_get (form, "a")), SB_OAUTH_MAX_FORM_VALUE);
    sb_oauth_form_destroy (&form);
    assert_int_equal (sb_oauth_form_parse (text, 3 + SB_OAUTH_MAX_FORM_VALUE, &form, bad, sizeof bad),
                      SB_OAUTH_FORM_VALUE_TOO_LONG);
    assert_string_equal (bad, "a");
    //  A name at the limit passes, one more byte does not.
    memset (text, 'n', SB_OAUTH_MAX_FORM_NAME + 1);
    memcpy (text + SB_OAUTH_MAX_FORM_NAME, "=1", 2);
    assert_int_equal (sb_oauth_form_parse (text, SB_OAUTH_MAX_FORM_NAME + 2, &form, bad, sizeof bad),
                      SB_OAUTH_FORM_OK);
    sb_oauth_form_destroy (&form);
    memset (text, 'n', SB_OAUTH_MAX_FORM_NAME + 1);
    memcpy (text + SB_OAUTH_MAX_FORM_NAME + 1, "=1", 2);
    assert_int_equal (sb_oauth_form_parse (text, SB_OAUTH_MAX_FORM_NAME + 3, &form, bad, sizeof bad),
                      SB_OAUTH_FORM_NAME_TOO_LONG);
    //  The parameter count.
    size_t len = 0;
    for (int i = 0; i <= SB_OAUTH_MAX_FORM_PARAMS; i++)
        len += (size_t) snprintf (text + len, 16, "%sp%d=1", i? "&": "", i);
    assert_int_equal (sb_oauth_form_parse (text, len, &form, bad, sizeof bad), SB_OAUTH_FORM_TOO_MANY);
    len -= strlen ("&p32=1");
    assert_int_equal (sb_oauth_form_parse (text, len, &form, bad, sizeof bad), SB_OAUTH_FORM_OK);
    assert_int_equal (sb_oauth_form_size (form), SB_OAUTH_MAX_FORM_PARAMS);
    sb_oauth_form_destroy (&form);
    free (text);
}

static void
test_query_append (void **state)
{
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal (sb_oauth_query_append (&buf, &len, 64, "a b/é~", true), 0);
    assert_string_equal (buf, "a%20b%2F%C3%A9~");
    assert_int_equal (sb_oauth_query_append (&buf, &len, 64, "&x=", false), 0);
    assert_string_equal (buf, "a%20b%2F%C3%A9~&x=");
    assert_int_equal (sb_oauth_query_append (&buf, &len, 20, "abc", true), -1);
    assert_string_equal (buf, "a%20b%2F%C3%A9~&x=");
    free (buf);
}

//  --------------------------------------------------------------------
//  client_secret_basic

static void
test_basic (void **state)
{
    char id [64], secret [64];
    //  base64 ("my%3Aclient:s+cr%25t") — id and secret form-urlencoded.
    assert_int_equal (sb_oauth_basic_parse ("Basic bXklM0FjbGllbnQ6cytjciUyNXQ=", id, sizeof id,
                                            secret, sizeof secret), 0);
    assert_string_equal (id, "my:client");
    assert_string_equal (secret, "s cr%t");
    //  The scheme without case; an empty secret is a secret ("id:").
    assert_int_equal (sb_oauth_basic_parse ("basic aWQ6", id, sizeof id, secret, sizeof secret), 0);
    assert_string_equal (id, "id");
    assert_string_equal (secret, "");
    const char *bad [] = {
        "Bearer aWQ6c2VjcmV0",          //  not Basic
        "Basic aWQ6c2VjcmV0!",          //  not base64
        "Basic aWQ6c2VjcmV",            //  not a multiple of four
        "Basic aWQ6c2VjcmV1=",          //  non-canonical padding bits
        "Basic aWRzZWNyZXQ=",           //  "idsecret": no colon
        "Basic OnNlY3JldA==",           //  ":secret": empty id
        "Basic aWQ6JXp6",               //  "id:%zz": bad escape
        "Basic ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert_int_equal (sb_oauth_basic_parse (bad [i], id, sizeof id, secret, sizeof secret), -1);
    //  Too long for the buffers.
    assert_int_equal (sb_oauth_basic_parse ("Basic aWQ6c2VjcmV0", id, 2, secret, sizeof secret), -1);
}

//  --------------------------------------------------------------------
//  /token

static sb_oauth_token_outcome_t s_token;

static const sb_oauth_token_outcome_t *
s_token_validate (const char *body, const char *authorization)
{
    sb_oauth_token_validate (body, strlen (body), authorization, &s_token);
    return &s_token;
}

#define CODE_BODY "grant_type=authorization_code&code=abc123&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect&code_verifier=" VERIFIER

static void
s_assert_refused (const sb_oauth_token_outcome_t *outcome, sb_oauth_code_t code, int status)
{
    assert_int_equal (outcome->kind, SB_OAUTH_REFUSED);
    if (outcome->error.code != code)
        fail_msg ("expected %s, got %s: %s", sb_oauth_code_name (code),
                  sb_oauth_code_name (outcome->error.code), outcome->error.description);
    assert_int_equal (outcome->error.status, status);
    assert_true (strlen (outcome->error.description) > 10);
}

static void
test_token_code_grant (void **state)
{
    //  A public client: client_id and PKCE.
    const sb_oauth_token_outcome_t *o = s_token_validate (CODE_BODY "&client_id=chatgpt", NULL);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_int_equal (o->request.grant, SB_OAUTH_GRANT_AUTHORIZATION_CODE);
    assert_int_equal (o->request.auth, SB_OAUTH_AUTH_NONE);
    assert_string_equal (o->request.client_id, "chatgpt");
    assert_string_equal (o->request.client_secret, "");
    assert_string_equal (o->request.code, "abc123");
    assert_string_equal (o->request.redirect_uri, SB_OAUTH_CHATGPT_REDIRECT);
    assert_string_equal (o->request.code_verifier, VERIFIER);
    //  client_secret_post.
    o = s_token_validate (CODE_BODY "&client_id=c1&client_secret=s%2B1", NULL);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_int_equal (o->request.auth, SB_OAUTH_AUTH_POST);
    assert_string_equal (o->request.client_secret, "s+1");
    //  client_secret_basic ("c1:s1"), with and without a matching client_id.
    o = s_token_validate (CODE_BODY, "Basic YzE6czE=");
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_int_equal (o->request.auth, SB_OAUTH_AUTH_BASIC);
    assert_string_equal (o->request.client_id, "c1");
    assert_string_equal (o->request.client_secret, "s1");
    o = s_token_validate (CODE_BODY "&client_id=c1", "Basic YzE6czE=");
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    //  With a resource (RFC 8707).
    o = s_token_validate (CODE_BODY "&client_id=c&resource=https%3A%2F%2Fmcp.example.com%2Fmcp", NULL);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_string_equal (o->request.resource, "https://mcp.example.com/mcp");
}

static void
test_token_refusals (void **state)
{
    //  Both client authentications at once.
    s_assert_refused (s_token_validate (CODE_BODY "&client_secret=s1", "Basic YzE6czE="),
                      SB_OAUTH_INVALID_REQUEST, 400);
    //  Missing each required parameter.
    s_assert_refused (s_token_validate ("grant_type=authorization_code&client_id=c&redirect_uri=x&code_verifier="
                                        VERIFIER, NULL), SB_OAUTH_INVALID_REQUEST, 400);
    assert_non_null (strstr (s_token.error.description, "code"));
    s_assert_refused (s_token_validate ("grant_type=authorization_code&client_id=c&code=a&code_verifier="
                                        VERIFIER, NULL), SB_OAUTH_INVALID_REQUEST, 400);
    assert_non_null (strstr (s_token.error.description, "redirect_uri"));
    s_assert_refused (s_token_validate ("grant_type=authorization_code&client_id=c&code=a&redirect_uri=x",
                                        NULL), SB_OAUTH_INVALID_REQUEST, 400);
    assert_non_null (strstr (s_token.error.description, "code_verifier"));
    //  A verifier too short, or with a character outside the unreserved set.
    s_assert_refused (s_token_validate ("grant_type=authorization_code&client_id=c&code=a&redirect_uri=x"
                                        "&code_verifier=short", NULL), SB_OAUTH_INVALID_REQUEST, 400);
    s_assert_refused (s_token_validate ("grant_type=authorization_code&client_id=c&code=a&redirect_uri=x"
                                        "&code_verifier=" VERIFIER "%2B", NULL), SB_OAUTH_INVALID_REQUEST, 400);
    //  A code with a space in it cannot be one we issued.
    s_assert_refused (s_token_validate ("grant_type=authorization_code&client_id=c&code=a+b&redirect_uri=x"
                                        "&code_verifier=" VERIFIER, NULL), SB_OAUTH_INVALID_GRANT, 400);
    //  The grant type.
    s_assert_refused (s_token_validate ("client_id=c&code=a", NULL), SB_OAUTH_INVALID_REQUEST, 400);
    s_assert_refused (s_token_validate ("grant_type=password&client_id=c", NULL),
                      SB_OAUTH_UNSUPPORTED_GRANT_TYPE, 400);
    s_assert_refused (s_token_validate ("grant_type=client_credentials", "Basic YzE6czE="),
                      SB_OAUTH_UNSUPPORTED_GRANT_TYPE, 400);
    //  No client at all: invalid_client, 401.
    s_assert_refused (s_token_validate (CODE_BODY, NULL), SB_OAUTH_INVALID_CLIENT, 401);
    assert_false (s_token.error.basic_challenge);
    //  Another scheme, or broken Basic: 401 with a Basic challenge.
    s_assert_refused (s_token_validate (CODE_BODY, "Bearer abc"), SB_OAUTH_INVALID_CLIENT, 401);
    assert_true (s_token.error.basic_challenge);
    s_assert_refused (s_token_validate (CODE_BODY, "Basic !!!!"), SB_OAUTH_INVALID_CLIENT, 401);
    assert_true (s_token.error.basic_challenge);
    //  A client_id that is not the one authenticated.
    s_assert_refused (s_token_validate (CODE_BODY "&client_id=c2", "Basic YzE6czE="),
                      SB_OAUTH_INVALID_REQUEST, 400);
    //  A parameter twice, a bad escape: invalid_request naming it.
    s_assert_refused (s_token_validate (CODE_BODY "&client_id=c&code=again", NULL),
                      SB_OAUTH_INVALID_REQUEST, 400);
    assert_non_null (strstr (s_token.error.description, "more than once. The parameter: code."));
    s_assert_refused (s_token_validate (CODE_BODY "&client_id=%G1", NULL), SB_OAUTH_INVALID_REQUEST, 400);
    //  A resource with a fragment, or not absolute.
    s_assert_refused (s_token_validate (CODE_BODY "&client_id=c&resource=https%3A%2F%2Fa%2Fb%23f", NULL),
                      SB_OAUTH_INVALID_TARGET, 400);
    s_assert_refused (s_token_validate (CODE_BODY "&client_id=c&resource=%2Fmcp", NULL),
                      SB_OAUTH_INVALID_TARGET, 400);
}

static void
test_token_refresh_grant (void **state)
{
    const sb_oauth_token_outcome_t *o =
        s_token_validate ("grant_type=refresh_token&refresh_token=rt-1&client_id=c&scope=mcp%3Atools", NULL);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_int_equal (o->request.grant, SB_OAUTH_GRANT_REFRESH_TOKEN);
    assert_string_equal (o->request.refresh_token, "rt-1");
    assert_string_equal (o->request.scope, "mcp:tools");
    assert_string_equal (o->request.code, "");
    s_assert_refused (s_token_validate ("grant_type=refresh_token&client_id=c", NULL),
                      SB_OAUTH_INVALID_REQUEST, 400);
    s_assert_refused (s_token_validate ("grant_type=refresh_token&refresh_token=a%0Ab&client_id=c", NULL),
                      SB_OAUTH_INVALID_GRANT, 400);
    s_assert_refused (s_token_validate ("grant_type=refresh_token&refresh_token=r&client_id=c&scope=a++b",
                                        NULL), SB_OAUTH_INVALID_SCOPE, 400);
}

//  --------------------------------------------------------------------
//  /authorize

static const char *const s_uris [] = { "https://app.example.com/cb", "http://127.0.0.1:8976/cb" };
static const sb_oauth_client_t s_client = {
    .client_id = "app", .redirect_uris = s_uris, .redirect_uri_count = 2, .scope = "mcp:tools"
};
static const char *const s_chatgpt_uris [] = { SB_OAUTH_CHATGPT_REDIRECT };
static const sb_oauth_client_t s_chatgpt = {
    .client_id = "chatgpt", .redirect_uris = s_chatgpt_uris, .redirect_uri_count = 1, .chatgpt = true
};
static const sb_oauth_policy_t s_policy = {
    .scopes_supported = SCOPES, .default_scope = "mcp:tools", .resource = "https://mcp.example.com/mcp"
};
static sb_oauth_authorize_outcome_t s_authorize;

#define AUTH_OK "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb" \
                "&code_challenge=" CHALLENGE "&code_challenge_method=S256&state=xyz"

static const sb_oauth_authorize_outcome_t *
s_authorize_validate (const char *query, const sb_oauth_client_t *client)
{
    sb_oauth_authorize_validate (query, strlen (query), client, &s_policy, &s_authorize);
    return &s_authorize;
}

//  Refused with `code`, shown on a page (`redirect` false) or redirected
//  to the client with its state.
static void
s_assert_authorize_refused (const sb_oauth_authorize_outcome_t *o, sb_oauth_code_t code, bool redirect)
{
    assert_int_equal (o->kind, SB_OAUTH_REFUSED);
    if (o->refused.error.code != code)
        fail_msg ("expected %s, got %s: %s", sb_oauth_code_name (code),
                  sb_oauth_code_name (o->refused.error.code), o->refused.error.description);
    assert_int_equal (o->refused.error.status, 400);
    assert_int_equal (o->refused.error.redirect, redirect);
    if (redirect)
        assert_string_equal (o->refused.redirect_uri, "https://app.example.com/cb");
    else
        assert_string_equal (o->refused.redirect_uri, "");
}

static void
test_authorize_valid (void **state)
{
    char client_id [64];
    assert_int_equal (sb_oauth_authorize_client_id (AUTH_OK, strlen (AUTH_OK), client_id, sizeof client_id), 0);
    assert_string_equal (client_id, "app");
    assert_int_equal (sb_oauth_authorize_client_id ("a=1", 3, client_id, sizeof client_id), -1);

    const sb_oauth_authorize_outcome_t *o = s_authorize_validate (AUTH_OK "&scope=mcp%3Atools"
        "&resource=https%3A%2F%2Fmcp.example.com%2Fmcp", &s_client);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_string_equal (o->request.client_id, "app");
    assert_string_equal (o->request.redirect_uri, "https://app.example.com/cb");
    assert_string_equal (o->request.state, "xyz");
    assert_string_equal (o->request.code_challenge, CHALLENGE);
    assert_string_equal (o->request.scope, "mcp:tools");
    assert_string_equal (o->request.resource, "https://mcp.example.com/mcp");
    //  No scope: the client's registered scopes, not an error.
    o = s_authorize_validate (AUTH_OK, &s_client);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_string_equal (o->request.scope, "mcp:tools");
    assert_string_equal (o->request.resource, "");
    //  No scope and none registered: the default.
    o = s_authorize_validate ("response_type=code&client_id=chatgpt&code_challenge=" CHALLENGE
                              "&code_challenge_method=S256", &s_chatgpt);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_string_equal (o->request.scope, "mcp:tools");
    //  An empty registered scope is none registered.
    sb_oauth_client_t empty = s_chatgpt;
    empty.scope = "";
    sb_oauth_authorize_outcome_t *other = malloc (sizeof *other);
    assert_non_null (other);
    const char *query = "response_type=code&client_id=chatgpt&code_challenge=" CHALLENGE
                        "&code_challenge_method=S256";
    sb_oauth_authorize_validate (query, strlen (query), &empty, &s_policy, other);
    assert_int_equal (other->kind, SB_OAUTH_VALID);
    assert_string_equal (other->request.scope, "mcp:tools");
    free (other);
    //  No redirect_uri with exactly one registered: that one.
    assert_string_equal (o->request.redirect_uri, SB_OAUTH_CHATGPT_REDIRECT);
    assert_string_equal (o->request.state, "");
    //  ChatGPT's second form, for ChatGPT's client only.
    o = s_authorize_validate ("response_type=code&client_id=chatgpt&code_challenge=" CHALLENGE
                              "&code_challenge_method=S256&redirect_uri="
                              "https%3A%2F%2Fchatgpt.com%2Fconnector%2Foauth%2Fabc_DEF-123", &s_chatgpt);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_string_equal (o->request.redirect_uri, "https://chatgpt.com/connector/oauth/abc_DEF-123");
    //  The scope a client asks may be any supported one when it registered none.
    o = s_authorize_validate ("response_type=code&client_id=chatgpt&code_challenge=" CHALLENGE
                              "&code_challenge_method=S256&scope=mcp%3Awrite+mcp%3Atools", &s_chatgpt);
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_string_equal (o->request.scope, "mcp:write mcp:tools");
}

static void
test_authorize_page_errors (void **state)
{
    //  Malformed query, missing or unknown client, redirect URI not
    //  registered or missing among several: a page, never a redirect.
    s_assert_authorize_refused (s_authorize_validate (AUTH_OK "&state=again", &s_client),
                                SB_OAUTH_INVALID_REQUEST, false);
    s_assert_authorize_refused (s_authorize_validate ("response_type=code&code_challenge=" CHALLENGE,
                                                      &s_client), SB_OAUTH_INVALID_REQUEST, false);
    s_assert_authorize_refused (s_authorize_validate (AUTH_OK, NULL), SB_OAUTH_INVALID_CLIENT, false);
    s_assert_authorize_refused (s_authorize_validate (AUTH_OK, &s_chatgpt), SB_OAUTH_INVALID_CLIENT, false);
    s_assert_authorize_refused (s_authorize_validate ("response_type=code&client_id=app&redirect_uri="
                                                      "https%3A%2F%2Fapp.example.com%2Fcb%2F", &s_client),
                                SB_OAUTH_INVALID_REQUEST, false);
    assert_non_null (strstr (s_authorize.refused.error.description, "not one this client registered"));
    s_assert_authorize_refused (s_authorize_validate ("response_type=code&client_id=app", &s_client),
                                SB_OAUTH_INVALID_REQUEST, false);
    //  ChatGPT's redirect URIs are not accepted for other clients…
    s_assert_authorize_refused (s_authorize_validate ("response_type=code&client_id=app&redirect_uri="
                                                      "https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect",
                                                      &s_client), SB_OAUTH_INVALID_REQUEST, false);
    //  …and near misses of them are not ChatGPT's.
    assert_true (sb_oauth_chatgpt_redirect ("https://chatgpt.com/connector/oauth/x1"));
    assert_false (sb_oauth_chatgpt_redirect ("https://chatgpt.com/connector/oauth/"));
    assert_false (sb_oauth_chatgpt_redirect ("https://chatgpt.com/connector/oauth/a/b"));
    assert_false (sb_oauth_chatgpt_redirect ("https://chatgpt.com/connector/oauth/a?x=1"));
    assert_false (sb_oauth_chatgpt_redirect ("https://chatgpt.com/connector/oauth/.."));
    assert_false (sb_oauth_chatgpt_redirect ("https://chatgpt.com.evil.com/connector/oauth/a"));
    assert_false (sb_oauth_chatgpt_redirect ("http://chatgpt.com/connector_platform_oauth_redirect"));
    assert_false (sb_oauth_chatgpt_redirect (SB_OAUTH_CHATGPT_REDIRECT "/"));
}

static void
test_authorize_redirected_errors (void **state)
{
    const char *base = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&state=s1";
    char query [1024];
    struct { const char *rest; sb_oauth_code_t code; } cases [] = {
        //  response_type.
        { "&code_challenge=" CHALLENGE "&code_challenge_method=S256", SB_OAUTH_INVALID_REQUEST },
        { "&response_type=token&code_challenge=" CHALLENGE "&code_challenge_method=S256",
          SB_OAUTH_UNSUPPORTED_RESPONSE_TYPE },
        //  PKCE: required, S256 only (plain and absent refused), its syntax.
        { "&response_type=code", SB_OAUTH_INVALID_REQUEST },
        { "&response_type=code&code_challenge=" CHALLENGE, SB_OAUTH_INVALID_REQUEST },
        { "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=plain",
          SB_OAUTH_INVALID_REQUEST },
        { "&response_type=code&code_challenge=tooShort&code_challenge_method=S256", SB_OAUTH_INVALID_REQUEST },
        { "&response_type=code&code_challenge=" CHALLENGE "%2F&code_challenge_method=S256",
          SB_OAUTH_INVALID_REQUEST },
        //  Scopes: unknown, not the client's, malformed.
        { "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256&scope=admin",
          SB_OAUTH_INVALID_SCOPE },
        { "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256&scope=mcp%3Awrite",
          SB_OAUTH_INVALID_SCOPE },
        { "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256&scope=+mcp%3Atools",
          SB_OAUTH_INVALID_SCOPE },
        //  Resource: a fragment, relative, not served here.
        { "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256"
          "&resource=https%3A%2F%2Fmcp.example.com%2Fmcp%23x", SB_OAUTH_INVALID_TARGET },
        { "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256&resource=mcp",
          SB_OAUTH_INVALID_TARGET },
        { "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256"
          "&resource=https%3A%2F%2Fother.example.com%2Fmcp", SB_OAUTH_INVALID_TARGET },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        snprintf (query, sizeof query, "%s%s", base, cases [i].rest);
        s_assert_authorize_refused (s_authorize_validate (query, &s_client), cases [i].code, true);
        assert_string_equal (s_authorize.refused.state, "s1");
    }
    //  plain is named in the sentence, so a developer sees why.
    snprintf (query, sizeof query, "%s%s", base,
              "&response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=plain");
    s_authorize_validate (query, &s_client);
    assert_non_null (strstr (s_authorize.refused.error.description, "S256"));
}

//  --------------------------------------------------------------------
//  Scopes and URIs

static void
test_scopes_and_uris (void **state)
{
    assert_true (sb_oauth_scope_valid ("a b:c d!"));
    assert_false (sb_oauth_scope_valid (""));
    assert_false (sb_oauth_scope_valid ("a  b"));
    assert_false (sb_oauth_scope_valid ("a "));
    assert_false (sb_oauth_scope_valid ("a\"b"));
    assert_false (sb_oauth_scope_valid ("a\\b"));
    assert_true (sb_oauth_scope_subset ("mcp:tools", SCOPES));
    assert_true (sb_oauth_scope_subset ("mcp:write mcp:tools", SCOPES));
    assert_false (sb_oauth_scope_subset ("mcp", SCOPES));
    assert_false (sb_oauth_scope_subset ("mcp:tools admin", SCOPES));
    assert_true (sb_oauth_absolute_uri ("https://a.example/x?y=1"));
    assert_true (sb_oauth_absolute_uri ("urn:example:thing"));
    assert_false (sb_oauth_absolute_uri ("/relative"));
    assert_false (sb_oauth_absolute_uri ("1http://a"));
    assert_false (sb_oauth_absolute_uri ("https://a/#f"));
    assert_false (sb_oauth_absolute_uri ("https://a/ b"));
    assert_false (sb_oauth_absolute_uri ("https:"));
}

//  --------------------------------------------------------------------
//  PKCE

static void
test_pkce (void **state)
{
    char challenge [SB_OAUTH_PKCE_S256_LEN + 1];
    assert_int_equal (sb_oauth_pkce_challenge (VERIFIER, challenge), 0);
    assert_string_equal (challenge, CHALLENGE);
    assert_true (sb_oauth_pkce_verify (VERIFIER, CHALLENGE));
    //  One character off, either side.
    assert_false (sb_oauth_pkce_verify ("eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", CHALLENGE));
    assert_false (sb_oauth_pkce_verify (VERIFIER, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
    assert_false (sb_oauth_pkce_verify (VERIFIER, CHALLENGE "="));
    assert_false (sb_oauth_pkce_verify (VERIFIER, ""));
    //  plain is not S256: the verifier as its own challenge fails.
    assert_false (sb_oauth_pkce_verify (VERIFIER, VERIFIER));
    //  Verifier syntax: 43–128 unreserved characters.
    char text [SB_OAUTH_PKCE_MAX + 2];
    memset (text, 'a', sizeof text);
    text [SB_OAUTH_PKCE_MIN - 1] = 0;
    assert_false (sb_oauth_pkce_syntax (text));
    assert_int_equal (sb_oauth_pkce_challenge (text, challenge), -1);
    text [SB_OAUTH_PKCE_MIN - 1] = '~';
    text [SB_OAUTH_PKCE_MIN] = 0;
    assert_true (sb_oauth_pkce_syntax (text));
    memset (text, '-', sizeof text);
    text [SB_OAUTH_PKCE_MAX] = 0;
    assert_true (sb_oauth_pkce_syntax (text));
    text [SB_OAUTH_PKCE_MAX] = '_';
    text [SB_OAUTH_PKCE_MAX + 1] = 0;
    assert_false (sb_oauth_pkce_syntax (text));
    assert_false (sb_oauth_pkce_syntax ("dBjftJeZ4CVP+mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
}

//  --------------------------------------------------------------------
//  Metadata and redirects

static void
test_metadata (void **state)
{
    char *text = sb_oauth_metadata_json (ISSUER, SCOPES);
    assert_non_null (text);
    json_t *doc = json_loads (text, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null (doc);
    assert_string_equal (json_string_value (json_object_get (doc, "issuer")), ISSUER);
    assert_string_equal (json_string_value (json_object_get (doc, "authorization_endpoint")),
                         ISSUER "/authorize");
    assert_string_equal (json_string_value (json_object_get (doc, "token_endpoint")), ISSUER "/token");
    assert_string_equal (json_string_value (json_object_get (doc, "registration_endpoint")),
                         ISSUER "/register");
    assert_string_equal (json_string_value (json_object_get (doc, "revocation_endpoint")), ISSUER "/revoke");
    json_t *expected = json_pack ("{s:[s], s:[s], s:[ss], s:[sss], s:[ss], s:b, s:b}",
        "code_challenge_methods_supported", "S256",
        "response_types_supported", "code",
        "grant_types_supported", "authorization_code", "refresh_token",
        "token_endpoint_auth_methods_supported", "none", "client_secret_basic", "client_secret_post",
        "scopes_supported", "mcp:tools", "mcp:write",
        "authorization_response_iss_parameter_supported", 1,
        "client_id_metadata_document_supported", 1);
    assert_non_null (expected);
    const char *key;
    json_t *value;
    json_object_foreach (expected, key, value) {
        if (!json_equal (json_object_get (doc, key), value))
            fail_msg ("metadata member %s differs", key);
    }
    json_decref (expected);
    json_decref (doc);
    free (text);
    //  Loopback issuers may be http; others may not.
    text = sb_oauth_metadata_json ("http://127.0.0.1:8080", SCOPES);
    assert_non_null (text);
    free (text);
    const char *bad [] = {
        "http://auth.example.com", "https://auth.example.com/", "https://auth.example.com?x=1",
        "https://auth.example.com#f", "https://user@auth.example.com", "ftp://auth.example.com",
        "https://", "https://a:80x", "http://127.0.0.1.evil.com", "https://a b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_false (sb_oauth_issuer_valid (bad [i]));
        assert_null (sb_oauth_metadata_json (bad [i], SCOPES));
    }
    assert_true (sb_oauth_issuer_valid ("https://auth.example.com:8443/tenant/acme"));
    assert_true (sb_oauth_issuer_valid ("http://[::1]:9000"));
    assert_true (sb_oauth_issuer_valid ("http://localhost"));
}

static void
test_redirects (void **state)
{
    char *url = sb_oauth_code_redirect ("https://app.example.com/cb", "c/1", "a b&c=d", ISSUER);
    assert_non_null (url);
    assert_string_equal (url, "https://app.example.com/cb?code=c%2F1&state=a%20b%26c%3Dd"
                              "&iss=https%3A%2F%2Fauth.example.com");
    free (url);
    //  A registered URI with a query keeps it; no state, no state parameter.
    url = sb_oauth_code_redirect ("https://app.example.com/cb?tenant=1", "c1", NULL, ISSUER);
    assert_non_null (url);
    assert_string_equal (url, "https://app.example.com/cb?tenant=1&code=c1&iss=https%3A%2F%2Fauth.example.com");
    free (url);
    assert_null (sb_oauth_code_redirect ("https://app.example.com/cb#x", "c1", NULL, ISSUER));
    assert_null (sb_oauth_code_redirect ("https://app.example.com/cb", "", NULL, ISSUER));
    //  An error, from an authorize outcome.
    const sb_oauth_authorize_outcome_t *o = s_authorize_validate (
        "client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&state=s1&response_type=token", &s_client);
    assert_int_equal (o->kind, SB_OAUTH_REFUSED);
    assert_true (o->refused.error.redirect);
    url = sb_oauth_error_redirect (o->refused.redirect_uri, &o->refused.error, o->refused.state, ISSUER);
    assert_non_null (url);
    assert_string_equal (url, "https://app.example.com/cb?error=unsupported_response_type"
                              "&error_description=Only%20response_type%3Dcode%20is%20supported."
                              "&state=s1&iss=https%3A%2F%2Fauth.example.com");
    free (url);
    //  The person's Deny (RFC 6749 §4.1.2.1): access_denied.
    sb_oauth_error_t denied = { .code = SB_OAUTH_ACCESS_DENIED, .status = 302, .redirect = true };
    snprintf (denied.description, sizeof denied.description, "The user denied the request.");
    assert_string_equal (sb_oauth_code_name (SB_OAUTH_ACCESS_DENIED), "access_denied");
    url = sb_oauth_error_redirect ("https://app.example.com/cb", &denied, "s2", ISSUER);
    assert_non_null (url);
    assert_string_equal (url, "https://app.example.com/cb?error=access_denied"
                              "&error_description=The%20user%20denied%20the%20request."
                              "&state=s2&iss=https%3A%2F%2Fauth.example.com");
    free (url);
    //  Past the named limit: NULL, not a truncated URL.
    char *state_text = malloc (SB_OAUTH_MAX_REDIRECT_URL);
    assert_non_null (state_text);
    memset (state_text, ' ', SB_OAUTH_MAX_REDIRECT_URL / 3);
    state_text [SB_OAUTH_MAX_REDIRECT_URL / 3] = 0;
    assert_null (sb_oauth_code_redirect ("https://app.example.com/cb", "c1", state_text, ISSUER));
    free (state_text);
}

//  --------------------------------------------------------------------
//  Registration

static sb_oauth_register_outcome_t s_register;

static const sb_oauth_register_outcome_t *
s_register_validate (const char *body)
{
    sb_oauth_register_validate (body, strlen (body), SCOPES, &s_register);
    return &s_register;
}

static void
s_assert_register_refused (const char *body, sb_oauth_code_t code)
{
    const sb_oauth_register_outcome_t *o = s_register_validate (body);
    assert_int_equal (o->kind, SB_OAUTH_REFUSED);
    if (o->error.code != code)
        fail_msg ("%s: expected %s, got %s: %s", body, sb_oauth_code_name (code),
                  sb_oauth_code_name (o->error.code), o->error.description);
    assert_int_equal (o->error.status, 400);
    assert_true (strlen (o->error.description) > 10);
}

static void
test_register (void **state)
{
    const sb_oauth_register_outcome_t *o = s_register_validate (
        "{\"redirect_uris\":[\"https://chatgpt.com/connector_platform_oauth_redirect\","
        "\"http://127.0.0.1:33418/cb\"],\"token_endpoint_auth_method\":\"none\","
        "\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"],"
        "\"client_name\":\"ChatGPT\",\"scope\":\"mcp:tools\",\"logo_uri\":\"https://x/y.png\"}");
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_int_equal (o->metadata.redirect_uri_count, 2);
    assert_string_equal (o->metadata.redirect_uris [0], SB_OAUTH_CHATGPT_REDIRECT);
    assert_string_equal (o->metadata.redirect_uris [1], "http://127.0.0.1:33418/cb");
    assert_int_equal (o->metadata.auth, SB_OAUTH_AUTH_NONE);
    assert_int_equal (o->metadata.grants, SB_OAUTH_GRANT_BIT_CODE | SB_OAUTH_GRANT_BIT_REFRESH);
    assert_string_equal (o->metadata.client_name, "ChatGPT");
    assert_string_equal (o->metadata.scope, "mcp:tools");
    assert_string_equal (sb_oauth_auth_name (o->metadata.auth), "none");
    //  RFC 7591 defaults.
    o = s_register_validate ("{\"redirect_uris\":[\"https://a.example/cb\"]}");
    assert_int_equal (o->kind, SB_OAUTH_VALID);
    assert_int_equal (o->metadata.auth, SB_OAUTH_AUTH_BASIC);
    assert_int_equal (o->metadata.grants, SB_OAUTH_GRANT_BIT_CODE);
    assert_string_equal (o->metadata.client_name, "");

    s_assert_register_refused ("{}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[]}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":\"https://a/cb\"}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[\"http://a.example/cb\"]}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a.example/cb#f\"]}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[\"com.example.app:/cb\"]}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://u@a.example/cb\"]}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[1]}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/1\",\"https://a/2\",\"https://a/3\","
                               "\"https://a/4\",\"https://a/5\",\"https://a/6\",\"https://a/7\","
                               "\"https://a/8\",\"https://a/9\"]}", SB_OAUTH_INVALID_REDIRECT_URI);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/cb\"],\"token_endpoint_auth_method\":"
                               "\"private_key_jwt\"}", SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[\"refresh_token\"]}",
                               SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[\"implicit\"]}",
                               SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/cb\"],\"response_types\":[\"token\"]}",
                               SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/cb\"],\"scope\":\"admin\"}",
                               SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":7}",
                               SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("[]", SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("{\"redirect_uris\":", SB_OAUTH_INVALID_CLIENT_METADATA);
    s_assert_register_refused ("{\"redirect_uris\":[\"https://a/cb\"],\"redirect_uris\":[\"https://b/cb\"]}",
                               SB_OAUTH_INVALID_CLIENT_METADATA);
    //  client_name: the limit passes, one byte more does not.
    char body [512];
    char name [SB_OAUTH_MAX_CLIENT_NAME + 2];
    memset (name, 'n', sizeof name);
    name [SB_OAUTH_MAX_CLIENT_NAME] = 0;
    snprintf (body, sizeof body, "{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":\"%s\"}", name);
    assert_int_equal (s_register_validate (body)->kind, SB_OAUTH_VALID);
    name [SB_OAUTH_MAX_CLIENT_NAME] = 'n';
    name [SB_OAUTH_MAX_CLIENT_NAME + 1] = 0;
    snprintf (body, sizeof body, "{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":\"%s\"}", name);
    s_assert_register_refused (body, SB_OAUTH_INVALID_CLIENT_METADATA);
}


//  --------------------------------------------------------------------
//  /revoke (RFC 7009): /token's client rules, a token, a hint.

static void
test_revoke (void **state)
{
    static sb_oauth_revoke_outcome_t o;
    const char *body = "token=abc.def&token_type_hint=refresh_token&client_id=chatgpt";
    sb_oauth_revoke_validate (body, strlen (body), NULL, &o);
    assert_int_equal (o.kind, SB_OAUTH_VALID);
    assert_int_equal (o.request.auth, SB_OAUTH_AUTH_NONE);
    assert_string_equal (o.request.client_id, "chatgpt");
    assert_string_equal (o.request.token, "abc.def");
    assert_string_equal (o.request.token_type_hint, "refresh_token");
    //  Basic ("c1:s1"), an unknown hint (kept, only a hint).
    body = "token=t&token_type_hint=whatever";
    sb_oauth_revoke_validate (body, strlen (body), "Basic YzE6czE=", &o);
    assert_int_equal (o.kind, SB_OAUTH_VALID);
    assert_int_equal (o.request.auth, SB_OAUTH_AUTH_BASIC);
    assert_string_equal (o.request.client_id, "c1");
    assert_string_equal (o.request.client_secret, "s1");
    //  client_secret_post.
    body = "token=t&client_id=c1&client_secret=s%2B1";
    sb_oauth_revoke_validate (body, strlen (body), NULL, &o);
    assert_int_equal (o.kind, SB_OAUTH_VALID);
    assert_int_equal (o.request.auth, SB_OAUTH_AUTH_POST);
    assert_string_equal (o.request.client_secret, "s+1");
    //  Refusals.
    static const struct {
        const char *body, *authorization;
        sb_oauth_code_t code;
        int status;
    } bad [] = {
        { "client_id=c1", NULL, SB_OAUTH_INVALID_REQUEST, 400 },                   //  no token
        { "token=t", NULL, SB_OAUTH_INVALID_CLIENT, 401 },                          //  no client
        { "token=t&token=u&client_id=c1", NULL, SB_OAUTH_INVALID_REQUEST, 400 },    //  twice
        { "token=t", "Bearer x", SB_OAUTH_INVALID_CLIENT, 401 },                    //  another scheme
        { "token=t", "Basic !!", SB_OAUTH_INVALID_CLIENT, 401 },                    //  broken Basic
        { "token=t&client_secret=s", "Basic YzE6czE=", SB_OAUTH_INVALID_REQUEST, 400 },  //  both
        { "token=t&client_id=c2", "Basic YzE6czE=", SB_OAUTH_INVALID_REQUEST, 400 },     //  differ
        { "token=%zz&client_id=c1", NULL, SB_OAUTH_INVALID_REQUEST, 400 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        sb_oauth_revoke_validate (bad [i].body, strlen (bad [i].body), bad [i].authorization, &o);
        assert_int_equal (o.kind, SB_OAUTH_REFUSED);
        if (o.error.code != bad [i].code || o.error.status != bad [i].status)
            fail_msg ("%s: got %s %d: %s", bad [i].body, sb_oauth_code_name (o.error.code),
                      o.error.status, o.error.description);
    }
    //  A basic challenge where the client tried Basic.
    sb_oauth_revoke_validate ("token=t", 7, "Basic !!", &o);
    assert_true (o.error.basic_challenge);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_form_decodes),
        cmocka_unit_test (test_form_refuses),
        cmocka_unit_test (test_query_append),
        cmocka_unit_test (test_basic),
        cmocka_unit_test (test_token_code_grant),
        cmocka_unit_test (test_token_refusals),
        cmocka_unit_test (test_token_refresh_grant),
        cmocka_unit_test (test_revoke),
        cmocka_unit_test (test_authorize_valid),
        cmocka_unit_test (test_authorize_page_errors),
        cmocka_unit_test (test_authorize_redirected_errors),
        cmocka_unit_test (test_scopes_and_uris),
        cmocka_unit_test (test_pkce),
        cmocka_unit_test (test_metadata),
        cmocka_unit_test (test_redirects),
        cmocka_unit_test (test_register),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
