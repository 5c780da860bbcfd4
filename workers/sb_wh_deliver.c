/*  workers/sb_wh_deliver.c — deliveries out (see sb_wh_deliver.h).

    One s_delivery_t per claimed delivery, in the deliverer's list from
    the claim until its attempt is recorded: QUEUED (waiting for its
    subscription's bucket or in-flight room), SENDING (its curl transfer
    runs), RECORDING (webhook_delivery_record is queued). One s_sub_t per
    subscription seen holds the token bucket and the counts. One reactor
    timer serves both the poll (when to claim) and the pump (when a
    bucket has a token again): it is armed for the sooner. Claims, key
    loads and records are statements of the deliverer's own database
    loop, never of a job. */
#include "sb_wh_deliver.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_curl_loop.h"
#include "sb_db_loop.h"
#include "sb_log.h"
#include "sb_ssrf.h"
#include "sb_wh_keys.h"
#include "sb_wh_verify.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ID        65      /* a subscription ID and its NUL */
#define S_MAX_WHY       512     /* an attempt's error sentence */
#define S_MAX_OWNER     40      /* the lease owner ID */
#define S_RELEASE_MS    1000    /* the blocking release at destroy, at most */

typedef enum { S_QUEUED, S_SENDING, S_RECORDING } s_stage_t;

typedef struct {
    char id [S_MAX_ID];
    double tokens;                  /* the bucket: attempts it may start now */
    int64_t filled_ms;              /* when tokens was last brought up to date */
    int rate_per_s;                 /* the bucket's refill and size */
    int max_in_flight;              /* its limit */
    int in_flight;                  /* SENDING here */
    int held;                       /* claimed here, not yet recorded */
} s_sub_t;

typedef struct _s_delivery_t s_delivery_t;
struct _s_delivery_t {
    s_delivery_t *next;             /* the deliverer's list, in claim order */
    sb_wh_deliver_t *deliver;       /* the deliverer (borrowed) */
    s_stage_t stage;
    int64_t id;                     /* the webhook_deliveries row */
    char tenant [S_MAX_ID];
    char sub_id [S_MAX_ID];
    s_sub_t *sub;                   /* its bucket (in the deliverer's table; kept while held) */
    char *url;
    char *key_id;
    uint8_t *secret_enc;            /* the sealed whsec_ secret */
    size_t secret_enc_len;
    int attempts;                   /* made before this one */
    char *payload;                  /* the body sent */
    size_t payload_len;
    CURL *easy;                     /* the transfer, NULL when none */
    struct curl_slist *headers;
    sb_ssrf_guard_t guard;
    char errbuf [CURL_ERROR_SIZE];
    char excerpt [SB_WH_DELIVER_MAX_EXCERPT + 1];
    size_t excerpt_len;
    size_t response_len;            /* bytes of the response read */
    int64_t started_ms;
};

struct _sb_wh_deliver_t {
    sb_reactor_t *reactor;          /* the worker's loop (borrowed) */
    sb_db_loop_t *db_loop;          /* the deliverer's own connection */
    sb_curl_loop_t *curl;           /* the attempts */
    sb_ssrf_t *ssrf;                /* --webhook-allow-hosts */
    sb_wh_keys_t *keys;             /* the data keys */
    char *conninfo;                 /* for the release at destroy */
    char owner [S_MAX_OWNER];       /* the lease owner ID */
    int delays [SB_WH_DELIVER_MAX_SCHEDULE];
    size_t delay_count;
    int timeout_ms;
    int disable_after_s;
    int max_in_flight;              /* deliveries held at once */
    int timer;                      /* poll and pump */
    int64_t poll_due_ms;            /* the next claim, -1: none planned */
    int64_t pump_due_ms;            /* a bucket fills, -1: none waits */
    bool claiming;                  /* a claim is queued */
    bool keys_loading;              /* a key load is queued */
    bool keys_loaded;               /* the ring was loaded once */
    bool stopping;                  /* destroy runs: callbacks start nothing */
    int64_t keys_loaded_ms;         /* when */
    s_delivery_t *deliveries;
    int held;                       /* deliveries in the list */
    s_sub_t subs [SB_WH_DELIVER_MAX_SUBS];
    size_t sub_count;
    sb_wh_deliver_stats_t stats;
};

static const char s_claim_sql [] =
    "SELECT id, tenant_id, subscription_id, url, key_id, secret_enc, rate_per_s, max_in_flight,"
    "       attempts, event_id, endpoint_id, connector, event_key, type, received_at, body"
    "  FROM webhook_delivery_claim ($1, $2::int, $3::int, $4::text[])";
static const char s_record_sql [] =
    "SELECT state, attempts, disabled FROM webhook_delivery_record ($1::bigint, $2, $3::int,"
    "       $4::int, $5, $6, $7, $8::int, $9::int)";
static const char s_release_sql [] =
    "SELECT webhook_delivery_release ($1, $2::bigint[])";

