/*  payload/sb_http_payload.h — an HTTP request carried to a worker as a
    job, and the HTTP response it answers with (proto/PROTOCOL.md, "HTTP
    jobs"). The gateway serves some routes whose every decision needs
    state it must not hold (the authorization server's /authorize, /token,
    /register and /revoke, the admin API): it checks the route, the method
    and the size, sends the request as the `data` of a job to the service
    that owns the route, and answers the client with the job's result. The
    gateway never interprets the body; the worker never sees the socket.

      request  (job data)   {"method": str, "path": str, "query": str,
                             "headers": [[name, value]…], "body": str,
                             "remote": str}
      response (result)     {"status": int, "headers": [[name, value]…],
                             "body": str}

    Header names are lowercase; only the request headers the route's
    service needs travel (the gateway's allow-list), and only response
    headers on sb_http_response_header_allowed's list are written back, so
    a worker cannot set a hop-by-hop header or a cookie for another path by
    accident. Bodies are UTF-8 text (forms, JSON, HTML): the gateway
    refuses a body that is not with 400 before any job is sent.

    Decoders read text from the network: every check fails into one -1
    with a sentence in *why. */
#ifndef SB_HTTP_PAYLOAD_H_INCLUDED
#define SB_HTTP_PAYLOAD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_HTTP_MAX_HEADERS         16              /* headers one request or response carries */
#define SB_HTTP_MAX_HEADER_NAME     64              /* bytes of a header name */
#define SB_HTTP_MAX_HEADER_VALUE    4096            /* bytes of a header value */
#define SB_HTTP_MAX_BODY            (256 * 1024)    /* bytes of a request or response body */
#define SB_HTTP_MAX_PATH            2048            /* bytes of a path */
#define SB_HTTP_MAX_QUERY           8192            /* bytes of a query string (without '?') */
#define SB_HTTP_MAX_METHOD          16              /* bytes of a method */
#define SB_HTTP_MAX_REMOTE          64              /* bytes of the client's address text */

typedef struct {
    char *name;         /* lowercase token */
    char *value;        /* visible ASCII, space and tab; no CR, LF or NUL */
} sb_http_header_t;

/*  A request as a job's data. Strings owned (malloc); "" when empty. */
typedef struct {
    char *method;                                   /* "GET", "POST"… */
    char *path;                                     /* "/token", begins with '/' */
    char *query;                                    /* without the '?' */
    sb_http_header_t headers [SB_HTTP_MAX_HEADERS];
    size_t header_count;
    char *body;                                     /* NUL-terminated, body_len bytes */
    size_t body_len;
    char *remote;                                   /* the client's address, for the audit log */
} sb_http_request_t;

/*  A response as a job's result. Strings owned (malloc). */
typedef struct {
    int status;                                     /* 200..599 */
    sb_http_header_t headers [SB_HTTP_MAX_HEADERS];
    size_t header_count;
    char *body;                                     /* NUL-terminated, body_len bytes; "" when none */
    size_t body_len;
} sb_http_response_t;

/*  The request as JSON text (new string, caller frees), or NULL when a
    field breaks a limit or a rule above, or memory ran out. */
char *sb_http_request_encode (const sb_http_request_t *self) SB_MUST_USE;

/*  Reads `len` bytes of JSON into `out` (zeroed by the caller or by
    sb_http_request_clear). Returns 0, or -1 with `out` cleared and *why a
    sentence naming the rule broken. Unknown members are ignored. */
int sb_http_request_decode (const char *json, size_t len, sb_http_request_t *out,
                            const char **why)
    SB_MUST_USE;

/*  Frees the strings of `self` and zeroes it. */
void sb_http_request_clear (sb_http_request_t *self);

/*  The value of header `name` (lowercase), or NULL when absent. */
const char *sb_http_request_header (const sb_http_request_t *self, const char *name);

/*  Adds header `name` (lowercased) with `value` (both copied) to a request
    being built. Returns 0, or -1 when full, out of memory or the name or
    value breaks the rules. */
int sb_http_request_add_header (sb_http_request_t *self, const char *name, const char *value)
    SB_MUST_USE;

/*  The response as JSON text (new string, caller frees), or NULL when a
    field breaks a limit or a rule, or memory ran out. */
char *sb_http_response_encode (const sb_http_response_t *self) SB_MUST_USE;

/*  Reads a response as sb_http_request_decode reads a request; a header
    not on the allow-list is refused, not dropped (the worker is wrong). */
int sb_http_response_decode (const char *json, size_t len, sb_http_response_t *out,
                             const char **why)
    SB_MUST_USE;

/*  Frees the strings of `self` and zeroes it. */
void sb_http_response_clear (sb_http_response_t *self);

/*  Adds a header to a response being built (as for a request; the name
    must be on the allow-list). Returns 0 or -1. */
int sb_http_response_add_header (sb_http_response_t *self, const char *name, const char *value)
    SB_MUST_USE;

/*  Sets the body of a response being built (a copy of `len` bytes, which
    must be UTF-8 without NUL). Returns 0 or -1. */
int sb_http_response_set_body (sb_http_response_t *self, const char *body, size_t len)
    SB_MUST_USE;

/*  The value of response header `name` (lowercase), or NULL. */
const char *sb_http_response_header (const sb_http_response_t *self, const char *name);

/*  True when a worker may set response header `name` (lowercase):
    content-type, cache-control, pragma, location, set-cookie,
    www-authenticate, retry-after, content-security-policy,
    x-frame-options, x-content-type-options, referrer-policy, vary. */
bool sb_http_response_header_allowed (const char *name);

#endif
