/*  oauth/sb_oauth_form.c — the form-urlencoded reader and the query escaper
    of the OAuth endpoints (see sb_oauth_form.h). One pass splits on '&',
    decodes each name and value into one buffer the form owns, and checks
    every limit and repetition before the form is handed out. */
#include "sb_oauth_form.h"
#include "sb_crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb_oauth_form_t {
    size_t count;                                   /* parameters parsed */
    const char *names [SB_OAUTH_MAX_FORM_PARAMS];   /* decoded names, into buffer */
    const char *values [SB_OAUTH_MAX_FORM_PARAMS];  /* decoded values, into buffer */
    char *buffer;                                   /* every name and value, NUL-terminated */
};

bool
sb_oauth_unreserved (char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '-' || c == '.' || c == '_' || c == '~';
}

int
sb_oauth_form_decode (const char *in, size_t len, char *out, size_t out_size, size_t *out_len)
{
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in [i];
        if (c == '+')
            c = ' ';
        else
        if (c == '%') {
            if (i + 2 >= len)        //  needs two more characters
                return -1;
            int high = sb_hex_digit (in [i + 1]);
            int low = sb_hex_digit (in [i + 2]);
            if (high < 0 || low < 0 || (high == 0 && low == 0))
                return -1;
            c = (char) (high * 16 + low);
            i += 2;
        }
        else
        if (c == 0)
            return -1;
        if (used + 1 >= out_size)
            return -1;
        out [used++] = c;
    }
    if (used >= out_size)
        return -1;
    out [used] = 0;
    *out_len = used;
    return 0;
}

static void
s_copy_name (char *bad_name, size_t size, const char *name)
{
    if (bad_name && size)
        snprintf (bad_name, size, "%s", name);
}

sb_oauth_form_rc_t
sb_oauth_form_parse (const char *text, size_t len, sb_oauth_form_t **form_p,
                     char *bad_name, size_t bad_name_size)
{
    *form_p = NULL;
    s_copy_name (bad_name, bad_name_size, "");
    if (len > SB_OAUTH_MAX_FORM_BODY)
        return SB_OAUTH_FORM_TOO_LONG;
    sb_oauth_form_t *self = calloc (1, sizeof *self);
    //  Decoding never grows text: every name and value fits in len bytes
    //  plus one NUL each.
    size_t size = len + 2 * SB_OAUTH_MAX_FORM_PARAMS + 2;
    char *buffer = malloc (size);
    if (!self || !buffer) {
        free (self);
        free (buffer);
        return SB_OAUTH_FORM_NO_MEMORY;
    }
    self->buffer = buffer;
    size_t used = 0;
    sb_oauth_form_rc_t rc = SB_OAUTH_FORM_OK;
    size_t start = 0;
    while (start <= len) {
        const char *segment = text + start;
        const char *amp = memchr (segment, '&', len - start);
        size_t segment_len = amp? (size_t) (amp - segment): len - start;
        start += segment_len + 1;
        if (segment_len == 0)
            continue;
        if (self->count == SB_OAUTH_MAX_FORM_PARAMS) {
            rc = SB_OAUTH_FORM_TOO_MANY;
            goto out;
        }
        const char *equals = memchr (segment, '=', segment_len);
        size_t name_len = equals? (size_t) (equals - segment): segment_len;
        const char *value = equals? equals + 1: segment + segment_len;
        size_t value_len = segment_len - name_len - (equals? 1: 0);
        if (name_len == 0) {
            rc = SB_OAUTH_FORM_EMPTY_NAME;
            goto out;
        }
        char *name_out = buffer + used;
        size_t decoded;
        if (sb_oauth_form_decode (segment, name_len, name_out,
                                  SB_OAUTH_MAX_FORM_NAME + 1, &decoded)) {
            //  Tell a long name from a bad escape: decode again without the cap.
            size_t ignored;
            bool escape_ok = sb_oauth_form_decode (segment, name_len, name_out,
                                                   size - used, &ignored) == 0;
            if (escape_ok)
                name_out [SB_OAUTH_MAX_FORM_NAME] = 0;
            s_copy_name (bad_name, bad_name_size, escape_ok? name_out: "");
            rc = escape_ok? SB_OAUTH_FORM_NAME_TOO_LONG: SB_OAUTH_FORM_BAD_ESCAPE;
            goto out;
        }
        used += decoded + 1;
        for (size_t i = 0; i < self->count; i++) {
            if (strcmp (self->names [i], name_out) == 0) {
                s_copy_name (bad_name, bad_name_size, name_out);
                rc = SB_OAUTH_FORM_REPEATED;
                goto out;
            }
        }
        char *value_out = buffer + used;
        if (sb_oauth_form_decode (value, value_len, value_out,
                                  SB_OAUTH_MAX_FORM_VALUE + 1, &decoded)) {
            size_t ignored;
            bool escape_ok = sb_oauth_form_decode (value, value_len, value_out,
                                                   size - used, &ignored) == 0;
            s_copy_name (bad_name, bad_name_size, name_out);
            rc = escape_ok? SB_OAUTH_FORM_VALUE_TOO_LONG: SB_OAUTH_FORM_BAD_ESCAPE;
            goto out;
        }
        used += decoded + 1;
        self->names [self->count] = name_out;
        self->values [self->count] = value_out;
        self->count++;
    }
out:
    if (rc)
        sb_oauth_form_destroy (&self);
    *form_p = self;
    return rc;
}