static void s_pump (sb_wh_deliver_t *self);
static void s_arm (sb_wh_deliver_t *self);

//  ---------------------------------------------------------------------
//  Options

int
sb_wh_deliver_parse_schedule (const char *text, int *delays, size_t *count, char *error,
                              size_t error_size)
{
    *count = 0;
    const char *p = text? text: "";
    if (!*p) {
        snprintf (error, error_size, "the retry schedule is empty");
        return -1;
    }
    while (true) {
        if (*count == SB_WH_DELIVER_MAX_SCHEDULE) {
            snprintf (error, error_size, "the retry schedule has more than %d attempts",
                      SB_WH_DELIVER_MAX_SCHEDULE);
            return -1;
        }
        long value = 0;
        const char *start = p;
        while (*p >= '0' && *p <= '9' && value <= SB_WH_DELIVER_MAX_DELAY_S)
            value = value * 10 + (*p++ - '0');
        if (p == start || value > SB_WH_DELIVER_MAX_DELAY_S || (*p && *p != ',')) {
            snprintf (error, error_size, "the retry schedule must be seconds (0..%d) separated "
                      "by commas, such as \"0,5,300\"", SB_WH_DELIVER_MAX_DELAY_S);
            return -1;
        }
        if (*count == 0 && value != 0) {
            snprintf (error, error_size, "the retry schedule's first delay must be 0 (a new "
                      "delivery is sent as soon as it is due)");
            return -1;
        }
        delays [(*count)++] = (int) value;
        if (!*p)
            return 0;
        p++;
    }
}

//  ---------------------------------------------------------------------
//  Subscriptions' buckets

//  The subscription's entry with the claimed row's limits, made when new
//  (full bucket; an entry holding no delivery is reused once the table is
//  full). NULL only when the table is full of subscriptions with
//  deliveries held (cannot happen while SB_WH_DELIVER_MAX <
//  SB_WH_DELIVER_MAX_SUBS). An entry holding deliveries stays where it is.
static s_sub_t *
s_sub (sb_wh_deliver_t *self, const char *id, int rate_per_s, int max_in_flight)
{
    s_sub_t *free_slot = NULL;
    for (size_t at = 0; at < self->sub_count; at++) {
        s_sub_t *sub = &self->subs [at];
        if (strcmp (sub->id, id) == 0) {
            sub->rate_per_s = rate_per_s;       //  the row's current limits
            sub->max_in_flight = max_in_flight;
            return sub;
        }
        if (!free_slot && sub->held == 0)
            free_slot = sub;
    }
    if (self->sub_count < SB_WH_DELIVER_MAX_SUBS)
        free_slot = &self->subs [self->sub_count++];
    if (!free_slot)
        return NULL;
    memset (free_slot, 0, sizeof *free_slot);
    snprintf (free_slot->id, sizeof free_slot->id, "%s", id);
    free_slot->rate_per_s = rate_per_s;
    free_slot->max_in_flight = max_in_flight;
    free_slot->tokens = rate_per_s;
    free_slot->filled_ms = sb_clock_mono_ms ();
    return free_slot;
}

static void
s_sub_fill (s_sub_t *sub, int64_t now)
{
    double tokens = sub->tokens + (double) (now - sub->filled_ms) * sub->rate_per_s / 1000.0;
    sub->tokens = tokens > sub->rate_per_s? sub->rate_per_s: tokens;
    sub->filled_ms = now;
}

//  ---------------------------------------------------------------------
//  Deliveries

static void
s_delivery_free (s_delivery_t *delivery)
{
    if (delivery->easy) {
        curl_multi_remove_handle (sb_curl_loop_multi (delivery->deliver->curl), delivery->easy);
        curl_easy_cleanup (delivery->easy);
    }
    curl_slist_free_all (delivery->headers);
    free (delivery->url);
    free (delivery->key_id);
    PQfreemem (delivery->secret_enc);
    free (delivery->payload);
    free (delivery);
}

//  Takes `delivery` out of the list and the counts, and frees it.
static void
s_delivery_end (s_delivery_t *delivery)
{
    sb_wh_deliver_t *self = delivery->deliver;
    for (s_delivery_t **at = &self->deliveries; *at; at = &(*at)->next)
        if (*at == delivery) {
            *at = delivery->next;
            self->held--;
            break;
        }
    if (delivery->sub && delivery->sub->held > 0)
        delivery->sub->held--;
    s_delivery_free (delivery);
}

