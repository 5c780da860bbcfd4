/*  gateway/sb_notify.c — connectors reloaded while the gateway runs, and
    what clients are told about it: notifications/tools/list_changed,
    prompts/list_changed and resources/list_changed on every open
    standalone GET stream, and notifications/resources/updated for the
    URIs a session subscribed to (resources/subscribe, kept in sb_subs).
    Under 2026-07-28, which has neither GET streams nor sessions, the same
    notifications go to subscriptions/listen streams instead, each only
    what its filter asked for and tagged with its subscriptionId; a
    gateway that stops ends those streams with the listen result.

    A worker's news about a resource (resource_updated, a PUBLISH the
    broker passes on as BROADCAST; sb_cluster.c) reaches the same streams,
    only the tenant's: a session is the tenant's when its ID verifies as
    issued to it, a listen stream when it was opened with its token.

    A reload loads the folder into a new set first; only a set that loads
    whole replaces the old one. The gateway holds one reference to its set
    and every tool call in flight holds another (sb_call.c), so the old set
    lives until the last call that started with it ends.

    A reload is local to this gateway process, as GET streams are: a
    client whose GET stream is open on another gateway hears of a reload
    from that gateway's own reload (each process is sent SIGHUP). So that it
    does, every gateway keeps every session's subscriptions: a
    resources/subscribe or unsubscribe answered here is told to the others
    (sb_cluster_subscribed, best effort), as a tenant's list changes are. */
#include "sb_gateway_int.h"
#include "sb_attr.h"
#include "sb_cluster.h"
#include "sb_lists.h"
#include "sb_rpc.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

#define SB_RPC_SUBSCRIBE_REFUSED    -32000  /* server error: the subscription was not kept */

#define S_LIST_CHANGED(what) \
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/" what "/list_changed\"}"

//  ---------------------------------------------------------------------------
//  Reload

/*  What one reload (or one tenant's list change) walks the subscriptions with. */
typedef struct {
    sb_gateway_t *gateway;          /* whose streams */
    const char *tenant;             /* a list change: only this tenant's listen streams */
    sb_connectors_t *before;        /* the set being replaced */
    sb_connectors_t *after;         /* the set replacing it */
    zhashx_t *verdicts;             /* URI → "changed" / "same", each URI read once */
    size_t sent;                    /* resources/updated sent (streams) */
    size_t changed;                 /* subscriptions whose resource changed */
    unsigned lists;                 /* SB_LIST_* that changed */
    zlistx_t *notes;                /* listen notifications to send (s_note_t, owned) */
} s_walk_t;

/*  One notification for one listen stream, composed before any is sent. */
typedef struct {
    uint64_t listener;              /* sb_subs_listen_number, looked up again to send */
    char *text;                     /* the JSON-RPC notification, owned */
} s_note_t;

//  True when `uri` reads differently after the reload (or is gone).
static bool
s_resource_changed (s_walk_t *walk, const char *uri)
{
    const char *verdict = zhashx_lookup (walk->verdicts, uri);
    if (!verdict) {
        verdict = sb_connectors_resource_changed (walk->before, walk->after, uri)? "changed": "same";
        zhashx_insert (walk->verdicts, uri, sb_unconst (verdict));
    }
    return strcmp (verdict, "changed") == 0;
}

