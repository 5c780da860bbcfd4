/*  tests/30_gateway_modern.c — MCP revision 2026-07-28 through the real
    sb-gateway binary and a fake broker run in this test (a ROUTER in a
    zactor thread speaking the proto codec): stateless requests with version
    and capabilities in _meta, server/discover, the Mcp-Method / Mcp-Name
    headers checked against the body (-32020), resultType and the cache
    fields on results, log messages only at the request's _meta logLevel,
    removed methods (404), GET/DELETE (405), an unsupported version (-32022),
    and a worker's ASK answered with an error (input-required results are
    not relayed yet). Every malformed variant gets its status and code, and
    no job reaches the broker for it.

    The fake broker is the one of 30_gateway_calls.c; it acts on the tool
    arguments' text:
      "talk"    NOTIFY progress 1..3, NOTIFY messages debug, info and error,
                then REPLY ok
      "ask"     ASK elicitation/create (ask 1); on the ANSWER, REPLY ok with
                the answer in structuredContent
      else      REPLY ok at once
    Everything the test waits for is an event it can observe, never a bare
    sleep. */
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

//  A request object for `body` (not started) with up to 5 extra headers
//  (NULL-terminated list, may be NULL).
static s_http_t *
s_new (const char **headers, const char *token, const char *body)
{
    s_http_t *h = calloc (1, sizeof *h);
    pthread_mutex_init (&h->lock, NULL);
    h->token = token;
    h->request = strdup (body);
    for (int n = 0; headers && headers [n] && n < 5; n++)
        h->extra [n] = strdup (headers [n]);
    return h;
}

