/*  workers/sb_webhook_role.c — the webhook role (see sb_webhook_role.h).
    Stateless for now: every job is answered during start. */
#include "sb_webhook_role.h"

#include <stdio.h>
#include <string.h>

static void
s_start (void *state, sb_worker_job_t *job)
{
    const char *op = sb_worker_job_spec (job)->op;
    if (strcmp (op, "ping") == 0)
        sb_worker_job_done (&job, SB_STATUS_OK, "{\"pong\":true,\"role\":\"webhook\"}");
    else
        sb_worker_job_fail_unknown_op (&job);
}

static void
s_abandon (void *state, sb_worker_job_t *job)
{
    //  Nothing is attached to a webhook job yet
}

const sb_worker_role_t sb_webhook_role = { s_start, s_abandon };
