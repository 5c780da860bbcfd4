/*  workers/sb_connections.c — op connection/credential: a tenant's
    credential for a connector, read, opened, and refreshed exactly once
    (see workers/sb_conn.h, proto/PROTOCOL.md "Connections",
    docs/CONNECTIONS.md "Credentials and refresh").

    A job reads its row (connection_credential_read, migration 012). A
    fresh credential is opened under the data keys and answered. One that
    needs a refresh (fewer than SB_CONN_MIN_LIFETIME_S left, or the
    version the api worker was refused with) joins the connection's
    flight: one s_flight_t per connection ID in this worker, whatever
    number of jobs wait on it (single flight). The flight claims the
    refresh lease in PostgreSQL (connection_refresh_claim: only for the
    version it saw, only when the lease is free or past and no backoff
    holds); a worker that cannot claim re-reads every SB_CONN_POLL_MIN_MS
    to SB_CONN_POLL_MAX_MS until the version moves (another worker
    refreshed: its credential is answered) or the lease ends (then it
    claims). The claimer opens the refresh token, asks the provider
    (sb_provider.c), seals the new access token and the refresh token (the
    rotated one, or the old one re-sealed under the current key) and saves
    both in one statement while it holds the lease
    (connection_refresh_save). A refusal (invalid_grant…) marks the
    connection broken and audits connection_broken; a transient failure
    counts and backs off (connection_refresh_failed), and the access token
    keeps being served while it has time left. Every waiting job is
    answered from the flight's one outcome.

    The proactive sweep: a reactor timer every --refresh-sweep-ms claims
    (connection_sweep_claim, FOR UPDATE SKIP LOCKED) connected OAuth rows
    of any tenant expiring within --refresh-window-s and refreshes each in
    a flight of its own, without a job.

    Statements of a flight belong to the flight, not to any of its jobs
    (the worker may abandon any of them): they run on the role's database
    loop without a job (sb_db_loop_query). No secret is ever logged: the
    logs name the connection ID, tenant, connector, versions, the
    outcome and the latency. */
#include "sb_conn.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_reactor.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SB_CONN_LEASE_S         15      /* the refresh lease, seconds */
#define SB_CONN_REFRESH_MS      10000   /* the provider is given this long, at most (within the lease) */
#define SB_CONN_POLL_MIN_MS     100     /* a worker waiting on another's lease re-reads after */
#define SB_CONN_POLL_MAX_MS     200     /* … between these two (jittered) */
#define SB_CONN_MAX_REFRESHES   64      /* flights (refreshes in flight or waited on) at once */
#define SB_CONN_MAX_WAITERS     256     /* jobs waiting on one flight */
#define SB_CONN_SWEEP_LIMIT     16      /* rows one sweep claims, at most */
#define SB_CONN_BACKOFF_BASE_S  2       /* the first transient failure backs off about this long */
#define SB_CONN_BACKOFF_MAX_S   300     /* doubling per failure up to this (5 minutes) */
#define SB_CONN_MAX_TENANT      64      /* bytes of a tenant ID */
#define SB_CONN_MAX_NAME        128     /* bytes of a connector name kept */
#define SB_CONN_MAX_OWNER       96      /* bytes of this worker's lease-owner ID */
#define SB_CONN_MAX_DETAIL      512     /* bytes of an outcome sentence */

//  ---------------------------------------------------------------------
//  A connection's row as migration 012's functions answer it

typedef struct {
    int64_t id;
    char tenant [SB_CONN_MAX_TENANT + 1];
    char connector [SB_CONN_MAX_NAME + 1];
    char kind [16];                 /* oauth2 | api_key */
    char status [16];               /* pending | connected | broken | revoked */
    char detail [SB_CONN_MAX_DETAIL];   /* status_detail, "" when none */
    uint8_t *access;                /* access_token_enc, NULL when none */
    size_t access_len;
    uint8_t *refresh;               /* refresh_token_enc, NULL when none */
    size_t refresh_len;
    char key_id [64];               /* the key both are sealed under */
    int64_t expires_in;             /* seconds left at read_ms; -1: no expiry known */
    json_t *vars;                   /* kept provider extras ({} when none) */
    int64_t version;
    bool leased;                    /* another worker's lease is in force */
    int64_t retry_in;               /* seconds until a backoff ends, 0: none */
    bool claimed;                   /* this statement claimed the lease */
    int64_t read_ms;                /* sb_clock_mono_ms when read */
} s_row_t;

static const char s_columns [] =
    "id, tenant_id, connector, kind, status, status_detail, access_token_enc, refresh_token_enc,"
    " key_id, expires_in, vars, version, leased, retry_in, refresh_failures, claimed";

static void
s_row_clear (s_row_t *row)
{
    free (row->access);
    free (row->refresh);
    json_decref (row->vars);
    memset (row, 0, sizeof *row);
}

static int64_t
s_int (const PGresult *res, int at, int column, int64_t otherwise)
{
    if (PQgetisnull (res, at, column))
        return otherwise;
    char *end = NULL;
    long long value = strtoll (PQgetvalue (res, at, column), &end, 10);
    return end && !*end? (int64_t) value: otherwise;
}

static void
s_text (const PGresult *res, int at, int column, char *out, size_t size)
{
    snprintf (out, size, "%s", PQgetisnull (res, at, column)? "": PQgetvalue (res, at, column));
}

