/*  schema/sb_schema.h — JSON Schema 2020-12 for tool input schemas: the
    gateway checks every tools/call's arguments against the tool's
    inputSchema before any job is sent.

    Keywords enforced: type (a name or an array of names; "integer" is a
    number with no fraction), enum, const; minimum, maximum,
    exclusiveMinimum, exclusiveMaximum, multipleOf; minLength, maxLength
    (counted in characters, not bytes), pattern (ECMA-262 style, run by
    PCRE2 with match limits), format email / date / date-time (RFC 3339) /
    uri; items, prefixItems, minItems, maxItems, uniqueItems, contains,
    minContains, maxContains; properties, patternProperties,
    additionalProperties, required, minProperties, maxProperties,
    propertyNames, dependentRequired, dependentSchemas;
    allOf, anyOf, oneOf, not, if/then/else; local $ref ("#",
    "#/$defs/name", "#/definitions/name", any "#/…" JSON pointer, or
    "#name" naming a subschema's $anchor) with $defs; $id at the top.
    Counts (minLength…) may be written 2 or 2.0. Boolean schemas
    (true, false) are schemas. Other keywords — title, description,
    default, examples, $schema, $comment, unknown formats — are
    annotations and are ignored. Refused at load, never silently skipped:
    unevaluatedProperties, unevaluatedItems, $dynamicRef, $recursiveRef,
    additionalItems and dependencies (older drafts), a $ref that is not
    local (remote or relative URIs), $id below the top. An empty enum is
    refused too. tests/16_schema_suite.c runs the official
    JSON-Schema-Test-Suite (draft2020-12) and holds this list to be exact;
    tests/data/schema_suite.json lists what the suite finds we do
    otherwise (formats asserted, Unicode regex classes). The schema itself is
    never rewritten: what a connector publishes is what tools/list shows.

    "x-mcp-header" (MCP 2026-07-28, SEP-2243: the argument is mirrored in
    an Mcp-Param-<name> header, see gateway/sb_param_header.h) is checked
    at load as clients check it — an HTTP token, unique without case, on a
    string, integer or boolean property reached through "properties"
    alone — and is an annotation at call time.

    Two questions, asked at two times: at load, is a tool's inputSchema
    itself well-formed (sb_schema_validate, or sb_schema_new which also
    keeps its patterns compiled); at call time, do the arguments satisfy
    it (sb_schema_check, sb_schema_check_compiled). Every check is bounded:
    schema size and nesting (SB_MAX_SCHEMA_NODES, SB_MAX_SCHEMA_DEPTH), the
    nesting of the value checked, the total work of one check
    (SB_MAX_SCHEMA_WORK) and each regular expression match.

    Call-time error sentences name the field by its path and the rule, in
    words a person or a model can act on: "Argument 'limit' must be at
    most 100.", "Argument 'contact.email' must be an email address.",
    "Argument 'items[2]' must be a string."

    A caller that names the place itself (the connector loader checking a
    definition file against connectors/connector.schema.json) asks
    sb_schema_check_at instead: the same first broken rule, in parts — the
    value's JSON Pointer, the keyword, the rule without the place. */
#ifndef SB_SCHEMA_H_INCLUDED
#define SB_SCHEMA_H_INCLUDED

#include <jansson.h>

#include "sb_attr.h"

#define SB_MAX_SCHEMA_DEPTH     32      /* nesting of a schema, and of the value checked */
#define SB_MAX_SCHEMA_NODES     2000    /* subschemas in one inputSchema */
#define SB_MAX_SCHEMA_PATTERNS  64      /* pattern / patternProperties regexes in one inputSchema */
#define SB_MAX_SCHEMA_ANCHORS   64      /* $anchor names in one inputSchema */
#define SB_MAX_SCHEMA_HEADERS   32      /* x-mcp-header annotations in one inputSchema */
#define SB_MAX_SCHEMA_HEADER_NAME 64    /* bytes of one x-mcp-header name */
#define SB_MAX_SCHEMA_WORK      1000000 /* steps of one check: subschemas, comparisons, matches */
#define SB_MAX_SCHEMA_DOC_WORK  50000000 /* steps of one sb_schema_check_at: a whole document
                                            (a connector file of up to 1 MiB), not arguments */

