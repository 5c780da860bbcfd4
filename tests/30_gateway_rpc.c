/*  tests/30_gateway_rpc.c — unit tests of the gateway's pure JSON-RPC and
    MCP layers (gateway/sb_rpc.c, gateway/sb_mcp.c): envelope validation,
    method dispatch, tool-call preparation and reply mapping. No sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sb_mcp.h"
#include "sb_rpc.h"
#include "sb_job.h"
#include "sb_listed.h"

static sb_connectors_t *s_connectors;

static int
s_setup (void **state)
{
    char *error = NULL;
    s_connectors = sb_connectors_load (SB_TEST_CONNECTORS, &error);
    if (!s_connectors)
        fprintf (stderr, "connectors: %s\n", error? error: "?");
    free (error);
    return s_connectors? 0: -1;
}

static int
s_teardown (void **state)
{
    sb_connectors_destroy (&s_connectors);
    return 0;
}

//  Parses `text`; returns its rc.
static int
s_parse (const char *text, sb_rpc_t *rpc)
{
    return sb_rpc_parse (text, strlen (text), rpc);
}

static void
test_parse_valid (void **state)
{
    sb_rpc_t rpc;
    assert_int_equal (s_parse ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}", &rpc), 0);
    assert_int_equal (rpc.kind, SB_RPC_KIND_REQUEST);
    assert_string_equal (rpc.method, "ping");
    assert_int_equal (json_integer_value (rpc.id), 7);
    assert_null (rpc.params);
    sb_rpc_clear (&rpc);

    assert_int_equal (s_parse ("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\",\"params\":{}}", &rpc), 0);
    assert_true (json_is_object (rpc.params));
    sb_rpc_clear (&rpc);

    assert_int_equal (s_parse ("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &rpc), 0);
    assert_int_equal (rpc.kind, SB_RPC_KIND_NOTIFICATION);
    sb_rpc_clear (&rpc);

    assert_int_equal (s_parse ("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", &rpc), 0);
    assert_int_equal (rpc.kind, SB_RPC_KIND_RESPONSE);
    sb_rpc_clear (&rpc);
}

static void
test_parse_invalid (void **state)
{
    static const struct { const char *body; int code; bool has_id; } cases [] = {
        { "", SB_RPC_PARSE_ERROR, false },
        { "{", SB_RPC_PARSE_ERROR, false },
        { "{\"jsonrpc\":\"2.0\",}", SB_RPC_PARSE_ERROR, false },
        { "\xff\xfe", SB_RPC_PARSE_ERROR, false },
        { "[]", SB_RPC_INVALID_REQUEST, false },
        { "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", SB_RPC_INVALID_REQUEST, false },
        { "42", SB_RPC_INVALID_REQUEST, false },
        { "\"str\"", SB_RPC_INVALID_REQUEST, false },
        { "null", SB_RPC_INVALID_REQUEST, false },
        { "{}", SB_RPC_INVALID_REQUEST, false },
        { "{\"id\":1,\"method\":\"ping\"}", SB_RPC_INVALID_REQUEST, true },
        { "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", SB_RPC_INVALID_REQUEST, true },
        { "{\"jsonrpc\":2.0,\"id\":1,\"method\":\"ping\"}", SB_RPC_INVALID_REQUEST, true },
        { "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", SB_RPC_INVALID_REQUEST, false },
        { "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", SB_RPC_INVALID_REQUEST, false },
        { "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", SB_RPC_INVALID_REQUEST, false },
        { "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", SB_RPC_INVALID_REQUEST, false },
        { "{\"jsonrpc\":\"2.0\",\"id\":1}", SB_RPC_INVALID_REQUEST, true },
        { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", SB_RPC_INVALID_REQUEST, true },
        { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", SB_RPC_INVALID_REQUEST, true },
        { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000b\"}", SB_RPC_PARSE_ERROR, false },   /* jansson refuses NUL */
        { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":3}", SB_RPC_INVALID_REQUEST, true },
        { "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}", SB_RPC_INVALID_REQUEST, true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        sb_rpc_t rpc;
        int rc = sb_rpc_parse (cases [i].body, strlen (cases [i].body), &rpc);
        if (rc != cases [i].code)
            fail_msg ("case %zu (%s): rc %d, expected %d", i, cases [i].body, rc, cases [i].code);
        assert_int_equal (rpc.kind, SB_RPC_KIND_INVALID);
        assert_true (strlen (rpc.error_msg) > 0);
        assert_int_equal (rpc.id != NULL, cases [i].has_id);
        sb_rpc_clear (&rpc);
    }
    //  Over the body limit.
    sb_rpc_t rpc;
    assert_int_equal (sb_rpc_parse ("{}", SB_MAX_HTTP_BODY + 1, &rpc), SB_RPC_INVALID_REQUEST);
    sb_rpc_clear (&rpc);
}

