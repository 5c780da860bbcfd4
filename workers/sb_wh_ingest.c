/*  workers/sb_wh_ingest.c — webhooks in (proto/PROTOCOL.md "Webhooks"):
    a webhook/receive job is read (its data's bounds), its endpoint found
    (the role's cache, sb_webhook_role.c), the request verified with the
    provider's rules (sb_wh_verify.h, wall clock), and its events queued
    for the group commit; events/read serves a tenant's event log.

    Group commit. Verified requests wait in one FIFO queue. A statement —
    one call of webhook_ingest (migration 016) with arrays, which stores
    the new events and their deliveries in one transaction — takes as
    many whole requests from the front as fit in --webhook-batch-max
    events (a request is never split; one larger than that goes alone)
    and SB_WH_MAX_BATCH_BYTES of bodies. A statement goes when the
    connection has none (at the end of the loop turn, so the jobs that
    arrived together go together), or when the queue holds a full batch
    and only one is running (it waits on the connection right behind).
    While one commits, the next fills. Every request of a statement is
    answered once it returns, which is after its COMMIT (sb_db waits for
    the end of the implicit transaction): 2xx with the scheme's reply
    (its events were stored now or before: a duplicate is acknowledged),
    404 when the endpoint was deleted meanwhile, 503 when the statement
    failed — then nothing of it was stored and the provider sends again.
    A job whose deadline passed is only detached: its events still go in
    (storing is idempotent), nobody is answered.

    After a statement that stored new events, the role PUBLISHes
    resource_updated "switchboard://events/{connector}" once per (tenant,
    connector) of those events. */
#include "sb_wh_int.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_http_payload.h"
#include "sb_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_GUARD_MS          20      /* events/read: ended this long before its deadline */
#define S_TOPIC             "resource_updated"
#define S_URI_PREFIX        "switchboard://events/"
#define S_WEBHOOK_TENANT    "_webhook"

static const char s_ingest_sql [] =
    "SELECT ord, state FROM webhook_ingest ($1::text[], $2::text[], $3::text[], "
    "$4::integer[], $5::text[])";
static const char s_read_sql [] =
    "SELECT * FROM webhook_events_read ($1, $2, $3::integer, $4::bigint)";

static const char s_unauthorized [] = "{\"error\":\"unauthorized\"}";
static const char s_not_found [] = "{\"error\":\"not_found\"}";
static const char s_unavailable [] = "{\"error\":\"unavailable\"}";
static const char s_json [] = "application/json";

//  ---------------------------------------------------------------------
//  Answers

void
sb_wh_answer (sb_wh_req_t *req, int status, const char *content_type, const char *body,
              size_t len)
{
    sb_worker_job_t *job = req->job;
    if (!job)
        return;
    req->job = NULL;
    sb_worker_job_set_data (job, NULL);
    sb_http_response_t response = { .status = status };
    int rc = sb_http_response_add_header (&response, "content-type", content_type);
    if (rc == 0)
        rc = sb_http_response_add_header (&response, "cache-control", "no-store");
    if (rc == 0 && status == 503) {
        char seconds [16];
        snprintf (seconds, sizeof seconds, "%d", SB_WH_RETRY_AFTER_S);
        rc = sb_http_response_add_header (&response, "retry-after", seconds);
    }
    if (rc == 0)
        rc = sb_http_response_set_body (&response, body, len);
    char *text = rc? NULL: sb_http_response_encode (&response);
    sb_http_response_clear (&response);
    if (text)
        sb_worker_job_done (&job, SB_STATUS_OK, text);
    else
        sb_worker_job_fail (&job, "the HTTP response could not be encoded");
    free (text);
}

static void
s_answer_json (sb_wh_req_t *req, int status, const char *body)
{
    sb_wh_answer (req, status, s_json, body, strlen (body));
}

static void
s_unavailable_answer (sb_webhook_role_t *self, sb_wh_req_t *req)
{
    if (req->job)
        self->stats.unavailable++;
    s_answer_json (req, 503, s_unavailable);
}

//  The request leaves the role: answered or detached already.
static void
s_release (sb_webhook_role_t *self, sb_wh_req_t **req_p)
{
    self->waiting--;
    sb_wh_req_free (req_p);
}

//  ---------------------------------------------------------------------
//  The job

