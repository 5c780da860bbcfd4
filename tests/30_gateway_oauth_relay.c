/*  tests/30_gateway_oauth_relay.c — the routes the gateway relays to the
    token service as HTTP jobs (/authorize, /token, /revoke, /register,
    /connect/{connector}, /connect/callback, /admin/…; proto/PROTOCOL.md
    "HTTP jobs"), and the key set it asks the
    token service for (oauth/jwks).

    The real sb-gateway runs against a fake broker in this process (a
    ROUTER in a zactor thread speaking the proto codec) that plays the token
    service: it records the last HTTP job it got, answers by the request's
    path (…/hold: never; …/bad: a response with a header off the
    allow-list; …/failed: RESULT failed with retry_after; …/none: no worker),
    else with a response that echoes nothing but is easy to recognise, and
    answers oauth/jwks with the key set the test gave it (none: no worker).
    Under /admin/tenants/ and /admin/clients/ (but to PATCH) it answers 200 with the
    request's body as the response's (the test writes what the admin API
    would answer). It records the BROADCASTs the gateway sends, and sends
    the gateway one when told (as another gateway would, via the broker).
    For the quotas it answers …/limited with REPLY limited (rate, the
    default plan, 4.2 s) and …/metered with a response and a rate policy,
    and records the last HTTP job's cost.
    Everything a test waits for is a reply or a count, never a bare sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_job.h"
#include "sb_jwks.h"
#include "sb_msg.h"
#include "sb_token.h"

#define WAIT_MS         10000   /* longest wait for any reply */
#define OAUTH_TIMEOUT   "1000"  /* --oauth-timeout-ms: the deadline test waits this + grace */
#define ADMIN_KEY       "operator-key-for-the-relay-test-0123456789"

static pid_t s_gateway = -1;
static zactor_t *s_broker;
static char s_base [64];
static char s_dir [] = "/tmp/sb-oauth-relay-XXXXXX";
static uint8_t s_seed [3][SB_ED25519_KEY_LEN];     /* keys k1, k2, k3 */

//  ---------------------------------------------------------------------------
//  The fake broker

typedef struct {
    int jobs;                   /* HTTP jobs received */
    int jwks;                   /* oauth/jwks jobs received */
    char *set;                  /* the key set to answer with, or NULL: no worker */
    char *last;                 /* "op\ttenant\tflags\tdata" of the last HTTP job */
    int casts;                  /* BROADCASTs received */
    char *cast;                 /* "tenant\ttopic\tpayload" of the last one */
    zframe_t *gateway;          /* the gateway's routing frame, once it spoke */
    uint32_t cost;              /* the cost field of the last HTTP job's REQUEST */
} s_state_t;

static void
s_reply (zsock_t *router, zframe_t *routing, const char *corr_id, sb_status_t status,
         const char *result)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = result? sb_job_result_encode (result): NULL;
    int rc = sb_msg_set_reply (&msg, corr_id, status, &payload);
    assert (rc == 0);
    rc = sb_msg_send (router, &msg, routing);
    assert (rc == 0);
    (void) rc;
    sb_msg_reset (&msg);
}

//  A response the token service might give (JSON text, new string).
static char *
s_response (int status, const char *location)
{
    sb_http_response_t response = { .status = status };
    int rc = sb_http_response_add_header (&response, "content-type", "application/json")
          || sb_http_response_add_header (&response, "cache-control", "no-store")
          || sb_http_response_add_header (&response, "set-cookie", "sid=abc; Path=/; HttpOnly")
          || (location && sb_http_response_add_header (&response, "location", location))
          || sb_http_response_set_body (&response, "{\"from\":\"worker\"}", 17);
    assert (rc == 0);
    (void) rc;
    char *text = sb_http_response_encode (&response);
    sb_http_response_clear (&response);
    return text;
}

static void
s_on_request (zsock_t *router, zframe_t *routing, sb_msg_t *msg, s_state_t *state)
{
    sb_job_t job = { 0 };
    int rc = msg->payload? sb_job_decode (zframe_data (msg->payload), zframe_size (msg->payload), &job): -1;
    assert (rc == 0);
    (void) rc;
    if (strcmp (job.op, "oauth/jwks") == 0) {
        state->jwks++;
        if (state->set)
            s_reply (router, routing, msg->corr_id, SB_STATUS_OK, state->set);
        else
            s_reply (router, routing, msg->corr_id, SB_STATUS_UNAVAILABLE, NULL);
        sb_job_clear (&job);
        return;
    }
    state->jobs++;
    state->cost = msg->cost;
    free (state->last);
    state->last = NULL;
    state->last = zsys_sprintf ("%s\t%s\t%s\t%u\t%s", job.op, msg->tenant, msg->service,
                                msg->flags, job.data? job.data: "");
    sb_http_request_t request = { 0 };
    const char *why = NULL;
    rc = job.data? sb_http_request_decode (job.data, strlen (job.data), &request, &why): -1;
    assert (rc == 0);
    const char *path = request.path;
    size_t len = strlen (path);
    #define ENDS(s) (len >= strlen (s) && strcmp (path + len - strlen (s), s) == 0)
    if (ENDS ("/hold"))
        ;
    else
    if (ENDS ("/bad"))
        s_reply (router, routing, msg->corr_id, SB_STATUS_OK,
                 "{\"status\":200,\"headers\":[[\"x-forwarded-host\",\"evil\"]],\"body\":\"\"}");
    else
    if (ENDS ("/failed"))
        s_reply (router, routing, msg->corr_id, SB_STATUS_FAILED,
                 "{\"error\":\"the database is down\",\"retry_after\":7}");
    else
    if (ENDS ("/none"))
        s_reply (router, routing, msg->corr_id, SB_STATUS_UNAVAILABLE, NULL);
    else
    if (ENDS ("/limited") || ENDS ("/metered")) {
        //  A quota refused the job, or admitted it with its rate policy
        //  (PROTOCOL.md "Quotas"): the _admin tenant on the default limits.
        bool limited = ENDS ("/limited");
        sb_msg_t reply = { 0 };
        char *text = limited? NULL: s_response (200, NULL);
        zframe_t *payload = text? sb_job_result_encode (text): NULL;
        free (text);
        rc = sb_msg_set_reply (&reply, msg->corr_id, limited? SB_STATUS_LIMITED: SB_STATUS_OK, &payload);
        assert (rc == 0);
        snprintf (reply.quota.reason, sizeof reply.quota.reason, "%s", limited? "rate": "");
        snprintf (reply.quota.scope, sizeof reply.quota.scope, "default");
        reply.quota.limit = 60, reply.quota.remaining = limited? 0: 41;
        reply.quota.reset_s = 30, reply.quota.window_s = 60;
        reply.retry_after_ms = limited? 4200: 0;
        rc = sb_msg_send (router, &reply, routing);
        assert (rc == 0);
        sb_msg_reset (&reply);
    }
    else
    if ((strncmp (path, "/admin/tenants/", 15) == 0 || strncmp (path, "/admin/clients/", 15) == 0)
    &&  strcmp (request.method, "PATCH") != 0) {
        sb_http_response_t response = { .status = 200 };
        rc = sb_http_response_add_header (&response, "content-type", "application/json")
          || sb_http_response_set_body (&response, request.body, request.body_len);
        assert (rc == 0);
        char *text = sb_http_response_encode (&response);
        s_reply (router, routing, msg->corr_id, SB_STATUS_OK, text);
        free (text);
        sb_http_response_clear (&response);
    }
    else {
        bool authorize = strcmp (path, "/authorize") == 0 && strcmp (request.method, "GET") == 0;
        char *text = s_response (authorize? 302: 201, authorize? "https://client.example/cb?code=c1": NULL);
        s_reply (router, routing, msg->corr_id, SB_STATUS_OK, text);
        free (text);
    }
    #undef ENDS
    sb_http_request_clear (&request);
    sb_job_clear (&job);
}

