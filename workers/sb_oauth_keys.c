/*  workers/sb_oauth_keys.c — the Ed25519 keys access tokens are signed
    with (sb_token_int.h; db/migrations/006, table signing_keys).

    Only token workers hold private keys. A key's seed is stored sealed
    (sb_aead_seal, AES-256-GCM) under sb_token_subkey (self,
    "signing-keys") with its kid as associated data, next to its public
    key. Opening a row checks both: a seed that does not open under our
    secret, or whose public key is not the row's, is neither used nor
    published, so a row written by someone without the secret can never
    put a verification key in the set.

    A worker keeps the current key in memory and reads it again when
    SB_OAUTH_KEY_CHECK_MS have passed since it last did, so a rotation
    made by another worker is seen within that time; a token signed under
    the old key meanwhile stays valid (the old key is still published).
    Every read passes a freshly made candidate key, which the database
    makes current only when no key is (signing_key_current): the first
    worker to need a key makes it, whichever that is. */
#include "sb_token_int.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_jwks.h"
#include "sb_log.h"
#include "sb_token.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_OAUTH_SEALED_SEED_LEN    (SB_ED25519_KEY_LEN + SB_AEAD_OVERHEAD)     /* 60 bytes */
#define SB_OAUTH_KEY_WINDOW_S       (SB_OAUTH_ACCESS_TTL_S + SB_TOKEN_CLOCK_SKEW_S)

static const char s_current_sql [] =
    "SELECT kid, encode (public_key, 'hex'), encode (sealed_seed, 'hex')"
    "  FROM signing_key_current ($1, decode ($2, 'hex'), decode ($3, 'hex'))";

static const char s_rotate_sql [] =
    "SELECT signing_key_rotate ($1, decode ($2, 'hex'), decode ($3, 'hex'))";

//  The current key and those whose tokens may still be alive, newest first.
static const char s_published_sql [] =
    "SELECT kid, encode (public_key, 'hex'), encode (sealed_seed, 'hex')"
    "  FROM signing_keys"
    " WHERE retired_at IS NULL OR retired_at > now () - $1::int * interval '1 second'"
    " ORDER BY retired_at IS NOT NULL, created_at DESC, kid LIMIT $2::int";

//  A new key, as it is stored, and its seed (wiped by s_candidate_wipe).
typedef struct {
    char kid [SB_MAX_KID_LEN + 1];
    uint8_t seed [SB_ED25519_KEY_LEN];
    char public_hex [2 * SB_ED25519_KEY_LEN + 1];
    char sealed_hex [2 * SB_OAUTH_SEALED_SEED_LEN + 1];
} s_candidate_t;

static void
s_candidate_wipe (s_candidate_t *candidate)
{
    sb_crypto_wipe (candidate, sizeof *candidate);
}

//  Makes a key with a random kid, sealed under `box_key`. 0 or -1.
static int
s_candidate_make (const uint8_t box_key [SB_TOKEN_SUBKEY_LEN], s_candidate_t *candidate)
{
    memset (candidate, 0, sizeof *candidate);
    uint8_t kid_bytes [SB_OAUTH_KID_BYTES], pub [SB_ED25519_KEY_LEN];
    if (sb_crypto_random (kid_bytes, sizeof kid_bytes)
    ||  sb_crypto_random (candidate->seed, sizeof candidate->seed)
    ||  sb_ed25519_public (candidate->seed, pub))
        return -1;
    char *kid = sb_base64url_encode (kid_bytes, sizeof kid_bytes);
    int rc = kid && sb_jwks_kid_valid (kid)? 0: -1;
    if (rc == 0) {
        snprintf (candidate->kid, sizeof candidate->kid, "%s", kid);
        rc = sb_token_row_key_seal (box_key, candidate->kid, candidate->seed,
                                    sizeof candidate->seed, candidate->sealed_hex);
    }
    free (kid);
    if (rc == 0) {
        sb_hex_encode (pub, sizeof pub, candidate->public_hex);
        return 0;
    }
    s_candidate_wipe (candidate);
    return -1;
}

