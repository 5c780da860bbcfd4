/*  tests/38_workers_register.c — client registration in the token worker:
    oauth/register (RFC 7591) and Client ID Metadata Documents, against
    the real test PostgreSQL and an HTTPS server made here with a test CA.

    The token role runs in-process on its own thread, with the real
    sb_worker core talking to a fake broker over TCP, so jobs arrive as
    the gateway sends them. A thin test role wraps the token role: the op
    "test/find" runs sb_oauth_client_find (the lookup /authorize and
    /token use) on the client ID in the job's data and answers the row as
    JSON, "test/stop" stops the worker; every other op is the token
    role's own. The HTTPS server serves metadata documents (good, wrong
    client_id, too big, too slow, a redirect, private_key_jwt, a 503) and
    counts requests, so the test sees when the worker fetched. */
#include <arpa/inet.h>
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_cimd.h"
#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_job.h"
#include "sb_log.h"
#include "sb_oauth.h"
#include "sb_oauth_clients.h"
#include "sb_token_role.h"
#include "sb_worker.h"

#define WAIT_MS         15000   /* a job's answer, at most */
#define JOB_TIMEOUT_MS  12000   /* a job's deadline (longer than SB_CIMD_FETCH_MS) */
#define SLOW_MS         (SB_CIMD_FETCH_MS + 2000)   /* the slow route: past the fetch limit */
#define FLIGHT_MS       600     /* the shared route: long enough for lookups to pile up */

static char *s_conninfo;        /* the test PostgreSQL */
static char s_dir [256];        /* temporary folder: the CA and the server's pair */
static char s_ca_file [300];

//  ---------------------------------------------------------------------
//  The HTTPS server

typedef struct {
    const char *path;
    int status;
    const char *headers;        /* extra header lines, each ending \r\n */
    char *body;                 /* owned */
    int delay_ms;
} s_route_t;

#define MAX_ROUTES 16

typedef struct {
    SSL_CTX *ctx;
    int fd;                     /* listening */
    int port;
    int stop [2];               /* pipe: readable once stopping */
    pthread_t thread;
    atomic_int requests;        /* requests served (any path) */
    atomic_int active;          /* connection threads alive */
    s_route_t routes [MAX_ROUTES];
    size_t route_count;
} s_server_t;

static s_server_t s_server;

typedef struct {
    s_server_t *server;
    int fd;
} s_conn_t;

//  Waits `ms` unless the server stops first. Returns true when stopping.
static bool
s_server_wait (s_server_t *server, int ms)
{
    struct pollfd item = { server->stop [0], POLLIN, 0 };
    return poll (&item, 1, ms) > 0;
}

static void *
s_conn_run (void *arg)
{
    s_conn_t conn = *(s_conn_t *) arg;
    free (arg);
    s_server_t *server = conn.server;
    SSL *ssl = SSL_new (server->ctx);
    SSL_set_fd (ssl, conn.fd);
    char request [4096];
    int got = 0;
    if (SSL_accept (ssl) == 1) {
        while (got < (int) sizeof request - 1) {
            int n = SSL_read (ssl, request + got, (int) sizeof request - 1 - got);
            if (n <= 0)
                break;
            got += n;
            request [got] = 0;
            if (strstr (request, "\r\n\r\n"))
                break;
        }
    }
    char path [512] = "";
    if (got > 4 && sscanf (request, "GET %511s", path) == 1) {
        atomic_fetch_add (&server->requests, 1);
        const s_route_t *route = NULL;
        for (size_t at = 0; at < server->route_count; at++)
            if (strcmp (server->routes [at].path, path) == 0)
                route = &server->routes [at];
        bool stopping = route && route->delay_ms && s_server_wait (server, route->delay_ms);
        if (!stopping) {
            const char *body = route? route->body: "not found";
            char head [1024];
            int len = snprintf (head, sizeof head,
                                "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                                route? route->status: 404, strlen (body),
                                route && route->headers? route->headers: "");
            SSL_write (ssl, head, len);
            if (*body)
                SSL_write (ssl, body, (int) strlen (body));
        }
    }
    SSL_shutdown (ssl);
    SSL_free (ssl);
    close (conn.fd);
    atomic_fetch_sub (&server->active, 1);
    return NULL;
}

static void *
s_server_run (void *arg)
{
    s_server_t *server = arg;
    while (true) {
        struct pollfd items [2] = { { server->fd, POLLIN, 0 }, { server->stop [0], POLLIN, 0 } };
        if (poll (items, 2, -1) < 0 || items [1].revents)
            break;
        int fd = accept (server->fd, NULL, NULL);
        if (fd < 0)
            continue;
        s_conn_t *conn = malloc (sizeof *conn);
        conn->server = server;
        conn->fd = fd;
        atomic_fetch_add (&server->active, 1);
        pthread_t thread;
        if (pthread_create (&thread, NULL, s_conn_run, conn)) {
            atomic_fetch_sub (&server->active, 1);
            close (fd);
            free (conn);
            continue;
        }
        pthread_detach (thread);
    }
    return NULL;
}

//  The URL of `path` on the server, by `host` (127.0.0.1 or localhost).
static void
s_url (char *url, size_t size, const char *host, const char *path)
{
    snprintf (url, size, "https://%s:%d%s", host, s_server.port, path);
}

static void
s_route (const char *path, int status, const char *headers, const char *body, int delay_ms)
{
    assert_true (s_server.route_count < MAX_ROUTES);
    s_server.routes [s_server.route_count++] = (s_route_t) {
        path, status, headers, strdup (body), delay_ms
    };
}

