/*  gateway/sb_cluster.h — what one gateway tells all the others, through
    the broker's BROADCAST (proto/PROTOCOL.md, "Broadcasts"), so that the
    session state a client changes on one gateway holds on every gateway
    behind the same load balancer:

      - "session_ended": DELETE /mcp ended a session. Every gateway adds it
        to its ended set (404 from then on), closes that session's GET
        streams and forgets its resource subscriptions. Payload: the
        Mcp-Session-Id.
      - "log_level": logging/setLevel set a session's level. Every gateway
        filters the notifications/message it relays for that session by
        it. Payload: "<level name> <Mcp-Session-Id>".
      - "task_cancelled": tasks/cancel; the gateway running that task's
        job stops it. Payload: the taskId.
      - "task_changed": a task's status was written; the listen streams
        following it get its state. Payload: the taskId.
      - "subscribed": resources/subscribe or unsubscribe changed a
        session's subscriptions; every gateway keeps the same, so the
        session's GET streams hear resources/updated wherever they are
        open. Payload: "on|off <Mcp-Session-Id> <uri>".
      - "lists_changed": a tenant showed or hid its hidden tools or
        prompts (sb_lists.h); every gateway does the same and tells that
        tenant's streams. Payload: "tools|prompts shown|hidden".
      - "tokens_revoked": the operator's admin request relayed here
        revoked access tokens (a tenant deleted or its tokens revoked, a
        user removed, a password reset, a user's tokens revoked, a client
        revoked); every gateway adds the same revocation to its list
        (sb_revoke.h) and refuses those tokens from then on. Payload: JSON
        {"tenant", "subject", "client_id", "revoked_at"} (tenant alone,
        tenant and subject, or client_id alone; revoked_at in seconds);
        the broadcast's tenant is the payload's, "_admin" for a client.
      - "resource_updated": not from a gateway but from a worker's PUBLISH
        (the webhook service, after new events of a connector were
        committed; PROTOCOL.md "Webhooks"), which the broker passes on as
        a BROADCAST: the tenant's sessions subscribed to the URI and its
        listen streams following it get notifications/resources/updated.
        Payload: the resource URI (1..SB_MAX_RESOURCE_URI_LEN bytes).

    Each broadcast carries the tenant of the token that caused it, and a
    receiver applies it only when the session ID verifies (signed by the
    gateways' key, not aged out, not ended already) and was issued to that
    tenant: a session ID alone does not let one tenant act on another's
    session, and a forged one is ignored. What is applied or refused is
    logged, never with the session ID (the broker client counts the
    broadcasts sent and received).

    Delivery is best effort and one hop: a gateway the broker does not know
    at that moment (starting, cut off from the broker) misses the news, and
    a request reaching another gateway in the instant before the broadcast
    does is served as before. Such a gateway still ends the session when it
    ages out (SB_MAX_SESSION_AGE_S). */
#ifndef SB_CLUSTER_H_INCLUDED
#define SB_CLUSTER_H_INCLUDED

#include "sb_gateway_int.h"

#define SB_TOPIC_SESSION_ENDED  "session_ended"     /* payload: the Mcp-Session-Id */
#define SB_TOPIC_LOG_LEVEL      "log_level"         /* payload: "<level> <Mcp-Session-Id>" */
#define SB_TOPIC_TASK_CANCELLED "task_cancelled"    /* payload: the taskId */
#define SB_TOPIC_LISTS_CHANGED  "lists_changed"     /* payload: "tools|prompts shown|hidden" */
#define SB_TOPIC_SUBSCRIBED     "subscribed"        /* payload: "on|off <Mcp-Session-Id> <uri>" */
#define SB_TOPIC_TASK_CHANGED   "task_changed"      /* payload: the taskId */
#define SB_TOPIC_TOKENS_REVOKED "tokens_revoked"    /* payload: {"tenant", "subject", "client_id", "revoked_at"} */
#define SB_TOPIC_RESOURCE_UPDATED "resource_updated" /* payload: a resource URI (a worker's PUBLISH) */
#define SB_REVOKE_ANY_TENANT    "_admin"            /* the broadcast's tenant for a client's revocation */

/*  Routes the BROADCASTs this gateway's broker client receives to the
    handlers below (`self` must outlive its broker client). */
void sb_cluster_start (sb_gateway_t *self);

/*  DELETE /mcp ended the session of `ctx` here (ctx->has_session): tells
    the other gateways. Never fails the request: a broadcast that cannot
    be sent is logged (the others then learn of it only by ageing out). */
void sb_cluster_session_ended (sb_gateway_t *self, const sb_request_ctx_t *ctx);

/*  logging/setLevel set `level` (SB_LOG_LEVEL_DEBUG…EMERGENCY) for the
    session of `ctx` here: tells the other gateways. Same outcome on
    failure as sb_cluster_session_ended. */
void sb_cluster_log_level (sb_gateway_t *self, const sb_request_ctx_t *ctx, int level);

/*  resources/subscribe (`on`) or unsubscribe of `uri` in the session of
    `ctx` (ctx->has_session) was applied here: tells the other gateways,
    which apply it to their tables. Same outcome on failure as
    sb_cluster_session_ended (the subscription then holds here only). */
void sb_cluster_subscribed (sb_gateway_t *self, const sb_request_ctx_t *ctx, const char *uri,
                            bool on);

/*  The tenant of `ctx` showed (`on`) or hid its hidden entries of the
    lists in `which` (SB_LIST_TOOLS, SB_LIST_PROMPTS) here: tells the other
    gateways, which do the same (sb_gateway_lists_set). Same outcome on
    failure as sb_cluster_session_ended. */
void sb_cluster_lists_changed (sb_gateway_t *self, const sb_request_ctx_t *ctx, unsigned which,
                               bool on);

/*  An admin request relayed here revoked the access tokens of a scope
    (sb_revoke_add: `tenant` alone, `tenant` and `subject`, or `client_id`
    alone) at `revoked_at` (seconds): adds it to this gateway's list, logs
    it (a full list that dropped its oldest entry is a warning) and tells
    the other gateways. Never fails: a broadcast that cannot be sent is
    logged, and the others then refuse those tokens only when they expire. */
void sb_cluster_tokens_revoked (sb_gateway_t *self, const char *tenant, const char *subject,
                                const char *client_id, int64_t revoked_at);

/*  Applies one BROADCAST from another gateway (the sb_broker_broadcast_fn
    that sb_cluster_start installs; `arg` is the gateway). Public so that
    tests can feed it directly. */
void sb_cluster_on_broadcast (void *arg, const char *tenant, const char *topic,
                              const uint8_t *payload, size_t size);

#endif
