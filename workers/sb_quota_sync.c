/*  workers/sb_quota_sync.c — the quota service in the token role (see
    sb_quota_sync.h, proto/PROTOCOL.md "Quotas"): USAGE batches stored and
    acknowledged, LIMITS snapshots on the broker's `want`, and LIMITS
    changes pushed when quota_version () moves.

    A pass (a snapshot, or a push of changes) is a small state machine
    over the role's database loop: quota_version (), the plans, then the
    tenants page by page; each answer sends its part and asks the next
    statement, so one statement of a pass is in flight at a time. The
    rows the SQL answers are checked against the codec's bounds before
    they are encoded: a row that breaks one is logged and left out
    (the database's own checks make that a bug, not a state to stop on). */
#include "sb_quota_sync.h"
#include "sb_clock.h"
#include "sb_log.h"
#include "sb_quota_msg.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert (SB_QUOTA_SYNC_PAGE <= SB_QUOTA_MAX_ENTRIES, "a page of tenants is one LIMITS part");

//  Where a pass is: each step but S_IDLE has its statement in flight.
typedef enum {
    S_IDLE = 0,         //  no pass
    S_VERSION,          //  quota_version ()
    S_PLANS,            //  quota_plans_since (since)
    S_TENANTS           //  quota_tenants_since (since, after, SB_QUOTA_SYNC_PAGE)
} s_step_t;

struct _sb_quota_sync_t {
    sb_worker_t *worker;            /* our worker (borrowed) */
    sb_db_loop_t *db_loop;          /* the role's database loop (borrowed) */
    sb_reactor_t *reactor;          /* the worker's reactor (borrowed) */
    int timer;                      /* the poll, -1: none */
    uint32_t poll_ms;               /* --limits-poll-ms */
    bool stopping;                  /* stopped: statements' answers only release */
    s_step_t step;                  /* the pass in progress, S_IDLE: none */
    bool snapshot;                  /* it is a snapshot (else a push of changes) */
    uint64_t session;               /* the worker's broker session when the pass began */
    int64_t began_ms;               /* when the pass began (sb_clock_mono_ms) */
    char broker [SB_MAX_BROKER_ID_LEN + 1];     /* a snapshot's: the broker that asked */
    int64_t since;                  /* the pass reads what changed after this version */
    int64_t target;                 /* quota_version () when the pass began */
    char after [SB_MAX_TENANT_LEN + 1];         /* the last tenant read, "" before the first */
    size_t plans_sent;              /* this pass: plan entries sent */
    size_t tenants_sent;            /* this pass: tenant entries sent */
    size_t parts_sent;              /* this pass: LIMITS messages sent */
    uint64_t failures;              /* passes failed in a row (the first is a warning) */
    bool want;                      /* a snapshot was asked for and has not begun */
    char want_broker [SB_MAX_BROKER_ID_LEN + 1];    /* the broker that asked */
    int64_t pushed;                 /* limits up to this version went out (0: none yet) */
    uint64_t seq;                   /* the last LIMITS seq sent */
    size_t records;                 /* USAGE batches being stored */
    sb_quota_entry_t *entries;      /* scratch: SB_QUOTA_MAX_ENTRIES LIMITS entries */
    sb_usage_entry_t *usage;        /* scratch: SB_QUOTA_MAX_ENTRIES USAGE entries */
};

//  A USAGE batch being stored: what its acknowledgement needs.
typedef struct {
    sb_quota_sync_t *self;          /* the module */
    uint64_t seq;                   /* the batch's seq */
    size_t count;                   /* its entries, for the log */
} s_record_t;

static void s_pass_begin (sb_quota_sync_t *self, bool snapshot);
static void s_query_tenants (sb_quota_sync_t *self);

//  ---------------------------------------------------------------------
//  Reading rows

//  Column `col` of row `row` as an integer within [min, max]. 0 or -1.
static int
s_number (const PGresult *res, int row, int col, int64_t min, int64_t max, int64_t *value)
{
    if (PQgetisnull (res, row, col))
        return -1;
    const char *text = PQgetvalue (res, row, col);
    char *end = NULL;
    errno = 0;
    long long number = strtoll (text, &end, 10);
    if (errno || end == text || *end || number < min || number > max)
        return -1;
    *value = number;
    return 0;
}

