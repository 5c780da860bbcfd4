/*  workers/sb_conn_admin.c — the admin API's connection routes (sb_conn.h;
    docs/ADMIN.md "Connections"; db/migrations/011):

      GET    /admin/tenants/{id}/connections              a tenant's connections, no secret
      PUT    /admin/tenants/{id}/connections/{connector}  {"api_key"}: store a tenant's API key
      DELETE /admin/tenants/{id}/connections/{connector}  forget a connection
      GET    /admin/connection-keys                       the data keys, rows under each
      POST   /admin/connection-keys/rotate                a new current data key
      POST   /admin/connection-keys/reseal[?limit=n]      re-seal rows under older keys
                                                          (webhook rows too)

    sb_admin.c routes these here (it matched the method and path and checked
    the query). An API key is sealed here, under the current data key with
    "<tenant>/<connector>/access" as associated data, and leaves only as
    ciphertext: no answer and no log line ever holds it.

    A reseal call reads up to `limit` rows under keys that are not current
    (key_reseal_batch, migration 018: connections, then webhook endpoints,
    then webhook subscriptions), opens and seals each again under the
    current key and writes it back with one statement per row that wins
    only while the row is the one read: a connection's version
    (connection_reseal), so a refresh or reconnect meanwhile keeps its
    own, newer credential; a webhook row's secret (webhook_reseal, an md5
    of its ciphertext), so a rotation meanwhile keeps its own. An
    endpoint's "secret" and "previous" are both re-sealed, a
    subscription's "secret". It stops SB_CONN_RESEAL_GUARD_MS before the
    job's deadline, then retires the keys no row of any table uses and
    answers what is left, so a caller loops until "remaining" is 0. */
#include "sb_conn.h"
#include "sb_admin_int.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_CONN_RESEAL_DEFAULT      100     /* rows one reseal call takes without ?limit */
#define SB_CONN_MAX_RESEAL          1000    /* rows one reseal call takes, at most */
#define SB_CONN_RESEAL_GUARD_MS     500     /* a reseal call stops this long before its deadline */
#define SB_CONN_MAX_CONNECTOR       64      /* a connector name, characters */

//  ---------------------------------------------------------------------
//  Checks (answers and the tenant's: sb_admin_int.h)

//  A connector name as connector files take it: 1-64 of A-Z a-z 0-9 "-".
static int
s_connector_check (sb_worker_job_t **job_p, const char *name)
{
    size_t len = strlen (name);
    bool ok = len >= 1 && len <= SB_CONN_MAX_CONNECTOR;
    for (size_t i = 0; ok && i < len; i++)
        ok = (name [i] >= 'a' && name [i] <= 'z') || (name [i] >= 'A' && name [i] <= 'Z')
          || (name [i] >= '0' && name [i] <= '9') || name [i] == '-';
    if (ok)
        return 0;
    sb_admin_refuse (job_p, 400, "invalid_request",
                     "a connector name is 1 to 64 characters of letters, digits and \"-\"");
    return -1;
}

//  A body that must be empty or {}. Returns 0, or -1 having answered 400.
static int
s_no_body (sb_worker_job_t **job_p, const sb_http_request_t *http)
{
    if (http->body_len == 0)
        return 0;
    json_t *body = sb_json_parse (http->body, http->body_len, JSON_REJECT_DUPLICATES, NULL);
    bool empty = json_is_object (body) && json_object_size (body) == 0;
    json_decref (body);
    if (empty)
        return 0;
    sb_admin_refuse (job_p, 400, "invalid_request", "this route takes no body (or {})");
    return -1;
}

//  ---------------------------------------------------------------------
//  A tenant's connections

static void
s_list (sb_token_role_t *self, sb_worker_job_t *job, const char *tenant)
{
    if (sb_admin_tenant_check (&job, tenant))
        return;
    const char *params [] = { tenant };
    sb_token_query (self, job, "SELECT admin_connections_list ($1)", 1, params, sb_admin_on_answer,
                    NULL, NULL);
}

