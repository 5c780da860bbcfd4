/*  sandbox/sb_sandbox_oauth.c — the sandbox's OAuth 2 provider (see
    sb_sandbox_oauth.h): the sign-in page and authorization codes with
    PKCE, the token endpoint with refresh rotation and a grace period,
    revocation, the Bearer check of /v1, and the test controls under
    /_sandbox/oauth (grant counters, token endpoint faults, expiry and
    revocation on demand). All state is in memory, on the one loop.

    Forms are read with the OAuth core's strict parser (oauth/sb_oauth_form.h)
    and PKCE is checked with its S256 verifier; everything stateful is here. */
#include "sb_sandbox_oauth.h"
#include "sb_sandbox_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_oauth.h"
#include "sb_oauth_form.h"

#define S_TOKEN_RANDOM      32      /* random bytes in a token or code: 43 base64url chars */
#define S_TOKEN_SIZE        56      /* a prefix of 5, 43 chars and the NUL, rounded up */
#define S_GRANT_ID_SIZE     24      /* "grant_" and a number */
#define S_MAX_SCOPE         256     /* bytes of a grant's scope */
#define S_MAX_PAGE          65536   /* bytes of the sign-in page */
#define S_MAX_LOCATION      8192    /* bytes of a redirect's Location */
#define S_DEFAULT_SCOPE     "crm.read"
#define S_RETIRED           8       /* older rotated-away refresh tokens kept per grant */
#define S_GRANTS_PREFIX     "/_sandbox/oauth/grants/"   /* …<id>/tokens: a test control */
#define S_TOKENS_SUFFIX     "/tokens"

//  One grant: what a code exchange makes and refreshes renew.
typedef struct {
    bool used;                                  /* the slot holds a grant */
    char id [S_GRANT_ID_SIZE];                  /* "grant_1", in /_sandbox/oauth/grants */
    char account [SB_SANDBOX_OAUTH_MAX_ACCOUNT];/* who signed in */
    char scope [S_MAX_SCOPE];                   /* what was granted */
    char access [2][S_TOKEN_SIZE];              /* the current access token, then the one
                                                   before it (still good until it expires) */
    int64_t access_expires [2];                 /* their expiry, monotonic ms */
    char refresh [S_TOKEN_SIZE];                /* the current refresh token */
    char previous [S_TOKEN_SIZE];               /* the refresh token rotated away, or "" */
    int64_t previous_until;                     /* it refreshes until then (monotonic ms) */
    char retired [S_RETIRED][S_TOKEN_SIZE];     /* older ones: their use is a reuse */
    size_t retired_next;                        /* the ring's next slot */
    bool revoked;                               /* no token of it works any more */
    uint64_t refreshes;                         /* successful refresh_token grants */
    uint64_t grace_reuses;                      /* of those, with the rotated-away token */
    uint64_t code_exchanges;                    /* successful authorization_code grants */
    uint64_t api_requests;                      /* /v1 requests with its access tokens */
    uint64_t in_flight;                         /* refresh requests being answered now */
    uint64_t max_in_flight;                     /* the most there ever were at once */
} s_grant_t;

//  One authorization code, kept until it expires (a second use revokes
//  the grant the first made, RFC 6749 §4.1.2).
typedef struct {
    char value [S_TOKEN_SIZE];                  /* "" = a free slot */
    char redirect_uri [SB_OAUTH_MAX_URI + 1];   /* must come again at /token */
    char challenge [SB_OAUTH_PKCE_MAX + 1];     /* S256 */
    char scope [S_MAX_SCOPE];                   /* asked */
    char account [SB_SANDBOX_OAUTH_MAX_ACCOUNT];/* who allowed it */
    int64_t expires;                            /* monotonic ms */
    bool exchanged;                             /* used once already */
    char grant_id [S_GRANT_ID_SIZE];            /* the grant it made, once exchanged */
} s_code_t;

//  The token endpoint's fault, one at a time.
typedef enum {
    S_FAULT_NONE = 0,
    S_FAULT_DOWN,               /* 503 */
    S_FAULT_INVALID_GRANT,      /* 400 invalid_grant, nothing changes */
    S_FAULT_SLOW                /* answered delay_ms later */
} s_fault_mode_t;

//  A token answer being worked out.
typedef struct {
    int status;                 /* HTTP status */
    json_t *body;               /* the JSON answer */
    bool basic_challenge;       /* add WWW-Authenticate: Basic */
} s_answer_t;

typedef struct _s_slow_t s_slow_t;

//  In the request's pool: tells the slow answer when the client goes.
typedef struct {
    s_slow_t *slow;             /* NULL once the answer went */
} s_slow_link_t;

//  A token request held back by the "slow" fault (malloc'd: it outlives
//  the request when the client goes away).
struct _s_slow_t {
    h2o_timeout_entry_t entry;  /* on a sandbox timer */
    sb_sandbox_oauth_t *oauth;  /* the provider */
    h2o_req_t *req;             /* NULL once the client went */
    s_slow_link_t *link;        /* in req's pool, while req lives */
    char *body;                 /* the form */
    size_t body_len;            /* its bytes */
    char *authorization;        /* the Authorization header, or NULL */
    size_t counted;             /* grant whose in-flight refreshes it counts, or SIZE_MAX */
    char counted_id [S_GRANT_ID_SIZE];  /* that grant's ID (the slot may be reused) */
};

struct _sb_sandbox_oauth_t {
    sb_sandbox_t *sandbox;                      /* the server (timers) */
    char client_id [SB_SANDBOX_OAUTH_MAX_CLIENT];   /* the one client */
    char client_secret [SB_SANDBOX_OAUTH_MAX_CLIENT];   /* "" = a public client */
    int64_t access_ttl_ms;                      /* an access token's life */
    int64_t grace_ms;                           /* a rotated-away refresh token's */
    bool rotate;                                /* new refresh token on each refresh */
    char instance_url [256];                    /* in token answers */
    s_grant_t *grants;                          /* SB_SANDBOX_OAUTH_MAX_GRANTS slots */
    s_code_t *codes;                            /* SB_SANDBOX_OAUTH_MAX_CODES slots */
    unsigned next_grant;                        /* numbers grant IDs */
    s_fault_mode_t fault;                       /* the token endpoint's fault */
    long fault_delay_ms;                        /* for S_FAULT_SLOW */
    long fault_remaining;                       /* requests left; -1 = until cleared */
    uint64_t faults_injected;                   /* token requests a fault touched */
    size_t slow;                                /* slow answers pending */
};

//  --------------------------------------------------------------------------
//  Tokens and lookups

//  A new random token "<prefix>_<43 base64url chars>" into out.
static int
s_token_new (const char *prefix, char out [S_TOKEN_SIZE])
{
    uint8_t random [S_TOKEN_RANDOM];
    if (sb_crypto_random (random, sizeof random))
        return -1;
    char *text = sb_base64url_encode (random, sizeof random);
    sb_crypto_wipe (random, sizeof random);
    if (!text)
        return -1;
    int len = snprintf (out, S_TOKEN_SIZE, "%s_%s", prefix, text);
    sb_crypto_wipe (text, strlen (text));
    free (text);
    return len > 0 && len < S_TOKEN_SIZE ? 0 : -1;
}

