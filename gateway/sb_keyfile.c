/*  gateway/sb_keyfile.c — the reader of key files (token key, session key). */
#include "sb_keyfile.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_token.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int
sb_keyfile_load (const char *path, const char *what, uint8_t *key, size_t *key_len)
{
    int rc = -1;
    char text [SB_MAX_KEY_FILE + 1];
    FILE *file = path && *path? fopen (path, "r"): NULL;
    if (!file) {
        sb_log_error ("key_file_unreadable", "cannot open %s file '%s'", what, path? path: "");
        return -1;
    }
    size_t len = fread (text, 1, sizeof text, file);
    fclose (file);
    if (len > SB_MAX_KEY_FILE) {
        sb_log_error ("key_file_invalid", "%s file '%s' is larger than %d bytes",
                      what, path, SB_MAX_KEY_FILE);
        goto out;
    }
    text [len] = 0;
    size_t start = 0;
    while (start < len && isspace ((unsigned char) text [start]))
        start++;
    while (len > start && isspace ((unsigned char) text [len - 1]))
        text [--len] = 0;
    if (sb_hex_decode (text + start, key, SB_MAX_TOKEN_KEY_LEN, key_len)
    ||  *key_len < SB_MIN_TOKEN_KEY_LEN) {
        sb_log_error ("key_file_invalid", "%s file '%s' must hold %d to %d hex digits",
                      what, path, 2 * SB_MIN_TOKEN_KEY_LEN, 2 * SB_MAX_TOKEN_KEY_LEN);
        goto out;
    }
    rc = 0;
out:
    memset (text, 0, sizeof text);
    return rc;
}
