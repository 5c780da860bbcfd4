/*  workers/sb_admin.c — the admin API (op admin/http): tenants, plans
    and their limits, usage, users, OAuth clients, refresh tokens, signing
    keys, the audit log, connections (sb_conn_admin.c) and webhooks
    (sb_wh_admin.c), as JSON over HTTP (docs/ADMIN.md). The gateway
    checked the operator's key before it relayed the request: a job that
    reaches us was authenticated, and we act as actor 'admin'.

    Each request is routed by its method and path (s_routes), its path
    segments percent-decoded strictly, its query read as a form and its
    body parsed with duplicate keys refused; every check answers 400, 404,
    405 or 422 itself, so the handlers read as straight lines. What
    changes state is ONE call of a function of migration 007 (014 for
    plans' limits, billing anchors and usage), which decides the outcome
    and answers {"status", "body"}: the handler relays it
    (sb_admin_on_answer). A password is hashed on the role's offload
    threads first (Argon2id takes 100 ms of CPU): the job is parked in
    self->admin_hashing meanwhile, and sb_admin_abandon finds it there.
    The answers and the tenant's check serve sb_conn_admin.c as well
    (sb_admin_int.h). */
#include "sb_admin_int.h"
#include "sb_token_int.h"
#include "sb_conn.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_oauth_form.h"
#include "sb_password.h"
#include "sb_quota_msg.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_ADMIN_MAX_SEGMENTS   6       /* segments of a path after /admin */
#define SB_ADMIN_MAX_SEGMENT    2048    /* bytes of one decoded segment (a client id is a URL) */
#define SB_ADMIN_MAX_LIST       1000    /* tenants, users or clients in one answer */
#define SB_ADMIN_AUDIT_DEFAULT  50      /* audit rows in one answer without ?limit */
#define SB_ADMIN_MAX_AUDIT      500     /* audit rows in one answer, at most */
#define SB_ADMIN_MIN_PASSWORD   12      /* shortest password an operator may set, bytes */

//  A decoded request: what every handler reads.
typedef struct {
    sb_http_request_t http;                         /* the relayed request */
    char *segments [SB_ADMIN_MAX_SEGMENTS];         /* decoded path segments after /admin */
    size_t count;                                   /* segments used */
    sb_oauth_form_t *query;                         /* the query string, parsed */
} s_request_t;

typedef void (s_handler_fn) (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request);

//  One route: a method and a path pattern ("tenants/*/users", '*' any segment).
typedef struct {
    const char *method;
    const char *pattern;
    s_handler_fn *handler;
} s_route_t;

//  A password being hashed for a job, parked in self->admin_hashing.
struct _sb_admin_hashing_t {
    sb_token_role_t *self;                          /* the role */
    sb_worker_job_t *job;                           /* NULL once abandoned */
    char *password;                                 /* wiped and freed once hashed */
    char encoded [SB_PASSWORD_ENCODED_MAX];         /* the hash */
    const char *error;                              /* static: why hashing failed */
    int rc;                                         /* sb_password_hash's answer */
    char *tenant;                                   /* the tenant */
    char *email;                                    /* add: the email; NULL for a reset */
    char user [24];                                 /* reset: the user id */
    struct _sb_admin_hashing_t *prev, *next;        /* links in self->admin_hashing */
};
typedef struct _sb_admin_hashing_t s_hashing_t;

//  ---------------------------------------------------------------------
//  Answers

void
sb_admin_json (sb_worker_job_t **job_p, int status, json_t *doc)
{
    char *body = doc? sb_json_dump (doc, NULL): NULL;
    json_decref (doc);
    if (body)
        sb_token_http_json (job_p, status, body);
    else
        sb_worker_job_fail (job_p, "out of memory");
    free (body);
}

void
sb_admin_refuse (sb_worker_job_t **job_p, int status, const char *code, const char *message)
{
    sb_admin_json (job_p, status, json_pack ("{s:s, s:s}", "error", code, "message", message));
}

void
sb_admin_refusef (sb_worker_job_t **job_p, int status, const char *code, const char *format, ...)
{
    char message [SB_ADMIN_MAX_MESSAGE];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    sb_admin_refuse (job_p, status, code, message);
}

