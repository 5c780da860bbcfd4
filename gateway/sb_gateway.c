/*  gateway/sb_gateway.c — the gateway component: options, h2o setup,
    routing and the loop. The MCP endpoint itself is in sb_endpoint.c. */
#include "sb_gateway_int.h"
#include "sb_cluster.h"
#include "sb_jwks.h"
#include "sb_keyfile.h"
#include "sb_mcp.h"
#include "sb_oauth_meta.h"
#include "sb_rpc.h"
#include "sb_clock.h"
#include "sb_connector.h"
#include "sb_log.h"
#include "sb_sched.h"
#include "sb_scope.h"
#include "sb_token.h"
#include "sb_job.h"
#include "sb_tls.h"

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
      "address:port to serve on: HTTPS with --tls-cert-file, else plain HTTP, which is "
      "refused on an address that is not loopback unless --public-url is an https URL "
      "(a TLS-terminating load balancer in front) or --allow-plain-http is set" },
    { "tls-cert-file", SB_OPT_STR, "", 0, 0, "SB_TLS_CERT_FILE",
      "PEM certificate (then its chain) to serve HTTPS with: TLS 1.2 or newer, HTTP/2 by ALPN; "
      "re-read with --tls-key-file on SIGHUP (a pair that does not load is logged and the "
      "old one kept)" },
    { "tls-key-file", SB_OPT_STR, "", 0, 0, "SB_TLS_KEY_FILE",
      "PEM private key of --tls-cert-file (both or neither)" },
    { "allow-plain-http", SB_OPT_BOOL, "false", 0, 0, "SB_GATEWAY_ALLOW_PLAIN_HTTP",
      "serve plain HTTP on a --listen address that is not loopback although --public-url is "
      "http (a container whose port is published only on loopback or a private network)" },
    { "broker", SB_OPT_STR, "tcp://127.0.0.1:5555", 0, 0, "SB_GATEWAY_BROKER",
      "broker frontend endpoint" },
    { "token-key-file", SB_OPT_STR, NULL, 0, 0, "SB_TOKEN_KEY_FILE",
      "file holding the HS256 token key as 64+ hex digits" },
    { "session-key-file", SB_OPT_STR, NULL, 0, 0, "SB_SESSION_KEY_FILE",
      "file holding the key that signs session IDs, cursors and requestState, 64+ hex digits; "
      "not the token key; the same on every gateway of a farm" },
    { "token-jwks-file", SB_OPT_STR, "", 0, 0, "SB_TOKEN_JWKS_FILE",
      "JWKS file of the Ed25519 public keys EdDSA tokens are verified with (current and "
      "previous key), served at /.well-known/jwks.json; empty: HS256 tokens only" },
    { "connectors", SB_OPT_STR, SB_DEFAULT_CONNECTORS_DIR, 0, 0, "SB_CONNECTORS_DIR",
      "directory of connector definitions (*.json), or directories separated by ':'" },
    { "public-url", SB_OPT_STR, "http://127.0.0.1:8080", 0, 0, "SB_PUBLIC_URL",
      "URL clients reach this gateway at; token audience is <public-url>/mcp" },
    { "call-timeout-ms", SB_OPT_INT, "30000", 100, SB_MAX_TIMEOUT_MS, "SB_CALL_TIMEOUT_MS",
      "deadline of one tool call, milliseconds" },
    { "task-timeout-ms", SB_OPT_INT, "600000", 1000, SB_MAX_TIMEOUT_MS, "SB_TASK_TIMEOUT_MS",
      "deadline of a tool call that may become a task (MCP 2026-07-28 tasks), milliseconds" },
    { "task-ttl-ms", SB_OPT_INT, "3600000", 60000, 86400000, "SB_TASK_TTL_MS",
      "how long a task and its result are kept after it is created, milliseconds" },
    { "task-poll-ms", SB_OPT_INT, "1000", 100, 60000, "SB_TASK_POLL_MS",
      "pollIntervalMs suggested to clients polling a task, milliseconds" },
    { "allowed-origins", SB_OPT_STR, "", 0, 0, "SB_ALLOWED_ORIGINS",
      "comma-separated Origins allowed besides the public URL's and localhost (\"*\": any)" },
    { "allowed-hosts", SB_OPT_STR, "", 0, 0, "SB_ALLOWED_HOSTS",
      "comma-separated Host names served besides localhost and the public URL's (\"*\": any)" },
    { "tools-page-size", SB_OPT_INT, "100", 1, SB_MAX_TOOLS_PAGE, "SB_TOOLS_PAGE_SIZE",
      "tools per tools/list page" },
    { "oauth-timeout-ms", SB_OPT_INT, "10000", 100, SB_MAX_TIMEOUT_MS, "SB_OAUTH_TIMEOUT_MS",
      "deadline of a request relayed to the token service (/authorize, /token, /revoke, "
      "/register, /admin/…, the key set), milliseconds; past it the client gets 504" },
    { "webhook-timeout-ms", SB_OPT_INT, "10000", 100, SB_MAX_TIMEOUT_MS, "SB_WEBHOOK_TIMEOUT_MS",
      "deadline of a webhook relayed to the webhook service (POST /webhooks/{endpoint}), "
      "milliseconds; past it the provider gets 504 (and sends it again)" },
    { "webhook-max-body", SB_OPT_INT, "1048576", 1, SB_MAX_JOB_BODY, "SB_WEBHOOK_MAX_BODY",
      "largest webhook body (POST /webhooks/{endpoint}), bytes; larger is answered 413, on "
      "its declared Content-Length before it is read" },
    { "admin-key-file", SB_OPT_STR, "", 0, 0, "SB_ADMIN_KEY_FILE",
      "file whose first line is the operator key (16+ bytes) the admin API (/admin/…) takes "
      "as Authorization: Bearer; empty: /admin/ is not served (404)" },
    { "jwks-refresh-ms", SB_OPT_INT, "60000", 0, 86400000, "SB_JWKS_REFRESH_MS",
      "how often the token service is asked for its key set (EdDSA tokens), milliseconds; "
      "0: only at start and when a token names an unknown kid; unused with --token-jwks-file" },
    { "log-level", SB_OPT_STR, "info", 0, 0, "SB_LOG_LEVEL",
      "debug, info, warn or error" },
    SB_CPU_POLICY_OPTION,
    { .name = NULL }
};

