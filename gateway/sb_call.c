/*  gateway/sb_call.c — tool calls: the job sent to the broker, its REPLY,
    the notifications and questions relayed while it runs, its cancellation,
    and the routing of the client's answers.

    A tools/call keeps its h2o request pending until the broker's REPLY (or
    the local deadline) arrives. With a JSON response the request may vanish
    first (client gone, HTTP/2 stream reset): a small object in the
    request's pool, allocated with a dispose callback, tells us so, and the
    call is forgotten there (a disconnect is not a cancellation: no CANCEL).
    With an SSE response the call keeps running when the client leaves and
    its messages wait in the replay ring.

    Each live call is also in the gateway's call_keys table under
    "<owner>\n<JSON-RPC id>", so that notifications/cancelled finds it.
    Several calls may share a key (stateless clients of one tenant pick
    their ids independently): the table holds the newest, each call links
    to the next older one. */
#include "gateway/sb_gateway_int.h"
#include "common/sb_log.h"
#include "proto/sb_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

typedef struct _s_call_t s_call_t;

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
    bool has_session;                   /* called in a session */
    unsigned caps;                      /* the session's SB_CLIENT_* bits */
    char level_key [2 * SB_HMAC_SHA256_LEN + 1];    /* the session's key in `levels` */
    char *key;                          /* in call_keys, or NULL */
    s_call_t *older;                    /* next call with the same key */
    bool modern;                        /* a 2026-07-28 call */
    int log_level;                      /* modern: 1 + its _meta logLevel, 0: no log messages */
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

static void
s_call_free (s_call_t *call)
{
    call->gateway->calls--;
    s_table_remove (call);
    sb_sse_end (&call->sse);
    json_decref (call->id);
    json_decref (call->progress_token);
    free (call);
}

//  The request went away before the broker answered (JSON mode only).
static void
s_on_req_disposed (void *p)
{
    s_req_ref_t *ref = p;
    s_call_t *call = ref->call;
    if (!call)
        return;                         //  answered already
    sb_log_info ("client_gone", "the HTTP request ended before the tool call's reply");
    sb_broker_client_cancel (call->gateway->broker, &call->handle);
    s_call_free (call);
}

//  The broker answered (or the local deadline passed).
static void
s_on_reply (void *arg, sb_status_t status, const uint8_t *payload, size_t size)
{
    s_call_t *call = arg;
    call->handle = NULL;                //  the client frees it after we return
    if (call->ref)
        call->ref->call = NULL;         //  unhook before h2o may dispose the request
    char *body = sb_mcp_call_reply (call->id, status, payload, size);
    if (call->modern)
        body = sb_mcp_modern_reply (body, SB_VERSION, false);
    if (status != SB_STATUS_OK)
        sb_log_info ("call_failed", "status=%s", sb_status_name (status));
    if (call->sse) {
        if (!body || sb_sse_send (call->sse, body))
            sb_log_warn ("sse_reply_lost", "the reply could not be built or kept");
    }
    else
    if (body)
        sb_http_send_json (call->req, 200, body);
    else
        sb_http_send_error (call->req, 500, "internal", "The reply could not be built.");
    free (body);
    s_call_free (call);
}

//  A NOTIFY: relayed on the call's stream unless filtered.
static void
s_notify (s_call_t *call, const uint8_t *payload, size_t size)
{
    sb_gateway_t *self = call->gateway;
    const char *why = "no_stream";
    char *text = NULL;
    if (call->sse) {
        int min_level = call->modern? (call->log_level? call->log_level - 1: SB_LOG_LEVEL_EMERGENCY + 1)
                      : call->has_session? sb_levels_get (self->levels, call->level_key)
                      : SB_LOG_LEVEL_DEBUG;
        text = sb_relay_notification (payload, size, call->progress_token, min_level, &why);
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
    if (call->modern)
        //  2026-07-28 forbids server requests on the stream; the question
        //  would go back as an input-required result, not done yet.
        refusal = strdup ("{\"error\":{\"code\":-32601,\"message\":\"the client speaks MCP 2026-07-28, "
                          "where a server asks through input-required results; switchboard does not "
                          "pass questions on that way yet\"}}");
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
    if (call->sse)
        sb_sse_send (call->sse, body);
    else
        sb_http_send_json (req, status, body);
}

void
sb_call_start (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
               sb_mcp_outcome_t *outcome, bool stream)
{
    const sb_tool_t *tool = outcome->tool;
    sb_job_t job = {
        .op = (char *) "tools/call",
        .connector = (char *) sb_connector_name (sb_tool_connector (tool)),
        .tool = (char *) sb_tool_name (tool),
        .args = outcome->args,
    };
    zframe_t *payload = sb_job_encode (&job);
    if (!payload) {
        char *body = sb_rpc_error (outcome->id, SB_RPC_INVALID_PARAMS, "The arguments are too large.");
        sb_http_send_json (req, 200, body);
        free (body);
        return;
    }
    s_call_t *call = calloc (1, sizeof *call);
    if (!call) {
        zframe_destroy (&payload);
        sb_http_send_error (req, 500, "internal", "Out of memory.");
        return;
    }
    call->gateway = self;
    call->id = outcome->id;
    outcome->id = NULL;
    call->progress_token = outcome->progress_token;
    outcome->progress_token = NULL;
    snprintf (call->tenant, sizeof call->tenant, "%s", ctx->claims.tenant);
    call->has_session = ctx->has_session;
    call->caps = ctx->has_session? ctx->session.caps: 0;
    snprintf (call->level_key, sizeof call->level_key, "%s", ctx->level_key);
    call->modern = outcome->modern;
    call->log_level = outcome->log_level;
    self->calls++;
    if (stream) {
        //  Priming events serve resumption, which 2026-07-28 dropped.
        bool priming = !call->modern && strcmp (ctx->protocol, SB_PROTOCOL_PRIMING) >= 0;
        call->sse = sb_sse_open (self->sse, req, ctx->owner, false, priming);
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
    int rc = sb_broker_client_request (self->broker, "api", ctx->claims.tenant, flags, &payload,
                                       s_on_reply, call, &call->handle);
    if (rc == SB_BROKER_SENT) {
        sb_broker_client_on_event (call->handle, s_on_event);
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
        //  Busy or invalid: the broker cannot take it now.
        sb_log_warn ("call_not_sent", "rc=%d", rc);
        char *body = sb_mcp_call_reply (call->id, SB_STATUS_OVERLOADED, NULL, 0);
        if (call->modern)
            body = sb_mcp_modern_reply (body, SB_VERSION, false);
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
