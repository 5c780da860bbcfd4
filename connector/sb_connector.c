/*  connector/sb_connector.c — loads and validates connector definitions
    (the .json files in connectors/, format in connectors/README.md), answers the
    gateway's questions about tools, and checks call arguments against a
    tool's input schema (the schema rules themselves are in sb_schema.c).

    Loading is strict, in two steps. First every definition is checked
    against the format, connectors/connector.schema.json (JSON Schema
    2020-12, compiled into the library at build time and checked by
    schema/): an unknown key, a missing field, a value of the wrong type or
    out of its range stops the load with "<file>: <JSON pointer>: <rule>
    (<keyword>)". Then fields are only read, and what a schema cannot say
    is checked here and in sb_catalog.c / sb_mapping.c, with errors in the
    same form: a template placeholder that names no inputSchema property (a
    path placeholder no required one), an inputSchema or outputSchema the
    checker cannot enforce, names unique over all files (connectors, tools,
    resource URIs and templates, prompts), URI template syntax, base64,
    files readable; builtins the api worker lacks are its own check
    (workers/sb_fixture.c). A typo in a definition is found at start-up or
    on SIGHUP, never in front of a user. */
#include "sb_connector_int.h"
#include "sb_attr.h"
#include "sb_crypto.h"
#include "sb_schema.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  --------------------------------------------------------------------------
//  The format: connectors/connector.schema.json, compiled in
//  (connector/sb_embed.cmake) and compiled into a checker once per process

static pthread_once_t s_format_once = PTHREAD_ONCE_INIT;
static sb_schema_t *s_format;           /* the checker, kept for the process */
static char *s_format_error;            /* why it could not be made, or NULL */

static void
s_format_compile (void)
{
    json_error_t jerr;
    json_t *schema = json_loadb (sb_connector_schema_text, sb_connector_schema_size,
                                 JSON_REJECT_DUPLICATES, &jerr);
    if (!schema) {
        s_format_error = sb_strfmt ("connector.schema.json:%d:%d: invalid JSON: %s",
                                    jerr.line, jerr.column, jerr.text);
        return;
    }
    s_format = sb_schema_new (schema, "connector.schema.json", &s_format_error);
    json_decref (schema);
}

//  Checks definition `root`, read from `file`, against the format. Returns
//  0, or -1 with *why "<file>: <JSON pointer>: <rule> (<keyword>)", e.g.
//  `a.json: /tools/3/request/method: must be one of ["GET",…] (enum)`.
static int
s_format_check (const json_t *root, const char *file, char **why)
{
    pthread_once (&s_format_once, s_format_compile);
    if (!s_format) {
        *why = sb_strfmt ("%s: cannot be checked: the connector format does not load: %s",
                          file, s_format_error ? s_format_error : "out of memory");
        return -1;
    }
    sb_schema_failure_t failure;
    if (sb_schema_check_at (s_format, root, &failure) == 0)
        return 0;
    *why = sb_strfmt ("%s: %s%s%s%s%s%s", file, failure.pointer,
                      failure.pointer [0] ? ": " : "", failure.rule,
                      failure.keyword ? " (" : "", failure.keyword ? failure.keyword : "",
                      failure.keyword ? ")" : "");
    sb_schema_failure_clear (&failure);
    return -1;
}

//  --------------------------------------------------------------------------
//  Reading members whose shape the format already checked

const char *
sb_def_string (const json_t *obj, const char *key)
{
    return json_string_value (json_object_get (obj, key));
}