/*  h2o's state for one loop. h2o 2.2.5 cannot close the connections still
    open when the gateway stops (keep-alive clients), and disposing the
    context under them asserts; so this is never disposed: destroy parks it,
    still reachable, until the process exits (leak checkers stay quiet). */
struct _s_server_t {
    h2o_globalconf_t config;                    /* h2o configuration (one host, one path) */
    h2o_context_t ctx;                          /* h2o per-loop context */
    h2o_accept_ctx_t accept_ctx;                /* how accepted sockets are served */
    struct _s_server_t *next_parked;            /* list of retired servers */
};

/*  Our handler: h2o's handler plus a way back to the gateway. */
typedef struct {
    h2o_handler_t super;                /* must be first */
    sb_gateway_t *gateway;              /* owner */
} s_handler_t;

//  Retired h2o servers (see s_server_t).
static s_server_t *s_parked;

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
            sb_endpoint_post (self, req);
        else
        if (s_method_is (req, "GET"))
            sb_endpoint_get (self, req);
        else
        if (s_method_is (req, "DELETE"))
            sb_endpoint_delete (self, req);
        else
            s_method_not_allowed (req, "GET, POST, DELETE");
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
    if (s_path_is (req, "/.well-known/oauth-authorization-server") && self->as_metadata) {
        if (get)
            sb_http_send_json (req, 200, self->as_metadata);
        else
            s_method_not_allowed (req, "GET");
    }
    else
    if (s_path_is (req, "/.well-known/jwks.json") && self->jwks_json) {
        if (get)
            sb_http_send_json (req, 200, self->jwks_json);
        else
            s_method_not_allowed (req, "GET");
    }
    else
    if (sb_webhook_route (self, req))
        ;                                   //  relayed to the webhook service (sb_webhook.c)
    else
    if (sb_http_job_route (self, req))
        ;                                   //  relayed to the token service (sb_http_job.c)
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

//  True when `addr` is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x).
static bool
s_is_loopback (const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
        return (ntohl (in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *) addr)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK (in6)
            || (IN6_IS_ADDR_V4MAPPED (in6) && in6->s6_addr [12] == 127);
    }
    return false;
}

