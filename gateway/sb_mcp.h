/*  gateway/sb_mcp.h — the MCP methods the gateway answers itself
    (initialize, ping, logging/setLevel, completion/complete, tools/list with
    signed cursors, the resources and prompts methods) and the validation half of
    tools/call; plus the mapping of a broker REPLY into the JSON-RPC
    response for a tool call.

    Pure: takes a request body, returns what to do with it (reply now,
    accept with 202, send a job to the broker, open a listen stream, ask
    the task store) as a tagged union the endpoint applies. No sockets, no
    h2o, so it is unit-tested and fuzzed directly. The revision a request
    speaks is a sb_mcp_revision_t. Implemented by sb_mcp.c (dispatch),
    sb_mcp_stateless.c (2026-07-28), sb_mcp_listen.c (listen streams) and
    sb_mcp_reply.c (broker replies), sharing sb_mcp_int.h. */
#ifndef SB_MCP_H_INCLUDED
#define SB_MCP_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_connector.h"
#include "sb_param_header.h"
#include "sb_rpc.h"
#include "sb_subs.h"
#include "sb_msg.h"

/*  The MCP revisions this gateway speaks, oldest first: `>=` reads "this
    revision or a later one". A request names its revision in the
    MCP-Protocol-Version header (none: SB_MCP_REVISION_DEFAULT); a session
    keeps the one initialize negotiated. */
typedef enum {
    SB_MCP_REVISION_NONE = 0,   /* not a revision this gateway speaks */
    SB_MCP_2025_03_26,          /* what a request without the header speaks */
    SB_MCP_2025_06_18,
    SB_MCP_2025_11_25,          /* the latest initialize negotiates; SSE priming events */
    SB_MCP_2026_07_28,          /* stateless: no initialize, no sessions, _meta per request */
} sb_mcp_revision_t;

#define SB_MCP_REVISION_DEFAULT     SB_MCP_2025_03_26   /* no MCP-Protocol-Version header */
#define SB_MCP_REVISION_LATEST      SB_MCP_2025_11_25   /* initialize's answer to an unknown version */
#define SB_MCP_REVISION_PRIMING     SB_MCP_2025_11_25   /* first revision with priming events */
/*  True for a revision without sessions: every request carries its version
    and capabilities in _meta (2026-07-28). */
#define SB_MCP_STATELESS(revision)  ((revision) >= SB_MCP_2026_07_28)
#define SB_MAX_MCP_NAME_HEADER      1024            /* Mcp-Name header (encoded), bytes */
#define SB_MCP_DEFAULT_RETRY_S      1               /* retry_after when the broker gives none */
/* retry_after of a call the gateway refused because the broker was silent
   for its heartbeat liveness (gateway/sb_broker_client.h), whole seconds */
#define SB_MCP_UNREACHABLE_RETRY_S  ((int) ((SB_GATEWAY_LIVENESS * SB_GATEWAY_HEARTBEAT_MS + 999) / 1000))
#define SB_MAX_MCP_ERROR_DETAIL     200             /* worker error text quoted to users, bytes */
#define SB_MAX_TOOLS_PAGE           1000            /* --tools-page-size upper bound */
#define SB_MAX_CURSOR_LEN           128             /* a list cursor, bytes */

/* A tenant's event log of one connector (webhooks, PROTOCOL.md "Webhooks"):
   the resource template every connector of the set has; resources/read of
   it asks the webhook service (op events/read), its news comes as
   resource_updated. */
#define SB_MCP_EVENTS_PREFIX        "switchboard://events/"
#define SB_MCP_EVENTS_TEMPLATE      SB_MCP_EVENTS_PREFIX "{connector}"

/*  True when `uri` is SB_MCP_EVENTS_PREFIX followed by the name of a
    connector of `connectors` (may be NULL: false); that name is then at
    uri + strlen (SB_MCP_EVENTS_PREFIX). */
bool sb_mcp_events_uri (sb_connectors_t *connectors, const char *uri);

/* JSON-RPC error code for resources/read of an unknown URI (MCP up to
   2025-11-25; 2026-07-28 answers -32602 instead). */
#define SB_RPC_RESOURCE_NOT_FOUND   -32002
/* MCP 2026-07-28 error codes. */
#define SB_RPC_HEADER_MISMATCH      -32020  /* headers missing, malformed or not as the body */
#define SB_RPC_MISSING_CAPABILITY   -32021  /* data: {requiredCapabilities: ClientCapabilities} */
#define SB_RPC_UNSUPPORTED_VERSION  -32022  /* data: {supported: [...], requested} */
/* The tasks extension (SEP-2663), for 2026-07-28 requests that declare it
   under _meta clientCapabilities.extensions. */
