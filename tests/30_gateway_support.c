/*  tests/30_gateway_support.c — what the gateway's call tests share: the
    real sb-gateway started against a fake broker run in this process (a
    ROUTER in a zactor thread speaking the proto codec), bearer tokens for
    two tenants, and an HTTP client whose POSTs run in threads so a test
    can read a stream while the call is still going (see the header).
    Everything a test waits for is an event it can observe (counts from the
    fake broker, bytes on a stream), never a bare sleep. */
#include "30_gateway_support.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sb_crypto.h"
#include "sb_token.h"
#include "sb_job.h"
#include "sb_msg.h"
#include "sb_harness.h"

#define MAX_ANSWERS     32      /* ANSWERs the fake broker remembers */
#define MAX_WAITING     8       /* jobs waiting for an ANSWER */

pid_t tg_gateway = -1;
static zactor_t *s_broker;
char tg_base [64];
static char s_key_path [256];
static char s_session_key_path [272];    /* the session key, beside it */
static uint8_t s_key [32];
char *tg_token;               /* tenant "acme" */
char *tg_other;               /* tenant "globex" */

//  ---------------------------------------------------------------------------
//  The fake broker

typedef struct {
    zframe_t *routing;
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    char tenant [SB_MAX_TENANT_LEN + 1];
} s_job_t;

typedef struct {
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    char tenant [SB_MAX_TENANT_LEN + 1];
    uint32_t ask_id;
    char *text;
} s_answer_t;

static void
s_send (zsock_t *router, zframe_t *routing, sb_msg_t *msg)
{
    int rc = sb_msg_send (router, msg, routing);
    assert (rc == 0);
    (void) rc;
    sb_msg_reset (msg);
}

static void
s_send_reply (zsock_t *router, zframe_t *routing, const char *corr_id, const char *result)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = sb_job_result_encode (result);
    int rc = sb_msg_set_reply (&msg, corr_id, SB_STATUS_OK, &payload);
    assert (rc == 0);
    (void) rc;
    s_send (router, routing, &msg);
}

static void
s_send_notify (zsock_t *router, zframe_t *routing, const char *corr_id, const char *json)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = sb_job_result_encode (json);
    int rc = sb_msg_set_notify (&msg, corr_id, &payload);
    assert (rc == 0);
    (void) rc;
    s_send (router, routing, &msg);
}

static void
s_send_ask (zsock_t *router, zframe_t *routing, const char *corr_id, const char *json)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = sb_job_result_encode (json);
    int rc = sb_msg_set_ask (&msg, corr_id, 1, &payload);
    assert (rc == 0);
    (void) rc;
    s_send (router, routing, &msg);
}

//  REPLY `limited` for `reason` with the quota group the broker would
//  give (a budget's from the REQUEST's own fields), and its retry advice.
static void
s_send_limited (zsock_t *router, zframe_t *routing, const sb_msg_t *request, const char *reason)
{
    sb_msg_t msg = { 0 };
    zframe_t *none = NULL;
    int rc = sb_msg_set_reply (&msg, request->corr_id, SB_STATUS_LIMITED, &none);
    assert (rc == 0);
    (void) rc;
    sb_msg_quota_t *quota = &msg.quota;
    snprintf (quota->reason, sizeof quota->reason, "%s", reason);
    if (streq (reason, "rate")) {
        snprintf (quota->scope, sizeof quota->scope, "pro");
        quota->limit = 1200, quota->reset_s = 15, quota->window_s = 60;
        msg.retry_after_ms = 2500;
    }
    else
    if (streq (reason, "monthly")) {
        snprintf (quota->scope, sizeof quota->scope, "free");
        quota->limit = 1000, quota->reset_s = 3 * 86400, quota->window_s = 2592000;
        msg.retry_after_ms = 3600000;
    }
    else
    if (streq (reason, "in_flight")) {
        snprintf (quota->scope, sizeof quota->scope, "free");
        quota->limit = 4, quota->reset_s = 1;
        msg.retry_after_ms = 1000;
    }
    else {
        snprintf (quota->scope, sizeof quota->scope, "%.64s", request->conn);
        quota->limit = request->budget_limit, quota->reset_s = 3600;
        quota->window_s = request->budget_window_s;
        msg.retry_after_ms = 60000;
    }
    s_send (router, routing, &msg);
}

