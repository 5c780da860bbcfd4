/*  gateway/sb_task.c — tasks/get, tasks/update and tasks/cancel (the tasks
    extension, SEP-2663), answered from the task store: the `task` worker
    role, reached through the broker like any job. No task state lives
    here, so any gateway answers for any task; the store checks that the
    task is the token's tenant's and subject's (another's is "unknown").

    A request waits for the store with a small object in the h2o request's
    pool: if the client leaves first, the store's answer is dropped.
    tasks/update may hand back a round to run (the last question answered):
    this gateway then runs it (sb_call_task_resume). tasks/cancel also tells
    the gateway running the task's job, here or elsewhere (BROADCAST
    task_cancelled), to stop it. */
#include "gateway/sb_gateway_int.h"
#include "gateway/sb_cluster.h"
#include "common/sb_crypto.h"
#include "common/sb_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

#define S_PROMOTE_METHOD    "switchboard/promote"
#define S_TASK_ID_BYTES     16      /* random bytes in a taskId */

typedef struct _s_ask_t s_ask_t;

/*  Lives in the request's pool; tells the waiting ask its request is gone. */
typedef struct {
    s_ask_t *ask;                       /* NULL once answered */
} s_ask_ref_t;

/*  One tasks/… request waiting for the store. */
struct _s_ask_t {
    sb_gateway_t *gateway;              /* owner */
    h2o_req_t *req;                     /* the pending request */
    s_ask_ref_t *ref;                   /* its pool object */
    sb_broker_call_t *handle;           /* the store's job */
    json_t *id;                         /* JSON-RPC id to answer with (owned) */
    const char *method;                 /* tasks/get, tasks/update or tasks/cancel (static) */
    char tenant [SB_MAX_TENANT_LEN + 1];
    char subject [sizeof ((sb_token_claims_t *) 0)->subject];
    char task_id [SB_MAX_TASK_ID_TEXT + 1];
};

int
sb_task_store_send (sb_gateway_t *self, const char *tenant, const sb_job_t *job,
                    sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **handle_p)
{
    zframe_t *payload = sb_job_encode (job);
    if (!payload)
        return SB_BROKER_INVALID;
    //  Every store operation is safe to run again: create carries its
    //  taskId, finish and update apply to one status only.
    return sb_broker_client_request (self->broker, "task", tenant, SB_FLAG_RETRY_SAFE, &payload,
                                     cb, arg, handle_p);
}

json_t *
sb_task_store_answer (sb_status_t status, const uint8_t *payload, size_t size)
{
    json_t *detail = NULL;
    if (status == SB_STATUS_OK) {
        sb_job_result_t result = { 0 };
        if (sb_job_result_decode (payload, size, &result) == 0 && result.result)
            detail = json_loads (result.result, 0, NULL);
        sb_job_result_clear (&result);
    }
    if (detail && !json_is_object (detail)) {
        json_decref (detail);
        detail = NULL;
    }
    return detail;
}

bool
sb_task_is_promote (const uint8_t *payload, size_t size)
{
    sb_job_result_t result = { 0 };
    bool promote = false;
    //  A cheap look first: most notifications are progress and logs.
    static const char needle [] = S_PROMOTE_METHOD;
    if (payload && size >= sizeof needle - 1
    &&  memmem (payload, size, needle, sizeof needle - 1)
    &&  sb_job_result_decode (payload, size, &result) == 0 && result.result) {
        json_t *note = json_loads (result.result, 0, NULL);
        promote = json_is_object (note) && !json_object_get (note, "id")
               && json_is_string (json_object_get (note, "method"))
               && strcmp (json_string_value (json_object_get (note, "method")), S_PROMOTE_METHOD) == 0;
        json_decref (note);
    }
    sb_job_result_clear (&result);
    return promote;
}

int
sb_task_new_id (char id [SB_MAX_TASK_ID_TEXT + 1])
{
    uint8_t bytes [S_TASK_ID_BYTES];
    if (sb_crypto_random (bytes, sizeof bytes))
        return -1;
    char *text = sb_base64url_encode (bytes, sizeof bytes);
    if (!text)
        return -1;
    snprintf (id, SB_MAX_TASK_ID_TEXT + 1, "%s", text);
    free (text);
    return 0;
}

static void
s_ask_free (s_ask_t *ask)
{
    json_decref (ask->id);
    free (ask);
}

//  The request went away before the store answered.
static void
s_on_req_disposed (void *p)
{
    s_ask_ref_t *ref = p;
    s_ask_t *ask = ref->ask;
    if (!ask)
        return;
    sb_broker_client_cancel (ask->gateway->broker, &ask->handle);
    s_ask_free (ask);
}