//  Reads row `at` of `res` (s_columns) into `row` (cleared first).
//  Returns 0, or -1 (a column does not parse, out of memory).
static int
s_row_read (const PGresult *res, int at, s_row_t *row)
{
    s_row_clear (row);
    if (PQnfields (res) != 16)
        return -1;
    row->id = s_int (res, at, 0, -1);
    s_text (res, at, 1, row->tenant, sizeof row->tenant);
    s_text (res, at, 2, row->connector, sizeof row->connector);
    s_text (res, at, 3, row->kind, sizeof row->kind);
    s_text (res, at, 4, row->status, sizeof row->status);
    s_text (res, at, 5, row->detail, sizeof row->detail);
    if (!PQgetisnull (res, at, 6)) {
        row->access = sb_conn_bytea_parse (PQgetvalue (res, at, 6), &row->access_len);
        if (!row->access)
            return -1;
    }
    if (!PQgetisnull (res, at, 7)) {
        row->refresh = sb_conn_bytea_parse (PQgetvalue (res, at, 7), &row->refresh_len);
        if (!row->refresh)
            return -1;
    }
    s_text (res, at, 8, row->key_id, sizeof row->key_id);
    row->expires_in = s_int (res, at, 9, -1);
    if (row->expires_in < -1)
        row->expires_in = 0;            //  expired: no time left
    if (!PQgetisnull (res, at, 9) && row->expires_in == -1)
        row->expires_in = 0;
    const char *vars = PQgetisnull (res, at, 10)? "{}": PQgetvalue (res, at, 10);
    row->vars = sb_json_parse (vars, strlen (vars), 0, NULL);
    if (!json_is_object (row->vars))
        return -1;
    row->version = s_int (res, at, 11, -1);
    row->leased = strcmp (PQgetvalue (res, at, 12), "t") == 0;
    row->retry_in = s_int (res, at, 13, 0);
    row->claimed = strcmp (PQgetvalue (res, at, 15), "t") == 0;
    row->read_ms = sb_clock_mono_ms ();
    return row->id > 0 && row->version > 0? 0: -1;
}

//  Seconds left on the row's access token now; -1: no expiry known.
static int64_t
s_left (const s_row_t *row)
{
    if (row->expires_in < 0)
        return -1;
    int64_t left = row->expires_in - (sb_clock_mono_ms () - row->read_ms) / 1000;
    return left > 0? left: 0;
}

//  ---------------------------------------------------------------------
//  Jobs, flights, the module

//  A connection/credential job's own state.
typedef struct {
    sb_token_role_t *role;
    const sb_connector_t *connector;    /* borrowed from role->connectors */
    char tenant [SB_CONN_MAX_TENANT + 1];
    char subject [SB_MAX_SUBJECT_LEN + 1];
    int64_t stale;                  /* the version the api worker was refused with, -1: none */
    s_row_t row;                    /* as read */
} s_req_t;

typedef struct {
    sb_worker_job_t *job;
    s_req_t *req;
} s_waiter_t;

typedef struct _s_flight_t s_flight_t;
struct _s_flight_t {
    s_flight_t *next;               /* the module's list */
    sb_connections_t *owner;        /* the module (borrowed) */
    const sb_connector_t *connector;    /* borrowed from the role's set */
    int64_t id;                     /* the connection */
    int64_t seen;                   /* the version this flight refreshes */
    s_row_t row;                    /* the row as last read */
    bool sweep;                     /* started by the sweep */
    bool pending;                   /* a statement, key lookup or provider call holds it */
    int64_t provider_id;            /* the provider request, 0: none */
    int64_t poll_ms;                /* the next re-read (waiting on another's lease), 0: none */
    int64_t give_up_ms;             /* waiting on another's lease ends here */
    int64_t started_ms;
    char key_id [64];               /* the current data key */
    char *refresh_plain;            /* the refresh token while the provider is asked (wiped) */
    char *access_plain;             /* the access token to answer (wiped) */
    char detail [SB_CONN_MAX_DETAIL];   /* why a refresh failed, "" when it did not */
    const char *outcome;            /* how it ends, for the log (static text) */
    int64_t retry_after;            /* seconds, for failed answers */
    s_waiter_t waiters [SB_CONN_MAX_WAITERS];
    size_t waiter_count;
};

struct _sb_connections_t {
    sb_token_role_t *role;          /* the role (borrowed) */
    sb_reactor_t *reactor;          /* the worker's loop (borrowed) */
    int timer;                      /* polls and the sweep, -1: none */
    char owner [SB_CONN_MAX_OWNER]; /* this worker's lease-owner ID */
    int window_s;                   /* --refresh-window-s */
    int sweep_ms;                   /* --refresh-sweep-ms, 0: no sweep */
    int64_t sweep_due_ms;           /* the next sweep */
    bool sweeping;                  /* a sweep statement is in flight */
    bool stopping;                  /* sb_connections_stop was called */
    s_flight_t *flights;
    size_t flight_count;
    unsigned long refreshes;        /* provider refreshes started, ever */
};

static void s_schedule (sb_connections_t *self);
static void s_claim (s_flight_t *flight);

static void
s_req_free (void *arg)
{
    s_req_t *req = arg;
    if (!req)
        return;
    s_row_clear (&req->row);
    free (req);
}

//  ---------------------------------------------------------------------
//  Answers

//  {"status": "connected", …}: `secret` the access token or API key.
static void
s_answer_connected (sb_worker_job_t **job_p, const s_row_t *row, const char *secret)
{
    json_t *doc = json_pack ("{s:s, s:s, s:s, s:I, s:O}", "status", "connected", "kind", row->kind,
                             "secret", secret, "version", (json_int_t) row->version,
                             "vars", row->vars? row->vars: json_object ());
    int64_t left = s_left (row);
    if (doc && left >= 0 && strcmp (row->kind, "oauth2") == 0)
        json_object_set_new (doc, "expires_in", json_integer (left));
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    if (!text) {
        sb_worker_job_fail (job_p, "out of memory");
        return;
    }
    sb_worker_job_done (job_p, SB_STATUS_OK, text);
    sb_crypto_wipe (text, strlen (text));
    free (text);
}

