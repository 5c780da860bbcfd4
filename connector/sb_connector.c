/*  connector/sb_connector.c — loads and validates connector definitions
    (the .json files in connectors/, format in connectors/README.md), answers the
    gateway's questions about tools, and checks call arguments against a
    tool's input schema (the schema rules themselves are in sb_schema.c).

    Loading is strict: an unknown key, a missing field, a placeholder that
    names no schema property or a duplicate tool name stops the load with
    an error naming the file and the problem, so a typo in a definition is
    found at start-up rather than in front of a user. */
#include "sb_connector_int.h"
#include "sb_attr.h"
#include "sb_schema.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  --------------------------------------------------------------------------
//  Small helpers

static bool
s_valid_name (const char *name, bool allow_underscore)
{
    size_t len = strlen (name);
    if (len == 0 || len > SB_MAX_CONNECTOR_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!(isalnum ((unsigned char) c) || c == '-' || (allow_underscore && c == '_')))
            return false;
    }
    return true;
}

//  Checks that `obj` has only keys from the NULL-terminated `allowed`.
int
sb_def_check_keys (const json_t *obj, const char *const allowed [], const char *where, char **why)
{
    const char *key;
    json_t *value;
    json_object_foreach (sb_unconst (obj), key, value) {
        bool known = strcmp (key, "$comment") == 0;
        for (size_t i = 0; !known && allowed [i]; i++)
            known = strcmp (key, allowed [i]) == 0;
        if (!known) {
            *why = sb_strfmt ("%s: unknown key \"%s\"", where, key);
            return -1;
        }
    }
    return 0;
}

