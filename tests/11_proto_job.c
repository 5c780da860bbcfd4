/*  tests/11_proto_job.c — unit tests of the job / result payload codec. */
#include "sb_job.h"
#include "sb_attr.h"
#include "sb_msgpack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

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

    //  Every msgpack string header size, up to the largest result allowed;
    //  the frame is exactly as long as the map it holds.
    const size_t sizes [] = { 0, 31, 32, 255, 256, 65535, 65536, SB_MAX_JSON_SIZE };
    char *text = malloc (SB_MAX_JSON_SIZE + 2);
    assert_non_null (text);
    memset (text, 'x', SB_MAX_JSON_SIZE + 1);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        text [sizes [i]] = 0;
        frame = sb_job_result_encode (text);
        assert_non_null (frame);
        assert_true (zframe_size (frame) > sizes [i] && zframe_size (frame) <= sizes [i] + 16);
        assert_int_equal (sb_job_result_decode (zframe_data (frame), zframe_size (frame), &result), 0);
        assert_int_equal (strlen (result.result), sizes [i]);
        assert_memory_equal (result.result, text, sizes [i]);
        sb_job_result_clear (&result);
        zframe_destroy (&frame);
        text [sizes [i]] = 'x';
    }
    text [SB_MAX_JSON_SIZE + 1] = 0;
    assert_null (sb_job_result_encode (text));          //  one byte too many
    free (text);
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

//  MCP 2026-07-28 calls: the client's answers, its capabilities, the round.
static void
test_job_inputs (void **state)
{
    sb_job_t in = { .op = "tools/call", .tool = "t", .args = "{}",
                    .inputs = "{\"user_name\":{\"action\":\"accept\"}}",
                    .caps = SB_JOB_CAP_SAMPLING | SB_JOB_CAP_ROOTS, .round = 3 };
    zframe_t *frame = sb_job_encode (&in);
    assert_non_null (frame);
    sb_job_t out = { 0 };
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_string_equal (out.inputs, in.inputs);
    assert_int_equal (out.caps, SB_JOB_CAP_SAMPLING | SB_JOB_CAP_ROOTS);
    assert_int_equal (out.round, 3);
    sb_job_clear (&out);
    assert_null (out.inputs);
    zframe_destroy (&frame);

    //  Round 0 goes out as 1; without inputs neither caps nor round is written.
    in.round = 0;
    frame = sb_job_encode (&in);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_int_equal (out.round, 1);
    sb_job_clear (&out);
    zframe_destroy (&frame);
    sb_job_t plain = { .op = "tools/call", .caps = 7, .round = 2 };
    frame = sb_job_encode (&plain);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_null (out.inputs);
    assert_int_equal (out.caps, 0);
    assert_int_equal (out.round, 0);
    sb_job_clear (&out);
    zframe_destroy (&frame);

    //  Too many rounds; args and inputs that fit alone but not together.
    in.round = SB_MAX_INPUT_ROUNDS + 1;
    assert_null (sb_job_encode (&in));
    char *big = malloc (SB_MAX_JSON_SIZE + 1);
    memset (big, 'x', SB_MAX_JSON_SIZE);
    big [SB_MAX_JSON_SIZE] = 0;
    sb_job_t both = { .op = "tools/call", .args = big, .inputs = big, .round = 1 };
    assert_null (sb_job_encode (&both));
    free (big);
}

