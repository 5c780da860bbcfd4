/*  gateway/sb_param_header.c — Mcp-Param-* headers checked against the
    arguments they mirror (SEP-2243; see sb_param_header.h). Walks the
    tool's inputSchema through "properties" alone, as the annotations may
    only stand there, with the argument at the same path beside it; the
    first header that disagrees becomes the sentence of the -32020 error. */
#include "sb_param_header.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sb_attr.h"
#include "sb_schema.h"

#define S_BASE64_PREFIX "=?base64?"     /* a Base64-encoded value starts so… */
#define S_BASE64_SUFFIX "?="            /* …and ends so (both case-sensitive) */
#define S_MAX_PATH      100             /* bytes of an argument's path in a sentence */

//  One check in progress.
typedef struct {
    const sb_param_headers_t *headers;  /* what the request sent, or NULL */
    size_t nodes;                       /* properties looked at */
    char path [S_MAX_PATH];             /* the argument: "arguments.region" */
    char *problem;                      /* where the sentence goes */
    size_t size;                        /* bytes there */
} s_check_t;

void
sb_param_headers_add (sb_param_headers_t *self, const char *name, size_t name_len,
                      const char *value, size_t value_len)
{
    size_t prefix = strlen (SB_PARAM_HEADER_PREFIX);
    if (!name || name_len <= prefix || strncasecmp (name, SB_PARAM_HEADER_PREFIX, prefix) != 0)
        return;
    if (self->count >= SB_MAX_PARAM_HEADERS) {
        self->overflow = true;
        return;
    }
    self->items [self->count++] = (sb_param_header_t) {
        .name = name + prefix, .name_len = name_len - prefix,
        .value = value ? value : "", .value_len = value ? value_len : 0
    };
}

//  Records the first problem: "Header mismatch: the Mcp-Param-<name> header
//  <rule>." Returns -1.
static int
s_fail (s_check_t *ctx, const char *header, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (s_check_t *ctx, const char *header, const char *fmt, ...)
{
    char rule [SB_PARAM_HEADER_PROBLEM];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (rule, sizeof rule, fmt, ap);
    va_end (ap);
    snprintf (ctx->problem, ctx->size, "Header mismatch: the Mcp-Param-%.64s header %s.",
              header, rule);
    return -1;
}

//  --------------------------------------------------------------------------
//  Values: characters, the Base64 sentinel, comparison with the argument

//  True when every byte may stand in a header value: visible ASCII, space, tab.
static bool
s_value_chars_ok (const char *value, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char) value [i];
        if (!(c == '\t' || (c >= 0x20 && c <= 0x7e)))
            return false;
    }
    return true;
}

