/*  tests/38_workers_webhook_deliver.c — the webhook deliverer
    (workers/sb_wh_deliver.c, migration 017) against the real test
    PostgreSQL (a fresh database, migrated) and a receiver in this test (a
    thread per connection on 127.0.0.1) that answers by path: /ok 200,
    /fail 500 with a long body that is not UTF-8, /hang never, /reset a
    TCP reset, /slow 200 after S_SLOW_MS, /gone 410. The deliverer runs
    in this process on its own reactor; the killed worker is a real
    sb-worker --role webhook, SIGKILLed.

      - delivered once, the Standard Webhooks signature verified with
        sb_wh_verify's standard scheme, the body's shape (JSON data kept,
        other bytes as body_base64), the attempt recorded;
      - 500, hang, reset: retried on a short schedule (spacing within the
        jitter), then dead; every attempt recorded (status, latency,
        error, a 1 KiB UTF-8 excerpt); replayed by SQL → delivered;
      - the SSRF guard: 127.0.0.1 and localhost refused without the
        allow-list (error recorded, no connection made); the rules;
      - a subscription's rate_per_s and max_in_flight at the receiver;
      - a worker killed with leases outstanding: another deliverer takes
        them only once the lease has passed;
      - disabled after the failing window (audit record, pending
        deliveries dead); 410 Gone disables at once;
      - the retry schedule's parser. */
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_db.h"
#include "sb_harness.h"
#include "sb_log.h"
#include "sb_reactor.h"
#include "sb_ssrf.h"
#include "sb_token_int.h"
#include "sb_wh_deliver.h"
#include "sb_wh_verify.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_MAX_CONNINFO  1024        /* conninfo strings built here */
#define S_MAX_REQUESTS  512         /* requests the receiver keeps */
#define S_MAX_HEAD      8192        /* a request's head at the receiver */
#define S_MAX_BODY      65536       /* a request's body at the receiver */
#define S_SLOW_MS       300         /* /slow answers after this */
#define S_WAIT_MS       20000       /* a condition must hold within this */
#define S_KEY_ID        "whdkey0000000001"
#define S_TENANT        "whd"
#define S_ENDPOINT      "we_deliver01"
#define S_SECRET        "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

#define S_MASTER        "0123456789abcdef0123456789abcdef-master!"   /* 40 bytes */
static const uint8_t *s_master = (const uint8_t *) S_MASTER;
#define S_MASTER_LEN    (sizeof S_MASTER - 1)

static char *s_conninfo;            /* the fixture's */
static char s_db [S_MAX_CONNINFO];  /* the fresh database's */
static PGconn *s_pg;                /* on it, switchboard.system on */
static uint8_t s_data_key [SB_AEAD_KEY_LEN];
static char s_key_file [64];        /* the master secret, for sb-worker */

//  ---------------------------------------------------------------------
//  The receiver

typedef struct {
    char path [32];
    char id [64];
    char timestamp [32];
    char signature [256];
    char *body;
    size_t body_len;
    int64_t at_ms;
} s_request_t;

static struct {
    pthread_mutex_t lock;
    int fd;
    int port;
    bool stop;
    s_request_t requests [S_MAX_REQUESTS];
    size_t count;
    int accepted;                   /* connections, ever */
    int slow_now;                   /* /slow requests being answered */
    int slow_max;                   /* the most at once */
} s_rx = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static void
s_header (const char *head, const char *name, char *value, size_t size)
{
    value [0] = 0;
    size_t n = strlen (name);
    for (const char *line = strstr (head, "\r\n"); line; line = strstr (line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp (p, name, n) == 0 && p [n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            size_t len = strcspn (p, "\r");
            if (len >= size)
                len = size - 1;
            memcpy (value, p, len);
            value [len] = 0;
            return;
        }
    }
}

static void
s_send_all (int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t) n;
    }
}

