/*  tests/38_workers_request.c — a worker asking another service from
    inside a job (sb_worker_request, PROTOCOL.md "Worker requests"), with
    the real broker in-process (sb_broker_actor) and two real worker cores
    in threads: "api" (the asker, a test role) and "token" (the answerer, a
    test role). A gateway socket sends the api worker its jobs; each
    request's outcome is recorded by the asker's callback and also ends the
    parent job, whose REPLY the gateway reads.

    Covered: a REPLY ok / failed reaches the callback with its result; the
    broker's timeout; the deadline cut to the parent's time left; a service
    nobody serves (`unavailable` with retry_after_ms); the worker's own
    service refused at once; cancel (the callback is never called, the late
    REPLY is dropped); the SB_MAX_WORKER_REQUESTS cap; a session reset ends
    what is pending `unavailable`, from the loop. And sb_worker_publish
    through the real broker (PROTOCOL.md "Webhooks"): the gateway gets the
    worker's `resource_updated` as a BROADCAST before the job's REPLY; a
    topic workers may not publish reaches nobody. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "20_broker_support.h"
#include "sb_clock.h"
#include "sb_job.h"
#include "sb_worker.h"

#define S_HEARTBEAT_MS  100     /* the workers' heartbeat: a stalled loop is noticed fast */
#define S_PARENT_MS     8000    /* a parent job's own deadline, unless a test says otherwise */
#define S_TENANT        "acme"

//  ---------------------------------------------------------------------
//  What the asker's callbacks saw (written by the worker thread)

#define S_MAX_OUTCOMES  64

typedef struct {
    char parent [SB_MAX_CORR_ID_LEN + 1];   /* the job that asked */
    sb_status_t status;
    char *result;                           /* result JSON text, or NULL */
    uint32_t retry_after_ms;
    int64_t elapsed_ms;                     /* from sb_worker_request to the callback */
} s_outcome_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_changed = PTHREAD_COND_INITIALIZER;
static s_outcome_t s_outcomes [S_MAX_OUTCOMES];
static size_t s_outcome_count;
static int s_cancelled_calls;           /* callbacks of cancelled requests: must stay 0 */

//  Waits for the outcome of the request `parent` sent; copies it. 0 or -1.
static int
s_outcome_wait (const char *parent, s_outcome_t *out, int timeout_ms)
{
    int64_t deadline = sb_clock_mono_ms () + timeout_ms;
    pthread_mutex_lock (&s_lock);
    int rc = -1;
    while (rc) {
        for (size_t i = 0; i < s_outcome_count; i++)
            if (streq (s_outcomes [i].parent, parent)) {
                *out = s_outcomes [i];
                out->result = s_outcomes [i].result? strdup (s_outcomes [i].result): NULL;
                rc = 0;
            }
        if (rc == 0 || sb_clock_mono_ms () >= deadline)
            break;
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&s_changed, &s_lock, &until);
    }
    pthread_mutex_unlock (&s_lock);
    return rc;
}

//  ---------------------------------------------------------------------
//  The asker role ("api")

//  One request in flight: outlives the parent job if it must.
typedef struct {
    sb_worker_job_t *job;                   /* the parent, NULL once it ended */
    char parent [SB_MAX_CORR_ID_LEN + 1];
    int64_t sent_ms;
} s_ask_t;

//  The callback of requests that are cancelled: must never run.
static void
s_on_cancelled_reply (sb_status_t status, const char *result_json, uint32_t retry_after_ms,
                      void *arg)
{
    pthread_mutex_lock (&s_lock);
    s_cancelled_calls++;
    pthread_mutex_unlock (&s_lock);
}

static void
s_on_reply (sb_status_t status, const char *result_json, uint32_t retry_after_ms, void *arg)
{
    s_ask_t *ask = (s_ask_t *) arg;
    pthread_mutex_lock (&s_lock);
    if (s_outcome_count < S_MAX_OUTCOMES) {
        s_outcome_t *outcome = &s_outcomes [s_outcome_count++];
        memcpy (outcome->parent, ask->parent, sizeof outcome->parent);
        outcome->status = status;
        outcome->result = result_json? strdup (result_json): NULL;
        outcome->retry_after_ms = retry_after_ms;
        outcome->elapsed_ms = sb_clock_mono_ms () - ask->sent_ms;
    }
    pthread_cond_broadcast (&s_changed);
    pthread_mutex_unlock (&s_lock);
    if (ask->job) {
        json_t *answer = json_pack ("{s:s, s:o, s:i}", "status", sb_status_name (status),
                                    "result", result_json? json_loads (result_json, 0, NULL)
                                                         : json_null (),
                                    "retry_after_ms", (json_int_t) retry_after_ms);
        char *text = json_dumps (answer, JSON_COMPACT);
        sb_worker_job_set_data (ask->job, NULL);
        sb_worker_job_done (&ask->job, SB_STATUS_OK, text);
        free (text);
        json_decref (answer);
    }
    free (ask);
}

