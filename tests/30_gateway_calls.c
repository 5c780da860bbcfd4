/*  tests/30_gateway_calls.c — calls that talk while they run, through the
    real sb-gateway binary and a fake broker run in this test (a ROUTER in a
    zactor thread speaking the proto codec): NOTIFY (progress, log messages
    filtered by logging/setLevel), ASK relayed to the client as an "sb:" id
    request and its ANSWER, ASKs refused for clients without the capability,
    notifications/cancelled → CANCEL, malformed "sb:" ids.

    The fake broker acts on the tool arguments' text:
      "talk"    NOTIFY progress 1..3, NOTIFY messages debug, info and error,
                then REPLY ok
      "ask"     ASK elicitation/create (ask 1); on the ANSWER of the job's
                tenant, REPLY ok with the answer in structuredContent
      "sample"  the same with sampling/createMessage
      "hold"    NOTIFY an info message, then nothing until told "LATE"
                (then a late REPLY ok)
      else      REPLY ok at once
    Everything the test waits for is an event it can observe (counts from
    the fake broker, bytes on a stream), never a bare sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/sb_crypto.h"
#include "common/sb_token.h"
#include "proto/sb_job.h"
#include "proto/sb_msg.h"
#include "tests/sb_harness.h"

#define WAIT_MS         10000   /* longest wait for any event */
#define MAX_ANSWERS     32      /* ANSWERs the fake broker remembers */
#define MAX_WAITING     8       /* jobs waiting for an ANSWER */

static pid_t s_gateway = -1;
static zactor_t *s_broker;
static char s_base [64];
static char s_key_path [256];
static uint8_t s_key [32];
static char *s_token;               /* tenant "acme" */
static char *s_other;               /* tenant "globex" */

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
    sb_msg_set_reply (&msg, corr_id, SB_STATUS_OK, &payload);
    s_send (router, routing, &msg);
}

static void
s_send_notify (zsock_t *router, zframe_t *routing, const char *corr_id, const char *json)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = sb_job_result_encode (json);
    sb_msg_set_notify (&msg, corr_id, &payload);
    s_send (router, routing, &msg);
}

static void
s_send_ask (zsock_t *router, zframe_t *routing, const char *corr_id, const char *json)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = sb_job_result_encode (json);
    sb_msg_set_ask (&msg, corr_id, 1, &payload);
    s_send (router, routing, &msg);
}

static void
s_on_request (zsock_t *router, zframe_t *routing, sb_msg_t *msg, s_job_t *waiting, s_job_t *held)
{
    sb_job_t job = { 0 };
    if (msg->payload)
        sb_job_decode (zframe_data (msg->payload), zframe_size (msg->payload), &job);
    const char *args = job.args? job.args: "";
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
    if (msg->payload)
        sb_job_result_decode (zframe_data (msg->payload), zframe_size (msg->payload), &result);
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
                if (msg.command == SB_CMD_REQUEST) {
                    received++;
                    s_on_request (router, routing, &msg, waiting, &held);
                }
                else
                if (msg.command == SB_CMD_ANSWER)
                    s_on_answer (router, &msg, waiting, answers, &count);
                else
                if (msg.command == SB_CMD_CANCEL) {
                    cancels++;
                    snprintf (cancelled, sizeof cancelled, "%s", msg.corr_id);
                }
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
static char *
s_broker_ask (const char *command)
{
    zstr_send (s_broker, command);
    return zstr_recv (s_broker);
}

static int
s_broker_int (const char *command)
{
    char *text = s_broker_ask (command);
    int value = text? (int) strtol (text, NULL, 10): -1;
    zstr_free (&text);
    return value;
}

//  Waits until the broker's count `command` reaches `value`.
static void
s_wait_count (const char *command, int value)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (s_broker_int (command) < value && zclock_mono () < deadline)
        zclock_sleep (10);
    assert_int_equal (s_broker_int (command), value);
}

//  ---------------------------------------------------------------------------
//  HTTP: plain requests, and a streamed POST read in a thread

