/*  workers/sb_provider.c — a provider's OAuth 2 token endpoint (see
    workers/sb_conn.h): the authorization_code and refresh_token grants
    POSTed as a form on a curl loop of its own, on the token role's
    reactor.

    One s_call_t per request: its easy handle, the form (wiped when the
    call ends: it holds a code, verifier or refresh token, and the
    client secret in client_secret_post), the answer so far (at most
    SB_PROVIDER_MAX_ANSWER bytes, wiped too) and the Retry-After the
    provider gave. A call ends in one place (s_call_end), which unlinks it
    before calling back, so the callback may start another.

    Outcomes (RFC 6749 §5.1, §5.2): 200 with an access_token is OK; an
    error invalid_grant, invalid_client or unauthorized_client is REFUSED
    (the grant or the client is dead: only a new connection helps);
    everything else is TRANSIENT (network, timeout, 5xx, 429, another
    error code, an answer that does not parse). Redirects are not
    followed. The logs name the connector, the HTTP status, the outcome
    and the latency: never a token, code or secret. */
#include "sb_conn.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_curl_loop.h"
#include "sb_json.h"
#include "sb_log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SB_PROVIDER_MAX_ANSWER      65536   /* bytes of a token endpoint's answer, at most */
#define SB_PROVIDER_MAX_CALLS       256     /* requests in flight at once; more are refused */
#define SB_PROVIDER_CONNECT_MS      5000    /* of a request's time, the connection at most */
#define SB_PROVIDER_MAX_RETRY_S     3600    /* a Retry-After is believed up to this */
#define SB_PROVIDER_MAX_FORM        (4 * SB_MAX_CONN_SECRET)    /* bytes of the form, at most */
#define S_MAX_DETAIL                384     /* bytes of an outcome's sentence */
#define S_MAX_DESCRIPTION           160     /* bytes of a provider's error_description quoted */

typedef struct _s_call_t s_call_t;
struct _s_call_t {
    s_call_t *next;                 /* the client's list */
    sb_provider_t *provider;        /* the client (borrowed) */
    int64_t id;                     /* what sb_provider_token returned */
    CURL *easy;                     /* the transfer, NULL once done */
    struct curl_slist *headers;     /* request headers (Basic holds the secret: wiped) */
    char *form;                     /* the request body (secrets: wiped) */
    size_t form_len;
    char *answer;                   /* the answer so far, NUL-terminated (wiped) */
    size_t answer_len;
    bool too_big;                   /* the answer passed SB_PROVIDER_MAX_ANSWER */
    int retry_after_s;              /* Retry-After in seconds, -1: none given */
    char connector [128];           /* its name, for logs */
    char *keep [SB_MAX_OAUTH_KEEP]; /* the fields the connector keeps */
    size_t keep_count;
    bool refresh;                   /* the refresh_token grant (else authorization_code) */
    int64_t started_ms;             /* sb_clock_mono_ms at the start */
    sb_provider_fn *cb;
    void *arg;
    char errbuf [CURL_ERROR_SIZE];  /* curl's error text */
};

struct _sb_provider_t {
    sb_curl_loop_t *curl;           /* the requests */
    s_call_t *calls;                /* in flight */
    size_t call_count;
    int64_t next_id;                /* the next request's id */
};

void
sb_provider_tokens_clear (sb_provider_tokens_t *tokens)
{
    if (!tokens)
        return;
    if (tokens->access_token) {
        sb_crypto_wipe (tokens->access_token, strlen (tokens->access_token));
        free (tokens->access_token);
    }
    if (tokens->refresh_token) {
        sb_crypto_wipe (tokens->refresh_token, strlen (tokens->refresh_token));
        free (tokens->refresh_token);
    }
    free (tokens->scope);
    json_decref (tokens->vars);
    memset (tokens, 0, sizeof *tokens);
    tokens->expires_in = -1;
}

//  ---------------------------------------------------------------------
//  Calls

