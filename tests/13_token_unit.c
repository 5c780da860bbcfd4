/*  tests/13_token_unit.c — unit tests of jwt/sb_token: issue/verify
    round trip, expiry, signature, tampering, refused algorithms, audience,
    garbage and over-long input; EdDSA tokens under a key set with kid and
    rotation, and the key set itself; the strict checks (canonical base64url in
    every part, nbf, iat in the future, sub required); the verified-token
    cache. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_crypto.h"
#include "sb_jwks.h"
#include "sb_token.h"

#define NOW 1800000000
#define AUD "http://127.0.0.1:8080/mcp"

static const uint8_t s_key [32] = "0123456789abcdef0123456789abcdef";

static void
s_claims (sb_token_claims_t *c, int64_t iat, int64_t exp)
{
    memset (c, 0, sizeof *c);
    snprintf (c->tenant, sizeof c->tenant, "acme");
    snprintf (c->subject, sizeof c->subject, "alice");
    snprintf (c->client_id, sizeof c->client_id, "chatgpt");
    snprintf (c->scope, sizeof c->scope, "mcp tools");
    snprintf (c->audience, sizeof c->audience, AUD);
    c->issued_at = iat;
    c->expires_at = exp;
}

//  Builds header.payload.signature from raw JSON parts signed with s_key.
static char *
s_forge (const char *header, const char *payload, bool sign)
{
    char *h = sb_base64url_encode ((const uint8_t *) header, strlen (header));
    char *p = sb_base64url_encode ((const uint8_t *) payload, strlen (payload));
    char signing [2048];
    snprintf (signing, sizeof signing, "%s.%s", h, p);
    char *s = NULL;
    if (sign) {
        uint8_t mac [SB_HMAC_SHA256_LEN];
        sb_hmac_sha256 (s_key, sizeof s_key, (const uint8_t *) signing, strlen (signing), mac);
        s = sb_base64url_encode (mac, sizeof mac);
    }
    char *out = malloc (4096);
    snprintf (out, 4096, "%s.%s", signing, s? s: "");
    free (h);
    free (p);
    free (s);
    return out;
}

static void
test_round_trip (void **state)
{
    sb_token_claims_t in, out;
    s_claims (&in, NOW, NOW + 3600);
    char *token = sb_token_issue (&in, s_key, sizeof s_key);
    assert_non_null (token);
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, AUD, NOW + 10, &out), SB_TOKEN_OK);
    assert_string_equal (out.tenant, "acme");
    assert_string_equal (out.subject, "alice");
    assert_string_equal (out.client_id, "chatgpt");
    assert_string_equal (out.scope, "mcp tools");
    assert_string_equal (out.audience, AUD);
    assert_int_equal (out.issued_at, NOW);
    assert_int_equal (out.expires_at, NOW + 3600);
    //  NULL audience skips the check.
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, NULL, NOW, &out), SB_TOKEN_OK);
    free (token);
}

static void
test_issue_refuses (void **state)
{
    sb_token_claims_t c;
    s_claims (&c, NOW, NOW + 60);
    assert_null (sb_token_issue (&c, s_key, 16));               //  short key
    c.tenant [0] = 0;
    assert_null (sb_token_issue (&c, s_key, sizeof s_key));     //  no tenant
    s_claims (&c, NOW, NOW);
    assert_null (sb_token_issue (&c, s_key, sizeof s_key));     //  exp <= iat
    s_claims (&c, NOW, NOW + 60);
    snprintf (c.tenant, sizeof c.tenant, "a\"b");
    assert_null (sb_token_issue (&c, s_key, sizeof s_key));     //  odd tenant chars
}

static void
test_expired (void **state)
{
    sb_token_claims_t c, out;
    s_claims (&c, NOW - 7200, NOW - 3600);
    char *token = sb_token_issue (&c, s_key, sizeof s_key);
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_EXPIRED);
    //  Within the 30 s leeway it is still accepted.
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, AUD, NOW - 3600 + 20, &out), SB_TOKEN_OK);
    free (token);
}

static void
test_bad_signature (void **state)
{
    sb_token_claims_t c, out;
    s_claims (&c, NOW, NOW + 60);
    char *token = sb_token_issue (&c, s_key, sizeof s_key);
    uint8_t other [32];
    memcpy (other, s_key, sizeof other);
    other [0] ^= 1;
    assert_int_equal (sb_token_verify (token, other, sizeof other, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    //  Flip one signature character.
    size_t len = strlen (token);
    token [len - 2] = token [len - 2] == 'A'? 'B': 'A';
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    free (token);
}

static void
test_tampered_payload (void **state)
{
    sb_token_claims_t c, out;
    s_claims (&c, NOW, NOW + 60);
    char *token = sb_token_issue (&c, s_key, sizeof s_key);
    char *dot1 = strchr (token, '.');
    char *dot2 = strchr (dot1 + 1, '.');
    //  Replace the claims with another tenant's, keep the old signature.
    const char *evil = "{\"aud\":\"" AUD "\",\"exp\":1800000060,\"iat\":1800000000,"
                       "\"iss\":\"switchboard\",\"sub\":\"alice\",\"ten\":\"evil\"}";
    char *p = sb_base64url_encode ((const uint8_t *) evil, strlen (evil));
    char forged [4096];
    snprintf (forged, sizeof forged, "%.*s.%s%s", (int) (dot1 - token), token, p, dot2);
    assert_int_equal (sb_token_verify (forged, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    free (p);
    free (token);
}

static void
test_refused_algorithms (void **state)
{
    sb_token_claims_t out;
    const char *claims = "{\"aud\":\"" AUD "\",\"exp\":1800000060,\"iat\":1800000000,"
                         "\"iss\":\"switchboard\",\"sub\":\"alice\",\"ten\":\"acme\"}";
    char *t = s_forge ("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, false);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    t = s_forge ("{\"alg\":\"none\"}", claims, true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    t = s_forge ("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims, true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    t = s_forge ("{\"alg\":\"hs256\"}", claims, true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    //  The same claims under HS256 verify: the forge helper is sound.
    t = s_forge ("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_OK);
    free (t);
    //  Signed but missing the tenant / wrong issuer / exp not a number.
    t = s_forge ("{\"alg\":\"HS256\"}", "{\"iss\":\"switchboard\",\"exp\":1800000060}", true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, NULL, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    t = s_forge ("{\"alg\":\"HS256\"}", "{\"iss\":\"other\",\"ten\":\"a\",\"exp\":1800000060}", true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, NULL, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    t = s_forge ("{\"alg\":\"HS256\"}", "{\"iss\":\"switchboard\",\"ten\":\"a\",\"exp\":\"soon\"}", true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, NULL, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
}

static void
test_wrong_audience (void **state)
{
    sb_token_claims_t c, out;
    s_claims (&c, NOW, NOW + 60);
    char *token = sb_token_issue (&c, s_key, sizeof s_key);
    memset (&out, 0, sizeof out);
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, "https://other.example/mcp", NOW, &out),
                      SB_TOKEN_AUDIENCE);
    //  The signature held: the claims say whose token it is (for the audit).
    assert_string_equal (out.tenant, "acme");
    assert_string_equal (out.subject, "alice");
    assert_string_equal (out.audience, AUD);
    //  Any other refusal leaves them alone.
    memset (&out, 0, sizeof out);
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, "https://other.example/mcp",
                                       NOW + 3600, &out), SB_TOKEN_EXPIRED);
    assert_string_equal (out.tenant, "");
    free (token);
}

static void
test_garbage (void **state)
{
    sb_token_claims_t out;
    const char *garbage [] = {
        "", ".", "..", "...", "abc", "a.b", "a.b.c", "a.b.c.d", "!!!.???.###",
        "eyJhbGciOiJIUzI1NiJ9..", "e30.e30.", "e30.e30.AAAA",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage [0]; i++)
        assert_int_not_equal (sb_token_verify (garbage [i], s_key, sizeof s_key, AUD, NOW, &out),
                              SB_TOKEN_OK);
    assert_int_equal (sb_token_verify (NULL, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    assert_string_equal (sb_token_strerror (SB_TOKEN_EXPIRED), "token expired");
}

static void
test_too_long (void **state)
{
    sb_token_claims_t out;
    size_t len = SB_MAX_TOKEN_LEN + 10;
    char *token = malloc (len + 1);
    memset (token, 'A', len);
    token [len] = 0;
    token [10] = '.';
    token [len - 50] = '.';
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (token);
    //  A huge scope claim cannot produce a token verify would refuse.
    sb_token_claims_t c;
    s_claims (&c, NOW, NOW + 60);
    memset (c.scope, 's', sizeof c.scope - 1);
    char *ok = sb_token_issue (&c, s_key, sizeof s_key);
    if (ok) {
        assert_true (strlen (ok) <= SB_MAX_TOKEN_LEN);
        assert_int_equal (sb_token_verify (ok, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_OK);
        free (ok);
    }
}

//  Joins two already-encoded parts, signs them with s_key and appends the
//  signature's encoding followed by `sig_suffix` (e.g. "=" padding).
static char *
s_sign_parts (const char *h_b64, const char *p_b64, const char *sig_suffix)
{
    char signing [2048];
    snprintf (signing, sizeof signing, "%s.%s", h_b64, p_b64);
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (s_key, sizeof s_key, (const uint8_t *) signing, strlen (signing), mac);
    char *s = sb_base64url_encode (mac, sizeof mac);
    char *out = malloc (4096);
    snprintf (out, 4096, "%s.%s%s", signing, s, sig_suffix);
    free (s);
    return out;
}

//  Each part of a token must be canonical base64url: no "=" padding, no
//  non-zero bits after the last byte, only the url-safe alphabet. A token
//  that is otherwise valid and correctly signed is refused when any one
//  part is written another way that decodes to the same bytes.
static void
test_strict_base64url (void **state)
{
    (void) state;
    sb_token_claims_t out;
    //  28 and 122 bytes: both encodings need "=" padding to reach 4n.
    const char *header = "{\"alg\":\"HS256\", \"typ\":\"JWT\"}";
    const char *claims = "{\"aud\":\"" AUD "\",\"exp\":1800000060,\"iat\":1800000000,"
                         "\"iss\":\"switchboard\",\"sub\":\"alice\",\"ten\":\"acme\"}";
    char *h = sb_base64url_encode ((const uint8_t *) header, strlen (header));
    char *p = sb_base64url_encode ((const uint8_t *) claims, strlen (claims));
    assert_int_not_equal (strlen (h) % 4, 0);
    assert_int_not_equal (strlen (p) % 4, 0);
    char padded_h [256], padded_p [512];
    snprintf (padded_h, sizeof padded_h, "%s%.*s", h, (int) ((4 - strlen (h) % 4) % 4), "==");
    snprintf (padded_p, sizeof padded_p, "%s%.*s", p, (int) ((4 - strlen (p) % 4) % 4), "==");

    //  The canonical form verifies: the helper is sound.
    char *t = s_sign_parts (h, p, "");
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_OK);
    free (t);
    //  Padding on the signature (43 chars + "=").
    t = s_sign_parts (h, p, "=");
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    //  Padding on the header, on the claims (signed as sent).
    t = s_sign_parts (padded_h, p, "");
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    t = s_sign_parts (h, padded_p, "");
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);

    //  Non-zero trailing bits: the signature's last character carries 4
    //  bits and 2 spare ones; setting a spare bit decodes to the same MAC.
    t = s_sign_parts (h, p, "");
    size_t len = strlen (t);
    const char alphabet [] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *at = strchr (alphabet, t [len - 1]);
    assert_non_null (at);
    assert_int_equal ((at - alphabet) & 3, 0);
    t [len - 1] = alphabet [(at - alphabet) | 1];
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    //  Characters outside the url-safe alphabet.
    t [len - 1] = '+';
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    t [len - 1] = '/';
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    free (h);
    free (p);
}

//  A signed token whose claims say it is not valid yet is refused: nbf
//  after now, or iat after now, beyond the clock-skew allowance.
static void
test_not_yet_valid (void **state)
{
    (void) state;
    sb_token_claims_t out;
    char payload [512];
    const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    //  nbf an hour ahead.
    snprintf (payload, sizeof payload, "{\"aud\":\"" AUD "\",\"exp\":%d,\"iat\":%d,\"nbf\":%d,"
              "\"iss\":\"switchboard\",\"sub\":\"alice\",\"ten\":\"acme\"}",
              NOW + 7200, NOW, NOW + 3600);
    char *t = s_forge (header, payload, true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_NOT_YET_VALID);
    //  Valid from nbf on (and within the skew allowance before it).
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW + 3600, &out), SB_TOKEN_OK);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW + 3600 - SB_TOKEN_CLOCK_SKEW_S, &out),
                      SB_TOKEN_OK);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW + 3600 - SB_TOKEN_CLOCK_SKEW_S - 1, &out),
                      SB_TOKEN_NOT_YET_VALID);
    free (t);
    //  nbf that is not a number.
    snprintf (payload, sizeof payload, "{\"aud\":\"" AUD "\",\"exp\":%d,\"iat\":%d,\"nbf\":\"now\","
              "\"iss\":\"switchboard\",\"sub\":\"alice\",\"ten\":\"acme\"}", NOW + 7200, NOW);
    t = s_forge (header, payload, true);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (t);
    //  iat an hour ahead (issued by a clock that is wrong, or forged ahead).
    sb_token_claims_t c;
    s_claims (&c, NOW + 3600, NOW + 7200);
    t = sb_token_issue (&c, s_key, sizeof s_key);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_NOT_YET_VALID);
    assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW + 3600 - SB_TOKEN_CLOCK_SKEW_S, &out),
                      SB_TOKEN_OK);
    free (t);
    //  Through the cache too, and a refusal is not kept.
    sb_token_cache_t *cache = sb_token_cache_new (s_key, sizeof s_key, AUD);
    t = sb_token_issue (&c, s_key, sizeof s_key);
    assert_int_equal (sb_token_cache_verify (cache, t, NOW, &out), SB_TOKEN_NOT_YET_VALID);
    assert_int_equal (sb_token_cache_verify (cache, t, NOW, &out), SB_TOKEN_NOT_YET_VALID);
    assert_int_equal (sb_token_cache_verify (cache, t, NOW + 3600, &out), SB_TOKEN_OK);
    free (t);
    sb_token_cache_destroy (&cache);
    assert_string_equal (sb_token_strerror (SB_TOKEN_NOT_YET_VALID), "token not valid yet");
}

//  Every token names its user: a signed token without `sub`, or with an
//  empty or non-string one, is refused, and none is issued.
//  A token naming the authorization server's URL as iss is accepted only
//  by a cache told that issuer; any other iss is refused; "switchboard"
//  (sb-token's) always is accepted.
static void
test_issuer (void **state)
{
    sb_token_claims_t c;
    s_claims (&c, NOW, NOW + 60);
    snprintf (c.issuer, sizeof c.issuer, "https://as.example");
    char *oauth = sb_token_issue (&c, s_key, sizeof s_key);
    snprintf (c.issuer, sizeof c.issuer, "https://other.example");
    char *other = sb_token_issue (&c, s_key, sizeof s_key);
    c.issuer [0] = '\0';
    char *plain = sb_token_issue (&c, s_key, sizeof s_key);
    assert_non_null (oauth);
    assert_non_null (other);
    assert_non_null (plain);

    sb_token_claims_t out;
    sb_token_cache_t *cache = sb_token_cache_new (s_key, sizeof s_key, AUD);
    assert_int_equal (sb_token_cache_verify (cache, oauth, NOW, &out), SB_TOKEN_MALFORMED);
    assert_int_equal (sb_token_cache_set_issuer (cache, "https://as.example"), 0);
    assert_int_equal (sb_token_cache_verify (cache, oauth, NOW, &out), SB_TOKEN_OK);
    assert_string_equal (out.issuer, "https://as.example");
    assert_int_equal (sb_token_cache_verify (cache, other, NOW, &out), SB_TOKEN_MALFORMED);
    assert_int_equal (sb_token_cache_verify (cache, plain, NOW, &out), SB_TOKEN_OK);
    assert_string_equal (out.issuer, "switchboard");
    //  Without the cache, only "switchboard".
    assert_int_equal (sb_token_verify (oauth, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    sb_token_cache_destroy (&cache);
    free (oauth);
    free (other);
    free (plain);
}

static void
test_subject_required (void **state)
{
    (void) state;
    sb_token_claims_t out;
    const char *header = "{\"alg\":\"HS256\"}";
    const char *no_sub = "{\"aud\":\"" AUD "\",\"exp\":1800000060,\"iat\":1800000000,"
                         "\"iss\":\"switchboard\",\"ten\":\"acme\"}";
    const char *empty_sub = "{\"aud\":\"" AUD "\",\"exp\":1800000060,\"iat\":1800000000,"
                            "\"iss\":\"switchboard\",\"sub\":\"\",\"ten\":\"acme\"}";
    const char *number_sub = "{\"aud\":\"" AUD "\",\"exp\":1800000060,\"iat\":1800000000,"
                             "\"iss\":\"switchboard\",\"sub\":7,\"ten\":\"acme\"}";
    const char *refused [] = { no_sub, empty_sub, number_sub };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        char *t = s_forge (header, refused [i], true);
        assert_int_equal (sb_token_verify (t, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_MALFORMED);
        free (t);
    }
    sb_token_claims_t c;
    s_claims (&c, NOW, NOW + 60);
    c.subject [0] = 0;
    assert_null (sb_token_issue (&c, s_key, sizeof s_key));
}

//  Two Ed25519 signing keys: the current one and the previous one.
static const uint8_t s_seed1 [SB_ED25519_KEY_LEN] = "ed25519 seed one, 32 bytes long!";
static const uint8_t s_seed2 [SB_ED25519_KEY_LEN] = "ed25519 seed two, 32 bytes long!";

//  The public set of seed1 as "k1" and/or seed2 as "k2".
static sb_jwks_t *
s_jwks (bool with_k1, bool with_k2)
{
    char *k1 = sb_jwks_public_jwk (s_seed1, "k1");
    char *k2 = sb_jwks_public_jwk (s_seed2, "k2");
    assert_non_null (k1);
    assert_non_null (k2);
    char text [1024];
    snprintf (text, sizeof text, "{\"keys\":[%s%s%s]}", with_k1? k1: "",
              with_k1 && with_k2? ",": "", with_k2? k2: "");
    char error [160];
    sb_jwks_t *jwks = sb_jwks_parse (text, strlen (text), error, sizeof error);
    assert_non_null (jwks);
    free (k1);
    free (k2);
    return jwks;
}

//  EdDSA tokens verify under the public key their kid names; a set with
//  the current and the previous key takes tokens of both (rotation); a key
//  out of the set, another key under the same kid, a changed signature or
//  claims are refused; HS256 keeps working beside it.
static void
test_eddsa (void **state)
{
    (void) state;
    sb_token_claims_t in, out;
    s_claims (&in, NOW, NOW + 3600);
    sb_jwks_t *both = s_jwks (true, true);
    sb_jwks_t *only_k2 = s_jwks (false, true);
    char *t1 = sb_token_issue_eddsa (&in, s_seed1, "k1");
    char *t2 = sb_token_issue_eddsa (&in, s_seed2, "k2");
    assert_non_null (t1);
    assert_non_null (t2);
    assert_int_equal (sb_token_verify_keys (t1, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_OK);
    assert_string_equal (out.tenant, "acme");
    assert_string_equal (out.subject, "alice");
    assert_string_equal (out.scope, "mcp tools");
    assert_int_equal (sb_token_verify_keys (t2, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_OK);
    //  k1 retired: its tokens stop; k2's go on.
    assert_int_equal (sb_token_verify_keys (t1, NULL, 0, only_k2, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    assert_int_equal (sb_token_verify_keys (t2, NULL, 0, only_k2, AUD, NOW, &out), SB_TOKEN_OK);
    //  Without a set, or through the HS256-only verifier: refused.
    assert_int_equal (sb_token_verify_keys (t1, s_key, sizeof s_key, NULL, AUD, NOW, &out),
                      SB_TOKEN_BAD_SIG);
    assert_int_equal (sb_token_verify (t1, s_key, sizeof s_key, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    //  Signed by seed2 but claiming to be k1.
    char *liar = sb_token_issue_eddsa (&in, s_seed2, "k1");
    assert_int_equal (sb_token_verify_keys (liar, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    free (liar);
    //  The usual claim checks apply.
    assert_int_equal (sb_token_verify_keys (t1, NULL, 0, both, AUD, NOW + 7200, &out), SB_TOKEN_EXPIRED);
    assert_int_equal (sb_token_verify_keys (t1, NULL, 0, both, "https://x/mcp", NOW, &out),
                      SB_TOKEN_AUDIENCE);
    //  A changed signature character; the signature padded.
    char *bad = strdup (t1);
    size_t len = strlen (bad);
    bad [len - 5] = bad [len - 5] == 'A'? 'B': 'A';
    assert_int_equal (sb_token_verify_keys (bad, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    free (bad);
    char padded [4200];
    snprintf (padded, sizeof padded, "%s==", t1);
    assert_int_equal (sb_token_verify_keys (padded, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    //  Another tenant's claims under t1's header and signature.
    sb_token_claims_t evil;
    s_claims (&evil, NOW, NOW + 3600);
    snprintf (evil.tenant, sizeof evil.tenant, "evil");
    char *other = sb_token_issue_eddsa (&evil, s_seed1, "k1");
    const char *o1 = strchr (other, '.'), *o2 = strchr (o1 + 1, '.');
    const char *d1 = strchr (t1, '.'), *d2 = strchr (d1 + 1, '.');
    char forged [4200];
    snprintf (forged, sizeof forged, "%.*s%.*s%s", (int) (d1 - t1), t1, (int) (o2 - o1), o1, d2);
    assert_int_equal (sb_token_verify_keys (forged, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_BAD_SIG);
    free (other);
    //  HS256 beside EdDSA, and HS256 refused when no key is given.
    char *hs = sb_token_issue (&in, s_key, sizeof s_key);
    assert_int_equal (sb_token_verify_keys (hs, s_key, sizeof s_key, both, AUD, NOW, &out), SB_TOKEN_OK);
    assert_int_equal (sb_token_verify_keys (hs, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    //  A bad kid is never issued.
    assert_null (sb_token_issue_eddsa (&in, s_seed1, ""));
    assert_null (sb_token_issue_eddsa (&in, s_seed1, "k\"1"));
    //  EdDSA header without a kid, or with one that is not a string.
    char *no_kid = s_forge ("{\"alg\":\"EdDSA\"}", "{}", false);
    assert_int_equal (sb_token_verify_keys (no_kid, NULL, 0, both, AUD, NOW, &out), SB_TOKEN_MALFORMED);
    free (no_kid);

    //  Through the cache: verified once, then answered; a new set drops
    //  what the old one verified.
    sb_token_cache_t *cache = sb_token_cache_new (s_key, sizeof s_key, AUD);
    assert_int_equal (sb_token_cache_verify (cache, t1, NOW, &out), SB_TOKEN_BAD_SIG);
    sb_token_cache_set_jwks (cache, both);
    assert_int_equal (sb_token_cache_verify (cache, t1, NOW, &out), SB_TOKEN_OK);
    assert_int_equal (sb_token_cache_verify (cache, t1, NOW, &out), SB_TOKEN_OK);
    uint64_t hits, misses;
    sb_token_cache_counts (cache, &hits, &misses);
    assert_int_equal (hits, 1);
    sb_token_cache_set_jwks (cache, only_k2);
    assert_int_equal (sb_token_cache_verify (cache, t1, NOW, &out), SB_TOKEN_BAD_SIG);
    assert_int_equal (sb_token_cache_verify (cache, t2, NOW, &out), SB_TOKEN_OK);
    assert_int_equal (sb_token_cache_verify (cache, hs, NOW, &out), SB_TOKEN_OK);
    sb_token_cache_destroy (&cache);

    free (hs);
    free (t1);
    free (t2);
    sb_jwks_destroy (&both);
    sb_jwks_destroy (&only_k2);
    assert_null (both);
}

//  A key set holds Ed25519 public keys only, each with its own kid; what
//  it serves is written from the parsed keys and parses back the same.
static void
test_jwks (void **state)
{
    (void) state;
    char error [160];
    const char *refused [] = {
        "", "[]", "{}", "{\"keys\":[]}", "{\"keys\":{}}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\"}]}",            //  no x
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"a\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",                     //  not a signing curve
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a b\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",                     //  bad kid
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}",                    //  padded x
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcH\"}]}",                        //  short x
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",                     //  private
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
        "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",                     //  same kid twice
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        error [0] = 0;
        assert_null (sb_jwks_parse (refused [i], strlen (refused [i]), error, sizeof error));
        assert_true (strlen (error) > 0);
    }
    sb_jwks_t *jwks = s_jwks (true, true);
    assert_int_equal (sb_jwks_count (jwks), 2);
    assert_non_null (sb_jwks_find (jwks, "k1"));
    assert_null (sb_jwks_find (jwks, "k3"));
    char *served = sb_jwks_json (jwks);
    assert_non_null (served);
    assert_null (strstr (served, "\"d\""));
    sb_jwks_t *again = sb_jwks_parse (served, strlen (served), error, sizeof error);
    assert_non_null (again);
    assert_int_equal (sb_jwks_count (again), 2);
    assert_memory_equal (sb_jwks_find (again, "k2"), sb_jwks_find (jwks, "k2"), SB_ED25519_KEY_LEN);
    free (served);
    sb_jwks_destroy (&again);
    sb_jwks_destroy (&jwks);
}

//  The cache answers a token it verified, with the same claims; it never
//  keeps a refusal, re-checks expiry on every hit, and a token differing
//  in one byte is verified (and refused) in full.
static void
test_cache (void **state)
{
    (void) state;
    assert_null (sb_token_cache_new (s_key, 8, AUD));           //  key too short
    sb_token_cache_t *cache = sb_token_cache_new (s_key, sizeof s_key, AUD);
    assert_non_null (cache);
    sb_token_claims_t in, out, direct;
    s_claims (&in, NOW, NOW + 60);
    char *token = sb_token_issue (&in, s_key, sizeof s_key);
    assert_non_null (token);
    uint64_t hits, misses;

    assert_int_equal (sb_token_cache_verify (cache, token, NOW, &out), SB_TOKEN_OK);
    assert_int_equal (sb_token_verify (token, s_key, sizeof s_key, AUD, NOW, &direct), SB_TOKEN_OK);
    assert_memory_equal (&out, &direct, sizeof out);
    memset (&out, 0, sizeof out);
    assert_int_equal (sb_token_cache_verify (cache, token, NOW + 1, &out), SB_TOKEN_OK);
    assert_memory_equal (&out, &direct, sizeof out);
    sb_token_cache_counts (cache, &hits, &misses);
    assert_int_equal (hits, 1);
    assert_int_equal (misses, 1);

    //  One byte changed in the signature: a miss, and refused.
    char *tampered = strdup (token);
    size_t len = strlen (tampered);
    tampered [len - 2] = tampered [len - 2] == 'A'? 'B': 'A';
    assert_int_equal (sb_token_cache_verify (cache, tampered, NOW, &out), SB_TOKEN_BAD_SIG);
    assert_int_equal (sb_token_cache_verify (cache, tampered, NOW, &out), SB_TOKEN_BAD_SIG);
    sb_token_cache_counts (cache, &hits, &misses);
    assert_int_equal (hits, 1);
    assert_int_equal (misses, 3);

    //  Past exp and the leeway: refused on the hit, and dropped.
    assert_int_equal (sb_token_cache_verify (cache, token, NOW + 60 + 31, &out), SB_TOKEN_EXPIRED);
    assert_int_equal (sb_token_cache_verify (cache, token, NOW + 60 + 31, &out), SB_TOKEN_EXPIRED);
    sb_token_cache_counts (cache, &hits, &misses);
    assert_int_equal (hits, 1);
    assert_int_equal (misses, 5);

    //  Audience and key are the cache's own.
    sb_token_cache_t *other = sb_token_cache_new (s_key, sizeof s_key, "https://elsewhere/mcp");
    assert_int_equal (sb_token_cache_verify (other, token, NOW, &out), SB_TOKEN_AUDIENCE);
    assert_int_equal (sb_token_cache_verify (other, token, NOW, &out), SB_TOKEN_AUDIENCE);
    sb_token_cache_destroy (&other);
    static const uint8_t key2 [32] = "fedcba9876543210fedcba9876543210";
    other = sb_token_cache_new (key2, sizeof key2, AUD);
    assert_int_equal (sb_token_cache_verify (other, token, NOW, &out), SB_TOKEN_BAD_SIG);
    sb_token_cache_destroy (&other);

    //  Garbage and NULLs, through the cache.
    assert_int_equal (sb_token_cache_verify (cache, "", NOW, &out), SB_TOKEN_MALFORMED);
    assert_int_equal (sb_token_cache_verify (cache, "a.b.c", NOW, &out), SB_TOKEN_MALFORMED);
    assert_int_equal (sb_token_cache_verify (NULL, token, NOW, &out), SB_TOKEN_MALFORMED);

    //  More tokens than slots: all verify; the cache stays bounded.
    for (int i = 0; i < SB_TOKEN_CACHE_SLOTS + 50; i++) {
        s_claims (&in, NOW, NOW + 3600 + i);
        char *each = sb_token_issue (&in, s_key, sizeof s_key);
        assert_int_equal (sb_token_cache_verify (cache, each, NOW, &out), SB_TOKEN_OK);
        assert_int_equal (out.expires_at, NOW + 3600 + i);
        free (each);
    }
    free (tampered);
    free (token);
    sb_token_cache_destroy (&cache);
    assert_null (cache);
    sb_token_cache_destroy (&cache);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_issue_refuses),
        cmocka_unit_test (test_expired),
        cmocka_unit_test (test_bad_signature),
        cmocka_unit_test (test_tampered_payload),
        cmocka_unit_test (test_refused_algorithms),
        cmocka_unit_test (test_wrong_audience),
        cmocka_unit_test (test_garbage),
        cmocka_unit_test (test_too_long),
        cmocka_unit_test (test_strict_base64url),
        cmocka_unit_test (test_not_yet_valid),
        cmocka_unit_test (test_subject_required),
        cmocka_unit_test (test_issuer),
        cmocka_unit_test (test_eddsa),
        cmocka_unit_test (test_jwks),
        cmocka_unit_test (test_cache),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