//  Starts a POST of `body` (with the session, if any) in a thread.
static s_http_t *
s_start (const char **headers, const char *token, const char *body)
{
    s_http_t *h = s_new (headers, token, body);
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
s_post (const char **headers, const char *token, const char *body)
{
    s_http_t *h = s_start (headers, token, body);
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
    snprintf (s_key_path, sizeof s_key_path, "/tmp/sb-30-modern-key-%d", (int) getpid ());
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

#define META(caps, extra) \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"," \
    "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"t\",\"version\":\"1\"}," \
    "\"io.modelcontextprotocol/clientCapabilities\":" caps extra "}"
#define REQ(id, method, params) \
    "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"method\":\"" method "\",\"params\":{" params "}}"
#define CALL(id, query, meta) \
    REQ (id, "tools/call", "\"name\":\"search_accounts\",\"arguments\":{\"query\":\"" query "\"}," meta)

#define H_VERSION   "MCP-Protocol-Version: 2026-07-28"
#define H_CALL      "Mcp-Method: tools/call"
#define H_TOOL      "Mcp-Name: search_accounts"

//  POSTs `body` with `headers`; asserts `status` and, for JSON, returns the
//  parsed body (new reference; NULL for other types).
static json_t *
s_expect (const char **headers, const char *body, long status)
{
    s_http_t *h = s_post (headers, s_token, body);
    if (h->status != status)
        fail_msg ("status %ld, expected %ld for %s: %s", h->status, status, body, h->body? h->body: "");
    json_t *json = strcmp (h->content_type, "application/json") == 0 && h->body
                 ? json_loads (h->body, 0, NULL): NULL;
    s_free (h);
    return json;
}

static int
s_code (json_t *reply)
{
    return (int) json_integer_value (json_object_get (json_object_get (reply, "error"), "code"));
}

//  Asserts `reply` is an error `code` whose message contains `text`.
static void
s_assert_error (json_t *reply, int code, const char *text)
{
    assert_non_null (reply);
    assert_int_equal (s_code (reply), code);
    const char *message = json_string_value (json_object_get (json_object_get (reply, "error"), "message"));
    assert_non_null (message);
    if (text && !strstr (message, text))
        fail_msg ("message \"%s\" lacks \"%s\"", message, text);
    json_decref (reply);
}

//  Asserts a modern result: resultType complete, serverInfo; cache fields
//  iff `cacheable`. Returns the result (borrowed from reply).
static json_t *
s_assert_modern (json_t *reply, bool cacheable)
{
    json_t *result = json_object_get (reply, "result");
    assert_non_null (result);
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    json_t *info = json_object_get (json_object_get (result, "_meta"), "io.modelcontextprotocol/serverInfo");
    assert_string_equal (json_string_value (json_object_get (info, "name")), "switchboard");
    assert_true (json_is_string (json_object_get (info, "version")));
    if (cacheable) {
        assert_true (json_is_integer (json_object_get (result, "ttlMs")));
        assert_string_equal (json_string_value (json_object_get (result, "cacheScope")), "private");
    }
    else {
        assert_null (json_object_get (result, "ttlMs"));
        assert_null (json_object_get (result, "cacheScope"));
    }
    return result;
}

//  ---------------------------------------------------------------------------
//  Tests

//  server/discover: versions, capabilities, no session minted. Older
//  revisions do not know the method.
static void
test_discover (void **state)
{
    const char *headers [] = { H_VERSION, "Mcp-Method: server/discover", NULL };
    s_http_t *h = s_post (headers, s_token, REQ ("1", "server/discover", META ("{}", "")));
    assert_int_equal (h->status, 200);
    assert_string_equal (h->session_id, "");
    json_t *reply = json_loads (h->body, 0, NULL);
    json_t *result = s_assert_modern (reply, true);
    json_t *versions = json_object_get (result, "supportedVersions");
    assert_int_equal (json_array_size (versions), 4);
    assert_string_equal (json_string_value (json_array_get (versions, 0)), "2026-07-28");
    assert_string_equal (json_string_value (json_array_get (versions, 1)), "2025-11-25");
    assert_string_equal (json_string_value (json_array_get (versions, 2)), "2025-06-18");
    assert_non_null (json_object_get (json_object_get (result, "capabilities"), "tools"));
    assert_true (json_is_string (json_object_get (result, "instructions")));
    json_decref (reply);
    s_free (h);

    const char *legacy [] = { "MCP-Protocol-Version: 2025-11-25", NULL };
    s_assert_error (s_expect (legacy, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server/discover\"}", 200),
                    -32601, "server/discover");
}

//  Lists and reads carry resultType and the cache fields; an unknown
//  resource is -32602 (it was -32002).
static void
test_catalog (void **state)
{
    const char *list [] = { H_VERSION, "Mcp-Method: tools/list", NULL };
    json_t *reply = s_expect (list, REQ ("1", "tools/list", META ("{}", "")), 200);
    json_t *result = s_assert_modern (reply, true);
    assert_true (json_array_size (json_object_get (result, "tools")) > 0);
    json_decref (reply);

    const char *prompts [] = { H_VERSION, "Mcp-Method: prompts/list", NULL };
    reply = s_expect (prompts, REQ ("2", "prompts/list", META ("{}", "")), 200);
    s_assert_modern (reply, true);
    json_decref (reply);

    const char *read [] = { H_VERSION, "Mcp-Method: resources/read", "Mcp-Name: test://nowhere", NULL };
    s_assert_error (s_expect (read, REQ ("3", "resources/read", "\"uri\":\"test://nowhere\"," META ("{}", "")), 200),
                    -32602, "Resource not found");
}

//  A tool call: a JSON response with resultType, not cacheable; nothing
//  else changed in the result.
static void
test_call (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, "Mcp-Session-Id: not-a-session", NULL };
    s_http_t *h = s_post (headers, s_token, CALL ("\"c-1\"", "plain", META ("{}", "")));
    assert_int_equal (h->status, 200);
    assert_string_equal (h->content_type, "application/json");
    assert_string_equal (h->session_id, "");
    json_t *reply = json_loads (h->body, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "c-1");
    json_t *result = s_assert_modern (reply, false);
    assert_string_equal (json_string_value (json_object_get (json_array_get (
        json_object_get (result, "content"), 0), "text")), "plain");
    json_decref (reply);
    s_free (h);

    //  Arguments refused by the schema: still a modern result.
    reply = s_expect (headers, REQ ("2", "tools/call", "\"name\":\"search_accounts\",\"arguments\":{\"query\":5},"
                                    META ("{}", "")), 200);
    result = s_assert_modern (reply, false);
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_decref (reply);

    //  Mcp-Name in the base64 sentinel form is decoded before comparing.
    const char *encoded [] = { H_VERSION, H_CALL, "Mcp-Name: =?base64?c2VhcmNoX2FjY291bnRz?=", NULL };
    reply = s_expect (encoded, CALL ("3", "plain", META ("{}", "")), 200);
    s_assert_modern (reply, false);
    json_decref (reply);
}

//  Notifications only as the request asks: progress with a token, log
//  messages at or above _meta logLevel, none without it; no priming event.
static void
test_call_notifications (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    //  Neither: a JSON response, the messages dropped.
    s_http_t *h = s_post (headers, s_token, CALL ("4", "talk", META ("{}", "")));
    assert_string_equal (h->content_type, "application/json");
    json_t *reply = json_loads (h->body, 0, NULL);
    s_assert_modern (reply, false);
    json_decref (reply);
    s_free (h);

    //  A progress token: progress, no log messages.
    h = s_post (headers, s_token, CALL ("5", "talk", META ("{}", ",\"progressToken\":\"t5\"")));
    assert_string_equal (h->content_type, "text/event-stream");
    assert_null (strstr (h->body, "retry:"));
    json_t *events = s_events (h);
    assert_int_equal (json_array_size (events), 4);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal (json_string_value (json_object_get (json_array_get (events, i), "method")),
                             "notifications/progress");
    s_assert_modern (json_array_get (events, 3), false);
    json_decref (events);
    s_free (h);

    //  logLevel warning: only the error message.
    h = s_post (headers, s_token, CALL ("6", "talk", META ("{}", ",\"io.modelcontextprotocol/logLevel\":\"warning\"")));
    assert_string_equal (h->content_type, "text/event-stream");
    events = s_events (h);
    assert_int_equal (json_array_size (events), 2);
    json_t *message = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (message, "method")), "notifications/message");
    assert_string_equal (json_string_value (json_object_get (json_object_get (message, "params"), "level")),
                         "error");
    s_assert_modern (json_array_get (events, 1), false);
    json_decref (events);
    s_free (h);
}

