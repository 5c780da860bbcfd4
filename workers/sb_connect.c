/*  workers/sb_connect.c — the connect flow (proto/PROTOCOL.md "Connections",
    "Connect"; docs/CONNECTIONS.md "The connect flow"): how a person gives
    their tenant a connection to a SaaS through its OAuth provider.

      ticket        sb_connect_url signs "<payload>.<mac>": payload the
                    base64url of {"tenant","subject","connector","exp"},
                    mac the base64url of HMAC-SHA256 (subkey
                    "connect-ticket", payload). Checked in constant time;
                    expired or for another connector is refused with a page.
      GET /connect/{connector}?ticket=…
                    the confirmation page (no JavaScript): the connector's
                    title, the tenant, the user, Continue (a POST carrying
                    the ticket and a CSRF field bound to a cookie).
      POST          Origin (when sent) must be the issuer's, the CSRF pair
                    and the ticket are checked again; then a flow starts:
                    random state, PKCE verifier and browser cookie, stored
                    by connect_flow_create (migration 013) as the state's
                    and cookie's SHA-256 and the verifier sealed under the
                    current data key; the cookie is set and the browser is
                    sent (302) to the provider's authorization endpoint.
      GET /connect/callback?code&state (or ?error&state)
                    the flow taken by its state's digest (once), the
                    browser's cookie compared with the flow's, the code
                    exchanged at the provider's token endpoint
                    (sb_provider_token) with the verifier, the tokens
                    sealed and stored by connection_store (migration 011,
                    which audits connection_connected); a page says so.

    A refusal whose tenant is known (a ticket that verifies but expired or
    names another connector, a browser without the flow's cookie) is
    audited as connect_refused. No state, code, verifier, ticket or token
    is ever logged. While the provider answers, the job is on the role's
    list of exchanges (self->connect), where sb_connect_abandon finds it. */
#include "sb_conn.h"
#include "sb_page.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_oauth_form.h"
#include "sb_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_CONNECT_MAX_PAGE         (32 * 1024) /* bytes of one rendered page */
#define SB_CONNECT_MAX_CONNECTOR    64          /* bytes of a connector name */
#define SB_CONNECT_MAX_TENANT       63          /* bytes of a tenant ID (migration 001) */
#define SB_CONNECT_MAX_SUBJECT      256         /* bytes of a subject (SB_MAX_SUBJECT_LEN) */
#define SB_CONNECT_MAX_EMAIL        254         /* bytes of an email (migration 004) */
#define SB_CONNECT_MAX_TICKET       2048        /* characters of a ticket */
#define SB_CONNECT_MAX_PAYLOAD      1024        /* bytes of a ticket's decoded payload */
#define SB_CONNECT_MAX_LOCATION     8192        /* bytes of the redirect to the provider */
#define SB_CONNECT_STORE_MS         200         /* of the job's time kept for storing the tokens */
#define SB_CONNECT_MAX_ERROR        64          /* bytes of a provider's error code shown */

static const char s_ask_again [] = "Ask your assistant for a new link.";

//  A ticket's contents.
typedef struct {
    char tenant [SB_CONNECT_MAX_TENANT + 1];
    char subject [SB_CONNECT_MAX_SUBJECT + 1];
    char connector [SB_CONNECT_MAX_CONNECTOR + 1];
    int64_t exp;                            /* Unix seconds */
} s_ticket_t;

typedef enum {
    S_TICKET_OK = 0,
    S_TICKET_BAD,                           /* malformed or not ours: no tenant known */
    S_TICKET_EXPIRED,                       /* ours, past exp */
    S_TICKET_OTHER,                         /* ours, for another connector */
} s_ticket_rc_t;

//  A confirmation page or a flow's start, between steps.
typedef struct {
    sb_token_role_t *self;
    s_ticket_t ticket;
    const sb_connector_t *connector;        /* borrowed from self->connectors */
    char csrf [SB_PAGE_RANDOM_LEN + 1];     /* GET: the CSRF cookie's value */
    char *location;                         /* POST: the provider's URL (holds the state) */
    char *cookie;                           /* POST: the Set-Cookie of the flow's cookie */
} s_start_t;

//  A callback between steps; on the role's list while the provider answers.
struct _sb_connect_t {
    sb_token_role_t *self;
    sb_worker_job_t *job;                   /* while the provider answers */
    struct _sb_connect_t *next;             /* the role's list of exchanges */
    int64_t request;                        /* sb_provider_token's id */
    const sb_connector_t *connector;        /* borrowed from self->connectors */
    char tenant [SB_CONNECT_MAX_TENANT + 1];
    char subject [SB_CONNECT_MAX_SUBJECT + 1];
    char connector_name [SB_CONNECT_MAX_CONNECTOR + 1];
    char flow_key_id [SB_CONN_KEY_ID_LEN * 2 + 1];  /* the key the verifier is sealed under */
    char key_id [SB_CONN_KEY_ID_LEN * 2 + 1];       /* the current key: the tokens' */
    char redirect_uri [SB_OAUTH_MAX_URI + 32];
    char cookie_hash [SB_HMAC_SHA256_LEN * 2 + 1];  /* hex */
    char *code;                             /* the provider's code (wiped) */
    char *cookie;                           /* the browser's flow cookie (wiped) */
    uint8_t *verifier_enc;                  /* the sealed verifier */
    size_t verifier_enc_len;
};
typedef struct _sb_connect_t s_exchange_t;

