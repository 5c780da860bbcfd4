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

#include "sb_config.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_token.h"
#include "sb_gateway_int.h"
#include "sb_job.h"
#include "sb_msg.h"
#include "sb_harness.h"
#include "30_gateway_inproc.h"


static zactor_t *s_broker;      /* the fake broker */
static char s_dir [128];        /* the connectors folder */
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
                    int rc = sb_msg_set_reply (&msg, corr_id, SB_STATUS_OK, &payload);
                    if (rc == 0)
                        rc = sb_msg_send (router, &msg, routing);
                    assert (rc == 0);
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
            int rc = sb_msg_recv (router, &msg, &routing);
            if (rc == SB_MSG_OK && msg.command == SB_CMD_HEARTBEAT)
                (void) !sb_msg_send (router, &msg, routing);  //  as the broker: "alive" (one lost is missed only after 3)
            else
            if (rc == SB_MSG_OK && msg.command == SB_CMD_REQUEST && streq (msg.service, "token")) {
                //  The gateway asks for the key set (oauth/jwks): no token
                //  service in this farm, and not a call the test counts.
                sb_msg_t reply = { 0 };
                zframe_t *none = NULL;
                if (sb_msg_set_reply (&reply, msg.corr_id, SB_STATUS_UNAVAILABLE, &none) == 0)
                    (void) !sb_msg_send (router, &reply, routing);
                sb_msg_reset (&reply);
            }
            else
            if (rc == SB_MSG_OK && msg.command == SB_CMD_REQUEST) {
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
//  Sessions and subscriptions

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
    json_t *events = gi_events (h);
    json_t *caps = json_object_get (json_object_get (json_array_get (events, 0), "result"),
                                    "capabilities");
    assert_true (json_is_true (json_object_get (json_object_get (caps, "tools"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "resources"), "subscribe")));
    json_decref (events);
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

//  resources/subscribe or unsubscribe; the reply (new reference).
static json_t *
s_subscribe (const char *token, const char *session, const char *method, const char *uri)
{
    char body [512];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"%s\",\"params\":"
              "{\"uri\":\"%s\"}}", method, uri);
    return gi_rpc (token, session, NULL, body, NULL);
}

static void
s_subscribed (const char *session, const char *uri)
{
    json_t *reply = s_subscribe (s_token, session, "resources/subscribe", uri);
    assert_true (json_is_object (json_object_get (reply, "result")));
    json_decref (reply);
}

