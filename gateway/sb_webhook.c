/*  gateway/sb_webhook.c — webhooks in: POST /webhooks/{endpoint} relayed
    to the webhook service as job webhook/receive (proto/PROTOCOL.md
    "Webhooks"), answered with the HTTP response of the job's RESULT.

    The gateway never reads the body: it goes, byte for byte, as the job's
    `body` (msgpack bin), so a provider's signature over the raw bytes
    verifies in the worker; every request header goes too, its name
    lowercased, in the order received, in the job's `data` with the
    endpoint ID, the method, the query and the client's address. No tenant
    is known here (the worker reads it from the endpoint): the job carries
    the reserved tenant `_webhook`, is not metered (cost 0) and is safe to
    run again (storing is idempotent).

    A request passes, in this order: the path (one endpoint ID,
    ^[A-Za-z0-9_-]{8,64}$, else 404), the method (POST, else 405 with
    Allow), the body's size (413 past --webhook-max-body: on the declared
    Content-Length first; h2o's own limit, the largest route's, refuses a
    larger declared body before reading it), the headers (431 past
    SB_MAX_WEBHOOK_HEADERS or SB_MAX_WEBHOOK_HEADER_BYTES; 400 for a value
    that is not UTF-8). None of these sends a job.

    The request waits for its job with a small object in the h2o request's
    pool, as sb_http_job.c does: if the provider leaves first, the job is
    forgotten and its answer dropped (the worker stores the event anyway;
    the provider's retry is acknowledged as a duplicate). RESULT ok is the
    response (sb_http_response_decode; one it refuses is 502), RESULT
    failed 503 with Retry-After, no worker or a full queue or an
    unreachable broker 503 at once, the deadline (--webhook-timeout-ms)
    504: never a 2xx the worker did not give.

    The event log of a connector, switchboard://events/{connector}, is read
    here too: resources/read of it sends op events/read (service `webhook`,
    the token's tenant, data {"connector", "limit"}) and answers with the
    service's {"events": […]} as one text content (application/json). */
#include "sb_gateway_int.h"
#include "sb_http_payload.h"
#include "sb_log.h"
#include "sb_payload.h"
#include "sb_rpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define S_PREFIX            "/webhooks"     /* the routes' path prefix */
#define S_ENDPOINT_MIN      8               /* bytes of an endpoint ID, at least */
#define S_ENDPOINT_MAX      64              /* and at most */
#define S_SERVICE           "webhook"       /* the service that owns the route */
#define S_TENANT            "_webhook"      /* the reserved tenant its jobs carry */
#define S_OP                "webhook/receive"
#define S_ALLOW             "POST"
#define S_RETRY_AFTER_S     1               /* Retry-After when the worker gives none */
#define S_MAX_RETRY_AFTER_S 86400           /* a worker's retry_after we pass on, at most */
#define S_EVENTS_OP         "events/read"
#define S_EVENTS_LIMIT      20              /* events one resources/read shows (PROTOCOL.md: 1..100) */

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

typedef struct _s_hook_t s_hook_t;

/*  Lives in the request's pool; tells the waiting webhook its request is gone. */
typedef struct {
    s_hook_t *hook;                     /* NULL once answered */
} s_hook_ref_t;

/*  One relayed webhook waiting for its job. */
struct _s_hook_t {
    sb_gateway_t *gateway;              /* owner */
    h2o_req_t *req;                     /* the pending request */
    s_hook_ref_t *ref;                  /* its pool object */
    sb_broker_call_t *handle;           /* the job */
    char endpoint [S_ENDPOINT_MAX + 1]; /* for the log */
};

//  ---------------------------------------------------------------------------
//  Answers without a job

