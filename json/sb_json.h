/*  json/sb_json.h — JSON text to jansson trees and back, on the call path.
    jansson (what switchboard builds and inspects JSON with) reads and writes
    text slowly: its reader costs about 16 ns a byte and its writer about
    6, most of it in per-character stream calls, not in building the tree.
    These two functions make and read the same jansson trees from one pass
    over a buffer. They accept, refuse and produce exactly what jansson does
    for the flags they take (a differential test and fuzz target check it),
    so a caller can switch between the two without a change in behaviour. */
#ifndef SB_JSON_H_INCLUDED
#define SB_JSON_H_INCLUDED

#include <jansson.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_JSON_MAX_DEPTH  JSON_PARSER_MAX_DEPTH    /* nesting refused past this, as jansson */

/*  Parses the `len` bytes at `text` (no NUL needed) into a new tree, as
    json_loadb (text, len, flags, error) would. `flags` may hold
    JSON_DECODE_ANY (any value at the top, not only an object or array) and
    JSON_REJECT_DUPLICATES; any other flag makes the call fail. Refuses what
    jansson refuses: invalid UTF-8, \u0000, unpaired surrogates, integers
    outside json_int_t, reals that overflow a double, nesting deeper than
    SB_JSON_MAX_DEPTH, anything after the value but whitespace. On failure
    returns NULL and, when `error` is not NULL, fills it with a sentence
    (error->text), the line, column and byte position where it was found.
    These are jansson's own (same sentence, code, line, column in
    characters, position), except "out of memory" and the refusal of a
    flag; on success `error` is reset as jansson resets it. A later
    duplicate key replaces the earlier one in its place, as in jansson.
    One difference, on purpose: a NUL byte right after a number or
    true/false/null is refused; jansson skips it ("[1\0]" is [1] there). */
json_t *sb_json_parse (const char *text, size_t len, size_t flags, json_error_t *error)
    SB_MUST_USE;

/*  Writes `value` (any JSON value) as compact JSON text, byte for byte what
    json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY) writes: keys in the
    object's order, no spaces, reals as jansson formats them. Returns a new
    NUL-terminated string (the caller frees it with free ()) and its length
    in *len when `len` is not NULL; NULL when `value` is NULL, holds a
    string value that is not valid UTF-8 or a container inside itself (a
    cycle built by hand), or memory ran out. Like json_dumps it does not
    fail on an object key that is not UTF-8 (only json_object_set*_nocheck
    makes one) but writes it cut short and unterminated, as jansson does. */
char *sb_json_dump (const json_t *value, size_t *len)
    SB_MUST_USE;

#endif
