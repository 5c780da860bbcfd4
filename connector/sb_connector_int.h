/*  connector/sb_connector_int.h — private to sb_connector.c, sb_catalog.c,
    sb_template.c and sb_mapping.c: the parsed shape of a connector
    definition, the embedded format (connectors/connector.schema.json) and
    the readers of members it checked, and the template helpers that tests
    and the template fuzz target reach directly.

    Nothing outside those files and their tests includes this file; everyone
    else uses sb_connector.h. */
#ifndef SB_CONNECTOR_INT_H_INCLUDED
#define SB_CONNECTOR_INT_H_INCLUDED

#include "sb_attr.h"
#include "sb_connector.h"
#include "sb_text.h"
#include "sb_schema.h"

#include <stdatomic.h>

#define SB_MAX_SUMMARY_TEXT     1024    /* content[0].text of a mapped result, bytes */
#define SB_MAX_SUMMARY_ITEMS    5       /* list items named in the summary */
#define SB_MAX_CONNECTOR_NAME   64        /* connector and tool names, bytes */
#define SB_MAX_UPSTREAM_MESSAGE 200     /* upstream error text quoted to the user, bytes */
#define SB_MAX_RESOURCE_URI     2048    /* a resource URI or URI template, bytes */
#define SB_MAX_RESOURCE_BYTES   (512u << 10)    /* static content of one resource, bytes */
#define SB_MAX_COMPLETIONS      100     /* values in one completion/complete answer */
#define SB_MAX_CONFIRM_MESSAGE  1024    /* the confirmation question of a tool call, bytes */

typedef struct _sb_catalog_t sb_catalog_t;     /* a connector's resources, templates, prompts */

typedef enum {
    SB_MAP_LIST = 0,            /* upstream returns a page of items */
    SB_MAP_OBJECT,              /* upstream returns one object */
} sb_map_kind_t;

struct _sb_tool_t {
    char *name;                 /* unique over all connectors */
    char *builtin;              /* fixture the worker runs itself ("request.builtin"), or NULL */
    sb_connector_t *connector;  /* owner (back pointer) */
    json_t *descriptor;         /* MCP Tool object for tools/list */
    json_t *schema;             /* inputSchema (borrowed from descriptor) */
    json_t *output_schema;      /* outputSchema (borrowed from descriptor), or NULL */
    json_t *meta;               /* _meta (borrowed from descriptor), or NULL */
    sb_schema_t *checker;       /* inputSchema, patterns compiled at load */
    sb_schema_t *output_checker;/* outputSchema compiled at load, or NULL */
    char *title;                /* "title", or NULL */
    bool read_only;             /* annotations.readOnlyHint */
    bool idempotent;            /* annotations.idempotentHint */
    bool destructive;           /* annotations.destructiveHint */
    bool confirm;               /* "confirm": ask the user before every call */
    sb_task_support_t task_support; /* "taskSupport" (never in the descriptor) */
    bool hidden;                /* "hidden": only for tenants that showed their hidden tools */
    uint32_t cost;              /* "cost": quota units one call counts, 1..SB_MAX_TOOL_COST */
    char method [8];            /* upstream HTTP method */
    char *path;                 /* path template, starts with "/" */
    json_t *query;              /* object: param name -> string template, or NULL */
    json_t *body;               /* JSON body template, or NULL */
    sb_map_kind_t map_kind;     /* list or object */
    char *pointer;              /* JSON pointer to the items / object ("" = root) */
    char *cursor_pointer;       /* JSON pointer to the next cursor, or NULL */
    char *total_pointer;        /* JSON pointer to the total match count, or NULL */
    char *title_field;          /* item field naming the item, or NULL */
    json_t *subtitle_fields;    /* array of item field names, or NULL */
    json_t *fields;             /* array of fields kept per item, or NULL = all */
    char *noun;                 /* "account" */
    char *noun_plural;          /* "accounts" */
    char *summary;              /* summary prefix template ({count}, {noun}) */
};

