/*  broker/sb_inflight.c — the table of held jobs: a hash by correlation ID
    plus a binary min-heap on due time. See sb_inflight.h. */
#include "sb_inflight.h"

#include <string.h>

struct _sb_inflight_t {
    zhashx_t *by_corr_id;       /* corr_id → sb_flight_t *, borrowed (heap owns) */
    sb_flight_t **heap;         /* min-heap on `due`; owns the entries */
    size_t size;                /* entries in the heap */
    size_t capacity;            /* slots allocated in `heap` */
    size_t max_size;            /* hard limit on `size` */
};

static void
s_flight_free (sb_flight_t **flight_p)
{
    sb_flight_t *flight = *flight_p;
    if (!flight)
        return;
    zframe_destroy (&flight->gateway);
    zframe_destroy (&flight->payload);
    free (flight);
    *flight_p = NULL;
}

sb_inflight_t *
sb_inflight_new (size_t max_size)
{
    sb_inflight_t *self = (sb_inflight_t *) calloc (1, sizeof (sb_inflight_t));
    if (!self)
        return NULL;
    self->by_corr_id = zhashx_new ();
    self->max_size = max_size < SB_MAX_IN_FLIGHT ? max_size : SB_MAX_IN_FLIGHT;
    if (!self->by_corr_id) {
        free (self);
        return NULL;
    }
    return self;
}

void
sb_inflight_destroy (sb_inflight_t **self_p)
{
    sb_inflight_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        s_flight_free (&self->heap [i]);
    free (self->heap);
    zhashx_destroy (&self->by_corr_id);
    free (self);
    *self_p = NULL;
}

static bool
s_before (sb_inflight_t *self, size_t a, size_t b)
{
    return self->heap [a]->due < self->heap [b]->due;
}

static void
s_swap (sb_inflight_t *self, size_t a, size_t b)
{
    sb_flight_t *tmp = self->heap [a];
    self->heap [a] = self->heap [b];
    self->heap [b] = tmp;
    self->heap [a]->heap_index = a;
    self->heap [b]->heap_index = b;
}

static void
s_sift_up (sb_inflight_t *self, size_t index)
{
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!s_before (self, index, parent))
            break;
        s_swap (self, index, parent);
        index = parent;
    }
}

static void
s_sift_down (sb_inflight_t *self, size_t index)
{
    while (true) {
        size_t left = 2 * index + 1;
        size_t right = left + 1;
        size_t least = index;
        if (left < self->size && s_before (self, left, least))
            least = left;
        if (right < self->size && s_before (self, right, least))
            least = right;
        if (least == index)
            break;
        s_swap (self, index, least);
        index = least;
    }
}

sb_flight_t *
sb_inflight_add (sb_inflight_t *self, sb_msg_t *request,
                 zframe_t **gateway, int64_t deadline)
{
    if (self->size >= self->max_size)
        return NULL;
    if (self->size == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 64;
        if (capacity > self->max_size)
            capacity = self->max_size;
        sb_flight_t **heap = (sb_flight_t **) realloc (self->heap, capacity * sizeof (sb_flight_t *));
        if (!heap)
            return NULL;
        self->heap = heap;
        self->capacity = capacity;
    }
    sb_flight_t *flight = (sb_flight_t *) calloc (1, sizeof (sb_flight_t));
    if (!flight)
        return NULL;
    //  Field sizes match sb_msg_t's, and the codec NUL-terminates them
    memcpy (flight->corr_id, request->corr_id, sizeof (flight->corr_id));
    memcpy (flight->service, request->service, sizeof (flight->service));
    memcpy (flight->tenant, request->tenant, sizeof (flight->tenant));
    flight->flags = request->flags;
    flight->cost = request->cost;
    flight->deadline = deadline;
    flight->due = deadline;
    flight->state = SB_FLIGHT_QUEUED;
    flight->gateway = *gateway;
    *gateway = NULL;
    flight->payload = request->payload;
    request->payload = NULL;

    zhashx_insert (self->by_corr_id, flight->corr_id, flight);
    flight->heap_index = self->size;
    self->heap [self->size++] = flight;
    s_sift_up (self, flight->heap_index);
    return flight;
}

sb_flight_t *
sb_inflight_lookup (sb_inflight_t *self, const char *corr_id)
{
    return (sb_flight_t *) zhashx_lookup (self->by_corr_id, corr_id);
}

void
sb_inflight_remove (sb_inflight_t *self, sb_flight_t **flight_p)
{
    sb_flight_t *flight = *flight_p;
    if (!flight)
        return;
    assert (flight->heap_index < self->size && self->heap [flight->heap_index] == flight);
    size_t index = flight->heap_index;
    size_t last = self->size - 1;
    if (index != last) {
        s_swap (self, index, last);
        self->size--;
        s_sift_down (self, index);
        s_sift_up (self, index);
    }
    else
        self->size--;
    zhashx_delete (self->by_corr_id, flight->corr_id);
    s_flight_free (flight_p);
}

sb_flight_t *
sb_inflight_due (sb_inflight_t *self, int64_t now)
{
    if (self->size == 0 || self->heap [0]->due > now)
        return NULL;
    return self->heap [0];
}

int64_t
sb_inflight_next_due (sb_inflight_t *self)
{
    return self->size ? self->heap [0]->due : INT64_MAX;
}

void
sb_inflight_set_due (sb_inflight_t *self, sb_flight_t *flight, int64_t due)
{
    flight->due = due;
    s_sift_down (self, flight->heap_index);
    s_sift_up (self, flight->heap_index);
}

void
sb_inflight_collect (sb_inflight_t *self, const struct _sb_worker_t *worker, zlistx_t *out)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->heap [i]->worker == worker)
            zlistx_add_end (out, self->heap [i]);
}

void
sb_inflight_collect_all (sb_inflight_t *self, zlistx_t *out)
{
    for (size_t i = 0; i < self->size; i++)
        zlistx_add_end (out, self->heap [i]);
}

size_t
sb_inflight_size (sb_inflight_t *self)
{
    return self->size;
}
