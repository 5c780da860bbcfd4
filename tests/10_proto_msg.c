/*  tests/10_proto_msg.c — unit tests of the envelope codec (proto/sb_msg):
    every command round-trips through encode/decode and through real
    ROUTER/DEALER sockets; every malformed shape is refused. */
#include "sb_msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <msgpack.h>

//  Encodes then decodes `in`; returns the decode rc, fills `out`.
static int
s_round_trip (sb_msg_t *in, sb_msg_t *out)
{
    zmsg_t *zmsg = sb_msg_encode (in);
    assert_non_null (zmsg);
    return sb_msg_decode (&zmsg, out);
}

static void
test_request_round_trip (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    zframe_t *payload = zframe_new ("hello", 5);
    assert_int_equal (sb_msg_set_request (&in, "corr-1", "api", "tenant-a", 2500,
                                          SB_FLAG_RETRY_SAFE, &payload), 0);
    assert_null (payload);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_REQUEST);
    assert_string_equal (out.corr_id, "corr-1");
    assert_string_equal (out.service, "api");
    assert_string_equal (out.tenant, "tenant-a");
    assert_int_equal (out.timeout_ms, 2500);
    assert_int_equal (out.flags, SB_FLAG_RETRY_SAFE);
    assert_non_null (out.payload);
    assert_memory_equal (zframe_data (out.payload), "hello", 5);
    assert_null (in.payload);       //  moved into the zmsg
    sb_msg_reset (&in);
    sb_msg_reset (&out);
}

static void
test_every_command_round_trips (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };

    assert_int_equal (sb_msg_set_reply (&in, "c1", SB_STATUS_TIMEOUT, NULL), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_REPLY);
    assert_int_equal (out.status, SB_STATUS_TIMEOUT);
    assert_non_null (out.payload);                  //  absent payload travels empty
    assert_int_equal (zframe_size (out.payload), 0);
    sb_msg_reset (&out);

    assert_int_equal (sb_msg_set_ready (&in, "token", 64, 1000), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_READY);
    assert_string_equal (out.service, "token");
    assert_int_equal (out.credit, 64);
    assert_int_equal (out.heartbeat_ms, 1000);
    assert_null (out.payload);
    sb_msg_reset (&out);

    sb_msg_reset (&in);
    in.command = SB_CMD_JOB;
    snprintf (in.corr_id, sizeof in.corr_id, "j-7");
    snprintf (in.tenant, sizeof in.tenant, "acme");
    in.timeout_ms = 900;
    in.attempt = 2;
    in.payload = zframe_new ("x", 1);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_JOB);
    assert_string_equal (out.tenant, "acme");
    assert_int_equal (out.attempt, 2);
    assert_int_equal (out.timeout_ms, 900);
    sb_msg_reset (&out);

    zframe_t *body = zframe_new ("{}", 2);
    assert_int_equal (sb_msg_set_result (&in, "j-7", SB_STATUS_FAILED, &body), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_RESULT);
    assert_int_equal (out.status, SB_STATUS_FAILED);
    sb_msg_reset (&out);

    sb_msg_set_heartbeat (&in);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_HEARTBEAT);
    sb_msg_set_disconnect (&in);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_DISCONNECT);
    sb_msg_reset (&in);
    sb_msg_reset (&out);
}

static void
test_call_messages_round_trip (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    zframe_t *body = zframe_new ("{\"method\":\"notifications/progress\"}", 35);
    assert_int_equal (sb_msg_set_notify (&in, "c9", &body), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_NOTIFY);
    assert_string_equal (out.corr_id, "c9");
    assert_int_equal (zframe_size (out.payload), 35);
    sb_msg_reset (&out);

    assert_int_equal (sb_msg_set_cancel (&in, "c9"), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_CANCEL);
    assert_null (out.payload);
    sb_msg_reset (&out);

    body = zframe_new ("{}", 2);
    assert_int_equal (sb_msg_set_ask (&in, "c9", 3, &body), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_ASK);
    assert_int_equal (out.ask_id, 3);
    sb_msg_reset (&out);

    body = zframe_new ("{}", 2);
    assert_int_equal (sb_msg_set_answer (&in, "c9", "acme", 3, &body), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_ANSWER);
    assert_string_equal (out.tenant, "acme");
    assert_int_equal (out.ask_id, 3);
    sb_msg_reset (&out);

    //  ask_id 0 is reserved: not encodable, not decodable.
    assert_int_equal (sb_msg_set_ask (&in, "c9", 0, NULL), 0);
    assert_null (sb_msg_encode (&in));
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x94\x01\x0a\xa2" "c9\x00", 7, &out),
                      SB_MSG_MALFORMED);
    //  An ANSWER without its tenant is malformed.
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x94\x01\x0b\xa2" "c9\x01", 7, &out),
                      SB_MSG_MALFORMED);
    assert_string_equal (sb_status_name (SB_STATUS_CANCELLED), "cancelled");
    assert_string_equal (sb_cmd_name (SB_CMD_ANSWER), "answer");
    sb_msg_reset (&in);
}

static void
test_broadcast (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    zframe_t *body = zframe_new ("s1.abc.def", 10);
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", "session_ended", &body), 0);
    assert_null (body);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_BROADCAST);
    assert_string_equal (out.tenant, "acme");
    assert_string_equal (out.topic, "session_ended");
    assert_true (out.corr_id [0] == 0);
    assert_int_equal (zframe_size (out.payload), 10);
    assert_memory_equal (zframe_data (out.payload), "s1.abc.def", 10);
    assert_string_equal (sb_cmd_name (SB_CMD_BROADCAST), "broadcast");
    sb_msg_reset (&out);

    //  No payload travels as an empty frame; exactly the limit is fine.
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", "log_level", NULL), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (zframe_size (out.payload), 0);
    sb_msg_reset (&out);
    body = zframe_new (NULL, SB_MAX_BROADCAST_SIZE);
    memset (zframe_data (body), 'p', SB_MAX_BROADCAST_SIZE);
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", "t", &body), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (zframe_size (out.payload), SB_MAX_BROADCAST_SIZE);
    sb_msg_reset (&out);

    //  Bad fields: the builder refuses them; an oversized payload cannot be encoded.
    char topic [SB_MAX_TOPIC_LEN + 2];
    memset (topic, 'x', sizeof topic - 1);
    topic [sizeof topic - 1] = 0;
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", topic, NULL), -1);
    topic [SB_MAX_TOPIC_LEN] = 0;
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", topic, NULL), 0);
    sb_msg_reset (&in);
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", "", NULL), -1);
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", "log level", NULL), -1);
    assert_int_equal (sb_msg_set_broadcast (&in, "", "log_level", NULL), -1);
    assert_int_equal (sb_msg_set_broadcast (&in, NULL, "log_level", NULL), -1);
    body = zframe_new (NULL, SB_MAX_BROADCAST_SIZE + 1);
    memset (zframe_data (body), 'p', SB_MAX_BROADCAST_SIZE + 1);
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", "t", &body), 0);
    assert_null (sb_msg_encode (&in));
    sb_msg_reset (&in);

    //  On the wire: an oversized payload, a missing payload frame, a
    //  missing or ill-typed topic are malformed.
    assert_int_equal (sb_msg_set_broadcast (&in, "acme", "t", NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&in);
    zframe_t *empty = zmsg_last (zmsg);
    zmsg_remove (zmsg, empty);
    zframe_destroy (&empty);
    zmsg_t *copy = zmsg_dup (zmsg);
    char big [SB_MAX_BROADCAST_SIZE + 1];
    memset (big, 'p', sizeof big);
    zmsg_addmem (zmsg, big, sizeof big);
    assert_int_equal (sb_msg_decode (&zmsg, &out), SB_MSG_MALFORMED);
    assert_int_equal (sb_msg_decode (&copy, &out), SB_MSG_MALFORMED);
    //  [1, 12, "acme"]: no topic
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x93\x01\x0c\xa4" "acme", 8, &out),
                      SB_MSG_MALFORMED);
    //  [1, 12, "acme", 5]: a number for a topic
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x94\x01\x0c\xa4" "acme\x05", 9, &out),
                      SB_MSG_MALFORMED);
    //  [1, 12, "acme", "a b"]: a space in the topic
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x94\x01\x0c\xa4" "acme\xa3" "a b", 12, &out),
                      SB_MSG_MALFORMED);
    //  [1, 12, "acme", "t"] decodes
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x94\x01\x0c\xa4" "acme\xa1" "t", 10, &out),
                      SB_MSG_OK);
    assert_string_equal (out.topic, "t");
    sb_msg_reset (&out);
    //  Command 17 is not one (yet).
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x92\x01\x11", 3, &out),
                      SB_MSG_MALFORMED);
}

