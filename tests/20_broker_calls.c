/*  tests/20_broker_calls.c — messages inside a running call: NOTIFY and ASK
    from the worker reach the gateway that asked; ANSWER from any gateway
    reaches the worker holding the job, only for the job's tenant; CANCEL
    stops a queued or running job, answers nothing, and gives the worker's
    credit back once it confirms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"

static void
s_send (zsock_t *sock, sb_msg_t *msg)
{
    assert_int_equal (sb_msg_send (sock, msg, NULL), 0);
    sb_msg_reset (msg);
}

//  Starts a job "c1" for tenant "acme" from `gateway`, held by `worker`.
static void
s_running_job (zsock_t *gateway, zsock_t *worker)
{
    tb_request (gateway, "c1", "api", "acme", 5000, 0, "job");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_JOB);
    assert_string_equal (msg.corr_id, "c1");
    sb_msg_reset (&msg);
}

static void
test_notify_and_ask_reach_the_asking_gateway (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *asking = tb_gateway (broker);
    zsock_t *other = tb_gateway (broker);
    s_running_job (asking, worker);

    sb_msg_t msg = { 0 };
    zframe_t *body = zframe_new ("progress", 8);
    assert_int_equal (sb_msg_set_notify (&msg, "c1", &body), 0);
    s_send (worker, &msg);
    body = zframe_new ("elicit", 6);
    assert_int_equal (sb_msg_set_ask (&msg, "c1", 1, &body), 0);
    s_send (worker, &msg);

    assert_int_equal (tb_recv (asking, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_NOTIFY);
    assert_true (tb_payload_is (&msg, "progress"));
    assert_int_equal (tb_recv (asking, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_ASK);
    assert_int_equal (msg.ask_id, 1);
    assert_true (tb_payload_is (&msg, "elicit"));
    assert_int_equal (tb_recv (other, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    //  The answer may come through another gateway: the broker routes it
    //  by correlation ID to the worker holding the job.
    body = zframe_new ("accept", 6);
    assert_int_equal (sb_msg_set_answer (&msg, "c1", "acme", 1, &body), 0);
    s_send (other, &msg);
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_ANSWER);
    assert_int_equal (msg.ask_id, 1);
    assert_true (tb_payload_is (&msg, "accept"));

    //  The call still ends normally.
    tb_result (worker, "c1", SB_STATUS_OK, "done");
    assert_int_equal (tb_recv (asking, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).call_messages_routed, 3);

    zsock_destroy (&other);
    zsock_destroy (&asking);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

static void
test_refused_call_messages (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *intruder = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_running_job (gateway, worker);

    //  An answer naming another tenant never reaches the worker.
    sb_msg_t msg = { 0 };
    zframe_t *body = zframe_new ("x", 1);
    assert_int_equal (sb_msg_set_answer (&msg, "c1", "evil-corp", 1, &body), 0);
    s_send (gateway, &msg);
    //  A worker that does not hold the job cannot speak in it.
    body = zframe_new ("y", 1);
    assert_int_equal (sb_msg_set_notify (&msg, "c1", &body), 0);
    s_send (intruder, &msg);
    //  Nor can anyone speak in a job that does not exist.
    body = zframe_new ("z", 1);
    assert_int_equal (sb_msg_set_notify (&msg, "no-such-job", &body), 0);
    s_send (worker, &msg);

    assert_true (TB_WAIT (broker, call_messages_dropped, 3));
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_counters (broker).call_messages_routed, 0);

    zsock_destroy (&gateway);
    zsock_destroy (&intruder);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

static void
test_cancel_running_job (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);      //  one slot
    zsock_t *gateway = tb_gateway (broker);
    zsock_t *other = tb_gateway (broker);
    s_running_job (gateway, worker);

    //  Only the asking gateway may cancel.
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_cancel (&msg, "c1"), 0);
    s_send (other, &msg);
    assert_true (TB_WAIT (broker, call_messages_dropped, 1));
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    assert_int_equal (sb_msg_set_cancel (&msg, "c1"), 0);
    s_send (gateway, &msg);
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_CANCEL);
    assert_string_equal (msg.corr_id, "c1");

    //  Its slot stays taken until the worker confirms: a second job waits.
    tb_request (gateway, "c2", "api", "acme", 5000, 0, "second");
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    tb_result (worker, "c1", SB_STATUS_CANCELLED, "");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_JOB);
    assert_string_equal (msg.corr_id, "c2");
    tb_result (worker, "c2", SB_STATUS_OK, "ok");

    //  The gateway hears about c2 only: a cancelled call is never answered.
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "c2");
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).jobs_cancelled, 1);

    zsock_destroy (&other);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

static void
test_cancel_queued_job (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "q1", "api", "acme", 5000, 0, "waits");   //  no worker yet
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_cancel (&msg, "q1"), 0);
    s_send (gateway, &msg);
    assert_true (TB_WAIT (broker, jobs_cancelled, 1));

    //  A worker arriving later never sees it, and nobody is answered.
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_counters (broker).jobs_queued, 0);

    zsock_destroy (&worker);
    zsock_destroy (&gateway);
    tb_broker_stop (&broker);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_notify_and_ask_reach_the_asking_gateway),
        cmocka_unit_test (test_refused_call_messages),
        cmocka_unit_test (test_cancel_running_job),
        cmocka_unit_test (test_cancel_queued_job),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
