/*  workers/sb_wh_admin.c — the admin API's webhook routes (issue 23;
    docs/ADMIN.md "Webhooks"; db/migrations/015, 018):

      GET    /admin/tenants/{id}/webhooks            a tenant's inbound endpoints
      POST   /admin/tenants/{id}/webhooks            {"connector", "scheme", "options"?,
                                                     "secret"?}: a new endpoint
      GET    /admin/webhooks/{endpoint}              one endpoint, its event count
      POST   /admin/webhooks/{endpoint}/rotate       {"secret"?, "overlap_s"?}
      POST   /admin/webhooks/{endpoint}/disable|enable
      DELETE /admin/webhooks/{endpoint}
      GET    /admin/tenants/{id}/subscriptions       a tenant's outbound subscriptions
      POST   /admin/tenants/{id}/subscriptions       {"url", "types"?, "connector"?,
                                                     "rate_per_s"?, "max_in_flight"?}
      DELETE /admin/subscriptions/{id}
      POST   /admin/subscriptions/{id}/enable
      GET    /admin/tenants/{id}/dead-letters[?limit&before]
      POST   /admin/tenants/{id}/dead-letters/replay[?limit]
      POST   /admin/deliveries/{id}/replay
      GET    /admin/deliveries/{id}/attempts
      GET    /admin/tenants/{id}/events[?connector&limit&before]

    sb_admin.c routes these here (it matched the method and path). Every
    check answers 400 or 404 itself, then one SQL function of migration
    018 decides and answers {"status", "body"}.

    Secrets. An endpoint's signing secret comes in the body or is made
    here ("whsec_" + base64 of SB_WH_ADMIN_SECRET_BYTES random bytes, as a
    subscription's always is); it is checked for its scheme
    (sb_wh_secret_check), sealed with sb_conn_seal under the current data
    key, owner "webhook:<id>" (or "subscription:<id>") and column "secret",
    and leaves only as ciphertext. A generated secret is in the create (or
    rotate) answer, once; no other answer and no log line holds it. A
    rotation opens the current secret and seals it again as "previous"
    beside the new one, both under the current key, verified until
    previous_until (now + overlap_s); the write wins only while the row
    holds the secret read (an md5 of its ciphertext), so two rotations at
    once never lose one. */
#include "sb_admin_int.h"
#include "sb_conn.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_oauth_form.h"
#include "sb_wh_verify.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_WH_ADMIN_ID_BYTES        18      /* random bytes of an ID: 24 base64url characters */
#define SB_WH_ADMIN_ID_LEN          27      /* "we_" / "ws_" and 24 characters */
#define SB_WH_ADMIN_MAX_ID          64      /* an endpoint or subscription id (015's CHECK) */
#define SB_WH_ADMIN_SECRET_BYTES    32      /* random bytes of a generated whsec_ secret */
#define SB_WH_ADMIN_OVERLAP_S       86400   /* a rotation's overlap without "overlap_s" */
#define SB_WH_ADMIN_MAX_OVERLAP_S   2592000 /* the longest overlap (30 days) */
#define SB_WH_ADMIN_MAX_URL         2048    /* a subscription's URL, bytes (015's CHECK) */
#define SB_WH_ADMIN_MAX_TYPES       64      /* event types one subscription names */
#define SB_WH_ADMIN_MAX_CONNECTOR   64      /* a connector name, characters */
#define SB_WH_ADMIN_MAX_LIST        1000    /* endpoints or subscriptions in one answer */
#define SB_WH_ADMIN_PAGE_DEFAULT    100     /* events or dead letters without ?limit */
#define SB_WH_ADMIN_MAX_PAGE        1000    /* events, dead letters or attempts in one answer */
#define SB_WH_ADMIN_REPLAY_DEFAULT  1000    /* dead letters one replay-all call moves without ?limit */
#define SB_WH_ADMIN_MAX_REPLAY      10000   /* dead letters one replay-all call moves, at most */
#define SB_WH_ADMIN_RATE_DEFAULT    10      /* a subscription's deliveries per second */
#define SB_WH_ADMIN_MAX_RATE        10000
#define SB_WH_ADMIN_IN_FLIGHT       4       /* a subscription's deliveries at once */
#define SB_WH_ADMIN_MAX_IN_FLIGHT   256

