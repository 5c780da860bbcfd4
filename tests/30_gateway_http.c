/*  tests/30_gateway_http.c — integration test of the real sb-gateway binary
    over HTTP, against a fake broker run in this test (a ROUTER socket in a
    zactor thread, speaking the proto codec).

    The fake broker keeps audit/record jobs (service token) apart: it
    counts them and keeps the last one's tenant and data, answering
    {"recorded":true}. For other jobs it decides by the tool arguments' text:
      "never"  never answers              (the gateway's own deadline fires)
      "slow"   answers OK after 1 s       (the client has gone by then)
      "busy"   answers OVERLOADED with {"retry_after":3}
      else     answers OK at once with structuredContent echoing the job
    It counts requests received and replies sent, so the test waits on
    events, not sleeps. The last test stops the gateway with a call pending. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sb_connector.h"
#include "sb_crypto.h"
#include "sb_jwks.h"
#include "sb_token.h"
#include "sb_job.h"
#include "sb_msg.h"
#include "sb_harness.h"
#include "sb_listed.h"

#define CALL_TIMEOUT_MS     500     /* --call-timeout-ms; local deadline is +2 s */
#define SLOW_REPLY_MS       1000    /* the fake broker's delay for "slow" */
#define MAX_DELAYED         64      /* replies the fake broker holds back */

static pid_t s_gateway = -1;
static zactor_t *s_broker;
static char s_base [64];            /* http://127.0.0.1:<port> */
static char s_key_path [256];
static char s_session_key_path [272];    /* the session key, beside it */
static char s_jwks_path [272];          /* the EdDSA public key set, beside it */
static char s_admin_key_path [272];     /* the operator key (--admin-key-file), beside it */
#define ADMIN_KEY           "the operator key of test 30_gateway_http"
static const uint8_t s_seed_current [SB_ED25519_KEY_LEN] = "the current ed25519 signing seed";
static const uint8_t s_seed_previous [SB_ED25519_KEY_LEN] = "the previous ed25519 signing key";
static uint8_t s_key [32];
static char *s_token;               /* valid token for tenant "acme" */
static sb_connectors_t *s_connectors;

//  ---------------------------------------------------------------------------
//  The fake broker

typedef struct {
    int64_t due;            /* monotonic ms */
    zframe_t *routing;      /* owned */
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
} s_delayed_t;

//  The job's echo as a CallToolResult.
static zframe_t *
s_echo (const sb_msg_t *request, const sb_job_t *job)
{
    json_t *result = json_pack ("{s:[{s:s, s:s}], s:{s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s}}",
        "content", "type", "text", "text", "echo",
        "structuredContent",
            "tenant", request->tenant, "service", request->service,
            "flags", (int) request->flags, "timeout_ms", (int) request->timeout_ms,
            "op", job->op? job->op: "", "connector", job->connector? job->connector: "",
            "tool", job->tool? job->tool: "", "args", job->args? job->args: "");
    char *text = json_dumps (result, JSON_COMPACT);
    zframe_t *frame = sb_job_result_encode (text);
    free (text);
    json_decref (result);
    return frame;
}

static void
s_reply (zsock_t *router, zframe_t *routing, const char *corr_id, sb_status_t status,
         zframe_t *payload, int *sent)
{
    sb_msg_t reply = { 0 };
    if (sb_msg_set_reply (&reply, corr_id, status, &payload) == 0
    &&  sb_msg_send (router, &reply, routing) == 0)
        (*sent)++;
    sb_msg_reset (&reply);
}

static void
s_fake_broker (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "%d", port);
    s_delayed_t delayed [MAX_DELAYED];
    size_t held = 0;
    int sent = 0, received = 0, audits = 0;
    char last_audit [2048] = "";
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        zsock_t *which = zpoller_wait (poller, 20);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool done = !command || streq (command, "$TERM");
            if (command && streq (command, "SENT"))
                zstr_sendf (pipe, "%d", sent);
            if (command && streq (command, "RECEIVED"))
                zstr_sendf (pipe, "%d", received);
            if (command && streq (command, "AUDITS"))
                zstr_sendf (pipe, "%d", audits);
            if (command && streq (command, "LAST_AUDIT"))
                zstr_send (pipe, last_audit);
            zstr_free (&command);
            if (done)
                break;
        }
        else
        if (which == router) {
            sb_msg_t msg = { 0 };
            zframe_t *routing = NULL;
            int rc = sb_msg_recv (router, &msg, &routing);
            if (rc == SB_MSG_OK && msg.command == SB_CMD_HEARTBEAT)
                (void) !sb_msg_send (router, &msg, routing);  //  as the broker: "alive" (one lost is missed only after 3)
            else
            if (rc == SB_MSG_OK && msg.command == SB_CMD_REQUEST) {
                sb_job_t job = { 0 };
                int decoded = msg.payload? sb_job_decode (zframe_data (msg.payload),
                                                          zframe_size (msg.payload), &job): 0;
                assert (decoded == 0);
                bool audit = job.op && streq (job.op, "audit/record") && streq (msg.service, "token");
                if (audit)
                    audits++;
                else
                    received++;
                const char *text = job.args? job.args: "";
                if (audit) {
                    snprintf (last_audit, sizeof last_audit, "%s\n%s", msg.tenant,
                              job.data? job.data: "");
                    zframe_t *recorded = sb_job_result_encode ("{\"recorded\":true}");
                    int answered = 0;       //  not among the replies SENT counts
                    s_reply (router, routing, msg.corr_id, SB_STATUS_OK, recorded, &answered);
                }
                else
                if (strstr (text, "never"))
                    ;
                else
                if (strstr (text, "slow") && held < MAX_DELAYED) {
                    delayed [held].due = zclock_mono () + SLOW_REPLY_MS;
                    delayed [held].routing = routing;
                    routing = NULL;
                    snprintf (delayed [held].corr_id, sizeof delayed [held].corr_id, "%s", msg.corr_id);
                    held++;
                }
                else
                if (strstr (text, "busy"))
                    s_reply (router, routing, msg.corr_id, SB_STATUS_OVERLOADED,
                             sb_job_result_encode ("{\"retry_after\":3}"), &sent);
                else
                    s_reply (router, routing, msg.corr_id, SB_STATUS_OK, s_echo (&msg, &job), &sent);
                sb_job_clear (&job);
            }
            zframe_destroy (&routing);
            sb_msg_reset (&msg);
        }
        for (size_t i = 0; i < held; ) {
            if (zclock_mono () < delayed [i].due) {
                i++;
                continue;
            }
            zframe_t *payload = sb_job_result_encode ("{\"content\":[{\"type\":\"text\",\"text\":\"late\"}]}");
            s_reply (router, delayed [i].routing, delayed [i].corr_id, SB_STATUS_OK, payload, &sent);
            zframe_destroy (&delayed [i].routing);
            delayed [i] = delayed [--held];
        }
    }
    for (size_t i = 0; i < held; i++)
        zframe_destroy (&delayed [i].routing);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static int
s_broker_count (const char *what)
{
    zstr_send (s_broker, what);
    char *text = zstr_recv (s_broker);
    int sent = text? (int) strtol (text, NULL, 10): -1;
    zstr_free (&text);
    return sent;
}

static int
s_broker_sent (void)
{
    return s_broker_count ("SENT");
}

//  Waits (polling, with a deadline) until the fake broker has had at least
//  `expected` audit/record jobs; returns how many it had.
static int
s_wait_audits (int expected)
{
    int64_t deadline = zclock_mono () + 5000;
    int audits = s_broker_count ("AUDITS");
    while (audits < expected && zclock_mono () < deadline) {
        zclock_sleep (10);
        audits = s_broker_count ("AUDITS");
    }
    return audits;
}

