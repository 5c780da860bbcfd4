/*  gateway/sb_gateway.c — the gateway component: h2o setup, routing,
    authentication of POST /mcp, and the hand-off of tools/call to the broker.

    A tools/call keeps its h2o request pending until the broker's REPLY (or
    the local deadline) arrives. The request may vanish first (client gone,
    HTTP/2 stream reset): a small object in the request's pool, allocated
    with a dispose callback, tells us so, and the call is cancelled there.
    Exactly one of "reply arrives" and "request disposed" frees the call
    context; each first unhooks itself from the other. */
#include "gateway/sb_gateway.h"
#include "gateway/sb_broker_client.h"
#include "gateway/sb_http.h"
#include "gateway/sb_keyfile.h"
#include "gateway/sb_mcp.h"
#include "common/sb_clock.h"
#include "common/sb_connector.h"
#include "common/sb_log.h"
#include "common/sb_token.h"
#include "proto/sb_job.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif
#ifndef SB_DEFAULT_CONNECTORS_DIR
#define SB_DEFAULT_CONNECTORS_DIR "connectors"
#endif

#define SB_GATEWAY_FLUSH_MS     300     /* after the last pending call: let responses go out */

const sb_option_t sb_gateway_options [] = {
    { "listen", SB_OPT_STR, "127.0.0.1:8080", 0, 0, "SB_GATEWAY_LISTEN",
      "address:port to serve HTTP on" },
    { "broker", SB_OPT_STR, "tcp://127.0.0.1:5555", 0, 0, "SB_GATEWAY_BROKER",
      "broker frontend endpoint" },
    { "token-key-file", SB_OPT_STR, NULL, 0, 0, "SB_TOKEN_KEY_FILE",
      "file holding the HS256 token key as 64+ hex digits" },
    { "connectors", SB_OPT_STR, SB_DEFAULT_CONNECTORS_DIR, 0, 0, "SB_CONNECTORS_DIR",
      "directory of connector definitions (*.json)" },
    { "public-url", SB_OPT_STR, "http://127.0.0.1:8080", 0, 0, "SB_PUBLIC_URL",
      "URL clients reach this gateway at; token audience is <public-url>/mcp" },
    { "call-timeout-ms", SB_OPT_INT, "30000", 100, SB_MAX_TIMEOUT_MS, "SB_CALL_TIMEOUT_MS",
      "deadline of one tool call, milliseconds" },
    { "log-level", SB_OPT_STR, "info", 0, 0, "SB_LOG_LEVEL",
      "debug, info, warn or error" },
    { NULL }
};

/*  h2o's state for one loop. h2o 2.2.5 cannot close the connections still
    open when the gateway stops (keep-alive clients), and disposing the
    context under them asserts; so this is never disposed: destroy parks it,
    still reachable, until the process exits (leak checkers stay quiet). */
typedef struct _s_server_t {
    h2o_globalconf_t config;                    /* h2o configuration (one host, one path) */
    h2o_context_t ctx;                          /* h2o per-loop context */
    h2o_accept_ctx_t accept_ctx;                /* how accepted sockets are served */
    struct _s_server_t *next_parked;            /* list of retired servers */
} s_server_t;

struct _sb_gateway_t {
    s_server_t *server;                         /* h2o config and context */
    h2o_evloop_t *loop;                         /* the one event loop */
    h2o_socket_t *listener;                     /* listening socket, NULL once stopped */
    int port;                                   /* port actually bound */
    sb_broker_client_t *broker;                 /* DEALER + in-flight table */
    sb_connectors_t *connectors;                /* tools and schemas */
    uint8_t key [SB_MAX_TOKEN_KEY_LEN];         /* HS256 token key */
    size_t key_len;                             /* bytes of key */
    char audience [SB_MAX_PUBLIC_URL_LEN + 8];  /* <public-url>/mcp */
    char www_authenticate [SB_MAX_PUBLIC_URL_LEN + 96];  /* 401 challenge, no error */
    char www_invalid [SB_MAX_PUBLIC_URL_LEN + 128];      /* 401 challenge, invalid_token */
    char *metadata;                             /* RFC 9728 document (JSON text) */
    volatile sig_atomic_t stop;                 /* set by sb_gateway_stop */
    size_t calls;                               /* call contexts alive */
};

