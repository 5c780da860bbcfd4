/*  tests/30_gateway_notify.c — connectors reloaded under a running gateway
    (gateway/sb_notify.c), and what clients are told.

    The gateway runs in this process (sb_gateway_new on a connectors folder
    the test writes, its loop turned by the test with sb_gateway_poll)
    against a fake broker on a zactor thread, so a reload is a direct call
    (sb_gateway_reload) whose outcome the test reads at once; HTTP requests
    run in threads. Two sessions keep GET streams open; after each reload
    the test asserts the exact notifications on each stream, in order:
    tools/prompts/resources list_changed for the lists that changed, then
    resources/updated for each subscribed URI that changed or disappeared,
    nothing for unsubscribed URIs or unchanged ones. A failed reload keeps
    the old tools and sends nothing; the subscription limits are refused
    with clear errors; DELETE forgets a session's subscriptions; tool calls
    in flight across a reload finish on the set they started with (this
    binary is built with ASan: a freed set read by such a call aborts it).

    The last case runs the real sb-gateway binary and sends it SIGHUP.
    Everything the test waits for is an event it can observe (a reply, bytes
    on a stream, a count), never a bare sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sb_config.h"
#include "common/sb_crypto.h"
#include "common/sb_log.h"
#include "common/sb_token.h"
#include "gateway/sb_gateway_int.h"
#include "proto/sb_job.h"
#include "proto/sb_msg.h"
#include "tests/sb_harness.h"

#define WAIT_MS         10000   /* longest wait for anything that must happen */
#define MAX_EVENTS      64      /* events kept per stream */

static sb_gateway_t *s_gw;      /* the gateway in this process (NULL: none) */
static zactor_t *s_broker;      /* the fake broker */
static char s_base [64];        /* http://127.0.0.1:port */
static char s_dir [128];        /* the connectors folder */
static char s_key_path [160];   /* the token key file */
static uint8_t s_key [32];
static char *s_token;           /* tenant "acme" */
static char *s_other;           /* tenant "globex" */

//  ---------------------------------------------------------------------------
//  The fake broker: holds every REQUEST until told "REPLY <json>", which
//  answers the oldest held one; "RECEIVED" counts REQUESTs.

static void
s_fake_broker (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "%d", port);
    zlistx_t *held = zlistx_new ();         //  "corr_id" strings, oldest first
    zlistx_t *routes = zlistx_new ();       //  their routing frames
    int received = 0;
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
            if (strncmp (command, "REPLY ", 6) == 0) {
                char *corr_id = zlistx_first (held);
                zframe_t *routing = zlistx_first (routes);
                if (corr_id) {
                    sb_msg_t msg = { 0 };
                    zframe_t *payload = sb_job_result_encode (command + 6);
                    sb_msg_set_reply (&msg, corr_id, SB_STATUS_OK, &payload);
                    sb_msg_send (router, &msg, routing);
                    sb_msg_reset (&msg);
                    zlistx_delete (held, zlistx_cursor (held));
                    zlistx_delete (routes, zlistx_cursor (routes));
                    free (corr_id);
                    zframe_destroy (&routing);
                }
                zstr_send (pipe, corr_id? "ok": "none");
            }
            zstr_free (&command);
        }
        else
        if (which == router) {
            sb_msg_t msg = { 0 };
            zframe_t *routing = NULL;
            if (sb_msg_recv (router, &msg, &routing) == SB_MSG_OK && msg.command == SB_CMD_REQUEST) {
                received++;
                zlistx_add_end (held, strdup (msg.corr_id));
                zlistx_add_end (routes, routing);
                routing = NULL;
            }
            zframe_destroy (&routing);
            sb_msg_reset (&msg);
        }
    }
    for (char *c = zlistx_first (held); c; c = zlistx_next (held))
        free (c);
    for (zframe_t *f = zlistx_first (routes); f; f = zlistx_next (routes))
        zframe_destroy (&f);
    zlistx_destroy (&held);
    zlistx_destroy (&routes);
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

static void
s_broker_reply (const char *json)
{
    char *command = zsys_sprintf ("REPLY %s", json);
    zstr_send (s_broker, command);
    zstr_free (&command);
    char *answer = zstr_recv (s_broker);
    assert_string_equal (answer, "ok");
    zstr_free (&answer);
}