static int
s_base64_digit (char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

//  Decodes standard, padded, canonical base64 (RFC 4648 §4) into `out`.
//  Returns the length, or -1 when it is not such base64 or does not fit.
static long
s_base64_decode (const char *in, size_t length, char *out, size_t size)
{
    if (length % 4)
        return -1;                      //  "SGVsbG8" lacks its padding
    size_t pad = 0;
    if (length > 0 && in [length - 1] == '=')
        pad = length > 1 && in [length - 2] == '=' ? 2 : 1;
    size_t used = 0;
    for (size_t i = 0; i < length; i += 4) {
        bool last = i + 4 == length;
        int digit [4];
        for (size_t k = 0; k < 4; k++) {
            digit [k] = last && k >= 4 - pad ? 0 : s_base64_digit (in [i + k]);
            if (digit [k] < 0)
                return -1;
        }
        //  The bits the padding leaves over must be zero: one encoding each.
        if (last && ((pad == 1 && (digit [2] & 0x3)) || (pad == 2 && (digit [1] & 0xf))))
            return -1;
        uint32_t bits = (uint32_t) digit [0] << 18 | (uint32_t) digit [1] << 12
                      | (uint32_t) digit [2] << 6 | (uint32_t) digit [3];
        size_t bytes = last ? 3 - pad : 3;
        if (used + bytes > size)
            return -1;
        for (size_t k = 0; k < bytes; k++)
            out [used++] = (char) (bits >> (16 - 8 * k) & 0xff);
    }
    return (long) used;
}

//  True when `text` is a JSON number (what a client writes for an
//  integer, and what "compared numerically" may also meet: 42.0, 4.2e1).
static bool
s_number_text (const char *text, bool *integral)
{
    const char *p = text;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else
    if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    *integral = true;
    if (*p == '.') {
        *integral = false;
        if (!(*++p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        *integral = false;
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

//  True when the decoded header text (`length` bytes, NUL-terminated)
//  says the same as `argument`.
static bool
s_same (const char *text, size_t length, const json_t *argument)
{
    if (json_is_string (argument))
        return json_string_length (argument) == length
            && memcmp (json_string_value (argument), text, length) == 0;
    if (json_is_boolean (argument))
        return strcmp (text, json_is_true (argument) ? "true" : "false") == 0;
    bool integral;
    if (!json_is_number (argument) || strlen (text) != length || !s_number_text (text, &integral))
        return false;
    if (json_is_integer (argument) && integral) {
        errno = 0;
        long long number = strtoll (text, NULL, 10);
        if (errno == 0)
            return number == json_integer_value (argument);
    }
    return strtod (text, NULL) == json_number_value (argument);
}

//  --------------------------------------------------------------------------
//  The walk

//  Checks the header named `header` against `argument` (NULL: absent).
static int
s_check_one (s_check_t *ctx, const char *header, const json_t *argument)
{
    const sb_param_headers_t *headers = ctx->headers;
    if (headers && headers->overflow)
        return s_fail (ctx, header, "cannot be checked: the request has more than %d "
                       "Mcp-Param-* headers", SB_MAX_PARAM_HEADERS);
    const sb_param_header_t *found = NULL;
    size_t length = strlen (header);
    for (size_t i = 0; headers && i < headers->count; i++) {
        const sb_param_header_t *item = &headers->items [i];
        if (item->name_len != length || strncasecmp (item->name, header, length) != 0)
            continue;
        if (found)
            return s_fail (ctx, header, "is given more than once");
        found = item;
    }
    bool given = argument && !json_is_null (argument);
    if (!found && !given)
        return 0;
    if (!found)
        return s_fail (ctx, header, "is missing, but %s is given", ctx->path);
    if (!given)
        return s_fail (ctx, header, "is given, but %s is not", ctx->path);

    //  Field parsing drops optional whitespace around a value (RFC 9110 §5.5).
    const char *value = found->value;
    size_t size = found->value_len;
    while (size > 0 && (value [0] == ' ' || value [0] == '\t'))
        value++, size--;
    while (size > 0 && (value [size - 1] == ' ' || value [size - 1] == '\t'))
        size--;
    if (size > SB_MAX_PARAM_HEADER_VALUE)
        return s_fail (ctx, header, "is longer than %d bytes", SB_MAX_PARAM_HEADER_VALUE);
    if (!s_value_chars_ok (value, size))
        return s_fail (ctx, header, "holds characters a header value may not (other values "
                       "are sent as =?base64?…?=)");
    char text [SB_MAX_PARAM_HEADER_VALUE + 1];
    size_t prefix = strlen (S_BASE64_PREFIX), suffix = strlen (S_BASE64_SUFFIX);
    long decoded;
    if (size >= prefix + suffix && memcmp (value, S_BASE64_PREFIX, prefix) == 0
    &&  memcmp (value + size - suffix, S_BASE64_SUFFIX, suffix) == 0) {
        decoded = s_base64_decode (value + prefix, size - prefix - suffix, text, sizeof text - 1);
        if (decoded < 0)
            return s_fail (ctx, header, "is not valid base64 (=?base64?…?= holds standard "
                           "base64 with its = padding)");
    }
    else {
        memcpy (text, value, size);     //  anything else is the value itself
        decoded = (long) size;
    }
    text [decoded] = 0;
    if (!s_same (text, (size_t) decoded, argument))
        return s_fail (ctx, header, "does not match %s", ctx->path);
    return 0;
}

//  Checks the properties of `schema` (reached through "properties" alone)
//  against `value`, the argument at the same path (NULL: absent).
static int
s_walk (s_check_t *ctx, const json_t *schema, const json_t *value, int depth)
{
    const json_t *properties = json_object_get (schema, "properties");
    if (!json_is_object (properties) || depth > SB_MAX_SCHEMA_DEPTH)
        return 0;
    const char *name;
    json_t *property;
    json_object_foreach (sb_unconst (properties), name, property) {
        if (++ctx->nodes > SB_MAX_SCHEMA_NODES)
            return 0;                   //  the loader allows no more
        const json_t *member = json_is_object (value) ? json_object_get (value, name) : NULL;
        size_t old = strlen (ctx->path);
        //  A name that does not fit whole is "…": never half a character.
        const char *segment = old + 1 + strlen (name) < sizeof ctx->path ? name : "…";
        if (old + 1 + strlen (segment) < sizeof ctx->path)
            snprintf (ctx->path + old, sizeof ctx->path - old, ".%s", segment);
        const char *header = json_string_value (json_object_get (property, "x-mcp-header"));
        int rc = header ? s_check_one (ctx, header, member) : 0;
        if (!rc)
            rc = s_walk (ctx, property, member, depth + 1);
        ctx->path [old] = 0;
        if (rc)
            return rc;
    }
    return 0;
}

int
sb_param_headers_check (const sb_param_headers_t *self, const json_t *schema,
                        const json_t *arguments, char *problem, size_t size)
{
    s_check_t ctx = { .headers = self, .path = "arguments", .problem = problem, .size = size };
    if (size > 0)
        problem [0] = 0;
    return s_walk (&ctx, schema, json_is_object (arguments) ? arguments : NULL, 0);
}

int
sb_param_headers_check_call (const sb_param_headers_t *self, sb_connectors_t *connectors,
                             const json_t *params, char *problem, size_t size)
{
    if (size > 0)
        problem [0] = 0;
    const char *name = json_string_value (json_object_get (params, "name"));
    const sb_tool_t *tool = connectors && name ? sb_connectors_find_tool (connectors, name) : NULL;
    const json_t *arguments = json_object_get (params, "arguments");
    if (!tool || (arguments && !json_is_object (arguments)))
        return 0;
    return sb_param_headers_check (self, sb_tool_input_schema (tool), arguments, problem, size);
}
