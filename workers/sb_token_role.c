/*  workers/sb_token_role.c — the token role (see sb_token_role.h).

    The asynchronous connection lives on the worker's reactor
    (workers/sb_db_loop.h). A ping that the database does not answer in
    time is answered "unavailable" by the loop's guard timer; the query's
    late answer then finds no job. */
#include "sb_token_int.h"
#include "sb_conn.h"
#include "sb_connector.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_db.h"
#include "sb_log.h"
#include "sb_oauth_meta.h"
#include "sb_quota_sync.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_unavailable [] = "{\"pong\":false,\"role\":\"token\",\"db\":\"unavailable\"}";

static void
s_on_ping_result (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1) {
        char *end = NULL;
        errno = 0;
        long long count = strtoll (PQgetvalue (res, 0, 0), &end, 10);
        char text [128];
        snprintf (text, sizeof text,
                  "{\"pong\":true,\"role\":\"token\",\"db\":\"ok\",\"migrations\":%lld}",
                  errno || !end || *end ? -1LL : count);
        sb_worker_job_done (job_p, SB_STATUS_OK, text);
    }
    else {
        sb_log_warn ("db_unavailable", "ping: %s", error ? error : PQresultErrorMessage (res));
        sb_worker_job_done (job_p, SB_STATUS_OK, s_unavailable);
    }
}

static void
s_on_ping_give_up (sb_worker_job_t **job_p, void *arg)
{
    sb_log_warn ("db_unavailable", "ping: no answer from the database in time");
    sb_worker_job_done (job_p, SB_STATUS_OK, s_unavailable);
}

static void
s_ping (sb_token_role_t *self, sb_worker_job_t *job)
{
    if (sb_db_loop_jobs (self->db_loop) >= SB_MAX_TOKEN_PINGS) {
        sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
        return;
    }
    int64_t left = sb_clock_left_ms (sb_worker_job_deadline (job));
    int64_t wait = left - 20 < SB_TOKEN_PING_DB_MS ? left - 20 : SB_TOKEN_PING_DB_MS;
    int rc = sb_db_loop_job_query (self->db_loop, job, sb_clock_mono_ms () + (wait > 0 ? wait : 0),
                                   "SELECT count(*) FROM schema_migrations", 0, NULL,
                                   s_on_ping_result, s_on_ping_give_up, NULL);
    if (rc == -1)
        sb_worker_job_fail (&job, "out of memory");
    else
    if (rc)
        sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
}

//  ---------------------------------------------------------------------
//  What the modules share (sb_token_int.h)

int
sb_token_subkey (const sb_token_role_t *self, const char *purpose, uint8_t key [SB_TOKEN_SUBKEY_LEN])
{
    if (self->secret_len == 0 || !purpose)
        return -1;
    char label [96];
    int len = snprintf (label, sizeof label, "switchboard/%s", purpose);
    if (len < 0 || (size_t) len >= sizeof label)
        return -1;
    sb_hmac_sha256 (self->secret, self->secret_len, (const uint8_t *) label, (size_t) len, key);
    return 0;
}

int
sb_token_row_key_seal (const uint8_t box_key [SB_TOKEN_SUBKEY_LEN], const char *id,
                       const uint8_t *secret, size_t len, char *sealed_hex)
{
    uint8_t sealed [SB_TOKEN_MAX_ROW_KEY + SB_AEAD_OVERHEAD];
    size_t sealed_len = 0;
    if (!id || !secret || len > SB_TOKEN_MAX_ROW_KEY
    ||  sb_aead_seal (box_key, id, strlen (id), secret, len, sealed, len + SB_AEAD_OVERHEAD,
                      &sealed_len)
    ||  sealed_len != len + SB_AEAD_OVERHEAD)
        return -1;
    sb_hex_encode (sealed, sealed_len, sealed_hex);
    return 0;
}

int
sb_token_row_key_open (const uint8_t box_key [SB_TOKEN_SUBKEY_LEN], const char *id,
                       const char *sealed_hex, uint8_t *secret, size_t len)
{
    uint8_t sealed [SB_TOKEN_MAX_ROW_KEY + SB_AEAD_OVERHEAD];
    size_t sealed_len = 0, secret_len = 0;
    if (!id || !sealed_hex || len > SB_TOKEN_MAX_ROW_KEY
    ||  sb_hex_decode (sealed_hex, sealed, len + SB_AEAD_OVERHEAD, &sealed_len)
    ||  sealed_len != len + SB_AEAD_OVERHEAD)
        return -1;
    if (sb_aead_open (box_key, id, strlen (id), sealed, sealed_len, secret, len, &secret_len)
    ||  secret_len != len) {
        sb_crypto_wipe (secret, len);
        return -2;
    }
    return 0;
}

