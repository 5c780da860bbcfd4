/*  tests/38_workers_reactor.c — unit tests of the workers' event loop
    (workers/sb_reactor.c): raw fds, ZeroMQ sockets, timers, and changes to
    the registrations made from inside callbacks; and, in process on that
    loop, the worker core's promote signal (sb_worker_job_promote): one
    NOTIFY with exactly the promote JSON per job run, however often a role
    calls it; and sb_worker_publish: the PUBLISH frames a role's calls send
    (in order, tenant/topic/payload intact, bounds refused unsent). */
#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include "sb_clock.h"
#include "sb_reactor.h"
#include "sb_worker.h"

#include <jansson.h>
#include <string.h>

typedef struct {
    int calls;              /* times the callback ran */
    short revents;          /* last events */
    int fd_to_drop;         /* fd the callback unwatches, -1: none */
} s_seen_t;

static void
s_on_io (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    s_seen_t *seen = arg;
    seen->calls++;
    seen->revents = revents;
    if (seen->fd_to_drop >= 0)
        sb_reactor_unwatch_fd (reactor, seen->fd_to_drop);
    if (fd >= 0) {
        char buf [64];
        if (read (fd, buf, sizeof buf) < 0)
            seen->calls += 1000;
    }
}

static void
s_on_timer (sb_reactor_t *reactor, void *arg)
{
    int64_t *fired_at = arg;
    *fired_at = sb_clock_mono_ms ();
}

static void
test_fd_and_unwatch (void **state)
{
    sb_reactor_t *reactor = sb_reactor_new ();
    assert_non_null (reactor);
    int a [2], b [2];
    assert_int_equal (pipe (a), 0);
    assert_int_equal (pipe (b), 0);
    s_seen_t seen_a = { .fd_to_drop = b [0] }, seen_b = { .fd_to_drop = -1 };
    assert_int_equal (sb_reactor_watch_fd (reactor, a [0], ZMQ_POLLIN, s_on_io, &seen_a), 0);
    assert_int_equal (sb_reactor_watch_fd (reactor, b [0], ZMQ_POLLIN, s_on_io, &seen_b), 0);
    //  Both ready in the same turn; a's callback unwatches b before b's turn
    assert_int_equal (write (a [1], "x", 1), 1);
    assert_int_equal (write (b [1], "y", 1), 1);
    assert_int_equal (sb_reactor_run_once (reactor, 1000), 0);
    assert_int_equal (seen_a.calls, 1);
    assert_true (seen_a.revents & ZMQ_POLLIN);
    assert_int_equal (seen_b.calls, 0);
    //  Nothing ready: the wait ends at max_wait_ms
    int64_t start = sb_clock_mono_ms ();
    assert_int_equal (sb_reactor_run_once (reactor, 50), 0);
    assert_true (sb_clock_mono_ms () - start >= 40);
    assert_int_equal (seen_a.calls, 1);
    //  Watching again replaces, not duplicates
    assert_int_equal (sb_reactor_watch_fd (reactor, a [0], ZMQ_POLLIN, s_on_io, &seen_b), 0);
    assert_int_equal (write (a [1], "z", 1), 1);
    assert_int_equal (sb_reactor_run_once (reactor, 1000), 0);
    assert_int_equal (seen_a.calls, 1);
    assert_int_equal (seen_b.calls, 1);
    assert_int_equal (sb_reactor_watch_fd (reactor, -1, ZMQ_POLLIN, s_on_io, NULL), -1);
    sb_reactor_destroy (&reactor);
    assert_null (reactor);
    sb_reactor_destroy (&reactor);
    close (a [0]); close (a [1]); close (b [0]); close (b [1]);
}