//  Copies column `col` into `dest` (`size` bytes) when it is a plan ID
//  (^[a-z0-9][a-z0-9_-]{0,62}$). 0 or -1.
static int
s_plan_id (const PGresult *res, int row, int col, char *dest, size_t size)
{
    const char *text = PQgetvalue (res, row, col);
    size_t len = strlen (text);
    if (PQgetisnull (res, row, col) || len == 0 || len > SB_MAX_PLAN_LEN || len >= size
    ||  !(islower ((unsigned char) text [0]) || isdigit ((unsigned char) text [0])))
        return -1;
    for (size_t at = 1; at < len; at++) {
        unsigned char c = (unsigned char) text [at];
        if (!islower (c) && !isdigit (c) && c != '_' && c != '-')
            return -1;
    }
    memcpy (dest, text, len + 1);
    return 0;
}

//  Copies column `col` into `dest` when it is a tenant ID (1..64
//  printable ASCII bytes, no space). 0 or -1.
static int
s_tenant_id (const PGresult *res, int row, int col, char *dest, size_t size)
{
    const char *text = PQgetvalue (res, row, col);
    size_t len = strlen (text);
    if (PQgetisnull (res, row, col) || len == 0 || len > SB_MAX_TENANT_LEN || len >= size)
        return -1;
    for (size_t at = 0; at < len; at++)
        if (text [at] <= ' ' || text [at] > '~')
            return -1;
    memcpy (dest, text, len + 1);
    return 0;
}

//  A row of quota_plans_since: id, rate, burst, in_flight, monthly, weight.
static int
s_plan_row (const PGresult *res, int row, sb_quota_entry_t *entry)
{
    memset (entry, 0, sizeof *entry);
    entry->is_plan = true;
    sb_quota_plan_t *plan = &entry->plan;
    int64_t rate, burst, in_flight, monthly, weight;
    if (s_plan_id (res, row, 0, plan->id, sizeof plan->id)
    ||  s_number (res, row, 1, 0, SB_QUOTA_MAX_RATE, &rate)
    ||  s_number (res, row, 2, 0, SB_QUOTA_MAX_BURST, &burst)
    ||  s_number (res, row, 3, 0, SB_QUOTA_MAX_IN_FLIGHT, &in_flight)
    ||  s_number (res, row, 4, 0, (int64_t) SB_MAX_QUOTA_VALUE, &monthly)
    ||  s_number (res, row, 5, 1, SB_QUOTA_MAX_WEIGHT, &weight)
    ||  (rate > 0 && burst < 1))
        return -1;
    plan->rate = (uint32_t) rate;
    plan->burst = (uint32_t) burst;
    plan->in_flight = (uint32_t) in_flight;
    plan->monthly = (uint64_t) monthly;
    plan->weight = (uint32_t) weight;
    return 0;
}

//  A row of quota_tenants_since: id, plan, anchor, period, used.
static int
s_tenant_row (const PGresult *res, int row, sb_quota_entry_t *entry)
{
    memset (entry, 0, sizeof *entry);
    sb_quota_tenant_t *tenant = &entry->tenant;
    int64_t anchor, period, used;
    if (s_tenant_id (res, row, 0, tenant->id, sizeof tenant->id)
    ||  s_plan_id (res, row, 1, tenant->plan, sizeof tenant->plan)
    ||  s_number (res, row, 2, 1, SB_QUOTA_MAX_ANCHOR, &anchor)
    ||  s_number (res, row, 3, 0, INT64_MAX, &period)
    ||  s_number (res, row, 4, 0, (int64_t) SB_MAX_QUOTA_VALUE, &used))
        return -1;
    tenant->anchor = (uint32_t) anchor;
    tenant->period = period;
    tenant->used = (uint64_t) used;
    return 0;
}

//  ---------------------------------------------------------------------
//  Passes: snapshots and pushes