//  Standard base64 (RFC 4648 §4, padded) of `len` bytes: a new string.
static char *
s_base64 (const uint8_t *data, size_t len)
{
    static const char alphabet [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc ((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) data [i] << 16;
        if (i + 1 < len)
            v |= (uint32_t) data [i + 1] << 8;
        if (i + 2 < len)
            v |= data [i + 2];
        out [o++] = alphabet [(v >> 18) & 63];
        out [o++] = alphabet [(v >> 12) & 63];
        out [o++] = i + 1 < len? alphabet [(v >> 6) & 63]: '=';
        out [o++] = i + 2 < len? alphabet [v & 63]: '=';
    }
    out [o] = 0;
    return out;
}

//  The JSON string of `text` (a new string), or NULL.
static char *
s_json_string (const char *text)
{
    json_t *value = json_string (text? text: "");
    char *out = value? json_dumps (value, JSON_ENCODE_ANY | JSON_COMPACT): NULL;
    json_decref (value);
    return out;
}

//  Builds the delivery's body from the claimed row's event fields: the
//  event's own bytes as "data" when they are JSON (kept byte for byte),
//  else {"body_base64"}. Returns 0 or -1 (out of memory).
static int
s_payload (s_delivery_t *delivery, const char *type, const char *received_at,
           const char *event_id, const char *event_key, const char *endpoint,
           const char *connector, const uint8_t *body, size_t body_len)
{
    int rc = -1;
    char *data = NULL;
    char *strings [5] = { 0 };
    json_error_t error;
    json_t *parsed = body_len? json_loadb ((const char *) body, body_len,
                                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error)
                             : NULL;
    if (parsed && !memchr (body, 0, body_len)) {
        data = malloc (body_len + 1);
        if (data) {
            memcpy (data, body, body_len);
            data [body_len] = 0;
        }
    }
    else {
        char *b64 = s_base64 (body, body_len);
        if (b64) {
            size_t size = strlen (b64) + 32;
            data = malloc (size);
            if (data)
                snprintf (data, size, "{\"body_base64\":\"%s\"}", b64);
            free (b64);
        }
    }
    json_decref (parsed);
    strings [0] = s_json_string (type);
    strings [1] = s_json_string (received_at);
    strings [2] = s_json_string (event_key);
    strings [3] = s_json_string (endpoint);
    strings [4] = s_json_string (connector);
    if (!data || !strings [0] || !strings [1] || !strings [2] || !strings [3] || !strings [4])
        goto out;
    //  event_id is digits (a bigint column)
    size_t size = strlen (data) + strlen (event_id) + 128;
    for (size_t i = 0; i < 5; i++)
        size += strlen (strings [i]);
    delivery->payload = malloc (size);
    if (!delivery->payload)
        goto out;
    int n = snprintf (delivery->payload, size,
                      "{\"type\":%s,\"timestamp\":%s,\"data\":%s,\"event\":{\"id\":%s,\"key\":%s,"
                      "\"endpoint\":%s,\"connector\":%s}}",
                      strings [0], strings [1], data, event_id, strings [2], strings [3], strings [4]);
    if (n < 0 || (size_t) n >= size)
        goto out;
    delivery->payload_len = (size_t) n;
    rc = 0;
out:
    for (size_t i = 0; i < 5; i++)
        free (strings [i]);
    free (data);
    return rc;
}

//  Copies `n` bytes of `in` as valid UTF-8 text without NUL into `out`
//  (`size` bytes with its NUL): a byte that starts no valid sequence
//  becomes '?'.
static void
s_utf8_clean (const char *in, size_t n, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *) in;
    size_t o = 0;
    size_t i = 0;
    while (i < n && o + 1 < size) {
        unsigned char c = p [i];
        size_t len = c < 0x80? 1: (c & 0xe0) == 0xc0? 2: (c & 0xf0) == 0xe0? 3
                   : (c & 0xf8) == 0xf0? 4: 0;
        bool valid = len > 0 && c != 0 && i + len <= n && o + len < size
                  && !(len == 2 && c < 0xc2) && !(len == 4 && c > 0xf4);
        for (size_t k = 1; valid && k < len; k++)
            if ((p [i + k] & 0xc0) != 0x80)
                valid = false;
        if (valid && len == 3) {
            unsigned cp = (c & 0x0fu) << 12 | (p [i + 1] & 0x3fu) << 6 | (p [i + 2] & 0x3fu);
            valid = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
        }
        if (valid && len == 4) {
            unsigned cp = (c & 0x07u) << 18 | (p [i + 1] & 0x3fu) << 12;
            valid = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (!valid) {
            out [o++] = '?';
            i++;
            continue;
        }
        memcpy (out + o, p + i, len);
        o += len;
        i += len;
    }
    out [o] = 0;
}

//  ---------------------------------------------------------------------
//  Recording an attempt

static void
s_on_recorded (const PGresult *res, const char *error, void *arg)
{
    s_delivery_t *delivery = arg;
    sb_wh_deliver_t *self = delivery->deliver;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK)
        sb_log_warn ("db_error", "recording an attempt of webhook delivery %" PRId64 ": %s "
                     "(its lease runs out, then it is sent again)", delivery->id,
                     error? error: PQresultErrorMessage (res));
    else
    if (PQntuples (res) == 1) {
        const char *state = PQgetvalue (res, 0, 0);
        if (strcmp (state, "dead") == 0) {
            self->stats.dead++;
            sb_log_warn ("webhook_dead", "delivery %" PRId64 " of subscription %s is a dead letter "
                         "after %s attempt(s)", delivery->id, delivery->sub_id, PQgetvalue (res, 0, 1));
        }
        if (strcmp (PQgetvalue (res, 0, 2), "t") == 0) {
            self->stats.disabled++;
            sb_log_warn ("webhook_subscription_disabled", "subscription %s of tenant %s is disabled "
                         "(its disabled_reason says why; its pending deliveries are dead letters; "
                         "the tenant's audit log says so)", delivery->sub_id, delivery->tenant);
        }
    }
    s_delivery_end (delivery);
    if (self->stopping)
        return;
    //  Room again: claim at once
    self->poll_due_ms = sb_clock_mono_ms ();
    s_pump (self);
}

