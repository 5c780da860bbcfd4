/*  sandbox/sb_sandbox.c — the sandbox server: h2o on one event loop, request
    routing, the Bearer API key (or an OAuth access token: sb_sandbox_oauth.c),
    JSON responses, request statistics, and fault injection (delays run on
    h2o timers, so a delayed request never blocks the loop or any other
    request). */
#include "sb_sandbox_int.h"
#include "sb_sandbox_oauth.h"
#include "sb_crypto.h"
#include "sb_json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sb_log.h"

#define SB_SANDBOX_MAX_SEGMENTS 8       /* path segments looked at */
#define SB_SANDBOX_MAX_PATH     2048    /* request path, bytes */
#define SB_SANDBOX_MAX_API_KEY  256     /* API key, bytes */

/*  One fault rule: the next `remaining` requests under `prefix` are delayed
    and/or answered with `status`. */
typedef struct {
    char prefix [256];          /* path prefix, e.g. "/v1/accounts" */
    long delay_ms;              /* delay before answering, 0 = none */
    int status;                 /* status to answer with, 0 = the real answer */
    long remaining;             /* requests left; -1 = until cleared */
    long retry_after;           /* seconds, for 429/503 answers; -1 = none */
} s_fault_t;

/*  A timer for one delay value (h2o 2.2 timeouts have a fixed duration). */
typedef struct {
    h2o_timeout_t timeout;      /* linked into the loop */
    uint64_t ms;                /* its duration */
} s_timer_t;

/*  h2o handler carrying a pointer back to the server. */
typedef struct {
    h2o_handler_t super;        /* must be first */
    sb_sandbox_t *sandbox;      /* the server */
} s_handler_t;

/*  A request waiting out an injected delay (in the request's pool). */
typedef struct {
    h2o_timeout_entry_t entry;  /* linked to a s_timer_t */
    h2o_req_t *req;             /* the waiting request */
    sb_sandbox_t *sandbox;      /* the server */
    int status;                 /* fault status to answer with, 0 = real answer */
    long retry_after;           /* for the fault answer */
    char account [SB_SANDBOX_OAUTH_MAX_ACCOUNT];    /* who asked (GET /v1/me) */
    char grant [SB_SANDBOX_OAUTH_MAX_ACCOUNT];      /* their OAuth grant, or "" */
} s_delayed_t;

struct _sb_sandbox_t {
    h2o_globalconf_t config;                /* h2o configuration */
    h2o_context_t ctx;                      /* h2o context on `loop` */
    h2o_accept_ctx_t accept_ctx;            /* for accepted sockets */
    h2o_evloop_t *loop;                     /* the one event loop */
    h2o_socket_t *listener;                 /* listening socket, NULL once closed */
    int port;                               /* bound port */
    char api_key [SB_SANDBOX_MAX_API_KEY];  /* expected Bearer token */
    char key_header [SB_SANDBOX_MAX_KEY_HEADER];    /* header carrying the bare key (lower
                                                       case), or "" for Authorization: Bearer */
    sb_crm_t *crm;                          /* the data */
    sb_sandbox_oauth_t *oauth;              /* the OAuth provider, or NULL when off */
    s_fault_t faults [SB_SANDBOX_MAX_FAULTS];   /* active fault rules */
    size_t fault_count;                     /* entries in faults */
    s_timer_t *timers [SB_SANDBOX_MAX_TIMERS];  /* delay timers, NULL = free slot */
    size_t delayed;                         /* requests waiting on a delay now */
    uint64_t requests;                      /* every request */
    uint64_t api_requests;                  /* requests under /v1 */
    uint64_t unauthorized;                  /* /v1 requests refused for the key */
    uint64_t by_status [6];                 /* answers by class: [2] = 2xx … */
    uint64_t by_type [SB_CRM_TYPES];        /* /v1 requests per collection */
    uint64_t faults_injected;               /* requests a fault rule touched */
    bool drained;                           /* run ended with nothing in flight */
};

//  A server whose drain timed out, kept reachable until the process exits
//  (volatile, so the store is not optimised away). See sb_sandbox_destroy.
static sb_sandbox_t *volatile s_left_to_exit;

//  --------------------------------------------------------------------------
//  Responses

