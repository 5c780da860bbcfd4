/*  common/sb_password.c — Argon2id password hashing and verification over
    libargon2 (the reference implementation, Debian's libargon2-1), with
    the parameters of sb_password.h. Blocking: callers run it off their
    event loop (sb_password.h says why and how). */
#include "sb_password.h"
#include "sb_crypto.h"

#include <argon2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define S_PREFIX "$argon2id$v=19$"     /* the only type and version accepted */

/*  Reads a decimal number of at most 9 digits at *p into *value and moves
    *p past it. Returns 0, or -1 when there is no digit or too many. */
static int
s_number (const char **p, uint32_t *value)
{
    uint32_t n = 0;
    int digits = 0;
    while (**p >= '0' && **p <= '9') {
        if (++digits > 9)
            return -1;
        n = n * 10 + (uint32_t) (**p - '0');
        (*p)++;
    }
    *value = n;
    return digits > 0 ? 0 : -1;
}

/*  Expects `literal` at *p and moves past it. Returns 0 or -1. */
static int
s_expect (const char **p, const char *literal)
{
    size_t len = strlen (literal);
    if (strncmp (*p, literal, len) != 0)
        return -1;
    *p += len;
    return 0;
}

/*  Parses the costs of an encoded Argon2id v=19 string. Returns 0, or -1
    when it is not one or a cost is outside the SB_PASSWORD_MAX_* limits. */
static int
s_parse_costs (const char *encoded, uint32_t *m, uint32_t *t, uint32_t *p)
{
    const char *c = encoded;
    if (s_expect (&c, S_PREFIX "m=") || s_number (&c, m)
    ||  s_expect (&c, ",t=") || s_number (&c, t)
    ||  s_expect (&c, ",p=") || s_number (&c, p)
    ||  s_expect (&c, "$"))
        return -1;
    if (*m < 8 || *m > SB_PASSWORD_MAX_M_KIB || *t < 1 || *t > SB_PASSWORD_MAX_T_COST
    ||  *p < 1 || *p > SB_PASSWORD_MAX_LANES)
        return -1;
    return 0;
}

int
sb_password_hash (const char *password, char *encoded, size_t size, const char **error)
{
    size_t len = strnlen (password, SB_PASSWORD_MAX_LEN + 1);
    if (len < SB_PASSWORD_MIN_LEN) {
        *error = "the password is shorter than 8 bytes";
        return -1;
    }
    if (len > SB_PASSWORD_MAX_LEN) {
        *error = "the password is longer than 1024 bytes";
        return -1;
    }
    size_t need = argon2_encodedlen (SB_PASSWORD_T_COST, SB_PASSWORD_M_KIB, SB_PASSWORD_PARALLELISM,
                                     SB_PASSWORD_SALT_LEN, SB_PASSWORD_HASH_LEN, Argon2_id);
    if (size < need || size < SB_PASSWORD_ENCODED_MAX) {
        *error = "no room for the encoded hash";
        return -1;
    }
    uint8_t salt [SB_PASSWORD_SALT_LEN];
    if (sb_crypto_random (salt, sizeof salt)) {
        *error = "no random bytes for the salt";
        return -1;
    }
    int rc = argon2id_hash_encoded (SB_PASSWORD_T_COST, SB_PASSWORD_M_KIB, SB_PASSWORD_PARALLELISM,
                                    password, len, salt, sizeof salt, SB_PASSWORD_HASH_LEN,
                                    encoded, size);
    if (rc != ARGON2_OK) {
        *error = argon2_error_message (rc);
        return -1;
    }
    return 0;
}

sb_password_result_t
sb_password_verify (const char *encoded, const char *password, const char **error)
{
    uint32_t m, t, p;
    if (!encoded || s_parse_costs (encoded, &m, &t, &p)) {
        *error = "not an Argon2id v=19 hash within the accepted costs";
        return SB_PASSWORD_MALFORMED;
    }
    size_t len = strnlen (password, SB_PASSWORD_MAX_LEN + 1);
    if (len > SB_PASSWORD_MAX_LEN)
        return SB_PASSWORD_MISMATCH;
    //  argon2id_verify decodes `encoded`, hashes `password` with its salt
    //  and costs, and compares the tags with argon2_compare (constant time).
    int rc = argon2id_verify (encoded, password, len);
    if (rc == ARGON2_OK)
        return SB_PASSWORD_MATCH;
    if (rc == ARGON2_VERIFY_MISMATCH)
        return SB_PASSWORD_MISMATCH;
    *error = argon2_error_message (rc);
    return SB_PASSWORD_MALFORMED;
}

int
sb_password_needs_rehash (const char *encoded)
{
    uint32_t m, t, p;
    if (!encoded || s_parse_costs (encoded, &m, &t, &p))
        return 1;
    return m != SB_PASSWORD_M_KIB || t != SB_PASSWORD_T_COST || p != SB_PASSWORD_PARALLELISM;
}
