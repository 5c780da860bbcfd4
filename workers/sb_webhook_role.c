/*  workers/sb_webhook_role.c — the webhook role (sb_webhook_role.h): its
    lifecycle, the dispatch by op, the key ring's reads and the endpoint
    cache. The ingest itself (verify, group commit, answers, PUBLISH) and
    events/read are sb_wh_ingest.c's.

    The endpoint cache holds, per endpoint ID, what verifying a request
    needs: tenant, connector, the verifier with its secrets (opened with
    the ring, sb_wh_keys.h) and whether it is enabled; also unknown IDs
    (negative entries, SB_WH_NEGATIVE_TTL_MS). An entry is read again once
    SB_WH_ENDPOINT_TTL_MS old, so a rotation, a disable or a deletion is
    seen within that time. One read per endpoint at a time: requests for
    an endpoint being read wait on its entry. At SB_WH_MAX_ENDPOINTS the
    least recently used entry that is not being read makes room. */
#include "sb_wh_int.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_db.h"
#include "sb_log.h"

#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_SECRET_LEN    32      /* master secret bytes, at least (the token role's) */
#define S_MAX_SECRET_LEN    64      /* master secret bytes, at most */
#define S_MAX_OWNER         80      /* "webhook:<id>", bytes */

static const char s_endpoint_sql [] = "SELECT * FROM webhook_endpoint_get ($1)";

//  ---------------------------------------------------------------------
//  Requests

void
sb_wh_req_free (sb_wh_req_t **req_p)
{
    if (!req_p || !*req_p)
        return;
    sb_wh_req_t *req = *req_p;
    if (req->job)
        sb_worker_job_set_data (req->job, NULL);
    json_decref (req->data);
    free (req->events);
    free (req->reply);
    free (req->reply_type);
    free (req->body);
    free (req);
    *req_p = NULL;
}

//  ---------------------------------------------------------------------
//  The key ring

typedef void (s_keys_fn) (sb_webhook_role_t *self, bool ok, void *arg);

typedef struct {
    sb_webhook_role_t *self;
    s_keys_fn *cb;
    void *arg;
} s_keys_read_t;

static void
s_on_keys (const PGresult *res, const char *error, void *arg)
{
    s_keys_read_t read = *(s_keys_read_t *) arg;
    free (arg);
    sb_webhook_role_t *self = read.self;
    if (self->closing) {
        read.cb (self, false, read.arg);
        return;
    }
    int count = error? -1: sb_wh_keys_load (self->keys, res);
    if (count >= 0)
        self->keys_read_ms = sb_clock_mono_ms ();
    else
    if (error)
        sb_log_warn ("db_error", "webhook role: connection keys: %s", error);
    else
        sb_log_error ("wh_keys_sealed", "connection_keys holds a key that does not open under "
                      "this worker's master secret (another secret sealed it, or the row was "
                      "altered): the ring is left as it was");
    read.cb (self, count >= 0, read.arg);
}

//  Reads the ring; `cb` is called once (from the loop, or now when the
//  query cannot be queued).
static void
s_keys_read (sb_webhook_role_t *self, s_keys_fn *cb, void *arg)
{
    s_keys_read_t *read = malloc (sizeof *read);
    if (read) {
        *read = (s_keys_read_t) { self, cb, arg };
        if (sb_db_loop_query (self->db_loop, SB_WH_KEYS_SQL, 0, NULL, s_on_keys, read) == 0)
            return;
        free (read);
    }
    cb (self, false, arg);
}

static void
s_on_periodic_keys (sb_webhook_role_t *self, bool ok, void *arg)
{
    self->keys_reading = false;
}

//  ---------------------------------------------------------------------
//  The endpoint cache

static void
s_entry_destroy (void **item)
{
    sb_wh_endpoint_t *entry = *item;
    if (!entry)
        return;
    //  Requests still waiting: only at destroy (the loop is gone), unanswered.
    while (entry->waiters) {
        sb_wh_req_t *req = entry->waiters;
        entry->waiters = req->next;
        sb_wh_req_free (&req);
    }
    sb_wh_verifier_destroy (&entry->verifier);
    free (entry);
    *item = NULL;
}

