/*  tests/44_e2e_cluster.c — two real sb-gateway processes on one broker,
    as behind a load balancer (same token key, same public URL), and what
    a client's session does across them through the broker's BROADCAST:

      - a session begun on gateway A is valid on gateway B; DELETE on A
        ends it on B too (404), and closes its GET stream open on B;
      - logging/setLevel on A filters the log messages B relays for that
        session, and the other way round;
      - another tenant cannot end the session: its DELETE is refused on
        either gateway, and a BROADCAST that names the session for another
        tenant (or a forged session ID) is ignored by every gateway;
      - tokens_revoked (the operator revoked a tenant's access tokens,
        sent by the gateway that relayed the admin request) makes both
        gateways refuse that tenant's tokens issued until then, and a
        later token works.

    The broadcasts are asynchronous. A test waits for one by polling until
    its effect shows, and uses ordering as a barrier: broadcasts from one
    sender reach each gateway in the order sent, so once a throwaway
    session ended after some news is 404 on a gateway, that gateway has
    applied the news too. The token worker is not started (no PostgreSQL). */
#include "sb_msg.h"
#include "sb_farm.h"
#include "sb_harness.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define CALL_WAIT_MS    15000   /* one HTTP exchange */
#define NEWS_WAIT_MS    5000    /* a broadcast reaching a gateway */
#define JOIN_STEP_MS    300     /* one try of the set-up's barrier (s_joined) */
#define STREAM_WAIT_MS  8000    /* a GET stream left open this long was not closed */
#define PROTOCOL        "2025-11-25"

static sb_farm_t *s_farm;
static pid_t s_gateway_b;                   /* the second gateway */
static char s_url_a [64], s_url_b [64];     /* http://127.0.0.1:P of each */
static char s_other_token [2048];           /* a token for tenant "other" */
static char s_dir_b [128];                  /* gateway B's connectors: a copy it may reload */

//  ---------------------------------------------------------------------------
//  HTTP

typedef struct {
    char *body;                     /* response body (NUL-terminated), or NULL */
    size_t len;                     /* bytes of it */
    char session [512];             /* Mcp-Session-Id of the response, if any */
} s_response_t;

//  The request headers of `method` with `token` and `session` (may be NULL)
//  into `headers` (5 slots), `auth` and `session_header` holding theirs.
static void
s_headers (const char *method, const char *token, const char *session, bool body,
           const char *headers [5], char auth [2200], char session_header [600])
{
    size_t count = 0;
    snprintf (auth, 2200, "Authorization: Bearer %s", token);
    headers [count++] = auth;
    headers [count++] = "MCP-Protocol-Version: " PROTOCOL;
    headers [count++] = strcmp (method, "GET") == 0 ? "Accept: text/event-stream"
                                                    : "Accept: application/json, text/event-stream";
    if (body)
        headers [count++] = "Content-Type: application/json";
    if (session) {
        snprintf (session_header, 600, "Mcp-Session-Id: %s", session);
        headers [count++] = session_header;
    }
    while (count < 5)
        headers [count++] = NULL;
}

//  One request to `base`/mcp with `token` and `session` (may be NULL).
//  Returns 0 or the curl code (sb_harness_request); *status and `r` filled.
static int
s_http (const char *method, const char *base, const char *token, const char *session,
        const char *body, int timeout_ms, long *status, s_response_t *r)
{
    char url [128], auth [2200], session_header [600];
    const char *headers [6] = { NULL };
    snprintf (url, sizeof url, "%s/mcp", base);
    s_headers (method, token, session, body != NULL, headers, auth, session_header);
    sb_harness_request_t request = { .method = method, .url = url, .headers = headers,
                                     .body = body, .body_len = body ? strlen (body) : 0,
                                     .timeout_ms = timeout_ms };
    sb_harness_response_t response;
    int rc = sb_harness_request (&request, &response);
    *status = response.status;
    r->body = response.body;
    r->len = response.body_len;
    response.body = NULL;
    sb_harness_header (&response, "Mcp-Session-Id", r->session, sizeof r->session);
    sb_harness_response_clear (&response);
    return rc;
}