//  The last audit/record job: asserts its tenant, action and subject, and
//  returns its detail (new reference).
static json_t *
s_last_audit (const char *tenant, const char *action, const char *subject)
{
    zstr_send (s_broker, "LAST_AUDIT");
    char *text = zstr_recv (s_broker);
    assert_non_null (text);
    char *newline = strchr (text, '\n');
    assert_non_null (newline);
    *newline = 0;
    assert_string_equal (text, tenant);
    json_t *data = json_loads (newline + 1, 0, NULL);
    zstr_free (&text);
    assert_non_null (data);
    assert_string_equal (json_string_value (json_object_get (data, "action")), action);
    assert_string_equal (json_string_value (json_object_get (data, "subject")), subject);
    json_t *detail = json_incref (json_object_get (data, "detail"));
    json_decref (data);
    assert_true (json_is_object (detail));
    return detail;
}

//  ---------------------------------------------------------------------------
//  A small HTTP client that also returns WWW-Authenticate

typedef struct {
    long status;
    char *body;
    size_t len;
    char www_authenticate [512];
    char content_type [128];
    char session_id [512];
} s_response_t;

//  What the harness's response says, in s_response_t's shape (its body
//  taken over).
static void
s_take (sb_harness_response_t *response, s_response_t *r)
{
    r->status = response->status;
    r->body = response->body;
    r->len = response->body_len;
    response->body = NULL;
    sb_harness_header (response, "WWW-Authenticate", r->www_authenticate,
                       sizeof r->www_authenticate);
    sb_harness_header (response, "Content-Type", r->content_type, sizeof r->content_type);
    sb_harness_header (response, "Mcp-Session-Id", r->session_id, sizeof r->session_id);
    sb_harness_response_clear (response);
}

//  One request. `token` NULL sends no Authorization; content_type NULL
//  sends none. Returns the curl result (0 = a response came).
static const char **s_extra;        /* extra request headers for the next request */

static int
s_request_ex (const char *method, const char *path, const char *token, const char *content_type,
              const char *body, size_t len, int timeout_ms, bool http2, s_response_t *r)
{
    memset (r, 0, sizeof *r);
    char url [256], auth [SB_MAX_TOKEN_LEN + 64], type [128];
    snprintf (url, sizeof url, "%s%s", s_base, path);
    const char *headers [16] = { type };
    size_t count = 1;
    snprintf (type, sizeof type, "Content-Type: %s", content_type? content_type: "");
    if (token) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
        headers [count++] = auth;
    }
    for (int i = 0; s_extra && s_extra [i] && count < 15; i++)
        headers [count++] = s_extra [i];
    sb_harness_request_t request = { .method = method, .url = url, .headers = headers,
                                     .body = body, .body_len = len, .timeout_ms = timeout_ms,
                                     .http2 = http2 };
    sb_harness_response_t response;
    int rc = sb_harness_request (&request, &response);
    s_take (&response, r);
    return rc;
}

static void
s_request (const char *method, const char *path, const char *token, const char *content_type,
           const char *body, s_response_t *r)
{
    int rc = s_request_ex (method, path, token, content_type, body, body? strlen (body): 0,
                           10000, false, r);
    assert_int_equal (rc, 0);
}

static json_t *
s_json (s_response_t *r)
{
    assert_non_null (r->body);
    json_t *json = json_loads (r->body, 0, NULL);
    if (!json)
        fail_msg ("not JSON: %s", r->body);
    assert_string_equal (r->content_type, "application/json");
    return json;
}

static void
s_response_free (s_response_t *r)
{
    free (r->body);
    r->body = NULL;
}

//  POST /mcp with the good token; returns the parsed JSON (status asserted).
static json_t *
s_mcp (const char *body, long expect_status)
{
    s_response_t r;
    s_request ("POST", "/mcp", s_token, "application/json", body, &r);
    if (r.status != expect_status)
        fail_msg ("status %ld, expected %ld: %s", r.status, expect_status, r.body? r.body: "");
    json_t *json = s_json (&r);
    s_response_free (&r);
    return json;
}

static int
s_error_code (json_t *reply)
{
    return (int) json_integer_value (json_object_get (json_object_get (reply, "error"), "code"));
}

//  ---------------------------------------------------------------------------
//  Fixture

//  A token for user `subject` of `tenant` granting `scope`.
static char *
s_issue_scoped (const char *tenant, const char *subject, const char *audience, int64_t ttl,
                const uint8_t *key, const char *scope)
{
    sb_token_claims_t c;
    memset (&c, 0, sizeof c);
    snprintf (c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf (c.subject, sizeof c.subject, "%s", subject);
    snprintf (c.audience, sizeof c.audience, "%s", audience);
    snprintf (c.scope, sizeof c.scope, "%s", scope);
    c.issued_at = time (NULL) - 10;
    c.expires_at = time (NULL) + ttl;
    if (ttl < 0)
        c.issued_at = c.expires_at - 100;
    return sb_token_issue (&c, key, 32);
}

//  A token for user `subject` of `tenant` with every scope.
static char *
s_issue_as (const char *tenant, const char *subject, const char *audience, int64_t ttl,
            const uint8_t *key)
{
    return s_issue_scoped (tenant, subject, audience, ttl, key, "mcp:tools mcp:write");
}

//  An EdDSA token for user "tester" of `tenant`, signed with `seed` as `kid`.
static char *
s_issue_eddsa (const char *tenant, const uint8_t *seed, const char *kid)
{
    sb_token_claims_t c;
    memset (&c, 0, sizeof c);
    snprintf (c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf (c.subject, sizeof c.subject, "tester");
    snprintf (c.audience, sizeof c.audience, "%s/mcp", s_base);
    snprintf (c.scope, sizeof c.scope, "mcp:tools mcp:write");
    c.issued_at = time (NULL) - 10;
    c.expires_at = time (NULL) + 600;
    return sb_token_issue_eddsa (&c, seed, kid);
}

//  A token for user "tester" of `tenant`.
static char *
s_issue (const char *tenant, const char *audience, int64_t ttl, const uint8_t *key)
{
    return s_issue_as (tenant, "tester", audience, ttl, key);
}

static int
s_setup (void **state)
{
    zsys_init ();
    zsys_handler_set (NULL);
    char *error = NULL;
    s_connectors = sb_connectors_load (SB_TEST_CONNECTORS, &error);
    free (error);
    if (!s_connectors)
        return -1;

    s_broker = zactor_new (s_fake_broker, NULL);
    char *port_text = zstr_recv (s_broker);
    int broker_port = port_text? (int) strtol (port_text, NULL, 10): -1;
    zstr_free (&port_text);
    if (broker_port <= 0)
        return -1;

    if (sb_crypto_random (s_key, sizeof s_key))
        return -1;
    snprintf (s_key_path, sizeof s_key_path, "/tmp/sb-30-gateway-key-%d", (int) getpid ());
    FILE *file = fopen (s_key_path, "w");
    char hex [65];
    sb_hex_encode (s_key, sizeof s_key, hex);
    fprintf (file, "%s\n", hex);
    fclose (file);
    snprintf (s_session_key_path, sizeof s_session_key_path, "%s.session", s_key_path);
    if (sb_harness_write_key (s_session_key_path))
        return -1;
    snprintf (s_admin_key_path, sizeof s_admin_key_path, "%s.admin", s_key_path);
    file = fopen (s_admin_key_path, "w");
    if (!file)
        return -1;
    fprintf (file, "%s\n", ADMIN_KEY);
    fclose (file);
    //  The EdDSA key set: the current key and the previous one.
    snprintf (s_jwks_path, sizeof s_jwks_path, "%s.jwks", s_key_path);
    char *current = sb_jwks_public_jwk (s_seed_current, "2026-12");
    char *previous = sb_jwks_public_jwk (s_seed_previous, "2026-11");
    file = fopen (s_jwks_path, "w");
    if (!current || !previous || !file)
        return -1;
    fprintf (file, "{\"keys\":[%s,%s]}\n", current, previous);
    fclose (file);
    free (current);
    free (previous);

    int port = sb_harness_free_port ();
    char listen [64], broker [64], public_url [64], timeout [16];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%d", broker_port);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    snprintf (public_url, sizeof public_url, "%s", s_base);
    snprintf (timeout, sizeof timeout, "%d", CALL_TIMEOUT_MS);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", broker,
        "--token-key-file", s_key_path, "--session-key-file", s_session_key_path,
        "--token-jwks-file", s_jwks_path, "--admin-key-file", s_admin_key_path,
        "--connectors", SB_TEST_CONNECTORS,
        "--public-url", public_url, "--call-timeout-ms", timeout, "--log-level", "info",
        "--tools-page-size", "2", "--allowed-origins", "https://allowed.example",
        "--allowed-hosts", "allowed-host.example", NULL
    };
    s_gateway = sb_harness_spawn (argv, NULL);
    if (s_gateway < 0)
        return -1;
    char health [128];
    snprintf (health, sizeof health, "%s/healthz", s_base);
    if (sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS))
        return -1;
    char audience [128];
    snprintf (audience, sizeof audience, "%s/mcp", s_base);
    s_token = s_issue ("acme", audience, 3600, s_key);
    return s_token? 0: -1;
}

