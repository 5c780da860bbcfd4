/*  bench/sb_load.c — sb-load, a small closed-loop HTTP load generator for
    benchmarking the farm (bench/run). N connections (libcurl multi, one
    easy handle per connection, kept alive) each send the same POST again
    as soon as the previous answer arrives, for D seconds. Prints requests
    per second, latency percentiles and errors.

        sb-load --url http://127.0.0.1:8080/mcp --connections 50 --duration 5 \
                --header 'Authorization: Bearer …' --body '{"jsonrpc":"2.0",…}' \
                --expect '"result"'

    A request counts as an error when the transfer fails, the status is not
    2xx, or the body lacks the --expect text. Latencies are kept in a
    bounded reservoir (SB_LOAD_MAX_SAMPLES), so long runs use fixed memory.
    The last output line is machine-readable `key=value` pairs. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SB_LOAD_MAX_CONNECTIONS 1000            /* --connections upper bound */
#define SB_LOAD_MAX_HEADERS     32              /* --header options */
#define SB_LOAD_MAX_BODY        (1024 * 1024)   /* request body, bytes */
#define SB_LOAD_MAX_RESPONSE    (1024 * 1024)   /* response body kept per request, bytes */
#define SB_LOAD_MAX_SAMPLES     (1024 * 1024)   /* latency reservoir entries */
#define SB_LOAD_MAX_DURATION_S  3600            /* --duration upper bound */

/*  One connection: its easy handle and the request in flight. */
typedef struct {
    CURL *easy;             /* the handle (its connection is kept alive) */
    int64_t started_us;     /* when the current request was added */
    char *response;         /* body received so far */
    size_t response_size;   /* bytes in response */
    bool overflow;          /* response exceeded SB_LOAD_MAX_RESPONSE */
} s_conn_t;

/*  The run: options and results. */
typedef struct {
    const char *url;        /* target */
    long connections;       /* concurrent connections */
    long duration_s;        /* length of the run */
    const char *body;       /* request body */
    size_t body_len;        /* its length */
    const char *expect;     /* text an OK response contains (NULL: any 2xx) */
    const char *headers [SB_LOAD_MAX_HEADERS]; /* extra request headers */
    int header_count;       /* entries in headers */
    uint64_t requests;      /* completed requests (ok + errors) */
    uint64_t errors;        /* failed requests */
    uint64_t seen;          /* latencies offered to the reservoir */
    uint32_t *samples;      /* latency reservoir, microseconds */
    size_t sample_count;    /* entries in samples */
    uint64_t rng;           /* xorshift state for reservoir sampling */
    char first_error [256]; /* the first error, for the report */
} s_run_t;

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t
s_random (s_run_t *run)
{
    run->rng ^= run->rng << 13;
    run->rng ^= run->rng >> 7;
    run->rng ^= run->rng << 17;
    return run->rng;
}

/*  Offers one latency to the reservoir (Vitter's algorithm R). */
static void
s_record (s_run_t *run, int64_t latency_us)
{
    uint32_t value = latency_us > UINT32_MAX? UINT32_MAX: (uint32_t) latency_us;
    run->seen++;
    if (run->sample_count < SB_LOAD_MAX_SAMPLES)
        run->samples [run->sample_count++] = value;
    else {
        uint64_t slot = s_random (run) % run->seen;
        if (slot < SB_LOAD_MAX_SAMPLES)
            run->samples [slot] = value;
    }
}

static size_t
s_on_body (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_conn_t *conn = userdata;
    size_t len = size * nmemb;
    if (conn->overflow || conn->response_size + len > SB_LOAD_MAX_RESPONSE) {
        conn->overflow = true;
        return len;                 //  keep the connection; count an error
    }
    memcpy (conn->response + conn->response_size, ptr, len);
    conn->response_size += len;
    conn->response [conn->response_size] = 0;
    return len;
}

static void
s_note_error (s_run_t *run, const char *fmt, const char *detail)
{
    run->errors++;
    if (!run->first_error [0])
        snprintf (run->first_error, sizeof run->first_error, fmt, detail);
}

