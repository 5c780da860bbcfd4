/*  workers/sb_oauth_authorize.c — the token role's oauth/authorize op: the
    sign-in and consent page of the authorization server (docs/OAUTH.md,
    "/authorize: the page").

      GET   read client_id, find the client, validate the request
            (oauth/sb_oauth.h). An error about the client or its redirect
            URI is shown on a page (400); any other goes back to the
            redirect URI with state and iss. A valid request gets the page:
            the client, where it sends you back, what it asks, a form with
            organisation, email, password, Allow and Deny, the request as
            hidden fields and a CSRF token bound to a cookie.
      POST  the CSRF pair first, then the carried request validated again
            exactly as GET did (hidden fields are the client's input), then
            Deny → error=access_denied; Allow → the user looked up by
            (tenant, lower (email)), the password verified with Argon2id on
            the hashing threads (a dummy hash for an unknown user, so both
            take as long), then one function records the grant, stores the
            code's digest and audits; 302 with the code. A refused sign-in
            shows the page again with one sentence, whatever the reason.

    Every step with the database is one statement (db/migrations/005); no
    state lives here between jobs. While a sign-in hashes, its job is on
    the role's list of sign-ins, so the role's abandon can find it. */
#include "sb_page.h"
#include "sb_token_int.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_oauth_clients.h"
#include "sb_oauth_form.h"
#include "sb_oauth_meta.h"
#include "sb_password.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_AUTHORIZE_MAX_PAGE       (64 * 1024) /* bytes of one rendered page */
#define SB_AUTHORIZE_MAX_ORG        63          /* bytes of a tenant ID (migration 001) */
#define SB_AUTHORIZE_MAX_EMAIL      254         /* bytes of an email (migration 004) */
#define SB_AUTHORIZE_MAX_QUERY      SB_OAUTH_MAX_FORM_BODY  /* the carried request, rebuilt */
#define SB_AUTHORIZE_CODE_BYTES     32          /* random bytes of a code */
#define SB_SIGNIN_MAX_FAILURES      5           /* failed sign-ins of one email… */
#define SB_SIGNIN_WINDOW_S          900         /* …in this many seconds: refuse for a while */

//  The hash an unknown user's password is verified against, made with
//  today's parameters (sb_password.h), so a sign-in for nobody costs what
//  one for somebody does. Nobody's password: its text was thrown away.
static const char s_dummy_hash [] =
    "$argon2id$v=19$m=65536,t=3,p=1$Brq4Tyb9+zfWJ0K0Doc5MQ$SRJTVtGsceVrAR2/nDFX6fxAkc3sN7k77AJzxx6D8Xg";

static const char s_refused [] = "The organisation, email or password is not right.";
static const char s_braked [] =
    "Too many sign-ins failed for this email. Wait 15 minutes and try again.";
static const char s_incomplete [] = "Enter your organisation, email and password.";

//  The request parameters a page carries as hidden fields, in order.
static const char *const s_carried [] = {
    "response_type", "client_id", "redirect_uri", "code_challenge", "code_challenge_method",
    "state", "scope", "resource"
};

//  One /authorize job between steps. Owned by the step that runs; on the
//  role's list of sign-ins while the password is hashed.
struct _sb_oauth_signin_t {
    sb_token_role_t *self;                  /* the role (borrowed) */
    sb_worker_job_t *job;                   /* while hashing; NULL once abandoned */
    bool abandoned;                         /* the worker gave the job up while it hashed */
    sb_oauth_signin_t *next;                /* the role's list of sign-ins */
    sb_oauth_authorize_request_t valid;     /* the validated request */
    char *client_name;                      /* shown: the client's name, or its ID */
    char csrf [SB_PAGE_RANDOM_LEN + 1];     /* the cookie's value */
    char org [SB_AUTHORIZE_MAX_ORG + 1];    /* the form's organisation */
    char email [SB_AUTHORIZE_MAX_EMAIL + 1];
    char password [SB_PASSWORD_MAX_LEN + 2];    /* one byte more: too long is a mismatch */
    char remote [SB_HTTP_MAX_REMOTE + 1];   /* the client's address, for the audit log */
    bool overlong;                          /* organisation or email past its limit: nobody */
    bool tenant_known;                      /* the organisation exists */
    bool user_known;                        /* and has a user with that email */
    bool disabled;                          /* who is disabled */
    char user_id [24];                      /* decimal users.id */
    char *hash;                             /* the user's encoded hash (or NULL: the dummy) */
    sb_password_result_t verdict;           /* what the hashing thread found */
    char code [SB_AUTHORIZE_CODE_BYTES * 2];    /* the code issued (base64url) */
};