static void
s_call_free (s_call_t *call)
{
    if (call->easy) {
        curl_multi_remove_handle (sb_curl_loop_multi (call->provider->curl), call->easy);
        curl_easy_cleanup (call->easy);
    }
    for (struct curl_slist *h = call->headers; h; h = h->next)
        sb_crypto_wipe (h->data, strlen (h->data));
    curl_slist_free_all (call->headers);
    if (call->form) {
        sb_crypto_wipe (call->form, call->form_len);
        free (call->form);
    }
    if (call->answer) {
        sb_crypto_wipe (call->answer, call->answer_len);
        free (call->answer);
    }
    for (size_t at = 0; at < call->keep_count; at++)
        free (call->keep [at]);
    free (call);
}

static void
s_call_unlink (s_call_t *call)
{
    sb_provider_t *self = call->provider;
    for (s_call_t **at = &self->calls; *at; at = &(*at)->next)
        if (*at == call) {
            *at = call->next;
            self->call_count--;
            return;
        }
}

static const char *
s_outcome_name (sb_provider_outcome_t outcome)
{
    return outcome == SB_PROVIDER_OK? "ok": outcome == SB_PROVIDER_REFUSED? "refused": "transient";
}

//  Ends `call`: unlinks and frees it, then calls back.
static void
s_call_end (s_call_t *call, sb_provider_outcome_t outcome, sb_provider_tokens_t *tokens,
            const char *detail, long status)
{
    s_call_unlink (call);
    sb_provider_fn *cb = call->cb;
    void *arg = call->arg;
    int retry_after_s = call->retry_after_s;
    char text [S_MAX_DETAIL];
    snprintf (text, sizeof text, "%s", detail? detail: "");
    int64_t latency = sb_clock_mono_ms () - call->started_ms;
    if (outcome == SB_PROVIDER_OK)
        sb_log_debug ("provider_token", "connector %s: %s grant ok (HTTP %ld, %lld ms)",
                      call->connector, call->refresh? "refresh_token": "authorization_code", status,
                      (long long) latency);
    else
        sb_log_warn ("provider_token", "connector %s: %s grant %s (HTTP %ld, %lld ms): %s",
                     call->connector, call->refresh? "refresh_token": "authorization_code",
                     s_outcome_name (outcome), status, (long long) latency, text);
    s_call_free (call);
    cb (outcome, tokens, outcome == SB_PROVIDER_OK? NULL: text, retry_after_s, arg);
}

//  Copies at most S_MAX_DESCRIPTION printable ASCII characters of a
//  provider's error_description (others become '?').
static void
s_quote (const char *in, char *out, size_t size)
{
    size_t at = 0;
    for (; in && *in && at + 1 < size && at < S_MAX_DESCRIPTION; in++)
        out [at++] = (*in >= 0x20 && *in < 0x7f && *in != '"')? *in: '?';
    out [at] = 0;
}