//  A document for `path` (its client_id the URL on 127.0.0.1 unless
//  `client_id` is given) with `extra` members appended.
static char *
s_document (const char *path, const char *client_id, const char *extra)
{
    char url [256];
    s_url (url, sizeof url, "127.0.0.1", path);
    char *text = NULL;
    int n = asprintf (&text, "{\"client_id\":\"%s\",\"client_name\":\"Doc %s\","
                      "\"redirect_uris\":[\"https://app.example/cb\"]%s}",
                      client_id? client_id: url, path, extra? extra: "");
    assert_true (n > 0);
    return text;
}

static void
s_route_document (const char *path, const char *client_id, const char *extra, int status,
                  const char *headers, int delay_ms)
{
    char *doc = s_document (path, client_id, extra);
    s_route (path, status, headers, doc, delay_ms);
    free (doc);
}

static int
s_run (const char *const argv [])
{
    pid_t pid = sb_harness_spawn (argv, NULL);
    if (pid <= 0)
        return -1;
    int status = 0;
    waitpid (pid, &status, 0);
    return WIFEXITED (status) && WEXITSTATUS (status) == 0? 0: -1;
}

//  The test CA and a server pair for 127.0.0.1 and localhost.
static void
s_make_certificates (void)
{
    char path [4][320];
    snprintf (path [0], sizeof path [0], "%s/ca.key", s_dir);
    snprintf (s_ca_file, sizeof s_ca_file, "%s/ca.crt", s_dir);
    snprintf (path [1], sizeof path [1], "%s/server.key", s_dir);
    snprintf (path [2], sizeof path [2], "%s/server.csr", s_dir);
    snprintf (path [3], sizeof path [3], "%s/ext.cnf", s_dir);
    char crt [320];
    snprintf (crt, sizeof crt, "%s/server.crt", s_dir);
    FILE *ext = fopen (path [3], "w");
    assert_non_null (ext);
    fputs ("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", ext);
    fclose (ext);
    const char *ca [] = { "/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                          "/CN=switchboard cimd test CA", "-keyout", path [0], "-out", s_ca_file,
                          NULL };
    assert_int_equal (s_run (ca), 0);
    const char *csr [] = { "/usr/bin/openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-subj", "/CN=localhost", "-keyout", path [1], "-out", path [2],
                           NULL };
    assert_int_equal (s_run (csr), 0);
    const char *sign [] = { "/usr/bin/openssl", "x509", "-req", "-in", path [2], "-CA", s_ca_file, "-CAkey",
                            path [0], "-set_serial", "4242", "-days", "2", "-extfile", path [3],
                            "-out", crt, NULL };
    assert_int_equal (s_run (sign), 0);
    s_server.ctx = SSL_CTX_new (TLS_server_method ());
    assert_non_null (s_server.ctx);
    assert_int_equal (SSL_CTX_use_certificate_chain_file (s_server.ctx, crt), 1);
    assert_int_equal (SSL_CTX_use_PrivateKey_file (s_server.ctx, path [1], SSL_FILETYPE_PEM), 1);
}

