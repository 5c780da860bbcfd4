/*  workers/sb_conn_keys.c — the data keys that seal connection secrets
    (sb_conn.h "Data keys"; db/migrations/010 table connection_keys, 011
    its functions; docs/CONNECTIONS.md "Storage and keys").

    A data key is 32 random bytes (AES-256-GCM), stored sealed under
    sb_token_subkey (self, "connection-keys") with its id as associated
    data, so the database never holds a key in the clear and a row whose
    sealed key was swapped for another's does not open. The worker keeps
    every key of the table it has opened (wiped at destroy): a row sealed
    under any of them, the current one or one a rotation replaced, opens
    without another read. It reads the ring again when
    SB_OAUTH_KEY_CHECK_MS have passed, so a rotation made elsewhere is
    seen within that time, and at once when asked for a key it lacks.

    Every read passes a freshly made candidate key, which the database
    makes current only when no key is (connection_key_ring, the partial
    unique index connection_keys_current): the first worker to need a key
    makes it, whichever that is, and every worker reads the same one.
    Rotation (a new current key) is the admin API's (sb_conn_admin.c). */
#include "sb_conn.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_CONN_KEY_ID_BYTES    12      /* random bytes of a key id (SB_CONN_KEY_ID_LEN characters) */
#define SB_CONN_MAX_KEY_ID      32      /* a key id as the table allows it, characters */
#define SB_MAX_CONN_KEYS        256     /* keys the ring holds; past it, the oldest are not read */
#define SB_CONN_SEALED_KEY_LEN  (SB_AEAD_KEY_LEN + SB_AEAD_OVERHEAD)     /* 60 bytes */
#define SB_CONN_MAX_AD          512     /* "<tenant>/<connector>/<column>", bytes */

static const char s_ring_sql [] =
    "SELECT id, encode (sealed_key, 'hex'), current"
    "  FROM connection_key_ring ($1, decode ($2, 'hex'))";

typedef struct {
    char id [SB_CONN_MAX_KEY_ID + 1];
    uint8_t key [SB_AEAD_KEY_LEN];
} s_key_t;

struct _sb_conn_keys_t {
    s_key_t keys [SB_MAX_CONN_KEYS];
    size_t count;
    char current [SB_CONN_MAX_KEY_ID + 1];  /* "" until read */
    int64_t read_ms;                        /* sb_clock_mono_ms of the last read */
};

sb_conn_keys_t *
sb_conn_keys_new (void)
{
    return calloc (1, sizeof (sb_conn_keys_t));
}

void
sb_conn_keys_destroy (sb_conn_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_crypto_wipe (*self_p, sizeof **self_p);
    free (*self_p);
    *self_p = NULL;
}

static const s_key_t *
s_find (const sb_conn_keys_t *ring, const char *id)
{
    for (size_t i = 0; ring && id && i < ring->count; i++)
        if (strcmp (ring->keys [i].id, id) == 0)
            return &ring->keys [i];
    return NULL;
}

static bool
s_id_valid (const char *id)
{
    size_t len = strlen (id);
    if (len == 0 || len > SB_CONN_MAX_KEY_ID)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", id [i]))
            return false;
    return true;
}

//  A new key, as it is stored: id and sealed key in hex. Holds no key in
//  the clear (the ring opens the row the database answers).
typedef struct {
    char id [SB_CONN_MAX_KEY_ID + 1];
    char sealed_hex [2 * SB_CONN_SEALED_KEY_LEN + 1];
} s_candidate_t;