//  Records the attempt that just ended and what follows it.
static void
s_record (s_delivery_t *delivery, long status, const char *error)
{
    sb_wh_deliver_t *self = delivery->deliver;
    int64_t latency = sb_clock_mono_ms () - delivery->started_ms;
    if (latency < 0)
        latency = 0;
    const char *outcome;
    int retry_ms = 0;
    int made = delivery->attempts + 1;
    if (status >= 200 && status < 300) {
        outcome = "delivered";
        self->stats.delivered++;
    }
    else {
        self->stats.failed++;
        if (status == 410)
            outcome = "gone";
        else
        if ((size_t) made >= self->delay_count)
            outcome = "dead";
        else {
            outcome = "retry";
            int64_t delay = (int64_t) self->delays [made] * 1000;
            uint32_t random = 0;
            if (sb_crypto_random (&random, sizeof random))
                random = 0x80000000u;
            //  ± SB_WH_DELIVER_JITTER_PERCENT, uniformly
            double factor = 1.0 + SB_WH_DELIVER_JITTER_PERCENT / 100.0
                                * (2.0 * random / 4294967295.0 - 1.0);
            retry_ms = (int) (delay * factor);
        }
        char what [S_MAX_WHY + 32];
        if (error)
            snprintf (what, sizeof what, "%s (status %ld)", error, status);
        else
            snprintf (what, sizeof what, "HTTP %ld", status);
        sb_log_warn ("webhook_attempt_failed", "delivery %" PRId64 " of subscription %s, attempt %d: "
                     "%s (%s)", delivery->id, delivery->sub_id, made, what, outcome);
    }
    char id [24], status_text [16], latency_text [24], retry_text [16], disable_text [16];
    char excerpt [SB_WH_DELIVER_MAX_EXCERPT + 1];
    s_utf8_clean (delivery->excerpt, delivery->excerpt_len, excerpt, sizeof excerpt);
    snprintf (id, sizeof id, "%" PRId64, delivery->id);
    snprintf (status_text, sizeof status_text, "%ld", status);
    snprintf (latency_text, sizeof latency_text, "%" PRId64, latency);
    snprintf (retry_text, sizeof retry_text, "%d", retry_ms);
    snprintf (disable_text, sizeof disable_text, "%d", self->disable_after_s);
    char error_text [S_MAX_WHY];
    if (error)
        s_utf8_clean (error, strlen (error), error_text, sizeof error_text);
    const char *params [] = {
        id, self->owner, status_text, latency_text, error? error_text: NULL,
        delivery->excerpt_len || status > 0? excerpt: NULL, outcome, retry_text, disable_text
    };
    delivery->stage = S_RECORDING;
    if (sb_db_loop_query (self->db_loop, s_record_sql, 9, params, s_on_recorded, delivery)) {
        sb_log_warn ("db_busy", "cannot record an attempt of webhook delivery %" PRId64
                     ": the database queue is full (its lease runs out, then it is sent again)",
                     delivery->id);
        s_delivery_end (delivery);
    }
}

//  ---------------------------------------------------------------------
//  Attempts

static size_t
s_on_write (char *data, size_t size, size_t nmemb, void *arg)
{
    s_delivery_t *delivery = arg;
    size_t n = size * nmemb;
    if (delivery->excerpt_len < SB_WH_DELIVER_MAX_EXCERPT) {
        size_t take = SB_WH_DELIVER_MAX_EXCERPT - delivery->excerpt_len;
        if (take > n)
            take = n;
        memcpy (delivery->excerpt + delivery->excerpt_len, data, take);
        delivery->excerpt_len += take;
    }
    delivery->response_len += n;
    //  The rest is read and dropped, up to the bound (curl then aborts)
    return delivery->response_len > SB_WH_DELIVER_MAX_RESPONSE? 0: n;
}

static size_t
s_on_header (char *data, size_t size, size_t nmemb, void *arg)
{
    return size * nmemb;
}

