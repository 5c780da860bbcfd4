/*  proto/sb_job.c — job and result payload codec (msgpack maps).

    Decoding is strict about what it knows (types, lengths, no NUL bytes in
    text) and lenient about what it does not (unknown keys are skipped), so
    a newer gateway can add a field without breaking older workers.
*/
#include "sb_job.h"
#include "sb_msgpack.h"

#include <msgpack.h>
#include <string.h>

#define S_MAX_KEYS 32   /* most keys a payload map may have */

//  Copies a msgpack string into a new C string. Text must not contain NUL.
static int
s_dup_str (const msgpack_object *o, size_t max, char **out)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
        return -1;
    if (memchr (o->via.str.ptr, 0, o->via.str.size))
        return -1;
    char *text = malloc (o->via.str.size + 1);
    if (!text)
        return -1;
    memcpy (text, o->via.str.ptr, o->via.str.size);
    text [o->via.str.size] = 0;
    free (*out);                //  a repeated key: the last one wins
    *out = text;
    return 0;
}

static bool
s_key_is (const msgpack_object *key, const char *name)
{
    size_t len = strlen (name);
    return key->via.str.size == len && memcmp (key->via.str.ptr, name, len) == 0;
}

static void
s_pack_kv (msgpack_packer *pk, const char *key, const char *value)
{
    size_t klen = strlen (key), vlen = strlen (value);
    msgpack_pack_str (pk, klen);
    msgpack_pack_str_body (pk, key, klen);
    msgpack_pack_str (pk, vlen);
    msgpack_pack_str_body (pk, value, vlen);
}

static zframe_t *
s_frame_from (msgpack_sbuffer *sbuf)
{
    zframe_t *frame = NULL;
    if (sbuf->size <= SB_MAX_PAYLOAD_SIZE)
        frame = zframe_new (sbuf->data, sbuf->size);
    msgpack_sbuffer_destroy (sbuf);
    return frame;
}

