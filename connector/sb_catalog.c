/*  connector/sb_catalog.c — the MCP resources, resource templates, prompts
    and completions that connector definitions declare next to their tools
    (format in connectors/README.md), and the tool accessors that go with
    them (outputSchema, _meta, builtin fixtures).

    Everything here is static data, checked strictly at load and answered
    without a job. Its shape is checked before it gets here, against the
    connector format (connectors/connector.schema.json, sb_connector.c);
    the parsers check only what a schema cannot say, and name the place by
    its JSON pointer in the definition ("a.json: /prompts/2/messages: …"). Placeholders are {name} with letters, digits and '_';
    other braces are literal text, so prompts may quote JSON.

    Resource templates are RFC 6570 level 1 ({var} only). A variable matches
    a non-empty run of unreserved characters and %XX escapes, so it can
    never span a '/' or a '?'; a "text" content template gets the value as
    it stood in the URI (still percent-encoded, so it holds no quote, angle
    bracket or backslash), a "json" content template gets it decoded and
    escaped by jansson as a JSON string. */
#include "sb_connector_int.h"
#include "sb_attr.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define SB_MAX_TEMPLATE_VARS    8       /* variables in one URI template */

struct _sb_catalog_t {
    json_t *resources;          /* MCP Resource objects */
    json_t *contents;           /* per resource: its contents item (uri, mimeType, text|blob) */
    json_t *templates;          /* MCP ResourceTemplate objects */
    json_t *template_defs;      /* per template: {"text"|"json": content, "completions": {var: [..]}} */
    json_t *prompts;            /* MCP Prompt objects */
    json_t *prompt_defs;        /* per prompt: {"messages": [..], "completions": {arg: [..]}} */
};

//  --------------------------------------------------------------------------
//  Placeholders and base64

//  Finds the next {name} placeholder at or after `p`: returns a pointer to
//  its '{' with *name / *len set, or NULL.
static const char *
s_next_placeholder (const char *p, const char **name, size_t *len)
{
    for (; (p = strchr (p, '{')); p++) {
        const char *q = p + 1;
        while (isalnum ((unsigned char) *q) || *q == '_')
            q++;
        if (*q == '}' && q > p + 1 && q - p - 1 <= SB_MAX_CONNECTOR_NAME) {
            *name = p + 1;
            *len = (size_t) (q - p - 1);
            return p;
        }
    }
    return NULL;
}

//  Is `name` (len bytes) one of the strings of array `names`?
static bool
s_names_hold (const json_t *names, const char *name, size_t len)
{
    size_t index;
    json_t *item;
    json_array_foreach (names, index, item)
        if (json_string_length (item) == len && memcmp (json_string_value (item), name, len) == 0)
            return true;
    return false;
}

//  Every placeholder in every string of `tmpl` must be one of `names`.
static int
s_check_placeholders (const json_t *tmpl, const json_t *names, const char *where, char **why)
{
    if (json_is_string (tmpl)) {
        const char *p = json_string_value (tmpl), *name;
        size_t len;
        while ((p = s_next_placeholder (p, &name, &len))) {
            if (!s_names_hold (names, name, len)) {
                *why = sb_strfmt ("%s: placeholder {%.*s} names no declared argument or variable",
                                  where, (int) len, name);
                return -1;
            }
            p += len + 2;
        }
        return 0;
    }
    const char *key;
    size_t index;
    json_t *child;
    if (json_is_object (tmpl))
        json_object_foreach (sb_unconst (tmpl), key, child)
            if (s_check_placeholders (child, names, where, why))
                return -1;
    if (json_is_array (tmpl))
        json_array_foreach (tmpl, index, child)
            if (s_check_placeholders (child, names, where, why))
                return -1;
    return 0;
}

