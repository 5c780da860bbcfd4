/*  workers/sb_ssrf.c — the SSRF guard (see sb_ssrf.h): the address
    classification, the allow-list (IPv4 kept as ::ffff:a.b.c.d, so one
    comparison serves both families), and the curl hooks. */
#include "sb_ssrf.h"
#include "sb_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_OPTION    64      /* bytes of the option's name */

struct _sb_ssrf_t {
    struct in6_addr allowed [SB_SSRF_MAX_ALLOWED];  /* the allow-list, IPv4 as ::ffff:a.b.c.d */
    size_t allowed_count;
    char option [S_MAX_OPTION];                     /* "--cimd-allow-hosts", for sentences */
};

//  True when IPv4 address `a` (host order) is public unicast.
static bool
s_public_v4 (uint32_t a)
{
    return !((a >> 24) == 0                         //  0.0.0.0/8 "this network"
          || (a >> 24) == 10                        //  10/8 private
          || (a >> 24) == 127                       //  127/8 loopback
          || (a & 0xffc00000u) == 0x64400000u       //  100.64/10 CGNAT
          || (a & 0xffff0000u) == 0xa9fe0000u       //  169.254/16 link-local, cloud metadata
          || (a & 0xfff00000u) == 0xac100000u       //  172.16/12 private
          || (a & 0xffff0000u) == 0xc0a80000u       //  192.168/16 private
          || (a & 0xffffff00u) == 0xc0000000u       //  192.0.0/24 IETF protocol assignments
          || (a & 0xffffff00u) == 0xc0000200u       //  192.0.2/24 documentation
          || (a & 0xfffe0000u) == 0xc6120000u       //  198.18/15 benchmarking
          || (a & 0xffffff00u) == 0xc6336400u       //  198.51.100/24 documentation
          || (a & 0xffffff00u) == 0xcb007100u       //  203.0.113/24 documentation
          || a >= 0xe0000000u);                     //  224/4 multicast, 240/4 reserved, broadcast
}

static uint32_t
s_v4_at (const uint8_t *b)
{
    return (uint32_t) b [0] << 24 | (uint32_t) b [1] << 16 | (uint32_t) b [2] << 8 | b [3];
}

//  True when IPv6 address `b` is public unicast; embedded IPv4 addresses
//  (mapped, NAT64, 6to4) are judged as IPv4.
static bool
s_public_v6 (const uint8_t b [16])
{
    static const uint8_t zero [12] = { 0 };
    if (memcmp (b, zero, 10) == 0 && b [10] == 0xff && b [11] == 0xff)
        return s_public_v4 (s_v4_at (b + 12));      //  ::ffff:a.b.c.d mapped
    if (memcmp (b, zero, 12) == 0)
        return false;                               //  ::, ::1, ::a.b.c.d compatible
    if (b [0] == 0x00 && b [1] == 0x64 && b [2] == 0xff && b [3] == 0x9b) {
        if (memcmp (b + 4, zero, 8) == 0)
            return s_public_v4 (s_v4_at (b + 12));  //  64:ff9b::/96 NAT64
        return false;                               //  64:ff9b:1::/48 local NAT64
    }
    if (b [0] == 0x20 && b [1] == 0x02)
        return s_public_v4 (s_v4_at (b + 2));       //  2002::/16 6to4
    if (b [0] == 0x20 && b [1] == 0x01 && b [2] == 0x00 && b [3] == 0x00)
        return false;                               //  2001::/32 Teredo
    if (b [0] == 0x20 && b [1] == 0x01 && b [2] == 0x0d && b [3] == 0xb8)
        return false;                               //  2001:db8::/32 documentation
    if (b [0] == 0x01 && b [1] == 0x00 && memcmp (b + 2, zero, 6) == 0)
        return false;                               //  100::/64 discard
    return !((b [0] & 0xfe) == 0xfc                 //  fc00::/7 unique local
          || (b [0] == 0xfe && (b [1] & 0xc0) == 0x80)     //  fe80::/10 link-local
          || (b [0] == 0xfe && (b [1] & 0xc0) == 0xc0)     //  fec0::/10 site-local
          ||  b [0] == 0xff);                       //  ff00::/8 multicast
}

bool
sb_ssrf_address_allowed (const sb_ssrf_t *self, const struct sockaddr *addr)
{
    struct in6_addr as6;
    bool public;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *) addr;
        public = s_public_v4 (ntohl (in4->sin_addr.s_addr));
        memset (&as6, 0, sizeof as6);
        as6.s6_addr [10] = 0xff;
        as6.s6_addr [11] = 0xff;
        memcpy (as6.s6_addr + 12, &in4->sin_addr.s_addr, 4);
    }
    else
    if (addr->sa_family == AF_INET6) {
        as6 = ((const struct sockaddr_in6 *) addr)->sin6_addr;
        public = s_public_v6 (as6.s6_addr);
    }
    else
        return false;
    if (public)
        return true;
    for (size_t at = 0; self && at < self->allowed_count; at++)
        if (memcmp (&self->allowed [at], &as6, sizeof as6) == 0)
            return true;
    return false;
}