//  Sends the JSON-RPC `body` (taken) as the answer, with 2026-07-28's
//  resultType and serverInfo on a result.
static void
s_answer (s_ask_t *ask, char *body)
{
    body = body? sb_mcp_modern_reply (body, SB_VERSION, false): NULL;
    if (body)
        sb_http_send_json (ask->req, 200, body);
    else
        sb_http_send_error (ask->req, 500, "internal", "The reply could not be built.");
    free (body);
}

//  Tells every gateway (this one first) that the task was cancelled, so
//  the one running its job stops it.
static void
s_spread_cancel (s_ask_t *ask)
{
    sb_gateway_t *self = ask->gateway;
    sb_call_task_cancelled (self, ask->tenant, ask->task_id);
    int rc = sb_broker_client_broadcast (self->broker, ask->tenant, SB_TOPIC_TASK_CANCELLED,
                                         ask->task_id, strlen (ask->task_id));
    if (rc != SB_BROKER_SENT)
        sb_log_warn ("broadcast_not_sent", "topic=" SB_TOPIC_TASK_CANCELLED " tenant=%s rc=%d: "
                     "a job running elsewhere goes on to its end (the task stays cancelled)",
                     ask->tenant, rc);
}

//  The store answered.
static void
s_on_store (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_ask_t *ask = arg;
    ask->handle = NULL;
    ask->ref->ask = NULL;
    json_t *detail = sb_task_store_answer (status, payload, size);
    char *body = NULL;
    if (!detail) {
        sb_log_warn ("task_store_failed", "method=%s tenant=%s status=%s", ask->method, ask->tenant,
                     sb_status_name (status));
        body = sb_rpc_error (ask->id, SB_RPC_INTERNAL_ERROR, "The task store is unavailable right now; "
                             "try again shortly (the task is not lost).");
    }
    else
    if (!json_is_true (json_object_get (detail, "found")))
        body = sb_rpc_error (ask->id, SB_RPC_INVALID_PARAMS, "Unknown task: no task has this taskId "
                             "(it may have expired).");
    else
    if (strcmp (ask->method, "tasks/get") == 0) {
        json_t *task = json_object_get (detail, "task");
        body = json_is_object (task)? sb_rpc_result (ask->id, json_incref (task))
                                    : sb_rpc_error (ask->id, SB_RPC_INTERNAL_ERROR, "Internal error");
    }
    else {
        //  tasks/update and tasks/cancel: an empty acknowledgement.
        body = sb_rpc_result (ask->id, json_object ());
        if (strcmp (ask->method, "tasks/cancel") == 0)
            s_spread_cancel (ask);
        else {
            json_t *resume = json_object_get (detail, "resume");
            if (json_is_object (resume))
                sb_call_task_resume (ask->gateway, ask->tenant, ask->subject, ask->task_id, resume);
        }
    }
    s_answer (ask, body);
    json_decref (detail);
    s_ask_free (ask);
}

void
sb_task_request (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                 sb_mcp_outcome_t *outcome)
{
    s_ask_t *ask = calloc (1, sizeof *ask);
    if (!ask) {
        sb_http_send_error (req, 500, "internal", "Out of memory.");
        return;
    }
    ask->gateway = self;
    ask->req = req;
    ask->id = outcome->id;
    outcome->id = NULL;
    ask->method = outcome->task_method;
    snprintf (ask->tenant, sizeof ask->tenant, "%s", ctx->claims.tenant);
    snprintf (ask->subject, sizeof ask->subject, "%s", ctx->claims.subject);
    snprintf (ask->task_id, sizeof ask->task_id, "%s", outcome->task_id);
    char *responses = outcome->input_responses? json_dumps (outcome->input_responses, JSON_COMPACT)
                                              : NULL;
    sb_job_t job = {
        .op = (char *) (strcmp (ask->method, "tasks/get") == 0? "task/get":
                        strcmp (ask->method, "tasks/update") == 0? "task/update": "task/cancel"),
        .task = ask->task_id, .subject = ask->subject, .data = responses,
    };
    int rc = outcome->input_responses && !responses? SB_BROKER_INVALID
           : sb_task_store_send (self, ask->tenant, &job, s_on_store, ask, &ask->handle);
    free (responses);
    if (rc != SB_BROKER_SENT) {
        sb_log_warn ("task_store_not_sent", "method=%s rc=%d", ask->method, rc);
        char *body = rc == SB_BROKER_INVALID
                   ? sb_rpc_error (ask->id, SB_RPC_INVALID_PARAMS, "The inputResponses are too large.")
                   : sb_rpc_error (ask->id, SB_RPC_INTERNAL_ERROR, "The gateway is too busy to reach "
                                   "the task store; try again shortly.");
        s_answer (ask, body);
        s_ask_free (ask);
        return;
    }
    ask->ref = h2o_mem_alloc_shared (&req->pool, sizeof (s_ask_ref_t), s_on_req_disposed);
    ask->ref->ask = ask;
}