static void
test_reply_builders (void **state)
{
    json_t *id = json_string ("x\"y");
    char *text = sb_rpc_result (id, json_pack ("{s:i}", "a", 1));
    assert_string_equal (text, "{\"jsonrpc\":\"2.0\",\"id\":\"x\\\"y\",\"result\":{\"a\":1}}");
    free (text);
    text = sb_rpc_error (NULL, SB_RPC_PARSE_ERROR, "bad");
    assert_string_equal (text, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"bad\"}}");
    free (text);
    //  A message that is not UTF-8 still yields a valid reply.
    text = sb_rpc_error (id, SB_RPC_INVALID_REQUEST, "\xff");
    assert_non_null (text);
    free (text);
    json_decref (id);
}

//  Runs sb_mcp_handle on `body`, returns the parsed reply body (or NULL).
static json_t *
s_handle (const char *body, sb_mcp_outcome_t *out)
{
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "1.2.3" };
    sb_mcp_handle (&env, body, strlen (body), out);
    return out->as.reply.body? json_loads (out->as.reply.body, 0, NULL): NULL;
}

static int
s_error_code (json_t *reply)
{
    return (int) json_integer_value (json_object_get (json_object_get (reply, "error"), "code"));
}

static void
test_initialize (void **state)
{
    sb_mcp_outcome_t out;
    json_t *reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                              "{\"protocolVersion\":\"2025-03-26\",\"capabilities\":{},"
                              "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}", &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    assert_int_equal (out.http_status, 200);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "protocolVersion")), "2025-03-26");
    //  A reload of the connectors tells GET streams (gateway/sb_notify.c).
    assert_true (json_is_true (json_object_get (json_object_get (json_object_get (result, "capabilities"),
                                                                 "tools"), "listChanged")));
    json_t *info = json_object_get (result, "serverInfo");
    assert_string_equal (json_string_value (json_object_get (info, "name")), "switchboard");
    assert_string_equal (json_string_value (json_object_get (info, "version")), "1.2.3");
    assert_true (json_is_string (json_object_get (result, "instructions")));
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    //  Unknown version → latest.
    reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                      "{\"protocolVersion\":\"1999-01-01\"}}", &out);
    assert_string_equal (json_string_value (json_object_get (json_object_get (reply, "result"),
                                                             "protocolVersion")), "2025-11-25");
    assert_int_equal (out.as.reply.negotiated, SB_MCP_REVISION_LATEST);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
    assert_int_equal (sb_mcp_negotiate ("2025-06-18"), SB_MCP_2025_06_18);
    assert_int_equal (sb_mcp_negotiate ("2025-11-25"), SB_MCP_2025_11_25);
    assert_int_equal (sb_mcp_negotiate ("2025-03-26"), SB_MCP_2025_03_26);
    assert_int_equal (sb_mcp_negotiate (NULL), SB_MCP_REVISION_LATEST);
    //  2026-07-28 has no handshake: initialize never negotiates it.
    assert_int_equal (sb_mcp_negotiate ("2026-07-28"), SB_MCP_REVISION_LATEST);
    //  The revisions by name, and back.
    static const char *names [] = { "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        sb_mcp_revision_t revision = sb_mcp_revision_parse (names [i], strlen (names [i]));
        assert_int_equal (revision, SB_MCP_2025_03_26 + (int) i);
        assert_string_equal (sb_mcp_revision_name (revision), names [i]);
    }
    assert_int_equal (sb_mcp_revision_parse ("2025-11-2", 9), SB_MCP_REVISION_NONE);
    assert_int_equal (sb_mcp_revision_parse ("2025-11-25x", 11), SB_MCP_REVISION_NONE);
    assert_int_equal (sb_mcp_revision_parse (NULL, 0), SB_MCP_REVISION_NONE);
    assert_null (sb_mcp_revision_name (SB_MCP_REVISION_NONE));
    assert_true (SB_MCP_STATELESS (SB_MCP_2026_07_28));
    assert_false (SB_MCP_STATELESS (SB_MCP_2025_11_25));

    //  Bad params.
    reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                      "{\"protocolVersion\":7}}", &out);
    assert_int_equal (s_error_code (reply), SB_RPC_INVALID_PARAMS);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
}