void
sb_token_wipe_free (char **text_p)
{
    if (*text_p) {
        sb_crypto_wipe (*text_p, strlen (*text_p));
        free (*text_p);
        *text_p = NULL;
    }
}

void
sb_token_fail_arg (sb_worker_job_t **job_p, const char *why, void *arg,
                   void (*free_arg) (void *arg))
{
    sb_worker_job_fail (job_p, why);
    if (free_arg)
        free_arg (arg);
}

//  A statement of sb_token_query in flight: the caller's answer and argument.
typedef struct {
    sb_db_loop_answer_fn *answer;
    void *arg;
    void (*free_arg) (void *arg);
} s_query_t;

static void
s_query_free (s_query_t *query)
{
    if (query->free_arg)
        query->free_arg (query->arg);
    free (query);
}

static void
s_on_query_answer (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_query_t query = *(s_query_t *) arg;
    free (arg);
    query.answer (job_p, res, error, query.arg);
}

static void
s_on_query_give_up (sb_worker_job_t **job_p, void *arg)
{
    sb_log_warn ("db_unavailable", "%s: no answer from the database in time",
                 sb_worker_job_spec (*job_p)->op);
    s_query_free (arg);
    sb_worker_job_fail (job_p, "the authorization server's database did not answer in time");
}

int
sb_token_query (sb_token_role_t *self, sb_worker_job_t *job, const char *sql, int nparams,
                const char *const *params, sb_db_loop_answer_fn *answer, void *arg,
                void (*free_arg) (void *arg))
{
    s_query_t *query = malloc (sizeof *query);
    if (query)
        *query = (s_query_t) { answer, arg, free_arg };
    const char *refusal = NULL;
    if (!query)
        refusal = "out of memory";
    else
    if (sb_db_loop_jobs (self->db_loop) >= SB_MAX_TOKEN_DB_JOBS) {
        sb_log_warn ("db_busy", "%s: %d jobs already wait for the database",
                     sb_worker_job_spec (job)->op, SB_MAX_TOKEN_DB_JOBS);
        refusal = "the authorization server is busy";
    }
    else {
        int64_t left = sb_clock_left_ms (sb_worker_job_deadline (job)) - SB_TOKEN_GUARD_MS;
        int rc = sb_db_loop_job_query (self->db_loop, job,
                                       sb_clock_mono_ms () + (left > 0 ? left : 0),
                                       sql, nparams, params, s_on_query_answer,
                                       s_on_query_give_up, query);
        if (rc == 0)
            return 0;
        refusal = rc == -1? "out of memory": "the authorization server's database is unavailable";
    }
    if (query)
        s_query_free (query);
    else
    if (free_arg)
        free_arg (arg);
    sb_worker_job_fail (&job, refusal);
    return -1;
}

bool
sb_token_query_abandon (sb_token_role_t *self, sb_worker_job_t *job)
{
    s_query_t *query = sb_db_loop_job_abandon (self->db_loop, job);
    if (!query)
        return false;
    //  A ping's query carries no s_query_t: its argument is NULL.
    s_query_free (query);
    return true;
}

int
sb_token_http_request (sb_worker_job_t **job_p, sb_http_request_t *request)
{
    const char *data = sb_worker_job_spec (*job_p)->data;
    const char *why = "the job carries no HTTP request";
    if (data && sb_http_request_decode (data, strlen (data), request, &why) == 0)
        return 0;
    sb_log_warn ("http_job_malformed", "%s: %s", sb_worker_job_spec (*job_p)->op, why);
    sb_worker_job_fail (job_p, why);
    return -1;
}

void
sb_token_http_answer (sb_worker_job_t **job_p, sb_http_response_t *response)
{
    char *text = sb_http_response_encode (response);
    if (text)
        sb_worker_job_done (job_p, SB_STATUS_OK, text);
    else
        sb_worker_job_fail (job_p, "the HTTP response could not be encoded");
    free (text);
    sb_http_response_clear (response);
}

void
sb_token_http_json (sb_worker_job_t **job_p, int status, const char *json)
{
    sb_http_response_t response = { .status = status };
    if (sb_http_response_add_header (&response, "content-type", "application/json")
    ||  sb_http_response_add_header (&response, "cache-control", "no-store")
    ||  sb_http_response_add_header (&response, "pragma", "no-cache")
    ||  sb_http_response_set_body (&response, json, strlen (json))) {
        sb_http_response_clear (&response);
        sb_worker_job_fail (job_p, "out of memory");
        return;
    }
    sb_token_http_answer (job_p, &response);
}

