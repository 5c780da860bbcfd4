/*  tests/16_schema_unit.c — unit tests of schema/sb_schema (JSON Schema
    2020-12 for tool input schemas). The keyword cases are data, in
    tests/data/schema_cases.json: each keyword accepts a good value and
    refuses a bad one with a sentence that names the field by its path and
    the rule; every case runs through both sb_schema_check (patterns
    compiled per call) and sb_schema_new + sb_schema_check_compiled, which
    must agree word for word. Load-time validation refuses malformed
    schemas with errors that name the place (data too). What stays C is
    what data cannot say: API behaviour (NULL values, sb_schema_new_any,
    the schema never rewritten, compiled checkers shared), limits built by
    loops, timings. Hostile schemas and values
    (deep nesting, $ref loops, catastrophic regexes, quadratic
    uniqueItems, exponential anyOf) fail cleanly and fast. $anchor and
    "#name" refs, and the composed schema of the conformance suite's
    json_schema_2020_12_tool (SEP-2106), are checked for real. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_schema.h"

#define S_CASES SB_SOURCE_DIR "/tests/data/schema_cases.json"

static json_t *
s_json (const char *text)
{
    json_error_t err;
    json_t *json = json_loads (text, JSON_DECODE_ANY, &err);
    if (!json)
        fail_msg ("bad test JSON %s: %s", text, err.text);
    return json;
}

//  Appends `text` to the string in `buffer`.
static void
s_cat (char *buffer, size_t size, const char *text)
{
    size_t used = strlen (buffer);
    snprintf (buffer + used, size - used, "%s", text);
}

static double
s_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

//  Checks `value` against `schema` both ways: accepted when `fragment` is
//  NULL, else refused with an error containing `fragment`; the compiled
//  checker must say exactly the same. `label` names the case in a failure.
static void
s_expect_value (const json_t *schema, const json_t *value, const char *fragment,
                const char *label)
{
    char *error = NULL;
    int rc = sb_schema_check (schema, value, &error);
    if (!fragment) {
        if (rc)
            fail_msg ("%s refused: %s", label, error);
        assert_null (error);
    }
    else {
        if (rc != -1 || !error)
            fail_msg ("%s accepted, expected \"%s\"", label, fragment);
        if (!strstr (error, fragment))
            fail_msg ("%s: error \"%s\" lacks \"%s\"", label, error, fragment);
    }
    char *why = NULL;
    sb_schema_t *compiled = sb_schema_new (schema, "test", &why);
    if (compiled) {
        char *again = NULL;
        assert_int_equal (sb_schema_check_compiled (compiled, value, &again), rc);
        if (error || again)
            assert_string_equal (error, again);
        free (again);
        sb_schema_destroy (&compiled);
        assert_null (compiled);
    }
    free (why);
    free (error);
}

//  s_expect_value with the value's text.
static void
s_expect (const json_t *schema, const char *value_text, const char *fragment)
{
    json_t *value = s_json (value_text);
    s_expect_value (schema, value, fragment, value_text);
    json_decref (value);
}

//  Same, from the schema's text; the schema must pass load-time checks.
static void
s_expect_text (const char *schema_text, const char *value_text, const char *fragment)
{
    json_t *schema = s_json (schema_text);
    char *why = NULL;
    if (sb_schema_validate (schema, "t", &why))
        fail_msg ("schema %s refused: %s", schema_text, why);
    s_expect (schema, value_text, fragment);
    json_decref (schema);
}

//  Load time: sb_schema_validate accepts `schema` when `fragment` is NULL,
//  else refuses it with words containing `fragment`; sb_schema_new says
//  the same. `label` names the case in a failure.
static void
s_expect_valid_json (const json_t *schema, const char *fragment, const char *label)
{
    char *why = NULL;
    int rc = sb_schema_validate (schema, "f.json: tool \"t\"", &why);
    sb_schema_t *compiled = NULL;
    if (!fragment) {
        if (rc)
            fail_msg ("%s refused: %s", label, why);
        assert_null (why);
        compiled = sb_schema_new (schema, "f.json: tool \"t\"", &why);
        if (!compiled)
            fail_msg ("%s refused by sb_schema_new: %s", label, why);
        sb_schema_destroy (&compiled);
    }
    else {
        if (rc != -1 || !why)
            fail_msg ("%s accepted, expected \"%s\"", label, fragment);
        if (!strstr (why, fragment))
            fail_msg ("%s: error \"%s\" lacks \"%s\"", label, why, fragment);
        free (why);
        //  sb_schema_new refuses it with the same words.
        compiled = sb_schema_new (schema, "f.json: tool \"t\"", &why);
        assert_null (compiled);
        assert_non_null (why);
        assert_non_null (strstr (why, fragment));
        free (why);
    }
}

//  Same, from the schema's text.
static void
s_expect_valid (const char *schema_text, const char *fragment)
{
    json_t *schema = s_json (schema_text);
    s_expect_valid_json (schema, fragment, schema_text);
    json_decref (schema);
}

#define S_OBJ(props) "{\"type\":\"object\",\"properties\":{" props "}}"

//  The cases of tests/data/schema_cases.json (new reference).
static json_t *
s_cases (void)
{
    json_error_t err;
    json_t *cases = json_load_file (S_CASES, 0, &err);
    if (!cases)
        fail_msg ("%s: %s (line %d)", S_CASES, err.text, err.line);
    return cases;
}

//  Each "checks" group of the data: its schema passes load-time checks,
//  and each of its values is accepted (error null) or refused with a
//  sentence holding error, by both checkers, word for word alike.
static void
test_checks_from_data (void **state)
{
    (void) state;
    json_t *cases = s_cases ();
    size_t index, number, count = 0;
    json_t *group, *one;
    json_array_foreach (json_object_get (cases, "checks"), index, group) {
        const char *test = json_string_value (json_object_get (group, "test"));
        const json_t *schema = json_object_get (group, "schema");
        assert_non_null (test);
        char *why = NULL;
        if (sb_schema_validate (schema, "t", &why))
            fail_msg ("checks[%zu] (%s): schema refused: %s", index, test, why);
        json_array_foreach (json_object_get (group, "cases"), number, one) {
            const json_t *error = json_object_get (one, "error");
            char label [96];
            snprintf (label, sizeof label, "checks[%zu] (%s) case %zu", index, test, number);
            assert_true (json_is_null (error) || json_is_string (error));
            s_expect_value (schema, json_object_get (one, "value"), json_string_value (error),
                            label);
            count++;
        }
    }
    json_decref (cases);
    assert_true (count > 0);
}

//  Each "loads" entry of the data: sb_schema_validate and sb_schema_new
//  accept the schema (error null) or refuse it with words holding error.
static void
test_loads_from_data (void **state)
{
    (void) state;
    json_t *cases = s_cases ();
    size_t index, count = 0;
    json_t *one;
    json_array_foreach (json_object_get (cases, "loads"), index, one) {
        const json_t *error = json_object_get (one, "error");
        char label [96];
        snprintf (label, sizeof label, "loads[%zu] (%s)", index,
                  json_string_value (json_object_get (one, "test")));
        assert_true (json_is_null (error) || json_is_string (error));
        s_expect_valid_json (json_object_get (one, "schema"), json_string_value (error), label);
        count++;
    }
    json_decref (cases);
    assert_true (count > 0);
}

//  What is not data: a value that is no JSON at all.
static void
test_not_an_object (void **state)
{
    (void) state;
    json_t *schema = s_json ("{\"type\":\"object\"}");
    char *error = NULL;
    assert_int_equal (sb_schema_check (schema, NULL, &error), -1);
    assert_string_equal (error, "Arguments must be a JSON object.");
    free (error);
    json_decref (schema);
}

//  sb_schema_new_any: a schema of any value, checked as sb_schema_new's.
static void
test_any_value (void **state)
{
    (void) state;
    char *why = NULL, *error = NULL;
    json_t *schema = s_json ("{\"type\":\"string\",\"maxLength\":2}");
    assert_null (sb_schema_new (schema, "t", &why));
    assert_non_null (strstr (why, "inputSchema must be an object schema"));
    free (why);
    sb_schema_t *any = sb_schema_new_any (schema, "t", &why);
    assert_non_null (any);
    json_t *value = s_json ("\"ab\"");
    assert_int_equal (sb_schema_check_compiled (any, value, &error), 0);
    assert_null (error);
    json_decref (value);
    value = s_json ("\"abc\"");
    assert_int_equal (sb_schema_check_compiled (any, value, &error), -1);
    assert_string_equal (error, "The arguments must be at most 2 characters long.");
    free (error);
    assert_int_equal (sb_schema_check_compiled (any, NULL, &error), -1);
    assert_string_equal (error, "Arguments must be a JSON object.");
    free (error);
    json_decref (value);
    sb_schema_destroy (&any);
    assert_null (any);
    json_decref (schema);
    //  Refusals at load are the same as sb_schema_new's.
    schema = s_json ("{\"items\":{\"unevaluatedItems\":false}}");
    assert_null (sb_schema_new_any (schema, "t", &why));
    assert_non_null (strstr (why, "t: inputSchema.items.unevaluatedItems is not supported"));
    free (why);
    json_decref (schema);
}

//  The inputSchema of the conformance suite's json_schema_2020_12_tool
//  (SEP-1613, SEP-2106), as tests/fixtures/connectors/conformance.json publishes it.
static const char *s_contact_schema =
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
    " \"$defs\":{\"address\":{\"$anchor\":\"addressDef\",\"type\":\"object\","
    "   \"properties\":{\"street\":{\"type\":\"string\"},\"city\":{\"type\":\"string\"}}}},"
    " \"properties\":{\"name\":{\"type\":\"string\"},\"address\":{\"$ref\":\"#/$defs/address\"},"
    "   \"home\":{\"$ref\":\"#addressDef\"},"
    "   \"contactMethod\":{\"type\":\"string\",\"enum\":[\"phone\",\"email\"]},"
    "   \"phone\":{\"type\":\"string\"},\"email\":{\"type\":\"string\"}},"
    " \"allOf\":[{\"anyOf\":[{\"required\":[\"phone\"]},{\"required\":[\"email\"]}]}],"
    " \"if\":{\"properties\":{\"contactMethod\":{\"const\":\"phone\"}},"
    "   \"required\":[\"contactMethod\"]},"
    " \"then\":{\"required\":[\"phone\"]},\"else\":{\"required\":[\"email\"]},"
    " \"additionalProperties\":false}";

static void
test_composed_schema (void **state)
{
    (void) state;
    const char *text = s_contact_schema;
    s_expect_text (text, "{\"name\":\"Ann\",\"contactMethod\":\"phone\",\"phone\":\"555\"}", NULL);
    s_expect_text (text, "{\"email\":\"a@b.co\",\"address\":{\"city\":\"Oslo\"}}", NULL);
    s_expect_text (text, "{\"contactMethod\":\"email\",\"email\":\"a@b.co\",\"phone\":\"5\","
                         "\"home\":{\"street\":\"Main\"}}", NULL);
    //  allOf → anyOf: neither way to reach the person is given.
    s_expect_text (text, "{}", "Argument 'phone' or 'email' is required.");
    s_expect_text (text, "{\"name\":\"Ann\"}", "Argument 'phone' or 'email' is required.");
    //  if/then: contactMethod phone wants a phone, even with an email.
    s_expect_text (text, "{\"contactMethod\":\"phone\",\"email\":\"a@b.co\"}",
                   "Argument 'phone' is required.");
    //  else: anything but phone wants an email.
    s_expect_text (text, "{\"phone\":\"555\"}", "Argument 'email' is required.");
    s_expect_text (text, "{\"contactMethod\":\"email\",\"phone\":\"555\"}",
                   "Argument 'email' is required.");
    s_expect_text (text, "{\"contactMethod\":\"fax\",\"email\":\"a@b.co\"}",
                   "Argument 'contactMethod' must be one of [\"phone\",\"email\"].");
    //  $ref by JSON pointer and by $anchor reach the same subschema.
    s_expect_text (text, "{\"email\":\"e\",\"address\":{\"city\":5}}",
                   "Argument 'address.city' must be a string.");
    s_expect_text (text, "{\"email\":\"e\",\"home\":{\"street\":[]}}",
                   "Argument 'home.street' must be a string.");
    s_expect_text (text, "{\"email\":\"e\",\"home\":\"Main St\"}",
                   "Argument 'home' must be an object.");
    s_expect_text (text, "{\"email\":\"e\",\"fax\":\"1\"}",
                   "Argument 'fax' is not allowed: this tool takes no such argument.");

    //  Checking never rewrites the schema: tools/list publishes it verbatim.
    json_t *schema = s_json (text);
    json_t *copy = json_deep_copy (schema);
    char *why = NULL;
    sb_schema_t *compiled = sb_schema_new (schema, "t", &why);
    assert_non_null (compiled);
    char *error = NULL;
    json_t *args = s_json ("{\"name\":\"Ann\"}");
    assert_int_equal (sb_schema_check_compiled (compiled, args, &error), -1);
    free (error);
    assert_true (json_equal (schema, copy));
    assert_non_null (json_object_get (json_object_get (json_object_get (schema, "$defs"),
                                                       "address"), "$anchor"));
    sb_schema_destroy (&compiled);
    json_decref (args);
    json_decref (copy);
    json_decref (schema);

    //  Missing members merge only when every branch lacks one of the same
    //  object; nested, each keeps its path; the same name is said once.
    const char *nested = "{\"type\":\"object\",\"properties\":{\"to\":{\"type\":\"object\","
                         "\"oneOf\":[{\"required\":[\"a\"]},{\"required\":[\"b\"]},"
                         "{\"required\":[\"c\"]},{\"required\":[\"a\"],\"minProperties\":2}]}}}";
    s_expect_text (nested, "{\"to\":{\"b\":1}}", NULL);
    s_expect_text (nested, "{\"to\":{}}",
                   "Argument 'to.a', 'to.b' or 'to.c' is required.");
    s_expect_text (nested, "{\"to\":{\"a\":1,\"b\":2}}", "Argument 'to' fits more than one");
    //  A branch that failed for another reason: the usual best error.
    s_expect_text ("{\"type\":\"object\",\"anyOf\":[{\"required\":[\"a\"]},"
                   "{\"properties\":{\"b\":{\"type\":\"integer\"}},\"required\":[\"b\"]}]}",
                   "{\"b\":\"x\"}", "Argument 'b' must be an integer.");
}

static void
test_anchors (void **state)
{
    (void) state;
    //  An anchor anywhere a subschema may stand; refs from anywhere.
    const char *text = "{\"type\":\"object\",\"$defs\":{\"id\":{\"$anchor\":\"id\","
                       "\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}},"
                       "\"properties\":{\"a\":{\"$ref\":\"#id\"},"
                       "\"list\":{\"type\":\"array\",\"items\":{\"$anchor\":\"item.v-1_x\","
                       "\"type\":\"integer\",\"minimum\":0}},"
                       "\"b\":{\"$ref\":\"#item.v-1_x\",\"maximum\":9}}}";
    s_expect_text (text, "{\"a\":\"abc\",\"list\":[1,2],\"b\":3}", NULL);
    s_expect_text (text, "{\"a\":\"ABC\"}", "Argument 'a' must match the pattern ^[a-z]+$.");
    s_expect_text (text, "{\"b\":-1}", "Argument 'b' must be at least 0.");
    s_expect_text (text, "{\"b\":10}", "Argument 'b' must be at most 9.");
    //  A recursive schema through an anchor.
    const char *tree = "{\"type\":\"object\",\"$anchor\":\"node\",\"properties\":{"
                       "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#node\"}},"
                       "\"name\":{\"type\":\"string\"}}}";
    s_expect_text (tree, "{\"kids\":[{\"kids\":[{\"name\":\"leaf\"}]}]}", NULL);
    s_expect_text (tree, "{\"kids\":[{\"kids\":[{\"name\":1}]}]}",
                   "Argument 'kids[0].kids[0].name' must be a string.");

    //  Load time: names are plain names, used once, and refs must find one.
    s_expect_valid (S_OBJ ("\"n\":{\"$anchor\":5}"),
                    "f.json: tool \"t\": inputSchema.properties.n.$anchor must be a string");
    s_expect_valid (S_OBJ ("\"n\":{\"$anchor\":\"1st\"}"),
                    "inputSchema.properties.n.$anchor \"1st\" is not a valid anchor name");
    s_expect_valid (S_OBJ ("\"n\":{\"$anchor\":\"a b\"}"), "is not a valid anchor name");
    s_expect_valid (S_OBJ ("\"n\":{\"$anchor\":\"\"}"), "is not a valid anchor name");
    s_expect_valid (S_OBJ ("\"n\":{\"$anchor\":\"x/y\"}"), "is not a valid anchor name");
    s_expect_valid (S_OBJ ("\"n\":{\"$anchor\":\"x\"},\"m\":{\"$anchor\":\"x\"}"),
                    "$anchor \"x\" is already the $anchor of another subschema");
    s_expect_valid (S_OBJ ("\"n\":{\"$ref\":\"#nowhere\"}"),
                    "$ref \"#nowhere\" names no $anchor in this inputSchema");
    s_expect_valid (S_OBJ ("\"n\":{\"$ref\":\"#a%20b\"}"), "is not supported: only local");
    //  "$anchor" inside a const or an unknown keyword is data, not an anchor.
    s_expect_valid (S_OBJ ("\"n\":{\"const\":{\"$anchor\":\"c\"}},\"m\":{\"$ref\":\"#c\"}"),
                    "$ref \"#c\" names no $anchor");
    s_expect_valid (S_OBJ ("\"n\":{\"x-ui\":{\"$anchor\":\"c\"}},\"m\":{\"$ref\":\"#c\"}"),
                    "$ref \"#c\" names no $anchor");
    //  Anchors that only refer to each other loop.
    s_expect_valid ("{\"type\":\"object\",\"$defs\":{\"a\":{\"$anchor\":\"a\",\"$ref\":\"#b\"},"
                    "\"b\":{\"$anchor\":\"b\",\"allOf\":[{\"$ref\":\"#a\"}]}}}",
                    "refers back to itself");
    //  At most SB_MAX_SCHEMA_ANCHORS.
    json_t *wide = json_pack ("{s:s, s:o}", "type", "object", "properties", json_object ());
    for (int i = 0; i <= SB_MAX_SCHEMA_ANCHORS; i++) {
        char name [16];
        snprintf (name, sizeof name, "p%d", i);
        json_object_set_new (json_object_get (wide, "properties"), name,
                             json_pack ("{s:s}", "$anchor", name));
    }
    char *why = NULL;
    assert_int_equal (sb_schema_validate (wide, "w", &why), -1);
    assert_non_null (strstr (why, "is one $anchor too many (at most 64 in one inputSchema)"));
    free (why);
    json_decref (wide);

    //  Unvalidated, a $ref to an anchor that is not there stops cleanly,
    //  and of two anchors with one name the first is used.
    json_t *broken = s_json (S_OBJ ("\"n\":{\"$ref\":\"#gone\"}"));
    s_expect (broken, "{\"n\":1}", "($ref \"#gone\" points nowhere)");
    json_decref (broken);
    broken = s_json ("{\"type\":\"object\",\"$defs\":{\"a\":{\"$anchor\":\"x\","
                     "\"type\":\"string\"}},\"properties\":{\"n\":{\"$ref\":\"#x\"},"
                     "\"m\":{\"$anchor\":\"x\",\"type\":\"integer\"}}}");
    char *error = NULL;
    json_t *args = s_json ("{\"n\":1}");
    assert_int_equal (sb_schema_check (broken, args, &error), -1);
    assert_string_equal (error, "Argument 'n' must be a string.");
    free (error);
    json_decref (args);
    json_decref (broken);
}

//  "x-mcp-header" (SEP-2243) is checked at load as clients check it.
static void
test_header_annotations (void **state)
{
    (void) state;
    const char *good = "{\"type\":\"object\",\"properties\":{"
                       "\"region\":{\"type\":\"string\",\"x-mcp-header\":\"Region\"},"
                       "\"priority\":{\"type\":\"integer\",\"x-mcp-header\":\"Priority\"},"
                       "\"verbose\":{\"type\":\"boolean\",\"x-mcp-header\":\"X_Verbose.1~\"},"
                       "\"where\":{\"type\":\"object\",\"properties\":{\"zone\":"
                       "{\"type\":\"string\",\"x-mcp-header\":\"Zone\"}}}},"
                       "\"required\":[\"region\"]}";
    s_expect_valid (good, NULL);
    //  An annotation only: arguments are checked as without it.
    s_expect_text (good, "{\"region\":\"us\",\"priority\":1,\"where\":{\"zone\":\"a\"}}", NULL);
    s_expect_text (good, "{\"region\":5}", "Argument 'region' must be a string.");

    s_expect_valid (S_OBJ ("\"n\":{\"type\":\"string\",\"x-mcp-header\":5}"),
                    "inputSchema.properties.n.x-mcp-header must be a string");
    static const char *const bad_names [] = {
        "", "My Region", "Region:Primary", "R\\u00e9gion", "Region\\t1", "Region\\n", "(x)", NULL
    };
    for (size_t i = 0; bad_names [i]; i++) {
        char text [256];
        snprintf (text, sizeof text, S_OBJ ("\"n\":{\"type\":\"string\",\"x-mcp-header\":\"%s\"}"),
                  bad_names [i]);
        s_expect_valid (text, ".x-mcp-header must be an HTTP header name");
    }
    char long_name [SB_MAX_SCHEMA_HEADER_NAME + 2];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = 0;
    char text [256];
    snprintf (text, sizeof text, S_OBJ ("\"n\":{\"type\":\"string\",\"x-mcp-header\":\"%s\"}"),
              long_name);
    s_expect_valid (text, "must be an HTTP header name: 1 to 64");
    //  Primitive types only, and never number.
    s_expect_valid (S_OBJ ("\"n\":{\"type\":\"number\",\"x-mcp-header\":\"N\"}"),
                    ".x-mcp-header is only allowed on a property of type string, integer or boolean");
    s_expect_valid (S_OBJ ("\"n\":{\"type\":\"object\",\"x-mcp-header\":\"N\"}"),
                    "only allowed on a property of type string, integer or boolean");
    s_expect_valid (S_OBJ ("\"n\":{\"type\":\"array\",\"x-mcp-header\":\"N\"}"),
                    "only allowed on a property of type string, integer or boolean");
    s_expect_valid (S_OBJ ("\"n\":{\"type\":\"null\",\"x-mcp-header\":\"N\"}"),
                    "only allowed on a property of type string, integer or boolean");
    s_expect_valid (S_OBJ ("\"n\":{\"x-mcp-header\":\"N\"}"),
                    "only allowed on a property of type string, integer or boolean");
    //  Unique without case.
    s_expect_valid (S_OBJ ("\"a\":{\"type\":\"string\",\"x-mcp-header\":\"MyField\"},"
                           "\"b\":{\"type\":\"string\",\"x-mcp-header\":\"myfield\"}"),
                    "\"myfield\" names the same header as another property's");
    //  Reached through "properties" alone.
    static const char *const unreachable [] = {
        "{\"type\":\"object\",\"x-mcp-header\":\"Top\"}",
        S_OBJ ("\"l\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"x-mcp-header\":\"I\"}}"),
        "{\"type\":\"object\",\"$defs\":{\"d\":{\"type\":\"string\",\"x-mcp-header\":\"D\"}}}",
        "{\"type\":\"object\",\"allOf\":[{\"properties\":{\"a\":{\"type\":\"string\","
        "\"x-mcp-header\":\"A\"}}}]}",
        "{\"type\":\"object\",\"if\":{\"properties\":{\"a\":{\"type\":\"string\","
        "\"x-mcp-header\":\"A\"}}}}",
        "{\"type\":\"object\",\"patternProperties\":{\"^a\":{\"type\":\"string\","
        "\"x-mcp-header\":\"A\"}}}",
        S_OBJ ("\"o\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\","
               "\"x-mcp-header\":\"A\"}}"),
        NULL
    };
    for (size_t i = 0; unreachable [i]; i++)
        s_expect_valid (unreachable [i], "is only allowed on a property reached from the top "
                                         "through \"properties\" alone");
    //  At most SB_MAX_SCHEMA_HEADERS.
    json_t *wide = json_pack ("{s:s, s:o}", "type", "object", "properties", json_object ());
    for (int i = 0; i <= SB_MAX_SCHEMA_HEADERS; i++) {
        char name [16];
        snprintf (name, sizeof name, "H%d", i);
        json_object_set_new (json_object_get (wide, "properties"), name,
                             json_pack ("{s:s, s:s}", "type", "string", "x-mcp-header", name));
    }
    char *why = NULL;
    assert_int_equal (sb_schema_validate (wide, "w", &why), -1);
    assert_non_null (strstr (why, "is one x-mcp-header too many (at most 32 in one inputSchema)"));
    free (why);
    json_decref (wide);
}

static void
test_hostile (void **state)
{
    (void) state;
    //  A schema nested deeper than SB_MAX_SCHEMA_DEPTH is refused at load.
    char deep [8192] = "{\"type\":\"object\",\"properties\":{\"a\":";
    for (int i = 0; i < SB_MAX_SCHEMA_DEPTH; i++)
        s_cat (deep, sizeof deep, "{\"type\":\"array\",\"items\":");
    s_cat (deep, sizeof deep, "{}");
    for (int i = 0; i < SB_MAX_SCHEMA_DEPTH; i++)
        s_cat (deep, sizeof deep, "}");
    s_cat (deep, sizeof deep, "}}");
    s_expect_valid (deep, "levels deep");

    //  $ref loops that never reach a value are refused at load…
    s_expect_valid ("{\"type\":\"object\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},"
                    "\"b\":{\"$ref\":\"#/$defs/a\"}},\"properties\":{\"x\":{\"$ref\":"
                    "\"#/$defs/a\"}}}", "refers back to itself");
    s_expect_valid ("{\"type\":\"object\",\"allOf\":[{\"$ref\":\"#\"}]}", "refers back to itself");
    s_expect_valid ("{\"type\":\"object\",\"$defs\":{\"a\":{\"anyOf\":[{\"type\":\"string\"},"
                    "{\"not\":{\"$ref\":\"#/$defs/a\"}}]}}}", "refers back to itself");
    //  …and if one reaches sb_schema_check unvalidated, it stops cleanly.
    json_t *looping = s_json ("{\"type\":\"object\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},"
                              "\"b\":{\"$ref\":\"#/$defs/a\"}},\"properties\":{\"x\":{\"$ref\":"
                              "\"#/$defs/a\"}}}");
    double start = s_now ();
    s_expect (looping, "{\"x\":1}", "refers to itself too deeply");
    json_decref (looping);
    //  A recursive schema that descends into the value is fine, to a depth.
    const char *tree = "{\"type\":\"object\",\"properties\":{\"kids\":{\"type\":\"array\","
                       "\"items\":{\"$ref\":\"#\"}},\"name\":{\"type\":\"string\"}}}";
    s_expect_text (tree, "{\"kids\":[{\"kids\":[{\"name\":\"leaf\"}]}]}", NULL);
    s_expect_text (tree, "{\"kids\":[{\"kids\":[{\"name\":1}]}]}",
                   "Argument 'kids[0].kids[0].name' must be a string.");
    char value [8192] = "{\"kids\":";
    for (int i = 0; i < 40; i++)
        s_cat (value, sizeof value, "[{\"kids\":");
    s_cat (value, sizeof value, "[]");
    for (int i = 0; i < 40; i++)
        s_cat (value, sizeof value, "}]");
    s_cat (value, sizeof value, "}");
    s_expect_text (tree, value, "is nested too deeply (more than 32 levels).");
    //  As deep as a value may go, a missing member is still named.
    const char *chain = "{\"type\":\"object\",\"properties\":{\"k\":{\"$ref\":\"#\"},"
                        "\"r\":{}},\"required\":[\"r\"]}";
    char path [128] = "";
    value [0] = 0;
    for (int i = 0; i < SB_MAX_SCHEMA_DEPTH; i++) {
        s_cat (value, sizeof value, "{\"r\":1,\"k\":");
        s_cat (path, sizeof path, "k.");
    }
    s_cat (value, sizeof value, "{}");
    for (int i = 0; i < SB_MAX_SCHEMA_DEPTH; i++)
        s_cat (value, sizeof value, "}");
    char missing [160];
    snprintf (missing, sizeof missing, "Argument '%sr' is required.", path);
    s_expect_text (chain, value, missing);

    //  Catastrophic backtracking stops at the PCRE2 match limit.
    const char *evil = "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\","
                       "\"pattern\":\"^(a+)+$\"},\"t\":{\"type\":\"string\","
                       "\"pattern\":\"^(x+x+)+y$\"}}}";
    s_expect_text (evil, "{\"s\":\"aaaa\"}", NULL);
    s_expect_text (evil, "{\"s\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"}",
                   "Argument 's' is too long or complex to check against the pattern");
    s_expect_text (evil, "{\"t\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxy!\"}",
                   "Argument 't' is too long or complex to check against the pattern");

    //  uniqueItems over a long array is bounded work, not n² seconds.
    json_t *schema = s_json ("{\"type\":\"object\",\"properties\":{\"u\":{\"type\":\"array\","
                             "\"uniqueItems\":true}}}");
    json_t *items = json_array ();
    for (int i = 0; i < 5000; i++)
        json_array_append_new (items, json_integer (i));
    json_t *args = json_pack ("{s:o}", "u", items);
    char *error = NULL;
    assert_int_equal (sb_schema_check (schema, args, &error), -1);
    assert_non_null (strstr (error, "too complex to check"));
    free (error);
    json_decref (args);
    json_decref (schema);

    //  Each match counts for SB_SCHEMA_MATCH_COST steps: thousands of
    //  patterned strings are refused, not matched one by one for seconds.
    schema = s_json ("{\"type\":\"object\",\"properties\":{\"l\":{\"type\":\"array\","
                     "\"items\":{\"type\":\"string\",\"pattern\":\"^(a|aa)+$\"}}}}");
    items = json_array ();
    for (int i = 0; i < 1500; i++)
        json_array_append_new (items, json_string ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    args = json_pack ("{s:o}", "l", items);
    assert_int_equal (sb_schema_check (schema, args, &error), -1);
    assert_non_null (strstr (error, "too complex to check"));
    free (error);
    json_array_clear (items);
    for (int i = 0; i < 100; i++)
        json_array_append_new (items, json_string ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_int_equal (sb_schema_check (schema, args, &error), 0);
    json_decref (args);
    json_decref (schema);

    //  Nested anyOf that would branch 2^30 ways is stopped by the work limit.
    char branchy [8192] = "{\"type\":\"object\",\"$defs\":{\"d0\":{\"type\":\"string\"}";
    for (int i = 1; i <= 30; i++) {
        size_t used = strlen (branchy);
        snprintf (branchy + used, sizeof branchy - used, ",\"d%d\":{\"anyOf\":[{\"$ref\":"
                  "\"#/$defs/d%d\"},{\"$ref\":\"#/$defs/d%d\"}]}", i, i - 1, i - 1);
    }
    s_cat (branchy, sizeof branchy, "},\"properties\":{\"x\":{\"$ref\":\"#/$defs/d30\"}}}");
    s_expect_text (branchy, "{\"x\":\"ok\"}", NULL);
    s_expect_text (branchy, "{\"x\":1}", "too complex to check");

    //  Too many subschemas, too many patterns.
    json_t *wide = json_pack ("{s:s, s:o}", "type", "object", "properties", json_object ());
    for (int i = 0; i < SB_MAX_SCHEMA_NODES; i++) {
        char name [16];
        snprintf (name, sizeof name, "p%d", i);
        json_object_set_new (json_object_get (wide, "properties"), name,
                             json_pack ("{s:s}", "pattern", "^a"));
    }
    char *why = NULL;
    assert_int_equal (sb_schema_validate (wide, "w", &why), -1);
    assert_non_null (strstr (why, "one pattern too many"));
    free (why);
    json_decref (wide);
    wide = json_pack ("{s:s, s:o}", "type", "object", "properties", json_object ());
    for (int i = 0; i < SB_MAX_SCHEMA_NODES; i++) {
        char name [16];
        snprintf (name, sizeof name, "p%d", i);
        json_object_set_new (json_object_get (wide, "properties"), name, json_object ());
    }
    assert_int_equal (sb_schema_validate (wide, "w", &why), -1);
    assert_non_null (strstr (why, "larger than 2000 subschemas"));
    free (why);
    json_decref (wide);
    //  A pattern longer than SB_MAX_PATTERN_LENGTH is refused.
    char long_pattern [1200];
    memset (long_pattern, 'a', sizeof long_pattern - 1);
    long_pattern [sizeof long_pattern - 1] = 0;
    schema = json_pack ("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "p",
                        "pattern", long_pattern);
    assert_int_equal (sb_schema_validate (schema, "w", &why), -1);
    assert_non_null (strstr (why, "is longer than 1000 bytes"));
    free (why);
    json_decref (schema);

    //  All of it, under sanitizers, well inside a second.
    double elapsed = s_now () - start;
    if (elapsed > 5.0)
        fail_msg ("hostile cases took %.2f s", elapsed);
}

//  A schema {"type":"object","properties":{k0:{…{k2:{"type":"string"}}}}}
//  nesting the three names, and a value with a number at the bottom.
static void
s_nest (const char *const names [3], json_t **schema, json_t **value)
{
    *schema = json_pack ("{s:s}", "type", "string");
    *value = json_integer (1);
    for (int i = 2; i >= 0; i--) {
        *schema = json_pack ("{s:s, s:{s:o}}", "type", "object", "properties", names [i], *schema);
        *value = json_pack ("{s:o}", names [i], *value);
    }
    assert_non_null (*schema);
    assert_non_null (*value);
}

//  Checks `value` against `schema` both ways, expecting exactly `message`.
static void
s_expect_exactly (const json_t *schema, const json_t *value, const char *message)
{
    char *text = json_dumps (value, JSON_COMPACT);
    assert_non_null (text);
    s_expect (schema, text, message);
    free (text);
    char *error = NULL;
    assert_int_equal (sb_schema_check (schema, value, &error), -1);
    assert_string_equal (error, message);
    free (error);
}

static void
test_paths (void **state)
{
    (void) state;
    //  The path names the field the rule broke on, however it got there:
    //  a sibling checked before leaves nothing behind.
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"a\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}},"
                       "\"b\":{\"type\":\"object\",\"properties\":{\"y\":{\"type\":\"string\"}}},"
                       "\"list\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":"
                       "  {\"x y\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}}}},"
                       "\"o\":{\"type\":\"object\",\"properties\":{\"i\":{\"type\":\"object\","
                       "  \"additionalProperties\":false}},\"dependentRequired\":{\"a\":[\"b\"]},"
                       "  \"propertyNames\":{\"maxLength\":3}},"
                       "\"c\":{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"p\":{\"type\":"
                       "  \"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}},"
                       "  {\"type\":\"object\",\"required\":[\"r\"]}]}}}";
    s_expect_text (text, "{\"a\":{\"x\":1},\"b\":{\"y\":\"s\"},\"list\":[{\"x y\":[1,2]}]}", NULL);
    s_expect_text (text, "{\"a\":{\"x\":1},\"b\":{\"y\":2}}", "Argument 'b.y' must be a string.");
    s_expect_text (text, "{\"list\":[{\"x y\":[1]},{\"x y\":[1,\"2\"]}]}",
                   "Argument 'list[1][\"x y\"][1]' must be an integer.");
    s_expect_text (text, "{\"o\":{\"i\":{\"zzz\":1}}}",
                   "Argument 'o.i.zzz' is not allowed: 'o.i' has no such field.");
    s_expect_text (text, "{\"o\":{\"a\":1}}", "Argument 'o.b' is required when 'o.a' is given.");
    s_expect_text (text, "{\"o\":{\"long\":1}}",
                   "Argument 'o.long' must be at most 3 characters long.");
    //  Of the branches, the error deepest in the value.
    s_expect_text (text, "{\"c\":{\"p\":{\"q\":1}}}", "Argument 'c.p.q' must be a string.");
    s_expect_text (text, "{\"c\":{\"p\":{}},\"a\":{\"x\":true}}", "Argument 'a.x' must be an integer.");

    //  A path longer than SB_MAX_SCHEMA_PATH ends in "…" …
    char a [101], b [101], c [101];
    memset (a, 'a', 100), memset (b, 'b', 100), memset (c, 'c', 100);
    a [100] = b [100] = c [100] = 0;
    json_t *schema, *value;
    s_nest ((const char *const []) { a, b, c }, &schema, &value);
    char message [600];
    snprintf (message, sizeof message, "Argument '%s.%s.%.50s…' must be a string.", a, b, c);
    s_expect_exactly (schema, value, message);
    json_decref (schema);
    json_decref (value);
    //  … never cutting a character in half (é is two bytes).
    char a2 [121], b2 [121], e [41] = "";
    memset (a2, 'a', 120), memset (b2, 'b', 120);
    a2 [120] = b2 [120] = 0;
    for (int i = 0; i < 20; i++)
        s_cat (e, sizeof e, "\xc3\xa9");
    s_nest ((const char *const []) { a2, b2, e }, &schema, &value);
    snprintf (message, sizeof message,
              "Argument '%s.%s[\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9…]' must be a string.", a2, b2);
    s_expect_exactly (schema, value, message);
    json_decref (schema);
    json_decref (value);
}

static void
test_lookups (void **state)
{
    (void) state;
    //  A keyword is a member of exactly that name: "maxLength\0x" is not
    //  maxLength, and a property "a\0b" is not "a".
    json_t *schema = s_json ("{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\"}},"
                             "\"additionalProperties\":false}");
    json_t *property = json_object_get (json_object_get (schema, "properties"), "s");
    assert_int_equal (json_object_setn_new (property, "maxLength\0x", 11, json_integer (1)), 0);
    assert_int_equal (json_object_setn_new (json_object_get (schema, "properties"), "a\0b", 3,
                                            json_object ()), 0);
    s_expect (schema, "{\"s\":\"abcdef\"}", NULL);
    s_expect (schema, "{\"a\":1}", "Argument 'a' is not allowed: this tool takes no such argument.");
    json_decref (schema);

    //  "type" as the check has always read it, in a schema that never
    //  passed sb_schema_validate: a member that is not a string lets every
    //  value through, an unknown name none, an empty array or a number
    //  checks nothing.
    schema = s_json ("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",5]},"
                     "\"b\":{\"type\":\"foo\"},\"c\":{\"type\":[]},\"d\":{\"type\":7},"
                     "\"i\":{\"type\":\"integer\"}}}");
    s_expect (schema, "{\"a\":1,\"c\":1,\"d\":[]}", NULL);
    s_expect (schema, "{\"b\":1}", "Argument 'b' must be a foo.");
    //  A real with no fraction is an integer while a double counts in ones.
    s_expect (schema, "{\"i\":9007199254740991.0}", NULL);
    s_expect (schema, "{\"i\":9007199254740992.0}", "Argument 'i' must be an integer.");
    json_decref (schema);

    //  One subschema in two places (a shared jansson value) is one node.
    json_t *shared = s_json ("{\"type\":\"integer\",\"minimum\":2}");
    schema = json_pack ("{s:s, s:{s:O, s:O}}", "type", "object", "properties", "a", shared,
                        "b", shared);
    json_decref (shared);
    s_expect (schema, "{\"a\":2,\"b\":3}", NULL);
    s_expect (schema, "{\"a\":2,\"b\":1}", "Argument 'b' must be at least 2.");
    json_decref (schema);

    //  As many subschemas as an inputSchema may have, each found.
    schema = json_pack ("{s:s, s:o}", "type", "object", "properties", json_object ());
    for (int i = 0; i < SB_MAX_SCHEMA_NODES - 1; i++) {
        char name [16];
        snprintf (name, sizeof name, "p%d", i);
        json_object_set_new (json_object_get (schema, "properties"), name,
                             json_pack ("{s:s}", "type", i % 2 ? "integer" : "string"));
    }
    s_expect (schema, "{\"p0\":\"x\",\"p1\":1,\"p1997\":2,\"p1998\":\"y\"}", NULL);
    s_expect (schema, "{\"p0\":\"x\",\"p1997\":\"2\"}", "Argument 'p1997' must be an integer.");
    json_decref (schema);
}

static void
test_matches (void **state)
{
    (void) state;
    //  Many matches in one check, each against its own pattern; the limits
    //  hold for a later match as for the first.
    char text [2048] = "{\"type\":\"object\",\"properties\":{";
    for (int i = 0; i < 10; i++) {
        size_t used = strlen (text);
        snprintf (text + used, sizeof text - used, "\"p%d\":{\"type\":\"string\","
                  "\"pattern\":\"^x%d$\"},", i, i);
    }
    s_cat (text, sizeof text, "\"evil\":{\"type\":\"string\",\"pattern\":\"^(a+)+$\"}},"
                              "\"patternProperties\":{\"^n[0-9]$\":{\"type\":\"integer\"}}}");
    char value [1024] = "{";
    for (int i = 0; i < 10; i++) {
        size_t used = strlen (value);
        snprintf (value + used, sizeof value - used, "\"p%d\":\"x%d\",\"n%d\":%d,", i, i, i, i);
    }
    char good [1100], bad [1100], evil [1100];
    snprintf (good, sizeof good, "%s\"evil\":\"aaaa\"}", value);
    snprintf (bad, sizeof bad, "%s\"p7\":\"x8\"}", value);
    snprintf (evil, sizeof evil, "%s\"evil\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"}",
              value);
    s_expect_text (text, good, NULL);
    //  p7 appears twice in the text; the last one counts.
    s_expect_text (text, bad, "Argument 'p7' must match the pattern ^x7$.");
    s_expect_text (text, evil, "Argument 'evil' is too long or complex to check against the "
                               "pattern ^(a+)+$; send a shorter, simpler value.");
}

static void
test_compiled (void **state)
{
    (void) state;
    json_t *schema = s_json ("{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\","
                             "\"pattern\":\"^[a-z]+$\"}},\"patternProperties\":{\"^n_\":"
                             "{\"type\":\"number\"}}}");
    char *why = NULL;
    sb_schema_t *compiled = sb_schema_new (schema, "t", &why);
    assert_non_null (compiled);
    assert_null (why);
    json_decref (schema);           //  the checker holds its own reference
    json_t *good = s_json ("{\"code\":\"abc\",\"n_1\":2}");
    json_t *bad = s_json ("{\"code\":\"abc\",\"n_1\":\"2\"}");
    char *error = NULL;
    for (int i = 0; i < 100; i++) {
        assert_int_equal (sb_schema_check_compiled (compiled, good, &error), 0);
        assert_null (error);
    }
    assert_int_equal (sb_schema_check_compiled (compiled, bad, &error), -1);
    assert_string_equal (error, "Argument 'n_1' must be a number.");
    free (error);
    json_decref (good);
    json_decref (bad);
    sb_schema_destroy (&compiled);
    sb_schema_destroy (&compiled);  //  idempotent
    sb_schema_destroy (NULL);
}

//  sb_schema_check_at: the failing value's JSON Pointer, the keyword and
//  the rule on its own, for any value (here a connector-like document).
static void
s_expect_at (const sb_schema_t *checker, const char *value_text, const char *pointer,
             const char *keyword, const char *rule)
{
    json_t *value = s_json (value_text);
    sb_schema_failure_t failure;
    int rc = sb_schema_check_at (checker, value, &failure);
    json_decref (value);
    if (!pointer) {
        if (rc)
            fail_msg ("%s: unexpected failure %s: %s (%s)", value_text, failure.pointer,
                      failure.rule, failure.keyword ? failure.keyword : "-");
        assert_null (failure.pointer);
        assert_null (failure.rule);
        return;
    }
    assert_int_equal (rc, -1);
    assert_non_null (failure.pointer);
    assert_non_null (failure.rule);
    if (strcmp (failure.pointer, pointer) || strcmp (failure.rule, rule)
    ||  (keyword ? !failure.keyword || strcmp (failure.keyword, keyword) : failure.keyword != NULL))
        fail_msg ("%s: got %s / %s / %s, want %s / %s / %s", value_text, failure.pointer,
                  failure.keyword ? failure.keyword : "-", failure.rule, pointer,
                  keyword ? keyword : "-", rule);
    sb_schema_failure_clear (&failure);
    sb_schema_failure_clear (&failure);
}

static void
test_check_at (void **state)
{
    json_t *schema = s_json (
        "{\"type\":\"object\",\"required\":[\"tools\"],\"additionalProperties\":false,"
        " \"properties\":{\"tools\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/tool\"}},"
        "                \"a/b~c\":{\"type\":\"integer\",\"maximum\":3}},"
        " \"$defs\":{\"tool\":{\"type\":\"object\",\"required\":[\"name\"],"
        "   \"additionalProperties\":false,"
        "   \"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"},"
        "                   \"method\":{\"enum\":[\"GET\",\"POST\"]},"
        "                   \"text\":{\"type\":\"string\"},\"blob\":{\"type\":\"string\"},"
        "                   \"result\":false},"
        "   \"anyOf\":[{\"required\":[\"text\"]},{\"required\":[\"blob\"]}]}}}");
    char *why = NULL;
    sb_schema_t *checker = sb_schema_new (schema, "test", &why);
    json_decref (schema);
    if (!checker)
        fail_msg ("schema refused: %s", why);

    s_expect_at (checker, "{\"tools\":[{\"name\":\"a\",\"text\":\"t\"}]}", NULL, NULL, NULL);
    s_expect_at (checker, "[]", "", "type", "must be an object");
    s_expect_at (checker, "{}", "/tools", "required", "is required");
    s_expect_at (checker, "{\"tools\":[{\"name\":\"a\",\"text\":\"t\"},"
                          "{\"name\":\"b\",\"text\":\"t\",\"method\":\"FETCH\"}]}",
                 "/tools/1/method", "enum", "must be one of [\"GET\",\"POST\"]");
    s_expect_at (checker, "{\"tools\":[{\"name\":\"A\",\"text\":\"t\"}]}",
                 "/tools/0/name", "pattern", "must match the pattern ^[a-z]+$");
    s_expect_at (checker, "{\"tools\":[{\"name\":\"a\",\"text\":\"t\",\"nmae\":1}]}",
                 "/tools/0/nmae", "additionalProperties", "is not an allowed member here");
    s_expect_at (checker, "{\"tools\":[{\"name\":\"a\",\"text\":\"t\",\"result\":{}}]}",
                 "/tools/0/result", "false", "is not allowed");
    //  Every anyOf branch wants a member: one rule naming them all.
    s_expect_at (checker, "{\"tools\":[{\"name\":\"a\"}]}",
                 "/tools/0", "required", "must have \"text\" or \"blob\"");
    //  '/' and '~' in a member name are escaped as RFC 6901 says.
    s_expect_at (checker, "{\"tools\":[],\"a/b~c\":4}", "/a~1b~0c", "maximum",
                 "must be at most 3");
    //  The call-time sentence is unchanged by it.
    json_t *args = s_json ("{\"tools\":[{\"name\":\"a\",\"text\":\"t\",\"nmae\":1}]}");
    char *error = NULL;
    assert_int_equal (sb_schema_check_compiled (checker, args, &error), -1);
    assert_string_equal (error, "Argument 'tools[0].nmae' is not allowed: 'tools[0]' has no "
                                "such field.");
    free (error);
    json_decref (args);
    sb_schema_destroy (&checker);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_checks_from_data),
        cmocka_unit_test (test_loads_from_data),
        cmocka_unit_test (test_not_an_object),
        cmocka_unit_test (test_any_value),
        cmocka_unit_test (test_composed_schema),
        cmocka_unit_test (test_anchors),
        cmocka_unit_test (test_header_annotations),
        cmocka_unit_test (test_hostile),
        cmocka_unit_test (test_compiled),
        cmocka_unit_test (test_paths),
        cmocka_unit_test (test_lookups),
        cmocka_unit_test (test_matches),
        cmocka_unit_test (test_check_at),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