//  Makes a random key sealed under the role's "connection-keys" key.
//  Returns NULL, or a sentence saying why not.
static const char *
s_candidate_make (sb_token_role_t *self, s_candidate_t *candidate)
{
    memset (candidate, 0, sizeof *candidate);
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN], key [SB_AEAD_KEY_LEN];
    uint8_t id_bytes [SB_CONN_KEY_ID_BYTES];
    if (sb_token_subkey (self, "connection-keys", box_key))
        return "the token service has no master secret (--secret-key-file or SB_SECRET_KEY): "
               "it cannot seal connection secrets";
    const char *why = "a connection data key could not be made";
    char *id = NULL;
    if (sb_crypto_random (id_bytes, sizeof id_bytes) == 0
    &&  sb_crypto_random (key, sizeof key) == 0
    &&  (id = sb_base64url_encode (id_bytes, sizeof id_bytes)) != NULL
    &&  strlen (id) == SB_CONN_KEY_ID_LEN
    &&  sb_token_row_key_seal (box_key, id, key, sizeof key, candidate->sealed_hex) == 0) {
        snprintf (candidate->id, sizeof candidate->id, "%s", id);
        why = NULL;
    }
    free (id);
    sb_crypto_wipe (box_key, sizeof box_key);
    sb_crypto_wipe (key, sizeof key);
    return why;
}

//  Opens the key of row `row` of `res` (id, sealed hex, current) into
//  `key`. Returns 0, or -1 with the reason logged.
static int
s_row_open (const PGresult *res, int row, const uint8_t box_key [SB_TOKEN_SUBKEY_LEN],
            s_key_t *key)
{
    const char *id = PQgetvalue (res, row, 0);
    uint8_t plain [SB_AEAD_KEY_LEN];
    int rc = s_id_valid (id)?
             sb_token_row_key_open (box_key, id, PQgetvalue (res, row, 1), plain, sizeof plain): -1;
    if (rc == -1)
        sb_log_error ("conn_key_unreadable", "a connection_keys row cannot be read");
    else
    if (rc)
        sb_log_error ("conn_key_sealed", "connection data key %s does not open under the master "
                      "secret (another secret sealed it, or the row was altered)", id);
    else {
        snprintf (key->id, sizeof key->id, "%s", id);
        memcpy (key->key, plain, sizeof plain);
    }
    sb_crypto_wipe (plain, sizeof plain);
    return rc? -1: 0;
}

//  Takes connection_key_ring's answer into the ring. Returns the current
//  key's id (in the ring), or NULL with `*why` a sentence.
static const char *
s_ring_load (sb_token_role_t *self, const PGresult *res, const char *error, const char *need_id,
             const char **why)
{
    sb_conn_keys_t *ring = self->conn_keys;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQnfields (res) != 3) {
        sb_log_warn ("db_error", "connection keys: %s",
                     error? error: res? PQresultErrorMessage (res): "no result");
        *why = "the token service's database failed";
        return NULL;
    }
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];
    if (sb_token_subkey (self, "connection-keys", box_key)) {
        *why = "the token service has no master secret: it cannot open connection secrets";
        return NULL;
    }
    const char *current = NULL;
    int rows = PQntuples (res);
    for (int row = 0; row < rows; row++) {
        const char *id = PQgetvalue (res, row, 0);
        bool is_current = strcmp (PQgetvalue (res, row, 2), "t") == 0;
        const s_key_t *held = s_find (ring, id);
        if (!held && ring->count == SB_MAX_CONN_KEYS) {
            //  The answer lists the current key first, then the newest:
            //  a new current key takes the place of the one held longest.
            sb_log_warn ("conn_keys_full", "connection_keys holds more than %d keys: the "
                         "oldest are not read (key %s)", SB_MAX_CONN_KEYS,
                         is_current? ring->keys [0].id: id);
            if (!is_current)
                continue;
            sb_crypto_wipe (&ring->keys [0], sizeof ring->keys [0]);
            memmove (&ring->keys [0], &ring->keys [1], (ring->count - 1) * sizeof ring->keys [0]);
            ring->count--;
        }
        if (!held && s_row_open (res, row, box_key, &ring->keys [ring->count]) == 0)
            held = &ring->keys [ring->count++];
        if (held && is_current)
            current = held->id;
        else
        if (!held && is_current) {
            *why = "the current connection data key cannot be opened with this worker's "
                   "master secret";
            sb_crypto_wipe (box_key, sizeof box_key);
            return NULL;
        }
    }
    sb_crypto_wipe (box_key, sizeof box_key);
    if (!current) {
        *why = "there is no current connection data key";
        return NULL;
    }
    if (need_id && !s_find (ring, need_id)) {
        sb_log_error ("conn_key_missing", "connection data key %s is not in connection_keys "
                      "or does not open", need_id);
        *why = "a connection's data key is missing or cannot be opened";
        return NULL;
    }
    if (strcmp (ring->current, current) != 0) {
        if (*ring->current)
            sb_log_info ("conn_key_changed", "sealing connection secrets under data key %s "
                         "(was %s)", current, ring->current);
        snprintf (ring->current, sizeof ring->current, "%s", current);
    }
    ring->read_ms = sb_clock_mono_ms ();
    return ring->current;
}

