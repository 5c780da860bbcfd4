/*  common/sb_schema.c — call-time checks: do a tools/call's arguments
    satisfy the tool's inputSchema (JSON Schema 2020-12, the keywords
    listed in sb_schema.h)? Walks schema and value together, keeping the
    readable path of the field being checked ("contact.email", "items[2]")
    so that the first broken rule becomes a sentence that names it.

    Every check is bounded: SB_MAX_SCHEMA_WORK steps in all, subschemas
    open at once (SB_MAX_SCHEMA_EVAL_DEPTH, which stops $ref loops), the
    value's nesting (SB_MAX_SCHEMA_DEPTH) and each regular expression
    match (sb_schema_format.c). Load-time validation is in
    sb_schema_load.c; formats and regexes in sb_schema_format.c. */
#include "common/sb_schema_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One check in progress.
typedef struct {
    const json_t *root;                     /* the whole schema, for $ref */
    const sb_schema_anchors_t *anchors;     /* its $anchors, for $ref "#name" */
    const sb_schema_regexes_t *compiled;    /* patterns compiled at load, or NULL */
    sb_schema_regexes_t scratch;            /* patterns compiled during this check */
    size_t work;                            /* steps left */
    int eval_depth;                         /* subschemas open */
    int value_depth;                        /* nesting of the value being checked */
    char path [SB_MAX_SCHEMA_PATH];         /* the field being checked, "" for the arguments */
    char *abort;                            /* sentence when a limit stopped the check */
} s_check_t;

//  Why a value failed a subschema.
typedef struct {
    char *message;                          /* the sentence, NULL on allocation failure */
    size_t path_length;                     /* how deep in the value the rule broke */
    char *expected;                         /* for a type mismatch, what the value must be */
    char *missing;                          /* for a missing member, its path */
    size_t missing_at;                      /* path length of the object that lacks it */
} s_error_t;

#define SB_SCHEMA_FAIL_COST 50              /* steps a failure (its sentence) counts for */
#define SB_SCHEMA_MERGED_MAX 8              /* missing members one sentence may name */

#define S_FAIL  -1                          /* the value breaks a rule: error set */
#define S_ABORT -2                          /* a limit stopped the check: ctx->abort set */

struct _sb_schema_t {
    json_t *schema;                         /* the inputSchema, a reference */
    sb_schema_regexes_t regexes;            /* its patterns, compiled */
    sb_schema_anchors_t anchors;            /* its $anchors */
};

static int s_eval (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error);

static void
s_error_clear (s_error_t *error)
{
    free (error->message);
    free (error->expected);
    free (error->missing);
    error->message = error->expected = error->missing = NULL;
    error->path_length = error->missing_at = 0;
}