static void
s_on_done (CURL *easy, CURLcode code, void *arg)
{
    sb_wh_deliver_t *self = arg;
    s_delivery_t *delivery = NULL;
    curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &delivery);
    curl_multi_remove_handle (sb_curl_loop_multi (self->curl), easy);
    if (!delivery) {
        curl_easy_cleanup (easy);
        return;
    }
    long status = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
    bool refused = sb_ssrf_guard_refused (&delivery->guard, easy);
    char why [S_MAX_WHY] = "";
    if (refused) {
        snprintf (why, sizeof why, "%s", delivery->guard.refused);
        status = 0;
        self->stats.refused++;
    }
    else
    if (code == CURLE_OPERATION_TIMEDOUT && status == 0)
        snprintf (why, sizeof why, "no answer within %d ms", self->timeout_ms);
    else
    if (code != CURLE_OK && status == 0)
        snprintf (why, sizeof why, "%s", delivery->errbuf [0]? delivery->errbuf
                                                             : curl_easy_strerror (code));
    else
    if (code != CURLE_OK && (status < 200 || status >= 300))
        snprintf (why, sizeof why, "the answer was cut: %s",
                  delivery->errbuf [0]? delivery->errbuf: curl_easy_strerror (code));
    curl_easy_cleanup (easy);
    delivery->easy = NULL;
    if (delivery->sub->in_flight > 0)
        delivery->sub->in_flight--;
    s_record (delivery, status, why [0]? why: NULL);
    s_pump (self);
}

//  Opens the secret, signs and starts the transfer of `delivery`.
//  Returns 0, or -1 with `why` filled (the attempt then failed).
static int
s_send (sb_wh_deliver_t *self, s_delivery_t *delivery, char *why, size_t why_size)
{
    char owner [S_MAX_ID + 16];
    snprintf (owner, sizeof owner, "subscription:%s", delivery->sub_id);
    size_t secret_len = 0;
    char *secret = sb_wh_keys_open (self->keys, delivery->key_id, delivery->tenant, owner, "secret",
                                    delivery->secret_enc, delivery->secret_enc_len, &secret_len);
    if (!secret) {
        snprintf (why, why_size, "the subscription's secret does not open (data key %.64s %s)",
                  delivery->key_id, sb_wh_keys_has (self->keys, delivery->key_id)? "does not fit"
                                                                                  : "is unknown");
        return -1;
    }
    char msg_id [32], signature [256];
    snprintf (msg_id, sizeof msg_id, "msg_%" PRId64, delivery->id);
    int64_t now_s = sb_clock_wall_ms () / 1000;
    int rc = sb_wh_sign_standard (secret, msg_id, now_s, (const uint8_t *) delivery->payload,
                                  delivery->payload_len, signature, sizeof signature);
    sb_crypto_wipe (secret, secret_len);
    free (secret);
    if (rc) {
        snprintf (why, why_size, "the subscription's secret is not a whsec_ secret");
        return -1;
    }
    char line [320];
    const char *lines [] = { "Content-Type: application/json", "User-Agent: switchboard-webhooks/1",
                             "Expect:", NULL, NULL, NULL };
    struct curl_slist *headers = NULL;
    for (size_t at = 0; at < 3; at++)
        headers = curl_slist_append (headers, lines [at]);
    snprintf (line, sizeof line, "webhook-id: %s", msg_id);
    headers = headers? curl_slist_append (headers, line): NULL;
    snprintf (line, sizeof line, "webhook-timestamp: %" PRId64, now_s);
    headers = headers? curl_slist_append (headers, line): NULL;
    snprintf (line, sizeof line, "webhook-signature: %s", signature);
    headers = headers? curl_slist_append (headers, line): NULL;
    CURL *easy = headers? curl_easy_init (): NULL;
    if (!easy) {
        curl_slist_free_all (headers);
        snprintf (why, why_size, "out of memory");
        return -1;
    }
    delivery->headers = headers;
    sb_curl_easy_defaults (easy, delivery->url, "http,https", headers,
                           (curl_off_t) SB_WH_DELIVER_MAX_RESPONSE, s_on_write, s_on_header, delivery,
                           delivery->errbuf);
    sb_ssrf_guard_easy (self->ssrf, &delivery->guard, easy);
    curl_easy_setopt (easy, CURLOPT_POST, 1L);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, delivery->payload);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) delivery->payload_len);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) self->timeout_ms);
    if (curl_multi_add_handle (sb_curl_loop_multi (self->curl), easy) != CURLM_OK) {
        curl_easy_cleanup (easy);
        snprintf (why, why_size, "the transfer could not start");
        return -1;
    }
    delivery->easy = easy;
    return 0;
}

