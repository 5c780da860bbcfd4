/*  common/sb_sched.c — the process's CPU scheduling policy. See sb_sched.h. */
#include "sb_sched.h"
#include "sb_log.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

int
sb_sched_apply (const char *policy)
{
    int which = strcmp (policy, "batch") == 0? SCHED_BATCH:
                strcmp (policy, "normal") == 0? SCHED_OTHER: -1;
    if (which < 0) {
        sb_log_error ("bad_option", "--cpu-policy must be batch or normal, not \"%.32s\"", policy);
        return -1;
    }
    struct sched_param param = { .sched_priority = 0 };
    //  Only an optimisation: a kernel or container that refuses it leaves
    //  the process as it was, and it runs.
    if (sched_setscheduler (0, which, &param))
        sb_log_warn ("cpu_policy_refused", "policy=%s: %s; running with the policy inherited",
                     policy, strerror (errno));
    return 0;
}
