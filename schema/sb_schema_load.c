/*  schema/sb_schema_load.c — load-time checks of a tool's inputSchema:
    is it a JSON Schema that sb_schema.c can enforce? Every keyword it
    enforces must have the right JSON type, every subschema must be a
    schema, every pattern must compile, every $anchor must be a plain name
    used once, every $ref must point at a subschema of the same document
    (by JSON pointer or by $anchor), and no chain of $ref / allOf / anyOf /
    oneOf / not / if may come back to where it started without descending
    into the value (it would never end). An "x-mcp-header" annotation
    (MCP 2026-07-28, SEP-2243) must be a header-name token, unique in any
    case, on a string, integer or boolean property reached from the top
    through "properties" alone: clients drop a tool that breaks these rules. Errors name the place by its path
    in the schema: `where: inputSchema.properties.limit.maximum must be a
    number`.

    Two passes over the schema tree: the first checks keywords, counts and
    records every subschema and $anchor; the second, with all of them
    known, checks $ref targets and looks for loops. For a compiled checker
    (sb_schema_new) a last step turns every object subschema recorded into
    a node (sb_schema_node_t): its keywords looked up, its $ref resolved,
    its pattern's code found, so that a check asks the schema nothing by
    name. */
#include "sb_schema_int.h"
#include "sb_attr.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_TABLE_SIZE 4096           /* slots of the subschema table, > 2 × SB_MAX_SCHEMA_NODES */

//  A subschema seen in pass 1 and its state in the loop search of pass 2.
typedef struct {
    const json_t *node;             /* the subschema, NULL for a free slot */
    int state;                      /* 0 not searched, 1 being searched, 2 searched */
} s_slot_t;

//  One load in progress.
typedef struct {
    const json_t *root;             /* the inputSchema */
    const char *where;              /* prefix of every message */
    char **why;                     /* the message */
    sb_schema_regexes_t *regexes;   /* where to keep compiled patterns, or NULL */
    sb_schema_anchors_t anchors;    /* every $anchor seen */
    const char *headers [SB_MAX_SCHEMA_HEADERS];    /* every x-mcp-header seen */
    size_t header_count;            /* entries of headers used */
    bool reachable;                 /* the schema walked is reached from the top through
                                       "properties" alone (or is the top) */
    size_t nodes;                   /* subschemas seen */
    size_t patterns;                /* patterns compiled */
    int pass;                       /* 1 keywords, 2 $ref targets and loops */
    s_slot_t *table;                /* every subschema, by address */
    char path [SB_MAX_SCHEMA_PATH]; /* where in the schema we are */
} s_load_t;

