/*  tests/13_revoke_unit.c — unit tests of gateway/sb_revoke, the list of
    revoked access tokens: the three scopes and what each matches, iat
    against the revocation time (a tie is refused, a second later is
    accepted), expiry after SB_REVOKE_KEEP_S, repeats kept once at the
    later time, bad scopes and times refused, and the bound (expired
    entries swept first, else the oldest dropped and the floor raised, the
    floor itself ageing out). Also sb_token_cache_forget. Ends with a
    micro-benchmark of sb_revoke_check, printed, never asserted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_revoke.h"
#include "sb_token.h"

#define NOW 1800000000

static void
s_claims (sb_token_claims_t *c, const char *tenant, const char *subject, const char *client_id,
          int64_t iat)
{
    memset (c, 0, sizeof *c);
    snprintf (c->tenant, sizeof c->tenant, "%s", tenant);
    snprintf (c->subject, sizeof c->subject, "%s", subject);
    snprintf (c->client_id, sizeof c->client_id, "%s", client_id);
    c->issued_at = iat;
    c->expires_at = iat + SB_OAUTH_ACCESS_TTL_S;
}

static void
test_empty_refuses_nothing (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    assert_non_null (list);
    sb_token_claims_t c;
    s_claims (&c, "acme", "user:1", "cli", NOW);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    assert_int_equal (sb_revoke_size (list), 0);
    sb_revoke_destroy (&list);
    assert_null (list);
    sb_revoke_destroy (&list);
}

static void
test_tenant_scope (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    assert_int_equal (sb_revoke_add (list, "globex", NULL, NULL, NOW, NOW), SB_REVOKE_ADDED);
    sb_token_claims_t c;
    s_claims (&c, "globex", "user:3", "cli", NOW - 10);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_TENANT);
    s_claims (&c, "globex", "user:9", "other", NOW - 800);
    assert_int_equal (sb_revoke_check (list, &c, NOW + 5), SB_REVOKE_BY_TENANT);
    //  Another tenant, and a prefix of the name, are not touched
    s_claims (&c, "acme", "user:3", "cli", NOW - 10);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    s_claims (&c, "globe", "user:3", "cli", NOW - 10);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    assert_string_equal (sb_revoke_reason (SB_REVOKE_BY_TENANT),
                         "The access tokens of its organisation were revoked.");
    sb_revoke_destroy (&list);
}

static void
test_subject_scope (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    assert_int_equal (sb_revoke_add (list, "acme", "user:7", "", NOW, NOW), SB_REVOKE_ADDED);
    sb_token_claims_t c;
    s_claims (&c, "acme", "user:7", "cli", NOW - 1);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_SUBJECT);
    //  Another user of the tenant keeps working, as does user:7 of another tenant
    s_claims (&c, "acme", "user:8", "cli", NOW - 1);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    s_claims (&c, "acme", "user:70", "cli", NOW - 1);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    s_claims (&c, "globex", "user:7", "cli", NOW - 1);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    sb_revoke_destroy (&list);
}

static void
test_client_scope (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    const char *url = "https://client.example.com/metadata.json";
    assert_int_equal (sb_revoke_add (list, NULL, NULL, url, NOW, NOW), SB_REVOKE_ADDED);
    sb_token_claims_t c;
    s_claims (&c, "acme", "user:1", url, NOW);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_CLIENT);
    s_claims (&c, "globex", "user:2", url, NOW - 100);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_CLIENT);
    s_claims (&c, "acme", "user:1", "https://client.example.com/other.json", NOW);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    //  A token without a client_id is no client's
    s_claims (&c, "acme", "user:1", "", NOW);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    sb_revoke_destroy (&list);
}

static void
test_iat_against_time (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    assert_int_equal (sb_revoke_add (list, "acme", "user:7", NULL, NOW, NOW), SB_REVOKE_ADDED);
    assert_int_equal (sb_revoke_add (list, "acme", NULL, NULL, NOW, NOW), SB_REVOKE_ADDED);
    sb_token_claims_t c;
    //  Issued in the same second: refused (it may predate the revocation)
    s_claims (&c, "acme", "user:7", "cli", NOW);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_TENANT);
    //  A second later: the user signed in again, accepted
    s_claims (&c, "acme", "user:7", "cli", NOW + 1);
    assert_int_equal (sb_revoke_check (list, &c, NOW + 1), SB_REVOKE_NONE);
    s_claims (&c, "acme", "user:8", "cli", NOW + 1);
    assert_int_equal (sb_revoke_check (list, &c, NOW + 2), SB_REVOKE_NONE);
    //  No iat (0): refused by the revocation that matches it
    s_claims (&c, "acme", "user:9", "cli", 0);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_TENANT);
    sb_revoke_destroy (&list);
}

static void
test_expiry (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    assert_int_equal (sb_revoke_add (list, "acme", NULL, NULL, NOW, NOW), SB_REVOKE_ADDED);
    sb_token_claims_t c;
    s_claims (&c, "acme", "user:1", "cli", NOW - 5);
    assert_int_equal (sb_revoke_check (list, &c, NOW + SB_REVOKE_KEEP_S), SB_REVOKE_BY_TENANT);
    //  One second later the entry goes (the token itself expired long ago)
    assert_int_equal (sb_revoke_check (list, &c, NOW + SB_REVOKE_KEEP_S + 1), SB_REVOKE_NONE);
    assert_int_equal (sb_revoke_size (list), 0);
    //  A revocation already that old changes nothing
    assert_int_equal (sb_revoke_add (list, "acme", NULL, NULL, NOW - SB_REVOKE_KEEP_S - 1, NOW),
                      SB_REVOKE_STALE);
    assert_int_equal (sb_revoke_size (list), 0);
    sb_revoke_destroy (&list);
}

static void
test_repeat_and_invalid (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    assert_int_equal (sb_revoke_add (list, "acme", "user:1", NULL, NOW, NOW), SB_REVOKE_ADDED);
    assert_int_equal (sb_revoke_add (list, "acme", "user:1", NULL, NOW - 50, NOW), SB_REVOKE_KEPT);
    assert_int_equal (sb_revoke_size (list), 1);
    sb_token_claims_t c;
    s_claims (&c, "acme", "user:1", "cli", NOW);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_SUBJECT);   //  still NOW
    assert_int_equal (sb_revoke_add (list, "acme", "user:1", NULL, NOW + 20, NOW + 20), SB_REVOKE_KEPT);
    s_claims (&c, "acme", "user:1", "cli", NOW + 10);
    assert_int_equal (sb_revoke_check (list, &c, NOW + 20), SB_REVOKE_BY_SUBJECT);
    assert_int_equal (sb_revoke_size (list), 1);
    //  Not one of the three scopes
    assert_int_equal (sb_revoke_add (list, NULL, NULL, NULL, NOW, NOW), SB_REVOKE_INVALID);
    assert_int_equal (sb_revoke_add (list, NULL, "user:1", NULL, NOW, NOW), SB_REVOKE_INVALID);
    assert_int_equal (sb_revoke_add (list, "acme", NULL, "cli", NOW, NOW), SB_REVOKE_INVALID);
    assert_int_equal (sb_revoke_add (list, NULL, "user:1", "cli", NOW, NOW), SB_REVOKE_INVALID);
    //  Too long, a time in the future or none
    char tenant [SB_MAX_TENANT_LEN + 2];
    memset (tenant, 't', sizeof tenant - 1);
    tenant [sizeof tenant - 1] = 0;
    assert_int_equal (sb_revoke_add (list, tenant, NULL, NULL, NOW, NOW), SB_REVOKE_INVALID);
    char client [SB_TOKEN_MAX_CLIENT_ID + 2];
    memset (client, 'c', sizeof client - 1);
    client [sizeof client - 1] = 0;
    assert_int_equal (sb_revoke_add (list, NULL, NULL, client, NOW, NOW), SB_REVOKE_INVALID);
    client [SB_TOKEN_MAX_CLIENT_ID] = 0;
    assert_int_equal (sb_revoke_add (list, NULL, NULL, client, NOW, NOW), SB_REVOKE_ADDED);
    assert_int_equal (sb_revoke_add (list, "acme", NULL, NULL, NOW + SB_TOKEN_CLOCK_SKEW_S + 1, NOW),
                      SB_REVOKE_INVALID);
    assert_int_equal (sb_revoke_add (list, "acme", NULL, NULL, 0, NOW), SB_REVOKE_INVALID);
    assert_int_equal (sb_revoke_add (NULL, "acme", NULL, NULL, NOW, NOW), SB_REVOKE_INVALID);
    assert_int_equal (sb_revoke_size (list), 2);
    sb_revoke_destroy (&list);
}

static void
test_bound (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    char tenant [32];
    //  Full of live entries, the first ones older
    for (int i = 0; i < SB_MAX_REVOCATIONS; i++) {
        snprintf (tenant, sizeof tenant, "t%d", i);
        int64_t at = i < 10? NOW - 100 + i: NOW;
        assert_int_equal (sb_revoke_add (list, tenant, NULL, NULL, at, NOW), SB_REVOKE_ADDED);
    }
    assert_int_equal (sb_revoke_size (list), SB_MAX_REVOCATIONS);
    assert_int_equal (sb_revoke_floor (list), 0);
    //  One more: the oldest (t0 at NOW-100) goes and the floor takes its time
    assert_int_equal (sb_revoke_add (list, "extra", NULL, NULL, NOW, NOW), SB_REVOKE_FULL);
    assert_int_equal (sb_revoke_size (list), SB_MAX_REVOCATIONS);
    assert_int_equal (sb_revoke_floor (list), NOW - 100);
    sb_token_claims_t c;
    //  t0's token stays refused, by the floor; so is any token as old
    s_claims (&c, "t0", "user:1", "cli", NOW - 100);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_FLOOR);
    s_claims (&c, "unrelated", "user:1", "cli", NOW - 200);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_FLOOR);
    //  Newer tokens of an unrevoked tenant are not
    s_claims (&c, "unrelated", "user:1", "cli", NOW - 99);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_NONE);
    s_claims (&c, "t5", "user:1", "cli", NOW - 99);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_TENANT);
    s_claims (&c, "extra", "user:1", "cli", NOW);
    assert_int_equal (sb_revoke_check (list, &c, NOW), SB_REVOKE_BY_TENANT);
    //  The floor ages out with the tokens it could match
    s_claims (&c, "unrelated", "user:1", "cli", NOW - 200);
    assert_int_equal (sb_revoke_check (list, &c, NOW - 100 + SB_REVOKE_KEEP_S + 1), SB_REVOKE_NONE);
    assert_int_equal (sb_revoke_floor (list), 0);
    //  Later, when entries expired, a full list sweeps them instead
    int64_t later = NOW + SB_REVOKE_KEEP_S + 1;
    assert_int_equal (sb_revoke_add (list, "fresh", NULL, NULL, later, later), SB_REVOKE_ADDED);
    assert_int_equal (sb_revoke_size (list), 1);
    assert_int_equal (sb_revoke_floor (list), 0);
    sb_revoke_destroy (&list);
}

static void
test_cache_forget (void **state)
{
    (void) state;
    static const uint8_t key [32] = "0123456789abcdef0123456789abcdef";
    sb_token_cache_t *cache = sb_token_cache_new (key, sizeof key, NULL);
    sb_token_claims_t c, out;
    s_claims (&c, "acme", "user:1", "cli", NOW);
    char *token = sb_token_issue (&c, key, sizeof key);
    assert_non_null (token);
    assert_int_equal (sb_token_cache_verify (cache, token, NOW, &out), SB_TOKEN_OK);
    assert_int_equal (sb_token_cache_verify (cache, token, NOW, &out), SB_TOKEN_OK);
    uint64_t hits, misses;
    sb_token_cache_counts (cache, &hits, &misses);
    assert_int_equal (hits, 1);
    assert_int_equal (misses, 1);
    sb_token_cache_forget (cache, token);
    assert_int_equal (sb_token_cache_verify (cache, token, NOW, &out), SB_TOKEN_OK);
    sb_token_cache_counts (cache, &hits, &misses);
    assert_int_equal (hits, 1);
    assert_int_equal (misses, 2);
    sb_token_cache_forget (cache, "not-held");
    sb_token_cache_forget (NULL, token);
    sb_token_cache_destroy (&cache);
    free (token);
}

//  Not a test: what a check costs, printed (the CPU is shared; nothing is asserted on time).
static void
test_benchmark (void **state)
{
    (void) state;
    sb_revoke_t *list = sb_revoke_new ();
    char tenant [32], subject [32];
    for (int i = 0; i < SB_MAX_REVOCATIONS / 2; i++) {
        snprintf (tenant, sizeof tenant, "tenant%d", i);
        snprintf (subject, sizeof subject, "user:%d", i);
        assert_true (sb_revoke_add (list, tenant, i % 2? subject: NULL, NULL, NOW, NOW) >= 0);
    }
    sb_token_claims_t c;
    s_claims (&c, "tenant-not-revoked", "user:42", "https://chatgpt.com/connector/oauth/abc", NOW + 5);
    const int rounds = 1000000;
    struct timespec t0, t1;
    int refused = 0;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < rounds; i++)
        refused += sb_revoke_check (list, &c, NOW + 10) != SB_REVOKE_NONE;
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double ns = ((double) (t1.tv_sec - t0.tv_sec) * 1e9 + (double) (t1.tv_nsec - t0.tv_nsec)) / rounds;
    assert_int_equal (refused, 0);
    sb_revoke_t *empty = sb_revoke_new ();
    clock_gettime (CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < rounds; i++)
        refused += sb_revoke_check (empty, &c, NOW + 10) != SB_REVOKE_NONE;
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double ns_empty = ((double) (t1.tv_sec - t0.tv_sec) * 1e9 + (double) (t1.tv_nsec - t0.tv_nsec))
                    / rounds;
    assert_int_equal (refused, 0);
    printf ("sb_revoke_check: %.1f ns per token with %d entries held, %.1f ns with none\n",
            ns, SB_MAX_REVOCATIONS / 2, ns_empty);
    sb_revoke_destroy (&empty);
    sb_revoke_destroy (&list);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_empty_refuses_nothing),
        cmocka_unit_test (test_tenant_scope),
        cmocka_unit_test (test_subject_scope),
        cmocka_unit_test (test_client_scope),
        cmocka_unit_test (test_iat_against_time),
        cmocka_unit_test (test_expiry),
        cmocka_unit_test (test_repeat_and_invalid),
        cmocka_unit_test (test_bound),
        cmocka_unit_test (test_cache_forget),
        cmocka_unit_test (test_benchmark),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
