/*  tests/sb_listed.h — the tools tools/list shows of a connector set:
    every tool but the "hidden" ones (sb_tool_hidden), in load order. For
    the tests that walk tools/list and its cursors. */
#ifndef SB_LISTED_H_INCLUDED
#define SB_LISTED_H_INCLUDED

#include "sb_connector.h"

//  The `k`-th tool tools/list shows, or NULL.
static inline const sb_tool_t *
sb_listed_at (sb_connectors_t *set, size_t k)
{
    for (size_t i = 0; i < sb_connectors_tool_count (set); i++) {
        const sb_tool_t *tool = sb_connectors_tool_at (set, i);
        if (!sb_tool_hidden (tool) && k-- == 0)
            return tool;
    }
    return NULL;
}

//  How many tools tools/list shows.
static inline size_t
sb_listed_count (sb_connectors_t *set)
{
    size_t count = 0;
    while (sb_listed_at (set, count))
        count++;
    return count;
}

#endif
