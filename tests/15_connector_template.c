/*  tests/15_connector_template.c — rendering upstream requests from tool
    templates with hostile argument values, proving that the shape of the
    request (path segments, query parameter names, JSON body keys) never
    changes, whatever the values are. */
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
#define BASE "http://127.0.0.1:8090"

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

//  Renders tool `name` with args given as JSON text. Returns rc.
static int
s_render (const char *name, const char *args_text, sb_upstream_req_t *req, char **error)
{
    const sb_tool_t *tool = sb_connectors_find_tool (s_set, name);
    assert_non_null (tool);
    json_error_t jerr;
    json_t *args = json_loads (args_text, 0, &jerr);
    if (!args)
        fail_msg ("bad test JSON %s: %s", args_text, jerr.text);
    *error = NULL;
    int rc = sb_tool_render (tool, args, req, error);
    json_decref (args);
    return rc;
}

static void
s_expect_url (const char *name, const char *args_text, const char *url)
{
    sb_upstream_req_t req;
    char *error = NULL;
    if (s_render (name, args_text, &req, &error))
        fail_msg ("render %s %s: %s", name, args_text, error);
    if (strcmp (req.url, url))
        fail_msg ("render %s %s\n  got  %s\n  want %s", name, args_text, req.url, url);
    sb_upstream_req_clear (&req);
    assert_null (req.url);
}

static void
s_expect_fail (const char *name, const char *args_text, const char *fragment)
{
    sb_upstream_req_t req;
    char *error = NULL;
    assert_int_equal (s_render (name, args_text, &req, &error), -1);
    assert_null (req.url);
    assert_null (req.body);
    assert_non_null (error);
    if (!strstr (error, fragment))
        fail_msg ("error \"%s\" lacks \"%s\"", error, fragment);
    free (error);
}

//  The URL's shape: path segment count, and the query parameter names.
static void
s_shape (const char *url, int *segments, char *names, size_t size)
{
    const char *path = strstr (url, "://");
    path = strchr (path + 3, '/');
    *segments = 0;
    const char *p = path;
    for (; *p && *p != '?'; p++)
        *segments += *p == '/';
    names [0] = 0;
    size_t at = 0;
    while (*p == '?' || *p == '&') {
        p++;
        while (*p && *p != '=' && at + 2 < size)
            names [at++] = *p++;
        names [at++] = ',';
        names [at] = 0;
        while (*p && *p != '&')
            p++;
    }
    assert_null (strchr (url, '#'));
    for (const char *c = url; *c; c++)
        assert_true (*c > 0x20 && *c < 0x7f);
}

static const char *s_hostile [] = {
    "../admin", "..", ".", "a/b", "a&b=c", "x\"}", "x\"},\"admin\":true,\"y\":{\"",
    "Zürich 東京 🙂", "#frag", "?x=1", "%2e%2e%2f", "a+b c", "\\..\\", "a;b", "\r\nX-Evil: 1",
    "{id}", "null", NULL
};

