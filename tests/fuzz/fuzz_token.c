/*  tests/fuzz/fuzz_token.c — fuzz target for the bearer token decoder
    (jwt/sb_token.c: sb_token_verify and its cache), which reads the
    Authorization header of every request before anything else.

    Each input is verified twice: as sent (almost always refused: nobody
    without the key can sign), and re-signed as its header asks — HS256
    with the target's key, EdDSA with the private key of the one kid in the
    target's key set (sb_jwks) — so that the header and claims parsing
    behind the signature check is reached with any bytes as well.
    Invariants: the rc is one of sb_token_rc_t; a token re-signed as its
    header asks is never refused for its signature; a token that
    verifies has a valid tenant and has not expired, and re-issued from its
    claims verifies again to the same claims; the cache answers as the
    verifier does, and from its slot when asked again. A violation aborts.

    Seeds (tests/fuzz/corpus/token): tokens minted by sb_token_issue with
    this target's key, and near misses (alg none, a bad tenant, expired,
    a third dot, broken base64). With -DSB_FUZZ=ON (clang) this is a
    libFuzzer target; otherwise tests/fuzz/sb_fuzz_replay.c replays the
    corpus on every ctest run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_crypto.h"
#include "sb_jwks.h"
#include "sb_token.h"

#include <jansson.h>

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_token: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

#define S_NOW       1750000000                      /* the fuzz clock, seconds */
#define S_AUDIENCE  "http://127.0.0.1:8080/mcp"     /* the audience verified */

//  The key the seeds were minted with: 32 bytes 0x01, 0x02, … 0x20.
static const uint8_t s_key [32] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};

//  The EdDSA signing key of the target's key set: seed 32 bytes 0x21…0x40,
//  named S_KID.
static const uint8_t s_seed [SB_ED25519_KEY_LEN] = {
    33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64
};
#define S_KID       "fuzz-1"

static bool
s_rc_known (sb_token_rc_t rc)
{
    return rc == SB_TOKEN_OK || rc == SB_TOKEN_MALFORMED || rc == SB_TOKEN_BAD_SIG
        || rc == SB_TOKEN_EXPIRED || rc == SB_TOKEN_AUDIENCE || rc == SB_TOKEN_NOT_YET_VALID;
}

static bool
s_claims_equal (const sb_token_claims_t *a, const sb_token_claims_t *b)
{
    return strcmp (a->tenant, b->tenant) == 0 && strcmp (a->subject, b->subject) == 0
        && strcmp (a->client_id, b->client_id) == 0 && strcmp (a->scope, b->scope) == 0
        && a->issued_at == b->issued_at && a->expires_at == b->expires_at;
}

//  A verified token's claims: sane, and they make a token that verifies
//  to the same claims.
static void
s_check_claims (const sb_token_claims_t *claims)
{
    size_t len = strnlen (claims->tenant, sizeof claims->tenant);
    CHECK (len > 0 && len < sizeof claims->tenant);
    CHECK (strnlen (claims->subject, sizeof claims->subject) < sizeof claims->subject);
    CHECK (strnlen (claims->client_id, sizeof claims->client_id) < sizeof claims->client_id);
    CHECK (strnlen (claims->scope, sizeof claims->scope) < sizeof claims->scope);
    CHECK (strnlen (claims->audience, sizeof claims->audience) < sizeof claims->audience);
    CHECK (claims->expires_at >= S_NOW - 30);
    char *again = sb_token_issue (claims, s_key, sizeof s_key);
    CHECK (again || claims->expires_at <= claims->issued_at);
    if (again) {
        sb_token_claims_t round;
        CHECK (sb_token_verify (again, s_key, sizeof s_key, NULL, S_NOW, &round) == SB_TOKEN_OK);
        CHECK (s_claims_equal (claims, &round));
        free (again);
    }
}

static sb_token_cache_t *s_cache;      //  one for the run, as one per event loop
static sb_jwks_t *s_jwks;              //  the public half of s_seed, as S_KID