//  POSTs `body`; returns the HTTP status, the body in *resp (new, may be NULL).
static long
s_post (const char *base, const char *token, const char *session, const char *body, char **resp)
{
    s_response_t r = { 0 };
    long status = 0;
    assert_int_equal (s_http ("POST", base, token, session, body, CALL_WAIT_MS, &status, &r), 0);
    if (resp)
        *resp = r.body;
    else
        free (r.body);
    return status;
}

//  initialize on `base` for `token`; returns the session ID (new).
static char *
s_initialize (const char *base, const char *token)
{
    s_response_t r = { 0 };
    long status = 0;
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                       "\"protocolVersion\":\"" PROTOCOL "\",\"capabilities\":{},"
                       "\"clientInfo\":{\"name\":\"e2e-cluster\",\"version\":\"1\"}}}";
    assert_int_equal (s_http ("POST", base, token, NULL, body, CALL_WAIT_MS, &status, &r), 0);
    assert_int_equal (status, 200);
    assert_true (r.session [0] != 0);
    free (r.body);
    return strdup (r.session);
}

//  The status of a ping in `session` on `base` with `token`.
static long
s_ping (const char *base, const char *token, const char *session)
{
    return s_post (base, token, session, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", NULL);
}

//  DELETE of `session` on `base` with `token`; its status.
static long
s_delete (const char *base, const char *token, const char *session)
{
    s_response_t r = { 0 };
    long status = 0;
    assert_int_equal (s_http ("DELETE", base, token, session, NULL, CALL_WAIT_MS, &status, &r),
                      0);
    free (r.body);
    return status;
}

//  Polls `base` until `session` gets 404 (the news arrived). Asserts.
static void
s_wait_ended (const char *base, const char *session)
{
    int64_t deadline = zclock_mono () + NEWS_WAIT_MS;
    long status = 0;
    while ((status = s_ping (base, s_farm->token, session)) != 404 && zclock_mono () < deadline)
        zmq_poll (NULL, 0, 5);      //  back-off between two polls of the condition
    assert_int_equal (status, 404);
}

//  A broadcast barrier from the gateway at `from`: a throwaway session is
//  begun and ended there; once `to` answers it 404, `to` has applied
//  everything `from` broadcast before.
static void
s_barrier (const char *from, const char *to)
{
    char *session = s_initialize (from, s_farm->token);
    assert_int_equal (s_delete (from, s_farm->token, session), 200);
    s_wait_ended (to, session);
    free (session);
}

//  Waits until the broker knows both gateways: a broadcast from `from`
//  reaches `to`. A gateway the broker has not heard from yet misses a
//  broadcast (best effort), so a throwaway session is ended on `from`
//  again and again, each given JOIN_STEP_MS to show 404 on `to`, until one
//  does. Returns 0, or -1 after NEWS_WAIT_MS.
static int
s_joined (const char *from, const char *to)
{
    int64_t deadline = zclock_mono () + NEWS_WAIT_MS;
    while (zclock_mono () < deadline) {
        char *session = s_initialize (from, s_farm->token);
        assert_int_equal (s_delete (from, s_farm->token, session), 200);
        int64_t step = zclock_mono () + JOIN_STEP_MS;
        long status = 0;
        while ((status = s_ping (to, s_farm->token, session)) != 404 && zclock_mono () < step)
            zmq_poll (NULL, 0, 5);  //  back-off between two polls of the condition
        free (session);
        if (status == 404)
            return 0;
    }
    return -1;
}

//  Calls the fixture tool that logs three info messages, in `session` on
//  `base`; returns how many notifications/message the stream carried.
static int
s_log_messages (const char *base, const char *session)
{
    char *resp = NULL;
    long status = s_post (base, s_farm->token, session,
                          "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                          "{\"name\":\"test_tool_with_logging\",\"arguments\":{}}}", &resp);
    assert_int_equal (status, 200);
    assert_non_null (resp);
    assert_non_null (strstr (resp, "Tool with logging executed successfully"));
    int count = 0;
    for (const char *p = resp; (p = strstr (p, "notifications/message")); p++)
        count++;
    free (resp);
    return count;
}

//  ---------------------------------------------------------------------------
//  A GET stream held open in a thread

//  Opens the GET stream of `session` on `base` and waits until its first
//  bytes (priming event or keep-alive) arrived: it is open.
static sb_harness_call_t *
s_stream_open (const char *base, const char *session)
{
    char url [128], auth [2200], session_header [600];
    const char *headers [6] = { NULL };
    snprintf (url, sizeof url, "%s/mcp", base);
    s_headers ("GET", s_farm->token, session, false, headers, auth, session_header);
    sb_harness_request_t request = { .method = "GET", .url = url, .headers = headers,
                                     .timeout_ms = STREAM_WAIT_MS };
    sb_harness_call_t *stream = sb_harness_call_start (&request);
    assert_non_null (stream);
    assert_true (sb_harness_call_wait_for (stream, "", CALL_WAIT_MS));
    return stream;
}

//  Waits for the stream to end; returns true when the server ended it
//  (not the client's timeout). *body_p (may be NULL) gets its body (new).
static bool
s_stream_closed_by_server (sb_harness_call_t **stream_p, char **body_p)
{
    const sb_harness_response_t *response;
    int rc = sb_harness_call_wait (*stream_p, 2 * STREAM_WAIT_MS, false, &response, NULL);
    bool closed = rc == 0 && response->status == 200;
    if (body_p)
        *body_p = strdup (response->body ? response->body : "");
    sb_harness_call_destroy (stream_p);
    return closed;
}

//  ---------------------------------------------------------------------------
//  Setup

//  Copies file `name` from `from` to `to`, replacing `old` by `new` (when
//  not NULL) in its text; written aside and renamed, as a reload wants.
static void
s_copy_file (const char *from, const char *to, const char *name, const char *old, const char *new)
{
    char path [512], aside [512];
    snprintf (path, sizeof path, "%s/%s", from, name);
    zfile_t *source = zfile_new (NULL, path);
    zchunk_t *chunk = source && zfile_input (source) == 0? zfile_read (source, zfile_cursize (source), 0)
                                                          : NULL;
    assert_non_null (chunk);
    char *text = zchunk_strdup (chunk);
    zchunk_destroy (&chunk);
    zfile_destroy (&source);
    assert_non_null (text);
    char *at = old? strstr (text, old): NULL;
    if (old)
        assert_non_null (at);
    snprintf (path, sizeof path, "%s/%s", to, name);
    snprintf (aside, sizeof aside, "%s/.%s.new", to, name);
    FILE *file = fopen (aside, "w");
    assert_non_null (file);
    if (at)
        fprintf (file, "%.*s%s%s", (int) (at - text), text, new, at + strlen (old));
    else
        fputs (text, file);
    assert_int_equal (fclose (file), 0);
    assert_int_equal (rename (aside, path), 0);
    free (text);
}

static int
s_setup (void **state)
{
    s_farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1, .no_token_worker = true });
    if (!s_farm || sb_farm_mint (s_farm, "other", "e2e", s_other_token, sizeof s_other_token))
        return -1;
    //  Gateway B: same broker, key and public URL (the token's audience), its
    //  own port, its own connectors folder (a copy it may reload alone).
    int port = sb_harness_free_port ();
    char listen [64], healthz [128];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (s_url_a, sizeof s_url_a, "%s", s_farm->gateway_url);
    snprintf (s_url_b, sizeof s_url_b, "http://127.0.0.1:%d", port);
    snprintf (s_dir_b, sizeof s_dir_b, "/tmp/sb-44-connectors-%d", (int) getpid ());
    if (mkdir (s_dir_b, 0700))
        return -1;
    //  B serves the conformance fixtures only (the tests call nothing else).
    s_copy_file (SB_SOURCE_DIR "/tests/fixtures/connectors", s_dir_b, "conformance.json", NULL, NULL);
    const char *argv [] = { sb_harness_bin ("sb-gateway"), "--listen", listen,
                            "--broker", s_farm->frontend, "--token-key-file", s_farm->key_file,
                            "--session-key-file", s_farm->session_key_file,
                            "--public-url", s_farm->gateway_url, "--call-timeout-ms", "10000",
                            "--connectors", s_dir_b, NULL };
    s_gateway_b = sb_harness_spawn (argv, NULL);
    snprintf (healthz, sizeof healthz, "%s/healthz", s_url_b);
    if (s_gateway_b < 0 || sb_harness_wait_http_ok (healthz, SB_HARNESS_WAIT_MS))
        return -1;
    //  Both gateways are known to the broker once a broadcast from each
    //  reached the other.
    return s_joined (s_url_a, s_url_b) || s_joined (s_url_b, s_url_a)? -1: 0;
}