//  {"status": "missing" | "broken", "detail", "connect_url"}: the link
//  only for OAuth connectors (API keys are added by an operator).
static void
s_answer_unusable (sb_worker_job_t **job_p, s_req_t *req, const char *status, const char *detail)
{
    char *url = NULL;
    if (sb_connector_auth_type (req->connector) == SB_AUTH_OAUTH2)
        url = sb_connect_url (req->role, req->tenant, req->subject,
                              sb_connector_name (req->connector));
    json_t *doc = json_pack ("{s:s, s:s}", "status", status, "detail", detail);
    if (doc && url)
        json_object_set_new (doc, "connect_url", json_string (url));
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    free (url);
    if (!text) {
        sb_worker_job_fail (job_p, "out of memory");
        return;
    }
    sb_worker_job_done (job_p, SB_STATUS_OK, text);
    free (text);
}

//  RESULT failed {"error": sentence, "retry_after": s}.
static void
s_answer_failed (sb_worker_job_t **job_p, const char *sentence, int64_t retry_after)
{
    json_t *doc = json_pack ("{s:s, s:I}", "error", sentence, "retry_after",
                             (json_int_t) (retry_after > 0? retry_after: 1));
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    if (!text) {
        sb_worker_job_fail (job_p, sentence);
        return;
    }
    sb_worker_job_done (job_p, SB_STATUS_FAILED, text);
    free (text);
}

//  The answer for a row that is not connected (broken, revoked, pending).
static void
s_answer_status (sb_worker_job_t **job_p, s_req_t *req, const s_row_t *row)
{
    char detail [SB_CONN_MAX_DETAIL + 128];
    const char *display = sb_connector_display_name (req->connector);
    if (strcmp (row->status, "broken") == 0) {
        //  What happened, for a person; the api worker adds what to do.
        snprintf (detail, sizeof detail, "The connection to %s no longer works%s%s.",
                  display, row->detail [0]? ": ": "", row->detail);
        s_answer_unusable (job_p, req, "broken", detail);
    }
    else {
        snprintf (detail, sizeof detail, "%s is not connected for this tenant%s.", display,
                  strcmp (row->status, "revoked") == 0? " (the connection was revoked)": "");
        s_answer_unusable (job_p, req, "missing", detail);
    }
}

//  ---------------------------------------------------------------------
//  Flights

static s_flight_t *
s_flight_find (sb_connections_t *self, int64_t id)
{
    for (s_flight_t *flight = self->flights; flight; flight = flight->next)
        if (flight->id == id)
            return flight;
    return NULL;
}

static void
s_flight_free (s_flight_t *flight)
{
    sb_connections_t *self = flight->owner;
    for (s_flight_t **at = &self->flights; *at; at = &(*at)->next)
        if (*at == flight) {
            *at = flight->next;
            self->flight_count--;
            break;
        }
    for (size_t at = 0; at < flight->waiter_count; at++)
        s_req_free (flight->waiters [at].req);      //  jobs stay the worker's
    if (flight->provider_id)
        sb_provider_cancel (self->role->provider, flight->provider_id);
    sb_token_wipe_free (&flight->refresh_plain);
    sb_token_wipe_free (&flight->access_plain);
    s_row_clear (&flight->row);
    free (flight);
}

static const char *
s_flight_origin (const s_flight_t *flight)
{
    return flight->sweep? "sweep": "job";
}

//  Ends `flight`: answers every waiting job from its row, the access
//  token it holds (when any) and its failure sentence, then frees it.
//  `outcome` names the end in the log.
static void
s_flight_end (s_flight_t *flight, const char *outcome)
{
    sb_connections_t *self = flight->owner;
    const s_row_t *row = &flight->row;
    sb_log_info ("connection_refresh", "connection %lld (tenant %s, connector %s, %s): version %lld"
                 " → %lld, %s, %lld ms, %zu job(s) answered%s%s", (long long) flight->id,
                 row->tenant, row->connector, s_flight_origin (flight), (long long) flight->seen,
                 (long long) row->version, outcome,
                 (long long) (sb_clock_mono_ms () - flight->started_ms), flight->waiter_count,
                 flight->detail [0]? ": ": "", flight->detail);
    //  Unlink first: a job answered now that asks again starts a new flight
    s_waiter_t waiters [SB_CONN_MAX_WAITERS];
    size_t count = flight->waiter_count;
    memcpy (waiters, flight->waiters, count * sizeof waiters [0]);
    flight->waiter_count = 0;
    for (size_t at = 0; at < count; at++) {
        sb_worker_job_t *job = waiters [at].job;
        s_req_t *req = waiters [at].req;
        int64_t left = s_left (row);
        bool fresh = row->version != flight->seen || left < 0 || left >= SB_CONN_MIN_LIFETIME_S;
        if (row->id <= 0)
            s_answer_status (&job, req, &(s_row_t) { .status = "pending" });
        else
        if (strcmp (row->status, "connected") != 0)
            s_answer_status (&job, req, row);
        else
        if (flight->access_plain && req->stale != row->version && (left != 0)
        && (fresh || flight->detail [0]))
            //  A new credential; or, while the provider fails, the old one
            //  as long as it has time left
            s_answer_connected (&job, row, flight->access_plain);
        else {
            char sentence [SB_CONN_MAX_DETAIL + 128];
            snprintf (sentence, sizeof sentence, "The credential for %s could not be refreshed%s%s.",
                      sb_connector_display_name (req->connector), flight->detail [0]? ": ": "",
                      flight->detail);
            s_answer_failed (&job, sentence, flight->retry_after? flight->retry_after: row->retry_in);
        }
        s_req_free (req);
    }
    s_flight_free (flight);
    s_schedule (self);
}