static bool
s_entry_fresh (const sb_wh_endpoint_t *entry, int64_t now)
{
    return entry->loaded_ms > 0
        && now - entry->loaded_ms < (entry->found? SB_WH_ENDPOINT_TTL_MS: SB_WH_NEGATIVE_TTL_MS);
}

//  A new entry for `id` in the cache, making room if needed. NULL when
//  every entry is being read, or out of memory.
static sb_wh_endpoint_t *
s_entry_new (sb_webhook_role_t *self, const char *id)
{
    if (zhashx_size (self->endpoints) >= SB_WH_MAX_ENDPOINTS) {
        sb_wh_endpoint_t *oldest = NULL;
        for (sb_wh_endpoint_t *entry = zhashx_first (self->endpoints); entry;
             entry = zhashx_next (self->endpoints))
            if (!entry->loading && (!oldest || entry->used_ms < oldest->used_ms))
                oldest = entry;
        if (!oldest)
            return NULL;
        zhashx_delete (self->endpoints, oldest->id);
    }
    sb_wh_endpoint_t *entry = calloc (1, sizeof *entry);
    if (!entry)
        return NULL;
    snprintf (entry->id, sizeof entry->id, "%s", id);
    entry->waiters_tail = &entry->waiters;
    if (zhashx_insert (self->endpoints, entry->id, entry)) {
        free (entry);
        return NULL;
    }
    return entry;
}

//  The read of an endpoint, from its query to its verifier.
typedef struct {
    sb_webhook_role_t *self;
    char id [SB_WH_MAX_ENDPOINT_ID + 1];
    //  the row, copied
    char *tenant, *connector, *scheme, *options, *key_id, *secret_hex, *previous_hex;
    bool enabled;
} s_read_t;

static void
s_read_free (s_read_t **read_p)
{
    s_read_t *read = *read_p;
    if (!read)
        return;
    free (read->tenant);
    free (read->connector);
    free (read->scheme);
    free (read->options);
    free (read->key_id);
    free (read->secret_hex);
    free (read->previous_hex);
    free (read);
    *read_p = NULL;
}

//  Hands the waiting requests of `entry` their endpoint. When
//  `unavailable`, the entry leaves the cache first (the next request
//  reads again).
static void
s_entry_settle (sb_webhook_role_t *self, sb_wh_endpoint_t *entry, bool unavailable)
{
    entry->loading = false;
    sb_wh_req_t *waiters = entry->waiters;
    entry->waiters = NULL;
    entry->waiters_tail = &entry->waiters;
    if (unavailable) {
        zhashx_delete (self->endpoints, entry->id);
        entry = NULL;
    }
    while (waiters) {
        sb_wh_req_t *req = waiters;
        waiters = req->next;
        req->next = NULL;
        sb_wh_ingest_endpoint_ready (self, req, entry, unavailable);
    }
}

//  Opens a sealed secret (hex) of endpoint `read`. New string or NULL.
static char *
s_secret_open (sb_webhook_role_t *self, const s_read_t *read, const char *hex,
               const char *column)
{
    size_t hex_len = strlen (hex);
    uint8_t *sealed = hex_len % 2 == 0? malloc (hex_len / 2 + 1): NULL;
    size_t sealed_len = 0, len = 0;
    char owner [S_MAX_OWNER];
    snprintf (owner, sizeof owner, "webhook:%s", read->id);
    char *secret = NULL;
    if (sealed && sb_hex_decode (hex, sealed, hex_len / 2, &sealed_len) == 0)
        secret = sb_wh_keys_open (self->keys, read->key_id, read->tenant, owner, column,
                                  sealed, sealed_len, &len);
    free (sealed);
    return secret;
}

static void
s_secret_free (char **secret_p)
{
    if (*secret_p) {
        sb_crypto_wipe (*secret_p, strlen (*secret_p));
        free (*secret_p);
        *secret_p = NULL;
    }
}

