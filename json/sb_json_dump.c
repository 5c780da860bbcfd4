/*  json/sb_json_dump.c — a jansson tree to compact JSON text in one pass.
    json_dumps writes through a callback per token and validates strings one
    code point at a time; here the text goes into one growable buffer,
    strings are copied 8 bytes at a time up to the next byte that needs an
    escape or a UTF-8 check (found with bit tricks on the 8-byte word) and
    integers are converted by hand. The bytes are those of json_dumps
    (value, JSON_COMPACT | JSON_ENCODE_ANY) in jansson 2.14 (src/dump.c,
    src/strconv.c, src/utf.c):
      - strings escape '"', '\\', \b \f \n \r \t and other bytes below 0x20
        as \u00XX with upper-case hex; '/', 0x7F, U+2028 and all other
        non-ASCII are written raw. A string that is not valid UTF-8 (no
        overlongs, surrogates or code points past U+10FFFF) fails the dump;
      - an object key that is not valid UTF-8 does NOT fail: jansson ignores
        the failure of its key writer, which has by then written the opening
        quote and whatever preceded the key's last escape, and goes on with
        ':' and the value. Only json_object_set*_nocheck makes such keys;
        the output is copied as it is so the two writers stay interchangeable;
      - reals are "%.17g" with the decimal point made '.', ".0" appended when
        there is neither '.' nor 'e', and the exponent stripped of '+' and
        leading zeros;
      - a container met again inside itself (a cycle built by hand) fails
        the dump, as jansson's set of parents does.
    Containers are walked with an explicit stack, so nesting costs heap, not
    C stack. Cycles are only looked for past SB_JSON_MAX_DEPTH, where a tree
    from a parser never goes and where every cycle eventually leads. */
#include "sb_json.h"
#include "sb_attr.h"
#include "sb_json_int.h"

#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_JSON_DUMP_FIRST_SIZE     512     /* first output buffer, bytes */
#define SB_JSON_DUMP_INLINE_FRAMES  32      /* containers open before the stack moves to the heap */
#define SB_JSON_DUMP_CYCLE_DEPTH    SB_JSON_MAX_DEPTH   /* depth past which cycles are looked for */
#define SB_JSON_DUMP_REAL_MAX       100     /* longest real jansson writes (its MAX_REAL_STR_LENGTH) */
#define SB_JSON_DUMP_CHUNK          512     /* string bytes escaped per reservation of room */

//  The output text.
typedef struct {
    char *data;                 /* the text so far, not NUL-terminated until the end */
    size_t used;                /* bytes written */
    size_t size;                /* bytes allocated */
} s_out_t;

//  An open container.
typedef struct {
    const json_t *container;    /* the array or object */
    size_t index;               /* members written */
    size_t count;               /* array: its size */
    void *iter;                 /* object: next member, NULL after the last */
    size_t chain;               /* 1 + index of the next frame in this one's cycle bucket, 0 at the end */
} s_frame_t;

//  The containers open from the top of the tree down to the current one.
typedef struct {
    s_frame_t *frames;          /* frames [0 .. depth) */
    size_t depth;               /* containers open */
    size_t size;                /* frames allocated */
    size_t *buckets;            /* cycle check: 1 + index of the newest frame per bucket, 0 empty; NULL until needed */
    size_t bucket_count;        /* a power of two */
} s_stack_t;

static const char s_hex [] = "0123456789ABCDEF";

//  Makes room for `more` bytes; false when memory ran out.
static bool
s_grow (s_out_t *out, size_t more)
{
    size_t size = out->size;
    while (size - out->used < more) {
        if (size > SIZE_MAX / 2)
            return false;
        size *= 2;
    }
    char *data = realloc (out->data, size);
    if (!data)
        return false;
    out->data = data;
    out->size = size;
    return true;
}

static inline bool
s_reserve (s_out_t *out, size_t more)
{
    return out->size - out->used >= more || s_grow (out, more);
}

static inline bool
s_put (s_out_t *out, const char *bytes, size_t len)
{
    if (!s_reserve (out, len))
        return false;
    memcpy (out->data + out->used, bytes, len);
    out->used += len;
    return true;
}

static inline bool
s_putc (s_out_t *out, char c)
{
    if (!s_reserve (out, 1))
        return false;
    out->data [out->used++] = c;
    return true;
}

//  Stores `word` at `w`, its lowest byte first.
static inline void
s_store8 (unsigned char *w, uint64_t word)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64 (word);
#endif
    memcpy (w, &word, 8);
}