static void s_fill_round (msgpack_packer *pk, int64_t round)
{
    msgpack_pack_map (pk, 3);
    s_kv (pk, "op", "tools/call", 10);
    s_kv (pk, "inputs", "{}", 2);
    msgpack_pack_str (pk, 5);
    msgpack_pack_str_body (pk, "round", 5);
    msgpack_pack_int64 (pk, round);
}
static void s_fill_round_zero (msgpack_packer *pk) { s_fill_round (pk, 0); }
static void s_fill_round_high (msgpack_packer *pk) { s_fill_round (pk, SB_MAX_INPUT_ROUNDS + 1); }
static void s_fill_round_negative (msgpack_packer *pk) { s_fill_round (pk, -1); }
static void s_fill_round_absent (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "tools/call", 10);
    s_kv (pk, "inputs", "{}", 2);
}
static void s_fill_caps_big (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "tools/call", 10);
    msgpack_pack_str (pk, 4);
    msgpack_pack_str_body (pk, "caps", 4);
    msgpack_pack_uint64 (pk, (uint64_t) UINT32_MAX + 1);
}
static void s_fill_caps_text (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "tools/call", 10);
    s_kv (pk, "caps", "1", 1);
}
static void s_fill_inputs_int (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "tools/call", 10);
    msgpack_pack_str (pk, 6);
    msgpack_pack_str_body (pk, "inputs", 6);
    msgpack_pack_int (pk, 1);
}

