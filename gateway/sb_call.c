/*  gateway/sb_call.c — tool calls: the job sent to the broker, its REPLY,
    the notifications and questions relayed while it runs, its cancellation,
    and the routing of the client's answers.

    A tools/call keeps its h2o request pending until the broker's REPLY (or
    the local deadline) arrives. With a JSON response the request may vanish
    first (client gone, HTTP/2 stream reset): a small object in the
    request's pool, allocated with a dispose callback, tells us so, and the
    call is forgotten there (under 2025-06-18 and 2025-11-25 a disconnect is
    not a cancellation: no CANCEL). With an SSE response the call keeps
    running when the client leaves and its messages wait in the replay ring.
    Under 2026-07-28 closing the response, JSON or SSE, cancels the request:
    the gateway sends CANCEL and forgets the call (that revision has no
    resumption, so its events carry no IDs and are not kept). Such a call
    that asked for a stream (progress token, log level) gets one only with
    its first notification; one that ends before is answered as JSON, with
    the HTTP status its outcome needs.

    Each live call made in a session is also in the gateway's call_keys
    table under "<owner>\n<JSON-RPC id>", so that notifications/cancelled
    finds it. Several calls may share a key (a client that reuses an id
    while the first call runs): the table holds the newest, each call links
    to the next older one. A call without a session is not kept there:
    nothing could cancel it (sb_call_cancel), and a tenant's stateless
    clients, picking their ids independently, would share keys by the
    thousand.

    A 2026-07-28 call has no server requests. Its job carries the answers
    the client has given so far — those in params.inputResponses plus those
    a verified params.requestState brings back from earlier rounds — and
    the worker settles its questions against them (proto/PROTOCOL.md). A
    REPLY that is an input-required result goes to the client with a new
    requestState (sb_relay.h): the answers the job used and the next round
    number, signed for this tenant, user, tool and arguments. */
#include "sb_gateway_int.h"
#include "sb_attr.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_job.h"
#include "sb_ratelimit.h"

//  The job's capability bits are the session's: one table of meanings.
_Static_assert (SB_JOB_CAP_SAMPLING == SB_CLIENT_SAMPLING && SB_JOB_CAP_ELICITATION == SB_CLIENT_ELICITATION
                && SB_JOB_CAP_ROOTS == SB_CLIENT_ROOTS && SB_JOB_CAP_ELICIT_URL == SB_CLIENT_ELICIT_URL,
                "SB_JOB_CAP_* and SB_CLIENT_* must agree");

//  A connector's quota declarations travel in REQUEST as they are: one set of bounds.
_Static_assert (SB_MAX_TOOL_COST == SB_MAX_COST && SB_MAX_BUDGET_REQUESTS == SB_MAX_BUDGET_LIMIT
                && SB_MAX_BUDGET_WINDOW == SB_MAX_BUDGET_WINDOW_S,
                "connector/sb_connector.h and proto/sb_limits.h must agree on the quota bounds");

#define S_STATE_KEY_LABEL   "switchboard requestState key"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

typedef struct _s_call_t s_call_t;

/*  A call on its way to being a task. */
typedef enum {
    S_TASK_NONE = 0,        /* an ordinary call (or not promoted yet) */
    S_TASK_CREATING,        /* promoted: task/create is out; the client still waits */
    S_TASK_RUNNING,         /* a task: the client has its taskId; the RESULT goes to the store */
} s_task_state_t;

/*  Lives in the request's pool; its dispose callback runs when h2o frees
    the request, whether or not we answered it. */
typedef struct {
    s_call_t *call;                     /* the waiting call, NULL once answered */
} s_req_ref_t;

/*  One tools/call waiting for the broker. */
struct _s_call_t {
    sb_gateway_t *gateway;              /* owner */
    h2o_req_t *req;                     /* the pending HTTP request (JSON mode) */
    s_req_ref_t *ref;                   /* its pool object (JSON mode) */
    sb_sse_t *sse;                      /* the response stream (SSE mode), or NULL */
    json_t *id;                         /* JSON-RPC id to answer with */
    json_t *progress_token;             /* the request's _meta.progressToken, or NULL */
    sb_broker_call_t *handle;           /* in the broker client's table */
    char tenant [SB_MAX_TENANT_LEN + 1];            /* the token's tenant */
    char subject [sizeof ((sb_token_claims_t *) 0)->subject];   /* the token's subject (2026-07-28) */
    bool has_session;                   /* called in a session */
    unsigned caps;                      /* the session's SB_CLIENT_* bits */
    char level_key [2 * SB_HMAC_SHA256_LEN + 1];    /* the session's key in `levels` */
    char *key;                          /* in call_keys, or NULL */
    s_call_t *older;                    /* next call with the same key */
    sb_mcp_revision_t revision;         /* the revision the call speaks */
    int log_level;                      /* 2026-07-28: 1 + its _meta logLevel, 0: no log messages */
    json_t *answers;                    /* 2026-07-28: the answers the job carries (owned object) */
    char *args;                         /* 2026-07-28: the arguments, for the next requestState */
    const char *tool_name;              /* 2026-07-28: the tool (borrowed from the connector set) */
    sb_connectors_t *connectors;        /* a reference: keeps tool_name's set alive across a reload */
    uint32_t round;                     /* 2026-07-28: the round the job runs */
    bool stream_later;                  /* 2026-07-28: stream once there is something to stream */
    char owner [SB_MAX_OWNER_LEN + 1];  /* for that stream */
    bool task_capable;                  /* 2026-07-28: may become a task (the long deadline) */
    s_task_state_t task_state;          /* where it is on the way to being a task */
    char task_id [SB_MAX_TASK_ID_TEXT + 1];         /* its taskId once promoted */
    sb_broker_call_t *store;            /* task/create on its way to the store, or NULL */
    bool held;                          /* the job's REPLY came while task/create was out */
    sb_status_t held_status;            /* that REPLY */
    uint8_t *held_payload;              /* its payload (owned), or NULL */
    size_t held_size;
    bool quota_set;                     /* the REPLY carried a quota group (below) */
    sb_msg_quota_t quota;               /* the refusal (limited) or the rate policy at admission */
    uint32_t retry_after_ms;            /* the REPLY's retry advice */
};