static void *
s_connection (void *arg)
{
    int fd = (int) (intptr_t) arg;
    char *head = calloc (1, S_MAX_HEAD + 1);
    char *body = calloc (1, S_MAX_BODY + 1);
    size_t used = 0;
    char *end = NULL;
    while (!end && used < S_MAX_HEAD) {
        ssize_t n = recv (fd, head + used, S_MAX_HEAD - used, 0);
        if (n <= 0)
            goto out;
        used += (size_t) n;
        head [used] = 0;
        end = strstr (head, "\r\n\r\n");
    }
    if (!end)
        goto out;
    size_t head_len = (size_t) (end + 4 - head);
    char length [32];
    s_header (head, "content-length", length, sizeof length);
    size_t body_len = (size_t) strtoul (length, NULL, 10);
    if (body_len > S_MAX_BODY)
        goto out;
    size_t have = used - head_len;
    memcpy (body, head + head_len, have);
    while (have < body_len) {
        ssize_t n = recv (fd, body + have, body_len - have, 0);
        if (n <= 0)
            goto out;
        have += (size_t) n;
    }
    head [head_len] = 0;
    s_request_t request = { .body_len = body_len, .at_ms = sb_harness_now_ms () };
    sscanf (head, "POST %31s", request.path);
    s_header (head, "webhook-id", request.id, sizeof request.id);
    s_header (head, "webhook-timestamp", request.timestamp, sizeof request.timestamp);
    s_header (head, "webhook-signature", request.signature, sizeof request.signature);
    request.body = malloc (body_len + 1);
    memcpy (request.body, body, body_len);
    request.body [body_len] = 0;
    bool slow = strcmp (request.path, "/slow") == 0;
    pthread_mutex_lock (&s_rx.lock);
    if (s_rx.count < S_MAX_REQUESTS)
        s_rx.requests [s_rx.count++] = request;
    else
        free (request.body);
    if (slow && ++s_rx.slow_now > s_rx.slow_max)
        s_rx.slow_max = s_rx.slow_now;
    pthread_mutex_unlock (&s_rx.lock);

    if (strcmp (request.path, "/hang") == 0) {
        //  Never answers: waits for the caller to give up (or the end)
        while (!s_rx.stop) {
            struct pollfd item = { .fd = fd, .events = POLLIN };
            if (poll (&item, 1, 100) > 0) {
                char drain [256];
                if (recv (fd, drain, sizeof drain, 0) <= 0)
                    break;
            }
        }
    }
    else
    if (strcmp (request.path, "/reset") == 0) {
        struct linger linger = { .l_onoff = 1, .l_linger = 0 };
        setsockopt (fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
    }
    else
    if (strcmp (request.path, "/fail") == 0) {
        char answer [3000];
        char filler [2100];
        memset (filler, 'x', sizeof filler - 1);
        filler [sizeof filler - 1] = 0;
        int body_n = (int) strlen (filler) + 12;
        int n = snprintf (answer, sizeof answer, "HTTP/1.1 500 Internal Server Error\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\nboom \xff\xfe bad %s",
                          body_n, filler);
        s_send_all (fd, answer, (size_t) n);
    }
    else
    if (strcmp (request.path, "/gone") == 0) {
        static const char answer [] = "HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n"
                                      "Connection: close\r\n\r\ngone";
        s_send_all (fd, answer, sizeof answer - 1);
    }
    else {
        if (slow)
            usleep (S_SLOW_MS * 1000);
        static const char answer [] = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
                                      "Connection: close\r\n\r\nok-body";
        s_send_all (fd, answer, sizeof answer - 1);
    }
    if (slow) {
        pthread_mutex_lock (&s_rx.lock);
        s_rx.slow_now--;
        pthread_mutex_unlock (&s_rx.lock);
    }
out:
    close (fd);
    free (head);
    free (body);
    return NULL;
}

static void *
s_accept_loop (void *arg)
{
    while (!s_rx.stop) {
        struct pollfd item = { .fd = s_rx.fd, .events = POLLIN };
        if (poll (&item, 1, 100) <= 0)
            continue;
        int fd = accept (s_rx.fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock (&s_rx.lock);
        s_rx.accepted++;
        pthread_mutex_unlock (&s_rx.lock);
        pthread_t thread;
        if (pthread_create (&thread, NULL, s_connection, (void *) (intptr_t) fd) == 0)
            pthread_detach (thread);
        else
            close (fd);
    }
    return NULL;
}

static pthread_t s_rx_thread;

static int
s_rx_start (void)
{
    s_rx.fd = socket (AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt (s_rx.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (bind (s_rx.fd, (struct sockaddr *) &addr, sizeof addr) || listen (s_rx.fd, 128))
        return -1;
    socklen_t len = sizeof addr;
    getsockname (s_rx.fd, (struct sockaddr *) &addr, &len);
    s_rx.port = ntohs (addr.sin_port);
    return pthread_create (&s_rx_thread, NULL, s_accept_loop, NULL);
}

//  How many requests reached `path` (all paths: NULL).
static int
s_rx_count (const char *path)
{
    int count = 0;
    pthread_mutex_lock (&s_rx.lock);
    for (size_t at = 0; at < s_rx.count; at++)
        if (!path || strcmp (s_rx.requests [at].path, path) == 0)
            count++;
    pthread_mutex_unlock (&s_rx.lock);
    return count;
}

//  Forgets the requests received so far.
static void
s_rx_clear (void)
{
    pthread_mutex_lock (&s_rx.lock);
    for (size_t at = 0; at < s_rx.count; at++)
        free (s_rx.requests [at].body);
    s_rx.count = 0;
    s_rx.accepted = 0;
    s_rx.slow_max = 0;
    pthread_mutex_unlock (&s_rx.lock);
}

//  ---------------------------------------------------------------------
//  The database

static void
s_exec (const char *sql, int n, ...)
{
    const char *params [8] = { 0 };
    va_list args;
    va_start (args, n);
    for (int i = 0; i < n && i < 8; i++)
        params [i] = va_arg (args, const char *);
    va_end (args);
    PGresult *res = PQexecParams (s_pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType rc = PQresultStatus (res);
    if (rc != PGRES_COMMAND_OK && rc != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    PQclear (res);
}

//  The first cell of `sql` with up to three parameters, into a static buffer.
static const char *
s_text (const char *sql, const char *p1, const char *p2, const char *p3)
{
    static char value [4096];
    const char *params [] = { p1, p2, p3 };
    int n = p3? 3: p2? 2: p1? 1: 0;
    PGresult *res = PQexecParams (s_pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s (%d rows)", sql, PQresultErrorMessage (res), PQntuples (res));
    snprintf (value, sizeof value, "%s", PQgetisnull (res, 0, 0)? "(null)": PQgetvalue (res, 0, 0));
    PQclear (res);
    return value;
}

static long long
s_number (const char *sql, const char *p1, const char *p2)
{
    return strtoll (s_text (sql, p1, p2, NULL), NULL, 10);
}

//  A subscription `id` to the receiver's `path` (host: "127.0.0.1" or a name).
static void
s_subscription (const char *id, const char *host, const char *path, int rate, int in_flight)
{
    char url [256], ad [128], rate_text [16], flight_text [16];
    snprintf (url, sizeof url, "http://%s:%d%s", host, s_rx.port, path);
    snprintf (ad, sizeof ad, S_TENANT "/subscription:%s/secret", id);
    snprintf (rate_text, sizeof rate_text, "%d", rate);
    snprintf (flight_text, sizeof flight_text, "%d", in_flight);
    uint8_t sealed [256];
    size_t sealed_len = 0;
    assert_int_equal (sb_aead_seal (s_data_key, ad, strlen (ad), S_SECRET, strlen (S_SECRET), sealed,
                                    sizeof sealed, &sealed_len), 0);
    char hex [sizeof sealed * 2 + 1];
    sb_hex_encode (sealed, sealed_len, hex);
    s_exec ("INSERT INTO webhook_subscriptions (id, tenant_id, url, key_id, secret_enc, rate_per_s,"
            "       max_in_flight) VALUES ($1, '" S_TENANT "', $2, '" S_KEY_ID "', decode ($3, 'hex'),"
            "       $4::int, $5::int)", 5, id, url, hex, rate_text, flight_text);
}

//  A new event (body `body`, type `type`) and its delivery to subscription
//  `sub`, due after `due_s` seconds. Returns the delivery's ID.
static long long
s_delivery (const char *sub, const char *type, const char *body, int due_s)
{
    static int serial;
    char key [32], due [16], event [24];
    snprintf (key, sizeof key, "evt_%d_%d", (int) getpid (), ++serial);
    snprintf (due, sizeof due, "%d", due_s);
    snprintf (event, sizeof event, "%s",
              s_text ("INSERT INTO webhook_events (tenant_id, endpoint_id, connector, event_key, type, body)"
                      " VALUES ('" S_TENANT "', '" S_ENDPOINT "', 'stripe', $1, $2, convert_to ($3, 'UTF8'))"
                      " RETURNING id", key, type, body));
    return strtoll (s_text ("INSERT INTO webhook_deliveries (tenant_id, subscription_id, event_id, next_at)"
                            " VALUES ('" S_TENANT "', $1, $2::bigint, now () + make_interval (secs => $3::int))"
                            " RETURNING id", sub, event, due), NULL, 10);
}

//  ---------------------------------------------------------------------
//  The deliverer

static sb_wh_deliver_t *
s_deliver_new (sb_reactor_t *reactor, const char *schedule, int timeout_ms, int disable_after_s,
               const char *allow_hosts, int max)
{
    sb_wh_deliver_config_t config = {
        .conninfo = s_db, .secret = s_master, .secret_len = S_MASTER_LEN,
        .retry_schedule = schedule, .timeout_ms = timeout_ms, .disable_after_s = disable_after_s,
        .allow_hosts = allow_hosts, .max_in_flight = max
    };
    sb_wh_deliver_t *deliver = sb_wh_deliver_new (reactor, &config);
    assert_non_null (deliver);
    return deliver;
}

//  Runs `reactor` until `sql` (no parameters) answers "t" and
//  `deliver` holds no delivery (it has seen every record's answer), at
//  most `timeout_ms`. Returns true when it did.
static bool
s_run_until (sb_reactor_t *reactor, sb_wh_deliver_t *deliver, const char *sql, int timeout_ms)
{
    int64_t deadline = sb_harness_now_ms () + timeout_ms;
    while (sb_harness_now_ms () < deadline) {
        if (sb_reactor_run_once (reactor, 50))
            return false;
        sb_wh_deliver_stats_t stats;
        sb_wh_deliver_stats (deliver, &stats);
        if (stats.held == 0 && strcmp (s_text (sql, NULL, NULL, NULL), "t") == 0)
            return true;
    }
    return false;
}

//  Runs `reactor` for `ms` (to show that nothing more happens).
static void
s_run_for (sb_reactor_t *reactor, int ms)
{
    int64_t deadline = sb_harness_now_ms () + ms;
    while (sb_harness_now_ms () < deadline)
        assert_int_equal (sb_reactor_run_once (reactor, 50), 0);
}

static void
s_cleanup (void)
{
    s_exec ("DELETE FROM webhook_subscriptions", 0);
    s_exec ("DELETE FROM webhook_events", 0);
    s_rx_clear ();
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_delivered (void **state)
{
    s_cleanup ();
    s_subscription ("ws_ok000001", "127.0.0.1", "/ok", 10, 4);
    static const char json [] = "{\"id\":\"evt_1\",\"object\":\"event\",\"amount\":12.50}";
    long long json_id = s_delivery ("ws_ok000001", "invoice.paid", json, 0);
    long long raw_id = s_delivery ("ws_ok000001", "raw.bytes", "not json <x/>", 0);
    sb_reactor_t *reactor = sb_reactor_new ();
    sb_wh_deliver_t *deliver = s_deliver_new (reactor, "0,1", 2000, 3600, "127.0.0.1", 8);
    assert_true (s_run_until (reactor, deliver, "SELECT count (*) = 2 FROM webhook_deliveries WHERE state = 'delivered'",
                              S_WAIT_MS));
    s_run_for (reactor, 3 * SB_WH_DELIVER_POLL_MS);     //  and nothing is sent twice
    assert_int_equal (s_rx_count ("/ok"), 2);

    sb_wh_verifier_t *verifier = sb_wh_verifier_new (SB_WH_STANDARD, "{}",
                                                     (const char *const []) { S_SECRET }, 1);
    assert_non_null (verifier);
    pthread_mutex_lock (&s_rx.lock);
    for (size_t at = 0; at < 2; at++) {
        s_request_t *request = &s_rx.requests [at];
        sb_wh_header_t headers [] = {
            { "webhook-id", request->id }, { "webhook-timestamp", request->timestamp },
            { "webhook-signature", request->signature },
        };
        sb_wh_outcome_t *outcome = calloc (1, sizeof *outcome);
        assert_int_equal (sb_wh_verify (verifier, headers, 3, (const uint8_t *) request->body,
                                        request->body_len, sb_clock_wall_ms () / 1000, outcome), SB_WH_OK);
        //  A tampered body does not verify
        request->body [0] = '[';
        assert_int_equal (sb_wh_verify (verifier, headers, 3, (const uint8_t *) request->body,
                                        request->body_len, sb_clock_wall_ms () / 1000, outcome),
                          SB_WH_REFUSED);
        request->body [0] = '{';
        free (outcome);
        json_t *body = json_loads (request->body, 0, NULL);
        assert_non_null (body);
        char want_id [32];
        const char *type = json_string_value (json_object_get (body, "type"));
        long long id = strcmp (type, "invoice.paid") == 0? json_id: raw_id;
        snprintf (want_id, sizeof want_id, "msg_%lld", id);
        assert_string_equal (request->id, want_id);
        json_t *event = json_object_get (body, "event");
        assert_string_equal (json_string_value (json_object_get (event, "endpoint")), S_ENDPOINT);
        assert_string_equal (json_string_value (json_object_get (event, "connector")), "stripe");
        assert_true (json_integer_value (json_object_get (event, "id")) > 0);
        assert_non_null (strstr (json_string_value (json_object_get (body, "timestamp")), "T"));
        json_t *data = json_object_get (body, "data");
        if (id == json_id) {
            //  The event's JSON byte for byte
            assert_non_null (strstr (request->body, "\"data\":{\"id\":\"evt_1\",\"object\":\"event\",\"amount\":12.50}"));
            assert_string_equal (json_string_value (json_object_get (data, "id")), "evt_1");
        }
        else
            assert_string_equal (json_string_value (json_object_get (data, "body_base64")),
                                 "bm90IGpzb24gPHgvPg==");
        json_decref (body);
    }
    pthread_mutex_unlock (&s_rx.lock);
    sb_wh_verifier_destroy (&verifier);

    char id_text [24];
    snprintf (id_text, sizeof id_text, "%lld", json_id);
    assert_string_equal (s_text ("SELECT status || ' ' || excerpt || ' ' || (error IS NULL)"
                                 "  FROM webhook_attempts WHERE delivery_id = $1::bigint", id_text, NULL, NULL),
                         "200 ok-body true");
    assert_string_equal (s_text ("SELECT attempts || ' ' || last_status || ' ' || (finished_at IS NOT NULL)"
                                 "  || ' ' || (lease_owner IS NULL) FROM webhook_deliveries WHERE id = $1::bigint",
                                 id_text, NULL, NULL), "1 200 true true");
    sb_wh_deliver_stats_t stats;
    sb_wh_deliver_stats (deliver, &stats);
    assert_int_equal (stats.delivered, 2);
    assert_int_equal (stats.failed, 0);
    sb_wh_deliver_destroy (&deliver);
    sb_reactor_destroy (&reactor);
    s_cleanup ();
}

static void
test_failures_and_replay (void **state)
{
    s_cleanup ();
    s_subscription ("ws_fail0001", "127.0.0.1", "/fail", 10, 4);
    s_subscription ("ws_hang0001", "127.0.0.1", "/hang", 10, 4);
    s_subscription ("ws_reset001", "127.0.0.1", "/reset", 10, 4);
    long long fail = s_delivery ("ws_fail0001", "a", "{}", 0);
    long long hang = s_delivery ("ws_hang0001", "a", "{}", 0);
    long long reset = s_delivery ("ws_reset001", "a", "{}", 0);
    sb_reactor_t *reactor = sb_reactor_new ();
    //  Three attempts: at once, after 1 s ± 20%, after 1 s ± 20%
    sb_wh_deliver_t *deliver = s_deliver_new (reactor, "0,1,1", 500, 3600, "127.0.0.1", 8);
    assert_true (s_run_until (reactor, deliver, "SELECT count (*) = 3 FROM webhook_deliveries WHERE state = 'dead'",
                              S_WAIT_MS));
    assert_int_equal (s_rx_count ("/fail"), 3);
    assert_int_equal (s_rx_count ("/hang"), 3);
    assert_int_equal (s_rx_count ("/reset"), 3);
    char id [24];
    snprintf (id, sizeof id, "%lld", fail);
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_attempts WHERE delivery_id = $1::bigint"
                                "   AND status = 500 AND error IS NULL AND latency_ms >= 0"
                                "   AND excerpt LIKE 'boom ?? bad xxx%' AND octet_length (excerpt) = 1024",
                                id, NULL), 3);
    //  The schedule's spacing: at least the delay less 20% (and the
    //  poll and a loaded machine's slack above)
    assert_string_equal (s_text ("SELECT bool_and (gap BETWEEN 0.75 AND 2.5) FROM ("
                                 "  SELECT extract (epoch FROM at - lag (at) OVER (ORDER BY at)) AS gap"
                                 "    FROM webhook_attempts WHERE delivery_id = $1::bigint) g WHERE gap IS NOT NULL",
                                 id, NULL, NULL), "t");
    assert_string_equal (s_text ("SELECT attempts || ' ' || last_status || ' ' || (finished_at IS NOT NULL)"
                                 "  FROM webhook_deliveries WHERE id = $1::bigint", id, NULL, NULL),
                         "3 500 true");
    snprintf (id, sizeof id, "%lld", hang);
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_attempts WHERE delivery_id = $1::bigint"
                                "   AND status = 0 AND error LIKE 'no answer within 500 ms%'"
                                "   AND latency_ms >= 450", id, NULL), 3);
    snprintf (id, sizeof id, "%lld", reset);
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_attempts WHERE delivery_id = $1::bigint"
                                "   AND status = 0 AND length (error) > 0", id, NULL), 3);
    sb_wh_deliver_stats_t stats;
    sb_wh_deliver_stats (deliver, &stats);
    assert_int_equal (stats.dead, 3);
    assert_int_equal (stats.failed, 9);

    //  Replay (as sb-admin does) once the endpoint is fixed: delivered,
    //  the earlier attempts kept
    snprintf (id, sizeof id, "%lld", fail);
    s_exec ("UPDATE webhook_subscriptions SET url = replace (url, '/fail', '/ok') WHERE id = 'ws_fail0001'", 0);
    s_exec ("UPDATE webhook_deliveries SET state = 'pending', next_at = now (), finished_at = NULL"
            " WHERE id = $1::bigint", 1, id);
    assert_true (s_run_until (reactor, deliver, "SELECT count (*) = 1 FROM webhook_deliveries WHERE state = 'delivered'",
                              S_WAIT_MS));
    assert_int_equal (s_rx_count ("/ok"), 1);
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_attempts WHERE delivery_id = $1::bigint",
                                id, NULL), 4);
    sb_wh_deliver_destroy (&deliver);
    sb_reactor_destroy (&reactor);
    s_cleanup ();
}