//  Ends the flight with `detail` as its failure (no answer from a new
//  credential), opening the row's access token first when it still has
//  time left (it is served to jobs that were not refused with it).
static void s_flight_end_open (s_flight_t *flight, const char *outcome);

static void
s_flight_fail (s_flight_t *flight, const char *outcome, const char *detail, int64_t retry_after)
{
    if (detail != flight->detail)
        snprintf (flight->detail, sizeof flight->detail, "%s", detail);
    flight->retry_after = retry_after;
    s_flight_end_open (flight, outcome);
}

//  A step of `flight` answered: the flight waits on nothing now. True
//  when the owner is stopping, the flight then freed (the step returns).
static bool
s_flight_landed (s_flight_t *flight)
{
    flight->pending = false;
    if (!flight->owner->stopping)
        return false;
    s_flight_free (flight);
    return true;
}

//  Keys for opening the row's access token (s_flight_end_open).
static void
s_on_keys_open (const char *key_id, const char *error, void *arg)
{
    s_flight_t *flight = arg;
    if (s_flight_landed (flight))
        return;
    const s_row_t *row = &flight->row;
    if (key_id && row->access) {
        flight->access_plain = sb_conn_open (flight->owner->role, row->key_id, row->tenant,
                                             row->connector, "access", row->access,
                                             row->access_len);
        if (!flight->access_plain && !flight->detail [0])
            snprintf (flight->detail, sizeof flight->detail,
                      "the stored access token does not open under the data keys");
    }
    else
    if (!flight->detail [0])
        snprintf (flight->detail, sizeof flight->detail, "%s",
                  error? error: "the data keys could not be had");
    s_flight_end (flight, flight->access_plain? flight->outcome: "failed");
}

static void
s_flight_end_open (s_flight_t *flight, const char *outcome)
{
    const s_row_t *row = &flight->row;
    if (flight->access_plain || !row->access || strcmp (row->status, "connected") != 0
    ||  s_left (row) == 0 || flight->waiter_count == 0) {
        s_flight_end (flight, outcome);
        return;
    }
    flight->pending = true;
    flight->outcome = outcome;
    sb_conn_keys_ready_plain (flight->owner->role, row->key_id, s_on_keys_open, flight);
}

static void
s_on_released (const PGresult *res, const char *error, void *arg)
{
    (void) res;
    (void) arg;
    if (error)
        sb_log_warn ("db_error", "releasing a refresh lease: %s", error);
}

//  Gives the lease back (the refresh could not be tried), then fails.
static void
s_release_fail (s_flight_t *flight, const char *detail)
{
    char id [24];
    snprintf (id, sizeof id, "%lld", (long long) flight->id);
    const char *params [] = { flight->row.tenant, id, flight->owner->owner };
    if (sb_db_loop_query (flight->owner->role->db_loop,
                          "SELECT connection_refresh_release ($1, $2, $3)", 3, params,
                          s_on_released, NULL))
        sb_log_warn ("db_busy", "connection %lld: the lease is left to expire", (long long) flight->id);
    s_flight_fail (flight, "not tried", detail, 0);
}

//  The answer of connection_refresh_save or connection_refresh_failed.
static void
s_on_saved (const PGresult *res, const char *error, void *arg)
{
    s_flight_t *flight = arg;
    if (s_flight_landed (flight))
        return;
    bool failed = flight->detail [0] != 0;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK) {
        sb_log_warn ("db_error", "connection %lld: saving the refresh: %s", (long long) flight->id,
                     error? error: PQresultErrorMessage (res));
        sb_token_wipe_free (&flight->access_plain);
        s_flight_fail (flight, "not saved", "the new credential could not be saved", 1);
        return;
    }
    if (PQntuples (res) == 0) {
        //  The lease was lost (it ended while the provider was asked):
        //  what another worker did is read again
        sb_log_warn ("connection_lease_lost", "connection %lld (tenant %s, connector %s): the "
                     "lease ended before the %s was saved", (long long) flight->id,
                     flight->row.tenant, flight->row.connector, failed? "failure": "credential");
        sb_token_wipe_free (&flight->access_plain);
        flight->detail [0] = 0;
        flight->give_up_ms = sb_clock_mono_ms () + (SB_CONN_LEASE_S + 1) * 1000;
        s_claim (flight);
        return;
    }
    if (s_row_read (res, 0, &flight->row)) {
        sb_token_wipe_free (&flight->access_plain);
        s_flight_fail (flight, "unreadable", "the connection's row could not be read", 1);
        return;
    }
    if (failed)
        s_flight_end_open (flight, strcmp (flight->row.status, "broken") == 0? "broken": "backing off");
    else
        s_flight_end (flight, "refreshed");
}