static int
s_teardown (void **state)
{
    int rc = 0;
    if (s_gateway > 0) {
        //  SIGTERM: the gateway drains and exits 0.
        int status = sb_harness_stop (s_gateway);
        if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
            fprintf (stderr, "sb-gateway did not exit cleanly: status %d\n", status);
            rc = -1;
        }
    }
    zactor_destroy (&s_broker);
    sb_connectors_destroy (&s_connectors);
    free (s_token);
    unlink (s_key_path);
    unlink (s_session_key_path);
    unlink (s_jwks_path);
    unlink (s_admin_key_path);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Tests

static void
test_health_404_405 (void **state)
{
    s_response_t r;
    s_request ("GET", "/healthz", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 200);
    json_t *json = s_json (&r);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "ok");
    json_decref (json);
    s_response_free (&r);

    s_request ("GET", "/nowhere", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 404);
    json = s_json (&r);
    assert_string_equal (json_string_value (json_object_get (json, "error")), "not_found");
    json_decref (json);
    s_response_free (&r);

    //  GET and DELETE need a session.
    s_request ("GET", "/mcp", s_token, NULL, NULL, &r);
    assert_int_equal (r.status, 400);
    json_decref (s_json (&r));
    s_response_free (&r);

    s_request ("DELETE", "/mcp", s_token, NULL, NULL, &r);
    assert_int_equal (r.status, 400);
    s_response_free (&r);

    s_request ("PUT", "/mcp", s_token, NULL, NULL, &r);
    assert_int_equal (r.status, 405);
    s_response_free (&r);

    s_request ("GET", "/.well-known/oauth-protected-resource", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 200);
    json = s_json (&r);
    char audience [128];
    snprintf (audience, sizeof audience, "%s/mcp", s_base);
    assert_string_equal (json_string_value (json_object_get (json, "resource")), audience);
    //  It names the authorization server, whose RFC 8414 metadata answers.
    json_t *servers = json_object_get (json, "authorization_servers");
    assert_string_equal (json_string_value (json_array_get (servers, 0)), s_base);
    json_decref (json);
    s_response_free (&r);

    s_request ("GET", "/.well-known/oauth-authorization-server", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 200);
    json = s_json (&r);
    assert_string_equal (json_string_value (json_object_get (json, "issuer")), s_base);
    char token_endpoint [128];
    snprintf (token_endpoint, sizeof token_endpoint, "%s/token", s_base);
    assert_string_equal (json_string_value (json_object_get (json, "token_endpoint")), token_endpoint);
    json_t *methods = json_object_get (json, "code_challenge_methods_supported");
    assert_int_equal (json_array_size (methods), 1);
    assert_string_equal (json_string_value (json_array_get (methods, 0)), "S256");
    assert_true (json_is_true (json_object_get (json, "authorization_response_iss_parameter_supported")));
    assert_true (json_is_true (json_object_get (json, "client_id_metadata_document_supported")));
    json_decref (json);
    s_response_free (&r);
    s_request ("POST", "/.well-known/oauth-authorization-server", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 405);
    s_response_free (&r);
}

static void
test_unauthorized (void **state)
{
    const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    char expected [256];
    snprintf (expected, sizeof expected,
              "resource_metadata=\"%s/.well-known/oauth-protected-resource\"", s_base);
    s_response_t r;

    //  No token at all: where to find the authorization server, and
    //  every scope this resource knows (the client asks for them).
    s_request ("POST", "/mcp", NULL, "application/json", ping, &r);
    assert_int_equal (r.status, 401);
    assert_non_null (strstr (r.www_authenticate, "Bearer"));
    assert_non_null (strstr (r.www_authenticate, expected));
    assert_non_null (strstr (r.www_authenticate, "scope=\"mcp:tools mcp:write\""));
    assert_null (strstr (r.www_authenticate, "invalid_token"));
    json_decref (s_json (&r));
    s_response_free (&r);

    //  Garbage, another key, expired, wrong audience.
    char audience [128];
    snprintf (audience, sizeof audience, "%s/mcp", s_base);
    uint8_t other_key [32];
    memset (other_key, 7, sizeof other_key);
    char *tokens [] = {
        strdup ("not-a-token"),
        s_issue ("acme", audience, 3600, other_key),
        s_issue ("acme", audience, -3600, s_key),
        s_issue ("acme", "https://elsewhere.example/mcp", 3600, s_key),
    };
    int audits = s_broker_count ("AUDITS");
    for (size_t i = 0; i < sizeof tokens / sizeof tokens [0]; i++) {
        s_request ("POST", "/mcp", tokens [i], "application/json", ping, &r);
        if (r.status != 401)
            fail_msg ("token %zu: status %ld", i, r.status);
        assert_non_null (strstr (r.www_authenticate, "error=\"invalid_token\""));
        assert_non_null (strstr (r.www_authenticate, expected));
        assert_non_null (strstr (r.www_authenticate, "scope=\"mcp:tools mcp:write\""));
        json_t *json = s_json (&r);
        assert_string_equal (json_string_value (json_object_get (json, "error")), "invalid_token");
        json_decref (json);
        s_response_free (&r);
        free (tokens [i]);
    }
    //  Only the token of a good signature for another resource is audited,
    //  under its own tenant: garbage, another key or an expired token say
    //  nothing trustworthy about whose it is.
    assert_int_equal (s_wait_audits (audits + 1), audits + 1);
    json_t *detail = s_last_audit ("acme", "audience_refused", "tester");
    assert_string_equal (json_string_value (json_object_get (detail, "audience")),
                         "https://elsewhere.example/mcp");
    json_decref (detail);
}

