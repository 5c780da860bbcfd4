/*  connector/sb_connector.h — declarative connector definitions (the .json files in connectors/).

    A connector is data, not C: its base URL, auth scheme, limits and tools
    (name, description, input schema, annotations, request template, result
    mapping). The gateway reads the tool list and schemas; the api worker
    renders requests from templates and maps responses into MCP results.
    The file format is documented in connectors/README.md.

    Templates escape each value for its context (URL path segment, query
    parameter, JSON body value), so arguments can never change the shape of
    an upstream request: no new path segments, no extra query parameters,
    no injected JSON keys. */
#ifndef SB_CONNECTOR_H_INCLUDED
#define SB_CONNECTOR_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_MAX_CONNECTOR_FILE   (1u << 20)  /* one definition file, bytes */
#define SB_MAX_CONNECTORS       256         /* connectors loaded at once */
#define SB_MAX_CONNECTOR_DIRS   16          /* folders in one connectors list */
#define SB_MAX_TOOLS            4096        /* tools over all connectors */
#define SB_MAX_URL_LEN          8192        /* rendered upstream URL, bytes */
#define SB_MAX_UPSTREAM_BODY    (1u << 20)  /* rendered request body, bytes */
/*  Quota declarations (connectors/README.md "Quotas"); the same bounds as
    REQUEST's cost, budget_limit and budget_window_s (proto/sb_limits.h). */
#define SB_MAX_TOOL_COST        1000u       /* a tool's "cost" */
#define SB_MAX_BUDGET_REQUESTS  1000000000u /* upstream_budget.requests */
#define SB_MAX_BUDGET_WINDOW    2592000u    /* upstream_budget.window_s: 30 days */

typedef struct _sb_connectors_t sb_connectors_t;   /* every loaded connector */
typedef struct _sb_connector_t sb_connector_t;     /* one connector (owned by the set) */
typedef struct _sb_tool_t sb_tool_t;               /* one tool (owned by its connector) */

/*  Loads every *.json file in `dirs`: one folder, or up to
    SB_MAX_CONNECTOR_DIRS of them separated by ':' (PATH-like, e.g. the
    product's connectors/ plus a test's fixtures), all sorted together by
    file name. Returns the set, or NULL with *error set to a new string
    naming the file (or folder) and the problem (caller frees). Connector
    and tool names must be unique across all of them; a "file" a connector
    reads is relative to that connector's own folder. */
sb_connectors_t *sb_connectors_load (const char *dirs, char **error) SB_MUST_USE;

/*  Releases the caller's reference to the set and nulls the caller's
    pointer; the set is freed with its last reference. Idempotent. A set
    comes from sb_connectors_load holding one reference. */
void sb_connectors_destroy (sb_connectors_t **self_p);

/*  Takes another reference to the set (returns it). Whoever keeps a tool,
    connector or schema of the set beyond the current turn of its loop (a
    call in flight) holds one, so a reload that replaces the set never frees
    what a call still reads; sb_connectors_destroy releases it. The count is
    atomic; the set itself is read-only once loaded (base URLs aside). */
sb_connectors_t *sb_connectors_ref (sb_connectors_t *self);

/*  References held now (for tests and logs). */
int sb_connectors_refs (sb_connectors_t *self);

/*  What clients see of a set, for a reload: the bits of SB_LIST_* whose
    published list differs between `before` and `after` (tools/list: every
    tool descriptor in order; prompts/list; resources/list together with
    resources/templates/list). 0 when they publish the same. */
#define SB_LIST_TOOLS       0x01u
#define SB_LIST_PROMPTS     0x02u
#define SB_LIST_RESOURCES   0x04u
unsigned sb_connectors_diff (sb_connectors_t *before, sb_connectors_t *after);

/*  True when resources/read of `uri` answers differently in `before` and
    `after`: other contents, or readable in one set only (a resource that
    disappeared). False when both read the same or neither can read it. */
bool sb_connectors_resource_changed (sb_connectors_t *before, sb_connectors_t *after,
                                     const char *uri);

/*  Overrides the base URL of connector `name` (e.g. the sandbox on a test
    port). Returns 0, or -1 if there is no such connector. */
int sb_connectors_set_base_url (sb_connectors_t *self, const char *name, const char *url)
    SB_MUST_USE;

/*  Applies "name=url,name2=url2" overrides. Returns 0 or -1 (unknown name,
    bad syntax). An empty string is fine. */
int sb_connectors_set_base_urls (sb_connectors_t *self, const char *spec) SB_MUST_USE;

/*  Number of tools over all connectors; tool `index` in load order (borrowed). */
size_t sb_connectors_tool_count (sb_connectors_t *self);
const sb_tool_t *sb_connectors_tool_at (sb_connectors_t *self, size_t index);