//  True when the stored token `stored` ("" never matches) is `token`.
static bool
s_token_is (const char *stored, const char *token, size_t len)
{
    return stored [0] && strlen (stored) == len && sb_crypto_equal (stored, token, len);
}

static s_grant_t *
s_grant_by_id (sb_sandbox_oauth_t *self, const char *id)
{
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_GRANTS; i++)
        if (self->grants [i].used && strcmp (self->grants [i].id, id) == 0)
            return &self->grants [i];
    return NULL;
}

//  Which of a grant's refresh tokens one is.
typedef enum {
    S_REFRESH_CURRENT = 1,      /* the one to use */
    S_REFRESH_PREVIOUS,         /* rotated away last (good within the grace) */
    S_REFRESH_RETIRED           /* rotated away before: a reuse */
} s_refresh_kind_t;

//  The grant holding refresh token `token` (*kind says as which), or NULL.
static s_grant_t *
s_grant_by_refresh (sb_sandbox_oauth_t *self, const char *token, s_refresh_kind_t *kind)
{
    size_t len = strlen (token);
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_GRANTS; i++) {
        s_grant_t *grant = &self->grants [i];
        if (!grant->used)
            continue;
        *kind = s_token_is (grant->refresh, token, len) ? S_REFRESH_CURRENT
              : s_token_is (grant->previous, token, len) ? S_REFRESH_PREVIOUS : 0;
        for (size_t r = 0; r < S_RETIRED && !*kind; r++)
            if (s_token_is (grant->retired [r], token, len))
                *kind = S_REFRESH_RETIRED;
        if (*kind)
            return grant;
    }
    return NULL;
}

//  Moves a rotated-away refresh token into the grant's retired ring.
static void
s_grant_retire (s_grant_t *grant, char token [S_TOKEN_SIZE])
{
    if (!token [0])
        return;
    memcpy (grant->retired [grant->retired_next], token, S_TOKEN_SIZE);
    grant->retired_next = (grant->retired_next + 1) % S_RETIRED;
    sb_crypto_wipe (token, S_TOKEN_SIZE);
}

static void
s_grant_revoke (s_grant_t *grant, const char *why)
{
    if (!grant->revoked)
        sb_log_info ("oauth_grant_revoked", "grant=%s account=%s why=%s",
                     grant->id, grant->account, why);
    grant->revoked = true;
}

//  --------------------------------------------------------------------------
//  Answers

static void
s_error (s_answer_t *answer, int status, const char *code, const char *description)
{
    json_decref (answer->body);
    answer->status = status;
    answer->body = json_pack ("{s:s, s:s}", "error", code, "error_description", description);
}

//  Sends a token endpoint answer: RFC 6749 §5.1 wants no caching.
static void
s_send_answer (h2o_req_t *req, s_answer_t *answer)
{
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                    H2O_STRLIT ("no-store"));
    h2o_add_header_by_str (&req->pool, &req->res.headers, H2O_STRLIT ("pragma"), 0, NULL,
                           H2O_STRLIT ("no-cache"));
    if (answer->basic_challenge)
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                        H2O_STRLIT ("Basic realm=\"sandbox\""));
    sb_sandbox_send_json (req, answer->status, answer->body);
    answer->body = NULL;
}

//  Parses a form of `len` bytes, or fills answer with invalid_request.
static sb_oauth_form_t *
s_form (const char *text, size_t len, s_answer_t *answer)
{
    sb_oauth_form_t *form = NULL;
    char bad [SB_OAUTH_MAX_FORM_NAME + 1];
    sb_oauth_form_rc_t rc = sb_oauth_form_parse (text ? text : "", text ? len : 0, &form,
                                                 bad, sizeof bad);
    if (rc != SB_OAUTH_FORM_OK) {
        char description [SB_OAUTH_MAX_DESCRIPTION];
        snprintf (description, sizeof description, "The form is malformed%s%s: %s",
                  bad [0] ? " at " : "", bad, sb_oauth_form_strerror (rc));
        s_error (answer, 400, "invalid_request", description);
    }
    return form;
}

//  Authenticates the client by client_secret_basic or client_secret_post
//  (one of them, RFC 6749 §2.3). Returns 0, or -1 with answer filled.
static int
s_client_auth (sb_sandbox_oauth_t *self, const sb_oauth_form_t *form, const char *authorization,
               s_answer_t *answer)
{
    char id [SB_OAUTH_MAX_CLIENT_ID + 1] = "";
    char secret [SB_OAUTH_MAX_SECRET + 1] = "";
    const char *form_id = sb_oauth_form_get (form, "client_id");
    const char *form_secret = sb_oauth_form_get (form, "client_secret");
    bool basic = authorization && strncasecmp (authorization, "Basic ", 6) == 0;
    int rc = -1;
    if (basic) {
        answer->basic_challenge = true;
        if (form_secret) {
            s_error (answer, 400, "invalid_request",
                     "Use one client authentication method, not Basic and client_secret both.");
            goto out;
        }
        if (sb_oauth_basic_parse (authorization, id, sizeof id, secret, sizeof secret)) {
            s_error (answer, 401, "invalid_client", "The Basic credentials are malformed.");
            goto out;
        }
        if (form_id && strcmp (form_id, id)) {
            s_error (answer, 401, "invalid_client",
                     "The client_id in the body is not the one in the Basic credentials.");
            goto out;
        }
    }
    else {
        if (!form_id) {
            s_error (answer, 401, "invalid_client", "Client authentication is required.");
            goto out;
        }
        snprintf (id, sizeof id, "%s", form_id);
        snprintf (secret, sizeof secret, "%s", form_secret ? form_secret : "");
    }
    size_t want_len = strlen (self->client_secret);
    bool id_ok = strcmp (id, self->client_id) == 0;
    bool secret_ok = strlen (secret) == want_len
                  && sb_crypto_equal (secret, self->client_secret, want_len);
    if (!id_ok || !secret_ok) {
        s_error (answer, 401, "invalid_client", id_ok ? "The client secret is wrong."
                                                      : "The client is unknown.");
        goto out;
    }
    rc = 0;
out:
    sb_crypto_wipe (secret, sizeof secret);
    return rc;
}

//  The token answer for `grant` (new tokens already stored).
static void
s_token_answer (sb_sandbox_oauth_t *self, s_grant_t *grant, const char *scope, bool with_refresh,
                s_answer_t *answer)
{
    json_decref (answer->body);
    answer->status = 200;
    answer->body = json_pack ("{s:s, s:s, s:I, s:s, s:s}",
                              "access_token", grant->access [0], "token_type", "Bearer",
                              "expires_in", (json_int_t) (self->access_ttl_ms / 1000),
                              "scope", scope, "instance_url", self->instance_url);
    if (answer->body && with_refresh)
        json_object_set_new (answer->body, "refresh_token", json_string (grant->refresh));
}

//  A new access token for `grant`; the one before stays until it expires.
static int
s_grant_new_access (sb_sandbox_oauth_t *self, s_grant_t *grant)
{
    char token [S_TOKEN_SIZE];
    if (s_token_new ("sbat", token))
        return -1;
    memcpy (grant->access [1], grant->access [0], S_TOKEN_SIZE);
    grant->access_expires [1] = grant->access_expires [0];
    memcpy (grant->access [0], token, S_TOKEN_SIZE);
    grant->access_expires [0] = sb_clock_mono_ms () + self->access_ttl_ms;
    sb_crypto_wipe (token, sizeof token);
    return 0;
}

