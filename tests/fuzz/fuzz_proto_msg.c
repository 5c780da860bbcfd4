/*  tests/fuzz/fuzz_proto_msg.c — fuzz target for every decoder in proto/:
    the header decoder, the two-frame message decoder (the first input byte
    chooses where the header frame ends), and the job / result payloads.
    Any crash, leak or sanitizer report is a bug; return values are checked
    for consistency (a decoded message must re-encode and decode the same). */
#include "sb_fuzz.h"
#include "sb_job.h"
#include "sb_msg.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

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

    sb_job_result_t result = { 0 };
    if (sb_job_result_decode (data, size, &result) == 0)
        assert (result.result);
    sb_job_result_clear (&result);
    return 0;
}