#define SB_MCP_TASKS_EXTENSION      "io.modelcontextprotocol/tasks"
#define SB_MAX_TASK_ID_TEXT         64      /* a taskId this gateway issues: bytes */

/* The inputRequests key under which a 2026-07-28 prompts/get asks for the
   prompt's missing required arguments. */
#define SB_MCP_PROMPT_INPUT_KEY     "prompt_arguments"

#define SB_MAX_LISTEN_TASKS         16              /* taskIds one listen stream follows */

/*  The HTTP headers a 2026-07-28 request mirrors from its body: borrowed,
    not NUL-terminated; a NULL pointer means the header was absent. */
typedef struct {
    const char *protocol;       /* MCP-Protocol-Version */
    size_t protocol_len;
    const char *method;         /* Mcp-Method */
    size_t method_len;
    const char *name;           /* Mcp-Name (maybe =?base64?…?= encoded) */
    size_t name_len;
    const sb_param_headers_t *params;   /* Mcp-Param-* (SEP-2243), or NULL */
} sb_mcp_headers_t;

/*  What the handler needs besides the body. */
typedef struct {
    sb_connectors_t *connectors;    /* tools, resources, prompts; may be NULL */
    const char *version;            /* server version for serverInfo */
    size_t page_size;               /* tools per tools/list page (0: SB_MAX_TOOLS) */
    const uint8_t *cursor_key;      /* SB_HMAC_SHA256_LEN bytes signing cursors; NULL: a fixed key */
    const sb_mcp_headers_t *headers;/* the request's headers; NULL: none were given */
    unsigned shown;                 /* SB_LIST_TOOLS, SB_LIST_PROMPTS: the caller's tenant sees
                                       the "hidden" tools, prompts (gateway/sb_lists.h) */
} sb_mcp_env_t;

typedef enum {
    SB_MCP_REPLY    = 0,    /* answer now: http_status + as.reply.body */
    SB_MCP_ACCEPTED = 1,    /* notification or response: 202, no body */
    SB_MCP_CALL     = 2,    /* tools/call: send a job to the broker */
    SB_MCP_LISTEN   = 3,    /* 2026-07-28 subscriptions/listen: open a listen stream */
    SB_MCP_TASK     = 4,    /* 2026-07-28 tasks/get, tasks/update, tasks/cancel: ask the task store */
    SB_MCP_EVENTS   = 5,    /* resources/read of switchboard://events/{connector}: ask the event log */
} sb_mcp_action_t;

/*  What to do with one POST /mcp body: a tagged union. `action` says which
    member of `as` holds the payload; the others are zero. Owned members are
    freed by sb_mcp_outcome_clear; a consumer that takes one sets it NULL. */
typedef struct {
    sb_mcp_action_t action;     /* which member of `as` is set */
    sb_mcp_revision_t revision; /* the revision the request speaks (NONE: a header we do not speak) */
    int http_status;            /* REPLY: 200, or 4xx/5xx; ACCEPTED: 202; LISTEN: 200; else 0 */
    unsigned caps;              /* 2026-07-28: the SB_CLIENT_* bits of _meta clientCapabilities */
    bool tasks;                 /* 2026-07-28: the request declared the tasks extension */
    int log_level;              /* CALL of 2026-07-28: 1 + its _meta logLevel; 0: send no log messages */
    union {
        struct {
            char *body;                     /* JSON text (owned) */
            int set_level;                  /* logging/setLevel: 1 + the level (sb_relay_level); else 0 */
            sb_mcp_revision_t negotiated;   /* a successful initialize: the revision; else NONE */
            json_t *client_caps;            /* initialize: params.capabilities (owned), or NULL */
            int subscribe;                  /* {} to resources/subscribe: 1, unsubscribe: -1; else 0 */
            char *subscribe_uri;            /* its params.uri (owned), for the gateway's table */
        } reply;
        struct {
            json_t *cancel_id;              /* notifications/cancelled: its requestId (owned), or NULL */
            json_t *response;               /* a client's JSON-RPC response (owned), or NULL */
        } accepted;
        struct {
            json_t *id;                     /* JSON-RPC id to answer with (owned) */
            const sb_tool_t *tool;          /* the tool, borrowed from the connector set */
            char *args;                     /* arguments as compact JSON object text (owned) */
            bool progress;                  /* the request carries _meta.progressToken */
            json_t *progress_token;         /* that token (owned), or NULL */
            json_t *input_responses;        /* 2026-07-28: params.inputResponses (owned object), or NULL */
            char *request_state;            /* 2026-07-28: params.requestState (owned), or NULL */
            bool task_capable;              /* tasks declared and the tool's taskSupport not forbidden */
        } call;
        struct {
            json_t *id;                     /* JSON-RPC id of the listen request (owned) */
            char *body;                     /* the acknowledgement to send first (owned) */
            unsigned lists;                 /* the SB_LIST_* bits the stream follows */
            json_t *uris;                   /* the resource URIs it follows (owned array of strings) */
            json_t *tasks;                  /* the taskIds it follows (owned array of strings), or NULL */
        } listen;
        struct {
            json_t *id;                     /* JSON-RPC id to answer with (owned) */
            const char *method;             /* "tasks/get", "tasks/update" or "tasks/cancel" (static) */
            char *task_id;                  /* params.taskId (owned) */
            json_t *input_responses;        /* tasks/update: params.inputResponses (owned object) */
        } task;
        struct {
            json_t *id;                     /* JSON-RPC id to answer with (owned) */
            char *uri;                      /* params.uri (owned) */
            char *connector;                /* the connector it names (owned) */
        } events;
    } as;
} sb_mcp_outcome_t;