//  A worker's question inside a 2026-07-28 call is answered at once with
//  an error, even for a client declaring elicitation: no server request is
//  ever sent on its stream.
static void
test_ask_refused (void **state)
{
    const char *headers [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    int answers = s_broker_int ("ANSWERS");
    s_http_t *h = s_post (headers, s_token, CALL ("7", "ask", META ("{\"elicitation\":{}}",
                                                   ",\"progressToken\":1")));
    assert_int_equal (h->status, 200);
    assert_null (strstr (h->body, "elicitation/create"));
    json_t *events = s_events (h);
    assert_int_equal (json_array_size (events), 1);
    json_t *result = s_assert_modern (json_array_get (events, 0), false);
    json_t *answer = json_loads (json_string_value (json_object_get (json_object_get (result, "structuredContent"),
                                                                     "answer")), 0, NULL);
    json_t *error = json_object_get (answer, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32601);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")), "input-required"));
    json_decref (answer);
    json_decref (events);
    s_free (h);
    s_wait_count ("ANSWERS", answers + 1);
}

//  Missing, different or malformed mirrored headers: 400 with -32020, and
//  no job is sent.
static void
test_header_mismatch (void **state)
{
    int received = s_broker_int ("RECEIVED");
    const char *no_method [] = { H_VERSION, H_TOOL, NULL };
    s_assert_error (s_expect (no_method, CALL ("1", "x", META ("{}", "")), 400), -32020, "Mcp-Method header is missing");
    const char *other_method [] = { H_VERSION, "Mcp-Method: tools/list", H_TOOL, NULL };
    s_assert_error (s_expect (other_method, CALL ("2", "x", META ("{}", "")), 400), -32020, "does not match");
    const char *case_method [] = { H_VERSION, "Mcp-Method: Tools/Call", H_TOOL, NULL };
    s_assert_error (s_expect (case_method, CALL ("3", "x", META ("{}", "")), 400), -32020, "Mcp-Method");
    const char *no_name [] = { H_VERSION, H_CALL, NULL };
    s_assert_error (s_expect (no_name, CALL ("4", "x", META ("{}", "")), 400), -32020, "Mcp-Name header is missing");
    const char *other_name [] = { H_VERSION, H_CALL, "Mcp-Name: delete_everything", NULL };
    s_assert_error (s_expect (other_name, CALL ("5", "x", META ("{}", "")), 400), -32020, "params.name");
    const char *bad_base64 [] = { H_VERSION, H_CALL, "Mcp-Name: =?base64?not*base64?=", NULL };
    s_assert_error (s_expect (bad_base64, CALL ("6", "x", META ("{}", "")), 400), -32020, "malformed");
    const char *other_base64 [] = { H_VERSION, H_CALL, "Mcp-Name: =?base64?c2VhcmNoX2FjY291bnQ=?=", NULL };
    s_assert_error (s_expect (other_base64, CALL ("7", "x", META ("{}", "")), 400), -32020, "params.name");
    const char *non_ascii [] = { H_VERSION, H_CALL, "Mcp-Name: search_accounts\xc3\xa9", NULL };
    s_assert_error (s_expect (non_ascii, CALL ("8", "x", META ("{}", "")), 400), -32020, "malformed");
    //  resources/read and prompts/get compare params.uri / params.name.
    const char *read [] = { H_VERSION, "Mcp-Method: resources/read", "Mcp-Name: test://a", NULL };
    s_assert_error (s_expect (read, REQ ("9", "resources/read", "\"uri\":\"test://b\"," META ("{}", "")), 400),
                    -32020, "params.uri");
    const char *prompt [] = { H_VERSION, "Mcp-Method: prompts/get", NULL };
    s_assert_error (s_expect (prompt, REQ ("10", "prompts/get", "\"name\":\"p\"," META ("{}", "")), 400),
                    -32020, "Mcp-Name");
    //  The body's protocolVersion must be the header's.
    const char *list [] = { H_VERSION, "Mcp-Method: tools/list", NULL };
    s_assert_error (s_expect (list, REQ ("11", "tools/list", "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                                         "\"2025-11-25\",\"io.modelcontextprotocol/clientCapabilities\":{}}"), 400),
                    -32020, "MCP-Protocol-Version");
    //  A body in the 2026-07-28 form under an older header, or none.
    const char *legacy [] = { "MCP-Protocol-Version: 2025-11-25", NULL };
    s_assert_error (s_expect (legacy, REQ ("12", "tools/list", META ("{}", "")), 400), -32020, "MCP-Protocol-Version");
    s_assert_error (s_expect (NULL, REQ ("13", "tools/list", META ("{}", "")), 400), -32020, "is missing");
    assert_int_equal (s_broker_int ("RECEIVED"), received);
}

//  Malformed _meta: 400 with -32602, no job sent.
static void
test_bad_meta (void **state)
{
    int received = s_broker_int ("RECEIVED");
    const char *call [] = { H_VERSION, H_CALL, H_TOOL, NULL };
    s_assert_error (s_expect (call, CALL ("1", "x", "\"_x\":0"), 400), -32602, "_meta");
    s_assert_error (s_expect (call, CALL ("2", "x", "\"_meta\":[]"), 400), -32602, "_meta");
    s_assert_error (s_expect (call, CALL ("3", "x", "\"_meta\":{\"io.modelcontextprotocol/clientCapabilities\":{}}"), 400),
                    -32602, "protocolVersion");
    s_assert_error (s_expect (call, CALL ("4", "x", "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}"), 400),
                    -32602, "clientCapabilities");
    s_assert_error (s_expect (call, CALL ("5", "x", META ("[]", "")), 400), -32602, "clientCapabilities");
    s_assert_error (s_expect (call, CALL ("6", "x", "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":7,"
                                         "\"io.modelcontextprotocol/clientCapabilities\":{}}"), 400), -32602, "protocolVersion");
    s_assert_error (s_expect (call, CALL ("7", "x", META ("{}", ",\"io.modelcontextprotocol/logLevel\":\"loud\"")), 400),
                    -32602, "logLevel");
    const char *list [] = { H_VERSION, "Mcp-Method: tools/list", NULL };
    s_assert_error (s_expect (list, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/list\"}", 400), -32602, "_meta");
    assert_int_equal (s_broker_int ("RECEIVED"), received);
}

//  What 2026-07-28 removed: methods (404 -32601), client responses (400),
//  GET and DELETE (405); an unknown version gets -32022 with the list.
static void
test_removed_and_versions (void **state)
{
    const char *methods [] = { "initialize", "ping", "logging/setLevel", "resources/subscribe",
                               "resources/unsubscribe", "no/such", NULL };
    for (int i = 0; methods [i]; i++) {
        char method [64], body [512];
        snprintf (method, sizeof method, "Mcp-Method: %s", methods [i]);
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{%s}}",
                  methods [i], META ("{}", ""));
        const char *headers [] = { H_VERSION, method, NULL };
        s_assert_error (s_expect (headers, body, 404), -32601, methods [i]);
    }
    const char *version [] = { H_VERSION, NULL };
    s_assert_error (s_expect (version, "{\"jsonrpc\":\"2.0\",\"id\":\"sb:abc:1\",\"result\":{}}", 400),
                    -32600, "inputResponses");
    json_t *none = s_expect (version, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 202);
    assert_null (none);

    const char *unknown [] = { "MCP-Protocol-Version: 1900-01-01", NULL };
    json_t *reply = s_expect (unknown, REQ ("\"v\"", "tools/list", ""), 400);
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "v");
    json_t *data = json_object_get (json_object_get (reply, "error"), "data");
    assert_string_equal (json_string_value (json_object_get (data, "requested")), "1900-01-01");
    assert_string_equal (json_string_value (json_array_get (json_object_get (data, "supported"), 0)), "2026-07-28");
    s_assert_error (reply, -32022, "Unsupported protocol version");

    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", s_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", s_token);
    const char *headers [] = { auth, H_VERSION, "Accept: text/event-stream", NULL };
    const char *verbs [] = { "GET", "DELETE", NULL };
    for (int i = 0; verbs [i]; i++) {
        char *body = NULL;
        long status = 0;
        assert_int_equal (sb_harness_http (verbs [i], url, headers, NULL, 0, WAIT_MS, &status, &body), 0);
        assert_int_equal (status, 405);
        free (body);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_discover),
        cmocka_unit_test (test_catalog),
        cmocka_unit_test (test_call),
        cmocka_unit_test (test_call_notifications),
        cmocka_unit_test (test_ask_refused),
        cmocka_unit_test (test_header_mismatch),
        cmocka_unit_test (test_bad_meta),
        cmocka_unit_test (test_removed_and_versions),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