/*  Our handler: h2o's handler plus a way back to the gateway. */
typedef struct {
    h2o_handler_t super;                /* must be first */
    sb_gateway_t *gateway;              /* owner */
} s_handler_t;

typedef struct _s_call_t s_call_t;

/*  Lives in the request's pool; its dispose callback runs when h2o frees
    the request, whether or not we answered it. */
typedef struct {
    s_call_t *call;                     /* the waiting call, NULL once answered */
} s_req_ref_t;

/*  One tools/call waiting for the broker. */
struct _s_call_t {
    sb_gateway_t *gateway;              /* owner */
    h2o_req_t *req;                     /* the pending HTTP request */
    s_req_ref_t *ref;                   /* its pool object */
    json_t *id;                         /* JSON-RPC id to answer with */
    sb_broker_call_t *handle;           /* in the broker client's table */
};

//  Retired h2o servers (see s_server_t).
static s_server_t *s_parked;

static void
s_call_free (s_call_t *call)
{
    call->gateway->calls--;
    json_decref (call->id);
    free (call);
}

//  The request went away before the broker answered.
static void
s_on_req_disposed (void *p)
{
    s_req_ref_t *ref = p;
    s_call_t *call = ref->call;
    if (!call)
        return;                         //  answered already
    sb_log_info ("client_gone", "the HTTP request ended before the tool call's reply");
    sb_broker_client_cancel (call->gateway->broker, &call->handle);
    s_call_free (call);
}

//  The broker answered (or the local deadline passed).
static void
s_on_reply (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_call_t *call = arg;
    call->handle = NULL;                //  the client frees it after we return
    call->ref->call = NULL;             //  unhook before h2o may dispose the request
    char *body = sb_mcp_call_reply (call->id, status, payload, size);
    if (status != SB_STATUS_OK)
        sb_log_info ("call_failed", "status=%s", sb_status_name (status));
    if (body)
        sb_http_send_json (call->req, 200, body);
    else
        sb_http_send_error (call->req, 500, "internal", "The reply could not be built.");
    free (body);
    s_call_free (call);
}

//  Sends a 401 with the RFC 9728 challenge.
static void
s_unauthorized (sb_gateway_t *self, h2o_req_t *req, bool token_given, const char *message)
{
    sb_http_add_header (req, H2O_TOKEN_WWW_AUTHENTICATE,
                        token_given? self->www_invalid: self->www_authenticate);
    sb_http_send_error (req, 401, token_given? "invalid_token": "unauthorized", message);
}

//  Checks the Bearer token; on success fills `claims`, else answers 401
//  and returns -1.
static int
s_authenticate (sb_gateway_t *self, h2o_req_t *req, sb_token_claims_t *claims)
{
    h2o_iovec_t value;
    if (!sb_http_header (req, H2O_TOKEN_AUTHORIZATION, &value)) {
        s_unauthorized (self, req, false, "This endpoint needs an OAuth access token (Authorization: Bearer …).");
        return -1;
    }
    static const char scheme [] = "bearer ";
    size_t n = sizeof scheme - 1;
    if (value.len <= n || strncasecmp (value.base, scheme, n) != 0) {
        s_unauthorized (self, req, true, "The Authorization header must use the Bearer scheme.");
        return -1;
    }
    const char *start = value.base + n;
    size_t len = value.len - n;
    while (len > 0 && *start == ' ') {
        start++;
        len--;
    }
    if (len == 0 || len > SB_MAX_TOKEN_LEN) {
        s_unauthorized (self, req, true, "The access token is empty or too long.");
        return -1;
    }
    char token [SB_MAX_TOKEN_LEN + 1];
    memcpy (token, start, len);
    token [len] = 0;
    sb_token_rc_t rc = sb_token_verify (token, self->key, self->key_len, self->audience,
                                        sb_clock_wall_ms () / 1000, claims);
    if (rc != SB_TOKEN_OK) {
        char message [128];
        snprintf (message, sizeof message, "The access token was refused: %s.", sb_token_strerror (rc));
        sb_log_info ("token_refused", "reason=%s", sb_token_strerror (rc));
        s_unauthorized (self, req, true, message);
        return -1;
    }
    return 0;
}