static void
s_fake_broker (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "%d", port);
    s_state_t state = { 0 };
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        zsock_t *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                zstr_free (&command);
                break;
            }
            if (streq (command, "JOBS"))
                zstr_sendf (pipe, "%d", state.jobs);
            else
            if (streq (command, "JWKS"))
                zstr_sendf (pipe, "%d", state.jwks);
            else
            if (streq (command, "COST"))
                zstr_sendf (pipe, "%u", state.cost);
            else
            if (streq (command, "LAST"))
                zstr_send (pipe, state.last? state.last: "");
            else
            if (strncmp (command, "SET ", 4) == 0) {
                free (state.set);
                state.set = strdup (command + 4);
                zstr_send (pipe, "ok");
            }
            else
            if (streq (command, "CASTS"))
                zstr_sendf (pipe, "%d", state.casts);
            else
            if (streq (command, "CAST"))
                zstr_send (pipe, state.cast? state.cast: "");
            else
            if (strncmp (command, "SEND ", 5) == 0) {
                //  "SEND tenant topic payload": a BROADCAST to the gateway
                char tenant [80] = "", topic [40] = "";
                int used = 0;
                bool sent = false;
                if (state.gateway && sscanf (command + 5, "%79s %39s %n", tenant, topic, &used) == 2) {
                    const char *text = command + 5 + used;
                    zframe_t *payload = zframe_new (text, strlen (text));
                    sb_msg_t out = { 0 };
                    zframe_t *to = zframe_dup (state.gateway);
                    sent = sb_msg_set_broadcast (&out, tenant, topic, &payload) == 0
                        && sb_msg_send (router, &out, to) == 0;
                    zframe_destroy (&to);
                    zframe_destroy (&payload);
                    sb_msg_reset (&out);
                }
                zstr_send (pipe, sent? "ok": "not sent");
            }
            zstr_free (&command);
        }
        else
        if (which == router) {
            sb_msg_t msg = { 0 };
            zframe_t *routing = NULL;
            if (sb_msg_recv (router, &msg, &routing) == SB_MSG_OK) {
                if (!state.gateway)
                    state.gateway = zframe_dup (routing);
                if (msg.command == SB_CMD_BROADCAST) {
                    state.casts++;
                    free (state.cast);
                    state.cast = zsys_sprintf ("%s\t%s\t%.*s", msg.tenant, msg.topic,
                                               msg.payload? (int) zframe_size (msg.payload): 0,
                                               msg.payload? (char *) zframe_data (msg.payload): "");
                }
                else
                if (msg.command == SB_CMD_REQUEST)
                    s_on_request (router, routing, &msg, &state);
                else
                if (msg.command == SB_CMD_HEARTBEAT)
                    (void) !sb_msg_send (router, &msg, routing);    //  as the broker: "alive"
            }
            zframe_destroy (&routing);
            sb_msg_reset (&msg);
        }
    }
    free (state.set);
    free (state.last);
    free (state.cast);
    zframe_destroy (&state.gateway);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static int
s_broker_int (const char *command)
{
    zstr_send (s_broker, command);
    char *text = zstr_recv (s_broker);
    int value = text? (int) strtol (text, NULL, 10): -1;
    zstr_free (&text);
    return value;
}

//  The last HTTP job: its op, tenant, service and flags into the buffers,
//  its request decoded into `request`.
static void
s_last (char op [64], char tenant [64], char service [64], unsigned *flags, sb_http_request_t *request)
{
    zstr_send (s_broker, "LAST");
    char *text = zstr_recv (s_broker);
    assert_non_null (text);
    char *fields [5] = { 0 };
    char *p = text;
    for (int i = 0; i < 4; i++) {
        fields [i] = p;
        p = strchr (p, '\t');
        assert_non_null (p);
        *p++ = 0;
    }
    fields [4] = p;
    snprintf (op, 64, "%s", fields [0]);
    snprintf (tenant, 64, "%s", fields [1]);
    snprintf (service, 64, "%s", fields [2]);
    *flags = (unsigned) strtoul (fields [3], NULL, 10);
    const char *why = NULL;
    assert_int_equal (sb_http_request_decode (fields [4], strlen (fields [4]), request, &why), 0);
    zstr_free (&text);
}

//  ---------------------------------------------------------------------------
//  HTTP

typedef struct {
    long status;
    sb_harness_response_t response;
} s_answer_t;

