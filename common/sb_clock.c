/*  common/sb_clock.c — monotonic and wall clocks in milliseconds. */
#include "sb_clock.h"

#include <time.h>

static int64_t
s_clock_ms (clockid_t id)
{
    struct timespec ts;
    clock_gettime (id, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sb_clock_mono_ms (void)
{
    return s_clock_ms (CLOCK_MONOTONIC);
}

int64_t
sb_clock_wall_ms (void)
{
    return s_clock_ms (CLOCK_REALTIME);
}

int64_t
sb_clock_left_ms (int64_t deadline_ms)
{
    int64_t left = deadline_ms - sb_clock_mono_ms ();
    return left > 0 ? left : 0;
}