/*  Judges one finished request. */
static void
s_finish (s_run_t *run, s_conn_t *conn, CURLcode result)
{
    run->requests++;
    s_record (run, s_now_us () - conn->started_us);
    long status = 0;
    curl_easy_getinfo (conn->easy, CURLINFO_RESPONSE_CODE, &status);
    char text [32];
    snprintf (text, sizeof text, "%ld", status);
    if (result != CURLE_OK)
        s_note_error (run, "transfer: %s", curl_easy_strerror (result));
    else
    if (status < 200 || status > 299)
        s_note_error (run, "HTTP status %s", text);
    else
    if (conn->overflow)
        s_note_error (run, "%s", "response larger than SB_LOAD_MAX_RESPONSE");
    else
    if (run->expect && !strstr (conn->response, run->expect))
        s_note_error (run, "response lacks the expected text: %.200s", conn->response);
}

static int
s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return (x > y) - (x < y);
}

static double
s_percentile_ms (const s_run_t *run, double p)
{
    if (run->sample_count == 0)
        return 0;
    size_t index = (size_t) (p * (double) (run->sample_count - 1) + 0.5);
    return run->samples [index] / 1000.0;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: sb-load --url URL [--connections N] [--duration SECONDS]\n"
        "               [--header 'Name: value']... [--body TEXT | --body-file PATH]\n"
        "               [--expect TEXT]\n");
}

/*  Parses a bounded positive integer option value. */
static int
s_parse_long (const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long parsed = strtol (text, &end, 10);
    if (errno || end == text || *end || parsed < min || parsed > max)
        return -1;
    *value = parsed;
    return 0;
}

static char *
s_read_file (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *data = malloc (SB_LOAD_MAX_BODY + 1);
    size_t got = data? fread (data, 1, SB_LOAD_MAX_BODY + 1, file): 0;
    fclose (file);
    if (!data || got > SB_LOAD_MAX_BODY) {
        free (data);
        return NULL;
    }
    data [got] = 0;
    *size = got;
    return data;
}