//  Fails the check with "Argument '<path>' <rule>" (or "The arguments
//  <rule>" at the top).
static int
s_fail (s_check_t *ctx, s_error_t *error, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (s_check_t *ctx, s_error_t *error, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *rule = NULL;
    if (vasprintf (&rule, fmt, ap) < 0)
        rule = NULL;
    va_end (ap);
    //  A sentence costs far more than a step: count it so (see anyOf).
    ctx->work = ctx->work > SB_SCHEMA_FAIL_COST ? ctx->work - SB_SCHEMA_FAIL_COST : 0;
    s_error_clear (error);
    if (rule)
        error->message = ctx->path [0] ? sb_strfmt ("Argument '%s' %s", ctx->path, rule)
                                       : sb_strfmt ("The arguments %s", rule);
    error->path_length = strlen (ctx->path);
    free (rule);
    return S_FAIL;
}

//  Stops the whole check: no other branch can make it pass.
static int
s_abort (s_check_t *ctx, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_abort (s_check_t *ctx, const char *fmt, ...)
{
    if (!ctx->abort) {
        va_list ap;
        va_start (ap, fmt);
        if (vasprintf (&ctx->abort, fmt, ap) < 0)
            ctx->abort = NULL;
        va_end (ap);
    }
    return S_ABORT;
}

static int
s_spend (s_check_t *ctx, size_t steps)
{
    if (ctx->work < steps) {
        ctx->work = 0;
        return s_abort (ctx, "The arguments are too complex to check against this tool's "
                             "input schema; send fewer or simpler values.");
    }
    ctx->work -= steps;
    return 0;
}

//  JSON equality as JSON Schema defines it: 1 and 1.0 are equal. Returns
//  1 equal, 0 not, S_ABORT past the work limit.
static int
s_equal (s_check_t *ctx, const json_t *a, const json_t *b, int depth)
{
    if (s_spend (ctx, 1))
        return S_ABORT;
    if (depth > SB_MAX_EQUAL_DEPTH)
        return s_abort (ctx, "Argument '%s' is nested too deeply to compare (more than %d "
                             "levels).", ctx->path, SB_MAX_EQUAL_DEPTH);
    if (json_is_number (a) && json_is_number (b)) {
        if (json_is_integer (a) && json_is_integer (b))
            return json_integer_value (a) == json_integer_value (b);
        return json_number_value (a) == json_number_value (b);
    }
    if (json_typeof (a) != json_typeof (b))
        return 0;
    if (json_is_string (a))
        return json_string_length (a) == json_string_length (b)
            && memcmp (json_string_value (a), json_string_value (b), json_string_length (a)) == 0;
    if (json_is_array (a)) {
        if (json_array_size (a) != json_array_size (b))
            return 0;
        for (size_t i = 0; i < json_array_size (a); i++) {
            int rc = s_equal (ctx, json_array_get (a, i), json_array_get (b, i), depth + 1);
            if (rc != 1)
                return rc;
        }
        return 1;
    }
    if (json_is_object (a)) {
        if (json_object_size (a) != json_object_size (b))
            return 0;
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *) a, key, member) {
            json_t *other = json_object_get (b, key);
            int rc = other ? s_equal (ctx, member, other, depth + 1) : 0;
            if (rc != 1)
                return rc;
        }
        return 1;
    }
    return 1;                           //  true, false, null: same type, same value
}

//  Compares two JSON numbers: <0, 0, >0.
static int
s_compare (const json_t *a, const json_t *b)
{
    if (json_is_integer (a) && json_is_integer (b))
        return (json_integer_value (a) > json_integer_value (b))
             - (json_integer_value (a) < json_integer_value (b));
    double x = json_number_value (a), y = json_number_value (b);
    return (x > y) - (x < y);
}

//  --------------------------------------------------------------------------
//  The rules, one function per group of keywords. Each returns 0, S_FAIL or
//  S_ABORT.

static int
s_rule_ref (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    const char *ref = json_string_value (json_object_get (schema, "$ref"));
    if (!ref)
        return 0;
    const json_t *target = sb_schema_resolve_ref (ctx->root, ctx->anchors, ref);
    if (!target)
        return s_abort (ctx, "This tool's input schema is broken ($ref \"%.64s\" points "
                             "nowhere); the arguments cannot be checked.", ref);
    return s_eval (ctx, target, value, error);
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
                && floor (json_real_value (value)) == json_real_value (value));
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
s_type_phrase (const char *type)
{
    if (strcmp (type, "null") == 0)
        return "null";
    return strchr ("aeiou", type [0]) ? "an " : "a ";
}

static int
s_rule_type (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    const json_t *type = json_object_get (schema, "type");
    char expected [160] = "";
    if (json_is_string (type)) {
        if (s_type_matches (value, json_string_value (type)))
            return 0;
        snprintf (expected, sizeof expected, "%s%s", s_type_phrase (json_string_value (type)),
                  strcmp (json_string_value (type), "null") ? json_string_value (type) : "");
    }
    else
    if (json_is_array (type) && json_array_size (type) > 0) {
        size_t index;
        json_t *item;
        json_array_foreach (type, index, item) {
            const char *name = json_string_value (item);
            if (!name || s_type_matches (value, name))
                return 0;
            size_t used = strlen (expected);
            snprintf (expected + used, sizeof expected - used, "%s%s%s",
                      index ? " or " : "", s_type_phrase (name),
                      strcmp (name, "null") ? name : "");
        }
    }
    else
        return 0;
    s_fail (ctx, error, "must be %s.", expected);
    error->expected = strdup (expected);
    return S_FAIL;
}