//  The row is read and the ring holds its key (or never will): make the
//  verifier, fill the entry, hand it to its requests. Frees `read`.
static void
s_read_finish (sb_webhook_role_t *self, s_read_t *read)
{
    sb_wh_endpoint_t *entry = zhashx_lookup (self->endpoints, read->id);
    if (!entry) {
        s_read_free (&read);
        return;
    }
    sb_wh_scheme_t scheme;
    char *secrets [SB_WH_MAX_SECRETS] = { NULL };
    size_t count = 0;
    sb_wh_verifier_t *verifier = NULL;
    if (sb_wh_scheme_parse (read->scheme, &scheme))
        sb_log_error ("wh_endpoint_unusable", "endpoint %s: unknown scheme", read->id);
    else
    if (!sb_wh_keys_has (self->keys, read->key_id))
        sb_log_error ("wh_endpoint_unusable", "endpoint %s: its data key %s is not in "
                      "connection_keys or does not open", read->id, read->key_id);
    else
    if (!(secrets [count++] = s_secret_open (self, read, read->secret_hex, "secret")))
        sb_log_error ("wh_endpoint_unusable", "endpoint %s: its secret does not open under "
                      "data key %s (the row was altered or sealed for another endpoint)",
                      read->id, read->key_id);
    else {
        if (read->previous_hex) {
            secrets [count] = s_secret_open (self, read, read->previous_hex, "previous");
            if (secrets [count])
                count++;
            else
                sb_log_warn ("wh_endpoint_previous", "endpoint %s: its previous secret does "
                             "not open: only the current one verifies", read->id);
        }
        verifier = sb_wh_verifier_new (scheme, read->options, (const char *const *) secrets,
                                       count);
        if (!verifier)
            sb_log_error ("wh_endpoint_unusable", "endpoint %s: its options or secret do not "
                          "make a verifier for scheme %s", read->id, read->scheme);
    }
    for (size_t i = 0; i < SB_WH_MAX_SECRETS; i++)
        s_secret_free (&secrets [i]);
    if (!verifier) {
        s_read_free (&read);
        s_entry_settle (self, entry, true);
        return;
    }
    sb_wh_verifier_destroy (&entry->verifier);
    entry->verifier = verifier;
    entry->found = true;
    entry->enabled = read->enabled;
    snprintf (entry->tenant, sizeof entry->tenant, "%s", read->tenant);
    snprintf (entry->connector, sizeof entry->connector, "%s", read->connector);
    entry->loaded_ms = sb_clock_mono_ms ();
    s_read_free (&read);
    s_entry_settle (self, entry, false);
}

static void
s_on_read_keys (sb_webhook_role_t *self, bool ok, void *arg)
{
    s_read_t *read = arg;
    if (self->closing) {
        s_read_free (&read);
        return;
    }
    if (!ok) {
        sb_wh_endpoint_t *entry = zhashx_lookup (self->endpoints, read->id);
        s_read_free (&read);
        if (entry)
            s_entry_settle (self, entry, true);
        return;
    }
    s_read_finish (self, read);
}

static char *
s_copy (const PGresult *res, int column)
{
    return PQgetisnull (res, 0, column)? NULL: strdup (PQgetvalue (res, 0, column));
}

static void
s_on_endpoint (const PGresult *res, const char *error, void *arg)
{
    s_read_t *read = arg;
    sb_webhook_role_t *self = read->self;
    if (self->closing) {
        s_read_free (&read);
        return;
    }
    sb_wh_endpoint_t *entry = zhashx_lookup (self->endpoints, read->id);
    if (!entry) {
        s_read_free (&read);
        return;
    }
    if (error || !res || PQnfields (res) != 8) {
        sb_log_warn ("db_error", "webhook endpoint %s: %s", read->id,
                     error? error: "unexpected answer");
        s_read_free (&read);
        s_entry_settle (self, entry, true);
        return;
    }
    if (PQntuples (res) == 0) {
        //  Unknown: a negative entry.
        sb_wh_verifier_destroy (&entry->verifier);
        entry->found = false;
        entry->enabled = false;
        entry->loaded_ms = sb_clock_mono_ms ();
        s_read_free (&read);
        s_entry_settle (self, entry, false);
        return;
    }
    read->tenant = s_copy (res, 0);
    read->connector = s_copy (res, 1);
    read->scheme = s_copy (res, 2);
    read->options = s_copy (res, 3);
    read->key_id = s_copy (res, 4);
    read->secret_hex = s_copy (res, 5);
    read->previous_hex = s_copy (res, 6);
    read->enabled = strcmp (PQgetvalue (res, 0, 7), "t") == 0;
    if (!read->tenant || !read->connector || !read->scheme || !read->options || !read->key_id
    ||  !read->secret_hex || (!PQgetisnull (res, 0, 6) && !read->previous_hex)) {
        s_read_free (&read);
        s_entry_settle (self, entry, true);
        return;
    }
    //  A key the ring lacks: read the ring once more (unless it was just
    //  read), then make the verifier.
    if (!sb_wh_keys_has (self->keys, read->key_id)
    &&  sb_clock_mono_ms () - self->keys_read_ms >= SB_WH_KEYS_RETRY_MS) {
        s_keys_read (self, s_on_read_keys, read);
        return;
    }
    s_read_finish (self, read);
}