//  Renders the placeholders of `tmpl` from string members of `values`
//  (absent ones render empty). Returns a new string or NULL when too large.
static char *
s_render_string (const char *tmpl, const json_t *values)
{
    size_t cap = strlen (tmpl) + 1, used = 0;
    char *out = malloc (cap);
    const char *p = tmpl, *at, *name;
    size_t len;
    while (out && p) {
        at = s_next_placeholder (p, &name, &len);
        size_t lit = at ? (size_t) (at - p) : strlen (p);
        char key [SB_MAX_CONNECTOR_NAME + 1] = "";
        if (at)
            snprintf (key, sizeof key, "%.*s", (int) len, name);
        const char *value = at ? json_string_value (json_object_get (values, key)) : NULL;
        size_t vlen = value ? strlen (value) : 0;
        if (used + lit + vlen + 1 > SB_MAX_RESOURCE_BYTES) {
            free (out);
            return NULL;
        }
        if (used + lit + vlen + 1 > cap) {
            cap = (used + lit + vlen + 1) * 2;
            char *grown = realloc (out, cap);
            if (!grown)
                free (out);
            out = grown;
            if (!out)
                return NULL;
        }
        memcpy (out + used, p, lit);
        used += lit;
        if (value)
            memcpy (out + used, value, vlen);
        used += vlen;
        p = at ? at + len + 2 : NULL;
    }
    if (out)
        out [used] = 0;
    return out;
}

//  Renders every string inside JSON `tmpl` (new reference, NULL on failure).
static json_t *
s_render_json (const json_t *tmpl, const json_t *values)
{
    if (json_is_string (tmpl)) {
        char *text = s_render_string (json_string_value (tmpl), values);
        json_t *out = text ? json_string (text) : NULL;
        free (text);
        return out;
    }
    json_t *out = json_is_object (tmpl) ? json_object ()
                : json_is_array (tmpl) ? json_array () : json_deep_copy (tmpl);
    const char *key;
    size_t index;
    json_t *child;
    if (json_is_object (tmpl))
        json_object_foreach (sb_unconst (tmpl), key, child)
            if (json_object_set_new (out, key, s_render_json (child, values)))
                json_decref (out), out = NULL;
    if (out && json_is_array (tmpl))
        json_array_foreach (tmpl, index, child)
            if (json_array_append_new (out, s_render_json (child, values)))
                json_decref (out), out = NULL;
    return out;
}

static const char s_b64 [] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

//  Standard padded base64 of `len` bytes (new string).
static char *
s_base64 (const unsigned char *data, size_t len)
{
    char *out = malloc ((len + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; out && i < len; i += 3) {
        unsigned v = (unsigned) data [i] << 16 | (i + 1 < len ? data [i + 1] << 8 : 0)
                   | (i + 2 < len ? data [i + 2] : 0);
        *o++ = s_b64 [v >> 18 & 63];
        *o++ = s_b64 [v >> 12 & 63];
        *o++ = i + 1 < len ? s_b64 [v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? s_b64 [v & 63] : '=';
    }
    if (out)
        *o = 0;
    return out;
}

//  Is `text` well-formed padded base64? Returns the decoded size or -1.
static long
s_base64_size (const char *text)
{
    size_t len = strlen (text), pad = 0;
    if (len == 0 || len % 4)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text [i] == '=' && i >= len - 2) {
            pad++;
            continue;
        }
        if (pad || !strchr (s_b64, text [i]) || !text [i])
            return -1;
    }
    return (long) (len / 4 * 3 - pad);
}

//  --------------------------------------------------------------------------
//  Parsing

//  Reads static content from "file" (relative to the connectors dir) into
//  item: "text" when it is UTF-8 without NULs, otherwise "blob".
static int
s_read_file (json_t *item, const char *file, const char *rel, const char *where, char **why)
{
    if (rel [0] == '/' || strstr (rel, "..") || strchr (rel, '\\')) {
        *why = sb_strfmt ("%s/file: must be a path inside the connectors folder, "
                          "without \"..\"", where);
        return -1;
    }
    const char *slash = strrchr (file, '/');
    char *path = sb_strfmt ("%.*s%s", slash ? (int) (slash - file + 1) : 0, file, rel);
    FILE *handle = path ? fopen (path, "rb") : NULL;
    struct stat info;
    int rc = -1;
    unsigned char *data = NULL;
    if (!handle || fstat (fileno (handle), &info) || !S_ISREG (info.st_mode)) {
        *why = sb_strfmt ("%s/file: cannot read \"%s\": %s", where, rel,
                          handle ? "not a regular file" : strerror (errno));
        goto out;
    }
    if (info.st_size > (off_t) SB_MAX_RESOURCE_BYTES) {
        *why = sb_strfmt ("%s/file: \"%s\" is larger than %u bytes", where, rel,
                          (unsigned) SB_MAX_RESOURCE_BYTES);
        goto out;
    }
    data = malloc ((size_t) info.st_size + 1);
    size_t len = data ? fread (data, 1, (size_t) info.st_size, handle) : 0;
    if (!data || len != (size_t) info.st_size) {
        *why = sb_strfmt ("%s/file: cannot read \"%s\"", where, rel);
        goto out;
    }
    json_t *text = memchr (data, 0, len) ? NULL : json_stringn ((char *) data, len);
    if (text)
        json_object_set_new (item, "text", text);
    else {
        char *blob = s_base64 (data, len);
        json_object_set_new (item, "blob", json_string (blob ? blob : ""));
        free (blob);
    }
    rc = 0;
out:
    if (handle)
        fclose (handle);
    free (data);
    free (path);
    return rc;
}

