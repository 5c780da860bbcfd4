/*  workers/sb_api_creds.c — the api role's tenant credentials (see
    sb_api_creds.h).

    The cache is a fixed table of SB_API_CREDS_MAX slots with a hash index
    "<tenant>\n<connector>" → slot; a full table evicts by clock (a slot
    used since the hand last passed gets a second chance). A flight is
    one worker request in the air and the waits that share it; flights
    live in a list (at most SB_MAX_WORKER_REQUESTS of them), found by key
    and `stale`. */
#include "sb_api_creds.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_text.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;                  /* "<tenant>\n<connector>", NULL: a free slot */
    char *secret;               /* the access token or API key (wiped on eviction) */
    size_t secret_len;
    bool api_key;               /* kind api_key */
    uint64_t version;           /* the connection's credential version */
    json_t *vars;               /* kept provider fields, or NULL */
    int64_t valid_until;        /* monotonic ms */
    bool used;                  /* looked up since the clock hand passed */
} s_entry_t;

typedef struct _s_flight_t s_flight_t;

struct _sb_api_creds_wait_t {
    s_flight_t *flight;         /* the request it waits on */
    void *handle;               /* its item in flight->waits */
    sb_api_creds_fn *fn;
    void *arg;
    char *subject;              /* the user it waits for */
};

struct _s_flight_t {
    sb_api_creds_t *creds;      /* owner */
    char *key;                  /* as in the cache */
    char *subject;              /* the user the request was sent for */
    uint64_t stale;             /* the version it said was refused, 0: none */
    int64_t request;            /* the worker request's id */
    zlistx_t *waits;            /* sb_api_creds_wait_t (owned) */
    void *handle;               /* its item in creds->flights */
};

struct _sb_api_creds_t {
    sb_worker_t *worker;        /* borrowed */
    s_entry_t *entries;         /* SB_API_CREDS_MAX slots */
    zhashx_t *index;            /* key → s_entry_t (borrowed) */
    size_t hand;                /* the clock's next slot */
    zlistx_t *flights;          /* s_flight_t (owned) */
    uint64_t requests;          /* sent so far */
};

//  "<tenant>\n<connector>", a new string or NULL.
static char *
s_key (const char *tenant, const char *connector)
{
    return sb_strfmt ("%s\n%s", tenant, connector);
}

static void
s_entry_clear (sb_api_creds_t *self, s_entry_t *entry)
{
    if (!entry->key)
        return;
    zhashx_delete (self->index, entry->key);
    if (entry->secret) {
        sb_crypto_wipe (entry->secret, entry->secret_len);
        free (entry->secret);
    }
    json_decref (entry->vars);
    free (entry->key);
    memset (entry, 0, sizeof *entry);
}

//  A slot for a new entry: a free one, else the clock's victim.
static s_entry_t *
s_entry_slot (sb_api_creds_t *self)
{
    if (zhashx_size (self->index) < SB_API_CREDS_MAX) {
        for (size_t i = 0; i < SB_API_CREDS_MAX; i++) {
            s_entry_t *entry = &self->entries [(self->hand + i) % SB_API_CREDS_MAX];
            if (!entry->key)
                return entry;
        }
    }
    //  Full: at most two turns (the first clears every second chance)
    while (true) {
        s_entry_t *entry = &self->entries [self->hand];
        self->hand = (self->hand + 1) % SB_API_CREDS_MAX;
        if (entry->used)
            entry->used = false;
        else {
            s_entry_clear (self, entry);
            return entry;
        }
    }
}

static void
s_cache_put (sb_api_creds_t *self, const char *key, const sb_cred_t *cred, int64_t expires_in)
{
    int64_t now = sb_clock_mono_ms ();
    int64_t valid_until = expires_in < 0 ? now + SB_API_CREDS_NO_EXPIRY_MS
                        : now + (expires_in - SB_API_CREDS_MARGIN_S) * 1000;
    s_entry_t *entry = zhashx_lookup (self->index, key);
    if (entry && entry->version > cred->version)
        return;                     //  a newer one came back first
    if (entry)
        s_entry_clear (self, entry);
    if (valid_until <= now)
        return;                     //  good for this call only
    entry = s_entry_slot (self);
    entry->key = strdup (key);
    entry->secret = strdup (cred->secret);
    if (!entry->key || !entry->secret) {
        free (entry->key);
        free (entry->secret);
        memset (entry, 0, sizeof *entry);
        return;
    }
    entry->secret_len = strlen (entry->secret);
    entry->api_key = cred->api_key;
    entry->version = cred->version;
    entry->vars = cred->vars ? json_deep_copy (cred->vars) : NULL;
    entry->valid_until = valid_until;
    entry->used = true;
    zhashx_insert (self->index, entry->key, entry);
}