static void
test_ssrf (void **state)
{
    //  The rules
    sb_ssrf_t *ssrf = sb_ssrf_new ("127.0.0.2,[::1]", "--test");
    assert_non_null (ssrf);
    static const struct { const char *address; bool plain, listed; } cases [] = {
        { "93.184.216.34", true, true },    { "127.0.0.1", false, false },
        { "127.0.0.2", false, true },       { "::1", false, true },
        { "10.1.2.3", false, false },       { "169.254.169.254", false, false },
        { "::ffff:127.0.0.2", false, true },{ "::ffff:169.254.169.254", false, false },
        { "64:ff9b::a9fe:a9fe", false, false }, { "64:ff9b::5db8:d822", true, true },
        { "fe80::1", false, false },        { "fd00::1", false, false },
        { "2606:4700::1111", true, true },  { "2002:7f00:1::", false, false },
        { "::127.0.0.1", false, false },    { "not an address", false, false },
    };
    for (size_t at = 0; at < sizeof cases / sizeof cases [0]; at++) {
        if (sb_ssrf_text_allowed (NULL, cases [at].address) != cases [at].plain
        ||  sb_ssrf_text_allowed (ssrf, cases [at].address) != cases [at].listed)
            fail_msg ("%s: want %d/%d", cases [at].address, cases [at].plain, cases [at].listed);
    }
    assert_int_equal (sb_ssrf_allowed_count (ssrf), 2);
    sb_ssrf_destroy (&ssrf);
    assert_null (sb_ssrf_new ("127.0.0.1,nonsense", "--test"));

    //  Without the allow-list: refused by address and by a name, nothing
    //  connected, the refusal recorded
    s_cleanup ();
    s_subscription ("ws_ssrf0001", "127.0.0.1", "/ok", 10, 4);
    s_subscription ("ws_ssrf0002", "localhost", "/ok", 10, 4);
    s_delivery ("ws_ssrf0001", "a", "{}", 0);
    s_delivery ("ws_ssrf0002", "a", "{}", 0);
    sb_reactor_t *reactor = sb_reactor_new ();
    sb_wh_deliver_t *deliver = s_deliver_new (reactor, "0", 2000, 3600, "", 8);
    assert_true (s_run_until (reactor, deliver, "SELECT count (*) = 2 FROM webhook_deliveries WHERE state = 'dead'",
                              S_WAIT_MS));
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_attempts WHERE status = 0"
                                "   AND error LIKE '%is not public (SSRF guard%'", NULL, NULL), 2);
    pthread_mutex_lock (&s_rx.lock);
    assert_int_equal (s_rx.accepted, 0);
    pthread_mutex_unlock (&s_rx.lock);
    sb_wh_deliver_stats_t stats;
    sb_wh_deliver_stats (deliver, &stats);
    assert_int_equal (stats.refused, 2);
    sb_wh_deliver_destroy (&deliver);
    sb_reactor_destroy (&reactor);
    s_cleanup ();
}