static void
s_start_destroy (s_start_t **self_p)
{
    if (!*self_p)
        return;
    s_start_t *self = *self_p;
    sb_token_wipe_free (&self->location);
    sb_token_wipe_free (&self->cookie);
    sb_crypto_wipe (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

static void
s_start_free (void *arg)
{
    s_start_t *start = arg;
    s_start_destroy (&start);
}

static void
s_exchange_destroy (s_exchange_t **self_p)
{
    if (!*self_p)
        return;
    s_exchange_t *self = *self_p;
    sb_token_wipe_free (&self->code);
    sb_token_wipe_free (&self->cookie);
    free (self->verifier_enc);
    sb_crypto_wipe (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

static void
s_exchange_free (void *arg)
{
    s_exchange_t *exchange = arg;
    s_exchange_destroy (&exchange);
}

//  ---------------------------------------------------------------------
//  Pages

static const char s_head [] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<meta name=\"referrer\" content=\"same-origin\">"
    "<title>Connect – switchboard</title><style>"
    "body{font-family:system-ui,sans-serif;background:#f4f4f5;color:#18181b;margin:0}"
    "main{max-width:28rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:.5rem}"
    "h1{font-size:1.3rem}.warn{font-weight:600}.error{color:#b91c1c;font-weight:600}"
    "button{width:100%;margin-top:1rem;padding:.6rem;font-size:1rem}"
    "</style></head><body><main>\n";

//  A page with heading `title` and sentences `first` and `second` (NULL:
//  none), `first` styled as `class` (NULL: plain). A new string, or NULL.
static char *
s_message_page (const char *title, const char *class, const char *first, const char *second)
{
    sb_page_t page = { .max = SB_CONNECT_MAX_PAGE };
    sb_page_put (&page, s_head);
    sb_page_put (&page, "<h1>");
    sb_page_esc (&page, title);
    sb_page_put (&page, "</h1>\n<p");
    if (class) {
        sb_page_put (&page, " class=\"");
        sb_page_put (&page, class);
        sb_page_put (&page, "\" role=\"alert\"");
    }
    sb_page_put (&page, ">");
    sb_page_esc (&page, first);
    sb_page_put (&page, "</p>\n");
    if (second) {
        sb_page_put (&page, "<p>");
        sb_page_esc (&page, second);
        sb_page_put (&page, "</p>\n");
    }
    sb_page_put (&page, "</main></body></html>\n");
    return sb_page_take (&page);
}

//  Ends the job with the page of a step that cannot go on (400): `sentence`
//  and what to do (`next`, NULL: ask for a new link).
static void
s_refuse_page (sb_worker_job_t **job_p, const char *sentence, const char *next)
{
    sb_page_answer (job_p, 400, s_message_page ("This connection cannot go on", "error", sentence,
                                               next? next: s_ask_again), NULL, NULL,
                    SB_PAGE_SAME_ORIGIN);
}

//  ---------------------------------------------------------------------
//  Cookies: https issuers get __Host- names (sb_page_secure). The state,
//  verifier and cookies are sb_page_random_text's.

//  The CSRF cookie's name.
static const char *
s_csrf_cookie_name (const sb_token_role_t *self)
{
    return sb_page_secure (self)? "__Host-sb_connect_csrf": "sb_connect_csrf";
}

//  The flow's cookie's name: the browser that started a flow ends it.
static const char *
s_flow_cookie_name (const sb_token_role_t *self)
{
    return sb_page_secure (self)? "__Host-sb_connect": "sb_connect";
}

//  The lowercase hex of SHA-256 (`text`) into `hex`.
static void
s_sha256_hex (const char *text, char hex [SB_HMAC_SHA256_LEN * 2 + 1])
{
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_sha256 (text, strlen (text), digest);
    sb_hex_encode (digest, sizeof digest, hex);
}

//  The subkey the page's CSRF field is a MAC under: base64url
//  (HMAC-SHA256 (subkey "connect-csrf", cookie "\n" ticket)).
static const char s_csrf_purpose [] = "connect-csrf";

//  ---------------------------------------------------------------------
//  Tickets

//  True for a connector name: ^[A-Za-z0-9-]{1,64}$.
static bool
s_connector_name_ok (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > SB_CONNECT_MAX_CONNECTOR)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||    c == '-'))
            return false;
    }
    return true;
}