bool
sb_api_creds_lookup (sb_api_creds_t *self, const char *tenant, const char *connector,
                     sb_cred_t *cred)
{
    char key [SB_MAX_TENANT_LEN + SB_MAX_NAME_LEN + 2];
    snprintf (key, sizeof key, "%s\n%s", tenant, connector);
    s_entry_t *entry = zhashx_lookup (self->index, key);
    if (!entry)
        return false;
    if (entry->valid_until <= sb_clock_mono_ms ()) {
        s_entry_clear (self, entry);
        return false;
    }
    entry->used = true;
    memset (cred, 0, sizeof *cred);
    cred->state = SB_CRED_CONNECTED;
    cred->secret = entry->secret;
    cred->api_key = entry->api_key;
    cred->version = entry->version;
    cred->vars = entry->vars;
    return true;
}

void
sb_api_creds_evict (sb_api_creds_t *self, const char *tenant, const char *connector,
                    uint64_t version)
{
    char key [SB_MAX_TENANT_LEN + SB_MAX_NAME_LEN + 2];
    snprintf (key, sizeof key, "%s\n%s", tenant, connector);
    s_entry_t *entry = zhashx_lookup (self->index, key);
    if (entry && entry->version <= version)
        s_entry_clear (self, entry);
}

//  ---------------------------------------------------------------------
//  Flights

static void
s_flight_destroy (s_flight_t **flight_p)
{
    s_flight_t *flight = *flight_p;
    if (!flight)
        return;
    sb_api_creds_wait_t *wait;
    while ((wait = zlistx_detach (flight->waits, NULL))) {
        free (wait->subject);
        free (wait);
    }
    zlistx_destroy (&flight->waits);
    free (flight->key);
    free (flight->subject);
    free (flight);
    *flight_p = NULL;
}

//  Reads the token service's answer into *cred (pointers into `doc`);
//  *expires_in -1 when none is given.
static void
s_read_answer (sb_status_t status, json_t *doc, sb_cred_t *cred, int64_t *expires_in)
{
    memset (cred, 0, sizeof *cred);
    cred->state = SB_CRED_UNAVAILABLE;
    *expires_in = -1;
    if (status == SB_STATUS_FAILED) {
        cred->state = SB_CRED_FAILED;
        cred->detail = json_string_value (json_object_get (doc, "error"));
        json_int_t after = json_integer_value (json_object_get (doc, "retry_after"));
        cred->retry_after_s = after > 0 && after < 86400 ? (uint32_t) after : 0;
        return;
    }
    if (status != SB_STATUS_OK || !json_is_object (doc))
        return;
    const char *state = json_string_value (json_object_get (doc, "status"));
    if (!state)
        return;
    if (strcmp (state, "connected") == 0) {
        const char *secret = json_string_value (json_object_get (doc, "secret"));
        json_t *version = json_object_get (doc, "version");
        json_t *expires = json_object_get (doc, "expires_in");
        json_t *vars = json_object_get (doc, "vars");
        const char *kind = json_string_value (json_object_get (doc, "kind"));
        if (!secret || !*secret || !json_is_integer (version) || json_integer_value (version) < 1
        ||  (expires && !json_is_integer (expires)) || (vars && !json_is_object (vars)))
            return;                 //  not an answer we can use: unavailable
        cred->state = SB_CRED_CONNECTED;
        cred->secret = secret;
        cred->api_key = kind && strcmp (kind, "api_key") == 0;
        cred->version = (uint64_t) json_integer_value (version);
        cred->vars = vars;
        if (expires)
            *expires_in = json_integer_value (expires) > 0 ? json_integer_value (expires) : 0;
    }
    else
    if (strcmp (state, "missing") == 0 || strcmp (state, "broken") == 0) {
        cred->state = strcmp (state, "missing") == 0 ? SB_CRED_MISSING : SB_CRED_BROKEN;
        cred->detail = json_string_value (json_object_get (doc, "detail"));
        cred->connect_url = json_string_value (json_object_get (doc, "connect_url"));
        if (cred->connect_url && strncmp (cred->connect_url, "https://", 8) != 0
        &&  strncmp (cred->connect_url, "http://", 7) != 0)
            cred->connect_url = NULL;
    }
}