//  A free grant slot (a revoked grant's when none is free), or NULL.
static s_grant_t *
s_grant_slot (sb_sandbox_oauth_t *self)
{
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_GRANTS; i++)
        if (!self->grants [i].used)
            return &self->grants [i];
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_GRANTS; i++)
        if (self->grants [i].revoked && self->grants [i].in_flight == 0) {
            sb_crypto_wipe (&self->grants [i], sizeof self->grants [i]);
            return &self->grants [i];
        }
    return NULL;
}

static void
s_grant_authorization_code (sb_sandbox_oauth_t *self, const sb_oauth_form_t *form,
                            s_answer_t *answer)
{
    const char *value = sb_oauth_form_get (form, "code");
    const char *redirect_uri = sb_oauth_form_get (form, "redirect_uri");
    const char *verifier = sb_oauth_form_get (form, "code_verifier");
    if (!value || !redirect_uri || !verifier) {
        s_error (answer, 400, "invalid_request",
                 "code, redirect_uri and code_verifier are required.");
        return;
    }
    int64_t now = sb_clock_mono_ms ();
    size_t len = strlen (value);
    s_code_t *code = NULL;
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_CODES && !code; i++)
        if (s_token_is (self->codes [i].value, value, len) && self->codes [i].expires > now)
            code = &self->codes [i];
    if (!code) {
        s_error (answer, 400, "invalid_grant", "The code is unknown or expired.");
        return;
    }
    if (code->exchanged) {
        //  RFC 6749 §4.1.2: a code used twice revokes what the first use made.
        s_grant_t *grant = s_grant_by_id (self, code->grant_id);
        if (grant)
            s_grant_revoke (grant, "code_reused");
        s_error (answer, 400, "invalid_grant", "The code was already used; its grant is revoked.");
        return;
    }
    if (strcmp (code->redirect_uri, redirect_uri)) {
        s_error (answer, 400, "invalid_grant",
                 "redirect_uri is not the one the code was issued for.");
        return;
    }
    if (!sb_oauth_pkce_verify (verifier, code->challenge)) {
        s_error (answer, 400, "invalid_grant",
                 "The code_verifier does not match the code_challenge.");
        return;
    }
    s_grant_t *grant = s_grant_slot (self);
    if (!grant) {
        s_error (answer, 503, "temporarily_unavailable", "The sandbox holds all the grants it can.");
        return;
    }
    memset (grant, 0, sizeof *grant);
    grant->used = true;
    snprintf (grant->id, sizeof grant->id, "grant_%u", ++self->next_grant);
    snprintf (grant->account, sizeof grant->account, "%s", code->account);
    snprintf (grant->scope, sizeof grant->scope, "%s", code->scope);
    if (s_grant_new_access (self, grant) || s_token_new ("sbrt", grant->refresh)) {
        memset (grant, 0, sizeof *grant);
        s_error (answer, 500, "server_error", "Could not make a token.");
        return;
    }
    grant->code_exchanges = 1;
    code->exchanged = true;
    snprintf (code->grant_id, sizeof code->grant_id, "%s", grant->id);
    sb_log_info ("oauth_code_exchanged", "grant=%s account=%s", grant->id, grant->account);
    s_token_answer (self, grant, grant->scope, true, answer);
}

static void
s_grant_refresh_token (sb_sandbox_oauth_t *self, const sb_oauth_form_t *form, s_answer_t *answer)
{
    const char *token = sb_oauth_form_get (form, "refresh_token");
    const char *scope = sb_oauth_form_get (form, "scope");
    if (!token) {
        s_error (answer, 400, "invalid_request", "refresh_token is required.");
        return;
    }
    s_refresh_kind_t kind = 0;
    s_grant_t *grant = s_grant_by_refresh (self, token, &kind);
    bool previous = kind == S_REFRESH_PREVIOUS;
    if (!grant) {
        s_error (answer, 400, "invalid_grant", "The refresh token is unknown.");
        return;
    }
    if (grant->revoked) {
        sb_log_info ("oauth_refresh_refused", "grant=%s why=revoked", grant->id);
        s_error (answer, 400, "invalid_grant", "The grant was revoked.");
        return;
    }
    int64_t now = sb_clock_mono_ms ();
    if (kind == S_REFRESH_RETIRED || (previous && now >= grant->previous_until)) {
        //  A rotated-away token used past its grace: someone holds a copy
        //  they should not (RFC 9700 §4.14.2), so the whole grant goes.
        s_grant_revoke (grant, "refresh_token_reused");
        s_error (answer, 400, "invalid_grant",
                 "The refresh token was already rotated; the grant is revoked.");
        return;
    }
    if (scope && (!sb_oauth_scope_valid (scope) || !sb_oauth_scope_subset (scope, grant->scope))) {
        s_error (answer, 400, "invalid_scope", "The scope is not within the grant's.");
        return;
    }
    char refresh [S_TOKEN_SIZE];
    if (s_grant_new_access (self, grant) || (self->rotate && s_token_new ("sbrt", refresh))) {
        s_error (answer, 500, "server_error", "Could not make a token.");
        return;
    }
    if (self->rotate) {
        //  Refreshing with the current token starts a grace period for it;
        //  refreshing with the previous one (in its grace) leaves that as
        //  it was and retires the current one (whoever got it lost the race).
        if (!previous) {
            s_grant_retire (grant, grant->previous);
            memcpy (grant->previous, grant->refresh, S_TOKEN_SIZE);
            grant->previous_until = now + self->grace_ms;
        }
        else
            s_grant_retire (grant, grant->refresh);
        memcpy (grant->refresh, refresh, S_TOKEN_SIZE);
        sb_crypto_wipe (refresh, sizeof refresh);
    }
    grant->refreshes++;
    if (previous)
        grant->grace_reuses++;
    sb_log_info ("oauth_refreshed", "grant=%s refreshes=%llu rotated=%s in_grace=%s", grant->id,
                 (unsigned long long) grant->refreshes, self->rotate ? "yes" : "no",
                 previous ? "yes" : "no");
    s_token_answer (self, grant, scope ? scope : grant->scope, self->rotate, answer);
}

//  Works out a POST /oauth/token from its form and Authorization header.
static void
s_token (sb_sandbox_oauth_t *self, const char *body, size_t len, const char *authorization,
         s_answer_t *answer)
{
    sb_oauth_form_t *form = s_form (body, len, answer);
    if (!form)
        return;
    if (s_client_auth (self, form, authorization, answer))
        goto out;
    const char *grant_type = sb_oauth_form_get (form, "grant_type");
    if (!grant_type)
        s_error (answer, 400, "invalid_request", "grant_type is required.");
    else
    if (strcmp (grant_type, "authorization_code") == 0)
        s_grant_authorization_code (self, form, answer);
    else
    if (strcmp (grant_type, "refresh_token") == 0)
        s_grant_refresh_token (self, form, answer);
    else
        s_error (answer, 400, "unsupported_grant_type",
                 "grant_type must be authorization_code or refresh_token.");
out:
    sb_oauth_form_destroy (&form);
}

