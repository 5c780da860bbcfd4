/*  gateway/sb_gateway_int.h — the gateway's state, shared by its files:
    sb_gateway.c (options, h2o setup, routing, the loop), sb_endpoint.c
    (the MCP endpoint: POST, GET and DELETE /mcp), sb_call.c (tool calls)
    and sb_notify.c (connector reloads, change notifications and resource
    subscriptions). Not a public header. */
#ifndef SB_GATEWAY_INT_H_INCLUDED
#define SB_GATEWAY_INT_H_INCLUDED

#include "sb_attr.h"
#include "sb_gateway.h"
#include "sb_broker_client.h"
#include "sb_http.h"
#include "sb_keyfile.h"
#include "sb_lists.h"
#include "sb_mcp.h"
#include "sb_origin.h"
#include "sb_relay.h"
#include "sb_revoke.h"
#include "sb_session.h"
#include "sb_sse.h"
#include "sb_subs.h"
#include "sb_connector.h"
#include "sb_token.h"
#include "sb_job.h"
#include "sb_tls.h"

#include <jansson.h>
#include <signal.h>

typedef struct _s_server_t s_server_t;

struct _sb_gateway_t {
    s_server_t *server;                         /* h2o config and context */
    h2o_evloop_t *loop;                         /* the one event loop */
    h2o_socket_t *listener;                     /* listening socket, NULL once stopped */
    int port;                                   /* port actually bound */
    sb_tls_t *tls;                              /* HTTPS (--tls-cert-file), NULL: plain HTTP */
    sb_broker_client_t *broker;                 /* DEALER + in-flight table */
    sb_connectors_t *connectors;                /* tools and schemas (one reference; calls hold theirs) */
    char *connectors_dir;                       /* --connectors, re-read by sb_gateway_reload */
    volatile sig_atomic_t reload;               /* set by sb_gateway_request_reload */
    uint64_t reloads;                           /* reloads that swapped the set */
    uint64_t reload_failures;                   /* reloads that kept the old set */
    sb_subs_t *subs;                            /* resources/subscribe per session; listen streams */
    sb_lists_t *lists;                          /* tenants that see their hidden tools, prompts */
    sb_sessions_t *sessions;                    /* Mcp-Session-Id issue / verify / end */
    sb_origin_t *origin;                        /* Origin and Host allow-lists */
    sb_sse_hub_t *sse;                          /* SSE streams and the replay ring */
    size_t tools_page_size;                     /* --tools-page-size */
    uint8_t key [SB_MAX_TOKEN_KEY_LEN];         /* HS256 token key */
    sb_token_cache_t *tokens;                   /* bearer tokens verified with it */
    sb_revoke_t *revoked;                       /* access tokens refused before they expire */
    uint64_t revoked_refused;                   /* tokens refused by it */
    sb_jwks_t *jwks;                            /* EdDSA public keys (--token-jwks-file), or NULL */
    char *jwks_json;                            /* the set /.well-known/jwks.json serves, or NULL */
    size_t key_len;                             /* bytes of key */
    char audience [SB_MAX_PUBLIC_URL_LEN + 8];  /* <public-url>/mcp */
    char resource_metadata_url [SB_MAX_PUBLIC_URL_LEN + 48];    /* <public-url>/.well-known/oauth-protected-resource */
    char www_authenticate [SB_MAX_PUBLIC_URL_LEN + 160]; /* 401 challenge, no error */
    char www_invalid [SB_MAX_PUBLIC_URL_LEN + 192];      /* 401 challenge, invalid_token */
    char *metadata;                             /* RFC 9728 document (JSON text) */
    char *as_metadata;                          /* RFC 8414 document, NULL: issuer not https */
    volatile sig_atomic_t stop;                 /* set by sb_gateway_stop */
    size_t calls;                               /* call contexts alive */
    zhashx_t *call_keys;                        /* "<owner>\n<JSON-RPC id>" → newest s_call_t */
    sb_levels_t *levels;                        /* logging/setLevel per session */
    uint64_t notes_dropped;                     /* NOTIFYs not sent (no stream, level, malformed) */
    uint64_t asks_refused;                      /* ASKs answered with an error at once */
    uint64_t cancelled;                         /* calls cancelled by notifications/cancelled */
    uint64_t limited;                           /* tool calls and HTTP jobs a quota refused */
    zhashx_t *task_calls;                       /* taskId → the s_call_t running its job here */
    zlistx_t *task_watches;                     /* listen streams following taskIds (sb_task.c) */
    uint32_t task_timeout_ms;                   /* --task-timeout-ms: a task's run deadline */
    uint32_t task_ttl_ms;                       /* --task-ttl-ms: how long a task is kept */
    uint32_t task_poll_ms;                      /* --task-poll-ms: pollIntervalMs we suggest */
    uint64_t tasks_created;                     /* calls this gateway turned into tasks */
    //  The authorization server and the admin API, relayed (sb_http_job.c)
    bool http_job_started;                      /* sb_http_job_start ran: its timers exist */
    bool admin_on;                              /* --admin-key-file given: /admin/ is served */
    uint8_t admin_digest [SB_HMAC_SHA256_LEN];  /* SHA-256 of the operator key */
    bool jwks_fetching;                         /* the key set comes from the token service */
    sb_broker_call_t *jwks_call;                /* the oauth/jwks job in flight, or NULL */
    int64_t jwks_asked_at;                      /* monotonic ms of the last oauth/jwks, 0: never */
    uint64_t jwks_fetches;                      /* oauth/jwks jobs sent */
    bool jwks_failing;                          /* the last oauth/jwks failed (logged once) */
    h2o_timeout_t jwks_refresh;                 /* --jwks-refresh-ms */
    h2o_timeout_entry_t jwks_refresh_entry;
    h2o_timeout_t jwks_soon;                    /* SB_JWKS_MIN_INTERVAL_MS: a refetch held back */
    h2o_timeout_entry_t jwks_soon_entry;
    h2o_timeout_t jwks_wait;                    /* SB_JWKS_WAIT_MS: a request's longest wait */
    h2o_linklist_t jwks_waiters;                /* /mcp requests waiting for the key set */
    int jwks_waiting;                           /* how many */
    h2o_req_t *jwks_resumed;                    /* the request being run again after its wait */
    //  Webhooks in (sb_webhook.c)
    size_t webhook_max_body;                    /* --webhook-max-body, bytes */
    uint64_t webhooks_relayed;                  /* webhook/receive jobs sent */
    uint64_t webhooks_refused;                  /* webhook requests answered without a job */
    size_t audits_pending;                      /* audit/record jobs sent, not yet answered */
    uint64_t audits_sent;                       /* audit/record jobs sent */
    uint64_t audits_dropped;                    /* refusals not sent: the bound, the broker */
};