//  Copies the members `keys` of `def` that it has into `out`.
static void
s_copy_members (json_t *out, const json_t *def, const char *const keys [])
{
    for (size_t i = 0; keys [i]; i++) {
        json_t *value = json_object_get (def, keys [i]);
        if (value)
            json_object_set_new (out, keys [i], json_deep_copy (value));
    }
}

//  Resource `index` of `file`. The format checked its shape (a URI with a
//  scheme, a name, exactly one of text, blob or file); left are the blob's
//  base64, the file (read now) and the content's size.
static int
s_resource_parse (sb_catalog_t *self, const json_t *def, const char *file, size_t index,
                  char **why)
{
    static const char *const keys [] = {
        "name", "title", "description", "mimeType", "annotations", "_meta", NULL
    };
    char where [512];
    snprintf (where, sizeof where, "%.400s: /resources/%zu", file, index);
    const char *uri = sb_def_string (def, "uri");
    json_t *descriptor = json_pack ("{s:s}", "uri", uri);
    json_t *item = json_pack ("{s:s}", "uri", uri);
    json_array_append_new (self->resources, descriptor);
    json_array_append_new (self->contents, item);
    s_copy_members (descriptor, def, keys);
    const char *text = sb_def_string (def, "text");
    if (text)
        json_object_set_new (item, "text", json_string (text));
    text = sb_def_string (def, "blob");
    if (text && s_base64_size (text) < 0) {
        *why = sb_strfmt ("%s/blob: must be standard padded base64", where);
        return -1;
    }
    if (text)
        json_object_set_new (item, "blob", json_string (text));
    text = sb_def_string (def, "file");
    if (text && s_read_file (item, file, text, where, why))
        return -1;
    json_t *mime = json_object_get (descriptor, "mimeType");
    if (mime)
        json_object_set (item, "mimeType", mime);
    if (json_object_get (descriptor, "_meta"))
        json_object_set (item, "_meta", json_object_get (descriptor, "_meta"));
    const char *blob = json_string_value (json_object_get (item, "blob"));
    json_int_t size = blob ? s_base64_size (blob)
                    : (json_int_t) json_string_length (json_object_get (item, "text"));
    if (size > (json_int_t) SB_MAX_RESOURCE_BYTES) {
        *why = sb_strfmt ("%s: content is larger than %u bytes", where,
                          (unsigned) SB_MAX_RESOURCE_BYTES);
        return -1;
    }
    json_object_set_new (descriptor, "size", json_integer (size));
    return 0;
}

//  Splits an RFC 6570 level-1 URI template into its variable names.
//  A variable must be followed by the end or by a character that no
//  variable value can hold, so matching is never ambiguous.
static int
s_template_vars (const char *tmpl, json_t *vars, const char *where, char **why)
{
    const char *p = tmpl, *name;
    size_t len;
    for (const char *q = tmpl; *q; q++)
        if (*q == '}' && (q == tmpl || !(isalnum ((unsigned char) q [-1]) || q [-1] == '_'))) {
            *why = sb_strfmt ("%s/uriTemplate: has a '}' without '{'", where);
            return -1;
        }
    while ((p = strchr (p, '{'))) {
        if (s_next_placeholder (p, &name, &len) != p) {
            *why = sb_strfmt ("%s/uriTemplate: supports only level-1 {name} expressions "
                              "(letters, digits, _)", where);
            return -1;
        }
        char next = p [len + 2];
        if (next && (isalnum ((unsigned char) next) || strchr ("-._~%{", next))) {
            *why = sb_strfmt ("%s/uriTemplate: {%.*s} must be followed by the end or "
                              "a delimiter such as '/', '?', '&', '=' or ','", where, (int) len, name);
            return -1;
        }
        if (s_names_hold (vars, name, len) || json_array_size (vars) == SB_MAX_TEMPLATE_VARS) {
            *why = sb_strfmt ("%s/uriTemplate: repeats {%.*s} or has more than %d variables",
                              where, (int) len, name, SB_MAX_TEMPLATE_VARS);
            return -1;
        }
        json_array_append_new (vars, json_stringn (name, len));
        p += len + 2;
    }
    if (json_array_size (vars) == 0) {
        *why = sb_strfmt ("%s/uriTemplate: has no {variable}; declare a resource instead", where);
        return -1;
    }
    return 0;
}