//  A create, rotate or subscribe waiting for the data key (and, for a
//  rotation, for the row). Strings owned; `secret` wiped at free.
typedef struct {
    sb_token_role_t *self;
    char id [SB_WH_ADMIN_MAX_ID + 1];
    char owner [SB_WH_ADMIN_MAX_ID + 16];   /* "webhook:<id>" / "subscription:<id>" */
    char tenant [64];
    char connector [SB_WH_ADMIN_MAX_CONNECTOR + 1];
    sb_wh_scheme_t scheme;
    char *options;                          /* create: the options, JSON text */
    char *secret;                           /* the new secret */
    size_t secret_len;
    bool generated;                         /* made here: the answer shows it once */
    int overlap_s;                          /* rotate */
    char *row_key;                          /* rotate: the key the row is under */
    char *row_sealed;                       /* rotate: its secret, bytea text */
    char *row_version;                      /* rotate: md5 of it */
    char *url;                              /* subscribe */
    char *types;                            /* subscribe: a JSON array of strings */
    int rate;
    int in_flight;
} s_pending_t;

static void
s_pending_free (void *arg)
{
    s_pending_t *pending = arg;
    if (pending->secret)
        sb_crypto_wipe (pending->secret, pending->secret_len);
    free (pending->secret);
    free (pending->options);
    free (pending->row_key);
    free (pending->row_sealed);
    free (pending->row_version);
    free (pending->url);
    free (pending->types);
    free (pending);
}

//  ---------------------------------------------------------------------
//  Checks (each answers 400 when it fails)

static int
s_id_check (sb_worker_job_t **job_p, const char *id, const char *what)
{
    size_t len = strlen (id);
    bool ok = len >= 8 && len <= SB_WH_ADMIN_MAX_ID;
    for (size_t i = 0; ok && i < len; i++)
        ok = (id [i] >= 'a' && id [i] <= 'z') || (id [i] >= 'A' && id [i] <= 'Z')
          || (id [i] >= '0' && id [i] <= '9') || id [i] == '_' || id [i] == '-';
    if (ok)
        return 0;
    sb_admin_refusef (job_p, 400, "invalid_request", "%s id is 8 to 64 characters of letters, "
                      "digits, \"_\" and \"-\"", what);
    return -1;
}

//  A delivery id: a positive decimal bigint.
static int
s_delivery_check (sb_worker_job_t **job_p, const char *id)
{
    size_t len = strlen (id);
    bool ok = len >= 1 && len <= 18 && id [0] >= '1' && id [0] <= '9';
    for (size_t i = 0; ok && i < len; i++)
        ok = id [i] >= '0' && id [i] <= '9';
    if (ok)
        return 0;
    sb_admin_refuse (job_p, 400, "invalid_request", "a delivery id is a positive whole number");
    return -1;
}

//  A connector name as connector files take it, known to the catalog
//  when the role has one (--connectors).
static int
s_connector_check (sb_token_role_t *self, sb_worker_job_t **job_p, const char *name)
{
    size_t len = strlen (name);
    bool ok = len >= 1 && len <= SB_WH_ADMIN_MAX_CONNECTOR;
    for (size_t i = 0; ok && i < len; i++)
        ok = (name [i] >= 'a' && name [i] <= 'z') || (name [i] >= 'A' && name [i] <= 'Z')
          || (name [i] >= '0' && name [i] <= '9') || name [i] == '-';
    if (!ok) {
        sb_admin_refuse (job_p, 400, "invalid_request",
                         "a connector name is 1 to 64 characters of letters, digits and \"-\"");
        return -1;
    }
    if (self->connectors && !sb_connectors_find (self->connectors, name)) {
        sb_admin_refusef (job_p, 404, "not_found", "there is no connector \"%s\"", name);
        return -1;
    }
    return 0;
}

//  Only the query parameters named in `allowed` (NULL-terminated, or NULL).
static int
s_query_only (sb_worker_job_t **job_p, const sb_oauth_form_t *query, const char *const *allowed)
{
    size_t size = query? sb_oauth_form_size (query): 0;
    for (size_t i = 0; i < size; i++) {
        const char *name = sb_oauth_form_name (query, i);
        bool known = false;
        for (size_t k = 0; allowed && allowed [k]; k++)
            known = known || strcmp (name, allowed [k]) == 0;
        if (!known) {
            sb_admin_refusef (job_p, 400, "invalid_request",
                              "this route takes no query parameter \"%.64s\"", name);
            return -1;
        }
    }
    return 0;
}

static const char *
s_query (const sb_oauth_form_t *query, const char *name)
{
    return query? sb_oauth_form_get (query, name): NULL;
}

//  A body that must be empty or {}. Returns 0, or -1 having answered 400.
static int
s_no_body (sb_worker_job_t **job_p, const sb_http_request_t *http)
{
    if (http->body_len == 0)
        return 0;
    json_t *body = sb_json_parse (http->body, http->body_len, JSON_REJECT_DUPLICATES, NULL);
    bool empty = json_is_object (body) && json_object_size (body) == 0;
    json_decref (body);
    if (empty)
        return 0;
    sb_admin_refuse (job_p, 400, "invalid_request", "this route takes no body (or {})");
    return -1;
}

