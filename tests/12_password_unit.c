/*  tests/12_password_unit.c — common/sb_password: Argon2id hash and verify
    round trip, a wrong password refused, the encoded string carries the
    parameters of sb_password.h, every salt new, bad lengths and malformed
    or over-costly stored hashes refused with a reason, and needs_rehash. */
#include "sb_password.h"

#include <argon2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

static void
test_round_trip (void **state)
{
    char encoded [SB_PASSWORD_ENCODED_MAX];
    const char *error = NULL;
    assert_int_equal (sb_password_hash ("correct horse battery", encoded, sizeof encoded, &error), 0);
    assert_int_equal (sb_password_verify (encoded, "correct horse battery", &error), SB_PASSWORD_MATCH);
    //  Wrong passwords: another, one byte changed at the start or the end,
    //  a prefix, and the right one with a byte more.
    assert_int_equal (sb_password_verify (encoded, "correct horse battery!", &error), SB_PASSWORD_MISMATCH);
    assert_int_equal (sb_password_verify (encoded, "Correct horse battery", &error), SB_PASSWORD_MISMATCH);
    assert_int_equal (sb_password_verify (encoded, "correct horse batterz", &error), SB_PASSWORD_MISMATCH);
    assert_int_equal (sb_password_verify (encoded, "correct horse", &error), SB_PASSWORD_MISMATCH);
    assert_int_equal (sb_password_verify (encoded, "", &error), SB_PASSWORD_MISMATCH);
}

static void
test_encoded_has_the_parameters (void **state)
{
    char encoded [SB_PASSWORD_ENCODED_MAX], again [SB_PASSWORD_ENCODED_MAX];
    const char *error = NULL;
    assert_int_equal (sb_password_hash ("s3cret-passw0rd", encoded, sizeof encoded, &error), 0);
    char prefix [64];
    snprintf (prefix, sizeof prefix, "$argon2id$v=19$m=%d,t=%d,p=%d$",
              SB_PASSWORD_M_KIB, SB_PASSWORD_T_COST, SB_PASSWORD_PARALLELISM);
    assert_memory_equal (encoded, prefix, strlen (prefix));
    assert_string_equal (prefix, "$argon2id$v=19$m=65536,t=3,p=1$");
    //  Salt (16 bytes: 22 base64 characters) and tag (32: 43), unpadded.
    const char *salt = encoded + strlen (prefix);
    const char *dollar = strchr (salt, '$');
    assert_non_null (dollar);
    assert_int_equal (dollar - salt, 22);
    assert_int_equal (strlen (dollar + 1), 43);
    //  A new salt each time: the same password hashes differently.
    assert_int_equal (sb_password_hash ("s3cret-passw0rd", again, sizeof again, &error), 0);
    assert_string_not_equal (encoded, again);
    assert_int_equal (sb_password_verify (again, "s3cret-passw0rd", &error), SB_PASSWORD_MATCH);
    assert_int_equal (sb_password_needs_rehash (encoded), 0);
}

static void
test_lengths_refused (void **state)
{
    char encoded [SB_PASSWORD_ENCODED_MAX];
    const char *error = NULL;
    assert_int_equal (sb_password_hash ("short", encoded, sizeof encoded, &error), -1);
    assert_non_null (strstr (error, "shorter"));
    char long_password [SB_PASSWORD_MAX_LEN + 2];
    memset (long_password, 'a', sizeof long_password - 1);
    long_password [sizeof long_password - 1] = 0;
    error = NULL;
    assert_int_equal (sb_password_hash (long_password, encoded, sizeof encoded, &error), -1);
    assert_non_null (strstr (error, "longer"));
    error = NULL;
    assert_int_equal (sb_password_hash ("long enough", encoded, 40, &error), -1);
    assert_non_null (error);
    //  The longest accepted one works.
    long_password [SB_PASSWORD_MAX_LEN] = 0;
    assert_int_equal (sb_password_hash (long_password, encoded, sizeof encoded, &error), 0);
    assert_int_equal (sb_password_verify (encoded, long_password, &error), SB_PASSWORD_MATCH);
}

static void
test_malformed_and_costly_refused (void **state)
{
    //  A hash of "password" with small costs (m=8 KiB, t=1, p=1), made by
    //  libargon2 directly: verify accepts other costs within the limits,
    //  and needs_rehash says it is not today's.
    char small [SB_PASSWORD_ENCODED_MAX];
    const char *error = NULL;
    assert_int_equal (argon2id_hash_encoded (1, 8, 1, "password", 8, "somesaltsomesalt", 16, 32,
                                             small, sizeof small), ARGON2_OK);
    assert_int_equal (sb_password_verify (small, "password", &error), SB_PASSWORD_MATCH);
    assert_int_equal (sb_password_verify (small, "passwore", &error), SB_PASSWORD_MISMATCH);
    assert_int_equal (sb_password_needs_rehash (small), 1);
    assert_int_equal (sb_password_needs_rehash ("plain text"), 1);

    const char *bad [] = {
        "",
        "plain text",
        "$argon2i$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",      //  not id
        "$argon2id$v=16$m=65536,t=3,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",     //  old version
        "$argon2id$v=19$m=4194304,t=3,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",   //  4 GiB
        "$argon2id$v=19$m=65536,t=1000,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",  //  1000 passes
        "$argon2id$v=19$m=65536,t=3,p=64$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",    //  64 lanes
        "$argon2id$v=19$m=65536,t=3,p=1$",                                 //  no salt, no tag
        "$argon2id$v=19$m=65536,t=3,p=1$!!!!$????",                        //  not base64
        "$argon2id$v=19$m=9999999999,t=3,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo", // overflow
        NULL
    };
    for (int i = 0; bad [i]; i++) {
        error = NULL;
        if (sb_password_verify (bad [i], "password", &error) != SB_PASSWORD_MALFORMED)
            fail_msg ("accepted as a hash: %s", bad [i]);
        assert_non_null (error);
    }
    error = NULL;
    assert_int_equal (sb_password_verify (NULL, "password", &error), SB_PASSWORD_MALFORMED);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_encoded_has_the_parameters),
        cmocka_unit_test (test_lengths_refused),
        cmocka_unit_test (test_malformed_and_costly_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
