/*  workers/sb_cimd.h — Client ID Metadata Documents
    (draft-ietf-oauth-client-id-metadata-document; MCP authorization
    2025-11-25): a client whose client_id is an HTTPS URL publishes its
    metadata at that URL, and the token role fetches it. The gateway never
    does (DESIGN §2: it touches no third party on a client's behalf).

    A fetch runs on the worker's reactor (sb_curl_loop), https only, no
    redirects, at most SB_CIMD_MAX_BYTES in SB_CIMD_FETCH_MS, through the
    SSRF guard (workers/sb_ssrf.h) that checks the address curl is about to connect to (after
    resolution, so a public name that resolves to 127.0.0.1 is refused as
    127.0.0.1 is): loopback, private, link-local (169.254.169.254), CGNAT,
    unique-local, multicast, unspecified and documentation ranges are
    refused, in IPv4, IPv6 and the IPv4-mapped, -compatible and NAT64
    forms, unless the address is on --cimd-allow-hosts (tests). A name
    with any refused address is refused, even when curl then connects to
    a public one of its addresses. Proxies
    from the environment are ignored (the proxy's address would be the one
    checked).

    The document must be a JSON object whose client_id is the URL, byte
    for byte, with a client_name (MCP 2025-11-25 requires client_id,
    client_name and redirect_uris); it is checked with registration's rules
    (sb_oauth_register_validate); token_endpoint_auth_method must be
    "none" (its default here) — private_key_jwt is not supported and a
    shared secret in a public document is refused. A valid document is
    stored as the client's oauth_clients row (kind metadata_document,
    metadata_fetched_at, metadata_expires_at from Cache-Control max-age
    clamped to SB_CIMD_MIN_CACHE_S..SB_CIMD_MAX_CACHE_S, default
    SB_CIMD_DEFAULT_CACHE_S); the row is the cache (sb_oauth_clients.c
    decides when to refetch). Lookups of one URL while it is fetched or
    stored share that one fetch (single flight). */
#ifndef SB_CIMD_H_INCLUDED
#define SB_CIMD_H_INCLUDED

#include <stdbool.h>
#include <sys/socket.h>

#include "sb_attr.h"
#include "sb_db_loop.h"
#include "sb_reactor.h"
#include "sb_ssrf.h"
#include "sb_worker.h"

#define SB_CIMD_MAX_BYTES       5120    /* bytes of a document, at most (5 KiB) */
#define SB_CIMD_FETCH_MS        3000    /* a fetch, connect to last byte, at most */
#define SB_CIMD_CONNECT_MS      2000    /* of which the connection, at most */
#define SB_CIMD_MIN_CACHE_S     60      /* a document is reused at least this long */
#define SB_CIMD_MAX_CACHE_S     86400   /* and refetched after this long at most */
#define SB_CIMD_DEFAULT_CACHE_S 3600    /* without Cache-Control max-age */
#define SB_CIMD_MAX_STALE_S     86400   /* an unreachable host's cached document serves this long past its fetch */
#define SB_CIMD_MAX_FETCHES     32      /* fetches in flight at once; more are refused */
#define SB_CIMD_MAX_WAITERS     64      /* jobs sharing one fetch */
#define SB_CIMD_MAX_ALLOWED     SB_SSRF_MAX_ALLOWED     /* addresses on --cimd-allow-hosts */

typedef struct _sb_cimd_t sb_cimd_t;

//  How a resolution ended, for each job that waited on it.
typedef enum {
    SB_CIMD_STORED = 1,     /* fetched, valid and stored: read the row again */
    SB_CIMD_UNREACHABLE,    /* the host did not answer usefully (connect, TLS, time, 5xx):
                               a cached row may still serve, up to SB_CIMD_MAX_STALE_S */
    SB_CIMD_REFUSED         /* the URL or the document is not acceptable: unknown client */
} sb_cimd_outcome_t;

/*  Called once for each job that waited (unless it was abandoned): the
    callee must end `*job_p` (or start its next step) and owns `arg`.
    `why` is a sentence for the log when the outcome is not STORED. */
typedef void (sb_cimd_fn) (sb_worker_job_t **job_p, sb_cimd_outcome_t outcome, const char *why,
                           void *arg);

/*  Creates the fetcher on `reactor` storing through `db_loop` (both
    borrowed, outliving it; db_loop must be destroyed first, so a store in
    flight is answered before the fetcher goes). `allow_hosts` is a
    comma-separated list of IP addresses the SSRF guard lets through
    ("" or NULL: none); `ca_file` a PEM bundle to verify servers with
    instead of the system's ("" or NULL: the system's). Returns NULL with
    an error logged (a bad allow-list entry, out of memory or timers). */
sb_cimd_t *sb_cimd_new (sb_reactor_t *reactor, sb_db_loop_t *db_loop, const char *allow_hosts,
                        const char *ca_file)
    SB_MUST_USE;

/*  Forgets every job still waiting (their free_arg is called; no callback
    will see them): the role calls it before destroying the database loop,
    whose shutdown answers a store in flight. */
void sb_cimd_drop_waiters (sb_cimd_t *self);

/*  Stops every fetch and frees; jobs still waiting are the worker's (it
    abandons them first). Nulls the caller's pointer. Idempotent. */
void sb_cimd_destroy (sb_cimd_t **self_p);

/*  True when `client_id` is a URL this server treats as a metadata
    document's: https, a host, a path other than "/", no userinfo, no
    fragment, no "." or ".." segment, visible ASCII, at most
    SB_OAUTH_MAX_CLIENT_ID bytes. */
bool sb_cimd_url_valid (const char *client_id);

/*  Fetches, checks and stores the document at `url` for `job` (borrowed,
    not yet answered), joining a fetch of the same URL in flight; `cb`
    gets the outcome. When a fetch cannot start (SB_CIMD_MAX_FETCHES,
    SB_CIMD_MAX_WAITERS, memory) `cb` is called at once with
    SB_CIMD_UNREACHABLE. `free_arg` frees `arg` when the job is abandoned
    while it waits. */
void sb_cimd_resolve (sb_cimd_t *self, sb_worker_job_t *job, const char *url, sb_cimd_fn *cb,
                      void *arg, void (*free_arg) (void *arg));

/*  The worker abandons `job`: if it waits on a resolution, it no longer
    does (its free_arg is called). Returns true when it waited. */
bool sb_cimd_abandon (sb_cimd_t *self, sb_worker_job_t *job);

/*  True when the SSRF guard lets a connection to `addr` through: a public
    unicast address, or one on the allow-list. */
bool sb_cimd_address_allowed (const sb_cimd_t *self, const struct sockaddr *addr);

/*  Fetches started since the fetcher was created (tests and logs). */
unsigned long sb_cimd_fetches (const sb_cimd_t *self);

#endif
