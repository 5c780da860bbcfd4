/*  gateway/sb_keyfile.h — reads a secret key (the HS256 token key, the
    session key) from a file holding it as hex (64+ hex digits = 32+ bytes;
    surrounding whitespace ignored). Shared by sb-gateway (verifies tokens,
    signs sessions) and sb-token (issues tokens). */
#ifndef SB_KEYFILE_H_INCLUDED
#define SB_KEYFILE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_MAX_TOKEN_KEY_LEN    256     /* longest key, bytes (512 hex digits) */
#define SB_MAX_KEY_FILE         4096    /* largest key file, bytes */

/*  Loads the key at `path` into `key` (SB_MAX_TOKEN_KEY_LEN bytes). Returns
    0 and sets *key_len, or -1 with a log line naming the key (`what`, e.g.
    "token key") and saying what is wrong (missing file, not hex, shorter
    than SB_MIN_TOKEN_KEY_LEN bytes). */
int sb_keyfile_load (const char *path, const char *what, uint8_t *key, size_t *key_len)
    SB_MUST_USE;

#endif