static int
s_rule_enum (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    const json_t *list = json_object_get (schema, "enum");
    if (json_is_array (list)) {
        size_t index;
        json_t *item;
        int found = 0;
        json_array_foreach (list, index, item) {
            found = s_equal (ctx, value, item, 0);
            if (found)
                break;
        }
        if (found == S_ABORT)
            return S_ABORT;
        if (!found) {
            char *text = sb_schema_quote (list);
            s_fail (ctx, error, "must be one of %s.", text ? text : "the allowed values");
            free (text);
            return S_FAIL;
        }
    }
    const json_t *constant = json_object_get (schema, "const");
    if (constant) {
        int same = s_equal (ctx, value, constant, 0);
        if (same == S_ABORT)
            return S_ABORT;
        if (!same) {
            char *text = sb_schema_quote (constant);
            s_fail (ctx, error, "must be exactly %s.", text ? text : "the allowed value");
            free (text);
            return S_FAIL;
        }
    }
    return 0;
}

static int
s_rule_number (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    if (!json_is_number (value))
        return 0;
    static const struct {
        const char *keyword;            /* the bound */
        int side;                       /* -1 a lower bound, 1 an upper one */
        bool inclusive;                 /* the bound itself is allowed */
        const char *rule;               /* the sentence's end */
    } bounds [] = {
        { "minimum",          -1, true,  "must be at least %s." },
        { "maximum",           1, true,  "must be at most %s." },
        { "exclusiveMinimum", -1, false, "must be greater than %s." },
        { "exclusiveMaximum",  1, false, "must be less than %s." },
    };
    char text [64];
    for (size_t i = 0; i < sizeof bounds / sizeof bounds [0]; i++) {
        const json_t *bound = json_object_get (schema, bounds [i].keyword);
        if (!json_is_number (bound))
            continue;
        int order = s_compare (value, bound);
        if (order == bounds [i].side || (order == 0 && !bounds [i].inclusive)) {
            sb_schema_number_text (bound, text, sizeof text);
            return s_fail (ctx, error, bounds [i].rule, text);
        }
    }
    const json_t *step = json_object_get (schema, "multipleOf");
    if (json_is_number (step) && json_number_value (step) > 0) {
        bool multiple;
        if (json_is_integer (value) && json_is_integer (step))
            multiple = json_integer_value (value) % json_integer_value (step) == 0;
        else {
            double quotient = json_number_value (value) / json_number_value (step);
            multiple = isfinite (quotient)
                    && fabs (quotient - nearbyint (quotient)) <= 1e-9 * fmax (1.0, fabs (quotient));
        }
        if (!multiple) {
            sb_schema_number_text (step, text, sizeof text);
            return s_fail (ctx, error, "must be a multiple of %s.", text);
        }
    }
    return 0;
}

//  The compiled pattern held by `id`, compiling it for this check when the
//  schema was not compiled at load. NULL after s_abort.
static pcre2_code *
s_regex (s_check_t *ctx, const void *id, const char *pattern, size_t length, bool *temporary)
{
    *temporary = false;
    pcre2_code *code = sb_schema_regexes_find (ctx->compiled, id);
    if (!code)
        code = sb_schema_regexes_find (&ctx->scratch, id);
    if (code)
        return code;
    char *why = NULL;
    code = sb_schema_regex_compile (pattern, length, &why);
    if (!code) {
        s_abort (ctx, "This tool's input schema is broken (its pattern %.64s %s); the "
                      "arguments cannot be checked.", pattern, why ? why : "does not compile");
        free (why);
        return NULL;
    }
    if (ctx->scratch.count < SB_MAX_SCHEMA_PATTERNS) {
        ctx->scratch.id [ctx->scratch.count] = id;
        ctx->scratch.code [ctx->scratch.count++] = code;
    }
    else
        *temporary = true;
    return code;
}

