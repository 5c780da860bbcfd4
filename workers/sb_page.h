/*  workers/sb_page.h — what the token role's HTML pages share (the
    sign-in page of sb_oauth_authorize.c, the connect pages of
    sb_connect.c): a page buffer with a size limit its caller names,
    HTML escaping, the headers every page is answered with, and the CSRF
    pair (a random cookie, and a form field that binds it to what the
    form carries).

        sb_page_t page = { .max = SB_MY_MAX_PAGE };
        sb_page_put (&page, "<p>");
        sb_page_esc (&page, text);
        char *body = sb_page_take (&page);      //  NULL: too long, no memory
        sb_page_answer (&job, 200, body, cookie, NULL);

    Pages run no script and cannot be framed: the Content-Security-Policy
    allows inline style only, frame-ancestors 'none', form-action 'self'
    (and the sources a caller adds); X-Frame-Options DENY; no-store. */
#ifndef SB_PAGE_H_INCLUDED
#define SB_PAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"
#include "sb_token_int.h"

#define SB_PAGE_MAX_ORIGIN      512     /* bytes of an origin (scheme://host:port) */
#define SB_PAGE_MAX_SOURCES     (SB_PAGE_MAX_ORIGIN + 16)   /* form-action sources a page adds */
#define SB_PAGE_RANDOM_BYTES    32      /* random bytes of a cookie (CSRF, a flow's), a state… */
#define SB_PAGE_RANDOM_LEN      43      /* their base64url text, and a CSRF field's */
#define SB_PAGE_MAX_COOKIE      128     /* bytes of a CSRF cookie's Set-Cookie line */

//  A page being written. Start it as { .max = limit }: a page that would
//  pass `max` bytes (with its NUL) fails, and is not sent.
typedef struct {
    char *data;
    size_t len;
    size_t size;
    size_t max;         /* bytes the page may take, its NUL included */
    bool failed;        /* out of memory or too long: the page is not sent */
} sb_page_t;

/*  Appends `len` bytes of `text`. Once the page failed, does nothing. */
void sb_page_put_n (sb_page_t *page, const char *text, size_t len);

/*  Appends the string `text`. */
void sb_page_put (sb_page_t *page, const char *text);

/*  Appends `text` HTML-escaped: safe in element content and in a quoted
    attribute. */
void sb_page_esc (sb_page_t *page, const char *text);

/*  The page's text (the caller frees it), or NULL when the page failed
    (its buffer freed). The page is left empty either way. */
char *sb_page_take (sb_page_t *page);

/*  True when `text` is UTF-8 (what a page body must be) without control
    characters but tab. */
bool sb_page_utf8_text (const char *text);

/*  The scheme://host[:port] of `uri` into `origin` (`size` bytes), or ""
    when it has no authority, one too long, or one with characters a CSP
    source must not hold. */
void sb_page_origin (const char *uri, char *origin, size_t size);

/*  Ends the job with the HTML page `body` (taken; NULL: the job fails):
    `status`, the headers every page has (Content-Type, Cache-Control
    no-store, X-Frame-Options DENY, X-Content-Type-Options nosniff,
    Referrer-Policy `referrer_policy` (NULL: no-referrer), the CSP),
    `cookie` (NULL: none) as Set-Cookie. `form_sources` ("" or NULL: none,
    at most SB_PAGE_MAX_SOURCES bytes) are added to form-action: browsers
    apply it to the redirects after a POST. */
void sb_page_answer (sb_worker_job_t **job_p, int status, char *body, const char *cookie,
                     const char *form_sources, const char *referrer_policy);

/*  A page whose form posts to itself and whose POST checks Origin: with
    Referrer-Policy no-referrer (the default, NULL) browsers send
    "Origin: null" on that POST; same-origin keeps the Origin and still
    sends no referrer (nor the URL's ticket) to another site. */
#define SB_PAGE_SAME_ORIGIN     "same-origin"

/*  Ends the job with 302 to `location` (borrowed; NULL: the job fails),
    Cache-Control no-store, Referrer-Policy no-referrer, and `cookie`
    (NULL: none) as Set-Cookie. */
void sb_page_redirect (sb_worker_job_t **job_p, const char *location, const char *cookie);

/*  True when the role's issuer is https: its cookies are __Host- cookies
    with Secure. An http issuer (loopback only: tests, development) gets
    plain names. */
bool sb_page_secure (const sb_token_role_t *self);

/*  The value of cookie `name` in `request` into `value` when it is
    SB_PAGE_RANDOM_LEN base64url characters (what sb_page_random_text
    makes). Returns 0, or -1 when there is none of that shape. */
int sb_page_cookie_get (const sb_http_request_t *request, const char *name,
                        char value [SB_PAGE_RANDOM_LEN + 1])
    SB_MUST_USE;

/*  SB_PAGE_RANDOM_BYTES random bytes as base64url into `out`. Returns 0, or
    -1 (no randomness, no memory). */
int sb_page_random_text (char out [SB_PAGE_RANDOM_LEN + 1])
    SB_MUST_USE;

/*  The Set-Cookie line of CSRF cookie `name` = `value` into `line`
    (SB_PAGE_MAX_COOKIE bytes): HttpOnly, SameSite=Strict, Path=/, and
    Secure when the issuer is https (`name` is then a __Host- name). */
void sb_page_csrf_cookie (const sb_token_role_t *self, const char *name, const char *value,
                          char line [SB_PAGE_MAX_COOKIE]);

/*  A form's CSRF field for cookie `value` and `bound` (what the form
    carries that the pair must not outlive: a client ID, a ticket):
    base64url (HMAC-SHA256 (subkey `purpose`, value "\n" bound)). Each page
    names its own purpose. A new string, or NULL (no secret, no memory). */
char *sb_page_csrf_field (sb_token_role_t *self, const char *purpose, const char *value,
                          const char *bound);

/*  True when a form's `field` is the CSRF field of `cookie` and `bound`
    for `purpose`, compared in constant time. False for a NULL argument. */
bool sb_page_csrf_ok (sb_token_role_t *self, const char *purpose, const char *cookie,
                      const char *bound, const char *field);

#endif
