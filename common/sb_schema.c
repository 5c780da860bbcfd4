/*  common/sb_schema.c — the subset of JSON Schema that tool definitions
    use: checks at load that a tool's inputSchema is one we can enforce, and
    at call time that the arguments satisfy it, with sentences that name the
    field and the rule. Depends on jansson only, so it is tested on its own
    (tests/16_schema_unit.c). */
#include "common/sb_schema.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_ENUM_LIST 200    /* bytes of an enum list quoted in an error */

//  Formats a new string (caller frees); NULL only on allocation failure.
static char *
s_strfmt (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static char *
s_strfmt (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *out = NULL;
    int rc = vasprintf (&out, fmt, ap);
    va_end (ap);
    return rc < 0 ? NULL : out;
}

//  --------------------------------------------------------------------------
//  Load time: is the schema itself one we can enforce?

static int
s_check_string_array (const json_t *value, const char *where, const char *key, char **why)
{
    if (!json_is_array (value)) {
        *why = s_strfmt ("%s: \"%s\" must be an array of strings", where, key);
        return -1;
    }
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item)
        if (!json_is_string (item)) {
            *why = s_strfmt ("%s: \"%s\" must be an array of strings", where, key);
            return -1;
        }
    return 0;
}

int
sb_schema_validate (const json_t *schema, const char *where, char **why)
{
    static const char *const types [] = {
        "string", "integer", "number", "boolean", "object", "array", "null", NULL
    };
    if (!json_is_object (schema)
    ||  !json_is_string (json_object_get (schema, "type"))
    ||  strcmp (json_string_value (json_object_get (schema, "type")), "object")) {
        *why = s_strfmt ("%s: inputSchema must be an object schema ({\"type\": \"object\", …})",
                         where);
        return -1;
    }
    json_t *props = json_object_get (schema, "properties");
    if (props && !json_is_object (props)) {
        *why = s_strfmt ("%s: inputSchema.properties must be an object", where);
        return -1;
    }
    json_t *required = json_object_get (schema, "required");
    if (required) {
        if (s_check_string_array (required, where, "inputSchema.required", why))
            return -1;
        size_t index;
        json_t *item;
        json_array_foreach (required, index, item)
            if (!props || !json_object_get (props, json_string_value (item))) {
                *why = s_strfmt ("%s: inputSchema.required names \"%s\", which is not "
                                 "a property", where, json_string_value (item));
                return -1;
            }
    }
    const char *key;
    json_t *prop;
    json_object_foreach (props, key, prop) {
        json_t *type = json_object_get (prop, "type");
        bool ok = json_is_object (prop) && json_is_string (type);
        for (size_t i = 0; ok && types [i]; i++)
            if (strcmp (json_string_value (type), types [i]) == 0)
                goto known;
        *why = s_strfmt ("%s: inputSchema property \"%s\" needs a \"type\" "
                         "(string, integer, number, boolean, object, array, null)", where, key);
        return -1;
known:
        if (json_object_get (prop, "enum") && !json_is_array (json_object_get (prop, "enum"))) {
            *why = s_strfmt ("%s: inputSchema property \"%s\": enum must be an array",
                             where, key);
            return -1;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Call time: do the arguments satisfy the schema?

//  Length in Unicode code points of valid UTF-8 (what minLength counts).
static size_t
s_utf8_length (const char *text, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) text [i] & 0xC0) != 0x80)
            count++;
    return count;
}

static bool
s_type_matches (const json_t *value, const char *type)
{
    if (strcmp (type, "string") == 0)
        return json_is_string (value);
    if (strcmp (type, "integer") == 0)
        return json_is_integer (value)
            || (json_is_real (value) && json_real_value (value) > -9007199254740992.0
                && json_real_value (value) < 9007199254740992.0
                && (double) (long long) json_real_value (value) == json_real_value (value));
    if (strcmp (type, "number") == 0)
        return json_is_number (value);
    if (strcmp (type, "boolean") == 0)
        return json_is_boolean (value);
    if (strcmp (type, "object") == 0)
        return json_is_object (value);
    if (strcmp (type, "array") == 0)
        return json_is_array (value);
    if (strcmp (type, "null") == 0)
        return json_is_null (value);
    return false;
}