//  The admin API is the operator's: an access token there is 401 with no
//  job sent, like any wrong key. One this gateway trusts names a tenant's
//  user, so the attempt is audited under that tenant (admin_refused, the
//  method and path, not the token); a wrong operator key, a token of a
//  key the gateway does not hold or no credential at all names no one and
//  is not.
static void
test_admin_refused (void **state)
{
    char audience [128];
    snprintf (audience, sizeof audience, "%s/mcp", s_base);
    uint8_t other_key [32];
    memset (other_key, 7, sizeof other_key);
    char *foreign = s_issue ("acme", audience, 3600, other_key);
    const char *unnamed [] = { NULL, ADMIN_KEY "x", foreign };
    int audits = s_broker_count ("AUDITS");
    int received = s_broker_count ("RECEIVED");
    s_response_t r;
    for (size_t i = 0; i < sizeof unnamed / sizeof unnamed [0]; i++) {
        s_request ("GET", "/admin/tenants", unnamed [i], NULL, NULL, &r);
        assert_int_equal (r.status, 401);
        s_response_free (&r);
    }
    free (foreign);
    char *token = s_issue_as ("globex", "user:7", audience, 3600, s_key);
    s_request ("DELETE", "/admin/tenants/acme", token, NULL, NULL, &r);
    assert_int_equal (r.status, 401);
    assert_non_null (strstr (r.www_authenticate, "switchboard-admin"));
    assert_true (!r.body || !strstr (r.body, token));
    s_response_free (&r);
    //  The token's record is sent after the others would have been, on
    //  the same path: once it is in, none of theirs came.
    assert_int_equal (s_wait_audits (audits + 1), audits + 1);
    json_t *detail = s_last_audit ("globex", "admin_refused", "user:7");
    assert_string_equal (json_string_value (json_object_get (detail, "method")), "DELETE");
    assert_string_equal (json_string_value (json_object_get (detail, "path")), "/admin/tenants/acme");
    char *text = json_dumps (detail, JSON_COMPACT);
    assert_null (strstr (text, token));
    free (text);
    json_decref (detail);
    free (token);
    assert_int_equal (s_broker_count ("RECEIVED"), received);
    //  The operator key is still taken: its request is relayed.
    s_request ("GET", "/admin/tenants", ADMIN_KEY, NULL, NULL, &r);
    assert_int_not_equal (r.status, 401);
    s_response_free (&r);
    assert_int_equal (s_broker_count ("RECEIVED"), received + 1);
}

static void
test_media_type_and_size (void **state)
{
    const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    s_response_t r;
    s_request ("POST", "/mcp", s_token, "text/plain", ping, &r);
    assert_int_equal (r.status, 415);
    json_decref (s_json (&r));
    s_response_free (&r);

    s_request ("POST", "/mcp", s_token, NULL, ping, &r);
    assert_int_equal (r.status, 415);
    s_response_free (&r);

    //  charset parameter is fine.
    s_request ("POST", "/mcp", s_token, "application/json; charset=utf-8", ping, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);

    size_t big = (1u << 20) + 100;
    char *body = malloc (big);
    memset (body, ' ', big);
    body [0] = '{';
    body [big - 1] = '}';
    assert_int_equal (s_request_ex ("POST", "/mcp", s_token, "application/json", body, big,
                                    10000, false, &r), 0);
    //  Refused by h2o itself on the declared Content-Length, before the
    //  body is read: its limit is the largest route's (1 MiB, issue 23), so
    //  the answer is h2o's (plain text), not the gateway's JSON.
    assert_int_equal (r.status, 413);
    s_response_free (&r);
    free (body);
}

static void
test_jsonrpc_errors (void **state)
{
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", 400);
    assert_int_equal (s_error_code (reply), -32700);
    assert_true (json_is_null (json_object_get (reply, "id")));
    json_decref (reply);

    reply = s_mcp ("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", 400);
    assert_int_equal (s_error_code (reply), -32600);
    json_decref (reply);

    reply = s_mcp ("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", 400);
    assert_int_equal (s_error_code (reply), -32600);
    json_decref (reply);

    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}", 400);
    assert_int_equal (s_error_code (reply), -32600);
    json_decref (reply);

    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"no/such/method\"}", 200);
    assert_int_equal (s_error_code (reply), -32601);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 11);
    json_decref (reply);

    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"tools/call\",\"params\":{\"name\":\"no_such_tool\"}}", 200);
    assert_int_equal (s_error_code (reply), -32602);
    json_decref (reply);

    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":13,\"method\":\"tools/call\","
                   "\"params\":{\"name\":\"search_accounts\",\"arguments\":[]}}", 200);
    assert_int_equal (s_error_code (reply), -32602);
    json_decref (reply);

    //  A notification: 202 and no body.
    s_response_t r;
    s_request ("POST", "/mcp", s_token, "application/json",
               "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &r);
    assert_int_equal (r.status, 202);
    assert_int_equal (r.len, 0);
    s_response_free (&r);
}

static void
test_initialize_and_list (void **state)
{
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                           "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                           "\"clientInfo\":{\"name\":\"test\",\"version\":\"1\"}}}", 200);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "protocolVersion")), "2025-06-18");
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "serverInfo"), "name")),
                         "switchboard");
    json_decref (reply);

    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", 200);
    json_t *tools = json_object_get (json_object_get (reply, "result"), "tools");
    //  --tools-page-size 2 here; test_tools_pages_http walks the pages.
    size_t count = sb_connectors_tool_count (s_connectors);
    assert_int_equal (json_array_size (tools), count < 2? count: 2);
    json_decref (reply);

    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", 200);
    assert_true (json_is_object (json_object_get (reply, "result")));
    json_decref (reply);
}

static void
test_tools_call_ok (void **state)
{
    int sent_before = s_broker_sent ();
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":\"call-1\",\"method\":\"tools/call\","
                           "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"acme\"},"
                           "\"tenant\":\"evil\"}}", 200);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "call-1");
    json_t *result = json_object_get (reply, "result");
    assert_null (json_object_get (result, "isError"));
    json_t *echo = json_object_get (result, "structuredContent");
    //  The tenant comes from the token, never from the body.
    assert_string_equal (json_string_value (json_object_get (echo, "tenant")), "acme");
    assert_string_equal (json_string_value (json_object_get (echo, "service")), "api");
    assert_string_equal (json_string_value (json_object_get (echo, "op")), "tools/call");
    assert_string_equal (json_string_value (json_object_get (echo, "tool")), "search_accounts");
    assert_string_equal (json_string_value (json_object_get (echo, "args")), "{\"query\":\"acme\"}");
    assert_int_equal (json_integer_value (json_object_get (echo, "timeout_ms")), CALL_TIMEOUT_MS);
    const sb_tool_t *tool = sb_connectors_find_tool (s_connectors, "search_accounts");
    assert_string_equal (json_string_value (json_object_get (echo, "connector")),
                         sb_connector_name (sb_tool_connector (tool)));
    assert_int_equal (json_integer_value (json_object_get (echo, "flags")),
                      sb_tool_retry_safe (tool)? SB_FLAG_RETRY_SAFE: 0);
    json_decref (reply);
    assert_int_equal (s_broker_sent (), sent_before + 1);

    //  Schema failure is a tool error, and never reaches the broker.
    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\","
                   "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":42}}}", 200);
    result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_decref (reply);
    assert_int_equal (s_broker_sent (), sent_before + 1);
}

static void
test_tools_call_overloaded (void **state)
{
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\","
                           "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"busy\"}}}", 200);
    json_t *result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_t *meta = json_object_get (result, "_meta");
    assert_string_equal (json_string_value (json_object_get (meta, "error_type")), "overloaded");
    assert_int_equal (json_integer_value (json_object_get (meta, "retry_after")), 3);
    json_decref (reply);
}

static void
test_tools_call_timeout (void **state)
{
    int64_t start = zclock_mono ();
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
                           "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"never\"}}}", 200);
    int64_t took = zclock_mono () - start;
    json_t *result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"), "error_type")),
                         "timeout");
    //  The local deadline: call timeout + 2 s grace (allow scheduling slack).
    assert_true (took >= CALL_TIMEOUT_MS + 1900);
    assert_true (took < CALL_TIMEOUT_MS + 2000 + 3000);
    json_decref (reply);
}

