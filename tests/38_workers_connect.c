/*  tests/38_workers_connect.c — the token worker's connect flow
    (workers/sb_connect.c; proto/PROTOCOL.md "Connections", "Connect") as a
    real sb-worker --role token process against a fake broker, the real
    test PostgreSQL and a fake provider token endpoint in this process,
    driven by HTTP jobs as the gateway sends them:

      - tickets: sb_connect_url's link opens the page; a forged MAC, an
        altered payload, an expired ticket and one for another connector
        are refused with a page (the last two audited as connect_refused);
      - the page: its security headers, the connector's title, tenant and
        subject escaped, the user's email for user:<id>, the warning line,
        the form (ticket and CSRF field), the CSRF cookie; an API-key
        connector's page sends to sb-admin;
      - POST: refused without the CSRF pair or from another origin; else
        302 to the provider with every parameter, the flow cookie, and a
        connect_flows row holding the state's and cookie's SHA-256;
      - the callback: the code exchanged with the verifier whose S256 was
        the challenge, a connected row whose sealed secrets open under the
        data key, the page; the state used again, a wrong or missing
        cookie, an expired flow, the provider's invalid_grant (no row),
        access_denied: each a page, the refusals audited;
      - a callback cancelled while the provider answers, and an http
        loopback issuer's cookies (no __Host-, no Secure).

    Tenants of this run start with a prefix unique to it; deleted at the end. */
#include <arpa/inet.h>
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_conn.h"
#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_oauth_form.h"
#include "sb_token_int.h"

#define HEARTBEAT_MS    500
#define WAIT_MS         20000       /* a RESULT, at most */
#define ISSUER          "https://auth.example.test"
#define AUTHORIZE_URL   "https://provider.example/oauth/authorize"
#define CLIENT_ID       "client-1"
#define SECRET          "switchboard-tests-shared-master-secret-connection-keys-01"
#define SECRET_FILE     SB_SOURCE_DIR "/tests/fixtures/conn-master-secret"
                                    /* connection_keys is one per cluster: every test that
                                       seals uses this master secret (its first line) */
#define TITLE           "Acme <CRM> & \"Co\""
#define SUBJECT_EVIL    "svc:<b>\"x\"&'y'"

static fake_broker_t *s_broker;     /* the fake broker the worker registers with */
static pid_t s_pid = -1;            /* the sb-worker --role token process */
static char *s_conninfo;            /* the test PostgreSQL */
static char s_prefix [32];          /* tenants of this run start with it */
static char s_tenant [64];          /* the run's tenant */
static char s_tenant2 [64];         /* a second one, for the refused exchange */
static char s_user [32];            /* "user:<id>" of alice */
static char s_dir [64];             /* the connectors */
static int s_seq;                   /* numbers correlation ids */
static sb_token_role_t *s_role;     /* issuer and secret only: tickets, subkeys */

//  ---------------------------------------------------------------------
//  A provider's token endpoint: HTTP/1.1, one request per connection

typedef struct {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    bool refuse;                    /* answer invalid_grant */
    bool hold;                      /* answer only once released */
    pthread_cond_t released;
    int requests;
    char body [4096];               /* the last request's body */
} s_provider_t;

static s_provider_t s_provider;