static const char *
s_reason (int status)
{
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 302: return "Found";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 413: return "Payload Too Large";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default:  return "Status";
    }
}

//  The server, found from a request through its handler.
static sb_sandbox_t *
s_sandbox_of (h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER (sb_sandbox_t, ctx, req->conn->ctx);
}

void
sb_sandbox_send_json (h2o_req_t *req, int status, json_t *body)
{
    size_t len = 0;
    char *text = sb_json_dump (body, &len);
    json_decref (body);
    if (!text) {
        status = 500;
        text = strdup ("{\"error\":\"internal\",\"message\":\"Could not encode the answer.\"}");
        len = text? strlen (text): 0;
    }
    sb_sandbox_send_text (req, status, text, len);
}

void
sb_sandbox_send_text (h2o_req_t *req, int status, char *text, size_t len)
{
    sb_sandbox_send (req, status, "application/json", text, len);
}

void
sb_sandbox_send (h2o_req_t *req, int status, const char *content_type, char *text, size_t len)
{
    if (!text) {
        status = 500;
        content_type = "text/plain";
        len = 0;
    }
    sb_sandbox_t *self = s_sandbox_of (req);
    if (status >= 100 && status < 600)
        self->by_status [status / 100]++;
    req->res.status = status;
    req->res.reason = s_reason (status);
    req->res.content_length = len;
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                    content_type, strlen (content_type));
    h2o_send_inline (req, text ? text : "", len);
    free (text);
}

void
sb_sandbox_send_error (h2o_req_t *req, int status, const char *code, const char *message)
{
    sb_sandbox_send_json (req, status, json_pack ("{s:s, s:s}", "error", code,
                                                  "message", message));
}

//  Percent-decodes `len` bytes into out (size `size`); '+' is a space when
//  `plus`. Returns -1 on bad escapes, NUL bytes or overflow.
static int
s_decode (const char *in, size_t len, bool plus, char *out, size_t size)
{
    size_t at = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in [i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = sb_hex_digit (in [i + 1]);
            int lo = sb_hex_digit (in [i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char) (hi * 16 + lo);
            i += 2;
        }
        else
        if (c == '+' && plus)
            c = ' ';
        if (c == 0 || at + 1 >= size)
            return -1;
        out [at++] = c;
    }
    out [at] = 0;
    return 0;
}