//  True for a tenant ID: ^[a-z0-9][a-z0-9_-]{0,62}$.
static bool
s_tenant_ok (const char *tenant)
{
    size_t len = strlen (tenant);
    if (len == 0 || len > SB_CONNECT_MAX_TENANT)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = tenant [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
               || (i > 0 && (c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

//  The MAC of a ticket's payload text into `mac`. 0, or -1 (no secret).
static int
s_ticket_mac (sb_token_role_t *self, const char *payload, size_t len,
              uint8_t mac [SB_HMAC_SHA256_LEN])
{
    uint8_t key [SB_TOKEN_SUBKEY_LEN];
    if (sb_token_subkey (self, "connect-ticket", key))
        return -1;
    sb_hmac_sha256 (key, sizeof key, (const uint8_t *) payload, len, mac);
    sb_crypto_wipe (key, sizeof key);
    return 0;
}

char *
sb_connect_url (sb_token_role_t *self, const char *tenant, const char *subject,
                const char *connector)
{
    if (!self->issuer [0] || !self->secret_len || !tenant || !subject || !connector
    ||  !s_tenant_ok (tenant) || !s_connector_name_ok (connector) || !*subject
    ||  strlen (subject) > SB_CONNECT_MAX_SUBJECT)
        return NULL;
    json_t *doc = json_pack ("{s:s, s:s, s:s, s:I}", "tenant", tenant, "subject", subject,
                             "connector", connector, "exp",
                             (json_int_t) (sb_clock_wall_ms () / 1000 + SB_CONNECT_TICKET_TTL_S));
    char *json = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    char *payload = json? sb_base64url_encode ((const uint8_t *) json, strlen (json)): NULL;
    free (json);
    uint8_t mac [SB_HMAC_SHA256_LEN];
    char *mac_text = payload && s_ticket_mac (self, payload, strlen (payload), mac) == 0?
                     sb_base64url_encode (mac, sizeof mac): NULL;
    char *url = mac_text? sb_strfmt ("%s/connect/%s?ticket=%s.%s", self->issuer, connector,
                                     payload, mac_text): NULL;
    free (payload);
    free (mac_text);
    return url;
}

//  Checks `text` (a ticket) for `connector` (the path's). Fills `ticket`
//  when the MAC verifies (also when expired or for another connector).
static s_ticket_rc_t
s_ticket_check (sb_token_role_t *self, const char *text, const char *connector,
                s_ticket_t *ticket)
{
    memset (ticket, 0, sizeof *ticket);
    if (!text || strlen (text) > SB_CONNECT_MAX_TICKET)
        return S_TICKET_BAD;
    const char *dot = strchr (text, '.');
    if (!dot || dot == text)
        return S_TICKET_BAD;
    size_t payload_len = (size_t) (dot - text);
    uint8_t expected [SB_HMAC_SHA256_LEN], given [SB_HMAC_SHA256_LEN + 1];
    size_t given_len = 0;
    if (s_ticket_mac (self, text, payload_len, expected)
    ||  sb_base64url_decode_strict (dot + 1, strlen (dot + 1), given, sizeof given, &given_len)
    ||  given_len != SB_HMAC_SHA256_LEN
    ||  !sb_crypto_equal (expected, given, SB_HMAC_SHA256_LEN))
        return S_TICKET_BAD;
    //  Ours from here on: the payload is what sb_connect_url wrote.
    uint8_t json [SB_CONNECT_MAX_PAYLOAD];
    size_t json_len = 0;
    if (sb_base64url_decode_strict (text, payload_len, json, sizeof json, &json_len))
        return S_TICKET_BAD;
    json_t *doc = json_loadb ((const char *) json, json_len, 0, NULL);
    const char *tenant = NULL, *subject = NULL, *name = NULL;
    json_int_t exp = 0;
    int rc = doc? json_unpack (doc, "{s:s, s:s, s:s, s:I}", "tenant", &tenant, "subject", &subject,
                               "connector", &name, "exp", &exp): -1;
    s_ticket_rc_t outcome = S_TICKET_BAD;
    if (rc == 0 && s_tenant_ok (tenant) && *subject && strlen (subject) <= SB_CONNECT_MAX_SUBJECT
    &&  s_connector_name_ok (name)) {
        snprintf (ticket->tenant, sizeof ticket->tenant, "%s", tenant);
        snprintf (ticket->subject, sizeof ticket->subject, "%s", subject);
        snprintf (ticket->connector, sizeof ticket->connector, "%s", name);
        ticket->exp = exp;
        if (strcmp (name, connector) != 0)
            outcome = S_TICKET_OTHER;
        else
        if (exp <= sb_clock_wall_ms () / 1000)
            outcome = S_TICKET_EXPIRED;
        else
            outcome = S_TICKET_OK;
    }
    json_decref (doc);
    return outcome;
}

//  ---------------------------------------------------------------------
//  Refusals with a known tenant: audited, then the page

typedef struct {
    char sentence [256];
    char next [256];
} s_refusal_t;

static void
s_on_refusal_audited (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_refusal_t *refusal = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK)
        sb_log_warn ("db_error", "connect_refused: %s", error? error: PQresultErrorMessage (res));
    s_refuse_page (job_p, refusal->sentence, refusal->next [0]? refusal->next: NULL);
    free (refusal);
}

//  Audits connect_refused ({connector, reason}) under `tenant` by
//  `subject`, then ends the job with the refusal page.
static void
s_refuse_audited (sb_token_role_t *self, sb_worker_job_t *job, const char *tenant,
                  const char *subject, const char *connector, const char *reason,
                  const char *sentence, const char *next)
{
    sb_log_info ("connect_refused", "tenant %s connector %s: %s", tenant, connector, reason);
    s_refusal_t *refusal = calloc (1, sizeof *refusal);
    if (!refusal) {
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    snprintf (refusal->sentence, sizeof refusal->sentence, "%s", sentence);
    snprintf (refusal->next, sizeof refusal->next, "%s", next? next: "");
    const char *params [] = { tenant, subject, connector, reason };
    sb_token_query (self, job, "SELECT connect_refused ($1, $2, $3, $4)", 4, params,
                    s_on_refusal_audited, refusal, free);
}

//  A ticket that did not pass: the page (audited when the tenant is known).
static void
s_ticket_refused (sb_token_role_t *self, sb_worker_job_t *job, s_ticket_rc_t rc,
                  const s_ticket_t *ticket, const char *remote)
{
    if (rc == S_TICKET_EXPIRED)
        s_refuse_audited (self, job, ticket->tenant, ticket->subject, ticket->connector,
                          "ticket_expired", "This connect link expired.", NULL);
    else
    if (rc == S_TICKET_OTHER)
        s_refuse_audited (self, job, ticket->tenant, ticket->subject, ticket->connector,
                          "ticket_other_connector", "This connect link is for another connector.",
                          NULL);
    else {
        sb_log_warn ("connect_refused", "a connect ticket that is not valid (from %s)", remote);
        s_refuse_page (&job, "This connect link is not valid.", NULL);
    }
}

//  The connector of `name` that a tenant connects with OAuth here, or NULL
//  having ended the job with the page that says why not.
static const sb_connector_t *
s_connector_find (sb_token_role_t *self, sb_worker_job_t **job_p, const char *name)
{
    const sb_connector_t *connector = self->connectors?
                                      sb_connectors_find (self->connectors, name): NULL;
    if (!connector) {
        s_refuse_page (job_p, "This service is not one switchboard connects to.", NULL);
        return NULL;
    }
    const sb_connector_oauth_t *oauth = sb_connector_oauth (connector);
    if (sb_connector_credential (connector) != SB_CREDENTIAL_TENANT
    ||  sb_connector_auth_type (connector) != SB_AUTH_OAUTH2 || !oauth) {
        s_refuse_page (job_p, "This service is not connected through a sign-in: an administrator "
                       "adds its key with sb-admin.", "Ask your administrator.");
        return NULL;
    }
    if (!oauth->client_id || !oauth->authorize_url || !oauth->token_url) {
        sb_log_error ("connect_unconfigured", "connector %s: its OAuth client ID is not set "
                      "(auth.oauth2.client_id_env)", name);
        s_refuse_page (job_p, "This service's sign-in is not set up on this server.",
                       "Ask your administrator.");
        return NULL;
    }
    return connector;
}

//  ---------------------------------------------------------------------
//  connect/start: GET, the confirmation page

//  The page for `start`, its CSRF field `csrf_field` and `ticket_text`;
//  `email` (NULL: none) names the user. A new string, or NULL.
static char *
s_confirm_page (const s_start_t *start, const char *ticket_text, const char *csrf_field,
                const char *email)
{
    const char *title = sb_connector_title (start->connector);
    sb_page_t page = { .max = SB_CONNECT_MAX_PAGE };
    sb_page_put (&page, s_head);
    sb_page_put (&page, "<h1>Connect <strong>");
    sb_page_esc (&page, title);
    sb_page_put (&page, "</strong></h1>\n<p>Your assistant asks to connect <strong>");
    sb_page_esc (&page, title);
    sb_page_put (&page, "</strong> for the organisation <strong>");
    sb_page_esc (&page, start->ticket.tenant);
    sb_page_put (&page, "</strong>, as <strong>");
    sb_page_esc (&page, email? email: start->ticket.subject);
    sb_page_put (&page, "</strong>.</p>\n<p>Continue takes you to ");
    sb_page_esc (&page, title);
    sb_page_put (&page, " to sign in and allow it. Your organisation's tools then use that access.</p>\n"
                  "<p class=\"warn\">Only continue if you asked for this in your assistant.</p>\n"
                  "<form method=\"post\" action=\"");
    sb_page_esc (&page, start->self->issuer);
    sb_page_put (&page, "/connect/");
    sb_page_esc (&page, start->ticket.connector);
    sb_page_put (&page, "\">\n<input type=\"hidden\" name=\"ticket\" value=\"");
    sb_page_esc (&page, ticket_text);
    sb_page_put (&page, "\">\n<input type=\"hidden\" name=\"csrf\" value=\"");
    sb_page_esc (&page, csrf_field);
    sb_page_put (&page, "\">\n<button type=\"submit\">Continue</button>\n</form>\n</main></body></html>\n");
    return sb_page_take (&page);
}

//  The answer of `what` (connect_page_info, connect_flow_create), one row
//  whose first column says whether the ticket's tenant is still there.
//  True when it is; else the job is ended (the database failed, or the
//  page says the organisation is gone) and the start destroyed.
static bool
s_tenant_there (sb_worker_job_t **job_p, const PGresult *res, const char *error,
                const char *what, s_start_t **start_p)
{
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "%s: %s", what, error? error: PQresultErrorMessage (res));
        s_start_destroy (start_p);
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return false;
    }
    if (strcmp (PQgetvalue (res, 0, 0), "t") != 0) {
        s_start_destroy (start_p);
        s_refuse_page (job_p, "This organisation does not exist any more.", NULL);
        return false;
    }
    return true;
}

//  The page's facts (connect_page_info) for a GET: show it.
static void
s_on_page_info (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_start_t *start = arg;
    if (!s_tenant_there (job_p, res, error, "connect_page_info", &start))
        return;
    const char *email = PQgetisnull (res, 0, 1)? NULL: PQgetvalue (res, 0, 1);
    if (email && (strlen (email) > SB_CONNECT_MAX_EMAIL || !sb_page_utf8_text (email)))
        email = NULL;
    sb_http_request_t request = { 0 };
    if (sb_token_http_request (job_p, &request)) {
        s_start_destroy (&start);
        return;
    }
    sb_oauth_form_t *query = NULL;
    const char *ticket_text = NULL;
    if (sb_oauth_form_parse (request.query, strlen (request.query), &query, NULL, 0) == 0)
        ticket_text = sb_oauth_form_get (query, "ticket");
    sb_token_role_t *self = start->self;
    char *field = ticket_text? sb_page_csrf_field (self, s_csrf_purpose, start->csrf, ticket_text)
                             : NULL;
    char *body = field? s_confirm_page (start, ticket_text, field, email): NULL;
    free (field);
    char cookie [SB_PAGE_MAX_COOKIE];
    sb_page_csrf_cookie (self, s_csrf_cookie_name (self), start->csrf, cookie);
    //  Browsers apply form-action to every redirect after the POST: the
    //  provider's origin, and any https one, for a provider whose sign-in
    //  sends the browser on to another (a federated or regional login).
    char origin [SB_PAGE_MAX_ORIGIN], sources [SB_PAGE_MAX_SOURCES];
    sb_page_origin (sb_connector_oauth (start->connector)->authorize_url, origin, sizeof origin);
    snprintf (sources, sizeof sources, "%s%shttps:", origin, *origin? " ": "");
    sb_page_answer (job_p, 200, body, cookie, sources, SB_PAGE_SAME_ORIGIN);
    sb_oauth_form_destroy (&query);
    sb_http_request_clear (&request);
    s_start_destroy (&start);
}

//  ---------------------------------------------------------------------
//  connect/start: POST, the flow starts

//  The URL of the provider's authorization endpoint with the request's
//  parameters. A new string, or NULL (out of memory, too long).
static char *
s_authorize_location (const sb_connector_oauth_t *oauth, const char *redirect_uri,
                      const char *state, const char *challenge)
{
    const char *names [8 + SB_MAX_OAUTH_PARAMS];
    const char *values [8 + SB_MAX_OAUTH_PARAMS];
    size_t count = 0;
    names [count] = "response_type";            values [count++] = "code";
    names [count] = "client_id";                values [count++] = oauth->client_id;
    names [count] = "redirect_uri";             values [count++] = redirect_uri;
    names [count] = "state";                    values [count++] = state;
    names [count] = "code_challenge";           values [count++] = challenge;
    names [count] = "code_challenge_method";    values [count++] = "S256";
    if (oauth->scopes && *oauth->scopes) {
        names [count] = "scope";                values [count++] = oauth->scopes;
    }
    for (size_t i = 0; i < oauth->param_count && i < SB_MAX_OAUTH_PARAMS; i++) {
        names [count] = oauth->param_names [i];
        values [count++] = oauth->param_values [i];
    }
    char *location = NULL;
    size_t len = 0;
    int rc = sb_oauth_query_append (&location, &len, SB_CONNECT_MAX_LOCATION,
                                    oauth->authorize_url, false);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *sep = i? "&": strchr (oauth->authorize_url, '?')? "&": "?";
        rc = sb_oauth_query_append (&location, &len, SB_CONNECT_MAX_LOCATION, sep, false);
        if (rc == 0)
            rc = sb_oauth_query_append (&location, &len, SB_CONNECT_MAX_LOCATION, names [i], true);
        if (rc == 0)
            rc = sb_oauth_query_append (&location, &len, SB_CONNECT_MAX_LOCATION, "=", false);
        if (rc == 0)
            rc = sb_oauth_query_append (&location, &len, SB_CONNECT_MAX_LOCATION, values [i], true);
    }
    if (rc) {
        if (location)
            sb_crypto_wipe (location, len);
        free (location);
        return NULL;
    }
    return location;
}

static void
s_on_flow_created (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_start_t *start = arg;
    if (!s_tenant_there (job_p, res, error, "connect_flow_create", &start))
        return;
    sb_log_info ("connect_started", "tenant %s connector %s", start->ticket.tenant,
                 start->ticket.connector);
    sb_page_redirect (job_p, start->location, start->cookie);
    s_start_destroy (&start);
}

//  The key ring knows the current key: make the flow's secrets and store it.
static void
s_on_start_keys (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    s_start_t *start = arg;
    sb_token_role_t *self = start->self;
    const sb_connector_oauth_t *oauth = sb_connector_oauth (start->connector);
    char state [SB_PAGE_RANDOM_LEN + 1], verifier [SB_PAGE_RANDOM_LEN + 1];
    char cookie [SB_PAGE_RANDOM_LEN + 1];
    char state_hash [SB_HMAC_SHA256_LEN * 2 + 1], cookie_hash [SB_HMAC_SHA256_LEN * 2 + 1];
    char redirect_uri [SB_OAUTH_MAX_URI + 32];
    snprintf (redirect_uri, sizeof redirect_uri, "%s/connect/callback", self->issuer);
    char *challenge = NULL, *sealed_hex = NULL;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    if (sb_page_random_text (state) || sb_page_random_text (verifier)
    ||  sb_page_random_text (cookie)) {
        sb_worker_job_fail (job_p, "no randomness for a connect flow");
        goto out;
    }
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_sha256 (verifier, strlen (verifier), digest);
    challenge = sb_base64url_encode (digest, sizeof digest);
    s_sha256_hex (state, state_hash);
    s_sha256_hex (cookie, cookie_hash);
    sealed = sb_conn_seal (self, key_id, start->ticket.tenant, start->ticket.connector,
                           "verifier", verifier, strlen (verifier), &sealed_len);
    sealed_hex = sealed? malloc (sealed_len * 2 + 1): NULL;
    if (sealed_hex)
        sb_hex_encode (sealed, sealed_len, sealed_hex);
    start->location = challenge? s_authorize_location (oauth, redirect_uri, state, challenge): NULL;
    if (sb_page_secure (self))
        start->cookie = sb_strfmt ("%s=%s; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age=%d",
                                   s_flow_cookie_name (self), cookie, SB_CONNECT_FLOW_TTL_S);
    else
        start->cookie = sb_strfmt ("%s=%s; HttpOnly; SameSite=Lax; Path=/; Max-Age=%d",
                                   s_flow_cookie_name (self), cookie, SB_CONNECT_FLOW_TTL_S);
    if (!challenge || !sealed_hex || !start->cookie) {
        sb_worker_job_fail (job_p, "out of memory");
        goto out;
    }
    if (!start->location) {
        sb_log_error ("connect_unconfigured", "connector %s: the authorization request is longer "
                      "than %d bytes", start->ticket.connector, SB_CONNECT_MAX_LOCATION);
        s_refuse_page (job_p, "This service's sign-in is not set up right on this server.",
                       "Ask your administrator.");
        goto out;
    }
    char ttl [16];
    snprintf (ttl, sizeof ttl, "%d", SB_CONNECT_FLOW_TTL_S);
    const char *params [] = {
        state_hash, start->ticket.tenant, start->ticket.subject, start->ticket.connector,
        sealed_hex, key_id, cookie_hash, redirect_uri, ttl
    };
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    sb_token_query (self, job, "SELECT connect_flow_create (decode ($1, 'hex'), $2, $3, $4, "
                    "decode ($5, 'hex'), $6, decode ($7, 'hex'), $8, $9::int)",
                    9, params, s_on_flow_created, start, s_start_free);
    start = NULL;
out:
    sb_crypto_wipe (state, sizeof state);
    sb_crypto_wipe (verifier, sizeof verifier);
    sb_crypto_wipe (cookie, sizeof cookie);
    free (challenge);
    free (sealed);
    free (sealed_hex);
    s_start_destroy (&start);
}

//  ---------------------------------------------------------------------
//  connect/start

//  The start of op `op` ("connect/start"): the role needs an issuer and
//  a secret, the job an HTTP request. Returns 0 with `request` read
//  (zeroed before), or -1 having ended the job.
static int
s_op_begin (sb_token_role_t *self, sb_worker_job_t **job_p, const char *op,
            sb_http_request_t *request)
{
    if (!self->issuer [0] || !self->secret_len) {
        sb_log_warn ("connect_unconfigured", "%s needs --issuer and a secret", op);
        sb_worker_job_fail (job_p, "the authorization server is not configured (--issuer, "
                            "--secret-key-file)");
        return -1;
    }
    return sb_token_http_request (job_p, request);
}

//  The issuer's origin is the only one a POST may come from.
static bool
s_origin_ok (sb_token_role_t *self, const sb_http_request_t *request)
{
    const char *origin = sb_http_request_header (request, "origin");
    if (!origin)
        return true;                //  not sent: the CSRF pair decides
    char mine [SB_PAGE_MAX_ORIGIN];
    sb_page_origin (self->issuer, mine, sizeof mine);
    return *mine && strcmp (origin, mine) == 0;
}

void
sb_connect_start (sb_token_role_t *self, sb_worker_job_t *job)
{
    sb_http_request_t request = { 0 };
    if (s_op_begin (self, &job, "connect/start", &request))
        return;
    sb_oauth_form_t *form = NULL;
    s_start_t *start = NULL;
    bool post = strcmp (request.method, "POST") == 0;
    const char *name = strncmp (request.path, "/connect/", 9) == 0? request.path + 9: "";
    if (!post && strcmp (request.method, "GET") != 0) {
        s_refuse_page (&job, "Only GET and POST reach /connect.", NULL);
        goto out;
    }
    if (!s_connector_name_ok (name)) {
        s_refuse_page (&job, "This service is not one switchboard connects to.", NULL);
        goto out;
    }
    const char *text = post? request.body: request.query;
    if (sb_oauth_form_parse (text, strlen (text), &form, NULL, 0)) {
        s_refuse_page (&job, post? "The connect form is malformed.": "This connect link is not valid.",
                       NULL);
        goto out;
    }
    start = calloc (1, sizeof *start);
    if (!start) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    start->self = self;
    const char *ticket_text = sb_oauth_form_get (form, "ticket");
    if (post) {
        //  Where the form came from first: another site's form, or one
        //  without our page's CSRF pair, goes no further. No tenant is
        //  trusted yet: the process log.
        char csrf [SB_PAGE_RANDOM_LEN + 1];
        const char *field = sb_oauth_form_get (form, "csrf");
        bool csrf_ok = sb_page_cookie_get (&request, s_csrf_cookie_name (self), csrf) == 0
                    && sb_page_csrf_ok (self, s_csrf_purpose, csrf, ticket_text, field);
        if (!s_origin_ok (self, &request) || !csrf_ok) {
            sb_log_warn ("csrf_refused", "POST /connect/%s from another origin or without a "
                         "matching CSRF pair (from %s)", name, request.remote);
            s_refuse_page (&job, "This connect form expired or did not come from this server.",
                           "Open the link from your assistant again.");
            goto out;
        }
    }
    s_ticket_rc_t rc = s_ticket_check (self, ticket_text, name, &start->ticket);
    if (rc != S_TICKET_OK) {
        s_ticket_refused (self, job, rc, &start->ticket, request.remote);
        job = NULL;
        goto out;
    }
    start->connector = s_connector_find (self, &job, name);
    if (!start->connector)
        goto out;
    if (post) {
        sb_conn_keys_ready (self, job, NULL, s_on_start_keys, start, s_start_free);
        job = NULL;
        start = NULL;
        goto out;
    }
    //  Keep a CSRF cookie the browser already has (another tab's page
    //  stays valid); else a new one.
    if (sb_page_cookie_get (&request, s_csrf_cookie_name (self), start->csrf)
    &&  sb_page_random_text (start->csrf)) {
        sb_worker_job_fail (&job, "no randomness for a CSRF cookie");
        goto out;
    }
    const char *params [] = { start->ticket.tenant, start->ticket.subject };
    sb_token_query (self, job, "SELECT tenant_known, email FROM connect_page_info ($1, $2)",
                    2, params, s_on_page_info, start, s_start_free);
    start = NULL;
out:
    s_start_destroy (&start);
    sb_oauth_form_destroy (&form);
    if (request.body)
        sb_crypto_wipe (request.body, request.body_len);
    sb_http_request_clear (&request);
}

//  ---------------------------------------------------------------------
//  connect/callback

//  Unlinks `exchange` from the role's list.
static void
s_unlink (s_exchange_t *exchange)
{
    for (s_exchange_t **at = &exchange->self->connect; *at; at = &(*at)->next)
        if (*at == exchange) {
            *at = exchange->next;
            break;
        }
    exchange->next = NULL;
}

static void
s_on_stored (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_exchange_t *exchange = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "connection_store: %s", error? error: PQresultErrorMessage (res));
        s_exchange_destroy (&exchange);
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return;
    }
    sb_log_info ("connect_done", "tenant %s connector %s: connection %s version %s",
                 exchange->tenant, exchange->connector_name, PQgetvalue (res, 0, 0),
                 PQnfields (res) > 1? PQgetvalue (res, 0, 1): "?");
    char title [160], first [512];
    snprintf (title, sizeof title, "Connected %s", sb_connector_title (exchange->connector));
    snprintf (first, sizeof first, "Connected %s for %s.", sb_connector_title (exchange->connector),
              exchange->tenant);
    sb_page_answer (job_p, 200, s_message_page (title, NULL, first,
                   "You can close this tab and go back to your assistant."), NULL, NULL,
                    SB_PAGE_SAME_ORIGIN);
    s_exchange_destroy (&exchange);
}