//  The body as a JSON object whose members are in `allowed`; an empty
//  body is {}. NULL having answered 400.
static json_t *
s_body (sb_worker_job_t **job_p, const sb_http_request_t *http, const char *const *allowed)
{
    if (http->body_len == 0)
        return json_object ();
    json_error_t error;
    json_t *body = sb_json_parse (http->body, http->body_len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (body)) {
        json_decref (body);
        sb_admin_refuse (job_p, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach (body, key, value) {
        bool known = false;
        for (size_t k = 0; allowed [k]; k++)
            known = known || strcmp (key, allowed [k]) == 0;
        if (!known) {
            sb_admin_refusef (job_p, 400, "invalid_request",
                              "the body has an unknown member \"%.64s\"", key);
            json_decref (body);
            return NULL;
        }
    }
    return body;
}

//  The string member `name`: NULL when absent and not `required`.
static int
s_string (sb_worker_job_t **job_p, json_t *body, const char *name, bool required,
          const char **value)
{
    json_t *member = json_object_get (body, name);
    *value = NULL;
    if (!member && !required)
        return 0;
    if (!json_is_string (member)
    ||  strlen (json_string_value (member)) != json_string_length (member)) {
        sb_admin_refusef (job_p, 400, "invalid_request", "\"%s\" must be a string%s", name,
                          required? " and is required": "");
        return -1;
    }
    *value = json_string_value (member);
    return 0;
}

//  The whole-number member `name` in min..max, `fallback` when absent.
static int
s_integer (sb_worker_job_t **job_p, json_t *body, const char *name, long long min,
           long long max, long long fallback, long long *value)
{
    json_t *member = json_object_get (body, name);
    *value = fallback;
    if (!member)
        return 0;
    if (json_is_integer (member) && json_integer_value (member) >= min
    &&  json_integer_value (member) <= max) {
        *value = json_integer_value (member);
        return 0;
    }
    sb_admin_refusef (job_p, 400, "invalid_request", "\"%s\" must be a whole number from %lld "
                      "to %lld", name, min, max);
    return -1;
}

//  A subscription's URL: http(s), at most SB_WH_ADMIN_MAX_URL bytes, a
//  host, no userinfo, no whitespace or control byte, no fragment. Where it
//  points is checked at each delivery (the SSRF guard), not here.
static int
s_url_check (sb_worker_job_t **job_p, const char *url)
{
    const char *why = NULL;
    size_t len = strlen (url);
    const char *authority = strncmp (url, "https://", 8) == 0? url + 8
                          : strncmp (url, "http://", 7) == 0? url + 7: NULL;
    size_t host_len = authority? strcspn (authority, "/?#"): 0;
    if (!authority)
        why = "the URL must start with http:// or https://";
    else
    if (len > SB_WH_ADMIN_MAX_URL)
        why = "the URL is longer than 2048 bytes";
    else
    if (host_len == 0 || authority [0] == ':')
        why = "the URL has no host";
    else
    if (memchr (authority, '@', host_len))
        why = "the URL holds a user name or password (\"user@host\"): put none in a URL";
    else
    if (strchr (url, '#'))
        why = "the URL has a fragment (\"#…\")";
    for (size_t i = 0; !why && i < len; i++)
        if ((unsigned char) url [i] <= ' ' || (unsigned char) url [i] == 0x7f)
            why = "the URL holds a space or a control character";
    if (!why)
        return 0;
    sb_admin_refuse (job_p, 400, "invalid_request", why);
    return -1;
}

//  Event types: an array of at most SB_WH_ADMIN_MAX_TYPES strings of 1 to
//  SB_WH_MAX_EVENT_TYPE printable bytes, '*' only last (a prefix).
//  Returns the array as JSON text (new), or NULL having answered 400.
static char *
s_types (sb_worker_job_t **job_p, json_t *body)
{
    json_t *types = json_object_get (body, "types");
    if (!types)
        return strdup ("[]");
    const char *why = NULL;
    if (!json_is_array (types) || json_array_size (types) > SB_WH_ADMIN_MAX_TYPES)
        why = "\"types\" must be an array of at most 64 event types";
    size_t i;
    json_t *type;
    json_array_foreach (types, i, type) {
        const char *text = json_string_value (type);
        size_t len = text? strlen (text): 0;
        if (!why && (!text || len == 0 || len > SB_WH_MAX_EVENT_TYPE
                     || len != json_string_length (type)))
            why = "an event type is a string of 1 to 256 bytes";
        for (size_t c = 0; !why && c < len; c++)
            if ((unsigned char) text [c] <= ' ' || (unsigned char) text [c] == 0x7f
            ||  (text [c] == '*' && c + 1 < len))
                why = "an event type has no space or control character, and \"*\" only at its "
                      "end (a prefix: \"invoice.*\")";
    }
    if (why) {
        sb_admin_refuse (job_p, 400, "invalid_request", why);
        return NULL;
    }
    char *text = sb_json_dump (types, NULL);
    if (!text)
        sb_worker_job_fail (job_p, "out of memory");
    return text;
}

//  ---------------------------------------------------------------------
//  IDs and secrets

//  "<prefix>" and 24 random base64url characters into `id`.
static int
s_new_id (const char *prefix, char id [SB_WH_ADMIN_MAX_ID + 1])
{
    uint8_t bytes [SB_WH_ADMIN_ID_BYTES];
    if (sb_crypto_random (bytes, sizeof bytes))
        return -1;
    char *text = sb_base64url_encode (bytes, sizeof bytes);
    if (!text)
        return -1;
    snprintf (id, SB_WH_ADMIN_MAX_ID + 1, "%s%s", prefix, text);
    free (text);
    return strlen (id) == SB_WH_ADMIN_ID_LEN? 0: -1;
}

//  A new secret "whsec_" + standard base64 (padded) of
//  SB_WH_ADMIN_SECRET_BYTES random bytes, or NULL.
static char *
s_new_secret (size_t *len)
{
    uint8_t bytes [SB_WH_ADMIN_SECRET_BYTES];
    if (sb_crypto_random (bytes, sizeof bytes))
        return NULL;
    char *url = sb_base64url_encode (bytes, sizeof bytes);
    sb_crypto_wipe (bytes, sizeof bytes);
    if (!url)
        return NULL;
    size_t url_len = strlen (url);
    size_t size = 6 + url_len + 3 + 1;
    char *secret = malloc (size);
    if (secret) {
        size_t o = 0;
        memcpy (secret, "whsec_", 6);
        o = 6;
        for (size_t i = 0; i < url_len; i++)
            secret [o++] = url [i] == '-'? '+': url [i] == '_'? '/': url [i];
        while ((o - 6) % 4)
            secret [o++] = '=';
        secret [o] = 0;
        *len = o;
    }
    sb_crypto_wipe (url, url_len);
    free (url);
    return secret;
}

//  Takes the body's "secret" (checked for `scheme`) or makes one; the
//  body's copy is wiped. Returns 0, or -1 having answered.
static int
s_take_secret (sb_worker_job_t **job_p, json_t *body, s_pending_t *pending)
{
    json_t *member = json_object_get (body, "secret");
    if (!member) {
        pending->secret = s_new_secret (&pending->secret_len);
        pending->generated = true;
        if (pending->secret)
            return 0;
        sb_worker_job_fail (job_p, "no randomness for a secret");
        return -1;
    }
    const char *text = json_string_value (member);
    size_t len = json_string_length (member);
    char error [256] = "";
    int rc = -1;
    if (!text || strlen (text) != len)
        snprintf (error, sizeof error, "\"secret\" must be a string");
    else
    if (sb_wh_secret_check (pending->scheme, text, error, sizeof error) == 0) {
        pending->secret = malloc (len + 1);
        pending->secret_len = len;
        if (pending->secret) {
            memcpy (pending->secret, text, len + 1);
            rc = 0;
        }
        else
            snprintf (error, sizeof error, "out of memory");
    }
    //  jansson keeps its copy until the object is freed: wipe it first.
    if (text)
        sb_crypto_wipe (sb_unconst (text), len);
    if (rc)
        sb_admin_refusef (job_p, 400, "invalid_request", "the secret is refused: %s", error);
    return rc;
}

//  Seals `plain` for the pending row's owner as `column` under `key_id`:
//  bytea text (new) or NULL.
static char *
s_seal (s_pending_t *pending, const char *key_id, const char *column, const char *plain,
        size_t len)
{
    size_t sealed_len = 0;
    uint8_t *sealed = sb_conn_seal (pending->self, key_id, pending->tenant, pending->owner,
                                    column, plain, len, &sealed_len);
    char *text = sealed? sb_conn_bytea_text (sealed, sealed_len): NULL;
    free (sealed);
    return text;
}

//  The answer of a create, rotate or subscribe: 018's {"status", "body"}
//  relayed, with the generated secret added to a 2xx body (its one
//  appearance). The text sent is wiped.
static void
s_on_secret_answer (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_pending_t *pending = arg;
    json_t *answer = NULL;
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
    &&  !PQgetisnull (res, 0, 0)) {
        const char *text = PQgetvalue (res, 0, 0);
        answer = sb_json_parse (text, strlen (text), 0, NULL);
    }
    json_t *status = json_object_get (answer, "status");
    json_t *body = json_object_get (answer, "body");
    if (!json_is_integer (status) || !json_is_object (body)) {
        sb_admin_db_failed (job_p, "webhook secret", res, error);
        json_decref (answer);
        s_pending_free (pending);
        return;
    }
    int code = (int) json_integer_value (status);
    if (code >= 200 && code < 300 && pending->generated)
        json_object_set_new (body, "secret", json_stringn (pending->secret, pending->secret_len));
    size_t len = 0;
    char *text = sb_json_dump (body, &len);
    json_t *secret = json_object_get (body, "secret");
    if (json_is_string (secret))
        sb_crypto_wipe (sb_unconst (json_string_value (secret)), json_string_length (secret));
    json_decref (answer);
    if (text)
        sb_token_http_json (job_p, code, text);
    else
        sb_worker_job_fail (job_p, "out of memory");
    if (text)
        sb_crypto_wipe (text, len);
    free (text);
    s_pending_free (pending);
}

//  ---------------------------------------------------------------------
//  Endpoints

static void
s_endpoint_sealed (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    s_pending_t *pending = arg;
    char *sealed = s_seal (pending, key_id, "secret", pending->secret, pending->secret_len);
    if (!sealed) {
        s_pending_free (pending);
        sb_worker_job_fail (job_p, "the secret could not be sealed");
        return;
    }
    const char *params [] = { pending->tenant, pending->id, pending->connector,
                              sb_wh_scheme_name (pending->scheme), pending->options, key_id,
                              sealed };
    sb_token_query (pending->self, *job_p, "SELECT admin_webhook_create ($1, $2, $3, $4, "
                    "$5::jsonb, $6, $7::bytea)", 7, params, s_on_secret_answer, pending,
                    s_pending_free);
    *job_p = NULL;
    free (sealed);
}

static void
s_endpoint_create (sb_token_role_t *self, sb_worker_job_t *job, const sb_http_request_t *http,
                   const char *tenant)
{
    static const char *const allowed [] = { "connector", "scheme", "options", "secret", NULL };
    if (sb_admin_tenant_check (&job, tenant))
        return;
    json_t *body = s_body (&job, http, allowed);
    if (!body)
        return;
    s_pending_t *pending = calloc (1, sizeof *pending);
    const char *connector, *scheme;
    json_t *options = json_object_get (body, "options");
    char error [256] = "";
    if (!pending) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    pending->self = self;
    if (s_string (&job, body, "connector", true, &connector)
    ||  s_string (&job, body, "scheme", true, &scheme)
    ||  s_connector_check (self, &job, connector))
        goto out;
    if (sb_wh_scheme_parse (scheme, &pending->scheme)) {
        sb_admin_refusef (&job, 400, "invalid_request", "there is no scheme \"%.32s\" (stripe, "
                          "github, shopify, slack, standard, salesforce or hmac)", scheme);
        goto out;
    }
    if (options && !json_is_object (options)) {
        sb_admin_refuse (&job, 400, "invalid_request", "\"options\" must be a JSON object");
        goto out;
    }
    pending->options = options? sb_json_dump (options, NULL): strdup ("{}");
    if (!pending->options) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    if (sb_wh_options_check (pending->scheme, pending->options, error, sizeof error)) {
        sb_admin_refusef (&job, 400, "invalid_request", "the options are refused: %s", error);
        goto out;
    }
    if (s_new_id ("we_", pending->id)) {
        sb_worker_job_fail (&job, "no randomness for an id");
        goto out;
    }
    if (s_take_secret (&job, body, pending))
        goto out;
    snprintf (pending->tenant, sizeof pending->tenant, "%s", tenant);
    snprintf (pending->connector, sizeof pending->connector, "%s", connector);
    snprintf (pending->owner, sizeof pending->owner, "webhook:%s", pending->id);
    json_decref (body);
    sb_conn_keys_ready (self, job, NULL, s_endpoint_sealed, pending, s_pending_free);
    return;
out:
    if (pending)
        s_pending_free (pending);
    json_decref (body);
}

//  The ring holds the row's key and the current one: open the secret,
//  seal it again as "previous" and the new one as "secret".
static void
s_rotate_ready (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    s_pending_t *pending = arg;
    char *secret = NULL, *previous = NULL, *plain = NULL;
    size_t sealed_len = 0;
    uint8_t *sealed = sb_conn_bytea_parse (pending->row_sealed, &sealed_len);
    if (sealed)
        plain = sb_conn_open (pending->self, pending->row_key, pending->tenant, pending->owner,
                              "secret", sealed, sealed_len);
    free (sealed);
    if (!plain) {
        sb_log_error ("webhook_unreadable", "webhook endpoint %s (tenant %s) does not open under "
                      "data key %s: it cannot be rotated", pending->id, pending->tenant,
                      pending->row_key);
        s_pending_free (pending);
        sb_admin_refuse (job_p, 500, "server_error", "the endpoint's secret does not open under "
                         "its data key; the token worker's log says which");
        return;
    }
    size_t plain_len = strlen (plain);
    secret = s_seal (pending, key_id, "secret", pending->secret, pending->secret_len);
    if (pending->overlap_s > 0)
        previous = s_seal (pending, key_id, "previous", plain, plain_len);
    sb_crypto_wipe (plain, plain_len);
    free (plain);
    if (!secret || (pending->overlap_s > 0 && !previous)) {
        free (secret);
        free (previous);
        s_pending_free (pending);
        sb_worker_job_fail (job_p, "the secret could not be sealed");
        return;
    }
    char overlap [16];
    snprintf (overlap, sizeof overlap, "%d", pending->overlap_s);
    const char *params [] = { pending->id, pending->row_version, key_id, secret, previous,
                              overlap };
    sb_token_query (pending->self, *job_p, "SELECT admin_webhook_rotate ($1, $2, $3, $4::bytea, "
                    "$5::bytea, $6::int)", 6, params, s_on_secret_answer, pending,
                    s_pending_free);
    *job_p = NULL;
    free (secret);
    free (previous);
}

static char *
s_value (const PGresult *res, int column)
{
    return PQgetisnull (res, 0, column)? NULL: strdup (PQgetvalue (res, 0, column));
}

//  The row read: check the new secret for its scheme, then the keys.
static void
s_on_rotate_row (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_pending_t *pending = arg;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQnfields (res) != 5) {
        sb_admin_db_failed (job_p, "webhook rotate", res, error);
        goto out;
    }
    if (PQntuples (res) == 0) {
        sb_admin_refusef (job_p, 404, "not_found", "there is no webhook endpoint \"%s\"",
                          pending->id);
        goto out;
    }
    snprintf (pending->tenant, sizeof pending->tenant, "%s", PQgetvalue (res, 0, 0));
    pending->row_key = s_value (res, 2);
    pending->row_sealed = s_value (res, 3);
    pending->row_version = s_value (res, 4);
    if (!pending->row_key || !pending->row_sealed || !pending->row_version) {
        sb_worker_job_fail (job_p, "out of memory");
        goto out;
    }
    if (sb_wh_scheme_parse (PQgetvalue (res, 0, 1), &pending->scheme)) {
        sb_admin_db_failed (job_p, "webhook rotate: unknown scheme in the row", res, NULL);
        goto out;
    }
    //  The secret waited in the body (as text) until the scheme was known.
    if (pending->secret) {
        char why [256] = "";
        if (sb_wh_secret_check (pending->scheme, pending->secret, why, sizeof why)) {
            sb_admin_refusef (job_p, 400, "invalid_request", "the secret is refused: %s", why);
            goto out;
        }
    }
    else {
        pending->secret = s_new_secret (&pending->secret_len);
        pending->generated = true;
        if (!pending->secret) {
            sb_worker_job_fail (job_p, "no randomness for a secret");
            goto out;
        }
    }
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    sb_conn_keys_ready (pending->self, job, pending->row_key, s_rotate_ready, pending,
                        s_pending_free);
    return;
out:
    s_pending_free (pending);
}

