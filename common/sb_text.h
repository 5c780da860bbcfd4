/*  common/sb_text.h — small text helpers shared by the modules that build
    sentences for people (connector checks, schema errors, templates). */
#ifndef SB_TEXT_H_INCLUDED
#define SB_TEXT_H_INCLUDED

#include "sb_attr.h"

/*  Formats a new string (caller frees); NULL only on allocation failure. */
char *sb_strfmt (const char *fmt, ...) __attribute__ ((format (printf, 1, 2))) SB_MUST_USE;

#endif