//  The provider answered the code's exchange.
static void
s_on_token (sb_provider_outcome_t outcome, sb_provider_tokens_t *tokens, const char *detail,
            int retry_after_s, void *arg)
{
    s_exchange_t *exchange = arg;
    s_unlink (exchange);
    sb_token_role_t *self = exchange->self;
    sb_worker_job_t *job = exchange->job;
    exchange->job = NULL;
    const char *title = sb_connector_title (exchange->connector);
    char sentence [256];
    if (outcome != SB_PROVIDER_OK) {
        sb_log_warn ("connect_exchange_failed", "tenant %s connector %s: %s", exchange->tenant,
                     exchange->connector_name, detail? detail: "(no detail)");
        if (outcome == SB_PROVIDER_REFUSED)
            snprintf (sentence, sizeof sentence, "%s did not accept the sign-in (its code was "
                      "refused). Nothing was connected.", title);
        else
            snprintf (sentence, sizeof sentence, "%s could not be reached to finish the sign-in. "
                      "Nothing was connected.", title);
        s_exchange_destroy (&exchange);
        s_refuse_page (&job, sentence, "Open the link from your assistant again.");
        return;
    }
    size_t access_len = 0, refresh_len = 0;
    uint8_t *access = sb_conn_seal (self, exchange->key_id, exchange->tenant,
                                    exchange->connector_name, "access", tokens->access_token,
                                    strlen (tokens->access_token), &access_len);
    uint8_t *refresh = tokens->refresh_token?
                       sb_conn_seal (self, exchange->key_id, exchange->tenant,
                                     exchange->connector_name, "refresh", tokens->refresh_token,
                                     strlen (tokens->refresh_token), &refresh_len): NULL;
    char *access_hex = access? malloc (access_len * 2 + 1): NULL;
    char *refresh_hex = refresh? malloc (refresh_len * 2 + 1): NULL;
    char *vars = tokens->vars? json_dumps (tokens->vars, JSON_COMPACT): strdup ("{}");
    char expires [24];
    snprintf (expires, sizeof expires, "%lld", (long long) tokens->expires_in);
    bool expiry_known = tokens->expires_in >= 0;
    const sb_connector_oauth_t *oauth = sb_connector_oauth (exchange->connector);
    const char *scopes = tokens->scope? tokens->scope: oauth->scopes;
    char *scopes_copy = scopes? strdup (scopes): NULL;
    bool ok = access_hex && (!tokens->refresh_token || refresh_hex) && vars
           && (!scopes || scopes_copy);
    if (access_hex)
        sb_hex_encode (access, access_len, access_hex);
    if (refresh_hex)
        sb_hex_encode (refresh, refresh_len, refresh_hex);
    sb_provider_tokens_clear (tokens);
    free (access);
    free (refresh);
    if (!ok) {
        sb_log_warn ("connect_seal_failed", "tenant %s connector %s: the tokens could not be "
                     "sealed (a token above %d bytes, or out of memory)", exchange->tenant,
                     exchange->connector_name, SB_MAX_CONN_SECRET);
        s_exchange_destroy (&exchange);
        snprintf (sentence, sizeof sentence, "What %s answered could not be stored. Nothing was "
                  "connected.", title);
        s_refuse_page (&job, sentence, NULL);
    }
    else {
        const char *params [] = {
            exchange->tenant, exchange->connector_name, access_hex, refresh_hex, exchange->key_id,
            expiry_known? expires: NULL, scopes_copy, vars, exchange->subject
        };
        sb_token_query (self, job, "SELECT * FROM connection_store ($1, $2, 'oauth2', "
                        "decode ($3, 'hex'), decode ($4, 'hex'), $5, "
                        "CASE WHEN $6::bigint IS NULL THEN NULL "
                        "ELSE now () + $6::bigint * interval '1 second' END, $7, $8::jsonb, $9)",
                        9, params, s_on_stored, exchange, s_exchange_free);
    }
    free (access_hex);
    free (refresh_hex);
    free (vars);
    free (scopes_copy);
}

