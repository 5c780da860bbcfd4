/*  common/sb_clock.h — time for deadlines and logs.
    Deadlines always use the monotonic clock; wall time is only for logs and
    for data that leaves the process (token expiry, timestamps in rows). */
#ifndef SB_CLOCK_H_INCLUDED
#define SB_CLOCK_H_INCLUDED

#include <stdint.h>

/*  Milliseconds on the monotonic clock (arbitrary origin, never jumps). */
int64_t sb_clock_mono_ms (void);

/*  Milliseconds since the Unix epoch (wall clock, may jump). */
int64_t sb_clock_wall_ms (void);

/*  Milliseconds left until `deadline_ms` (monotonic), 0 if already passed. */
int64_t sb_clock_left_ms (int64_t deadline_ms);

#endif