int
sb_sandbox_query_param (h2o_req_t *req, const char *name, char *out, size_t size)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *p = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    size_t name_len = strlen (name);
    while (p < end) {
        const char *amp = memchr (p, '&', (size_t) (end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr (p, '=', (size_t) (stop - p));
        const char *key_end = eq ? eq : stop;
        if ((size_t) (key_end - p) == name_len && memcmp (p, name, name_len) == 0) {
            if (!eq) {
                out [0] = 0;
                return 1;
            }
            return s_decode (eq + 1, (size_t) (stop - eq - 1), true, out, size) ? -1 : 1;
        }
        p = stop + 1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Faults

static s_timer_t *s_timer_for (sb_sandbox_t *self, uint64_t ms);

h2o_timeout_t *
sb_sandbox_timeout (sb_sandbox_t *self, uint64_t ms)
{
    s_timer_t *timer = s_timer_for (self, ms);
    return timer ? &timer->timeout : NULL;
}

h2o_evloop_t *
sb_sandbox_loop (sb_sandbox_t *self)
{
    return self->loop;
}

static s_timer_t *
s_timer_for (sb_sandbox_t *self, uint64_t ms)
{
    for (size_t i = 0; i < SB_SANDBOX_MAX_TIMERS; i++)
        if (self->timers [i] && self->timers [i]->ms == ms)
            return self->timers [i];
    //  Reclaim idle timers no rule refers to any more.
    for (size_t i = 0; i < SB_SANDBOX_MAX_TIMERS; i++) {
        s_timer_t *timer = self->timers [i];
        if (!timer || !h2o_linklist_is_empty (&timer->timeout._entries))
            continue;
        bool used = false;
        for (size_t f = 0; f < self->fault_count; f++)
            used |= (uint64_t) self->faults [f].delay_ms == timer->ms;
        if (!used) {
            h2o_timeout_dispose (self->loop, &timer->timeout);
            free (timer);
            self->timers [i] = NULL;
        }
    }
    for (size_t i = 0; i < SB_SANDBOX_MAX_TIMERS; i++)
        if (!self->timers [i]) {
            s_timer_t *timer = calloc (1, sizeof *timer);
            if (!timer)
                return NULL;
            timer->ms = ms;
            h2o_timeout_init (self->loop, &timer->timeout, ms);
            self->timers [i] = timer;
            return timer;
        }
    return NULL;
}

static void
s_send_fault (h2o_req_t *req, int status, long retry_after)
{
    json_t *body = json_pack ("{s:s, s:s}", "error", "injected_fault",
                              "message", "This answer was injected by the sandbox's fault API.");
    if (retry_after >= 0) {
        char value [24];
        int len = snprintf (value, sizeof value, "%ld", retry_after);
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                        h2o_strdup (&req->pool, value, (size_t) len).base, (size_t) len);
        json_object_set_new (body, "retry_after", json_integer (retry_after));
    }
    sb_sandbox_send_json (req, status, body);
}

static void s_api (sb_sandbox_t *self, h2o_req_t *req, const char *account, const char *grant);

static void
s_on_delay_done (h2o_timeout_entry_t *entry)
{
    s_delayed_t *delayed = H2O_STRUCT_FROM_MEMBER (s_delayed_t, entry, entry);
    sb_sandbox_t *self = delayed->sandbox;
    self->delayed--;
    if (delayed->status)
        s_send_fault (delayed->req, delayed->status, delayed->retry_after);
    else
        s_api (self, delayed->req, delayed->account, delayed->grant);
}

//  Called when the request's pool is released: a request that goes away
//  while waiting must leave the timer list.
static void
s_on_delayed_dispose (void *data)
{
    s_delayed_t *delayed = data;
    if (h2o_timeout_is_linked (&delayed->entry)) {
        h2o_timeout_unlink (&delayed->entry);
        delayed->sandbox->delayed--;
    }
}

//  Applies the first matching fault rule. Returns true when the request
//  has been taken care of (delayed or answered).
static bool
s_apply_fault (sb_sandbox_t *self, h2o_req_t *req, const char *path, const char *account,
               const char *grant)
{
    for (size_t i = 0; i < self->fault_count; i++) {
        s_fault_t *fault = &self->faults [i];
        if (fault->remaining == 0 || strncmp (path, fault->prefix, strlen (fault->prefix)))
            continue;
        if (fault->remaining > 0)
            fault->remaining--;
        self->faults_injected++;
        if (fault->delay_ms > 0) {
            s_timer_t *timer = s_timer_for (self, (uint64_t) fault->delay_ms);
            if (timer) {
                s_delayed_t *delayed = h2o_mem_alloc_shared (&req->pool, sizeof *delayed,
                                                             s_on_delayed_dispose);
                memset (delayed, 0, sizeof *delayed);
                delayed->entry.cb = s_on_delay_done;
                delayed->req = req;
                delayed->sandbox = self;
                delayed->status = fault->status;
                delayed->retry_after = fault->retry_after;
                snprintf (delayed->account, sizeof delayed->account, "%s", account);
                snprintf (delayed->grant, sizeof delayed->grant, "%s", grant);
                h2o_timeout_link (self->loop, &timer->timeout, &delayed->entry);
                self->delayed++;
                return true;
            }
        }
        if (fault->status) {
            s_send_fault (req, fault->status, fault->retry_after);
            return true;
        }
        return false;
    }
    return false;
}

static json_t *
s_faults_json (sb_sandbox_t *self)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < self->fault_count; i++) {
        s_fault_t *fault = &self->faults [i];
        json_t *item = json_pack ("{s:s, s:I, s:I}", "path_prefix", fault->prefix,
                                  "delay_ms", (json_int_t) fault->delay_ms,
                                  "remaining", (json_int_t) fault->remaining);
        if (fault->status)
            json_object_set_new (item, "status", json_integer (fault->status));
        json_array_append_new (list, item);
    }
    return json_pack ("{s:o}", "faults", list);
}