//  Searches `text` for the pattern held by `id`: 1 found, 0 not, S_ABORT.
static int
s_search (s_check_t *ctx, const void *id, const char *pattern, const char *text, size_t length)
{
    if (s_spend (ctx, SB_SCHEMA_MATCH_COST + length / 64))
        return S_ABORT;
    bool temporary;
    pcre2_code *code = s_regex (ctx, id, pattern, strlen (pattern), &temporary);
    if (!code)
        return S_ABORT;
    int rc = sb_schema_regex_search (code, text, length);
    if (temporary)
        pcre2_code_free (code);
    if (rc < 0)
        return s_abort (ctx, "Argument '%s' is too long or complex to check against the "
                             "pattern %.100s; send a shorter, simpler value.",
                        ctx->path [0] ? ctx->path : "(name)", pattern);
    return rc;
}

static int
s_rule_string (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    if (!json_is_string (value))
        return 0;
    const char *text = json_string_value (value);
    size_t bytes = json_string_length (value);
    size_t length = sb_schema_utf8_length (text, bytes);
    const json_t *bound = json_object_get (schema, "minLength");
    if (json_is_integer (bound) && (json_int_t) length < json_integer_value (bound))
        return s_fail (ctx, error, "must be at least %" JSON_INTEGER_FORMAT " characters long.",
                       json_integer_value (bound));
    bound = json_object_get (schema, "maxLength");
    if (json_is_integer (bound) && (json_int_t) length > json_integer_value (bound))
        return s_fail (ctx, error, "must be at most %" JSON_INTEGER_FORMAT " characters long.",
                       json_integer_value (bound));
    const json_t *pattern = json_object_get (schema, "pattern");
    if (json_is_string (pattern)) {
        int rc = s_search (ctx, pattern, json_string_value (pattern), text, bytes);
        if (rc == S_ABORT)
            return S_ABORT;
        if (rc == 0)
            return s_fail (ctx, error, "must match the pattern %s.", json_string_value (pattern));
    }
    const char *format = json_string_value (json_object_get (schema, "format"));
    if (format && !sb_schema_format_ok (format, text, bytes))
        return s_fail (ctx, error, "must be %s.", sb_schema_format_phrase (format));
    return 0;
}

//  Checks one member or item: `push` already put its name on the path.
static int
s_eval_child (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    if (ctx->value_depth >= SB_MAX_SCHEMA_DEPTH)
        return s_abort (ctx, "Argument '%s' is nested too deeply (more than %d levels).",
                        ctx->path, SB_MAX_SCHEMA_DEPTH);
    ctx->value_depth++;
    int rc = s_eval (ctx, schema, value, error);
    ctx->value_depth--;
    return rc;
}

static const char *
s_plural (json_int_t count, const char *one, const char *many)
{
    return count == 1 ? one : many;
}

