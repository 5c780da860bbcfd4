/*  common/sb_sched.h — the CPU scheduling policy every switchboard process
    asks for itself at start (option --cpu-policy, SB_CPU_POLICY).

    "batch" (the default) is Linux's SCHED_BATCH: same share of the CPU as
    the normal policy, but a thread that wakes (a message arrived) does not
    preempt the one running; it runs at the next scheduling point. The
    farm's processes pass each call along a chain (gateway, broker,
    worker, broker, gateway), each waking for every message; with batch
    they wake less often and find several messages waiting, so a call
    costs fewer wake-ups and system calls. Measured with bench/run (50
    connections, 2 cores): about 20% more calls a second, the broker's CPU
    per call a third lower (README, Benchmark). "normal" is SCHED_OTHER.
    Neither needs a privilege. Threads started afterwards (ZeroMQ's I/O
    thread, libcurl's resolver) inherit it, so call it before creating any. */
#ifndef SB_SCHED_H_INCLUDED
#define SB_SCHED_H_INCLUDED

#include "sb_attr.h"

/*  The option entry (common/sb_config.h) each process lists. */
#define SB_CPU_POLICY_OPTION \
    { "cpu-policy", SB_OPT_STR, "batch", 0, 0, "SB_CPU_POLICY", \
      "CPU scheduling: batch (SCHED_BATCH: a woken thread waits for the next scheduling point, " \
      "so a loop finds more messages per wake-up) or normal (SCHED_OTHER)" }

/*  Applies `policy` ("batch" or "normal") to the calling thread and so to
    the threads it starts later. Returns 0 (a kernel that refuses it is
    logged, and the process keeps the policy it had), or -1 after logging
    an unknown name. */
int sb_sched_apply (const char *policy) SB_MUST_USE;

#endif
