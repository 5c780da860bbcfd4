/*  oauth/sb_oauth_form.h — application/x-www-form-urlencoded, as the OAuth
    endpoints read it: bodies of POST /token and /revoke, the query string
    of GET /authorize, and the client id and secret inside an HTTP Basic
    Authorization header (RFC 6749 §2.3.1).

    Strict where RFC 6749 lets a server be: a `%` not followed by two hex
    digits is refused, `%00` is refused (values are C strings), a parameter
    sent twice is refused (§3.1, "MUST NOT be included more than once"),
    and the body, the number of parameters and each name and value have a
    named limit. `+` is a space. Empty segments ("a=1&&b=2", a trailing
    "&") are skipped, as browsers never send them but hand-written clients
    do. A parameter without a value reads as absent (§3.1) but still counts
    when the same name comes again.

    Pure: bytes in, a parsed form or a refusal out; no I/O. */
#ifndef SB_OAUTH_FORM_H_INCLUDED
#define SB_OAUTH_FORM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_OAUTH_MAX_FORM_BODY      16384   /* bytes of one body or query string */
#define SB_OAUTH_MAX_FORM_PARAMS    32      /* parameters in one form */
#define SB_OAUTH_MAX_FORM_NAME      64      /* bytes of one decoded name */
#define SB_OAUTH_MAX_FORM_VALUE     4096    /* bytes of one decoded value */

//  Why a form was refused.
typedef enum {
    SB_OAUTH_FORM_OK = 0,
    SB_OAUTH_FORM_TOO_LONG,         /* the text passes SB_OAUTH_MAX_FORM_BODY */
    SB_OAUTH_FORM_TOO_MANY,         /* more than SB_OAUTH_MAX_FORM_PARAMS parameters */
    SB_OAUTH_FORM_NAME_TOO_LONG,    /* a name passes SB_OAUTH_MAX_FORM_NAME */
    SB_OAUTH_FORM_VALUE_TOO_LONG,   /* a value passes SB_OAUTH_MAX_FORM_VALUE */
    SB_OAUTH_FORM_BAD_ESCAPE,       /* '%' without two hex digits, or %00 */
    SB_OAUTH_FORM_EMPTY_NAME,       /* "=value" */
    SB_OAUTH_FORM_REPEATED,         /* one name twice */
    SB_OAUTH_FORM_NO_MEMORY
} sb_oauth_form_rc_t;

typedef struct sb_oauth_form_t sb_oauth_form_t;

/*  Parses the `len` bytes at `text` (no NUL needed; the part after '?' for
    a query string). On SB_OAUTH_FORM_OK sets *form_p to a new form (the
    caller destroys it); otherwise sets it to NULL and, when `bad_name` is
    not NULL, copies there (cut to `bad_name_size`) the decoded name of the
    parameter at fault, or "" when none is. */
sb_oauth_form_rc_t sb_oauth_form_parse (const char *text, size_t len, sb_oauth_form_t **form_p,
                                        char *bad_name, size_t bad_name_size)
    SB_MUST_USE;

/*  Destroys the form and nulls the caller's pointer; NULL is fine. */
void sb_oauth_form_destroy (sb_oauth_form_t **self_p);

/*  The decoded value of `name` (borrowed, lives as long as the form), or
    NULL when it is absent or was sent with an empty value. */
const char *sb_oauth_form_get (const sb_oauth_form_t *self, const char *name);

/*  Number of parameters, empty-valued ones included. */
size_t sb_oauth_form_size (const sb_oauth_form_t *self);

/*  The name and value of parameter `index` (< size), borrowed. */
const char *sb_oauth_form_name (const sb_oauth_form_t *self, size_t index);
const char *sb_oauth_form_value (const sb_oauth_form_t *self, size_t index);

/*  A sentence for a refusal (static). */
const char *sb_oauth_form_strerror (sb_oauth_form_rc_t rc);

/*  Decodes one form-urlencoded component of `len` bytes (`+` → space,
    %XX → byte) into `out`, NUL-terminated. Returns 0 and sets *out_len,
    or -1 on a bad escape, %00, or when it does not fit `out_size`. */
int sb_oauth_form_decode (const char *in, size_t len, char *out, size_t out_size, size_t *out_len)
    SB_MUST_USE;

/*  Appends `value` to the growing string *buf_p (of *len_p bytes, NUL-
    terminated, NULL to start), escaped for a URL query: unreserved
    characters (RFC 3986 §2.3) as they are, every other byte as %XX.
    The result never passes `max` bytes. Returns 0, or -1 when it would,
    or when memory ran out (*buf_p is then left as it was). */
int sb_oauth_query_append (char **buf_p, size_t *len_p, size_t max, const char *value, bool escape)
    SB_MUST_USE;

/*  True for A-Z a-z 0-9 - . _ ~ (RFC 3986 §2.3). */
bool sb_oauth_unreserved (char c);

#endif
