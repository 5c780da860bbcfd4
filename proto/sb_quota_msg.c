/*  proto/sb_quota_msg.c — the LIMITS and USAGE payload codec (msgpack
    arrays of maps, PROTOCOL.md "Quotas") and the billing period both the
    broker and the quota service count monthly allowances in.

    Decoding walks the bytes with sb_msgpack_check before msgpack-c sees
    them, then checks every key's type and bound: one violation makes the
    whole payload malformed. Keys it does not know are skipped, so a newer
    quota service can add one; a key it knows given twice is malformed.
*/
#include "sb_quota_msg.h"
#include "sb_msgpack.h"

#include <msgpack.h>
#include <string.h>

#define S_MAX_ENTRY_KEYS    16      /* most keys one entry map may have */
#define S_SECONDS_PER_DAY   86400
#define S_MAX_UNIX_S        SB_MAX_QUOTA_VALUE  /* period and minute: 0..2^53 seconds */

static const char *s_refusal_names [SB_REFUSAL_COUNT] = {
    [SB_REFUSAL_IN_FLIGHT] = "in_flight",
    [SB_REFUSAL_RATE]      = "rate",
    [SB_REFUSAL_MONTHLY]   = "monthly",
    [SB_REFUSAL_BUDGET]    = "budget",
};

const char *
sb_refusal_name (sb_refusal_t reason)
{
    if ((unsigned) reason < SB_REFUSAL_COUNT)
        return s_refusal_names [reason];
    return "unknown";
}

int
sb_refusal_from_name (const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < SB_REFUSAL_COUNT; i++)
        if (strcmp (name, s_refusal_names [i]) == 0)
            return i;
    return -1;
}


//  --------------------------------------------------------------------------
//  Bounds, shared by the encoder (a caller's bug) and the decoder (wire data)

//  A tenant ID: 1..SB_MAX_TENANT_LEN printable ASCII bytes, no space (as
//  in the envelope).
static bool
s_valid_tenant (const char *text, size_t len)
{
    return sb_msgpack_ident_valid (text, len, SB_MAX_TENANT_LEN);
}

//  A plan ID: ^[a-z0-9][a-z0-9_-]{0,62}$ (the plans table's check).
static bool
s_valid_plan_id (const char *text, size_t len)
{
    if (len == 0 || len > SB_MAX_PLAN_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text [i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-')))
            return false;
    }
    return true;
}

static bool
s_valid_plan (const sb_quota_plan_t *plan)
{
    return s_valid_plan_id (plan->id, strnlen (plan->id, sizeof plan->id))
        && plan->rate <= SB_QUOTA_MAX_RATE
        && plan->burst <= SB_QUOTA_MAX_BURST
        && (plan->rate == 0 || plan->burst >= 1)
        && plan->in_flight <= SB_QUOTA_MAX_IN_FLIGHT
        && plan->monthly <= SB_MAX_QUOTA_VALUE
        && plan->weight >= 1 && plan->weight <= SB_QUOTA_MAX_WEIGHT;
}

static bool
s_valid_tenant_entry (const sb_quota_tenant_t *tenant)
{
    return s_valid_tenant (tenant->id, strnlen (tenant->id, sizeof tenant->id))
        && s_valid_plan_id (tenant->plan, strnlen (tenant->plan, sizeof tenant->plan))
        && tenant->anchor >= 1 && tenant->anchor <= SB_QUOTA_MAX_ANCHOR
        && tenant->period >= 0 && (uint64_t) tenant->period <= S_MAX_UNIX_S
        && tenant->used <= SB_MAX_QUOTA_VALUE;
}

static bool
s_valid_usage (const sb_usage_entry_t *entry)
{
    if (!s_valid_tenant (entry->tenant, strnlen (entry->tenant, sizeof entry->tenant))
    ||  entry->period < 0 || (uint64_t) entry->period > S_MAX_UNIX_S
    ||  entry->minute < 0 || (uint64_t) entry->minute > S_MAX_UNIX_S
    ||  entry->calls > SB_MAX_QUOTA_VALUE)
        return false;
    for (int i = 0; i < SB_REFUSAL_COUNT; i++)
        if (entry->refused [i] > SB_MAX_QUOTA_VALUE)
            return false;
    return true;
}


//  --------------------------------------------------------------------------
//  Encoding

static void
s_pack_key (msgpack_packer *pk, const char *key)
{
    size_t len = strlen (key);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, key, len);
}