static void
s_on_request (zsock_t *router, zframe_t *routing, sb_msg_t *msg, s_job_t *waiting, s_job_t *held,
              char *meter, size_t meter_size)
{
    sb_job_t job = { 0 };
    int rc = msg->payload? sb_job_decode (zframe_data (msg->payload), zframe_size (msg->payload), &job): 0;
    assert (rc == 0);
    (void) rc;
    const char *args = job.args? job.args: "";
    snprintf (meter, meter_size, "%u %s %u %u %u", msg->cost, msg->conn [0]? msg->conn: "-",
              msg->budget_limit, msg->budget_window_s, job.round);
    const char *limited = strstr (args, "limited_");
    if (limited) {
        const char *reasons [] = { "rate", "monthly", "in_flight", "budget" };
        for (size_t i = 0; i < sizeof reasons / sizeof reasons [0]; i++)
            if (strncmp (limited + 8, reasons [i], strlen (reasons [i])) == 0)
                s_send_limited (router, routing, msg, reasons [i]);
    }
    else
    if (strstr (args, "policy")) {
        //  An admitted metered job's REPLY: its tenant's rate policy.
        sb_msg_t reply = { 0 };
        zframe_t *payload = sb_job_result_encode ("{\"content\":[{\"type\":\"text\",\"text\":\"metered\"}]}");
        rc = sb_msg_set_reply (&reply, msg->corr_id, SB_STATUS_OK, &payload);
        assert (rc == 0);
        snprintf (reply.quota.scope, sizeof reply.quota.scope, "pro");
        reply.quota.limit = 1200, reply.quota.remaining = 1187;
        reply.quota.reset_s = 1, reply.quota.window_s = 60;
        s_send (router, routing, &reply);
    }
    else
    if (strstr (args, "needinput") && job.round <= 1)
        //  A 2026-07-28 worker's question: the next round brings the answer.
        s_send_reply (router, routing, msg->corr_id, "{\"resultType\":\"input_required\","
                      "\"inputRequests\":{\"q\":{\"method\":\"elicitation/create\",\"params\":"
                      "{\"message\":\"Which?\",\"requestedSchema\":{\"type\":\"object\","
                      "\"properties\":{}}}}}}");
    else
    if (strstr (args, "whoami")) {
        //  Whose call the job says it is (the api worker asks for that
        //  user's connection with it)
        char text [400];
        snprintf (text, sizeof text, "{\"content\":[{\"type\":\"text\",\"text\":\"subject=%.256s\"}]}",
                  job.subject? job.subject: "(none)");
        s_send_reply (router, routing, msg->corr_id, text);
    }
    else
    if (strstr (args, "talk")) {
        for (int i = 1; i <= 3; i++) {
            char text [160];
            snprintf (text, sizeof text, "{\"method\":\"notifications/progress\",\"params\":"
                      "{\"progressToken\":\"worker-made-up\",\"progress\":%d,\"total\":3}}", i);
            s_send_notify (router, routing, msg->corr_id, text);
        }
        const char *levels [] = { "debug", "info", "error" };
        for (int i = 0; i < 3; i++) {
            char text [160];
            snprintf (text, sizeof text, "{\"method\":\"notifications/message\",\"params\":"
                      "{\"level\":\"%s\",\"logger\":\"crm\",\"data\":\"at %s\"}}", levels [i], levels [i]);
            s_send_notify (router, routing, msg->corr_id, text);
        }
        //  Not relayed: an unknown method, a malformed one.
        s_send_notify (router, routing, msg->corr_id, "{\"method\":\"notifications/other\"}");
        s_send_notify (router, routing, msg->corr_id, "[1,2]");
        s_send_reply (router, routing, msg->corr_id, "{\"content\":[{\"type\":\"text\",\"text\":\"talked\"}]}");
    }
    else
    if (strstr (args, "ask") || strstr (args, "sample")) {
        for (int i = 0; i < MAX_WAITING; i++)
            if (!waiting [i].routing) {
                waiting [i].routing = zframe_dup (routing);
                snprintf (waiting [i].corr_id, sizeof waiting [i].corr_id, "%s", msg->corr_id);
                snprintf (waiting [i].tenant, sizeof waiting [i].tenant, "%s", msg->tenant);
                break;
            }
        s_send_ask (router, routing, msg->corr_id, strstr (args, "ask")
            ? "{\"method\":\"elicitation/create\",\"params\":{\"message\":\"Which account?\","
              "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}}}"
            : "{\"method\":\"sampling/createMessage\",\"params\":{\"messages\":[],\"maxTokens\":5}}");
    }
    else
    if (strstr (args, "hold")) {
        zframe_destroy (&held->routing);
        held->routing = zframe_dup (routing);
        snprintf (held->corr_id, sizeof held->corr_id, "%s", msg->corr_id);
        s_send_notify (router, routing, msg->corr_id, "{\"method\":\"notifications/message\","
                       "\"params\":{\"level\":\"info\",\"data\":\"holding\"}}");
    }
    else
        s_send_reply (router, routing, msg->corr_id, "{\"content\":[{\"type\":\"text\",\"text\":\"plain\"}]}");
    sb_job_clear (&job);
}

