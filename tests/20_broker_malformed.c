/*  tests/20_broker_malformed.c — bad input on both broker sockets: garbage
    bytes, wrong frame counts, oversized frames, wrong types, unknown or
    misdirected commands, other protocol versions, messages from workers
    that never registered. Each is dropped and counted (or answered when the
    protocol says so), and the broker still serves a normal request after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <msgpack.h>
#include <string.h>

#include "20_broker_support.h"
#include "sb_log.h"

#define S_HUGE_SIZE     (SB_MAX_PAYLOAD_SIZE + 1024)    /* past the codec's limit */
#define S_GIANT_SIZE    (SB_MAX_PAYLOAD_SIZE * 3)       /* past the socket's limit */

//  A header frame built by hand: `spec` is a sequence of 'u' (uint),
//  's' (string), 'n' (nil) or 'm' (empty map) elements of one array.
static zframe_t *
s_header (const char *spec, ...)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, strlen (spec));
    va_list args;
    va_start (args, spec);
    for (const char *p = spec; *p; p++) {
        if (*p == 'u')
            msgpack_pack_uint32 (&pk, va_arg (args, unsigned));
        else
        if (*p == 's') {
            const char *text = va_arg (args, const char *);
            msgpack_pack_str (&pk, strlen (text));
            msgpack_pack_str_body (&pk, text, strlen (text));
        }
        else
        if (*p == 'n')
            msgpack_pack_nil (&pk);
        else
            msgpack_pack_map (&pk, 0);
    }
    va_end (args);
    zframe_t *frame = zframe_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return frame;
}

//  Sends `header` (taken) and, when `payload_size` is not (size_t) -1, a
//  payload frame of that many bytes.
static void
s_send_header (zsock_t *sock, zframe_t *header, size_t payload_size)
{
    zmsg_t *zmsg = zmsg_new ();
    zmsg_append (zmsg, &header);
    if (payload_size != (size_t) -1) {
        zframe_t *payload = zframe_new (NULL, payload_size);
        memset (zframe_data (payload), 'p', payload_size);
        zmsg_append (zmsg, &payload);
    }
    assert_int_equal (zmsg_send (&zmsg, sock), 0);
}

//  Proves the broker is alive and well: a normal round trip.
static void
s_round_trip (tb_broker_t *broker, zsock_t *gateway, zsock_t *worker, const char *corr_id)
{
    tb_request (gateway, corr_id, "api", "t", 5000, 0, "ping");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_JOB);
    assert_string_equal (msg.corr_id, corr_id);
    tb_result (worker, corr_id, SB_STATUS_OK, "pong");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_string_equal (msg.corr_id, corr_id);
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_true (tb_payload_is (&msg, "pong"));
    sb_msg_reset (&msg);
}

