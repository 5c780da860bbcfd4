/*  tests/11_proto_job.c — unit tests of the job / result payload codec. */
#include "proto/sb_job.h"
#include "proto/sb_msgpack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <msgpack.h>

static void
test_job_round_trip (void **state)
{
    sb_job_t in = { .op = "tools/call", .connector = "sandbox-crm",
                    .tool = "search_accounts", .args = "{\"query\":\"acme\"}" };
    zframe_t *frame = sb_job_encode (&in);
    assert_non_null (frame);
    sb_job_t out = { 0 };
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_string_equal (out.op, "tools/call");
    assert_string_equal (out.connector, "sandbox-crm");
    assert_string_equal (out.tool, "search_accounts");
    assert_string_equal (out.args, "{\"query\":\"acme\"}");
    sb_job_clear (&out);
    assert_null (out.op);
    zframe_destroy (&frame);

    //  Only op is required.
    sb_job_t ping = { .op = "ping" };
    frame = sb_job_encode (&ping);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_string_equal (out.op, "ping");
    assert_null (out.tool);
    sb_job_clear (&out);
    zframe_destroy (&frame);

    sb_job_t no_op = { .tool = "x" };
    assert_null (sb_job_encode (&no_op));
}

static void
test_result_round_trip (void **state)
{
    zframe_t *frame = sb_job_result_encode ("{\"isError\":false}");
    sb_job_result_t result = { 0 };
    assert_int_equal (sb_job_result_decode (zframe_data (frame), zframe_size (frame), &result), 0);
    assert_string_equal (result.result, "{\"isError\":false}");
    sb_job_result_clear (&result);
    zframe_destroy (&frame);
    assert_null (sb_job_result_encode (NULL));
}

static int
s_decode_map (void (*fill) (msgpack_packer *), sb_job_t *job)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    fill (&pk);
    int rc = sb_job_decode ((const uint8_t *) sbuf.data, sbuf.size, job);
    msgpack_sbuffer_destroy (&sbuf);
    return rc;
}

static void
s_kv (msgpack_packer *pk, const char *k, const char *v, size_t vlen)
{
    msgpack_pack_str (pk, strlen (k));
    msgpack_pack_str_body (pk, k, strlen (k));
    msgpack_pack_str (pk, vlen);
    msgpack_pack_str_body (pk, v, vlen);
}

static void s_fill_op_int (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    msgpack_pack_str (pk, 2);
    msgpack_pack_str_body (pk, "op", 2);
    msgpack_pack_int (pk, 5);
}
static void s_fill_nul (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_kv (pk, "op", "pi\0ng", 5);
}
static void s_fill_long_tool (msgpack_packer *pk)
{
    char name [SB_MAX_NAME_LEN + 1];
    memset (name, 'n', sizeof name);
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "tools/call", 10);
    s_kv (pk, "tool", name, sizeof name);
}
static void s_fill_unknown (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "ping", 4);
    msgpack_pack_str (pk, 6);
    msgpack_pack_str_body (pk, "future", 6);
    msgpack_pack_array (pk, 0);
}
static void s_fill_array (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 1);
    msgpack_pack_int (pk, 1);
}
static void s_fill_version_zero (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "ping", 4);
    msgpack_pack_str (pk, 1);
    msgpack_pack_str_body (pk, "v", 1);
    msgpack_pack_int (pk, 0);
}

static void
test_job_malformed (void **state)
{
    sb_job_t job = { 0 };
    assert_int_equal (s_decode_map (s_fill_op_int, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_nul, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_long_tool, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_array, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_version_zero, &job), SB_MSG_MALFORMED);
    assert_null (job.op);
    //  Unknown keys are skipped.
    assert_int_equal (s_decode_map (s_fill_unknown, &job), 0);
    assert_string_equal (job.op, "ping");
    sb_job_clear (&job);
    assert_int_equal (sb_job_decode ((const uint8_t *) "\x81", 1, &job), SB_MSG_MALFORMED);
    assert_int_equal (sb_job_decode (NULL, 0, &job), SB_MSG_MALFORMED);
}

static void
test_msgpack_bounds (void **state)
{
    //  Declared counts larger than the bytes left are refused before any
    //  allocation (these once cost 16 GB and 128 GB in msgpack-c).
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\xdf\x61\x6c\x73\x65", 5), -1);
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\x82\xdd\x22\x3a\x7b\x7d\x7d\xff\x06", 9), -1);
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\xdd\xff\xff\xff\xff", 5), -1);
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\xdb\xff\xff\xff\xff" "ab", 7), -1);
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\xc1", 1), -1);       //  reserved byte
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\x92\x01", 2), -1);  //  truncated
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\x01\x02", 2), -1);  //  trailing
    assert_int_equal (sb_msgpack_check (NULL, 0), -1);
    //  Everything the encoders write passes.
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\x92\x01\x06", 3), 0);
    sb_job_t job = { .op = "tools/call", .tool = "t", .args = "{}" };
    zframe_t *frame = sb_job_encode (&job);
    assert_int_equal (sb_msgpack_check (zframe_data (frame), zframe_size (frame)), 0);
    zframe_destroy (&frame);
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18", 9), 0);
    assert_int_equal (sb_msgpack_check ((const uint8_t *) "\xd4\x01\x02", 3), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_job_round_trip),
        cmocka_unit_test (test_result_round_trip),
        cmocka_unit_test (test_job_malformed),
        cmocka_unit_test (test_msgpack_bounds),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