static void
s_on_answer (zsock_t *router, sb_msg_t *msg, s_job_t *waiting, s_answer_t *answers, int *count)
{
    sb_job_result_t result = { 0 };
    int rc = msg->payload? sb_job_result_decode (zframe_data (msg->payload), zframe_size (msg->payload),
                                                 &result): 0;
    assert (rc == 0);
    (void) rc;
    if (*count < MAX_ANSWERS) {
        s_answer_t *a = &answers [(*count)++];
        snprintf (a->corr_id, sizeof a->corr_id, "%s", msg->corr_id);
        snprintf (a->tenant, sizeof a->tenant, "%s", msg->tenant);
        a->ask_id = msg->ask_id;
        a->text = strdup (result.result? result.result: "");
    }
    for (int i = 0; i < MAX_WAITING; i++)
        if (waiting [i].routing && streq (waiting [i].corr_id, msg->corr_id)
        &&  streq (waiting [i].tenant, msg->tenant)) {
            json_t *reply = json_pack ("{s:[{s:s, s:s}], s:{s:s}}", "content", "type", "text",
                                       "text", "answered", "structuredContent", "answer",
                                       result.result? result.result: "");
            char *text = json_dumps (reply, JSON_COMPACT);
            s_send_reply (router, waiting [i].routing, msg->corr_id, text);
            free (text);
            json_decref (reply);
            zframe_destroy (&waiting [i].routing);
        }
    sb_job_result_clear (&result);
}

static void
s_fake_broker (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "%d", port);
    s_job_t waiting [MAX_WAITING], held;
    s_answer_t answers [MAX_ANSWERS];
    memset (waiting, 0, sizeof waiting);
    memset (&held, 0, sizeof held);
    memset (answers, 0, sizeof answers);
    int received = 0, cancels = 0, count = 0;
    char meter [SB_MAX_CONN_LEN + 64] = "";
    char cancelled [SB_MAX_CORR_ID_LEN + 1] = "";
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        zsock_t *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                zstr_free (&command);
                break;
            }
            if (streq (command, "RECEIVED"))
                zstr_sendf (pipe, "%d", received);
            else
            if (streq (command, "METER"))
                zstr_send (pipe, meter);
            else
            if (streq (command, "CANCELS"))
                zstr_sendf (pipe, "%d %s %s", cancels, cancelled, held.corr_id);
            else
            if (streq (command, "ANSWERS"))
                zstr_sendf (pipe, "%d", count);
            else
            if (strncmp (command, "ANSWER ", 7) == 0) {
                int i = (int) strtol (command + 7, NULL, 10);
                if (i >= 0 && i < count)
                    zstr_sendf (pipe, "%s %u %s %s", answers [i].tenant, answers [i].ask_id,
                                answers [i].corr_id, answers [i].text);
                else
                    zstr_send (pipe, "");
            }
            else
            if (streq (command, "LATE")) {
                if (held.routing)
                    s_send_reply (router, held.routing, held.corr_id,
                                  "{\"content\":[{\"type\":\"text\",\"text\":\"late\"}]}");
                zframe_destroy (&held.routing);
                zstr_send (pipe, "ok");
            }
            zstr_free (&command);
        }
        else
        if (which == router) {
            sb_msg_t msg = { 0 };
            zframe_t *routing = NULL;
            if (sb_msg_recv (router, &msg, &routing) == SB_MSG_OK) {
                if (msg.command == SB_CMD_REQUEST && streq (msg.service, "token")) {
                    //  The gateway asks for the key set (oauth/jwks): no
                    //  token service here, and not a call the tests count.
                    sb_msg_t reply = { 0 };
                    zframe_t *none = NULL;
                    if (sb_msg_set_reply (&reply, msg.corr_id, SB_STATUS_UNAVAILABLE, &none) == 0)
                        s_send (router, routing, &reply);
                    sb_msg_reset (&reply);
                }
                else
                if (msg.command == SB_CMD_REQUEST) {
                    received++;
                    s_on_request (router, routing, &msg, waiting, &held, meter, sizeof meter);
                }
                else
                if (msg.command == SB_CMD_ANSWER)
                    s_on_answer (router, &msg, waiting, answers, &count);
                else
                if (msg.command == SB_CMD_CANCEL) {
                    cancels++;
                    snprintf (cancelled, sizeof cancelled, "%s", msg.corr_id);
                }
                else
                if (msg.command == SB_CMD_HEARTBEAT)
                    (void) !sb_msg_send (router, &msg, routing);  //  as the broker: "alive" (one lost is missed only after 3)
            }
            zframe_destroy (&routing);
            sb_msg_reset (&msg);
        }
    }
    for (int i = 0; i < MAX_WAITING; i++)
        zframe_destroy (&waiting [i].routing);
    zframe_destroy (&held.routing);
    for (int i = 0; i < count; i++)
        free (answers [i].text);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