//  The key ring holds the flow's key and the current one: open the
//  verifier and exchange the code.
static void
s_on_callback_keys (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    s_exchange_t *exchange = arg;
    sb_token_role_t *self = exchange->self;
    snprintf (exchange->key_id, sizeof exchange->key_id, "%s", key_id);
    char *verifier = sb_conn_open (self, exchange->flow_key_id, exchange->tenant,
                                   exchange->connector_name, "verifier", exchange->verifier_enc,
                                   exchange->verifier_enc_len);
    if (!verifier) {
        sb_log_error ("connect_verifier_unopened", "tenant %s connector %s: the flow's verifier "
                      "does not open under key %s", exchange->tenant, exchange->connector_name,
                      exchange->flow_key_id);
        s_exchange_destroy (&exchange);
        sb_worker_job_fail (job_p, "a connect flow's verifier does not open");
        return;
    }
    if (!self->provider) {
        sb_crypto_wipe (verifier, strlen (verifier));
        free (verifier);
        s_exchange_destroy (&exchange);
        sb_worker_job_fail (job_p, "the token service cannot reach providers");
        return;
    }
    exchange->job = *job_p;
    *job_p = NULL;
    exchange->next = self->connect;
    self->connect = exchange;
    int64_t deadline = sb_worker_job_deadline (exchange->job) - SB_CONNECT_STORE_MS;
    exchange->request = sb_provider_token (self->provider, exchange->connector, exchange->code,
                                           verifier, exchange->redirect_uri, NULL, deadline,
                                           s_on_token, exchange);
    sb_crypto_wipe (verifier, strlen (verifier));
    free (verifier);
    if (exchange->request < 0) {
        s_unlink (exchange);
        sb_worker_job_t *job = exchange->job;
        s_exchange_destroy (&exchange);
        sb_worker_job_fail (&job, "the provider's token endpoint cannot be asked");
    }
}

