/*  workers/sb_oauth_register.c — oauth/register: RFC 7591 dynamic client
    registration, the stateful half (the checks are the pure core's
    sb_oauth_register_validate, oauth/sb_oauth_meta.h).

    A valid request becomes an oauth_clients row of kind `registered`
    under a random client ID; a confidential client (client_secret_basic
    or client_secret_post) also gets a random secret, answered once in the
    201 and stored only as its SHA-256. ChatGPT's clients need nothing
    more: sb_oauth_client_find derives `chatgpt` from the stored redirect
    URIs, so a client that registered one of ChatGPT's is also accepted on
    its other forms at /authorize.

    Registration is open to anyone (that is its point), so each remote
    address may register at most SB_REGISTER_PER_WINDOW times per
    SB_REGISTER_WINDOW_MS, counted in memory per worker (a farm of N token
    workers allows up to N times that); past it the answer is HTTP 429
    with Retry-After. Clients are global, not a tenant's: a registration
    is logged to the process log (client_registered), never the secret. */
#include "sb_token_int.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_oauth_clients.h"
#include "sb_oauth_meta.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_REGISTER_PER_WINDOW      10      /* registrations one remote address may ask for… */
#define SB_REGISTER_WINDOW_MS       60000   /* …in this long */
#define SB_REGISTER_ADDRESSES       1024    /* addresses counted at once; the oldest count goes first */
#define SB_REGISTER_ID_BYTES        18      /* random bytes of a client ID (24 base64url chars) */
#define SB_REGISTER_SECRET_BYTES    32      /* random bytes of a client secret (43 chars) */
#define SB_REGISTER_ID_PREFIX       "sbc_"  /* never "https://": not a metadata document URL */

typedef struct {
    char remote [SB_HTTP_MAX_REMOTE + 1];
    int64_t since;                  /* monotonic ms the window began; 0: free slot */
    uint32_t count;                 /* requests in the window */
} s_count_t;

struct _sb_register_limit_t {
    s_count_t counts [SB_REGISTER_ADDRESSES];
};

//  Counts a request from `remote`. Returns 0 when within the limit, or
//  the seconds until the window ends (for Retry-After).
static long
s_limit (sb_token_role_t *self, const char *remote)
{
    if (!self->register_limit)
        self->register_limit = calloc (1, sizeof (sb_register_limit_t));
    if (!self->register_limit)
        return 1;                   //  no memory: refuse, briefly
    int64_t now = sb_clock_mono_ms ();
    s_count_t *slot = NULL;
    s_count_t *free_slot = NULL;
    s_count_t *oldest = NULL;
    for (size_t at = 0; at < SB_REGISTER_ADDRESSES && !slot; at++) {
        s_count_t *count = &self->register_limit->counts [at];
        if (count->since && now - count->since >= SB_REGISTER_WINDOW_MS)
            count->since = 0;       //  expired: free
        if (!count->since) {
            if (!free_slot)
                free_slot = count;
        }
        else
        if (strcmp (count->remote, remote) == 0)
            slot = count;
        else
        if (!oldest || count->since < oldest->since)
            oldest = count;
    }
    if (!slot) {
        slot = free_slot? free_slot: oldest;
        snprintf (slot->remote, sizeof slot->remote, "%s", remote);
        slot->since = now;
        slot->count = 0;
    }
    if (slot->count >= SB_REGISTER_PER_WINDOW)
        return (long) ((slot->since + SB_REGISTER_WINDOW_MS - now + 999) / 1000);
    slot->count++;
    return 0;
}

void
sb_oauth_register_destroy (sb_token_role_t *self)
{
    free (self->register_limit);
    self->register_limit = NULL;
}

//  A registration being stored: the answer without client_id_issued_at,
//  and what to log.
typedef struct {
    json_t *answer;                 /* the metadata and client ID */
    char secret [SB_REGISTER_SECRET_BYTES * 2];     /* "" for a public client; wiped when freed */
    char client_id [sizeof SB_REGISTER_ID_PREFIX + 32];
    char remote [SB_HTTP_MAX_REMOTE + 1];
} s_register_t;

static void
s_register_free (void *arg)
{
    s_register_t *reg = arg;
    sb_crypto_wipe (reg->secret, sizeof reg->secret);
    json_decref (reg->answer);
    free (reg);
}

static void
s_refuse (sb_worker_job_t **job_p, sb_oauth_code_t code, const char *description)
{
    sb_oauth_error_t error = { .code = code, .status = 400 };
    snprintf (error.description, sizeof error.description, "%s", description);
    sb_token_http_oauth_error (job_p, &error);
}

