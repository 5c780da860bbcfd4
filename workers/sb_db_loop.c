/*  workers/sb_db_loop.c — an asynchronous PostgreSQL connection on a
    worker's reactor (see sb_db_loop.h).

    Every path that calls into sb_db (the socket's callback, the timeout
    timer, a query queued for the caller) ends in s_sync, so the reactor
    always watches the socket sb_db has now, for what it wants now.

    A job's query has a context (s_wait_t) that sb_db owns until it calls
    back. While the job waits, the context is in `waits` (for the guard
    timer) and in the job's data slot (for abandon); detaching clears both
    and leaves the context for the callback to free. */
#include "sb_db_loop.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <assert.h>
#include <czmq.h>
#include <poll.h>
#include <stdlib.h>

typedef struct {
    sb_db_loop_t *owner;            /* the loop */
    sb_worker_job_t *job;           /* job to answer, NULL once answered or abandoned */
    void *handle;                   /* item in owner->waits while job is set */
    int64_t give_up_ms;             /* hand the job back at this monotonic time */
    sb_db_loop_answer_fn *answer;   /* the result came in time */
    sb_db_loop_give_up_fn *give_up; /* give_up_ms passed first */
    void *arg;                      /* for answer and give_up */
} s_wait_t;

struct _sb_db_loop_t {
    sb_reactor_t *reactor;      /* the worker's loop (borrowed) */
    sb_db_t *db;                /* asynchronous connection */
    int db_fd;                  /* fd currently watched, -1: none */
    int db_timer;               /* reactor timer for sb_db_timeout_ms */
    int guard_timer;            /* reactor timer for the nearest give-up */
    zlistx_t *waits;            /* s_wait_t whose job waits (not owned) */
};

//  ---------------------------------------------------------------------------
//  The database on the reactor

static void s_on_db_fd (sb_reactor_t *reactor, int fd, short revents, void *arg);

//  Brings the reactor's view of the database socket and timer up to date.
static void
s_sync (sb_db_loop_t *self)
{
    int fd = sb_db_fd (self->db);
    //  sb_db speaks poll(2) bits; zmq_poll wants ZMQ_POLL* (POLLOUT is 4, ZMQ_POLLOUT 2)
    short db_wants = fd >= 0 ? sb_db_wants (self->db) : 0;
    short wants = (db_wants & (POLLIN | ZMQ_POLLIN) ? ZMQ_POLLIN : 0)
                | (db_wants & (POLLOUT | ZMQ_POLLOUT) ? ZMQ_POLLOUT : 0);
    if (self->db_fd >= 0 && (self->db_fd != fd || !wants)) {
        sb_reactor_unwatch_fd (self->reactor, self->db_fd);
        self->db_fd = -1;
    }
    if (fd >= 0 && wants) {
        if (sb_reactor_watch_fd (self->reactor, fd, wants, s_on_db_fd, self) == 0)
            self->db_fd = fd;
        else
            sb_log_error ("reactor_full", "cannot watch the database socket");
    }
    int timeout = sb_db_timeout_ms (self->db);
    sb_reactor_timer_set (self->reactor, self->db_timer,
                          timeout < 0 ? -1 : sb_clock_mono_ms () + timeout);
}

//  Runs the connection on (connecting, sending, results, timeouts), then syncs.
static void
s_run (sb_db_loop_t *self)
{
    sb_db_process (self->db);
    s_sync (self);
}

static void
s_on_db_fd (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    s_run ((sb_db_loop_t *) arg);
}

static void
s_on_db_timer (sb_reactor_t *reactor, void *arg)
{
    s_run ((sb_db_loop_t *) arg);
}

//  ---------------------------------------------------------------------------
//  Jobs waiting for the database

static void
s_arm_guard (sb_db_loop_t *self)
{
    int64_t due = -1;
    for (s_wait_t *wait = zlistx_first (self->waits); wait; wait = zlistx_next (self->waits))
        if (due < 0 || wait->give_up_ms < due)
            due = wait->give_up_ms;
    sb_reactor_timer_set (self->reactor, self->guard_timer, due);
}

//  Detaches the wait from its job (the job is answered or gone); returns the job.
static sb_worker_job_t *
s_detach (s_wait_t *wait)
{
    sb_worker_job_t *job = wait->job;
    if (job) {
        sb_worker_job_set_data (job, NULL);
        wait->job = NULL;
    }
    if (wait->handle) {
        zlistx_delete (wait->owner->waits, wait->handle);
        wait->handle = NULL;
    }
    return job;
}