static void
s_endpoint_rotate (sb_token_role_t *self, sb_worker_job_t *job, const sb_http_request_t *http,
                   const char *id)
{
    static const char *const allowed [] = { "secret", "overlap_s", NULL };
    if (s_id_check (&job, id, "an endpoint"))
        return;
    json_t *body = s_body (&job, http, allowed);
    if (!body)
        return;
    s_pending_t *pending = calloc (1, sizeof *pending);
    long long overlap = 0;
    json_t *member = json_object_get (body, "secret");
    const char *text = json_string_value (member);
    size_t len = json_string_length (member);
    if (!pending) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    pending->self = self;
    if (s_integer (&job, body, "overlap_s", 0, SB_WH_ADMIN_MAX_OVERLAP_S, SB_WH_ADMIN_OVERLAP_S,
                   &overlap))
        goto out;
    if (member && (!text || strlen (text) != len)) {
        sb_admin_refuse (&job, 400, "invalid_request", "\"secret\" must be a string");
        goto out;
    }
    if (text) {
        pending->secret = malloc (len + 1);
        pending->secret_len = len;
        if (!pending->secret) {
            sb_worker_job_fail (&job, "out of memory");
            goto out;
        }
        memcpy (pending->secret, text, len + 1);
    }
    pending->overlap_s = (int) overlap;
    snprintf (pending->id, sizeof pending->id, "%s", id);
    snprintf (pending->owner, sizeof pending->owner, "webhook:%s", id);
    if (text)
        sb_crypto_wipe (sb_unconst (text), len);
    json_decref (body);
    const char *params [] = { id };
    sb_token_query (self, job, "SELECT tenant_id, scheme, key_id, secret_enc, version"
                    " FROM admin_webhook_sealed ($1)", 1, params, s_on_rotate_row, pending,
                    s_pending_free);
    return;
out:
    if (text)
        sb_crypto_wipe (sb_unconst (text), len);
    if (pending)
        s_pending_free (pending);
    json_decref (body);
}

