/*  common/sb_schema_int.h — what the three parts of sb_schema share:
    sb_schema.c (call-time checks), sb_schema_load.c (load-time
    validation) and sb_schema_format.c (formats, regular expressions,
    $ref resolution, text helpers). Not for use outside them. */
#ifndef SB_SCHEMA_INT_H_INCLUDED
#define SB_SCHEMA_INT_H_INCLUDED

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/sb_schema.h"
#include "common/sb_text.h"

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

//  sb_schema_validate, and when `regexes` is not NULL, keeps every pattern
//  compiled there; when `anchors` is not NULL, fills it with every $anchor
//  (sb_schema_load.c).
int sb_schema_load (const json_t *schema, const char *where, char **why,
                    sb_schema_regexes_t *regexes, sb_schema_anchors_t *anchors)
    __attribute__ ((warn_unused_result));

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
pcre2_code *sb_schema_regex_compile (const char *pattern, size_t length, char **why);

//  Searches `text` for `code` (unanchored, as JSON Schema's pattern does),
//  within the SB_MAX_REGEX_* limits. Returns 1 found, 0 not found, -1 when
//  the match ran past its limits.
int sb_schema_regex_search (const pcre2_code *code, const char *text, size_t length);

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
char *sb_schema_quote (const json_t *value);

#endif