static void
s_done_json (sb_worker_job_t **job_p, json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT);
    sb_worker_job_done (job_p, SB_STATUS_OK, text);
    free (text);
    json_decref (value);
}

//  Jobs for the asker: op "relay" asks service `connector` for op `tool`
//  with args {"timeout_ms": n, "cancel": bool, "stall_ms": n}; op "flood"
//  asks until refused; op "publish" publishes about a topic the broker
//  refuses, then resource_updated switchboard://events/{connector}; op
//  "stop" stops the worker.
static void
s_asker_start (void *state, sb_worker_job_t *job)
{
    sb_worker_t *worker = (sb_worker_t *) state;
    const sb_job_t *spec = sb_worker_job_spec (job);
    if (streq (spec->op, "stop")) {
        sb_worker_stop (worker);
        sb_worker_job_done (&job, SB_STATUS_OK, "{}");
        return;
    }
    if (streq (spec->op, "publish")) {
        char uri [SB_MAX_RESOURCE_URI_LEN + 1];
        snprintf (uri, sizeof uri, "switchboard://events/%s", spec->connector);
        const char *tenant = sb_worker_job_tenant (job);
        int refused = sb_worker_publish (worker, tenant, "session_ended", uri, strlen (uri));
        int sent = sb_worker_publish (worker, tenant, "resource_updated", uri, strlen (uri));
        s_done_json (&job, json_pack ("{s:i, s:i}", "refused", refused, "sent", sent));
        return;
    }
    json_t *args = spec->args? json_loads (spec->args, 0, NULL): NULL;
    uint32_t timeout_ms = (uint32_t) json_integer_value (json_object_get (args, "timeout_ms"));
    bool cancel = json_is_true (json_object_get (args, "cancel"));
    useconds_t stall_ms = (useconds_t) json_integer_value (json_object_get (args, "stall_ms"));
    json_decref (args);
    sb_job_t sub = { .op = spec->tool };

    if (streq (spec->op, "flood")) {
        //  Requests nobody will answer soon, until the core refuses one;
        //  then forgets them all (their REPLYs, if any, are dropped)
        int64_t ids [SB_MAX_WORKER_REQUESTS + 1];
        size_t accepted = 0;
        while (accepted <= SB_MAX_WORKER_REQUESTS) {
            int64_t id = sb_worker_request (job, spec->connector, &sub, timeout_ms, 0,
                                            s_on_cancelled_reply, NULL);
            if (id < 0)
                break;
            ids [accepted++] = id;
        }
        size_t in_flight = sb_worker_requests (worker);
        for (size_t i = 0; i < accepted; i++)
            sb_worker_request_cancel (worker, ids [i]);
        s_done_json (&job, json_pack ("{s:i, s:i, s:i}", "accepted", (json_int_t) accepted,
                                      "in_flight", (json_int_t) in_flight,
                                      "after", (json_int_t) sb_worker_requests (worker)));
        return;
    }
    if (!streq (spec->op, "relay")) {
        sb_worker_job_fail_unknown_op (&job);
        return;
    }
    if (cancel) {
        int64_t id = sb_worker_request (job, spec->connector, &sub, timeout_ms, 0,
                                        s_on_cancelled_reply, NULL);
        if (id > 0)
            sb_worker_request_cancel (worker, id);
        s_done_json (&job, json_pack ("{s:i, s:i}", "id", (json_int_t) id,
                                      "requests", (json_int_t) sb_worker_requests (worker)));
        return;
    }
    s_ask_t *ask = calloc (1, sizeof (s_ask_t));
    assert_non_null (ask);
    ask->job = job;
    snprintf (ask->parent, sizeof ask->parent, "%s", sb_worker_job_corr_id (job));
    ask->sent_ms = sb_clock_mono_ms ();
    int64_t id = sb_worker_request (job, spec->connector, &sub, timeout_ms, 0, s_on_reply, ask);
    if (id < 0) {
        free (ask);
        sb_worker_job_fail (&job, "request refused");
        return;
    }
    sb_worker_job_set_data (job, ask);
    if (stall_ms)
        usleep (stall_ms * 1000);   //  a loop that stalls: the broker's heartbeats go unread
}

