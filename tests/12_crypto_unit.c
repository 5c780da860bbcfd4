/*  tests/12_crypto_unit.c — unit tests of common/sb_crypto: base64url
    vectors (RFC 4648), hex, HMAC-SHA256 (RFC 4231 case 2), constant-time
    equality, random bytes, secrets read from files, Ed25519 (RFC 8032) and
    AES-256-GCM sealing (the GCM specification's test cases 14 and 16, and
    tampering). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void
test_base64url_vectors (void **state)
{
    //  RFC 4648 §10, without padding.
    static const char *vectors [][2] = {
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors [0]; i++) {
        char *enc = sb_base64url_encode ((const uint8_t *) vectors [i][0], strlen (vectors [i][0]));
        assert_non_null (enc);
        assert_string_equal (enc, vectors [i][1]);
        uint8_t out [16];
        size_t out_len = 99;
        assert_int_equal (sb_base64url_decode (enc, strlen (enc), out, sizeof out, &out_len), 0);
        assert_int_equal (out_len, strlen (vectors [i][0]));
        assert_memory_equal (out, vectors [i][0], out_len);
        free (enc);
    }
    //  The url-safe alphabet: 0xfb 0xff → "-_8".
    uint8_t raw [] = { 0xfb, 0xff };
    char *enc = sb_base64url_encode (raw, sizeof raw);
    assert_string_equal (enc, "-_8");
    free (enc);
    //  Padded input is accepted.
    uint8_t out [8];
    size_t out_len;
    assert_int_equal (sb_base64url_decode ("Zm8=", 4, out, sizeof out, &out_len), 0);
    assert_int_equal (out_len, 2);
    assert_memory_equal (out, "fo", 2);
}

static void
test_base64url_rejects (void **state)
{
    uint8_t out [8];
    size_t out_len;
    assert_int_equal (sb_base64url_decode ("Zm9v+g", 6, out, sizeof out, &out_len), -1);   //  '+' is not url-safe
    assert_int_equal (sb_base64url_decode ("Zm9v/g", 6, out, sizeof out, &out_len), -1);
    assert_int_equal (sb_base64url_decode ("Z", 1, out, sizeof out, &out_len), -1);         //  dangling char
    assert_int_equal (sb_base64url_decode ("Zh", 2, out, sizeof out, &out_len), -1);        //  non-zero tail bits
    assert_int_equal (sb_base64url_decode ("Zm=9", 4, out, sizeof out, &out_len), -1);      //  padding inside
    assert_int_equal (sb_base64url_decode ("Zm9vYmFyZm9vYmFy", 16, out, sizeof out, &out_len), -1);  //  too big
    assert_int_equal (sb_base64url_decode ("", 0, out, 0, &out_len), 0);
    assert_int_equal (out_len, 0);
    //  The strict decoder: what the lenient one takes unpadded, and no "=".
    assert_int_equal (sb_base64url_decode_strict ("Zm8", 3, out, sizeof out, &out_len), 0);
    assert_int_equal (out_len, 2);
    assert_memory_equal (out, "fo", 2);
    assert_int_equal (sb_base64url_decode_strict ("Zm8=", 4, out, sizeof out, &out_len), -1);
    assert_int_equal (sb_base64url_decode_strict ("Zg==", 4, out, sizeof out, &out_len), -1);
    assert_int_equal (sb_base64url_decode_strict ("Zm9v", 4, out, sizeof out, &out_len), 0);
    assert_int_equal (sb_base64url_decode_strict ("Zm-", 3, out, sizeof out, &out_len), -1);  //  tail bits
    assert_int_equal (sb_base64url_decode_strict ("Zm9v+g", 6, out, sizeof out, &out_len), -1);
    assert_int_equal (sb_base64url_decode_strict ("Z", 1, out, sizeof out, &out_len), -1);
}

static void
test_hex (void **state)
{
    uint8_t raw [] = { 0x00, 0x7f, 0xab, 0xff };
    char text [9];
    sb_hex_encode (raw, sizeof raw, text);
    assert_string_equal (text, "007fabff");
    uint8_t out [4];
    size_t out_len;
    assert_int_equal (sb_hex_decode ("007FabFF", out, sizeof out, &out_len), 0);
    assert_int_equal (out_len, 4);
    assert_memory_equal (out, raw, 4);
    assert_int_equal (sb_hex_decode ("abc", out, sizeof out, &out_len), -1);        //  odd
    assert_int_equal (sb_hex_decode ("zz", out, sizeof out, &out_len), -1);         //  not hex
    assert_int_equal (sb_hex_decode ("0011223344", out, sizeof out, &out_len), -1); //  too long
}

//  FIPS 180-2's examples: "abc", and the empty message.
static void
test_sha256 (void **state)
{
    uint8_t digest [SB_HMAC_SHA256_LEN];
    char hex [2 * SB_HMAC_SHA256_LEN + 1];
    sb_sha256 ("abc", 3, digest);
    sb_hex_encode (digest, sizeof digest, hex);
    assert_string_equal (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sb_sha256 (NULL, 0, digest);
    sb_hex_encode (digest, sizeof digest, hex);
    assert_string_equal (hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_hmac_rfc4231 (void **state)
{
    //  RFC 4231 test case 2.
    uint8_t mac [SB_HMAC_SHA256_LEN];
    const char *data = "what do ya want for nothing?";
    sb_hmac_sha256 ((const uint8_t *) "Jefe", 4, (const uint8_t *) data, strlen (data), mac);
    char hex [2 * SB_HMAC_SHA256_LEN + 1];
    sb_hex_encode (mac, sizeof mac, hex);
    assert_string_equal (hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    //  RFC 4231 test case 1.
    uint8_t key [20];
    memset (key, 0x0b, sizeof key);
    sb_hmac_sha256 (key, sizeof key, (const uint8_t *) "Hi There", 8, mac);
    sb_hex_encode (mac, sizeof mac, hex);
    assert_string_equal (hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    //  RFC 4231 test case 6: a key longer than the block is hashed first.
    uint8_t long_key [131];
    memset (long_key, 0xaa, sizeof long_key);
    const char *text = "Test Using Larger Than Block-Size Key - Hash Key First";
    sb_hmac_sha256 (long_key, sizeof long_key, (const uint8_t *) text, strlen (text), mac);
    sb_hex_encode (mac, sizeof mac, hex);
    assert_string_equal (hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    //  Against OpenSSL's own HMAC () for every key length around the block
    //  size (0 to 130 bytes) and data of 0 to 199 bytes.
    uint8_t bytes [200];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes [i] = (uint8_t) (i * 37 + 11);
    for (size_t key_len = 0; key_len <= 130; key_len++) {
        size_t data_len = (key_len * 7) % sizeof bytes;
        uint8_t reference [SB_HMAC_SHA256_LEN];
        unsigned int reference_len = 0;
        static const uint8_t zero [1] = { 0 };
        assert_non_null (HMAC (EVP_sha256 (), key_len? bytes + 50: zero, (int) key_len,
                               data_len? bytes: zero, data_len, reference, &reference_len));
        sb_hmac_sha256 (bytes + 50, key_len, data_len? bytes: NULL, data_len, mac);
        assert_memory_equal (mac, reference, sizeof mac);
    }
}

static void
test_equal_and_random (void **state)
{
    assert_true (sb_crypto_equal ("abcdef", "abcdef", 6));
    assert_false (sb_crypto_equal ("abcdef", "abcdeg", 6));
    assert_false (sb_crypto_equal ("xbcdef", "abcdef", 6));
    assert_true (sb_crypto_equal ("a", "b", 0));
    uint8_t a [32], b [32];
    assert_int_equal (sb_crypto_random (a, sizeof a), 0);
    assert_int_equal (sb_crypto_random (b, sizeof b), 0);
    assert_false (sb_crypto_equal (a, b, sizeof a));
}

//  Writes `len` bytes to a new temporary file; returns its path (free it).
static char *
s_temp_file (const void *data, size_t len)
{
    char *path = strdup ("/tmp/sb-secret-XXXXXX");
    assert_non_null (path);
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, data, len), (ssize_t) len);
    close (fd);
    return path;
}

//  A secret file: its first line, CRLF tolerated; every bad file refused
//  with a sentence naming it.
static void
test_secret_file (void **state)
{
    struct { const char *data; size_t len; const char *secret; const char *why; } cases [] = {
        { "s3cret\n", 7, "s3cret", NULL },
        { "s3cret", 6, "s3cret", NULL },
        { "s3cret\r\nsecond line\n", 20, "s3cret", NULL },
        { "\n", 1, NULL, "is empty" },
        { "", 0, NULL, "is empty" },
        { "ab\0cd\n", 6, NULL, "NUL byte" },
        { "a\rb\n", 4, NULL, "carriage return" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char *path = s_temp_file (cases [i].data, cases [i].len);
        char *why = NULL;
        char *secret = sb_secret_read_file (path, &why);
        if (cases [i].secret) {
            assert_non_null (secret);
            assert_string_equal (secret, cases [i].secret);
            assert_null (why);
        }
        else {
            assert_null (secret);
            assert_non_null (why);
            assert_non_null (strstr (why, path));
            assert_non_null (strstr (why, cases [i].why));
        }
        sb_secret_free (&secret);
        assert_null (secret);
        free (why);
        unlink (path);
        free (path);
    }
    //  One byte past the limit is refused; the limit itself is fine
    char *long_line = malloc (SB_MAX_SECRET_LEN + 2);
    assert_non_null (long_line);
    memset (long_line, 'k', SB_MAX_SECRET_LEN + 1);
    for (size_t len = SB_MAX_SECRET_LEN; len <= SB_MAX_SECRET_LEN + 1; len++) {
        char *path = s_temp_file (long_line, len);
        char *why = NULL;
        char *secret = sb_secret_read_file (path, &why);
        assert_true ((secret != NULL) == (len == SB_MAX_SECRET_LEN));
        if (secret)
            assert_int_equal (strlen (secret), SB_MAX_SECRET_LEN);
        else
            assert_non_null (strstr (why, "longer than"));
        sb_secret_free (&secret);
        free (why);
        unlink (path);
        free (path);
    }
    free (long_line);
    char *why = NULL;
    assert_null (sb_secret_read_file ("/nonexistent/secret", &why));
    assert_non_null (strstr (why, "/nonexistent/secret: cannot read the secret"));
    free (why);
}

//  RFC 8032 §7.1, test 1 (empty message): the public key and signature
//  OpenSSL gives are the RFC's, and a changed byte does not verify.
static void
test_ed25519 (void **state)
{
    (void) state;
    uint8_t seed [32], pub [32], want_pub [32], want_sig [64], sig [64];
    size_t len = 0;
    assert_int_equal (sb_hex_decode ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                                     seed, sizeof seed, &len), 0);
    assert_int_equal (sb_hex_decode ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                                     want_pub, sizeof want_pub, &len), 0);
    assert_int_equal (sb_hex_decode ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                                     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
                                     want_sig, sizeof want_sig, &len), 0);
    assert_int_equal (sb_ed25519_public (seed, pub), 0);
    assert_memory_equal (pub, want_pub, 32);
    assert_int_equal (sb_ed25519_sign (seed, (const uint8_t *) "", 0, sig), 0);
    assert_memory_equal (sig, want_sig, 64);
    assert_true (sb_ed25519_verify (pub, (const uint8_t *) "", 0, sig));
    sig [10] ^= 1;
    assert_false (sb_ed25519_verify (pub, (const uint8_t *) "", 0, sig));
    sig [10] ^= 1;
    assert_false (sb_ed25519_verify (pub, (const uint8_t *) "x", 1, sig));
}

//  Hex `text` into `out` (the test's own vectors: must decode).
static size_t
s_unhex (const char *text, uint8_t *out, size_t size)
{
    size_t len = 0;
    assert_int_equal (sb_hex_decode (text, out, size, &len), 0);
    return len;
}

//  The GCM specification's (McGrew and Viega) AES-256 test cases 14
//  (a zero key and nonce, one zero block, no associated data) and 16
//  (60 bytes with 20 of associated data), as sealed boxes nonce || C || T:
//  sb_aead_open gives back P, so the boxes sb_aead_seal makes (which
//  open) are standard AES-256-GCM under their random nonce.
static void
test_aead_vectors (void **state)
{
    (void) state;
    static const struct {
        const char *key, *nonce, *plain, *ad, *cipher, *tag;
    } cases [] = {
        { "0000000000000000000000000000000000000000000000000000000000000000",
          "000000000000000000000000",
          "00000000000000000000000000000000",
          "",
          "cea7403d4d606b6e074ec5d3baf39d18",
          "d0d1c8a799996bf0265b98b5d48ab919" },
        { "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
          "cafebabefacedbaddecaf888",
          "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
          "feedfacedeadbeeffeedfacedeadbeefabaddad2",
          "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
          "76fc6ece0f4e1768cddf8853bb2d551b" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        uint8_t key [SB_AEAD_KEY_LEN], plain [64], ad [32], box [128], out [128];
        assert_int_equal (s_unhex (cases [i].key, key, sizeof key), SB_AEAD_KEY_LEN);
        size_t plain_len = s_unhex (cases [i].plain, plain, sizeof plain);
        size_t ad_len = s_unhex (cases [i].ad, ad, sizeof ad);
        size_t box_len = s_unhex (cases [i].nonce, box, sizeof box);
        assert_int_equal (box_len, SB_AEAD_NONCE_LEN);
        box_len += s_unhex (cases [i].cipher, box + box_len, sizeof box - box_len);
        box_len += s_unhex (cases [i].tag, box + box_len, sizeof box - box_len);
        assert_int_equal (box_len, plain_len + SB_AEAD_OVERHEAD);
        size_t out_len = 0;
        assert_int_equal (sb_aead_open (key, ad_len? ad: NULL, ad_len, box, box_len,
                                        out, sizeof out, &out_len), 0);
        assert_int_equal (out_len, plain_len);
        assert_memory_equal (out, plain, plain_len);
        //  Sealing the same plaintext: another (random) nonce, the same
        //  length, and it opens to the plaintext again.
        uint8_t sealed [128];
        size_t sealed_len = 0;
        assert_int_equal (sb_aead_seal (key, ad, ad_len, plain, plain_len, sealed, sizeof sealed,
                                        &sealed_len), 0);
        assert_int_equal (sealed_len, box_len);
        assert_memory_not_equal (sealed, box, SB_AEAD_NONCE_LEN);
        memset (out, 0, sizeof out);
        assert_int_equal (sb_aead_open (key, ad, ad_len, sealed, sealed_len, out, sizeof out,
                                        &out_len), 0);
        assert_int_equal (out_len, plain_len);
        assert_memory_equal (out, plain, plain_len);
    }
}

//  A sealed box opens only whole, under its key and with its associated
//  data; a failed open leaves no plaintext; sizes are checked.
static void
test_aead_tamper (void **state)
{
    (void) state;
    uint8_t key [SB_AEAD_KEY_LEN], other [SB_AEAD_KEY_LEN];
    assert_int_equal (sb_crypto_random (key, sizeof key), 0);
    memcpy (other, key, sizeof other);
    other [31] ^= 0x80;
    const char plain [] = "an Ed25519 seed, 32 bytes long!!";
    const char ad [] = "kid-1";
    uint8_t box [sizeof plain + SB_AEAD_OVERHEAD], out [sizeof plain];
    size_t box_len = 0, out_len = 0;
    assert_int_equal (sb_aead_seal (key, ad, strlen (ad), plain, sizeof plain, box, sizeof box,
                                    &box_len), 0);
    assert_int_equal (box_len, sizeof box);
    //  The ciphertext does not carry the plaintext.
    assert_memory_not_equal (box + SB_AEAD_NONCE_LEN, plain, sizeof plain);
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), box, box_len, out, sizeof out, &out_len), 0);
    assert_memory_equal (out, plain, sizeof plain);

    //  Every single bit flipped, in the nonce, the ciphertext or the tag.
    for (size_t at = 0; at < box_len; at++)
        for (int bit = 0; bit < 8; bit++) {
            box [at] ^= (uint8_t) (1u << bit);
            memset (out, 0x5a, sizeof out);
            assert_int_equal (sb_aead_open (key, ad, strlen (ad), box, box_len, out, sizeof out,
                                            &out_len), -1);
            //  nothing decrypted is left behind
            for (size_t i = 0; i < sizeof out; i++)
                assert_true (out [i] == 0 || out [i] == 0x5a);
            box [at] ^= (uint8_t) (1u << bit);
        }
    //  Another key, other or no associated data, a box cut short or grown.
    assert_int_equal (sb_aead_open (other, ad, strlen (ad), box, box_len, out, sizeof out, &out_len), -1);
    assert_int_equal (sb_aead_open (key, "kid-2", 5, box, box_len, out, sizeof out, &out_len), -1);
    assert_int_equal (sb_aead_open (key, NULL, 0, box, box_len, out, sizeof out, &out_len), -1);
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), box, box_len - 1, out, sizeof out, &out_len), -1);
    uint8_t longer [sizeof box + 1];
    memcpy (longer, box, box_len);
    longer [box_len] = 0;
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), longer, sizeof longer, out, sizeof out,
                                    &out_len), -1);
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), box, SB_AEAD_OVERHEAD - 1, out, sizeof out,
                                    &out_len), -1);
    //  Buffers too small are refused, not overrun.
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), box, box_len, out, sizeof out - 1, &out_len), -1);
    assert_int_equal (sb_aead_seal (key, ad, strlen (ad), plain, sizeof plain, box, sizeof box - 1,
                                    &box_len), -1);
    //  Still opens after all that: nothing above changed the box.
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), box, sizeof box, out, sizeof out, &out_len), 0);
    assert_memory_equal (out, plain, sizeof plain);
    //  An empty plaintext seals to a tag alone, which authenticates the
    //  associated data.
    uint8_t empty [SB_AEAD_OVERHEAD];
    assert_int_equal (sb_aead_seal (key, ad, strlen (ad), NULL, 0, empty, sizeof empty, &box_len), 0);
    assert_int_equal (box_len, SB_AEAD_OVERHEAD);
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), empty, box_len, out, sizeof out, &out_len), 0);
    assert_int_equal (out_len, 0);
    assert_int_equal (sb_aead_open (key, "kid-2", 5, empty, box_len, out, sizeof out, &out_len), -1);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ed25519),
        cmocka_unit_test (test_aead_vectors),
        cmocka_unit_test (test_aead_tamper),
        cmocka_unit_test (test_sha256),
        cmocka_unit_test (test_base64url_vectors),
        cmocka_unit_test (test_base64url_rejects),
        cmocka_unit_test (test_hex),
        cmocka_unit_test (test_hmac_rfc4231),
        cmocka_unit_test (test_equal_and_random),
        cmocka_unit_test (test_secret_file),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