//  The ring answers at once: it knows the current key and `need_id`.
static bool
s_ring_fresh (const sb_conn_keys_t *ring, const char *need_id)
{
    return ring && *ring->current && sb_clock_mono_ms () - ring->read_ms < SB_OAUTH_KEY_CHECK_MS
        && (!need_id || s_find (ring, need_id));
}

//  Before the ring is read for `need_id` (NULL: the current key only):
//  the candidate key the read passes. Returns NULL, or a sentence saying
//  why the ring cannot be read.
static const char *
s_ring_candidate (sb_token_role_t *self, const char *need_id, s_candidate_t *candidate)
{
    if (!self->conn_keys)
        return "out of memory";
    if (need_id && !s_id_valid (need_id))
        return "a connection names a malformed data key";
    return s_candidate_make (self, candidate);
}

//  ---------------------------------------------------------------------
//  For a job

typedef struct {
    sb_token_role_t *self;
    char need_id [SB_CONN_MAX_KEY_ID + 1];
    bool need;
    sb_conn_keys_fn *cb;
    void *arg;
    void (*free_arg) (void *arg);
} s_ready_t;

static void
s_ready_free (void *arg)
{
    s_ready_t *ready = arg;
    if (ready->free_arg)
        ready->free_arg (ready->arg);
    free (ready);
}

static void
s_on_ring (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_ready_t *ready = arg;
    const char *why = NULL;
    const char *current = s_ring_load (ready->self, res, error,
                                       ready->need? ready->need_id: NULL, &why);
    if (!current) {
        sb_worker_job_fail (job_p, why);
        s_ready_free (ready);
        return;
    }
    ready->cb (job_p, current, ready->arg);
    free (ready);
}

void
sb_conn_keys_ready (sb_token_role_t *self, sb_worker_job_t *job, const char *need_id,
                    sb_conn_keys_fn *cb, void *arg, void (*free_arg) (void *arg))
{
    if (s_ring_fresh (self->conn_keys, need_id)) {
        cb (&job, self->conn_keys->current, arg);
        return;
    }
    s_candidate_t candidate;
    const char *why = s_ring_candidate (self, need_id, &candidate);
    s_ready_t *ready = why? NULL: calloc (1, sizeof *ready);
    if (!why && !ready)
        why = "out of memory";
    if (why) {
        sb_token_fail_arg (&job, why, arg, free_arg);
        return;
    }
    *ready = (s_ready_t) { .self = self, .need = need_id != NULL, .cb = cb, .arg = arg,
                           .free_arg = free_arg };
    if (need_id)
        snprintf (ready->need_id, sizeof ready->need_id, "%s", need_id);
    const char *params [] = { candidate.id, candidate.sealed_hex };
    sb_token_query (self, job, s_ring_sql, 2, params, s_on_ring, ready, s_ready_free);
}

//  ---------------------------------------------------------------------
//  Without a job