static bool
s_endpoint_valid (const char *id)
{
    size_t len = strlen (id);
    if (len < SB_WH_MIN_ENDPOINT_ID || len > SB_WH_MAX_ENDPOINT_ID)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", id [i]))
            return false;
    return true;
}

//  Reads the job's data into `req` within the protocol's bounds. Returns
//  NULL, or a sentence saying what is wrong.
static const char *
s_parse (sb_wh_req_t *req, const char *text)
{
    json_error_t error;
    req->data = text? json_loads (text, JSON_REJECT_DUPLICATES, &error): NULL;
    if (!json_is_object (req->data))
        return "the job's data is not a JSON object";
    const char *endpoint = json_string_value (json_object_get (req->data, "endpoint"));
    if (!endpoint)
        return "the job's data names no endpoint";
    //  An ID of the wrong shape is an unknown endpoint: kept "" here.
    if (s_endpoint_valid (endpoint))
        snprintf (req->endpoint, sizeof req->endpoint, "%s", endpoint);
    json_t *headers = json_object_get (req->data, "headers");
    if (headers && !json_is_array (headers))
        return "the job's headers are not an array";
    size_t count = json_array_size (headers);
    if (count > SB_MAX_WEBHOOK_HEADERS)
        return "the job carries more headers than SB_MAX_WEBHOOK_HEADERS";
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *pair = json_array_get (headers, i);
        json_t *name = json_array_get (pair, 0);
        json_t *value = json_array_get (pair, 1);
        if (!json_is_array (pair) || json_array_size (pair) != 2
        ||  !json_is_string (name) || !json_is_string (value))
            return "a header is not a [name, value] pair of strings";
        const char *name_text = json_string_value (name);
        const char *value_text = json_string_value (value);
        size_t name_len = json_string_length (name), value_len = json_string_length (value);
        if (name_len == 0 || strlen (name_text) != name_len || strlen (value_text) != value_len)
            return "a header name is empty or a header holds a NUL";
        for (size_t c = 0; c < name_len; c++)
            if (name_text [c] >= 'A' && name_text [c] <= 'Z')
                return "a header name is not lowercased";
        bytes += name_len + value_len;
        if (bytes > SB_MAX_WEBHOOK_HEADER_BYTES)
            return "the job's headers pass SB_MAX_WEBHOOK_HEADER_BYTES";
        req->headers [i] = (sb_wh_header_t) { name_text, value_text };
    }
    req->header_count = count;
    return NULL;
}