//  The flow taken (or not): check it, then the keys.
static void
s_on_taken (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_exchange_t *exchange = arg;
    sb_token_role_t *self = exchange->self;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "connect_flow_take: %s", error? error: PQresultErrorMessage (res));
        s_exchange_destroy (&exchange);
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return;
    }
    const char *outcome = PQgetvalue (res, 0, 0);
    if (strcmp (outcome, "unknown") == 0) {
        s_exchange_destroy (&exchange);
        sb_log_info ("connect_refused", "a callback for no flow (used, expired or never made)");
        s_refuse_page (job_p, "This sign-in was already used, or is not one this server started.",
                       "Open the link from your assistant again.");
        return;
    }
    snprintf (exchange->tenant, sizeof exchange->tenant, "%s", PQgetvalue (res, 0, 1));
    snprintf (exchange->subject, sizeof exchange->subject, "%s", PQgetvalue (res, 0, 2));
    snprintf (exchange->connector_name, sizeof exchange->connector_name, "%s",
              PQgetvalue (res, 0, 3));
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    if (strcmp (outcome, "expired") == 0) {
        s_refuse_audited (self, job, exchange->tenant, exchange->subject, exchange->connector_name,
                          "flow_expired", "This sign-in took longer than 10 minutes and expired.",
                          "Open the link from your assistant again.");
        s_exchange_destroy (&exchange);
        return;
    }
    snprintf (exchange->flow_key_id, sizeof exchange->flow_key_id, "%s", PQgetvalue (res, 0, 5));
    snprintf (exchange->redirect_uri, sizeof exchange->redirect_uri, "%s", PQgetvalue (res, 0, 7));
    const char *flow_cookie = PQgetvalue (res, 0, 6);
    char mine [SB_HMAC_SHA256_LEN * 2 + 1] = "";
    if (exchange->cookie)
        s_sha256_hex (exchange->cookie, mine);
    if (!exchange->cookie || strlen (flow_cookie) != SB_HMAC_SHA256_LEN * 2
    ||  !sb_crypto_equal (mine, flow_cookie, SB_HMAC_SHA256_LEN * 2)) {
        s_refuse_audited (self, job, exchange->tenant, exchange->subject, exchange->connector_name,
                          exchange->cookie? "cookie_mismatch": "cookie_missing",
                          "This sign-in was started in another browser.",
                          "Open the link again from the same browser.");
        s_exchange_destroy (&exchange);
        return;
    }
    exchange->connector = s_connector_find (self, &job, exchange->connector_name);
    if (!exchange->connector) {
        s_exchange_destroy (&exchange);
        return;
    }
    const char *hex = PQgetvalue (res, 0, 4);
    size_t hex_len = strlen (hex);
    exchange->verifier_enc = malloc (hex_len / 2 + 1);
    if (!exchange->verifier_enc
    ||  sb_hex_decode (hex, exchange->verifier_enc, hex_len / 2 + 1, &exchange->verifier_enc_len)) {
        s_exchange_destroy (&exchange);
        sb_worker_job_fail (&job, "a connect flow's verifier is malformed");
        return;
    }
    sb_conn_keys_ready (self, job, exchange->flow_key_id, s_on_callback_keys, exchange,
                        s_exchange_free);
}

