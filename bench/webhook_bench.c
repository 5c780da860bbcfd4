/*  bench/webhook_bench.c — sb-webhook-bench: a load generator for inbound
    webhooks (issue 23's benchmark, bench/webhooks; the fault test
    tests/48_e2e_webhook_faults.sh drives it too). It plays a provider that
    signs every event per Standard Webhooks with the endpoint's "whsec_"
    secret and POSTs it to a gateway's /webhooks/{endpoint}: closed loop,
    CONNECTIONS keep-alive HTTP/1.1 connections, each sending its next
    request as soon as the previous answer came.

    Every event is unique: number n of the run has webhook-id
    "msg_<prefix>_<n>" and the body {"type":"bench.created","data":{"n":n,…}},
    signed when it is sent (webhook-timestamp is the wall clock then), so
    a run of any length stores one row per answered event, and the
    numbers that were not answered 2xx can be sent again (--numbers-file)
    to test that a resend stores them and only them.

    Usage: sb-webhook-bench --url http://127.0.0.1:P/webhooks/ID --secret-file FILE
                            [--connections N] [--duration-ms MS | --count N | --numbers-file FILE]
                            [--first N] [--prefix P] [--log FILE] [--pad BYTES]
      --secret-file   first line: the endpoint's "whsec_<base64>" secret
      --connections   1..S_MAX_CONNECTIONS, default 32
      --duration-ms   send new events for this long, then wait for the answers
                      (SIGINT or SIGTERM: the same at once)
      --count         send events first..first+count-1, each once (default 1000)
      --numbers-file  send exactly the numbers listed, one a line
      --first         the first number (default 1)
      --prefix        the ids' prefix (default: random, 8 characters)
      --log           one line per answer: "<n> <status>" (0: no answer:
                      connection refused or reset, or no answer within
                      S_REQUEST_TIMEOUT_MS)
      --pad           bytes of padding in each body (default 64)

    Prints, as its last line:
      sent=… ok=… non2xx=… failed=… elapsed_s=… rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… cpu_s=… prefix=…
    where rps counts the 2xx answers per second of the run and cpu_s is
    this program's own CPU time (user + system). Exit: 0 when
    every request was answered 2xx, 1 when one was not, 2 bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <signal.h>
#include <strings.h>
#include <time.h>

#include "sb_clock.h"
#include "sb_crypto.h"

#define S_MAX_CONNECTIONS       1024        /* --connections */
#define S_MAX_NUMBERS           10000000    /* --count, --numbers-file lines */
#define S_MAX_DURATION_MS       3600000     /* --duration-ms */
#define S_MAX_PAD               65536       /* --pad */
#define S_MAX_PREFIX            32          /* --prefix, characters [A-Za-z0-9_-] */
#define S_MAX_SECRET_KEY        64          /* bytes of the key after "whsec_" */
#define S_MAX_REQUEST           (S_MAX_PAD + 2048)  /* one request, head and body */
#define S_MAX_RESPONSE          65536       /* one answer, head and body */
#define S_MAX_SAMPLES           20000000    /* latencies kept for the percentiles */
#define S_REQUEST_TIMEOUT_MS    30000       /* an answer must come within this */
#define S_RECONNECT_MS          100         /* after a refused connection */
#define S_DRAIN_MS              60000       /* after --duration-ms, the last answers */

typedef enum { S_IDLE, S_SENDING, S_READING, S_WAITING } s_state_t;

//  One keep-alive connection and the request it carries.
typedef struct {
    int fd;                         /* -1 when closed */
    s_state_t state;
    int64_t n;                      /* the event it carries */
    int64_t started_us;             /* when its request was first written */
    int64_t retry_at_ms;            /* S_WAITING: reconnect then */
    char request [S_MAX_REQUEST];
    size_t request_len, written;
    char response [S_MAX_RESPONSE];
    size_t response_len;
} s_conn_t;

