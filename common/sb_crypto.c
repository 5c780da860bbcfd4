/*  common/sb_crypto.c — small crypto helpers over OpenSSL: random bytes,
    base64url (RFC 4648 §5), hex, HMAC-SHA256, Ed25519, AES-256-GCM and
    constant-time comparison.
    Decoders read untrusted input: every output write is bounds-checked. */
#include "sb_crypto.h"

#include "sb_text.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_b64url [] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
sb_crypto_random (void *buf, size_t len)
{
    if (len > INT_MAX)
        return -1;
    return RAND_bytes (buf, (int) len) == 1? 0: -1;
}

char *
sb_base64url_encode (const uint8_t *data, size_t len)
{
    if (len > (SIZE_MAX - 4) / 4 * 3)
        return NULL;
    char *out = malloc ((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t) data [i] << 16 | (uint32_t) data [i + 1] << 8 | data [i + 2];
        out [o++] = s_b64url [(v >> 18) & 63];
        out [o++] = s_b64url [(v >> 12) & 63];
        out [o++] = s_b64url [(v >> 6) & 63];
        out [o++] = s_b64url [v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t) data [i] << 16;
        out [o++] = s_b64url [(v >> 18) & 63];
        out [o++] = s_b64url [(v >> 12) & 63];
    }
    else
    if (len - i == 2) {
        uint32_t v = (uint32_t) data [i] << 16 | (uint32_t) data [i + 1] << 8;
        out [o++] = s_b64url [(v >> 18) & 63];
        out [o++] = s_b64url [(v >> 12) & 63];
        out [o++] = s_b64url [(v >> 6) & 63];
    }
    out [o] = 0;
    return out;
}

//  Value of one base64url character, or -1.
static int
s_b64_value (char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int
sb_base64url_decode (const char *in, size_t in_len, uint8_t *out,
                     size_t out_size, size_t *out_len)
{
    //  Padding is accepted only at the end and only to a multiple of 4.
    size_t pad = 0;
    while (in_len > 0 && in [in_len - 1] == '=' && pad < 2) {
        in_len--;
        pad++;
    }
    if (pad && (in_len + pad) % 4)
        return -1;
    if (in_len % 4 == 1)
        return -1;              //  a single trailing character carries < 8 bits
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in_len; i++) {
        int v = s_b64_value (in [i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= out_size)
                return -1;
            out [o++] = (uint8_t) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    //  Leftover bits must be zero (canonical encoding).
    if (acc != 0)
        return -1;
    *out_len = o;
    return 0;
}

int
sb_base64url_decode_strict (const char *in, size_t in_len, uint8_t *out,
                            size_t out_size, size_t *out_len)
{
    if (memchr (in, '=', in_len))
        return -1;
    return sb_base64url_decode (in, in_len, out, out_size, out_len);
}

void
sb_hex_encode (const uint8_t *data, size_t len, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [2 * len] = 0;
}

int
sb_hex_digit (char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int
sb_hex_decode (const char *in, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t len = strlen (in);
    if (len % 2 || len / 2 > out_size)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = sb_hex_digit (in [2 * i]);
        int lo = sb_hex_digit (in [2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out [i] = (uint8_t) (hi << 4 | lo);
    }
    *out_len = len / 2;
    return 0;
}

//  HMAC (RFC 2104) over SHA-256 from a digest fetched once. OpenSSL 3's
//  one-shot HMAC () looks the MAC and the digest up by name on every call,
//  which cost more than the hashing itself on a token or session ID.
#define SB_SHA256_BLOCK  64

static EVP_MD *s_sha256;
static pthread_once_t s_sha256_once = PTHREAD_ONCE_INIT;

static void
s_sha256_fetch (void)
{
    s_sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
}

//  H (head || data) into out, on `ctx`; false on failure.
static bool
s_digest2 (EVP_MD_CTX *ctx, const uint8_t *head, size_t head_len,
           const uint8_t *data, size_t len, uint8_t *out)
{
    unsigned int out_len = 0;
    return EVP_DigestInit_ex2 (ctx, s_sha256, NULL)
        && EVP_DigestUpdate (ctx, head, head_len)
        && (len == 0 || EVP_DigestUpdate (ctx, data, len))
        && EVP_DigestFinal_ex (ctx, out, &out_len)
        && out_len == SB_HMAC_SHA256_LEN;
}

void
sb_hmac_sha256 (const uint8_t *key, size_t key_len, const uint8_t *data,
                size_t len, uint8_t out [SB_HMAC_SHA256_LEN])
{
    //  Failure here means OpenSSL is broken: fatal, never a zero MAC that
    //  could compare equal to an attacker's.
    pthread_once (&s_sha256_once, s_sha256_fetch);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!s_sha256 || !ctx)
        abort ();
    uint8_t block [SB_SHA256_BLOCK] = { 0 };
    if (key_len > SB_SHA256_BLOCK) {            //  long keys are hashed first
        if (!s_digest2 (ctx, key, key_len, NULL, 0, block))
            abort ();
    }
    else
    if (key_len)
        memcpy (block, key, key_len);
    uint8_t pad [SB_SHA256_BLOCK], inner [SB_HMAC_SHA256_LEN];
    for (size_t i = 0; i < SB_SHA256_BLOCK; i++)
        pad [i] = block [i] ^ 0x36;
    bool ok = s_digest2 (ctx, pad, sizeof pad, data, data? len: 0, inner);
    for (size_t i = 0; i < SB_SHA256_BLOCK; i++)
        pad [i] = block [i] ^ 0x5c;
    ok = ok && s_digest2 (ctx, pad, sizeof pad, inner, sizeof inner, out);
    EVP_MD_CTX_free (ctx);
    OPENSSL_cleanse (block, sizeof block);
    OPENSSL_cleanse (pad, sizeof pad);
    OPENSSL_cleanse (inner, sizeof inner);
    if (!ok)
        abort ();
}

void
sb_sha256 (const void *data, size_t len, uint8_t out [SB_HMAC_SHA256_LEN])
{
    pthread_once (&s_sha256_once, s_sha256_fetch);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok = s_sha256 && ctx && s_digest2 (ctx, data, data? len: 0, NULL, 0, out);
    EVP_MD_CTX_free (ctx);
    if (!ok)
        abort ();                   //  OpenSSL is broken: never a digest of zeros
}

int
sb_ed25519_public (const uint8_t seed [SB_ED25519_KEY_LEN], uint8_t pub [SB_ED25519_KEY_LEN])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, seed, SB_ED25519_KEY_LEN);
    size_t len = SB_ED25519_KEY_LEN;
    int rc = pkey && EVP_PKEY_get_raw_public_key (pkey, pub, &len) == 1
          && len == SB_ED25519_KEY_LEN? 0: -1;
    EVP_PKEY_free (pkey);
    return rc;
}

int
sb_ed25519_sign (const uint8_t seed [SB_ED25519_KEY_LEN], const uint8_t *data, size_t len,
                 uint8_t sig [SB_ED25519_SIG_LEN])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, seed, SB_ED25519_KEY_LEN);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    size_t sig_len = SB_ED25519_SIG_LEN;
    int rc = pkey && ctx
          && EVP_DigestSignInit (ctx, NULL, NULL, NULL, pkey) == 1
          && EVP_DigestSign (ctx, sig, &sig_len, data, len) == 1
          && sig_len == SB_ED25519_SIG_LEN? 0: -1;
    EVP_MD_CTX_free (ctx);
    EVP_PKEY_free (pkey);
    return rc;
}