#define SB_JWKS_MIN_INTERVAL_MS 1000    /* oauth/jwks for an unknown kid: at most one a second */
#define SB_JWKS_WAIT_MS         2000    /* a /mcp request waits for the key set at most this */
#define SB_JWKS_MAX_WAITERS     4096    /* requests waiting for it at once; more: refused at once */
#define SB_MIN_ADMIN_KEY_LEN    16      /* shortest operator key (--admin-key-file), bytes */

#define SB_MAX_OWNER_LEN        (SB_MAX_SESSION_ID_LEN + SB_MAX_TENANT_LEN + 16)

/*  What the checks common to every /mcp request found. */
typedef struct {
    sb_token_claims_t claims;                   /* the verified token */
    bool has_session;                           /* Mcp-Session-Id given and valid */
    sb_session_t session;                       /* it, when has_session */
    sb_mcp_revision_t revision;                 /* the revision this request speaks (the session's
                                                   when it has one); 2026-07-28: no session */
    char owner [SB_MAX_OWNER_LEN];              /* who may resume its streams */
    char level_key [2 * SB_HMAC_SHA256_LEN + 1];/* the session's key in `levels` ("" without one) */
} sb_request_ctx_t;

/*  POST /mcp, GET /mcp, DELETE /mcp (sb_endpoint.c). Each answers `req`
    (now, or later for a tool call or a stream). */
typedef void (sb_endpoint_fn) (sb_gateway_t *self, h2o_req_t *req);
void sb_endpoint_post (sb_gateway_t *self, h2o_req_t *req);
void sb_endpoint_get (sb_gateway_t *self, h2o_req_t *req);
void sb_endpoint_delete (sb_gateway_t *self, h2o_req_t *req);

/*  Tool calls (sb_call.c). A call runs from sb_call_start until its REPLY,
    its local deadline, its cancellation, or (JSON responses only) the end
    of its HTTP request; meanwhile its NOTIFY and ASK messages are relayed
    to its SSE stream (sb_relay.h). */

