/*  tests/fuzz/fuzz_param_header.c — fuzz target for the Mcp-Param-*
    header check (gateway/sb_param_header.c), which decodes header values
    a client sends with every MCP 2026-07-28 tools/call.

    Input, one item a line:
      line 1  a tool's inputSchema (JSON), or a JSON string naming a tool
              of the repo's connectors (sb_param_headers_check_call)
      line 2  the call's arguments (JSON; anything else: none)
      then    headers "Name: value" (only Mcp-Param-* ones are kept)
    Invariants: the check returns 0 with an empty problem, or -1 with a
    "Header mismatch: …" sentence that fits SB_PARAM_HEADER_PROBLEM (and is
    cut, never overrun, in a smaller buffer); a request with more headers
    than are kept is never accepted when any annotation matters; sending a
    value as =?base64?…?= instead of as plain text changes nothing. A
    violation aborts.

    With -DSB_FUZZ=ON (clang) this is a libFuzzer target; otherwise
    tests/fuzz/sb_fuzz_replay.c replays tests/fuzz/corpus/param_header on
    every ctest run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_crypto.h"
#include "sb_param_header.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_param_header: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

#define S_MAX_INPUT     (64u << 10)     /* bytes of one input considered */
#define S_SMALL         24              /* a problem buffer too small for any sentence */
#define S_MISMATCH      "Header mismatch: the Mcp-Param-"
#define S_B64_PREFIX    "=?base64?"
#define S_B64_SUFFIX    "?="

static sb_connectors_t *s_connectors;

//  One input, taken apart.
typedef struct {
    json_t *schema;             //  line 1 when an object
    json_t *params;             //  {"name": line 1, "arguments": line 2} when line 1 is a string
    json_t *arguments;          //  line 2
    sb_param_headers_t headers;
    char *plain [SB_MAX_PARAM_HEADERS];     //  base64 forms of the values (owned), or NULL
} s_input_t;

//  Runs the check in `input` with `headers`, checking the outcome; the
//  problem goes to `problem` (SB_PARAM_HEADER_PROBLEM bytes).
static int
s_check (s_input_t *input, const sb_param_headers_t *headers, char *problem)
{
    char small [S_SMALL];
    int rc, rc_small;
    if (input->params) {
        rc = sb_param_headers_check_call (headers, s_connectors, input->params, problem,
                                          SB_PARAM_HEADER_PROBLEM);
        rc_small = sb_param_headers_check_call (headers, s_connectors, input->params, small,
                                                sizeof small);
    }
    else {
        rc = sb_param_headers_check (headers, input->schema, input->arguments, problem,
                                     SB_PARAM_HEADER_PROBLEM);
        rc_small = sb_param_headers_check (headers, input->schema, input->arguments, small,
                                           sizeof small);
    }
    CHECK (rc == 0 || rc == -1);
    CHECK (rc_small == rc);
    size_t len = strnlen (problem, SB_PARAM_HEADER_PROBLEM);
    CHECK (len < SB_PARAM_HEADER_PROBLEM);
    if (rc == 0)
        CHECK (len == 0 && small [0] == 0);
    else {
        CHECK (strncmp (problem, S_MISMATCH, strlen (S_MISMATCH)) == 0);
        CHECK (problem [len - 1] == '.');
        CHECK (strnlen (small, sizeof small) == sizeof small - 1);
        CHECK (strncmp (problem, small, sizeof small - 1) == 0);
    }
    return rc;
}

//  The value of `header` without the blanks around it, as the check reads it.
static void
s_trim (const sb_param_header_t *header, const char **value, size_t *size)
{
    *value = header->value;
    *size = header->value_len;
    while (*size > 0 && ((*value) [0] == ' ' || (*value) [0] == '\t'))
        (*value)++, (*size)--;
    while (*size > 0 && ((*value) [*size - 1] == ' ' || (*value) [*size - 1] == '\t'))
        (*size)--;
}

//  True when a value may be sent as it is: visible ASCII, space and tab.
static bool
s_plain (const char *value, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (!(value [i] == '\t' || (value [i] >= 0x20 && value [i] <= 0x7e)))
            return false;
    return true;
}