static void
test_client_gone (void **state)
{
    //  HTTP/2 (h2c): the client resets and leaves before the broker's reply;
    //  the late reply must be dropped without touching the freed request.
    int sent_before = s_broker_sent ();
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\","
                       "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"slow\"}}}";
    s_response_t r;
    int rc = s_request_ex ("POST", "/mcp", s_token, "application/json", body, strlen (body),
                           200, true, &r);
    assert_int_equal (rc, CURLE_OPERATION_TIMEDOUT);
    s_response_free (&r);
    //  Same over HTTP/1.1.
    rc = s_request_ex ("POST", "/mcp", s_token, "application/json", body, strlen (body),
                       200, false, &r);
    assert_int_equal (rc, CURLE_OPERATION_TIMEDOUT);
    s_response_free (&r);

    //  Wait (bounded) until the fake broker has sent both late replies.
    int64_t deadline = zclock_mono () + 5000;
    while (s_broker_sent () < sent_before + 2 && zclock_mono () < deadline)
        zclock_sleep (20);
    assert_int_equal (s_broker_sent (), sent_before + 2);

    //  The gateway is alive and still serves calls.
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\","
                           "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"after\"}}}", 200);
    assert_null (json_object_get (json_object_get (reply, "result"), "isError"));
    json_decref (reply);
}

//  ---------------------------------------------------------------------------
//  Streamable HTTP: sessions, headers, SSE

static const char s_init_body [] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\","
    "\"capabilities\":{\"elicitation\":{}},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}";
static const char s_ping_body [] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}";

//  POST /mcp with `extra` headers (NULL-terminated; NULL: none).
static void
s_post (const char **extra, const char *token, const char *body, s_response_t *r)
{
    s_extra = extra;
    s_request ("POST", "/mcp", token, "application/json", body, r);
    s_extra = NULL;
}

//  A new session; returns its ID (caller frees).
static char *
s_new_session (void)
{
    s_response_t r;
    s_post (NULL, s_token, s_init_body, &r);
    assert_int_equal (r.status, 200);
    assert_true (strlen (r.session_id) > 10);
    json_t *reply = s_json (&r);
    json_t *caps = json_object_get (json_object_get (reply, "result"), "capabilities");
    assert_non_null (json_object_get (caps, "tools"));
    assert_non_null (json_object_get (caps, "logging"));
    json_decref (reply);
    char *id = strdup (r.session_id);
    s_response_free (&r);
    return id;
}