void
sb_admin_db_failed (sb_worker_job_t **job_p, const char *what, const PGresult *res,
                    const char *error)
{
    const char *why = error? error: res? PQresultErrorMessage (res): "no result";
    if (what)
        sb_log_warn ("admin_failed", "%s: %s", what, why);
    else
        sb_log_warn ("admin_failed", "%s", why);
    sb_admin_refuse (job_p, 500, "server_error", "the admin request failed in the database; "
                     "the token worker's log says why");
}

//  The answer of a migration 007 (or 011) function: {"status", "body"},
//  relayed. The changes the audit log cannot keep name their `arg`: a
//  tenant's deletion deletes its audit rows; a client belongs to no tenant.
void
sb_admin_on_answer (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    const char *action = arg;
    json_t *answer = NULL;
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
    &&  !PQgetisnull (res, 0, 0)) {
        const char *text = PQgetvalue (res, 0, 0);
        answer = sb_json_parse (text, strlen (text), 0, NULL);
    }
    json_t *status = json_object_get (answer, "status");
    json_t *body = json_object_get (answer, "body");
    if (!json_is_integer (status) || !json_is_object (body)) {
        sb_admin_db_failed (job_p, NULL, res, error);
        json_decref (answer);
        return;
    }
    int code = (int) json_integer_value (status);
    char *text = sb_json_dump (body, NULL);
    if (action && code >= 200 && code < 300)
        sb_log_info (action, "actor=admin %s", text? text: "");
    if (text)
        sb_token_http_json (job_p, code, text);
    else
        sb_worker_job_fail (job_p, "out of memory");
    free (text);
    json_decref (answer);
}

//  Runs `sql` (one call of a migration 007 function) and relays its answer.
static void
s_run (sb_token_role_t *self, sb_worker_job_t *job, const char *sql, int nparams,
       const char *const *params, const char *log_action)
{
    //  sb_token_query ends the job itself when it cannot run the statement
    int rc = sb_token_query (self, job, sql, nparams, params, sb_admin_on_answer,
                             sb_unconst (log_action), NULL);
    (void) rc;
}

//  ---------------------------------------------------------------------
//  Reading the request

