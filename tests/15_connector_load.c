/*  tests/15_connector_load.c — loading connector definitions: the real
    connectors/ folder loads; broken definitions are refused with an error
    naming the file, the JSON pointer and the rule (and for a rule of
    connectors/connector.schema.json its keyword); the loader's format is
    that file byte for byte; tool descriptors, retry safety, auth
    headers, base-URL overrides; sb_tool_check_args, one case per rule;
    the call-time policy the api worker applies (confirmation of destructive
    or "confirm" tools, the question asked, outputSchema checks); a tool's
    "taskSupport" (kept out of its descriptor); quota declarations (a
    tool's "cost", a connector's "upstream_budget"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sb_connector.h"
#include "sb_connector_int.h"

#define CONNECTORS_DIR SB_TEST_CONNECTORS

//  A minimal valid connector, as a format string with one %s where a tool's
//  extra members (or an override) go.
#define S_VALID_TOOL \
    "{\"name\":\"%s\",\"description\":\"d\"," \
    " \"inputSchema\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}}," \
    "                  \"required\":[\"id\"]}," \
    " \"request\":{\"method\":\"GET\",\"path\":\"/x/{id}\"}," \
    " \"result\":{\"mapping\":\"object\",\"noun\":\"thing\"}}"

static char s_dir [256];

static void
s_write (const char *name, const char *text)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static void
s_clean_dir (void)
{
    char path [512];
    const char *names [] = { "a.json", "b.json", "c.json", NULL };
    for (int i = 0; names [i]; i++) {
        snprintf (path, sizeof path, "%s/%s", s_dir, names [i]);
        unlink (path);
    }
}

//  A connector file text with the given tools array contents.
static char *
s_connector (const char *name, const char *tools)
{
    char *text = NULL;
    assert_true (asprintf (&text,
        "{\"name\":\"%s\",\"title\":\"T\",\"base_url\":\"http://127.0.0.1:1\","
        " \"auth\":{\"type\":\"bearer\",\"credential\":\"shared\",\"token_env\":\"SB_TEST_TOKEN\"},"
        " \"tools\":[%s]}", name, tools) > 0);
    return text;
}

static char *
s_tool (const char *name)
{
    char *text = NULL;
    assert_true (asprintf (&text, S_VALID_TOOL, name) > 0);
    return text;
}

//  Writes connector `name` with `tools` (array contents) as s_dir/a.json
//  and loads the folder; fails the test when it does not load.
static sb_connectors_t *
s_load_tools (const char *name, const char *tools)
{
    char *text = s_connector (name, tools);
    s_write ("a.json", text);
    free (text);
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    if (!set)
        fail_msg ("load failed: %s", error);
    return set;
}

//  Loads s_dir expecting failure; checks the error holds both fragments.
static void
s_expect_fragments (const char *fragment1, const char *fragment2)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    assert_null (set);
    assert_non_null (error);
    if (!strstr (error, fragment1) || (fragment2 && !strstr (error, fragment2)))
        fail_msg ("error \"%s\" lacks \"%s\" / \"%s\"", error, fragment1,
                  fragment2 ? fragment2 : "");
    free (error);
}

//  Loads s_dir expecting failure with the error "<s_dir>/<file>: <tail>"
//  (the JSON pointer, the rule and, for a rule of the format, its keyword),
//  exactly, or only starting so when `prefix`.
static void
s_expect_at (const char *file, const char *tail, bool prefix)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    assert_null (set);
    assert_non_null (error);
    char want [2048];
    snprintf (want, sizeof want, "%s/%s: %s", s_dir, file, tail);
    if (prefix ? strncmp (error, want, strlen (want)) : strcmp (error, want))
        fail_msg ("error\n  \"%s\"\nwanted%s\n  \"%s\"", error, prefix ? " to start with" : "",
                  want);
    free (error);
}

static void
s_expect_error (const char *file, const char *tail)
{
    s_expect_at (file, tail, false);
}

static void
s_expect_bad_tool (const char *tool_text, const char *tail)
{
    s_clean_dir ();
    char *text = s_connector ("bad", tool_text);
    s_write ("a.json", text);
    free (text);
    s_expect_error ("a.json", tail);
}

//  As s_expect_bad_tool, for errors that go on past `start`.
static void
s_expect_bad_tool_start (const char *tool_text, const char *start)
{
    s_clean_dir ();
    char *text = s_connector ("bad", tool_text);
    s_write ("a.json", text);
    free (text);
    s_expect_at ("a.json", start, true);
}

static void
test_real_connectors_load (void **state)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (CONNECTORS_DIR, &error);
    if (!set)
        fail_msg ("load failed: %s", error);
    assert_null (error);
    const sb_connector_t *crm = sb_connectors_find (set, "sandbox-crm");
    assert_non_null (crm);
    assert_string_equal (sb_connector_name (crm), "sandbox-crm");
    assert_string_equal (sb_connector_base_url (crm), "http://127.0.0.1:8090");
    assert_true (sb_connector_timeout_ms (crm) >= 100);
    assert_true (sb_connector_max_response (crm) >= 1024);
    assert_true (sb_connectors_tool_count (set) >= 8);

    const char *tools [] = {
        "search_accounts", "get_account", "search_contacts", "get_contact",
        "search_leads", "search_opportunities", "list_tasks", "create_task", NULL
    };
    for (int i = 0; tools [i]; i++) {
        const sb_tool_t *tool = sb_connectors_find_tool (set, tools [i]);
        if (!tool)
            fail_msg ("tool %s missing", tools [i]);
        assert_ptr_equal (sb_tool_connector (tool), crm);
        json_t *descriptor = sb_tool_descriptor (tool);
        assert_string_equal (json_string_value (json_object_get (descriptor, "name")), tools [i]);
        assert_true (json_is_string (json_object_get (descriptor, "description")));
        assert_true (json_is_object (json_object_get (descriptor, "inputSchema")));
        json_t *annotations = json_object_get (descriptor, "annotations");
        assert_true (json_is_boolean (json_object_get (annotations, "readOnlyHint")));
        json_decref (descriptor);
        bool write = strcmp (tools [i], "create_task") == 0;
        assert_int_equal (sb_tool_retry_safe (tool), !write);
        assert_true (json_is_object (sb_tool_input_schema (tool)));
    }
    assert_null (sb_connectors_find_tool (set, "no_such_tool"));
    assert_null (sb_connectors_find (set, "no-such-connector"));
    assert_non_null (sb_connectors_tool_at (set, 0));
    assert_null (sb_connectors_tool_at (set, sb_connectors_tool_count (set)));

    //  Auth header comes from the environment variable the connector names.
    unsetenv ("SB_SANDBOX_CRM_TOKEN");
    assert_null (sb_connector_auth_header (crm));
    setenv ("SB_SANDBOX_CRM_TOKEN", "sandbox-key", 1);
    char *header = sb_connector_auth_header (crm);
    assert_string_equal (header, "Bearer sandbox-key");
    free (header);
    assert_string_equal (sb_connector_auth_header_name (crm), "Authorization");
    sb_connectors_destroy (&set);

    //  Or from the file that <token_env>_FILE names, read at load: then the
    //  variable itself is not read (no environment needs to hold it).
    char secret_path [] = "/tmp/sb-crm-token-XXXXXX";
    int fd = mkstemp (secret_path);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, "from-file\n", 10), 10);
    close (fd);
    setenv ("SB_SANDBOX_CRM_TOKEN_FILE", secret_path, 1);
    set = sb_connectors_load (CONNECTORS_DIR, &error);
    if (!set)
        fail_msg ("load failed: %s", error);
    crm = sb_connectors_find (set, "sandbox-crm");
    header = sb_connector_auth_header (crm);
    assert_string_equal (header, "Bearer from-file");
    free (header);
    sb_connectors_destroy (&set);
    //  A file that cannot be read stops the load, naming the variable
    unlink (secret_path);
    assert_null (sb_connectors_load (CONNECTORS_DIR, &error));
    assert_non_null (strstr (error, "sandbox-crm.json: /auth/token_env: "));
    assert_non_null (strstr (error, "(from SB_SANDBOX_CRM_TOKEN_FILE)"));
    free (error);
    error = NULL;
    unsetenv ("SB_SANDBOX_CRM_TOKEN_FILE");
    set = sb_connectors_load (CONNECTORS_DIR, &error);
    assert_non_null (set);
    crm = sb_connectors_find (set, "sandbox-crm");

    //  Base URL overrides.
    assert_int_equal (sb_connectors_set_base_urls (set, ""), 0);
    assert_int_equal (sb_connectors_set_base_urls (set, "sandbox-crm=http://127.0.0.1:9999/"), 0);
    assert_string_equal (sb_connector_base_url (crm), "http://127.0.0.1:9999");
    assert_int_equal (sb_connectors_set_base_urls (set, "nope=http://x"), -1);
    assert_int_equal (sb_connectors_set_base_urls (set, "sandbox-crm"), -1);
    assert_int_equal (sb_connectors_set_base_url (set, "sandbox-crm", "ftp://x"), -1);
    assert_int_equal (sb_connectors_set_base_url (set, "sandbox-crm", "http://127.0.0.1:1"), 0);
    assert_string_equal (sb_connector_base_url (crm), "http://127.0.0.1:1");

    sb_connectors_destroy (&set);
    assert_null (set);
    sb_connectors_destroy (&set);
}

static void
test_bad_definitions (void **state)
{
    char *error = NULL;
    assert_null (sb_connectors_load ("/nonexistent/connectors", &error));
    assert_non_null (strstr (error, "/nonexistent/connectors"));
    free (error);

    s_clean_dir ();
    s_expect_fragments ("no connector definitions", NULL);

    s_write ("a.json", "{\"name\": ");
    s_expect_fragments ("a.json:1:", "invalid JSON");

    //  Each error names the file, the JSON pointer of the value, the rule
    //  and the keyword of connectors/connector.schema.json that says it.
    s_clean_dir ();
    s_write ("a.json", "[1]");
    s_expect_error ("a.json", "must be an object (type)");

    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"tools\":[]}");
    s_expect_error ("a.json", "/tools: must have at least 1 item (minItems)");

    char *t1 = s_tool ("dup");
    char *text = NULL;
    assert_true (asprintf (&text, "{\"name\":\"x\",\"title\":\"T\",\"tools\":[%s]}", t1) > 0);
    s_write ("a.json", text);
    free (text);
    s_expect_error ("a.json", "/base_url: is required (required)");

    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"file:///etc\",\"tools\":[]}");
    s_expect_error ("a.json", "/base_url: must match the pattern ^(https?://|\\{[a-z][a-z0-9_]{0,63}\\})[^?#\\s]*$ (pattern)");

    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\",\"colour\":1,"
                       "\"tools\":[]}");
    s_expect_error ("a.json", "/colour: is not an allowed member here (additionalProperties)");

    s_write ("a.json", "{\"name\":\"x y\",\"title\":\"T\",\"tools\":[]}");
    s_expect_error ("a.json", "/name: must match the pattern ^[A-Za-z0-9-]{1,64}$ (pattern)");

    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"limits\":{\"timeout_ms\":50},\"tools\":[]}");
    s_expect_error ("a.json", "/limits/timeout_ms: must be at least 100 (minimum)");

    //  Auth: a known scheme, a secret's variable, a header for api_key_header only.
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"magic\"},\"tools\":[]}");
    s_expect_error ("a.json", "/auth/type: must be one of [\"none\",\"bearer\",\"api_key_header\","
                              "\"oauth2\"] (enum)");
    //  A shared secret names its variable; a tenant's credential has none.
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"bearer\",\"credential\":\"shared\"},\"tools\":[]}");
    s_expect_error ("a.json", "/auth/token_env: is required (required)");
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"bearer\",\"token_env\":\"K\"},\"tools\":[]}");
    s_expect_error ("a.json", "/auth/token_env: is not allowed (false)");
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"oauth2\"},\"tools\":[]}");
    s_expect_error ("a.json", "/auth/oauth2: is required (required)");
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"bearer\",\"oauth2\":{\"authorize_url\":\"/a\",\"token_url\":\"/t\","
                       "\"client_id_env\":\"C\"}},\"tools\":[]}");
    s_expect_error ("a.json", "/auth/oauth2: is not allowed (false)");
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"oauth2\",\"credential\":\"shared\",\"token_env\":\"K\","
                       "\"oauth2\":{\"authorize_url\":\"/a\",\"token_url\":\"/t\",\"client_id_env\":\"C\"}},"
                       "\"tools\":[]}");
    s_expect_at ("a.json", "/auth/type: must be one of", true);
    //  A base URL that starts with a placeholder names a kept field.
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"{instance_url}/api\","
                       "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"https://p/a\","
                       "\"token_url\":\"https://p/t\",\"client_id_env\":\"C\",\"keep\":[\"other\"]}},"
                       "\"tools\":[{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
                       "\"request\":{\"method\":\"GET\",\"path\":\"/q\"},"
                       "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}");
    s_expect_at ("a.json", "/base_url: placeholder {instance_url} is not a field auth.oauth2.keep lists",
                 false);
    //  An endpoint given as a path needs a base URL to resolve against.
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"{instance_url}/api\","
                       "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"/a\","
                       "\"token_url\":\"https://p/t\",\"client_id_env\":\"C\",\"keep\":[\"instance_url\"]}},"
                       "\"tools\":[{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
                       "\"request\":{\"method\":\"GET\",\"path\":\"/q\"},"
                       "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}");
    s_expect_at ("a.json", "/auth/oauth2: an endpoint given as a path needs a base_url", true);
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"api_key_header\",\"credential\":\"shared\",\"token_env\":\"K\"},\"tools\":[]}");
    s_expect_error ("a.json", "/auth/header: is required (required)");
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"bearer\",\"credential\":\"shared\",\"token_env\":\"K\",\"header\":\"X-Key\"},"
                       "\"tools\":[]}");
    s_expect_error ("a.json", "/auth/header: is not allowed (false)");
    //  A header name is a token: no line break can smuggle in another header.
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h\","
                       "\"auth\":{\"type\":\"api_key_header\",\"credential\":\"shared\",\"token_env\":\"K\","
                       "\"header\":\"X-Key: 1\\r\\nX-Admin\"},\"tools\":[]}");
    s_expect_at ("a.json", "/auth/header: must match the pattern", true);

    //  Tool-level problems.
    char *both = NULL;
    assert_true (asprintf (&both, "%s,%s", t1, t1) > 0);
    char tail [1024];
    snprintf (tail, sizeof tail, "/tools/1/name: \"dup\" is already the name of a tool (in %s/a.json)",
              s_dir);
    s_expect_bad_tool (both, tail);
    free (both);

    //  Duplicate across two files names the second file and the first.
    s_clean_dir ();
    char *c1 = s_connector ("one", t1);
    char *c2 = s_connector ("two", t1);
    s_write ("a.json", c1);
    s_write ("b.json", c2);
    snprintf (tail, sizeof tail, "/tools/0/name: \"dup\" is already the name of a tool (in %s/a.json)",
              s_dir);
    s_expect_error ("b.json", tail);
    free (c1);
    free (c2);
    free (t1);

    //  What the format cannot say: templates name inputSchema properties.
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x/{id}\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/path: template \"/x/{id}\": placeholder {id} is not a property of "
        "inputSchema (path placeholders must be required properties)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\","
        "  \"properties\":{\"id\":{\"type\":\"string\"}}},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x/{id}\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/path: template \"/x/{id}\": placeholder {id} is not a property of "
        "inputSchema (path placeholders must be required properties)");
    s_expect_bad_tool_start (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\",\"query\":{\"q\":\"{q\"}},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/query/q: template \"{q\" has a malformed placeholder");
    s_expect_bad_tool_start (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"POST\",\"path\":\"/x\",\"body\":{\"a\":[\"{nope}\"]}},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/body: template \"{nope}\": placeholder {nope} is not a property");
    s_expect_bad_tool_start (
        "{\"name\":\"t\",\"description\":\"d\","
        " \"inputSchema\":{\"type\":\"object\",\"properties\":{\"n\":{\"maximum\":\"x\"}}},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0: inputSchema.properties.n.maximum must be a number");

    //  What the format says.
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"FETCH\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/method: must be one of [\"GET\",\"POST\",\"PUT\",\"PATCH\",\"DELETE\"] "
        "(enum)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x?a=1\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/path: must match the pattern ^/[^?#]*$ (pattern)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\",\"body\":{}},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/body: is not allowed (false)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\",\"query\":{\"q\":1}},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/request/query/q: must be a string (type)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"table\",\"noun\":\"n\"}}",
        "/tools/0/result/mapping: must be one of [\"list\",\"object\"] (enum)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"list\",\"noun\":\"n\",\"next_cursor\":\"cursor\"}}",
        "/tools/0/result/next_cursor: must match the pattern ^(/|$) (pattern)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"}}",
        "/tools/0/result: is required (required)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"string\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/inputSchema/type: must be exactly \"object\" (const)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/description: is required (required)");
    s_expect_bad_tool (
        "{\"name\":\"bad name!\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/name: must match the pattern ^[A-Za-z0-9_-]{1,64}$ (pattern)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},\"extra\":1,"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/extra: is not an allowed member here (additionalProperties)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"annotations\":{\"readOnlyHint\":\"yes\"},"
        " \"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/annotations/readOnlyHint: must be a boolean (type)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"builtin\":\"x\",\"method\":\"GET\"}}",
        "/tools/0/request/method: is not an allowed member here (additionalProperties)");
    s_expect_bad_tool (
        "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        " \"request\":{\"builtin\":\"x\"},\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}",
        "/tools/0/result: is not allowed (false)");
    s_clean_dir ();
}

//  The format as the loader knows it is connectors/connector.schema.json
//  byte for byte; "$schema" and "$comment" are welcome in a definition, and
//  *.schema.json files next to the definitions are not loaded as ones.
static void
test_format (void **state)
{
    FILE *file = fopen (SB_SOURCE_DIR "/connectors/connector.schema.json", "rb");
    assert_non_null (file);
    char *text = malloc (SB_MAX_CONNECTOR_FILE);
    assert_non_null (text);
    size_t len = fread (text, 1, SB_MAX_CONNECTOR_FILE, file);
    fclose (file);
    assert_int_equal (len, sb_connector_schema_size);
    assert_memory_equal (text, sb_connector_schema_text, len);
    assert_int_equal (sb_connector_schema_text [len], 0);
    free (text);

    s_clean_dir ();
    char *tool = s_tool ("t");
    char *connector = s_connector ("with-schema", tool);
    char *annotated = NULL;
    assert_true (asprintf (&annotated, "{\"$schema\":\"connector.schema.json\","
                           "\"$comment\":\"a note\",%s", connector + 1) > 0);
    s_write ("a.json", annotated);
    s_write ("c.schema.json", "{\"not\":\"a connector\"}");
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    if (!set)
        fail_msg ("load failed: %s", error);
    assert_int_equal (sb_connectors_tool_count (set), 1);
    sb_connectors_destroy (&set);
    free (annotated);
    free (connector);
    free (tool);
    char path [512];
    snprintf (path, sizeof path, "%s/c.schema.json", s_dir);
    unlink (path);

    //  A definition holds far more than a call's arguments: a thousand
    //  tools are checked within the document's budget of work
    //  (SB_MAX_SCHEMA_DOC_WORK), not the arguments' one.
    size_t size = 1000 * 256 + 256, used = 0;
    char *tools = malloc (size);
    assert_non_null (tools);
    for (int i = 0; i < 1000; i++)
        used += (size_t) snprintf (tools + used, size - used, "%s{\"name\":\"t%d\","
                                   "\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
                                   "\"request\":{\"method\":\"GET\",\"path\":\"/x\"},"
                                   "\"result\":{\"mapping\":\"list\",\"noun\":\"n\","
                                   "\"next_cursor\":\"/next\",\"total\":\"/total\"}}",
                                   i ? "," : "", i);
    assert_true (used < size - 1);
    set = s_load_tools ("large", tools);
    assert_int_equal (sb_connectors_tool_count (set), 1000);
    sb_connectors_destroy (&set);
    free (tools);
    s_clean_dir ();
}

//  check_args: one case per rule, each message naming field and rule.
static void
s_expect_args (const sb_tool_t *tool, const char *args_text, const char *fragment)
{
    json_t *args = args_text ? json_loads (args_text, JSON_DECODE_ANY, NULL) : NULL;
    char *error = NULL;
    int rc = sb_tool_check_args (tool, args, &error);
    if (!fragment) {
        if (rc)
            fail_msg ("args %s refused: %s", args_text, error);
        assert_null (error);
    }
    else {
        assert_int_equal (rc, -1);
        assert_non_null (error);
        if (!strstr (error, fragment))
            fail_msg ("error \"%s\" lacks \"%s\"", error, fragment);
        free (error);
    }
    json_decref (args);
}

static void
test_check_args (void **state)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (CONNECTORS_DIR, &error);
    assert_non_null (set);
    const sb_tool_t *search = sb_connectors_find_tool (set, "search_accounts");
    const sb_tool_t *leads = sb_connectors_find_tool (set, "search_leads");
    const sb_tool_t *get = sb_connectors_find_tool (set, "get_account");
    const sb_tool_t *create = sb_connectors_find_tool (set, "create_task");

    s_expect_args (search, "{\"query\":\"acme\",\"limit\":5}", NULL);
    s_expect_args (search, "{}", NULL);
    s_expect_args (search, NULL, NULL);
    s_expect_args (search, "{\"limit\":5.0}", NULL);
    s_expect_args (search, "[1]", "Arguments must be a JSON object");
    s_expect_args (search, "\"x\"", "Arguments must be a JSON object");
    //  type
    s_expect_args (search, "{\"limit\":\"5\"}", "Argument 'limit' must be an integer");
    s_expect_args (search, "{\"limit\":5.5}", "Argument 'limit' must be an integer");
    s_expect_args (search, "{\"query\":7}", "Argument 'query' must be a string");
    //  minimum / maximum
    s_expect_args (search, "{\"limit\":0}", "Argument 'limit' must be at least 1");
    s_expect_args (search, "{\"limit\":101}", "Argument 'limit' must be at most 100");
    //  minLength / maxLength (in characters, not bytes)
    s_expect_args (search, "{\"query\":\"\"}", "Argument 'query' must be at least 1 characters");
    char long_query [256];
    memset (long_query, 'a', 201);
    long_query [201] = 0;
    char *text = NULL;
    assert_true (asprintf (&text, "{\"query\":\"%s\"}", long_query) > 0);
    s_expect_args (search, text, "Argument 'query' must be at most 200 characters");
    free (text);
    //  200 two-byte characters are 400 bytes but only 200 characters: fine.
    char accents [1024];
    size_t at = (size_t) snprintf (accents, sizeof accents, "{\"query\":\"");
    for (int i = 0; i < 200; i++)
        at += (size_t) snprintf (accents + at, sizeof accents - at, "\xC3\xA9");
    snprintf (accents + at, sizeof accents - at, "\"}");
    s_expect_args (search, accents, NULL);
    //  enum
    s_expect_args (leads, "{\"status\":\"qualified\"}", NULL);
    s_expect_args (leads, "{\"status\":\"hot\"}", "Argument 'status' must be one of");
    //  required
    s_expect_args (get, "{}", "Argument 'id' is required");
    s_expect_args (create, "{\"notes\":\"x\"}", "Argument 'title' is required");
    s_expect_args (create, "{\"title\":\"Call\",\"priority\":\"high\"}", NULL);
    //  additionalProperties false
    s_expect_args (get, "{\"id\":\"a\",\"admin\":true}", "Argument 'admin' is not allowed");
    sb_connectors_destroy (&set);
}

static void
s_expect_output (const sb_tool_t *tool, const char *structured, const char *fragment)
{
    json_t *value = structured ? json_loads (structured, JSON_DECODE_ANY, NULL) : NULL;
    assert_true (!structured || value);
    char *error = NULL;
    int rc = sb_tool_check_output (tool, value, &error);
    if (!fragment) {
        if (rc)
            fail_msg ("%s: unexpected output error \"%s\"", structured, error);
        assert_null (error);
    }
    else {
        assert_int_equal (rc, -1);
        assert_non_null (error);
        if (!strstr (error, fragment))
            fail_msg ("output error \"%s\" lacks \"%s\"", error, fragment);
        free (error);
    }
    json_decref (value);
}

static void
test_call_policy (void **state)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (CONNECTORS_DIR, &error);
    assert_non_null (set);
    const sb_tool_t *search = sb_connectors_find_tool (set, "search_accounts");
    const sb_tool_t *get = sb_connectors_find_tool (set, "get_account");
    const sb_tool_t *create = sb_connectors_find_tool (set, "create_task");

    //  Creating a task destroys nothing, but is not done unasked ("confirm").
    assert_true (sb_tool_needs_confirmation (create));
    assert_false (sb_tool_needs_confirmation (search));
    assert_false (sb_tool_needs_confirmation (get));
    json_t *descriptor = sb_tool_descriptor (create);
    assert_true (json_is_false (json_object_get (json_object_get (descriptor, "annotations"),
                                                 "destructiveHint")));
    assert_null (json_object_get (descriptor, "confirm"));      // not an MCP Tool member
    json_decref (descriptor);

    //  The question names the action, the system and the arguments.
    json_t *args = json_pack ("{s:s, s:s, s:i}", "title", "Call back", "priority", "high", "n", 3);
    char *question = sb_tool_confirm_message (create, args);
    assert_non_null (question);
    assert_string_equal (question,
        "Run \"Create task\" in the CRM with title \"Call back\", priority \"high\", n 3?");
    free (question);
    json_decref (args);
    //  A long value is cut to 200 bytes on a character boundary (3-byte €: 66 of them).
    char euros [301];
    for (int i = 0; i < 100; i++)
        memcpy (euros + 3 * i, "\xE2\x82\xAC", 3);
    euros [300] = 0;
    args = json_pack ("{s:s}", "title", euros);
    question = sb_tool_confirm_message (create, args);
    assert_non_null (question);
    char expected [1024];
    snprintf (expected, sizeof expected, "Run \"Create task\" in the CRM with title \"%.198s\"?", euros);
    assert_string_equal (question, expected);
    free (question);
    json_decref (args);
    //  Long arguments are cut on a character boundary, and say so.
    char long_text [4096];
    size_t at = 0;
    for (int i = 0; i < 1000; i++)
        at += (size_t) snprintf (long_text + at, sizeof long_text - at, "\xC3\xA9");
    args = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "a", long_text, "b", long_text,
                      "c", long_text, "d", long_text, "e", long_text, "f", long_text, "g", long_text);
    assert_non_null (args);
    question = sb_tool_confirm_message (create, args);
    assert_non_null (question);
    assert_true (strlen (question) < SB_MAX_CONFIRM_MESSAGE);
    assert_non_null (strstr (question, " ...?"));
    json_t *valid = json_string (question);     // NULL if cut inside a UTF-8 sequence
    assert_non_null (valid);
    json_decref (valid);
    free (question);
    json_decref (args);

    //  outputSchema checks, worded for a result (compiled at load).
    s_expect_output (search, "{\"items\":[{\"id\":\"a\",\"name\":\"Acme\"}],\"count\":1}", NULL);
    s_expect_output (search, "{\"items\":[{\"id\":\"a\",\"name\":5}],\"count\":1}",
                     "Field 'items[0].name' must be a string.");
    s_expect_output (search, "{\"items\":[]}", "Field 'count' is required");
    s_expect_output (search, "[1]", "no structuredContent object");
    s_expect_output (search, NULL, "no structuredContent");
    //  A task created without a due date, account or contact has nulls there.
    const sb_tool_t *tasks = sb_connectors_find_tool (set, "list_tasks");
    s_expect_output (tasks, "{\"items\":[{\"id\":\"t\",\"title\":\"x\",\"due_date\":null,"
                     "\"account_id\":null,\"contact_id\":null}],\"count\":1}", NULL);
    s_expect_output (get, "{\"anything\":1}", NULL);       // no outputSchema: nothing to check
    s_expect_output (get, NULL, NULL);
    sb_connectors_destroy (&set);

    //  A destructive tool asks too; "confirm" must be a boolean.
    s_clean_dir ();
    char *tool = NULL;
    assert_true (asprintf (&tool,
        "{\"name\":\"wipe\",\"description\":\"d\","
        " \"annotations\":{\"destructiveHint\":true},"
        " \"inputSchema\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}},"
        "                  \"required\":[\"id\"]},"
        " \"request\":{\"method\":\"DELETE\",\"path\":\"/x/{id}\"},"
        " \"result\":{\"mapping\":\"object\",\"noun\":\"thing\"}}") > 0);
    char *text = s_connector ("d", tool);
    s_write ("a.json", text);
    free (text);
    set = sb_connectors_load (s_dir, &error);
    assert_non_null (set);
    assert_true (sb_tool_needs_confirmation (sb_connectors_find_tool (set, "wipe")));
    sb_connectors_destroy (&set);
    free (tool);

    char *plain = s_tool ("x");
    assert_true (asprintf (&tool, "{\"confirm\":\"yes\",%s", plain + 1) > 0);
    s_expect_bad_tool (tool, "/tools/0/confirm: must be a boolean (type)");
    free (tool);
    s_expect_bad_tool ("{\"name\":\"fx\",\"description\":\"d\",\"confirm\":true,"
                       " \"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"x\"}}",
                       "/tools/0/confirm: must be exactly false (const)");
    free (plain);
    s_clean_dir ();
}

//  "hidden": a tool or prompt left out of its lists until a tenant shows
//  it (gateway/sb_lists.h); never in what is published; true or false only.
//  The gateway runs the two toggle builtins itself.
static void
test_hidden (void **state)
{
    s_clean_dir ();
    char *plain = s_tool ("plain"), *secret = s_tool ("secret");
    char *hidden = NULL, *tools = NULL;
    assert_true (asprintf (&hidden, "{\"hidden\":true,%s", secret + 1) > 0);
    assert_true (asprintf (&tools, "%s,%s", plain, hidden) > 0);
    sb_connectors_t *set = s_load_tools ("hiding", tools);
    char *error = NULL;
    assert_false (sb_tool_hidden (sb_connectors_find_tool (set, "plain")));
    const sb_tool_t *tool = sb_connectors_find_tool (set, "secret");
    assert_true (sb_tool_hidden (tool));
    json_t *descriptor = sb_tool_descriptor (tool);
    assert_null (json_object_get (descriptor, "hidden"));
    json_decref (descriptor);
    assert_int_equal (sb_tool_gateway_builtin (tool), 0);
    sb_connectors_destroy (&set);

    //  The conformance connector's: the hidden tool and prompt, the toggles.
    set = sb_connectors_load (CONNECTORS_DIR, &error);
    assert_non_null (set);
    assert_true (sb_tool_hidden (sb_connectors_find_tool (set, "test_dynamic_tool")));
    assert_false (sb_tool_hidden (sb_connectors_find_tool (set, "test_simple_text")));
    assert_int_equal (sb_tool_gateway_builtin (sb_connectors_find_tool (set, "test_trigger_tool_change")),
                      SB_LIST_TOOLS);
    assert_int_equal (sb_tool_gateway_builtin (sb_connectors_find_tool (set, "test_trigger_prompt_change")),
                      SB_LIST_PROMPTS);
    assert_int_equal (sb_tool_gateway_builtin (sb_connectors_find_tool (set, "test_simple_text")), 0);
    assert_true (sb_connectors_prompt_hidden (set, "test_dynamic_prompt"));
    assert_false (sb_connectors_prompt_hidden (set, "test_simple_prompt"));
    assert_false (sb_connectors_prompt_hidden (set, "no_such_prompt"));
    json_t *prompts = sb_connectors_prompts (set);
    char *dumped = json_dumps (prompts, JSON_COMPACT);
    assert_non_null (strstr (dumped, "test_dynamic_prompt"));
    assert_null (strstr (dumped, "\"hidden\""));
    free (dumped);
    json_decref (prompts);
    sb_connectors_destroy (&set);

    //  Anything but true or false is a load error naming the entry.
    char *bad = NULL;
    assert_true (asprintf (&bad, "{\"hidden\":\"yes\",%s", plain + 1) > 0);
    s_expect_bad_tool (bad, "/tools/0/hidden: must be a boolean (type)");
    free (bad);
    s_clean_dir ();
    char *text = s_connector ("p", plain);
    char *with_prompt = NULL;
    assert_true (asprintf (&with_prompt, "%.*s,\"prompts\":[{\"name\":\"quiet\",\"hidden\":1,"
                           "\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\","
                           "\"text\":\"x\"}}]}]}", (int) strlen (text) - 1, text) > 0);
    s_write ("a.json", with_prompt);
    free (with_prompt);
    free (text);
    s_expect_error ("a.json", "/prompts/0/hidden: must be a boolean (type)");
    free (plain);
    free (secret);
    free (hidden);
    free (tools);
    s_clean_dir ();
}

//  "taskSupport": forbidden by default, optional or required, anything else
//  refused naming the tool and the value; never in the tools/list descriptor.
static void
test_task_support (void **state)
{
    s_clean_dir ();
    char *plain = s_tool ("plain"), *opt = s_tool ("opt"), *forb = s_tool ("forb");
    char *optional = NULL, *required = NULL, *forbidden = NULL;
    assert_true (asprintf (&optional, "{\"taskSupport\":\"optional\",%s", opt + 1) > 0);
    assert_true (asprintf (&required, "{\"taskSupport\":\"required\",\"name\":\"req\","
                           "\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
                           "\"request\":{\"builtin\":\"slow_compute\"}}") > 0);
    assert_true (asprintf (&forbidden, "{\"taskSupport\":\"forbidden\",%s", forb + 1) > 0);
    free (opt);
    free (forb);
    char *tools = NULL;
    assert_true (asprintf (&tools, "%s,%s,%s,%s", plain, optional, required, forbidden) > 0);
    sb_connectors_t *set = s_load_tools ("tasks", tools);
    char *error = NULL;
    static const struct { const char *name; sb_task_support_t support; } expect [] = {
        { "plain", SB_TASK_FORBIDDEN }, { "opt", SB_TASK_OPTIONAL },
        { "req", SB_TASK_REQUIRED }, { "forb", SB_TASK_FORBIDDEN },
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect [0]; i++) {
        const sb_tool_t *tool = sb_connectors_find_tool (set, expect [i].name);
        assert_non_null (tool);
        assert_int_equal (sb_tool_task_support (tool), expect [i].support);
        json_t *descriptor = sb_tool_descriptor (tool);
        char *dumped = json_dumps (descriptor, JSON_COMPACT);
        if (strstr (dumped, "taskSupport") || json_object_get (descriptor, "execution"))
            fail_msg ("descriptor of %s shows task support: %s", expect [i].name, dumped);
        free (dumped);
        json_decref (descriptor);
    }
    sb_connectors_destroy (&set);
    free (tools);

    //  The real conformance fixtures: greet never, the task fixtures may or must.
    set = sb_connectors_load (CONNECTORS_DIR, &error);
    assert_non_null (set);
    static const struct { const char *name; sb_task_support_t support; } fixtures [] = {
        { "greet", SB_TASK_FORBIDDEN }, { "slow_compute", SB_TASK_OPTIONAL },
        { "failing_job", SB_TASK_REQUIRED }, { "protocol_error_job", SB_TASK_OPTIONAL },
        { "confirm_delete", SB_TASK_OPTIONAL }, { "multi_input", SB_TASK_OPTIONAL },
        { "test_tool_with_task", SB_TASK_REQUIRED }, { "test_simple_text", SB_TASK_FORBIDDEN },
        { "get_account", SB_TASK_FORBIDDEN },
    };
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures [0]; i++) {
        const sb_tool_t *tool = sb_connectors_find_tool (set, fixtures [i].name);
        if (!tool)
            fail_msg ("tool %s missing", fixtures [i].name);
        assert_int_equal (sb_tool_task_support (tool), fixtures [i].support);
    }
    sb_connectors_destroy (&set);

    //  Anything else is a load error naming the tool and the value.
    char *bad = NULL;
    assert_true (asprintf (&bad, "{\"taskSupport\":\"sometimes\",%s", plain + 1) > 0);
    s_expect_bad_tool (bad, "/tools/0/taskSupport: must be one of [\"forbidden\",\"optional\","
                       "\"required\"] (enum)");
    free (bad);
    assert_true (asprintf (&bad, "{\"taskSupport\":true,%s", plain + 1) > 0);
    s_expect_bad_tool (bad, "/tools/0/taskSupport: must be one of [\"forbidden\",\"optional\","
                       "\"required\"] (enum)");
    free (bad);
    assert_true (asprintf (&bad, "{\"taskSupport\":\"Optional\",%s", plain + 1) > 0);
    s_expect_bad_tool (bad, "/tools/0/taskSupport: must be one of [\"forbidden\",\"optional\","
                       "\"required\"] (enum)");
    free (bad);
    free (plain);
    free (optional);
    free (required);
    free (forbidden);
    s_clean_dir ();
}

//  --connectors takes one folder or several separated by ':': the product's
//  folder alone has the CRM and no builtin tool; with the fixtures' folder
//  the files sort together by name; names stay unique across folders; a
//  bad list is refused with a sentence.
static void
test_folder_list (void **state)
{
    char *error = NULL;
    sb_connectors_t *product = sb_connectors_load (SB_SOURCE_DIR "/connectors", &error);
    if (!product)
        fail_msg ("load failed: %s", error);
    size_t product_tools = sb_connectors_tool_count (product);
    assert_true (product_tools >= 8);
    for (size_t i = 0; i < product_tools; i++) {
        const sb_tool_t *tool = sb_connectors_tool_at (product, i);
        assert_string_equal (sb_connector_name (sb_tool_connector (tool)), "sandbox-crm");
        assert_null (sb_tool_builtin (tool));
    }
    sb_connectors_t *fixtures = sb_connectors_load (SB_SOURCE_DIR "/tests/fixtures/connectors", &error);
    if (!fixtures)
        fail_msg ("load failed: %s", error);
    sb_connectors_t *both = sb_connectors_load (SB_TEST_CONNECTORS, &error);
    if (!both)
        fail_msg ("load failed: %s", error);
    size_t count = sb_connectors_tool_count (both);
    assert_int_equal (count, product_tools + sb_connectors_tool_count (fixtures));
    //  conformance-schema.json, conformance.json, sandbox-crm.json, then
    //  sandbox-oauth.json (its two tools).
    assert_string_equal (sb_tool_name (sb_connectors_tool_at (both, 0)), "test_param_headers");
    assert_string_equal (sb_tool_name (sb_connectors_tool_at (both, count - 3)),
                         sb_tool_name (sb_connectors_tool_at (product, product_tools - 1)));
    assert_string_equal (sb_tool_name (sb_connectors_tool_at (both, count - 2)), "oauth_whoami");
    assert_string_equal (sb_tool_name (sb_connectors_tool_at (both, count - 1)),
                         "oauth_search_accounts");
    //  The sandbox's OAuth provider as a tenant-credential connector: its
    //  endpoints are paths on the base URL and follow its override.
    const sb_connector_t *sandbox_oauth = sb_connectors_find (fixtures, "sandbox-oauth");
    assert_non_null (sandbox_oauth);
    assert_int_equal (sb_connector_auth_type (sandbox_oauth), SB_AUTH_OAUTH2);
    assert_int_equal (sb_connector_credential (sandbox_oauth), SB_CREDENTIAL_TENANT);
    const sb_connector_oauth_t *provider = sb_connector_oauth (sandbox_oauth);
    assert_string_equal (provider->token_url, "http://127.0.0.1:8090/oauth/token");
    assert_string_equal (provider->keep [0], "instance_url");
    assert_int_equal (sb_connectors_set_base_url (fixtures, "sandbox-oauth", "http://127.0.0.1:9"), 0);
    provider = sb_connector_oauth (sb_connectors_find (fixtures, "sandbox-oauth"));
    assert_string_equal (provider->authorize_url, "http://127.0.0.1:9/oauth/authorize");
    assert_string_equal (provider->revoke_url, "http://127.0.0.1:9/oauth/revoke");
    sb_connectors_destroy (&product);
    sb_connectors_destroy (&fixtures);
    sb_connectors_destroy (&both);

    //  b.json in s_dir, a.json in s_dir/sub: a.json's tools come first.
    s_clean_dir ();
    char sub [300], list [640], path [512];
    snprintf (sub, sizeof sub, "%s/sub", s_dir);
    snprintf (path, sizeof path, "%s/a.json", sub);
    assert_int_equal (mkdir (sub, 0700), 0);
    char *tool = s_tool ("two"), *text = s_connector ("b", tool);
    s_write ("b.json", text);
    free (text);
    free (tool);
    tool = s_tool ("one");
    text = s_connector ("a", tool);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    free (text);
    snprintf (list, sizeof list, "%s:%s", s_dir, sub);
    sb_connectors_t *set = sb_connectors_load (list, &error);
    if (!set)
        fail_msg ("load failed: %s", error);
    assert_int_equal (sb_connectors_tool_count (set), 2);
    assert_string_equal (sb_tool_name (sb_connectors_tool_at (set, 0)), "one");
    assert_string_equal (sb_tool_name (sb_connectors_tool_at (set, 1)), "two");
    sb_connectors_destroy (&set);

    //  A tool name used in both folders.
    text = s_connector ("b", tool);
    s_write ("b.json", text);
    free (text);
    free (tool);
    assert_null (sb_connectors_load (list, &error));
    assert_non_null (strstr (error, "/tools/0/name: \"one\" is already the name of a tool"));
    free (error);

    //  An empty entry, a missing folder, too many folders.
    //  Each pattern's 'D' stands for the test folder.
    const char *empty [] = { ":", "D:", ":D", "D::D" };
    for (size_t i = 0; i < sizeof empty / sizeof empty [0]; i++) {
        list [0] = 0;
        for (const char *p = empty [i]; *p; p++) {
            size_t used = strlen (list);
            if (*p == 'D')
                snprintf (list + used, sizeof list - used, "%s", s_dir);
            else
                snprintf (list + used, sizeof list - used, "%c", *p);
        }
        assert_null (sb_connectors_load (list, &error));
        assert_non_null (strstr (error, "an empty folder name in the list"));
        free (error);
    }
    snprintf (list, sizeof list, "%s:/nonexistent/fixtures", sub);
    assert_null (sb_connectors_load (list, &error));
    assert_non_null (strstr (error, "/nonexistent/fixtures: cannot open connectors directory"));
    free (error);
    char many [SB_MAX_CONNECTOR_DIRS * 4 + 8];
    size_t used = 0;
    for (int i = 0; i <= SB_MAX_CONNECTOR_DIRS; i++)
        used += (size_t) snprintf (many + used, sizeof many - used, i ? ":/a" : "/a");
    assert_null (sb_connectors_load (many, &error));
    assert_non_null (strstr (error, "folders in the list"));
    free (error);

    unlink (path);
    rmdir (sub);
    s_clean_dir ();
}

//  An oauth2 connector: each tenant's credential, endpoints given as paths
//  follow the base URL (and its overrides), the client's ID and secret
//  come from the environment, a placeholder base URL takes the
//  connection's var, which must be an http(s) URL.
static void
test_oauth2 (void **state)
{
    (void) state;
    s_clean_dir ();
    setenv ("SB_TEST_OAUTH_ID", "client-1", 1);
    setenv ("SB_TEST_OAUTH_SECRET", "secret-1", 1);
    s_write ("a.json", "{\"name\":\"x\",\"title\":\"T\",\"base_url\":\"http://h:1/\","
                       "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"/oauth/authorize\","
                       "\"token_url\":\"/oauth/token\",\"client_id_env\":\"SB_TEST_OAUTH_ID\","
                       "\"client_secret_env\":\"SB_TEST_OAUTH_SECRET\",\"client_auth\":\"client_secret_post\","
                       "\"scopes\":[\"read\",\"write\"],\"authorize_params\":{\"prompt\":\"consent\"}}},"
                       "\"tools\":[{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
                       "\"request\":{\"method\":\"GET\",\"path\":\"/v1/x\"},"
                       "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}");
    s_write ("b.json", "{\"name\":\"sf\",\"title\":\"S\",\"base_url\":\"{instance_url}/services/data/v62.0\","
                       "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"https://login.example/a\","
                       "\"token_url\":\"https://login.example/t\",\"client_id_env\":\"SB_TEST_OAUTH_UNSET\","
                       "\"keep\":[\"instance_url\"]}},"
                       "\"tools\":[{\"name\":\"u\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
                       "\"request\":{\"method\":\"GET\",\"path\":\"/q\"},"
                       "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}");
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    if (!set)
        fail_msg ("%s", error);
    const sb_connector_t *x = sb_connectors_find (set, "x");
    assert_int_equal (sb_connector_auth_type (x), SB_AUTH_OAUTH2);
    assert_int_equal (sb_connector_credential (x), SB_CREDENTIAL_TENANT);
    assert_null (sb_connector_auth_header (x));     //  no shared secret
    const sb_connector_oauth_t *oauth = sb_connector_oauth (x);
    assert_non_null (oauth);
    assert_string_equal (oauth->authorize_url, "http://h:1/oauth/authorize");
    assert_string_equal (oauth->token_url, "http://h:1/oauth/token");
    assert_null (oauth->revoke_url);
    assert_string_equal (oauth->client_id, "client-1");
    assert_string_equal (oauth->client_secret, "secret-1");
    assert_false (oauth->client_secret_basic);
    assert_string_equal (oauth->scopes, "read write");
    assert_int_equal (oauth->param_count, 1);
    assert_string_equal (oauth->param_names [0], "prompt");
    assert_string_equal (oauth->param_values [0], "consent");
    char *value = sb_connector_auth_value (x, "tok");
    assert_string_equal (value, "Bearer tok");
    free (value);
    assert_null (sb_connector_auth_value (x, "a\r\nX-Evil: 1"));
    //  An override moves the endpoints given as paths with it.
    assert_int_equal (sb_connectors_set_base_urls (set, "x=http://127.0.0.1:9"), 0);
    assert_string_equal (sb_connector_oauth (x)->token_url, "http://127.0.0.1:9/oauth/token");
    char *base = sb_connector_base_url_for (x, NULL);
    assert_string_equal (base, "http://127.0.0.1:9");
    free (base);

    const sb_connector_t *sf = sb_connectors_find (set, "sf");
    assert_null (sb_connector_oauth (sf)->client_id);       //  unset here
    assert_true (sb_connector_oauth (sf)->client_secret_basic);
    json_t *vars = json_pack ("{s:s}", "instance_url", "https://acme.my.example.com/");
    base = sb_connector_base_url_for (sf, vars);
    assert_string_equal (base, "https://acme.my.example.com/services/data/v62.0");
    free (base);
    json_object_set_new (vars, "instance_url", json_string ("https://user@evil.example"));
    assert_null (sb_connector_base_url_for (sf, vars));
    json_object_set_new (vars, "instance_url", json_string ("file:///etc/passwd"));
    assert_null (sb_connector_base_url_for (sf, vars));
    assert_null (sb_connector_base_url_for (sf, NULL));
    json_decref (vars);
    sb_connectors_destroy (&set);
    unsetenv ("SB_TEST_OAUTH_ID");
    unsetenv ("SB_TEST_OAUTH_SECRET");
    s_clean_dir ();
}

//  Quota declarations: a tool's "cost" (1..SB_MAX_TOOL_COST, default 1,
//  kept out of its descriptor) and a connector's "upstream_budget"
//  (requests 1..10^9 per window_s 1..30 days, both required); every bound
//  refused at load with the pointer and the rule.
static void
test_quotas (void **state)
{
    (void) state;
    s_clean_dir ();
    char *plain = s_tool ("plain"), *dear = s_tool ("dear"), *whole = s_tool ("whole");
    char *costly = NULL, *real = NULL;
    assert_true (asprintf (&costly, "{\"cost\":25,%s", dear + 1) > 0);
    assert_true (asprintf (&real, "{\"cost\":1000.0,%s", whole + 1) > 0);
    char *tools = NULL;
    assert_true (asprintf (&tools, "%s,%s,%s", plain, costly, real) > 0);
    sb_connectors_t *set = s_load_tools ("metered", tools);
    assert_int_equal (sb_tool_cost (sb_connectors_find_tool (set, "plain")), 1);
    assert_int_equal (sb_tool_cost (sb_connectors_find_tool (set, "dear")), 25);
    assert_int_equal (sb_tool_cost (sb_connectors_find_tool (set, "whole")), SB_MAX_TOOL_COST);
    json_t *descriptor = sb_tool_descriptor (sb_connectors_find_tool (set, "dear"));
    assert_null (json_object_get (descriptor, "cost"));
    json_decref (descriptor);
    //  No budget declared: none, and both out-values zeroed.
    uint32_t requests = 7, window_s = 7;
    assert_false (sb_connector_upstream_budget (sb_connectors_find (set, "metered"),
                                                &requests, &window_s));
    assert_int_equal (requests, 0);
    assert_int_equal (window_s, 0);
    sb_connectors_destroy (&set);
    free (tools);
    free (costly);
    free (real);

    s_expect_bad_tool_start ("{\"cost\":0,\"name\":\"t\",\"description\":\"d\","
                             "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"greet\"}}",
                             "/tools/0/cost: must be at least 1 (minimum)");
    s_expect_bad_tool_start ("{\"cost\":1001,\"name\":\"t\",\"description\":\"d\","
                             "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"greet\"}}",
                             "/tools/0/cost: must be at most 1000 (maximum)");
    s_expect_bad_tool_start ("{\"cost\":2.5,\"name\":\"t\",\"description\":\"d\","
                             "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"greet\"}}",
                             "/tools/0/cost: must be an integer (type)");
    s_expect_bad_tool_start ("{\"cost\":\"3\",\"name\":\"t\",\"description\":\"d\","
                             "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"greet\"}}",
                             "/tools/0/cost: must be an integer (type)");

    //  A budget: read back as declared; each member bounded and required.
    s_clean_dir ();
    char *tool = s_tool ("sf_query");
    char *text = NULL;
    assert_true (asprintf (&text, "{\"name\":\"sf\",\"title\":\"T\",\"base_url\":\"http://h\","
                           "\"upstream_budget\":{\"$comment\":\"a day\",\"requests\":100000,"
                           "\"window_s\":86400},\"tools\":[%s]}", tool) > 0);
    s_write ("a.json", text);
    free (text);
    char *error = NULL;
    set = sb_connectors_load (s_dir, &error);
    if (!set)
        fail_msg ("%s", error);
    assert_true (sb_connector_upstream_budget (sb_connectors_find (set, "sf"),
                                               &requests, &window_s));
    assert_int_equal (requests, 100000);
    assert_int_equal (window_s, 86400);
    sb_connectors_destroy (&set);

    //  A whole real is an integer to the format: read as its value, never 0.
    assert_true (asprintf (&text, "{\"name\":\"sf\",\"title\":\"T\",\"base_url\":\"http://h\","
                           "\"limits\":{\"timeout_ms\":2000.0,\"max_response_bytes\":4096.0},"
                           "\"upstream_budget\":{\"requests\":10.0,\"window_s\":60.0},"
                           "\"tools\":[%s]}", tool) > 0);
    s_write ("a.json", text);
    free (text);
    set = sb_connectors_load (s_dir, &error);
    if (!set)
        fail_msg ("%s", error);
    const sb_connector_t *sf = sb_connectors_find (set, "sf");
    assert_int_equal (sb_connector_timeout_ms (sf), 2000);
    assert_int_equal (sb_connector_max_response (sf), 4096);
    assert_true (sb_connector_upstream_budget (sf, &requests, &window_s));
    assert_int_equal (requests, 10);
    assert_int_equal (window_s, 60);
    sb_connectors_destroy (&set);

    static const struct { const char *budget; const char *error; } bad [] = {
        { "{\"requests\":0,\"window_s\":60}",
          "/upstream_budget/requests: must be at least 1 (minimum)" },
        { "{\"requests\":1000000001,\"window_s\":60}",
          "/upstream_budget/requests: must be at most 1000000000 (maximum)" },
        { "{\"requests\":10,\"window_s\":0}",
          "/upstream_budget/window_s: must be at least 1 (minimum)" },
        { "{\"requests\":10,\"window_s\":2592001}",
          "/upstream_budget/window_s: must be at most 2592000 (maximum)" },
        { "{\"requests\":10}", "/upstream_budget/window_s: is required (required)" },
        { "{\"window_s\":10}", "/upstream_budget/requests: is required (required)" },
        { "{\"requests\":-5,\"window_s\":60}",
          "/upstream_budget/requests: must be at least 1 (minimum)" },
        { "{\"requests\":10,\"window_s\":60,\"per\":\"tenant\"}",
          "/upstream_budget/per: is not an allowed member here (additionalProperties)" },
        { "100", "/upstream_budget: must be an object (type)" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_true (asprintf (&text, "{\"name\":\"sf\",\"title\":\"T\",\"base_url\":\"http://h\","
                               "\"upstream_budget\":%s,\"tools\":[%s]}", bad [i].budget, tool) > 0);
        s_write ("a.json", text);
        free (text);
        s_expect_error ("a.json", bad [i].error);
    }
    free (tool);
    free (plain);
    free (dear);
    free (whole);
    s_clean_dir ();
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-connector-test-XXXXXX");
    if (!mkdtemp (s_dir))
        return 1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_real_connectors_load),
        cmocka_unit_test (test_bad_definitions),
        cmocka_unit_test (test_format),
        cmocka_unit_test (test_check_args),
        cmocka_unit_test (test_call_policy),
        cmocka_unit_test (test_task_support),
        cmocka_unit_test (test_hidden),
        cmocka_unit_test (test_folder_list),
        cmocka_unit_test (test_oauth2),
        cmocka_unit_test (test_quotas),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    s_clean_dir ();
    rmdir (s_dir);
    return rc;
}
