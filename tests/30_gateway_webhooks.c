/*  tests/30_gateway_webhooks.c — webhooks at the gateway (gateway/sb_webhook.c,
    proto/PROTOCOL.md "Webhooks"): POST /webhooks/{endpoint} relayed as job
    webhook/receive, and a worker's resource_updated (PUBLISH, passed on by
    the broker as BROADCAST) reaching the subscribed sessions and listen
    streams of its tenant only.

    The real sb-gateway runs against a fake broker in this process (a
    ROUTER in a zactor thread speaking the proto codec) that plays the
    webhook service: it records the last job it got (op, tenant, service,
    flags, cost, data and the raw body as hex) and answers by the
    endpoint ID's prefix:
      "ephold"   never (the gateway's deadline: 504)
      "epfail"   RESULT failed with retry_after 7 (503, Retry-After: 7)
      "epnone"   REPLY unavailable: no worker (503)
      "epbusy"   REPLY overloaded (503)
      "epxml"    200 text/xml with a SOAP Ack, as for Salesforce
      "epbad"    a response with a header off the allow-list (502)
      else       202 application/json {"received":true} with retry-after 3
                 (a header on the allow-list passes)
    It answers events/read with EVENTS for tenant "acme" and "no worker"
    for any other. It also sends the gateway a BROADCAST when told ("SEND tenant topic
    payload"), as the broker does with a worker's PUBLISH.
    Everything a test waits for is a reply, a count or bytes on a stream,
    never a bare sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_job.h"
#include "sb_msg.h"
#include "30_gateway_inproc.h"

#define WAIT_MS             10000   /* longest wait for any reply */
#define WEBHOOK_TIMEOUT     "300"   /* --webhook-timeout-ms: the deadline test waits this + grace */
#define WEBHOOK_MAX_BODY    65536   /* --webhook-max-body */
#define EVENTS_URI          "switchboard://events/notes"
#define EVENTS              "{\"events\":[{\"id\":\"ev_2\",\"type\":\"invoice.paid\",\"endpoint\":" \
                            "\"we_1\",\"received_at\":\"2026-12-07T10:00:00Z\",\"body\":\"{}\"}]}"

static pid_t s_gateway = -1;
static zactor_t *s_broker;
static char s_dir [128];            /* the connectors folder */
static char *s_token;               /* tenant "acme" */
static char *s_other;               /* tenant "globex" */

//  ---------------------------------------------------------------------------
//  The fake broker