static void
s_signin_destroy (sb_oauth_signin_t **self_p)
{
    if (!*self_p)
        return;
    sb_oauth_signin_t *self = *self_p;
    free (self->client_name);
    sb_token_wipe_free (&self->hash);
    sb_crypto_wipe (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

static void
s_signin_free (void *arg)
{
    sb_oauth_signin_t *signin = arg;
    s_signin_destroy (&signin);
}

//  ---------------------------------------------------------------------
//  Pages

//  One plain-language line for a scope token, with its name (what the
//  client asked for, so a person can match it with the client's docs).
static void
s_scope_line (sb_page_t *page, const char *token, size_t len)
{
    char text [SB_OAUTH_MAX_SCOPE + 1];
    snprintf (text, sizeof text, "%.*s", (int) len, token);
    sb_page_put (page, "<li>");
    if (strcmp (text, "mcp:tools") == 0)
        sb_page_put (page, "Use your organisation's tools: look up and read data in the apps it connects.");
    else
    if (strcmp (text, "mcp:write") == 0)
        sb_page_put (page, "Run tools that change data in those apps: create, update or delete.");
    else
        sb_page_put (page, "Use this permission.");
    sb_page_put (page, " <code>");
    sb_page_esc (page, text);
    sb_page_put (page, "</code></li>\n");
}

static const char s_head [] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<meta name=\"referrer\" content=\"no-referrer\">"
    "<title>Sign in – switchboard</title><style>"
    "body{font-family:system-ui,sans-serif;background:#f4f4f5;color:#18181b;margin:0}"
    "main{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:.5rem}"
    "h1{font-size:1.3rem}label{display:block;margin:.8rem 0 .2rem}"
    "input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}"
    ".error{color:#b91c1c;font-weight:600}.buttons{display:flex;gap:1rem;margin-top:1.5rem}"
    "button{flex:1;padding:.6rem;font-size:1rem}"
    "</style></head><body><main>\n";

//  The sign-in and consent page for `signin`'s request, with `sentence`
//  (NULL: none) above the form. Returns a new page, or NULL.
static char *
s_signin_page (sb_token_role_t *self, const sb_oauth_signin_t *signin, const char *sentence,
               const char *csrf_field)
{
    const sb_oauth_authorize_request_t *req = &signin->valid;
    char origin [SB_PAGE_MAX_ORIGIN];
    sb_page_origin (req->redirect_uri, origin, sizeof origin);
    const char *host = strstr (origin, "://")? strstr (origin, "://") + 3: req->redirect_uri;
    sb_page_t page = { .max = SB_AUTHORIZE_MAX_PAGE };
    sb_page_put (&page, s_head);
    sb_page_put (&page, "<h1>Sign in to allow <strong>");
    sb_page_esc (&page, signin->client_name);
    sb_page_put (&page, "</strong></h1>\n<p><strong>");
    sb_page_esc (&page, signin->client_name);
    sb_page_put (&page, "</strong> asks to use switchboard on your behalf. If you allow it, you go back to <strong>");
    sb_page_esc (&page, host);
    sb_page_put (&page, "</strong>.</p>\n");
    if (sentence) {
        sb_page_put (&page, "<p class=\"error\" role=\"alert\">");
        sb_page_esc (&page, sentence);
        sb_page_put (&page, "</p>\n");
    }
    sb_page_put (&page, "<p>It will be able to:</p>\n<ul>\n");
    for (const char *p = req->scope; *p; ) {
        size_t len = strcspn (p, " ");
        if (len)
            s_scope_line (&page, p, len);
        p += len;
        while (*p == ' ')
            p++;
    }
    sb_page_put (&page, "</ul>\n<form method=\"post\" action=\"");
    sb_page_esc (&page, self->issuer);
    sb_page_put (&page, "/authorize\">\n");
    const char *values [] = {
        "code", req->client_id, req->redirect_uri, req->code_challenge, "S256",
        req->state, req->scope, req->resource
    };
    for (size_t i = 0; i < sizeof s_carried / sizeof s_carried [0]; i++) {
        if (!values [i][0])
            continue;
        sb_page_put (&page, "<input type=\"hidden\" name=\"");
        sb_page_put (&page, s_carried [i]);
        sb_page_put (&page, "\" value=\"");
        sb_page_esc (&page, values [i]);
        sb_page_put (&page, "\">\n");
    }
    sb_page_put (&page, "<input type=\"hidden\" name=\"csrf\" value=\"");
    sb_page_esc (&page, csrf_field);
    sb_page_put (&page, "\">\n<label for=\"organisation\">Organisation</label>"
                  "<input id=\"organisation\" name=\"organisation\" required maxlength=\"63\" "
                  "autocomplete=\"organization\" value=\"");
    sb_page_esc (&page, signin->org);
    sb_page_put (&page, "\">\n<label for=\"email\">Email</label>"
                  "<input id=\"email\" name=\"email\" type=\"email\" required maxlength=\"254\" "
                  "autocomplete=\"username\" value=\"");
    sb_page_esc (&page, signin->email);
    sb_page_put (&page, "\">\n<label for=\"password\">Password</label>"
                  "<input id=\"password\" name=\"password\" type=\"password\" required "
                  "autocomplete=\"current-password\">\n"
                  "<div class=\"buttons\">"
                  "<button type=\"submit\" name=\"decision\" value=\"deny\" formnovalidate>Deny</button>"
                  "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>"
                  "</div>\n</form>\n</main></body></html>\n");
    return sb_page_take (&page);
}

//  The page for a request that cannot go on: `description` (a sentence).
static char *
s_error_page (const char *description)
{
    sb_page_t page = { .max = SB_AUTHORIZE_MAX_PAGE };
    sb_page_put (&page, s_head);
    sb_page_put (&page, "<h1>This sign-in cannot go on</h1>\n<p class=\"error\">");
    sb_page_esc (&page, description);
    sb_page_put (&page, "</p>\n<p>Go back to the app you came from and connect again.</p>\n"
                  "</main></body></html>\n");
    return sb_page_take (&page);
}

//  Ends the job with 302 to `location` (taken; NULL: the job fails).
static void
s_answer_redirect (sb_worker_job_t **job_p, char *location)
{
    sb_page_redirect (job_p, location, NULL);
    sb_token_wipe_free (&location);   //  it may carry a code
}

//  ---------------------------------------------------------------------
//  CSRF: a random cookie, and a field that binds it to the client

//  The subkey the form's field is a MAC under: base64url (HMAC-SHA256
//  (subkey "csrf", cookie "\n" client_id)), binding the pair to the client.
static const char s_csrf_purpose [] = "csrf";

//  The cookie's name: __Host- needs Secure, which needs https.
static const char *
s_csrf_cookie_name (const sb_token_role_t *self)
{
    return sb_page_secure (self)? "__Host-sb_csrf": "sb_csrf";
}

//  The CSRF cookie of `request` into `value`. Returns 0, or -1 when there
//  is none of the right shape.
static int
s_csrf_cookie (sb_token_role_t *self, const sb_http_request_t *request,
               char value [SB_PAGE_RANDOM_LEN + 1])
{
    return sb_page_cookie_get (request, s_csrf_cookie_name (self), value);
}

//  ---------------------------------------------------------------------
//  Answers

//  The page again for `signin` (with `sentence`, `status`), its CSRF
//  cookie set again. Frees the sign-in.
static void
s_show (sb_worker_job_t **job_p, sb_oauth_signin_t **signin_p, int status, const char *sentence)
{
    sb_oauth_signin_t *signin = *signin_p;
    sb_token_role_t *self = signin->self;
    char *field = sb_page_csrf_field (self, s_csrf_purpose, signin->csrf, signin->valid.client_id);
    char *body = field? s_signin_page (self, signin, sentence, field): NULL;
    free (field);
    char cookie [SB_PAGE_MAX_COOKIE];
    sb_page_csrf_cookie (self, s_csrf_cookie_name (self), signin->csrf, cookie);
    //  Chrome applies form-action to the redirect after a POST.
    char origin [SB_PAGE_MAX_ORIGIN];
    sb_page_origin (signin->valid.redirect_uri, origin, sizeof origin);
    sb_page_answer (job_p, status, body, cookie, origin, NULL);
    s_signin_destroy (signin_p);
}

//  A refused request: the error page, or back to the client with the error.
static void
s_refuse (sb_token_role_t *self, sb_worker_job_t **job_p, const sb_oauth_authorize_outcome_t *outcome)
{
    const sb_oauth_error_t *error = &outcome->refused.error;
    sb_log_info ("authorize_refused", "%s: %s", sb_oauth_code_name (error->code), error->description);
    if (error->redirect) {
        char *location = sb_oauth_error_redirect (outcome->refused.redirect_uri, error,
                                                  outcome->refused.state, self->issuer);
        if (location) {
            s_answer_redirect (job_p, location);
            return;
        }
    }
    sb_page_answer (job_p, 400, s_error_page (error->description), NULL, NULL, NULL);
}

//  A refusal before any client is known: the error page with `sentence`.
static void
s_refuse_page (sb_worker_job_t **job_p, const char *sentence)
{
    sb_page_answer (job_p, 400, s_error_page (sentence), NULL, NULL, NULL);
}

//  ---------------------------------------------------------------------
//  The sign-in, step by step (POST, Allow)

static void
s_on_issued (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    sb_oauth_signin_t *signin = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "oauth_code_issue: %s", error? error: PQresultErrorMessage (res));
        s_signin_destroy (&signin);
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return;
    }
    if (strcmp (PQgetvalue (res, 0, 0), "t") != 0) {
        //  Disabled, removed or the client revoked since the lookup.
        s_show (job_p, &signin, 200, s_refused);
        return;
    }
    sb_token_role_t *self = signin->self;
    char *location = sb_oauth_code_redirect (signin->valid.redirect_uri, signin->code,
                                             signin->valid.state, self->issuer);
    sb_log_info ("code_issued", "tenant %s user %s client %s", signin->org, signin->user_id,
                 signin->valid.client_id);
    s_signin_destroy (&signin);
    s_answer_redirect (job_p, location);
}

