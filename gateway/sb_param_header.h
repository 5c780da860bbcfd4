/*  gateway/sb_param_header.h — custom headers from tool parameters (MCP
    2026-07-28, SEP-2243). A tool's inputSchema may mark a property with
    "x-mcp-header": "Region"; a client then mirrors that argument into an
    `Mcp-Param-Region` header, as plain text or, when the value is not
    plain visible ASCII, as `=?base64?<standard base64>?=`, so that load
    balancers and gateways can route on it without reading the body.

    A server that reads the body must check every such header against the
    argument, or a proxy and the server would act on different values. A
    tools/call is refused (HTTP 400, JSON-RPC -32020 HeaderMismatch) when an
    annotated argument is given (not null) and its header is missing; when
    the header is given and the argument is not; when the header is sent
    twice, holds characters a header value may not (anything but visible
    ASCII, space and tab), is invalid base64 or differs from the argument.
    Strings compare byte for byte after decoding; integers and other
    numbers numerically ("42.0" is 42); booleans as "true" / "false".
    Headers no annotation names are ignored, as HTTP wants.

    Pure: the HTTP layer hands in (name, value) pairs; no h2o, no sockets.
    The annotations themselves are checked when connectors load
    (schema/sb_schema.h), so a published tool is one clients keep. */
#ifndef SB_PARAM_HEADER_H_INCLUDED
#define SB_PARAM_HEADER_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"
#include "sb_connector.h"

#define SB_PARAM_HEADER_PREFIX      "mcp-param-"    /* header names, compared without case */
#define SB_MAX_PARAM_HEADERS        64              /* Mcp-Param-* headers kept from one request */
#define SB_MAX_PARAM_HEADER_VALUE   4096            /* bytes of one Mcp-Param-* value, encoded */
#define SB_PARAM_HEADER_PROBLEM     256             /* bytes a problem sentence needs, at most */

/*  One Mcp-Param-* header: borrowed from the request, not NUL-terminated. */
typedef struct {
    const char *name;           /* the part after "Mcp-Param-" */
    size_t name_len;
    const char *value;          /* the value as sent */
    size_t value_len;
} sb_param_header_t;

/*  The Mcp-Param-* headers of one request; zero it before the first add. */
typedef struct {
    sb_param_header_t items [SB_MAX_PARAM_HEADERS];     /* in the order sent */
    size_t count;                                       /* items used */
    bool overflow;                                      /* more were sent than fit */
} sb_param_headers_t;

/*  Keeps the header `name`: `value` when its name starts with
    "Mcp-Param-" (any case) and has something after it; other headers are
    not kept. Past SB_MAX_PARAM_HEADERS, sets overflow instead (a check
    then refuses the request). The strings must outlive `self`. */
void sb_param_headers_add (sb_param_headers_t *self, const char *name, size_t name_len,
                           const char *value, size_t value_len);

/*  Checks the headers against the x-mcp-header properties of `schema` (a
    tool's inputSchema, annotations reached through "properties" alone)
    and `arguments` (the call's arguments object; NULL or not an object:
    none). `self` may be NULL (no headers). Returns 0 when they agree, or
    -1 with the sentence for the -32020 error in `problem` (`size` bytes;
    SB_PARAM_HEADER_PROBLEM always suffice), e.g. "Header mismatch: the
    Mcp-Param-Region header does not match arguments.region." Allocates
    nothing, so it cannot fail for want of memory. */
int sb_param_headers_check (const sb_param_headers_t *self, const json_t *schema,
                            const json_t *arguments, char *problem, size_t size)
    SB_MUST_USE;

/*  sb_param_headers_check for a tools/call's `params`: the tool named by
    params.name in `connectors`, and params.arguments. Returns 0 when there
    is nothing to check (no such tool, params malformed: the tools/call
    handler answers those) or the headers agree; else as above. */
int sb_param_headers_check_call (const sb_param_headers_t *self, sb_connectors_t *connectors,
                                 const json_t *params, char *problem, size_t size)
    SB_MUST_USE;

#endif