static void
s_on_job_result (const PGresult *res, const char *error, void *arg)
{
    s_wait_t *wait = arg;
    sb_worker_job_t *job = s_detach (wait);
    if (job)
        wait->answer (&job, res, error, wait->arg);
    free (wait);
}

static void
s_on_guard_timer (sb_reactor_t *reactor, void *arg)
{
    sb_db_loop_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    s_wait_t *wait = zlistx_first (self->waits);
    while (wait) {
        s_wait_t *next = zlistx_next (self->waits);
        if (wait->give_up_ms <= now) {
            sb_worker_job_t *job = s_detach (wait);     //  wait freed by its callback
            wait->give_up (&job, wait->arg);
        }
        wait = next;
    }
    s_arm_guard (self);
}

//  ---------------------------------------------------------------------------
//  Life cycle and queries

sb_db_loop_t *
sb_db_loop_new (sb_reactor_t *reactor, const char *conninfo)
{
    assert (reactor && conninfo);
    sb_db_loop_t *self = calloc (1, sizeof (sb_db_loop_t));
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->db_fd = -1;
    self->db_timer = sb_reactor_timer_new (reactor, s_on_db_timer, self);
    self->guard_timer = sb_reactor_timer_new (reactor, s_on_guard_timer, self);
    self->waits = zlistx_new ();
    self->db = sb_db_new (conninfo);
    if (self->db_timer < 0 || self->guard_timer < 0 || !self->waits || !self->db) {
        sb_db_loop_destroy (&self);
        return NULL;
    }
    s_run (self);                       //  start connecting now, not at the first query
    return self;
}

void
sb_db_loop_destroy (sb_db_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_db_loop_t *self = *self_p;
    //  Jobs still waiting are the worker's to abandon; detach them first
    s_wait_t *wait;
    while (self->waits && (wait = zlistx_first (self->waits)))
        s_detach (wait);
    if (self->db_fd >= 0)
        sb_reactor_unwatch_fd (self->reactor, self->db_fd);
    sb_db_destroy (&self->db);          //  calls back each pending query: frees waits
    zlistx_destroy (&self->waits);
    sb_reactor_timer_free (self->reactor, self->db_timer);
    sb_reactor_timer_free (self->reactor, self->guard_timer);
    free (self);
    *self_p = NULL;
}

int
sb_db_loop_query (sb_db_loop_t *self, const char *sql, int nparams,
                  const char *const *params, sb_db_cb_t *cb, void *arg)
{
    if (sb_db_query (self->db, sql, nparams, params, cb, arg))
        return -1;
    s_run (self);
    return 0;
}

int
sb_db_loop_job_query (sb_db_loop_t *self, sb_worker_job_t *job, int64_t give_up_ms,
                      const char *sql, int nparams, const char *const *params,
                      sb_db_loop_answer_fn *answer, sb_db_loop_give_up_fn *give_up,
                      void *arg)
{
    assert (job && answer && give_up);
    s_wait_t *wait = calloc (1, sizeof (s_wait_t));
    if (!wait)
        return -1;
    wait->owner = self;
    wait->job = job;
    wait->give_up_ms = give_up_ms;
    wait->answer = answer;
    wait->give_up = give_up;
    wait->arg = arg;
    if (sb_db_query (self->db, sql, nparams, params, s_on_job_result, wait)) {
        free (wait);
        return -2;
    }
    //  Listed before sb_db runs: it may call back at once (a broken connection)
    wait->handle = zlistx_add_end (self->waits, wait);
    sb_worker_job_set_data (job, wait);
    s_arm_guard (self);
    s_run (self);
    return 0;
}

void *
sb_db_loop_job_abandon (sb_db_loop_t *self, sb_worker_job_t *job)
{
    s_wait_t *wait = sb_worker_job_data (job);
    void *arg = NULL;
    if (wait) {
        arg = wait->arg;
        s_detach (wait);                //  freed when the database calls back
        s_arm_guard (self);
    }
    return arg;
}

size_t
sb_db_loop_jobs (sb_db_loop_t *self)
{
    return zlistx_size (self->waits);
}
