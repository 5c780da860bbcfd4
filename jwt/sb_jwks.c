/*  jwt/sb_jwks.c — a JSON Web Key Set of Ed25519 public keys, parsed
    into a small fixed table (at most SB_MAX_JWKS_KEYS: a lookup is a scan). */
#include "sb_jwks.h"
#include "sb_json.h"
#include "sb_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char kid [SB_MAX_KID_LEN + 1];          /* the key's name */
    uint8_t pub [SB_ED25519_KEY_LEN];       /* the Ed25519 public key */
} s_key_t;

struct _sb_jwks_t {
    s_key_t keys [SB_MAX_JWKS_KEYS];        /* the set, in file order */
    size_t count;                           /* keys in use */
};

bool
sb_jwks_kid_valid (const char *kid)
{
    size_t len = kid? strnlen (kid, SB_MAX_KID_LEN + 1): 0;
    if (len == 0 || len > SB_MAX_KID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = kid [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

//  True when `obj`'s member `name` is the string `value`.
static bool
s_member_is (json_t *obj, const char *name, const char *value)
{
    json_t *member = json_object_get (obj, name);
    return json_is_string (member) && strcmp (json_string_value (member), value) == 0;
}

//  Reads JWK `jwk` into `key`; NULL, or why it is refused.
static const char *
s_read_key (json_t *jwk, s_key_t *key)
{
    if (!json_is_object (jwk))
        return "a key is not an object";
    if (json_object_get (jwk, "d"))
        return "a key holds private material (\"d\"): the set must hold public keys only";
    if (!s_member_is (jwk, "kty", "OKP") || !s_member_is (jwk, "crv", "Ed25519"))
        return "a key is not an Ed25519 key (kty OKP, crv Ed25519)";
    json_t *alg = json_object_get (jwk, "alg");
    if (alg && !s_member_is (jwk, "alg", "EdDSA"))
        return "a key's alg is not EdDSA";
    json_t *use = json_object_get (jwk, "use");
    if (use && !s_member_is (jwk, "use", "sig"))
        return "a key's use is not sig";
    json_t *kid = json_object_get (jwk, "kid");
    if (!json_is_string (kid) || !sb_jwks_kid_valid (json_string_value (kid)))
        return "a key has no kid, or one that is not 1-64 characters of [A-Za-z0-9._-]";
    json_t *x = json_object_get (jwk, "x");
    size_t len = 0;
    if (!json_is_string (x)
    ||  sb_base64url_decode_strict (json_string_value (x), json_string_length (x),
                                    key->pub, sizeof key->pub, &len)
    ||  len != SB_ED25519_KEY_LEN)
        return "a key's x is not 32 bytes of canonical base64url";
    snprintf (key->kid, sizeof key->kid, "%s", json_string_value (kid));
    return NULL;
}

sb_jwks_t *
sb_jwks_parse (const char *text, size_t len, char *error, size_t error_size)
{
    const char *why = NULL;
    sb_jwks_t *self = NULL;
    json_t *doc = len <= SB_MAX_JWKS_FILE?
                  sb_json_parse (text, len, JSON_REJECT_DUPLICATES, NULL): NULL;
    json_t *keys = json_object_get (doc, "keys");
    if (!doc) {
        why = "not a JSON document (or larger than SB_MAX_JWKS_FILE)";
        goto out;
    }
    if (!json_is_array (keys) || json_array_size (keys) == 0
    ||  json_array_size (keys) > SB_MAX_JWKS_KEYS) {
        why = "\"keys\" is not an array of 1 to 8 keys";
        goto out;
    }
    self = calloc (1, sizeof *self);
    if (!self) {
        why = "no memory";
        goto out;
    }
    size_t index;
    json_t *jwk;
    json_array_foreach (keys, index, jwk) {
        s_key_t *key = &self->keys [self->count];
        why = s_read_key (jwk, key);
        if (why)
            goto out;
        if (sb_jwks_find (self, key->kid)) {
            why = "two keys have the same kid";
            goto out;
        }
        self->count++;
    }
out:
    json_decref (doc);
    if (why) {
        snprintf (error, error_size, "%s", why);
        sb_jwks_destroy (&self);
    }
    return self;
}

sb_jwks_t *
sb_jwks_load (const char *path)
{
    char *text = malloc (SB_MAX_JWKS_FILE + 1);
    FILE *file = path && *path && text? fopen (path, "r"): NULL;
    if (!file) {
        sb_log_error ("jwks_unreadable", "cannot open token key set file '%s'", path? path: "");
        free (text);
        return NULL;
    }
    size_t len = fread (text, 1, SB_MAX_JWKS_FILE + 1, file);
    fclose (file);
    char error [160];
    sb_jwks_t *self = sb_jwks_parse (text, len, error, sizeof error);
    if (!self)
        sb_log_error ("jwks_invalid", "token key set file '%s': %s", path, error);
    free (text);
    return self;
}

void
sb_jwks_destroy (sb_jwks_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

const uint8_t *
sb_jwks_find (const sb_jwks_t *self, const char *kid)
{
    if (!self || !kid)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->keys [i].kid, kid) == 0)
            return self->keys [i].pub;
    return NULL;
}

size_t
sb_jwks_count (const sb_jwks_t *self)
{
    return self? self->count: 0;
}

//  The JWK object of public key `pub` named `kid`, or NULL.
static json_t *
s_jwk (const uint8_t *pub, const char *kid)
{
    char *x = sb_base64url_encode (pub, SB_ED25519_KEY_LEN);
    json_t *jwk = x? json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519",
                                "alg", "EdDSA", "use", "sig", "kid", kid, "x", x): NULL;
    free (x);
    return jwk;
}

char *
sb_jwks_json (const sb_jwks_t *self)
{
    json_t *keys = json_array ();
    for (size_t i = 0; self && keys && i < self->count; i++)
        if (json_array_append_new (keys, s_jwk (self->keys [i].pub, self->keys [i].kid))) {
            json_decref (keys);
            return NULL;
        }
    json_t *doc = keys? json_pack ("{s:o}", "keys", keys): NULL;
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    return text;
}

char *
sb_jwks_public_jwk (const uint8_t seed [SB_ED25519_KEY_LEN], const char *kid)
{
    uint8_t pub [SB_ED25519_KEY_LEN];
    if (!sb_jwks_kid_valid (kid) || sb_ed25519_public (seed, pub))
        return NULL;
    json_t *jwk = s_jwk (pub, kid);
    char *text = jwk? json_dumps (jwk, JSON_COMPACT): NULL;
    json_decref (jwk);
    return text;
}
