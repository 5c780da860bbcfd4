/*  workers/sb_wh_verify.c — the providers' webhook verification rules (see
    sb_wh_verify.h).

    A verifier is the endpoint's settings parsed once: the scheme, its
    options, its secrets as HMAC keys (Standard Webhooks' already decoded
    from base64) and the OpenSSL HMAC it computes with. sb_wh_verify reads
    the scheme's headers, recomputes the MAC under each secret and compares
    it with every signature the request lists (sb_crypto_equal, constant
    time, lengths first), checks the timestamp against `now_s`, and only
    then reads the body for the events' keys and types. Salesforce signs
    nothing: its check is the SOAP envelope's organisation ID, read with
    libxml2 from memory, with no network, no entity substitution and no
    DTD (a document type declaration stops the parser at once: SOAP
    forbids one, and refusing it refuses every entity bomb). */
#include "sb_wh_verify.h"
#include "sb_crypto.h"
#include "sb_json.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SIGNATURES        8       /* signatures one header may list (several v1 during a roll) */
#define S_MAX_MAC               64      /* the longest MAC, bytes (HMAC-SHA512) */
#define S_MAX_SIGNATURE_TEXT    256     /* one signature as text (hex or base64), bytes */
#define S_MAX_HEADER_NAME       64      /* a header name in the options, bytes */
#define S_MAX_PREFIX            32      /* hmac's "prefix" option, bytes */
#define S_MAX_TIMESTAMP_DIGITS  12      /* a unix timestamp's digits (year 33658) */
#define S_MAX_XML_BYTES         (1024 * 1024)   /* the largest SOAP envelope parsed, bytes */
#define S_MIN_STANDARD_KEY      24      /* a whsec_ key's decoded bytes, at least */
#define S_MAX_STANDARD_KEY      64      /* … and at most */
#define S_ORG_ID_COMPARED       15      /* a Salesforce ID's case-sensitive part */

#define S_STANDARD_PREFIX       "whsec_"
#define S_SOAP_NS               "http://schemas.xmlsoap.org/soap/envelope/"
#define S_SF_OUTBOUND_NS        "http://soap.sforce.com/2005/09/outbound"
#define S_XSI_NS                "http://www.w3.org/2001/XMLSchema-instance"

static const char s_ack [] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<soapenv:Envelope xmlns:soapenv=\"" S_SOAP_NS "\">"
    "<soapenv:Body><notificationsResponse xmlns=\"" S_SF_OUTBOUND_NS "\">"
    "<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>";

static const char *s_scheme_names [] = {
    [SB_WH_STRIPE] = "stripe", [SB_WH_GITHUB] = "github", [SB_WH_SHOPIFY] = "shopify",
    [SB_WH_SLACK] = "slack", [SB_WH_STANDARD] = "standard", [SB_WH_SALESFORCE] = "salesforce",
    [SB_WH_HMAC] = "hmac",
};
#define S_SCHEME_COUNT (sizeof s_scheme_names / sizeof s_scheme_names [0])

typedef enum { S_HEX, S_BASE64 } s_encoding_t;

typedef struct {
    uint8_t bytes [SB_WH_MAX_SECRET];   /* the HMAC key */
    size_t len;
} s_key_t;

struct _sb_wh_verifier_t {
    sb_wh_scheme_t scheme;              /* which provider's rules */
    int64_t tolerance_s;                /* stripe, slack, standard: |now - t| at most */
    const char *digest;                 /* the HMAC's digest, an OpenSSL name */
    size_t mac_len;                     /* its length, bytes */
    s_encoding_t encoding;              /* hmac: how the header spells the MAC */
    char header [S_MAX_HEADER_NAME + 1];        /* hmac: the signature header, lowercase */
    char prefix [S_MAX_PREFIX + 1];             /* hmac: stripped from its value, "" for none */
    char id_header [S_MAX_HEADER_NAME + 1];     /* hmac: the event key's header, "" for none */
    char type_header [S_MAX_HEADER_NAME + 1];   /* hmac: the event type's header, "" for none */
    char org_id [S_ORG_ID_COMPARED + 1];        /* salesforce: the organisation's 15 characters */
    EVP_MAC *mac;                       /* OpenSSL's HMAC, fetched once */
    s_key_t keys [SB_WH_MAX_SECRETS];   /* the secrets as keys, wiped at destroy */
    EVP_MAC_CTX *keyed [SB_WH_MAX_SECRETS];     /* an HMAC set up with each key, copied per request */
    size_t key_count;
};

//  One request as sb_wh_verify received it.
typedef struct {
    const sb_wh_header_t *headers;
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    int64_t now_s;
} s_request_t;

//  A piece of the signed message (the MAC runs over their concatenation).
typedef struct {
    const void *data;
    size_t len;
} s_part_t;

//  The signatures a request lists, decoded.
typedef struct {
    uint8_t mac [S_MAX_SIGNATURES][S_MAX_MAC];
    size_t len [S_MAX_SIGNATURES];
    size_t count;
} s_sigs_t;

static EVP_MAC_CTX *s_hmac_new (EVP_MAC *mac, const char *digest, const s_key_t *key);

static bool
s_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

static void
s_say (char *error, size_t error_size, const char *fmt, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (error, error_size, fmt, args);
    va_end (args);
}

static sb_wh_verdict_t
s_verdict (sb_wh_outcome_t *out, sb_wh_verdict_t verdict, const char *fmt, ...)
{
    out->verdict = verdict;
    out->event_count = 0;
    va_list args;
    va_start (args, fmt);
    vsnprintf (out->reason, sizeof out->reason, fmt, args);
    va_end (args);
    return verdict;
}

#define s_refuse(out, ...)  s_verdict ((out), SB_WH_REFUSED, __VA_ARGS__)
#define s_bad(out, ...)     s_verdict ((out), SB_WH_BAD_REQUEST, __VA_ARGS__)