void
sb_wh_endpoint_lookup (sb_webhook_role_t *self, sb_wh_req_t *req)
{
    int64_t now = sb_clock_mono_ms ();
    sb_wh_endpoint_t *entry = zhashx_lookup (self->endpoints, req->endpoint);
    if (entry && !entry->loading && s_entry_fresh (entry, now)) {
        entry->used_ms = now;
        sb_wh_ingest_endpoint_ready (self, req, entry, false);
        return;
    }
    if (!entry)
        entry = s_entry_new (self, req->endpoint);
    if (!entry) {
        sb_log_warn ("wh_cache_full", "webhook endpoint cache: %d endpoints are being read",
                     SB_WH_MAX_ENDPOINTS);
        sb_wh_ingest_endpoint_ready (self, req, NULL, true);
        return;
    }
    entry->used_ms = now;
    req->next = NULL;
    *entry->waiters_tail = req;
    entry->waiters_tail = &req->next;
    if (entry->loading)
        return;
    entry->loading = true;
    s_read_t *read = calloc (1, sizeof *read);
    if (read) {
        read->self = self;
        snprintf (read->id, sizeof read->id, "%s", entry->id);
        const char *params [] = { entry->id };
        if (sb_db_loop_query (self->db_loop, s_endpoint_sql, 1, params, s_on_endpoint, read) == 0)
            return;
        free (read);
        sb_log_warn ("db_busy", "webhook endpoint %s: the database queue is full", entry->id);
    }
    s_entry_settle (self, entry, true);
}

//  ---------------------------------------------------------------------
//  Counters

//  The counters as a JSON object (new), NULL when out of memory.
static json_t *
s_stats_json (const sb_wh_stats_t *s)
{
    json_t *hist = json_array ();
    for (size_t i = 0; hist && i < sizeof s->batch_hist / sizeof s->batch_hist [0]; i++)
        json_array_append_new (hist, json_integer ((json_int_t) s->batch_hist [i]));
    double mean = s->batches? (double) s->batch_events / (double) s->batches: 0;
    return json_pack ("{s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:I,"
                      " s:I, s:f, s:o?, s:I, s:I, s:I}",
                      "received", (json_int_t) s->received,
                      "stored", (json_int_t) s->stored,
                      "duplicates", (json_int_t) s->duplicates,
                      "refused",
                          "unverified", (json_int_t) s->refused_unverified,
                          "unknown", (json_int_t) s->refused_unknown,
                          "unreadable", (json_int_t) s->refused_unreadable,
                          "malformed", (json_int_t) s->refused_malformed,
                      "challenges", (json_int_t) s->challenges,
                      "unavailable", (json_int_t) s->unavailable,
                      "abandoned", (json_int_t) s->abandoned,
                      "batches", (json_int_t) s->batches,
                      "batch_requests", (json_int_t) s->batch_requests,
                      "batch_events", (json_int_t) s->batch_events,
                      "batch_max", (json_int_t) s->batch_max,
                      "batch_mean", mean,
                      "batch_hist", hist,
                      "published", (json_int_t) s->published,
                      "publish_failed", (json_int_t) s->publish_failed,
                      "reads", (json_int_t) s->reads);
}