//  "completions": {name: [values]} where every name is in `names` (the
//  format checked the values: arrays of strings).
static int
s_completions_parse (json_t *out, const json_t *def, const json_t *names, const char *where,
                     char **why)
{
    json_t *completions = json_object_get (def, "completions");
    const char *key;
    json_t *values;
    if (!completions)
        return 0;
    json_object_foreach (completions, key, values)
        if (!s_names_hold (names, key, strlen (key))) {
            *why = sb_strfmt ("%s/completions: names \"%s\", which is not a variable of "
                              "the uriTemplate", where, key);
            return -1;
        }
    json_object_set_new (out, "completions", json_deep_copy (completions));
    return 0;
}

//  Resource template `index` of `file`. The format checked its shape (a
//  URI with a scheme, a name, exactly one of text or json); left are the
//  template's own syntax, the variables its completions and placeholders
//  name.
static int
s_template_parse (sb_catalog_t *self, const json_t *def, const char *file, size_t index,
                  char **why)
{
    static const char *const keys [] = {
        "name", "title", "description", "mimeType", "annotations", "_meta", NULL
    };
    char where [512], inner [600];
    snprintf (where, sizeof where, "%.400s: /resource_templates/%zu", file, index);
    const char *uri = sb_def_string (def, "uriTemplate");
    json_t *vars = json_array ();
    json_t *descriptor = json_pack ("{s:s}", "uriTemplate", uri);
    json_t *tdef = json_pack ("{s:o}", "vars", vars);
    json_array_append_new (self->templates, descriptor);
    json_array_append_new (self->template_defs, tdef);
    s_copy_members (descriptor, def, keys);
    if (s_template_vars (uri, vars, where, why)
    ||  s_completions_parse (tdef, def, vars, where, why))
        return -1;
    json_t *content_text = json_object_get (def, "text");
    json_t *content = content_text ? content_text : json_object_get (def, "json");
    snprintf (inner, sizeof inner, "%s/%s", where, content_text ? "text" : "json");
    if (s_check_placeholders (content, vars, inner, why))
        return -1;
    json_object_set_new (tdef, content_text ? "text" : "json", json_deep_copy (content));
    return 0;
}

//  Prompt `index` of `file`. The format checked its shape (names, roles,
//  each content item by its type); left are argument names used once,
//  base64 image and audio data, and placeholders naming arguments.
static int
s_prompt_parse (sb_catalog_t *self, const json_t *def, const char *file, size_t index,
                char **why)
{
    static const char *const keys [] = { "title", "description", "_meta", NULL };
    static const char *const arg_keys [] = { "title", "description", NULL };
    char where [512], inner [600];
    snprintf (where, sizeof where, "%.400s: /prompts/%zu", file, index);
    json_t *names = json_array ();
    json_t *completions = json_object ();
    json_t *descriptor = json_pack ("{s:s}", "name", sb_def_string (def, "name"));
    json_t *pdef = json_pack ("{s:o, s:o}", "names", names, "completions", completions);
    json_array_append_new (self->prompts, descriptor);
    json_array_append_new (self->prompt_defs, pdef);
    s_copy_members (descriptor, def, keys);
    if (sb_def_bool (def, "hidden", false))
        json_object_set_new (pdef, "hidden", json_true ());

    json_t *out_args = json_array ();
    json_object_set_new (descriptor, "arguments", out_args);
    size_t at;
    json_t *arg;
    json_array_foreach (json_object_get (def, "arguments"), at, arg) {
        const char *name = sb_def_string (arg, "name");
        if (s_names_hold (names, name, strlen (name))) {
            *why = sb_strfmt ("%s/arguments/%zu/name: \"%s\" is already the name of another "
                              "argument", where, at, name);
            return -1;
        }
        json_array_append_new (names, json_string (name));
        json_t *out = json_pack ("{s:s, s:b}", "name", name,
                                 "required", sb_def_bool (arg, "required", false));
        json_array_append_new (out_args, out);
        s_copy_members (out, arg, arg_keys);
        json_t *values = json_object_get (arg, "completions");
        if (values)
            json_object_set_new (completions, name, json_deep_copy (values));
    }

    json_t *messages = json_object_get (def, "messages");
    json_t *msg;
    json_array_foreach (messages, at, msg) {
        json_t *content = json_object_get (msg, "content");
        json_t *data = json_object_get (content, "data");
        const char *type = sb_def_string (content, "type");
        if ((strcmp (type, "image") == 0 || strcmp (type, "audio") == 0)
        &&  s_base64_size (json_string_value (data)) < 0) {
            *why = sb_strfmt ("%s/messages/%zu/content/data: must be standard padded base64",
                              where, at);
            return -1;
        }
    }
    snprintf (inner, sizeof inner, "%s/messages", where);
    if (s_check_placeholders (messages, names, inner, why))
        return -1;
    json_object_set_new (pdef, "messages", json_deep_copy (messages));
    return 0;
}