static void
test_job_inputs_malformed (void **state)
{
    sb_job_t job = { 0 };
    assert_int_equal (s_decode_map (s_fill_round_zero, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_round_high, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_round_negative, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_caps_big, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_caps_text, &job), SB_MSG_MALFORMED);
    assert_int_equal (s_decode_map (s_fill_inputs_int, &job), SB_MSG_MALFORMED);
    assert_null (job.op);
    assert_null (job.inputs);
    //  Inputs without a round: the first round.
    assert_int_equal (s_decode_map (s_fill_round_absent, &job), 0);
    assert_string_equal (job.inputs, "{}");
    assert_int_equal (job.round, 1);
    sb_job_clear (&job);
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

//  The task store's fields: task id, subject, data.
static void
test_job_task_fields (void **state)
{
    sb_job_t in = { .op = "task/create", .task = "AbC-_09xyz", .subject = "user@example.com",
                    .connector = "sandbox-crm", .tool = "create_task", .args = "{}",
                    .data = "{\"ttlMs\":60000,\"pollIntervalMs\":1000,\"runMs\":30000}" };
    zframe_t *frame = sb_job_encode (&in);
    assert_non_null (frame);
    sb_job_t out = { 0 };
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_string_equal (out.op, "task/create");
    assert_string_equal (out.task, in.task);
    assert_string_equal (out.subject, in.subject);
    assert_string_equal (out.data, in.data);
    assert_string_equal (out.tool, "create_task");
    assert_null (out.inputs);
    sb_job_clear (&out);
    assert_null (out.task);
    assert_null (out.subject);
    assert_null (out.data);
    zframe_destroy (&frame);

    //  With a task, caps and round travel without inputs (task/create of a
    //  call whose client has answered nothing yet).
    in.caps = SB_JOB_CAP_ELICITATION;
    in.round = 2;
    frame = sb_job_encode (&in);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_int_equal (out.caps, SB_JOB_CAP_ELICITATION);
    assert_int_equal (out.round, 2);
    assert_null (out.inputs);
    sb_job_clear (&out);
    zframe_destroy (&frame);
    in.round = SB_MAX_INPUT_ROUNDS + 1;
    assert_null (sb_job_encode (&in));

    //  An empty subject is a subject; absent fields stay NULL.
    sb_job_t get = { .op = "task/get", .task = "t1", .subject = "" };
    frame = sb_job_encode (&get);
    assert_non_null (frame);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_string_equal (out.subject, "");
    assert_null (out.data);
    sb_job_clear (&out);
    zframe_destroy (&frame);

    //  Every limit, at its edge and one past it.
    char id [SB_MAX_TASK_ID_LEN + 2];
    memset (id, '~', sizeof id - 1);
    id [SB_MAX_TASK_ID_LEN] = 0;
    sb_job_t edge = { .op = "task/get", .task = id };
    frame = sb_job_encode (&edge);
    assert_non_null (frame);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_int_equal (strlen (out.task), SB_MAX_TASK_ID_LEN);
    sb_job_clear (&out);
    zframe_destroy (&frame);
    id [SB_MAX_TASK_ID_LEN] = '~';
    id [SB_MAX_TASK_ID_LEN + 1] = 0;
    assert_null (sb_job_encode (&edge));
    const char *bad_ids [] = { "", "a b", "tab\there", "caf\xc3\xa9", "del\x7f", NULL };
    for (int i = 0; bad_ids [i]; i++) {
        edge.task = sb_unconst (bad_ids [i]);
        assert_null (sb_job_encode (&edge));
    }
    char subject [SB_MAX_SUBJECT_LEN + 2];
    memset (subject, 's', sizeof subject - 1);
    subject [SB_MAX_SUBJECT_LEN + 1] = 0;
    sb_job_t long_subject = { .op = "task/get", .task = "t", .subject = subject };
    assert_null (sb_job_encode (&long_subject));
    subject [SB_MAX_SUBJECT_LEN] = 0;
    frame = sb_job_encode (&long_subject);
    assert_non_null (frame);
    zframe_destroy (&frame);
    char *big = malloc (SB_MAX_JSON_SIZE + 2);
    assert_non_null (big);
    memset (big, 'x', SB_MAX_JSON_SIZE + 1);
    big [SB_MAX_JSON_SIZE + 1] = 0;
    sb_job_t big_data = { .op = "task/finish", .task = "t", .data = big };
    assert_null (sb_job_encode (&big_data));
    free (big);
}

static void s_fill_task (msgpack_packer *pk, const char *key, const char *value, size_t len)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "task/get", 8);
    s_kv (pk, key, value, len);
}
static void s_fill_task_int (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "task/get", 8);
    msgpack_pack_str (pk, 4);
    msgpack_pack_str_body (pk, "task", 4);
    msgpack_pack_int (pk, 7);
}
static void s_fill_subject_nil (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "task/get", 8);
    msgpack_pack_str (pk, 7);
    msgpack_pack_str_body (pk, "subject", 7);
    msgpack_pack_nil (pk);
}
static void s_fill_data_map (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "task/finish", 11);
    msgpack_pack_str (pk, 4);
    msgpack_pack_str_body (pk, "data", 4);
    msgpack_pack_map (pk, 0);
}
static void s_fill_task_empty (msgpack_packer *pk) { s_fill_task (pk, "task", "", 0); }
static void s_fill_task_space (msgpack_packer *pk) { s_fill_task (pk, "task", "a b", 3); }
static void s_fill_task_nul (msgpack_packer *pk) { s_fill_task (pk, "task", "a\0b", 3); }
static void s_fill_task_high (msgpack_packer *pk) { s_fill_task (pk, "task", "\xc3\xa9", 2); }
static void s_fill_task_long (msgpack_packer *pk)
{
    char id [SB_MAX_TASK_ID_LEN + 1];
    memset (id, 'i', sizeof id);
    s_fill_task (pk, "task", id, sizeof id);
}
static void s_fill_subject_long (msgpack_packer *pk)
{
    char subject [SB_MAX_SUBJECT_LEN + 1];
    memset (subject, 's', sizeof subject);
    s_fill_task (pk, "subject", subject, sizeof subject);
}
static void s_fill_subject_nul (msgpack_packer *pk) { s_fill_task (pk, "subject", "u\0v", 3); }
static void s_fill_data_nul (msgpack_packer *pk) { s_fill_task (pk, "data", "{\"a\":\0}", 7); }
static void s_fill_data_long (msgpack_packer *pk)
{
    char *big = malloc (SB_MAX_JSON_SIZE + 1);
    memset (big, ' ', SB_MAX_JSON_SIZE + 1);
    s_fill_task (pk, "data", big, SB_MAX_JSON_SIZE + 1);
    free (big);
}

