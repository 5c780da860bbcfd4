/*  tests/42_e2e_bad_input.c — hostile input against the running farm:
    malformed JSON, an oversized body, unknown methods and bad arguments at
    the gateway; malformed protocol frames straight at both broker sockets.
    Each gets a clear error or is dropped, no process crashes, and a normal
    tool call still works afterwards. */
#include "sb_msg.h"
#include "sb_farm.h"
#include "sb_harness.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static sb_farm_t *s_farm;

static int
s_setup (void **state)
{
    s_farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1, .no_token_worker = true });
    return 0;
}

static int
s_teardown (void **state)
{
    sb_farm_stop (&s_farm);
    return 0;
}

//  Sends `body`, expects HTTP `want_status`; returns the parsed body or NULL.
static json_t *
s_post (const char *body, size_t len, long want_status)
{
    char url [128], auth [2200];
    snprintf (url, sizeof url, "%s/mcp", s_farm->gateway_url);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", s_farm->token);
    const char *headers [] = { auth, "Content-Type: application/json",
                               "Accept: application/json, text/event-stream", NULL };
    long status = 0;
    char *resp = NULL;
    assert_int_equal (sb_harness_http ("POST", url, headers, body, len, 10000, &status, &resp), 0);
    if (status != want_status)
        fprintf (stderr, "want %ld, got %ld: %s\n", want_status, status, resp ? resp : "");
    assert_int_equal (status, want_status);
    json_t *json = resp ? json_loads (resp, 0, NULL) : NULL;
    free (resp);
    return json;
}

static long
s_rpc_error_code (json_t *json)
{
    return (long) json_integer_value (json_object_get (json_object_get (json, "error"), "code"));
}

static void
test_gateway_bad_requests (void **state)
{
    const char *bad_json = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":";
    json_t *json = s_post (bad_json, strlen (bad_json), 400);
    assert_int_equal (s_rpc_error_code (json), -32700);
    json_decref (json);

    const char *unknown = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/destroy\"}";
    json = s_post (unknown, strlen (unknown), 200);
    assert_int_equal (s_rpc_error_code (json), -32601);
    json_decref (json);

    const char *no_tool = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\","
                          "\"params\":{\"name\":\"no_such_tool\",\"arguments\":{}}}";
    json = s_post (no_tool, strlen (no_tool), 200);
    assert_int_equal (s_rpc_error_code (json), -32602);
    json_decref (json);

    //  Arguments that break the schema: a result the model can read and fix.
    const char *bad_args = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\","
                           "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"limit\":\"many\"}}}";
    json = s_post (bad_args, strlen (bad_args), 200);
    json_t *result = json_object_get (json, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    const char *text = json_string_value (json_object_get (
        json_array_get (json_object_get (result, "content"), 0), "text"));
    assert_non_null (text);
    assert_non_null (strstr (text, "limit"));       //  names the field
    json_decref (json);

    //  2 MiB body: refused by size before it is parsed.
    size_t big = 2u << 20;
    char *huge = malloc (big);
    memset (huge, ' ', big);
    huge [0] = '{';
    huge [big - 1] = '}';
    json = s_post (huge, big, 413);
    json_decref (json);
    free (huge);

    assert_true (sb_harness_alive (s_farm->gateway));
}

//  Sends raw frames on a DEALER connected to `endpoint`.
static void
s_send_raw (zsock_t *dealer, const char *const frames [], const size_t sizes [], size_t count)
{
    for (size_t i = 0; i < count; i++)
        zmq_send (zsock_resolve (dealer), frames [i], sizes [i], i + 1 < count ? ZMQ_SNDMORE : 0);
}

static void
test_broker_malformed_frames (void **state)
{
    char frontend [80], backend [80];
    snprintf (frontend, sizeof frontend, ">%s", s_farm->frontend);
    snprintf (backend, sizeof backend, ">%s", s_farm->backend);
    zsock_t *gw = zsock_new_dealer (frontend);
    zsock_t *wk = zsock_new_dealer (backend);
    assert_non_null (gw);
    assert_non_null (wk);

    static const char garbage [] = "\xde\xad\xbe\xef not msgpack";
    static const char request_no_payload [] = "\x97\x01\x01\xa2x1\xa3" "api\xa4" "demo\xcd\x03\xe8\x00";
    static const char bad_version [] = "\x93\x09\x01\xa2v9";
    static const char huge_array [] = "\xdd\xff\xff\xff\xff";
    char *big = calloc (1, SB_MAX_PAYLOAD_SIZE + 16);
    const char *cases [][3] = {
        { garbage, NULL, NULL },
        { request_no_payload, NULL, NULL },
        { bad_version, "", NULL },
        { huge_array, NULL, NULL },
        { "", "", "" },
        { request_no_payload, big, NULL },
    };
    const size_t sizes [][3] = {
        { sizeof garbage - 1, 0, 0 },
        { sizeof request_no_payload - 1, 0, 0 },
        { sizeof bad_version - 1, 0, 0 },
        { sizeof huge_array - 1, 0, 0 },
        { 0, 0, 0 },
        { sizeof request_no_payload - 1, SB_MAX_PAYLOAD_SIZE + 16, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        size_t count = cases [i][2] ? 3 : cases [i][1] ? 2 : 1;
        s_send_raw (gw, cases [i], sizes [i], count);
        s_send_raw (wk, cases [i], sizes [i], count);
    }
    free (big);

    //  A bad-version request with a readable corr_id is answered, not ignored.
    zpoller_t *poller = zpoller_new (gw, NULL);
    sb_msg_t msg = { 0 };
    bool told = false;
    while (zpoller_wait (poller, 2000) == gw) {
        if (sb_msg_recv (gw, &msg, NULL) == SB_MSG_OK && strcmp (msg.corr_id, "v9") == 0) {
            assert_int_equal (msg.status, SB_STATUS_BAD_VERSION);
            told = true;
            break;
        }
    }
    assert_true (told);
    sb_msg_reset (&msg);
    zpoller_destroy (&poller);
    zsock_destroy (&gw);
    zsock_destroy (&wk);

    //  Still alive, still serving.
    assert_true (sb_harness_alive (s_farm->broker));
    long status = 0;
    char *resp = NULL;
    assert_int_equal (sb_farm_mcp (s_farm, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\","
                                   "\"params\":{\"name\":\"search_accounts\",\"arguments\":{}}}",
                                   &status, &resp), 0);
    assert_int_equal (status, 200);
    json_t *json = json_loads (resp, 0, NULL);
    assert_false (json_is_true (json_object_get (json_object_get (json, "result"), "isError")));
    json_decref (json);
    free (resp);
    for (int i = 0; i < s_farm->api_count; i++)
        assert_true (sb_harness_alive (s_farm->api_workers [i]));
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_gateway_bad_requests),
        cmocka_unit_test (test_broker_malformed_frames),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
