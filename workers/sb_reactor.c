/*  workers/sb_reactor.c — zmq_poll-based event loop for the workers.
    See sb_reactor.h for the contract. The registration table is small and
    searched linearly: a worker watches one socket plus about one fd per
    upstream connection it holds open, which is bounded by its credit. */
#include "sb_reactor.h"
#include "sb_clock.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    void *socket;               /* libzmq handle, or NULL for a raw fd */
    int fd;                     /* raw fd, or -1 for a socket */
    short events;               /* events wanted */
    sb_reactor_io_fn *fn;       /* called when ready */
    void *arg;                  /* passed to fn */
} s_item_t;

typedef struct {
    bool used;                  /* slot allocated by sb_reactor_timer_new */
    int64_t due_ms;             /* monotonic time to fire, -1 when disarmed */
    sb_reactor_timer_fn *fn;    /* called when due */
    void *arg;                  /* passed to fn */
} s_timer_t;

struct _sb_reactor_t {
    s_item_t items [SB_MAX_REACTOR_ITEMS];          /* current registrations */
    size_t nitems;                                  /* how many are used */
    zmq_pollitem_t poll [SB_MAX_REACTOR_ITEMS];     /* snapshot for one zmq_poll */
    s_timer_t timers [SB_MAX_REACTOR_TIMERS];       /* timer slots */
};

sb_reactor_t *
sb_reactor_new (void)
{
    sb_reactor_t *self = calloc (1, sizeof (sb_reactor_t));
    if (!self)
        return NULL;
    for (size_t i = 0; i < SB_MAX_REACTOR_TIMERS; i++)
        self->timers [i].due_ms = -1;
    return self;
}

void
sb_reactor_destroy (sb_reactor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

static s_item_t *
s_find (sb_reactor_t *self, void *socket, int fd)
{
    for (size_t i = 0; i < self->nitems; i++) {
        s_item_t *item = &self->items [i];
        if (socket ? item->socket == socket : (!item->socket && item->fd == fd))
            return item;
    }
    return NULL;
}

static void
s_remove (sb_reactor_t *self, s_item_t *item)
{
    size_t index = (size_t) (item - self->items);
    self->items [index] = self->items [self->nitems - 1];
    self->nitems--;
}

static int
s_watch (sb_reactor_t *self, void *socket, int fd, short events,
         sb_reactor_io_fn *fn, void *arg)
{
    s_item_t *item = s_find (self, socket, fd);
    if (!item) {
        if (self->nitems >= SB_MAX_REACTOR_ITEMS)
            return -1;
        item = &self->items [self->nitems++];
    }
    item->socket = socket;
    item->fd = socket ? -1 : fd;
    item->events = events;
    item->fn = fn;
    item->arg = arg;
    return 0;
}

int
sb_reactor_watch_socket (sb_reactor_t *self, void *zsock, sb_reactor_io_fn *fn, void *arg)
{
    void *handle = zsock_resolve (zsock);
    if (!handle)
        return -1;
    return s_watch (self, handle, -1, ZMQ_POLLIN, fn, arg);
}

void
sb_reactor_unwatch_socket (sb_reactor_t *self, void *zsock)
{
    void *handle = zsock_resolve (zsock);
    s_item_t *item = handle ? s_find (self, handle, -1) : NULL;
    if (item)
        s_remove (self, item);
}

int
sb_reactor_watch_fd (sb_reactor_t *self, int fd, short events,
                     sb_reactor_io_fn *fn, void *arg)
{
    if (fd < 0)
        return -1;
    return s_watch (self, NULL, fd, events, fn, arg);
}

void
sb_reactor_unwatch_fd (sb_reactor_t *self, int fd)
{
    s_item_t *item = fd >= 0 ? s_find (self, NULL, fd) : NULL;
    if (item)
        s_remove (self, item);
}

int
sb_reactor_timer_new (sb_reactor_t *self, sb_reactor_timer_fn *fn, void *arg)
{
    for (int i = 0; i < SB_MAX_REACTOR_TIMERS; i++) {
        s_timer_t *timer = &self->timers [i];
        if (!timer->used) {
            timer->used = true;
            timer->due_ms = -1;
            timer->fn = fn;
            timer->arg = arg;
            return i;
        }
    }
    return -1;
}

void
sb_reactor_timer_set (sb_reactor_t *self, int id, int64_t due_ms)
{
    if (id < 0 || id >= SB_MAX_REACTOR_TIMERS || !self->timers [id].used)
        return;
    self->timers [id].due_ms = due_ms < 0 ? -1 : due_ms;
}

void
sb_reactor_timer_free (sb_reactor_t *self, int id)
{
    if (id < 0 || id >= SB_MAX_REACTOR_TIMERS)
        return;
    memset (&self->timers [id], 0, sizeof (s_timer_t));
    self->timers [id].due_ms = -1;
}

int
sb_reactor_run_once (sb_reactor_t *self, int max_wait_ms)
{
    //  The wait ends at the nearest armed timer
    int64_t now = sb_clock_mono_ms ();
    long wait = max_wait_ms < 0 ? INT_MAX : max_wait_ms;
    for (size_t i = 0; i < SB_MAX_REACTOR_TIMERS; i++) {
        s_timer_t *timer = &self->timers [i];
        if (timer->used && timer->due_ms >= 0) {
            int64_t left = timer->due_ms - now;
            if (left < wait)
                wait = left < 0 ? 0 : (long) left;
        }
    }
    size_t npoll = self->nitems;
    for (size_t i = 0; i < npoll; i++) {
        self->poll [i] = (zmq_pollitem_t) {
            .socket = self->items [i].socket,
            .fd = self->items [i].fd,
            .events = self->items [i].events,
        };
    }
    int rc = zmq_poll (self->poll, (int) npoll, wait);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;

    //  Callbacks may change the table: look each item up again
    for (size_t i = 0; rc > 0 && i < npoll; i++) {
        zmq_pollitem_t *polled = &self->poll [i];
        if (!polled->revents)
            continue;
        s_item_t *item = s_find (self, polled->socket, polled->fd);
        if (item && item->fn)
            item->fn (self, item->fd, polled->revents, item->arg);
    }
    now = sb_clock_mono_ms ();
    for (size_t i = 0; i < SB_MAX_REACTOR_TIMERS; i++) {
        s_timer_t *timer = &self->timers [i];
        if (timer->used && timer->due_ms >= 0 && timer->due_ms <= now) {
            timer->due_ms = -1;
            timer->fn (self, timer->arg);
        }
    }
    return 0;
}