static void
test_frontend_garbage (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    const char junk [] = "\xff\x00garbage\xc1";
    const char ok_payload [] = "x";
    uint64_t expected = 0;

    tb_send_raw (gateway, 1, junk, sizeof junk);                       //  not msgpack
    expected++;
    tb_send_raw (gateway, 1, "", (size_t) 0);                          //  empty frame
    expected++;
    tb_send_raw (gateway, 3, junk, sizeof junk, junk, sizeof junk,
                 junk, sizeof junk);                                     //  three frames
    expected++;
    //  A valid REQUEST header but no payload frame
    s_send_header (gateway, s_header ("uusssuu", 1, 1, "no-payload", "api", "t", 1000, 0), -1);
    expected++;
    //  A valid header followed by two payload frames
    {
        zmsg_t *zmsg = zmsg_new ();
        zframe_t *header = s_header ("uusssuu", 1, 1, "three", "api", "t", 1000, 0);
        zmsg_append (zmsg, &header);
        zmsg_addmem (zmsg, ok_payload, 1);
        zmsg_addmem (zmsg, ok_payload, 1);
        assert_int_equal (zmsg_send (&zmsg, gateway), 0);
        expected++;
    }
    //  Wrong types: corr_id as a number, timeout as a string, header a map
    s_send_header (gateway, s_header ("uuusuu", 1, 1, 42, "api", 1000, 0), 1);
    expected++;
    s_send_header (gateway, s_header ("uussssu", 1, 1, "wt", "api", "t", "soon", 0), 1);
    expected++;
    s_send_header (gateway, s_header ("m"), 1);
    expected++;
    //  Out of bounds: zero timeout, over-long service, unknown command
    s_send_header (gateway, s_header ("uusssuu", 1, 1, "zero", "api", "t", 0, 0), 1);
    expected++;
    s_send_header (gateway, s_header ("uusssuu", 1, 1, "long", "a-service-name-far-too-long-for-the-limit",
                                      "t", 1000, 0), 1);
    expected++;
    s_send_header (gateway, s_header ("uus", 1, 99, "what"), 1);
    expected++;
    //  A payload past the codec's limit
    s_send_header (gateway, s_header ("uusssuu", 1, 1, "huge", "api", "t", 1000, 0), S_HUGE_SIZE);
    expected++;
    //  Misdirected commands: a gateway sending READY, RESULT and JOB
    s_send_header (gateway, s_header ("uusuu", 1, 3, "api", 4, 1000), -1);
    expected++;
    s_send_header (gateway, s_header ("uusu", 1, 5, "res", 0), 1);
    expected++;
    s_send_header (gateway, s_header ("uussuuu", 1, 4, "job", "t", 1000, 0, 1), 1);
    expected++;

    assert_true (TB_WAIT (broker, malformed_frontend, expected));
    //  None of that produced a reply or a job
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    s_round_trip (broker, gateway, worker, "after-garbage");
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.malformed_frontend, expected);
    assert_int_equal (c.jobs_received, 1);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  Another protocol version: answered `bad_version` when the corr_id can