//  Asks the fake broker `command`; returns its answer (caller frees).
char *
tg_broker_ask (const char *command)
{
    zstr_send (s_broker, command);
    return zstr_recv (s_broker);
}

int
tg_broker_int (const char *command)
{
    char *text = tg_broker_ask (command);
    int value = text? (int) strtol (text, NULL, 10): -1;
    zstr_free (&text);
    return value;
}

//  Waits until the broker's count `command` reaches `value`.
void
tg_wait_count (const char *command, int value)
{
    int64_t deadline = zclock_mono () + TG_WAIT_MS;
    while (tg_broker_int (command) < value && zclock_mono () < deadline)
        zclock_sleep (10);
    assert_int_equal (tg_broker_int (command), value);
}

//  ---------------------------------------------------------------------------
//  HTTP: plain requests, and a streamed POST read in a thread


//  Runs h's POST to its end (a thread): the harness's client writes the
//  response under h->lock as it comes, and leaves when h->hang_up is set.
static void *
s_perform (void *arg)
{
    tg_http_t *h = arg;
    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", tg_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", h->token);
    const char *headers [10] = { auth, "Content-Type: application/json",
                                 "Accept: application/json, text/event-stream" };
    for (int i = 0; h->extra [i]; i++)
        headers [3 + i] = h->extra [i];
    sb_harness_request_t request = { .method = "POST", .url = url, .headers = headers,
                                     .body = h->request, .body_len = strlen (h->request),
                                     .timeout_ms = TG_WAIT_MS, .http2 = h->http2,
                                     .lock = &h->lock, .hang_up = &h->hang_up };
    int rc = sb_harness_request (&request, &h->response);
    pthread_mutex_lock (&h->lock);
    h->status = h->response.status;
    sb_harness_header (&h->response, "Mcp-Session-Id", h->session_id, sizeof h->session_id);
    sb_harness_header (&h->response, "Content-Type", h->content_type, sizeof h->content_type);
    h->rc = rc;
    h->done = true;
    pthread_mutex_unlock (&h->lock);
    return NULL;
}

//  A request object for `body` (not started) with up to 5 extra headers
//  (NULL-terminated list, may be NULL).
static tg_http_t *
s_new (const char **headers, const char *token, const char *body)
{
    tg_http_t *h = calloc (1, sizeof *h);
    pthread_mutex_init (&h->lock, NULL);
    h->token = token;
    h->request = strdup (body);
    for (int n = 0; headers && headers [n] && n < 5; n++)
        h->extra [n] = strdup (headers [n]);
    return h;
}

//  Starts a POST of `body` (with the session, if any) in a thread.
tg_http_t *
tg_start (const char **headers, const char *token, const char *body)
{
    tg_http_t *h = s_new (headers, token, body);
    pthread_create (&h->thread, NULL, s_perform, h);
    return h;
}

tg_http_t *
tg_start_http2 (const char **headers, const char *token, const char *body)
{
    tg_http_t *h = s_new (headers, token, body);
    h->http2 = true;
    pthread_create (&h->thread, NULL, s_perform, h);
    return h;
}

//  Waits until the stream holds an event with `method`; returns it (new ref).
json_t *
tg_wait_method (tg_http_t *h, const char *method)
{
    int64_t deadline = zclock_mono () + TG_WAIT_MS;
    while (zclock_mono () < deadline) {
        json_t *events = tg_events (h), *found = NULL;
        size_t i;
        json_t *event;
        json_array_foreach (events, i, event)
            if (!found && json_is_string (json_object_get (event, "method"))
            &&  streq (json_string_value (json_object_get (event, "method")), method))
                found = json_incref (event);
        json_decref (events);
        if (found)
            return found;
        zclock_sleep (10);
    }
    fail_msg ("no %s on the stream", method);
    return NULL;
}