typedef struct {
    sb_token_role_t *self;
    char need_id [SB_CONN_MAX_KEY_ID + 1];
    bool need;
    sb_conn_keys_plain_fn *cb;
    void *arg;
} s_plain_t;

static void
s_on_plain_ring (const PGresult *res, const char *error, void *arg)
{
    s_plain_t plain = *(s_plain_t *) arg;
    free (arg);
    const char *why = NULL;
    const char *current = NULL;
    if (error && strcmp (error, "shutting down") == 0)
        why = "the worker is shutting down";     //  the role is being destroyed: touch nothing
    else
        current = s_ring_load (plain.self, res, error, plain.need? plain.need_id: NULL, &why);
    plain.cb (current, current? NULL: why, plain.arg);
}

void
sb_conn_keys_ready_plain (sb_token_role_t *self, const char *need_id,
                          sb_conn_keys_plain_fn *cb, void *arg)
{
    if (s_ring_fresh (self->conn_keys, need_id)) {
        cb (self->conn_keys->current, NULL, arg);
        return;
    }
    s_candidate_t candidate;
    const char *why = self->db_loop? s_ring_candidate (self, need_id, &candidate): "out of memory";
    s_plain_t *plain = why? NULL: calloc (1, sizeof *plain);
    if (!why && !plain)
        why = "out of memory";
    if (!why) {
        *plain = (s_plain_t) { .self = self, .need = need_id != NULL, .cb = cb, .arg = arg };
        if (need_id)
            snprintf (plain->need_id, sizeof plain->need_id, "%s", need_id);
        const char *params [] = { candidate.id, candidate.sealed_hex };
        if (sb_db_loop_query (self->db_loop, s_ring_sql, 2, params, s_on_plain_ring, plain) == 0)
            return;
        free (plain);
        why = "the token service's database is busy";
    }
    cb (NULL, why, arg);
}

//  ---------------------------------------------------------------------
//  Sealing

//  The associated data "<tenant>/<connector>/<column>" into `ad`. 0 or -1.
static int
s_ad (char ad [SB_CONN_MAX_AD], const char *tenant, const char *connector, const char *column,
      size_t *ad_len)
{
    if (!tenant || !connector || !column || !*tenant || !*connector || !*column)
        return -1;
    int len = snprintf (ad, SB_CONN_MAX_AD, "%s/%s/%s", tenant, connector, column);
    if (len < 0 || len >= SB_CONN_MAX_AD)
        return -1;
    *ad_len = (size_t) len;
    return 0;
}

uint8_t *
sb_conn_seal (sb_token_role_t *self, const char *key_id, const char *tenant,
              const char *connector, const char *column, const void *plain, size_t len,
              size_t *out_len)
{
    const s_key_t *key = s_find (self->conn_keys, key_id);
    char ad [SB_CONN_MAX_AD];
    size_t ad_len = 0;
    if (!key || !out_len || (!plain && len) || len > SB_MAX_CONN_SECRET
    ||  s_ad (ad, tenant, connector, column, &ad_len))
        return NULL;
    size_t size = len + SB_AEAD_OVERHEAD;
    uint8_t *out = malloc (size);
    if (out && sb_aead_seal (key->key, ad, ad_len, plain? plain: "", len, out, size, out_len)) {
        free (out);
        out = NULL;
    }
    return out;
}

char *
sb_conn_open (sb_token_role_t *self, const char *key_id, const char *tenant,
              const char *connector, const char *column, const uint8_t *sealed,
              size_t sealed_len)
{
    const s_key_t *key = s_find (self->conn_keys, key_id);
    char ad [SB_CONN_MAX_AD];
    size_t ad_len = 0;
    if (!key || !sealed || sealed_len < SB_AEAD_OVERHEAD
    ||  sealed_len > SB_MAX_CONN_SECRET + SB_AEAD_OVERHEAD
    ||  s_ad (ad, tenant, connector, column, &ad_len))
        return NULL;
    size_t size = sealed_len - SB_AEAD_OVERHEAD + 1;
    char *out = malloc (size);
    size_t len = 0;
    if (out && sb_aead_open (key->key, ad, ad_len, sealed, sealed_len, (uint8_t *) out, size,
                             &len) == 0) {
        out [len] = '\0';
        return out;
    }
    if (out)
        sb_crypto_wipe (out, size);
    free (out);
    return NULL;
}