//  The `n` (1 to 7) bytes at `p` as sb_json_load8 would load them, without
//  reading past them; the bytes above are spaces, which need no escape.
static inline uint64_t
s_load_short (const unsigned char *p, size_t n)
{
    uint64_t word;
    if (n >= 4) {
        uint32_t low, high;
        memcpy (&low, p, 4);
        memcpy (&high, p + n - 4, 4);           // overlaps `low` when n < 8
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        low = __builtin_bswap32 (low);
        high = __builtin_bswap32 (high);
#endif
        word = low | (uint64_t) high << (8 * (n - 4));
    }
    else
    if (n >= 2) {
        word = p [0] | (uint64_t) p [1] << 8 | (uint64_t) p [n - 1] << (8 * (n - 1));
    }
    else
        word = p [0];
    return word | (0x2020202020202020ull << (8 * n));
}

//  Writes the `len` bytes at `str` as a JSON string. Returns 0, -1 when
//  memory ran out, or 1 when the bytes are not valid UTF-8: the output then
//  holds what jansson's dump_string has written by then (the opening quote
//  and everything up to the last escape before the bad byte).
//  The bytes go out in chunks, each with room reserved for its worst case
//  (every byte a 6-byte escape), so the inner loop stores 8 bytes at a time
//  without checks and keeps those before the first that needs care.
static int
s_string (s_out_t *out, const char *str, size_t len)
{
    const unsigned char *p = (const unsigned char *) str;
    const unsigned char *end = p + len;
    if (!s_reserve (out, 1))
        return -1;
    out->data [out->used++] = '"';
    size_t committed = out->used;               // output up to the last escape, kept on bad UTF-8
    while (p < end) {
        size_t chunk = (size_t) (end - p) < SB_JSON_DUMP_CHUNK? (size_t) (end - p): SB_JSON_DUMP_CHUNK;
        const unsigned char *chunk_end = p + chunk;
        //  A word may run 7 bytes past the chunk, a UTF-8 sequence 3.
        if (!s_reserve (out, 6 * chunk + 16))
            return -1;
        unsigned char *w = (unsigned char *) out->data + out->used;
        while (p < chunk_end) {
            size_t avail = (size_t) (end - p);
            size_t n = avail < 8? avail: 8;
            uint64_t word = n == 8? sb_json_load8 (p): s_load_short (p, n);
            s_store8 (w, word);                 // clean bytes stay; the rest is overwritten
            uint64_t special = sb_json_special8 (word);
            if (!special) {
                p += n;
                w += n;
                continue;
            }
            size_t clean = (size_t) __builtin_ctzll (special) / 8;
            p += clean;
            w += clean;
            unsigned char c = *p;
            if (c >= 0x80) {
                size_t length = sb_json_utf8_len (p, end);
                if (length == 0) {
                    out->used = committed;
                    return 1;
                }
                for (size_t i = 0; i < length; i++)
                    *w++ = *p++;
                continue;
            }
            p++;
            *w++ = '\\';
            switch (c) {
                case '"':  *w++ = '"';  break;
                case '\\': *w++ = '\\'; break;
                case '\b': *w++ = 'b';  break;
                case '\f': *w++ = 'f';  break;
                case '\n': *w++ = 'n';  break;
                case '\r': *w++ = 'r';  break;
                case '\t': *w++ = 't';  break;
                default:
                    *w++ = 'u';
                    *w++ = '0';
                    *w++ = '0';
                    *w++ = (unsigned char) s_hex [c >> 4];
                    *w++ = (unsigned char) s_hex [c & 15];
            }
            committed = (size_t) ((char *) w - out->data);
        }
        out->used = (size_t) ((char *) w - out->data);
    }
    if (!s_reserve (out, 1))
        return -1;
    out->data [out->used++] = '"';
    return 0;
}