static const char *
s_state_name (sb_cred_state_t state)
{
    return state == SB_CRED_CONNECTED ? "connected" : state == SB_CRED_MISSING ? "missing"
         : state == SB_CRED_BROKEN ? "broken" : state == SB_CRED_FAILED ? "failed" : "unavailable";
}

//  The worker request's REPLY (or its timeout): fill the cache, then tell
//  every wait. The flight is out of the list first, so a wait's callback
//  that asks again starts a new one.
static void
s_on_reply (sb_status_t status, const char *result_json, uint32_t retry_after_ms, void *arg)
{
    s_flight_t *flight = arg;
    sb_api_creds_t *self = flight->creds;
    zlistx_detach (self->flights, flight->handle);
    json_error_t jerr;
    json_t *doc = result_json ? sb_json_parse (result_json, strlen (result_json), 0, &jerr) : NULL;
    sb_cred_t cred;
    int64_t expires_in;
    s_read_answer (status, doc, &cred, &expires_in);
    if (cred.state == SB_CRED_FAILED && !cred.retry_after_s && retry_after_ms)
        cred.retry_after_s = (retry_after_ms + 999) / 1000;
    if (cred.state == SB_CRED_CONNECTED)
        s_cache_put (self, flight->key, &cred, expires_in);
    size_t cut = strcspn (flight->key, "\n");
    sb_log_info ("credential_answer", "tenant=%.*s connector=%s status=%s state=%s version=%llu "
                 "waits=%zu", (int) cut, flight->key, flight->key + cut + 1, sb_status_name (status),
                 s_state_name (cred.state), (unsigned long long) cred.version,
                 zlistx_size (flight->waits));
    //  A link is signed for the user who asked: other users ask again
    bool personal = cred.state == SB_CRED_MISSING || cred.state == SB_CRED_BROKEN;
    sb_cred_t again = { .state = SB_CRED_ASK_AGAIN };
    sb_api_creds_wait_t *wait;
    while ((wait = zlistx_detach (flight->waits, NULL))) {
        sb_api_creds_fn *fn = wait->fn;
        void *fn_arg = wait->arg;
        bool other = personal && strcmp (wait->subject, flight->subject) != 0;
        free (wait->subject);
        free (wait);
        fn (other ? &again : &cred, fn_arg);
    }
    if (cred.secret)
        sb_crypto_wipe (sb_unconst (cred.secret), strlen (cred.secret));
    json_decref (doc);
    s_flight_destroy (&flight);
}

