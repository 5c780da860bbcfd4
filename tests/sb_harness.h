/*  tests/sb_harness.h — helpers for integration tests: free ports, starting
    the farm's real processes, waiting on them, stopping them by PID, and the
    one HTTP client of the tests (libcurl easy; tests only).

    Binaries are found in SB_BIN_DIR (compile definition set by CMake to the
    build's bin/ folder). A real PostgreSQL for tests is started once per
    ctest run by the `postgres` fixture (tests/pg_fixture.sh) which writes
    its connection string to SB_TEST_PG_FILE; sb_harness_pg_conninfo reads it. */
#ifndef SB_HARNESS_H_INCLUDED
#define SB_HARNESS_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#define SB_HARNESS_WAIT_MS 15000    /* default wait for a process to be ready */

/*  A free TCP port on 127.0.0.1 (bound then released), never one this
    process was given before (the last 256), so two servers of one test
    never get the same port; -1 when none could be found. */
int sb_harness_free_port (void);

/*  Writes a new random 32-byte key as 64 hex digits to `path` (a token
    key or a session key file, as sb_keyfile reads). Returns 0 or -1. */
int sb_harness_write_key (const char *path);

/*  Path of a built binary ("sb-broker" → "<build>/bin/sb-broker"); static buffer per call slot. */
const char *sb_harness_bin (const char *name);

/*  Starts argv[0] (a full path) with argv, the current environment plus
    `env` entries ("NAME=value", NULL-terminated, may be NULL). stdout and
    stderr go to the test's stderr with a "[name] " prefix is NOT added —
    they are inherited. Returns the PID or -1. */
pid_t sb_harness_spawn (const char *const argv [], const char *const env []);

/*  sb_harness_spawn with the child's stderr written to the file `log`
    (created or truncated). Returns the PID, or -1 (also when `log`
    cannot be opened). */
pid_t sb_harness_spawn_logged (const char *const argv [], const char *const env [], const char *log);

/*  The monotonic clock in milliseconds. */
int64_t sb_harness_now_ms (void);

/*  Pauses `ms` milliseconds: only as a back-off between two looks at a
    condition the caller polls with its own deadline. */
void sb_harness_pause_ms (int ms);

/*  Waits until 127.0.0.1:port accepts a TCP connection. Returns 0 or -1 on timeout. */
int sb_harness_wait_port (int port, int timeout_ms);

/*  Waits until GET url answers 200. Returns 0 or -1 on timeout. */
int sb_harness_wait_http_ok (const char *url, int timeout_ms);

/*  Sends SIGTERM, waits up to 5 s, then SIGKILL; reaps. Returns the exit
    status as waitpid gives it, or -1. */
int sb_harness_stop (pid_t pid);

/*  Sends SIGKILL and reaps. */
void sb_harness_kill (pid_t pid);

/*  True while `pid` is running (not exited, not a zombie we reaped). */
bool sb_harness_alive (pid_t pid);

#define SB_HARNESS_HTTP_TIMEOUT_MS 10000 /* an HTTP request's bound when it names none */

/*  One HTTP request, as every test sends them (the one HTTP client of the
    tests: nothing else sets up libcurl). */
typedef struct {
    const char *method;             /* "GET", "POST", "DELETE", "HEAD"… */
    const char *url;                /* the whole URL */
    const char *const *headers;     /* "Name: value" lines, NULL-terminated, or NULL */
    const char *body;               /* what is sent, or NULL for nothing */
    size_t body_len;                /* bytes of body */
    int timeout_ms;                 /* bound on the whole exchange, 0 for
                                       SB_HARNESS_HTTP_TIMEOUT_MS */
    bool http2;                     /* HTTP/2 with prior knowledge (h2c), not HTTP/1.1 */
    pthread_mutex_t *lock;          /* held while the response is written, for a reader in
                                       another thread (a stream read as it comes), or NULL */
    const bool *hang_up;            /* read under lock about once a second: true drops the
                                       connection mid-response (the client leaving), or NULL */
    pthread_cond_t *progress;       /* broadcast under lock after each piece of the
                                       response is written, or NULL */
} sb_harness_request_t;

/*  What came back. Strings are NUL-terminated and owned by the response. */
typedef struct {
    long status;                    /* the HTTP status, 0 when none came */
    char *headers;                  /* the response's header lines as received, or NULL */
    size_t headers_len;             /* bytes of headers */
    char *body;                     /* the body so far, or NULL when none came */
    size_t body_len;                /* bytes of body */
} sb_harness_response_t;

/*  Sends `request` and fills `response` (emptied first) as the answer
    comes, the body bounded at 16 MiB. Returns 0 when a whole response
    came, else the libcurl error code (a timeout, a refused connection, a
    hang-up); what came before an error stays in `response`. The caller
    clears the response (sb_harness_response_clear). */
int sb_harness_request (const sb_harness_request_t *request, sb_harness_response_t *response);

/*  Copies the value of response header `name` (any case; the last one when
    it came twice) into `value` (`size` bytes, cut to fit, "" when absent).
    Returns true when it came. */
bool sb_harness_header (const sb_harness_response_t *response, const char *name, char *value,
                        size_t size);

/*  Frees what a response holds and empties it; idempotent. */
void sb_harness_response_clear (sb_harness_response_t *response);

/*  A request run by a thread of its own, for a test that acts while the
    answer comes (a stream, a request held by the server). */
typedef struct _sb_harness_call_t sb_harness_call_t;

/*  Starts `request` in a thread (its URL, headers and body copied; its
    lock and hang_up are the call's own). Returns the call, or NULL. */
sb_harness_call_t *sb_harness_call_start (const sb_harness_request_t *request);

/*  Waits up to `timeout_ms` until the body holds `text` (woken by each
    piece that comes). Returns true when it does; false when the request
    ended or the time ran out without it. */
bool sb_harness_call_wait_for (sb_harness_call_t *self, const char *text, int timeout_ms);

/*  sb_harness_header on the response so far. */
bool sb_harness_call_header (sb_harness_call_t *self, const char *name, char *value, size_t size);

/*  True once the request has ended. */
bool sb_harness_call_done (sb_harness_call_t *self);

/*  Waits up to `timeout_ms` for the request to end (with hang_up, drops the
    connection first), then joins its thread. Returns what
    sb_harness_request returned, or -1 when it did not end in time (the
    call then hangs up and ends). *response (may be NULL) borrows the
    response, *done_ms (may be NULL) gets sb_harness_now_ms when it ended;
    both stay valid until the call is destroyed. */
int sb_harness_call_wait (sb_harness_call_t *self, int timeout_ms, bool hang_up,
                          const sb_harness_response_t **response, int64_t *done_ms);

/*  Ends the call (hanging up if it still runs), frees it and nulls the
    caller's pointer; idempotent. */
void sb_harness_call_destroy (sb_harness_call_t **self_p);

/*  sb_harness_request in one call. `headers`: NULL-terminated "Name: value"
    list or NULL. Returns 0 with *status and *resp_body (new, NUL-terminated;
    may be NULL if not wanted) filled, or -1 on transport error. timeout_ms
    bounds the call. */
int sb_harness_http (const char *method, const char *url, const char *const headers [],
                     const char *body, size_t body_len, int timeout_ms,
                     long *status, char **resp_body);

/*  The conninfo of the test PostgreSQL (new string), or NULL when the
    fixture did not run (the test should then fail, not skip). */
char *sb_harness_pg_conninfo (void);

#endif