static void
s_pack_str_kv (msgpack_packer *pk, const char *key, const char *value)
{
    s_pack_key (pk, key);
    s_pack_key (pk, value);
}

static void
s_pack_uint_kv (msgpack_packer *pk, const char *key, uint64_t value)
{
    s_pack_key (pk, key);
    msgpack_pack_uint64 (pk, value);
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

zframe_t *
sb_quota_limits_encode (const sb_quota_entry_t *entries, size_t count)
{
    if (count > SB_QUOTA_MAX_ENTRIES || (count > 0 && !entries))
        return NULL;
    for (size_t i = 0; i < count; i++)
        if (entries [i].is_plan? !s_valid_plan (&entries [i].plan)
                               : !s_valid_tenant_entry (&entries [i].tenant))
            return NULL;

    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, count);
    for (size_t i = 0; i < count; i++) {
        if (entries [i].is_plan) {
            const sb_quota_plan_t *plan = &entries [i].plan;
            msgpack_pack_map (&pk, 7);
            s_pack_str_kv (&pk, "k", "plan");
            s_pack_str_kv (&pk, "id", plan->id);
            s_pack_uint_kv (&pk, "rate", plan->rate);
            s_pack_uint_kv (&pk, "burst", plan->burst);
            s_pack_uint_kv (&pk, "in_flight", plan->in_flight);
            s_pack_uint_kv (&pk, "monthly", plan->monthly);
            s_pack_uint_kv (&pk, "weight", plan->weight);
        }
        else {
            const sb_quota_tenant_t *tenant = &entries [i].tenant;
            msgpack_pack_map (&pk, 6);
            s_pack_str_kv (&pk, "k", "tenant");
            s_pack_str_kv (&pk, "id", tenant->id);
            s_pack_str_kv (&pk, "plan", tenant->plan);
            s_pack_uint_kv (&pk, "anchor", tenant->anchor);
            s_pack_uint_kv (&pk, "period", (uint64_t) tenant->period);
            s_pack_uint_kv (&pk, "used", tenant->used);
        }
    }
    return s_frame_from (&sbuf);
}

zframe_t *
sb_quota_usage_encode (const sb_usage_entry_t *entries, size_t count)
{
    if (count > SB_QUOTA_MAX_ENTRIES || (count > 0 && !entries))
        return NULL;
    for (size_t i = 0; i < count; i++)
        if (!s_valid_usage (&entries [i]))
            return NULL;

    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, count);
    for (size_t i = 0; i < count; i++) {
        const sb_usage_entry_t *entry = &entries [i];
        msgpack_pack_map (&pk, 5);
        s_pack_str_kv (&pk, "tenant", entry->tenant);
        s_pack_uint_kv (&pk, "period", (uint64_t) entry->period);
        s_pack_uint_kv (&pk, "minute", (uint64_t) entry->minute);
        s_pack_uint_kv (&pk, "calls", entry->calls);
        //  Zero counts are left out: most flushes refuse nothing.
        uint32_t refused = 0;
        for (int r = 0; r < SB_REFUSAL_COUNT; r++)
            refused += entry->refused [r] > 0;
        s_pack_key (&pk, "refused");
        msgpack_pack_map (&pk, refused);
        for (int r = 0; r < SB_REFUSAL_COUNT; r++)
            if (entry->refused [r] > 0)
                s_pack_uint_kv (&pk, s_refusal_names [r], entry->refused [r]);
    }
    return s_frame_from (&sbuf);
}


