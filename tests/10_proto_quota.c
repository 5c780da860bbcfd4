/*  tests/10_proto_quota.c — unit tests of the LIMITS and USAGE payload
    codec and the billing period (proto/sb_quota_msg): round trips at every
    bound, each bound refused by the encoder and on the wire, malformed
    payloads, and sb_quota_period across months, February, leap years,
    the anchor clamp and the exact boundaries (checked against glibc's
    gmtime_r/timegm over thirty years). */
#include "sb_quota_msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <msgpack.h>
#include <time.h>

//  2^53, the largest count on the wire
#define S_MAX_VALUE     SB_MAX_QUOTA_VALUE

static sb_quota_entry_t s_entries [SB_QUOTA_MAX_ENTRIES + 1];
static sb_quota_entry_t s_decoded [SB_QUOTA_MAX_ENTRIES];
static sb_usage_entry_t s_usage [SB_QUOTA_MAX_ENTRIES + 1];
static sb_usage_entry_t s_usage_decoded [SB_QUOTA_MAX_ENTRIES];

//  Copies `src` into `dest` (`size` bytes), which must hold it.
static void
s_copy (char *dest, size_t size, const char *src)
{
    size_t len = strlen (src);
    assert_true (len < size);
    memcpy (dest, src, len + 1);
}

static sb_quota_entry_t
s_plan (const char *id, uint32_t rate, uint32_t burst, uint32_t in_flight,
        uint64_t monthly, uint32_t weight)
{
    sb_quota_entry_t entry = { .is_plan = true };
    s_copy (entry.plan.id, sizeof entry.plan.id, id);
    entry.plan.rate = rate;
    entry.plan.burst = burst;
    entry.plan.in_flight = in_flight;
    entry.plan.monthly = monthly;
    entry.plan.weight = weight;
    return entry;
}

static sb_quota_entry_t
s_tenant (const char *id, const char *plan, uint32_t anchor, int64_t period, uint64_t used)
{
    sb_quota_entry_t entry = { .is_plan = false };
    s_copy (entry.tenant.id, sizeof entry.tenant.id, id);
    s_copy (entry.tenant.plan, sizeof entry.tenant.plan, plan);
    entry.tenant.anchor = anchor;
    entry.tenant.period = period;
    entry.tenant.used = used;
    return entry;
}

static void
s_fill (char *buf, char c, size_t len)
{
    memset (buf, c, len);
    buf [len] = 0;
}

//  Encodes one LIMITS entry and expects the encoder to refuse it.
static void
s_assert_refused (sb_quota_entry_t entry)
{
    zframe_t *frame = sb_quota_limits_encode (&entry, 1);
    assert_null (frame);
}

static void
test_refusal_names (void **state)
{
    assert_string_equal (sb_refusal_name (SB_REFUSAL_IN_FLIGHT), "in_flight");
    assert_string_equal (sb_refusal_name (SB_REFUSAL_RATE), "rate");
    assert_string_equal (sb_refusal_name (SB_REFUSAL_MONTHLY), "monthly");
    assert_string_equal (sb_refusal_name (SB_REFUSAL_BUDGET), "budget");
    assert_string_equal (sb_refusal_name (SB_REFUSAL_COUNT), "unknown");
    assert_string_equal (sb_refusal_name ((sb_refusal_t) -1), "unknown");
    for (int r = 0; r < SB_REFUSAL_COUNT; r++)
        assert_int_equal (sb_refusal_from_name (sb_refusal_name ((sb_refusal_t) r)), r);
    assert_int_equal (sb_refusal_from_name ("Rate"), -1);
    assert_int_equal (sb_refusal_from_name ("rate "), -1);
    assert_int_equal (sb_refusal_from_name (""), -1);
    assert_int_equal (sb_refusal_from_name ("unknown"), -1);
    assert_int_equal (sb_refusal_from_name (NULL), -1);
}