//  The run.
typedef struct {
    struct sockaddr_in addr;        /* the gateway */
    char host [64];                 /* Host header */
    char path [256];                /* /webhooks/ID */
    uint8_t key [S_MAX_SECRET_KEY]; /* the secret's bytes after whsec_ */
    size_t key_len;
    char prefix [S_MAX_PREFIX + 1];
    size_t pad;
    int64_t *numbers;               /* --numbers-file, or NULL */
    int64_t number_count;           /* events to send (count mode) */
    int64_t first;
    int64_t next;                   /* index of the next event to send */
    int64_t deadline_ms;            /* duration mode: no new event after this; else 0 */
    FILE *log;
    int64_t sent, ok, non2xx, failed;
    uint32_t *samples;              /* latencies, µs */
    size_t sample_count, sample_cap;
    int64_t max_us;
} s_run_t;

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char s_b64 [] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

//  Standard base64 with padding (Standard Webhooks' signatures).
static void
s_base64 (const uint8_t *in, size_t len, char *out)
{
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t) in [i] << 16 | (uint32_t) in [i + 1] << 8 | in [i + 2];
        *out++ = s_b64 [v >> 18 & 63];
        *out++ = s_b64 [v >> 12 & 63];
        *out++ = s_b64 [v >> 6 & 63];
        *out++ = s_b64 [v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t) in [i] << 16 | (i + 1 < len ? (uint32_t) in [i + 1] << 8 : 0);
        *out++ = s_b64 [v >> 18 & 63];
        *out++ = s_b64 [v >> 12 & 63];
        *out++ = i + 1 < len ? s_b64 [v >> 6 & 63] : '=';
        *out++ = '=';
    }
    *out = 0;
}

//  Decodes standard base64 (padding optional). Returns the length, or -1.
static int
s_unbase64 (const char *in, uint8_t *out, size_t size)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t len = 0;
    for (; *in && *in != '='; in++) {
        const char *at = strchr (s_b64, *in);
        if (!at || !*in)
            return -1;
        acc = acc << 6 | (uint32_t) (at - s_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (len >= size)
                return -1;
            out [len++] = (uint8_t) (acc >> bits & 0xff);
        }
    }
    return (int) len;
}

static int
s_read_secret (s_run_t *run, const char *path)
{
    char *why = NULL;
    char *secret = sb_secret_read_file (path, &why);
    if (!secret) {
        fprintf (stderr, "sb-webhook-bench: --secret-file %s: %s\n", path, why ? why : "out of memory");
        free (why);
        return -1;
    }
    int len = strncmp (secret, "whsec_", 6) == 0
            ? s_unbase64 (secret + 6, run->key, sizeof run->key) : -1;
    sb_secret_free (&secret);
    if (len < 1) {
        fprintf (stderr, "sb-webhook-bench: --secret-file: not a whsec_ secret of at most %d bytes\n",
                 S_MAX_SECRET_KEY);
        return -1;
    }
    run->key_len = (size_t) len;
    return 0;
}

//  Parses a URL http://A.B.C.D:PORT/PATH into the run.
static int
s_parse_url (s_run_t *run, const char *url)
{
    char ip [32];
    unsigned port = 0;
    int used = 0;
    if (strncmp (url, "http://", 7) || sscanf (url + 7, "%31[0-9.]:%u%n", ip, &port, &used) != 2
    ||  port == 0 || port > 65535 || url [7 + used] != '/'
    ||  strlen (url + 7 + used) >= sizeof run->path
    ||  inet_pton (AF_INET, ip, &run->addr.sin_addr) != 1) {
        fprintf (stderr, "sb-webhook-bench: --url is http://IPv4:PORT/webhooks/ID, not %s\n", url);
        return -1;
    }
    run->addr.sin_family = AF_INET;
    run->addr.sin_port = htons ((uint16_t) port);
    snprintf (run->host, sizeof run->host, "%s:%u", ip, port);
    snprintf (run->path, sizeof run->path, "%s", url + 7 + used);
    return 0;
}