static void
s_server_start (void)
{
    s_server_t *server = &s_server;
    server->fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (server->fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (server->fd, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (listen (server->fd, 64), 0);
    socklen_t len = sizeof addr;
    assert_int_equal (getsockname (server->fd, (struct sockaddr *) &addr, &len), 0);
    server->port = ntohs (addr.sin_port);
    assert_int_equal (pipe (server->stop), 0);

    //  The documents
    s_route_document ("/good.json", NULL, NULL, 200, "Cache-Control: max-age=600\r\n", 0);
    s_route_document ("/flight.json", NULL, NULL, 200, NULL, FLIGHT_MS);
    s_route_document ("/other.json", "https://127.0.0.1:1/elsewhere.json", NULL, 200, NULL, 0);
    char padding [SB_CIMD_MAX_BYTES + 64];
    memset (padding, 'x', sizeof padding - 1);
    padding [sizeof padding - 1] = 0;
    char *extra = NULL;
    assert_true (asprintf (&extra, ",\"padding\":\"%s\"", padding) > 0);
    s_route_document ("/big.json", NULL, extra, 200, NULL, 0);
    free (extra);
    s_route_document ("/slow.json", NULL, NULL, 200, NULL, SLOW_MS);
    s_route_document ("/abandon.json", NULL, NULL, 200, NULL, SLOW_MS);
    s_route ("/redirect.json", 302, "Location: /good.json\r\n", "", 0);
    s_route_document ("/jwt.json", NULL, ",\"token_endpoint_auth_method\":\"private_key_jwt\"",
                      200, NULL, 0);
    s_route_document ("/secret.json", NULL, ",\"token_endpoint_auth_method\":\"client_secret_basic\"",
                      200, NULL, 0);
    s_route_document ("/stale.json", NULL, NULL, 200, NULL, 0);
    char *doc = NULL;
    assert_true (asprintf (&doc, "{\"client_id\":\"https://127.0.0.1:%d/noname.json\","
                           "\"redirect_uris\":[\"https://app.example/cb\"]}", server->port) > 0);
    s_route ("/noname.json", 200, NULL, doc, 0);
    free (doc);
    s_route ("/notjson.json", 200, NULL, "<html>hello</html>", 0);
    s_route_document ("/down.json", NULL, NULL, 503, NULL, 0);
    assert_int_equal (pthread_create (&server->thread, NULL, s_server_run, server), 0);
}

static void
s_server_stop (void)
{
    s_server_t *server = &s_server;
    if (server->stop [1] < 0)
        return;
    assert_int_equal (write (server->stop [1], "x", 1), 1);
    pthread_join (server->thread, NULL);
    //  Connection threads see the pipe too; wait for the last one
    int64_t until = sb_harness_now_ms () + 10000;
    while (atomic_load (&server->active) > 0 && sb_harness_now_ms () < until)
        sb_harness_pause_ms (10);
    close (server->fd);
    close (server->stop [0]);
    close (server->stop [1]);
    server->stop [0] = server->stop [1] = -1;
    for (size_t at = 0; at < server->route_count; at++)
        free (server->routes [at].body);
    SSL_CTX_free (server->ctx);
}

//  Sets the server's route `path` to answer `status` from now on.
static void
s_route_status (const char *path, int status)
{
    for (size_t at = 0; at < s_server.route_count; at++)
        if (strcmp (s_server.routes [at].path, path) == 0)
            s_server.routes [at].status = status;
}

//  ---------------------------------------------------------------------
//  The worker, in-process

typedef struct {
    fake_broker_t *broker;
    pthread_t thread;
    const char *allow_hosts;    /* --cimd-allow-hosts */
    sb_worker_t *worker;        /* the worker thread's */
    sb_token_role_t *token;     /* the worker thread's */
    int started;                /* 1 running, -1 failed */
} s_worker_t;

static s_worker_t s_w;

static void
s_on_test_found (sb_worker_job_t **job_p, const sb_oauth_client_row_t *client, const char *error,
                 void *arg)
{
    json_t *doc = json_object ();
    json_object_set_new (doc, "found", json_boolean (client != NULL));
    if (error)
        json_object_set_new (doc, "error", json_string (error));
    if (client) {
        json_object_set_new (doc, "client_id", json_string (client->client_id));
        json_object_set_new (doc, "kind", json_string (client->kind));
        json_object_set_new (doc, "auth", json_string (client->auth_method));
        json_object_set_new (doc, "has_secret", json_boolean (client->has_secret));
        json_object_set_new (doc, "chatgpt", json_boolean (client->chatgpt));
        if (client->client_name)
            json_object_set_new (doc, "client_name", json_string (client->client_name));
        json_t *uris = json_array ();
        for (size_t at = 0; at < client->redirect_uri_count; at++)
            json_array_append_new (uris, json_string (client->redirect_uris [at]));
        json_object_set_new (doc, "redirect_uris", uris);
    }
    char *text = json_dumps (doc, JSON_COMPACT);
    json_decref (doc);
    sb_worker_job_done (job_p, SB_STATUS_OK, text);
    free (text);
}

static void
s_test_start (void *state, sb_worker_job_t *job)
{
    s_worker_t *w = state;
    const sb_job_t *spec = sb_worker_job_spec (job);
    if (strcmp (spec->op, "test/find") == 0)
        sb_oauth_client_find (w->token, job, spec->data, s_on_test_found, NULL);
    else
    if (strcmp (spec->op, "test/fetches") == 0) {
        char text [64];
        snprintf (text, sizeof text, "{\"fetches\":%lu}", sb_cimd_fetches (w->token->cimd));
        sb_worker_job_done (&job, SB_STATUS_OK, text);
    }
    else
    if (strcmp (spec->op, "test/stop") == 0) {
        sb_worker_stop (w->worker);
        sb_worker_job_done (&job, SB_STATUS_OK, "{}");
    }
    else
        sb_token_role.start (w->token, job);
}

static void
s_test_abandon (void *state, sb_worker_job_t *job)
{
    s_worker_t *w = state;
    sb_token_role.abandon (w->token, job);
}

static const sb_worker_role_t s_test_role = { s_test_start, s_test_abandon };

static void *
s_worker_run (void *arg)
{
    s_worker_t *w = arg;
    char migrations [512];
    snprintf (migrations, sizeof migrations, "%s/db/migrations", SB_SOURCE_DIR);
    w->worker = sb_worker_new (w->broker->endpoint, "token", 8, 200);
    sb_token_config_t config = {
        .conninfo = s_conninfo, .migrations_dir = migrations,
        .issuer = "https://auth.example", .secret_key_file = "", .hash_threads = 1,
        .cimd_allow_hosts = w->allow_hosts, .cimd_ca_file = s_ca_file
    };
    w->token = w->worker? sb_token_role_new (w->worker, &config): NULL;
    if (!w->token) {
        w->started = -1;
        sb_worker_destroy (&w->worker);
        return NULL;
    }
    w->started = 1;
    sb_worker_set_role (w->worker, &s_test_role, w);
    if (sb_worker_run (w->worker))
        w->started = -1;
    sb_token_role_destroy (&w->token);
    sb_worker_destroy (&w->worker);
    return NULL;
}

static void
s_worker_start (const char *allow_hosts)
{
    s_worker_t *w = &s_w;
    memset (w, 0, sizeof *w);
    w->allow_hosts = allow_hosts;
    w->broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (w->broker);
    assert_int_equal (pthread_create (&w->thread, NULL, s_worker_run, w), 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (w->broker, &msg, 30000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    sb_msg_reset (&msg);
}

//  Sends op with `data`; returns the result text (caller frees).
static char *
s_job (const char *op, const char *data, sb_status_t *status)
{
    static int serial;
    char corr_id [32];
    snprintf (corr_id, sizeof corr_id, "reg-%d", ++serial);
    sb_job_t job = { .op = sb_unconst (op), .data = sb_unconst (data) };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    assert_int_equal (fake_broker_send_job (s_w.broker, corr_id, JOB_TIMEOUT_MS, 0, &payload), 0);
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_w.broker, corr_id, WAIT_MS, status, &text), 0);
    return text;
}

static void
s_worker_stop (void)
{
    sb_status_t status;
    free (s_job ("test/stop", NULL, &status));
    pthread_join (s_w.thread, NULL);
    fake_broker_destroy (&s_w.broker);
}

//  test/find of `client_id`: the answer as JSON.
static json_t *
s_find (const char *client_id)
{
    sb_status_t status;
    char *text = s_job ("test/find", client_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    json_t *doc = json_loads (text, 0, NULL);
    assert_non_null (doc);
    free (text);
    return doc;
}

static bool
s_found (const char *client_id)
{
    json_t *doc = s_find (client_id);
    bool found = json_is_true (json_object_get (doc, "found"));
    json_decref (doc);
    return found;
}

static int
s_fetches (void)
{
    sb_status_t status;
    char *text = s_job ("test/fetches", NULL, &status);
    json_t *doc = json_loads (text, 0, NULL);
    free (text);
    int n = (int) json_integer_value (json_object_get (doc, "fetches"));
    json_decref (doc);
    return n;
}

//  POST /register with `body` from `remote`: the HTTP response.
static void
s_register (const char *method, const char *body, const char *remote, sb_http_response_t *response)
{
    sb_http_request_t request = {
        .method = sb_unconst (method), .path = sb_unconst ("/register"), .query = sb_unconst (""),
        .body = sb_unconst (body), .body_len = strlen (body), .remote = sb_unconst (remote)
    };
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    sb_status_t status;
    char *text = s_job ("oauth/register", data, &status);
    free (data);
    if (status != SB_STATUS_OK)
        fail_msg ("oauth/register failed: %s", text);
    const char *why = NULL;
    memset (response, 0, sizeof *response);
    assert_int_equal (sb_http_response_decode (text, strlen (text), response, &why), 0);
    free (text);
}

static long
s_scalar (const char *sql, const char *param)
{
    PGconn *conn = PQconnectdb (s_conninfo);
    assert_int_equal (PQstatus (conn), CONNECTION_OK);
    const char *params [] = { param };
    PGresult *res = PQexecParams (conn, sql, param? 1: 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK && PQresultStatus (res) != PGRES_COMMAND_OK)
        fail_msg ("%s: %s", sql, PQerrorMessage (conn));
    long value = PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
               ? strtol (PQgetvalue (res, 0, 0), NULL, 10): -1;
    PQclear (res);
    PQfinish (conn);
    return value;
}

static char *
s_text (const char *sql, const char *param)
{
    PGconn *conn = PQconnectdb (s_conninfo);
    assert_int_equal (PQstatus (conn), CONNECTION_OK);
    const char *params [] = { param };
    PGresult *res = PQexecParams (conn, sql, 1, NULL, params, NULL, NULL, 0);
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    char *value = PQntuples (res) == 1 && !PQgetisnull (res, 0, 0)? strdup (PQgetvalue (res, 0, 0)): NULL;
    PQclear (res);
    PQfinish (conn);
    return value;
}

//  ---------------------------------------------------------------------
//  Registration

static json_t *
s_register_ok (const char *body, const char *remote)
{
    sb_http_response_t response;
    s_register ("POST", body, remote, &response);
    if (response.status != 201)
        fail_msg ("status %d: %s", response.status, response.body);
    assert_string_equal (sb_http_response_header (&response, "cache-control"), "no-store");
    assert_string_equal (sb_http_response_header (&response, "content-type"), "application/json");
    json_t *doc = json_loads (response.body, 0, NULL);
    assert_non_null (doc);
    sb_http_response_clear (&response);
    return doc;
}

static void
test_register_public (void **state)
{
    json_t *doc = s_register_ok ("{\"redirect_uris\":[\"https://app.example/cb\",\"http://127.0.0.1:9/cb\"],"
                                 "\"token_endpoint_auth_method\":\"none\",\"client_name\":\"Public app\","
                                 "\"grant_types\":[\"authorization_code\",\"refresh_token\"],"
                                 "\"scope\":\"mcp:tools\",\"logo_uri\":\"https://app.example/l.png\"}",
                                 "198.51.100.1");
    const char *client_id = json_string_value (json_object_get (doc, "client_id"));
    assert_non_null (client_id);
    assert_true (strlen (client_id) >= 20);
    assert_true (json_integer_value (json_object_get (doc, "client_id_issued_at")) > 1700000000);
    assert_null (json_object_get (doc, "client_secret"));
    assert_null (json_object_get (doc, "client_secret_expires_at"));
    assert_string_equal (json_string_value (json_object_get (doc, "token_endpoint_auth_method")), "none");
    assert_string_equal (json_string_value (json_object_get (doc, "client_name")), "Public app");
    assert_string_equal (json_string_value (json_object_get (doc, "scope")), "mcp:tools");
    assert_int_equal (json_array_size (json_object_get (doc, "redirect_uris")), 2);
    assert_int_equal (json_array_size (json_object_get (doc, "grant_types")), 2);
    assert_string_equal (json_string_value (json_array_get (json_object_get (doc, "response_types"), 0)),
                         "code");
    assert_int_equal (s_scalar ("SELECT count(*) FROM oauth_clients WHERE client_id = $1 "
                                "AND kind = 'registered' AND client_secret_hash IS NULL", client_id), 1);

    //  The lookup every module uses finds it
    json_t *found = s_find (client_id);
    assert_true (json_is_true (json_object_get (found, "found")));
    assert_string_equal (json_string_value (json_object_get (found, "kind")), "registered");
    assert_string_equal (json_string_value (json_object_get (found, "auth")), "none");
    assert_false (json_is_true (json_object_get (found, "has_secret")));
    assert_false (json_is_true (json_object_get (found, "chatgpt")));
    assert_string_equal (json_string_value (json_array_get (json_object_get (found, "redirect_uris"), 1)),
                         "http://127.0.0.1:9/cb");
    json_decref (found);
    json_decref (doc);
}

static void
test_register_confidential (void **state)
{
    //  RFC 7591's default method is client_secret_basic
    json_t *doc = s_register_ok ("{\"redirect_uris\":[\"https://app.example/cb\"]}", "198.51.100.2");
    const char *client_id = json_string_value (json_object_get (doc, "client_id"));
    const char *secret = json_string_value (json_object_get (doc, "client_secret"));
    assert_non_null (client_id);
    assert_non_null (secret);
    assert_int_equal (strlen (secret), 43);
    assert_true (json_is_integer (json_object_get (doc, "client_secret_expires_at")));
    assert_int_equal (json_integer_value (json_object_get (doc, "client_secret_expires_at")), 0);
    assert_string_equal (json_string_value (json_object_get (doc, "token_endpoint_auth_method")),
                         "client_secret_basic");

    //  Stored: the SHA-256 only; the secret is nowhere in the row
    uint8_t digest [32];
    char hex [65];
    sb_sha256 (secret, strlen (secret), digest);
    sb_hex_encode (digest, sizeof digest, hex);
    char *stored = s_text ("SELECT encode (client_secret_hash, 'hex') FROM oauth_clients WHERE client_id = $1",
                           client_id);
    assert_non_null (stored);
    assert_string_equal (stored, hex);
    free (stored);
    char *row = s_text ("SELECT row_to_json (c)::text FROM oauth_clients c WHERE client_id = $1", client_id);
    assert_non_null (row);
    assert_null (strstr (row, secret));
    free (row);

    json_t *found = s_find (client_id);
    assert_true (json_is_true (json_object_get (found, "has_secret")));
    json_decref (found);

    //  client_secret_post too; two registrations never share an ID or secret
    json_t *post = s_register_ok ("{\"redirect_uris\":[\"https://app.example/cb\"],"
                                  "\"token_endpoint_auth_method\":\"client_secret_post\"}", "198.51.100.2");
    assert_string_not_equal (json_string_value (json_object_get (post, "client_id")), client_id);
    assert_string_not_equal (json_string_value (json_object_get (post, "client_secret")), secret);
    json_decref (post);
    json_decref (doc);
}

static void
test_register_chatgpt (void **state)
{
    json_t *doc = s_register_ok ("{\"redirect_uris\":[\"" SB_OAUTH_CHATGPT_REDIRECT "\"],"
                                 "\"token_endpoint_auth_method\":\"none\",\"client_name\":\"ChatGPT\"}",
                                 "198.51.100.3");
    const char *client_id = json_string_value (json_object_get (doc, "client_id"));
    json_t *found = s_find (client_id);
    assert_true (json_is_true (json_object_get (found, "chatgpt")));

    //  /authorize accepts ChatGPT's other form for this client (the core's
    //  check with the row as the token worker hands it over)
    const char *uris [] = { SB_OAUTH_CHATGPT_REDIRECT };
    sb_oauth_client_t client = {
        .client_id = client_id, .redirect_uris = uris, .redirect_uri_count = 1,
        .chatgpt = json_is_true (json_object_get (found, "chatgpt"))
    };
    sb_oauth_policy_t policy = { SB_OAUTH_SCOPES_SUPPORTED, SB_OAUTH_SCOPE_DEFAULT, NULL };
    char query [1024];
    snprintf (query, sizeof query, "response_type=code&client_id=%s&redirect_uri="
              "https%%3A%%2F%%2Fchatgpt.com%%2Fconnector%%2Foauth%%2Fabc123&state=s1"
              "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
              client_id);
    sb_oauth_authorize_outcome_t *outcome = calloc (1, sizeof *outcome);
    sb_oauth_authorize_validate (query, strlen (query), &client, &policy, outcome);
    assert_int_equal (outcome->kind, SB_OAUTH_VALID);
    assert_string_equal (outcome->request.redirect_uri, "https://chatgpt.com/connector/oauth/abc123");
    //  …and a client without ChatGPT's URI does not get it
    client.chatgpt = false;
    sb_oauth_authorize_validate (query, strlen (query), &client, &policy, outcome);
    assert_int_equal (outcome->kind, SB_OAUTH_REFUSED);
    free (outcome);
    json_decref (found);
    json_decref (doc);
}

static void
test_register_refused (void **state)
{
    static const struct {
        const char *method;
        const char *body;
        const char *error;
    } cases [] = {
        { "POST", "not json", "invalid_client_metadata" },
        { "POST", "[1]", "invalid_client_metadata" },
        { "POST", "{}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[]}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":\"https://app.example/cb\"}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[\"http://app.example/cb\"]}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb#frag\"]}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[\"https://u:p@app.example/cb\"]}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[\"app.example/cb\"]}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[1]}", "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[\"https://a.example/1\",\"https://a.example/2\",\"https://a.example/3\","
                  "\"https://a.example/4\",\"https://a.example/5\",\"https://a.example/6\","
                  "\"https://a.example/7\",\"https://a.example/8\",\"https://a.example/9\"]}",
          "invalid_redirect_uri" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"token_endpoint_auth_method\":"
                  "\"private_key_jwt\"}", "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"grant_types\":[\"client_credentials\"]}",
          "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"grant_types\":[\"refresh_token\"]}",
          "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"grant_types\":[]}",
          "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"response_types\":[\"token\"]}",
          "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"scope\":\"admin\"}",
          "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"scope\":7}",
          "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"client_name\":{}}",
          "invalid_client_metadata" },
        { "POST", "{\"redirect_uris\":[\"https://app.example/cb\"],\"redirect_uris\":[\"https://b.example/\"]}",
          "invalid_client_metadata" },
        { "GET", "", "invalid_request" },
    };
    long before = s_scalar ("SELECT count(*) FROM oauth_clients", NULL);
    char remote [32];
    for (size_t at = 0; at < sizeof cases / sizeof cases [0]; at++) {
        //  A remote per few cases: the rate limit is tested on its own
        snprintf (remote, sizeof remote, "192.0.2.%zu", at / 5 + 10);
        sb_http_response_t response;
        s_register (cases [at].method, cases [at].body, remote, &response);
        if (response.status != 400)
            fail_msg ("case %zu: status %d: %s", at, response.status, response.body);
        json_t *doc = json_loads (response.body, 0, NULL);
        assert_non_null (doc);
        const char *error = json_string_value (json_object_get (doc, "error"));
        if (!error || strcmp (error, cases [at].error) != 0)
            fail_msg ("case %zu: %s, not %s", at, response.body, cases [at].error);
        assert_true (json_string_length (json_object_get (doc, "error_description")) > 0);
        json_decref (doc);
        sb_http_response_clear (&response);
    }
    //  A too-long client_name
    char *body = NULL;
    char name [SB_OAUTH_MAX_CLIENT_NAME + 2];
    memset (name, 'n', sizeof name - 1);
    name [sizeof name - 1] = 0;
    assert_true (asprintf (&body, "{\"redirect_uris\":[\"https://app.example/cb\"],\"client_name\":\"%s\"}",
                           name) > 0);
    sb_http_response_t response;
    s_register ("POST", body, "192.0.2.99", &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "invalid_client_metadata"));
    sb_http_response_clear (&response);
    free (body);
    //  None of them changed anything
    assert_int_equal (s_scalar ("SELECT count(*) FROM oauth_clients", NULL), before);
}

static void
test_register_rate_limit (void **state)
{
    const char *body = "{\"redirect_uris\":[\"https://app.example/cb\"],\"token_endpoint_auth_method\":\"none\"}";
    for (int at = 0; at < 10; at++) {
        json_t *doc = s_register_ok (body, "203.0.113.50");
        json_decref (doc);
    }
    long before = s_scalar ("SELECT count(*) FROM oauth_clients", NULL);
    sb_http_response_t response;
    s_register ("POST", body, "203.0.113.50", &response);
    assert_int_equal (response.status, 429);
    const char *retry = sb_http_response_header (&response, "retry-after");
    assert_non_null (retry);
    long seconds = strtol (retry, NULL, 10);
    assert_true (seconds >= 1 && seconds <= 60);
    assert_non_null (strstr (response.body, "\"invalid_request\""));
    sb_http_response_clear (&response);
    assert_int_equal (s_scalar ("SELECT count(*) FROM oauth_clients", NULL), before);
    //  Another address is not limited by that one
    json_t *doc = s_register_ok (body, "203.0.113.51");
    json_decref (doc);
}

//  ---------------------------------------------------------------------
//  Client ID Metadata Documents

static void
test_cimd_good_and_cached (void **state)
{
    char url [256];
    s_url (url, sizeof url, "127.0.0.1", "/good.json");
    int requests = atomic_load (&s_server.requests);
    int fetches = s_fetches ();
    json_t *found = s_find (url);
    assert_true (json_is_true (json_object_get (found, "found")));
    assert_string_equal (json_string_value (json_object_get (found, "kind")), "metadata_document");
    assert_string_equal (json_string_value (json_object_get (found, "auth")), "none");
    assert_string_equal (json_string_value (json_object_get (found, "client_name")), "Doc /good.json");
    assert_string_equal (json_string_value (json_array_get (json_object_get (found, "redirect_uris"), 0)),
                         "https://app.example/cb");
    json_decref (found);
    assert_int_equal (atomic_load (&s_server.requests), requests + 1);
    assert_int_equal (s_fetches (), fetches + 1);
    //  max-age=600: cached for that long
    assert_int_equal (s_scalar ("SELECT extract (epoch FROM metadata_expires_at - metadata_fetched_at)::int"
                                "  FROM oauth_clients WHERE client_id = $1", url), 600);

    //  The second lookup is served by the row: no request
    assert_true (s_found (url));
    assert_int_equal (atomic_load (&s_server.requests), requests + 1);
    assert_int_equal (s_fetches (), fetches + 1);
}

//  Concurrent lookups of one URL share one fetch.
static void
test_cimd_single_flight (void **state)
{
    char url [256];
    s_url (url, sizeof url, "127.0.0.1", "/flight.json");
    int requests = atomic_load (&s_server.requests);
    enum { LOOKUPS = 4 };
    for (int at = 0; at < LOOKUPS; at++) {
        char corr_id [32];
        snprintf (corr_id, sizeof corr_id, "flight-%d", at);
        sb_job_t job = { .op = sb_unconst ("test/find"), .data = url };
        zframe_t *payload = sb_job_encode (&job);
        assert_int_equal (fake_broker_send_job (s_w.broker, corr_id, JOB_TIMEOUT_MS, 0, &payload), 0);
    }
    for (int at = 0; at < LOOKUPS; at++) {
        sb_msg_t msg = { 0 };
        assert_int_equal (fake_broker_recv (s_w.broker, &msg, WAIT_MS), 0);
        assert_int_equal (msg.command, SB_CMD_RESULT);
        sb_job_result_t result = { 0 };
        assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload),
                                                &result), 0);
        assert_non_null (strstr (result.result, "\"found\":true"));
        sb_job_result_clear (&result);
        sb_msg_reset (&msg);
    }
    assert_int_equal (atomic_load (&s_server.requests), requests + 1);
}