//  Decodes one path segment (`len` bytes) strictly: %XX with two hex
//  digits, no %00, no control byte; '+' stays '+'. New string or NULL.
static char *
s_segment_decode (const char *text, size_t len)
{
    if (len == 0 || len > SB_ADMIN_MAX_SEGMENT)
        return NULL;
    char *out = malloc (len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text [i];
        if (c == '%') {
            int hi = i + 2 < len? sb_hex_digit (text [i + 1]): -1;
            int lo = i + 2 < len? sb_hex_digit (text [i + 2]): -1;
            if (hi < 0 || lo < 0)
                goto bad;
            c = (unsigned char) (hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            goto bad;
        out [o++] = (char) c;
    }
    out [o] = 0;
    return out;
bad:
    free (out);
    return NULL;
}

static void
s_request_clear (s_request_t *request)
{
    sb_http_request_clear (&request->http);
    for (size_t i = 0; i < request->count; i++)
        free (request->segments [i]);
    sb_oauth_form_destroy (&request->query);
    memset (request, 0, sizeof *request);
}

//  Splits the path after "/admin/" into decoded segments. Returns 0, or
//  -1 having answered 400 (bad escape) or 404 (not an admin path).
static int
s_request_path (sb_worker_job_t **job_p, s_request_t *request)
{
    const char *path = request->http.path;
    if (strncmp (path, "/admin/", 7) != 0 || !path [7]) {
        sb_admin_refuse (job_p, 404, "not_found", "there is no such admin route");
        return -1;
    }
    const char *p = path + 7;
    while (*p) {
        const char *slash = strchr (p, '/');
        size_t len = slash? (size_t) (slash - p): strlen (p);
        if (len == 0 || request->count == SB_ADMIN_MAX_SEGMENTS) {
            sb_admin_refuse (job_p, 404, "not_found", "there is no such admin route");
            return -1;
        }
        char *segment = s_segment_decode (p, len);
        if (!segment) {
            sb_admin_refuse (job_p, 400, "invalid_request", "a path segment is empty, too long, "
                             "or has a bad %-escape or a control character");
            return -1;
        }
        request->segments [request->count++] = segment;
        p += len;
        if (*p == '/') {
            p++;
            if (!*p) {
                sb_admin_refuse (job_p, 404, "not_found", "there is no such admin route");
                return -1;
            }
        }
    }
    return 0;
}

//  True when the request's segments match `pattern`.
static bool
s_match (const s_request_t *request, const char *pattern)
{
    size_t i = 0;
    const char *p = pattern;
    while (*p) {
        const char *slash = strchr (p, '/');
        size_t len = slash? (size_t) (slash - p): strlen (p);
        if (i == request->count)
            return false;
        if (!(len == 1 && *p == '*')
        &&  (strlen (request->segments [i]) != len || memcmp (request->segments [i], p, len) != 0))
            return false;
        i++;
        p += len + (slash? 1: 0);
    }
    return i == request->count;
}

//  Checks that the query has only parameters named in `allowed` (NULL-
//  terminated). Returns 0, or -1 having answered 400.
static int
s_query_only (sb_worker_job_t **job_p, const s_request_t *request, const char *const *allowed)
{
    size_t size = request->query? sb_oauth_form_size (request->query): 0;
    for (size_t i = 0; i < size; i++) {
        const char *name = sb_oauth_form_name (request->query, i);
        bool known = false;
        for (size_t k = 0; allowed && allowed [k]; k++)
            if (strcmp (name, allowed [k]) == 0)
                known = true;
        if (!known) {
            sb_admin_refusef (job_p, 400, "invalid_request",
                              "this route takes no query parameter \"%.64s\"", name);
            return -1;
        }
    }
    return 0;
}

//  The query parameter `name` (borrowed) or NULL.
static const char *
s_query (const s_request_t *request, const char *name)
{
    return request->query? sb_oauth_form_get (request->query, name): NULL;
}

//  Parses the body as a JSON object whose members are all in `allowed`
//  (NULL-terminated); duplicate keys are refused. Returns the object
//  (new), or NULL having answered 400.
static json_t *
s_body (sb_worker_job_t **job_p, const s_request_t *request, const char *const *allowed)
{
    json_error_t error;
    json_t *body = sb_json_parse (request->http.body, request->http.body_len,
                                  JSON_REJECT_DUPLICATES, &error);
    if (!body) {
        sb_admin_refusef (job_p, 400, "invalid_json",
                          "the body is not a JSON object: %s (line %d, column %d)",
                          error.text, error.line, error.column);
        return NULL;
    }
    if (!json_is_object (body)) {
        json_decref (body);
        sb_admin_refuse (job_p, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach (body, key, value) {
        bool known = false;
        for (size_t k = 0; allowed [k]; k++)
            if (strcmp (key, allowed [k]) == 0)
                known = true;
        if (!known) {
            sb_admin_refusef (job_p, 400, "invalid_request",
                              "the body has an unknown member \"%.64s\"", key);
            json_decref (body);
            return NULL;
        }
    }
    return body;
}

//  The string member `name` of `body`; NULL when absent (and `required`
//  false). Returns 0, or -1 having answered 400 (absent when required,
//  or not a string, or holding a NUL).
static int
s_body_string (sb_worker_job_t **job_p, json_t *body, const char *name, bool required,
               const char **value)
{
    json_t *member = json_object_get (body, name);
    *value = NULL;
    if (!member && !required)
        return 0;
    if (!json_is_string (member) || strlen (json_string_value (member)) != json_string_length (member)) {
        sb_admin_refusef (job_p, 400, "invalid_request", "\"%s\" must be a string%s", name,
                          required? " and is required": "");
        return -1;
    }
    *value = json_string_value (member);
    return 0;
}

//  True for a tenant id as tenants' CHECK takes it: ^[a-z0-9][a-z0-9_-]{0,62}$.
static bool
s_tenant_valid (const char *id)
{
    size_t len = strlen (id);
    if (len < 1 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

int
sb_admin_tenant_check (sb_worker_job_t **job_p, const char *id)
{
    if (s_tenant_valid (id))
        return 0;
    sb_admin_refuse (job_p, 400, "invalid_request", "a tenant id is 1 to 63 characters of a-z, "
                     "0-9, \"_\" and \"-\", starting with a letter or digit");
    return -1;
}

//  Checks a user id (a positive decimal bigint without sign or leading
//  zero); -1 having answered 400.
static int
s_user_check (sb_worker_job_t **job_p, const char *id, const char *what)
{
    size_t len = strlen (id);
    bool ok = len >= 1 && len <= 19 && id [0] >= '1' && id [0] <= '9';
    for (size_t i = 0; ok && i < len; i++)
        ok = id [i] >= '0' && id [i] <= '9';
    if (ok) {
        errno = 0;
        char *end = NULL;
        long long value = strtoll (id, &end, 10);
        ok = errno == 0 && end && *end == 0 && value > 0;
    }
    if (ok)
        return 0;
    sb_admin_refusef (job_p, 400, "invalid_request",
                      "%s must be a user id: a positive whole number", what);
    return -1;
}

int
sb_admin_query_count (sb_worker_job_t **job_p, const char *name, const char *text,
                      long long fallback, long long max, long long *value)
{
    *value = fallback;
    if (!text)
        return 0;
    bool ok = *text >= '0' && *text <= '9';
    char *end = NULL;
    errno = 0;
    long long v = ok? strtoll (text, &end, 10): 0;
    if (ok && !errno && end && *end == 0 && v >= 1 && v <= max) {
        *value = v;
        return 0;
    }
    sb_admin_refusef (job_p, 400, "invalid_request", "?%s must be a whole number from 1 to %lld",
                      name, max);
    return -1;
}

//  Reads the optional query parameter `name` as sb_admin_query_count does.
static int
s_query_count (sb_worker_job_t **job_p, const s_request_t *request, const char *name,
               long long fallback, long long max, long long *value)
{
    return sb_admin_query_count (job_p, name, s_query (request, name), fallback, max, value);
}

//  ---------------------------------------------------------------------
//  Tenants and plans

static void
s_tenants_list (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "after", NULL };
    if (s_query_only (&job, request, allowed))
        return;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", SB_ADMIN_MAX_LIST);
    const char *params [] = { limit, s_query (request, "after") };
    s_run (self, job, "SELECT admin_tenants_list ($1::int, $2)", 2, params, NULL);
}

static void
s_tenant_create (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "id", "name", "plan", NULL };
    if (s_query_only (&job, request, NULL))
        return;
    json_t *body = s_body (&job, request, allowed);
    if (!body)
        return;
    const char *id, *name, *plan;
    if (s_body_string (&job, body, "id", true, &id)
    ||  s_body_string (&job, body, "name", true, &name)
    ||  s_body_string (&job, body, "plan", false, &plan)
    ||  sb_admin_tenant_check (&job, id)) {
        json_decref (body);
        return;
    }
    const char *params [] = { id, name, plan? plan: "free" };
    s_run (self, job, "SELECT admin_tenant_create ($1, $2, $3)", 3, params, NULL);
    json_decref (body);
}

static void
s_tenant_get (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    const char *params [] = { request->segments [1] };
    s_run (self, job, "SELECT admin_tenant_get ($1)", 1, params, NULL);
}

static void
s_tenant_delete (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    const char *params [] = { request->segments [1] };
    //  The tenant's audit rows go with it: the process log keeps this one.
    s_run (self, job, "SELECT admin_tenant_delete ($1)", 1, params, "tenant_deleted");
}

static void
s_tenant_plan (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "plan", NULL };
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    json_t *body = s_body (&job, request, allowed);
    if (!body)
        return;
    const char *plan;
    if (s_body_string (&job, body, "plan", true, &plan) == 0) {
        const char *params [] = { request->segments [1], plan };
        s_run (self, job, "SELECT admin_tenant_plan ($1, $2)", 2, params, NULL);
    }
    json_decref (body);
}

static void
s_plans_list (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL))
        return;
    s_run (self, job, "SELECT admin_plans_list ()", 0, NULL, NULL);
}

//  ---------------------------------------------------------------------
//  Quotas: plans' limits, billing anchors, usage (migration 014). The
//  limits' types and ranges are checked by the SQL function, which names
//  the field and its range in its refusal; here only the members.

//  The members a plan's body may have (POST adds "id").
#define S_PLAN_FIELDS "name", "rate_per_min", "burst", "max_in_flight", "monthly_calls", "weight"

//  Runs `sql` with $1 the plan id and $2 `fields` as JSON text.
static void
s_plan_run (sb_token_role_t *self, sb_worker_job_t *job, const char *sql, const char *id,
            json_t *fields, const char *log_action)
{
    char *text = sb_json_dump (fields, NULL);
    if (!text) {
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    const char *params [] = { id, text };
    s_run (self, job, sql, 2, params, log_action);
    free (text);
}

static void
s_plan_create (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "id", S_PLAN_FIELDS, NULL };
    if (s_query_only (&job, request, NULL))
        return;
    json_t *body = s_body (&job, request, allowed);
    if (!body)
        return;
    const char *id;
    if (s_body_string (&job, body, "id", true, &id) == 0) {
        char *plan = strdup (id);
        if (plan) {
            json_object_del (body, "id");
            //  Plans belong to no tenant: the process log keeps this one.
            s_plan_run (self, job, "SELECT admin_plan_create ($1, $2::jsonb)", plan, body,
                        "plan_created");
            free (plan);
        }
        else
            sb_worker_job_fail (&job, "out of memory");
    }
    json_decref (body);
}

static void
s_plan_get (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL))
        return;
    const char *params [] = { request->segments [1] };
    s_run (self, job, "SELECT admin_plan_get ($1)", 1, params, NULL);
}

