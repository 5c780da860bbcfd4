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

#include "sb_clock.h"
#include "sb_config.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_token.h"
#include "sb_cluster.h"
#include "sb_gateway_int.h"
#include "sb_lists.h"
#include "sb_harness.h"
#include "sb_keyfile.h"
#include "30_gateway_inproc.h"


static int s_port;              /* its port */
static char s_dir [128];        /* the connectors folder */
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
    json_t *reply = json_loads (out.as.reply.body, 0, NULL);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 5);
    json_t *error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32602);
    const char *message = json_string_value (json_object_get (error, "message"));
    if (!strstr (message, words))
        fail_msg ("'%s' does not say '%s'", message, words);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
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
    assert_non_null (strstr (out.as.reply.body, "-32602"));
    assert_non_null (strstr (out.as.reply.body, "at most 256 bytes of JSON"));
    sb_mcp_outcome_clear (&out);

    //  Honoured: the lists asked true, the URIs that exist now (a template
    //  counts), each once; false, unknown keys and unknown URIs left out.
    s_handle (connectors, "\"sub-1\"", "{\"toolsListChanged\":true,\"promptsListChanged\":false,"
              "\"resourcesListChanged\":true,\"tasks\":true,\"resourceSubscriptions\":"
              "[\"test://note/one\",\"test://nothing\",\"test://note/7/raw\",\"test://note/one\"]}", &out);
    assert_int_equal (out.action, SB_MCP_LISTEN);
    assert_int_equal (out.as.listen.lists, SB_LIST_TOOLS | SB_LIST_RESOURCES);
    assert_string_equal (json_string_value (out.as.listen.id), "sub-1");
    char *uris = json_dumps (out.as.listen.uris, JSON_COMPACT);
    assert_string_equal (uris, "[\"test://note/one\",\"test://note/7/raw\"]");
    free (uris);
    json_t *ack = json_loads (out.as.listen.body, 0, NULL);
    assert_null (json_object_get (ack, "id"));
    assert_string_equal (json_string_value (json_object_get (ack, "method")),
                         "notifications/subscriptions/acknowledged");
    json_t *params = json_object_get (ack, "params");
    assert_string_equal (json_string_value (json_object_get (json_object_get (params, "_meta"), GI_META_ID)),
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
    assert_int_equal (out.as.listen.lists, 0);
    assert_null (out.as.listen.uris);
    assert_non_null (strstr (out.as.listen.body, "\"notifications\":{}"));
    assert_non_null (strstr (out.as.listen.body, "\"" GI_META_ID "\":3"));
    sb_mcp_outcome_clear (&out);

    //  Older revisions have no such method.
    sb_mcp_env_t env = { .connectors = connectors, .version = "9.9" };
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscriptions/listen\","
                       "\"params\":{\"notifications\":{}}}";
    sb_mcp_handle (&env, body, strlen (body), &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    assert_non_null (strstr (out.as.reply.body, "-32601"));
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
    json_t *reply = json_loads (out.as.reply.body, 0, NULL);
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
                               "\"params\":{\"_meta\":{\"" GI_META_ID "\":\"a\\\"b\"},\"uri\":\"test://x?\\\"q\\\"\"}}");
    free (text);
    text = sb_mcp_listen_note ("12", "notifications/tools/list_changed", NULL);
    assert_string_equal (text, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\","
                               "\"params\":{\"_meta\":{\"" GI_META_ID "\":12}}}");
    free (text);
    text = sb_mcp_listen_end ("12", "9.9");
    assert_string_equal (text, "{\"jsonrpc\":\"2.0\",\"id\":12,\"result\":{\"resultType\":\"complete\","
                               "\"_meta\":{\"" GI_META_ID "\":12,\"io.modelcontextprotocol/serverInfo\":"
                               "{\"name\":\"switchboard\",\"version\":\"9.9\"}}}}");
    free (text);
    assert_null (sb_mcp_listen_end ("not json", "9.9"));
    assert_null (sb_mcp_listen_note (NULL, "notifications/tools/list_changed", NULL));
    sb_connectors_destroy (&connectors);
}

//  ---------------------------------------------------------------------------
//  Unit: the listen table

