/*  tests/35_sandbox_oauth.c — the sandbox's OAuth 2 provider, two real
    sb-sandbox processes on free ports: "rot" (a confidential client,
    refresh tokens rotate, 2 s grace, access tokens for 5 s) and "fix" (a
    public client named in the environment, no rotation, access tokens for
    2 s). The code flow with PKCE (the sign-in page, deny, a wrong verifier,
    a wrong redirect_uri, a code used twice), client authentication both
    ways and its refusals, rotation and the grace window, reuse after it
    (invalid_grant, grant revoked), no rotation, expiry (natural and on
    demand: /v1 answers 401 invalid_token), revocation, GET /v1/me, the
    token endpoint's faults (down, invalid_grant, slow: concurrent refreshes
    counted, the loop not blocked, a slow answer still rotating after the
    client went), and the counters the connection tests rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb_harness.h"
#include "sb_oauth.h"

#define API_KEY     "test-key-35o"
#define CLIENT_ID   "crm-client-35"
#define SECRET      "crm-secret-35"
#define REDIRECT    "http://127.0.0.1:9/callback"
#define VERIFIER    "verifier-35-0123456789-0123456789-0123456789-abc"
#define TIMEOUT_MS  10000
#define GRACE_MS    2000    /* rot's --oauth-refresh-grace-s */
#define FIX_TTL_MS  2000    /* fix's --oauth-access-ttl-s */

//  One sandbox process and how its client authenticates.
typedef struct {
    const char *name;       /* for messages */
    pid_t pid;
    char base [64];         /* http://127.0.0.1:<port> */
    const char *secret;     /* NULL: a public client */
} s_provider_t;

static s_provider_t s_rot = { .name = "rot", .secret = SECRET };
static s_provider_t s_fix = { .name = "fix" };

static const char *const s_form [] = {
    "Content-Type: application/x-www-form-urlencoded", NULL
};
static const char *const s_json [] = { "Content-Type: application/json", NULL };

static int
s_start (s_provider_t *provider, const char *const extra [], const char *const env [])
{
    int port = sb_harness_free_port ();
    snprintf (provider->base, sizeof provider->base, "http://127.0.0.1:%d", port);
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    const char *argv [24] = {
        sb_harness_bin ("sb-sandbox"), "--listen", listen, "--api-key", API_KEY
    };
    size_t argc = 5;
    for (size_t i = 0; extra [i] && argc < 23; i++)
        argv [argc++] = extra [i];
    argv [argc] = NULL;
    provider->pid = sb_harness_spawn (argv, env);
    if (provider->pid < 0)
        return -1;
    char url [128];
    snprintf (url, sizeof url, "%s/healthz", provider->base);
    return sb_harness_wait_http_ok (url, SB_HARNESS_WAIT_MS);
}

static int
s_setup (void **state)
{
    (void) state;
    const char *const rot [] = {
        "--oauth-client-id", CLIENT_ID, "--oauth-client-secret", SECRET,
        "--oauth-access-ttl-s", "5", "--oauth-refresh-grace-s", "2", NULL
    };
    const char *const fix [] = { "--oauth-access-ttl-s", "2", "--oauth-rotate", "no", NULL };
    const char *const fix_env [] = { "SB_SANDBOX_OAUTH_CLIENT_ID=" CLIENT_ID, NULL };
    return s_start (&s_rot, rot, NULL) || s_start (&s_fix, fix, fix_env) ? -1 : 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    int failures = 0;
    s_provider_t *providers [] = { &s_rot, &s_fix };
    for (int i = 0; i < 2; i++) {
        int status = sb_harness_stop (providers [i]->pid);
        if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
            fprintf (stderr, "sb-sandbox %s did not exit cleanly (status %d)\n",
                     providers [i]->name, status);
            failures++;
        }
    }
    return failures ? -1 : 0;
}

//  One request; the JSON body (or NULL) and the status, and the whole
//  response when `response` is not NULL (the caller clears it).
static json_t *
s_call (const s_provider_t *provider, const char *method, const char *path,
        const char *const headers [], const char *body, long *status,
        sb_harness_response_t *response)
{
    char url [4096];
    snprintf (url, sizeof url, "%s%s", provider->base, path);
    sb_harness_request_t request = {
        .method = method, .url = url, .headers = headers, .body = body,
        .body_len = body ? strlen (body) : 0, .timeout_ms = TIMEOUT_MS
    };
    sb_harness_response_t own = { 0 };
    sb_harness_response_t *into = response ? response : &own;
    assert_int_equal (sb_harness_request (&request, into), 0);
    *status = into->status;
    json_t *json = into->body ? json_loads (into->body, 0, NULL) : NULL;
    sb_harness_response_clear (&own);
    return json;
}

