/*  tests/fuzz/fuzz_json_scan.c — differential fuzz target for
    json/sb_json_scan against jansson, the parser the rest of switchboard
    trusts: for any input, both must agree on whether it is one valid JSON
    value (jansson's refusals of numbers it cannot store excepted: those
    are a storage limit, not a syntax rule), and when the scan reports the
    top-level "content" member's type, jansson must see the same. The
    gateway splices worker results into replies on the scan's word alone,
    so a text it wrongly accepted would reach clients as broken JSON.

    libFuzzer target with clang (-DSB_FUZZ=ON); with gcc, ctest replays
    tests/fuzz/corpus/json_scan through tests/fuzz/sb_fuzz_replay.c. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_json_scan.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_json_scan: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

//  The scan's class of a jansson value.
static char
s_class (const json_t *value)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT:  return '{';
        case JSON_ARRAY:   return '[';
        case JSON_STRING:  return '"';
        case JSON_NULL:    return 'n';
        case JSON_TRUE:    return 't';
        case JSON_FALSE:   return 'f';
        default:           return '0';
    }
}

//  The deepest bracket nesting, strings not skipped (an upper bound).
static int
s_depth (const uint8_t *data, size_t size)
{
    int depth = 0, deepest = 0;
    for (size_t i = 0; i < size; i++) {
        if (data [i] == '[' || data [i] == '{')
            deepest = ++depth > deepest? depth: deepest;
        else
        if ((data [i] == ']' || data [i] == '}') && depth > 0)
            depth--;
    }
    return deepest;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    char member = 'x';
    int scanned = sb_json_scan (text, size, "content", &member);
    json_error_t error;
    json_t *parsed = json_loadb (text, size, JSON_DECODE_ANY, &error);
    if (!parsed && (strstr (error.text, "too big") || strstr (error.text, "overflow")))
        return 0;
    if (parsed && scanned != 0) {
        //  The scan is stricter in two ways only, both safe (a refused
        //  result becomes an error reply): nesting past its limit, and NUL
        //  bytes, where jansson stops reading as if the text ended.
        CHECK (memchr (data, 0, size) || s_depth (data, size) > SB_JSON_SCAN_MAX_DEPTH);
        json_decref (parsed);
        return 0;
    }
    CHECK ((parsed != NULL) == (scanned == 0));
    if (parsed) {
        json_t *content = json_is_object (parsed)? json_object_get (parsed, "content"): NULL;
        //  The scan matches unescaped names only: a name spelled with
        //  escapes is jansson's "content" but not the scan's.
        if (member)
            CHECK (content && s_class (content) == member);
        else
            CHECK (!content || memmem (data, size, "\\u", 2));
        json_decref (parsed);
    }
    else
        CHECK (member == 0);
    return 0;
}