char *
sb_conn_bytea_text (const uint8_t *data, size_t len)
{
    if ((!data && len) || len > SB_AEAD_MAX_PLAIN)
        return NULL;
    char *text = malloc (2 + 2 * len + 1);
    if (!text)
        return NULL;
    text [0] = '\\';
    text [1] = 'x';
    if (len)
        sb_hex_encode (data, len, text + 2);
    else
        text [2] = '\0';
    return text;
}

uint8_t *
sb_conn_bytea_parse (const char *text, size_t *len)
{
    if (!text || !len || text [0] != '\\' || text [1] != 'x')
        return NULL;
    size_t hex_len = strlen (text + 2);
    if (hex_len % 2 || hex_len / 2 > SB_AEAD_MAX_PLAIN)
        return NULL;
    uint8_t *data = malloc (hex_len / 2 + 1);       //  never malloc (0)
    if (data && sb_hex_decode (text + 2, data, hex_len / 2, len)) {
        free (data);
        data = NULL;
    }
    return data;
}

//  ---------------------------------------------------------------------
//  Rotation

static const char s_rotate_sql [] =
    "SELECT connection_key_rotate ($1, decode ($2, 'hex'))";

typedef struct {
    sb_token_role_t *self;
    char id [SB_CONN_MAX_KEY_ID + 1];
    sb_conn_keys_rotate_fn *cb;
    void *arg;
    void (*free_arg) (void *arg);
} s_rotate_t;

static void
s_rotate_free (void *arg)
{
    s_rotate_t *rotate = arg;
    if (rotate->free_arg)
        rotate->free_arg (rotate->arg);
    free (rotate);
}

static void
s_on_rotated (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_rotate_t *rotate = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "connection key rotation: %s",
                     error? error: res? PQresultErrorMessage (res): "no result");
        rotate->cb (job_p, NULL, NULL, "the token service's database failed", rotate->arg);
    }
    else {
        const char *previous = PQgetisnull (res, 0, 0)? NULL: PQgetvalue (res, 0, 0);
        //  The next use reads the ring again, opening the new key.
        rotate->self->conn_keys->read_ms = sb_clock_mono_ms () - SB_OAUTH_KEY_CHECK_MS;
        sb_log_info ("conn_key_rotated", "connection data key %s is current (was %s)",
                     rotate->id, previous? previous: "none");
        rotate->cb (job_p, rotate->id, previous, NULL, rotate->arg);
    }
    free (rotate);
}

void
sb_conn_keys_rotate (sb_token_role_t *self, sb_worker_job_t *job, sb_conn_keys_rotate_fn *cb,
                     void *arg, void (*free_arg) (void *arg))
{
    s_candidate_t candidate;
    const char *why = self->conn_keys? s_candidate_make (self, &candidate): "out of memory";
    s_rotate_t *rotate = why? NULL: calloc (1, sizeof *rotate);
    if (!why && !rotate)
        why = "out of memory";
    if (why) {
        sb_token_fail_arg (&job, why, arg, free_arg);
        return;
    }
    *rotate = (s_rotate_t) { .self = self, .cb = cb, .arg = arg, .free_arg = free_arg };
    snprintf (rotate->id, sizeof rotate->id, "%s", candidate.id);
    const char *params [] = { candidate.id, candidate.sealed_hex };
    sb_token_query (self, job, s_rotate_sql, 2, params, s_on_rotated, rotate, s_rotate_free);
}
