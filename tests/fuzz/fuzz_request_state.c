/*  tests/fuzz/fuzz_request_state.c — fuzz target for the requestState
    decoder (gateway/sb_relay.c: sb_relay_state_decode), which reads the
    params.requestState a client sends back on a MCP 2026-07-28 retry.

    Each input is decoded twice: as sent (signed under the key, so almost
    always refused), and with its payload (the part before the first dot)
    re-signed for the binding, as s_state_mac in sb_relay.c signs — which
    the first input checks against a real sb_relay_state_encode — so that
    the payload parsing behind the signature is reached with any bytes too.
    Invariants: decode returns 0 with a round in 2..SB_MAX_INPUT_ROUNDS, an
    object of objects and no reason, or -1 with a reason and nothing else;
    a re-signed state is never called altered; a state that decodes,
    encoded again from what it gave, decodes to the same, and is refused
    for another binding. A violation aborts.

    Seeds (tests/fuzz/corpus/request_state): states made by
    sb_relay_state_encode with this target's key and binding, and near
    misses (expired, round 1 and 17, answers not objects, no dot, broken
    base64). With -DSB_FUZZ=ON (clang) this is a libFuzzer target;
    otherwise tests/fuzz/sb_fuzz_replay.c replays the corpus on every ctest
    run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_crypto.h"
#include "sb_job.h"
#include "sb_relay.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_request_state: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

#define S_NOW       1750000000                      /* the fuzz clock, seconds */
#define S_DOMAIN    "switchboard requestState 1"    /* sb_relay.c's S_STATE_DOMAIN */
#define S_ALTERED   "The requestState is not valid"  /* how the "altered" reason starts */

//  The key the seeds were made with: 32 bytes 0x01, 0x02, … 0x20.
static const uint8_t s_key [SB_HMAC_SHA256_LEN] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};

//  What the seeds are bound to, and another binding.
static const sb_relay_binding_t s_binding = {
    "acme", "ann", "tools/call", "lookup", "{\"b\":[2],\"a\":1}"
};
static const sb_relay_binding_t s_other = {
    "acme", "bob", "tools/call", "lookup", "{\"b\":[2],\"a\":1}"
};

//  The signature of `payload` (`len` bytes) for `binding`, base64url (new
//  string): the construction of s_state_mac in gateway/sb_relay.c.
static char *
s_mac (const sb_relay_binding_t *binding, const char *payload, size_t len)
{
    json_t *args = json_loads (binding->args, JSON_DECODE_ANY, NULL);
    char *canonical = json_dumps (args, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref (args);
    CHECK (canonical);
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (s_key, sizeof s_key, (const uint8_t *) canonical, strlen (canonical), digest);
    free (canonical);
    char digest_hex [2 * SB_HMAC_SHA256_LEN + 1];
    sb_hex_encode (digest, sizeof digest, digest_hex);
    size_t size = strlen (S_DOMAIN) + strlen (binding->tenant) + strlen (binding->principal)
                + strlen (binding->method) + strlen (binding->name) + len + sizeof digest_hex + 128;
    char *data = malloc (size);
    CHECK (data);
    int head = snprintf (data, size, "%s\n%zu:%s%zu:%s%zu:%s%zu:%s%s\n", S_DOMAIN,
                         strlen (binding->tenant), binding->tenant,
                         strlen (binding->principal), binding->principal,
                         strlen (binding->method), binding->method,
                         strlen (binding->name), binding->name, digest_hex);
    CHECK (head > 0 && (size_t) head + len < size);
    memcpy (data + head, payload, len);
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (s_key, sizeof s_key, (const uint8_t *) data, (size_t) head + len, mac);
    free (data);
    char *text = sb_base64url_encode (mac, sizeof mac);
    CHECK (text);
    return text;
}

//  "<payload>.<signature>" for the first `len` bytes of `payload`.
static char *
s_sign (const char *payload, size_t len)
{
    char *signature = s_mac (&s_binding, payload, len);
    size_t signature_len = strlen (signature);
    char *token = malloc (len + 1 + signature_len + 1);
    CHECK (token);
    memcpy (token, payload, len);
    token [len] = '.';
    memcpy (token + len + 1, signature, signature_len + 1);
    free (signature);
    return token;
}

//  Checks, once, that s_sign signs as the real encoder does.
static void
s_setup (void)
{
    json_t *answers = json_pack ("{s:{s:s}}", "k", "action", "accept");
    CHECK (answers);
    char *state = sb_relay_state_encode (s_key, &s_binding, S_NOW + 60, 2, answers);
    json_decref (answers);
    CHECK (state);
    const char *dot = strchr (state, '.');
    CHECK (dot);
    char *signed_here = s_sign (state, (size_t) (dot - state));
    CHECK (strcmp (signed_here, state) == 0);
    free (signed_here);
    free (state);
}

//  Decodes `token` for the binding; returns the rc after checking the
//  outputs, and for a success, the round trip and another binding.
static int
s_decode (const char *token)
{
    uint32_t round = 99;
    json_t *answers = NULL;
    const char *why = NULL;
    int rc = sb_relay_state_decode (s_key, &s_binding, token, S_NOW, &round, &answers, &why);
    CHECK (rc == 0 || rc == -1);
    if (rc) {
        CHECK (why && *why && !answers && round == 0);
        return rc;
    }
    CHECK (!why && round >= 2 && round <= SB_MAX_INPUT_ROUNDS && json_is_object (answers));
    const char *key;
    json_t *value;
    json_object_foreach (answers, key, value)
        CHECK (json_is_object (value));

    //  Encoded again, with whatever it expires at that is still ahead.
    char *again = sb_relay_state_encode (s_key, &s_binding, S_NOW, round, answers);
    if (again) {                //  NULL only when too long for the limit
        uint32_t round2 = 0;
        json_t *answers2 = NULL;
        CHECK (sb_relay_state_decode (s_key, &s_binding, again, S_NOW, &round2, &answers2, &why) == 0);
        CHECK (round2 == round && json_equal (answers, answers2));
        json_decref (answers2);
        free (again);
    }
    json_decref (answers);

    //  Bound to one principal, it is no good to another.
    CHECK (sb_relay_state_decode (s_key, &s_other, token, S_NOW, &round, &answers, &why) == -1);
    CHECK (why && strncmp (why, S_ALTERED, strlen (S_ALTERED)) == 0);
    return rc;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        s_setup ();
        ready = true;
    }
    if (size > SB_MAX_REQUEST_STATE_LEN + 64)
        return 0;               //  refused on length alone; nothing to learn
    char *text = malloc (size + 1);
    CHECK (text);
    memcpy (text, data, size);
    text [size] = 0;
    s_decode (text);

    //  Its payload re-signed: decoding may fail, but never as altered.
    const char *dot = strchr (text, '.');
    size_t len = dot? (size_t) (dot - text): strlen (text);
    if (len > 0) {
        char *token = s_sign (text, len);
        if (strlen (token) <= SB_MAX_REQUEST_STATE_LEN && s_decode (token) != 0) {
            uint32_t round;
            json_t *answers;
            const char *why;
            CHECK (sb_relay_state_decode (s_key, &s_binding, token, S_NOW, &round, &answers, &why));
            CHECK (strncmp (why, S_ALTERED, strlen (S_ALTERED)) != 0);
        }
        free (token);
    }
    free (text);
    return 0;
}
