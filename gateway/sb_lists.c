/*  gateway/sb_lists.c — which tenants see their hidden tools and prompts.
    See sb_lists.h. A hash of tenant → SB_LIST_* bits; a tenant whose bits
    fall to 0 is removed, so the table holds only those that show something. */
#include "sb_lists.h"
#include "sb_connector.h"

#include <czmq.h>
#include <stdint.h>

#define S_PRESENT   0x100u      /* set on every stored value, so none is NULL */

struct _sb_lists_t {
    zhashx_t *shown;            /* tenant → (void *) (S_PRESENT | SB_LIST_* bits) */
};

sb_lists_t *
sb_lists_new (void)
{
    sb_lists_t *self = calloc (1, sizeof *self);
    if (self && !(self->shown = zhashx_new ()))
        free (self), self = NULL;
    return self;
}

void
sb_lists_destroy (sb_lists_t **self_p)
{
    sb_lists_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->shown);
    free (self);
    *self_p = NULL;
}

unsigned
sb_lists_shown (sb_lists_t *self, const char *tenant)
{
    uintptr_t value = (uintptr_t) zhashx_lookup (self->shown, tenant);
    return (unsigned) (value & (SB_LIST_TOOLS | SB_LIST_PROMPTS));
}

int
sb_lists_set (sb_lists_t *self, const char *tenant, unsigned which, bool on)
{
    which &= SB_LIST_TOOLS | SB_LIST_PROMPTS;
    unsigned before = sb_lists_shown (self, tenant);
    unsigned after = on? before | which: before & ~which;
    if (after == before)
        return 0;
    if (after == 0)
        zhashx_delete (self->shown, tenant);
    else
    if (before)
        zhashx_update (self->shown, tenant, (void *) (uintptr_t) (S_PRESENT | after));
    else {
        if (zhashx_size (self->shown) >= SB_MAX_LISTS_TENANTS
        ||  zhashx_insert (self->shown, tenant, (void *) (uintptr_t) (S_PRESENT | after)))
            return SB_LISTS_FULL;
    }
    return (int) (before ^ after);
}

size_t
sb_lists_size (sb_lists_t *self)
{
    return zhashx_size (self->shown);
}