static const char *
s_article (const char *type)
{
    return strchr ("aeiou", type [0]) ? "an" : "a";
}

static int
s_check_value (const char *field, const json_t *prop, const json_t *value, char **error)
{
    const char *type = json_string_value (json_object_get (prop, "type"));
    if (type && !s_type_matches (value, type)) {
        *error = s_strfmt ("Argument '%s' must be %s %s.", field, s_article (type), type);
        return -1;
    }
    json_t *list = json_object_get (prop, "enum");
    if (json_is_array (list)) {
        bool found = false;
        size_t index;
        json_t *item;
        json_array_foreach (list, index, item)
            found |= json_equal ((json_t *) value, item) != 0;
        if (!found) {
            char *text = json_dumps (list, JSON_COMPACT);
            *error = s_strfmt ("Argument '%s' must be one of %.*s.", field,
                               SB_MAX_ENUM_LIST, text ? text : "the allowed values");
            free (text);
            return -1;
        }
    }
    if (json_is_number (value)) {
        double number = json_number_value (value);
        json_t *bound = json_object_get (prop, "minimum");
        if (json_is_number (bound) && number < json_number_value (bound)) {
            *error = s_strfmt ("Argument '%s' must be at least %g.", field,
                               json_number_value (bound));
            return -1;
        }
        bound = json_object_get (prop, "maximum");
        if (json_is_number (bound) && number > json_number_value (bound)) {
            *error = s_strfmt ("Argument '%s' must be at most %g.", field,
                               json_number_value (bound));
            return -1;
        }
        bound = json_object_get (prop, "exclusiveMinimum");
        if (json_is_number (bound) && number <= json_number_value (bound)) {
            *error = s_strfmt ("Argument '%s' must be greater than %g.", field,
                               json_number_value (bound));
            return -1;
        }
        bound = json_object_get (prop, "exclusiveMaximum");
        if (json_is_number (bound) && number >= json_number_value (bound)) {
            *error = s_strfmt ("Argument '%s' must be less than %g.", field,
                               json_number_value (bound));
            return -1;
        }
    }
    if (json_is_string (value)) {
        size_t length = s_utf8_length (json_string_value (value), json_string_length (value));
        json_t *bound = json_object_get (prop, "minLength");
        if (json_is_integer (bound) && (json_int_t) length < json_integer_value (bound)) {
            *error = s_strfmt ("Argument '%s' must be at least %" JSON_INTEGER_FORMAT
                               " characters long.", field, json_integer_value (bound));
            return -1;
        }
        bound = json_object_get (prop, "maxLength");
        if (json_is_integer (bound) && (json_int_t) length > json_integer_value (bound)) {
            *error = s_strfmt ("Argument '%s' must be at most %" JSON_INTEGER_FORMAT
                               " characters long.", field, json_integer_value (bound));
            return -1;
        }
    }
    return 0;
}

int
sb_schema_check (const json_t *schema, const json_t *value, char **error)
{
    *error = NULL;
    if (!json_is_object (value)) {
        *error = s_strfmt ("Arguments must be a JSON object.");
        return -1;
    }
    json_t *props = json_object_get (schema, "properties");
    json_t *required = json_object_get (schema, "required");
    size_t index;
    json_t *item;
    json_array_foreach (required, index, item) {
        if (!json_object_get (value, json_string_value (item))) {
            *error = s_strfmt ("Argument '%s' is required.", json_string_value (item));
            return -1;
        }
    }
    bool closed = json_is_false (json_object_get (schema, "additionalProperties"));
    const char *key;
    json_t *member;
    json_object_foreach ((json_t *) value, key, member) {
        json_t *prop = props ? json_object_get (props, key) : NULL;
        if (!prop) {
            if (closed) {
                *error = s_strfmt ("Argument '%.64s' is not allowed: this tool takes no "
                                   "such argument.", key);
                return -1;
            }
            continue;
        }
        if (s_check_value (key, prop, member, error))
            return -1;
    }
    return 0;
}
