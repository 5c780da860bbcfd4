/*  json/sb_json_int.h — what the JSON scanner, reader and writer share:
    the UTF-8 rule jansson applies, \u escapes' hex digits, and the eight-
    bytes-at-a-time test that lets each of them skip the plain part of a
    string. Internal to common/. */
#ifndef SB_JSON_INT_H_INCLUDED
#define SB_JSON_INT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*  Length of the UTF-8 sequence at `p` (a byte >= 0x80) when it is valid
    and ends before `end`, else 0. Valid as jansson's utf8_check_full has
    it: 2 to 4 bytes, no overlongs, no surrogates, nothing past U+10FFFF. */
static inline size_t
sb_json_utf8_len (const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p [0];
    unsigned char low = 0x80, high = 0xBF;      // the second byte's range
    size_t len;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else
    if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            low = 0xA0;                         // no overlongs
        if (c == 0xED)
            high = 0x9F;                        // no surrogates
    }
    else
    if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            low = 0x90;                         // no overlongs
        if (c == 0xF4)
            high = 0x8F;                        // nothing past U+10FFFF
    }
    else
        return 0;
    if ((size_t) (end - p) < len || p [1] < low || p [1] > high)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p [i] < 0x80 || p [i] > 0xBF)
            return 0;
    return len;
}

/*  The value of the hex digit `c`, or -1 when it is not one. */
static inline int
sb_json_hex (unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*  The value of the four hex digits at `p` (all four must be readable),
    or -1 when one is not a hex digit. */
static inline long
sb_json_hex4 (const unsigned char *p)
{
    int a = sb_json_hex (p [0]), b = sb_json_hex (p [1]);
    int c = sb_json_hex (p [2]), d = sb_json_hex (p [3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (long) ((a << 12) | (b << 8) | (c << 4) | d);
}

/*  The 8 bytes at `p` as a number whose lowest byte is p [0]. */
static inline uint64_t
sb_json_load8 (const unsigned char *p)
{
    uint64_t word;
    memcpy (&word, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64 (word);
#endif
    return word;
}

/*  Marks with 0x80 the lowest byte of `word` (as sb_json_load8 gives it)
    that is below 0x20, '"', '\\' or 0x80 and up; 0 when none is. Bytes
    above the lowest mark may be marked wrongly (borrows): only the lowest
    counts, at bit 8 * index + 7 (__builtin_ctzll (mark) / 8 is its index). */
static inline uint64_t
sb_json_special8 (uint64_t word)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t quote = word ^ (ones * '"');
    uint64_t backslash = word ^ (ones * '\\');
    return ((word - ones * 0x20) | word
            | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) & high;
}

#endif