static void
s_delete (sb_token_role_t *self, sb_worker_job_t *job, const char *tenant, const char *connector)
{
    if (sb_admin_tenant_check (&job, tenant) || s_connector_check (&job, connector))
        return;
    const char *params [] = { tenant, connector };
    sb_token_query (self, job, "SELECT admin_connection_delete ($1, $2)", 2, params,
                    sb_admin_on_answer, sb_unconst ("connection_deleted"), NULL);
}

//  An API key waiting for the current data key.
typedef struct {
    sb_token_role_t *self;
    char tenant [64];
    char connector [SB_CONN_MAX_CONNECTOR + 1];
    char *api_key;                  /* wiped and freed */
    size_t api_key_len;
} s_put_t;

static void
s_put_free (void *arg)
{
    s_put_t *put = arg;
    if (put->api_key)
        sb_crypto_wipe (put->api_key, put->api_key_len);
    free (put->api_key);
    free (put);
}

static void
s_on_put (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_put_free (arg);
    sb_admin_on_answer (job_p, res, error, sb_unconst ("connection_stored"));
}

static void
s_put_sealed (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    s_put_t *put = arg;
    size_t sealed_len = 0;
    uint8_t *sealed = sb_conn_seal (put->self, key_id, put->tenant, put->connector, "access",
                                    put->api_key, put->api_key_len, &sealed_len);
    char *sealed_text = sealed? sb_conn_bytea_text (sealed, sealed_len): NULL;
    free (sealed);
    if (!sealed_text) {
        s_put_free (put);
        sb_worker_job_fail (job_p, "the API key could not be sealed");
        return;
    }
    sb_crypto_wipe (put->api_key, put->api_key_len);
    const char *params [] = { put->tenant, put->connector, sealed_text, key_id };
    sb_token_query (put->self, *job_p, "SELECT admin_connection_put ($1, $2, $3::bytea, $4)", 4,
                    params, s_on_put, put, s_put_free);
    *job_p = NULL;
    free (sealed_text);
}