sb_api_creds_wait_t *
sb_api_creds_fetch (sb_api_creds_t *self, sb_worker_job_t *job, const char *connector,
                    uint64_t stale, sb_api_creds_fn *fn, void *arg, const char **why)
{
    *why = "out of memory";
    const char *subject = sb_worker_job_spec (job)->subject;
    if (!subject)
        subject = "";
    char *key = s_key (sb_worker_job_tenant (job), connector);
    sb_api_creds_wait_t *wait = calloc (1, sizeof *wait);
    if (wait)
        wait->subject = strdup (subject);
    if (!key || !wait || !wait->subject) {
        free (key);
        if (wait)
            free (wait->subject);
        free (wait);
        return NULL;
    }
    wait->fn = fn;
    wait->arg = arg;
    s_flight_t *flight;
    for (flight = zlistx_first (self->flights); flight; flight = zlistx_next (self->flights))
        if (flight->stale >= stale && strcmp (flight->key, key) == 0)
            break;
    if (flight) {
        free (key);
        wait->flight = flight;
        wait->handle = zlistx_add_end (flight->waits, wait);
        if (!wait->handle) {
            free (wait->subject);
            free (wait);
            return NULL;
        }
        return wait;
    }
    int64_t left = sb_clock_left_ms (sb_worker_job_deadline (job));
    if (left < SB_API_CREDS_MIN_LEFT_MS) {
        *why = "the call has no time left";
        free (key);
        free (wait->subject);
        free (wait);
        return NULL;
    }
    flight = calloc (1, sizeof *flight);
    char data [48];
    if (stale)
        snprintf (data, sizeof data, "{\"stale\":%llu}", (unsigned long long) stale);
    else
        snprintf (data, sizeof data, "{}");
    sb_job_t request = {
        .op = sb_unconst ("connection/credential"), .connector = sb_unconst (connector),
        .subject = sb_unconst (subject), .data = data,
    };
    if (flight) {
        flight->creds = self;
        flight->key = key;
        key = NULL;
        flight->subject = strdup (subject);
        flight->stale = stale;
        flight->waits = zlistx_new ();
    }
    if (!flight || !flight->subject || !flight->waits
    ||  !(wait->handle = zlistx_add_end (flight->waits, wait))) {
        free (key);
        free (wait->subject);
        free (wait);
        s_flight_destroy (&flight);
        return NULL;
    }
    wait->flight = flight;
    //  Leave the call time for its upstream request, and for the answer
    //  that the token service did not answer in time
    int64_t reserve = left > 2 * SB_API_CREDS_RESERVE_MS ? SB_API_CREDS_RESERVE_MS : left / 2;
    int64_t wanted = left - reserve;
    uint32_t timeout = wanted < SB_API_CREDS_TIMEOUT_MS ? (uint32_t) wanted : SB_API_CREDS_TIMEOUT_MS;
    flight->request = sb_worker_request (job, "token", &request, timeout, SB_FLAG_RETRY_SAFE,
                                         s_on_reply, flight);
    if (flight->request <= 0 || !(flight->handle = zlistx_add_end (self->flights, flight))) {
        if (flight->request > 0)
            sb_worker_request_cancel (self->worker, flight->request);
        *why = "the request to the token service could not be sent";
        s_flight_destroy (&flight);     //  frees the wait too
        return NULL;
    }
    self->requests++;
    sb_log_debug ("credential_request", "corr_id=%s connector=%s stale=%llu",
                  sb_worker_job_corr_id (job), connector, (unsigned long long) stale);
    return wait;
}

void
sb_api_creds_cancel (sb_api_creds_t *self, sb_api_creds_wait_t **wait_p)
{
    (void) self;
    sb_api_creds_wait_t *wait = wait_p ? *wait_p : NULL;
    if (!wait)
        return;
    zlistx_detach (wait->flight->waits, wait->handle);
    free (wait->subject);
    free (wait);
    *wait_p = NULL;
}

size_t
sb_api_creds_size (sb_api_creds_t *self)
{
    return zhashx_size (self->index);
}

uint64_t
sb_api_creds_requests (sb_api_creds_t *self)
{
    return self->requests;
}

//  ---------------------------------------------------------------------
//  Lifecycle

sb_api_creds_t *
sb_api_creds_new (sb_worker_t *worker)
{
    sb_api_creds_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->worker = worker;
    self->entries = calloc (SB_API_CREDS_MAX, sizeof (s_entry_t));
    self->index = zhashx_new ();
    self->flights = zlistx_new ();
    if (!self->entries || !self->index || !self->flights) {
        sb_api_creds_destroy (&self);
        return NULL;
    }
    return self;
}

void
sb_api_creds_destroy (sb_api_creds_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_api_creds_t *self = *self_p;
    if (self->flights) {
        s_flight_t *flight;
        while ((flight = zlistx_detach (self->flights, NULL))) {
            sb_worker_request_cancel (self->worker, flight->request);
            s_flight_destroy (&flight);
        }
        zlistx_destroy (&self->flights);
    }
    if (self->entries && self->index)
        for (size_t i = 0; i < SB_API_CREDS_MAX; i++)
            s_entry_clear (self, &self->entries [i]);
    free (self->entries);
    zhashx_destroy (&self->index);
    free (self);
    *self_p = NULL;
}