//  Each refused document: the client is unknown, and nothing is stored.
static void
s_refused (const char *host, const char *path, bool reaches_server)
{
    char url [256];
    s_url (url, sizeof url, host, path);
    int requests = atomic_load (&s_server.requests);
    if (s_found (url))
        fail_msg ("%s was accepted", url);
    assert_int_equal (s_scalar ("SELECT count(*) FROM oauth_clients WHERE client_id = $1", url), 0);
    assert_int_equal (atomic_load (&s_server.requests), requests + (reaches_server? 1: 0));
}

static void
test_cimd_refused (void **state)
{
    s_refused ("127.0.0.1", "/other.json", true);       //  client_id is not the URL
    s_refused ("127.0.0.1", "/big.json", true);         //  past SB_CIMD_MAX_BYTES
    s_refused ("127.0.0.1", "/redirect.json", true);    //  302: not followed
    s_refused ("127.0.0.1", "/jwt.json", true);         //  private_key_jwt
    s_refused ("127.0.0.1", "/secret.json", true);      //  a shared secret
    s_refused ("127.0.0.1", "/missing.json", true);     //  404
    s_refused ("127.0.0.1", "/noname.json", true);      //  no client_name
    s_refused ("127.0.0.1", "/notjson.json", true);     //  not JSON
    s_refused ("127.0.0.1", "/down.json", true);        //  503, nothing cached
    int64_t start = sb_harness_now_ms ();
    s_refused ("127.0.0.1", "/slow.json", true);        //  past SB_CIMD_FETCH_MS
    assert_true (sb_harness_now_ms () - start < SLOW_MS);
    //  URLs that are never fetched
    char url [256];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/good.json", s_server.port);
    int requests = atomic_load (&s_server.requests);
    assert_false (s_found (url));                       //  http://
    s_url (url, sizeof url, "127.0.0.1", "/");
    assert_false (s_found (url));                       //  no path
    s_url (url, sizeof url, "127.0.0.1", "/a/../good.json");
    assert_false (s_found (url));                       //  a dot segment
    s_url (url, sizeof url, "127.0.0.1", "/good.json#x");
    assert_false (s_found (url));                       //  a fragment
    assert_int_equal (atomic_load (&s_server.requests), requests);
}