void
sb_wh_ingest_receive (sb_webhook_role_t *self, sb_worker_job_t *job)
{
    self->stats.received++;
    sb_wh_req_t *req = calloc (1, sizeof *req);
    if (!req) {
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    req->role = self;
    req->job = job;
    sb_worker_job_set_data (job, req);
    self->waiting++;
    const sb_job_t *spec = sb_worker_job_spec (job);
    const char *why = s_parse (req, spec->data);
    if (why) {
        self->stats.refused_malformed++;
        sb_log_warn ("webhook_job_malformed", "webhook/receive: %s", why);
        req->job = NULL;
        sb_worker_job_set_data (job, NULL);
        sb_worker_job_fail (&job, why);
        s_release (self, &req);
        return;
    }
    if (!*req->endpoint) {
        self->stats.refused_unknown++;
        sb_log_info ("webhook_refused", "404: the endpoint ID is malformed");
        s_answer_json (req, 404, s_not_found);
        s_release (self, &req);
        return;
    }
    if (!self->db_loop || self->waiting > SB_WH_MAX_WAITING) {
        sb_log_warn ("webhook_unavailable", "endpoint %s: %s", req->endpoint,
                     self->db_loop? "too many webhooks wait for the database": "no --db");
        s_unavailable_answer (self, req);
        s_release (self, &req);
        return;
    }
    if (spec->body_len > SB_MAX_JOB_BODY || (spec->body_len && !spec->body)) {
        self->stats.refused_malformed++;
        req->job = NULL;
        sb_worker_job_set_data (job, NULL);
        sb_worker_job_fail (&job, "the job's body is larger than SB_MAX_JOB_BODY");
        s_release (self, &req);
        return;
    }
    sb_wh_endpoint_lookup (self, req);
}

//  Keeps what the statement and the answer need of a verified outcome:
//  its events (checked: a key of 1..SB_WH_MAX_EVENT_KEY bytes, UTF-8
//  keys and types) and its reply. Returns NULL, or a sentence for a 400;
//  sets *oom when memory ran out.
static const char *
s_take_outcome (sb_wh_req_t *req, const sb_wh_outcome_t *out, bool *oom)
{
    size_t bytes = 0;
    if (out->event_count == 0 || out->event_count > SB_WH_MAX_EVENTS)
        return "the request carries no event";
    for (size_t i = 0; i < out->event_count; i++) {
        const sb_wh_event_t *event = &out->events [i];
        size_t key_len = strnlen (event->key, sizeof event->key);
        size_t type_len = strnlen (event->type, sizeof event->type);
        if (key_len == 0 || key_len > SB_WH_MAX_EVENT_KEY || type_len > SB_WH_MAX_EVENT_TYPE)
            return "an event's ID is empty or too long";
        json_t *check = json_stringn (event->key, key_len);
        json_t *check_type = json_stringn (event->type, type_len);
        bool valid = check && check_type;
        json_decref (check);
        json_decref (check_type);
        if (!valid)
            return "an event's ID or type is not UTF-8 text";
        bytes += key_len + type_len + 2;
    }
    size_t head = out->event_count * sizeof (sb_wh_req_event_t);
    req->events = malloc (head + bytes);
    req->reply = strdup (out->reply);
    req->reply_type = strdup (*out->reply_type? out->reply_type: s_json);
    if (!req->events || !req->reply || !req->reply_type) {
        *oom = true;
        return "out of memory";
    }
    char *text = (char *) req->events + head;
    for (size_t i = 0; i < out->event_count; i++) {
        size_t key_len = strlen (out->events [i].key) + 1;
        size_t type_len = strlen (out->events [i].type) + 1;
        memcpy (text, out->events [i].key, key_len);
        req->events [i].key = text;
        text += key_len;
        memcpy (text, out->events [i].type, type_len);
        req->events [i].type = text;
        text += type_len;
    }
    req->event_count = out->event_count;
    return NULL;
}

void
sb_wh_ingest_endpoint_ready (sb_webhook_role_t *self, sb_wh_req_t *req,
                             const sb_wh_endpoint_t *endpoint, bool unavailable)
{
    if (!req->job) {
        //  Abandoned while its endpoint was read: nothing was verified.
        s_release (self, &req);
        return;
    }
    if (unavailable) {
        s_unavailable_answer (self, req);
        s_release (self, &req);
        return;
    }
    if (!endpoint->found || !endpoint->enabled) {
        self->stats.refused_unknown++;
        sb_log_info ("webhook_refused", "404: endpoint %s is %s", req->endpoint,
                     endpoint->found? "disabled": "unknown");
        s_answer_json (req, 404, s_not_found);
        s_release (self, &req);
        return;
    }
    const sb_job_t *spec = sb_worker_job_spec (req->job);
    sb_wh_outcome_t *out = &self->outcome;
    sb_wh_verdict_t verdict = sb_wh_verify (endpoint->verifier, req->headers, req->header_count,
                                            spec->body, spec->body_len,
                                            sb_clock_wall_ms () / 1000, out);
    if (verdict == SB_WH_REFUSED) {
        self->stats.refused_unverified++;
        sb_log_info ("webhook_refused", "401: endpoint %s (tenant %s, %s): %s", req->endpoint,
                     endpoint->tenant, endpoint->connector, out->reason);
        s_answer_json (req, 401, s_unauthorized);
        s_release (self, &req);
        return;
    }
    bool oom = false;
    const char *why = verdict == SB_WH_BAD_REQUEST? out->reason:
                      verdict == SB_WH_OK? s_take_outcome (req, out, &oom): NULL;
    if (verdict == SB_WH_CHALLENGE) {
        self->stats.challenges++;
        sb_wh_answer (req, 200, *out->reply_type? out->reply_type: s_json, out->reply,
                      strlen (out->reply));
        s_release (self, &req);
        return;
    }
    if (why && oom) {
        s_unavailable_answer (self, req);
        s_release (self, &req);
        return;
    }
    if (why) {
        self->stats.refused_unreadable++;
        sb_log_info ("webhook_refused", "400: endpoint %s (tenant %s, %s): %s", req->endpoint,
                     endpoint->tenant, endpoint->connector, why);
        json_t *body = json_pack ("{s:s, s:s}", "error", "bad_request", "message", why);
        char *text = body? json_dumps (body, JSON_COMPACT): NULL;
        json_decref (body);
        if (text)
            s_answer_json (req, 400, text);
        else
            s_unavailable_answer (self, req);
        free (text);
        s_release (self, &req);
        return;
    }
    //  Verified: the body goes with the request (its job may end first).
    if (self->queue_bytes + spec->body_len > SB_WH_MAX_QUEUE_BYTES) {
        sb_log_warn ("webhook_unavailable", "endpoint %s: %u bytes of webhooks already wait "
                     "for the database", req->endpoint, SB_WH_MAX_QUEUE_BYTES);
        s_unavailable_answer (self, req);
        s_release (self, &req);
        return;
    }
    req->body = malloc (spec->body_len + 1);
    if (!req->body) {
        s_unavailable_answer (self, req);
        s_release (self, &req);
        return;
    }
    if (spec->body_len)
        memcpy (req->body, spec->body, spec->body_len);
    req->body_len = spec->body_len;
    snprintf (req->tenant, sizeof req->tenant, "%s", endpoint->tenant);
    snprintf (req->connector, sizeof req->connector, "%s", endpoint->connector);
    req->next = NULL;
    *self->queue_tail = req;
    self->queue_tail = &req->next;
    self->queue_events += req->event_count;
    self->queue_bytes += req->body_len;
    //  At the end of this loop turn: the jobs read with this one join it.
    sb_reactor_timer_set (self->reactor, self->flush_timer, sb_clock_mono_ms ());
}

//  ---------------------------------------------------------------------
//  The group commit

typedef struct {
    sb_webhook_role_t *self;
    sb_wh_req_t *reqs;                  /* in queue order */
    size_t requests;
    size_t events;
} s_batch_t;

//  A growing text buffer for the statement's array literals.
typedef struct {
    char *data;
    size_t len;
    size_t size;
    bool failed;
} s_buf_t;

static char *
s_buf_room (s_buf_t *buf, size_t more)
{
    if (buf->failed)
        return NULL;
    if (buf->len + more + 1 > buf->size) {
        size_t size = buf->size? buf->size: 256;
        while (size < buf->len + more + 1)
            size *= 2;
        char *data = realloc (buf->data, size);
        if (!data) {
            buf->failed = true;
            return NULL;
        }
        buf->data = data;
        buf->size = size;
    }
    return buf->data + buf->len;
}

static void
s_buf_add (s_buf_t *buf, const char *text, size_t len)
{
    char *at = s_buf_room (buf, len);
    if (at) {
        memcpy (at, text, len);
        buf->len += len;
        buf->data [buf->len] = '\0';
    }
}

//  An element of a text[] literal: quoted, '"' and '\' escaped; `first`
//  opens the literal, else a comma separates.
static void
s_buf_element (s_buf_t *buf, const char *text, bool first)
{
    s_buf_add (buf, first? "{\"": ",\"", 2);
    for (const char *run = text; *run; ) {
        size_t plain = strcspn (run, "\"\\");
        s_buf_add (buf, run, plain);
        run += plain;
        if (*run) {
            char escaped [2] = { '\\', *run++ };
            s_buf_add (buf, escaped, 2);
        }
    }
    s_buf_add (buf, "\"", 1);
}

static void
s_buf_hex_element (s_buf_t *buf, const uint8_t *data, size_t len, bool first)
{
    s_buf_add (buf, first? "{\"": ",\"", 2);
    char *at = s_buf_room (buf, 2 * len);
    if (at) {
        sb_hex_encode (data, len, at);
        buf->len += 2 * len;
    }
    s_buf_add (buf, "\"", 1);
}

static void
s_buf_close (s_buf_t *buf, bool empty)
{
    s_buf_add (buf, empty? "{}": "}", empty? 2: 1);
}

//  The batch leaves the role: its requests freed (answered or detached).
static void
s_batch_free (s_batch_t **batch_p)
{
    s_batch_t *batch = *batch_p;
    while (batch->reqs) {
        sb_wh_req_t *req = batch->reqs;
        batch->reqs = req->next;
        s_release (batch->self, &req);
    }
    free (batch);
    *batch_p = NULL;
}

static void
s_batch_unavailable (s_batch_t **batch_p)
{
    s_batch_t *batch = *batch_p;
    for (sb_wh_req_t *req = batch->reqs; req; req = req->next)
        s_unavailable_answer (batch->self, req);
    s_batch_free (batch_p);
}

static void
s_count_batch (sb_wh_stats_t *stats, const s_batch_t *batch)
{
    stats->batches++;
    stats->batch_events += batch->events;
    stats->batch_requests += batch->requests;
    if (batch->events > stats->batch_max)
        stats->batch_max = batch->events;
    size_t bucket = 0;
    for (size_t n = batch->events; n > 1 && bucket + 1 < sizeof stats->batch_hist /
                                                        sizeof stats->batch_hist [0]; n /= 2)
        bucket++;
    stats->batch_hist [bucket]++;
}

//  One resource_updated per (tenant, connector) of the requests in
//  `batch` that stored new events (`fresh` marks them).
static void
s_publish (sb_webhook_role_t *self, const s_batch_t *batch, const bool *fresh)
{
    size_t index = 0;
    for (const sb_wh_req_t *req = batch->reqs; req; req = req->next, index++) {
        if (!fresh [index])
            continue;
        //  Told already for an earlier request of the batch?
        bool told = false;
        size_t before = 0;
        for (const sb_wh_req_t *other = batch->reqs; other != req && !told;
             other = other->next, before++)
            told = fresh [before] && strcmp (other->tenant, req->tenant) == 0
                && strcmp (other->connector, req->connector) == 0;
        if (told)
            continue;
        char uri [sizeof S_URI_PREFIX + SB_WH_MAX_CONNECTOR];
        int len = snprintf (uri, sizeof uri, "%s%s", S_URI_PREFIX, req->connector);
        if (sb_worker_publish (self->worker, req->tenant, S_TOPIC, uri, (size_t) len) == 0)
            self->stats.published++;
        else {
            self->stats.publish_failed++;
            sb_log_warn ("webhook_publish_failed", "resource_updated %s for tenant %s could "
                         "not be sent (no broker now)", uri, req->tenant);
        }
    }
}

static void
s_on_commit (const PGresult *res, const char *error, void *arg)
{
    s_batch_t *batch = arg;
    sb_webhook_role_t *self = batch->self;
    if (self->closing) {
        s_batch_free (&batch);              //  the jobs are the worker's: unanswered
        return;
    }
    self->statements--;
    int rows = res? PQntuples (res): 0;
    if (error || !res || PQnfields (res) != 2 || (size_t) rows != batch->events) {
        sb_log_warn ("webhook_commit_failed", "%zu events of %zu webhooks not stored: %s",
                     batch->events, batch->requests, error? error: "unexpected answer");
        s_batch_unavailable (&batch);
        sb_wh_ingest_flush (self);
        return;
    }
    s_count_batch (&self->stats, batch);
    bool *fresh = calloc (batch->requests, sizeof *fresh);
    int row = 0;
    size_t index = 0;
    for (sb_wh_req_t *req = batch->reqs; req; req = req->next, index++) {
        size_t stored = 0;
        for (size_t i = 0; i < req->event_count; i++, row++) {
            const char *state = PQgetvalue (res, row, 1);
            if (strcmp (state, "new") == 0)
                stored++;
            else
            if (strcmp (state, "gone") == 0)
                req->gone = true;
        }
        self->stats.stored += stored;
        self->stats.duplicates += req->event_count - stored - (req->gone? req->event_count: 0);
        if (fresh)
            fresh [index] = stored > 0;
        if (req->gone) {
            if (req->job)
                self->stats.refused_unknown++;
            sb_log_info ("webhook_refused", "404: endpoint %s was deleted before its events "
                         "were stored", req->endpoint);
            s_answer_json (req, 404, s_not_found);
        }
        else
            sb_wh_answer (req, 200, req->reply_type, req->reply, strlen (req->reply));
    }
    if (fresh)
        s_publish (self, batch, fresh);
    else
        sb_log_warn ("webhook_publish_failed", "out of memory: no resource_updated sent");
    free (fresh);
    s_batch_free (&batch);
    sb_wh_ingest_flush (self);
}

//  Takes the requests of the next batch from the queue and sends its
//  statement. Returns 0, or -1 when it could not be sent (its requests
//  answered 503).
static int
s_send_batch (sb_webhook_role_t *self)
{
    s_batch_t *batch = calloc (1, sizeof *batch);
    if (!batch)
        return -1;
    batch->self = self;
    sb_wh_req_t **tail = &batch->reqs;
    size_t bytes = 0;
    while (self->queue) {
        sb_wh_req_t *req = self->queue;
        if (batch->requests > 0
        &&  (batch->events + req->event_count > (size_t) self->batch_max
        ||   bytes + req->body_len > SB_WH_MAX_BATCH_BYTES))
            break;
        self->queue = req->next;
        if (!self->queue)
            self->queue_tail = &self->queue;
        self->queue_events -= req->event_count;
        self->queue_bytes -= req->body_len;
        req->next = NULL;
        *tail = req;
        tail = &req->next;
        batch->requests++;
        batch->events += req->event_count;
        bytes += req->body_len;
    }
    s_buf_t endpoints = { 0 }, keys = { 0 }, types = { 0 }, indexes = { 0 }, bodies = { 0 };
    size_t number = 0;
    bool first = true;
    for (sb_wh_req_t *req = batch->reqs; req; req = req->next) {
        number++;
        s_buf_hex_element (&bodies, req->body, req->body_len, number == 1);
        char index [24];
        for (size_t i = 0; i < req->event_count; i++, first = false) {
            s_buf_element (&endpoints, req->endpoint, first);
            s_buf_element (&keys, req->events [i].key, first);
            s_buf_element (&types, req->events [i].type, first);
            int len = snprintf (index, sizeof index, "%s%zu", first? "{": ",", number);
            s_buf_add (&indexes, index, (size_t) len);
        }
        //  The body is in the statement now.
        free (req->body);
        req->body = NULL;
    }
    s_buf_close (&endpoints, first);
    s_buf_close (&keys, first);
    s_buf_close (&types, first);
    s_buf_close (&indexes, first);
    s_buf_close (&bodies, number == 0);
    int rc = -1;
    if (!endpoints.failed && !keys.failed && !types.failed && !indexes.failed && !bodies.failed) {
        const char *params [] = { endpoints.data, keys.data, types.data, indexes.data,
                                  bodies.data };
        rc = sb_db_loop_query (self->db_loop, s_ingest_sql, 5, params, s_on_commit, batch);
        if (rc)
            sb_log_warn ("db_busy", "webhooks: the database queue is full");
    }
    free (endpoints.data);
    free (keys.data);
    free (types.data);
    free (indexes.data);
    free (bodies.data);
    if (rc) {
        s_batch_unavailable (&batch);
        return -1;
    }
    self->statements++;
    return 0;
}

void
sb_wh_ingest_flush (sb_webhook_role_t *self)
{
    while (self->queue && !self->closing && self->statements < SB_WH_MAX_STATEMENTS
    &&     (self->statements == 0 || self->queue_events >= (size_t) self->batch_max))
        if (s_send_batch (self))
            break;
}

//  ---------------------------------------------------------------------
//  events/read

static bool
s_connector_valid (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > SB_WH_MAX_CONNECTOR)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-", name [i]))
            return false;
    return true;
}

