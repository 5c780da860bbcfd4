/*  tests/30_gateway_subs.c — unit tests of what a connectors reload rests
    on: the subscription table (gateway/sb_subs.c) and its limits, the
    session-end hook that empties it, resources/(un)subscribe as sb_mcp
    hands it over, and the connector set's references and change detection
    (sb_connectors_ref, sb_connectors_diff, sb_connectors_resource_changed)
    on connector folders written by the test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sb_connector.h"
#include "sb_mcp.h"
#include "sb_session.h"
#include "sb_subs.h"
#include "30_gateway_inproc.h"

#define NOW     1750000000
#define LATER   (NOW + 100)

//  ---------------------------------------------------------------------------
//  The table

static void
test_subs_add_remove (void **state)
{
    sb_subs_t *subs = sb_subs_new ();
    assert_non_null (subs);
    assert_int_equal (sb_subs_add (subs, "k1", "session-1", LATER, NOW, "test://a"), SB_SUBS_OK);
    assert_int_equal (sb_subs_add (subs, "k1", "session-1", LATER, NOW, "test://b"), SB_SUBS_OK);
    //  Again: one entry.
    assert_int_equal (sb_subs_add (subs, "k1", "session-1", LATER, NOW, "test://a"), SB_SUBS_OK);
    assert_int_equal (sb_subs_count (subs, "k1"), 2);
    assert_int_equal (sb_subs_add (subs, "k2", "session-2", LATER, NOW, "test://a"), SB_SUBS_OK);
    assert_int_equal (sb_subs_sessions (subs), 2);
    assert_true (sb_subs_has (subs, "k1", "test://b"));
    assert_false (sb_subs_has (subs, "k2", "test://b"));
    size_t bytes = strlen ("session-1") + 1 + strlen ("test://a") + 1 + strlen ("test://b") + 1
                 + strlen ("session-2") + 1 + strlen ("test://a") + 1;
    assert_int_equal (sb_subs_bytes (subs), bytes);

    //  Unsubscribing: what was not subscribed is -1; the last URI forgets the session.
    assert_int_equal (sb_subs_remove (subs, "k1", "test://zzz"), -1);
    assert_int_equal (sb_subs_remove (subs, "k9", "test://a"), -1);
    assert_int_equal (sb_subs_remove (subs, "k1", "test://a"), 0);
    assert_false (sb_subs_has (subs, "k1", "test://a"));
    assert_true (sb_subs_has (subs, "k1", "test://b"));
    assert_int_equal (sb_subs_remove (subs, "k2", "test://a"), 0);
    assert_int_equal (sb_subs_sessions (subs), 1);
    sb_subs_drop (subs, "k1");
    sb_subs_drop (subs, "k1");
    assert_int_equal (sb_subs_sessions (subs), 0);
    assert_int_equal (sb_subs_bytes (subs), 0);

    //  Without a session: refused.
    assert_int_equal (sb_subs_add (subs, "", "owner", LATER, NOW, "test://a"), SB_SUBS_INVALID);
    assert_int_equal (sb_subs_add (subs, "k", "", LATER, NOW, "test://a"), SB_SUBS_INVALID);
    assert_int_equal (sb_subs_add (subs, NULL, "owner", LATER, NOW, "test://a"), SB_SUBS_INVALID);
    sb_subs_destroy (&subs);
    sb_subs_destroy (&subs);
    assert_null (subs);
}

static void
test_subs_limits (void **state)
{
    sb_subs_t *subs = sb_subs_new ();
    char uri [SB_MAX_SUB_URI_LEN + 2], key [32];

    //  A URI past SB_MAX_SUB_URI_LEN; one exactly at it is fine.
    memset (uri, 'a', sizeof uri - 1);
    memcpy (uri, "test://", 7);
    uri [SB_MAX_SUB_URI_LEN + 1] = 0;
    assert_int_equal (sb_subs_add (subs, "k", "o", LATER, NOW, uri), SB_SUBS_URI_TOO_LONG);
    uri [SB_MAX_SUB_URI_LEN] = 0;
    assert_int_equal (sb_subs_add (subs, "k", "o", LATER, NOW, uri), SB_SUBS_OK);
    sb_subs_drop (subs, "k");

    //  SB_MAX_SUBS_PER_SESSION URIs per session, then refused with a sentence.
    for (int i = 0; i < SB_MAX_SUBS_PER_SESSION; i++) {
        snprintf (uri, sizeof uri, "test://note/%d/raw", i);
        assert_int_equal (sb_subs_add (subs, "k", "o", LATER, NOW, uri), SB_SUBS_OK);
    }
    assert_int_equal (sb_subs_add (subs, "k", "o", LATER, NOW, "test://one-more"), SB_SUBS_SESSION_FULL);
    assert_non_null (strstr (sb_subs_strerror (SB_SUBS_SESSION_FULL), "already follows 64 resources"));
    //  One it already has is still fine; after an unsubscribe there is room.
    assert_int_equal (sb_subs_add (subs, "k", "o", LATER, NOW, "test://note/3/raw"), SB_SUBS_OK);
    assert_int_equal (sb_subs_remove (subs, "k", "test://note/3/raw"), 0);
    assert_int_equal (sb_subs_add (subs, "k", "o", LATER, NOW, "test://one-more"), SB_SUBS_OK);
    sb_subs_drop (subs, "k");

    //  SB_MAX_SUB_SESSIONS sessions: the next one is refused while all are live.
    for (int i = 0; i < SB_MAX_SUB_SESSIONS; i++) {
        snprintf (key, sizeof key, "key-%d", i);
        //  Half of them expire at NOW + 10.
        assert_int_equal (sb_subs_add (subs, key, key, i % 2? NOW + 10: LATER, NOW, "test://a"),
                          SB_SUBS_OK);
    }
    assert_int_equal (sb_subs_sessions (subs), SB_MAX_SUB_SESSIONS);
    assert_int_equal (sb_subs_add (subs, "late", "late", LATER, NOW, "test://a"), SB_SUBS_TABLE_FULL);
    assert_non_null (strstr (sb_subs_strerror (SB_SUBS_TABLE_FULL), "try again later"));
    //  A session already in the table may still add a URI.
    assert_int_equal (sb_subs_add (subs, "key-0", "key-0", LATER, NOW, "test://b"), SB_SUBS_OK);
    //  Once some have aged out, their room is reused (never a live one's).
    assert_int_equal (sb_subs_add (subs, "late", "late", LATER, NOW + 11, "test://a"), SB_SUBS_OK);
    assert_int_equal (sb_subs_sessions (subs), SB_MAX_SUB_SESSIONS / 2 + 1);
    assert_true (sb_subs_has (subs, "key-0", "test://b"));
    assert_false (sb_subs_has (subs, "key-1", "test://a"));
    assert_int_equal (sb_subs_purge (subs, LATER + 1), SB_MAX_SUB_SESSIONS / 2 + 1);
    assert_int_equal (sb_subs_sessions (subs), 0);
    assert_int_equal (sb_subs_bytes (subs), 0);

    //  SB_MAX_SUBS_BYTES: long URIs fill the table before the session limits do.
    int rc = SB_SUBS_OK, added = 0;
    for (int i = 0; rc == SB_SUBS_OK && i < SB_MAX_SUB_SESSIONS; i++) {
        snprintf (key, sizeof key, "b-%d", i);
        for (int j = 0; rc == SB_SUBS_OK && j < SB_MAX_SUBS_PER_SESSION; j++) {
            memset (uri, 'x', SB_MAX_SUB_URI_LEN);
            int n = snprintf (uri, sizeof uri, "test://%d/%d/", i, j);
            uri [n] = 'x';
            uri [SB_MAX_SUB_URI_LEN] = 0;
            rc = sb_subs_add (subs, key, key, LATER, NOW, uri);
            added += rc == SB_SUBS_OK;
        }
    }
    assert_int_equal (rc, SB_SUBS_TABLE_FULL);
    assert_true (sb_subs_bytes (subs) <= SB_MAX_SUBS_BYTES);
    assert_true (sb_subs_bytes (subs) + 2 * (SB_MAX_SUB_URI_LEN + 1) > SB_MAX_SUBS_BYTES);
    assert_int_equal (added, (int) (sb_subs_bytes (subs) / (SB_MAX_SUB_URI_LEN + 1)));
    assert_int_equal (sb_subs_purge (subs, LATER + 1), sb_subs_sessions (subs));
    assert_int_equal (sb_subs_bytes (subs), 0);

    //  Every refusal has a sentence.
    for (int code = SB_SUBS_OK; code >= SB_SUBS_NO_MEMORY; code--)
        assert_true (strlen (sb_subs_strerror (code)) > 10);
    sb_subs_destroy (&subs);
}

static void
s_collect (const char *owner, const char *uri, void *arg)
{
    char line [256];
    snprintf (line, sizeof line, "%s %s", owner, uri);
    json_array_append_new (arg, json_string (line));
}

static void
test_subs_each (void **state)
{
    sb_subs_t *subs = sb_subs_new ();
    assert_int_equal (sb_subs_add (subs, "k1", "owner-1", LATER, NOW, "test://b"), SB_SUBS_OK);
    assert_int_equal (sb_subs_add (subs, "k1", "owner-1", LATER, NOW, "test://a"), SB_SUBS_OK);
    assert_int_equal (sb_subs_add (subs, "k2", "owner-2", LATER, NOW, "test://a"), SB_SUBS_OK);
    json_t *seen = json_array ();
    sb_subs_each (subs, s_collect, seen);
    assert_int_equal (json_array_size (seen), 3);
    //  A session's URIs come in the order subscribed.
    char *text = json_dumps (seen, JSON_COMPACT);
    const char *b = strstr (text, "owner-1 test://b"), *a = strstr (text, "owner-1 test://a");
    assert_true (b && a && b < a);
    assert_non_null (strstr (text, "owner-2 test://a"));
    free (text);
    json_decref (seen);
    sb_subs_destroy (&subs);
}

//  The session-end hook (DELETE /mcp) gives the session that ended.
static void
s_on_end (const sb_session_t *session, void *arg)
{
    memcpy (arg, session->mac, sizeof session->mac);
}

static void
test_session_end_hook (void **state)
{
    static const uint8_t key [32] = { 7 };
    sb_sessions_t *sessions = sb_sessions_new (key, sizeof key);
    uint8_t seen [SB_HMAC_SHA256_LEN] = { 0 };
    sb_sessions_on_end (sessions, s_on_end, seen);
    char *id = sb_sessions_issue (sessions, "acme", "alice", "2025-11-25", 0, NOW);
    sb_session_t session;
    assert_int_equal (sb_sessions_verify (sessions, id, strlen (id), NOW, &session), 0);
    sb_sessions_end (sessions, &session, NOW);
    assert_memory_equal (seen, session.mac, sizeof seen);
    free (id);
    sb_sessions_destroy (&sessions);
}

//  ---------------------------------------------------------------------------
//  Connector sets: references and what changed

static char s_dir [128];

static sb_connectors_t *
s_load (void)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    if (!set)
        fprintf (stderr, "load: %s\n", error);
    free (error);
    assert_non_null (set);
    return set;
}

static void
test_connectors_diff (void **state)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-30-subs-%d", (int) getpid ());
    assert_int_equal (mkdir (s_dir, 0700), 0);
    gi_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");
    sb_connectors_t *a = s_load ();
    sb_connectors_t *same = s_load ();
    assert_int_equal (sb_connectors_diff (a, same), 0);
    assert_false (sb_connectors_resource_changed (a, same, "test://note/one"));
    assert_false (sb_connectors_resource_changed (a, same, "test://note/5/raw"));
    assert_false (sb_connectors_resource_changed (a, same, "test://nothing"));

    //  A tool more; one's text edited (same size: the list is the same);
    //  three gone (the list changes).
    gi_write (s_dir, "note_tool,note_tool_2", "FIRST", "second", NULL, "raw {id}", "A prompt");
    sb_connectors_t *b = s_load ();
    assert_int_equal (sb_connectors_diff (a, b), SB_LIST_TOOLS | SB_LIST_RESOURCES);
    assert_true (sb_connectors_resource_changed (a, b, "test://note/one"));
    assert_false (sb_connectors_resource_changed (a, b, "test://note/two"));
    assert_true (sb_connectors_resource_changed (a, b, "test://note/three"));
    assert_true (sb_connectors_resource_changed (b, a, "test://note/three"));    //  came back
    assert_false (sb_connectors_resource_changed (a, b, "test://note/5/raw"));

    //  The template's content, and a prompt's description.
    gi_write (s_dir, "note_tool", "first", "second", "third", "RAW {id}", "Another prompt");
    sb_connectors_t *c = s_load ();
    assert_int_equal (sb_connectors_diff (a, c), SB_LIST_PROMPTS);
    assert_true (sb_connectors_resource_changed (a, c, "test://note/5/raw"));
    assert_false (sb_connectors_resource_changed (a, c, "test://note/one"));

    //  A text of another size changes resources/list (its "size").
    gi_write (s_dir, "note_tool", "first!", "second", "third", "raw {id}", "A prompt");
    sb_connectors_t *d = s_load ();
    assert_int_equal (sb_connectors_diff (a, d), SB_LIST_RESOURCES);

    //  References: the set lives until the last one is dropped.
    assert_int_equal (sb_connectors_refs (a), 1);
    sb_connectors_t *held = sb_connectors_ref (a);
    assert_ptr_equal (held, a);
    assert_int_equal (sb_connectors_refs (a), 2);
    const sb_tool_t *tool = sb_connectors_find_tool (a, "note_tool");
    sb_connectors_destroy (&a);
    assert_null (a);
    assert_int_equal (sb_connectors_refs (held), 1);
    //  Still readable (ASan would object otherwise).
    assert_string_equal (sb_tool_name (tool), "note_tool");
    sb_connectors_destroy (&held);
    sb_connectors_destroy (&held);
    sb_connectors_destroy (NULL);
    assert_null (sb_connectors_ref (NULL));
    sb_connectors_destroy (&same);
    sb_connectors_destroy (&b);
    sb_connectors_destroy (&c);
    sb_connectors_destroy (&d);
    char path [256];
    snprintf (path, sizeof path, "%s/notes.json", s_dir);
    unlink (path);
    rmdir (s_dir);
}

//  ---------------------------------------------------------------------------
//  resources/(un)subscribe as sb_mcp hands them to the gateway

static json_t *
s_handle (sb_connectors_t *set, const char *body, sb_mcp_outcome_t *out)
{
    sb_mcp_env_t env = { .connectors = set, .version = "1" };
    sb_mcp_handle (&env, body, strlen (body), out);
    assert_int_equal (out->action, SB_MCP_REPLY);
    json_t *reply = json_loads (out->as.reply.body, 0, NULL);
    assert_non_null (reply);
    return reply;
}

static void
test_mcp_subscribe (void **state)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-30-subs-mcp-%d", (int) getpid ());
    assert_int_equal (mkdir (s_dir, 0700), 0);
    gi_write (s_dir, "note_tool", "first", "second", "third", "raw {id}", "A prompt");
    sb_connectors_t *set = s_load ();
    sb_mcp_outcome_t out;

    //  A resource and a template match: {} with the URI for the gateway.
    const char *known [] = { "test://note/one", "test://note/42/raw", NULL };
    for (int i = 0; known [i]; i++) {
        char body [256];
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/subscribe\","
                  "\"params\":{\"uri\":\"%s\"}}", known [i]);
        json_t *reply = s_handle (set, body, &out);
        assert_int_equal (json_object_size (json_object_get (reply, "result")), 0);
        assert_true (json_is_object (json_object_get (reply, "result")));
        assert_int_equal (out.as.reply.subscribe, 1);
        assert_string_equal (out.as.reply.subscribe_uri, known [i]);
        json_decref (reply);
        sb_mcp_outcome_clear (&out);
    }
    //  An unknown URI: -32002 with the URI in data, nothing to keep.
    json_t *reply = s_handle (set, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/subscribe\","
                              "\"params\":{\"uri\":\"test://nothing\"}}", &out);
    json_t *error = json_object_get (reply, "error");
    assert_int_equal (json_integer_value (json_object_get (error, "code")), -32002);
    assert_string_equal (json_string_value (json_object_get (json_object_get (error, "data"), "uri")),
                         "test://nothing");
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 4);
    assert_int_equal (out.as.reply.subscribe, 0);
    assert_null (out.as.reply.subscribe_uri);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
    //  Unsubscribing any URI (one that disappeared, say) is {}.
    reply = s_handle (set, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/unsubscribe\","
                      "\"params\":{\"uri\":\"test://gone\"}}", &out);
    assert_true (json_is_object (json_object_get (reply, "result")));
    assert_int_equal (out.as.reply.subscribe, -1);
    assert_string_equal (out.as.reply.subscribe_uri, "test://gone");
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
    //  No uri: -32602.
    reply = s_handle (set, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/subscribe\","
                      "\"params\":{}}", &out);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (reply, "error"), "code")),
                      -32602);
    assert_int_equal (out.as.reply.subscribe, 0);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    //  initialize advertises it all (every negotiated revision has GET streams).
    reply = s_handle (set, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                      "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{}}}", &out);
    json_t *caps = json_object_get (json_object_get (reply, "result"), "capabilities");
    assert_true (json_is_true (json_object_get (json_object_get (caps, "tools"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "prompts"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "resources"), "listChanged")));
    assert_true (json_is_true (json_object_get (json_object_get (caps, "resources"), "subscribe")));
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
    sb_connectors_destroy (&set);
    char path [256];
    snprintf (path, sizeof path, "%s/notes.json", s_dir);
    unlink (path);
    rmdir (s_dir);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_subs_add_remove),
        cmocka_unit_test (test_subs_limits),
        cmocka_unit_test (test_subs_each),
        cmocka_unit_test (test_session_end_hook),
        cmocka_unit_test (test_connectors_diff),
        cmocka_unit_test (test_mcp_subscribe),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