//  The password matched: one function records the grant, stores the code's
//  digest and audits.
static void
s_issue (sb_oauth_signin_t *signin, sb_worker_job_t *job)
{
    uint8_t raw [SB_AUTHORIZE_CODE_BYTES];
    char *code = sb_crypto_random (raw, sizeof raw) == 0? sb_base64url_encode (raw, sizeof raw): NULL;
    sb_crypto_wipe (raw, sizeof raw);
    if (!code || strlen (code) >= sizeof signin->code) {
        free (code);
        s_signin_destroy (&signin);
        sb_worker_job_fail (&job, "no randomness or memory for a code");
        return;
    }
    snprintf (signin->code, sizeof signin->code, "%s", code);
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_sha256 (code, strlen (code), digest);
    sb_crypto_wipe (code, strlen (code));
    free (code);
    char digest_hex [SB_HMAC_SHA256_LEN * 2 + 1];
    sb_hex_encode (digest, sizeof digest, digest_hex);
    char ttl [16];
    snprintf (ttl, sizeof ttl, "%d", SB_OAUTH_CODE_TTL_S);
    const sb_oauth_authorize_request_t *req = &signin->valid;
    const char *params [] = {
        signin->org, signin->user_id, req->client_id, req->scope, digest_hex,
        req->redirect_uri, req->code_challenge, req->resource, ttl, signin->remote
    };
    sb_token_query (signin->self, job,
                    "SELECT oauth_code_issue ($1, $2::bigint, $3, $4, $5, $6, $7, $8, $9::int, $10)",
                    10, params, s_on_issued, signin, s_signin_free);
}

