/*  tests/38_workers_provider.c — workers/sb_provider.c, a provider's
    token endpoint client, on a reactor of the test against the fake token
    endpoint of 38_fake_provider.c:

      - a refresh with client_secret_basic: the form, the Basic header
        (RFC 6749 §2.3.1: ID and secret form-urlencoded, then base64), the
        tokens, expires_in, scope and the kept vars; not rotated: no
        refresh token; client_secret_post: the pair in the form, no header;
        authorization_code: code, redirect_uri and code_verifier;
      - invalid_grant → REFUSED; 503 and 429 with Retry-After, another
        error code, 200 without access_token or not JSON, a token type
        other than Bearer, a redirect (not followed), an answer over the
        cap, a refused connection, a hang past the deadline → TRANSIENT;
      - cancel: the callback is never called; bad arguments → -1. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_fake_provider.h"
#include "sb_clock.h"
#include "sb_conn.h"
#include "sb_harness.h"
#include "sb_reactor.h"

#define WAIT_MS     10000       /* an answer, at most */

static fake_provider_t *s_fake;
static sb_reactor_t *s_reactor;
static sb_provider_t *s_provider;
static sb_connectors_t *s_connectors;
static char s_dir [128];

typedef struct {
    bool called;
    int calls;
    sb_provider_outcome_t outcome;
    sb_provider_tokens_t tokens;
    char detail [512];
    int retry_after_s;
} s_answer_t;

static void
s_on_answer (sb_provider_outcome_t outcome, sb_provider_tokens_t *tokens, const char *detail,
             int retry_after_s, void *arg)
{
    s_answer_t *answer = arg;
    answer->called = true;
    answer->calls++;
    answer->outcome = outcome;
    if (tokens) {
        answer->tokens = *tokens;       //  taken
        memset (tokens, 0, sizeof *tokens);
    }
    snprintf (answer->detail, sizeof answer->detail, "%s", detail? detail: "");
    answer->retry_after_s = retry_after_s;
}

static void
s_run_until (s_answer_t *answer)
{
    int64_t deadline = sb_clock_mono_ms () + WAIT_MS;
    while (!answer->called && sb_clock_mono_ms () < deadline)
        assert_int_equal (sb_reactor_run_once (s_reactor, 50), 0);
    assert_true (answer->called);
}

static void
s_write (const char *name, const char *text)
{
    char path [256];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  A connector "p-<name>" whose token endpoint is the fake's, `auth` its
//  client authentication.
static void
s_connector (const char *name, const char *auth, const char *secret_env)
{
    char text [2048], file [64];
    snprintf (text, sizeof text,
              "{\"name\":\"p-%s\",\"title\":\"P\",\"base_url\":\"{instance_url}\","
              "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"%s/authorize\","
              "\"token_url\":\"%s/token\",\"client_id_env\":\"SB_TEST_PROVIDER_ID\"%s%s%s,"
              "\"client_auth\":\"%s\",\"keep\":[\"instance_url\"]}},"
              "\"tools\":[{\"name\":\"t-%s\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
              "\"request\":{\"method\":\"GET\",\"path\":\"/q\"},"
              "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}",
              name, fake_provider_url (s_fake), fake_provider_url (s_fake),
              secret_env? ",\"client_secret_env\":\"": "", secret_env? secret_env: "",
              secret_env? "\"": "", auth, name);
    snprintf (file, sizeof file, "%s.json", name);
    s_write (file, text);
}

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-provider-%d", (int) getpid ());
    mkdir (s_dir, 0700);
    s_fake = fake_provider_new ();
    assert_non_null (s_fake);
    setenv ("SB_TEST_PROVIDER_ID", "client:1", 1);
    setenv ("SB_TEST_PROVIDER_SECRET", "s&cret+/", 1);
    s_connector ("basic", "client_secret_basic", "SB_TEST_PROVIDER_SECRET");
    s_connector ("post", "client_secret_post", "SB_TEST_PROVIDER_SECRET");
    s_connector ("public", "client_secret_basic", NULL);
    char *error = NULL;
    s_connectors = sb_connectors_load (s_dir, &error);
    if (!s_connectors)
        fail_msg ("%s", error);
    s_reactor = sb_reactor_new ();
    assert_non_null (s_reactor);
    s_provider = sb_provider_new (s_reactor);
    assert_non_null (s_provider);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    sb_provider_destroy (&s_provider);
    assert_null (s_provider);
    sb_reactor_destroy (&s_reactor);
    sb_connectors_destroy (&s_connectors);
    fake_provider_destroy (&s_fake);
    char path [256];
    const char *names [] = { "basic.json", "post.json", "public.json" };
    for (size_t at = 0; at < 3; at++) {
        snprintf (path, sizeof path, "%s/%s", s_dir, names [at]);
        unlink (path);
    }
    rmdir (s_dir);
    return 0;
}