static int
s_rule_array (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    if (!json_is_array (value))
        return 0;
    size_t size = json_array_size (value);
    const json_t *bound = json_object_get (schema, "minItems");
    if (json_is_integer (bound) && (json_int_t) size < json_integer_value (bound))
        return s_fail (ctx, error, "must have at least %" JSON_INTEGER_FORMAT " %s.",
                       json_integer_value (bound),
                       s_plural (json_integer_value (bound), "item", "items"));
    bound = json_object_get (schema, "maxItems");
    if (json_is_integer (bound) && (json_int_t) size > json_integer_value (bound))
        return s_fail (ctx, error, "must have at most %" JSON_INTEGER_FORMAT " %s.",
                       json_integer_value (bound),
                       s_plural (json_integer_value (bound), "item", "items"));
    if (json_is_true (json_object_get (schema, "uniqueItems")) && size > 1) {
        if (s_spend (ctx, size * (size - 1) / 2))
            return S_ABORT;
        for (size_t i = 0; i < size; i++)
            for (size_t j = i + 1; j < size; j++) {
                int same = s_equal (ctx, json_array_get (value, i),
                                    json_array_get (value, j), 0);
                if (same == S_ABORT)
                    return S_ABORT;
                if (same)
                    return s_fail (ctx, error, "must not hold the same item twice (items %zu "
                                   "and %zu are equal).", i, j);
            }
    }
    const json_t *prefix = json_object_get (schema, "prefixItems");
    size_t prefixed = json_is_array (prefix) ? json_array_size (prefix) : 0;
    const json_t *items = json_object_get (schema, "items");
    if (json_is_false (items) && size > prefixed)
        return s_fail (ctx, error, "must have at most %zu %s.", prefixed,
                       s_plural ((json_int_t) prefixed, "item", "items"));
    for (size_t i = 0; i < size; i++) {
        const json_t *item_schema = i < prefixed ? json_array_get (prefix, i) : items;
        if (!item_schema)
            break;
        size_t old = sb_schema_path_push_index (ctx->path, sizeof ctx->path, i);
        int rc = s_eval_child (ctx, item_schema, json_array_get (value, i), error);
        ctx->path [old] = 0;
        if (rc)
            return rc;
    }
    const json_t *contains = json_object_get (schema, "contains");
    if (contains) {
        json_int_t least = 1, most = -1, count = 0;
        if (json_is_integer (json_object_get (schema, "minContains")))
            least = json_integer_value (json_object_get (schema, "minContains"));
        if (json_is_integer (json_object_get (schema, "maxContains")))
            most = json_integer_value (json_object_get (schema, "maxContains"));
        for (size_t i = 0; i < size; i++) {
            s_error_t ignored = { 0 };
            size_t old = sb_schema_path_push_index (ctx->path, sizeof ctx->path, i);
            int rc = s_eval_child (ctx, contains, json_array_get (value, i), &ignored);
            ctx->path [old] = 0;
            s_error_clear (&ignored);
            if (rc == S_ABORT)
                return S_ABORT;
            count += rc == 0;
        }
        if (count < least || (most >= 0 && count > most)) {
            char *text = sb_schema_quote (contains);
            if (count < least)
                s_fail (ctx, error, "must hold at least %" JSON_INTEGER_FORMAT " %s matching %s.",
                        least, s_plural (least, "item", "items"), text ? text : "its schema");
            else
                s_fail (ctx, error, "must hold at most %" JSON_INTEGER_FORMAT " %s matching %s.",
                        most, s_plural (most, "item", "items"), text ? text : "its schema");
            free (text);
            return S_FAIL;
        }
    }
    return 0;
}

//  Checks one member against properties, patternProperties and
//  additionalProperties.
static int
s_check_member (s_check_t *ctx, const json_t *schema, const char *key, const json_t *member,
                const char *parent, s_error_t *error)
{
    bool matched = false;
    const json_t *property = json_object_get (json_object_get (schema, "properties"), key);
    if (property) {
        matched = true;
        int rc = s_eval_child (ctx, property, member, error);
        if (rc)
            return rc;
    }
    const json_t *patterns = json_object_get (schema, "patternProperties");
    if (json_is_object (patterns)) {
        const char *pattern;
        json_t *pattern_schema;
        json_object_foreach ((json_t *) patterns, pattern, pattern_schema) {
            int found = s_search (ctx, pattern, pattern, key, strlen (key));
            if (found == S_ABORT)
                return S_ABORT;
            if (!found)
                continue;
            matched = true;
            int rc = s_eval_child (ctx, pattern_schema, member, error);
            if (rc)
                return rc;
        }
    }
    const json_t *additional = json_object_get (schema, "additionalProperties");
    if (!matched && json_is_false (additional)) {
        if (*parent)
            return s_fail (ctx, error, "is not allowed: '%s' has no such field.", parent);
        return s_fail (ctx, error, "is not allowed: this tool takes no such argument.");
    }
    if (!matched && additional)
        return s_eval_child (ctx, additional, member, error);
    return 0;
}

