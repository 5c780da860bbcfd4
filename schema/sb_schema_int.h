/*  schema/sb_schema_int.h — what the three parts of sb_schema share:
    sb_schema.c (call-time checks), sb_schema_load.c (load-time
    validation) and sb_schema_format.c (formats, regular expressions,
    $ref resolution, text helpers). Not for use outside them. */
#ifndef SB_SCHEMA_INT_H_INCLUDED
#define SB_SCHEMA_INT_H_INCLUDED

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_schema.h"
#include "sb_text.h"

#define SB_MAX_SCHEMA_EVAL_DEPTH 128    /* subschemas open at once in one check ($ref, allOf…) */
#define SB_MAX_EQUAL_DEPTH       256    /* nesting compared by enum, const, uniqueItems */
#define SB_MAX_PATTERN_LENGTH    1000   /* bytes of one regular expression */
#define SB_MAX_REGEX_STEPS       50000  /* PCRE2 match limit per match (well under 1 ms) */
#define SB_SCHEMA_MATCH_COST     1000   /* steps of SB_MAX_SCHEMA_WORK one match counts for */
#define SB_MAX_REGEX_DEPTH       1000   /* PCRE2 backtracking depth limit per match */
#define SB_MAX_REGEX_HEAP_KIB    4096   /* PCRE2 heap limit per match */
#define SB_MAX_REGEX_PARENS      64     /* PCRE2 parentheses nesting at compile */
#define SB_MAX_REF_LENGTH        512    /* bytes of one $ref */
#define SB_MAX_SCHEMA_PATH       256    /* bytes of a field or schema path in a message */
#define SB_MAX_QUOTED_VALUE      200    /* bytes of JSON quoted in a message (enum, const) */
#define SB_MAX_SCHEMA_COUNT_REAL 1e15   /* a count written as a real (minLength: 2.0), at most */

//  The regular expressions of one schema, compiled; looked up by the
//  identity of what holds the pattern (the "pattern" string's json_t, or
//  the patternProperties key's text), both stable while the schema lives.
typedef struct {
    const void *id [SB_MAX_SCHEMA_PATTERNS];    /* what holds each pattern */
    pcre2_code *code [SB_MAX_SCHEMA_PATTERNS];  /* compiled, owned */
    size_t count;                               /* entries used */
} sb_schema_regexes_t;

//  The $anchor names of one schema and the subschemas they name. Names
//  are borrowed from the schema's strings, stable while the schema lives.
typedef struct {
    const char *name [SB_MAX_SCHEMA_ANCHORS];   /* the $anchor's text */
    const json_t *node [SB_MAX_SCHEMA_ANCHORS]; /* the subschema that holds it */
    size_t count;                               /* entries used */
} sb_schema_anchors_t;

//  The keywords a check reads, each a slot of sb_schema_node_t.keyword.
typedef enum {
    SB_KW_REF, SB_KW_TYPE, SB_KW_ENUM, SB_KW_CONST,
    SB_KW_MINIMUM, SB_KW_MAXIMUM, SB_KW_EXCLUSIVE_MINIMUM, SB_KW_EXCLUSIVE_MAXIMUM,
    SB_KW_MULTIPLE_OF,
    SB_KW_MIN_LENGTH, SB_KW_MAX_LENGTH, SB_KW_PATTERN, SB_KW_FORMAT,
    SB_KW_MIN_ITEMS, SB_KW_MAX_ITEMS, SB_KW_UNIQUE_ITEMS, SB_KW_PREFIX_ITEMS, SB_KW_ITEMS,
    SB_KW_CONTAINS, SB_KW_MIN_CONTAINS, SB_KW_MAX_CONTAINS,
    SB_KW_REQUIRED, SB_KW_MIN_PROPERTIES, SB_KW_MAX_PROPERTIES, SB_KW_DEPENDENT_REQUIRED,
    SB_KW_PROPERTY_NAMES, SB_KW_PROPERTIES, SB_KW_PATTERN_PROPERTIES,
    SB_KW_ADDITIONAL_PROPERTIES, SB_KW_DEPENDENT_SCHEMAS,
    SB_KW_ALL_OF, SB_KW_ANY_OF, SB_KW_ONE_OF, SB_KW_NOT, SB_KW_IF, SB_KW_THEN, SB_KW_ELSE,
    SB_KW_COUNT
} sb_schema_kw_t;