//  One request to `path` with `headers` (NULL-terminated) and `len` bytes of `body`.
static void
s_http (s_answer_t *answer, const char *method, const char *path, const char *const headers [],
        const char *body, size_t len)
{
    char url [256];
    snprintf (url, sizeof url, "%s%s", s_base, path);
    sb_harness_request_t request = { .method = method, .url = url, .headers = headers,
                                     .body = body, .body_len = len, .timeout_ms = WAIT_MS };
    memset (answer, 0, sizeof *answer);
    assert_int_equal (sb_harness_request (&request, &answer->response), 0);
    answer->status = answer->response.status;
}

static void
s_clear (s_answer_t *answer)
{
    sb_harness_response_clear (&answer->response);
}

static void
s_expect_header (s_answer_t *answer, const char *name, const char *expected)
{
    char value [512];
    assert_true (sb_harness_header (&answer->response, name, value, sizeof value));
    assert_string_equal (value, expected);
}

//  ---------------------------------------------------------------------------
//  Fixture

static int
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    if (!file)
        return -1;
    fputs (text, file);
    return fclose (file);
}

static int
s_setup (void **state)
{
    if (!mkdtemp (s_dir))
        return -1;
    char key [128], session [128], admin [128];
    snprintf (key, sizeof key, "%s/token.key", s_dir);
    snprintf (session, sizeof session, "%s/session.key", s_dir);
    snprintf (admin, sizeof admin, "%s/admin.key", s_dir);
    if (sb_harness_write_key (key) || sb_harness_write_key (session) || s_write (admin, ADMIN_KEY "\n"))
        return -1;
    for (int i = 0; i < 3; i++)
        if (sb_crypto_random (s_seed [i], sizeof s_seed [i]))
            return -1;
    s_broker = zactor_new (s_fake_broker, NULL);
    char *port_text = zstr_recv (s_broker);
    char broker [64], listen [64], public_url [64];
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%s", port_text);
    zstr_free (&port_text);
    int port = sb_harness_free_port ();
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (public_url, sizeof public_url, "http://127.0.0.1:%d", port);
    snprintf (s_base, sizeof s_base, "%s", public_url);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", broker,
        "--token-key-file", key, "--session-key-file", session, "--admin-key-file", admin,
        "--connectors", SB_TEST_CONNECTORS, "--public-url", public_url,
        "--oauth-timeout-ms", OAUTH_TIMEOUT, "--jwks-refresh-ms", "0", "--log-level", "info", NULL
    };
    s_gateway = sb_harness_spawn (argv, NULL);
    if (s_gateway < 0)
        return -1;
    char health [96];
    snprintf (health, sizeof health, "%s/healthz", s_base);
    if (sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS))
        return -1;
    //  The key set was asked for at start (and there was none to give).
    int64_t deadline = sb_harness_now_ms () + WAIT_MS;
    while (s_broker_int ("JWKS") < 1 && sb_harness_now_ms () < deadline)
        sb_harness_pause_ms (10);
    return s_broker_int ("JWKS") == 1? 0: -1;
}

static int
s_teardown (void **state)
{
    int status = s_gateway > 0? sb_harness_stop (s_gateway): 0;
    zactor_destroy (&s_broker);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    if (system (command))
        return -1;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0? 0: -1;
}

//  ---------------------------------------------------------------------------
//  Tests

//  POST /token: the job carries the request as it came, with only the
//  allow-listed headers; the client gets the worker's response.
static void
test_token_relayed (void **state)
{
    int jobs = s_broker_int ("JOBS");
    const char *headers [] = {
        "Authorization: Basic Y2xpZW50OnNlY3JldA==",
        "Content-Type: application/x-www-form-urlencoded",
        "Cookie: a=1", "User-Agent: relay-test/1", "X-Forwarded-For: 10.9.9.9", "X-Other: no", NULL
    };
    const char body [] = "grant_type=authorization_code&code=abc&code_verifier=v%C3%A9";
    s_answer_t answer;
    s_http (&answer, "POST", "/token?x=1", headers, body, sizeof body - 1);
    assert_int_equal (answer.status, 201);
    assert_string_equal (answer.response.body, "{\"from\":\"worker\"}");
    s_expect_header (&answer, "Content-Type", "application/json");
    s_expect_header (&answer, "Cache-Control", "no-store");
    s_expect_header (&answer, "Set-Cookie", "sid=abc; Path=/; HttpOnly");
    s_clear (&answer);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 1);

    char op [64], tenant [64], service [64];
    unsigned flags;
    sb_http_request_t request = { 0 };
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "oauth/token");
    assert_string_equal (tenant, "_oauth");
    assert_string_equal (service, "token");
    assert_int_equal (flags & SB_FLAG_RETRY_SAFE, 0);
    assert_string_equal (request.method, "POST");
    assert_string_equal (request.path, "/token");
    assert_string_equal (request.query, "x=1");
    assert_string_equal (request.body, body);
    assert_string_equal (request.remote, "127.0.0.1");
    assert_string_equal (sb_http_request_header (&request, "authorization"), "Basic Y2xpZW50OnNlY3JldA==");
    assert_string_equal (sb_http_request_header (&request, "content-type"),
                         "application/x-www-form-urlencoded");
    assert_string_equal (sb_http_request_header (&request, "cookie"), "a=1");
    assert_string_equal (sb_http_request_header (&request, "user-agent"), "relay-test/1");
    assert_null (sb_http_request_header (&request, "x-forwarded-for"));
    assert_null (sb_http_request_header (&request, "x-other"));
    assert_null (sb_http_request_header (&request, "host"));
    sb_http_request_clear (&request);
}