//  The provider answered the refresh.
static void
s_on_provider (sb_provider_outcome_t outcome, sb_provider_tokens_t *tokens, const char *detail,
               int retry_after_s, void *arg)
{
    s_flight_t *flight = arg;
    sb_connections_t *self = flight->owner;
    sb_token_role_t *role = self->role;
    flight->provider_id = 0;
    flight->pending = false;
    const s_row_t *row = &flight->row;
    char id [24];
    snprintf (id, sizeof id, "%lld", (long long) flight->id);
    if (outcome != SB_PROVIDER_OK) {
        bool permanent = outcome == SB_PROVIDER_REFUSED;
        snprintf (flight->detail, sizeof flight->detail, "%s", detail? detail: "the provider failed");
        char base [16], cap [16], retry [16];
        snprintf (base, sizeof base, "%d", SB_CONN_BACKOFF_BASE_S);
        snprintf (cap, sizeof cap, "%d", SB_CONN_BACKOFF_MAX_S);
        snprintf (retry, sizeof retry, "%d", retry_after_s);
        const char *params [] = {
            row->tenant, id, self->owner, permanent? "t": "f", flight->detail, base, cap,
            retry_after_s >= 0? retry: NULL
        };
        char sql [512];
        snprintf (sql, sizeof sql, "SELECT %s FROM connection_refresh_failed ($1, $2, $3, $4, $5,"
                  " $6, $7, $8)", s_columns);
        sb_token_wipe_free (&flight->refresh_plain);
        if (sb_db_loop_query (role->db_loop, sql, 8, params, s_on_saved, flight)) {
            s_flight_fail (flight, "not saved", flight->detail, 1);
            return;
        }
        flight->pending = true;
        return;
    }
    //  Seal both under the current key: the rotated refresh token, or the
    //  one we have (so rows move to the current key as they refresh)
    const char *refresh = tokens->refresh_token? tokens->refresh_token: flight->refresh_plain;
    size_t access_len = 0, refresh_len = 0;
    uint8_t *access_sealed = sb_conn_seal (role, flight->key_id, row->tenant, row->connector,
                                           "access", tokens->access_token,
                                           strlen (tokens->access_token), &access_len);
    uint8_t *refresh_sealed = sb_conn_seal (role, flight->key_id, row->tenant, row->connector,
                                            "refresh", refresh, strlen (refresh), &refresh_len);
    char *access_text = access_sealed? sb_conn_bytea_text (access_sealed, access_len): NULL;
    char *refresh_text = refresh_sealed? sb_conn_bytea_text (refresh_sealed, refresh_len): NULL;
    char *vars = tokens->vars? json_dumps (tokens->vars, JSON_COMPACT): NULL;
    char expires [24];
    snprintf (expires, sizeof expires, "%lld", (long long) tokens->expires_in);
    const char *params [] = {
        row->tenant, id, self->owner, access_text, refresh_text, flight->key_id,
        tokens->expires_in >= 0? expires: NULL, tokens->scope, vars
    };
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT %s FROM connection_refresh_save ($1, $2, $3, $4, $5, $6, $7,"
              " $8, $9::jsonb)", s_columns);
    int rc = -1;
    if (access_text && refresh_text && vars)
        rc = sb_db_loop_query (role->db_loop, sql, 9, params, s_on_saved, flight);
    if (rc == 0) {
        flight->pending = true;
        flight->access_plain = tokens->access_token;    //  taken: answered once saved
        tokens->access_token = NULL;
    }
    sb_provider_tokens_clear (tokens);
    sb_token_wipe_free (&flight->refresh_plain);
    free (access_sealed);
    free (refresh_sealed);
    free (access_text);
    free (refresh_text);
    free (vars);
    if (rc) {
        //  The provider may have rotated the refresh token: the lease runs
        //  out and another try uses the old one (providers keep it usable
        //  for a grace period)
        sb_log_error ("connection_refresh", "connection %lld: the new credential could not be "
                      "sealed or queued", (long long) flight->id);
        s_flight_fail (flight, "not saved", "the new credential could not be saved", 1);
    }
}

//  The data keys are ready for the refresh: open the refresh token, ask
//  the provider.
static void
s_on_keys_refresh (const char *key_id, const char *error, void *arg)
{
    s_flight_t *flight = arg;
    sb_connections_t *self = flight->owner;
    if (s_flight_landed (flight))
        return;
    if (!key_id) {
        s_release_fail (flight, error? error: "the data keys could not be had");
        return;
    }
    snprintf (flight->key_id, sizeof flight->key_id, "%s", key_id);
    const s_row_t *row = &flight->row;
    flight->refresh_plain = sb_conn_open (self->role, row->key_id, row->tenant, row->connector,
                                          "refresh", row->refresh, row->refresh_len);
    if (!flight->refresh_plain) {
        s_release_fail (flight, "the stored refresh token does not open under the data keys");
        return;
    }
    int64_t wait = SB_CONN_REFRESH_MS;
    if (wait > SB_CONN_LEASE_S * 1000 - 2000)
        wait = SB_CONN_LEASE_S * 1000 - 2000;
    flight->provider_id = sb_provider_token (self->role->provider, flight->connector, NULL, NULL,
                                             NULL, flight->refresh_plain,
                                             sb_clock_mono_ms () + wait, s_on_provider, flight);
    if (flight->provider_id <= 0) {
        flight->provider_id = 0;
        sb_token_wipe_free (&flight->refresh_plain);
        s_release_fail (flight, "the provider's token endpoint could not be asked");
        return;
    }
    flight->pending = true;
    self->refreshes++;
}

//  The lease is ours: refresh.
static void
s_refresh (s_flight_t *flight)
{
    const sb_connector_oauth_t *oauth = flight->connector? sb_connector_oauth (flight->connector)
                                                         : NULL;
    if (!oauth || !oauth->client_id) {
        s_release_fail (flight, "the connector has no OAuth client configured in the token service");
        return;
    }
    flight->pending = true;
    sb_conn_keys_ready_plain (flight->owner->role, flight->row.key_id, s_on_keys_refresh, flight);
}

