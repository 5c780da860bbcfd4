/*  workers/sb_offload.h — a small thread pool that runs blocking work (an
    Argon2id password hash, sb_password.h) off a worker's event loop and
    hands the outcome back to that loop: each finished job is signalled
    through an eventfd the reactor watches, and its `done` callback runs on
    the loop thread. So a sign-in that takes a few hundred milliseconds of
    CPU never stalls the other jobs of the loop.

        sb_offload_t *pool = sb_offload_new (reactor, 2);
        sb_offload_submit (pool, s_hash, s_hashed, job);
            s_hash (job)        on a pool thread: blocking work only; it must
                                not touch the loop's state (the reactor,
                                libpq, ZeroMQ sockets)
            s_hashed (job, true) later, on the loop thread

    Jobs start in FIFO order; at most SB_MAX_OFFLOAD_JOBS are submitted and
    not yet done at once (submit refuses more: backpressure, not a queue
    without end). The pool's threads also bound the memory of Argon2id
    (threads × SB_PASSWORD_M_KIB). */
#ifndef SB_OFFLOAD_H_INCLUDED
#define SB_OFFLOAD_H_INCLUDED

#include <stdbool.h>

#include "sb_attr.h"
#include "sb_reactor.h"

#define SB_MAX_OFFLOAD_THREADS  16      /* threads of one pool */
#define SB_MAX_OFFLOAD_JOBS     256     /* jobs submitted and not yet done */

typedef struct _sb_offload_t sb_offload_t;

/*  The blocking work, on a pool thread. */
typedef void (sb_offload_work_fn) (void *arg);

/*  Its end, on the loop thread: `ran` is false when the pool was
    destroyed before the work started (it never will). */
typedef void (sb_offload_done_fn) (void *arg, bool ran);

/*  Starts `threads` (1 to SB_MAX_OFFLOAD_THREADS) threads and watches the
    pool's eventfd on `reactor`. Returns NULL on a bad count or when
    threads, the eventfd or the reactor registration cannot be had. */
sb_offload_t *sb_offload_new (sb_reactor_t *reactor, int threads) SB_MUST_USE;

/*  Stops the pool: work that started runs to its end (and its `done`
    runs here); work that did not start gets done (arg, false). Then the
    threads are joined and the eventfd unwatched. Nulls the caller's
    pointer; idempotent. Call it on the loop thread. */
void sb_offload_destroy (sb_offload_t **self_p);

/*  Queues `work` (arg) with `done` (arg, ran). Returns 0, or -1 when
    SB_MAX_OFFLOAD_JOBS are in flight (then neither is ever called). */
int sb_offload_submit (sb_offload_t *self, sb_offload_work_fn *work,
                       sb_offload_done_fn *done, void *arg)
    SB_MUST_USE;

/*  Jobs submitted and not yet done. */
int sb_offload_pending (sb_offload_t *self);

#endif