//  A lookup whose job passes its deadline while the document is fetched
//  is abandoned (no answer, nothing freed twice); the fetch goes on and a
//  later lookup of the same URL still gets its outcome.
static void
test_cimd_abandoned (void **state)
{
    char url [256];
    s_url (url, sizeof url, "127.0.0.1", "/abandon.json");
    sb_job_t job = { .op = sb_unconst ("test/find"), .data = url };
    zframe_t *payload = sb_job_encode (&job);
    assert_int_equal (fake_broker_send_job (s_w.broker, "abandon-1", 300, 0, &payload), 0);
    //  The next answer the broker gets is this lookup's, not the abandoned one's
    assert_false (s_found (url));
    assert_int_equal (s_scalar ("SELECT count(*) FROM oauth_clients WHERE client_id = $1", url), 0);
}

//  Without --cimd-allow-hosts: loopback by address and by a name that
//  resolves to it are refused at connect time (no request reaches the server).
static void
test_cimd_ssrf (void **state)
{
    int fetches = s_fetches ();
    s_refused ("127.0.0.1", "/ssrf.json", false);
    s_refused ("localhost", "/ssrf.json", false);
    s_refused ("[::1]", "/ssrf.json", false);
    assert_int_equal (s_fetches (), fetches + 3);       //  they were tried, and stopped at the socket
}

