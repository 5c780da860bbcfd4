/*  tests/38_workers_offload.c — workers/sb_offload: an Argon2id hash
    (sb_password) runs on the pool while the reactor keeps serving a 5 ms
    timer (no gap between ticks as long as the hash); the done callback
    runs on the loop thread with the right result; jobs start in order;
    the in-flight limit refuses more; destroying the pool reports every
    job once (work that never started with ran = false). Synchronised on callbacks, with
    deadlines, no sleeps. */
#include "sb_offload.h"
#include "sb_clock.h"
#include "sb_password.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define S_TICK_MS       5           /* the loop's timer period */
#define S_WAIT_MS       60000       /* longest wait for a hash on a busy machine */

/*  One hash job. */
typedef struct {
    char encoded [SB_PASSWORD_ENCODED_MAX];
    int rc;
    int64_t started, finished;      /* monotonic ms, on the pool thread */
    bool done, ran;
    pthread_t done_thread;
} s_hash_job_t;

static void
s_hash (void *arg)
{
    s_hash_job_t *job = arg;
    const char *error = NULL;
    job->started = sb_clock_mono_ms ();
    job->rc = sb_password_hash ("a sign-in password", job->encoded, sizeof job->encoded, &error);
    job->finished = sb_clock_mono_ms ();
}

static void
s_hashed (void *arg, bool ran)
{
    s_hash_job_t *job = arg;
    job->done = true;
    job->ran = ran;
    job->done_thread = pthread_self ();
}

/*  The loop's timer: counts ticks and the longest gap between two. */
typedef struct {
    int id;
    int ticks;
    int64_t last, max_gap;
} s_ticker_t;

static void
s_tick (sb_reactor_t *reactor, void *arg)
{
    s_ticker_t *t = arg;
    int64_t now = sb_clock_mono_ms ();
    if (t->last && now - t->last > t->max_gap)
        t->max_gap = now - t->last;
    t->last = now;
    t->ticks++;
    sb_reactor_timer_set (reactor, t->id, now + S_TICK_MS);
}

static void
test_loop_serves_while_hashing (void **state)
{
    sb_reactor_t *reactor = sb_reactor_new ();
    sb_offload_t *pool = sb_offload_new (reactor, 1);
    assert_non_null (pool);
    s_ticker_t ticker = { 0 };
    ticker.id = sb_reactor_timer_new (reactor, s_tick, &ticker);
    assert_true (ticker.id >= 0);
    sb_reactor_timer_set (reactor, ticker.id, sb_clock_mono_ms ());

    s_hash_job_t job = { 0 };
    assert_int_equal (sb_offload_submit (pool, s_hash, s_hashed, &job), 0);
    assert_int_equal (sb_offload_pending (pool), 1);
    int64_t deadline = sb_clock_mono_ms () + S_WAIT_MS;
    while (!job.done && sb_clock_left_ms (deadline) > 0)
        assert_int_equal (sb_reactor_run_once (reactor, 100), 0);
    assert_true (job.done);
    assert_true (job.ran);
    assert_int_equal (job.rc, 0);
    assert_true (pthread_equal (job.done_thread, pthread_self ()));
    assert_int_equal (sb_offload_pending (pool), 0);
    const char *error = NULL;
    assert_int_equal (sb_password_verify (job.encoded, "a sign-in password", &error), SB_PASSWORD_MATCH);

    //  The loop kept turning during the hash: had the hash run on it, one
    //  gap would be at least the hash's whole duration.
    int64_t hash_ms = job.finished - job.started;
    print_message ("hash %lld ms, %d ticks, longest gap %lld ms\n", (long long) hash_ms,
                   ticker.ticks, (long long) ticker.max_gap);
    assert_true (hash_ms >= 4 * S_TICK_MS);
    assert_true (ticker.ticks >= 3);
    assert_true (ticker.max_gap < hash_ms);
    sb_offload_destroy (&pool);
    assert_null (pool);
    sb_offload_destroy (&pool);         //  idempotent
    sb_reactor_destroy (&reactor);
}