//  Standard base64 (RFC 4648 §4), for a Basic header.
static void
s_base64 (const char *in, char *out, size_t size)
{
    static const char digits [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen (in), at = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t n = (uint32_t) (unsigned char) in [i] << 16;
        if (i + 1 < len)
            n |= (uint32_t) (unsigned char) in [i + 1] << 8;
        if (i + 2 < len)
            n |= (unsigned char) in [i + 2];
        assert_true (at + 5 < size);
        out [at++] = digits [(n >> 18) & 63];
        out [at++] = digits [(n >> 12) & 63];
        out [at++] = i + 1 < len ? digits [(n >> 6) & 63] : '=';
        out [at++] = i + 2 < len ? digits [n & 63] : '=';
    }
    out [at] = 0;
}

//  POST /oauth/token with `form` (without client authentication), the
//  client authenticating as the provider's client does: Basic when
//  `basic`, else client_id (and client_secret) in the form.
static json_t *
s_token (const s_provider_t *provider, const char *form, bool basic, long *status)
{
    char body [2048], header [320], creds [128], encoded [256];
    const char *headers [3] = { s_form [0], NULL, NULL };
    if (basic) {
        snprintf (creds, sizeof creds, "%s:%s", CLIENT_ID, provider->secret);
        s_base64 (creds, encoded, sizeof encoded);
        snprintf (header, sizeof header, "Authorization: Basic %s", encoded);
        headers [1] = header;
        snprintf (body, sizeof body, "%s", form);
    }
    else
        snprintf (body, sizeof body, "%s&client_id=%s%s%s", form, CLIENT_ID,
                  provider->secret ? "&client_secret=" : "",
                  provider->secret ? provider->secret : "");
    return s_call (provider, "POST", "/oauth/token", headers, body, status, NULL);
}

//  Expects an RFC 6749 §5.2 error `code` with `want` status.
//  `status` is read here, after the call that made `json` set it.
static void
s_expect_oauth_error (json_t *json, const long *status, long want, const char *code)
{
    if (*status != want)
        fail_msg ("HTTP %ld, want %ld (%s)", *status, want, code);
    assert_non_null (json);
    assert_string_equal (json_string_value (json_object_get (json, "error")), code);
    assert_true (json_is_string (json_object_get (json, "error_description")));
    json_decref (json);
}

//  The authorization request's parameters, form-encoded, with `extra`.
static void
s_authorize_params (char *out, size_t size, const char *extra)
{
    char challenge [SB_OAUTH_PKCE_S256_LEN + 1];
    assert_int_equal (sb_oauth_pkce_challenge (VERIFIER, challenge), 0);
    snprintf (out, size, "response_type=code&client_id=" CLIENT_ID "&redirect_uri=" REDIRECT
              "&state=st%%20a%%26b&code_challenge=%s&code_challenge_method=S256%s",
              challenge, extra);
}

//  The value of query parameter `name` in a Location (raw), or "".
static void
s_location_param (const char *location, const char *name, char *out, size_t size)
{
    char key [64];
    snprintf (key, sizeof key, "%s=", name);
    const char *query = strchr (location, '?');
    out [0] = 0;
    for (const char *p = query; p; p = strchr (p + 1, '&'))
        if (strncmp (p + 1, key, strlen (key)) == 0) {
            const char *value = p + 1 + strlen (key);
            size_t len = strcspn (value, "&");
            assert_true (len < size);
            memcpy (out, value, len);
            out [len] = 0;
            return;
        }
}

//  POST /oauth/authorize as the page's form does; the code from the 302.
static void
s_authorize (const s_provider_t *provider, const char *account, char *code, size_t size)
{
    char body [1024], extra [128];
    snprintf (extra, sizeof extra, "&scope=crm.read&account=%s&decision=allow", account);
    s_authorize_params (body, sizeof body, extra);
    sb_harness_response_t response = { 0 };
    long status;
    json_decref (s_call (provider, "POST", "/oauth/authorize", s_form, body, &status, &response));
    assert_int_equal (status, 302);
    char location [2048];
    assert_true (sb_harness_header (&response, "Location", location, sizeof location));
    assert_int_equal (strncmp (location, REDIRECT "?code=sbac_", strlen (REDIRECT) + 11), 0);
    char state [128];
    s_location_param (location, "state", state, sizeof state);
    assert_string_equal (state, "st%20a%26b");
    s_location_param (location, "code", code, size);
    assert_true (strlen (code) > 40);
    sb_harness_response_clear (&response);
}

//  A whole sign-in: a grant for `account`; its token answer.
static json_t *
s_connect (const s_provider_t *provider, const char *account)
{
    char code [128], form [512];
    s_authorize (provider, account, code, sizeof code);
    snprintf (form, sizeof form, "grant_type=authorization_code&code=%s&redirect_uri=" REDIRECT
              "&code_verifier=" VERIFIER, code);
    long status;
    json_t *answer = s_token (provider, form, provider->secret != NULL, &status);
    assert_int_equal (status, 200);
    return answer;
}

static const char *
s_str (json_t *json, const char *key)
{
    const char *value = json_string_value (json_object_get (json, key));
    if (!value)
        fail_msg ("no string \"%s\" in the answer", key);
    return value;
}

