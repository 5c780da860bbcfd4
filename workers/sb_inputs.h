/*  workers/sb_inputs.h — the questions of a 2026-07-28 call, settled in the
    worker (proto/PROTOCOL.md, "Input-required results"; the contract for
    roles is sb_worker_job_ask_key in sb_worker.h).

    Such a job carries `inputs`, the client's answers so far. Each question
    it asks is settled here against them: the client lacks the capability
    (-32021) or no client is asked the method (-32601), an answer is given
    ({"result": …}), or the question stays open. Settled answers reach the
    role on the worker's next loop turn; once none is left to deliver and a
    question is open, the job ends with an input-required result
    (payload/sb_payload.h) and the role's abandon callback runs.

    Private to workers/: called by the worker core (sb_worker.c) only. */
#ifndef SB_INPUTS_H_INCLUDED
#define SB_INPUTS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "sb_worker.h"

/*  Reads the answers a starting job carries (its spec's `inputs`), when it
    has any. Returns 0 (also for a job without inputs: an older revision's),
    or -1 when they are not a JSON object or out of memory. */
int sb_inputs_load (sb_worker_job_t *job)
    __attribute__ ((warn_unused_result));

/*  Fills free slot `slot` of a job with inputs for the question
    `request_json` ({"method", "params"} text) asked as ask `id` under
    `key` (NULL: "input_<id>"): settled against the inputs or left open,
    and queues the job for settlement. Returns 0, or -1 when the key is
    malformed or already asked in this run, the request is not an object
    with a string method and params absent or an object, or out of memory. */
int sb_inputs_ask (sb_worker_job_t *job, size_t slot, uint32_t id, const char *key,
                   const char *request_json)
    __attribute__ ((warn_unused_result));

/*  Settles every queued job of worker `self`: delivers its answers (each
    may ask more, which are settled too), then ends it input-required when
    a question is still open. Called by the worker core once per loop turn. */
void sb_inputs_settle_all (sb_worker_t *self);

#endif