static void
test_limits (void **state)
{
    s_cleanup ();
    //  rate 5/s (burst 5): 15 deliveries take at least 2 s; in-flight 2
    //  of slow answers: never more than 2 at once at the receiver
    s_subscription ("ws_rate0001", "127.0.0.1", "/rate", 5, 16);
    s_subscription ("ws_slow0001", "127.0.0.1", "/slow", 100, 2);
    for (int i = 0; i < 15; i++)
        s_delivery ("ws_rate0001", "a", "{}", 0);
    for (int i = 0; i < 8; i++)
        s_delivery ("ws_slow0001", "a", "{}", 0);
    sb_reactor_t *reactor = sb_reactor_new ();
    sb_wh_deliver_t *deliver = s_deliver_new (reactor, "0,1", 2000, 3600, "127.0.0.1", 64);
    assert_true (s_run_until (reactor, deliver, "SELECT count (*) = 23 FROM webhook_deliveries WHERE state = 'delivered'",
                              S_WAIT_MS));
    assert_int_equal (s_rx_count ("/rate"), 15);
    assert_int_equal (s_rx_count ("/slow"), 8);
    pthread_mutex_lock (&s_rx.lock);
    assert_int_equal (s_rx.slow_max, 2);
    int64_t first = -1, last = -1;
    int64_t times [S_MAX_REQUESTS];
    size_t count = 0;
    for (size_t at = 0; at < s_rx.count; at++)
        if (strcmp (s_rx.requests [at].path, "/rate") == 0) {
            int64_t t = s_rx.requests [at].at_ms;
            times [count++] = t;
            if (first < 0 || t < first)
                first = t;
            if (t > last)
                last = t;
        }
    pthread_mutex_unlock (&s_rx.lock);
    //  (15 - 5 burst) / 5 per second = 2 s, less the timer's slack
    if (last - first < 1800)
        fail_msg ("15 deliveries at 5/s came within %lld ms", (long long) (last - first));
    //  In any second at most the burst and one second's refill
    for (size_t i = 0; i < count; i++) {
        int in_window = 0;
        for (size_t k = 0; k < count; k++)
            if (times [k] >= times [i] && times [k] < times [i] + 1000)
                in_window++;
        if (in_window > 10)
            fail_msg ("%d deliveries within one second at 5/s", in_window);
    }
    sb_wh_deliver_destroy (&deliver);
    sb_reactor_destroy (&reactor);
    s_cleanup ();
}