//  Counts a refresh request on its grant while it is answered (a slow
//  answer counts from arrival): the grant's index, or SIZE_MAX.
static size_t
s_count_begin (sb_sandbox_oauth_t *self, const char *body, size_t len, char id [S_GRANT_ID_SIZE])
{
    s_answer_t ignored = { 0 };
    sb_oauth_form_t *form = s_form (body, len, &ignored);
    json_decref (ignored.body);
    size_t index = SIZE_MAX;
    const char *grant_type = form ? sb_oauth_form_get (form, "grant_type") : NULL;
    const char *token = form ? sb_oauth_form_get (form, "refresh_token") : NULL;
    s_refresh_kind_t kind;
    s_grant_t *grant = grant_type && token && strcmp (grant_type, "refresh_token") == 0
                     ? s_grant_by_refresh (self, token, &kind) : NULL;
    if (grant) {
        grant->in_flight++;
        if (grant->in_flight > grant->max_in_flight)
            grant->max_in_flight = grant->in_flight;
        index = (size_t) (grant - self->grants);
        snprintf (id, S_GRANT_ID_SIZE, "%s", grant->id);
    }
    sb_oauth_form_destroy (&form);
    return index;
}

static void
s_count_end (sb_sandbox_oauth_t *self, size_t index, const char *id)
{
    if (index == SIZE_MAX)
        return;
    s_grant_t *grant = &self->grants [index];
    if (grant->used && strcmp (grant->id, id) == 0 && grant->in_flight > 0)
        grant->in_flight--;
}

//  --------------------------------------------------------------------------
//  /oauth/token and its faults

static void
s_on_slow_link_dispose (void *data)
{
    s_slow_link_t *link = data;
    if (link->slow)
        link->slow->req = NULL;
}

static void
s_slow_free (s_slow_t *slow)
{
    if (slow->body)
        sb_crypto_wipe (slow->body, slow->body_len);
    if (slow->authorization)
        sb_crypto_wipe (slow->authorization, strlen (slow->authorization));
    free (slow->body);
    free (slow->authorization);
    free (slow);
}

static void
s_on_slow_done (h2o_timeout_entry_t *entry)
{
    s_slow_t *slow = H2O_STRUCT_FROM_MEMBER (s_slow_t, entry, entry);
    sb_sandbox_oauth_t *self = slow->oauth;
    self->slow--;
    s_answer_t answer = { 0 };
    s_token (self, slow->body, slow->body_len, slow->authorization, &answer);
    s_count_end (self, slow->counted, slow->counted_id);
    if (slow->req) {
        slow->link->slow = NULL;
        s_send_answer (slow->req, &answer);
    }
    else {
        sb_log_info ("oauth_slow_answer_dropped", "status=%d (the client had gone)",
                     answer.status);
        json_decref (answer.body);
    }
    s_slow_free (slow);
}

//  Holds the request back for the fault's delay. Returns 0, or -1 when
//  it cannot be held (then it is answered 503 by the caller).
static int
s_hold (sb_sandbox_oauth_t *self, h2o_req_t *req, const char *authorization)
{
    if (self->slow >= SB_SANDBOX_OAUTH_MAX_SLOW)
        return -1;
    h2o_timeout_t *timeout = sb_sandbox_timeout (self->sandbox, (uint64_t) self->fault_delay_ms);
    s_slow_t *slow = timeout ? calloc (1, sizeof *slow) : NULL;
    if (!slow)
        return -1;
    slow->oauth = self;
    slow->req = req;
    slow->body_len = req->entity.base ? req->entity.len : 0;
    slow->body = malloc (slow->body_len + 1);
    slow->authorization = authorization ? strdup (authorization) : NULL;
    if (!slow->body || (authorization && !slow->authorization)) {
        s_slow_free (slow);
        return -1;
    }
    if (slow->body_len)
        memcpy (slow->body, req->entity.base, slow->body_len);
    slow->body [slow->body_len] = 0;
    slow->counted = s_count_begin (self, slow->body, slow->body_len, slow->counted_id);
    slow->link = h2o_mem_alloc_shared (&req->pool, sizeof *slow->link, s_on_slow_link_dispose);
    slow->link->slow = slow;
    slow->entry.cb = s_on_slow_done;
    h2o_timeout_link (sb_sandbox_loop (self->sandbox), timeout, &slow->entry);
    self->slow++;
    return 0;
}

static void
s_post_token (sb_sandbox_oauth_t *self, h2o_req_t *req)
{
    char authorization [SB_OAUTH_MAX_AUTHORIZATION + 1];
    bool has_authorization = false;
    ssize_t at = h2o_find_header (&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    s_answer_t answer = { 0 };
    if (at >= 0) {
        h2o_iovec_t value = req->headers.entries [at].value;
        if (value.len >= sizeof authorization || memchr (value.base, 0, value.len)) {
            s_error (&answer, 400, "invalid_request", "The Authorization header is too long.");
            s_send_answer (req, &answer);
            return;
        }
        memcpy (authorization, value.base, value.len);
        authorization [value.len] = 0;
        has_authorization = true;
    }
    s_fault_mode_t fault = self->fault_remaining != 0 ? self->fault : S_FAULT_NONE;
    if (fault != S_FAULT_NONE) {
        if (self->fault_remaining > 0)
            self->fault_remaining--;
        self->faults_injected++;
    }
    if (fault == S_FAULT_DOWN) {
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                        H2O_STRLIT ("1"));
        s_error (&answer, 503, "temporarily_unavailable",
                 "The token endpoint is down (a fault injected by the sandbox).");
    }
    else
    if (fault == S_FAULT_INVALID_GRANT)
        s_error (&answer, 400, "invalid_grant",
                 "The grant is invalid (a fault injected by the sandbox).");
    else
    if (fault == S_FAULT_SLOW) {
        if (s_hold (self, req, has_authorization ? authorization : NULL) == 0)
            goto out;
        s_error (&answer, 503, "temporarily_unavailable",
                 "The sandbox holds back as many token answers as it can.");
    }
    else {
        char id [S_GRANT_ID_SIZE] = "";
        const char *body = req->entity.base;
        size_t len = body ? req->entity.len : 0;
        size_t counted = s_count_begin (self, body, len, id);
        s_token (self, body, len, has_authorization ? authorization : NULL, &answer);
        s_count_end (self, counted, id);
    }
    if (answer.status != 200 && fault == S_FAULT_NONE)
        sb_log_info ("oauth_token_refused", "status=%d error=%s", answer.status,
                     json_string_value (json_object_get (answer.body, "error")));
    s_send_answer (req, &answer);
out:
    sb_crypto_wipe (authorization, sizeof authorization);
}