static void
test_timers (void **state)
{
    sb_reactor_t *reactor = sb_reactor_new ();
    int64_t fired_1 = 0, fired_2 = 0, fired_3 = 0;
    int t1 = sb_reactor_timer_new (reactor, s_on_timer, &fired_1);
    int t2 = sb_reactor_timer_new (reactor, s_on_timer, &fired_2);
    int t3 = sb_reactor_timer_new (reactor, s_on_timer, &fired_3);
    assert_true (t1 >= 0 && t2 >= 0 && t3 >= 0);
    int64_t start = sb_clock_mono_ms ();
    sb_reactor_timer_set (reactor, t1, start + 80);
    sb_reactor_timer_set (reactor, t2, start + 20);
    sb_reactor_timer_set (reactor, t3, start + 10);
    sb_reactor_timer_set (reactor, t3, -1);       // disarmed: never fires
    while (!fired_1)
        assert_int_equal (sb_reactor_run_once (reactor, -1), 0);   // waits on timers only
    assert_true (fired_2 >= start + 20 && fired_2 < fired_1);
    assert_true (fired_1 >= start + 80);
    assert_int_equal (fired_3, 0);
    //  A fired timer is disarmed
    fired_1 = 0;
    assert_int_equal (sb_reactor_run_once (reactor, 30), 0);
    assert_int_equal (fired_1, 0);
    sb_reactor_timer_free (reactor, t1);
    sb_reactor_timer_set (reactor, t1, start);    // freed: ignored
    assert_int_equal (sb_reactor_run_once (reactor, 0), 0);
    assert_int_equal (fired_1, 0);
    //  The table is bounded
    int made = 0;
    while (sb_reactor_timer_new (reactor, s_on_timer, &fired_1) >= 0)
        made++;
    assert_int_equal (made, SB_MAX_REACTOR_TIMERS - 2);
    sb_reactor_destroy (&reactor);
}

static void
test_zmq_socket (void **state)
{
    sb_reactor_t *reactor = sb_reactor_new ();
    zsock_t *pull = zsock_new_pull ("inproc://reactor-test");
    zsock_t *push = zsock_new_push ("inproc://reactor-test");
    s_seen_t seen = { .fd_to_drop = -1 };
    assert_int_equal (sb_reactor_watch_socket (reactor, pull, s_on_io, &seen), 0);
    zstr_send (push, "hello");
    while (seen.calls == 0)
        assert_int_equal (sb_reactor_run_once (reactor, 1000), 0);
    assert_int_equal (seen.calls, 1);
    char *text = zstr_recv (pull);
    assert_string_equal (text, "hello");
    zstr_free (&text);
    sb_reactor_unwatch_socket (reactor, pull);
    zstr_send (push, "again");
    assert_int_equal (sb_reactor_run_once (reactor, 50), 0);
    assert_int_equal (seen.calls, 1);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    sb_reactor_destroy (&reactor);
}

//  ---------------------------------------------------------------------
//  The promote signal, with the broker side on the worker's own loop

#define PROMOTE_JOBS    2       /* jobs sent; each must promote once */

typedef struct {
    zsock_t *router;            /* the broker's side */
    sb_worker_t *worker;        /* the worker under test */
    int64_t deadline;           /* the test gives up (and stops the worker) then */
    int watch;                  /* timer that reads the router too */
    int jobs_sent;              /* JOBs sent after READY */
    int results;                /* RESULTs received */
    int notifies [PROMOTE_JOBS];/* NOTIFYs received per job */
    char *notification [PROMOTE_JOBS];  /* the last one's JSON */
    int promote_rc [PROMOTE_JOBS][3];   /* what three calls returned */
    int calls;                  /* jobs the role started */
    bool timed_out;             /* the deadline passed */
} s_promote_test_t;

//  The role: promotes three times, then answers.
static void
s_promote_start (void *state, sb_worker_job_t *job)
{
    s_promote_test_t *test = state;
    int index = test->calls++;
    for (int i = 0; i < 3 && index < PROMOTE_JOBS; i++)
        test->promote_rc [index][i] = sb_worker_job_promote (job);
    sb_worker_job_done (&job, SB_STATUS_OK, "{}");
}

static void
s_promote_abandon (void *state, sb_worker_job_t *job)
{
}

static const sb_worker_role_t s_promote_role = { s_promote_start, s_promote_abandon };