static void
s_asker_abandon (void *state, sb_worker_job_t *job)
{
    s_ask_t *ask = (s_ask_t *) sb_worker_job_data (job);
    if (ask)
        ask->job = NULL;            //  the request lives on; its callback frees `ask`
}

static const sb_worker_role_t s_asker_role = { s_asker_start, s_asker_abandon };

//  ---------------------------------------------------------------------
//  The answering role ("token")

//  "echo": ok with the tenant; "fail": failed; "slow": never answered;
//  "stop": stops the worker.
static void
s_answerer_start (void *state, sb_worker_job_t *job)
{
    const char *op = sb_worker_job_spec (job)->op;
    if (streq (op, "echo"))
        s_done_json (&job, json_pack ("{s:s, s:s}", "echo", "hello",
                                      "tenant", sb_worker_job_tenant (job)));
    else
    if (streq (op, "fail"))
        sb_worker_job_fail (&job, "told to fail");
    else
    if (streq (op, "stop")) {
        sb_worker_stop ((sb_worker_t *) state);
        sb_worker_job_done (&job, SB_STATUS_OK, "{}");
    }
    else
    if (!streq (op, "slow"))
        sb_worker_job_fail_unknown_op (&job);
}

static void
s_answerer_abandon (void *state, sb_worker_job_t *job)
{
}

static const sb_worker_role_t s_answerer_role = { s_answerer_start, s_answerer_abandon };

//  ---------------------------------------------------------------------
//  The farm: broker, two workers, one gateway

typedef struct {
    sb_worker_t *worker;
    pthread_t thread;
    int rc;
} s_runner_t;

static tb_broker_t *s_broker;
static zsock_t *s_gateway;
static s_runner_t s_asker, s_answerer;
static int s_sequence;

static void *
s_run (void *arg)
{
    s_runner_t *runner = (s_runner_t *) arg;
    runner->rc = sb_worker_run (runner->worker);
    return NULL;
}

static void
s_runner_start (s_runner_t *runner, const char *service, const sb_worker_role_t *role)
{
    runner->worker = sb_worker_new (s_broker->backend, service, 8, S_HEARTBEAT_MS);
    assert_non_null (runner->worker);
    sb_worker_set_role (runner->worker, role, runner->worker);
    assert_int_equal (pthread_create (&runner->thread, NULL, s_run, runner), 0);
}

//  Sends the api worker (or `service`) a job; returns the REPLY's status
//  and result text (*json, caller frees; NULL when none).
static sb_status_t
s_call (const char *service, const char *corr_id, uint32_t timeout_ms, const char *op,
        const char *connector, const char *tool, const char *args, char **json)
{
    sb_job_t spec = { .op = sb_unconst (op), .connector = sb_unconst (connector),
                      .tool = sb_unconst (tool), .args = sb_unconst (args) };
    zframe_t *payload = sb_job_encode (&spec);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, corr_id, service, S_TENANT, timeout_ms, 0,
                                          &payload), 0);
    assert_int_equal (sb_msg_send (s_gateway, &msg, NULL), 0);
    assert_int_equal (tb_recv (s_gateway, &msg, timeout_ms + TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_string_equal (msg.corr_id, corr_id);
    *json = NULL;
    sb_job_result_t result = { 0 };
    if (msg.payload && zframe_size (msg.payload)
    &&  sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload), &result) == 0) {
        *json = result.result;
        result.result = NULL;
    }
    sb_job_result_clear (&result);
    sb_status_t status = msg.status;
    sb_msg_reset (&msg);
    return status;
}

//  A relay through the api worker; returns the parent's reply as JSON.
static json_t *
s_relay (const char *corr_id, const char *service, const char *op, const char *args)
{
    char *text = NULL;
    sb_status_t status = s_call ("api", corr_id, S_PARENT_MS, "relay", service, op, args, &text);
    assert_int_equal (status, SB_STATUS_OK);
    assert_non_null (text);
    json_t *reply = json_loads (text, 0, NULL);
    free (text);
    assert_non_null (reply);
    return reply;
}

