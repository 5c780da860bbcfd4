/*  workers/sb_oauth_clients.c — OAuth clients for the token role's
    modules (sb_oauth_clients.h): one SELECT by client ID, its row read
    into a typed struct. oauth_clients is global: no tenant setting.

    A client ID that is an https URL is a metadata document's (sb_cimd.h):
    when it has no row, or its row's metadata_expires_at has passed, the
    document is resolved (fetched, checked, stored; one fetch per URL at a
    time) and the row read again. When the host cannot be reached, a row
    fetched less than SB_CIMD_MAX_STALE_S ago still serves; a document
    refused (bad URL, SSRF guard, too big, redirect, invalid) never does. */
#include "sb_oauth_clients.h"
#include "sb_cimd.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define S_STR(x)    S_STR2 (x)
#define S_STR2(x)   #x

//  Columns, in order: the redirect URIs as a JSON array (no text[] parsing
//  here), the secret digest as hex; for a metadata document whether the
//  cache is fresh, and whether it may still serve when its host is down.
static const char s_find_sql [] =
    "SELECT client_id, kind, client_name, array_to_json (redirect_uris)::text,"
    "       token_endpoint_auth_method, encode (client_secret_hash, 'hex'), scope,"
    "       revoked_at IS NOT NULL,"
    "       coalesce (metadata_expires_at > now (), false),"
    "       coalesce (metadata_fetched_at > now () - interval '" S_STR (SB_CIMD_MAX_STALE_S) " s', false)"
    "  FROM oauth_clients WHERE client_id = $1";

//  Where a lookup is.
typedef enum {
    S_FIRST = 1,            /* the first read */
    S_STORED,               /* the document was just stored: the row is it */
    S_UNREACHABLE           /* its host is down: a recent enough row serves */
} s_phase_t;

typedef struct {
    sb_token_role_t *role;
    sb_oauth_client_fn *cb;
    void *arg;
    void (*free_arg) (void *arg);   /* for `arg` when `cb` is not called */
    char *client_id;
    s_phase_t phase;
    bool had_row;           /* the first read found a (stale) document row */
} s_find_t;

//  Frees the lookup once `cb` has been called (or is about to be).
static void
s_find_drop (s_find_t *find)
{
    free (find->client_id);
    free (find);
}

//  Frees the lookup when `cb` will not be called: the job was ended for
//  want of the database, given up or abandoned. The caller's `arg` too.
static void
s_find_free (void *arg)
{
    s_find_t *find = arg;
    if (find->free_arg)
        find->free_arg (find->arg);
    s_find_drop (find);
}

static void s_query (s_find_t *find, sb_worker_job_t *job);

static void
s_row_clear (sb_oauth_client_row_t *row)
{
    free (row->client_id);
    free (row->kind);
    free (row->client_name);
    for (size_t at = 0; at < row->redirect_uri_count; at++)
        free (row->redirect_uris [at]);
    free (row->auth_method);
    free (row->scope);
    sb_crypto_wipe (row, sizeof *row);
}

//  A copy of column `col` of row 0, or NULL when it is NULL (or no memory).
static char *
s_column (const PGresult *res, int col)
{
    return PQgetisnull (res, 0, col)? NULL: strdup (PQgetvalue (res, 0, col));
}

//  Reads row 0 of `res` into `row`. Returns 0, or -1 on a row this code
//  cannot read (it would be a schema mismatch).
static int
s_row_read (const PGresult *res, sb_oauth_client_row_t *row)
{
    memset (row, 0, sizeof *row);
    row->client_id = s_column (res, 0);
    row->kind = s_column (res, 1);
    row->client_name = s_column (res, 2);
    row->auth_method = s_column (res, 4);
    row->scope = s_column (res, 6);
    row->revoked = strcmp (PQgetvalue (res, 0, 7), "t") == 0;
    row->fresh = strcmp (PQgetvalue (res, 0, 8), "t") == 0;
    row->usable_stale = strcmp (PQgetvalue (res, 0, 9), "t") == 0;
    if (!row->client_id || !row->kind || !row->auth_method)
        return -1;
    const char *uris = PQgetvalue (res, 0, 3);
    json_t *array = sb_json_parse (uris, strlen (uris), 0, NULL);
    size_t index;
    json_t *uri;
    int rc = json_is_array (array) && json_array_size (array) >= 1
          && json_array_size (array) <= SB_OAUTH_MAX_REDIRECT_URIS? 0: -1;
    if (rc == 0)
        json_array_foreach (array, index, uri) {
            row->redirect_uris [index] = json_is_string (uri)? strdup (json_string_value (uri)): NULL;
            if (!row->redirect_uris [index]) {
                rc = -1;
                break;
            }
            row->redirect_uri_count = index + 1;
            row->chatgpt = row->chatgpt || sb_oauth_chatgpt_redirect (row->redirect_uris [index]);
        }
    json_decref (array);
    if (rc == 0 && !PQgetisnull (res, 0, 5)) {
        size_t len = 0;
        rc = sb_hex_decode (PQgetvalue (res, 0, 5), row->secret_hash, sizeof row->secret_hash, &len) == 0
          && len == SB_OAUTH_SECRET_HASH_LEN? 0: -1;
        row->has_secret = rc == 0;
    }
    return rc;
}