//  GET /authorize: the query travels, the redirect comes back, and only
//  this job is marked safe to run again.
static void
test_authorize_get (void **state)
{
    s_answer_t answer;
    s_http (&answer, "GET", "/authorize?response_type=code&client_id=c&state=s%20t", NULL, NULL, 0);
    assert_int_equal (answer.status, 302);
    s_expect_header (&answer, "Location", "https://client.example/cb?code=c1");
    s_clear (&answer);
    char op [64], tenant [64], service [64];
    unsigned flags;
    sb_http_request_t request = { 0 };
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "oauth/authorize");
    assert_int_equal (flags & SB_FLAG_RETRY_SAFE, SB_FLAG_RETRY_SAFE);
    assert_string_equal (request.method, "GET");
    assert_string_equal (request.query, "response_type=code&client_id=c&state=s%20t");
    assert_string_equal (request.body, "");
    sb_http_request_clear (&request);

    //  POST /authorize (the consent) is not.
    const char *headers [] = { "Content-Type: application/x-www-form-urlencoded", NULL };
    s_http (&answer, "POST", "/authorize", headers, "decision=allow", 14);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "oauth/authorize");
    assert_int_equal (flags & SB_FLAG_RETRY_SAFE, 0);
    sb_http_request_clear (&request);

    //  /revoke and /register go to their ops.
    s_http (&answer, "POST", "/revoke", headers, "token=t", 7);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "oauth/revoke");
    sb_http_request_clear (&request);
    const char *json [] = { "Content-Type: application/json", NULL };
    s_http (&answer, "POST", "/register", json, "{\"redirect_uris\":[]}", 20);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "oauth/register");
    sb_http_request_clear (&request);
}

//  The connect flow's routes (issue 21): /connect/{connector} GET and POST
//  (a 16 KiB form) to connect/start, /connect/callback GET to
//  connect/callback, both under tenant _oauth and never marked safe to run
//  again (the callback takes its flow once); a path that is not one
//  connector name is not relayed.
static void
test_connect_routes (void **state)
{
    int jobs = s_broker_int ("JOBS");
    char op [64], tenant [64], service [64];
    unsigned flags;
    sb_http_request_t request = { 0 };
    s_answer_t answer;
    const char *headers [] = { "Cookie: sb_connect_csrf=c1", "Origin: https://evil.example", NULL };
    s_http (&answer, "GET", "/connect/Sandbox-oauth-2?ticket=abc.def", headers, NULL, 0);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "connect/start");
    assert_string_equal (tenant, "_oauth");
    assert_string_equal (service, "token");
    assert_int_equal (flags & SB_FLAG_RETRY_SAFE, 0);
    assert_string_equal (request.method, "GET");
    assert_string_equal (request.path, "/connect/Sandbox-oauth-2");
    assert_string_equal (request.query, "ticket=abc.def");
    assert_string_equal (sb_http_request_header (&request, "cookie"), "sb_connect_csrf=c1");
    assert_string_equal (sb_http_request_header (&request, "origin"), "https://evil.example");
    sb_http_request_clear (&request);

    const char *form [] = { "Content-Type: application/x-www-form-urlencoded", NULL };
    s_http (&answer, "POST", "/connect/crm", form, "ticket=t&csrf=c", 15);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "connect/start");
    assert_string_equal (tenant, "_oauth");
    assert_int_equal (flags & SB_FLAG_RETRY_SAFE, 0);
    assert_string_equal (request.method, "POST");
    assert_string_equal (request.body, "ticket=t&csrf=c");
    sb_http_request_clear (&request);

    s_http (&answer, "GET", "/connect/callback?code=c%2F1&state=s", NULL, NULL, 0);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "connect/callback");
    assert_string_equal (tenant, "_oauth");
    assert_int_equal (flags & SB_FLAG_RETRY_SAFE, 0);
    assert_string_equal (request.path, "/connect/callback");
    assert_string_equal (request.query, "code=c%2F1&state=s");
    sb_http_request_clear (&request);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 3);

    //  Limits: 16 KiB of form; the callback takes no body and no POST;
    //  the connector page no other method.
    size_t big_len = 16 * 1024 + 1;
    char *big = malloc (big_len);
    memset (big, 'a', big_len);
    s_http (&answer, "POST", "/connect/crm", form, big, big_len);
    assert_int_equal (answer.status, 413);
    s_clear (&answer);
    s_http (&answer, "POST", "/connect/crm", form, big, big_len - 1);
    assert_int_equal (answer.status, 201);      //  at the limit: sent
    s_clear (&answer);
    free (big);
    s_http (&answer, "POST", "/connect/callback", form, "a=b", 3);
    assert_int_equal (answer.status, 405);
    s_expect_header (&answer, "Allow", "GET");
    s_clear (&answer);
    s_http (&answer, "PUT", "/connect/crm", form, "a=b", 3);
    assert_int_equal (answer.status, 405);
    s_expect_header (&answer, "Allow", "GET, POST");
    s_clear (&answer);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 4);

    //  Not a connector's page: no job.
    char long_path [96];
    snprintf (long_path, sizeof long_path, "/connect/%065d", 7);
    const char *paths [] = { "/connect", "/connect/", "/connect/a.b", "/connect/a/b",
                             "/connect/a_b", "/connect/callback/x", long_path };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0]; i++) {
        s_http (&answer, "GET", paths [i], NULL, NULL, 0);
        assert_int_equal (answer.status, 404);
        s_clear (&answer);
    }
    //  64 characters is a name.
    snprintf (long_path, sizeof long_path, "/connect/%064d", 7);
    s_http (&answer, "GET", long_path, NULL, NULL, 0);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 5);
}

