/*  gateway/sb_http.h — small helpers over h2o requests: reading headers and
    sending JSON responses. Every response the gateway sends goes through
    sb_http_send_json or sb_http_send_error, so each carries
    Content-Type: application/json and a Content-Length. */
#ifndef SB_HTTP_H_INCLUDED
#define SB_HTTP_H_INCLUDED

#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>
#include <stdbool.h>

/*  Reason phrase for the statuses the gateway sends ("OK", "Not Found"…). */
const char *sb_http_reason (int status);

/*  Finds request header `token`; returns true and sets *value (borrowed
    from the request) when present. */
bool sb_http_header (h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *value);

/*  Same for a header h2o has no token for; `name` in lowercase. */
bool sb_http_header_str (h2o_req_t *req, const char *name, h2o_iovec_t *value);

/*  Adds response header `token` with a copy of `value` in the request pool. */
void sb_http_add_header (h2o_req_t *req, const h2o_token_t *token, const char *value);

/*  The same for a header h2o has no token for (`name` in lowercase,
    e.g. "ratelimit-policy"); name and value are copied. */
void sb_http_add_header_str (h2o_req_t *req, const char *name, const char *value);

/*  Sends `status` with `body` (JSON text, copied; NULL sends an empty body
    without Content-Type). */
void sb_http_send_json (h2o_req_t *req, int status, const char *body);

/*  Sends `status` with {"error": error, "message": message}. */
void sb_http_send_error (h2o_req_t *req, int status, const char *error, const char *message);

/*  True when the request's Content-Type is application/json (any case,
    parameters such as charset allowed). */
bool sb_http_is_json (h2o_req_t *req);

#endif
