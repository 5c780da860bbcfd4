/*  tests/12_wh_verify_unit.c — unit tests of workers/sb_wh_verify (pure, no
    servers): scheme names, the options and secret checks with their
    sentences, sb_wh_sign_standard's known answer (the Standard Webhooks
    example), and every scheme: good, tampered body, wrong secret, stale and
    future timestamps, several v1 during a roll, the previous secret during
    a rotation's overlap, missing, repeated and malformed headers, Slack's
    url_verification, Salesforce's Ack, organisation check, malformed XML,
    a DTD and an entity bomb refused, 100 notifications and 101. The
    signatures here are made with OpenSSL directly, not with the code under
    test; tests/38_workers_wh_verify_libs.c uses the providers' libraries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sb_crypto.h"
#include "sb_wh_verify.h"

#define NOW     1796000000      /* the tests' wall clock */

static sb_wh_outcome_t s_out;   /* large: one, static */

//  HMAC (`md`) of the concatenated parts under `key`, as lowercase hex or
//  base64 into `out`.
static void
s_mac (const EVP_MD *md, const char *key, size_t key_len, bool base64, char *out, int parts, ...)
{
    uint8_t buf [8192];
    size_t len = 0;
    va_list args;
    va_start (args, parts);
    for (int i = 0; i < parts; i++) {
        const char *part = va_arg (args, const char *);
        size_t part_len = va_arg (args, size_t);
        assert_true (len + part_len <= sizeof buf);
        memcpy (buf + len, part, part_len);
        len += part_len;
    }
    va_end (args);
    uint8_t mac [EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    assert_non_null (HMAC (md, key, (int) key_len, buf, len, mac, &mac_len));
    if (base64)
        EVP_EncodeBlock ((unsigned char *) out, mac, (int) mac_len);
    else
        sb_hex_encode (mac, mac_len, out);
}

static sb_wh_verifier_t *
s_verifier (sb_wh_scheme_t scheme, const char *options, const char *secret, const char *previous)
{
    const char *secrets [] = { secret, previous };
    sb_wh_verifier_t *verifier = sb_wh_verifier_new (scheme, options, secrets, previous ? 2 : 1);
    assert_non_null (verifier);
    return verifier;
}

static sb_wh_verdict_t
s_verify (const sb_wh_verifier_t *verifier, const sb_wh_header_t *headers, size_t count,
          const char *body, int64_t now)
{
    return sb_wh_verify (verifier, headers, count, (const uint8_t *) body, strlen (body), now, &s_out);
}

#define assert_refused(call, reason_part) do { \
    assert_int_equal ((call), SB_WH_REFUSED); \
    if (!strstr (s_out.reason, (reason_part))) \
        fail_msg ("reason \"%s\" lacks \"%s\"", s_out.reason, (reason_part)); \
} while (0)

//  ---------------------------------------------------------------------

static void
test_scheme_names (void **state)
{
    (void) state;
    static const char *names [] = { "stripe", "github", "shopify", "slack", "standard", "salesforce", "hmac" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        sb_wh_scheme_t scheme;
        assert_int_equal (sb_wh_scheme_parse (names [i], &scheme), 0);
        assert_string_equal (sb_wh_scheme_name (scheme), names [i]);
    }
    sb_wh_scheme_t scheme = SB_WH_HMAC;
    assert_int_equal (sb_wh_scheme_parse ("Stripe", &scheme), -1);
    assert_int_equal (sb_wh_scheme_parse ("", &scheme), -1);
    assert_int_equal (sb_wh_scheme_parse (NULL, &scheme), -1);
    assert_int_equal (scheme, SB_WH_HMAC);
    assert_string_equal (sb_wh_scheme_name ((sb_wh_scheme_t) 99), "unknown");
}