bool
sb_def_bool (const json_t *obj, const char *key, bool def)
{
    json_t *value = json_object_get (obj, key);
    return json_is_boolean (value) ? json_is_true (value) : def;
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
            *why = sb_strfmt ("%s/request/body: %s", where, error);
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

//  The HTTP request template and result mapping of a tool. The format
//  checked their shape (method, a path starting with "/" without query, a
//  body only with POST, PUT or PATCH); what is left is what it cannot see:
//  every placeholder must name an inputSchema property, and a path's a
//  required one.
static int
s_tool_parse_http (sb_tool_t *self, const json_t *def, const json_t *request,
                   const json_t *schema, const json_t *props, const char *where, char **why)
{
    const char *path = sb_def_string (request, "path");
    snprintf (self->method, sizeof self->method, "%s", sb_def_string (request, "method"));
    char *error = NULL;
    s_path_check_t path_check = { props, json_object_get (schema, "required") };
    if (sb_template_check (path, s_is_required_property, &path_check, &error)) {
        *why = sb_strfmt ("%s/request/path: %s (path placeholders must be required "
                          "properties)", where, error);
        free (error);
        return -1;
    }
    self->path = strdup (path);

    json_t *query = json_object_get (request, "query");
    const char *key;
    json_t *tmpl;
    json_object_foreach (query, key, tmpl)
        if (sb_template_check (json_string_value (tmpl), s_is_property, sb_unconst (props), &error)) {
            *why = sb_strfmt ("%s/request/query/%s: %s", where, key, error);
            free (error);
            return -1;
        }
    if (query)
        self->query = json_incref (query);
    json_t *body = json_object_get (request, "body");
    if (body && s_check_body (body, props, where, why))
        return -1;
    if (body)
        self->body = json_deep_copy (body);

    //  Result mapping (sb_mapping.c).
    return sb_mapping_parse (self, json_object_get (def, "result"), where, why);
}

//  Tool `index` of `file`, whose shape the format checked; `where` names it
//  by its JSON pointer ("a.json: /tools/3") in the sentences of the checks
//  that remain: its input and output schemas are ones the checker can
//  enforce (sb_schema_new), and its templates name their arguments.
static sb_tool_t *
s_tool_parse (const json_t *def, sb_connector_t *connector, const char *file, size_t index,
              char **why)
{
    static const char *const task_support [] = { "forbidden", "optional", "required" };
    char where [512];
    sb_tool_t *self = NULL;
    snprintf (where, sizeof where, "%.400s: /tools/%zu", file, index);
    const char *name = sb_def_string (def, "name");
    const char *title = sb_def_string (def, "title");
    const char *description = sb_def_string (def, "description");

    //  Its own errors name the place from "inputSchema" down.
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
    self->confirm = sb_def_bool (def, "confirm", false);
    self->hidden = sb_def_bool (def, "hidden", false);
    //  The format bounds it (1..SB_MAX_TOOL_COST; 2.0 is an integer there
    //  too, hence json_number_value); absent counts 1.
    json_t *cost = json_object_get (def, "cost");
    self->cost = cost ? (uint32_t) json_number_value (cost) : 1;
    const char *support = sb_def_string (def, "taskSupport");
    for (size_t i = 0; support && i < sizeof task_support / sizeof task_support [0]; i++)
        if (strcmp (support, task_support [i]) == 0)
            self->task_support = (sb_task_support_t) i;

    //  Annotations: the MCP hints; read-only defaults to false (safe side).
    json_t *annotations = json_object_get (def, "annotations");
    self->read_only = sb_def_bool (annotations, "readOnlyHint", false);
    self->destructive = sb_def_bool (annotations, "destructiveHint", false);
    self->idempotent = sb_def_bool (annotations, "idempotentHint", false);

    json_t *request = json_object_get (def, "request");
    const char *builtin = sb_def_string (request, "builtin");
    if (builtin)
        //  A fixture the worker runs itself: nothing is sent upstream.
        self->builtin = strdup (builtin);
    else
    if (s_tool_parse_http (self, def, request, schema, props, where, why))
        goto fail;

    //  What the tool returns, and what it tells a client (ChatGPT) about it.
    json_t *output = json_object_get (def, "outputSchema");
    json_t *meta = json_object_get (def, "_meta");
    json_t *schemes = json_object_get (def, "securitySchemes");
    char inner [600];
    snprintf (inner, sizeof inner, "%s/outputSchema", where);
    if (output && !(self->output_checker = sb_schema_new (output, inner, why)))
        goto fail;

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
    sb_secret_free (&self->secret);
    free (self->auth_header);
    free (self->auth_prefix);
    for (size_t i = 0; i < self->oauth_owned_count; i++) {
        //  the client secret is among them: wipe every one
        sb_crypto_wipe (self->oauth_owned [i], strlen (self->oauth_owned [i]));
        free (self->oauth_owned [i]);
    }
    for (int i = 0; i < 3; i++) {
        free (self->oauth_raw [i]);
        free (self->oauth_url [i]);
    }
    free (self->base_var);
    free (self);
    *self_p = NULL;
}

static int s_oauth_resolve (sb_connector_t *self);

static int
s_set_base_url (sb_connector_t *self, const char *url)
{
    //  "{name}/path": the URL comes from the connection's vars at each call.
    char *var = NULL;
    if (*url == '{') {
        const char *end = strchr (url, '}');
        size_t len = end ? (size_t) (end - url - 1) : 0;
        if (len < 1 || len > 64 || strspn (url + 1, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
            return -1;
        var = strndup (url + 1, len);
        if (!var)
            return -1;
    }
    else
    if (strncmp (url, "http://", 7) && strncmp (url, "https://", 8))
        return -1;
    if (strlen (url) > SB_MAX_URL_LEN / 2 || strpbrk (url, "?# \t\r\n")) {
        free (var);
        return -1;
    }
    char *copy = strdup (url);
    if (!copy) {
        free (var);
        return -1;
    }
    size_t len = strlen (copy);
    while (len > 0 && copy [len - 1] == '/')
        copy [--len] = 0;
    free (self->base_url);
    self->base_url = copy;
    free (self->base_var);
    self->base_var = var;
    //  oauth2 endpoints given as paths follow the base URL (a test's port).
    return s_oauth_resolve (self);
}

//  Keeps a copy of `text` among the strings self->oauth points at.
static const char *
s_oauth_keep (sb_connector_t *self, const char *text)
{
    if (!text || self->oauth_owned_count >= sizeof self->oauth_owned / sizeof self->oauth_owned [0])
        return NULL;
    char *copy = strdup (text);
    if (copy)
        self->oauth_owned [self->oauth_owned_count++] = copy;
    return copy;
}

//  The value of environment variable `name`, or of the first line of the
//  file that <name>_FILE names (a Compose secret); NULL when neither is
//  set. A new string, or NULL with *why set when the file cannot be read.
static char *
s_env_or_file (const char *name, const char *file, const char *where, char **why)
{
    char *file_var = sb_strfmt ("%s_FILE", name);
    if (!file_var)
        return NULL;
    const char *path = getenv (file_var);
    char *value = NULL;
    if (path && *path) {
        char *error = NULL;
        value = sb_secret_read_file (path, &error);
        if (!value)
            *why = sb_strfmt ("%s: %s: %s (from %s)", file, where, error, file_var);
        free (error);
    }
    else {
        const char *env = getenv (name);
        value = env && *env ? strdup (env) : NULL;
    }
    free (file_var);
    return value;
}

//  An absolute URL for endpoint `raw` (absolute already, or a path on
//  the base URL); NULL when it is a path and the base URL has a
//  placeholder or is absent. A new string.
static char *
s_endpoint_resolve (const sb_connector_t *self, const char *raw)
{
    if (!raw)
        return NULL;
    if (*raw != '/')
        return strdup (raw);
    if (!self->base_url || self->base_var)
        return NULL;
    return sb_strfmt ("%s%s", self->base_url, raw);
}

//  (Re)resolves the oauth2 endpoints against the base URL. 0 or -1.
static int
s_oauth_resolve (sb_connector_t *self)
{
    if (self->auth_type != SB_AUTH_OAUTH2)
        return 0;
    const char **slots [3] = {
        &self->oauth.authorize_url, &self->oauth.token_url, &self->oauth.revoke_url
    };
    for (int i = 0; i < 3; i++) {
        if (!self->oauth_raw [i])
            continue;
        char *url = s_endpoint_resolve (self, self->oauth_raw [i]);
        if (!url)
            return -1;
        free (self->oauth_url [i]);
        self->oauth_url [i] = url;
        *slots [i] = url;
    }
    return 0;
}

//  auth.oauth2 (the format checked its shape).
static int
s_oauth_parse (sb_connector_t *self, const json_t *oauth, const char *file, char **why)
{
    const char *names [3] = { "authorize_url", "token_url", "revoke_url" };
    for (int i = 0; i < 3; i++) {
        const char *raw = sb_def_string (oauth, names [i]);
        if (raw && !(self->oauth_raw [i] = strdup (raw)))
            return -1;
    }
    if (s_oauth_resolve (self)) {
        *why = sb_strfmt ("%s: /auth/oauth2: an endpoint given as a path needs a base_url "
                          "that is a URL (not a placeholder)", file);
        return -1;
    }
    char *value = s_env_or_file (sb_def_string (oauth, "client_id_env"), file,
                                 "/auth/oauth2/client_id_env", why);
    if (*why)
        return -1;
    self->oauth.client_id = value ? s_oauth_keep (self, value) : NULL;
    sb_secret_free (&value);
    const char *secret_env = sb_def_string (oauth, "client_secret_env");
    if (secret_env) {
        value = s_env_or_file (secret_env, file, "/auth/oauth2/client_secret_env", why);
        if (*why)
            return -1;
        self->oauth.client_secret = value ? s_oauth_keep (self, value) : NULL;
        sb_secret_free (&value);
    }
    const char *client_auth = sb_def_string (oauth, "client_auth");
    self->oauth.client_secret_basic = !client_auth || strcmp (client_auth, "client_secret_basic") == 0;

    json_t *scopes = json_object_get (oauth, "scopes");
    if (json_array_size (scopes)) {
        size_t len = 0, index;
        json_t *scope;
        json_array_foreach (scopes, index, scope)
            len += strlen (json_string_value (scope)) + 1;
        char *joined = calloc (1, len);
        if (!joined)
            return -1;
        json_array_foreach (scopes, index, scope) {
            if (index)
                strcat (joined, " ");
            strcat (joined, json_string_value (scope));
        }
        self->oauth.scopes = s_oauth_keep (self, joined);
        free (joined);
    }
    json_t *keep = json_object_get (oauth, "keep");
    size_t index;
    json_t *item;
    json_array_foreach (keep, index, item)
        if (index < SB_MAX_OAUTH_KEEP)
            self->oauth.keep [self->oauth.keep_count++] = s_oauth_keep (self, json_string_value (item));
    const char *key;
    json_t *param;
    json_object_foreach ((json_t *) json_object_get (oauth, "authorize_params"), key, param)
        if (self->oauth.param_count < SB_MAX_OAUTH_PARAMS) {
            size_t i = self->oauth.param_count++;
            self->oauth.param_names [i] = s_oauth_keep (self, key);
            self->oauth.param_values [i] = s_oauth_keep (self, json_string_value (param));
        }
    return 0;
}

//  A base URL that starts with {name} must name a field auth.oauth2.keep
//  lists.
static int
s_base_var_check (sb_connector_t *self, const char *file, char **why)
{
    if (!self->base_var)
        return 0;
    for (size_t i = 0; i < self->oauth.keep_count; i++)
        if (self->oauth.keep [i] && strcmp (self->oauth.keep [i], self->base_var) == 0)
            return 0;
    *why = sb_strfmt ("%s: /base_url: placeholder {%s} is not a field auth.oauth2.keep lists",
                      file, self->base_var);
    return -1;
}

//  The connector in definition `root` (read from `file`), which the format
//  checked: reads its fields, then its tools and catalog, each of which
//  checks what the format cannot.
static sb_connector_t *
s_connector_parse (const json_t *root, const char *file, char **why)
{
    const char *title = sb_def_string (root, "title");
    const char *display = sb_def_string (root, "display_name");
    const char *base_url = sb_def_string (root, "base_url");
    sb_connector_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->file = strdup (file);
    self->name = strdup (sb_def_string (root, "name"));
    self->title = strdup (title);
    self->display_name = strdup (display ? display : title);
    //  The format has the same rule, but counts characters where this
    //  counts bytes; shared with the --connector-urls overrides.
    if (base_url && s_set_base_url (self, base_url)) {
        *why = sb_strfmt ("%s: /base_url: must be an http:// or https:// URL of at most %d "
                          "bytes, without query or fragment", file, SB_MAX_URL_LEN / 2);
        goto fail;
    }

    json_t *auth = json_object_get (root, "auth");
    const char *type = sb_def_string (auth, "type");
    const char *header = sb_def_string (auth, "header");
    const char *prefix = sb_def_string (auth, "prefix");
    const char *credential = sb_def_string (auth, "credential");
    self->auth_type = !type || strcmp (type, "none") == 0 ? SB_AUTH_NONE
                    : strcmp (type, "bearer") == 0 ? SB_AUTH_BEARER
                    : strcmp (type, "oauth2") == 0 ? SB_AUTH_OAUTH2
                    : SB_AUTH_API_KEY_HEADER;
    self->credential = self->auth_type == SB_AUTH_NONE ? SB_CREDENTIAL_NONE
                     : credential && strcmp (credential, "shared") == 0 ? SB_CREDENTIAL_SHARED
                     : SB_CREDENTIAL_TENANT;
    if (self->auth_type != SB_AUTH_NONE) {
        self->auth_header = strdup (header ? header : "Authorization");
        self->auth_prefix = strdup (prefix ? prefix : "");
        if (!self->auth_header || !self->auth_prefix)
            goto fail;
    }
    if (self->credential == SB_CREDENTIAL_SHARED) {
        self->token_env = strdup (sb_def_string (auth, "token_env"));
        if (!self->token_env)
            goto fail;
        //  <token_env>_FILE names a file holding the secret (a Compose or
        //  Kubernetes secret), so that no environment ever holds it: read
        //  once here, at load and at each reload.
        char *file_var = sb_strfmt ("%s_FILE", self->token_env);
        const char *path = file_var ? getenv (file_var) : NULL;
        if (path && *path) {
            char *error = NULL;
            self->secret = sb_secret_read_file (path, &error);
            if (!self->secret) {
                *why = sb_strfmt ("%s: /auth/token_env: %s (from %s)", file, error, file_var);
                free (error);
                free (file_var);
                goto fail;
            }
        }
        free (file_var);
    }
    if (self->auth_type == SB_AUTH_OAUTH2
    &&  s_oauth_parse (self, json_object_get (auth, "oauth2"), file, why))
        goto fail;
    if (s_base_var_check (self, file, why))
        goto fail;

    json_t *limits = json_object_get (root, "limits");
    json_t *timeout = json_object_get (limits, "timeout_ms");
    json_t *max_response = json_object_get (limits, "max_response_bytes");
    //  json_number_value: the format counts 2000.0 as an integer too.
    self->timeout_ms = timeout ? (long) json_number_value (timeout) : 10000;
    self->max_response = max_response ? (size_t) json_number_value (max_response) : 4u << 20;
    //  Both members required and bounded by the format when the block is there.
    json_t *budget = json_object_get (root, "upstream_budget");
    if (budget) {
        self->budget_requests = (uint32_t) json_number_value (json_object_get (budget, "requests"));
        self->budget_window_s = (uint32_t) json_number_value (json_object_get (budget, "window_s"));
    }

    json_t *tools = json_object_get (root, "tools");
    self->tools = calloc (json_array_size (tools), sizeof (sb_tool_t *));
    if (!self->tools)
        goto fail;
    size_t index;
    json_t *def;
    json_array_foreach (tools, index, def) {
        sb_tool_t *tool = s_tool_parse (def, self, file, index, why);
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
    //  The shape first, against the format; then only the fields.
    if (s_format_check (root, path, why) == 0)
        connector = s_connector_parse (root, path, why);
    json_decref (root);
out:
    free (text);
    return connector;
}

//  --------------------------------------------------------------------------
//  The set

//  The file name of a path (after its last '/').
static const char *
s_base_name (const char *path)
{
    const char *slash = strrchr (path, '/');
    return slash ? slash + 1 : path;
}

//  Orders paths by file name, whatever their folder; then by folder.
static int
s_compare_names (const void *a, const void *b)
{
    const char *left = *(char *const *) a, *right = *(char *const *) b;
    int order = strcmp (s_base_name (left), s_base_name (right));
    return order ? order : strcmp (left, right);
}

//  Adds the path of every *.json file in folder `dir` (`len` bytes) to
//  `paths`. Returns 0, or -1 with *error a new sentence.
static int
s_list_folder (const char *dir, size_t len, char **paths, size_t *count, char **error)
{
    char *folder = strndup (dir, len);
    DIR *handle = folder ? opendir (folder) : NULL;
    int rc = -1;
    if (!folder) {
        *error = sb_strfmt ("%s: out of memory", dir);
        goto out;
    }
    if (!handle) {
        *error = sb_strfmt ("%s: cannot open connectors directory: %s", folder, strerror (errno));
        goto out;
    }
    struct dirent *entry;
    //  cppcheck-suppress readdirCalled ; readdir_r is deprecated: readdir is safe on a DIR
    //  no other thread reads
    while ((entry = readdir (handle))) {
        //  Definitions are *.json; the format itself (connector.schema.json)
        //  and any other *.schema.json next to them are JSON Schemas.
        size_t name_len = strlen (entry->d_name);
        if (name_len < 6 || entry->d_name [0] == '.' || strcmp (entry->d_name + name_len - 5, ".json")
        ||  (name_len > 12 && strcmp (entry->d_name + name_len - 12, ".schema.json") == 0))
            continue;
        if (*count == SB_MAX_CONNECTORS) {
            *error = sb_strfmt ("%s: more than %d connector files", folder, SB_MAX_CONNECTORS);
            goto out;
        }
        paths [*count] = sb_strfmt ("%s/%s", folder, entry->d_name);
        if (!paths [*count]) {
            *error = sb_strfmt ("%s: out of memory", folder);
            goto out;
        }
        (*count)++;
    }
    rc = 0;
out:
    if (handle)
        closedir (handle);
    free (folder);
    return rc;
}

sb_connectors_t *
sb_connectors_load (const char *dirs, char **error)
{
    *error = NULL;
    sb_connectors_t *self = calloc (1, sizeof *self);
    if (self)
        atomic_init (&self->refs, 1);
    char **names = calloc (SB_MAX_CONNECTORS + 1, sizeof (char *));
    size_t name_count = 0;
    if (!self || !names) {
        *error = sb_strfmt ("%s: out of memory", dirs);
        goto fail;
    }
    //  One or more folders, separated by ':' (PATH-like).
    size_t folders = 1;
    for (const char *colon = strchr (dirs, ':'); colon; colon = strchr (colon + 1, ':'))
        folders++;
    if (folders > SB_MAX_CONNECTOR_DIRS) {
        *error = sb_strfmt ("%s: more than %d folders in the list", dirs, SB_MAX_CONNECTOR_DIRS);
        goto fail;
    }
    for (const char *dir = dirs; ; ) {
        size_t len = strcspn (dir, ":");
        if (len == 0) {
            *error = sb_strfmt ("%s: an empty folder name in the list (folders are separated "
                                "by ':')", dirs);
            goto fail;
        }
        if (s_list_folder (dir, len, names, &name_count, error))
            goto fail;
        if (dir [len] == 0)
            break;
        dir += len + 1;
    }
    if (name_count == 0) {
        *error = sb_strfmt ("%s: no connector definitions (*.json)", dirs);
        goto fail;
    }
    qsort (names, name_count, sizeof (char *), s_compare_names);
    self->connectors = calloc (name_count, sizeof (sb_connector_t *));
    self->tools = calloc (SB_MAX_TOOLS, sizeof (sb_tool_t *));
    if (!self->connectors || !self->tools)
        goto fail;

    for (size_t i = 0; i < name_count; i++) {
        const char *path = names [i];
        sb_connector_t *connector = s_connector_load (path, error);
        if (!connector)
            goto fail;
        self->connectors [self->count++] = connector;
        if (sb_connectors_find (self, connector->name) != connector) {
            *error = sb_strfmt ("%s: /name: \"%s\" is already the name of another connector",
                                path, connector->name);
            goto fail;
        }
        for (size_t t = 0; t < connector->tool_count; t++) {
            sb_tool_t *tool = connector->tools [t];
            const sb_tool_t *twin = sb_connectors_find_tool (self, tool->name);
            if (twin) {
                *error = sb_strfmt ("%s: /tools/%zu/name: \"%s\" is already the name of a "
                                    "tool (in %s)", path, t, tool->name, twin->connector->file);
                goto fail;
            }
            if (self->tool_count == SB_MAX_TOOLS) {
                *error = sb_strfmt ("%s: more than %d tools in all", path, SB_MAX_TOOLS);
                goto fail;
            }
            self->tools [self->tool_count++] = tool;
        }
    }
    if (sb_catalog_check_set (self, error))
        goto fail;
    for (size_t i = 0; i < name_count; i++)
        free (names [i]);
    free (names);
    return self;

fail:
    for (size_t i = 0; names && i < name_count; i++)
        free (names [i]);
    free (names);
    sb_connectors_destroy (&self);
    if (!*error)
        *error = sb_strfmt ("%s: out of memory", dirs);
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
sb_connector_title (const sb_connector_t *self)
{
    return self->title ? self->title : self->name;
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

bool
sb_connector_upstream_budget (const sb_connector_t *self, uint32_t *requests,
                              uint32_t *window_s)
{
    *requests = self->budget_requests;
    *window_s = self->budget_window_s;
    return self->budget_requests > 0;
}

const char *
sb_connector_auth_header_name (const sb_connector_t *self)
{
    return self->auth_type == SB_AUTH_NONE ? NULL : self->auth_header;
}

char *
sb_connector_auth_value (const sb_connector_t *self, const char *secret)
{
    if (self->auth_type == SB_AUTH_NONE || !secret || !*secret || strpbrk (secret, "\r\n"))
        return NULL;
    if (self->auth_type == SB_AUTH_API_KEY_HEADER)
        return sb_strfmt ("%s%s", self->auth_prefix, secret);
    return sb_strfmt ("Bearer %s", secret);
}

char *
sb_connector_auth_header (const sb_connector_t *self)
{
    if (self->credential != SB_CREDENTIAL_SHARED)
        return NULL;
    return sb_connector_auth_value (self, self->secret ? self->secret : getenv (self->token_env));
}

sb_auth_type_t
sb_connector_auth_type (const sb_connector_t *self)
{
    return self->auth_type;
}

sb_credential_t
sb_connector_credential (const sb_connector_t *self)
{
    return self->credential;
}

const sb_connector_oauth_t *
sb_connector_oauth (const sb_connector_t *self)
{
    return self->auth_type == SB_AUTH_OAUTH2 ? &self->oauth : NULL;
}

char *
sb_connector_base_url_for (const sb_connector_t *self, const json_t *vars)
{
    if (!self->base_url)
        return NULL;
    if (!self->base_var)
        return strdup (self->base_url);
    const char *value = json_string_value (json_object_get (vars, self->base_var));
    if (!value || (strncmp (value, "https://", 8) && strncmp (value, "http://", 7)))
        return NULL;
    const char *host = strstr (value, "://") + 3;
    if (!*host || strpbrk (value, "?#@ \t\r\n\\") || strlen (value) > SB_MAX_URL_LEN / 4)
        return NULL;
    size_t len = strlen (value);
    while (len > 0 && value [len - 1] == '/')
        len--;
    const char *rest = self->base_url + strlen (self->base_var) + 2;
    return sb_strfmt ("%.*s%s", (int) len, value, rest);
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

bool
sb_tool_read_only (const sb_tool_t *self)
{
    return self->read_only;
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

uint32_t
sb_tool_cost (const sb_tool_t *self)
{
    return self->cost;
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