typedef struct {
    int jobs;                   /* jobs received (but oauth/jwks) */
    char *last;                 /* "op\ttenant\tservice\tflags\tcost\thas_body\tdata" of the last */
    char *body;                 /* its body as hex */
    zframe_t *gateway;          /* the gateway's routing frame, once it spoke */
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

//  A response the webhook service might give (JSON text, new string).
static char *
s_response (int status, const char *type, const char *extra, const char *value, const char *body)
{
    sb_http_response_t response = { .status = status };
    int rc = sb_http_response_add_header (&response, "content-type", type)
          || (extra && sb_http_response_add_header (&response, extra, value))
          || sb_http_response_set_body (&response, body, strlen (body));
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
        s_reply (router, routing, msg->corr_id, SB_STATUS_UNAVAILABLE, NULL);
        sb_job_clear (&job);
        return;
    }
    state->jobs++;
    free (state->last);
    free (state->body);
    state->last = zsys_sprintf ("%s\t%s\t%s\t%u\t%u\t%d\t%s", job.op, msg->tenant, msg->service,
                                msg->flags, msg->cost, job.body != NULL, job.data? job.data: "");
    state->body = malloc (2 * job.body_len + 1);
    assert (state->body);
    sb_hex_encode (job.body? job.body: (const uint8_t *) "", job.body_len, state->body);
    state->body [2 * job.body_len] = 0;
    json_t *data = job.data? json_loads (job.data, 0, NULL): NULL;
    if (strcmp (job.op, "events/read") == 0) {
        if (strcmp (msg->tenant, "acme") == 0)
            s_reply (router, routing, msg->corr_id, SB_STATUS_OK, EVENTS);
        else
            s_reply (router, routing, msg->corr_id, SB_STATUS_UNAVAILABLE, NULL);
        json_decref (data);
        sb_job_clear (&job);
        return;
    }
    const char *endpoint = json_string_value (json_object_get (data, "endpoint"));
    if (!endpoint)
        endpoint = "";
    #define IS(prefix) (strncmp (endpoint, prefix, strlen (prefix)) == 0)
    if (IS ("ephold"))
        ;
    else
    if (IS ("epfail"))
        s_reply (router, routing, msg->corr_id, SB_STATUS_FAILED,
                 "{\"error\":\"the database is down\",\"retry_after\":7}");
    else
    if (IS ("epnone") || IS ("epbusy")) {
        sb_msg_t reply = { 0 };
        zframe_t *none = NULL;
        rc = sb_msg_set_reply (&reply, msg->corr_id, IS ("epnone")? SB_STATUS_UNAVAILABLE
                                                                  : SB_STATUS_OVERLOADED, &none);
        assert (rc == 0);
        reply.retry_after_ms = 2000;
        rc = sb_msg_send (router, &reply, routing);
        assert (rc == 0);
        sb_msg_reset (&reply);
    }
    else
    if (IS ("epbad"))
        s_reply (router, routing, msg->corr_id, SB_STATUS_OK,
                 "{\"status\":200,\"headers\":[[\"x-forwarded-host\",\"evil\"]],\"body\":\"\"}");
    else {
        bool xml = IS ("epxml");
        char *text = xml? s_response (200, "text/xml; charset=utf-8", NULL, NULL,
                                      "<soapenv:Envelope><Ack>true</Ack></soapenv:Envelope>")
                        : s_response (202, "application/json", "retry-after", "3",
                                      "{\"received\":true}");
        s_reply (router, routing, msg->corr_id, SB_STATUS_OK, text);
        free (text);
    }
    #undef IS
    json_decref (data);
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
            if (streq (command, "LAST"))
                zstr_send (pipe, state.last? state.last: "");
            else
            if (streq (command, "BODY"))
                zstr_send (pipe, state.body? state.body: "");
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
    free (state.last);
    free (state.body);
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

//  The broker's answer to `command` (new string).
static char *
s_broker_text (const char *command)
{
    zstr_send (s_broker, command);
    char *text = zstr_recv (s_broker);
    assert_non_null (text);
    return text;
}

/*  The last job as the broker got it. */
typedef struct {
    char op [64], tenant [64], service [64];
    unsigned flags, cost;
    bool has_body;
    json_t *data;               /* its data, parsed */
} s_job_t;

static void
s_last (s_job_t *job)
{
    char *text = s_broker_text ("LAST");
    char *fields [7] = { 0 };
    char *p = text;
    for (int i = 0; i < 6; i++) {
        fields [i] = p;
        p = strchr (p, '\t');
        assert_non_null (p);
        *p++ = 0;
    }
    fields [6] = p;
    snprintf (job->op, sizeof job->op, "%s", fields [0]);
    snprintf (job->tenant, sizeof job->tenant, "%s", fields [1]);
    snprintf (job->service, sizeof job->service, "%s", fields [2]);
    job->flags = (unsigned) strtoul (fields [3], NULL, 10);
    job->cost = (unsigned) strtoul (fields [4], NULL, 10);
    job->has_body = strcmp (fields [5], "1") == 0;
    job->data = json_loads (fields [6], 0, NULL);
    assert_non_null (job->data);
    zstr_free (&text);
}

//  The value of header `name` in the job's [[name, value]…] (the first), or NULL.
static const char *
s_job_header (const s_job_t *job, const char *name)
{
    size_t index;
    json_t *pair;
    json_array_foreach (json_object_get (job->data, "headers"), index, pair)
        if (strcmp (json_string_value (json_array_get (pair, 0)), name) == 0)
            return json_string_value (json_array_get (pair, 1));
    return NULL;
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
        const char *body, size_t len, bool http2)
{
    char url [256];
    snprintf (url, sizeof url, "%s%s", gi_base, path);
    sb_harness_request_t request = { .method = method, .url = url, .headers = headers,
                                     .body = body, .body_len = len, .timeout_ms = WAIT_MS,
                                     .http2 = http2 };
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

//  The answer's JSON body's "error" is `error`.
static void
s_expect_error (s_answer_t *answer, const char *error)
{
    json_t *doc = json_loadb (answer->response.body? answer->response.body: "",
                              answer->response.body_len, 0, NULL);
    assert_non_null (doc);
    assert_string_equal (json_string_value (json_object_get (doc, "error")), error);
    json_decref (doc);
}

//  ---------------------------------------------------------------------------
//  Sessions (as 30_gateway_notify does)

//  A new session of `token` (initialize + initialized): its Mcp-Session-Id.
static char *
s_session (const char *token)
{
    gi_http_t *h = gi_start ("POST", token, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    gi_finish (h);
    assert_int_equal (h->status, 200);
    char *session = strdup (h->session);
    assert_true (strlen (session) > 10);
    gi_free (h);
    h = gi_start ("POST", token, session, NULL,
                 "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    gi_finish (h);
    assert_int_equal (h->status, 202);
    gi_free (h);
    return session;
}

//  A GET stream of `session`, open (its first bytes came).
static gi_http_t *
s_stream (const char *token, const char *session)
{
    gi_http_t *h = gi_start ("GET", token, session, NULL, NULL);
    GI_WAIT_FOR (gi_has (h, "\n\n"));
    assert_false (gi_done (h));
    return h;
}

//  resources/subscribe of `uri` in `session`; asserts it was taken.
static void
s_subscribe (const char *token, const char *session, const char *uri)
{
    char body [512];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"resources/subscribe\","
              "\"params\":{\"uri\":\"%s\"}}", uri);
    json_t *reply = gi_rpc (token, session, NULL, body, NULL);
    if (!json_is_object (json_object_get (reply, "result"))) {
        char *text = json_dumps (reply, 0);
        fail_msg ("subscribe %s: %s", uri, text);
    }
    json_decref (reply);
}

//  Tells the fake broker to send BROADCAST resource_updated `uri` for `tenant`.
static void
s_publish (const char *tenant, const char *uri)
{
    char *command = zsys_sprintf ("SEND %s resource_updated %s", tenant, uri);
    char *answer = s_broker_text (command);
    assert_string_equal (answer, "ok");
    zstr_free (&answer);
    zstr_free (&command);
}

//  ---------------------------------------------------------------------------
//  Fixture

static int
s_setup (void **state)
{
    if (gi_key_make ("webhooks"))
        return -1;
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-30-webhooks-%d", (int) getpid ());
    if (mkdir (s_dir, 0700))
        return -1;
    gi_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");
    s_broker = zactor_new (s_fake_broker, NULL);
    char *port_text = zstr_recv (s_broker);
    char broker [64], listen [64], max_body [32];
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%s", port_text);
    zstr_free (&port_text);
    int port = sb_harness_free_port ();
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (gi_base, sizeof gi_base, "http://127.0.0.1:%d", port);
    snprintf (max_body, sizeof max_body, "%d", WEBHOOK_MAX_BODY);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", broker,
        "--token-key-file", gi_key_path, "--session-key-file", gi_session_key_path,
        "--connectors", s_dir, "--public-url", gi_base,
        "--webhook-timeout-ms", WEBHOOK_TIMEOUT, "--webhook-max-body", max_body,
        "--jwks-refresh-ms", "0", "--log-level", "info", NULL
    };
    s_gateway = sb_harness_spawn (argv, NULL);
    if (s_gateway < 0)
        return -1;
    char health [96];
    snprintf (health, sizeof health, "%s/healthz", gi_base);
    if (sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS))
        return -1;
    s_token = gi_issue ("acme", 3600);
    s_other = gi_issue ("globex", 3600);
    //  The broker must have heard from the gateway (its heartbeat) before
    //  it can send it anything.
    int64_t deadline = sb_harness_now_ms () + WAIT_MS;
    char *answer = NULL;
    while ((!answer || strcmp (answer, "ok") != 0) && sb_harness_now_ms () < deadline) {
        zstr_free (&answer);
        zstr_send (s_broker, "SEND _nobody ping x");
        answer = zstr_recv (s_broker);
        if (strcmp (answer, "ok") != 0)
            sb_harness_pause_ms (10);
    }
    bool heard = answer && strcmp (answer, "ok") == 0;
    zstr_free (&answer);
    return s_token && s_other && heard? 0: -1;
}

static int
s_teardown (void **state)
{
    int status = s_gateway > 0? sb_harness_stop (s_gateway): 0;
    zactor_destroy (&s_broker);
    free (s_token);
    free (s_other);
    unlink (gi_key_path);
    unlink (gi_session_key_path);
    gi_remove_dir (s_dir);
    return WIFEXITED (status) && WEXITSTATUS (status) == 0? 0: -1;
}

//  ---------------------------------------------------------------------------
//  Tests

//  The job carries what PROTOCOL.md says: op, service, tenant, flags, no
//  cost; data {endpoint, method, query, headers (every one, lowercased, in
//  order), remote}; the raw body byte for byte (NUL and bytes that are not
//  UTF-8 included). The provider gets the worker's response as it is.
static void
test_relayed (void **state)
{
    for (int http2 = 0; http2 < 2; http2++) {
        int jobs = s_broker_int ("JOBS");
        const char *headers [] = {
            "Content-Type: application/octet-stream", "Stripe-Signature: t=1,v1=abc",
            "X-Hub-Signature-256: sha256=00ff", "X-Mixed-CASE: Value With Case", NULL
        };
        const char body [] = "{\"a\":1}\0\xff\xfe\x80 raw\r\n\x01";
        size_t len = sizeof body - 1;
        s_answer_t answer;
        s_http (&answer, "POST", "/webhooks/we_Abc-123_xyz?x=1&y=%20z", headers, body, len, http2);
        assert_int_equal (answer.status, 202);
        assert_int_equal (answer.response.body_len, 17);
        assert_memory_equal (answer.response.body, "{\"received\":true}", 17);
        s_expect_header (&answer, "Content-Type", "application/json");
        s_expect_header (&answer, "Retry-After", "3");
        s_clear (&answer);
        assert_int_equal (s_broker_int ("JOBS"), jobs + 1);

        s_job_t job;
        s_last (&job);
        assert_string_equal (job.op, "webhook/receive");
        assert_string_equal (job.tenant, "_webhook");
        assert_string_equal (job.service, "webhook");
        assert_int_equal (job.flags & SB_FLAG_RETRY_SAFE, SB_FLAG_RETRY_SAFE);
        assert_int_equal (job.cost, 0);
        assert_true (job.has_body);
        assert_string_equal (json_string_value (json_object_get (job.data, "endpoint")), "we_Abc-123_xyz");
        assert_string_equal (json_string_value (json_object_get (job.data, "method")), "POST");
        assert_string_equal (json_string_value (json_object_get (job.data, "query")), "x=1&y=%20z");
        assert_string_equal (json_string_value (json_object_get (job.data, "remote")), "127.0.0.1");
        assert_string_equal (s_job_header (&job, "stripe-signature"), "t=1,v1=abc");
        assert_string_equal (s_job_header (&job, "x-hub-signature-256"), "sha256=00ff");
        assert_string_equal (s_job_header (&job, "x-mixed-case"), "Value With Case");
        assert_string_equal (s_job_header (&job, "content-type"), "application/octet-stream");
        //  Every name lowercased; the four above in the order sent.
        size_t index;
        json_t *pair;
        int order [4] = { -1, -1, -1, -1 };
        const char *names [4] = { "content-type", "stripe-signature", "x-hub-signature-256", "x-mixed-case" };
        json_array_foreach (json_object_get (job.data, "headers"), index, pair) {
            const char *name = json_string_value (json_array_get (pair, 0));
            for (const char *c = name; *c; c++)
                assert_false (*c >= 'A' && *c <= 'Z');
            for (int i = 0; i < 4; i++)
                if (strcmp (name, names [i]) == 0)
                    order [i] = (int) index;
        }
        for (int i = 0; i < 4; i++)
            assert_true (order [i] >= 0 && (i == 0 || order [i] > order [i - 1]));
        json_decref (job.data);
        //  The body, byte for byte.
        char hex [2 * sizeof body + 1];
        sb_hex_encode ((const uint8_t *) body, len, hex);
        char *got = s_broker_text ("BODY");
        assert_string_equal (got, hex);
        zstr_free (&got);
    }
}

//  An empty body travels as an empty bin; a body at the limit is sent.
static void
test_empty_and_limit (void **state)
{
    s_answer_t answer;
    s_http (&answer, "POST", "/webhooks/we_empty_body", NULL, "", 0, false);
    assert_int_equal (answer.status, 202);
    s_clear (&answer);
    s_job_t job;
    s_last (&job);
    assert_true (job.has_body);
    assert_string_equal (json_string_value (json_object_get (job.data, "query")), "");
    json_decref (job.data);
    char *got = s_broker_text ("BODY");
    assert_string_equal (got, "");
    zstr_free (&got);

    char *big = malloc (WEBHOOK_MAX_BODY);
    memset (big, 'b', WEBHOOK_MAX_BODY);
    s_http (&answer, "POST", "/webhooks/we_at_the_limit", NULL, big, WEBHOOK_MAX_BODY, false);
    assert_int_equal (answer.status, 202);
    s_clear (&answer);
    got = s_broker_text ("BODY");
    assert_int_equal (strlen (got), 2 * WEBHOOK_MAX_BODY);
    zstr_free (&got);
    free (big);
}

//  Refused before any job: 404 for a path that is not one endpoint ID,
//  405 with Allow for another method, 413 past --webhook-max-body (on the
//  declared length, and over HTTP/2), 431 past the header bounds.
static void
test_refused_without_job (void **state)
{
    int jobs = s_broker_int ("JOBS");
    s_answer_t answer;
    const char *paths [] = {
        "/webhooks", "/webhooks/", "/webhooks/short", "/webhooks/has.dot.in.it",
        "/webhooks/we_ok_but/more", "/webhooks/we%5Fencoded_id",
        "/webhooks/x123456789012345678901234567890123456789012345678901234567890abcd"
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0]; i++) {
        s_http (&answer, "POST", paths [i], NULL, "{}", 2, false);
        if (answer.status != 404)
            fail_msg ("%s: %ld", paths [i], answer.status);
        s_expect_error (&answer, "not_found");
        s_clear (&answer);
    }
    const char *methods [] = { "GET", "PUT", "DELETE", "PATCH" };
    for (size_t i = 0; i < 4; i++) {
        s_http (&answer, methods [i], "/webhooks/we_some_endpoint", NULL,
                i == 1 || i == 3? "{}": NULL, i == 1 || i == 3? 2: 0, false);
        assert_int_equal (answer.status, 405);
        s_expect_header (&answer, "Allow", "POST");
        s_clear (&answer);
    }
    //  One byte past the limit: the gateway's 413, over HTTP/1.1 and HTTP/2.
    size_t big_len = WEBHOOK_MAX_BODY + 1;
    char *big = malloc (2u << 20);
    memset (big, 'a', 2u << 20);
    for (int http2 = 0; http2 < 2; http2++) {
        s_http (&answer, "POST", "/webhooks/we_too_large", NULL, big, big_len, http2);
        assert_int_equal (answer.status, 413);
        s_expect_error (&answer, "payload_too_large");
        s_clear (&answer);
    }
    //  Past h2o's own limit (the largest route's: /mcp's 1 MiB here): h2o
    //  answers 413 on the declared Content-Length before reading the body
    //  (HTTP/1.1: curl's Expect: 100-continue never gets its 100)…
    s_http (&answer, "POST", "/webhooks/we_too_large", NULL, big, 2u << 20, false);
    assert_int_equal (answer.status, 413);
    s_clear (&answer);
    //  …and over HTTP/2 h2o 2.2.5 refuses the stream (RST_STREAM) instead:
    //  never a 2xx, never a job.
    char url [256];
    snprintf (url, sizeof url, "%s/webhooks/we_too_large", gi_base);
    sb_harness_request_t request = { .method = "POST", .url = url, .body = big,
                                     .body_len = 2u << 20, .timeout_ms = WAIT_MS, .http2 = true };
    sb_harness_response_t response = { 0 };
    int rc = sb_harness_request (&request, &response);
    assert_true (rc != 0 || response.status == 413);
    sb_harness_response_clear (&response);
    free (big);
    //  More than SB_MAX_WEBHOOK_HEADERS headers.
    char lines [SB_MAX_WEBHOOK_HEADERS + 2][32];
    const char *many [SB_MAX_WEBHOOK_HEADERS + 2];
    for (unsigned i = 0; i < SB_MAX_WEBHOOK_HEADERS + 1; i++) {
        snprintf (lines [i], sizeof lines [i], "X-H%u: %u", i, i);
        many [i] = lines [i];
    }
    many [SB_MAX_WEBHOOK_HEADERS + 1] = NULL;
    s_http (&answer, "POST", "/webhooks/we_many_headers", many, "{}", 2, false);
    assert_int_equal (answer.status, 431);
    s_expect_error (&answer, "headers_too_large");
    s_clear (&answer);
    //  More than SB_MAX_WEBHOOK_HEADER_BYTES in all (each header below any
    //  of h2o's own bounds).
    char *long_lines [4];
    const char *heavy [5];
    for (int i = 0; i < 4; i++) {
        long_lines [i] = malloc (SB_MAX_WEBHOOK_HEADER_BYTES / 4 + 32);
        int n = snprintf (long_lines [i], 32, "X-Long%d: ", i);
        memset (long_lines [i] + n, 'v', SB_MAX_WEBHOOK_HEADER_BYTES / 4);
        long_lines [i][n + SB_MAX_WEBHOOK_HEADER_BYTES / 4] = 0;
        heavy [i] = long_lines [i];
    }
    heavy [4] = NULL;
    s_http (&answer, "POST", "/webhooks/we_heavy_headers", heavy, "{}", 2, false);
    assert_int_equal (answer.status, 431);
    s_clear (&answer);
    for (int i = 0; i < 4; i++)
        free (long_lines [i]);
    assert_int_equal (s_broker_int ("JOBS"), jobs);
}