//  GET `path` with the access token; the status, and the body's JSON.
static json_t *
s_api (const s_provider_t *provider, const char *path, const char *access, long *status,
       sb_harness_response_t *response)
{
    char header [256];
    snprintf (header, sizeof header, "Authorization: Bearer %s", access);
    const char *const headers [] = { header, NULL };
    return s_call (provider, "GET", path, headers, NULL, status, response);
}

//  The grant's ID, from GET /v1/me with its access token.
static void
s_grant_of (const s_provider_t *provider, const char *access, char *grant, size_t size)
{
    long status;
    json_t *me = s_api (provider, "/v1/me", access, &status, NULL);
    assert_int_equal (status, 200);
    snprintf (grant, size, "%s", s_str (me, "grant"));
    json_decref (me);
}

//  The grant's entry in GET /_sandbox/oauth/grants (a new reference).
static json_t *
s_grant (const s_provider_t *provider, const char *id)
{
    long status;
    json_t *list = s_call (provider, "GET", "/_sandbox/oauth/grants", NULL, NULL, &status, NULL);
    assert_int_equal (status, 200);
    assert_true (json_is_array (list));
    size_t index;
    json_t *item, *found = NULL;
    json_array_foreach (list, index, item)
        if (strcmp (s_str (item, "grant"), id) == 0)
            found = json_incref (item);
    json_decref (list);
    if (!found)
        fail_msg ("grant %s is not listed", id);
    return found;
}

static json_int_t
s_counter (const s_provider_t *provider, const char *id, const char *name)
{
    json_t *grant = s_grant (provider, id);
    json_t *value = json_object_get (grant, name);
    if (!value)
        fail_msg ("grant %s has no %s", id, name);
    json_int_t n = json_is_true (value) ? 1 : json_integer_value (value);
    json_decref (grant);
    return n;
}

static json_t *
s_refresh (const s_provider_t *provider, const char *refresh, long *status)
{
    char form [256];
    snprintf (form, sizeof form, "grant_type=refresh_token&refresh_token=%s", refresh);
    return s_token (provider, form, false, status);
}

//  Expects /v1/me with `access` to answer 401 invalid_token with RFC 6750's challenge.
static void
s_expect_invalid_token (const s_provider_t *provider, const char *access)
{
    sb_harness_response_t response = { 0 };
    long status;
    json_t *json = s_api (provider, "/v1/me", access, &status, &response);
    assert_int_equal (status, 401);
    assert_string_equal (s_str (json, "error"), "invalid_token");
    char challenge [256];
    assert_true (sb_harness_header (&response, "WWW-Authenticate", challenge, sizeof challenge));
    assert_non_null (strstr (challenge, "error=\"invalid_token\""));
    json_decref (json);
    sb_harness_response_clear (&response);
}

//  --------------------------------------------------------------------------