//  Unpacks exactly one map from `data`; NULL-safe cleanup by the caller.
static int
s_unpack_map (const uint8_t *data, size_t size, msgpack_unpacked *unpacked)
{
    if (!data || size == 0 || size > SB_MAX_PAYLOAD_SIZE || sb_msgpack_check (data, size))
        return -1;
    size_t offset = 0;
    if (msgpack_unpack_next (unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size
    ||  unpacked->data.type != MSGPACK_OBJECT_MAP
    ||  unpacked->data.via.map.size > S_MAX_KEYS)
        return -1;
    return 0;
}

//  The "v" field: must be a positive integer; a newer version is accepted
//  (fields we know keep their meaning), zero or a wrong type is not.
static int
s_check_version (const msgpack_object *o)
{
    return (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 >= 1) ? 0 : -1;
}

//  A task id: 1..SB_MAX_TASK_ID_LEN bytes, each printable ASCII but space
//  (it goes into logs and JSON as is, and is a primary key).
static bool
s_task_id_valid (const char *task)
{
    return sb_msgpack_ident_valid (task, strlen (task), SB_MAX_TASK_ID_LEN);
}

static void
s_pack_uint (msgpack_packer *pk, const char *key, uint32_t value)
{
    size_t klen = strlen (key);
    msgpack_pack_str (pk, klen);
    msgpack_pack_str_body (pk, key, klen);
    msgpack_pack_uint32 (pk, value);
}

zframe_t *
sb_job_encode (const sb_job_t *job)
{
    if (!job->op || strlen (job->op) > SB_MAX_OP_LEN
    ||  (job->connector && strlen (job->connector) > SB_MAX_NAME_LEN)
    ||  (job->tool && strlen (job->tool) > SB_MAX_NAME_LEN)
    ||  (job->args && strlen (job->args) > SB_MAX_JSON_SIZE)
    ||  (job->inputs && strlen (job->inputs) > SB_MAX_JSON_SIZE)
    ||  ((job->inputs || job->task) && job->round > SB_MAX_INPUT_ROUNDS)
    ||  (job->task && !s_task_id_valid (job->task))
    ||  (job->subject && strlen (job->subject) > SB_MAX_SUBJECT_LEN)
    ||  (job->data && strlen (job->data) > SB_MAX_JSON_SIZE)
    ||  (job->body && job->body_len > SB_MAX_JOB_BODY)
    ||  (!job->body && job->body_len))
        return NULL;

    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    //  caps and round go with inputs, and with a task (task/create keeps
    //  them for the task's later rounds even when no answer came yet).
    bool rounds = job->inputs || job->task;
    size_t keys = 2 + !!job->connector + !!job->tool + !!job->args + !!job->inputs
                + (rounds? 2: 0) + !!job->task + !!job->subject + !!job->data + !!job->body;
    msgpack_pack_map (&pk, keys);
    msgpack_pack_str (&pk, 1);
    msgpack_pack_str_body (&pk, "v", 1);
    msgpack_pack_uint32 (&pk, SB_JOB_VERSION);
    s_pack_kv (&pk, "op", job->op);
    if (job->connector)
        s_pack_kv (&pk, "connector", job->connector);
    if (job->tool)
        s_pack_kv (&pk, "tool", job->tool);
    if (job->args)
        s_pack_kv (&pk, "args", job->args);
    if (job->inputs)
        s_pack_kv (&pk, "inputs", job->inputs);
    if (rounds) {
        s_pack_uint (&pk, "caps", job->caps);
        s_pack_uint (&pk, "round", job->round? job->round: 1);
    }
    if (job->task)
        s_pack_kv (&pk, "task", job->task);
    if (job->subject)
        s_pack_kv (&pk, "subject", job->subject);
    if (job->data)
        s_pack_kv (&pk, "data", job->data);
    if (job->body) {
        msgpack_pack_str (&pk, 4);
        msgpack_pack_str_body (&pk, "body", 4);
        msgpack_pack_bin (&pk, job->body_len);
        msgpack_pack_bin_body (&pk, job->body, job->body_len);
    }
    return s_frame_from (&sbuf);
}

//  One text field a payload map may carry: its key, its longest length,
//  and where the decoded copy goes.
typedef struct {
    const char *key;    /* map key */
    size_t max;         /* longest value, bytes */
    char **dest;        /* owned copy goes here (last one wins on repeats) */
} s_text_field_t;

//  One unsigned integer field: its key, its bounds, where it goes.
typedef struct {
    const char *key;    /* map key */
    uint64_t min, max;  /* accepted values */
    uint32_t *dest;     /* the value goes here */
} s_uint_field_t;

//  One raw bytes field (msgpack bin, never str): its key, its longest
//  length, where the owned copy and its length go.
typedef struct {
    const char *key;    /* map key */
    size_t max;         /* longest value, bytes */
    uint8_t **dest;     /* owned copy goes here (last one wins on repeats) */
    size_t *dest_len;   /* its length */
} s_bin_field_t;

//  Copies a msgpack bin into new memory (any bytes, NUL included). An empty
//  bin is a valid, present value: it gets a 1-byte allocation so that NULL
//  keeps meaning absent.
static int
s_dup_bin (const msgpack_object *o, size_t max, uint8_t **out, size_t *out_len)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > max)
        return -1;
    uint8_t *bytes = malloc (o->via.bin.size? o->via.bin.size: 1);
    if (!bytes)
        return -1;
    if (o->via.bin.size)
        memcpy (bytes, o->via.bin.ptr, o->via.bin.size);
    free (*out);
    *out = bytes;
    *out_len = o->via.bin.size;
    return 0;
}

//  Decodes one payload map: "v" must be a valid version, each known text,
//  integer or bin key is copied to its field, unknown keys are skipped.
//  Returns 0 or -1; on -1 the caller clears what was copied.
static int
s_decode_fields (const uint8_t *data, size_t size, const s_text_field_t *fields, size_t count,
                 const s_uint_field_t *uints, size_t uint_count,
                 const s_bin_field_t *bins, size_t bin_count)
{
    int rc = -1;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    if (s_unpack_map (data, size, &unpacked))
        goto out;
    const msgpack_object_map *map = &unpacked.data.via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr [i].key;
        const msgpack_object *val = &map->ptr [i].val;
        if (key->type != MSGPACK_OBJECT_STR)
            goto out;
        if (s_key_is (key, "v") && s_check_version (val))
            goto out;
        for (size_t f = 0; f < count; f++)
            if (s_key_is (key, fields [f].key) && s_dup_str (val, fields [f].max, fields [f].dest))
                goto out;
        for (size_t f = 0; f < uint_count; f++)
            if (s_key_is (key, uints [f].key)) {
                if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER
                ||  val->via.u64 < uints [f].min || val->via.u64 > uints [f].max)
                    goto out;
                *uints [f].dest = (uint32_t) val->via.u64;
            }
        for (size_t f = 0; f < bin_count; f++)
            if (s_key_is (key, bins [f].key)
            &&  s_dup_bin (val, bins [f].max, bins [f].dest, bins [f].dest_len))
                goto out;
    }
    rc = 0;
