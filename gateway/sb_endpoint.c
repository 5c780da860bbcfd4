/*  gateway/sb_endpoint.c — the MCP endpoint of the Streamable HTTP
    transport: POST /mcp (JSON-RPC; a JSON or an SSE response), GET /mcp
    (a stream for server messages, or the resumption of a stream by
    Last-Event-ID) and DELETE /mcp (ends a session).

    Every request first passes the same checks, in this order: Host and
    Origin (403: DNS rebinding, foreign pages), the bearer token (401), its
    scope mcp:tools (403 insufficient_scope; a tools/call of a tool not
    annotated readOnlyHint: true needs mcp:write too, checked once the
    body names the tool: sb_scope.h), MCP-Protocol-Version (400 when given
    and not spoken here, with -32022 and the versions spoken; absent means
    2025-03-26), Mcp-Session-Id (404 when forged, aged out, ended here, or
    issued to another tenant or user; ignored under 2026-07-28, which has
    no sessions). A request without a session is served statelessly.
    Under 2026-07-28 (chosen per request by the
    MCP-Protocol-Version header) the body is checked against the Mcp-Method
    and Mcp-Name headers and its _meta (sb_mcp.h), and GET and DELETE get
    405: that revision has neither.

    tools/call is handed to sb_call.c, subscriptions/listen (2026-07-28)
    to sb_notify.c; notifications/cancelled cancels a call there; a
    client's response to a worker's question ("sb:" id) is routed to the
    broker as ANSWER; logging/setLevel is kept per session.

    Refusals of an authenticated caller go to the audit log as well
    (sb_gateway_audit): a session of another user or tenant, a token of a
    good signature for another audience, a scope the token lacks. */
#include "sb_gateway_int.h"
#include "sb_cluster.h"
#include "sb_mcp.h"
#include "sb_scope.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

//  ---------------------------------------------------------------------------
//  Checks common to every /mcp request

//  A transport-level refusal: `status` with a JSON-RPC error, id null.
static void
s_refuse (h2o_req_t *req, int status, const char *message)
{
    char *body = sb_rpc_error (NULL, -32000, message);
    sb_http_send_json (req, status, body? body: "{}");
    free (body);
}

//  Sends a 401 with the RFC 9728 challenge.
static void
s_unauthorized (sb_gateway_t *self, h2o_req_t *req, bool token_given, const char *message)
{
    sb_http_add_header (req, H2O_TOKEN_WWW_AUTHENTICATE,
                        token_given? self->www_invalid: self->www_authenticate);
    sb_http_send_error (req, 401, token_given? "invalid_token": "unauthorized", message);
}

//  Checks the Bearer token; on success fills `claims`, else answers 401
//  and returns -1. A token naming a kid the key set lacks waits for the
//  token service's set (sb_gateway_jwks_await): -1 without an answer, and
//  `resume` runs the request again later.
static int
s_authenticate (sb_gateway_t *self, h2o_req_t *req, sb_token_claims_t *claims,
                sb_endpoint_fn *resume)
{
    h2o_iovec_t value;
    if (!sb_http_header (req, H2O_TOKEN_AUTHORIZATION, &value)) {
        s_unauthorized (self, req, false, "This endpoint needs an OAuth access token (Authorization: Bearer …).");
        return -1;
    }
    static const char scheme [] = "bearer ";
    size_t n = sizeof scheme - 1;
    if (value.len <= n || strncasecmp (value.base, scheme, n) != 0) {
        s_unauthorized (self, req, true, "The Authorization header must use the Bearer scheme.");
        return -1;
    }
    const char *start = value.base + n;
    size_t len = value.len - n;
    while (len > 0 && *start == ' ') {
        start++;
        len--;
    }
    if (len == 0 || len > SB_MAX_TOKEN_LEN) {
        s_unauthorized (self, req, true, "The access token is empty or too long.");
        return -1;
    }
    char token [SB_MAX_TOKEN_LEN + 1];
    memcpy (token, start, len);
    token [len] = 0;
    sb_token_rc_t rc = sb_token_cache_verify (self->tokens, token, sb_clock_wall_ms () / 1000,
                                              claims);
    if (rc == SB_TOKEN_BAD_SIG && sb_gateway_jwks_await (self, req, token, resume))
        return -1;
    if (rc != SB_TOKEN_OK) {
        char message [128];
        snprintf (message, sizeof message, "The access token was refused: %s.", sb_token_strerror (rc));
        sb_log_info ("token_refused", "reason=%s", sb_token_strerror (rc));
        //  Signed by a key we trust, for another resource: its tenant is
        //  known, so the attempt is that tenant's to see.
        if (rc == SB_TOKEN_AUDIENCE)
            sb_gateway_audit (self, claims, SB_AUDIT_AUDIENCE_REFUSED,
                              json_pack ("{s:s, s:s}", "audience", claims->audience,
                                         "client_id", claims->client_id));
        s_unauthorized (self, req, true, message);
        return -1;
    }
    //  Verified, but perhaps revoked since (sb_revoke.h): a hash probe or three
    sb_revoke_why_t why = sb_revoke_check (self->revoked, claims, sb_clock_wall_ms () / 1000);
    if (why != SB_REVOKE_NONE) {
        sb_token_cache_forget (self->tokens, token);
        self->revoked_refused++;
        sb_log_info ("token_refused", "reason=revoked tenant=%s scope=%s", claims->tenant,
                     why == SB_REVOKE_BY_TENANT? "tenant": why == SB_REVOKE_BY_SUBJECT? "subject"
                   : why == SB_REVOKE_BY_CLIENT? "client": "floor");
        char message [192];
        snprintf (message, sizeof message, "The access token was revoked: %s", sb_revoke_reason (why));
        s_unauthorized (self, req, true, message);
        return -1;
    }
    return 0;
}

