/*  json/sb_json_parse.c — JSON text to a jansson tree in one pass.
    json_loadb reads through a callback per byte, keeps every token's text
    in a buffer and converts it afterwards; here the lexer works on the
    buffer itself: strings without escapes are found eight bytes at a time
    and handed to json_stringn_nocheck where they lie (UTF-8 is checked only
    where a byte is >= 0x80), escaped strings are decoded into a scratch
    buffer reused for the whole text, integers are converted by hand and
    reals by hand when that is exact (Clinger's fast path), else by strtod.

    What is accepted, refused and built is what jansson 2.14 does
    (src/load.c, src/utf.c, src/strconv.c), and so are the error reports:
    the same sentences, the same "near '<token>'" context (the token's text
    when at most 20 bytes; "near end of file" when there is none), the same
    error code, line, column (in characters) and byte position. The order
    in which jansson meets errors is kept: a token is read whole before the
    parser looks at it, a byte >= 0x80 is checked as UTF-8 as soon as it is
    read, even as a lookahead, and inside a string the escapes are decoded
    (bad surrogates found) only once the closing quote is reached.
    One difference, on purpose: jansson loses a NUL byte that directly
    follows a number or true/false/null (its stream cannot push a NUL back)
    and so accepts "[1\0]"; here every NUL byte outside a string is an
    invalid token, as it is everywhere else in jansson.

    Containers are attached to their parent as soon as they open, so the
    only state per open container is a pointer in an explicit stack (no
    recursion: hostile nesting costs at most SB_JSON_MAX_DEPTH pointers).
    Attaching early builds the same tree: a key's position in its object is
    fixed when the key is first inserted, and a later duplicate replaces the
    value in place, whether inserted before or after its value is filled. */
#include "sb_json.h"
#include "sb_json_int.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_JSON_PARSE_INLINE_SCRATCH  256   /* bytes of decoded string kept on the C stack */
#define SB_JSON_PARSE_SCRATCH_HINT    65536 /* most bytes a string's scratch takes at once */
#define SB_JSON_PARSE_INLINE_FRAMES   64    /* open containers before the stack moves to the heap */
#define SB_JSON_PARSE_CONTEXT_MAX     20    /* longest token quoted in an error, as jansson */
#define SB_JSON_PARSE_MESSAGE_MAX     96    /* an error's sentence before its context */
#define SB_JSON_PARSE_INLINE_REAL     64    /* reals up to this length go to strtod from the C stack */
#define SB_JSON_PARSE_FAST_DIGITS     19    /* significant digits a uint64_t always holds */

#define S_FLAGS_SUPPORTED  (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

_Static_assert (sizeof (json_int_t) == 8, "integers are range-checked as 64-bit");
#if JSON_INTEGER_IS_LONG_LONG
#   define S_INT_MAX  LLONG_MAX
#   define S_INT_MIN  LLONG_MIN
#else
#   define S_INT_MAX  LONG_MAX
#   define S_INT_MIN  LONG_MIN
#endif

//  Tokens: a punctuation byte itself, or one of these.
enum {
    S_TOKEN_ERROR = -2,         // the lexer already reported an error
    S_TOKEN_INVALID = -1,       // not a token; the parser reports it
    S_TOKEN_EOF = 0,
    S_TOKEN_STRING = 256,
    S_TOKEN_INTEGER,
    S_TOKEN_REAL,
    S_TOKEN_TRUE,
    S_TOKEN_FALSE,
    S_TOKEN_NULL
};

//  A growable byte buffer that starts on the C stack.
typedef struct {
    char *data;                 // the bytes; `inline_data` until it grows
    size_t size;                // bytes used
    size_t max;                 // bytes allocated
    char inline_data [SB_JSON_PARSE_INLINE_SCRATCH];    // first storage
} s_buffer_t;

typedef struct {
    const unsigned char *text;  // the whole text
    const unsigned char *end;   // one past its last byte
    const unsigned char *p;     // next byte to read
    const unsigned char *token; // first byte of the current token
    json_error_t *error;        // where to report, or NULL
    bool failed;                // an error was reported (the first one wins)
    //  The current token's value
    const char *string;         // a string's decoded bytes
    size_t string_len;          // and their count
    bool string_nul;            // it holds \u0000
    bool string_scratch;        // it lies in scratch [current], not in the text
    json_int_t integer;         // an integer's value
    double real;                // a real's value
    s_buffer_t scratch [2];     // decoded strings: a key's and the next token's
    int current;                // the scratch buffer the lexer writes into
} s_parse_t;