//  JSON types as bits, for "type" (sb_schema_node_t.types).
#define SB_TYPE_STRING  0x01u
#define SB_TYPE_INTEGER 0x02u           /* also a real with no fraction */
#define SB_TYPE_NUMBER  0x04u
#define SB_TYPE_BOOLEAN 0x08u
#define SB_TYPE_OBJECT  0x10u
#define SB_TYPE_ARRAY   0x20u
#define SB_TYPE_NULL    0x40u
#define SB_TYPE_ANY     0x7Fu

//  Groups of keywords as bits (sb_schema_node_t.rules): a group with no
//  keyword in a subschema is skipped without looking.
#define SB_RULES_ENUM   0x01u           /* enum, const */
#define SB_RULES_NUMBER 0x02u           /* minimum … multipleOf */
#define SB_RULES_STRING 0x04u           /* minLength, maxLength, pattern, format */
#define SB_RULES_ARRAY  0x08u           /* minItems … contains */
#define SB_RULES_OBJECT 0x10u           /* required … dependentSchemas */
#define SB_RULES_LOGIC  0x20u           /* allOf, anyOf, oneOf, not, if */

//  What a check needs of one object subschema, looked up once: each
//  keyword's value, where its $ref points, its pattern compiled, the types
//  it allows. Pointers are borrowed from the schema (and its regexes),
//  stable while it lives.
typedef struct {
    const json_t *schema;                   /* the subschema */
    const json_t *keyword [SB_KW_COUNT];    /* each keyword's value, NULL when absent */
    const json_t *ref;                      /* the subschema $ref points at, or NULL */
    pcre2_code *pattern;                    /* "pattern" compiled at load, or NULL */
    unsigned types;                         /* SB_TYPE_* bits a value may have */
    unsigned rules;                         /* SB_RULES_* groups with a keyword here */
} sb_schema_node_t;

//  Every object subschema of a loaded schema as a node, found by its
//  address: what sb_schema_new precomputes so that a check looks nothing
//  up by name in the schema.
typedef struct {
    sb_schema_node_t *node;                 /* the nodes, owned */
    size_t count;                           /* nodes */
    const sb_schema_node_t **slot;          /* open addressing by address, owned */
    size_t mask;                            /* slots - 1 (slots is a power of two) */
} sb_schema_program_t;

//  The first slot to probe for `schema` in a program's table.
static inline size_t
sb_schema_program_hash (const sb_schema_program_t *self, const json_t *schema)
{
    return (size_t) ((((uintptr_t) schema >> 4) * 0x9E3779B97F4A7C15ull) >> 32) & self->mask;
}

//  Fills `node` for the object subschema `schema`: its keywords, its $ref
//  resolved inside `root` (with `anchors`), its pattern's code from
//  `regexes` when not NULL.
void sb_schema_node_fill (sb_schema_node_t *node, const json_t *schema, const json_t *root,
                          const sb_schema_anchors_t *anchors, const sb_schema_regexes_t *regexes);

//  Frees a program's nodes and table and empties it; idempotent.
void sb_schema_program_clear (sb_schema_program_t *self);

//  sb_schema_validate, and when `regexes` is not NULL, keeps every pattern
//  compiled there; when `anchors` is not NULL, fills it with every $anchor;
//  when `program` is not NULL (with both of those), fills it with a node
//  for every object subschema; when `any_value`, the top may be any schema
//  (sb_schema_new_any), not only an object schema (sb_schema_load.c).
int sb_schema_load (const json_t *schema, const char *where, char **why,
                    sb_schema_regexes_t *regexes, sb_schema_anchors_t *anchors,
                    sb_schema_program_t *program, bool any_value)
    SB_MUST_USE;