//  Reads an optional/required string member. Returns 0 (and *out borrowed,
//  NULL when optional and absent) or -1 with *why.
int
sb_def_get_string (const json_t *obj, const char *key, bool required, const char *where,
              const char **out, char **why)
{
    json_t *value = json_object_get (obj, key);
    *out = NULL;
    if (!value) {
        if (required) {
            *why = sb_strfmt ("%s: \"%s\" is required", where, key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string (value) || json_string_length (value) == 0) {
        *why = sb_strfmt ("%s: \"%s\" must be a non-empty string", where, key);
        return -1;
    }
    *out = json_string_value (value);
    return 0;
}

int
sb_def_get_bool (const json_t *obj, const char *key, bool def, const char *where,
            bool *out, char **why)
{
    json_t *value = json_object_get (obj, key);
    *out = def;
    if (!value)
        return 0;
    if (!json_is_boolean (value)) {
        *why = sb_strfmt ("%s: \"%s\" must be true or false", where, key);
        return -1;
    }
    *out = json_is_true (value);
    return 0;
}

static int
s_get_int (const json_t *obj, const char *key, long def, long min, long max,
           const char *where, long *out, char **why)
{
    json_t *value = json_object_get (obj, key);
    *out = def;
    if (!value)
        return 0;
    if (!json_is_integer (value) || json_integer_value (value) < min
    ||  json_integer_value (value) > max) {
        *why = sb_strfmt ("%s: \"%s\" must be an integer from %ld to %ld", where, key, min, max);
        return -1;
    }
    *out = (long) json_integer_value (value);
    return 0;
}

//  --------------------------------------------------------------------------
//  Tool parsing

static void
s_tool_destroy (sb_tool_t **self_p)
{
    sb_tool_t *self = *self_p;
    if (!self)
        return;
    free (self->name);
    free (self->builtin);
    free (self->title);
    sb_schema_destroy (&self->checker);
    sb_schema_destroy (&self->output_checker);
    json_decref (self->descriptor);
    free (self->path);
    json_decref (self->query);
    json_decref (self->body);
    free (self->pointer);
    free (self->cursor_pointer);
    free (self->total_pointer);
    free (self->title_field);
    json_decref (self->subtitle_fields);
    json_decref (self->fields);
    free (self->noun);
    free (self->noun_plural);
    free (self->summary);
    free (self);
    *self_p = NULL;
}

//  Template name callback: the placeholder must be a schema property.
static int
s_is_property (const char *name, void *arg)
{
    const json_t *props = arg;
    return json_object_get (props, name) ? 0 : -1;
}

//  Path placeholders must be required arguments: an absent one would change
//  which resource the request addresses.
typedef struct {
    const json_t *props;        /* schema properties */
    const json_t *required;     /* schema required list */
} s_path_check_t;

static int
s_is_required_property (const char *name, void *arg)
{
    s_path_check_t *check = arg;
    if (!json_object_get (check->props, name))
        return -1;
    size_t index;
    json_t *item;
    json_array_foreach (check->required, index, item)
        if (json_is_string (item) && strcmp (json_string_value (item), name) == 0)
            return 0;
    return -1;
}

//  Checks every string in a body template.
static int
s_check_body (const json_t *tmpl, const json_t *props, const char *where, char **why)
{
    if (json_is_string (tmpl)) {
        char *error = NULL;
        if (sb_template_check (json_string_value (tmpl), s_is_property, sb_unconst (props), &error)) {
            *why = sb_strfmt ("%s: request.body: %s", where, error);
            free (error);
            return -1;
        }
        return 0;
    }
    const char *key;
    json_t *child;
    size_t index;
    if (json_is_object (tmpl))
        json_object_foreach (sb_unconst (tmpl), key, child)
            if (s_check_body (child, props, where, why))
                return -1;
    if (json_is_array (tmpl))
        json_array_foreach (tmpl, index, child)
            if (s_check_body (child, props, where, why))
                return -1;
    return 0;
}

//  The HTTP request template and result mapping of a tool.
static int
s_tool_parse_http (sb_tool_t *self, const json_t *def, const json_t *request,
                   const json_t *schema, const json_t *props, const char *where, char **why)
{
    static const char *const request_keys [] = { "method", "path", "query", "body", NULL };
    static const char *const methods [] = { "GET", "POST", "PUT", "PATCH", "DELETE", NULL };
    const char *method, *path;

    if (sb_def_check_keys (request, request_keys, where, why)
    ||  sb_def_get_string (request, "method", true, where, &method, why)
    ||  sb_def_get_string (request, "path", true, where, &path, why))
        return -1;
    bool method_ok = false;
    for (size_t i = 0; methods [i]; i++)
        method_ok |= strcmp (method, methods [i]) == 0;
    if (!method_ok) {
        *why = sb_strfmt ("%s: request.method must be GET, POST, PUT, PATCH or DELETE", where);
        return -1;
    }
    snprintf (self->method, sizeof self->method, "%s", method);
    if (path [0] != '/' || strchr (path, '?') || strchr (path, '#')) {
        *why = sb_strfmt ("%s: request.path must start with \"/\" and hold no query "
                          "(use request.query)", where);
        return -1;
    }
    char *error = NULL;
    s_path_check_t path_check = { props, json_object_get (schema, "required") };
    if (sb_template_check (path, s_is_required_property, &path_check, &error)) {
        *why = sb_strfmt ("%s: request.path: %s (path placeholders must be required "
                          "properties)", where, error);
        free (error);
        return -1;
    }
    self->path = strdup (path);

    json_t *query = json_object_get (request, "query");
    if (query) {
        if (!json_is_object (query)) {
            *why = sb_strfmt ("%s: request.query must be an object of string templates", where);
            return -1;
        }
        const char *key;
        json_t *tmpl;
        json_object_foreach (query, key, tmpl) {
            if (!json_is_string (tmpl)) {
                *why = sb_strfmt ("%s: request.query.%s must be a string template", where, key);
                return -1;
            }
            if (sb_template_check (json_string_value (tmpl), s_is_property, sb_unconst (props), &error)) {
                *why = sb_strfmt ("%s: request.query.%s: %s", where, key, error);
                free (error);
                return -1;
            }
        }
        self->query = json_incref (query);
    }
    json_t *body = json_object_get (request, "body");
    if (body) {
        if (strcmp (method, "GET") == 0 || strcmp (method, "DELETE") == 0) {
            *why = sb_strfmt ("%s: request.body is only allowed with POST, PUT or PATCH", where);
            return -1;
        }
        if (s_check_body (body, props, where, why))
            return -1;
        self->body = json_deep_copy (body);
    }

    //  Result mapping (sb_mapping.c).
    json_t *result = json_object_get (def, "result");
    if (!json_is_object (result)) {
        *why = sb_strfmt ("%s: \"result\" must be an object", where);
        return -1;
    }
    return sb_mapping_parse (self, result, where, why);
}

//  Reads the tool's "taskSupport": "forbidden" (default), "optional" or
//  "required". Returns 0, or -1 with *why naming the tool and the value.
static int
s_get_task_support (const json_t *def, const char *where, sb_task_support_t *out, char **why)
{
    static const char *const names [] = { "forbidden", "optional", "required" };
    json_t *value = json_object_get (def, "taskSupport");
    *out = SB_TASK_FORBIDDEN;
    if (!value)
        return 0;
    const char *text = json_string_value (value);
    for (size_t i = 0; text && i < sizeof names / sizeof names [0]; i++)
        if (strcmp (text, names [i]) == 0) {
            *out = (sb_task_support_t) i;
            return 0;
        }
    char *shown = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
    *why = sb_strfmt ("%s: \"taskSupport\" must be \"forbidden\", \"optional\" or "
                      "\"required\", not %.64s", where, shown ? shown : "that value");
    free (shown);
    return -1;
}

static sb_tool_t *
s_tool_parse (const json_t *def, sb_connector_t *connector, const char *file, char **why)
{
    static const char *const tool_keys [] = {
        "name", "title", "description", "annotations", "inputSchema", "outputSchema",
        "_meta", "securitySchemes", "confirm", "taskSupport", "hidden", "request", "result", NULL
    };
    static const char *const annotation_keys [] = {
        "title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint", NULL
    };

    char where [SB_MAX_CONNECTOR_NAME + 256];
    const char *name, *title, *description, *text;
    sb_tool_t *self = NULL;

    if (!json_is_object (def)) {
        *why = sb_strfmt ("%s: every entry of \"tools\" must be an object", file);
        return NULL;
    }
    snprintf (where, sizeof where, "%s: a tool", file);
    if (sb_def_get_string (def, "name", true, where, &name, why))
        return NULL;
    if (!s_valid_name (name, true)) {
        *why = sb_strfmt ("%s: tool name \"%.64s\" must be 1-64 letters, digits, '_' or '-'",
                          file, name);
        return NULL;
    }
    snprintf (where, sizeof where, "%s: tool \"%s\"", file, name);
    if (sb_def_check_keys (def, tool_keys, where, why)
    ||  sb_def_get_string (def, "title", false, where, &title, why)
    ||  sb_def_get_string (def, "description", true, where, &description, why))
        return NULL;

    json_t *schema = json_object_get (def, "inputSchema");
    sb_schema_t *checker = sb_schema_new (schema, where, why);
    if (!checker)
        return NULL;
    json_t *props = json_object_get (schema, "properties");
    json_t *empty = json_object ();
    if (!props)
        props = empty;

    self = calloc (1, sizeof *self);
    if (!self) {
        sb_schema_destroy (&checker);
        goto fail;
    }
    self->checker = checker;
    self->name = strdup (name);
    self->title = title ? strdup (title) : NULL;
    self->connector = connector;
    if (sb_def_get_bool (def, "confirm", false, where, &self->confirm, why)
    ||  sb_def_get_bool (def, "hidden", false, where, &self->hidden, why)
    ||  s_get_task_support (def, where, &self->task_support, why))
        goto fail;

    //  Annotations: the MCP hints; read-only defaults to false (safe side).
    json_t *annotations = json_object_get (def, "annotations");
    bool open_world;
    if (annotations && !json_is_object (annotations)) {
        *why = sb_strfmt ("%s: \"annotations\" must be an object", where);
        goto fail;
    }
    if (annotations
    &&  (sb_def_check_keys (annotations, annotation_keys, where, why)
    ||   sb_def_get_bool (annotations, "readOnlyHint", false, where, &self->read_only, why)
    ||   sb_def_get_bool (annotations, "destructiveHint", false, where, &self->destructive, why)
    ||   sb_def_get_bool (annotations, "idempotentHint", false, where, &self->idempotent, why)
    ||   sb_def_get_bool (annotations, "openWorldHint", true, where, &open_world, why)))
        goto fail;

    json_t *request = json_object_get (def, "request");
    if (!json_is_object (request)) {
        *why = sb_strfmt ("%s: \"request\" must be an object", where);
        goto fail;
    }
    if (json_object_get (request, "builtin")) {
        //  A fixture the worker runs itself: nothing is sent upstream.
        static const char *const builtin_keys [] = { "builtin", NULL };
        if (sb_def_check_keys (request, builtin_keys, where, why)
        ||  sb_def_get_string (request, "builtin", true, where, &text, why))
            goto fail;
        if (!s_valid_name (text, true) || json_object_get (def, "result")) {
            *why = sb_strfmt ("%s: request.builtin must name a fixture (letters, digits, '_', "
                              "'-') and a builtin tool has no \"result\"", where);
            goto fail;
        }
        if (self->confirm) {
            *why = sb_strfmt ("%s: \"confirm\" is for tools that call an upstream, not for a "
                              "builtin fixture", where);
            goto fail;
        }
        self->builtin = strdup (text);
    }
    else
    if (s_tool_parse_http (self, def, request, schema, props, where, why))
        goto fail;

    //  What the tool returns, and what it tells a client (ChatGPT) about it.
    json_t *output = json_object_get (def, "outputSchema");
    json_t *meta = json_object_get (def, "_meta");
    json_t *schemes = json_object_get (def, "securitySchemes");
    const char *output_type = json_string_value (json_object_get (output, "type"));
    if (output && (!output_type || strcmp (output_type, "object"))) {
        *why = sb_strfmt ("%s: \"outputSchema\" must be a JSON Schema with type \"object\"", where);
        goto fail;
    }
    if (output && !(self->output_checker = sb_schema_new (output, where, why)))
        goto fail;
    if (meta && sb_catalog_check_tool_meta (meta, where, why))
        goto fail;
    if (schemes && !json_is_array (schemes)) {
        *why = sb_strfmt ("%s: \"securitySchemes\" must be an array", where);
        goto fail;
    }

    //  The MCP Tool object, built once.
    self->descriptor = json_pack ("{s:s, s:s, s:O}",
                                  "name", name, "description", description,
                                  "inputSchema", schema);
    if (!self->descriptor)
        goto fail;
    if (title)
        json_object_set_new (self->descriptor, "title", json_string (title));
    json_t *hints = annotations ? json_deep_copy (annotations) : json_object ();
    json_object_set_new (hints, "readOnlyHint", json_boolean (self->read_only));
    if (title && !json_object_get (hints, "title"))
        json_object_set_new (hints, "title", json_string (title));
    json_object_set_new (self->descriptor, "annotations", hints);
    if (output)
        json_object_set_new (self->descriptor, "outputSchema", json_deep_copy (output));
    if (schemes)
        json_object_set_new (self->descriptor, "securitySchemes", json_deep_copy (schemes));
    if (meta)
        json_object_set_new (self->descriptor, "_meta", json_deep_copy (meta));
    self->schema = json_object_get (self->descriptor, "inputSchema");
    self->output_schema = json_object_get (self->descriptor, "outputSchema");
    self->meta = json_object_get (self->descriptor, "_meta");
    json_decref (empty);
    return self;

fail:
    json_decref (empty);
    if (!*why)
        *why = sb_strfmt ("%s: out of memory", where);
    s_tool_destroy (&self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Connector parsing

static void
s_connector_destroy (sb_connector_t **self_p)
{
    sb_connector_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->tool_count; i++)
        s_tool_destroy (&self->tools [i]);
    free (self->tools);
    sb_catalog_destroy (&self->catalog);
    free (self->file);
    free (self->name);
    free (self->title);
    free (self->display_name);
    free (self->base_url);
    free (self->token_env);
    free (self->auth_header);
    free (self->auth_prefix);
    free (self);
    *self_p = NULL;
}

static int
s_set_base_url (sb_connector_t *self, const char *url)
{
    if (strncmp (url, "http://", 7) && strncmp (url, "https://", 8))
        return -1;
    if (strlen (url) > SB_MAX_URL_LEN / 2 || strpbrk (url, "?# \t\r\n"))
        return -1;
    char *copy = strdup (url);
    if (!copy)
        return -1;
    size_t len = strlen (copy);
    while (len > 0 && copy [len - 1] == '/')
        copy [--len] = 0;
    free (self->base_url);
    self->base_url = copy;
    return 0;
}

static sb_connector_t *
s_connector_parse (const json_t *root, const char *file, char **why)
{
    static const char *const keys [] = {
        "name", "title", "description", "display_name", "base_url", "auth", "limits",
        "tools", "resources", "resource_templates", "prompts", NULL
    };
    static const char *const auth_keys [] = { "type", "token_env", "header", "prefix", NULL };
    static const char *const limit_keys [] = { "timeout_ms", "max_response_bytes", NULL };
    const char *name, *title, *display, *base_url, *description, *text;

    if (!json_is_object (root)) {
        *why = sb_strfmt ("%s: the file must hold one JSON object", file);
        return NULL;
    }
    if (sb_def_check_keys (root, keys, file, why)
    ||  sb_def_get_string (root, "name", true, file, &name, why)
    ||  sb_def_get_string (root, "title", true, file, &title, why)
    ||  sb_def_get_string (root, "description", false, file, &description, why)
    ||  sb_def_get_string (root, "display_name", false, file, &display, why)
    ||  sb_def_get_string (root, "base_url", false, file, &base_url, why))
        return NULL;
    if (!s_valid_name (name, false)) {
        *why = sb_strfmt ("%s: connector name must be 1-64 letters, digits or '-'", file);
        return NULL;
    }
    sb_connector_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->file = strdup (file);
    self->name = strdup (name);
    self->title = strdup (title);
    self->display_name = strdup (display ? display : title);
    if (base_url && s_set_base_url (self, base_url)) {
        *why = sb_strfmt ("%s: base_url must be an http:// or https:// URL without query", file);
        goto fail;
    }

    json_t *auth = json_object_get (root, "auth");
    if (auth) {
        if (!json_is_object (auth)) {
            *why = sb_strfmt ("%s: \"auth\" must be an object", file);
            goto fail;
        }
        if (sb_def_check_keys (auth, auth_keys, file, why)
        ||  sb_def_get_string (auth, "type", true, file, &text, why))
            goto fail;
        if (strcmp (text, "none") == 0)
            self->auth_type = SB_AUTH_NONE;
        else
        if (strcmp (text, "bearer") == 0)
            self->auth_type = SB_AUTH_BEARER;
        else
        if (strcmp (text, "api_key_header") == 0)
            self->auth_type = SB_AUTH_API_KEY_HEADER;
        else {
            *why = sb_strfmt ("%s: auth.type must be none, bearer or api_key_header", file);
            goto fail;
        }
        if (self->auth_type != SB_AUTH_NONE) {
            if (sb_def_get_string (auth, "token_env", true, file, &text, why))
                goto fail;
            self->token_env = strdup (text);
        }
        if (sb_def_get_string (auth, "header", self->auth_type == SB_AUTH_API_KEY_HEADER,
                          file, &text, why))
            goto fail;
        self->auth_header = strdup (text ? text : "Authorization");
        if (sb_def_get_string (auth, "prefix", false, file, &text, why))
            goto fail;
        self->auth_prefix = strdup (text ? text : "");
    }

    long max_response = 0;
    json_t *limits = json_object_get (root, "limits");
    self->timeout_ms = 10000;
    max_response = 4L << 20;
    if (limits) {
        if (!json_is_object (limits)) {
            *why = sb_strfmt ("%s: \"limits\" must be an object", file);
            goto fail;
        }
        if (sb_def_check_keys (limits, limit_keys, file, why)
        ||  s_get_int (limits, "timeout_ms", 10000, 100, 120000, file, &self->timeout_ms, why)
        ||  s_get_int (limits, "max_response_bytes", 4L << 20, 1024, 64L << 20, file,
                       &max_response, why))
            goto fail;
    }
    self->max_response = (size_t) max_response;

    json_t *tools = json_object_get (root, "tools");
    //  Only a connector whose tools are all builtin fixtures needs no upstream.
    bool all_builtin = json_array_size (tools) > 0;
    size_t index;
    json_t *def;
    json_array_foreach (tools, index, def)
        all_builtin &= json_object_get (json_object_get (def, "request"), "builtin") != NULL;
    if (!self->base_url && !all_builtin) {
        *why = sb_strfmt ("%s: \"base_url\" is required", file);
        goto fail;
    }
    if (!json_is_array (tools) || json_array_size (tools) == 0) {
        *why = sb_strfmt ("%s: \"tools\" must be a non-empty array", file);
        goto fail;
    }
    if (json_array_size (tools) > SB_MAX_TOOLS) {
        *why = sb_strfmt ("%s: more than %d tools", file, SB_MAX_TOOLS);
        goto fail;
    }
    self->tools = calloc (json_array_size (tools), sizeof (sb_tool_t *));
    if (!self->tools)
        goto fail;
    json_array_foreach (tools, index, def) {
        sb_tool_t *tool = s_tool_parse (def, self, file, why);
        if (!tool)
            goto fail;
        self->tools [self->tool_count++] = tool;
    }
    self->catalog = sb_catalog_parse (root, file, why);
    if (!self->catalog)
        goto fail;
    return self;
fail:
    if (!*why)
        *why = sb_strfmt ("%s: out of memory", file);
    s_connector_destroy (&self);
    return NULL;
}

static sb_connector_t *
s_connector_load (const char *path, char **why)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        *why = sb_strfmt ("%s: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    sb_connector_t *connector = NULL;
    char *text = malloc (SB_MAX_CONNECTOR_FILE + 1);
    size_t len = text ? fread (text, 1, SB_MAX_CONNECTOR_FILE + 1, file) : 0;
    fclose (file);
    if (!text) {
        *why = sb_strfmt ("%s: out of memory", path);
        return NULL;
    }
    if (len > SB_MAX_CONNECTOR_FILE) {
        *why = sb_strfmt ("%s: larger than %u bytes", path, (unsigned) SB_MAX_CONNECTOR_FILE);
        goto out;
    }
    json_error_t jerr;
    json_t *root = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        *why = sb_strfmt ("%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    connector = s_connector_parse (root, path, why);
    json_decref (root);
out:
    free (text);
    return connector;
}

//  --------------------------------------------------------------------------
//  The set

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

sb_connectors_t *
sb_connectors_load (const char *dir, char **error)
{
    *error = NULL;
    sb_connectors_t *self = calloc (1, sizeof *self);
    if (self)
        atomic_init (&self->refs, 1);
    char **names = calloc (SB_MAX_CONNECTORS + 1, sizeof (char *));
    size_t name_count = 0;
    DIR *handle = NULL;
    if (!self || !names) {
        *error = sb_strfmt ("%s: out of memory", dir);
        goto fail;
    }
    handle = opendir (dir);
    if (!handle) {
        *error = sb_strfmt ("%s: cannot open connectors directory: %s", dir, strerror (errno));
        goto fail;
    }
    struct dirent *entry;
    //  cppcheck-suppress readdirCalled ; readdir_r is deprecated: readdir is safe on a DIR
    //  no other thread reads
    while ((entry = readdir (handle))) {
        size_t len = strlen (entry->d_name);
        if (len < 6 || entry->d_name [0] == '.' || strcmp (entry->d_name + len - 5, ".json"))
            continue;
        if (name_count == SB_MAX_CONNECTORS) {
            *error = sb_strfmt ("%s: more than %d connector files", dir, SB_MAX_CONNECTORS);
            goto fail;
        }
        names [name_count++] = strdup (entry->d_name);
    }
    closedir (handle);
    handle = NULL;
    if (name_count == 0) {
        *error = sb_strfmt ("%s: no connector definitions (*.json)", dir);
        goto fail;
    }
    qsort (names, name_count, sizeof (char *), s_compare_names);
    self->connectors = calloc (name_count, sizeof (sb_connector_t *));
    self->tools = calloc (SB_MAX_TOOLS, sizeof (sb_tool_t *));
    if (!self->connectors || !self->tools)
        goto fail;

    for (size_t i = 0; i < name_count; i++) {
        char *path = sb_strfmt ("%s/%s", dir, names [i]);
        sb_connector_t *connector = path ? s_connector_load (path, error) : NULL;
        if (!connector) {
            free (path);
            goto fail;
        }
        self->connectors [self->count++] = connector;
        if (sb_connectors_find (self, connector->name) != connector) {
            *error = sb_strfmt ("%s: connector name \"%s\" is already used by another file",
                                path, connector->name);
            free (path);
            goto fail;
        }
        for (size_t t = 0; t < connector->tool_count; t++) {
            sb_tool_t *tool = connector->tools [t];
            const sb_tool_t *twin = sb_connectors_find_tool (self, tool->name);
            if (twin) {
                *error = sb_strfmt ("%s: tool name \"%s\" is already used (in %s)",
                                    path, tool->name, twin->connector->file);
                free (path);
                goto fail;
            }
            if (self->tool_count == SB_MAX_TOOLS) {
                *error = sb_strfmt ("%s: more than %d tools in all", path, SB_MAX_TOOLS);
                free (path);
                goto fail;
            }
            self->tools [self->tool_count++] = tool;
        }
        free (path);
    }
    if (sb_catalog_check_set (self, error))
        goto fail;
    for (size_t i = 0; i < name_count; i++)
        free (names [i]);
    free (names);
    return self;

fail:
    if (handle)
        closedir (handle);
    for (size_t i = 0; names && i < name_count; i++)
        free (names [i]);
    free (names);
    sb_connectors_destroy (&self);
    if (!*error)
        *error = sb_strfmt ("%s: out of memory", dir);
    return NULL;
}

void
sb_connectors_destroy (sb_connectors_t **self_p)
{
    sb_connectors_t *self = self_p? *self_p: NULL;
    if (!self)
        return;
    *self_p = NULL;
    //  Freed with the last reference (a count of 0 means one: never taken).
    if (atomic_fetch_sub (&self->refs, 1) > 1)
        return;
    for (size_t i = 0; i < self->count; i++)
        s_connector_destroy (&self->connectors [i]);
    free (self->connectors);
    free (self->tools);
    free (self);
}

sb_connectors_t *
sb_connectors_ref (sb_connectors_t *self)
{
    if (self)
        atomic_fetch_add (&self->refs, 1);
    return self;
}

int
sb_connectors_refs (sb_connectors_t *self)
{
    return self? atomic_load (&self->refs): 0;
}

//  The connector called `name`, or NULL: sb_connectors_find, writable.
static sb_connector_t *
s_connectors_find (sb_connectors_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->connectors [i]->name, name) == 0)
            return self->connectors [i];
    return NULL;
}

int
sb_connectors_set_base_url (sb_connectors_t *self, const char *name, const char *url)
{
    sb_connector_t *connector = s_connectors_find (self, name);
    if (!connector)
        return -1;
    return s_set_base_url (connector, url);
}

int
sb_connectors_set_base_urls (sb_connectors_t *self, const char *spec)
{
    if (!spec || !*spec)
        return 0;
    char *copy = strdup (spec);
    if (!copy)
        return -1;
    int rc = 0;
    char *item = copy;
    while (item && rc == 0) {
        char *next = strchr (item, ',');
        if (next)
            *next++ = 0;
        while (*item == ' ')
            item++;
        char *equals = strchr (item, '=');
        if (*item && (!equals || equals == item))
            rc = -1;
        else
        if (*item) {
            *equals = 0;
            rc = sb_connectors_set_base_url (self, item, equals + 1);
        }
        item = next;
    }
    free (copy);
    return rc;
}

size_t
sb_connectors_tool_count (sb_connectors_t *self)
{
    return self->tool_count;
}

const sb_tool_t *
sb_connectors_tool_at (sb_connectors_t *self, size_t index)
{
    return index < self->tool_count ? self->tools [index] : NULL;
}

const sb_tool_t *
sb_connectors_find_tool (sb_connectors_t *self, const char *name)
{
    for (size_t i = 0; i < self->tool_count; i++)
        if (strcmp (self->tools [i]->name, name) == 0)
            return self->tools [i];
    return NULL;
}

const sb_connector_t *
sb_connectors_find (sb_connectors_t *self, const char *name)
{
    return s_connectors_find (self, name);
}

const char *
sb_connector_name (const sb_connector_t *self)
{
    return self->name;
}

const char *
sb_connector_display_name (const sb_connector_t *self)
{
    return self->display_name ? self->display_name : self->name;
}

const char *
sb_connector_base_url (const sb_connector_t *self)
{
    return self->base_url;
}

long
sb_connector_timeout_ms (const sb_connector_t *self)
{
    return self->timeout_ms;
}

size_t
sb_connector_max_response (const sb_connector_t *self)
{
    return self->max_response;
}

const char *
sb_connector_auth_header_name (const sb_connector_t *self)
{
    return self->auth_type == SB_AUTH_NONE ? NULL : self->auth_header;
}

char *
sb_connector_auth_header (const sb_connector_t *self)
{
    if (self->auth_type == SB_AUTH_NONE)
        return NULL;
    const char *secret = getenv (self->token_env);
    if (!secret || !*secret || strpbrk (secret, "\r\n"))
        return NULL;
    if (self->auth_type == SB_AUTH_BEARER)
        return sb_strfmt ("Bearer %s", secret);
    return sb_strfmt ("%s%s", self->auth_prefix, secret);
}

const char *
sb_tool_name (const sb_tool_t *self)
{
    return self->name;
}

const char *
sb_tool_title (const sb_tool_t *self)
{
    return self->title ? self->title : self->name;
}

const sb_connector_t *
sb_tool_connector (const sb_tool_t *self)
{
    return self->connector;
}

bool
sb_tool_retry_safe (const sb_tool_t *self)
{
    return strcmp (self->method, "GET") == 0 || self->read_only || self->idempotent;
}

json_t *
sb_tool_descriptor (const sb_tool_t *self)
{
    return json_deep_copy (self->descriptor);
}

bool
sb_tool_hidden (const sb_tool_t *self)
{
    return self->hidden;
}

sb_task_support_t
sb_tool_task_support (const sb_tool_t *self)
{
    return self->task_support;
}

const json_t *
sb_tool_input_schema (const sb_tool_t *self)
{
    return self->schema;
}

//  --------------------------------------------------------------------------
//  Argument checks (the schema rules live in sb_schema.c)

int
sb_tool_check_args (const sb_tool_t *self, const json_t *args, char **error)
{
    //  An omitted "arguments" member is an empty object.
    json_t *empty = args ? NULL : json_object ();
    int rc = sb_schema_check_compiled (self->checker, args ? args : empty, error);
    json_decref (empty);
    return rc;
}

//  --------------------------------------------------------------------------
//  Call-time policy (see sb_connector_int.h)

bool
sb_tool_needs_confirmation (const sb_tool_t *self)
{
    return !self->builtin && (self->destructive || self->confirm);
}

//  Appends at most `max` bytes of `str` to `text` (capacity `cap`, *used
//  bytes used), never cutting a UTF-8 character. Returns -1 when full.
static int
s_append_cut (char *text, size_t cap, size_t *used, const char *str, size_t max)
{
    size_t len = strlen (str);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char) str [len] & 0xC0) == 0x80)
            len--;
    }
    if (len >= cap - *used)
        return -1;
    memcpy (text + *used, str, len);
    *used += len;
    text [*used] = 0;
    return 0;
}

