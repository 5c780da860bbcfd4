/*  gateway/sb_origin.c — Origin, Host and Accept checks. */
#include "sb_origin.h"
#include "sb_log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *items [SB_MAX_ALLOWED_ENTRIES];   /* lowercase entries, owned */
    size_t count;                           /* entries in use */
    bool any;                               /* "*" was listed */
} s_list_t;

struct _sb_origin_t {
    s_list_t origins;                       /* --allowed-origins */
    s_list_t hosts;                         /* --allowed-hosts */
    char public_origin [SB_MAX_ORIGIN_LEN]; /* scheme://host[:port] of --public-url */
    char public_host [SB_MAX_ORIGIN_LEN];   /* host of --public-url */
};

static int
s_list_parse (s_list_t *list, const char *text, const char *option)
{
    const char *p = text? text: "";
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn (p, ", ");
        if (n == 0)
            break;
        if (n >= SB_MAX_ORIGIN_LEN || list->count == SB_MAX_ALLOWED_ENTRIES) {
            sb_log_error ("config_invalid", "--%s: an entry is longer than %d bytes or there are more than %d",
                          option, SB_MAX_ORIGIN_LEN - 1, SB_MAX_ALLOWED_ENTRIES);
            return -1;
        }
        if (n == 1 && *p == '*')
            list->any = true;
        else {
            char *item = strndup (p, n);
            if (!item)
                return -1;
            for (char *c = item; *c; c++)
                *c = (char) tolower ((unsigned char) *c);
            //  An origin is compared without a trailing slash.
            while (n > 1 && item [n - 1] == '/')
                item [--n] = 0;
            list->items [list->count++] = item;
        }
        p += n;
    }
    return 0;
}

static void
s_list_clear (s_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free (list->items [i]);
    list->count = 0;
}

static bool
s_list_has (const s_list_t *list, const char *text, size_t len)
{
    for (size_t i = 0; i < list->count; i++)
        if (strlen (list->items [i]) == len && strncasecmp (list->items [i], text, len) == 0)
            return true;
    return false;
}

//  The host part of "host[:port]" or "[v6]:port": sets *host_len, or
//  returns false when malformed.
static bool
s_host_part (const char *authority, size_t len, size_t *host_len)
{
    if (len == 0 || len >= SB_MAX_ORIGIN_LEN)
        return false;
    if (authority [0] == '[') {
        const char *close = memchr (authority, ']', len);
        if (!close)
            return false;
        *host_len = (size_t) (close - authority) + 1;
    }
    else {
        const char *colon = memchr (authority, ':', len);
        *host_len = colon? (size_t) (colon - authority): len;
    }
    if (*host_len == 0)
        return false;
    //  What follows the host must be empty or ":digits".
    const char *rest = authority + *host_len;
    size_t rest_len = len - *host_len;
    if (rest_len == 0)
        return true;
    if (rest [0] != ':' || rest_len == 1 || rest_len > 6)
        return false;
    for (size_t i = 1; i < rest_len; i++)
        if (!isdigit ((unsigned char) rest [i]))
            return false;
    for (size_t i = 0; i < *host_len; i++)
        if (!(isalnum ((unsigned char) authority [i]) || strchr ("-._[]:", authority [i])))
            return false;
    return true;
}

static bool
s_is_localhost (const char *host, size_t len)
{
    static const char *names [] = { "localhost", "127.0.0.1", "[::1]", NULL };
    for (int i = 0; names [i]; i++)
        if (strlen (names [i]) == len && strncasecmp (names [i], host, len) == 0)
            return true;
    return false;
}

sb_origin_t *
sb_origin_new (const char *allowed_origins, const char *allowed_hosts, const char *public_url)
{
    sb_origin_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    if (s_list_parse (&self->origins, allowed_origins, "allowed-origins")
    ||  s_list_parse (&self->hosts, allowed_hosts, "allowed-hosts")) {
        sb_origin_destroy (&self);
        return NULL;
    }
    //  scheme://authority[/path] → the origin and the host.
    const char *sep = strstr (public_url, "://");
    if (sep) {
        const char *authority = sep + 3;
        size_t alen = strcspn (authority, "/?#");
        size_t olen = (size_t) (authority - public_url) + alen;
        size_t hlen = 0;
        if (olen < sizeof self->public_origin && s_host_part (authority, alen, &hlen)) {
            for (size_t i = 0; i < olen; i++)
                self->public_origin [i] = (char) tolower ((unsigned char) public_url [i]);
            for (size_t i = 0; i < hlen; i++)
                self->public_host [i] = (char) tolower ((unsigned char) authority [i]);
        }
    }
    return self;
}

