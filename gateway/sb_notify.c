/*  gateway/sb_notify.c — connectors reloaded while the gateway runs, and
    what clients are told about it: notifications/tools/list_changed,
    prompts/list_changed and resources/list_changed on every open
    standalone GET stream, and notifications/resources/updated for the
    URIs a session subscribed to (resources/subscribe, kept in sb_subs).

    A reload loads the folder into a new set first; only a set that loads
    whole replaces the old one. The gateway holds one reference to its set
    and every tool call in flight holds another (sb_call.c), so the old set
    lives until the last call that started with it ends.

    Everything here is local to this gateway process, as GET streams and
    log levels are: a client whose GET stream is open on another gateway
    hears of a reload only from that gateway's own reload (each process is
    sent SIGHUP), and a subscription lives where resources/subscribe was
    answered. */
#include "gateway/sb_gateway_int.h"
#include "common/sb_clock.h"
#include "common/sb_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_RPC_SUBSCRIBE_REFUSED    -32000  /* server error: the subscription was not kept */

#define S_LIST_CHANGED(what) \
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/" what "/list_changed\"}"

//  ---------------------------------------------------------------------------
//  Reload

/*  What one reload walks the subscriptions with. */
typedef struct {
    sb_gateway_t *gateway;          /* whose streams */
    sb_connectors_t *before;        /* the set being replaced */
    sb_connectors_t *after;         /* the set replacing it */
    zhashx_t *verdicts;             /* URI → "changed" / "same", each URI read once */
    size_t sent;                    /* resources/updated sent (streams) */
    size_t changed;                 /* subscriptions whose resource changed */
} s_walk_t;

//  One (session, URI): tell the session when the URI reads differently now.
static void
s_on_subscription (const char *owner, const char *uri, void *arg)
{
    s_walk_t *walk = arg;
    const char *verdict = zhashx_lookup (walk->verdicts, uri);
    if (!verdict) {
        verdict = sb_connectors_resource_changed (walk->before, walk->after, uri)? "changed": "same";
        zhashx_insert (walk->verdicts, uri, (void *) verdict);
    }
    if (strcmp (verdict, "changed") != 0)
        return;
    walk->changed++;
    json_t *note = json_pack ("{s:s, s:s, s:{s:s}}", "jsonrpc", "2.0",
                              "method", "notifications/resources/updated", "params", "uri", uri);
    char *text = note? json_dumps (note, JSON_COMPACT): NULL;
    json_decref (note);
    if (text)
        walk->sent += sb_sse_notify (walk->gateway->sse, owner, text);
    free (text);
}

int
sb_gateway_reload (sb_gateway_t *self)
{
    char *error = NULL;
    sb_connectors_t *fresh = sb_connectors_load (self->connectors_dir, &error);
    if (!fresh) {
        self->reload_failures++;
        sb_log_error ("connectors_reload_failed", "%s (the %zu tool(s) loaded before stay)",
                      error? error: self->connectors_dir,
                      sb_connectors_tool_count (self->connectors));
        free (error);
        return -1;
    }
    sb_connectors_t *before = self->connectors;
    unsigned lists = sb_connectors_diff (before, fresh);
    self->connectors = fresh;
    self->reloads++;

    //  The lists first, then the resources: a client that re-reads a list
    //  on list_changed then learns which of its resources to read again.
    size_t streams = 0;
    if (lists & SB_LIST_TOOLS)
        streams += sb_sse_broadcast (self->sse, S_LIST_CHANGED ("tools"));
    if (lists & SB_LIST_PROMPTS)
        streams += sb_sse_broadcast (self->sse, S_LIST_CHANGED ("prompts"));
    if (lists & SB_LIST_RESOURCES)
        streams += sb_sse_broadcast (self->sse, S_LIST_CHANGED ("resources"));
    sb_subs_purge (self->subs, sb_clock_wall_ms () / 1000);
    s_walk_t walk = { self, before, fresh, zhashx_new (), 0, 0 };
    if (walk.verdicts)
        sb_subs_each (self->subs, s_on_subscription, &walk);
    else
        sb_log_warn ("resources_updated_lost", "out of memory: no notifications/resources/updated");
    zhashx_destroy (&walk.verdicts);
    char what [32] = "none";
    if (lists)
        snprintf (what, sizeof what, "%s%s%s", lists & SB_LIST_TOOLS? ",tools": "",
                  lists & SB_LIST_PROMPTS? ",prompts": "", lists & SB_LIST_RESOURCES? ",resources": "");
    sb_log_info ("connectors_reloaded", "dir=%s tools=%zu lists_changed=%s list_changed_sent=%zu "
                 "subscriptions_changed=%zu resources_updated_sent=%zu calls_on_old_set=%d",
                 self->connectors_dir, sb_connectors_tool_count (fresh), what + (lists? 1: 0),
                 streams, walk.changed, walk.sent, sb_connectors_refs (before) - 1);
    sb_connectors_destroy (&before);    //  calls in flight keep their own references
    return 0;
}

//  ---------------------------------------------------------------------------
//  resources/subscribe and unsubscribe

//  Replaces the outcome's {} with error -32000 `message` for the same id.
static void
s_refuse (sb_mcp_outcome_t *outcome, const char *message)
{
    json_t *reply = outcome->body? json_loads (outcome->body, 0, NULL): NULL;
    char *body = sb_rpc_error (json_object_get (reply, "id"), SB_RPC_SUBSCRIBE_REFUSED, message);
    json_decref (reply);
    if (!body)
        return;                         //  out of memory: the {} stands
    free (outcome->body);
    outcome->body = body;
    outcome->http_status = 200;
}

void
sb_gateway_subscribe (sb_gateway_t *self, const sb_request_ctx_t *ctx, sb_mcp_outcome_t *outcome)
{
    const char *uri = outcome->subscribe_uri;
    if (!uri || outcome->http_status != 200)
        return;
    if (outcome->subscribe < 0) {
        if (ctx->has_session)
            sb_subs_remove (self->subs, ctx->level_key, uri);
        return;                         //  {}: not following it either way
    }
    int64_t now = sb_clock_wall_ms () / 1000;
    int rc = ctx->has_session
           ? sb_subs_add (self->subs, ctx->level_key, ctx->owner,
                          ctx->session.issued_at + SB_MAX_SESSION_AGE_S, now, uri)
           : SB_SUBS_INVALID;
    if (rc == SB_SUBS_OK) {
        sb_log_debug ("subscribed", "tenant=%s uris=%zu sessions=%zu", ctx->claims.tenant,
                      sb_subs_count (self->subs, ctx->level_key), sb_subs_sessions (self->subs));
        return;
    }
    sb_log_info ("subscribe_refused", "tenant=%s sessions=%zu bytes=%zu: %s", ctx->claims.tenant,
                 sb_subs_sessions (self->subs), sb_subs_bytes (self->subs), sb_subs_strerror (rc));
    s_refuse (outcome, sb_subs_strerror (rc));
}

void
sb_gateway_session_ended (const sb_session_t *session, void *arg)
{
    sb_gateway_t *self = arg;
    char key [2 * SB_HMAC_SHA256_LEN + 1];
    sb_hex_encode (session->mac, sizeof session->mac, key);
    sb_subs_drop (self->subs, key);
}