bool
sb_ed25519_verify (const uint8_t pub [SB_ED25519_KEY_LEN], const uint8_t *data, size_t len,
                   const uint8_t sig [SB_ED25519_SIG_LEN])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key (EVP_PKEY_ED25519, NULL, pub, SB_ED25519_KEY_LEN);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok = pkey && ctx
           && EVP_DigestVerifyInit (ctx, NULL, NULL, NULL, pkey) == 1
           && EVP_DigestVerify (ctx, sig, SB_ED25519_SIG_LEN, data, len) == 1;
    EVP_MD_CTX_free (ctx);
    EVP_PKEY_free (pkey);
    return ok;
}

//  AES-256-GCM, fetched once (as SHA-256 above: OpenSSL 3 looks a cipher
//  up by name on every init otherwise).
static EVP_CIPHER *s_aes_gcm;
static pthread_once_t s_aes_gcm_once = PTHREAD_ONCE_INIT;

static void
s_aes_gcm_fetch (void)
{
    s_aes_gcm = EVP_CIPHER_fetch (NULL, "AES-256-GCM", NULL);
}

int
sb_aead_seal (const uint8_t key [SB_AEAD_KEY_LEN], const void *ad, size_t ad_len,
              const void *plain, size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    if (len > SB_AEAD_MAX_PLAIN || ad_len > INT_MAX || out_size < len + SB_AEAD_OVERHEAD
    ||  (ad_len && !ad) || (len && !plain))
        return -1;
    pthread_once (&s_aes_gcm_once, s_aes_gcm_fetch);
    if (!s_aes_gcm || sb_crypto_random (out, SB_AEAD_NONCE_LEN))
        return -1;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
    uint8_t *body = out + SB_AEAD_NONCE_LEN;
    int chunk = 0, final = 0;
    //  The default GCM IV length is 12 bytes: SB_AEAD_NONCE_LEN.
    bool ok = ctx
           && EVP_EncryptInit_ex2 (ctx, s_aes_gcm, key, out, NULL) == 1
           && (ad_len == 0 || EVP_EncryptUpdate (ctx, NULL, &chunk, ad, (int) ad_len) == 1)
           && (len == 0 || EVP_EncryptUpdate (ctx, body, &chunk, plain, (int) len) == 1)
           && (len == 0 || (size_t) chunk == len)
           && EVP_EncryptFinal_ex (ctx, body + len, &final) == 1 && final == 0
           && EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, SB_AEAD_TAG_LEN, body + len) == 1;
    EVP_CIPHER_CTX_free (ctx);
    if (!ok) {
        OPENSSL_cleanse (out, out_size);
        return -1;
    }
    *out_len = len + SB_AEAD_OVERHEAD;
    return 0;
}

