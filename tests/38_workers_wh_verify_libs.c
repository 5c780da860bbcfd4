/*  tests/38_workers_wh_verify_libs.c FIXTURES OUTBOUND — sb_wh_verify
    against requests the providers' own libraries signed, and the other way
    round.

    FIXTURES is what tests/webhooks/sign-fixtures.mjs wrote (ctest
    38_wh_fixtures): one JSON line per request signed by stripe's
    generateTestHeaderString, @octokit/webhooks-methods, standardwebhooks and
    svix (and node:crypto for shopify, slack and hmac), with good, tampered,
    wrong-secret, stale, future, replayed, rolled and rotated variants and
    the verdict and event each must get. Every line is checked; the test
    fails unless each library's lines are there.

    OUTBOUND is written here for tests/webhooks/verify-outbound.mjs (ctest
    38_wh_outbound_verify): deliveries signed by sb_wh_sign_standard now,
    which standardwebhooks' and svix's Webhook.verify must accept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "sb_crypto.h"
#include "sb_wh_verify.h"

#define S_MAX_BODY      65536   /* a fixture's body, bytes */
#define S_MAX_HEADERS   16      /* a fixture's headers */

static const char *s_fixtures;
static const char *s_outbound;

static const char *
s_verdict_name (sb_wh_verdict_t verdict)
{
    switch (verdict) {
        case SB_WH_OK:          return "ok";
        case SB_WH_CHALLENGE:   return "challenge";
        case SB_WH_REFUSED:     return "refused";
        case SB_WH_BAD_REQUEST: return "bad_request";
    }
    return "?";
}

//  Checks one fixture line; returns 0 when sb_wh_verify agrees.
static int
s_check_line (json_t *line, size_t *libs)
{
    const char *name = json_string_value (json_object_get (line, "name"));
    const char *scheme_name = json_string_value (json_object_get (line, "scheme"));
    const char *want = json_string_value (json_object_get (line, "verdict"));
    assert_non_null (name);
    assert_non_null (want);
    sb_wh_scheme_t scheme;
    assert_int_equal (sb_wh_scheme_parse (scheme_name, &scheme), 0);
    char *options = json_dumps (json_object_get (line, "options"), JSON_COMPACT);
    assert_non_null (options);
    json_t *secrets = json_object_get (line, "secrets");
    const char *secret_list [SB_WH_MAX_SECRETS];
    size_t secret_count = json_array_size (secrets);
    assert_true (secret_count >= 1 && secret_count <= SB_WH_MAX_SECRETS);
    for (size_t i = 0; i < secret_count; i++)
        secret_list [i] = json_string_value (json_array_get (secrets, i));
    sb_wh_verifier_t *verifier = sb_wh_verifier_new (scheme, options, secret_list, secret_count);
    if (!verifier) {
        print_error ("%s: no verifier for options %s\n", name, options);
        free (options);
        return -1;
    }
    free (options);

    json_t *headers = json_object_get (line, "headers");
    sb_wh_header_t list [S_MAX_HEADERS];
    size_t count = json_array_size (headers);
    assert_true (count <= S_MAX_HEADERS);
    for (size_t i = 0; i < count; i++) {
        list [i].name = json_string_value (json_array_get (json_array_get (headers, i), 0));
        list [i].value = json_string_value (json_array_get (json_array_get (headers, i), 1));
    }
    const char *b64 = json_string_value (json_object_get (line, "body"));
    static uint8_t body [S_MAX_BODY];
    int body_len = EVP_DecodeBlock (body, (const unsigned char *) b64, (int) strlen (b64));
    assert_true (body_len >= 0);
    //  EVP_DecodeBlock counts the padding's bytes: take them off.
    size_t b64_len = strlen (b64);
    if (b64_len && b64 [b64_len - 1] == '=')
        body_len--;
    if (b64_len > 1 && b64 [b64_len - 2] == '=')
        body_len--;

    static sb_wh_outcome_t out;
    int64_t now = json_integer_value (json_object_get (line, "now"));
    sb_wh_verdict_t verdict = sb_wh_verify (verifier, list, count, body, (size_t) body_len, now, &out);
    sb_wh_verifier_destroy (&verifier);
    int rc = 0;
    if (strcmp (s_verdict_name (verdict), want) != 0) {
        print_error ("%s: %s, want %s (%s)\n", name, s_verdict_name (verdict), want, out.reason);
        rc = -1;
    }
    else
    if (verdict == SB_WH_OK) {
        const char *key = json_string_value (json_object_get (line, "key"));
        const char *type = json_string_value (json_object_get (line, "type"));
        if (out.event_count != 1 || strcmp (out.events [0].key, key) != 0
        ||  strcmp (out.events [0].type, type) != 0) {
            print_error ("%s: event %zu \"%s\" \"%s\", want \"%s\" \"%s\"\n", name, out.event_count,
                         out.events [0].key, out.events [0].type, key, type);
            rc = -1;
        }
    }
    else
    if (verdict == SB_WH_CHALLENGE && !strstr (out.reply, "\"challenge\":")) {
        print_error ("%s: challenge reply %s\n", name, out.reply);
        rc = -1;
    }
    //  Which library signed it, by the line's name.
    static const char *prefixes [] = { "stripe ", "github ", "standard ", "svix ", "shopify ", "slack ", "hmac " };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes [0]; i++)
        if (strncmp (name, prefixes [i], strlen (prefixes [i])) == 0)
            libs [i]++;
    return rc;
}