//  Sends `count` entries as one LIMITS part. 0 or -1.
static int
s_send_part (sb_quota_sync_t *self, size_t count, uint32_t snapshot)
{
    if (sb_worker_sessions (self->worker) != self->session) {
        //  Parts sent before went with the old session's socket
        sb_log_warn ("limits_unsent", "the broker session changed: the %s ends",
                     self->snapshot? "snapshot": "push of changes");
        return -1;
    }
    zframe_t *payload = sb_quota_limits_encode (self->entries, count);
    if (!payload) {
        sb_log_error ("limits_unencodable", "%zu entries break the codec's bounds", count);
        return -1;
    }
    if (sb_worker_send_limits (self->worker, self->seq + 1, snapshot, &payload)) {
        sb_log_warn ("limits_unsent", "no connection to the broker: the %s ends",
                     self->snapshot? "snapshot": "push of changes");
        return -1;
    }
    self->seq++;
    self->parts_sent++;
    return 0;
}

//  The pass ends: done, or (`why` not NULL) failed. A want that came
//  meanwhile begins its snapshot.
static void
s_pass_end (sb_quota_sync_t *self, const char *why)
{
    if (why) {
        //  An outage fails every poll: warn once, then at debug level
        sb_log_level_t level = self->failures++? SB_LOG_DEBUG: SB_LOG_WARN;
        sb_log (level, "limits_pass_failed", "%s%s ended after %zu part(s): %s",
                self->snapshot? "the snapshot for broker=": "the push of changes",
                self->snapshot? self->broker: "", self->parts_sent, why);
    }
    else {
        if (self->failures)
            sb_log_info ("limits_pass_recovered", "a pass succeeded after %llu that failed",
                         (unsigned long long) self->failures);
        self->failures = 0;
        if (self->target > self->pushed)
            self->pushed = self->target;
        if (self->snapshot)
            sb_log_info ("limits_snapshot", "sent %zu plan(s) and %zu tenant(s) in %zu part(s) "
                         "to broker=%s in %lld ms (version %lld)", self->plans_sent,
                         self->tenants_sent, self->parts_sent, self->broker,
                         (long long) (sb_clock_mono_ms () - self->began_ms),
                         (long long) self->target);
        else
        if (self->parts_sent)
            sb_log_info ("limits_pushed", "%zu plan(s) and %zu tenant(s) changed, sent in "
                         "%lld ms (version %lld)", self->plans_sent, self->tenants_sent,
                         (long long) (sb_clock_mono_ms () - self->began_ms),
                         (long long) self->target);
    }
    self->step = S_IDLE;
    if (self->want && !self->stopping)
        s_pass_begin (self, true);
}

//  An answer came: when a snapshot was asked for and this pass is not
//  that snapshot, the pass gives way (its statement has been answered, so
//  nothing of it is in flight). Returns true when it did.
static bool
s_give_way (sb_quota_sync_t *self)
{
    if (!self->want)
        return false;
    if (self->snapshot && strcmp (self->broker, self->want_broker) == 0) {
        self->want = false;             //  this one is the snapshot asked for
        return false;
    }
    sb_log_info ("limits_pass_replaced", "the %s gives way to a snapshot for broker=%s",
                 self->snapshot? "snapshot": "push of changes", self->want_broker);
    self->step = S_IDLE;
    s_pass_begin (self, true);
    return true;
}

//  The statement's outcome: true when it answered rows; else the pass ends.
static bool
s_answer_ok (sb_quota_sync_t *self, const PGresult *res, const char *error, const char *what)
{
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK)
        return true;
    char why [256];
    snprintf (why, sizeof why, "%s: %s", what, error? error: PQresultErrorMessage (res));
    why [strcspn (why, "\r\n")] = 0;
    s_pass_end (self, why);
    return false;
}

