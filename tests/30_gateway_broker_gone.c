/*  tests/30_gateway_broker_gone.c — failures answered at once, through the
    real sb-gateway and the real sb-broker (no worker at all):

    - broker up, no worker for `api`: a tools/call is answered by the
      broker, after its no-worker grace, with an isError result whose
      _meta.error_type is `unavailable` and retry_after the broker's;
    - broker killed (SIGKILL): once the gateway's heartbeats have gone
      unanswered for their liveness, a tools/call is answered by the
      gateway itself, `unavailable` ("cannot reach its job broker"), long
      before the call's deadline (SB_TEST_CALL_TIMEOUT_MS, 30 s);
    - broker started again on the same endpoints: calls reach it again.

    Waits poll with bounded loops (a short client-side timeout per try),
    never a fixed sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_crypto.h"
#include "sb_token.h"
#include "sb_msg.h"
#include "sb_harness.h"

#define T_CALL_TIMEOUT_MS   30000   /* --call-timeout-ms: the deadline a hung call would wait */
#define T_GRACE             "200"   /* the broker's --no-worker-grace-ms */
#define T_RETRY_MS          5000    /* the broker's retry advice (SB_BROKER_UNAVAILABLE_RETRY_MS) */
#define T_PROBE_MS          1500    /* client-side timeout of one try while polling */
#define T_POLL_MS           20000   /* longest poll for a state change */
#define T_BACKOFF_MS        50      /* pause between two tries of a poll */

static pid_t s_broker = -1;
static pid_t s_gateway = -1;
static char s_frontend [64];
static char s_backend [64];
static char s_base [64];
static char s_key_path [256];
static char s_session_key_path [272];    /* the session key, beside it */
static char *s_token;

static pid_t
s_start_broker (void)
{
    const char *argv [] = {
        sb_harness_bin ("sb-broker"), "--frontend", s_frontend, "--backend", s_backend,
        "--no-worker-grace-ms", T_GRACE, "--log-level", "warn", NULL
    };
    return sb_harness_spawn (argv, NULL);
}

//  One tools/call; 0 with the parsed reply in *reply, -1 when the client
//  gave up after `timeout_ms` (or no JSON came). *took_ms: how long it took.
static int
s_call (int timeout_ms, json_t **reply, int64_t *took_ms)
{
    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", s_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", s_token);
    const char *headers [] = {
        auth, "Content-Type: application/json", "Accept: application/json, text/event-stream", NULL
    };
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                       "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"acme\"}}}";
    long status = 0;
    char *text = NULL;
    int64_t start = sb_harness_now_ms ();
    int rc = sb_harness_http ("POST", url, headers, body, strlen (body), timeout_ms, &status, &text);
    *took_ms = sb_harness_now_ms () - start;
    *reply = rc == 0 && status == 200 && text? json_loads (text, 0, NULL): NULL;
    free (text);
    return *reply? 0: -1;
}

//  The CallToolResult's _meta.error_type (borrowed), or NULL.
static const char *
s_error_type (json_t *reply)
{
    json_t *result = json_object_get (reply, "result");
    if (!json_is_true (json_object_get (result, "isError")))
        return NULL;
    return json_string_value (json_object_get (json_object_get (result, "_meta"), "error_type"));
}

//  The first text content of the result (borrowed), or "".
static const char *
s_text (json_t *reply)
{
    json_t *content = json_object_get (json_object_get (reply, "result"), "content");
    const char *text = json_string_value (json_object_get (json_array_get (content, 0), "text"));
    return text? text: "";
}

//  Polls tools/call until its answer's text holds `needle`; returns that
//  reply (new reference; asserts within T_POLL_MS).
static json_t *
s_poll_until (const char *needle)
{
    int64_t deadline = sb_harness_now_ms () + T_POLL_MS;
    while (sb_harness_now_ms () < deadline) {
        json_t *reply = NULL;
        int64_t took = 0;
        if (s_call (T_PROBE_MS, &reply, &took) == 0) {
            if (strstr (s_text (reply), needle))
                return reply;
            json_decref (reply);
        }
        sb_harness_pause_ms (T_BACKOFF_MS);
    }
    fail_msg ("no tools/call answer saying \"%s\" within %d ms", needle, T_POLL_MS);
    return NULL;
}