typedef struct {
    pthread_mutex_t lock;
    char *body;
    size_t len;
    long status;
    char session_id [512];
    char content_type [128];
    bool done;
    int rc;
    //  request
    char *extra [6];
    const char *token;
    char *request;
    bool http2;
    pthread_t thread;
} s_http_t;

static size_t
s_on_body (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_http_t *h = userdata;
    size_t n = size * nmemb;
    pthread_mutex_lock (&h->lock);
    char *grown = realloc (h->body, h->len + n + 1);
    if (grown) {
        memcpy (grown + h->len, ptr, n);
        h->body = grown;
        h->len += n;
        h->body [h->len] = 0;
    }
    pthread_mutex_unlock (&h->lock);
    return grown? n: 0;
}

static void
s_header_value (const char *line, size_t n, const char *name, char *out, size_t size)
{
    size_t len = strlen (name);
    if (n <= len || strncasecmp (line, name, len) != 0)
        return;
    line += len, n -= len;
    while (n && *line == ' ')
        line++, n--;
    while (n && (line [n - 1] == '\r' || line [n - 1] == '\n'))
        n--;
    snprintf (out, size, "%.*s", (int) n, line);
}

static size_t
s_on_header (char *line, size_t size, size_t nmemb, void *userdata)
{
    s_http_t *h = userdata;
    size_t n = size * nmemb;
    s_header_value (line, n, "mcp-session-id:", h->session_id, sizeof h->session_id);
    s_header_value (line, n, "content-type:", h->content_type, sizeof h->content_type);
    return n;
}

//  An easy handle for h's POST (headers kept in *headers, caller frees).
static CURL *
s_easy (s_http_t *h, struct curl_slist **headers)
{
    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", s_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", h->token);
    *headers = curl_slist_append (NULL, "Expect:");
    *headers = curl_slist_append (*headers, auth);
    *headers = curl_slist_append (*headers, "Content-Type: application/json");
    *headers = curl_slist_append (*headers, "Accept: application/json, text/event-stream");
    for (int i = 0; h->extra [i]; i++)
        *headers = curl_slist_append (*headers, h->extra [i]);
    CURL *curl = curl_easy_init ();
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, h->request);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, h);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, h);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) WAIT_MS);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    if (h->http2) {
        curl_easy_setopt (curl, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        curl_easy_setopt (curl, CURLOPT_PIPEWAIT, 1L);
    }
    return curl;
}

static void *
s_perform (void *arg)
{
    s_http_t *h = arg;
    struct curl_slist *headers = NULL;
    CURL *curl = s_easy (h, &headers);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
    pthread_mutex_lock (&h->lock);
    h->status = status;
    h->rc = (int) rc;
    h->done = true;
    pthread_mutex_unlock (&h->lock);
    return NULL;
}

//  A request object for `body` (not started).
static s_http_t *
s_new (const char *session, const char *token, const char *body)
{
    s_http_t *h = calloc (1, sizeof *h);
    pthread_mutex_init (&h->lock, NULL);
    h->token = token;
    h->request = strdup (body);
    int n = 0;
    if (session) {
        size_t size = strlen (session) + 32;
        h->extra [n] = malloc (size);
        snprintf (h->extra [n++], size, "Mcp-Session-Id: %s", session);
        h->extra [n++] = strdup ("MCP-Protocol-Version: 2025-11-25");
    }
    return h;
}

//  Starts a POST of `body` (with the session, if any) in a thread.
static s_http_t *
s_start (const char *session, const char *token, const char *body)
{
    s_http_t *h = s_new (session, token, body);
    pthread_create (&h->thread, NULL, s_perform, h);
    return h;
}

static void
s_join (s_http_t *h)
{
    pthread_join (h->thread, NULL);
}

static void
s_free (s_http_t *h)
{
    for (int i = 0; h->extra [i]; i++)
        free (h->extra [i]);
    free (h->request);
    free (h->body);
    pthread_mutex_destroy (&h->lock);
    free (h);
}

