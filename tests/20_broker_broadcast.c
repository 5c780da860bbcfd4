/*  tests/20_broker_broadcast.c — BROADCAST through the broker: a gateway's
    BROADCAST reaches every other gateway the broker heard from lately
    (HEARTBEAT or any other message), never its sender; a gateway silent
    past the expiry, or one that said DISCONNECT, gets nothing until it is
    heard again; malformed and oversized BROADCASTs are dropped and counted
    and reach nobody; a worker cannot broadcast. Plus the gateway table
    (broker/sb_gateways) on its own: its bound, expiry and removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"
#include "sb_gateways.h"

//  Sends `msg` on `sock` (asserts it was queued).
static void
s_send (zsock_t *sock, sb_msg_t *msg)
{
    assert_int_equal (sb_msg_send (sock, msg, NULL), 0);
    sb_msg_reset (msg);
}

static void
s_heartbeat (zsock_t *gateway)
{
    sb_msg_t msg = { 0 };
    sb_msg_set_heartbeat (&msg);
    s_send (gateway, &msg);
}

static void
s_broadcast (zsock_t *gateway, const char *tenant, const char *topic, const char *body)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new (body, strlen (body));
    assert_int_equal (sb_msg_set_broadcast (&msg, tenant, topic, &payload), 0);
    s_send (gateway, &msg);
}

//  `gateway` receives the BROADCAST (tenant, topic, body).
static void
s_expect (zsock_t *gateway, const char *tenant, const char *topic, const char *body)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_BROADCAST);
    assert_string_equal (msg.tenant, tenant);
    assert_string_equal (msg.topic, topic);
    assert_true (tb_payload_is (&msg, body));
    sb_msg_reset (&msg);
}

//  `gateway` receives nothing but heartbeats for a while.
static void
s_expect_nothing (zsock_t *gateway)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
}

//  Makes the broker know `count` more gateways: each heartbeats once.
static void
s_known (tb_broker_t *broker, zsock_t **gateways, size_t count)
{
    uint64_t before = tb_counters (broker).gateways_joined;
    for (size_t i = 0; i < count; i++)
        s_heartbeat (gateways [i]);
    assert_true (TB_WAIT (broker, gateways_joined, before + count));
}

static void
test_broadcast_reaches_every_other_gateway (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *gateways [3] = { tb_gateway (broker), tb_gateway (broker), tb_gateway (broker) };
    s_known (broker, gateways, 3);
    assert_int_equal (tb_counters (broker).gateways, 3);

    s_broadcast (gateways [0], "acme", "session_ended", "s1.abc.def");
    s_expect (gateways [1], "acme", "session_ended", "s1.abc.def");
    s_expect (gateways [2], "acme", "session_ended", "s1.abc.def");
    s_expect_nothing (gateways [0]);        //  the sender applied it already
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.broadcasts_received, 1);
    assert_int_equal (c.broadcasts_delivered, 2);
    assert_int_equal (c.broadcasts_undeliverable, 0);

    //  Order is kept from one sender; an empty payload travels as such.
    s_broadcast (gateways [2], "beta", "log_level", "warning s1.x.y");
    s_broadcast (gateways [2], "beta", "log_level", "");
    s_expect (gateways [0], "beta", "log_level", "warning s1.x.y");
    s_expect (gateways [0], "beta", "log_level", "");
    s_expect (gateways [1], "beta", "log_level", "warning s1.x.y");
    s_expect (gateways [1], "beta", "log_level", "");
    s_expect_nothing (gateways [2]);

    for (int i = 0; i < 3; i++)
        zsock_destroy (&gateways [i]);
    tb_broker_stop (&broker);
}

static void
test_a_request_makes_a_gateway_known (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *asking = tb_gateway (broker);
    zsock_t *other = tb_gateway (broker);
    //  No heartbeat: the REQUEST is enough (no worker: it just waits)
    tb_request (asking, "c1", "api", "acme", 5000, 0, "job");
    assert_true (TB_WAIT (broker, gateways_joined, 1));
    s_broadcast (other, "acme", "session_ended", "s1.q.r");
    s_expect (asking, "acme", "session_ended", "s1.q.r");
    assert_int_equal (tb_counters (broker).gateways, 2);
    zsock_destroy (&asking);
    zsock_destroy (&other);
    tb_broker_stop (&broker);
}

static void
test_silent_and_departed_gateways_are_not_sent_to (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.gateway_expiry_ms = 300;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *gateways [3] = { tb_gateway (broker), tb_gateway (broker), tb_gateway (broker) };
    s_known (broker, gateways, 3);

    //  All three fall silent and expire; [0] broadcasts (and is known
    //  again by it), nobody else is known: nothing is sent.
    assert_true (TB_WAIT (broker, gateways_expired, 3));
    assert_int_equal (tb_counters (broker).gateways, 0);
    s_broadcast (gateways [0], "acme", "session_ended", "s1.a.b");
    assert_true (TB_WAIT (broker, broadcasts_received, 1));
    s_expect_nothing (gateways [1]);
    s_expect_nothing (gateways [2]);
    assert_int_equal (tb_counters (broker).broadcasts_delivered, 0);

    //  Heard again: sent to again. [1] says DISCONNECT: forgotten at once.
    uint64_t joined = tb_counters (broker).gateways_joined;
    s_heartbeat (gateways [1]);
    s_heartbeat (gateways [2]);
    assert_true (TB_WAIT (broker, gateways_joined, joined + 2));
    sb_msg_t msg = { 0 };
    sb_msg_set_disconnect (&msg);
    s_send (gateways [1], &msg);
    uint64_t expired = tb_counters (broker).gateways_expired;
    assert_true (TB_WAIT (broker, gateways_expired, expired + 1));
    s_heartbeat (gateways [2]);             //  (a slow machine: keep it known)
    s_broadcast (gateways [0], "acme", "session_ended", "s1.c.d");
    s_expect (gateways [2], "acme", "session_ended", "s1.c.d");
    s_expect_nothing (gateways [1]);

    for (int i = 0; i < 3; i++)
        zsock_destroy (&gateways [i]);
    tb_broker_stop (&broker);
}

static void
test_a_gone_gateway_is_forgotten_on_send (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *sender = tb_gateway (broker);
    zsock_t *gone = tb_gateway (broker);
    zsock_t *gateways [2] = { sender, gone };
    s_known (broker, gateways, 2);
    //  It closes without DISCONNECT; the broker's send to it then fails
    //  (ROUTER_MANDATORY) once ZeroMQ has seen the connection go.
    zsock_destroy (&gone);
    uint64_t sent = 0;
    for (int i = 0; i < 2000 && tb_counters (broker).broadcasts_undeliverable == 0; i++) {
        s_broadcast (sender, "acme", "session_ended", "s1.e.f");
        sent++;
        assert_true (TB_WAIT (broker, broadcasts_received, sent));
    }
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.broadcasts_undeliverable, 1);
    assert_int_equal (c.gateways, 1);       //  the sender only
    zsock_destroy (&sender);
    tb_broker_stop (&broker);
}

static void
test_malformed_broadcasts_reach_nobody (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *gateways [2] = { tb_gateway (broker), tb_gateway (broker) };
    s_known (broker, gateways, 2);

    //  Oversized payload.
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_broadcast (&msg, "acme", "session_ended", NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&msg);
    zframe_t *empty = zmsg_last (zmsg);
    zmsg_remove (zmsg, empty);
    zframe_destroy (&empty);
    char big [SB_MAX_BROADCAST_SIZE + 1];
    memset (big, 'x', sizeof big);
    zmsg_addmem (zmsg, big, sizeof big);
    assert_int_equal (zmsg_send (&zmsg, gateways [0]), 0);
    //  No payload frame; no topic; a topic with a space; a number as tenant.
    tb_send_raw (gateways [0], 1, "\x94\x01\x0c\xa4" "acme\xa1" "t", (size_t) 10);
    tb_send_raw (gateways [0], 2, "\x93\x01\x0c\xa4" "acme", (size_t) 8, "p", (size_t) 1);
    tb_send_raw (gateways [0], 2, "\x94\x01\x0c\xa4" "acme\xa3" "a b", (size_t) 12, "p", (size_t) 1);
    tb_send_raw (gateways [0], 2, "\x94\x01\x0c\x07\xa1" "t", (size_t) 6, "p", (size_t) 1);
    assert_true (TB_WAIT (broker, malformed_frontend, 5));
    s_expect_nothing (gateways [1]);
    assert_int_equal (tb_counters (broker).broadcasts_received, 0);

    //  A worker cannot broadcast: it is malformed on the backend.
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    assert_int_equal (sb_msg_set_broadcast (&msg, "acme", "session_ended", NULL), 0);
    s_send (worker, &msg);
    assert_true (TB_WAIT (broker, malformed_backend, 1));
    s_expect_nothing (gateways [1]);

    //  The broker still passes a good one.
    s_broadcast (gateways [0], "acme", "session_ended", "s1.g.h");
    s_expect (gateways [1], "acme", "session_ended", "s1.g.h");
    zsock_destroy (&worker);
    zsock_destroy (&gateways [0]);
    zsock_destroy (&gateways [1]);
    tb_broker_stop (&broker);
}

//  The table on its own: bounded, expiring, removable.
static void
test_gateway_table (void **state)
{
    sb_gateways_t *table = sb_gateways_new (2, 100);
    assert_non_null (table);
    zframe_t *a = zframe_new ("\x00\x01\x02\x03\x04", 5);
    zframe_t *b = zframe_new ("\x00\x01\x02\x03\x05", 5);
    zframe_t *c = zframe_new ("\x00\x01\x02\x03\x06", 5);
    zframe_t *empty = zframe_new_empty ();
    assert_int_equal (sb_gateways_touch (table, a, 1000), SB_GATEWAYS_ADDED);
    assert_int_equal (sb_gateways_touch (table, a, 1050), SB_GATEWAYS_KNOWN);
    assert_int_equal (sb_gateways_touch (table, b, 1000), SB_GATEWAYS_ADDED);
    assert_int_equal (sb_gateways_touch (table, c, 1000), SB_GATEWAYS_FULL);
    assert_int_equal (sb_gateways_touch (table, empty, 1000), SB_GATEWAYS_FULL);
    assert_int_equal (sb_gateways_size (table), 2);

    zlistx_t *list = zlistx_new ();
    sb_gateways_collect (table, list);
    assert_int_equal (zlistx_size (list), 2);
    zlistx_destroy (&list);

    //  b was last heard at 1000, a at 1050: at 1100 only b has expired.
    assert_int_equal (sb_gateways_expire (table, 1099), 0);
    assert_int_equal (sb_gateways_expire (table, 1100), 1);
    assert_int_equal (sb_gateways_size (table), 1);
    assert_int_equal (sb_gateways_touch (table, c, 1100), SB_GATEWAYS_ADDED);
    assert_int_equal (sb_gateways_remove (table, a), 0);
    assert_int_equal (sb_gateways_remove (table, a), -1);
    assert_int_equal (sb_gateways_remove (table, empty), -1);
    assert_int_equal (sb_gateways_size (table), 1);
    assert_int_equal (sb_gateways_expire (table, 5000), 1);
    assert_int_equal (sb_gateways_size (table), 0);

    sb_gateways_destroy (&table);
    sb_gateways_destroy (&table);       //  idempotent
    assert_null (table);
    zframe_destroy (&a);
    zframe_destroy (&b);
    zframe_destroy (&c);
    zframe_destroy (&empty);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_gateway_table),
        cmocka_unit_test (test_broadcast_reaches_every_other_gateway),
        cmocka_unit_test (test_a_request_makes_a_gateway_known),
        cmocka_unit_test (test_silent_and_departed_gateways_are_not_sent_to),
        cmocka_unit_test (test_a_gone_gateway_is_forgotten_on_send),
        cmocka_unit_test (test_malformed_broadcasts_reach_nobody),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
