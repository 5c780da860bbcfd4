/*  tests/20_broker_publish.c — PUBLISH through the broker (PROTOCOL.md
    "Webhooks"): a registered worker's PUBLISH about `resource_updated`
    reaches every gateway the broker knows as a BROADCAST — no sender left
    out, in the order sent, tenant, topic and payload intact — and is
    counted (`publishes`, the copies in broadcasts_delivered). Refused,
    counted (`publish_refused`) and delivered to nobody: a PUBLISH from a
    gateway (also malformed on the frontend), from a worker that is not
    registered (never was, or said DISCONNECT), about a topic workers may
    not publish; an oversized one does not decode (malformed_backend). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"

#define S_WORKER_HEARTBEAT_MS   10000   /* the test worker stays registered throughout */
#define S_GATEWAY_EXPIRY_MS     60000   /* and the gateways known, however slow the machine */

//  A broker whose gateways stay known for the whole test.
static tb_broker_t *
s_broker_start (void)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.gateway_expiry_ms = S_GATEWAY_EXPIRY_MS;
    return tb_broker_start (&config);
}

//  Sends `msg` on `sock` (asserts it was queued).
static void
s_send (zsock_t *sock, sb_msg_t *msg)
{
    assert_int_equal (sb_msg_send (sock, msg, NULL), 0);
    sb_msg_reset (msg);
}

static void
s_heartbeat (zsock_t *sock)
{
    sb_msg_t msg = { 0 };
    sb_msg_set_heartbeat (&msg);
    s_send (sock, &msg);
}

//  Sends PUBLISH (tenant, topic) with `len` bytes of `body` from `sock`.
static void
s_publish (zsock_t *sock, const char *tenant, const char *topic, const void *body, size_t len)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new (body, len);
    assert_int_equal (sb_msg_set_publish (&msg, tenant, topic, &payload), 0);
    s_send (sock, &msg);
}

//  `gateway` receives a BROADCAST (tenant, topic) whose payload is exactly
//  `len` bytes of `body`.
static void
s_expect (zsock_t *gateway, const char *tenant, const char *topic, const void *body, size_t len)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_BROADCAST);
    assert_string_equal (msg.tenant, tenant);
    assert_string_equal (msg.topic, topic);
    assert_non_null (msg.payload);
    assert_int_equal (zframe_size (msg.payload), len);
    if (len)
        assert_memory_equal (zframe_data (msg.payload), body, len);
    sb_msg_reset (&msg);
}

//  `sock` receives nothing but heartbeats for a while.
static void
s_expect_nothing (zsock_t *sock)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (sock, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
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
test_publish_reaches_every_gateway (void **state)
{
    tb_broker_t *broker = s_broker_start ();
    zsock_t *gateways [2] = { tb_gateway (broker), tb_gateway (broker) };
    s_known (broker, gateways, 2);
    zsock_t *worker = tb_worker (broker, "webhook", 4, S_WORKER_HEARTBEAT_MS);

    //  Three in a row, two tenants, a payload with every byte value: both
    //  gateways get all three, in the order sent, intact.
    const char *uri_a = "switchboard://events/stripe";
    const char *uri_b = "switchboard://events/github";
    uint8_t bytes [256];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes [i] = (uint8_t) i;
    s_publish (worker, "acme", "resource_updated", uri_a, strlen (uri_a));
    s_publish (worker, "beta", "resource_updated", uri_b, strlen (uri_b));
    s_publish (worker, "acme", "resource_updated", bytes, sizeof bytes);
    for (int g = 0; g < 2; g++) {
        s_expect (gateways [g], "acme", "resource_updated", uri_a, strlen (uri_a));
        s_expect (gateways [g], "beta", "resource_updated", uri_b, strlen (uri_b));
        s_expect (gateways [g], "acme", "resource_updated", bytes, sizeof bytes);
    }
    s_expect_nothing (worker);              //  nothing is answered
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.publishes, 3);
    assert_int_equal (c.publish_refused, 0);
    assert_int_equal (c.broadcasts_received, 0);
    assert_int_equal (c.broadcasts_delivered, 6);
    assert_int_equal (c.broadcasts_undeliverable, 0);
    assert_int_equal (c.malformed_backend, 0);

    //  A gateway's own BROADCAST still skips it, while a PUBLISH right
    //  after reaches it too; an empty payload and the largest travel as such.
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new ("s1.a.b", 6);
    assert_int_equal (sb_msg_set_broadcast (&msg, "acme", "session_ended", &payload), 0);
    s_send (gateways [0], &msg);
    assert_true (TB_WAIT (broker, broadcasts_received, 1));
    s_publish (worker, "acme", "resource_updated", "", 0);
    char big [SB_MAX_BROADCAST_SIZE];
    memset (big, 'u', sizeof big);
    s_publish (worker, "acme", "resource_updated", big, sizeof big);
    s_expect (gateways [1], "acme", "session_ended", "s1.a.b", 6);
    s_expect (gateways [1], "acme", "resource_updated", "", 0);
    s_expect (gateways [1], "acme", "resource_updated", big, sizeof big);
    s_expect (gateways [0], "acme", "resource_updated", "", 0);
    s_expect (gateways [0], "acme", "resource_updated", big, sizeof big);
    s_expect_nothing (gateways [0]);
    s_expect_nothing (gateways [1]);
    assert_int_equal (tb_counters (broker).publishes, 5);

    zsock_destroy (&worker);
    zsock_destroy (&gateways [0]);
    zsock_destroy (&gateways [1]);
    tb_broker_stop (&broker);
}

