/*  workers/sb_audit.c — op audit/record of the token role: a refusal a
    gateway decided about an authenticated caller (another's session, a
    token for another audience, a scope the token lacks, an access token
    on the admin API), written to the
    audit log under the tenant that attempted it, the token's subject as
    the actor (proto/PROTOCOL.md, "Audit records"). The gateway has no
    database and does not wait for the answer.

    Only the actions a gateway decides are taken (s_actions): a job cannot
    write task_created, token_issued or any other action the services
    write themselves. A tenant that `tenants` does not list (a token minted
    by sb-token for any tenant) cannot own a row: the record goes to the
    process log instead, and the job still succeeds ({"recorded": false}). */
#include "sb_token_int.h"
#include "sb_log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_AUDIT_DETAIL     2048    /* bytes of a record's detail, as JSON text */
#define SB_MAX_AUDIT_SUBJECT    256     /* bytes of the subject (the actor) */

//  The actions a gateway may record (SB_AUDIT_* in gateway/sb_gateway_int.h).
static const char *s_actions [] = {
    "session_refused",          //  an Mcp-Session-Id of another user or tenant
    "audience_refused",         //  a token of a good signature for another resource
    "scope_refused",            //  403 insufficient_scope
    "admin_refused",            //  an access token on the admin API (401)
    NULL
};

static bool
s_allowed (const char *action)
{
    for (size_t i = 0; s_actions [i]; i++)
        if (strcmp (s_actions [i], action) == 0)
            return true;
    return false;
}

static void
s_on_recorded (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    (void) arg;
    const char *tenant = sb_worker_job_tenant (*job_p);
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("audit_failed", "tenant=%s: %s", tenant,
                     error? error: PQresultErrorMessage (res));
        sb_worker_job_fail (job_p, "the audit record could not be written");
        return;
    }
    bool recorded = strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    if (!recorded)
        sb_log_warn ("audit_tenant_unknown", "tenant=%s is not in tenants: a refusal "
                     "the gateway reported is logged here only", tenant);
    sb_worker_job_done (job_p, SB_STATUS_OK,
                        recorded? "{\"recorded\":true}": "{\"recorded\":false}");
}

void
sb_audit_record (sb_token_role_t *self, sb_worker_job_t *job)
{
    const char *data = sb_worker_job_spec (job)->data;
    json_t *doc = data? json_loads (data, JSON_REJECT_DUPLICATES, NULL): NULL;
    const char *action = json_string_value (json_object_get (doc, "action"));
    const char *subject = json_string_value (json_object_get (doc, "subject"));
    json_t *detail = json_object_get (doc, "detail");
    char *detail_text = NULL;
    const char *why = NULL;
    if (!json_is_object (doc))
        why = "audit/record: data must be a JSON object {action, subject, detail}";
    else
    if (!action || !s_allowed (action))
        why = "audit/record: the action is not one a gateway records";
    else
    if (!subject || !*subject || strlen (subject) > SB_MAX_AUDIT_SUBJECT)
        why = "audit/record: subject must be 1 to 256 bytes";
    else
    if (detail && !json_is_object (detail))
        why = "audit/record: detail must be a JSON object";
    else {
        detail_text = detail? json_dumps (detail, JSON_COMPACT): strdup ("{}");
        if (!detail_text)
            why = "out of memory";
        else
        if (strlen (detail_text) > SB_MAX_AUDIT_DETAIL)
            why = "audit/record: detail is larger than 2048 bytes";
    }
    if (why) {
        sb_log_warn ("audit_refused", "tenant=%s: %s", sb_worker_job_tenant (job), why);
        sb_worker_job_fail (&job, why);
    }
    else {
        const char *params [] = { sb_worker_job_tenant (job), subject, action, detail_text };
        //  Ends the job itself when it cannot run the statement.
        (void) sb_token_query (self, job, "SELECT audit_refusal ($1, $2, $3, $4::jsonb)", 4, params,
                               s_on_recorded, NULL, NULL);
    }
    free (detail_text);
    json_decref (doc);
}