static void
s_provider_serve (int fd)
{
    char buf [8192];
    size_t len = 0;
    char *end = NULL;
    while (len < sizeof buf - 1 && !end) {
        ssize_t n = recv (fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return;
        len += (size_t) n;
        buf [len] = 0;
        end = strstr (buf, "\r\n\r\n");
    }
    if (!end)
        return;
    size_t content_length = 0;
    for (char *p = buf; p < end; p = strstr (p, "\r\n") + 2)
        if (strncasecmp (p, "content-length:", 15) == 0)
            content_length = strtoul (p + 15, NULL, 10);
    size_t head = (size_t) (end + 4 - buf);
    while (len < head + content_length && len < sizeof buf - 1) {
        ssize_t n = recv (fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return;
        len += (size_t) n;
    }
    buf [len] = 0;
    pthread_mutex_lock (&s_provider.lock);
    s_provider.requests++;
    snprintf (s_provider.body, sizeof s_provider.body, "%s", buf + head);
    while (s_provider.hold && !s_provider.stop)
        pthread_cond_wait (&s_provider.released, &s_provider.lock);
    bool refuse = s_provider.refuse;
    int n = s_provider.requests;
    pthread_mutex_unlock (&s_provider.lock);
    char body [512];
    if (refuse)
        snprintf (body, sizeof body, "{\"error\":\"invalid_grant\",\"error_description\":\"no\"}");
    else
        snprintf (body, sizeof body, "{\"access_token\":\"at-%d\",\"refresh_token\":\"rt-%d\","
                  "\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"read write\","
                  "\"instance_url\":\"https://instance.example\"}", n, n);
    char answer [1024];
    int answer_len = snprintf (answer, sizeof answer, "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                               refuse? "400 Bad Request": "200 OK", strlen (body), body);
    ssize_t sent = send (fd, answer, (size_t) answer_len, MSG_NOSIGNAL);
    (void) sent;
}

static void *
s_provider_run (void *arg)
{
    while (true) {
        pthread_mutex_lock (&s_provider.lock);
        bool stop = s_provider.stop;
        pthread_mutex_unlock (&s_provider.lock);
        if (stop)
            break;
        struct pollfd pfd = { .fd = s_provider.fd, .events = POLLIN };
        if (poll (&pfd, 1, 50) != 1)
            continue;
        int fd = accept (s_provider.fd, NULL, NULL);
        if (fd < 0)
            continue;
        s_provider_serve (fd);
        close (fd);
    }
    return NULL;
}

static int
s_provider_start (void)
{
    pthread_mutex_init (&s_provider.lock, NULL);
    pthread_cond_init (&s_provider.released, NULL);
    s_provider.fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t addr_len = sizeof addr;
    if (s_provider.fd < 0 || bind (s_provider.fd, (struct sockaddr *) &addr, sizeof addr)
    ||  listen (s_provider.fd, 16) || getsockname (s_provider.fd, (struct sockaddr *) &addr, &addr_len))
        return -1;
    s_provider.port = ntohs (addr.sin_port);
    return pthread_create (&s_provider.thread, NULL, s_provider_run, NULL);
}

static void
s_provider_stop (void)
{
    pthread_mutex_lock (&s_provider.lock);
    s_provider.stop = true;
    pthread_cond_broadcast (&s_provider.released);
    pthread_mutex_unlock (&s_provider.lock);
    pthread_join (s_provider.thread, NULL);
    close (s_provider.fd);
}

static int
s_provider_requests (char *body, size_t size)
{
    pthread_mutex_lock (&s_provider.lock);
    int requests = s_provider.requests;
    if (body)
        snprintf (body, size, "%s", s_provider.body);
    pthread_mutex_unlock (&s_provider.lock);
    return requests;
}

//  Holds (or releases) the provider's answers.
static void
s_provider_hold (bool hold)
{
    pthread_mutex_lock (&s_provider.lock);
    s_provider.hold = hold;
    pthread_cond_broadcast (&s_provider.released);
    pthread_mutex_unlock (&s_provider.lock);
}

static void
s_provider_refuse (bool refuse)
{
    pthread_mutex_lock (&s_provider.lock);
    s_provider.refuse = refuse;
    pthread_mutex_unlock (&s_provider.lock);
}

//  ---------------------------------------------------------------------
//  The database

static PGconn *
s_pg (void)
{
    PGconn *conn = PQconnectdb (s_conninfo);
    assert_int_equal (PQstatus (conn), CONNECTION_OK);
    PQclear (PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)"));
    return conn;
}

static PGresult *
s_sql (PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams (conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus (res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    return res;
}

//  The first value of one-row `sql` as a number.
static long
s_sql_long (const char *sql, int nparams, const char *const *params)
{
    PGconn *conn = s_pg ();
    PGresult *res = s_sql (conn, sql, nparams, params);
    assert_int_equal (PQntuples (res), 1);
    long value = strtol (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    PQfinish (conn);
    return value;
}

static long
s_audit_count (const char *tenant, const char *reason)
{
    const char *params [] = { tenant, reason };
    return s_sql_long ("SELECT count (*) FROM audit_log WHERE tenant_id = $1 "
                       "AND action = 'connect_refused' AND detail->>'reason' = $2", 2, params);
}

//  ---------------------------------------------------------------------
//  HTTP jobs

//  Sends an HTTP job; its corr_id into `corr_id`.
static void
s_send (const char *op, const char *method, const char *path, const char *query,
        const char *body, const char *const headers [], char corr_id [32])
{
    sb_http_request_t request = { 0 };
    request.method = strdup (method);
    request.path = strdup (path);
    request.query = strdup (query? query: "");
    request.body = strdup (body? body: "");
    request.body_len = strlen (request.body);
    request.remote = strdup ("203.0.113.7");
    if (body)
        assert_int_equal (sb_http_request_add_header (&request, "content-type",
                                                      "application/x-www-form-urlencoded"), 0);
    for (size_t i = 0; headers && headers [i]; i += 2)
        assert_int_equal (sb_http_request_add_header (&request, headers [i], headers [i + 1]), 0);
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    sb_http_request_clear (&request);
    char op_copy [32];
    snprintf (op_copy, sizeof op_copy, "%s", op);
    sb_job_t job = { .op = op_copy, .data = data };
    zframe_t *payload = sb_job_encode (&job);
    free (data);
    assert_non_null (payload);
    snprintf (corr_id, 32, "c%d", ++s_seq);
    assert_int_equal (fake_broker_send_job (s_broker, corr_id, WAIT_MS, 0, &payload), 0);
}

//  The HTTP response of `corr_id` (the next RESULT must be it).
static void
s_wait (const char *corr_id, sb_http_response_t *response)
{
    sb_status_t status;
    char *json = NULL;
    if (fake_broker_result (s_broker, corr_id, WAIT_MS, &status, &json))
        fail_msg ("no RESULT %s", corr_id);
    if (status != SB_STATUS_OK)
        fail_msg ("%s: status %s: %s", corr_id, sb_status_name (status), json);
    const char *why = NULL;
    memset (response, 0, sizeof *response);
    if (sb_http_response_decode (json, strlen (json), response, &why))
        fail_msg ("%s: %s", why, json);
    free (json);
}

static void
s_http (const char *op, const char *method, const char *path, const char *query,
        const char *body, const char *const headers [], sb_http_response_t *response)
{
    char corr_id [32];
    s_send (op, method, path, query, body, headers, corr_id);
    s_wait (corr_id, response);
}

//  GET /connect/<connector>?ticket=<ticket> (the ticket escaped).
static void
s_get_page (const char *connector, const char *ticket, sb_http_response_t *response)
{
    char path [128], query [4096];
    snprintf (path, sizeof path, "/connect/%s", connector);
    char *escaped = NULL;
    size_t len = 0;
    assert_int_equal (sb_oauth_query_append (&escaped, &len, 4000, ticket, true), 0);
    snprintf (query, sizeof query, "ticket=%s", escaped);
    free (escaped);
    s_http ("connect/start", "GET", path, query, NULL, NULL, response);
}

//  A ticket of `connector` for the run's tenant and `subject`: the part of
//  sb_connect_url's link after "ticket=".
static char *
s_ticket (const char *tenant, const char *subject, const char *connector)
{
    char *url = sb_connect_url (s_role, tenant, subject, connector);
    assert_non_null (url);
    char prefix [256];
    snprintf (prefix, sizeof prefix, ISSUER "/connect/%s?ticket=", connector);
    assert_int_equal (strncmp (url, prefix, strlen (prefix)), 0);
    char *ticket = strdup (url + strlen (prefix));
    free (url);
    return ticket;
}

//  A ticket signed here with payload `json` (for an expired one).
static char *
s_ticket_signed (const char *json)
{
    uint8_t key [SB_TOKEN_SUBKEY_LEN], mac [SB_HMAC_SHA256_LEN];
    assert_int_equal (sb_token_subkey (s_role, "connect-ticket", key), 0);
    char *payload = sb_base64url_encode ((const uint8_t *) json, strlen (json));
    sb_hmac_sha256 (key, sizeof key, (const uint8_t *) payload, strlen (payload), mac);
    char *mac_text = sb_base64url_encode (mac, sizeof mac);
    size_t size = strlen (payload) + strlen (mac_text) + 2;
    char *ticket = malloc (size);
    snprintf (ticket, size, "%s.%s", payload, mac_text);
    free (payload);
    free (mac_text);
    return ticket;
}

//  The value of hidden field `name` in `page`. Fails when absent.
static void
s_field (const char *page, const char *name, char *value, size_t size)
{
    char needle [96];
    snprintf (needle, sizeof needle, "name=\"%s\" value=\"", name);
    const char *at = strstr (page, needle);
    if (!at)
        fail_msg ("no hidden field %s", name);
    at += strlen (needle);
    size_t len = strcspn (at, "\"");
    assert_true (len < size);
    memcpy (value, at, len);
    value [len] = 0;
}

//  The "name=value" of the response's Set-Cookie.
static void
s_cookie (const sb_http_response_t *response, char *cookie, size_t size)
{
    const char *set = sb_http_response_header (response, "set-cookie");
    assert_non_null (set);
    size_t len = strcspn (set, ";");
    assert_true (len < size);
    memcpy (cookie, set, len);
    cookie [len] = 0;
}

static void
s_assert_page_headers (const sb_http_response_t *response)
{
    assert_string_equal (sb_http_response_header (response, "content-type"), "text/html; charset=utf-8");
    assert_string_equal (sb_http_response_header (response, "cache-control"), "no-store");
    assert_string_equal (sb_http_response_header (response, "x-frame-options"), "DENY");
    assert_string_equal (sb_http_response_header (response, "x-content-type-options"), "nosniff");
    assert_string_equal (sb_http_response_header (response, "referrer-policy"), "same-origin");
    assert_non_null (strstr (sb_http_response_header (response, "content-security-policy"),
                             "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
                             "base-uri 'none'; form-action 'self'"));
    assert_null (strstr (response->body, "<script"));
}

//  A flow started for `tenant`: the page's CSRF pair, the POST's 302.
//  `state` gets the state sent to the provider, `cookie` the flow's
//  "name=value", `challenge` the code challenge (each may be NULL).
static void
s_start_flow (const char *tenant, char state [64], char cookie [128], char challenge [64])
{
    char *ticket = s_ticket (tenant, s_user, "acme");
    sb_http_response_t response;
    s_get_page ("acme", ticket, &response);
    assert_int_equal (response.status, 200);
    char csrf_cookie [128], csrf [64], body [4096];
    s_cookie (&response, csrf_cookie, sizeof csrf_cookie);
    s_field (response.body, "csrf", csrf, sizeof csrf);
    sb_http_response_clear (&response);
    snprintf (body, sizeof body, "ticket=%s&csrf=%s", ticket, csrf);
    free (ticket);
    const char *headers [] = { "cookie", csrf_cookie, "origin", ISSUER, NULL };
    s_http ("connect/start", "POST", "/connect/acme", NULL, body, headers, &response);
    assert_int_equal (response.status, 302);
    const char *location = sb_http_response_header (&response, "location");
    const char *query = strchr (location, '?');
    assert_non_null (query);
    sb_oauth_form_t *form = NULL;
    assert_int_equal (sb_oauth_form_parse (query + 1, strlen (query + 1), &form, NULL, 0), 0);
    if (state)
        snprintf (state, 64, "%s", sb_oauth_form_get (form, "state"));
    if (challenge)
        snprintf (challenge, 64, "%s", sb_oauth_form_get (form, "code_challenge"));
    if (cookie)
        s_cookie (&response, cookie, 128);
    sb_oauth_form_destroy (&form);
    sb_http_response_clear (&response);
}

//  GET /connect/callback?<query> with `cookie` (NULL: none).
static void
s_callback (const char *query, const char *cookie, sb_http_response_t *response)
{
    const char *headers [] = { "cookie", cookie, NULL };
    s_http ("connect/callback", "GET", "/connect/callback", query, NULL, cookie? headers: NULL,
            response);
}

//  Opens a connection's `column` ("access", "refresh") of `tenant`: the
//  data key from connection_keys (sealed under subkey "connection-keys",
//  its ID as associated data), then the column (associated data
//  "<tenant>/acme/<column>"). A new string.
static char *
s_open_secret (const char *tenant, const char *column)
{
    PGconn *conn = s_pg ();
    const char *params [] = { tenant };
    PGresult *res = s_sql (conn, column [0] == 'a'?
                           "SELECT c.key_id, encode (c.access_token_enc, 'hex'), "
                           "encode (k.sealed_key, 'hex') FROM connections c "
                           "JOIN connection_keys k ON k.id = c.key_id "
                           "WHERE c.tenant_id = $1 AND c.connector = 'acme'":
                           "SELECT c.key_id, encode (c.refresh_token_enc, 'hex'), "
                           "encode (k.sealed_key, 'hex') FROM connections c "
                           "JOIN connection_keys k ON k.id = c.key_id "
                           "WHERE c.tenant_id = $1 AND c.connector = 'acme'", 1, params);
    assert_int_equal (PQntuples (res), 1);
    uint8_t sealed_key [64], data_key [SB_AEAD_KEY_LEN], sealed [1024];
    size_t sealed_key_len = 0, data_key_len = 0, sealed_len = 0;
    assert_int_equal (sb_hex_decode (PQgetvalue (res, 0, 2), sealed_key, sizeof sealed_key,
                                     &sealed_key_len), 0);
    assert_int_equal (sb_hex_decode (PQgetvalue (res, 0, 1), sealed, sizeof sealed, &sealed_len), 0);
    uint8_t master [SB_TOKEN_SUBKEY_LEN];
    assert_int_equal (sb_token_subkey (s_role, "connection-keys", master), 0);
    const char *key_id = PQgetvalue (res, 0, 0);
    assert_int_equal (sb_aead_open (master, key_id, strlen (key_id), sealed_key, sealed_key_len,
                                    data_key, sizeof data_key, &data_key_len), 0);
    assert_int_equal (data_key_len, SB_AEAD_KEY_LEN);
    char ad [160];
    snprintf (ad, sizeof ad, "%s/acme/%s", tenant, column);
    char *plain = calloc (1, sizeof sealed + 1);
    size_t plain_len = 0;
    assert_int_equal (sb_aead_open (data_key, ad, strlen (ad), sealed, sealed_len,
                                    (uint8_t *) plain, sizeof sealed, &plain_len), 0);
    plain [plain_len] = 0;
    PQclear (res);
    PQfinish (conn);
    return plain;
}

//  Starts a token worker for `issuer` on a new fake broker; waits for READY.
//  Returns 0, or -1.
static int
s_spawn (const char *issuer, fake_broker_t **broker_p, pid_t *pid_p)
{
    fake_broker_t *broker = fake_broker_new (sb_harness_free_port ());
    *broker_p = broker;
    if (!broker)
        return -1;
    char heartbeat [16], db [1024], migrations [512], secret_arg [128], connectors_arg [160];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    snprintf (secret_arg, sizeof secret_arg, "--secret-key-file=%s", SECRET_FILE);
    snprintf (connectors_arg, sizeof connectors_arg, "--connectors=%s/connectors", s_dir);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", broker->endpoint,
        "--credit", "8", "--heartbeat-ms", heartbeat, db, migrations, secret_arg, connectors_arg,
        "--issuer", issuer, "--hash-threads", "1", NULL
    };
    const char *env [] = {
        "SB_CONNECT_TEST_CLIENT_ID=" CLIENT_ID, "SB_CONNECT_TEST_CLIENT_SECRET=client-secret-1", NULL
    };
    *pid_p = sb_harness_spawn (argv, env);
    if (*pid_p <= 0)
        return -1;
    sb_msg_t msg = { 0 };
    //  It migrates before it registers: allow for that
    int rc = fake_broker_recv (broker, &msg, 30000) == 0 && msg.command == SB_CMD_READY? 0: -1;
    sb_msg_reset (&msg);
    return rc;
}

//  ---------------------------------------------------------------------
//  Tests

//  The link sb_connect_url makes: the page opens; forged, altered,
//  expired and other-connector tickets are refused.
static void
test_ticket (void **state)
{
    char *url = sb_connect_url (s_role, s_tenant, s_user, "acme");
    assert_non_null (url);
    const char prefix [] = ISSUER "/connect/acme?ticket=";
    assert_int_equal (strncmp (url, prefix, strlen (prefix)), 0);
    //  The payload says whose and until when.
    const char *ticket = url + strlen (prefix);
    const char *dot = strchr (ticket, '.');
    assert_non_null (dot);
    uint8_t json [1024];
    size_t json_len = 0;
    assert_int_equal (sb_base64url_decode (ticket, (size_t) (dot - ticket), json, sizeof json - 1,
                                           &json_len), 0);
    json [json_len] = 0;
    json_t *doc = json_loads ((const char *) json, 0, NULL);
    assert_non_null (doc);
    assert_string_equal (json_string_value (json_object_get (doc, "tenant")), s_tenant);
    assert_string_equal (json_string_value (json_object_get (doc, "subject")), s_user);
    assert_string_equal (json_string_value (json_object_get (doc, "connector")), "acme");
    json_int_t exp = json_integer_value (json_object_get (doc, "exp"));
    json_int_t now = (json_int_t) time (NULL);
    assert_true (exp >= now + SB_CONNECT_TICKET_TTL_S - 5 && exp <= now + SB_CONNECT_TICKET_TTL_S + 1);
    json_decref (doc);
    //  No link without an issuer or a secret; none for a malformed tenant.
    assert_null (sb_connect_url (s_role, "Not A Tenant", s_user, "acme"));
    assert_null (sb_connect_url (s_role, s_tenant, s_user, "a.b"));

    sb_http_response_t response;
    s_get_page ("acme", ticket, &response);
    assert_int_equal (response.status, 200);
    sb_http_response_clear (&response);

    //  A MAC with one character changed.
    char *forged = strdup (ticket);
    char *last = forged + strlen (forged) - 2;
    *last = *last == 'A'? 'B': 'A';
    s_get_page ("acme", forged, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "This connect link is not valid."));
    s_assert_page_headers (&response);
    sb_http_response_clear (&response);
    free (forged);
    //  Another payload under the old MAC (another tenant).
    char other [512];
    snprintf (other, sizeof other, "{\"tenant\":\"%s\",\"subject\":\"%s\",\"connector\":\"acme\","
              "\"exp\":%lld}", s_tenant2, s_user, (long long) exp);
    char *payload = sb_base64url_encode ((const uint8_t *) other, strlen (other));
    char altered [2048];
    snprintf (altered, sizeof altered, "%s%s", payload, dot);
    free (payload);
    s_get_page ("acme", altered, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "This connect link is not valid."));
    sb_http_response_clear (&response);
    //  Garbage.
    s_get_page ("acme", "not-a-ticket", &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);

    //  Expired: refused and audited under its tenant.
    long expired_before = s_audit_count (s_tenant, "ticket_expired");
    snprintf (other, sizeof other, "{\"tenant\":\"%s\",\"subject\":\"%s\",\"connector\":\"acme\","
              "\"exp\":%lld}", s_tenant, s_user, (long long) now - 1);
    char *expired = s_ticket_signed (other);
    s_get_page ("acme", expired, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "This connect link expired."));
    sb_http_response_clear (&response);
    free (expired);
    assert_int_equal (s_audit_count (s_tenant, "ticket_expired"), expired_before + 1);

    //  A good ticket of another connector, on this one's page.
    long other_before = s_audit_count (s_tenant, "ticket_other_connector");
    char *keyed = s_ticket (s_tenant, s_user, "acme-key");
    s_get_page ("acme", keyed, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "This connect link is for another connector."));
    sb_http_response_clear (&response);
    free (keyed);
    assert_int_equal (s_audit_count (s_tenant, "ticket_other_connector"), other_before + 1);
    free (url);
}

//  The page: headers, escaped names, the user's email, the form.
static void
test_page (void **state)
{
    char *ticket = s_ticket (s_tenant, s_user, "acme");
    sb_http_response_t response;
    s_get_page ("acme", ticket, &response);
    assert_int_equal (response.status, 200);
    s_assert_page_headers (&response);
    assert_non_null (strstr (sb_http_response_header (&response, "content-security-policy"),
                             "form-action 'self' https://provider.example https:"));
    const char *body = response.body;
    assert_non_null (strstr (body, "Connect <strong>Acme &lt;CRM&gt; &amp; &quot;Co&quot;</strong>"));
    assert_null (strstr (body, TITLE));
    assert_non_null (strstr (body, s_tenant));
    assert_non_null (strstr (body, "<strong>alice@example.com</strong>"));
    assert_non_null (strstr (body, "Only continue if you asked for this in your assistant."));
    assert_non_null (strstr (body, "<form method=\"post\" action=\"" ISSUER "/connect/acme\">"));
    assert_non_null (strstr (body, "<button type=\"submit\">Continue</button>"));
    char field [2048];
    s_field (body, "ticket", field, sizeof field);
    assert_string_equal (field, ticket);
    s_field (body, "csrf", field, sizeof field);
    assert_int_equal (strlen (field), 43);
    const char *cookie = sb_http_response_header (&response, "set-cookie");
    assert_int_equal (strncmp (cookie, "__Host-sb_connect_csrf=", 23), 0);
    assert_string_equal (cookie + 23 + 43, "; Secure; HttpOnly; SameSite=Strict; Path=/");
    sb_http_response_clear (&response);
    free (ticket);

    //  A hostile subject (not a user: no email) is escaped.
    ticket = s_ticket (s_tenant, SUBJECT_EVIL, "acme");
    s_get_page ("acme", ticket, &response);
    assert_int_equal (response.status, 200);
    assert_non_null (strstr (response.body, "<strong>svc:&lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;</strong>"));
    assert_null (strstr (response.body, SUBJECT_EVIL));
    sb_http_response_clear (&response);
    free (ticket);

    //  An API-key connector is not connected here.
    ticket = s_ticket (s_tenant, s_user, "acme-key");
    s_get_page ("acme-key", ticket, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "an administrator adds its key with sb-admin"));
    sb_http_response_clear (&response);
    free (ticket);
    //  Nor one that does not exist.
    ticket = s_ticket (s_tenant, s_user, "nope");
    s_get_page ("nope", ticket, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);
    free (ticket);
}

