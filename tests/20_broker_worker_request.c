/*  tests/20_broker_worker_request.c — REQUEST from a worker on behalf of a
    job it holds (PROTOCOL.md "Worker requests"): the broker routes the
    job to a worker of the asked service and its REPLY back to the asking
    worker on the backend, whatever answers it (result ok or failed,
    timeout, unavailable, overloaded, duplicate, worker_lost, draining);
    it refuses, `malformed`, an unregistered asker, a parent the asker does
    not run, another tenant than the parent's and the asker's own service;
    it cuts the deadline to the parent's time left and caps each worker at
    SB_MAX_WORKER_REQUESTS; NOTIFY and ASK of such a job are dropped, only
    the asker may CANCEL it; an asker that dies leaves its requests to run
    out, their REPLYs dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"
#include "sb_clock.h"
#include "sb_log.h"

#define S_TENANT    "acme"

static void
s_send (zsock_t *sock, sb_msg_t *msg)
{
    assert_int_equal (sb_msg_send (sock, msg, NULL), 0);
    sb_msg_reset (msg);
}

//  The gateway asks service "api" for job `corr_id`; `api` receives it.
static void
s_parent (zsock_t *gateway, zsock_t *api, const char *corr_id, uint32_t timeout_ms)
{
    tb_request (gateway, corr_id, "api", S_TENANT, timeout_ms, 0, "parent job");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (api, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_JOB);
    assert_string_equal (msg.corr_id, corr_id);
    sb_msg_reset (&msg);
}

//  `worker` sends REQUEST `corr_id` on behalf of `parent`.
static void
s_ask (zsock_t *worker, const char *corr_id, const char *service, const char *tenant,
       uint32_t timeout_ms, const char *parent, const char *body)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new (body, strlen (body));
    assert_int_equal (sb_msg_set_worker_request (&msg, corr_id, service, tenant, timeout_ms, 0,
                                                 parent, &payload), 0);
    zmsg_t *zmsg = sb_msg_encode (&msg);
    assert_non_null (zmsg);
    //  Blocking (the test sockets' send timeout): a burst may fill the queue
    assert_int_equal (zmsg_send (&zmsg, worker), 0);
    sb_msg_reset (&msg);
}

//  The next message on `sock` is REPLY `status` for `corr_id`.
static void
s_expect_reply (zsock_t *sock, const char *corr_id, sb_status_t status, sb_msg_t *msg)
{
    assert_int_equal (tb_recv (sock, msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg->command, SB_CMD_REPLY);
    assert_string_equal (msg->corr_id, corr_id);
    assert_string_equal (sb_status_name (msg->status), sb_status_name (status));
}

static void
test_routing_ok_and_failed (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_parent (gateway, api, "p1", 5000);

    s_ask (api, "w1", "token", S_TENANT, 3000, "p1", "credential please");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_JOB);
    assert_string_equal (msg.corr_id, "w1");
    assert_string_equal (msg.tenant, S_TENANT);
    assert_true (msg.timeout_ms <= 3000);
    assert_true (tb_payload_is (&msg, "credential please"));
    tb_result (token, "w1", SB_STATUS_OK, "the credential");
    s_expect_reply (api, "w1", SB_STATUS_OK, &msg);
    assert_true (tb_payload_is (&msg, "the credential"));

    s_ask (api, "w2", "token", S_TENANT, 3000, "p1", "again");
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "w2");
    tb_result (token, "w2", SB_STATUS_FAILED, "no connection");
    s_expect_reply (api, "w2", SB_STATUS_FAILED, &msg);
    assert_true (tb_payload_is (&msg, "no connection"));

    //  The gateway heard nothing of it; its own job still ends as usual
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    tb_result (api, "p1", SB_STATUS_OK, "parent done");
    s_expect_reply (gateway, "p1", SB_STATUS_OK, &msg);
    sb_msg_reset (&msg);

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.worker_requests, 2);
    assert_int_equal (c.worker_requests_refused, 0);
    assert_int_equal (c.worker_replies, 2);
    assert_int_equal (c.jobs_received, 3);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

//  Each check fails into REPLY malformed to the asker, nothing queued.
static void
test_refusals (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *other_api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    //  "p1" goes to one api worker: find which, the other is the stranger
    tb_request (gateway, "p1", "api", S_TENANT, 5000, 0, "parent");
    sb_msg_t msg = { 0 };
    zsock_t *holder = api, *stranger = other_api;
    if (tb_recv (api, &msg, TB_QUIET_MS, true) != SB_MSG_OK) {
        holder = other_api;
        stranger = api;
        assert_int_equal (tb_recv (other_api, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    }
    assert_string_equal (msg.corr_id, "p1");
    sb_msg_reset (&msg);
    uint64_t refused = 0;

    //  Not registered
    zsock_t *rogue = zsock_new (ZMQ_DEALER);
    assert_non_null (rogue);
    zsock_set_linger (rogue, 0);
    assert_int_equal (zsock_connect (rogue, "%s", broker->backend), 0);
    s_ask (rogue, "r1", "token", S_TENANT, 1000, "p1", "x");
    s_expect_reply (rogue, "r1", SB_STATUS_MALFORMED, &msg);
    refused++;
    //  A parent nobody holds, one another worker holds
    s_ask (holder, "r2", "token", S_TENANT, 1000, "nothing", "x");
    s_expect_reply (holder, "r2", SB_STATUS_MALFORMED, &msg);
    refused++;
    s_ask (stranger, "r3", "token", S_TENANT, 1000, "p1", "x");
    s_expect_reply (stranger, "r3", SB_STATUS_MALFORMED, &msg);
    refused++;
    //  Another tenant than the parent's: a cross-tenant attempt
    s_ask (holder, "r4", "token", "globex", 1000, "p1", "x");
    s_expect_reply (holder, "r4", SB_STATUS_MALFORMED, &msg);
    refused++;
    //  Its own service
    s_ask (holder, "r5", "api", S_TENANT, 1000, "p1", "x");
    s_expect_reply (holder, "r5", SB_STATUS_MALFORMED, &msg);
    refused++;
    //  A parent that is no longer running (answered)
    tb_result (holder, "p1", SB_STATUS_OK, "done");
    s_expect_reply (gateway, "p1", SB_STATUS_OK, &msg);
    s_ask (holder, "r6", "token", S_TENANT, 1000, "p1", "x");
    s_expect_reply (holder, "r6", SB_STATUS_MALFORMED, &msg);
    refused++;
    //  A gateway may not name a parent
    sb_msg_t request = { 0 };
    assert_int_equal (sb_msg_set_worker_request (&request, "g1", "token", S_TENANT, 1000, 0,
                                                 "p1", NULL), 0);
    s_send (gateway, &request);
    s_expect_reply (gateway, "g1", SB_STATUS_MALFORMED, &msg);
    sb_msg_reset (&msg);

    //  None reached the token worker
    assert_int_equal (tb_recv (token, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.worker_requests, refused);
    assert_int_equal (c.worker_requests_refused, refused);
    assert_int_equal (c.jobs_dispatched, 1);
    assert_int_equal (c.malformed_frontend, 1);
    zsock_destroy (&rogue);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    zsock_destroy (&other_api);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

//  A request asked for 10 s by a job with 400 ms left gets 400 ms: its JOB
//  says so, and the asker hears `timeout` then; the late RESULT is dropped.
static void
test_deadline_cut_and_timeout (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_parent (gateway, api, "p1", 400);
    int64_t asked = sb_clock_mono_ms ();
    s_ask (api, "w1", "token", S_TENANT, 10000, "p1", "slow");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "w1");
    assert_true (msg.timeout_ms <= 400);
    s_expect_reply (api, "w1", SB_STATUS_TIMEOUT, &msg);
    assert_true (sb_clock_mono_ms () - asked < 2000);
    //  The gateway hears `timeout` for the parent, not for the request
    s_expect_reply (gateway, "p1", SB_STATUS_TIMEOUT, &msg);
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    tb_result (token, "w1", SB_STATUS_OK, "too late");
    assert_true (TB_WAIT (broker, late_results_dropped, 1));
    assert_int_equal (tb_recv (api, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

//  Unavailable (no worker for the service), duplicate, and queue full are
//  answered to the asking worker like to a gateway.
static void
test_broker_answers_route_to_the_worker (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.no_worker_grace_ms = 0;
    config.max_tenant_queue = 1;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_parent (gateway, api, "p1", 5000);
    sb_msg_t msg = { 0 };

    s_ask (api, "w1", "nobody", S_TENANT, 1000, "p1", "x");
    s_expect_reply (api, "w1", SB_STATUS_UNAVAILABLE, &msg);
    assert_int_equal (msg.retry_after_ms, SB_BROKER_UNAVAILABLE_RETRY_MS);

    //  token holds one (credit 1), queues one (tenant queue 1), refuses one
    s_ask (api, "w2", "token", S_TENANT, 3000, "p1", "x");
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "w2");
    s_ask (api, "w3", "token", S_TENANT, 3000, "p1", "x");
    s_ask (api, "w4", "token", S_TENANT, 3000, "p1", "x");
    s_expect_reply (api, "w4", SB_STATUS_OVERLOADED, &msg);
    s_ask (api, "w2", "token", S_TENANT, 3000, "p1", "x");
    s_expect_reply (api, "w2", SB_STATUS_DUPLICATE, &msg);

    //  Draining: the waiting one and a new one are refused `overloaded` to
    //  the asker; the running one may still finish and its RESULT reaches it
    zstr_send (broker->actor, "STOP");
    s_expect_reply (api, "w3", SB_STATUS_OVERLOADED, &msg);
    s_ask (api, "w5", "token", S_TENANT, 3000, "p1", "x");
    s_expect_reply (api, "w5", SB_STATUS_OVERLOADED, &msg);
    tb_result (token, "w2", SB_STATUS_OK, "finished");
    s_expect_reply (api, "w2", SB_STATUS_OK, &msg);
    assert_true (tb_payload_is (&msg, "finished"));
    tb_result (api, "p1", SB_STATUS_OK, "parent done");
    s_expect_reply (gateway, "p1", SB_STATUS_OK, &msg);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

//  A worker that dies holding a request's job: the asker hears worker_lost.
static void
test_worker_lost_routes_to_the_asker (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_parent (gateway, api, "p1", 5000);
    s_ask (api, "w1", "token", S_TENANT, 3000, "p1", "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    sb_msg_set_disconnect (&msg);
    s_send (token, &msg);
    s_expect_reply (api, "w1", SB_STATUS_WORKER_LOST, &msg);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

//  NOTIFY and ASK of a worker's request reach nobody; only the asker may
//  CANCEL it (then its worker is told CANCEL, and nothing is answered).
static void
test_call_messages_and_cancel (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *other_api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "p1", "api", S_TENANT, 5000, 0, "parent");
    sb_msg_t msg = { 0 };
    zsock_t *holder = api, *stranger = other_api;
    if (tb_recv (api, &msg, TB_QUIET_MS, true) != SB_MSG_OK) {
        holder = other_api;
        stranger = api;
        assert_int_equal (tb_recv (other_api, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    }
    s_ask (holder, "w1", "token", S_TENANT, 3000, "p1", "x");
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "w1");

    zframe_t *body = zframe_new ("progress", 8);
    assert_int_equal (sb_msg_set_notify (&msg, "w1", &body), 0);
    s_send (token, &msg);
    body = zframe_new ("question", 8);
    assert_int_equal (sb_msg_set_ask (&msg, "w1", 1, &body), 0);
    s_send (token, &msg);
    assert_true (TB_WAIT (broker, call_messages_dropped, 2));
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_recv (holder, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    //  CANCEL from the gateway, from another worker: dropped
    assert_int_equal (sb_msg_set_cancel (&msg, "w1"), 0);
    s_send (gateway, &msg);
    assert_int_equal (sb_msg_set_cancel (&msg, "w1"), 0);
    s_send (stranger, &msg);
    assert_true (TB_WAIT (broker, call_messages_dropped, 4));
    assert_int_equal (tb_recv (token, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    //  from the asker: the token worker is told
    assert_int_equal (sb_msg_set_cancel (&msg, "w1"), 0);
    s_send (holder, &msg);
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_CANCEL);
    assert_string_equal (msg.corr_id, "w1");
    tb_result (token, "w1", SB_STATUS_CANCELLED, "{}");
    assert_true (TB_WAIT (broker, late_results_dropped, 1));
    assert_int_equal (tb_recv (holder, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_counters (broker).jobs_cancelled, 1);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    zsock_destroy (&other_api);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

//  SB_MAX_WORKER_REQUESTS in flight per worker; one more is `overloaded`
//  at once. When one ends, there is room again.
static void
test_per_worker_cap (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.max_tenant_queue = SB_MAX_WORKER_REQUESTS * 2;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_parent (gateway, api, "p1", 20000);
    char corr_id [32];
    for (uint32_t i = 0; i < SB_MAX_WORKER_REQUESTS; i++) {
        snprintf (corr_id, sizeof corr_id, "w%u", i);
        s_ask (api, corr_id, "token", S_TENANT, 15000, "p1", "x");
    }
    assert_true (TB_WAIT (broker, worker_requests, SB_MAX_WORKER_REQUESTS));
    s_ask (api, "one-more", "token", S_TENANT, 15000, "p1", "x");
    sb_msg_t msg = { 0 };
    s_expect_reply (api, "one-more", SB_STATUS_OVERLOADED, &msg);
    assert_int_equal (tb_counters (broker).worker_requests_refused, 1);

    //  The token worker holds "w0"; its result frees a place
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "w0");
    tb_result (token, "w0", SB_STATUS_OK, "done");
    s_expect_reply (api, "w0", SB_STATUS_OK, &msg);
    s_ask (api, "room-again", "token", S_TENANT, 15000, "p1", "x");
    assert_true (TB_WAIT (broker, jobs_received, 1 + SB_MAX_WORKER_REQUESTS + 1));
    assert_int_equal (tb_recv (api, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_counters (broker).worker_requests_refused, 1);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

//  The asking worker dies (DISCONNECT, then its socket is gone) while its
//  requests run: its parent is lost to the gateway, the requests run on,
//  and their REPLYs are dropped (refused by the ROUTER, which no longer
//  knows the peer, or lost with its connection if the ROUTER has not seen
//  it close yet); the broker carries on.
static void
test_asker_dies (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *api = tb_worker (broker, "api", 4, 1000);
    zsock_t *token = tb_worker (broker, "token", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_parent (gateway, api, "p1", 5000);
    s_ask (api, "w1", "token", S_TENANT, 3000, "p1", "x");
    s_ask (api, "w2", "token", S_TENANT, 3000, "p1", "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    sb_msg_set_disconnect (&msg);
    s_send (api, &msg);
    s_expect_reply (gateway, "p1", SB_STATUS_WORKER_LOST, &msg);
    zsock_destroy (&api);

    sb_broker_counters_t before = tb_counters (broker);
    tb_result (token, "w1", SB_STATUS_OK, "nobody listens");
    tb_result (token, "w2", SB_STATUS_FAILED, "nobody listens");
    assert_true (TB_WAIT (broker, results_routed, 2));
    sb_broker_counters_t after = tb_counters (broker);
    assert_int_equal (after.worker_replies + after.replies_undeliverable,
                      before.worker_replies + before.replies_undeliverable + 2);

    //  A new api worker and a gateway job: all as usual
    zsock_t *api2 = tb_worker (broker, "api", 4, 1000);
    s_parent (gateway, api2, "p2", 5000);
    s_ask (api2, "w3", "token", S_TENANT, 3000, "p2", "x");
    assert_int_equal (tb_recv (token, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "w3");
    tb_result (token, "w3", SB_STATUS_OK, "fine");
    s_expect_reply (api2, "w3", SB_STATUS_OK, &msg);
    sb_msg_reset (&msg);
    zsock_destroy (&api2);
    zsock_destroy (&gateway);
    zsock_destroy (&token);
    tb_broker_stop (&broker);
}

int
main (void)
{
    sb_log_init ("broker-test", SB_LOG_WARN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_routing_ok_and_failed),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_deadline_cut_and_timeout),
        cmocka_unit_test (test_broker_answers_route_to_the_worker),
        cmocka_unit_test (test_worker_lost_routes_to_the_asker),
        cmocka_unit_test (test_call_messages_and_cancel),
        cmocka_unit_test (test_per_worker_cap),
        cmocka_unit_test (test_asker_dies),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
