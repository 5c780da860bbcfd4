/*  tests/30_gateway_param_header.c — unit tests of gateway/sb_param_header
    (SEP-2243: Mcp-Param-* headers checked against the arguments they
    mirror). Each rule accepts a matching header and refuses a bad one with
    the sentence the -32020 error carries; the cases of the conformance
    suite's http-custom-header-server-validation scenario are here too, as
    is the fixture tool of tests/fixtures/connectors/conformance-schema.json.
    No sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_param_header.h"

//  The scenario's kind of tool, plus a nested property and a number.
static const char *s_schema_text =
    "{\"type\":\"object\",\"properties\":{"
    " \"region\":{\"type\":\"string\",\"x-mcp-header\":\"Region\"},"
    " \"priority\":{\"type\":\"integer\",\"x-mcp-header\":\"Priority\"},"
    " \"verbose\":{\"type\":\"boolean\",\"x-mcp-header\":\"Verbose\"},"
    " \"where\":{\"type\":\"object\",\"properties\":{"
    "   \"zone\":{\"type\":\"string\",\"x-mcp-header\":\"Zone\"}}},"
    " \"query\":{\"type\":\"string\"}},"
    "\"required\":[\"region\",\"query\"]}";

static json_t *
s_json (const char *text)
{
    json_error_t err;
    json_t *json = json_loads (text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!json)
        fail_msg ("bad test JSON %s: %s", text, err.text);
    return json;
}

//  Checks `args_text` with the headers given as "Name: value" strings
//  (NULL-terminated): accepted when `fragment` is NULL, else refused with
//  a sentence containing it.
static void
s_expect (const char *args_text, const char *fragment, ...)
{
    json_t *schema = s_json (s_schema_text);
    json_t *args = args_text ? s_json (args_text) : NULL;
    sb_param_headers_t headers = { 0 };
    va_list ap;
    va_start (ap, fragment);
    const char *line;
    while ((line = va_arg (ap, const char *))) {
        const char *colon = strchr (line, ':');
        assert_non_null (colon);
        sb_param_headers_add (&headers, line, (size_t) (colon - line), colon + 1,
                              strlen (colon + 1));
    }
    va_end (ap);
    char problem [SB_PARAM_HEADER_PROBLEM];
    int rc = sb_param_headers_check (&headers, schema, args, problem, sizeof problem);
    if (!fragment) {
        if (rc)
            fail_msg ("%s refused: %s", args_text, problem);
        assert_string_equal (problem, "");
    }
    else {
        if (rc != -1)
            fail_msg ("%s accepted, expected \"%s\"", args_text, fragment);
        if (!strstr (problem, fragment))
            fail_msg ("problem \"%s\" lacks \"%s\"", problem, fragment);
    }
    json_decref (args);
    json_decref (schema);
}

static void
test_add (void **state)
{
    (void) state;
    sb_param_headers_t headers = { 0 };
    sb_param_headers_add (&headers, "mcp-param-region", 16, "us", 2);
    sb_param_headers_add (&headers, "MCP-PARAM-Zone", 14, "a", 1);
    sb_param_headers_add (&headers, "mcp-param-", 10, "x", 1);        //  no name: not kept
    sb_param_headers_add (&headers, "mcp-name", 8, "t", 1);           //  not a param header
    sb_param_headers_add (&headers, "x-mcp-param-a", 13, "t", 1);
    sb_param_headers_add (&headers, NULL, 0, "t", 1);
    assert_int_equal (headers.count, 2);
    assert_int_equal (headers.items [0].name_len, 6);
    assert_memory_equal (headers.items [0].name, "region", 6);
    assert_memory_equal (headers.items [1].name, "Zone", 4);
    assert_false (headers.overflow);
    for (int i = 0; i < SB_MAX_PARAM_HEADERS; i++)
        sb_param_headers_add (&headers, "mcp-param-x", 11, "1", 1);
    assert_int_equal (headers.count, SB_MAX_PARAM_HEADERS);
    assert_true (headers.overflow);
}

static void
test_plain_values (void **state)
{
    (void) state;
    const char *args = "{\"region\":\"us-west1\",\"query\":\"q\"}";
    s_expect (args, NULL, "Mcp-Param-Region:us-west1", NULL);
    //  Names without case, values with; whitespace around the value is
    //  not part of it (RFC 9110 §5.5).
    s_expect (args, NULL, "mcp-param-REGION: \t us-west1  ", NULL);
    s_expect (args, "Header mismatch: the Mcp-Param-Region header does not match "
              "arguments.region.", "Mcp-Param-Region:US-WEST1", NULL);
    s_expect ("{\"region\":\"two  words\"}", NULL, "Mcp-Param-Region:two  words", NULL);
    //  Headers no annotation names, and arguments without one, are ignored.
    s_expect (args, NULL, "Mcp-Param-Region:us-west1", "Mcp-Param-Query:other",
              "Mcp-Param-Other:1", NULL);
    //  Missing, extra, twice.
    s_expect (args, "Header mismatch: the Mcp-Param-Region header is missing, but "
              "arguments.region is given.", NULL);
    s_expect ("{\"query\":\"q\"}", "Header mismatch: the Mcp-Param-Region header is given, "
              "but arguments.region is not.", "Mcp-Param-Region:us", NULL);
    s_expect (args, "the Mcp-Param-Region header is given more than once.",
              "Mcp-Param-Region:us-west1", "mcp-param-region:us-west1", NULL);
    //  null is no value: no header is expected, and none may be sent.
    s_expect ("{\"region\":null}", NULL, NULL);
    s_expect ("{\"region\":null}", "is given, but arguments.region is not.",
              "Mcp-Param-Region:null", NULL);
    s_expect (NULL, NULL, NULL);
    s_expect ("{}", NULL, NULL);
    //  Nested properties, by their path.
    s_expect ("{\"where\":{\"zone\":\"a\"}}", NULL, "Mcp-Param-Zone:a", NULL);
    s_expect ("{\"where\":{\"zone\":\"a\"}}", "the Mcp-Param-Zone header is missing, but "
              "arguments.where.zone is given.", NULL);
    s_expect ("{\"where\":\"zone\"}", NULL, NULL);
}

static void
test_characters (void **state)
{
    (void) state;
    const char *args = "{\"region\":\"r\\u00e9gion\"}";
    s_expect (args, "the Mcp-Param-Region header holds characters a header value may not",
              "Mcp-Param-Region:r\xc3\xa9gion", NULL);
    s_expect ("{\"region\":\"a\\u0001b\"}", "holds characters a header value may not",
              "Mcp-Param-Region:a\001b", NULL);
    s_expect ("{\"region\":\"a\\nb\"}", "holds characters a header value may not",
              "Mcp-Param-Region:a\nb", NULL);
    s_expect ("{\"region\":\"a\\u007fb\"}", "holds characters a header value may not",
              "Mcp-Param-Region:a\177b", NULL);
    char long_value [SB_MAX_PARAM_HEADER_VALUE + 32] = "Mcp-Param-Region:";
    size_t used = strlen (long_value);
    memset (long_value + used, 'a', SB_MAX_PARAM_HEADER_VALUE + 1);
    long_value [used + SB_MAX_PARAM_HEADER_VALUE + 1] = 0;
    s_expect ("{\"region\":\"a\"}", "header is longer than 4096 bytes.", long_value, NULL);
}

static void
test_base64 (void **state)
{
    (void) state;
    //  The scenario's cases: valid, bad padding, bad alphabet, and values
    //  that only look like the sentinel are literal.
    s_expect ("{\"region\":\"Hello\"}", NULL, "Mcp-Param-Region:=?base64?SGVsbG8=?=", NULL);
    s_expect ("{\"region\":\"Hello\"}", "Header mismatch: the Mcp-Param-Region header is not "
              "valid base64", "Mcp-Param-Region:=?base64?SGVsbG8?=", NULL);
    s_expect ("{\"region\":\"Hello\"}", "is not valid base64",
              "Mcp-Param-Region:=?base64?SGVs!!!bG8=?=", NULL);
    s_expect ("{\"region\":\"SGVsbG8=\"}", NULL, "Mcp-Param-Region:SGVsbG8=", NULL);
    s_expect ("{\"region\":\"=?base64?SGVsbG8=\"}", NULL,
              "Mcp-Param-Region:=?base64?SGVsbG8=", NULL);
    s_expect ("{\"region\":\"Hello\"}", "does not match arguments.region.",
              "Mcp-Param-Region:SGVsbG8=", NULL);
    //  The specification's examples.
    s_expect ("{\"region\":\"Hello, \\u4e16\\u754c\"}", NULL,
              "Mcp-Param-Region:=?base64?SGVsbG8sIOS4lueVjA==?=", NULL);
    s_expect ("{\"region\":\" padded \"}", NULL, "Mcp-Param-Region:=?base64?IHBhZGRlZCA=?=", NULL);
    s_expect ("{\"region\":\"line1\\nline2\"}", NULL,
              "Mcp-Param-Region:=?base64?bGluZTEKbGluZTI=?=", NULL);
    s_expect ("{\"region\":\"=?base64?literal?=\"}", NULL,
              "Mcp-Param-Region:=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=", NULL);
    s_expect ("{\"region\":\"\"}", NULL, "Mcp-Param-Region:=?base64?" "?=", NULL);
    //  The markers are lowercase; base64url letters, stray padding and
    //  leftover bits are not standard base64.
    s_expect ("{\"region\":\"Hello\"}", "does not match",
              "Mcp-Param-Region:=?BASE64?SGVsbG8=?=", NULL);
    s_expect ("{\"region\":\"\\u00fb\\u00ff\"}", "is not valid base64",
              "Mcp-Param-Region:=?base64?-_8=?=", NULL);
    s_expect ("{\"region\":\"\\u00fb\\u00ff\"}", NULL, "Mcp-Param-Region:=?base64?w7vDvw==?=", NULL);
    s_expect ("{\"region\":\"Hello\"}", "is not valid base64",
              "Mcp-Param-Region:=?base64?SGVsbG9=?=", NULL);
    s_expect ("{\"region\":\"H\"}", "is not valid base64", "Mcp-Param-Region:=?base64?SB==?=", NULL);
    s_expect ("{\"region\":\"H\"}", NULL, "Mcp-Param-Region:=?base64?SA==?=", NULL);
    s_expect ("{\"region\":\"H\"}", "is not valid base64", "Mcp-Param-Region:=?base64?S===?=", NULL);
    s_expect ("{\"region\":\"H\"}", "is not valid base64", "Mcp-Param-Region:=?base64?SA=A?=", NULL);
    s_expect ("{\"region\":\"H\"}", "is not valid base64", "Mcp-Param-Region:=?base64?====?=", NULL);
    //  A decoded NUL is a byte like any other.
    s_expect ("{\"region\":\"a\\u0000b\"}", NULL, "Mcp-Param-Region:=?base64?YQBi?=", NULL);
    s_expect ("{\"region\":\"a\"}", "does not match", "Mcp-Param-Region:=?base64?YQBi?=", NULL);
}

static void
test_numbers_and_booleans (void **state)
{
    (void) state;
    s_expect ("{\"priority\":42}", NULL, "Mcp-Param-Priority:42", NULL);
    s_expect ("{\"priority\":-7}", NULL, "Mcp-Param-Priority:-7", NULL);
    //  Compared numerically.
    s_expect ("{\"priority\":42}", NULL, "Mcp-Param-Priority:42.0", NULL);
    s_expect ("{\"priority\":42}", NULL, "Mcp-Param-Priority:4.2e1", NULL);
    s_expect ("{\"priority\":42.0}", NULL, "Mcp-Param-Priority:42", NULL);
    s_expect ("{\"priority\":9007199254740991}", NULL, "Mcp-Param-Priority:9007199254740991", NULL);
    s_expect ("{\"priority\":9007199254740991}", "does not match arguments.priority.",
              "Mcp-Param-Priority:9007199254740990", NULL);
    s_expect ("{\"priority\":42}", "the Mcp-Param-Priority header does not match "
              "arguments.priority.", "Mcp-Param-Priority:43", NULL);
    static const char *const not_numbers [] = {
        "Mcp-Param-Priority:042", "Mcp-Param-Priority:+42", "Mcp-Param-Priority:0x2a",
        "Mcp-Param-Priority:42abc", "Mcp-Param-Priority:4 2", "Mcp-Param-Priority:42.",
        "Mcp-Param-Priority:", "Mcp-Param-Priority:inf", "Mcp-Param-Priority:4e", NULL
    };
    for (size_t i = 0; not_numbers [i]; i++)
        s_expect ("{\"priority\":42}", "does not match arguments.priority.", not_numbers [i], NULL);
    s_expect ("{\"priority\":0}", NULL, "Mcp-Param-Priority:=?base64?MA==?=", NULL);
    s_expect ("{\"verbose\":true}", NULL, "Mcp-Param-Verbose:true", NULL);
    s_expect ("{\"verbose\":false}", NULL, "Mcp-Param-Verbose:false", NULL);
    s_expect ("{\"verbose\":true}", "does not match arguments.verbose.",
              "Mcp-Param-Verbose:True", NULL);
    s_expect ("{\"verbose\":false}", "does not match", "Mcp-Param-Verbose:0", NULL);
    //  An argument of another type than the schema's still has to match
    //  (the schema check then refuses it); objects never do.
    s_expect ("{\"region\":5}", NULL, "Mcp-Param-Region:5", NULL);
    s_expect ("{\"region\":{\"a\":1}}", "does not match", "Mcp-Param-Region:{\"a\":1}", NULL);
    s_expect ("{\"region\":[]}", "does not match", "Mcp-Param-Region:[]", NULL);
}

static void
test_limits (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    json_t *args = s_json ("{\"region\":\"us\"}");
    sb_param_headers_t headers = { 0 };
    for (int i = 0; i <= SB_MAX_PARAM_HEADERS; i++)
        sb_param_headers_add (&headers, "mcp-param-other", 15, "1", 1);
    char problem [SB_PARAM_HEADER_PROBLEM];
    assert_int_equal (sb_param_headers_check (&headers, schema, args, problem, sizeof problem), -1);
    assert_string_equal (problem, "Header mismatch: the Mcp-Param-Region header cannot be "
                         "checked: the request has more than 64 Mcp-Param-* headers.");
    //  A short buffer gets the start of the sentence, NUL-terminated.
    char small [16];
    assert_int_equal (sb_param_headers_check (&headers, schema, args, small, sizeof small), -1);
    assert_string_equal (small, "Header mismatch");
    //  No headers at all is a NULL set.
    assert_int_equal (sb_param_headers_check (NULL, schema, args, problem, sizeof problem), -1);
    assert_non_null (strstr (problem, "is missing, but arguments.region is given."));
    json_decref (args);
    //  A long path is cut at a whole name.
    char name [120];
    memset (name, 'n', sizeof name - 1);
    name [sizeof name - 1] = 0;
    json_t *deep = json_pack ("{s:s, s:{s:{s:s, s:{s:{s:s, s:s}}}}}", "type", "object",
                              "properties", name, "type", "object", "properties", "z",
                              "type", "string", "x-mcp-header", "Z");
    args = json_pack ("{s:{s:s}}", name, "z", "v");
    assert_int_equal (sb_param_headers_check (NULL, deep, args, problem, sizeof problem), -1);
    assert_string_equal (problem, "Header mismatch: the Mcp-Param-Z header is missing, but "
                         "arguments.….z is given.");
    json_decref (args);
    json_decref (deep);
    json_decref (schema);
}

//  The fixture tool, through sb_param_headers_check_call.
static void
test_fixture_tool (void **state)
{
    (void) state;
    char *error = NULL;
    sb_connectors_t *connectors = sb_connectors_load (SB_TEST_CONNECTORS, &error);
    if (!connectors)
        fail_msg ("connectors: %s", error ? error : "?");
    json_t *params = s_json ("{\"name\":\"test_param_headers\",\"arguments\":{\"region\":\"Hello\","
                             "\"query\":\"test-default\"},\"_meta\":{}}");
    sb_param_headers_t headers = { 0 };
    sb_param_headers_add (&headers, "mcp-param-region", 16, "=?base64?SGVsbG8=?=", 19);
    char problem [SB_PARAM_HEADER_PROBLEM];
    assert_int_equal (sb_param_headers_check_call (&headers, connectors, params, problem,
                                                   sizeof problem), 0);
    headers.items [0].value = "=?base64?SGVsbG8?=";
    headers.items [0].value_len = 18;
    assert_int_equal (sb_param_headers_check_call (&headers, connectors, params, problem,
                                                   sizeof problem), -1);
    assert_non_null (strstr (problem, "Mcp-Param-Region header is not valid base64"));
    assert_int_equal (sb_param_headers_check_call (NULL, connectors, params, problem,
                                                   sizeof problem), -1);
    assert_non_null (strstr (problem, "Mcp-Param-Region header is missing"));
    json_decref (params);
    //  Nothing to check: no such tool, no name, arguments not an object;
    //  a tool without annotations ignores every Mcp-Param-* header.
    static const char *const nothing [] = {
        "{\"name\":\"no_such_tool\",\"arguments\":{\"region\":\"x\"}}",
        "{\"arguments\":{\"region\":\"x\"}}",
        "{\"name\":\"test_param_headers\",\"arguments\":[1]}",
        "{\"name\":\"test_simple_text\",\"arguments\":{}}",
        "[]", NULL
    };
    headers.items [0].value = "junk\001";
    headers.items [0].value_len = 5;
    for (size_t i = 0; nothing [i]; i++) {
        params = s_json (nothing [i]);
        assert_int_equal (sb_param_headers_check_call (&headers, connectors, params, problem,
                                                       sizeof problem), 0);
        assert_string_equal (problem, "");
        json_decref (params);
    }
    assert_int_equal (sb_param_headers_check_call (&headers, NULL, NULL, problem,
                                                   sizeof problem), 0);
    sb_connectors_destroy (&connectors);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_add),
        cmocka_unit_test (test_plain_values),
        cmocka_unit_test (test_characters),
        cmocka_unit_test (test_base64),
        cmocka_unit_test (test_numbers_and_booleans),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_fixture_tool),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
