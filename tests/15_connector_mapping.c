/*  tests/15_connector_mapping.c — mapping upstream responses into MCP
    CallToolResults: lists and objects on 2xx, and one case per error class
    (invalid JSON, 401/403, 404, 429, other 4xx, 5xx, unexpected). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_connector_int.h"

#define CONNECTORS_DIR SB_TEST_CONNECTORS

static sb_connectors_t *s_set;

static int
s_setup (void **state)
{
    char *error = NULL;
    s_set = sb_connectors_load (CONNECTORS_DIR, &error);
    if (!s_set) {
        fprintf (stderr, "load: %s\n", error);
        free (error);
        return -1;
    }
    return 0;
}

static int
s_teardown (void **state)
{
    sb_connectors_destroy (&s_set);
    return 0;
}

//  json_equal, with two absent values the same.
static bool
s_same (json_t *a, json_t *b)
{
    return (!a && !b) || json_equal (a, b);
}

static json_t *
s_map (const char *tool_name, long status, const char *body)
{
    const sb_tool_t *tool = sb_connectors_find_tool (s_set, tool_name);
    assert_non_null (tool);
    json_t *result = sb_tool_map_result (tool, status, body, body ? strlen (body) : 0);
    assert_non_null (result);
    //  Every result has exactly one text item; printed, a success gets the
    //  same JSON as its structuredContent as a second one.
    json_t *content = json_object_get (result, "content");
    assert_int_equal (json_array_size (content), 1);
    char *text = sb_tool_result_text (result);
    json_t *printed = json_loads (text, 0, NULL);
    free (text);
    assert_non_null (printed);
    json_t *structured = json_object_get (result, "structuredContent");
    json_t *items = json_object_get (printed, "content");
    assert_true (s_same (json_object_get (printed, "structuredContent"), structured));
    assert_true (s_same (json_array_get (items, 0), json_array_get (content, 0)));
    assert_true (s_same (json_object_get (printed, "isError"), json_object_get (result, "isError")));
    assert_true (s_same (json_object_get (printed, "_meta"), json_object_get (result, "_meta")));
    if (structured && !json_is_true (json_object_get (result, "isError"))) {
        assert_int_equal (json_array_size (items), 2);
        json_t *copy = json_loads (json_string_value (json_object_get (json_array_get (items, 1),
                                                                       "text")), 0, NULL);
        assert_true (json_equal (copy, structured));
        json_decref (copy);
    }
    else
        assert_int_equal (json_array_size (items), 1);
    json_decref (printed);
    assert_string_equal (json_string_value (json_object_get (json_array_get (content, 0), "type")),
                         "text");
    assert_true (strlen (json_string_value (json_object_get (json_array_get (content, 0),
                                                             "text"))) < SB_MAX_SUMMARY_TEXT);
    return result;
}

static const char *
s_text (json_t *result)
{
    return json_string_value (json_object_get (json_array_get (json_object_get (result, "content"),
                                                               0), "text"));
}

static void
s_expect_error (const char *tool, long status, const char *body, const char *text,
                const char *error_type)
{
    json_t *result = s_map (tool, status, body);
    assert_true (json_is_true (json_object_get (result, "isError")));
    if (strcmp (s_text (result), text))
        fail_msg ("HTTP %ld:\n  got  %s\n  want %s", status, s_text (result), text);
    json_t *meta = json_object_get (result, "_meta");
    assert_string_equal (json_string_value (json_object_get (meta, "error_type")), error_type);
    assert_int_equal (json_integer_value (json_object_get (meta, "upstream_status")), status);
    json_decref (result);
}

static void
test_list (void **state)
{
    const char *body =
        "{\"items\":["
        "{\"id\":\"acc_0001\",\"name\":\"Acme Corp\",\"industry\":\"Manufacturing\","
        " \"city\":\"Berlin\",\"secret_internal\":\"x\"},"
        "{\"id\":\"acc_0002\",\"name\":\"Globex\",\"industry\":\"Energy\"},"
        "{\"id\":\"acc_0003\",\"name\":\"Initech\"}],"
        "\"next_cursor\":\"abc\",\"total\":40}";
    json_t *result = s_map ("search_accounts", 200, body);
    assert_true (json_is_false (json_object_get (result, "isError")));
    assert_string_equal (s_text (result),
        "Found 40 accounts: Acme Corp (Manufacturing, Berlin); Globex (Energy); Initech; and 37 more. "
        "More results are available (next_cursor).");
    json_t *sc = json_object_get (result, "structuredContent");
    assert_int_equal (json_integer_value (json_object_get (sc, "count")), 3);
    assert_int_equal (json_integer_value (json_object_get (sc, "total")), 40);
    assert_string_equal (json_string_value (json_object_get (sc, "next_cursor")), "abc");
    json_t *first = json_array_get (json_object_get (sc, "items"), 0);
    assert_string_equal (json_string_value (json_object_get (first, "id")), "acc_0001");
    //  Only the fields the mapping keeps.
    assert_null (json_object_get (first, "secret_internal"));
    json_decref (result);

    result = s_map ("search_accounts", 200, "{\"items\":[]}");
    assert_string_equal (s_text (result), "Found 0 accounts.");
    assert_null (json_object_get (json_object_get (result, "structuredContent"), "next_cursor"));
    json_decref (result);

    result = s_map ("search_accounts", 200, "{\"items\":[{\"name\":\"Solo\"}],\"next_cursor\":null}");
    assert_string_equal (s_text (result), "Found 1 account: Solo.");
    json_decref (result);

    //  Many long items: the summary names a few and stays short.
    char *big = malloc (200000);
    size_t at = (size_t) snprintf (big, 200000, "{\"items\":[");
    for (int i = 0; i < 100; i++)
        at += (size_t) snprintf (big + at, 200000 - at, "%s{\"name\":\"%0300d\",\"industry\":\"I\"}",
                                 i ? "," : "", i);
    snprintf (big + at, 200000 - at, "]}");
    result = s_map ("search_accounts", 200, big);
    assert_non_null (strstr (s_text (result), "and 95 more"));
    assert_int_equal (json_integer_value (json_object_get (json_object_get (result,
                                          "structuredContent"), "count")), 100);
    json_decref (result);
    free (big);
}

static void
test_object (void **state)
{
    json_t *result = s_map ("get_account", 200,
        "{\"id\":\"acc_0001\",\"name\":\"Acme Corp\",\"industry\":\"Manufacturing\","
        "\"city\":\"Berlin\",\"employees\":120}");
    assert_true (json_is_false (json_object_get (result, "isError")));
    assert_string_equal (s_text (result), "Account: Acme Corp (Manufacturing, Berlin).");
    json_t *sc = json_object_get (result, "structuredContent");
    assert_int_equal (json_integer_value (json_object_get (sc, "employees")), 120);
    json_decref (result);

    result = s_map ("create_task", 201,
        "{\"id\":\"task_0301\",\"title\":\"Call Acme\",\"status\":\"open\","
        "\"due_date\":\"2025-01-31\"}");
    assert_string_equal (s_text (result), "Created task: Call Acme (open, 2025-01-31).");
    json_decref (result);

    //  A title with control characters is flattened in the text.
    result = s_map ("get_account", 200, "{\"name\":\"A\\nB\"}");
    assert_string_equal (s_text (result), "Account: A B.");
    json_decref (result);
}

static void
test_errors (void **state)
{
    s_expect_error ("get_account", 200, "{not json", "The CRM sent an answer switchboard could "
                    "not read (HTTP 200, not JSON). Try again, or tell an admin if it persists.",
                    "upstream_invalid_response");
    s_expect_error ("search_accounts", 200, "{\"items\":{}}", "The CRM sent an answer switchboard "
                    "could not read (HTTP 200, unexpected shape). Try again, or tell an admin if "
                    "it persists.", "upstream_invalid_response");
    s_expect_error ("search_accounts", 200, NULL, "The CRM sent an answer switchboard could not "
                    "read (HTTP 200, not JSON). Try again, or tell an admin if it persists.",
                    "upstream_invalid_response");
    s_expect_error ("get_account", 401, "{\"error\":\"unauthorized\"}",
                    "The CRM refused switchboard's credentials; an admin needs to re-connect it.",
                    "upstream_auth");
    s_expect_error ("search_accounts", 403, NULL,
                    "The CRM refused switchboard's credentials; an admin needs to re-connect it.",
                    "upstream_auth");
    s_expect_error ("get_account", 404, "{\"error\":\"not_found\"}",
                    "No account with that ID exists.", "not_found");
    s_expect_error ("get_contact", 404, "", "No contact with that ID exists.", "not_found");
    s_expect_error ("get_account", 503, "<html>oops</html>",
                    "The CRM is having problems right now (HTTP 503). Try again in a minute.",
                    "upstream_unavailable");
    s_expect_error ("create_task", 422,
                    "{\"error\":\"validation_failed\",\"message\":\"title is required\"}",
                    "The CRM rejected the request (HTTP 422): title is required.",
                    "upstream_rejected");
    s_expect_error ("create_task", 400, "garbage", "The CRM rejected the request (HTTP 400).",
                    "upstream_rejected");
    s_expect_error ("get_account", 302, NULL,
                    "The CRM gave an answer switchboard did not expect (HTTP 302).",
                    "upstream_unexpected");

    //  429: retry_after when the upstream says, none otherwise.
    json_t *result = s_map ("search_accounts", 429, "{\"error\":\"rate_limited\",\"retry_after\":7}");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_text (result),
                         "The CRM is rate-limiting switchboard; try again in 7 seconds.");
    json_t *meta = json_object_get (result, "_meta");
    assert_string_equal (json_string_value (json_object_get (meta, "error_type")),
                         "upstream_rate_limited");
    assert_int_equal (json_integer_value (json_object_get (meta, "retry_after")), 7);
    json_decref (result);
    result = s_map ("search_accounts", 429, NULL);
    assert_null (json_object_get (json_object_get (result, "_meta"), "retry_after"));
    assert_string_equal (s_text (result),
                         "The CRM is rate-limiting switchboard; try again in a minute.");
    json_decref (result);

    //  An upstream message is quoted, but cut short.
    char body [4096];
    char message [2048];
    memset (message, 'm', sizeof message - 1);
    message [sizeof message - 1] = 0;
    snprintf (body, sizeof body, "{\"message\":\"%s\"}", message);
    result = s_map ("create_task", 400, body);
    assert_true (strlen (s_text (result)) < 300);
    json_decref (result);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_list),
        cmocka_unit_test (test_object),
        cmocka_unit_test (test_errors),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
