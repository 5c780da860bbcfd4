/*  jwt/sb_jwks.h — the public keys EdDSA access tokens are verified
    with: a JSON Web Key Set (RFC 7517) of Ed25519 keys (RFC 8037: "kty"
    "OKP", "crv" "Ed25519", "x" the public key in base64url), each named
    by its "kid". Rotation is a set holding the current key and the
    previous one, so that tokens signed under the previous key verify until
    they expire. Only public keys: a key with private material ("d") is
    refused, and the set served at /.well-known/jwks.json is written from
    the parsed keys, never copied from the file. */
#ifndef SB_JWKS_H_INCLUDED
#define SB_JWKS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_crypto.h"

#define SB_MAX_JWKS_KEYS    8           /* keys in one set */
#define SB_MAX_KID_LEN      64          /* a key ID, bytes */
#define SB_MAX_JWKS_FILE    16384       /* a JWKS file, bytes */

typedef struct _sb_jwks_t sb_jwks_t;

/*  True when `kid` is a key ID we accept: 1..SB_MAX_KID_LEN characters of
    [A-Za-z0-9._-] (it travels in token headers and logs). */
bool sb_jwks_kid_valid (const char *kid);

/*  Parses `len` bytes of JWKS text. Returns a new set, or NULL with the
    reason in `error` (`error_size` bytes): not JSON, no "keys" array, no
    key or more than SB_MAX_JWKS_KEYS, a key that is not an Ed25519 public
    key, a bad or repeated kid, private material. */
sb_jwks_t *sb_jwks_parse (const char *text, size_t len, char *error, size_t error_size)
    SB_MUST_USE;

/*  sb_jwks_parse of the file at `path`; NULL after logging why. */
sb_jwks_t *sb_jwks_load (const char *path) SB_MUST_USE;

/*  Destroys the set and nulls the caller's pointer. NULL-safe. */
void sb_jwks_destroy (sb_jwks_t **self_p);

/*  The public key named `kid` (SB_ED25519_KEY_LEN bytes, borrowed), or
    NULL when the set has none by that name. */
const uint8_t *sb_jwks_find (const sb_jwks_t *self, const char *kid);

/*  Keys in the set. */
size_t sb_jwks_count (const sb_jwks_t *self);

/*  The public set as compact JSON, as /.well-known/jwks.json serves it
    (new string, caller frees), or NULL on no memory. */
char *sb_jwks_json (const sb_jwks_t *self) SB_MUST_USE;

/*  The JWK (compact JSON, new string) of the public key of private seed
    `seed` under `kid`: what an operator adds to the set when rotating in a
    new signing key. NULL on a bad kid or failure. */
char *sb_jwks_public_jwk (const uint8_t seed [SB_ED25519_KEY_LEN], const char *kid) SB_MUST_USE;

#endif