//  A POST that runs to its end.
static s_http_t *
s_post (const char *session, const char *token, const char *body)
{
    s_http_t *h = s_start (session, token, body);
    s_join (h);
    assert_int_equal (h->rc, 0);
    return h;
}

//  The JSON data of the events on a stream body so far (new array).
static json_t *
s_events (s_http_t *h)
{
    json_t *events = json_array ();
    pthread_mutex_lock (&h->lock);
    char *copy = strdup (h->body? h->body: "");
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

//  The first event id on a stream body (the priming event's), new string.
static char *
s_first_id (s_http_t *h)
{
    pthread_mutex_lock (&h->lock);
    const char *id = h->body? strstr (h->body, "id: "): NULL;
    char *copy = id? strndup (id + 4, strcspn (id + 4, "\n")): NULL;
    pthread_mutex_unlock (&h->lock);
    return copy;
}

//  Waits until the stream holds an event with `method`; returns it (new ref).
static json_t *
s_wait_method (s_http_t *h, const char *method)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (zclock_mono () < deadline) {
        json_t *events = s_events (h), *found = NULL;
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

//  A new session with client capabilities `caps` (JSON object text).
static char *
s_session (const char *caps)
{
    char body [512];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
              "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":%s,\"clientInfo\":{\"name\":\"t\","
              "\"version\":\"1\"}}}", caps);
    s_http_t *h = s_post (NULL, s_token, body);
    assert_int_equal (h->status, 200);
    assert_true (strlen (h->session_id) > 10);
    char *id = strdup (h->session_id);
    s_free (h);
    return id;
}

static void
s_expect_status (const char *session, const char *token, const char *body, long status)
{
    s_http_t *h = s_post (session, token, body);
    if (h->status != status)
        fail_msg ("status %ld, expected %ld for %s: %s", h->status, status, body, h->body? h->body: "");
    s_free (h);
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
    snprintf (c.audience, sizeof c.audience, "%s/mcp", s_base);
    c.issued_at = time (NULL) - 10;
    c.expires_at = time (NULL) + 3600;
    return sb_token_issue (&c, s_key, sizeof s_key);
}

static int
s_setup (void **state)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    zsys_init ();
    zsys_handler_set (NULL);
    s_broker = zactor_new (s_fake_broker, NULL);
    char *port_text = zstr_recv (s_broker);
    int broker_port = port_text? (int) strtol (port_text, NULL, 10): -1;
    zstr_free (&port_text);
    if (broker_port <= 0 || sb_crypto_random (s_key, sizeof s_key))
        return -1;
    snprintf (s_key_path, sizeof s_key_path, "/tmp/sb-30-calls-key-%d", (int) getpid ());
    FILE *file = fopen (s_key_path, "w");
    char hex [65];
    sb_hex_encode (s_key, sizeof s_key, hex);
    fprintf (file, "%s\n", hex);
    fclose (file);
    int port = sb_harness_free_port ();
    char listen [64], broker [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%d", broker_port);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", broker,
        "--token-key-file", s_key_path, "--connectors", SB_SOURCE_DIR "/connectors",
        "--public-url", s_base, "--call-timeout-ms", "20000", "--log-level", "info", NULL
    };
    s_gateway = sb_harness_spawn (argv, NULL);
    char health [128];
    snprintf (health, sizeof health, "%s/healthz", s_base);
    if (s_gateway < 0 || sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS))
        return -1;
    s_token = s_issue ("acme");
    s_other = s_issue ("globex");
    return s_token && s_other? 0: -1;
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
    zactor_destroy (&s_broker);
    free (s_token);
    free (s_other);
    unlink (s_key_path);
    curl_global_cleanup ();
    return rc;
}

#define CALL(id, query, meta) \
    "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"method\":\"tools/call\",\"params\":{\"name\":" \
    "\"search_accounts\",\"arguments\":{\"query\":\"" query "\"}" meta "}}"

//  ---------------------------------------------------------------------------
//  Tests