//  ---------------------------------------------------------------------------
//  Waiting: the in-process gateway's loop turns while the test waits

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  One wait step: a turn of the gateway's loop, or (gateway in another
//  process) a short pause before looking at the condition again.
static void
s_turn (void)
{
    if (s_gw)
        sb_gateway_poll (s_gw, 5);
    else {
        struct timespec pause = { 0, 5 * 1000000 };
        nanosleep (&pause, NULL);
    }
}

#define WAIT_FOR(cond) do { \
    int64_t deadline_ = s_now_ms () + WAIT_MS; \
    while (!(cond) && s_now_ms () < deadline_) \
        s_turn (); \
    assert_true (cond); \
} while (0)

//  ---------------------------------------------------------------------------
//  HTTP in threads

typedef struct {
    pthread_mutex_t lock;
    char *body;                 /* received so far */
    size_t len;
    long status;
    char session [512];         /* Mcp-Session-Id answered */
    bool done;
    int rc;
    char method [8];
    char *request;              /* body sent, or NULL */
    char *headers [8];          /* extra headers, NULL-terminated */
    const char *token;
    pthread_t thread;
    size_t seen;                /* events already taken by s_next_events */
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

static size_t
s_on_header (char *line, size_t size, size_t nmemb, void *userdata)
{
    s_http_t *h = userdata;
    size_t n = size * nmemb;
    static const char name [] = "mcp-session-id:";
    if (n > sizeof name && strncasecmp (line, name, sizeof name - 1) == 0) {
        const char *value = line + sizeof name - 1;
        size_t len = n - (sizeof name - 1);
        while (len && *value == ' ')
            value++, len--;
        while (len && (value [len - 1] == '\r' || value [len - 1] == '\n'))
            len--;
        pthread_mutex_lock (&h->lock);
        snprintf (h->session, sizeof h->session, "%.*s", (int) len, value);
        pthread_mutex_unlock (&h->lock);
    }
    return n;
}

static void *
s_perform (void *arg)
{
    s_http_t *h = arg;
    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", s_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", h->token);
    struct curl_slist *headers = curl_slist_append (NULL, "Expect:");
    headers = curl_slist_append (headers, auth);
    for (int i = 0; h->headers [i]; i++)
        headers = curl_slist_append (headers, h->headers [i]);
    CURL *curl = curl_easy_init ();
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, h->method);
    if (h->request)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, h->request);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, h);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, h);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) (3 * WAIT_MS));
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
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

//  Starts `method` with `body` (may be NULL) as `token`, in `session` (may
//  be NULL or ""), with up to 5 extra headers (NULL-terminated, may be NULL).
static s_http_t *
s_start (const char *method, const char *token, const char *session, const char **extra,
         const char *body)
{
    s_http_t *h = calloc (1, sizeof *h);
    pthread_mutex_init (&h->lock, NULL);
    snprintf (h->method, sizeof h->method, "%s", method);
    h->token = token;
    h->request = body? strdup (body): NULL;
    int n = 0;
    if (body) {
        h->headers [n++] = strdup ("Content-Type: application/json");
        h->headers [n++] = strdup ("Accept: application/json, text/event-stream");
    }
    else
        h->headers [n++] = strdup ("Accept: text/event-stream");
    if (session && *session)
        h->headers [n++] = zsys_sprintf ("Mcp-Session-Id: %s", session);
    for (int i = 0; extra && extra [i] && n < 7; i++)
        h->headers [n++] = strdup (extra [i]);
    pthread_create (&h->thread, NULL, s_perform, h);
    return h;
}

static bool
s_done (s_http_t *h)
{
    pthread_mutex_lock (&h->lock);
    bool done = h->done;
    pthread_mutex_unlock (&h->lock);
    return done;
}

//  Waits for the end of the request (the loop turning meanwhile).
static void
s_finish (s_http_t *h)
{
    WAIT_FOR (s_done (h));
    pthread_join (h->thread, NULL);
    assert_int_equal (h->rc, 0);
}

static void
s_free (s_http_t *h)
{
    for (int i = 0; h->headers [i]; i++)
        free (h->headers [i]);
    free (h->request);
    free (h->body);
    pthread_mutex_destroy (&h->lock);
    free (h);
}

