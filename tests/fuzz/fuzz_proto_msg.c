/*  tests/fuzz/fuzz_proto_msg.c — fuzz target for every decoder in proto/:
    the header decoder, the two-frame message decoder (the first input byte
    chooses where the header frame ends), the job / result payloads, and
    the LIMITS / USAGE payloads (sb_quota_msg).
    Any crash, leak or sanitizer report is a bug; return values are checked
    for consistency (a decoded message must re-encode and decode the same). */
#include "sb_fuzz.h"
#include "sb_job.h"
#include "sb_msg.h"
#include "sb_quota_msg.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static sb_quota_entry_t s_entries [SB_QUOTA_MAX_ENTRIES];
static sb_quota_entry_t s_again [SB_QUOTA_MAX_ENTRIES];
static sb_usage_entry_t s_usage [SB_QUOTA_MAX_ENTRIES];
static sb_usage_entry_t s_usage_again [SB_QUOTA_MAX_ENTRIES];

//  LIMITS and USAGE payloads: whatever decodes re-encodes to the same entries.
static void
s_fuzz_quota (const uint8_t *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    size_t count = 0, again = 0;
    if (sb_quota_limits_decode (frame, s_entries, SB_QUOTA_MAX_ENTRIES, &count) == 0) {
        zframe_t *copy = sb_quota_limits_encode (s_entries, count);
        assert (copy);
        int rc = sb_quota_limits_decode (copy, s_again, SB_QUOTA_MAX_ENTRIES, &again);
        assert (rc == 0 && again == count);
        for (size_t i = 0; i < count; i++) {
            assert (s_again [i].is_plan == s_entries [i].is_plan);
            if (s_entries [i].is_plan) {
                const sb_quota_plan_t *a = &s_again [i].plan, *b = &s_entries [i].plan;
                assert (strcmp (a->id, b->id) == 0);
                assert (a->rate == b->rate && a->burst == b->burst);
                assert (a->in_flight == b->in_flight && a->monthly == b->monthly);
                assert (a->weight == b->weight);
            }
            else {
                assert (strcmp (s_again [i].tenant.id, s_entries [i].tenant.id) == 0);
                assert (strcmp (s_again [i].tenant.plan, s_entries [i].tenant.plan) == 0);
                assert (s_again [i].tenant.anchor == s_entries [i].tenant.anchor);
                assert (s_again [i].tenant.period == s_entries [i].tenant.period);
                assert (s_again [i].tenant.used == s_entries [i].tenant.used);
            }
        }
        zframe_destroy (&copy);
    }
    else
        assert (count == 0);
    if (sb_quota_usage_decode (frame, s_usage, SB_QUOTA_MAX_ENTRIES, &count) == 0) {
        zframe_t *copy = sb_quota_usage_encode (s_usage, count);
        assert (copy);
        int rc = sb_quota_usage_decode (copy, s_usage_again, SB_QUOTA_MAX_ENTRIES, &again);
        assert (rc == 0 && again == count);
        for (size_t i = 0; i < count; i++) {
            const sb_usage_entry_t *a = &s_usage_again [i], *b = &s_usage [i];
            assert (strcmp (a->tenant, b->tenant) == 0);
            assert (a->period == b->period && a->minute == b->minute && a->calls == b->calls);
            for (int r = 0; r < SB_REFUSAL_COUNT; r++)
                assert (a->refused [r] == b->refused [r]);
        }
        zframe_destroy (&copy);
    }
    else
        assert (count == 0);
    zframe_destroy (&frame);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    sb_msg_t msg = { 0 };
    if (sb_msg_decode_header (data, size, &msg) == SB_MSG_OK) {
        //  Whatever decodes must survive a round trip unchanged.
        sb_msg_t copy = msg;
        copy.payload = NULL;
        zmsg_t *zmsg = sb_msg_encode (&copy);
        assert (zmsg);
        sb_msg_t again = { 0 };
        int rc = sb_msg_decode (&zmsg, &again);
        assert (rc == SB_MSG_OK);
        assert (again.command == msg.command);
        assert (strcmp (again.corr_id, msg.corr_id) == 0);
        assert (again.timeout_ms == msg.timeout_ms);
        assert (again.ask_id == msg.ask_id);
        assert (strcmp (again.tenant, msg.tenant) == 0);
        assert (strcmp (again.topic, msg.topic) == 0);
        assert (again.retry_after_ms == msg.retry_after_ms);
        assert (strcmp (again.parent, msg.parent) == 0);
        assert (again.cost == msg.cost);
        assert (strcmp (again.conn, msg.conn) == 0);
        assert (again.budget_limit == msg.budget_limit);
        assert (again.budget_window_s == msg.budget_window_s);
        assert (strcmp (again.quota.reason, msg.quota.reason) == 0);
        assert (strcmp (again.quota.scope, msg.quota.scope) == 0);
        assert (again.quota.limit == msg.quota.limit);
        assert (again.quota.remaining == msg.quota.remaining);
        assert (again.quota.reset_s == msg.quota.reset_s);
        assert (again.quota.window_s == msg.quota.window_s);
        assert (again.seq == msg.seq);
        assert (again.snapshot == msg.snapshot);
        assert (again.want == msg.want);
        assert (strcmp (again.broker_id, msg.broker_id) == 0);
        sb_msg_reset (&again);
    }
    sb_msg_reset (&msg);

    if (size > 0) {
        size_t split = data [0] % (size);
        zmsg_t *zmsg = zmsg_new ();
        zmsg_addmem (zmsg, data + 1, split);
        if (split + 1 < size)
            zmsg_addmem (zmsg, data + 1 + split, size - 1 - split);
        int rc = sb_msg_decode (&zmsg, &msg);
        assert (rc == SB_MSG_OK || rc == SB_MSG_MALFORMED || rc == SB_MSG_BAD_VERSION);
        assert (zmsg == NULL);
        sb_msg_reset (&msg);
    }

    sb_job_t job = { 0 };
    if (sb_job_decode (data, size, &job) == 0)
        assert (job.op && *job.op);
    sb_job_clear (&job);

    s_fuzz_quota (data, size);

    sb_job_result_t result = { 0 };
    if (sb_job_result_decode (data, size, &result) == 0)
        assert (result.result);
    sb_job_result_clear (&result);
    return 0;
}
