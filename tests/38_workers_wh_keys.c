/*  tests/38_workers_wh_keys.c — the webhook role's key ring
    (workers/sb_wh_keys.c) against keys the token role's own code sealed,
    without a database (the rows are libpq results made in memory):

      - a connection_keys row sealed with sb_token_subkey ("connection-keys")
        and sb_token_row_key_seal opens; the ring holds it;
      - a secret sealed with the connections' convention (AES-256-GCM,
        "<tenant>/<owner>/<column>") opens; another tenant, owner or
        column, an altered byte, a key the ring lacks: nothing opens;
      - rows of another master secret are refused and leave the ring as
        it was; a malformed row too; bad master secret lengths.

    The round trip through sb_conn_seal itself (a token role on the real
    PostgreSQL) is in tests/38_workers_webhook_ingest.c. */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sb_attr.h"
#include "sb_crypto.h"
#include "sb_token_int.h"
#include "sb_wh_keys.h"

#define KEY_ID_A    "keyAAAAAAAAAAAAA"
#define KEY_ID_B    "keyBBBBBBBBBBBBB"

static sb_token_role_t s_role;      //  only its secret: sb_token_subkey's input

static const uint8_t s_master [40] = "0123456789abcdef0123456789abcdef-master";
static const uint8_t s_other [40] = "another master secret, 40 bytes long!!!";

//  A connection_keys row as the token role seals it: id, hex box.
typedef struct {
    const char *id;
    char hex [2 * (SB_AEAD_KEY_LEN + SB_AEAD_OVERHEAD) + 1];
    uint8_t key [SB_AEAD_KEY_LEN];
} s_row_t;

static void
s_row_make (const uint8_t *master, size_t master_len, const char *id, s_row_t *row)
{
    memset (&s_role, 0, sizeof s_role);
    memcpy (s_role.secret, master, master_len);
    s_role.secret_len = master_len;
    uint8_t box_key [SB_TOKEN_SUBKEY_LEN];
    assert_int_equal (sb_token_subkey (&s_role, "connection-keys", box_key), 0);
    row->id = id;
    assert_int_equal (sb_crypto_random (row->key, sizeof row->key), 0);
    assert_int_equal (sb_token_row_key_seal (box_key, id, row->key, sizeof row->key, row->hex), 0);
}

//  SB_WH_KEYS_SQL's answer for `rows`.
static PGresult *
s_result (const s_row_t *rows, size_t count)
{
    PGresult *res = PQmakeEmptyPGresult (NULL, PGRES_TUPLES_OK);
    assert_non_null (res);
    PGresAttDesc attrs [2] = {
        { .name = sb_unconst ("id"), .typid = 25, .typlen = -1, .atttypmod = -1 },
        { .name = sb_unconst ("encode"), .typid = 25, .typlen = -1, .atttypmod = -1 },
    };
    assert_int_equal (PQsetResultAttrs (res, 2, attrs), 1);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (PQsetvalue (res, (int) i, 0, sb_unconst (rows [i].id),
                                      (int) strlen (rows [i].id)), 1);
        assert_int_equal (PQsetvalue (res, (int) i, 1, sb_unconst (rows [i].hex),
                                      (int) strlen (rows [i].hex)), 1);
    }
    return res;
}

//  `plain` sealed under `key` as sb_conn_seal seals it.
static uint8_t *
s_seal (const uint8_t key [SB_AEAD_KEY_LEN], const char *ad, const char *plain, size_t *len)
{
    size_t size = strlen (plain) + SB_AEAD_OVERHEAD;
    uint8_t *out = malloc (size);
    assert_non_null (out);
    assert_int_equal (sb_aead_seal (key, ad, strlen (ad), plain, strlen (plain), out, size, len), 0);
    return out;
}

