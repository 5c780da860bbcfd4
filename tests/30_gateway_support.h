/*  tests/30_gateway_support.h — the fixture of the gateway's call tests
    (30_gateway_calls, 30_gateway_modern): the real sb-gateway against a
    fake broker in this process, tokens, and a threaded HTTP client.

    The fake broker acts on the tool arguments' text:
      "talk"    NOTIFY progress 1..3, NOTIFY messages debug, info and error,
                then REPLY ok
      "ask"     ASK elicitation/create (ask 1); on the ANSWER of the job's
                tenant, REPLY ok with the answer in structuredContent
      "sample"  the same with sampling/createMessage
      "hold"    NOTIFY an info message, then nothing until told "LATE"
                (then a late REPLY ok)
      "limited_rate", "limited_monthly", "limited_in_flight", "limited_budget"
                REPLY limited with the quota group the broker would give
                (a budget's limit and window from the REQUEST)
      "policy"  REPLY ok carrying a rate policy (plan "pro", 1200/min, 1187 left)
      "needinput"  in round 1: an input-required result (2026-07-28)
      else      REPLY ok at once
    and records every CANCEL and ANSWER it gets, and the metering fields of
    the last REQUEST ("METER": "cost conn|- budget_limit budget_window_s
    round"), for the test to ask about. */
#ifndef SB_GATEWAY_SUPPORT_H_INCLUDED
#define SB_GATEWAY_SUPPORT_H_INCLUDED

#include "sb_harness.h"
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#define TG_WAIT_MS      10000   /* longest wait for any event */

extern pid_t tg_gateway;        /* the sb-gateway under test */
extern char tg_base [64];       /* http://127.0.0.1:port */
extern char *tg_token;          /* bearer token, tenant "acme" */
extern char *tg_other;          /* bearer token, tenant "globex" */

/*  Starts the fake broker and the gateway (`tag` names the key file).
    Returns 0 or -1, as a cmocka group setup does. */
int tg_fixture_start (const char *tag);

/*  The same with the gateway's --connectors `connectors`. */
int tg_fixture_start_with (const char *tag, const char *connectors);

/*  Stops both; -1 when the gateway did not exit 0 (sanitizer reports). */
int tg_fixture_stop (void);

/*  Asks the fake broker `command` ("RECEIVED", "CANCELS", "ANSWERS",
    "ANSWER <i>", "LATE", "METER"); returns its answer (caller frees). */
char *tg_broker_ask (const char *command);

/*  The broker's answer to `command` as a number (-1 if none). */
int tg_broker_int (const char *command);

/*  Waits until the broker's count `command` reaches `value` (asserts). */
void tg_wait_count (const char *command, int value);

/*  One POST to /mcp, read by a thread. */
typedef struct {
    pthread_mutex_t lock;       /* guards what the thread writes while it runs */
    sb_harness_response_t response; /* what came so far (body, headers) */
    long status;
    char session_id [512];
    char content_type [128];
    bool done;
    int rc;
    //  request
    char *extra [6];
    const char *token;
    char *request;
    bool http2;
    bool hang_up;               /* set (under lock) to drop the connection */
    pthread_t thread;
} tg_http_t;

/*  Starts a POST of `body` with `token` and up to 5 extra headers
    (NULL-terminated, copied; may be NULL) in a thread. */
tg_http_t *tg_start (const char **headers, const char *token, const char *body);

/*  Waits until the stream holds an event with `method` (asserts); returns
    it (new reference). */
json_t *tg_wait_method (tg_http_t *h, const char *method);

/*  Drops the POST's connection mid-response (the client leaving), then
    waits for its thread to end. */
void tg_hang_up (tg_http_t *h);

/*  The same over HTTP/2 (h2c with prior knowledge). */
tg_http_t *tg_start_http2 (const char **headers, const char *token, const char *body);

/*  Waits for the POST's thread to end. */
void tg_join (tg_http_t *h);

/*  Frees a finished POST. */
void tg_free (tg_http_t *h);

/*  A POST that runs to its end (asserts the transfer worked). */
tg_http_t *tg_post (const char **headers, const char *token, const char *body);

/*  The JSON data of the complete events on a stream body so far (new array). */
json_t *tg_events (tg_http_t *h);

#endif
