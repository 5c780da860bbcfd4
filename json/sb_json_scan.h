/*  json/sb_json_scan.h — checks that a text is one well-formed JSON value
    without building it. The gateway forwards a worker's CallToolResult as
    it came (spliced into the JSON-RPC reply) instead of parsing it into a
    tree and printing it again; this scan is what keeps that safe: the reply
    is only spliced when the text is valid JSON (RFC 8259, UTF-8) with the
    expected shape. Linear time, no allocation, bounded nesting. */
#ifndef SB_JSON_SCAN_H_INCLUDED
#define SB_JSON_SCAN_H_INCLUDED

#include <stddef.h>

#include "sb_attr.h"

#define SB_JSON_SCAN_MAX_DEPTH  64      /* arrays and objects nested deeper are refused */

/*  Checks that the `len` bytes at `text` are exactly one JSON value, with
    optional whitespace around it, valid UTF-8 in strings, no NUL escapes
    (\u0000), and at most SB_JSON_SCAN_MAX_DEPTH levels of nesting.
    When `member` is not NULL and the value is an object, *member_type
    receives the first character class of the last top-level member with
    that exact (unescaped) name: '{', '[', '"', 'n' (null), 't', 'f' or
    '0' (number); 0 when the object has no such member, is not an object,
    or the text is not valid. Returns 0 when the text is valid, -1
    otherwise. */
int sb_json_scan (const char *text, size_t len, const char *member, char *member_type)
    SB_MUST_USE;

#endif
