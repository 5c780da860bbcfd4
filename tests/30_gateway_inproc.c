/*  tests/30_gateway_inproc.c — see 30_gateway_inproc.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sb_crypto.h"
#include "sb_token.h"
#include "30_gateway_inproc.h"

sb_gateway_t *gi_gw;
char gi_base [64];
char gi_key_path [160];
char gi_session_key_path [176];
static uint8_t s_key [32];          /* the token key */

//  ---------------------------------------------------------------------------
//  Tokens

int
gi_key_make (const char *tag)
{
    if (sb_crypto_random (s_key, sizeof s_key))
        return -1;
    snprintf (gi_key_path, sizeof gi_key_path, "/tmp/sb-30-%s-key-%d", tag, (int) getpid ());
    FILE *file = fopen (gi_key_path, "w");
    if (!file)
        return -1;
    char hex [2 * sizeof s_key + 1];
    sb_hex_encode (s_key, sizeof s_key, hex);
    fprintf (file, "%s\n", hex);
    if (fclose (file))
        return -1;
    snprintf (gi_session_key_path, sizeof gi_session_key_path, "%s.session", gi_key_path);
    return sb_harness_write_key (gi_session_key_path);
}

char *
gi_issue (const char *tenant, int64_t lifetime_s)
{
    sb_token_claims_t c;
    memset (&c, 0, sizeof c);
    snprintf (c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf (c.subject, sizeof c.subject, "tester");
    snprintf (c.scope, sizeof c.scope, "mcp:tools mcp:write");
    snprintf (c.audience, sizeof c.audience, "%s/mcp", gi_base);
    c.issued_at = time (NULL) - 10;
    c.expires_at = time (NULL) + lifetime_s;
    return sb_token_issue (&c, s_key, sizeof s_key);
}

//  ---------------------------------------------------------------------------
//  Waiting

int64_t
gi_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
gi_turn (void)
{
    if (gi_gw)
        sb_gateway_poll (gi_gw, 5);
    else {
        struct timespec pause = { 0, 5 * 1000000 };
        nanosleep (&pause, NULL);
    }
}

//  ---------------------------------------------------------------------------
//  HTTP in threads

//  Runs h's request to its end (a thread): the harness's client writes the
//  response under h->lock as it comes, and leaves when h->leave is set.
static void *
s_perform (void *arg)
{
    gi_http_t *h = arg;
    char url [128], auth [SB_MAX_TOKEN_LEN + 64];
    snprintf (url, sizeof url, "%s/mcp", gi_base);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", h->token);
    const char *headers [11] = { auth };
    for (int i = 0; h->headers [i]; i++)
        headers [1 + i] = h->headers [i];
    sb_harness_request_t request = { .method = h->method, .url = url, .headers = headers,
                                     .body = h->request,
                                     .body_len = h->request ? strlen (h->request) : 0,
                                     .timeout_ms = 3 * GI_WAIT_MS, .lock = &h->lock,
                                     .hang_up = &h->leave };
    int rc = sb_harness_request (&request, &h->response);
    pthread_mutex_lock (&h->lock);
    h->status = h->response.status;
    sb_harness_header (&h->response, "Mcp-Session-Id", h->session, sizeof h->session);
    h->rc = rc;
    h->done = true;
    pthread_mutex_unlock (&h->lock);
    return NULL;
}

//  Starts `method` with `body` (may be NULL) as `token`, in `session` (may
//  be NULL or ""), with up to 5 extra headers (NULL-terminated, may be NULL).
gi_http_t *
gi_start (const char *method, const char *token, const char *session, const char **extra,
         const char *body)
{
    gi_http_t *h = calloc (1, sizeof *h);
    pthread_mutex_init (&h->lock, NULL);
    snprintf (h->method, sizeof h->method, "%s", method);
    h->token = token;
    h->request = body? strdup (body): NULL;
    int n = 0;
    if (body) {
        h->headers [n++] = strdup ("Content-Type: application/json");
        h->headers [n++] = strdup ("Accept: application/json, text/event-stream");
    }
    else
        h->headers [n++] = strdup ("Accept: text/event-stream");
    if (session && *session)
        h->headers [n++] = zsys_sprintf ("Mcp-Session-Id: %s", session);
    for (int i = 0; extra && extra [i] && n < 8; i++)
        h->headers [n++] = strdup (extra [i]);
    pthread_create (&h->thread, NULL, s_perform, h);
    return h;
}

bool
gi_done (gi_http_t *h)
{
    pthread_mutex_lock (&h->lock);
    bool done = h->done;
    pthread_mutex_unlock (&h->lock);
    return done;
}

//  Waits for the end of the request (the loop turning meanwhile).
void
gi_finish (gi_http_t *h)
{
    GI_WAIT_FOR (gi_done (h));
    pthread_join (h->thread, NULL);
    assert_int_equal (h->rc, 0);
}

void
gi_free (gi_http_t *h)
{
    for (int i = 0; h->headers [i]; i++)
        free (h->headers [i]);
    free (h->request);
    sb_harness_response_clear (&h->response);
    pthread_mutex_destroy (&h->lock);
    free (h);
}

//  A copy of the body so far (new string).
char *
gi_body (gi_http_t *h)
{
    pthread_mutex_lock (&h->lock);
    char *copy = strdup (h->response.body? h->response.body: "");
    pthread_mutex_unlock (&h->lock);
    return copy;
}

//  The data of the complete SSE events so far, or of a JSON body (new array).
json_t *
gi_events (gi_http_t *h)
{
    json_t *events = json_array ();
    char *copy = gi_body (h);
    if (copy [0] == '{') {
        json_array_append_new (events, json_loads (copy, 0, NULL));
        free (copy);
        return events;
    }
    char *end = NULL;
    for (char *last = strstr (copy, "\n\n"); last; last = strstr (last + 2, "\n\n"))
        end = last;
    if (end)
        end [1] = 0;
    else
        copy [0] = 0;
    for (char *line = strtok (copy, "\n"); line; line = strtok (NULL, "\n"))
        if (strncmp (line, "data: ", 6) == 0 && line [6]) {
            json_t *data = json_loads (line + 6, 0, NULL);
            assert_non_null (data);
            json_array_append_new (events, data);
        }
    free (copy);
    return events;
}

bool
gi_has (gi_http_t *h, const char *text)
{
    pthread_mutex_lock (&h->lock);
    bool has = h->response.body && strstr (h->response.body, text);
    pthread_mutex_unlock (&h->lock);
    return has;
}

size_t
gi_event_count (gi_http_t *h)
{
    json_t *events = gi_events (h);
    size_t count = json_array_size (events);
    json_decref (events);
    return count;
}

//  One request run to its end; its one JSON-RPC answer (new reference).
json_t *
gi_rpc (const char *token, const char *session, const char **extra, const char *body, long *status)
{
    gi_http_t *h = gi_start ("POST", token, session, extra, body);
    gi_finish (h);
    if (status)
        *status = h->status;
    json_t *events = gi_events (h);
    json_t *reply = json_incref (json_array_get (events, json_array_size (events) - 1));
    json_decref (events);
    gi_free (h);
    assert_non_null (reply);
    return reply;
}

//  The next `count` events of stream `h` as "method", "method uri" or
//  "result", each followed by "#<subscriptionId>" when it carries one,
//  joined by "; " (new string); waits for them.
char *
gi_next_events (gi_http_t *h, size_t count)
{
    GI_WAIT_FOR (gi_event_count (h) >= h->seen + count);
    json_t *events = gi_events (h);
    char text [2048] = "";
    for (size_t i = h->seen; i < h->seen + count; i++) {
        json_t *event = json_array_get (events, i);
        json_t *result = json_object_get (event, "result");
        const char *method = result? "result": json_string_value (json_object_get (event, "method"));
        json_t *params = result? result: json_object_get (event, "params");
        const char *uri = json_string_value (json_object_get (params, "uri"));
        json_t *tag = json_object_get (json_object_get (params, "_meta"), GI_META_ID);
        char *tag_text = tag? json_dumps (tag, JSON_ENCODE_ANY): NULL;
        size_t used = strlen (text);
        snprintf (text + used, sizeof text - used, "%s%s%s%s%s%s", used? "; ": "",
                  method? method: "?", uri? " ": "", uri? uri: "", tag? "#": "", tag_text? tag_text: "");
        free (tag_text);
    }
    h->seen += count;
    json_decref (events);
    return strdup (text);
}

void
gi_expect (gi_http_t *h, size_t count, const char *expected)
{
    char *got = gi_next_events (h, count);
    assert_string_equal (got, expected);
    free (got);
}

//  ---------------------------------------------------------------------------
//  The connectors folder

//  Writes <dir>/notes.json: tools `tools` (comma-separated names, each the
//  builtin test_simple_text), resources note/one..three with the texts
//  given (NULL: absent), the template test://note/{id}/raw rendering `raw`,
//  and one prompt described `prompt`.
void
gi_write (const char *dir, const char *tools, const char *one, const char *two, const char *three,
         const char *raw, const char *prompt)
{
    json_t *tool_list = json_array ();
    char names [256];
    snprintf (names, sizeof names, "%s", tools);
    for (char *name = strtok (names, ","); name; name = strtok (NULL, ","))
        json_array_append_new (tool_list, json_pack (
            "{s:s, s:s, s:{s:s, s:{}, s:b}, s:{s:s}}", "name", name, "description", "A note tool",
            "inputSchema", "type", "object", "properties", "additionalProperties", 0,
            "request", "builtin", "test_simple_text"));
    json_t *resources = json_array ();
    const char *texts [] = { one, two, three };
    const char *uris [] = { "test://note/one", "test://note/two", "test://note/three" };
    for (int i = 0; i < 3; i++)
        if (texts [i])
            json_array_append_new (resources, json_pack ("{s:s, s:s, s:s, s:s}", "uri", uris [i],
                                   "name", uris [i] + 12, "mimeType", "text/plain", "text", texts [i]));
    json_t *doc = json_pack ("{s:s, s:s, s:{s:s}, s:o, s:o, s:[{s:s, s:s, s:s, s:s}], "
                             "s:[{s:s, s:s, s:[{s:s, s:{s:s, s:s}}]}]}",
        "name", "notes", "title", "Notes", "auth", "type", "none",
        "tools", tool_list, "resources", resources,
        "resource_templates", "uriTemplate", "test://note/{id}/raw", "name", "raw",
        "mimeType", "text/plain", "text", raw,
        "prompts", "name", "note_prompt", "description", prompt,
        "messages", "role", "user", "content", "type", "text", "text", "Hello.");
    assert_non_null (doc);
    char path [256], temp [256];
    snprintf (path, sizeof path, "%s/notes.json", dir);
    snprintf (temp, sizeof temp, "%s/.notes.json.tmp", dir);
    //  Written aside and renamed, as an operator's deploy would.
    assert_int_equal (json_dump_file (doc, temp, JSON_INDENT (2)), 0);
    assert_int_equal (rename (temp, path), 0);
    json_decref (doc);
}

void
gi_write_file (const char *dir, const char *name, const char *text)
{
    char path [256];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

void
gi_remove_dir (const char *dir)
{
    char path [256];
    const char *names [] = { "notes.json", "broken.json", ".notes.json.tmp", NULL };
    for (int i = 0; names [i]; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, names [i]);
        unlink (path);
    }
    rmdir (dir);
}