//  Reads an optional integer member within [min, max]. -1 if invalid.
static int
s_member_int (json_t *obj, const char *key, long min, long max, long *out)
{
    json_t *value = json_object_get (obj, key);
    if (!value)
        return 0;
    if (!json_is_integer (value) || json_integer_value (value) < min
    ||  json_integer_value (value) > max)
        return -1;
    *out = (long) json_integer_value (value);
    return 0;
}

static void
s_post_fault (sb_sandbox_t *self, h2o_req_t *req)
{
    json_t *input = req->entity.base
                  ? json_loadb (req->entity.base, req->entity.len, 0, NULL) : NULL;
    s_fault_t fault = { .remaining = -1, .retry_after = -1 };
    long status = 0;
    const char *message = NULL;
    snprintf (fault.prefix, sizeof fault.prefix, "/v1/");
    if (!json_is_object (input))
        message = "The body must be a JSON object.";
    else {
        const char *key;
        json_t *value;
        json_object_foreach (input, key, value)
            if (strcmp (key, "delay_ms") && strcmp (key, "status") && strcmp (key, "count")
            &&  strcmp (key, "path_prefix") && strcmp (key, "retry_after"))
                message = "Fault fields are delay_ms, status, count, path_prefix, retry_after.";
        json_t *prefix = json_object_get (input, "path_prefix");
        if (s_member_int (input, "delay_ms", 0, SB_SANDBOX_MAX_DELAY_MS, &fault.delay_ms))
            message = "delay_ms must be an integer from 0 to 60000.";
        else
        if (s_member_int (input, "status", 200, 599, &status))
            message = "status must be an HTTP status from 200 to 599.";
        else
        if (s_member_int (input, "count", 1, 1000000, &fault.remaining))
            message = "count must be an integer from 1 to 1000000.";
        else
        if (s_member_int (input, "retry_after", 0, 3600, &fault.retry_after))
            message = "retry_after must be an integer from 0 to 3600.";
        else
        if (prefix && (!json_is_string (prefix) || json_string_value (prefix) [0] != '/'
                       || json_string_length (prefix) >= sizeof fault.prefix))
            message = "path_prefix must be a path starting with \"/\".";
        else
        if (prefix)
            snprintf (fault.prefix, sizeof fault.prefix, "%s", json_string_value (prefix));
        if (!message && fault.delay_ms == 0 && status == 0)
            message = "A fault needs delay_ms or status.";
    }
    json_decref (input);
    if (message) {
        sb_sandbox_send_error (req, 400, "bad_request", message);
        return;
    }
    fault.status = (int) status;
    if (fault.status == 429 && fault.retry_after < 0)
        fault.retry_after = 1;
    //  Rules that have run out make room for new ones.
    size_t kept = 0;
    for (size_t i = 0; i < self->fault_count; i++)
        if (self->faults [i].remaining != 0)
            self->faults [kept++] = self->faults [i];
    self->fault_count = kept;
    if (self->fault_count == SB_SANDBOX_MAX_FAULTS
    ||  (fault.delay_ms > 0 && !s_timer_for (self, (uint64_t) fault.delay_ms))) {
        sb_sandbox_send_error (req, 409, "conflict", "Too many fault rules; DELETE them first.");
        return;
    }
    self->faults [self->fault_count++] = fault;
    sb_log_info ("fault_added", "prefix=%s delay_ms=%ld status=%d count=%ld",
                 fault.prefix, fault.delay_ms, fault.status, fault.remaining);
    sb_sandbox_send_json (req, 201, s_faults_json (self));
}