//  POST /oauth/revoke (RFC 7009): 200 whether or not the token was known.
static void
s_post_revoke (sb_sandbox_oauth_t *self, h2o_req_t *req)
{
    char authorization [SB_OAUTH_MAX_AUTHORIZATION + 1] = "";
    ssize_t at = h2o_find_header (&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (at >= 0) {
        h2o_iovec_t value = req->headers.entries [at].value;
        size_t len = value.len < sizeof authorization ? value.len : sizeof authorization - 1;
        memcpy (authorization, value.base, len);
        authorization [len] = 0;
    }
    s_answer_t answer = { 0 };
    sb_oauth_form_t *form = s_form (req->entity.base, req->entity.len, &answer);
    if (!form)
        goto out;
    if (s_client_auth (self, form, at >= 0 ? authorization : NULL, &answer))
        goto out;
    const char *token = sb_oauth_form_get (form, "token");
    if (!token) {
        s_error (&answer, 400, "invalid_request", "token is required.");
        goto out;
    }
    size_t len = strlen (token);
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_GRANTS; i++) {
        s_grant_t *grant = &self->grants [i];
        if (grant->used
        &&  (s_token_is (grant->access [0], token, len) || s_token_is (grant->access [1], token, len)
             || s_token_is (grant->refresh, token, len) || s_token_is (grant->previous, token, len)))
            s_grant_revoke (grant, "revocation_endpoint");
    }
    answer.status = 200;
    answer.body = json_object ();
out:
    sb_oauth_form_destroy (&form);
    sb_crypto_wipe (authorization, sizeof authorization);
    s_send_answer (req, &answer);
}

//  --------------------------------------------------------------------------
//  /oauth/authorize

//  What an authorization request asks, borrowed from its form.
typedef struct {
    const char *client_id;
    const char *redirect_uri;
    const char *state;          /* NULL when none */
    const char *challenge;
    const char *scope;          /* the asked or the default */
} s_authorize_t;

//  Sends a 302 to the request's redirect_uri with `name`=`value` and the state.
static void
s_redirect (h2o_req_t *req, const s_authorize_t *request, const char *name, const char *value,
            const char *description)
{
    char *location = NULL;
    size_t len = 0;
    int rc = sb_oauth_query_append (&location, &len, S_MAX_LOCATION, request->redirect_uri, false);
    if (!rc)
        rc = sb_oauth_query_append (&location, &len, S_MAX_LOCATION,
                                    strchr (request->redirect_uri, '?') ? "&" : "?", false);
    if (!rc)
        rc = sb_oauth_query_append (&location, &len, S_MAX_LOCATION, name, false);
    if (!rc)
        rc = sb_oauth_query_append (&location, &len, S_MAX_LOCATION, "=", false);
    if (!rc)
        rc = sb_oauth_query_append (&location, &len, S_MAX_LOCATION, value, true);
    if (!rc && description)
        rc = sb_oauth_query_append (&location, &len, S_MAX_LOCATION, "&error_description=", false)
          || sb_oauth_query_append (&location, &len, S_MAX_LOCATION, description, true);
    if (!rc && request->state)
        rc = sb_oauth_query_append (&location, &len, S_MAX_LOCATION, "&state=", false)
          || sb_oauth_query_append (&location, &len, S_MAX_LOCATION, request->state, true);
    if (rc) {
        free (location);
        sb_sandbox_send_error (req, 400, "invalid_request", "The redirect would be too long.");
        return;
    }
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                    h2o_strdup (&req->pool, location, len).base, len);
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                    H2O_STRLIT ("no-store"));
    free (location);
    char *text = strdup ("Redirecting.");
    sb_sandbox_send (req, 302, "text/plain", text, text ? strlen (text) : 0);
}

//  True when `uri` is an http or https URL without fragment, of visible ASCII.
static bool
s_redirect_uri_ok (const char *uri)
{
    if (strncmp (uri, "http://", 7) && strncmp (uri, "https://", 8))
        return false;
    if (strlen (uri) > SB_OAUTH_MAX_URI || strchr (uri, '#'))
        return false;
    const char *host = strstr (uri, "://") + 3;
    if (!*host || *host == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *) uri; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

//  Reads and checks an authorization request (GET's query or POST's form).
//  Returns 0, or -1 having answered: errors about the client or the
//  redirect URI on a page of their own, the others at the redirect URI
//  (RFC 6749 §4.1.2.1).
static int
s_authorize_check (sb_sandbox_oauth_t *self, h2o_req_t *req, const sb_oauth_form_t *form,
                   s_authorize_t *request)
{
    request->client_id = sb_oauth_form_get (form, "client_id");
    request->redirect_uri = sb_oauth_form_get (form, "redirect_uri");
    request->state = sb_oauth_form_get (form, "state");
    request->challenge = sb_oauth_form_get (form, "code_challenge");
    request->scope = sb_oauth_form_get (form, "scope");
    const char *response_type = sb_oauth_form_get (form, "response_type");
    const char *method = sb_oauth_form_get (form, "code_challenge_method");
    if (!request->client_id || strcmp (request->client_id, self->client_id)) {
        sb_sandbox_send_error (req, 400, "invalid_client", "client_id is missing or unknown.");
        return -1;
    }
    if (!request->redirect_uri || !s_redirect_uri_ok (request->redirect_uri)) {
        sb_sandbox_send_error (req, 400, "invalid_redirect_uri",
                               "redirect_uri must be an http(s) URL without a fragment.");
        return -1;
    }
    if (request->state && strlen (request->state) > SB_OAUTH_MAX_STATE) {
        sb_sandbox_send_error (req, 400, "invalid_request", "state is too long.");
        return -1;
    }
    if (!response_type || strcmp (response_type, "code")) {
        s_redirect (req, request, "error", "unsupported_response_type",
                    "response_type must be code.");
        return -1;
    }
    if (!method || strcmp (method, "S256") || !request->challenge
    ||  strlen (request->challenge) != SB_OAUTH_PKCE_S256_LEN
    ||  !sb_oauth_pkce_syntax (request->challenge)) {
        s_redirect (req, request, "error", "invalid_request",
                    "PKCE is required: code_challenge with code_challenge_method S256.");
        return -1;
    }
    if (request->scope && (strlen (request->scope) >= S_MAX_SCOPE
                           || !sb_oauth_scope_valid (request->scope))) {
        s_redirect (req, request, "error", "invalid_scope", "The scope is malformed.");
        return -1;
    }
    if (!request->scope)
        request->scope = S_DEFAULT_SCOPE;
    return 0;
}

//  A growing HTML text, bounded by S_MAX_PAGE; `failed` once it would pass it.
typedef struct {
    char *text;
    size_t len;
    bool failed;
} s_page_t;

static void
s_page_raw (s_page_t *page, const char *text)
{
    if (!page->failed && sb_oauth_query_append (&page->text, &page->len, S_MAX_PAGE, text, false))
        page->failed = true;
}

//  Appends `text` with &, <, >, " and ' as entities.
static void
s_page_escaped (s_page_t *page, const char *text)
{
    char one [2] = "";
    for (const char *p = text; *p && !page->failed; p++) {
        switch (*p) {
            case '&': s_page_raw (page, "&amp;"); break;
            case '<': s_page_raw (page, "&lt;"); break;
            case '>': s_page_raw (page, "&gt;"); break;
            case '"': s_page_raw (page, "&quot;"); break;
            case '\'': s_page_raw (page, "&#39;"); break;
            default:
                one [0] = *p;
                s_page_raw (page, one);
        }
    }
}

static void
s_page_hidden (s_page_t *page, const char *name, const char *value)
{
    if (!value)
        return;
    s_page_raw (page, "<input type=\"hidden\" name=\"");
    s_page_raw (page, name);
    s_page_raw (page, "\" value=\"");
    s_page_escaped (page, value);
    s_page_raw (page, "\">\n");
}

//  GET /oauth/authorize: the sign-in page, a form back to POST /oauth/authorize.
static void
s_authorize_page (h2o_req_t *req, const s_authorize_t *request)
{
    s_page_t page = { 0 };
    s_page_raw (&page, "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
                "<title>Sign in to the Sandbox CRM</title></head>\n<body>\n"
                "<h1>Sign in to the Sandbox CRM</h1>\n<p>An application asks to use your "
                "CRM account (scope: ");
    s_page_escaped (&page, request->scope);
    s_page_raw (&page, ").</p>\n<form method=\"post\" action=\"/oauth/authorize\">\n");
    s_page_hidden (&page, "response_type", "code");
    s_page_hidden (&page, "client_id", request->client_id);
    s_page_hidden (&page, "redirect_uri", request->redirect_uri);
    s_page_hidden (&page, "state", request->state);
    s_page_hidden (&page, "code_challenge", request->challenge);
    s_page_hidden (&page, "code_challenge_method", "S256");
    s_page_hidden (&page, "scope", request->scope);
    s_page_raw (&page, "<label>Account name <input name=\"account\" required maxlength=\"63\" "
                "pattern=\"[A-Za-z0-9._@-]+\"></label>\n"
                "<button name=\"decision\" value=\"allow\">Allow</button>\n"
                "<button name=\"decision\" value=\"deny\" formnovalidate>Deny</button>\n"
                "</form>\n</body></html>\n");
    if (page.failed) {
        free (page.text);
        sb_sandbox_send_error (req, 500, "internal", "Could not make the sign-in page.");
        return;
    }
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                    H2O_STRLIT ("no-store"));
    sb_sandbox_send (req, 200, "text/html; charset=utf-8", page.text, page.len);
}

