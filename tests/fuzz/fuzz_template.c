/*  tests/fuzz/fuzz_template.c — fuzz target for connector templates
    (connector/sb_template.c).

    Input is either
      - a JSON object {"path": "...", "query": {...}, "body": ..., "args": {...}}
        describing a template and its arguments, or
      - any other bytes, used as the value of argument "v" in a fixed
        template (path "/v1/things/{v}", query q={v}&n={n}, body {"v":"{v}",…}).
    Whatever the input, a rendered request must keep its shape: as many
    path segments as the template, no more query parameters than it has,
    no '#', only printable ASCII in the URL, and a body that parses as JSON
    (with exactly the template's keys in the fixed case). A violation aborts.

    With -DSB_FUZZ=ON (clang) it is a libFuzzer target; otherwise
    tests/fuzz/sb_fuzz_replay.c replays its corpus on every ctest run. */
#include "sb_fuzz.h"
#include "sb_connector_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_FUZZ_INPUT (64u << 10)   /* bytes of one input considered */

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_template: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

static size_t
s_count (const char *text, char c, const char *stop)
{
    size_t count = 0;
    for (; *text && (!stop || !strchr (stop, *text)); text++)
        count += *text == c;
    return count;
}

static void
s_check_url (const char *url, const char *base, size_t segments, size_t max_params)
{
    CHECK (strncmp (url, base, strlen (base)) == 0);
    CHECK (!strchr (url, '#'));
    for (const char *c = url; *c; c++)
        CHECK (*c > 0x20 && *c < 0x7f);
    const char *path = url + strlen (base);
    CHECK (s_count (path, '/', "?") == segments);
    const char *query = strchr (path, '?');
    if (query) {
        CHECK (s_count (query, '&', NULL) + 1 <= max_params);
        CHECK (!strchr (query + 1, '?'));
    }
    CHECK (strlen (url) <= SB_MAX_URL_LEN);
}

static void
s_fixed (const uint8_t *data, size_t size)
{
    json_t *value = json_stringn ((const char *) data, size);
    if (!value)
        return;     //  not UTF-8: JSON arguments can never hold it
    json_t *args = json_pack ("{s:o, s:i}", "v", value, "n", 1);
    json_t *query = json_pack ("{s:s, s:s}", "q", "{v}", "n", "{n}");
    json_t *body = json_pack ("{s:s, s:s}", "v", "{v}", "w", "x-{v}");
    sb_upstream_req_t req;
    char *error = NULL;
    if (sb_template_render_raw ("http://h", "POST", "/v1/things/{v}", query, body, args,
                                &req, &error) == 0) {
        s_check_url (req.url, "http://h", 3, 2);
        json_t *parsed = json_loads (req.body, JSON_ALLOW_NUL, NULL);
        CHECK (parsed);
        CHECK (json_object_size (parsed) == 2);
        CHECK (json_equal (json_object_get (parsed, "v"), json_object_get (args, "v")));
        json_decref (parsed);
        sb_upstream_req_clear (&req);
    }
    else {
        CHECK (error);
        CHECK (!req.url && !req.body);
        free (error);
    }
    json_decref (args);
    json_decref (query);
    json_decref (body);
}

static void
s_described (json_t *root)
{
    const char *path = json_string_value (json_object_get (root, "path"));
    json_t *query = json_object_get (root, "query");
    json_t *body = json_object_get (root, "body");
    json_t *args = json_object_get (root, "args");
    if (!path || path [0] != '/' || strpbrk (path, "?#") || (query && !json_is_object (query)))
        return;
    for (const char *c = path; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return;
    char *error = NULL;
    if (sb_template_check (path, NULL, NULL, &error)) {
        free (error);
        return;
    }
    sb_upstream_req_t req;
    if (sb_template_render_raw ("https://api.example", "POST", path, query, body, args,
                                &req, &error) == 0) {
        s_check_url (req.url, "https://api.example", s_count (path, '/', NULL),
                     json_object_size (query));
        if (req.body) {
            json_t *parsed = json_loads (req.body, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            CHECK (parsed);
            json_decref (parsed);
        }
        sb_upstream_req_clear (&req);
    }
    else {
        CHECK (error);
        free (error);
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > SB_MAX_FUZZ_INPUT)
        return 0;
    json_t *root = json_loadb ((const char *) data, size, 0, NULL);
    if (json_is_object (root) && json_object_get (root, "path"))
        s_described (root);
    else
        s_fixed (data, size);
    json_decref (root);
    return 0;
}
