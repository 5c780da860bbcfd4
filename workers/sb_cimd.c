/*  workers/sb_cimd.c — Client ID Metadata Documents (see sb_cimd.h).

    One s_flight_t per URL being resolved: its curl easy handle, the body
    so far, the Cache-Control max-age, what the SSRF guard refused, and
    the jobs waiting on it. A flight ends in one place (s_flight_end),
    which unlinks it first and then answers its waiters, so a waiter that
    asks again starts a new flight. Storing the document is a statement of
    the role's database loop without a job (sb_db_loop_query): it belongs
    to the flight, not to any one of its jobs, any of which the worker may
    abandon. */
#include "sb_cimd.h"
#include "sb_curl_loop.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_oauth.h"
#include "sb_oauth_meta.h"
#include "sb_ssrf.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_WHY   512     /* bytes of a refusal sentence */

typedef struct {
    sb_worker_job_t *job;
    sb_cimd_fn *cb;
    void *arg;
    void (*free_arg) (void *arg);
} s_waiter_t;

typedef struct _s_flight_t s_flight_t;
struct _s_flight_t {
    s_flight_t *next;               /* the fetcher's list */
    sb_cimd_t *cimd;                /* the fetcher (borrowed) */
    char *url;                      /* the client ID */
    CURL *easy;                     /* the transfer, NULL once done */
    struct curl_slist *headers;     /* request headers */
    char body [SB_CIMD_MAX_BYTES + 1];
    size_t body_len;
    bool too_big;                   /* the body passed SB_CIMD_MAX_BYTES */
    long max_age;                   /* Cache-Control max-age, -1: none given */
    sb_ssrf_guard_t guard;          /* the SSRF guard's check of this transfer */
    char errbuf [CURL_ERROR_SIZE];  /* curl's error text */
    s_waiter_t waiters [SB_CIMD_MAX_WAITERS];
    size_t waiter_count;
};

struct _sb_cimd_t {
    sb_reactor_t *reactor;          /* the worker's loop (borrowed) */
    sb_db_loop_t *db_loop;          /* the role's database loop (borrowed) */
    sb_curl_loop_t *curl;           /* fetches */
    char *ca_file;                  /* --cimd-ca-file, NULL: the system's */
    sb_ssrf_t *ssrf;                /* the SSRF guard's rules, --cimd-allow-hosts */
    s_flight_t *flights;            /* in flight (fetching or storing) */
    size_t flight_count;
    unsigned long fetches;          /* started, ever */
};

//  One statement: the row is the cache. A client ID that another kind of
//  client holds is never overwritten; a revoked document stays revoked.
static const char s_store_sql [] =
    "INSERT INTO oauth_clients (client_id, kind, client_name, redirect_uris,"
    "       token_endpoint_auth_method, scope, metadata, metadata_fetched_at, metadata_expires_at)"
    " VALUES ($1, 'metadata_document', $2, ARRAY (SELECT jsonb_array_elements_text ($3::jsonb)),"
    "         'none', $4, $5::jsonb, now (), now () + make_interval (secs => $6::int))"
    " ON CONFLICT (client_id) DO UPDATE SET client_name = EXCLUDED.client_name,"
    "       redirect_uris = EXCLUDED.redirect_uris, token_endpoint_auth_method = 'none',"
    "       client_secret_hash = NULL, scope = EXCLUDED.scope, metadata = EXCLUDED.metadata,"
    "       metadata_fetched_at = EXCLUDED.metadata_fetched_at,"
    "       metadata_expires_at = EXCLUDED.metadata_expires_at"
    "  WHERE oauth_clients.kind = 'metadata_document'"
    " RETURNING 1";

bool
sb_cimd_address_allowed (const sb_cimd_t *self, const struct sockaddr *addr)
{
    return sb_ssrf_address_allowed (self? self->ssrf: NULL, addr);
}

//  ---------------------------------------------------------------------
//  The URL