//  Splits "host:port" (host may be [v6]) and binds a listening socket.
//  Plain HTTP (no TLS) only on loopback unless `plain_ok` (see --listen).
static int
s_listen (sb_gateway_t *self, const char *address, bool plain_ok)
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
    if (!self->tls && !plain_ok && !s_is_loopback (info->ai_addr)) {
        sb_log_error ("plain_http_refused", "--listen %s is not a loopback address, so plain HTTP "
                      "is refused there: give --tls-cert-file and --tls-key-file, or an https "
                      "--public-url when a TLS-terminating load balancer is in front, or "
                      "--allow-plain-http", address);
        freeaddrinfo (info);
        return -1;
    }
    int fd = socket (info->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    if (fd < 0
    ||  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)
    ||  bind (fd, info->ai_addr, info->ai_addrlen)
    ||  listen (fd, SOMAXCONN)
    ||  getsockname (fd, (struct sockaddr *) &bound, &bound_len)) {
        sb_log_error ("listen_failed", "cannot listen on %s: %s", address, strerror (errno));
        if (fd >= 0)
            close (fd);
        freeaddrinfo (info);
        return -1;
    }
    freeaddrinfo (info);
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
    snprintf (self->resource_metadata_url, sizeof self->resource_metadata_url,
              "%.*s/.well-known/oauth-protected-resource", n, url);
    //  A 401 names every scope this resource knows (MCP authorization,
    //  "Scope selection strategy"): a client that asks for them all up
    //  front is not sent back for mcp:write at its first write.
    snprintf (self->www_authenticate, sizeof self->www_authenticate,
              "Bearer resource_metadata=\"%s\", scope=\"" SB_OAUTH_SCOPES_SUPPORTED "\"",
              self->resource_metadata_url);
    snprintf (self->www_invalid, sizeof self->www_invalid,
              "Bearer error=\"invalid_token\", resource_metadata=\"%s\", scope=\""
              SB_OAUTH_SCOPES_SUPPORTED "\"", self->resource_metadata_url);
    json_t *doc = json_pack ("{s:s, s:[s#], s:[s], s:s, s:[s, s]}",
                             "resource", self->audience,
                             "authorization_servers", url, (int) len,
                             "bearer_methods_supported", "header",
                             "resource_name", "switchboard",
                             "scopes_supported", SB_SCOPE_TOOLS, SB_SCOPE_WRITE);
    self->metadata = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    //  The authorization server's metadata (RFC 8414), issued under the
    //  public URL. An issuer must be https (http only on loopback): behind
    //  a plain-http public URL there is none, and the path answers 404.
    char issuer [SB_MAX_PUBLIC_URL_LEN + 1];
    snprintf (issuer, sizeof issuer, "%.*s", n, url);
    self->as_metadata = sb_oauth_metadata_json (issuer, SB_OAUTH_SCOPES_SUPPORTED);
    if (!self->as_metadata)
        sb_log_info ("oauth_metadata_off", "--public-url is not an https URL (nor http on loopback): "
                     "/.well-known/oauth-authorization-server is not served");
    return self->metadata? 0: -1;
}