void
sb_token_http_oauth_error (sb_worker_job_t **job_p, const sb_oauth_error_t *error)
{
    json_t *doc = json_pack ("{s:s, s:s}", "error", sb_oauth_code_name (error->code),
                             "error_description", error->description);
    char *body = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    sb_http_response_t response = { .status = error->status };
    int rc = body? 0: -1;
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "content-type", "application/json");
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "cache-control", "no-store");
    if (rc == 0 && error->basic_challenge)
        rc = sb_http_response_add_header (&response, "www-authenticate",
                                          "Basic realm=\"switchboard\"");
    if (rc == 0)
        rc = sb_http_response_set_body (&response, body, strlen (body));
    free (body);
    if (rc) {
        sb_http_response_clear (&response);
        sb_worker_job_fail (job_p, "out of memory");
        return;
    }
    sb_token_http_answer (job_p, &response);
}

//  ---------------------------------------------------------------------
//  The role

static void
s_start (void *state, sb_worker_job_t *job)
{
    sb_token_role_t *self = state;
    const char *op = sb_worker_job_spec (job)->op;
    if (strcmp (op, "ping") == 0)
        s_ping (self, job);
    else
    if (strcmp (op, "oauth/authorize") == 0)
        sb_oauth_authorize_start (self, job);
    else
    if (strcmp (op, "oauth/token") == 0)
        sb_oauth_token (self, job);
    else
    if (strcmp (op, "oauth/revoke") == 0)
        sb_oauth_revoke (self, job);
    else
    if (strcmp (op, "oauth/jwks") == 0)
        sb_oauth_jwks (self, job);
    else
    if (strcmp (op, "admin/http") == 0)
        sb_admin_http (self, job);
    else
    if (strcmp (op, "audit/record") == 0)
        sb_audit_record (self, job);
    else
    if (strcmp (op, "oauth/register") == 0)
        sb_oauth_register (self, job);
    else
    if (strcmp (op, "connection/credential") == 0)
        sb_connections_credential (self, job);
    else
    if (strcmp (op, "connect/start") == 0)
        sb_connect_start (self, job);
    else
    if (strcmp (op, "connect/callback") == 0)
        sb_connect_callback (self, job);
    else
        sb_worker_job_fail_unknown_op (&job);
}

static void
s_abandon (void *state, sb_worker_job_t *job)
{
    sb_token_role_t *self = state;
    //  Each module that parks a job elsewhere (the hashing threads) adds
    //  its own check here.
    if (sb_oauth_authorize_abandon (self, job) || sb_admin_abandon (self, job)
    ||  sb_connections_abandon (self, job) || sb_connect_abandon (self, job)
    ||  sb_token_query_abandon (self, job))
        return;
    sb_cimd_abandon (self->cimd, job);      //  a lookup waiting on a metadata document
}

const sb_worker_role_t sb_token_role = { s_start, s_abandon };

//  Reads --secret-key-file (or, without one, the secret itself from
//  SB_SECRET_KEY) into self->secret. Returns 0 or -1 (logged).
static int
s_read_secret (sb_token_role_t *self, const char *path)
{
    char *why = NULL;
    char *secret = NULL;
    if (path && *path) {
        secret = sb_secret_read_file (path, &why);
        if (!secret) {
            sb_log_error ("secret_unreadable", "--secret-key-file: %s", why? why: "out of memory");
            free (why);
            return -1;
        }
    }
    else {
        const char *env = getenv ("SB_SECRET_KEY");
        if (!env || !*env)
            return 0;                   //  no secret: what needs one is refused
        secret = strndup (env, strcspn (env, "\r\n"));
        if (!secret)
            return -1;
    }
    size_t len = strlen (secret);
    int rc = -1;
    if (len < SB_MIN_TOKEN_SECRET_LEN || len > sizeof self->secret)
        sb_log_error ("secret_invalid", "--secret-key-file: its first line must be %d to %zu bytes, not %zu",
                      SB_MIN_TOKEN_SECRET_LEN, sizeof self->secret, len);
    else {
        memcpy (self->secret, secret, len);
        self->secret_len = len;
        rc = 0;
    }
    sb_secret_free (&secret);
    return rc;
}