/*  The tool named `name`, or NULL (borrowed). */
const sb_tool_t *sb_connectors_find_tool (sb_connectors_t *self, const char *name);

/*  Connector named `name`, or NULL (borrowed). */
const sb_connector_t *sb_connectors_find (sb_connectors_t *self, const char *name);

/*  Accessors (all borrowed). */
const char *sb_connector_name (const sb_connector_t *self);
const char *sb_connector_display_name (const sb_connector_t *self); /* "the CRM"; else the name */
const char *sb_connector_title (const sb_connector_t *self);        /* "Sandbox CRM"; else the name */
const char *sb_connector_base_url (const sb_connector_t *self);
long sb_connector_timeout_ms (const sb_connector_t *self);       /* per upstream call */
size_t sb_connector_max_response (const sb_connector_t *self);   /* bytes */

/*  The connector's per-connection upstream budget ("upstream_budget"): at
    most `requests` calls of its tools per rolling `window_s` seconds for
    each (tenant, connector), which the broker enforces from the REQUEST's
    budget fields. Returns true and sets both (1..SB_MAX_BUDGET_REQUESTS,
    1..SB_MAX_BUDGET_WINDOW) when the connector declares one; false and
    sets both to 0 when it does not. */
bool sb_connector_upstream_budget (const sb_connector_t *self, uint32_t *requests,
                                   uint32_t *window_s);

/*  The Authorization header value for the connector ("Bearer …"), read
    from the environment variable its auth block names, or NULL when the
    scheme needs none, the credential is each tenant's (see below) or the
    variable is unset. Returns a new string. */
char *sb_connector_auth_header (const sb_connector_t *self) SB_MUST_USE;

/*  The same header value made from a tenant's credential `secret` (an
    access token or API key, from the token service): "Bearer <secret>"
    for bearer and oauth2, "<prefix><secret>" for api_key_header. NULL
    when the scheme needs none, or the secret is empty or holds CR/LF.
    Returns a new string (the caller wipes and frees it). */
char *sb_connector_auth_value (const sb_connector_t *self, const char *secret) SB_MUST_USE;

/*  The auth scheme (auth.type) and whose credential it uses
    (auth.credential): one shared secret from the environment for every
    tenant (`shared`), or each tenant's own connection (`tenant`, the
    default whenever the type is not none), which the api worker asks the
    token service for (proto/PROTOCOL.md "Connections"). */
typedef enum {
    SB_AUTH_NONE = 0,
    SB_AUTH_BEARER,             /* Authorization: Bearer <secret> */
    SB_AUTH_API_KEY_HEADER,     /* <header>: <prefix><secret> */
    SB_AUTH_OAUTH2,             /* Authorization: Bearer <access token of the tenant's grant> */
} sb_auth_type_t;
typedef enum {
    SB_CREDENTIAL_NONE = 0,     /* auth.type none */
    SB_CREDENTIAL_SHARED,       /* auth.token_env: one secret for all tenants */
    SB_CREDENTIAL_TENANT,       /* each tenant's connection */
} sb_credential_t;
sb_auth_type_t sb_connector_auth_type (const sb_connector_t *self);
sb_credential_t sb_connector_credential (const sb_connector_t *self);

/*  An oauth2 connector's provider (auth.oauth2), NULL for other schemes.
    URLs are absolute: a path in the file ("/oauth/token") is resolved
    against the base URL at load and after every base-URL override.
    client_id and client_secret are read from the environment variables
    the file names (or their _FILE forms) at load, by the processes that
    set them (the token worker); NULL when unset there. Borrowed. */
#define SB_MAX_OAUTH_KEEP       8       /* token-response fields a connector keeps */
#define SB_MAX_OAUTH_PARAMS     16      /* extra authorization-request parameters */
typedef struct {
    const char *authorize_url;  /* the provider's authorization endpoint */
    const char *token_url;      /* its token endpoint */
    const char *revoke_url;     /* RFC 7009 revocation endpoint, or NULL */
    const char *client_id;      /* from auth.oauth2.client_id_env, or NULL */
    const char *client_secret;  /* from auth.oauth2.client_secret_env, or NULL (public client) */
    const char *scopes;         /* space-separated scopes to ask for, or NULL */
    bool client_secret_basic;   /* client auth: true HTTP Basic, false in the form (client_secret_post) */
    const char *keep [SB_MAX_OAUTH_KEEP];   /* token-response string fields kept as vars */
    size_t keep_count;
    const char *param_names [SB_MAX_OAUTH_PARAMS];  /* extra authorization parameters */
    const char *param_values [SB_MAX_OAUTH_PARAMS]; /* (access_type=offline, prompt=consent…) */
    size_t param_count;
} sb_connector_oauth_t;
const sb_connector_oauth_t *sb_connector_oauth (const sb_connector_t *self);

