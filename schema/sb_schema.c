/*  schema/sb_schema.c — call-time checks: do a tools/call's arguments
    satisfy the tool's inputSchema (JSON Schema 2020-12, the keywords
    listed in sb_schema.h)? Walks schema and value together, keeping the
    trail of members and items to the field being checked, so that the
    first broken rule becomes a sentence that names it by its readable
    path ("contact.email", "items[2]").

    The check runs on every call, so it does at call time only what
    depends on the value: a compiled checker (sb_schema_new) holds a node
    per subschema with its keywords already looked up, its $ref resolved
    and its pattern compiled (sb_schema_node_t), and a subschema without a
    group of keywords skips that group unseen. The readable path is
    written only when a rule breaks; until then the trail is a stack of
    borrowed names and indexes. A located check (sb_schema_check_at) also
    writes the trail as a JSON Pointer then, and keeps the keyword and the
    rule apart from the sentence.

    Every check is bounded: SB_MAX_SCHEMA_WORK steps in all, subschemas
    open at once (SB_MAX_SCHEMA_EVAL_DEPTH, which stops $ref loops), the
    value's nesting (SB_MAX_SCHEMA_DEPTH) and each regular expression
    match (sb_schema_format.c). Load-time validation is in
    sb_schema_load.c; formats and regexes in sb_schema_format.c. */
#include "sb_schema_int.h"
#include "sb_attr.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One step of the trail from the arguments to the field being checked.
typedef struct {
    const char *key;                        /* a member's name (borrowed), or NULL */
    size_t index;                           /* an item's index, when key is NULL */
} s_frame_t;

//  Steps a trail can hold. A member or item is entered only to be checked
//  by s_eval_child, which refuses to go past SB_MAX_SCHEMA_DEPTH levels of
//  the value, so the trail is at most one step longer than that: the
//  member entered last, or a missing member being named.
#define S_MAX_FRAMES (SB_MAX_SCHEMA_DEPTH + 1)

//  One check in progress.
typedef struct {
    const json_t *root;                     /* the whole schema, for $ref */
    const sb_schema_anchors_t *anchors;     /* its $anchors, for $ref "#name" */
    const sb_schema_regexes_t *compiled;    /* patterns compiled at load, or NULL */
    const sb_schema_program_t *program;     /* nodes made at load, or NULL */
    sb_schema_regexes_t *scratch;           /* patterns compiled during this check, or
                                               NULL to compile each one for its match */
    sb_schema_matcher_t matcher;            /* what this check's matches use */
    size_t work;                            /* steps left */
    int eval_depth;                         /* subschemas open */
    int value_depth;                        /* nesting of the value being checked */
    s_frame_t frame [S_MAX_FRAMES];         /* the trail to the field being checked */
    size_t frames;                          /* steps of it, 0 for the arguments */
    char *abort;                            /* sentence when a limit stopped the check */
    bool located;                           /* also tell failures in parts (sb_schema_check_at) */
} s_check_t;

//  Why a value failed a subschema.
typedef struct {
    char *message;                          /* the sentence, NULL on allocation failure */
    size_t path_length;                     /* how deep in the value the rule broke */
    char *expected;                         /* for a type mismatch, what the value must be */
    char *missing;                          /* for a missing member, its path */
    size_t missing_at;                      /* path length of the object that lacks it */
    const char *missing_key;                /* for a missing member, its name (borrowed) */
    const char *keyword;                    /* the keyword whose rule broke (static) */
    char *pointer;                          /* located checks: JSON Pointer to the value */
    char *rule;                             /* located checks: the rule, without place or period */
} s_error_t;

#define SB_SCHEMA_FAIL_COST 50              /* steps a failure (its sentence) counts for */
#define SB_SCHEMA_MERGED_MAX 8              /* missing members one sentence may name */

#define S_FAIL  -1                          /* the value breaks a rule: error set */
#define S_ABORT -2                          /* a limit stopped the check: ctx->abort set */

struct _sb_schema_t {
    json_t *schema;                         /* the inputSchema, a reference */
    sb_schema_regexes_t regexes;            /* its patterns, compiled */
    sb_schema_anchors_t anchors;            /* its $anchors */
    sb_schema_program_t program;            /* its subschemas, looked up */
    bool any_value;                         /* made by sb_schema_new_any: a value
                                               need not be an object */
};

static int s_eval (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error);

static void
s_error_clear (s_error_t *error)
{
    free (error->message);
    free (error->expected);
    free (error->missing);
    free (error->pointer);
    free (error->rule);
    *error = (s_error_t) { 0 };
}

