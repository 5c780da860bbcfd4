/*  gateway/sb_cluster.c — news shared by every gateway through the
    broker's BROADCAST: ended sessions, logging levels, cancelled tasks,
    resource subscriptions, a tenant's list changes and revoked access
    tokens. See sb_cluster.h.

    Payloads are short text, checked here before use: the sending gateway
    is trusted no more than any peer on the broker's frontend, so every
    session ID is verified again (signature, age, not ended) and must
    belong to the broadcast's tenant. */
#include "sb_cluster.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  MCP's names of the levels, in sb_relay's order (0 = debug). */
static const char *const s_level_names [] = {
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"
};

//  Verifies the session ID `id` (`len` bytes) for `tenant`. Returns 0 and
//  fills *session, or -1 after logging why (never the ID itself).
static int
s_session_for (sb_gateway_t *self, const char *tenant, const char *topic,
               const char *id, size_t len, sb_session_t *session)
{
    if (sb_sessions_verify (self->sessions, id, len, sb_clock_wall_ms () / 1000, session)) {
        //  Ended here already (the usual case for a repeat), aged out or forged
        sb_log_debug ("broadcast_ignored", "topic=%s tenant=%s: the session is not valid here",
                      topic, tenant);
        return -1;
    }
    if (strcmp (session->tenant, tenant) != 0) {
        sb_log_warn ("cross_tenant_refused", "command=broadcast topic=%s session_tenant=%s "
                     "from_tenant=%s", topic, session->tenant, tenant);
        return -1;
    }
    return 0;
}

//  Ends session `id` here as DELETE would have: 404 from now on, its GET
//  streams closed, its subscriptions forgotten (the sessions' end hook).
static void
s_apply_session_ended (sb_gateway_t *self, const char *tenant, const uint8_t *payload, size_t size)
{
    char id [SB_MAX_SESSION_ID_LEN + 1];
    if (size == 0 || size > SB_MAX_SESSION_ID_LEN) {
        sb_log_warn ("broadcast_malformed", "topic=" SB_TOPIC_SESSION_ENDED " tenant=%s bytes=%zu",
                     tenant, size);
        return;
    }
    memcpy (id, payload, size);
    id [size] = 0;
    sb_session_t session;
    if (s_session_for (self, tenant, SB_TOPIC_SESSION_ENDED, id, size, &session))
        return;
    sb_sessions_end (self->sessions, &session, sb_clock_wall_ms () / 1000);
    //  The owner of a session's streams is its ID (sb_endpoint.c)
    sb_sse_close_standalone (self->sse, id);
    sb_log_info ("session_ended", "tenant=%s by=broadcast", tenant);
}

//  Sets the logging level of session `id` here, from "<level> <id>".
static void
s_apply_log_level (sb_gateway_t *self, const char *tenant, const uint8_t *payload, size_t size)
{
    const uint8_t *space = size <= SB_MAX_BROADCAST_SIZE? memchr (payload, ' ', size): NULL;
    size_t name_len = space? (size_t) (space - payload): 0;
    size_t id_len = space? size - name_len - 1: 0;
    char name [16], id [SB_MAX_SESSION_ID_LEN + 1];
    int level = -1;
    if (name_len > 0 && name_len < sizeof name && id_len > 0 && id_len <= SB_MAX_SESSION_ID_LEN) {
        memcpy (name, payload, name_len);
        name [name_len] = 0;
        memcpy (id, space + 1, id_len);
        id [id_len] = 0;
        level = sb_relay_level (name);
    }
    if (level < 0) {
        sb_log_warn ("broadcast_malformed", "topic=" SB_TOPIC_LOG_LEVEL " tenant=%s bytes=%zu",
                     tenant, size);
        return;
    }
    sb_session_t session;
    if (s_session_for (self, tenant, SB_TOPIC_LOG_LEVEL, id, id_len, &session))
        return;
    char key [2 * SB_HMAC_SHA256_LEN + 1];
    sb_hex_encode (session.mac, sizeof session.mac, key);
    sb_levels_set (self->levels, key, level);
    sb_log_debug ("log_level_set", "tenant=%s level=%s by=broadcast", tenant, name);
}