//  Fills `anchors` with the $anchors of a schema that was not loaded (the
//  first of a name wins; past SB_MAX_SCHEMA_ANCHORS, SB_MAX_SCHEMA_NODES
//  or SB_MAX_SCHEMA_DEPTH the rest are not looked for, and a $ref to them
//  points nowhere). Only subschemas are searched: an "$anchor" member
//  inside a const, enum or default is data (sb_schema_load.c).
void sb_schema_anchors_collect (const json_t *schema, sb_schema_anchors_t *anchors);

//  True when `name` is a plain-name fragment as JSON Schema 2020-12 allows
//  for $anchor: a letter or '_', then letters, digits, '-', '_' or '.'.
bool sb_schema_anchor_ok (const char *name);


//  Compiles an ECMA-262 style pattern (UTF-8) with PCRE2. Returns the code,
//  or NULL with *why a new string saying what is wrong (caller frees).
pcre2_code *sb_schema_regex_compile (const char *pattern, size_t length, char **why) SB_MUST_USE;

//  What the matches of one check use, made at its first match and kept
//  for the others (one thread's).
typedef struct {
    pcre2_match_context *context;           /* the SB_MAX_REGEX_* limits, owned */
    pcre2_match_data *data;                 /* room for one match, owned */
} sb_schema_matcher_t;

//  Searches `text` for `code` (unanchored, as JSON Schema's pattern does),
//  within the SB_MAX_REGEX_* limits, with `matcher` (zeroed before the
//  first search). Returns 1 found, 0 not found, -1 when the match ran past
//  its limits (or there was no memory for it).
int sb_schema_regex_search (sb_schema_matcher_t *matcher, const pcre2_code *code,
                            const char *text, size_t length) SB_MUST_USE;

//  Frees what a matcher made and zeroes it; idempotent.
void sb_schema_matcher_clear (sb_schema_matcher_t *matcher);

//  Compiled code for the pattern held by `id`, or NULL.
pcre2_code *sb_schema_regexes_find (const sb_schema_regexes_t *self, const void *id);

//  Frees every compiled code and empties the table.
void sb_schema_regexes_clear (sb_schema_regexes_t *self);

//  True when `text` meets `format` (email, date, date-time, uri), and for
//  any format this module does not know (formats are annotations there).
bool sb_schema_format_ok (const char *format, const char *text, size_t length);

//  What a value of `format` is, for a sentence ("an email address"), or
//  NULL for a format this module does not check.
const char *sb_schema_format_phrase (const char *format);

//  Length of valid UTF-8 in characters (code points), as minLength counts.
size_t sb_schema_utf8_length (const char *text, size_t length);

//  The subschema a local $ref points at inside `root` ("#", "#/$defs/x",
//  any "#/…" JSON pointer with ~0 ~1 and %-escapes, or "#name" for the
//  subschema whose $anchor is name, looked up in `anchors`), or NULL.
const json_t *sb_schema_resolve_ref (const json_t *root, const sb_schema_anchors_t *anchors,
                                     const char *ref);

//  Appends a member name to a readable path ("a" + "b" = "a.b"; names that
//  are not plain words are quoted: a["x y"]). Returns the old length, to
//  restore by path [old] = 0. Long paths end in "…".
size_t sb_schema_path_push_key (char *path, size_t size, const char *key);

//  Appends an array index ("a" + 2 = "a[2]"). Returns the old length.
size_t sb_schema_path_push_index (char *path, size_t size, size_t index);

//  Writes a JSON number readably (100, 0.5, 1e+30) into `buffer`.
void sb_schema_number_text (const json_t *number, char *buffer, size_t size);

//  A new string of `value` as compact JSON, cut to SB_MAX_QUOTED_VALUE
//  bytes with "…" (caller frees); NULL on allocation failure.
char *sb_schema_quote (const json_t *value) SB_MUST_USE;

#endif