//  --------------------------------------------------------------------------
//  The trail and the readable path

static void
s_push_key (s_check_t *ctx, const char *key)
{
    //  Never full: see S_MAX_FRAMES.
    assert (ctx->frames < S_MAX_FRAMES);
    ctx->frame [ctx->frames++] = (s_frame_t) { .key = key };
}

static void
s_push_index (s_check_t *ctx, size_t index)
{
    assert (ctx->frames < S_MAX_FRAMES);
    ctx->frame [ctx->frames++] = (s_frame_t) { .index = index };
}

static void
s_pop (s_check_t *ctx)
{
    ctx->frames--;
}

//  Writes the readable path of the first `frames` steps of the trail into
//  `path` (SB_MAX_SCHEMA_PATH bytes): "" for none, "contact.email",
//  "items[2]". Returns its length. Pushing the same steps one by one as
//  the walk goes, and cutting back on the way out, would write the same.
static size_t
s_path (const s_check_t *ctx, size_t frames, char *path)
{
    path [0] = 0;
    for (size_t i = 0; i < frames; i++)
        if (ctx->frame [i].key)
            sb_schema_path_push_key (path, SB_MAX_SCHEMA_PATH, ctx->frame [i].key);
        else
            sb_schema_path_push_index (path, SB_MAX_SCHEMA_PATH, ctx->frame [i].index);
    return strlen (path);
}

//  The JSON Pointer (RFC 6901) of the first `frames` steps of the trail:
//  "" for none, "/tools/3/request" ('~' and '/' in names as ~0 and ~1).
//  A new string, or NULL when out of memory.
static char *
s_pointer (const s_check_t *ctx, size_t frames)
{
    size_t size = 1;
    for (size_t i = 0; i < frames; i++)
        size += ctx->frame [i].key ? 1 + 2 * strlen (ctx->frame [i].key) : 24;
    char *pointer = malloc (size);
    if (!pointer)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < frames; i++) {
        const char *key = ctx->frame [i].key;
        if (!key) {
            used += (size_t) snprintf (pointer + used, size - used, "/%zu", ctx->frame [i].index);
            continue;
        }
        pointer [used++] = '/';
        for (; *key; key++)
            if (*key == '~' || *key == '/') {
                pointer [used++] = '~';
                pointer [used++] = *key == '~' ? '0' : '1';
            }
            else
                pointer [used++] = *key;
    }
    pointer [used] = 0;
    return pointer;
}

//  Fails the check with "Argument '<path>' <rule>" (or "The arguments
//  <rule>" at the top), broken by `keyword`; a located check also keeps
//  the place as a JSON Pointer and the rule on its own.
static int
s_fail (s_check_t *ctx, s_error_t *error, const char *keyword, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (s_check_t *ctx, s_error_t *error, const char *keyword, const char *fmt, ...)
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
    char path [SB_MAX_SCHEMA_PATH];
    size_t length = s_path (ctx, ctx->frames, path);
    if (rule)
        error->message = path [0] ? sb_strfmt ("Argument '%s' %s", path, rule)
                                  : sb_strfmt ("The arguments %s", rule);
    error->path_length = length;
    error->keyword = keyword;
    if (ctx->located && rule) {
        size_t end = strlen (rule);
        if (end > 0 && rule [end - 1] == '.')
            rule [end - 1] = 0;
        error->pointer = s_pointer (ctx, ctx->frames);
        error->rule = rule;
        rule = NULL;
    }
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
    if (depth > SB_MAX_EQUAL_DEPTH) {
        char path [SB_MAX_SCHEMA_PATH];
        s_path (ctx, ctx->frames, path);
        return s_abort (ctx, "Argument '%s' is nested too deeply to compare (more than %d "
                             "levels).", path, SB_MAX_EQUAL_DEPTH);
    }
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
        json_object_foreach (sb_unconst (a), key, member) {
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
//  The rules, one function per group of keywords, each reading the
//  keywords of `node`, the subschema being applied. Each returns 0, S_FAIL
//  or S_ABORT.

static int
s_rule_ref (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value, s_error_t *error)
{
    const char *ref = json_string_value (node->keyword [SB_KW_REF]);
    if (!ref)
        return 0;
    if (!node->ref)
        return s_abort (ctx, "This tool's input schema is broken ($ref \"%.64s\" points "
                             "nowhere); the arguments cannot be checked.", ref);
    return s_eval (ctx, node->ref, value, error);
}

//  The SB_TYPE_* bits of `value`: an integer is a number, and so is a real
//  with no fraction (within 2^53, where a double still counts in ones).
static unsigned
s_value_types (const json_t *value)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT:
            return SB_TYPE_OBJECT;
        case JSON_ARRAY:
            return SB_TYPE_ARRAY;
        case JSON_STRING:
            return SB_TYPE_STRING;
        case JSON_INTEGER:
            return SB_TYPE_INTEGER | SB_TYPE_NUMBER;
        case JSON_REAL: {
            double number = json_real_value (value);
            bool whole = number > -9007199254740992.0 && number < 9007199254740992.0
                      && floor (number) == number;
            return SB_TYPE_NUMBER | (whole ? SB_TYPE_INTEGER : 0);
        }
        case JSON_TRUE:
        case JSON_FALSE:
            return SB_TYPE_BOOLEAN;
        case JSON_NULL:
            return SB_TYPE_NULL;
    }
    return 0;
}