//  Reads everything the worker sent: READY → the jobs, NOTIFY and RESULT
//  counted; stops the worker once every job has its result.
static void
s_promote_broker (s_promote_test_t *test)
{
    while (zsock_events (test->router) & ZMQ_POLLIN) {
        zframe_t *from = NULL;
        sb_msg_t msg = { 0 };
        if (sb_msg_recv (test->router, &msg, &from) != SB_MSG_OK) {
            zframe_destroy (&from);
            sb_msg_reset (&msg);
            continue;
        }
        if (msg.command == SB_CMD_READY) {
            for (; test->jobs_sent < PROMOTE_JOBS; test->jobs_sent++) {
                sb_job_t spec = { .op = "tools/call", .tool = "t", .args = "{}" };
                sb_msg_t job = { 0 };
                job.command = SB_CMD_JOB;
                snprintf (job.corr_id, sizeof job.corr_id, "promote-%d", test->jobs_sent);
                snprintf (job.tenant, sizeof job.tenant, "demo");
                job.timeout_ms = 5000;
                job.attempt = 1;
                job.payload = sb_job_encode (&spec);
                assert_non_null (job.payload);
                assert_int_equal (sb_msg_send (test->router, &job, from), 0);
                sb_msg_reset (&job);
            }
        }
        int index = -1;
        if (sscanf (msg.corr_id, "promote-%d", &index) != 1 || index < 0 || index >= PROMOTE_JOBS)
            index = -1;
        if (msg.command == SB_CMD_NOTIFY && index >= 0 && msg.payload) {
            sb_job_result_t note = { 0 };
            assert_int_equal (sb_job_result_decode (zframe_data (msg.payload),
                                                    zframe_size (msg.payload), &note), 0);
            test->notifies [index]++;
            free (test->notification [index]);
            test->notification [index] = note.result;
            note.result = NULL;
            sb_job_result_clear (&note);
        }
        if (msg.command == SB_CMD_RESULT && index >= 0 && ++test->results == PROMOTE_JOBS)
            sb_worker_stop (test->worker);
        zframe_destroy (&from);
        sb_msg_reset (&msg);
    }
}

static void
s_on_promote_socket (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    s_promote_broker (arg);
}

//  Also reads on a timer (ZeroMQ signals edge-style) and enforces the deadline.
static void
s_on_promote_watch (sb_reactor_t *reactor, void *arg)
{
    s_promote_test_t *test = arg;
    s_promote_broker (test);
    if (sb_clock_mono_ms () >= test->deadline) {
        test->timed_out = true;
        sb_worker_stop (test->worker);
    }
    else
        sb_reactor_timer_set (reactor, test->watch, sb_clock_mono_ms () + 20);
}