typedef struct _sb_schema_t sb_schema_t;

/*  Checks that `schema` is an inputSchema this module can enforce: an
    object schema ({"type": "object", …}) whose keywords all have the
    right JSON types, whose subschemas are schemas, whose patterns compile,
    whose $anchor names are well-formed and unique, whose $refs all point
    at a subschema of this document, with no $ref
    loop that never reaches a value, within the size and depth limits.
    Returns 0, or -1 with *why a new string starting with `where` and
    naming the place, e.g. `where: inputSchema.properties.limit.maximum
    must be a number` (caller frees). */
int sb_schema_validate (const json_t *schema, const char *where, char **why)
    SB_MUST_USE;

/*  Checks `value` against `schema` (one that passed sb_schema_validate;
    patterns are compiled and $anchors found once per call). Returns 0 with *error NULL, or
    -1 with *error a new sentence naming the field and the rule, e.g.
    "Argument 'limit' must be at most 100." (caller frees). A value that
    is not an object gets "Arguments must be a JSON object."; a check that
    runs past its limits gets a sentence saying the arguments are too
    deeply nested or too complex, never a hang. */
int sb_schema_check (const json_t *schema, const json_t *value, char **error)
    SB_MUST_USE;

/*  Validates `schema` as sb_schema_validate does and returns a checker
    holding a reference to it, its patterns compiled, its $anchors found
    and each subschema's keywords looked up (a few hundred bytes per
    subschema), or NULL with *why (caller frees). The checker is
    read-only afterwards: several threads may check with it at once. */
sb_schema_t *sb_schema_new (const json_t *schema, const char *where, char **why) SB_MUST_USE;

/*  sb_schema_new for a schema of any JSON value, not only of a tool's
    arguments: the top need not be an object schema, and
    sb_schema_check_compiled with this checker takes any value (NULL gets
    "Arguments must be a JSON object."). Everything else — keywords
    enforced and refused, limits, sentences — is as for sb_schema_new; the
    official JSON-Schema-Test-Suite runs through it (tests/16_schema_suite.c). */
sb_schema_t *sb_schema_new_any (const json_t *schema, const char *where, char **why);

/*  Destroys a checker; idempotent, nulls the caller's pointer. */
void sb_schema_destroy (sb_schema_t **self_p);

/*  sb_schema_check with what sb_schema_new prepared; it answers exactly
    as sb_schema_check does, word for word. */
int sb_schema_check_compiled (const sb_schema_t *self, const json_t *value, char **error)
    SB_MUST_USE;

/*  Why a value fails a schema, in parts, for a caller that names the place
    itself, e.g. a connector file: "<file>: /tools/3/request/method: must
    be one of [...] (enum)". */
typedef struct {
    char *pointer;          /* JSON Pointer (RFC 6901) to the value that broke the rule: ""
                               for the value itself, "/tools/3/name"; for a missing
                               member, where it belongs ("/tools/3/request/path"); owned */
    const char *keyword;    /* the keyword whose rule broke: "enum", "required",
                               "additionalProperties", "false" (a false schema)…; NULL
                               when a limit stopped the check (static) */
    char *rule;             /* what the rule wants, without the place or a final period:
                               "must be one of [\"GET\",\"POST\"]", "is required",
                               "is not an allowed member here"; owned */
} sb_schema_failure_t;

/*  Checks any JSON value (not only an object: the schema's "type" decides)
    against the checker's schema and tells the first broken rule in parts,
    found as sb_schema_check_compiled finds it, within SB_MAX_SCHEMA_DOC_WORK
    steps (a document holds far more than a call's arguments; a check that
    runs past it fails at "" with a rule saying so). Returns 0 with *failure
    zeroed, or -1 with *failure filled (pointer and rule never NULL;
    release with sb_schema_failure_clear). */
int sb_schema_check_at (const sb_schema_t *self, const json_t *value,
                        sb_schema_failure_t *failure)
    __attribute__ ((warn_unused_result));

/*  Frees what a failure holds and zeroes it; idempotent. */
void sb_schema_failure_clear (sb_schema_failure_t *failure);

#endif