//  Reads a successful answer (RFC 6749 §5.1) into `tokens`. Returns 0, or
//  -1 with `why` filled.
static int
s_parse_tokens (s_call_t *call, json_t *doc, sb_provider_tokens_t *tokens, char *why, size_t size)
{
    const char *access = json_string_value (json_object_get (doc, "access_token"));
    if (!access || !*access) {
        snprintf (why, size, "the answer has no access_token");
        return -1;
    }
    if (strlen (access) > SB_MAX_CONN_SECRET) {
        snprintf (why, size, "the access token is longer than %d bytes", SB_MAX_CONN_SECRET);
        return -1;
    }
    json_t *type = json_object_get (doc, "token_type");
    if (type && (!json_is_string (type) || strcasecmp (json_string_value (type), "bearer") != 0)) {
        snprintf (why, size, "the token type is not Bearer");
        return -1;
    }
    json_t *refresh = json_object_get (doc, "refresh_token");
    if (refresh && !json_is_null (refresh)
    && (!json_is_string (refresh) || strlen (json_string_value (refresh)) > SB_MAX_CONN_SECRET)) {
        snprintf (why, size, "the refresh_token is not a string of at most %d bytes",
                  SB_MAX_CONN_SECRET);
        return -1;
    }
    //  expires_in: a number of seconds (some providers send it as a string)
    int64_t expires_in = -1;
    json_t *expires = json_object_get (doc, "expires_in");
    if (json_is_integer (expires) && json_integer_value (expires) >= 0)
        expires_in = json_integer_value (expires);
    else
    if (json_is_real (expires) && json_real_value (expires) >= 0 && json_real_value (expires) < 1e12)
        expires_in = (int64_t) json_real_value (expires);
    else
    if (json_is_string (expires)) {
        const char *p = json_string_value (expires);
        int64_t value = 0;
        size_t digits = 0;
        for (; *p >= '0' && *p <= '9' && digits < 12; p++, digits++)
            value = value * 10 + (*p - '0');
        if (digits && !*p)
            expires_in = value;
    }
    const char *scope = json_string_value (json_object_get (doc, "scope"));
    tokens->access_token = strdup (access);
    const char *refresh_text = json_string_value (refresh);
    if (refresh_text && *refresh_text)
        tokens->refresh_token = strdup (refresh_text);
    tokens->scope = scope? strdup (scope): NULL;
    tokens->expires_in = expires_in;
    tokens->vars = json_object ();
    bool fail = !tokens->access_token || !tokens->vars || (refresh_text && *refresh_text
                                                             && !tokens->refresh_token)
             || (scope && !tokens->scope);
    for (size_t at = 0; !fail && at < call->keep_count; at++) {
        const char *value = json_string_value (json_object_get (doc, call->keep [at]));
        if (value && json_object_set_new (tokens->vars, call->keep [at], json_string (value)))
            fail = true;
    }
    if (fail) {
        snprintf (why, size, "out of memory");
        return -1;
    }
    return 0;
}

//  Reads an error answer (RFC 6749 §5.2) and says which outcome it is.
static sb_provider_outcome_t
s_classify_error (s_call_t *call, long status, char *why, size_t size)
{
    json_t *doc = call->answer_len
                ? sb_json_parse (call->answer, call->answer_len, 0, NULL): NULL;
    const char *error = json_string_value (json_object_get (doc, "error"));
    char code [64], description [S_MAX_DESCRIPTION + 1];
    s_quote (error, code, sizeof code);
    s_quote (json_string_value (json_object_get (doc, "error_description")), description,
             sizeof description);
    bool dead = error && (strcmp (error, "invalid_grant") == 0
                       || strcmp (error, "invalid_client") == 0
                       || strcmp (error, "unauthorized_client") == 0);
    json_decref (doc);                  //  `error` is gone with it
    if (dead && status >= 400 && status < 500) {
        snprintf (why, size, "the provider refused the %s (%s%s%s)",
                  call->refresh? "refresh token": "authorization code", code,
                  *description? ": ": "", description);
        return SB_PROVIDER_REFUSED;
    }
    if (status == 429)
        snprintf (why, size, "the provider is rate limiting (HTTP 429)");
    else
    if (status >= 500)
        snprintf (why, size, "the provider's token endpoint failed (HTTP %ld)", status);
    else
    if (status >= 300 && status < 400)
        snprintf (why, size, "the provider answered HTTP %ld: redirects are not followed", status);
    else
    if (*code)
        snprintf (why, size, "the provider answered HTTP %ld %s%s%s", status, code,
                  *description? ": ": "", description);
    else
        snprintf (why, size, "the provider answered HTTP %ld without an OAuth error", status);
    return SB_PROVIDER_TRANSIENT;
}