char *
sb_tool_confirm_message (const sb_tool_t *self, const json_t *args)
{
    //  Run "Create task" in the CRM with title "Call back", priority "high"?
    char text [SB_MAX_CONFIRM_MESSAGE];
    size_t used = 0;
    const char *display = self->connector->display_name ? self->connector->display_name
                        : self->connector->name;
    bool full = s_append_cut (text, sizeof text, &used, "Run \"", 8)
             || s_append_cut (text, sizeof text, &used, self->title ? self->title : self->name, 200)
             || s_append_cut (text, sizeof text, &used, "\" in ", 8)
             || s_append_cut (text, sizeof text, &used, display, 200);
    const char *key;
    json_t *value;
    bool first = true;
    json_object_foreach (sb_unconst (args), key, value) {
        if (full)
            break;
        bool quote = json_is_string (value);
        char *shown = quote ? NULL : json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
        const char *str = quote ? json_string_value (value) : shown;
        full = s_append_cut (text, sizeof text, &used, first ? " with " : ", ", 8)
            || s_append_cut (text, sizeof text, &used, key, 64)
            || s_append_cut (text, sizeof text, &used, quote ? " \"" : " ", 8)
            || s_append_cut (text, sizeof text, &used, str ? str : "?", 200)
            || (quote && s_append_cut (text, sizeof text, &used, "\"", 8));
        free (shown);
        first = false;
    }
    if (full) {
        //  Cut: end on a whole UTF-8 character and say so
        if (used > sizeof text - 6)
            used = sizeof text - 6;
        while (used > 0 && ((unsigned char) text [used] & 0xC0) == 0x80)
            used--;
        snprintf (text + used, sizeof text - used, " ...?");
    }
    else
    if (s_append_cut (text, sizeof text, &used, "?", 8))
        snprintf (text + sizeof text - 6, 6, " ...?");
    return strdup (text);
}

int
sb_tool_check_output (const sb_tool_t *self, const json_t *structured, char **error)
{
    *error = NULL;
    if (!self->output_checker)
        return 0;
    if (!json_is_object (structured)) {
        *error = strdup ("The result has no structuredContent object.");
        return -1;
    }
    char *why = NULL;
    if (sb_schema_check_compiled (self->output_checker, structured, &why) == 0)
        return 0;
    //  The schema module words its sentences for arguments: say "Field".
    const char *text = why ? why : "The result does not match the outputSchema.";
    if (strncmp (text, "Argument ", 9) == 0)
        *error = sb_strfmt ("Field %s", text + 9);
    else
    if (strncmp (text, "The arguments are ", 18) == 0)
        *error = sb_strfmt ("The result is %s", text + 18);
    else
    if (strncmp (text, "The arguments ", 14) == 0)
        *error = sb_strfmt ("The result %s", text + 14);
    else
        *error = strdup (text);
    free (why);
    return -1;
}