void
sb_oauth_form_destroy (sb_oauth_form_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->buffer);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
sb_oauth_form_get (const sb_oauth_form_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->names [i], name) == 0)
            return self->values [i][0]? self->values [i]: NULL;
    return NULL;
}

size_t
sb_oauth_form_size (const sb_oauth_form_t *self)
{
    return self->count;
}

const char *
sb_oauth_form_name (const sb_oauth_form_t *self, size_t index)
{
    return index < self->count? self->names [index]: NULL;
}

const char *
sb_oauth_form_value (const sb_oauth_form_t *self, size_t index)
{
    return index < self->count? self->values [index]: NULL;
}

const char *
sb_oauth_form_strerror (sb_oauth_form_rc_t rc)
{
    switch (rc) {
        case SB_OAUTH_FORM_OK:              return "The form is well formed.";
        case SB_OAUTH_FORM_TOO_LONG:        return "The request is too long.";
        case SB_OAUTH_FORM_TOO_MANY:        return "The request has too many parameters.";
        case SB_OAUTH_FORM_NAME_TOO_LONG:   return "A parameter name is too long.";
        case SB_OAUTH_FORM_VALUE_TOO_LONG:  return "A parameter value is too long.";
        case SB_OAUTH_FORM_BAD_ESCAPE:      return "A percent-escape is malformed or encodes a NUL byte.";
        case SB_OAUTH_FORM_EMPTY_NAME:      return "A parameter has an empty name.";
        case SB_OAUTH_FORM_REPEATED:        return "A parameter is included more than once.";
        case SB_OAUTH_FORM_NO_MEMORY:       return "The server ran out of memory.";
    }
    return "The form is malformed.";
}

int
sb_oauth_query_append (char **buf_p, size_t *len_p, size_t max, const char *value, bool escape)
{
    static const char hex [] = "0123456789ABCDEF";
    size_t need = 0;
    for (const char *p = value; *p; p++)
        need += (!escape || sb_oauth_unreserved (*p))? 1: 3;
    size_t len = *buf_p? *len_p: 0;
    if (need > max || len + need > max)
        return -1;
    char *buf = realloc (*buf_p, len + need + 1);
    if (!buf)
        return -1;
    for (const char *p = value; *p; p++) {
        if (!escape || sb_oauth_unreserved (*p))
            buf [len++] = *p;
        else {
            unsigned char byte = (unsigned char) *p;
            buf [len++] = '%';
            buf [len++] = hex [byte >> 4];
            buf [len++] = hex [byte & 15];
        }
    }
    buf [len] = 0;
    *buf_p = buf;
    *len_p = len;
    return 0;
}