//  ---------------------------------------------------------------------
//  Standard base64 (RFC 4648 §4), which Shopify, Standard Webhooks and
//  whsec_ secrets use; common/sb_crypto has only the url-safe alphabet.

static int
s_b64_value (char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

//  Decodes `len` characters, padded or not; refuses another character, a
//  dangling one, bits left over after the last byte, and output past
//  `size`. Returns 0 and sets *out_len, or -1.
static int
s_b64_decode (const char *in, size_t len, uint8_t *out, size_t size, size_t *out_len)
{
    if (len % 4 == 0 && len >= 1 && in [len - 1] == '=')
        len--;
    if (len % 4 == 3 && len >= 1 && in [len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s_b64_value (in [i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == size)
                return -1;
            out [n++] = (uint8_t) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    *out_len = n;
    return 0;
}

//  ---------------------------------------------------------------------
//  Options and secrets

static bool
s_is_token (const char *name)
{
    //  RFC 9110 token characters, at most S_MAX_HEADER_NAME of them.
    size_t len = strlen (name);
    if (len == 0 || len > S_MAX_HEADER_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) name [i]) && !strchr ("!#$%&'*+-.^_`|~", name [i]))
            return false;
    return true;
}

static bool
s_is_org_id (const char *id)
{
    size_t len = strlen (id);
    if (len != 15 && len != 18)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) id [i]))
            return false;
    return true;
}

static void
s_lowercase (char *dst, const char *src, size_t size)
{
    size_t i = 0;
    for (; src [i] && i + 1 < size; i++)
        dst [i] = (char) tolower ((unsigned char) src [i]);
    dst [i] = '\0';
}

//  Reads one header-name option into `dst` (lowercased). 0 or -1.
static int
s_option_header (const char *key, json_t *value, char *dst, char *error, size_t error_size)
{
    if (!json_is_string (value) || !s_is_token (json_string_value (value))) {
        s_say (error, error_size, "option %s must be a header name (1 to %d token characters)",
               key, S_MAX_HEADER_NAME);
        return -1;
    }
    s_lowercase (dst, json_string_value (value), S_MAX_HEADER_NAME + 1);
    return 0;
}