static void
test_sessions (void **state)
{
    char *id = s_new_session ();
    char header [600];
    snprintf (header, sizeof header, "Mcp-Session-Id: %s", id);
    const char *with [] = { header, "MCP-Protocol-Version: 2025-11-25", NULL };
    s_response_t r;
    s_post (with, s_token, s_ping_body, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);

    //  Tampered: each of a few positions changed.
    size_t len = strlen (id);
    size_t positions [] = { 3, len / 2, len - 1 };
    for (size_t i = 0; i < 3; i++) {
        char *bad = strdup (id);
        bad [positions [i]] = bad [positions [i]] == 'A'? 'B': 'A';
        char bad_header [600];
        snprintf (bad_header, sizeof bad_header, "Mcp-Session-Id: %s", bad);
        const char *tampered [] = { bad_header, NULL };
        s_post (tampered, s_token, s_ping_body, &r);
        assert_int_equal (r.status, 404);
        s_response_free (&r);
        free (bad);
    }
    const char *junk [] = { "Mcp-Session-Id: nonsense", NULL };
    s_post (junk, s_token, s_ping_body, &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);

    //  Another tenant's token with this session: 404, and the attempt is
    //  audited under the attempting tenant (forged IDs above were not:
    //  they are nobody's).
    int audits = s_broker_count ("AUDITS");
    char audience [128];
    snprintf (audience, sizeof audience, "%s/mcp", s_base);
    char *other = s_issue ("globex", audience, 3600, s_key);
    s_post (with, other, s_ping_body, &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);
    free (other);
    assert_int_equal (s_wait_audits (audits + 1), audits + 1);
    json_t *detail = s_last_audit ("globex", "session_refused", "tester");
    assert_string_equal (json_string_value (json_object_get (detail, "reason")), "other_tenant");
    assert_string_equal (json_string_value (json_object_get (detail, "method")), "POST");
    char *dump = json_dumps (detail, JSON_COMPACT);
    assert_null (strstr (dump, id));       //  never the session ID
    free (dump);
    json_decref (detail);

    //  Another user of the same tenant: the session is not theirs, as
    //  it is not another tenant's — 404 on POST (a call, a subscribe),
    //  GET and DELETE; and their DELETE did not end it for its owner.
    char *intruder = s_issue_as ("acme", "mallory", audience, 3600, s_key);
    s_post (with, intruder, s_ping_body, &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);
    s_post (with, intruder, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"resources/subscribe\","
            "\"params\":{\"uri\":\"sb://acme/anything\"}}", &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);
    s_extra = with;
    s_request ("GET", "/mcp", intruder, NULL, NULL, &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);
    s_request ("DELETE", "/mcp", intruder, NULL, NULL, &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);
    s_extra = NULL;
    s_post (with, s_token, s_ping_body, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    free (intruder);
    //  Four attempts by mallory, each audited as another user's session.
    assert_int_equal (s_wait_audits (audits + 5), audits + 5);
    detail = s_last_audit ("acme", "session_refused", "mallory");
    assert_string_equal (json_string_value (json_object_get (detail, "reason")), "other_user");
    assert_string_equal (json_string_value (json_object_get (detail, "method")), "DELETE");
    json_decref (detail);

    //  DELETE ends it; then 404 for POST, GET and DELETE.
    s_extra = with;
    s_request ("DELETE", "/mcp", s_token, NULL, NULL, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    s_request ("DELETE", "/mcp", s_token, NULL, NULL, &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);
    s_request ("GET", "/mcp", s_token, NULL, NULL, &r);
    assert_int_equal (r.status, 404);
    s_response_free (&r);
    s_extra = NULL;
    s_post (with, s_token, s_ping_body, &r);
    assert_int_equal (r.status, 404);
    json_t *reply = s_json (&r);
    assert_non_null (json_object_get (reply, "error"));
    json_decref (reply);
    s_response_free (&r);
    //  Stateless requests still work.
    s_post (NULL, s_token, s_ping_body, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    free (id);
}

//  Asserts a 403 insufficient_scope naming `needed`, with a JSON-RPC
//  error for `id` (0: null) and a sentence; frees the response.
static void
s_assert_insufficient (s_response_t *r, const char *needed, int id)
{
    if (r->status != 403)
        fail_msg ("status %ld, expected 403: %s", r->status, r->body? r->body: "");
    char expected [600];
    snprintf (expected, sizeof expected,
              "Bearer error=\"insufficient_scope\", scope=\"%s\", "
              "resource_metadata=\"%s/.well-known/oauth-protected-resource\", error_description=\"",
              needed, s_base);
    if (strncmp (r->www_authenticate, expected, strlen (expected)) != 0)
        fail_msg ("WWW-Authenticate: %s", r->www_authenticate);
    json_t *reply = s_json (r);
    json_t *error = json_object_get (reply, "error");
    assert_non_null (error);
    if (id)
        assert_int_equal (json_integer_value (json_object_get (reply, "id")), id);
    else
        assert_true (json_is_null (json_object_get (reply, "id")));
    const char *message = json_string_value (json_object_get (error, "message"));
    assert_non_null (message);
    assert_non_null (strstr (message, needed));
    json_decref (reply);
    s_response_free (r);
}

//  Scopes: mcp:tools for any use of /mcp, mcp:write as well for a call of
//  a tool not annotated readOnlyHint: true; 403 insufficient_scope
//  otherwise, refused before anything reaches a worker, and audited.
static void
test_scopes (void **state)
{
    char audience [128];
    snprintf (audience, sizeof audience, "%s/mcp", s_base);
    char *read_only = s_issue_scoped ("acme", "reader", audience, 3600, s_key, "mcp:tools");
    char *write_only = s_issue_scoped ("acme", "writer", audience, 3600, s_key, "mcp:write");
    char *legacy = s_issue_scoped ("acme", "old", audience, 3600, s_key, "mcp");
    char *none = s_issue_scoped ("acme", "nobody", audience, 3600, s_key, "");
    int received = s_broker_count ("RECEIVED");
    int audits = s_broker_count ("AUDITS");
    s_response_t r;

    //  Without mcp:tools nothing: initialize, GET, DELETE.
    char *lacking [] = { write_only, legacy, none };
    for (size_t i = 0; i < 3; i++) {
        s_post (NULL, lacking [i], s_init_body, &r);
        if (lacking [i] == none)
            assert_true (r.body && strstr (r.body, "the access token grants none"));
        s_assert_insufficient (&r, "mcp:tools", 1);
    }
    s_request ("GET", "/mcp", write_only, NULL, NULL, &r);
    s_assert_insufficient (&r, "mcp:tools", 0);
    s_request ("DELETE", "/mcp", write_only, NULL, NULL, &r);
    s_assert_insufficient (&r, "mcp:tools", 0);
    assert_int_equal (s_wait_audits (audits + 5), audits + 5);
    json_t *detail = s_last_audit ("acme", "scope_refused", "writer");
    assert_string_equal (json_string_value (json_object_get (detail, "needed")), "mcp:tools");
    assert_string_equal (json_string_value (json_object_get (detail, "granted")), "mcp:write");
    assert_string_equal (json_string_value (json_object_get (detail, "request")), "DELETE /mcp");
    json_decref (detail);

    //  mcp:tools alone: initialize, tools/list and a read-only tool are fine.
    s_post (NULL, read_only, s_init_body, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    s_post (NULL, read_only, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}", &r);
    assert_int_equal (r.status, 200);
    json_t *reply = s_json (&r);
    assert_non_null (json_object_get (json_object_get (reply, "result"), "tools"));
    json_decref (reply);
    s_response_free (&r);
    s_post (NULL, read_only, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\","
            "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"acme\"}}}", &r);
    assert_int_equal (r.status, 200);
    reply = s_json (&r);
    assert_null (json_object_get (json_object_get (reply, "result"), "isError"));
    json_decref (reply);
    s_response_free (&r);
    assert_int_equal (s_broker_count ("RECEIVED"), received + 1);

    //  A tool that writes (the CRM's create_task, readOnlyHint false) and
    //  one of the gateway's own builtins (it changes the tenant's lists):
    //  403 naming both scopes, the JSON-RPC error under the call's id, and
    //  no job sent.
    s_post (NULL, read_only, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\","
            "\"params\":{\"name\":\"create_task\",\"arguments\":{\"title\":\"Call back\"}}}", &r);
    s_assert_insufficient (&r, "mcp:tools mcp:write", 5);
    s_post (NULL, read_only, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\","
            "\"params\":{\"name\":\"test_trigger_tool_change\",\"arguments\":{}}}", &r);
    s_assert_insufficient (&r, "mcp:tools mcp:write", 6);
    assert_int_equal (s_broker_count ("RECEIVED"), received + 1);
    assert_int_equal (s_wait_audits (audits + 7), audits + 7);
    detail = s_last_audit ("acme", "scope_refused", "reader");
    assert_string_equal (json_string_value (json_object_get (detail, "needed")), "mcp:tools mcp:write");
    assert_string_equal (json_string_value (json_object_get (detail, "granted")), "mcp:tools");
    assert_string_equal (json_string_value (json_object_get (detail, "request")),
                         "tools/call test_trigger_tool_change");
    json_decref (detail);

    //  With both scopes the write tool's job goes out.
    s_post (NULL, s_token, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
            "\"params\":{\"name\":\"create_task\",\"arguments\":{\"title\":\"Call back\"}}}", &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    assert_int_equal (s_broker_count ("RECEIVED"), received + 2);

    //  The protected-resource metadata lists the scopes.
    s_request ("GET", "/.well-known/oauth-protected-resource", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 200);
    reply = s_json (&r);
    json_t *scopes = json_object_get (reply, "scopes_supported");
    assert_int_equal (json_array_size (scopes), 2);
    assert_string_equal (json_string_value (json_array_get (scopes, 0)), "mcp:tools");
    assert_string_equal (json_string_value (json_array_get (scopes, 1)), "mcp:write");
    json_decref (reply);
    s_response_free (&r);
    free (read_only);
    free (write_only);
    free (legacy);
    free (none);
}

//  EdDSA tokens: the gateway verifies them with the public key set of
//  --token-jwks-file (current and previous key: both verify), refuses a
//  kid it does not hold and a key under the wrong kid, serves the set at
//  /.well-known/jwks.json, and keeps taking HS256 tokens.
static void
test_eddsa_tokens (void **state)
{
    (void) state;
    s_response_t r;
    s_request ("GET", "/.well-known/jwks.json", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 200);
    char error [160];
    sb_jwks_t *served = sb_jwks_parse (r.body, r.len, error, sizeof error);
    assert_non_null (served);
    assert_int_equal (sb_jwks_count (served), 2);
    uint8_t pub [SB_ED25519_KEY_LEN];
    assert_int_equal (sb_ed25519_public (s_seed_current, pub), 0);
    assert_memory_equal (sb_jwks_find (served, "2026-12"), pub, sizeof pub);
    sb_jwks_destroy (&served);
    s_response_free (&r);
    s_request ("POST", "/.well-known/jwks.json", NULL, "application/json", "{}", &r);
    assert_int_equal (r.status, 405);
    s_response_free (&r);

    char *current = s_issue_eddsa ("acme", s_seed_current, "2026-12");
    char *previous = s_issue_eddsa ("acme", s_seed_previous, "2026-11");
    char *unknown = s_issue_eddsa ("acme", s_seed_current, "2027-01");
    char *liar = s_issue_eddsa ("acme", s_seed_previous, "2026-12");
    s_post (NULL, current, s_ping_body, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    s_post (NULL, previous, s_ping_body, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    s_post (NULL, unknown, s_ping_body, &r);
    assert_int_equal (r.status, 401);
    assert_non_null (strstr (r.www_authenticate, "invalid_token"));
    s_response_free (&r);
    s_post (NULL, liar, s_ping_body, &r);
    assert_int_equal (r.status, 401);
    s_response_free (&r);
    s_post (NULL, s_token, s_ping_body, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    free (current);
    free (previous);
    free (unknown);
    free (liar);
}

static void
test_transport_headers (void **state)
{
    struct { const char *header; long status; } cases [] = {
        { "MCP-Protocol-Version: 2025-06-18", 200 },
        { "MCP-Protocol-Version: 2025-11-25", 200 },
        { "MCP-Protocol-Version: 2025-03-26", 200 },
        { "MCP-Protocol-Version: 1999-01-01", 400 },
        { "MCP-Protocol-Version;", 400 },          /* curl: an empty value */
        { "MCP-Protocol-Version: 2025-06-18x", 400 },
        { "Accept: application/json", 406 },
        { "Accept: text/event-stream", 406 },
        { "Accept: text/html", 406 },
        { "Accept: application/json, text/event-stream;q=0", 406 },
        { "Accept: application/json, text/event-stream", 200 },
        { "Accept: */*", 200 },
        { "Origin: http://evil.example.com", 403 },
        { "Origin: null", 403 },
        { "Origin: http://localhost:5173", 200 },
        { "Origin: https://allowed.example", 200 },
        { "Host: evil.example.com", 403 },
        { "Host: evil.example.com:80", 403 },
        { "Host: localhost", 200 },
        { "Host: [::1]:8080", 200 },
        { "Host: allowed-host.example", 200 },
        { "Mcp-Session-Id;", 404 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        const char *extra [] = { cases [i].header, NULL };
        s_response_t r;
        s_post (extra, s_token, s_ping_body, &r);
        if (r.status != cases [i].status)
            fail_msg ("%s: status %ld, expected %ld: %s", cases [i].header, r.status,
                      cases [i].status, r.body? r.body: "");
        s_response_free (&r);
    }
    //  Host and Origin are checked before the token (403, not 401).
    const char *evil [] = { "Host: evil.example.com", "Origin: http://evil.example.com", NULL };
    s_response_t r;
    s_post (evil, NULL, s_init_body, &r);
    assert_int_equal (r.status, 403);
    s_response_free (&r);
}

//  The events of an SSE body: ids[] and data[] (borrowed pointers into a
//  copy the caller frees with free (*copy)).
typedef struct {
    char *ids [16];
    char *data [16];
    size_t count;
    bool retry;
} s_events_t;

static void
s_parse_sse (const char *body, s_events_t *events, char **copy)
{
    memset (events, 0, sizeof *events);
    *copy = strdup (body? body: "");
    char *save = NULL;
    char *id = NULL, *data = NULL;
    //  Events are separated by blank lines; we walk lines.
    for (char *line = *copy, *next; line && *line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        if (*line == 0) {
            if ((id || data) && events->count < 16) {
                events->ids [events->count] = id;
                events->data [events->count] = data;
                events->count++;
            }
            id = data = NULL;
        }
        else
        if (strncmp (line, "id: ", 4) == 0)
            id = line + 4;
        else
        if (strncmp (line, "data: ", 6) == 0)
            data = line + 6;
        else
        if (strncmp (line, "retry: ", 7) == 0)
            events->retry = true;
    }
    (void) save;
}

static void
test_sse_post_response (void **state)
{
    char *id = s_new_session ();
    char header [600];
    snprintf (header, sizeof header, "Mcp-Session-Id: %s", id);
    const char *with [] = { header, "Accept: application/json, text/event-stream", NULL };
    s_response_t r;
    s_post (with, s_token, "{\"jsonrpc\":\"2.0\",\"id\":\"sse-1\",\"method\":\"tools/call\","
            "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"acme\"}}}", &r);
    assert_int_equal (r.status, 200);
    assert_string_equal (r.content_type, "text/event-stream");
    s_events_t events;
    char *copy;
    s_parse_sse (r.body, &events, &copy);
    //  A priming event (id, retry, empty data), then the one response.
    assert_int_equal (events.count, 2);
    assert_true (events.retry);
    assert_non_null (events.ids [0]);
    assert_string_equal (events.data [0], "");
    assert_non_null (events.ids [1]);
    assert_string_not_equal (events.ids [0], events.ids [1]);
    json_t *reply = json_loads (events.data [1], 0, NULL);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "sse-1");
    assert_non_null (json_object_get (json_object_get (reply, "result"), "structuredContent"));
    json_decref (reply);
    free (copy);
    s_response_free (&r);

    //  Other methods in a session answer JSON.
    s_post (with, s_token, s_ping_body, &r);
    assert_string_equal (r.content_type, "application/json");
    s_response_free (&r);

    //  A client response to an ASK: 202, no body (routing is the lead's hook).
    s_post (with, s_token, "{\"jsonrpc\":\"2.0\",\"id\":\"sb:abc:1\",\"result\":{\"action\":\"accept\"}}", &r);
    assert_int_equal (r.status, 202);
    assert_int_equal (r.len, 0);
    s_response_free (&r);
    free (id);
}

//  A 2025-06-18 session has no priming event: a call's stream writes
//  nothing at open, so its headers, its one event and its end leave
//  together. Every byte of the stream must be text: a hand-counted length
//  once sent a NUL after the comment that used to open it, which SSE
//  parsers choke on.
static void
test_sse_2025_06_18_stream_is_clean (void **state)
{
    s_response_t r;
    s_post (NULL, s_token, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
            "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
            "\"clientInfo\":{\"name\":\"old\",\"version\":\"1\"}}}", &r);
    assert_int_equal (r.status, 200);
    char header [600];
    snprintf (header, sizeof header, "Mcp-Session-Id: %s", r.session_id);
    s_response_free (&r);
    const char *with [] = { header, "MCP-Protocol-Version: 2025-06-18",
                            "Accept: application/json, text/event-stream", NULL };
    s_post (with, s_token, "{\"jsonrpc\":\"2.0\",\"id\":\"old-1\",\"method\":\"tools/call\","
            "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"acme\"}}}", &r);
    assert_int_equal (r.status, 200);
    assert_string_equal (r.content_type, "text/event-stream");
    assert_true (r.len > 0);
    assert_null (memchr (r.body, 0, r.len));
    assert_int_equal (strlen (r.body), r.len);
    assert_true (strncmp (r.body, "id: ", 4) == 0);   //  no comment before the event
    s_events_t events;
    char *copy;
    s_parse_sse (r.body, &events, &copy);
    assert_int_equal (events.count, 1);             //  just the response
    json_t *reply = json_loads (events.data [0], 0, NULL);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "old-1");
    json_decref (reply);
    free (copy);
    s_response_free (&r);
}

static void
test_sse_resume (void **state)
{
    //  The client leaves a streamed call after the priming event; the call
    //  goes on, and a GET with Last-Event-ID gets the result.
    char *id = s_new_session ();
    char header [600];
    snprintf (header, sizeof header, "Mcp-Session-Id: %s", id);
    const char *with [] = { header, NULL };
    int sent_before = s_broker_sent ();
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"tools/call\","
                       "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"slow\"}}}";
    s_response_t r;
    s_extra = with;
    int rc = s_request_ex ("POST", "/mcp", s_token, "application/json", body, strlen (body),
                           300, false, &r);
    s_extra = NULL;
    assert_int_equal (rc, CURLE_OPERATION_TIMEDOUT);
    s_events_t events;
    char *copy;
    s_parse_sse (r.body, &events, &copy);
    assert_int_equal (events.count, 1);
    char last [128];
    snprintf (last, sizeof last, "Last-Event-ID: %s", events.ids [0]);
    free (copy);
    s_response_free (&r);

    int64_t deadline = zclock_mono () + 5000;
    while (s_broker_sent () < sent_before + 1 && zclock_mono () < deadline)
        zclock_sleep (20);
    assert_int_equal (s_broker_sent (), sent_before + 1);

    //  Another session may not read it.
    char *stranger = s_new_session ();
    char stranger_header [600];
    snprintf (stranger_header, sizeof stranger_header, "Mcp-Session-Id: %s", stranger);
    const char *foreign [] = { stranger_header, last, "Accept: text/event-stream", NULL };
    s_extra = foreign;
    rc = s_request_ex ("GET", "/mcp", s_token, NULL, NULL, 0, 500, false, &r);
    s_extra = NULL;
    //  A fresh, empty stream opens instead (and the client gives up).
    assert_true (r.body == NULL || strstr (r.body, "\"id\":77") == NULL);
    s_response_free (&r);
    free (stranger);

    const char *resume [] = { header, last, "Accept: text/event-stream", NULL };
    s_extra = resume;
    rc = s_request_ex ("GET", "/mcp", s_token, NULL, NULL, 0, 5000, false, &r);
    s_extra = NULL;
    assert_int_equal (rc, 0);
    assert_int_equal (r.status, 200);
    assert_string_equal (r.content_type, "text/event-stream");
    s_parse_sse (r.body, &events, &copy);
    assert_int_equal (events.count, 1);
    json_t *reply = json_loads (events.data [0], 0, NULL);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 77);
    assert_string_equal (json_string_value (json_object_get (
        json_array_get (json_object_get (json_object_get (reply, "result"), "content"), 0), "text")), "late");
    json_decref (reply);
    free (copy);
    s_response_free (&r);

    //  Malformed Last-Event-IDs are not resumptions.
    const char *bad_ids [] = { "Last-Event-ID: x", "Last-Event-ID: 00000000.1.0",
                               "Last-Event-ID: ....", NULL };
    for (int i = 0; bad_ids [i]; i++) {
        const char *no_session [] = { bad_ids [i], NULL };
        s_extra = no_session;
        s_request ("GET", "/mcp", s_token, NULL, NULL, &r);
        s_extra = NULL;
        assert_int_equal (r.status, 400);
        s_response_free (&r);
    }
    free (id);
}

//  A GET stream opens, sends its priming event, and ends when the session
//  is deleted.
static void
test_get_stream (void **state)
{
    char *id = s_new_session ();
    char header [600], auth [SB_MAX_TOKEN_LEN + 64], url [128];
    snprintf (header, sizeof header, "Mcp-Session-Id: %s", id);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", s_token);
    snprintf (url, sizeof url, "%s/mcp", s_base);
    const char *headers [] = { auth, header, "Accept: text/event-stream", NULL };
    sb_harness_request_t request = { .method = "GET", .url = url, .headers = headers,
                                     .timeout_ms = 10000 };
    sb_harness_call_t *stream = sb_harness_call_start (&request);
    assert_non_null (stream);
    assert_true (sb_harness_call_wait_for (stream, "\n\n", 5000));
    assert_true (sb_harness_call_wait_for (stream, "id: ", 0));
    char content_type [128];
    sb_harness_call_header (stream, "Content-Type", content_type, sizeof content_type);
    assert_string_equal (content_type, "text/event-stream");

    const char *with [] = { header, "Accept: text/event-stream", NULL };

    //  Accept without text/event-stream: 406.
    const char *json_only [] = { header, "Accept: application/json", NULL };
    s_response_t r2;
    s_extra = json_only;
    s_request ("GET", "/mcp", s_token, NULL, NULL, &r2);
    s_extra = NULL;
    assert_int_equal (r2.status, 406);
    s_response_free (&r2);

    s_extra = with;
    s_request ("DELETE", "/mcp", s_token, NULL, NULL, &r2);
    s_extra = NULL;
    assert_int_equal (r2.status, 200);
    s_response_free (&r2);

    //  The stream ends cleanly (not reset) with the session.
    const sb_harness_response_t *response;
    assert_int_equal (sb_harness_call_wait (stream, 5000, false, &response, NULL), 0);
    assert_int_equal (response->status, 200);
    sb_harness_call_destroy (&stream);
    free (id);
}

static void
test_tools_pages_http (void **state)
{
    //  --tools-page-size 2: walking the cursor covers every tool once.
    size_t count = sb_listed_count (s_connectors), seen = 0;
    char *cursor = NULL;
    do {
        char body [512];
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"%s%s%s}",
                  cursor? ",\"params\":{\"cursor\":\"": "", cursor? cursor: "", cursor? "\"}": "");
        json_t *reply = s_mcp (body, 200);
        json_t *result = json_object_get (reply, "result");
        json_t *tools = json_object_get (result, "tools");
        assert_true (json_array_size (tools) <= 2);
        for (size_t i = 0; i < json_array_size (tools); i++)
            assert_ptr_equal (sb_connectors_find_tool (s_connectors,
                                  json_string_value (json_object_get (json_array_get (tools, i), "name"))),
                              sb_listed_at (s_connectors, seen + i));
        seen += json_array_size (tools);
        free (cursor);
        json_t *next = json_object_get (result, "nextCursor");
        cursor = next? strdup (json_string_value (next)): NULL;
        json_decref (reply);
    } while (cursor);
    assert_int_equal (seen, count);
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\","
                           "\"params\":{\"cursor\":\"2.forged\"}}", 200);
    assert_int_equal (s_error_code (reply), -32602);
    json_decref (reply);
}

static void
test_catalog_http (void **state)
{
    //  Answered once the catalog has landed; until then -32601.
    const char *bodies [] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/templates/list\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/list\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\",\"params\":{\"ref\":"
            "{\"type\":\"ref/prompt\",\"name\":\"none\"},\"argument\":{\"name\":\"a\",\"value\":\"\"}}}",
        NULL };
    json_t *init = s_mcp (s_init_body, 200);
    bool catalog = json_object_get (json_object_get (json_object_get (init, "result"), "capabilities"),
                                    "prompts") != NULL;
    json_decref (init);
    for (int i = 0; bodies [i]; i++) {
        json_t *reply = s_mcp (bodies [i], 200);
        if (catalog)
            assert_non_null (json_object_get (reply, "result"));
        else
            assert_int_equal (s_error_code (reply), -32601);
        json_decref (reply);
    }
    json_t *reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\","
                           "\"params\":{\"uri\":\"nowhere://x\"}}", 200);
    assert_int_equal (s_error_code (reply), catalog? -32002: -32601);
    json_decref (reply);
    reply = s_mcp ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\","
                   "\"params\":{\"level\":\"shout\"}}", 200);
    assert_int_equal (s_error_code (reply), -32602);
    json_decref (reply);
}

static void
test_still_alive (void **state)
{
    assert_true (sb_harness_alive (s_gateway));
    s_response_t r;
    s_request ("GET", "/healthz", NULL, NULL, NULL, &r);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
    //  HTTP/2 works too.
    const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    assert_int_equal (s_request_ex ("POST", "/mcp", s_token, "application/json", ping, strlen (ping),
                                    5000, true, &r), 0);
    assert_int_equal (r.status, 200);
    s_response_free (&r);
}

static void
test_stop_with_pending (void **state)
{
    //  A call is pending when SIGTERM comes: the gateway stops accepting,
    //  answers it (timeout, since the broker never replies) and exits 0.
    int received_before = s_broker_count ("RECEIVED");
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\","
                       "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"never\"}}}";
    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", s_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", s_token);
    const char *headers [] = { auth, "Content-Type: application/json", NULL };
    sb_harness_request_t request = { .method = "POST", .url = url, .headers = headers,
                                     .body = body, .body_len = strlen (body),
                                     .timeout_ms = 15000 };
    sb_harness_call_t *call = sb_harness_call_start (&request);
    assert_non_null (call);
    int64_t deadline = zclock_mono () + 5000;
    while (s_broker_count ("RECEIVED") == received_before && zclock_mono () < deadline)
        zclock_sleep (20);
    assert_int_equal (s_broker_count ("RECEIVED"), received_before + 1);

    int status = sb_harness_stop (s_gateway);
    s_gateway = -1;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    const sb_harness_response_t *response;
    assert_int_equal (sb_harness_call_wait (call, 5000, false, &response, NULL), 0);
    assert_int_equal (response->status, 200);
    json_t *reply = json_loads (response->body? response->body: "", 0, NULL);
    assert_non_null (reply);
    json_t *result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"), "error_type")),
                         "timeout");
    json_decref (reply);
    sb_harness_call_destroy (&call);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_health_404_405),
        cmocka_unit_test (test_unauthorized),
        cmocka_unit_test (test_admin_refused),
        cmocka_unit_test (test_media_type_and_size),
        cmocka_unit_test (test_jsonrpc_errors),
        cmocka_unit_test (test_initialize_and_list),
        cmocka_unit_test (test_tools_call_ok),
        cmocka_unit_test (test_tools_call_overloaded),
        cmocka_unit_test (test_tools_call_timeout),
        cmocka_unit_test (test_client_gone),
        cmocka_unit_test (test_sessions),
        cmocka_unit_test (test_scopes),
        cmocka_unit_test (test_eddsa_tokens),
        cmocka_unit_test (test_transport_headers),
        cmocka_unit_test (test_sse_post_response),
        cmocka_unit_test (test_sse_2025_06_18_stream_is_clean),
        cmocka_unit_test (test_sse_resume),
        cmocka_unit_test (test_get_stream),
        cmocka_unit_test (test_tools_pages_http),
        cmocka_unit_test (test_catalog_http),
        cmocka_unit_test (test_still_alive),
        cmocka_unit_test (test_stop_with_pending),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