static void
s_on_taken_error (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg);

void
sb_connect_callback (sb_token_role_t *self, sb_worker_job_t *job)
{
    sb_http_request_t request = { 0 };
    if (s_op_begin (self, &job, "connect/callback", &request))
        return;
    sb_oauth_form_t *query = NULL;
    s_exchange_t *exchange = NULL;
    if (strcmp (request.method, "GET") != 0) {
        s_refuse_page (&job, "Only GET reaches /connect/callback.", NULL);
        goto out;
    }
    if (sb_oauth_form_parse (request.query, strlen (request.query), &query, NULL, 0)) {
        s_refuse_page (&job, "The provider's answer is malformed.", NULL);
        goto out;
    }
    const char *state = sb_oauth_form_get (query, "state");
    const char *code = sb_oauth_form_get (query, "code");
    const char *provider_error = sb_oauth_form_get (query, "error");
    if (!state || (!code && !provider_error)) {
        s_refuse_page (&job, "The provider's answer has no state or no code.", NULL);
        goto out;
    }
    exchange = calloc (1, sizeof *exchange);
    if (!exchange) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    exchange->self = self;
    char cookie [SB_PAGE_RANDOM_LEN + 1];
    if (sb_page_cookie_get (&request, s_flow_cookie_name (self), cookie) == 0)
        exchange->cookie = strdup (cookie);
    sb_crypto_wipe (cookie, sizeof cookie);
    //  An error instead of a code: its word (when it is one) travels in
    //  `code`, marked by the answer function.
    if (provider_error) {
        bool word = strlen (provider_error) <= SB_CONNECT_MAX_ERROR;
        for (const char *p = provider_error; word && *p; p++)
            word = (*p >= 'a' && *p <= 'z') || *p == '_';
        exchange->code = strdup (word? provider_error: "error");
    }
    else
        exchange->code = strdup (code);
    if (!exchange->code) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    char state_hash [SB_HMAC_SHA256_LEN * 2 + 1];
    s_sha256_hex (state, state_hash);
    const char *params [] = { state_hash };
    sb_token_query (self, job, "SELECT outcome, tenant_id, subject, connector, verifier_enc, key_id, "
                    "cookie_hash, redirect_uri FROM connect_flow_take (decode ($1, 'hex'))", 1,
                    params, provider_error? s_on_taken_error: s_on_taken, exchange, s_exchange_free);
    exchange = NULL;
out:
    s_exchange_destroy (&exchange);
    sb_oauth_form_destroy (&query);
    sb_http_request_clear (&request);
}