//  True when `account` is 1..SB_SANDBOX_OAUTH_MAX_ACCOUNT-1 of A-Z a-z 0-9 . _ @ -.
static bool
s_account_ok (const char *account)
{
    size_t len = strlen (account);
    if (len == 0 || len >= SB_SANDBOX_OAUTH_MAX_ACCOUNT)
        return false;
    for (const char *p = account; *p; p++)
        if (!isalnum ((unsigned char) *p) && !strchr ("._@-", *p))
            return false;
    return true;
}

//  POST /oauth/authorize: the person's decision (the page's form, or a
//  test's request without the page).
static void
s_authorize_decide (sb_sandbox_oauth_t *self, h2o_req_t *req, const sb_oauth_form_t *form,
                    const s_authorize_t *request)
{
    const char *decision = sb_oauth_form_get (form, "decision");
    const char *account = sb_oauth_form_get (form, "account");
    if (decision && strcmp (decision, "deny") == 0) {
        sb_log_info ("oauth_denied", "client=%s", self->client_id);
        s_redirect (req, request, "error", "access_denied", "The person denied the request.");
        return;
    }
    if (!decision || strcmp (decision, "allow")) {
        sb_sandbox_send_error (req, 400, "invalid_request", "decision must be allow or deny.");
        return;
    }
    if (!account || !s_account_ok (account)) {
        sb_sandbox_send_error (req, 400, "invalid_request",
                               "account must be 1-63 letters, digits, '.', '_', '@' or '-'.");
        return;
    }
    int64_t now = sb_clock_mono_ms ();
    s_code_t *code = NULL;
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_CODES && !code; i++)
        if (!self->codes [i].value [0] || self->codes [i].expires <= now)
            code = &self->codes [i];
    if (!code) {
        s_redirect (req, request, "error", "temporarily_unavailable",
                    "The sandbox holds as many codes as it can; try again in a minute.");
        return;
    }
    memset (code, 0, sizeof *code);
    if (s_token_new ("sbac", code->value)) {
        sb_sandbox_send_error (req, 500, "internal", "Could not make a code.");
        return;
    }
    snprintf (code->redirect_uri, sizeof code->redirect_uri, "%s", request->redirect_uri);
    snprintf (code->challenge, sizeof code->challenge, "%s", request->challenge);
    snprintf (code->scope, sizeof code->scope, "%s", request->scope);
    snprintf (code->account, sizeof code->account, "%s", account);
    code->expires = now + SB_SANDBOX_OAUTH_CODE_TTL_MS;
    sb_log_info ("oauth_code_issued", "account=%s", account);
    s_redirect (req, request, "code", code->value, NULL);
}

static void
s_authorize (sb_sandbox_oauth_t *self, h2o_req_t *req, bool post)
{
    const char *text = post ? req->entity.base
                     : req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
    size_t len = post ? (text ? req->entity.len : 0)
               : req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    s_answer_t answer = { 0 };
    sb_oauth_form_t *form = s_form (text, len, &answer);
    if (!form) {
        sb_sandbox_send_error (req, 400, "invalid_request",
                               json_string_value (json_object_get (answer.body,
                                                                   "error_description")));
        json_decref (answer.body);
        return;
    }
    s_authorize_t request;
    if (s_authorize_check (self, req, form, &request) == 0) {
        if (post)
            s_authorize_decide (self, req, form, &request);
        else
            s_authorize_page (req, &request);
    }
    sb_oauth_form_destroy (&form);
}

void
sb_sandbox_oauth_handle (sb_sandbox_oauth_t *self, h2o_req_t *req, const char *path)
{
    bool get = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("GET"));
    bool post = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("POST"));
    if (post && req->entity.base && req->entity.len > SB_SANDBOX_OAUTH_MAX_BODY) {
        sb_sandbox_send_error (req, 413, "payload_too_large", "The form is larger than 16 KiB.");
        return;
    }
    if (strcmp (path, "/oauth/authorize") == 0 && (get || post))
        s_authorize (self, req, post);
    else
    if (strcmp (path, "/oauth/token") == 0 && post)
        s_post_token (self, req);
    else
    if (strcmp (path, "/oauth/revoke") == 0 && post)
        s_post_revoke (self, req);
    else
    if (strcmp (path, "/oauth/authorize") == 0 || strcmp (path, "/oauth/token") == 0
    ||  strcmp (path, "/oauth/revoke") == 0) {
        const char *allow = strcmp (path, "/oauth/authorize") == 0 ? "GET, POST" : "POST";
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen (allow));
        sb_sandbox_send_error (req, 405, "method_not_allowed", "This method is not allowed here.");
    }
    else
        sb_sandbox_send_error (req, 404, "not_found", "There is no such OAuth endpoint.");
}

//  --------------------------------------------------------------------------
//  /v1 Bearer tokens