//  Sends the job for a validated tools/call; keeps `req` pending.
static void
s_start_call (sb_gateway_t *self, h2o_req_t *req, const sb_token_claims_t *claims,
              sb_mcp_outcome_t *outcome)
{
    const sb_tool_t *tool = outcome->tool;
    sb_job_t job = {
        .op = (char *) "tools/call",
        .connector = (char *) sb_connector_name (sb_tool_connector (tool)),
        .tool = (char *) sb_tool_name (tool),
        .args = outcome->args,
    };
    zframe_t *payload = sb_job_encode (&job);
    if (!payload) {
        char *body = sb_rpc_error (outcome->id, SB_RPC_INVALID_PARAMS, "The arguments are too large.");
        sb_http_send_json (req, 200, body);
        free (body);
        return;
    }
    s_call_t *call = calloc (1, sizeof *call);
    if (!call) {
        zframe_destroy (&payload);
        sb_http_send_error (req, 500, "internal", "Out of memory.");
        return;
    }
    call->gateway = self;
    call->req = req;
    call->id = outcome->id;
    outcome->id = NULL;
    self->calls++;
    uint32_t flags = sb_tool_retry_safe (tool)? SB_FLAG_RETRY_SAFE: 0;
    int rc = sb_broker_client_request (self->broker, "api", claims->tenant, flags, &payload,
                                       s_on_reply, call, &call->handle);
    if (rc == SB_BROKER_SENT) {
        call->ref = h2o_mem_alloc_shared (&req->pool, sizeof (s_req_ref_t), s_on_req_disposed);
        call->ref->call = call;
        sb_log_debug ("call_sent", "tenant=%s tool=%s", claims->tenant, sb_tool_name (tool));
        return;
    }
    if (rc == SB_BROKER_FULL) {
        char *body = sb_rpc_error (call->id, SB_RPC_INTERNAL_ERROR,
                                   "The gateway is handling too many tool calls; try again shortly.");
        sb_http_add_header (req, H2O_TOKEN_RETRY_AFTER, "1");
        sb_http_send_json (req, 503, body);
        free (body);
    }
    else {
        //  Busy or invalid: the broker cannot take it now.
        sb_log_warn ("call_not_sent", "rc=%d", rc);
        char *body = sb_mcp_call_reply (call->id, SB_STATUS_OVERLOADED, NULL, 0);
        sb_http_send_json (req, 200, body);
        free (body);
    }
    s_call_free (call);
}

static void
s_mcp_post (sb_gateway_t *self, h2o_req_t *req)
{
    sb_token_claims_t claims;
    if (s_authenticate (self, req, &claims))
        return;
    if (!sb_http_is_json (req)) {
        sb_http_send_error (req, 415, "unsupported_media_type",
                            "POST /mcp takes Content-Type: application/json.");
        return;
    }
    if (req->entity.len > SB_MAX_HTTP_BODY) {
        char message [96];
        snprintf (message, sizeof message, "The request body is larger than %u bytes.",
                  (unsigned) SB_MAX_HTTP_BODY);
        sb_http_send_error (req, 413, "payload_too_large", message);
        return;
    }
    sb_mcp_outcome_t outcome;
    sb_mcp_handle (self->connectors, SB_VERSION, req->entity.base? req->entity.base: "",
                   req->entity.len, &outcome);
    switch (outcome.action) {
        case SB_MCP_REPLY:
            sb_http_send_json (req, outcome.http_status, outcome.body);
            break;
        case SB_MCP_ACCEPTED:
            sb_http_send_json (req, 202, NULL);
            break;
        case SB_MCP_CALL:
            s_start_call (self, req, &claims, &outcome);
            break;
    }
    sb_mcp_outcome_clear (&outcome);
}

static bool
s_method_is (h2o_req_t *req, const char *method)
{
    return h2o_memis (req->method.base, req->method.len, method, strlen (method));
}

static bool
s_path_is (h2o_req_t *req, const char *path)
{
    return h2o_memis (req->path_normalized.base, req->path_normalized.len, path, strlen (path));
}

static void
s_method_not_allowed (h2o_req_t *req, const char *allow)
{
    sb_http_add_header (req, H2O_TOKEN_ALLOW, allow);
    sb_http_send_error (req, 405, "method_not_allowed", "This method is not supported on this path.");
}