//  One (session, URI): tell the session when the URI reads differently now.
static void
s_on_subscription (const char *owner, const char *uri, void *arg)
{
    s_walk_t *walk = arg;
    if (!s_resource_changed (walk, uri))
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

static void
s_note_free (void **item_p)
{
    s_note_t *note = *item_p;
    if (note) {
        free (note->text);
        free (note);
    }
    *item_p = NULL;
}

//  Queues `method` (uri: NULL, or the resource) for `listener`.
static void
s_queue_note (s_walk_t *walk, sb_subs_listener_t *listener, const char *method, const char *uri)
{
    s_note_t *note = calloc (1, sizeof *note);
    if (note)
        note->text = sb_mcp_listen_note (sb_subs_listen_id (listener), method, uri);
    if (!note || !note->text || !zlistx_add_end (walk->notes, note)) {
        sb_log_warn ("listen_note_lost", "out of memory: %s not sent to a listen stream", method);
        s_note_free ((void **) &note);
        return;
    }
    note->listener = sb_subs_listen_number (listener);
}

//  One listen stream: what its filter asked for, lists first, then the
//  resources it follows that changed (as on GET streams).
static void
s_on_listener (sb_subs_listener_t *listener, void *arg)
{
    s_walk_t *walk = arg;
    unsigned lists = walk->lists & sb_subs_listen_lists (listener);
    if (lists & SB_LIST_TOOLS)
        s_queue_note (walk, listener, "notifications/tools/list_changed", NULL);
    if (lists & SB_LIST_PROMPTS)
        s_queue_note (walk, listener, "notifications/prompts/list_changed", NULL);
    if (lists & SB_LIST_RESOURCES)
        s_queue_note (walk, listener, "notifications/resources/list_changed", NULL);
    for (size_t i = 0; i < sb_subs_listen_uri_count (listener); i++) {
        const char *uri = sb_subs_listen_uri (listener, i);
        if (s_resource_changed (walk, uri)) {
            walk->changed++;
            s_queue_note (walk, listener, "notifications/resources/updated", uri);
        }
    }
}

//  Sends the queued listen notifications. A send may end its stream (a
//  reader too slow), which forgets its listener: each is looked up again.
static size_t
s_send_notes (sb_gateway_t *self, zlistx_t *notes)
{
    size_t sent = 0;
    for (s_note_t *note = zlistx_first (notes); note; note = zlistx_next (notes)) {
        sb_subs_listener_t *listener = sb_subs_listen_lookup (self->subs, note->listener);
        sb_sse_t *stream = listener? sb_subs_listen_stream (listener): NULL;
        if (stream && sb_sse_send (stream, note->text) == 0)
            sent++;
    }
    return sent;
}

//  ---------------------------------------------------------------------------
//  One tenant's lists change (sb_lists.h)

/*  The tenant a list change is for, and the gateway to verify sessions with. */
typedef struct {
    sb_gateway_t *gateway;
    const char *tenant;
} s_tenant_t;

//  True when GET stream owner `owner` (an Mcp-Session-Id) is a live
//  session of the tenant in `arg`.
static bool
s_owner_of_tenant (const char *owner, void *arg)
{
    s_tenant_t *filter = arg;
    sb_session_t session;
    return sb_sessions_verify (filter->gateway->sessions, owner, strlen (owner),
                               sb_clock_wall_ms () / 1000, &session) == 0
        && strcmp (session.tenant, filter->tenant) == 0;
}

//  One listen stream: the list_changed its filter asks for, if it is the
//  tenant's.
static void
s_on_tenant_listener (sb_subs_listener_t *listener, void *arg)
{
    s_walk_t *walk = arg;
    if (strcmp (sb_subs_listen_tenant (listener), walk->tenant) != 0)
        return;
    unsigned lists = walk->lists & sb_subs_listen_lists (listener);
    if (lists & SB_LIST_TOOLS)
        s_queue_note (walk, listener, "notifications/tools/list_changed", NULL);
    if (lists & SB_LIST_PROMPTS)
        s_queue_note (walk, listener, "notifications/prompts/list_changed", NULL);
}

int
sb_gateway_lists_set (sb_gateway_t *self, const char *tenant, unsigned which, bool on)
{
    int changed = sb_lists_set (self->lists, tenant, which, on);
    if (changed == SB_LISTS_FULL)
        sb_log_warn ("lists_full", "tenant=%s: %d tenants show hidden entries here already; "
                     "nothing changed", tenant, SB_MAX_LISTS_TENANTS);
    if (changed <= 0)
        return changed;
    s_tenant_t filter = { self, tenant };
    size_t streams = 0;
    if (changed & SB_LIST_TOOLS)
        streams += sb_sse_notify_if (self->sse, S_LIST_CHANGED ("tools"), s_owner_of_tenant, &filter);
    if (changed & SB_LIST_PROMPTS)
        streams += sb_sse_notify_if (self->sse, S_LIST_CHANGED ("prompts"), s_owner_of_tenant, &filter);
    s_walk_t walk = { .gateway = self, .tenant = tenant, .lists = (unsigned) changed,
                      .notes = zlistx_new () };
    size_t listen_sent = 0;
    if (walk.notes) {
        zlistx_set_destructor (walk.notes, s_note_free);
        sb_subs_listen_each (self->subs, s_on_tenant_listener, &walk);
        listen_sent = s_send_notes (self, walk.notes);
        zlistx_destroy (&walk.notes);
    }
    else
        sb_log_warn ("listen_note_lost", "out of memory: no list_changed on listen streams");
    sb_log_info ("lists_changed", "tenant=%s lists=%s%s now=%s list_changed_sent=%zu listen_sent=%zu",
                 tenant, changed & SB_LIST_TOOLS? "tools": "",
                 changed == (SB_LIST_TOOLS | SB_LIST_PROMPTS)? ",prompts":
                 changed & SB_LIST_PROMPTS? "prompts": "", on? "shown": "hidden", streams, listen_sent);
    return changed;
}

//  ---------------------------------------------------------------------------
//  A resource's news from a worker (resource_updated)

/*  What one resource_updated walks the subscriptions with. */
typedef struct {
    s_tenant_t filter;              /* the tenant and the gateway to verify sessions with */
    const char *uri;                /* the resource */
    const char *text;               /* notifications/resources/updated for it */
    size_t sent;                    /* GET streams sent it */
    zlistx_t *notes;                /* listen notifications to send (s_note_t, owned) */
} s_updated_t;

//  One (session, URI): the session hears of it when it is the URI and the
//  session is the tenant's.
static void
s_on_updated_subscription (const char *owner, const char *uri, void *arg)
{
    s_updated_t *walk = arg;
    if (strcmp (uri, walk->uri) == 0 && s_owner_of_tenant (owner, &walk->filter))
        walk->sent += sb_sse_notify (walk->filter.gateway->sse, owner, walk->text);
}

//  One listen stream: queued when it is the tenant's and follows the URI.
static void
s_on_updated_listener (sb_subs_listener_t *listener, void *arg)
{
    s_updated_t *walk = arg;
    if (strcmp (sb_subs_listen_tenant (listener), walk->filter.tenant) != 0)
        return;
    for (size_t i = 0; i < sb_subs_listen_uri_count (listener); i++)
        if (strcmp (sb_subs_listen_uri (listener, i), walk->uri) == 0) {
            s_walk_t queue = { .notes = walk->notes };
            s_queue_note (&queue, listener, "notifications/resources/updated", walk->uri);
            return;
        }
}

size_t
sb_gateway_resource_updated (sb_gateway_t *self, const char *tenant, const char *uri)
{
    json_t *note = json_pack ("{s:s, s:s, s:{s:s}}", "jsonrpc", "2.0",
                              "method", "notifications/resources/updated", "params", "uri", uri);
    char *text = note? json_dumps (note, JSON_COMPACT): NULL;
    json_decref (note);
    s_updated_t walk = { { self, tenant }, uri, text, 0, zlistx_new () };
    size_t listen_sent = 0;
    if (text && walk.notes) {
        zlistx_set_destructor (walk.notes, s_note_free);
        sb_subs_each (self->subs, s_on_updated_subscription, &walk);
        sb_subs_listen_each (self->subs, s_on_updated_listener, &walk);
        listen_sent = s_send_notes (self, walk.notes);
    }
    else
        sb_log_warn ("resources_updated_lost", "tenant=%s: out of memory, no "
                     "notifications/resources/updated", tenant);
    zlistx_destroy (&walk.notes);
    free (text);
    return walk.sent + listen_sent;
}

bool
sb_gateway_list_builtin (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                         const sb_mcp_outcome_t *outcome)
{
    unsigned which = sb_tool_gateway_builtin (outcome->as.call.tool);
    if (!which)
        return false;
    const char *tenant = ctx->claims.tenant;
    const char *what = which == SB_LIST_TOOLS? "tool": "prompt";
    bool on = !(sb_lists_shown (self->lists, tenant) & which);
    json_t *result;
    if (sb_gateway_lists_set (self, tenant, which, on) == SB_LISTS_FULL) {
        char text [256];
        snprintf (text, sizeof text, "The %s list could not be changed: too many organisations "
                  "have changed theirs on this server. Please try again later.", what);
        result = sb_mcp_error_result (text, "overloaded", 0);
    }
    else {
        sb_cluster_lists_changed (self, ctx, which, on);    //  the same on every gateway
        char text [256];
        snprintf (text, sizeof text, "The %s list changed: its hidden %ss are %s.", what, what,
                  on? "listed now": "no longer listed");
        result = json_pack ("{s:[{s:s, s:s}]}", "content", "type", "text", "text", text);
    }
    char *text = result? json_dumps (result, JSON_COMPACT): NULL;
    json_decref (result);
    char *body = text? sb_rpc_result_text (outcome->as.call.id, text, strlen (text)): NULL;
    free (text);
    if (body && SB_MCP_STATELESS (outcome->revision))
        body = sb_mcp_stateless_reply (body, SB_VERSION, false);
    if (body)
        sb_http_send_json (req, 200, body);
    else
        sb_http_send_error (req, 500, "internal", "The reply could not be built.");
    free (body);
    return true;
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
    s_walk_t walk = { self, NULL, before, fresh, zhashx_new (), 0, 0, lists, zlistx_new () };
    size_t listen_sent = 0;
    if (walk.verdicts && walk.notes) {
        zlistx_set_destructor (walk.notes, s_note_free);
        sb_subs_each (self->subs, s_on_subscription, &walk);
        //  Listen streams: every notification composed first, then sent.
        sb_subs_listen_each (self->subs, s_on_listener, &walk);
        listen_sent = s_send_notes (self, walk.notes);
    }
    else
        sb_log_warn ("resources_updated_lost", "out of memory: no notifications/resources/updated");
    zhashx_destroy (&walk.verdicts);
    zlistx_destroy (&walk.notes);
    char what [32] = "none";
    if (lists)
        snprintf (what, sizeof what, "%s%s%s", lists & SB_LIST_TOOLS? ",tools": "",
                  lists & SB_LIST_PROMPTS? ",prompts": "", lists & SB_LIST_RESOURCES? ",resources": "");
    sb_log_info ("connectors_reloaded", "dir=%s tools=%zu lists_changed=%s list_changed_sent=%zu "
                 "subscriptions_changed=%zu resources_updated_sent=%zu listen_streams=%zu "
                 "listen_sent=%zu calls_on_old_set=%d",
                 self->connectors_dir, sb_connectors_tool_count (fresh), what + (lists? 1: 0),
                 streams, walk.changed, walk.sent, sb_subs_listeners (self->subs, NULL), listen_sent,
                 sb_connectors_refs (before) - 1);
    sb_connectors_destroy (&before);    //  calls in flight keep their own references
    return 0;
}

//  ---------------------------------------------------------------------------
//  resources/subscribe and unsubscribe

//  Replaces the outcome's {} with error -32000 `message` for the same id.
static void
s_refuse (sb_mcp_outcome_t *outcome, const char *message)
{
    json_t *reply = outcome->as.reply.body? json_loads (outcome->as.reply.body, 0, NULL): NULL;
    char *body = sb_rpc_error (json_object_get (reply, "id"), SB_RPC_SUBSCRIBE_REFUSED, message);
    json_decref (reply);
    if (!body)
        return;                         //  out of memory: the {} stands
    free (outcome->as.reply.body);
    outcome->as.reply.body = body;
    outcome->http_status = 200;
}

void
sb_gateway_subscribe (sb_gateway_t *self, const sb_request_ctx_t *ctx, sb_mcp_outcome_t *outcome)
{
    const char *uri = outcome->as.reply.subscribe_uri;
    if (!uri || outcome->http_status != 200)
        return;
    if (outcome->as.reply.subscribe < 0) {
        if (ctx->has_session) {
            sb_subs_remove (self->subs, ctx->level_key, uri);
            sb_cluster_subscribed (self, ctx, uri, false);     //  and on every gateway
        }
        return;                         //  {}: not following it either way
    }
    int64_t now = sb_clock_wall_ms () / 1000;
    int rc = ctx->has_session
           ? sb_subs_add (self->subs, ctx->level_key, ctx->owner,
                          ctx->session.issued_at + SB_MAX_SESSION_AGE_S, now, uri)
           : SB_SUBS_INVALID;
    if (rc == SB_SUBS_OK) {
        sb_cluster_subscribed (self, ctx, uri, true);           //  and on every gateway
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

//  ---------------------------------------------------------------------------
//  subscriptions/listen (2026-07-28)

//  The listen stream's client left: its subscription ends (the hub frees
//  the stream next).
static void
s_on_listen_gone (void *arg)
{
    sb_subs_listener_t *listener = arg;
    sb_log_debug ("listen_gone", "tenant=%s id=%s", sb_subs_listen_tenant (listener),
                  sb_subs_listen_id (listener));
    sb_subs_listen_remove (&listener);
}

//  Refuses a listen with -32000 `message` and HTTP `status`.
static void
s_listen_refuse (h2o_req_t *req, const json_t *id, int status, const char *message)
{
    char *body = sb_rpc_error (id, SB_RPC_SUBSCRIBE_REFUSED, message);
    sb_http_send_json (req, status, body? body: "{}");
    free (body);
}

void
sb_gateway_listen (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                   const sb_mcp_outcome_t *outcome)
{
    if (self->stop) {
        //  Its stream would be cut at once: the client goes elsewhere.
        sb_http_add_header (req, H2O_TOKEN_RETRY_AFTER, "1");
        s_listen_refuse (req, outcome->as.listen.id, 503, "This server is stopping; open the stream again "
                                                "in a moment (another server may take it).");
        return;
    }
    const char *uris [SB_MAX_LISTEN_URIS + 1];
    size_t count = json_array_size (outcome->as.listen.uris);
    for (size_t i = 0; i < count && i <= SB_MAX_LISTEN_URIS; i++)
        uris [i] = json_string_value (json_array_get (outcome->as.listen.uris, i));
    char *id = json_dumps (outcome->as.listen.id, JSON_COMPACT | JSON_ENCODE_ANY);
    sb_subs_listener_t *listener = NULL;
    int rc = !id? SB_SUBS_NO_MEMORY
           : count > SB_MAX_LISTEN_URIS? SB_SUBS_TOO_MANY_URIS
           : sb_subs_listen_add (self->subs, ctx->claims.tenant, id, outcome->as.listen.lists,
                                 uris, count, &listener);
    free (id);
    if (rc != SB_SUBS_OK) {
        sb_log_info ("listen_refused", "tenant=%s streams=%zu tenant_streams=%zu bytes=%zu: %s",
                     ctx->claims.tenant, sb_subs_listeners (self->subs, NULL),
                     sb_subs_listeners (self->subs, ctx->claims.tenant), sb_subs_bytes (self->subs),
                     sb_subs_strerror (rc));
        s_listen_refuse (req, outcome->as.listen.id, 200, sb_subs_strerror (rc));
        return;
    }
    sb_sse_t *stream = sb_sse_open (self->sse, req, ctx->owner,
                                    SB_SSE_STANDALONE | SB_SSE_UNNUMBERED | SB_SSE_LISTEN);
    if (!stream) {
        sb_subs_listen_remove (&listener);
        sb_http_send_error (req, 500, "internal", "Out of memory.");
        return;
    }
    sb_subs_listen_set_stream (listener, stream);
    sb_sse_on_gone (stream, s_on_listen_gone, listener);
    sb_sse_set_expiry (stream, ctx->claims.expires_at * 1000);
    sb_log_debug ("listen_opened", "tenant=%s lists=%u uris=%zu streams=%zu", ctx->claims.tenant,
                  outcome->as.listen.lists, sb_subs_listen_uri_count (listener),
                  sb_subs_listeners (self->subs, NULL));
    //  The acknowledgement first: nothing is sent on the stream before it
    //  (the tasks' states come later, from the store).
    uint64_t number = sb_subs_listen_number (listener);
    if (sb_sse_send (stream, outcome->as.listen.body))   //  may end the stream and forget the listener
        sb_log_warn ("listen_ack_lost", "the acknowledgement could not be kept on the stream");
    if (outcome->as.listen.tasks && sb_subs_listen_lookup (self->subs, number))
        sb_task_watch (self, number, ctx->claims.tenant, ctx->claims.subject, outcome->as.listen.tasks);
}

/*  The numbers of the listeners, taken before acting on any. */
typedef struct {
    uint64_t *numbers;              /* room for `size` */
    size_t size;                    /* numbers' length */
    size_t count;                   /* filled */
} s_collect_t;

static void
s_collect (sb_subs_listener_t *listener, void *arg)
{
    s_collect_t *collect = arg;
    if (collect->count < collect->size)
        collect->numbers [collect->count++] = sb_subs_listen_number (listener);
}

void
sb_gateway_listen_end_all (sb_gateway_t *self)
{
    size_t total = sb_subs_listeners (self->subs, NULL);
    if (total == 0)
        return;
    uint64_t *numbers = calloc (total, sizeof *numbers);
    if (!numbers) {
        //  Not even the list: the streams end without their result when
        //  the hub goes (an abrupt close, which clients must handle anyway).
        sb_log_warn ("listen_end_lost", "out of memory: %zu listen streams end without a result", total);
        return;
    }
    s_collect_t collect = { numbers, total, 0 };
    sb_subs_listen_each (self->subs, s_collect, &collect);
    size_t ended = 0;
    for (size_t i = 0; i < collect.count; i++) {
        sb_subs_listener_t *listener = sb_subs_listen_lookup (self->subs, numbers [i]);
        if (!listener)
            continue;
        char *text = sb_mcp_listen_end (sb_subs_listen_id (listener), SB_VERSION);
        sb_sse_t *stream = sb_subs_listen_stream (listener);
        if (text && stream && sb_sse_send (stream, text))
            sb_log_debug ("listen_end_lost", "the end of a listen stream could not be kept");
        free (text);
        //  The send may have ended the stream (and forgotten the listener).
        listener = sb_subs_listen_lookup (self->subs, numbers [i]);
        if (!listener)
            continue;
        stream = sb_subs_listen_stream (listener);
        sb_subs_listen_remove (&listener);
        sb_sse_end (&stream);
        ended++;
    }
    free (numbers);
    sb_log_info ("listen_ended", "streams=%zu", ended);
}
