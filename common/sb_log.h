/*  common/sb_log.h — structured JSON logging, one object per line on stderr.

        {"ts":"2026-11-23T14:50:00.123Z","level":"info","proc":"broker",
         "event":"worker_ready","msg":"service=api credit=64"}

    The message is printf-formatted, then JSON-escaped and redacted: bearer
    tokens, "secret"/"password"/"token"/"key" values and Authorization
    headers are replaced by "[redacted]" so secrets never reach logs. Still,
    never pass a secret deliberately. */
#ifndef SB_LOG_H_INCLUDED
#define SB_LOG_H_INCLUDED

#include <stddef.h>

#include "sb_attr.h"

typedef enum {
    SB_LOG_DEBUG = 0,
    SB_LOG_INFO  = 1,
    SB_LOG_WARN  = 2,
    SB_LOG_ERROR = 3,
} sb_log_level_t;

/*  Sets the process name and minimum level. Call once from main. */
void sb_log_init (const char *proc, sb_log_level_t level);

/*  Parses "debug" / "info" / "warn" / "error"; returns -1 if unknown. */
int sb_log_level_parse (const char *name, sb_log_level_t *level) SB_MUST_USE;

/*  Writes one log line when `level` is enabled. `event` is a short
    snake_case name that dashboards can group by. */
void sb_log (sb_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#define sb_log_debug(event, ...) sb_log (SB_LOG_DEBUG, event, __VA_ARGS__)
#define sb_log_info(event, ...)  sb_log (SB_LOG_INFO, event, __VA_ARGS__)
#define sb_log_warn(event, ...)  sb_log (SB_LOG_WARN, event, __VA_ARGS__)
#define sb_log_error(event, ...) sb_log (SB_LOG_ERROR, event, __VA_ARGS__)

/*  Copies `in` into `out` (size `out_size`, always NUL-terminated) with
    secrets replaced by "[redacted]". Exposed for tests. */
void sb_log_redact (const char *in, char *out, size_t out_size);

#endif
