/*  workers/sb_db_loop.h — an asynchronous PostgreSQL connection
    (db/sb_db.h) on a worker's reactor, and the jobs that wait on it.
    The token and task roles each own one.

    The loop watches sb_db's socket for what libpq wants and keeps a timer
    for sb_db_timeout_ms. After every call it makes into sb_db (for the
    caller or from the reactor) it brings both registrations up to date,
    because the socket changes when the connection is re-established.

    A job's query (sb_db_loop_job_query) may outlive the job when the
    database is slow: a guard timer hands the job back to the role at its
    give-up time, and the worker may abandon it; either way the job is
    detached and the query's context is freed when sb_db finally calls
    back (it always does, once). While a job waits, the loop keeps its
    context in the job's data slot (sb_worker_job_set_data). */
#ifndef SB_DB_LOOP_H_INCLUDED
#define SB_DB_LOOP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_db.h"
#include "sb_reactor.h"
#include "sb_worker.h"

typedef struct _sb_db_loop_t sb_db_loop_t;

/*  The answer to a job's query came while the job still waited: `*job_p`
    is the job, which the callee must end (sb_worker_job_done or _fail).
    `res` (borrowed, NULL on error) or `error` as for sb_db_cb_t; `arg` is
    the one given to sb_db_loop_job_query. */
typedef void (sb_db_loop_answer_fn) (sb_worker_job_t **job_p, const PGresult *res,
                                     const char *error, void *arg);

/*  The job's give-up time passed with no answer: `*job_p` is the job
    (already detached from its query), which the callee must end. */
typedef void (sb_db_loop_give_up_fn) (sb_worker_job_t **job_p, void *arg);

/*  Creates the connection to `conninfo` on `reactor` (borrowed; must
    outlive the loop) and starts connecting at once. Takes two of the
    reactor's timers. Returns NULL when out of memory or timers. */
sb_db_loop_t *sb_db_loop_new (sb_reactor_t *reactor, const char *conninfo) SB_MUST_USE;

/*  Detaches the jobs still waiting (they stay the worker's to abandon),
    stops watching the socket, closes the connection — every pending
    callback is called with error "shutting down", as sb_db_destroy does —
    and frees the timers. Nulls the caller's pointer. Idempotent. */
void sb_db_loop_destroy (sb_db_loop_t **self_p);

/*  Queues a parameterised query (as sb_db_query: `params` are copied, `cb`
    is called once with `arg`) and runs the connection on. Returns 0, or -1
    when the database queue is full (SB_MAX_DB_QUEUE): `cb` is then not
    called. */
int sb_db_loop_query (sb_db_loop_t *self, const char *sql, int nparams,
                      const char *const *params, sb_db_cb_t *cb, void *arg)
    SB_MUST_USE;

/*  Queues a query for `job` (borrowed; not yet answered): `answer` is
    called with the result if it comes while the job waits, `give_up` if
    the monotonic time `give_up_ms` (sb_clock_mono_ms) passes first; after
    either, or sb_db_loop_job_abandon, the job is no longer the loop's.
    Returns 0; -1 when out of memory; -2 when the database queue is full.
    On failure nothing is called and the job is still the caller's to end. */
int sb_db_loop_job_query (sb_db_loop_t *self, sb_worker_job_t *job, int64_t give_up_ms,
                          const char *sql, int nparams, const char *const *params,
                          sb_db_loop_answer_fn *answer, sb_db_loop_give_up_fn *give_up,
                          void *arg)
    SB_MUST_USE;

/*  The worker abandons `job`: if it waits on a query, detaches it (no
    callback will see it) and returns the `arg` given with that query, for
    the caller to free what it holds; NULL when the job waited on none.
    For a role's sb_worker_role_t abandon. */
void *sb_db_loop_job_abandon (sb_db_loop_t *self, sb_worker_job_t *job);

/*  How many jobs wait on a query now (for the role's own limit). */
size_t sb_db_loop_jobs (sb_db_loop_t *self);

#endif