//  The answer of connection_refresh_claim.
static void
s_on_claim (const PGresult *res, const char *error, void *arg)
{
    s_flight_t *flight = arg;
    sb_connections_t *self = flight->owner;
    if (s_flight_landed (flight))
        return;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK) {
        sb_log_warn ("db_error", "connection %lld: claiming the refresh lease: %s",
                     (long long) flight->id, error? error: PQresultErrorMessage (res));
        s_flight_fail (flight, "failed", "the connections database could not be reached", 1);
        return;
    }
    if (PQntuples (res) == 0) {
        s_row_clear (&flight->row);         //  the row is gone: answered missing
        s_flight_end (flight, "deleted");
        return;
    }
    if (s_row_read (res, 0, &flight->row)) {
        s_flight_fail (flight, "unreadable", "the connection's row could not be read", 1);
        return;
    }
    const s_row_t *row = &flight->row;
    if (row->claimed) {
        s_refresh (flight);
        return;
    }
    if (row->version != flight->seen || strcmp (row->status, "connected") != 0) {
        s_flight_end_open (flight, "refreshed elsewhere");  //  or broken, revoked
        return;
    }
    if (row->retry_in > 0) {
        s_flight_fail (flight, "backing off", row->detail [0]? row->detail
                                            : "an earlier refresh failed", row->retry_in);
        return;
    }
    if (!row->refresh) {
        s_flight_fail (flight, "no refresh token", "the provider gave no refresh token; connect "
                       "again when the access token ends", 0);
        return;
    }
    //  Another worker holds the lease: read again soon, until the version
    //  moves or the lease ends
    if (sb_clock_mono_ms () >= flight->give_up_ms) {
        s_flight_fail (flight, "lease wait timed out",
                       "another token worker's refresh did not finish in time", 1);
        return;
    }
    uint8_t jitter = 0;
    if (sb_crypto_random (&jitter, 1))
        jitter = 0;
    flight->poll_ms = sb_clock_mono_ms () + SB_CONN_POLL_MIN_MS
                    + jitter % (SB_CONN_POLL_MAX_MS - SB_CONN_POLL_MIN_MS + 1);
    s_schedule (self);
}

//  Claims the lease (or reads the row again).
static void
s_claim (s_flight_t *flight)
{
    sb_connections_t *self = flight->owner;
    char id [24], seen [24], lease [16];
    snprintf (id, sizeof id, "%lld", (long long) flight->id);
    snprintf (seen, sizeof seen, "%lld", (long long) flight->seen);
    snprintf (lease, sizeof lease, "%d", SB_CONN_LEASE_S);
    const char *params [] = { flight->row.tenant, id, seen, self->owner, lease };
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT %s FROM connection_refresh_claim ($1, $2, $3, $4, $5)",
              s_columns);
    flight->poll_ms = 0;
    if (sb_db_loop_query (self->role->db_loop, sql, 5, params, s_on_claim, flight)) {
        s_flight_fail (flight, "failed", "the authorization server's database is busy", 1);
        return;
    }
    flight->pending = true;
}

static s_flight_t *
s_flight_new (sb_connections_t *self, const sb_connector_t *connector, const s_row_t *row)
{
    if (self->flight_count >= SB_CONN_MAX_REFRESHES)
        return NULL;
    s_flight_t *flight = calloc (1, sizeof *flight);
    if (!flight)
        return NULL;
    flight->owner = self;
    flight->connector = connector;
    flight->id = row->id;
    flight->seen = row->version;
    flight->started_ms = sb_clock_mono_ms ();
    flight->give_up_ms = flight->started_ms + (SB_CONN_LEASE_S + 1) * 1000;
    //  The row's identity; the rest is read again by the claim
    snprintf (flight->row.tenant, sizeof flight->row.tenant, "%s", row->tenant);
    snprintf (flight->row.connector, sizeof flight->row.connector, "%s", row->connector);
    flight->row.id = row->id;
    flight->row.version = row->version;
    flight->next = self->flights;
    self->flights = flight;
    self->flight_count++;
    return flight;
}

//  ---------------------------------------------------------------------
//  The proactive sweep

static void
s_on_sweep (const PGresult *res, const char *error, void *arg)
{
    sb_connections_t *self = arg;
    self->sweeping = false;
    if (self->stopping)
        return;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK) {
        sb_log_warn ("db_error", "the refresh sweep: %s", error? error: PQresultErrorMessage (res));
        s_schedule (self);
        return;
    }
    for (int at = 0; at < PQntuples (res); at++) {
        s_row_t row = { 0 };
        if (s_row_read (res, at, &row)) {
            s_row_clear (&row);
            continue;
        }
        const sb_connector_t *connector = self->role->connectors
                                        ? sb_connectors_find (self->role->connectors, row.connector)
                                        : NULL;
        s_flight_t *flight = s_flight_new (self, connector, &row);
        if (!flight) {
            //  Over the limit: the lease ends by itself and a later sweep tries again
            sb_log_warn ("connection_refresh", "connection %lld: %d refreshes are in flight",
                         (long long) row.id, SB_CONN_MAX_REFRESHES);
            s_row_clear (&row);
            continue;
        }
        flight->sweep = true;
        s_row_clear (&flight->row);
        flight->row = row;                  //  taken
        if (!connector || sb_connector_auth_type (connector) != SB_AUTH_OAUTH2)
            s_release_fail (flight, "the connector is not an OAuth connector this worker loaded");
        else
            s_refresh (flight);
    }
    s_schedule (self);
}

static void
s_sweep (sb_connections_t *self)
{
    char window [16], limit [16], lease [16];
    size_t room = SB_CONN_MAX_REFRESHES - self->flight_count;
    snprintf (window, sizeof window, "%d", self->window_s);
    snprintf (limit, sizeof limit, "%zu", room < SB_CONN_SWEEP_LIMIT? room: SB_CONN_SWEEP_LIMIT);
    snprintf (lease, sizeof lease, "%d", SB_CONN_LEASE_S);
    const char *params [] = { self->owner, window, limit, lease };
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT %s FROM connection_sweep_claim ($1, $2, $3, $4)", s_columns);
    if (room == 0 || !self->role->connectors)
        return;                             //  full, or no connector to refresh for
    if (sb_db_loop_query (self->role->db_loop, sql, 4, params, s_on_sweep, self))
        return;                             //  busy: the next sweep
    self->sweeping = true;
}