static const char *
s_next_id (const char *prefix)
{
    static char id [64];
    snprintf (id, sizeof id, "%s-%d", prefix, ++s_sequence);
    return id;
}

static int
s_setup (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.no_worker_grace_ms = 100;        //  "nobody" is unavailable soon after the start
    config.late_grace_ms = 200;             //  "slow" jobs give the token worker its credit back
    s_broker = tb_broker_start (&config);
    s_gateway = tb_gateway (s_broker);
    s_runner_start (&s_answerer, "token", &s_answerer_role);
    s_runner_start (&s_asker, "api", &s_asker_role);
    return tb_wait_counter (s_broker, offsetof (sb_broker_counters_t, workers), 2, TB_WAIT_MS)
         ? 0: -1;
}

static int
s_teardown (void **state)
{
    char *json = NULL;
    //  The asker may have just reconnected: give the broker time to forget
    //  its old session, so "stop" reaches the live one
    s_call ("api", s_next_id ("stop"), 2000, "stop", NULL, NULL, NULL, &json);
    free (json);
    s_call ("token", s_next_id ("stop"), 2000, "stop", NULL, NULL, NULL, &json);
    free (json);
    pthread_join (s_asker.thread, NULL);
    pthread_join (s_answerer.thread, NULL);
    assert_int_equal (s_asker.rc, 0);
    assert_int_equal (s_answerer.rc, 0);
    sb_worker_destroy (&s_asker.worker);
    sb_worker_destroy (&s_answerer.worker);
    zsock_destroy (&s_gateway);
    tb_broker_stop (&s_broker);
    for (size_t i = 0; i < s_outcome_count; i++)
        free (s_outcomes [i].result);
    return 0;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_reply_ok_and_failed_reach_the_callback (void **state)
{
    const char *parent = s_next_id ("ok");
    json_t *reply = s_relay (parent, "token", "echo", "{\"timeout_ms\":3000}");
    assert_string_equal (json_string_value (json_object_get (reply, "status")), "ok");
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "echo")), "hello");
    //  The request ran for the parent's tenant
    assert_string_equal (json_string_value (json_object_get (result, "tenant")), S_TENANT);
    json_decref (reply);
    s_outcome_t outcome;
    assert_int_equal (s_outcome_wait (parent, &outcome, TB_WAIT_MS), 0);
    assert_int_equal (outcome.status, SB_STATUS_OK);
    assert_non_null (outcome.result);
    free (outcome.result);

    parent = s_next_id ("failed");
    reply = s_relay (parent, "token", "fail", "{\"timeout_ms\":3000}");
    assert_string_equal (json_string_value (json_object_get (reply, "status")), "failed");
    result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "error")), "told to fail");
    json_decref (reply);

    sb_broker_counters_t c = tb_counters (s_broker);
    assert_true (c.worker_requests >= 2);
    assert_true (c.worker_replies >= 2);
    assert_int_equal (c.worker_requests_refused, 0);
}

//  The broker answers `timeout` at the request's deadline; the worker
//  passes it on long before its own timer (deadline + grace) would.
static void
test_timeout_reaches_the_callback (void **state)
{
    const char *parent = s_next_id ("timeout");
    json_t *reply = s_relay (parent, "token", "slow", "{\"timeout_ms\":300}");
    assert_string_equal (json_string_value (json_object_get (reply, "status")), "timeout");
    assert_true (json_is_null (json_object_get (reply, "result")));
    json_decref (reply);
    s_outcome_t outcome;
    assert_int_equal (s_outcome_wait (parent, &outcome, TB_WAIT_MS), 0);
    assert_int_equal (outcome.status, SB_STATUS_TIMEOUT);
    assert_true (outcome.elapsed_ms >= 250);
    assert_true (outcome.elapsed_ms < 300 + SB_WORKER_REQUEST_GRACE_MS / 2);
}