bool
sb_cimd_url_valid (const char *url)
{
    size_t len = strlen (url);
    if (len > SB_OAUTH_MAX_CLIENT_ID || strncmp (url, "https://", 8) != 0)
        return false;
    for (const unsigned char *p = (const unsigned char *) url; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == '#' || *p == '\\')
            return false;
    const char *authority = url + 8;
    size_t authority_len = strcspn (authority, "/?");
    if (authority_len == 0 || memchr (authority, '@', authority_len)
    ||  authority [authority_len] != '/')
        return false;
    //  A path beyond "/", without "." or ".." segments (the draft's §3)
    const char *path = authority + authority_len;
    size_t path_len = strcspn (path, "?");
    if (path_len <= 1)
        return false;
    const char *segment = path + 1;
    while (segment <= path + path_len) {
        size_t n = strcspn (segment, "/?");
        if ((n == 1 && segment [0] == '.') || (n == 2 && segment [0] == '.' && segment [1] == '.'))
            return false;
        segment += n + 1;
    }
    return sb_oauth_redirect_uri_valid (url);   //  host and port as for redirect URIs
}

//  ---------------------------------------------------------------------
//  Flights

static void
s_flight_free (s_flight_t *flight)
{
    if (flight->easy) {
        curl_multi_remove_handle (sb_curl_loop_multi (flight->cimd->curl), flight->easy);
        curl_easy_cleanup (flight->easy);
    }
    curl_slist_free_all (flight->headers);
    free (flight->url);
    free (flight);
}

static void
s_flight_unlink (s_flight_t *flight)
{
    sb_cimd_t *self = flight->cimd;
    for (s_flight_t **at = &self->flights; *at; at = &(*at)->next)
        if (*at == flight) {
            *at = flight->next;
            self->flight_count--;
            return;
        }
}

//  Ends `flight`: unlinks it, then answers every job still waiting.
static void
s_flight_end (s_flight_t *flight, sb_cimd_outcome_t outcome, const char *why)
{
    s_flight_unlink (flight);
    char reason [S_MAX_WHY];
    snprintf (reason, sizeof reason, "%s", why? why: "");
    if (outcome != SB_CIMD_STORED)
        sb_log_warn ("cimd_refused", "%s: %s (%s)", flight->url, reason,
                     outcome == SB_CIMD_UNREACHABLE? "unreachable: a recent cached document may serve"
                                                   : "refused: the client is unknown");
    s_waiter_t waiters [SB_CIMD_MAX_WAITERS];
    size_t count = flight->waiter_count;
    memcpy (waiters, flight->waiters, count * sizeof waiters [0]);
    flight->waiter_count = 0;
    s_flight_free (flight);
    for (size_t at = 0; at < count; at++) {
        sb_worker_job_t *job = waiters [at].job;
        waiters [at].cb (&job, outcome, reason, waiters [at].arg);
    }
}

static void
s_on_stored (const PGresult *res, const char *error, void *arg)
{
    s_flight_t *flight = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK) {
        sb_log_warn ("db_error", "storing the metadata document of %s: %s", flight->url,
                     error? error: PQresultErrorMessage (res));
        s_flight_end (flight, SB_CIMD_UNREACHABLE, "the document could not be stored");
        return;
    }
    if (PQntuples (res) != 1) {
        s_flight_end (flight, SB_CIMD_REFUSED, "another kind of client holds this client ID");
        return;
    }
    sb_log_info ("cimd_stored", "%s: metadata document cached for %ld s", flight->url, flight->max_age);
    s_flight_end (flight, SB_CIMD_STORED, NULL);
}