//  `status` with {"error": code, "message": sentence}, never cached.
static void
s_fail (sb_gateway_t *self, h2o_req_t *req, int status, const char *code, const char *sentence)
{
    self->webhooks_refused++;
    sb_http_add_header (req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    sb_http_send_error (req, status, code, sentence);
}

//  503 with Retry-After `seconds`.
static void
s_unavailable (h2o_req_t *req, int seconds, const char *sentence)
{
    char value [16];
    snprintf (value, sizeof value, "%d", seconds);
    sb_http_add_header (req, H2O_TOKEN_RETRY_AFTER, value);
    sb_http_add_header (req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    sb_http_send_error (req, 503, "unavailable", sentence);
}

//  ---------------------------------------------------------------------------
//  Checks

//  The endpoint ID of a path "/webhooks/<id>" (the raw path, without the
//  query: an ID is never percent-encoded), or an empty iovec.
static h2o_iovec_t
s_endpoint_id (h2o_req_t *req)
{
    size_t len = req->query_at != SIZE_MAX && req->query_at < req->path.len? req->query_at: req->path.len;
    size_t n = sizeof S_PREFIX;                 //  "/webhooks/"
    if (len < n + S_ENDPOINT_MIN || len > n + S_ENDPOINT_MAX
    ||  memcmp (req->path.base, S_PREFIX "/", n) != 0)
        return h2o_iovec_init (NULL, 0);
    for (size_t i = n; i < len; i++) {
        char c = req->path.base [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||    c == '_' || c == '-'))
            return h2o_iovec_init (NULL, 0);
    }
    return h2o_iovec_init (req->path.base + n, len - n);
}

//  The body's length as Content-Length declares it: 0 when absent,
//  SIZE_MAX when it is not a number or past any limit.
static size_t
s_declared_length (h2o_req_t *req)
{
    h2o_iovec_t value;
    if (!sb_http_header (req, H2O_TOKEN_CONTENT_LENGTH, &value))
        return 0;
    size_t length = 0;
    for (size_t i = 0; i < value.len; i++) {
        if (value.base [i] < '0' || value.base [i] > '9' || length > SB_MAX_JOB_BODY)
            return SIZE_MAX;
        length = length * 10 + (size_t) (value.base [i] - '0');
    }
    return value.len? length: SIZE_MAX;
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

/*  Why s_headers refused. */
typedef enum {
    S_HEADERS_OK = 0,
    S_HEADERS_TOO_MANY,                 /* past SB_MAX_WEBHOOK_HEADERS */
    S_HEADERS_TOO_LARGE,                /* past SB_MAX_WEBHOOK_HEADER_BYTES */
    S_HEADERS_NOT_TEXT,                 /* a name or value is not UTF-8 (or holds a NUL) */
    S_HEADERS_NO_MEMORY,
} s_headers_rc_t;

//  Every request header as [[name, value]…] into *out (new array): names
//  lowercased, in the order received, values as received.
static s_headers_rc_t
s_headers (h2o_req_t *req, json_t **out)
{
    *out = NULL;
    if (req->headers.size > SB_MAX_WEBHOOK_HEADERS)
        return S_HEADERS_TOO_MANY;
    size_t bytes = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        bytes += req->headers.entries [i].name->len + req->headers.entries [i].value.len;
    if (bytes > SB_MAX_WEBHOOK_HEADER_BYTES)
        return S_HEADERS_TOO_LARGE;
    json_t *list = json_array ();
    if (!list)
        return S_HEADERS_NO_MEMORY;
    char name [SB_MAX_WEBHOOK_HEADER_BYTES];
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *header = &req->headers.entries [i];
        for (size_t c = 0; c < header->name->len; c++) {
            char ch = header->name->base [c];
            name [c] = ch >= 'A' && ch <= 'Z'? (char) (ch - 'A' + 'a'): ch;
        }
        bool text = !memchr (name, 0, header->name->len)
                 && !memchr (header->value.base, 0, header->value.len);
        json_t *pair = text? json_pack ("[s#, s#]", name, (int) header->name->len,
                                        header->value.base, (int) header->value.len): NULL;
        //  json_pack refuses text that is not UTF-8; nothing else fails short of memory.
        if (!pair) {
            json_decref (list);
            return S_HEADERS_NOT_TEXT;
        }
        if (json_array_append_new (list, pair)) {
            json_decref (list);
            return S_HEADERS_NO_MEMORY;
        }
    }
    *out = list;
    return S_HEADERS_OK;
}

//  ---------------------------------------------------------------------------
//  The job and its answer

static void
s_hook_free (s_hook_t *hook)
{
    free (hook);
}

//  The provider went away before the job answered.
static void
s_on_req_disposed (void *p)
{
    s_hook_ref_t *ref = p;
    s_hook_t *hook = ref->hook;
    if (!hook)
        return;
    sb_broker_client_cancel (hook->gateway->broker, &hook->handle);
    s_hook_free (hook);
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

//  Writes the worker's response to the provider.
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

//  The webhook service answered (or the deadline passed).
static void
s_on_result (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_hook_t *hook = arg;
    hook->handle = NULL;
    hook->ref->hook = NULL;
    h2o_req_t *req = hook->req;
    if (status == SB_STATUS_OK) {
        sb_job_result_t result = { 0 };
        sb_http_response_t response = { 0 };
        const char *why = "the result is not a result map";
        if (payload && sb_job_result_decode (payload, size, &result) == 0 && result.result
        &&  sb_http_response_decode (result.result, strlen (result.result), &response, &why) == 0) {
            sb_log_debug ("webhook_answered", "endpoint=%s status=%d", hook->endpoint, response.status);
            s_send_response (req, &response);
        }
        else {
            sb_log_warn ("webhook_bad_result", "endpoint=%s: %s", hook->endpoint, why);
            sb_http_add_header (req, H2O_TOKEN_CACHE_CONTROL, "no-store");
            sb_http_send_error (req, 502, "bad_gateway", "The webhook service gave an answer the "
                                "gateway cannot pass on.");
        }
        sb_http_response_clear (&response);
        sb_job_result_clear (&result);
    }
    else
    if (status == SB_STATUS_TIMEOUT) {
        sb_log_warn ("webhook_timeout", "endpoint=%s", hook->endpoint);
        sb_http_add_header (req, H2O_TOKEN_CACHE_CONTROL, "no-store");
        sb_http_send_error (req, 504, "timeout", "The webhook service did not answer in time; "
                            "send it again.");
    }
    else
    if (status == SB_STATUS_FAILED)
        s_unavailable (req, s_retry_after (payload, size), "The webhook service could not take "
                       "this webhook now; send it again shortly.");
    else
    if (status == SB_STATUS_UNAVAILABLE || status == SB_STATUS_OVERLOADED
    ||  status == SB_STATUS_WORKER_LOST)
        s_unavailable (req, s_retry_after (payload, size), "The webhook service is not available "
                       "right now; send it again shortly.");
    else {
        sb_log_warn ("webhook_refused", "endpoint=%s status=%s", hook->endpoint,
                     sb_status_name (status));
        s_unavailable (req, S_RETRY_AFTER_S, "The webhook service refused the webhook; send it "
                       "again shortly.");
    }
    s_hook_free (hook);
}

//  The job's data (new string), or NULL after answering `req`.
static char *
s_encode (sb_gateway_t *self, h2o_req_t *req, h2o_iovec_t endpoint)
{
    json_t *headers = NULL;
    s_headers_rc_t rc = s_headers (req, &headers);
    if (rc == S_HEADERS_TOO_MANY || rc == S_HEADERS_TOO_LARGE) {
        char sentence [128];
        snprintf (sentence, sizeof sentence, "A webhook carries at most %u headers of %u bytes in all.",
                  SB_MAX_WEBHOOK_HEADERS, SB_MAX_WEBHOOK_HEADER_BYTES);
        s_fail (self, req, 431, "headers_too_large", sentence);
        return NULL;
    }
    if (rc == S_HEADERS_NO_MEMORY) {
        s_fail (self, req, 500, "internal", "Out of memory.");
        return NULL;
    }
    if (rc != S_HEADERS_OK) {
        s_fail (self, req, 400, "bad_request", "A request header holds bytes that are not UTF-8 text.");
        return NULL;
    }
    size_t query_len = req->query_at != SIZE_MAX && req->query_at < req->path.len
                     ? req->path.len - req->query_at - 1: 0;
    const char *query = query_len? req->path.base + req->query_at + 1: "";
    if (query_len > SB_HTTP_MAX_QUERY) {
        json_decref (headers);
        s_fail (self, req, 414, "uri_too_long", "The query string is too long.");
        return NULL;
    }
    char remote [SB_HTTP_MAX_REMOTE + 1];
    s_remote (req, remote);
    json_t *data = json_pack ("{s:s#, s:s#, s:s#, s:o, s:s}", "endpoint", endpoint.base,
                              (int) endpoint.len, "method", req->method.base, (int) req->method.len,
                              "query", query, (int) query_len, "headers", headers, "remote", remote);
    char *text = data? json_dumps (data, JSON_COMPACT): NULL;
    json_decref (data);
    if (!text)
        s_fail (self, req, 400, "bad_request", "The query string holds bytes that are not UTF-8 text.");
    return text;
}

bool
sb_webhook_route (sb_gateway_t *self, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    size_t n = sizeof S_PREFIX - 1;
    if (path.len < n || memcmp (path.base, S_PREFIX, n) != 0 || (path.len > n && path.base [n] != '/'))
        return false;
    h2o_iovec_t endpoint = s_endpoint_id (req);
    if (!endpoint.base) {
        s_fail (self, req, 404, "not_found", "There is no webhook endpoint at this path.");
        return true;
    }
    if (!h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("POST"))) {
        sb_http_add_header (req, H2O_TOKEN_ALLOW, S_ALLOW);
        s_fail (self, req, 405, "method_not_allowed", "A webhook endpoint takes POST only.");
        return true;
    }
    size_t limit = self->webhook_max_body;
    if (s_declared_length (req) > limit || req->entity.len > limit) {
        char sentence [96];
        snprintf (sentence, sizeof sentence, "The webhook body is larger than %zu bytes.", limit);
        s_fail (self, req, 413, "payload_too_large", sentence);
        return true;
    }
    char *data = s_encode (self, req, endpoint);
    if (!data)
        return true;
    s_hook_t *hook = calloc (1, sizeof *hook);
    if (!hook) {
        free (data);
        s_fail (self, req, 500, "internal", "Out of memory.");
        return true;
    }
    hook->gateway = self;
    hook->req = req;
    memcpy (hook->endpoint, endpoint.base, endpoint.len);
    //  The raw body, as it came (an empty one still travels, as an empty bin).
    sb_job_t job = { .op = sb_unconst (S_OP), .data = data,
                     .body = (uint8_t *) (req->entity.base? req->entity.base: sb_unconst ("")),
                     .body_len = req->entity.base? req->entity.len: 0 };
    zframe_t *payload = sb_job_encode (&job);
    free (data);
    sb_broker_meter_t meter = { .cost = 0 };        //  not metered: no tenant is known here
    int rc = payload? sb_broker_client_request_metered (self->broker, S_SERVICE, S_TENANT,
                                                        SB_FLAG_RETRY_SAFE, SB_BROKER_DEADLINE_WEBHOOK,
                                                        &meter, &payload, s_on_result, hook,
                                                        &hook->handle)
                    : SB_BROKER_INVALID;
    if (rc != SB_BROKER_SENT) {
        sb_log_warn ("webhook_not_sent", "endpoint=%s rc=%d", hook->endpoint, rc);
        if (rc == SB_BROKER_INVALID)
            s_fail (self, req, 413, "payload_too_large", "The webhook is too large to pass on.");
        else
            s_unavailable (req, S_RETRY_AFTER_S, "The gateway cannot reach the webhook service "
                           "right now; send it again shortly.");
        s_hook_free (hook);
        return true;
    }
    self->webhooks_relayed++;
    hook->ref = h2o_mem_alloc_shared (&req->pool, sizeof (s_hook_ref_t), s_on_req_disposed);
    hook->ref->hook = hook;
    return true;
}

//  ---------------------------------------------------------------------------
//  The event log: resources/read of switchboard://events/{connector}

typedef struct _s_read_t s_read_t;

/*  Lives in the request's pool; tells the waiting read its request is gone. */
typedef struct {
    s_read_t *read;                     /* NULL once answered */
} s_read_ref_t;

/*  One resources/read waiting for the event log. */
struct _s_read_t {
    sb_gateway_t *gateway;              /* owner */
    h2o_req_t *req;                     /* the pending request */
    s_read_ref_t *ref;                  /* its pool object */
    sb_broker_call_t *handle;           /* the events/read job */
    json_t *id;                         /* JSON-RPC id to answer with (owned) */
    char *uri;                          /* the resource (owned) */
    bool stateless;                     /* a 2026-07-28 request */
    char tenant [SB_MAX_TENANT_LEN + 1];
};

static void
s_read_free (s_read_t *read)
{
    json_decref (read->id);
    free (read->uri);
    free (read);
}

//  The client went away before the event log answered.
static void
s_on_read_disposed (void *p)
{
    s_read_ref_t *ref = p;
    s_read_t *read = ref->read;
    if (!read)
        return;
    sb_broker_client_cancel (read->gateway->broker, &read->handle);
    s_read_free (read);
}

//  Sends the JSON-RPC `body` (taken), with 2026-07-28's resultType and
//  serverInfo when the request spoke it.
static void
s_read_answer (s_read_t *read, char *body)
{
    if (body && read->stateless)
        body = sb_mcp_stateless_reply (body, SB_VERSION, false);
    if (body)
        sb_http_send_json (read->req, 200, body);
    else
        sb_http_send_error (read->req, 500, "internal", "The reply could not be built.");
    free (body);
}

//  The webhook service answered events/read (or the deadline passed).
static void
s_on_events (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_read_t *read = arg;
    read->handle = NULL;
    read->ref->read = NULL;
    sb_job_result_t result = { 0 };
    json_t *doc = NULL;
    if (status == SB_STATUS_OK && payload && sb_job_result_decode (payload, size, &result) == 0
    &&  result.result)
        doc = json_loads (result.result, 0, NULL);
    char *body;
    if (json_is_array (json_object_get (doc, "events")))
        body = sb_rpc_result (read->id, json_pack ("{s:[{s:s, s:s, s:s}]}", "contents", "uri", read->uri,
                                                   "mimeType", "application/json",
                                                   "text", result.result));
    else {
        sb_log_warn ("events_read_failed", "tenant=%s status=%s%s", read->tenant,
                     sb_status_name (status), status == SB_STATUS_OK? " (not an event list)": "");
        body = sb_rpc_error (read->id, SB_RPC_INTERNAL_ERROR, status == SB_STATUS_TIMEOUT
                             ? "The event log did not answer in time; try again."
                             : "The event log is not available right now; try again shortly.");
    }
    json_decref (doc);
    sb_job_result_clear (&result);
    s_read_answer (read, body);
    s_read_free (read);
}

void
sb_webhook_events_read (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                        sb_mcp_outcome_t *outcome)
{
    s_read_t *read = calloc (1, sizeof *read);
    if (!read) {
        sb_http_send_error (req, 500, "internal", "Out of memory.");
        return;
    }
    read->gateway = self;
    read->req = req;
    read->id = outcome->as.events.id;
    outcome->as.events.id = NULL;
    read->uri = outcome->as.events.uri;
    outcome->as.events.uri = NULL;
    read->stateless = SB_MCP_STATELESS (outcome->revision);
    snprintf (read->tenant, sizeof read->tenant, "%s", ctx->claims.tenant);
    json_t *data = json_pack ("{s:s, s:i}", "connector", outcome->as.events.connector,
                              "limit", S_EVENTS_LIMIT);
    char *text = data? json_dumps (data, JSON_COMPACT): NULL;
    json_decref (data);
    sb_job_t job = { .op = sb_unconst (S_EVENTS_OP), .data = text };
    zframe_t *payload = text? sb_job_encode (&job): NULL;
    free (text);
    //  Reading is safe to run again; it counts against nothing.
    sb_broker_meter_t meter = { .cost = 0 };
    int rc = payload? sb_broker_client_request_metered (self->broker, S_SERVICE, read->tenant,
                                                        SB_FLAG_RETRY_SAFE, SB_BROKER_DEADLINE_WEBHOOK,
                                                        &meter, &payload, s_on_events, read,
                                                        &read->handle)
                    : SB_BROKER_INVALID;
    if (rc != SB_BROKER_SENT) {
        sb_log_warn ("events_read_not_sent", "tenant=%s rc=%d", read->tenant, rc);
        s_read_answer (read, sb_rpc_error (read->id, SB_RPC_INTERNAL_ERROR, "The gateway cannot "
                                           "reach the event log right now; try again shortly."));
        s_read_free (read);
        return;
    }
    read->ref = h2o_mem_alloc_shared (&req->pool, sizeof (s_read_ref_t), s_on_read_disposed);
    read->ref->read = read;
}