static void
test_ping_notifications_unknown (void **state)
{
    sb_mcp_outcome_t out;
    json_t *reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}", &out);
    assert_int_equal (json_object_size (json_object_get (reply, "result")), 0);
    assert_true (json_is_object (json_object_get (reply, "result")));
    assert_string_equal (json_string_value (json_object_get (reply, "id")), "p");
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    reply = s_handle ("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &out);
    assert_null (reply);
    assert_int_equal (out.action, SB_MCP_ACCEPTED);
    assert_int_equal (out.http_status, 202);
    sb_mcp_outcome_clear (&out);

    reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/teleport\"}", &out);
    assert_int_equal (out.http_status, 200);
    assert_int_equal (s_error_code (reply), SB_RPC_METHOD_NOT_FOUND);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 3);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    reply = s_handle ("{not json", &out);
    assert_int_equal (out.http_status, 400);
    assert_int_equal (s_error_code (reply), SB_RPC_PARSE_ERROR);
    assert_true (json_is_null (json_object_get (reply, "id")));
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    reply = s_handle ("[1,2]", &out);
    assert_int_equal (out.http_status, 400);
    assert_int_equal (s_error_code (reply), SB_RPC_INVALID_REQUEST);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
}

static void
test_tools_list (void **state)
{
    sb_mcp_outcome_t out;
    json_t *reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{}}", &out);
    json_t *tools = json_object_get (json_object_get (reply, "result"), "tools");
    assert_true (json_is_array (tools));
    assert_int_equal (json_array_size (tools), sb_listed_count (s_connectors));
    assert_true (sb_listed_count (s_connectors) < sb_connectors_tool_count (s_connectors));   //  one is hidden
    assert_true (sb_tool_hidden (sb_connectors_find_tool (s_connectors, "test_dynamic_tool")));
    for (size_t i = 0; i < json_array_size (tools); i++)
        assert_string_not_equal (json_string_value (json_object_get (json_array_get (tools, i), "name")),
                                 "test_dynamic_tool");
    assert_true (json_array_size (tools) >= 2);
    json_t *first = json_array_get (tools, 0);
    assert_true (json_is_string (json_object_get (first, "name")));
    assert_true (json_is_object (json_object_get (first, "inputSchema")));
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{\"cursor\":1}}", &out);
    assert_int_equal (s_error_code (reply), SB_RPC_INVALID_PARAMS);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
}

