/*  json/sb_json_scan.c — a validating JSON scanner that builds nothing.
    One pass over the text with an explicit stack of open containers (no
    recursion, so hostile nesting costs a bounded array). The grammar is
    RFC 8259's; strings must be UTF-8 without overlongs, surrogates or
    code points past U+10FFFF, and \u escapes must pair surrogates, as
    jansson (what the rest of switchboard parses with) requires. */
#include "sb_json_scan.h"
#include "sb_json_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const unsigned char *p;     /* next byte */
    const unsigned char *end;   /* one past the last byte */
} s_scan_t;

static void
s_space (s_scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool
s_literal (s_scan_t *s, const char *word, size_t len)
{
    if ((size_t) (s->end - s->p) < len || memcmp (s->p, word, len) != 0)
        return false;
    s->p += len;
    return true;
}

static bool
s_digits (s_scan_t *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool
s_number (s_scan_t *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else
    if (s->p >= s->end || *s->p < '1' || *s->p > '9' || !s_digits (s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!s_digits (s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!s_digits (s))
            return false;
    }
    return true;
}

//  Four hex digits after \u; -1 when malformed.
static long
s_hex4 (s_scan_t *s)
{
    if (s->end - s->p < 4)
        return -1;
    long value = sb_json_hex4 (s->p);
    s->p += 4;
    return value;
}

//  Whether `c` may follow a backslash as a one-character escape. A switch,
//  not strchr: results hold JSON as text, with an escape every few bytes.
static inline bool
s_simple_escape (unsigned char c)
{
    switch (c) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            return true;
        default:
            return false;
    }
}

//  A string, the opening quote already consumed. Sets *plain to whether it
//  held no escapes (so its raw bytes are its value).
static bool
s_string (s_scan_t *s, bool *plain)
{
    *plain = true;
    while (s->p < s->end) {
        //  The plain part eight bytes at a time.
        while (s->end - s->p >= 8) {
            uint64_t special = sb_json_special8 (sb_json_load8 (s->p));
            if (special) {
                s->p += __builtin_ctzll (special) >> 3;
                break;
            }
            s->p += 8;
        }
        if (s->p >= s->end)
            break;
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t len = sb_json_utf8_len (s->p, s->end);
            if (len == 0)
                return false;
            s->p += len;
            continue;
        }
        s->p++;
        if (c != '\\')
            continue;
        *plain = false;
        if (s->p >= s->end)
            return false;
        c = *s->p++;
        if (c == 'u') {
            long unit = s_hex4 (s);
            if (unit <= 0 || (unit >= 0xDC00 && unit <= 0xDFFF))
                return false;           // \u0000, malformed, or a lone low surrogate
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                if (!s_literal (s, "\\u", 2))
                    return false;
                long low = s_hex4 (s);
                if (low < 0xDC00 || low > 0xDFFF)
                    return false;
            }
        }
        else
        if (!s_simple_escape (c))
            return false;
    }
    return false;
}

static int
s_scan_value (const char *text, size_t len, const char *member, char *member_type)
{
    if (!text)
        return -1;
    s_scan_t s = { (const unsigned char *) text, (const unsigned char *) text + len };
    char stack [SB_JSON_SCAN_MAX_DEPTH];    // '{' or '[' per open container
    int depth = 0;
    size_t member_len = member? strlen (member): 0;
    bool want_member = false;               // the next value is the named top-level member's

    s_space (&s);
    while (true) {
        //  A value.
        if (s.p >= s.end)
            return -1;
        unsigned char c = *s.p;
        bool plain;
        if (want_member)
            *member_type = (c == '-' || (c >= '0' && c <= '9'))? '0': (char) c;
        want_member = false;
        if (c == '{' || c == '[') {
            if (depth == SB_JSON_SCAN_MAX_DEPTH)
                return -1;
            stack [depth++] = (char) c;
            s.p++;
            s_space (&s);
            if (s.p < s.end && *s.p == (c == '{'? '}': ']')) {
                s.p++;
                depth--;
            }
            else
            if (c == '[')
                continue;           // the first element
            else
                goto key;
        }
        else
        if (c == '"') {
            s.p++;
            if (!s_string (&s, &plain))
                return -1;
        }
        else
        if (c == 't' || c == 'f' || c == 'n') {
            if (!s_literal (&s, c == 't'? "true": c == 'f'? "false": "null", c == 'f'? 5: 4))
                return -1;
        }
        else
        if (!s_number (&s))
            return -1;

        //  After a value: close containers, or move to the next element.
        while (true) {
            s_space (&s);
            if (depth == 0)
                return s.p == s.end? 0: -1;
            if (s.p >= s.end)
                return -1;
            char open = stack [depth - 1];
            if (*s.p == (open == '{'? '}': ']')) {
                s.p++;
                depth--;
                continue;
            }
            if (*s.p != ',')
                return -1;
            s.p++;
            s_space (&s);
            if (open == '[')
                break;              // the next element
            goto key;
        }
        continue;
key:
        //  An object member's name and colon; its value is next.
        if (s.p >= s.end || *s.p != '"')
            return -1;
        s.p++;
        const unsigned char *name = s.p;
        if (!s_string (&s, &plain))
            return -1;
        if (member && depth == 1 && plain && (size_t) (s.p - 1 - name) == member_len
        &&  memcmp (name, member, member_len) == 0)
            want_member = true;
        s_space (&s);
        if (s.p >= s.end || *s.p != ':')
            return -1;
        s.p++;
        s_space (&s);
    }
}

int
sb_json_scan (const char *text, size_t len, const char *member, char *member_type)
{
    char type = 0;
    int rc = s_scan_value (text, len, member, &type);
    if (member_type)
        *member_type = rc == 0? type: 0;
    return rc;
}