//  PUBLISH (PROTOCOL.md "Webhooks"): BROADCAST's fields, bounds and payload
//  limit under command 16.
static void
test_publish (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    const char *uri = "switchboard://events/stripe";
    zframe_t *body = zframe_new (uri, strlen (uri));
    assert_int_equal (sb_msg_set_publish (&in, "acme", "resource_updated", &body), 0);
    assert_null (body);
    assert_int_equal (in.command, SB_CMD_PUBLISH);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_PUBLISH);
    assert_string_equal (out.tenant, "acme");
    assert_string_equal (out.topic, "resource_updated");
    assert_true (out.corr_id [0] == 0);
    assert_int_equal (zframe_size (out.payload), strlen (uri));
    assert_memory_equal (zframe_data (out.payload), uri, strlen (uri));
    assert_string_equal (sb_cmd_name (SB_CMD_PUBLISH), "publish");
    assert_int_equal (SB_CMD_PUBLISH, 16);
    assert_int_equal (SB_CMD_MAX, SB_CMD_PUBLISH);
    sb_msg_reset (&out);

    //  The header on the wire is [1, 16, tenant, topic].
    assert_int_equal (sb_msg_set_publish (&in, "acme", "t", NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&in);
    assert_non_null (zmsg);
    zframe_t *head = zmsg_first (zmsg);
    assert_int_equal (zframe_size (head), 10);
    assert_memory_equal (zframe_data (head), "\x94\x01\x10\xa4" "acme\xa1" "t", 10);
    assert_int_equal (sb_msg_decode (&zmsg, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_PUBLISH);
    assert_int_equal (zframe_size (out.payload), 0);    //  no payload travels empty
    sb_msg_reset (&out);

    //  Exactly SB_MAX_BROADCAST_SIZE is fine; one byte more cannot be encoded.
    body = zframe_new (NULL, SB_MAX_BROADCAST_SIZE);
    memset (zframe_data (body), 'p', SB_MAX_BROADCAST_SIZE);
    assert_int_equal (sb_msg_set_publish (&in, "acme", "t", &body), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (zframe_size (out.payload), SB_MAX_BROADCAST_SIZE);
    sb_msg_reset (&out);
    body = zframe_new (NULL, SB_MAX_BROADCAST_SIZE + 1);
    memset (zframe_data (body), 'p', SB_MAX_BROADCAST_SIZE + 1);
    assert_int_equal (sb_msg_set_publish (&in, "acme", "t", &body), 0);
    assert_null (sb_msg_encode (&in));
    sb_msg_reset (&in);

    //  Bad fields: the builder refuses them (and says PUBLISH still).
    char topic [SB_MAX_TOPIC_LEN + 2];
    memset (topic, 'x', sizeof topic - 1);
    topic [sizeof topic - 1] = 0;
    assert_int_equal (sb_msg_set_publish (&in, "acme", topic, NULL), -1);
    topic [SB_MAX_TOPIC_LEN] = 0;
    assert_int_equal (sb_msg_set_publish (&in, "acme", topic, NULL), 0);
    assert_int_equal (sb_msg_set_publish (&in, "acme", "", NULL), -1);
    assert_int_equal (sb_msg_set_publish (&in, "acme", "a b", NULL), -1);
    assert_int_equal (sb_msg_set_publish (&in, "", "t", NULL), -1);
    assert_int_equal (sb_msg_set_publish (&in, NULL, "t", NULL), -1);
    char tenant [SB_MAX_TENANT_LEN + 2];
    memset (tenant, 'a', sizeof tenant - 1);
    tenant [sizeof tenant - 1] = 0;
    assert_int_equal (sb_msg_set_publish (&in, tenant, "t", NULL), -1);
    sb_msg_reset (&in);

    //  On the wire: an oversized payload, a missing payload frame, a
    //  missing or ill-typed topic are malformed.
    assert_int_equal (sb_msg_set_publish (&in, "acme", "t", NULL), 0);
    zmsg = sb_msg_encode (&in);
    zframe_t *empty = zmsg_last (zmsg);
    zmsg_remove (zmsg, empty);
    zframe_destroy (&empty);
    zmsg_t *copy = zmsg_dup (zmsg);
    char big [SB_MAX_BROADCAST_SIZE + 1];
    memset (big, 'p', sizeof big);
    zmsg_addmem (zmsg, big, sizeof big);
    assert_int_equal (sb_msg_decode (&zmsg, &out), SB_MSG_MALFORMED);
    assert_int_equal (sb_msg_decode (&copy, &out), SB_MSG_MALFORMED);
    //  [1, 16, "acme"]: no topic
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x93\x01\x10\xa4" "acme", 8, &out),
                      SB_MSG_MALFORMED);
    //  [1, 16, "acme", 5]: a number for a topic
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x94\x01\x10\xa4" "acme\x05", 9, &out),
                      SB_MSG_MALFORMED);
    //  [1, 16, "", "t"]: an empty tenant
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x94\x01\x10\xa0\xa1" "t", 6, &out),
                      SB_MSG_MALFORMED);
    //  [1, 16, "acme", "t", 7]: a newer revision's extra field is ignored
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x95\x01\x10\xa4" "acme\xa1" "t\x07", 11, &out),
                      SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_PUBLISH);
    assert_string_equal (out.topic, "t");
    sb_msg_reset (&out);
}

static void
test_builders_refuse_bad_fields (void **state)
{
    sb_msg_t msg = { 0 };
    char too_long [SB_MAX_TENANT_LEN + 2];
    memset (too_long, 't', sizeof too_long - 1);
    too_long [sizeof too_long - 1] = 0;
    assert_int_equal (sb_msg_set_request (&msg, "c", "api", too_long, 100, 0, NULL), -1);
    assert_int_equal (sb_msg_set_request (&msg, "c", "api", "", 100, 0, NULL), -1);
    assert_int_equal (sb_msg_set_request (&msg, "c 1", "api", "t", 100, 0, NULL), -1);
    assert_int_equal (sb_msg_set_ready (&msg, "api\n", 1, 1000), -1);

    //  Values out of range cannot be encoded.
    assert_int_equal (sb_msg_set_request (&msg, "c", "api", "t", 0, 0, NULL), 0);
    assert_null (sb_msg_encode (&msg));
    assert_int_equal (sb_msg_set_ready (&msg, "api", 0, 1000), 0);
    assert_null (sb_msg_encode (&msg));
    assert_int_equal (sb_msg_set_ready (&msg, "api", SB_MAX_CREDIT + 1, 1000), 0);
    assert_null (sb_msg_encode (&msg));
    sb_msg_reset (&msg);
}