//  Progress notifications carry the client's token and come before the
//  result; without setLevel every log message is sent.
static void
test_progress_and_logs (void **state)
{
    char *session = s_session ("{}");
    s_http_t *h = s_post (session, s_token, CALL ("\"p-1\"", "talk", ",\"_meta\":{\"progressToken\":\"tok-1\"}"));
    assert_int_equal (h->status, 200);
    assert_string_equal (h->content_type, "text/event-stream");
    json_t *events = s_events (h);
    assert_int_equal (json_array_size (events), 7);
    for (size_t i = 0; i < 3; i++) {
        json_t *event = json_array_get (events, i);
        assert_string_equal (json_string_value (json_object_get (event, "method")), "notifications/progress");
        assert_string_equal (json_string_value (json_object_get (event, "jsonrpc")), "2.0");
        json_t *params = json_object_get (event, "params");
        assert_string_equal (json_string_value (json_object_get (params, "progressToken")), "tok-1");
        assert_int_equal (json_integer_value (json_object_get (params, "progress")), (int) i + 1);
    }
    const char *levels [] = { "debug", "info", "error" };
    for (size_t i = 0; i < 3; i++) {
        json_t *event = json_array_get (events, 3 + i);
        assert_string_equal (json_string_value (json_object_get (event, "method")), "notifications/message");
        assert_string_equal (json_string_value (json_object_get (json_object_get (event, "params"), "level")),
                             levels [i]);
    }
    json_t *reply = json_array_get (events, 6);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "p-1");
    assert_non_null (json_object_get (reply, "result"));
    json_decref (events);
    s_free (h);

    //  An integer token is kept as an integer; a call without one gets no progress.
    h = s_post (session, s_token, CALL ("2", "talk", ",\"_meta\":{\"progressToken\":42}"));
    events = s_events (h);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (
        json_array_get (events, 0), "params"), "progressToken")), 42);
    json_decref (events);
    s_free (h);
    h = s_post (session, s_token, CALL ("3", "talk", ""));
    events = s_events (h);
    assert_int_equal (json_array_size (events), 4);
    assert_string_equal (json_string_value (json_object_get (json_array_get (events, 0), "method")),
                         "notifications/message");
    json_decref (events);
    s_free (h);
    free (session);
}

//  logging/setLevel filters the session's log messages, and only its.
static void
test_log_level (void **state)
{
    char *session = s_session ("{}");
    char *other = s_session ("{}");
    s_expect_status (session, s_token, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\","
                     "\"params\":{\"level\":\"warning\"}}", 200);
    s_http_t *h = s_post (session, s_token, CALL ("4", "talk", ""));
    json_t *events = s_events (h);
    assert_int_equal (json_array_size (events), 2);
    json_t *message = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (json_object_get (message, "params"), "level")),
                         "error");
    assert_non_null (json_object_get (json_array_get (events, 1), "result"));
    json_decref (events);
    s_free (h);

    h = s_post (other, s_token, CALL ("5", "talk", ""));
    events = s_events (h);
    assert_int_equal (json_array_size (events), 4);
    json_decref (events);
    s_free (h);

    //  A stateless JSON-mode call drops notifications: one JSON response.
    h = s_post (NULL, s_token, CALL ("6", "talk", ""));
    assert_string_equal (h->content_type, "application/json");
    json_t *reply = json_loads (h->body, 0, NULL);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 6);
    json_decref (reply);
    s_free (h);
    free (session);
    free (other);
}