//  Reports an error found at `at`, quoting the current token's text up to
//  there, as jansson's error_set does. Only the first error counts.
static void
s_fail (s_parse_t *self, enum json_error_code code, const unsigned char *at, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_fail (s_parse_t *self, enum json_error_code code, const unsigned char *at, const char *format, ...)
{
    if (self->failed)
        return;
    self->failed = true;
    json_error_t *error = self->error;
    if (!error)
        return;

    char message [SB_JSON_PARSE_MESSAGE_MAX];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);

    //  jansson keeps the token as a C string: a leading NUL reads as none.
    const char *saved = (const char *) self->token;
    size_t saved_len = (size_t) (at - self->token);
    if (code == json_error_out_of_memory)
        snprintf (error->text, JSON_ERROR_TEXT_LENGTH - 1, "%s", message);
    else
    if (saved_len > 0 && saved [0] != '\0') {
        if (saved_len <= SB_JSON_PARSE_CONTEXT_MAX) {
            char context [SB_JSON_PARSE_CONTEXT_MAX + 1];
            memcpy (context, saved, saved_len);
            context [saved_len] = '\0';
            snprintf (error->text, JSON_ERROR_TEXT_LENGTH - 1, "%s near '%s'", message, context);
        }
        else
            snprintf (error->text, JSON_ERROR_TEXT_LENGTH - 1, "%s", message);
    }
    else {
        if (code == json_error_invalid_syntax)
            code = json_error_premature_end_of_input;
        if (code == json_error_invalid_utf8)
            snprintf (error->text, JSON_ERROR_TEXT_LENGTH - 1, "%s", message);
        else
            snprintf (error->text, JSON_ERROR_TEXT_LENGTH - 1, "%s near end of file", message);
    }
    error->text [JSON_ERROR_TEXT_LENGTH - 1] = (char) code;

    //  Line and column of the last byte read; the column counts characters.
    int line = 1, column = 0;
    for (const unsigned char *p = self->text; p < at; p++) {
        if (*p == '\n') {
            line++;
            column = 0;
        }
        else
        if (*p < 0x80 || (*p >= 0xC2 && *p <= 0xF4))
            column++;
    }
    error->line = line;
    error->column = column;
    error->position = (int) (at - self->text);
}

static void
s_fail_memory (s_parse_t *self)
{
    s_fail (self, json_error_out_of_memory, self->p, "out of memory");
}

//  Whether the byte at p, which jansson's stream is about to read, makes it
//  fail: a byte >= 0x80 that does not start a valid UTF-8 sequence. Reports it.
static inline bool
s_bad_byte (s_parse_t *self, const unsigned char *p)
{
    if (p < self->end && *p >= 0x80 && !sb_json_utf8_len (p, self->end)) {
        s_fail (self, json_error_invalid_utf8, p, "unable to decode byte 0x%x", *p);
        return true;
    }
    return false;
}

//  Makes room for `more` bytes in the buffer; false when memory ran out.
//  Leaving the C stack, it takes room for `hint` bytes at once (what is
//  left of the text, up to a limit), so one long escaped string costs one
//  allocation, not one per doubling.
static bool
s_buffer_grow (s_buffer_t *self, size_t more, size_t hint)
{
    size_t max = self->max * 2;
    if (max - self->size < more)
        max = self->size + more;
    char *data;
    if (self->data == self->inline_data) {
        if (hint > SB_JSON_PARSE_SCRATCH_HINT)
            hint = SB_JSON_PARSE_SCRATCH_HINT;
        if (max - self->size < hint)
            max = self->size + hint;
        data = malloc (max);
        if (data)
            memcpy (data, self->data, self->size);
    }
    else
        data = realloc (self->data, max);
    if (!data)
        return false;
    self->data = data;
    self->max = max;
    return true;
}