static void
test_fixtures (void **state)
{
    (void) state;
    FILE *file = fopen (s_fixtures, "r");
    if (!file)
        fail_msg ("cannot read %s (ctest 38_wh_fixtures writes it)", s_fixtures);
    size_t lines = 0, failed = 0;
    size_t libs [7] = { 0 };
    json_error_t error;
    json_t *line;
    while ((line = json_loadf (file, JSON_DISABLE_EOF_CHECK, &error)) != NULL) {
        lines++;
        if (s_check_line (line, libs))
            failed++;
        json_decref (line);
    }
    fclose (file);
    print_message ("%zu requests, %zu wrong: stripe %zu, github %zu, standardwebhooks %zu, svix %zu,"
                   " shopify %zu, slack %zu, hmac %zu\n", lines, failed, libs [0], libs [1], libs [2],
                   libs [3], libs [4], libs [5], libs [6]);
    assert_int_equal (failed, 0);
    for (size_t i = 0; i < 7; i++)
        assert_true (libs [i] >= 4);
}

//  Deliveries signed here for verify-outbound.mjs: JSON bodies, an empty
//  one, one with every byte value, a long one; one and two secrets.
static void
test_outbound (void **state)
{
    (void) state;
    FILE *file = fopen (s_outbound, "w");
    assert_non_null (file);
    int64_t now = (int64_t) time (NULL);
    static uint8_t body [S_MAX_BODY];
    for (int i = 0; i < 12; i++) {
        uint8_t raw [40];
        assert_int_equal (sb_crypto_random (raw, sizeof raw), 0);
        size_t key_len = 24 + (size_t) (i % 3) * 8;       //  24, 32, 40 bytes
        char secret [128] = "whsec_";
        EVP_EncodeBlock ((unsigned char *) secret + 6, raw, (int) key_len);
        size_t len;
        if (i == 0)
            len = 0;
        else
        if (i == 1) {
            for (len = 0; len < 256; len++)
                body [len] = (uint8_t) len;
        }
        else
        if (i == 2) {
            len = S_MAX_BODY - 1;
            memset (body, 'x', len);
        }
        else
            len = (size_t) snprintf ((char *) body, sizeof body,
                                     "{\"type\":\"contact.created\",\"timestamp\":%lld,\"data\":{\"n\":%d,\"name\":\"Zoë\"}}",
                                     (long long) now, i);
        char id [64];
        snprintf (id, sizeof id, "msg_%d_%lld", i, (long long) now);
        char signature [128];
        assert_int_equal (sb_wh_sign_standard (secret, id, now, body, len, signature, sizeof signature), 0);
        //  sb_wh_verify agrees with its own signer.
        const char *secrets [] = { secret };
        sb_wh_verifier_t *verifier = sb_wh_verifier_new (SB_WH_STANDARD, NULL, secrets, 1);
        assert_non_null (verifier);
        char ts [24];
        snprintf (ts, sizeof ts, "%lld", (long long) now);
        sb_wh_header_t headers [] = {
            { "webhook-id", id }, { "webhook-timestamp", ts }, { "webhook-signature", signature },
        };
        static sb_wh_outcome_t out;
        assert_int_equal (sb_wh_verify (verifier, headers, 3, body, len, now, &out), SB_WH_OK);
        sb_wh_verifier_destroy (&verifier);

        char *b64 = malloc (4 * (len / 3 + 1) + 1);
        assert_non_null (b64);
        EVP_EncodeBlock ((unsigned char *) b64, body, (int) len);
        json_t *line = json_pack ("{s:s, s:s, s:I, s:s, s:s}", "secret", secret, "id", id,
                                  "timestamp", (json_int_t) now, "body", b64, "signature", signature);
        assert_non_null (line);
        assert_int_equal (json_dumpf (line, file, JSON_COMPACT), 0);
        fputc ('\n', file);
        json_decref (line);
        free (b64);
    }
    assert_int_equal (fclose (file), 0);
}

int
main (int argc, char *argv [])
{
    if (argc != 3) {
        fprintf (stderr, "usage: %s FIXTURES OUTBOUND\n", argv [0]);
        return 2;
    }
    s_fixtures = argv [1];
    s_outbound = argv [2];
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_fixtures),
        cmocka_unit_test (test_outbound),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