//  The admin API: the operator key or 401 (and no job); the key stays here.
static void
test_admin (void **state)
{
    int jobs = s_broker_int ("JOBS");
    const char *none [] = { "Content-Type: application/json", NULL };
    const char *wrong [] = { "Content-Type: application/json",
                             "Authorization: Bearer " ADMIN_KEY "x", NULL };
    const char *basic [] = { "Authorization: Basic b3BlcmF0b3I6eA==", NULL };
    const char *right [] = { "Content-Type: application/json", "Authorization: Bearer " ADMIN_KEY,
                             "User-Agent: sb-admin", NULL };
    s_answer_t answer;
    s_http (&answer, "GET", "/admin/tenants", NULL, NULL, 0);
    assert_int_equal (answer.status, 401);
    s_expect_header (&answer, "WWW-Authenticate", "Bearer realm=\"switchboard-admin\"");
    s_clear (&answer);
    s_http (&answer, "PATCH", "/admin/tenants/acme", none, "{}", 2);
    assert_int_equal (answer.status, 401);
    s_clear (&answer);
    s_http (&answer, "PATCH", "/admin/tenants/acme", wrong, "{}", 2);
    assert_int_equal (answer.status, 401);
    s_expect_header (&answer, "WWW-Authenticate", "Bearer realm=\"switchboard-admin\"");
    s_clear (&answer);
    s_http (&answer, "GET", "/admin/tenants", basic, NULL, 0);
    assert_int_equal (answer.status, 401);
    s_clear (&answer);
    assert_int_equal (s_broker_int ("JOBS"), jobs);

    s_http (&answer, "PATCH", "/admin/tenants/acme", right, "{\"plan\":\"pro\"}", 14);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 1);
    char op [64], tenant [64], service [64];
    unsigned flags;
    sb_http_request_t request = { 0 };
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (op, "admin/http");
    assert_string_equal (tenant, "_admin");
    assert_int_equal (flags & SB_FLAG_RETRY_SAFE, 0);
    assert_string_equal (request.method, "PATCH");
    assert_string_equal (request.path, "/admin/tenants/acme");
    assert_string_equal (request.body, "{\"plan\":\"pro\"}");
    assert_null (sb_http_request_header (&request, "authorization"));
    assert_string_equal (sb_http_request_header (&request, "user-agent"), "sb-admin");
    sb_http_request_clear (&request);
    //  Every method of the API, and none other.
    const char *methods [] = { "GET", "POST", "PUT", "DELETE" };
    for (int i = 0; i < 4; i++) {
        s_http (&answer, methods [i], "/admin/keys", right, NULL, 0);
        assert_int_equal (answer.status, 201);
        s_clear (&answer);
    }
    assert_int_equal (s_broker_int ("JOBS"), jobs + 5);
}

//  Refusals before any job: size, text, method.
static void
test_refused_before_job (void **state)
{
    int jobs = s_broker_int ("JOBS");
    const char *form [] = { "Content-Type: application/x-www-form-urlencoded", NULL };
    const char *admin [] = { "Content-Type: application/json", "Authorization: Bearer " ADMIN_KEY, NULL };
    size_t big_len = 64 * 1024 + 1;
    char *big = malloc (big_len);
    memset (big, 'a', big_len);
    s_answer_t answer;
    //  16 KiB on a form route, 64 KiB on a JSON route.
    s_http (&answer, "POST", "/token", form, big, 16 * 1024 + 1);
    assert_int_equal (answer.status, 413);
    s_clear (&answer);
    s_http (&answer, "POST", "/token", form, big, 16 * 1024);
    assert_int_equal (answer.status, 201);      //  at the limit: sent
    s_clear (&answer);
    s_http (&answer, "POST", "/register", admin, big, big_len);
    assert_int_equal (answer.status, 413);
    s_clear (&answer);
    s_http (&answer, "PUT", "/admin/tenants/x", admin, big, big_len);
    assert_int_equal (answer.status, 413);
    s_clear (&answer);
    free (big);
    //  Not UTF-8, a NUL, an overlong form, a surrogate.
    const char *bodies [] = { "a=\xff", "a=\0b", "a=\xc0\xaf", "a=\xed\xa0\x80" };
    const size_t lens [] = { 3, 4, 4, 5 };
    for (int i = 0; i < 4; i++) {
        s_http (&answer, "POST", "/token", form, bodies [i], lens [i]);
        assert_int_equal (answer.status, 400);
        s_clear (&answer);
    }
    //  A browser's route gets text.
    s_http (&answer, "POST", "/authorize", form, "a=\xff", 3);
    assert_int_equal (answer.status, 400);
    char type [64];
    assert_true (sb_harness_header (&answer.response, "Content-Type", type, sizeof type));
    assert_non_null (strstr (type, "text/plain"));
    s_clear (&answer);
    //  Methods.
    s_http (&answer, "GET", "/token", NULL, NULL, 0);
    assert_int_equal (answer.status, 405);
    s_expect_header (&answer, "Allow", "POST");
    s_clear (&answer);
    s_http (&answer, "DELETE", "/authorize", NULL, NULL, 0);
    assert_int_equal (answer.status, 405);
    s_expect_header (&answer, "Allow", "GET, POST");
    s_clear (&answer);
    s_http (&answer, "OPTIONS", "/admin/tenants", admin, NULL, 0);
    assert_int_equal (answer.status, 405);
    s_expect_header (&answer, "Allow", "GET, POST, PUT, PATCH, DELETE");
    s_clear (&answer);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 1);
}

//  The token service's failures: 503 (no worker, RESULT failed), 502 (a
//  response that does not decode), 504 (the deadline).
static void
test_failures (void **state)
{
    const char *admin [] = { "Authorization: Bearer " ADMIN_KEY, NULL };
    s_answer_t answer;
    s_http (&answer, "GET", "/admin/none", admin, NULL, 0);
    assert_int_equal (answer.status, 503);
    s_expect_header (&answer, "Retry-After", "1");
    assert_non_null (strstr (answer.response.body, "not available"));
    s_clear (&answer);
    s_http (&answer, "GET", "/admin/failed", admin, NULL, 0);
    assert_int_equal (answer.status, 503);
    s_expect_header (&answer, "Retry-After", "7");
    assert_non_null (strstr (answer.response.body, "temporarily_unavailable"));
    s_clear (&answer);
    s_http (&answer, "GET", "/admin/bad", admin, NULL, 0);
    assert_int_equal (answer.status, 502);
    char value [64];
    assert_false (sb_harness_header (&answer.response, "X-Forwarded-Host", value, sizeof value));
    s_clear (&answer);
    int64_t start = sb_harness_now_ms ();
    s_http (&answer, "GET", "/admin/hold", admin, NULL, 0);
    assert_int_equal (answer.status, 504);
    assert_true (sb_harness_now_ms () - start >= 1000);
    s_clear (&answer);
    //  The gateway still serves.
    s_http (&answer, "GET", "/admin/tenants", admin, NULL, 0);
    assert_int_equal (answer.status, 201);
    s_clear (&answer);

    //  A client that leaves while its job runs: the job is forgotten when
    //  h2o frees the request, or its outcome goes to a closed connection
    //  (HTTP/1.1 notices the close only when it writes); either way the
    //  gateway goes on (its deadline passes while the next one waits).
    int jobs = s_broker_int ("JOBS");
    char url [128];
    snprintf (url, sizeof url, "%s/admin/hold", s_base);
    sb_harness_request_t request = { .method = "GET", .url = url, .headers = admin,
                                     .timeout_ms = WAIT_MS };
    sb_harness_call_t *call = sb_harness_call_start (&request);
    assert_non_null (call);
    int64_t deadline = sb_harness_now_ms () + WAIT_MS;
    while (s_broker_int ("JOBS") < jobs + 1 && sb_harness_now_ms () < deadline)
        sb_harness_pause_ms (10);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 1);
    sb_harness_call_wait (call, 0, true, NULL, NULL);
    sb_harness_call_destroy (&call);
    s_http (&answer, "GET", "/admin/hold", admin, NULL, 0);
    assert_int_equal (answer.status, 504);
    s_clear (&answer);
}

