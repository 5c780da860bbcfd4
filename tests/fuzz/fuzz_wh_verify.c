/*  tests/fuzz/fuzz_wh_verify.c — fuzz target for the webhook verifiers
    (workers/sb_wh_verify.c): signature headers, timestamps, JSON bodies
    and Salesforce's SOAP envelopes, which all face the network.

    An input is headers, one "name: value" a line, then an empty line, then
    the body. It is verified under every scheme (with fixed secrets, the
    clock at S_NOW). Invariants: the verdict is one of the four; a refusal
    or bad request has a sentence; OK carries 1..SB_WH_MAX_EVENTS events
    with non-empty keys and a 2xx body; a challenge carries a body and no
    event; every string is terminated within its buffer. A violation
    aborts.

    Seeds (tests/fuzz/corpus/wh_verify): a good request of each scheme,
    signed for S_NOW with the secrets below, and near misses (two v1, a
    stale stamp, a DTD). With -DSB_FUZZ=ON (clang) this is a libFuzzer
    target; otherwise tests/fuzz/sb_fuzz_replay.c replays the corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_wh_verify.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_wh_verify: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

#define S_NOW           1796000000
#define S_MAX_HEADERS   32
#define S_SECRET        "fuzz-secret"
#define S_WHSEC         "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static sb_wh_outcome_t s_out;

static void
s_check (sb_wh_verdict_t verdict)
{
    CHECK (verdict == s_out.verdict);
    CHECK (memchr (s_out.reason, '\0', sizeof s_out.reason));
    CHECK (memchr (s_out.reply, '\0', sizeof s_out.reply));
    CHECK (memchr (s_out.reply_type, '\0', sizeof s_out.reply_type));
    switch (verdict) {
        case SB_WH_OK:
            CHECK (s_out.event_count >= 1 && s_out.event_count <= SB_WH_MAX_EVENTS);
            for (size_t i = 0; i < s_out.event_count; i++) {
                CHECK (memchr (s_out.events [i].key, '\0', sizeof s_out.events [i].key));
                CHECK (memchr (s_out.events [i].type, '\0', sizeof s_out.events [i].type));
                CHECK (s_out.events [i].key [0] != '\0');
            }
            CHECK (s_out.reply [0] && s_out.reply_type [0]);
            break;
        case SB_WH_CHALLENGE:
            CHECK (s_out.event_count == 0 && s_out.reply [0] && s_out.reply_type [0]);
            break;
        case SB_WH_REFUSED:
        case SB_WH_BAD_REQUEST:
            CHECK (s_out.reason [0] != '\0');
            break;
        default:
            CHECK (!"a verdict out of range");
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  Headers up to the first empty line; lowercase names are the caller's
    //  promise, so names are kept as they come (upper case just misses).
    char *copy = malloc (size + 1);
    CHECK (copy);
    memcpy (copy, data, size);
    copy [size] = '\0';
    sb_wh_header_t headers [S_MAX_HEADERS];
    size_t count = 0;
    char *at = copy;
    const uint8_t *body = data + size;
    size_t body_len = 0;
    while (at < copy + size) {
        char *end = memchr (at, '\n', (size_t) (copy + size - at));
        if (!end)
            break;
        *end = '\0';
        if (at == end) {
            body = data + (end + 1 - copy);
            body_len = size - (size_t) (end + 1 - copy);
            break;
        }
        char *colon = strstr (at, ": ");
        if (colon && count < S_MAX_HEADERS && strlen (at) == (size_t) (end - at)) {
            *colon = '\0';
            headers [count].name = at;
            headers [count].value = colon + 2;
            count++;
        }
        at = end + 1;
    }
    static const struct { sb_wh_scheme_t scheme; const char *options; const char *secret; } verifiers [] = {
        { SB_WH_STRIPE, NULL, S_SECRET }, { SB_WH_GITHUB, NULL, S_SECRET }, { SB_WH_SHOPIFY, NULL, S_SECRET },
        { SB_WH_SLACK, NULL, S_SECRET }, { SB_WH_STANDARD, NULL, S_WHSEC },
        { SB_WH_SALESFORCE, "{\"organization_id\":\"00D5e000000AbCd\"}", S_SECRET },
        { SB_WH_HMAC, "{\"id_header\":\"x-id\",\"type_header\":\"x-type\"}", S_SECRET },
        { SB_WH_HMAC, "{\"algorithm\":\"sha512\",\"encoding\":\"base64\",\"prefix\":\"sha512=\"}", S_SECRET },
    };
    for (size_t i = 0; i < sizeof verifiers / sizeof verifiers [0]; i++) {
        const char *secrets [] = { "previous", verifiers [i].secret };
        if (verifiers [i].scheme == SB_WH_STANDARD)
            secrets [0] = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
        sb_wh_verifier_t *verifier = sb_wh_verifier_new (verifiers [i].scheme, verifiers [i].options, secrets, 2);
        CHECK (verifier);
        s_check (sb_wh_verify (verifier, headers, count, body, body_len, S_NOW, &s_out));
        sb_wh_verifier_destroy (&verifier);
    }
    free (copy);
    return 0;
}