//  The data of the complete SSE events so far, or of a JSON body (new array).
static json_t *
s_events (s_http_t *h)
{
    json_t *events = json_array ();
    pthread_mutex_lock (&h->lock);
    char *copy = strdup (h->body? h->body: "");
    pthread_mutex_unlock (&h->lock);
    if (copy [0] == '{') {
        json_array_append_new (events, json_loads (copy, 0, NULL));
        free (copy);
        return events;
    }
    char *end = NULL;
    for (char *last = strstr (copy, "\n\n"); last; last = strstr (last + 2, "\n\n"))
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

//  True when the body so far holds `text`.
static bool
s_has (s_http_t *h, const char *text)
{
    pthread_mutex_lock (&h->lock);
    bool has = h->body && strstr (h->body, text);
    pthread_mutex_unlock (&h->lock);
    return has;
}

static size_t
s_event_count (s_http_t *h)
{
    json_t *events = s_events (h);
    size_t count = json_array_size (events);
    json_decref (events);
    return count;
}

//  One request run to its end; its one JSON-RPC answer (new reference).
static json_t *
s_rpc (const char *token, const char *session, const char **extra, const char *body)
{
    s_http_t *h = s_start ("POST", token, session, extra, body);
    s_finish (h);
    json_t *events = s_events (h);
    json_t *reply = json_incref (json_array_get (events, json_array_size (events) - 1));
    json_decref (events);
    s_free (h);
    assert_non_null (reply);
    return reply;
}

//  A new session of `token` (initialize + initialized): its Mcp-Session-Id.
static char *
s_session (const char *token)
{
    s_http_t *h = s_start ("POST", token, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    s_finish (h);
    assert_int_equal (h->status, 200);
    char *session = strdup (h->session);
    assert_true (strlen (session) > 10);
    json_t *events = s_events (h);
    json_t *caps = json_object_get (json_object_get (json_array_get (events, 0), "result"),
                                    "capabilities");
    assert_true (json_is_true (json_object_get (json_object_get (caps, "tools"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "resources"), "subscribe")));
    json_decref (events);
    s_free (h);
    h = s_start ("POST", token, session, NULL,
                 "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    s_finish (h);
    assert_int_equal (h->status, 202);
    s_free (h);
    return session;
}

//  A GET stream of `session`, open (its first bytes came).
static s_http_t *
s_stream (const char *token, const char *session)
{
    s_http_t *h = s_start ("GET", token, session, NULL, NULL);
    WAIT_FOR (s_has (h, "\n\n"));
    assert_false (s_done (h));
    return h;
}

//  resources/subscribe or unsubscribe; the reply (new reference).
static json_t *
s_subscribe (const char *token, const char *session, const char *method, const char *uri)
{
    char body [512];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"%s\",\"params\":"
              "{\"uri\":\"%s\"}}", method, uri);
    return s_rpc (token, session, NULL, body);
}

static void
s_subscribed (const char *session, const char *uri)
{
    json_t *reply = s_subscribe (s_token, session, "resources/subscribe", uri);
    assert_true (json_is_object (json_object_get (reply, "result")));
    json_decref (reply);
}

//  The next `count` events of stream `h` as "method" or "method uri",
//  joined by "; " (new string); waits for them.
static char *
s_next_events (s_http_t *h, size_t count)
{
    WAIT_FOR (s_event_count (h) >= h->seen + count);
    json_t *events = s_events (h);
    char text [2048] = "";
    for (size_t i = h->seen; i < h->seen + count; i++) {
        json_t *event = json_array_get (events, i);
        const char *method = json_string_value (json_object_get (event, "method"));
        const char *uri = json_string_value (json_object_get (json_object_get (event, "params"), "uri"));
        size_t used = strlen (text);
        snprintf (text + used, sizeof text - used, "%s%s%s%s", used? "; ": "",
                  method? method: "?", uri? " ": "", uri? uri: "");
    }
    h->seen += count;
    json_decref (events);
    return strdup (text);
}

static void
s_expect (s_http_t *h, size_t count, const char *expected)
{
    char *got = s_next_events (h, count);
    assert_string_equal (got, expected);
    free (got);
}

//  tools/list (stateless): the tool names, comma-separated (new string).
static char *
s_tool_names (void)
{
    json_t *reply = s_rpc (s_token, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    char text [512] = "";
    size_t index;
    json_t *tool;
    json_array_foreach (json_object_get (json_object_get (reply, "result"), "tools"), index, tool) {
        size_t used = strlen (text);
        snprintf (text + used, sizeof text - used, "%s%s", used? ",": "",
                  json_string_value (json_object_get (tool, "name")));
    }
    json_decref (reply);
    return strdup (text);
}

//  ---------------------------------------------------------------------------
//  The connectors folder

//  Writes <dir>/notes.json: tools `tools` (comma-separated names, each the
//  builtin test_simple_text), resources note/one..three with the texts
//  given (NULL: absent), the template test://note/{id}/raw rendering `raw`,
//  and one prompt described `prompt`.
static void
s_write (const char *dir, const char *tools, const char *one, const char *two, const char *three,
         const char *raw, const char *prompt)
{
    json_t *tool_list = json_array ();
    char names [256];
    snprintf (names, sizeof names, "%s", tools);
    for (char *name = strtok (names, ","); name; name = strtok (NULL, ","))
        json_array_append_new (tool_list, json_pack (
            "{s:s, s:s, s:{s:s, s:{}, s:b}, s:{s:s}}", "name", name, "description", "A note tool",
            "inputSchema", "type", "object", "properties", "additionalProperties", 0,
            "request", "builtin", "test_simple_text"));
    json_t *resources = json_array ();
    const char *texts [] = { one, two, three };
    const char *uris [] = { "test://note/one", "test://note/two", "test://note/three" };
    for (int i = 0; i < 3; i++)
        if (texts [i])
            json_array_append_new (resources, json_pack ("{s:s, s:s, s:s, s:s}", "uri", uris [i],
                                   "name", uris [i] + 12, "mimeType", "text/plain", "text", texts [i]));
    json_t *doc = json_pack ("{s:s, s:s, s:{s:s}, s:o, s:o, s:[{s:s, s:s, s:s, s:s}], "
                             "s:[{s:s, s:s, s:[{s:s, s:{s:s, s:s}}]}]}",
        "name", "notes", "title", "Notes", "auth", "type", "none",
        "tools", tool_list, "resources", resources,
        "resource_templates", "uriTemplate", "test://note/{id}/raw", "name", "raw",
        "mimeType", "text/plain", "text", raw,
        "prompts", "name", "note_prompt", "description", prompt,
        "messages", "role", "user", "content", "type", "text", "text", "Hello.");
    assert_non_null (doc);
    char path [256], temp [256];
    snprintf (path, sizeof path, "%s/notes.json", dir);
    snprintf (temp, sizeof temp, "%s/.notes.json.tmp", dir);
    //  Written aside and renamed, as an operator's deploy would.
    assert_int_equal (json_dump_file (doc, temp, JSON_INDENT (2)), 0);
    assert_int_equal (rename (temp, path), 0);
    json_decref (doc);
}

static void
s_write_file (const char *dir, const char *name, const char *text)
{
    char path [256];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static void
s_remove_dir (const char *dir)
{
    char path [256];
    const char *names [] = { "notes.json", "broken.json", ".notes.json.tmp", NULL };
    for (int i = 0; names [i]; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, names [i]);
        unlink (path);
    }
    rmdir (dir);
}

//  ---------------------------------------------------------------------------
//  Fixture: the gateway in this process

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
    sb_log_init ("gateway-test", SB_LOG_INFO);
    s_broker = zactor_new (s_fake_broker, NULL);
    char *port_text = zstr_recv (s_broker);
    int broker_port = port_text? (int) strtol (port_text, NULL, 10): -1;
    zstr_free (&port_text);
    if (broker_port <= 0 || sb_crypto_random (s_key, sizeof s_key))
        return -1;
    snprintf (s_key_path, sizeof s_key_path, "/tmp/sb-30-notify-key-%d", (int) getpid ());
    FILE *file = fopen (s_key_path, "w");
    char hex [65];
    sb_hex_encode (s_key, sizeof s_key, hex);
    fprintf (file, "%s\n", hex);
    fclose (file);
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-30-notify-%d", (int) getpid ());
    if (mkdir (s_dir, 0700))
        return -1;
    s_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");

    int port = sb_harness_free_port ();
    char listen [64], broker [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%d", broker_port);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    char *argv [] = {
        "sb-gateway", "--listen", listen, "--broker", broker, "--token-key-file", s_key_path,
        "--connectors", s_dir, "--public-url", s_base, "--call-timeout-ms", "20000", NULL
    };
    sb_config_t *config = sb_config_new ("sb-gateway", sb_gateway_options);
    if (!config || sb_config_load (config, 13, argv))
        return -1;
    s_gw = sb_gateway_new (config);
    sb_config_destroy (&config);
    s_token = s_issue ("acme");
    s_other = s_issue ("globex");
    return s_gw && s_token && s_other? 0: -1;
}

static int
s_teardown (void **state)
{
    if (s_gw) {
        //  The drain of sb_gateway_run: nothing is pending by now.
        sb_gateway_stop (s_gw);
        int rc = sb_gateway_run (s_gw);
        sb_gateway_destroy (&s_gw);
        if (rc)
            return -1;
    }
    zactor_destroy (&s_broker);
    free (s_token);
    free (s_other);
    unlink (s_key_path);
    s_remove_dir (s_dir);
    curl_global_cleanup ();
    return 0;
}

//  ---------------------------------------------------------------------------
//  Tests

static void
test_reload_notifies (void **state)
{
    char *a = s_session (s_token);
    char *b = s_session (s_other);
    s_http_t *stream_a = s_stream (s_token, a);
    s_http_t *stream_b = s_stream (s_other, b);

    //  A follows one, two, three and a templated URI; B follows two, and
    //  followed one until it unsubscribed.
    s_subscribed (a, "test://note/one");
    s_subscribed (a, "test://note/two");
    s_subscribed (a, "test://note/three");
    s_subscribed (a, "test://note/7/raw");
    s_subscribed (a, "test://note/7/raw");           //  twice: once
    json_t *reply = s_subscribe (s_other, b, "resources/subscribe", "test://note/two");
    json_decref (reply);
    reply = s_subscribe (s_other, b, "resources/subscribe", "test://note/one");
    json_decref (reply);
    reply = s_subscribe (s_other, b, "resources/unsubscribe", "test://note/one");
    assert_true (json_is_object (json_object_get (reply, "result")));
    json_decref (reply);
    assert_int_equal (sb_subs_sessions (s_gw->subs), 2);

    //  1. A tool more; one edited (same size); three gone.
    s_write (s_dir, "note_tool,note_tool_2", "FIRST", "second", NULL, "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (stream_a, 4, "notifications/tools/list_changed; notifications/resources/list_changed; "
                           "notifications/resources/updated test://note/one; "
                           "notifications/resources/updated test://note/three");
    s_expect (stream_b, 2, "notifications/tools/list_changed; notifications/resources/list_changed");
    char *names = s_tool_names ();
    assert_string_equal (names, "note_tool,note_tool_2");
    free (names);
    reply = s_rpc (s_token, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/read\","
                   "\"params\":{\"uri\":\"test://note/one\"}}");
    json_t *contents = json_object_get (json_object_get (reply, "result"), "contents");
    assert_string_equal (json_string_value (json_object_get (json_array_get (contents, 0), "text")),
                         "FIRST");
    json_decref (reply);

    //  2. Contents only (two, and the template): no list changed; the
    //  request goes through the loop as SIGHUP's does.
    s_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "RAW {id}", "A prompt");
    sb_gateway_request_reload (s_gw);
    s_expect (stream_a, 2, "notifications/resources/updated test://note/two; "
                           "notifications/resources/updated test://note/7/raw");
    s_expect (stream_b, 1, "notifications/resources/updated test://note/two");

    //  3. A folder that does not load: the old set stays, nothing is sent.
    s_write_file (s_dir, "broken.json", "{ \"name\": ");
    assert_int_equal (sb_gateway_reload (s_gw), -1);
    assert_int_equal (s_gw->reload_failures, 1);
    names = s_tool_names ();
    assert_string_equal (names, "note_tool,note_tool_2");
    free (names);
    char path [256];
    snprintf (path, sizeof path, "%s/broken.json", s_dir);
    unlink (path);
    //  A reload that changes nothing sends nothing either.
    assert_int_equal (sb_gateway_reload (s_gw), 0);

    //  4. Only the prompt: the next event on each stream is exactly that,
    //  so steps 3 and 4 sent nothing.
    s_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (stream_a, 1, "notifications/prompts/list_changed");
    s_expect (stream_b, 1, "notifications/prompts/list_changed");
    assert_int_equal (s_gw->reloads, 4);

    //  DELETE ends A's stream and forgets its subscriptions.
    s_http_t *h = s_start ("DELETE", s_token, a, NULL, NULL);
    s_finish (h);
    assert_int_equal (h->status, 200);
    s_free (h);
    s_finish (stream_a);
    assert_int_equal (sb_subs_sessions (s_gw->subs), 1);

    //  5. Three comes back: B hears of the list, not of three.
    s_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", "third", "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (stream_b, 1, "notifications/resources/list_changed");
    s_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", "third", "RAW {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (stream_b, 1, "notifications/prompts/list_changed");

    h = s_start ("DELETE", s_other, b, NULL, NULL);
    s_finish (h);
    s_free (h);
    s_finish (stream_b);
    assert_int_equal (sb_subs_sessions (s_gw->subs), 0);
    s_free (stream_a);
    s_free (stream_b);
    free (a);
    free (b);
}

static void
test_subscribe_refused (void **state)
{
    char *session = s_session (s_token);

    //  Unknown URI: -32002 with the URI; no session: -32000, a sentence.
    json_t *reply = s_subscribe (s_token, session, "resources/subscribe", "test://nothing");
    json_t *error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32002);
    assert_string_equal (json_string_value (json_object_get (json_object_get (error, "data"), "uri")),
                         "test://nothing");
    json_decref (reply);
    reply = s_subscribe (s_token, NULL, "resources/subscribe", "test://note/one");
    error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32000);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")),
                             "needs a session"));
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 7);
    json_decref (reply);
    //  Unsubscribing without a session, or what was never followed: {}.
    reply = s_subscribe (s_token, NULL, "resources/unsubscribe", "test://note/one");
    assert_true (json_is_object (json_object_get (reply, "result")));
    json_decref (reply);

    //  SB_MAX_SUBS_PER_SESSION URIs, then a clear refusal.
    for (int i = 0; i < SB_MAX_SUBS_PER_SESSION; i++) {
        char uri [64];
        snprintf (uri, sizeof uri, "test://note/%d/raw", i);
        s_subscribed (session, uri);
    }
    reply = s_subscribe (s_token, session, "resources/subscribe", "test://note/one");
    error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32000);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")),
                             "already follows 64 resources"));
    json_decref (reply);
    reply = s_subscribe (s_token, session, "resources/unsubscribe", "test://note/0/raw");
    json_decref (reply);
    s_subscribed (session, "test://note/one");

    //  2026-07-28 has no resources/subscribe (subscriptions/listen instead:
    //  tests/30_gateway_listen.c).
    const char *modern [] = { "MCP-Protocol-Version: 2026-07-28", "Mcp-Method: resources/subscribe", NULL };
    reply = s_rpc (s_token, NULL, modern, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/subscribe\","
                   "\"params\":{\"uri\":\"test://note/one\",\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                   "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}");
    error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32601);
    json_decref (reply);

    s_http_t *h = s_start ("DELETE", s_token, session, NULL, NULL);
    s_finish (h);
    s_free (h);
    assert_int_equal (sb_subs_sessions (s_gw->subs), 0);
    free (session);
}