static void
test_options_check (void **state)
{
    (void) state;
    char error [256];
    //  Accepted.
    assert_int_equal (sb_wh_options_check (SB_WH_STRIPE, NULL, error, sizeof error), 0);
    assert_int_equal (sb_wh_options_check (SB_WH_STRIPE, "{}", error, sizeof error), 0);
    assert_int_equal (sb_wh_options_check (SB_WH_SLACK, "{\"tolerance_s\":86400}", error, sizeof error), 0);
    assert_int_equal (sb_wh_options_check (SB_WH_STANDARD, "{\"tolerance_s\":1}", error, sizeof error), 0);
    assert_int_equal (sb_wh_options_check (SB_WH_SALESFORCE, "{\"organization_id\":\"00D5e000000AbCdEAF\"}",
                                           error, sizeof error), 0);
    assert_int_equal (sb_wh_options_check (SB_WH_HMAC,
        "{\"header\":\"X-Sig\",\"algorithm\":\"sha1\",\"encoding\":\"base64\",\"prefix\":\"sha1=\","
        "\"id_header\":\"x-id\",\"type_header\":\"x-type\"}", error, sizeof error), 0);
    //  Refused, each with its sentence.
    struct { sb_wh_scheme_t scheme; const char *options; const char *sentence; } bad [] = {
        { SB_WH_STRIPE, "{\"tolerance_s\":0}", "option tolerance_s must be an integer from 1 to 86400 seconds" },
        { SB_WH_STRIPE, "{\"tolerance_s\":86401}", "option tolerance_s must be an integer from 1 to 86400 seconds" },
        { SB_WH_SLACK, "{\"tolerance_s\":\"300\"}", "option tolerance_s must be an integer from 1 to 86400 seconds" },
        { SB_WH_GITHUB, "{\"tolerance_s\":300}", "option tolerance_s is unknown for scheme github" },
        { SB_WH_STRIPE, "{\"secret\":\"x\"}", "option secret is unknown for scheme stripe" },
        { SB_WH_HMAC, "{\"algorithm\":\"md5\"}", "option algorithm must be \"sha256\", \"sha1\" or \"sha512\"" },
        { SB_WH_HMAC, "{\"encoding\":\"base32\"}", "option encoding must be \"hex\" or \"base64\"" },
        { SB_WH_HMAC, "{\"header\":\"x sig\"}", "option header must be a header name (1 to 64 token characters)" },
        { SB_WH_HMAC, "{\"id_header\":\"\"}", "option id_header must be a header name (1 to 64 token characters)" },
        { SB_WH_HMAC, "{\"type_header\":7}", "option type_header must be a header name (1 to 64 token characters)" },
        { SB_WH_HMAC, "{\"prefix\":\"a b\"}",
          "option prefix must be a string of at most 32 printable characters without spaces" },
        { SB_WH_SALESFORCE, "{}", "scheme salesforce needs option organization_id" },
        { SB_WH_SALESFORCE, "{\"organization_id\":\"00D5e000000AbC\"}",
          "option organization_id must be a Salesforce organisation ID (15 or 18 letters and digits)" },
        { SB_WH_SALESFORCE, "{\"organization_id\":\"00D5e000000AbC-\"}",
          "option organization_id must be a Salesforce organisation ID (15 or 18 letters and digits)" },
        { SB_WH_STRIPE, "[]", "options must be a JSON object" },
        { SB_WH_STRIPE, "{\"tolerance_s\":1,\"tolerance_s\":2}", "options are not JSON" },
        { SB_WH_STRIPE, "{", "options are not JSON" },
        { (sb_wh_scheme_t) 42, "{}", "unknown scheme" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        error [0] = '\0';
        assert_int_equal (sb_wh_options_check (bad [i].scheme, bad [i].options, error, sizeof error), -1);
        if (strncmp (error, bad [i].sentence, strlen (bad [i].sentence)) != 0)
            fail_msg ("%s: \"%s\", want \"%s\"", bad [i].options, error, bad [i].sentence);
        //  The same options make no verifier.
        const char *secrets [] = { "s" };
        assert_null (sb_wh_verifier_new (bad [i].scheme, bad [i].options, secrets, 1));
    }
}

static void
test_secret_check (void **state)
{
    (void) state;
    char error [256];
    char big [SB_WH_MAX_SECRET + 2];
    memset (big, 'a', sizeof big - 1);
    big [sizeof big - 1] = '\0';
    assert_int_equal (sb_wh_secret_check (SB_WH_GITHUB, big, error, sizeof error), -1);
    assert_string_equal (error, "a signing secret has 1 to 1024 bytes");
    big [SB_WH_MAX_SECRET] = '\0';
    assert_int_equal (sb_wh_secret_check (SB_WH_GITHUB, big, error, sizeof error), 0);
    assert_int_equal (sb_wh_secret_check (SB_WH_STRIPE, "", error, sizeof error), -1);
    assert_string_equal (error, "a signing secret has 1 to 1024 bytes");
    assert_int_equal (sb_wh_secret_check (SB_WH_STRIPE, "whsec_anything", error, sizeof error), 0);
    //  Standard: "whsec_" and the base64 of 24..64 bytes.
    assert_int_equal (sb_wh_secret_check (SB_WH_STANDARD, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", error,
                                          sizeof error), 0);
    assert_int_equal (sb_wh_secret_check (SB_WH_STANDARD, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", error,
                                          sizeof error), -1);
    assert_string_equal (error, "a Standard Webhooks secret starts with \"whsec_\"");
    const char *sentence = "a Standard Webhooks secret is \"whsec_\" then the base64 of 24 to 64 bytes";
    assert_int_equal (sb_wh_secret_check (SB_WH_STANDARD, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", error,
                                          sizeof error), -1);                  //  22 bytes
    assert_string_equal (error, sentence);
    assert_int_equal (sb_wh_secret_check (SB_WH_STANDARD, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La*aSw", error,
                                          sizeof error), -1);                  //  not base64
    assert_string_equal (error, sentence);
    uint8_t raw [65] = { 0 };
    char text [128] = "whsec_";
    EVP_EncodeBlock ((unsigned char *) text + 6, raw, 65);
    assert_int_equal (sb_wh_secret_check (SB_WH_STANDARD, text, error, sizeof error), -1);
    assert_string_equal (error, sentence);
    EVP_EncodeBlock ((unsigned char *) text + 6, raw, 64);
    assert_int_equal (sb_wh_secret_check (SB_WH_STANDARD, text, error, sizeof error), 0);
    //  A verifier refuses what the check refuses.
    const char *secrets [] = { "whsec_short" };
    assert_null (sb_wh_verifier_new (SB_WH_STANDARD, NULL, secrets, 1));
    const char *three [] = { "a", "b", "c" };
    assert_null (sb_wh_verifier_new (SB_WH_GITHUB, NULL, three, 3));
    assert_null (sb_wh_verifier_new (SB_WH_GITHUB, NULL, three, 0));
}

static void
test_sign_standard (void **state)
{
    (void) state;
    //  The example of the Standard Webhooks specification (and Svix's docs).
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const char *body = "{\"test\": 2432232314}";
    char signature [128];
    assert_int_equal (sb_wh_sign_standard (secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                           (const uint8_t *) body, strlen (body), signature,
                                           sizeof signature), 0);
    assert_string_equal (signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    //  Bad secret, no room.
    assert_int_equal (sb_wh_sign_standard ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, NULL, 0, signature,
                                           sizeof signature), -1);
    assert_int_equal (sb_wh_sign_standard (secret, "m", 1, NULL, 0, signature, 47), -1);
    assert_int_equal (sb_wh_sign_standard (secret, "m", 1, NULL, 0, signature, 48), 0);
    assert_int_equal (strlen (signature), 47);
    //  And it verifies, with the example's clock.
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_STANDARD, NULL, secret, NULL);
    assert_int_equal (sb_wh_sign_standard (secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                           (const uint8_t *) body, strlen (body), signature,
                                           sizeof signature), 0);
    sb_wh_header_t headers [] = {
        { "webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek" }, { "webhook-timestamp", "1614265330" },
        { "webhook-signature", signature },
    };
    assert_int_equal (s_verify (verifier, headers, 3, body, 1614265330), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    assert_string_equal (s_out.events [0].type, "");
    sb_wh_verifier_destroy (&verifier);
    assert_null (verifier);
    sb_wh_verifier_destroy (&verifier);
}

//  ---------------------------------------------------------------------

static void
test_stripe (void **state)
{
    (void) state;
    const char *secret = "whsec_new_0123456789";
    const char *old = "whsec_old_0123456789";
    const char *body = "{\"id\":\"evt_123\",\"object\":\"event\",\"type\":\"charge.succeeded\"}";
    char t [16], good [65], from_old [65], header [512];
    snprintf (t, sizeof t, "%d", NOW);
    s_mac (EVP_sha256 (), secret, strlen (secret), false, good, 3, t, strlen (t), ".", (size_t) 1, body, strlen (body));
    s_mac (EVP_sha256 (), old, strlen (old), false, from_old, 3, t, strlen (t), ".", (size_t) 1, body, strlen (body));
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_STRIPE, NULL, secret, NULL);
    sb_wh_header_t headers [2] = { { "stripe-signature", header }, { "content-type", "application/json" } };

    snprintf (header, sizeof header, "t=%s,v1=%s", t, good);
    assert_int_equal (s_verify (verifier, headers, 2, body, NOW), SB_WH_OK);
    assert_int_equal (s_out.event_count, 1);
    assert_string_equal (s_out.events [0].key, "evt_123");
    assert_string_equal (s_out.events [0].type, "charge.succeeded");
    assert_string_equal (s_out.reply_type, "application/json");
    //  Within the tolerance, both ways; past it, both ways.
    assert_int_equal (s_verify (verifier, headers, 2, body, NOW + 300), SB_WH_OK);
    assert_int_equal (s_verify (verifier, headers, 2, body, NOW - 300), SB_WH_OK);
    assert_refused (s_verify (verifier, headers, 2, body, NOW + 301), "301 s old, past the tolerance of 300 s");
    assert_refused (s_verify (verifier, headers, 2, body, NOW - 301), "301 s in the future");
    //  Tampered body.
    assert_refused (s_verify (verifier, headers, 2, "{\"id\":\"evt_124\",\"object\":\"event\",\"type\":\"charge.succeeded\"}",
                              NOW), "no v1 signature of Stripe-Signature matches (1 given)");
    //  A roll: two v1, either order; v0 and unknown keys ignored.
    snprintf (header, sizeof header, "t=%s,v1=%s,v1=%s,v0=abc,x=1", t, from_old, good);
    assert_int_equal (s_verify (verifier, headers, 2, body, NOW), SB_WH_OK);
    //  Wrong secret; then the same with the previous secret in the overlap.
    snprintf (header, sizeof header, "t=%s,v1=%s", t, from_old);
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "matches");
    sb_wh_verifier_t *overlap = s_verifier (SB_WH_STRIPE, "{\"tolerance_s\":60}", secret, old);
    assert_int_equal (s_verify (overlap, headers, 2, body, NOW), SB_WH_OK);
    assert_refused (s_verify (overlap, headers, 2, body, NOW + 61), "past the tolerance of 60 s");
    sb_wh_verifier_destroy (&overlap);
    //  Malformed or missing.
    assert_refused (s_verify (verifier, headers + 1, 1, body, NOW), "no Stripe-Signature header");
    snprintf (header, sizeof header, "garbage");
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "has no timestamp");
    snprintf (header, sizeof header, "t=%s", t);
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "has no v1 signature");
    snprintf (header, sizeof header, "t=12a4,v1=%s", good);
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "is not a unix timestamp");
    snprintf (header, sizeof header, "t=%s,t=%s,v1=%s", t, t, good);
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "two timestamps");
    snprintf (header, sizeof header, "t=%s,v1=zz%s", t, good + 2);
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "matches");
    snprintf (header, sizeof header, "t=%s,v1=%.63s", t, good);
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "matches");
    snprintf (header, sizeof header, "t=%s,v1=1,v1=2,v1=3,v1=4,v1=5,v1=6,v1=7,v1=8,v1=%s", t, good);
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "more than 8 v1 signatures");
    snprintf (header, sizeof header, "t=%s,v1=%s", t, good);
    sb_wh_header_t twice [] = { { "stripe-signature", header }, { "stripe-signature", header } };
    assert_refused (s_verify (verifier, twice, 2, body, NOW), "more than one Stripe-Signature header");
    //  Verified but no event ID: a bad request.
    const char *no_id = "{\"type\":\"charge.succeeded\"}";
    s_mac (EVP_sha256 (), secret, strlen (secret), false, good, 3, t, strlen (t), ".", (size_t) 1, no_id, strlen (no_id));
    snprintf (header, sizeof header, "t=%s,v1=%s", t, good);
    assert_int_equal (s_verify (verifier, headers, 2, no_id, NOW), SB_WH_BAD_REQUEST);
    assert_string_equal (s_out.reason, "the request has no event ID (the body's \"id\")");
    sb_wh_verifier_destroy (&verifier);
}

