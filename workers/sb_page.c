/*  workers/sb_page.c — what the token role's HTML pages share: the page
    buffer, escaping, the headers of every page, cookies and the CSRF pair
    (sb_page.h). Written once for the sign-in page (sb_oauth_authorize.c)
    and the connect pages (sb_connect.c). */
#include "sb_page.h"
#include "sb_crypto.h"
#include "sb_oauth_form.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_PAGE_FIRST_SIZE      4096    /* bytes a page's buffer starts with */
#define SB_PAGE_MAX_CSP         (SB_PAGE_MAX_SOURCES + 192)    /* bytes of the CSP header */

//  ---------------------------------------------------------------------
//  The page

void
sb_page_put_n (sb_page_t *page, const char *text, size_t len)
{
    if (page->failed)
        return;
    if (page->len + len + 1 > page->max) {
        page->failed = true;
        return;
    }
    if (page->len + len + 1 > page->size) {
        size_t size = page->size? page->size: SB_PAGE_FIRST_SIZE;
        while (size < page->len + len + 1)
            size *= 2;
        char *data = realloc (page->data, size);
        if (!data) {
            page->failed = true;
            return;
        }
        page->data = data;
        page->size = size;
    }
    memcpy (page->data + page->len, text, len);
    page->len += len;
    page->data [page->len] = 0;
}

void
sb_page_put (sb_page_t *page, const char *text)
{
    sb_page_put_n (page, text, strlen (text));
}

void
sb_page_esc (sb_page_t *page, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
            case '&':  sb_page_put (page, "&amp;"); break;
            case '<':  sb_page_put (page, "&lt;"); break;
            case '>':  sb_page_put (page, "&gt;"); break;
            case '"':  sb_page_put (page, "&quot;"); break;
            case '\'': sb_page_put (page, "&#39;"); break;
            default:   sb_page_put_n (page, p, 1);
        }
    }
}

char *
sb_page_take (sb_page_t *page)
{
    char *data = page->data;
    if (page->failed) {
        free (data);
        data = NULL;
    }
    page->data = NULL;
    page->len = 0;
    page->size = 0;
    page->failed = false;
    return data;
}

bool
sb_page_utf8_text (const char *text)
{
    const unsigned char *p = (const unsigned char *) text;
    while (*p) {
        int follow = *p < 0x80? 0: (*p & 0xE0) == 0xC0? 1: (*p & 0xF0) == 0xE0? 2:
                     (*p & 0xF8) == 0xF0? 3: -1;
        if (follow < 0 || (*p < 0x20 && *p != '\t') || *p == 0x7F || *p == 0xC0 || *p == 0xC1
        ||  *p > 0xF4)
            return false;
        p++;
        for (int i = 0; i < follow; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

void
sb_page_origin (const char *uri, char *origin, size_t size)
{
    origin [0] = 0;
    const char *sep = strstr (uri, "://");
    if (!sep)
        return;
    size_t len = (size_t) (sep - uri) + 3;
    len += strcspn (sep + 3, "/?#");
    if (len == (size_t) (sep - uri) + 3 || len >= size)
        return;
    for (size_t i = 0; i < len; i++) {
        char c = uri [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
               || c == '.' || c == '-' || c == ':' || c == '/' || c == '[' || c == ']' || c == '+';
        if (!ok)
            return;
    }
    memcpy (origin, uri, len);
    origin [len] = 0;
}

void
sb_page_answer (sb_worker_job_t **job_p, int status, char *body, const char *cookie,
                const char *form_sources, const char *referrer_policy)
{
    char csp [SB_PAGE_MAX_CSP];
    bool sources = form_sources && *form_sources;
    int len = snprintf (csp, sizeof csp, "default-src 'none'; style-src 'unsafe-inline'; "
                        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'%s%s",
                        sources? " ": "", sources? form_sources: "");
    sb_http_response_t response = { .status = status };
    int rc = body && len > 0 && (size_t) len < sizeof csp? 0: -1;
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "content-type", "text/html; charset=utf-8");
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "cache-control", "no-store");
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "x-frame-options", "DENY");
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "x-content-type-options", "nosniff");
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "referrer-policy",
                                          referrer_policy? referrer_policy: "no-referrer");
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "content-security-policy", csp);
    if (rc == 0 && cookie)
        rc = sb_http_response_add_header (&response, "set-cookie", cookie);
    if (rc == 0)
        rc = sb_http_response_set_body (&response, body, strlen (body));
    free (body);
    if (rc) {
        sb_http_response_clear (&response);
        sb_worker_job_fail (job_p, "the page could not be built");
        return;
    }
    sb_token_http_answer (job_p, &response);
}