//  POST: the CSRF pair and the origin, then the 302 and the flow.
static void
test_post (void **state)
{
    char *ticket = s_ticket (s_tenant, s_user, "acme");
    sb_http_response_t response;
    s_get_page ("acme", ticket, &response);
    char csrf_cookie [128], csrf [64], body [4096];
    s_cookie (&response, csrf_cookie, sizeof csrf_cookie);
    s_field (response.body, "csrf", csrf, sizeof csrf);
    sb_http_response_clear (&response);
    snprintf (body, sizeof body, "ticket=%s&csrf=%s", ticket, csrf);

    //  No cookie; another site; a CSRF field of another ticket.
    s_http ("connect/start", "POST", "/connect/acme", NULL, body, NULL, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "did not come from this server"));
    sb_http_response_clear (&response);
    const char *evil [] = { "cookie", csrf_cookie, "origin", "https://evil.example", NULL };
    s_http ("connect/start", "POST", "/connect/acme", NULL, body, evil, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);
    char *other = s_ticket (s_tenant2, s_user, "acme");
    char other_body [4096];
    snprintf (other_body, sizeof other_body, "ticket=%s&csrf=%s", other, csrf);
    free (other);
    const char *good [] = { "cookie", csrf_cookie, "origin", ISSUER, NULL };
    s_http ("connect/start", "POST", "/connect/acme", NULL, other_body, good, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);
    const char *params [] = { s_tenant };
    assert_int_equal (s_sql_long ("SELECT count (*) FROM connect_flows WHERE tenant_id = $1",
                                  1, params), 0);

    //  The right pair: 302 to the provider with every parameter.
    s_http ("connect/start", "POST", "/connect/acme", NULL, body, good, &response);
    assert_int_equal (response.status, 302);
    assert_string_equal (sb_http_response_header (&response, "cache-control"), "no-store");
    const char *location = sb_http_response_header (&response, "location");
    assert_int_equal (strncmp (location, AUTHORIZE_URL "?", strlen (AUTHORIZE_URL) + 1), 0);
    const char *query = location + strlen (AUTHORIZE_URL) + 1;
    sb_oauth_form_t *form = NULL;
    assert_int_equal (sb_oauth_form_parse (query, strlen (query), &form, NULL, 0), 0);
    assert_string_equal (sb_oauth_form_get (form, "response_type"), "code");
    assert_string_equal (sb_oauth_form_get (form, "client_id"), CLIENT_ID);
    assert_string_equal (sb_oauth_form_get (form, "redirect_uri"), ISSUER "/connect/callback");
    assert_string_equal (sb_oauth_form_get (form, "code_challenge_method"), "S256");
    assert_string_equal (sb_oauth_form_get (form, "scope"), "read write");
    assert_string_equal (sb_oauth_form_get (form, "access_type"), "offline");
    assert_non_null (strstr (query, "&scope=read%20write&"));
    const char *state_text = sb_oauth_form_get (form, "state");
    assert_int_equal (strlen (state_text), 43);
    assert_int_equal (strlen (sb_oauth_form_get (form, "code_challenge")), 43);
    const char *cookie = sb_http_response_header (&response, "set-cookie");
    assert_int_equal (strncmp (cookie, "__Host-sb_connect=", 18), 0);
    assert_string_equal (cookie + 18 + 43, "; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=600");
    char cookie_value [64];
    snprintf (cookie_value, sizeof cookie_value, "%.43s", cookie + 18);

    //  The flow: the state's and cookie's digests, who, where back, 10 minutes.
    uint8_t digest [SB_HMAC_SHA256_LEN];
    char state_hash [65], cookie_hash [65];
    sb_sha256 (state_text, strlen (state_text), digest);
    sb_hex_encode (digest, sizeof digest, state_hash);
    sb_sha256 (cookie_value, strlen (cookie_value), digest);
    sb_hex_encode (digest, sizeof digest, cookie_hash);
    PGconn *conn = s_pg ();
    const char *flow [] = { state_hash };
    PGresult *res = s_sql (conn, "SELECT tenant_id, subject, connector, encode (cookie_hash, 'hex'), "
                                 "redirect_uri, extract (epoch FROM expires_at - created_at)::int, "
                                 "octet_length (verifier_enc) "
                                 "FROM connect_flows WHERE state_hash = decode ($1, 'hex')", 1, flow);
    assert_int_equal (PQntuples (res), 1);
    assert_string_equal (PQgetvalue (res, 0, 0), s_tenant);
    assert_string_equal (PQgetvalue (res, 0, 1), s_user);
    assert_string_equal (PQgetvalue (res, 0, 2), "acme");
    assert_string_equal (PQgetvalue (res, 0, 3), cookie_hash);
    assert_string_equal (PQgetvalue (res, 0, 4), ISSUER "/connect/callback");
    assert_string_equal (PQgetvalue (res, 0, 5), "600");
    assert_int_equal (strtol (PQgetvalue (res, 0, 6), NULL, 10), 12 + 43 + 16);
    PQclear (res);
    PQfinish (conn);
    sb_oauth_form_destroy (&form);
    sb_http_response_clear (&response);
    free (ticket);
}

