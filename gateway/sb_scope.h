/*  gateway/sb_scope.h — which OAuth scopes a /mcp request needs, whether a
    token's `scope` claim grants them, and the RFC 6750 §3.1 challenge a
    403 carries when it does not (MCP authorization 2025-11-25, "Scope
    challenge handling").

    Two scopes (oauth/sb_oauth.h, SB_OAUTH_SCOPES_SUPPORTED): mcp:tools for
    any use of /mcp (POST, GET, DELETE), and mcp:write as well for a
    tools/call of a tool whose annotations do not say readOnlyHint: true
    (a tool without annotations may change data). The endpoint
    (sb_endpoint.c) applies them; this module is pure string logic, so it
    is unit-tested directly (tests/13_scope_unit.c). */
#ifndef SB_SCOPE_H_INCLUDED
#define SB_SCOPE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"
#include "sb_oauth.h"

#define SB_SCOPE_TOOLS          SB_OAUTH_SCOPE_TOOLS        /* "mcp:tools": any /mcp request */
#define SB_SCOPE_WRITE          "mcp:write"                 /* and a call of a tool that writes */
#define SB_SCOPE_FOR_READ       SB_SCOPE_TOOLS
#define SB_SCOPE_FOR_WRITE      SB_SCOPE_TOOLS " " SB_SCOPE_WRITE
#define SB_MAX_SCOPE_CHALLENGE  2048    /* bytes of a WWW-Authenticate insufficient_scope value */

/*  The scopes a /mcp request needs, space-separated (static):
    SB_SCOPE_FOR_WRITE when `writes` (a tools/call of a tool not annotated
    readOnlyHint: true), else SB_SCOPE_FOR_READ. */
const char *sb_scope_needed (bool writes);

/*  True when `granted` (a token's scope claim: scope tokens separated by
    spaces, possibly empty) holds every scope of `needed`. Whole tokens
    compare: "mcp" or "mcp:toolsx" is not "mcp:tools". */
bool sb_scope_granted (const char *granted, const char *needed);

/*  Writes into `out` (`size` bytes) the challenge of a 403 for scopes
    `needed`:
        Bearer error="insufficient_scope", scope="<needed>",
        resource_metadata="<metadata_url>", error_description="<description>"
    Returns 0, or -1 (out holds "") when it does not fit or an argument
    holds a '"', a '\' or a control character (quoted-string, RFC 9110). */
int sb_scope_challenge (char *out, size_t size, const char *needed, const char *metadata_url,
                        const char *description)
    SB_MUST_USE;

#endif