static void
s_on_failed_audited (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    sb_oauth_signin_t *signin = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK)
        sb_log_warn ("db_error", "oauth_signin_failed: %s", error? error: PQresultErrorMessage (res));
    s_show (job_p, &signin, 200, s_refused);
}

//  A refused sign-in: audited under its tenant when there is one (else the
//  process log), and the page again with one sentence.
static void
s_fail (sb_oauth_signin_t *signin, sb_worker_job_t *job, const char *reason)
{
    if (!signin->tenant_known) {
        sb_log_warn ("signin_failed", "unknown organisation (client %s, from %s)",
                     signin->valid.client_id, signin->remote);
        s_show (&job, &signin, 200, s_refused);
        return;
    }
    const char *params [] = { signin->org, signin->email, signin->valid.client_id, reason,
                              signin->remote };
    sb_token_query (signin->self, job, "SELECT oauth_signin_failed ($1, $2, $3, $4, $5)",
                    5, params, s_on_failed_audited, signin, s_signin_free);
}

//  On a hashing thread: the password against the user's hash or the dummy.
static void
s_verify (void *arg)
{
    sb_oauth_signin_t *signin = arg;
    const char *error = NULL;
    signin->verdict = sb_password_verify (signin->hash? signin->hash: s_dummy_hash,
                                          signin->password, &error);
}