/*  A job that waits until the test opens a gate: holds the pool's one
    thread so later jobs queue. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open, entered;
} s_gate_t;

static s_gate_t s_gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };

static void
s_wait_gate (void *arg)
{
    pthread_mutex_lock (&s_gate.lock);
    s_gate.entered = true;
    pthread_cond_broadcast (&s_gate.cond);
    while (!s_gate.open)
        pthread_cond_wait (&s_gate.cond, &s_gate.lock);
    pthread_mutex_unlock (&s_gate.lock);
}

static int s_order [SB_MAX_OFFLOAD_JOBS + 2];
static int s_order_count;
static int s_not_run;

static void
s_nothing (void *arg)
{
}

static void
s_record (void *arg, bool ran)
{
    if (ran)
        s_order [s_order_count++] = (int) (intptr_t) arg;
    else
        s_not_run++;
}

static void
test_order_limit_and_destroy (void **state)
{
    sb_reactor_t *reactor = sb_reactor_new ();
    sb_offload_t *pool = sb_offload_new (reactor, 1);
    assert_non_null (pool);
    assert_null (sb_offload_new (reactor, 0));
    assert_null (sb_offload_new (reactor, SB_MAX_OFFLOAD_THREADS + 1));

    //  The gate holds the one thread; then the pool fills up.
    s_gate.open = s_gate.entered = false;
    assert_int_equal (sb_offload_submit (pool, s_wait_gate, s_record, (void *) (intptr_t) 0), 0);
    pthread_mutex_lock (&s_gate.lock);
    while (!s_gate.entered)
        pthread_cond_wait (&s_gate.cond, &s_gate.lock);
    pthread_mutex_unlock (&s_gate.lock);
    for (int i = 1; i < SB_MAX_OFFLOAD_JOBS; i++)
        assert_int_equal (sb_offload_submit (pool, s_nothing, s_record, (void *) (intptr_t) i), 0);
    assert_int_equal (sb_offload_submit (pool, s_nothing, s_record, NULL), -1);
    assert_int_equal (sb_offload_pending (pool), SB_MAX_OFFLOAD_JOBS);

    //  Open: every job runs, in the order submitted.
    pthread_mutex_lock (&s_gate.lock);
    s_gate.open = true;
    pthread_cond_broadcast (&s_gate.cond);
    pthread_mutex_unlock (&s_gate.lock);
    int64_t deadline = sb_clock_mono_ms () + 10000;
    while (s_order_count < SB_MAX_OFFLOAD_JOBS && sb_clock_left_ms (deadline) > 0)
        assert_int_equal (sb_reactor_run_once (reactor, 100), 0);
    assert_int_equal (s_order_count, SB_MAX_OFFLOAD_JOBS);
    for (int i = 0; i < SB_MAX_OFFLOAD_JOBS; i++)
        assert_int_equal (s_order [i], i);

    //  Destroyed with jobs queued behind a held one: every job is
    //  reported exactly once — the held one as ran, each queued one as
    //  ran or not run (whether the thread reaches it before destroy stops
    //  it is a race this test does not fix).
    s_gate.open = s_gate.entered = false;
    s_order_count = 0;
    s_not_run = 0;
    assert_int_equal (sb_offload_submit (pool, s_wait_gate, s_record, (void *) (intptr_t) 7), 0);
    pthread_mutex_lock (&s_gate.lock);
    while (!s_gate.entered)
        pthread_cond_wait (&s_gate.cond, &s_gate.lock);
    pthread_mutex_unlock (&s_gate.lock);
    for (int i = 0; i < 5; i++)
        assert_int_equal (sb_offload_submit (pool, s_nothing, s_record, (void *) (intptr_t) (8 + i)), 0);
    pthread_mutex_lock (&s_gate.lock);
    s_gate.open = true;
    pthread_cond_broadcast (&s_gate.cond);
    pthread_mutex_unlock (&s_gate.lock);
    sb_offload_destroy (&pool);
    assert_null (pool);
    assert_int_equal (s_order_count + s_not_run, 6);
    assert_true (s_order_count >= 1);
    for (int i = 0; i < s_order_count; i++)
        assert_int_equal (s_order [i], 7 + i);
    sb_reactor_destroy (&reactor);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_loop_serves_while_hashing),
        cmocka_unit_test (test_order_limit_and_destroy),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
