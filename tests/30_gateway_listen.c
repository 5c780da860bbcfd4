/*  tests/30_gateway_listen.c — MCP 2026-07-28 subscriptions/listen
    (gateway/sb_mcp.c, sb_notify.c, sb_subs.c, sb_sse.c): how a revision
    with no GET stream and no sessions hears of connector reloads.

    Unit cases first: the filter as sb_mcp_handle checks it (bad types and
    the URI limits are -32602 with a sentence; unknown URIs and keys are
    left out of the acknowledgement; server/discover advertises
    listChanged and subscribe), the notifications and the closing result
    it composes, and the listen table of sb_subs with each of its limits.

    Then the gateway in this process (sb_gateway_new on a connectors folder
    the test writes, its loop turned by the test with sb_gateway_poll; no
    broker is needed: nothing here is a tool call). HTTP requests run in
    threads, or (for the per-tenant limit) as raw sockets in this thread.
    The cases assert the exact events on each stream, in order: the
    acknowledgement first, with the subset honoured and the request's id as
    subscriptionId; after each reload only the notification types a stream
    opted in to, each tagged with its subscriptionId, resources/updated
    only for the URIs it listed; no event IDs; nothing leaking between
    listen streams and an older session's GET stream. Limits are refused
    with clear errors; a client that leaves frees its stream and its slot
    (this binary is built with ASan); a gateway that stops ends each listen
    stream with the listen result. Every wait is for an observable event,
    never a bare sleep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sb_config.h"
#include "common/sb_crypto.h"
#include "common/sb_log.h"
#include "common/sb_token.h"
#include "gateway/sb_gateway_int.h"
#include "tests/sb_harness.h"

#define WAIT_MS         10000   /* longest wait for anything that must happen */
#define META_ID         "io.modelcontextprotocol/subscriptionId"

static sb_gateway_t *s_gw;      /* the gateway in this process (NULL: none) */
static int s_port;              /* its port */
static char s_base [64];        /* http://127.0.0.1:port */
static char s_dir [128];        /* the connectors folder */
static char s_key_path [160];   /* the token key file */
static uint8_t s_key [32];
static char *s_token;           /* tenant "acme" */
static char *s_other;           /* tenant "globex" */
static zlistx_t *s_open;        /* listen streams left open for test_listen_stop */

//  ---------------------------------------------------------------------------
//  Requests

//  A subscriptions/listen body with JSON-RPC id `id` and filter `filter`
//  (both JSON text; new string).
static char *
s_listen_body (const char *id, const char *filter)
{
    return zsys_sprintf ("{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"subscriptions/listen\","
                         "\"params\":{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                         "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}},"
                         "\"notifications\":%s}}", id, filter);
}

static const char *s_listen_headers [] = {
    "MCP-Protocol-Version: 2026-07-28", "Mcp-Method: subscriptions/listen", NULL
};

//  ---------------------------------------------------------------------------
//  Unit: sb_mcp

//  sb_mcp_handle of a listen body as 2026-07-28, on `connectors`.
static void
s_handle (sb_connectors_t *connectors, const char *id, const char *filter, sb_mcp_outcome_t *out)
{
    sb_mcp_headers_t headers = {
        .protocol = "2026-07-28", .protocol_len = 10,
        .method = "subscriptions/listen", .method_len = strlen ("subscriptions/listen"),
    };
    sb_mcp_env_t env = { .connectors = connectors, .version = "9.9", .headers = &headers };
    char *body = s_listen_body (id, filter);
    sb_mcp_handle (&env, body, strlen (body), out);
    free (body);
}

//  The error of a listen refused by sb_mcp: asserts -32602 at HTTP 200
//  and that the message holds `words`.
static void
s_expect_invalid (sb_connectors_t *connectors, const char *filter, const char *words)
{
    sb_mcp_outcome_t out;
    s_handle (connectors, "5", filter, &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    assert_int_equal (out.http_status, 200);
    json_t *reply = json_loads (out.body, 0, NULL);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 5);
    json_t *error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32602);
    const char *message = json_string_value (json_object_get (error, "message"));
    if (!strstr (message, words))
        fail_msg ("'%s' does not say '%s'", message, words);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
}

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
    assert_int_equal (json_dump_file (doc, temp, JSON_INDENT (2)), 0);
    assert_int_equal (rename (temp, path), 0);
    json_decref (doc);
}

