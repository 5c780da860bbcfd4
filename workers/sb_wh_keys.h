/*  workers/sb_wh_keys.h — the webhook role's read-only ring of data keys:
    it opens the secrets the token role sealed for webhook endpoints and
    subscriptions (db/migrations/015, "Sealing"), with the same master
    secret (--secret-key-file or SB_SECRET_KEY) and the same keys
    (connection_keys) as the connections' (workers/sb_conn_keys.c).

    It never makes or rotates a key: the token role made the key a row
    names when it sealed the row. The ring holds the keys of the last
    load (wiped at destroy); the role loads it (one SELECT on its own
    database loop) at start, every SB_WH_KEYS_CHECK_MS, and at once when a
    row names a key it lacks. Pure otherwise: no I/O here. */
#ifndef SB_WH_KEYS_H_INCLUDED
#define SB_WH_KEYS_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_WH_KEYS_CHECK_MS     60000   /* the ring is re-read at least this often */
#define SB_WH_MAX_KEYS          256     /* keys the ring holds */

/*  The query whose result sb_wh_keys_load reads (no parameters). */
#define SB_WH_KEYS_SQL "SELECT id, encode (sealed_key, 'hex') FROM connection_keys"

typedef struct _sb_wh_keys_t sb_wh_keys_t;

/*  Creates a ring for `secret` (`len` 32..64 bytes, copied, wiped at
    destroy). NULL on a bad length or out of memory. */
sb_wh_keys_t *sb_wh_keys_new (const uint8_t *secret, size_t len) SB_MUST_USE;
void sb_wh_keys_destroy (sb_wh_keys_t **self_p);

/*  Replaces the ring with the keys of `res` (SB_WH_KEYS_SQL's rows),
    opened under the master secret's "connection-keys" subkey with each
    key's id as associated data. Returns how many keys it holds, or -1
    when a row does not open (another master secret): the ring is then
    left as it was. */
int sb_wh_keys_load (sb_wh_keys_t *self, const PGresult *res) SB_MUST_USE;

/*  Whether the ring holds key `id`. */
bool sb_wh_keys_has (const sb_wh_keys_t *self, const char *id);

/*  Opens a secret sealed under key `key_id` with associated data
    "<tenant>/<owner>/<column>" (owner "webhook:<endpoint id>" or
    "subscription:<id>", column "secret" or "previous"). Returns a new
    NUL-terminated string (`*len` bytes before the NUL; wipe it with
    sb_crypto_wipe before free), or NULL when the key is unknown, the tag
    does not verify or memory runs out. */
char *sb_wh_keys_open (const sb_wh_keys_t *self, const char *key_id, const char *tenant,
                       const char *owner, const char *column, const uint8_t *sealed,
                       size_t sealed_len, size_t *len) SB_MUST_USE;

#endif