static int
s_on_req (h2o_handler_t *handler, h2o_req_t *req)
{
    sb_gateway_t *self = ((s_handler_t *) handler)->gateway;
    bool get = s_method_is (req, "GET") || s_method_is (req, "HEAD");
    if (s_path_is (req, "/mcp")) {
        if (s_method_is (req, "POST"))
            s_mcp_post (self, req);
        else
            s_method_not_allowed (req, "POST");
    }
    else
    if (s_path_is (req, "/healthz")) {
        if (get)
            sb_http_send_json (req, 200, "{\"status\":\"ok\"}");
        else
            s_method_not_allowed (req, "GET");
    }
    else
    if (s_path_is (req, "/.well-known/oauth-protected-resource")
    ||  s_path_is (req, "/.well-known/oauth-protected-resource/mcp")) {
        if (get)
            sb_http_send_json (req, 200, self->metadata);
        else
            s_method_not_allowed (req, "GET");
    }
    else
        sb_http_send_error (req, 404, "not_found", "There is nothing at this path.");
    return 0;
}

static void
s_on_accept (h2o_socket_t *listener, const char *err)
{
    sb_gateway_t *self = listener->data;
    if (err)
        return;
    for (int i = 0; i < SB_GATEWAY_ACCEPT_BATCH; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept (listener);
        if (!sock)
            return;
        h2o_accept (&self->server->accept_ctx, sock);
    }
}

//  Splits "host:port" (host may be [v6]) and binds a listening socket.
static int
s_listen (sb_gateway_t *self, const char *address)
{
    char host [256];
    const char *colon = strrchr (address, ':');
    if (!colon || (size_t) (colon - address) >= sizeof host || !colon [1]) {
        sb_log_error ("listen_invalid", "--listen must be host:port, not '%s'", address);
        return -1;
    }
    const char *h = address;
    size_t hlen = (size_t) (colon - address);
    if (hlen >= 2 && h [0] == '[' && h [hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy (host, h, hlen);
    host [hlen] = 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *info = NULL;
    if (getaddrinfo (hlen? host: NULL, colon + 1, &hints, &info) || !info) {
        sb_log_error ("listen_invalid", "cannot resolve '%s'", address);
        return -1;
    }
    int fd = socket (info->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0
    ||  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)
    ||  bind (fd, info->ai_addr, info->ai_addrlen)
    ||  listen (fd, SOMAXCONN)) {
        sb_log_error ("listen_failed", "cannot listen on %s: %s", address, strerror (errno));
        if (fd >= 0)
            close (fd);
        freeaddrinfo (info);
        return -1;
    }
    freeaddrinfo (info);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    getsockname (fd, (struct sockaddr *) &bound, &bound_len);
    self->port = ntohs (bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *) &bound)->sin6_port
                        : ((struct sockaddr_in *) &bound)->sin_port);
    self->listener = h2o_evloop_socket_create (self->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    self->listener->data = self;
    h2o_socket_read_start (self->listener, s_on_accept);
    return 0;
}

//  Builds the audience, challenges and metadata from --public-url.
static int
s_set_public_url (sb_gateway_t *self, const char *url)
{
    size_t len = strlen (url);
    while (len > 0 && url [len - 1] == '/')
        len--;
    if (len == 0 || len > SB_MAX_PUBLIC_URL_LEN || strpbrk (url, "\"\\ \r\n")) {
        sb_log_error ("public_url_invalid", "--public-url must be a URL of at most %d bytes",
                      SB_MAX_PUBLIC_URL_LEN);
        return -1;
    }
    int n = (int) len;
    snprintf (self->audience, sizeof self->audience, "%.*s/mcp", n, url);
    snprintf (self->www_authenticate, sizeof self->www_authenticate,
              "Bearer resource_metadata=\"%.*s/.well-known/oauth-protected-resource\"", n, url);
    snprintf (self->www_invalid, sizeof self->www_invalid,
              "Bearer error=\"invalid_token\", resource_metadata=\"%.*s/.well-known/oauth-protected-resource\"",
              n, url);
    json_t *doc = json_pack ("{s:s, s:[s#], s:[s], s:s}",
                             "resource", self->audience,
                             "authorization_servers", url, (int) len,
                             "bearer_methods_supported", "header",
                             "resource_name", "switchboard");
    self->metadata = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    return self->metadata? 0: -1;
}