//  The module's one timer: due polls, then the sweep.
static void
s_on_timer (sb_reactor_t *reactor, void *arg)
{
    (void) reactor;
    sb_connections_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    bool again = true;
    while (again) {
        again = false;
        for (s_flight_t *flight = self->flights; flight; flight = flight->next)
            if (flight->poll_ms && flight->poll_ms <= now && !flight->pending) {
                s_claim (flight);           //  may end (free) the flight: walk again
                again = true;
                break;
            }
    }
    if (self->sweep_ms > 0 && now >= self->sweep_due_ms) {
        self->sweep_due_ms = now + self->sweep_ms;
        if (!self->sweeping)
            s_sweep (self);
    }
    s_schedule (self);
}

static void
s_schedule (sb_connections_t *self)
{
    if (self->timer < 0 || self->stopping)
        return;
    int64_t due = self->sweep_ms > 0? self->sweep_due_ms: 0;
    for (s_flight_t *flight = self->flights; flight; flight = flight->next)
        if (flight->poll_ms && (!due || flight->poll_ms < due))
            due = flight->poll_ms;
    if (due)
        sb_reactor_timer_set (self->reactor, self->timer, due);
}

//  ---------------------------------------------------------------------
//  connection/credential

//  The keys are ready for a fresh credential: open it and answer.
static void
s_on_keys_fresh (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    (void) key_id;
    s_req_t *req = arg;
    const s_row_t *row = &req->row;
    //  An API key is kept as the access token is (kind api_key)
    char *secret = sb_conn_open (req->role, row->key_id, req->tenant, row->connector, "access",
                                 row->access, row->access_len);
    if (!secret) {
        sb_log_error ("connection_unreadable", "connection %lld (tenant %s, connector %s): the "
                      "stored credential does not open under the data keys", (long long) row->id,
                      req->tenant, row->connector);
        sb_worker_job_fail (job_p, "the stored credential does not open under the token service's "
                                   "data keys");
    }
    else {
        s_answer_connected (job_p, row, secret);
        sb_crypto_wipe (secret, strlen (secret));
        free (secret);
    }
    s_req_free (req);
}

//  The job joins (or starts) its connection's flight.
static void
s_join (sb_token_role_t *role, sb_worker_job_t *job, s_req_t *req)
{
    sb_connections_t *self = role->connections;
    s_flight_t *flight = s_flight_find (self, req->row.id);
    bool started = false;
    if (!flight) {
        flight = s_flight_new (self, req->connector, &req->row);
        if (!flight) {
            sb_log_warn ("connection_refresh", "connection %lld: %d refreshes are in flight",
                         (long long) req->row.id, SB_CONN_MAX_REFRESHES);
            s_answer_failed (&job, "the token service is refreshing too many connections", 1);
            s_req_free (req);
            return;
        }
        started = true;
    }
    if (flight->waiter_count == SB_CONN_MAX_WAITERS) {
        sb_log_warn ("connection_refresh", "connection %lld: %d jobs already wait",
                     (long long) flight->id, SB_CONN_MAX_WAITERS);
        s_answer_failed (&job, "too many calls wait for this connection's refresh", 1);
        s_req_free (req);
        return;
    }
    flight->waiters [flight->waiter_count++] = (s_waiter_t) { job, req };
    if (started)
        s_claim (flight);
}

static void
s_on_read (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_req_t *req = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK) {
        sb_log_warn ("db_error", "connection/credential (tenant %s, connector %s): %s", req->tenant,
                     sb_connector_name (req->connector), error? error: PQresultErrorMessage (res));
        s_answer_failed (job_p, "the token service's database could not be read", 1);
        s_req_free (req);
        return;
    }
    if (PQntuples (res) == 0) {
        char detail [256];
        snprintf (detail, sizeof detail, "%s is not connected for this tenant.",
                  sb_connector_display_name (req->connector));
        s_answer_unusable (job_p, req, "missing", detail);
        s_req_free (req);
        return;
    }
    if (s_row_read (res, 0, &req->row)) {
        sb_worker_job_fail (job_p, "the connection's row could not be read");
        s_req_free (req);
        return;
    }
    s_row_t *row = &req->row;
    if (strcmp (row->status, "connected") != 0 || !row->access) {
        s_answer_status (job_p, req, row);
        s_req_free (req);
        return;
    }
    int64_t left = s_left (row);
    bool oauth = strcmp (row->kind, "oauth2") == 0;
    bool stale = req->stale == row->version;
    bool need = oauth && (stale || (left >= 0 && left < SB_CONN_MIN_LIFETIME_S));
    if (need && !row->refresh) {
        char detail [256];
        snprintf (detail, sizeof detail, "The access token for %s %s and the provider gave no "
                  "refresh token.", sb_connector_display_name (req->connector),
                  stale? "was refused": "has expired");
        s_answer_unusable (job_p, req, "broken", detail);
        s_req_free (req);
        return;
    }
    if (need && row->retry_in > 0 && (stale || left == 0)) {
        char sentence [SB_CONN_MAX_DETAIL + 128];
        snprintf (sentence, sizeof sentence, "The credential for %s could not be refreshed%s%s.",
                  sb_connector_display_name (req->connector), row->detail [0]? ": ": "",
                  row->detail);
        s_answer_failed (job_p, sentence, row->retry_in);
        s_req_free (req);
        return;
    }
    if (need && row->retry_in == 0) {
        s_join (req->role, *job_p, req);
        *job_p = NULL;
        return;
    }
    //  Fresh (or backing off with time left): open and answer
    sb_conn_keys_ready (req->role, *job_p, row->key_id, s_on_keys_fresh, req, s_req_free);
    *job_p = NULL;
}