static void
s_on_tenants (const PGresult *res, const char *error, void *arg)
{
    sb_quota_sync_t *self = arg;
    if (self->stopping) {
        self->step = S_IDLE;
        return;
    }
    if (!s_answer_ok (self, res, error, "quota_tenants_since") || s_give_way (self))
        return;
    int rows = PQntuples (res);
    if (rows > SB_QUOTA_SYNC_PAGE) {
        s_pass_end (self, "quota_tenants_since answered more rows than asked");
        return;
    }
    size_t count = 0;
    for (int row = 0; row < rows; row++) {
        if (s_tenant_row (res, row, &self->entries [count]) == 0)
            count++;
        else
            sb_log_warn ("limits_row_invalid", "tenant \"%.64s\": a value out of the codec's "
                         "bounds; left out", PQgetvalue (res, row, 0));
    }
    if (rows > 0) {
        const char *last = PQgetvalue (res, rows - 1, 0);
        if (strlen (last) >= sizeof self->after) {
            s_pass_end (self, "a tenant ID longer than the protocol allows");
            return;
        }
        snprintf (self->after, sizeof self->after, "%s", last);
    }
    bool done = rows < SB_QUOTA_SYNC_PAGE;
    //  A snapshot ends with its last part even when it is empty; a push
    //  sends only what changed
    if ((self->snapshot || count)
    &&  s_send_part (self, count, self->snapshot? (done? 2: 1): 0)) {
        s_pass_end (self, "a part could not be sent");
        return;
    }
    self->tenants_sent += count;
    if (done)
        s_pass_end (self, NULL);
    else
        s_query_tenants (self);
}

static void
s_query_tenants (sb_quota_sync_t *self)
{
    char since [24], page [16];
    snprintf (since, sizeof since, "%lld", (long long) self->since);
    snprintf (page, sizeof page, "%d", SB_QUOTA_SYNC_PAGE);
    const char *params [] = { since, self->after, page };
    self->step = S_TENANTS;
    if (sb_db_loop_query (self->db_loop, "SELECT id, plan, anchor, period, used "
                          "FROM quota_tenants_since ($1, $2, $3)", 3, params, s_on_tenants, self))
        s_pass_end (self, "the database queue is full");
}

static void
s_on_plans (const PGresult *res, const char *error, void *arg)
{
    sb_quota_sync_t *self = arg;
    if (self->stopping) {
        self->step = S_IDLE;
        return;
    }
    if (!s_answer_ok (self, res, error, "quota_plans_since") || s_give_way (self))
        return;
    //  Parts of at most SB_QUOTA_MAX_ENTRIES; the tenants' last part ends a snapshot
    int rows = PQntuples (res);
    size_t count = 0;
    for (int row = 0; row <= rows; row++) {
        if (count == SB_QUOTA_MAX_ENTRIES || (row == rows && count)) {
            if (s_send_part (self, count, self->snapshot? 1: 0)) {
                s_pass_end (self, "a part could not be sent");
                return;
            }
            self->plans_sent += count;
            count = 0;
        }
        if (row == rows)
            break;
        if (s_plan_row (res, row, &self->entries [count]) == 0)
            count++;
        else
            sb_log_warn ("limits_row_invalid", "plan \"%.63s\": a value out of the codec's "
                         "bounds; left out", PQgetvalue (res, row, 0));
    }
    self->after [0] = 0;
    s_query_tenants (self);
}

static void
s_on_version (const PGresult *res, const char *error, void *arg)
{
    sb_quota_sync_t *self = arg;
    if (self->stopping) {
        self->step = S_IDLE;
        return;
    }
    if (!s_answer_ok (self, res, error, "quota_version") || s_give_way (self))
        return;
    int64_t version = 0;
    if (PQntuples (res) != 1
    ||  (!PQgetisnull (res, 0, 0) && s_number (res, 0, 0, 0, INT64_MAX, &version))) {
        s_pass_end (self, "quota_version answered no version");
        return;
    }
    if (!self->snapshot && version <= self->pushed) {
        s_pass_end (self, NULL);        //  nothing changed
        return;
    }
    self->target = version;
    self->since = self->snapshot? 0: self->pushed;
    char since [24];
    snprintf (since, sizeof since, "%lld", (long long) self->since);
    const char *params [] = { since };
    self->step = S_PLANS;
    if (sb_db_loop_query (self->db_loop, "SELECT id, rate, burst, in_flight, monthly, weight "
                          "FROM quota_plans_since ($1)", 1, params, s_on_plans, self))
        s_pass_end (self, "the database queue is full");
}