static int
s_read_numbers (s_run_t *run, const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "sb-webhook-bench: cannot read --numbers-file %s: %s\n", path, strerror (errno));
        return -1;
    }
    size_t cap = 1024;
    run->numbers = malloc (cap * sizeof *run->numbers);
    char line [64];
    int rc = 0;
    while (run->numbers && fgets (line, sizeof line, file)) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll (line, &end, 10);
        if (end == line && (*line == '\n' || !*line))
            continue;                   //  a blank line
        if (errno || end == line || (*end && *end != '\n') || n < 0
        ||  run->number_count >= S_MAX_NUMBERS) {
            fprintf (stderr, "sb-webhook-bench: --numbers-file: not a number, or more than %d: %s",
                     S_MAX_NUMBERS, line);
            rc = -1;
            break;
        }
        if ((size_t) run->number_count == cap) {
            int64_t *grown = realloc (run->numbers, (cap *= 2) * sizeof *grown);
            if (!grown) {
                rc = -1;
                break;
            }
            run->numbers = grown;
        }
        run->numbers [run->number_count++] = n;
    }
    fclose (file);
    return run->numbers ? rc : -1;
}

//  Builds connection c's request for event n, signed now.
static void
s_build (s_run_t *run, s_conn_t *c, int64_t n)
{
    char body [S_MAX_PAD + 256];
    int body_len = snprintf (body, sizeof body,
                             "{\"type\":\"bench.created\",\"data\":{\"n\":%lld,\"prefix\":\"%s\",\"pad\":\"%.*s\"}}",
                             (long long) n, run->prefix, (int) run->pad,
                             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    //  Past 64 bytes of padding the body is padded with x by hand.
    if (run->pad > 64) {
        size_t at = (size_t) body_len - 3;      //  before "}}
        memmove (body + at + run->pad - 64, body + at, 4);
        memset (body + at, 'x', run->pad - 64);
        body_len += (int) run->pad - 64;
    }
    char id [64];
    snprintf (id, sizeof id, "msg_%s_%lld", run->prefix, (long long) n);
    long long ts = (long long) (sb_clock_wall_ms () / 1000);
    char signed_head [128];
    int head_len = snprintf (signed_head, sizeof signed_head, "%s.%lld.", id, ts);
    //  HMAC over "<id>.<ts>.<body>": one buffer.
    char content [sizeof signed_head + sizeof body];
    memcpy (content, signed_head, (size_t) head_len);
    memcpy (content + head_len, body, (size_t) body_len);
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (run->key, run->key_len, (const uint8_t *) content,
                    (size_t) head_len + (size_t) body_len, mac);
    char signature [64];
    s_base64 (mac, sizeof mac, signature);
    int len = snprintf (c->request, sizeof c->request,
                        "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nwebhook-id: %s\r\nwebhook-timestamp: %lld\r\n"
                        "webhook-signature: v1,%s\r\n\r\n%.*s",
                        run->path, run->host, body_len, id, ts, signature, body_len, body);
    c->request_len = (size_t) len;
    c->written = 0;
    c->response_len = 0;
    c->n = n;
}

//  SIGINT or SIGTERM: send nothing new, wait for the answers in flight.
static volatile sig_atomic_t s_stopping = 0;

static void
s_on_stop (int signum)
{
    (void) signum;
    s_stopping = 1;
}

//  The next event to send, or -1 when there is none.
static int64_t
s_next (s_run_t *run)
{
    if (s_stopping)
        return -1;
    if (run->deadline_ms) {
        if (sb_clock_mono_ms () >= run->deadline_ms)
            return -1;
        return run->first + run->next++;
    }
    if (run->next >= run->number_count)
        return -1;
    int64_t index = run->next++;
    return run->numbers ? run->numbers [index] : run->first + index;
}

static void
s_record (s_run_t *run, s_conn_t *c, int status)
{
    if (run->log)
        fprintf (run->log, "%lld %d\n", (long long) c->n, status);
    if (status >= 200 && status < 300)
        run->ok++;
    else
    if (status > 0)
        run->non2xx++;
    else
        run->failed++;
    int64_t us = s_now_us () - c->started_us;
    if (us > run->max_us)
        run->max_us = us;
    if (run->sample_count == run->sample_cap && run->sample_cap < S_MAX_SAMPLES) {
        size_t cap = run->sample_cap ? run->sample_cap * 2 : 65536;
        uint32_t *grown = realloc (run->samples, cap * sizeof *grown);
        if (grown) {
            run->samples = grown;
            run->sample_cap = cap;
        }
    }
    if (run->sample_count < run->sample_cap)
        run->samples [run->sample_count++] = (uint32_t) (us > UINT32_MAX ? UINT32_MAX : us);
    c->n = -1;
}

static void
s_close (int epoll, s_conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl (epoll, EPOLL_CTL_DEL, c->fd, NULL);
        close (c->fd);
    }
    c->fd = -1;
}