out:
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

int
sb_job_decode (const uint8_t *data, size_t size, sb_job_t *job)
{
    sb_job_clear (job);
    const s_text_field_t fields [] = {
        { "op", SB_MAX_OP_LEN, &job->op },
        { "connector", SB_MAX_NAME_LEN, &job->connector },
        { "tool", SB_MAX_NAME_LEN, &job->tool },
        { "args", SB_MAX_JSON_SIZE, &job->args },
        { "inputs", SB_MAX_JSON_SIZE, &job->inputs },
        { "task", SB_MAX_TASK_ID_LEN, &job->task },
        { "subject", SB_MAX_SUBJECT_LEN, &job->subject },
        { "data", SB_MAX_JSON_SIZE, &job->data },
    };
    const s_uint_field_t uints [] = {
        { "caps", 0, UINT32_MAX, &job->caps },
        { "round", 1, SB_MAX_INPUT_ROUNDS, &job->round },
    };
    const s_bin_field_t bins [] = {
        { "body", SB_MAX_JOB_BODY, &job->body, &job->body_len },
    };
    if (s_decode_fields (data, size, fields, sizeof fields / sizeof fields [0],
                         uints, sizeof uints / sizeof uints [0],
                         bins, sizeof bins / sizeof bins [0])
    ||  !job->op || !*job->op
    ||  (job->task && !s_task_id_valid (job->task))) {
        sb_job_clear (job);
        return SB_MSG_MALFORMED;
    }
    if (job->inputs && job->round == 0)
        job->round = 1;
    return 0;
}

void
sb_job_clear (sb_job_t *job)
{
    free (job->op);
    free (job->connector);
    free (job->tool);
    free (job->args);
    free (job->inputs);
    free (job->task);
    free (job->subject);
    free (job->data);
    free (job->body);
    memset (job, 0, sizeof *job);
}

//  A msgpack writer into a fixed buffer (the packer's callback).
typedef struct {
    char data [64];
    size_t used;
} s_head_t;

static int
s_head_write (void *arg, const char *buf, size_t len)
{
    s_head_t *head = arg;
    if (len > sizeof head->data - head->used)
        return -1;
    memcpy (head->data + head->used, buf, len);
    head->used += len;
    return 0;
}

zframe_t *
sb_job_result_encode (const char *result_json)
{
    size_t len = result_json? strlen (result_json): 0;
    if (!result_json || len > SB_MAX_JSON_SIZE)
        return NULL;
    //  Everything before the result's bytes is packed on the stack, then
    //  the frame is made at its exact size: results are the largest
    //  payloads, and this spares a growing buffer and a copy of each.
    s_head_t head = { .used = 0 };
    msgpack_packer pk;
    msgpack_packer_init (&pk, &head, s_head_write);
    if (msgpack_pack_map (&pk, 2)
    ||  msgpack_pack_str (&pk, 1) || msgpack_pack_str_body (&pk, "v", 1)
    ||  msgpack_pack_uint32 (&pk, SB_JOB_VERSION)
    ||  msgpack_pack_str (&pk, 6) || msgpack_pack_str_body (&pk, "result", 6)
    ||  msgpack_pack_str (&pk, len)
    ||  head.used + len > SB_MAX_PAYLOAD_SIZE)
        return NULL;
    zframe_t *frame = zframe_new (NULL, head.used + len);
    if (frame) {
        memcpy (zframe_data (frame), head.data, head.used);
        memcpy (zframe_data (frame) + head.used, result_json, len);
    }
    return frame;
}

int
sb_job_result_decode (const uint8_t *data, size_t size, sb_job_result_t *result)
{
    sb_job_result_clear (result);
    const s_text_field_t fields [] = { { "result", SB_MAX_JSON_SIZE, &result->result } };
    if (s_decode_fields (data, size, fields, 1, NULL, 0, NULL, 0) || !result->result) {
        sb_job_result_clear (result);
        return SB_MSG_MALFORMED;
    }
    return 0;
}

void
sb_job_result_clear (sb_job_result_t *result)
{
    free (result->result);
    result->result = NULL;
}