static void
test_killed_worker (void **state)
{
    s_cleanup ();
    s_subscription ("ws_kill0001", "127.0.0.1", "/hang", 10, 8);
    for (int i = 0; i < 3; i++)
        s_delivery ("ws_kill0001", "a", "{}", 0);
    //  A webhook worker (sb-worker, its deliverer with a 4 s timeout: a
    //  7 s lease) claims them and hangs on them. No broker is needed for
    //  deliveries: it only reconnects in vain.
    char broker [64];
    snprintf (broker, sizeof broker, "tcp://127.0.0.1:%d", sb_harness_free_port ());
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "webhook", "--broker", broker, "--db", s_db,
        "--migrations", SB_SOURCE_DIR "/db/migrations", "--secret-key-file", s_key_file,
        "--webhook-allow-hosts", "127.0.0.1", "--webhook-delivery-timeout-ms", "4000",
        "--webhook-retry-schedule", "0,1", "--log-level", "warn", NULL
    };
    pid_t child = sb_harness_spawn (argv, NULL);
    assert_true (child > 0);
    int64_t deadline = sb_harness_now_ms () + S_WAIT_MS;
    while (s_rx_count ("/hang") < 3 && sb_harness_now_ms () < deadline)
        sb_harness_pause_ms (20);
    assert_int_equal (s_rx_count ("/hang"), 3);
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_deliveries WHERE lease_owner LIKE 'whd-%'"
                                "   AND lease_until > now ()", NULL, NULL), 3);
    sb_harness_kill (child);
    //  The endpoint recovers; another deliverer takes the three only once
    //  their leases have passed
    s_exec ("UPDATE webhook_subscriptions SET url = replace (url, '/hang', '/ok')", 0);
    s_exec ("CREATE TEMP TABLE leases AS SELECT id, lease_until FROM webhook_deliveries", 0);
    sb_reactor_t *reactor = sb_reactor_new ();
    sb_wh_deliver_t *deliver = s_deliver_new (reactor, "0,1", 2000, 3600, "127.0.0.1", 8);
    assert_true (s_run_until (reactor, deliver, "SELECT count (*) = 3 FROM webhook_deliveries WHERE state = 'delivered'",
                              S_WAIT_MS));
    assert_int_equal (s_rx_count ("/ok"), 3);
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_attempts a JOIN leases l ON l.id = a.delivery_id"
                                " WHERE a.status = 200 AND a.at >= l.lease_until", NULL, NULL), 3);
    //  The killed worker recorded nothing
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_attempts", NULL, NULL), 3);
    s_exec ("DROP TABLE leases", 0);
    sb_wh_deliver_destroy (&deliver);
    sb_reactor_destroy (&reactor);
    s_cleanup ();
}