//  The callback: the exchange, the stored connection, the page; the state
//  only once.
static void
test_callback (void **state)
{
    char state_text [64], cookie [128], challenge [64];
    s_start_flow (s_tenant, state_text, cookie, challenge);
    int requests = s_provider_requests (NULL, 0);
    char query [256];
    snprintf (query, sizeof query, "code=the-code%%2F1&state=%s", state_text);
    sb_http_response_t response;
    s_callback (query, cookie, &response);
    assert_int_equal (response.status, 200);
    s_assert_page_headers (&response);
    char expected [256];
    snprintf (expected, sizeof expected, "Connected Acme &lt;CRM&gt; &amp; &quot;Co&quot; for %s.",
              s_tenant);
    assert_non_null (strstr (response.body, expected));
    assert_non_null (strstr (response.body, "You can close this tab and go back to your assistant."));
    sb_http_response_clear (&response);

    //  The provider got the code with the verifier whose S256 is the challenge.
    char body [4096];
    assert_int_equal (s_provider_requests (body, sizeof body), requests + 1);
    sb_oauth_form_t *form = NULL;
    assert_int_equal (sb_oauth_form_parse (body, strlen (body), &form, NULL, 0), 0);
    assert_string_equal (sb_oauth_form_get (form, "grant_type"), "authorization_code");
    assert_string_equal (sb_oauth_form_get (form, "code"), "the-code/1");
    assert_string_equal (sb_oauth_form_get (form, "redirect_uri"), ISSUER "/connect/callback");
    const char *verifier = sb_oauth_form_get (form, "code_verifier");
    assert_non_null (verifier);
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_sha256 (verifier, strlen (verifier), digest);
    char *s256 = sb_base64url_encode (digest, sizeof digest);
    assert_string_equal (s256, challenge);
    free (s256);
    sb_oauth_form_destroy (&form);

    //  The connection: connected, by the user, its secrets sealed.
    PGconn *conn = s_pg ();
    const char *params [] = { s_tenant };
    PGresult *res = s_sql (conn, "SELECT status, kind, version, connected_by, vars->>'instance_url', "
                                 "extract (epoch FROM expires_at - now ())::int "
                                 "FROM connections WHERE tenant_id = $1 AND connector = 'acme'",
                           1, params);
    assert_int_equal (PQntuples (res), 1);
    assert_string_equal (PQgetvalue (res, 0, 0), "connected");
    assert_string_equal (PQgetvalue (res, 0, 1), "oauth2");
    assert_string_equal (PQgetvalue (res, 0, 2), "1");
    assert_string_equal (PQgetvalue (res, 0, 3), s_user);
    assert_string_equal (PQgetvalue (res, 0, 4), "https://instance.example");
    long left = strtol (PQgetvalue (res, 0, 5), NULL, 10);
    assert_true (left > 3500 && left <= 3600);
    PQclear (res);
    char state_hash [65];
    sb_sha256 (state_text, strlen (state_text), digest);
    sb_hex_encode (digest, sizeof digest, state_hash);
    const char *flow [] = { state_hash };
    res = s_sql (conn, "SELECT count (*) FROM connect_flows WHERE state_hash = decode ($1, 'hex')",
                 1, flow);
    assert_string_equal (PQgetvalue (res, 0, 0), "0");      //  used: gone
    PQclear (res);
    PQfinish (conn);
    char access [32], refresh [32];
    snprintf (access, sizeof access, "at-%d", requests + 1);
    snprintf (refresh, sizeof refresh, "rt-%d", requests + 1);
    char *plain = s_open_secret (s_tenant, "access");
    assert_string_equal (plain, access);
    free (plain);
    plain = s_open_secret (s_tenant, "refresh");
    assert_string_equal (plain, refresh);
    free (plain);

    //  The same state again: refused, the provider not asked.
    s_callback (query, cookie, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "already used"));
    sb_http_response_clear (&response);
    assert_int_equal (s_provider_requests (NULL, 0), requests + 1);
}