//  Begins a snapshot (for the broker that wanted it) or a push.
static void
s_pass_begin (sb_quota_sync_t *self, bool snapshot)
{
    self->snapshot = snapshot;
    if (snapshot) {
        memcpy (self->broker, self->want_broker, sizeof self->broker);
        self->want = false;
    }
    self->session = sb_worker_sessions (self->worker);
    self->began_ms = sb_clock_mono_ms ();
    self->target = 0;
    self->plans_sent = 0;
    self->tenants_sent = 0;
    self->parts_sent = 0;
    self->step = S_VERSION;
    if (sb_db_loop_query (self->db_loop, "SELECT quota_version ()", 0, NULL, s_on_version, self))
        s_pass_end (self, "the database queue is full");
}

static void
s_on_timer (sb_reactor_t *reactor, void *arg)
{
    sb_quota_sync_t *self = arg;
    if (self->stopping)
        return;
    if (self->step == S_IDLE && !self->want)
        s_pass_begin (self, false);
    sb_reactor_timer_set (reactor, self->timer, sb_clock_mono_ms () + self->poll_ms);
}

//  ---------------------------------------------------------------------
//  USAGE

static void
s_on_recorded (const PGresult *res, const char *error, void *arg)
{
    s_record_t record = *(s_record_t *) arg;
    free (arg);
    sb_quota_sync_t *self = record.self;
    self->records--;
    if (self->stopping)
        return;
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1
    ||  PQgetisnull (res, 0, 0)) {
        char why [256];
        snprintf (why, sizeof why, "%s", error? error: res? PQresultErrorMessage (res): "no answer");
        why [strcspn (why, "\r\n")] = 0;
        sb_log_warn ("usage_store_failed", "seq=%llu (%zu entries) not stored, not "
                     "acknowledged: %s", (unsigned long long) record.seq, record.count, why);
        return;
    }
    bool stored = strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    sb_log_debug ("usage_stored", "seq=%llu: %zu entries %s", (unsigned long long) record.seq,
                  record.count, stored? "stored": "were stored before (a resend)");
    if (sb_worker_send_usage_ack (self->worker, record.seq))
        sb_log_warn ("usage_ack_unsent", "seq=%llu: no connection to the broker (it sends "
                     "the batch again)", (unsigned long long) record.seq);
}

//  The entries as the JSON quota_usage_record takes (new text, or NULL).
static char *
s_usage_json (const sb_usage_entry_t *entries, size_t count)
{
    json_t *array = json_array ();
    for (size_t at = 0; array && at < count; at++) {
        const sb_usage_entry_t *entry = &entries [at];
        json_t *refused = json_object ();
        for (int reason = 0; refused && reason < SB_REFUSAL_COUNT; reason++)
            if (entry->refused [reason]
            &&  json_object_set_new (refused, sb_refusal_name ((sb_refusal_t) reason),
                                     json_integer ((json_int_t) entry->refused [reason]))) {
                json_decref (refused);
                refused = NULL;
            }
        json_t *item = refused? json_pack ("{s:s, s:I, s:I, s:I, s:o}", "tenant", entry->tenant,
                                           "period", (json_int_t) entry->period,
                                           "minute", (json_int_t) entry->minute,
                                           "calls", (json_int_t) entry->calls,
                                           "refused", refused): NULL;
        if (!item || json_array_append_new (array, item)) {
            json_decref (array);
            array = NULL;
        }
    }
    char *text = array? json_dumps (array, JSON_COMPACT): NULL;
    json_decref (array);
    return text;
}

