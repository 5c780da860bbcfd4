/*  tests/38_workers_reactor.c — unit tests of the workers' event loop
    (workers/sb_reactor.c): raw fds, ZeroMQ sockets, timers, and changes to
    the registrations made from inside callbacks. */
#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/sb_clock.h"
#include "workers/sb_reactor.h"

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

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_fd_and_unwatch),
        cmocka_unit_test (test_timers),
        cmocka_unit_test (test_zmq_socket),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