int
main (int argc, char **argv)
{
    s_run_t run = { .connections = 1, .duration_s = 5, .body = "", .rng = 0x9E3779B97F4A7C15ull };
    char *body_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        const char *value = i + 1 < argc? argv [i + 1]: NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        }
        if (!value) {
            fprintf (stderr, "sb-load: %s needs a value\n", arg);
            return 2;
        }
        i++;
        if (strcmp (arg, "--url") == 0)
            run.url = value;
        else
        if (strcmp (arg, "--connections") == 0) {
            if (s_parse_long (value, 1, SB_LOAD_MAX_CONNECTIONS, &run.connections)) {
                fprintf (stderr, "sb-load: --connections must be 1..%d\n", SB_LOAD_MAX_CONNECTIONS);
                return 2;
            }
        }
        else
        if (strcmp (arg, "--duration") == 0) {
            if (s_parse_long (value, 1, SB_LOAD_MAX_DURATION_S, &run.duration_s)) {
                fprintf (stderr, "sb-load: --duration must be 1..%d\n", SB_LOAD_MAX_DURATION_S);
                return 2;
            }
        }
        else
        if (strcmp (arg, "--header") == 0) {
            if (run.header_count == SB_LOAD_MAX_HEADERS) {
                fprintf (stderr, "sb-load: at most %d headers\n", SB_LOAD_MAX_HEADERS);
                return 2;
            }
            run.headers [run.header_count++] = value;
        }
        else
        if (strcmp (arg, "--body") == 0) {
            run.body = value;
            if (strlen (value) > SB_LOAD_MAX_BODY) {
                fprintf (stderr, "sb-load: body larger than %d bytes\n", SB_LOAD_MAX_BODY);
                return 2;
            }
        }
        else
        if (strcmp (arg, "--body-file") == 0) {
            size_t size;
            free (body_file);
            body_file = s_read_file (value, &size);
            if (!body_file) {
                fprintf (stderr, "sb-load: cannot read %s (or larger than %d bytes)\n",
                         value, SB_LOAD_MAX_BODY);
                return 2;
            }
            run.body = body_file;
        }
        else
        if (strcmp (arg, "--expect") == 0)
            run.expect = value;
        else {
            fprintf (stderr, "sb-load: unknown option %s\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    if (!run.url) {
        s_usage (stderr);
        return 2;
    }
    run.body_len = strlen (run.body);

    curl_global_init (CURL_GLOBAL_DEFAULT);
    run.samples = malloc (SB_LOAD_MAX_SAMPLES * sizeof run.samples [0]);
    s_conn_t *conns = calloc ((size_t) run.connections, sizeof *conns);
    CURLM *multi = curl_multi_init ();
    struct curl_slist *headers = NULL;
    for (int i = 0; i < run.header_count; i++)
        headers = curl_slist_append (headers, run.headers [i]);
    //  No "Expect: 100-continue" round trip on larger bodies.
    headers = curl_slist_append (headers, "Expect:");
    if (!run.samples || !conns || !multi || !headers) {
        fprintf (stderr, "sb-load: out of memory\n");
        return 1;
    }
    curl_multi_setopt (multi, CURLMOPT_MAXCONNECTS, run.connections);

    int64_t start_us = s_now_us ();
    int64_t end_us = start_us + (int64_t) run.duration_s * 1000000;
    for (long i = 0; i < run.connections; i++) {
        s_conn_t *conn = &conns [i];
        conn->response = malloc (SB_LOAD_MAX_RESPONSE + 1);
        conn->easy = curl_easy_init ();
        if (!conn->response || !conn->easy) {
            fprintf (stderr, "sb-load: out of memory\n");
            return 1;
        }
        curl_easy_setopt (conn->easy, CURLOPT_URL, run.url);
        curl_easy_setopt (conn->easy, CURLOPT_POST, 1L);
        curl_easy_setopt (conn->easy, CURLOPT_POSTFIELDS, run.body);
        curl_easy_setopt (conn->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) run.body_len);
        curl_easy_setopt (conn->easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt (conn->easy, CURLOPT_WRITEFUNCTION, s_on_body);
        curl_easy_setopt (conn->easy, CURLOPT_WRITEDATA, conn);
        curl_easy_setopt (conn->easy, CURLOPT_PRIVATE, conn);
        curl_easy_setopt (conn->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (conn->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt (conn->easy, CURLOPT_TIMEOUT_MS, 30000L);
        conn->response [0] = 0;
        conn->started_us = s_now_us ();
        curl_multi_add_handle (multi, conn->easy);
    }

    int running = (int) run.connections;
    while (running > 0) {
        CURLMcode mc = curl_multi_perform (multi, &running);
        if (mc != CURLM_OK) {
            fprintf (stderr, "sb-load: %s\n", curl_multi_strerror (mc));
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read (multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            s_conn_t *conn;
            curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &conn);
            s_finish (&run, conn, result);
            curl_multi_remove_handle (multi, easy);
            if (s_now_us () < end_us) {
                //  Closed loop: the next request on the same (kept-alive) connection.
                conn->response_size = 0;
                conn->response [0] = 0;
                conn->overflow = false;
                conn->started_us = s_now_us ();
                curl_multi_add_handle (multi, easy);
                running++;
            }
        }
        if (running > 0)
            curl_multi_poll (multi, NULL, 0, 100, NULL);
    }
    double elapsed_s = (double) (s_now_us () - start_us) / 1e6;

    qsort (run.samples, run.sample_count, sizeof run.samples [0], s_cmp_u32);
    double rps = elapsed_s > 0? (double) run.requests / elapsed_s: 0;
    printf ("sb-load: %s, %ld connection(s), %.2f s\n", run.url, run.connections, elapsed_s);
    printf ("  requests %llu (%.1f/s), errors %llu\n", (unsigned long long) run.requests, rps,
            (unsigned long long) run.errors);
    printf ("  latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
            s_percentile_ms (&run, 0.50), s_percentile_ms (&run, 0.90),
            s_percentile_ms (&run, 0.99), s_percentile_ms (&run, 1.0));
    if (run.first_error [0])
        printf ("  first error: %s\n", run.first_error);
    printf ("connections=%ld duration_s=%.2f requests=%llu errors=%llu rps=%.1f "
            "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
            run.connections, elapsed_s, (unsigned long long) run.requests,
            (unsigned long long) run.errors, rps,
            s_percentile_ms (&run, 0.50), s_percentile_ms (&run, 0.90),
            s_percentile_ms (&run, 0.99), s_percentile_ms (&run, 1.0));

    for (long i = 0; i < run.connections; i++) {
        curl_easy_cleanup (conns [i].easy);
        free (conns [i].response);
    }
    curl_multi_cleanup (multi);
    curl_slist_free_all (headers);
    free (conns);
    free (run.samples);
    free (body_file);
    curl_global_cleanup ();
    return run.requests > 0 && run.errors == 0? 0: 1;
}