//  Task `payload` of `tenant` was cancelled elsewhere: stops its job if it
//  runs from here (sb_call.c checks the tenant). Or its status changed: the
//  listen streams here that follow it get its state (sb_task.c).
static void
s_apply_task (sb_gateway_t *self, const char *tenant, const char *topic, const uint8_t *payload,
              size_t size)
{
    char id [SB_MAX_TASK_ID_TEXT + 1];
    bool ok = size > 0 && size <= SB_MAX_TASK_ID_TEXT;
    for (size_t i = 0; ok && i < size; i++)
        ok = (payload [i] >= 'A' && payload [i] <= 'Z') || (payload [i] >= 'a' && payload [i] <= 'z')
          || (payload [i] >= '0' && payload [i] <= '9') || payload [i] == '-' || payload [i] == '_';
    if (!ok) {
        sb_log_warn ("broadcast_malformed", "topic=%s tenant=%s bytes=%zu", topic, tenant, size);
        return;
    }
    memcpy (id, payload, size);
    id [size] = 0;
    if (strcmp (topic, SB_TOPIC_TASK_CANCELLED) == 0)
        sb_call_task_cancelled (self, tenant, id);
    else
        sb_task_changed (self, tenant, id, false);
}

//  "on|off <id> <uri>": another gateway subscribed session `id` of `tenant`
//  to `uri`, or unsubscribed it; the same here.
static void
s_apply_subscribed (sb_gateway_t *self, const char *tenant, const uint8_t *payload, size_t size)
{
    bool on = size > 3 && memcmp (payload, "on ", 3) == 0;
    size_t skip = on? 3: size > 4 && memcmp (payload, "off ", 4) == 0? 4: 0;
    const uint8_t *id = payload + skip;
    const uint8_t *space = skip? memchr (id, ' ', size - skip): NULL;
    size_t id_len = space? (size_t) (space - id): 0;
    size_t uri_len = space? size - skip - id_len - 1: 0;
    if (!space || id_len == 0 || id_len > SB_MAX_SESSION_ID_LEN || uri_len == 0
    ||  uri_len > SB_MAX_SUB_URI_LEN || memchr (space + 1, 0, uri_len)) {
        sb_log_warn ("broadcast_malformed", "topic=" SB_TOPIC_SUBSCRIBED " tenant=%s bytes=%zu",
                     tenant, size);
        return;
    }
    char id_text [SB_MAX_SESSION_ID_LEN + 1], uri [SB_MAX_SUB_URI_LEN + 1];
    memcpy (id_text, id, id_len);
    id_text [id_len] = 0;
    memcpy (uri, space + 1, uri_len);
    uri [uri_len] = 0;
    sb_session_t session;
    if (s_session_for (self, tenant, SB_TOPIC_SUBSCRIBED, id_text, id_len, &session))
        return;
    char key [2 * SB_HMAC_SHA256_LEN + 1];
    sb_hex_encode (session.mac, sizeof session.mac, key);
    if (!on) {
        sb_subs_remove (self->subs, key, uri);
        return;
    }
    int64_t now = sb_clock_wall_ms () / 1000;
    int rc = sb_subs_add (self->subs, key, id_text, session.issued_at + SB_MAX_SESSION_AGE_S, now, uri);
    if (rc != SB_SUBS_OK)
        sb_log_warn ("subscribe_not_kept", "tenant=%s by=broadcast: %s", tenant, sb_subs_strerror (rc));
}

//  "<tools|prompts> <shown|hidden>": another gateway changed a list of
//  `tenant`; the same here.
static void
s_apply_lists_changed (sb_gateway_t *self, const char *tenant, const uint8_t *payload, size_t size)
{
    static const char *const forms [] = { "tools shown", "tools hidden", "prompts shown",
                                          "prompts hidden" };
    for (int i = 0; i < 4; i++)
        if (size == strlen (forms [i]) && memcmp (payload, forms [i], size) == 0) {
            sb_gateway_lists_set (self, tenant, i < 2? SB_LIST_TOOLS: SB_LIST_PROMPTS, i % 2 == 0);
            return;
        }
    sb_log_warn ("broadcast_malformed", "topic=" SB_TOPIC_LISTS_CHANGED " tenant=%s bytes=%zu",
                 tenant, size);
}