//  Another browser: a wrong cookie, no cookie; an expired flow.
static void
test_callback_refused (void **state)
{
    int requests = s_provider_requests (NULL, 0);
    char state_text [64], cookie [128], query [256];
    sb_http_response_t response;
    long mismatch = s_audit_count (s_tenant, "cookie_mismatch");
    s_start_flow (s_tenant, state_text, cookie, NULL);
    snprintf (query, sizeof query, "code=c&state=%s", state_text);
    s_callback (query, "__Host-sb_connect=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "Open the link again from the same browser."));
    sb_http_response_clear (&response);
    assert_int_equal (s_audit_count (s_tenant, "cookie_mismatch"), mismatch + 1);
    //  The flow is spent: the right cookie now finds nothing.
    s_callback (query, cookie, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);

    long missing = s_audit_count (s_tenant, "cookie_missing");
    s_start_flow (s_tenant, state_text, cookie, NULL);
    snprintf (query, sizeof query, "code=c&state=%s", state_text);
    s_callback (query, NULL, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "Open the link again from the same browser."));
    sb_http_response_clear (&response);
    assert_int_equal (s_audit_count (s_tenant, "cookie_missing"), missing + 1);

    long expired = s_audit_count (s_tenant, "flow_expired");
    s_start_flow (s_tenant, state_text, cookie, NULL);
    PGconn *conn = s_pg ();
    const char *params [] = { s_tenant };
    PQclear (s_sql (conn, "UPDATE connect_flows SET expires_at = now () - interval '1 second' "
                          "WHERE tenant_id = $1", 1, params));
    PQfinish (conn);
    snprintf (query, sizeof query, "code=c&state=%s", state_text);
    s_callback (query, cookie, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "expired"));
    sb_http_response_clear (&response);
    assert_int_equal (s_audit_count (s_tenant, "flow_expired"), expired + 1);
    //  A state nobody made; no state at all.
    s_callback ("code=c&state=nobody-made-this", cookie, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);
    s_callback ("code=c", cookie, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);
    assert_int_equal (s_provider_requests (NULL, 0), requests);
}

