/*  workers/sb_webhook_role.h — the webhook role. In issue #2 it registers,
    heartbeats and answers "ping" with {"pong":true,"role":"webhook"};
    verification, storage and fan-out of webhook events come later. */
#ifndef SB_WEBHOOK_ROLE_H_INCLUDED
#define SB_WEBHOOK_ROLE_H_INCLUDED

#include "sb_worker.h"

/*  The callbacks to pass to sb_worker_set_role (state may be NULL). */
extern const sb_worker_role_t sb_webhook_role;

#endif