/*  Sends the job for a validated tools/call (outcome->action SB_MCP_CALL;
    takes outcome->as.call.id and .progress_token) and answers `req` now or later:
    as one JSON response, or as an SSE stream when `stream` is set. A
    2026-07-28 call (SB_MCP_STATELESS (outcome->revision)) gets resultType and serverInfo on its
    result, log messages only at or above its _meta logLevel (none without
    one), no priming event, and every ASK of its worker answered at once
    with an error: input-required results are not relayed yet. */
void sb_call_start (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                    sb_mcp_outcome_t *outcome, bool stream);

/*  notifications/cancelled for `request_id`: cancels the call of that
    JSON-RPC id in the same session. Sends CANCEL, ends the call's SSE
    stream without a JSON-RPC response and drops a later REPLY. Calls in a
    session always stream, so there is no JSON response to end. Without a
    session nothing is cancelled: nothing tells one client of a tenant from
    another (matching on the HTTP/2 connection would; not done yet).
    Returns 0 when a call was cancelled, -1 when none matched (ignored, as
    MCP says). */
int sb_call_cancel (sb_gateway_t *self, const sb_request_ctx_t *ctx,
                    const json_t *request_id);

/*  resources/subscribe and unsubscribe (sb_notify.c): applies the
    outcome sb_mcp_handle gave (outcome->as.reply.subscribe set; the URI already
    checked) to this gateway's table for the request's session. On refusal
    (no session, a limit of sb_subs.h) outcome->as.reply.body becomes a JSON-RPC
    error -32000 with the reason. Unsubscribing what was not subscribed is
    answered {} as well. */
void sb_gateway_subscribe (sb_gateway_t *self, const sb_request_ctx_t *ctx,
                           sb_mcp_outcome_t *outcome);

/*  The sb_sessions_on_end hook: forgets the ended session's subscriptions
    (`arg` is the gateway). */
void sb_gateway_session_ended (const sb_session_t *session, void *arg);

/*  A 2026-07-28 subscriptions/listen (outcome->action SB_MCP_LISTEN, its
    filter checked; sb_notify.c): keeps the stream's filter in this
    gateway's table and answers `req` with an SSE stream that stays open,
    its first event outcome->as.listen.body (the acknowledgement), then keep-alives
    and, after each reload, the notifications the filter asked for. When a
    limit of sb_subs.h refuses it, `req` gets a JSON-RPC error -32000 with
    the reason instead (HTTP 200). The stream ends when its client leaves
    (the subscription is forgotten) or when the gateway stops
    (sb_gateway_listen_end_all). */
void sb_gateway_listen (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                        const sb_mcp_outcome_t *outcome);

/*  Shows (`on`) or hides `tenant`'s hidden entries of the lists in `which`
    (SB_LIST_TOOLS, SB_LIST_PROMPTS; sb_lists.h) on this gateway, and tells
    the tenant's clients here what changed: notifications/tools/list_changed
    or prompts/list_changed on the GET streams of its sessions and on its
    listen streams that follow that list (sb_notify.c). Returns the bits
    that changed, 0, or SB_LISTS_FULL (logged; nothing changed). */
int sb_gateway_lists_set (sb_gateway_t *self, const char *tenant, unsigned which, bool on);

/*  A tools/call (outcome->action SB_MCP_CALL) of a tool whose builtin the
    gateway runs itself: "toggle_hidden_tools" or "toggle_hidden_prompts"
    shows the caller's tenant its hidden tools or prompts, or hides them
    again (sb_gateway_lists_set), tells the other gateways
    (sb_cluster_lists_changed) and answers `req` with a CallToolResult
    saying which. Returns false, having done nothing, for any other tool. */
bool sb_gateway_list_builtin (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                              const sb_mcp_outcome_t *outcome);

/*  Ends every listen stream gracefully: each gets the subscriptions/listen
    result (resultType "complete", its subscriptionId) as the response to
    its request, then its stream ends and its subscription is forgotten.
    Called when the gateway stops, before the other streams are closed. */
void sb_gateway_listen_end_all (sb_gateway_t *self);

/*  The client POSTed a JSON-RPC response (`response`, the whole message).
    If its id is "sb:<corr_id>:<ask_id>" it answers a question a worker asked
    inside call corr_id, and is sent to the broker as ANSWER for `tenant`
    (the token's; any gateway can route it: no state here). Returns 0 when
    sent on, -1 when the id is not such an id (the POST gets 400), -2 when
    the broker cannot take it now (503). */
int sb_gateway_route_answer (sb_gateway_t *self, const char *tenant, const json_t *response)
    SB_MUST_USE;