//  A request may not outlive its parent: asked for 6 s by a job with
//  600 ms left, it ends `timeout` at about 600 ms (the parent has been
//  abandoned by then; the callback comes all the same).
static void
test_deadline_cut_to_the_parent (void **state)
{
    const char *parent = s_next_id ("cut");
    sb_job_t spec = { .op = "relay", .connector = "token", .tool = "slow",
                      .args = "{\"timeout_ms\":6000}" };
    zframe_t *payload = sb_job_encode (&spec);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, parent, "api", S_TENANT, 600, 0, &payload), 0);
    assert_int_equal (sb_msg_send (s_gateway, &msg, NULL), 0);
    //  The gateway hears `timeout` for the parent itself
    assert_int_equal (tb_recv (s_gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, parent);
    assert_int_equal (msg.status, SB_STATUS_TIMEOUT);
    sb_msg_reset (&msg);
    s_outcome_t outcome;
    assert_int_equal (s_outcome_wait (parent, &outcome, TB_WAIT_MS), 0);
    assert_int_equal (outcome.status, SB_STATUS_TIMEOUT);
    assert_true (outcome.elapsed_ms < 600 + SB_WORKER_REQUEST_GRACE_MS / 2);
}

//  A service nobody serves: `unavailable` with the broker's advice.
static void
test_unavailable_service (void **state)
{
    const char *parent = s_next_id ("nobody");
    json_t *reply = s_relay (parent, "nobody", "echo", "{\"timeout_ms\":3000}");
    assert_string_equal (json_string_value (json_object_get (reply, "status")), "unavailable");
    assert_int_equal (json_integer_value (json_object_get (reply, "retry_after_ms")), 5000);
    json_decref (reply);
}

//  Asking one's own service is refused at once: nothing is sent, and the
//  callback is never called.
static void
test_own_service_refused (void **state)
{
    uint64_t before = tb_counters (s_broker).worker_requests;
    char *json = NULL;
    assert_int_equal (s_call ("api", s_next_id ("self"), 3000, "relay", "api", "echo",
                              "{\"timeout_ms\":1000}", &json), SB_STATUS_FAILED);
    assert_non_null (strstr (json, "request refused"));
    free (json);
    assert_int_equal (tb_counters (s_broker).worker_requests, before);
}

//  A cancelled request's callback never comes, though its REPLY does (it
//  is dropped): a later request's reply, which the broker sends after it,
//  shows the worker has read it by then.
static void
test_cancel (void **state)
{
    uint64_t replies = tb_counters (s_broker).worker_replies;
    json_t *reply = s_relay (s_next_id ("cancel"), "token", "echo",
                             "{\"timeout_ms\":3000, \"cancel\":true}");
    assert_true (json_integer_value (json_object_get (reply, "id")) > 0);
    assert_int_equal (json_integer_value (json_object_get (reply, "requests")), 0);
    json_decref (reply);
    //  The broker did answer it
    assert_true (tb_wait_counter (s_broker, offsetof (sb_broker_counters_t, worker_replies),
                                  replies + 1, TB_WAIT_MS));
    reply = s_relay (s_next_id ("after-cancel"), "token", "echo", "{\"timeout_ms\":3000}");
    assert_string_equal (json_string_value (json_object_get (reply, "status")), "ok");
    json_decref (reply);
    pthread_mutex_lock (&s_lock);
    assert_int_equal (s_cancelled_calls, 0);
    pthread_mutex_unlock (&s_lock);
}

//  SB_MAX_WORKER_REQUESTS in flight, then the next is refused locally.
static void
test_cap (void **state)
{
    char *json = NULL;
    assert_int_equal (s_call ("api", s_next_id ("flood"), 5000, "flood", "nobody", "echo",
                              "{\"timeout_ms\":3000}", &json), SB_STATUS_OK);
    json_t *summary = json_loads (json, 0, NULL);
    free (json);
    assert_int_equal (json_integer_value (json_object_get (summary, "accepted")),
                      SB_MAX_WORKER_REQUESTS);
    assert_int_equal (json_integer_value (json_object_get (summary, "in_flight")),
                      SB_MAX_WORKER_REQUESTS);
    assert_int_equal (json_integer_value (json_object_get (summary, "after")), 0);
    json_decref (summary);
    //  Their REPLYs (unavailable) come and are dropped; the worker still works
    json_t *reply = s_relay (s_next_id ("after-flood"), "token", "echo", "{\"timeout_ms\":3000}");
    assert_string_equal (json_string_value (json_object_get (reply, "status")), "ok");
    json_decref (reply);
    pthread_mutex_lock (&s_lock);
    assert_int_equal (s_cancelled_calls, 0);
    pthread_mutex_unlock (&s_lock);
}