//  ---------------------------------------------------------------------------
//  The table of calls by (owner, JSON-RPC id)

//  "<owner>\n<id as compact JSON>" (new string), or NULL.
static char *
s_key (const char *owner, const json_t *id)
{
    char *text = json_dumps (id, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return NULL;
    size_t size = strlen (owner) + strlen (text) + 2;
    char *key = malloc (size);
    if (key)
        snprintf (key, size, "%s\n%s", owner, text);
    free (text);
    return key;
}

static void
s_table_add (s_call_t *call, const char *owner)
{
    call->key = s_key (owner, call->id);
    if (!call->key)
        return;                         //  out of memory: it cannot be cancelled
    zhashx_t *table = call->gateway->call_keys;
    call->older = zhashx_lookup (table, call->key);
    if (call->older)
        zhashx_update (table, call->key, call);
    else
        zhashx_insert (table, call->key, call);
}

static void
s_table_remove (s_call_t *call)
{
    if (!call->key)
        return;
    zhashx_t *table = call->gateway->call_keys;
    s_call_t *head = zhashx_lookup (table, call->key);
    if (head == call) {
        if (call->older)
            zhashx_update (table, call->key, call->older);
        else
            zhashx_delete (table, call->key);
    }
    else
        for (s_call_t *c = head; c; c = c->older)
            if (c->older == call) {
                c->older = call->older;
                break;
            }
    free (call->key);
    call->key = NULL;
}

//  ---------------------------------------------------------------------------
//  Calls

//  True for a call of a revision without sessions (2026-07-28).
static bool
s_stateless (const s_call_t *call)
{
    return SB_MCP_STATELESS (call->revision);
}

static void
s_call_free (s_call_t *call)
{
    call->gateway->calls--;
    s_table_remove (call);
    if (call->task_state == S_TASK_RUNNING
    &&  zhashx_lookup (call->gateway->task_calls, call->task_id) == call)
        zhashx_delete (call->gateway->task_calls, call->task_id);
    sb_broker_client_cancel (call->gateway->broker, &call->store);
    free (call->held_payload);
    sb_sse_end (&call->sse);
    json_decref (call->id);
    json_decref (call->progress_token);
    json_decref (call->answers);
    free (call->args);
    sb_connectors_destroy (&call->connectors);
    free (call);
}

//  The key requestStates are signed with, derived from the cursor key.
static void
s_state_key (sb_gateway_t *self, uint8_t key [SB_HMAC_SHA256_LEN])
{
    sb_hmac_sha256 (sb_sessions_cursor_key (self->sessions), SB_HMAC_SHA256_LEN,
                    (const uint8_t *) S_STATE_KEY_LABEL, strlen (S_STATE_KEY_LABEL), key);
}

//  The answers an input-required job used (new object): those are carried
//  to the next round; anything else the client sent is not.
static json_t *
s_kept_answers (s_call_t *call, const json_t *used)
{
    json_t *kept = json_object ();
    size_t index;
    json_t *key;
    json_array_foreach (used, index, key) {
        json_t *answer = json_object_get (call->answers, json_string_value (key));
        if (answer && kept)
            json_object_set (kept, json_string_value (key), answer);
    }
    return kept;
}

//  The JSON-RPC response for a 2026-07-28 call's input-required REPLY, or NULL
//  when the REPLY is not one: the questions and a new requestState, or an
//  isError result when there is no next round to give.
static char *
s_input_required (s_call_t *call, const uint8_t *payload, size_t size)
{
    json_t *requests = NULL, *used = NULL;
    int rc = sb_relay_input_required (payload, size, call->caps, &requests, &used);
    if (rc == 0)
        return NULL;
    json_t *result = NULL;
    if (rc < 0)
        result = sb_mcp_error_result ("The tool asked the client something switchboard cannot pass on "
                                      "(a malformed question, or one the client cannot answer).",
                                      "malformed", 0);
    else
    if (call->round >= SB_MAX_INPUT_ROUNDS) {
        char text [160];
        snprintf (text, sizeof text, "The tool kept asking for more input; switchboard stopped it after "
                  "%d rounds. Please start again.", SB_MAX_INPUT_ROUNDS);
        result = sb_mcp_error_result (text, "too_many_rounds", 0);
    }
    else {
        json_t *kept = s_kept_answers (call, used);
        uint8_t state_key [SB_HMAC_SHA256_LEN];
        s_state_key (call->gateway, state_key);
        sb_relay_binding_t binding = { call->tenant, call->subject, "tools/call", call->tool_name,
                                       call->args };
        char *token = kept? sb_relay_state_encode (state_key, &binding,
                                                   sb_clock_wall_ms () / 1000 + SB_REQUEST_STATE_TTL_S,
                                                   call->round + 1, kept): NULL;
        json_decref (kept);
        if (token)
            result = json_pack ("{s:s, s:O, s:s}", "resultType", "input_required",
                                "inputRequests", requests, "requestState", token);
        else {
            char text [200];
            snprintf (text, sizeof text, "The answers given so far are more than switchboard carries "
                      "between rounds (%d bytes). Please start again with shorter answers.",
                      SB_MAX_REQUEST_STATE_LEN);
            result = sb_mcp_error_result (text, "state_too_large", 0);
        }
        free (token);
        sb_log_info ("call_input_required", "tenant=%s tool=%s round=%u questions=%zu", call->tenant,
                     call->tool_name, call->round, json_object_size (requests));
    }
    json_decref (requests);
    json_decref (used);
    return result? sb_rpc_result (call->id, result): sb_rpc_error (call->id, SB_RPC_INTERNAL_ERROR,
                                                                    "Internal error");
}

//  ---------------------------------------------------------------------------
//  Calls that become tasks

static void s_on_reply (void *arg, sb_status_t status, const uint8_t *payload, size_t size);
static char *s_call_reply (s_call_t *call, sb_status_t status, const uint8_t *payload, size_t size);
static void s_on_quota (void *arg, const sb_msg_quota_t *quota, uint32_t retry_after_ms);
static void s_meter (const sb_tool_t *tool, uint32_t round, sb_broker_meter_t *meter);
static void s_on_event (void *arg, sb_cmd_t command, uint32_t ask_id, const uint8_t *payload,
                        size_t size);

/*  Whose task a task/finish was for (the store's answer carries no name). */
typedef struct {
    sb_gateway_t *gateway;
    char tenant [SB_MAX_TENANT_LEN + 1];
    char task_id [SB_MAX_TASK_ID_TEXT + 1];
} s_finish_t;

//  The store's answer to task/finish: the log, and the listen streams that
//  follow the task (sb_task_changed). Every pending answer comes before the
//  gateway is destroyed (its stop drains or expires them).
static void
s_on_finished (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_finish_t *finish = arg;
    json_t *detail = sb_task_store_answer (status, payload, size);
    if (status != SB_STATUS_OK || !detail)
        sb_log_error ("task_finish_lost", "status=%s: the store did not record a task's outcome; "
                      "that task fails at its run deadline", sb_status_name (status));
    else
    if (!json_is_true (json_object_get (detail, "applied")))
        sb_log_info ("task_finish_ignored", "a task's outcome came after it was cancelled or expired");
    else
        sb_task_changed (finish->gateway, finish->tenant, finish->task_id, true);
    json_decref (detail);
    free (finish);
}

//  What the store keeps for a task's job that ended with `status` and
//  `payload` (new object): completed with the CallToolResult the call would
//  have answered, failed with the worker's JSON-RPC error, or
//  input_required with its questions, the answers kept and the round run.
static json_t *
s_task_outcome (s_call_t *call, sb_status_t status, const uint8_t *payload, size_t size)
{
    if (status == SB_STATUS_OK) {
        json_t *requests = NULL, *used = NULL;
        int rc = sb_relay_input_required (payload, size, call->caps, &requests, &used);
        json_t *outcome = NULL;
        if (rc > 0 && call->round < SB_MAX_INPUT_ROUNDS) {
            json_t *kept = s_kept_answers (call, used);
            outcome = kept? json_pack ("{s:s, s:O, s:o, s:i}", "status", "input_required",
                                       "inputRequests", requests, "inputs", kept,
                                       "round", (json_int_t) call->round): NULL;
        }
        else
        if (rc != 0) {
            char text [200];
            snprintf (text, sizeof text, rc < 0? "The tool asked the client something switchboard cannot "
                      "pass on (a malformed question).": "The tool kept asking for more input; "
                      "switchboard stopped it after %d rounds.", SB_MAX_INPUT_ROUNDS);
            outcome = json_pack ("{s:s, s:o}", "status", "completed", "result",
                                 sb_mcp_error_result (text, rc < 0? "malformed": "too_many_rounds", 0));
        }
        json_decref (requests);
        json_decref (used);
        if (rc != 0)
            return outcome;
    }
    if (status == SB_STATUS_FAILED) {
        json_t *error = sb_mcp_rpc_error (payload, size);
        if (error)
            return json_pack ("{s:s, s:o}", "status", "failed", "error", error);
    }
    //  What a synchronous call would have answered, as the task's result.
    char *body = s_call_reply (call, status, payload, size);
    json_t *reply = body? json_loads (body, 0, NULL): NULL;
    free (body);
    json_t *result = json_object_get (reply, "result");
    json_t *outcome = json_is_object (result)? json_pack ("{s:s, s:O}", "status", "completed",
                                                          "result", result): NULL;
    json_decref (reply);
    return outcome;
}

//  A task's job ended: its outcome goes to the store; the call is done.
static void
s_task_finish (s_call_t *call, sb_status_t status, const uint8_t *payload, size_t size)
{
    sb_gateway_t *self = call->gateway;
    json_t *outcome = NULL;
    if (self->stop && status == SB_STATUS_TIMEOUT)
        //  The gateway is stopping (sb_call_tasks_stop, or its last
        //  pending calls cut short).
        outcome = json_pack ("{s:s, s:{s:i, s:s}}", "status", "failed", "error",
                             "code", SB_RPC_INTERNAL_ERROR, "message",
                             "The task stopped: the gateway running it shut down. Start it again.");
    else
        outcome = s_task_outcome (call, status, payload, size);
    char *data = outcome? json_dumps (outcome, JSON_COMPACT): NULL;
    json_decref (outcome);
    sb_job_t job = { .op = (char *) "task/finish", .task = call->task_id, .data = data };
    sb_broker_call_t *handle = NULL;
    s_finish_t *finish = data? calloc (1, sizeof *finish): NULL;
    if (finish) {
        finish->gateway = self;
        snprintf (finish->tenant, sizeof finish->tenant, "%s", call->tenant);
        snprintf (finish->task_id, sizeof finish->task_id, "%s", call->task_id);
    }
    int rc = finish? sb_task_store_send (self, call->tenant, &job, s_on_finished, finish, &handle)
                   : SB_BROKER_INVALID;
    if (rc != SB_BROKER_SENT)
        free (finish);
    if (rc != SB_BROKER_SENT)
        sb_log_error ("task_finish_lost", "task=%.8s… rc=%d: the outcome could not be sent to the store; "
                      "the task fails at its run deadline", call->task_id, rc);
    else
        sb_log_info ("task_finished", "tenant=%s tool=%s task=%.8s… status=%s", call->tenant,
                     call->tool_name, call->task_id, sb_status_name (status));
    free (data);
    s_call_free (call);
}

//  The store created the task (or could not): the client gets
//  CreateTaskResult, or the call goes on as an ordinary one.
static void
s_on_created (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_call_t *call = arg;
    sb_gateway_t *self = call->gateway;
    call->store = NULL;
    json_t *detail = sb_task_store_answer (status, payload, size);
    json_t *task = json_object_get (detail, "task");
    char *body = NULL;
    if (json_is_object (task)) {
        json_t *created = json_deep_copy (task);
        if (created)
            json_object_set_new (created, "resultType", json_string ("task"));
        body = created? sb_rpc_result (call->id, created): NULL;
        body = body? sb_mcp_stateless_reply (body, SB_VERSION, false): NULL;
    }
    json_decref (detail);
    if (!body) {
        //  No task: the call goes on and is answered when it ends.
        sb_log_warn ("task_not_created", "tenant=%s tool=%s status=%s: answering synchronously",
                     call->tenant, call->tool_name, sb_status_name (status));
        call->task_state = S_TASK_NONE;
        call->task_capable = false;
        if (call->held) {
            uint8_t *held = call->held_payload;
            call->held_payload = NULL;
            s_on_reply (call, call->held_status, held, call->held_size);
            free (held);
        }
        return;
    }
    //  The client has its task: nothing more goes to it.
    if (call->ref)
        call->ref->call = NULL;
    call->ref = NULL;
    if (call->sse) {
        if (sb_sse_send_last (&call->sse, body))
            sb_log_warn ("sse_reply_lost", "the task could not be kept on the stream");
    }
    else
        sb_http_send_json (call->req, 200, body);
    free (body);
    call->req = NULL;
    call->stream_later = false;
    s_table_remove (call);              //  no notifications/cancelled for a task
    call->task_state = S_TASK_RUNNING;
    self->tasks_created++;
    if (zhashx_insert (self->task_calls, call->task_id, call))
        sb_log_warn ("task_untracked", "task=%.8s…: tasks/cancel will not stop its job early",
                     call->task_id);
    sb_log_info ("task_created", "tenant=%s tool=%s task=%.8s…", call->tenant, call->tool_name,
                 call->task_id);
    if (call->held) {
        uint8_t *held = call->held_payload;
        call->held_payload = NULL;
        s_task_finish (call, call->held_status, held, call->held_size);
        free (held);
    }
}

//  The worker says the call may become a task: ask the store for one.
static void
s_promote (s_call_t *call)
{
    sb_gateway_t *self = call->gateway;
    if (!call->task_capable || call->task_state != S_TASK_NONE || !call->handle)
        return;                         //  not for this client, or a task already
    if (sb_task_new_id (call->task_id)) {
        sb_log_error ("task_not_created", "no randomness for a taskId: answering synchronously");
        return;
    }
    json_t *limits = json_pack ("{s:i, s:i, s:i}", "ttlMs", (json_int_t) self->task_ttl_ms,
                                "pollIntervalMs", (json_int_t) self->task_poll_ms,
                                "runMs", (json_int_t) self->task_timeout_ms);
    char *data = limits? json_dumps (limits, JSON_COMPACT): NULL;
    json_decref (limits);
    char *inputs = call->answers? json_dumps (call->answers, JSON_COMPACT): NULL;
    sb_job_t job = {
        .op = (char *) "task/create", .task = call->task_id, .subject = call->subject,
        .connector = sb_unconst (sb_connector_name (sb_tool_connector (
                         sb_connectors_find_tool (call->connectors, call->tool_name)))),
        .tool = sb_unconst (call->tool_name), .args = call->args, .inputs = inputs,
        .caps = call->caps, .round = call->round, .data = data,
    };
    int rc = data && job.connector? sb_task_store_send (self, call->tenant, &job, s_on_created, call,
                                                        &call->store): SB_BROKER_INVALID;
    free (data);
    free (inputs);
    if (rc != SB_BROKER_SENT) {
        sb_log_warn ("task_not_created", "tenant=%s tool=%s rc=%d: answering synchronously",
                     call->tenant, call->tool_name, rc);
        call->task_capable = false;
        return;
    }
    call->task_state = S_TASK_CREATING;
}

void
sb_call_task_cancelled (sb_gateway_t *self, const char *tenant, const char *task_id)
{
    s_call_t *call = zhashx_lookup (self->task_calls, task_id);
    if (!call)
        return;                         //  its job runs elsewhere, or is done
    if (strcmp (call->tenant, tenant) != 0) {
        sb_log_warn ("cross_tenant_refused", "command=task_cancel task_tenant=%s from_tenant=%s",
                     call->tenant, tenant);
        return;
    }
    sb_log_info ("task_cancelled", "tenant=%s task=%.8s…: its job is stopped", tenant, task_id);
    (void) sb_broker_client_abort (self->broker, &call->handle);
    self->cancelled++;
    s_call_free (call);
}

void
sb_call_tasks_stop (sb_gateway_t *self)
{
    //  Nobody would be left to record their outcome: stop each job and say so.
    s_call_t *call;
    while ((call = zhashx_first (self->task_calls))) {
        zhashx_delete (self->task_calls, call->task_id);
        (void) sb_broker_client_abort (self->broker, &call->handle);
        s_task_finish (call, SB_STATUS_TIMEOUT, NULL, 0);   //  failed: the gateway shut down
    }
}

void
sb_call_task_resume (sb_gateway_t *self, const char *tenant, const char *subject,
                     const char *task_id, const json_t *resume)
{
    const char *tool_name = json_string_value (json_object_get (resume, "tool"));
    const char *args = json_string_value (json_object_get (resume, "args"));
    const char *inputs = json_string_value (json_object_get (resume, "inputs"));
    json_int_t caps = json_integer_value (json_object_get (resume, "caps"));
    json_int_t round = json_integer_value (json_object_get (resume, "round"));
    const sb_tool_t *tool = tool_name? sb_connectors_find_tool (self->connectors, tool_name): NULL;
    s_call_t *call = calloc (1, sizeof *call);
    if (!call) {
        sb_log_error ("task_resume_failed", "task=%.8s…: out of memory", task_id);
        return;
    }
    call->gateway = self;
    self->calls++;
    call->connectors = sb_connectors_ref (self->connectors);
    call->id = json_integer (0);
    snprintf (call->tenant, sizeof call->tenant, "%s", tenant);
    snprintf (call->subject, sizeof call->subject, "%s", subject);
    snprintf (call->task_id, sizeof call->task_id, "%s", task_id);
    call->revision = SB_MCP_2026_07_28;       //  tasks are of that revision
    call->task_capable = true;
    call->task_state = S_TASK_RUNNING;
    call->caps = (unsigned) caps;
    call->round = round >= 1 && round <= SB_MAX_INPUT_ROUNDS? (uint32_t) round: SB_MAX_INPUT_ROUNDS;
    call->tool_name = tool? sb_tool_name (tool): "(unknown)";
    call->args = args? strdup (args): NULL;
    call->answers = inputs? json_loads (inputs, 0, NULL): NULL;
    zhashx_insert (self->task_calls, call->task_id, call);
    if (!tool || !call->args || !json_is_object (call->answers)) {
        //  The tool is gone since (a reload), or the store's row is not ours.
        char text [256];
        snprintf (text, sizeof text, "The task could not go on: the tool %.64s is no longer available "
                  "here.", tool_name? tool_name: "(unknown)");
        json_t *result = sb_mcp_error_result (text, "tool_gone", 0);
        char *body = result? json_dumps (result, JSON_COMPACT): NULL;
        json_decref (result);
        zframe_t *frame = body? sb_job_result_encode (body): NULL;
        free (body);
        //  Finished as if the worker had answered this.
        s_task_finish (call, frame? SB_STATUS_OK: SB_STATUS_FAILED, frame? zframe_data (frame): NULL,
                       frame? zframe_size (frame): 0);
        zframe_destroy (&frame);
        return;
    }
    sb_job_t job = {
        .op = (char *) "tools/call",
        .connector = sb_unconst (sb_connector_name (sb_tool_connector (tool))),
        .tool = sb_unconst (sb_tool_name (tool)), .args = call->args,
        .inputs = sb_unconst (inputs), .caps = call->caps, .round = call->round,
        .subject = call->subject,           //  whose connection the api worker asks for
    };
    zframe_t *payload = sb_job_encode (&job);
    uint32_t flags = sb_tool_retry_safe (tool)? SB_FLAG_RETRY_SAFE: 0;
    sb_broker_meter_t meter;
    s_meter (tool, call->round, &meter);
    int rc = payload? sb_broker_client_request_metered (self->broker, "api", tenant, flags,
                                                        SB_BROKER_DEADLINE_LONG, &meter, &payload,
                                                        s_on_reply, call, &call->handle)
                    : SB_BROKER_INVALID;
    zframe_destroy (&payload);
    if (rc != SB_BROKER_SENT) {
        sb_log_warn ("task_resume_failed", "task=%.8s… rc=%d", task_id, rc);
        s_task_finish (call, SB_STATUS_OVERLOADED, NULL, 0);
        return;
    }
    sb_broker_client_on_quota (call->handle, s_on_quota);
    //  No client to talk to: notifications are dropped (SEP-2663 has none
    //  for tasks), a question ends the round as input-required.
    sb_broker_client_on_event (call->handle, s_on_event);
    sb_log_info ("task_resumed", "tenant=%s tool=%s task=%.8s… round=%u", tenant, call->tool_name,
                 task_id, call->round);
}

//  The client went away before the broker answered. Under 2025-xx a
//  disconnect is not a cancellation: the job runs on, its reply is dropped.
//  Under 2026-07-28 closing the response is the cancellation: CANCEL stops
//  the job in the broker and the worker.
static void
s_client_gone (s_call_t *call)
{
    sb_log_info ("client_gone", "revision=%s: the client left before the tool call's reply",
                 sb_mcp_revision_name (call->revision));
    if (s_stateless (call)) {
        call->gateway->cancelled++;
        (void) sb_broker_client_abort (call->gateway->broker, &call->handle);
    }
    else
        sb_broker_client_cancel (call->gateway->broker, &call->handle);
    s_call_free (call);
}

//  The request went away before the broker answered (JSON mode).
static void
s_on_req_disposed (void *p)
{
    s_req_ref_t *ref = p;
    s_call_t *call = ref->call;
    if (!call)
        return;                         //  answered already
    s_client_gone (call);
}

//  A 2026-07-28 call's SSE response lost its client.
static void
s_on_stream_gone (void *arg)
{
    s_client_gone (arg);
}

//  The broker answered (or the local deadline passed).
static void
s_on_reply (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_call_t *call = arg;
    call->handle = NULL;                //  the client frees it after we return
    if (call->task_state == S_TASK_CREATING) {
        //  Answered when the store has created the task (or could not).
        call->held = true;
        call->held_status = status;
        call->held_size = size;
        call->held_payload = size? malloc (size): NULL;
        if (call->held_payload)
            memcpy (call->held_payload, payload, size);
        else
            call->held_size = 0;
        return;
    }
    if (call->task_state == S_TASK_RUNNING) {
        s_task_finish (call, status, payload, size);
        return;
    }
    if (call->ref)
        call->ref->call = NULL;         //  unhook before h2o may dispose the request
    char *body = NULL;
    int http_status = 200;
    if (s_stateless (call) && status == SB_STATUS_OK)
        body = s_input_required (call, payload, size);
    if (s_stateless (call) && status == SB_STATUS_FAILED && (body = sb_mcp_call_error (call->id, payload, size)))
        http_status = 400;              //  -32021: the client lacks a capability the tool needs
    if (!body)
        body = s_call_reply (call, status, payload, size);
    if (s_stateless (call))
        body = sb_mcp_stateless_reply (body, SB_VERSION, false);
    if (status == SB_STATUS_LIMITED) {
        call->gateway->limited++;
        sb_log_info ("call_limited", "tenant=%s tool=%s reason=%s scope=%s retry_after_ms=%u",
                     call->tenant, call->tool_name, call->quota.reason, call->quota.scope,
                     call->retry_after_ms);
    }
    else
    if (status != SB_STATUS_OK)
        sb_log_info ("call_failed", "status=%s", sb_status_name (status));
    //  The tenant's limit as the REPLY describes it, on a response whose
    //  headers are still to be sent (a stream's went out with its start).
    char policy [SB_MAX_RATELIMIT_FIELD], state [SB_MAX_RATELIMIT_FIELD];
    if (!call->sse && body && call->quota_set && sb_ratelimit_fields (&call->quota, policy, state) == 0) {
        sb_http_add_header_str (call->req, "ratelimit-policy", policy);
        sb_http_add_header_str (call->req, "ratelimit", state);
    }
    if (call->sse) {
        //  The reply and the end of the stream in one write.
        if (!body || sb_sse_send_last (&call->sse, body))
            sb_log_warn ("sse_reply_lost", "the reply could not be built or kept");
    }
    else
    if (body)
        sb_http_send_json (call->req, http_status, body);
    else
        sb_http_send_error (call->req, 500, "internal", "The reply could not be built.");
    free (body);
    s_call_free (call);
}

//  The REPLY's quota group: kept for the answer (sb_broker_quota_fn).
static void
s_on_quota (void *arg, const sb_msg_quota_t *quota, uint32_t retry_after_ms)
{
    s_call_t *call = arg;
    call->quota_set = true;
    call->quota = *quota;
    call->retry_after_ms = retry_after_ms;
}

//  The JSON-RPC response text (new string) for the call's REPLY: a refusal
//  by a quota in words (sb_ratelimit.h), anything else as sb_mcp_call_reply
//  maps it.
static char *
s_call_reply (s_call_t *call, sb_status_t status, const uint8_t *payload, size_t size)
{
    if (status != SB_STATUS_LIMITED || !call->quota_set)
        return sb_mcp_call_reply (call->id, status, payload, size);
    //  A budget's scope is the connector: the sentence calls it by its name for people.
    const sb_connector_t *connector = strcmp (call->quota.reason, "budget") == 0
                                    ? sb_connectors_find (call->connectors, call->quota.scope): NULL;
    sb_limited_t limited;
    sb_limited_describe (&call->quota, call->retry_after_ms, "tool calls",
                         connector? sb_connector_display_name (connector): NULL,
                         sb_clock_wall_ms () / 1000, &limited);
    json_t *result = sb_limited_result (&limited);
    return result? sb_rpc_result (call->id, result): sb_rpc_error (call->id, SB_RPC_INTERNAL_ERROR,
                                                                   "Internal error");
}

//  What the job's REQUEST carries for the quotas (PROTOCOL.md "Quotas"):
//  the tool's cost for the first round only (a later round brings answers
//  to a call already counted; older revisions have round 0), and its
//  connector's upstream budget, when it declares one, on every round.
static void
s_meter (const sb_tool_t *tool, uint32_t round, sb_broker_meter_t *meter)
{
    const sb_connector_t *connector = sb_tool_connector (tool);
    memset (meter, 0, sizeof *meter);
    meter->cost = round <= 1? sb_tool_cost (tool): 0;
    if (sb_connector_upstream_budget (connector, &meter->budget_limit, &meter->budget_window_s))
        meter->conn = sb_connector_name (connector);
}

//  Turns a 2026-07-28 call's pending JSON response into its SSE stream
//  (unnumbered: that revision has no resumption; its closing cancels the
//  call). Returns 0, or -1 when out of memory (the call stays JSON).
static int
s_stream_now (s_call_t *call)
{
    sb_sse_t *stream = sb_sse_open (call->gateway->sse, call->req, call->owner, SB_SSE_UNNUMBERED);
    if (!stream)
        return -1;
    if (call->ref)
        call->ref->call = NULL;         //  the stream tells of the client leaving now
    call->ref = NULL;
    call->req = NULL;
    call->sse = stream;
    call->stream_later = false;
    sb_sse_on_gone (stream, s_on_stream_gone, call);
    return 0;
}

//  A NOTIFY: relayed on the call's stream unless filtered.
static void
s_notify (s_call_t *call, const uint8_t *payload, size_t size)
{
    sb_gateway_t *self = call->gateway;
    if (sb_task_is_promote (payload, size)) {
        s_promote (call);
        return;
    }
    const char *why = "no_stream";
    char *text = NULL;
    if (call->sse || call->stream_later) {
        int min_level = s_stateless (call)? (call->log_level? call->log_level - 1: SB_LOG_LEVEL_EMERGENCY + 1)
                      : call->has_session? sb_levels_get (self->levels, call->level_key)
                      : SB_LOG_LEVEL_DEBUG;
        text = sb_relay_notification (payload, size, call->progress_token, min_level, &why);
    }
    if (text && call->stream_later && s_stream_now (call)) {
        why = "out_of_memory";
        free (text);
        text = NULL;
    }
    if (!text) {
        self->notes_dropped++;
        sb_log_debug ("notification_dropped", "corr_id=%s reason=%s",
                      sb_broker_call_corr_id (call->handle), why);
        return;
    }
    if (sb_sse_send (call->sse, text))
        self->notes_dropped++;
    free (text);
}

//  An ASK: sent to the client on the call's stream, or refused at once so
//  that the worker never waits for an answer that cannot come.
static void
s_ask (s_call_t *call, uint32_t ask_id, const uint8_t *payload, size_t size)
{
    sb_gateway_t *self = call->gateway;
    const char *corr_id = sb_broker_call_corr_id (call->handle);
    char *request = NULL, *refusal = NULL;
    if (s_stateless (call))
        //  2026-07-28 forbids server requests on the stream. A worker that
        //  knows the revision answers with an input-required result and
        //  never asks; this one predates it.
        refusal = strdup ("{\"error\":{\"code\":-32601,\"message\":\"the client speaks MCP 2026-07-28, "
                          "where a server asks through input-required results; this worker asked by "
                          "a server request instead\"}}");
    else
        sb_relay_ask (payload, size, corr_id, ask_id, call->has_session? call->caps: 0,
                      call->sse != NULL, &request, &refusal);
    if (request && sb_sse_send (call->sse, request) == 0) {
        sb_log_debug ("ask_sent", "corr_id=%s ask=%u", corr_id, ask_id);
        free (request);
        return;
    }
    if (!refusal)
        refusal = strdup ("{\"error\":{\"code\":-32603,\"message\":\"the gateway could not pass "
                          "the question on\"}}");
    self->asks_refused++;
    zframe_t *frame = refusal? sb_job_result_encode (refusal): NULL;
    int rc = frame? sb_broker_client_answer (self->broker, corr_id, call->tenant, ask_id, &frame)
                  : SB_BROKER_INVALID;
    sb_log_info ("ask_refused", "corr_id=%s ask=%u answer_sent=%d", corr_id, ask_id,
                 rc == SB_BROKER_SENT);
    zframe_destroy (&frame);
    free (request);
    free (refusal);
}

static void
s_on_event (void *arg, sb_cmd_t command, uint32_t ask_id, const uint8_t *payload, size_t size)
{
    s_call_t *call = arg;
    if (command == SB_CMD_NOTIFY)
        s_notify (call, payload, size);
    else
        s_ask (call, ask_id, payload, size);
}

//  Answers a JSON-RPC reply `body` for a call that did not start, on
//  whichever channel the call chose.
static void
s_call_answer_now (s_call_t *call, h2o_req_t *req, int status, const char *body)
{
    if (call->sse) {
        if (sb_sse_send (call->sse, body))
            sb_log_warn ("sse_reply_lost", "the reply could not be kept on the stream");
    }
    else
        sb_http_send_json (req, status, body);
}

//  A 2026-07-28 call's answers (new object): the verified requestState's, then
//  params.inputResponses over them; *round is the round the job runs.
//  NULL with *why (a sentence for the client) when the state is refused.
static json_t *
s_answers (sb_gateway_t *self, const sb_request_ctx_t *ctx, const sb_mcp_outcome_t *outcome,
           uint32_t *round, const char **why)
{
    json_t *answers = NULL;
    *round = 1;
    if (outcome->as.call.request_state) {
        uint8_t key [SB_HMAC_SHA256_LEN];
        s_state_key (self, key);
        sb_relay_binding_t binding = { ctx->claims.tenant, ctx->claims.subject, "tools/call",
                                       sb_tool_name (outcome->as.call.tool), outcome->as.call.args };
        if (sb_relay_state_decode (key, &binding, outcome->as.call.request_state, sb_clock_wall_ms () / 1000,
                                   round, &answers, why))
            return NULL;
    }
    else
        answers = json_object ();
    if (answers && outcome->as.call.input_responses)
        json_object_update (answers, outcome->as.call.input_responses);
    if (!answers)
        *why = "Out of memory.";
    return answers;
}

//  Answers a 2026-07-28 call's refusal before any job: -32602 with `why`.
static void
s_refuse_stateless (h2o_req_t *req, const json_t *id, const char *why)
{
    char *body = sb_mcp_stateless_reply (sb_rpc_error (id, SB_RPC_INVALID_PARAMS, why), SB_VERSION, false);
    sb_http_send_json (req, 200, body? body: "{}");
    free (body);
}

void
sb_call_start (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
               sb_mcp_outcome_t *outcome, bool stream)
{
    const sb_tool_t *tool = outcome->as.call.tool;
    bool stateless = SB_MCP_STATELESS (outcome->revision);
    sb_job_t job = {
        .op = (char *) "tools/call",
        .connector = sb_unconst (sb_connector_name (sb_tool_connector (tool))),
        .tool = sb_unconst (sb_tool_name (tool)),
        .args = outcome->as.call.args,
        .subject = sb_unconst (ctx->claims.subject),   //  whose connection the api worker asks for
    };
    json_t *answers = NULL;
    if (stateless) {
        const char *why = NULL;
        answers = s_answers (self, ctx, outcome, &job.round, &why);
        if (!answers) {
            sb_log_info ("request_state_refused", "tenant=%s tool=%s: %s", ctx->claims.tenant,
                         sb_tool_name (tool), why);
            s_refuse_stateless (req, outcome->as.call.id, why);
            return;
        }
        job.inputs = json_dumps (answers, JSON_COMPACT);
        job.caps = outcome->caps;
    }
    zframe_t *payload = (!stateless || job.inputs)? sb_job_encode (&job): NULL;
    free (job.inputs);
    if (!payload) {
        char *body = sb_rpc_error (outcome->as.call.id, SB_RPC_INVALID_PARAMS,
                                   "The arguments (and answers) are too large.");
        if (stateless)
            body = sb_mcp_stateless_reply (body, SB_VERSION, false);
        sb_http_send_json (req, 200, body);
        free (body);
        json_decref (answers);
        return;
    }
    s_call_t *call = calloc (1, sizeof *call);
    if (!call) {
        zframe_destroy (&payload);
        json_decref (answers);
        sb_http_send_error (req, 500, "internal", "Out of memory.");
        return;
    }
    call->answers = answers;
    call->round = job.round;
    call->tool_name = sb_tool_name (tool);
    if (stateless && !(call->args = strdup (outcome->as.call.args))) {
        zframe_destroy (&payload);
        json_decref (answers);
        free (call);
        sb_http_send_error (req, 500, "internal", "Out of memory.");
        return;
    }
    call->gateway = self;
    call->connectors = sb_connectors_ref (self->connectors);   //  the set outcome->as.call.tool is of
    call->id = outcome->as.call.id;
    outcome->as.call.id = NULL;
    call->progress_token = outcome->as.call.progress_token;
    outcome->as.call.progress_token = NULL;
    snprintf (call->tenant, sizeof call->tenant, "%s", ctx->claims.tenant);
    snprintf (call->subject, sizeof call->subject, "%s", ctx->claims.subject);
    call->has_session = ctx->has_session;
    call->caps = ctx->has_session? ctx->session.caps: 0;
    snprintf (call->level_key, sizeof call->level_key, "%s", ctx->level_key);
    call->revision = outcome->revision;
    call->task_capable = outcome->as.call.task_capable;
    call->log_level = outcome->log_level;
    if (s_stateless (call))
        call->caps = outcome->caps;
    self->calls++;
    if (stream && s_stateless (call)) {
        //  2026-07-28 streams only to carry notifications: the stream opens
        //  with the first one, so a call that ends first is answered as
        //  JSON, with the HTTP status its outcome needs (-32021: 400).
        call->stream_later = true;
        snprintf (call->owner, sizeof call->owner, "%s", ctx->owner);
        stream = false;
    }
    if (stream) {
        //  Event IDs and priming serve resumption, which 2026-07-28 dropped.
        bool priming = ctx->revision >= SB_MCP_REVISION_PRIMING;
        call->sse = sb_sse_open (self->sse, req, ctx->owner, priming? SB_SSE_PRIMING: SB_SSE_QUIET);
        if (!call->sse) {
            zframe_destroy (&payload);
            sb_http_send_error (req, 500, "internal", "Out of memory.");
            s_call_free (call);
            return;
        }
    }
    else
        call->req = req;
    uint32_t flags = sb_tool_retry_safe (tool)? SB_FLAG_RETRY_SAFE: 0;
    //  A call that may become a task gets the task's deadline: the client
    //  waits only until the worker promotes it.
    sb_broker_meter_t meter;
    s_meter (tool, job.round, &meter);
    int rc = sb_broker_client_request_metered (self->broker, "api", ctx->claims.tenant, flags,
                                               call->task_capable? SB_BROKER_DEADLINE_LONG
                                                                 : SB_BROKER_DEADLINE_CALL,
                                               &meter, &payload, s_on_reply, call, &call->handle);
    if (rc == SB_BROKER_SENT) {
        sb_broker_client_on_event (call->handle, s_on_event);
        sb_broker_client_on_quota (call->handle, s_on_quota);
        if (ctx->has_session)
            s_table_add (call, ctx->owner);
        if (!stream) {
            call->ref = h2o_mem_alloc_shared (&req->pool, sizeof (s_req_ref_t), s_on_req_disposed);
            call->ref->call = call;
        }
        sb_log_debug ("call_sent", "tenant=%s tool=%s sse=%d", ctx->claims.tenant,
                      sb_tool_name (tool), stream);
        return;
    }
    if (rc == SB_BROKER_FULL) {
        char *body = sb_rpc_error (call->id, SB_RPC_INTERNAL_ERROR,
                                   "The gateway is handling too many tool calls; try again shortly.");
        if (!call->sse)
            sb_http_add_header (req, H2O_TOKEN_RETRY_AFTER, "1");
        s_call_answer_now (call, req, 503, body);
        free (body);
    }
    else {
        //  Busy or invalid: the broker cannot take it now. Unreachable: it
        //  has been silent past its heartbeats, so waiting would only end
        //  in a timeout; say so at once.
        sb_log_warn ("call_not_sent", "rc=%d", rc);
        char *body = rc == SB_BROKER_UNREACHABLE
                   ? sb_mcp_call_reply (call->id, SB_STATUS_UNAVAILABLE, NULL, 0)
                   : sb_mcp_call_reply (call->id, SB_STATUS_OVERLOADED, NULL, 0);
        if (s_stateless (call))
            body = sb_mcp_stateless_reply (body, SB_VERSION, false);
        s_call_answer_now (call, req, 200, body);
        free (body);
    }
    s_call_free (call);
}

//  ---------------------------------------------------------------------------
//  Cancellation and answers

int
sb_call_cancel (sb_gateway_t *self, const sb_request_ctx_t *ctx,
                const json_t *request_id)
{
    //  Without a session nothing tells one client of a tenant from another.
    if (!ctx->has_session)
        return -1;
    char *key = s_key (ctx->owner, request_id);
    s_call_t *call = key? zhashx_lookup (self->call_keys, key): NULL;
    free (key);
    if (!call)
        return -1;
    const char *corr_id = sb_broker_call_corr_id (call->handle);
    sb_log_info ("call_cancelled", "tenant=%s corr_id=%s", call->tenant, corr_id);
    sb_broker_client_abort (self->broker, &call->handle);
    self->cancelled++;
    s_call_free (call);                 //  ends the SSE stream without a response
    return 0;
}

int
sb_gateway_route_answer (sb_gateway_t *self, const char *tenant, const json_t *response)
{
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    uint32_t ask_id = 0;
    const char *id = json_string_value (json_object_get (response, "id"));
    char *text = NULL;
    if (sb_relay_parse_id (id, corr_id, &ask_id) || !(text = sb_relay_answer (response))) {
        sb_log_info ("answer_refused", "tenant=%s id=%.80s: not an answer to a question of ours",
                     tenant, id? id: "(not a string)");
        return -1;
    }
    zframe_t *frame = sb_job_result_encode (text);
    free (text);
    int rc = frame? sb_broker_client_answer (self->broker, corr_id, tenant, ask_id, &frame)
                  : SB_BROKER_INVALID;
    zframe_destroy (&frame);
    sb_log_debug ("answer_routed", "tenant=%s corr_id=%s ask=%u rc=%d", tenant, corr_id, ask_id, rc);
    if (rc == SB_BROKER_INVALID)
        return -1;                      //  too large for the protocol
    return rc == SB_BROKER_SENT? 0: -2;
}