static const sb_connector_t *
s_find (const char *name)
{
    const sb_connector_t *connector = sb_connectors_find (s_connectors, name);
    assert_non_null (connector);
    return connector;
}

//  Refreshes on connector `name` with "rt/x" and runs until the answer.
static void
s_refresh (const char *name, s_answer_t *answer, int64_t wait_ms)
{
    memset (answer, 0, sizeof *answer);
    int64_t id = sb_provider_token (s_provider, s_find (name), NULL, NULL, NULL, "rt/x",
                                    sb_clock_mono_ms () + wait_ms, s_on_answer, answer);
    assert_true (id > 0);
    s_run_until (answer);
    assert_int_equal (answer->calls, 1);
}

static void
test_refresh_basic (void **state)
{
    (void) state;
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, true, 3600, 0);
    s_answer_t answer;
    s_refresh ("p-basic", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_OK);
    char access [64], refresh [64], body [4096], auth [512];
    fake_provider_last_tokens (s_fake, access, refresh, sizeof access);
    assert_string_equal (answer.tokens.access_token, access);
    assert_string_equal (answer.tokens.refresh_token, refresh);
    assert_int_equal (answer.tokens.expires_in, 3600);
    assert_string_equal (answer.tokens.scope, "read write");
    char url [128];
    snprintf (url, sizeof url, "%s/instance", fake_provider_url (s_fake));
    assert_string_equal (json_string_value (json_object_get (answer.tokens.vars, "instance_url")), url);
    assert_int_equal (json_object_size (answer.tokens.vars), 1);
    fake_provider_last_body (s_fake, body, sizeof body);
    assert_string_equal (body, "grant_type=refresh_token&refresh_token=rt%2Fx");
    fake_provider_last_authorization (s_fake, auth, sizeof auth);
    //  base64 ("client%3A1:s%26cret%2B%2F")
    assert_string_equal (auth, "Basic Y2xpZW50JTNBMTpzJTI2Y3JldCUyQiUyRg==");
    sb_provider_tokens_clear (&answer.tokens);
    assert_null (answer.tokens.access_token);

    //  Not rotated: no refresh token comes back
    fake_provider_tokens (s_fake, false, 120, 0);
    s_refresh ("p-basic", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_OK);
    assert_null (answer.tokens.refresh_token);
    assert_int_equal (answer.tokens.expires_in, 120);
    sb_provider_tokens_clear (&answer.tokens);
    fake_provider_tokens (s_fake, true, 3600, 0);
}

static void
test_post_and_code (void **state)
{
    (void) state;
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    s_answer_t answer;
    s_refresh ("p-post", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_OK);
    sb_provider_tokens_clear (&answer.tokens);
    char body [4096], auth [512];
    fake_provider_last_body (s_fake, body, sizeof body);
    assert_string_equal (body, "grant_type=refresh_token&refresh_token=rt%2Fx"
                               "&client_id=client%3A1&client_secret=s%26cret%2B%2F");
    fake_provider_last_authorization (s_fake, auth, sizeof auth);
    assert_string_equal (auth, "");

    //  The authorization code grant of a public client
    memset (&answer, 0, sizeof answer);
    int64_t id = sb_provider_token (s_provider, s_find ("p-public"), "c0de", "v3rifier",
                                    "https://sb.example/connect/callback", NULL,
                                    sb_clock_mono_ms () + WAIT_MS, s_on_answer, &answer);
    assert_true (id > 0);
    s_run_until (&answer);
    assert_int_equal (answer.outcome, SB_PROVIDER_OK);
    assert_non_null (answer.tokens.refresh_token);
    sb_provider_tokens_clear (&answer.tokens);
    fake_provider_last_body (s_fake, body, sizeof body);
    assert_string_equal (body, "grant_type=authorization_code&code=c0de"
                               "&redirect_uri=https%3A%2F%2Fsb.example%2Fconnect%2Fcallback"
                               "&code_verifier=v3rifier&client_id=client%3A1");
    fake_provider_last_authorization (s_fake, auth, sizeof auth);
    assert_string_equal (auth, "");
}