//  HTTP 429: RFC 7591 has no error for it; the body says invalid_request.
static void
s_too_many (sb_worker_job_t **job_p, long retry_after_s)
{
    char seconds [24];
    snprintf (seconds, sizeof seconds, "%ld", retry_after_s);
    static const char body [] = "{\"error\":\"invalid_request\",\"error_description\":"
                                "\"Too many registrations from this address; retry later.\"}";
    sb_http_response_t response = { .status = 429 };
    if (sb_http_response_add_header (&response, "content-type", "application/json")
    ||  sb_http_response_add_header (&response, "cache-control", "no-store")
    ||  sb_http_response_add_header (&response, "retry-after", seconds)
    ||  sb_http_response_set_body (&response, body, strlen (body))) {
        sb_http_response_clear (&response);
        sb_worker_job_fail (job_p, "out of memory");
        return;
    }
    sb_token_http_answer (job_p, &response);
}

static void
s_on_stored (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_register_t *reg = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "registering a client: %s", error? error: PQresultErrorMessage (res));
        s_register_free (reg);
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return;
    }
    char *end = NULL;
    long long issued_at = strtoll (PQgetvalue (res, 0, 0), &end, 10);
    char *body = NULL;
    int rc = end && !*end? 0: -1;
    if (rc == 0)
        rc = json_object_set_new (reg->answer, "client_id_issued_at", json_integer (issued_at));
    //  The secret joins the answer only now, once, and is never stored
    if (rc == 0 && reg->secret [0])
        rc = json_object_set_new (reg->answer, "client_secret", json_string (reg->secret))
           | json_object_set_new (reg->answer, "client_secret_expires_at", json_integer (0));
    if (rc == 0)
        body = sb_json_dump (reg->answer, NULL);
    if (!body) {
        s_register_free (reg);
        sb_worker_job_fail (job_p, "out of memory");
        return;
    }
    json_t *method = json_object_get (reg->answer, "token_endpoint_auth_method");
    json_t *uris = json_object_get (reg->answer, "redirect_uris");
    sb_log_info ("client_registered", "client_id=%s auth=%s redirect_uris=%zu remote=%s",
                 reg->client_id, json_string_value (method), json_array_size (uris),
                 reg->remote [0]? reg->remote: "-");
    sb_token_http_json (job_p, 201, body);
    sb_crypto_wipe (body, strlen (body));
    free (body);
    s_register_free (reg);
}

//  The metadata as answered and stored (RFC 7591 §3.2.1), without the
//  client ID and secret.
static json_t *
s_metadata_json (const sb_oauth_client_metadata_t *metadata)
{
    json_t *doc = json_object ();
    json_t *uris = json_array ();
    json_t *grants = json_array ();
    int rc = doc && uris && grants? 0: -1;
    for (size_t at = 0; rc == 0 && at < metadata->redirect_uri_count; at++)
        rc = json_array_append_new (uris, json_string (metadata->redirect_uris [at]));
    if (rc == 0)
        rc = json_array_append_new (grants, json_string ("authorization_code"));
    if (rc == 0 && (metadata->grants & SB_OAUTH_GRANT_BIT_REFRESH))
        rc = json_array_append_new (grants, json_string ("refresh_token"));
    if (rc == 0)
        rc = json_object_set (doc, "redirect_uris", uris)
           | json_object_set_new (doc, "token_endpoint_auth_method",
                                  json_string (sb_oauth_auth_name (metadata->auth)))
           | json_object_set (doc, "grant_types", grants)
           | json_object_set_new (doc, "response_types", json_pack ("[s]", "code"));
    if (rc == 0 && metadata->client_name [0])
        rc = json_object_set_new (doc, "client_name", json_string (metadata->client_name));
    if (rc == 0 && metadata->scope [0])
        rc = json_object_set_new (doc, "scope", json_string (metadata->scope));
    json_decref (uris);
    json_decref (grants);
    if (rc) {
        json_decref (doc);
        return NULL;
    }
    return doc;
}

