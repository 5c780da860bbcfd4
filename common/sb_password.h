/*  common/sb_password.h — password hashing with Argon2id (Debian's
    libargon2), in the PHC encoded form stored in users.password_hash:
        $argon2id$v=19$m=65536,t=3,p=1$<salt, base64>$<hash, base64>

    BLOCKING AND SLOW ON PURPOSE: one hash or verify takes SB_PASSWORD_M_KIB
    of memory and on the order of 100 ms of one core. Never call these on
    an event-loop thread (a worker's reactor, the gateway): a sign-in would
    stall every other job of that loop. Callers run them on a worker thread
    pool and learn the outcome through an fd the loop polls; the number of
    pool threads bounds the memory (threads × SB_PASSWORD_M_KIB).
    Thread-safe (no shared state).

    Parameters (OWASP Password Storage Cheat Sheet, RFC 9106 §4): Argon2id,
    t = 3 passes over m = 64 MiB with p = 1 lane. OWASP's floor is m = 19 MiB,
    t = 2, p = 1 (or 46 MiB, t = 1); RFC 9106's second recommended option,
    for when 2 GiB per hash is too much, is t = 3, m = 64 MiB. We keep its t
    and m and take p = 1: on a server, parallelism comes from concurrent
    sign-ins on the pool, not from lanes within one hash, and p = 1 keeps
    one sign-in on one core. 16-byte random salt, 32-byte tag. */
#ifndef SB_PASSWORD_H_INCLUDED
#define SB_PASSWORD_H_INCLUDED

#include <stddef.h>

#include "sb_attr.h"

#define SB_PASSWORD_T_COST      3           /* passes over memory */
#define SB_PASSWORD_M_KIB       65536       /* memory per hash, KiB (64 MiB) */
#define SB_PASSWORD_PARALLELISM 1           /* lanes */
#define SB_PASSWORD_SALT_LEN    16          /* bytes of random salt */
#define SB_PASSWORD_HASH_LEN    32          /* bytes of tag */
#define SB_PASSWORD_MIN_LEN     8           /* shortest password accepted, bytes */
#define SB_PASSWORD_MAX_LEN     1024        /* longest password accepted, bytes */
#define SB_PASSWORD_ENCODED_MAX 160         /* room for an encoded string, with NUL */
/*  A stored hash with costs above these is refused by verify (a tampered
    or foreign row must not make a sign-in take gigabytes or minutes). */
#define SB_PASSWORD_MAX_M_KIB   (1024 * 1024)
#define SB_PASSWORD_MAX_T_COST  16
#define SB_PASSWORD_MAX_LANES   8

/*  What sb_password_verify found. */
typedef enum {
    SB_PASSWORD_MATCH = 0,      /* the password is the one hashed */
    SB_PASSWORD_MISMATCH = 1,   /* it is not */
    SB_PASSWORD_MALFORMED = -1  /* `encoded` is no Argon2id string we accept */
} sb_password_result_t;

/*  Hashes `password` (NUL-terminated, SB_PASSWORD_MIN_LEN to
    SB_PASSWORD_MAX_LEN bytes) with a new random salt into `encoded`
    (`size` >= SB_PASSWORD_ENCODED_MAX). Returns 0, or -1 with *error a
    static sentence (too short, too long, out of memory, no randomness).
    Blocking, slow: see the top. */
int sb_password_hash (const char *password, char *encoded, size_t size, const char **error)
    SB_MUST_USE;

/*  Checks `password` against `encoded` (from sb_password_hash, or any
    Argon2id v=19 string within the SB_PASSWORD_MAX_* costs). The tag is
    compared in constant time (libargon2's argon2_compare). A password
    longer than SB_PASSWORD_MAX_LEN is a mismatch. MALFORMED sets *error.
    Blocking, slow: see the top. */
sb_password_result_t sb_password_verify (const char *encoded, const char *password,
                                         const char **error)
    SB_MUST_USE;

/*  1 when `encoded` was made with other parameters than today's (so a
    successful sign-in should store a new hash), else 0. Cheap. */
int sb_password_needs_rehash (const char *encoded);

#endif