static void
s_put (sb_token_role_t *self, sb_worker_job_t *job, const sb_http_request_t *http,
       const char *tenant, const char *name)
{
    if (sb_admin_tenant_check (&job, tenant) || s_connector_check (&job, name))
        return;
    const sb_connector_t *connector = self->connectors? sb_connectors_find (self->connectors, name): NULL;
    if (!connector) {
        sb_admin_refusef (&job, 404, "not_found", "there is no connector \"%s\"%s", name,
                          self->connectors? "":
                          " (the token service was started without --connectors)");
        return;
    }
    sb_auth_type_t type = sb_connector_auth_type (connector);
    sb_credential_t credential = sb_connector_credential (connector);
    if (type == SB_AUTH_OAUTH2) {
        sb_admin_refusef (&job, 409, "conflict",
                          "connector \"%s\" signs in with OAuth, not an API key: "
                          "connect it at /connect/%s", name, name);
        return;
    }
    if (type == SB_AUTH_NONE || credential == SB_CREDENTIAL_NONE) {
        sb_admin_refusef (&job, 409, "conflict", "connector \"%s\" needs no credential", name);
        return;
    }
    if (credential == SB_CREDENTIAL_SHARED) {
        sb_admin_refusef (&job, 409, "conflict",
                          "connector \"%s\" uses one shared key for every tenant "
                          "(its auth.token_env): it keeps no tenant's key", name);
        return;
    }
    json_error_t error;
    json_t *body = sb_json_parse (http->body, http->body_len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (body)) {
        json_decref (body);
        sb_admin_refuse (&job, 400, "invalid_json",
                         "the body must be a JSON object {\"api_key\": \"…\"}");
        return;
    }
    const char *member;
    json_t *value;
    json_object_foreach (body, member, value)
        if (strcmp (member, "api_key") != 0) {
            sb_admin_refusef (&job, 400, "invalid_request",
                              "the body has an unknown member \"%.64s\"", member);
            json_decref (body);
            return;
        }
    json_t *key = json_object_get (body, "api_key");
    const char *text = json_string_value (key);
    size_t len = json_string_length (key);
    const char *refusal = NULL;
    if (!text)
        refusal = "\"api_key\" must be a string and is required";
    else
    if (len == 0)
        refusal = "\"api_key\" is empty";
    else
    if (len > SB_MAX_CONN_SECRET)
        refusal = "\"api_key\" is longer than 16384 bytes (SB_MAX_CONN_SECRET)";
    for (size_t i = 0; !refusal && i < len; i++)
        if ((unsigned char) text [i] < 0x20 || (unsigned char) text [i] == 0x7f)
            refusal = "\"api_key\" holds a control character or line break: it goes into an "
                      "HTTP header as it is";
    s_put_t *put = refusal? NULL: calloc (1, sizeof *put);
    if (put) {
        put->self = self;
        snprintf (put->tenant, sizeof put->tenant, "%s", tenant);
        snprintf (put->connector, sizeof put->connector, "%s", name);
        put->api_key = malloc (len + 1);
        put->api_key_len = len;
        if (put->api_key)
            memcpy (put->api_key, text, len + 1);
    }
    //  jansson keeps its copy until the object is freed: wipe it first.
    if (text)
        sb_crypto_wipe (sb_unconst (text), len);
    json_decref (body);
    if (refusal) {
        sb_admin_refuse (&job, 400, "invalid_request", refusal);
        return;
    }
    if (!put || !put->api_key) {
        if (put)
            s_put_free (put);
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    sb_conn_keys_ready (self, job, NULL, s_put_sealed, put, s_put_free);
}

//  ---------------------------------------------------------------------
//  The data keys

static void
s_keys_listed (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    sb_token_role_t *self = arg;
    sb_token_query (self, *job_p, "SELECT admin_connection_keys_list ()", 0, NULL,
                    sb_admin_on_answer, NULL, NULL);
    *job_p = NULL;
}

static void
s_on_rotated (sb_worker_job_t **job_p, const char *key_id, const char *previous,
              const char *error, void *arg)
{
    if (!key_id) {
        sb_admin_refuse (job_p, 503, "unavailable",
                         error? error: "the data key could not be rotated");
        return;
    }
    sb_admin_json (job_p, 200, json_pack ("{s:s, s:s?}", "current", key_id, "previous", previous));
}

//  A reseal call in progress: the rows read, the next one, the counts.
//  A row of key_reseal_batch: `kind` "connection" (owner its connector,
//  a/b access/refresh), "webhook" (owner "webhook:<id>", a/b
//  secret/previous) or "subscription" (owner "subscription:<id>", a its
//  secret); `version` what the write compares.
typedef struct {
    char *kind, *id, *tenant, *owner, *key_id, *version, *a, *b;
} s_row_t;

typedef struct {
    sb_token_role_t *self;
    char current [SB_CONN_KEY_ID_LEN * 2 + 1];
    int limit;                  /* rows to read */
    s_row_t *rows;
    int count;
    int next;
    int resealed;               /* rows written under the current key */
    int changed;                /* rows whose credential changed meanwhile (left as they are) */
    int failed;                 /* rows that do not open (logged) */
} s_reseal_t;

static void
s_reseal_free (void *arg)
{
    s_reseal_t *reseal = arg;
    for (int i = 0; reseal->rows && i < reseal->count; i++) {
        s_row_t *row = &reseal->rows [i];
        free (row->kind);
        free (row->id);
        free (row->tenant);
        free (row->owner);
        free (row->key_id);
        free (row->version);
        free (row->a);
        free (row->b);
    }
    free (reseal->rows);
    free (reseal);
}

static void s_reseal_next (sb_worker_job_t *job, s_reseal_t *reseal);

static void
s_on_settled (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_reseal_t *reseal = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_admin_db_failed (job_p, "connection keys settle", res, error);
        s_reseal_free (reseal);
        return;
    }
    //  retired: a PostgreSQL text array, {a,b} (key ids need no quoting).
    json_t *retired = json_array ();
    const char *list = PQgetvalue (res, 0, 2);
    size_t len = strlen (list);
    if (len >= 2 && list [0] == '{' && list [len - 1] == '}') {
        const char *p = list + 1;
        while (retired && *p && *p != '}') {
            size_t n = strcspn (p, ",}");
            if (n)
                json_array_append_new (retired, json_stringn (p, n));
            p += n + (p [n] == ','? 1: 0);
        }
    }
    long long remaining = strtoll (PQgetvalue (res, 0, 1), NULL, 10);
    sb_log_info ("connection_keys_resealed", "actor admin: %d rows re-sealed under %s, %d "
                 "changed meanwhile, %d do not open, %lld remain, %zu keys retired",
                 reseal->resealed, PQgetvalue (res, 0, 0), reseal->changed, reseal->failed,
                 remaining, json_array_size (retired));
    json_t *doc = json_pack ("{s:s?, s:i, s:i, s:i, s:I, s:o}",
                             "current", PQgetisnull (res, 0, 0)? NULL: PQgetvalue (res, 0, 0),
                             "resealed", reseal->resealed, "changed", reseal->changed,
                             "failed", reseal->failed, "remaining", (json_int_t) remaining,
                             "retired", retired);
    s_reseal_free (reseal);
    sb_admin_json (job_p, 200, doc);
}