static void
test_disable (void **state)
{
    s_cleanup ();
    s_subscription ("ws_dis00001", "127.0.0.1", "/fail", 10, 4);
    s_subscription ("ws_gone0001", "127.0.0.1", "/gone", 10, 4);
    s_delivery ("ws_dis00001", "a", "{}", 0);
    s_delivery ("ws_dis00001", "a", "{}", 3600);       //  pending, not yet due
    s_delivery ("ws_gone0001", "a", "{}", 0);
    s_delivery ("ws_gone0001", "a", "{}", 3600);
    sb_reactor_t *reactor = sb_reactor_new ();
    //  Failing for more than 1 s disables, long before the schedule ends
    sb_wh_deliver_t *deliver = s_deliver_new (reactor, "0,1,1,1,1,1,1", 2000, 1, "127.0.0.1", 8);
    assert_true (s_run_until (reactor, deliver, "SELECT count (*) = 2 FROM webhook_subscriptions WHERE NOT enabled",
                              S_WAIT_MS));
    assert_string_equal (s_text ("SELECT disabled_reason LIKE 'every delivery failed for % s (the last: HTTP 500)'"
                                 "   AND disabled_at IS NOT NULL FROM webhook_subscriptions WHERE id = 'ws_dis00001'",
                                 NULL, NULL, NULL), "t");
    assert_string_equal (s_text ("SELECT disabled_reason FROM webhook_subscriptions WHERE id = 'ws_gone0001'",
                                 NULL, NULL, NULL), "the endpoint answered 410 Gone");
    assert_int_equal (s_number ("SELECT count (*) FROM webhook_deliveries WHERE state = 'dead'"
                                "   AND finished_at IS NOT NULL", NULL, NULL), 4);
    assert_int_equal (s_rx_count ("/gone"), 1);
    assert_true (s_rx_count ("/fail") >= 2);
    assert_int_equal (s_number ("SELECT count (*) FROM audit_log WHERE tenant_id = '" S_TENANT "'"
                                "   AND action = 'webhook_subscription_disabled'"
                                "   AND detail ->> 'subscription' IN ('ws_dis00001', 'ws_gone0001')"
                                "   AND (detail ->> 'dead')::int = CASE detail ->> 'subscription'"
                                "       WHEN 'ws_dis00001' THEN 2 ELSE 1 END", NULL, NULL), 2);
    sb_wh_deliver_stats_t stats;
    sb_wh_deliver_stats (deliver, &stats);
    assert_int_equal (stats.disabled, 2);
    //  Disabled: nothing more is sent
    int sent = s_rx_count (NULL);
    s_run_for (reactor, 3 * SB_WH_DELIVER_POLL_MS);
    assert_int_equal (s_rx_count (NULL), sent);
    sb_wh_deliver_destroy (&deliver);
    sb_reactor_destroy (&reactor);
    s_cleanup ();
}