static const char *
s_type_phrase (const char *type)
{
    if (strcmp (type, "null") == 0)
        return "null";
    return strchr ("aeiou", type [0]) ? "an " : "a ";
}

static int
s_rule_type (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
             s_error_t *error)
{
    if (node->types & s_value_types (value))
        return 0;
    //  Only a type name or an array of them gets here (sb_schema_node_t):
    //  say what the value must be, in the schema's order.
    const json_t *type = node->keyword [SB_KW_TYPE];
    char expected [160] = "";
    if (json_is_string (type))
        snprintf (expected, sizeof expected, "%s%s", s_type_phrase (json_string_value (type)),
                  strcmp (json_string_value (type), "null") ? json_string_value (type) : "");
    else {
        size_t index;
        json_t *item;
        json_array_foreach (type, index, item) {
            const char *name = json_string_value (item);
            if (!name)
                return 0;
            size_t used = strlen (expected);
            snprintf (expected + used, sizeof expected - used, "%s%s%s",
                      index ? " or " : "", s_type_phrase (name),
                      strcmp (name, "null") ? name : "");
        }
    }
    s_fail (ctx, error, "type", "must be %s.", expected);
    error->expected = strdup (expected);
    return S_FAIL;
}

static int
s_rule_enum (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
             s_error_t *error)
{
    const json_t *list = node->keyword [SB_KW_ENUM];
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
            s_fail (ctx, error, "enum", "must be one of %s.", text ? text : "the allowed values");
            free (text);
            return S_FAIL;
        }
    }
    const json_t *constant = node->keyword [SB_KW_CONST];
    if (constant) {
        int same = s_equal (ctx, value, constant, 0);
        if (same == S_ABORT)
            return S_ABORT;
        if (!same) {
            char *text = sb_schema_quote (constant);
            s_fail (ctx, error, "const", "must be exactly %s.", text ? text : "the allowed value");
            free (text);
            return S_FAIL;
        }
    }
    return 0;
}

static int
s_rule_number (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
               s_error_t *error)
{
    if (!json_is_number (value))
        return 0;
    static const struct {
        sb_schema_kw_t keyword;         /* the bound */
        const char *name;               /* its name */
        int side;                       /* -1 a lower bound, 1 an upper one */
        bool inclusive;                 /* the bound itself is allowed */
        const char *rule;               /* the sentence, up to the bound */
    } bounds [] = {
        { SB_KW_MINIMUM, "minimum",                    -1, true,  "must be at least" },
        { SB_KW_MAXIMUM, "maximum",                     1, true,  "must be at most" },
        { SB_KW_EXCLUSIVE_MINIMUM, "exclusiveMinimum", -1, false, "must be greater than" },
        { SB_KW_EXCLUSIVE_MAXIMUM, "exclusiveMaximum",  1, false, "must be less than" },
    };
    char text [64];
    for (size_t i = 0; i < sizeof bounds / sizeof bounds [0]; i++) {
        const json_t *bound = node->keyword [bounds [i].keyword];
        if (!json_is_number (bound))
            continue;
        int order = s_compare (value, bound);
        if (order == bounds [i].side || (order == 0 && !bounds [i].inclusive)) {
            sb_schema_number_text (bound, text, sizeof text);
            return s_fail (ctx, error, bounds [i].name, "%s %s.", bounds [i].rule, text);
        }
    }
    const json_t *step = node->keyword [SB_KW_MULTIPLE_OF];
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
            return s_fail (ctx, error, "multipleOf", "must be a multiple of %s.", text);
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
        code = sb_schema_regexes_find (ctx->scratch, id);
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
    if (ctx->scratch && ctx->scratch->count < SB_MAX_SCHEMA_PATTERNS) {
        ctx->scratch->id [ctx->scratch->count] = id;
        ctx->scratch->code [ctx->scratch->count++] = code;
    }
    else
        *temporary = true;
    return code;
}