static void
s_log_stats (sb_webhook_role_t *self)
{
    json_t *stats = s_stats_json (&self->stats);
    char *text = stats? json_dumps (stats, JSON_COMPACT): NULL;
    json_decref (stats);
    if (text)
        sb_log_info ("webhook_stats", "%s", text);
    free (text);
    self->logged = self->stats;
    self->stats_ms = sb_clock_mono_ms ();
}

static void
s_on_tick (sb_reactor_t *reactor, void *arg)
{
    sb_webhook_role_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    if (self->db_loop && !self->keys_reading && now - self->keys_read_ms >= SB_WH_KEYS_CHECK_MS) {
        self->keys_reading = true;
        s_keys_read (self, s_on_periodic_keys, NULL);
    }
    if (now - self->stats_ms >= SB_WH_STATS_MS
    &&  memcmp (&self->stats, &self->logged, sizeof self->stats) != 0)
        s_log_stats (self);
    sb_reactor_timer_set (reactor, self->tick_timer, now + SB_WH_TICK_MS);
}

static void
s_on_flush (sb_reactor_t *reactor, void *arg)
{
    sb_wh_ingest_flush (arg);
}

//  ---------------------------------------------------------------------
//  The role

static void
s_ping (sb_webhook_role_t *self, sb_worker_job_t *job)
{
    json_t *stats = s_stats_json (&self->stats);
    json_t *pong = stats? json_pack ("{s:b, s:s, s:s, s:o}", "pong", 1, "role", "webhook",
                                     "db", self->db_loop? "ok": "none", "stats", stats): NULL;
    char *text = pong? json_dumps (pong, JSON_COMPACT): NULL;
    json_decref (pong);
    if (text)
        sb_worker_job_done (&job, SB_STATUS_OK, text);
    else
        sb_worker_job_fail (&job, "out of memory");
    free (text);
}

static void
s_start (void *state, sb_worker_job_t *job)
{
    sb_webhook_role_t *self = state;
    const char *op = sb_worker_job_spec (job)->op;
    if (strcmp (op, "ping") == 0)
        s_ping (self, job);
    else
    if (strcmp (op, "webhook/receive") == 0)
        sb_wh_ingest_receive (self, job);
    else
    if (strcmp (op, "events/read") == 0)
        sb_wh_ingest_read (self, job);
    else
        sb_worker_job_fail_unknown_op (&job);
}

static void
s_abandon (void *state, sb_worker_job_t *job)
{
    sb_wh_ingest_abandon (state, job);
}

const sb_worker_role_t sb_webhook_role = { s_start, s_abandon };

//  Reads --secret-key-file (or, without one, SB_SECRET_KEY) into `secret`.
//  Returns its length, or 0 (logged) when there is none or it is unusable.
static size_t
s_read_secret (const char *path, uint8_t secret [S_MAX_SECRET_LEN])
{
    char *why = NULL;
    char *text = NULL;
    if (path && *path) {
        text = sb_secret_read_file (path, &why);
        if (!text) {
            sb_log_error ("secret_unreadable", "--secret-key-file: %s", why? why: "out of memory");
            free (why);
            return 0;
        }
    }
    else {
        const char *env = getenv ("SB_SECRET_KEY");
        if (!env || !*env) {
            sb_log_error ("secret_missing", "the webhook role needs the master secret the token "
                          "role seals webhook secrets under (--secret-key-file or SB_SECRET_KEY)");
            return 0;
        }
        text = strndup (env, strcspn (env, "\r\n"));
        if (!text)
            return 0;
    }
    size_t len = strlen (text);
    if (len < S_MIN_SECRET_LEN || len > S_MAX_SECRET_LEN) {
        sb_log_error ("secret_invalid", "--secret-key-file: its first line must be %d to %d "
                      "bytes, not %zu", S_MIN_SECRET_LEN, S_MAX_SECRET_LEN, len);
        len = 0;
    }
    else
        memcpy (secret, text, len);
    sb_secret_free (&text);
    return len;
}

