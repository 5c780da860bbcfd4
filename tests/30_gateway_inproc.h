/*  tests/30_gateway_inproc.h — what the gateway tests that run sb-gateway
    in their own process share (30_gateway_notify, 30_gateway_listen;
    30_gateway_subs writes its connectors folder with it too):
    waiting while the gateway's loop turns, HTTP requests read by threads
    (streams included), and a connectors folder written on the fly.

    The test sets gi_gw to its gateway (NULL while the gateway under test
    runs in another process: waits then pause instead of turning a loop)
    and gi_base to its http://127.0.0.1:port. */
#ifndef SB_GATEWAY_INPROC_H_INCLUDED
#define SB_GATEWAY_INPROC_H_INCLUDED

#include "sb_gateway.h"
#include "sb_harness.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define GI_WAIT_MS      10000   /* longest wait for anything that must happen */
#define GI_META_ID      "io.modelcontextprotocol/subscriptionId"

extern sb_gateway_t *gi_gw;     /* the gateway in this process, or NULL */
extern char gi_base [64];       /* http://127.0.0.1:port of the gateway under test */
extern char gi_key_path [160];
extern char gi_session_key_path [176];  /* the session key file gi_key_make wrote */  /* the token key file gi_key_make wrote */

/*  Makes a random token key and writes it (hex) to /tmp/sb-30-<tag>-key-<pid>
    (gi_key_path) for --token-key-file. Returns 0 or -1. */
int gi_key_make (const char *tag);

/*  A token of that key for `tenant`, subject "tester", audience
    gi_base/mcp, valid for `lifetime_s` seconds (new string). */
char *gi_issue (const char *tenant, int64_t lifetime_s);

/*  Monotonic milliseconds. */
int64_t gi_now_ms (void);

/*  One wait step: a turn of gi_gw's loop, or a 5 ms pause without one. */
void gi_turn (void);

/*  Waits up to GI_WAIT_MS for `cond`, turning the loop; asserts it. */
#define GI_WAIT_FOR(cond) do { \
    int64_t deadline_ = gi_now_ms () + GI_WAIT_MS; \
    while (!(cond) && gi_now_ms () < deadline_) \
        gi_turn (); \
    assert_true (cond); \
} while (0)

/*  One request to gi_base/mcp, run by a thread of its own. */
typedef struct {
    pthread_mutex_t lock;       /* guards what the thread writes while it runs */
    sb_harness_response_t response; /* received so far (body, headers) */
    long status;
    char session [512];         /* Mcp-Session-Id answered */
    bool done;
    int rc;
    char method [8];
    char *request;              /* body sent, or NULL */
    char *headers [9];          /* extra headers, NULL-terminated */
    const char *token;
    pthread_t thread;
    size_t seen;                /* events already taken by gi_next_events */
    bool leave;                 /* set (under lock): the client goes away */
} gi_http_t;

/*  Starts `method` with `body` (may be NULL) as `token`, in `session` (may
    be NULL or ""), with up to 5 extra headers (NULL-terminated, may be
    NULL). */
gi_http_t *gi_start (const char *method, const char *token, const char *session,
                     const char **extra, const char *body);

/*  True once the request has ended. */
bool gi_done (gi_http_t *h);

/*  Waits for the end of the request (the loop turning meanwhile); asserts
    the transfer worked. */
void gi_finish (gi_http_t *h);

/*  Frees an ended request. */
void gi_free (gi_http_t *h);

/*  A copy of the body so far (new string). */
char *gi_body (gi_http_t *h);

/*  The data of the complete SSE events so far, or of a JSON body (new array). */
json_t *gi_events (gi_http_t *h);

/*  True when the body so far holds `text`. */
bool gi_has (gi_http_t *h, const char *text);

/*  How many complete events came so far. */
size_t gi_event_count (gi_http_t *h);

/*  One POST run to its end; its last JSON-RPC message (new reference).
    *status (may be NULL) receives the HTTP status. */
json_t *gi_rpc (const char *token, const char *session, const char **extra, const char *body,
                long *status);

/*  The next `count` events of stream `h` as "method", "method uri" or
    "result", each followed by "#<subscriptionId>" when it carries one,
    joined by "; " (new string); waits for them. */
char *gi_next_events (gi_http_t *h, size_t count);

/*  Asserts the next `count` events read as `expected` (see above). */
void gi_expect (gi_http_t *h, size_t count, const char *expected);

/*  Writes <dir>/notes.json: tools `tools` (comma-separated names, each the
    builtin test_simple_text), resources note/one..three with the texts
    given (NULL: absent), the template test://note/{id}/raw rendering `raw`,
    and one prompt described `prompt`. Written aside and renamed. */
void gi_write (const char *dir, const char *tools, const char *one, const char *two,
               const char *three, const char *raw, const char *prompt);

/*  Writes <dir>/<name> with `text`. */
void gi_write_file (const char *dir, const char *name, const char *text);

/*  Removes the files gi_write and the tests leave in `dir`, then `dir`. */
void gi_remove_dir (const char *dir);

#endif
