/*  gateway/sb_mcp_listen.c — MCP 2026-07-28 subscriptions/listen: the
    filter checked and the stream's acknowledgement built (the stream itself
    is sb_notify.c's), and the messages a listen stream carries (its end,
    list and resource notifications, task states). */
#include "sb_mcp_int.h"
#include "sb_subs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The list_changed keys of a subscriptions/listen filter and their bits.
static const struct {
    const char *key;                /* SubscriptionFilter field */
    unsigned bit;                   /* SB_LIST_* */
} s_listen_lists [] = {
    { "toolsListChanged", SB_LIST_TOOLS },
    { "promptsListChanged", SB_LIST_PROMPTS },
    { "resourcesListChanged", SB_LIST_RESOURCES },
};

//  The resourceSubscriptions of a listen filter (`asked`, present): fills
//  `uris` (an empty array) with those a resource or template matches,
//  each once. Returns 0, or answers -32602 and returns -1.
static int
s_listen_uris (sb_rpc_t *rpc, const sb_mcp_env_t *env, json_t *asked, json_t *uris,
               sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    if (!json_is_array (asked)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "params.notifications.resourceSubscriptions "
                 "must be an array of resource URIs (strings).");
        return -1;
    }
    if (json_array_size (asked) > SB_MAX_LISTEN_URIS) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, sb_subs_strerror (SB_SUBS_TOO_MANY_URIS));
        return -1;
    }
    size_t index;
    json_t *uri;
    json_array_foreach (asked, index, uri) {
        if (!json_is_string (uri) || json_string_length (uri) > SB_MAX_SUB_URI_LEN) {
            snprintf (message, sizeof message, "params.notifications.resourceSubscriptions[%zu] must be a "
                      "resource URI: a string of at most %d bytes.", index, SB_MAX_SUB_URI_LEN);
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            return -1;
        }
    }
    //  A URI no resource or template matches now is not followed, and the
    //  acknowledgement leaves it out: "the subset the server agreed to honor".
    json_array_foreach (asked, index, uri) {
        bool seen = false;
        for (size_t i = 0; i < json_array_size (uris) && !seen; i++)
            seen = json_equal (json_array_get (uris, i), uri);
        json_t *contents = NULL;
        char *error = NULL;
        if (!seen && env->connectors
        &&  (sb_mcp_events_uri (env->connectors, json_string_value (uri))
             || sb_connectors_resource_read (env->connectors, json_string_value (uri), &contents,
                                             &error) == 0))
            json_array_append (uris, uri);
        json_decref (contents);
        free (error);
    }
    return 0;
}

