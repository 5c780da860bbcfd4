/*  schema/sb_schema_format.c — the parts of sb_schema that look inside
    strings: the formats (email, date, date-time per RFC 3339, uri per RFC
    3986), regular expressions through PCRE2 with match limits, local $ref
    resolution, readable field paths and quoted values for messages. */
#include "sb_schema_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Regular expressions: ECMA-262 flavoured PCRE2. \uXXXX escapes, $ only at
//  the very end, no \C; \d and \w are ASCII as in ECMA-262 without /u.

pcre2_code *
sb_schema_regex_compile (const char *pattern, size_t length, char **why)
{
    if (length > SB_MAX_PATTERN_LENGTH) {
        *why = sb_strfmt ("is longer than %d bytes", SB_MAX_PATTERN_LENGTH);
        return NULL;
    }
    pcre2_compile_context *context = pcre2_compile_context_create (NULL);
    if (!context) {
        *why = sb_strfmt ("could not be compiled (out of memory)");
        return NULL;
    }
    pcre2_set_parens_nest_limit (context, SB_MAX_REGEX_PARENS);
    pcre2_set_compile_extra_options (context, PCRE2_EXTRA_ALT_BSUX);
    int code_error;
    PCRE2_SIZE offset;
    pcre2_code *code = pcre2_compile ((PCRE2_SPTR) pattern, length,
                                      PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY
                                      | PCRE2_NEVER_BACKSLASH_C,
                                      &code_error, &offset, context);
    pcre2_compile_context_free (context);
    if (!code) {
        PCRE2_UCHAR message [160];
        if (pcre2_get_error_message (code_error, message, sizeof message) < 0)
            snprintf ((char *) message, sizeof message, "error %d", code_error);
        *why = sb_strfmt ("is not a valid regular expression (%s, at offset %zu)",
                                 (char *) message, (size_t) offset);
    }
    return code;
}