//  The sign-in page, its refusals, deny, and a code exchanged once.
static void
test_code_flow (void **state)
{
    (void) state;
    char query [1024], path [1200];
    s_authorize_params (query, sizeof query, "&scope=crm.read");
    snprintf (path, sizeof path, "/oauth/authorize?%s", query);
    sb_harness_response_t response = { 0 };
    long status;
    json_decref (s_call (&s_rot, "GET", path, NULL, NULL, &status, &response));
    assert_int_equal (status, 200);
    char type [128];
    assert_true (sb_harness_header (&response, "Content-Type", type, sizeof type));
    assert_non_null (strstr (type, "text/html"));
    assert_non_null (strstr (response.body, "Sign in to the Sandbox CRM"));
    assert_non_null (strstr (response.body, "name=\"account\""));
    assert_non_null (strstr (response.body, "value=\"allow\""));
    assert_non_null (strstr (response.body, "value=\"deny\""));
    //  The state is carried, HTML-escaped.
    assert_non_null (strstr (response.body, "name=\"state\" value=\"st a&amp;b\""));
    sb_harness_response_clear (&response);

    //  An unknown client or a bad redirect_uri: refused here, never redirected.
    json_t *json = s_call (&s_rot, "GET", "/oauth/authorize?response_type=code&client_id=other"
                           "&redirect_uri=" REDIRECT, NULL, NULL, &status, NULL);
    assert_int_equal (status, 400);
    assert_string_equal (s_str (json, "error"), "invalid_client");
    json_decref (json);
    json = s_call (&s_rot, "GET", "/oauth/authorize?response_type=code&client_id=" CLIENT_ID
                   "&redirect_uri=ftp://x/cb", NULL, NULL, &status, NULL);
    assert_int_equal (status, 400);
    assert_string_equal (s_str (json, "error"), "invalid_redirect_uri");
    json_decref (json);
    //  Without PKCE S256: back to the client with invalid_request and the state.
    json_decref (s_call (&s_rot, "GET", "/oauth/authorize?response_type=code&client_id=" CLIENT_ID
                         "&redirect_uri=" REDIRECT "&state=s1&code_challenge=abc"
                         "&code_challenge_method=plain", NULL, NULL, &status, &response));
    assert_int_equal (status, 302);
    char location [2048], value [256];
    assert_true (sb_harness_header (&response, "Location", location, sizeof location));
    s_location_param (location, "error", value, sizeof value);
    assert_string_equal (value, "invalid_request");
    s_location_param (location, "state", value, sizeof value);
    assert_string_equal (value, "s1");
    sb_harness_response_clear (&response);

    //  Deny.
    char body [1024];
    s_authorize_params (body, sizeof body, "&account=alice&decision=deny");
    json_decref (s_call (&s_rot, "POST", "/oauth/authorize", s_form, body, &status, &response));
    assert_int_equal (status, 302);
    assert_true (sb_harness_header (&response, "Location", location, sizeof location));
    s_location_param (location, "error", value, sizeof value);
    assert_string_equal (value, "access_denied");
    s_location_param (location, "code", value, sizeof value);
    assert_string_equal (value, "");
    sb_harness_response_clear (&response);
    //  Allow without an account.
    s_authorize_params (body, sizeof body, "&decision=allow");
    json = s_call (&s_rot, "POST", "/oauth/authorize", s_form, body, &status, NULL);
    assert_int_equal (status, 400);
    json_decref (json);

    //  The code: a wrong verifier and a wrong redirect_uri are refused.
    char code [128], form [512];
    s_authorize (&s_rot, "alice", code, sizeof code);
    snprintf (form, sizeof form, "grant_type=authorization_code&code=%s&redirect_uri=" REDIRECT
              "&code_verifier=" VERIFIER "x", code);
    s_expect_oauth_error (s_token (&s_rot, form, true, &status), &status, 400, "invalid_grant");
    snprintf (form, sizeof form, "grant_type=authorization_code&code=%s"
              "&redirect_uri=http://127.0.0.1:9/other&code_verifier=" VERIFIER, code);
    s_expect_oauth_error (s_token (&s_rot, form, true, &status), &status, 400, "invalid_grant");
    snprintf (form, sizeof form, "grant_type=authorization_code&code=%s&redirect_uri=" REDIRECT,
              code);
    s_expect_oauth_error (s_token (&s_rot, form, true, &status), &status, 400, "invalid_request");
    //  The right one.
    snprintf (form, sizeof form, "grant_type=authorization_code&code=%s&redirect_uri=" REDIRECT
              "&code_verifier=" VERIFIER, code);
    json_t *answer = s_token (&s_rot, form, true, &status);
    assert_int_equal (status, 200);
    assert_string_equal (s_str (answer, "token_type"), "Bearer");
    assert_int_equal (json_integer_value (json_object_get (answer, "expires_in")), 5);
    assert_string_equal (s_str (answer, "scope"), "crm.read");
    assert_string_equal (s_str (answer, "instance_url"), s_rot.base);
    assert_int_equal (strncmp (s_str (answer, "access_token"), "sbat_", 5), 0);
    assert_int_equal (strncmp (s_str (answer, "refresh_token"), "sbrt_", 5), 0);

    //  /v1/me and the API with the access token; the static key is "shared".
    char grant [64];
    s_grant_of (&s_rot, s_str (answer, "access_token"), grant, sizeof grant);
    json = s_api (&s_rot, "/v1/me", s_str (answer, "access_token"), &status, NULL);
    assert_string_equal (s_str (json, "account"), "alice");
    json_decref (json);
    json = s_api (&s_rot, "/v1/accounts?q=acme&limit=2", s_str (answer, "access_token"), &status,
                  NULL);
    assert_int_equal (status, 200);
    assert_true (json_array_size (json_object_get (json, "items")) >= 1);
    json_decref (json);
    json = s_api (&s_rot, "/v1/me", API_KEY, &status, NULL);
    assert_int_equal (status, 200);
    assert_string_equal (s_str (json, "account"), "shared");
    assert_null (json_object_get (json, "grant"));
    json_decref (json);
    json = s_api (&s_rot, "/v1/me", "sbat_not-a-token", &status, NULL);
    assert_int_equal (status, 401);
    assert_string_equal (s_str (json, "error"), "unauthorized");
    json_decref (json);
    assert_int_equal (s_counter (&s_rot, grant, "code_exchanges"), 1);
    assert_int_equal (s_counter (&s_rot, grant, "api_requests"), 3);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 0);
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 0);
    assert_true (s_counter (&s_rot, grant, "access_expires_in") > 0);

    //  The code a second time: refused, and the grant it made is revoked.
    s_expect_oauth_error (s_token (&s_rot, form, true, &status), &status, 400, "invalid_grant");
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 1);
    s_expect_invalid_token (&s_rot, s_str (answer, "access_token"));
    json_decref (answer);
}