//  A stale row is refetched; an unreachable host leaves a recent row
//  serving, an old one not.
static void
test_cimd_stale (void **state)
{
    char url [256];
    s_url (url, sizeof url, "127.0.0.1", "/stale.json");
    assert_true (s_found (url));
    int requests = atomic_load (&s_server.requests);
    s_scalar ("UPDATE oauth_clients SET metadata_expires_at = now () - interval '1 s',"
              "       metadata_fetched_at = now () - interval '2 h' WHERE client_id = $1", url);
    assert_true (s_found (url));                        //  refetched
    assert_int_equal (atomic_load (&s_server.requests), requests + 1);
    assert_int_equal (s_scalar ("SELECT count(*) FROM oauth_clients WHERE client_id = $1"
                                "   AND metadata_expires_at > now ()", url), 1);
    //  The host goes down: the row fetched an hour ago still serves…
    s_route_status ("/stale.json", 503);
    s_scalar ("UPDATE oauth_clients SET metadata_expires_at = now () - interval '1 s',"
              "       metadata_fetched_at = now () - interval '1 h' WHERE client_id = $1", url);
    assert_true (s_found (url));
    assert_int_equal (atomic_load (&s_server.requests), requests + 2);
    //  …one fetched two days ago does not
    s_scalar ("UPDATE oauth_clients SET metadata_fetched_at = now () - interval '2 days'"
              " WHERE client_id = $1", url);
    assert_false (s_found (url));
    assert_int_equal (atomic_load (&s_server.requests), requests + 3);
    s_route_status ("/stale.json", 200);
    //  A revoked document client stays unknown and is not refetched
    s_scalar ("UPDATE oauth_clients SET revoked_at = now () WHERE client_id = $1", url);
    assert_false (s_found (url));
    assert_int_equal (atomic_load (&s_server.requests), requests + 3);
}