/*  Handles one request body in `env`. Always fills `out`; call
    sb_mcp_outcome_clear afterwards.

    The revision is chosen per request (out->revision, from the
    MCP-Protocol-Version header). A 2026-07-28 request is checked as that
    revision wants, every failure being HTTP 400: Mcp-Method must equal the
    method, and Mcp-Name params.name (tools/call, prompts/get) or params.uri
    (resources/read), after decoding a =?base64?…?= value (-32020 when
    missing, malformed or different); params._meta must hold
    io.modelcontextprotocol/protocolVersion equal to the header (-32020 when
    different, -32602 when missing) and an object
    io.modelcontextprotocol/clientCapabilities (-32602), and may hold a valid
    io.modelcontextprotocol/logLevel (-32602). 2026-07-28 requests get
    server/discover; initialize, ping, logging/setLevel and
    resources/(un)subscribe, gone in that revision, get 404 with -32601 like
    any unknown method; every result carries resultType "complete" and
    _meta io.modelcontextprotocol/serverInfo, list/read/discover results
    ttlMs and cacheScope; an unknown resource is -32602. Clients answer no
    server requests in that revision: a JSON-RPC response gets 400 -32600.
    Input-required results: a 2026-07-28 tools/call may carry
    params.inputResponses (an object of objects) and params.requestState (a
    string of at most SB_MAX_REQUEST_STATE_LEN bytes), handed over in `out`
    for the call to verify (-32602 when malformed, null included); a
    2026-07-28 prompts/get missing required arguments, from a client that declared
    elicitation, is answered with an input-required result asking for them
    under SB_MCP_PROMPT_INPUT_KEY (a form of strings), and the retry's
    accepted answer fills them in (declined or cancelled: -32602).
    A 2026-07-28 subscriptions/listen becomes SB_MCP_LISTEN: params.notifications
    must be an object whose toolsListChanged, promptsListChanged and
    resourcesListChanged are booleans and resourceSubscriptions an array of
    at most SB_MAX_LISTEN_URIS strings of at most SB_MAX_SUB_URI_LEN bytes
    (gateway/sb_subs.h), and the id at most SB_MAX_LISTEN_ID_LEN bytes of
    JSON (-32602 otherwise, HTTP 200). The stream follows the lists asked
    true and the URIs that a resource or template matches now; the others
    (unknown URIs, unknown filter keys) are left out, and out->as.listen.body is the
    notifications/subscriptions/acknowledged that says so (as.listen.body), tagged with the
    request's id as io.modelcontextprotocol/subscriptionId.
    The tasks extension (SEP-2663): out->tasks tells whether the request
    declared io.modelcontextprotocol/tasks (clientCapabilities.extensions);
    server/discover advertises it. A tools/call of a tool whose taskSupport
    is "required" from a client without it is -32021 naming it (HTTP 400;
    an older revision gets an isError result); with it, out->as.call.task_capable
    is set when the tool's taskSupport is not "forbidden". tasks/get,
    tasks/update and tasks/cancel become SB_MCP_TASK (out->as.task: method,
    task_id, for tasks/update input_responses) after their checks:
    Mcp-Name must equal params.taskId (-32020), the extension must be
    declared (-32021), the taskId must be 1..SB_MAX_TASK_ID_TEXT base64url
    characters (otherwise no task of ours: -32602 "Unknown task") and
    tasks/update needs inputResponses, an object of objects (-32602). A
    subscriptions/listen asking for taskIds without the extension is
    -32021; with it, taskIds must be an array of at most
    SB_MAX_LISTEN_TASKS strings (-32602), and those that could be taskIds
    of ours are followed (out->as.listen.tasks) and acknowledged: the stream
    gets notifications/tasks with each task's state as tasks/get gives it,
    for the caller's own tasks only (sb_task.c).
    Any other request (older revision) is answered as before, except that a
    body _meta protocolVersion differing from the header is -32020. */