//  Starts every queued delivery whose subscription has a token and room;
//  plans the timer for the next token a waiting one needs.
static void
s_pump (sb_wh_deliver_t *self)
{
    int64_t now = sb_clock_mono_ms ();
    self->pump_due_ms = -1;
    s_delivery_t *delivery = self->deliveries;
    while (delivery) {
        s_delivery_t *next = delivery->next;
        if (delivery->stage != S_QUEUED) {
            delivery = next;
            continue;
        }
        s_sub_t *sub = delivery->sub;
        s_sub_fill (sub, now);
        if (sub->in_flight >= sub->max_in_flight) {
            delivery = next;            //  an attempt's end pumps again
            continue;
        }
        if (sub->tokens < 1.0) {
            int64_t wait = (int64_t) ((1.0 - sub->tokens) * 1000.0 / sub->rate_per_s) + 1;
            if (self->pump_due_ms < 0 || now + wait < self->pump_due_ms)
                self->pump_due_ms = now + wait;
            delivery = next;
            continue;
        }
        sub->tokens -= 1.0;
        sub->in_flight++;
        delivery->stage = S_SENDING;
        delivery->started_ms = now;
        self->stats.attempts++;
        char why [S_MAX_WHY];
        if (s_send (self, delivery, why, sizeof why)) {
            sub->in_flight--;
            s_record (delivery, 0, why);
        }
        delivery = next;
    }
    s_arm (self);
}

//  ---------------------------------------------------------------------
//  Claims and keys

static void s_claim (sb_wh_deliver_t *self);

static void
s_on_keys (const PGresult *res, const char *error, void *arg)
{
    sb_wh_deliver_t *self = arg;
    self->keys_loading = false;
    if (self->stopping)
        return;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK)
        sb_log_warn ("db_error", "webhook deliverer: reading the data keys: %s",
                     error? error: PQresultErrorMessage (res));
    else
    if (sb_wh_keys_load (self->keys, res) < 0)
        sb_log_error ("keys_unopened", "webhook deliverer: a data key does not open with this "
                      "master secret (--secret-key-file is not the token role's)");
    else {
        self->keys_loaded = true;
        self->keys_loaded_ms = sb_clock_mono_ms ();
    }
    self->poll_due_ms = sb_clock_mono_ms () + (self->keys_loaded? 0: SB_WH_DELIVER_POLL_MS);
    s_pump (self);                      //  deliveries that waited for a key
}

static void
s_load_keys (sb_wh_deliver_t *self)
{
    if (self->keys_loading)
        return;
    if (sb_db_loop_query (self->db_loop, SB_WH_KEYS_SQL, 0, NULL, s_on_keys, self) == 0)
        self->keys_loading = true;
}

//  A text cell of the claim's row (NULL when null).
static const char *
s_cell (const PGresult *res, int row, int column)
{
    return PQgetisnull (res, row, column)? NULL: PQgetvalue (res, row, column);
}

//  Makes a queued delivery of row `row` of a claim. NULL when out of
//  memory (its lease then runs out).
static s_delivery_t *
s_delivery_new (sb_wh_deliver_t *self, const PGresult *res, int row)
{
    s_delivery_t *delivery = calloc (1, sizeof *delivery);
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (!delivery)
        return NULL;
    delivery->deliver = self;
    delivery->stage = S_QUEUED;
    delivery->id = strtoll (s_cell (res, row, 0), NULL, 10);
    snprintf (delivery->tenant, sizeof delivery->tenant, "%s", s_cell (res, row, 1));
    snprintf (delivery->sub_id, sizeof delivery->sub_id, "%s", s_cell (res, row, 2));
    delivery->url = strdup (s_cell (res, row, 3));
    delivery->key_id = strdup (s_cell (res, row, 4));
    delivery->secret_enc = PQunescapeBytea ((const unsigned char *) s_cell (res, row, 5),
                                            &delivery->secret_enc_len);
    delivery->attempts = (int) strtol (s_cell (res, row, 8), NULL, 10);
    body = PQunescapeBytea ((const unsigned char *) s_cell (res, row, 15), &body_len);
    if (!delivery->url || !delivery->key_id || !delivery->secret_enc || !body
    ||  s_payload (delivery, s_cell (res, row, 13), s_cell (res, row, 14), s_cell (res, row, 9),
                   s_cell (res, row, 12), s_cell (res, row, 10), s_cell (res, row, 11),
                   body, body_len)) {
        PQfreemem (body);
        delivery->deliver = self;
        s_delivery_free (delivery);
        return NULL;
    }
    PQfreemem (body);
    return delivery;
}