static int
s_setup (void **state)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    snprintf (s_frontend, sizeof s_frontend, "tcp://127.0.0.1:%d", sb_harness_free_port ());
    snprintf (s_backend, sizeof s_backend, "tcp://127.0.0.1:%d", sb_harness_free_port ());
    s_broker = s_start_broker ();
    if (s_broker < 0)
        return -1;

    uint8_t key [32];
    char hex [65];
    if (sb_crypto_random (key, sizeof key))
        return -1;
    sb_hex_encode (key, sizeof key, hex);
    snprintf (s_key_path, sizeof s_key_path, "/tmp/sb-30-broker-gone-key-%d", (int) getpid ());
    FILE *file = fopen (s_key_path, "w");
    if (!file)
        return -1;
    fprintf (file, "%s\n", hex);
    fclose (file);
    snprintf (s_session_key_path, sizeof s_session_key_path, "%s.session", s_key_path);
    if (sb_harness_write_key (s_session_key_path))
        return -1;

    int port = sb_harness_free_port ();
    char listen [64], timeout [16];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    snprintf (timeout, sizeof timeout, "%d", T_CALL_TIMEOUT_MS);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", s_frontend,
        "--token-key-file", s_key_path, "--session-key-file", s_session_key_path,
        "--connectors", SB_SOURCE_DIR "/connectors",
        "--public-url", s_base, "--call-timeout-ms", timeout, "--log-level", "info", NULL
    };
    s_gateway = sb_harness_spawn (argv, NULL);
    if (s_gateway < 0)
        return -1;
    char health [128];
    snprintf (health, sizeof health, "%s/healthz", s_base);
    if (sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS))
        return -1;

    sb_token_claims_t claims;
    memset (&claims, 0, sizeof claims);
    snprintf (claims.tenant, sizeof claims.tenant, "acme");
    snprintf (claims.subject, sizeof claims.subject, "tester");
    snprintf (claims.scope, sizeof claims.scope, "mcp:tools mcp:write");
    snprintf (claims.audience, sizeof claims.audience, "%s/mcp", s_base);
    claims.issued_at = time (NULL) - 10;
    claims.expires_at = time (NULL) + 3600;
    s_token = sb_token_issue (&claims, key, sizeof key);
    return s_token? 0: -1;
}

static int
s_teardown (void **state)
{
    int rc = 0;
    if (s_gateway > 0) {
        int status = sb_harness_stop (s_gateway);
        if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
            fprintf (stderr, "sb-gateway did not exit cleanly: status %d\n", status);
            rc = -1;
        }
    }
    if (s_broker > 0)
        (void) sb_harness_stop (s_broker);
    free (s_token);
    unlink (s_key_path);
    unlink (s_session_key_path);
    curl_global_cleanup ();
    return rc;
}

//  The broker has no worker for `api`: it answers `unavailable` once its
//  grace has passed, with its retry advice, and the gateway says so.
static void
test_no_worker (void **state)
{
    json_t *reply = NULL;
    int64_t took = 0;
    assert_int_equal (s_call (T_CALL_TIMEOUT_MS + 5000, &reply, &took), 0);
    assert_non_null (s_error_type (reply));
    assert_string_equal (s_error_type (reply), "unavailable");
    json_t *meta = json_object_get (json_object_get (reply, "result"), "_meta");
    assert_int_equal (json_integer_value (json_object_get (meta, "retry_after")), T_RETRY_MS / 1000);
    assert_non_null (strstr (s_text (reply), "unavailable right now"));
    assert_true (took < T_CALL_TIMEOUT_MS / 10);
    json_decref (reply);
}

//  The broker is killed: the gateway answers at once while it is gone,
//  and sends calls again when it is back.
static void
test_broker_gone_and_back (void **state)
{
    sb_harness_kill (s_broker);
    s_broker = -1;
    //  Until the gateway's heartbeats have gone unanswered for their
    //  liveness, a call is still sent (and the client's short wait ends it)
    json_t *reply = s_poll_until ("cannot reach its job broker");
    json_decref (reply);

    //  Now every call is answered at once, long before its deadline
    int64_t took = 0;
    assert_int_equal (s_call (T_CALL_TIMEOUT_MS + 5000, &reply, &took), 0);
    assert_non_null (s_error_type (reply));
    assert_string_equal (s_error_type (reply), "unavailable");
    assert_non_null (strstr (s_text (reply), "cannot reach its job broker"));
    json_t *meta = json_object_get (json_object_get (reply, "result"), "_meta");
    assert_int_equal (json_integer_value (json_object_get (meta, "retry_after")),
                      (SB_GATEWAY_LIVENESS * SB_GATEWAY_HEARTBEAT_MS + 999) / 1000);
    assert_true (took < T_CALL_TIMEOUT_MS / 10);
    json_decref (reply);

    //  The broker comes back on the same endpoints: calls reach it again
    //  (and it answers them itself: still no worker)
    s_broker = s_start_broker ();
    assert_true (s_broker > 0);
    reply = s_poll_until ("none of its workers");
    assert_string_equal (s_error_type (reply), "unavailable");
    json_decref (reply);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_no_worker),
        cmocka_unit_test (test_broker_gone_and_back),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