//  The guard's address rules, directly.
static void
test_cimd_address_rules (void **state)
{
    static const struct {
        const char *addr;
        bool allowed;
    } cases [] = {
        { "93.184.216.34", true }, { "8.8.8.8", true }, { "2606:4700::1111", true },
        { "127.0.0.1", false }, { "127.255.0.9", false }, { "10.1.2.3", false },
        { "172.16.0.1", false }, { "172.31.255.255", false }, { "172.32.0.1", true },
        { "192.168.1.1", false }, { "169.254.169.254", false }, { "100.64.0.1", false },
        { "100.127.255.255", false }, { "100.128.0.1", true }, { "0.0.0.0", false },
        { "224.0.0.1", false }, { "255.255.255.255", false }, { "198.18.0.1", false },
        { "::", false }, { "::1", false }, { "::ffff:127.0.0.1", false }, { "::ffff:10.0.0.1", false },
        { "::ffff:169.254.169.254", false }, { "::ffff:93.184.216.34", true }, { "::127.0.0.1", false },
        { "fc00::1", false }, { "fd12:3456::1", false }, { "fe80::1", false }, { "ff02::1", false },
        { "64:ff9b::a9fe:a9fe", false }, { "64:ff9b::5db8:d822", true }, { "2002:7f00:1::", false },
        { "2001:db8::1", false },
    };
    for (size_t at = 0; at < sizeof cases / sizeof cases [0]; at++) {
        struct sockaddr_storage storage = { 0 };
        struct sockaddr_in *in4 = (struct sockaddr_in *) &storage;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &storage;
        if (inet_pton (AF_INET, cases [at].addr, &in4->sin_addr) == 1)
            in4->sin_family = AF_INET;
        else {
            assert_int_equal (inet_pton (AF_INET6, cases [at].addr, &in6->sin6_addr), 1);
            in6->sin6_family = AF_INET6;
        }
        if (sb_cimd_address_allowed (NULL, (struct sockaddr *) &storage) != cases [at].allowed)
            fail_msg ("%s: expected %s", cases [at].addr, cases [at].allowed? "allowed": "refused");
    }
    assert_true (sb_cimd_url_valid ("https://app.example/client.json"));
    assert_true (sb_cimd_url_valid ("https://app.example:8443/c?v=1"));
    assert_false (sb_cimd_url_valid ("https://app.example"));
    assert_false (sb_cimd_url_valid ("https://app.example/"));
    assert_false (sb_cimd_url_valid ("https://u@app.example/c"));
    assert_false (sb_cimd_url_valid ("https://app.example/./c"));
    assert_false (sb_cimd_url_valid ("https://app.example/c/.."));
    assert_false (sb_cimd_url_valid ("http://app.example/c"));
    assert_false (sb_cimd_url_valid ("https://app.example/c#f"));
}

