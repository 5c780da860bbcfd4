/*  tests/30_gateway_session.c — unit tests of the gateway's session IDs
    (gateway/sb_session.c) and its Origin / Host / Accept checks
    (gateway/sb_origin.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sb_origin.h"
#include "sb_session.h"

#define NOW 1750000000

static const uint8_t s_key [32] = { 1, 2, 3, 4 };

static void
test_session_roundtrip (void **state)
{
    sb_sessions_t *sessions = sb_sessions_new (s_key, sizeof s_key);
    assert_non_null (sessions);
    json_t *caps = json_loads ("{\"sampling\":{},\"elicitation\":{\"url\":{}}}", 0, NULL);
    unsigned bits = sb_session_caps_from_json (caps);
    json_decref (caps);
    assert_int_equal (bits, SB_CLIENT_SAMPLING | SB_CLIENT_ELICITATION | SB_CLIENT_ELICIT_URL);
    char *id = sb_sessions_issue (sessions, "acme", "alice", "2025-11-25", bits, NOW);
    assert_non_null (id);
    for (const char *c = id; *c; c++)
        assert_true (*c >= 0x21 && *c <= 0x7e);

    //  Any gateway with the same token key accepts it.
    sb_sessions_t *other = sb_sessions_new (s_key, sizeof s_key);
    sb_session_t session;
    assert_int_equal (sb_sessions_verify (other, id, strlen (id), NOW + 10, &session), 0);
    assert_string_equal (session.tenant, "acme");
    assert_string_equal (session.protocol, "2025-11-25");
    assert_int_equal (session.caps, bits);
    assert_int_equal (session.issued_at, NOW);
    //  It belongs to its user in its tenant, and to nobody else: not to
    //  another user of the same tenant, nor to the same name elsewhere.
    assert_true (sb_sessions_owned_by (other, &session, "acme", "alice"));
    assert_false (sb_sessions_owned_by (other, &session, "acme", "mallory"));
    assert_false (sb_sessions_owned_by (other, &session, "acme", "alice "));
    assert_false (sb_sessions_owned_by (other, &session, "acme", ""));
    assert_false (sb_sessions_owned_by (other, &session, "globex", "alice"));
    //  The ID does not show who the user is: its payload has no "alice".
    const char *payload_b64 = id + strlen ("s1.");
    const char *dot = strchr (payload_b64, '.');
    char payload [512];
    size_t payload_len = 0;
    assert_int_equal (sb_base64url_decode_strict (payload_b64, (size_t) (dot - payload_b64),
                                                  (uint8_t *) payload, sizeof payload - 1,
                                                  &payload_len), 0);
    payload [payload_len] = 0;
    assert_non_null (strstr (payload, "\"t\":\"acme\""));
    assert_non_null (strstr (payload, "\"u\":\""));
    assert_null (strstr (payload, "alice"));
    //  No user, no session.
    assert_null (sb_sessions_issue (sessions, "acme", "", "2025-11-25", bits, NOW));
    assert_null (sb_sessions_issue (sessions, "acme", NULL, "2025-11-25", bits, NOW));

    //  Aged out, from the future, under another key: refused.
    assert_int_equal (sb_sessions_verify (other, id, strlen (id), NOW + SB_MAX_SESSION_AGE_S + 1, &session), -1);
    assert_int_equal (sb_sessions_verify (other, id, strlen (id), NOW - SB_SESSION_SKEW_S - 1, &session), -1);
    uint8_t key2 [32] = { 9 };
    sb_sessions_t *foreign = sb_sessions_new (key2, sizeof key2);
    assert_int_equal (sb_sessions_verify (foreign, id, strlen (id), NOW, &session), -1);
    sb_sessions_destroy (&foreign);

    //  Every single-character change is refused.
    size_t len = strlen (id);
    for (size_t i = 0; i < len; i++) {
        char *copy = strdup (id);
        copy [i] = copy [i] == 'A'? 'B': 'A';
        assert_int_equal (sb_sessions_verify (other, copy, len, NOW, &session), -1);
        free (copy);
    }
    //  Truncations and garbage.
    for (size_t i = 0; i < len; i++)
        assert_int_equal (sb_sessions_verify (other, id, i, NOW, &session), -1);
    const char *junk [] = { "", "s1.", "s1..", "s1.a.b", "x1.aaaa.bbbb", "s1.!!!!.????", NULL };
    for (int i = 0; junk [i]; i++)
        assert_int_equal (sb_sessions_verify (other, junk [i], strlen (junk [i]), NOW, &session), -1);

    //  Ended here: refused here, still accepted elsewhere (documented).
    assert_int_equal (sb_sessions_verify (sessions, id, len, NOW, &session), 0);
    sb_sessions_end (sessions, &session, NOW);
    sb_sessions_end (sessions, &session, NOW);
    assert_int_equal (sb_sessions_ended_count (sessions, NOW), 1);
    assert_int_equal (sb_sessions_verify (sessions, id, len, NOW, &session), -1);
    assert_int_equal (sb_sessions_verify (other, id, len, NOW, &session), 0);
    //  The entry expires with the session.
    assert_int_equal (sb_sessions_ended_count (sessions, NOW + SB_MAX_SESSION_AGE_S + 2), 0);
    free (id);
    sb_sessions_destroy (&other);
    sb_sessions_destroy (&sessions);
    sb_sessions_destroy (&sessions);
}

static void
test_ended_set_bounded (void **state)
{
    sb_sessions_t *sessions = sb_sessions_new (s_key, sizeof s_key);
    sb_session_t session;
    char *first = NULL;
    for (int i = 0; i < SB_MAX_ENDED_SESSIONS + 10; i++) {
        char *id = sb_sessions_issue (sessions, "acme", "alice", "2025-06-18", 0, NOW + i);
        assert_int_equal (sb_sessions_verify (sessions, id, strlen (id), NOW + i, &session), 0);
        sb_sessions_end (sessions, &session, NOW + i);
        if (i == 0)
            first = id;
        else
            free (id);
    }
    assert_int_equal (sb_sessions_ended_count (sessions, NOW + 20000), SB_MAX_ENDED_SESSIONS);
    //  The oldest was forgotten first.
    assert_int_equal (sb_sessions_verify (sessions, first, strlen (first), NOW + 20000, &session), 0);
    free (first);
    sb_sessions_destroy (&sessions);
}

static bool
s_host (sb_origin_t *o, const char *host)
{
    return sb_origin_host_ok (o, host, strlen (host));
}

static bool
s_origin (sb_origin_t *o, const char *origin, const char *host)
{
    return sb_origin_origin_ok (o, origin, origin? strlen (origin): 0, "http", host, strlen (host));
}

static void
test_host_and_origin (void **state)
{
    sb_origin_t *o = sb_origin_new ("https://app.example.com, https://chatgpt.com/", "mcp.internal",
                                    "https://mcp.example.com/base");
    assert_non_null (o);
    assert_true (s_host (o, "127.0.0.1:8080"));
    assert_true (s_host (o, "localhost"));
    assert_true (s_host (o, "LOCALHOST:1"));
    assert_true (s_host (o, "[::1]:443"));
    assert_true (s_host (o, "mcp.example.com"));
    assert_true (s_host (o, "mcp.internal:8080"));
    assert_false (s_host (o, "evil.example.com"));
    assert_false (s_host (o, "evil.example.com:8080"));
    assert_false (s_host (o, "localhost.evil.com"));
    assert_false (s_host (o, "127.0.0.1:80x"));
    assert_false (s_host (o, "127.0.0.1:"));
    assert_false (s_host (o, ""));
    assert_false (s_host (o, "[::1"));
    assert_false (s_host (o, "a b"));
    assert_false (sb_origin_host_ok (o, NULL, 0));

    assert_true (s_origin (o, NULL, "127.0.0.1:1"));
    assert_true (s_origin (o, "http://localhost:3000", "127.0.0.1:1"));
    assert_true (s_origin (o, "https://127.0.0.1", "127.0.0.1:1"));
    assert_true (s_origin (o, "http://[::1]:9", "127.0.0.1:1"));
    assert_true (s_origin (o, "https://app.example.com", "mcp.example.com"));
    assert_true (s_origin (o, "https://chatgpt.com", "mcp.example.com"));
    assert_true (s_origin (o, "https://mcp.example.com", "mcp.example.com"));
    assert_true (s_origin (o, "http://mcp.internal:8080", "mcp.internal:8080"));     //  same origin
    assert_false (s_origin (o, "http://mcp.internal:8081", "mcp.internal:8080"));
    assert_false (s_origin (o, "http://evil.example.com", "127.0.0.1:1"));
    assert_false (s_origin (o, "https://app.example.com.evil", "127.0.0.1:1"));
    assert_false (s_origin (o, "null", "127.0.0.1:1"));
    assert_false (s_origin (o, "", "127.0.0.1:1"));
    assert_false (s_origin (o, "ftp://localhost", "127.0.0.1:1"));
    assert_false (s_origin (o, "http://localhost/path", "127.0.0.1:1"));
    sb_origin_destroy (&o);
    sb_origin_destroy (&o);

    o = sb_origin_new ("*", "*", "http://127.0.0.1:8080");
    assert_true (s_host (o, "anything.example"));
    assert_true (s_origin (o, "https://anything.example", "x"));
    sb_origin_destroy (&o);

    //  Too long an entry is a configuration error.
    char big [600];
    memset (big, 'a', sizeof big - 1);
    big [sizeof big - 1] = 0;
    assert_null (sb_origin_new (big, "", "http://127.0.0.1"));
}

static unsigned
s_accepts (const char *value)
{
    return sb_origin_accepts (value, value? strlen (value): 0);
}

static void
test_accept (void **state)
{
    const unsigned both = SB_ACCEPT_JSON | SB_ACCEPT_SSE;
    assert_int_equal (s_accepts (NULL), both);
    assert_int_equal (s_accepts ("application/json, text/event-stream"), both);
    assert_int_equal (s_accepts ("text/event-stream,application/json"), both);
    assert_int_equal (s_accepts ("*/*"), both);
    assert_int_equal (s_accepts ("application/*;q=0.5, text/*"), both);
    assert_int_equal (s_accepts ("Application/JSON; charset=utf-8 , TEXT/EVENT-STREAM"), both);
    assert_int_equal (s_accepts ("application/json"), SB_ACCEPT_JSON);
    assert_int_equal (s_accepts ("text/event-stream"), SB_ACCEPT_SSE);
    assert_int_equal (s_accepts ("application/json, text/event-stream;q=0"), SB_ACCEPT_JSON);
    assert_int_equal (s_accepts ("application/json;q=0.0, text/event-stream"), SB_ACCEPT_SSE);
    assert_int_equal (s_accepts ("application/json;q=0.01, text/event-stream"), both);
    assert_int_equal (s_accepts ("text/html"), 0);
    assert_int_equal (s_accepts (""), 0);
    assert_int_equal (s_accepts (",,;;"), 0);
    assert_int_equal (s_accepts ("application/jsonx, text/event-streams"), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_session_roundtrip),
        cmocka_unit_test (test_ended_set_bounded),
        cmocka_unit_test (test_host_and_origin),
        cmocka_unit_test (test_accept),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