//  An answer on p-basic of `head` (status line and headers) and `body`:
//  its outcome, detail and Retry-After.
static void
s_raw (const char *head, const char *body, sb_provider_outcome_t outcome, const char *in_detail,
       int retry_after_s)
{
    char raw [1024];
    snprintf (raw, sizeof raw, "%s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
              head, strlen (body), body);
    fake_provider_set (s_fake, FAKE_RAW, raw);
    s_answer_t answer;
    s_refresh ("p-basic", &answer, WAIT_MS);
    if (answer.outcome != outcome || !strstr (answer.detail, in_detail))
        fail_msg ("outcome %d, \"%s\" (wanted %d, \"%s\")", answer.outcome, answer.detail,
                  outcome, in_detail);
    assert_int_equal (answer.retry_after_s, retry_after_s);
    if (outcome == SB_PROVIDER_OK)
        sb_provider_tokens_clear (&answer.tokens);
    assert_null (answer.tokens.access_token);
}

static void
test_errors (void **state)
{
    (void) state;
    s_answer_t answer;
    fake_provider_set (s_fake, FAKE_INVALID_GRANT, NULL);
    s_refresh ("p-basic", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_REFUSED);
    assert_non_null (strstr (answer.detail, "invalid_grant"));
    assert_null (strstr (answer.detail, "rt/x"));       //  never the token
    fake_provider_set (s_fake, FAKE_UNAVAILABLE, NULL);
    s_refresh ("p-basic", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_TRANSIENT);
    assert_int_equal (answer.retry_after_s, 1);
    assert_non_null (strstr (answer.detail, "503"));

    s_raw ("HTTP/1.1 401 X\r\nContent-Type: application/json", "{\"error\":\"invalid_client\"}",
           SB_PROVIDER_REFUSED, "invalid_client", -1);
    s_raw ("HTTP/1.1 400 X", "{\"error\":\"unauthorized_client\"}", SB_PROVIDER_REFUSED,
           "unauthorized_client", -1);
    s_raw ("HTTP/1.1 429 X\r\nRetry-After: 7", "", SB_PROVIDER_TRANSIENT, "429", 7);
    s_raw ("HTTP/1.1 400 X", "{\"error\":\"invalid_request\"}", SB_PROVIDER_TRANSIENT,
           "invalid_request", -1);
    s_raw ("HTTP/1.1 500 X", "{\"error\":\"invalid_grant\"}", SB_PROVIDER_TRANSIENT, "500", -1);
    s_raw ("HTTP/1.1 200 OK", "hello", SB_PROVIDER_TRANSIENT, "not a JSON object", -1);
    s_raw ("HTTP/1.1 200 OK", "{\"token_type\":\"Bearer\"}", SB_PROVIDER_TRANSIENT,
           "no access_token", -1);
    s_raw ("HTTP/1.1 200 OK", "{\"access_token\":\"a\",\"token_type\":\"mac\"}",
           SB_PROVIDER_TRANSIENT, "not Bearer", -1);
    s_raw ("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere", "",
           SB_PROVIDER_TRANSIENT, "redirects are not followed", -1);
    //  expires_in as a string, and a missing token_type, are accepted
    s_raw ("HTTP/1.1 200 OK", "{\"access_token\":\"a\",\"expires_in\":\"90\"}", SB_PROVIDER_OK,
           "", -1);
    fake_provider_set (s_fake, FAKE_RAW, "HTTP/1.1 200 OK\r\nContent-Length: 38\r\n"
                       "Connection: close\r\n\r\n{\"access_token\":\"a\",\"expires_in\":\"90\"}");
    s_refresh ("p-basic", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_OK);
    assert_int_equal (answer.tokens.expires_in, 90);
    assert_int_equal (json_object_size (answer.tokens.vars), 0);
    sb_provider_tokens_clear (&answer.tokens);

    //  An answer over the cap
    size_t big = 70 * 1024;
    char *raw = malloc (big + 256);
    assert_non_null (raw);
    int head = snprintf (raw, 256, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"access_token\":\"");
    memset (raw + head, 'a', big);
    snprintf (raw + head + big, 8, "\"}");
    fake_provider_set (s_fake, FAKE_RAW, raw);
    s_refresh ("p-basic", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_TRANSIENT);
    assert_non_null (strstr (answer.detail, "larger than 65536 bytes"));
    free (raw);
}