static void
s_on_resealed (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_reseal_t *reseal = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_admin_db_failed (job_p, "connection reseal", res, error);
        s_reseal_free (reseal);
        return;
    }
    if (strcmp (PQgetvalue (res, 0, 0), "t") == 0)
        reseal->resealed++;
    else
        reseal->changed++;
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    s_reseal_next (job, reseal);
}

//  Opens one sealed column of `row` and seals it under the current key.
//  Returns 0 with *out a bytea text (NULL for a NULL column), or -1.
static int
s_reseal_column (s_reseal_t *reseal, const s_row_t *row, const char *column, const char *text,
                 char **out)
{
    *out = NULL;
    if (!text)
        return 0;
    size_t sealed_len = 0, resealed_len = 0;
    uint8_t *sealed = sb_conn_bytea_parse (text, &sealed_len);
    char *plain = sealed? sb_conn_open (reseal->self, row->key_id, row->tenant, row->owner,
                                        column, sealed, sealed_len): NULL;
    free (sealed);
    if (!plain)
        return -1;
    size_t plain_len = strlen (plain);
    uint8_t *resealed = sb_conn_seal (reseal->self, reseal->current, row->tenant, row->owner,
                                      column, plain, plain_len, &resealed_len);
    sb_crypto_wipe (plain, plain_len);
    free (plain);
    *out = resealed? sb_conn_bytea_text (resealed, resealed_len): NULL;
    free (resealed);
    return *out? 0: -1;
}

static void
s_reseal_next (sb_worker_job_t *job, s_reseal_t *reseal)
{
    while (reseal->next < reseal->count
       &&  sb_clock_left_ms (sb_worker_job_deadline (job)) > SB_CONN_RESEAL_GUARD_MS) {
        const s_row_t *row = &reseal->rows [reseal->next++];
        bool connection = strcmp (row->kind, "connection") == 0;
        char *a = NULL, *b = NULL;
        if (s_reseal_column (reseal, row, connection? "access": "secret", row->a, &a)
        ||  s_reseal_column (reseal, row, connection? "refresh": "previous", row->b, &b)) {
            if (connection)
                sb_log_error ("connection_unreadable", "connection %s (tenant %s, connector %s) "
                              "does not open under data key %s: it is left as it is", row->id,
                              row->tenant, row->owner, row->key_id);
            else
                sb_log_error ("webhook_unreadable", "%s %s (tenant %s) does not open under data "
                              "key %s: it is left as it is", row->kind, row->id, row->tenant,
                              row->key_id);
            reseal->failed++;
            free (a);
            free (b);
            continue;
        }
        if (connection) {
            const char *params [] = { row->id, row->version, row->key_id, reseal->current, a, b };
            sb_token_query (reseal->self, job, "SELECT connection_reseal ($1::bigint, $2::bigint, "
                            "$3, $4, $5::bytea, $6::bytea)", 6, params, s_on_resealed, reseal,
                            s_reseal_free);
        }
        else {
            const char *params [] = { row->kind, row->id, row->version, row->key_id,
                                      reseal->current, a, b };
            sb_token_query (reseal->self, job, "SELECT webhook_reseal ($1, $2, $3, $4, $5, "
                            "$6::bytea, $7::bytea)", 7, params, s_on_resealed, reseal,
                            s_reseal_free);
        }
        free (a);
        free (b);
        return;
    }
    sb_token_query (reseal->self, job, "SELECT current_id, remaining, retired"
                    "  FROM connection_keys_settle ()", 0, NULL, s_on_settled, reseal,
                    s_reseal_free);
}

