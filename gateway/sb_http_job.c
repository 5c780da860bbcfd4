/*  gateway/sb_http_job.c — the authorization server's routes (/authorize,
    /token, /revoke, /register), the connect flow's (/connect/{connector},
    /connect/callback) and the admin API (/admin/…), relayed as
    HTTP jobs to service `token` (proto/PROTOCOL.md, "HTTP jobs"), and the
    key set EdDSA tokens are verified with, asked of the same service.

    A relayed request passes, in this order: the route and its methods
    (405 with Allow), for /admin/ the operator credential (401, no job
    sent; an access token this gateway trusts is audited as admin_refused
    under its tenant), the body's size (413, on the declared
    Content-Length first), the body's text (400 when not UTF-8 or holding a NUL), and the header
    values that travel (400 when one breaks sb_http_payload's rules). Only
    the allow-listed request headers travel; /admin/'s Authorization stops
    here. h2o buffers a body (up to the largest route's limit, sb_gateway.c)
    before any handler runs, so the route's limit is checked on what it
    read: nothing is sent on, and a body over h2o's limit is refused by h2o
    itself.

    The request waits for the job with a small object in the h2o request's
    pool, as sb_task.c does: if the client leaves first, the job is
    forgotten and its answer dropped. The job's RESULT `ok` is the HTTP
    response, written back as it is (sb_http_response_decode refuses a
    header off the allow-list: 502). RESULT failed is 503 with Retry-After,
    no worker, a full queue or an unreachable broker 503 at once, the
    deadline (--oauth-timeout-ms) 504. The one body the gateway reads: a
    2xx answer to an admin request that revoked access tokens (a tenant
    deleted, a user removed or its password reset, a client or tokens
    revoked), whose scope it adds to the revocation list of every gateway
    (sb_cluster_tokens_revoked, sb_revoke.h).

    The key set: an `oauth/jwks` job at start, every --jwks-refresh-ms, and
    when a bearer token names a kid the set lacks (one job in flight, at
    most one a second; the /mcp request waits for the answer, at most
    SB_JWKS_WAIT_MS, then is verified again). A set that parses replaces
    the old one in the token cache, which borrows it: the old one is freed
    only once replaced. --token-jwks-file, when given, is never replaced. */
#include "sb_gateway_int.h"
#include "sb_cluster.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_http_payload.h"
#include "sb_jwks.h"
#include "sb_log.h"
#include "sb_payload.h"
#include "sb_ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define S_FORM_LIMIT        (16u * 1024)    /* body of a form route (/authorize, /token, /revoke) */
#define S_JSON_LIMIT        (64u * 1024)    /* body of a JSON route (/register, /admin/…) */
#define S_RETRY_AFTER_S     1               /* Retry-After when the token service gives none */
#define S_MAX_RETRY_AFTER_S 86400           /* a worker's retry_after we pass on, at most */
#define S_SERVICE           "token"         /* the service that owns these routes */
#define S_TENANT_OAUTH      "_oauth"        /* reserved tenants (PROTOCOL.md) */
#define S_TENANT_ADMIN      "_admin"
#define S_ADMIN_REALM       "Bearer realm=\"switchboard-admin\""
#define S_AUDIT_METHOD_MAX  8               /* bytes of the method an admin_refused record keeps */
#define S_AUDIT_PATH_MAX    128             /* bytes of the path it keeps */
#define S_ADMIN_MAX_SEGMENTS 5              /* segments of a revoking admin path after /admin/ */
#define S_MAX_CONNECTOR     64              /* bytes of a connector name in /connect/{connector} */

/*  One relayed route. */
typedef struct {
    const char *path;           /* exact path, or the prefix when `prefix` */
    bool prefix;                /* /admin/…: every path under it */
    const char *allow;          /* the Allow header of a 405 */
    const char *op;             /* the job's op */
    const char *tenant;         /* the reserved tenant the job carries */
    size_t limit;               /* largest body, bytes */
    bool admin;                 /* behind the operator credential */
    bool text_errors;           /* answered to a browser: plain-text failures */
    bool connector;             /* /connect/{connector}: `path` then one segment, a
                                   connector name (^[A-Za-z0-9-]{1,64}$) */
} s_route_t;

static const s_route_t s_routes [] = {
    { "/authorize", false, "GET, POST", "oauth/authorize", S_TENANT_OAUTH, S_FORM_LIMIT, false, true, false },
    { "/token", false, "POST", "oauth/token", S_TENANT_OAUTH, S_FORM_LIMIT, false, false, false },
    { "/revoke", false, "POST", "oauth/revoke", S_TENANT_OAUTH, S_FORM_LIMIT, false, false, false },
    { "/register", false, "POST", "oauth/register", S_TENANT_OAUTH, S_JSON_LIMIT, false, false, false },
    { "/admin", true, "GET, POST, PUT, PATCH, DELETE", "admin/http", S_TENANT_ADMIN, S_JSON_LIMIT,
      true, false, false },
    //  The connect flow (issue 21): the callback before the connector
    //  pages, so that "callback" is never taken for a connector's name.
    { "/connect/callback", false, "GET", "connect/callback", S_TENANT_OAUTH, 0, false, true, false },
    { "/connect", false, "GET, POST", "connect/start", S_TENANT_OAUTH, S_FORM_LIMIT, false, true,
      true },
};

//  The request headers that travel (lowercase); `authorization` not for /admin/.
static const char *s_travel [] = {
    "authorization", "content-type", "cookie", "origin", "accept", "user-agent"
};

typedef struct _s_relay_t s_relay_t;

