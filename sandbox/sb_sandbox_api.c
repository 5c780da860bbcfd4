/*  sandbox/sb_sandbox_api.c — the sandbox's CRM REST API under /v1:
    search with paging, get by ID, create a task. Authentication, faults
    and routing happen before this, in sb_sandbox.c. */
#include "sb_sandbox_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_SANDBOX_DEFAULT_LIMIT 20     /* page size when limit= is absent */
#define SB_SANDBOX_MAX_LIMIT     SB_CRM_MAX_PAGE    /* largest page: 100 */
#define SB_SANDBOX_CURSOR_KEY    0x5EEDu    /* cursors are opaque, not offsets */
//  What wraps a page's records, at most: {"items": (9) ,"total": (9) and
//  20 digits, ,"limit": (9) and 20, ,"next_cursor":" (16), a cursor (31),
//  "} (2) and the NUL: 117 bytes.
#define SB_SANDBOX_PAGE_WRAP     128

//  Parses a decimal integer within [min, max]; -1 if not one.
static int
s_parse_int (const char *text, long min, long max, long *out)
{
    char *end = NULL;
    if (!*text || strlen (text) > 9)
        return -1;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    long value = strtol (text, &end, 10);
    if (*end || value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

static void
s_cursor_encode (size_t offset, char out [32])
{
    snprintf (out, 32, "cur_%08zx", offset ^ SB_SANDBOX_CURSOR_KEY);
}

static int
s_cursor_decode (const char *text, size_t *offset)
{
    if (strncmp (text, "cur_", 4) || strlen (text) != 12)
        return -1;
    size_t value = 0;
    for (const char *p = text + 4; *p; p++) {
        int digit = (*p >= '0' && *p <= '9') ? *p - '0'
                  : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
        if (digit < 0)
            return -1;
        value = value * 16 + (size_t) digit;
    }
    *offset = value ^ SB_SANDBOX_CURSOR_KEY;
    return *offset > 1000000 ? -1 : 0;
}

static void
s_search (sb_crm_t *crm, h2o_req_t *req, sb_crm_type_t type)
{
    char q [SB_SANDBOX_MAX_PARAM], limit_text [SB_SANDBOX_MAX_PARAM];
    char cursor [SB_SANDBOX_MAX_PARAM];
    char values [SB_CRM_MAX_FILTERS][SB_SANDBOX_MAX_PARAM];
    sb_crm_query_t query = { .limit = SB_SANDBOX_DEFAULT_LIMIT };

    int rc = sb_sandbox_query_param (req, "q", q, sizeof q);
    if (rc < 0) {
        sb_sandbox_send_error (req, 400, "bad_request", "q is malformed or too long.");
        return;
    }
    query.q = rc ? q : NULL;
    rc = sb_sandbox_query_param (req, "limit", limit_text, sizeof limit_text);
    long limit = SB_SANDBOX_DEFAULT_LIMIT;
    if (rc < 0 || (rc && s_parse_int (limit_text, 1, SB_SANDBOX_MAX_LIMIT, &limit))) {
        sb_sandbox_send_error (req, 400, "bad_request",
                               "limit must be an integer from 1 to 100.");
        return;
    }
    query.limit = (size_t) limit;
    rc = sb_sandbox_query_param (req, "cursor", cursor, sizeof cursor);
    if (rc < 0 || (rc && s_cursor_decode (cursor, &query.offset))) {
        sb_sandbox_send_error (req, 400, "bad_request",
                               "cursor is not one this API gave out.");
        return;
    }
    const char *const *filters = sb_crm_type_filters (type);
    for (size_t i = 0; i < SB_CRM_MAX_FILTERS && filters [i]; i++) {
        rc = sb_sandbox_query_param (req, filters [i], values [query.filter_count],
                                     SB_SANDBOX_MAX_PARAM);
        if (rc < 0) {
            sb_sandbox_send_error (req, 400, "bad_request", "A filter value is malformed.");
            return;
        }
        if (rc) {
            query.filter_names [query.filter_count] = filters [i];
            query.filter_values [query.filter_count] = values [query.filter_count];
            query.filter_count++;
        }
    }
    size_t items_len, total;
    bool more;
    char *items = sb_crm_search (crm, type, &query, &items_len, &total, &more);
    if (!items) {
        sb_sandbox_send_error (req, 500, "internal", "Could not search.");
        return;
    }
    //  The records' JSON is made once when they are stored: wrap it.
    char next [32] = "";
    if (more)
        s_cursor_encode (query.offset + query.limit, next);
    size_t size = items_len + SB_SANDBOX_PAGE_WRAP;
    char *body = malloc (size);
    int len = body? snprintf (body, size, "{\"items\":%s,\"total\":%zu,\"limit\":%zu%s%s%s}",
                              items, total, query.limit,
                              more? ",\"next_cursor\":\"": "", next, more? "\"": ""): -1;
    free (items);
    if (len < 0 || (size_t) len >= size) {
        free (body);
        sb_sandbox_send_error (req, 500, "internal", "Could not encode the answer.");
        return;
    }
    sb_sandbox_send_text (req, 200, body, (size_t) len);
}

static void
s_create_task (sb_crm_t *crm, h2o_req_t *req)
{
    if (req->entity.base == NULL || req->entity.len == 0) {
        sb_sandbox_send_error (req, 400, "bad_request", "The body must be a JSON object.");
        return;
    }
    json_error_t jerr;
    json_t *input = json_loadb (req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object (input)) {
        json_decref (input);
        sb_sandbox_send_error (req, 400, "bad_request", "The body must be a JSON object.");
        return;
    }
    json_t *task;
    int status;
    char *message;
    if (sb_crm_create_task (crm, input, &task, &status, &message)) {
        sb_sandbox_send_error (req, status, status == 422 ? "validation_failed"
                                          : status == 409 ? "conflict" : "internal",
                               message? message: "The sandbox ran out of memory.");
        free (message);
    }
    else
        sb_sandbox_send_json (req, 201, json_incref (task));
    json_decref (input);
}

static void
s_method_not_allowed (h2o_req_t *req, const char *allow)
{
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen (allow));
    sb_sandbox_send_error (req, 405, "method_not_allowed", "This method is not allowed here.");
}

void
sb_sandbox_api_handle (sb_crm_t *crm, h2o_req_t *req, char **segments, size_t count,
                       uint64_t by_type [SB_CRM_TYPES])
{
    sb_crm_type_t type;
    if (count == 0 || count > 2 || sb_crm_type_parse (segments [0], strlen (segments [0]), &type)) {
        sb_sandbox_send_error (req, 404, "not_found", "There is no such API endpoint.");
        return;
    }
    by_type [type]++;
    bool get = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("GET"));
    bool post = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("POST"));
    if (count == 1) {
        if (get)
            s_search (crm, req, type);
        else
        if (post && type == SB_CRM_TASKS)
            s_create_task (crm, req);
        else
            s_method_not_allowed (req, type == SB_CRM_TASKS ? "GET, POST" : "GET");
        return;
    }
    if (!get) {
        s_method_not_allowed (req, "GET");
        return;
    }
    json_t *record = sb_crm_get (crm, type, segments [1]);
    if (!record) {
        char message [128];
        snprintf (message, sizeof message, "No %s with that ID exists.", sb_crm_type_noun (type));
        sb_sandbox_send_error (req, 404, "not_found", message);
        return;
    }
    sb_sandbox_send_json (req, 200, json_incref (record));
}
