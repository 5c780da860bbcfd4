/*  tests/fuzz/fuzz_jsonrpc.c — fuzz target for the gateway's POST /mcp body
    handling (gateway/sb_rpc.c, gateway/sb_mcp.c) and for the mapping of
    broker REPLY payloads into tool results.

    Each input is fed (1) as an HTTP body to sb_mcp_handle against the repo's
    connectors, and (2) as a REPLY payload to sb_mcp_call_reply for every
    status. Invariants: a reply body is always a JSON-RPC 2.0 object with an
    id and exactly one of result / error; a CALL outcome has a tool and
    object arguments; nothing crashes or leaks. A violation aborts.

    With clang and -fsanitize=fuzzer this is a libFuzzer target; with gcc,
    tests/fuzz/sb_fuzz_replay.c supplies a main that replays a corpus
    directory (what ctest runs on every build). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/sb_mcp.h"
#include "gateway/sb_rpc.h"

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

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_connectors) {
        char *error = NULL;
        s_connectors = sb_connectors_load (SB_SOURCE_DIR "/connectors", &error);
        free (error);
    }
    sb_mcp_outcome_t out;
    sb_mcp_handle (s_connectors, "fuzz", (const char *) data, size, &out);
    switch (out.action) {
        case SB_MCP_REPLY:
            CHECK (out.body);
            CHECK (out.http_status == 200 || out.http_status == 400 || out.http_status == 500);
            s_check_reply (out.body);
            break;
        case SB_MCP_ACCEPTED:
            CHECK (!out.body && out.http_status == 202);
            break;
        case SB_MCP_CALL: {
            CHECK (out.tool && out.args && sb_rpc_id_valid (out.id));
            json_t *args = json_loads (out.args, 0, NULL);
            CHECK (json_is_object (args));
            json_decref (args);
            break;
        }
    }
    sb_mcp_outcome_clear (&out);

    json_t *id = json_integer (1);
    for (int status = SB_STATUS_OK; status <= SB_STATUS_MAX + 1; status++) {
        char *reply = sb_mcp_call_reply (id, (sb_status_t) status, data, size);
        CHECK (reply);
        s_check_reply (reply);
        free (reply);
    }
    json_decref (id);
    return 0;
}