sb_webhook_role_t *
sb_webhook_role_new (sb_worker_t *worker, const sb_webhook_config_t *config)
{
    if (config->batch_max < 1 || config->batch_max > SB_WH_MAX_BATCH_MAX) {
        sb_log_error ("config_invalid", "--webhook-batch-max must be 1 to %d, not %d",
                      SB_WH_MAX_BATCH_MAX, config->batch_max);
        return NULL;
    }
    sb_webhook_role_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->worker = worker;
    self->reactor = sb_worker_reactor (worker);
    self->batch_max = config->batch_max;
    self->queue_tail = &self->queue;
    self->tick_timer = self->flush_timer = -1;
    self->stats_ms = sb_clock_mono_ms ();
    self->endpoints = zhashx_new ();
    if (!self->endpoints)
        goto fail;
    zhashx_set_destructor (self->endpoints, s_entry_destroy);
    self->tick_timer = sb_reactor_timer_new (self->reactor, s_on_tick, self);
    self->flush_timer = sb_reactor_timer_new (self->reactor, s_on_flush, self);
    if (self->tick_timer < 0 || self->flush_timer < 0)
        goto fail;
    if (!config->conninfo || !*config->conninfo) {
        sb_log_warn ("webhook_no_db", "no --db: the webhook role answers ping only; webhooks "
                     "are answered 503");
        sb_reactor_timer_set (self->reactor, self->tick_timer, sb_clock_mono_ms () + SB_WH_TICK_MS);
        return self;
    }
    uint8_t secret [S_MAX_SECRET_LEN];
    size_t secret_len = s_read_secret (config->secret_key_file, secret);
    if (secret_len)
        self->keys = sb_wh_keys_new (secret, secret_len);
    if (!self->keys
    ||  sb_db_prepare (config->conninfo, config->migrations_dir, SB_WH_CONNECT_TIMEOUT_MS)) {
        sb_crypto_wipe (secret, sizeof secret);
        goto fail;
    }
    if (config->deliver_max > 0) {
        sb_wh_deliver_config_t deliver_config = {
            .conninfo = config->conninfo, .secret = secret, .secret_len = secret_len,
            .retry_schedule = config->retry_schedule, .timeout_ms = config->delivery_timeout_ms,
            .disable_after_s = config->disable_after_s, .allow_hosts = config->allow_hosts,
            .max_in_flight = config->deliver_max
        };
        self->deliver = sb_wh_deliver_new (self->reactor, &deliver_config);
    }
    sb_crypto_wipe (secret, sizeof secret);
    if (config->deliver_max > 0 && !self->deliver)
        goto fail;
    self->db_loop = sb_db_loop_new (self->reactor, config->conninfo);
    if (!self->db_loop) {
        sb_log_error ("webhook_init_failed", "cannot set up the database connection");
        goto fail;
    }
    //  The ring at once (the first tick), then every SB_WH_KEYS_CHECK_MS.
    sb_reactor_timer_set (self->reactor, self->tick_timer, sb_clock_mono_ms ());
    sb_log_info ("webhook_ready", "database migrated (%s); group commit of up to %d events",
                 config->migrations_dir, self->batch_max);
    return self;
fail:
    sb_webhook_role_destroy (&self);
    return NULL;
}

void
sb_webhook_role_destroy (sb_webhook_role_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_webhook_role_t *self = *self_p;
    self->closing = true;
    if (self->stats.received || self->stats.reads)
        s_log_stats (self);
    //  Pending statements are called back with "shutting down": they free
    //  their requests unanswered (the jobs are the worker's).
    sb_wh_deliver_destroy (&self->deliver);
    sb_db_loop_destroy (&self->db_loop);
    while (self->queue) {
        sb_wh_req_t *req = self->queue;
        self->queue = req->next;
        sb_wh_req_free (&req);
    }
    zhashx_destroy (&self->endpoints);
    if (self->tick_timer >= 0)
        sb_reactor_timer_free (self->reactor, self->tick_timer);
    if (self->flush_timer >= 0)
        sb_reactor_timer_free (self->reactor, self->flush_timer);
    sb_wh_keys_destroy (&self->keys);
    free (self);
    *self_p = NULL;
}