static void
s_plan_set (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { S_PLAN_FIELDS, NULL };
    if (s_query_only (&job, request, NULL))
        return;
    json_t *body = s_body (&job, request, allowed);
    if (!body)
        return;
    s_plan_run (self, job, "SELECT admin_plan_set ($1, $2::jsonb)", request->segments [1], body,
                "plan_limits_set");
    json_decref (body);
}

static void
s_tenant_anchor (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "day", NULL };
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    json_t *body = s_body (&job, request, allowed);
    if (!body)
        return;
    json_t *day = json_object_get (body, "day");
    json_int_t value = json_is_integer (day)? json_integer_value (day): 0;
    if (value < 1 || value > SB_QUOTA_MAX_ANCHOR)
        sb_admin_refusef (&job, 400, "invalid_request", "\"day\" must be a whole number from 1 "
                          "to %u (the billing day of the month; 1 = calendar months)%s",
                          SB_QUOTA_MAX_ANCHOR, day? "": " and is required");
    else {
        char text [24];
        snprintf (text, sizeof text, "%lld", (long long) value);
        const char *params [] = { request->segments [1], text };
        s_run (self, job, "SELECT admin_tenant_anchor ($1, $2::int)", 2, params, NULL);
    }
    json_decref (body);
}

static void
s_tenant_usage (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    const char *params [] = { request->segments [1] };
    s_run (self, job, "SELECT admin_tenant_usage ($1)", 1, params, NULL);
}