//  --------------------------------------------------------------------------
//  Decoding

//  zframe_data takes a non-const frame though it only reads it; going
//  through uintptr_t is the cast -Wcast-qual lets pass (common/sb_attr.h's
//  sb_unconst, which proto/ cannot include).
static const uint8_t *
s_frame_bytes (const zframe_t *frame, size_t *size)
{
    zframe_t *mutable_frame = (zframe_t *) (uintptr_t) frame;
    *size = zframe_size (mutable_frame);
    return zframe_data (mutable_frame);
}

//  Unpacks the payload: exactly one array of at most `max` (and
//  SB_QUOTA_MAX_ENTRIES) maps. An empty frame is an empty array.
static int
s_unpack_entries (const zframe_t *payload, size_t max, msgpack_unpacked *unpacked,
                  const msgpack_object **items, size_t *count)
{
    *items = NULL;
    *count = 0;
    if (!payload)
        return -1;
    size_t size = 0;
    const uint8_t *data = s_frame_bytes (payload, &size);
    if (size == 0)
        return 0;
    if (size > SB_MAX_PAYLOAD_SIZE || sb_msgpack_check (data, size))
        return -1;
    size_t offset = 0;
    if (msgpack_unpack_next (unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size
    ||  unpacked->data.type != MSGPACK_OBJECT_ARRAY
    ||  unpacked->data.via.array.size > max
    ||  unpacked->data.via.array.size > SB_QUOTA_MAX_ENTRIES)
        return -1;
    *items = unpacked->data.via.array.ptr;
    *count = unpacked->data.via.array.size;
    for (size_t i = 0; i < *count; i++)
        if ((*items) [i].type != MSGPACK_OBJECT_MAP
        ||  (*items) [i].via.map.size > S_MAX_ENTRY_KEYS)
            return -1;
    return 0;
}

static bool
s_str_is (const msgpack_object *o, const char *name)
{
    size_t len = strlen (name);
    return o->type == MSGPACK_OBJECT_STR
        && o->via.str.size == len && memcmp (o->via.str.ptr, name, len) == 0;
}

//  The map's value for `key`: NULL when absent, and *dup set when the key
//  is there more than once (malformed).
static const msgpack_object *
s_find (const msgpack_object *map, const char *key, bool *dup)
{
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (s_str_is (&kv->key, key)) {
            if (found)
                *dup = true;
            found = &kv->val;
        }
    }
    return found;
}

//  Every key of an entry must be a string.
static int
s_check_keys (const msgpack_object *map)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (map->via.map.ptr [i].key.type != MSGPACK_OBJECT_STR)
            return -1;
    return 0;
}