//  An EdDSA token of `key` (0..2, kid "k1".."k3") issued by the gateway's
//  public URL for its /mcp (new string).
static char *
s_token_of (int key, const char *tenant, const char *subject, const char *client_id, int64_t iat)
{
    sb_token_claims_t claims = { 0 };
    snprintf (claims.issuer, sizeof claims.issuer, "%s", s_base);
    snprintf (claims.audience, sizeof claims.audience, "%s/mcp", s_base);
    snprintf (claims.tenant, sizeof claims.tenant, "%s", tenant);
    snprintf (claims.subject, sizeof claims.subject, "%s", subject);
    snprintf (claims.client_id, sizeof claims.client_id, "%s", client_id);
    snprintf (claims.scope, sizeof claims.scope, "mcp:tools");
    claims.issued_at = iat;
    claims.expires_at = claims.issued_at + 600;
    char kid [16];
    snprintf (kid, sizeof kid, "k%d", key + 1);
    char *token = sb_token_issue_eddsa (&claims, s_seed [key], kid);
    assert_non_null (token);
    return token;
}

static char *
s_token (int key)
{
    return s_token_of (key, "acme", "user:1", "client-1", time (NULL));
}

//  {"keys": [the JWKs of `count` keys from `first`]} (new string).
static char *
s_set (int first, int count)
{
    json_t *keys = json_array ();
    for (int i = first; i < first + count; i++) {
        char kid [16];
        snprintf (kid, sizeof kid, "k%d", i + 1);
        char *jwk = sb_jwks_public_jwk (s_seed [i], kid);
        assert_non_null (jwk);
        json_array_append_new (keys, json_loads (jwk, 0, NULL));
        free (jwk);
    }
    json_t *doc = json_pack ("{s:o}", "keys", keys);
    char *text = json_dumps (doc, JSON_COMPACT);
    json_decref (doc);
    return text;
}

static void
s_set_keys (int first, int count)
{
    char *set = s_set (first, count);
    zstr_sendf (s_broker, "SET %s", set);
    char *ok = zstr_recv (s_broker);
    assert_string_equal (ok, "ok");
    zstr_free (&ok);
    free (set);
}

//  POST /mcp ping with `token`; the HTTP status.
static long
s_ping (const char *token)
{
    char auth [SB_MAX_TOKEN_LEN + 32];
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *headers [] = { auth, "Content-Type: application/json",
                               "Accept: application/json, text/event-stream", NULL };
    const char body [] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    s_answer_t answer;
    s_http (&answer, "POST", "/mcp", headers, body, sizeof body - 1);
    long status = answer.status;
    s_clear (&answer);
    return status;
}

//  The key set comes from the token service: learnt when a token names an
//  unknown kid, again when the kid rotates, and an unknown kid still
//  unknown after asking is refused.
static void
test_jwks (void **state)
{
    int asked = s_broker_int ("JWKS");
    char *t1 = s_token (0), *t2 = s_token (1), *t3 = s_token (2);
    s_answer_t answer;
    s_http (&answer, "GET", "/.well-known/jwks.json", NULL, NULL, 0);
    assert_int_equal (answer.status, 404);          //  none yet: the token service had none
    s_clear (&answer);

    //  k1: the gateway asks, learns it, and the waiting request verifies.
    s_set_keys (0, 1);
    assert_int_equal (s_ping (t1), 200);
    assert_int_equal (s_broker_int ("JWKS"), asked + 1);
    assert_int_equal (s_ping (t1), 200);            //  known now: no more asking
    assert_int_equal (s_broker_int ("JWKS"), asked + 1);
    s_http (&answer, "GET", "/.well-known/jwks.json", NULL, NULL, 0);
    assert_int_equal (answer.status, 200);
    assert_non_null (strstr (answer.response.body, "\"kid\":\"k1\""));
    assert_null (strstr (answer.response.body, "\"d\""));
    s_clear (&answer);

    //  Rotation: k2 comes into the set; a token of k2 makes the gateway ask once.
    s_set_keys (0, 2);
    assert_int_equal (s_ping (t2), 200);
    assert_int_equal (s_broker_int ("JWKS"), asked + 2);
    assert_int_equal (s_ping (t1), 200);

    //  k3 is in no set: one more ask, then 401.
    assert_int_equal (s_ping (t3), 401);
    assert_int_equal (s_broker_int ("JWKS"), asked + 3);
    s_http (&answer, "GET", "/.well-known/jwks.json", NULL, NULL, 0);
    assert_non_null (strstr (answer.response.body, "\"kid\":\"k2\""));
    s_clear (&answer);

    //  k1 retired: its tokens stop working once the set no longer has it
    //  (the ask for k3's second try brings the new set).
    s_set_keys (1, 1);
    assert_int_equal (s_ping (t3), 401);
    assert_int_equal (s_broker_int ("JWKS"), asked + 4);
    assert_int_equal (s_ping (t1), 401);
    assert_int_equal (s_ping (t2), 200);
    free (t1);
    free (t2);
    free (t3);
}

//  A revoking admin request relayed and answered 200: the admin answer `body`.
static void
s_admin_revoke (const char *method, const char *path, const char *body)
{
    const char *headers [] = { "Content-Type: application/json", "Authorization: Bearer " ADMIN_KEY, NULL };
    s_answer_t answer;
    s_http (&answer, method, path, headers, body, strlen (body));
    assert_int_equal (answer.status, 200);
    s_clear (&answer);
}

