/*  common/sb_crypto.h — small crypto helpers over OpenSSL: random bytes,
    base64url, hex, HMAC-SHA256, Ed25519, AES-256-GCM sealing,
    constant-time comparison. */
#ifndef SB_CRYPTO_H_INCLUDED
#define SB_CRYPTO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_HMAC_SHA256_LEN 32
#define SB_ED25519_KEY_LEN 32   /* an Ed25519 private seed or public key, bytes */
#define SB_ED25519_SIG_LEN 64   /* an Ed25519 signature, bytes */

/*  Fills `buf` with `len` cryptographically secure random bytes.
    Returns 0, or -1 if the CSPRNG failed. */
int sb_crypto_random (void *buf, size_t len) SB_MUST_USE;

/*  Base64url without padding. Returns a new string (caller frees). */
char *sb_base64url_encode (const uint8_t *data, size_t len) SB_MUST_USE;

/*  Decodes `in_len` chars of unpadded (or padded) base64url into `out`.
    Returns 0 and sets *out_len, or -1 on a bad character, non-zero bits
    after the last byte, or when the result does not fit `out_size`. */
int sb_base64url_decode (const char *in, size_t in_len, uint8_t *out,
                         size_t out_size, size_t *out_len)
    SB_MUST_USE;

/*  sb_base64url_decode for encodings that have exactly one form (JWT parts,
    session IDs, requestState): refuses "=" padding as well, so that with
    the decoder's own checks (alphabet, zero trailing bits, no dangling
    character) two different strings never decode to the same bytes. */
int sb_base64url_decode_strict (const char *in, size_t in_len, uint8_t *out,
                                size_t out_size, size_t *out_len)
    SB_MUST_USE;

/*  Lowercase hex of `len` bytes into `out` (2*len+1 bytes). */
void sb_hex_encode (const uint8_t *data, size_t len, char *out);

/*  The value of one hex digit (either case), or -1 when `c` is none. */
int sb_hex_digit (char c);

/*  Decodes hex text; returns 0 and sets *out_len, or -1. */
int sb_hex_decode (const char *in, uint8_t *out, size_t out_size, size_t *out_len)
    SB_MUST_USE;

/*  SHA-256 of `len` bytes at `data` into `out` (how codes, refresh tokens
    and client secrets are stored: by digest only). */
void sb_sha256 (const void *data, size_t len, uint8_t out [SB_HMAC_SHA256_LEN]);

/*  HMAC-SHA256 of `data` under `key` into `out`. */
void sb_hmac_sha256 (const uint8_t *key, size_t key_len, const uint8_t *data,
                     size_t len, uint8_t out [SB_HMAC_SHA256_LEN]);

/*  The Ed25519 public key of private seed `seed` into `pub`. 0 or -1. */
int sb_ed25519_public (const uint8_t seed [SB_ED25519_KEY_LEN], uint8_t pub [SB_ED25519_KEY_LEN])
    SB_MUST_USE;

/*  Signs `len` bytes of `data` with Ed25519 (RFC 8032) under private seed
    `seed` into `sig`. 0 or -1. */
int sb_ed25519_sign (const uint8_t seed [SB_ED25519_KEY_LEN], const uint8_t *data, size_t len,
                     uint8_t sig [SB_ED25519_SIG_LEN]) SB_MUST_USE;

/*  True when `sig` is a valid Ed25519 signature of `len` bytes of `data`
    under public key `pub`. */
bool sb_ed25519_verify (const uint8_t pub [SB_ED25519_KEY_LEN], const uint8_t *data, size_t len,
                        const uint8_t sig [SB_ED25519_SIG_LEN]) SB_MUST_USE;

//  AES-256-GCM (NIST SP 800-38D) for secrets kept at rest: signing keys'
//  seeds, connection secrets. A sealed box is nonce || ciphertext || tag,
//  the nonce 12 random bytes drawn for each seal (a key seals far fewer than
//  2^32 boxes, the bound for random nonces), the tag 16 bytes. Associated
//  data (say, the row's key) is authenticated but not stored: a box opens
//  only with the same associated data, so it cannot be moved to another row.
#define SB_AEAD_KEY_LEN     32      /* an AES-256 key, bytes */
#define SB_AEAD_NONCE_LEN   12      /* the nonce before the ciphertext, bytes */
#define SB_AEAD_TAG_LEN     16      /* the tag after it, bytes */
#define SB_AEAD_OVERHEAD    (SB_AEAD_NONCE_LEN + SB_AEAD_TAG_LEN)
#define SB_AEAD_MAX_PLAIN   (1024 * 1024)   /* bytes sealed at once, at most */

/*  Seals `len` bytes of `plain` under `key` with `ad_len` bytes of
    associated data `ad` (NULL when ad_len is 0) into `out`, which must hold
    len + SB_AEAD_OVERHEAD bytes (`out_size`): a fresh random nonce, the
    ciphertext, the tag. Returns 0 and sets *out_len, or -1 when `out` is
    too small, `len` passes SB_AEAD_MAX_PLAIN, or OpenSSL failed. */
int sb_aead_seal (const uint8_t key [SB_AEAD_KEY_LEN], const void *ad, size_t ad_len,
                  const void *plain, size_t len, uint8_t *out, size_t out_size, size_t *out_len)
    SB_MUST_USE;

/*  Opens the `len` bytes of sealed box `sealed` under `key` with the same
    associated data it was sealed with into `out` (`out_size` bytes, at
    least len - SB_AEAD_OVERHEAD). Returns 0 and sets *out_len; or -1 when
    the box is shorter than SB_AEAD_OVERHEAD, `out` is too small, or the
    tag does not verify (another key, other associated data, any byte
    changed): then nothing of the plaintext is left in `out`. */
int sb_aead_open (const uint8_t key [SB_AEAD_KEY_LEN], const void *ad, size_t ad_len,
                  const uint8_t *sealed, size_t len, uint8_t *out, size_t out_size, size_t *out_len)
    SB_MUST_USE;

/*  True when the `len` bytes at a and b are equal; time does not depend on
    where they differ. Use for every signature and secret comparison. */
bool sb_crypto_equal (const void *a, const void *b, size_t len);

#define SB_MAX_SECRET_LEN       4096    /* a secret read from a file: its first line, bytes */

/*  Reads a secret from the file at `path` (a Compose or Kubernetes secret):
    its first line, without the line end. Returns a new string (free it with
    sb_secret_free), or NULL with *why a new sentence naming the file (a
    missing or unreadable file, an empty first line, one longer than
    SB_MAX_SECRET_LEN bytes, or a NUL or CR in it). */
char *sb_secret_read_file (const char *path, char **why) SB_MUST_USE;

/*  Overwrites `len` bytes at `buf` with zeros in a way the compiler
    cannot drop (OPENSSL_cleanse): for keys on the stack or in a struct. */
void sb_crypto_wipe (void *buf, size_t len);

/*  Wipes and frees a secret, and nulls the caller's pointer. */
void sb_secret_free (char **secret_p);

#endif