//  ---------------------------------------------------------------------
//  Users

static void
s_users_list (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "after", NULL };
    if (s_query_only (&job, request, allowed) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    const char *after = s_query (request, "after");
    if (after && s_user_check (&job, after, "?after"))
        return;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", SB_ADMIN_MAX_LIST);
    const char *params [] = { request->segments [1], limit, after };
    s_run (self, job, "SELECT admin_users_list ($1, $2::int, $3::bigint)", 3, params, NULL);
}

static void
s_hashing_free (s_hashing_t *hashing)
{
    if (hashing->password) {
        sb_crypto_wipe (hashing->password, strlen (hashing->password));
        free (hashing->password);
    }
    sb_crypto_wipe (hashing->encoded, sizeof hashing->encoded);
    free (hashing->tenant);
    free (hashing->email);
    free (hashing);
}

static void
s_hashing_unlink (s_hashing_t *hashing)
{
    sb_token_role_t *self = hashing->self;
    if (hashing->prev)
        hashing->prev->next = hashing->next;
    else
    if (self->admin_hashing == hashing)
        self->admin_hashing = hashing->next;
    if (hashing->next)
        hashing->next->prev = hashing->prev;
    hashing->prev = hashing->next = NULL;
}

//  On an offload thread: the hash, and the password wiped.
static void
s_hash (void *arg)
{
    s_hashing_t *hashing = arg;
    hashing->rc = sb_password_hash (hashing->password, hashing->encoded, sizeof hashing->encoded,
                                    &hashing->error);
    sb_crypto_wipe (hashing->password, strlen (hashing->password));
}