//  An ASK reaches the client as a request with an "sb:" id; the client's
//  response becomes an ANSWER with the token's tenant.
static void
test_ask_and_answer (void **state)
{
    char *session = s_session ("{\"elicitation\":{}}");
    int answers = s_broker_int ("ANSWERS");
    s_http_t *h = s_start (session, s_token, CALL ("\"e-1\"", "ask", ""));
    json_t *ask = s_wait_method (h, "elicitation/create");
    const char *id = json_string_value (json_object_get (ask, "id"));
    assert_non_null (id);
    assert_true (strncmp (id, "sb:", 3) == 0);
    assert_true (strlen (id) > 6 && streq (id + strlen (id) - 2, ":1"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (ask, "params"), "message")),
                         "Which account?");

    //  Another tenant's token with the same id: routed with *its* tenant, so
    //  the broker (here: the fake one) does not deliver it to the job.
    char body [512];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"result\":{\"action\":\"decline\"}}", id);
    s_expect_status (NULL, s_other, body, 202);
    s_wait_count ("ANSWERS", answers + 1);
    char command [32];
    snprintf (command, sizeof command, "ANSWER %d", answers);
    char *seen = s_broker_ask (command);
    assert_true (strncmp (seen, "globex 1 ", 9) == 0);
    zstr_free (&seen);

    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"result\":{\"action\":\"accept\","
              "\"content\":{\"name\":\"Acme\"}},\"tenant\":\"globex\"}", id);
    s_expect_status (session, s_token, body, 202);
    s_join (h);
    assert_int_equal (h->rc, 0);
    snprintf (command, sizeof command, "ANSWER %d", answers + 1);
    seen = s_broker_ask (command);
    char expected [160];
    snprintf (expected, sizeof expected, "acme 1 %.*s {\"result\":{\"action\":\"accept\",\"content\":"
              "{\"name\":\"Acme\"}}}", (int) strlen (id + 3) - 2, id + 3);
    assert_string_equal (seen, expected);
    zstr_free (&seen);
    json_t *events = s_events (h);
    json_t *reply = json_array_get (events, json_array_size (events) - 1);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "e-1");
    json_t *structured = json_object_get (json_object_get (reply, "result"), "structuredContent");
    assert_string_equal (json_string_value (json_object_get (structured, "answer")),
                         "{\"result\":{\"action\":\"accept\",\"content\":{\"name\":\"Acme\"}}}");
    json_decref (events);
    json_decref (ask);
    s_free (h);
    free (session);
}

//  A client without the capability: the ASK is answered at once with an
//  error, never sent to the client.
static void
test_ask_refused (void **state)
{
    char *session = s_session ("{\"elicitation\":{}}");
    s_http_t *h = s_post (session, s_token, CALL ("7", "sample", ""));
    json_t *events = s_events (h);
    assert_int_equal (json_array_size (events), 1);
    json_t *structured = json_object_get (json_object_get (json_array_get (events, 0), "result"),
                                          "structuredContent");
    json_t *answer = json_loads (json_string_value (json_object_get (structured, "answer")), 0, NULL);
    json_t *error = json_object_get (answer, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32601);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")),
                             "cannot answer sampling/createMessage"));
    json_decref (answer);
    json_decref (events);
    s_free (h);

    //  Stateless (no capabilities known), JSON mode: refused the same way.
    h = s_post (NULL, s_token, CALL ("8", "ask", ""));
    assert_string_equal (h->content_type, "application/json");
    assert_non_null (strstr (h->body, "cannot answer elicitation/create"));
    s_free (h);
    free (session);
}

//  Responses whose id is not one of ours are refused, and reach no broker.
static void
test_bad_answer_ids (void **state)
{
    char *session = s_session ("{}");
    int answers = s_broker_int ("ANSWERS");
    const char *ids [] = {
        "\"sb:\"", "\"sb::1\"", "\"sb:abc:0\"", "\"sb:abc:01\"", "\"sb:abc:-1\"", "\"sb:abc:\"",
        "\"sb:abc:4294967296\"", "\"sb:a b:1\"", "\"sb:abc:1x\"", "\"sb:abc:1:2\"", "\"SB:abc:1\"",
        "\"sb:abc\"", "\"other\"", "5",
        "\"sb:0123456789012345678901234567890123456789012345678901234567890123456789:1\"", NULL
    };
    for (int i = 0; ids [i]; i++) {
        char body [256];
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}", ids [i]);
        s_expect_status (session, s_token, body, 400);
    }
    //  The largest ask id is well formed.
    s_expect_status (session, s_token,
                     "{\"jsonrpc\":\"2.0\",\"id\":\"sb:abc:4294967295\",\"error\":{\"code\":-1,\"message\":\"no\"}}",
                     202);
    s_wait_count ("ANSWERS", answers + 1);
    char command [32];
    snprintf (command, sizeof command, "ANSWER %d", answers);
    char *seen = s_broker_ask (command);
    assert_string_equal (seen, "acme 4294967295 abc {\"error\":{\"code\":-1,\"message\":\"no\"}}");
    zstr_free (&seen);
    free (session);
}