//  Packs an arbitrary header array for the malformed cases.
typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} s_pack_t;

static void
s_pack_init (s_pack_t *p)
{
    msgpack_sbuffer_init (&p->sbuf);
    msgpack_packer_init (&p->pk, &p->sbuf, msgpack_sbuffer_write);
}

//  Starts a header of `elements` fields: version 1, then `command`.
static void
s_pack_head (s_pack_t *p, size_t elements, sb_cmd_t command)
{
    s_pack_init (p);
    msgpack_pack_array (&p->pk, elements);
    msgpack_pack_uint32 (&p->pk, 1);
    msgpack_pack_uint32 (&p->pk, command);
}

static int
s_decode_packed (s_pack_t *p, sb_msg_t *msg)
{
    int rc = sb_msg_decode_header ((const uint8_t *) p->sbuf.data, p->sbuf.size, msg);
    msgpack_sbuffer_destroy (&p->sbuf);
    return rc;
}

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

static void
test_malformed_headers (void **state)
{
    sb_msg_t msg = { 0 };
    s_pack_t p;

    //  Not msgpack at all, empty, trailing bytes.
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\xc1", 1, &msg), SB_MSG_MALFORMED);
    assert_int_equal (sb_msg_decode_header (NULL, 0, &msg), SB_MSG_MALFORMED);
    assert_int_equal (sb_msg_decode_header ((const uint8_t *) "\x92\x01\x06\x00", 4, &msg),
                      SB_MSG_MALFORMED);

    //  Wrong type for the command field.
    s_pack_init (&p);
    msgpack_pack_array (&p.pk, 2);
    msgpack_pack_uint32 (&p.pk, 1);
    s_pack_str (&p.pk, "request");
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_MALFORMED);

    //  Unknown command.
    s_pack_init (&p);
    msgpack_pack_array (&p.pk, 2);
    msgpack_pack_uint32 (&p.pk, 1);
    msgpack_pack_uint32 (&p.pk, 42);
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_MALFORMED);

    //  Missing fields.
    s_pack_head (&p, 3, SB_CMD_REQUEST);
    s_pack_str (&p.pk, "c1");
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_MALFORMED);

    //  Negative timeout, status out of range.
    s_pack_head (&p, 7, SB_CMD_REQUEST);
    s_pack_str (&p.pk, "c1");
    s_pack_str (&p.pk, "api");
    s_pack_str (&p.pk, "t");
    msgpack_pack_int32 (&p.pk, -5);
    msgpack_pack_uint32 (&p.pk, 0);
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_MALFORMED);

    s_pack_head (&p, 4, SB_CMD_RESULT);
    s_pack_str (&p.pk, "c1");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_MAX + 1);
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_MALFORMED);

    //  Over-long tenant.
    s_pack_head (&p, 7, SB_CMD_JOB);
    s_pack_str (&p.pk, "c1");
    char tenant [SB_MAX_TENANT_LEN + 2];
    memset (tenant, 'x', sizeof tenant - 1);
    tenant [sizeof tenant - 1] = 0;
    s_pack_str (&p.pk, tenant);
    msgpack_pack_uint32 (&p.pk, 100);
    msgpack_pack_uint32 (&p.pk, 0);
    msgpack_pack_uint32 (&p.pk, 1);
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_MALFORMED);

    //  Another version keeps the correlation ID so the peer can be told.
    s_pack_init (&p);
    msgpack_pack_array (&p.pk, 3);
    msgpack_pack_uint32 (&p.pk, 9);
    msgpack_pack_uint32 (&p.pk, SB_CMD_REQUEST);
    s_pack_str (&p.pk, "old-peer-1");
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_BAD_VERSION);
    assert_string_equal (msg.corr_id, "old-peer-1");

    //  Extra trailing fields from a newer minor revision are accepted
    //  (after REPLY's optional retry_after_ms too).
    s_pack_head (&p, 5, SB_CMD_RESULT);
    s_pack_str (&p.pk, "c1");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_OK);
    s_pack_str (&p.pk, "future");
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_OK);
    s_pack_head (&p, 6, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c1");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_OK);
    msgpack_pack_uint32 (&p.pk, 0);
    s_pack_str (&p.pk, "future");
    assert_int_equal (s_decode_packed (&p, &msg), SB_MSG_OK);
    sb_msg_reset (&msg);
}

//  Packs a REQUEST header: the five fields, then `parent` when not NULL
//  (a str; or, when `parent_uint`, the number 7 instead).
static void
s_pack_request (s_pack_t *p, const char *parent, bool parent_uint)
{
    s_pack_init (p);
    msgpack_pack_array (&p->pk, parent || parent_uint? 8: 7);
    msgpack_pack_uint32 (&p->pk, 1);
    msgpack_pack_uint32 (&p->pk, SB_CMD_REQUEST);
    s_pack_str (&p->pk, "w1");
    s_pack_str (&p->pk, "token");
    s_pack_str (&p->pk, "acme");
    msgpack_pack_uint32 (&p->pk, 1000);
    msgpack_pack_uint32 (&p->pk, 0);
    if (parent_uint)
        msgpack_pack_uint32 (&p->pk, 7);
    else
    if (parent)
        s_pack_str (&p->pk, parent);
}