static int
s_rule_object (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    if (!json_is_object (value))
        return 0;
    int rc = 0;
    size_t index;
    json_t *item;
    json_array_foreach (json_object_get (schema, "required"), index, item) {
        const char *name = json_string_value (item);
        if (name && !json_object_get (value, name)) {
            size_t old = sb_schema_path_push_key (ctx->path, sizeof ctx->path, name);
            rc = s_fail (ctx, error, "is required.");
            error->missing = strdup (ctx->path);
            //  A branch that lacks a member got only as far as the object.
            error->missing_at = error->path_length = old;
            ctx->path [old] = 0;
            return rc;
        }
    }
    json_int_t size = (json_int_t) json_object_size (value);
    const json_t *bound = json_object_get (schema, "minProperties");
    if (json_is_integer (bound) && size < json_integer_value (bound))
        return s_fail (ctx, error, "must have at least %" JSON_INTEGER_FORMAT " %s.",
                       json_integer_value (bound),
                       s_plural (json_integer_value (bound), "field", "fields"));
    bound = json_object_get (schema, "maxProperties");
    if (json_is_integer (bound) && size > json_integer_value (bound))
        return s_fail (ctx, error, "must have at most %" JSON_INTEGER_FORMAT " %s.",
                       json_integer_value (bound),
                       s_plural (json_integer_value (bound), "field", "fields"));

    const json_t *dependent = json_object_get (schema, "dependentRequired");
    const char *key;
    json_t *list;
    json_object_foreach ((json_t *) dependent, key, list) {
        if (!json_object_get (value, key))
            continue;
        json_array_foreach (list, index, item) {
            const char *name = json_string_value (item);
            if (name && !json_object_get (value, name)) {
                char given [SB_MAX_SCHEMA_PATH];
                snprintf (given, sizeof given, "%s", ctx->path);
                sb_schema_path_push_key (given, sizeof given, key);
                size_t old = sb_schema_path_push_key (ctx->path, sizeof ctx->path, name);
                rc = s_fail (ctx, error, "is required when '%s' is given.", given);
                ctx->path [old] = 0;
                return rc;
            }
        }
    }
    char parent [SB_MAX_SCHEMA_PATH];
    snprintf (parent, sizeof parent, "%s", ctx->path);
    const json_t *names = json_object_get (schema, "propertyNames");
    json_t *member;
    json_object_foreach ((json_t *) value, key, member) {
        size_t old = sb_schema_path_push_key (ctx->path, sizeof ctx->path, key);
        rc = s_check_member (ctx, schema, key, member, parent, error);
        if (!rc && names) {
            json_t *name = json_string (key);
            rc = name ? s_eval (ctx, names, name, error)
                      : s_abort (ctx, "The arguments could not be checked (out of memory).");
            json_decref (name);
        }
        ctx->path [old] = 0;
        if (rc)
            return rc;
    }
    const json_t *schemas = json_object_get (schema, "dependentSchemas");
    json_t *subschema;
    json_object_foreach ((json_t *) schemas, key, subschema)
        if (json_object_get (value, key)) {
            rc = s_eval (ctx, subschema, value, error);
            if (rc)
                return rc;
        }
    return 0;
}

//  When every branch failed for want of a member of the object here
//  (anyOf: [{required: [phone]}, {required: [email]}]), one sentence
//  naming them all: "Argument 'phone' or 'email' is required." Returns
//  S_FAIL with it, or 0 when the errors are not all of that kind.
static int
s_missing_error (s_check_t *ctx, s_error_t *errors, size_t count, s_error_t *error)
{
    size_t here = strlen (ctx->path);
    if (count > SB_SCHEMA_MERGED_MAX)
        return 0;
    for (size_t i = 0; i < count; i++)
        if (!errors [i].missing || errors [i].missing_at != here)
            return 0;
    //  Each name once, in branch order: "'a'", "'a' or 'b'", "'a', 'b' or 'c'".
    size_t distinct [SB_SCHEMA_MERGED_MAX], listed = 0;
    for (size_t i = 0; i < count; i++) {
        bool seen = false;
        for (size_t j = 0; j < listed && !seen; j++)
            seen = strcmp (errors [distinct [j]].missing, errors [i].missing) == 0;
        if (!seen)
            distinct [listed++] = i;
    }
    char names [SB_MAX_SCHEMA_PATH * 2] = "";
    for (size_t j = 0; j < listed; j++) {
        size_t used = strlen (names);
        snprintf (names + used, sizeof names - used, "%s'%s'",
                  j == 0 ? "" : j + 1 == listed ? " or " : ", ", errors [distinct [j]].missing);
    }
    s_error_clear (error);
    //  Written here, not by s_fail: each name already carries its path.
    ctx->work = ctx->work > SB_SCHEMA_FAIL_COST ? ctx->work - SB_SCHEMA_FAIL_COST : 0;
    error->message = sb_strfmt ("Argument %s is required.", names);
    error->path_length = here;
    return S_FAIL;
}