//  sb-worker refuses to start on an --cimd-allow-hosts entry that is not
//  an IP address (a name would be resolved anew each time: not a guard).
static void
test_cimd_bad_allow_list (void **state)
{
    char db [1024];
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    char migrations [512];
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", "tcp://127.0.0.1:1", db,
        migrations, "--cimd-allow-hosts", "127.0.0.1,localhost", NULL
    };
    pid_t pid = sb_harness_spawn (argv, NULL);
    assert_true (pid > 0);
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_not_equal (WEXITSTATUS (status), 0);
}

//  ---------------------------------------------------------------------

static int
s_group_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_dir, sizeof s_dir, "%s/cimd-test.XXXXXX", SB_BIN_DIR);
    if (!mkdtemp (s_dir))
        return -1;
    s_server.stop [0] = s_server.stop [1] = -1;
    s_make_certificates ();
    s_server_start ();
    return 0;
}

static int
s_group_teardown (void **state)
{
    s_server_stop ();
    const char *argv [] = { "/bin/rm", "-rf", s_dir, NULL };
    s_run (argv);
    free (s_conninfo);
    return 0;
}

static int
s_allowed_setup (void **state)
{
    s_worker_start ("127.0.0.1");
    return 0;
}

static int
s_strict_setup (void **state)
{
    s_worker_start ("");
    return 0;
}

static int
s_worker_teardown (void **state)
{
    s_worker_stop ();
    return 0;
}

int
main (void)
{
    sb_log_init ("test", SB_LOG_WARN);
    //  The slow routes answer after the worker gave up and closed
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_cimd_address_rules),
        cmocka_unit_test (test_cimd_bad_allow_list),
        cmocka_unit_test_setup_teardown (test_register_public, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_register_confidential, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_register_chatgpt, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_register_refused, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_register_rate_limit, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_cimd_good_and_cached, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_cimd_single_flight, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_cimd_refused, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_cimd_stale, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_cimd_abandoned, s_allowed_setup, s_worker_teardown),
        cmocka_unit_test_setup_teardown (test_cimd_ssrf, s_strict_setup, s_worker_teardown),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