//  be read, dropped otherwise.
static void
test_frontend_bad_version (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_send_header (gateway, s_header ("uusssuu", 2, 1, "v2-call", "api", "t", 1000, 0), 1);
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "v2-call");
    assert_int_equal (msg.status, SB_STATUS_BAD_VERSION);
    s_send_header (gateway, s_header ("uuu", 7, 1, 3), 1);             //  no corr_id
    assert_true (TB_WAIT (broker, bad_version, 2));
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);
    s_round_trip (broker, gateway, worker, "after-version");
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  A frame far past every limit: the socket drops the sender's connection
//  before reading it; the broker lives on and serves the next gateway.
static void
test_frontend_giant_frame (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    s_send_header (gateway, s_header ("uusssuu", 1, 1, "giant", "api", "t", 1000, 0), S_GIANT_SIZE);
    zsock_t *next = tb_gateway (broker);
    s_round_trip (broker, next, worker, "after-giant");
    zsock_destroy (&next);
    assert_int_equal (tb_counters (broker).jobs_received, 1);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

static void
test_backend_garbage (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    zsock_t *rogue = zsock_new (ZMQ_DEALER);
    assert_non_null (rogue);
    zsock_set_linger (rogue, 0);
    assert_int_equal (zsock_connect (rogue, "%s", broker->backend), 0);
    const char junk [] = "\x93\x01";
    uint64_t expected = 0;

    tb_send_raw (rogue, 1, junk, sizeof junk);                         //  truncated msgpack
    expected++;
    tb_send_raw (rogue, 3, junk, sizeof junk, junk, sizeof junk, junk, sizeof junk);
    expected++;
    //  READY with credit 0, with credit past the limit, with a string credit,
    //  with a heartbeat too short, with a missing field
    s_send_header (rogue, s_header ("uusuu", 1, 3, "api", 0, 1000), -1);
    expected++;
    s_send_header (rogue, s_header ("uusuu", 1, 3, "api", SB_MAX_CREDIT + 1, 1000), -1);
    expected++;
    s_send_header (rogue, s_header ("uussu", 1, 3, "api", "many", 1000), -1);
    expected++;
    s_send_header (rogue, s_header ("uusuu", 1, 3, "api", 4, 1), -1);
    expected++;
    s_send_header (rogue, s_header ("uusu", 1, 3, "api", 4), -1);
    expected++;
    //  READY with a payload frame it must not have
    s_send_header (rogue, s_header ("uusuu", 1, 3, "api", 4, 1000), 1);
    expected++;
    //  RESULT with a status out of range; a huge RESULT payload
    s_send_header (worker, s_header ("uusu", 1, 5, "x", 99), 1);
    expected++;
    s_send_header (worker, s_header ("uusu", 1, 5, "x", 0), S_HUGE_SIZE);
    expected++;
    //  Misdirected: a worker sending REQUEST, JOB and REPLY
    s_send_header (worker, s_header ("uusssuu", 1, 1, "req", "api", "t", 1000, 0), 1);
    expected++;
    s_send_header (worker, s_header ("uussuuu", 1, 4, "job", "t", 1000, 0, 1), 1);
    expected++;
    s_send_header (worker, s_header ("uusu", 1, 2, "rep", 0), 1);
    expected++;
    assert_true (TB_WAIT (broker, malformed_backend, expected));
    //  The REQUEST (no parent: a gateway's, on the wrong socket) is also
    //  answered, as a worker's request that fails its checks would be
    sb_msg_t refused = { 0 };
    assert_int_equal (tb_recv (worker, &refused, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (refused.command, SB_CMD_REPLY);
    assert_string_equal (refused.corr_id, "req");
    assert_int_equal (refused.status, SB_STATUS_MALFORMED);
    sb_msg_reset (&refused);

    //  Other version: counted, nothing else
    s_send_header (rogue, s_header ("uusuu", 9, 3, "api", 4, 1000), -1);
    assert_true (TB_WAIT (broker, bad_version, 1));

    //  An unregistered worker's RESULT and HEARTBEAT are dropped, and it
    //  is told to register (DISCONNECT)
    tb_result (rogue, "not-mine", SB_STATUS_OK, "forged");
    s_send_header (rogue, s_header ("uu", 1, 6), -1);
    assert_true (TB_WAIT (broker, unknown_worker_dropped, 2));
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (rogue, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_DISCONNECT);

    //  None of that registered a worker, produced a reply or lost the good worker
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    s_round_trip (broker, gateway, worker, "after-backend-garbage");
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.malformed_backend, expected);
    assert_int_equal (c.workers, 1);
    assert_int_equal (c.workers_registered, 1);
    assert_int_equal (c.late_results_dropped, 0);
    sb_msg_reset (&msg);
    zsock_destroy (&rogue);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  A registered worker answering a job it was never given (or twice) does
//  not produce a reply.
static void
test_backend_forged_result (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *other = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "owned", "api", "t", 5000, 0, "x");
    sb_msg_t msg = { 0 };
    //  It goes to one of the two; the other forges a result for it first
    zsock_t *holder = NULL, *forger = NULL;
    if (tb_recv (worker, &msg, TB_QUIET_MS, true) == SB_MSG_OK) {
        holder = worker;
        forger = other;
    }
    else {
        assert_int_equal (tb_recv (other, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        holder = other;
        forger = worker;
    }
    assert_string_equal (msg.corr_id, "owned");
    tb_result (forger, "owned", SB_STATUS_OK, "forged");
    assert_true (TB_WAIT (broker, late_results_dropped, 1));
    tb_result (holder, "owned", SB_STATUS_OK, "genuine");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_true (tb_payload_is (&msg, "genuine"));
    tb_result (holder, "owned", SB_STATUS_OK, "again");
    assert_true (TB_WAIT (broker, late_results_dropped, 2));
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    zsock_destroy (&other);
    tb_broker_stop (&broker);
}

int
main (void)
{
    sb_log_init ("broker-test", SB_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_frontend_garbage),
        cmocka_unit_test (test_frontend_bad_version),
        cmocka_unit_test (test_frontend_giant_frame),
        cmocka_unit_test (test_backend_garbage),
        cmocka_unit_test (test_backend_forged_result),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
