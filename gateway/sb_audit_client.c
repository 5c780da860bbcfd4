/*  gateway/sb_audit_client.c — refusals this gateway decides, sent to the
    audit log (sb_gateway_int.h, "Audit"). The token service writes the log
    (workers/sb_audit.c): the job is op audit/record, service `token`, for
    the tenant of the token that was refused, its data the action, the
    token's subject and a detail object (proto/PROTOCOL.md, "Audit
    records"). Nobody waits for it: a request that was refused has been
    answered already, and the reply only frees a slot. */
#include "sb_gateway_int.h"
#include "sb_job.h"
#include "sb_log.h"

#include <stdlib.h>

//  The reply of an audit/record job: nothing to answer, only a slot to free.
static void
s_on_recorded (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    (void) payload;
    (void) size;
    sb_gateway_t *self = arg;
    if (self->audits_pending > 0)
        self->audits_pending--;
    if (status != SB_STATUS_OK)
        sb_log_warn ("audit_not_recorded", "status=%d", (int) status);
}

//  Counts a refusal that is not sent; logs the first and one per
//  SB_AUDIT_DROP_LOG_EVERY after it.
static void
s_drop (sb_gateway_t *self, const char *action, const char *why)
{
    if (self->audits_dropped++ % SB_AUDIT_DROP_LOG_EVERY == 0)
        sb_log_warn ("audit_dropped", "action=%s reason=%s dropped=%llu", action, why,
                     (unsigned long long) self->audits_dropped);
}

void
sb_gateway_audit (sb_gateway_t *self, const sb_token_claims_t *claims, const char *action,
                  json_t *detail)
{
    if (!detail)
        detail = json_object ();
    if (self->audits_pending >= SB_MAX_AUDIT_PENDING) {
        json_decref (detail);
        s_drop (self, action, "pending");
        return;
    }
    json_t *data = json_pack ("{s:s, s:s, s:o}", "action", action, "subject", claims->subject,
                              "detail", detail);     //  takes detail, even on failure
    char *text = data? json_dumps (data, JSON_COMPACT): NULL;
    json_decref (data);
    sb_job_t job = { .op = "audit/record", .data = text };
    zframe_t *payload = text? sb_job_encode (&job): NULL;
    free (text);
    if (!payload) {
        s_drop (self, action, "encode");
        return;
    }
    //  Not SB_FLAG_RETRY_SAFE: a job run twice would be two rows.
    sb_broker_call_t *call = NULL;
    int rc = sb_broker_client_request (self->broker, "token", claims->tenant, 0, &payload,
                                       s_on_recorded, self, &call);
    if (rc != SB_BROKER_SENT) {
        s_drop (self, action, "broker");
        return;
    }
    self->audits_pending++;
    self->audits_sent++;
}