int
sb_aead_open (const uint8_t key [SB_AEAD_KEY_LEN], const void *ad, size_t ad_len,
              const uint8_t *sealed, size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    if (!sealed || len < SB_AEAD_OVERHEAD || len - SB_AEAD_OVERHEAD > SB_AEAD_MAX_PLAIN
    ||  out_size < len - SB_AEAD_OVERHEAD || ad_len > INT_MAX || (ad_len && !ad))
        return -1;
    pthread_once (&s_aes_gcm_once, s_aes_gcm_fetch);
    if (!s_aes_gcm)
        return -1;
    size_t plain_len = len - SB_AEAD_OVERHEAD;
    const uint8_t *body = sealed + SB_AEAD_NONCE_LEN;
    //  EVP_CTRL_GCM_SET_TAG takes a non-const buffer: copy the tag.
    uint8_t tag [SB_AEAD_TAG_LEN];
    memcpy (tag, body + plain_len, sizeof tag);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
    int chunk = 0, final = 0;
    bool ok = ctx
           && EVP_DecryptInit_ex2 (ctx, s_aes_gcm, key, sealed, NULL) == 1
           && (ad_len == 0 || EVP_DecryptUpdate (ctx, NULL, &chunk, ad, (int) ad_len) == 1)
           && (plain_len == 0 || EVP_DecryptUpdate (ctx, out, &chunk, body, (int) plain_len) == 1)
           && (plain_len == 0 || (size_t) chunk == plain_len)
           && EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_TAG, SB_AEAD_TAG_LEN, tag) == 1
           && EVP_DecryptFinal_ex (ctx, out + plain_len, &final) == 1 && final == 0;
    EVP_CIPHER_CTX_free (ctx);
    if (!ok) {
        //  A box that does not verify yields nothing, not unauthenticated bytes.
        if (out && out_size)
            OPENSSL_cleanse (out, plain_len < out_size? plain_len: out_size);
        return -1;
    }
    *out_len = plain_len;
    return 0;
}

bool
sb_crypto_equal (const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp (a, b, len) == 0;
}

char *
sb_secret_read_file (const char *path, char **why)
{
    *why = NULL;
    FILE *file = fopen (path, "rb");
    if (!file) {
        *why = sb_strfmt ("%s: cannot read the secret: %s", path, strerror (errno));
        return NULL;
    }
    //  One byte more than the limit tells an over-long line from a full one
    char *line = calloc (1, SB_MAX_SECRET_LEN + 2);
    size_t len = line? fread (line, 1, SB_MAX_SECRET_LEN + 1, file): 0;
    bool failed = ferror (file);
    fclose (file);
    if (!line) {
        *why = sb_strfmt ("%s: out of memory", path);
        return NULL;
    }
    size_t end = strcspn (line, "\n");
    if (end < len && line [end] == 0)
        *why = sb_strfmt ("%s: the secret holds a NUL byte", path);
    else
    if (failed)
        *why = sb_strfmt ("%s: cannot read the secret", path);
    else
    if (end > SB_MAX_SECRET_LEN)
        *why = sb_strfmt ("%s: the secret's first line is longer than %d bytes", path,
                          SB_MAX_SECRET_LEN);
    else {
        line [end] = 0;
        if (end > 0 && line [end - 1] == '\r')
            line [--end] = 0;           //  a file written with CRLF line ends
        if (end == 0)
            *why = sb_strfmt ("%s: the secret's first line is empty", path);
        else
        if (strchr (line, '\r'))
            *why = sb_strfmt ("%s: the secret holds a carriage return", path);
    }
    if (*why) {
        sb_secret_free (&line);
        return NULL;
    }
    return line;
}

void
sb_crypto_wipe (void *buf, size_t len)
{
    if (buf && len)
        OPENSSL_cleanse (buf, len);
}

void
sb_secret_free (char **secret_p)
{
    if (!secret_p || !*secret_p)
        return;
    OPENSSL_cleanse (*secret_p, strlen (*secret_p));
    free (*secret_p);
    *secret_p = NULL;
}