//  Opens the key of row `row` of `res` (kid, public hex, sealed hex) into
//  `key`. Returns 0, or -1 with the reason logged.
static int
s_row_open (const PGresult *res, int row, const uint8_t box_key [SB_TOKEN_SUBKEY_LEN],
            sb_oauth_signing_key_t *key)
{
    const char *kid = PQgetvalue (res, row, 0);
    uint8_t pub [SB_ED25519_KEY_LEN], seed [SB_ED25519_KEY_LEN], derived [SB_ED25519_KEY_LEN];
    size_t pub_len = 0;
    int rc = sb_jwks_kid_valid (kid)
          && sb_hex_decode (PQgetvalue (res, row, 1), pub, sizeof pub, &pub_len) == 0
          && pub_len == sizeof pub? 0: -1;
    if (rc == 0)
        rc = sb_token_row_key_open (box_key, kid, PQgetvalue (res, row, 2), seed, sizeof seed);
    if (rc == -1)
        sb_log_error ("signing_key_unreadable", "a signing_keys row cannot be read");
    else
    if (rc) {
        sb_log_error ("signing_key_sealed", "signing key %s does not open under --secret-key-file "
                      "(another secret sealed it, or the row was altered)", kid);
        rc = -1;
    }
    else
    if (sb_ed25519_public (seed, derived) || !sb_crypto_equal (derived, pub, sizeof pub)) {
        sb_log_error ("signing_key_mismatch", "signing key %s: the stored public key is not the "
                      "sealed seed's", kid);
        rc = -1;
    }
    else {
        snprintf (key->kid, sizeof key->kid, "%s", kid);
        memcpy (key->seed, seed, sizeof seed);
    }
    sb_crypto_wipe (seed, sizeof seed);
    return rc;
}

void
sb_oauth_keys_forget (sb_token_role_t *self)
{
    sb_crypto_wipe (&self->signing_key, sizeof self->signing_key);
}

//  ---------------------------------------------------------------------
//  The current key

typedef struct {
    sb_token_role_t *self;
    sb_oauth_key_fn *cb;
    void *arg;
    void (*free_arg) (void *arg);
} s_current_t;

static void
s_current_free (void *arg)
{
    s_current_t *current = arg;
    if (current->free_arg)
        current->free_arg (current->arg);
    free (current);
}

static void
s_on_current (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_current_t *current = arg;
    sb_token_role_t *self = current->self;
    const char *refusal = NULL;
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1
    ||  PQnfields (res) != 3) {
        sb_log_warn ("db_error", "signing key: %s",
                     error? error: res? PQresultErrorMessage (res): "no result");
        refusal = "the authorization server's database failed";
    }
    else
    if (strcmp (PQgetvalue (res, 0, 0), self->signing_key.kid) != 0) {
        sb_oauth_signing_key_t key = { .read_ms = 0 };
        if (sb_token_subkey (self, "signing-keys", box_key) || s_row_open (res, 0, box_key, &key))
            refusal = "the current signing key cannot be opened with this worker's --secret-key-file";
        else {
            if (*self->signing_key.kid)
                sb_log_info ("signing_key_changed", "signing with key %s (was %s)", key.kid,
                             self->signing_key.kid);
            self->signing_key = key;
        }
        sb_crypto_wipe (&key, sizeof key);
        sb_crypto_wipe (box_key, sizeof box_key);
    }
    if (refusal) {
        sb_worker_job_fail (job_p, refusal);
        s_current_free (current);
        return;
    }
    self->signing_key.read_ms = sb_clock_mono_ms ();
    current->cb (job_p, &self->signing_key, current->arg);
    free (current);
}

void
sb_oauth_keys_current (sb_token_role_t *self, sb_worker_job_t *job, sb_oauth_key_fn *cb,
                       void *arg, void (*free_arg) (void *arg))
{
    sb_oauth_signing_key_t *cached = &self->signing_key;
    if (*cached->kid && sb_clock_mono_ms () - cached->read_ms < SB_OAUTH_KEY_CHECK_MS) {
        cb (&job, cached, arg);
        return;
    }
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];
    s_candidate_t candidate;
    const char *refusal = NULL;
    if (sb_token_subkey (self, "signing-keys", box_key))
        refusal = "the token service has no --secret-key-file: it cannot sign tokens";
    else
    if (s_candidate_make (box_key, &candidate))
        refusal = "a signing key could not be made";
    sb_crypto_wipe (box_key, sizeof box_key);
    s_current_t *current = refusal? NULL: malloc (sizeof *current);
    if (!refusal && !current)
        refusal = "out of memory";
    if (refusal) {
        sb_token_fail_arg (&job, refusal, arg, free_arg);
        s_candidate_wipe (&candidate);
        return;
    }
    *current = (s_current_t) { self, cb, arg, free_arg };
    const char *params [] = { candidate.kid, candidate.public_hex, candidate.sealed_hex };
    sb_token_query (self, job, s_current_sql, 3, params, s_on_current, current, s_current_free);
    s_candidate_wipe (&candidate);
}

//  ---------------------------------------------------------------------
//  Rotation

typedef struct {
    sb_token_role_t *self;
    sb_oauth_rotate_fn *cb;
    void *arg;
    void (*free_arg) (void *arg);
    sb_oauth_signing_key_t key;         /* the new key, current once the statement succeeds */
} s_rotate_t;