//  The provider refuses the code: a page, no connection. The user denies
//  at the provider: a page.
static void
test_provider_refusals (void **state)
{
    char state_text [64], cookie [128], query [256];
    sb_http_response_t response;
    s_provider_refuse (true);
    int requests = s_provider_requests (NULL, 0);
    s_start_flow (s_tenant2, state_text, cookie, NULL);
    snprintf (query, sizeof query, "code=stale&state=%s", state_text);
    s_callback (query, cookie, &response);
    s_provider_refuse (false);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "did not accept the sign-in"));
    assert_null (strstr (response.body, "stale"));
    sb_http_response_clear (&response);
    assert_int_equal (s_provider_requests (NULL, 0), requests + 1);
    const char *params [] = { s_tenant2 };
    assert_int_equal (s_sql_long ("SELECT count (*) FROM connections WHERE tenant_id = $1",
                                  1, params), 0);

    s_start_flow (s_tenant2, state_text, cookie, NULL);
    snprintf (query, sizeof query, "error=access_denied&error_description=no%%3Cb%%3E&state=%s",
              state_text);
    s_callback (query, cookie, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "You did not allow access at Acme &lt;CRM&gt;"));
    sb_http_response_clear (&response);
    assert_int_equal (s_provider_requests (NULL, 0), requests + 1);
    assert_int_equal (s_sql_long ("SELECT count (*) FROM connect_flows WHERE tenant_id = $1",
                                  1, params), 0);
}

