/*  common/sb_log.c — structured JSON log lines with secret redaction.

    One line is formatted into a fixed buffer and written with one write(2),
    so lines from concurrent processes sharing a file do not interleave.
    Messages longer than SB_MAX_LOG_LINE are truncated, never grown. */
#include "sb_log.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SB_MAX_LOG_LINE     4096    /* one log line, bytes */
#define SB_MAX_LOG_MESSAGE  2048    /* formatted message before escaping, bytes */

static char s_proc [32] = "switchboard";           /* process name in every line */
static sb_log_level_t s_level = SB_LOG_INFO;        /* lines below this are dropped */

static const char *s_level_names [] = { "debug", "info", "warn", "error" };

void
sb_log_init (const char *proc, sb_log_level_t level)
{
    snprintf (s_proc, sizeof s_proc, "%s", proc ? proc : "switchboard");
    s_level = level;
}

int
sb_log_level_parse (const char *name, sb_log_level_t *level)
{
    for (int i = 0; i <= SB_LOG_ERROR; i++)
        if (name && strcasecmp (name, s_level_names [i]) == 0) {
            *level = (sb_log_level_t) i;
            return 0;
        }
    return -1;
}

//  Words after which the next value is a secret. Matched case-insensitively
//  as a prefix of a word, followed by ':' '=' or ' ' (and optional quotes).
static const char *s_secret_words [] = {
    "bearer", "authorization", "password", "passwd", "secret", "token",
    "api_key", "apikey", "api-key", "client_secret", "refresh_token",
    "access_token", "cookie", NULL
};

static size_t
s_secret_word_at (const char *text)
{
    for (const char **w = s_secret_words; *w; w++) {
        size_t len = strlen (*w);
        if (strncasecmp (text, *w, len) == 0)
            return len;
    }
    return 0;
}

void
sb_log_redact (const char *in, char *out, size_t out_size)
{
    if (out_size == 0)
        return;
    size_t o = 0;
    const char *p = in;
    while (*p && o + 1 < out_size) {
        bool word_start = p == in || !isalnum ((unsigned char) p [-1]);
        size_t wlen = word_start ? s_secret_word_at (p) : 0;
        if (wlen) {
            //  Copy the word itself, then separators, then mask the value.
            const char *q = p + wlen;
            while (isalnum ((unsigned char) *q) || *q == '_' || *q == '-')
                q++;        //  e.g. "token_type" stays a word; we mask what follows
            //  A value follows "word=" or "word:" (JSON: "word":"…"); only the
            //  scheme word "bearer" takes a plain space ("Bearer abc").
            const char *sep = q;
            if (*sep == '"' || *sep == '\'')
                sep++;
            bool assigned = *sep == ':' || *sep == '=';
            bool scheme = (q - p == 6) && strncasecmp (p, "bearer", 6) == 0 && *q == ' ';
            if (assigned || scheme)
                while (*sep == ':' || *sep == '=' || *sep == ' ' || *sep == '"' || *sep == '\'')
                    sep++;
            if (!(assigned || scheme) || !*sep) {   //  no value after it: not a secret
                size_t n = (size_t) (q - p);
                if (n > out_size - 1 - o)
                    n = out_size - 1 - o;
                memcpy (out + o, p, n);
                o += n;
                p = q;
                continue;
            }
            size_t n = (size_t) (sep - p);
            if (n > out_size - 1 - o)
                n = out_size - 1 - o;
            memcpy (out + o, p, n);
            o += n;
            //  "Authorization: Bearer xyz": keep the scheme word, mask the credential
            if (strncasecmp (sep, "bearer ", 7) == 0 || strncasecmp (sep, "basic ", 6) == 0) {
                p = sep;
                continue;
            }
            const char *end = sep;
            while (*end && !isspace ((unsigned char) *end) && *end != '"' && *end != '\''
                   && *end != ',' && *end != '&' && *end != ';' && *end != '}')
                end++;
            const char *mask = "[redacted]";
            size_t mlen = strlen (mask);
            if (mlen > out_size - 1 - o)
                mlen = out_size - 1 - o;
            memcpy (out + o, mask, mlen);
            o += mlen;
            p = end;
            continue;
        }
        out [o++] = *p++;
    }
    out [o] = 0;
}

//  Appends `text` JSON-escaped to buf at *len (bounded by size - 1).
static void
s_append_escaped (char *buf, size_t size, size_t *len, const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        char esc [8];
        const char *piece = esc;
        size_t plen;
        if (*c == '"' || *c == '\\') {
            esc [0] = '\\'; esc [1] = (char) *c; plen = 2;
        }
        else if (*c == '\n') { piece = "\\n"; plen = 2; }
        else if (*c == '\r') { piece = "\\r"; plen = 2; }
        else if (*c == '\t') { piece = "\\t"; plen = 2; }
        else if (*c < 0x20) {
            plen = (size_t) snprintf (esc, sizeof esc, "\\u%04x", *c);
        }
        else { esc [0] = (char) *c; plen = 1; }
        if (*len + plen >= size - 1)
            return;
        memcpy (buf + *len, piece, plen);
        *len += plen;
    }
}

//  Appends raw bytes (already valid JSON) within the same bound.
static void
s_append_raw (char *buf, size_t size, size_t *len, const char *text)
{
    size_t plen = strlen (text);
    if (*len + plen >= size - 1)
        return;
    memcpy (buf + *len, text, plen);
    *len += plen;
}

void
sb_log (sb_log_level_t level, const char *event, const char *fmt, ...)
{
    if (level < s_level || level > SB_LOG_ERROR)
        return;
    char message [SB_MAX_LOG_MESSAGE];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    char redacted [SB_MAX_LOG_MESSAGE];
    sb_log_redact (message, redacted, sizeof redacted);

    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);

    //  Body bounded to leave room for the closing `"}` and newline.
    char line [SB_MAX_LOG_LINE];
    const size_t body_max = sizeof line - 3;
    size_t len = (size_t) snprintf (line, sizeof line,
        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"proc\":\"",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        ts.tv_nsec / 1000000, s_level_names [level]);
    s_append_escaped (line, body_max, &len, s_proc);
    s_append_raw (line, body_max, &len, "\",\"event\":\"");
    s_append_escaped (line, body_max, &len, event ? event : "log");
    s_append_raw (line, body_max, &len, "\",\"msg\":\"");
    s_append_escaped (line, body_max, &len, redacted);
    memcpy (line + len, "\"}\n", 3);
    len += 3;
    ssize_t written = write (STDERR_FILENO, line, len);
    (void) written;     //  nowhere to report a failed log write
}