//  A required unsigned value of `key`, 0..max.
static int
s_get_uint (const msgpack_object *map, const char *key, uint64_t max, uint64_t *out)
{
    bool dup = false;
    const msgpack_object *o = s_find (map, key, &dup);
    if (!o || dup || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return -1;
    *out = o->via.u64;
    return 0;
}

//  A required string of `key` that `valid` accepts, copied into `out`
//  (room for SB_MAX_TENANT_LEN + 1 or SB_MAX_PLAN_LEN + 1 bytes, which
//  the validators keep to).
static int
s_get_str (const msgpack_object *map, const char *key,
           bool (*valid) (const char *, size_t), char *out)
{
    bool dup = false;
    const msgpack_object *o = s_find (map, key, &dup);
    if (!o || dup || o->type != MSGPACK_OBJECT_STR || !valid (o->via.str.ptr, o->via.str.size))
        return -1;
    memcpy (out, o->via.str.ptr, o->via.str.size);
    out [o->via.str.size] = 0;
    return 0;
}

static int
s_decode_plan (const msgpack_object *map, sb_quota_plan_t *plan)
{
    uint64_t rate = 0, burst = 0, in_flight = 0, monthly = 0, weight = 0;
    if (s_get_str (map, "id", s_valid_plan_id, plan->id)
    ||  s_get_uint (map, "rate", SB_QUOTA_MAX_RATE, &rate)
    ||  s_get_uint (map, "burst", SB_QUOTA_MAX_BURST, &burst)
    ||  s_get_uint (map, "in_flight", SB_QUOTA_MAX_IN_FLIGHT, &in_flight)
    ||  s_get_uint (map, "monthly", SB_MAX_QUOTA_VALUE, &monthly)
    ||  s_get_uint (map, "weight", SB_QUOTA_MAX_WEIGHT, &weight))
        return -1;
    plan->rate = (uint32_t) rate;
    plan->burst = (uint32_t) burst;
    plan->in_flight = (uint32_t) in_flight;
    plan->monthly = monthly;
    plan->weight = (uint32_t) weight;
    return s_valid_plan (plan)? 0: -1;      //  weight ≥ 1, burst with a rate
}

static int
s_decode_tenant (const msgpack_object *map, sb_quota_tenant_t *tenant)
{
    uint64_t anchor = 0, period = 0, used = 0;
    if (s_get_str (map, "id", s_valid_tenant, tenant->id)
    ||  s_get_str (map, "plan", s_valid_plan_id, tenant->plan)
    ||  s_get_uint (map, "anchor", SB_QUOTA_MAX_ANCHOR, &anchor)
    ||  s_get_uint (map, "period", S_MAX_UNIX_S, &period)
    ||  s_get_uint (map, "used", SB_MAX_QUOTA_VALUE, &used))
        return -1;
    tenant->anchor = (uint32_t) anchor;
    tenant->period = (int64_t) period;
    tenant->used = used;
    return s_valid_tenant_entry (tenant)? 0: -1;    //  anchor ≥ 1
}

int
sb_quota_limits_decode (const zframe_t *payload, sb_quota_entry_t *entries, size_t max,
                        size_t *count)
{
    *count = 0;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *items = NULL;
    size_t found = 0;
    size_t kept = 0;
    int rc = s_unpack_entries (payload, max, &unpacked, &items, &found);
    for (size_t i = 0; rc == 0 && i < found; i++) {
        const msgpack_object *map = &items [i];
        sb_quota_entry_t *entry = &entries [kept];
        memset (entry, 0, sizeof *entry);
        bool dup = false;
        const msgpack_object *kind = s_find (map, "k", &dup);
        if (s_check_keys (map) || !kind || dup || kind->type != MSGPACK_OBJECT_STR)
            rc = -1;
        else
        if (s_str_is (kind, "plan")) {
            entry->is_plan = true;
            rc = s_decode_plan (map, &entry->plan);
            kept++;
        }
        else
        if (s_str_is (kind, "tenant")) {
            rc = s_decode_tenant (map, &entry->tenant);
            kept++;
        }
        //  else: a kind a newer quota service sends; this revision skips it
    }
    msgpack_unpacked_destroy (&unpacked);
    if (rc == 0)
        *count = kept;
    return rc;
}

//  "refused": optional, a map of reason names to counts; an unknown reason
//  or one named twice is malformed.
static int
s_decode_refused (const msgpack_object *map, uint64_t *refused)
{
    bool dup = false;
    const msgpack_object *o = s_find (map, "refused", &dup);
    if (!o)
        return 0;
    if (dup || o->type != MSGPACK_OBJECT_MAP || o->via.map.size > SB_REFUSAL_COUNT)
        return -1;
    bool seen [SB_REFUSAL_COUNT] = { false };
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr [i];
        int reason = -1;
        for (int r = 0; r < SB_REFUSAL_COUNT && kv->key.type == MSGPACK_OBJECT_STR; r++)
            if (s_str_is (&kv->key, s_refusal_names [r]))
                reason = r;
        if (reason < 0 || seen [reason]
        ||  kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER || kv->val.via.u64 > SB_MAX_QUOTA_VALUE)
            return -1;
        seen [reason] = true;
        refused [reason] = kv->val.via.u64;
    }
    return 0;
}