//  tools/list (stateless): the tool names, comma-separated (new string).
static char *
s_tool_names (void)
{
    json_t *reply = gi_rpc (s_token, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", NULL);
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
//  Fixture: the gateway in this process

static int
s_setup (void **state)
{
    zsys_init ();
    zsys_handler_set (NULL);
    sb_log_init ("gateway-test", SB_LOG_INFO);
    s_broker = zactor_new (s_fake_broker, NULL);
    char *port_text = zstr_recv (s_broker);
    int broker_port = port_text? (int) strtol (port_text, NULL, 10): -1;
    zstr_free (&port_text);
    if (broker_port <= 0 || gi_key_make ("notify"))
        return -1;
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-30-notify-%d", (int) getpid ());
    if (mkdir (s_dir, 0700))
        return -1;
    gi_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");

    int port = sb_harness_free_port ();
    char listen [64], broker [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%d", broker_port);
    snprintf (gi_base, sizeof gi_base, "http://127.0.0.1:%d", port);
    char *argv [] = {
        "sb-gateway", "--listen", listen, "--broker", broker, "--token-key-file", gi_key_path,
        "--session-key-file", gi_session_key_path,
        "--connectors", s_dir, "--public-url", gi_base, "--call-timeout-ms", "20000", NULL
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
        //  The drain of sb_gateway_run: nothing is pending by now.
        sb_gateway_stop (gi_gw);
        int rc = sb_gateway_run (gi_gw);
        sb_gateway_destroy (&gi_gw);
        if (rc)
            return -1;
    }
    zactor_destroy (&s_broker);
    free (s_token);
    free (s_other);
    unlink (gi_key_path);
    unlink (gi_session_key_path);
    gi_remove_dir (s_dir);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Tests

static void
test_reload_notifies (void **state)
{
    char *a = s_session (s_token);
    char *b = s_session (s_other);
    gi_http_t *stream_a = s_stream (s_token, a);
    gi_http_t *stream_b = s_stream (s_other, b);

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
    assert_int_equal (sb_subs_sessions (gi_gw->subs), 2);

    //  1. A tool more; one edited (same size); three gone.
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "second", NULL, "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (stream_a, 4, "notifications/tools/list_changed; notifications/resources/list_changed; "
                           "notifications/resources/updated test://note/one; "
                           "notifications/resources/updated test://note/three");
    gi_expect (stream_b, 2, "notifications/tools/list_changed; notifications/resources/list_changed");
    char *names = s_tool_names ();
    assert_string_equal (names, "note_tool,note_tool_2");
    free (names);
    reply = gi_rpc (s_token, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/read\","
                   "\"params\":{\"uri\":\"test://note/one\"}}", NULL);
    json_t *contents = json_object_get (json_object_get (reply, "result"), "contents");
    assert_string_equal (json_string_value (json_object_get (json_array_get (contents, 0), "text")),
                         "FIRST");
    json_decref (reply);

    //  2. Contents only (two, and the template): no list changed; the
    //  request goes through the loop as SIGHUP's does.
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "RAW {id}", "A prompt");
    sb_gateway_request_reload (gi_gw);
    gi_expect (stream_a, 2, "notifications/resources/updated test://note/two; "
                           "notifications/resources/updated test://note/7/raw");
    gi_expect (stream_b, 1, "notifications/resources/updated test://note/two");

    //  3. A folder that does not load: the old set stays, nothing is sent.
    gi_write_file (s_dir, "broken.json", "{ \"name\": ");
    assert_int_equal (sb_gateway_reload (gi_gw), -1);
    assert_int_equal (gi_gw->reload_failures, 1);
    names = s_tool_names ();
    assert_string_equal (names, "note_tool,note_tool_2");
    free (names);
    //  So does well-formed JSON that breaks the connector format.
    gi_write_file (s_dir, "broken.json",
        "{\"name\":\"broken\",\"title\":\"B\",\"tools\":[{\"name\":\"broken_tool\","
        " \"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"builtin\":\"test_simple_text\"},\"confirm\":\"yes\"}]}");
    assert_int_equal (sb_gateway_reload (gi_gw), -1);
    assert_int_equal (gi_gw->reload_failures, 2);
    names = s_tool_names ();
    assert_string_equal (names, "note_tool,note_tool_2");
    free (names);
    char path [256];
    snprintf (path, sizeof path, "%s/broken.json", s_dir);
    unlink (path);
    //  A reload that changes nothing sends nothing either.
    assert_int_equal (sb_gateway_reload (gi_gw), 0);

    //  4. Only the prompt: the next event on each stream is exactly that,
    //  so steps 3 and 4 sent nothing.
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", NULL, "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (stream_a, 1, "notifications/prompts/list_changed");
    gi_expect (stream_b, 1, "notifications/prompts/list_changed");
    assert_int_equal (gi_gw->reloads, 4);

    //  DELETE ends A's stream and forgets its subscriptions.
    gi_http_t *h = gi_start ("DELETE", s_token, a, NULL, NULL);
    gi_finish (h);
    assert_int_equal (h->status, 200);
    gi_free (h);
    gi_finish (stream_a);
    assert_int_equal (sb_subs_sessions (gi_gw->subs), 1);

    //  5. Three comes back: B hears of the list, not of three.
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", "third", "RAW {id}", "Another prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (stream_b, 1, "notifications/resources/list_changed");
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "SECOND", "third", "RAW {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_expect (stream_b, 1, "notifications/prompts/list_changed");

    h = gi_start ("DELETE", s_other, b, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    gi_finish (stream_b);
    assert_int_equal (sb_subs_sessions (gi_gw->subs), 0);
    gi_free (stream_a);
    gi_free (stream_b);
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
    reply = gi_rpc (s_token, NULL, modern, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/subscribe\","
                   "\"params\":{\"uri\":\"test://note/one\",\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                   "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}", NULL);
    error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32601);
    json_decref (reply);

    gi_http_t *h = gi_start ("DELETE", s_token, session, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    assert_int_equal (sb_subs_sessions (gi_gw->subs), 0);
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
    gi_http_t *call = gi_start ("POST", s_token, NULL, modern,
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"note_tool\","
        "\"arguments\":{},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
        "\"io.modelcontextprotocol/clientCapabilities\":{\"elicitation\":{}}}}}");
    GI_WAIT_FOR (s_broker_int ("RECEIVED") == before + 1);
    //  And an older-revision call, stateless.
    gi_http_t *plain = gi_start ("POST", s_token, NULL, NULL,
        "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":{\"name\":\"note_tool\","
        "\"arguments\":{}}}");
    GI_WAIT_FOR (s_broker_int ("RECEIVED") == before + 2);

    //  Two reloads while both wait: the set they started with is two sets ago.
    gi_write (s_dir, "note_tool,note_tool_3", "first", "second", "third", "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    gi_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");
    assert_int_equal (sb_gateway_reload (gi_gw), 0);
    assert_int_equal (sb_connectors_refs (gi_gw->connectors), 1);

    s_broker_reply ("{\"resultType\":\"input_required\",\"inputRequests\":{\"confirm\":{\"method\":"
                    "\"elicitation/create\",\"params\":{\"mode\":\"form\",\"message\":\"Sure?\","
                    "\"requestedSchema\":{\"type\":\"object\",\"properties\":{}}}}}}");
    gi_finish (call);
    assert_int_equal (call->status, 200);
    json_t *events = gi_events (call);
    json_t *result = json_object_get (json_array_get (events, 0), "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "input_required");
    assert_true (json_is_string (json_object_get (result, "requestState")));
    assert_non_null (json_object_get (json_object_get (result, "inputRequests"), "confirm"));
    json_decref (events);

    s_broker_reply ("{\"content\":[{\"type\":\"text\",\"text\":\"late\"}]}");
    gi_finish (plain);
    events = gi_events (plain);
    result = json_object_get (json_array_get (events, 0), "result");
    assert_string_equal (json_string_value (json_object_get (json_array_get (
                         json_object_get (result, "content"), 0), "text")), "late");
    json_decref (events);
    gi_free (call);
    gi_free (plain);
}

//  The real sb-gateway: SIGHUP reloads, and its GET streams hear of it.
static void
test_sighup (void **state)
{
    sb_gateway_t *in_process = gi_gw;
    gi_gw = NULL;                        //  gi_turn waits instead of turning our loop
    char base [64], dir [128];
    snprintf (base, sizeof base, "%s", gi_base);
    snprintf (dir, sizeof dir, "/tmp/sb-30-notify-hup-%d", (int) getpid ());
    assert_int_equal (mkdir (dir, 0700), 0);
    gi_write (dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");
    int port = sb_harness_free_port ();
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (gi_base, sizeof gi_base, "http://127.0.0.1:%d", port);
    char *token = gi_issue ("acme", 3600);
    const char *argv [] = {
        sb_harness_bin ("sb-gateway"), "--listen", listen, "--broker", "tcp://127.0.0.1:9",
        "--token-key-file", gi_key_path, "--session-key-file", gi_session_key_path,
        "--connectors", dir, "--public-url", gi_base, NULL
    };
    pid_t gateway = sb_harness_spawn (argv, NULL);
    char health [128];
    snprintf (health, sizeof health, "%s/healthz", gi_base);
    assert_int_equal (sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS), 0);

    char *session = s_session (token);
    gi_http_t *stream = s_stream (token, session);
    json_t *reply = s_subscribe (token, session, "resources/subscribe", "test://note/two");
    json_decref (reply);
    gi_write (dir, "note_tool,note_tool_2", "first", "SECOND", "third", "raw {id}", "A prompt");
    assert_int_equal (kill (gateway, SIGHUP), 0);
    gi_expect (stream, 2, "notifications/tools/list_changed; "
                         "notifications/resources/updated test://note/two");
    //  A broken folder: the process stays up with the tools it had (the
    //  in-process case above shows the reload itself refused).
    gi_write_file (dir, "broken.json", "[");
    assert_int_equal (kill (gateway, SIGHUP), 0);
    char path [256];
    snprintf (path, sizeof path, "%s/broken.json", dir);
    gi_http_t *h = gi_start ("POST", token, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    gi_finish (h);
    assert_true (gi_has (h, "note_tool_2"));
    gi_free (h);
    unlink (path);

    h = gi_start ("DELETE", token, session, NULL, NULL);
    gi_finish (h);
    gi_free (h);
    gi_finish (stream);
    gi_free (stream);
    int status = sb_harness_stop (gateway);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    free (session);
    free (token);
    gi_remove_dir (dir);
    snprintf (gi_base, sizeof gi_base, "%s", base);
    gi_gw = in_process;
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