static void
test_job_task_malformed (void **state)
{
    void (*fills []) (msgpack_packer *) = {
        s_fill_task_int, s_fill_subject_nil, s_fill_data_map, s_fill_task_empty, s_fill_task_space,
        s_fill_task_nul, s_fill_task_high, s_fill_task_long, s_fill_subject_long,
        s_fill_subject_nul, s_fill_data_nul, s_fill_data_long,
    };
    for (size_t i = 0; i < sizeof fills / sizeof fills [0]; i++) {
        sb_job_t job = { 0 };
        if (s_decode_map (fills [i], &job) != SB_MSG_MALFORMED)
            fail_msg ("fill %zu was not refused", i);
        assert_null (job.op);
        assert_null (job.task);
        assert_null (job.subject);
        assert_null (job.data);
    }
    //  The longest of each is accepted.
    sb_job_t job = { 0 };
    char id [SB_MAX_TASK_ID_LEN + 1];
    memset (id, '!', SB_MAX_TASK_ID_LEN);
    id [SB_MAX_TASK_ID_LEN] = 0;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    char subject [SB_MAX_SUBJECT_LEN];
    memset (subject, 's', sizeof subject);
    msgpack_pack_map (&pk, 3);
    s_kv (&pk, "op", "task/get", 8);
    s_kv (&pk, "task", id, SB_MAX_TASK_ID_LEN);
    s_kv (&pk, "subject", subject, sizeof subject);
    assert_int_equal (sb_job_decode ((const uint8_t *) sbuf.data, sbuf.size, &job), 0);
    msgpack_sbuffer_destroy (&sbuf);
    assert_string_equal (job.task, id);
    assert_int_equal (strlen (job.subject), SB_MAX_SUBJECT_LEN);
    sb_job_clear (&job);
}

//  The webhook job's raw body (PROTOCOL.md "Webhooks"): msgpack bin, any
//  bytes, at most SB_MAX_JOB_BODY.
static void
s_pack_body (msgpack_packer *pk, const uint8_t *bytes, size_t len)
{
    msgpack_pack_str (pk, 4);
    msgpack_pack_str_body (pk, "body", 4);
    msgpack_pack_bin (pk, len);
    msgpack_pack_bin_body (pk, bytes, len);
}
static void s_fill_body_str (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "webhook/receive", 15);
    s_kv (pk, "body", "{\"id\":1}", 8);            //  text, not bin
}
static void s_fill_body_nil (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "webhook/receive", 15);
    msgpack_pack_str (pk, 4);
    msgpack_pack_str_body (pk, "body", 4);
    msgpack_pack_nil (pk);
}
static void s_fill_body_long (msgpack_packer *pk)
{
    uint8_t *big = calloc (1, SB_MAX_JOB_BODY + 1);
    assert_non_null (big);
    msgpack_pack_map (pk, 2);
    s_kv (pk, "op", "webhook/receive", 15);
    s_pack_body (pk, big, SB_MAX_JOB_BODY + 1);
    free (big);
}
static void s_fill_body_no_op (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_pack_body (pk, (const uint8_t *) "x", 1);
}
static void s_fill_body_twice (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 3);
    s_kv (pk, "op", "webhook/receive", 15);
    s_pack_body (pk, (const uint8_t *) "first", 5);
    s_pack_body (pk, (const uint8_t *) "2nd", 3);
}

