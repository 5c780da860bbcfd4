/*  payload/sb_http_payload.c — HTTP requests and responses as job data and
    results (sb_http_payload.h). The rules of each field are written once,
    in the s_*_ok checks, which both the encoders and the decoders call. */
#include "sb_http_payload.h"
#include "sb_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------
//  Field rules

//  True when `name` is 1..SB_HTTP_MAX_HEADER_NAME lowercase token bytes.
static bool
s_name_ok (const char *name)
{
    size_t len = name? strlen (name): 0;
    if (len == 0 || len > SB_HTTP_MAX_HEADER_NAME)
        return false;
    for (size_t at = 0; at < len; at++) {
        unsigned char c = (unsigned char) name [at];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

//  True when `value` is at most SB_HTTP_MAX_HEADER_VALUE bytes of visible
//  ASCII, space or tab (no CR, LF, NUL, nor anything that could split a
//  header when written back).
static bool
s_value_ok (const char *value)
{
    if (!value)
        return false;
    size_t len = strlen (value);
    if (len > SB_HTTP_MAX_HEADER_VALUE)
        return false;
    for (size_t at = 0; at < len; at++) {
        unsigned char c = (unsigned char) value [at];
        if (c != '\t' && (c < 0x20 || c > 0x7e))
            return false;
    }
    return true;
}

//  True when `text` is at most `max` bytes of visible ASCII (a method,
//  path, query or address). An empty text is allowed when `empty_ok`.
static bool
s_ascii_ok (const char *text, size_t max, bool empty_ok)
{
    if (!text)
        return false;
    size_t len = strlen (text);
    if (len > max || (len == 0 && !empty_ok))
        return false;
    for (size_t at = 0; at < len; at++)
        if ((unsigned char) text [at] <= 0x20 || (unsigned char) text [at] > 0x7e)
            return false;
    return true;
}

static const char *const s_response_headers [] = {
    "content-type", "cache-control", "pragma", "location", "set-cookie", "www-authenticate",
    "retry-after", "content-security-policy", "x-frame-options", "x-content-type-options",
    "referrer-policy", "vary"
};

bool
sb_http_response_header_allowed (const char *name)
{
    if (!name)
        return false;
    for (size_t at = 0; at < sizeof s_response_headers / sizeof s_response_headers [0]; at++)
        if (strcmp (name, s_response_headers [at]) == 0)
            return true;
    return false;
}

//  ---------------------------------------------------------------------
//  Shared pieces of both shapes

//  The headers as a JSON array of [name, value] pairs, or NULL.
static json_t *
s_headers_json (const sb_http_header_t *headers, size_t count, bool response)
{
    if (count > SB_HTTP_MAX_HEADERS)
        return NULL;
    json_t *array = json_array ();
    for (size_t at = 0; array && at < count; at++) {
        const sb_http_header_t *header = &headers [at];
        if (!s_name_ok (header->name) || !s_value_ok (header->value)
        ||  (response && !sb_http_response_header_allowed (header->name))
        ||  json_array_append_new (array, json_pack ("[ss]", header->name, header->value))) {
            json_decref (array);
            return NULL;
        }
    }
    return array;
}

//  Reads a [[name, value]…] array into `headers`. Returns 0, or -1 with *why.
static int
s_headers_read (const json_t *array, sb_http_header_t *headers, size_t *count, bool response,
                const char **why)
{
    if (!json_is_array (array) || json_array_size (array) > SB_HTTP_MAX_HEADERS) {
        *why = "headers must be an array of at most 16 [name, value] pairs";
        return -1;
    }
    size_t index;
    json_t *pair;
    json_array_foreach (array, index, pair) {
        const char *name = json_string_value (json_array_get (pair, 0));
        const char *value = json_string_value (json_array_get (pair, 1));
        if (!json_is_array (pair) || json_array_size (pair) != 2 || !s_name_ok (name)
        ||  !s_value_ok (value)) {
            *why = "a header must be [lowercase token name, visible ASCII value]";
            return -1;
        }
        if (response && !sb_http_response_header_allowed (name)) {
            *why = "a response header is not on the allow-list";
            return -1;
        }
        headers [index].name = strdup (name);
        headers [index].value = strdup (value);
        *count = index + 1;
        if (!headers [index].name || !headers [index].value) {
            *why = "out of memory";
            return -1;
        }
    }
    return 0;
}

//  A copy of the JSON string `value` if it is a string of at most `max`
//  bytes without NUL; its length in *len. NULL otherwise.
static char *
s_text_read (const json_t *value, size_t max, size_t *len)
{
    if (!json_is_string (value))
        return NULL;
    size_t length = json_string_length (value);
    const char *text = json_string_value (value);
    if (length > max || memchr (text, '\0', length))
        return NULL;
    char *copy = malloc (length + 1);
    if (copy) {
        memcpy (copy, text, length);
        copy [length] = '\0';
    }
    if (len)
        *len = length;
    return copy;
}

//  True when `body` (`len` bytes) may travel: within the limit, no NUL.
//  (UTF-8 is checked where the JSON string is made.)
static bool
s_body_ok (const char *body, size_t len)
{
    return body && len <= SB_HTTP_MAX_BODY && !memchr (body, '\0', len);
}

static int
s_add_header (sb_http_header_t *headers, size_t *count, const char *name, const char *value,
              bool response)
{
    if (*count >= SB_HTTP_MAX_HEADERS || !name || strlen (name) > SB_HTTP_MAX_HEADER_NAME)
        return -1;
    char lower [SB_HTTP_MAX_HEADER_NAME + 1];
    size_t len = strlen (name);
    for (size_t at = 0; at <= len; at++)
        lower [at] = (name [at] >= 'A' && name [at] <= 'Z')? (char) (name [at] + 32): name [at];
    if (!s_name_ok (lower) || !s_value_ok (value)
    ||  (response && !sb_http_response_header_allowed (lower)))
        return -1;
    char *name_copy = strdup (lower);
    char *value_copy = strdup (value);
    if (!name_copy || !value_copy) {
        free (name_copy);
        free (value_copy);
        return -1;
    }
    headers [*count].name = name_copy;
    headers [*count].value = value_copy;
    (*count)++;
    return 0;
}

static const char *
s_header_find (const sb_http_header_t *headers, size_t count, const char *name)
{
    for (size_t at = 0; name && at < count; at++)
        if (strcmp (headers [at].name, name) == 0)
            return headers [at].value;
    return NULL;
}

static void
s_headers_clear (sb_http_header_t *headers, size_t count)
{
    for (size_t at = 0; at < count; at++) {
        free (headers [at].name);
        free (headers [at].value);
    }
}

//  Dumps `doc` (stolen) into a new string, or NULL.
static char *
s_dump (json_t *doc)
{
    char *text = doc? sb_json_dump (doc, NULL): NULL;
    json_decref (doc);
    return text;
}

//  ---------------------------------------------------------------------
//  Requests

char *
sb_http_request_encode (const sb_http_request_t *self)
{
    if (!self || !s_ascii_ok (self->method, SB_HTTP_MAX_METHOD, false)
    ||  !s_ascii_ok (self->path, SB_HTTP_MAX_PATH, false) || self->path [0] != '/'
    ||  !s_ascii_ok (self->query? self->query: "", SB_HTTP_MAX_QUERY, true)
    ||  !s_ascii_ok (self->remote? self->remote: "", SB_HTTP_MAX_REMOTE, true)
    ||  !s_body_ok (self->body? self->body: "", self->body? self->body_len: 0))
        return NULL;
    json_t *headers = s_headers_json (self->headers, self->header_count, false);
    json_t *body = json_stringn (self->body? self->body: "", self->body? self->body_len: 0);
    if (!headers || !body) {
        json_decref (headers);
        json_decref (body);
        return NULL;
    }
    return s_dump (json_pack ("{s:s, s:s, s:s, s:o, s:o, s:s}",
                              "method", self->method, "path", self->path,
                              "query", self->query? self->query: "",
                              "headers", headers, "body", body,
                              "remote", self->remote? self->remote: ""));
}

int
sb_http_request_decode (const char *json, size_t len, sb_http_request_t *out, const char **why)
{
    const char *dummy = NULL;
    why = why? why: &dummy;
    memset (out, 0, sizeof *out);
    json_t *doc = json? sb_json_parse (json, len, JSON_REJECT_DUPLICATES, NULL): NULL;
    int rc = -1;
    if (!json_is_object (doc)) {
        *why = "an HTTP request must be one JSON object";
        goto out;
    }
    out->method = s_text_read (json_object_get (doc, "method"), SB_HTTP_MAX_METHOD, NULL);
    out->path = s_text_read (json_object_get (doc, "path"), SB_HTTP_MAX_PATH, NULL);
    out->query = s_text_read (json_object_get (doc, "query"), SB_HTTP_MAX_QUERY, NULL);
    out->remote = s_text_read (json_object_get (doc, "remote"), SB_HTTP_MAX_REMOTE, NULL);
    out->body = s_text_read (json_object_get (doc, "body"), SB_HTTP_MAX_BODY, &out->body_len);
    if (!out->method || !s_ascii_ok (out->method, SB_HTTP_MAX_METHOD, false)) {
        *why = "method must be 1-16 visible ASCII bytes";
        goto out;
    }
    if (!out->path || !s_ascii_ok (out->path, SB_HTTP_MAX_PATH, false) || out->path [0] != '/') {
        *why = "path must be visible ASCII beginning with '/'";
        goto out;
    }
    if (!out->query || !s_ascii_ok (out->query, SB_HTTP_MAX_QUERY, true)) {
        *why = "query must be a string of visible ASCII";
        goto out;
    }
    if (!out->remote || !s_ascii_ok (out->remote, SB_HTTP_MAX_REMOTE, true)) {
        *why = "remote must be a short string of visible ASCII";
        goto out;
    }
    if (!out->body) {
        *why = "body must be a string of at most SB_HTTP_MAX_BODY bytes without NUL";
        goto out;
    }
    rc = s_headers_read (json_object_get (doc, "headers"), out->headers, &out->header_count,
                         false, why);
out:
    json_decref (doc);
    if (rc)
        sb_http_request_clear (out);
    return rc;
}

void
sb_http_request_clear (sb_http_request_t *self)
{
    if (!self)
        return;
    free (self->method);
    free (self->path);
    free (self->query);
    free (self->body);
    free (self->remote);
    s_headers_clear (self->headers, self->header_count);
    memset (self, 0, sizeof *self);
}

const char *
sb_http_request_header (const sb_http_request_t *self, const char *name)
{
    return s_header_find (self->headers, self->header_count, name);
}

int
sb_http_request_add_header (sb_http_request_t *self, const char *name, const char *value)
{
    return s_add_header (self->headers, &self->header_count, name, value, false);
}

//  ---------------------------------------------------------------------
//  Responses

char *
sb_http_response_encode (const sb_http_response_t *self)
{
    if (!self || self->status < 200 || self->status > 599
    ||  !s_body_ok (self->body? self->body: "", self->body? self->body_len: 0))
        return NULL;
    json_t *headers = s_headers_json (self->headers, self->header_count, true);
    json_t *body = json_stringn (self->body? self->body: "", self->body? self->body_len: 0);
    if (!headers || !body) {
        json_decref (headers);
        json_decref (body);
        return NULL;
    }
    return s_dump (json_pack ("{s:i, s:o, s:o}", "status", self->status,
                              "headers", headers, "body", body));
}

int
sb_http_response_decode (const char *json, size_t len, sb_http_response_t *out, const char **why)
{
    const char *dummy = NULL;
    why = why? why: &dummy;
    memset (out, 0, sizeof *out);
    json_t *doc = json? sb_json_parse (json, len, JSON_REJECT_DUPLICATES, NULL): NULL;
    int rc = -1;
    if (!json_is_object (doc)) {
        *why = "an HTTP response must be one JSON object";
        goto out;
    }
    json_t *status = json_object_get (doc, "status");
    if (!json_is_integer (status) || json_integer_value (status) < 200
    ||  json_integer_value (status) > 599) {
        *why = "status must be an integer from 200 to 599";
        goto out;
    }
    out->status = (int) json_integer_value (status);
    out->body = s_text_read (json_object_get (doc, "body"), SB_HTTP_MAX_BODY, &out->body_len);
    if (!out->body) {
        *why = "body must be a string of at most SB_HTTP_MAX_BODY bytes without NUL";
        goto out;
    }
    rc = s_headers_read (json_object_get (doc, "headers"), out->headers, &out->header_count,
                         true, why);
out:
    json_decref (doc);
    if (rc)
        sb_http_response_clear (out);
    return rc;
}

void
sb_http_response_clear (sb_http_response_t *self)
{
    if (!self)
        return;
    free (self->body);
    s_headers_clear (self->headers, self->header_count);
    memset (self, 0, sizeof *self);
}

int
sb_http_response_add_header (sb_http_response_t *self, const char *name, const char *value)
{
    return s_add_header (self->headers, &self->header_count, name, value, true);
}

int
sb_http_response_set_body (sb_http_response_t *self, const char *body, size_t len)
{
    if (!s_body_ok (body, len))
        return -1;
    char *copy = malloc (len + 1);
    if (!copy)
        return -1;
    memcpy (copy, body, len);
    copy [len] = '\0';
    free (self->body);
    self->body = copy;
    self->body_len = len;
    return 0;
}

const char *
sb_http_response_header (const sb_http_response_t *self, const char *name)
{
    return s_header_find (self->headers, self->header_count, name);
}