//  The worker's answers and the failures: its response as it is (text/xml
//  for Salesforce), a header off the allow-list 502, RESULT failed 503
//  with its Retry-After, no worker 503, overloaded 503, the deadline 504.
static void
test_answers (void **state)
{
    s_answer_t answer;
    const char *xml [] = { "Content-Type: text/xml; charset=utf-8", "SOAPAction: \"\"", NULL };
    s_http (&answer, "POST", "/webhooks/epxml_salesforce", xml, "<soap/>", 7, false);
    assert_int_equal (answer.status, 200);
    s_expect_header (&answer, "Content-Type", "text/xml; charset=utf-8");
    assert_string_equal (answer.response.body, "<soapenv:Envelope><Ack>true</Ack></soapenv:Envelope>");
    s_clear (&answer);

    s_http (&answer, "POST", "/webhooks/epbad_endpoint", NULL, "{}", 2, false);
    assert_int_equal (answer.status, 502);
    s_clear (&answer);

    s_http (&answer, "POST", "/webhooks/epfail_endpoint", NULL, "{}", 2, false);
    assert_int_equal (answer.status, 503);
    s_expect_header (&answer, "Retry-After", "7");
    s_expect_error (&answer, "unavailable");
    s_clear (&answer);

    s_http (&answer, "POST", "/webhooks/epnone_endpoint", NULL, "{}", 2, false);
    assert_int_equal (answer.status, 503);
    s_expect_header (&answer, "Retry-After", "2");
    s_clear (&answer);

    s_http (&answer, "POST", "/webhooks/epbusy_endpoint", NULL, "{}", 2, false);
    assert_int_equal (answer.status, 503);
    s_clear (&answer);

    int64_t started = sb_harness_now_ms ();
    s_http (&answer, "POST", "/webhooks/ephold_endpoint", NULL, "{}", 2, false);
    assert_int_equal (answer.status, 504);
    s_expect_error (&answer, "timeout");
    s_clear (&answer);
    assert_true (sb_harness_now_ms () - started >= atoi (WEBHOOK_TIMEOUT));
}