bool
sb_ssrf_text_allowed (const sb_ssrf_t *self, const char *text)
{
    struct sockaddr_storage addr;
    memset (&addr, 0, sizeof addr);
    struct sockaddr_in *in4 = (struct sockaddr_in *) &addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &addr;
    if (inet_pton (AF_INET, text, &in4->sin_addr) == 1)
        in4->sin_family = AF_INET;
    else
    if (inet_pton (AF_INET6, text, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        return false;
    return sb_ssrf_address_allowed (self, (struct sockaddr *) &addr);
}

size_t
sb_ssrf_allowed_count (const sb_ssrf_t *self)
{
    return self? self->allowed_count: 0;
}

static void
s_address_text (const struct sockaddr *addr, char *text, size_t size)
{
    const void *raw = addr->sa_family == AF_INET
                    ? (const void *) &((const struct sockaddr_in *) addr)->sin_addr
                    : (const void *) &((const struct sockaddr_in6 *) addr)->sin6_addr;
    if ((addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    ||  !inet_ntop (addr->sa_family, raw, text, (socklen_t) size))
        snprintf (text, size, "(an address of family %d)", addr->sa_family);
}

//  CURLOPT_OPENSOCKETFUNCTION: the address curl resolved and is about to
//  connect to. A refusal makes curl try the next address, then fail; the
//  first refusal is kept, so the transfer is refused whatever follows.
static curl_socket_t
s_open_socket (void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    sb_ssrf_guard_t *guard = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN
    ||  !sb_ssrf_address_allowed (guard->ssrf, &address->addr)) {
        char text [INET6_ADDRSTRLEN + 32] = "";
        if (purpose == CURLSOCKTYPE_IPCXN)
            s_address_text (&address->addr, text, sizeof text);
        if (!guard->refused [0])
            snprintf (guard->refused, sizeof guard->refused,
                      "the address %s is not public (SSRF guard; see %s)", text,
                      guard->ssrf? guard->ssrf->option: "the allow-list");
        return CURL_SOCKET_BAD;
    }
    return socket (address->family, address->socktype, address->protocol);
}

void
sb_ssrf_guard_easy (const sb_ssrf_t *self, sb_ssrf_guard_t *guard, CURL *easy)
{
    guard->ssrf = self;
    guard->refused [0] = 0;
    curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (easy, CURLOPT_PROXY, "");             //  no proxy from the environment
    curl_easy_setopt (easy, CURLOPT_FRESH_CONNECT, 1L);     //  every connection passes the guard
    curl_easy_setopt (easy, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt (easy, CURLOPT_OPENSOCKETFUNCTION, s_open_socket);
    curl_easy_setopt (easy, CURLOPT_OPENSOCKETDATA, guard);
}

bool
sb_ssrf_guard_refused (sb_ssrf_guard_t *guard, CURL *easy)
{
    if (guard->refused [0])
        return true;
    //  The connected address once more, as curl reports it
    char *primary = NULL;
    curl_easy_getinfo (easy, CURLINFO_PRIMARY_IP, &primary);
    if (primary && *primary && !sb_ssrf_text_allowed (guard->ssrf, primary)) {
        snprintf (guard->refused, sizeof guard->refused,
                  "the address %.64s is not public (SSRF guard)", primary);
        return true;
    }
    return false;
}

//  Reads the allow-list. Returns 0, or -1 (logged).
static int
s_parse_allowed (sb_ssrf_t *self, const char *list)
{
    const char *p = list? list: "";
    while (*p) {
        size_t n = strcspn (p, ",");
        char text [INET6_ADDRSTRLEN + 3];
        if (n >= sizeof text || self->allowed_count == SB_SSRF_MAX_ALLOWED) {
            sb_log_error ("config_invalid", "%s: at most %d IP addresses", self->option,
                          SB_SSRF_MAX_ALLOWED);
            return -1;
        }
        memcpy (text, p, n);
        text [n] = 0;
        char *addr = text;
        if (addr [0] == '[' && n > 2 && addr [n - 1] == ']') {
            addr [n - 1] = 0;
            addr++;
        }
        struct in6_addr *slot = &self->allowed [self->allowed_count];
        struct in_addr v4;
        if (inet_pton (AF_INET, addr, &v4) == 1) {
            memset (slot, 0, sizeof *slot);
            slot->s6_addr [10] = 0xff;
            slot->s6_addr [11] = 0xff;
            memcpy (slot->s6_addr + 12, &v4, 4);
        }
        else
        if (inet_pton (AF_INET6, addr, slot) != 1) {
            sb_log_error ("config_invalid", "%s: \"%s\" is not an IP address", self->option, text);
            return -1;
        }
        self->allowed_count++;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

sb_ssrf_t *
sb_ssrf_new (const char *allow_hosts, const char *option)
{
    sb_ssrf_t *self = calloc (1, sizeof (sb_ssrf_t));
    if (!self)
        return NULL;
    snprintf (self->option, sizeof self->option, "%s", option? option: "the allow-list");
    if (s_parse_allowed (self, allow_hosts)) {
        sb_ssrf_destroy (&self);
        return NULL;
    }
    if (self->allowed_count)
        sb_log_warn ("ssrf_allow_hosts", "%zu address(es) pass the SSRF guard (%s: for tests only)",
                     self->allowed_count, self->option);
    return self;
}

void
sb_ssrf_destroy (sb_ssrf_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}