static int
s_bad (s_load_t *ld, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

//  Fails the load: "<where>: <path> <problem>".
static int
s_bad (s_load_t *ld, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *problem = NULL;
    if (vasprintf (&problem, fmt, ap) < 0)
        problem = NULL;
    va_end (ap);
    *ld->why = sb_strfmt ("%s: %s %s", ld->where, ld->path,
                                 problem ? problem : "is not valid");
    free (problem);
    return -1;
}

static s_slot_t *
s_slot (s_load_t *ld, const json_t *node, bool insert)
{
    size_t index = (size_t) (((uintptr_t) node >> 4) * 0x9E3779B97F4A7C15ull) % S_TABLE_SIZE;
    while (ld->table [index].node && ld->table [index].node != node)
        index = (index + 1) % S_TABLE_SIZE;
    if (!ld->table [index].node) {
        if (!insert)
            return NULL;
        ld->table [index].node = node;
    }
    return &ld->table [index];
}

//  --------------------------------------------------------------------------
//  Keyword checks

static int
s_walk (s_load_t *ld, const json_t *node, int depth);

//  Checks the subschema at `node`, with `key` (and `index` when not -1, or
//  `name` when not NULL) pushed on the path.
static int
s_walk_at (s_load_t *ld, const json_t *node, const char *key, long index, const char *name,
           int depth)
{
    size_t old = sb_schema_path_push_key (ld->path, sizeof ld->path, key);
    if (index >= 0)
        sb_schema_path_push_index (ld->path, sizeof ld->path, (size_t) index);
    if (name)
        sb_schema_path_push_key (ld->path, sizeof ld->path, name);
    bool reachable = ld->reachable;
    ld->reachable = reachable && name && strcmp (key, "properties") == 0;
    int rc = s_walk (ld, node, depth + 1);
    ld->reachable = reachable;
    ld->path [old] = 0;
    return rc;
}

//  Fails with `key` pushed on the path.
static int
s_bad_key (s_load_t *ld, const char *key, const char *problem)
{
    sb_schema_path_push_key (ld->path, sizeof ld->path, key);
    return s_bad (ld, "%s", problem);
}

//  An RFC 9110 tchar: what an HTTP field name is made of.
static bool
s_tchar (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

static bool
s_known_type (const char *name)
{
    static const char *const types [] = {
        "string", "integer", "number", "boolean", "object", "array", "null", NULL
    };
    for (size_t i = 0; name && types [i]; i++)
        if (strcmp (name, types [i]) == 0)
            return true;
    return false;
}

static int
s_check_type (s_load_t *ld, const json_t *type)
{
    static const char *const known = "is not a JSON Schema type (string, integer, number, "
                                     "boolean, object, array, null)";
    if (json_is_string (type)) {
        if (!s_known_type (json_string_value (type))) {
            sb_schema_path_push_key (ld->path, sizeof ld->path, "type");
            return s_bad (ld, "\"%.64s\" %s", json_string_value (type), known);
        }
        return 0;
    }
    if (!json_is_array (type) || json_array_size (type) == 0)
        return s_bad_key (ld, "type", "must be a type name or a non-empty array of type names");
    size_t index;
    json_t *item;
    json_array_foreach (type, index, item) {
        if (!json_is_string (item))
            return s_bad_key (ld, "type", "must be a type name or a non-empty array of type names");
        if (!s_known_type (json_string_value (item))) {
            sb_schema_path_push_key (ld->path, sizeof ld->path, "type");
            return s_bad (ld, "\"%.64s\" %s", json_string_value (item), known);
        }
        for (size_t j = 0; j < index; j++)
            if (json_equal (item, json_array_get (type, j)))
                return s_bad_key (ld, "type", "names the same type twice");
    }
    return 0;
}

static int
s_check_strings (s_load_t *ld, const char *key, const json_t *value)
{
    if (!json_is_array (value))
        return s_bad_key (ld, key, "must be an array of strings");
    size_t index;
    json_t *item;
    json_array_foreach (value, index, item)
        if (!json_is_string (item))
            return s_bad_key (ld, key, "must be an array of strings");
    return 0;
}

//  Compiles a pattern held by `id`, keeping it when asked to.
static int
s_check_pattern (s_load_t *ld, const char *key, const void *id, const char *pattern,
                 size_t length)
{
    if (ld->patterns >= SB_MAX_SCHEMA_PATTERNS) {
        sb_schema_path_push_key (ld->path, sizeof ld->path, key);
        return s_bad (ld, "is one pattern too many (at most %d in one inputSchema)",
                      SB_MAX_SCHEMA_PATTERNS);
    }
    char *problem = NULL;
    pcre2_code *code = sb_schema_regex_compile (pattern, length, &problem);
    if (!code) {
        sb_schema_path_push_key (ld->path, sizeof ld->path, key);
        s_bad (ld, "%s", problem ? problem : "is not a valid regular expression");
        free (problem);
        return -1;
    }
    ld->patterns++;
    if (ld->regexes) {
        ld->regexes->id [ld->regexes->count] = id;
        ld->regexes->code [ld->regexes->count++] = code;
    }
    else
        pcre2_code_free (code);
    return 0;
}

//  Keywords whose value is a schema, an array of schemas, a map of schemas.
static const char *const s_schema_keys [] = {
    "additionalProperties", "items", "not", "if", "then", "else", "propertyNames",
    "contains", NULL
};
static const char *const s_list_keys [] = { "allOf", "anyOf", "oneOf", "prefixItems", NULL };
static const char *const s_map_keys [] = {
    "properties", "patternProperties", "$defs", "definitions", "dependentSchemas", NULL
};
static const char *const s_number_keys [] = {
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", NULL
};
static const char *const s_count_keys [] = {
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
    "minContains", "maxContains", NULL
};
static const char *const s_string_keys [] = {
    "format", "$schema", "$comment", "$id", "title", "description", NULL
};
//  Keywords we know and do not enforce: refused, never skipped in silence.
static const struct {
    const char *key;
    const char *advice;
} s_refused [] = {
    { "unevaluatedProperties", "is not supported; use additionalProperties" },
    { "unevaluatedItems",      "is not supported; use items" },
    { "$dynamicRef",           "is not supported; use a local $ref such as \"#/$defs/name\"" },
    { "$recursiveRef",         "is not supported; use a local $ref such as \"#/$defs/name\"" },
    { "additionalItems",       "is draft 2019-09; in 2020-12 use prefixItems and items" },
    { "dependencies",          "is draft 7; in 2020-12 use dependentRequired or dependentSchemas" },
};

static bool
s_in (const char *key, const char *const list [])
{
    for (size_t i = 0; list [i]; i++)
        if (strcmp (key, list [i]) == 0)
            return true;
    return false;
}

//  Records `schema`'s $anchor: a plain name, used once in the document.
static int
s_check_anchor (s_load_t *ld, const json_t *schema, const json_t *value)
{
    if (!json_is_string (value))
        return s_bad_key (ld, "$anchor", "must be a string");
    const char *name = json_string_value (value);
    sb_schema_path_push_key (ld->path, sizeof ld->path, "$anchor");
    if (!sb_schema_anchor_ok (name))
        return s_bad (ld, "\"%.64s\" is not a valid anchor name (a letter or _, then "
                      "letters, digits, -, _ or .)", name);
    for (size_t i = 0; i < ld->anchors.count; i++)
        if (strcmp (ld->anchors.name [i], name) == 0)
            return s_bad (ld, "\"%.64s\" is already the $anchor of another subschema", name);
    if (ld->anchors.count >= SB_MAX_SCHEMA_ANCHORS)
        return s_bad (ld, "is one $anchor too many (at most %d in one inputSchema)",
                      SB_MAX_SCHEMA_ANCHORS);
    ld->anchors.name [ld->anchors.count] = name;
    ld->anchors.node [ld->anchors.count++] = schema;
    return 0;
}

//  Checks an "x-mcp-header" annotation on `schema` (SEP-2243).
static int
s_check_header (s_load_t *ld, const json_t *schema, const json_t *value)
{
    static const char *const key = "x-mcp-header";
    if (!json_is_string (value))
        return s_bad_key (ld, key, "must be a string");
    const char *name = json_string_value (value);
    size_t length = json_string_length (value);
    bool token = length > 0 && length <= SB_MAX_SCHEMA_HEADER_NAME;
    for (size_t i = 0; token && i < length; i++)
        token = s_tchar (name [i]);
    sb_schema_path_push_key (ld->path, sizeof ld->path, key);
    if (!token)
        return s_bad (ld, "must be an HTTP header name: 1 to %d letters, digits or "
                      "!#$%%&'*+-.^_`|~ (no spaces, colons or control characters)",
                      SB_MAX_SCHEMA_HEADER_NAME);
    if (schema == ld->root || !ld->reachable)
        return s_bad (ld, "is only allowed on a property reached from the top through "
                      "\"properties\" alone (not inside items, $defs, $ref, allOf, anyOf, "
                      "oneOf, not or if/then/else)");
    const char *type = json_string_value (json_object_get (schema, "type"));
    if (!type || (strcmp (type, "string") && strcmp (type, "integer") && strcmp (type, "boolean")))
        return s_bad (ld, "is only allowed on a property of type string, integer or boolean");
    for (size_t i = 0; i < ld->header_count; i++)
        if (strcasecmp (ld->headers [i], name) == 0)
            return s_bad (ld, "\"%.64s\" names the same header as another property's "
                          "(header names are compared without case)", name);
    if (ld->header_count >= SB_MAX_SCHEMA_HEADERS)
        return s_bad (ld, "is one x-mcp-header too many (at most %d in one inputSchema)",
                      SB_MAX_SCHEMA_HEADERS);
    ld->headers [ld->header_count++] = name;
    return 0;
}

//  True when `ref` names an $anchor ("#name") rather than a JSON pointer.
static bool
s_is_anchor_ref (const char *ref)
{
    return ref [0] == '#' && ref [1] && ref [1] != '/';
}

//  Pass 1 for one keyword of an object schema.
static int
s_check_keyword (s_load_t *ld, const json_t *schema, const char *key, const json_t *value,
                 int depth)
{
    for (size_t i = 0; i < sizeof s_refused / sizeof s_refused [0]; i++)
        if (strcmp (key, s_refused [i].key) == 0)
            return s_bad_key (ld, key, s_refused [i].advice);
    if (s_in (key, s_schema_keys)) {
        if (strcmp (key, "items") == 0 && json_is_array (value))
            return s_bad_key (ld, key, "must be one schema (in 2020-12 a list of schemas is "
                              "prefixItems)");
        return s_walk_at (ld, value, key, -1, NULL, depth);
    }
    if (s_in (key, s_list_keys)) {
        if (!json_is_array (value) || json_array_size (value) == 0)
            return s_bad_key (ld, key, "must be a non-empty array of schemas");
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item)
            if (s_walk_at (ld, item, key, (long) index, NULL, depth))
                return -1;
        return 0;
    }
    if (s_in (key, s_map_keys)) {
        if (!json_is_object (value))
            return s_bad_key (ld, key, "must be an object");
        const char *name;
        json_t *item;
        json_object_foreach (sb_unconst (value), name, item) {
            if (strcmp (key, "patternProperties") == 0 && ld->pass == 1) {
                size_t old = sb_schema_path_push_key (ld->path, sizeof ld->path, key);
                int rc = s_check_pattern (ld, name, name, name, strlen (name));
                ld->path [old] = 0;
                if (rc)
                    return rc;
            }
            if (s_walk_at (ld, item, key, -1, name, depth))
                return -1;
        }
        return 0;
    }
    if (ld->pass == 2)
        return 0;                   //  the rest has no subschemas
    if (s_in (key, s_number_keys)) {
        if (!json_is_number (value))
            return s_bad_key (ld, key, "must be a number");
        if (strcmp (key, "multipleOf") == 0 && json_number_value (value) <= 0)
            return s_bad_key (ld, key, "must be a number greater than 0");
        return 0;
    }
    if (s_in (key, s_count_keys)) {
        //  2.0 is a whole number too (JSON Schema counts by value, not by spelling).
        double number = json_number_value (value);
        if (!json_is_number (value) || number < 0 || number != floor (number)
        ||  (json_is_real (value) && number > SB_MAX_SCHEMA_COUNT_REAL))
            return s_bad_key (ld, key, "must be a whole number, 0 or more");
        return 0;
    }
    if (strcmp (key, "$anchor") == 0)
        return s_check_anchor (ld, schema, value);
    if (strcmp (key, "x-mcp-header") == 0)
        return s_check_header (ld, schema, value);
    if (s_in (key, s_string_keys)) {
        if (!json_is_string (value))
            return s_bad_key (ld, key, "must be a string");
        if (strcmp (key, "$id") == 0 && schema != ld->root)
            return s_bad_key (ld, key, "is only supported at the top of the inputSchema");
        return 0;
    }
    if (strcmp (key, "type") == 0)
        return s_check_type (ld, value);
    if (strcmp (key, "required") == 0)
        return s_check_strings (ld, key, value);
    if (strcmp (key, "enum") == 0) {
        if (!json_is_array (value) || json_array_size (value) == 0)
            return s_bad_key (ld, key, "must be an array with at least one value");
        return 0;
    }
    if (strcmp (key, "uniqueItems") == 0 && !json_is_boolean (value))
        return s_bad_key (ld, key, "must be true or false");
    if (strcmp (key, "pattern") == 0) {
        if (!json_is_string (value))
            return s_bad_key (ld, key, "must be a string");
        return s_check_pattern (ld, key, value, json_string_value (value),
                                json_string_length (value));
    }
    if (strcmp (key, "dependentRequired") == 0) {
        if (!json_is_object (value))
            return s_bad_key (ld, key, "must be an object of string arrays");
        const char *name;
        json_t *item;
        json_object_foreach (sb_unconst (value), name, item) {
            size_t old = sb_schema_path_push_key (ld->path, sizeof ld->path, key);
            int rc = s_check_strings (ld, name, item);
            ld->path [old] = 0;
            if (rc)
                return rc;
        }
        return 0;
    }
    if (strcmp (key, "$ref") == 0) {
        if (!json_is_string (value))
            return s_bad_key (ld, key, "must be a string");
        const char *ref = json_string_value (value);
        bool anchor = s_is_anchor_ref (ref);
        if (ref [0] != '#' || (anchor && !sb_schema_anchor_ok (ref + 1))) {
            sb_schema_path_push_key (ld->path, sizeof ld->path, key);
            return s_bad (ld, "\"%.64s\" is not supported: only local references such as "
                          "\"#/$defs/name\", \"#name\" (an $anchor) or \"#\"", ref);
        }
        if (anchor)
            return 0;               //  anchors are all known in pass 2
        if (!sb_schema_resolve_ref (ld->root, NULL, ref)) {
            sb_schema_path_push_key (ld->path, sizeof ld->path, key);
            return s_bad (ld, "\"%.64s\" points at nothing in this inputSchema", ref);
        }
    }
    return 0;                       //  annotations and unknown keywords
}

//  The subschemas `node` is applied through to the same value: the edges
//  a loop would go round.
static int
s_loop (s_load_t *ld, const json_t *node, int depth)
{
    s_slot_t *slot = s_slot (ld, node, false);
    if (!slot || slot->state == 2)
        return 0;
    if (slot->state == 1)
        return s_bad (ld, "refers back to itself through $ref (or allOf, anyOf, oneOf, not, "
                          "if) without descending into the value: checking it would never end");
    if (depth > SB_MAX_SCHEMA_EVAL_DEPTH)
        return s_bad (ld, "chains $ref, allOf, anyOf, oneOf, not or if more than %d deep",
                      SB_MAX_SCHEMA_EVAL_DEPTH);
    slot->state = 1;
    static const char *const same_value [] = { "not", "if", "then", "else", NULL };
    static const char *const same_lists [] = { "allOf", "anyOf", "oneOf", NULL };
    int rc = 0;
    const char *ref = json_string_value (json_object_get (node, "$ref"));
    if (ref)
        rc = s_loop (ld, sb_schema_resolve_ref (ld->root, &ld->anchors, ref), depth + 1);
    for (size_t i = 0; !rc && same_value [i]; i++) {
        const json_t *child = json_object_get (node, same_value [i]);
        if (child)
            rc = s_loop (ld, child, depth + 1);
    }
    for (size_t i = 0; !rc && same_lists [i]; i++) {
        size_t index;
        json_t *child;
        json_array_foreach (json_object_get (node, same_lists [i]), index, child)
            if (!rc)
                rc = s_loop (ld, child, depth + 1);
    }
    const char *name;
    json_t *child;
    json_object_foreach (json_object_get (node, "dependentSchemas"), name, child)
        if (!rc)
            rc = s_loop (ld, child, depth + 1);
    //  s_slot again: the table does not move, but be plain about it.
    s_slot (ld, node, false)->state = rc ? 1 : 2;
    return rc;
}

static int
s_walk (s_load_t *ld, const json_t *node, int depth)
{
    if (!json_is_object (node) && !json_is_boolean (node))
        return s_bad (ld, "must be a schema (an object, or true or false)");
    if (depth > SB_MAX_SCHEMA_DEPTH)
        return s_bad (ld, "is nested more than %d levels deep", SB_MAX_SCHEMA_DEPTH);
    if (ld->pass == 1) {
        if (++ld->nodes > SB_MAX_SCHEMA_NODES)
            return s_bad (ld, "makes the inputSchema larger than %d subschemas",
                          SB_MAX_SCHEMA_NODES);
        s_slot (ld, node, true);
    }
    if (json_is_boolean (node))
        return 0;
    if (ld->pass == 2) {
        const char *ref = json_string_value (json_object_get (node, "$ref"));
        const json_t *target = ref ? sb_schema_resolve_ref (ld->root, &ld->anchors, ref) : NULL;
        if (ref && !target && s_is_anchor_ref (ref)) {
            sb_schema_path_push_key (ld->path, sizeof ld->path, "$ref");
            return s_bad (ld, "\"%.64s\" names no $anchor in this inputSchema", ref);
        }
        if (ref && !s_slot (ld, target, false)) {
            sb_schema_path_push_key (ld->path, sizeof ld->path, "$ref");
            return s_bad (ld, "\"%.64s\" must point at a schema, such as one in \"$defs\"", ref);
        }
        if (s_loop (ld, node, 0))
            return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach (sb_unconst (node), key, value) {
        size_t old = strlen (ld->path);
        int rc = s_check_keyword (ld, node, key, value, depth);
        ld->path [old] = 0;
        if (rc)
            return rc;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The top: MCP wants an object schema; and a required argument that no
//  property describes is most likely a typo.

static int
s_check_top (s_load_t *ld, const json_t *schema)
{
    const json_t *type = json_object_get (schema, "type");
    if (!json_is_object (schema) || !json_is_string (type)
    ||  strcmp (json_string_value (type), "object")) {
        *ld->why = sb_strfmt ("%s: inputSchema must be an object schema "
                                     "({\"type\": \"object\", …})", ld->where);
        return -1;
    }
    const json_t *properties = json_object_get (schema, "properties");
    if (properties && !json_is_object (properties))
        return s_bad_key (ld, "properties", "must be an object");
    static const char *const composed [] = {
        "allOf", "anyOf", "oneOf", "$ref", "if", "dependentSchemas", "patternProperties", NULL
    };
    for (size_t i = 0; composed [i]; i++)
        if (json_object_get (schema, composed [i]))
            return 0;                   //  the property may be described there
    size_t index;
    json_t *item;
    json_array_foreach (json_object_get (schema, "required"), index, item)
        if (json_is_string (item) && !json_object_get (properties, json_string_value (item))) {
            sb_schema_path_push_key (ld->path, sizeof ld->path, "required");
            return s_bad (ld, "names \"%.64s\", which is not a property", json_string_value (item));
        }
    return 0;
}

//  --------------------------------------------------------------------------
//  Nodes: what a check needs of each object subschema, looked up once

//  The keywords of sb_schema_kw_t by name.
static const char *const s_keywords [SB_KW_COUNT] = {
    [SB_KW_REF] = "$ref",                   [SB_KW_TYPE] = "type",
    [SB_KW_ENUM] = "enum",                  [SB_KW_CONST] = "const",
    [SB_KW_MINIMUM] = "minimum",            [SB_KW_MAXIMUM] = "maximum",
    [SB_KW_EXCLUSIVE_MINIMUM] = "exclusiveMinimum",
    [SB_KW_EXCLUSIVE_MAXIMUM] = "exclusiveMaximum",
    [SB_KW_MULTIPLE_OF] = "multipleOf",
    [SB_KW_MIN_LENGTH] = "minLength",       [SB_KW_MAX_LENGTH] = "maxLength",
    [SB_KW_PATTERN] = "pattern",            [SB_KW_FORMAT] = "format",
    [SB_KW_MIN_ITEMS] = "minItems",         [SB_KW_MAX_ITEMS] = "maxItems",
    [SB_KW_UNIQUE_ITEMS] = "uniqueItems",   [SB_KW_PREFIX_ITEMS] = "prefixItems",
    [SB_KW_ITEMS] = "items",                [SB_KW_CONTAINS] = "contains",
    [SB_KW_MIN_CONTAINS] = "minContains",   [SB_KW_MAX_CONTAINS] = "maxContains",
    [SB_KW_REQUIRED] = "required",          [SB_KW_MIN_PROPERTIES] = "minProperties",
    [SB_KW_MAX_PROPERTIES] = "maxProperties",
    [SB_KW_DEPENDENT_REQUIRED] = "dependentRequired",
    [SB_KW_PROPERTY_NAMES] = "propertyNames",
    [SB_KW_PROPERTIES] = "properties",
    [SB_KW_PATTERN_PROPERTIES] = "patternProperties",
    [SB_KW_ADDITIONAL_PROPERTIES] = "additionalProperties",
    [SB_KW_DEPENDENT_SCHEMAS] = "dependentSchemas",
    [SB_KW_ALL_OF] = "allOf",               [SB_KW_ANY_OF] = "anyOf",
    [SB_KW_ONE_OF] = "oneOf",               [SB_KW_NOT] = "not",
    [SB_KW_IF] = "if",                      [SB_KW_THEN] = "then",
    [SB_KW_ELSE] = "else",
};

//  The group of rules each keyword belongs to (0: read by another keyword's
//  rule, or by s_eval itself).
static const unsigned s_keyword_rules [SB_KW_COUNT] = {
    [SB_KW_ENUM] = SB_RULES_ENUM,                   [SB_KW_CONST] = SB_RULES_ENUM,
    [SB_KW_MINIMUM] = SB_RULES_NUMBER,              [SB_KW_MAXIMUM] = SB_RULES_NUMBER,
    [SB_KW_EXCLUSIVE_MINIMUM] = SB_RULES_NUMBER,    [SB_KW_EXCLUSIVE_MAXIMUM] = SB_RULES_NUMBER,
    [SB_KW_MULTIPLE_OF] = SB_RULES_NUMBER,
    [SB_KW_MIN_LENGTH] = SB_RULES_STRING,           [SB_KW_MAX_LENGTH] = SB_RULES_STRING,
    [SB_KW_PATTERN] = SB_RULES_STRING,              [SB_KW_FORMAT] = SB_RULES_STRING,
    [SB_KW_MIN_ITEMS] = SB_RULES_ARRAY,             [SB_KW_MAX_ITEMS] = SB_RULES_ARRAY,
    [SB_KW_UNIQUE_ITEMS] = SB_RULES_ARRAY,          [SB_KW_PREFIX_ITEMS] = SB_RULES_ARRAY,
    [SB_KW_ITEMS] = SB_RULES_ARRAY,                 [SB_KW_CONTAINS] = SB_RULES_ARRAY,
    [SB_KW_REQUIRED] = SB_RULES_OBJECT,             [SB_KW_MIN_PROPERTIES] = SB_RULES_OBJECT,
    [SB_KW_MAX_PROPERTIES] = SB_RULES_OBJECT,       [SB_KW_DEPENDENT_REQUIRED] = SB_RULES_OBJECT,
    [SB_KW_PROPERTY_NAMES] = SB_RULES_OBJECT,       [SB_KW_PROPERTIES] = SB_RULES_OBJECT,
    [SB_KW_PATTERN_PROPERTIES] = SB_RULES_OBJECT,
    [SB_KW_ADDITIONAL_PROPERTIES] = SB_RULES_OBJECT,
    [SB_KW_DEPENDENT_SCHEMAS] = SB_RULES_OBJECT,
    [SB_KW_ALL_OF] = SB_RULES_LOGIC,                [SB_KW_ANY_OF] = SB_RULES_LOGIC,
    [SB_KW_ONE_OF] = SB_RULES_LOGIC,                [SB_KW_NOT] = SB_RULES_LOGIC,
    [SB_KW_IF] = SB_RULES_LOGIC,
};

//  The SB_TYPE_* bit of a type name; 0 for a name no value has.
static unsigned
s_type_bit (const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } types [] = {
        { "string", SB_TYPE_STRING }, { "integer", SB_TYPE_INTEGER },
        { "number", SB_TYPE_NUMBER }, { "boolean", SB_TYPE_BOOLEAN },
        { "object", SB_TYPE_OBJECT }, { "array", SB_TYPE_ARRAY }, { "null", SB_TYPE_NULL },
    };
    for (size_t i = 0; i < sizeof types / sizeof types [0]; i++)
        if (strcmp (name, types [i].name) == 0)
            return types [i].bit;
    return 0;
}

//  The types "type" allows, as the check reads it: a name; an array of
//  names (any member that is not a string lets every value pass); anything
//  else (no "type", an empty array) checks nothing.
static unsigned
s_types (const json_t *type)
{
    if (json_is_string (type))
        return s_type_bit (json_string_value (type));
    if (!json_is_array (type) || json_array_size (type) == 0)
        return SB_TYPE_ANY;
    unsigned types = 0;
    size_t index;
    json_t *item;
    json_array_foreach (type, index, item) {
        if (!json_is_string (item))
            return SB_TYPE_ANY;
        types |= s_type_bit (json_string_value (item));
    }
    return types;
}

void
sb_schema_node_fill (sb_schema_node_t *node, const json_t *schema, const json_t *root,
                     const sb_schema_anchors_t *anchors, const sb_schema_regexes_t *regexes)
{
    memset (node, 0, sizeof *node);
    node->schema = schema;
    //  A lookup per keyword, not a pass over the members: bounded however
    //  many annotations the subschema has.
    for (size_t k = 0; k < SB_KW_COUNT; k++) {
        node->keyword [k] = json_object_get (schema, s_keywords [k]);
        if (node->keyword [k])
            node->rules |= s_keyword_rules [k];
    }
    node->types = s_types (node->keyword [SB_KW_TYPE]);
    const char *ref = json_string_value (node->keyword [SB_KW_REF]);
    if (ref)
        node->ref = sb_schema_resolve_ref (root, anchors, ref);
    if (regexes && json_is_string (node->keyword [SB_KW_PATTERN]))
        node->pattern = sb_schema_regexes_find (regexes, node->keyword [SB_KW_PATTERN]);
}

//  Fills `program` with a node for every object subschema in the load's
//  table, all known after pass 2.
static int
s_program (s_load_t *ld, const sb_schema_regexes_t *regexes, sb_schema_program_t *program)
{
    size_t count = 0;
    for (size_t i = 0; i < S_TABLE_SIZE; i++)
        count += json_is_object (ld->table [i].node);
    size_t slots = 16;
    while (slots < 2 * count)
        slots *= 2;
    program->node = calloc (count ? count : 1, sizeof *program->node);
    program->slot = calloc (slots, sizeof *program->slot);
    program->mask = slots - 1;
    if (!program->node || !program->slot) {
        sb_schema_program_clear (program);
        *ld->why = sb_strfmt ("%s: out of memory", ld->where);
        return -1;
    }
    for (size_t i = 0; i < S_TABLE_SIZE; i++) {
        const json_t *schema = ld->table [i].node;
        if (!json_is_object (schema))
            continue;
        sb_schema_node_t *node = &program->node [program->count++];
        sb_schema_node_fill (node, schema, ld->root, &ld->anchors, regexes);
        size_t slot = sb_schema_program_hash (program, schema);
        while (program->slot [slot])
            slot = (slot + 1) & program->mask;
        program->slot [slot] = node;
    }
    return 0;
}

void
sb_schema_program_clear (sb_schema_program_t *self)
{
    free (self->node);
    free (self->slot);
    *self = (sb_schema_program_t) { 0 };
}

int
sb_schema_load (const json_t *schema, const char *where, char **why, sb_schema_regexes_t *regexes,
                sb_schema_anchors_t *anchors, sb_schema_program_t *program, bool any_value)
{
    *why = NULL;
    s_load_t ld = { .root = schema, .where = where, .why = why, .regexes = regexes,
                    .pass = 1, .path = "inputSchema", .reachable = true };
    ld.table = calloc (S_TABLE_SIZE, sizeof *ld.table);
    if (!ld.table) {
        *why = sb_strfmt ("%s: out of memory", where);
        return -1;
    }
    int rc = any_value ? 0 : s_check_top (&ld, schema);
    if (!rc)
        rc = s_walk (&ld, schema, 0);
    if (!rc) {
        ld.pass = 2;
        rc = s_walk (&ld, schema, 0);
    }
    if (!rc && program)
        rc = s_program (&ld, regexes, program);
    free (ld.table);
    if (rc && regexes)
        sb_schema_regexes_clear (regexes);
    if (!rc && anchors)
        *anchors = ld.anchors;
    return rc;
}

int
sb_schema_validate (const json_t *schema, const char *where, char **why)
{
    return sb_schema_load (schema, where, why, NULL, NULL, NULL, false);
}

//  --------------------------------------------------------------------------
//  $anchors of a schema that was not loaded (sb_schema_check).

static void
s_collect (const json_t *node, sb_schema_anchors_t *anchors, size_t *nodes, int depth)
{
    if (!json_is_object (node) || depth > SB_MAX_SCHEMA_DEPTH
    ||  ++*nodes > SB_MAX_SCHEMA_NODES || anchors->count >= SB_MAX_SCHEMA_ANCHORS)
        return;
    const char *anchor = json_string_value (json_object_get (node, "$anchor"));
    bool known = false;
    for (size_t i = 0; anchor && i < anchors->count; i++)
        known = known || strcmp (anchors->name [i], anchor) == 0;
    if (anchor && !known && sb_schema_anchor_ok (anchor)) {
        anchors->name [anchors->count] = anchor;
        anchors->node [anchors->count++] = node;
    }
    const char *key, *name;
    json_t *value, *item;
    size_t index;
    json_object_foreach (sb_unconst (node), key, value) {
        if (s_in (key, s_schema_keys))
            s_collect (value, anchors, nodes, depth + 1);
        else
        if (s_in (key, s_list_keys))
            json_array_foreach (value, index, item)
                s_collect (item, anchors, nodes, depth + 1);
        else
        if (s_in (key, s_map_keys))
            json_object_foreach (value, name, item)
                s_collect (item, anchors, nodes, depth + 1);
    }
}

void
sb_schema_anchors_collect (const json_t *schema, sb_schema_anchors_t *anchors)
{
    anchors->count = 0;
    size_t nodes = 0;
    s_collect (schema, anchors, &nodes, 0);
}