//  Verifies `token` directly and through the cache, which must agree.
static sb_token_rc_t
s_verify (const char *token)
{
    sb_token_claims_t claims, cached;
    sb_token_rc_t rc = sb_token_verify_keys (token, s_key, sizeof s_key, s_jwks, S_AUDIENCE,
                                             S_NOW, &claims);
    CHECK (s_rc_known (rc));
    uint64_t hits, misses, hits_after, misses_after;
    sb_token_cache_counts (s_cache, &hits, &misses);
    CHECK (sb_token_cache_verify (s_cache, token, S_NOW, &cached) == rc);
    if (rc == SB_TOKEN_OK) {
        s_check_claims (&claims);
        CHECK (s_claims_equal (&claims, &cached));
        //  Asked again, the cache answers from its slot.
        memset (&cached, 0, sizeof cached);
        CHECK (sb_token_cache_verify (s_cache, token, S_NOW, &cached) == SB_TOKEN_OK);
        CHECK (s_claims_equal (&claims, &cached));
        sb_token_cache_counts (s_cache, &hits_after, &misses_after);
        CHECK (hits_after + misses_after == hits + misses + 2 && hits_after > hits);
    }
    return rc;
}

//  How `header_len` bytes of base64url JWT header ask to be signed: 1 for
//  HS256, 2 for EdDSA under S_KID, 0 for anything else (no invariant).
static int
s_asks (const char *header, size_t header_len)
{
    uint8_t raw [SB_MAX_TOKEN_LEN];
    size_t raw_len = 0;
    if (sb_base64url_decode_strict (header, header_len, raw, sizeof raw, &raw_len))
        return 0;
    json_t *doc = json_loadb ((const char *) raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
    const char *alg = json_string_value (json_object_get (doc, "alg"));
    const char *kid = json_string_value (json_object_get (doc, "kid"));
    int asks = !alg? 0
             : strcmp (alg, "HS256") == 0? 1
             : strcmp (alg, "EdDSA") == 0 && kid && strcmp (kid, S_KID) == 0? 2: 0;
    json_decref (doc);
    return asks;
}

//  "<header>.<claims>" of `text` (everything before its second dot, or all
//  of it) signed as its header asks (HS256 when it asks for neither):
//  NULL when it has no dot. *asks is s_asks of the header.
static char *
s_resign (const char *text, int *asks)
{
    const char *dot = strchr (text, '.');
    if (!dot)
        return NULL;
    *asks = s_asks (text, (size_t) (dot - text));
    const char *end = strchr (dot + 1, '.');
    size_t signing_len = end? (size_t) (end - text): strlen (text);
    uint8_t mac [SB_ED25519_SIG_LEN];
    size_t mac_len = SB_HMAC_SHA256_LEN;
    if (*asks == 2) {
        CHECK (sb_ed25519_sign (s_seed, (const uint8_t *) text, signing_len, mac) == 0);
        mac_len = SB_ED25519_SIG_LEN;
    }
    else
        sb_hmac_sha256 (s_key, sizeof s_key, (const uint8_t *) text, signing_len, mac);
    char *signature = sb_base64url_encode (mac, mac_len);
    CHECK (signature);
    size_t signature_len = strlen (signature);
    char *token = malloc (signing_len + 1 + signature_len + 1);
    CHECK (token);
    memcpy (token, text, signing_len);
    token [signing_len] = '.';
    memcpy (token + signing_len + 1, signature, signature_len + 1);
    free (signature);
    return token;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_cache) {
        char *jwk = sb_jwks_public_jwk (s_seed, S_KID);
        CHECK (jwk);
        char set [SB_MAX_JWKS_FILE];
        snprintf (set, sizeof set, "{\"keys\":[%s]}", jwk);
        free (jwk);
        char error [256];
        s_jwks = sb_jwks_parse (set, strlen (set), error, sizeof error);
        CHECK (s_jwks);
        s_cache = sb_token_cache_new (s_key, sizeof s_key, S_AUDIENCE);
        CHECK (s_cache);
        sb_token_cache_set_jwks (s_cache, s_jwks);
    }
    if (size > SB_MAX_TOKEN_LEN + 64)
        return 0;               //  refused on length alone; nothing to learn
    char *text = malloc (size + 1);
    CHECK (text);
    memcpy (text, data, size);
    text [size] = 0;
    s_verify (text);
    int asks = 0;
    char *token = s_resign (text, &asks);
    if (token) {
        //  Signed as the header asks: whatever else is wrong, not the signature.
        sb_token_rc_t rc = s_verify (token);
        CHECK (asks == 0 || rc != SB_TOKEN_BAD_SIG);
        free (token);
    }
    free (text);
    return 0;
}