//  The JSON-RPC id of a POST body, for errors found before it is handled
//  (new reference), or NULL.
static json_t *
s_body_id (h2o_req_t *req)
{
    if (!req->entity.base || req->entity.len == 0 || req->entity.len > SB_MAX_HTTP_BODY)
        return NULL;
    json_t *doc = json_loadb (req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *id = json_object_get (doc, "id");
    id = sb_rpc_id_valid (id)? json_incref (id): NULL;
    json_decref (doc);
    return id;
}

//  Unless the token grants `needed`, answers 403 insufficient_scope (RFC
//  6750 §3.1: the scopes needed and where the resource's metadata is, so
//  the client can ask for them) with a JSON-RPC error for `id` (borrowed,
//  may be NULL), audits the refusal and returns -1. `what` names the
//  request ("POST /mcp", "tools/call create_task").
static int
s_scope_check (sb_gateway_t *self, h2o_req_t *req, const sb_token_claims_t *claims,
               const char *needed, const json_t *id, const char *what)
{
    if (sb_scope_granted (claims->scope, needed))
        return 0;
    char challenge [SB_MAX_SCOPE_CHALLENGE];
    if (sb_scope_challenge (challenge, sizeof challenge, needed, self->resource_metadata_url,
                            "The access token does not grant the scope this request needs.") == 0)
        sb_http_add_header (req, H2O_TOKEN_WWW_AUTHENTICATE, challenge);
    char message [384];
    if (*claims->scope)
        snprintf (message, sizeof message,
                  "This connection may not do that: %s needs the scope \"%s\", and the access token "
                  "grants only \"%.128s\". Connect again and allow it.", what, needed, claims->scope);
    else
        snprintf (message, sizeof message,
                  "This connection may not do that: %s needs the scope \"%s\", and the access token "
                  "grants none. Connect again and allow it.", what, needed);
    char *body = sb_rpc_error (id, -32000, message);
    sb_http_send_json (req, 403, body? body: "{}");
    free (body);
    sb_log_info ("scope_refused", "tenant=%s needed=\"%s\" request=\"%s\"", claims->tenant, needed, what);
    sb_gateway_audit (self, claims, SB_AUDIT_SCOPE_REFUSED,
                      json_pack ("{s:s, s:s, s:s, s:s}", "needed", needed, "granted", claims->scope,
                                 "request", what, "client_id", claims->client_id));
    return -1;
}

//  Runs the checks; fills `ctx` and returns 0, or answers (or leaves the
//  request to `resume` later, see s_authenticate) and returns -1.
static int
s_prelude (sb_gateway_t *self, h2o_req_t *req, sb_request_ctx_t *ctx, sb_endpoint_fn *resume)
{
    memset (ctx, 0, sizeof *ctx);
    h2o_iovec_t host = req->input.authority;
    if (!sb_origin_host_ok (self->origin, host.base, host.len)) {
        sb_log_info ("host_refused", "host=%.*s", (int) (host.len < 128? host.len: 128), host.base);
        s_refuse (req, 403, "This Host is not served here (DNS rebinding protection; see --allowed-hosts).");
        return -1;
    }
    h2o_iovec_t origin;
    bool has_origin = sb_http_header_str (req, "origin", &origin);
    const char *scheme = req->input.scheme? req->input.scheme->name.base: "http";
    if (!sb_origin_origin_ok (self->origin, has_origin? origin.base: NULL, has_origin? origin.len: 0,
                              scheme, host.base, host.len)) {
        sb_log_info ("origin_refused", "origin=%.*s", (int) (origin.len < 128? origin.len: 128), origin.base);
        s_refuse (req, 403, "Requests from this Origin are not allowed (see --allowed-origins).");
        return -1;
    }
    if (s_authenticate (self, req, &ctx->claims, resume))
        return -1;
    //  mcp:tools for any use of /mcp; mcp:write is the tool's to ask.
    if (!sb_scope_granted (ctx->claims.scope, SB_SCOPE_FOR_READ)) {
        char what [16];
        snprintf (what, sizeof what, "%.*s /mcp", (int) (req->method.len < 8? req->method.len: 8),
                  req->method.base);
        json_t *id = s_body_id (req);
        int rc = s_scope_check (self, req, &ctx->claims, SB_SCOPE_FOR_READ, id, what);
        json_decref (id);
        return rc;
    }
    h2o_iovec_t version;
    ctx->revision = SB_MCP_REVISION_DEFAULT;
    if (sb_http_header_str (req, "mcp-protocol-version", &version)) {
        ctx->revision = sb_mcp_revision_parse (version.base, version.len);
        if (ctx->revision == SB_MCP_REVISION_NONE) {
            //  -32022 with the versions spoken: what a 2026-07-28 client
            //  retries with; older clients only look at the 400.
            json_t *id = s_body_id (req);
            char *body = sb_mcp_unsupported_version (id, version.base, version.len);
            json_decref (id);
            sb_http_send_json (req, 400, body? body: "{}");
            free (body);
            return -1;
        }
    }
    //  2026-07-28 has no sessions: an Mcp-Session-Id is ignored.
    h2o_iovec_t id;
    if (!SB_MCP_STATELESS (ctx->revision) && sb_http_header_str (req, "mcp-session-id", &id)) {
        bool verified = sb_sessions_verify (self->sessions, id.base, id.len, sb_clock_wall_ms () / 1000,
                                            &ctx->session) == 0;
        if (!verified || !sb_sessions_owned_by (self->sessions, &ctx->session, ctx->claims.tenant,
                                                ctx->claims.subject)) {
            //  A genuine session of someone else: the same 404 as a forged
            //  one, and an audit record (not of the ID: it is the owner's).
            if (verified)
                sb_gateway_audit (self, &ctx->claims, SB_AUDIT_SESSION_REFUSED,
                                  json_pack ("{s:s, s:s#}", "reason",
                                             strcmp (ctx->session.tenant, ctx->claims.tenant)
                                             ? "other_tenant": "other_user",
                                             "method", req->method.base,
                                             (int) (req->method.len < 8? req->method.len: 8)));
            s_refuse (req, 404, "Session not found: it ended, expired or never existed here. "
                                "Start a new one with initialize.");
            return -1;
        }
        ctx->has_session = true;
        sb_hex_encode (ctx->session.mac, sizeof ctx->session.mac, ctx->level_key);
        sb_mcp_revision_t negotiated = sb_mcp_revision_parse (ctx->session.protocol,
                                                              strlen (ctx->session.protocol));
        if (negotiated != SB_MCP_REVISION_NONE)
            ctx->revision = negotiated;
        snprintf (ctx->owner, sizeof ctx->owner, "%.*s", (int) id.len, id.base);
    }
    else
        snprintf (ctx->owner, sizeof ctx->owner, "tenant:%s", ctx->claims.tenant);
    return 0;
}

//  ---------------------------------------------------------------------------
//  The three methods

//  A notification or a client response: 202, or an HTTP error when it
//  cannot be taken (MCP transport, "Sending Messages to the Server").
static void
s_accepted (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
            const sb_mcp_outcome_t *outcome)
{
    if (outcome->as.accepted.cancel_id)
        sb_call_cancel (self, ctx, outcome->as.accepted.cancel_id);
    if (outcome->as.accepted.response) {
        int rc = sb_gateway_route_answer (self, ctx->claims.tenant, outcome->as.accepted.response);
        if (rc == -1) {
            s_refuse (req, 400, "This response answers no request of this server "
                                "(its id is not one the server sent).");
            return;
        }
        if (rc == -2) {
            sb_http_add_header (req, H2O_TOKEN_RETRY_AFTER, "1");
            s_refuse (req, 503, "The answer could not be passed on now; send it again shortly.");
            return;
        }
    }
    sb_http_send_json (req, 202, NULL);
}

void
sb_endpoint_post (sb_gateway_t *self, h2o_req_t *req)
{
    sb_request_ctx_t ctx;
    if (s_prelude (self, req, &ctx, sb_endpoint_post))
        return;
    if (!sb_http_is_json (req)) {
        sb_http_send_error (req, 415, "unsupported_media_type",
                            "POST /mcp takes Content-Type: application/json.");
        return;
    }
    h2o_iovec_t accept;
    bool has_accept = sb_http_header (req, H2O_TOKEN_ACCEPT, &accept);
    unsigned accepts = sb_origin_accepts (has_accept? accept.base: NULL, has_accept? accept.len: 0);
    if (accepts != (SB_ACCEPT_JSON | SB_ACCEPT_SSE)) {
        s_refuse (req, 406, "POST /mcp needs Accept: application/json, text/event-stream.");
        return;
    }
    if (req->entity.len > SB_MAX_HTTP_BODY) {
        char message [96];
        snprintf (message, sizeof message, "The request body is larger than %u bytes.",
                  (unsigned) SB_MAX_HTTP_BODY);
        sb_http_send_error (req, 413, "payload_too_large", message);
        return;
    }
    sb_mcp_headers_t headers = { 0 };
    h2o_iovec_t value;
    if (sb_http_header_str (req, "mcp-protocol-version", &value))
        headers.protocol = value.base, headers.protocol_len = value.len;
    if (sb_http_header_str (req, "mcp-method", &value))
        headers.method = value.base, headers.method_len = value.len;
    if (sb_http_header_str (req, "mcp-name", &value))
        headers.name = value.base, headers.name_len = value.len;
    sb_param_headers_t params = { 0 };
    for (size_t i = 0; i < req->headers.size; i++)
        sb_param_headers_add (&params, req->headers.entries [i].name->base,
                              req->headers.entries [i].name->len,
                              req->headers.entries [i].value.base,
                              req->headers.entries [i].value.len);
    headers.params = &params;
    sb_mcp_env_t env = {
        .connectors = self->connectors,
        .version = SB_VERSION,
        .page_size = self->tools_page_size,
        .cursor_key = sb_sessions_cursor_key (self->sessions),
        .headers = &headers,
        .shown = sb_lists_shown (self->lists, ctx.claims.tenant),
    };
    sb_mcp_outcome_t outcome;
    sb_mcp_handle (&env, req->entity.base? req->entity.base: "", req->entity.len, &outcome);
    if (outcome.action == SB_MCP_CALL && !sb_tool_read_only (outcome.as.call.tool)) {
        char what [160];
        snprintf (what, sizeof what, "tools/call %.128s", sb_tool_name (outcome.as.call.tool));
        if (s_scope_check (self, req, &ctx.claims, SB_SCOPE_FOR_WRITE, outcome.as.call.id, what)) {
            sb_mcp_outcome_clear (&outcome);
            return;
        }
    }
    switch (outcome.action) {
        case SB_MCP_REPLY:
            if (outcome.as.reply.negotiated) {
                char *id = sb_sessions_issue (self->sessions, ctx.claims.tenant, ctx.claims.subject,
                                              sb_mcp_revision_name (outcome.as.reply.negotiated),
                                              sb_session_caps_from_json (outcome.as.reply.client_caps),
                                              sb_clock_wall_ms () / 1000);
                if (id)
                    h2o_add_header_by_str (&req->pool, &req->res.headers, H2O_STRLIT ("mcp-session-id"),
                                           0, NULL, h2o_strdup (&req->pool, id, SIZE_MAX).base, strlen (id));
                free (id);
            }
            //  Levels are kept per session; without one there is nobody to
            //  keep it for (documented in sb_relay.h).
            if (outcome.as.reply.set_level && ctx.has_session) {
                sb_levels_set (self->levels, ctx.level_key, outcome.as.reply.set_level - 1);
                sb_cluster_log_level (self, &ctx, outcome.as.reply.set_level - 1);  //  and on every gateway
            }
            if (outcome.as.reply.subscribe)     //  resources/(un)subscribe: this gateway's table
                sb_gateway_subscribe (self, &ctx, &outcome);
            sb_http_send_json (req, outcome.http_status, outcome.as.reply.body);
            break;
        case SB_MCP_ACCEPTED:
            s_accepted (self, req, &ctx, &outcome);
            break;
        case SB_MCP_CALL:
            //  Stream when the call may produce messages for the client: in
            //  a session (server requests, notifications), with a progress
            //  token or (2026-07-28) a log level. Otherwise a JSON response.
            //  The list-change builtins run here (sb_notify.c).
            if (sb_gateway_list_builtin (self, req, &ctx, &outcome))
                break;
            sb_call_start (self, req, &ctx, &outcome,
                           ctx.has_session || outcome.as.call.progress || outcome.log_level);
            break;
        case SB_MCP_LISTEN:         //  2026-07-28: a stream that stays open (sb_notify.c)
            sb_gateway_listen (self, req, &ctx, &outcome);
            break;
        case SB_MCP_TASK:           //  2026-07-28 tasks/…: the task store answers (sb_task.c)
            sb_task_request (self, req, &ctx, &outcome);
            break;
        case SB_MCP_EVENTS:         //  an event log: the webhook service answers (sb_webhook.c)
            sb_webhook_events_read (self, req, &ctx, &outcome);
            break;
    }
    sb_mcp_outcome_clear (&outcome);
}

//  GET and DELETE under 2026-07-28: 405, that revision has neither.
static bool
s_stateless_405 (h2o_req_t *req, const sb_request_ctx_t *ctx)
{
    if (!SB_MCP_STATELESS (ctx->revision))
        return false;
    sb_http_add_header (req, H2O_TOKEN_ALLOW, "POST");
    s_refuse (req, 405, "MCP 2026-07-28 has no GET stream and no sessions: POST requests only.");
    return true;
}

void
sb_endpoint_get (sb_gateway_t *self, h2o_req_t *req)
{
    sb_request_ctx_t ctx;
    if (s_prelude (self, req, &ctx, sb_endpoint_get) || s_stateless_405 (req, &ctx))
        return;
    h2o_iovec_t accept;
    bool has_accept = sb_http_header (req, H2O_TOKEN_ACCEPT, &accept);
    if (!(sb_origin_accepts (has_accept? accept.base: NULL, has_accept? accept.len: 0) & SB_ACCEPT_SSE)) {
        s_refuse (req, 406, "GET /mcp needs Accept: text/event-stream.");
        return;
    }
    h2o_iovec_t last;
    if (sb_http_header_str (req, "last-event-id", &last)
    &&  sb_sse_resume (self->sse, req, ctx.owner, last.base, last.len) == 0)
        return;
    if (!ctx.has_session) {
        s_refuse (req, 400, "GET /mcp needs an Mcp-Session-Id (or a Last-Event-ID of a stream "
                            "to resume).");
        return;
    }
    if (sb_sse_count (self->sse, ctx.owner) >= SB_MAX_SSE_STREAMS) {
        s_refuse (req, 409, "This session already has as many open streams as allowed.");
        return;
    }
    bool priming = ctx.revision >= SB_MCP_REVISION_PRIMING;
    sb_sse_t *stream = sb_sse_open (self->sse, req, ctx.owner,
                                    SB_SSE_STANDALONE | (priming? SB_SSE_PRIMING: 0));
    if (stream)
        sb_sse_set_expiry (stream, ctx.claims.expires_at * 1000);
    else
        sb_http_send_error (req, 500, "internal", "Out of memory.");
}

void
sb_endpoint_delete (sb_gateway_t *self, h2o_req_t *req)
{
    sb_request_ctx_t ctx;
    if (s_prelude (self, req, &ctx, sb_endpoint_delete) || s_stateless_405 (req, &ctx))
        return;
    if (!ctx.has_session) {
        s_refuse (req, 400, "DELETE /mcp needs the Mcp-Session-Id of the session to end.");
        return;
    }
    sb_sessions_end (self->sessions, &ctx.session, sb_clock_wall_ms () / 1000);
    sb_cluster_session_ended (self, &ctx);      //  every other gateway ends it too
    sb_sse_close_standalone (self->sse, ctx.owner);
    sb_log_info ("session_ended", "tenant=%s", ctx.claims.tenant);
    sb_http_send_json (req, 200, NULL);
}