static void
test_tools_call (void **state)
{
    const char *name = sb_tool_name (sb_connectors_tool_at (s_connectors, 0));
    char body [512];
    sb_mcp_outcome_t out;

    //  Unknown tool, missing name, bad arguments type → -32602.
    const char *bad [] = {
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"no_such_tool\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":[1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        json_t *reply = s_handle (bad [i], &out);
        assert_int_equal (out.action, SB_MCP_REPLY);
        assert_int_equal (s_error_code (reply), SB_RPC_INVALID_PARAMS);
        json_decref (reply);
        sb_mcp_outcome_clear (&out);
    }
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\","
              "\"params\":{\"name\":\"%s\",\"arguments\":\"x\"}}", name);
    json_t *reply = s_handle (body, &out);
    assert_int_equal (s_error_code (reply), SB_RPC_INVALID_PARAMS);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);

    //  Schema failure → a CallToolResult with isError (not a JSON-RPC error).
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\","
              "\"params\":{\"name\":\"%s\",\"arguments\":{\"no_such_argument_xyz\":[[]]}}}", name);
    reply = s_handle (body, &out);
    assert_int_equal (out.action, SB_MCP_REPLY);
    json_t *result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_true (json_is_string (json_object_get (json_array_get (json_object_get (result, "content"), 0), "text")));
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
}

static void
test_tools_call_ready (void **state)
{
    //  Find a tool whose schema accepts {} (no required arguments), if any;
    //  otherwise check the CALL outcome with the sandbox's search tool.
    const sb_tool_t *tool = sb_connectors_find_tool (s_connectors, "search_accounts");
    assert_non_null (tool);
    sb_mcp_outcome_t out;
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":\"tools/call\","
                       "\"params\":{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"acme\"}}}";
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "1" };
    sb_mcp_handle (&env, body, strlen (body), &out);
    assert_int_equal (out.action, SB_MCP_CALL);
    assert_ptr_equal (out.as.call.tool, tool);
    assert_string_equal (json_string_value (out.as.call.id), "c1");
    assert_string_equal (out.as.call.args, "{\"query\":\"acme\"}");
    sb_mcp_outcome_clear (&out);
}

//  Maps a reply and returns the parsed JSON-RPC result.
static json_t *
s_call_reply (sb_status_t status, const char *result_json)
{
    zframe_t *frame = result_json? sb_job_result_encode (result_json): NULL;
    json_t *id = json_integer (9);
    char *text = sb_mcp_call_reply (id, status, frame? zframe_data (frame): NULL,
                                    frame? zframe_size (frame): 0);
    json_decref (id);
    zframe_destroy (&frame);
    json_t *reply = json_loads (text, 0, NULL);
    free (text);
    assert_non_null (reply);
    assert_int_equal (json_integer_value (json_object_get (reply, "id")), 9);
    json_t *result = json_incref (json_object_get (reply, "result"));
    json_decref (reply);
    assert_non_null (result);
    return result;
}

static const char *
s_error_type (json_t *result)
{
    return json_string_value (json_object_get (json_object_get (result, "_meta"), "error_type"));
}

//  Walks tools/list with `page` tools a page: every tool exactly once.
static void
s_walk (size_t page)
{
    uint8_t key [32] = { 1, 2, 3 };
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "1", .page_size = page,
                         .cursor_key = key };
    size_t count = sb_listed_count (s_connectors);
    size_t seen = 0, pages = 0;
    char *cursor = NULL;
    while (true) {
        char body [512];
        if (cursor)
            snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\","
                      "\"params\":{\"cursor\":\"%s\"}}", cursor);
        else
            snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
        sb_mcp_outcome_t out;
        sb_mcp_handle (&env, body, strlen (body), &out);
        json_t *reply = json_loads (out.as.reply.body, 0, NULL);
        json_t *tools = json_object_get (json_object_get (reply, "result"), "tools");
        assert_true (json_array_size (tools) <= page);
        for (size_t i = 0; i < json_array_size (tools); i++) {
            const char *name = json_string_value (json_object_get (json_array_get (tools, i), "name"));
            assert_ptr_equal (sb_connectors_find_tool (s_connectors, name),
                              sb_listed_at (s_connectors, seen + i));
        }
        seen += json_array_size (tools);
        pages++;
        free (cursor);
        json_t *next = json_object_get (json_object_get (reply, "result"), "nextCursor");
        cursor = next? strdup (json_string_value (next)): NULL;
        json_decref (reply);
        sb_mcp_outcome_clear (&out);
        if (!cursor)
            break;
    }
    assert_int_equal (seen, count);
    assert_int_equal (pages, (count + page - 1) / page);
}

