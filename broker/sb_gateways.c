/*  broker/sb_gateways.c — the gateways heard from lately, by routing id.
    See sb_gateways.h.

    Every frontend message passes through sb_gateways_touch, so the lookup
    key is built on the stack (hex of the routing id) and an allocation
    happens only for a gateway not seen before. */
#include "sb_gateways.h"
#include "sb_attr.h"

#include <string.h>

#define S_MAX_ROUTING_ID    255     /* ZeroMQ's longest routing id, bytes */

typedef struct {
    zframe_t *identity;             /* routing id on the frontend, owned */
    int64_t expires_at;             /* monotonic ms: forgotten when reached */
} s_gateway_t;

struct _sb_gateways_t {
    zhashx_t *gateways;             /* hex routing id → s_gateway_t *, owned */
    size_t max_gateways;            /* hard limit on entries */
    int64_t expiry_ms;              /* silence that makes a gateway expire */
};

static void
s_gateway_destroy (void **item_p)
{
    s_gateway_t *gateway = (s_gateway_t *) *item_p;
    if (!gateway)
        return;
    zframe_destroy (&gateway->identity);
    free (gateway);
    *item_p = NULL;
}

//  The table key of `identity` into `key` (2 * S_MAX_ROUTING_ID + 1 bytes).
//  Returns -1 for a frame that cannot be a routing id.
static int
s_key (zframe_t *identity, char *key)
{
    static const char hex [] = "0123456789abcdef";
    size_t size = identity? zframe_size (identity): 0;
    if (size == 0 || size > S_MAX_ROUTING_ID)
        return -1;
    const uint8_t *data = zframe_data (identity);
    for (size_t i = 0; i < size; i++) {
        key [2 * i] = hex [data [i] >> 4];
        key [2 * i + 1] = hex [data [i] & 0xf];
    }
    key [2 * size] = 0;
    return 0;
}

sb_gateways_t *
sb_gateways_new (size_t max_gateways, int64_t expiry_ms)
{
    sb_gateways_t *self = (sb_gateways_t *) calloc (1, sizeof (sb_gateways_t));
    if (!self)
        return NULL;
    self->gateways = zhashx_new ();
    if (!self->gateways) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->gateways, s_gateway_destroy);
    self->max_gateways = max_gateways < 1? 1
                       : max_gateways > SB_MAX_GATEWAYS? SB_MAX_GATEWAYS: max_gateways;
    self->expiry_ms = expiry_ms;
    return self;
}

void
sb_gateways_destroy (sb_gateways_t **self_p)
{
    sb_gateways_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->gateways);
    free (self);
    *self_p = NULL;
}

int
sb_gateways_touch (sb_gateways_t *self, zframe_t *identity, int64_t now)
{
    char key [2 * S_MAX_ROUTING_ID + 1];
    if (s_key (identity, key))
        return SB_GATEWAYS_FULL;
    s_gateway_t *gateway = (s_gateway_t *) zhashx_lookup (self->gateways, key);
    if (gateway) {
        gateway->expires_at = now + self->expiry_ms;
        return SB_GATEWAYS_KNOWN;
    }
    if (zhashx_size (self->gateways) >= self->max_gateways)
        return SB_GATEWAYS_FULL;
    gateway = (s_gateway_t *) calloc (1, sizeof (s_gateway_t));
    if (!gateway)
        return SB_GATEWAYS_FULL;
    gateway->identity = zframe_dup (identity);
    gateway->expires_at = now + self->expiry_ms;
    if (!gateway->identity || zhashx_insert (self->gateways, key, gateway)) {
        zframe_destroy (&gateway->identity);
        free (gateway);
        return SB_GATEWAYS_FULL;
    }
    return SB_GATEWAYS_ADDED;
}

int
sb_gateways_remove (sb_gateways_t *self, zframe_t *identity)
{
    char key [2 * S_MAX_ROUTING_ID + 1];
    if (s_key (identity, key) || !zhashx_lookup (self->gateways, key))
        return -1;
    zhashx_delete (self->gateways, key);
    return 0;
}

size_t
sb_gateways_expire (sb_gateways_t *self, int64_t now)
{
    //  Keys first: deleting while zhashx walks would break the walk
    zlistx_t *gone = NULL;
    for (s_gateway_t *gateway = (s_gateway_t *) zhashx_first (self->gateways); gateway;
         gateway = (s_gateway_t *) zhashx_next (self->gateways)) {
        if (gateway->expires_at > now)
            continue;
        if (!gone) {
            gone = zlistx_new ();
            if (!gone)
                return 0;       //  out of memory: the next pass tries again
        }
        zlistx_add_end (gone, sb_unconst (zhashx_cursor (self->gateways)));
    }
    if (!gone)
        return 0;
    size_t count = 0;
    //  The keys belong to the hash: copy each before deleting its entry
    for (const char *key = (const char *) zlistx_first (gone); key;
         key = (const char *) zlistx_next (gone)) {
        char copy [2 * S_MAX_ROUTING_ID + 1];
        snprintf (copy, sizeof copy, "%s", key);
        zhashx_delete (self->gateways, copy);
        count++;
    }
    zlistx_destroy (&gone);
    return count;
}

void
sb_gateways_collect (sb_gateways_t *self, zlistx_t *out)
{
    for (s_gateway_t *gateway = (s_gateway_t *) zhashx_first (self->gateways); gateway;
         gateway = (s_gateway_t *) zhashx_next (self->gateways))
        zlistx_add_end (out, gateway->identity);
}

size_t
sb_gateways_size (sb_gateways_t *self)
{
    return zhashx_size (self->gateways);
}