//  Unlinks `signin` from the role's list of sign-ins.
static void
s_unlink (sb_oauth_signin_t *signin)
{
    for (sb_oauth_signin_t **at = &signin->self->signins; *at; at = &(*at)->next)
        if (*at == signin) {
            *at = signin->next;
            break;
        }
    signin->next = NULL;
}

//  On the loop, the hash done (or never run: the pool is going away).
static void
s_on_verified (void *arg, bool ran)
{
    sb_oauth_signin_t *signin = arg;
    s_unlink (signin);
    sb_crypto_wipe (signin->password, sizeof signin->password);
    sb_worker_job_t *job = signin->job;
    if (signin->abandoned) {
        s_signin_destroy (&signin);
        return;
    }
    if (!ran) {
        s_signin_destroy (&signin);
        sb_worker_job_fail (&job, "the authorization server is stopping");
        return;
    }
    if (signin->verdict == SB_PASSWORD_MALFORMED && signin->hash)
        sb_log_error ("password_hash_unreadable", "user %s of %s: the stored hash is not one we read",
                      signin->user_id, signin->org);
    if (signin->verdict == SB_PASSWORD_MATCH && signin->user_known && !signin->disabled
    &&  signin->hash)
        s_issue (signin, job);
    else
        s_fail (signin, job, !signin->user_known? "unknown_user":
                             signin->disabled? "disabled": "password");
}

static void
s_on_lookup (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    sb_oauth_signin_t *signin = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "oauth_signin_lookup: %s", error? error: PQresultErrorMessage (res));
        s_signin_destroy (&signin);
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return;
    }
    signin->tenant_known = strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    signin->user_known = !PQgetisnull (res, 0, 1) && !PQgetisnull (res, 0, 2);
    signin->disabled = strcmp (PQgetvalue (res, 0, 3), "t") == 0;
    long failures = strtol (PQgetvalue (res, 0, 4), NULL, 10);
    if (signin->user_known) {
        snprintf (signin->user_id, sizeof signin->user_id, "%s", PQgetvalue (res, 0, 1));
        signin->hash = strdup (PQgetvalue (res, 0, 2));
        if (!signin->hash) {
            s_signin_destroy (&signin);
            sb_worker_job_fail (job_p, "out of memory");
            return;
        }
    }
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    if (failures >= SB_SIGNIN_MAX_FAILURES) {
        //  The brake: no hash at all until the window has passed. Shown
        //  for any email, known or not, so it tells nobody who exists.
        sb_log_warn ("signin_braked", "%ld failed sign-ins for one email of %s in %d s",
                     failures, signin->org, SB_SIGNIN_WINDOW_S);
        s_show (&job, &signin, 429, s_braked);
        return;
    }
    signin->job = job;
    if (sb_offload_submit (signin->self->offload, s_verify, s_on_verified, signin)) {
        s_signin_destroy (&signin);
        sb_worker_job_fail (&job, "the authorization server is busy");
        return;
    }
    signin->next = signin->self->signins;
    signin->self->signins = signin;
}