static void
test_github (void **state)
{
    (void) state;
    const char *secret = "It's a Secret to Everybody";
    //  GitHub's documented example: "Hello, World!" under that secret.
    const char *hello = "Hello, World!";
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_GITHUB, NULL, secret, NULL);
    sb_wh_header_t headers [] = {
        { "x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" },
        { "x-github-event", "push" }, { "x-github-delivery", "d-1" },
    };
    assert_int_equal (s_verify (verifier, headers, 3, hello, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "d-1");
    assert_string_equal (s_out.events [0].type, "push");
    assert_refused (s_verify (verifier, headers, 3, "Hello, World?", NOW), "does not match");
    //  The action joins the type.
    const char *body = "{\"action\":\"opened\",\"number\":1}";
    char hex [65], header [80];
    s_mac (EVP_sha256 (), secret, strlen (secret), false, hex, 1, body, strlen (body));
    snprintf (header, sizeof header, "sha256=%s", hex);
    headers [0].value = header;
    headers [1].value = "issues";
    assert_int_equal (s_verify (verifier, headers, 3, body, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].type, "issues.opened");
    //  Malformed, missing; no delivery ID is a bad request.
    headers [0].value = hex;
    assert_refused (s_verify (verifier, headers, 3, body, NOW), "is not \"sha256=\" and hex");
    headers [0].value = header;
    assert_refused (s_verify (verifier, headers + 1, 2, body, NOW), "no X-Hub-Signature-256 header");
    assert_int_equal (s_verify (verifier, headers, 2, body, NOW), SB_WH_BAD_REQUEST);
    assert_string_equal (s_out.reason, "the request has no event ID (X-GitHub-Delivery)");
    sb_wh_verifier_t *wrong = s_verifier (SB_WH_GITHUB, NULL, "another", NULL);
    assert_refused (s_verify (wrong, headers, 3, body, NOW), "does not match");
    sb_wh_verifier_destroy (&wrong);
    sb_wh_verifier_destroy (&verifier);
}