static void
test_open (void **state)
{
    (void) state;
    s_row_t rows [2];
    s_row_make (s_master, sizeof s_master, KEY_ID_A, &rows [0]);
    s_row_make (s_master, sizeof s_master, KEY_ID_B, &rows [1]);
    sb_wh_keys_t *keys = sb_wh_keys_new (s_master, sizeof s_master);
    assert_non_null (keys);
    assert_false (sb_wh_keys_has (keys, KEY_ID_A));

    PGresult *res = s_result (rows, 1);
    assert_int_equal (sb_wh_keys_load (keys, res), 1);
    PQclear (res);
    assert_true (sb_wh_keys_has (keys, KEY_ID_A));
    assert_false (sb_wh_keys_has (keys, KEY_ID_B));

    size_t sealed_len = 0, len = 99;
    uint8_t *sealed = s_seal (rows [0].key, "t-one/webhook:we_abcdefgh/secret", "whsec_c2VjcmV0",
                              &sealed_len);
    char *plain = sb_wh_keys_open (keys, KEY_ID_A, "t-one", "webhook:we_abcdefgh", "secret",
                                   sealed, sealed_len, &len);
    assert_non_null (plain);
    assert_string_equal (plain, "whsec_c2VjcmV0");
    assert_int_equal (len, strlen ("whsec_c2VjcmV0"));
    sb_crypto_wipe (plain, len);
    free (plain);

    //  Another associated data, another key, an altered byte: nothing.
    assert_null (sb_wh_keys_open (keys, KEY_ID_A, "t-two", "webhook:we_abcdefgh", "secret",
                                  sealed, sealed_len, &len));
    assert_null (sb_wh_keys_open (keys, KEY_ID_A, "t-one", "webhook:we_other00", "secret",
                                  sealed, sealed_len, &len));
    assert_null (sb_wh_keys_open (keys, KEY_ID_A, "t-one", "webhook:we_abcdefgh", "previous",
                                  sealed, sealed_len, &len));
    assert_null (sb_wh_keys_open (keys, KEY_ID_B, "t-one", "webhook:we_abcdefgh", "secret",
                                  sealed, sealed_len, &len));
    assert_null (sb_wh_keys_open (keys, KEY_ID_A, "t-one", "webhook:we_abcdefgh", "secret",
                                  sealed, SB_AEAD_OVERHEAD - 1, &len));
    sealed [sealed_len - 1] ^= 1;
    assert_null (sb_wh_keys_open (keys, KEY_ID_A, "t-one", "webhook:we_abcdefgh", "secret",
                                  sealed, sealed_len, &len));
    free (sealed);

    //  Both keys; a subscription's secret under the second.
    res = s_result (rows, 2);
    assert_int_equal (sb_wh_keys_load (keys, res), 2);
    PQclear (res);
    sealed = s_seal (rows [1].key, "t-one/subscription:ws_12345678/secret", "whsec_AAAA", &sealed_len);
    plain = sb_wh_keys_open (keys, KEY_ID_B, "t-one", "subscription:ws_12345678", "secret",
                             sealed, sealed_len, &len);
    assert_non_null (plain);
    assert_string_equal (plain, "whsec_AAAA");
    free (plain);
    free (sealed);

    //  A row of another master secret: refused, the ring as it was.
    s_row_t foreign;
    s_row_make (s_other, sizeof s_other, "keyCCCCCCCCCCCCC", &foreign);
    s_row_t mixed [2] = { rows [0], foreign };
    res = s_result (mixed, 2);
    assert_int_equal (sb_wh_keys_load (keys, res), -1);
    PQclear (res);
    assert_true (sb_wh_keys_has (keys, KEY_ID_B));
    assert_false (sb_wh_keys_has (keys, "keyCCCCCCCCCCCCC"));

    //  A malformed row (not hex; a bad id) likewise.
    s_row_t bad = rows [0];
    bad.hex [0] = 'z';
    res = s_result (&bad, 1);
    assert_int_equal (sb_wh_keys_load (keys, res), -1);
    PQclear (res);
    bad = rows [0];
    bad.id = "bad id";
    res = s_result (&bad, 1);
    assert_int_equal (sb_wh_keys_load (keys, res), -1);
    PQclear (res);
    assert_true (sb_wh_keys_has (keys, KEY_ID_A));

    //  An empty table empties the ring.
    res = s_result (rows, 0);
    assert_int_equal (sb_wh_keys_load (keys, res), 0);
    PQclear (res);
    assert_false (sb_wh_keys_has (keys, KEY_ID_A));
    assert_int_equal (sb_wh_keys_load (keys, NULL), -1);

    sb_wh_keys_destroy (&keys);
    assert_null (keys);
    sb_wh_keys_destroy (&keys);
}

static void
test_new (void **state)
{
    (void) state;
    uint8_t big [65] = { 0 };
    assert_null (sb_wh_keys_new (s_master, 31));
    assert_null (sb_wh_keys_new (big, sizeof big));
    assert_null (sb_wh_keys_new (NULL, 32));
    sb_wh_keys_t *keys = sb_wh_keys_new (big, 64);
    assert_non_null (keys);
    sb_wh_keys_destroy (&keys);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_open),
        cmocka_unit_test (test_new),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