sb_gateway_t *
sb_gateway_new (sb_config_t *config)
{
    sb_gateway_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    char *error = NULL;
    if (sb_keyfile_load (sb_config_str (config, "token-key-file"), self->key, &self->key_len))
        goto fail;
    if (s_set_public_url (self, sb_config_str (config, "public-url")))
        goto fail;
    const char *dir = sb_config_str (config, "connectors");
    self->connectors = sb_connectors_load (dir, &error);
    if (!self->connectors) {
        sb_log_error ("connectors_invalid", "%s", error? error: dir);
        goto fail;
    }
    self->server = calloc (1, sizeof (s_server_t));
    if (!self->server)
        goto fail;
    s_server_t *server = self->server;
    h2o_config_init (&server->config);
    server->config.max_request_entity_size = SB_MAX_HTTP_BODY_HARD;
    server->config.server_name = h2o_iovec_init (H2O_STRLIT ("switchboard"));
    h2o_hostconf_t *host = h2o_config_register_host (&server->config,
                                                     h2o_iovec_init (H2O_STRLIT ("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path (host, "/", 0);
    s_handler_t *handler = (s_handler_t *) h2o_create_handler (path, sizeof (s_handler_t));
    handler->super.on_req = s_on_req;
    handler->gateway = self;
    self->loop = h2o_evloop_create ();
    h2o_context_init (&server->ctx, self->loop, &server->config);
    server->accept_ctx.ctx = &server->ctx;
    server->accept_ctx.hosts = server->config.hosts;
    self->broker = sb_broker_client_new (self->loop, sb_config_str (config, "broker"),
                                         (uint32_t) sb_config_int (config, "call-timeout-ms"));
    if (!self->broker || s_listen (self, sb_config_str (config, "listen")))
        goto fail;
    sb_log_info ("ready", "listen=%s port=%d broker=%s tools=%zu mcp=%s",
                 sb_config_str (config, "listen"), self->port, sb_config_str (config, "broker"),
                 sb_connectors_tool_count (self->connectors), self->audience);
    return self;
fail:
    free (error);
    sb_gateway_destroy (&self);
    return NULL;
}

void
sb_gateway_destroy (sb_gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_gateway_t *self = *self_p;
    if (self->listener)
        h2o_socket_close (self->listener);
    sb_broker_client_destroy (&self->broker);
    if (self->server && self->loop) {
        self->server->next_parked = s_parked;
        s_parked = self->server;            //  and the loop, through its context
    }
    else
        free (self->server);
    sb_connectors_destroy (&self->connectors);
    free (self->metadata);
    memset (self->key, 0, sizeof self->key);
    free (self);
    *self_p = NULL;
}

int
sb_gateway_run (sb_gateway_t *self)
{
    while (!self->stop)
        h2o_evloop_run (self->loop, SB_GATEWAY_LOOP_MS);

    //  Stop accepting; pending calls end by reply or by their own deadline.
    sb_log_info ("stopping", "pending=%zu", sb_broker_client_pending (self->broker));
    h2o_socket_close (self->listener);
    self->listener = NULL;
    int64_t drain_until = sb_clock_mono_ms () + SB_GATEWAY_DRAIN_MS;
    while (self->calls > 0 && sb_clock_left_ms (drain_until) > 0)
        h2o_evloop_run (self->loop, SB_GATEWAY_LOOP_MS);
    if (self->calls > 0) {
        sb_log_warn ("stop_timeout", "answering %zu pending calls with a timeout", self->calls);
        sb_broker_client_expire_all (self->broker);
    }
    int64_t flush_until = sb_clock_mono_ms () + SB_GATEWAY_FLUSH_MS;
    while (sb_clock_left_ms (flush_until) > 0)
        h2o_evloop_run (self->loop, (int32_t) sb_clock_left_ms (flush_until));
    sb_log_info ("stopped", "dropped_replies=%llu",
                 (unsigned long long) sb_broker_client_dropped (self->broker));
    return 0;
}

void
sb_gateway_stop (sb_gateway_t *self)
{
    self->stop = 1;
}

int
sb_gateway_port (sb_gateway_t *self)
{
    return self->port;
}