static void
s_signin_lookup (sb_oauth_signin_t *signin, sb_worker_job_t *job)
{
    char window [16];
    snprintf (window, sizeof window, "%d", SB_SIGNIN_WINDOW_S);
    //  "" is no tenant (tenant IDs are not empty): an overlong form is nobody's.
    const char *params [] = { signin->overlong? "": signin->org, signin->email, window };
    sb_token_query (signin->self, job,
                    "SELECT o_tenant_known, o_user_id, o_password_hash, o_disabled, o_failures"
                    "  FROM oauth_signin_lookup ($1, $2, $3::int)",
                    3, params, s_on_lookup, signin, s_signin_free);
}

//  ---------------------------------------------------------------------
//  The request

//  The request a POST carries, rebuilt as the query GET validated: only
//  the carried parameters, escaped. A new string, or NULL.
static char *
s_carried_query (const sb_oauth_form_t *form)
{
    char *query = NULL;
    size_t len = 0;
    for (size_t i = 0; i < sizeof s_carried / sizeof s_carried [0]; i++) {
        const char *value = sb_oauth_form_get (form, s_carried [i]);
        if (!value)
            continue;
        if ((len && sb_oauth_query_append (&query, &len, SB_AUTHORIZE_MAX_QUERY, "&", false))
        ||  sb_oauth_query_append (&query, &len, SB_AUTHORIZE_MAX_QUERY, s_carried [i], false)
        ||  sb_oauth_query_append (&query, &len, SB_AUTHORIZE_MAX_QUERY, "=", false)
        ||  sb_oauth_query_append (&query, &len, SB_AUTHORIZE_MAX_QUERY, value, true)) {
            free (query);
            return NULL;
        }
    }
    if (!query)
        query = strdup ("");
    return query;
}

//  Copies `value` (NULL: "") into `out`. Returns 0, or -1 when it does not fit.
static int
s_copy (char *out, size_t size, const char *value)
{
    int len = snprintf (out, size, "%s", value? value: "");
    return len < 0 || (size_t) len >= size? -1: 0;
}

//  The job's request (a fresh decode: nothing is kept across the client
//  lookup) and, for a POST, its form. Returns 0, or -1 having ended the job.
static int
s_read (sb_worker_job_t **job_p, sb_http_request_t *request, sb_oauth_form_t **form_p)
{
    if (sb_token_http_request (job_p, request))
        return -1;
    *form_p = NULL;
    if (strcmp (request->method, "POST") == 0) {
        if (sb_oauth_form_parse (request->body, request->body_len, form_p, NULL, 0)) {
            sb_http_request_clear (request);
            s_refuse_page (job_p, "The sign-in form is malformed.");
            return -1;
        }
    }
    else
    if (strcmp (request->method, "GET") != 0) {
        sb_http_request_clear (request);
        s_refuse_page (job_p, "Only GET and POST reach /authorize.");
        return -1;
    }
    return 0;
}

//  Forgets the request and its form, wiping the body (it holds the
//  password). The form frees its decoded copy without a wipe
//  (sb_oauth_form.h has no wiping destroy yet).
static void
s_read_clear (sb_http_request_t *request, sb_oauth_form_t **form_p)
{
    sb_oauth_form_destroy (form_p);
    if (request->body)
        sb_crypto_wipe (request->body, request->body_len);
    sb_http_request_clear (request);
}