//  Checks the body as a metadata document for the flight's URL and, when
//  it is one, queues the statement that stores it. Returns 0 (stored or
//  storing), or -1 with `why` filled.
static int
s_store (s_flight_t *flight, char *why, size_t why_size)
{
    json_t *doc = sb_json_parse (flight->body, flight->body_len, JSON_REJECT_DUPLICATES, NULL);
    sb_oauth_register_outcome_t *outcome = calloc (1, sizeof *outcome);
    char *text = NULL;
    char *uris_text = NULL;
    int rc = -1;
    if (!outcome) {
        snprintf (why, why_size, "out of memory");
        goto out;
    }
    if (!json_is_object (doc)) {
        snprintf (why, why_size, "the document is not a JSON object");
        goto out;
    }
    const char *client_id = json_string_value (json_object_get (doc, "client_id"));
    if (!client_id || strcmp (client_id, flight->url) != 0) {
        snprintf (why, why_size, "the document's client_id is not its URL");
        goto out;
    }
    const char *name = json_string_value (json_object_get (doc, "client_name"));
    if (!name || !*name) {
        snprintf (why, why_size, "the document has no client_name (MCP 2025-11-25 requires it)");
        goto out;
    }
    if (json_object_get (doc, "client_secret") || json_object_get (doc, "client_secret_expires_at")) {
        snprintf (why, why_size, "a metadata document must not carry a client secret");
        goto out;
    }
    json_t *method = json_object_get (doc, "token_endpoint_auth_method");
    if (!method)
        json_object_set_new (doc, "token_endpoint_auth_method", json_string ("none"));
    else
    if (!json_is_string (method) || strcmp (json_string_value (method), "none") != 0) {
        snprintf (why, why_size, "token_endpoint_auth_method must be none (private_key_jwt is not "
                  "supported, and a public document cannot hold a shared secret)");
        goto out;
    }
    size_t len = 0;
    text = sb_json_dump (doc, &len);
    if (!text) {
        snprintf (why, why_size, "out of memory");
        goto out;
    }
    sb_oauth_register_validate (text, len, SB_OAUTH_SCOPES_SUPPORTED, outcome);
    if (outcome->kind != SB_OAUTH_VALID) {
        snprintf (why, why_size, "%s: %s", sb_oauth_code_name (outcome->error.code),
                  outcome->error.description);
        goto out;
    }
    const sb_oauth_client_metadata_t *metadata = &outcome->metadata;
    json_t *uris = json_array ();
    for (size_t at = 0; uris && at < metadata->redirect_uri_count; at++)
        json_array_append_new (uris, json_string (metadata->redirect_uris [at]));
    uris_text = uris? sb_json_dump (uris, NULL): NULL;
    json_decref (uris);
    if (!uris_text) {
        snprintf (why, why_size, "out of memory");
        goto out;
    }
    char max_age [24];
    snprintf (max_age, sizeof max_age, "%ld", flight->max_age);
    const char *params [] = {
        flight->url, metadata->client_name [0]? metadata->client_name: NULL, uris_text,
        metadata->scope [0]? metadata->scope: NULL, text, max_age
    };
    if (sb_db_loop_query (flight->cimd->db_loop, s_store_sql, 6, params, s_on_stored, flight)) {
        snprintf (why, why_size, "the authorization server's database is busy");
        goto out;
    }
    rc = 0;
out:
    free (uris_text);
    free (text);
    free (outcome);
    json_decref (doc);
    return rc;
}

//  Cache-Control's max-age clamped to the limits; no-store and no-cache
//  mean the shortest.
static long
s_clamp_age (long age)
{
    if (age < 0)
        return SB_CIMD_DEFAULT_CACHE_S;
    if (age < SB_CIMD_MIN_CACHE_S)
        return SB_CIMD_MIN_CACHE_S;
    return age > SB_CIMD_MAX_CACHE_S? SB_CIMD_MAX_CACHE_S: age;
}