//  A string token, self->token at its opening quote. As jansson, reads it
//  whole first: a control byte, a bad escape or bad UTF-8 anywhere in it is
//  reported before a bad surrogate, which is reported at the closing quote.
static int
s_lex_string (s_parse_t *self)
{
    const unsigned char *p = self->token + 1, *end = self->end;
    const unsigned char *run = p;       // first byte not yet copied to scratch
    s_buffer_t *scratch = &self->scratch [self->current];
    bool escaped = false;               // the value is built in scratch
    bool nul = false;
    long bad_unicode = -1, bad_second = -1;     // the first bad \u escape(s)

    while (true) {
        while (end - p >= 8) {
            uint64_t special = sb_json_special8 (sb_json_load8 (p));
            if (special) {
                p += __builtin_ctzll (special) >> 3;
                goto special;
            }
            p += 8;
        }
        while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80)
            p++;
        if (p == end) {
            s_fail (self, json_error_premature_end_of_input, p, "premature end of input");
            return S_TOKEN_ERROR;
        }
special:;
        unsigned char c = *p;
        if (c == '"')
            break;
        if (c >= 0x80) {
            size_t len = sb_json_utf8_len (p, end);
            if (!len) {
                s_fail (self, json_error_invalid_utf8, p, "unable to decode byte 0x%x", c);
                return S_TOKEN_ERROR;
            }
            p += len;
            continue;
        }
        if (c < 0x20) {
            if (c == '\n')
                s_fail (self, json_error_invalid_syntax, p, "unexpected newline");
            else
                s_fail (self, json_error_invalid_syntax, p, "control character 0x%x", c);
            return S_TOKEN_ERROR;
        }

        //  An escape.
        if (!escaped) {
            escaped = true;
            scratch->size = 0;
        }
        size_t run_len = (size_t) (p - run);
        if (scratch->max - scratch->size < run_len + 4
        &&  !s_buffer_grow (scratch, run_len + 4, (size_t) (end - p))) {
            s_fail_memory (self);
            return S_TOKEN_ERROR;
        }
        memcpy (scratch->data + scratch->size, run, run_len);
        scratch->size += run_len;
        p++;
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
        if (p == end) {
            s_fail (self, json_error_invalid_syntax, p, "invalid escape");
            return S_TOKEN_ERROR;
        }
        c = *p++;
        char *out = scratch->data + scratch->size;
        if (c == 'u') {
            long value = 0;
            for (int i = 0; i < 4; i++, p++) {
                if (s_bad_byte (self, p))
                    return S_TOKEN_ERROR;
                int digit = p < end? sb_json_hex (*p): -1;
                if (digit < 0) {
                    s_fail (self, json_error_invalid_syntax, p < end? p + 1: p, "invalid escape");
                    return S_TOKEN_ERROR;
                }
                value = (value << 4) | digit;
            }
            if (bad_unicode >= 0)
                ;                       // already failed: only look for lexical errors
            else
            if (value >= 0xD800 && value <= 0xDBFF) {
                //  A high surrogate: a low one must follow. When the next
                //  escape is a \u without four hex digits, the loop finds it.
                long low = end - p >= 6 && p [0] == '\\' && p [1] == 'u'? sb_json_hex4 (p + 2): -1;
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    unsigned long code = 0x10000 + ((unsigned long) (value - 0xD800) << 10)
                                       + (unsigned long) (low - 0xDC00);
                    out [0] = (char) (0xF0 | (code >> 18));
                    out [1] = (char) (0x80 | ((code >> 12) & 0x3F));
                    out [2] = (char) (0x80 | ((code >> 6) & 0x3F));
                    out [3] = (char) (0x80 | (code & 0x3F));
                    scratch->size += 4;
                    p += 6;
                }
                else {
                    bad_unicode = value;
                    bad_second = low;
                }
            }
            else
            if (value >= 0xDC00 && value <= 0xDFFF)
                bad_unicode = value;
            else
            if (value < 0x80) {
                out [0] = (char) value;
                scratch->size += 1;
                nul |= value == 0;
            }
            else
            if (value < 0x800) {
                out [0] = (char) (0xC0 | (value >> 6));
                out [1] = (char) (0x80 | (value & 0x3F));
                scratch->size += 2;
            }
            else {
                out [0] = (char) (0xE0 | (value >> 12));
                out [1] = (char) (0x80 | ((value >> 6) & 0x3F));
                out [2] = (char) (0x80 | (value & 0x3F));
                scratch->size += 3;
            }
        }
        else {
            switch (c) {
                case '"':
                case '\\':
                case '/': *out = (char) c; break;
                case 'b': *out = '\b'; break;
                case 'f': *out = '\f'; break;
                case 'n': *out = '\n'; break;
                case 'r': *out = '\r'; break;
                case 't': *out = '\t'; break;
                default:
                    s_fail (self, json_error_invalid_syntax, p, "invalid escape");
                    return S_TOKEN_ERROR;
            }
            scratch->size++;
        }
        run = p;
    }
    //  p is at the closing quote.
    self->p = p + 1;
    if (bad_unicode >= 0) {
        if (bad_second >= 0)
            s_fail (self, json_error_invalid_syntax, self->p, "invalid Unicode '\\u%04lX\\u%04lX'",
                    bad_unicode, bad_second);
        else
            s_fail (self, json_error_invalid_syntax, self->p, "invalid Unicode '\\u%04lX'",
                    bad_unicode);
        return S_TOKEN_ERROR;
    }
    if (escaped) {
        size_t run_len = (size_t) (p - run);
        if (scratch->max - scratch->size < run_len
        &&  !s_buffer_grow (scratch, run_len, run_len)) {
            s_fail_memory (self);
            return S_TOKEN_ERROR;
        }
        memcpy (scratch->data + scratch->size, run, run_len);
        scratch->size += run_len;
        self->string = scratch->data;
        self->string_len = scratch->size;
    }
    else {
        self->string = (const char *) self->token + 1;
        self->string_len = (size_t) (p - self->token - 1);
    }
    self->string_nul = nul;
    self->string_scratch = escaped;
    return S_TOKEN_STRING;
}