sb_gateway_t *
sb_gateway_new (sb_config_t *config)
{
    sb_gateway_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    char *error = NULL;
    if (sb_keyfile_load (sb_config_str (config, "token-key-file"), "token key", self->key,
                         &self->key_len))
        goto fail;
    if (s_set_public_url (self, sb_config_str (config, "public-url")))
        goto fail;
    const char *cert_file = sb_config_str (config, "tls-cert-file");
    const char *key_file = sb_config_str (config, "tls-key-file");
    if (!*cert_file != !*key_file) {
        sb_log_error ("tls_invalid", "--tls-cert-file and --tls-key-file go together: give both or neither");
        goto fail;
    }
    if (*cert_file) {
        self->tls = sb_tls_new (cert_file, key_file);
        if (!self->tls)
            goto fail;
        if (strncasecmp (sb_config_str (config, "public-url"), "https://", 8))
            sb_log_warn ("public_url_not_https", "HTTPS is served but --public-url is %s: clients "
                         "are told that URL and tokens must name it", sb_config_str (config, "public-url"));
    }
    bool plain_ok = sb_config_bool (config, "allow-plain-http")
                 || strncasecmp (sb_config_str (config, "public-url"), "https://", 8) == 0;
    self->tools_page_size = (size_t) sb_config_int (config, "tools-page-size");
    //  Sessions, cursors and requestState are signed with a secret of their
    //  own: knowing how tokens are signed does not forge a session.
    uint8_t session_key [SB_MAX_TOKEN_KEY_LEN];
    size_t session_key_len = 0;
    int key_rc = sb_keyfile_load (sb_config_str (config, "session-key-file"), "session key",
                                  session_key, &session_key_len);
    if (key_rc == 0 && session_key_len == self->key_len
    &&  sb_crypto_equal (session_key, self->key, self->key_len)) {
        sb_log_error ("key_file_invalid", "the session key must not be the token key");
        key_rc = -1;
    }
    if (key_rc) {
        explicit_bzero (session_key, sizeof session_key);
        goto fail;
    }
    self->sessions = sb_sessions_new (session_key, session_key_len);
    explicit_bzero (session_key, sizeof session_key);
    self->tokens = sb_token_cache_new (self->key, self->key_len, self->audience);
    self->origin = sb_origin_new (sb_config_str (config, "allowed-origins"),
                                  sb_config_str (config, "allowed-hosts"),
                                  sb_config_str (config, "public-url"));
    self->revoked = sb_revoke_new ();
    if (!self->sessions || !self->tokens || !self->revoked || !self->origin)
        goto fail;
    const char *jwks_file = sb_config_str (config, "token-jwks-file");
    if (jwks_file && *jwks_file) {
        self->jwks = sb_jwks_load (jwks_file);
        self->jwks_json = self->jwks? sb_jwks_json (self->jwks): NULL;
        if (!self->jwks_json)
            goto fail;
        sb_token_cache_set_jwks (self->tokens, self->jwks);
    }
    const char *dir = sb_config_str (config, "connectors");
    self->connectors_dir = strdup (dir);
    self->subs = sb_subs_new ();
    self->lists = sb_lists_new ();
    if (!self->connectors_dir || !self->subs || !self->lists)
        goto fail;
    sb_sessions_on_end (self->sessions, sb_gateway_session_ended, self);
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
    //  h2o reads a whole body before any handler runs: its limit is the
    //  largest any route takes, so that a declared Content-Length past it
    //  is refused (413) before the body is read (PROTOCOL.md "Webhooks").
    self->webhook_max_body = (size_t) sb_config_int (config, "webhook-max-body");
    size_t largest = self->webhook_max_body > SB_MAX_HTTP_BODY? self->webhook_max_body: SB_MAX_HTTP_BODY;
    server->config.max_request_entity_size = largest < SB_MAX_HTTP_BODY_HARD? largest: SB_MAX_HTTP_BODY_HARD;
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
    server->accept_ctx.ssl_ctx = self->tls? sb_tls_ctx (self->tls): NULL;
    self->sse = sb_sse_hub_new (self->loop);
    self->call_keys = zhashx_new ();
    self->task_calls = zhashx_new ();
    self->task_watches = zlistx_new ();
    self->levels = sb_levels_new ();
    if (!self->sse || !self->call_keys || !self->task_calls || !self->task_watches || !self->levels)
        goto fail;
    self->task_timeout_ms = (uint32_t) sb_config_int (config, "task-timeout-ms");
    self->task_ttl_ms = (uint32_t) sb_config_int (config, "task-ttl-ms");
    self->task_poll_ms = (uint32_t) sb_config_int (config, "task-poll-ms");
    self->broker = sb_broker_client_new_all (self->loop, sb_config_str (config, "broker"),
                                             (uint32_t) sb_config_int (config, "call-timeout-ms"),
                                             self->task_timeout_ms,
                                             (uint32_t) sb_config_int (config, "oauth-timeout-ms"));
    if (self->broker)
        sb_broker_client_set_webhook_timeout (self->broker,
                                              (uint32_t) sb_config_int (config, "webhook-timeout-ms"));
    if (!self->broker || sb_http_job_start (self, config)
    ||  s_listen (self, sb_config_str (config, "listen"), plain_ok))
        goto fail;
    sb_cluster_start (self);        //  ended sessions and log levels from the other gateways
    sb_log_info ("ready", "listen=%s port=%d scheme=%s broker=%s tools=%zu mcp=%s",
                 sb_config_str (config, "listen"), self->port, self->tls? "https": "http",
                 sb_config_str (config, "broker"),
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
    sb_http_job_destroy (self);
    sb_broker_client_destroy (&self->broker);
    sb_sse_hub_destroy (&self->sse);
    zhashx_destroy (&self->call_keys);
    zhashx_destroy (&self->task_calls);
    zlistx_destroy (&self->task_watches);       //  its destructor frees each watch
    sb_levels_destroy (&self->levels);
    sb_sessions_destroy (&self->sessions);
    sb_origin_destroy (&self->origin);
    if (self->server)
        self->server->accept_ctx.ssl_ctx = NULL;    //  the listener is closed: no more handshakes
    sb_tls_destroy (&self->tls);
    if (self->server && self->loop) {
        self->server->next_parked = s_parked;
        s_parked = self->server;            //  and the loop, through its context
    }
    else
        free (self->server);
    sb_connectors_destroy (&self->connectors);
    sb_subs_destroy (&self->subs);
    sb_lists_destroy (&self->lists);
    sb_token_cache_destroy (&self->tokens);
    sb_revoke_destroy (&self->revoked);
    sb_jwks_destroy (&self->jwks);
    free (self->jwks_json);
    free (self->connectors_dir);
    free (self->metadata);
    free (self->as_metadata);
    memset (self->key, 0, sizeof self->key);
    free (self);
    *self_p = NULL;
}

int
sb_gateway_run (sb_gateway_t *self)
{
    while (!self->stop)
        sb_gateway_poll (self, SB_GATEWAY_LOOP_MS);

    //  Stop accepting; pending calls end by reply or by their own deadline.
    sb_log_info ("stopping", "pending=%zu", sb_broker_client_pending (self->broker));
    h2o_socket_close (self->listener);
    self->listener = NULL;
    sb_gateway_listen_end_all (self);       //  2026-07-28 listen streams: their result first
    sb_sse_close_standalone (self->sse, NULL);
    sb_call_tasks_stop (self);              //  their jobs stopped, the tasks failed
    sb_http_job_stop (self);                //  no more key set jobs
    //  Until the calls are answered and the broker has answered everything
    //  sent (the task store's acknowledgements of those failures among it).
    int64_t drain_until = sb_clock_mono_ms () + SB_GATEWAY_DRAIN_MS;
    while ((self->calls > 0 || sb_broker_client_pending (self->broker) > 0)
    &&     sb_clock_left_ms (drain_until) > 0)
        h2o_evloop_run (self->loop, SB_GATEWAY_LOOP_MS);
    if (self->calls > 0 || sb_broker_client_pending (self->broker) > 0) {
        sb_log_warn ("stop_timeout", "answering %zu pending calls and %zu requests with a timeout",
                     self->calls, sb_broker_client_pending (self->broker));
        sb_broker_client_expire_all (self->broker);
    }
    int64_t flush_until = sb_clock_mono_ms () + SB_GATEWAY_FLUSH_MS;
    while (sb_clock_left_ms (flush_until) > 0)
        h2o_evloop_run (self->loop, (int32_t) sb_clock_left_ms (flush_until));
    sb_log_info ("stopped", "dropped_replies=%llu cancelled=%llu notifications_dropped=%llu "
                 "asks_refused=%llu reloads=%llu reload_failures=%llu tasks_created=%llu "
                 "audits_sent=%llu audits_dropped=%llu revocations=%zu revoked_refused=%llu "
                 "limited=%llu webhooks_relayed=%llu webhooks_refused=%llu",
                 (unsigned long long) sb_broker_client_dropped (self->broker),
                 (unsigned long long) self->cancelled, (unsigned long long) self->notes_dropped,
                 (unsigned long long) self->asks_refused, (unsigned long long) self->reloads,
                 (unsigned long long) self->reload_failures, (unsigned long long) self->tasks_created,
                 (unsigned long long) self->audits_sent, (unsigned long long) self->audits_dropped,
                 sb_revoke_size (self->revoked), (unsigned long long) self->revoked_refused,
                 (unsigned long long) self->limited, (unsigned long long) self->webhooks_relayed,
                 (unsigned long long) self->webhooks_refused);
    return 0;
}

void
sb_gateway_stop (sb_gateway_t *self)
{
    self->stop = 1;
}

void
sb_gateway_request_reload (sb_gateway_t *self)
{
    self->reload = 1;
}

void
sb_gateway_poll (sb_gateway_t *self, int timeout_ms)
{
    if (self->reload) {
        self->reload = 0;
        sb_gateway_reload (self);       //  logs its outcome either way
        //  New handshakes take the new certificate; open connections keep theirs.
        if (self->tls && sb_tls_reload (self->tls) == 0)
            self->server->accept_ctx.ssl_ctx = sb_tls_ctx (self->tls);
    }
    h2o_evloop_run (self->loop, timeout_ms);
}

int
sb_gateway_port (sb_gateway_t *self)
{
    return self->port;
}