//  REQUEST's optional `parent` (a worker's request): round trips, is
//  written "" by a gateway (the metering fields follow it), an older
//  gateway's five-field REQUEST decodes, and it is bounded like a corr_id.
static void
test_request_parent (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    zframe_t *payload = zframe_new ("job", 3);
    assert_int_equal (sb_msg_set_worker_request (&in, "w1", "token", "acme", 900, 0,
                                                 "parent-1", &payload), 0);
    assert_null (payload);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_REQUEST);
    assert_string_equal (out.corr_id, "w1");
    assert_string_equal (out.service, "token");
    assert_string_equal (out.tenant, "acme");
    assert_int_equal (out.timeout_ms, 900);
    assert_string_equal (out.parent, "parent-1");
    assert_non_null (out.payload);
    assert_memory_equal (zframe_data (out.payload), "job", 3);
    sb_msg_reset (&out);

    //  The longest parent fits; a gateway's REQUEST carries parent "" and
    //  the four metering fields
    char longest [SB_MAX_CORR_ID_LEN + 2];
    memset (longest, 'p', SB_MAX_CORR_ID_LEN);
    longest [SB_MAX_CORR_ID_LEN] = 0;
    assert_int_equal (sb_msg_set_worker_request (&in, "w2", "token", "acme", 900, 0,
                                                 longest, NULL), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_string_equal (out.parent, longest);
    sb_msg_reset (&out);
    assert_int_equal (sb_msg_set_request (&in, "g1", "api", "acme", 900, 0, NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&in);
    assert_non_null (zmsg);
    zframe_t *header = zmsg_first (zmsg);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert_int_equal (msgpack_unpack_next (&unpacked, (const char *) zframe_data (header),
                                           zframe_size (header), NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (unpacked.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal (unpacked.data.via.array.size, 12);
    assert_int_equal (unpacked.data.via.array.ptr [7].type, MSGPACK_OBJECT_STR);
    assert_int_equal (unpacked.data.via.array.ptr [7].via.str.size, 0);
    msgpack_unpacked_destroy (&unpacked);
    assert_int_equal (sb_msg_decode (&zmsg, &out), SB_MSG_OK);
    assert_string_equal (out.parent, "");
    sb_msg_reset (&out);

    //  The builder refuses a missing, empty, over-long or spaced parent
    assert_int_equal (sb_msg_set_worker_request (&in, "w3", "token", "acme", 900, 0, NULL, NULL), -1);
    assert_int_equal (sb_msg_set_worker_request (&in, "w3", "token", "acme", 900, 0, "", NULL), -1);
    longest [SB_MAX_CORR_ID_LEN] = 'p';
    longest [SB_MAX_CORR_ID_LEN + 1] = 0;
    assert_int_equal (sb_msg_set_worker_request (&in, "w3", "token", "acme", 900, 0,
                                                 longest, NULL), -1);
    assert_int_equal (sb_msg_set_worker_request (&in, "w3", "token", "acme", 900, 0,
                                                 "a b", NULL), -1);
    //  and the encoder a parent broken after the builder
    assert_int_equal (sb_msg_set_request (&in, "w3", "token", "acme", 900, 0, NULL), 0);
    memcpy (in.parent, "a\tb", 4);
    assert_null (sb_msg_encode (&in));
    sb_msg_reset (&in);

    //  On the wire: five fields (an older gateway), "" (absent), a parent
    s_pack_t p;
    s_pack_request (&p, NULL, false);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_string_equal (out.corr_id, "w1");
    assert_string_equal (out.parent, "");
    s_pack_request (&p, "", false);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_string_equal (out.parent, "");
    s_pack_request (&p, "job-7", false);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_string_equal (out.parent, "job-7");

    //  Malformed parents: not a string, over-long, a space, a control byte
    s_pack_request (&p, NULL, true);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    assert_string_equal (out.corr_id, "");
    s_pack_request (&p, longest, false);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_request (&p, "job 7", false);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_request (&p, "job\x01", false);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    sb_msg_reset (&out);
}

//  REPLY's optional retry_after_ms: written by this revision, read as 0
//  from an older peer that leaves it out, bounded both ways.
static void
test_reply_retry_after (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    assert_int_equal (sb_msg_set_reply (&in, "c1", SB_STATUS_UNAVAILABLE, NULL), 0);
    in.retry_after_ms = 5000;
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.status, SB_STATUS_UNAVAILABLE);
    assert_int_equal (out.retry_after_ms, 5000);
    assert_string_equal (sb_status_name (SB_STATUS_UNAVAILABLE), "unavailable");
    sb_msg_reset (&out);

    //  An older peer's REPLY: [1, REPLY, corr_id, status] only
    s_pack_t p;
    s_pack_head (&p, 4, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c2");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_OVERLOADED);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_string_equal (out.corr_id, "c2");
    assert_int_equal (out.status, SB_STATUS_OVERLOADED);
    assert_int_equal (out.retry_after_ms, 0);

    //  Present but out of bounds, or of the wrong type: malformed
    s_pack_head (&p, 5, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c3");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_UNAVAILABLE);
    msgpack_pack_uint32 (&p.pk, SB_MAX_RETRY_AFTER_MS + 1);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_head (&p, 5, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c3");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_UNAVAILABLE);
    s_pack_str (&p.pk, "soon");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);

    //  A required field is still required before the optional ones
    s_pack_head (&p, 3, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c4");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);

    assert_int_equal (sb_msg_set_reply (&in, "c5", SB_STATUS_UNAVAILABLE, NULL), 0);
    in.retry_after_ms = SB_MAX_RETRY_AFTER_MS + 1;
    assert_null (sb_msg_encode (&in));
    sb_msg_reset (&in);
    sb_msg_reset (&out);
}

//  Starts a REQUEST header of `elements` array elements with its five
//  required fields; the caller packs the rest.
static void
s_pack_request_head (s_pack_t *p, size_t elements)
{
    s_pack_head (p, elements, SB_CMD_REQUEST);
    s_pack_str (&p->pk, "g1");
    s_pack_str (&p->pk, "api");
    s_pack_str (&p->pk, "acme");
    msgpack_pack_uint32 (&p->pk, 1000);
    msgpack_pack_uint32 (&p->pk, 0);
}

//  A whole metered REQUEST header: parent, cost, conn, budget, window.
static int
s_decode_metered (const char *parent, uint32_t cost, const char *conn,
                  uint64_t budget_limit, uint64_t budget_window_s, sb_msg_t *out)
{
    s_pack_t p;
    s_pack_request_head (&p, 12);
    s_pack_str (&p.pk, parent);
    msgpack_pack_uint32 (&p.pk, cost);
    s_pack_str (&p.pk, conn);
    msgpack_pack_uint64 (&p.pk, budget_limit);
    msgpack_pack_uint64 (&p.pk, budget_window_s);
    return s_decode_packed (&p, out);
}

static void
s_fill (char *buf, char c, size_t len)
{
    memset (buf, c, len);
    buf [len] = 0;
}

//  REQUEST's metering fields (PROTOCOL.md "Quotas"): round trips, the
//  builder's bounds, older shorter headers, every bound on the wire.
static void
test_request_metering (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    zframe_t *payload = zframe_new ("job", 3);
    assert_int_equal (sb_msg_set_request (&in, "g1", "api", "acme", 900,
                                          SB_FLAG_RETRY_SAFE, &payload), 0);
    assert_int_equal (sb_msg_set_metering (&in, 7, "github", 5000, 3600), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_string_equal (out.corr_id, "g1");
    assert_int_equal (out.flags, SB_FLAG_RETRY_SAFE);
    assert_string_equal (out.parent, "");
    assert_int_equal (out.cost, 7);
    assert_string_equal (out.conn, "github");
    assert_int_equal (out.budget_limit, 5000);
    assert_int_equal (out.budget_window_s, 3600);
    assert_memory_equal (zframe_data (out.payload), "job", 3);
    sb_msg_reset (&out);

    //  Every field at its largest still fits the header limit
    char corr [SB_MAX_CORR_ID_LEN + 1], service [SB_MAX_SERVICE_LEN + 1];
    char tenant [SB_MAX_TENANT_LEN + 1], conn [SB_MAX_CONN_LEN + 2];
    s_fill (corr, 'c', SB_MAX_CORR_ID_LEN);
    s_fill (service, 's', SB_MAX_SERVICE_LEN);
    s_fill (tenant, 't', SB_MAX_TENANT_LEN);
    s_fill (conn, 'k', SB_MAX_CONN_LEN);
    assert_int_equal (sb_msg_set_request (&in, corr, service, tenant, SB_MAX_TIMEOUT_MS,
                                          SB_FLAG_RETRY_SAFE, NULL), 0);
    assert_int_equal (sb_msg_set_metering (&in, SB_MAX_COST, conn, SB_MAX_BUDGET_LIMIT,
                                           SB_MAX_BUDGET_WINDOW_S), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.cost, SB_MAX_COST);
    assert_string_equal (out.conn, conn);
    assert_int_equal (out.budget_limit, SB_MAX_BUDGET_LIMIT);
    assert_int_equal (out.budget_window_s, SB_MAX_BUDGET_WINDOW_S);
    sb_msg_reset (&out);
    assert_int_equal (sb_msg_set_worker_request (&in, corr, service, tenant, SB_MAX_TIMEOUT_MS,
                                                 0, corr, NULL), 0);
    memcpy (in.conn, conn, sizeof in.conn);
    in.cost = SB_MAX_COST;
    in.budget_limit = SB_MAX_BUDGET_LIMIT;
    in.budget_window_s = SB_MAX_BUDGET_WINDOW_S;
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_string_equal (out.parent, corr);
    sb_msg_reset (&out);

    //  A cost without a connection, and no metering at all (zeros)
    assert_int_equal (sb_msg_set_request (&in, "g2", "api", "acme", 900, 0, NULL), 0);
    assert_int_equal (sb_msg_set_metering (&in, 1, NULL, 0, 0), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.cost, 1);
    assert_string_equal (out.conn, "");
    assert_int_equal (out.budget_limit, 0);
    sb_msg_reset (&out);
    assert_int_equal (sb_msg_set_request (&in, "g3", "token", "acme", 900, 0, NULL), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.cost, 0);
    assert_string_equal (out.conn, "");
    assert_int_equal (out.budget_limit, 0);
    assert_int_equal (out.budget_window_s, 0);
    sb_msg_reset (&out);

    //  The builder refuses each bound and changes nothing then
    assert_int_equal (sb_msg_set_request (&in, "g4", "api", "acme", 900, 0, NULL), 0);
    assert_int_equal (sb_msg_set_metering (&in, 3, "jira", 10, 60), 0);
    assert_int_equal (sb_msg_set_metering (&in, SB_MAX_COST + 1, NULL, 0, 0), -1);
    conn [SB_MAX_CONN_LEN] = 'k';
    conn [SB_MAX_CONN_LEN + 1] = 0;
    assert_int_equal (sb_msg_set_metering (&in, 1, conn, 0, 0), -1);
    assert_int_equal (sb_msg_set_metering (&in, 1, "a b", 0, 0), -1);
    assert_int_equal (sb_msg_set_metering (&in, 1, "a\x7f", 0, 0), -1);
    assert_int_equal (sb_msg_set_metering (&in, 1, NULL, 10, 60), -1);     //  budget without conn
    assert_int_equal (sb_msg_set_metering (&in, 1, "", 10, 60), -1);
    assert_int_equal (sb_msg_set_metering (&in, 1, "jira", 10, 0), -1);    //  without window
    assert_int_equal (sb_msg_set_metering (&in, 1, "jira", 0, 60), -1);    //  window alone
    assert_int_equal (sb_msg_set_metering (&in, 1, "jira", SB_MAX_BUDGET_LIMIT + 1, 60), -1);
    assert_int_equal (sb_msg_set_metering (&in, 1, "jira", 10, SB_MAX_BUDGET_WINDOW_S + 1), -1);
    assert_int_equal (in.cost, 3);
    assert_string_equal (in.conn, "jira");
    assert_int_equal (in.budget_limit, 10);
    assert_int_equal (in.budget_window_s, 60);
    //  a connection with no budget is fine (a connector without one)
    assert_int_equal (sb_msg_set_metering (&in, 1, "jira", 0, 0), 0);
    assert_string_equal (in.conn, "jira");
    assert_int_equal (in.budget_limit, 0);
    //  not a REQUEST; a worker's REQUEST with a cost
    assert_int_equal (sb_msg_set_reply (&in, "g4", SB_STATUS_OK, NULL), 0);
    assert_int_equal (sb_msg_set_metering (&in, 1, NULL, 0, 0), -1);
    assert_int_equal (sb_msg_set_worker_request (&in, "w1", "token", "acme", 900, 0, "p1", NULL), 0);
    assert_int_equal (sb_msg_set_metering (&in, 1, NULL, 0, 0), -1);
    assert_int_equal (sb_msg_set_metering (&in, 0, "jira", 10, 60), 0);
    //  and the encoder fields broken after the builder
    in.cost = SB_MAX_COST + 1;
    assert_null (sb_msg_encode (&in));
    in.cost = 0;
    in.conn [0] = 0;            //  a budget left without its connection
    assert_null (sb_msg_encode (&in));
    memcpy (in.conn, "a b", 4);
    in.budget_limit = 0;
    assert_null (sb_msg_encode (&in));
    sb_msg_reset (&in);

    //  On the wire: a worker's REQUEST with a cost decodes (the broker,
    //  not the codec, refuses it)
    assert_int_equal (s_decode_metered ("job-7", 5, "", 0, 0, &out), SB_MSG_OK);
    assert_string_equal (out.parent, "job-7");
    assert_int_equal (out.cost, 5);
    //  older headers: five fields, six (a worker's parent), seven (a cost)
    s_pack_t p;
    s_pack_request_head (&p, 7);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_int_equal (out.cost, 0);
    assert_string_equal (out.conn, "");
    s_pack_request_head (&p, 8);
    s_pack_str (&p.pk, "job-8");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_string_equal (out.parent, "job-8");
    assert_int_equal (out.cost, 0);
    s_pack_request_head (&p, 9);
    s_pack_str (&p.pk, "");
    msgpack_pack_uint32 (&p.pk, 4);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_int_equal (out.cost, 4);
    assert_string_equal (out.conn, "");
    //  a newer peer's extra field after the budget window
    s_pack_request_head (&p, 13);
    s_pack_str (&p.pk, "");
    msgpack_pack_uint32 (&p.pk, 1);
    s_pack_str (&p.pk, "jira");
    msgpack_pack_uint32 (&p.pk, 100);
    msgpack_pack_uint32 (&p.pk, 60);
    s_pack_str (&p.pk, "future");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_string_equal (out.conn, "jira");
    assert_int_equal (out.budget_window_s, 60);
    //  exactly at the bounds
    conn [SB_MAX_CONN_LEN] = 0;
    assert_int_equal (s_decode_metered ("", SB_MAX_COST, conn, SB_MAX_BUDGET_LIMIT,
                                        SB_MAX_BUDGET_WINDOW_S, &out), SB_MSG_OK);
    assert_int_equal (out.budget_limit, SB_MAX_BUDGET_LIMIT);
    //  a window without a budget is kept as sent
    assert_int_equal (s_decode_metered ("", 1, "", 0, 60, &out), SB_MSG_OK);
    assert_int_equal (out.budget_window_s, 60);

    //  Every bound broken on the wire is malformed
    assert_int_equal (s_decode_metered ("", SB_MAX_COST + 1, "", 0, 0, &out), SB_MSG_MALFORMED);
    conn [SB_MAX_CONN_LEN] = 'k';
    assert_int_equal (s_decode_metered ("", 1, conn, 0, 0, &out), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_metered ("", 1, "a b", 0, 0, &out), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_metered ("", 1, "jira", SB_MAX_BUDGET_LIMIT + 1, 60, &out),
                      SB_MSG_MALFORMED);
    assert_int_equal (s_decode_metered ("", 1, "jira", 10, SB_MAX_BUDGET_WINDOW_S + 1, &out),
                      SB_MSG_MALFORMED);
    assert_int_equal (s_decode_metered ("", 1, "", 10, 60, &out), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_metered ("", 1, "jira", 10, 0, &out), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_metered ("", 1, "jira", 1ull << 32, 60, &out), SB_MSG_MALFORMED);
    assert_string_equal (out.corr_id, "");
    //  wrong types: a negative cost, a string cost, a number for conn
    s_pack_request_head (&p, 9);
    s_pack_str (&p.pk, "");
    msgpack_pack_int32 (&p.pk, -1);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_request_head (&p, 9);
    s_pack_str (&p.pk, "");
    s_pack_str (&p.pk, "1");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_request_head (&p, 10);
    s_pack_str (&p.pk, "");
    msgpack_pack_uint32 (&p.pk, 1);
    msgpack_pack_uint32 (&p.pk, 1);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_request_head (&p, 10);
    s_pack_str (&p.pk, "");
    msgpack_pack_uint32 (&p.pk, 1);
    msgpack_pack_nil (&p.pk);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    sb_msg_reset (&out);
}

//  Packs a REPLY header with the whole quota group.
static int
s_decode_quota_reply (const char *reason, const char *scope, uint64_t limit,
                      uint64_t remaining, uint64_t reset_s, uint64_t window_s, sb_msg_t *out)
{
    s_pack_t p;
    s_pack_head (&p, 11, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c1");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_LIMITED);
    msgpack_pack_uint32 (&p.pk, 1500);
    s_pack_str (&p.pk, reason);
    s_pack_str (&p.pk, scope);
    msgpack_pack_uint64 (&p.pk, limit);
    msgpack_pack_uint64 (&p.pk, remaining);
    msgpack_pack_uint64 (&p.pk, reset_s);
    msgpack_pack_uint64 (&p.pk, window_s);
    return s_decode_packed (&p, out);
}

//  REPLY's quota group and status `limited`: round trips, always written,
//  older headers, bounds both ways.
static void
test_reply_quota (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    assert_int_equal (sb_msg_set_reply (&in, "c1", SB_STATUS_LIMITED, NULL), 0);
    in.retry_after_ms = 1500;
    memcpy (in.quota.reason, "rate", 5);
    memcpy (in.quota.scope, "free", 5);
    in.quota.limit = 60;
    in.quota.remaining = 0;
    in.quota.reset_s = 30;
    in.quota.window_s = 60;
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.status, SB_STATUS_LIMITED);
    assert_int_equal (out.retry_after_ms, 1500);
    assert_string_equal (out.quota.reason, "rate");
    assert_string_equal (out.quota.scope, "free");
    assert_int_equal (out.quota.limit, 60);
    assert_int_equal (out.quota.remaining, 0);
    assert_int_equal (out.quota.reset_s, 30);
    assert_int_equal (out.quota.window_s, 60);
    assert_non_null (out.payload);
    assert_int_equal (zframe_size (out.payload), 0);
    assert_string_equal (sb_status_name (SB_STATUS_LIMITED), "limited");
    assert_string_equal (sb_status_name ((sb_status_t) (SB_STATUS_LIMITED + 1)), "unknown");
    sb_msg_reset (&out);

    //  The largest values; a rate policy on an ok REPLY (reason empty)
    zframe_t *result = zframe_new ("{}", 2);
    assert_int_equal (sb_msg_set_reply (&in, "c2", SB_STATUS_OK, &result), 0);
    char scope [SB_MAX_SCOPE_LEN + 2], reason [SB_MAX_REASON_LEN + 2];
    s_fill (scope, 'p', SB_MAX_SCOPE_LEN);
    s_fill (reason, 'r', SB_MAX_REASON_LEN);
    memcpy (in.quota.scope, scope, sizeof in.quota.scope);
    in.quota.limit = SB_MAX_QUOTA_VALUE;
    in.quota.remaining = SB_MAX_QUOTA_VALUE;
    in.quota.reset_s = UINT32_MAX;
    in.quota.window_s = UINT32_MAX;
    in.retry_after_ms = SB_MAX_RETRY_AFTER_MS;
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_string_equal (out.quota.reason, "");
    assert_string_equal (out.quota.scope, scope);
    assert_true (out.quota.limit == SB_MAX_QUOTA_VALUE);
    assert_true (out.quota.remaining == SB_MAX_QUOTA_VALUE);
    assert_int_equal (out.quota.reset_s, UINT32_MAX);
    assert_int_equal (out.quota.window_s, UINT32_MAX);
    assert_memory_equal (zframe_data (out.payload), "{}", 2);
    sb_msg_reset (&out);

    //  A plain REPLY writes the group too, all empty
    assert_int_equal (sb_msg_set_reply (&in, "c3", SB_STATUS_TIMEOUT, NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&in);
    assert_non_null (zmsg);
    zframe_t *header = zmsg_first (zmsg);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert_int_equal (msgpack_unpack_next (&unpacked, (const char *) zframe_data (header),
                                           zframe_size (header), NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (unpacked.data.via.array.size, 11);
    msgpack_unpacked_destroy (&unpacked);
    assert_int_equal (sb_msg_decode (&zmsg, &out), SB_MSG_OK);
    assert_string_equal (out.quota.reason, "");
    assert_int_equal (out.quota.limit, 0);
    sb_msg_reset (&out);

    //  An older broker's REPLY with retry_after_ms only: the group reads 0
    s_pack_t p;
    s_pack_head (&p, 5, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c4");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_UNAVAILABLE);
    msgpack_pack_uint32 (&p.pk, 700);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_int_equal (out.retry_after_ms, 700);
    assert_string_equal (out.quota.reason, "");
    assert_string_equal (out.quota.scope, "");
    assert_int_equal (out.quota.window_s, 0);
    //  part of the group (reason and scope only) reads the rest as 0
    s_pack_head (&p, 7, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c5");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_LIMITED);
    msgpack_pack_uint32 (&p.pk, 700);
    s_pack_str (&p.pk, "monthly");
    s_pack_str (&p.pk, "pro");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_string_equal (out.quota.reason, "monthly");
    assert_string_equal (out.quota.scope, "pro");
    assert_int_equal (out.quota.limit, 0);

    //  Exactly at the bounds, then each one broken
    assert_int_equal (s_decode_quota_reply (reason, scope, SB_MAX_QUOTA_VALUE,
                                            SB_MAX_QUOTA_VALUE, UINT32_MAX, UINT32_MAX, &out),
                      SB_MSG_OK);
    assert_string_equal (out.quota.reason, reason);
    reason [SB_MAX_REASON_LEN] = 'r';
    reason [SB_MAX_REASON_LEN + 1] = 0;
    assert_int_equal (s_decode_quota_reply (reason, "free", 1, 1, 1, 1, &out), SB_MSG_MALFORMED);
    scope [SB_MAX_SCOPE_LEN] = 'p';
    scope [SB_MAX_SCOPE_LEN + 1] = 0;
    assert_int_equal (s_decode_quota_reply ("rate", scope, 1, 1, 1, 1, &out), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_quota_reply ("ra te", "free", 1, 1, 1, 1, &out), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_quota_reply ("rate", "fr\nee", 1, 1, 1, 1, &out), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_quota_reply ("rate", "free", SB_MAX_QUOTA_VALUE + 1, 1, 1, 1, &out),
                      SB_MSG_MALFORMED);
    assert_int_equal (s_decode_quota_reply ("rate", "free", 1, SB_MAX_QUOTA_VALUE + 1, 1, 1, &out),
                      SB_MSG_MALFORMED);
    assert_int_equal (s_decode_quota_reply ("rate", "free", 1, 1, 1ull << 32, 1, &out),
                      SB_MSG_MALFORMED);
    assert_int_equal (s_decode_quota_reply ("rate", "free", 1, 1, 1, 1ull << 32, &out),
                      SB_MSG_MALFORMED);
    assert_string_equal (out.corr_id, "");
    //  a number for the reason, a negative limit
    s_pack_head (&p, 6, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c6");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_LIMITED);
    msgpack_pack_uint32 (&p.pk, 0);
    msgpack_pack_uint32 (&p.pk, 1);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_head (&p, 8, SB_CMD_REPLY);
    s_pack_str (&p.pk, "c6");
    msgpack_pack_uint32 (&p.pk, SB_STATUS_LIMITED);
    msgpack_pack_uint32 (&p.pk, 0);
    s_pack_str (&p.pk, "rate");
    s_pack_str (&p.pk, "free");
    msgpack_pack_int64 (&p.pk, -1);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);

    //  The encoder refuses the same values
    assert_int_equal (sb_msg_set_reply (&in, "c7", SB_STATUS_LIMITED, NULL), 0);
    in.quota.limit = SB_MAX_QUOTA_VALUE + 1;
    assert_null (sb_msg_encode (&in));
    in.quota.limit = 0;
    in.quota.remaining = SB_MAX_QUOTA_VALUE + 1;
    assert_null (sb_msg_encode (&in));
    in.quota.remaining = 0;
    memcpy (in.quota.reason, "a b", 4);
    assert_null (sb_msg_encode (&in));
    in.quota.reason [0] = 0;
    memcpy (in.quota.scope, "\x01", 2);
    assert_null (sb_msg_encode (&in));
    in.quota.scope [0] = 0;
    zmsg = sb_msg_encode (&in);
    assert_non_null (zmsg);
    zmsg_destroy (&zmsg);
    sb_msg_reset (&in);
    sb_msg_reset (&out);
}

//  LIMITS, USAGE and USAGE_ACK: round trips, builders, bounds, frames.
static void
test_quota_commands (void **state)
{
    sb_msg_t in = { 0 }, out = { 0 };
    zframe_t *body = zframe_new ("\x90", 1);
    assert_int_equal (sb_msg_set_limits (&in, 42, SB_SNAPSHOT_LAST, &body), 0);
    assert_null (body);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_LIMITS);
    assert_true (out.seq == 42);
    assert_int_equal (out.snapshot, SB_SNAPSHOT_LAST);
    assert_int_equal (zframe_size (out.payload), 1);
    assert_string_equal (sb_cmd_name (SB_CMD_LIMITS), "limits");
    sb_msg_reset (&out);

    assert_int_equal (sb_msg_set_usage (&in, SB_MAX_QUOTA_VALUE, 1, "b-0123abcd", NULL), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_USAGE);
    assert_true (out.seq == SB_MAX_QUOTA_VALUE);
    assert_int_equal (out.want, 1);
    assert_string_equal (out.broker_id, "b-0123abcd");
    assert_non_null (out.payload);               //  no entries: an empty frame
    assert_int_equal (zframe_size (out.payload), 0);
    assert_string_equal (sb_cmd_name (SB_CMD_USAGE), "usage");
    sb_msg_reset (&out);

    assert_int_equal (sb_msg_set_usage_ack (&in, 7), 0);
    assert_int_equal (s_round_trip (&in, &out), SB_MSG_OK);
    assert_int_equal (out.command, SB_CMD_USAGE_ACK);
    assert_true (out.seq == 7);
    assert_null (out.payload);
    assert_string_equal (sb_cmd_name (SB_CMD_USAGE_ACK), "usage_ack");
    sb_msg_reset (&out);

    //  Builders refuse values out of bounds (and the result cannot be encoded)
    assert_int_equal (sb_msg_set_limits (&in, 0, 0, NULL), -1);
    assert_null (sb_msg_encode (&in));
    assert_int_equal (sb_msg_set_limits (&in, SB_MAX_QUOTA_VALUE + 1, 0, NULL), -1);
    assert_null (sb_msg_encode (&in));
    body = zframe_new ("x", 1);
    assert_int_equal (sb_msg_set_limits (&in, 1, SB_SNAPSHOT_LAST + 1, &body), -1);
    assert_null (body);         //  taken even then; sb_msg_reset frees it
    assert_null (sb_msg_encode (&in));
    assert_int_equal (sb_msg_set_usage (&in, 1, 2, "b1", NULL), -1);
    assert_null (sb_msg_encode (&in));
    assert_int_equal (sb_msg_set_usage (&in, 0, 0, "b1", NULL), -1);
    assert_int_equal (sb_msg_set_usage (&in, 1, 0, "", NULL), -1);
    assert_int_equal (sb_msg_set_usage (&in, 1, 0, NULL, NULL), -1);
    assert_int_equal (sb_msg_set_usage (&in, 1, 0, "b 1", NULL), -1);
    char id [SB_MAX_BROKER_ID_LEN + 2];
    s_fill (id, 'b', SB_MAX_BROKER_ID_LEN);
    assert_int_equal (sb_msg_set_usage (&in, 1, 0, id, NULL), 0);
    id [SB_MAX_BROKER_ID_LEN] = 'b';
    id [SB_MAX_BROKER_ID_LEN + 1] = 0;
    assert_int_equal (sb_msg_set_usage (&in, 1, 0, id, NULL), -1);
    assert_int_equal (sb_msg_set_usage_ack (&in, 0), -1);
    assert_null (sb_msg_encode (&in));
    assert_int_equal (sb_msg_set_usage_ack (&in, SB_MAX_QUOTA_VALUE + 1), -1);
    sb_msg_reset (&in);

    //  On the wire: seq 0, over 2^53, negative; snapshot 3; want 2; a
    //  missing broker_id; ill-typed fields
    s_pack_t p;
    uint64_t bad_seqs [] = { 0, SB_MAX_QUOTA_VALUE + 1 };
    for (size_t i = 0; i < 2; i++) {
        s_pack_head (&p, 3, SB_CMD_USAGE_ACK);
        msgpack_pack_uint64 (&p.pk, bad_seqs [i]);
        assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    }
    s_pack_head (&p, 3, SB_CMD_USAGE_ACK);
    msgpack_pack_int32 (&p.pk, -3);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_head (&p, 4, SB_CMD_LIMITS);
    msgpack_pack_uint32 (&p.pk, 1);
    msgpack_pack_uint32 (&p.pk, 3);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);
    s_pack_head (&p, 3, SB_CMD_LIMITS);
    msgpack_pack_uint32 (&p.pk, 1);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);      //  no snapshot
    s_pack_head (&p, 5, SB_CMD_USAGE);
    msgpack_pack_uint32 (&p.pk, 1);
    msgpack_pack_uint32 (&p.pk, 2);
    s_pack_str (&p.pk, "b1");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);      //  want 2
    s_pack_head (&p, 4, SB_CMD_USAGE);
    msgpack_pack_uint32 (&p.pk, 1);
    msgpack_pack_uint32 (&p.pk, 0);
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);      //  no broker_id
    s_pack_head (&p, 5, SB_CMD_USAGE);
    msgpack_pack_uint32 (&p.pk, 1);
    msgpack_pack_uint32 (&p.pk, 0);
    s_pack_str (&p.pk, "");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);      //  empty broker_id
    s_pack_head (&p, 5, SB_CMD_USAGE);
    s_pack_str (&p.pk, "1");
    msgpack_pack_uint32 (&p.pk, 0);
    s_pack_str (&p.pk, "b1");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_MALFORMED);      //  a string seq
    //  [1, 15, 9, "newer"]: a newer peer's extra field is fine
    s_pack_head (&p, 4, SB_CMD_USAGE_ACK);
    msgpack_pack_uint32 (&p.pk, 9);
    s_pack_str (&p.pk, "newer");
    assert_int_equal (s_decode_packed (&p, &out), SB_MSG_OK);
    assert_true (out.seq == 9);

    //  Frames: LIMITS and USAGE need their payload frame, USAGE_ACK has none
    assert_int_equal (sb_msg_set_limits (&in, 1, 0, NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&in);
    assert_int_equal (zmsg_size (zmsg), 2);
    zframe_t *payload = zmsg_last (zmsg);
    zmsg_remove (zmsg, payload);
    zframe_destroy (&payload);
    assert_int_equal (sb_msg_decode (&zmsg, &out), SB_MSG_MALFORMED);
    assert_int_equal (sb_msg_set_usage_ack (&in, 1), 0);
    zmsg = sb_msg_encode (&in);
    assert_int_equal (zmsg_size (zmsg), 1);
    zmsg_addstr (zmsg, "extra");
    assert_int_equal (sb_msg_decode (&zmsg, &out), SB_MSG_MALFORMED);
    sb_msg_reset (&in);
    sb_msg_reset (&out);
}

static void
test_frame_counts (void **state)
{
    sb_msg_t msg = { 0 };
    //  A REPLY without its payload frame is malformed.
    assert_int_equal (sb_msg_set_reply (&msg, "c1", SB_STATUS_OK, NULL), 0);
    zmsg_t *zmsg = sb_msg_encode (&msg);
    zframe_t *payload = zmsg_last (zmsg);
    zmsg_remove (zmsg, payload);
    zframe_destroy (&payload);
    assert_int_equal (sb_msg_decode (&zmsg, &msg), SB_MSG_MALFORMED);
    assert_null (zmsg);

    //  A HEARTBEAT with an extra frame is malformed.
    sb_msg_set_heartbeat (&msg);
    zmsg = sb_msg_encode (&msg);
    zmsg_addstr (zmsg, "extra");
    assert_int_equal (sb_msg_decode (&zmsg, &msg), SB_MSG_MALFORMED);

    //  Three frames, no frames.
    zmsg = zmsg_new ();
    assert_int_equal (sb_msg_decode (&zmsg, &msg), SB_MSG_MALFORMED);
    zmsg = zmsg_new ();
    zmsg_addstr (zmsg, "a");
    zmsg_addstr (zmsg, "b");
    zmsg_addstr (zmsg, "c");
    assert_int_equal (sb_msg_decode (&zmsg, &msg), SB_MSG_MALFORMED);
    sb_msg_reset (&msg);
}

static void
test_sockets (void **state)
{
    zsock_t *router = zsock_new_router ("inproc://proto-test");
    zsock_t *dealer = zsock_new_dealer (">inproc://proto-test");
    assert_non_null (router);
    assert_non_null (dealer);

    sb_msg_t msg = { 0 };
    zframe_t *routing_id = NULL;
    assert_int_equal (sb_msg_recv (router, &msg, &routing_id), SB_MSG_NONE);

    zframe_t *payload = zframe_new ("job-body", 8);
    assert_int_equal (sb_msg_set_request (&msg, "abc", "api", "t1", 1000, 0, &payload), 0);
    assert_int_equal (sb_msg_send (dealer, &msg, NULL), 0);

    zpoller_t *poller = zpoller_new (router, NULL);
    assert_ptr_equal (zpoller_wait (poller, 2000), router);
    assert_int_equal (sb_msg_recv (router, &msg, &routing_id), SB_MSG_OK);
    assert_non_null (routing_id);
    assert_int_equal (msg.command, SB_CMD_REQUEST);
    assert_memory_equal (zframe_data (msg.payload), "job-body", 8);

    //  Answer through the ROUTER to that routing ID.
    zframe_t *answer = zframe_new ("done", 4);
    assert_int_equal (sb_msg_set_reply (&msg, "abc", SB_STATUS_OK, &answer), 0);
    assert_int_equal (sb_msg_send (router, &msg, routing_id), 0);
    zpoller_destroy (&poller);
    poller = zpoller_new (dealer, NULL);
    assert_ptr_equal (zpoller_wait (poller, 2000), dealer);
    assert_int_equal (sb_msg_recv (dealer, &msg, NULL), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_memory_equal (zframe_data (msg.payload), "done", 4);

    //  Garbage is dropped whole: the next message still decodes.
    zstr_sendm (dealer, "garbage");
    zstr_send (dealer, "more garbage");
    sb_msg_set_heartbeat (&msg);
    assert_int_equal (sb_msg_send (dealer, &msg, NULL), 0);
    zpoller_destroy (&poller);
    poller = zpoller_new (router, NULL);
    zframe_destroy (&routing_id);
    assert_ptr_equal (zpoller_wait (poller, 2000), router);
    assert_int_equal (sb_msg_recv (router, &msg, &routing_id), SB_MSG_MALFORMED);
    zframe_destroy (&routing_id);
    assert_int_equal (sb_msg_recv (router, &msg, &routing_id), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_HEARTBEAT);

    zframe_destroy (&routing_id);
    sb_msg_reset (&msg);
    zpoller_destroy (&poller);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

static void
test_names_and_ids (void **state)
{
    assert_string_equal (sb_cmd_name (SB_CMD_JOB), "job");
    assert_string_equal (sb_cmd_name ((sb_cmd_t) 77), "unknown");
    assert_string_equal (sb_status_name (SB_STATUS_WORKER_LOST), "worker_lost");
    assert_string_equal (sb_status_name ((sb_status_t) 99), "unknown");
    char a [33], b [33];
    sb_msg_new_corr_id (a);
    sb_msg_new_corr_id (b);
    assert_int_equal (strlen (a), 32);
    assert_string_not_equal (a, b);
    //  Across several refills of the random pool: all hex, all different.
    enum { IDS = 100 };
    char ids [IDS][33];
    for (int i = 0; i < IDS; i++) {
        sb_msg_new_corr_id (ids [i]);
        assert_int_equal (strspn (ids [i], "0123456789abcdef"), 32);
        for (int j = 0; j < i; j++)
            assert_string_not_equal (ids [i], ids [j]);
    }
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_request_round_trip),
        cmocka_unit_test (test_every_command_round_trips),
        cmocka_unit_test (test_call_messages_round_trip),
        cmocka_unit_test (test_broadcast),
        cmocka_unit_test (test_publish),
        cmocka_unit_test (test_builders_refuse_bad_fields),
        cmocka_unit_test (test_malformed_headers),
        cmocka_unit_test (test_reply_retry_after),
        cmocka_unit_test (test_request_parent),
        cmocka_unit_test (test_request_metering),
        cmocka_unit_test (test_reply_quota),
        cmocka_unit_test (test_quota_commands),
        cmocka_unit_test (test_frame_counts),
        cmocka_unit_test (test_sockets),
        cmocka_unit_test (test_names_and_ids),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