//  Searches `text` for the pattern held by `id`, with `code` when it was
//  found at load (else looked up or compiled now): 1 found, 0 not, S_ABORT.
static int
s_search (s_check_t *ctx, pcre2_code *code, const void *id, const char *pattern,
          const char *text, size_t length)
{
    if (s_spend (ctx, SB_SCHEMA_MATCH_COST + length / 64))
        return S_ABORT;
    bool temporary = false;
    if (!code)
        code = s_regex (ctx, id, pattern, strlen (pattern), &temporary);
    if (!code)
        return S_ABORT;
    int rc = sb_schema_regex_search (&ctx->matcher, code, text, length);
    if (temporary)
        pcre2_code_free (code);
    if (rc < 0) {
        char path [SB_MAX_SCHEMA_PATH];
        s_path (ctx, ctx->frames, path);
        return s_abort (ctx, "Argument '%s' is too long or complex to check against the "
                             "pattern %.100s; send a shorter, simpler value.",
                        path [0] ? path : "(name)", pattern);
    }
    return rc;
}

//  A count keyword's value (minLength, maxItems, minContains…): an integer,
//  or a real with no fraction (2.0 is the integer 2 in JSON Schema, and
//  the load let nothing else through); -1 when the keyword is absent.
static json_int_t
s_count (const json_t *bound)
{
    if (json_is_integer (bound))
        return json_integer_value (bound);
    return json_is_real (bound) ? (json_int_t) json_real_value (bound) : -1;
}

static int
s_rule_string (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
               s_error_t *error)
{
    if (!json_is_string (value))
        return 0;
    const char *text = json_string_value (value);
    size_t bytes = json_string_length (value);
    json_int_t least = s_count (node->keyword [SB_KW_MIN_LENGTH]);
    json_int_t most = s_count (node->keyword [SB_KW_MAX_LENGTH]);
    if (least >= 0 || most >= 0) {
        size_t length = sb_schema_utf8_length (text, bytes);
        if (least >= 0 && (json_int_t) length < least)
            return s_fail (ctx, error, "minLength", "must be at least %" JSON_INTEGER_FORMAT
                           " characters long.", least);
        if (most >= 0 && (json_int_t) length > most)
            return s_fail (ctx, error, "maxLength", "must be at most %" JSON_INTEGER_FORMAT
                           " characters long.", most);
    }
    const json_t *pattern = node->keyword [SB_KW_PATTERN];
    if (json_is_string (pattern)) {
        int rc = s_search (ctx, node->pattern, pattern, json_string_value (pattern), text, bytes);
        if (rc == S_ABORT)
            return S_ABORT;
        if (rc == 0)
            return s_fail (ctx, error, "pattern", "must match the pattern %s.", json_string_value (pattern));
    }
    const char *format = json_string_value (node->keyword [SB_KW_FORMAT]);
    if (format && !sb_schema_format_ok (format, text, bytes))
        return s_fail (ctx, error, "format", "must be %s.", sb_schema_format_phrase (format));
    return 0;
}