//  Adds a revocation to this gateway's list and logs what became of it.
//  Returns the list's answer.
static sb_revoke_rc_t
s_revoke_add (sb_gateway_t *self, const char *tenant, const char *subject, const char *client_id,
              int64_t revoked_at, const char *by)
{
    int64_t now = sb_clock_wall_ms () / 1000;
    sb_revoke_rc_t rc = sb_revoke_add (self->revoked, tenant, subject, client_id, revoked_at, now);
    const char *scope = client_id && *client_id? "client": subject && *subject? "subject": "tenant";
    if (rc == SB_REVOKE_FULL)
        sb_log_warn ("revocations_full", "tenant=%s scope=%s by=%s: the list holds %d entries; the "
                     "oldest was dropped and every token issued at or before %lld is refused until "
                     "it expires", tenant && *tenant? tenant: "-", scope, by, SB_MAX_REVOCATIONS,
                     (long long) sb_revoke_floor (self->revoked));
    else
    if (rc >= 0)
        sb_log_info ("tokens_revoked", "tenant=%s scope=%s revoked_at=%lld by=%s%s",
                     tenant && *tenant? tenant: "-", scope, (long long) revoked_at, by,
                     rc == SB_REVOKE_STALE? " (stale: nothing it matches lives)": "");
    else
        sb_log_warn ("revocation_not_kept", "tenant=%s scope=%s by=%s: %s", tenant && *tenant? tenant: "-",
                     scope, by, rc == SB_REVOKE_NOMEM? "out of memory": "invalid");
    return rc;
}

//  {"tenant", "subject", "client_id", "revoked_at"} from another gateway:
//  the same revocation here. The payload's tenant must be the broadcast's
//  (a client's revocation, which has none, comes as SB_REVOKE_ANY_TENANT).
static void
s_apply_tokens_revoked (sb_gateway_t *self, const char *tenant, const uint8_t *payload, size_t size)
{
    json_t *doc = size <= SB_MAX_BROADCAST_SIZE
                ? json_loadb ((const char *) payload, size, JSON_REJECT_DUPLICATES, NULL): NULL;
    json_t *at = json_object_get (doc, "revoked_at");
    const char *scope_tenant = json_string_value (json_object_get (doc, "tenant"));
    const char *subject = json_string_value (json_object_get (doc, "subject"));
    const char *client_id = json_string_value (json_object_get (doc, "client_id"));
    bool ok = json_is_object (doc) && json_is_integer (at)
           && (scope_tenant? strcmp (scope_tenant, tenant) == 0
                           : strcmp (tenant, SB_REVOKE_ANY_TENANT) == 0);
    if (!ok || s_revoke_add (self, scope_tenant, subject, client_id, json_integer_value (at),
                             "broadcast") < 0)
        sb_log_warn ("broadcast_malformed", "topic=" SB_TOPIC_TOKENS_REVOKED " tenant=%s bytes=%zu",
                     tenant, size);
    json_decref (doc);
}

//  A worker committed news about resource `payload` of `tenant` (its
//  PUBLISH, passed on by the broker): the tenant's subscribers here hear of it.
static void
s_apply_resource_updated (sb_gateway_t *self, const char *tenant, const uint8_t *payload,
                          size_t size)
{
    if (size == 0 || size > SB_MAX_RESOURCE_URI_LEN || size > SB_MAX_SUB_URI_LEN
    ||  memchr (payload, 0, size) || !*tenant) {
        sb_log_warn ("broadcast_malformed", "topic=" SB_TOPIC_RESOURCE_UPDATED " tenant=%s bytes=%zu",
                     tenant, size);
        return;
    }
    char uri [SB_MAX_RESOURCE_URI_LEN + 1];
    memcpy (uri, payload, size);
    uri [size] = 0;
    size_t sent = sb_gateway_resource_updated (self, tenant, uri);
    sb_log_debug ("resource_updated", "tenant=%s streams=%zu", tenant, sent);
}

void
sb_cluster_on_broadcast (void *arg, const char *tenant, const char *topic,
                         const uint8_t *payload, size_t size)
{
    sb_gateway_t *self = arg;
    if (strcmp (topic, SB_TOPIC_SESSION_ENDED) == 0)
        s_apply_session_ended (self, tenant, payload, size);
    else
    if (strcmp (topic, SB_TOPIC_LOG_LEVEL) == 0)
        s_apply_log_level (self, tenant, payload, size);
    else
    if (strcmp (topic, SB_TOPIC_TASK_CANCELLED) == 0 || strcmp (topic, SB_TOPIC_TASK_CHANGED) == 0)
        s_apply_task (self, tenant, topic, payload, size);
    else
    if (strcmp (topic, SB_TOPIC_LISTS_CHANGED) == 0)
        s_apply_lists_changed (self, tenant, payload, size);
    else
    if (strcmp (topic, SB_TOPIC_SUBSCRIBED) == 0)
        s_apply_subscribed (self, tenant, payload, size);
    else
    if (strcmp (topic, SB_TOPIC_TOKENS_REVOKED) == 0)
        s_apply_tokens_revoked (self, tenant, payload, size);
    else
    if (strcmp (topic, SB_TOPIC_RESOURCE_UPDATED) == 0)
        s_apply_resource_updated (self, tenant, payload, size);
    else    //  a newer gateway's news: not for us
        sb_log_debug ("broadcast_ignored", "topic=%s tenant=%s: unknown topic", topic, tenant);
}