static void
s_on_claimed (const PGresult *res, const char *error, void *arg)
{
    sb_wh_deliver_t *self = arg;
    self->claiming = false;
    if (self->stopping)
        return;             //  the leases run out
    int64_t now = sb_clock_mono_ms ();
    self->poll_due_ms = now + SB_WH_DELIVER_POLL_MS;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK) {
        sb_log_warn ("db_error", "webhook deliverer: claiming due deliveries: %s",
                     error? error: PQresultErrorMessage (res));
        s_arm (self);
        return;
    }
    int rows = PQntuples (res);
    bool unknown_key = false;
    s_delivery_t **tail = &self->deliveries;
    while (*tail)
        tail = &(*tail)->next;
    for (int row = 0; row < rows; row++) {
        s_delivery_t *delivery = s_delivery_new (self, res, row);
        if (!delivery) {
            sb_log_error ("out_of_memory", "webhook deliverer: a claimed delivery is dropped "
                          "(its lease runs out, then it is sent again)");
            continue;
        }
        s_sub_t *sub = s_sub (self, delivery->sub_id, (int) strtol (s_cell (res, row, 6), NULL, 10),
                              (int) strtol (s_cell (res, row, 7), NULL, 10));
        if (!sub) {
            s_delivery_free (delivery);
            continue;
        }
        delivery->sub = sub;
        sub->held++;
        if (!sb_wh_keys_has (self->keys, delivery->key_id))
            unknown_key = true;
        *tail = delivery;
        tail = &delivery->next;
        self->held++;
        self->stats.claimed++;
    }
    if (unknown_key && !self->keys_loading
    &&  now - self->keys_loaded_ms >= SB_WH_DELIVER_POLL_MS) {
        //  A key made since the last load: load, then send
        s_load_keys (self);
        s_arm (self);
        return;
    }
    if (rows > 0 && self->held < self->max_in_flight)
        self->poll_due_ms = now;        //  there may be more due
    s_pump (self);
}

//  True when `id` is one of the array literal `list`'s elements ("{a,b").
static bool
s_listed (const char *list, const char *id)
{
    size_t n = strlen (id);
    for (const char *p = list + 1; *p; ) {
        size_t len = strcspn (p, ",}");
        if (len == n && memcmp (p, id, n) == 0)
            return true;
        p += len;
        if (*p)
            p++;
    }
    return false;
}

static void
s_claim (sb_wh_deliver_t *self)
{
    if (self->claiming || self->keys_loading || self->held >= self->max_in_flight)
        return;
    int64_t now = sb_clock_mono_ms ();
    if (!self->keys_loaded || now - self->keys_loaded_ms >= SB_WH_KEYS_CHECK_MS) {
        s_load_keys (self);
        if (!self->keys_loaded)
            return;
    }
    //  Subscriptions with deliveries still queued here are skipped: their
    //  buckets are spent
    size_t size = 3;
    for (size_t at = 0; at < self->sub_count; at++)
        size += strlen (self->subs [at].id) + 1;
    char *skip = malloc (size);
    if (!skip)
        return;
    size_t used = 0;
    skip [used++] = '{';
    skip [used] = 0;
    for (s_delivery_t *delivery = self->deliveries; delivery; delivery = delivery->next) {
        if (delivery->stage != S_QUEUED || s_listed (skip, delivery->sub_id))
            continue;
        size_t n = strlen (delivery->sub_id);
        if (used + n + 3 > size)        //  a comma, the ID, '}' and the NUL
            break;
        if (used > 1)
            skip [used++] = ',';
        memcpy (skip + used, delivery->sub_id, n);
        used += n;
        skip [used] = 0;
    }
    skip [used++] = '}';
    skip [used] = 0;
    char limit [16], lease [16];
    snprintf (limit, sizeof limit, "%d", self->max_in_flight - self->held);
    snprintf (lease, sizeof lease, "%d", self->timeout_ms + SB_WH_DELIVER_LEASE_MARGIN_MS);
    const char *params [] = { self->owner, limit, lease, skip };
    if (sb_db_loop_query (self->db_loop, s_claim_sql, 4, params, s_on_claimed, self) == 0)
        self->claiming = true;
    free (skip);
}

static void
s_on_timer (sb_reactor_t *reactor, void *arg)
{
    sb_wh_deliver_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    if (self->pump_due_ms >= 0 && self->pump_due_ms <= now)
        s_pump (self);
    if (self->poll_due_ms >= 0 && self->poll_due_ms <= now) {
        self->poll_due_ms = now + SB_WH_DELIVER_POLL_MS;
        s_claim (self);
    }
    s_arm (self);
}

static void
s_arm (sb_wh_deliver_t *self)
{
    int64_t due = self->poll_due_ms;
    if (self->claiming || self->keys_loading)
        due = -1;                       //  the answer plans the next
    if (self->pump_due_ms >= 0 && (due < 0 || self->pump_due_ms < due))
        due = self->pump_due_ms;
    sb_reactor_timer_set (self->reactor, self->timer, due);
}

//  ---------------------------------------------------------------------
//  The deliverer