sb_token_role_t *
sb_token_role_new (sb_worker_t *worker, const sb_token_config_t *config)
{
    if (!config->conninfo || !*config->conninfo) {
        sb_log_error ("db_missing", "--db (or SB_DATABASE_URL) is required with --role token");
        return NULL;
    }
    const char *issuer = config->issuer? config->issuer: "";
    if (*issuer && (!sb_oauth_issuer_valid (issuer) || strlen (issuer) + 4 > SB_OAUTH_MAX_URI)) {
        sb_log_error ("issuer_invalid", "--issuer \"%s\" must be an https URL without query, "
                      "fragment or trailing '/' (http only on a loopback host)", issuer);
        return NULL;
    }
    sb_token_role_t *self = calloc (1, sizeof (sb_token_role_t));
    if (!self)
        return NULL;
    self->worker = worker;
    if (*issuer) {
        snprintf (self->issuer, sizeof self->issuer, "%s", issuer);
        snprintf (self->resource, sizeof self->resource, "%s/mcp", issuer);
    }
    if (s_read_secret (self, config->secret_key_file))
        goto fail;
    //  The connectors: which ones keep each tenant's credential, and their
    //  OAuth providers (connections, sb_conn_*.c, sb_connect.c).
    if (config->connectors_dir && *config->connectors_dir) {
        char *error = NULL;
        self->connectors = sb_connectors_load (config->connectors_dir, &error);
        if (self->connectors && config->connector_urls
        &&  sb_connectors_set_base_urls (self->connectors, config->connector_urls)) {
            sb_log_error ("connector_urls_invalid", "--connector-urls \"%s\" names an unknown "
                          "connector or is malformed", config->connector_urls);
            goto fail;
        }
        if (!self->connectors) {
            sb_log_error ("connectors_invalid", "%s", error? error: "out of memory");
            free (error);
            goto fail;
        }
    }
    if (sb_db_prepare (config->conninfo, config->migrations_dir, SB_TOKEN_CONNECT_TIMEOUT_MS))
        goto fail;
    self->db_loop = sb_db_loop_new (sb_worker_reactor (worker), config->conninfo);
    self->offload = sb_offload_new (sb_worker_reactor (worker), config->hash_threads);
    self->conn_keys = sb_conn_keys_new ();
    if (self->db_loop)
        self->cimd = sb_cimd_new (sb_worker_reactor (worker), self->db_loop,
                                  config->cimd_allow_hosts, config->cimd_ca_file);
    if (!self->db_loop || !self->offload || !self->cimd || !self->conn_keys) {
        sb_log_error ("token_init_failed", "cannot set up the database connection or the hashing threads");
        goto fail;
    }
    //  Tenants' connections: the providers' token endpoints and the
    //  refreshes (sb_provider.c, sb_connections.c)
    self->provider = sb_provider_new (sb_worker_reactor (worker));
    if (self->provider)
        self->connections = sb_connections_new (self, config->refresh_window_s,
                                                config->refresh_sweep_ms);
    if (!self->provider || !self->connections) {
        sb_log_error ("token_init_failed", "cannot set up the connections' refreshes");
        goto fail;
    }
    //  The quota service: the broker's usage batches and its limits
    //  (proto/PROTOCOL.md "Quotas")
    int poll_ms = config->limits_poll_ms? config->limits_poll_ms: SB_LIMITS_POLL_MS;
    self->quota_sync = sb_quota_sync_new (worker, self->db_loop, (uint32_t) poll_ms);
    if (!self->quota_sync) {
        sb_log_error ("token_init_failed", "cannot set up the quota service (--limits-poll-ms "
                      "%d must be %d to %d)", poll_ms, SB_MIN_LIMITS_POLL_MS, SB_MAX_LIMITS_POLL_MS);
        goto fail;
    }
    sb_log_info ("token_ready", "database migrated (%s); issuer %s", config->migrations_dir,
                 *self->issuer? self->issuer: "(none: OAuth jobs are refused)");
    return self;
fail:
    sb_token_role_destroy (&self);
    return NULL;
}

void
sb_token_role_destroy (sb_token_role_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_token_role_t *self = *self_p;
    sb_offload_destroy (&self->offload);    //  hashing in flight ends first: its jobs are the worker's
    sb_cimd_drop_waiters (self->cimd);      //  the loop's shutdown may end a store: it answers no job
    sb_connections_stop (self->connections);    //  no sweep, no provider call; waiting jobs dropped
    sb_quota_sync_stop (self->quota_sync);  //  no poll, no USAGE: its statements only release
    sb_db_loop_destroy (&self->db_loop);    //  jobs still waiting stay the worker's
    sb_connections_destroy (&self->connections);    //  after the loop: its statements are answered
    sb_quota_sync_destroy (&self->quota_sync);  //  after the loop: its statements are answered
    sb_provider_destroy (&self->provider);
    sb_cimd_destroy (&self->cimd);          //  after the loop: a document being stored is answered
    sb_conn_keys_destroy (&self->conn_keys);    //  after the loop: a key read ending reads the ring
    sb_oauth_register_destroy (self);
    sb_crypto_wipe (self->secret, sizeof self->secret);
    sb_oauth_keys_forget (self);
    sb_connectors_destroy (&self->connectors);
    free (self);
    *self_p = NULL;
}
