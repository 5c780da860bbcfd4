/*  tests/fuzz/fuzz_jsonrpc.c — fuzz target for the gateway's POST /mcp body
    handling (gateway/sb_rpc.c, gateway/sb_mcp.c) and for the mapping of
    broker REPLY payloads into tool results.

    Each input is fed (1) as an HTTP body to sb_mcp_handle against the repo's
    connectors, and (2) as a REPLY payload to sb_mcp_call_reply for every
    status, and (3) as the JSON text of a NOTIFY or ASK inside a call and as
    an "sb:" answer id (gateway/sb_relay.c). (1) runs four times: with no
    headers (for a tenant that sees no hidden tools or prompts, then for one
    shown them), as a 2026-07-28 request whose Mcp-Method / Mcp-Name mirror
    the body, and with headers that do not. Invariants: a reply body is always a JSON-RPC 2.0 object with an
    id and exactly one of result / error; a CALL outcome has a tool and
    object arguments; nothing crashes or leaks. A violation aborts.

    With clang and -fsanitize=fuzzer this is a libFuzzer target; with gcc,
    tests/fuzz/sb_fuzz_replay.c supplies a main that replays a corpus
    directory (what ctest runs on every build). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_mcp.h"
#include "sb_relay.h"
#include "sb_rpc.h"
#include "sb_session.h"
#include "sb_job.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_jsonrpc: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

static sb_connectors_t *s_connectors;

//  A reply body must be {"jsonrpc":"2.0","id":…, result XOR error}.
static void
s_check_reply (const char *body)
{
    json_t *reply = json_loads (body, 0, NULL);
    CHECK (json_is_object (reply));
    json_t *version = json_object_get (reply, "jsonrpc");
    CHECK (json_is_string (version) && strcmp (json_string_value (version), "2.0") == 0);
    json_t *id = json_object_get (reply, "id");
    CHECK (id && (json_is_null (id) || sb_rpc_id_valid (id)));
    json_t *result = json_object_get (reply, "result");
    json_t *error = json_object_get (reply, "error");
    CHECK ((result != NULL) != (error != NULL));
    if (error) {
        CHECK (json_is_integer (json_object_get (error, "code")));
        CHECK (json_is_string (json_object_get (error, "message")));
    }
    json_decref (reply);
}

//  The input as a NOTIFY's and an ASK's JSON text, and as an answer id.
static void
s_relay (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    CHECK (text);
    memcpy (text, data, size);
    text [size] = 0;
    zframe_t *frame = strlen (text) == size? sb_job_result_encode (text): NULL;
    const uint8_t *payload = frame? zframe_data (frame): data;
    size_t payload_size = frame? zframe_size (frame): size;
    json_t *token = json_string ("t");
    for (int level = 0; level <= SB_LOG_LEVEL_EMERGENCY + 1; level += 4) {
        const char *why = NULL;
        char *note = sb_relay_notification (payload, payload_size, level? NULL: token, level, &why);
        CHECK ((note == NULL) == (why != NULL));
        json_t *json = note? json_loads (note, 0, NULL): NULL;
        CHECK (!note || (json_is_object (json) && !json_object_get (json, "id")
                         && json_is_string (json_object_get (json, "method"))));
        json_decref (json);
        free (note);
    }
    json_decref (token);
    for (unsigned caps = 0; caps <= 0x0f; caps += 0x0f) {
        char *request = NULL, *refusal = NULL;
        CHECK (sb_relay_ask (payload, payload_size, "corr", 7, caps, caps != 0, &request, &refusal) == 0);
        CHECK ((request == NULL) != (refusal == NULL));
        json_t *json = json_loads (request? request: refusal, 0, NULL);
        CHECK (json_is_object (json));
        CHECK (!request || strcmp (json_string_value (json_object_get (json, "id")), "sb:corr:7") == 0);
        CHECK (!refusal || json_is_integer (json_object_get (json_object_get (json, "error"), "code")));
        json_decref (json);
        free (request);
        free (refusal);
    }
    zframe_destroy (&frame);
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    uint32_t ask_id = 0;
    if (sb_relay_parse_id (text, corr_id, &ask_id) == 0)
        CHECK (ask_id > 0 && strlen (corr_id) > 0 && !strchr (corr_id, ':'));
    free (text);
}

//  One body through sb_mcp_handle in `env`, checking the outcome.
static void
s_handle (const sb_mcp_env_t *env, const uint8_t *data, size_t size)
{
    sb_mcp_outcome_t out;
    sb_mcp_handle (env, (const char *) data, size, &out);
    switch (out.action) {
        case SB_MCP_REPLY:
            CHECK (out.as.reply.body);
            CHECK (out.http_status == 200 || out.http_status == 400 || out.http_status == 500
                   || (SB_MCP_STATELESS (out.revision) && out.http_status == 404));
            CHECK (!out.as.reply.negotiated || out.http_status == 200);
            s_check_reply (out.as.reply.body);
            if (SB_MCP_STATELESS (out.revision) && out.http_status == 200) {
                json_t *reply = json_loads (out.as.reply.body, 0, NULL);
                json_t *result = json_object_get (reply, "result");
                CHECK (!result || strcmp (json_string_value (json_object_get (result, "resultType")),
                                          "complete") == 0);
                json_decref (reply);
            }
            break;
        case SB_MCP_ACCEPTED:
            CHECK (out.http_status == 202);
            CHECK (!out.as.accepted.response || json_is_object (out.as.accepted.response));
            CHECK (!out.as.accepted.cancel_id || sb_rpc_id_valid (out.as.accepted.cancel_id));
            if (out.as.accepted.response) {
                char *answer = sb_relay_answer (out.as.accepted.response);
                json_t *json = answer? json_loads (answer, 0, NULL): NULL;
                CHECK (!answer || (json_is_object (json) && json_object_size (json) == 1));
                json_decref (json);
                free (answer);
            }
            break;
        case SB_MCP_CALL: {
            CHECK (out.as.call.tool && out.as.call.args && sb_rpc_id_valid (out.as.call.id));
            json_t *args = json_loads (out.as.call.args, 0, NULL);
            CHECK (json_is_object (args));
            json_decref (args);
            CHECK (out.log_level >= 0 && out.log_level <= SB_LOG_LEVEL_EMERGENCY + 1);
            CHECK (SB_MCP_STATELESS (out.revision) || out.log_level == 0);
            break;
        }
        case SB_MCP_LISTEN: {
            CHECK (SB_MCP_STATELESS (out.revision) && out.http_status == 200
                   && sb_rpc_id_valid (out.as.listen.id));
            CHECK (!out.as.listen.uris || json_array_size (out.as.listen.uris) <= SB_MAX_LISTEN_URIS);
            CHECK (!out.as.listen.tasks || json_array_size (out.as.listen.tasks) <= SB_MAX_LISTEN_TASKS);
            json_t *ack = json_loads (out.as.listen.body, 0, NULL);
            CHECK (json_is_object (json_object_get (json_object_get (ack, "params"), "notifications")));
            json_decref (ack);
            break;
        }
        case SB_MCP_TASK:
            CHECK (SB_MCP_STATELESS (out.revision) && out.tasks && sb_rpc_id_valid (out.as.task.id));
            CHECK (out.as.task.task_id && strlen (out.as.task.task_id) > 0
                   && strlen (out.as.task.task_id) <= SB_MAX_TASK_ID_TEXT);
            CHECK (out.as.task.method && strncmp (out.as.task.method, "tasks/", 6) == 0);
            CHECK (!out.as.task.input_responses || json_is_object (out.as.task.input_responses));
            CHECK (strcmp (out.as.task.method, "tasks/update") != 0 || out.as.task.input_responses);
            break;
        case SB_MCP_EVENTS:
            //  resources/read of an event log: a connector of the set, named by the URI.
            CHECK (sb_rpc_id_valid (out.as.events.id) && out.as.events.uri && out.as.events.connector);
            CHECK (strncmp (out.as.events.uri, SB_MCP_EVENTS_PREFIX, strlen (SB_MCP_EVENTS_PREFIX)) == 0);
            CHECK (strcmp (out.as.events.uri + strlen (SB_MCP_EVENTS_PREFIX), out.as.events.connector) == 0);
            CHECK (sb_mcp_events_uri (env->connectors, out.as.events.uri));
            break;
    }
    sb_mcp_outcome_clear (&out);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_connectors) {
        char *error = NULL;
        s_connectors = sb_connectors_load (SB_TEST_CONNECTORS, &error);
        free (error);
    }
    static const uint8_t key [32] = { 7 };
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "fuzz", .page_size = 2,
                         .cursor_key = key };
    s_handle (&env, data, size);
    //  And for a tenant that sees its hidden tools and prompts.
    sb_mcp_env_t shown = env;
    shown.shown = SB_LIST_TOOLS | SB_LIST_PROMPTS;
    s_handle (&shown, data, size);

    //  Again as a 2026-07-28 request, its Mcp-Method and Mcp-Name taken from
    //  the body (so the checks pass and the methods run) and then wrong.
    json_t *doc = json_loadb ((const char *) data, size, 0, NULL);
    json_t *params = json_object_get (doc, "params");
    const char *method = json_string_value (json_object_get (doc, "method"));
    const char *name = json_string_value (json_object_get (params, "name"));
    if (!name)
        name = json_string_value (json_object_get (params, "uri"));
    if (!name)
        name = json_string_value (json_object_get (params, "taskId"));
    sb_mcp_headers_t headers = {
        .protocol = "2026-07-28", .protocol_len = strlen ("2026-07-28"),
        .method = method, .method_len = method? strlen (method): 0,
        .name = name, .name_len = name? strlen (name): 0,
    };
    env.headers = &headers;
    s_handle (&env, data, size);
    headers.method = "tools/call", headers.method_len = 10;
    headers.name = "=?base64?c2VhcmNoX2FjY291bnRz?=", headers.name_len = 31;
    s_handle (&env, data, size);
    json_decref (doc);

    json_t *id = json_integer (1);
    for (int status = SB_STATUS_OK; status <= SB_STATUS_MAX + 1; status++) {
        char *reply = sb_mcp_call_reply (id, (sb_status_t) status, data, size);
        CHECK (reply);
        s_check_reply (reply);
        reply = sb_mcp_stateless_reply (reply, "fuzz", status & 1);
        CHECK (reply);
        s_check_reply (reply);
        free (reply);
    }
    json_decref (id);
    s_relay (data, size);
    return 0;
}
