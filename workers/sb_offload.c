/*  workers/sb_offload.c — the blocking-work thread pool of sb_offload.h.

    One mutex guards two rings: `todo` (submitted, not started) and `done`
    (finished, not yet reported). A pool thread takes the head of todo,
    runs it without the lock, appends it to done and adds 1 to the eventfd;
    the reactor sees the eventfd readable, the loop thread drains it and
    calls each done callback with the lock released. `inflight` counts a
    job from submit to its done callback, so neither ring can overflow
    (both hold SB_MAX_OFFLOAD_JOBS). */
#include "sb_offload.h"
#include "sb_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    sb_offload_work_fn *work;
    sb_offload_done_fn *done;
    void *arg;
} s_job_t;

typedef struct {
    s_job_t jobs [SB_MAX_OFFLOAD_JOBS];
    int head;                   /* oldest */
    int count;
} s_ring_t;

struct _sb_offload_t {
    sb_reactor_t *reactor;
    int efd;                    /* eventfd: finished jobs to report */
    pthread_mutex_t lock;
    pthread_cond_t wake;        /* todo grew, or stopping */
    s_ring_t todo;              /* under lock */
    s_ring_t done;              /* under lock */
    int inflight;               /* submitted, done not yet called (loop thread) */
    bool stopping;              /* under lock */
    int nthreads;
    pthread_t threads [SB_MAX_OFFLOAD_THREADS];
};

static void
s_push (s_ring_t *ring, s_job_t job)
{
    ring->jobs [(ring->head + ring->count) % SB_MAX_OFFLOAD_JOBS] = job;
    ring->count++;
}

static s_job_t
s_pop (s_ring_t *ring)
{
    s_job_t job = ring->jobs [ring->head];
    ring->head = (ring->head + 1) % SB_MAX_OFFLOAD_JOBS;
    ring->count--;
    return job;
}

static void *
s_thread (void *arg)
{
    sb_offload_t *self = arg;
    pthread_mutex_lock (&self->lock);
    while (true) {
        while (!self->stopping && self->todo.count == 0)
            pthread_cond_wait (&self->wake, &self->lock);
        if (self->stopping)
            break;
        s_job_t job = s_pop (&self->todo);
        pthread_mutex_unlock (&self->lock);
        job.work (job.arg);
        pthread_mutex_lock (&self->lock);
        s_push (&self->done, job);
        uint64_t one = 1;
        //  Cannot fail short of a counter overflow (2^64 - 2 jobs).
        ssize_t written = write (self->efd, &one, sizeof one);
        (void) written;
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

//  Reports every finished job: on the loop thread, without the lock.
static void
s_collect (sb_offload_t *self)
{
    uint64_t count;
    while (read (self->efd, &count, sizeof count) == (ssize_t) sizeof count)
        ;
    while (true) {
        pthread_mutex_lock (&self->lock);
        bool any = self->done.count > 0;
        s_job_t job = { 0 };
        if (any)
            job = s_pop (&self->done);
        pthread_mutex_unlock (&self->lock);
        if (!any)
            break;
        self->inflight--;
        job.done (job.arg, true);
    }
}

static void
s_on_ready (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    s_collect ((sb_offload_t *) arg);
}

sb_offload_t *
sb_offload_new (sb_reactor_t *reactor, int threads)
{
    if (!reactor || threads < 1 || threads > SB_MAX_OFFLOAD_THREADS)
        return NULL;
    sb_offload_t *self = calloc (1, sizeof (sb_offload_t));
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->efd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->efd < 0) {
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create (&self->threads [i], NULL, s_thread, self) != 0) {
            sb_log_error ("offload_thread_failed", "thread %d of %d: %s", i + 1, threads,
                          strerror (errno));
            sb_offload_destroy (&self);
            return NULL;
        }
        self->nthreads++;
    }
    if (sb_reactor_watch_fd (reactor, self->efd, ZMQ_POLLIN, s_on_ready, self)) {
        sb_offload_destroy (&self);
        return NULL;
    }
    return self;
}

void
sb_offload_destroy (sb_offload_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_offload_t *self = *self_p;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_broadcast (&self->wake);
    pthread_mutex_unlock (&self->lock);
    for (int i = 0; i < self->nthreads; i++)
        pthread_join (self->threads [i], NULL);
    //  The threads are gone: what finished is reported, what never
    //  started is told so.
    s_collect (self);
    while (self->todo.count > 0) {
        s_job_t job = s_pop (&self->todo);
        self->inflight--;
        job.done (job.arg, false);
    }
    sb_reactor_unwatch_fd (self->reactor, self->efd);
    close (self->efd);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
sb_offload_submit (sb_offload_t *self, sb_offload_work_fn *work, sb_offload_done_fn *done, void *arg)
{
    if (!work || !done || self->inflight >= SB_MAX_OFFLOAD_JOBS)
        return -1;
    pthread_mutex_lock (&self->lock);
    s_push (&self->todo, (s_job_t) { .work = work, .done = done, .arg = arg });
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
    self->inflight++;
    return 0;
}

int
sb_offload_pending (sb_offload_t *self)
{
    return self->inflight;
}