/*  ---------------------------------------------------------------------
    Tasks (SEP-2663; sb_task.c and the task half of sb_call.c). The task
    store is the `task` worker role (PostgreSQL): every gateway reads and
    writes tasks through it, so any gateway serves any task.

    A 2026-07-28 tools/call whose client declared the extension, for a tool
    whose taskSupport is not forbidden, is sent with the long deadline
    (--task-timeout-ms). When its worker sends the promote signal the call
    becomes a task: task/create, then CreateTaskResult to the client, then
    the job's RESULT goes to the store (task/finish) instead of the client.
    A call that ends before any promote is answered as usual. */

/*  tasks/get, tasks/update, tasks/cancel (outcome->action SB_MCP_TASK):
    asks the store for the token's tenant and subject and answers `req`. */
void sb_task_request (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                      sb_mcp_outcome_t *outcome);

/*  Sends `job` (op task/…) to the store for `tenant`; SB_BROKER_* codes. */
int sb_task_store_send (sb_gateway_t *self, const char *tenant, const sb_job_t *job,
                        sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **handle_p)
    SB_MUST_USE;

/*  The store's answer in a REPLY (new JSON object), or NULL when the
    status is not ok or the payload is not a result holding an object. */
json_t *sb_task_store_answer (sb_status_t status, const uint8_t *payload, size_t size) SB_MUST_USE;

/*  True when a NOTIFY payload is the promote signal
    ({"jsonrpc":"2.0","method":"switchboard/promote"}). */
bool sb_task_is_promote (const uint8_t *payload, size_t size);

/*  A 2026-07-28 listen stream (listener `number` of self->subs) opened
    with taskIds (`task_ids`, an array of well-formed ids, sb_mcp.h) by
    `tenant`'s `subject`: it gets notifications/tasks with each task's
    current state now, and again each time the task's status changes
    (sb_task_changed), as tasks/get gives it to that subject: a task that
    is not theirs is never sent. Forgotten when the listener goes. */
void sb_task_watch (sb_gateway_t *self, uint64_t number, const char *tenant, const char *subject,
                    const json_t *task_ids);

/*  The status of task `task_id` of `tenant` changed (this gateway wrote
    it): the listen streams that follow it, here and (`spread`: BROADCAST
    task_changed) on every other gateway, get its new state. */
void sb_task_changed (sb_gateway_t *self, const char *tenant, const char *task_id, bool spread);

/*  A new taskId: 128 random bits as base64url (22 characters). Returns 0,
    or -1 when no randomness could be had. */
int sb_task_new_id (char id [SB_MAX_TASK_ID_TEXT + 1]) SB_MUST_USE;

/*  The gateway is stopping: every task whose job runs from here has that
    job CANCELled and is finished failed ("the gateway running it shut
    down"), so no worker keeps running work nobody will record. */
void sb_call_tasks_stop (sb_gateway_t *self);

/*  Runs the next round of task `task_id` after tasks/update answered its
    questions: `resume` is the store's {"connector", "tool", "args",
    "inputs", "caps", "round"}. The job's RESULT goes to the store. */
void sb_call_task_resume (sb_gateway_t *self, const char *tenant, const char *subject,
                          const char *task_id, const json_t *resume);

/*  Task `task_id` of `tenant` was cancelled (here, or news from another
    gateway): if its job runs from here, CANCEL it and forget it (the store
    already says cancelled). */
void sb_call_task_cancelled (sb_gateway_t *self, const char *tenant, const char *task_id);

/*  ---------------------------------------------------------------------
    The authorization server and the admin API (sb_http_job.c): routes the
    gateway relays as HTTP jobs to service `token` (PROTOCOL.md, "HTTP
    jobs"), and the key set the token service signs access tokens with. */

/*  Sets up what sb_http_job.c keeps (after the broker client exists):
    reads --admin-key-file, accepts the public URL as a token's iss, and
    unless --token-jwks-file gave a static set or there is no issuer, asks
    the token service for its key set now and every --jwks-refresh-ms.
    Returns 0, or -1 after logging why. */
int sb_http_job_start (sb_gateway_t *self, sb_config_t *config) SB_MUST_USE;

/*  The gateway stops: no more key set jobs; requests waiting for the key
    set are verified with what it holds now. */
void sb_http_job_stop (sb_gateway_t *self);

/*  Frees what sb_http_job_start set up. Idempotent. */
void sb_http_job_destroy (sb_gateway_t *self);

