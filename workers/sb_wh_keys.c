/*  workers/sb_wh_keys.c — the webhook role's read-only ring of data keys
    (sb_wh_keys.h): the connection_keys rows the token role made, opened
    with the same master secret, so the webhook role reads the secrets of
    its endpoints and subscriptions without asking the token service.

    The keys are opened exactly as the token role opens them
    (sb_conn_keys.c): the "connection-keys" subkey of the master secret,
    HMAC-SHA256 (secret, "switchboard/connection-keys") as sb_token_subkey
    derives it, and sb_token_row_key_open with the key's id as associated
    data. A secret is opened as sb_conn_open does: AES-256-GCM under its
    row's key with "<tenant>/<owner>/<column>" as associated data. */
#include "sb_wh_keys.h"
#include "sb_conn.h"
#include "sb_crypto.h"
#include "sb_token_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_WH_MIN_SECRET        32      /* master secret bytes, at least (SB_MIN_TOKEN_SECRET_LEN) */
#define SB_WH_MAX_MASTER        64      /* master secret bytes, at most (the token role's buffer) */
#define SB_WH_MAX_KEY_ID        32      /* a key id as connection_keys allows it, characters */
#define SB_WH_MAX_AD            512     /* "<tenant>/<owner>/<column>", bytes */
#define SB_WH_MAX_SEALED        (SB_MAX_CONN_SECRET + SB_AEAD_OVERHEAD)  /* a sealed secret, bytes */

static const char s_purpose [] = "switchboard/connection-keys";

typedef struct {
    char id [SB_WH_MAX_KEY_ID + 1];
    uint8_t key [SB_AEAD_KEY_LEN];
} s_key_t;

struct _sb_wh_keys_t {
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];  /* the master secret's "connection-keys" subkey */
    s_key_t keys [SB_WH_MAX_KEYS];          /* the keys of the last load */
    size_t count;                           /* keys held */
};

sb_wh_keys_t *
sb_wh_keys_new (const uint8_t *secret, size_t len)
{
    if (!secret || len < SB_WH_MIN_SECRET || len > SB_WH_MAX_MASTER)
        return NULL;
    sb_wh_keys_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    //  sb_token_subkey's derivation; only the subkey is kept.
    sb_hmac_sha256 (secret, len, (const uint8_t *) s_purpose, strlen (s_purpose), self->box_key);
    return self;
}

void
sb_wh_keys_destroy (sb_wh_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_crypto_wipe (*self_p, sizeof **self_p);
    free (*self_p);
    *self_p = NULL;
}

static const s_key_t *
s_find (const sb_wh_keys_t *self, const char *id)
{
    for (size_t i = 0; self && id && i < self->count; i++)
        if (strcmp (self->keys [i].id, id) == 0)
            return &self->keys [i];
    return NULL;
}

static bool
s_id_valid (const char *id)
{
    size_t len = strlen (id);
    if (len == 0 || len > SB_WH_MAX_KEY_ID)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", id [i]))
            return false;
    return true;
}

int
sb_wh_keys_load (sb_wh_keys_t *self, const PGresult *res)
{
    if (!self || !res || PQresultStatus (res) != PGRES_TUPLES_OK || PQnfields (res) < 2)
        return -1;
    //  Into a fresh ring first: a row that does not open leaves the old one.
    s_key_t *keys = calloc (SB_WH_MAX_KEYS, sizeof *keys);
    if (!keys)
        return -1;
    size_t count = 0;
    int rows = PQntuples (res);
    int rc = 0;
    for (int row = 0; row < rows && count < SB_WH_MAX_KEYS; row++) {
        const char *id = PQgetvalue (res, row, 0);
        if (!s_id_valid (id)
        ||  sb_token_row_key_open (self->box_key, id, PQgetvalue (res, row, 1), keys [count].key,
                                   SB_AEAD_KEY_LEN)) {
            rc = -1;
            break;
        }
        snprintf (keys [count].id, sizeof keys [count].id, "%s", id);
        count++;
    }
    if (rc == 0) {
        sb_crypto_wipe (self->keys, sizeof self->keys);
        memcpy (self->keys, keys, count * sizeof *keys);
        self->count = count;
    }
    sb_crypto_wipe (keys, SB_WH_MAX_KEYS * sizeof *keys);
    free (keys);
    return rc? -1: (int) count;
}

bool
sb_wh_keys_has (const sb_wh_keys_t *self, const char *id)
{
    return s_find (self, id) != NULL;
}

char *
sb_wh_keys_open (const sb_wh_keys_t *self, const char *key_id, const char *tenant,
                 const char *owner, const char *column, const uint8_t *sealed,
                 size_t sealed_len, size_t *len)
{
    const s_key_t *key = s_find (self, key_id);
    if (!key || !sealed || !len || sealed_len < SB_AEAD_OVERHEAD || sealed_len > SB_WH_MAX_SEALED
    ||  !tenant || !owner || !column || !*tenant || !*owner || !*column)
        return NULL;
    //  The associated data as sb_conn_seal makes it (owner in the place of
    //  the connector).
    char ad [SB_WH_MAX_AD];
    int ad_len = snprintf (ad, sizeof ad, "%s/%s/%s", tenant, owner, column);
    if (ad_len < 0 || (size_t) ad_len >= sizeof ad)
        return NULL;
    size_t size = sealed_len - SB_AEAD_OVERHEAD + 1;
    char *out = malloc (size);
    size_t out_len = 0;
    if (out && sb_aead_open (key->key, ad, (size_t) ad_len, sealed, sealed_len, (uint8_t *) out,
                             size, &out_len) == 0) {
        out [out_len] = '\0';
        *len = out_len;
        return out;
    }
    if (out)
        sb_crypto_wipe (out, size);
    free (out);
    return NULL;
}