static void
s_on_done (CURL *easy, CURLcode code, void *arg)
{
    sb_provider_t *self = arg;
    s_call_t *call = NULL;
    curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &call);
    curl_multi_remove_handle (sb_curl_loop_multi (self->curl), easy);
    long status = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (easy);
    if (!call)
        return;
    call->easy = NULL;
    char why [S_MAX_DETAIL];
    if (call->too_big || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf (why, sizeof why, "the provider's answer is larger than %d bytes",
                  SB_PROVIDER_MAX_ANSWER);
        s_call_end (call, SB_PROVIDER_TRANSIENT, NULL, why, status);
        return;
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
        s_call_end (call, SB_PROVIDER_TRANSIENT, NULL,
                    "the provider's token endpoint did not answer in time", status);
        return;
    }
    if (code != CURLE_OK) {
        snprintf (why, sizeof why, "the provider's token endpoint could not be reached: %s",
                  call->errbuf [0]? call->errbuf: curl_easy_strerror (code));
        s_call_end (call, SB_PROVIDER_TRANSIENT, NULL, why, status);
        return;
    }
    if (status != 200) {
        sb_provider_outcome_t outcome = s_classify_error (call, status, why, sizeof why);
        s_call_end (call, outcome, NULL, why, status);
        return;
    }
    json_t *doc = sb_json_parse (call->answer? call->answer: "", call->answer_len, 0, NULL);
    sb_provider_tokens_t tokens = { .expires_in = -1 };
    if (!json_is_object (doc)) {
        json_decref (doc);
        s_call_end (call, SB_PROVIDER_TRANSIENT, NULL, "the provider's answer is not a JSON object",
                    status);
        return;
    }
    int rc = s_parse_tokens (call, doc, &tokens, why, sizeof why);
    json_decref (doc);
    if (rc) {
        sb_provider_tokens_clear (&tokens);
        s_call_end (call, SB_PROVIDER_TRANSIENT, NULL, why, status);
        return;
    }
    s_call_end (call, SB_PROVIDER_OK, &tokens, NULL, status);
}

static size_t
s_on_write (char *data, size_t size, size_t nmemb, void *arg)
{
    s_call_t *call = arg;
    size_t n = size * nmemb;
    if (!call->answer && n <= SB_PROVIDER_MAX_ANSWER) {
        call->answer = malloc (SB_PROVIDER_MAX_ANSWER + 1);
        if (!call->answer)
            return 0;
    }
    if (!call->answer
    ||  !sb_curl_body_append (call->answer, &call->answer_len, SB_PROVIDER_MAX_ANSWER, data, n)) {
        call->too_big = true;
        return 0;                   //  curl aborts with CURLE_WRITE_ERROR
    }
    return n;
}

//  Reads Retry-After: delta-seconds or an HTTP date.
static size_t
s_on_header (char *data, size_t size, size_t nmemb, void *arg)
{
    s_call_t *call = arg;
    size_t n = size * nmemb;
    char value [128];
    if (!sb_curl_header_value (data, n, "retry-after:", value, sizeof value))
        return n;
    char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    p [strcspn (p, "\r\n")] = 0;
    long seconds = -1;
    if (*p >= '0' && *p <= '9') {
        seconds = 0;
        while (*p >= '0' && *p <= '9' && seconds <= SB_PROVIDER_MAX_RETRY_S)
            seconds = seconds * 10 + (*p++ - '0');
    }
    else {
        time_t when = curl_getdate (p, NULL);
        if (when != -1)
            seconds = (long) (when - time (NULL));
        if (seconds < 0 && when != -1)
            seconds = 0;
    }
    if (seconds >= 0)
        call->retry_after_s = seconds > SB_PROVIDER_MAX_RETRY_S? SB_PROVIDER_MAX_RETRY_S: (int) seconds;
    return n;
}

//  Appends "&name=value" (value form-urlencoded, RFC 6749 appendix B) to
//  the call's form. Returns 0 or -1.
static int
s_form_add (s_call_t *call, CURL *easy, const char *name, const char *value)
{
    char *escaped = curl_easy_escape (easy, value, 0);
    if (!escaped)
        return -1;
    size_t len = strlen (escaped);
    size_t name_len = strlen (name);
    size_t need = call->form_len + (call->form_len? 1: 0) + name_len + 1 + len;
    int rc = -1;
    if (need <= SB_PROVIDER_MAX_FORM) {
        char *form = malloc (need + 1);
        if (form) {
            size_t at = 0;
            if (call->form_len) {
                memcpy (form, call->form, call->form_len);
                form [call->form_len] = '&';
                at = call->form_len + 1;
            }
            memcpy (form + at, name, name_len);
            form [at + name_len] = '=';
            memcpy (form + at + name_len + 1, escaped, len);
            form [need] = 0;
            if (call->form) {
                sb_crypto_wipe (call->form, call->form_len);
                free (call->form);
            }
            call->form = form;
            call->form_len = need;
            rc = 0;
        }
    }
    sb_crypto_wipe (escaped, len);
    curl_free (escaped);
    return rc;
}

