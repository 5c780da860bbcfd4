/*  common/sb_text.c — small text helpers (see sb_text.h). */
#include "sb_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

char *
sb_strfmt (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *out = NULL;
    int rc = vasprintf (&out, fmt, ap);
    va_end (ap);
    return rc < 0 ? NULL : out;
}