//  Back on the loop: the step that stores the hash, unless the job went.
static void
s_hashed (void *arg, bool ran)
{
    s_hashing_t *hashing = arg;
    sb_worker_job_t *job = hashing->job;
    if (job)
        s_hashing_unlink (hashing);
    if (!job || !ran) {
        //  Abandoned, or the pool stopped before hashing: the job (if
        //  any) stays the worker's, which abandons it at shutdown.
        s_hashing_free (hashing);
        return;
    }
    if (hashing->rc) {
        sb_log_warn ("admin_failed", "password hash: %s", hashing->error? hashing->error: "?");
        sb_admin_refuse (&job, 500, "server_error", "the password could not be hashed");
    }
    else
    if (hashing->email) {
        const char *params [] = { hashing->tenant, hashing->email, hashing->encoded };
        s_run (hashing->self, job, "SELECT admin_user_add ($1, $2, $3)", 3, params, NULL);
    }
    else {
        const char *params [] = { hashing->tenant, hashing->user, hashing->encoded };
        s_run (hashing->self, job, "SELECT admin_user_password ($1, $2::bigint, $3)", 3, params, NULL);
    }
    s_hashing_free (hashing);
}

//  Checks `password` and hands it to the offload threads, then the step
//  for `email` (add) or `user` (reset). Ends the job on any refusal.
static void
s_hash_then (sb_token_role_t *self, sb_worker_job_t *job, const char *tenant, const char *email,
             const char *user, const char *password)
{
    size_t len = strlen (password);
    if (len < SB_ADMIN_MIN_PASSWORD) {
        sb_admin_refusef (&job, 422, "weak_password", "a password must be at least %d characters",
                          SB_ADMIN_MIN_PASSWORD);
        return;
    }
    if (len > SB_PASSWORD_MAX_LEN) {
        sb_admin_refusef (&job, 422, "weak_password", "a password must be at most %d bytes",
                          SB_PASSWORD_MAX_LEN);
        return;
    }
    s_hashing_t *hashing = calloc (1, sizeof *hashing);
    if (hashing) {
        hashing->self = self;
        hashing->job = job;
        hashing->password = strdup (password);
        hashing->tenant = strdup (tenant);
        hashing->email = email? strdup (email): NULL;
        if (user)
            snprintf (hashing->user, sizeof hashing->user, "%s", user);
    }
    if (!hashing || !hashing->password || !hashing->tenant || (email && !hashing->email)) {
        if (hashing)
            s_hashing_free (hashing);
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    if (sb_offload_submit (self->offload, s_hash, s_hashed, hashing)) {
        s_hashing_free (hashing);
        sb_log_warn ("admin_busy", "%d passwords already wait to be hashed", SB_MAX_OFFLOAD_JOBS);
        sb_worker_job_fail (&job, "the authorization server is busy");
        return;
    }
    hashing->next = self->admin_hashing;
    if (hashing->next)
        hashing->next->prev = hashing;
    self->admin_hashing = hashing;
}

//  Rough shape of an email, before the costly hash (the function checks
//  the same again): local part, '@', domain, no whitespace.
static bool
s_email_valid (const char *email)
{
    size_t len = strlen (email);
    const char *at = strchr (email, '@');
    if (len < 3 || len > 254 || !at || at == email || !at [1] || strchr (at + 1, '@'))
        return false;
    for (const char *c = email; *c; c++)
        if ((unsigned char) *c <= ' ' || *c == 0x7f)
            return false;
    return true;
}

static void
s_user_add (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "email", "password", NULL };
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    json_t *body = s_body (&job, request, allowed);
    if (!body)
        return;
    const char *email, *password;
    if (s_body_string (&job, body, "email", true, &email) == 0
    &&  s_body_string (&job, body, "password", true, &password) == 0) {
        if (!s_email_valid (email))
            sb_admin_refuse (&job, 400, "invalid_request",
                             "an email is 3 to 254 characters: a local part, "
                             "\"@\" and a domain, without spaces");
        else
            s_hash_then (self, job, request->segments [1], email, NULL, password);
    }
    json_decref (body);
}

static void
s_user_remove (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1])
    ||  s_user_check (&job, request->segments [3], "the path's last segment"))
        return;
    const char *params [] = { request->segments [1], request->segments [3] };
    s_run (self, job, "SELECT admin_user_remove ($1, $2::bigint)", 2, params, NULL);
}

static void
s_user_password (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "password", NULL };
    if (s_query_only (&job, request, NULL) || sb_admin_tenant_check (&job, request->segments [1])
    ||  s_user_check (&job, request->segments [3], "the user segment"))
        return;
    json_t *body = s_body (&job, request, allowed);
    if (!body)
        return;
    const char *password;
    if (s_body_string (&job, body, "password", true, &password) == 0)
        s_hash_then (self, job, request->segments [1], NULL, request->segments [3], password);
    json_decref (body);
}