static void
s_on_done (CURL *easy, CURLcode code, void *arg)
{
    sb_cimd_t *self = arg;
    s_flight_t *flight = NULL;
    curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &flight);
    curl_multi_remove_handle (sb_curl_loop_multi (self->curl), easy);
    if (!flight) {
        curl_easy_cleanup (easy);
        return;
    }
    long status = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
    bool refused = sb_ssrf_guard_refused (&flight->guard, easy);
    curl_easy_cleanup (easy);
    flight->easy = NULL;
    char why [S_MAX_WHY];
    if (refused)
        s_flight_end (flight, SB_CIMD_REFUSED, flight->guard.refused);
    else
    if (flight->too_big || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf (why, sizeof why, "the document is larger than %d bytes", SB_CIMD_MAX_BYTES);
        s_flight_end (flight, SB_CIMD_REFUSED, why);
    }
    else
    if (code == CURLE_OPERATION_TIMEDOUT) {
        snprintf (why, sizeof why, "no whole answer within %d ms", SB_CIMD_FETCH_MS);
        s_flight_end (flight, SB_CIMD_UNREACHABLE, why);
    }
    else
    if (code != CURLE_OK) {
        snprintf (why, sizeof why, "the fetch failed: %s",
                  flight->errbuf [0]? flight->errbuf: curl_easy_strerror (code));
        s_flight_end (flight, SB_CIMD_UNREACHABLE, why);
    }
    else
    if (status >= 300 && status < 400) {
        snprintf (why, sizeof why, "the server answered %ld: redirects are not followed", status);
        s_flight_end (flight, SB_CIMD_REFUSED, why);
    }
    else
    if (status >= 500) {
        snprintf (why, sizeof why, "the server answered %ld", status);
        s_flight_end (flight, SB_CIMD_UNREACHABLE, why);
    }
    else
    if (status != 200) {
        snprintf (why, sizeof why, "the server answered %ld, not 200", status);
        s_flight_end (flight, SB_CIMD_REFUSED, why);
    }
    else {
        flight->max_age = s_clamp_age (flight->max_age);
        if (s_store (flight, why, sizeof why))
            s_flight_end (flight, SB_CIMD_REFUSED, why);
        //  else s_on_stored ends the flight
    }
}

static size_t
s_on_write (char *data, size_t size, size_t nmemb, void *arg)
{
    s_flight_t *flight = arg;
    size_t n = size * nmemb;
    if (!sb_curl_body_append (flight->body, &flight->body_len, SB_CIMD_MAX_BYTES, data, n)) {
        flight->too_big = true;
        return 0;                   //  curl aborts with CURLE_WRITE_ERROR
    }
    return n;
}

//  Reads max-age (or no-store / no-cache: 0) from Cache-Control.
static size_t
s_on_header (char *data, size_t size, size_t nmemb, void *arg)
{
    s_flight_t *flight = arg;
    size_t n = size * nmemb;
    char value [256];
    if (!sb_curl_header_value (data, n, "cache-control:", value, sizeof value))
        return n;
    for (char *p = value; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
    if (strstr (value, "no-store") || strstr (value, "no-cache"))
        flight->max_age = 0;
    else {
        const char *age = strstr (value, "max-age=");
        if (age) {
            age += 8;
            long seconds = 0;
            while (*age >= '0' && *age <= '9' && seconds <= SB_CIMD_MAX_CACHE_S)
                seconds = seconds * 10 + (*age++ - '0');
            flight->max_age = seconds;
        }
    }
    return n;
}

//  Starts the transfer of a new flight. Returns 0 or -1.
static int
s_flight_start (sb_cimd_t *self, s_flight_t *flight)
{
    CURL *easy = curl_easy_init ();
    if (!easy)
        return -1;
    flight->headers = curl_slist_append (NULL, "Accept: application/json");
    if (flight->headers)
        flight->headers = curl_slist_append (flight->headers, "User-Agent: switchboard/0.1");
    sb_curl_easy_defaults (easy, flight->url, "https", flight->headers,
                           (curl_off_t) SB_CIMD_MAX_BYTES, s_on_write, s_on_header, flight,
                           flight->errbuf);
    sb_ssrf_guard_easy (self->ssrf, &flight->guard, easy);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) SB_CIMD_FETCH_MS);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) SB_CIMD_CONNECT_MS);
    if (self->ca_file)
        curl_easy_setopt (easy, CURLOPT_CAINFO, self->ca_file);
    if (!flight->headers || curl_multi_add_handle (sb_curl_loop_multi (self->curl), easy) != CURLM_OK) {
        curl_easy_cleanup (easy);
        return -1;
    }
    flight->easy = easy;
    self->fetches++;
    return 0;
}

