/*  workers/sb_wh_verify.h — the providers' own webhook verification rules,
    on the raw body (proto/PROTOCOL.md "Webhooks", docs/WEBHOOKS.md).

    Pure: no I/O, no clock of its own (the caller passes `now_s`), no log.
    Each scheme checks the request exactly as its provider signs it and
    reads from it what the webhook role stores: the events' keys (the
    provider's event IDs), their types, and the 2xx body the provider
    expects. Every comparison of a signature is constant time
    (sb_crypto_equal); the reason a request is refused is a sentence for
    the log that names no secret and no signature.

      stripe      Stripe-Signature "t=<unix>,v1=<hex>[,v1=…]": HMAC-SHA256
                  (secret, "<t>.<body>"), any v1 matching; |now - t| within
                  the tolerance (300 s). Key: the body's "id"; type "type".
      github      X-Hub-Signature-256 "sha256=<hex>": HMAC-SHA256 (secret,
                  body). Key: X-GitHub-Delivery; type X-GitHub-Event
                  (and ".<action>" when the body has one).
      shopify     X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 (secret, body).
                  Key: X-Shopify-Webhook-Id (else X-Shopify-Event-Id);
                  type X-Shopify-Topic.
      slack       X-Slack-Signature "v0=<hex>": HMAC-SHA256 (secret,
                  "v0:<X-Slack-Request-Timestamp>:<body>"), the timestamp
                  within the tolerance (300 s). A url_verification body
                  is answered with its challenge and stores nothing; else
                  key: the body's "event_id"; type "event.type" (else
                  "type").
      standard    Standard Webhooks: webhook-id, webhook-timestamp,
                  webhook-signature "v1,<base64> [v1,<base64>…]":
                  HMAC-SHA256 (key, "<id>.<timestamp>.<body>") with the key
                  the base64 after "whsec_" (the secret's bytes as they are
                  without the prefix); timestamp within the tolerance
                  (300 s). Key: webhook-id; type the body's "type".
                  svix-id, svix-timestamp, svix-signature are read the same.
      salesforce  Outbound messages: a SOAP envelope (text/xml) whose
                  notifications/OrganizationId must equal the endpoint's
                  organization_id (option; 15 or 18 characters, compared on
                  the first 15); up to 100 Notification elements, each an
                  event with key its Id (the NotificationId) and type the
                  sObject's xsi:type (e.g. "sf:Account"). Salesforce signs
                  nothing: the organisation ID and the secret-bearing
                  endpoint URL are its proof. The 2xx body is the SOAP
                  notificationsResponse with Ack true. Parsed with libxml2
                  (no network, no entities, no DTD).
      hmac        Generic: header (option "header", default
                  "x-signature"), algorithm ("sha256", "sha1", "sha512"),
                  encoding ("hex", "base64"), optional "prefix" stripped
                  from the header value ("sha256="); HMAC (secret, body).
                  Key: the header named by "id_header" when set (required
                  then), else the hex SHA-256 of the body; type: the
                  "type_header" header when set, else "".

    A request is verified against each secret given (the current one, and
    during a rotation's overlap the previous one): it passes when any
    verifies. */
#ifndef SB_WH_VERIFY_H_INCLUDED
#define SB_WH_VERIFY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"

#define SB_WH_TOLERANCE_S           300     /* default timestamp tolerance (stripe, slack, standard) */
#define SB_WH_MAX_TOLERANCE_S       86400   /* the most an endpoint's tolerance_s may be */
#define SB_WH_MAX_EVENTS            100     /* events one request may carry (Salesforce's most) */
#define SB_WH_MAX_EVENT_KEY         256     /* an event key, bytes */
#define SB_WH_MAX_EVENT_TYPE        256     /* an event type, bytes */
#define SB_WH_MAX_SECRET            1024    /* a signing secret, bytes */
#define SB_WH_MAX_SECRETS           2       /* secrets a request is checked against */
#define SB_WH_MAX_REPLY             4096    /* the 2xx body a scheme answers, bytes */

typedef enum {
    SB_WH_STRIPE, SB_WH_GITHUB, SB_WH_SHOPIFY, SB_WH_SLACK,
    SB_WH_STANDARD, SB_WH_SALESFORCE, SB_WH_HMAC,
} sb_wh_scheme_t;

/*  An endpoint's verification settings: its scheme and options (the
    webhook_endpoints row's `options`, parsed once), and its secrets. */