void
sb_cluster_start (sb_gateway_t *self)
{
    for (int level = SB_LOG_LEVEL_DEBUG; level <= SB_LOG_LEVEL_EMERGENCY; level++)
        assert (sb_relay_level (s_level_names [level]) == level);   //  the two tables agree
    sb_broker_client_on_broadcast (self->broker, sb_cluster_on_broadcast, self);
}

//  Sends one broadcast; logs a failure (the request itself succeeded here).
static void
s_send (sb_gateway_t *self, const char *tenant, const char *topic, const char *payload, size_t size)
{
    int rc = sb_broker_client_broadcast (self->broker, tenant, topic, payload, size);
    if (rc != SB_BROKER_SENT)
        sb_log_warn ("broadcast_not_sent", "topic=%s tenant=%s reason=%s: other gateways "
                     "do not learn of it", topic, tenant,
                     rc == SB_BROKER_BUSY? "broker_unreachable": "invalid");
}

void
sb_cluster_session_ended (sb_gateway_t *self, const sb_request_ctx_t *ctx)
{
    if (!ctx->has_session)
        return;
    //  ctx->owner is the Mcp-Session-Id exactly as the client sent it
    s_send (self, ctx->claims.tenant, SB_TOPIC_SESSION_ENDED, ctx->owner, strlen (ctx->owner));
}

void
sb_cluster_log_level (sb_gateway_t *self, const sb_request_ctx_t *ctx, int level)
{
    if (!ctx->has_session || level < SB_LOG_LEVEL_DEBUG || level > SB_LOG_LEVEL_EMERGENCY)
        return;
    char payload [16 + SB_MAX_OWNER_LEN];
    int n = snprintf (payload, sizeof payload, "%s %s", s_level_names [level], ctx->owner);
    if (n < 0 || (size_t) n >= sizeof payload)
        return;
    s_send (self, ctx->claims.tenant, SB_TOPIC_LOG_LEVEL, payload, (size_t) n);
}

void
sb_cluster_lists_changed (sb_gateway_t *self, const sb_request_ctx_t *ctx, unsigned which, bool on)
{
    char payload [32];
    int n = snprintf (payload, sizeof payload, "%s %s", which == SB_LIST_TOOLS? "tools": "prompts",
                      on? "shown": "hidden");
    s_send (self, ctx->claims.tenant, SB_TOPIC_LISTS_CHANGED, payload, (size_t) n);
}

void
sb_cluster_subscribed (sb_gateway_t *self, const sb_request_ctx_t *ctx, const char *uri, bool on)
{
    if (!ctx->has_session)
        return;
    char payload [SB_MAX_BROADCAST_SIZE];
    int n = snprintf (payload, sizeof payload, "%s %s %s", on? "on": "off", ctx->owner, uri);
    if (n > 0 && (size_t) n < sizeof payload)
        s_send (self, ctx->claims.tenant, SB_TOPIC_SUBSCRIBED, payload, (size_t) n);
}

void
sb_cluster_tokens_revoked (sb_gateway_t *self, const char *tenant, const char *subject,
                           const char *client_id, int64_t revoked_at)
{
    if (s_revoke_add (self, tenant, subject, client_id, revoked_at, "admin") < 0)
        return;
    json_t *doc = json_pack ("{s:s?, s:s?, s:s?, s:I}", "tenant", tenant && *tenant? tenant: NULL,
                             "subject", subject && *subject? subject: NULL,
                             "client_id", client_id && *client_id? client_id: NULL,
                             "revoked_at", (json_int_t) revoked_at);
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    if (text && strlen (text) <= SB_MAX_BROADCAST_SIZE)
        s_send (self, tenant && *tenant? tenant: SB_REVOKE_ANY_TENANT, SB_TOPIC_TOKENS_REVOKED,
                text, strlen (text));
    else
        sb_log_warn ("broadcast_not_sent", "topic=" SB_TOPIC_TOKENS_REVOKED " tenant=%s: the "
                     "payload cannot be built; other gateways do not learn of it",
                     tenant && *tenant? tenant: "-");
    free (text);
}
