/*  jwt/sb_token.c — the gateway's signed access tokens (JWT, HS256).

    A token is base64url(header) "." base64url(claims) "." base64url(HMAC).
    Verification order matters: size limit, shape, header (alg must be
    exactly HS256), then the signature in constant time, and only then the
    claims are parsed, so unsigned JSON never gets further than the header.
    Every part must be canonical base64url (no padding, zero trailing bits):
    a token has exactly one spelling. */
#include "sb_token.h"
#include "sb_crypto.h"
#include "sb_jwks.h"
#include "sb_json.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_TOKEN_ISSUER         "switchboard"
#define SB_MAX_TOKEN_PART       SB_MAX_TOKEN_LEN    /* one decoded part, bytes */

static const char s_header [] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

//  A tenant ID travels in protocol frames and logs: 1..64 chars of
//  [A-Za-z0-9._:-] only.
static bool
s_tenant_valid (const char *tenant)
{
    size_t len = strlen (tenant);
    if (len == 0 || len > SB_MAX_TENANT_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = tenant [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'
               || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

//  Copies `value` into `buf` of `size`; -1 when it does not fit.
static int
s_copy (char *buf, size_t size, const char *value)
{
    size_t len = strlen (value);
    if (len >= size)
        return -1;
    memcpy (buf, value, len + 1);
    return 0;
}

//  How a token is signed: HS256 under a shared key, or EdDSA under an
//  Ed25519 private seed named by a kid.
typedef struct {
    const uint8_t *key;         //  HS256 key, or NULL for EdDSA
    size_t key_len;
    const uint8_t *seed;        //  EdDSA private seed (SB_ED25519_KEY_LEN bytes)
    const char *kid;            //  EdDSA key ID
} s_signer_t;

//  The header of a token signed by `signer` (new string), or NULL.
static char *
s_header_text (const s_signer_t *signer)
{
    if (signer->key)
        return strdup (s_header);
    json_t *header = json_pack ("{s:s, s:s, s:s}", "alg", "EdDSA", "kid", signer->kid, "typ", "JWT");
    char *text = header? json_dumps (header, JSON_COMPACT | JSON_SORT_KEYS): NULL;
    json_decref (header);
    return text;
}

static char *
s_issue (const sb_token_claims_t *claims, const s_signer_t *signer)
{
    char *result = NULL;
    char *header_b64 = NULL, *claims_b64 = NULL, *sig_b64 = NULL, *text = NULL;
    char *signing = NULL, *header_text = NULL;
    json_t *obj = NULL;

    if (!claims || !s_tenant_valid (claims->tenant) || !claims->subject [0]
    ||  claims->expires_at <= claims->issued_at)
        goto out;
    obj = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I}",
                     "iss", claims->issuer [0]? claims->issuer: SB_TOKEN_ISSUER, "aud", claims->audience,
                     "sub", claims->subject, "ten", claims->tenant,
                     "iat", (json_int_t) claims->issued_at,
                     "exp", (json_int_t) claims->expires_at);
    if (!obj)
        goto out;
    if (claims->client_id [0]
    &&  json_object_set_new (obj, "client_id", json_string (claims->client_id)))
        goto out;
    if (claims->jwt_id [0]
    &&  json_object_set_new (obj, "jti", json_string (claims->jwt_id)))
        goto out;
    if (claims->scope [0]
    &&  json_object_set_new (obj, "scope", json_string (claims->scope)))
        goto out;
    text = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
    header_text = s_header_text (signer);
    if (!text || !header_text)
        goto out;
    header_b64 = sb_base64url_encode ((const uint8_t *) header_text, strlen (header_text));
    claims_b64 = sb_base64url_encode ((const uint8_t *) text, strlen (text));
    if (!header_b64 || !claims_b64)
        goto out;
    size_t signing_len = strlen (header_b64) + 1 + strlen (claims_b64);
    if (signing_len > SB_MAX_TOKEN_LEN - 87)
        goto out;               //  the result would be refused by verify
    signing = malloc (signing_len + 1);
    if (!signing)
        goto out;
    //  Lengths are known exactly: join with memcpy (snprintf here trips
    //  gcc's -Wformat-truncation at -O2 although nothing can be cut).
    size_t header_len = strlen (header_b64);
    memcpy (signing, header_b64, header_len);
    signing [header_len] = '.';
    memcpy (signing + header_len + 1, claims_b64, strlen (claims_b64) + 1);
    if (signer->key) {
        uint8_t mac [SB_HMAC_SHA256_LEN];
        sb_hmac_sha256 (signer->key, signer->key_len, (const uint8_t *) signing, signing_len, mac);
        sig_b64 = sb_base64url_encode (mac, sizeof mac);
    }
    else {
        uint8_t sig [SB_ED25519_SIG_LEN];
        if (sb_ed25519_sign (signer->seed, (const uint8_t *) signing, signing_len, sig))
            goto out;
        sig_b64 = sb_base64url_encode (sig, sizeof sig);
    }
    if (!sig_b64)
        goto out;
    size_t total = signing_len + 1 + strlen (sig_b64) + 1;
    result = malloc (total);
    if (result) {
        memcpy (result, signing, signing_len);
        result [signing_len] = '.';
        memcpy (result + signing_len + 1, sig_b64, strlen (sig_b64) + 1);
    }
out:
    json_decref (obj);
    free (text);
    free (header_text);
    free (header_b64);
    free (claims_b64);
    free (sig_b64);
    free (signing);
    return result;
}

char *
sb_token_issue (const sb_token_claims_t *claims, const uint8_t *key, size_t key_len)
{
    if (!key || key_len < SB_MIN_TOKEN_KEY_LEN)
        return NULL;
    s_signer_t signer = { .key = key, .key_len = key_len };
    return s_issue (claims, &signer);
}

char *
sb_token_issue_eddsa (const sb_token_claims_t *claims, const uint8_t seed [SB_ED25519_KEY_LEN],
                      const char *kid)
{
    if (!seed || !sb_jwks_kid_valid (kid))
        return NULL;
    s_signer_t signer = { .seed = seed, .kid = kid };
    return s_issue (claims, &signer);
}

//  Decodes one base64url part into a parsed JSON object, or NULL.
static json_t *
s_decode_json_part (const char *part, size_t len)
{
    uint8_t *buf = malloc (SB_MAX_TOKEN_PART);
    if (!buf)
        return NULL;
    json_t *obj = NULL;
    size_t out_len = 0;
    if (sb_base64url_decode_strict (part, len, buf, SB_MAX_TOKEN_PART, &out_len) == 0) {
        obj = sb_json_parse ((const char *) buf, out_len, JSON_REJECT_DUPLICATES, NULL);
        if (obj && !json_is_object (obj)) {
            json_decref (obj);
            obj = NULL;
        }
    }
    free (buf);
    return obj;
}

//  Reads optional string claim `name` into buf; -1 if present but not a
//  string or too long.
static int
s_claim_str (json_t *obj, const char *name, char *buf, size_t size, bool required)
{
    json_t *value = json_object_get (obj, name);
    if (!value) {
        buf [0] = 0;
        return required? -1: 0;
    }
    if (!json_is_string (value))
        return -1;
    return s_copy (buf, size, json_string_value (value));
}

//  True when `aud` (string or array of strings) names `audience`.
static bool
s_audience_matches (json_t *aud, const char *audience)
{
    if (json_is_string (aud))
        return strcmp (json_string_value (aud), audience) == 0;
    if (json_is_array (aud)) {
        size_t index;
        json_t *item;
        json_array_foreach (aud, index, item)
            if (json_is_string (item) && strcmp (json_string_value (item), audience) == 0)
                return true;
    }
    return false;
}

sb_token_rc_t
sb_token_verify (const char *token, const uint8_t *key, size_t key_len,
                 const char *audience, int64_t now_s, sb_token_claims_t *claims)
{
    return sb_token_verify_keys (token, key, key_len, NULL, audience, now_s, claims);
}

//  sb_token_verify_keys, also accepting `issuer` (NULL: none) as `iss`.
static sb_token_rc_t
s_verify (const char *token, const uint8_t *key, size_t key_len, const sb_jwks_t *jwks,
          const char *issuer, const char *audience, int64_t now_s, sb_token_claims_t *claims);

sb_token_rc_t
sb_token_verify_keys (const char *token, const uint8_t *key, size_t key_len, const sb_jwks_t *jwks,
                      const char *audience, int64_t now_s, sb_token_claims_t *claims)
{
    return s_verify (token, key, key_len, jwks, NULL, audience, now_s, claims);
}

static sb_token_rc_t
s_verify (const char *token, const uint8_t *key, size_t key_len, const sb_jwks_t *jwks,
          const char *issuer, const char *audience, int64_t now_s, sb_token_claims_t *claims)
{
    sb_token_rc_t rc = SB_TOKEN_MALFORMED;
    json_t *header = NULL, *body = NULL;

    if (!token || (key && key_len < SB_MIN_TOKEN_KEY_LEN) || !claims)
        goto out;
    size_t len = strnlen (token, SB_MAX_TOKEN_LEN + 1);
    if (len == 0 || len > SB_MAX_TOKEN_LEN)
        goto out;
    const char *dot1 = memchr (token, '.', len);
    if (!dot1)
        goto out;
    const char *dot2 = memchr (dot1 + 1, '.', len - (size_t) (dot1 + 1 - token));
    if (!dot2 || memchr (dot2 + 1, '.', len - (size_t) (dot2 + 1 - token)))
        goto out;

    //  Header: HS256 with a key, or EdDSA with a kid the set names;
    //  anything else (none, RS256, EdDSA without the set…) is refused.
    header = s_decode_json_part (token, (size_t) (dot1 - token));
    if (!header)
        goto out;
    json_t *alg = json_object_get (header, "alg");
    json_t *kid = json_object_get (header, "kid");
    bool hs256 = json_is_string (alg) && strcmp (json_string_value (alg), "HS256") == 0;
    bool eddsa = json_is_string (alg) && strcmp (json_string_value (alg), "EdDSA") == 0;
    const uint8_t *pub = NULL;
    if (hs256 && !key)
        goto out;
    if (eddsa) {
        if (!json_is_string (kid) || !sb_jwks_kid_valid (json_string_value (kid)))
            goto out;
        pub = sb_jwks_find (jwks, json_string_value (kid));
        if (!pub) {
            rc = SB_TOKEN_BAD_SIG;      //  not signed by a key we hold
            goto out;
        }
    }
    if (!hs256 && !eddsa)
        goto out;
    json_t *typ = json_object_get (header, "typ");
    if (typ && (!json_is_string (typ) || strcmp (json_string_value (typ), "JWT") != 0))
        goto out;
    if (json_object_get (header, "crit"))
        goto out;               //  no extensions are understood

    //  Signature (a MAC compared in constant time, or Ed25519), before
    //  the claims are looked at.
    uint8_t sig [SB_ED25519_SIG_LEN + 1];
    size_t sig_len = 0;
    const char *sig_text = dot2 + 1;
    size_t signed_len = (size_t) (dot2 - token);
    if (sb_base64url_decode_strict (sig_text, len - (size_t) (sig_text - token),
                                    sig, sizeof sig, &sig_len) != 0
    ||  sig_len != (hs256? SB_HMAC_SHA256_LEN: SB_ED25519_SIG_LEN))
        goto out;
    if (hs256) {
        uint8_t mac [SB_HMAC_SHA256_LEN];
        sb_hmac_sha256 (key, key_len, (const uint8_t *) token, signed_len, mac);
        if (!sb_crypto_equal (mac, sig, SB_HMAC_SHA256_LEN)) {
            rc = SB_TOKEN_BAD_SIG;
            goto out;
        }
    }
    else
    if (!sb_ed25519_verify (pub, (const uint8_t *) token, signed_len, sig)) {
        rc = SB_TOKEN_BAD_SIG;
        goto out;
    }

    //  Claims.
    body = s_decode_json_part (dot1 + 1, (size_t) (dot2 - dot1 - 1));
    if (!body)
        goto out;
    sb_token_claims_t c;
    memset (&c, 0, sizeof c);
    json_t *iss = json_object_get (body, "iss");
    if (!json_is_string (iss)
    ||  (strcmp (json_string_value (iss), SB_TOKEN_ISSUER) != 0
         && !(issuer && strcmp (json_string_value (iss), issuer) == 0))
    ||  s_copy (c.issuer, sizeof c.issuer, json_string_value (iss)))
        goto out;
    if (s_claim_str (body, "ten", c.tenant, sizeof c.tenant, true)
    ||  !s_tenant_valid (c.tenant)
    ||  s_claim_str (body, "sub", c.subject, sizeof c.subject, true)
    ||  !c.subject [0]
    ||  s_claim_str (body, json_object_get (body, "client_id")? "client_id": "cid",
                     c.client_id, sizeof c.client_id, false)
    ||  s_claim_str (body, "jti", c.jwt_id, sizeof c.jwt_id, false)
    ||  s_claim_str (body, "scope", c.scope, sizeof c.scope, false))
        goto out;
    json_t *iat = json_object_get (body, "iat");
    json_t *exp = json_object_get (body, "exp");
    json_t *nbf = json_object_get (body, "nbf");
    if (!json_is_integer (exp) || (iat && !json_is_integer (iat))
    ||  (nbf && !json_is_integer (nbf)))
        goto out;
    c.expires_at = json_integer_value (exp);
    c.issued_at = iat? json_integer_value (iat): 0;
    json_t *aud = json_object_get (body, "aud");
    if (json_is_string (aud) && s_copy (c.audience, sizeof c.audience, json_string_value (aud)))
        goto out;
    if (c.expires_at < now_s - SB_TOKEN_CLOCK_SKEW_S) {     //  now_s is sane; exp is not
        rc = SB_TOKEN_EXPIRED;
        goto out;
    }
    //  Not valid yet: nbf (RFC 7519 §4.1.5) or an iat after now, beyond the
    //  skew, is a token from a wrong clock or minted to be used later.
    if ((nbf && json_integer_value (nbf) > now_s + SB_TOKEN_CLOCK_SKEW_S)
    ||  c.issued_at > now_s + SB_TOKEN_CLOCK_SKEW_S) {
        rc = SB_TOKEN_NOT_YET_VALID;
        goto out;
    }
    if (audience && !(aud && s_audience_matches (aud, audience))) {
        //  The claims are the signer's: the caller may say whose token
        //  came to the wrong resource (the gateway audits it).
        *claims = c;
        rc = SB_TOKEN_AUDIENCE;
        goto out;
    }
    *claims = c;
    rc = SB_TOKEN_OK;
out:
    json_decref (header);
    json_decref (body);
    return rc;
}

//  --------------------------------------------------------------------------
//  The verified-token cache

typedef struct {
    char *token;                //  the token's text, NULL when the slot is empty
    size_t len;
    sb_token_claims_t claims;   //  what sb_token_verify gave for it
} s_slot_t;

struct _sb_token_cache_t {
    uint8_t key [SB_MAX_TOKEN_PART];
    size_t key_len;
    char *audience;             //  NULL: no audience check
    char *issuer;               //  accepted as iss beside SB_TOKEN_ISSUER, or NULL
    const sb_jwks_t *jwks;      //  EdDSA public keys (borrowed), or NULL: HS256 only
    uint64_t seed;              //  hash seed, random per cache
    uint64_t hits, misses;
    s_slot_t slots [SB_TOKEN_CACHE_SLOTS];
};

sb_token_cache_t *
sb_token_cache_new (const uint8_t *key, size_t key_len, const char *audience)
{
    if (!key || key_len < SB_MIN_TOKEN_KEY_LEN || key_len > SB_MAX_TOKEN_PART)
        return NULL;
    sb_token_cache_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    memcpy (self->key, key, key_len);
    self->key_len = key_len;
    if ((audience && !(self->audience = strdup (audience)))
    ||  getrandom (&self->seed, sizeof self->seed, 0) != (ssize_t) sizeof self->seed) {
        sb_token_cache_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_slot_clear (s_slot_t *slot)
{
    if (slot->token) {
        explicit_bzero (slot->token, slot->len);
        free (slot->token);
    }
    explicit_bzero (slot, sizeof *slot);
}

void
sb_token_cache_destroy (sb_token_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_token_cache_t *self = *self_p;
    for (size_t i = 0; i < SB_TOKEN_CACHE_SLOTS; i++)
        s_slot_clear (&self->slots [i]);
    free (self->audience);
    free (self->issuer);
    explicit_bzero (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

//  FNV-1a over the token from a random start: picks a slot, nothing more
//  (a collision costs a verification, never a wrong answer).
static size_t
s_slot_of (const sb_token_cache_t *self, const char *token, size_t len)
{
    uint64_t hash = 0xcbf29ce484222325ULL ^ self->seed;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ (unsigned char) token [i]) * 0x100000001b3ULL;
    return (size_t) ((hash ^ (hash >> 32)) % SB_TOKEN_CACHE_SLOTS);
}

sb_token_rc_t
sb_token_cache_verify (sb_token_cache_t *self, const char *token, int64_t now_s,
                       sb_token_claims_t *claims)
{
    if (!self || !token || !claims)
        return SB_TOKEN_MALFORMED;
    size_t len = strnlen (token, SB_MAX_TOKEN_LEN + 1);
    if (len == 0 || len > SB_MAX_TOKEN_LEN)
        return SB_TOKEN_MALFORMED;
    s_slot_t *slot = &self->slots [s_slot_of (self, token, len)];
    if (slot->token && slot->len == len && sb_crypto_equal (slot->token, token, len)) {
        if (slot->claims.expires_at < now_s - SB_TOKEN_CLOCK_SKEW_S) {
            s_slot_clear (slot);
            self->misses++;
            return SB_TOKEN_EXPIRED;
        }
        self->hits++;
        *claims = slot->claims;
        return SB_TOKEN_OK;
    }
    self->misses++;
    sb_token_rc_t rc = s_verify (token, self->key, self->key_len, self->jwks, self->issuer,
                                 self->audience, now_s, claims);
    if (rc == SB_TOKEN_OK) {
        char *copy = malloc (len);
        if (copy) {                 //  no memory: verified all the same, just not kept
            memcpy (copy, token, len);
            s_slot_clear (slot);
            slot->token = copy;
            slot->len = len;
            slot->claims = *claims;
        }
    }
    return rc;
}

int
sb_token_cache_set_issuer (sb_token_cache_t *self, const char *issuer)
{
    char *copy = issuer? strdup (issuer): NULL;
    if (issuer && !copy)
        return -1;
    free (self->issuer);
    self->issuer = copy;
    for (size_t at = 0; at < SB_TOKEN_CACHE_SLOTS; at++)
        s_slot_clear (&self->slots [at]);
    return 0;
}

void
sb_token_cache_set_jwks (sb_token_cache_t *self, const sb_jwks_t *jwks)
{
    //  Tokens verified under the old set are dropped: a key taken out of
    //  the set stops its tokens now, not when their slot is reused.
    for (size_t i = 0; i < SB_TOKEN_CACHE_SLOTS; i++)
        s_slot_clear (&self->slots [i]);
    self->jwks = jwks;
}

void
sb_token_cache_forget (sb_token_cache_t *self, const char *token)
{
    size_t len = self && token? strnlen (token, SB_MAX_TOKEN_LEN + 1): 0;
    if (len == 0 || len > SB_MAX_TOKEN_LEN)
        return;
    s_slot_t *slot = &self->slots [s_slot_of (self, token, len)];
    if (slot->token && slot->len == len && sb_crypto_equal (slot->token, token, len))
        s_slot_clear (slot);
}

void
sb_token_cache_counts (const sb_token_cache_t *self, uint64_t *hits, uint64_t *misses)
{
    *hits = self? self->hits: 0;
    *misses = self? self->misses: 0;
}

const char *
sb_token_strerror (sb_token_rc_t rc)
{
    switch (rc) {
        case SB_TOKEN_OK:        return "ok";
        case SB_TOKEN_MALFORMED: return "malformed token";
        case SB_TOKEN_BAD_SIG:   return "bad signature";
        case SB_TOKEN_EXPIRED:   return "token expired";
        case SB_TOKEN_AUDIENCE:  return "wrong audience";
        case SB_TOKEN_NOT_YET_VALID: return "token not valid yet";
    }
    return "unknown";
}
