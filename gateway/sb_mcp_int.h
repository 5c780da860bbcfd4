/*  gateway/sb_mcp_int.h — what the files of the MCP handler share
    (private to them; the rest of the gateway uses sb_mcp.h):

      sb_mcp.c            dispatch of every revision, the outcome, the
                          methods every revision has (initialize, lists,
                          tools/call, resources, prompts, completion)
      sb_mcp_stateless.c  2026-07-28: the request checks (mirrored headers,
                          _meta), server/discover, the tasks extension,
                          inputResponses, prompts/get asking for arguments,
                          the resultType/serverInfo of its replies
      sb_mcp_listen.c     2026-07-28 subscriptions/listen and the messages
                          of listen streams
      sb_mcp_reply.c      a broker REPLY mapped into a tool call's response

    Every function here answers the request itself (fills `out` with a
    reply) when it refuses it. */
#ifndef SB_MCP_INT_H_INCLUDED
#define SB_MCP_INT_H_INCLUDED

#include "sb_mcp.h"

#define SB_META_VERSION     "io.modelcontextprotocol/protocolVersion"
#define SB_META_CAPS        "io.modelcontextprotocol/clientCapabilities"
#define SB_META_LOG_LEVEL   "io.modelcontextprotocol/logLevel"
#define SB_META_SERVER_INFO "io.modelcontextprotocol/serverInfo"
#define SB_META_SUBSCRIPTION "io.modelcontextprotocol/subscriptionId"

/*  The server's instructions (initialize, server/discover). */
extern const char sb_mcp_instructions [];

/*  The names of the revisions spoken, newest first (new array). */
json_t *sb_mcp_supported (void);

/*  ---------------------------------------------------------------------
    The outcome (sb_mcp.c) */

/*  Makes `out` an outcome of kind `action`: the payload of another kind,
    half built when a check fails, is released first. */
void sb_mcp_out_become (sb_mcp_outcome_t *out, sb_mcp_action_t action);

/*  Makes `out` a reply of `http_status` with `body` (taken; NULL: out of
    memory, which makes it a 500 with no body). */
void sb_mcp_out_reply (sb_mcp_outcome_t *out, int http_status, char *body);

/*  Makes `out` a JSON-RPC error reply for `id`. */
void sb_mcp_out_error (sb_mcp_outcome_t *out, int http_status, const json_t *id, int code,
                       const char *message);

/*  Makes `out` a JSON-RPC result reply for `id` (takes `result`). */
void sb_mcp_out_result (sb_mcp_outcome_t *out, const json_t *id, json_t *result);

/*  ---------------------------------------------------------------------
    2026-07-28 (sb_mcp_stateless.c) */

/*  The request checks of 2026-07-28 (Mcp-Method, Mcp-Name, params._meta);
    fills out->caps, ->tasks and ->log_level. False after answering. */
bool sb_mcp_stateless_check (sb_rpc_t *rpc, const sb_mcp_headers_t *h, sb_mcp_outcome_t *out);

/*  An older-revision request whose params._meta names a protocol version
    other than the header's: answers -32020 and returns true. */
bool sb_mcp_legacy_meta_mismatch (sb_rpc_t *rpc, const sb_mcp_headers_t *h, sb_mcp_outcome_t *out);

/*  server/discover. */
void sb_mcp_discover (sb_rpc_t *rpc, sb_mcp_outcome_t *out);

/*  True for the methods whose 2026-07-28 results are CacheableResults. */
bool sb_mcp_cacheable (const char *m);

/*  True for the methods of the tasks extension this gateway serves. */
bool sb_mcp_is_task_method (const char *m);

/*  True when `id` could be a taskId this gateway issued: 1 to
    SB_MAX_TASK_ID_TEXT bytes of base64url. Anything else is no task of
    ours. */
bool sb_mcp_task_id_ok (const json_t *id);

/*  tasks/get, tasks/update, tasks/cancel: checked, then SB_MCP_TASK. */
void sb_mcp_tasks_request (sb_rpc_t *rpc, sb_mcp_outcome_t *out);

/*  Answers -32021 naming the tasks extension as the missing capability
    (HTTP 400, like every 2026-07-28 -32021). */
void sb_mcp_missing_tasks (sb_mcp_outcome_t *out, const json_t *id, const char *message);

/*  A 2026-07-28 request's inputResponses (an object of objects: the
    client's result for each inputRequests key) and requestState (a
    string), checked and, when `responses_p` and `state_p` are given,
    copied there (new reference, new string; NULL when absent); false after
    answering -32602 when either is malformed. */
bool sb_mcp_input_params (sb_rpc_t *rpc, sb_mcp_outcome_t *out, json_t **responses_p,
                          char **state_p);

/*  2026-07-28 prompts/get of prompt `name` without some required
    arguments: takes them from the answer under SB_MCP_PROMPT_INPUT_KEY,
    else asks for them with an input-required result when the client can
    be asked. Returns false with *args the arguments to render with (a new
    reference replacing the old; may be NULL), or true after answering. */
bool sb_mcp_prompt_inputs (sb_rpc_t *rpc, const sb_mcp_env_t *env, const char *name, json_t **args,
                           sb_mcp_outcome_t *out);

/*  ---------------------------------------------------------------------
    2026-07-28 subscriptions/listen (sb_mcp_listen.c) */

/*  Checks a listen request's filter and makes `out` SB_MCP_LISTEN with
    the acknowledgement, or answers -32602 / -32021. */
void sb_mcp_listen (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out);

#endif