//  ---------------------------------------------------------------------
//  Subscriptions

static void
s_subscription_sealed (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    s_pending_t *pending = arg;
    char *sealed = s_seal (pending, key_id, "secret", pending->secret, pending->secret_len);
    if (!sealed) {
        s_pending_free (pending);
        sb_worker_job_fail (job_p, "the secret could not be sealed");
        return;
    }
    char rate [16], in_flight [16];
    snprintf (rate, sizeof rate, "%d", pending->rate);
    snprintf (in_flight, sizeof in_flight, "%d", pending->in_flight);
    const char *params [] = { pending->tenant, pending->id, pending->url, pending->types,
                              *pending->connector? pending->connector: NULL, rate, in_flight,
                              key_id, sealed };
    sb_token_query (pending->self, *job_p, "SELECT admin_subscription_create ($1, $2, $3, "
                    "ARRAY (SELECT jsonb_array_elements_text ($4::jsonb)), $5, $6::int, $7::int, "
                    "$8, $9::bytea)", 9, params, s_on_secret_answer, pending, s_pending_free);
    *job_p = NULL;
    free (sealed);
}

static void
s_subscribe (sb_token_role_t *self, sb_worker_job_t *job, const sb_http_request_t *http,
             const char *tenant)
{
    static const char *const allowed [] = { "url", "types", "connector", "rate_per_s",
                                            "max_in_flight", NULL };
    if (sb_admin_tenant_check (&job, tenant))
        return;
    json_t *body = s_body (&job, http, allowed);
    if (!body)
        return;
    s_pending_t *pending = calloc (1, sizeof *pending);
    const char *url, *connector;
    long long rate, in_flight;
    if (!pending) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    pending->self = self;
    if (s_string (&job, body, "url", true, &url) || s_url_check (&job, url)
    ||  s_string (&job, body, "connector", false, &connector)
    ||  (connector && s_connector_check (self, &job, connector))
    ||  s_integer (&job, body, "rate_per_s", 1, SB_WH_ADMIN_MAX_RATE, SB_WH_ADMIN_RATE_DEFAULT,
                   &rate)
    ||  s_integer (&job, body, "max_in_flight", 1, SB_WH_ADMIN_MAX_IN_FLIGHT,
                   SB_WH_ADMIN_IN_FLIGHT, &in_flight))
        goto out;
    pending->types = s_types (&job, body);
    if (!pending->types)
        goto out;
    pending->url = strdup (url);
    pending->secret = s_new_secret (&pending->secret_len);
    pending->generated = true;
    if (!pending->url || !pending->secret || s_new_id ("ws_", pending->id)) {
        sb_worker_job_fail (&job, "out of memory or randomness");
        goto out;
    }
    pending->rate = (int) rate;
    pending->in_flight = (int) in_flight;
    snprintf (pending->tenant, sizeof pending->tenant, "%s", tenant);
    snprintf (pending->connector, sizeof pending->connector, "%s", connector? connector: "");
    snprintf (pending->owner, sizeof pending->owner, "subscription:%s", pending->id);
    json_decref (body);
    sb_conn_keys_ready (self, job, NULL, s_subscription_sealed, pending, s_pending_free);
    return;
out:
    if (pending)
        s_pending_free (pending);
    json_decref (body);
}

