/*  tests/15_connector_catalog.c — resources, resource templates, prompts,
    completions, outputSchema and _meta in connector definitions
    (connector/sb_catalog.c): the real connectors folder, the answers, bad
    definitions refused with named errors, and template matching against
    hostile URIs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_connector.h"
#include "sb_schema.h"

#define CONNECTORS_DIR SB_TEST_CONNECTORS

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
    char command [600];
    snprintf (command, sizeof command, "rm -rf '%s' && mkdir -p '%s/widgets'", s_dir, s_dir);
    assert_int_equal (system (command), 0);
}

//  A connector with one builtin tool plus `extra` top-level members (JSON text
//  starting with ',' or empty) and `tool_extra` tool members.
static void
s_write_connector (const char *name, const char *extra, const char *tool_extra)
{
    char text [8192];
    snprintf (text, sizeof text,
              "{\"name\":\"%s\",\"title\":\"T\",\"tools\":[{\"name\":\"%s_tool\",\"description\":\"d\","
              "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"builtin\":\"test_simple_text\"}%s}]%s}",
              name, name, tool_extra, extra);
    char file [128];
    snprintf (file, sizeof file, "%s.json", name);
    s_write (file, text);
}

//  Loads s_dir expecting failure with exactly "<s_dir>/<file>: <tail>":
//  the JSON pointer, the rule and, for a rule of the connector format
//  (connectors/connector.schema.json), its keyword.
static void
s_expect_error (const char *file, const char *tail)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    char want [2048];
    snprintf (want, sizeof want, "%s/%s: %s", s_dir, file, tail);
    if (set || !error || strcmp (error, want))
        fprintf (stderr, "ERROR: error\n  \"%s\"\nwanted\n  \"%s\"\n", error ? error : "(none)",
                 want);
    assert_null (set);
    assert_non_null (error);
    assert_string_equal (error, want);
    free (error);
}

static sb_connectors_t *
s_load_real (void)
{
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (CONNECTORS_DIR, &error);
    if (!set)
        fprintf (stderr, "load: %s\n", error);
    assert_non_null (set);
    return set;
}

static json_t *
s_find_by (json_t *array, const char *key, const char *value)
{
    size_t index;
    json_t *item;
    json_array_foreach (array, index, item)
        if (strcmp (json_string_value (json_object_get (item, key)), value) == 0)
            return item;
    return NULL;
}

//  --------------------------------------------------------------------------

static void
test_conformance_fixtures (void **state)
{
    sb_connectors_t *set = s_load_real ();
    static const char *const tools [] = {
        "test_simple_text", "test_image_content", "test_audio_content", "test_embedded_resource",
        "test_multiple_content_types", "test_tool_with_logging", "test_tool_with_progress",
        "test_error_handling", "test_sampling", "test_elicitation",
        "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums",
        "json_schema_2020_12_tool", "test_reconnection", NULL
    };
    for (size_t i = 0; tools [i]; i++) {
        const sb_tool_t *tool = sb_connectors_find_tool (set, tools [i]);
        assert_non_null (tool);
        assert_string_equal (sb_connector_name (sb_tool_connector (tool)), "conformance");
    }
    //  SEP-1613: the 2020-12 keywords stay in the descriptor.
    json_t *desc = sb_tool_descriptor (sb_connectors_find_tool (set, "json_schema_2020_12_tool"));
    json_t *schema = json_object_get (desc, "inputSchema");
    assert_non_null (json_object_get (schema, "$schema"));
    assert_non_null (json_object_get (schema, "$defs"));
    assert_true (json_is_false (json_object_get (schema, "additionalProperties")));
    json_decref (desc);

    //  Resources and their contents.
    json_t *resources = sb_connectors_resources (set);
    json_t *text = s_find_by (resources, "uri", "test://static-text");
    assert_non_null (text);
    assert_string_equal (json_string_value (json_object_get (text, "mimeType")), "text/plain");
    assert_non_null (s_find_by (resources, "uri", "test://watched-resource"));
    json_decref (resources);
    json_t *contents = NULL;
    char *error = NULL;
    assert_int_equal (sb_connectors_resource_read (set, "test://static-binary", &contents, &error), 0);
    json_t *item = json_array_get (contents, 0);
    assert_string_equal (json_string_value (json_object_get (item, "uri")), "test://static-binary");
    assert_string_equal (json_string_value (json_object_get (item, "mimeType")), "image/png");
    assert_non_null (json_object_get (item, "blob"));
    json_decref (contents);
    assert_int_equal (sb_connectors_resource_read (set, "test://static-text", &contents, &error), 0);
    assert_string_equal (json_string_value (json_object_get (json_array_get (contents, 0), "text")),
                         "This is the content of the static text resource.");
    json_decref (contents);

    //  The template, exactly as the suite expects.
    json_t *templates = sb_connectors_resource_templates (set);
    assert_non_null (s_find_by (templates, "uriTemplate", "test://template/{id}/data"));
    json_decref (templates);
    assert_int_equal (sb_connectors_resource_read (set, "test://template/123/data", &contents, &error), 0);
    item = json_array_get (contents, 0);
    assert_string_equal (json_string_value (json_object_get (item, "uri")), "test://template/123/data");
    assert_string_equal (json_string_value (json_object_get (item, "mimeType")), "application/json");
    assert_string_equal (json_string_value (json_object_get (item, "text")),
                         "{\"id\":\"123\",\"templateTest\":true,\"data\":\"Data for ID: 123\"}");
    json_decref (contents);
    assert_int_equal (sb_connectors_resource_read (set, "test://nothing", &contents, &error), -1);
    assert_null (contents);
    assert_non_null (strstr (error, "No resource matches"));
    free (error);

    //  Prompts.
    json_t *prompts = sb_connectors_prompts (set);
    json_t *with_args = s_find_by (prompts, "name", "test_prompt_with_arguments");
    assert_non_null (with_args);
    assert_int_equal (json_array_size (json_object_get (with_args, "arguments")), 2);
    assert_null (json_object_get (json_array_get (json_object_get (with_args, "arguments"), 0),
                                  "completions"));
    json_decref (prompts);
    json_t *result = NULL;
    json_t *args = json_pack ("{s:s, s:s}", "arg1", "hello", "arg2", "world");
    assert_int_equal (sb_connectors_prompt_get (set, "test_prompt_with_arguments", args, &result, &error), 0);
    json_t *content = json_object_get (json_array_get (json_object_get (result, "messages"), 0), "content");
    assert_string_equal (json_string_value (json_object_get (content, "text")),
                         "Prompt with arguments: arg1='hello', arg2='world'");
    json_decref (result);
    json_decref (args);
    args = json_pack ("{s:s}", "arg1", "x");
    assert_int_equal (sb_connectors_prompt_get (set, "test_prompt_with_arguments", args, &result, &error), -1);
    assert_non_null (strstr (error, "needs the argument \"arg2\""));
    free (error);
    json_decref (args);
    args = json_pack ("{s:s}", "resourceUri", "test://example-resource");
    assert_int_equal (sb_connectors_prompt_get (set, "test_prompt_with_embedded_resource", args,
                                                &result, &error), 0);
    content = json_object_get (json_array_get (json_object_get (result, "messages"), 0), "content");
    assert_string_equal (json_string_value (json_object_get (content, "type")), "resource");
    assert_string_equal (json_string_value (json_object_get (json_object_get (content, "resource"), "uri")),
                         "test://example-resource");
    json_decref (result);
    json_decref (args);
    args = json_pack ("{s:s}", "nope", "x");
    assert_int_equal (sb_connectors_prompt_get (set, "test_simple_prompt", args, &result, &error), -1);
    free (error);
    json_decref (args);
    assert_int_equal (sb_connectors_prompt_get (set, "no_such_prompt", NULL, &result, &error), -1);
    free (error);

    //  Completion: prefix filter, case-insensitive; unknown refs answer empty.
    json_t *completion = sb_connectors_complete (set, "ref/prompt", "test_prompt_with_arguments",
                                                 "arg1", "PAR");
    assert_int_equal (json_array_size (json_object_get (completion, "values")), 3);
    assert_int_equal (json_integer_value (json_object_get (completion, "total")), 3);
    assert_true (json_is_false (json_object_get (completion, "hasMore")));
    json_decref (completion);
    completion = sb_connectors_complete (set, "ref/resource", "test://template/{id}/data", "id", "1");
    assert_int_equal (json_array_size (json_object_get (completion, "values")), 2);    // 1, 123
    json_decref (completion);
    completion = sb_connectors_complete (set, "ref/prompt", "nothing", "arg1", "");
    assert_int_equal (json_array_size (json_object_get (completion, "values")), 0);
    json_decref (completion);
    sb_connectors_destroy (&set);
}

static void
test_widget_and_output_schema (void **state)
{
    sb_connectors_t *set = s_load_real ();
    static const char *const tools [] = {
        "search_accounts", "search_contacts", "search_leads", "search_opportunities", "list_tasks", NULL
    };
    for (size_t i = 0; tools [i]; i++) {
        const sb_tool_t *tool = sb_connectors_find_tool (set, tools [i]);
        assert_non_null (sb_tool_output_schema (tool));
        const json_t *meta = sb_tool_meta (tool);
        assert_string_equal (json_string_value (json_object_get (json_object_get (meta, "ui"), "resourceUri")),
                             "ui://widget/card-list.html");
        json_t *desc = sb_tool_descriptor (tool);
        assert_non_null (json_object_get (desc, "outputSchema"));
        assert_non_null (json_object_get (desc, "_meta"));
        json_decref (desc);
    }
    assert_null (sb_tool_output_schema (sb_connectors_find_tool (set, "get_account")));

    //  Both widget variants serve the HTML file, with their mimeTypes.
    json_t *contents = NULL;
    char *error = NULL;
    assert_int_equal (sb_connectors_resource_read (set, "ui://widget/card-list.html", &contents, &error), 0);
    json_t *item = json_array_get (contents, 0);
    assert_string_equal (json_string_value (json_object_get (item, "mimeType")), "text/html;profile=mcp-app");
    const char *html = json_string_value (json_object_get (item, "text"));
    assert_non_null (strstr (html, "window.openai"));
    assert_null (strstr (html, "src=\"http"));              // nothing external
    assert_null (strstr (html, "fetch("));
    json_decref (contents);
    assert_int_equal (sb_connectors_resource_read (set, "ui://widget/card-list-skybridge.html",
                                                   &contents, &error), 0);
    assert_string_equal (json_string_value (json_object_get (json_array_get (contents, 0), "mimeType")),
                         "text/html+skybridge");
    json_decref (contents);

    //  A mapped sandbox-shaped answer matches the tool's outputSchema.
    const sb_tool_t *tool = sb_connectors_find_tool (set, "search_accounts");
    const char *body = "{\"items\":[{\"id\":\"acc_1\",\"name\":\"Acme\",\"industry\":\"Energy\","
                       "\"city\":\"Berlin\",\"country\":\"DE\",\"employees\":120,\"annual_revenue\":5000000,"
                       "\"website\":\"https://acme.example\",\"owner\":\"Ann\",\"created_at\":\"x\"}],"
                       "\"limit\":20,\"total\":31,\"next_cursor\":\"c2\"}";
    json_t *result = sb_tool_map_result (tool, 200, body, strlen (body));
    json_t *structured = json_object_get (result, "structuredContent");
    char *why = NULL;
    if (sb_schema_check (sb_tool_output_schema (tool), structured, &why))
        fprintf (stderr, "outputSchema: %s\n", why);
    assert_null (why);
    json_decref (result);
    sb_connectors_destroy (&set);
}

static void
test_template_hostile_uris (void **state)
{
    sb_connectors_t *set = s_load_real ();
    static const char *const refused [] = {
        "test://template//data", "test://template/a/b/data", "test://template/../x/data",
        "test://template/1/data?x=1", "test://template/1/data#f", "test://template/%00/data",
        "test://template/%zz/data", "test://template/%/data", "test://template/%ff/data",
        "test://template/1/datax", "TEST://template/1/data", "test://template/a b/data",
        "test://template/<script>/data", "test://template/1\"/data", "", NULL
    };
    for (size_t i = 0; refused [i]; i++) {
        json_t *contents = NULL;
        char *error = NULL;
        int rc = sb_connectors_resource_read (set, refused [i], &contents, &error);
        if (rc == 0)
            fprintf (stderr, "accepted: %s\n", refused [i]);
        assert_int_equal (rc, -1);
        free (error);
    }
    //  Escapes decode into the JSON content, escaped by jansson.
    json_t *contents = NULL;
    char *error = NULL;
    assert_int_equal (sb_connectors_resource_read (set, "test://template/a%22%2C%22x%22%3A%22y/data",
                                                   &contents, &error), 0);
    json_t *parsed = json_loads (json_string_value (json_object_get (json_array_get (contents, 0), "text")),
                                 0, NULL);
    assert_non_null (parsed);
    assert_string_equal (json_string_value (json_object_get (parsed, "id")), "a\",\"x\":\"y");
    assert_null (json_object_get (parsed, "x"));
    json_decref (parsed);
    json_decref (contents);
    //  Too long a URI is refused, not truncated.
    char *longer = malloc (5000);
    memset (longer, 'a', 4999);
    longer [4999] = 0;
    memcpy (longer, "test://template/", 16);
    memcpy (longer + 4990, "/data", 6);
    assert_int_equal (sb_connectors_resource_read (set, longer, &contents, &error), -1);
    free (error);
    free (longer);
    sb_connectors_destroy (&set);
}

static void
test_bad_definitions (void **state)
{
    struct { const char *extra, *tool_extra, *tail; } cases [] = {
        { ",\"resources\":{}", "",
          "/resources: must be an array (type)" },
        { ",\"resources\":[{\"name\":\"n\",\"text\":\"t\"}]", "",
          "/resources/0/uri: is required (required)" },
        { ",\"resources\":[{\"uri\":\"no-scheme\",\"name\":\"n\",\"text\":\"t\"}]", "",
          "/resources/0/uri: must match the pattern ^[A-Za-z][A-Za-z0-9+.-]*:[!-~]*$ (pattern)" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\"}]", "",
          "/resources/0: must have \"text\", \"blob\" or \"file\" (required)" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\",\"text\":\"t\",\"blob\":\"AAAA\"}]", "",
          "/resources/0: fits more than one of the allowed forms (forms 1 and 2); it must fit exactly one (oneOf)" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\",\"blob\":\"not base64!\"}]", "",
          "/resources/0/blob: must be standard padded base64" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\",\"file\":\"../etc/passwd\"}]", "",
          "/resources/0/file: must not match {\"pattern\":\"\\\\.\\\\.\"} (not)" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\",\"file\":\"/etc/passwd\"}]", "",
          "/resources/0/file: must match the pattern ^[^/\\\\][^\\\\]*$ (pattern)" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\",\"file\":\"missing.html\"}]", "",
          "/resources/0/file: cannot read \"missing.html\": No such file or directory" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\",\"text\":\"t\",\"colour\":1}]", "",
          "/resources/0/colour: is not an allowed member here (additionalProperties)" },
        { ",\"resources\":[{\"uri\":\"x://a\",\"name\":\"n\",\"text\":\"t\"},{\"uri\":\"x://a\",\"name\":\"m\",\"text\":\"t\"}]",
          "",
          "/resources/1/uri: \"x://a\" is declared more than once (over all connectors)" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://a\",\"name\":\"n\",\"text\":\"t\"}]", "",
          "/resource_templates/0/uriTemplate: has no {variable}; declare a resource instead" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://{+a}\",\"name\":\"n\",\"text\":\"t\"}]", "",
          "/resource_templates/0/uriTemplate: supports only level-1 {name} expressions (letters, digits, _)" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://{a}{b}\",\"name\":\"n\",\"text\":\"t\"}]", "",
          "/resource_templates/0/uriTemplate: {a} must be followed by the end or a delimiter such as '/', '?', '&', '=' or ','" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://{a}.json\",\"name\":\"n\",\"text\":\"t\"}]", "",
          "/resource_templates/0/uriTemplate: {a} must be followed by the end or a delimiter such as '/', '?', '&', '=' or ','" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://{a}/{a}\",\"name\":\"n\",\"text\":\"t\"}]", "",
          "/resource_templates/0/uriTemplate: repeats {a} or has more than 8 variables" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://{a}\",\"name\":\"n\",\"text\":\"{b}\"}]", "",
          "/resource_templates/0/text: placeholder {b} names no declared argument or variable" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://{a}\",\"name\":\"n\"}]", "",
          "/resource_templates/0: must have \"text\" or \"json\" (required)" },
        { ",\"resource_templates\":[{\"uriTemplate\":\"x://{a}\",\"name\":\"n\",\"text\":\"t\",\"completions\":{\"b\":[]}}]",
          "",
          "/resource_templates/0/completions: names \"b\", which is not a variable of the uriTemplate" },
        { ",\"prompts\":[{\"name\":\"p\"}]", "",
          "/prompts/0/messages: is required (required)" },
        { ",\"prompts\":[{\"name\":\"p q\",\"messages\":[]}]", "",
          "/prompts/0/name: must match the pattern ^[A-Za-z0-9_.-]{1,64}$ (pattern)" },
        { ",\"prompts\":[{\"name\":\"p\",\"messages\":[{\"role\":\"system\",\"content\":{\"type\":\"text\",\"text\":\"t\"}}]}]",
          "",
          "/prompts/0/messages/0/role: must be one of [\"user\",\"assistant\"] (enum)" },
        { ",\"prompts\":[{\"name\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"video\"}}]}]",
          "",
          "/prompts/0/messages/0/content/type: must be one of [\"text\",\"image\",\"audio\",\"resource\",\"resource_link\"] (enum)" },
        { ",\"prompts\":[{\"name\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"image\",\"data\":\"??\",\"mimeType\":\"image/png\"}}]}]",
          "",
          "/prompts/0/messages/0/content/data: must be standard padded base64" },
        { ",\"prompts\":[{\"name\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"{who}\"}}]}]",
          "",
          "/prompts/0/messages: placeholder {who} names no declared argument or variable" },
        { ",\"prompts\":[{\"name\":\"p\",\"arguments\":[{\"name\":\"a\"},{\"name\":\"a\"}],\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}]}]",
          "",
          "/prompts/0/arguments/1/name: \"a\" is already the name of another argument" },
        { ",\"prompts\":[{\"name\":\"p\",\"arguments\":[{\"name\":\"a\",\"completions\":[1]}],\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}]}]",
          "",
          "/prompts/0/arguments/0/completions/0: must be a string (type)" },
        { "", ",\"outputSchema\":{\"type\":\"array\"}", 
          "/tools/0/outputSchema/type: must be exactly \"object\" (const)" },
        { "", ",\"_meta\":[]", 
          "/tools/0/_meta: must be an object (type)" },
        { "", ",\"_meta\":{\"ui\":{\"resourceUri\":\"https://x\"}}", 
          "/tools/0/_meta/ui/resourceUri: must match the pattern ^ui:// (pattern)" },
        { "", ",\"_meta\":{\"ui\":{\"resourceUri\":\"ui://missing.html\"}}", 
          "/tools/0/_meta/ui/resourceUri: \"ui://missing.html\" must be a declared resource with mimeType \"text/html;profile=mcp-app\"" },
        { ",\"resources\":[{\"uri\":\"ui://w.html\",\"name\":\"n\",\"mimeType\":\"text/html\",\"text\":\"t\"}]",
          ",\"_meta\":{\"openai/outputTemplate\":\"ui://w.html\"}", 
          "/tools/0/_meta/openai~1outputTemplate: \"ui://w.html\" must be a declared resource with mimeType \"text/html+skybridge\"" },
        { "", ",\"result\":{\"mapping\":\"list\",\"noun\":\"x\"}", 
          "/tools/0/result: is not allowed (false)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_clean_dir ();
        s_write_connector ("c", cases [i].extra, cases [i].tool_extra);
        s_expect_error ("c.json", cases [i].tail);
    }
    //  Names are unique over connectors; HTTP tools need a base_url.
    s_clean_dir ();
    s_write_connector ("a", ",\"prompts\":[{\"name\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}]}]", "");
    s_write_connector ("b", ",\"prompts\":[{\"name\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"y\"}}]}]", "");
    s_expect_error ("b.json", "/prompts/0/name: \"p\" is declared more than once (over all "
                    "connectors)");

    //  A good one with a file resource loads; a binary file becomes a blob.
    s_clean_dir ();
    s_write ("widgets/w.html", "<p>hi</p>");
    FILE *bin = fopen ("/dev/null", "r");
    fclose (bin);
    char path [512];
    snprintf (path, sizeof path, "%s/widgets/b.bin", s_dir);
    bin = fopen (path, "wb");
    fwrite ("\0\1\2", 1, 3, bin);
    fclose (bin);
    s_write_connector ("c", ",\"resources\":[{\"uri\":\"ui://w.html\",\"name\":\"w\",\"mimeType\":\"text/html;profile=mcp-app\","
                            "\"file\":\"widgets/w.html\"},{\"uri\":\"x://b\",\"name\":\"b\",\"file\":\"widgets/b.bin\"}]",
                       ",\"_meta\":{\"ui\":{\"resourceUri\":\"ui://w.html\"}},\"outputSchema\":{\"type\":\"object\"}");
    char *error = NULL;
    sb_connectors_t *set = sb_connectors_load (s_dir, &error);
    if (!set)
        fprintf (stderr, "load: %s\n", error);
    assert_non_null (set);
    json_t *contents = NULL;
    assert_int_equal (sb_connectors_resource_read (set, "x://b", &contents, &error), 0);
    assert_string_equal (json_string_value (json_object_get (json_array_get (contents, 0), "blob")), "AAEC");
    json_decref (contents);
    assert_int_equal (sb_connectors_resource_read (set, "ui://w.html", &contents, &error), 0);
    assert_string_equal (json_string_value (json_object_get (json_array_get (contents, 0), "text")), "<p>hi</p>");
    json_decref (contents);
    sb_connectors_destroy (&set);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-catalog-test-%d", (int) getpid ());
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_conformance_fixtures),
        cmocka_unit_test (test_widget_and_output_schema),
        cmocka_unit_test (test_template_hostile_uris),
        cmocka_unit_test (test_bad_definitions),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char command [300];
    snprintf (command, sizeof command, "rm -rf '%s'", s_dir);
    if (system (command)) {}
    return rc;
}
