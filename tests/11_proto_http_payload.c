/*  tests/11_proto_http_payload.c — unit tests of HTTP requests and
    responses as job data and results (payload/sb_http_payload.h): both
    round-trip, the encoders refuse what breaks a rule, the decoders refuse
    malformed text with a sentence, and a worker cannot set a header that
    is not on the allow-list. */
#include "sb_http_payload.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

static void
test_request_round_trip (void **state)
{
    sb_http_request_t request = {
        .method = "POST", .path = "/token", .query = "a=1",
        .body = "grant_type=authorization_code&code=x", .remote = "127.0.0.1"
    };
    request.body_len = strlen (request.body);
    request.headers [0] = (sb_http_header_t) { "authorization", "Basic YTpi" };
    request.headers [1] = (sb_http_header_t) { "content-type", "application/x-www-form-urlencoded" };
    request.header_count = 2;
    char *text = sb_http_request_encode (&request);
    assert_non_null (text);

    sb_http_request_t decoded = { 0 };
    const char *why = NULL;
    assert_int_equal (sb_http_request_decode (text, strlen (text), &decoded, &why), 0);
    assert_string_equal (decoded.method, "POST");
    assert_string_equal (decoded.path, "/token");
    assert_string_equal (decoded.query, "a=1");
    assert_string_equal (decoded.remote, "127.0.0.1");
    assert_int_equal (decoded.body_len, strlen (request.body));
    assert_string_equal (decoded.body, request.body);
    assert_string_equal (sb_http_request_header (&decoded, "authorization"), "Basic YTpi");
    assert_null (sb_http_request_header (&decoded, "cookie"));
    //  Headers added while building are lowercased.
    assert_int_equal (sb_http_request_add_header (&decoded, "Cookie", "sb_csrf=abc"), 0);
    assert_string_equal (sb_http_request_header (&decoded, "cookie"), "sb_csrf=abc");
    sb_http_request_clear (&decoded);
    free (text);
}

static void
test_request_refused (void **state)
{
    sb_http_request_t request = { .method = "POST", .path = "token", .query = "", .body = "" };
    assert_null (sb_http_request_encode (&request));            //  path without '/'
    request.path = "/token";
    request.headers [0] = (sb_http_header_t) { "x-evil", "a\r\nset-cookie: b" };
    request.header_count = 1;
    assert_null (sb_http_request_encode (&request));            //  CR LF in a value
    request.header_count = 0;
    char body [] = "a\0b";
    request.body = body;
    request.body_len = 3;
    assert_null (sb_http_request_encode (&request));            //  NUL in the body

    const char *bad [] = {
        "[]",
        "{\"method\":\"GET\",\"path\":\"/a\",\"query\":\"\",\"headers\":[],\"body\":\"\"}",  //  no remote
        "{\"method\":\"GET\",\"path\":\"a\",\"query\":\"\",\"headers\":[],\"body\":\"\",\"remote\":\"\"}",
        "{\"method\":\"GET\",\"path\":\"/a\",\"query\":\"\",\"headers\":[[\"Host\",\"x\"]],\"body\":\"\",\"remote\":\"\"}",
        "{\"method\":\"GET\",\"path\":\"/a\",\"query\":\"\",\"headers\":[],\"body\":\"a\\u0000b\",\"remote\":\"\"}",
        "{\"method\":\"GET\",\"method\":\"GET\",\"path\":\"/a\",\"query\":\"\",\"headers\":[],\"body\":\"\",\"remote\":\"\"}",
    };
    for (size_t at = 0; at < sizeof bad / sizeof bad [0]; at++) {
        sb_http_request_t out = { 0 };
        const char *why = NULL;
        assert_int_equal (sb_http_request_decode (bad [at], strlen (bad [at]), &out, &why), -1);
        assert_non_null (why);
        assert_null (out.method);
    }
}

static void
test_response (void **state)
{
    sb_http_response_t response = { .status = 302 };
    assert_int_equal (sb_http_response_add_header (&response, "Location", "https://a.example/cb?code=x"), 0);
    assert_int_equal (sb_http_response_add_header (&response, "Cache-Control", "no-store"), 0);
    assert_int_equal (sb_http_response_add_header (&response, "connection", "close"), -1);
    assert_int_equal (sb_http_response_add_header (&response, "location", "a\nb"), -1);
    assert_int_equal (sb_http_response_set_body (&response, "<p>é</p>", strlen ("<p>é</p>")), 0);
    char *text = sb_http_response_encode (&response);
    assert_non_null (text);
    sb_http_response_t decoded = { 0 };
    const char *why = NULL;
    assert_int_equal (sb_http_response_decode (text, strlen (text), &decoded, &why), 0);
    assert_int_equal (decoded.status, 302);
    assert_string_equal (sb_http_response_header (&decoded, "location"), "https://a.example/cb?code=x");
    assert_string_equal (decoded.body, "<p>é</p>");
    sb_http_response_clear (&decoded);
    sb_http_response_clear (&response);
    free (text);

    //  A body that is not UTF-8 cannot be encoded.
    sb_http_response_t latin1 = { .status = 200, .body = "\xe9", .body_len = 1 };
    assert_null (sb_http_response_encode (&latin1));
    const char *bad [] = {
        "{\"status\":199,\"headers\":[],\"body\":\"\"}",
        "{\"status\":\"200\",\"headers\":[],\"body\":\"\"}",
        "{\"status\":200,\"headers\":[[\"connection\",\"close\"]],\"body\":\"\"}",
        "{\"status\":200,\"headers\":[],\"body\":1}",
        "{\"status\":200,\"headers\":{},\"body\":\"\"}",
    };
    for (size_t at = 0; at < sizeof bad / sizeof bad [0]; at++) {
        sb_http_response_t out = { 0 };
        why = NULL;
        assert_int_equal (sb_http_response_decode (bad [at], strlen (bad [at]), &out, &why), -1);
        assert_non_null (why);
    }
    assert_true (sb_http_response_header_allowed ("set-cookie"));
    assert_false (sb_http_response_header_allowed ("transfer-encoding"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_request_round_trip),
        cmocka_unit_test (test_request_refused),
        cmocka_unit_test (test_response),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