static int
s_teardown (void **state)
{
    int rc = 0;
    if (s_gateway_b > 0) {
        int status = sb_harness_stop (s_gateway_b);
        if (status == -1 || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            fprintf (stderr, "gateway B did not exit cleanly (status 0x%x)\n", (unsigned) status);
            rc = -1;
        }
    }
    sb_farm_stop (&s_farm);
    char path [256];
    snprintf (path, sizeof path, "%s/conformance.json", s_dir_b);
    unlink (path);
    rmdir (s_dir_b);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Tests

static void
test_delete_on_one_gateway_ends_the_session_on_the_other (void **state)
{
    char *session = s_initialize (s_url_a, s_farm->token);
    assert_int_equal (s_ping (s_url_b, s_farm->token, session), 200);   //  signed: B knows it
    sb_harness_call_t *stream = s_stream_open (s_url_b, session);

    assert_int_equal (s_delete (s_url_a, s_farm->token, session), 200);
    assert_int_equal (s_ping (s_url_a, s_farm->token, session), 404);
    s_wait_ended (s_url_b, session);
    assert_int_equal (s_delete (s_url_b, s_farm->token, session), 404);
    //  B closed the session's GET stream (else it would run to its timeout)
    assert_true (s_stream_closed_by_server (&stream, NULL));
    free (session);
}

static void
test_set_level_holds_on_every_gateway (void **state)
{
    char *session = s_initialize (s_url_a, s_farm->token);
    //  No level set: B relays all three info messages.
    assert_int_equal (s_log_messages (s_url_b, session), 3);

    //  "warning" on A: B relays none of them.
    char *resp = NULL;
    assert_int_equal (s_post (s_url_a, s_farm->token, session,
                              "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"logging/setLevel\","
                              "\"params\":{\"level\":\"warning\"}}", &resp), 200);
    assert_non_null (strstr (resp, "\"result\""));
    free (resp);
    assert_int_equal (s_log_messages (s_url_a, session), 0);
    s_barrier (s_url_a, s_url_b);
    assert_int_equal (s_log_messages (s_url_b, session), 0);

    //  "debug" on B: A relays them again.
    assert_int_equal (s_post (s_url_b, s_farm->token, session,
                              "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"logging/setLevel\","
                              "\"params\":{\"level\":\"debug\"}}", NULL), 200);
    s_barrier (s_url_b, s_url_a);
    assert_int_equal (s_log_messages (s_url_a, session), 3);
    assert_int_equal (s_delete (s_url_b, s_farm->token, session), 200);
    free (session);
}

//  Ends `session` on gateway A; its GET stream (on B) is then closed by B:
//  asserts it was, and that it carried `text` and `more` (when not NULL).
static void
s_end_after (const char *session, sb_harness_call_t **stream_p, const char *text,
             const char *more)
{
    assert_int_equal (s_delete (s_url_a, s_farm->token, session), 200);
    char *body = NULL;
    assert_true (s_stream_closed_by_server (stream_p, &body));
    assert_non_null (strstr (body, text));
    if (more)
        assert_non_null (strstr (body, more));
    free (body);
}

//  resources/subscribe on gateway A holds on gateway B: when B reloads a
//  changed resource, the session's GET stream open on B hears
//  notifications/resources/updated. (Before, only A kept the subscription,
//  and A had no stream to tell.)
static void
test_subscription_holds_on_every_gateway (void **state)
{
    const char *uri = "test://watched-resource";
    char *session = s_initialize (s_url_a, s_farm->token);
    sb_harness_call_t *stream = s_stream_open (s_url_b, session);
    char *resp = NULL;
    assert_int_equal (s_post (s_url_a, s_farm->token, session,
                              "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"resources/subscribe\","
                              "\"params\":{\"uri\":\"test://watched-resource\"}}", &resp), 200);
    assert_non_null (strstr (resp, "\"result\""));
    free (resp);
    s_barrier (s_url_a, s_url_b);       //  B has applied the subscription

    //  The resource changes in B's folder; B alone reloads.
    s_copy_file (SB_SOURCE_DIR "/tests/fixtures/connectors", s_dir_b, "conformance.json",
                 "\"Watched resource content\"", "\"Watched resource content, changed\"");
    assert_int_equal (kill (s_gateway_b, SIGHUP), 0);
    const char *read = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"resources/read\","
                       "\"params\":{\"uri\":\"test://watched-resource\"}}";
    int64_t deadline = zclock_mono () + NEWS_WAIT_MS;
    bool changed = false;
    while (!changed && zclock_mono () < deadline) {
        assert_int_equal (s_post (s_url_b, s_farm->token, session, read, &resp), 200);
        changed = strstr (resp, "content, changed") != NULL;
        free (resp);
        if (!changed)
            zmq_poll (NULL, 0, 5);  //  back-off between two polls of the condition
    }
    assert_true (changed);

    //  The session ends (on A): B closes the stream, which carried the news.
    s_end_after (session, &stream, "notifications/resources/updated", uri);
    free (session);
    //  B's folder as it was.
    s_copy_file (SB_SOURCE_DIR "/tests/fixtures/connectors", s_dir_b, "conformance.json", NULL, NULL);
    assert_int_equal (kill (s_gateway_b, SIGHUP), 0);
}

//  True when tools/list on `base` for `token` (stateless) names `tool`.
static bool
s_lists_tool (const char *base, const char *token, const char *tool)
{
    char *resp = NULL;
    assert_int_equal (s_post (base, token, NULL, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/list\"}",
                              &resp), 200);
    char quoted [128];
    snprintf (quoted, sizeof quoted, "\"name\":\"%s\"", tool);
    bool found = resp && strstr (resp, quoted);
    free (resp);
    return found;
}

//  Polls tools/list on `base` (tenant demo) until naming `tool` is `listed`.
static void
s_wait_listed (const char *base, const char *tool, bool listed)
{
    int64_t deadline = zclock_mono () + NEWS_WAIT_MS;
    while (s_lists_tool (base, s_farm->token, tool) != listed && zclock_mono () < deadline)
        zmq_poll (NULL, 0, 5);      //  back-off between two polls of the condition
    assert_true (s_lists_tool (base, s_farm->token, tool) == listed);
}

//  A tenant's list change on gateway A (the conformance connector's
//  test_trigger_tool_change) holds on gateway B too, where that tenant's
//  GET stream hears notifications/tools/list_changed; another tenant's
//  list stays as it was everywhere.
static void
test_list_change_holds_on_every_gateway (void **state)
{
    assert_false (s_lists_tool (s_url_b, s_farm->token, "test_dynamic_tool"));
    char *session = s_initialize (s_url_a, s_farm->token);
    sb_harness_call_t *stream = s_stream_open (s_url_b, session);
    const char *toggle = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":"
                         "{\"name\":\"test_trigger_tool_change\",\"arguments\":{}}}";
    char *resp = NULL;
    assert_int_equal (s_post (s_url_a, s_farm->token, NULL, toggle, &resp), 200);
    assert_non_null (strstr (resp, "listed now"));
    free (resp);
    assert_true (s_lists_tool (s_url_a, s_farm->token, "test_dynamic_tool"));
    s_wait_listed (s_url_b, "test_dynamic_tool", true);
    assert_false (s_lists_tool (s_url_a, s_other_token, "test_dynamic_tool"));
    assert_false (s_lists_tool (s_url_b, s_other_token, "test_dynamic_tool"));

    //  The session ends after the news (in order): B closes the stream,
    //  which carried the news first.
    s_end_after (session, &stream, "notifications/tools/list_changed", NULL);
    free (session);

    //  Hidden again from B: A follows.
    assert_int_equal (s_post (s_url_b, s_farm->token, NULL, toggle, &resp), 200);
    assert_non_null (strstr (resp, "no longer listed"));
    free (resp);
    s_wait_listed (s_url_a, "test_dynamic_tool", false);
    assert_false (s_lists_tool (s_url_b, s_farm->token, "test_dynamic_tool"));
}

//  Sends BROADCAST `topic` for `tenant` with `payload` straight to the
//  broker, as a gateway would (asserts it was queued).
static void
s_inject (zsock_t *dealer, const char *tenant, const char *topic, const char *payload)
{
    sb_msg_t msg = { 0 };
    zframe_t *frame = zframe_new (payload, strlen (payload));
    assert_int_equal (sb_msg_set_broadcast (&msg, tenant, topic, &frame), 0);
    assert_int_equal (sb_msg_send (dealer, &msg, NULL), 0);
    sb_msg_reset (&msg);
}

static void
test_another_tenant_cannot_end_the_session (void **state)
{
    char *session = s_initialize (s_url_a, s_farm->token);
    //  Its DELETE is refused on both gateways: the session is not its own.
    assert_int_equal (s_delete (s_url_a, s_other_token, session), 404);
    assert_int_equal (s_delete (s_url_b, s_other_token, session), 404);

    //  A gateway that broadcast the session's end, or a level, for the
    //  other tenant, or for a forged ID, is ignored everywhere. The
    //  throwaway session ended last is the barrier (same sender, in order).
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_sndtimeo (dealer, 2000);
    assert_int_equal (zsock_connect (dealer, "%s", s_farm->frontend), 0);
    char *forged = strdup (session);
    forged [strlen (forged) - 2] = forged [strlen (forged) - 2] == 'A'? 'B': 'A';
    char level [600];
    snprintf (level, sizeof level, "emergency %s", session);
    s_inject (dealer, "other", "session_ended", session);
    s_inject (dealer, "other", "log_level", level);
    s_inject (dealer, "demo", "session_ended", forged);
    s_inject (dealer, "demo", "log_level", "loud");
    s_inject (dealer, "demo", "no_such_topic", session);
    char *barrier = s_initialize (s_url_a, s_farm->token);
    s_inject (dealer, "demo", "session_ended", barrier);
    s_wait_ended (s_url_a, barrier);
    s_wait_ended (s_url_b, barrier);

    assert_int_equal (s_ping (s_url_a, s_farm->token, session), 200);
    assert_int_equal (s_ping (s_url_b, s_farm->token, session), 200);
    assert_int_equal (s_log_messages (s_url_b, session), 3);     //  no "emergency" level

    //  Its own tenant ends it, everywhere.
    assert_int_equal (s_delete (s_url_b, s_farm->token, session), 200);
    s_wait_ended (s_url_a, session);
    zsock_destroy (&dealer);
    free (forged);
    free (barrier);
    free (session);
}

//  The status of initialize on `base` with `token` (200, or 401 when refused).
static long
s_initialize_status (const char *base, const char *token)
{
    return s_post (base, token, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                   "\"params\":{\"protocolVersion\":\"" PROTOCOL "\",\"capabilities\":{},"
                   "\"clientInfo\":{\"name\":\"e2e-cluster\",\"version\":\"1\"}}}", NULL);
}

//  tokens_revoked from one gateway (the one that relayed the operator's
//  admin request; here injected as it would send it) reaches every other:
//  each refuses that tenant's tokens issued until then, and only those;
//  a token issued in a later second works; one whose payload names
//  another tenant than the broadcast's is ignored everywhere.
static void
test_tokens_revoked_holds_on_every_gateway (void **state)
{
    char gone [2048], spared [2048], later [2048];
    assert_int_equal (sb_farm_mint (s_farm, "revoked", "user:1", gone, sizeof gone), 0);
    assert_int_equal (sb_farm_mint (s_farm, "spared", "user:1", spared, sizeof spared), 0);
    assert_int_equal (s_initialize_status (s_url_a, gone), 200);
    assert_int_equal (s_initialize_status (s_url_b, gone), 200);
    int64_t revoked_at = time (NULL);           //  not before the tokens' iat

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_sndtimeo (dealer, 2000);
    assert_int_equal (zsock_connect (dealer, "%s", s_farm->frontend), 0);
    char payload [160];
    snprintf (payload, sizeof payload, "{\"tenant\":\"spared\",\"revoked_at\":%lld}", (long long) revoked_at);
    s_inject (dealer, "demo", "tokens_revoked", payload);      //  another tenant's: ignored
    snprintf (payload, sizeof payload, "{\"tenant\":\"revoked\",\"subject\":null,\"client_id\":null,"
              "\"revoked_at\":%lld}", (long long) revoked_at);
    s_inject (dealer, "revoked", "tokens_revoked", payload);
    char *barrier = s_initialize (s_url_a, s_farm->token);
    s_inject (dealer, "demo", "session_ended", barrier);
    s_wait_ended (s_url_a, barrier);
    s_wait_ended (s_url_b, barrier);
    zsock_destroy (&dealer);
    free (barrier);

    assert_int_equal (s_initialize_status (s_url_a, gone), 401);
    assert_int_equal (s_initialize_status (s_url_b, gone), 401);
    assert_int_equal (s_initialize_status (s_url_a, spared), 200);
    assert_int_equal (s_initialize_status (s_url_b, spared), 200);
    assert_int_equal (s_initialize_status (s_url_b, s_farm->token), 200);
    //  A token of the tenant issued a second later works (iat resolution is
    //  the second, and a tie is refused: wait for the clock to pass it)
    while (time (NULL) <= revoked_at)
        zmq_poll (NULL, 0, 50);
    assert_int_equal (sb_farm_mint (s_farm, "revoked", "user:1", later, sizeof later), 0);
    assert_int_equal (s_initialize_status (s_url_a, later), 200);
    assert_int_equal (s_initialize_status (s_url_b, later), 200);
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_delete_on_one_gateway_ends_the_session_on_the_other),
        cmocka_unit_test (test_set_level_holds_on_every_gateway),
        cmocka_unit_test (test_list_change_holds_on_every_gateway),
        cmocka_unit_test (test_subscription_holds_on_every_gateway),
        cmocka_unit_test (test_another_tenant_cannot_end_the_session),
        cmocka_unit_test (test_tokens_revoked_holds_on_every_gateway),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