void
sb_origin_destroy (sb_origin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_origin_t *self = *self_p;
    s_list_clear (&self->origins);
    s_list_clear (&self->hosts);
    free (self);
    *self_p = NULL;
}

bool
sb_origin_host_ok (sb_origin_t *self, const char *host, size_t len)
{
    size_t host_len = 0;
    if (!host || !s_host_part (host, len, &host_len))
        return false;
    if (self->hosts.any || s_is_localhost (host, host_len))
        return true;
    if (*self->public_host && strlen (self->public_host) == host_len
    &&  strncasecmp (self->public_host, host, host_len) == 0)
        return true;
    return s_list_has (&self->hosts, host, host_len);
}

bool
sb_origin_origin_ok (sb_origin_t *self, const char *origin, size_t len,
                     const char *scheme, const char *host, size_t host_len)
{
    if (!origin)
        return true;
    if (self->origins.any)
        return true;
    if (len == 0 || len >= SB_MAX_ORIGIN_LEN)
        return false;
    while (len > 1 && origin [len - 1] == '/')
        len--;
    if (s_list_has (&self->origins, origin, len))
        return true;
    if (strlen (self->public_origin) == len && strncasecmp (self->public_origin, origin, len) == 0)
        return true;
    //  scheme://authority with nothing after it.
    const char *sep = memmem (origin, len, "://", 3);
    if (!sep)
        return false;
    size_t scheme_len = (size_t) (sep - origin);
    if (!((scheme_len == 4 && strncasecmp (origin, "http", 4) == 0)
       || (scheme_len == 5 && strncasecmp (origin, "https", 5) == 0)))
        return false;
    const char *authority = sep + 3;
    size_t alen = len - scheme_len - 3, hlen = 0;
    if (!s_host_part (authority, alen, &hlen))
        return false;
    if (s_is_localhost (authority, hlen))
        return true;
    //  Same origin: the page was served by this very host.
    return host && scheme && strlen (scheme) == scheme_len
        && strncasecmp (scheme, origin, scheme_len) == 0
        && host_len == alen && strncasecmp (host, authority, alen) == 0;
}

//  Is the q parameter of one media range zero?
static bool
s_q_zero (const char *params, size_t len)
{
    const char *p = params, *end = params + len;
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 && (p [0] == 'q' || p [0] == 'Q') && p [1] == '=') {
            p += 2;
            bool zero = p < end && *p == '0';
            if (zero)
                for (p++; p < end && *p != ';'; p++)
                    if (*p != '.' && *p != '0' && *p != ' ')
                        zero = false;
            return zero;
        }
        while (p < end && *p != ';')
            p++;
    }
    return false;
}

unsigned
sb_origin_accepts (const char *accept, size_t len)
{
    if (!accept)
        return SB_ACCEPT_JSON | SB_ACCEPT_SSE;
    unsigned bits = 0;
    const char *p = accept, *end = accept + len;
    while (p < end) {
        const char *comma = memchr (p, ',', (size_t) (end - p));
        const char *item_end = comma? comma: end;
        while (p < item_end && (*p == ' ' || *p == '\t'))
            p++;
        const char *semi = memchr (p, ';', (size_t) (item_end - p));
        const char *type_end = semi? semi: item_end;
        size_t n = (size_t) (type_end - p);
        while (n > 0 && (p [n - 1] == ' ' || p [n - 1] == '\t'))
            n--;
        if (!(semi && s_q_zero (semi, (size_t) (item_end - semi)))) {
            #define S_IS(lit) (n == sizeof lit - 1 && strncasecmp (p, lit, n) == 0)
            if (S_IS ("*/*"))
                bits |= SB_ACCEPT_JSON | SB_ACCEPT_SSE;
            else if (S_IS ("application/*") || S_IS ("application/json"))
                bits |= SB_ACCEPT_JSON;
            else if (S_IS ("text/*") || S_IS ("text/event-stream"))
                bits |= SB_ACCEPT_SSE;
            #undef S_IS
        }
        p = comma? comma + 1: end;
    }
    return bits;
}