static void
s_admin (sb_sandbox_t *self, h2o_req_t *req, const char *path)
{
    bool get = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("GET"));
    bool post = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("POST"));
    bool delete = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("DELETE"));
    if (strcmp (path, "/_sandbox/faults") == 0) {
        if (post)
            s_post_fault (self, req);
        else
        if (delete) {
            size_t cleared = self->fault_count;
            self->fault_count = 0;
            sb_log_info ("faults_cleared", "rules=%zu", cleared);
            sb_sandbox_send_json (req, 200, json_pack ("{s:I}", "cleared", (json_int_t) cleared));
        }
        else
        if (get)
            sb_sandbox_send_json (req, 200, s_faults_json (self));
        else {
            h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                            H2O_STRLIT ("GET, POST, DELETE"));
            sb_sandbox_send_error (req, 405, "method_not_allowed", "Use GET, POST or DELETE.");
        }
        return;
    }
    if (strcmp (path, "/_sandbox/stats") == 0 && get) {
        json_t *by_type = json_object ();
        for (int type = 0; type < SB_CRM_TYPES; type++)
            json_object_set_new (by_type, sb_crm_type_name ((sb_crm_type_t) type),
                                 json_integer ((json_int_t) self->by_type [type]));
        json_t *by_status = json_object ();
        for (int c = 1; c < 6; c++) {
            char name [8];
            snprintf (name, sizeof name, "%dxx", c);
            json_object_set_new (by_status, name, json_integer ((json_int_t) self->by_status [c]));
        }
        sb_sandbox_send_json (req, 200, json_pack ("{s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
            "requests", (json_int_t) self->requests,
            "api_requests", (json_int_t) self->api_requests,
            "unauthorized", (json_int_t) self->unauthorized,
            "faults_injected", (json_int_t) self->faults_injected,
            "delayed_now", (json_int_t) self->delayed,
            "by_type", by_type, "by_status", by_status));
        return;
    }
    sb_sandbox_send_error (req, 404, "not_found", "There is no such admin endpoint.");
}

//  --------------------------------------------------------------------------
//  Routing

//  The key as "Authorization: Bearer <key>", or as "<key header>: <key>"
//  (and only so) when the sandbox was given a key header.
static bool
s_authorized (sb_sandbox_t *self, h2o_req_t *req)
{
    ssize_t at = self->key_header [0]
               ? h2o_find_header_by_str (&req->headers, self->key_header,
                                         strlen (self->key_header), -1)
               : h2o_find_header (&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (at < 0)
        return false;
    h2o_iovec_t value = req->headers.entries [at].value;
    size_t key_len = strlen (self->api_key);
    if (self->key_header [0])
        return value.len == key_len && CRYPTO_memcmp (value.base, self->api_key, key_len) == 0;
    if (value.len != 7 + key_len || strncasecmp (value.base, "Bearer ", 7))
        return false;
    return CRYPTO_memcmp (value.base + 7, self->api_key, key_len) == 0;
}

//  Who a /v1 request is: the API key's holder (account "shared", no
//  grant), an OAuth grant's account (its access token live or expired), or
//  nobody. `account` and `grant` have SB_SANDBOX_OAUTH_MAX_ACCOUNT bytes.
static sb_sandbox_bearer_t
s_identify (sb_sandbox_t *self, h2o_req_t *req, char *account, char *grant)
{
    account [0] = grant [0] = 0;
    if (s_authorized (self, req)) {
        snprintf (account, SB_SANDBOX_OAUTH_MAX_ACCOUNT, "shared");
        return SB_SANDBOX_BEARER_LIVE;
    }
    ssize_t at = self->oauth ? h2o_find_header (&req->headers, H2O_TOKEN_AUTHORIZATION, -1) : -1;
    if (at < 0)
        return SB_SANDBOX_BEARER_UNKNOWN;
    h2o_iovec_t value = req->headers.entries [at].value;
    if (value.len <= 7 || strncasecmp (value.base, "Bearer ", 7))
        return SB_SANDBOX_BEARER_UNKNOWN;
    return sb_sandbox_oauth_bearer (self->oauth, value.base + 7, value.len - 7, account, grant);
}

//  GET /v1/me: whose credential this is.
static void
s_me (h2o_req_t *req, const char *account, const char *grant)
{
    if (!h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("GET"))) {
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT ("GET"));
        sb_sandbox_send_error (req, 405, "method_not_allowed", "This method is not allowed here.");
        return;
    }
    json_t *body = json_pack ("{s:s}", "account", account);
    if (*grant)
        json_object_set_new (body, "grant", json_string (grant));
    sb_sandbox_send_json (req, 200, body);
}