static void
test_filter_checked (void **state)
{
    char *error = NULL;
    sb_connectors_t *connectors = sb_connectors_load (s_dir, &error);
    assert_non_null (connectors);

    //  Bad types, each named.
    s_expect_invalid (connectors, "null", "needs params.notifications");
    s_expect_invalid (connectors, "[]", "needs params.notifications");
    s_expect_invalid (connectors, "{\"toolsListChanged\":1}", "toolsListChanged must be true or false");
    s_expect_invalid (connectors, "{\"promptsListChanged\":\"yes\"}", "promptsListChanged must be true or false");
    s_expect_invalid (connectors, "{\"resourcesListChanged\":null}", "resourcesListChanged must be true or false");
    s_expect_invalid (connectors, "{\"resourceSubscriptions\":\"test://note/one\"}",
                      "resourceSubscriptions must be an array");
    s_expect_invalid (connectors, "{\"resourceSubscriptions\":[\"test://note/one\",7]}",
                      "resourceSubscriptions[1] must be a resource URI");
    //  The limits: SB_MAX_LISTEN_URIS URIs, SB_MAX_SUB_URI_LEN bytes each.
    char *many = strdup ("{\"resourceSubscriptions\":[");
    for (int i = 0; i <= SB_MAX_LISTEN_URIS; i++) {
        char *grown = zsys_sprintf ("%s%s\"test://note/%d/raw\"", many, i? ",": "", i);
        free (many);
        many = grown;
    }
    char *filter = zsys_sprintf ("%s]}", many);
    s_expect_invalid (connectors, filter, "may follow at most 64 resources");
    free (filter);
    free (many);
    char *long_uri = calloc (1, SB_MAX_SUB_URI_LEN + 16);
    memcpy (long_uri, "test://note/", 12);
    memset (long_uri + 12, 'x', SB_MAX_SUB_URI_LEN);
    filter = zsys_sprintf ("{\"resourceSubscriptions\":[\"%s\"]}", long_uri);
    s_expect_invalid (connectors, filter, "at most 2048 bytes");
    free (filter);
    free (long_uri);
    //  An id too long to name a subscription.
    char id [SB_MAX_LISTEN_ID_LEN + 8];
    memset (id, 'i', sizeof id - 1);
    id [0] = id [sizeof id - 2] = '"';
    id [sizeof id - 1] = 0;
    sb_mcp_outcome_t out;
    s_handle (connectors, id, "{}", &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    assert_non_null (strstr (out.body, "-32602"));
    assert_non_null (strstr (out.body, "at most 256 bytes of JSON"));
    sb_mcp_outcome_clear (&out);

    //  Honoured: the lists asked true, the URIs that exist now (a template
    //  counts), each once; false, unknown keys and unknown URIs left out.
    s_handle (connectors, "\"sub-1\"", "{\"toolsListChanged\":true,\"promptsListChanged\":false,"
              "\"resourcesListChanged\":true,\"tasks\":true,\"resourceSubscriptions\":"
              "[\"test://note/one\",\"test://nothing\",\"test://note/7/raw\",\"test://note/one\"]}", &out);
    assert_int_equal (out.action, SB_MCP_LISTEN);
    assert_int_equal (out.listen_lists, SB_LIST_TOOLS | SB_LIST_RESOURCES);
    assert_string_equal (json_string_value (out.id), "sub-1");
    char *uris = json_dumps (out.listen_uris, JSON_COMPACT);
    assert_string_equal (uris, "[\"test://note/one\",\"test://note/7/raw\"]");
    free (uris);
    json_t *ack = json_loads (out.body, 0, NULL);
    assert_null (json_object_get (ack, "id"));
    assert_string_equal (json_string_value (json_object_get (ack, "method")),
                         "notifications/subscriptions/acknowledged");
    json_t *params = json_object_get (ack, "params");
    assert_string_equal (json_string_value (json_object_get (json_object_get (params, "_meta"), META_ID)),
                         "sub-1");
    char *honoured = json_dumps (json_object_get (params, "notifications"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal (honoured, "{\"resourceSubscriptions\":[\"test://note/one\",\"test://note/7/raw\"],"
                                   "\"resourcesListChanged\":true,\"toolsListChanged\":true}");
    free (honoured);
    json_decref (ack);
    sb_mcp_outcome_clear (&out);

    //  Nothing asked: an empty subset, no URI list.
    s_handle (connectors, "3", "{}", &out);
    assert_int_equal (out.action, SB_MCP_LISTEN);
    assert_int_equal (out.listen_lists, 0);
    assert_null (out.listen_uris);
    assert_non_null (strstr (out.body, "\"notifications\":{}"));
    assert_non_null (strstr (out.body, "\"" META_ID "\":3"));
    sb_mcp_outcome_clear (&out);

    //  Older revisions have no such method.
    sb_mcp_env_t env = { .connectors = connectors, .version = "9.9" };
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscriptions/listen\","
                       "\"params\":{\"notifications\":{}}}";
    sb_mcp_handle (&env, body, strlen (body), &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    assert_non_null (strstr (out.body, "-32601"));
    sb_mcp_outcome_clear (&out);

    //  server/discover says listen streams carry the notifications.
    sb_mcp_headers_t headers = {
        .protocol = "2026-07-28", .protocol_len = 10,
        .method = "server/discover", .method_len = strlen ("server/discover"),
    };
    env.headers = &headers;
    body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{\"_meta\":"
           "{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
           "\"io.modelcontextprotocol/clientCapabilities\":{}}}}";
    sb_mcp_handle (&env, body, strlen (body), &out);
    json_t *reply = json_loads (out.body, 0, NULL);
    json_t *caps = json_object_get (json_object_get (reply, "result"), "capabilities");
    assert_true (json_is_true (json_object_get (json_object_get (caps, "tools"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "prompts"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "resources"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "resources"), "subscribe")));
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    //  What the gateway sends on a stream.
    char *text = sb_mcp_listen_note ("\"a\\\"b\"", "notifications/resources/updated", "test://x?\"q\"");
    assert_string_equal (text, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\","
                               "\"params\":{\"_meta\":{\"" META_ID "\":\"a\\\"b\"},\"uri\":\"test://x?\\\"q\\\"\"}}");
    free (text);
    text = sb_mcp_listen_note ("12", "notifications/tools/list_changed", NULL);
    assert_string_equal (text, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\","
                               "\"params\":{\"_meta\":{\"" META_ID "\":12}}}");
    free (text);
    text = sb_mcp_listen_end ("12", "9.9");
    assert_string_equal (text, "{\"jsonrpc\":\"2.0\",\"id\":12,\"result\":{\"resultType\":\"complete\","
                               "\"_meta\":{\"" META_ID "\":12,\"io.modelcontextprotocol/serverInfo\":"
                               "{\"name\":\"switchboard\",\"version\":\"9.9\"}}}}");
    free (text);
    assert_null (sb_mcp_listen_end ("not json", "9.9"));
    assert_null (sb_mcp_listen_note (NULL, "notifications/tools/list_changed", NULL));
    sb_connectors_destroy (&connectors);
}

//  ---------------------------------------------------------------------------
//  Unit: the listen table

static void
test_listen_table (void **state)
{
    sb_subs_t *subs = sb_subs_new ();
    const char *uris [] = { "test://a", "test://b", "test://a" };
    sb_subs_listener_t *first = NULL, *second = NULL;
    assert_int_equal (sb_subs_listen_add (subs, "acme", "1", SB_LIST_TOOLS, uris, 3, &first), SB_SUBS_OK);
    assert_int_equal (sb_subs_listen_add (subs, "acme", "\"x\"", 0, NULL, 0, &second), SB_SUBS_OK);
    assert_int_equal (sb_subs_listen_uri_count (first), 2);         //  "test://a" once
    assert_string_equal (sb_subs_listen_uri (first, 1), "test://b");
    assert_null (sb_subs_listen_uri (first, 2));
    assert_string_equal (sb_subs_listen_id (second), "\"x\"");
    assert_int_equal (sb_subs_listeners (subs, "acme"), 2);
    assert_int_equal (sb_subs_listeners (subs, "globex"), 0);
    size_t bytes = 5 + 2 + 9 + 9 + 5 + 4;
    assert_int_equal (sb_subs_bytes (subs), bytes);
    uint64_t number = sb_subs_listen_number (first);
    assert_ptr_equal (sb_subs_listen_lookup (subs, number), first);
    int stream = 0;
    sb_subs_listen_set_stream (first, &stream);
    assert_ptr_equal (sb_subs_listen_stream (first), &stream);
    sb_subs_listen_remove (&first);
    sb_subs_listen_remove (&first);
    assert_null (first);
    assert_null (sb_subs_listen_lookup (subs, number));         //  numbers are never reused
    assert_int_equal (sb_subs_listeners (subs, NULL), 1);
    sb_subs_listen_remove (&second);
    assert_int_equal (sb_subs_bytes (subs), 0);

    //  Refusals leave nothing behind.
    sb_subs_listener_t *l = (sb_subs_listener_t *) &stream;
    assert_int_equal (sb_subs_listen_add (subs, "", "1", 0, NULL, 0, &l), SB_SUBS_INVALID);
    assert_null (l);
    assert_int_equal (sb_subs_listen_add (subs, "acme", "", 0, NULL, 0, &l), SB_SUBS_INVALID);
    const char *many [SB_MAX_LISTEN_URIS + 1];
    for (int i = 0; i <= SB_MAX_LISTEN_URIS; i++)
        many [i] = "test://a";
    assert_int_equal (sb_subs_listen_add (subs, "acme", "1", 0, many, SB_MAX_LISTEN_URIS + 1, &l),
                      SB_SUBS_TOO_MANY_URIS);
    char *huge = calloc (1, SB_MAX_SUB_URI_LEN + 2);
    memset (huge, 'u', SB_MAX_SUB_URI_LEN + 1);
    const char *one_huge [] = { huge };
    assert_int_equal (sb_subs_listen_add (subs, "acme", "1", 0, one_huge, 1, &l), SB_SUBS_URI_TOO_LONG);
    huge [SB_MAX_SUB_URI_LEN] = 0;                              //  at the limit: fine

    //  SB_MAX_SUBS_BYTES: listeners of 64 URIs of SB_MAX_SUB_URI_LEN bytes
    //  fill it long before SB_MAX_LISTEN_PER_TENANT.
    const char *big [SB_MAX_LISTEN_URIS];
    char *texts [SB_MAX_LISTEN_URIS];
    for (int i = 0; i < SB_MAX_LISTEN_URIS; i++) {
        texts [i] = strdup (huge);
        snprintf (texts [i], 16, "test://%08d", i);
        texts [i] [15] = 'u';
        big [i] = texts [i];
    }
    size_t added = 0;
    int rc;
    while ((rc = sb_subs_listen_add (subs, "acme", "1", 0, big, SB_MAX_LISTEN_URIS, &l)) == SB_SUBS_OK)
        added++;
    assert_int_equal (rc, SB_SUBS_TABLE_FULL);
    assert_true (added < SB_MAX_LISTEN_PER_TENANT);
    assert_true (sb_subs_bytes (subs) <= SB_MAX_SUBS_BYTES);
    assert_non_null (strstr (sb_subs_strerror (rc), "try again later"));
    for (int i = 0; i < SB_MAX_LISTEN_URIS; i++)
        free (texts [i]);
    free (huge);
    sb_subs_destroy (&subs);                //  frees the listeners still held

    //  SB_MAX_LISTEN_PER_TENANT, then SB_MAX_LISTEN_STREAMS across tenants.
    subs = sb_subs_new ();
    for (int i = 0; i < SB_MAX_LISTEN_PER_TENANT; i++)
        assert_int_equal (sb_subs_listen_add (subs, "acme", "1", 0, NULL, 0, &l), SB_SUBS_OK);
    assert_int_equal (sb_subs_listen_add (subs, "acme", "1", 0, NULL, 0, &l), SB_SUBS_TENANT_FULL);
    assert_non_null (strstr (sb_subs_strerror (SB_SUBS_TENANT_FULL), "already has 256"));
    char tenant [32];
    int t = 0;
    sb_subs_listener_t *last = NULL;
    while (sb_subs_listeners (subs, NULL) < SB_MAX_LISTEN_STREAMS) {
        snprintf (tenant, sizeof tenant, "tenant-%d", t++ / SB_MAX_LISTEN_PER_TENANT);
        assert_int_equal (sb_subs_listen_add (subs, tenant, "1", 0, NULL, 0, &last), SB_SUBS_OK);
    }
    assert_int_equal (sb_subs_listen_add (subs, "fresh", "1", 0, NULL, 0, &l), SB_SUBS_LISTEN_FULL);
    assert_null (l);
    assert_non_null (strstr (sb_subs_strerror (SB_SUBS_LISTEN_FULL), "as many subscriptions/listen"));
    //  One leaves: room for one.
    sb_subs_listen_remove (&last);
    assert_int_equal (sb_subs_listen_add (subs, "fresh", "1", 0, NULL, 0, &l), SB_SUBS_OK);
    sb_subs_destroy (&subs);
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

#define WAIT_FOR(cond) do { \
    int64_t deadline_ = s_now_ms () + WAIT_MS; \
    while (!(cond) && s_now_ms () < deadline_) \
        sb_gateway_poll (s_gw, 5); \
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
    bool leave;                 /* set: the client goes away (closes the connection) */
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

//  Curl's progress callback: non-zero aborts the transfer (the client leaves).
static int
s_on_progress (void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow)
{
    s_http_t *h = userdata;
    pthread_mutex_lock (&h->lock);
    bool leave = h->leave;
    pthread_mutex_unlock (&h->lock);
    return leave? 1: 0;
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
    curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, s_on_progress);
    curl_easy_setopt (curl, CURLOPT_XFERINFODATA, h);
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
//  be NULL or ""), with up to 4 extra headers (NULL-terminated, may be NULL).
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

//  A copy of the body so far (new string).
static char *
s_body (s_http_t *h)
{
    pthread_mutex_lock (&h->lock);
    char *copy = strdup (h->body? h->body: "");
    pthread_mutex_unlock (&h->lock);
    return copy;
}

//  The data of the complete SSE events so far, or of a JSON body (new array).
static json_t *
s_events (s_http_t *h)
{
    json_t *events = json_array ();
    char *copy = s_body (h);
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
s_rpc (const char *token, const char *session, const char **extra, const char *body, long *status)
{
    s_http_t *h = s_start ("POST", token, session, extra, body);
    s_finish (h);
    if (status)
        *status = h->status;
    json_t *events = s_events (h);
    json_t *reply = json_incref (json_array_get (events, json_array_size (events) - 1));
    json_decref (events);
    s_free (h);
    assert_non_null (reply);
    return reply;
}

//  The next `count` events of stream `h` as "method", "method uri" or
//  "result", each followed by "#<subscriptionId>" when it carries one,
//  joined by "; " (new string); waits for them.
static char *
s_next_events (s_http_t *h, size_t count)
{
    WAIT_FOR (s_event_count (h) >= h->seen + count);
    json_t *events = s_events (h);
    char text [2048] = "";
    for (size_t i = h->seen; i < h->seen + count; i++) {
        json_t *event = json_array_get (events, i);
        json_t *result = json_object_get (event, "result");
        const char *method = result? "result": json_string_value (json_object_get (event, "method"));
        json_t *params = result? result: json_object_get (event, "params");
        const char *uri = json_string_value (json_object_get (params, "uri"));
        json_t *tag = json_object_get (json_object_get (params, "_meta"), META_ID);
        char *tag_text = tag? json_dumps (tag, JSON_ENCODE_ANY): NULL;
        size_t used = strlen (text);
        snprintf (text + used, sizeof text - used, "%s%s%s%s%s%s", used? "; ": "",
                  method? method: "?", uri? " ": "", uri? uri: "", tag? "#": "", tag_text? tag_text: "");
        free (tag_text);
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

//  A listen stream open, its acknowledgement received and checked against
//  `honoured` (the notifications object, compact with sorted keys).
static s_http_t *
s_listen (const char *token, const char *id, const char *filter, const char *honoured)
{
    char *body = s_listen_body (id, filter);
    s_http_t *h = s_start ("POST", token, NULL, s_listen_headers, body);
    free (body);
    WAIT_FOR (s_event_count (h) >= 1);
    assert_false (s_done (h));
    json_t *events = s_events (h);
    json_t *ack = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (ack, "method")),
                         "notifications/subscriptions/acknowledged");
    json_t *params = json_object_get (ack, "params");
    char *tag = json_dumps (json_object_get (json_object_get (params, "_meta"), META_ID), JSON_ENCODE_ANY);
    assert_string_equal (tag, id);
    free (tag);
    char *got = json_dumps (json_object_get (params, "notifications"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal (got, honoured);
    free (got);
    json_decref (events);
    h->seen = 1;
    //  2026-07-28 has no resumption: no event IDs.
    char *text = s_body (h);
    assert_null (strstr (text, "id:"));
    free (text);
    return h;
}

//  ---------------------------------------------------------------------------
//  Raw connections (many at once, in this thread)

typedef struct {
    int fd;                     /* -1: closed */
    char buf [8192];            /* what came, NUL-terminated (the start is enough) */
    size_t len;
} s_raw_t;

//  Connects and sends a listen request as `token` with id `id`.
static void
s_raw_listen (s_raw_t *raw, const char *token, int id)
{
    raw->fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (raw->fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) s_port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (connect (raw->fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char number [16];
    snprintf (number, sizeof number, "%d", id);
    char *body = s_listen_body (number, "{\"toolsListChanged\":true}");
    char *request = zsys_sprintf ("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                                  "Accept: application/json, text/event-stream\r\n"
                                  "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n"
                                  "Content-Length: %zu\r\n\r\n%s", s_port, token, strlen (body), body);
    size_t len = strlen (request);
    assert_int_equal (send (raw->fd, request, len, 0), (ssize_t) len);
    free (request);
    free (body);
    fcntl (raw->fd, F_SETFL, fcntl (raw->fd, F_GETFL) | O_NONBLOCK);
    raw->len = 0;
    raw->buf [0] = 0;
}

//  Reads what came on every open connection; true when each of them holds `text`.
static bool
s_raw_all_have (s_raw_t *raws, size_t count, const char *text)
{
    bool all = true;
    for (size_t i = 0; i < count; i++) {
        s_raw_t *raw = &raws [i];
        if (raw->fd < 0)
            continue;
        while (raw->len < sizeof raw->buf - 1) {
            ssize_t n = recv (raw->fd, raw->buf + raw->len, sizeof raw->buf - 1 - raw->len, 0);
            if (n <= 0)
                break;
            raw->len += (size_t) n;
            raw->buf [raw->len] = 0;
        }
        all = all && strstr (raw->buf, text);
    }
    return all;
}

static void
s_raw_close (s_raw_t *raw)
{
    close (raw->fd);
    raw->fd = -1;
}

//  ---------------------------------------------------------------------------
//  Fixture

static char *
s_issue_for (const char *tenant, int64_t lifetime_s)
{
    sb_token_claims_t c;
    memset (&c, 0, sizeof c);
    snprintf (c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf (c.subject, sizeof c.subject, "tester");
    snprintf (c.audience, sizeof c.audience, "%s/mcp", s_base);
    c.issued_at = time (NULL) - 10;
    c.expires_at = time (NULL) + lifetime_s;
    return sb_token_issue (&c, s_key, sizeof s_key);
}

static char *
s_issue (const char *tenant)
{
    return s_issue_for (tenant, 3600);
}

static int
s_setup (void **state)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    zsys_init ();
    zsys_handler_set (NULL);
    signal (SIGPIPE, SIG_IGN);          //  as sb-gateway's main: clients leave mid-stream
    sb_log_init ("gateway-test", SB_LOG_INFO);
    if (sb_crypto_random (s_key, sizeof s_key))
        return -1;
    snprintf (s_key_path, sizeof s_key_path, "/tmp/sb-30-listen-key-%d", (int) getpid ());
    FILE *file = fopen (s_key_path, "w");
    char hex [65];
    sb_hex_encode (s_key, sizeof s_key, hex);
    fprintf (file, "%s\n", hex);
    fclose (file);
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-30-listen-%d", (int) getpid ());
    if (mkdir (s_dir, 0700))
        return -1;
    s_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");

    s_port = sb_harness_free_port ();
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", s_port);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", s_port);
    //  No broker: nothing here sends a job (the DEALER connects to nothing).
    char *argv [] = {
        "sb-gateway", "--listen", listen, "--broker", "tcp://127.0.0.1:9", "--token-key-file",
        s_key_path, "--connectors", s_dir, "--public-url", s_base, NULL
    };
    sb_config_t *config = sb_config_new ("sb-gateway", sb_gateway_options);
    if (!config || sb_config_load (config, 11, argv))
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
        sb_gateway_stop (s_gw);
        int rc = sb_gateway_run (s_gw);
        sb_gateway_destroy (&s_gw);
        if (rc)
            return -1;
    }
    free (s_token);
    free (s_other);
    unlink (s_key_path);
    char path [256];
    snprintf (path, sizeof path, "%s/notes.json", s_dir);
    unlink (path);
    rmdir (s_dir);
    curl_global_cleanup ();
    return 0;
}

//  ---------------------------------------------------------------------------
//  Through the gateway

//  A session of an older revision with its GET stream: it must hear the
//  untagged notifications, and the listen streams none of its own.
static char *
s_legacy_session (s_http_t **stream_p)
{
    s_http_t *h = s_start ("POST", s_token, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    s_finish (h);
    assert_int_equal (h->status, 200);
    char *session = strdup (h->session);
    s_free (h);
    *stream_p = s_start ("GET", s_token, session, NULL, NULL);
    WAIT_FOR (s_has (*stream_p, "\n\n"));
    json_t *reply = s_rpc (s_token, session, NULL, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":"
                           "\"resources/subscribe\",\"params\":{\"uri\":\"test://note/two\"}}", NULL);
    assert_true (json_is_object (json_object_get (reply, "result")));
    json_decref (reply);
    return session;
}

//  A stream never outlives the token that opened it: a listen stream and
//  an older revision's GET stream both end (cleanly, the listen stream's
//  table entry gone too) once their token expires. (Streams opened with
//  the hour-long token stay open through the tests below.)
static void
test_streams_expire (void **state)
{
    char *brief = s_issue_for ("acme", 2);
    size_t listeners = sb_subs_listeners (s_gw->subs, NULL);
    s_http_t *listen = s_listen (brief, "51", "{\"toolsListChanged\":true}", "{\"toolsListChanged\":true}");
    s_http_t *h = s_start ("POST", brief, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    s_finish (h);
    assert_int_equal (h->status, 200);
    s_http_t *get = s_start ("GET", brief, h->session, NULL, NULL);
    s_free (h);
    WAIT_FOR (s_has (get, "\n\n"));
    assert_int_equal (sb_subs_listeners (s_gw->subs, NULL), listeners + 1);
    s_finish (listen);
    s_finish (get);
    assert_int_equal (listen->status, 200);
    assert_int_equal (get->status, 200);
    assert_int_equal (sb_subs_listeners (s_gw->subs, NULL), listeners);
    s_free (listen);
    s_free (get);
    free (brief);
}

static void
test_listen_delivers (void **state)
{
    //  A: tools and resources lists, two URIs (and one unknown, left out);
    //  B: prompts only, a string id; C: nothing at all.
    s_http_t *a = s_listen (s_token, "41", "{\"toolsListChanged\":true,\"resourcesListChanged\":true,"
                            "\"resourceSubscriptions\":[\"test://note/one\",\"test://note/7/raw\","
                            "\"test://missing\"]}",
                            "{\"resourceSubscriptions\":[\"test://note/one\",\"test://note/7/raw\"],"
                            "\"resourcesListChanged\":true,\"toolsListChanged\":true}");
    s_http_t *b = s_listen (s_other, "\"b\"", "{\"promptsListChanged\":true,\"toolsListChanged\":false}",
                            "{\"promptsListChanged\":true}");
    s_http_t *c = s_listen (s_token, "43", "{}", "{}");
    s_http_t *legacy = NULL;
    char *session = s_legacy_session (&legacy);
    assert_int_equal (sb_subs_listeners (s_gw->subs, NULL), 3);
    assert_int_equal (sb_subs_listeners (s_gw->subs, "acme"), 2);
    assert_int_equal (sb_sse_count (s_gw->sse, "tenant:acme"), 0);     //  not session streams

    //  1. A tool more, "one" edited, "three" gone, "two" edited.
    s_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (a, 3, "notifications/tools/list_changed#41; notifications/resources/list_changed#41; "
                    "notifications/resources/updated test://note/one#41");
    s_expect (legacy, 3, "notifications/tools/list_changed; notifications/resources/list_changed; "
                         "notifications/resources/updated test://note/two");

    //  No request takes over a listen stream: its number is never given
    //  out, and a Last-Event-ID naming it (the gateway's tag read from the
    //  legacy stream's event IDs) resumes nothing, as tenant acme without
    //  a session (what a listen stream's owner looks like) or otherwise.
    char *legacy_text = s_body (legacy);
    const char *event_id = strstr (legacy_text, "id: ");
    assert_non_null (event_id);
    char tag [16] = "";
    assert_int_equal (sscanf (event_id + 4, "%8[0-9a-f]", tag), 1);
    free (legacy_text);
    for (int n = 1; n <= 8; n++) {
        char header [64];
        snprintf (header, sizeof header, "Last-Event-ID: %s.%d.0", tag, n);
        const char *extra [] = { header, NULL };
        s_http_t *h = s_start ("GET", s_token, NULL, extra, NULL);
        s_finish (h);
        assert_int_equal (h->status, 400);
        s_free (h);
    }

    //  2. The template's text and the prompt: A hears of its templated
    //  URI, B of the prompts, and that is the next thing each gets, so
    //  reload 1 sent B nothing.
    s_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (a, 1, "notifications/resources/updated test://note/7/raw#41");
    s_expect (b, 1, "notifications/prompts/list_changed#\"b\"");
    s_expect (legacy, 1, "notifications/prompts/list_changed");

    //  3. Only the tools: A hears; B and C never do (checked at the end:
    //  their next event is the closing result).
    s_write (s_dir, "note_tool", "FIRST", "SECOND", NULL, "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (a, 1, "notifications/tools/list_changed#41");
    s_expect (legacy, 1, "notifications/tools/list_changed");
    //  The legacy stream never got a tagged notification or an
    //  acknowledgement, nor the listen streams an untagged one.
    assert_false (s_has (legacy, META_ID));
    assert_false (s_has (legacy, "acknowledged"));
    char *text = s_body (a);
    assert_null (strstr (text, "id:"));
    free (text);

    //  A leaves: its subscription is forgotten, nobody else's.
    pthread_mutex_lock (&a->lock);
    a->leave = true;
    pthread_mutex_unlock (&a->lock);
    WAIT_FOR (s_done (a));
    pthread_join (a->thread, NULL);
    assert_int_equal (a->rc, CURLE_ABORTED_BY_CALLBACK);
    WAIT_FOR (sb_subs_listeners (s_gw->subs, NULL) == 2);
    assert_int_equal (sb_subs_listeners (s_gw->subs, "acme"), 1);
    s_write (s_dir, "note_tool,note_tool_3", "FIRST!", "SECOND", NULL, "RAW {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (s_gw), 0);
    s_expect (b, 1, "notifications/prompts/list_changed#\"b\"");

    //  The end of the older session's stream, as before.
    s_http_t *h = s_start ("DELETE", s_token, session, NULL, NULL);
    s_finish (h);
    s_free (h);
    s_finish (legacy);
    s_free (legacy);
    free (session);
    //  B and C stay open for test_listen_stop.
    s_free (a);
    s_open = zlistx_new ();
    zlistx_add_end (s_open, b);
    zlistx_add_end (s_open, c);
}

static void
test_listen_limits (void **state)
{
    //  A URI list past the limit: -32602, a sentence.
    char *many = strdup ("{\"resourceSubscriptions\":[");
    for (int i = 0; i <= SB_MAX_LISTEN_URIS; i++) {
        char *grown = zsys_sprintf ("%s%s\"test://note/%d/raw\"", many, i? ",": "", i);
        free (many);
        many = grown;
    }
    char *filter = zsys_sprintf ("%s]}", many);
    char *body = s_listen_body ("8", filter);
    long status = 0;
    json_t *reply = s_rpc (s_token, NULL, s_listen_headers, body, &status);
    assert_int_equal (status, 200);
    json_t *error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32602);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")),
                             "at most 64 resources"));
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 8);
    json_decref (reply);
    free (body);
    free (filter);
    free (many);

    //  SB_MAX_LISTEN_PER_TENANT streams of acme (besides the one test 2
    //  left open), then a clear refusal; globex is not affected.
    size_t before = sb_subs_listeners (s_gw->subs, "acme");
    size_t count = SB_MAX_LISTEN_PER_TENANT - before;
    s_raw_t *raws = calloc (count + 2, sizeof *raws);
    for (size_t i = 0; i < count; i++)
        s_raw_listen (&raws [i], s_token, (int) (1000 + i));
    WAIT_FOR (s_raw_all_have (raws, count, "notifications/subscriptions/acknowledged"));
    assert_int_equal (sb_subs_listeners (s_gw->subs, "acme"), SB_MAX_LISTEN_PER_TENANT);
    s_raw_listen (&raws [count], s_token, 9999);
    WAIT_FOR (s_raw_all_have (&raws [count], 1, "\"error\""));
    assert_non_null (strstr (raws [count].buf, "HTTP/1.1 200"));
    assert_non_null (strstr (raws [count].buf, "-32000"));
    assert_non_null (strstr (raws [count].buf, "already has 256 subscriptions/listen streams open"));
    assert_non_null (strstr (raws [count].buf, "\"id\":9999"));
    s_raw_close (&raws [count]);
    s_raw_listen (&raws [count + 1], s_other, 7);
    WAIT_FOR (s_raw_all_have (&raws [count + 1], 1, "notifications/subscriptions/acknowledged"));

    //  One client leaves: its stream and slot are freed (found by the
    //  next keep-alive write), and a new stream fits.
    s_raw_close (&raws [0]);
    WAIT_FOR (sb_subs_listeners (s_gw->subs, "acme") == SB_MAX_LISTEN_PER_TENANT - 1);
    s_raw_listen (&raws [0], s_token, 10000);
    WAIT_FOR (s_raw_all_have (&raws [0], 1, "notifications/subscriptions/acknowledged"));
    assert_int_equal (sb_subs_listeners (s_gw->subs, "acme"), SB_MAX_LISTEN_PER_TENANT);

    //  All of them leave.
    for (size_t i = 0; i < count + 2; i++)
        if (raws [i].fd >= 0)
            s_raw_close (&raws [i]);
    WAIT_FOR (sb_subs_listeners (s_gw->subs, "acme") == before);
    WAIT_FOR (sb_subs_listeners (s_gw->subs, "globex") == 1);      //  test 2's B
    free (raws);

    //  A gateway that is stopping takes no new stream: 503, a sentence.
    s_gw->stop = 1;
    body = s_listen_body ("9", "{}");
    reply = s_rpc (s_token, NULL, s_listen_headers, body, &status);
    s_gw->stop = 0;
    free (body);
    assert_int_equal (status, 503);
    error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32000);
    assert_non_null (strstr (json_string_value (json_object_get (error, "message")), "stopping"));
    json_decref (reply);
}

static void
test_listen_stop (void **state)
{
    assert_non_null (s_open);
    s_http_t *b = zlistx_first (s_open);
    s_http_t *c = zlistx_next (s_open);
    //  One more, opened just now, with a resource.
    s_http_t *d = s_listen (s_token, "\"last\"", "{\"resourceSubscriptions\":[\"test://note/two\"]}",
                            "{\"resourceSubscriptions\":[\"test://note/two\"]}");
    assert_int_equal (sb_subs_listeners (s_gw->subs, NULL), 3);

    //  The gateway stops: each listen stream gets the listen result as the
    //  response to its request, then ends.
    sb_gateway_stop (s_gw);
    assert_int_equal (sb_gateway_run (s_gw), 0);
    assert_int_equal (sb_subs_listeners (s_gw->subs, NULL), 0);
    s_http_t *streams [] = { b, c, d };
    const char *ids [] = { "\"b\"", "43", "\"last\"" };
    for (int i = 0; i < 3; i++) {
        pthread_join (streams [i]->thread, NULL);
        assert_true (streams [i]->done);
        assert_int_equal (streams [i]->rc, 0);
        assert_int_equal (streams [i]->status, 200);
        json_t *events = s_events (streams [i]);
        assert_int_equal (json_array_size (events), streams [i]->seen + 1);
        json_t *last = json_array_get (events, streams [i]->seen);
        char *id = json_dumps (json_object_get (last, "id"), JSON_ENCODE_ANY);
        assert_string_equal (id, ids [i]);
        free (id);
        json_t *result = json_object_get (last, "result");
        assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
        char *tag = json_dumps (json_object_get (json_object_get (result, "_meta"), META_ID), JSON_ENCODE_ANY);
        assert_string_equal (tag, ids [i]);
        free (tag);
        assert_non_null (json_object_get (json_object_get (result, "_meta"),
                                          "io.modelcontextprotocol/serverInfo"));
        json_decref (events);
        s_free (streams [i]);
    }
    zlistx_destroy (&s_open);
    sb_gateway_destroy (&s_gw);
}

int
main (void)
{
    //  In this order: each gateway case uses the streams the one before left.
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_filter_checked),
        cmocka_unit_test (test_listen_table),
        cmocka_unit_test (test_streams_expire),
        cmocka_unit_test (test_listen_delivers),
        cmocka_unit_test (test_listen_limits),
        cmocka_unit_test (test_listen_stop),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