static void
test_schedule (void **state)
{
    int delays [SB_WH_DELIVER_MAX_SCHEDULE];
    size_t count = 0;
    char error [256];
    assert_int_equal (sb_wh_deliver_parse_schedule (SB_WH_DELIVER_SCHEDULE, delays, &count, error,
                                                    sizeof error), 0);
    assert_int_equal (count, 8);
    assert_int_equal (delays [2], 300);
    assert_int_equal (delays [7], 36000);
    assert_int_equal (sb_wh_deliver_parse_schedule ("0", delays, &count, error, sizeof error), 0);
    assert_int_equal (count, 1);
    static const char *bad [] = { "", "0,", ",5", "0,-5", "0,5s", "0,,5", "0,999999999", "1 2", "5,5" };
    for (size_t at = 0; at < sizeof bad / sizeof bad [0]; at++)
        if (sb_wh_deliver_parse_schedule (bad [at], delays, &count, error, sizeof error) == 0)
            fail_msg ("\"%s\" was accepted", bad [at]);
    char many [256] = "0";
    for (int i = 0; i < SB_WH_DELIVER_MAX_SCHEDULE; i++)
        memcpy (many + 1 + 2 * i, ",1", 3);
    assert_int_equal (sb_wh_deliver_parse_schedule (many, delays, &count, error, sizeof error), -1);
    assert_non_null (strstr (error, "more than"));
}