//  Splits the /v1 path into decoded segments and hands it to the API.
static void
s_api (sb_sandbox_t *self, h2o_req_t *req, const char *account, const char *grant)
{
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char path [SB_SANDBOX_MAX_PATH];
    char *segments [SB_SANDBOX_MAX_SEGMENTS];
    size_t count = 0;
    memcpy (path, req->path.base, path_len);    //  length checked in s_on_req
    path [path_len] = 0;
    if (strcmp (path, "/v1/me") == 0) {
        s_me (req, account, grant);
        return;
    }
    char *p = path + 4;     //  after "/v1/"
    while (p && *p) {
        if (count == SB_SANDBOX_MAX_SEGMENTS) {
            sb_sandbox_send_error (req, 404, "not_found", "There is no such API endpoint.");
            return;
        }
        segments [count++] = p;
        p = strchr (p, '/');
        if (p)
            *p++ = 0;
    }
    for (size_t i = 0; i < count; i++)
        if (s_decode (segments [i], strlen (segments [i]), false, segments [i],
                      strlen (segments [i]) + 1)) {
            sb_sandbox_send_error (req, 400, "bad_request", "The path is malformed.");
            return;
        }
    sb_sandbox_api_handle (self->crm, req, segments, count, self->by_type);
}

static int
s_on_req (h2o_handler_t *handler, h2o_req_t *req)
{
    sb_sandbox_t *self = ((s_handler_t *) handler)->sandbox;
    self->requests++;

    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char path [SB_SANDBOX_MAX_PATH];
    if (path_len >= sizeof path) {
        sb_sandbox_send_error (req, 414, "uri_too_long", "The path is too long.");
        return 0;
    }
    memcpy (path, req->path.base, path_len);
    path [path_len] = 0;
    if (req->entity.base && req->entity.len > SB_SANDBOX_MAX_BODY) {
        sb_sandbox_send_error (req, 413, "payload_too_large", "The body is larger than 64 KiB.");
        return 0;
    }
    if (strcmp (path, "/healthz") == 0) {
        sb_sandbox_send_json (req, 200, json_pack ("{s:s}", "status", "ok"));
        return 0;
    }
    if (strncmp (path, "/oauth/", 7) == 0 || strcmp (path, "/_sandbox/oauth") == 0
    ||  strncmp (path, "/_sandbox/oauth/", 16) == 0) {
        if (!self->oauth)
            sb_sandbox_send_error (req, 404, "not_found",
                                   "The OAuth provider is off (start with --oauth-client-id).");
        else
        if (path [1] == 'o')
            sb_sandbox_oauth_handle (self->oauth, req, path);
        else
            sb_sandbox_oauth_admin (self->oauth, req, path);
        return 0;
    }
    if (strncmp (path, "/_sandbox/", 10) == 0) {
        s_admin (self, req, path);
        return 0;
    }
    if (strncmp (path, "/v1/", 4)) {
        sb_sandbox_send_error (req, 404, "not_found", "There is no such endpoint.");
        return 0;
    }
    self->api_requests++;
    char account [SB_SANDBOX_OAUTH_MAX_ACCOUNT], grant [SB_SANDBOX_OAUTH_MAX_ACCOUNT];
    sb_sandbox_bearer_t who = s_identify (self, req, account, grant);
    if (who == SB_SANDBOX_BEARER_EXPIRED) {
        //  RFC 6750 §3.1: the client should refresh and try again.
        self->unauthorized++;
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                        H2O_STRLIT ("Bearer realm=\"sandbox\", error=\"invalid_token\", "
                                    "error_description=\"The access token expired or was revoked\""));
        sb_sandbox_send_error (req, 401, "invalid_token",
                               "The access token expired or was revoked.");
        return 0;
    }
    if (who != SB_SANDBOX_BEARER_LIVE) {
        self->unauthorized++;
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                        H2O_STRLIT ("Bearer realm=\"sandbox\""));
        sb_sandbox_send_error (req, 401, "unauthorized", self->key_header [0]
                               ? "A valid API key is required (in the sandbox's key header)."
                               : "A valid API key is required (Authorization: Bearer <key>).");
        return 0;
    }
    if (s_apply_fault (self, req, path, account, grant))
        return 0;

    s_api (self, req, account, grant);
    return 0;
}

//  --------------------------------------------------------------------------
//  Listening and the loop

static void
s_on_accept (h2o_socket_t *listener, const char *err)
{
    if (err)
        return;
    sb_sandbox_t *self = listener->data;
    h2o_socket_t *sock = h2o_evloop_socket_accept (listener);
    if (sock)
        h2o_accept (&self->accept_ctx, sock);
}