//  The provider sent an error instead of a code (the person said no, or
//  the request did not suit it): the flow is spent, the page says which.
static void
s_on_taken_error (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_exchange_t *exchange = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        sb_log_warn ("db_error", "connect_flow_take: %s", error? error: PQresultErrorMessage (res));
        s_exchange_destroy (&exchange);
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        return;
    }
    //  The flow is gone either way (single use): what the provider said is
    //  shown to whoever holds the page, with no secret in it.
    const char *outcome = PQgetvalue (res, 0, 0);
    const char *name = strcmp (outcome, "unknown") == 0? NULL: PQgetvalue (res, 0, 3);
    const sb_connector_t *connector = name && exchange->self->connectors?
                                      sb_connectors_find (exchange->self->connectors, name): NULL;
    const char *title = connector? sb_connector_title (connector): "The service";
    sb_log_info ("connect_provider_error", "tenant %s connector %s: %s",
                 name? PQgetvalue (res, 0, 1): "(none)", name? name: "(none)", exchange->code);
    char sentence [256];
    if (strcmp (exchange->code, "access_denied") == 0)
        snprintf (sentence, sizeof sentence, "You did not allow access at %s, so nothing was "
                  "connected.", title);
    else
        snprintf (sentence, sizeof sentence, "%s refused the sign-in (%s). Nothing was connected.",
                  title, exchange->code);
    s_exchange_destroy (&exchange);
    s_refuse_page (job_p, sentence, "If you want to connect, open the link from your assistant again.");
}

bool
sb_connect_abandon (sb_token_role_t *self, sb_worker_job_t *job)
{
    for (s_exchange_t *exchange = self->connect; exchange; exchange = exchange->next)
        if (exchange->job == job) {
            s_unlink (exchange);
            if (self->provider)
                sb_provider_cancel (self->provider, exchange->request);
            s_exchange_destroy (&exchange);
            return true;
        }
    return false;
}