static void
test_calls_across_reload (void **state)
{
    //  A 2026-07-28 call whose reply is an input-required result: the
    //  gateway signs the next round's requestState with the tool's name,
    //  read from the set the call started with, after the reload.
    const char *modern [] = { "MCP-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call",
                              "Mcp-Name: note_tool", NULL };
    int before = s_broker_int ("RECEIVED");
    s_http_t *call = s_start ("POST", s_token, NULL, modern,
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"note_tool\","
        "\"arguments\":{},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
        "\"io.modelcontextprotocol/clientCapabilities\":{\"elicitation\":{}}}}}");
    WAIT_FOR (s_broker_int ("RECEIVED") == before + 1);
    //  And an older-revision call, stateless.
    s_http_t *plain = s_start ("POST", s_token, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":{\"name\":\"note_tool\","
        "\"arguments\":{}}}");
    WAIT_FOR (s_broker_int ("RECEIVED") == before + 2);

    //  Two reloads while both wait: the set they started with is two sets ago.
    s_write (s_dir, "note_tool,note_tool_3", "first", "second", "third", "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    assert_int_equal (sb_connectors_refs (s_gw->connectors), 1);

    s_broker_reply ("{\"resultType\":\"input_required\",\"inputRequests\":{\"confirm\":{\"method\":"
                    "\"elicitation/create\",\"params\":{\"mode\":\"form\",\"message\":\"Sure?\","
                    "\"requestedSchema\":{\"type\":\"object\",\"properties\":{}}}}}}");
    s_finish (call);
    assert_int_equal (call->status, 200);
    json_t *events = s_events (call);
    json_t *result = json_object_get (json_array_get (events, 0), "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    assert_true (json_is_string (json_object_get (result, "requestState")));
    assert_non_null (json_object_get (json_object_get (result, "inputRequests"), "confirm"));
    json_decref (events);

    s_broker_reply ("{\"content\":[{\"type\":\"text\",\"text\":\"late\"}]}");
    s_finish (plain);
    events = s_events (plain);
    result = json_object_get (json_array_get (events, 0), "result");
    assert_string_equal (json_string_value (json_object_get (json_array_get (
                         json_object_get (result, "content"), 0), "text")), "late");
    json_decref (events);
    s_free (call);
    s_free (plain);
}

//  The real sb-gateway: SIGHUP reloads, and its GET streams hear of it.
static void
test_sighup (void **state)
{
    sb_gateway_t *in_process = s_gw;
    s_gw = NULL;                        //  s_turn waits instead of turning our loop
    char base [64], dir [128];
    snprintf (base, sizeof base, "%s", s_base);
    snprintf (dir, sizeof dir, "/tmp/sb-30-notify-hup-%d", (int) getpid ());
    assert_int_equal (mkdir (dir, 0700), 0);
    s_write (dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");
    int port = sb_harness_free_port ();
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", port);
    char *token = s_issue ("acme");
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", "tcp://127.0.0.1:9",
        "--token-key-file", s_key_path, "--connectors", dir, "--public-url", s_base, NULL
    };
    pid_t gateway = sb_harness_spawn (argv, NULL);
    char health [128];
    snprintf (health, sizeof health, "%s/healthz", s_base);
    assert_int_equal (sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS), 0);

    char *session = s_session (token);
    s_http_t *stream = s_stream (token, session);
    json_t *reply = s_subscribe (token, session, "resources/subscribe", "test://note/two");
    json_decref (reply);
    s_write (dir, "note_tool,note_tool_2", "first", "SECOND", "third", "raw {id}", "A prompt");
    assert_int_equal (kill (gateway, SIGHUP), 0);
    s_expect (stream, 2, "notifications/tools/list_changed; "
                         "notifications/resources/updated test://note/two");
    //  A broken folder: the process stays up with the tools it had (the
    //  in-process case above shows the reload itself refused).
    s_write_file (dir, "broken.json", "[");
    assert_int_equal (kill (gateway, SIGHUP), 0);
    char path [256];
    snprintf (path, sizeof path, "%s/broken.json", dir);
    s_http_t *h = s_start ("POST", token, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    s_finish (h);
    assert_true (s_has (h, "note_tool_2"));
    s_free (h);
    unlink (path);

    h = s_start ("DELETE", token, session, NULL, NULL);
    s_finish (h);
    s_free (h);
    s_finish (stream);
    s_free (stream);
    int status = sb_harness_stop (gateway);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    free (session);
    free (token);
    s_remove_dir (dir);
    snprintf (s_base, sizeof s_base, "%s", base);
    s_gw = in_process;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_reload_notifies),
        cmocka_unit_test (test_subscribe_refused),
        cmocka_unit_test (test_calls_across_reload),
        cmocka_unit_test (test_sighup),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