//  ---------------------------------------------------------------------
//  Plain steps: one 018 function, its answer relayed

static void
s_run (sb_token_role_t *self, sb_worker_job_t *job, const char *sql, int nparams,
       const char *const *params)
{
    //  sb_token_query ends the job itself when it cannot run the statement
    int rc = sb_token_query (self, job, sql, nparams, params, sb_admin_on_answer, NULL, NULL);
    (void) rc;
}

//  A page's ?limit and ?before as text (before NULL when absent).
static int
s_page (sb_worker_job_t **job_p, const sb_oauth_form_t *query, long long fallback,
        long long max, char limit [24], char before [24], const char **before_p)
{
    long long value, cursor;
    if (sb_admin_query_count (job_p, "limit", s_query (query, "limit"), fallback, max, &value)
    ||  sb_admin_query_count (job_p, "before", s_query (query, "before"), 1, INT64_MAX, &cursor))
        return -1;
    snprintf (limit, 24, "%lld", value);
    snprintf (before, 24, "%lld", cursor);
    *before_p = s_query (query, "before")? before: NULL;
    return 0;
}

//  ---------------------------------------------------------------------
//  Routing (sb_admin.c matched the method and the path)

void
sb_wh_admin_http (sb_token_role_t *self, sb_worker_job_t *job, const sb_http_request_t *http,
                  char *const *segments, size_t count, const sb_oauth_form_t *query)
{
    static const char *const page [] = { "limit", "before", NULL };
    static const char *const events [] = { "connector", "limit", "before", NULL };
    static const char *const replay [] = { "limit", NULL };
    const char *method = http->method;
    bool get = strcmp (method, "GET") == 0;
    bool post = strcmp (method, "POST") == 0;
    const char *first = segments [0];
    const char *last = segments [count - 1];
    char limit [24], before [24], list [16];
    const char *cursor = NULL;
    snprintf (list, sizeof list, "%d", SB_WH_ADMIN_MAX_LIST);
    //  tenants/{id}/…
    if (strcmp (first, "tenants") == 0) {
        const char *tenant = segments [1];
        const char *what = segments [2];
        bool dead = strcmp (what, "dead-letters") == 0;
        bool replay_all = dead && count == 4;
        if (s_query_only (&job, query, strcmp (what, "events") == 0? events
                                     : replay_all? replay: dead? page: NULL)
        ||  sb_admin_tenant_check (&job, tenant))
            return;
        bool creates = post && (strcmp (what, "webhooks") == 0
                                || strcmp (what, "subscriptions") == 0);
        if (!creates && s_no_body (&job, http))
            return;
        const char *params [] = { tenant, list };
        if (strcmp (what, "webhooks") == 0 && get)
            s_run (self, job, "SELECT admin_webhooks_list ($1, $2::int)", 2, params);
        else
        if (strcmp (what, "webhooks") == 0)
            s_endpoint_create (self, job, http, tenant);
        else
        if (strcmp (what, "subscriptions") == 0 && get)
            s_run (self, job, "SELECT admin_subscriptions_list ($1, $2::int)", 2, params);
        else
        if (strcmp (what, "subscriptions") == 0)
            s_subscribe (self, job, http, tenant);
        else
        if (replay_all) {
            long long value;
            if (sb_admin_query_count (&job, "limit", s_query (query, "limit"),
                                      SB_WH_ADMIN_REPLAY_DEFAULT, SB_WH_ADMIN_MAX_REPLAY, &value))
                return;
            snprintf (limit, sizeof limit, "%lld", value);
            const char *replay_params [] = { tenant, limit };
            s_run (self, job, "SELECT admin_dead_replay_all ($1, $2::int)", 2, replay_params);
        }
        else
        if (dead) {
            if (s_page (&job, query, SB_WH_ADMIN_PAGE_DEFAULT, SB_WH_ADMIN_MAX_PAGE, limit,
                        before, &cursor))
                return;
            const char *dead_params [] = { tenant, limit, cursor };
            s_run (self, job, "SELECT admin_dead_list ($1, $2::int, $3::bigint)", 3, dead_params);
        }
        else {
            const char *connector = s_query (query, "connector");
            if ((connector && s_connector_check (self, &job, connector))
            ||  s_page (&job, query, SB_WH_ADMIN_PAGE_DEFAULT, SB_WH_ADMIN_MAX_PAGE, limit,
                        before, &cursor))
                return;
            const char *event_params [] = { tenant, connector, limit, cursor };
            s_run (self, job, "SELECT admin_events_list ($1, $2, $3::int, $4::bigint)", 4,
                   event_params);
        }
        return;
    }
    bool rotate = count == 3 && strcmp (last, "rotate") == 0;
    if (s_query_only (&job, query, NULL) || (!rotate && s_no_body (&job, http)))
        return;
    const char *id = segments [1];
    const char *params [] = { id, list };
    if (strcmp (first, "webhooks") == 0) {
        if (s_id_check (&job, id, "an endpoint"))
            return;
        if (count == 2 && get)
            s_run (self, job, "SELECT admin_webhook_get ($1)", 1, params);
        else
        if (count == 2)
            s_run (self, job, "SELECT admin_webhook_delete ($1)", 1, params);
        else
        if (rotate)
            s_endpoint_rotate (self, job, http, id);
        else
            s_run (self, job, strcmp (last, "enable") == 0
                              ? "SELECT admin_webhook_enable ($1, true)"
                              : "SELECT admin_webhook_enable ($1, false)", 1, params);
    }
    else
    if (strcmp (first, "subscriptions") == 0) {
        if (s_id_check (&job, id, "a subscription"))
            return;
        if (count == 2)
            s_run (self, job, "SELECT admin_subscription_delete ($1)", 1, params);
        else
            s_run (self, job, "SELECT admin_subscription_enable ($1)", 1, params);
    }
    else {
        //  deliveries/{id}/replay | attempts
        if (s_delivery_check (&job, id))
            return;
        if (post)
            s_run (self, job, "SELECT admin_delivery_replay ($1::bigint)", 1, params);
        else
            s_run (self, job, "SELECT admin_delivery_attempts ($1::bigint, $2::int)", 2, params);
    }
}