static int
s_connect (s_run_t *run, int epoll, s_conn_t *c)
{
    c->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect (c->fd, (struct sockaddr *) &run->addr, sizeof run->addr) && errno != EINPROGRESS) {
        close (c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event event = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
    if (epoll_ctl (epoll, EPOLL_CTL_ADD, c->fd, &event)) {
        close (c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

//  Starts connection c's next event; false when there is none.
static bool
s_start (s_run_t *run, int epoll, s_conn_t *c)
{
    int64_t n = s_next (run);
    if (n < 0) {
        c->state = S_IDLE;
        s_close (epoll, c);
        return false;
    }
    s_build (run, c, n);
    c->started_us = s_now_us ();
    run->sent++;
    if (c->fd < 0 && s_connect (run, epoll, c)) {
        s_record (run, c, 0);
        c->state = S_WAITING;
        c->retry_at_ms = sb_clock_mono_ms () + S_RECONNECT_MS;
        return true;
    }
    c->state = S_SENDING;
    struct epoll_event event = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
    epoll_ctl (epoll, EPOLL_CTL_MOD, c->fd, &event);
    return true;
}

//  The connection failed: its event gets status 0, it reconnects later.
static void
s_fail (s_run_t *run, int epoll, s_conn_t *c)
{
    s_close (epoll, c);
    if (c->n >= 0)
        s_record (run, c, 0);
    c->state = S_WAITING;
    c->retry_at_ms = sb_clock_mono_ms () + S_RECONNECT_MS;
}

//  Looks at c's response so far: returns its status once it is whole, 0
//  while more is needed, -1 when it cannot be read. *close_after: the
//  server closes the connection after it.
static int
s_parse (s_conn_t *c, bool *close_after)
{
    c->response [c->response_len] = 0;
    char *end = strstr (c->response, "\r\n\r\n");
    if (!end)
        return c->response_len >= sizeof c->response - 1 ? -1 : 0;
    int status = 0;
    if (sscanf (c->response, "HTTP/1.%*c %d", &status) != 1 || status < 100 || status > 599)
        return -1;
    size_t head = (size_t) (end - c->response) + 4;
    long length = -1;
    bool chunked = false;
    *close_after = false;
    for (char *line = strstr (c->response, "\r\n") + 2; line < end; line = strstr (line, "\r\n") + 2) {
        char *eol = strstr (line, "\r\n");
        *eol = 0;                       //  one header line at a time
        if (strncasecmp (line, "content-length:", 15) == 0)
            length = strtol (line + 15, NULL, 10);
        else
        if (strncasecmp (line, "transfer-encoding:", 18) == 0)
            chunked = strstr (line, "chunked") != NULL;
        else
        if (strncasecmp (line, "connection:", 11) == 0)
            *close_after = strstr (line, "close") != NULL;
        *eol = '\r';
    }
    if (chunked)
        return strstr (c->response + head, "0\r\n\r\n") ? status : 0;
    if (length < 0)
        return -1;
    return c->response_len >= head + (size_t) length ? status : 0;
}

static void
s_on_event (s_run_t *run, int epoll, s_conn_t *c, uint32_t events)
{
    if (c->state == S_SENDING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        while (c->written < c->request_len) {
            ssize_t n = send (c->fd, c->request + c->written, c->request_len - c->written, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n <= 0) {
                s_fail (run, epoll, c);
                return;
            }
            c->written += (size_t) n;
        }
        c->state = S_READING;
        struct epoll_event event = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl (epoll, EPOLL_CTL_MOD, c->fd, &event);
        return;
    }
    if (c->state != S_READING || !(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    for (;;) {
        ssize_t n = recv (c->fd, c->response + c->response_len,
                          sizeof c->response - 1 - c->response_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            s_fail (run, epoll, c);
            return;
        }
        c->response_len += (size_t) n;
        bool close_after = false;
        int status = s_parse (c, &close_after);
        if (status < 0) {
            s_fail (run, epoll, c);
            return;
        }
        if (status > 0) {
            s_record (run, c, status);
            if (close_after)
                s_close (epoll, c);
            s_start (run, epoll, c);
            return;
        }
    }
}

static int
s_compare (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

static double
s_percentile_ms (s_run_t *run, double p)
{
    if (run->sample_count == 0)
        return 0;
    size_t index = (size_t) (p * (double) (run->sample_count - 1));
    return run->samples [index] / 1000.0;
}

static int
s_usage (const char *why)
{
    fprintf (stderr, "sb-webhook-bench: %s\n"
             "usage: sb-webhook-bench --url http://IP:PORT/webhooks/ID --secret-file FILE\n"
             "         [--connections N] [--duration-ms MS | --count N | --numbers-file FILE]\n"
             "         [--first N] [--prefix P] [--log FILE] [--pad BYTES]\n", why);
    return 2;
}

static bool
s_number (const char *text, long long low, long long high, long long *value)
{
    char *end = NULL;
    errno = 0;
    *value = strtoll (text, &end, 10);
    return !errno && end != text && !*end && *value >= low && *value <= high;
}

int
main (int argc, char *argv [])
{
    static s_run_t run;
    const char *url = NULL, *secret_file = NULL, *numbers_file = NULL, *log_file = NULL;
    long long connections = 32, duration_ms = 0, count = 1000, first = 1, pad = 64;
    for (int i = 1; i < argc; i += 2) {
        const char *name = argv [i], *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (!value)
            return s_usage ("an option needs a value");
        if (strcmp (name, "--url") == 0)
            url = value;
        else
        if (strcmp (name, "--secret-file") == 0)
            secret_file = value;
        else
        if (strcmp (name, "--numbers-file") == 0)
            numbers_file = value;
        else
        if (strcmp (name, "--log") == 0)
            log_file = value;
        else
        if (strcmp (name, "--prefix") == 0) {
            if (strlen (value) < 1 || strlen (value) > S_MAX_PREFIX
            ||  strspn (value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != strlen (value))
                return s_usage ("--prefix is 1-32 characters of A-Z a-z 0-9 -");
            snprintf (run.prefix, sizeof run.prefix, "%s", value);
        }
        else
        if (strcmp (name, "--connections") == 0) {
            if (!s_number (value, 1, S_MAX_CONNECTIONS, &connections))
                return s_usage ("--connections is 1-1024");
        }
        else
        if (strcmp (name, "--duration-ms") == 0) {
            if (!s_number (value, 1, S_MAX_DURATION_MS, &duration_ms))
                return s_usage ("--duration-ms is 1-3600000");
        }
        else
        if (strcmp (name, "--count") == 0) {
            if (!s_number (value, 1, S_MAX_NUMBERS, &count))
                return s_usage ("--count is 1-10000000");
        }
        else
        if (strcmp (name, "--first") == 0) {
            if (!s_number (value, 0, (long long) 1 << 50, &first))
                return s_usage ("--first is 0-2^50");
        }
        else
        if (strcmp (name, "--pad") == 0) {
            if (!s_number (value, 0, S_MAX_PAD, &pad))
                return s_usage ("--pad is 0-65536");
        }
        else
            return s_usage ("unknown option");
    }
    if (!url || !secret_file)
        return s_usage ("--url and --secret-file are required");
    if (s_parse_url (&run, url) || s_read_secret (&run, secret_file))
        return 2;
    if (numbers_file && s_read_numbers (&run, numbers_file))
        return 2;
    if (!run.prefix [0]) {
        uint8_t random [6];
        if (sb_crypto_random (random, sizeof random))
            return 2;
        char text [16];
        s_base64 (random, sizeof random, text);
        for (char *at = text; *at; at++)
            if (*at == '+' || *at == '/')
                *at = '-';
        snprintf (run.prefix, sizeof run.prefix, "%s", text);
    }
    run.pad = (size_t) pad;
    run.first = first;
    if (!numbers_file)
        run.number_count = count;
    if (log_file) {
        run.log = fopen (log_file, "w");
        if (!run.log) {
            fprintf (stderr, "sb-webhook-bench: cannot write --log %s: %s\n", log_file, strerror (errno));
            return 2;
        }
        setvbuf (run.log, NULL, _IOLBF, 0);     //  a test watches it while the run goes on
    }
    signal (SIGPIPE, SIG_IGN);
    struct sigaction stop = { .sa_handler = s_on_stop };
    sigaction (SIGINT, &stop, NULL);
    sigaction (SIGTERM, &stop, NULL);
    int epoll = epoll_create1 (EPOLL_CLOEXEC);
    s_conn_t *conns = calloc ((size_t) connections, sizeof *conns);
    if (epoll < 0 || !conns) {
        fprintf (stderr, "sb-webhook-bench: out of memory\n");
        return 2;
    }
    int64_t started = sb_clock_mono_ms ();
    if (duration_ms)
        run.deadline_ms = started + duration_ms;
    for (long long i = 0; i < connections; i++) {
        conns [i].fd = -1;
        conns [i].n = -1;
        s_start (&run, epoll, &conns [i]);
    }
    int64_t hard_end = started + (duration_ms ? duration_ms : S_MAX_DURATION_MS) + S_DRAIN_MS;
    for (;;) {
        //  Timeouts, reconnections, and whether anything is still going.
        int64_t now = sb_clock_mono_ms ();
        bool busy = false;
        for (long long i = 0; i < connections; i++) {
            s_conn_t *c = &conns [i];
            if ((c->state == S_SENDING || c->state == S_READING)
            &&  now - c->started_us / 1000 > S_REQUEST_TIMEOUT_MS)
                s_fail (&run, epoll, c);
            if (c->state == S_WAITING && now >= c->retry_at_ms)
                s_start (&run, epoll, c);
            busy |= c->state != S_IDLE;
        }
        if (!busy || now > hard_end)
            break;
        struct epoll_event events [256];
        int ready = epoll_wait (epoll, events, 256, 20);
        for (int i = 0; i < ready; i++)
            s_on_event (&run, epoll, events [i].data.ptr, events [i].events);
    }
    double elapsed_s = (double) (sb_clock_mono_ms () - started) / 1000.0;
    for (long long i = 0; i < connections; i++) {
        if (conns [i].n >= 0)           //  still unanswered at the hard end
            s_record (&run, &conns [i], 0);
        s_close (epoll, &conns [i]);
    }
    close (epoll);
    if (run.log)
        fclose (run.log);
    qsort (run.samples, run.sample_count, sizeof *run.samples, s_compare);
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    double cpu_s = (double) usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6
                 + (double) usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    printf ("sent=%lld ok=%lld non2xx=%lld failed=%lld elapsed_s=%.2f rps=%.0f "
            "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f cpu_s=%.3f prefix=%s\n",
            (long long) run.sent, (long long) run.ok, (long long) run.non2xx, (long long) run.failed,
            elapsed_s, elapsed_s > 0 ? (double) run.ok / elapsed_s : 0,
            s_percentile_ms (&run, 0.50), s_percentile_ms (&run, 0.90), s_percentile_ms (&run, 0.99),
            (double) run.max_us / 1000.0, cpu_s, run.prefix);
    bool all_ok = run.ok == run.sent;
    free (run.samples);
    free (run.numbers);
    free (conns);
    return all_ok ? 0 : 1;
}