static void
test_path_segment (void **state)
{
    s_expect_url ("get_account", "{\"id\":\"acc_0001\"}", BASE "/v1/accounts/acc_0001");
    s_expect_url ("get_account", "{\"id\":\"../admin\"}", BASE "/v1/accounts/%2E%2E%2Fadmin");
    s_expect_url ("get_account", "{\"id\":\"a/b\"}", BASE "/v1/accounts/a%2Fb");
    s_expect_url ("get_account", "{\"id\":\"?x=1#y\"}", BASE "/v1/accounts/%3Fx%3D1%23y");
    s_expect_url ("get_account", "{\"id\":\"Zürich\"}", BASE "/v1/accounts/Z%C3%BCrich");
    s_expect_url ("get_account", "{\"id\":\"%2e\"}", BASE "/v1/accounts/%252e");
    s_expect_url ("get_account", "{\"id\":42}", BASE "/v1/accounts/42");
    s_expect_url ("get_account", "{\"id\":true}", BASE "/v1/accounts/true");
    //  Values that would change which resource is addressed are refused.
    s_expect_fail ("get_account", "{\"id\":\"\"}", "may not be empty");
    s_expect_fail ("get_account", "{\"id\":\".\"}", "may not be empty");
    s_expect_fail ("get_account", "{\"id\":\"..\"}", "may not be empty");
    s_expect_fail ("get_account", "{}", "missing required argument 'id'");
    s_expect_fail ("get_account", "{\"id\":null}", "missing required argument 'id'");
    s_expect_fail ("get_account", "{\"id\":{\"a\":1}}", "must be a string, number or boolean");
    s_expect_fail ("get_account", "{\"id\":[1]}", "must be a string, number or boolean");

    //  Whatever the value, exactly three segments.
    for (int i = 0; s_hostile [i]; i++) {
        json_t *args = json_pack ("{s:s}", "id", s_hostile [i]);
        sb_upstream_req_t req;
        char *error = NULL;
        int rc = sb_tool_render (sb_connectors_find_tool (s_set, "get_account"), args, &req,
                                 &error);
        json_decref (args);
        if (rc) {
            assert_true (strcmp (s_hostile [i], ".") == 0 || strcmp (s_hostile [i], "..") == 0);
            free (error);
            continue;
        }
        int segments;
        char names [256];
        s_shape (req.url, &segments, names, sizeof names);
        assert_int_equal (segments, 3);
        assert_string_equal (names, "");
        assert_string_equal (req.method, "GET");
        assert_null (req.body);
        sb_upstream_req_clear (&req);
    }
}

static void
test_query_values (void **state)
{
    s_expect_url ("search_accounts", "{}", BASE "/v1/accounts");
    s_expect_url ("search_accounts", "{\"query\":\"acme\"}", BASE "/v1/accounts?q=acme");
    s_expect_url ("search_accounts", "{\"query\":\"a&b=c\",\"limit\":5}",
                  BASE "/v1/accounts?q=a%26b%3Dc&limit=5");
    s_expect_url ("search_accounts", "{\"query\":\"a+b c#d\"}",
                  BASE "/v1/accounts?q=a%2Bb%20c%23d");
    s_expect_url ("search_accounts", "{\"query\":\"x\\\"}\"}", BASE "/v1/accounts?q=x%22%7D");
    s_expect_url ("search_accounts", "{\"query\":\"Zürich\"}", BASE "/v1/accounts?q=Z%C3%BCrich");
    s_expect_url ("search_accounts", "{\"query\":\"\"}", BASE "/v1/accounts?q=");
    //  Numbers render canonically; null drops the parameter.
    s_expect_url ("search_accounts", "{\"limit\":20.0}", BASE "/v1/accounts?limit=20");
    s_expect_url ("search_accounts", "{\"limit\":null,\"cursor\":\"c1\"}",
                  BASE "/v1/accounts?cursor=c1");
    //  The query order is the template's, whatever the argument order.
    s_expect_url ("search_leads", "{\"limit\":3,\"status\":\"new\",\"query\":\"a.b\"}",
                  BASE "/v1/leads?q=a.b&status=new&limit=3");
    s_expect_fail ("search_accounts", "{\"query\":[\"a\"]}", "must be a string, number or boolean");

    //  Hostile values never add a parameter.
    for (int i = 0; s_hostile [i]; i++) {
        json_t *args = json_pack ("{s:s, s:i}", "query", s_hostile [i], "limit", 7);
        sb_upstream_req_t req;
        char *error = NULL;
        int rc = sb_tool_render (sb_connectors_find_tool (s_set, "search_accounts"), args,
                                 &req, &error);
        json_decref (args);
        assert_int_equal (rc, 0);
        int segments;
        char names [256];
        s_shape (req.url, &segments, names, sizeof names);
        assert_int_equal (segments, 2);
        assert_string_equal (names, "q,limit,");
        sb_upstream_req_clear (&req);
    }

    //  The URL length limit is enforced, not grown past.
    size_t len = SB_MAX_URL_LEN;
    char *big = malloc (len + 1);
    memset (big, 'x', len);
    big [len] = 0;
    json_t *args = json_pack ("{s:s}", "query", big);
    sb_upstream_req_t req;
    char *error = NULL;
    assert_int_equal (sb_tool_render (sb_connectors_find_tool (s_set, "search_accounts"),
                                      args, &req, &error), -1);
    assert_non_null (strstr (error, "too long"));
    free (error);
    json_decref (args);
    free (big);
}