void
sb_catalog_destroy (sb_catalog_t **self_p)
{
    sb_catalog_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->resources);
    json_decref (self->contents);
    json_decref (self->templates);
    json_decref (self->template_defs);
    json_decref (self->prompts);
    json_decref (self->prompt_defs);
    free (self);
    *self_p = NULL;
}

sb_catalog_t *
sb_catalog_parse (const json_t *root, const char *file, char **why)
{
    typedef int (s_parse_fn) (sb_catalog_t *, const json_t *, const char *, size_t, char **);
    static const char *const lists [] = { "resources", "resource_templates", "prompts" };
    static s_parse_fn *const parsers [] = { s_resource_parse, s_template_parse, s_prompt_parse };
    sb_catalog_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->resources = json_array ();
    self->contents = json_array ();
    self->templates = json_array ();
    self->template_defs = json_array ();
    self->prompts = json_array ();
    self->prompt_defs = json_array ();
    for (size_t l = 0; l < 3; l++) {
        size_t index;
        json_t *def;
        json_array_foreach (json_object_get (root, lists [l]), index, def)
            if (parsers [l] (self, def, file, index, why))
                goto fail;
    }
    return self;
fail:
    if (!*why)
        *why = sb_strfmt ("%s: out of memory", file);
    sb_catalog_destroy (&self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Whole-set checks

//  The resource descriptor for `uri` over all connectors, or NULL; *item
//  gets its contents item when non-NULL.
static const json_t *
s_find_resource (sb_connectors_t *self, const char *uri, json_t **item)
{
    for (size_t c = 0; c < self->count; c++) {
        sb_catalog_t *catalog = self->connectors [c]->catalog;
        size_t index;
        json_t *resource;
        json_array_foreach (catalog->resources, index, resource)
            if (strcmp (json_string_value (json_object_get (resource, "uri")), uri) == 0) {
                if (item)
                    *item = json_array_get (catalog->contents, index);
                return resource;
            }
    }
    return NULL;
}

//  Counts entries of `list` (per catalog) whose `key` equals `value`.
static size_t
s_count_named (sb_connectors_t *self, size_t list_offset, const char *key, const char *value)
{
    size_t count = 0;
    for (size_t c = 0; c < self->count; c++) {
        json_t *list = *(json_t **) ((char *) self->connectors [c]->catalog + list_offset);
        size_t index;
        json_t *entry;
        json_array_foreach (list, index, entry)
            count += strcmp (json_string_value (json_object_get (entry, key)), value) == 0;
    }
    return count;
}

int
sb_catalog_check_set (sb_connectors_t *self, char **why)
{
    static const struct { size_t offset; const char *key, *list; } unique [] = {
        { offsetof (sb_catalog_t, resources), "uri", "resources" },
        { offsetof (sb_catalog_t, templates), "uriTemplate", "resource_templates" },
        { offsetof (sb_catalog_t, prompts), "name", "prompts" },
    };
    //  Last to first, so that the error names a repetition, not the original.
    for (size_t c = self->count; c-- > 0;) {
        sb_connector_t *connector = self->connectors [c];
        for (size_t u = 0; u < 3; u++) {
            json_t *list = *(json_t **) ((char *) connector->catalog + unique [u].offset);
            for (size_t index = json_array_size (list); index-- > 0;) {
                json_t *entry = json_array_get (list, index);
                const char *value = json_string_value (json_object_get (entry, unique [u].key));
                if (s_count_named (self, unique [u].offset, unique [u].key, value) > 1) {
                    *why = sb_strfmt ("%s: /%s/%zu/%s: \"%s\" is declared more than once "
                                      "(over all connectors)", connector->file, unique [u].list,
                                      index, unique [u].key, value);
                    return -1;
                }
            }
        }
        //  A widget a tool names must exist, with the mimeType its host expects.
        for (size_t t = 0; t < connector->tool_count; t++) {
            sb_tool_t *tool = connector->tools [t];
            const char *refs [2] = {
                json_string_value (json_object_get (json_object_get (tool->meta, "ui"), "resourceUri")),
                json_string_value (json_object_get (tool->meta, "openai/outputTemplate")),
            };
            static const char *const mimes [2] = { "text/html;profile=mcp-app", "text/html+skybridge" };
            for (size_t r = 0; r < 2; r++) {
                if (!refs [r])
                    continue;
                const json_t *resource = s_find_resource (self, refs [r], NULL);
                const char *mime = json_string_value (json_object_get (resource, "mimeType"));
                if (!resource || !mime || strcmp (mime, mimes [r])) {
                    *why = sb_strfmt ("%s: /tools/%zu/_meta/%s: \"%s\" must be a declared "
                                      "resource with mimeType \"%s\"", connector->file, t,
                                      r ? "openai~1outputTemplate" : "ui/resourceUri",
                                      refs [r], mimes [r]);
                    return -1;
                }
            }
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Answers

//  Concatenates array `key` of every catalog (new reference).
static json_t *
s_all (sb_connectors_t *self, size_t list_offset)
{
    json_t *all = json_array ();
    for (size_t c = 0; all && c < self->count; c++)
        json_array_extend (all, *(json_t **) ((char *) self->connectors [c]->catalog + list_offset));
    json_t *copy = json_deep_copy (all);
    json_decref (all);
    return copy;
}

json_t *
sb_connectors_resources (sb_connectors_t *self)
{
    return s_all (self, offsetof (sb_catalog_t, resources));
}

json_t *
sb_connectors_resource_templates (sb_connectors_t *self)
{
    return s_all (self, offsetof (sb_catalog_t, templates));
}

json_t *
sb_connectors_prompts (sb_connectors_t *self)
{
    return s_all (self, offsetof (sb_catalog_t, prompts));
}

static int
s_hex (char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

//  Matches `uri` against template `tmpl` (vars in order): fills `raw` (as
//  in the URI) and `decoded` with one string per variable. Returns true on
//  a match whose values are non-empty and decode to UTF-8 without controls.
static bool
s_template_match (const char *tmpl, const char *uri, json_t *raw, json_t *decoded)
{
    const char *t = tmpl, *u = uri, *name;
    size_t len;
    while (*t) {
        const char *at = s_next_placeholder (t, &name, &len);
        size_t lit = at ? (size_t) (at - t) : strlen (t);
        if (strncmp (t, u, lit))
            return false;
        t += lit;
        u += lit;
        if (!at)
            break;
        char key [SB_MAX_CONNECTOR_NAME + 1];
        snprintf (key, sizeof key, "%.*s", (int) len, name);
        char value [SB_MAX_RESOURCE_URI + 1];
        size_t vlen = 0;
        const char *start = u;
        while (*u) {
            if (isalnum ((unsigned char) *u) || strchr ("-._~", *u)) {
                value [vlen++] = *u++;
                continue;
            }
            if (*u != '%')
                break;
            int hi = s_hex (u [1]), lo = hi < 0 ? -1 : s_hex (u [2]);
            if (lo < 0)
                return false;
            value [vlen] = (char) (hi << 4 | lo);
            if ((unsigned char) value [vlen] < 0x20 || value [vlen] == 0x7f)
                return false;
            vlen++;
            u += 3;
        }
        json_t *text = vlen ? json_stringn (value, vlen) : NULL;
        if (!text)
            return false;       // empty, or not UTF-8
        json_object_set_new (decoded, key, text);
        json_object_set_new (raw, key, json_stringn (start, (size_t) (u - start)));
        t = at + len + 2;
    }
    return *u == 0;
}

int
sb_connectors_resource_read (sb_connectors_t *self, const char *uri,
                             json_t **contents, char **error)
{
    *contents = NULL;
    json_t *item = NULL;
    if (uri && s_find_resource (self, uri, &item)) {
        *contents = json_pack ("[O]", item);
        return *contents ? 0 : -1;
    }
    for (size_t c = 0; uri && strlen (uri) <= SB_MAX_RESOURCE_URI && c < self->count; c++) {
        sb_catalog_t *catalog = self->connectors [c]->catalog;
        size_t index;
        json_t *tmpl;
        json_array_foreach (catalog->templates, index, tmpl) {
            json_t *raw = json_object (), *decoded = json_object ();
            json_t *def = json_array_get (catalog->template_defs, index);
            json_t *content = NULL;
            if (s_template_match (json_string_value (json_object_get (tmpl, "uriTemplate")),
                                  uri, raw, decoded)) {
                json_t *text = json_object_get (def, "text");
                if (text) {
                    char *rendered = s_render_string (json_string_value (text), raw);
                    content = rendered ? json_string (rendered) : NULL;
                    free (rendered);
                }
                else {
                    json_t *value = s_render_json (json_object_get (def, "json"), decoded);
                    char *dumped = value ? json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
                    content = dumped ? json_string (dumped) : NULL;
                    free (dumped);
                    json_decref (value);
                }
            }
            json_decref (raw);
            json_decref (decoded);
            if (content) {
                json_t *out = json_pack ("{s:s, s:o}", "uri", uri, "text", content);
                json_t *mime = json_object_get (tmpl, "mimeType");
                if (mime)
                    json_object_set (out, "mimeType", mime);
                *contents = json_pack ("[o]", out);
                return 0;
            }
        }
    }
    *error = sb_strfmt ("No resource matches the URI \"%.200s\".", uri ? uri : "");
    return -1;
}

//  The prompt named `name` and its definition, or NULL.
static json_t *
s_find_prompt (sb_connectors_t *self, const char *name, json_t **def)
{
    for (size_t c = 0; name && c < self->count; c++) {
        sb_catalog_t *catalog = self->connectors [c]->catalog;
        size_t index;
        json_t *prompt;
        json_array_foreach (catalog->prompts, index, prompt)
            if (strcmp (json_string_value (json_object_get (prompt, "name")), name) == 0) {
                *def = json_array_get (catalog->prompt_defs, index);
                return prompt;
            }
    }
    return NULL;
}

bool
sb_connectors_prompt_hidden (sb_connectors_t *self, const char *name)
{
    json_t *def = NULL;
    return s_find_prompt (self, name, &def) && json_is_true (json_object_get (def, "hidden"));
}

int
sb_connectors_prompt_get (sb_connectors_t *self, const char *name,
                          const json_t *args, json_t **result, char **error)
{
    json_t *def = NULL;
    json_t *prompt = s_find_prompt (self, name, &def);
    *result = NULL;
    if (!prompt) {
        *error = sb_strfmt ("There is no prompt named \"%.64s\".", name ? name : "");
        return -1;
    }
    if (args && !json_is_object (args)) {
        *error = sb_strfmt ("The arguments of prompt \"%s\" must be an object.", name);
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach (sb_unconst (args), key, value) {
        if (!s_names_hold (json_object_get (def, "names"), key, strlen (key))) {
            *error = sb_strfmt ("Prompt \"%s\" has no argument \"%.64s\".", name, key);
            return -1;
        }
        if (!json_is_string (value)) {
            *error = sb_strfmt ("Argument \"%s\" of prompt \"%s\" must be a string.", key, name);
            return -1;
        }
    }
    size_t index;
    json_t *arg;
    json_array_foreach (json_object_get (prompt, "arguments"), index, arg) {
        const char *arg_name = json_string_value (json_object_get (arg, "name"));
        if (json_is_true (json_object_get (arg, "required")) && !json_object_get (args, arg_name)) {
            *error = sb_strfmt ("Prompt \"%s\" needs the argument \"%s\".", name, arg_name);
            return -1;
        }
    }
    json_t *messages = s_render_json (json_object_get (def, "messages"), args);
    if (!messages) {
        *error = sb_strfmt ("Prompt \"%s\" renders larger than %u bytes.", name,
                            (unsigned) SB_MAX_RESOURCE_BYTES);
        return -1;
    }
    *result = json_pack ("{s:o}", "messages", messages);
    json_t *description = json_object_get (prompt, "description");
    if (*result && description)
        json_object_set (*result, "description", description);
    return *result ? 0 : -1;
}

json_t *
sb_connectors_complete (sb_connectors_t *self, const char *ref_type,
                        const char *ref_name, const char *arg_name, const char *value)
{
    const json_t *values = NULL;
    json_t *def = NULL;
    if (ref_type && ref_name && arg_name && strcmp (ref_type, "ref/prompt") == 0
    &&  s_find_prompt (self, ref_name, &def))
        values = json_object_get (json_object_get (def, "completions"), arg_name);
    for (size_t c = 0; !values && ref_type && ref_name && arg_name
                   && strcmp (ref_type, "ref/resource") == 0 && c < self->count; c++) {
        sb_catalog_t *catalog = self->connectors [c]->catalog;
        size_t index;
        json_t *tmpl;
        json_array_foreach (catalog->templates, index, tmpl)
            if (strcmp (json_string_value (json_object_get (tmpl, "uriTemplate")), ref_name) == 0)
                values = json_object_get (json_object_get (json_array_get (
                             catalog->template_defs, index), "completions"), arg_name);
    }
    json_t *out = json_array ();
    size_t total = 0, prefix = value ? strlen (value) : 0, index;
    json_t *item;
    json_array_foreach (values, index, item) {
        if (json_string_length (item) < prefix
        ||  strncasecmp (json_string_value (item), value ? value : "", prefix))
            continue;
        if (total++ < SB_MAX_COMPLETIONS)
            json_array_append (out, item);
    }
    return json_pack ("{s:o, s:I, s:b}", "values", out, "total", (json_int_t) total,
                      "hasMore", total > SB_MAX_COMPLETIONS);
}

//  --------------------------------------------------------------------------
//  What a reload changes (sb_connectors_diff, sb_connectors_resource_changed)

//  True when list `list_offset` of every catalog is the same in a and b.
static bool
s_same_list (sb_connectors_t *a, sb_connectors_t *b, size_t list_offset)
{
    json_t *before = s_all (a, list_offset), *after = s_all (b, list_offset);
    bool same = before && after && json_equal (before, after);
    json_decref (before);
    json_decref (after);
    return same;
}

unsigned
sb_connectors_diff (sb_connectors_t *before, sb_connectors_t *after)
{
    unsigned changed = 0;
    //  tools/list publishes each tool's descriptor, in load order.
    bool same = before->tool_count == after->tool_count;
    for (size_t i = 0; same && i < before->tool_count; i++)
        same = json_equal (before->tools [i]->descriptor, after->tools [i]->descriptor);
    if (!same)
        changed |= SB_LIST_TOOLS;
    if (!s_same_list (before, after, offsetof (sb_catalog_t, prompts)))
        changed |= SB_LIST_PROMPTS;
    if (!s_same_list (before, after, offsetof (sb_catalog_t, resources))
    ||  !s_same_list (before, after, offsetof (sb_catalog_t, templates)))
        changed |= SB_LIST_RESOURCES;
    return changed;
}

bool
sb_connectors_resource_changed (sb_connectors_t *before, sb_connectors_t *after, const char *uri)
{
    json_t *old = NULL, *now = NULL;
    char *error = NULL;
    if (sb_connectors_resource_read (before, uri, &old, &error))
        old = NULL;
    free (error);
    error = NULL;
    if (sb_connectors_resource_read (after, uri, &now, &error))
        now = NULL;
    free (error);
    bool changed = (old == NULL) != (now == NULL) || (old && !json_equal (old, now));
    json_decref (old);
    json_decref (now);
    return changed;
}

//  --------------------------------------------------------------------------
//  Tool accessors

const json_t *
sb_tool_output_schema (const sb_tool_t *self)
{
    return self->output_schema;
}

const json_t *
sb_tool_meta (const sb_tool_t *self)
{
    return self->meta;
}

const char *
sb_tool_builtin (const sb_tool_t *self)
{
    return self->builtin;
}

unsigned
sb_tool_gateway_builtin (const sb_tool_t *self)
{
    return !self->builtin? 0:
           strcmp (self->builtin, SB_BUILTIN_TOGGLE_TOOLS) == 0? SB_LIST_TOOLS:
           strcmp (self->builtin, SB_BUILTIN_TOGGLE_PROMPTS) == 0? SB_LIST_PROMPTS: 0;
}