static const double s_powers_of_ten [] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

//  The real in [self->token, end) by strtod, in the current locale as
//  jansson does; false when it overflows a double.
static bool
s_strtod (s_parse_t *self, const unsigned char *end, bool *memory)
{
    size_t len = (size_t) (end - self->token);
    char inline_text [SB_JSON_PARSE_INLINE_REAL];
    char *text = len < sizeof inline_text? inline_text: malloc (len + 1);
    if (!text) {
        *memory = false;
        return false;
    }
    memcpy (text, self->token, len);
    text [len] = '\0';
    const char *point = localeconv ()->decimal_point;
    if (*point != '.') {
        char *dot = strchr (text, '.');
        if (dot)
            *dot = *point;
    }
    errno = 0;
    double value = strtod (text, NULL);
    bool overflow = (value == HUGE_VAL || value == -HUGE_VAL) && errno == ERANGE;
    if (text != inline_text)
        free (text);
    self->real = value;
    return !overflow;
}

//  Adds the decimal digits in [d, end) to *mantissa; false once the
//  significant ones (past leading zeros) are more than a uint64_t holds.
static inline bool
s_add_digits (const unsigned char *d, const unsigned char *end, uint64_t *mantissa, int *significant)
{
    for (; d < end; d++) {
        if ((*significant || *d != '0') && ++*significant > SB_JSON_PARSE_FAST_DIGITS)
            return false;
        *mantissa = *mantissa * 10 + (uint64_t) (*d - '0');
    }
    return true;
}