struct _sb_connector_t {
    char *file;                 /* definition file it came from */
    char *name;                 /* "sandbox-crm" */
    char *title;                /* "Sandbox CRM" */
    char *display_name;         /* what error sentences call it: "the CRM" */
    char *base_url;             /* no trailing slash; NULL when every tool is builtin */
    sb_auth_type_t auth_type;   /* scheme */
    char *token_env;            /* environment variable holding the secret */
    char *secret;               /* read at load from the file <token_env>_FILE names;
                                   NULL: token_env is read at each call */
    char *auth_header;          /* header name (api_key_header) */
    char *auth_prefix;          /* value prefix (api_key_header), may be "" */
    sb_credential_t credential; /* whose secret: shared (token_env) or the tenant's */
    sb_connector_oauth_t oauth; /* oauth2 only: the provider (strings below, owned) */
    char *oauth_raw [3];        /* authorize, token, revoke URL as written (may be paths) */
    char *oauth_url [3];        /* the same resolved against base_url (oauth points at them) */
    char *oauth_owned [8 + 2 * SB_MAX_OAUTH_PARAMS + SB_MAX_OAUTH_KEEP];  /* what oauth points at */
    size_t oauth_owned_count;
    char *base_var;             /* the {placeholder} base_url starts with, or NULL */
    long timeout_ms;            /* per upstream call */
    size_t max_response;        /* bytes */
    uint32_t budget_requests;   /* upstream_budget.requests per window, 0 = no budget */
    uint32_t budget_window_s;   /* upstream_budget.window_s, 0 = no budget */
    sb_tool_t **tools;          /* its tools, in file order */
    size_t tool_count;          /* entries in tools */
    sb_catalog_t *catalog;      /* resources, templates, prompts (sb_catalog.c) */
};

struct _sb_connectors_t {
    atomic_int refs;                /* references (sb_connectors_ref); freed at 0 */
    sb_connector_t **connectors;    /* loaded connectors, sorted by file name */
    size_t count;                   /* entries in connectors */
    sb_tool_t **tools;              /* every tool, in load order (borrowed) */
    size_t tool_count;              /* entries in tools */
};

/*  connectors/connector.schema.json, the format of a definition, as the
    build embedded it (connector/sb_embed.cmake): its bytes and a NUL. */
extern const char sb_connector_schema_text [];
extern const size_t sb_connector_schema_size;

/*  Members of a definition that the format already checked (sb_connector.c):
    a string member (borrowed) or NULL when absent; a boolean member or `def`. */
const char *sb_def_string (const json_t *obj, const char *key);
bool sb_def_bool (const json_t *obj, const char *key, bool def);

/*  Reads a tool's "result" block, which the format checked, into its
    mapping fields; `where` names the tool ("a.json: /tools/3") in the
    error of the one check left, the summary template (sb_mapping.c). */
int sb_mapping_parse (sb_tool_t *self, const json_t *result, const char *where, char **why)
    SB_MUST_USE;

/*  Reads the "resources", "resource_templates" and "prompts" of connector
    definition `root` (read from `file`, whose directory holds any "file"
    content), whose shape the format checked, and checks what it cannot
    (sb_catalog.c). Returns the catalog (possibly empty), or NULL with *why. */
sb_catalog_t *sb_catalog_parse (const json_t *root, const char *file, char **why) SB_MUST_USE;
void sb_catalog_destroy (sb_catalog_t **self_p);

/*  Checks what only the whole set can tell: resource URIs, URI templates
    and prompt names unique over all connectors, and every tool's
    _meta.ui.resourceUri / openai/outputTemplate naming a declared ui://
    resource of the right mimeType. Returns 0 or -1 with *why. */
int sb_catalog_check_set (sb_connectors_t *self, char **why) SB_MUST_USE;

/*  Appends `len` bytes of `value`, percent-encoded for `ctx`, to `out`
    (capacity `cap`, *used bytes used, kept NUL-terminated). Only RFC 3986
    unreserved characters pass unencoded, and in path context '.' is
    encoded too, so a value is always exactly one opaque segment.
    Returns 0, or -1 when `cap` would be exceeded. */
typedef enum { SB_ESC_PATH, SB_ESC_QUERY } sb_escape_ctx_t;
int sb_template_escape (sb_escape_ctx_t ctx, const char *value, size_t len,
                        char *out, size_t cap, size_t *used) SB_MUST_USE;

/*  Checks a template string: balanced {name} placeholders, names of
    [A-Za-z0-9_]{1,64}. Calls `fn` for each name when non-NULL. Returns 0,
    or -1 with *error a new string. */
typedef int (sb_template_name_fn) (const char *name, void *arg);
int sb_template_check (const char *tmpl, sb_template_name_fn *fn, void *arg, char **error)
    SB_MUST_USE;

/*  Renders an arbitrary request description (as in a tool's "request"
    block) for `args`; used by the fuzz target without a loaded tool.
    Returns 0 or -1 with *error. */
int sb_template_render_raw (const char *base_url, const char *method, const char *path,
                            const json_t *query, const json_t *body, const json_t *args,
                            sb_upstream_req_t *req, char **error) SB_MUST_USE;


#endif