//  Ends the lookup with `client` (or NULL) and `error`.
static void
s_finish (s_find_t *find, sb_worker_job_t **job_p, const sb_oauth_client_row_t *client,
          const char *error)
{
    sb_oauth_client_fn *cb = find->cb;
    void *arg = find->arg;
    s_find_drop (find);
    cb (job_p, client, error, arg);
}

static void
s_on_resolved (sb_worker_job_t **job_p, sb_cimd_outcome_t outcome, const char *why, void *arg)
{
    s_find_t *find = arg;
    if (outcome == SB_CIMD_STORED || (outcome == SB_CIMD_UNREACHABLE && find->had_row)) {
        find->phase = outcome == SB_CIMD_STORED? S_STORED: S_UNREACHABLE;
        sb_worker_job_t *job = *job_p;
        *job_p = NULL;
        s_query (find, job);
        return;
    }
    sb_log_warn ("cimd_client_unknown", "%s: %s; no usable cached document: the client is unknown",
                 find->client_id, why);
    s_finish (find, job_p, NULL, NULL);
}

//  Resolves the metadata document of the lookup's client ID.
static void
s_resolve (s_find_t *find, sb_worker_job_t **job_p)
{
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    sb_cimd_resolve (find->role->cimd, job, find->client_id, s_on_resolved, find, s_find_free);
}

static void
s_on_found (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_find_t *find = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK) {
        const char *why = error? error: PQresultErrorMessage (res);
        sb_log_warn ("db_error", "oauth client lookup: %s", why);
        s_finish (find, job_p, NULL, "the authorization server's database failed");
        return;
    }
    bool metadata_url = strncmp (find->client_id, "https://", 8) == 0;
    if (PQntuples (res) == 0) {
        if (find->phase == S_FIRST && metadata_url)
            s_resolve (find, job_p);
        else
            s_finish (find, job_p, NULL, NULL);
        return;
    }
    sb_oauth_client_row_t row;
    if (s_row_read (res, &row)) {
        sb_log_error ("client_unreadable", "an oauth_clients row could not be read");
        s_row_clear (&row);
        s_finish (find, job_p, NULL, "the authorization server's client record is unreadable");
        return;
    }
    bool document = strcmp (row.kind, "metadata_document") == 0 && !row.revoked;
    if (document && find->phase == S_FIRST && !row.fresh) {
        find->had_row = true;
        s_row_clear (&row);
        s_resolve (find, job_p);
        return;
    }
    bool serve = !row.revoked;
    if (document && find->phase == S_UNREACHABLE) {
        serve = row.usable_stale;
        if (serve)
            sb_log_warn ("cimd_stale", "%s: its host is unreachable; the cached document serves",
                         find->client_id);
        else
            sb_log_warn ("cimd_client_unknown", "%s: its host is unreachable and the cached "
                         "document is older than %d s: the client is unknown",
                         find->client_id, SB_CIMD_MAX_STALE_S);
    }
    s_finish (find, job_p, serve? &row: NULL, NULL);
    s_row_clear (&row);
}

static void
s_query (s_find_t *find, sb_worker_job_t *job)
{
    const char *params [] = { find->client_id };
    sb_token_query (find->role, job, s_find_sql, 1, params, s_on_found, find, s_find_free);
}

void
sb_oauth_client_find (sb_token_role_t *self, sb_worker_job_t *job, const char *client_id,
                      sb_oauth_client_fn *cb, void *arg)
{
    sb_oauth_client_find_owned (self, job, client_id, cb, arg, NULL);
}

void
sb_oauth_client_find_owned (sb_token_role_t *self, sb_worker_job_t *job, const char *client_id,
                            sb_oauth_client_fn *cb, void *arg, void (*free_arg) (void *arg))
{
    s_find_t *find = calloc (1, sizeof *find);
    if (find)
        *find = (s_find_t) { self, cb, arg, free_arg, strdup (client_id), S_FIRST, false };
    if (!find || !find->client_id) {
        free (find);
        if (free_arg)
            free_arg (arg);
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    s_query (find, job);
}

void
sb_oauth_client_view (const sb_oauth_client_row_t *row, sb_oauth_client_t *view)
{
    view->client_id = row->client_id;
    view->redirect_uris = (const char *const *) row->redirect_uris;
    view->redirect_uri_count = row->redirect_uri_count;
    view->scope = row->scope;
    view->chatgpt = row->chatgpt;
}

bool
sb_oauth_client_secret_ok (const sb_oauth_client_row_t *row, const char *secret)
{
    if (!row->has_secret || !secret)
        return false;
    uint8_t digest [SB_OAUTH_SECRET_HASH_LEN];
    sb_sha256 (secret, strlen (secret), digest);
    bool ok = sb_crypto_equal (digest, row->secret_hash, sizeof digest);
    sb_crypto_wipe (digest, sizeof digest);
    return ok;
}