//  Checks one member or item: its name or index is already on the trail.
static int
s_eval_child (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    if (ctx->value_depth >= SB_MAX_SCHEMA_DEPTH) {
        char path [SB_MAX_SCHEMA_PATH];
        s_path (ctx, ctx->frames, path);
        return s_abort (ctx, "Argument '%s' is nested too deeply (more than %d levels).",
                        path, SB_MAX_SCHEMA_DEPTH);
    }
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
s_rule_array (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
              s_error_t *error)
{
    if (!json_is_array (value))
        return 0;
    size_t size = json_array_size (value);
    json_int_t bound = s_count (node->keyword [SB_KW_MIN_ITEMS]);
    if (bound >= 0 && (json_int_t) size < bound)
        return s_fail (ctx, error, "minItems", "must have at least %" JSON_INTEGER_FORMAT " %s.",
                       bound, s_plural (bound, "item", "items"));
    bound = s_count (node->keyword [SB_KW_MAX_ITEMS]);
    if (bound >= 0 && (json_int_t) size > bound)
        return s_fail (ctx, error, "maxItems", "must have at most %" JSON_INTEGER_FORMAT " %s.",
                       bound, s_plural (bound, "item", "items"));
    if (json_is_true (node->keyword [SB_KW_UNIQUE_ITEMS]) && size > 1) {
        if (s_spend (ctx, size * (size - 1) / 2))
            return S_ABORT;
        for (size_t i = 0; i < size; i++)
            for (size_t j = i + 1; j < size; j++) {
                int same = s_equal (ctx, json_array_get (value, i),
                                    json_array_get (value, j), 0);
                if (same == S_ABORT)
                    return S_ABORT;
                if (same)
                    return s_fail (ctx, error, "uniqueItems", "must not hold the same item twice (items %zu "
                                   "and %zu are equal).", i, j);
            }
    }
    const json_t *prefix = node->keyword [SB_KW_PREFIX_ITEMS];
    size_t prefixed = json_is_array (prefix) ? json_array_size (prefix) : 0;
    const json_t *items = node->keyword [SB_KW_ITEMS];
    if (json_is_false (items) && size > prefixed)
        return s_fail (ctx, error, "items", "must have at most %zu %s.", prefixed,
                       s_plural ((json_int_t) prefixed, "item", "items"));
    for (size_t i = 0; i < size; i++) {
        const json_t *item_schema = i < prefixed ? json_array_get (prefix, i) : items;
        if (!item_schema)
            break;
        s_push_index (ctx, i);
        int rc = s_eval_child (ctx, item_schema, json_array_get (value, i), error);
        s_pop (ctx);
        if (rc)
            return rc;
    }
    const json_t *contains = node->keyword [SB_KW_CONTAINS];
    if (contains) {
        json_int_t least = 1, most = s_count (node->keyword [SB_KW_MAX_CONTAINS]), count = 0;
        if (s_count (node->keyword [SB_KW_MIN_CONTAINS]) >= 0)
            least = s_count (node->keyword [SB_KW_MIN_CONTAINS]);
        for (size_t i = 0; i < size; i++) {
            s_error_t ignored = { 0 };
            s_push_index (ctx, i);
            int rc = s_eval_child (ctx, contains, json_array_get (value, i), &ignored);
            s_pop (ctx);
            s_error_clear (&ignored);
            if (rc == S_ABORT)
                return S_ABORT;
            count += rc == 0;
        }
        if (count < least || (most >= 0 && count > most)) {
            char *text = sb_schema_quote (contains);
            if (count < least)
                s_fail (ctx, error, node->keyword [SB_KW_MIN_CONTAINS] ? "minContains" : "contains",
                        "must hold at least %" JSON_INTEGER_FORMAT " %s matching %s.",
                        least, s_plural (least, "item", "items"), text ? text : "its schema");
            else
                s_fail (ctx, error, "maxContains", "must hold at most %" JSON_INTEGER_FORMAT " %s matching %s.",
                        most, s_plural (most, "item", "items"), text ? text : "its schema");
            free (text);
            return S_FAIL;
        }
    }
    return 0;
}

//  Checks one member against properties, patternProperties and
//  additionalProperties: its name is on top of the trail.
static int
s_check_member (s_check_t *ctx, const sb_schema_node_t *node, const char *key,
                const json_t *member, s_error_t *error)
{
    bool matched = false;
    const json_t *property = json_object_get (node->keyword [SB_KW_PROPERTIES], key);
    if (property) {
        matched = true;
        int rc = s_eval_child (ctx, property, member, error);
        if (rc)
            return rc;
    }
    const json_t *patterns = node->keyword [SB_KW_PATTERN_PROPERTIES];
    if (json_is_object (patterns)) {
        const char *pattern;
        json_t *pattern_schema;
        json_object_foreach (sb_unconst (patterns), pattern, pattern_schema) {
            int found = s_search (ctx, NULL, pattern, pattern, key, strlen (key));
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
    const json_t *additional = node->keyword [SB_KW_ADDITIONAL_PROPERTIES];
    if (!matched && json_is_false (additional)) {
        char parent [SB_MAX_SCHEMA_PATH];
        if (ctx->located)
            return s_fail (ctx, error, "additionalProperties", "is not an allowed member here.");
        if (s_path (ctx, ctx->frames - 1, parent))
            return s_fail (ctx, error, "additionalProperties",
                           "is not allowed: '%s' has no such field.", parent);
        return s_fail (ctx, error, "additionalProperties",
                       "is not allowed: this tool takes no such argument.");
    }
    if (!matched && additional)
        return s_eval_child (ctx, additional, member, error);
    return 0;
}

static int
s_rule_object (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
               s_error_t *error)
{
    if (!json_is_object (value))
        return 0;
    int rc = 0;
    size_t index;
    json_t *item;
    json_array_foreach (node->keyword [SB_KW_REQUIRED], index, item) {
        const char *name = json_string_value (item);
        if (name && !json_object_get (value, name)) {
            char path [SB_MAX_SCHEMA_PATH];
            size_t old = s_path (ctx, ctx->frames, path);
            s_push_key (ctx, name);
            rc = s_fail (ctx, error, "required", "is required.");
            error->missing_key = name;
            s_path (ctx, ctx->frames, path);
            error->missing = strdup (path);
            //  A branch that lacks a member got only as far as the object.
            error->missing_at = error->path_length = old;
            s_pop (ctx);
            return rc;
        }
    }
    json_int_t size = (json_int_t) json_object_size (value);
    json_int_t bound = s_count (node->keyword [SB_KW_MIN_PROPERTIES]);
    if (bound >= 0 && size < bound)
        return s_fail (ctx, error, "minProperties", "must have at least %" JSON_INTEGER_FORMAT " %s.",
                       bound, s_plural (bound, "field", "fields"));
    bound = s_count (node->keyword [SB_KW_MAX_PROPERTIES]);
    if (bound >= 0 && size > bound)
        return s_fail (ctx, error, "maxProperties", "must have at most %" JSON_INTEGER_FORMAT " %s.",
                       bound, s_plural (bound, "field", "fields"));

    const char *key;
    json_t *list;
    json_object_foreach (sb_unconst (node->keyword [SB_KW_DEPENDENT_REQUIRED]), key, list) {
        if (!json_object_get (value, key))
            continue;
        json_array_foreach (list, index, item) {
            const char *name = json_string_value (item);
            if (name && !json_object_get (value, name)) {
                char given [SB_MAX_SCHEMA_PATH];
                s_path (ctx, ctx->frames, given);
                sb_schema_path_push_key (given, sizeof given, key);
                s_push_key (ctx, name);
                rc = s_fail (ctx, error, "dependentRequired", "is required when '%s' is given.", given);
                s_pop (ctx);
                return rc;
            }
        }
    }
    const json_t *names = node->keyword [SB_KW_PROPERTY_NAMES];
    bool members = names || node->keyword [SB_KW_PROPERTIES]
                || node->keyword [SB_KW_PATTERN_PROPERTIES]
                || node->keyword [SB_KW_ADDITIONAL_PROPERTIES];
    json_t *member;
    if (members)
        json_object_foreach (sb_unconst (value), key, member) {
            s_push_key (ctx, key);
            rc = s_check_member (ctx, node, key, member, error);
            if (!rc && names) {
                json_t *name = json_string (key);
                rc = name ? s_eval (ctx, names, name, error)
                          : s_abort (ctx, "The arguments could not be checked (out of memory).");
                json_decref (name);
            }
            s_pop (ctx);
            if (rc)
                return rc;
        }
    json_t *subschema;
    json_object_foreach (sb_unconst (node->keyword [SB_KW_DEPENDENT_SCHEMAS]), key, subschema)
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
    if (count > SB_SCHEMA_MERGED_MAX)
        return 0;
    char path [SB_MAX_SCHEMA_PATH];
    size_t here = s_path (ctx, ctx->frames, path);
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
    error->keyword = "required";
    if (ctx->located) {
        //  The object that lacks them, and their names alone: "must have
        //  "phone" or "email"".
        char keys [SB_MAX_SCHEMA_PATH * 2] = "";
        for (size_t j = 0; j < listed; j++) {
            size_t used = strlen (keys);
            snprintf (keys + used, sizeof keys - used, "%s\"%s\"",
                      j == 0 ? "" : j + 1 == listed ? " or " : ", ",
                      errors [distinct [j]].missing_key ? errors [distinct [j]].missing_key : "?");
        }
        error->pointer = s_pointer (ctx, ctx->frames);
        error->rule = sb_strfmt ("must have %s", keys);
    }
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
    char path [SB_MAX_SCHEMA_PATH];
    size_t here = s_path (ctx, ctx->frames, path);
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
        s_fail (ctx, error, "type", "must be %s.", expected);
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
            rc = s_fail (ctx, error, "oneOf", "fits more than one of the allowed forms (forms %zu and "
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
s_rule_logic (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
              s_error_t *error)
{
    int rc;
    size_t index;
    json_t *branch;
    json_array_foreach (node->keyword [SB_KW_ALL_OF], index, branch) {
        rc = s_eval (ctx, branch, value, error);
        if (rc)
            return rc;
    }
    const json_t *branches = node->keyword [SB_KW_ANY_OF];
    if (json_is_array (branches) && (rc = s_rule_choice (ctx, branches, false, value, error)))
        return rc;
    branches = node->keyword [SB_KW_ONE_OF];
    if (json_is_array (branches) && (rc = s_rule_choice (ctx, branches, true, value, error)))
        return rc;
    const json_t *negated = node->keyword [SB_KW_NOT];
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
                s_fail (ctx, error, "not", "must not be %s.", text ? text : "this value");
            else
            if (list)
                s_fail (ctx, error, "not", "must not be any of %s.", text ? text : "these values");
            else
                s_fail (ctx, error, "not", "must not match %s.", text ? text : "this schema");
            free (text);
            return S_FAIL;
        }
    }
    const json_t *condition = node->keyword [SB_KW_IF];
    if (condition) {
        s_error_t ignored = { 0 };
        rc = s_eval (ctx, condition, value, &ignored);
        s_error_clear (&ignored);
        if (rc == S_ABORT)
            return S_ABORT;
        const json_t *then = node->keyword [rc == 0 ? SB_KW_THEN : SB_KW_ELSE];
        if (then)
            return s_eval (ctx, then, value, error);
    }
    return 0;
}

//  Applies the subschema of `node` to `value`: the rules in a fixed order
//  (the first broken one is the error), each group only when the
//  subschema has a keyword of it and the value is of its type.
static int
s_eval_node (s_check_t *ctx, const sb_schema_node_t *node, const json_t *value,
             s_error_t *error)
{
    int rc = s_rule_ref (ctx, node, value, error);
    if (!rc)
        rc = s_rule_type (ctx, node, value, error);
    if (!rc && (node->rules & SB_RULES_ENUM))
        rc = s_rule_enum (ctx, node, value, error);
    if (!rc && (node->rules & SB_RULES_NUMBER))
        rc = s_rule_number (ctx, node, value, error);
    if (!rc && (node->rules & SB_RULES_STRING))
        rc = s_rule_string (ctx, node, value, error);
    if (!rc && (node->rules & SB_RULES_ARRAY))
        rc = s_rule_array (ctx, node, value, error);
    if (!rc && (node->rules & SB_RULES_OBJECT))
        rc = s_rule_object (ctx, node, value, error);
    if (!rc && (node->rules & SB_RULES_LOGIC))
        rc = s_rule_logic (ctx, node, value, error);
    return rc;
}

//  The node made at load for `schema`, or NULL.
static const sb_schema_node_t *
s_node_find (const sb_schema_program_t *program, const json_t *schema)
{
    if (!program || !program->slot)
        return NULL;
    //  At most half the slots are used: the probe always meets a free one.
    for (size_t slot = sb_schema_program_hash (program, schema); program->slot [slot];
         slot = (slot + 1) & program->mask)
        if (program->slot [slot]->schema == schema)
            return program->slot [slot];
    return NULL;
}

//  Applies a subschema that has no node made at load (sb_schema_check):
//  its keywords are looked up now. Apart, so that the node's room on the
//  stack is taken only here.
static int __attribute__ ((noinline))
s_eval_unloaded (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    sb_schema_node_t node;
    sb_schema_node_fill (&node, schema, ctx->root, ctx->anchors, NULL);
    return s_eval_node (ctx, &node, value, error);
}

static int
s_eval (s_check_t *ctx, const json_t *schema, const json_t *value, s_error_t *error)
{
    if (json_is_true (schema))
        return 0;
    if (json_is_false (schema))
        return s_fail (ctx, error, "false", "is not allowed.");
    if (!json_is_object (schema))
        return 0;
    if (s_spend (ctx, 1))
        return S_ABORT;
    if (ctx->eval_depth >= SB_MAX_SCHEMA_EVAL_DEPTH)
        return s_abort (ctx, "This tool's input schema nests or refers to itself too deeply "
                             "to check these arguments.");
    ctx->eval_depth++;
    const sb_schema_node_t *node = s_node_find (ctx->program, schema);
    int rc = node ? s_eval_node (ctx, node, value, error)
                  : s_eval_unloaded (ctx, schema, value, error);
    ctx->eval_depth--;
    return rc;
}

//  --------------------------------------------------------------------------
//  Public API

//  Checks `value`; `compiled`, `anchors` and `program` come from
//  sb_schema_new, or are NULL to find anchors and look keywords up during
//  this check and compile patterns into `scratch`.
static int
s_run (const json_t *schema, const sb_schema_regexes_t *compiled,
       const sb_schema_anchors_t *anchors, const sb_schema_program_t *program,
       sb_schema_regexes_t *scratch, bool any_value, const json_t *value, char **error)
{
    *error = NULL;
    if (any_value ? !value : !json_is_object (value)) {
        *error = strdup ("Arguments must be a JSON object.");
        return -1;
    }
    s_check_t ctx = { .root = schema, .anchors = anchors, .compiled = compiled,
                      .program = program, .scratch = scratch, .work = SB_MAX_SCHEMA_WORK };
    sb_schema_anchors_t found;
    if (!anchors) {
        sb_schema_anchors_collect (schema, &found);
        ctx.anchors = &found;
    }
    s_error_t failure = { 0 };
    int rc = s_eval (&ctx, schema, value, &failure);
    sb_schema_matcher_clear (&ctx.matcher);
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
    sb_schema_regexes_t scratch = { .count = 0 };
    int rc = s_run (schema, NULL, NULL, NULL, &scratch, false, value, error);
    sb_schema_regexes_clear (&scratch);
    return rc;
}

//  sb_schema_new, or sb_schema_new_any when `any_value`.
static sb_schema_t *
s_new (const json_t *schema, const char *where, char **why, bool any_value)
{
    sb_schema_t *self = calloc (1, sizeof *self);
    if (!self) {
        *why = sb_strfmt ("%s: out of memory", where);
        return NULL;
    }
    if (sb_schema_load (schema, where, why, &self->regexes, &self->anchors, &self->program,
                        any_value)) {
        sb_schema_destroy (&self);
        return NULL;
    }
    self->schema = json_incref (sb_unconst (schema));
    self->any_value = any_value;
    return self;
}

sb_schema_t *
sb_schema_new (const json_t *schema, const char *where, char **why)
{
    return s_new (schema, where, why, false);
}

sb_schema_t *
sb_schema_new_any (const json_t *schema, const char *where, char **why)
{
    return s_new (schema, where, why, true);
}

void
sb_schema_destroy (sb_schema_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_schema_t *self = *self_p;
    sb_schema_regexes_clear (&self->regexes);
    sb_schema_program_clear (&self->program);
    json_decref (self->schema);
    free (self);
    *self_p = NULL;
}

int
sb_schema_check_compiled (const sb_schema_t *self, const json_t *value, char **error)
{
    //  Every pattern was compiled at load: no scratch.
    return s_run (self->schema, &self->regexes, &self->anchors, &self->program, NULL,
                  self->any_value, value, error);
}

int
sb_schema_check_at (const sb_schema_t *self, const json_t *value, sb_schema_failure_t *failure)
{
    *failure = (sb_schema_failure_t) { 0 };
    s_check_t ctx = { .root = self->schema, .anchors = &self->anchors,
                      .compiled = &self->regexes, .program = &self->program,
                      .work = SB_MAX_SCHEMA_DOC_WORK, .located = true };
    s_error_t error = { 0 };
    int rc = s_eval (&ctx, self->schema, value, &error);
    sb_schema_matcher_clear (&ctx.matcher);
    if (rc == S_ABORT) {
        //  Its sentence speaks of arguments: say what stopped it instead.
        failure->pointer = strdup ("");
        failure->rule = strdup ("is too large, too deeply nested or too complex to check "
                                "(the checker's limits)");
    }
    else
    if (rc) {
        failure->pointer = error.pointer;
        failure->keyword = error.keyword;
        failure->rule = error.rule;
        error.pointer = error.rule = NULL;
    }
    s_error_clear (&error);
    free (ctx.abort);
    if (rc && (!failure->pointer || !failure->rule)) {
        sb_schema_failure_clear (failure);
        failure->pointer = strdup ("");
        failure->rule = strdup ("could not be checked (out of memory)");
    }
    return rc ? -1 : 0;
}

void
sb_schema_failure_clear (sb_schema_failure_t *failure)
{
    free (failure->pointer);
    free (failure->rule);
    *failure = (sb_schema_failure_t) { 0 };
}