//  Stores the client of `metadata` for `job` and answers 201 when stored.
static void
s_store (sb_token_role_t *self, sb_worker_job_t *job, const sb_oauth_client_metadata_t *metadata,
         const char *remote)
{
    static const char sql [] =
        "INSERT INTO oauth_clients (client_id, kind, client_name, redirect_uris,"
        "       token_endpoint_auth_method, client_secret_hash, scope, metadata)"
        " VALUES ($1, 'registered', $2, ARRAY (SELECT jsonb_array_elements_text ($3::jsonb)),"
        "         $4, decode ($5, 'hex'), $6, $7::jsonb)"
        " RETURNING extract (epoch FROM created_at)::bigint";
    s_register_t *reg = calloc (1, sizeof *reg);
    json_t *stored = s_metadata_json (metadata);
    char *stored_text = stored? sb_json_dump (stored, NULL): NULL;
    char *uris_text = stored? sb_json_dump (json_object_get (stored, "redirect_uris"), NULL): NULL;
    uint8_t raw [SB_REGISTER_SECRET_BYTES];
    char *id = NULL;
    char *secret = NULL;
    char digest_hex [2 * SB_OAUTH_SECRET_HASH_LEN + 1] = "";
    bool confidential = metadata->auth != SB_OAUTH_AUTH_NONE;
    int rc = reg && stored_text && uris_text? 0: -1;
    if (rc == 0)
        rc = sb_crypto_random (raw, SB_REGISTER_ID_BYTES);
    if (rc == 0)
        rc = (id = sb_base64url_encode (raw, SB_REGISTER_ID_BYTES))? 0: -1;
    if (rc == 0 && confidential)
        rc = sb_crypto_random (raw, SB_REGISTER_SECRET_BYTES);
    if (rc == 0 && confidential)
        rc = (secret = sb_base64url_encode (raw, SB_REGISTER_SECRET_BYTES))? 0: -1;
    sb_crypto_wipe (raw, sizeof raw);
    if (rc == 0 && secret) {
        uint8_t digest [SB_OAUTH_SECRET_HASH_LEN];
        sb_sha256 (secret, strlen (secret), digest);
        sb_hex_encode (digest, sizeof digest, digest_hex);
    }
    if (rc == 0) {
        snprintf (reg->client_id, sizeof reg->client_id, "%s%s", SB_REGISTER_ID_PREFIX, id);
        snprintf (reg->remote, sizeof reg->remote, "%s", remote);
        reg->answer = json_deep_copy (stored);
        rc = reg->answer
          && json_object_set_new (reg->answer, "client_id", json_string (reg->client_id)) == 0? 0: -1;
    }
    if (rc == 0 && secret)
        snprintf (reg->secret, sizeof reg->secret, "%s", secret);
    if (secret) {
        sb_crypto_wipe (secret, strlen (secret));
        free (secret);
    }
    free (id);
    json_decref (stored);
    if (rc) {
        free (stored_text);
        free (uris_text);
        if (reg)
            s_register_free (reg);
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    const char *params [] = {
        reg->client_id, metadata->client_name [0]? metadata->client_name: NULL, uris_text,
        sb_oauth_auth_name (metadata->auth), confidential? digest_hex: NULL,
        metadata->scope [0]? metadata->scope: NULL, stored_text
    };
    sb_token_query (self, job, sql, 7, params, s_on_stored, reg, s_register_free);
    free (stored_text);
    free (uris_text);
}

void
sb_oauth_register (sb_token_role_t *self, sb_worker_job_t *job)
{
    if (!*self->issuer) {
        sb_worker_job_fail (&job, "this token worker has no --issuer: OAuth is off");
        return;
    }
    sb_http_request_t request = { 0 };
    if (sb_token_http_request (&job, &request))
        return;
    const char *remote = request.remote? request.remote: "";
    long retry_after = 0;
    sb_oauth_register_outcome_t *outcome = NULL;
    if (strcmp (request.method, "POST") != 0)
        s_refuse (&job, SB_OAUTH_INVALID_REQUEST, "Registration is a POST of a JSON object.");
    else
    if ((retry_after = s_limit (self, remote)) > 0) {
        sb_log_warn ("register_limited", "remote=%s: more than %d registrations in %d ms",
                     remote, SB_REGISTER_PER_WINDOW, SB_REGISTER_WINDOW_MS);
        s_too_many (&job, retry_after);
    }
    else
    if (!(outcome = calloc (1, sizeof *outcome)))
        sb_worker_job_fail (&job, "out of memory");
    else {
        sb_oauth_register_validate (request.body? request.body: "", request.body_len,
                                    SB_OAUTH_SCOPES_SUPPORTED, outcome);
        if (outcome->kind == SB_OAUTH_VALID)
            s_store (self, job, &outcome->metadata, remote);
        else {
            sb_log_info ("register_refused", "remote=%s: %s", remote [0]? remote: "-",
                         outcome->error.description);
            sb_token_http_oauth_error (&job, &outcome->error);
        }
    }
    free (outcome);
    sb_http_request_clear (&request);
}