//  ---------------------------------------------------------------------
//  Clients, tokens, keys, audit

static void
s_clients_list (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "after", NULL };
    if (s_query_only (&job, request, allowed))
        return;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", SB_ADMIN_MAX_LIST);
    const char *params [] = { limit, s_query (request, "after") };
    s_run (self, job, "SELECT admin_clients_list ($1::int, $2)", 2, params, NULL);
}

static void
s_client_revoke (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL))
        return;
    const char *params [] = { request->segments [1] };
    //  A client is no tenant's: the process log keeps this one too.
    s_run (self, job, "SELECT admin_client_revoke ($1)", 1, params, "client_revoked");
}

static void
s_tokens_revoke (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "user", NULL };
    if (s_query_only (&job, request, allowed) || sb_admin_tenant_check (&job, request->segments [1]))
        return;
    const char *user = s_query (request, "user");
    if (user && s_user_check (&job, user, "?user"))
        return;
    const char *params [] = { request->segments [1], user };
    s_run (self, job, "SELECT admin_tokens_revoke ($1, $2::bigint)", 2, params, NULL);
}

//  The rotation ended: {"kid", "retired"} (retired null when no key was
//  current). Keys belong to no tenant, so key_rotated goes to the process
//  log, as tenant deletion does.
static void
s_on_rotated (sb_worker_job_t **job_p, const char *kid, const char *retired, const char *error,
              void *arg)
{
    if (!kid) {
        sb_admin_refuse (job_p, 503, "unavailable", error? error: "the key could not be rotated");
        return;
    }
    sb_log_info ("key_rotated", "actor admin: kid %s is current, %s retired", kid,
                 retired? retired: "none");
    sb_admin_json (job_p, 200, json_pack ("{s:s, s:s?}", "kid", kid, "retired", retired));
}

static void
s_keys_rotate (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    if (s_query_only (&job, request, NULL))
        return;
    sb_oauth_keys_rotate (self, job, s_on_rotated, NULL, NULL);
}

static void
s_audit_list (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const allowed [] = { "tenant", "limit", "before", NULL };
    if (s_query_only (&job, request, allowed))
        return;
    const char *tenant = s_query (request, "tenant");
    long long limit, before;
    if ((tenant && sb_admin_tenant_check (&job, tenant))
    ||  s_query_count (&job, request, "limit", SB_ADMIN_AUDIT_DEFAULT, SB_ADMIN_MAX_AUDIT, &limit)
    ||  s_query_count (&job, request, "before", 0, INT64_MAX, &before))
        return;
    char limit_text [24], before_text [24];
    snprintf (limit_text, sizeof limit_text, "%lld", limit);
    snprintf (before_text, sizeof before_text, "%lld", before);
    const char *params [] = { tenant, limit_text, before? before_text: NULL };
    s_run (self, job, "SELECT admin_audit_list ($1, $2::int, $3::bigint)", 3, params, NULL);
}

//  Connections and their data keys: sb_conn_admin.c (only reseal takes
//  a query parameter, ?limit).
static void
s_connections (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    static const char *const reseal [] = { "limit", NULL };
    bool is_reseal = request->count == 2 && strcmp (request->segments [1], "reseal") == 0;
    if (s_query_only (&job, request, is_reseal? reseal: NULL))
        return;
    sb_conn_admin_http (self, job, &request->http, request->segments, request->count,
                        s_query (request, "limit"));
}

//  Webhook endpoints, subscriptions, dead letters, events: sb_wh_admin.c
//  (which checks the query itself).
static void
s_webhooks (sb_token_role_t *self, sb_worker_job_t *job, s_request_t *request)
{
    sb_wh_admin_http (self, job, &request->http, request->segments, request->count,
                      request->query);
}

//  ---------------------------------------------------------------------
//  Routing