sb_sandbox_bearer_t
sb_sandbox_oauth_bearer (sb_sandbox_oauth_t *self, const char *token, size_t len, char *account,
                         char *grant_id)
{
    int64_t now = sb_clock_mono_ms ();
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_GRANTS; i++) {
        s_grant_t *grant = &self->grants [i];
        if (!grant->used)
            continue;
        for (int which = 0; which < 2; which++) {
            if (!s_token_is (grant->access [which], token, len))
                continue;
            if (grant->revoked || now >= grant->access_expires [which])
                return SB_SANDBOX_BEARER_EXPIRED;
            grant->api_requests++;
            snprintf (account, SB_SANDBOX_OAUTH_MAX_ACCOUNT, "%s", grant->account);
            snprintf (grant_id, SB_SANDBOX_OAUTH_MAX_ACCOUNT, "%s", grant->id);
            return SB_SANDBOX_BEARER_LIVE;
        }
    }
    return SB_SANDBOX_BEARER_UNKNOWN;
}

//  --------------------------------------------------------------------------
//  /_sandbox/oauth

static json_t *
s_grants_json (sb_sandbox_oauth_t *self)
{
    int64_t now = sb_clock_mono_ms ();
    json_t *list = json_array ();
    for (size_t i = 0; i < SB_SANDBOX_OAUTH_MAX_GRANTS; i++) {
        s_grant_t *grant = &self->grants [i];
        if (!grant->used)
            continue;
        int64_t left_ms = grant->access_expires [0] - now;
        json_int_t left = left_ms > 0 ? (json_int_t) ((left_ms + 999) / 1000) : 0;
        json_array_append_new (list, json_pack (
            "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I}",
            "grant", grant->id, "account", grant->account, "scope", grant->scope,
            "refreshes", (json_int_t) grant->refreshes,
            "grace_reuses", (json_int_t) grant->grace_reuses,
            "code_exchanges", (json_int_t) grant->code_exchanges,
            "api_requests", (json_int_t) grant->api_requests,
            "revoked", grant->revoked,
            "access_expires_in", left,
            "refreshes_in_flight", (json_int_t) grant->in_flight,
            "max_concurrent_refreshes", (json_int_t) grant->max_in_flight));
    }
    return list;
}

//  GET /_sandbox/oauth/grants/<id>/tokens: every token the grant holds
//  now (test control: a test that greps logs for secrets learns them
//  here; never logged).
static json_t *
s_grant_tokens_json (s_grant_t *grant)
{
    json_t *access = json_array ();
    json_t *retired = json_array ();
    for (int which = 0; which < 2; which++)
        if (*grant->access [which])
            json_array_append_new (access, json_string (grant->access [which]));
    for (size_t i = 0; i < S_RETIRED; i++)
        if (*grant->retired [i])
            json_array_append_new (retired, json_string (grant->retired [i]));
    json_t *body = json_pack ("{s:s, s:o, s:s, s:o}", "grant", grant->id, "access", access,
                              "refresh", grant->refresh, "retired", retired);
    if (body && *grant->previous)
        json_object_set_new (body, "previous", json_string (grant->previous));
    return body;
}

static const char *
s_fault_name (s_fault_mode_t mode)
{
    return mode == S_FAULT_DOWN ? "down" : mode == S_FAULT_INVALID_GRANT ? "invalid_grant"
         : mode == S_FAULT_SLOW ? "slow" : "none";
}

static json_t *
s_faults_json (sb_sandbox_oauth_t *self)
{
    bool active = self->fault != S_FAULT_NONE && self->fault_remaining != 0;
    return json_pack ("{s:s, s:I, s:I, s:I, s:I}",
                      "mode", active ? s_fault_name (self->fault) : "none",
                      "delay_ms", (json_int_t) self->fault_delay_ms,
                      "remaining", (json_int_t) (active ? self->fault_remaining : 0),
                      "injected", (json_int_t) self->faults_injected,
                      "pending", (json_int_t) self->slow);
}

//  Reads a JSON object body, or answers 400. Returns a new reference or NULL.
static json_t *
s_json_body (h2o_req_t *req)
{
    json_t *input = req->entity.base
                  ? json_loadb (req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, NULL)
                  : NULL;
    if (!json_is_object (input)) {
        json_decref (input);
        sb_sandbox_send_error (req, 400, "bad_request", "The body must be a JSON object.");
        return NULL;
    }
    return input;
}

static void
s_post_faults (sb_sandbox_oauth_t *self, h2o_req_t *req)
{
    json_t *input = s_json_body (req);
    if (!input)
        return;
    const char *message = NULL;
    const char *key;
    json_t *value;
    json_object_foreach (input, key, value)
        if (strcmp (key, "mode") && strcmp (key, "delay_ms") && strcmp (key, "count"))
            message = "OAuth fault fields are mode, delay_ms and count.";
    const char *mode = json_string_value (json_object_get (input, "mode"));
    json_t *delay = json_object_get (input, "delay_ms");
    json_t *count = json_object_get (input, "count");
    s_fault_mode_t fault = !mode ? S_FAULT_NONE
                         : strcmp (mode, "down") == 0 ? S_FAULT_DOWN
                         : strcmp (mode, "invalid_grant") == 0 ? S_FAULT_INVALID_GRANT
                         : strcmp (mode, "slow") == 0 ? S_FAULT_SLOW : S_FAULT_NONE;
    long delay_ms = delay ? (long) json_integer_value (delay) : 0;
    if (message)
        ;
    else
    if (fault == S_FAULT_NONE)
        message = "mode must be down, invalid_grant or slow.";
    else
    if (delay && (!json_is_integer (delay) || json_integer_value (delay) < 1
                  || json_integer_value (delay) > SB_SANDBOX_MAX_DELAY_MS))
        message = "delay_ms must be an integer from 1 to 60000.";
    else
    if (fault == S_FAULT_SLOW && !delay)
        message = "mode slow needs delay_ms.";
    else
    if (fault != S_FAULT_SLOW && delay)
        message = "delay_ms goes with mode slow only.";
    else
    if (count && (!json_is_integer (count) || json_integer_value (count) < 1
                  || json_integer_value (count) > 1000000))
        message = "count must be an integer from 1 to 1000000.";
    else
    if (fault == S_FAULT_SLOW && !sb_sandbox_timeout (self->sandbox, (uint64_t) delay_ms))
        message = "Too many different delays are in use; DELETE the faults first.";
    if (message) {
        json_decref (input);
        sb_sandbox_send_error (req, 400, "bad_request", message);
        return;
    }
    self->fault = fault;
    self->fault_delay_ms = delay_ms;
    self->fault_remaining = count ? (long) json_integer_value (count) : -1;
    json_decref (input);
    sb_log_info ("oauth_fault_set", "mode=%s delay_ms=%ld count=%ld", s_fault_name (fault),
                 delay_ms, self->fault_remaining);
    sb_sandbox_send_json (req, 201, s_faults_json (self));
}

//  POST /_sandbox/oauth/expire and /revoke: {"grant": "<id>"}.
static void
s_post_grant_action (sb_sandbox_oauth_t *self, h2o_req_t *req, bool revoke)
{
    json_t *input = s_json_body (req);
    if (!input)
        return;
    const char *id = json_string_value (json_object_get (input, "grant"));
    s_grant_t *grant = id ? s_grant_by_id (self, id) : NULL;
    if (!id)
        sb_sandbox_send_error (req, 400, "bad_request", "grant (a grant ID) is required.");
    else
    if (!grant)
        sb_sandbox_send_error (req, 404, "not_found", "There is no grant with that ID.");
    else {
        if (revoke)
            s_grant_revoke (grant, "sandbox_control");
        else {
            int64_t now = sb_clock_mono_ms ();
            for (int which = 0; which < 2; which++)
                if (grant->access_expires [which] > now)
                    grant->access_expires [which] = now;
            sb_log_info ("oauth_access_expired", "grant=%s", grant->id);
        }
        sb_sandbox_send_json (req, 200, json_pack ("{s:s, s:b}", "grant", grant->id,
                                                   "revoked", grant->revoked));
    }
    json_decref (input);
}