void
sb_cimd_resolve (sb_cimd_t *self, sb_worker_job_t *job, const char *url, sb_cimd_fn *cb,
                 void *arg, void (*free_arg) (void *arg))
{
    s_flight_t *flight = self->flights;
    while (flight && strcmp (flight->url, url) != 0)
        flight = flight->next;
    const char *refusal = NULL;
    if (!sb_cimd_url_valid (url)) {
        cb (&job, SB_CIMD_REFUSED, "the client ID is not an https URL with a path", arg);
        return;
    }
    if (!flight) {
        if (self->flight_count >= SB_CIMD_MAX_FETCHES)
            refusal = "too many metadata documents are being fetched";
        else {
            flight = calloc (1, sizeof *flight);
            if (flight) {
                flight->cimd = self;
                flight->max_age = -1;
                flight->url = strdup (url);
            }
            if (!flight || !flight->url || s_flight_start (self, flight)) {
                if (flight)
                    s_flight_free (flight);
                flight = NULL;
                refusal = "the fetch could not start";
            }
            else {
                flight->next = self->flights;
                self->flights = flight;
                self->flight_count++;
            }
        }
    }
    else
    if (flight->waiter_count == SB_CIMD_MAX_WAITERS)
        refusal = "too many requests wait for this metadata document";
    if (refusal) {
        sb_log_warn ("cimd_refused", "%s: %s", url, refusal);
        cb (&job, SB_CIMD_UNREACHABLE, refusal, arg);
        return;
    }
    flight->waiters [flight->waiter_count++] = (s_waiter_t) { job, cb, arg, free_arg };
}

bool
sb_cimd_abandon (sb_cimd_t *self, sb_worker_job_t *job)
{
    for (s_flight_t *flight = self? self->flights: NULL; flight; flight = flight->next)
        for (size_t at = 0; at < flight->waiter_count; at++)
            if (flight->waiters [at].job == job) {
                s_waiter_t waiter = flight->waiters [at];
                flight->waiters [at] = flight->waiters [--flight->waiter_count];
                if (waiter.free_arg)
                    waiter.free_arg (waiter.arg);
                //  The fetch goes on: its document will serve the next lookup
                return true;
            }
    return false;
}

void
sb_cimd_drop_waiters (sb_cimd_t *self)
{
    for (s_flight_t *flight = self? self->flights: NULL; flight; flight = flight->next) {
        for (size_t at = 0; at < flight->waiter_count; at++)
            if (flight->waiters [at].free_arg)
                flight->waiters [at].free_arg (flight->waiters [at].arg);
        flight->waiter_count = 0;
    }
}

unsigned long
sb_cimd_fetches (const sb_cimd_t *self)
{
    return self->fetches;
}

sb_cimd_t *
sb_cimd_new (sb_reactor_t *reactor, sb_db_loop_t *db_loop, const char *allow_hosts,
             const char *ca_file)
{
    sb_cimd_t *self = calloc (1, sizeof (sb_cimd_t));
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->db_loop = db_loop;
    self->ssrf = sb_ssrf_new (allow_hosts, "--cimd-allow-hosts");
    if (!self->ssrf)
        goto fail;
    if (ca_file && *ca_file) {
        if (access (ca_file, R_OK)) {
            sb_log_error ("config_invalid", "--cimd-ca-file %s cannot be read", ca_file);
            goto fail;
        }
        self->ca_file = strdup (ca_file);
        if (!self->ca_file)
            goto fail;
    }
    self->curl = sb_curl_loop_new (reactor, s_on_done, self);
    if (!self->curl) {
        sb_log_error ("cimd_init_failed", "cannot set up the curl multi handle");
        goto fail;
    }
    return self;
fail:
    sb_cimd_destroy (&self);
    return NULL;
}

void
sb_cimd_destroy (sb_cimd_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_cimd_t *self = *self_p;
    sb_cimd_drop_waiters (self);        //  jobs still listed were not abandoned
    while (self->flights) {
        s_flight_t *flight = self->flights;
        self->flights = flight->next;
        s_flight_free (flight);
    }
    sb_curl_loop_destroy (&self->curl);
    sb_ssrf_destroy (&self->ssrf);
    free (self->ca_file);
    free (self);
    *self_p = NULL;
}
