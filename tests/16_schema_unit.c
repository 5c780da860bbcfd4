/*  tests/16_schema_unit.c — unit tests of common/sb_schema: each argument
    rule (type, required, property types, enum, minimum/maximum, exclusive
    bounds, minLength/maxLength, additionalProperties) accepts a good value
    and refuses a bad one with a sentence naming the field; load-time
    validation refuses malformed schemas with the same sentences as before. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sb_schema.h"

//  One schema that uses every rule.
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

//  Checks `value_text` against `schema`: accepted when `fragment` is NULL,
//  else refused with an error containing `fragment`.
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
        assert_int_equal (rc, -1);
        assert_non_null (error);
        if (!strstr (error, fragment))
            fail_msg ("error \"%s\" lacks \"%s\"", error, fragment);
        free (error);
    }
    json_decref (value);
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
    s_expect (schema, "{\"id\":\"ab\",\"nothing\":0}", "Argument 'nothing' must be a null.");
    json_decref (schema);
}

static void
test_required (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{}", "Argument 'id' is required.");
    s_expect (schema, "{\"limit\":5}", "Argument 'id' is required.");
    json_decref (schema);
}

static void
test_enum (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{\"id\":\"ab\",\"status\":\"closed\"}", NULL);
    s_expect (schema, "{\"id\":\"ab\",\"status\":\"pending\"}",
              "Argument 'status' must be one of [\"open\",\"closed\"].");
    json_decref (schema);
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
}

static void
test_lengths (void **state)
{
    (void) state;
    json_t *schema = s_json (s_schema_text);
    s_expect (schema, "{\"id\":\"a\"}", "Argument 'id' must be at least 2 characters long.");
    s_expect (schema, "{\"id\":\"abcde\"}", "Argument 'id' must be at most 4 characters long.");
    //  Lengths count code points, not bytes.
    s_expect (schema, "{\"id\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
              "Argument 'id' must be at most 4 characters long.");
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
}

//  Load time: sb_schema_validate, one case per rule.
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
        assert_int_equal (rc, -1);
        assert_non_null (why);
        if (!strstr (why, fragment))
            fail_msg ("error \"%s\" lacks \"%s\"", why, fragment);
        free (why);
    }
    json_decref (schema);
}

static void
test_validate (void **state)
{
    (void) state;
    s_expect_valid (s_schema_text, NULL);
    s_expect_valid ("{\"type\":\"object\"}", NULL);
    s_expect_valid (NULL, "f.json: tool \"t\": inputSchema must be an object schema");
    s_expect_valid ("{\"type\":\"string\"}", "inputSchema must be an object schema");
    s_expect_valid ("{\"properties\":{}}", "inputSchema must be an object schema");
    s_expect_valid ("{\"type\":\"object\",\"properties\":[]}",
                    "f.json: tool \"t\": inputSchema.properties must be an object");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{},\"required\":\"id\"}",
                    "f.json: tool \"t\": \"inputSchema.required\" must be an array of strings");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{},\"required\":[1]}",
                    "\"inputSchema.required\" must be an array of strings");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{},\"required\":[\"id\"]}",
                    "inputSchema.required names \"id\", which is not a property");
    s_expect_valid ("{\"type\":\"object\",\"required\":[\"id\"]}",
                    "inputSchema.required names \"id\", which is not a property");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{\"id\":{}}}",
                    "inputSchema property \"id\" needs a \"type\"");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"text\"}}}",
                    "inputSchema property \"id\" needs a \"type\"");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{\"id\":\"string\"}}",
                    "inputSchema property \"id\" needs a \"type\"");
    s_expect_valid ("{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\","
                    "\"enum\":\"a\"}}}",
                    "inputSchema property \"id\": enum must be an array");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_accepts_good_values),
        cmocka_unit_test (test_type),
        cmocka_unit_test (test_required),
        cmocka_unit_test (test_enum),
        cmocka_unit_test (test_bounds),
        cmocka_unit_test (test_lengths),
        cmocka_unit_test (test_additional_properties),
        cmocka_unit_test (test_validate),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