//  The last BROADCAST the gateway sent, once it sent `count`: "tenant\ttopic\tpayload" (new string).
static char *
s_cast (int count)
{
    //  The gateway sent it before its answer, but the fake broker may read
    //  our command first: ask again (each ask is a round trip through its poller)
    for (int i = 0; i < 10000 && s_broker_int ("CASTS") < count; i++)
        ;
    assert_int_equal (s_broker_int ("CASTS"), count);
    zstr_send (s_broker, "CAST");
    char *text = zstr_recv (s_broker);
    assert_non_null (text);
    return text;
}

//  Sends the gateway a BROADCAST, as another gateway would.
static void
s_send_cast (const char *tenant, const char *topic, const char *payload)
{
    zstr_sendf (s_broker, "SEND %s %s %s", tenant, topic, payload);
    char *ok = zstr_recv (s_broker);
    assert_string_equal (ok, "ok");
    zstr_free (&ok);
}

//  Pings with `token` until the gateway refuses it (a broadcast is applied
//  between two requests; bounded). True when it did.
static bool
s_refused_soon (const char *token)
{
    for (int i = 0; i < 200; i++)
        if (s_ping (token) == 401)
            return true;
    return false;
}

//  A revoking admin request that succeeds makes this gateway refuse the
//  tokens it revoked at once (401 invalid_token, with a sentence) and tells
//  the others (BROADCAST tokens_revoked); one from another gateway is
//  applied here; a token issued after a revocation works; anything else is
//  left alone.
static void
test_revocation (void **state)
{
    (void) state;
    s_set_keys (0, 1);
    int64_t now = time (NULL);
    char *alice = s_token_of (0, "acme", "user:1", "client-1", now - 1);
    char *bob = s_token_of (0, "acme", "user:2", "client-1", now - 1);
    char *carol = s_token_of (0, "globex", "user:3", "client-1", now - 1);
    char *dave = s_token_of (0, "initech", "user:4", "client-9", now - 1);
    assert_int_equal (s_ping (alice), 200);     //  each cached now
    assert_int_equal (s_ping (bob), 200);
    assert_int_equal (s_ping (carol), 200);
    assert_int_equal (s_ping (dave), 200);
    int casts = s_broker_int ("CASTS");

    //  tokens revoke for one user: alice refused at once, bob not
    s_admin_revoke ("DELETE", "/admin/tenants/acme/tokens?user=1",
                    "{\"tenant\":\"acme\",\"user_id\":1,\"refresh_families_revoked\":1}");
    char *cast = s_cast (casts + 1);
    assert_non_null (strstr (cast, "acme\ttokens_revoked\t{"));
    assert_non_null (strstr (cast, "\"subject\":\"user:1\""));
    assert_non_null (strstr (cast, "\"revoked_at\":"));
    zstr_free (&cast);
    const char *auth_headers [] = { NULL, "Content-Type: application/json",
                                    "Accept: application/json, text/event-stream", NULL };
    char auth [SB_MAX_TOKEN_LEN + 32];
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", alice);
    auth_headers [0] = auth;
    s_answer_t answer;
    s_http (&answer, "POST", "/mcp", auth_headers, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 40);
    assert_int_equal (answer.status, 401);
    assert_non_null (strstr (answer.response.body, "invalid_token"));
    assert_non_null (strstr (answer.response.body, "The access token was revoked: The access tokens of its user were revoked."));
    char challenge [512];
    assert_true (sb_harness_header (&answer.response, "WWW-Authenticate", challenge, sizeof challenge));
    assert_non_null (strstr (challenge, "invalid_token"));
    s_clear (&answer);
    assert_int_equal (s_ping (alice), 401);
    assert_int_equal (s_ping (bob), 200);
    //  alice signs in again: a token issued after the revocation works
    char *alice_again = s_token_of (0, "acme", "user:1", "client-1", time (NULL) + 1);
    assert_int_equal (s_ping (alice_again), 200);

    //  a password reset (bob), a tenant deletion (globex), a client revoked (client-9)
    s_admin_revoke ("PUT", "/admin/tenants/acme/users/2/password",
                    "{\"tenant\":\"acme\",\"user_id\":2,\"refresh_families_revoked\":0,\"codes_deleted\":0}");
    assert_int_equal (s_ping (bob), 401);
    s_admin_revoke ("DELETE", "/admin/tenants/globex", "{\"tenant\":\"globex\",\"deleted\":{}}");
    assert_int_equal (s_ping (carol), 401);
    cast = s_cast (casts + 3);
    assert_non_null (strstr (cast, "globex\ttokens_revoked\t{\"tenant\":\"globex\""));
    assert_null (strstr (cast, "\"subject\":\"user"));
    zstr_free (&cast);
    s_admin_revoke ("DELETE", "/admin/clients/client-9",
                    "{\"client_id\":\"client-9\",\"tenants\":[\"initech\"],\"deleted\":{}}");
    assert_int_equal (s_ping (dave), 401);
    cast = s_cast (casts + 4);
    assert_non_null (strstr (cast, "_admin\ttokens_revoked\t{"));
    assert_non_null (strstr (cast, "\"client_id\":\"client-9\""));
    zstr_free (&cast);
    assert_int_equal (s_ping (alice_again), 200);   //  none of it touched her new token
    //  A client ID that is a URL travels percent-encoded: one segment still
    const char *url = "https://client.example/meta.json";
    char *ivan = s_token_of (0, "initech", "user:9", url, now - 1);
    assert_int_equal (s_ping (ivan), 200);
    s_admin_revoke ("DELETE", "/admin/clients/https%3A%2F%2Fclient.example%2Fmeta.json",
                    "{\"client_id\":\"https://client.example/meta.json\",\"tenants\":[]}");
    //  and reaches the token service as it was sent (h2o's normalised path decodes %2F)
    char op [64], tenant [64], service [64];
    unsigned flags;
    sb_http_request_t request = { 0 };
    s_last (op, tenant, service, &flags, &request);
    assert_string_equal (request.path, "/admin/clients/https%3A%2F%2Fclient.example%2Fmeta.json");
    sb_http_request_clear (&request);
    assert_int_equal (s_ping (ivan), 401);
    free (ivan);

    //  A user removed: DELETE …/users/{id}
    char *erin = s_token_of (0, "acme", "user:5", "client-1", now - 1);
    assert_int_equal (s_ping (erin), 200);
    s_admin_revoke ("DELETE", "/admin/tenants/acme/users/5",
                    "{\"tenant\":\"acme\",\"user_id\":5,\"deleted\":{}}");
    assert_int_equal (s_ping (erin), 401);
    zstr_free (&cast);
    cast = s_cast (casts + 6);

    //  Not revoking: a GET, or a route of another shape, changes nothing
    char *frank = s_token_of (0, "umbrella", "user:6", "client-1", now - 1);
    s_admin_revoke ("GET", "/admin/tenants/umbrella", "{\"tenant\":\"umbrella\"}");
    s_admin_revoke ("DELETE", "/admin/tenants/umbrella/plan", "{\"tenant\":\"umbrella\"}");
    assert_int_equal (s_ping (frank), 200);
    assert_int_equal (s_broker_int ("CASTS"), casts + 6);
    zstr_free (&cast);

    //  From another gateway: applied here; a forged tenant is ignored
    char *grace = s_token_of (0, "hooli", "user:7", "client-1", now - 1);
    char *heidi = s_token_of (0, "piedpiper", "user:8", "client-1", now - 1);
    assert_int_equal (s_ping (grace), 200);
    assert_int_equal (s_ping (heidi), 200);
    char payload [128];
    snprintf (payload, sizeof payload, "{\"tenant\":\"piedpiper\",\"revoked_at\":%lld}", (long long) time (NULL));
    s_send_cast ("hooli", "tokens_revoked", payload);          //  the payload names another tenant
    snprintf (payload, sizeof payload, "{\"tenant\":\"hooli\",\"revoked_at\":%lld}", (long long) time (NULL));
    s_send_cast ("hooli", "tokens_revoked", payload);
    assert_true (s_refused_soon (grace));
    assert_int_equal (s_ping (heidi), 200);         //  the first was before it: ignored, not late
    free (alice);
    free (bob);
    free (carol);
    free (dave);
    free (alice_again);
    free (erin);
    free (frank);
    free (grace);
    free (heidi);
}