/*  Lives in the request's pool; tells the waiting relay its request is gone. */
typedef struct {
    s_relay_t *relay;                   /* NULL once answered */
} s_relay_ref_t;

/*  One relayed request waiting for its job. */
struct _s_relay_t {
    sb_gateway_t *gateway;              /* owner */
    h2o_req_t *req;                     /* the pending request */
    s_relay_ref_t *ref;                 /* its pool object */
    sb_broker_call_t *handle;           /* the job */
    const s_route_t *route;             /* what it was sent as */
    bool quota_set;                     /* the REPLY carried a quota group (below) */
    sb_msg_quota_t quota;               /* the refusal (limited) or the rate policy at admission */
    uint32_t retry_after_ms;            /* the REPLY's retry advice */
};

//  ---------------------------------------------------------------------------
//  Checks

//  True when the `len` bytes at `name` are a connector name: letters, digits, '-'.
static bool
s_connector_name (const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||    c == '-'))
            return false;
    }
    return len > 0;
}

//  The route `req` asks for, or NULL.
static const s_route_t *
s_route_find (h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes [0]; i++) {
        const s_route_t *route = &s_routes [i];
        size_t n = strlen (route->path);
        if (!route->connector && path.len == n && memcmp (path.base, route->path, n) == 0)
            return route;
        if (route->prefix && path.len > n && memcmp (path.base, route->path, n) == 0
        &&  path.base [n] == '/')
            return route;
        if (route->connector && path.len > n + 1 && path.len <= n + 1 + S_MAX_CONNECTOR
        &&  memcmp (path.base, route->path, n) == 0 && path.base [n] == '/'
        &&  s_connector_name (path.base + n + 1, path.len - n - 1))
            return route;
    }
    return NULL;
}