//  POST after the request was validated again: Deny, or Allow's sign-in.
static void
s_decide (sb_oauth_signin_t *signin, sb_worker_job_t *job, const sb_oauth_form_t *form)
{
    sb_token_role_t *self = signin->self;
    const char *decision = sb_oauth_form_get (form, "decision");
    if (!decision || strcmp (decision, "allow") != 0) {
        //  Deny, or no button: RFC 6749 §4.1.2.1, access_denied. Nobody
        //  signed in, so no tenant to audit under: the process log.
        sb_oauth_error_t denied = { .code = SB_OAUTH_ACCESS_DENIED, .status = 302,
                                    .redirect = true };
        snprintf (denied.description, sizeof denied.description, "The user denied the request.");
        sb_log_info ("consent_denied", "client %s", signin->valid.client_id);
        char *location = sb_oauth_error_redirect (signin->valid.redirect_uri, &denied,
                                                  signin->valid.state, self->issuer);
        s_signin_destroy (&signin);
        s_answer_redirect (&job, location);
        return;
    }
    const char *org = sb_oauth_form_get (form, "organisation");
    const char *email = sb_oauth_form_get (form, "email");
    const char *password = sb_oauth_form_get (form, "password");
    //  What was typed comes back on the page (not the password), cut to fit.
    snprintf (signin->org, sizeof signin->org, "%s", org? org: "");
    snprintf (signin->email, sizeof signin->email, "%s", email? email: "");
    if (!sb_page_utf8_text (signin->org))
        signin->org [0] = 0;
    if (!sb_page_utf8_text (signin->email))
        signin->email [0] = 0;
    if (!org || !email || !password || !signin->org [0] || !signin->email [0]) {
        s_show (&job, &signin, 200, s_incomplete);
        return;
    }
    //  An organisation or email too long to be real was cut for the page:
    //  the lookup must find nobody (a cut one could name a real tenant).
    //  The password is cut one byte past the limit: verify refuses it.
    signin->overlong = strlen (org) > SB_AUTHORIZE_MAX_ORG || strlen (email) > SB_AUTHORIZE_MAX_EMAIL;
    snprintf (signin->password, sizeof signin->password, "%s", password);
    s_signin_lookup (signin, job);
}

//  The client found (or not): validate the request against it; GET shows
//  the page, POST decides. `arg` is the role.
static void
s_on_client (sb_worker_job_t **job_p, const sb_oauth_client_row_t *client, const char *error,
             void *arg)
{
    sb_token_role_t *self = arg;
    if (error) {
        sb_worker_job_fail (job_p, error);
        return;
    }
    sb_http_request_t request = { 0 };
    sb_oauth_form_t *form = NULL;
    if (s_read (job_p, &request, &form))
        return;
    sb_oauth_signin_t *signin = NULL;
    sb_oauth_authorize_outcome_t *outcome = malloc (sizeof *outcome);
    char *query = form? s_carried_query (form): strdup (request.query);
    if (!outcome || !query) {
        sb_worker_job_fail (job_p, "out of memory");
        goto out;
    }
    sb_oauth_client_t view = { 0 };
    if (client)
        sb_oauth_client_view (client, &view);
    sb_oauth_policy_t policy = { SB_OAUTH_SCOPES_SUPPORTED, SB_OAUTH_SCOPE_DEFAULT, self->resource };
    sb_oauth_authorize_validate (query, strlen (query), client? &view: NULL, &policy, outcome);
    if (outcome->kind != SB_OAUTH_VALID) {
        s_refuse (self, job_p, outcome);
        goto out;
    }
    //  A page body is UTF-8 text: a state or client ID that decodes to
    //  other bytes cannot be carried in a hidden field unchanged.
    if (!sb_page_utf8_text (outcome->request.state)
    ||  !sb_page_utf8_text (outcome->request.client_id)) {
        s_refuse_page (job_p, "The request's state or client_id is not UTF-8 text.");
        goto out;
    }
    signin = calloc (1, sizeof *signin);
    const char *name = client->client_name && *client->client_name
                    && sb_page_utf8_text (client->client_name)? client->client_name
                                                              : client->client_id;
    if (signin) {
        signin->self = self;
        signin->valid = outcome->request;
        signin->client_name = strdup (name);
        s_copy (signin->remote, sizeof signin->remote, request.remote);
    }
    if (!signin || !signin->client_name) {
        s_signin_destroy (&signin);
        sb_worker_job_fail (job_p, "out of memory");
        goto out;
    }
    if (form) {
        //  The CSRF pair was checked before the lookup (sb_oauth_authorize_start).
        if (s_csrf_cookie (self, &request, signin->csrf)) {
            s_signin_destroy (&signin);
            sb_worker_job_fail (job_p, "the CSRF cookie went away");
            goto out;
        }
        sb_worker_job_t *job = *job_p;
        *job_p = NULL;
        s_decide (signin, job, form);
    }
    else {
        //  Keep a cookie the browser already has (another tab's page
        //  stays valid); else a new one.
        if (s_csrf_cookie (self, &request, signin->csrf)
        &&  sb_page_random_text (signin->csrf)) {
            s_signin_destroy (&signin);
            sb_worker_job_fail (job_p, "no randomness or memory for a CSRF cookie");
            goto out;
        }
        s_show (job_p, &signin, 200, NULL);
    }
out:
    free (query);
    free (outcome);
    s_read_clear (&request, &form);
}