sb_wh_deliver_t *
sb_wh_deliver_new (sb_reactor_t *reactor, const sb_wh_deliver_config_t *config)
{
    sb_wh_deliver_t *self = calloc (1, sizeof (sb_wh_deliver_t));
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->timer = -1;
    char error [256];
    if (sb_wh_deliver_parse_schedule (config->retry_schedule? config->retry_schedule
                                                            : SB_WH_DELIVER_SCHEDULE,
                                      self->delays, &self->delay_count, error, sizeof error)) {
        sb_log_error ("config_invalid", "--webhook-retry-schedule: %s", error);
        goto fail;
    }
    if (config->timeout_ms < 1 || config->timeout_ms > SB_WH_DELIVER_MAX_TIMEOUT_MS
    ||  config->disable_after_s < 1 || config->disable_after_s > SB_WH_DELIVER_MAX_DISABLE_S
    ||  config->max_in_flight < 1 || config->max_in_flight > SB_WH_DELIVER_MAX) {
        sb_log_error ("config_invalid", "webhook deliverer: --webhook-delivery-timeout-ms must be "
                      "1..%d, --webhook-disable-after-s 1..%d, --webhook-deliver-max 1..%d",
                      SB_WH_DELIVER_MAX_TIMEOUT_MS, SB_WH_DELIVER_MAX_DISABLE_S, SB_WH_DELIVER_MAX);
        goto fail;
    }
    if (!config->conninfo || !*config->conninfo) {
        sb_log_error ("config_invalid", "webhook deliverer: --db is required");
        goto fail;
    }
    self->timeout_ms = config->timeout_ms;
    self->disable_after_s = config->disable_after_s;
    self->max_in_flight = config->max_in_flight;
    self->poll_due_ms = sb_clock_mono_ms ();
    self->pump_due_ms = -1;
    uint8_t random [8];
    if (sb_crypto_random (random, sizeof random))
        goto fail;
    char hex [sizeof random * 2 + 1];
    sb_hex_encode (random, sizeof random, hex);
    snprintf (self->owner, sizeof self->owner, "whd-%s", hex);
    self->conninfo = strdup (config->conninfo);
    self->ssrf = sb_ssrf_new (config->allow_hosts, "--webhook-allow-hosts");
    self->keys = sb_wh_keys_new (config->secret, config->secret_len);
    if (!self->conninfo || !self->ssrf)
        goto fail;
    if (!self->keys) {
        sb_log_error ("config_invalid", "webhook deliverer: the master secret must be 32 to 64 bytes");
        goto fail;
    }
    self->db_loop = sb_db_loop_new (reactor, config->conninfo);
    self->curl = sb_curl_loop_new (reactor, s_on_done, self);
    self->timer = sb_reactor_timer_new (reactor, s_on_timer, self);
    if (!self->db_loop || !self->curl || self->timer < 0) {
        sb_log_error ("start_failed", "webhook deliverer: out of memory or reactor timers");
        goto fail;
    }
    s_load_keys (self);
    s_arm (self);
    sb_log_info ("webhook_deliverer_started", "owner %s, %zu attempt(s) per delivery, timeout %d ms, "
                 "at most %d at once", self->owner, self->delay_count, self->timeout_ms,
                 self->max_in_flight);
    return self;
fail:
    sb_wh_deliver_destroy (&self);
    return NULL;
}

//  Lets go of the deliveries claimed and never sent (blocking, bounded).
static void
s_release (sb_wh_deliver_t *self)
{
    size_t count = 0;
    for (s_delivery_t *delivery = self->deliveries; delivery; delivery = delivery->next)
        if (delivery->stage == S_QUEUED)
            count++;
    if (!count || !self->conninfo)
        return;
    char *ids = malloc (count * 21 + 3);
    if (!ids)
        return;
    size_t used = 0;
    ids [used++] = '{';
    for (s_delivery_t *delivery = self->deliveries; delivery; delivery = delivery->next)
        if (delivery->stage == S_QUEUED)
            used += (size_t) snprintf (ids + used, 22, "%s%" PRId64, used > 1? ",": "", delivery->id);
    ids [used++] = '}';
    ids [used] = 0;
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (self->conninfo, S_RELEASE_MS, &error);
    if (conn) {
        const char *params [] = { self->owner, ids };
        PGresult *res = PQexecParams (conn, s_release_sql, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus (res) == PGRES_TUPLES_OK)
            sb_log_info ("webhook_released", "%s delivery(ies) claimed and not sent are due again",
                         PQgetvalue (res, 0, 0));
        PQclear (res);
        PQfinish (conn);
    }
    free (error);
    free (ids);
}

void
sb_wh_deliver_destroy (sb_wh_deliver_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_wh_deliver_t *self = *self_p;
    self->stopping = true;
    s_release (self);
    //  The loop's shutdown answers the statements still queued (claims,
    //  records, key loads), whose callbacks use the deliveries: first
    //  the loop, then the deliveries
    sb_db_loop_destroy (&self->db_loop);
    while (self->deliveries) {
        s_delivery_t *delivery = self->deliveries;
        self->deliveries = delivery->next;
        s_delivery_free (delivery);
    }
    sb_curl_loop_destroy (&self->curl);
    if (self->timer >= 0)
        sb_reactor_timer_free (self->reactor, self->timer);
    sb_wh_keys_destroy (&self->keys);
    sb_ssrf_destroy (&self->ssrf);
    free (self->conninfo);
    free (self);
    *self_p = NULL;
}

void
sb_wh_deliver_stats (const sb_wh_deliver_t *self, sb_wh_deliver_stats_t *stats)
{
    *stats = self->stats;
    stats->held = (uint64_t) self->held;
}

const char *
sb_wh_deliver_owner (const sb_wh_deliver_t *self)
{
    return self->owner;
}