//  True when `req`'s method is one of the comma-separated `allow` list.
static bool
s_method_allowed (h2o_req_t *req, const char *allow)
{
    const char *p = allow;
    while (*p) {
        size_t n = strcspn (p, ",");
        if (req->method.len == n && memcmp (req->method.base, p, n) == 0)
            return true;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return false;
}

//  The body's length as Content-Length declares it: 0 when absent, SIZE_MAX
//  when it is not a number or past any limit.
static size_t
s_declared_length (h2o_req_t *req)
{
    h2o_iovec_t value;
    if (!sb_http_header (req, H2O_TOKEN_CONTENT_LENGTH, &value))
        return 0;
    size_t length = 0;
    for (size_t i = 0; i < value.len; i++) {
        if (value.base [i] < '0' || value.base [i] > '9' || length > SB_MAX_HTTP_BODY_HARD)
            return SIZE_MAX;
        length = length * 10 + (size_t) (value.base [i] - '0');
    }
    return value.len? length: SIZE_MAX;
}

//  True when `len` bytes at `text` are UTF-8 (no overlong form, no
//  surrogate, nothing past U+10FFFF) without a NUL.
static bool
s_utf8_ok (const uint8_t *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = text [i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n = c >= 0xf0? 4: c >= 0xe0? 3: c >= 0xc0? 2: 0;
        if (n == 0 || c > 0xf4 || c == 0xc0 || c == 0xc1 || i + n > len)
            return false;
        uint32_t cp = c & (0x7f >> n);
        for (size_t k = 1; k < n; k++) {
            if ((text [i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (text [i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        ||  (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

//  Sends a failure the gateway itself decided: `status` with a sentence,
//  as plain text for a browser's route, else as JSON {"error", "error_description"}
//  (`code` an RFC 6749 code or the gateway's own).
static void
s_fail (h2o_req_t *req, const s_route_t *route, int status, const char *code, const char *sentence)
{
    req->res.status = status;
    req->res.reason = sb_http_reason (status);
    sb_http_add_header (req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    if (route && route->text_errors) {
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                        H2O_STRLIT ("text/plain; charset=utf-8"));
        size_t len = strlen (sentence);
        char *body = h2o_mem_alloc_pool (&req->pool, len + 1);
        memcpy (body, sentence, len);
        body [len] = '\n';
        req->res.content_length = len + 1;
        h2o_send_inline (req, body, len + 1);
        return;
    }
    json_t *obj = json_pack ("{s:s, s:s}", "error", code, "error_description", sentence);
    char *text = obj? json_dumps (obj, JSON_COMPACT): NULL;
    sb_http_send_json (req, status, text? text: "{\"error\":\"server_error\"}");
    free (text);
    json_decref (obj);
}

//  The 503s: `sentence`, and Retry-After `retry_after_s`.
static void
s_unavailable (h2o_req_t *req, const s_route_t *route, int retry_after_s, const char *sentence)
{
    char value [16];
    snprintf (value, sizeof value, "%d", retry_after_s);
    sb_http_add_header (req, H2O_TOKEN_RETRY_AFTER, value);
    s_fail (req, route, 503, "temporarily_unavailable", sentence);
}

//  True when `req` carries the operator key (Authorization: Bearer <key>),
//  compared in constant time over SHA-256 digests of equal length.
static bool
s_admin_ok (sb_gateway_t *self, h2o_req_t *req)
{
    h2o_iovec_t value;
    if (!sb_http_header (req, H2O_TOKEN_AUTHORIZATION, &value))
        return false;
    static const char scheme [] = "bearer ";
    size_t n = sizeof scheme - 1;
    if (value.len <= n || strncasecmp (value.base, scheme, n) != 0)
        return false;
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_sha256 (value.base + n, value.len - n, digest);
    bool ok = sb_crypto_equal (digest, self->admin_digest, sizeof digest);
    sb_crypto_wipe (digest, sizeof digest);
    return ok;
}

//  An /admin/ request refused whose bearer is an access token this
//  gateway trusts: a tenant's user (or client) tried the operator's API,
//  an attempt that tenant's audit log shows (admin_refused, with the
//  method and path, never the token). Only the key set held now is used:
//  a refusal never waits for the token service. Anything else (no token,
//  a wrong operator key) says nothing about a tenant: the process log only.
static void
s_admin_refused_audit (sb_gateway_t *self, h2o_req_t *req)
{
    h2o_iovec_t value;
    if (!sb_http_header (req, H2O_TOKEN_AUTHORIZATION, &value))
        return;
    static const char scheme [] = "bearer ";
    size_t n = sizeof scheme - 1;
    if (value.len <= n || value.len - n > SB_MAX_TOKEN_LEN || strncasecmp (value.base, scheme, n) != 0)
        return;
    char token [SB_MAX_TOKEN_LEN + 1];
    memcpy (token, value.base + n, value.len - n);
    token [value.len - n] = 0;
    sb_token_claims_t claims;
    sb_token_rc_t rc = sb_token_cache_verify (self->tokens, token, sb_clock_wall_ms () / 1000, &claims);
    sb_crypto_wipe (token, sizeof token);
    if (rc != SB_TOKEN_OK && rc != SB_TOKEN_AUDIENCE)
        return;
    int method_len = (int) (req->method.len < S_AUDIT_METHOD_MAX? req->method.len: S_AUDIT_METHOD_MAX);
    int path_len = (int) (req->path_normalized.len < S_AUDIT_PATH_MAX
                          ? req->path_normalized.len: S_AUDIT_PATH_MAX);
    sb_gateway_audit (self, &claims, SB_AUDIT_ADMIN_REFUSED,
                      json_pack ("{s:s, s:s#, s:s#}", "client_id", claims.client_id,
                                 "method", req->method.base, method_len,
                                 "path", req->path_normalized.base, path_len));
}

//  The path of an /admin/ request as the client sent it, without the query:
//  its segments stay percent-encoded (h2o's normalised path decodes %2F, which
//  would split a client ID that is a URL), for the token service to decode.
static h2o_iovec_t
s_admin_path (h2o_req_t *req)
{
    size_t len = req->query_at != SIZE_MAX && req->query_at < req->path.len? req->query_at: req->path.len;
    return h2o_iovec_init (req->path.base, len);
}

//  The client's address as text into `out`, "" when unknown.
static void
s_remote (h2o_req_t *req, char out [SB_HTTP_MAX_REMOTE + 1])
{
    out [0] = 0;
    struct sockaddr_storage addr;
    if (!req->conn->callbacks->get_peername)
        return;
    socklen_t len = req->conn->callbacks->get_peername (req->conn, (struct sockaddr *) &addr);
    if (len == 0)
        return;
    if (addr.ss_family == AF_INET)
        inet_ntop (AF_INET, &((struct sockaddr_in *) &addr)->sin_addr, out, SB_HTTP_MAX_REMOTE + 1);
    else
    if (addr.ss_family == AF_INET6)
        inet_ntop (AF_INET6, &((struct sockaddr_in6 *) &addr)->sin6_addr, out, SB_HTTP_MAX_REMOTE + 1);
}

//  Copies the allow-listed headers of `req` into `request`. Cookies (HTTP/2
//  sends one header per cookie) are joined with "; ". Returns 0, or -1
//  when a value breaks sb_http_payload's rules.
static int
s_copy_headers (h2o_req_t *req, const s_route_t *route, sb_http_request_t *request)
{
    for (size_t t = 0; t < sizeof s_travel / sizeof s_travel [0]; t++) {
        const char *name = s_travel [t];
        if (route->admin && strcmp (name, "authorization") == 0)
            continue;       //  the operator's credential stops here
        bool cookie = strcmp (name, "cookie") == 0;
        char *joined = NULL;
        size_t joined_len = 0;
        ssize_t index = -1;
        while ((index = h2o_find_header_by_str (&req->headers, name, strlen (name), index)) >= 0) {
            h2o_iovec_t value = req->headers.entries [index].value;
            if (value.len > SB_HTTP_MAX_HEADER_VALUE || joined_len + value.len + 2 > SB_HTTP_MAX_HEADER_VALUE) {
                free (joined);
                return -1;
            }
            char *grown = realloc (joined, joined_len + value.len + 3);
            if (!grown) {
                free (joined);
                return -1;
            }
            joined = grown;
            if (joined_len) {
                memcpy (joined + joined_len, "; ", 2);
                joined_len += 2;
            }
            memcpy (joined + joined_len, value.base, value.len);
            joined_len += value.len;
            joined [joined_len] = 0;
            if (!cookie)
                break;      //  one of the others: the first
        }
        int rc = joined && (memchr (joined, 0, joined_len)
                            || sb_http_request_add_header (request, name, joined))? -1: 0;
        free (joined);
        if (rc)
            return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  The job and its answer

static void
s_relay_free (s_relay_t *relay)
{
    free (relay);
}

//  The request went away before the job answered.
static void
s_on_req_disposed (void *p)
{
    s_relay_ref_t *ref = p;
    s_relay_t *relay = ref->relay;
    if (!relay)
        return;
    sb_broker_client_cancel (relay->gateway->broker, &relay->handle);
    s_relay_free (relay);
}

//  Writes the job's response to the client.
static void
s_send_response (h2o_req_t *req, const sb_http_response_t *response)
{
    req->res.status = response->status;
    req->res.reason = sb_http_reason (response->status);
    for (size_t i = 0; i < response->header_count; i++) {
        const sb_http_header_t *header = &response->headers [i];
        h2o_iovec_t name = h2o_strdup (&req->pool, header->name, SIZE_MAX);
        h2o_iovec_t value = h2o_strdup (&req->pool, header->value, SIZE_MAX);
        h2o_add_header_by_str (&req->pool, &req->res.headers, name.base, name.len, 1, NULL,
                               value.base, value.len);
    }
    req->res.content_length = response->body_len;
    h2o_send_inline (req, response->body, response->body_len);
}

//  The operator's request `req` succeeded with `response`: when it revoked
//  access tokens (docs/ADMIN.md: DELETE tenants/{id}, DELETE and PUT
//  …/users/{id}[/password], DELETE tenants/{id}/tokens[?user=], DELETE
//  clients/{id}), this gateway and every other refuse them from now on
//  (sb_cluster_tokens_revoked). The scope is read from the answer's body
//  (the token service decoded the path), the route from the method and the
//  path's shape.
static void
s_admin_revocation (sb_gateway_t *self, h2o_req_t *req, const sb_http_response_t *response)
{
    static const char prefix [] = "/admin/";
    h2o_iovec_t path = s_admin_path (req);      //  as the token service saw it
    size_t n = sizeof prefix - 1;
    if (response->status < 200 || response->status >= 300 || path.len <= n
    ||  memcmp (path.base, prefix, n) != 0)
        return;
    //  The path's segments after /admin/ (a seventh means no route of ours)
    h2o_iovec_t segs [S_ADMIN_MAX_SEGMENTS + 1];
    size_t count = 0;
    for (size_t at = n; at <= path.len && count <= S_ADMIN_MAX_SEGMENTS; count++) {
        const char *slash = memchr (path.base + at, '/', path.len - at);
        size_t end = slash? (size_t) (slash - path.base): path.len;
        segs [count] = h2o_iovec_init (path.base + at, end - at);
        at = end + 1;
    }
    bool del = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("DELETE"));
    bool put = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("PUT"));
    bool tenants = h2o_memis (segs [0].base, segs [0].len, H2O_STRLIT ("tenants"));
    bool by_tenant = del && tenants && (count == 2 || (count == 3
                     && h2o_memis (segs [2].base, segs [2].len, H2O_STRLIT ("tokens"))));
    bool by_user = tenants && count >= 4 && h2o_memis (segs [2].base, segs [2].len, H2O_STRLIT ("users"))
                && ((del && count == 4) || (put && count == 5
                    && h2o_memis (segs [4].base, segs [4].len, H2O_STRLIT ("password"))));
    bool by_client = del && count == 2 && h2o_memis (segs [0].base, segs [0].len, H2O_STRLIT ("clients"));
    if (!by_tenant && !by_user && !by_client)
        return;
    json_t *doc = json_loadb (response->body? (const char *) response->body: "", response->body_len,
                              0, NULL);
    const char *tenant = json_string_value (json_object_get (doc, "tenant"));
    const char *client_id = json_string_value (json_object_get (doc, "client_id"));
    json_t *user = json_object_get (doc, "user_id");
    char subject [32] = "";
    if (json_is_integer (user))
        snprintf (subject, sizeof subject, "user:%" JSON_INTEGER_FORMAT, json_integer_value (user));
    int64_t now = sb_clock_wall_ms () / 1000;
    if (by_client && client_id)
        sb_cluster_tokens_revoked (self, NULL, NULL, client_id, now);
    else
    if (!by_client && tenant && (!by_user || *subject))
        //  DELETE tenants/{id}/tokens?user= names its user in the answer too
        sb_cluster_tokens_revoked (self, tenant, subject, NULL, now);
    else
        sb_log_warn ("revocation_not_applied", "the admin answer to %.*s does not name what it "
                     "revoked: access tokens live until they expire", (int) (path.len < 128? path.len: 128),
                     path.base);
    json_decref (doc);
}

//  The Retry-After of a failure result ({"retry_after": s}), else the default.
static int
s_retry_after (const uint8_t *payload, size_t size)
{
    int seconds = S_RETRY_AFTER_S;
    sb_job_result_t result = { 0 };
    if (payload && sb_job_result_decode (payload, size, &result) == 0 && result.result) {
        json_t *doc = json_loads (result.result, 0, NULL);
        json_t *value = json_object_get (doc, "retry_after");
        if (json_is_integer (value) && json_integer_value (value) >= 1
        &&  json_integer_value (value) <= S_MAX_RETRY_AFTER_S)
            seconds = (int) json_integer_value (value);
        json_decref (doc);
    }
    sb_job_result_clear (&result);
    return seconds;
}

//  The REPLY's quota group: kept for the answer (sb_broker_quota_fn).
static void
s_on_quota (void *arg, const sb_msg_quota_t *quota, uint32_t retry_after_ms)
{
    s_relay_t *relay = arg;
    relay->quota_set = true;
    relay->quota = *quota;
    relay->retry_after_ms = retry_after_ms;
}

//  A quota refused the job (PROTOCOL.md "Quotas"): 429 with Retry-After
//  and {"error": <error_type>, "message": sentence} (plain text for a
//  browser's route).
static void
s_limited (s_relay_t *relay)
{
    h2o_req_t *req = relay->req;
    sb_msg_quota_t none = { 0 };
    sb_limited_t limited;
    sb_limited_describe (relay->quota_set? &relay->quota: &none, relay->retry_after_ms,
                         relay->route->admin? "admin API requests": "requests", NULL,
                         sb_clock_wall_ms () / 1000, &limited);
    char value [16];
    snprintf (value, sizeof value, "%d", limited.retry_after);
    sb_http_add_header (req, H2O_TOKEN_RETRY_AFTER, value);
    relay->gateway->limited++;
    sb_log_info ("http_job_limited", "op=%s reason=%s scope=%s retry_after=%d", relay->route->op,
                 relay->quota.reason, relay->quota.scope, limited.retry_after);
    if (relay->route->text_errors)
        s_fail (req, relay->route, 429, limited.error_type, limited.sentence);
    else
        sb_http_send_error (req, 429, limited.error_type, limited.sentence);
}

//  The token service answered (or the deadline passed).
static void
s_on_result (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_relay_t *relay = arg;
    relay->handle = NULL;
    relay->ref->relay = NULL;
    h2o_req_t *req = relay->req;
    const s_route_t *route = relay->route;
    //  The caller's limit as the REPLY describes it, whatever the outcome.
    char policy [SB_MAX_RATELIMIT_FIELD], state [SB_MAX_RATELIMIT_FIELD];
    if (relay->quota_set && sb_ratelimit_fields (&relay->quota, policy, state) == 0) {
        sb_http_add_header_str (req, "ratelimit-policy", policy);
        sb_http_add_header_str (req, "ratelimit", state);
    }
    if (status == SB_STATUS_LIMITED)
        s_limited (relay);
    else
    if (status == SB_STATUS_OK) {
        sb_job_result_t result = { 0 };
        sb_http_response_t response = { 0 };
        const char *why = "the result is not a result map";
        if (payload && sb_job_result_decode (payload, size, &result) == 0 && result.result
        &&  sb_http_response_decode (result.result, strlen (result.result), &response, &why) == 0) {
            if (route->admin)
                s_admin_revocation (relay->gateway, req, &response);
            s_send_response (req, &response);
        }
        else {
            sb_log_warn ("http_job_bad_result", "op=%s: %s", route->op, why);
            s_fail (req, route, 502, "server_error", "The token service gave an answer the gateway "
                    "cannot pass on.");
        }
        sb_http_response_clear (&response);
        sb_job_result_clear (&result);
    }
    else
    if (status == SB_STATUS_TIMEOUT) {
        sb_log_warn ("http_job_timeout", "op=%s", route->op);
        s_fail (req, route, 504, "temporarily_unavailable", "The token service did not answer in "
                "time; try again.");
    }
    else
    if (status == SB_STATUS_FAILED)
        s_unavailable (req, route, s_retry_after (payload, size), "The token service could not "
                       "handle this request now; try again shortly.");
    else
    if (status == SB_STATUS_UNAVAILABLE || status == SB_STATUS_OVERLOADED
    ||  status == SB_STATUS_WORKER_LOST)
        s_unavailable (req, route, s_retry_after (payload, size), "The token service is not "
                       "available right now; try again shortly.");
    else {
        sb_log_warn ("http_job_refused", "op=%s status=%s", route->op, sb_status_name (status));
        s_fail (req, route, 502, "server_error", "The token service refused the request.");
    }
    s_relay_free (relay);
}

//  Builds the request's job data (new string), or answers 400 and returns NULL.
static char *
s_encode (h2o_req_t *req, const s_route_t *route)
{
    sb_http_request_t request = { 0 };
    char method [SB_HTTP_MAX_METHOD + 1], remote [SB_HTTP_MAX_REMOTE + 1];
    snprintf (method, sizeof method, "%.*s", (int) req->method.len, req->method.base);
    s_remote (req, remote);
    h2o_iovec_t path = route->admin? s_admin_path (req): req->path_normalized;
    size_t query_len = req->query_at != SIZE_MAX && req->query_at < req->path.len
                     ? req->path.len - req->query_at - 1: 0;
    const char *query = query_len? req->path.base + req->query_at + 1: "";
    char *text = NULL;
    if (path.len > SB_HTTP_MAX_PATH || query_len > SB_HTTP_MAX_QUERY) {
        s_fail (req, route, 414, "invalid_request", "The path or query string is too long.");
        goto out;
    }
    request.method = method;
    request.path = h2o_strdup (&req->pool, path.base, path.len).base;
    request.query = h2o_strdup (&req->pool, query, query_len).base;
    request.body = h2o_strdup (&req->pool, req->entity.base? req->entity.base: "", req->entity.len).base;
    request.body_len = req->entity.base? req->entity.len: 0;
    request.remote = remote;
    if (s_copy_headers (req, route, &request)) {
        s_fail (req, route, 400, "invalid_request", "A request header is too long or holds "
                "characters that are not allowed.");
        goto out;
    }
    text = sb_http_request_encode (&request);
    if (!text)
        s_fail (req, route, 400, "invalid_request", "The request cannot be passed on: its path "
                "or query holds characters that are not allowed.");
out:
    //  The strings above are the pool's or the stack's; only headers are the request's.
    for (size_t i = 0; i < request.header_count; i++) {
        free (request.headers [i].name);
        free (request.headers [i].value);
    }
    return text;
}

bool
sb_http_job_route (sb_gateway_t *self, h2o_req_t *req)
{
    if (!self->as_metadata)
        return false;                   //  no issuer: the routes do not exist
    const s_route_t *route = s_route_find (req);
    if (!route || (route->admin && !self->admin_on))
        return false;
    if (!s_method_allowed (req, route->allow)) {
        sb_http_add_header (req, H2O_TOKEN_ALLOW, route->allow);
        s_fail (req, route, 405, "method_not_allowed", "This method is not supported on this path.");
        return true;
    }
    if (route->admin && !s_admin_ok (self, req)) {
        sb_log_info ("admin_refused", "path=%.*s", (int) (req->path_normalized.len < 128
                     ? req->path_normalized.len: 128), req->path_normalized.base);
        s_admin_refused_audit (self, req);
        sb_http_add_header (req, H2O_TOKEN_WWW_AUTHENTICATE, S_ADMIN_REALM);
        s_fail (req, route, 401, "unauthorized", "The admin API needs the operator key "
                "(Authorization: Bearer …).");
        return true;
    }
    if (s_declared_length (req) > route->limit || req->entity.len > route->limit) {
        char sentence [96];
        snprintf (sentence, sizeof sentence, "The request body is larger than %zu bytes.", route->limit);
        s_fail (req, route, 413, "invalid_request", sentence);
        return true;
    }
    if (req->entity.base && !s_utf8_ok ((const uint8_t *) req->entity.base, req->entity.len)) {
        s_fail (req, route, 400, "invalid_request", "The request body is not UTF-8 text (or holds "
                "a NUL byte).");
        return true;
    }
    char *data = s_encode (req, route);
    if (!data)
        return true;
    s_relay_t *relay = calloc (1, sizeof *relay);
    if (!relay) {
        free (data);
        s_fail (req, route, 500, "server_error", "Out of memory.");
        return true;
    }
    relay->gateway = self;
    relay->req = req;
    relay->route = route;
    sb_job_t job = { .op = sb_unconst (route->op), .data = data };
    zframe_t *payload = sb_job_encode (&job);
    free (data);
    //  Every HTTP job may run again except a sign-in's consent (it issues a code).
    bool get = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("GET"));
    uint32_t flags = strcmp (route->op, "oauth/authorize") == 0 && get? SB_FLAG_RETRY_SAFE: 0;
    //  An admin API request counts 1 against the _admin tenant's limits;
    //  the sign-in and connect flows are not metered (PROTOCOL.md "Quotas").
    sb_broker_meter_t meter = { .cost = route->admin? 1: 0 };
    int rc = payload? sb_broker_client_request_metered (self->broker, S_SERVICE, route->tenant, flags,
                                                        SB_BROKER_DEADLINE_HTTP, &meter, &payload,
                                                        s_on_result, relay, &relay->handle)
                    : SB_BROKER_INVALID;
    if (rc != SB_BROKER_SENT) {
        sb_log_warn ("http_job_not_sent", "op=%s rc=%d", route->op, rc);
        if (rc == SB_BROKER_INVALID)
            s_fail (req, route, 400, "invalid_request", "The request is too large to pass on.");
        else
            s_unavailable (req, route, S_RETRY_AFTER_S, "The gateway cannot reach the token "
                           "service right now; try again shortly.");
        s_relay_free (relay);
        return true;
    }
    sb_broker_client_on_quota (relay->handle, s_on_quota);
    relay->ref = h2o_mem_alloc_shared (&req->pool, sizeof (s_relay_ref_t), s_on_req_disposed);
    relay->ref->relay = relay;
    return true;
}

//  ---------------------------------------------------------------------------
//  The key set from the token service

/*  A /mcp request waiting for the key set. */
typedef struct _s_kid_wait_t s_kid_wait_t;

typedef struct {
    s_kid_wait_t *wait;                 /* NULL once resumed */
} s_kid_ref_t;

struct _s_kid_wait_t {
    h2o_timeout_entry_t timer;          /* SB_JWKS_WAIT_MS */
    h2o_linklist_t link;                /* in gateway->jwks_waiters */
    sb_gateway_t *gateway;
    h2o_req_t *req;
    s_kid_ref_t *ref;
    sb_endpoint_fn *resume;             /* runs the request again */
};

static int s_jwks_fetch (sb_gateway_t *self);

//  Detaches `wait` from its timer, the list and its request.
static void
s_kid_wait_detach (s_kid_wait_t *wait)
{
    if (h2o_timeout_is_linked (&wait->timer))
        h2o_timeout_unlink (&wait->timer);
    if (h2o_linklist_is_linked (&wait->link)) {
        h2o_linklist_unlink (&wait->link);
        wait->gateway->jwks_waiting--;
    }
    if (wait->ref)
        wait->ref->wait = NULL;
}

//  Runs a waiting request again (once: it does not wait a second time).
static void
s_kid_wait_resume (s_kid_wait_t *wait)
{
    sb_gateway_t *self = wait->gateway;
    s_kid_wait_detach (wait);
    self->jwks_resumed = wait->req;
    wait->resume (self, wait->req);
    self->jwks_resumed = NULL;
    free (wait);
}

static void
s_on_kid_wait_expired (h2o_timeout_entry_t *entry)
{
    s_kid_wait_t *wait = H2O_STRUCT_FROM_MEMBER (s_kid_wait_t, timer, entry);
    s_kid_wait_resume (wait);
}

static void
s_on_kid_req_disposed (void *p)
{
    s_kid_ref_t *ref = p;
    s_kid_wait_t *wait = ref->wait;
    if (!wait)
        return;
    wait->ref = NULL;
    s_kid_wait_detach (wait);
    free (wait);
}

//  Runs every waiting request again.
static void
s_kid_waiters_resume (sb_gateway_t *self)
{
    while (!h2o_linklist_is_empty (&self->jwks_waiters)) {
        s_kid_wait_t *wait = H2O_STRUCT_FROM_MEMBER (s_kid_wait_t, link, self->jwks_waiters.next);
        s_kid_wait_resume (wait);
    }
}

//  Makes `set` (taken) the key set tokens are verified with and
//  /.well-known/jwks.json serves. The cache borrows the set: the old one is
//  freed only after the cache holds the new one.
static void
s_jwks_install (sb_gateway_t *self, sb_jwks_t *set)
{
    char *json = sb_jwks_json (set);
    if (!json) {
        sb_jwks_destroy (&set);
        return;
    }
    if (self->jwks_json && strcmp (json, self->jwks_json) == 0) {
        free (json);                    //  the same keys: the cache keeps its tokens
        sb_jwks_destroy (&set);
        return;
    }
    sb_token_cache_set_jwks (self->tokens, set);
    sb_jwks_destroy (&self->jwks);
    free (self->jwks_json);
    self->jwks = set;
    self->jwks_json = json;
    sb_log_info ("jwks_installed", "keys=%zu", sb_jwks_count (set));
}

//  The token service answered oauth/jwks.
static void
s_on_jwks (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    sb_gateway_t *self = arg;
    self->jwks_call = NULL;
    sb_job_result_t result = { 0 };
    if (status == SB_STATUS_OK && payload && sb_job_result_decode (payload, size, &result) == 0
    &&  result.result) {
        char error [256] = "";
        sb_jwks_t *set = sb_jwks_parse (result.result, strlen (result.result), error, sizeof error);
        if (set) {
            s_jwks_install (self, set);
            self->jwks_failing = false;
        }
        else
            sb_log_warn ("jwks_refused", "the token service's key set does not parse (%s): the "
                         "old set stays", error);
    }
    else
    if (!self->jwks_failing) {
        //  Once until the next success: a farm without a token service
        //  would say it at every refresh.
        self->jwks_failing = true;
        sb_log_warn ("jwks_not_fetched", "status=%s: the key set stays as it was (said once "
                     "until it is fetched)", sb_status_name (status));
    }
    else
        sb_log_debug ("jwks_not_fetched", "status=%s", sb_status_name (status));
    sb_job_result_clear (&result);
    s_kid_waiters_resume (self);
}

//  Sends oauth/jwks now. Returns 0 (sent, or one already in flight) or -1.
static int
s_jwks_fetch (sb_gateway_t *self)
{
    if (self->jwks_call)
        return 0;
    if (self->stop)
        return -1;
    sb_job_t job = { .op = "oauth/jwks" };
    zframe_t *payload = sb_job_encode (&job);
    self->jwks_asked_at = sb_clock_mono_ms ();
    self->jwks_fetches++;
    int rc = payload? sb_broker_client_request_http (self->broker, S_SERVICE, S_TENANT_OAUTH,
                                                     SB_FLAG_RETRY_SAFE, &payload, s_on_jwks, self,
                                                     &self->jwks_call)
                    : SB_BROKER_INVALID;
    if (rc != SB_BROKER_SENT) {
        sb_log_warn ("jwks_not_sent", "rc=%d: the key set stays as it was", rc);
        return -1;
    }
    return 0;
}

//  The rate limit's delay ran out: fetch, if anyone still waits.
static void
s_on_jwks_soon (h2o_timeout_entry_t *entry)
{
    sb_gateway_t *self = H2O_STRUCT_FROM_MEMBER (sb_gateway_t, jwks_soon_entry, entry);
    if (h2o_linklist_is_empty (&self->jwks_waiters))
        return;
    if (s_jwks_fetch (self))
        s_kid_waiters_resume (self);    //  nothing will come: verify (and refuse) now
}

static void
s_on_jwks_refresh (h2o_timeout_entry_t *entry)
{
    sb_gateway_t *self = H2O_STRUCT_FROM_MEMBER (sb_gateway_t, jwks_refresh_entry, entry);
    (void) s_jwks_fetch (self);         //  logged; the next turn tries again
    h2o_timeout_link (self->loop, &self->jwks_refresh, &self->jwks_refresh_entry);
}

//  The kid of EdDSA `token`'s header into `kid`, or false.
static bool
s_token_kid (const char *token, char kid [SB_MAX_KID_LEN + 1])
{
    const char *dot = strchr (token, '.');
    uint8_t header [1024];
    size_t len = 0;
    if (!dot || sb_base64url_decode_strict (token, (size_t) (dot - token), header, sizeof header - 1,
                                            &len))
        return false;
    json_t *doc = json_loadb ((const char *) header, len, 0, NULL);
    json_t *alg = json_object_get (doc, "alg"), *value = json_object_get (doc, "kid");
    bool ok = json_is_string (alg) && strcmp (json_string_value (alg), "EdDSA") == 0
           && json_is_string (value) && sb_jwks_kid_valid (json_string_value (value));
    if (ok)
        snprintf (kid, SB_MAX_KID_LEN + 1, "%s", json_string_value (value));
    json_decref (doc);
    return ok;
}

bool
sb_gateway_jwks_await (sb_gateway_t *self, h2o_req_t *req, const char *token,
                       sb_endpoint_fn *resume)
{
    char kid [SB_MAX_KID_LEN + 1];
    if (!self->jwks_fetching || self->jwks_resumed == req || !s_token_kid (token, kid)
    ||  (self->jwks && sb_jwks_find (self->jwks, kid)))
        return false;
    if (self->jwks_waiting >= SB_JWKS_MAX_WAITERS) {
        sb_log_warn ("jwks_wait_full", "kid=%s: %d requests already wait for the key set; "
                     "refused at once", kid, SB_JWKS_MAX_WAITERS);
        return false;
    }
    //  At most one oauth/jwks a second: later, if the last was too recent.
    if (!self->jwks_call) {
        int64_t since = sb_clock_mono_ms () - self->jwks_asked_at;
        if (self->jwks_asked_at == 0 || since >= SB_JWKS_MIN_INTERVAL_MS) {
            if (s_jwks_fetch (self))
                return false;
        }
        else
        if (!h2o_timeout_is_linked (&self->jwks_soon_entry))
            h2o_timeout_link (self->loop, &self->jwks_soon, &self->jwks_soon_entry);
    }
    s_kid_wait_t *wait = calloc (1, sizeof *wait);
    if (!wait)
        return false;
    wait->gateway = self;
    wait->req = req;
    wait->resume = resume;
    wait->timer.cb = s_on_kid_wait_expired;
    wait->ref = h2o_mem_alloc_shared (&req->pool, sizeof (s_kid_ref_t), s_on_kid_req_disposed);
    wait->ref->wait = wait;
    h2o_linklist_insert (&self->jwks_waiters, &wait->link);
    self->jwks_waiting++;
    h2o_timeout_link (self->loop, &self->jwks_wait, &wait->timer);
    sb_log_info ("jwks_kid_unknown", "kid=%s: asking the token service for its key set", kid);
    return true;
}

int
sb_http_job_start (sb_gateway_t *self, sb_config_t *config)
{
    h2o_linklist_init_anchor (&self->jwks_waiters);
    h2o_timeout_init (self->loop, &self->jwks_soon, SB_JWKS_MIN_INTERVAL_MS);
    h2o_timeout_init (self->loop, &self->jwks_wait, SB_JWKS_WAIT_MS);
    uint32_t refresh_ms = (uint32_t) sb_config_int (config, "jwks-refresh-ms");
    h2o_timeout_init (self->loop, &self->jwks_refresh, refresh_ms);
    self->jwks_soon_entry.cb = s_on_jwks_soon;
    self->jwks_refresh_entry.cb = s_on_jwks_refresh;
    self->http_job_started = true;
    const char *key_file = sb_config_str (config, "admin-key-file");
    if (key_file && *key_file) {
        char *why = NULL;
        char *key = sb_secret_read_file (key_file, &why);
        if (!key) {
            sb_log_error ("admin_key_invalid", "--admin-key-file: %s", why? why: key_file);
            free (why);
            return -1;
        }
        if (strlen (key) < SB_MIN_ADMIN_KEY_LEN) {
            sb_log_error ("admin_key_invalid", "--admin-key-file: the operator key must be at least "
                          "%d bytes (e.g. 64 hex digits from openssl rand -hex 32)", SB_MIN_ADMIN_KEY_LEN);
            sb_secret_free (&key);
            return -1;
        }
        sb_sha256 (key, strlen (key), self->admin_digest);
        sb_secret_free (&key);
        self->admin_on = true;
    }
    //  The key set comes from the token service when there is an issuer
    //  and no static set was given.
    self->jwks_fetching = self->as_metadata && !self->jwks;
    //  OAuth-issued tokens carry the issuer (the public URL) as iss.
    char issuer [SB_MAX_PUBLIC_URL_LEN + 1];
    snprintf (issuer, sizeof issuer, "%.*s", (int) (strlen (self->audience) - 4), self->audience);
    if (sb_token_cache_set_issuer (self->tokens, issuer))
        return -1;
    if (self->jwks_fetching) {
        (void) s_jwks_fetch (self);     //  logged; a token's unknown kid or the refresh tries again
        if (refresh_ms > 0)
            h2o_timeout_link (self->loop, &self->jwks_refresh, &self->jwks_refresh_entry);
    }
    return 0;
}

void
sb_http_job_stop (sb_gateway_t *self)
{
    if (!self->http_job_started)
        return;
    self->jwks_fetching = false;
    sb_broker_client_cancel (self->broker, &self->jwks_call);
    if (h2o_timeout_is_linked (&self->jwks_soon_entry))
        h2o_timeout_unlink (&self->jwks_soon_entry);
    if (h2o_timeout_is_linked (&self->jwks_refresh_entry))
        h2o_timeout_unlink (&self->jwks_refresh_entry);
    s_kid_waiters_resume (self);        //  answered with what the set holds now
}

void
sb_http_job_destroy (sb_gateway_t *self)
{
    if (!self->http_job_started)
        return;
    self->jwks_fetching = false;
    sb_broker_client_cancel (self->broker, &self->jwks_call);
    if (h2o_timeout_is_linked (&self->jwks_soon_entry))
        h2o_timeout_unlink (&self->jwks_soon_entry);
    if (h2o_timeout_is_linked (&self->jwks_refresh_entry))
        h2o_timeout_unlink (&self->jwks_refresh_entry);
    //  Requests still waiting are not run again: the gateway is going.
    while (!h2o_linklist_is_empty (&self->jwks_waiters)) {
        s_kid_wait_t *wait = H2O_STRUCT_FROM_MEMBER (s_kid_wait_t, link, self->jwks_waiters.next);
        s_kid_wait_detach (wait);
        free (wait);
    }
    h2o_timeout_dispose (self->loop, &self->jwks_soon);
    h2o_timeout_dispose (self->loop, &self->jwks_wait);
    h2o_timeout_dispose (self->loop, &self->jwks_refresh);
    self->http_job_started = false;
}