//  Of the errors of the branches that all failed, the most useful one:
//  when every branch wanted another type here, one sentence naming them
//  all; when every branch wanted another member here, one sentence naming
//  those; else the error deepest in the value, the first among equals.
static int
s_best_error (s_check_t *ctx, s_error_t *errors, size_t count, s_error_t *error)
{
    if (s_missing_error (ctx, errors, count, error))
        return S_FAIL;
    size_t here = strlen (ctx->path);
    size_t best = count;
    bool all_types = true;
    for (size_t i = 0; i < count; i++) {
        bool type_here = errors [i].expected && errors [i].path_length == here;
        if (type_here)
            continue;
        all_types = false;
        if (best == count || errors [i].path_length > errors [best].path_length)
            best = i;
    }
    if (all_types && count > 0) {
        char expected [400] = "";
        for (size_t i = 0; i < count; i++) {
            if (strstr (expected, errors [i].expected))
                continue;
            size_t used = strlen (expected);
            snprintf (expected + used, sizeof expected - used, "%s%s", used ? " or " : "",
                      errors [i].expected);
        }
        s_fail (ctx, error, "must be %s.", expected);
        error->expected = strdup (expected);
        return S_FAIL;
    }
    s_error_clear (error);
    *error = errors [best];
    errors [best] = (s_error_t) { 0 };
    return S_FAIL;
}

//  anyOf (exactly = false) or oneOf (exactly = true).
static int
s_rule_choice (s_check_t *ctx, const json_t *branches, bool exactly, const json_t *value,
               s_error_t *error)
{
    size_t count = json_array_size (branches);
    if (count == 0)
        return 0;
    s_error_t *errors = calloc (count, sizeof *errors);
    if (!errors)
        return s_abort (ctx, "The arguments could not be checked (out of memory).");
    size_t passed = 0, first = 0;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        int branch = s_eval (ctx, json_array_get (branches, i), value, &errors [i]);
        if (branch == S_ABORT) {
            rc = S_ABORT;
            goto out;
        }
        if (branch == 0 && passed++ == 0)
            first = i;
        if (branch == 0 && passed == 2) {
            rc = s_fail (ctx, error, "fits more than one of the allowed forms (forms %zu and "
                         "%zu); it must fit exactly one.", first + 1, i + 1);
            goto out;
        }
        if (branch == 0 && !exactly)
            goto out;
    }
    if (passed == 0)
        rc = s_best_error (ctx, errors, count, error);
out:
    for (size_t i = 0; i < count; i++)
        s_error_clear (&errors [i]);
    free (errors);
    return rc;
}

static int
s_rule_logic (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    int rc;
    size_t index;
    json_t *branch;
    json_array_foreach (json_object_get (schema, "allOf"), index, branch) {
        rc = s_eval (ctx, branch, value, error);
        if (rc)
            return rc;
    }
    const json_t *branches = json_object_get (schema, "anyOf");
    if (json_is_array (branches) && (rc = s_rule_choice (ctx, branches, false, value, error)))
        return rc;
    branches = json_object_get (schema, "oneOf");
    if (json_is_array (branches) && (rc = s_rule_choice (ctx, branches, true, value, error)))
        return rc;
    const json_t *negated = json_object_get (schema, "not");
    if (negated) {
        s_error_t ignored = { 0 };
        rc = s_eval (ctx, negated, value, &ignored);
        s_error_clear (&ignored);
        if (rc == S_ABORT)
            return S_ABORT;
        if (rc == 0) {
            const json_t *constant = json_object_get (negated, "const");
            const json_t *list = json_object_get (negated, "enum");
            char *text = sb_schema_quote (constant ? constant : list ? list : negated);
            if (constant)
                s_fail (ctx, error, "must not be %s.", text ? text : "this value");
            else
            if (list)
                s_fail (ctx, error, "must not be any of %s.", text ? text : "these values");
            else
                s_fail (ctx, error, "must not match %s.", text ? text : "this schema");
            free (text);
            return S_FAIL;
        }
    }
    const json_t *condition = json_object_get (schema, "if");
    if (condition) {
        s_error_t ignored = { 0 };
        rc = s_eval (ctx, condition, value, &ignored);
        s_error_clear (&ignored);
        if (rc == S_ABORT)
            return S_ABORT;
        const json_t *then = json_object_get (schema, rc == 0 ? "then" : "else");
        if (then)
            return s_eval (ctx, then, value, error);
    }
    return 0;
}