static void
test_tools_list_pages (void **state)
{
    assert_true (sb_connectors_tool_count (s_connectors) >= 2);
    s_walk (1);
    s_walk (2);
    s_walk (SB_MAX_TOOLS_PAGE);

    //  Forged, altered, foreign and malformed cursors: -32602.
    uint8_t key [32] = { 1, 2, 3 };
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "1", .page_size = 1, .cursor_key = key };
    const char *bad [] = { "", "1", "1.", "x.AAAA", "0.AAAAAAAAAAAAAAAA", "1.AAAAAAAAAAAAAAAA",
                           "99999999999999999999999.AAAA", "-1.AAAA", NULL };
    for (int i = 0; bad [i]; i++) {
        char body [256];
        snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\","
                  "\"params\":{\"cursor\":\"%s\"}}", bad [i]);
        sb_mcp_outcome_t out;
        sb_mcp_handle (&env, body, strlen (body), &out);
        json_t *reply = json_loads (out.as.reply.body, 0, NULL);
        if (s_error_code (reply) != -32602)
            fail_msg ("cursor '%s' accepted: %s", bad [i], out.as.reply.body);
        json_decref (reply);
        sb_mcp_outcome_clear (&out);
    }
    //  A cursor signed under another key is refused too.
    sb_mcp_outcome_t out;
    const char *first = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
    sb_mcp_handle (&env, first, strlen (first), &out);
    json_t *reply = json_loads (out.as.reply.body, 0, NULL);
    const char *next = json_string_value (json_object_get (json_object_get (reply, "result"), "nextCursor"));
    assert_non_null (next);
    char body [256];
    snprintf (body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\","
              "\"params\":{\"cursor\":\"%s\"}}", next);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
    uint8_t other [32] = { 9 };
    env.cursor_key = other;
    sb_mcp_handle (&env, body, strlen (body), &out);
    reply = json_loads (out.as.reply.body, 0, NULL);
    assert_int_equal (s_error_code (reply), -32602);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
}

static void
test_logging_and_catalog_params (void **state)
{
    sb_mcp_outcome_t out;
    json_t *reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\","
                              "\"params\":{\"level\":\"warning\"}}", &out);
    assert_int_equal (json_object_size (json_object_get (reply, "result")), 0);
    assert_true (json_is_object (json_object_get (reply, "result")));
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
    const char *bad [] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"loud\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\",\"params\":{\"level\":3}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\"}",
        NULL };
    for (int i = 0; bad [i]; i++) {
        reply = s_handle (bad [i], &out);
        assert_int_equal (s_error_code (reply), -32602);
        json_decref (reply);
        sb_mcp_outcome_clear (&out);
    }
    const char *bad_catalog [] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":5}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"no_such_prompt\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"x\",\"arguments\":[]}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\",\"params\":{\"ref\":{\"type\":\"ref/x\"}}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\",\"params\":{\"cursor\":\"zz\"}}",
        NULL };
    for (int i = 0; bad_catalog [i]; i++) {
        reply = s_handle (bad_catalog [i], &out);
        if (s_error_code (reply) != -32602)
            fail_msg ("%s → %s", bad_catalog [i], out.as.reply.body);
        json_decref (reply);
        sb_mcp_outcome_clear (&out);
    }
    reply = s_handle ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\","
                      "\"params\":{\"uri\":\"nowhere://at/all\"}}", &out);
    assert_int_equal (s_error_code (reply), -32002);
    json_decref (reply);
    sb_mcp_outcome_clear (&out);
}