//  The one place this op looks a client up, for GET and POST alike. A
//  client ID that is an https URL is a Client ID Metadata Document client:
//  until its resolver is routed here, it is found only when its row is
//  cached in oauth_clients (else: unknown, a 400 page).
static void
s_client_find (sb_token_role_t *self, sb_worker_job_t *job, const char *client_id)
{
    sb_oauth_client_find (self, job, client_id, s_on_client, self);
}

void
sb_oauth_authorize_start (sb_token_role_t *self, sb_worker_job_t *job)
{
    if (!self->issuer [0] || !self->secret_len) {
        sb_log_warn ("authorize_unconfigured", "oauth/authorize needs --issuer and --secret-key-file");
        sb_worker_job_fail (&job, "the authorization server is not configured (--issuer, --secret-key-file)");
        return;
    }
    sb_http_request_t request = { 0 };
    sb_oauth_form_t *form = NULL;
    if (s_read (&job, &request, &form))
        return;
    char client_id [SB_OAUTH_MAX_CLIENT_ID + 1] = "";
    int rc = 0;
    if (form) {
        //  The CSRF pair first: a form that did not come from our page
        //  (or whose cookie is gone) goes no further. No tenant is known:
        //  the process log, not the audit log.
        char cookie [SB_PAGE_RANDOM_LEN + 1];
        const char *id = sb_oauth_form_get (form, "client_id");
        if (s_csrf_cookie (self, &request, cookie)
        ||  !sb_page_csrf_ok (self, s_csrf_purpose, cookie, id, sb_oauth_form_get (form, "csrf"))) {
            sb_log_warn ("csrf_refused", "POST /authorize without a matching CSRF pair (from %s)",
                         request.remote);
            s_read_clear (&request, &form);
            s_refuse_page (&job, "This sign-in form expired or did not come from this server.");
            return;
        }
        rc = s_copy (client_id, sizeof client_id, id);
    }
    else
        rc = sb_oauth_authorize_client_id (request.query, strlen (request.query),
                                           client_id, sizeof client_id);
    s_read_clear (&request, &form);
    if (rc) {
        //  No client ID to look up: the validation says what is wrong.
        s_on_client (&job, NULL, NULL, self);
        return;
    }
    s_client_find (self, job, client_id);
}

bool
sb_oauth_authorize_abandon (sb_token_role_t *self, sb_worker_job_t *job)
{
    for (sb_oauth_signin_t *signin = self->signins; signin; signin = signin->next)
        if (signin->job == job && !signin->abandoned) {
            signin->abandoned = true;
            signin->job = NULL;
            return true;
        }
    return false;
}