//  Standard, padded base64 of `size` bytes (new string), between the
//  sentinels: how a client sends a value that is not plain text.
static char *
s_base64_value (const char *value, size_t size)
{
    //  sb_base64url_encode, then to the standard alphabet with padding.
    char *url = sb_base64url_encode ((const uint8_t *) value, size);
    CHECK (url);
    size_t len = strlen (url), padded = (len + 3) / 4 * 4;
    size_t total = strlen (S_B64_PREFIX) + padded + strlen (S_B64_SUFFIX) + 1;
    char *text = malloc (total);
    CHECK (text);
    char *out = text + strlen (S_B64_PREFIX);
    memcpy (text, S_B64_PREFIX, strlen (S_B64_PREFIX));
    for (size_t i = 0; i < padded; i++)
        out [i] = i >= len? '=': url [i] == '-'? '+': url [i] == '_'? '/': url [i];
    memcpy (out + padded, S_B64_SUFFIX, strlen (S_B64_SUFFIX) + 1);
    free (url);
    return text;
}

//  Splits `text` into the input's parts; the headers point into `text`.
static void
s_parse (char *text, s_input_t *input)
{
    char *line2 = strchr (text, '\n');
    if (line2)
        *line2++ = 0;
    char *rest = line2? strchr (line2, '\n'): NULL;
    if (rest)
        *rest++ = 0;
    json_t *first = json_loads (text, JSON_DECODE_ANY, NULL);
    input->arguments = line2? json_loads (line2, JSON_DECODE_ANY, NULL): NULL;
    if (json_is_string (first)) {
        input->params = json_pack ("{s:O, s:O?}", "name", first, "arguments", input->arguments);
        json_decref (first);
    }
    else
        input->schema = first;
    while (rest && *rest) {
        char *line = rest;
        rest = strchr (rest, '\n');
        if (rest)
            *rest++ = 0;
        char *colon = strchr (line, ':');
        if (!colon)
            continue;
        const char *value = colon + 1;
        sb_param_headers_add (&input->headers, line, (size_t) (colon - line), value, strlen (value));
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_connectors) {
        char *error = NULL;
        s_connectors = sb_connectors_load (SB_SOURCE_DIR "/connectors", &error);
        free (error);
        CHECK (s_connectors);
    }
    if (size > S_MAX_INPUT)
        return 0;
    char *text = malloc (size + 1);
    CHECK (text);
    memcpy (text, data, size);
    text [size] = 0;
    s_input_t input = { 0 };
    s_parse (text, &input);
    CHECK (input.headers.count <= SB_MAX_PARAM_HEADERS);

    char problem [SB_PARAM_HEADER_PROBLEM];
    int rc = s_check (&input, &input.headers, problem);
    char none_problem [SB_PARAM_HEADER_PROBLEM];
    int rc_none = s_check (&input, NULL, none_problem);
    if (input.headers.overflow && rc_none != 0)
        CHECK (rc == -1);       //  an argument that needs a header: refused, not guessed

    //  The same request with plain values sent as base64: the same outcome,
    //  the same sentence (a value the check reads as text, short enough
    //  that its base64 form stays under the limit).
    sb_param_headers_t encoded = input.headers;
    size_t b64_prefix = strlen (S_B64_PREFIX);
    for (size_t i = 0; i < encoded.count; i++) {
        const char *value;
        size_t value_size;
        s_trim (&encoded.items [i], &value, &value_size);
        if (value_size > SB_MAX_PARAM_HEADER_VALUE / 2 || !s_plain (value, value_size)
        ||  (value_size >= b64_prefix && memcmp (value, S_B64_PREFIX, b64_prefix) == 0))
            continue;
        input.plain [i] = s_base64_value (value, value_size);
        encoded.items [i].value = input.plain [i];
        encoded.items [i].value_len = strlen (input.plain [i]);
    }
    char encoded_problem [SB_PARAM_HEADER_PROBLEM];
    int rc_encoded = s_check (&input, &encoded, encoded_problem);
    CHECK (rc_encoded == rc);
    CHECK (strcmp (encoded_problem, problem) == 0);

    for (size_t i = 0; i < SB_MAX_PARAM_HEADERS; i++)
        free (input.plain [i]);
    json_decref (input.schema);
    json_decref (input.params);
    json_decref (input.arguments);
    free (text);
    return 0;
}