//  taskIds (the tasks extension declared): an array of at most 16; the
//  ids that could be ours are followed and acknowledged, once each.
static void
s_handle_tasks (const char *task_ids, sb_mcp_outcome_t *out)
{
    sb_mcp_headers_t headers = {
        .protocol = "2026-07-28", .protocol_len = 10,
        .method = "subscriptions/listen", .method_len = strlen ("subscriptions/listen"),
    };
    sb_mcp_env_t env = { .version = "9.9", .headers = &headers };
    char *body = zsys_sprintf ("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\",\"params\":"
                               "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
                               "\"io.modelcontextprotocol/clientCapabilities\":{\"extensions\":"
                               "{\"io.modelcontextprotocol/tasks\":{}}}},\"notifications\":"
                               "{\"taskIds\":%s}}}", task_ids);
    sb_mcp_handle (&env, body, strlen (body), out);
    zstr_free (&body);
}

static void
test_filter_task_ids (void **state)
{
    sb_mcp_outcome_t out;
    s_handle_tasks ("[\"AAAAAAAAAAAAAAAAAAAAAA\",\"b_-9\",\"AAAAAAAAAAAAAAAAAAAAAA\",\"no spaces\",7,\"\"]", &out);
    assert_int_equal (out.action, SB_MCP_LISTEN);
    char *tasks = json_dumps (out.as.listen.tasks, JSON_COMPACT);
    assert_string_equal (tasks, "[\"AAAAAAAAAAAAAAAAAAAAAA\",\"b_-9\"]");
    free (tasks);
    assert_non_null (strstr (out.as.listen.body, "\"taskIds\":[\"AAAAAAAAAAAAAAAAAAAAAA\",\"b_-9\"]"));
    sb_mcp_outcome_clear (&out);

    s_handle_tasks ("\"AAAA\"", &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    assert_non_null (strstr (out.as.reply.body, "-32602"));
    assert_non_null (strstr (out.as.reply.body, "taskIds must be an array"));
    sb_mcp_outcome_clear (&out);
    char many [512] = "[";
    for (int i = 0; i < SB_MAX_LISTEN_TASKS + 1; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%s\"t%d\"", i? ",": "", i);
    strcat (many, "]");
    s_handle_tasks (many, &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    assert_non_null (strstr (out.as.reply.body, "at most 16"));
    sb_mcp_outcome_clear (&out);
    //  Without them: no list to follow.
    s_handle (NULL, "1", "{\"toolsListChanged\":true}", &out);
    assert_int_equal (out.action, SB_MCP_LISTEN);
    assert_null (out.as.listen.tasks);
    sb_mcp_outcome_clear (&out);
}

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
//  Listen streams

//  A listen stream open, its acknowledgement received and checked against
//  `honoured` (the notifications object, compact with sorted keys).
static gi_http_t *
s_listen (const char *token, const char *id, const char *filter, const char *honoured)
{
    char *body = s_listen_body (id, filter);
    gi_http_t *h = gi_start ("POST", token, NULL, s_listen_headers, body);
    free (body);
    GI_WAIT_FOR (gi_event_count (h) >= 1);
    assert_false (gi_done (h));
    json_t *events = gi_events (h);
    json_t *ack = json_array_get (events, 0);
    assert_string_equal (json_string_value (json_object_get (ack, "method")),
                         "notifications/subscriptions/acknowledged");
    json_t *params = json_object_get (ack, "params");
    char *tag = json_dumps (json_object_get (json_object_get (params, "_meta"), GI_META_ID), JSON_ENCODE_ANY);
    assert_string_equal (tag, id);
    free (tag);
    char *got = json_dumps (json_object_get (params, "notifications"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal (got, honoured);
    free (got);
    json_decref (events);
    h->seen = 1;
    //  2026-07-28 has no resumption: no event IDs.
    char *text = gi_body (h);
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

static int
s_setup (void **state)
{
    zsys_init ();
    zsys_handler_set (NULL);
    signal (SIGPIPE, SIG_IGN);          //  as sb-gateway's main: clients leave mid-stream
    sb_log_init ("gateway-test", SB_LOG_INFO);
    if (gi_key_make ("listen"))
        return -1;
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-30-listen-%d", (int) getpid ());
    if (mkdir (s_dir, 0700))
        return -1;
    gi_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");

    s_port = sb_harness_free_port ();
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", s_port);
    snprintf (gi_base, sizeof gi_base, "http://127.0.0.1:%d", s_port);
    //  No broker: nothing here sends a job (the DEALER connects to nothing).
    char *argv [] = {
        "sb-gateway", "--listen", listen, "--broker", "tcp://127.0.0.1:9", "--token-key-file",
        gi_key_path, "--session-key-file", gi_session_key_path, "--connectors", s_dir,
        "--public-url", gi_base, NULL
    };
    sb_config_t *config = sb_config_new ("sb-gateway", sb_gateway_options);
    if (!config || sb_config_load (config, (int) (sizeof argv / sizeof argv [0]) - 1, argv))
        return -1;
    gi_gw = sb_gateway_new (config);
    sb_config_destroy (&config);
    s_token = gi_issue ("acme", 3600);
    s_other = gi_issue ("globex", 3600);
    return gi_gw && s_token && s_other? 0: -1;
}

static int
s_teardown (void **state)
{
    if (gi_gw) {
        sb_gateway_stop (gi_gw);
        int rc = sb_gateway_run (gi_gw);
        sb_gateway_destroy (&gi_gw);
        if (rc)
            return -1;
    }
    free (s_token);
    free (s_other);
    unlink (gi_key_path);
    unlink (gi_session_key_path);
    char path [256];
    snprintf (path, sizeof path, "%s/notes.json", s_dir);
    unlink (path);
    rmdir (s_dir);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Through the gateway
//  A new gateway on `token_key` and `session_key` files (NULL: the option
//  left out), on a free port; NULL when it refuses to start.
static sb_gateway_t *
s_gateway_with_keys (char *token_key, char *session_key)
{
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", sb_harness_free_port ());
    char *argv [16] = { "sb-gateway", "--listen", listen, "--broker", "tcp://127.0.0.1:9",
                        "--connectors", s_dir, "--public-url", gi_base };
    int argc = 9;
    if (token_key) {
        argv [argc++] = "--token-key-file";
        argv [argc++] = token_key;
    }
    if (session_key) {
        argv [argc++] = "--session-key-file";
        argv [argc++] = session_key;
    }
    argv [argc] = NULL;
    sb_config_t *config = sb_config_new ("sb-gateway", sb_gateway_options);
    assert_non_null (config);
    assert_int_equal (sb_config_load (config, argc, argv), 0);
    sb_gateway_t *gateway = sb_gateway_new (config);
    sb_config_destroy (&config);
    return gateway;
}

//  Sessions are signed with a secret of their own: a gateway does not
//  start without --session-key-file, nor with the token key as the session
//  key, nor with a short one; a session ID it issues verifies under the
//  session key's authority and not under one made from the token key.
static void
test_session_key_own (void **state)
{
    (void) state;
    assert_null (s_gateway_with_keys (gi_key_path, NULL));
    assert_null (s_gateway_with_keys (gi_key_path, gi_key_path));
    char short_key [200];
    snprintf (short_key, sizeof short_key, "%s.short", gi_key_path);
    FILE *file = fopen (short_key, "w");
    assert_non_null (file);
    fputs ("00112233\n", file);
    fclose (file);
    assert_null (s_gateway_with_keys (gi_key_path, short_key));
    unlink (short_key);

    gi_http_t *h = gi_start ("POST", s_token, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    gi_finish (h);
    assert_int_equal (h->status, 200);
    int64_t now = sb_clock_wall_ms () / 1000;
    uint8_t key [SB_MAX_TOKEN_KEY_LEN];
    size_t key_len = 0;
    sb_session_t session;
    assert_int_equal (sb_keyfile_load (gi_session_key_path, "session key", key, &key_len), 0);
    sb_sessions_t *by_session_key = sb_sessions_new (key, key_len);
    assert_int_equal (sb_sessions_verify (by_session_key, h->session, strlen (h->session), now,
                                          &session), 0);
    assert_int_equal (sb_keyfile_load (gi_key_path, "token key", key, &key_len), 0);
    sb_sessions_t *by_token_key = sb_sessions_new (key, key_len);
    assert_int_equal (sb_sessions_verify (by_token_key, h->session, strlen (h->session), now,
                                          &session), -1);
    sb_sessions_destroy (&by_session_key);
    sb_sessions_destroy (&by_token_key);
    gi_free (h);
}


//  A session of an older revision with its GET stream: it must hear the
//  untagged notifications, and the listen streams none of its own.
static char *
s_legacy_session (gi_http_t **stream_p)
{
    gi_http_t *h = gi_start ("POST", s_token, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    gi_finish (h);
    assert_int_equal (h->status, 200);
    char *session = strdup (h->session);
    gi_free (h);
    *stream_p = gi_start ("GET", s_token, session, NULL, NULL);
    GI_WAIT_FOR (gi_has (*stream_p, "\n\n"));
    json_t *reply = gi_rpc (s_token, session, NULL, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":"
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
    char *brief = gi_issue ("acme", 2);
    size_t listeners = sb_subs_listeners (gi_gw->subs, NULL);
    gi_http_t *listen = s_listen (brief, "51", "{\"toolsListChanged\":true}", "{\"toolsListChanged\":true}");
    gi_http_t *h = gi_start ("POST", brief, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
        "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    gi_finish (h);
    assert_int_equal (h->status, 200);
    gi_http_t *get = gi_start ("GET", brief, h->session, NULL, NULL);
    gi_free (h);
    GI_WAIT_FOR (gi_has (get, "\n\n"));
    assert_int_equal (sb_subs_listeners (gi_gw->subs, NULL), listeners + 1);
    gi_finish (listen);
    gi_finish (get);
    assert_int_equal (listen->status, 200);
    assert_int_equal (get->status, 200);
    assert_int_equal (sb_subs_listeners (gi_gw->subs, NULL), listeners);
    gi_free (listen);
    gi_free (get);
    free (brief);
}

//  A tenant's lists change at run time (gateway/sb_lists.h): the
//  connector's toggle tools, answered by the gateway itself, show that
//  tenant its hidden tool or prompt, or hide them again. Its listen
//  streams that follow the list and its sessions' GET streams hear
//  list_changed; another tenant's hear nothing and its lists stay as
//  they were; a broadcast from another gateway does the same as a call here.
static const char s_lists_connector [] =
    "{\"name\":\"lists\",\"title\":\"Lists\",\"description\":\"List changes\",\"auth\":{\"type\":\"none\"},"
    "\"tools\":["
    "{\"name\":\"toggle_tools\",\"description\":\"Shows or hides the hidden tools\","
    "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"toggle_hidden_tools\"}},"
    "{\"name\":\"toggle_prompts\",\"description\":\"Shows or hides the hidden prompts\","
    "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"toggle_hidden_prompts\"}},"
    "{\"name\":\"secret_tool\",\"description\":\"Hidden until shown\",\"hidden\":true,"
    "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"test_simple_text\"}}],"
    "\"prompts\":[{\"name\":\"secret_prompt\",\"description\":\"Hidden until shown\",\"hidden\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"psst\"}}]}]}";

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
    long status = 0;
    json_t *reply = gi_rpc (token, NULL, extra, body, &status);
    free (body);
    assert_non_null (reply);
    return reply;
}

//  True when `token`'s tools/list (or prompts/list: `key` "prompts") names `name`.
static bool
s_lists (const char *token, const char *key, const char *name)
{
    json_t *reply = s_modern (token, strcmp (key, "tools") == 0? "tools/list": "prompts/list", NULL, "");
    json_t *items = json_object_get (json_object_get (reply, "result"), key);
    assert_true (json_is_array (items));
    bool found = false;
    size_t i;
    json_t *item;
    json_array_foreach (items, i, item) {
        found |= strcmp (json_string_value (json_object_get (item, "name")), name) == 0;
        assert_null (json_object_get (item, "hidden"));     //  never published
    }
    json_decref (reply);
    return found;
}

//  tools/call of toggle tool `tool` as `token`: its CallToolResult's text.
static char *
s_toggle (const char *token, const char *tool)
{
    char params [128];
    snprintf (params, sizeof params, "\"name\":\"%s\",\"arguments\":{}", tool);
    json_t *reply = s_modern (token, "tools/call", tool, params);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    assert_false (json_is_true (json_object_get (result, "isError")));
    char *text = strdup (json_string_value (json_object_get (json_array_get (
        json_object_get (result, "content"), 0), "text")));
    json_decref (reply);
    return text;
}

//  Asserts that `reply` is error -32602 (an unknown tool or prompt).
static void
s_expect_unknown (json_t *reply)
{
    assert_int_equal (json_integer_value (json_object_get (json_object_get (reply, "error"), "code")),
                      -32602);
    json_decref (reply);
}

static void
test_tenant_lists_change (void **state)
{
    gi_write_file (s_dir, "lists.json", s_lists_connector);
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    assert_false (s_lists (s_token, "tools", "secret_tool"));
    assert_true (s_lists (s_token, "tools", "toggle_tools"));
    assert_false (s_lists (s_token, "prompts", "secret_prompt"));
    s_expect_unknown (s_modern (s_token, "tools/call", "secret_tool",
                                "\"name\":\"secret_tool\",\"arguments\":{}"));
    s_expect_unknown (s_modern (s_token, "prompts/get", "secret_prompt", "\"name\":\"secret_prompt\""));

    gi_http_t *mine = s_listen (s_token, "51", "{\"toolsListChanged\":true,\"promptsListChanged\":true}",
                                "{\"promptsListChanged\":true,\"toolsListChanged\":true}");
    gi_http_t *tools_only = s_listen (s_token, "52", "{\"toolsListChanged\":true}",
                                      "{\"toolsListChanged\":true}");
    gi_http_t *theirs = s_listen (s_other, "53", "{\"toolsListChanged\":true,\"promptsListChanged\":true}",
                                  "{\"promptsListChanged\":true,\"toolsListChanged\":true}");
    gi_http_t *legacy = NULL;
    char *session = s_legacy_session (&legacy);

    //  acme shows its hidden tool: acme's streams hear it, globex's do not.
    char *text = s_toggle (s_token, "toggle_tools");
    assert_non_null (strstr (text, "listed now"));
    free (text);
    gi_expect (mine, 1, "notifications/tools/list_changed#51");
    gi_expect (tools_only, 1, "notifications/tools/list_changed#52");
    gi_expect (legacy, 1, "notifications/tools/list_changed");
    assert_true (s_lists (s_token, "tools", "secret_tool"));
    assert_false (s_lists (s_other, "tools", "secret_tool"));
    s_expect_unknown (s_modern (s_other, "tools/call", "secret_tool",
                                "\"name\":\"secret_tool\",\"arguments\":{}"));

    //  The prompt: only the streams that follow prompts.
    text = s_toggle (s_token, "toggle_prompts");
    assert_non_null (strstr (text, "prompt list changed"));
    free (text);
    gi_expect (mine, 1, "notifications/prompts/list_changed#51");
    gi_expect (legacy, 1, "notifications/prompts/list_changed");
    assert_true (s_lists (s_token, "prompts", "secret_prompt"));
    json_t *reply = s_modern (s_token, "prompts/get", "secret_prompt", "\"name\":\"secret_prompt\"");
    char *dump = json_dumps (reply, JSON_COMPACT);
    assert_non_null (strstr (dump, "psst"));
    free (dump);
    json_decref (reply);
    s_expect_unknown (s_modern (s_other, "prompts/get", "secret_prompt", "\"name\":\"secret_prompt\""));

    //  globex shows its own: only globex's stream hears (acme's next events
    //  below are what acme does next).
    text = s_toggle (s_other, "toggle_tools");
    free (text);
    gi_expect (theirs, 1, "notifications/tools/list_changed#53");
    assert_true (s_lists (s_other, "tools", "secret_tool"));

    //  Another gateway's news: hidden again for acme, then shown; a payload
    //  that does not parse changes nothing.
    sb_cluster_on_broadcast (gi_gw, "acme", "lists_changed", (const uint8_t *) "tools maybe", 11);
    assert_true (s_lists (s_token, "tools", "secret_tool"));
    sb_cluster_on_broadcast (gi_gw, "acme", "lists_changed", (const uint8_t *) "tools hidden", 12);
    gi_expect (mine, 1, "notifications/tools/list_changed#51");
    gi_expect (tools_only, 1, "notifications/tools/list_changed#52");
    gi_expect (legacy, 1, "notifications/tools/list_changed");
    assert_false (s_lists (s_token, "tools", "secret_tool"));
    assert_true (s_lists (s_other, "tools", "secret_tool"));
    //  Already hidden: nothing to tell.
    sb_cluster_on_broadcast (gi_gw, "acme", "lists_changed", (const uint8_t *) "tools hidden", 12);

    //  acme hides its prompt again (a toggle): the next thing acme's
    //  streams hear, so the broadcast just above sent nothing.
    text = s_toggle (s_token, "toggle_prompts");
    assert_non_null (strstr (text, "no longer listed"));
    free (text);
    gi_expect (mine, 1, "notifications/prompts/list_changed#51");
    gi_expect (legacy, 1, "notifications/prompts/list_changed");
    assert_false (s_lists (s_token, "prompts", "secret_prompt"));
    assert_int_equal (sb_lists_shown (gi_gw->lists, "acme"), 0);
    assert_int_equal (sb_lists_shown (gi_gw->lists, "globex"), SB_LIST_TOOLS);

    //  Leave as found: globex hides its tool, the connector goes (every
    //  stream hears of that reload), the streams end.
    free (s_toggle (s_other, "toggle_tools"));
    gi_expect (theirs, 1, "notifications/tools/list_changed#53");
    assert_int_equal (sb_lists_size (gi_gw->lists), 0);
    char path [256];
    snprintf (path, sizeof path, "%s/lists.json", s_dir);
    unlink (path);
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (mine, 2, "notifications/tools/list_changed#51; notifications/prompts/list_changed#51");
    gi_expect (theirs, 2, "notifications/tools/list_changed#53; notifications/prompts/list_changed#53");
    gi_expect (tools_only, 1, "notifications/tools/list_changed#52");
    gi_http_t *streams [] = { mine, tools_only, theirs };
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock (&streams [i]->lock);
        streams [i]->leave = true;
        pthread_mutex_unlock (&streams [i]->lock);
        GI_WAIT_FOR (gi_done (streams [i]));
        pthread_join (streams [i]->thread, NULL);
        gi_free (streams [i]);
    }
    GI_WAIT_FOR (sb_subs_listeners (gi_gw->subs, NULL) == 0);
    gi_http_t *h = gi_start ("DELETE", s_token, session, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    gi_finish (legacy);
    gi_free (legacy);
    free (session);
}

//  A "subscribed" broadcast from another gateway (sb_cluster.c): applied
//  to the named session's subscriptions here when the session verifies and
//  is the broadcast's tenant's; anything else changes nothing.
static void
s_subscribed (const char *tenant, const char *payload)
{
    sb_cluster_on_broadcast (gi_gw, tenant, "subscribed", (const uint8_t *) payload, strlen (payload));
}

static void
test_subscribed_broadcast (void **state)
{
    gi_http_t *legacy = NULL;
    char *session = s_legacy_session (&legacy);     //  subscribed to test://note/two here
    sb_session_t verified;
    assert_int_equal (sb_sessions_verify (gi_gw->sessions, session, strlen (session),
                                          sb_clock_wall_ms () / 1000, &verified), 0);
    char key [2 * SB_HMAC_SHA256_LEN + 1];
    sb_hex_encode (verified.mac, sizeof verified.mac, key);
    assert_true (sb_subs_has (gi_gw->subs, key, "test://note/two"));

    char payload [1024];
    snprintf (payload, sizeof payload, "off %s test://note/two", session);
    s_subscribed ("acme", payload);
    assert_false (sb_subs_has (gi_gw->subs, key, "test://note/two"));
    snprintf (payload, sizeof payload, "on %s test://note/two", session);
    s_subscribed ("globex", payload);               //  not globex's session
    assert_false (sb_subs_has (gi_gw->subs, key, "test://note/two"));
    s_subscribed ("acme", payload);
    assert_true (sb_subs_has (gi_gw->subs, key, "test://note/two"));
    assert_int_equal (sb_subs_count (gi_gw->subs, key), 1);

    //  Forged, malformed: nothing changes.
    char *forged = strdup (session);
    forged [strlen (forged) - 2] = forged [strlen (forged) - 2] == 'A'? 'B': 'A';
    snprintf (payload, sizeof payload, "on %s test://note/one", forged);
    s_subscribed ("acme", payload);
    snprintf (payload, sizeof payload, "maybe %s test://note/one", session);
    s_subscribed ("acme", payload);
    snprintf (payload, sizeof payload, "on %s", session);
    s_subscribed ("acme", payload);
    snprintf (payload, sizeof payload, "on %s ", session);
    s_subscribed ("acme", payload);
    s_subscribed ("acme", "on");
    s_subscribed ("acme", "off ");
    sb_cluster_on_broadcast (gi_gw, "acme", "subscribed", (const uint8_t *) "on x\0y z", 8);
    assert_false (sb_subs_has (gi_gw->subs, key, "test://note/one"));
    assert_int_equal (sb_subs_count (gi_gw->subs, key), 1);
    free (forged);

    gi_http_t *h = gi_start ("DELETE", s_token, session, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    gi_finish (legacy);
    gi_free (legacy);
    free (session);
    assert_int_equal (sb_subs_count (gi_gw->subs, key), 0);
}

static void
test_listen_delivers (void **state)
{
    //  A: tools and resources lists, two URIs (and one unknown, left out);
    //  B: prompts only, a string id; C: nothing at all.
    gi_http_t *a = s_listen (s_token, "41", "{\"toolsListChanged\":true,\"resourcesListChanged\":true,"
                            "\"resourceSubscriptions\":[\"test://note/one\",\"test://note/7/raw\","
                            "\"test://missing\"]}",
                            "{\"resourceSubscriptions\":[\"test://note/one\",\"test://note/7/raw\"],"
                            "\"resourcesListChanged\":true,\"toolsListChanged\":true}");
    gi_http_t *b = s_listen (s_other, "\"b\"", "{\"promptsListChanged\":true,\"toolsListChanged\":false}",
                            "{\"promptsListChanged\":true}");
    gi_http_t *c = s_listen (s_token, "43", "{}", "{}");
    gi_http_t *legacy = NULL;
    char *session = s_legacy_session (&legacy);
    assert_int_equal (sb_subs_listeners (gi_gw->subs, NULL), 3);
    assert_int_equal (sb_subs_listeners (gi_gw->subs, "acme"), 2);
    assert_int_equal (sb_sse_count (gi_gw->sse, "tenant:acme"), 0);     //  not session streams

    //  1. A tool more, "one" edited, "three" gone, "two" edited.
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (a, 3, "notifications/tools/list_changed#41; notifications/resources/list_changed#41; "
                    "notifications/resources/updated test://note/one#41");
    gi_expect (legacy, 3, "notifications/tools/list_changed; notifications/resources/list_changed; "
                         "notifications/resources/updated test://note/two");

    //  No request takes over a listen stream: its number is never given
    //  out, and a Last-Event-ID naming it (the gateway's tag read from the
    //  legacy stream's event IDs) resumes nothing, as tenant acme without
    //  a session (what a listen stream's owner looks like) or otherwise.
    char *legacy_text = gi_body (legacy);
    const char *event_id = strstr (legacy_text, "id: ");
    assert_non_null (event_id);
    char tag [16] = "";
    assert_int_equal (sscanf (event_id + 4, "%8[0-9a-f]", tag), 1);
    free (legacy_text);
    for (int n = 1; n <= 8; n++) {
        char header [64];
        snprintf (header, sizeof header, "Last-Event-ID: %s.%d.0", tag, n);
        const char *extra [] = { header, NULL };
        gi_http_t *h = gi_start ("GET", s_token, NULL, extra, NULL);
        gi_finish (h);
        assert_int_equal (h->status, 400);
        gi_free (h);
    }

    //  2. The template's text and the prompt: A hears of its templated
    //  URI, B of the prompts, and that is the next thing each gets, so
    //  reload 1 sent B nothing.
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (a, 1, "notifications/resources/updated test://note/7/raw#41");
    gi_expect (b, 1, "notifications/prompts/list_changed#\"b\"");
    gi_expect (legacy, 1, "notifications/prompts/list_changed");

    //  3. Only the tools: A hears; B and C never do (checked at the end:
    //  their next event is the closing result).
    gi_write (s_dir, "note_tool", "FIRST", "SECOND", NULL, "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (a, 1, "notifications/tools/list_changed#41");
    gi_expect (legacy, 1, "notifications/tools/list_changed");
    //  The legacy stream never got a tagged notification or an
    //  acknowledgement, nor the listen streams an untagged one.
    assert_false (gi_has (legacy, GI_META_ID));
    assert_false (gi_has (legacy, "acknowledged"));
    char *text = gi_body (a);
    assert_null (strstr (text, "id:"));
    free (text);

    //  A leaves: its subscription is forgotten, nobody else's.
    pthread_mutex_lock (&a->lock);
    a->leave = true;
    pthread_mutex_unlock (&a->lock);
    GI_WAIT_FOR (gi_done (a));
    pthread_join (a->thread, NULL);
    assert_int_equal (a->rc, CURLE_ABORTED_BY_CALLBACK);
    GI_WAIT_FOR (sb_subs_listeners (gi_gw->subs, NULL) == 2);
    assert_int_equal (sb_subs_listeners (gi_gw->subs, "acme"), 1);
    gi_write (s_dir, "note_tool,note_tool_3", "FIRST!", "SECOND", NULL, "RAW {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (b, 1, "notifications/prompts/list_changed#\"b\"");

    //  The end of the older session's stream, as before.
    gi_http_t *h = gi_start ("DELETE", s_token, session, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    gi_finish (legacy);
    gi_free (legacy);
    free (session);
    //  B and C stay open for test_listen_stop.
    gi_free (a);
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
    json_t *reply = gi_rpc (s_token, NULL, s_listen_headers, body, &status);
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
    size_t before = sb_subs_listeners (gi_gw->subs, "acme");
    size_t count = SB_MAX_LISTEN_PER_TENANT - before;
    s_raw_t *raws = calloc (count + 2, sizeof *raws);
    for (size_t i = 0; i < count; i++)
        s_raw_listen (&raws [i], s_token, (int) (1000 + i));
    GI_WAIT_FOR (s_raw_all_have (raws, count, "notifications/subscriptions/acknowledged"));
    assert_int_equal (sb_subs_listeners (gi_gw->subs, "acme"), SB_MAX_LISTEN_PER_TENANT);
    s_raw_listen (&raws [count], s_token, 9999);
    GI_WAIT_FOR (s_raw_all_have (&raws [count], 1, "\"error\""));
    assert_non_null (strstr (raws [count].buf, "HTTP/1.1 200"));
    assert_non_null (strstr (raws [count].buf, "-32000"));
    assert_non_null (strstr (raws [count].buf, "already has 256 subscriptions/listen streams open"));
    assert_non_null (strstr (raws [count].buf, "\"id\":9999"));
    s_raw_close (&raws [count]);
    s_raw_listen (&raws [count + 1], s_other, 7);
    GI_WAIT_FOR (s_raw_all_have (&raws [count + 1], 1, "notifications/subscriptions/acknowledged"));

    //  One client leaves: its stream and slot are freed (found by the
    //  next keep-alive write), and a new stream fits.
    s_raw_close (&raws [0]);
    GI_WAIT_FOR (sb_subs_listeners (gi_gw->subs, "acme") == SB_MAX_LISTEN_PER_TENANT - 1);
    s_raw_listen (&raws [0], s_token, 10000);
    GI_WAIT_FOR (s_raw_all_have (&raws [0], 1, "notifications/subscriptions/acknowledged"));
    assert_int_equal (sb_subs_listeners (gi_gw->subs, "acme"), SB_MAX_LISTEN_PER_TENANT);

    //  All of them leave.
    for (size_t i = 0; i < count + 2; i++)
        if (raws [i].fd >= 0)
            s_raw_close (&raws [i]);
    GI_WAIT_FOR (sb_subs_listeners (gi_gw->subs, "acme") == before);
    GI_WAIT_FOR (sb_subs_listeners (gi_gw->subs, "globex") == 1);      //  test 2's B
    free (raws);

    //  A gateway that is stopping takes no new stream: 503, a sentence.
    gi_gw->stop = 1;
    body = s_listen_body ("9", "{}");
    reply = gi_rpc (s_token, NULL, s_listen_headers, body, &status);
    gi_gw->stop = 0;
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
    gi_http_t *b = zlistx_first (s_open);
    gi_http_t *c = zlistx_next (s_open);
    //  One more, opened just now, with a resource.
    gi_http_t *d = s_listen (s_token, "\"last\"", "{\"resourceSubscriptions\":[\"test://note/two\"]}",
                            "{\"resourceSubscriptions\":[\"test://note/two\"]}");
    assert_int_equal (sb_subs_listeners (gi_gw->subs, NULL), 3);

    //  The gateway stops: each listen stream gets the listen result as the
    //  response to its request, then ends.
    sb_gateway_stop (gi_gw);
    assert_int_equal (sb_gateway_run (gi_gw), 0);
    assert_int_equal (sb_subs_listeners (gi_gw->subs, NULL), 0);
    gi_http_t *streams [] = { b, c, d };
    const char *ids [] = { "\"b\"", "43", "\"last\"" };
    for (int i = 0; i < 3; i++) {
        pthread_join (streams [i]->thread, NULL);
        assert_true (streams [i]->done);
        assert_int_equal (streams [i]->rc, 0);
        assert_int_equal (streams [i]->status, 200);
        json_t *events = gi_events (streams [i]);
        assert_int_equal (json_array_size (events), streams [i]->seen + 1);
        json_t *last = json_array_get (events, streams [i]->seen);
        char *id = json_dumps (json_object_get (last, "id"), JSON_ENCODE_ANY);
        assert_string_equal (id, ids [i]);
        free (id);
        json_t *result = json_object_get (last, "result");
        assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
        char *tag = json_dumps (json_object_get (json_object_get (result, "_meta"), GI_META_ID), JSON_ENCODE_ANY);
        assert_string_equal (tag, ids [i]);
        free (tag);
        assert_non_null (json_object_get (json_object_get (result, "_meta"),
                                          "io.modelcontextprotocol/serverInfo"));
        json_decref (events);
        gi_free (streams [i]);
    }
    zlistx_destroy (&s_open);
    sb_gateway_destroy (&gi_gw);
}

int
main (void)
{
    //  In this order: each gateway case uses the streams the one before left.
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_filter_checked),
        cmocka_unit_test (test_filter_task_ids),
        cmocka_unit_test (test_listen_table),
        cmocka_unit_test (test_streams_expire),
        cmocka_unit_test (test_tenant_lists_change),
        cmocka_unit_test (test_subscribed_broadcast),
        cmocka_unit_test (test_listen_delivers),
        cmocka_unit_test (test_listen_limits),
        cmocka_unit_test (test_session_key_own),
        cmocka_unit_test (test_listen_stop),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