/*  The base URL for a call made with a connection's `vars` (a JSON object
    of strings, may be NULL): a base URL that starts with a placeholder
    ("{instance_url}/services/data/v62.0") has it replaced by the var,
    which must be an http(s) URL without userinfo, query or fragment.
    Returns a new string, or NULL when the var is missing or malformed
    (the caller answers that the connection must be made again). A base
    URL without placeholder is returned as it is (copied). */
char *sb_connector_base_url_for (const sb_connector_t *self, const json_t *vars) SB_MUST_USE;

/*  The name of the header that carries sb_connector_auth_header's value:
    "Authorization" for bearer, the configured name (e.g. "X-API-Key") for
    api_key_header, NULL when the scheme needs none (borrowed). */
const char *sb_connector_auth_header_name (const sb_connector_t *self);

const char *sb_tool_name (const sb_tool_t *self);
const char *sb_tool_title (const sb_tool_t *self);      /* its title, else its name */
const sb_connector_t *sb_tool_connector (const sb_tool_t *self);
bool sb_tool_retry_safe (const sb_tool_t *self);    /* read-only/idempotent */
bool sb_tool_read_only (const sb_tool_t *self);     /* annotations.readOnlyHint is true */

/*  What one call of the tool counts against its tenant's plan quotas (the
    rate and the monthly allowance, PROTOCOL.md "Quotas"): its "cost",
    1..SB_MAX_TOOL_COST, default 1. Internal: never in its descriptor. */
uint32_t sb_tool_cost (const sb_tool_t *self);

/*  The builtin a builtin tool runs ("request": {"builtin": "<name>"}), or
    NULL for an HTTP tool (borrowed). The gateway runs its own two (below);
    an api worker runs the others itself, instead of calling an upstream,
    when it was built with them (the product sb-worker has none; the test
    worker sb-worker-fixtures has the conformance fixtures,
    tests/fixtures/sb_fixture.c). */
const char *sb_tool_builtin (const sb_tool_t *self);

/*  Builtins the gateway runs itself, never a worker: they show the caller's
    tenant its "hidden" tools or prompts, or hide them again (gateway/sb_lists.h). */
#define SB_BUILTIN_TOGGLE_TOOLS     "toggle_hidden_tools"
#define SB_BUILTIN_TOGGLE_PROMPTS   "toggle_hidden_prompts"

/*  SB_LIST_TOOLS or SB_LIST_PROMPTS when the tool's builtin is one of the
    gateway's own (above), else 0. */
unsigned sb_tool_gateway_builtin (const sb_tool_t *self);

/*  Whether a call of the tool may become a task (MCP Tasks extension,
    SEP-2663), from the tool's "taskSupport" key (connectors/README.md):
    FORBIDDEN (the default) — always answered synchronously; OPTIONAL — a
    call from a client that declared io.modelcontextprotocol/tasks may
    become a task when the worker running it sends the promote signal
    (sb_worker_job_promote); REQUIRED — the same, and a client without the
    extension is refused with -32021. The gateway decides from it; the api
    worker promotes a call of a non-forbidden HTTP tool whose upstream
    request is still running after --task-promote-ms. Internal only: never
    part of sb_tool_descriptor. */
typedef enum {
    SB_TASK_FORBIDDEN = 0,
    SB_TASK_OPTIONAL = 1,
    SB_TASK_REQUIRED = 2
} sb_task_support_t;

sb_task_support_t sb_tool_task_support (const sb_tool_t *self);

/*  True when the tool is "hidden": left out of tools/list and refused as
    unknown for a tenant until that tenant shows its hidden tools (the
    gateway's list-change builtins, gateway/sb_lists.h). Never published. */
bool sb_tool_hidden (const sb_tool_t *self);

/*  Call-time policy for the api worker.

    True when the tool calls an upstream and is annotated destructiveHint
    true or its definition says "confirm": true: the worker then asks the
    user (elicitation) before the upstream call. Builtin fixtures never ask
    ("confirm" on one is refused at load). */
bool sb_tool_needs_confirmation (const sb_tool_t *self);

/*  The question put to the user, naming the action, the system and the
    arguments, e.g. `Create a task in the CRM with title "Call back"?`
    (new string, caller frees; NULL only when out of memory). */
char *sb_tool_confirm_message (const sb_tool_t *self, const json_t *args) SB_MUST_USE;

/*  Checks a result's structuredContent against the tool's outputSchema
    (compiled at load). Returns 0 when the tool has no outputSchema or the
    value matches, or -1 with *error a new sentence naming the field and
    the rule, e.g. "Field 'items[0].name' must be a string." (caller frees). */
int sb_tool_check_output (const sb_tool_t *self, const json_t *structured, char **error)
    SB_MUST_USE;

/*  The MCP Tool object for tools/list: name, title, description,
    inputSchema, annotations (new reference). */
json_t *sb_tool_descriptor (const sb_tool_t *self) SB_MUST_USE;