//  client_secret_basic and client_secret_post both work; wrong secrets,
//  unknown clients, both methods at once and bad grant types are refused.
static void
test_client_auth (void **state)
{
    (void) state;
    json_t *answer = s_connect (&s_rot, "bob");     //  Basic
    long status;
    json_t *again = s_refresh (&s_rot, s_str (answer, "refresh_token"), &status);  //  post
    assert_int_equal (status, 200);
    json_decref (again);
    json_decref (answer);

    const char *refresh = "grant_type=refresh_token&refresh_token=sbrt_x";
    char creds [128], encoded [256], header [300];
    s_base64 (CLIENT_ID ":wrong", encoded, sizeof encoded);
    snprintf (header, sizeof header, "Authorization: Basic %s", encoded);
    const char *const basic_wrong [] = { s_form [0], header, NULL };
    sb_harness_response_t response = { 0 };
    json_t *json = s_call (&s_rot, "POST", "/oauth/token", basic_wrong, refresh, &status,
                           &response);
    char challenge [128];
    assert_true (sb_harness_header (&response, "WWW-Authenticate", challenge, sizeof challenge));
    assert_int_equal (strncmp (challenge, "Basic", 5), 0);
    sb_harness_response_clear (&response);
    s_expect_oauth_error (json, &status, 401, "invalid_client");
    json = s_call (&s_rot, "POST", "/oauth/token", s_form,
                   "grant_type=refresh_token&refresh_token=sbrt_x&client_id=" CLIENT_ID
                   "&client_secret=wrong", &status, NULL);
    s_expect_oauth_error (json, &status, 401, "invalid_client");
    json = s_call (&s_rot, "POST", "/oauth/token", s_form,
                   "grant_type=refresh_token&refresh_token=sbrt_x&client_id=other"
                   "&client_secret=" SECRET, &status, NULL);
    s_expect_oauth_error (json, &status, 401, "invalid_client");
    json = s_call (&s_rot, "POST", "/oauth/token", s_form, refresh, &status, NULL);
    s_expect_oauth_error (json, &status, 401, "invalid_client");
    //  Both methods at once.
    snprintf (creds, sizeof creds, "%s:%s", CLIENT_ID, SECRET);
    s_base64 (creds, encoded, sizeof encoded);
    snprintf (header, sizeof header, "Authorization: Basic %s", encoded);
    const char *const basic [] = { s_form [0], header, NULL };
    json = s_call (&s_rot, "POST", "/oauth/token", basic,
                   "grant_type=refresh_token&refresh_token=sbrt_x&client_secret=" SECRET,
                   &status, NULL);
    s_expect_oauth_error (json, &status, 400, "invalid_request");
    //  Right client, wrong requests.
    s_expect_oauth_error (s_token (&s_rot, "grant_type=password&username=a", true, &status),
                          &status, 400, "unsupported_grant_type");
    s_expect_oauth_error (s_token (&s_rot, "scope=crm.read", true, &status), &status, 400,
                          "invalid_request");
    s_expect_oauth_error (s_token (&s_rot, refresh, true, &status), &status, 400, "invalid_grant");
    s_expect_oauth_error (s_token (&s_rot, "grant_type=refresh_token", true, &status), &status,
                          400, "invalid_request");
    s_expect_oauth_error (s_token (&s_rot, "grant_type=refresh_token&refresh_token=a%zz", true,
                                   &status), &status, 400, "invalid_request");
    //  A public client sends no secret; fix knows no secret.
    json = s_call (&s_fix, "POST", "/oauth/token", s_form,
                   "grant_type=refresh_token&refresh_token=sbrt_x&client_id=" CLIENT_ID
                   "&client_secret=anything", &status, NULL);
    s_expect_oauth_error (json, &status, 401, "invalid_client");
}

//  Rotation: each refresh a new refresh token; the replaced one works in
//  the grace window; past it, its reuse is invalid_grant and revokes the grant.
static void
test_rotation_grace (void **state)
{
    (void) state;
    json_t *first = s_connect (&s_rot, "carol");
    char grant [64];
    s_grant_of (&s_rot, s_str (first, "access_token"), grant, sizeof grant);
    long status;
    int64_t rotated_at = sb_harness_now_ms ();
    json_t *second = s_refresh (&s_rot, s_str (first, "refresh_token"), &status);
    assert_int_equal (status, 200);
    assert_string_not_equal (s_str (second, "refresh_token"), s_str (first, "refresh_token"));
    assert_string_not_equal (s_str (second, "access_token"), s_str (first, "access_token"));
    assert_string_equal (s_str (second, "instance_url"), s_rot.base);
    //  The new access token works, and the one before it until it expires.
    json_decref (s_api (&s_rot, "/v1/me", s_str (second, "access_token"), &status, NULL));
    assert_int_equal (status, 200);
    json_decref (s_api (&s_rot, "/v1/me", s_str (first, "access_token"), &status, NULL));
    assert_int_equal (status, 200);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 1);

    //  The rotated-away token within the grace: refreshes (counted as such).
    json_t *third = s_refresh (&s_rot, s_str (first, "refresh_token"), &status);
    assert_true (sb_harness_now_ms () - rotated_at < GRACE_MS);
    assert_int_equal (status, 200);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 2);
    assert_int_equal (s_counter (&s_rot, grant, "grace_reuses"), 1);
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 0);

    //  Past the grace (the provider's clock is what the test waits on).
    while (sb_harness_now_ms () - rotated_at <= GRACE_MS + 100)
        sb_harness_pause_ms (50);
    s_expect_oauth_error (s_refresh (&s_rot, s_str (first, "refresh_token"), &status), &status,
                          400, "invalid_grant");
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 1);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 2);
    //  Everything of the grant is dead now.
    s_expect_oauth_error (s_refresh (&s_rot, s_str (third, "refresh_token"), &status), &status,
                          400, "invalid_grant");
    s_expect_invalid_token (&s_rot, s_str (third, "access_token"));
    json_decref (first);
    json_decref (second);
    json_decref (third);

    //  A token rotated away earlier than the last one is a reuse at once.
    json_t *a = s_connect (&s_rot, "dave");
    s_grant_of (&s_rot, s_str (a, "access_token"), grant, sizeof grant);
    json_t *b = s_refresh (&s_rot, s_str (a, "refresh_token"), &status);
    assert_int_equal (status, 200);
    json_t *c = s_refresh (&s_rot, s_str (b, "refresh_token"), &status);
    assert_int_equal (status, 200);
    s_expect_oauth_error (s_refresh (&s_rot, s_str (a, "refresh_token"), &status), &status, 400,
                          "invalid_grant");
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 1);
    json_decref (a);
    json_decref (b);
    json_decref (c);
}

