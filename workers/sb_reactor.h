/*  workers/sb_reactor.h — the worker's event loop: one zmq_poll over the
    broker socket, raw file descriptors that roles register (curl sockets,
    the libpq socket) and a small set of timers.

    Nothing here blocks except zmq_poll itself, which always waits with the
    nearest timer as its timeout. Callbacks may add, change or remove any
    registration (including their own) while being dispatched: the loop
    works on a snapshot of the poll set and looks each registration up again
    before calling it.

    ZeroMQ sockets signal edge-style: a socket callback must read until the
    socket has nothing left (the worker core does; see sb_worker.c). */
#ifndef SB_REACTOR_H_INCLUDED
#define SB_REACTOR_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_MAX_REACTOR_ITEMS    1024    /* sockets + fds watched at once */
#define SB_MAX_REACTOR_TIMERS   16      /* timers (one or two per component) */

typedef struct _sb_reactor_t sb_reactor_t;

/*  Called when a watched fd or socket is ready. `fd` is -1 for ZeroMQ
    sockets; `revents` holds ZMQ_POLLIN/ZMQ_POLLOUT/ZMQ_POLLERR bits
    (equal to POLLIN/POLLOUT/POLLERR). */
typedef void (sb_reactor_io_fn) (sb_reactor_t *reactor, int fd, short revents, void *arg);

/*  Called when a timer is due. The timer is disarmed before the call. */
typedef void (sb_reactor_timer_fn) (sb_reactor_t *reactor, void *arg);

/*  Creates an empty reactor. */
sb_reactor_t *sb_reactor_new (void) SB_MUST_USE;

/*  Destroys the reactor (not the sockets or fds it watched) and nulls the
    caller's pointer. Idempotent. */
void sb_reactor_destroy (sb_reactor_t **self_p);

/*  Watches ZeroMQ socket `zsock` (a zsock_t * or raw libzmq handle) for
    input. Returns 0, or -1 when SB_MAX_REACTOR_ITEMS is reached. */
int sb_reactor_watch_socket (sb_reactor_t *self, void *zsock,
                             sb_reactor_io_fn *fn, void *arg)
    SB_MUST_USE;

/*  Stops watching `zsock`. Unknown sockets are ignored. */
void sb_reactor_unwatch_socket (sb_reactor_t *self, void *zsock);

/*  Watches raw descriptor `fd` for `events` (ZMQ_POLLIN | ZMQ_POLLOUT).
    Watching an fd again replaces its events, callback and argument.
    Returns 0, or -1 when full or fd < 0. */
int sb_reactor_watch_fd (sb_reactor_t *self, int fd, short events,
                         sb_reactor_io_fn *fn, void *arg)
    SB_MUST_USE;

/*  Stops watching `fd`. Unknown fds are ignored. */
void sb_reactor_unwatch_fd (sb_reactor_t *self, int fd);

/*  Creates a disarmed timer. Returns its id (>= 0), or -1 when
    SB_MAX_REACTOR_TIMERS is reached. */
int sb_reactor_timer_new (sb_reactor_t *self, sb_reactor_timer_fn *fn, void *arg) SB_MUST_USE;

/*  Arms timer `id` to fire at monotonic time `due_ms` (sb_clock_mono_ms);
    a time in the past fires on the next turn. A negative `due_ms` disarms. */
void sb_reactor_timer_set (sb_reactor_t *self, int id, int64_t due_ms);

/*  Releases timer `id` (it will never fire again). */
void sb_reactor_timer_free (sb_reactor_t *self, int id);

/*  Runs one turn: waits at most `max_wait_ms` (and never past the nearest
    timer), dispatches ready items, then due timers. Returns 0, or -1 when
    zmq_poll failed for a reason other than a signal (EINTR returns 0). */
int sb_reactor_run_once (sb_reactor_t *self, int max_wait_ms) SB_MUST_USE;

#endif