static void
test_call_reply_mapping (void **state)
{
    json_t *r = s_call_reply (SB_STATUS_OK, "{\"content\":[{\"type\":\"text\",\"text\":\"2 accounts\"}],"
                                            "\"structuredContent\":{\"n\":2}}");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (r, "structuredContent"), "n")), 2);
    assert_null (json_object_get (r, "isError"));
    json_decref (r);

    //  A spliced reply keeps a string id intact, escapes and all.
    zframe_t *frame = sb_job_result_encode ("{\"content\":[]}");
    json_t *id = json_string ("id \"9\" \u00e9");
    char *spliced = sb_mcp_call_reply (id, SB_STATUS_OK, zframe_data (frame), zframe_size (frame));
    json_t *reply = json_loads (spliced, 0, NULL);
    assert_non_null (reply);
    assert_true (json_equal (json_object_get (reply, "id"), id));
    assert_true (json_is_array (json_object_get (json_object_get (reply, "result"), "content")));
    json_decref (reply);
    free (spliced);
    json_decref (id);
    zframe_destroy (&frame);

    //  Anything but an object with a content array is refused, not relayed.
    const char *unusable [] = { "not json", "{\"content\":{}}", "[{\"content\":[]}]",
                                "{\"content\":[]", "{\"content\":[\"\xff\"]}",
                                "{\"content\":[]} {}", NULL };
    for (int i = 0; unusable [i]; i++) {
        r = s_call_reply (SB_STATUS_OK, unusable [i]);
        assert_true (json_is_true (json_object_get (r, "isError")));
        assert_string_equal (s_error_type (r), "malformed");
        json_decref (r);
    }

    r = s_call_reply (SB_STATUS_TIMEOUT, NULL);
    assert_true (json_is_true (json_object_get (r, "isError")));
    assert_string_equal (s_error_type (r), "timeout");
    json_decref (r);

    r = s_call_reply (SB_STATUS_WORKER_LOST, NULL);
    assert_string_equal (s_error_type (r), "worker_lost");
    json_decref (r);

    r = s_call_reply (SB_STATUS_OVERLOADED, "{\"retry_after\":7}");
    assert_string_equal (s_error_type (r), "overloaded");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (r, "_meta"), "retry_after")), 7);
    const char *text = json_string_value (json_object_get (json_array_get (json_object_get (r, "content"), 0), "text"));
    assert_non_null (strstr (text, "7 seconds"));
    json_decref (r);

    r = s_call_reply (SB_STATUS_OVERLOADED, NULL);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (r, "_meta"), "retry_after")),
                      SB_MCP_DEFAULT_RETRY_S);
    json_decref (r);

    r = s_call_reply (SB_STATUS_FAILED, "{\"error\":\"unknown connector\"}");
    assert_string_equal (s_error_type (r), "failed");
    text = json_string_value (json_object_get (json_array_get (json_object_get (r, "content"), 0), "text"));
    assert_non_null (strstr (text, "unknown connector"));
    json_decref (r);

    r = s_call_reply (SB_STATUS_MALFORMED, NULL);
    assert_string_equal (s_error_type (r), "malformed");
    json_decref (r);
}

//  The Mcp-Name header of a 2026-07-28 tools/call against params.name:
//  returns the outcome's action, 400 replies yielding their code in *code.
static int
s_modern_name (const char *name, int *code)
{
    static const char body [] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search_accounts\","
        "\"arguments\":{\"query\":\"a\"},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
        "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}";
    sb_mcp_headers_t headers = {
        .protocol = "2026-07-28", .protocol_len = 10, .method = "tools/call", .method_len = 10,
        .name = name, .name_len = strlen (name),
    };
    sb_mcp_env_t env = { .connectors = s_connectors, .version = "t", .headers = &headers };
    sb_mcp_outcome_t out;
    sb_mcp_handle (&env, body, strlen (body), &out);
    int action = out.action;
    *code = 0;
    if (out.action == SB_MCP_REPLY) {
        json_t *reply = json_loads (out.as.reply.body, 0, NULL);
        *code = (int) json_integer_value (json_object_get (json_object_get (reply, "error"), "code"));
        assert_int_equal (out.http_status, 400);
        json_decref (reply);
    }
    assert_int_equal (out.revision, SB_MCP_2026_07_28);
    sb_mcp_outcome_clear (&out);
    return action;
}