//  No rotation: refresh answers carry no refresh token and the first one
//  keeps working; access tokens expire on their own (401 invalid_token).
static void
test_no_rotation_expiry (void **state)
{
    (void) state;
    json_t *first = s_connect (&s_fix, "erin");
    assert_string_equal (s_str (first, "instance_url"), s_fix.base);
    assert_int_equal (json_integer_value (json_object_get (first, "expires_in")), 2);
    char grant [64];
    s_grant_of (&s_fix, s_str (first, "access_token"), grant, sizeof grant);
    long status;
    json_t *last = NULL;
    for (int i = 0; i < 3; i++) {
        json_t *again = s_refresh (&s_fix, s_str (first, "refresh_token"), &status);
        assert_int_equal (status, 200);
        assert_null (json_object_get (again, "refresh_token"));
        assert_string_not_equal (s_str (again, "access_token"), s_str (first, "access_token"));
        json_decref (last);
        last = again;
    }
    assert_int_equal (s_counter (&s_fix, grant, "refreshes"), 3);
    assert_int_equal (s_counter (&s_fix, grant, "revoked"), 0);

    //  The latest access token expires after its 2 s.
    int64_t deadline = sb_harness_now_ms () + FIX_TTL_MS + TIMEOUT_MS;
    for (;;) {
        json_decref (s_api (&s_fix, "/v1/me", s_str (last, "access_token"), &status, NULL));
        if (status != 200 || sb_harness_now_ms () > deadline)
            break;
        sb_harness_pause_ms (100);
    }
    s_expect_invalid_token (&s_fix, s_str (last, "access_token"));
    assert_int_equal (s_counter (&s_fix, grant, "access_expires_in"), 0);
    json_decref (last);
    json_t *fresh = s_refresh (&s_fix, s_str (first, "refresh_token"), &status);
    assert_int_equal (status, 200);
    json_decref (s_api (&s_fix, "/v1/me", s_str (fresh, "access_token"), &status, NULL));
    assert_int_equal (status, 200);
    assert_true (s_counter (&s_fix, grant, "access_expires_in") > 0);
    json_decref (fresh);
    json_decref (first);
}

//  /_sandbox/oauth/expire and /revoke, and RFC 7009 revocation.
static void
test_controls_revoke (void **state)
{
    (void) state;
    json_t *tokens = s_connect (&s_rot, "frank");
    char grant [64], body [128];
    s_grant_of (&s_rot, s_str (tokens, "access_token"), grant, sizeof grant);
    long status;
    snprintf (body, sizeof body, "{\"grant\":\"%s\"}", grant);
    json_decref (s_call (&s_rot, "POST", "/_sandbox/oauth/expire", s_json, body, &status, NULL));
    assert_int_equal (status, 200);
    s_expect_invalid_token (&s_rot, s_str (tokens, "access_token"));
    assert_int_equal (s_counter (&s_rot, grant, "access_expires_in"), 0);
    json_t *fresh = s_refresh (&s_rot, s_str (tokens, "refresh_token"), &status);
    assert_int_equal (status, 200);
    json_decref (s_api (&s_rot, "/v1/me", s_str (fresh, "access_token"), &status, NULL));
    assert_int_equal (status, 200);
    json_t *json = s_call (&s_rot, "POST", "/_sandbox/oauth/expire", s_json,
                           "{\"grant\":\"grant_999999\"}", &status, NULL);
    assert_int_equal (status, 404);
    json_decref (json);
    json = s_call (&s_rot, "POST", "/_sandbox/oauth/expire", s_json, "[]", &status, NULL);
    assert_int_equal (status, 400);
    json_decref (json);

    //  RFC 7009: the client revokes its refresh token; the grant is gone.
    char form [256];
    snprintf (form, sizeof form, "token=%s&client_id=" CLIENT_ID "&client_secret=" SECRET,
              s_str (fresh, "refresh_token"));
    json = s_call (&s_rot, "POST", "/oauth/revoke", s_form, "token=sbrt_unknown&client_id="
                   CLIENT_ID "&client_secret=" SECRET, &status, NULL);
    assert_int_equal (status, 200);             //  unknown tokens too
    json_decref (json);
    json = s_call (&s_rot, "POST", "/oauth/revoke", s_form, "token=sbrt_unknown", &status, NULL);
    s_expect_oauth_error (json, &status, 401, "invalid_client");
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 0);
    json_decref (s_call (&s_rot, "POST", "/oauth/revoke", s_form, form, &status, NULL));
    assert_int_equal (status, 200);
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 1);
    s_expect_oauth_error (s_refresh (&s_rot, s_str (fresh, "refresh_token"), &status), &status,
                          400, "invalid_grant");
    s_expect_invalid_token (&s_rot, s_str (fresh, "access_token"));
    json_decref (fresh);
    json_decref (tokens);

    //  The control's revocation.
    tokens = s_connect (&s_rot, "gina");
    s_grant_of (&s_rot, s_str (tokens, "access_token"), grant, sizeof grant);
    snprintf (body, sizeof body, "{\"grant\":\"%s\"}", grant);
    json = s_call (&s_rot, "POST", "/_sandbox/oauth/revoke", s_json, body, &status, NULL);
    assert_int_equal (status, 200);
    assert_true (json_is_true (json_object_get (json, "revoked")));
    json_decref (json);
    s_expect_oauth_error (s_refresh (&s_rot, s_str (tokens, "refresh_token"), &status), &status,
                          400, "invalid_grant");
    json_decref (tokens);
}