//  A gateway refuses to start with an operator key that is too short, or
//  an admin key file that cannot be read.
static void
test_admin_key_refused (void **state)
{
    char path [128], missing [128], listen [64];
    snprintf (path, sizeof path, "%s/short.key", s_dir);
    snprintf (missing, sizeof missing, "%s/missing.key", s_dir);
    assert_int_equal (s_write (path, "short\n"), 0);
    const char *files [] = { path, missing };
    for (int i = 0; i < 2; i++) {
        snprintf (listen, sizeof listen, "127.0.0.1:%d", sb_harness_free_port ());
        char key [128], session [128];
        snprintf (key, sizeof key, "%s/token.key", s_dir);
        snprintf (session, sizeof session, "%s/session.key", s_dir);
        const char *argv [] = {
            sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", "tcp://127.0.0.1:1",
            "--token-key-file", key, "--session-key-file", session, "--admin-key-file", files [i],
            "--connectors", SB_TEST_CONNECTORS, NULL
        };
        pid_t pid = sb_harness_spawn (argv, NULL);
        assert_true (pid > 0);
        int64_t deadline = sb_harness_now_ms () + WAIT_MS;
        while (sb_harness_alive (pid) && sb_harness_now_ms () < deadline)
            sb_harness_pause_ms (10);
        int status = sb_harness_stop (pid);
        assert_true (WIFEXITED (status));
        assert_int_equal (WEXITSTATUS (status), 1);
    }
}

//  Quotas: an admin API job counts 1, a sign-in's 0; a refusal is 429 with
//  Retry-After and {"error", "message"}; a rate policy becomes the
//  RateLimit fields of the response.
static void
test_quotas (void **state)
{
    const char *admin [] = { "Authorization: Bearer " ADMIN_KEY, NULL };
    s_answer_t answer;
    s_http (&answer, "GET", "/admin/tenants", admin, NULL, 0);
    assert_int_equal (answer.status, 201);
    assert_int_equal (s_broker_int ("COST"), 1);
    char value [64];
    assert_false (sb_harness_header (&answer.response, "RateLimit-Policy", value, sizeof value));
    s_clear (&answer);
    const char *form [] = { "Content-Type: application/x-www-form-urlencoded", NULL };
    s_http (&answer, "POST", "/token", form, "grant_type=x", 12);
    assert_int_equal (answer.status, 201);
    assert_int_equal (s_broker_int ("COST"), 0);
    s_clear (&answer);

    s_http (&answer, "GET", "/admin/limited", admin, NULL, 0);
    assert_int_equal (answer.status, 429);
    s_expect_header (&answer, "Retry-After", "5");          //  4.2 s rounded up
    s_expect_header (&answer, "RateLimit-Policy", "\"default\";q=60;w=60");
    s_expect_header (&answer, "RateLimit", "\"default\";r=0;t=30");
    json_t *body = json_loads (answer.response.body, 0, NULL);
    assert_non_null (body);
    assert_string_equal (json_string_value (json_object_get (body, "error")), "rate_limited");
    const char *message = json_string_value (json_object_get (body, "message"));
    assert_non_null (message);
    assert_non_null (strstr (message, "Rate limit reached: your plan \"default\" allows 60 admin API "
                                      "requests per minute"));
    assert_non_null (strstr (message, "Try again in 5 seconds"));
    json_decref (body);
    s_clear (&answer);

    s_http (&answer, "GET", "/admin/metered", admin, NULL, 0);
    assert_int_equal (answer.status, 200);
    s_expect_header (&answer, "RateLimit-Policy", "\"default\";q=60;w=60");
    s_expect_header (&answer, "RateLimit", "\"default\";r=41;t=30");
    s_clear (&answer);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_token_relayed),
        cmocka_unit_test (test_authorize_get),
        cmocka_unit_test (test_admin),
        cmocka_unit_test (test_connect_routes),
        cmocka_unit_test (test_refused_before_job),
        cmocka_unit_test (test_failures),
        cmocka_unit_test (test_jwks),
        cmocka_unit_test (test_revocation),
        cmocka_unit_test (test_admin_key_refused),
        cmocka_unit_test (test_quotas),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