//  A number token, self->token at its '-' or first digit. Every byte the
//  grammar looks at next is a byte jansson's stream reads, so checked as
//  UTF-8 before it decides.
static int
s_lex_number (s_parse_t *self)
{
    const unsigned char *p = self->token, *end = self->end;
    bool negative = *p == '-';
    if (negative)
        p++;
    const unsigned char *digits = p;
    if (s_bad_byte (self, p))
        return S_TOKEN_ERROR;
    if (p < end && *p == '0') {
        p++;
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
        if (p < end && *p >= '0' && *p <= '9') {
            self->p = p;
            return S_TOKEN_INVALID;
        }
    }
    else
    if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
    }
    else {
        self->p = p;
        return S_TOKEN_INVALID;
    }
    const unsigned char *integer_end = p;

    if (p == end || (*p != '.' && *p != 'e' && *p != 'E')) {
        self->p = p;
        size_t count = (size_t) (p - digits);
        uint64_t value = 0;
        if (count <= SB_JSON_PARSE_FAST_DIGITS)
            for (const unsigned char *d = digits; d < p; d++)
                value = value * 10 + (uint64_t) (*d - '0');
        if (negative) {
            if (count > SB_JSON_PARSE_FAST_DIGITS || value > (uint64_t) S_INT_MAX + 1) {
                s_fail (self, json_error_numeric_overflow, p, "too big negative integer");
                return S_TOKEN_ERROR;
            }
            self->integer = value == (uint64_t) S_INT_MAX + 1? S_INT_MIN: -(json_int_t) value;
        }
        else {
            if (count > SB_JSON_PARSE_FAST_DIGITS || value > (uint64_t) S_INT_MAX) {
                s_fail (self, json_error_numeric_overflow, p, "too big integer");
                return S_TOKEN_ERROR;
            }
            self->integer = (json_int_t) value;
        }
        return S_TOKEN_INTEGER;
    }

    const unsigned char *fraction = p, *fraction_end = p;
    if (*p == '.') {
        p++;
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
        if (p == end || *p < '0' || *p > '9') {
            self->p = p;
            return S_TOKEN_INVALID;
        }
        fraction = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        fraction_end = p;
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
    }
    long exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
        bool exponent_negative = false;
        if (p < end && (*p == '+' || *p == '-')) {
            exponent_negative = *p == '-';
            p++;
            if (s_bad_byte (self, p))
                return S_TOKEN_ERROR;
        }
        if (p == end || *p < '0' || *p > '9') {
            self->p = p;
            return S_TOKEN_INVALID;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            if (exponent < 100000)      // past any double; only the slow path sees it
                exponent = exponent * 10 + (*p - '0');
            p++;
        }
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
        if (exponent_negative)
            exponent = -exponent;
    }
    self->p = p;

    //  Exact when the digits fit 53 bits and the power of ten is exact:
    //  one correctly rounded operation, the double strtod gives.
    uint64_t mantissa = 0;
    int significant = 0;
    bool fast = FLT_EVAL_METHOD == 0
             && s_add_digits (digits, integer_end, &mantissa, &significant)
             && s_add_digits (fraction, fraction_end, &mantissa, &significant);
    exponent -= (long) (fraction_end - fraction);
    if (fast && mantissa <= (1ull << 53) && exponent >= -22 && exponent <= 22) {
        double value = (double) mantissa;
        value = exponent < 0? value / s_powers_of_ten [-exponent]: value * s_powers_of_ten [exponent];
        self->real = negative? -value: value;
        return S_TOKEN_REAL;
    }
    bool memory = true;
    if (!s_strtod (self, p, &memory)) {
        if (memory)
            s_fail (self, json_error_numeric_overflow, p, "real number overflow");
        else
            s_fail_memory (self);
        return S_TOKEN_ERROR;
    }
    return S_TOKEN_REAL;
}