//  resource_updated (a worker's PUBLISH, as the broker passes it on)
//  reaches the GET streams of the sessions of its tenant subscribed to
//  the URI, and no other tenant's. Each stream's next events are asserted
//  exactly, with a later broadcast of its own tenant as the marker that
//  nothing came in between.
static void
test_resource_updated (void **state)
{
    char *a = s_session (s_token);
    char *b = s_session (s_other);
    gi_http_t *stream_a = s_stream (s_token, a);
    gi_http_t *stream_b = s_stream (s_other, b);
    s_subscribe (s_token, a, "test://note/one");
    s_subscribe (s_token, a, "test://note/two");
    s_subscribe (s_other, b, "test://note/one");
    s_subscribe (s_other, b, "test://note/two");

    s_publish ("acme", "test://note/one");          //  a only
    s_publish ("globex", "test://note/two");        //  b only
    s_publish ("acme", "test://note/three");        //  nobody follows it
    s_publish ("acme", "test://note/two");          //  the marker for a
    s_publish ("globex", "test://note/one");        //  the marker for b
    gi_expect (stream_a, 2, "notifications/resources/updated test://note/one; "
                            "notifications/resources/updated test://note/two");
    gi_expect (stream_b, 2, "notifications/resources/updated test://note/two; "
                            "notifications/resources/updated test://note/one");

    gi_http_t *h = gi_start ("DELETE", s_token, a, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    h = gi_start ("DELETE", s_other, b, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    gi_finish (stream_a);
    gi_finish (stream_b);
    gi_free (stream_a);
    gi_free (stream_b);
    free (a);
    free (b);
}

//  A 2026-07-28 request `method` with `params` (JSON text, without _meta)
//  as `token`, Mcp-Name `name` (may be NULL); its reply (new reference).
static json_t *
s_modern (const char *token, const char *method, const char *name, const char *params)
{
    char *body = zsys_sprintf ("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"%s\",\"params\":{%s%s"
                               "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
                               "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
                               method, params, *params? ",": "");
    char method_header [64], name_header [128];
    snprintf (method_header, sizeof method_header, "Mcp-Method: %s", method);
    snprintf (name_header, sizeof name_header, "Mcp-Name: %s", name? name: "");
    const char *extra [] = { "MCP-Protocol-Version: 2026-07-28", method_header,
                             name? name_header: NULL, NULL };
    json_t *reply = gi_rpc (token, NULL, extra, body, NULL);
    free (body);
    assert_non_null (reply);
    return reply;
}

//  The event log of a connector as a resource: listed as a template,
//  subscribable (a connector of the set only), read through the webhook
//  service (events/read for the token's tenant) as one JSON text content,
//  under both revisions; a failed read is a JSON-RPC error.
static void
test_event_log (void **state)
{
    char *a = s_session (s_token);
    json_t *reply = gi_rpc (s_token, a, NULL, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
                            "\"resources/templates/list\"}", NULL);
    json_t *templates = json_object_get (json_object_get (reply, "result"), "resourceTemplates");
    bool listed = false;
    size_t index;
    json_t *item;
    json_array_foreach (templates, index, item)
        if (strcmp (json_string_value (json_object_get (item, "uriTemplate")),
                    "switchboard://events/{connector}") == 0) {
            listed = true;
            assert_string_equal (json_string_value (json_object_get (item, "mimeType")), "application/json");
        }
    assert_true (listed);
    assert_true (json_array_size (templates) >= 2);     //  the connector's own stays
    json_decref (reply);

    s_subscribe (s_token, a, EVENTS_URI);
    reply = gi_rpc (s_token, a, NULL, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/subscribe\","
                    "\"params\":{\"uri\":\"switchboard://events/nope\"}}", NULL);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (reply, "error"), "code")),
                      -32002);
    json_decref (reply);

    int jobs = s_broker_int ("JOBS");
    reply = gi_rpc (s_token, a, NULL, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/read\","
                    "\"params\":{\"uri\":\"" EVENTS_URI "\"}}", NULL);
    json_t *content = json_array_get (json_object_get (json_object_get (reply, "result"), "contents"), 0);
    assert_string_equal (json_string_value (json_object_get (content, "uri")), EVENTS_URI);
    assert_string_equal (json_string_value (json_object_get (content, "mimeType")), "application/json");
    assert_string_equal (json_string_value (json_object_get (content, "text")), EVENTS);
    json_decref (reply);
    assert_int_equal (s_broker_int ("JOBS"), jobs + 1);
    s_job_t job;
    s_last (&job);
    assert_string_equal (job.op, "events/read");
    assert_string_equal (job.tenant, "acme");
    assert_string_equal (job.service, "webhook");
    assert_int_equal (job.cost, 0);
    assert_false (job.has_body);
    assert_string_equal (json_string_value (json_object_get (job.data, "connector")), "notes");
    assert_int_equal (json_integer_value (json_object_get (job.data, "limit")), 20);
    json_decref (job.data);

    //  2026-07-28: the same, with its resultType.
    reply = s_modern (s_token, "resources/read", EVENTS_URI, "\"uri\":\"" EVENTS_URI "\"");
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    content = json_array_get (json_object_get (result, "contents"), 0);
    assert_string_equal (json_string_value (json_object_get (content, "text")), EVENTS);
    json_decref (reply);

    //  The service cannot answer (no worker for globex here): an error, not a result.
    reply = gi_rpc (s_other, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/read\","
                    "\"params\":{\"uri\":\"" EVENTS_URI "\"}}", NULL);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (reply, "error"), "code")),
                      -32603);
    assert_null (json_object_get (reply, "result"));
    json_decref (reply);
    //  A connector that is not in the set: not found, no job.
    jobs = s_broker_int ("JOBS");
    reply = gi_rpc (s_token, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"resources/read\","
                    "\"params\":{\"uri\":\"switchboard://events/nope\"}}", NULL);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (reply, "error"), "code")),
                      -32002);
    json_decref (reply);
    assert_int_equal (s_broker_int ("JOBS"), jobs);

    gi_http_t *h = gi_start ("DELETE", s_token, a, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    free (a);
}