//  The =?base64?…?= form of Mcp-Name: standard base64, padded or not; the
//  base64url letters, an empty payload and a half sentinel are refused.
static void
test_modern_name_header (void **state)
{
    int code;
    assert_int_equal (s_modern_name ("search_accounts", &code), SB_MCP_CALL);
    assert_int_equal (s_modern_name ("=?base64?c2VhcmNoX2FjY291bnRz?=", &code), SB_MCP_CALL);
    //  A valid encoding of another name ("search_accounts?", padded).
    assert_int_equal (s_modern_name ("=?base64?c2VhcmNoX2FjY291bnRzPw==?=", &code), SB_MCP_REPLY);
    assert_int_equal (code, SB_RPC_HEADER_MISMATCH);
    const char *bad [] = { "=?base64?\?=", "=?base64?c2VhcmNoX2FjY291bnRz", "=?base64?c2Vh-mNo?=",
                           "=?base64?c2Vh_mNo?=", "=?BASE64?c2VhcmNoX2FjY291bnRz?=", "search_accounts ",
                           "", "search_accounts\x01", NULL };
    for (int i = 0; bad [i]; i++) {
        assert_int_equal (s_modern_name (bad [i], &code), SB_MCP_REPLY);
        assert_int_equal (code, SB_RPC_HEADER_MISMATCH);
    }
}

//  sb_mcp_stateless_reply: results gain resultType and serverInfo (and the
//  cache fields when asked), -32002 becomes -32602, anything else is kept.
static void
test_modern_reply (void **state)
{
    char *text = sb_mcp_stateless_reply (strdup ("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"_meta\":{\"k\":1}}}"),
                                      "9", true);
    json_t *reply = json_loads (text, 0, NULL);
    json_t *result = json_object_get (reply, "result");
    assert_string_equal (json_string_value (json_object_get (result, "resultType")), "complete");
    assert_int_equal (json_integer_value (json_object_get (result, "ttlMs")), 0);
    assert_string_equal (json_string_value (json_object_get (result, "cacheScope")), "private");
    json_t *meta = json_object_get (result, "_meta");
    assert_int_equal (json_integer_value (json_object_get (meta, "k")), 1);
    assert_string_equal (json_string_value (json_object_get (json_object_get (meta,
        "io.modelcontextprotocol/serverInfo"), "version")), "9");
    json_decref (reply);
    free (text);
    text = sb_mcp_stateless_reply (strdup ("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32002,\"message\":\"m\"}}"),
                                "9", false);
    assert_non_null (strstr (text, "-32602"));
    free (text);
    text = sb_mcp_stateless_reply (strdup ("not json"), "9", false);
    assert_string_equal (text, "not json");
    free (text);
    assert_null (sb_mcp_stateless_reply (NULL, "9", false));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_parse_valid),
        cmocka_unit_test (test_parse_invalid),
        cmocka_unit_test (test_reply_builders),
        cmocka_unit_test (test_initialize),
        cmocka_unit_test (test_ping_notifications_unknown),
        cmocka_unit_test (test_tools_list),
        cmocka_unit_test (test_tools_call),
        cmocka_unit_test (test_tools_call_ready),
        cmocka_unit_test (test_call_reply_mapping),
        cmocka_unit_test (test_tools_list_pages),
        cmocka_unit_test (test_logging_and_catalog_params),
        cmocka_unit_test (test_modern_name_header),
        cmocka_unit_test (test_modern_reply),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