//  "Authorization: Basic <base64 (urlencoded id ':' urlencoded secret)>"
//  (RFC 6749 §2.3.1). A new string (the caller wipes it), or NULL.
static char *
s_basic_header (CURL *easy, const char *id, const char *secret)
{
    char *id_enc = curl_easy_escape (easy, id, 0);
    char *secret_enc = curl_easy_escape (easy, secret, 0);
    char *header = NULL;
    char *pair = NULL;
    char *b64 = NULL;
    size_t pair_len = 0;
    if (!id_enc || !secret_enc)
        goto out;
    pair_len = strlen (id_enc) + 1 + strlen (secret_enc);
    pair = malloc (pair_len + 1);
    if (!pair)
        goto out;
    snprintf (pair, pair_len + 1, "%s:%s", id_enc, secret_enc);
    b64 = sb_base64url_encode ((const uint8_t *) pair, pair_len);
    if (!b64)
        goto out;
    //  base64url without padding → base64 with padding
    size_t len = strlen (b64);
    size_t padded = (len + 3) / 4 * 4;
    static const char prefix [] = "Authorization: Basic ";
    header = malloc (sizeof prefix + padded);
    if (!header)
        goto out;
    memcpy (header, prefix, sizeof prefix - 1);
    char *at = header + sizeof prefix - 1;
    for (size_t i = 0; i < len; i++)
        at [i] = b64 [i] == '-'? '+': b64 [i] == '_'? '/': b64 [i];
    for (size_t i = len; i < padded; i++)
        at [i] = '=';
    at [padded] = 0;
out:
    if (b64) {
        sb_crypto_wipe (b64, strlen (b64));
        free (b64);
    }
    if (pair) {
        sb_crypto_wipe (pair, pair_len);
        free (pair);
    }
    if (id_enc)
        curl_free (id_enc);
    if (secret_enc) {
        sb_crypto_wipe (secret_enc, strlen (secret_enc));
        curl_free (secret_enc);
    }
    return header;
}