static void
test_network (void **state)
{
    (void) state;
    //  A hang past the deadline
    fake_provider_set (s_fake, FAKE_HANG, NULL);
    s_answer_t answer;
    int64_t started = sb_clock_mono_ms ();
    s_refresh ("p-basic", &answer, 300);
    assert_int_equal (answer.outcome, SB_PROVIDER_TRANSIENT);
    assert_non_null (strstr (answer.detail, "in time"));
    assert_true (sb_clock_mono_ms () - started < 3000);

    //  A cancelled request is never answered; the next one is
    fake_provider_accept (s_fake, "");
    s_answer_t cancelled = { 0 };
    int requests = fake_provider_requests (s_fake);
    int64_t id = sb_provider_token (s_provider, s_find ("p-basic"), NULL, NULL, NULL, "rt",
                                    sb_clock_mono_ms () + 200, s_on_answer, &cancelled);
    assert_true (id > 0);
    while (fake_provider_requests (s_fake) == requests)
        assert_int_equal (sb_reactor_run_once (s_reactor, 20), 0);
    sb_provider_cancel (s_provider, id);
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    s_refresh ("p-basic", &answer, WAIT_MS);
    assert_int_equal (answer.outcome, SB_PROVIDER_OK);
    sb_provider_tokens_clear (&answer.tokens);
    //  Past the cancelled one's deadline, too
    int64_t until = sb_clock_mono_ms () + 400;
    while (sb_clock_mono_ms () < until)
        assert_int_equal (sb_reactor_run_once (s_reactor, 50), 0);
    assert_false (cancelled.called);

    //  Nobody listening
    int port = sb_harness_free_port ();
    char dir [160], text [1024];
    snprintf (dir, sizeof dir, "%s/closed", s_dir);
    mkdir (dir, 0700);
    snprintf (text, sizeof text,
              "{\"name\":\"p-closed\",\"title\":\"P\",\"base_url\":\"http://127.0.0.1:%d\","
              "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"/a\",\"token_url\":\"/t\","
              "\"client_id_env\":\"SB_TEST_PROVIDER_ID\"}},"
              "\"tools\":[{\"name\":\"t-closed\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
              "\"request\":{\"method\":\"GET\",\"path\":\"/q\"},"
              "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}", port);
    char path [256];
    snprintf (path, sizeof path, "%s/c.json", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    char *error = NULL;
    sb_connectors_t *closed = sb_connectors_load (dir, &error);
    if (!closed)
        fail_msg ("%s", error);
    memset (&answer, 0, sizeof answer);
    id = sb_provider_token (s_provider, sb_connectors_find (closed, "p-closed"), NULL, NULL, NULL,
                            "rt", sb_clock_mono_ms () + WAIT_MS, s_on_answer, &answer);
    assert_true (id > 0);
    s_run_until (&answer);
    assert_int_equal (answer.outcome, SB_PROVIDER_TRANSIENT);
    assert_non_null (strstr (answer.detail, "could not be reached"));
    sb_connectors_destroy (&closed);
    unlink (path);
    rmdir (dir);
}

static void
test_bad_arguments (void **state)
{
    (void) state;
    s_answer_t answer = { 0 };
    int64_t deadline = sb_clock_mono_ms () + WAIT_MS;
    //  Neither grant, both grants, no connector
    assert_int_equal (sb_provider_token (s_provider, s_find ("p-basic"), NULL, NULL, NULL, NULL,
                                         deadline, s_on_answer, &answer), -1);
    assert_int_equal (sb_provider_token (s_provider, s_find ("p-basic"), "c", "v", "https://x/cb",
                                         "rt", deadline, s_on_answer, &answer), -1);
    assert_int_equal (sb_provider_token (s_provider, NULL, NULL, NULL, NULL, "rt", deadline,
                                         s_on_answer, &answer), -1);
    //  Not an oauth2 connector
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (SB_SOURCE_DIR "/connectors", &error);
    if (!set)
        fail_msg ("%s", error);
    const sb_connector_t *crm = sb_connectors_find (set, "sandbox-crm");
    assert_non_null (crm);
    assert_int_equal (sb_provider_token (s_provider, crm, NULL, NULL, NULL, "rt", deadline,
                                         s_on_answer, &answer), -1);
    sb_connectors_destroy (&set);
    assert_false (answer.called);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_refresh_basic),
        cmocka_unit_test (test_post_and_code),
        cmocka_unit_test (test_errors),
        cmocka_unit_test (test_network),
        cmocka_unit_test (test_bad_arguments),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
