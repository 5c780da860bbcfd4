/*  connector/sb_template.c — renders a tool's upstream request from its
    template and the call's arguments.

    The whole point of this file is that arguments can never change the
    shape of an upstream request:
      - a path placeholder becomes exactly one percent-encoded segment
        ("/", "?", "#", "." and ".." are encoded; an empty value is refused,
        since "/v1/accounts/" would address the collection instead);
      - a query value is percent-encoded ("&", "=", "#", "+" included), and a
        parameter whose argument is absent or null is dropped;
      - a JSON body value is inserted as a JSON value, never spliced as text.
    Numbers and booleans render canonically ("20", "1.5", "true"). */
#include "sb_connector_int.h"
#include "sb_attr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_VALUE_TEXT 64    /* text of one number or boolean, bytes */

/*  A borrowed text rendering of one argument value. */
typedef struct {
    const char *text;           /* bytes (not NUL-terminated for strings) */
    size_t len;                 /* length of text */
    char buf [SB_MAX_VALUE_TEXT];   /* storage for numbers and booleans */
} s_value_text_t;

static bool
s_unreserved (unsigned char c, sb_escape_ctx_t ctx)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    if (c == '-' || c == '_' || c == '~')
        return true;
    //  A lone "." or ".." segment would be a dot-segment that clients and
    //  servers normalise away, so in a path even '.' is encoded.
    return c == '.' && ctx == SB_ESC_QUERY;
}

int
sb_template_escape (sb_escape_ctx_t ctx, const char *value, size_t len,
                    char *out, size_t cap, size_t *used)
{
    static const char hex [] = "0123456789ABCDEF";
    size_t at = *used;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) value [i];
        if (s_unreserved (c, ctx)) {
            if (at + 1 >= cap)
                return -1;
            out [at++] = (char) c;
        }
        else {
            if (at + 3 >= cap)
                return -1;
            out [at++] = '%';
            out [at++] = hex [c >> 4];
            out [at++] = hex [c & 15];
        }
    }
    out [at] = 0;
    *used = at;
    return 0;
}

static int
s_append (const char *text, size_t len, char *out, size_t cap, size_t *used)
{
    if (*used + len >= cap)
        return -1;
    memcpy (out + *used, text, len);
    *used += len;
    out [*used] = 0;
    return 0;
}

//  Canonical text of a scalar; -1 for objects and arrays, 1 for null.
static int
s_value_text (const json_t *value, s_value_text_t *vt)
{
    vt->text = vt->buf;
    switch (json_typeof (value)) {
        case JSON_STRING:
            vt->text = json_string_value (value);
            vt->len = json_string_length (value);
            return 0;
        case JSON_INTEGER:
            vt->len = (size_t) snprintf (vt->buf, sizeof vt->buf, "%" JSON_INTEGER_FORMAT,
                                         json_integer_value (value));
            return 0;
        case JSON_REAL: {
            double d = json_real_value (value);
            if (d > -9007199254740992.0 && d < 9007199254740992.0 && (double) (long long) d == d)
                vt->len = (size_t) snprintf (vt->buf, sizeof vt->buf, "%.0f", d);
            else {
                //  Shortest of %.15g / %.17g that reads back the same.
                vt->len = (size_t) snprintf (vt->buf, sizeof vt->buf, "%.15g", d);
                if (strtod (vt->buf, NULL) != d)
                    vt->len = (size_t) snprintf (vt->buf, sizeof vt->buf, "%.17g", d);
            }
            return 0;
        }
        case JSON_TRUE:
            vt->len = (size_t) snprintf (vt->buf, sizeof vt->buf, "true");
            return 0;
        case JSON_FALSE:
            vt->len = (size_t) snprintf (vt->buf, sizeof vt->buf, "false");
            return 0;
        case JSON_NULL:
            return 1;
        default:
            return -1;
    }
}

int
sb_template_check (const char *tmpl, sb_template_name_fn *fn, void *arg, char **error)
{
    const char *p = tmpl;
    while (*p) {
        if (*p == '}') {
            *error = sb_strfmt ("template \"%s\" has a '}' without '{'", tmpl);
            return -1;
        }
        if (*p != '{') {
            p++;
            continue;
        }
        const char *start = ++p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
        ||     (*p >= '0' && *p <= '9') || *p == '_')
            p++;
        size_t len = (size_t) (p - start);
        if (*p != '}' || len == 0 || len > SB_MAX_CONNECTOR_NAME) {
            *error = sb_strfmt ("template \"%s\" has a malformed placeholder "
                                "(expected {name} with letters, digits, _)", tmpl);
            return -1;
        }
        char name [SB_MAX_CONNECTOR_NAME + 1];
        memcpy (name, start, len);
        name [len] = 0;
        if (fn && fn (name, arg)) {
            *error = sb_strfmt ("template \"%s\": placeholder {%s} is not a property "
                                "of inputSchema", tmpl, name);
            return -1;
        }
        p++;
    }
    return 0;
}