void
sb_page_redirect (sb_worker_job_t **job_p, const char *location, const char *cookie)
{
    sb_http_response_t response = { .status = 302 };
    int rc = location? 0: -1;
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "location", location);
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "cache-control", "no-store");
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "referrer-policy", "no-referrer");
    if (rc == 0 && cookie)
        rc = sb_http_response_add_header (&response, "set-cookie", cookie);
    if (rc == 0)
        rc = sb_http_response_set_body (&response, "", 0);
    if (rc) {
        sb_http_response_clear (&response);
        sb_worker_job_fail (job_p, "the redirect could not be built");
        return;
    }
    sb_token_http_answer (job_p, &response);
}

//  ---------------------------------------------------------------------
//  Cookies and the CSRF pair

bool
sb_page_secure (const sb_token_role_t *self)
{
    return strncmp (self->issuer, "https://", 8) == 0;
}

int
sb_page_cookie_get (const sb_http_request_t *request, const char *name,
                    char value [SB_PAGE_RANDOM_LEN + 1])
{
    const char *header = sb_http_request_header (request, "cookie");
    size_t name_len = strlen (name);
    for (const char *p = header; p && *p; ) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t len = strcspn (p, ";");
        if (len > name_len && strncmp (p, name, name_len) == 0 && p [name_len] == '=') {
            const char *v = p + name_len + 1;
            size_t v_len = len - name_len - 1;
            while (v_len && v [v_len - 1] == ' ')
                v_len--;
            if (v_len != SB_PAGE_RANDOM_LEN)
                return -1;
            for (size_t i = 0; i < v_len; i++)
                if (!sb_oauth_unreserved (v [i]) || v [i] == '.' || v [i] == '~')
                    return -1;
            memcpy (value, v, v_len);
            value [v_len] = 0;
            return 0;
        }
        p += len;
    }
    return -1;
}

int
sb_page_random_text (char out [SB_PAGE_RANDOM_LEN + 1])
{
    uint8_t raw [SB_PAGE_RANDOM_BYTES];
    if (sb_crypto_random (raw, sizeof raw))
        return -1;
    char *text = sb_base64url_encode (raw, sizeof raw);
    sb_crypto_wipe (raw, sizeof raw);
    if (!text || strlen (text) != SB_PAGE_RANDOM_LEN) {
        free (text);
        return -1;
    }
    memcpy (out, text, SB_PAGE_RANDOM_LEN + 1);
    sb_crypto_wipe (text, SB_PAGE_RANDOM_LEN);
    free (text);
    return 0;
}

void
sb_page_csrf_cookie (const sb_token_role_t *self, const char *name, const char *value,
                     char line [SB_PAGE_MAX_COOKIE])
{
    snprintf (line, SB_PAGE_MAX_COOKIE, "%s=%s;%s HttpOnly; SameSite=Strict; Path=/",
              name, value, sb_page_secure (self)? " Secure;": "");
}

char *
sb_page_csrf_field (sb_token_role_t *self, const char *purpose, const char *value,
                    const char *bound)
{
    uint8_t key [SB_TOKEN_SUBKEY_LEN];
    if (sb_token_subkey (self, purpose, key))
        return NULL;
    size_t value_len = strlen (value), bound_len = strlen (bound);
    char *text = malloc (value_len + 1 + bound_len);
    char *field = NULL;
    if (text) {
        memcpy (text, value, value_len);
        text [value_len] = '\n';
        memcpy (text + value_len + 1, bound, bound_len);
        uint8_t mac [SB_HMAC_SHA256_LEN];
        sb_hmac_sha256 (key, sizeof key, (const uint8_t *) text, value_len + 1 + bound_len, mac);
        field = sb_base64url_encode (mac, sizeof mac);
        sb_crypto_wipe (mac, sizeof mac);
        free (text);
    }
    sb_crypto_wipe (key, sizeof key);
    return field;
}

bool
sb_page_csrf_ok (sb_token_role_t *self, const char *purpose, const char *cookie,
                 const char *bound, const char *field)
{
    if (!cookie || !bound || !field)
        return false;
    char *expected = sb_page_csrf_field (self, purpose, cookie, bound);
    bool ok = expected && strlen (field) == strlen (expected)
           && sb_crypto_equal (field, expected, strlen (expected));
    free (expected);
    return ok;
}
