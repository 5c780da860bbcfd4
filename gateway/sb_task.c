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
    task_cancelled), to stop it.

    Listen streams that follow taskIds are kept here too (a watch per
    stream). When a gateway writes a task's status (its job's outcome,
    tasks/update, tasks/cancel) it says so to every gateway (BROADCAST
    task_changed); each then asks the store for the task as each watching
    stream's subject, and sends what tasks/get would answer as
    notifications/tasks. The store's per-subject check is what keeps
    another's task off a stream. */
#include "sb_gateway_int.h"
#include "sb_attr.h"
#include "sb_cluster.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

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
    static const char needle [] = SB_PAYLOAD_PROMOTE_METHOD;
    if (payload && size >= sizeof needle - 1
    &&  memmem (payload, size, needle, sizeof needle - 1)
    &&  sb_job_result_decode (payload, size, &result) == 0 && result.result)
        promote = sb_payload_is_promote (result.result, strlen (result.result));
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
    body = body? sb_mcp_stateless_reply (body, SB_VERSION, false): NULL;
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
        sb_task_changed (ask->gateway, ask->tenant, ask->task_id, true);
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
    ask->id = outcome->as.task.id;
    outcome->as.task.id = NULL;
    ask->method = outcome->as.task.method;
    snprintf (ask->tenant, sizeof ask->tenant, "%s", ctx->claims.tenant);
    snprintf (ask->subject, sizeof ask->subject, "%s", ctx->claims.subject);
    snprintf (ask->task_id, sizeof ask->task_id, "%s", outcome->as.task.task_id);
    char *responses = outcome->as.task.input_responses? json_dumps (outcome->as.task.input_responses, JSON_COMPACT)
                                              : NULL;
    sb_job_t job = {
        .op = (char *) (strcmp (ask->method, "tasks/get") == 0? "task/get":
                        strcmp (ask->method, "tasks/update") == 0? "task/update": "task/cancel"),
        .task = ask->task_id, .subject = ask->subject, .data = responses,
    };
    int rc = outcome->as.task.input_responses && !responses? SB_BROKER_INVALID
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

//  ---------------------------------------------------------------------------
//  Watches: listen streams following taskIds

/*  One listen stream's taskIds. */
typedef struct {
    uint64_t listener;                  /* sb_subs_listen_number, looked up again to send */
    char tenant [SB_MAX_TENANT_LEN + 1];
    char subject [sizeof ((sb_token_claims_t *) 0)->subject];
    size_t count;
    char ids [SB_MAX_LISTEN_TASKS][SB_MAX_TASK_ID_TEXT + 1];
} s_watch_t;

/*  One tasks/get the gateway makes for a watching stream. */
typedef struct {
    sb_gateway_t *gateway;
    uint64_t listener;
} s_peek_t;

static void
s_watch_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  The store's answer for a watching stream: notifications/tasks with the
//  task, if it is still the stream's and the stream is still open.
static void
s_on_peek (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_peek_t *peek = arg;
    sb_gateway_t *self = peek->gateway;
    json_t *detail = sb_task_store_answer (status, payload, size);
    json_t *task = json_object_get (detail, "task");
    sb_subs_listener_t *listener = sb_subs_listen_lookup (self->subs, peek->listener);
    sb_sse_t *stream = listener? sb_subs_listen_stream (listener): NULL;
    char *text = stream && json_is_true (json_object_get (detail, "found")) && json_is_object (task)
               ? sb_mcp_listen_task_note (sb_subs_listen_id (listener), task): NULL;
    if (text) {
        if (sb_sse_send (stream, text))
            sb_log_debug ("task_note_lost", "out of memory: a listen stream misses a task's state");
    }
    else
    if (status != SB_STATUS_OK)
        sb_log_debug ("task_note_lost", "status=%s: a listen stream misses a task's state",
                      sb_status_name (status));
    free (text);
    json_decref (detail);
    free (peek);
}

//  Asks the store for task `task_id` as `watch`'s subject, for its stream.
static void
s_peek (sb_gateway_t *self, const s_watch_t *watch, const char *task_id)
{
    s_peek_t *peek = calloc (1, sizeof *peek);
    if (!peek)
        return;
    peek->gateway = self;
    peek->listener = watch->listener;
    sb_job_t job = { .op = "task/get", .task = sb_unconst (task_id),
                     .subject = sb_unconst (watch->subject) };
    sb_broker_call_t *handle = NULL;
    if (sb_task_store_send (self, watch->tenant, &job, s_on_peek, peek, &handle) != SB_BROKER_SENT) {
        sb_log_warn ("task_note_lost", "tenant=%s: the task store is out of reach; a listen stream "
                     "misses a task's state", watch->tenant);
        free (peek);
    }
}

//  Forgets the watches whose stream has gone, so the list holds at most
//  one per open listen stream. (A delete moves the cursor, so each starts
//  the walk again; they are few.)
static void
s_watch_purge (sb_gateway_t *self)
{
    zlistx_t *list = self->task_watches;
    s_watch_t *watch = zlistx_first (list);
    while (watch)
        if (!sb_subs_listen_lookup (self->subs, watch->listener)) {
            zlistx_delete (list, zlistx_cursor (list));
            watch = zlistx_first (list);
        }
        else
            watch = zlistx_next (list);
}

void
sb_task_watch (sb_gateway_t *self, uint64_t number, const char *tenant, const char *subject,
               const json_t *task_ids)
{
    zlistx_set_destructor (self->task_watches, s_watch_free);  //  the same each time
    s_watch_purge (self);
    s_watch_t *watch = calloc (1, sizeof *watch);
    if (!watch || !zlistx_add_end (self->task_watches, watch)) {
        free (watch);
        sb_log_warn ("task_watch_lost", "out of memory: a listen stream gets no task states");
        return;
    }
    watch->listener = number;
    snprintf (watch->tenant, sizeof watch->tenant, "%s", tenant);
    snprintf (watch->subject, sizeof watch->subject, "%s", subject);
    size_t i;
    json_t *task_id;
    json_array_foreach (task_ids, i, task_id)
        if (watch->count < SB_MAX_LISTEN_TASKS && json_string_length (task_id) <= SB_MAX_TASK_ID_TEXT)
            snprintf (watch->ids [watch->count++], SB_MAX_TASK_ID_TEXT + 1, "%s",
                      json_string_value (task_id));
    for (i = 0; i < watch->count; i++)
        s_peek (self, watch, watch->ids [i]);      //  the state now
}

void
sb_task_changed (sb_gateway_t *self, const char *tenant, const char *task_id, bool spread)
{
    if (spread) {
        int rc = sb_broker_client_broadcast (self->broker, tenant, SB_TOPIC_TASK_CHANGED, task_id,
                                             strlen (task_id));
        if (rc != SB_BROKER_SENT)
            sb_log_warn ("broadcast_not_sent", "topic=" SB_TOPIC_TASK_CHANGED " tenant=%s rc=%d: "
                         "listen streams on other gateways miss a task's state", tenant, rc);
    }
    s_watch_purge (self);
    zlistx_t *list = self->task_watches;
    for (s_watch_t *watch = zlistx_first (list); watch; watch = zlistx_next (list))
        if (strcmp (watch->tenant, tenant) == 0)
            for (size_t i = 0; i < watch->count; i++)
                if (strcmp (watch->ids [i], task_id) == 0)
                    s_peek (self, watch, task_id);
}