static void
test_promote_once (void **state)
{
    s_promote_test_t test = { .deadline = sb_clock_mono_ms () + 10000 };
    test.router = zsock_new (ZMQ_ROUTER);
    assert_non_null (test.router);
    zsock_set_linger (test.router, 0);
    int port = zsock_bind (test.router, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    test.worker = sb_worker_new (endpoint, "promote-test", 4, 1000);
    assert_non_null (test.worker);
    sb_worker_set_role (test.worker, &s_promote_role, &test);
    sb_reactor_t *reactor = sb_worker_reactor (test.worker);
    assert_int_equal (sb_reactor_watch_socket (reactor, test.router, s_on_promote_socket, &test), 0);
    test.watch = sb_reactor_timer_new (reactor, s_on_promote_watch, &test);
    assert_true (test.watch >= 0);
    sb_reactor_timer_set (reactor, test.watch, sb_clock_mono_ms ());
    assert_int_equal (sb_worker_run (test.worker), 0);
    assert_false (test.timed_out);
    assert_int_equal (test.results, PROMOTE_JOBS);
    for (int i = 0; i < PROMOTE_JOBS; i++) {
        //  Every call returned 0; only the first one sent anything.
        for (int k = 0; k < 3; k++)
            assert_int_equal (test.promote_rc [i][k], 0);
        assert_int_equal (test.notifies [i], 1);
        assert_string_equal (test.notification [i], "{\"jsonrpc\":\"2.0\",\"method\":\"switchboard/promote\"}");
        assert_string_equal (test.notification [i], SB_PAYLOAD_PROMOTE_JSON);
        free (test.notification [i]);
    }
    //  No job: nothing to promote.
    assert_int_equal (sb_worker_job_promote (NULL), -1);
    sb_reactor_unwatch_socket (reactor, test.router);
    sb_reactor_timer_free (reactor, test.watch);
    sb_worker_destroy (&test.worker);
    zsock_destroy (&test.router);
}

//  ---------------------------------------------------------------------
//  sb_worker_publish (PROTOCOL.md "Webhooks"): a role publishes from a job

#define PUBLISH_SENT    4       /* the role's publishes that must go out */
#define PUBLISH_CALLS   9       /* all its calls, refused ones included */

typedef struct {
    zsock_t *router;            /* the test's broker */
    sb_worker_t *worker;
    int watch;                  /* timer that polls the router and the deadline */
    int64_t deadline;
    bool job_sent;
    int rc [PUBLISH_CALLS];     /* what each call returned */
    bool started;               /* the role ran the job */
    sb_msg_t got [PUBLISH_SENT + 1];    /* the PUBLISHes received, in order */
    int publishes;              /* how many */
    bool result;                /* the job's RESULT came (after the publishes) */
    bool timed_out;
} s_publish_test_t;

static uint8_t s_publish_big [SB_MAX_BROADCAST_SIZE + 1];

static void
s_publish_start (void *state, sb_worker_job_t *job)
{
    s_publish_test_t *test = state;
    sb_worker_t *worker = sb_worker_job_worker (job);
    const char *uri = "switchboard://events/stripe";
    int i = 0;
    test->rc [i++] = sb_worker_publish (worker, "acme", "resource_updated", uri, strlen (uri));
    test->rc [i++] = sb_worker_publish (worker, "acme", "resource_updated", "a\0b\0c", 5);
    test->rc [i++] = sb_worker_publish (worker, "beta", "resource_updated", NULL, 0);
    test->rc [i++] = sb_worker_publish (worker, "acme", "t", s_publish_big, SB_MAX_BROADCAST_SIZE);
    //  Refused, nothing sent: too large, bad topic, bad tenant, a length
    //  without bytes, a topic one byte too long.
    test->rc [i++] = sb_worker_publish (worker, "acme", "t", s_publish_big, SB_MAX_BROADCAST_SIZE + 1);
    test->rc [i++] = sb_worker_publish (worker, "acme", "a b", uri, strlen (uri));
    test->rc [i++] = sb_worker_publish (worker, "", "resource_updated", uri, strlen (uri));
    test->rc [i++] = sb_worker_publish (worker, "acme", "resource_updated", NULL, 3);
    char topic [SB_MAX_TOPIC_LEN + 2];
    memset (topic, 'x', sizeof topic - 1);
    topic [sizeof topic - 1] = 0;
    test->rc [i++] = sb_worker_publish (worker, "acme", topic, uri, strlen (uri));
    assert_int_equal (i, PUBLISH_CALLS);
    test->started = true;
    sb_worker_job_done (&job, SB_STATUS_OK, "{}");
}

static void
s_publish_abandon (void *state, sb_worker_job_t *job)
{
}

static const sb_worker_role_t s_publish_role = { s_publish_start, s_publish_abandon };

//  READY → one job; PUBLISHes kept in order; the RESULT stops the worker.
static void
s_publish_broker (s_publish_test_t *test)
{
    while (zsock_events (test->router) & ZMQ_POLLIN) {
        zframe_t *from = NULL;
        sb_msg_t msg = { 0 };
        if (sb_msg_recv (test->router, &msg, &from) != SB_MSG_OK) {
            zframe_destroy (&from);
            sb_msg_reset (&msg);
            continue;
        }
        if (msg.command == SB_CMD_READY && !test->job_sent) {
            sb_job_t spec = { .op = "publish" };
            sb_msg_t job = { 0 };
            job.command = SB_CMD_JOB;
            snprintf (job.corr_id, sizeof job.corr_id, "publish-1");
            snprintf (job.tenant, sizeof job.tenant, "acme");
            job.timeout_ms = 5000;
            job.attempt = 1;
            job.payload = sb_job_encode (&spec);
            assert_non_null (job.payload);
            assert_int_equal (sb_msg_send (test->router, &job, from), 0);
            sb_msg_reset (&job);
            test->job_sent = true;
        }
        if (msg.command == SB_CMD_PUBLISH) {
            assert_false (test->result);        //  sent before the job's RESULT
            if (test->publishes <= PUBLISH_SENT) {
                test->got [test->publishes] = msg;
                memset (&msg, 0, sizeof msg);   //  moved
            }
            test->publishes++;
        }
        if (msg.command == SB_CMD_RESULT) {
            test->result = true;
            sb_worker_stop (test->worker);
        }
        zframe_destroy (&from);
        sb_msg_reset (&msg);
    }
}

static void
s_on_publish_socket (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    s_publish_broker (arg);
}

static void
s_on_publish_watch (sb_reactor_t *reactor, void *arg)
{
    s_publish_test_t *test = arg;
    s_publish_broker (test);
    if (sb_clock_mono_ms () >= test->deadline) {
        test->timed_out = true;
        sb_worker_stop (test->worker);
    }
    else
        sb_reactor_timer_set (reactor, test->watch, sb_clock_mono_ms () + 20);
}

static void
test_publish (void **state)
{
    for (size_t i = 0; i < sizeof s_publish_big; i++)
        s_publish_big [i] = (uint8_t) i;
    s_publish_test_t test = { .deadline = sb_clock_mono_ms () + 10000 };
    test.router = zsock_new (ZMQ_ROUTER);
    assert_non_null (test.router);
    zsock_set_linger (test.router, 0);
    int port = zsock_bind (test.router, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    test.worker = sb_worker_new (endpoint, "webhook", 4, 1000);
    assert_non_null (test.worker);
    //  No session with the broker yet: nothing can be sent.
    assert_int_equal (sb_worker_publish (test.worker, "acme", "resource_updated", "x", 1), -1);
    sb_worker_set_role (test.worker, &s_publish_role, &test);
    sb_reactor_t *reactor = sb_worker_reactor (test.worker);
    assert_int_equal (sb_reactor_watch_socket (reactor, test.router, s_on_publish_socket, &test), 0);
    test.watch = sb_reactor_timer_new (reactor, s_on_publish_watch, &test);
    assert_true (test.watch >= 0);
    sb_reactor_timer_set (reactor, test.watch, sb_clock_mono_ms ());
    assert_int_equal (sb_worker_run (test.worker), 0);
    assert_false (test.timed_out);
    assert_true (test.started);
    assert_true (test.result);

    const int want_rc [PUBLISH_CALLS] = { 0, 0, 0, 0, -1, -1, -1, -1, -1 };
    for (int i = 0; i < PUBLISH_CALLS; i++)
        if (test.rc [i] != want_rc [i])
            fail_msg ("publish call %d returned %d, not %d", i, test.rc [i], want_rc [i]);
    //  Exactly the accepted ones arrived, in the order sent, intact.
    assert_int_equal (test.publishes, PUBLISH_SENT);
    const char *uri = "switchboard://events/stripe";
    struct { const char *tenant, *topic; const void *bytes; size_t len; } want [PUBLISH_SENT] = {
        { "acme", "resource_updated", uri, strlen (uri) },
        { "acme", "resource_updated", "a\0b\0c", 5 },
        { "beta", "resource_updated", "", 0 },
        { "acme", "t", s_publish_big, SB_MAX_BROADCAST_SIZE },
    };
    for (int i = 0; i < PUBLISH_SENT; i++) {
        sb_msg_t *got = &test.got [i];
        assert_int_equal (got->command, SB_CMD_PUBLISH);
        assert_string_equal (got->tenant, want [i].tenant);
        assert_string_equal (got->topic, want [i].topic);
        assert_non_null (got->payload);
        assert_int_equal (zframe_size (got->payload), want [i].len);
        if (want [i].len)
            assert_memory_equal (zframe_data (got->payload), want [i].bytes, want [i].len);
        sb_msg_reset (got);
    }
    sb_reactor_unwatch_socket (reactor, test.router);
    sb_reactor_timer_free (reactor, test.watch);
    sb_worker_destroy (&test.worker);
    zsock_destroy (&test.router);
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_fd_and_unwatch),
        cmocka_unit_test (test_timers),
        cmocka_unit_test (test_zmq_socket),
        cmocka_unit_test (test_promote_once),
        cmocka_unit_test (test_publish),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