static void
test_publish_with_no_gateway_known (void **state)
{
    tb_broker_t *broker = s_broker_start ();
    zsock_t *worker = tb_worker (broker, "webhook", 1, S_WORKER_HEARTBEAT_MS);
    s_publish (worker, "acme", "resource_updated", "switchboard://events/x", 22);
    assert_true (TB_WAIT (broker, publishes, 1));
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.broadcasts_delivered, 0);
    assert_int_equal (c.publish_refused, 0);
    //  A gateway heard afterwards did not get it.
    zsock_t *late = tb_gateway (broker);
    s_known (broker, &late, 1);
    s_expect_nothing (late);
    zsock_destroy (&late);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

static void
test_refused_publishes_reach_nobody (void **state)
{
    tb_broker_t *broker = s_broker_start ();
    zsock_t *gateways [2] = { tb_gateway (broker), tb_gateway (broker) };
    s_known (broker, gateways, 2);
    const char *uri = "switchboard://events/stripe";
    uint64_t refused = 0;

    //  From a gateway: malformed on the frontend, and refused.
    s_publish (gateways [0], "acme", "resource_updated", uri, strlen (uri));
    assert_true (TB_WAIT (broker, publish_refused, ++refused));
    assert_int_equal (tb_counters (broker).malformed_frontend, 1);

    //  From a worker that never sent READY.
    zsock_t *stranger = zsock_new_dealer (broker->backend);
    assert_non_null (stranger);
    zsock_set_linger (stranger, 0);
    s_publish (stranger, "acme", "resource_updated", uri, strlen (uri));
    assert_true (TB_WAIT (broker, publish_refused, ++refused));
    s_expect_nothing (stranger);            //  dropped: nothing is answered

    //  From a worker that said DISCONNECT (forgotten), on the same socket.
    zsock_t *gone = tb_worker (broker, "webhook", 1, S_WORKER_HEARTBEAT_MS);
    sb_msg_t msg = { 0 };
    sb_msg_set_disconnect (&msg);
    s_send (gone, &msg);
    assert_true (TB_WAIT (broker, workers_disconnected, 1));
    s_publish (gone, "acme", "resource_updated", uri, strlen (uri));
    assert_true (TB_WAIT (broker, publish_refused, ++refused));

    //  A registered worker, about topics workers may not publish: a
    //  gateway's own topic, a longer name, another case.
    zsock_t *worker = tb_worker (broker, "webhook", 1, S_WORKER_HEARTBEAT_MS);
    const char *topics [] = { "session_ended", "tokens_revoked", "resource_updated_x",
                              "resource_update", "Resource_updated" };
    for (size_t i = 0; i < sizeof topics / sizeof topics [0]; i++) {
        s_publish (worker, "acme", topics [i], uri, strlen (uri));
        assert_true (TB_WAIT (broker, publish_refused, ++refused));
    }

    //  Over SB_MAX_BROADCAST_SIZE: it does not decode (malformed).
    assert_int_equal (sb_msg_set_publish (&msg, "acme", "resource_updated", NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&msg);
    zframe_t *empty = zmsg_last (zmsg);
    zmsg_remove (zmsg, empty);
    zframe_destroy (&empty);
    char big [SB_MAX_BROADCAST_SIZE + 1];
    memset (big, 'x', sizeof big);
    zmsg_addmem (zmsg, big, sizeof big);
    assert_int_equal (zmsg_send (&zmsg, worker), 0);
    //  …and without its payload frame, or without a topic.
    tb_send_raw (worker, 1, "\x94\x01\x10\xa4" "acme\xa1" "t", (size_t) 10);
    tb_send_raw (worker, 2, "\x93\x01\x10\xa4" "acme", (size_t) 8, "p", (size_t) 1);
    assert_true (TB_WAIT (broker, malformed_backend, 3));

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.publishes, 0);
    assert_int_equal (c.publish_refused, refused);
    assert_int_equal (c.broadcasts_delivered, 0);
    assert_int_equal (c.malformed_frontend, 1);

    //  Every refusal was handled before this good one: it is the first and
    //  only thing either gateway gets; the worker is still registered.
    s_publish (worker, "acme", "resource_updated", uri, strlen (uri));
    for (int g = 0; g < 2; g++) {
        s_expect (gateways [g], "acme", "resource_updated", uri, strlen (uri));
        s_expect_nothing (gateways [g]);
    }
    c = tb_counters (broker);
    assert_int_equal (c.publishes, 1);
    assert_int_equal (c.publish_refused, refused);
    assert_int_equal (c.broadcasts_delivered, 2);

    zsock_destroy (&worker);
    zsock_destroy (&gone);
    zsock_destroy (&stranger);
    zsock_destroy (&gateways [0]);
    zsock_destroy (&gateways [1]);
    tb_broker_stop (&broker);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_publish_reaches_every_gateway),
        cmocka_unit_test (test_publish_with_no_gateway_known),
        cmocka_unit_test (test_refused_publishes_reach_nobody),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