static void
test_limits_round_trip (void **state)
{
    char longest_plan [SB_MAX_PLAN_LEN + 1], longest_tenant [SB_MAX_TENANT_LEN + 1];
    s_fill (longest_plan, 'p', SB_MAX_PLAN_LEN);
    longest_plan [1] = '_';
    longest_plan [2] = '-';
    s_fill (longest_tenant, '~', SB_MAX_TENANT_LEN);
    sb_quota_entry_t in [] = {
        s_plan ("free", 120, 60, 8, 10000, 1),
        s_plan ("custom", 0, 0, 0, 0, 1),                   //  all unlimited
        s_plan (longest_plan, SB_QUOTA_MAX_RATE, SB_QUOTA_MAX_BURST, SB_QUOTA_MAX_IN_FLIGHT,
                S_MAX_VALUE, SB_QUOTA_MAX_WEIGHT),
        s_plan ("0", 0, 5, 0, 0, 4),                        //  a burst without a rate is kept
        s_tenant ("acme", "free", 1, 1764547200, 4711),
        s_tenant (longest_tenant, longest_plan, SB_QUOTA_MAX_ANCHOR, 0, S_MAX_VALUE),
        s_tenant ("t", "0", 15, (int64_t) S_MAX_VALUE, 0),
    };
    size_t n = sizeof in / sizeof in [0];
    zframe_t *frame = sb_quota_limits_encode (in, n);
    assert_non_null (frame);
    size_t count = 99;
    assert_int_equal (sb_quota_limits_decode (frame, s_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (s_decoded [i].is_plan, in [i].is_plan);
        if (in [i].is_plan) {
            assert_string_equal (s_decoded [i].plan.id, in [i].plan.id);
            assert_int_equal (s_decoded [i].plan.rate, in [i].plan.rate);
            assert_int_equal (s_decoded [i].plan.burst, in [i].plan.burst);
            assert_int_equal (s_decoded [i].plan.in_flight, in [i].plan.in_flight);
            assert_true (s_decoded [i].plan.monthly == in [i].plan.monthly);
            assert_int_equal (s_decoded [i].plan.weight, in [i].plan.weight);
        }
        else {
            assert_string_equal (s_decoded [i].tenant.id, in [i].tenant.id);
            assert_string_equal (s_decoded [i].tenant.plan, in [i].tenant.plan);
            assert_int_equal (s_decoded [i].tenant.anchor, in [i].tenant.anchor);
            assert_true (s_decoded [i].tenant.period == in [i].tenant.period);
            assert_true (s_decoded [i].tenant.used == in [i].tenant.used);
        }
    }
    //  Fewer rooms than entries: malformed, nothing counted
    count = 99;
    assert_int_equal (sb_quota_limits_decode (frame, s_decoded, n - 1, &count), -1);
    assert_int_equal (count, 0);
    zframe_destroy (&frame);

    //  The wire shape is PROTOCOL.md's: an array of maps with "k"
    frame = sb_quota_limits_encode (in, 1);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert_int_equal (msgpack_unpack_next (&unpacked, (const char *) zframe_data (frame),
                                           zframe_size (frame), NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (unpacked.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal (unpacked.data.via.array.size, 1);
    const msgpack_object *map = &unpacked.data.via.array.ptr [0];
    assert_int_equal (map->type, MSGPACK_OBJECT_MAP);
    assert_int_equal (map->via.map.size, 7);
    assert_memory_equal (map->via.map.ptr [0].key.via.str.ptr, "k", 1);
    assert_memory_equal (map->via.map.ptr [0].val.via.str.ptr, "plan", 4);
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);

    //  None, and exactly SB_QUOTA_MAX_ENTRIES; one more cannot be encoded
    frame = sb_quota_limits_encode (NULL, 0);
    assert_non_null (frame);
    assert_int_equal (sb_quota_limits_decode (frame, s_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, 0);
    zframe_destroy (&frame);
    for (size_t i = 0; i <= SB_QUOTA_MAX_ENTRIES; i++) {
        char id [16];
        snprintf (id, sizeof id, "tenant-%zu", i);
        s_entries [i] = s_tenant (id, "pro", 1 + (uint32_t) (i % 28), 1764547200, i);
    }
    frame = sb_quota_limits_encode (s_entries, SB_QUOTA_MAX_ENTRIES);
    assert_non_null (frame);
    assert_int_equal (sb_quota_limits_decode (frame, s_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, SB_QUOTA_MAX_ENTRIES);
    assert_string_equal (s_decoded [SB_QUOTA_MAX_ENTRIES - 1].tenant.id, "tenant-999");
    assert_int_equal (s_decoded [SB_QUOTA_MAX_ENTRIES - 1].tenant.anchor, 1 + 999 % 28);
    assert_true (s_decoded [SB_QUOTA_MAX_ENTRIES - 1].tenant.used == 999);
    zframe_destroy (&frame);
    assert_null (sb_quota_limits_encode (s_entries, SB_QUOTA_MAX_ENTRIES + 1));
}

static void
test_limits_encoder_bounds (void **state)
{
    char too_long [SB_MAX_TENANT_LEN + 2];
    s_fill (too_long, 'x', SB_MAX_PLAN_LEN);
    sb_quota_entry_t longest = s_plan (too_long, 1, 1, 1, 1, 1);
    zframe_t *frame = sb_quota_limits_encode (&longest, 1);
    assert_non_null (frame);
    zframe_destroy (&frame);
    longest.plan.id [SB_MAX_PLAN_LEN] = 'x';    //  no terminator: one byte too long
    s_assert_refused (longest);
    s_assert_refused (s_plan ("", 1, 1, 1, 1, 1));
    s_assert_refused (s_plan ("Free", 1, 1, 1, 1, 1));
    s_assert_refused (s_plan ("-free", 1, 1, 1, 1, 1));
    s_assert_refused (s_plan ("_free", 1, 1, 1, 1, 1));
    s_assert_refused (s_plan ("fr ee", 1, 1, 1, 1, 1));
    s_assert_refused (s_plan ("fr.ee", 1, 1, 1, 1, 1));
    s_assert_refused (s_plan ("free", SB_QUOTA_MAX_RATE + 1, 1, 1, 1, 1));
    s_assert_refused (s_plan ("free", 1, SB_QUOTA_MAX_BURST + 1, 1, 1, 1));
    s_assert_refused (s_plan ("free", 1, 0, 1, 1, 1));     //  a rate needs a burst
    s_assert_refused (s_plan ("free", 1, 1, SB_QUOTA_MAX_IN_FLIGHT + 1, 1, 1));
    s_assert_refused (s_plan ("free", 1, 1, 1, S_MAX_VALUE + 1, 1));
    s_assert_refused (s_plan ("free", 1, 1, 1, 1, 0));
    s_assert_refused (s_plan ("free", 1, 1, 1, 1, SB_QUOTA_MAX_WEIGHT + 1));

    s_fill (too_long, 't', SB_MAX_TENANT_LEN);
    sb_quota_entry_t fits = s_tenant (too_long, "free", 1, 0, 0);
    frame = sb_quota_limits_encode (&fits, 1);
    assert_non_null (frame);
    zframe_destroy (&frame);
    //  the struct cannot hold a longer ID: break its terminator instead
    fits.tenant.id [SB_MAX_TENANT_LEN] = 't';
    s_assert_refused (fits);
    s_assert_refused (s_tenant ("", "free", 1, 0, 0));
    s_assert_refused (s_tenant ("a b", "free", 1, 0, 0));
    s_assert_refused (s_tenant ("a\x7f", "free", 1, 0, 0));
    s_assert_refused (s_tenant ("acme", "", 1, 0, 0));
    s_assert_refused (s_tenant ("acme", "Free", 1, 0, 0));
    s_assert_refused (s_tenant ("acme", "free", 0, 0, 0));
    s_assert_refused (s_tenant ("acme", "free", SB_QUOTA_MAX_ANCHOR + 1, 0, 0));
    s_assert_refused (s_tenant ("acme", "free", 1, -1, 0));
    s_assert_refused (s_tenant ("acme", "free", 1, (int64_t) S_MAX_VALUE + 1, 0));
    s_assert_refused (s_tenant ("acme", "free", 1, 0, S_MAX_VALUE + 1));

    //  One bad entry among good ones refuses the whole payload
    sb_quota_entry_t mixed [] = {
        s_plan ("free", 1, 1, 1, 1, 1), s_plan ("free", 1, 1, 1, 1, 0),
    };
    assert_null (sb_quota_limits_encode (mixed, 2));
    assert_null (sb_quota_limits_encode (NULL, 1));
}

//  A hand-packed entry for the decoder: keys with a value each.
typedef enum { V_UINT, V_INT, V_STR, V_NIL, V_MAP, V_UINT_KEY } s_kind_t;

typedef struct {
    const char *key;            //  NULL ends the list
    s_kind_t kind;              //  how `uint`, `sint` or `str` is packed
    uint64_t uint;
    int64_t sint;
    const char *str;
} s_kv_t;

static void
s_pack_text (msgpack_packer *pk, const char *text)
{
    msgpack_pack_str (pk, strlen (text));
    msgpack_pack_str_body (pk, text, strlen (text));
}

static void
s_pack_entry (msgpack_packer *pk, const s_kv_t *kvs)
{
    size_t n = 0;
    while (kvs [n].key)
        n++;
    msgpack_pack_map (pk, n);
    for (size_t i = 0; i < n; i++) {
        if (kvs [i].kind == V_UINT_KEY)
            msgpack_pack_uint32 (pk, 7);    //  a number where a key should be
        else
            s_pack_text (pk, kvs [i].key);
        switch (kvs [i].kind) {
            case V_UINT:
            case V_UINT_KEY: msgpack_pack_uint64 (pk, kvs [i].uint); break;
            case V_INT:      msgpack_pack_int64 (pk, kvs [i].sint); break;
            case V_STR:      s_pack_text (pk, kvs [i].str); break;
            case V_NIL:      msgpack_pack_nil (pk); break;
            case V_MAP:      //  "refused": {str: uint}
                msgpack_pack_map (pk, 1);
                s_pack_text (pk, kvs [i].str);
                msgpack_pack_uint64 (pk, kvs [i].uint);
                break;
        }
    }
}

//  Packs [entry] and decodes it as LIMITS (or USAGE); returns the rc.
static int
s_decode_one (const s_kv_t *kvs, bool usage, size_t *count)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    s_pack_entry (&pk, kvs);
    zframe_t *frame = zframe_new (sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    *count = 99;
    int rc = usage
           ? sb_quota_usage_decode (frame, s_usage_decoded, SB_QUOTA_MAX_ENTRIES, count)
           : sb_quota_limits_decode (frame, s_decoded, SB_QUOTA_MAX_ENTRIES, count);
    zframe_destroy (&frame);
    if (rc)
        assert_int_equal (*count, 0);
    return rc;
}

#define S_KVS_MAX 12

//  A copy of `base` with `key` replaced by `kv` (or removed when kv.key
//  is NULL), or `kv` appended when base has no such key.
static void
s_with (const s_kv_t *base, const char *key, s_kv_t kv, s_kv_t *out)
{
    size_t n = 0;
    bool replaced = false;
    for (size_t i = 0; base [i].key; i++) {
        if (strcmp (base [i].key, key) == 0) {
            replaced = true;
            if (kv.key)
                out [n++] = kv;
        }
        else
            out [n++] = base [i];
    }
    if (!replaced && kv.key)
        out [n++] = kv;
    assert_true (n < S_KVS_MAX);
    out [n].key = NULL;
}

static int
s_decode_with (const s_kv_t *base, const char *key, s_kv_t kv, bool usage)
{
    s_kv_t kvs [S_KVS_MAX];
    s_with (base, key, kv, kvs);
    size_t count = 0;
    return s_decode_one (kvs, usage, &count);
}

#define S_U(k, v)   ((s_kv_t) { .key = (k), .kind = V_UINT, .uint = (v) })
#define S_I(k, v)   ((s_kv_t) { .key = (k), .kind = V_INT, .sint = (v) })
#define S_S(k, v)   ((s_kv_t) { .key = (k), .kind = V_STR, .str = (v) })
#define S_NIL(k)    ((s_kv_t) { .key = (k), .kind = V_NIL })
#define S_GONE      ((s_kv_t) { .key = NULL })

static const s_kv_t s_plan_kvs [] = {
    { "k", V_STR, 0, 0, "plan" }, { "id", V_STR, 0, 0, "free" },
    { "rate", V_UINT, 120, 0, NULL }, { "burst", V_UINT, 60, 0, NULL },
    { "in_flight", V_UINT, 8, 0, NULL }, { "monthly", V_UINT, 10000, 0, NULL },
    { "weight", V_UINT, 1, 0, NULL }, { NULL, V_NIL, 0, 0, NULL },
};

static const s_kv_t s_tenant_kvs [] = {
    { "k", V_STR, 0, 0, "tenant" }, { "id", V_STR, 0, 0, "acme" },
    { "plan", V_STR, 0, 0, "free" }, { "anchor", V_UINT, 1, 0, NULL },
    { "period", V_UINT, 1764547200, 0, NULL }, { "used", V_UINT, 4711, 0, NULL },
    { NULL, V_NIL, 0, 0, NULL },
};

static const s_kv_t s_usage_kvs [] = {
    { "tenant", V_STR, 0, 0, "acme" }, { "period", V_UINT, 1764547200, 0, NULL },
    { "minute", V_UINT, 1765152000, 0, NULL }, { "calls", V_UINT, 12, 0, NULL },
    { "refused", V_MAP, 3, 0, "rate" }, { NULL, V_NIL, 0, 0, NULL },
};

static void
test_limits_decoder_bounds (void **state)
{
    size_t count = 0;
    //  The base entries decode (PROTOCOL.md's examples)
    assert_int_equal (s_decode_one (s_plan_kvs, false, &count), 0);
    assert_int_equal (count, 1);
    assert_true (s_decoded [0].is_plan);
    assert_string_equal (s_decoded [0].plan.id, "free");
    assert_int_equal (s_decoded [0].plan.rate, 120);
    assert_int_equal (s_decoded [0].plan.burst, 60);
    assert_int_equal (s_decoded [0].plan.in_flight, 8);
    assert_true (s_decoded [0].plan.monthly == 10000);
    assert_int_equal (s_decoded [0].plan.weight, 1);
    assert_int_equal (s_decode_one (s_tenant_kvs, false, &count), 0);
    assert_int_equal (count, 1);
    assert_false (s_decoded [0].is_plan);
    assert_string_equal (s_decoded [0].tenant.id, "acme");
    assert_string_equal (s_decoded [0].tenant.plan, "free");
    assert_true (s_decoded [0].tenant.period == 1764547200);

    //  Exactly at the bounds
    char longest [SB_MAX_TENANT_LEN + 2];
    s_fill (longest, 'p', SB_MAX_PLAN_LEN);
    assert_int_equal (s_decode_with (s_plan_kvs, "id", S_S ("id", longest), false), 0);
    assert_int_equal (s_decode_with (s_plan_kvs, "rate", S_U ("rate", SB_QUOTA_MAX_RATE), false), 0);
    assert_int_equal (s_decode_with (s_plan_kvs, "burst", S_U ("burst", SB_QUOTA_MAX_BURST), false), 0);
    assert_int_equal (s_decode_with (s_plan_kvs, "in_flight",
                                     S_U ("in_flight", SB_QUOTA_MAX_IN_FLIGHT), false), 0);
    assert_int_equal (s_decode_with (s_plan_kvs, "monthly", S_U ("monthly", S_MAX_VALUE), false), 0);
    assert_int_equal (s_decode_with (s_plan_kvs, "weight", S_U ("weight", SB_QUOTA_MAX_WEIGHT), false), 0);
    assert_int_equal (s_decode_with (s_tenant_kvs, "plan", S_S ("plan", longest), false), 0);
    assert_int_equal (s_decode_with (s_tenant_kvs, "anchor", S_U ("anchor", SB_QUOTA_MAX_ANCHOR), false), 0);
    assert_int_equal (s_decode_with (s_tenant_kvs, "period", S_U ("period", 0), false), 0);
    assert_int_equal (s_decode_with (s_tenant_kvs, "used", S_U ("used", S_MAX_VALUE), false), 0);
    s_fill (longest, 't', SB_MAX_TENANT_LEN);
    assert_int_equal (s_decode_with (s_tenant_kvs, "id", S_S ("id", longest), false), 0);

    //  Every bound broken
    s_fill (longest, 't', SB_MAX_TENANT_LEN + 1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "id", S_S ("id", longest), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "id", S_S ("id", ""), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "id", S_S ("id", "a b"), false), -1);
    s_fill (longest, 'p', SB_MAX_PLAN_LEN + 1);
    assert_int_equal (s_decode_with (s_plan_kvs, "id", S_S ("id", longest), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "id", S_S ("id", ""), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "id", S_S ("id", "Free"), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "id", S_S ("id", "-free"), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "plan", S_S ("plan", "fr ee"), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "rate", S_U ("rate", SB_QUOTA_MAX_RATE + 1), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "burst", S_U ("burst", SB_QUOTA_MAX_BURST + 1), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "burst", S_U ("burst", 0), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "in_flight",
                                     S_U ("in_flight", SB_QUOTA_MAX_IN_FLIGHT + 1), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "monthly", S_U ("monthly", S_MAX_VALUE + 1), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "weight", S_U ("weight", 0), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "weight", S_U ("weight", SB_QUOTA_MAX_WEIGHT + 1), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "rate", S_U ("rate", UINT64_MAX), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "anchor", S_U ("anchor", 0), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "anchor", S_U ("anchor", SB_QUOTA_MAX_ANCHOR + 1), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "period", S_I ("period", -1), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "period", S_U ("period", S_MAX_VALUE + 1), false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "used", S_U ("used", S_MAX_VALUE + 1), false), -1);

    //  Types, missing and repeated keys, and the kind
    assert_int_equal (s_decode_with (s_plan_kvs, "rate", S_S ("rate", "120"), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "rate", S_NIL ("rate"), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "id", S_U ("id", 7), false), -1);
    assert_int_equal (s_decode_with (s_plan_kvs, "weight", S_GONE, false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "used", S_GONE, false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "plan", S_GONE, false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "k", S_GONE, false), -1);
    assert_int_equal (s_decode_with (s_tenant_kvs, "k", S_U ("k", 1), false), -1);
    s_kv_t twice [S_KVS_MAX];
    s_with (s_plan_kvs, "zz", S_U ("rate", 5), twice);
    assert_int_equal (s_decode_one (twice, false, &count), -1);
    s_with (s_plan_kvs, "zz", S_S ("k", "plan"), twice);
    assert_int_equal (s_decode_one (twice, false, &count), -1);
    s_with (s_plan_kvs, "zz", ((s_kv_t) { .key = "7", .kind = V_UINT_KEY, .uint = 1 }), twice);
    assert_int_equal (s_decode_one (twice, false, &count), -1);
    //  an unknown key is ignored; an unknown kind is skipped
    assert_int_equal (s_decode_with (s_plan_kvs, "zz", S_S ("colour", "red"), false), 0);
    assert_int_equal (s_decode_with (s_tenant_kvs, "k", S_S ("k", "connector"), false), 0);
    const s_kv_t other_kind [] = { S_S ("k", "connector"), S_GONE };
    assert_int_equal (s_decode_one (other_kind, false, &count), 0);
    assert_int_equal (count, 0);
}

//  Decodes raw bytes as both payloads; both must refuse them.
static void
s_assert_malformed (const void *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    size_t count = 99;
    assert_int_equal (sb_quota_limits_decode (frame, s_decoded, SB_QUOTA_MAX_ENTRIES, &count), -1);
    assert_int_equal (count, 0);
    count = 99;
    assert_int_equal (sb_quota_usage_decode (frame, s_usage_decoded, SB_QUOTA_MAX_ENTRIES, &count), -1);
    assert_int_equal (count, 0);
    zframe_destroy (&frame);
}

static void
test_malformed_payloads (void **state)
{
    s_assert_malformed ("\xc1", 1);                         //  never-used byte
    s_assert_malformed ("\x91", 1);                         //  truncated array
    s_assert_malformed ("\x90\x90", 2);                     //  trailing bytes
    s_assert_malformed ("\x80", 1);                         //  a map, not an array
    s_assert_malformed ("\xa4plan", 5);                     //  a string
    s_assert_malformed ("\x91\x01", 2);                     //  an entry that is not a map
    s_assert_malformed ("\x91\x90", 2);                     //  an array entry
    s_assert_malformed ("\xdd\xff\xff\xff\xff", 5);         //  4 billion elements, no bytes
    s_assert_malformed ("\x91\xdf\x00\x01\x00\x00", 6);     //  65536 pairs announced

    //  More entries than SB_QUOTA_MAX_ENTRIES, even empty maps
    size_t n = SB_QUOTA_MAX_ENTRIES + 1;
    uint8_t many [3 + SB_QUOTA_MAX_ENTRIES + 1];
    many [0] = 0xdc;
    many [1] = (uint8_t) (n >> 8);
    many [2] = (uint8_t) n;
    memset (many + 3, 0x80, n);
    s_assert_malformed (many, 3 + n);

    //  A map with more keys than an entry may have
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 17);
    for (int i = 0; i < 17; i++) {
        char key [8];
        snprintf (key, sizeof key, "k%d", i);
        s_pack_text (&pk, key);
        msgpack_pack_uint32 (&pk, 1);
    }
    s_assert_malformed (sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);

    //  An empty frame holds no entries; no frame at all is refused
    zframe_t *empty = zframe_new_empty ();
    size_t count = 99;
    assert_int_equal (sb_quota_limits_decode (empty, s_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, 0);
    count = 99;
    assert_int_equal (sb_quota_usage_decode (empty, s_usage_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, 0);
    zframe_destroy (&empty);
    assert_int_equal (sb_quota_limits_decode (NULL, s_decoded, SB_QUOTA_MAX_ENTRIES, &count), -1);
    assert_int_equal (sb_quota_usage_decode (NULL, s_usage_decoded, SB_QUOTA_MAX_ENTRIES, &count), -1);
}

static void
test_usage_round_trip (void **state)
{
    char longest [SB_MAX_TENANT_LEN + 1];
    s_fill (longest, 'z', SB_MAX_TENANT_LEN);
    sb_usage_entry_t in [3] = {
        { .tenant = "acme", .period = 1764547200, .minute = 1765152000, .calls = 12,
          .refused = { [SB_REFUSAL_RATE] = 3 } },
        { .tenant = "idle", .period = 0, .minute = 0, .calls = 0 },
        { .period = (int64_t) S_MAX_VALUE, .minute = (int64_t) S_MAX_VALUE, .calls = S_MAX_VALUE,
          .refused = { S_MAX_VALUE, S_MAX_VALUE, S_MAX_VALUE, S_MAX_VALUE } },
    };
    memcpy (in [2].tenant, longest, sizeof longest);
    zframe_t *frame = sb_quota_usage_encode (in, 3);
    assert_non_null (frame);
    size_t count = 0;
    assert_int_equal (sb_quota_usage_decode (frame, s_usage_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal (s_usage_decoded [i].tenant, in [i].tenant);
        assert_true (s_usage_decoded [i].period == in [i].period);
        assert_true (s_usage_decoded [i].minute == in [i].minute);
        assert_true (s_usage_decoded [i].calls == in [i].calls);
        for (int r = 0; r < SB_REFUSAL_COUNT; r++)
            assert_true (s_usage_decoded [i].refused [r] == in [i].refused [r]);
    }
    assert_int_equal (sb_quota_usage_decode (frame, s_usage_decoded, 2, &count), -1);
    zframe_destroy (&frame);

    //  Zero refusals are left out: the first entry's "refused" has one key
    frame = sb_quota_usage_encode (in, 1);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert_int_equal (msgpack_unpack_next (&unpacked, (const char *) zframe_data (frame),
                                           zframe_size (frame), NULL), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *map = &unpacked.data.via.array.ptr [0];
    bool seen = false;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (map->via.map.ptr [i].key.via.str.size == 7
        &&  memcmp (map->via.map.ptr [i].key.via.str.ptr, "refused", 7) == 0) {
            assert_int_equal (map->via.map.ptr [i].val.type, MSGPACK_OBJECT_MAP);
            assert_int_equal (map->via.map.ptr [i].val.via.map.size, 1);
            seen = true;
        }
    assert_true (seen);
    msgpack_unpacked_destroy (&unpacked);
    zframe_destroy (&frame);

    //  A full batch; one more cannot be encoded
    for (size_t i = 0; i <= SB_QUOTA_MAX_ENTRIES; i++) {
        memset (&s_usage [i], 0, sizeof s_usage [i]);
        snprintf (s_usage [i].tenant, sizeof s_usage [i].tenant, "t%zu", i);
        s_usage [i].period = 1764547200;
        s_usage [i].minute = 1765152000;
        s_usage [i].calls = i;
        s_usage [i].refused [i % SB_REFUSAL_COUNT] = i;
    }
    frame = sb_quota_usage_encode (s_usage, SB_QUOTA_MAX_ENTRIES);
    assert_non_null (frame);
    assert_int_equal (sb_quota_usage_decode (frame, s_usage_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, SB_QUOTA_MAX_ENTRIES);
    assert_true (s_usage_decoded [998].refused [998 % SB_REFUSAL_COUNT] == 998);
    zframe_destroy (&frame);
    assert_null (sb_quota_usage_encode (s_usage, SB_QUOTA_MAX_ENTRIES + 1));
    frame = sb_quota_usage_encode (NULL, 0);
    assert_non_null (frame);
    assert_int_equal (sb_quota_usage_decode (frame, s_usage_decoded, SB_QUOTA_MAX_ENTRIES, &count), 0);
    assert_int_equal (count, 0);
    zframe_destroy (&frame);

    //  The encoder refuses each bound
    sb_usage_entry_t bad = in [0];
    bad.tenant [0] = 0;
    assert_null (sb_quota_usage_encode (&bad, 1));
    bad = in [0];
    memcpy (bad.tenant, "a b", 4);
    assert_null (sb_quota_usage_encode (&bad, 1));
    bad = in [2];
    bad.tenant [SB_MAX_TENANT_LEN] = 'z';       //  no terminator: too long
    assert_null (sb_quota_usage_encode (&bad, 1));
    bad = in [0];
    bad.period = -1;
    assert_null (sb_quota_usage_encode (&bad, 1));
    bad = in [0];
    bad.minute = (int64_t) S_MAX_VALUE + 1;
    assert_null (sb_quota_usage_encode (&bad, 1));
    bad = in [0];
    bad.calls = S_MAX_VALUE + 1;
    assert_null (sb_quota_usage_encode (&bad, 1));
    bad = in [0];
    bad.refused [SB_REFUSAL_BUDGET] = S_MAX_VALUE + 1;
    assert_null (sb_quota_usage_encode (&bad, 1));
    assert_null (sb_quota_usage_encode (NULL, 1));
}

static void
test_usage_decoder_bounds (void **state)
{
    size_t count = 0;
    assert_int_equal (s_decode_one (s_usage_kvs, true, &count), 0);
    assert_int_equal (count, 1);
    assert_string_equal (s_usage_decoded [0].tenant, "acme");
    assert_true (s_usage_decoded [0].calls == 12);
    assert_true (s_usage_decoded [0].refused [SB_REFUSAL_RATE] == 3);
    assert_true (s_usage_decoded [0].refused [SB_REFUSAL_MONTHLY] == 0);
    //  "refused" may be left out; other keys are required
    assert_int_equal (s_decode_with (s_usage_kvs, "refused", S_GONE, true), 0);
    assert_true (s_usage_decoded [0].refused [SB_REFUSAL_RATE] == 0);
    assert_int_equal (s_decode_with (s_usage_kvs, "tenant", S_GONE, true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "period", S_GONE, true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "minute", S_GONE, true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "calls", S_GONE, true), -1);
    //  bounds and types
    assert_int_equal (s_decode_with (s_usage_kvs, "calls", S_U ("calls", S_MAX_VALUE), true), 0);
    assert_int_equal (s_decode_with (s_usage_kvs, "calls", S_U ("calls", S_MAX_VALUE + 1), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "calls", S_I ("calls", -1), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "period", S_I ("period", -86400), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "minute", S_S ("minute", "0"), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "tenant", S_S ("tenant", ""), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "tenant", S_U ("tenant", 1), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "refused", S_U ("refused", 3), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "refused",
                                     ((s_kv_t) { "refused", V_MAP, 3, 0, "speed" }), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "refused",
                                     ((s_kv_t) { "refused", V_MAP, S_MAX_VALUE + 1, 0, "budget" }), true), -1);
    assert_int_equal (s_decode_with (s_usage_kvs, "refused",
                                     ((s_kv_t) { "refused", V_MAP, S_MAX_VALUE, 0, "in_flight" }), true), 0);
    assert_true (s_usage_decoded [0].refused [SB_REFUSAL_IN_FLIGHT] == S_MAX_VALUE);
    assert_int_equal (s_decode_with (s_usage_kvs, "zz", S_S ("note", "newer"), true), 0);

    //  A reason given twice, a number for a reason, five reasons
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    const char *shapes [3][5] = {
        { "rate", "rate" }, { NULL }, { "rate", "monthly", "budget", "in_flight", "rate" },
    };
    uint32_t sizes [3] = { 2, 1, 5 };
    for (size_t s = 0; s < 3; s++) {
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, 1);
        msgpack_pack_map (&pk, 5);
        s_pack_text (&pk, "tenant");
        s_pack_text (&pk, "acme");
        s_pack_text (&pk, "period");
        msgpack_pack_uint32 (&pk, 0);
        s_pack_text (&pk, "minute");
        msgpack_pack_uint32 (&pk, 0);
        s_pack_text (&pk, "calls");
        msgpack_pack_uint32 (&pk, 1);
        s_pack_text (&pk, "refused");
        msgpack_pack_map (&pk, sizes [s]);
        for (uint32_t i = 0; i < sizes [s]; i++) {
            if (shapes [s][i])
                s_pack_text (&pk, shapes [s][i]);
            else
                msgpack_pack_uint32 (&pk, 1);
            msgpack_pack_uint32 (&pk, 1);
        }
        zframe_t *frame = zframe_new (sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
        assert_int_equal (sb_quota_usage_decode (frame, s_usage_decoded, SB_QUOTA_MAX_ENTRIES,
                                                 &count), -1);
        zframe_destroy (&frame);
    }
}


//  --------------------------------------------------------------------------
//  Billing periods

//  Unix seconds of a UTC date and time.
static int64_t
s_utc (int y, int mon, int d, int h, int min, int sec)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = min, .tm_sec = sec };
    return (int64_t) timegm (&tm);
}

static void
s_assert_period (int64_t now, uint32_t anchor, int64_t start, int64_t end)
{
    int64_t got_start = -1, got_end = -1;
    sb_quota_period (now, anchor, &got_start, &got_end);
    assert_true (got_start == start);
    assert_true (got_end == end);
}

static void
test_period_examples (void **state)
{
    //  Literal values first, independent of any libc: 2025-12-01,
    //  2026-01-01 and 2026-02-01 at 00:00:00Z
    s_assert_period (1767225600, 1, 1767225600, 1769904000);
    s_assert_period (1767225599, 1, 1764547200, 1767225600);
    assert_true (s_utc (2026, 1, 1, 0, 0, 0) == 1767225600);

    //  Calendar months; the year's turn
    s_assert_period (s_utc (2026, 1, 15, 12, 0, 0), 1, s_utc (2026, 1, 1, 0, 0, 0), s_utc (2026, 2, 1, 0, 0, 0));
    s_assert_period (s_utc (2025, 12, 31, 23, 59, 59), 1, s_utc (2025, 12, 1, 0, 0, 0), s_utc (2026, 1, 1, 0, 0, 0));
    //  The quota table's fake clock: 2026-01-31T23:59:59Z then 2026-02-01T00:00:00Z
    s_assert_period (s_utc (2026, 1, 31, 23, 59, 59), 1, s_utc (2026, 1, 1, 0, 0, 0), s_utc (2026, 2, 1, 0, 0, 0));
    s_assert_period (s_utc (2026, 2, 1, 0, 0, 0), 1, s_utc (2026, 2, 1, 0, 0, 0), s_utc (2026, 3, 1, 0, 0, 0));
    s_assert_period (s_utc (2026, 1, 31, 23, 59, 59), 15, s_utc (2026, 1, 15, 0, 0, 0), s_utc (2026, 2, 15, 0, 0, 0));
    s_assert_period (s_utc (2026, 2, 1, 0, 0, 0), 15, s_utc (2026, 1, 15, 0, 0, 0), s_utc (2026, 2, 15, 0, 0, 0));

    //  Exactly at the boundary: the last second belongs to the old period,
    //  the anchor's midnight starts the new one
    s_assert_period (s_utc (2026, 1, 14, 23, 59, 59), 15, s_utc (2025, 12, 15, 0, 0, 0), s_utc (2026, 1, 15, 0, 0, 0));
    s_assert_period (s_utc (2026, 1, 15, 0, 0, 0), 15, s_utc (2026, 1, 15, 0, 0, 0), s_utc (2026, 2, 15, 0, 0, 0));
    s_assert_period (s_utc (2026, 12, 15, 0, 0, 0), 15, s_utc (2026, 12, 15, 0, 0, 0), s_utc (2027, 1, 15, 0, 0, 0));
    s_assert_period (s_utc (2027, 1, 14, 23, 59, 59), 15, s_utc (2026, 12, 15, 0, 0, 0), s_utc (2027, 1, 15, 0, 0, 0));

    //  February: 28 days, 29 in leap years (2024, 2000), 28 in 2100
    int64_t start = 0, end = 0;
    sb_quota_period (s_utc (2026, 2, 10, 0, 0, 0), 1, &start, &end);
    assert_true (end - start == 28 * 86400);
    sb_quota_period (s_utc (2024, 2, 10, 0, 0, 0), 1, &start, &end);
    assert_true (end - start == 29 * 86400);
    sb_quota_period (s_utc (2000, 2, 29, 12, 0, 0), 1, &start, &end);
    assert_true (start == s_utc (2000, 2, 1, 0, 0, 0) && end - start == 29 * 86400);
    sb_quota_period (s_utc (2100, 2, 28, 23, 59, 59), 1, &start, &end);
    assert_true (start == s_utc (2100, 2, 1, 0, 0, 0) && end == s_utc (2100, 3, 1, 0, 0, 0));
    assert_true (end - start == 28 * 86400);
    //  A period across February with anchor 28 (the longest a day may be)
    s_assert_period (s_utc (2024, 2, 29, 10, 0, 0), 28, s_utc (2024, 2, 28, 0, 0, 0), s_utc (2024, 3, 28, 0, 0, 0));
    s_assert_period (s_utc (2026, 2, 27, 23, 59, 59), 28, s_utc (2026, 1, 28, 0, 0, 0), s_utc (2026, 2, 28, 0, 0, 0));
    s_assert_period (s_utc (2026, 2, 28, 0, 0, 0), 28, s_utc (2026, 2, 28, 0, 0, 0), s_utc (2026, 3, 28, 0, 0, 0));

    //  Anchors out of range: 29..31 (and more) clamp to 28, 0 means 1
    s_assert_period (s_utc (2026, 3, 30, 8, 0, 0), 31, s_utc (2026, 3, 28, 0, 0, 0), s_utc (2026, 4, 28, 0, 0, 0));
    s_assert_period (s_utc (2026, 2, 28, 0, 0, 0), 31, s_utc (2026, 2, 28, 0, 0, 0), s_utc (2026, 3, 28, 0, 0, 0));
    s_assert_period (s_utc (2026, 2, 27, 0, 0, 0), 29, s_utc (2026, 1, 28, 0, 0, 0), s_utc (2026, 2, 28, 0, 0, 0));
    s_assert_period (s_utc (2026, 3, 1, 0, 0, 0), 1000, s_utc (2026, 2, 28, 0, 0, 0), s_utc (2026, 3, 28, 0, 0, 0));
    s_assert_period (s_utc (2026, 3, 1, 0, 0, 0), 0, s_utc (2026, 3, 1, 0, 0, 0), s_utc (2026, 4, 1, 0, 0, 0));

    //  The epoch, and the instant just before it
    s_assert_period (0, 1, 0, 31 * 86400);
    s_assert_period (-1, 1, s_utc (1969, 12, 1, 0, 0, 0), 0);
    s_assert_period (-1, 2, s_utc (1969, 12, 2, 0, 0, 0), s_utc (1970, 1, 2, 0, 0, 0));
    //  Absurd clocks do not overflow: the result still brackets the clamp
    sb_quota_period (INT64_MAX, 1, &start, &end);
    assert_true (start <= (int64_t) S_MAX_VALUE && end > (int64_t) S_MAX_VALUE);
    sb_quota_period (INT64_MIN, 28, &start, &end);
    assert_true (start <= -(int64_t) S_MAX_VALUE && end > -(int64_t) S_MAX_VALUE);
}

//  Every day from 2000 to 2030, at a few times of day, for every anchor:
//  start ≤ now < end, start is 00:00:00 UTC on day `anchor`, end is the
//  same day of the next month (glibc's gmtime_r says, not our arithmetic).
static void
test_period_sweep (void **state)
{
    static const int times [] = { 0, 1, 43200, 86399 };
    int64_t first = s_utc (2000, 1, 1, 0, 0, 0), last = s_utc (2031, 1, 1, 0, 0, 0);
    size_t checked = 0;
    for (int64_t day = first; day < last; day += 86400)
        for (size_t t = 0; t < sizeof times / sizeof times [0]; t++)
            for (uint32_t anchor = 1; anchor <= SB_QUOTA_MAX_ANCHOR; anchor++) {
                int64_t now = day + times [t], start = 0, end = 0;
                sb_quota_period (now, anchor, &start, &end);
                assert_true (start <= now && now < end);
                struct tm s_tm, e_tm;
                time_t s_time = (time_t) start, e_time = (time_t) end;
                assert_non_null (gmtime_r (&s_time, &s_tm));
                assert_non_null (gmtime_r (&e_time, &e_tm));
                assert_int_equal (s_tm.tm_mday, anchor);
                assert_int_equal (e_tm.tm_mday, anchor);
                assert_int_equal (s_tm.tm_hour + s_tm.tm_min + s_tm.tm_sec, 0);
                assert_int_equal (e_tm.tm_hour + e_tm.tm_min + e_tm.tm_sec, 0);
                assert_int_equal ((e_tm.tm_year * 12 + e_tm.tm_mon) - (s_tm.tm_year * 12 + s_tm.tm_mon), 1);
                checked++;
            }
    assert_true (checked > 1000000);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_refusal_names),
        cmocka_unit_test (test_limits_round_trip),
        cmocka_unit_test (test_limits_encoder_bounds),
        cmocka_unit_test (test_limits_decoder_bounds),
        cmocka_unit_test (test_malformed_payloads),
        cmocka_unit_test (test_usage_round_trip),
        cmocka_unit_test (test_usage_decoder_bounds),
        cmocka_unit_test (test_period_examples),
        cmocka_unit_test (test_period_sweep),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