static void
s_rotate_free (void *arg)
{
    s_rotate_t *rotate = arg;
    if (rotate->free_arg)
        rotate->free_arg (rotate->arg);
    sb_crypto_wipe (rotate, sizeof *rotate);
    free (rotate);
}

static void
s_on_rotated (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_rotate_t *rotate = arg;
    sb_token_role_t *self = rotate->self;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "signing key rotation: %s",
                     error? error: res? PQresultErrorMessage (res): "no result");
        rotate->cb (job_p, NULL, NULL, "the authorization server's database failed", rotate->arg);
    }
    else {
        const char *retired = PQgetisnull (res, 0, 0)? NULL: PQgetvalue (res, 0, 0);
        self->signing_key = rotate->key;
        self->signing_key.read_ms = sb_clock_mono_ms ();
        sb_log_info ("key_rotated", "signing key %s is current; %s retired", rotate->key.kid,
                     retired? retired: "none was");
        rotate->cb (job_p, rotate->key.kid, retired, NULL, rotate->arg);
    }
    sb_crypto_wipe (rotate, sizeof *rotate);
    free (rotate);
}

void
sb_oauth_keys_rotate (sb_token_role_t *self, sb_worker_job_t *job, sb_oauth_rotate_fn *cb,
                      void *arg, void (*free_arg) (void *arg))
{
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];
    s_candidate_t candidate;
    const char *refusal = NULL;
    if (sb_token_subkey (self, "signing-keys", box_key))
        refusal = "the token service has no --secret-key-file: it cannot make signing keys";
    else
    if (s_candidate_make (box_key, &candidate))
        refusal = "a signing key could not be made";
    sb_crypto_wipe (box_key, sizeof box_key);
    s_rotate_t *rotate = refusal? NULL: calloc (1, sizeof *rotate);
    if (!refusal && !rotate)
        refusal = "out of memory";
    if (refusal) {
        sb_token_fail_arg (&job, refusal, arg, free_arg);
        s_candidate_wipe (&candidate);
        return;
    }
    rotate->self = self;
    rotate->cb = cb;
    rotate->arg = arg;
    rotate->free_arg = free_arg;
    snprintf (rotate->key.kid, sizeof rotate->key.kid, "%s", candidate.kid);
    memcpy (rotate->key.seed, candidate.seed, sizeof candidate.seed);
    const char *params [] = { candidate.kid, candidate.public_hex, candidate.sealed_hex };
    sb_token_query (self, job, s_rotate_sql, 3, params, s_on_rotated, rotate, s_rotate_free);
    s_candidate_wipe (&candidate);
}

//  ---------------------------------------------------------------------
//  oauth/jwks

static void
s_on_published (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    sb_token_role_t *self = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQnfields (res) != 3) {
        sb_log_warn ("db_error", "key set: %s",
                     error? error: res? PQresultErrorMessage (res): "no result");
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return;
    }
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];
    json_t *keys = json_array ();
    int rc = keys && sb_token_subkey (self, "signing-keys", box_key) == 0? 0: -1;
    for (int row = 0; rc == 0 && row < PQntuples (res); row++) {
        sb_oauth_signing_key_t key;
        if (s_row_open (res, row, box_key, &key))
            continue;               //  logged; never published
        char *jwk = sb_jwks_public_jwk (key.seed, key.kid);
        sb_crypto_wipe (&key, sizeof key);
        json_t *value = jwk? json_loads (jwk, 0, NULL): NULL;
        free (jwk);
        if (!value || json_array_append_new (keys, value))
            rc = -1;
    }
    sb_crypto_wipe (box_key, sizeof box_key);
    json_t *doc = rc == 0? json_pack ("{s:O}", "keys", keys): NULL;
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    json_decref (keys);
    if (text)
        sb_worker_job_done (job_p, SB_STATUS_OK, text);
    else
        sb_worker_job_fail (job_p, "the key set could not be written");
    free (text);
}

//  The current key exists (made if it did not): list the set.
static void
s_jwks_list (sb_worker_job_t **job_p, const sb_oauth_signing_key_t *key, void *arg)
{
    sb_token_role_t *self = arg;
    char window [16], limit [16];
    snprintf (window, sizeof window, "%d", SB_OAUTH_KEY_WINDOW_S);
    snprintf (limit, sizeof limit, "%d", SB_MAX_JWKS_KEYS);
    const char *params [] = { window, limit };
    sb_token_query (self, *job_p, s_published_sql, 2, params, s_on_published, self, NULL);
    *job_p = NULL;
}

void
sb_oauth_jwks (sb_token_role_t *self, sb_worker_job_t *job)
{
    sb_oauth_keys_current (self, job, s_jwks_list, self, NULL);
}
