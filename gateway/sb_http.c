/*  gateway/sb_http.c — h2o request/response helpers for JSON endpoints. */
#include "sb_http.h"
#include "sb_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
sb_http_reason (int status)
{
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 303: return "See Other";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 406: return "Not Acceptable";
        case 409: return "Conflict";
        case 413: return "Payload Too Large";
        case 410: return "Gone";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
    }
    return "Unknown";
}

bool
sb_http_header (h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *value)
{
    ssize_t index = h2o_find_header (&req->headers, token, -1);
    if (index < 0)
        return false;
    *value = req->headers.entries [index].value;
    return true;
}

bool
sb_http_header_str (h2o_req_t *req, const char *name, h2o_iovec_t *value)
{
    ssize_t index = h2o_find_header_by_str (&req->headers, name, strlen (name), -1);
    if (index < 0)
        return false;
    *value = req->headers.entries [index].value;
    return true;
}

void
sb_http_add_header (h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_iovec_t copy = h2o_strdup (&req->pool, value, SIZE_MAX);
    h2o_add_header (&req->pool, &req->res.headers, token, NULL, copy.base, copy.len);
}

void
sb_http_add_header_str (h2o_req_t *req, const char *name, const char *value)
{
    h2o_iovec_t copy = h2o_strdup (&req->pool, value, SIZE_MAX);
    h2o_iovec_t key = h2o_strdup (&req->pool, name, SIZE_MAX);
    h2o_add_header_by_str (&req->pool, &req->res.headers, key.base, key.len, 1, NULL,
                           copy.base, copy.len);
}

void
sb_http_send_json (h2o_req_t *req, int status, const char *body)
{
    req->res.status = status;
    req->res.reason = sb_http_reason (status);
    size_t len = body? strlen (body): 0;
    if (body)
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                        H2O_STRLIT ("application/json"));
    req->res.content_length = len;
    h2o_send_inline (req, body? body: "", len);
}

void
sb_http_send_error (h2o_req_t *req, int status, const char *error, const char *message)
{
    json_t *obj = json_pack ("{s:s, s:s}", "error", error, "message", message);
    char *text = obj? sb_json_dump (obj, NULL): NULL;
    sb_http_send_json (req, status, text? text: "{\"error\":\"internal\"}");
    free (text);
    json_decref (obj);
}

bool
sb_http_is_json (h2o_req_t *req)
{
    h2o_iovec_t value;
    if (!sb_http_header (req, H2O_TOKEN_CONTENT_TYPE, &value))
        return false;
    static const char type [] = "application/json";
    size_t n = sizeof type - 1;
    if (value.len < n || strncasecmp (value.base, type, n) != 0)
        return false;
    return value.len == n || value.base [n] == ';' || value.base [n] == ' ' || value.base [n] == '\t';
}