//  Polls GET /_sandbox/oauth/faults until `pending` answers are held.
static void
s_wait_pending (const s_provider_t *provider, json_int_t want)
{
    int64_t deadline = sb_harness_now_ms () + TIMEOUT_MS;
    json_int_t pending = -1;
    while (sb_harness_now_ms () < deadline) {
        long status;
        json_t *faults = s_call (provider, "GET", "/_sandbox/oauth/faults", NULL, NULL, &status,
                                 NULL);
        pending = json_integer_value (json_object_get (faults, "pending"));
        json_decref (faults);
        if (pending == want)
            return;
        sb_harness_pause_ms (20);
    }
    fail_msg ("%lld token answers held, want %lld", (long long) pending, (long long) want);
}

//  A refresh run by a thread of its own (client_secret_post).
static sb_harness_call_t *
s_refresh_start (const s_provider_t *provider, const char *refresh, int timeout_ms)
{
    char url [128], body [256];
    snprintf (url, sizeof url, "%s/oauth/token", provider->base);
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=" CLIENT_ID
              "&client_secret=" SECRET, refresh);
    sb_harness_request_t request = {
        .method = "POST", .url = url, .headers = s_form, .body = body,
        .body_len = strlen (body), .timeout_ms = timeout_ms
    };
    sb_harness_call_t *call = sb_harness_call_start (&request);
    assert_non_null (call);
    return call;
}