//  Stores a batch; acknowledged when its statement answers.
static void
s_record (sb_quota_sync_t *self, uint64_t seq, const char *broker_id, zframe_t *payload)
{
    size_t count = 0;
    if (payload && zframe_size (payload)
    &&  sb_quota_usage_decode (payload, self->usage, SB_QUOTA_MAX_ENTRIES, &count)) {
        sb_log_warn ("usage_malformed", "seq=%llu from broker=%s: the entries do not decode; "
                     "not acknowledged", (unsigned long long) seq, broker_id);
        return;
    }
    if (count == 0) {
        //  Nothing to store, and the seq stays free for the broker
        if (sb_worker_send_usage_ack (self->worker, seq))
            sb_log_warn ("usage_ack_unsent", "seq=%llu: no connection to the broker",
                         (unsigned long long) seq);
        return;
    }
    if (self->records >= SB_QUOTA_SYNC_MAX_RECORDS) {
        sb_log_warn ("usage_busy", "seq=%llu from broker=%s: %d batches are being stored; "
                     "left for the broker's resend", (unsigned long long) seq, broker_id,
                     SB_QUOTA_SYNC_MAX_RECORDS);
        return;
    }
    char *json = s_usage_json (self->usage, count);
    s_record_t *record = json? malloc (sizeof *record): NULL;
    char seq_text [24];
    snprintf (seq_text, sizeof seq_text, "%llu", (unsigned long long) seq);
    const char *params [] = { broker_id, seq_text, json };
    if (!record)
        sb_log_warn ("usage_store_failed", "seq=%llu: out of memory", (unsigned long long) seq);
    else {
        *record = (s_record_t) { self, seq, count };
        self->records++;                //  the answer may come during the call
        if (sb_db_loop_query (self->db_loop, "SELECT quota_usage_record ($1, $2, $3::jsonb)",
                              3, params, s_on_recorded, record)) {
            sb_log_warn ("usage_busy", "seq=%llu: the database queue is full; left for the "
                         "broker's resend", (unsigned long long) seq);
            self->records--;
            free (record);
        }
    }
    free (json);
}

static void
s_on_usage (void *arg, uint64_t seq, bool want, const char *broker_id, zframe_t **payload)
{
    sb_quota_sync_t *self = arg;
    if (self->stopping)
        return;                         //  the core frees the payload
    if (want) {
        //  A snapshot for this broker begins now, or at the answer in flight
        snprintf (self->want_broker, sizeof self->want_broker, "%s", broker_id);
        self->want = true;
        if (self->step == S_IDLE)
            s_pass_begin (self, true);
    }
    s_record (self, seq, broker_id, *payload);
    zframe_destroy (payload);
}

//  ---------------------------------------------------------------------
//  The module

sb_quota_sync_t *
sb_quota_sync_new (sb_worker_t *worker, sb_db_loop_t *db_loop, uint32_t poll_ms)
{
    if (!worker || !db_loop || poll_ms < SB_MIN_LIMITS_POLL_MS || poll_ms > SB_MAX_LIMITS_POLL_MS)
        return NULL;
    sb_quota_sync_t *self = calloc (1, sizeof (sb_quota_sync_t));
    if (!self)
        return NULL;
    self->worker = worker;
    self->db_loop = db_loop;
    self->reactor = sb_worker_reactor (worker);
    self->poll_ms = poll_ms;
    self->entries = calloc (SB_QUOTA_MAX_ENTRIES, sizeof (sb_quota_entry_t));
    self->usage = calloc (SB_QUOTA_MAX_ENTRIES, sizeof (sb_usage_entry_t));
    self->timer = sb_reactor_timer_new (self->reactor, s_on_timer, self);
    if (!self->entries || !self->usage || self->timer < 0) {
        sb_quota_sync_destroy (&self);
        return NULL;
    }
    sb_reactor_timer_set (self->reactor, self->timer, sb_clock_mono_ms () + poll_ms);
    sb_worker_on_usage (worker, s_on_usage, self);
    return self;
}

void
sb_quota_sync_stop (sb_quota_sync_t *self)
{
    if (!self || self->stopping)
        return;
    self->stopping = true;
    sb_worker_on_usage (self->worker, NULL, NULL);
    if (self->timer >= 0)
        sb_reactor_timer_free (self->reactor, self->timer);
    self->timer = -1;
}

void
sb_quota_sync_destroy (sb_quota_sync_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_quota_sync_t *self = *self_p;
    sb_quota_sync_stop (self);
    free (self->entries);
    free (self->usage);
    free (self);
    *self_p = NULL;
}