//  An event's body (unpadded base64url from the database) as "body" when
//  it is UTF-8 text, else standard base64 as "body_base64".
static int
s_event_body (json_t *event, const char *b64url)
{
    size_t len = strlen (b64url);
    uint8_t *raw = malloc (len * 3 / 4 + 3);
    size_t raw_len = 0;
    if (!raw || sb_base64url_decode (b64url, len, raw, len * 3 / 4 + 3, &raw_len)) {
        free (raw);
        return -1;
    }
    json_t *text = json_stringn ((const char *) raw, raw_len);
    free (raw);
    if (text)
        return json_object_set_new (event, "body", text);
    char *std = malloc (len + 4);
    if (!std)
        return -1;
    for (size_t i = 0; i < len; i++)
        std [i] = b64url [i] == '-'? '+': b64url [i] == '_'? '/': b64url [i];
    size_t std_len = len;
    while (std_len % 4)
        std [std_len++] = '=';
    std [std_len] = '\0';
    int rc = json_object_set_new (event, "body_base64", json_string (std));
    free (std);
    return rc;
}

static void
s_on_read (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    if (error || !res || PQnfields (res) != 5) {
        sb_log_warn ("db_error", "events/read: %s", error? error: "unexpected answer");
        sb_worker_job_fail (job_p, "the event log is unavailable");
        return;
    }
    //  {"events":[ e1, e2 … ]} within SB_MAX_JSON_SIZE: events that would
    //  pass it are left out (the oldest).
    s_buf_t out = { 0 };
    s_buf_add (&out, "{\"events\":[", 11);
    int rows = PQntuples (res);
    for (int row = 0; row < rows && !out.failed; row++) {
        json_t *event = json_pack ("{s:s, s:s, s:s, s:s}", "id", PQgetvalue (res, row, 0),
                                   "type", PQgetvalue (res, row, 1),
                                   "endpoint", PQgetvalue (res, row, 2),
                                   "received_at", PQgetvalue (res, row, 3));
        char *text = event && s_event_body (event, PQgetvalue (res, row, 4)) == 0?
                     json_dumps (event, JSON_COMPACT): NULL;
        json_decref (event);
        if (!text) {
            out.failed = true;
            break;
        }
        size_t len = strlen (text);
        if (out.len + len + 3 > SB_MAX_JSON_SIZE) {
            free (text);
            break;
        }
        if (row > 0)
            s_buf_add (&out, ",", 1);
        s_buf_add (&out, text, len);
        free (text);
    }
    s_buf_add (&out, "]}", 2);
    if (out.failed)
        sb_worker_job_fail (job_p, "out of memory");
    else
        sb_worker_job_done (job_p, SB_STATUS_OK, out.data);
    free (out.data);
}