typedef int (s_rule_fn) (s_check_t *ctx, const json_t *schema, const json_t *value,
                         s_error_t *error);

static int
s_eval (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    static s_rule_fn *const rules [] = {
        s_rule_ref, s_rule_type, s_rule_enum, s_rule_number, s_rule_string,
        s_rule_array, s_rule_object, s_rule_logic
    };
    if (json_is_true (schema))
        return 0;
    if (json_is_false (schema))
        return s_fail (ctx, error, "is not allowed.");
    if (!json_is_object (schema))
        return 0;
    if (s_spend (ctx, 1))
        return S_ABORT;
    if (ctx->eval_depth >= SB_MAX_SCHEMA_EVAL_DEPTH)
        return s_abort (ctx, "This tool's input schema nests or refers to itself too deeply "
                             "to check these arguments.");
    ctx->eval_depth++;
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof rules / sizeof rules [0]; i++)
        rc = rules [i] (ctx, schema, value, error);
    ctx->eval_depth--;
    return rc;
}

//  --------------------------------------------------------------------------
//  Public API

//  Checks `value`; `compiled` and `anchors` come from sb_schema_new, or
//  are NULL to compile patterns and find anchors during this check.
static int
s_run (const json_t *schema, const sb_schema_regexes_t *compiled,
       const sb_schema_anchors_t *anchors, const json_t *value, char **error)
{
    *error = NULL;
    if (!json_is_object (value)) {
        *error = strdup ("Arguments must be a JSON object.");
        return -1;
    }
    s_check_t ctx = { .root = schema, .anchors = anchors, .compiled = compiled,
                      .work = SB_MAX_SCHEMA_WORK };
    sb_schema_anchors_t found;
    if (!anchors) {
        sb_schema_anchors_collect (schema, &found);
        ctx.anchors = &found;
    }
    s_error_t failure = { 0 };
    int rc = s_eval (&ctx, schema, value, &failure);
    sb_schema_regexes_clear (&ctx.scratch);
    if (rc == S_ABORT) {
        *error = ctx.abort ? ctx.abort : strdup ("The arguments could not be checked.");
        ctx.abort = NULL;
    }
    else
    if (rc) {
        *error = failure.message ? failure.message
                                 : strdup ("The arguments could not be checked (out of memory).");
        failure.message = NULL;
    }
    s_error_clear (&failure);
    free (ctx.abort);
    return rc ? -1 : 0;
}

int
sb_schema_check (const json_t *schema, const json_t *value, char **error)
{
    return s_run (schema, NULL, NULL, value, error);
}

sb_schema_t *
sb_schema_new (const json_t *schema, const char *where, char **why)
{
    sb_schema_t *self = calloc (1, sizeof *self);
    if (!self) {
        *why = sb_strfmt ("%s: out of memory", where);
        return NULL;
    }
    if (sb_schema_load (schema, where, why, &self->regexes, &self->anchors)) {
        sb_schema_destroy (&self);
        return NULL;
    }
    self->schema = json_incref ((json_t *) schema);
    return self;
}

void
sb_schema_destroy (sb_schema_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_schema_t *self = *self_p;
    sb_schema_regexes_clear (&self->regexes);
    json_decref (self->schema);
    free (self);
    *self_p = NULL;
}

int
sb_schema_check_compiled (const sb_schema_t *self, const json_t *value, char **error)
{
    return s_run (self->schema, &self->regexes, &self->anchors, value, error);
}