//  Walks `tmpl`, appending literal text (escaped per ctx, or raw when
//  ctx < 0) and each placeholder's value. Returns 0, 1 when a placeholder's
//  argument is absent or null (*missing names it), -1 on error (*error set).
static int
s_render_text (const char *tmpl, const json_t *args, int ctx, bool literal_raw,
               char *out, size_t cap, size_t *used, char missing [SB_MAX_CONNECTOR_NAME + 1],
               char **error)
{
    const char *p = tmpl;
    while (*p) {
        const char *lit = p;
        while (*p && *p != '{')
            p++;
        if (p > lit) {
            int rc = (ctx < 0 || literal_raw)
                   ? s_append (lit, (size_t) (p - lit), out, cap, used)
                   : sb_template_escape ((sb_escape_ctx_t) ctx, lit, (size_t) (p - lit),
                                         out, cap, used);
            if (rc) {
                *error = sb_strfmt ("the rendered request is too long");
                return -1;
            }
        }
        if (!*p)
            break;
        const char *start = ++p;
        const char *end = strchr (start, '}');
        size_t len = end ? (size_t) (end - start) : 0;
        if (!end || len == 0 || len > SB_MAX_CONNECTOR_NAME) {
            *error = sb_strfmt ("template \"%s\" has a malformed placeholder", tmpl);
            return -1;
        }
        char name [SB_MAX_CONNECTOR_NAME + 1];
        memcpy (name, start, len);
        name [len] = 0;
        p = end + 1;

        const json_t *value = args ? json_object_get (args, name) : NULL;
        s_value_text_t vt;
        int vrc = value ? s_value_text (value, &vt) : 1;
        if (vrc > 0) {
            memcpy (missing, name, len + 1);
            return 1;
        }
        if (vrc < 0) {
            *error = sb_strfmt ("argument '%s' must be a string, number or boolean here", name);
            return -1;
        }
        if (ctx == SB_ESC_PATH
        &&  (vt.len == 0 || (vt.len == 1 && vt.text [0] == '.')
                         || (vt.len == 2 && vt.text [0] == '.' && vt.text [1] == '.'))) {
            *error = sb_strfmt ("argument '%s' may not be empty, \".\" or \"..\"", name);
            return -1;
        }
        int rc = ctx < 0 ? s_append (vt.text, vt.len, out, cap, used)
                         : sb_template_escape ((sb_escape_ctx_t) ctx, vt.text, vt.len,
                                               out, cap, used);
        if (rc) {
            *error = sb_strfmt ("argument '%s' is too long", name);
            return -1;
        }
    }
    return 0;
}

//  True when `tmpl` is exactly one placeholder; copies its name.
static bool
s_whole_placeholder (const char *tmpl, char name [SB_MAX_CONNECTOR_NAME + 1])
{
    size_t len = strlen (tmpl);
    if (len < 3 || tmpl [0] != '{' || tmpl [len - 1] != '}' || len - 2 > SB_MAX_CONNECTOR_NAME)
        return false;
    if (memchr (tmpl + 1, '{', len - 2) || memchr (tmpl + 1, '}', len - 2))
        return false;
    memcpy (name, tmpl + 1, len - 2);
    name [len - 2] = 0;
    return true;
}

//  Renders a JSON body template. Returns a new value, NULL with *omit set
//  when the whole value is an absent optional argument, or NULL with
//  *error on failure.
static json_t *
s_render_json (const json_t *tmpl, const json_t *args, int depth, bool *omit, char **error)
{
    *omit = false;
    if (depth > 32) {
        *error = sb_strfmt ("body template is nested too deeply");
        return NULL;
    }
    if (json_is_string (tmpl)) {
        const char *text = json_string_value (tmpl);
        char name [SB_MAX_CONNECTOR_NAME + 1];
        if (s_whole_placeholder (text, name)) {
            json_t *value = args ? json_object_get (args, name) : NULL;
            if (!value || json_is_null (value)) {
                *omit = true;
                return NULL;
            }
            return json_deep_copy (value);
        }
        if (!strchr (text, '{'))
            return json_deep_copy (tmpl);
        char *buf = malloc (SB_MAX_UPSTREAM_BODY + 1);
        if (!buf) {
            *error = sb_strfmt ("out of memory");
            return NULL;
        }
        size_t used = 0;
        char missing [SB_MAX_CONNECTOR_NAME + 1];
        buf [0] = 0;
        int rc = s_render_text (text, args, -1, true, buf, SB_MAX_UPSTREAM_BODY + 1,
                                &used, missing, error);
        json_t *out = NULL;
        if (rc == 1)
            *error = sb_strfmt ("missing required argument '%s'", missing);
        else
        if (rc == 0) {
            out = json_stringn (buf, used);
            if (!out)
                *error = sb_strfmt ("a body value is not valid UTF-8");
        }
        free (buf);
        return out;
    }
    if (json_is_object (tmpl)) {
        json_t *out = json_object ();
        const char *key;
        json_t *child;
        json_object_foreach (sb_unconst (tmpl), key, child) {
            bool child_omit;
            json_t *value = s_render_json (child, args, depth + 1, &child_omit, error);
            if (!value && !child_omit) {
                json_decref (out);
                return NULL;
            }
            if (value)
                json_object_set_new (out, key, value);
        }
        return out;
    }
    if (json_is_array (tmpl)) {
        json_t *out = json_array ();
        size_t index;
        json_t *child;
        json_array_foreach (tmpl, index, child) {
            bool child_omit;
            json_t *value = s_render_json (child, args, depth + 1, &child_omit, error);
            if (!value && !child_omit) {
                json_decref (out);
                return NULL;
            }
            if (value)
                json_array_append_new (out, value);
        }
        return out;
    }
    return json_deep_copy (tmpl);
}