//  The event log's news (resource_updated of switchboard://events/notes)
//  reaches the tenant's session subscribed to it and its 2026-07-28
//  listen stream following it; globex's never.
static void
test_event_log_news (void **state)
{
    char *a = s_session (s_token);
    char *b = s_session (s_other);
    gi_http_t *stream_a = s_stream (s_token, a);
    gi_http_t *stream_b = s_stream (s_other, b);
    s_subscribe (s_token, a, EVENTS_URI);
    s_subscribe (s_other, b, EVENTS_URI);
    s_subscribe (s_other, b, "test://note/one");
    const char *headers [] = {
        "MCP-Protocol-Version: 2026-07-28", "Mcp-Method: subscriptions/listen", NULL
    };
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":\"L\",\"method\":\"subscriptions/listen\","
                       "\"params\":{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                       "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}},"
                       "\"notifications\":{\"resourceSubscriptions\":[\"" EVENTS_URI "\"]}}}";
    gi_http_t *listen_a = gi_start ("POST", s_token, NULL, headers, body);
    gi_http_t *listen_b = gi_start ("POST", s_other, NULL, headers, body);
    gi_expect (listen_a, 1, "notifications/subscriptions/acknowledged#\"L\"");
    gi_expect (listen_b, 1, "notifications/subscriptions/acknowledged#\"L\"");
    assert_true (gi_has (listen_a, EVENTS_URI));    //  honoured, in the acknowledgement

    s_publish ("acme", EVENTS_URI);
    s_publish ("globex", "test://note/one");        //  the marker for b
    gi_expect (stream_a, 1, "notifications/resources/updated " EVENTS_URI);
    gi_expect (listen_a, 1, "notifications/resources/updated " EVENTS_URI "#\"L\"");
    gi_expect (stream_b, 1, "notifications/resources/updated test://note/one");
    s_publish ("globex", EVENTS_URI);
    gi_expect (stream_b, 1, "notifications/resources/updated " EVENTS_URI);
    gi_expect (listen_b, 1, "notifications/resources/updated " EVENTS_URI "#\"L\"");
    //  A malformed one (no URI) changes nothing: acme's next is its own.
    char *answer = s_broker_text ("SEND acme resource_updated ");
    zstr_free (&answer);
    s_publish ("acme", EVENTS_URI);
    gi_expect (listen_a, 1, "notifications/resources/updated " EVENTS_URI "#\"L\"");

    gi_http_t *streams [] = { listen_a, listen_b };
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock (&streams [i]->lock);
        streams [i]->leave = true;
        pthread_mutex_unlock (&streams [i]->lock);
        GI_WAIT_FOR (gi_done (streams [i]));
        pthread_join (streams [i]->thread, NULL);
        gi_free (streams [i]);
    }
    gi_http_t *h = gi_start ("DELETE", s_token, a, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    h = gi_start ("DELETE", s_other, b, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    gi_finish (stream_a);
    gi_finish (stream_b);
    gi_free (stream_a);
    gi_free (stream_b);
    free (a);
    free (b);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_relayed),
        cmocka_unit_test (test_empty_and_limit),
        cmocka_unit_test (test_refused_without_job),
        cmocka_unit_test (test_answers),
        cmocka_unit_test (test_resource_updated),
        cmocka_unit_test (test_event_log),
        cmocka_unit_test (test_event_log_news),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
