/*  broker/sb_gateways.h — the gateways the broker has heard from lately,
    so that a BROADCAST from one reaches all the others (and a worker's
    PUBLISH all of them).

    Gateways do not register: every well-formed message a gateway sends on
    the frontend (HEARTBEAT every SB_GATEWAY_HEARTBEAT_MS, REQUEST, CANCEL,
    ANSWER, BROADCAST) makes it known, or keeps it known, for the expiry
    period. A gateway silent that long, or one that said DISCONNECT, is
    forgotten and gets no more BROADCASTs until it is heard again.

    Bounded: at most `max_gateways` (≤ SB_MAX_GATEWAYS). A gateway heard
    while the table is full is refused (not remembered, so it gets no
    BROADCAST) rather than pushing out one that is alive. Pure data: it
    sends nothing.
*/
#ifndef SB_GATEWAYS_H_INCLUDED
#define SB_GATEWAYS_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_MAX_GATEWAYS         1024    /* gateways the broker remembers at once */

/*  Return codes of sb_gateways_touch. */
#define SB_GATEWAYS_KNOWN       0       /* heard before: its expiry moved on */
#define SB_GATEWAYS_ADDED       1       /* new: remembered from now on */
#define SB_GATEWAYS_FULL       -1       /* new, but the table is full: not remembered */

typedef struct _sb_gateways_t sb_gateways_t;

/*  Creates an empty table for at most `max_gateways` (clamped to
    1..SB_MAX_GATEWAYS); a gateway silent for `expiry_ms` expires. NULL
    when out of memory. */
sb_gateways_t *sb_gateways_new (size_t max_gateways, int64_t expiry_ms) SB_MUST_USE;

/*  Frees the table; nulls the caller's pointer. Idempotent. */
void sb_gateways_destroy (sb_gateways_t **self_p);

/*  Notes that the gateway with routing id `identity` (borrowed; copied
    when new) was heard at `now` (monotonic ms). Returns SB_GATEWAYS_KNOWN,
    SB_GATEWAYS_ADDED or SB_GATEWAYS_FULL. */
int sb_gateways_touch (sb_gateways_t *self, zframe_t *identity, int64_t now) SB_MUST_USE;

/*  Forgets the gateway (DISCONNECT, or it could not be sent to). Returns
    0, or -1 when it was not known. */
int sb_gateways_remove (sb_gateways_t *self, zframe_t *identity);

/*  Forgets every gateway not heard from since `now - expiry_ms`. Returns
    how many. */
size_t sb_gateways_expire (sb_gateways_t *self, int64_t now);

/*  Appends to `out` (a zlistx without destructor) the routing id of every
    gateway known now. The frames stay the table's: valid until the next
    call that changes it (remove, expire, touch). */
void sb_gateways_collect (sb_gateways_t *self, zlistx_t *out);

/*  Gateways known now. */
size_t sb_gateways_size (sb_gateways_t *self);

#endif