int
sb_template_render_raw (const char *base_url, const char *method, const char *path,
                        const json_t *query, const json_t *body, const json_t *args,
                        sb_upstream_req_t *req, char **error)
{
    memset (req, 0, sizeof *req);
    *error = NULL;
    if (args && !json_is_object (args)) {
        *error = sb_strfmt ("arguments must be a JSON object");
        return -1;
    }
    if (strlen (method) >= sizeof req->method) {
        *error = sb_strfmt ("bad method");
        return -1;
    }
    int rc = -1;
    size_t cap = SB_MAX_URL_LEN + 1;
    size_t used = 0;
    char *url = malloc (cap);
    char *param = malloc (cap);
    char missing [SB_MAX_CONNECTOR_NAME + 1];
    if (!url || !param) {
        *error = sb_strfmt ("out of memory");
        goto out;
    }
    url [0] = 0;
    if (s_append (base_url, strlen (base_url), url, cap, &used)) {
        *error = sb_strfmt ("the base URL is too long");
        goto out;
    }
    int trc = s_render_text (path, args, SB_ESC_PATH, true, url, cap, &used, missing, error);
    if (trc == 1)
        *error = sb_strfmt ("missing required argument '%s'", missing);
    if (trc)
        goto out;

    if (query) {
        const char *key;
        json_t *tmpl;
        bool first = true;
        json_object_foreach (sb_unconst (query), key, tmpl) {
            if (!json_is_string (tmpl)) {
                *error = sb_strfmt ("query template of '%s' is not a string", key);
                goto out;
            }
            size_t pused = 0;
            param [0] = 0;
            trc = s_render_text (json_string_value (tmpl), args, SB_ESC_QUERY, false,
                                 param, cap, &pused, missing, error);
            if (trc == 1)
                continue;       //  optional argument absent: drop the parameter
            if (trc)
                goto out;
            if (s_append (first ? "?" : "&", 1, url, cap, &used)
            ||  sb_template_escape (SB_ESC_QUERY, key, strlen (key), url, cap, &used)
            ||  s_append ("=", 1, url, cap, &used)
            ||  s_append (param, pused, url, cap, &used)) {
                *error = sb_strfmt ("the rendered URL is too long (over %u bytes)",
                                    (unsigned) SB_MAX_URL_LEN);
                goto out;
            }
            first = false;
        }
    }
    if (body) {
        bool omit;
        json_t *value = s_render_json (body, args, 0, &omit, error);
        if (!value && !omit)
            goto out;
        if (!value)
            value = json_object ();
        req->body = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref (value);
        if (!req->body) {
            *error = sb_strfmt ("could not encode the request body");
            goto out;
        }
        if (strlen (req->body) > SB_MAX_UPSTREAM_BODY) {
            *error = sb_strfmt ("the request body is larger than %u bytes",
                                (unsigned) SB_MAX_UPSTREAM_BODY);
            goto out;
        }
    }
    snprintf (req->method, sizeof req->method, "%s", method);
    req->url = url;
    url = NULL;
    rc = 0;
out:
    free (url);
    free (param);
    if (rc)
        sb_upstream_req_clear (req);
    if (rc && !*error)
        *error = sb_strfmt ("could not render the request");
    return rc;
}

int
sb_tool_render (const sb_tool_t *self, const json_t *args,
                sb_upstream_req_t *req, char **error)
{
    if (self->builtin || !self->connector->base_url) {
        *error = sb_strfmt ("tool %s runs in the worker (builtin %s); it has no upstream request",
                            self->name, self->builtin ? self->builtin : "-");
        return -1;
    }
    return sb_template_render_raw (self->connector->base_url, self->method, self->path,
                                   self->query, self->body, args, req, error);
}

int
sb_tool_render_at (const sb_tool_t *self, const char *base_url, const json_t *args,
                   sb_upstream_req_t *req, char **error)
{
    if (self->builtin || !base_url || !*base_url) {
        *error = sb_strfmt ("tool %s has no upstream base URL to render against", self->name);
        return -1;
    }
    return sb_template_render_raw (base_url, self->method, self->path,
                                   self->query, self->body, args, req, error);
}

void
sb_upstream_req_clear (sb_upstream_req_t *req)
{
    free (req->url);
    free (req->body);
    memset (req, 0, sizeof *req);
}
