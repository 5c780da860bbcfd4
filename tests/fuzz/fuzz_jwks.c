/*  tests/fuzz/fuzz_jwks.c — fuzz target for the key-set reader
    (jwt/sb_jwks.c: sb_jwks_parse), which reads --token-jwks-file: the
    public keys EdDSA access tokens are verified with, and what
    /.well-known/jwks.json publishes.

    Invariants: a refusal always says why; an accepted set holds 1 to
    SB_MAX_JWKS_KEYS keys; the set it publishes (sb_jwks_json) holds no
    private member ("d"), reads back as a set of the same size, and is
    published again byte for byte (written from the parsed keys, stable).
    A violation aborts.

    Seeds (tests/fuzz/corpus/jwks): a set of one and of two keys (rotation),
    and near misses: private material, a repeated or malformed kid, another
    curve or key type, a short key, padding in "x", nine keys, no "keys".
    With -DSB_FUZZ=ON (clang) this is a libFuzzer target; otherwise
    tests/fuzz/sb_fuzz_replay.c replays the corpus on every ctest run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_jwks.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_jwks: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > SB_MAX_JWKS_FILE)
        return 0;               //  the file reader refuses it on size alone
    char error [256] = "";
    sb_jwks_t *set = sb_jwks_parse ((const char *) data, size, error, sizeof error);
    if (!set) {
        CHECK (error [0] != 0);
        return 0;
    }
    size_t count = sb_jwks_count (set);
    CHECK (count >= 1 && count <= SB_MAX_JWKS_KEYS);
    char *published = sb_jwks_json (set);
    CHECK (published);
    CHECK (!strstr (published, "\"d\""));
    sb_jwks_t *again = sb_jwks_parse (published, strlen (published), error, sizeof error);
    CHECK (again);
    CHECK (sb_jwks_count (again) == count);
    char *republished = sb_jwks_json (again);
    CHECK (republished && strcmp (published, republished) == 0);
    free (republished);
    free (published);
    sb_jwks_destroy (&again);
    sb_jwks_destroy (&set);
    CHECK (!set);
    return 0;
}