static int
s_listen (sb_sandbox_t *self, const char *address)
{
    char host [64];
    const char *colon = strrchr (address, ':');
    long port = -1;
    if (!colon || (size_t) (colon - address) >= sizeof host) {
        sb_log_error ("bad_listen", "listen address must be host:port, not \"%s\"", address);
        return -1;
    }
    memcpy (host, address, (size_t) (colon - address));
    host [colon - address] = 0;
    char *end = NULL;
    port = strtol (colon + 1, &end, 10);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (!*(colon + 1) || *end || port < 0 || port > 65535
    ||  inet_pton (AF_INET, host, &addr.sin_addr) != 1) {
        sb_log_error ("bad_listen", "listen address must be IPv4:port, not \"%s\"", address);
        return -1;
    }
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    socklen_t len = sizeof addr;
    if (fd < 0
    ||  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)
    ||  bind (fd, (struct sockaddr *) &addr, sizeof addr)
    ||  listen (fd, SOMAXCONN)
    ||  getsockname (fd, (struct sockaddr *) &addr, &len)) {
        sb_log_error ("listen_failed", "cannot listen on %s: %s", address, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    self->port = ntohs (addr.sin_port);
    self->listener = h2o_evloop_socket_create (self->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    self->listener->data = self;
    h2o_socket_read_start (self->listener, s_on_accept);
    return 0;
}

sb_sandbox_t *
sb_sandbox_new (const char *listen, const char *api_key, const char *key_header, unsigned seed)
{
    if (strlen (api_key) == 0 || strlen (api_key) >= SB_SANDBOX_MAX_API_KEY) {
        sb_log_error ("bad_api_key", "the API key must be 1-255 bytes");
        return NULL;
    }
    size_t header_len = key_header ? strlen (key_header) : 0;
    bool header_ok = header_len < SB_SANDBOX_MAX_KEY_HEADER;
    for (size_t i = 0; i < header_len && header_ok; i++)
        header_ok = isalnum ((unsigned char) key_header [i]) || key_header [i] == '-';
    if (!header_ok) {
        sb_log_error ("bad_api_key_header", "the API key header must be at most %d letters, "
                      "digits or '-'", SB_SANDBOX_MAX_KEY_HEADER - 1);
        return NULL;
    }
    sb_sandbox_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->api_key, sizeof self->api_key, "%s", api_key);
    for (size_t i = 0; i < header_len; i++)
        self->key_header [i] = (char) tolower ((unsigned char) key_header [i]);
    self->crm = sb_crm_new (seed);

    h2o_config_init (&self->config);
    //  h2o answers bodies past this itself; bodies past SB_SANDBOX_MAX_BODY
    //  but under it get our JSON 413.
    self->config.max_request_entity_size = 4 * SB_SANDBOX_MAX_BODY;
    h2o_hostconf_t *host = h2o_config_register_host (&self->config,
                                                     h2o_iovec_init (H2O_STRLIT ("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path (host, "/", 0);
    s_handler_t *handler = (s_handler_t *) h2o_create_handler (pathconf, sizeof *handler);
    handler->super.on_req = s_on_req;
    handler->sandbox = self;

    self->loop = h2o_evloop_create ();
    h2o_context_init (&self->ctx, self->loop, &self->config);
    self->accept_ctx.ctx = &self->ctx;
    self->accept_ctx.hosts = self->config.hosts;
    if (s_listen (self, listen)) {
        sb_sandbox_destroy (&self);
        return NULL;
    }
    return self;
}

int
sb_sandbox_enable_oauth (sb_sandbox_t *self, const sb_sandbox_oauth_config_t *config)
{
    if (self->oauth) {
        sb_log_error ("oauth_on_already", "the OAuth provider is on already");
        return -1;
    }
    char instance_url [256];
    if (config->instance_url && *config->instance_url)
        snprintf (instance_url, sizeof instance_url, "%s", config->instance_url);
    else
        snprintf (instance_url, sizeof instance_url, "http://127.0.0.1:%d", self->port);
    self->oauth = sb_sandbox_oauth_new (self, config, instance_url);
    return self->oauth ? 0 : -1;
}

int
sb_sandbox_port (sb_sandbox_t *self)
{
    return self->port;
}

static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

//  True when no request waits on a delay and no connection is open.
static bool
s_idle (sb_sandbox_t *self)
{
    return self->delayed == 0
        && (!self->oauth || sb_sandbox_oauth_pending (self->oauth) == 0)
        && h2o_linklist_is_empty (&self->ctx.http1._conns)
        && h2o_linklist_is_empty (&self->ctx.http2._conns);
}

int
sb_sandbox_run (sb_sandbox_t *self, volatile sig_atomic_t *stop)
{
    sb_log_info ("ready", "listen=127.0.0.1:%d accounts=%zu contacts=%zu leads=%zu "
                 "opportunities=%zu tasks=%zu", self->port,
                 sb_crm_count (self->crm, SB_CRM_ACCOUNTS), sb_crm_count (self->crm, SB_CRM_CONTACTS),
                 sb_crm_count (self->crm, SB_CRM_LEADS),
                 sb_crm_count (self->crm, SB_CRM_OPPORTUNITIES),
                 sb_crm_count (self->crm, SB_CRM_TASKS));
    //  The bounded wait lets a signal that lands between the flag check
    //  and epoll_wait be seen within 200 ms.
    while (!*stop)
        h2o_evloop_run (self->loop, 200);

    //  Drain: stop accepting, let delayed requests finish, bounded.
    h2o_socket_read_stop (self->listener);
    h2o_socket_close (self->listener);
    self->listener = NULL;
    //  h2o closes idle keep-alive connections and ends busy ones after
    //  their current response.
    h2o_context_request_shutdown (&self->ctx);
    uint64_t deadline = s_now_ms () + SB_SANDBOX_DRAIN_MS;
    while (!s_idle (self) && s_now_ms () < deadline)
        h2o_evloop_run (self->loop, 50);
    //  One more turn flushes the last responses and closes.
    h2o_evloop_run (self->loop, 0);
    self->drained = s_idle (self);
    sb_log_info ("stopped", "requests=%llu delayed_left=%zu drained=%s",
                 (unsigned long long) self->requests, self->delayed,
                 self->drained ? "yes" : "no");
    return 0;
}

void
sb_sandbox_destroy (sb_sandbox_t **self_p)
{
    sb_sandbox_t *self = *self_p;
    if (!self)
        return;
    if (self->listener) {
        h2o_socket_read_stop (self->listener);
        h2o_socket_close (self->listener);
        self->listener = NULL;
        h2o_evloop_run (self->loop, 0);
        self->drained = s_idle (self);
    }
    //  h2o may only tear down a loop with no connection or timer entry
    //  left. After a drain that timed out (a client holding a half-sent
    //  request), the server is kept, reachable, for the process exit to
    //  clean up.
    if (!self->drained) {
        s_left_to_exit = self;
        *self_p = NULL;
        return;
    }
    {
        //  h2o_context_request_shutdown leaves a periodic check on the
        //  one-second timeout; nothing is left for it to do.
        while (!h2o_linklist_is_empty (&self->ctx.one_sec_timeout._entries))
            h2o_timeout_unlink (H2O_STRUCT_FROM_MEMBER (h2o_timeout_entry_t, _link,
                                self->ctx.one_sec_timeout._entries.next));
        for (size_t i = 0; i < SB_SANDBOX_MAX_TIMERS; i++)
            if (self->timers [i]) {
                h2o_timeout_dispose (self->loop, &self->timers [i]->timeout);
                free (self->timers [i]);
            }
        h2o_context_dispose (&self->ctx);
        //  h2o 2.2.5's evloop h2o_multithread_destroy_queue (called by
        //  context_dispose) closes the queue's sockets but never frees the
        //  queue itself (later h2o versions do); without this, every
        //  ASan run reports the leak.
        free (self->ctx.queue);
        self->ctx.queue = NULL;
        //  One turn frees the sockets context_dispose closed.
        h2o_evloop_run (self->loop, 0);
        h2o_evloop_destroy (self->loop);
        h2o_config_dispose (&self->config);
    }
    sb_sandbox_oauth_destroy (&self->oauth);
    sb_crm_destroy (&self->crm);
    free (self);
    *self_p = NULL;
}