void
sb_mcp_listen (sb_rpc_t *rpc, const sb_mcp_env_t *env, sb_mcp_outcome_t *out)
{
    char message [SB_MAX_RPC_ERROR_LEN];
    json_t *filter = json_object_get (rpc->params, "notifications");
    if (!json_is_object (filter)) {
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, "subscriptions/listen needs "
                 "params.notifications, an object saying which notifications to send.");
        return;
    }
    char *id = json_dumps (rpc->id, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t id_len = id? strlen (id): 0;
    free (id);
    if (id_len == 0 || id_len > SB_MAX_LISTEN_ID_LEN) {
        snprintf (message, sizeof message, "The id of a subscriptions/listen request must be at most "
                  "%d bytes of JSON (it names the subscription).", SB_MAX_LISTEN_ID_LEN);
        sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
        return;
    }
    unsigned lists = 0;
    json_t *honoured = json_object ();
    for (size_t i = 0; i < sizeof s_listen_lists / sizeof s_listen_lists [0]; i++) {
        json_t *value = json_object_get (filter, s_listen_lists [i].key);
        if (value && !json_is_boolean (value)) {
            snprintf (message, sizeof message, "params.notifications.%s must be true or false.",
                      s_listen_lists [i].key);
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            json_decref (honoured);
            return;
        }
        if (json_is_true (value)) {
            lists |= s_listen_lists [i].bit;
            json_object_set_new (honoured, s_listen_lists [i].key, json_true ());
        }
    }
    if (json_object_get (filter, "taskIds") && !out->tasks) {
        json_decref (honoured);
        sb_mcp_missing_tasks (out, rpc->id, "Task status notifications (params.notifications.taskIds) need the "
                         "client to declare the " SB_MCP_TASKS_EXTENSION " extension.");
        return;
    }
    //  Task status: followed for the well-formed ids (whose tasks they are
    //  is checked with each tasks/get the gateway makes for the stream).
    json_t *task_ids = json_object_get (filter, "taskIds");
    json_t *tasks = NULL;
    if (task_ids) {
        if (!json_is_array (task_ids) || json_array_size (task_ids) > SB_MAX_LISTEN_TASKS) {
            snprintf (message, sizeof message, "params.notifications.taskIds must be an array of at "
                      "most %d taskIds.", SB_MAX_LISTEN_TASKS);
            sb_mcp_out_error (out, 200, rpc->id, SB_RPC_INVALID_PARAMS, message);
            json_decref (honoured);
            return;
        }
        tasks = json_array ();
        size_t i;
        json_t *task_id;
        json_array_foreach (task_ids, i, task_id) {
            bool seen = false;
            for (size_t j = 0; j < json_array_size (tasks) && !seen; j++)
                seen = json_equal (json_array_get (tasks, j), task_id);
            if (!seen && sb_mcp_task_id_ok (task_id))
                json_array_append (tasks, task_id);
        }
        json_object_set (honoured, "taskIds", tasks);
    }
    json_t *asked = json_object_get (filter, "resourceSubscriptions");
    json_t *uris = asked? json_array (): NULL;
    if (asked && s_listen_uris (rpc, env, asked, uris, out)) {
        json_decref (uris);
        json_decref (tasks);
        json_decref (honoured);
        return;
    }
    if (uris)
        json_object_set (honoured, "resourceSubscriptions", uris);
    json_t *ack = json_pack ("{s:s, s:s, s:{s:{s:O}, s:o}}", "jsonrpc", "2.0",
                             "method", "notifications/subscriptions/acknowledged",
                             "params", "_meta", SB_META_SUBSCRIPTION, rpc->id, "notifications", honoured);
    char *body = ack? json_dumps (ack, JSON_COMPACT): NULL;
    json_decref (ack);
    if (!body) {
        json_decref (uris);
        json_decref (tasks);
        sb_mcp_out_error (out, 500, rpc->id, SB_RPC_INTERNAL_ERROR, "Internal error");
        return;
    }
    sb_mcp_out_become (out, SB_MCP_LISTEN);
    out->http_status = 200;
    out->as.listen.body = body;
    out->as.listen.tasks = tasks;
    out->as.listen.id = json_incref (rpc->id);
    out->as.listen.lists = lists;
    out->as.listen.uris = uris;
}

char *
sb_mcp_listen_end (const char *id, const char *version)
{
    json_t *value = id? json_loads (id, JSON_DECODE_ANY, NULL): NULL;
    json_t *reply = value? json_pack ("{s:s, s:O, s:{s:s, s:{s:O, s:{s:s, s:s}}}}", "jsonrpc", "2.0",
                                      "id", value, "result", "resultType", "complete",
                                      "_meta", SB_META_SUBSCRIPTION, value, SB_META_SERVER_INFO,
                                      "name", "switchboard", "version", version? version: "0"): NULL;
    char *text = reply? json_dumps (reply, JSON_COMPACT): NULL;
    json_decref (reply);
    json_decref (value);
    return text;
}

char *
sb_mcp_listen_note (const char *id, const char *method, const char *uri)
{
    json_t *value = id? json_loads (id, JSON_DECODE_ANY, NULL): NULL;
    json_t *note = value && method? json_pack ("{s:s, s:s, s:{s:{s:O}}}", "jsonrpc", "2.0",
                                               "method", method, "params", "_meta",
                                               SB_META_SUBSCRIPTION, value): NULL;
    if (note && uri
    &&  json_object_set_new (json_object_get (note, "params"), "uri", json_string (uri))) {
        json_decref (note);
        note = NULL;
    }
    char *text = note? json_dumps (note, JSON_COMPACT): NULL;
    json_decref (note);
    json_decref (value);
    return text;
}

char *
sb_mcp_listen_task_note (const char *id, const json_t *task)
{
    json_t *value = id? json_loads (id, JSON_DECODE_ANY, NULL): NULL;
    json_t *params = value && json_is_object (task)? json_deep_copy (task): NULL;
    json_t *note = NULL;
    if (params && !json_object_set_new (params, "_meta", json_pack ("{s:O}", SB_META_SUBSCRIPTION, value)))
        note = json_pack ("{s:s, s:s, s:O}", "jsonrpc", "2.0", "method", "notifications/tasks",
                          "params", params);
    char *text = note? json_dumps (note, JSON_COMPACT): NULL;
    json_decref (note);
    json_decref (params);
    json_decref (value);
    return text;
}
