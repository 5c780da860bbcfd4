/*  tests/16_schema_unit.c — unit tests of schema/sb_schema (JSON Schema
    2020-12 for tool input schemas). Each keyword accepts a good value and
    refuses a bad one with a sentence that names the field by its path and
    the rule; every case runs through both sb_schema_check (patterns
    compiled per call) and sb_schema_new + sb_schema_check_compiled, which
    must agree word for word. Load-time validation refuses malformed
    schemas with errors that name the place. Hostile schemas and values
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

//  One schema that uses the classic rules.
static const char *s_schema_text =
    "{\"type\":\"object\","
    " \"properties\":{"
    "   \"id\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":4},"
    "   \"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},"
    "   \"ratio\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1},"
    "   \"status\":{\"type\":\"string\",\"enum\":[\"open\",\"closed\"]},"
    "   \"done\":{\"type\":\"boolean\"},"
    "   \"tags\":{\"type\":\"array\"},"
    "   \"extra\":{\"type\":\"object\"},"
    "   \"nothing\":{\"type\":\"null\"}},"
    " \"required\":[\"id\"],"
    " \"additionalProperties\":false}";

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

//  Checks `value_text` against `schema` both ways: accepted when `fragment`
//  is NULL, else refused with an error containing `fragment`; the compiled
//  checker must say exactly the same.
static void
s_expect (const json_t *schema, const char *value_text, const char *fragment)
{
    json_t *value = s_json (value_text);
    char *error = NULL;
    int rc = sb_schema_check (schema, value, &error);
    if (!fragment) {
        if (rc)
            fail_msg ("%s refused: %s", value_text, error);
        assert_null (error);
    }
    else {
        if (rc != -1 || !error)
            fail_msg ("%s accepted, expected \"%s\"", value_text, fragment);
        if (!strstr (error, fragment))
            fail_msg ("error \"%s\" lacks \"%s\"", error, fragment);
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

static void
test_accepts_good_values (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{\"id\":\"ab\"}", NULL);
    s_expect (schema, "{\"id\":\"abcd\",\"limit\":1,\"ratio\":0.5,\"status\":\"open\","
                      " \"done\":true,\"tags\":[],\"extra\":{},\"nothing\":null}", NULL);
    s_expect (schema, "{\"id\":\"ab\",\"limit\":100}", NULL);
    s_expect (schema, "{\"id\":\"ab\",\"limit\":7.0}", NULL);     //  integral real
    s_expect (schema, "{\"id\":\"ab\",\"ratio\":1e-9}", NULL);
    s_expect (schema, "{\"id\":\"\\u00e9\\u00e9\\u00e9\\u00e9\"}", NULL);   //  4 code points
    //  Annotations and unknown keywords are ignored.
    s_expect_text ("{\"type\":\"object\",\"title\":\"T\",\"description\":\"d\",\"$schema\":"
                   "\"https://json-schema.org/draft/2020-12/schema\",\"x-vendor\":{\"a\":1},"
                   "\"properties\":{\"q\":{\"type\":\"string\",\"default\":\"x\","
                   "\"examples\":[\"y\"],\"format\":\"color\",\"readOnly\":true}}}",
                   "{\"q\":\"anything\"}", NULL);
    json_decref (schema);
}

static void
test_type (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "[]", "Arguments must be a JSON object.");
    s_expect (schema, "\"id\"", "Arguments must be a JSON object.");
    char *error = NULL;
    assert_int_equal (sb_schema_check (schema, NULL, &error), -1);
    assert_string_equal (error, "Arguments must be a JSON object.");
    free (error);

    s_expect (schema, "{\"id\":7}", "Argument 'id' must be a string.");
    s_expect (schema, "{\"id\":\"ab\",\"limit\":\"5\"}", "Argument 'limit' must be an integer.");
    s_expect (schema, "{\"id\":\"ab\",\"limit\":2.5}", "Argument 'limit' must be an integer.");
    s_expect (schema, "{\"id\":\"ab\",\"ratio\":true}", "Argument 'ratio' must be a number.");
    s_expect (schema, "{\"id\":\"ab\",\"done\":1}", "Argument 'done' must be a boolean.");
    s_expect (schema, "{\"id\":\"ab\",\"tags\":{}}", "Argument 'tags' must be an array.");
    s_expect (schema, "{\"id\":\"ab\",\"extra\":[]}", "Argument 'extra' must be an object.");
    s_expect (schema, "{\"id\":\"ab\",\"nothing\":0}", "Argument 'nothing' must be null.");
    json_decref (schema);

    //  An array of types; integer is a number, a number is not an integer.
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"v\":{\"type\":[\"string\",\"null\"]},"
                       "\"n\":{\"type\":\"number\"},\"i\":{\"type\":[\"integer\",\"boolean\"]}}}";
    s_expect_text (text, "{\"v\":\"x\",\"n\":3,\"i\":3}", NULL);
    s_expect_text (text, "{\"v\":null,\"n\":3.5,\"i\":true}", NULL);
    s_expect_text (text, "{\"i\":-4.0}", NULL);
    s_expect_text (text, "{\"v\":1}", "Argument 'v' must be a string or null.");
    s_expect_text (text, "{\"i\":1.5}", "Argument 'i' must be an integer or a boolean.");
    s_expect_text (text, "{\"n\":\"3\"}", "Argument 'n' must be a number.");
    s_expect_text (text, "{\"i\":1e300}", "Argument 'i' must be an integer or a boolean.");
}

static void
test_required (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{}", "Argument 'id' is required.");
    s_expect (schema, "{\"limit\":5}", "Argument 'id' is required.");
    json_decref (schema);
    const char *text = "{\"type\":\"object\",\"properties\":{\"contact\":{\"type\":\"object\","
                       "\"properties\":{\"email\":{\"type\":\"string\"}},"
                       "\"required\":[\"email\"]}},"
                       "\"required\":[\"contact\"]}";
    s_expect_text (text, "{\"contact\":{\"email\":\"a@b.c\"}}", NULL);
    s_expect_text (text, "{\"contact\":{}}", "Argument 'contact.email' is required.");
    s_expect_text (text, "{}", "Argument 'contact' is required.");
    //  A present member that is null counts as present.
    s_expect_text ("{\"type\":\"object\",\"required\":[\"a\"],\"properties\":{\"a\":{}}}",
                   "{\"a\":null}", NULL);
}

static void
test_enum_const (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{\"id\":\"ab\",\"status\":\"closed\"}", NULL);
    s_expect (schema, "{\"id\":\"ab\",\"status\":\"pending\"}",
              "Argument 'status' must be one of [\"open\",\"closed\"].");
    json_decref (schema);
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"n\":{\"enum\":[1,\"two\",null,{\"a\":[1]}]},"
                       "\"c\":{\"const\":\"fixed\"},\"z\":{\"const\":0}}}";
    s_expect_text (text, "{\"n\":1.0}", NULL);            //  1.0 is 1
    s_expect_text (text, "{\"n\":null}", NULL);
    s_expect_text (text, "{\"n\":{\"a\":[1]}}", NULL);
    s_expect_text (text, "{\"n\":{\"a\":[2]}}",
                   "Argument 'n' must be one of [1,\"two\",null,{\"a\":[1]}].");
    s_expect_text (text, "{\"n\":true}", "Argument 'n' must be one of");
    s_expect_text (text, "{\"c\":\"fixed\",\"z\":0.0}", NULL);
    s_expect_text (text, "{\"c\":\"Fixed\"}", "Argument 'c' must be exactly \"fixed\".");
    s_expect_text (text, "{\"z\":false}", "Argument 'z' must be exactly 0.");
}

static void
test_bounds (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{\"id\":\"ab\",\"limit\":0}", "Argument 'limit' must be at least 1.");
    s_expect (schema, "{\"id\":\"ab\",\"limit\":101}", "Argument 'limit' must be at most 100.");
    s_expect (schema, "{\"id\":\"ab\",\"ratio\":0}", "Argument 'ratio' must be greater than 0.");
    s_expect (schema, "{\"id\":\"ab\",\"ratio\":1}", "Argument 'ratio' must be less than 1.");
    json_decref (schema);
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"p\":{\"type\":\"number\",\"minimum\":0.5,\"maximum\":1000000},"
                       "\"m\":{\"type\":\"integer\",\"multipleOf\":5},"
                       "\"c\":{\"type\":\"number\",\"multipleOf\":0.01}}}";
    s_expect_text (text, "{\"p\":0.5,\"m\":-15,\"c\":19.99}", NULL);
    s_expect_text (text, "{\"p\":1000000,\"m\":0,\"c\":0.07}", NULL);
    s_expect_text (text, "{\"p\":0.49}", "Argument 'p' must be at least 0.5.");
    s_expect_text (text, "{\"p\":1000000.5}", "Argument 'p' must be at most 1000000.");
    s_expect_text (text, "{\"m\":12}", "Argument 'm' must be a multiple of 5.");
    s_expect_text (text, "{\"c\":0.001}", "Argument 'c' must be a multiple of 0.01.");
}

static void
test_lengths (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{\"id\":\"a\"}", "Argument 'id' must be at least 2 characters long.");
    s_expect (schema, "{\"id\":\"abcde\"}", "Argument 'id' must be at most 4 characters long.");
    //  Lengths count code points, not bytes: é is 2 bytes, 😀 is 4.
    s_expect (schema, "{\"id\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
              "Argument 'id' must be at most 4 characters long.");
    s_expect (schema, "{\"id\":\"\\ud83d\\ude00\\ud83d\\ude00\"}", NULL);
    s_expect (schema, "{\"id\":\"\\ud83d\\ude00\"}",
              "Argument 'id' must be at least 2 characters long.");
    json_decref (schema);
}

static void
test_additional_properties (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{\"id\":\"ab\",\"colour\":\"red\"}",
              "Argument 'colour' is not allowed: this tool takes no such argument.");
    json_decref (schema);

    //  Without additionalProperties false, unknown members pass unchecked.
    schema = s_json ("{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}}}");
    s_expect (schema, "{\"colour\":7}", NULL);
    s_expect (schema, "{\"id\":7}", "Argument 'id' must be a string.");
    json_decref (schema);
    schema = s_json ("{\"type\":\"object\"}");
    s_expect (schema, "{\"anything\":[1,2]}", NULL);
    json_decref (schema);

    //  additionalProperties as a schema; patternProperties count as known.
    const char *text = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},"
                       "\"patternProperties\":{\"^x-\":{\"type\":\"integer\"}},"
                       "\"additionalProperties\":{\"type\":\"boolean\"}}";
    s_expect_text (text, "{\"name\":\"n\",\"x-a\":1,\"flag\":true}", NULL);
    s_expect_text (text, "{\"x-a\":\"1\"}", "Argument 'x-a' must be an integer.");
    s_expect_text (text, "{\"flag\":\"yes\"}", "Argument 'flag' must be a boolean.");
    //  Nested: the message names the object that has no such field.
    text = "{\"type\":\"object\",\"properties\":{\"contact\":{\"type\":\"object\","
           "\"properties\":{\"email\":{}},\"additionalProperties\":false}}}";
    s_expect_text (text, "{\"contact\":{\"email\":1}}", NULL);
    s_expect_text (text, "{\"contact\":{\"fax\":1}}",
                   "Argument 'contact.fax' is not allowed: 'contact' has no such field.");
    //  A property whose schema is false may not be given.
    s_expect_text ("{\"type\":\"object\",\"properties\":{\"old\":false}}", "{\"old\":1}",
                   "Argument 'old' is not allowed.");
}

static void
test_objects (void **state)
{
    (void) state;
    const char *text = "{\"type\":\"object\",\"properties\":{\"meta\":{\"type\":\"object\","
                       "\"minProperties\":1,\"maxProperties\":2,"
                       "\"propertyNames\":{\"pattern\":\"^[a-z]+$\"},"
                       "\"dependentRequired\":{\"card\":[\"expiry\"]}}},"
                       "\"maxProperties\":1}";
    s_expect_text (text, "{\"meta\":{\"a\":1}}", NULL);
    s_expect_text (text, "{\"meta\":{}}", "Argument 'meta' must have at least 1 field.");
    s_expect_text (text, "{\"meta\":{\"a\":1,\"b\":2,\"c\":3}}",
                   "Argument 'meta' must have at most 2 fields.");
    s_expect_text (text, "{\"meta\":{\"Bad\":1}}",
                   "Argument 'meta.Bad' must match the pattern ^[a-z]+$.");
    s_expect_text (text, "{\"meta\":{\"card\":1}}",
                   "Argument 'meta.expiry' is required when 'meta.card' is given.");
    s_expect_text (text, "{\"meta\":{\"card\":1,\"expiry\":2}}", NULL);
    s_expect_text (text, "{\"meta\":{\"a\":1},\"b\":2}",
                   "The arguments must have at most 1 field.");
    //  Names that are not plain words are quoted in the path.
    s_expect_text ("{\"type\":\"object\",\"properties\":{\"a b\":{\"type\":\"object\","
                   "\"properties\":{\"c.d\":{\"type\":\"string\"}}}}}",
                   "{\"a b\":{\"c.d\":1}}", "Argument '[\"a b\"][\"c.d\"]' must be a string.");
    //  dependentSchemas apply to the object itself.
    s_expect_text ("{\"type\":\"object\",\"dependentSchemas\":{\"card\":{\"required\":[\"cvv\"]}}}",
                   "{\"card\":1}", "Argument 'cvv' is required.");
}

static void
test_pattern (void **state)
{
    (void) state;
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\"},"
                       "\"any\":{\"type\":\"string\",\"pattern\":\"b+\"},"
                       "\"digits\":{\"type\":\"string\",\"pattern\":\"^\\\\d+$\"},"
                       "\"word\":{\"type\":\"string\",\"pattern\":\"^\\\\p{L}+$\"},"
                       "\"esc\":{\"type\":\"string\",\"pattern\":\"^\\\\u00e9$\"}}}";
    s_expect_text (text, "{\"code\":\"ABC\",\"any\":\"abc\",\"digits\":\"042\"}", NULL);
    s_expect_text (text, "{\"code\":\"ABCD\"}",
                   "Argument 'code' must match the pattern ^[A-Z]{3}$.");
    s_expect_text (text, "{\"code\":\"ABC\\n\"}", "must match the pattern");  //  $ is the end
    s_expect_text (text, "{\"any\":\"ac\"}", "Argument 'any' must match the pattern b+.");
    //  \d is ASCII digits only, as in ECMA-262.
    s_expect_text (text, "{\"digits\":\"\\u0663\"}", "Argument 'digits' must match");
    //  UTF-8 aware: \p{L} matches accented letters; \u escapes work.
    s_expect_text (text, "{\"word\":\"d\\u00e9j\\u00e0\",\"esc\":\"\\u00e9\"}", NULL);
    s_expect_text (text, "{\"word\":\"a1\"}", "Argument 'word' must match");
    //  The pattern only applies to strings.
    s_expect_text (text, "{\"code\":5}", "Argument 'code' must be a string.");
    s_expect_text ("{\"type\":\"object\",\"properties\":{\"x\":{\"pattern\":\"^a$\"}}}",
                   "{\"x\":5}", NULL);
}

static void
test_formats (void **state)
{
    (void) state;
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
                       "\"date\":{\"type\":\"string\",\"format\":\"date\"},"
                       "\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
                       "\"uri\":{\"type\":\"string\",\"format\":\"uri\"}}}";
    static const char *const good [] = {
        "{\"email\":\"ann@example.com\"}", "{\"email\":\"first.last+tag@sub.example.co.uk\"}",
        "{\"email\":\"\\\"odd person\\\"@example.com\"}", "{\"email\":\"a@[192.168.0.1]\"}",
        "{\"email\":\"a@[IPv6:::1]\"}", "{\"email\":\"jos\\u00e9@example.com\"}",
        "{\"date\":\"2024-02-29\"}", "{\"date\":\"2000-02-29\"}", "{\"date\":\"1999-12-31\"}",
        "{\"when\":\"2025-01-31T09:30:00Z\"}", "{\"when\":\"2025-01-31t09:30:00.123+05:30\"}",
        "{\"when\":\"1998-12-31T23:59:60Z\"}", "{\"when\":\"1998-12-31T15:59:60-08:00\"}",
        "{\"uri\":\"https://example.com/a/b?c=d#e\"}", "{\"uri\":\"mailto:ann@example.com\"}",
        "{\"uri\":\"urn:isbn:0451450523\"}", "{\"uri\":\"http://[::1]:8080/x%20y\"}",
        NULL
    };
    for (size_t i = 0; good [i]; i++)
        s_expect_text (text, good [i], NULL);
    static const char *const bad [][2] = {
        { "{\"email\":\"ann\"}", "Argument 'email' must be an email address" },
        { "{\"email\":\"ann@\"}", "must be an email address" },
        { "{\"email\":\"@example.com\"}", "must be an email address" },
        { "{\"email\":\"a..b@example.com\"}", "must be an email address" },
        { "{\"email\":\"ann@exa mple.com\"}", "must be an email address" },
        { "{\"email\":\"ann@-example.com\"}", "must be an email address" },
        { "{\"date\":\"2023-02-29\"}", "Argument 'date' must be a date in the form YYYY-MM-DD" },
        { "{\"date\":\"1900-02-29\"}", "must be a date" },
        { "{\"date\":\"2024-13-01\"}", "must be a date" },
        { "{\"date\":\"2024-04-31\"}", "must be a date" },
        { "{\"date\":\"24-01-01\"}", "must be a date" },
        { "{\"date\":\"2024-01-01T00:00:00Z\"}", "must be a date" },
        { "{\"when\":\"2025-01-31 09:30:00Z\"}",
          "Argument 'when' must be a date and time in RFC 3339 form" },
        { "{\"when\":\"2025-01-31T09:30:00\"}", "must be a date and time" },      //  no offset
        { "{\"when\":\"2025-01-31T24:00:00Z\"}", "must be a date and time" },
        { "{\"when\":\"2025-01-31T09:30:00.Z\"}", "must be a date and time" },
        { "{\"when\":\"2025-01-31T12:00:60Z\"}", "must be a date and time" },     //  not 23:59 UTC
        { "{\"when\":\"2025-01-31T09:30:00+5:30\"}", "must be a date and time" },
        { "{\"uri\":\"example.com/page\"}", "Argument 'uri' must be an absolute URI" },
        { "{\"uri\":\"https://exa mple.com\"}", "must be an absolute URI" },
        { "{\"uri\":\"https://example.com/%zz\"}", "must be an absolute URI" },
        { "{\"uri\":\"1http://x\"}", "must be an absolute URI" },
        { "{\"uri\":\"https://example.com/\\u00e9\"}", "must be an absolute URI" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        s_expect_text (text, bad [i][0], bad [i][1]);
}

static void
test_arrays (void **state)
{
    (void) state;
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"
                       "\"minItems\":1,\"maxItems\":3,\"uniqueItems\":true},"
                       "\"point\":{\"type\":\"array\",\"prefixItems\":[{\"type\":\"number\"},"
                       "{\"type\":\"number\"}],\"items\":false},"
                       "\"row\":{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"}],"
                       "\"items\":{\"type\":\"integer\"}},"
                       "\"has\":{\"type\":\"array\",\"contains\":{\"const\":\"admin\"}}}}";
    s_expect_text (text, "{\"tags\":[\"a\",\"b\"],\"point\":[1,2.5],\"row\":[\"r\",1,2],"
                         "\"has\":[\"x\",\"admin\"]}", NULL);
    s_expect_text (text, "{\"point\":[1],\"row\":[\"r\"]}", NULL);
    s_expect_text (text, "{\"tags\":[]}", "Argument 'tags' must have at least 1 item.");
    s_expect_text (text, "{\"tags\":[\"a\",\"b\",\"c\",\"d\"]}",
                   "Argument 'tags' must have at most 3 items.");
    s_expect_text (text, "{\"tags\":[\"a\",\"b\",\"a\"]}",
                   "Argument 'tags' must not hold the same item twice (items 0 and 2 are equal).");
    s_expect_text (text, "{\"tags\":[\"a\",\"b\",7]}", "Argument 'tags[2]' must be a string.");
    s_expect_text (text, "{\"point\":[1,\"2\"]}", "Argument 'point[1]' must be a number.");
    s_expect_text (text, "{\"point\":[1,2,3]}", "Argument 'point' must have at most 2 items.");
    s_expect_text (text, "{\"row\":[\"r\",1,\"x\"]}", "Argument 'row[2]' must be an integer.");
    s_expect_text (text, "{\"row\":[1]}", "Argument 'row[0]' must be a string.");
    s_expect_text (text, "{\"has\":[\"x\"]}",
                   "Argument 'has' must hold at least 1 item matching {\"const\":\"admin\"}.");
    //  uniqueItems compares numbers by value and objects by content.
    const char *unique = "{\"type\":\"object\",\"properties\":{\"u\":{\"uniqueItems\":true}}}";
    s_expect_text (unique, "{\"u\":[1,\"1\",true,[1],{\"a\":1}]}", NULL);
    s_expect_text (unique, "{\"u\":[1,1.0]}", "items 0 and 1 are equal");
    s_expect_text (unique, "{\"u\":[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]}",
                   "items 0 and 1 are equal");
    //  Paths through arrays of objects.
    s_expect_text ("{\"type\":\"object\",\"properties\":{\"lines\":{\"type\":\"array\","
                   "\"items\":{\"type\":\"object\",\"properties\":{\"qty\":{\"type\":\"integer\","
                   "\"minimum\":1}}}}}}", "{\"lines\":[{\"qty\":1},{\"qty\":0}]}",
                   "Argument 'lines[1].qty' must be at least 1.");
}

static void
test_combinators (void **state)
{
    (void) state;
    const char *text = "{\"type\":\"object\",\"properties\":{"
                       "\"all\":{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":10}]},"
                       "\"any\":{\"anyOf\":[{\"type\":\"string\",\"format\":\"email\"},"
                       "{\"type\":\"null\"}]},"
                       "\"one\":{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":5}]},"
                       "\"not\":{\"not\":{\"const\":\"root\"}},"
                       "\"nots\":{\"not\":{\"enum\":[1,2]}},"
                       "\"kind\":{\"type\":\"object\",\"if\":{\"properties\":{\"kind\":"
                       "{\"const\":\"phone\"}}},\"then\":{\"required\":[\"number\"]},"
                       "\"else\":{\"required\":[\"email\"]}}}}";
    s_expect_text (text, "{\"all\":12,\"any\":null,\"one\":3,\"not\":\"ann\",\"nots\":3}", NULL);
    s_expect_text (text, "{\"any\":\"ann@example.com\",\"one\":5.5}", NULL);
    s_expect_text (text, "{\"all\":12.5}", "Argument 'all' must be an integer.");
    s_expect_text (text, "{\"all\":9}", "Argument 'all' must be at least 10.");
    //  anyOf: the most useful branch error; all-type errors merge.
    s_expect_text (text, "{\"any\":\"ann\"}", "Argument 'any' must be an email address");
    s_expect_text (text, "{\"any\":5}", "Argument 'any' must be a string or null.");
    s_expect_text (text, "{\"one\":7}", "Argument 'one' fits more than one of the allowed "
                                        "forms (forms 1 and 2); it must fit exactly one.");
    s_expect_text (text, "{\"one\":2.5}", "Argument 'one' must be");
    s_expect_text (text, "{\"not\":\"root\"}", "Argument 'not' must not be \"root\".");
    s_expect_text (text, "{\"nots\":2}", "Argument 'nots' must not be any of [1,2].");
    s_expect_text (text, "{\"kind\":{\"kind\":\"phone\",\"number\":\"1\"}}", NULL);
    s_expect_text (text, "{\"kind\":{\"kind\":\"mail\",\"email\":\"e\"}}", NULL);
    s_expect_text (text, "{\"kind\":{\"kind\":\"phone\"}}", "Argument 'kind.number' is required.");
    s_expect_text (text, "{\"kind\":{\"kind\":\"mail\"}}", "Argument 'kind.email' is required.");
    //  An absent member passes "properties", so "if" holds and "then" applies.
    s_expect_text (text, "{\"kind\":{}}", "Argument 'kind.number' is required.");
    //  anyOf of objects: the error of the branch that got furthest.
    s_expect_text ("{\"type\":\"object\",\"properties\":{\"to\":{\"anyOf\":["
                   "{\"type\":\"object\",\"properties\":{\"email\":{\"format\":\"email\"}},"
                   "\"required\":[\"email\"]},{\"type\":\"string\"}]}}}",
                   "{\"to\":{\"email\":\"x\"}}", "Argument 'to.email' must be an email address");
}

static void
test_refs (void **state)
{
    (void) state;
    const char *text = "{\"type\":\"object\",\"$defs\":{\"email\":{\"type\":\"string\","
                       "\"format\":\"email\"},\"a/b\":{\"type\":\"integer\"}},"
                       "\"definitions\":{\"person\":{\"type\":\"object\",\"properties\":{"
                       "\"email\":{\"$ref\":\"#/$defs/email\"},"
                       "\"manager\":{\"$ref\":\"#/definitions/person\"}},"
                       "\"required\":[\"email\"]}},"
                       "\"properties\":{\"owner\":{\"$ref\":\"#/definitions/person\"},"
                       "\"n\":{\"$ref\":\"#/$defs/a~1b\"},\"m\":{\"$ref\":\"#/$defs/a%7E1b\"},"
                       "\"self\":{\"$ref\":\"#\"}}}";
    s_expect_text (text, "{\"owner\":{\"email\":\"a@b.co\",\"manager\":{\"email\":\"c@d.co\"}},"
                         "\"n\":1,\"m\":2,\"self\":{\"n\":3}}", NULL);
    s_expect_text (text, "{\"owner\":{\"email\":\"nope\"}}",
                   "Argument 'owner.email' must be an email address");
    s_expect_text (text, "{\"owner\":{\"email\":\"a@b.co\",\"manager\":{}}}",
                   "Argument 'owner.manager.email' is required.");
    s_expect_text (text, "{\"n\":\"1\"}", "Argument 'n' must be an integer.");
    s_expect_text (text, "{\"m\":\"1\"}", "Argument 'm' must be an integer.");
    s_expect_text (text, "{\"self\":{\"self\":{\"n\":\"x\"}}}",
                   "Argument 'self.self.n' must be an integer.");
    s_expect_text (text, "{\"self\":[]}", "Argument 'self' must be an object.");
    //  $ref beside other keywords: both apply (2020-12).
    s_expect_text ("{\"type\":\"object\",\"$defs\":{\"s\":{\"type\":\"string\"}},\"properties\":"
                   "{\"x\":{\"$ref\":\"#/$defs/s\",\"maxLength\":2}}}", "{\"x\":\"abc\"}",
                   "Argument 'x' must be at most 2 characters long.");
}

//  Load time: sb_schema_validate.
static void
s_expect_valid (const char *schema_text, const char *fragment)
{
    json_t *schema = schema_text ? s_json (schema_text) : NULL;
    char *why = NULL;
    int rc = sb_schema_validate (schema, "f.json: tool \"t\"", &why);
    if (!fragment) {
        if (rc)
            fail_msg ("%s refused: %s", schema_text, why);
        assert_null (why);
    }
    else {
        if (rc != -1 || !why)
            fail_msg ("%s accepted, expected \"%s\"", schema_text, fragment);
        if (!strstr (why, fragment))
            fail_msg ("error \"%s\" lacks \"%s\"", why, fragment);
        free (why);
        //  sb_schema_new refuses it with the same words.
        sb_schema_t *compiled = sb_schema_new (schema, "f.json: tool \"t\"", &why);
        assert_null (compiled);
        assert_non_null (why);
        assert_non_null (strstr (why, fragment));
        free (why);
    }
    json_decref (schema);
}

#define S_OBJ(props) "{\"type\":\"object\",\"properties\":{" props "}}"

static void
test_validate (void **state)
{
    (void) state;
    s_expect_valid (s_schema_text, NULL);
    s_expect_valid ("{\"type\":\"object\"}", NULL);
    s_expect_valid (S_OBJ ("\"id\":{}"), NULL);             //  any value
    s_expect_valid (S_OBJ ("\"id\":true"), NULL);
    s_expect_valid (NULL, "f.json: tool \"t\": inputSchema must be an object schema");
    s_expect_valid ("{\"type\":\"string\"}", "inputSchema must be an object schema");
    s_expect_valid ("{\"properties\":{}}", "inputSchema must be an object schema");
    s_expect_valid ("{\"type\":\"object\",\"properties\":[]}",
                    "f.json: tool \"t\": inputSchema.properties must be an object");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{},\"required\":\"id\"}",
                    "f.json: tool \"t\": inputSchema.required must be an array of strings");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{},\"required\":[1]}",
                    "inputSchema.required must be an array of strings");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{},\"required\":[\"id\"]}",
                    "inputSchema.required names \"id\", which is not a property");
    s_expect_valid ("{\"type\":\"object\",\"required\":[\"id\"]}",
                    "inputSchema.required names \"id\", which is not a property");
    //  …unless the property may be described by a composition.
    s_expect_valid ("{\"type\":\"object\",\"required\":[\"id\"],\"allOf\":[{\"properties\":"
                    "{\"id\":{}}}]}", NULL);
    s_expect_valid (S_OBJ ("\"id\":{\"type\":\"text\"}"),
                    "inputSchema.properties.id.type \"text\" is not a JSON Schema type");
    s_expect_valid (S_OBJ ("\"id\":{\"type\":[\"string\",\"date\"]}"),
                    "inputSchema.properties.id.type \"date\" is not a JSON Schema type");
    s_expect_valid (S_OBJ ("\"id\":{\"type\":[]}"), "inputSchema.properties.id.type must be a "
                    "type name or a non-empty array of type names");
    s_expect_valid (S_OBJ ("\"id\":{\"type\":[\"string\",\"string\"]}"),
                    "names the same type twice");
    s_expect_valid (S_OBJ ("\"id\":\"string\""),
                    "inputSchema.properties.id must be a schema (an object, or true or false)");
    s_expect_valid (S_OBJ ("\"id\":{\"type\":\"string\",\"enum\":\"a\"}"),
                    "inputSchema.properties.id.enum must be an array");
    s_expect_valid (S_OBJ ("\"id\":{\"enum\":[]}"), "enum must be an array with at least one");
    s_expect_valid (S_OBJ ("\"n\":{\"maximum\":\"100\"}"),
                    "inputSchema.properties.n.maximum must be a number");
    s_expect_valid (S_OBJ ("\"n\":{\"multipleOf\":0}"),
                    "multipleOf must be a number greater than 0");
    s_expect_valid (S_OBJ ("\"n\":{\"minLength\":-1}"), "minLength must be a whole number");
    s_expect_valid (S_OBJ ("\"n\":{\"maxItems\":1.5}"), "maxItems must be a whole number");
    s_expect_valid (S_OBJ ("\"n\":{\"uniqueItems\":1}"), "uniqueItems must be true or false");
    s_expect_valid (S_OBJ ("\"n\":{\"format\":5}"), "format must be a string");
    s_expect_valid (S_OBJ ("\"n\":{\"pattern\":5}"), "pattern must be a string");
    s_expect_valid (S_OBJ ("\"n\":{\"pattern\":\"(a\"}"),
                    "inputSchema.properties.n.pattern is not a valid regular expression");
    s_expect_valid ("{\"type\":\"object\",\"patternProperties\":{\"[\":{}}}",
                    "inputSchema.patternProperties[\"[\"] is not a valid regular expression");
    s_expect_valid (S_OBJ ("\"n\":{\"items\":[{}]}"), "items must be one schema");
    s_expect_valid (S_OBJ ("\"n\":{\"items\":5}"),
                    "inputSchema.properties.n.items must be a schema");
    s_expect_valid (S_OBJ ("\"n\":{\"anyOf\":[]}"), "anyOf must be a non-empty array of schemas");
    s_expect_valid (S_OBJ ("\"n\":{\"allOf\":[{},3]}"),
                    "inputSchema.properties.n.allOf[1] must be a schema");
    s_expect_valid (S_OBJ ("\"n\":{\"properties\":{\"m\":{\"minimum\":\"1\"}}}"),
                    "inputSchema.properties.n.properties.m.minimum must be a number");
    s_expect_valid (S_OBJ ("\"n\":{\"dependentRequired\":{\"a\":\"b\"}}"),
                    "dependentRequired.a must be an array of strings");
    s_expect_valid (S_OBJ ("\"n\":{\"unevaluatedProperties\":false}"),
                    "unevaluatedProperties is not supported");
    s_expect_valid (S_OBJ ("\"n\":{\"dependencies\":{}}"), "dependencies is draft 7");
    //  $ref: local only, and pointing at a schema.
    s_expect_valid (S_OBJ ("\"n\":{\"$ref\":\"#/$defs/missing\"}"),
                    "inputSchema.properties.n.$ref \"#/$defs/missing\" points at nothing");
    s_expect_valid (S_OBJ ("\"n\":{\"$ref\":\"https://example.com/s.json\"}"),
                    "$ref \"https://example.com/s.json\" is not supported: only local");
    s_expect_valid (S_OBJ ("\"n\":{\"$ref\":\"#anchor\"}"),
                    "inputSchema.properties.n.$ref \"#anchor\" names no $anchor in this inputSchema");
    s_expect_valid (S_OBJ ("\"n\":{\"$ref\":\"#1st\"}"), "is not supported: only local");
    s_expect_valid (S_OBJ ("\"n\":{\"$ref\":5}"), "$ref must be a string");
    s_expect_valid (S_OBJ ("\"n\":{\"enum\":[{\"type\":\"string\"}]},\"m\":{\"$ref\":"
                           "\"#/properties/n/enum/0\"}"), "must point at a schema");
    s_expect_valid ("{\"type\":\"object\",\"$defs\":{\"x\":{\"type\":\"strin\"}}}",
                    "inputSchema.$defs.x.type \"strin\" is not a JSON Schema type");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{\"a\":{\"$id\":\"x\"}}}",
                    "$id is only supported at the top");
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
        cmocka_unit_test (test_accepts_good_values),
        cmocka_unit_test (test_type),
        cmocka_unit_test (test_required),
        cmocka_unit_test (test_enum_const),
        cmocka_unit_test (test_bounds),
        cmocka_unit_test (test_lengths),
        cmocka_unit_test (test_additional_properties),
        cmocka_unit_test (test_objects),
        cmocka_unit_test (test_pattern),
        cmocka_unit_test (test_formats),
        cmocka_unit_test (test_arrays),
        cmocka_unit_test (test_combinators),
        cmocka_unit_test (test_refs),
        cmocka_unit_test (test_composed_schema),
        cmocka_unit_test (test_anchors),
        cmocka_unit_test (test_validate),
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