static void
test_shopify (void **state)
{
    (void) state;
    const char *secret = "shpss_0123";
    const char *body = "{\"id\":1}";
    char b64 [64];
    s_mac (EVP_sha256 (), secret, strlen (secret), true, b64, 1, body, strlen (body));
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_SHOPIFY, NULL, "previous", secret);
    sb_wh_header_t headers [] = {
        { "x-shopify-hmac-sha256", b64 }, { "x-shopify-topic", "orders/create" },
        { "x-shopify-event-id", "ev-9" },
    };
    assert_int_equal (s_verify (verifier, headers, 3, body, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "ev-9");            //  no X-Shopify-Webhook-Id
    assert_string_equal (s_out.events [0].type, "orders/create");
    sb_wh_header_t with_id [] = { headers [0], headers [1], headers [2], { "x-shopify-webhook-id", "wh-1" } };
    assert_int_equal (s_verify (verifier, with_id, 4, body, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "wh-1");
    assert_refused (s_verify (verifier, headers, 3, "{\"id\":2}", NOW), "does not match");
    headers [0].value = "not base64!";
    assert_refused (s_verify (verifier, headers, 3, body, NOW), "is not base64");
    sb_wh_verifier_destroy (&verifier);
}

static void
test_slack (void **state)
{
    (void) state;
    const char *secret = "8f742231b10e8888abcd99yyyzzz85a5";
    const char *body = "{\"type\":\"event_callback\",\"event_id\":\"Ev1\",\"event\":{\"type\":\"message\"}}";
    char ts [16], hex [65], header [80];
    snprintf (ts, sizeof ts, "%d", NOW);
    s_mac (EVP_sha256 (), secret, strlen (secret), false, hex, 4, "v0:", (size_t) 3, ts, strlen (ts), ":",
           (size_t) 1, body, strlen (body));
    snprintf (header, sizeof header, "v0=%s", hex);
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_SLACK, NULL, secret, NULL);
    sb_wh_header_t headers [] = { { "x-slack-signature", header }, { "x-slack-request-timestamp", ts } };
    assert_int_equal (s_verify (verifier, headers, 2, body, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "Ev1");
    assert_string_equal (s_out.events [0].type, "message");
    assert_refused (s_verify (verifier, headers, 2, body, NOW + 301), "X-Slack-Request-Timestamp is 301 s old");
    assert_refused (s_verify (verifier, headers, 2, "{\"type\":\"event_callback\"}", NOW), "does not match");
    assert_refused (s_verify (verifier, headers, 1, body, NOW), "no X-Slack-Request-Timestamp header");
    //  url_verification: the challenge, nothing stored.
    const char *check = "{\"token\":\"x\",\"challenge\":\"3eZbrw1aB\\\"q\",\"type\":\"url_verification\"}";
    s_mac (EVP_sha256 (), secret, strlen (secret), false, hex, 4, "v0:", (size_t) 3, ts, strlen (ts), ":",
           (size_t) 1, check, strlen (check));
    snprintf (header, sizeof header, "v0=%s", hex);
    assert_int_equal (s_verify (verifier, headers, 2, check, NOW), SB_WH_CHALLENGE);
    assert_int_equal (s_out.event_count, 0);
    assert_string_equal (s_out.reply, "{\"challenge\":\"3eZbrw1aB\\\"q\"}");
    assert_string_equal (s_out.reply_type, "application/json");
    //  An unsigned challenge is refused like anything else.
    sb_wh_verifier_t *wrong = s_verifier (SB_WH_SLACK, NULL, "wrong", NULL);
    assert_refused (s_verify (wrong, headers, 2, check, NOW), "does not match");
    sb_wh_verifier_destroy (&wrong);
    sb_wh_verifier_destroy (&verifier);
}

static void
test_standard (void **state)
{
    (void) state;
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const char *previous = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    const char *body = "{\"type\":\"user.created\",\"data\":{}}";
    char ts [16], sig [128], old_sig [128], header [512];
    snprintf (ts, sizeof ts, "%d", NOW);
    assert_int_equal (sb_wh_sign_standard (secret, "msg_1", NOW, (const uint8_t *) body, strlen (body), sig,
                                           sizeof sig), 0);
    assert_int_equal (sb_wh_sign_standard (previous, "msg_1", NOW, (const uint8_t *) body, strlen (body), old_sig,
                                           sizeof old_sig), 0);
    //  Independently: HMAC under the decoded key.
    uint8_t key [64];
    int key_len = EVP_DecodeBlock (key, (const unsigned char *) secret + 6, (int) strlen (secret + 6));
    char full [128];
    {
        char prefix [64];
        snprintf (prefix, sizeof prefix, "msg_1.%s.", ts);
        s_mac (EVP_sha256 (), (const char *) key, (size_t) key_len, true, full, 2, prefix, strlen (prefix), body,
               strlen (body));
    }
    assert_string_equal (sig + 3, full);

    sb_wh_verifier_t *verifier = s_verifier (SB_WH_STANDARD, NULL, secret, NULL);
    sb_wh_header_t headers [] = {
        { "webhook-id", "msg_1" }, { "webhook-timestamp", ts }, { "webhook-signature", header },
    };
    snprintf (header, sizeof header, "%s", sig);
    assert_int_equal (s_verify (verifier, headers, 3, body, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "msg_1");
    assert_string_equal (s_out.events [0].type, "user.created");
    //  Several signatures: other versions ignored, any v1 matching.
    snprintf (header, sizeof header, "v1a,AAAA %s  %s", old_sig, sig);
    assert_int_equal (s_verify (verifier, headers, 3, body, NOW), SB_WH_OK);
    snprintf (header, sizeof header, "%s", old_sig);
    assert_refused (s_verify (verifier, headers, 3, body, NOW), "no v1 signature matches (1 given)");
    sb_wh_verifier_t *overlap = s_verifier (SB_WH_STANDARD, NULL, secret, previous);
    assert_int_equal (s_verify (overlap, headers, 3, body, NOW), SB_WH_OK);
    sb_wh_verifier_destroy (&overlap);
    snprintf (header, sizeof header, "%s", sig);
    assert_refused (s_verify (verifier, headers, 3, body, NOW + 301), "webhook-timestamp is 301 s old");
    assert_refused (s_verify (verifier, headers, 3, body, NOW - 301), "webhook-timestamp is 301 s in the future");
    assert_refused (s_verify (verifier, headers, 3, "{\"type\":\"user.deleted\",\"data\":{}}", NOW), "matches");
    headers [0].value = "msg_2";
    assert_refused (s_verify (verifier, headers, 3, body, NOW), "matches");
    headers [0].value = "msg_1";
    //  Missing and malformed headers.
    assert_refused (s_verify (verifier, headers + 1, 2, body, NOW), "no webhook-id header");
    assert_refused (s_verify (verifier, headers, 2, body, NOW), "no webhook-signature header");
    snprintf (header, sizeof header, "v2,%s", sig + 3);
    assert_refused (s_verify (verifier, headers, 3, body, NOW), "has no v1 signature");
    snprintf (header, sizeof header, "v1,%.20s", sig + 3);
    assert_refused (s_verify (verifier, headers, 3, body, NOW), "matches");
    headers [1].value = "-5";
    assert_refused (s_verify (verifier, headers, 3, body, NOW), "is not a unix timestamp");
    headers [1].value = ts;
    //  Svix's names.
    snprintf (header, sizeof header, "%s", sig);
    sb_wh_header_t svix [] = { { "svix-id", "msg_1" }, { "svix-timestamp", ts }, { "svix-signature", header } };
    assert_int_equal (s_verify (verifier, svix, 3, body, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "msg_1");
    assert_refused (s_verify (verifier, svix + 1, 2, body, NOW), "no svix-id header");
    sb_wh_verifier_destroy (&verifier);
}

static void
test_hmac (void **state)
{
    (void) state;
    const char *secret = "generic-secret";
    const char *body = "a=1&b=2";
    char hex [65];
    s_mac (EVP_sha256 (), secret, strlen (secret), false, hex, 1, body, strlen (body));
    //  Defaults: x-signature, sha256, hex; the key is the body's SHA-256.
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_HMAC, NULL, secret, NULL);
    sb_wh_header_t headers [] = { { "x-signature", hex } };
    assert_int_equal (s_verify (verifier, headers, 1, body, NOW), SB_WH_OK);
    uint8_t digest [32];
    char digest_hex [65];
    sb_sha256 (body, strlen (body), digest);
    sb_hex_encode (digest, sizeof digest, digest_hex);
    assert_string_equal (s_out.events [0].key, digest_hex);
    assert_string_equal (s_out.events [0].type, "");
    assert_refused (s_verify (verifier, headers, 1, "a=1&b=3", NOW), "x-signature does not match");
    assert_refused (s_verify (verifier, NULL, 0, body, NOW), "no x-signature header");
    sb_wh_verifier_destroy (&verifier);
    //  sha512, base64, a prefix, ID and type headers.
    const char *options = "{\"header\":\"X-Hook-Sig\",\"algorithm\":\"sha512\",\"encoding\":\"base64\","
                          "\"prefix\":\"sha512=\",\"id_header\":\"X-Hook-Id\",\"type_header\":\"x-hook-type\"}";
    char b64 [128], header [160];
    s_mac (EVP_sha512 (), secret, strlen (secret), true, b64, 1, body, strlen (body));
    snprintf (header, sizeof header, "sha512=%s", b64);
    verifier = s_verifier (SB_WH_HMAC, options, "old-secret", secret);
    sb_wh_header_t more [] = { { "x-hook-sig", header }, { "x-hook-id", "h-1" }, { "x-hook-type", "paid" } };
    assert_int_equal (s_verify (verifier, more, 3, body, NOW), SB_WH_OK);
    assert_string_equal (s_out.events [0].key, "h-1");
    assert_string_equal (s_out.events [0].type, "paid");
    assert_int_equal (s_verify (verifier, more, 1, body, NOW), SB_WH_BAD_REQUEST);
    assert_string_equal (s_out.reason, "the request has no event ID (x-hook-id)");
    more [0].value = b64;
    assert_refused (s_verify (verifier, more, 3, body, NOW), "does not start with \"sha512=\"");
    //  A sha256 MAC where sha512 is configured: wrong length, refused.
    s_mac (EVP_sha256 (), secret, strlen (secret), true, b64, 1, body, strlen (body));
    snprintf (header, sizeof header, "sha512=%s", b64);
    more [0].value = header;
    assert_refused (s_verify (verifier, more, 3, body, NOW), "does not match");
    sb_wh_verifier_destroy (&verifier);
    //  sha1, hex.
    s_mac (EVP_sha1 (), secret, strlen (secret), false, hex, 1, body, strlen (body));
    verifier = s_verifier (SB_WH_HMAC, "{\"algorithm\":\"sha1\"}", secret, NULL);
    assert_int_equal (s_verify (verifier, headers, 1, body, NOW), SB_WH_OK);
    sb_wh_verifier_destroy (&verifier);
}

//  ---------------------------------------------------------------------
//  Salesforce

#define SF_ORG  "00D5e000000AbCd"

//  An outbound message with `count` notifications from organisation `org`.
static char *
s_soap (const char *org, int count)
{
    size_t size = 2048 + (size_t) count * 512;
    char *xml = malloc (size);
    assert_non_null (xml);
    size_t len = (size_t) snprintf (xml, size,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
        " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
        " <soapenv:Body>\n"
        "  <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n"
        "   <OrganizationId>%s</OrganizationId>\n"
        "   <ActionId>04k5e000000TsKyAAK</ActionId>\n"
        "   <SessionId xsi:nil=\"true\"/>\n"
        "   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/58.0/00D5e000000AbCd</EnterpriseUrl>\n"
        "   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/58.0/00D5e000000AbCd</PartnerUrl>\n", org);
    for (int i = 0; i < count; i++)
        len += (size_t) snprintf (xml + len, size - len,
            "   <Notification>\n"
            "    <Id>04l5e00000%08d</Id>\n"
            "    <sObject xsi:type=\"sf:%s\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n"
            "     <sf:Id>0015e00000%08d</sf:Id>\n"
            "     <sf:Name>Acme &amp; Co</sf:Name>\n"
            "    </sObject>\n"
            "   </Notification>\n", i, i % 2 ? "Contact" : "Account", i);
    snprintf (xml + len, size - len, "  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n");
    return xml;
}

static void
test_salesforce (void **state)
{
    (void) state;
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_SALESFORCE, "{\"organization_id\":\"" SF_ORG "AAB\"}",
                                             "unused", NULL);
    sb_wh_header_t headers [] = { { "content-type", "text/xml; charset=utf-8" }, { "soapaction", "\"\"" } };
    char *xml = s_soap (SF_ORG "EAA", 2);       //  18 characters, the first 15 compared
    assert_int_equal (s_verify (verifier, headers, 2, xml, NOW), SB_WH_OK);
    assert_int_equal (s_out.event_count, 2);
    assert_string_equal (s_out.events [0].key, "04l5e0000000000000");
    assert_string_equal (s_out.events [0].type, "sf:Account");
    assert_string_equal (s_out.events [1].key, "04l5e0000000000001");
    assert_string_equal (s_out.events [1].type, "sf:Contact");
    assert_non_null (strstr (s_out.reply, "<Ack>true</Ack>"));
    assert_non_null (strstr (s_out.reply, "<notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">"));
    assert_string_equal (s_out.reply_type, "text/xml; charset=utf-8");
    free (xml);
    xml = s_soap (SF_ORG, 1);                   //  15 characters
    assert_int_equal (s_verify (verifier, headers, 2, xml, NOW), SB_WH_OK);
    free (xml);
    //  Another organisation; a case difference is another one too.
    xml = s_soap ("00D5e000000AbCe", 1);
    assert_refused (s_verify (verifier, headers, 2, xml, NOW), "organisation ID is not the endpoint's");
    free (xml);
    xml = s_soap ("00D5e000000abcd", 1);
    assert_refused (s_verify (verifier, headers, 2, xml, NOW), "organisation ID is not the endpoint's");
    free (xml);
    xml = s_soap ("00D5e000000AbC", 1);
    assert_refused (s_verify (verifier, headers, 2, xml, NOW), "no organisation ID of 15 or 18 characters");
    free (xml);
    //  100 notifications, and 101.
    xml = s_soap (SF_ORG, 100);
    assert_int_equal (s_verify (verifier, headers, 2, xml, NOW), SB_WH_OK);
    assert_int_equal (s_out.event_count, 100);
    assert_string_equal (s_out.events [99].key, "04l5e0000000000099");
    free (xml);
    xml = s_soap (SF_ORG, 101);
    assert_int_equal (s_verify (verifier, headers, 2, xml, NOW), SB_WH_BAD_REQUEST);
    assert_string_equal (s_out.reason, "the message carries more than 100 notifications");
    free (xml);
    xml = s_soap (SF_ORG, 0);
    assert_int_equal (s_verify (verifier, headers, 2, xml, NOW), SB_WH_BAD_REQUEST);
    free (xml);
    //  Malformed XML, another document, the wrong namespace.
    assert_refused (s_verify (verifier, headers, 2, "<soapenv:Envelope", NOW), "not well-formed XML");
    assert_refused (s_verify (verifier, headers, 2, "", NOW), "empty");
    assert_refused (s_verify (verifier, headers, 2, "{\"id\":1}", NOW), "not well-formed XML");
    assert_refused (s_verify (verifier, headers, 2, "<a><b/></a>", NOW), "not a SOAP envelope");
    assert_refused (s_verify (verifier, headers, 2,
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
        "<notifications xmlns=\"http://example.com/outbound\"><OrganizationId>" SF_ORG "</OrganizationId>"
        "<Notification><Id>1</Id></Notification></notifications></s:Body></s:Envelope>", NOW),
        "not a SOAP envelope");
    //  A DTD: an entity bomb (billion laughs) and an external entity, refused
    //  before any entity is read.
    const char *bomb =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
        " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
        " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
        " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
        " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
        " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
        "]>\n"
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>"
        "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>" SF_ORG "</OrganizationId>"
        "<Notification><Id>&lol9;</Id></Notification></notifications></soapenv:Body></soapenv:Envelope>";
    assert_refused (s_verify (verifier, headers, 2, bomb, NOW), "document type declaration");
    const char *external =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE e [ <!ENTITY org SYSTEM \"file:///etc/hostname\"> ]>\n"
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>"
        "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>&org;</OrganizationId>"
        "<Notification><Id>1</Id></Notification></notifications></soapenv:Body></soapenv:Envelope>";
    assert_refused (s_verify (verifier, headers, 2, external, NOW), "document type declaration");
    const char *system =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE soapenv:Envelope SYSTEM \"http://127.0.0.1:1/soap.dtd\">\n"
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"/>";
    assert_refused (s_verify (verifier, headers, 2, system, NOW), "document type declaration");
    //  The size bound: past 1 MiB, refused unread.
    size_t big_len = 1024 * 1024 + 1;
    char *big = malloc (big_len + 1);
    assert_non_null (big);
    memset (big, ' ', big_len);
    big [big_len] = '\0';
    memcpy (big, "<a>", 3);
    assert_refused (s_verify (verifier, headers, 2, big, NOW), "larger than 1048576 bytes");
    free (big);
    sb_wh_verifier_destroy (&verifier);
}

static void
test_misuse (void **state)
{
    (void) state;
    //  No verifier: refused, not a crash.
    assert_refused (sb_wh_verify (NULL, NULL, 0, NULL, 0, NOW, &s_out), "no verifier");
    //  A body with NUL bytes is just bytes.
    const char *secret = "k";
    uint8_t body [] = { 'a', 0, 'b' };
    uint8_t mac [32];
    char hex [65];
    sb_hmac_sha256 ((const uint8_t *) secret, 1, body, sizeof body, mac);
    sb_hex_encode (mac, sizeof mac, hex);
    sb_wh_verifier_t *verifier = s_verifier (SB_WH_HMAC, NULL, secret, NULL);
    sb_wh_header_t headers [] = { { "x-signature", hex } };
    assert_int_equal (sb_wh_verify (verifier, headers, 1, body, sizeof body, NOW, &s_out), SB_WH_OK);
    assert_int_equal (sb_wh_verify (verifier, headers, 1, body, 2, NOW, &s_out), SB_WH_REFUSED);
    sb_wh_verifier_destroy (&verifier);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_scheme_names),
        cmocka_unit_test (test_options_check),
        cmocka_unit_test (test_secret_check),
        cmocka_unit_test (test_sign_standard),
        cmocka_unit_test (test_stripe),
        cmocka_unit_test (test_github),
        cmocka_unit_test (test_shopify),
        cmocka_unit_test (test_slack),
        cmocka_unit_test (test_standard),
        cmocka_unit_test (test_hmac),
        cmocka_unit_test (test_salesforce),
        cmocka_unit_test (test_misuse),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