//  The asker's loop stalls past SB_HEARTBEAT_LIVENESS heartbeats: the
//  broker expires it and says DISCONNECT, so the worker starts a new
//  session. The request it had sent ends `unavailable`, from the loop,
//  though the parent was abandoned; then the worker registers again and
//  serves.
static void
test_session_reset_ends_requests_unavailable (void **state)
{
    uint64_t registered = tb_counters (s_broker).workers_registered;
    const char *parent = s_next_id ("reset");
    sb_job_t spec = { .op = "relay", .connector = "token", .tool = "slow",
                      .args = "{\"timeout_ms\":5000, \"stall_ms\":800}" };
    zframe_t *payload = sb_job_encode (&spec);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, parent, "api", S_TENANT, S_PARENT_MS, 0,
                                          &payload), 0);
    assert_int_equal (sb_msg_send (s_gateway, &msg, NULL), 0);
    s_outcome_t outcome;
    assert_int_equal (s_outcome_wait (parent, &outcome, TB_WAIT_MS), 0);
    assert_int_equal (outcome.status, SB_STATUS_UNAVAILABLE);
    assert_null (outcome.result);
    assert_true (outcome.elapsed_ms < 5000);
    //  It comes back: a new READY, and (once the old session is expired) work
    assert_true (tb_wait_counter (s_broker, offsetof (sb_broker_counters_t, workers_registered),
                                  registered + 1, TB_WAIT_MS));
    //  The parent was lost with the old session: the gateway hears worker_lost
    assert_int_equal (tb_recv (s_gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, parent);
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);
    sb_msg_reset (&msg);
    json_t *reply = s_relay (s_next_id ("after-reset"), "token", "echo", "{\"timeout_ms\":3000}");
    assert_string_equal (json_string_value (json_object_get (reply, "status")), "ok");
    json_decref (reply);
}

//  A worker's PUBLISH reaches the gateway as a BROADCAST, before the REPLY
//  of the job that published it (the broker handles the worker's messages
//  in order); the one about a gateway's topic is refused and reaches nobody.
static void
test_publish_reaches_the_gateway (void **state)
{
    uint64_t publishes = tb_counters (s_broker).publishes;
    uint64_t refused = tb_counters (s_broker).publish_refused;
    const char *corr_id = s_next_id ("publish");
    sb_job_t spec = { .op = "publish", .connector = "stripe" };
    zframe_t *payload = sb_job_encode (&spec);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, corr_id, "api", S_TENANT, S_PARENT_MS, 0,
                                          &payload), 0);
    assert_int_equal (sb_msg_send (s_gateway, &msg, NULL), 0);

    assert_int_equal (tb_recv (s_gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_BROADCAST);
    assert_string_equal (msg.tenant, S_TENANT);
    assert_string_equal (msg.topic, "resource_updated");
    assert_true (tb_payload_is (&msg, "switchboard://events/stripe"));
    sb_msg_reset (&msg);

    assert_int_equal (tb_recv (s_gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_string_equal (msg.corr_id, corr_id);
    assert_int_equal (msg.status, SB_STATUS_OK);
    sb_job_result_t result = { 0 };
    assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload),
                                            &result), 0);
    //  Both calls were queued: the worker does not know the broker's list.
    json_t *rcs = json_loads (result.result, 0, NULL);
    assert_non_null (rcs);
    assert_true (json_is_integer (json_object_get (rcs, "refused")));
    assert_int_equal (json_integer_value (json_object_get (rcs, "refused")), 0);
    assert_true (json_is_integer (json_object_get (rcs, "sent")));
    assert_int_equal (json_integer_value (json_object_get (rcs, "sent")), 0);
    json_decref (rcs);
    sb_job_result_clear (&result);
    sb_msg_reset (&msg);
    assert_int_equal (tb_recv (s_gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    sb_broker_counters_t c = tb_counters (s_broker);
    assert_int_equal (c.publishes, publishes + 1);
    assert_int_equal (c.publish_refused, refused + 1);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_reply_ok_and_failed_reach_the_callback),
        cmocka_unit_test (test_timeout_reaches_the_callback),
        cmocka_unit_test (test_deadline_cut_to_the_parent),
        cmocka_unit_test (test_unavailable_service),
        cmocka_unit_test (test_own_service_refused),
        cmocka_unit_test (test_cancel),
        cmocka_unit_test (test_cap),
        cmocka_unit_test (test_publish_reaches_the_gateway),
        cmocka_unit_test (test_session_reset_ends_requests_unavailable),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