//  ---------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo || s_rx_start ())
        return -1;
    char admin [S_MAX_CONNINFO], sql [128];
    snprintf (admin, sizeof admin, "%s user=postgres dbname=postgres", s_conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (admin, 10000, &error);
    if (!conn) {
        fprintf (stderr, "admin connect: %s\n", error);
        return -1;
    }
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS sbtest_whd_%d", (int) getpid ());
    PQclear (PQexec (conn, sql));
    snprintf (sql, sizeof sql, "CREATE DATABASE sbtest_whd_%d OWNER switchboard", (int) getpid ());
    PGresult *res = PQexec (conn, sql);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
    PQclear (res);
    PQfinish (conn);
    if (rc)
        return -1;
    snprintf (s_db, sizeof s_db, "%s dbname=sbtest_whd_%d", s_conninfo, (int) getpid ());
    s_pg = sb_db_connect_blocking (s_db, 10000, &error);
    if (!s_pg || sb_db_migrate (s_pg, SB_SOURCE_DIR "/db/migrations", &error)) {
        fprintf (stderr, "migrate: %s\n", error? error: "?");
        free (error);
        return -1;
    }
    PQclear (PQexec (s_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    //  A data key as the token role makes it, the tenant, an endpoint
    static sb_token_role_t role;
    memcpy (role.secret, s_master, S_MASTER_LEN);
    role.secret_len = S_MASTER_LEN;
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];
    char hex [2 * (SB_AEAD_KEY_LEN + SB_AEAD_OVERHEAD) + 1];
    if (sb_token_subkey (&role, "connection-keys", box_key)
    ||  sb_crypto_random (s_data_key, sizeof s_data_key)
    ||  sb_token_row_key_seal (box_key, S_KEY_ID, s_data_key, sizeof s_data_key, hex))
        return -1;
    s_exec ("INSERT INTO connection_keys (id, sealed_key, current) VALUES ('" S_KEY_ID "',"
            " decode ($1, 'hex'), true)", 1, hex);
    s_exec ("INSERT INTO tenants (id, name) VALUES ('" S_TENANT "', 'deliveries')", 0);
    s_exec ("INSERT INTO webhook_endpoints (id, tenant_id, connector, scheme, key_id, secret_enc)"
            " VALUES ('" S_ENDPOINT "', '" S_TENANT "', 'stripe', 'stripe', '" S_KEY_ID "', '\\x00')", 0);
    snprintf (s_key_file, sizeof s_key_file, "/tmp/sbtest_whd_%d.key", (int) getpid ());
    FILE *file = fopen (s_key_file, "w");
    if (!file || fprintf (file, "%s\n", S_MASTER) < 0 || fclose (file))
        return -1;
    return 0;
}

static int
s_teardown (void **state)
{
    s_rx.stop = true;
    pthread_join (s_rx_thread, NULL);
    close (s_rx.fd);
    PQfinish (s_pg);
    char admin [S_MAX_CONNINFO], sql [128];
    snprintf (admin, sizeof admin, "%s user=postgres dbname=postgres", s_conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (admin, 10000, &error);
    int rc = -1;
    if (conn) {
        snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS sbtest_whd_%d WITH (FORCE)", (int) getpid ());
        PGresult *res = PQexec (conn, sql);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
        PQclear (res);
        PQfinish (conn);
    }
    free (error);
    free (s_conninfo);
    s_rx_clear ();
    unlink (s_key_file);
    return rc;
}

int
main (void)
{
    sb_log_init ("test", SB_LOG_WARN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_schedule),
        cmocka_unit_test (test_delivered),
        cmocka_unit_test (test_failures_and_replay),
        cmocka_unit_test (test_ssrf),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_killed_worker),
        cmocka_unit_test (test_disable),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
