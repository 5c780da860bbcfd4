/*  gateway/sb_scope.c — the scopes a /mcp request needs and the
    insufficient_scope challenge (sb_scope.h). */
#include "sb_scope.h"

#include <stdio.h>
#include <string.h>

const char *
sb_scope_needed (bool writes)
{
    return writes? SB_SCOPE_FOR_WRITE: SB_SCOPE_FOR_READ;
}

bool
sb_scope_granted (const char *granted, const char *needed)
{
    if (!granted || !needed)
        return false;
    //  sb_oauth_scope_subset compares whole space-separated tokens.
    return sb_oauth_scope_subset (needed, granted);
}

//  True when `text` may stand inside a quoted-string as it is.
static bool
s_quotable (const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if (*p == '"' || *p == '\\' || *p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int
sb_scope_challenge (char *out, size_t size, const char *needed, const char *metadata_url,
                    const char *description)
{
    if (!out || size == 0)
        return -1;
    *out = 0;
    if (!needed || !metadata_url || !description
    ||  !s_quotable (needed) || !s_quotable (metadata_url) || !s_quotable (description))
        return -1;
    int n = snprintf (out, size,
                      "Bearer error=\"insufficient_scope\", scope=\"%s\", resource_metadata=\"%s\", "
                      "error_description=\"%s\"", needed, metadata_url, description);
    if (n < 0 || (size_t) n >= size) {
        *out = 0;
        return -1;
    }
    return 0;
}