void
sb_sandbox_oauth_admin (sb_sandbox_oauth_t *self, h2o_req_t *req, const char *path)
{
    bool get = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("GET"));
    bool post = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("POST"));
    bool delete = h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("DELETE"));
    const char *allow = NULL;
    if (strcmp (path, "/_sandbox/oauth/grants") == 0) {
        if (get)
            sb_sandbox_send_json (req, 200, s_grants_json (self));
        else
            allow = "GET";
    }
    else
    if (strncmp (path, S_GRANTS_PREFIX, strlen (S_GRANTS_PREFIX)) == 0
    &&  strlen (path) > strlen (S_GRANTS_PREFIX) + strlen (S_TOKENS_SUFFIX)
    &&  strcmp (path + strlen (path) - strlen (S_TOKENS_SUFFIX), S_TOKENS_SUFFIX) == 0) {
        //  /_sandbox/oauth/grants/<id>/tokens
        char id [S_GRANT_ID_SIZE];
        size_t id_len = strlen (path) - strlen (S_GRANTS_PREFIX) - strlen (S_TOKENS_SUFFIX);
        s_grant_t *grant = NULL;
        if (id_len < sizeof id) {
            memcpy (id, path + strlen (S_GRANTS_PREFIX), id_len);
            id [id_len] = 0;
            grant = s_grant_by_id (self, id);
        }
        if (!get)
            allow = "GET";
        else
        if (!grant)
            sb_sandbox_send_error (req, 404, "not_found", "There is no grant with that ID.");
        else
            sb_sandbox_send_json (req, 200, s_grant_tokens_json (grant));
    }
    else
    if (strcmp (path, "/_sandbox/oauth/faults") == 0) {
        if (post)
            s_post_faults (self, req);
        else
        if (get)
            sb_sandbox_send_json (req, 200, s_faults_json (self));
        else
        if (delete) {
            self->fault = S_FAULT_NONE;
            self->fault_delay_ms = 0;
            self->fault_remaining = 0;
            sb_log_info ("oauth_faults_cleared", "pending=%zu", self->slow);
            sb_sandbox_send_json (req, 200, s_faults_json (self));
        }
        else
            allow = "GET, POST, DELETE";
    }
    else
    if (strcmp (path, "/_sandbox/oauth/expire") == 0 || strcmp (path, "/_sandbox/oauth/revoke") == 0) {
        if (post)
            s_post_grant_action (self, req, strcmp (path, "/_sandbox/oauth/revoke") == 0);
        else
            allow = "POST";
    }
    else
        sb_sandbox_send_error (req, 404, "not_found", "There is no such OAuth control.");
    if (allow) {
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen (allow));
        sb_sandbox_send_error (req, 405, "method_not_allowed", "This method is not allowed here.");
    }
}

//  --------------------------------------------------------------------------
//  Life

static bool
s_visible (const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

sb_sandbox_oauth_t *
sb_sandbox_oauth_new (sb_sandbox_t *sandbox, const sb_sandbox_oauth_config_t *config,
                      const char *instance_url)
{
    const char *secret = config->client_secret ? config->client_secret : "";
    if (!config->client_id || !*config->client_id
    ||  strlen (config->client_id) >= SB_SANDBOX_OAUTH_MAX_CLIENT || !s_visible (config->client_id)
    ||  strlen (secret) >= SB_SANDBOX_OAUTH_MAX_CLIENT || !s_visible (secret)) {
        sb_log_error ("bad_oauth_client", "the OAuth client ID (1-%d bytes) and secret (0-%d) "
                      "must be visible ASCII", SB_SANDBOX_OAUTH_MAX_CLIENT - 1,
                      SB_SANDBOX_OAUTH_MAX_CLIENT - 1);
        return NULL;
    }
    if (config->access_ttl_s < 1 || config->access_ttl_s > SB_SANDBOX_OAUTH_MAX_TTL_S
    ||  config->refresh_grace_s < 0 || config->refresh_grace_s > SB_SANDBOX_OAUTH_MAX_TTL_S) {
        sb_log_error ("bad_oauth_ttl", "the access TTL must be 1-%d s and the refresh grace 0-%d s",
                      SB_SANDBOX_OAUTH_MAX_TTL_S, SB_SANDBOX_OAUTH_MAX_TTL_S);
        return NULL;
    }
    if (strncmp (instance_url, "http://", 7) && strncmp (instance_url, "https://", 8)) {
        sb_log_error ("bad_oauth_instance_url", "the instance URL must be an http(s) URL");
        return NULL;
    }
    sb_sandbox_oauth_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->sandbox = sandbox;
    self->grants = calloc (SB_SANDBOX_OAUTH_MAX_GRANTS, sizeof *self->grants);
    self->codes = calloc (SB_SANDBOX_OAUTH_MAX_CODES, sizeof *self->codes);
    int len = snprintf (self->instance_url, sizeof self->instance_url, "%s", instance_url);
    if (!self->grants || !self->codes || len < 0 || (size_t) len >= sizeof self->instance_url) {
        sb_log_error ("bad_oauth_instance_url", "the instance URL is too long");
        sb_sandbox_oauth_destroy (&self);
        return NULL;
    }
    snprintf (self->client_id, sizeof self->client_id, "%s", config->client_id);
    snprintf (self->client_secret, sizeof self->client_secret, "%s", secret);
    self->access_ttl_ms = (int64_t) config->access_ttl_s * 1000;
    self->grace_ms = (int64_t) config->refresh_grace_s * 1000;
    self->rotate = config->rotate;
    sb_log_info ("oauth_ready", "client=%s confidential=%s access_ttl_s=%ld grace_s=%ld rotate=%s "
                 "instance_url=%s", self->client_id, *secret ? "yes" : "no",
                 config->access_ttl_s, config->refresh_grace_s, self->rotate ? "yes" : "no",
                 self->instance_url);
    return self;
}

size_t
sb_sandbox_oauth_pending (sb_sandbox_oauth_t *self)
{
    return self->slow;
}

void
sb_sandbox_oauth_destroy (sb_sandbox_oauth_t **self_p)
{
    sb_sandbox_oauth_t *self = *self_p;
    if (!self)
        return;
    if (self->grants) {
        sb_crypto_wipe (self->grants, SB_SANDBOX_OAUTH_MAX_GRANTS * sizeof *self->grants);
        free (self->grants);
    }
    if (self->codes) {
        sb_crypto_wipe (self->codes, SB_SANDBOX_OAUTH_MAX_CODES * sizeof *self->codes);
        free (self->codes);
    }
    sb_crypto_wipe (self->client_secret, sizeof self->client_secret);
    free (self);
    *self_p = NULL;
}