//  Parses `options_json` for `scheme` into `self` (which holds the
//  defaults already). The one reader behind sb_wh_options_check and
//  sb_wh_verifier_new. 0 or -1 with a sentence.
static int
s_options_read (sb_wh_verifier_t *self, const char *options_json, char *error, size_t error_size)
{
    if (!options_json || !*options_json)
        options_json = "{}";
    json_error_t jerr;
    json_t *options = sb_json_parse (options_json, strlen (options_json), JSON_REJECT_DUPLICATES, &jerr);
    if (!options) {
        s_say (error, error_size, "options are not JSON: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    sb_wh_scheme_t scheme = self->scheme;
    bool timed = scheme == SB_WH_STRIPE || scheme == SB_WH_SLACK || scheme == SB_WH_STANDARD;
    if (!json_is_object (options)) {
        s_say (error, error_size, "options must be a JSON object");
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach (options, key, value) {
        if (timed && s_streq (key, "tolerance_s")) {
            if (!json_is_integer (value) || json_integer_value (value) < 1
            ||  json_integer_value (value) > SB_WH_MAX_TOLERANCE_S) {
                s_say (error, error_size, "option tolerance_s must be an integer from 1 to %d seconds",
                       SB_WH_MAX_TOLERANCE_S);
                goto out;
            }
            self->tolerance_s = json_integer_value (value);
        }
        else
        if (scheme == SB_WH_SALESFORCE && s_streq (key, "organization_id")) {
            if (!json_is_string (value) || !s_is_org_id (json_string_value (value))) {
                s_say (error, error_size,
                       "option organization_id must be a Salesforce organisation ID (15 or 18 letters and digits)");
                goto out;
            }
            memcpy (self->org_id, json_string_value (value), S_ORG_ID_COMPARED);
            self->org_id [S_ORG_ID_COMPARED] = '\0';
        }
        else
        if (scheme == SB_WH_HMAC && s_streq (key, "header")) {
            if (s_option_header (key, value, self->header, error, error_size))
                goto out;
        }
        else
        if (scheme == SB_WH_HMAC && s_streq (key, "id_header")) {
            if (s_option_header (key, value, self->id_header, error, error_size))
                goto out;
        }
        else
        if (scheme == SB_WH_HMAC && s_streq (key, "type_header")) {
            if (s_option_header (key, value, self->type_header, error, error_size))
                goto out;
        }
        else
        if (scheme == SB_WH_HMAC && s_streq (key, "algorithm")) {
            const char *name = json_string_value (value);
            if (name && s_streq (name, "sha256")) {
                self->digest = "SHA256";
                self->mac_len = 32;
            }
            else
            if (name && s_streq (name, "sha1")) {
                self->digest = "SHA1";
                self->mac_len = 20;
            }
            else
            if (name && s_streq (name, "sha512")) {
                self->digest = "SHA512";
                self->mac_len = 64;
            }
            else {
                s_say (error, error_size, "option algorithm must be \"sha256\", \"sha1\" or \"sha512\"");
                goto out;
            }
        }
        else
        if (scheme == SB_WH_HMAC && s_streq (key, "encoding")) {
            const char *name = json_string_value (value);
            if (name && s_streq (name, "hex"))
                self->encoding = S_HEX;
            else
            if (name && s_streq (name, "base64"))
                self->encoding = S_BASE64;
            else {
                s_say (error, error_size, "option encoding must be \"hex\" or \"base64\"");
                goto out;
            }
        }
        else
        if (scheme == SB_WH_HMAC && s_streq (key, "prefix")) {
            const char *prefix = json_string_value (value);
            size_t len = prefix ? strlen (prefix) : 0;
            bool printable = prefix != NULL;
            for (size_t i = 0; printable && i < len; i++)
                printable = prefix [i] > ' ' && prefix [i] < 0x7f;
            if (!printable || len > S_MAX_PREFIX) {
                s_say (error, error_size,
                       "option prefix must be a string of at most %d printable characters without spaces",
                       S_MAX_PREFIX);
                goto out;
            }
            memcpy (self->prefix, prefix, len + 1);
        }
        else {
            s_say (error, error_size, "option %s is unknown for scheme %s", key, sb_wh_scheme_name (scheme));
            goto out;
        }
    }
    if (scheme == SB_WH_SALESFORCE && !*self->org_id) {
        s_say (error, error_size, "scheme salesforce needs option organization_id");
        goto out;
    }
    rc = 0;
out:
    json_decref (options);
    return rc;
}

static void
s_defaults (sb_wh_verifier_t *self, sb_wh_scheme_t scheme)
{
    self->scheme = scheme;
    self->tolerance_s = SB_WH_TOLERANCE_S;
    self->digest = "SHA256";
    self->mac_len = 32;
    self->encoding = S_HEX;
    memcpy (self->header, "x-signature", sizeof "x-signature");
}

//  The HMAC key of a whsec_ secret: the bytes its base64 stands for.
static int
s_standard_key (const char *secret, s_key_t *key, char *error, size_t error_size)
{
    size_t plen = strlen (S_STANDARD_PREFIX);
    if (strncmp (secret, S_STANDARD_PREFIX, plen) != 0) {
        s_say (error, error_size, "a Standard Webhooks secret starts with \"whsec_\"");
        return -1;
    }
    uint8_t bytes [S_MAX_STANDARD_KEY];
    size_t len = 0;
    if (s_b64_decode (secret + plen, strlen (secret + plen), bytes, sizeof bytes, &len)
    ||  len < S_MIN_STANDARD_KEY) {
        sb_crypto_wipe (bytes, sizeof bytes);
        s_say (error, error_size, "a Standard Webhooks secret is \"whsec_\" then the base64 of %d to %d bytes",
               S_MIN_STANDARD_KEY, S_MAX_STANDARD_KEY);
        return -1;
    }
    memcpy (key->bytes, bytes, len);
    key->len = len;
    sb_crypto_wipe (bytes, sizeof bytes);
    return 0;
}

//  Checks `secret` for `scheme` and, when `key` is not NULL, makes it the
//  HMAC key.
static int
s_secret_read (sb_wh_scheme_t scheme, const char *secret, s_key_t *key, char *error, size_t error_size)
{
    size_t len = secret ? strlen (secret) : 0;
    if (len == 0 || len > SB_WH_MAX_SECRET) {
        s_say (error, error_size, "a signing secret has 1 to %d bytes", SB_WH_MAX_SECRET);
        return -1;
    }
    s_key_t scratch;
    if (!key)
        key = &scratch;
    int rc = 0;
    if (scheme == SB_WH_STANDARD)
        rc = s_standard_key (secret, key, error, error_size);
    else {
        memcpy (key->bytes, secret, len);
        key->len = len;
    }
    if (key == &scratch)
        sb_crypto_wipe (&scratch, sizeof scratch);
    return rc;
}

int
sb_wh_scheme_parse (const char *name, sb_wh_scheme_t *scheme)
{
    for (size_t i = 0; name && i < S_SCHEME_COUNT; i++)
        if (s_streq (name, s_scheme_names [i])) {
            *scheme = (sb_wh_scheme_t) i;
            return 0;
        }
    return -1;
}

const char *
sb_wh_scheme_name (sb_wh_scheme_t scheme)
{
    return (size_t) scheme < S_SCHEME_COUNT ? s_scheme_names [scheme] : "unknown";
}

int
sb_wh_options_check (sb_wh_scheme_t scheme, const char *options_json, char *error, size_t error_size)
{
    if ((size_t) scheme >= S_SCHEME_COUNT) {
        s_say (error, error_size, "unknown scheme");
        return -1;
    }
    sb_wh_verifier_t scratch = { 0 };
    s_defaults (&scratch, scheme);
    return s_options_read (&scratch, options_json, error, error_size);
}

int
sb_wh_secret_check (sb_wh_scheme_t scheme, const char *secret, char *error, size_t error_size)
{
    if ((size_t) scheme >= S_SCHEME_COUNT) {
        s_say (error, error_size, "unknown scheme");
        return -1;
    }
    return s_secret_read (scheme, secret, NULL, error, error_size);
}

sb_wh_verifier_t *
sb_wh_verifier_new (sb_wh_scheme_t scheme, const char *options_json, const char *const *secrets,
                    size_t count)
{
    if ((size_t) scheme >= S_SCHEME_COUNT || !secrets || count < 1 || count > SB_WH_MAX_SECRETS)
        return NULL;
    sb_wh_verifier_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    s_defaults (self, scheme);
    if (s_options_read (self, options_json, NULL, 0))
        goto fail;
    self->mac = EVP_MAC_fetch (NULL, "HMAC", NULL);
    if (!self->mac)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        if (s_secret_read (scheme, secrets [i], &self->keys [i], NULL, 0))
            goto fail;
        self->keyed [i] = s_hmac_new (self->mac, self->digest, &self->keys [i]);
        if (!self->keyed [i])
            goto fail;
        self->key_count++;
    }
    if (scheme == SB_WH_SALESFORCE)
        xmlInitParser ();       //  once, before any parse (libxml2 2.9 is not lazy-safe)
    return self;
fail:
    sb_wh_verifier_destroy (&self);
    return NULL;
}

void
sb_wh_verifier_destroy (sb_wh_verifier_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_wh_verifier_t *self = *self_p;
    for (size_t i = 0; i < SB_WH_MAX_SECRETS; i++)
        EVP_MAC_CTX_free (self->keyed [i]);
    EVP_MAC_free (self->mac);
    sb_crypto_wipe (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  MACs

//  An HMAC (`digest`) keyed with `key`, ready for data: made once per
//  key, copied for each message (the key's setup is most of a short
//  message's cost). NULL on failure.
static EVP_MAC_CTX *
s_hmac_new (EVP_MAC *mac, const char *digest, const s_key_t *key)
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new (mac);
    OSSL_PARAM params [] = {
        OSSL_PARAM_construct_utf8_string (OSSL_MAC_PARAM_DIGEST, sb_unconst (digest), 0),
        OSSL_PARAM_construct_end (),
    };
    if (ctx && EVP_MAC_init (ctx, key->bytes, key->len, params) != 1) {
        EVP_MAC_CTX_free (ctx);
        ctx = NULL;
    }
    return ctx;
}

//  The HMAC of the concatenated `parts` with the keyed `hmac` (left as it
//  was) into `out` (S_MAX_MAC bytes). 0 or -1.
static int
s_hmac (const EVP_MAC_CTX *keyed, const s_part_t *parts, size_t count, uint8_t *out, size_t *out_len)
{
    int rc = -1;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup (keyed);
    if (!ctx)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (parts [i].len && EVP_MAC_update (ctx, parts [i].data, parts [i].len) != 1)
            goto out;
    if (EVP_MAC_final (ctx, out, out_len, S_MAX_MAC) != 1)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free (ctx);
    return rc;
}

//  True when some signature in `sigs` is the MAC of `parts` under some
//  key of the verifier: each MAC compared in constant time.
static bool
s_matches (const sb_wh_verifier_t *self, const s_part_t *parts, size_t count, const s_sigs_t *sigs)
{
    bool found = false;
    for (size_t k = 0; k < self->key_count && !found; k++) {
        uint8_t mac [S_MAX_MAC];
        size_t mac_len = 0;
        if (s_hmac (self->keyed [k], parts, count, mac, &mac_len))
            continue;
        for (size_t i = 0; i < sigs->count; i++)
            if (sigs->len [i] == mac_len && sb_crypto_equal (sigs->mac [i], mac, mac_len))
                found = true;
        sb_crypto_wipe (mac, sizeof mac);
    }
    return found;
}

//  Decodes one signature's text (`len` characters) into the next slot of
//  `sigs`. 0, or -1 when it is not that encoding or there are too many.
static int
s_sig_add (s_sigs_t *sigs, const char *text, size_t len, s_encoding_t encoding)
{
    if (sigs->count == S_MAX_SIGNATURES || len == 0 || len > S_MAX_SIGNATURE_TEXT)
        return -1;
    uint8_t *mac = sigs->mac [sigs->count];
    size_t mac_len = 0;
    if (encoding == S_HEX) {
        char hex [S_MAX_SIGNATURE_TEXT + 1];
        memcpy (hex, text, len);
        hex [len] = '\0';
        if (len % 2 || sb_hex_decode (hex, mac, S_MAX_MAC, &mac_len))
            return -1;
    }
    else
    if (s_b64_decode (text, len, mac, S_MAX_MAC, &mac_len))
        return -1;
    sigs->len [sigs->count++] = mac_len;
    return 0;
}

//  ---------------------------------------------------------------------
//  Reading the request

//  The value of header `name` (lowercase), NULL when absent; *twice is set
//  when the request has it more than once (then it is refused: which of
//  the two a provider meant is a guess).
static const char *
s_header (const s_request_t *req, const char *name, bool *twice)
{
    const char *value = NULL;
    for (size_t i = 0; i < req->header_count; i++)
        if (req->headers [i].name && s_streq (req->headers [i].name, name)) {
            if (value && twice)
                *twice = true;
            if (!value)
                value = req->headers [i].value;
        }
    return value;
}

//  A header the scheme needs: NULL after refusing when it is missing,
//  empty or repeated.
static const char *
s_need_header (const s_request_t *req, const char *name, const char *shown, sb_wh_outcome_t *out)
{
    bool twice = false;
    const char *value = s_header (req, name, &twice);
    if (!value || !*value)
        s_refuse (out, "the request has no %s header", shown);
    else
    if (twice)
        s_refuse (out, "the request has more than one %s header", shown);
    else
        return value;
    return NULL;
}

//  Reads the unix timestamp of `len` characters at `text`, then refuses
//  it unless it is within the tolerance of now. 0 or -1 (refused).
static int
s_timestamp (const sb_wh_verifier_t *self, const s_request_t *req, const char *text, size_t len,
             const char *shown, sb_wh_outcome_t *out)
{
    int64_t t = 0;
    if (len == 0 || len > S_MAX_TIMESTAMP_DIGITS) {
        s_refuse (out, "%s is not a unix timestamp", shown);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (text [i] < '0' || text [i] > '9') {
            s_refuse (out, "%s is not a unix timestamp", shown);
            return -1;
        }
        t = t * 10 + (text [i] - '0');
    }
    int64_t age = req->now_s - t;
    if (age > self->tolerance_s) {
        s_refuse (out, "%s is %" PRId64 " s old, past the tolerance of %" PRId64 " s",
                  shown, age, self->tolerance_s);
        return -1;
    }
    if (-age > self->tolerance_s) {
        s_refuse (out, "%s is %" PRId64 " s in the future, past the tolerance of %" PRId64 " s",
                  shown, -age, self->tolerance_s);
        return -1;
    }
    return 0;
}

//  The body as a JSON object, or NULL when it is none.
static json_t *
s_body_json (const s_request_t *req)
{
    json_t *body = sb_json_parse ((const char *) req->body, req->body_len, 0, NULL);
    if (body && !json_is_object (body)) {
        json_decref (body);
        body = NULL;
    }
    return body;
}

//  Stores one event (key `key_len` bytes, type `type_len`) in the outcome;
//  a key that is missing, empty or too long, or a type too long, makes it
//  a bad request. Returns the verdict.
static sb_wh_verdict_t
s_event (sb_wh_outcome_t *out, const char *key, size_t key_len, const char *what,
         const char *type, size_t type_len)
{
    if (!key || key_len == 0)
        return s_bad (out, "the request has no event ID (%s)", what);
    if (key_len > SB_WH_MAX_EVENT_KEY)
        return s_bad (out, "the event ID (%s) is longer than %d bytes", what, SB_WH_MAX_EVENT_KEY);
    if (memchr (key, '\0', key_len))
        return s_bad (out, "the event ID (%s) holds a NUL", what);
    if (type_len > SB_WH_MAX_EVENT_TYPE)
        return s_bad (out, "the event type is longer than %d bytes", SB_WH_MAX_EVENT_TYPE);
    if (type_len && memchr (type, '\0', type_len))
        return s_bad (out, "the event type holds a NUL");
    if (out->event_count == SB_WH_MAX_EVENTS)
        return s_bad (out, "the request carries more than %d events", SB_WH_MAX_EVENTS);
    sb_wh_event_t *event = &out->events [out->event_count++];
    memcpy (event->key, key, key_len);
    event->key [key_len] = '\0';
    if (type_len)
        memcpy (event->type, type, type_len);
    event->type [type_len] = '\0';
    return SB_WH_OK;
}

static size_t
s_len (const char *text)
{
    return text ? strlen (text) : 0;
}

//  The JSON string at `key` of `object` (or NULL), its length in *len.
static const char *
s_json_string (json_t *object, const char *key, size_t *len)
{
    json_t *value = object ? json_object_get (object, key) : NULL;
    *len = json_is_string (value) ? json_string_length (value) : 0;
    return json_is_string (value) ? json_string_value (value) : NULL;
}

static sb_wh_verdict_t
s_ok_json (sb_wh_outcome_t *out)
{
    out->verdict = SB_WH_OK;
    snprintf (out->reply, sizeof out->reply, "{\"received\":true}");
    snprintf (out->reply_type, sizeof out->reply_type, "application/json");
    return SB_WH_OK;
}

//  ---------------------------------------------------------------------
//  The schemes

static sb_wh_verdict_t
s_verify_stripe (const sb_wh_verifier_t *self, const s_request_t *req, sb_wh_outcome_t *out)
{
    const char *header = s_need_header (req, "stripe-signature", "Stripe-Signature", out);
    if (!header)
        return out->verdict;
    //  "t=<unix>,v1=<hex>,v1=<hex>,v0=…": keys other than t and v1 ignored.
    const char *t = NULL;
    size_t t_len = 0;
    s_sigs_t sigs = { .count = 0 };
    size_t v1_count = 0;
    for (const char *item = header; *item; ) {
        const char *end = strchr (item, ',');
        size_t len = end ? (size_t) (end - item) : strlen (item);
        const char *eq = memchr (item, '=', len);
        if (eq) {
            size_t key_len = (size_t) (eq - item);
            const char *value = eq + 1;
            size_t value_len = len - key_len - 1;
            if (key_len == 1 && item [0] == 't') {
                if (t)
                    return s_refuse (out, "Stripe-Signature names two timestamps");
                t = value;
                t_len = value_len;
            }
            else
            if (key_len == 2 && memcmp (item, "v1", 2) == 0) {
                v1_count++;
                if (v1_count > S_MAX_SIGNATURES)
                    return s_refuse (out, "Stripe-Signature lists more than %d v1 signatures",
                                     S_MAX_SIGNATURES);
                //  A v1 that is not hex cannot match: skipped, as Stripe's libraries do.
                (void) !s_sig_add (&sigs, value, value_len, S_HEX);
            }
        }
        item += len + (end ? 1 : 0);
    }
    if (!t)
        return s_refuse (out, "Stripe-Signature has no timestamp (t=)");
    if (v1_count == 0)
        return s_refuse (out, "Stripe-Signature has no v1 signature");
    if (s_timestamp (self, req, t, t_len, "the Stripe-Signature timestamp", out))
        return out->verdict;
    s_part_t parts [] = { { t, t_len }, { ".", 1 }, { req->body, req->body_len } };
    if (!s_matches (self, parts, 3, &sigs))
        return s_refuse (out, "no v1 signature of Stripe-Signature matches (%zu given)", v1_count);
    json_t *body = s_body_json (req);
    size_t key_len, type_len;
    const char *key = s_json_string (body, "id", &key_len);
    const char *type = s_json_string (body, "type", &type_len);
    sb_wh_verdict_t verdict = s_event (out, key, key_len, "the body's \"id\"", type, type_len);
    json_decref (body);
    return verdict == SB_WH_OK ? s_ok_json (out) : verdict;
}

static sb_wh_verdict_t
s_verify_github (const sb_wh_verifier_t *self, const s_request_t *req, sb_wh_outcome_t *out)
{
    const char *header = s_need_header (req, "x-hub-signature-256", "X-Hub-Signature-256", out);
    if (!header)
        return out->verdict;
    s_sigs_t sigs = { .count = 0 };
    if (strncmp (header, "sha256=", 7) != 0 || s_sig_add (&sigs, header + 7, strlen (header + 7), S_HEX))
        return s_refuse (out, "X-Hub-Signature-256 is not \"sha256=\" and hex");
    s_part_t parts [] = { { req->body, req->body_len } };
    if (!s_matches (self, parts, 1, &sigs))
        return s_refuse (out, "X-Hub-Signature-256 does not match");
    bool twice = false;
    const char *key = s_header (req, "x-github-delivery", &twice);
    const char *event = s_header (req, "x-github-event", &twice);
    if (twice)
        return s_bad (out, "the request repeats X-GitHub-Delivery or X-GitHub-Event");
    //  The type: the event, and ".<action>" when the body has one.
    char type [SB_WH_MAX_EVENT_TYPE + 2];
    size_t type_len = 0;
    json_t *body = s_body_json (req);
    size_t action_len;
    const char *action = s_json_string (body, "action", &action_len);
    int n = action && event ? snprintf (type, sizeof type, "%s.%s", event, action)
                            : snprintf (type, sizeof type, "%s", event ? event : "");
    json_decref (body);
    type_len = n < 0 ? 0 : (size_t) n;
    sb_wh_verdict_t verdict = s_event (out, key, s_len (key), "X-GitHub-Delivery", type,
                                       type_len > SB_WH_MAX_EVENT_TYPE ? SB_WH_MAX_EVENT_TYPE + 1 : type_len);
    return verdict == SB_WH_OK ? s_ok_json (out) : verdict;
}

static sb_wh_verdict_t
s_verify_shopify (const sb_wh_verifier_t *self, const s_request_t *req, sb_wh_outcome_t *out)
{
    const char *header = s_need_header (req, "x-shopify-hmac-sha256", "X-Shopify-Hmac-Sha256", out);
    if (!header)
        return out->verdict;
    s_sigs_t sigs = { .count = 0 };
    if (s_sig_add (&sigs, header, strlen (header), S_BASE64))
        return s_refuse (out, "X-Shopify-Hmac-Sha256 is not base64");
    s_part_t parts [] = { { req->body, req->body_len } };
    if (!s_matches (self, parts, 1, &sigs))
        return s_refuse (out, "X-Shopify-Hmac-Sha256 does not match");
    bool twice = false;
    const char *key = s_header (req, "x-shopify-webhook-id", &twice);
    const char *what = "X-Shopify-Webhook-Id";
    if (!key) {
        key = s_header (req, "x-shopify-event-id", &twice);
        what = "X-Shopify-Webhook-Id or X-Shopify-Event-Id";
    }
    const char *topic = s_header (req, "x-shopify-topic", &twice);
    if (twice)
        return s_bad (out, "the request repeats a Shopify header");
    sb_wh_verdict_t verdict = s_event (out, key, s_len (key), what, topic, s_len (topic));
    return verdict == SB_WH_OK ? s_ok_json (out) : verdict;
}

static sb_wh_verdict_t
s_verify_slack (const sb_wh_verifier_t *self, const s_request_t *req, sb_wh_outcome_t *out)
{
    const char *header = s_need_header (req, "x-slack-signature", "X-Slack-Signature", out);
    if (!header)
        return out->verdict;
    const char *ts = s_need_header (req, "x-slack-request-timestamp", "X-Slack-Request-Timestamp", out);
    if (!ts)
        return out->verdict;
    s_sigs_t sigs = { .count = 0 };
    if (strncmp (header, "v0=", 3) != 0 || s_sig_add (&sigs, header + 3, strlen (header + 3), S_HEX))
        return s_refuse (out, "X-Slack-Signature is not \"v0=\" and hex");
    if (s_timestamp (self, req, ts, strlen (ts), "X-Slack-Request-Timestamp", out))
        return out->verdict;
    s_part_t parts [] = { { "v0:", 3 }, { ts, strlen (ts) }, { ":", 1 }, { req->body, req->body_len } };
    if (!s_matches (self, parts, 4, &sigs))
        return s_refuse (out, "X-Slack-Signature does not match");
    json_t *body = s_body_json (req);
    size_t type_len, len;
    const char *type = s_json_string (body, "type", &type_len);
    sb_wh_verdict_t verdict;
    if (type && s_streq (type, "url_verification")) {
        //  Slack checks the endpoint: answer its challenge, store nothing.
        const char *challenge = s_json_string (body, "challenge", &len);
        json_t *reply = challenge ? json_pack ("{s:s%}", "challenge", challenge, len) : NULL;
        size_t reply_len = 0;
        char *text = reply ? sb_json_dump (reply, &reply_len) : NULL;
        if (!challenge)
            verdict = s_bad (out, "the url_verification body has no challenge");
        else
        if (!text || reply_len >= sizeof out->reply)
            verdict = s_bad (out, "the url_verification challenge is longer than the reply allows");
        else {
            memcpy (out->reply, text, reply_len + 1);
            snprintf (out->reply_type, sizeof out->reply_type, "application/json");
            out->event_count = 0;
            verdict = out->verdict = SB_WH_CHALLENGE;
        }
        free (text);
        json_decref (reply);
        json_decref (body);
        return verdict;
    }
    const char *key = s_json_string (body, "event_id", &len);
    json_t *event = body ? json_object_get (body, "event") : NULL;
    size_t event_type_len;
    const char *event_type = s_json_string (json_is_object (event) ? event : NULL, "type", &event_type_len);
    if (event_type) {
        type = event_type;
        type_len = event_type_len;
    }
    verdict = s_event (out, key, len, "the body's \"event_id\"", type, type_len);
    json_decref (body);
    return verdict == SB_WH_OK ? s_ok_json (out) : verdict;
}

static sb_wh_verdict_t
s_verify_standard (const sb_wh_verifier_t *self, const s_request_t *req, sb_wh_outcome_t *out)
{
    //  webhook-* or, from Svix, svix-*: the family the signature names.
    bool svix = !s_header (req, "webhook-signature", NULL) && s_header (req, "svix-signature", NULL);
    const char *id = s_need_header (req, svix ? "svix-id" : "webhook-id", svix ? "svix-id" : "webhook-id", out);
    if (!id)
        return out->verdict;
    const char *ts = s_need_header (req, svix ? "svix-timestamp" : "webhook-timestamp",
                                    svix ? "svix-timestamp" : "webhook-timestamp", out);
    if (!ts)
        return out->verdict;
    const char *header = s_need_header (req, svix ? "svix-signature" : "webhook-signature",
                                        svix ? "svix-signature" : "webhook-signature", out);
    if (!header)
        return out->verdict;
    if (s_timestamp (self, req, ts, strlen (ts), svix ? "svix-timestamp" : "webhook-timestamp", out))
        return out->verdict;
    //  "v1,<base64> v1,<base64> v1a,…": other versions are ignored.
    s_sigs_t sigs = { .count = 0 };
    size_t v1_count = 0;
    for (const char *item = header; *item; ) {
        while (*item == ' ')
            item++;
        size_t len = strcspn (item, " ");
        if (len > 3 && memcmp (item, "v1,", 3) == 0) {
            v1_count++;
            if (v1_count > S_MAX_SIGNATURES)
                return s_refuse (out, "the signature header lists more than %d v1 signatures",
                                 S_MAX_SIGNATURES);
            (void) !s_sig_add (&sigs, item + 3, len - 3, S_BASE64);
        }
        item += len;
    }
    if (v1_count == 0)
        return s_refuse (out, "the signature header has no v1 signature");
    s_part_t parts [] = {
        { id, strlen (id) }, { ".", 1 }, { ts, strlen (ts) }, { ".", 1 }, { req->body, req->body_len },
    };
    if (!s_matches (self, parts, 5, &sigs))
        return s_refuse (out, "no v1 signature matches (%zu given)", v1_count);
    json_t *body = s_body_json (req);
    size_t type_len;
    const char *type = s_json_string (body, "type", &type_len);
    sb_wh_verdict_t verdict = s_event (out, id, strlen (id), svix ? "svix-id" : "webhook-id", type, type_len);
    json_decref (body);
    return verdict == SB_WH_OK ? s_ok_json (out) : verdict;
}

static sb_wh_verdict_t
s_verify_hmac (const sb_wh_verifier_t *self, const s_request_t *req, sb_wh_outcome_t *out)
{
    const char *header = s_need_header (req, self->header, self->header, out);
    if (!header)
        return out->verdict;
    size_t plen = strlen (self->prefix);
    if (strncmp (header, self->prefix, plen) != 0)
        return s_refuse (out, "%s does not start with \"%s\"", self->header, self->prefix);
    s_sigs_t sigs = { .count = 0 };
    if (s_sig_add (&sigs, header + plen, strlen (header + plen), self->encoding))
        return s_refuse (out, "%s is not %s", self->header, self->encoding == S_HEX ? "hex" : "base64");
    s_part_t parts [] = { { req->body, req->body_len } };
    if (!s_matches (self, parts, 1, &sigs))
        return s_refuse (out, "%s does not match", self->header);
    bool twice = false;
    const char *type = *self->type_header ? s_header (req, self->type_header, &twice) : NULL;
    sb_wh_verdict_t verdict;
    if (*self->id_header) {
        const char *key = s_header (req, self->id_header, &twice);
        verdict = twice ? s_bad (out, "the request repeats %s or %s", self->id_header, self->type_header)
                        : s_event (out, key, s_len (key), self->id_header, type, s_len (type));
    }
    else {
        //  No ID from the provider: the body's digest, so a resend is one event.
        uint8_t digest [SB_HMAC_SHA256_LEN];
        char hex [2 * SB_HMAC_SHA256_LEN + 1];
        sb_sha256 (req->body, req->body_len, digest);
        sb_hex_encode (digest, sizeof digest, hex);
        verdict = twice ? s_bad (out, "the request repeats %s", self->type_header)
                        : s_event (out, hex, strlen (hex), "the body's SHA-256", type, s_len (type));
    }
    return verdict == SB_WH_OK ? s_ok_json (out) : verdict;
}

//  ---------------------------------------------------------------------
//  Salesforce outbound messages

//  SOAP has no document type declaration: stop the parser at one, before
//  it reads an entity.
static void
s_xml_no_dtd (void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
    (void) name;
    (void) external_id;
    (void) system_id;
    xmlParserCtxtPtr parser = ctx;
    parser->_private = (void *) 1;
    xmlStopParser (parser);
}

//  True when `node` is an element `name` in namespace `ns`.
static bool
s_xml_is (const xmlNode *node, const char *ns, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE && node->ns && node->ns->href
        && s_streq ((const char *) node->ns->href, ns) && s_streq ((const char *) node->name, name);
}

//  The first element child of `node` named `name` in `ns`, or NULL.
static xmlNode *
s_xml_child (const xmlNode *node, const char *ns, const char *name)
{
    for (xmlNode *child = node ? node->children : NULL; child; child = child->next)
        if (s_xml_is (child, ns, name))
            return child;
    return NULL;
}

//  The text of element `node` (a new string: xmlFree it), NULL when absent.
static char *
s_xml_text (const xmlNode *node)
{
    return node ? (char *) xmlNodeGetContent (node) : NULL;
}

static sb_wh_verdict_t
s_verify_salesforce (const sb_wh_verifier_t *self, const s_request_t *req, sb_wh_outcome_t *out)
{
    if (req->body_len > S_MAX_XML_BYTES)
        return s_refuse (out, "the SOAP message is larger than %d bytes", S_MAX_XML_BYTES);
    if (req->body_len == 0)
        return s_refuse (out, "the SOAP message is empty");
    xmlParserCtxtPtr parser = xmlNewParserCtxt ();
    if (!parser)
        return s_refuse (out, "out of memory parsing the SOAP message");
    parser->sax->internalSubset = s_xml_no_dtd;
    parser->_private = NULL;
    //  No network, no entity substitution (no XML_PARSE_NOENT), no DTD
    //  loaded or checked, no huge-document relaxation; errors stay here.
    xmlDocPtr doc = xmlCtxtReadMemory (parser, (const char *) req->body, (int) req->body_len, NULL, NULL,
                                       XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
                                       | XML_PARSE_NOCDATA);
    bool dtd = parser->_private != NULL;
    bool well_formed = parser->wellFormed != 0;
    xmlFreeParserCtxt (parser);
    sb_wh_verdict_t verdict;
    char *org = NULL;
    if (dtd || (doc && doc->intSubset)) {
        verdict = s_refuse (out, "the SOAP message has a document type declaration");
        goto out;
    }
    if (!doc || !well_formed) {
        verdict = s_refuse (out, "the SOAP message is not well-formed XML");
        goto out;
    }
    xmlNode *envelope = xmlDocGetRootElement (doc);
    xmlNode *body = s_xml_is (envelope, S_SOAP_NS, "Envelope") ? s_xml_child (envelope, S_SOAP_NS, "Body") : NULL;
    xmlNode *notifications = s_xml_child (body, S_SF_OUTBOUND_NS, "notifications");
    if (!notifications) {
        verdict = s_refuse (out, "the message is not a SOAP envelope with outbound notifications");
        goto out;
    }
    org = s_xml_text (s_xml_child (notifications, S_SF_OUTBOUND_NS, "OrganizationId"));
    size_t org_len = s_len (org);
    if (org_len != 15 && org_len != 18) {
        verdict = s_refuse (out, "the message has no organisation ID of 15 or 18 characters");
        goto out;
    }
    if (!sb_crypto_equal (org, self->org_id, S_ORG_ID_COMPARED)) {
        verdict = s_refuse (out, "the message's organisation ID is not the endpoint's");
        goto out;
    }
    verdict = SB_WH_OK;
    for (xmlNode *n = notifications->children; n && verdict == SB_WH_OK; n = n->next) {
        if (!s_xml_is (n, S_SF_OUTBOUND_NS, "Notification"))
            continue;
        if (out->event_count == SB_WH_MAX_EVENTS) {
            verdict = s_bad (out, "the message carries more than %d notifications", SB_WH_MAX_EVENTS);
            break;
        }
        char *id = s_xml_text (s_xml_child (n, S_SF_OUTBOUND_NS, "Id"));
        xmlNode *sobject = s_xml_child (n, S_SF_OUTBOUND_NS, "sObject");
        char *type = sobject ? (char *) xmlGetNsProp (sobject, (const xmlChar *) "type",
                                                     (const xmlChar *) S_XSI_NS) : NULL;
        verdict = s_event (out, id, s_len (id), "a Notification's Id", type, s_len (type));
        xmlFree (id);
        xmlFree (type);
    }
    if (verdict == SB_WH_OK && out->event_count == 0)
        verdict = s_bad (out, "the message carries no Notification");
    if (verdict == SB_WH_OK) {
        out->verdict = SB_WH_OK;
        snprintf (out->reply, sizeof out->reply, "%s", s_ack);
        snprintf (out->reply_type, sizeof out->reply_type, "text/xml; charset=utf-8");
    }
out:
    xmlFree (org);
    xmlFreeDoc (doc);
    return verdict;
}

sb_wh_verdict_t
sb_wh_verify (const sb_wh_verifier_t *self, const sb_wh_header_t *headers, size_t header_count,
              const uint8_t *body, size_t body_len, int64_t now_s, sb_wh_outcome_t *out)
{
    out->verdict = SB_WH_REFUSED;
    out->reason [0] = '\0';
    out->event_count = 0;
    out->reply [0] = '\0';
    out->reply_type [0] = '\0';
    if (!self)
        return s_refuse (out, "the endpoint has no verifier");
    s_request_t req = {
        .headers = headers, .header_count = headers ? header_count : 0,
        .body = body ? body : (const uint8_t *) "", .body_len = body ? body_len : 0, .now_s = now_s,
    };
    switch (self->scheme) {
        case SB_WH_STRIPE:      return s_verify_stripe (self, &req, out);
        case SB_WH_GITHUB:      return s_verify_github (self, &req, out);
        case SB_WH_SHOPIFY:     return s_verify_shopify (self, &req, out);
        case SB_WH_SLACK:       return s_verify_slack (self, &req, out);
        case SB_WH_STANDARD:    return s_verify_standard (self, &req, out);
        case SB_WH_SALESFORCE:  return s_verify_salesforce (self, &req, out);
        case SB_WH_HMAC:        return s_verify_hmac (self, &req, out);
    }
    return s_refuse (out, "the endpoint's scheme is unknown");
}

int
sb_wh_sign_standard (const char *secret, const char *msg_id, int64_t timestamp, const uint8_t *body,
                     size_t body_len, char *signature, size_t size)
{
    if (!secret || !msg_id || !signature || timestamp < 0)
        return -1;
    int rc = -1;
    s_key_t key;
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *keyed = NULL;
    if (s_secret_read (SB_WH_STANDARD, secret, &key, NULL, 0))
        goto out;
    mac = EVP_MAC_fetch (NULL, "HMAC", NULL);
    keyed = mac ? s_hmac_new (mac, "SHA256", &key) : NULL;
    if (!keyed)
        goto out;
    char ts [24];
    int ts_len = snprintf (ts, sizeof ts, "%" PRId64, timestamp);
    s_part_t parts [] = {
        { msg_id, strlen (msg_id) }, { ".", 1 }, { ts, (size_t) ts_len }, { ".", 1 },
        { body ? body : (const uint8_t *) "", body ? body_len : 0 },
    };
    uint8_t digest [S_MAX_MAC];
    size_t digest_len = 0;
    if (s_hmac (keyed, parts, 5, digest, &digest_len))
        goto out;
    //  "v1," + padded base64 of 32 bytes (44 characters) + NUL.
    char b64 [4 * ((S_MAX_MAC + 2) / 3) + 1];
    EVP_EncodeBlock ((unsigned char *) b64, digest, (int) digest_len);
    int n = snprintf (signature, size, "v1,%s", b64);
    if (n < 0 || (size_t) n >= size)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free (keyed);
    EVP_MAC_free (mac);
    sb_crypto_wipe (&key, sizeof key);
    return rc;
}