//  The token endpoint's faults: down, invalid_grant, slow.
static void
test_faults (void **state)
{
    (void) state;
    json_t *tokens = s_connect (&s_rot, "hank");
    char grant [64];
    s_grant_of (&s_rot, s_str (tokens, "access_token"), grant, sizeof grant);
    long status;
    json_t *json;
    const char *bad [] = {
        "{\"mode\":\"sideways\"}", "{\"mode\":\"slow\"}", "{\"mode\":\"down\",\"delay_ms\":5}",
        "{\"mode\":\"down\",\"count\":0}", "{\"mode\":\"down\",\"extra\":1}", "[]", NULL
    };
    for (int i = 0; bad [i]; i++) {
        json = s_call (&s_rot, "POST", "/_sandbox/oauth/faults", s_json, bad [i], &status, NULL);
        if (status != 400)
            fail_msg ("%s: HTTP %ld, want 400", bad [i], status);
        json_decref (json);
    }

    //  down, once: 503, then the endpoint is back.
    json_decref (s_call (&s_rot, "POST", "/_sandbox/oauth/faults", s_json,
                         "{\"mode\":\"down\",\"count\":1}", &status, NULL));
    assert_int_equal (status, 201);
    s_expect_oauth_error (s_refresh (&s_rot, s_str (tokens, "refresh_token"), &status), &status,
                          503, "temporarily_unavailable");
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 0);
    json_t *next = s_refresh (&s_rot, s_str (tokens, "refresh_token"), &status);
    assert_int_equal (status, 200);
    json_decref (tokens);
    tokens = next;

    //  invalid_grant until cleared: nothing changes at the grant.
    json_decref (s_call (&s_rot, "POST", "/_sandbox/oauth/faults", s_json,
                         "{\"mode\":\"invalid_grant\"}", &status, NULL));
    for (int i = 0; i < 2; i++)
        s_expect_oauth_error (s_refresh (&s_rot, s_str (tokens, "refresh_token"), &status),
                              &status, 400, "invalid_grant");
    json = s_call (&s_rot, "DELETE", "/_sandbox/oauth/faults", NULL, NULL, &status, NULL);
    assert_int_equal (status, 200);
    assert_string_equal (s_str (json, "mode"), "none");
    json_decref (json);
    assert_int_equal (s_counter (&s_rot, grant, "revoked"), 0);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 1);

    //  slow: two refreshes with the same token are held at once (counted
    //  as concurrent), the loop still answers, both rotate when they go.
    json_decref (s_call (&s_rot, "POST", "/_sandbox/oauth/faults", s_json,
                         "{\"mode\":\"slow\",\"delay_ms\":1000,\"count\":2}", &status, NULL));
    assert_int_equal (status, 201);
    sb_harness_call_t *one = s_refresh_start (&s_rot, s_str (tokens, "refresh_token"), TIMEOUT_MS);
    sb_harness_call_t *two = s_refresh_start (&s_rot, s_str (tokens, "refresh_token"), TIMEOUT_MS);
    s_wait_pending (&s_rot, 2);
    int64_t asked = sb_harness_now_ms ();
    json_decref (s_call (&s_rot, "GET", "/healthz", NULL, NULL, &status, NULL));
    assert_int_equal (status, 200);
    assert_true (sb_harness_now_ms () - asked < 900);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes_in_flight"), 2);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 1);
    const sb_harness_response_t *first, *second;
    assert_int_equal (sb_harness_call_wait (one, TIMEOUT_MS, false, &first, NULL), 0);
    assert_int_equal (sb_harness_call_wait (two, TIMEOUT_MS, false, &second, NULL), 0);
    //  The first to be worked out rotated; the second used the token just
    //  rotated away, within the grace.
    assert_int_equal (first->status, 200);
    assert_int_equal (second->status, 200);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 3);
    assert_int_equal (s_counter (&s_rot, grant, "grace_reuses"), 1);
    assert_int_equal (s_counter (&s_rot, grant, "max_concurrent_refreshes"), 2);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes_in_flight"), 0);
    sb_harness_call_destroy (&one);
    sb_harness_call_destroy (&two);
    json_decref (tokens);

    //  slow, and the client gives up: the grant still rotates when the
    //  answer is due (the refresh token the client sent is replaced). A
    //  grant of its own: which of the two above was worked out last, and
    //  so holds the current refresh token, is not known here.
    tokens = s_connect (&s_rot, "ivan");
    s_grant_of (&s_rot, s_str (tokens, "access_token"), grant, sizeof grant);
    json_decref (s_call (&s_rot, "POST", "/_sandbox/oauth/faults", s_json,
                         "{\"mode\":\"slow\",\"delay_ms\":3000,\"count\":1}", &status, NULL));
    sb_harness_call_t *gone = s_refresh_start (&s_rot, s_str (tokens, "refresh_token"), 300);
    s_wait_pending (&s_rot, 1);
    assert_int_not_equal (sb_harness_call_wait (gone, TIMEOUT_MS, false, NULL, NULL), 0);
    sb_harness_call_destroy (&gone);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 0);
    s_wait_pending (&s_rot, 0);
    assert_int_equal (s_counter (&s_rot, grant, "refreshes"), 1);
    assert_int_equal (s_counter (&s_rot, grant, "max_concurrent_refreshes"), 1);
    json = s_call (&s_rot, "GET", "/_sandbox/oauth/faults", NULL, NULL, &status, NULL);
    assert_string_equal (s_str (json, "mode"), "none");     //  its count ran out
    json_decref (json);
    json_decref (tokens);
}

//  Bodies and methods the provider refuses, and a sandbox without it.
static void
test_bad_input (void **state)
{
    (void) state;
    long status;
    json_t *json = s_call (&s_rot, "GET", "/oauth/token", NULL, NULL, &status, NULL);
    assert_int_equal (status, 405);
    json_decref (json);
    json = s_call (&s_rot, "GET", "/oauth/nothing", NULL, NULL, &status, NULL);
    assert_int_equal (status, 404);
    json_decref (json);
    json = s_call (&s_rot, "PUT", "/_sandbox/oauth/grants", NULL, NULL, &status, NULL);
    assert_int_equal (status, 405);
    json_decref (json);
    size_t size = 20000;
    char *big = malloc (size + 1);
    assert_non_null (big);
    memset (big, 'a', size);
    big [size] = 0;
    json = s_call (&s_rot, "POST", "/oauth/token", s_form, big, &status, NULL);
    assert_int_equal (status, 413);
    json_decref (json);
    free (big);
    json = s_token (&s_rot, "grant_type=refresh_token&grant_type=refresh_token", true, &status);
    s_expect_oauth_error (json, &status, 400, "invalid_request");
    //  Still alive.
    json_decref (s_call (&s_rot, "GET", "/healthz", NULL, NULL, &status, NULL));
    assert_int_equal (status, 200);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_code_flow),
        cmocka_unit_test (test_client_auth),
        cmocka_unit_test (test_rotation_grace),
        cmocka_unit_test (test_no_rotation_expiry),
        cmocka_unit_test (test_controls_revoke),
        cmocka_unit_test (test_faults),
        cmocka_unit_test (test_bad_input),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