//  A callback cancelled while the provider answers: cancelled at once,
//  nothing stored, and the worker goes on.
static void
test_cancel_while_exchanging (void **state)
{
    char state_text [64], cookie [128], query [256], corr_id [32];
    s_start_flow (s_tenant2, state_text, cookie, NULL);
    int requests = s_provider_requests (NULL, 0);
    s_provider_hold (true);
    snprintf (query, sizeof query, "code=held&state=%s", state_text);
    const char *headers [] = { "cookie", cookie, NULL };
    s_send ("connect/callback", "GET", "/connect/callback", query, NULL, headers, corr_id);
    //  The provider holds the exchange: the job waits on it.
    int64_t deadline = sb_harness_now_ms () + WAIT_MS;
    while (s_provider_requests (NULL, 0) == requests && sb_harness_now_ms () < deadline)
        sb_harness_pause_ms (5);
    assert_int_equal (s_provider_requests (NULL, 0), requests + 1);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_cancel (&msg, corr_id), 0);
    assert_int_equal (sb_msg_send (s_broker->router, &msg, s_broker->worker), 0);
    sb_msg_reset (&msg);
    sb_status_t status;
    char *json = NULL;
    assert_int_equal (fake_broker_result (s_broker, corr_id, WAIT_MS, &status, &json), 0);
    assert_int_equal (status, SB_STATUS_CANCELLED);
    free (json);
    s_provider_hold (false);
    const char *params [] = { s_tenant2 };
    assert_int_equal (s_sql_long ("SELECT count (*) FROM connections WHERE tenant_id = $1",
                                  1, params), 0);
    //  The next flow is served.
    sb_http_response_t response;
    s_start_flow (s_tenant2, state_text, cookie, NULL);
    snprintf (query, sizeof query, "code=after&state=%s", state_text);
    s_callback (query, cookie, &response);
    assert_int_equal (response.status, 200);
    sb_http_response_clear (&response);
    assert_int_equal (s_sql_long ("SELECT count (*) FROM connections WHERE tenant_id = $1",
                                  1, params), 1);
}