static char *
s_value (const PGresult *res, int row, int column)
{
    return PQgetisnull (res, row, column)? NULL: strdup (PQgetvalue (res, row, column));
}

static void
s_on_batch (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_reseal_t *reseal = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQnfields (res) != 8) {
        sb_admin_db_failed (job_p, "connection reseal batch", res, error);
        s_reseal_free (reseal);
        return;
    }
    int count = PQntuples (res);
    reseal->rows = count? calloc ((size_t) count, sizeof *reseal->rows): NULL;
    bool ok = !count || reseal->rows;
    for (int i = 0; ok && i < count; i++) {
        s_row_t *row = &reseal->rows [i];
        reseal->count++;
        row->kind = s_value (res, i, 0);
        row->id = s_value (res, i, 1);
        row->tenant = s_value (res, i, 2);
        row->owner = s_value (res, i, 3);
        row->key_id = s_value (res, i, 4);
        row->version = s_value (res, i, 5);
        row->a = s_value (res, i, 6);
        row->b = s_value (res, i, 7);
        ok = row->kind && row->id && row->tenant && row->owner && row->key_id && row->version
          && (row->a || PQgetisnull (res, i, 6)) && (row->b || PQgetisnull (res, i, 7));
    }
    if (!ok) {
        s_reseal_free (reseal);
        sb_worker_job_fail (job_p, "out of memory");
        return;
    }
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    s_reseal_next (job, reseal);
}

//  The ring holds the current key and every key of the table: read the batch.
static void
s_reseal_ready (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    s_reseal_t *reseal = arg;
    snprintf (reseal->current, sizeof reseal->current, "%s", key_id);
    char limit [16];
    snprintf (limit, sizeof limit, "%d", reseal->limit);
    const char *params [] = { limit };
    sb_token_query (reseal->self, *job_p, "SELECT kind, id, tenant_id, owner, key_id, version,"
                    " a, b FROM key_reseal_batch ($1::int)", 1, params, s_on_batch, reseal,
                    s_reseal_free);
    *job_p = NULL;
}

static void
s_reseal (sb_token_role_t *self, sb_worker_job_t *job, const char *limit_text)
{
    long long limit;
    if (sb_admin_query_count (&job, "limit", limit_text, SB_CONN_RESEAL_DEFAULT,
                              SB_CONN_MAX_RESEAL, &limit))
        return;
    s_reseal_t *reseal = calloc (1, sizeof *reseal);
    if (!reseal) {
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    reseal->self = self;
    reseal->limit = (int) limit;
    sb_conn_keys_ready (self, job, NULL, s_reseal_ready, reseal, s_reseal_free);
}

//  ---------------------------------------------------------------------
//  Routing (sb_admin.c matched the method and the path)

void
sb_conn_admin_http (sb_token_role_t *self, sb_worker_job_t *job, const sb_http_request_t *http,
                    char *const *segments, size_t count, const char *limit)
{
    const char *method = http->method;
    bool keys = count >= 1 && strcmp (segments [0], "connection-keys") == 0;
    if (keys && count == 1 && strcmp (method, "GET") == 0)
        sb_conn_keys_ready (self, job, NULL, s_keys_listed, self, NULL);
    else
    if (keys && count == 2 && strcmp (segments [1], "rotate") == 0) {
        if (s_no_body (&job, http) == 0)
            sb_conn_keys_rotate (self, job, s_on_rotated, NULL, NULL);
    }
    else
    if (keys && count == 2 && strcmp (segments [1], "reseal") == 0) {
        if (s_no_body (&job, http) == 0)
            s_reseal (self, job, limit);
    }
    else
    if (!keys && count == 3 && strcmp (method, "GET") == 0)
        s_list (self, job, segments [1]);
    else
    if (!keys && count == 4 && strcmp (method, "PUT") == 0)
        s_put (self, job, http, segments [1], segments [3]);
    else
    if (!keys && count == 4 && strcmp (method, "DELETE") == 0)
        s_delete (self, job, segments [1], segments [3]);
    else
        sb_admin_refuse (&job, 404, "not_found", "there is no such admin route");
}