int
sb_quota_usage_decode (const zframe_t *payload, sb_usage_entry_t *entries, size_t max,
                       size_t *count)
{
    *count = 0;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    const msgpack_object *items = NULL;
    size_t found = 0;
    int rc = s_unpack_entries (payload, max, &unpacked, &items, &found);
    for (size_t i = 0; rc == 0 && i < found; i++) {
        const msgpack_object *map = &items [i];
        sb_usage_entry_t *entry = &entries [i];
        memset (entry, 0, sizeof *entry);
        uint64_t period = 0, minute = 0;
        if (s_check_keys (map)
        ||  s_get_str (map, "tenant", s_valid_tenant, entry->tenant)
        ||  s_get_uint (map, "period", S_MAX_UNIX_S, &period)
        ||  s_get_uint (map, "minute", S_MAX_UNIX_S, &minute)
        ||  s_get_uint (map, "calls", SB_MAX_QUOTA_VALUE, &entry->calls)
        ||  s_decode_refused (map, entry->refused))
            rc = -1;
        entry->period = (int64_t) period;
        entry->minute = (int64_t) minute;
    }
    msgpack_unpacked_destroy (&unpacked);
    if (rc == 0)
        *count = found;
    return rc;
}


//  --------------------------------------------------------------------------
//  Billing periods: proleptic Gregorian calendar arithmetic in UTC, with no
//  libc time zone or locale involved (H. Hinnant's days_from_civil and
//  civil_from_days, http://howardhinnant.github.io/date_algorithms.html).

//  Days since 1970-01-01 of year y, month m (1..12), day d.
static int64_t
s_days_from_civil (int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0? y: y - 399) / 400;
    int64_t yoe = y - era * 400;                                    //  [0, 399]
    int64_t doy = (153 * (m > 2? m - 3: m + 9) + 2) / 5 + d - 1;    //  [0, 365]
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            //  [0, 146096]
    return era * 146097 + doe - 719468;
}

//  The civil date of `days` since 1970-01-01.
static void
s_civil_from_days (int64_t days, int64_t *y, int64_t *m, int64_t *d)
{
    days += 719468;
    int64_t era = (days >= 0? days: days - 146096) / 146097;
    int64_t doe = days - era * 146097;                                  //  [0, 146096]
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; //  [0, 399]
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              //  [0, 365]
    int64_t mp = (5 * doy + 2) / 153;                                   //  [0, 11]
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10? mp + 3: mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

void
sb_quota_period (int64_t now_s, uint32_t anchor, int64_t *start, int64_t *end)
{
    //  Beyond ±2^53 s (285 million years) the products below could overflow.
    if (now_s > (int64_t) S_MAX_UNIX_S)
        now_s = (int64_t) S_MAX_UNIX_S;
    if (now_s < -(int64_t) S_MAX_UNIX_S)
        now_s = -(int64_t) S_MAX_UNIX_S;
    if (anchor == 0)
        anchor = 1;             //  no anchor known: calendar months
    if (anchor > SB_QUOTA_MAX_ANCHOR)
        anchor = SB_QUOTA_MAX_ANCHOR;   //  day 29..31 is not in every month
    int64_t days = now_s / S_SECONDS_PER_DAY;
    if (now_s % S_SECONDS_PER_DAY < 0)
        days--;                 //  floor, for instants before 1970
    int64_t y, m, d;
    s_civil_from_days (days, &y, &m, &d);
    if (d < (int64_t) anchor) {
        //  Before this month's billing day: the period began last month.
        m--;
        if (m == 0) {
            m = 12;
            y--;
        }
    }
    int64_t next_y = m == 12? y + 1: y;
    int64_t next_m = m == 12? 1: m + 1;
    *start = s_days_from_civil (y, m, anchor) * S_SECONDS_PER_DAY;
    *end = s_days_from_civil (next_y, next_m, anchor) * S_SECONDS_PER_DAY;
}