static inline bool
s_is_alpha (unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

//  A token that is not punctuation, self->token at its first byte.
static int
s_lex_other (s_parse_t *self)
{
    const unsigned char *p = self->token, *end = self->end;
    unsigned char c = *p;
    if (c == '"')
        return s_lex_string (self);
    if (c == '-' || (c >= '0' && c <= '9'))
        return s_lex_number (self);
    if (s_is_alpha (c)) {
        //  A word, read whole as jansson does for its error message.
        while (p < end && s_is_alpha (*p))
            p++;
        self->p = p;
        if (s_bad_byte (self, p))
            return S_TOKEN_ERROR;
        size_t len = (size_t) (p - self->token);
        if (len == 4 && memcmp (self->token, "true", 4) == 0)
            return S_TOKEN_TRUE;
        if (len == 5 && memcmp (self->token, "false", 5) == 0)
            return S_TOKEN_FALSE;
        if (len == 4 && memcmp (self->token, "null", 4) == 0)
            return S_TOKEN_NULL;
        return S_TOKEN_INVALID;
    }
    if (c >= 0x80) {
        //  A whole character that starts no token, or bad UTF-8.
        size_t len = sb_json_utf8_len (p, end);
        if (!len) {
            s_fail (self, json_error_invalid_utf8, p, "unable to decode byte 0x%x", c);
            return S_TOKEN_ERROR;
        }
        self->p = p + len;
        return S_TOKEN_INVALID;
    }
    self->p = p + 1;
    return S_TOKEN_INVALID;
}

//  The next token; self->token is its first byte and self->p one past its
//  last. S_TOKEN_ERROR when the lexer reported an error itself. Whitespace
//  and punctuation, most tokens, are read here without a call.
static inline int
s_lex (s_parse_t *self)
{
    const unsigned char *p = self->p, *end = self->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    self->token = p;
    if (p == end) {
        self->p = p;
        return S_TOKEN_EOF;
    }
    unsigned char c = *p;
    if (c == ',' || c == ':' || c == '{' || c == '}' || c == '[' || c == ']') {
        self->p = p + 1;
        return c;
    }
    return s_lex_other (self);
}

json_t *
sb_json_parse (const char *text, size_t len, size_t flags, json_error_t *error)
{
    if (error) {
        memset (error->text, 0, sizeof error->text);
        error->line = -1;
        error->column = -1;
        error->position = 0;
        snprintf (error->source, sizeof error->source, "%s", "<buffer>");
    }
    if (!text) {
        if (error) {
            snprintf (error->text, JSON_ERROR_TEXT_LENGTH - 1, "wrong arguments");
            error->text [JSON_ERROR_TEXT_LENGTH - 1] = json_error_invalid_argument;
        }
        return NULL;
    }
    if (flags & ~(size_t) S_FLAGS_SUPPORTED) {
        if (error) {
            snprintf (error->text, JSON_ERROR_TEXT_LENGTH - 1, "flag 0x%zx not supported",
                      flags & ~(size_t) S_FLAGS_SUPPORTED);
            error->text [JSON_ERROR_TEXT_LENGTH - 1] = json_error_invalid_argument;
        }
        return NULL;
    }

    s_parse_t self;
    self.text = (const unsigned char *) text;
    self.end = self.text + len;
    self.p = self.text;
    self.token = self.text;
    self.error = error;
    self.failed = false;
    self.string = NULL;
    self.string_len = 0;
    self.string_nul = false;
    self.string_scratch = false;
    for (int i = 0; i < 2; i++) {
        self.scratch [i].data = self.scratch [i].inline_data;
        self.scratch [i].size = 0;
        self.scratch [i].max = sizeof self.scratch [i].inline_data;
    }
    self.current = 0;
    self.integer = 0;
    self.real = 0;

    json_t *inline_stack [SB_JSON_PARSE_INLINE_FRAMES];
    json_t **stack = inline_stack;      // open containers, innermost last (borrowed)
    size_t stack_max = SB_JSON_PARSE_INLINE_FRAMES;
    size_t depth = 0;                   // containers open
    json_t *root = NULL;
    const char *key = NULL;             // the member name waiting for its value
    size_t key_len = 0;
    json_t *value;
    bool reject_duplicates = (flags & JSON_REJECT_DUPLICATES) != 0;

    int token = s_lex (&self);
    if (!(flags & JSON_DECODE_ANY) && token != '[' && token != '{') {
        s_fail (&self, json_error_invalid_syntax, self.p, "'[' or '{' expected");
        goto failed;
    }

next_value:
    //  A value, its first token read. As in jansson, a value nested deeper
    //  than the limit is refused before its token is looked at.
    if (token == S_TOKEN_ERROR)
        goto failed;
    if (depth >= SB_JSON_MAX_DEPTH) {
        s_fail (&self, json_error_stack_overflow, self.p, "maximum parsing depth reached");
        goto failed;
    }
    switch (token) {
        case S_TOKEN_STRING:
            if (self.string_nul) {
                s_fail (&self, json_error_null_character, self.p,
                        "\\u0000 is not allowed without JSON_ALLOW_NUL");
                goto failed;
            }
            value = json_stringn_nocheck (self.string, self.string_len);
            break;
        case S_TOKEN_INTEGER:
            value = json_integer (self.integer);
            break;
        case S_TOKEN_REAL:
            value = json_real (self.real);
            break;
        case S_TOKEN_TRUE:
            value = json_true ();
            break;
        case S_TOKEN_FALSE:
            value = json_false ();
            break;
        case S_TOKEN_NULL:
            value = json_null ();
            break;
        case '{':
            value = json_object ();
            break;
        case '[':
            value = json_array ();
            break;
        case S_TOKEN_INVALID:
            s_fail (&self, json_error_invalid_syntax, self.p, "invalid token");
            goto failed;
        default:
            s_fail (&self, json_error_invalid_syntax, self.p, "unexpected token");
            goto failed;
    }
    if (!value)
        goto out_of_memory;
    if (depth == 0)
        root = value;
    else
    if (json_is_array (stack [depth - 1])) {
        if (json_array_append_new (stack [depth - 1], value))
            goto out_of_memory;
    }
    else
    if (json_object_setn_new_nocheck (stack [depth - 1], key, key_len, value))
        goto out_of_memory;

    if (token == '[' || token == '{') {
        if (depth == stack_max) {
            size_t max = stack_max * 2 < SB_JSON_MAX_DEPTH? stack_max * 2: SB_JSON_MAX_DEPTH;
            json_t **grown = malloc (max * sizeof *grown);
            if (!grown)
                goto out_of_memory;
            memcpy (grown, stack, depth * sizeof *stack);
            if (stack != inline_stack)
                free (stack);
            stack = grown;
            stack_max = max;
        }
        stack [depth++] = value;
        int close = token == '['? ']': '}';
        token = s_lex (&self);
        if (token == close) {
            depth--;
            goto after_value;
        }
        if (close == '}')
            goto next_key;
        if (token == S_TOKEN_EOF) {
            s_fail (&self, json_error_invalid_syntax, self.p, "']' expected");
            goto failed;
        }
        goto next_value;
    }

after_value:
    //  A value is complete: close containers, or go on to the next member.
    token = s_lex (&self);
    if (depth == 0) {
        if (token != S_TOKEN_EOF) {
            s_fail (&self, json_error_end_of_input_expected, self.p, "end of file expected");
            goto failed;
        }
        goto done;
    }
    if (json_is_array (stack [depth - 1])) {
        if (token == ',') {
            token = s_lex (&self);
            if (token == S_TOKEN_EOF) {
                s_fail (&self, json_error_invalid_syntax, self.p, "']' expected");
                goto failed;
            }
            goto next_value;
        }
        if (token == ']') {
            depth--;
            goto after_value;
        }
        s_fail (&self, json_error_invalid_syntax, self.p, "']' expected");
        goto failed;
    }
    if (token == '}') {
        depth--;
        goto after_value;
    }
    if (token != ',') {
        s_fail (&self, json_error_invalid_syntax, self.p, "'}' expected");
        goto failed;
    }
    token = s_lex (&self);

next_key:
    //  A member's name, its token read, then ':'.
    if (token != S_TOKEN_STRING) {
        s_fail (&self, json_error_invalid_syntax, self.p, "string or '}' expected");
        goto failed;
    }
    if (memchr (self.string, '\0', self.string_len)) {
        s_fail (&self, json_error_null_byte_in_key, self.p, "NUL byte in object key not supported");
        goto failed;
    }
    key = self.string;
    key_len = self.string_len;
    if (self.string_scratch)
        self.current ^= 1;              // keep the key; decode the value elsewhere
    if (reject_duplicates && json_object_getn (stack [depth - 1], key, key_len)) {
        s_fail (&self, json_error_duplicate_key, self.p, "duplicate object key");
        goto failed;
    }
    token = s_lex (&self);
    if (token != ':') {
        s_fail (&self, json_error_invalid_syntax, self.p, "':' expected");
        goto failed;
    }
    token = s_lex (&self);
    goto next_value;

out_of_memory:
    s_fail_memory (&self);
failed:
    json_decref (root);
    root = NULL;
done:
    if (stack != inline_stack)
        free (stack);
    for (int i = 0; i < 2; i++)
        if (self.scratch [i].data != self.scratch [i].inline_data)
            free (self.scratch [i].data);
    if (root && error)
        error->position = (int) len;
    return root;
}