static const s_route_t s_routes [] = {
    { "GET",    "tenants",                  s_tenants_list },
    { "POST",   "tenants",                  s_tenant_create },
    { "GET",    "tenants/*",                s_tenant_get },
    { "DELETE", "tenants/*",                s_tenant_delete },
    { "PUT",    "tenants/*/plan",           s_tenant_plan },
    { "GET",    "tenants/*/users",          s_users_list },
    { "POST",   "tenants/*/users",          s_user_add },
    { "DELETE", "tenants/*/users/*",        s_user_remove },
    { "PUT",    "tenants/*/users/*/password", s_user_password },
    { "DELETE", "tenants/*/tokens",         s_tokens_revoke },
    { "PUT",    "tenants/*/billing-anchor", s_tenant_anchor },
    { "GET",    "tenants/*/usage",          s_tenant_usage },
    { "GET",    "plans",                    s_plans_list },
    { "POST",   "plans",                    s_plan_create },
    { "GET",    "plans/*",                  s_plan_get },
    { "PUT",    "plans/*",                  s_plan_set },
    { "GET",    "clients",                  s_clients_list },
    { "DELETE", "clients/*",                s_client_revoke },
    { "POST",   "keys/rotate",              s_keys_rotate },
    { "GET",    "audit",                    s_audit_list },
    { "GET",    "tenants/*/connections",    s_connections },
    { "PUT",    "tenants/*/connections/*",  s_connections },
    { "DELETE", "tenants/*/connections/*",  s_connections },
    { "GET",    "connection-keys",          s_connections },
    { "POST",   "connection-keys/rotate",   s_connections },
    { "POST",   "connection-keys/reseal",   s_connections },
    { "GET",    "tenants/*/webhooks",       s_webhooks },
    { "POST",   "tenants/*/webhooks",       s_webhooks },
    { "GET",    "webhooks/*",               s_webhooks },
    { "DELETE", "webhooks/*",               s_webhooks },
    { "POST",   "webhooks/*/rotate",        s_webhooks },
    { "POST",   "webhooks/*/disable",       s_webhooks },
    { "POST",   "webhooks/*/enable",        s_webhooks },
    { "GET",    "tenants/*/subscriptions",  s_webhooks },
    { "POST",   "tenants/*/subscriptions",  s_webhooks },
    { "DELETE", "subscriptions/*",          s_webhooks },
    { "POST",   "subscriptions/*/enable",   s_webhooks },
    { "GET",    "tenants/*/dead-letters",   s_webhooks },
    { "POST",   "tenants/*/dead-letters/replay", s_webhooks },
    { "POST",   "deliveries/*/replay",      s_webhooks },
    { "GET",    "deliveries/*/attempts",    s_webhooks },
    { "GET",    "tenants/*/events",         s_webhooks },
};

void
sb_admin_http (sb_token_role_t *self, sb_worker_job_t *job)
{
    s_request_t request = { 0 };
    if (sb_token_http_request (&job, &request.http))
        return;
    if (s_request_path (&job, &request))
        goto out;
    if (*request.http.query) {
        char bad [SB_OAUTH_MAX_FORM_NAME + 1];
        sb_oauth_form_rc_t rc = sb_oauth_form_parse (request.http.query, strlen (request.http.query),
                                                     &request.query, bad, sizeof bad);
        if (rc) {
            sb_admin_refusef (&job, 400, "invalid_request", "the query string is refused: %s%s%s",
                              sb_oauth_form_strerror (rc), *bad? ": ": "", bad);
            goto out;
        }
    }
    char allow [64] = "";
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes [0]; i++) {
        const s_route_t *route = &s_routes [i];
        if (!s_match (&request, route->pattern))
            continue;
        if (strcmp (route->method, request.http.method) == 0) {
            sb_log_debug ("admin_request", "%s %s", request.http.method, route->pattern);
            route->handler (self, job, &request);
            goto out;
        }
        size_t used = strlen (allow);
        snprintf (allow + used, sizeof allow - used, "%s%s", used? ", ": "", route->method);
    }
    if (*allow)
        sb_admin_refusef (&job, 405, "method_not_allowed", "this route takes %s, not %.16s", allow,
                          request.http.method);
    else
        sb_admin_refuse (&job, 404, "not_found", "there is no such admin route");
out:
    s_request_clear (&request);
}

bool
sb_admin_abandon (sb_token_role_t *self, sb_worker_job_t *job)
{
    for (s_hashing_t *hashing = self->admin_hashing; hashing; hashing = hashing->next)
        if (hashing->job == job) {
            //  The hash runs on; s_hashed frees it and never sees the job.
            s_hashing_unlink (hashing);
            hashing->job = NULL;
            return true;
        }
    return false;
}
