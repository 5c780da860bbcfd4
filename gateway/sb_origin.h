/*  gateway/sb_origin.h — the request checks of the Streamable HTTP transport
    that protect a gateway from browsers and DNS rebinding: Origin against
    an allow-list, Host against an allow-list; and the Accept header.

    Pure string logic (no h2o), so it is unit-tested directly.

    Origin: a request without Origin (not from a browser) passes. Otherwise
    the origin must be listed in --allowed-origins ("*" allows any), or be
    the public URL's origin, or be a localhost form (http(s)://localhost,
    127.0.0.1 or [::1], any port), or equal "<scheme>://<Host>" of the
    request itself (same origin). Anything else is 403.

    Host: the request's Host (HTTP/2 :authority) must name 127.0.0.1,
    localhost, [::1], the public URL's host, or a host in --allowed-hosts
    ("*" allows any); the port is not compared. Missing or malformed is 403. */
#ifndef SB_ORIGIN_H_INCLUDED
#define SB_ORIGIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_MAX_ALLOWED_ENTRIES   64      /* entries per allow-list */
#define SB_MAX_ORIGIN_LEN        256     /* one origin or host, bytes */

/* Bits returned by sb_origin_accepts. */
#define SB_ACCEPT_JSON           0x01u   /* application/json is acceptable */
#define SB_ACCEPT_SSE            0x02u   /* text/event-stream is acceptable */

typedef struct _sb_origin_t sb_origin_t;

/*  Creates the checker from comma-separated lists (either may be NULL or
    empty) and the public URL. Returns NULL (after logging) when an entry is
    too long or there are too many. */
sb_origin_t *sb_origin_new (const char *allowed_origins, const char *allowed_hosts,
                            const char *public_url) SB_MUST_USE;

/*  Destroys it and nulls the caller's pointer. Idempotent. */
void sb_origin_destroy (sb_origin_t **self_p);

/*  True when `host` (len bytes; the Host header value) is allowed. */
bool sb_origin_host_ok (sb_origin_t *self, const char *host, size_t len);

/*  True when `origin` (len bytes; NULL = no Origin header) is allowed for a
    request to `host` over `scheme` ("http" or "https"). */
bool sb_origin_origin_ok (sb_origin_t *self, const char *origin, size_t len,
                          const char *scheme, const char *host, size_t host_len);

/*  Which of application/json and text/event-stream the Accept header value
    (len bytes; NULL = no header, which accepts anything) allows: a
    SB_ACCEPT_* mask. Wildcards count; q=0 excludes. */
unsigned sb_origin_accepts (const char *accept, size_t len);

#endif