/*  Serves `req` when its path is a relayed route (/authorize, /token,
    /revoke, /register, and /admin/… when --admin-key-file was given) and
    there is an issuer (the RFC 8414 metadata is served): checks the
    method (405), the operator key (401), the body (413, 400), then sends
    the job and answers when it ends (the response it carries, or 502, 503,
    504). Returns false, having done nothing, for any other path. */
bool sb_http_job_route (sb_gateway_t *self, h2o_req_t *req);

/*  A bearer token was refused with SB_TOKEN_BAD_SIG: if it is EdDSA and
    names a kid the key set lacks, and the set comes from the token
    service, asks for the set again (at once, or once
    SB_JWKS_MIN_INTERVAL_MS has passed since the last ask; one in flight)
    and returns true: `req` waits for the answer (at most SB_JWKS_WAIT_MS),
    then `resume (self, req)` runs it again, and this returns false for
    that run. Returns false, having done nothing, otherwise. */
bool sb_gateway_jwks_await (sb_gateway_t *self, h2o_req_t *req, const char *token,
                            sb_endpoint_fn *resume);

/*  ---------------------------------------------------------------------
    Webhooks (sb_webhook.c; proto/PROTOCOL.md "Webhooks"). */

/*  Serves `req` when its path is under /webhooks: POST /webhooks/{endpoint}
    is relayed as job webhook/receive (service `webhook`, tenant
    `_webhook`) with the raw body and every header, and answered with the
    HTTP response of its RESULT; a path that is not one well-formed
    endpoint ID is 404, another method 405, a body past --webhook-max-body
    413, headers past SB_MAX_WEBHOOK_HEADERS or SB_MAX_WEBHOOK_HEADER_BYTES
    431, all without a job; RESULT failed, no worker or a full queue 503
    with Retry-After, the deadline (--webhook-timeout-ms) 504. Returns
    false, having done nothing, for any other path. */
bool sb_webhook_route (sb_gateway_t *self, h2o_req_t *req);

/*  resources/read of switchboard://events/{connector} (outcome->action
    SB_MCP_EVENTS; the connector known): sends op events/read for the
    token's tenant ({"connector", "limit": 20}) and answers `req` with the
    service's {"events": […]} as one text content (application/json), or
    a JSON-RPC error -32603 when it fails or does not answer in time. */
void sb_webhook_events_read (sb_gateway_t *self, h2o_req_t *req, const sb_request_ctx_t *ctx,
                             sb_mcp_outcome_t *outcome);

/*  A worker's resource_updated (BROADCAST from its PUBLISH): sends
    notifications/resources/updated {"uri"} to the GET streams of every
    session of `tenant` subscribed to `uri` and to every listen stream of
    `tenant` that follows it (sb_notify.c). Returns how many streams were
    sent it. */
size_t sb_gateway_resource_updated (sb_gateway_t *self, const char *tenant, const char *uri);

/*  ---------------------------------------------------------------------
    Audit (sb_audit_client.c). The gateway has no database: a refusal it
    decides about an authenticated caller (another's session, a token for
    another audience, a scope the token lacks, an access token on the admin
    API) goes to the token service's
    audit log as op audit/record (proto/PROTOCOL.md, "Audit records").

    Sends audit/record for the tenant and subject of `claims`: `action`
    (SB_AUDIT_*), `detail` (a JSON object, taken; NULL: {}). Fire and
    forget: no client waits for it, its reply is only counted. Dropped and
    counted in audits_dropped (logged once per SB_AUDIT_DROP_LOG_EVERY)
    when SB_MAX_AUDIT_PENDING wait for their reply or the broker refuses
    it. */
#define SB_MAX_AUDIT_PENDING        256     /* audit/record jobs waiting for their reply */
#define SB_AUDIT_DROP_LOG_EVERY     1000    /* a drop is logged once per this many */
#define SB_AUDIT_SESSION_REFUSED    "session_refused"   /* another user's or tenant's Mcp-Session-Id */
#define SB_AUDIT_AUDIENCE_REFUSED   "audience_refused"  /* a good signature, another audience */
#define SB_AUDIT_SCOPE_REFUSED      "scope_refused"     /* 403 insufficient_scope */
#define SB_AUDIT_ADMIN_REFUSED      "admin_refused"     /* an access token on /admin/ (401) */
void sb_gateway_audit (sb_gateway_t *self, const sb_token_claims_t *claims, const char *action,
                       json_t *detail);

#endif