static void
test_json_body (void **state)
{
    const sb_tool_t *create = sb_connectors_find_tool (s_set, "create_task");
    for (int i = 0; s_hostile [i]; i++) {
        json_t *args = json_pack ("{s:s, s:s}", "title", s_hostile [i], "notes", s_hostile [i]);
        sb_upstream_req_t req;
        char *error = NULL;
        if (sb_tool_render (create, args, &req, &error))
            fail_msg ("render: %s", error);
        assert_string_equal (req.method, "POST");
        assert_string_equal (req.url, BASE "/v1/tasks");
        json_t *body = json_loads (req.body, 0, NULL);
        assert_non_null (body);
        //  Exactly the keys the template has for the given arguments.
        assert_int_equal (json_object_size (body), 2);
        assert_string_equal (json_string_value (json_object_get (body, "title")), s_hostile [i]);
        assert_string_equal (json_string_value (json_object_get (body, "notes")), s_hostile [i]);
        assert_null (json_object_get (body, "admin"));
        json_decref (body);
        json_decref (args);
        sb_upstream_req_clear (&req);
    }
    //  Typed values stay typed; omitted optionals are left out.
    json_t *args = json_pack ("{s:s, s:s, s:n}", "title", "Call", "priority", "high",
                              "account_id");
    sb_upstream_req_t req;
    char *error = NULL;
    assert_int_equal (sb_tool_render (create, args, &req, &error), 0);
    assert_string_equal (req.body, "{\"title\":\"Call\",\"priority\":\"high\"}");
    sb_upstream_req_clear (&req);
    json_decref (args);

    //  A raw template: mixed text becomes a string, a whole placeholder keeps its type.
    json_t *body = json_loads ("{\"n\":\"{n}\",\"label\":\"id-{n}\",\"list\":[\"{n}\",\"{x}\"],"
                               "\"fixed\":1}", 0, NULL);
    args = json_loads ("{\"n\":1.5}", 0, NULL);
    assert_int_equal (sb_template_render_raw ("http://h", "PATCH", "/a", NULL, body, args,
                                              &req, &error), 0);
    assert_string_equal (req.body, "{\"n\":1.5,\"label\":\"id-1.5\",\"list\":[1.5],\"fixed\":1}");
    sb_upstream_req_clear (&req);
    json_decref (args);
    args = json_loads ("{}", 0, NULL);
    assert_int_equal (sb_template_render_raw ("http://h", "PATCH", "/a", NULL, body, args,
                                              &req, &error), -1);
    assert_non_null (strstr (error, "missing required argument 'n'"));
    free (error);
    json_decref (args);
    json_decref (body);
}

static void
test_escape_and_check (void **state)
{
    char out [16];
    size_t used = 0;
    assert_int_equal (sb_template_escape (SB_ESC_PATH, "a.b", 3, out, sizeof out, &used), 0);
    assert_string_equal (out, "a%2Eb");
    used = 0;
    assert_int_equal (sb_template_escape (SB_ESC_QUERY, "a.b", 3, out, sizeof out, &used), 0);
    assert_string_equal (out, "a.b");
    used = 0;
    assert_int_equal (sb_template_escape (SB_ESC_QUERY, "\0", 1, out, sizeof out, &used), 0);
    assert_string_equal (out, "%00");
    used = 0;
    assert_int_equal (sb_template_escape (SB_ESC_QUERY, "&&&&&&", 6, out, sizeof out, &used), -1);

    char *error = NULL;
    assert_int_equal (sb_template_check ("/a/{b}/c{d_1}", NULL, NULL, &error), 0);
    assert_int_equal (sb_template_check ("/a/{b", NULL, NULL, &error), -1);
    free (error);
    assert_int_equal (sb_template_check ("/a/b}", NULL, NULL, &error), -1);
    free (error);
    assert_int_equal (sb_template_check ("/a/{}", NULL, NULL, &error), -1);
    free (error);
    assert_int_equal (sb_template_check ("/a/{b-c}", NULL, NULL, &error), -1);
    free (error);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_path_segment),
        cmocka_unit_test (test_query_values),
        cmocka_unit_test (test_json_body),
        cmocka_unit_test (test_escape_and_check),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