void sb_mcp_handle (const sb_mcp_env_t *env, const char *body, size_t len,
                    sb_mcp_outcome_t *out);

/*  Frees what `out` owns and zeroes it. */
void sb_mcp_outcome_clear (sb_mcp_outcome_t *out);

/*  The JSON-RPC response text (new string) for a tools/call whose REPLY came
    back with `status` and `payload` (a sb_job result; may be NULL/0):
    OK → the worker's CallToolResult as the result; every other outcome → a
    CallToolResult with isError true, a sentence for a person and
    _meta {"error_type": <status name>, "retry_after": s (overloaded and
    unavailable only)}. `unavailable` with a payload is the broker's (no
    worker; its retry advice in the payload); without one it is the
    gateway's own: the broker is unreachable. `limited` mapped here has no
    quota group, so it gets the generic refusal of sb_ratelimit.h
    (error_type "limited"); sb_call.c answers it with the group instead. */
char *sb_mcp_call_reply (const json_t *id, sb_status_t status,
                         const uint8_t *payload, size_t size) SB_MUST_USE;

/*  A CallToolResult with isError true, `text` as its one text content and
    _meta {"error_type": error_type} (+ retry_after when > 0). New reference. */
json_t *sb_mcp_error_result (const char *text, const char *error_type, int retry_after) SB_MUST_USE;

/*  For a 2026-07-28 tools/call whose REPLY came back `failed` with an rpc_error
    -32021 (sb_worker_job_fail_rpc: the tool needs a capability the client
    did not declare): that JSON-RPC error for request `id` (new text),
    which goes out with HTTP 400. NULL for any other payload. */
char *sb_mcp_call_error (const json_t *id, const uint8_t *payload, size_t size) SB_MUST_USE;

/*  The JSON-RPC error a `failed` REPLY carries (sb_worker_job_fail_rpc):
    a new {"code", "message"[, "data"]} object, or NULL when the payload
    has none (a plain failure). */
json_t *sb_mcp_rpc_error (const uint8_t *payload, size_t size) SB_MUST_USE;

/*  The subscriptions/listen result that ends listen stream `id` (its
    JSON-RPC id as compact JSON text) gracefully: {"resultType":
    "complete", "_meta": {subscriptionId, serverInfo}} as the response to
    that request (new text), or NULL when out of memory or `id` is not JSON. */
char *sb_mcp_listen_end (const char *id, const char *version) SB_MUST_USE;

/*  A notification `method` (e.g. "notifications/tools/list_changed") for
    listen stream `id` (JSON text): params._meta carries the subscriptionId,
    and params.uri `uri` when not NULL (new text; NULL when out of memory). */
char *sb_mcp_listen_note (const char *id, const char *method, const char *uri) SB_MUST_USE;

/*  notifications/tasks for listen stream `id` (JSON text): params are the
    `task` object as tasks/get gives it, _meta carrying the subscriptionId
    (new text; NULL when out of memory or `id` is not JSON). */
char *sb_mcp_listen_task_note (const char *id, const json_t *task) SB_MUST_USE;

/*  For a 2026-07-28 request: `body` (a JSON-RPC response text, taken) with
    resultType "complete" (unless it has one, e.g. "input_required") and
    _meta serverInfo added to its result (and ttlMs
    0, cacheScope "private" when `cacheable`); an error's -32002 becomes
    -32602. Returns the new text, or `body` itself when it is not a result or
    error object. NULL only when `body` is NULL. */
char *sb_mcp_stateless_reply (char *body, const char *version, bool cacheable) SB_MUST_USE;

/*  The JSON-RPC error text (new string) for an unsupported protocol version
    `requested` (`len` bytes): -32022 with data {supported, requested}, for
    request `id` (NULL: id null). */
char *sb_mcp_unsupported_version (const json_t *id, const char *requested, size_t len) SB_MUST_USE;

/*  The revision `len` bytes of `name` name ("2025-06-18"…), or
    SB_MCP_REVISION_NONE when this gateway does not speak it (the
    MCP-Protocol-Version header check; 2026-07-28 included). */
sb_mcp_revision_t sb_mcp_revision_parse (const char *name, size_t len);

/*  The name of `revision` ("2025-11-25"…; static), or NULL for NONE. */
const char *sb_mcp_revision_name (sb_mcp_revision_t revision);

/*  The revision initialize answers a client asking `requested` (may be
    NULL): the same when it is one initialize negotiates, else
    SB_MCP_REVISION_LATEST (never 2026-07-28: that revision has no
    handshake). */
sb_mcp_revision_t sb_mcp_negotiate (const char *requested);

#endif