static void
s_on_read_give_up (sb_worker_job_t **job_p, void *arg)
{
    sb_log_warn ("db_unavailable", "events/read: no answer from the database in time");
    sb_worker_job_fail (job_p, "the event log is unavailable");
}

void
sb_wh_ingest_read (sb_webhook_role_t *self, sb_worker_job_t *job)
{
    self->stats.reads++;
    const char *tenant = sb_worker_job_tenant (job);
    const char *text = sb_worker_job_spec (job)->data;
    json_error_t error;
    json_t *data = text? json_loads (text, JSON_REJECT_DUPLICATES, &error): NULL;
    const char *connector = json_string_value (json_object_get (data, "connector"));
    json_t *limit = json_object_get (data, "limit");
    const char *why = NULL;
    if (!self->db_loop)
        why = "the event log is unavailable (the webhook role has no --db)";
    else
    if (!tenant || !*tenant || strcmp (tenant, S_WEBHOOK_TENANT) == 0)
        why = "events/read needs the caller's tenant";
    else
    if (!json_is_object (data))
        why = "events/read: data must be a JSON object";
    else
    if (!connector || !s_connector_valid (connector))
        why = "events/read: connector must be a connector name";
    else
    if (limit && (!json_is_integer (limit) || json_integer_value (limit) < 1
                  || json_integer_value (limit) > SB_WH_MAX_READ))
        why = "events/read: limit must be an integer from 1 to 100";
    if (why) {
        json_decref (data);
        sb_worker_job_fail (&job, why);
        return;
    }
    char limit_text [24], max_text [24];
    snprintf (limit_text, sizeof limit_text, "%d",
              limit? (int) json_integer_value (limit): SB_WH_DEFAULT_READ);
    snprintf (max_text, sizeof max_text, "%u", (unsigned) SB_MAX_JSON_SIZE / 2);
    const char *params [] = { tenant, connector, limit_text, max_text };
    int64_t left = sb_clock_left_ms (sb_worker_job_deadline (job)) - S_GUARD_MS;
    int rc = sb_db_loop_job_query (self->db_loop, job, sb_clock_mono_ms () + (left > 0? left: 0),
                                   s_read_sql, 4, params, s_on_read, s_on_read_give_up, NULL);
    json_decref (data);
    if (rc)
        sb_worker_job_fail (&job, rc == -1? "out of memory": "the event log is unavailable");
}

void
sb_wh_ingest_abandon (sb_webhook_role_t *self, sb_worker_job_t *job)
{
    const char *op = sb_worker_job_spec (job)->op;
    if (op && strcmp (op, "webhook/receive") == 0) {
        sb_wh_req_t *req = sb_worker_job_data (job);
        if (req) {
            //  It goes on without its job: stored if verified, never answered.
            req->job = NULL;
            sb_worker_job_set_data (job, NULL);
            self->stats.abandoned++;
        }
        return;
    }
    if (self->db_loop)
        sb_db_loop_job_abandon (self->db_loop, job);
}