//  An http issuer on a loopback host: the cookies cannot be Secure, so
//  they cannot be __Host-; the flow works with them.
static void
test_loopback_issuer (void **state)
{
    fake_broker_t *main_broker = s_broker;
    pid_t pid = -1;
    assert_int_equal (s_spawn ("http://127.0.0.1:8080", &s_broker, &pid), 0);
    char *ticket = s_ticket (s_tenant, s_user, "acme");
    sb_http_response_t response;
    s_get_page ("acme", ticket, &response);
    assert_int_equal (response.status, 200);
    const char *set = sb_http_response_header (&response, "set-cookie");
    assert_int_equal (strncmp (set, "sb_connect_csrf=", 16), 0);
    assert_string_equal (set + 16 + 43, "; HttpOnly; SameSite=Strict; Path=/");
    assert_non_null (strstr (response.body, "action=\"http://127.0.0.1:8080/connect/acme\""));
    char csrf_cookie [128], csrf [64], body [4096];
    s_cookie (&response, csrf_cookie, sizeof csrf_cookie);
    s_field (response.body, "csrf", csrf, sizeof csrf);
    sb_http_response_clear (&response);
    snprintf (body, sizeof body, "ticket=%s&csrf=%s", ticket, csrf);
    free (ticket);
    const char *headers [] = { "cookie", csrf_cookie, "origin", "http://127.0.0.1:8080", NULL };
    s_http ("connect/start", "POST", "/connect/acme", NULL, body, headers, &response);
    assert_int_equal (response.status, 302);
    set = sb_http_response_header (&response, "set-cookie");
    assert_int_equal (strncmp (set, "sb_connect=", 11), 0);
    assert_string_equal (set + 11 + 43, "; HttpOnly; SameSite=Lax; Path=/; Max-Age=600");
    const char *location = sb_http_response_header (&response, "location");
    assert_non_null (strstr (location, "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fconnect%2Fcallback&"));
    const char *at = strstr (location, "&state=");
    assert_non_null (at);
    char query [256], cookie [128];
    snprintf (query, sizeof query, "code=loop&state=%.43s", at + 7);
    s_cookie (&response, cookie, sizeof cookie);
    sb_http_response_clear (&response);
    s_callback (query, cookie, &response);
    assert_int_equal (response.status, 200);
    assert_non_null (strstr (response.body, "You can close this tab"));
    sb_http_response_clear (&response);
    char sent [4096];
    s_provider_requests (sent, sizeof sent);
    assert_non_null (strstr (sent, "redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fconnect%2Fcallback"));
    int wstatus = sb_harness_stop (pid);
    fake_broker_destroy (&s_broker);
    s_broker = main_broker;
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 0);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static int
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    if (!file)
        return -1;
    fputs (text, file);
    return fclose (file);
}

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo || s_provider_start ())
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "h21c%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    snprintf (s_tenant, sizeof s_tenant, "%s-acme", s_prefix);
    snprintf (s_tenant2, sizeof s_tenant2, "%s-beta", s_prefix);
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-connect-XXXXXX");
    if (!mkdtemp (s_dir))
        return -1;
    char path [256], connectors [128], text [4096];
    snprintf (connectors, sizeof connectors, "%s/connectors", s_dir);
    mkdir (connectors, 0700);
    const char tool [] =
        "{\"name\":\"%s\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
        "\"request\":{\"method\":\"GET\",\"path\":\"/q\"},\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}";
    char tool_a [512], tool_b [512];
    snprintf (tool_a, sizeof tool_a, tool, "acme_whoami");
    snprintf (tool_b, sizeof tool_b, tool, "acme_key_whoami");
    snprintf (text, sizeof text,
              "{\"name\":\"acme\",\"title\":\"Acme <CRM> & \\\"Co\\\"\",\"base_url\":\"{instance_url}/api\","
              "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"" AUTHORIZE_URL "\","
              "\"token_url\":\"http://127.0.0.1:%d/token\",\"client_id_env\":\"SB_CONNECT_TEST_CLIENT_ID\","
              "\"client_secret_env\":\"SB_CONNECT_TEST_CLIENT_SECRET\",\"scopes\":[\"read\",\"write\"],"
              "\"authorize_params\":{\"access_type\":\"offline\"},\"keep\":[\"instance_url\"]}},"
              "\"tools\":[%s]}", s_provider.port, tool_a);
    snprintf (path, sizeof path, "%s/acme.json", connectors);
    if (s_write (path, text))
        return -1;
    snprintf (text, sizeof text,
              "{\"name\":\"acme-key\",\"title\":\"Acme Keys\",\"base_url\":\"http://127.0.0.1:1\","
              "\"auth\":{\"type\":\"bearer\"},\"tools\":[%s]}", tool_b);
    snprintf (path, sizeof path, "%s/acme-key.json", connectors);
    if (s_write (path, text))
        return -1;

    //  The fixture's secret is the one the tickets and data keys here use.
    FILE *file = fopen (SECRET_FILE, "r");
    char line [128] = "";
    if (!file || !fgets (line, sizeof line, file) || strcmp (line, SECRET "\n") != 0)
        return -1;
    fclose (file);
    s_role = calloc (1, sizeof *s_role);
    snprintf (s_role->issuer, sizeof s_role->issuer, "%s", ISSUER);
    memcpy (s_role->secret, SECRET, strlen (SECRET));
    s_role->secret_len = strlen (SECRET);

    if (s_spawn (ISSUER, &s_broker, &s_pid))
        return -1;
    PGconn *conn = s_pg ();
    const char *tenant [] = { s_tenant };
    PQclear (s_sql (conn, "INSERT INTO tenants (id, name) VALUES ($1, $1)", 1, tenant));
    const char *tenant2 [] = { s_tenant2 };
    PQclear (s_sql (conn, "INSERT INTO tenants (id, name) VALUES ($1, $1)", 1, tenant2));
    const char *alice [] = { s_tenant, "alice@example.com", "$argon2id$v=19$not-a-real-hash" };
    PGresult *res = s_sql (conn, "INSERT INTO users (tenant_id, email, password_hash) "
                                 "VALUES ($1, $2, $3) RETURNING id", 3, alice);
    snprintf (s_user, sizeof s_user, "user:%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    PQfinish (conn);
    return 0;
}

static int
s_teardown (void **state)
{
    bool clean = true;
    if (s_pid > 0) {
        int wstatus = sb_harness_stop (s_pid);
        clean = WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0;
        if (!clean)
            fprintf (stderr, "the token worker did not exit cleanly (0x%x)\n", (unsigned) wstatus);
        s_pid = -1;
    }
    fake_broker_destroy (&s_broker);
    s_provider_stop ();
    int rc = -1;
    PGconn *conn = s_conninfo? PQconnectdb (s_conninfo): NULL;
    if (conn && PQstatus (conn) == CONNECTION_OK) {
        PQclear (PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)"));
        char pattern [48];
        snprintf (pattern, sizeof pattern, "%s-%%", s_prefix);
        const char *params [] = { pattern };
        //  Deleting the tenant deletes its connections, flows and audit rows.
        PGresult *res = PQexecParams (conn, "DELETE FROM tenants WHERE id LIKE $1",
                                      1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
        PQclear (res);
    }
    PQfinish (conn);
    free (s_conninfo);
    free (s_role);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    if (system (command))
        rc = -1;
    return clean? rc: -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ticket),
        cmocka_unit_test (test_page),
        cmocka_unit_test (test_post),
        cmocka_unit_test (test_callback),
        cmocka_unit_test (test_callback_refused),
        cmocka_unit_test (test_provider_refusals),
        cmocka_unit_test (test_cancel_while_exchanging),
        cmocka_unit_test (test_loopback_issuer),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