static void
test_job_body (void **state)
{
    //  Every byte value, NUL included, comes back as it went.
    uint8_t bytes [512];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes [i] = (uint8_t) (i % 256);
    sb_job_t in = { .op = "webhook/receive", .data = "{\"endpoint\":\"we_x\"}",
                    .body = bytes, .body_len = sizeof bytes };
    zframe_t *frame = sb_job_encode (&in);
    assert_non_null (frame);
    sb_job_t out = { 0 };
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_string_equal (out.op, "webhook/receive");
    assert_string_equal (out.data, "{\"endpoint\":\"we_x\"}");
    assert_non_null (out.body);
    assert_int_equal (out.body_len, sizeof bytes);
    assert_memory_equal (out.body, bytes, sizeof bytes);
    assert_ptr_not_equal (out.body, bytes);             //  an owned copy
    sb_job_clear (&out);
    assert_null (out.body);
    assert_int_equal (out.body_len, 0);
    zframe_destroy (&frame);

    //  On the wire it is a bin (0xc4 bin8 … 0xc6 bin32), never a str: the
    //  encoded map holds "body" followed by a bin header.
    in.body_len = 300;                                  //  bin16
    frame = sb_job_encode (&in);
    assert_non_null (frame);
    const uint8_t *wire = zframe_data (frame);
    size_t size = zframe_size (frame);
    bool found = false;
    for (size_t i = 0; i + 8 <= size; i++)
        if (memcmp (wire + i, "\xa4" "body" "\xc5\x01\x2c", 8) == 0)
            found = true;
    assert_true (found);
    zframe_destroy (&frame);

    //  Absent: NULL and 0. Present but empty: not NULL, length 0.
    sb_job_t none = { .op = "webhook/receive" };
    frame = sb_job_encode (&none);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_null (out.body);
    assert_int_equal (out.body_len, 0);
    sb_job_clear (&out);
    zframe_destroy (&frame);
    sb_job_t empty = { .op = "webhook/receive", .body = (uint8_t *) "", .body_len = 0 };
    frame = sb_job_encode (&empty);
    assert_non_null (frame);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_non_null (out.body);
    assert_int_equal (out.body_len, 0);
    sb_job_clear (&out);
    zframe_destroy (&frame);

    //  The largest body round-trips (every byte value, repeated); one byte
    //  more cannot be encoded; a length without a body is a caller bug.
    uint8_t *big = malloc (SB_MAX_JOB_BODY + 1);
    assert_non_null (big);
    for (size_t i = 0; i < SB_MAX_JOB_BODY + 1; i++)
        big [i] = (uint8_t) (i * 7 + 3);
    sb_job_t large = { .op = "webhook/receive", .body = big, .body_len = SB_MAX_JOB_BODY };
    frame = sb_job_encode (&large);
    assert_non_null (frame);
    assert_int_equal (sb_job_decode (zframe_data (frame), zframe_size (frame), &out), 0);
    assert_int_equal (out.body_len, SB_MAX_JOB_BODY);
    assert_memory_equal (out.body, big, SB_MAX_JOB_BODY);
    sb_job_clear (&out);
    zframe_destroy (&frame);
    large.body_len = SB_MAX_JOB_BODY + 1;
    assert_null (sb_job_encode (&large));
    free (big);
    sb_job_t len_only = { .op = "webhook/receive", .body_len = 3 };
    assert_null (sb_job_encode (&len_only));

    //  A repeated key: the last one wins (and the first is freed).
    assert_int_equal (s_decode_map (s_fill_body_twice, &out), 0);
    assert_int_equal (out.body_len, 3);
    assert_memory_equal (out.body, "2nd", 3);
    sb_job_clear (&out);

    //  A str instead of a bin, nil, one byte over the limit, or no op:
    //  malformed, and the job is left cleared.
    void (*fills []) (msgpack_packer *) = {
        s_fill_body_str, s_fill_body_nil, s_fill_body_long, s_fill_body_no_op,
    };
    for (size_t i = 0; i < sizeof fills / sizeof fills [0]; i++) {
        sb_job_t job = { 0 };
        if (s_decode_map (fills [i], &job) != SB_MSG_MALFORMED)
            fail_msg ("body fill %zu was not refused", i);
        assert_null (job.op);
        assert_null (job.body);
        assert_int_equal (job.body_len, 0);
    }
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
        cmocka_unit_test (test_job_inputs),
        cmocka_unit_test (test_job_inputs_malformed),
        cmocka_unit_test (test_job_task_fields),
        cmocka_unit_test (test_job_task_malformed),
        cmocka_unit_test (test_job_body),
        cmocka_unit_test (test_msgpack_bounds),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