void
sb_connections_credential (sb_token_role_t *self, sb_worker_job_t *job)
{
    const sb_job_t *spec = sb_worker_job_spec (job);
    const char *tenant = sb_worker_job_tenant (job);
    const char *name = spec->connector;
    const char *why = NULL;
    const sb_connector_t *connector = NULL;
    if (!self->connections)
        why = "the token service keeps no connections (it started without them)";
    else
    if (!tenant || !*tenant || strlen (tenant) > SB_CONN_MAX_TENANT)
        why = "connection/credential needs the job's tenant";
    else
    if (!name || !*name)
        why = "connection/credential needs a connector";
    else
    if (!self->connectors || !(connector = sb_connectors_find (self->connectors, name)))
        why = "the token service has not loaded this connector (check --connectors)";
    else
    if (sb_connector_credential (connector) != SB_CREDENTIAL_TENANT)
        why = "this connector does not keep each tenant's credential";
    int64_t stale = -1;
    if (!why && spec->data && *spec->data) {
        json_t *data = sb_json_parse (spec->data, strlen (spec->data), 0, NULL);
        json_t *value = json_object_get (data, "stale");
        if (!json_is_object (data) || (value && !json_is_integer (value))
        ||  (value && json_integer_value (value) < 1))
            why = "connection/credential's data must be {} or {\"stale\": <version>}";
        else
        if (value)
            stale = json_integer_value (value);
        json_decref (data);
    }
    if (why) {
        sb_log_warn ("connection_credential_refused", "tenant %s, connector %s: %s",
                     tenant? tenant: "(none)", name? name: "(none)", why);
        sb_worker_job_fail (&job, why);
        return;
    }
    s_req_t *req = calloc (1, sizeof *req);
    if (!req) {
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    req->role = self;
    req->connector = connector;
    req->stale = stale;
    snprintf (req->tenant, sizeof req->tenant, "%s", tenant);
    snprintf (req->subject, sizeof req->subject, "%s", spec->subject? spec->subject: "");
    const char *params [] = { tenant, sb_connector_name (connector) };
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT %s FROM connection_credential_read ($1, $2)", s_columns);
    sb_token_query (self, job, sql, 2, params, s_on_read, req, s_req_free);
}

bool
sb_connections_abandon (sb_token_role_t *role, sb_worker_job_t *job)
{
    sb_connections_t *self = role->connections;
    for (s_flight_t *flight = self? self->flights: NULL; flight; flight = flight->next)
        for (size_t at = 0; at < flight->waiter_count; at++)
            if (flight->waiters [at].job == job) {
                s_req_free (flight->waiters [at].req);
                flight->waiters [at] = flight->waiters [--flight->waiter_count];
                //  The refresh goes on: its credential serves the next job
                return true;
            }
    return false;
}

//  ---------------------------------------------------------------------
//  The module

sb_connections_t *
sb_connections_new (sb_token_role_t *role, int window_s, int sweep_ms)
{
    sb_connections_t *self = calloc (1, sizeof (sb_connections_t));
    if (!self)
        return NULL;
    self->role = role;
    self->reactor = sb_worker_reactor (role->worker);
    self->window_s = window_s;
    self->sweep_ms = sweep_ms;
    //  The lease owner: this host and process, and a random part (two
    //  roles of one process, a restarted process with the same pid)
    char host [48] = "";
    uint8_t nonce [6];
    if (gethostname (host, sizeof host - 1))
        snprintf (host, sizeof host, "host");
    host [sizeof host - 1] = 0;
    if (sb_crypto_random (nonce, sizeof nonce)) {
        free (self);
        return NULL;
    }
    snprintf (self->owner, sizeof self->owner, "%s/%d/%02x%02x%02x%02x%02x%02x", host, (int) getpid (),
              nonce [0], nonce [1], nonce [2], nonce [3], nonce [4], nonce [5]);
    self->timer = sb_reactor_timer_new (self->reactor, s_on_timer, self);
    if (self->timer < 0) {
        free (self);
        return NULL;
    }
    self->sweep_due_ms = sb_clock_mono_ms () + sweep_ms;
    s_schedule (self);
    return self;
}

void
sb_connections_stop (sb_connections_t *self)
{
    if (!self)
        return;
    self->stopping = true;
    if (self->timer >= 0)
        sb_reactor_timer_free (self->reactor, self->timer);
    self->timer = -1;
    //  Waiting jobs stay the worker's; provider calls are cancelled. A
    //  flight with a statement in flight is freed by its answer (the
    //  database loop answers every statement when it closes).
    s_flight_t *flight = self->flights;
    while (flight) {
        s_flight_t *next = flight->next;
        for (size_t at = 0; at < flight->waiter_count; at++)
            s_req_free (flight->waiters [at].req);
        flight->waiter_count = 0;
        if (flight->provider_id) {
            sb_provider_cancel (self->role->provider, flight->provider_id);
            flight->provider_id = 0;
            flight->pending = false;
        }
        if (!flight->pending)
            s_flight_free (flight);
        flight = next;
    }
}

void
sb_connections_destroy (sb_connections_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_connections_t *self = *self_p;
    sb_connections_stop (self);
    while (self->flights)
        s_flight_free (self->flights);
    free (self);
    *self_p = NULL;
}
