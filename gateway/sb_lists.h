/*  gateway/sb_lists.h — which tenants see their connectors' "hidden"
    tools and prompts (connectors/README.md): a tenant's tools/list and
    prompts/list change at run time when it shows or hides them, and its
    clients are told with notifications/tools/list_changed and
    prompts/list_changed (gateway/sb_notify.c).

    The conformance fixtures' two list-change tools
    (tests/fixtures/connectors/conformance.json: test_trigger_tool_change,
    test_trigger_prompt_change) are what shows and hides them today (no
    product connector has one; proto/PROTOCOL.md, "Broadcasts"); the
    table is per gateway, kept the same on every gateway by the broker's
    BROADCAST (topic SB_TOPIC_LISTS_CHANGED), best effort as log levels
    are. Nothing is stored: a gateway that starts (or restarts) shows
    every tenant no hidden entry until it hears a change.

    Bounded: at most SB_MAX_LISTS_TENANTS tenants show anything; showing
    for one more is refused (SB_LISTS_FULL), never an eviction. Hiding
    everything forgets the tenant. Pure data: no h2o, no sockets. */
#ifndef SB_LISTS_H_INCLUDED
#define SB_LISTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_MAX_LISTS_TENANTS    4096    /* tenants that show hidden entries, per gateway */
#define SB_LISTS_FULL           -1      /* sb_lists_set: the table holds SB_MAX_LISTS_TENANTS */

typedef struct _sb_lists_t sb_lists_t;

/*  A new, empty table (every tenant sees no hidden entry), or NULL. */
sb_lists_t *sb_lists_new (void) SB_MUST_USE;

/*  Frees the table; nulls the pointer. */
void sb_lists_destroy (sb_lists_t **self_p);

/*  The SB_LIST_TOOLS and SB_LIST_PROMPTS bits whose hidden entries
    `tenant` sees (0 for a tenant never shown anything). */
unsigned sb_lists_shown (sb_lists_t *self, const char *tenant);

/*  Shows (`on`) or hides the hidden entries of the lists in `which` for
    `tenant`. Returns the bits of `which` whose state changed (0: already
    so), or SB_LISTS_FULL when a new tenant does not fit (nothing changed). */
int sb_lists_set (sb_lists_t *self, const char *tenant, unsigned which, bool on) SB_MUST_USE;

/*  Tenants that show something now. */
size_t sb_lists_size (sb_lists_t *self);

#endif
