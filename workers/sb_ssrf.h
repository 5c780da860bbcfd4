/*  workers/sb_ssrf.h — the SSRF guard of every request a worker makes to
    a URL someone else chose: a Client ID Metadata Document (sb_cimd.c), a
    tenant's webhook subscription (sb_wh_deliver.c).

    The guard judges the address curl is about to connect to, after name
    resolution (CURLOPT_OPENSOCKETFUNCTION), so a public name that
    resolves to 127.0.0.1 is refused as 127.0.0.1 is: loopback, private,
    link-local (169.254.169.254, the cloud metadata address), CGNAT,
    unique-local, multicast, unspecified, benchmarking and documentation
    ranges are refused, in IPv4, IPv6 and the IPv4-mapped, -compatible,
    NAT64 and 6to4 forms (Teredo is refused whole), unless the address is
    on the allow-list (tests). A transfer that met any refused address is
    refused, even when curl then connects to another, public one of the
    name's addresses; after the transfer the connected address
    (CURLINFO_PRIMARY_IP) is checked once more. Redirects are never
    followed, proxies from the environment are ignored (the proxy's
    address would be the one checked), and every transfer opens a fresh
    connection (a reused one was checked for another URL). */
#ifndef SB_SSRF_H_INCLUDED
#define SB_SSRF_H_INCLUDED

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "sb_attr.h"

#define SB_SSRF_MAX_ALLOWED     16      /* addresses on an allow-list */
#define SB_SSRF_MAX_WHY         256     /* bytes of a refusal sentence */

typedef struct _sb_ssrf_t sb_ssrf_t;

/*  One transfer's guard: what it refused ("" while nothing). Lives as
    long as the easy handle it was set on (the caller's, e.g. in its
    per-transfer struct). */
typedef struct {
    const sb_ssrf_t *ssrf;              /* the rules (borrowed) */
    char refused [SB_SSRF_MAX_WHY];     /* the refusal, "" when none */
} sb_ssrf_guard_t;

/*  Creates the rules with `allow_hosts`, a comma-separated list of IP
    addresses (IPv6 optionally in brackets) that pass although not public
    ("" or NULL: none); `option` names the option it came from, for the
    log and the refusals ("--cimd-allow-hosts"). Returns NULL with an
    error logged (config_invalid: not an address, more than
    SB_SSRF_MAX_ALLOWED) or when out of memory. Logs a warning when the
    list is not empty (it is for tests). */
sb_ssrf_t *sb_ssrf_new (const char *allow_hosts, const char *option) SB_MUST_USE;

/*  Frees and nulls the caller's pointer. Idempotent. */
void sb_ssrf_destroy (sb_ssrf_t **self_p);

/*  True when a connection to `addr` (AF_INET or AF_INET6) passes: a
    public unicast address, or one on the allow-list (`self` may be NULL:
    no allow-list). */
bool sb_ssrf_address_allowed (const sb_ssrf_t *self, const struct sockaddr *addr);

/*  The same for an address in text ("127.0.0.1", "::1"); false when it
    does not parse. */
bool sb_ssrf_text_allowed (const sb_ssrf_t *self, const char *text);

/*  How many addresses the allow-list holds. */
size_t sb_ssrf_allowed_count (const sb_ssrf_t *self);

/*  Arms `guard` for `easy` with the rules of `self` (borrowed; both must
    outlive the transfer): clears guard->refused and sets on `easy` the
    socket check, no redirects, no proxy, a fresh connection not kept
    for reuse. */
void sb_ssrf_guard_easy (const sb_ssrf_t *self, sb_ssrf_guard_t *guard, CURL *easy);

/*  After the transfer on `easy` ended: checks the connected address once
    more. Returns true when the guard refused the transfer (then
    guard->refused says why), false when it passed. */
bool sb_ssrf_guard_refused (sb_ssrf_guard_t *guard, CURL *easy);

#endif