int
sb_schema_regex_search (sb_schema_matcher_t *matcher, const pcre2_code *code,
                        const char *text, size_t length)
{
    if (!matcher->context) {
        matcher->context = pcre2_match_context_create (NULL);
        if (!matcher->context)
            return -1;
        pcre2_set_match_limit (matcher->context, SB_MAX_REGEX_STEPS);
        pcre2_set_depth_limit (matcher->context, SB_MAX_REGEX_DEPTH);
        pcre2_set_heap_limit (matcher->context, SB_MAX_REGEX_HEAP_KIB);
    }
    if (!matcher->data)
        matcher->data = pcre2_match_data_create (1, NULL);
    if (!matcher->data)
        return -1;
    int rc = pcre2_match (code, (PCRE2_SPTR) text, length, 0, 0, matcher->data,
                          matcher->context);
    //  0 is a match whose offsets did not fit the one-pair vector.
    return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

void
sb_schema_matcher_clear (sb_schema_matcher_t *matcher)
{
    pcre2_match_data_free (matcher->data);
    pcre2_match_context_free (matcher->context);
    *matcher = (sb_schema_matcher_t) { 0 };
}

pcre2_code *
sb_schema_regexes_find (const sb_schema_regexes_t *self, const void *id)
{
    for (size_t i = 0; self && i < self->count; i++)
        if (self->id [i] == id)
            return self->code [i];
    return NULL;
}

void
sb_schema_regexes_clear (sb_schema_regexes_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        pcre2_code_free (self->code [i]);
    self->count = 0;
}

//  --------------------------------------------------------------------------
//  Formats

static bool
s_digits (const char *text, size_t count, int *value)
{
    *value = 0;
    for (size_t i = 0; i < count; i++) {
        if (text [i] < '0' || text [i] > '9')
            return false;
        *value = *value * 10 + (text [i] - '0');
    }
    return true;
}

//  RFC 3339 full-date: YYYY-MM-DD, a real day of a real month.
static bool
s_date_ok (const char *text, size_t length)
{
    static const int days [] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int year, month, day;
    if (length != 10 || text [4] != '-' || text [7] != '-'
    ||  !s_digits (text, 4, &year) || !s_digits (text + 5, 2, &month)
    ||  !s_digits (text + 8, 2, &day) || month < 1 || month > 12 || day < 1
    ||  day > days [month - 1])
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month != 2 || day <= 28 || leap;
}

//  RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM); a leap second
//  (:60) only at 23:59 UTC.
static bool
s_time_ok (const char *text, size_t length)
{
    int hour, minute, second;
    if (length < 9 || text [2] != ':' || text [5] != ':'
    ||  !s_digits (text, 2, &hour) || !s_digits (text + 3, 2, &minute)
    ||  !s_digits (text + 6, 2, &second) || hour > 23 || minute > 59 || second > 60)
        return false;
    size_t at = 8;
    if (text [at] == '.') {
        size_t start = ++at;
        while (at < length && text [at] >= '0' && text [at] <= '9')
            at++;
        if (at == start)
            return false;
    }
    int offset = 0;                 //  minutes east of UTC
    if (at + 1 == length && (text [at] == 'Z' || text [at] == 'z'))
        ;
    else
    if (at + 6 == length && (text [at] == '+' || text [at] == '-') && text [at + 3] == ':') {
        int off_hour, off_minute;
        if (!s_digits (text + at + 1, 2, &off_hour) || !s_digits (text + at + 4, 2, &off_minute)
        ||  off_hour > 23 || off_minute > 59)
            return false;
        offset = (text [at] == '+' ? 1 : -1) * (off_hour * 60 + off_minute);
    }
    else
        return false;
    if (second == 60) {
        int utc = ((hour * 60 + minute - offset) % 1440 + 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return true;
}

static bool
s_date_time_ok (const char *text, size_t length)
{
    return length > 11 && (text [10] == 'T' || text [10] == 't')
        && s_date_ok (text, 10) && s_time_ok (text + 11, length - 11);
}

static bool
s_is_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

//  A DNS host name: dot-separated labels of letters, digits and inner
//  hyphens, each 1-63 bytes, 253 in all.
static bool
s_hostname_ok (const char *text, size_t length)
{
    if (length == 0 || length > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < length; i++) {
        char c = text [i];
        if (c == '.') {
            if (label == 0 || text [i - 1] == '-')
                return false;
            label = 0;
        }
        else
        if (s_is_alnum (c) || (c == '-' && label > 0)) {
            if (++label > 63)
                return false;
        }
        else
            return false;
    }
    return label > 0 && text [length - 1] != '-';
}

//  RFC 5321/5322 address: dot-atom or quoted local part (UTF-8 allowed, as
//  RFC 6531 does), '@', a host name or an [IPv4] / [IPv6:…] literal.
static bool
s_email_ok (const char *text, size_t length)
{
    const char *at = length ? memrchr (text, '@', length) : NULL;
    if (!at || length > 254)
        return false;
    size_t local = (size_t) (at - text);
    const char *domain = at + 1;
    size_t domain_length = length - local - 1;
    if (local == 0 || local > 64)
        return false;
    if (text [0] == '"') {
        if (local < 2 || text [local - 1] != '"')
            return false;
        for (size_t i = 1; i + 1 < local; i++) {
            unsigned char c = (unsigned char) text [i];
            if (c == '\\' && i + 2 < local)
                i++;
            else
            if (c == '"' || c == '\\' || c < 0x20 || c == 0x7F)
                return false;
        }
    }
    else {
        static const char *const atext = "!#$%&'*+-/=?^_`{|}~";
        for (size_t i = 0; i < local; i++) {
            unsigned char c = (unsigned char) text [i];
            if (c == '.') {
                if (i == 0 || i + 1 == local || text [i - 1] == '.')
                    return false;
            }
            else
            if (!(s_is_alnum ((char) c) || c >= 0x80 || (c && strchr (atext, c))))
                return false;
        }
    }
    if (domain_length > 2 && domain [0] == '[' && domain [domain_length - 1] == ']') {
        char literal [64];
        size_t inner = domain_length - 2;
        if (inner >= sizeof literal)
            return false;
        memcpy (literal, domain + 1, inner);
        literal [inner] = 0;
        unsigned char address [16];
        if (strncmp (literal, "IPv6:", 5) == 0)
            return inet_pton (AF_INET6, literal + 5, address) == 1;
        return inet_pton (AF_INET, literal, address) == 1;
    }
    return s_hostname_ok (domain, domain_length);
}

static bool
s_hex (char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

//  RFC 3986 absolute URI: a scheme, ':', then only URI characters with
//  valid %-escapes; '[' and ']' only around an IP literal host.
static bool
s_uri_ok (const char *text, size_t length)
{
    static const char *const allowed = "-._~:/?#@!$&'()*+,;=";
    size_t i = 0;
    bool letter = length > 0 && ((text [0] >= 'a' && text [0] <= 'z')
                                 || (text [0] >= 'A' && text [0] <= 'Z'));
    if (!letter)
        return false;
    while (i < length && (s_is_alnum (text [i]) || text [i] == '+' || text [i] == '-'
                          || text [i] == '.'))
        i++;
    if (i == length || text [i] != ':')
        return false;
    size_t host_end = length;           //  '[' … ']' only in the authority
    bool authority = i + 2 < length && text [i + 1] == '/' && text [i + 2] == '/';
    if (authority) {
        host_end = i + 3;
        while (host_end < length && !strchr ("/?#", text [host_end]))
            host_end++;
    }
    bool hash = false;
    for (i++; i < length; i++) {
        char c = text [i];
        if (c == '%') {
            if (i + 2 >= length || !s_hex (text [i + 1]) || !s_hex (text [i + 2]))
                return false;
            i += 2;
        }
        else
        if (c == '#') {
            if (hash)
                return false;
            hash = true;
        }
        else
        if ((c == '[' || c == ']') && authority && i < host_end)
            continue;
        else
        if (!s_is_alnum (c) && !(c && strchr (allowed, c)))
            return false;
    }
    return true;
}

bool
sb_schema_format_ok (const char *format, const char *text, size_t length)
{
    if (strcmp (format, "email") == 0)
        return s_email_ok (text, length);
    if (strcmp (format, "date") == 0)
        return s_date_ok (text, length);
    if (strcmp (format, "date-time") == 0)
        return s_date_time_ok (text, length);
    if (strcmp (format, "uri") == 0)
        return s_uri_ok (text, length);
    return true;
}

const char *
sb_schema_format_phrase (const char *format)
{
    if (strcmp (format, "email") == 0)
        return "an email address (name@example.com)";
    if (strcmp (format, "date") == 0)
        return "a date in the form YYYY-MM-DD (e.g. 2025-01-31)";
    if (strcmp (format, "date-time") == 0)
        return "a date and time in RFC 3339 form (e.g. 2025-01-31T09:30:00Z)";
    if (strcmp (format, "uri") == 0)
        return "an absolute URI (e.g. https://example.com/page)";
    return NULL;
}

size_t
sb_schema_utf8_length (const char *text, size_t length)
{
    size_t count = 0;
    for (size_t i = 0; i < length; i++)
        if (((unsigned char) text [i] & 0xC0) != 0x80)
            count++;
    return count;
}

//  --------------------------------------------------------------------------
//  $ref: a JSON pointer in a URI fragment, or a plain name given by an
//  $anchor, inside this document only.

bool
sb_schema_anchor_ok (const char *name)
{
    if (!name || !(s_is_alnum (name [0]) || name [0] == '_')
    ||  (name [0] >= '0' && name [0] <= '9'))
        return false;
    for (size_t i = 1; name [i]; i++)
        if (!s_is_alnum (name [i]) && !strchr ("-_.", name [i]))
            return false;
    return strlen (name) <= SB_MAX_REF_LENGTH;
}

static int
s_hex_value (char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

const json_t *
sb_schema_resolve_ref (const json_t *root, const sb_schema_anchors_t *anchors, const char *ref)
{
    size_t length = strlen (ref);
    if (length == 0 || ref [0] != '#' || length > SB_MAX_REF_LENGTH)
        return NULL;
    if (length > 1 && ref [1] != '/') {
        //  "#name": the subschema whose $anchor is name.
        for (size_t i = 0; anchors && i < anchors->count; i++)
            if (strcmp (anchors->name [i], ref + 1) == 0)
                return anchors->node [i];
        return NULL;
    }
    const json_t *node = root;
    size_t i = 1;
    while (node && i < length) {
        //  %-escapes first (it is a URI fragment), then ~0 ~1 (RFC 6901 §6).
        char escaped [SB_MAX_REF_LENGTH + 1];
        size_t count = 0;
        for (i++; i < length && ref [i] != '/'; i++) {
            char c = ref [i];
            if (c == '%') {
                if (i + 2 >= length || !s_hex (ref [i + 1]) || !s_hex (ref [i + 2]))
                    return NULL;
                c = (char) (s_hex_value (ref [i + 1]) * 16 + s_hex_value (ref [i + 2]));
                i += 2;
            }
            escaped [count++] = c;
        }
        char token [SB_MAX_REF_LENGTH + 1];
        size_t used = 0;
        for (size_t j = 0; j < count; j++) {
            char c = escaped [j];
            if (c == '~') {
                if (j + 1 >= count || (escaped [j + 1] != '0' && escaped [j + 1] != '1'))
                    return NULL;
                c = escaped [++j] == '0' ? '~' : '/';
            }
            token [used++] = c;
        }
        token [used] = 0;
        if (json_is_object (node))
            node = json_object_getn (node, token, used);
        else
        if (json_is_array (node)) {
            char *end;
            unsigned long index = strtoul (token, &end, 10);
            if (used == 0 || *end || (used > 1 && token [0] == '0'))
                return NULL;
            node = json_array_get (node, index);
        }
        else
            return NULL;
    }
    return node;
}

//  --------------------------------------------------------------------------
//  Text for messages

//  Appends `text` to `path`; when it does not fit, as much as does and
//  "…", never cutting a character in half nor touching what was there.
static void
s_path_append (char *path, size_t size, const char *text)
{
    static const char ellipsis [] = "…";
    size_t used = strlen (path);
    size_t length = strlen (text);
    if (used + length < size) {
        memcpy (path + used, text, length + 1);
        return;
    }
    if (size < sizeof ellipsis || size - sizeof ellipsis <= used)
        return;
    size_t cut = size - sizeof ellipsis;
    memcpy (path + used, text, cut - used);
    while (cut > used && ((unsigned char) text [cut - used] & 0xC0) == 0x80)
        cut--;
    memcpy (path + cut, ellipsis, sizeof ellipsis);
}

static bool
s_plain_word (const char *key)
{
    if (!*key)
        return false;
    for (const char *c = key; *c; c++)
        if (!s_is_alnum (*c) && *c != '_' && *c != '-' && *c != '$')
            return false;
    return true;
}

size_t
sb_schema_path_push_key (char *path, size_t size, const char *key)
{
    size_t old = strlen (path);
    if (s_plain_word (key)) {
        if (old)
            s_path_append (path, size, ".");
        s_path_append (path, size, key);
    }
    else {
        json_t *name = json_string (key);
        char *text = name ? json_dumps (name, JSON_ENCODE_ANY) : NULL;
        s_path_append (path, size, "[");
        s_path_append (path, size, text ? text : "\"?\"");
        s_path_append (path, size, "]");
        free (text);
        json_decref (name);
    }
    return old;
}

size_t
sb_schema_path_push_index (char *path, size_t size, size_t index)
{
    size_t old = strlen (path);
    char text [32];
    snprintf (text, sizeof text, "[%zu]", index);
    s_path_append (path, size, text);
    return old;
}

void
sb_schema_number_text (const json_t *number, char *buffer, size_t size)
{
    if (json_is_integer (number)) {
        snprintf (buffer, size, "%" JSON_INTEGER_FORMAT, json_integer_value (number));
        return;
    }
    double value = json_real_value (number);
    if (value == floor (value) && fabs (value) < 1e15)
        snprintf (buffer, size, "%.0f", value);
    else
        snprintf (buffer, size, "%.15g", value);
}

char *
sb_schema_quote (const json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text || strlen (text) <= SB_MAX_QUOTED_VALUE)
        return text;
    size_t cut = SB_MAX_QUOTED_VALUE;
    while (cut > 0 && ((unsigned char) text [cut] & 0xC0) == 0x80)
        cut--;
    char *out = sb_strfmt ("%.*s…", (int) cut, text);
    free (text);
    return out;
}