int64_t
sb_provider_token (sb_provider_t *self, const sb_connector_t *connector, const char *code,
                   const char *verifier, const char *redirect_uri, const char *refresh_token,
                   int64_t deadline_ms, sb_provider_fn *cb, void *arg)
{
    const sb_connector_oauth_t *oauth = connector? sb_connector_oauth (connector): NULL;
    if (!oauth || !oauth->token_url || !oauth->client_id || !cb)
        return -1;
    bool refresh = refresh_token != NULL;
    if (refresh? (code || verifier): (!code || !redirect_uri))
        return -1;
    if (self->call_count >= SB_PROVIDER_MAX_CALLS) {
        sb_log_warn ("provider_busy", "connector %s: %d token requests already in flight",
                     sb_connector_name (connector), SB_PROVIDER_MAX_CALLS);
        return -1;
    }
    s_call_t *call = calloc (1, sizeof *call);
    CURL *easy = curl_easy_init ();
    char *basic = NULL;
    if (!call || !easy)
        goto fail;
    call->provider = self;
    call->retry_after_s = -1;
    call->refresh = refresh;
    call->cb = cb;
    call->arg = arg;
    call->started_ms = sb_clock_mono_ms ();
    snprintf (call->connector, sizeof call->connector, "%s", sb_connector_name (connector));
    for (size_t at = 0; at < oauth->keep_count && at < SB_MAX_OAUTH_KEEP; at++) {
        call->keep [at] = strdup (oauth->keep [at]);
        if (!call->keep [at])
            goto fail;
        call->keep_count++;
    }
    int rc = 0;
    if (refresh) {
        rc = s_form_add (call, easy, "grant_type", "refresh_token");
        if (rc == 0)
            rc = s_form_add (call, easy, "refresh_token", refresh_token);
    }
    else {
        rc = s_form_add (call, easy, "grant_type", "authorization_code");
        if (rc == 0)
            rc = s_form_add (call, easy, "code", code);
        if (rc == 0)
            rc = s_form_add (call, easy, "redirect_uri", redirect_uri);
        if (rc == 0 && verifier)
            rc = s_form_add (call, easy, "code_verifier", verifier);
    }
    if (rc)
        goto fail;
    //  Client authentication (RFC 6749 §2.3.1): Basic, or the pair in the
    //  form; a public client sends its ID only
    if (oauth->client_secret && oauth->client_secret_basic) {
        basic = s_basic_header (easy, oauth->client_id, oauth->client_secret);
        if (!basic)
            goto fail;
        call->headers = curl_slist_append (NULL, basic);
        if (!call->headers)
            goto fail;
    }
    else {
        rc = s_form_add (call, easy, "client_id", oauth->client_id);
        if (rc == 0 && oauth->client_secret)
            rc = s_form_add (call, easy, "client_secret", oauth->client_secret);
        if (rc)
            goto fail;
    }
    struct curl_slist *headers = curl_slist_append (call->headers, "Accept: application/json");
    if (!headers)
        goto fail;
    call->headers = headers;
    headers = curl_slist_append (call->headers,
                                 "Content-Type: application/x-www-form-urlencoded");
    if (!headers)
        goto fail;
    call->headers = headers;
    headers = curl_slist_append (call->headers, "Expect:");
    if (!headers)
        goto fail;
    call->headers = headers;
    int64_t left = deadline_ms - sb_clock_mono_ms ();
    if (left < 1)
        left = 1;
    sb_curl_easy_defaults (easy, oauth->token_url, "http,https", call->headers,
                           (curl_off_t) SB_PROVIDER_MAX_ANSWER, s_on_write, s_on_header, call,
                           call->errbuf);
    curl_easy_setopt (easy, CURLOPT_POST, 1L);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, call->form);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) call->form_len);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) left);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS,
                      (long) (left < SB_PROVIDER_CONNECT_MS? left: SB_PROVIDER_CONNECT_MS));
    curl_easy_setopt (easy, CURLOPT_USERAGENT, "switchboard/0.1");
    if (curl_multi_add_handle (sb_curl_loop_multi (self->curl), easy) != CURLM_OK)
        goto fail;
    call->easy = easy;
    call->id = ++self->next_id;
    call->next = self->calls;
    self->calls = call;
    self->call_count++;
    if (basic) {
        sb_crypto_wipe (basic, strlen (basic));
        free (basic);
    }
    return call->id;
fail:
    if (basic) {
        sb_crypto_wipe (basic, strlen (basic));
        free (basic);
    }
    if (easy)
        curl_easy_cleanup (easy);
    if (call)
        s_call_free (call);
    return -1;
}

void
sb_provider_cancel (sb_provider_t *self, int64_t id)
{
    for (s_call_t *call = self? self->calls: NULL; call; call = call->next)
        if (call->id == id) {
            s_call_unlink (call);
            s_call_free (call);
            return;
        }
}

sb_provider_t *
sb_provider_new (sb_reactor_t *reactor)
{
    sb_provider_t *self = calloc (1, sizeof (sb_provider_t));
    if (!self)
        return NULL;
    self->curl = sb_curl_loop_new (reactor, s_on_done, self);
    if (!self->curl) {
        sb_log_error ("provider_init_failed", "cannot set up the curl multi handle");
        free (self);
        return NULL;
    }
    return self;
}

void
sb_provider_destroy (sb_provider_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_provider_t *self = *self_p;
    while (self->calls) {
        s_call_t *call = self->calls;
        self->calls = call->next;
        s_call_free (call);
    }
    sb_curl_loop_destroy (&self->curl);
    free (self);
    *self_p = NULL;
}