//  notifications/cancelled: CANCEL to the broker, the stream ends without a
//  response, a late REPLY is dropped.
static void
test_cancel (void **state)
{
    char *session = s_session ("{}");
    int received = s_broker_int ("RECEIVED");
    s_http_t *h = s_start (session, s_token, CALL ("\"c-1\"", "hold", ""));
    s_wait_count ("RECEIVED", received + 1);
    json_decref (s_wait_method (h, "notifications/message"));

    //  Unknown ids, another session, malformed: ignored (202), nothing cancelled.
    char *stranger = s_session ("{}");
    s_expect_status (stranger, s_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-1\"}}", 202);
    s_expect_status (session, s_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-2\"}}", 202);
    s_expect_status (session, s_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":{}}}", 202);
    s_expect_status (NULL, s_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-1\"}}", 202);
    free (stranger);
    int cancels = s_broker_int ("CANCELS");

    s_expect_status (session, s_token, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                     "\"params\":{\"requestId\":\"c-1\",\"reason\":\"changed my mind\"}}", 202);
    s_join (h);
    assert_int_equal (h->rc, 0);
    assert_int_equal (h->status, 200);
    json_t *events = s_events (h);
    assert_int_equal (json_array_size (events), 1);         //  the message, no response
    json_decref (events);
    s_wait_count ("CANCELS", cancels + 1);
    char *after = s_broker_ask ("CANCELS");
    char corr [2][80];
    assert_int_equal (sscanf (after, "%*d %79s %79s", corr [0], corr [1]), 2);
    assert_string_equal (corr [0], corr [1]);               //  CANCEL names the held job
    zstr_free (&after);

    //  The late REPLY: dropped. A call after it proves the gateway has read
    //  it (one socket, in order); the cancelled stream then replays its
    //  message and nothing else.
    char *ok = s_broker_ask ("LATE");
    zstr_free (&ok);
    s_http_t *next = s_post (session, s_token, CALL ("9", "plain", ""));
    assert_non_null (strstr (next->body, "plain"));
    s_free (next);
    char *first = s_first_id (h);
    assert_non_null (first);
    char last [160], with [600];
    snprintf (last, sizeof last, "Last-Event-ID: %s", first);
    snprintf (with, sizeof with, "Mcp-Session-Id: %s", session);
    const char *headers [] = { last, with, "Accept: text/event-stream", NULL };
    char url [128];
    snprintf (url, sizeof url, "%s/mcp", s_base);
    size_t auth_size = strlen (s_token) + 32;
    char *auth = malloc (auth_size);
    snprintf (auth, auth_size, "Authorization: Bearer %s", s_token);
    const char *all [] = { headers [0], headers [1], headers [2], auth, NULL };
    char *body = NULL;
    long status = 0;
    assert_int_equal (sb_harness_http ("GET", url, all, NULL, 0, WAIT_MS, &status, &body), 0);
    assert_int_equal (status, 200);
    assert_non_null (strstr (body? body: "", "holding"));
    assert_null (strstr (body? body: "", "late"));
    free (body);
    free (auth);
    free (first);
    s_free (h);
    free (session);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_progress_and_logs),
        cmocka_unit_test (test_log_level),
        cmocka_unit_test (test_ask_and_answer),
        cmocka_unit_test (test_ask_refused),
        cmocka_unit_test (test_bad_answer_ids),
        cmocka_unit_test (test_cancel),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