void
tg_hang_up (tg_http_t *h)
{
    pthread_mutex_lock (&h->lock);
    h->hang_up = true;
    pthread_mutex_unlock (&h->lock);
    tg_join (h);
}

void
tg_join (tg_http_t *h)
{
    pthread_join (h->thread, NULL);
}

void
tg_free (tg_http_t *h)
{
    for (int i = 0; h->extra [i]; i++)
        free (h->extra [i]);
    free (h->request);
    sb_harness_response_clear (&h->response);
    pthread_mutex_destroy (&h->lock);
    free (h);
}

//  A POST that runs to its end.
tg_http_t *
tg_post (const char **headers, const char *token, const char *body)
{
    tg_http_t *h = tg_start (headers, token, body);
    tg_join (h);
    assert_int_equal (h->rc, 0);
    return h;
}

//  The JSON data of the events on a stream body so far (new array).
json_t *
tg_events (tg_http_t *h)
{
    json_t *events = json_array ();
    pthread_mutex_lock (&h->lock);
    char *copy = strdup (h->response.body? h->response.body: "");
    pthread_mutex_unlock (&h->lock);
    //  Complete events only: up to the last blank line.
    char *end = strstr (copy, "\n\n");
    for (char *last = end; last; last = strstr (last + 2, "\n\n"))
        end = last;
    if (end)
        end [1] = 0;
    else
        copy [0] = 0;
    for (char *line = strtok (copy, "\n"); line; line = strtok (NULL, "\n"))
        if (strncmp (line, "data: ", 6) == 0 && line [6]) {
            json_t *data = json_loads (line + 6, 0, NULL);
            assert_non_null (data);
            json_array_append_new (events, data);
        }
    free (copy);
    return events;
}





//  ---------------------------------------------------------------------------
//  Fixture

static char *
s_issue (const char *tenant)
{
    sb_token_claims_t c;
    memset (&c, 0, sizeof c);
    snprintf (c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf (c.subject, sizeof c.subject, "tester");
    snprintf (c.scope, sizeof c.scope, "mcp:tools mcp:write");
    snprintf (c.audience, sizeof c.audience, "%s/mcp", tg_base);
    c.issued_at = time (NULL) - 10;
    c.expires_at = time (NULL) + 3600;
    return sb_token_issue (&c, s_key, sizeof s_key);
}

int
tg_fixture_start (const char *tag)
{
    return tg_fixture_start_with (tag, SB_TEST_CONNECTORS);
}

int
tg_fixture_start_with (const char *tag, const char *connectors)
{
    zsys_init ();
    zsys_handler_set (NULL);
    s_broker = zactor_new (s_fake_broker, NULL);
    char *port_text = zstr_recv (s_broker);
    int broker_port = port_text? (int) strtol (port_text, NULL, 10): -1;
    zstr_free (&port_text);
    if (broker_port <= 0 || sb_crypto_random (s_key, sizeof s_key))
        return -1;
    snprintf (s_key_path, sizeof s_key_path, "/tmp/sb-30-%s-key-%d", tag, (int) getpid ());
    FILE *file = fopen (s_key_path, "w");
    char hex [65];
    sb_hex_encode (s_key, sizeof s_key, hex);
    fprintf (file, "%s\n", hex);
    fclose (file);
    snprintf (s_session_key_path, sizeof s_session_key_path, "%s.session", s_key_path);
    if (sb_harness_write_key (s_session_key_path))
        return -1;
    int port = sb_harness_free_port ();
    char listen [64], broker [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%d", broker_port);
    snprintf (tg_base, sizeof tg_base, "http://127.0.0.1:%d", port);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", broker,
        "--token-key-file", s_key_path, "--session-key-file", s_session_key_path,
        "--connectors", connectors, "--public-url", tg_base, "--call-timeout-ms", "20000", "--log-level", "info", NULL
    };
    tg_gateway = sb_harness_spawn (argv, NULL);
    char health [128];
    snprintf (health, sizeof health, "%s/healthz", tg_base);
    if (tg_gateway < 0 || sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS))
        return -1;
    tg_token = s_issue ("acme");
    tg_other = s_issue ("globex");
    return tg_token && tg_other? 0: -1;
}

int
tg_fixture_stop (void)
{
    int rc = 0;
    if (tg_gateway > 0) {
        int status = sb_harness_stop (tg_gateway);
        if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
            fprintf (stderr, "sb-gateway did not exit cleanly: status %d\n", status);
            rc = -1;
        }
    }
    zactor_destroy (&s_broker);
    free (tg_token);
    free (tg_other);
    unlink (s_key_path);
    unlink (s_session_key_path);
    return rc;
}