/*  The tool's input schema (borrowed). */
const json_t *sb_tool_input_schema (const sb_tool_t *self);

/*  Checks `args` against the tool's input schema (the subset used by
    issue #2: type object, required, property types, enum, min/max,
    minLength/maxLength, additionalProperties false). Returns 0, or -1 with
    *error a new sentence naming the field and the rule. */
int sb_tool_check_args (const sb_tool_t *self, const json_t *args, char **error) SB_MUST_USE;

/*  One upstream request rendered from a tool's template. */
typedef struct {
    char method [8];    /* GET, POST, PUT, PATCH, DELETE */
    char *url;          /* absolute URL, owned */
    char *body;         /* JSON text or NULL, owned */
} sb_upstream_req_t;

/*  Renders the tool's request for `args` against the connector's base URL.
    Returns 0, or -1 with *error a new string (e.g. missing argument). */
int sb_tool_render (const sb_tool_t *self, const json_t *args,
                    sb_upstream_req_t *req, char **error) SB_MUST_USE;

/*  sb_tool_render against `base_url` (borrowed: an absolute URL, e.g.
    from sb_connector_base_url_for with a tenant's connection vars) in
    place of the connector's own. Same results. */
int sb_tool_render_at (const sb_tool_t *self, const char *base_url, const json_t *args,
                       sb_upstream_req_t *req, char **error) SB_MUST_USE;

/*  Frees the strings of `req` and zeroes it. */
void sb_upstream_req_clear (sb_upstream_req_t *req);

/*  Maps an upstream response into an MCP CallToolResult (new reference):
    2xx → short text content + structuredContent per the tool's mapping;
    404 → isError with "not found" sentence; other statuses → isError with a
    sentence a person understands and _meta {error_type, upstream_status}. */
json_t *sb_tool_map_result (const sb_tool_t *self, long http_status,
                            const char *body, size_t body_len) SB_MUST_USE;

/*  Prints a CallToolResult as compact JSON (new string; NULL when out of
    memory). A success with structuredContent also gets that JSON as a
    last text item in content, as MCP asks of tools with structured output;
    the data is serialised once for both. */
char *sb_tool_result_text (const json_t *result) SB_MUST_USE;

/*  ---------------------------------------------------------------------
    Resources, prompts and completions (MCP), declared in connector files
    next to tools (format in connectors/README.md). Static content lives in
    the definition; the gateway answers these methods without a job.
    All return new references; NULL/-1 on error with *error a new sentence. */

/*  MCP Resource objects of every connector, in load order (JSON array). */
json_t *sb_connectors_resources (sb_connectors_t *self) SB_MUST_USE;

/*  MCP ResourceTemplate objects (JSON array). */
json_t *sb_connectors_resource_templates (sb_connectors_t *self) SB_MUST_USE;

/*  Reads resource `uri`: fills *contents with the MCP `contents` array
    (text or base64 blob items, with uri and mimeType). A URI matching a
    resource template is rendered from it (e.g. test://template/{id}/data).
    Returns 0, or -1 when no resource or template matches (*error set). */
int sb_connectors_resource_read (sb_connectors_t *self, const char *uri,
                                 json_t **contents, char **error) SB_MUST_USE;

/*  MCP Prompt objects (name, title, description, arguments) (JSON array). */
json_t *sb_connectors_prompts (sb_connectors_t *self) SB_MUST_USE;

/*  True when prompt `name` exists and is "hidden" (as sb_tool_hidden). */
bool sb_connectors_prompt_hidden (sb_connectors_t *self, const char *name);

/*  Renders prompt `name` with `args` (JSON object or NULL) into an MCP
    GetPromptResult {description, messages}. Returns 0, or -1 with *error
    (unknown prompt, missing required argument). */
int sb_connectors_prompt_get (sb_connectors_t *self, const char *name,
                              const json_t *args, json_t **result, char **error) SB_MUST_USE;

/*  Completion values for argument `arg_name` of a prompt (ref type
    "ref/prompt", `ref_name` = prompt name) or a resource template
    ("ref/resource", `ref_name` = URI template), given the partial `value`:
    an MCP CompleteResult.completion {values, total, hasMore} (at most 100
    values). Unknown refs give an empty list. */
json_t *sb_connectors_complete (sb_connectors_t *self, const char *ref_type,
                                const char *ref_name, const char *arg_name,
                                const char *value) SB_MUST_USE;

/*  A tool's output schema (borrowed), or NULL when it declares none. */
const json_t *sb_tool_output_schema (const sb_tool_t *self);

/*  The MCP `_meta` of a tool descriptor (borrowed; e.g. ui.resourceUri,
    openai/outputTemplate), or NULL. Included by sb_tool_descriptor. */
const json_t *sb_tool_meta (const sb_tool_t *self);

#endif