//  Writes the decimal digits of `magnitude` backwards from `end` (room for
//  20 needed), returning where they start.
static inline char *
s_digits (char *end, uint64_t magnitude)
{
    do {
        *--end = (char) ('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    return end;
}

static bool
s_integer (s_out_t *out, json_int_t value)
{
    char text [24];
    char *end = text + sizeof text;
    uint64_t magnitude = value < 0? 0 - (uint64_t) value: (uint64_t) value;
    char *start = s_digits (end, magnitude);
    if (value < 0)
        *--start = '-';
    return s_put (out, start, (size_t) (end - start));
}

//  jansson's jsonp_dtostr (value, precision 0).
static bool
s_real (s_out_t *out, double value)
{
    char text [SB_JSON_DUMP_REAL_MAX];
    //  A whole number below 1e17 has at most 17 digits, so "%.17g" writes
    //  it exactly, without an exponent; jansson then appends ".0".
    if (value > -1e17 && value < 1e17 && value == (double) (int64_t) value) {
        char *end = text + sizeof text;
        *--end = '0';
        *--end = '.';
        int64_t whole = (int64_t) value;
        char *start = s_digits (end, whole < 0? 0 - (uint64_t) whole: (uint64_t) whole);
        if (signbit (value))
            *--start = '-';                     // also -0.0, "-0.0" in jansson
        return s_put (out, start, (size_t) (text + sizeof text - start));
    }
    int length = snprintf (text, sizeof text, "%.17g", value);
    if (length < 0 || (size_t) length >= sizeof text)
        return false;
    char point = *localeconv ()->decimal_point;
    if (point != '.') {
        char *at = strchr (text, point);
        if (at)
            *at = '.';
    }
    char *exponent = strchr (text, 'e');
    if (!exponent && !strchr (text, '.')) {
        if ((size_t) length + 3 >= sizeof text)
            return false;
        memcpy (text + length, ".0", 3);
        length += 2;
    }
    if (exponent) {
        //  "e+07" → "e7", "e-07" → "e-7": a '+' and leading zeros go.
        char *to = exponent + 1;
        char *from = to;
        if (*from == '-')
            from = ++to;
        else
        if (*from == '+')
            from++;
        while (*from == '0')
            from++;
        if (from != to) {
            memmove (to, from, (size_t) (text + length - from) + 1);
            length -= (int) (from - to);
        }
    }
    return s_put (out, text, (size_t) length);
}

static inline size_t
s_bucket (const s_stack_t *stack, const json_t *container)
{
    uint64_t hash = (uint64_t) (uintptr_t) container * 0x9E3779B97F4A7C15ull;
    return (size_t) (hash >> 32) & (stack->bucket_count - 1);
}

//  Links frame `index` at the head of its bucket; false when its container
//  is already open below it.
static bool
s_cycle_link (s_stack_t *stack, size_t index)
{
    s_frame_t *frame = &stack->frames [index];
    size_t bucket = s_bucket (stack, frame->container);
    for (size_t at = stack->buckets [bucket]; at; at = stack->frames [at - 1].chain)
        if (stack->frames [at - 1].container == frame->container)
            return false;
    frame->chain = stack->buckets [bucket];
    stack->buckets [bucket] = index + 1;
    return true;
}

//  (Re)builds the cycle check's buckets for the frames open, with room for
//  twice as many. Returns 0, -1 when memory ran out, 1 on a cycle.
static int
s_cycle_rebuild (s_stack_t *stack)
{
    size_t count = stack->bucket_count? stack->bucket_count: SB_JSON_DUMP_CYCLE_DEPTH;
    while (count < 2 * stack->depth)
        count *= 2;
    size_t *buckets = calloc (count, sizeof *buckets);
    if (!buckets)
        return -1;
    free (stack->buckets);
    stack->buckets = buckets;
    stack->bucket_count = count;
    for (size_t index = 0; index < stack->depth; index++)
        if (!s_cycle_link (stack, index))
            return 1;
    return 0;
}

//  Opens `container`, a non-empty array of `count` elements or an object
//  whose first member is at `iter`. Returns 0, -1 when memory ran out, 1
//  when the container is already open (a cycle).
static int
s_push (s_stack_t *stack, const json_t *container, size_t count, void *iter,
        s_frame_t *inline_frames)
{
    if (stack->depth == stack->size) {
        if (stack->size > SIZE_MAX / 2 / sizeof (s_frame_t))
            return -1;
        size_t size = stack->size * 2;
        s_frame_t *frames;
        if (stack->frames == inline_frames) {
            frames = malloc (size * sizeof *frames);
            if (frames)
                memcpy (frames, inline_frames, stack->depth * sizeof *frames);
        }
        else
            frames = realloc (stack->frames, size * sizeof *frames);
        if (!frames)
            return -1;
        stack->frames = frames;
        stack->size = size;
    }
    s_frame_t *frame = &stack->frames [stack->depth++];
    frame->container = container;
    frame->chain = 0;
    frame->index = 0;
    frame->count = count;
    frame->iter = iter;
    if (stack->buckets) {
        if (stack->depth > 2 * stack->bucket_count)
            return s_cycle_rebuild (stack);
        return s_cycle_link (stack, stack->depth - 1)? 0: 1;
    }
    if (stack->depth > SB_JSON_DUMP_CYCLE_DEPTH)
        return s_cycle_rebuild (stack);
    return 0;
}

static void
s_pop (s_stack_t *stack)
{
    stack->depth--;
    if (stack->buckets) {
        //  Frames are linked in the order they open, so the one closing
        //  heads its bucket.
        s_frame_t *frame = &stack->frames [stack->depth];
        stack->buckets [s_bucket (stack, frame->container)] = frame->chain;
    }
}

//  Writes one value; opens arrays and objects that have members, to be
//  continued by the caller. Returns 0, or -1 when the dump fails.
static int
s_value (s_out_t *out, s_stack_t *stack, const json_t *value, s_frame_t *inline_frames)
{
    switch (json_typeof (value)) {
        case JSON_NULL:
            return s_put (out, "null", 4)? 0: -1;
        case JSON_TRUE:
            return s_put (out, "true", 4)? 0: -1;
        case JSON_FALSE:
            return s_put (out, "false", 5)? 0: -1;
        case JSON_INTEGER:
            return s_integer (out, json_integer_value (value))? 0: -1;
        case JSON_REAL:
            return s_real (out, json_real_value (value))? 0: -1;
        case JSON_STRING:
            return s_string (out, json_string_value (value), json_string_length (value)) == 0? 0: -1;
        case JSON_ARRAY: {
            size_t count = json_array_size (value);
            if (count == 0)
                return s_put (out, "[]", 2)? 0: -1;
            if (!s_putc (out, '['))
                return -1;
            return s_push (stack, value, count, NULL, inline_frames) == 0? 0: -1;
        }
        case JSON_OBJECT: {
            void *iter = json_object_iter (sb_unconst (value));
            if (!iter)
                return s_put (out, "{}", 2)? 0: -1;
            if (!s_putc (out, '{'))
                return -1;
            return s_push (stack, value, 0, iter, inline_frames) == 0? 0: -1;
        }
        default:
            return -1;
    }
}

char *
sb_json_dump (const json_t *value, size_t *len)
{
    if (!value)
        return NULL;
    s_frame_t inline_frames [SB_JSON_DUMP_INLINE_FRAMES];
    s_stack_t stack = { inline_frames, 0, SB_JSON_DUMP_INLINE_FRAMES, NULL, 0 };
    s_out_t out = { malloc (SB_JSON_DUMP_FIRST_SIZE), 0, SB_JSON_DUMP_FIRST_SIZE };
    if (!out.data)
        return NULL;
    int rc = s_value (&out, &stack, value, inline_frames);
    while (rc == 0 && stack.depth > 0) {
        s_frame_t *frame = &stack.frames [stack.depth - 1];
        const json_t *next;
        if (json_is_array (frame->container)) {
            if (frame->index == frame->count) {
                s_pop (&stack);
                rc = s_putc (&out, ']')? 0: -1;
                continue;
            }
            if (frame->index > 0 && !s_putc (&out, ',')) {
                rc = -1;
                break;
            }
            next = json_array_get (frame->container, frame->index++);
        }
        else {
            void *iter = frame->iter;
            if (!iter) {
                s_pop (&stack);
                rc = s_putc (&out, '}')? 0: -1;
                continue;
            }
            if (frame->index++ > 0 && !s_putc (&out, ',')) {
                rc = -1;
                break;
            }
            frame->iter = json_object_iter_next (sb_unconst (frame->container), iter);
            //  A key that is not UTF-8 is left unterminated, as jansson leaves it.
            if (s_string (&out, json_object_iter_key (iter), json_object_iter_key_len (iter)) < 0
            ||  !s_putc (&out, ':')) {
                rc = -1;
                break;
            }
            next = json_object_iter_value (iter);
        }
        if (!next) {
            rc = -1;
            break;
        }
        rc = s_value (&out, &stack, next, inline_frames);
    }
    if (stack.frames != inline_frames)
        free (stack.frames);
    free (stack.buckets);
    if (rc != 0 || !s_putc (&out, '\0')) {
        free (out.data);
        return NULL;
    }
    if (len)
        *len = out.used - 1;
    return out.data;
}