typedef struct _sb_wh_verifier_t sb_wh_verifier_t;

/*  One header of the request: name lowercased, value as received (both
    borrowed, NUL-terminated). */
typedef struct {
    const char *name;
    const char *value;
} sb_wh_header_t;

/*  One event the request carries (strings NUL-terminated, in the outcome). */
typedef struct {
    char key [SB_WH_MAX_EVENT_KEY + 1];     /* the provider's event ID (or the body's hash) */
    char type [SB_WH_MAX_EVENT_TYPE + 1];   /* the event's type, "" when the scheme has none */
} sb_wh_event_t;

typedef enum {
    SB_WH_OK = 0,           /* verified: store `events`, then answer 2xx with `reply` */
    SB_WH_CHALLENGE,        /* verified, nothing to store: answer 2xx with `reply` at once
                               (Slack's url_verification) */
    SB_WH_REFUSED,          /* not verified: 401, `reason` for the log */
    SB_WH_BAD_REQUEST,      /* verified but unreadable (no event ID…): 400, `reason` for the caller */
} sb_wh_verdict_t;

/*  What sb_wh_verify decides. */
typedef struct {
    sb_wh_verdict_t verdict;
    char reason [256];                      /* SB_WH_REFUSED, SB_WH_BAD_REQUEST: a sentence */
    sb_wh_event_t events [SB_WH_MAX_EVENTS];
    size_t event_count;                     /* SB_WH_OK: 1..SB_WH_MAX_EVENTS */
    char reply [SB_WH_MAX_REPLY];           /* the 2xx body */
    char reply_type [64];                   /* its content-type */
} sb_wh_outcome_t;

/*  Parses a scheme name ("stripe"… as in webhook_endpoints.scheme).
    Returns 0, or -1 when unknown. */
int sb_wh_scheme_parse (const char *name, sb_wh_scheme_t *scheme) SB_MUST_USE;
const char *sb_wh_scheme_name (sb_wh_scheme_t scheme);

/*  Checks `options_json` (the endpoint's options, a JSON object) for
    `scheme`: unknown keys, wrong types, out-of-range values (tolerance_s
    1..SB_WH_MAX_TOLERANCE_S, an unknown algorithm or encoding, a header
    name that is not a token, salesforce without organization_id) are
    refused with a sentence in `error` (`error_size` bytes). The admin
    API calls it before storing an endpoint. Returns 0 or -1. */
int sb_wh_options_check (sb_wh_scheme_t scheme, const char *options_json, char *error,
                         size_t error_size) SB_MUST_USE;

/*  Checks a signing secret for `scheme` (1..SB_WH_MAX_SECRET bytes;
    standard: "whsec_" then base64 of 24..64 bytes). Returns 0 or -1 with
    a sentence in `error`. */
int sb_wh_secret_check (sb_wh_scheme_t scheme, const char *secret, char *error,
                        size_t error_size) SB_MUST_USE;

/*  Makes a verifier for `scheme` with `options_json` (checked as
    sb_wh_options_check does) and `count` (1..SB_WH_MAX_SECRETS) secrets,
    copied (wiped at destroy). NULL on bad options or out of memory. */
sb_wh_verifier_t *sb_wh_verifier_new (sb_wh_scheme_t scheme, const char *options_json,
                                      const char *const *secrets, size_t count) SB_MUST_USE;
void sb_wh_verifier_destroy (sb_wh_verifier_t **self_p);

/*  Verifies one request: its headers (`header_count`, names lowercased),
    its raw body (`body_len` bytes, any bytes, not NUL-terminated) at unix
    time `now_s`, and fills `out`. Returns out->verdict. */
sb_wh_verdict_t sb_wh_verify (const sb_wh_verifier_t *self, const sb_wh_header_t *headers,
                              size_t header_count, const uint8_t *body, size_t body_len,
                              int64_t now_s, sb_wh_outcome_t *out);

/*  Signs an outbound delivery per Standard Webhooks: `secret` "whsec_…",
    message id, unix timestamp and body → "v1,<base64>" into `signature`
    (`size` bytes; 128 is enough). Returns 0, or -1 on a bad secret. */
int sb_wh_sign_standard (const char *secret, const char *msg_id, int64_t timestamp,
                         const uint8_t *body, size_t body_len, char *signature, size_t size)
    SB_MUST_USE;

#endif
