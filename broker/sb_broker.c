/*  broker/sb_broker.c — the broker's state machine and poll loop.

    Events and the actions they trigger:

        gateway REQUEST            → accept_job, then dispatch_jobs
        worker REQUEST (parent)    → accept_worker_request (checks), accept_job
        worker CANCEL              → cancel_job (its own requests only)
        worker READY               → register_worker, then dispatch_jobs
        worker RESULT              → route_result, then dispatch_jobs
        worker HEARTBEAT           → (any message) touch the worker
        worker DISCONNECT          → expire_worker ("disconnect")
        any gateway message        → touch_gateway (remember it for broadcasts)
        gateway HEARTBEAT          → a HEARTBEAT back (the gateway's sign of our life)
        gateway BROADCAST          → broadcast (to every other gateway known)
        worker PUBLISH             → publish (checks), then fan_out as BROADCAST to
                                     every gateway known
        gateway PUBLISH            → refuse_publish (malformed on the frontend)
        gateway DISCONNECT         → forget_gateway
        a gateway's expiry passes  → expire_gateways
        a worker's expiry passes   → expire_worker ("expired")
        a job's deadline passes    → expire_jobs (REPLY timeout)
        a service's no-worker grace passes → refuse_workerless (REPLY unavailable)
        a worker's heartbeat due   → heartbeat_workers
        worker LIMITS (quota svc)  → apply_limits
        worker USAGE_ACK           → usage_acked (then flush_usage on drain)
        quota-service worker READY → ask_limits (USAGE want=1) until a snapshot is loaded
        usage_flush_ms passes      → flush_usage (or resend the batch not acknowledged)
        stop flag / "STOP"         → drain_begin (a last flush_usage) … drain_end

    Every job is answered once, by s_answer (a REQUEST refused before it
    is held, by s_reply; a held job by s_reply_flight, which carries a
    metered job's rate policy); s_release is the one place a job leaves its
    queue, its worker, its tenant's in-flight count and the table. Wire data is
    only read through the proto codec; a message that does not decode is
    dropped and counted by s_malformed, which logs at most once per
    SB_LOG_RATE_MS.
*/
#include "sb_broker.h"

#include <errno.h>
#include <string.h>

#include "sb_attr.h"
#include "sb_gateways.h"
#include "sb_inflight.h"
#include "sb_queue.h"
#include "sb_quota.h"
#include "sb_registry.h"
#include "sb_clock.h"
#include "sb_log.h"
#include "sb_msg.h"

/*  A ROUTER refuses frames larger than this by dropping the connection;
    frames up to it reach the codec, which counts the oversized ones. */
#define SB_BROKER_MAX_FRAME     ((int64_t) SB_MAX_PAYLOAD_SIZE * 2)
/*  Outgoing queue per peer: room for a full credit of jobs plus heartbeats. */
#define SB_BROKER_SNDHWM        (SB_MAX_CREDIT * 2)

struct _sb_broker_t {
    sb_broker_config_t config;          /* settings (endpoint strings not kept) */
    zsock_t *frontend;                  /* ROUTER: gateways */
    zsock_t *backend;                   /* ROUTER: workers */
    char *frontend_endpoint;            /* endpoint bound, e.g. tcp://127.0.0.1:49152 */
    char *backend_endpoint;             /* endpoint bound */
    sb_registry_t *registry;            /* workers by routing id and service */
    sb_gateways_t *gateways;            /* gateways heard from lately (BROADCAST targets) */
    sb_inflight_t *inflight;            /* every job held, by corr_id and due time */
    zhashx_t *queues;                   /* service → sb_queue_t *, owned */
    sb_broker_counters_t counters;      /* what has happened so far */
    bool draining;                      /* stopping: no new jobs accepted */
    int64_t drain_deadline;             /* monotonic ms when draining gives up */
    int64_t tick_at;                    /* next housekeeping pass */
    int64_t stats_at;                   /* next counters log line */
    int64_t malformed_log_at;           /* earliest next malformed-frame log line */
    uint64_t malformed_suppressed;      /* malformed frames not logged since the last line */
    int64_t publish_log_at;             /* earliest next refused-PUBLISH log line */
    uint64_t publish_suppressed;        /* refused PUBLISHes not logged since the last line */
    int64_t started_at;                 /* monotonic ms: the no-worker grace of every service starts here */
    zhashx_t *workerless;               /* service → int64_t * (owned): when its last worker left,
                                           kept for no_worker_grace_ms */
    //  Quotas (NULL / unused when config.quotas is false)
    sb_quota_t *quota;                  /* plans, tenants, buckets, counts */
    char quota_service [SB_MAX_SERVICE_LEN + 1]; /* service of LIMITS senders and USAGE takers */
    char broker_id [SB_MAX_BROKER_ID_LEN + 1];   /* random, fresh at each start (USAGE) */
    sb_quota_entry_t *limits_entries;   /* SB_QUOTA_MAX_ENTRIES, decode buffer of LIMITS */
    sb_usage_entry_t *usage_entries;    /* SB_QUOTA_MAX_ENTRIES, buffer of a flush */
    uint64_t usage_seq;                 /* last seq sent in USAGE (batches and wants) */
    zframe_t *usage_pending;            /* the batch sent and not acknowledged, owned, or NULL */
    uint64_t usage_pending_seq;         /* its seq */
    int64_t usage_pending_at;           /* monotonic ms it was last sent */
    char *usage_pending_to;             /* key of the worker it was last sent to, owned */
    int64_t usage_flush_at;             /* next flush */
    int64_t want_at;                    /* next USAGE want=1 while no snapshot is loaded */
};

static void s_dispatch_jobs (sb_broker_t *self, const char *service);


//  --------------------------------------------------------------------------
//  Construction

void
sb_broker_config_defaults (sb_broker_config_t *config)
{
    memset (config, 0, sizeof *config);
    config->frontend = "tcp://127.0.0.1:5555";
    config->backend = "tcp://127.0.0.1:5556";
    config->heartbeat_ms = SB_DEFAULT_HEARTBEAT_MS;
    config->max_tenant_queue = SB_DEFAULT_TENANT_QUEUE;
    config->max_service_queue = SB_DEFAULT_SERVICE_QUEUE;
    config->max_attempts = 3;
    config->late_grace_ms = 5000;
    config->stats_ms = 10000;
    config->drain_ms = 5000;
    config->gateway_expiry_ms = SB_GATEWAY_LIVENESS * SB_GATEWAY_HEARTBEAT_MS;
    config->no_worker_grace_ms = SB_DEFAULT_NO_WORKER_GRACE_MS;
    config->quotas = true;
    config->quota_service = "token";
    config->usage_flush_ms = SB_DEFAULT_USAGE_FLUSH_MS;
    config->max_quota_tenants = SB_DEFAULT_QUOTA_TENANTS;
    config->default_rate = SB_DEFAULT_PLAN_RATE;
    config->default_burst = SB_DEFAULT_PLAN_BURST;
    config->default_in_flight = SB_DEFAULT_PLAN_IN_FLIGHT;
    config->default_weight = SB_DEFAULT_PLAN_WEIGHT;
}

//  The wall clock of the quotas (Unix ms).
static int64_t
s_wall (sb_broker_t *self)
{
    return self->config.wall_ms ? self->config.wall_ms (self->config.wall_arg)
                                : sb_clock_wall_ms ();
}

//  Sets up the quota table and its buffers from the config. Returns 0, or
//  -1 (logged) on a bad setting or out of memory.
static int
s_quota_new (sb_broker_t *self)
{
    sb_broker_config_t *config = &self->config;
    if (!config->quota_service || !*config->quota_service
    ||  strlen (config->quota_service) > SB_MAX_SERVICE_LEN) {
        sb_log_error ("bad_config", "quota_service must be 1..%d bytes", SB_MAX_SERVICE_LEN);
        return -1;
    }
    snprintf (self->quota_service, sizeof self->quota_service, "%s", config->quota_service);
    config->quota_service = NULL;           //  borrowed strings are not kept
    if (config->usage_flush_ms < SB_MIN_USAGE_FLUSH_MS)
        config->usage_flush_ms = SB_MIN_USAGE_FLUSH_MS;
    if (config->usage_flush_ms > SB_MAX_USAGE_FLUSH_MS)
        config->usage_flush_ms = SB_MAX_USAGE_FLUSH_MS;
    if (!config->quotas)
        return 0;
    sb_quota_config_t quota_config;
    memset (&quota_config, 0, sizeof quota_config);
    snprintf (quota_config.defaults.id, sizeof quota_config.defaults.id, "default");
    quota_config.defaults.rate = config->default_rate;
    quota_config.defaults.burst = config->default_burst;
    quota_config.defaults.in_flight = config->default_in_flight;
    quota_config.defaults.monthly = 0;
    quota_config.defaults.weight = config->default_weight;
    quota_config.max_tenants = config->max_quota_tenants;
    self->quota = sb_quota_new (&quota_config);
    if (!self->quota) {
        sb_log_error ("bad_config", "the quota table refused the defaults (rate=%u burst=%u "
                      "in_flight=%u weight=%u max_tenants=%u: rate ≤ %u needs a burst ≥ 1, "
                      "weight 1..%u) or is out of memory", config->default_rate,
                      config->default_burst, config->default_in_flight, config->default_weight,
                      config->max_quota_tenants, SB_QUOTA_MAX_RATE, SB_QUOTA_MAX_WEIGHT);
        return -1;
    }
    self->limits_entries = (sb_quota_entry_t *) calloc (SB_QUOTA_MAX_ENTRIES,
                                                        sizeof (sb_quota_entry_t));
    self->usage_entries = (sb_usage_entry_t *) calloc (SB_QUOTA_MAX_ENTRIES,
                                                       sizeof (sb_usage_entry_t));
    if (!self->limits_entries || !self->usage_entries)
        return -1;
    //  A random ID, so the quota service tells this run's batches from the last's
    zuuid_t *uuid = zuuid_new ();
    if (!uuid)
        return -1;
    snprintf (self->broker_id, sizeof self->broker_id, "%s", zuuid_str_canonical (uuid));
    zuuid_destroy (&uuid);
    return 0;
}

static void
s_time_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static void
s_queue_destroy (void **item_p)
{
    sb_queue_destroy ((sb_queue_t **) item_p);
}

//  Creates a ROUTER bound to `endpoint`; the real endpoint goes to *bound.
static zsock_t *
s_router_new (const char *endpoint, char **bound)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    if (!sock)
        return NULL;
    zsock_set_router_mandatory (sock, 1);   //  unroutable sends fail, so we can count them
    zsock_set_maxmsgsize (sock, (int) SB_BROKER_MAX_FRAME);
    zsock_set_sndhwm (sock, SB_BROKER_SNDHWM);
    zsock_set_rcvhwm (sock, SB_BROKER_SNDHWM);
    zsock_set_linger (sock, 500);           //  let final replies leave on shutdown
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        sb_log_error ("bind_failed", "endpoint=%s error=%s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    *bound = zsock_last_endpoint (sock);
    return sock;
}

sb_broker_t *
sb_broker_new (const sb_broker_config_t *config)
{
    sb_broker_t *self = (sb_broker_t *) calloc (1, sizeof (sb_broker_t));
    if (!self)
        return NULL;
    self->config = *config;
    if (self->config.max_attempts < 1)
        self->config.max_attempts = 1;
    if (self->config.max_attempts > SB_MAX_ATTEMPTS)
        self->config.max_attempts = SB_MAX_ATTEMPTS;
    self->registry = sb_registry_new (SB_MAX_WORKERS);
    self->inflight = sb_inflight_new (SB_MAX_IN_FLIGHT);
    self->queues = zhashx_new ();
    self->workerless = zhashx_new ();
    self->gateways = sb_gateways_new (SB_MAX_GATEWAYS, self->config.gateway_expiry_ms
                                      ? self->config.gateway_expiry_ms
                                      : SB_GATEWAY_LIVENESS * SB_GATEWAY_HEARTBEAT_MS);
    if (!self->registry || !self->inflight || !self->queues || !self->gateways
    ||  !self->workerless)
        goto fail;
    zhashx_set_destructor (self->queues, s_queue_destroy);
    zhashx_set_destructor (self->workerless, s_time_destroy);
    if (s_quota_new (self))
        goto fail;
    self->frontend = s_router_new (config->frontend, &self->frontend_endpoint);
    if (!self->frontend)
        goto fail;
    self->backend = s_router_new (config->backend, &self->backend_endpoint);
    if (!self->backend)
        goto fail;
    self->config.frontend = NULL;           //  borrowed strings are not kept
    self->config.backend = NULL;
    int64_t now = sb_clock_mono_ms ();
    self->tick_at = now + SB_BROKER_TICK_MS;
    self->stats_at = now + self->config.stats_ms;
    self->started_at = now;
    self->usage_flush_at = now + self->config.usage_flush_ms;
    if (self->quota)
        sb_log_info ("quotas", "broker_id=%s quota_service=%s usage_flush_ms=%u default: rate=%u "
                     "burst=%u in_flight=%u weight=%u", self->broker_id, self->quota_service,
                     self->config.usage_flush_ms, self->config.default_rate,
                     self->config.default_burst, self->config.default_in_flight,
                     self->config.default_weight);
    else
        sb_log_info ("quotas", "off: no limits, every tenant weighs 1 in the fair queues");
    return self;
fail:
    sb_broker_destroy (&self);
    return NULL;
}

void
sb_broker_destroy (sb_broker_t **self_p)
{
    sb_broker_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->frontend);
    zsock_destroy (&self->backend);
    free (self->frontend_endpoint);
    free (self->backend_endpoint);
    //  Queues and workers only point at jobs; the table frees them last
    zhashx_destroy (&self->queues);
    zhashx_destroy (&self->workerless);
    sb_registry_destroy (&self->registry);
    sb_inflight_destroy (&self->inflight);
    sb_gateways_destroy (&self->gateways);
    sb_quota_destroy (&self->quota);
    free (self->limits_entries);
    free (self->usage_entries);
    zframe_destroy (&self->usage_pending);
    free (self->usage_pending_to);
    free (self);
    *self_p = NULL;
}

const char *
sb_broker_frontend (sb_broker_t *self)
{
    return self->frontend_endpoint;
}

const char *
sb_broker_backend (sb_broker_t *self)
{
    return self->backend_endpoint;
}

void
sb_broker_counters (sb_broker_t *self, sb_broker_counters_t *out)
{
    *out = self->counters;
    out->workers = sb_registry_size (self->registry);
    out->gateways = sb_gateways_size (self->gateways);
    out->jobs_queued = 0;
    for (sb_queue_t *queue = (sb_queue_t *) zhashx_first (self->queues); queue;
         queue = (sb_queue_t *) zhashx_next (self->queues))
        out->jobs_queued += sb_queue_size (queue);
    out->limits_loaded = self->quota && sb_quota_loaded (self->quota) ? 1 : 0;
    out->quota_tenants = self->quota ? sb_quota_tenants (self->quota) : 0;
}


//  --------------------------------------------------------------------------
//  Sending

//  Counts and (rate-limited) logs a message that was dropped as malformed.
static void
s_malformed (sb_broker_t *self, bool frontend, const char *what)
{
    if (frontend)
        self->counters.malformed_frontend++;
    else
        self->counters.malformed_backend++;
    int64_t now = sb_clock_mono_ms ();
    if (now < self->malformed_log_at) {
        self->malformed_suppressed++;
        return;
    }
    sb_log_warn ("malformed_dropped", "side=%s what=%s suppressed=%llu",
                 frontend ? "frontend" : "backend", what,
                 (unsigned long long) self->malformed_suppressed);
    self->malformed_suppressed = 0;
    self->malformed_log_at = now + SB_LOG_RATE_MS;
}

//  Sends a REPLY to the asker: a gateway (`to_worker` false) or a worker
//  that asked on the backend. Takes *payload when given (may be NULL).
//  `quota` (may be NULL) is the REPLY's quota group: a metered job's rate
//  policy, or the limit that refused it; `retry_after_ms` goes with
//  `limited` (`unavailable` gets SB_BROKER_UNAVAILABLE_RETRY_MS). An
//  asking worker that is gone makes the send fail: the REPLY is dropped.
static void
s_send_reply (sb_broker_t *self, bool to_worker, zframe_t *route, const char *corr_id,
              sb_status_t status, zframe_t **payload, const sb_msg_quota_t *quota,
              uint32_t retry_after_ms)
{
    sb_msg_t msg = { 0 };
    int rc = sb_msg_set_reply (&msg, corr_id, status, payload);
    if (status == SB_STATUS_UNAVAILABLE)
        msg.retry_after_ms = SB_BROKER_UNAVAILABLE_RETRY_MS;
    else
        msg.retry_after_ms = retry_after_ms;
    if (quota)
        msg.quota = *quota;
    if (rc == 0)
        rc = sb_msg_send (to_worker? self->backend: self->frontend, &msg, route);
    sb_msg_reset (&msg);
    if (rc == 0) {
        self->counters.jobs_replied++;
        if (to_worker)
            self->counters.worker_replies++;
    }
    else {
        self->counters.replies_undeliverable++;
        sb_log_debug ("reply_undeliverable", "corr_id=%s status=%s to=%s",
                      corr_id, sb_status_name (status), to_worker? "worker": "gateway");
    }
}

//  Counts a REPLY the broker decided on itself, by status.
static void
s_count_reply (sb_broker_t *self, sb_status_t status)
{
    switch (status) {
        case SB_STATUS_TIMEOUT:     self->counters.timeouts++; break;
        case SB_STATUS_WORKER_LOST: self->counters.worker_lost++; break;
        case SB_STATUS_OVERLOADED:  self->counters.overloaded++; break;
        case SB_STATUS_DUPLICATE:   self->counters.duplicates++; break;
        case SB_STATUS_UNAVAILABLE: self->counters.unavailable++; break;
        default:                    break;
    }
}

//  Sends a REPLY the broker decided on itself (not a worker's result) to
//  a REQUEST it does not hold, counting it by status.
static void
s_reply (sb_broker_t *self, bool to_worker, zframe_t *route, const char *corr_id,
         sb_status_t status, zframe_t **payload)
{
    s_count_reply (self, status);
    s_send_reply (self, to_worker, route, corr_id, status, payload, NULL, 0);
}

//  The same for a job held: a metered one's REPLY carries its rate policy.
static void
s_reply_flight (sb_broker_t *self, sb_flight_t *flight, sb_status_t status, zframe_t **payload)
{
    s_count_reply (self, status);
    s_send_reply (self, flight->from_worker, flight->gateway, flight->corr_id, status, payload,
                  flight->quota ? &flight->policy : NULL, 0);
}

//  Sends a command without fields (HEARTBEAT, DISCONNECT) to a worker.
static int
s_send_worker (sb_broker_t *self, zframe_t *identity, sb_cmd_t command)
{
    sb_msg_t msg = { 0 };
    if (command == SB_CMD_HEARTBEAT)
        sb_msg_set_heartbeat (&msg);
    else
        sb_msg_set_disconnect (&msg);
    int rc = sb_msg_send (self->backend, &msg, identity);
    sb_msg_reset (&msg);
    return rc;
}


//  --------------------------------------------------------------------------
//  Jobs: admission, release, answers

//  The queue of `service`, created if absent. A new queue is refused past
//  SB_MAX_SERVICES unless `force` (a job that was admitted once).
static sb_queue_t *
s_queue_for (sb_broker_t *self, const char *service, bool force)
{
    sb_queue_t *queue = (sb_queue_t *) zhashx_lookup (self->queues, service);
    if (queue)
        return queue;
    if (!force && zhashx_size (self->queues) >= SB_MAX_SERVICES)
        return NULL;
    queue = sb_queue_new (service, self->config.max_tenant_queue,
                          self->config.max_service_queue);
    if (queue)
        zhashx_insert (self->queues, service, queue);
    return queue;
}

//  The tenant's weight in the fair queues (PROTOCOL.md "Fair queues"):
//  its plan's, 1 with quotas off.
static uint32_t
s_weight (sb_broker_t *self, const char *tenant)
{
    return self->quota ? sb_quota_weight (self->quota, tenant) : 1;
}

//  Takes the job out of its queue, its worker and the table, and frees it.
static void
s_release (sb_broker_t *self, sb_flight_t **flight_p)
{
    sb_flight_t *flight = *flight_p;
    if (flight->state == SB_FLIGHT_QUEUED && flight->tqueue) {
        sb_queue_t *queue = (sb_queue_t *) zhashx_lookup (self->queues, flight->service);
        assert (queue);
        sb_queue_remove (queue, flight);
    }
    if (flight->worker) {
        assert (flight->worker->running > 0);
        flight->worker->running--;
        flight->worker = NULL;
    }
    if (flight->state == SB_FLIGHT_RUNNING)
        self->counters.jobs_running--;
    if (flight->asker) {
        assert (flight->asker->requests > 0);
        flight->asker->requests--;
        flight->asker = NULL;
    }
    if (flight->quota) {
        sb_quota_release (self->quota, flight->quota);
        flight->quota = NULL;
    }
    sb_inflight_remove (self->inflight, flight_p);
}

//  Answers the gateway (or worker) that asked for `flight`, then releases the job.
static void
s_answer (sb_broker_t *self, sb_flight_t **flight_p, sb_status_t status, zframe_t **payload)
{
    s_reply_flight (self, *flight_p, status, payload);
    s_release (self, flight_p);
}

//  True when `service` has no registered worker and has had none for the
//  whole grace (since the broker started, or since its last worker left):
//  its jobs are then answered `unavailable` rather than left to wait.
static bool
s_workerless (sb_broker_t *self, const char *service, int64_t now)
{
    if (sb_registry_service_size (self->registry, service) > 0)
        return false;
    int64_t *left_at = (int64_t *) zhashx_lookup (self->workerless, service);
    int64_t since = left_at ? *left_at : self->started_at;
    return now - since >= (int64_t) self->config.no_worker_grace_ms;
}

//  The last worker of `service` left at `now`: its grace starts.
static void
s_note_workerless (sb_broker_t *self, const char *service, int64_t now)
{
    int64_t *left_at = (int64_t *) malloc (sizeof *left_at);
    if (!left_at)
        return;                 //  then the grace counts from the start: shorter, still safe
    *left_at = now;
    zhashx_update (self->workerless, service, left_at);
}

//  Refuses a metered job the quotas did not admit: REPLY `limited` with
//  the quota group and when to come back, counted by reason.
static void
s_reply_limited (sb_broker_t *self, bool to_worker, zframe_t *route, const char *corr_id,
                 const sb_quota_verdict_t *verdict)
{
    switch (verdict->refusal) {
        case SB_REFUSAL_IN_FLIGHT: self->counters.limited_in_flight++; break;
        case SB_REFUSAL_RATE:      self->counters.limited_rate++; break;
        case SB_REFUSAL_MONTHLY:   self->counters.limited_monthly++; break;
        case SB_REFUSAL_BUDGET:    self->counters.limited_budget++; break;
        default:                   break;
    }
    s_send_reply (self, to_worker, route, corr_id, SB_STATUS_LIMITED, NULL, &verdict->quota,
                  verdict->retry_after_ms);
}

//  Action accept_job: a well-formed REQUEST from `gateway` (taken), or
//  from `asker`, a registered worker whose checks passed (then `gateway`
//  is its routing id on the backend and `deadline` is already cut to the
//  parent's time left). In order: draining, duplicate, no worker, room in
//  the table and the queue, then (cost ≥ 1, quotas on) the quotas; a job
//  refused by any of them is answered at once and charged nothing.
static void
s_accept_job (sb_broker_t *self, sb_msg_t *request, zframe_t **gateway,
              sb_worker_t *asker, int64_t deadline)
{
    self->counters.jobs_received++;
    bool to_worker = asker != NULL;
    if (self->draining) {
        s_reply (self, to_worker, *gateway, request->corr_id, SB_STATUS_OVERLOADED, NULL);
        return;
    }
    if (sb_inflight_lookup (self->inflight, request->corr_id)) {
        s_reply (self, to_worker, *gateway, request->corr_id, SB_STATUS_DUPLICATE, NULL);
        return;
    }
    int64_t now = sb_clock_mono_ms ();
    if (s_workerless (self, request->service, now)) {
        sb_log_debug ("job_refused", "corr_id=%s service=%s tenant=%s reason=no_worker",
                      request->corr_id, request->service, request->tenant);
        s_reply (self, to_worker, *gateway, request->corr_id, SB_STATUS_UNAVAILABLE, NULL);
        return;
    }
    sb_queue_t *queue = s_queue_for (self, request->service, false);
    int rc = queue ? sb_queue_room (queue, request->tenant) : SB_QUEUE_SERVICE_FULL;
    if (rc) {
        sb_log_debug ("job_refused", "corr_id=%s service=%s tenant=%s reason=%s",
                      request->corr_id, request->service, request->tenant,
                      rc == SB_QUEUE_TENANT_FULL ? "tenant_queue_full" : "service_queue_full");
        s_reply (self, to_worker, *gateway, request->corr_id, SB_STATUS_OVERLOADED, NULL);
        return;
    }
    sb_quota_state_t *quota = NULL;
    sb_quota_verdict_t verdict;
    memset (&verdict, 0, sizeof verdict);
    if (self->quota && request->cost > 0) {
        quota = sb_quota_admit (self->quota, request->tenant, request->cost, request->conn,
                                request->budget_limit, request->budget_window_s,
                                now, s_wall (self), &verdict);
        if (!quota) {
            sb_log_debug ("job_limited", "corr_id=%s service=%s tenant=%s reason=%s scope=%s "
                          "retry_after_ms=%u", request->corr_id, request->service,
                          request->tenant, verdict.quota.reason, verdict.quota.scope,
                          verdict.retry_after_ms);
            s_reply_limited (self, to_worker, *gateway, request->corr_id, &verdict);
            return;
        }
        self->counters.jobs_metered++;
    }
    if (!asker)
        deadline = now + request->timeout_ms;
    sb_flight_t *flight = sb_inflight_add (self->inflight, request, gateway, deadline);
    if (!flight) {
        if (quota)
            sb_quota_release (self->quota, quota);
        s_reply (self, to_worker, *gateway, request->corr_id, SB_STATUS_OVERLOADED, NULL);
        return;
    }
    if (quota) {
        flight->quota = quota;
        flight->policy = verdict.quota;
    }
    if (asker) {
        flight->from_worker = true;
        flight->asker = asker;
        asker->requests++;
    }
    rc = sb_queue_push (queue, flight, s_weight (self, flight->tenant));
    if (rc) {
        sb_log_warn ("job_refused", "corr_id=%s service=%s tenant=%s reason=no_memory",
                     flight->corr_id, flight->service, flight->tenant);
        s_answer (self, &flight, SB_STATUS_OVERLOADED, NULL);
        return;
    }
    s_dispatch_jobs (self, request->service);
}

//  Refuses a worker's REQUEST: REPLY `status` to the worker, a log line.
static void
s_refuse_worker_request (sb_broker_t *self, sb_msg_t *request, zframe_t *identity,
                         sb_status_t status, const char *reason)
{
    self->counters.worker_requests_refused++;
    sb_log_warn ("worker_request_refused", "corr_id=%s parent=%s service=%s tenant=%s reason=%s",
                 request->corr_id, request->parent [0]? request->parent: "-",
                 request->service, request->tenant, reason);
    s_reply (self, true, identity, request->corr_id, status, NULL);
}

//  Action accept_worker_request: a REQUEST on the backend from `worker`
//  (NULL: not registered), routing id `identity` (borrowed). It must name
//  as parent a job that worker runs now, for the same tenant, and ask
//  another service than the worker's own; its deadline is cut to the
//  parent's time left; a worker has at most SB_MAX_WORKER_REQUESTS in
//  flight. Past the checks it is a job like a gateway's.
static void
s_accept_worker_request (sb_broker_t *self, sb_worker_t *worker, sb_msg_t *request,
                         zframe_t *identity)
{
    self->counters.worker_requests++;
    if (!request->parent [0]) {
        //  A gateway's REQUEST sent to the backend: misdirected
        s_malformed (self, false, "request without parent");
        s_refuse_worker_request (self, request, identity, SB_STATUS_MALFORMED, "no_parent");
        return;
    }
    if (request->cost > 0) {
        //  Worker requests run inside a job that was metered already
        s_malformed (self, false, "worker request with cost");
        s_refuse_worker_request (self, request, identity, SB_STATUS_MALFORMED, "metered");
        return;
    }
    if (!worker) {
        s_refuse_worker_request (self, request, identity, SB_STATUS_MALFORMED, "not_registered");
        return;
    }
    sb_flight_t *parent = sb_inflight_lookup (self->inflight, request->parent);
    if (!parent || parent->state != SB_FLIGHT_RUNNING || parent->worker != worker) {
        s_refuse_worker_request (self, request, identity, SB_STATUS_MALFORMED, "parent_not_held");
        return;
    }
    if (strcmp (parent->tenant, request->tenant) != 0) {
        self->counters.worker_requests_refused++;
        sb_log_warn ("cross_tenant_refused", "command=request corr_id=%s parent=%s "
                     "job_tenant=%s from_tenant=%s", request->corr_id, request->parent,
                     parent->tenant, request->tenant);
        s_reply (self, true, identity, request->corr_id, SB_STATUS_MALFORMED, NULL);
        return;
    }
    if (streq (request->service, worker->service)) {
        s_refuse_worker_request (self, request, identity, SB_STATUS_MALFORMED, "own_service");
        return;
    }
    if (worker->requests >= SB_MAX_WORKER_REQUESTS) {
        s_refuse_worker_request (self, request, identity, SB_STATUS_OVERLOADED, "too_many_requests");
        return;
    }
    int64_t deadline = sb_clock_mono_ms () + request->timeout_ms;
    if (parent->deadline < deadline)
        deadline = parent->deadline;
    zframe_t *route = zframe_dup (identity);
    s_accept_job (self, request, &route, worker, deadline);
    zframe_destroy (&route);        //  NULL when the table took it
}

//  Sends one JOB. Returns 0, or -1 when the worker's socket refused it
//  (then the job is back at the front of its queue, or answered).
static int
s_send_job (sb_broker_t *self, sb_flight_t *flight, sb_worker_t *worker,
            sb_queue_t *queue, int64_t now)
{
    int64_t left = flight->deadline - now;
    bool retry_safe = (flight->flags & SB_FLAG_RETRY_SAFE) != 0;
    sb_msg_t msg = { 0 };
    msg.command = SB_CMD_JOB;
    memcpy (msg.corr_id, flight->corr_id, sizeof msg.corr_id);
    memcpy (msg.tenant, flight->tenant, sizeof msg.tenant);
    msg.timeout_ms = (uint32_t) (left < 1 ? 1 : left);
    msg.flags = flight->flags;
    msg.attempt = flight->attempt + 1;
    //  Keep a copy only when a retry may need it; the common case moves it
    if (retry_safe && flight->payload)
        msg.payload = zframe_dup (flight->payload);
    else {
        msg.payload = flight->payload;
        flight->payload = NULL;
    }
    int rc = sb_msg_send (self->backend, &msg, worker->identity);
    sb_msg_reset (&msg);
    if (rc) {
        if (retry_safe && sb_queue_push_front (queue, flight, s_weight (self, flight->tenant)) == 0)
            return -1;
        s_answer (self, &flight, SB_STATUS_WORKER_LOST, NULL);
        return -1;
    }
    flight->attempt++;
    flight->state = SB_FLIGHT_RUNNING;
    flight->worker = worker;
    worker->running++;
    self->counters.jobs_running++;
    self->counters.jobs_dispatched++;
    return 0;
}

//  Action dispatch_jobs: while the service has jobs waiting and a worker
//  with free credit, sends the next job (round-robin across tenants) to the
//  least loaded worker.
static void
s_dispatch_jobs (sb_broker_t *self, const char *service)
{
    sb_queue_t *queue = (sb_queue_t *) zhashx_lookup (self->queues, service);
    if (!queue)
        return;
    int64_t now = sb_clock_mono_ms ();
    while (sb_queue_size (queue) > 0) {
        sb_worker_t *worker = sb_registry_pick (self->registry, service);
        if (!worker)
            break;
        sb_flight_t *flight = sb_queue_pop (queue);
        if (flight->deadline <= now) {
            s_answer (self, &flight, SB_STATUS_TIMEOUT, NULL);
            continue;
        }
        if (s_send_job (self, flight, worker, queue, now)) {
            //  Gone without a word (killed, network cut). Expiring it here
            //  could free a worker a caller is walking: the next tick does
            sb_log_warn ("worker_unreachable", "service=%s", service);
            worker->unreachable = true;
            worker->expires_at = now;
        }
    }
}


//  --------------------------------------------------------------------------
//  Quotas: limits in, usage out (PROTOCOL.md "Quotas")

//  True when `worker` (may be NULL) is a registered worker of the quota service.
static bool
s_quota_worker (sb_broker_t *self, sb_worker_t *worker)
{
    return worker && streq (worker->service, self->quota_service);
}

//  Sends USAGE (`seq`, `want`, a copy of `batch` or no entries) to a
//  reachable worker of the quota service, preferring one whose key is not
//  `avoid`. Returns the worker it went to, or NULL (none, or the send failed).
static sb_worker_t *
s_send_usage (sb_broker_t *self, uint64_t seq, uint32_t want, zframe_t *batch,
              const char *avoid)
{
    sb_worker_t *worker = sb_registry_any (self->registry, self->quota_service, avoid);
    if (!worker)
        return NULL;
    sb_msg_t msg = { 0 };
    zframe_t *payload = batch ? zframe_dup (batch) : NULL;
    int rc = sb_msg_set_usage (&msg, seq, want, self->broker_id, &payload);
    zframe_destroy (&payload);
    if (rc == 0)
        rc = sb_msg_send (self->backend, &msg, worker->identity);
    sb_msg_reset (&msg);
    if (rc) {
        sb_log_warn ("usage_not_sent", "seq=%llu want=%u: the quota worker's socket refused it",
                     (unsigned long long) seq, want);
        return NULL;
    }
    return worker;
}

//  Action ask_limits: with no full snapshot loaded yet, asks a worker of
//  the quota service for one (USAGE want=1, no entries), at most every
//  SB_BROKER_WANT_MS; `force` asks now (a quota worker just registered).
static void
s_ask_limits (sb_broker_t *self, int64_t now, bool force)
{
    if (!self->quota || sb_quota_loaded (self->quota) || self->draining)
        return;
    if (!force && now < self->want_at)
        return;
    self->want_at = now + SB_BROKER_WANT_MS;
    uint64_t seq = ++self->usage_seq;
    if (s_send_usage (self, seq, 1, NULL, NULL)) {
        self->counters.limits_wanted++;
        sb_log_info ("limits_wanted", "seq=%llu quota_service=%s",
                     (unsigned long long) seq, self->quota_service);
    }
}

//  Remembers where the pending batch went last.
static void
s_usage_sent_to (sb_broker_t *self, sb_worker_t *worker, int64_t now)
{
    self->usage_pending_at = now;
    free (self->usage_pending_to);
    self->usage_pending_to = worker ? strdup (worker->key) : NULL;
}

//  Action flush_usage: with no batch waiting for its ack, takes what the
//  tenants spent since the last flush (at most SB_QUOTA_MAX_ENTRIES
//  entries; the rest waits for the next) and sends it as a new USAGE
//  batch; a batch not acknowledged within SB_BROKER_USAGE_RESEND_MS goes
//  again, same seq, preferably to another worker. Counts stay in the
//  table while no quota worker is registered.
static void
s_flush_usage (sb_broker_t *self, int64_t now)
{
    if (!self->quota)
        return;
    if (self->usage_pending) {
        if (now - self->usage_pending_at < SB_BROKER_USAGE_RESEND_MS)
            return;
        sb_worker_t *worker = s_send_usage (self, self->usage_pending_seq, 0,
                                            self->usage_pending, self->usage_pending_to);
        if (worker) {
            self->counters.usage_batches_resent++;
            sb_log_info ("usage_resent", "seq=%llu: no ack within %d ms",
                         (unsigned long long) self->usage_pending_seq,
                         SB_BROKER_USAGE_RESEND_MS);
        }
        s_usage_sent_to (self, worker, now);   //  no worker: try again after the same wait
        return;
    }
    if (sb_registry_any (self->registry, self->quota_service, NULL) == NULL)
        return;
    size_t count = sb_quota_take_usage (self->quota, s_wall (self), self->usage_entries,
                                        SB_QUOTA_MAX_ENTRIES);
    if (count == 0)
        return;
    zframe_t *batch = sb_quota_usage_encode (self->usage_entries, count);
    if (!batch) {
        //  The table handed out an entry out of bounds: a bug, and these counts are lost
        sb_log_error ("usage_unencodable", "entries=%zu: dropped", count);
        return;
    }
    self->usage_pending = batch;
    self->usage_pending_seq = ++self->usage_seq;
    sb_worker_t *worker = s_send_usage (self, self->usage_pending_seq, 0, batch, NULL);
    s_usage_sent_to (self, worker, now);
    self->counters.usage_batches_sent++;
    sb_log_debug ("usage_sent", "seq=%llu entries=%zu", (unsigned long long) self->usage_pending_seq,
                  count);
}

//  Action usage_acked: a USAGE_ACK from a worker of the quota service.
//  The batch waiting for it is stored: the next may go (at once while
//  draining, so the last counts leave before the broker does).
static void
s_usage_acked (sb_broker_t *self, sb_msg_t *ack)
{
    if (!self->usage_pending || ack->seq != self->usage_pending_seq) {
        self->counters.usage_acks_stale++;
        return;
    }
    zframe_destroy (&self->usage_pending);
    free (self->usage_pending_to);
    self->usage_pending_to = NULL;
    self->counters.usage_batches_acked++;
    if (self->draining)
        s_flush_usage (self, sb_clock_mono_ms ());
}

//  Action apply_limits: a LIMITS from a registered worker of the quota
//  service (anyone else's is malformed). A snapshot's last part
//  (snapshot 2) marks the limits loaded.
static void
s_apply_limits (sb_broker_t *self, sb_worker_t *worker, sb_msg_t *limits)
{
    if (!s_quota_worker (self, worker)) {
        s_malformed (self, false, "limits from a peer outside the quota service");
        return;
    }
    if (!self->quota) {
        self->counters.limits_ignored++;
        return;
    }
    size_t count = 0;
    if (limits->payload
    &&  sb_quota_limits_decode (limits->payload, self->limits_entries, SB_QUOTA_MAX_ENTRIES,
                                &count)) {
        s_malformed (self, false, "limits payload");
        return;
    }
    sb_quota_apply (self->quota, self->limits_entries, count, s_wall (self));
    self->counters.limits_received++;
    self->counters.limits_entries += count;
    if (limits->snapshot == SB_SNAPSHOT_LAST && !sb_quota_loaded (self->quota)) {
        sb_quota_set_loaded (self->quota);
        sb_log_info ("limits_loaded", "seq=%llu tenants=%zu memory=%zu",
                     (unsigned long long) limits->seq, sb_quota_tenants (self->quota),
                     sb_quota_memory (self->quota));
    }
    sb_log_debug ("limits_applied", "seq=%llu snapshot=%u entries=%zu",
                  (unsigned long long) limits->seq, limits->snapshot, count);
}


//  --------------------------------------------------------------------------
//  Workers

//  Action expire_worker: forgets a worker. Each job it held is queued again
//  (retry-safe, attempts and time left) or answered worker_lost; timed-out
//  jobs it held are simply dropped. `reason` is "disconnect" (it said so),
//  "ready_again" (it registered anew), "expired" or "unreachable" (then it
//  is told DISCONNECT, in case it still listens). The caller dispatches
//  afterwards.
static void
s_expire_worker (sb_broker_t *self, sb_worker_t **worker_p, const char *reason)
{
    sb_worker_t *worker = *worker_p;
    zlistx_t *held = zlistx_new ();
    assert (held);
    sb_inflight_collect (self->inflight, worker, held);
    int64_t now = sb_clock_mono_ms ();
    size_t retried = 0, lost = 0;
    for (sb_flight_t *flight = (sb_flight_t *) zlistx_first (held); flight;
         flight = (sb_flight_t *) zlistx_next (held)) {
        if (flight->state == SB_FLIGHT_EXPIRED) {
            s_release (self, &flight);
            continue;
        }
        bool retry = (flight->flags & SB_FLAG_RETRY_SAFE)
                  && flight->payload
                  && flight->attempt < self->config.max_attempts
                  && flight->deadline > now;
        sb_queue_t *queue = retry ? s_queue_for (self, flight->service, true) : NULL;
        if (queue) {
            worker->running--;
            flight->worker = NULL;
            flight->state = SB_FLIGHT_QUEUED;
            self->counters.jobs_running--;
            if (sb_queue_push_front (queue, flight, s_weight (self, flight->tenant)) == 0) {
                self->counters.jobs_retried++;
                retried++;
                continue;
            }
        }
        s_answer (self, &flight, SB_STATUS_WORKER_LOST, NULL);
        lost++;
    }
    zlistx_destroy (&held);
    if (worker->requests > 0) {
        //  Its own requests run out: their REPLYs are dropped by the ROUTER
        zlistx_t *asked = zlistx_new ();
        assert (asked);
        sb_inflight_collect_all (self->inflight, asked);
        for (sb_flight_t *flight = (sb_flight_t *) zlistx_first (asked); flight;
             flight = (sb_flight_t *) zlistx_next (asked))
            if (flight->asker == worker)
                flight->asker = NULL;
        zlistx_destroy (&asked);
        worker->requests = 0;
    }
    sb_log_info ("worker_lost", "service=%s reason=%s retried=%zu lost=%zu",
                 worker->service, reason, retried, lost);
    if (streq (reason, "disconnect"))
        self->counters.workers_disconnected++;
    else
    if (!streq (reason, "ready_again")) {
        self->counters.workers_expired++;
        //  It may still be alive (just slow): tell it to register again
        (void) s_send_worker (self, worker->identity, SB_CMD_DISCONNECT);
    }
    char service [SB_MAX_SERVICE_LEN + 1];
    memcpy (service, worker->service, sizeof service);
    sb_registry_remove (self->registry, worker_p);
    if (sb_registry_service_size (self->registry, service) == 0) {
        sb_log_warn ("service_without_worker", "service=%s grace_ms=%u: its jobs wait that long, "
                     "then are answered unavailable", service, self->config.no_worker_grace_ms);
        s_note_workerless (self, service, now);
    }
}

//  Action register_worker: a READY from `identity` (borrowed).
static void
s_register_worker (sb_broker_t *self, sb_msg_t *ready, zframe_t *identity, sb_worker_t *known)
{
    int64_t now = sb_clock_mono_ms ();
    if (known) {
        //  A READY from a registered worker means it restarted or
        //  reconnected: whatever it held is lost
        char service [SB_MAX_SERVICE_LEN + 1];
        memcpy (service, known->service, sizeof service);
        s_expire_worker (self, &known, "ready_again");
        s_dispatch_jobs (self, service);
    }
    uint32_t heartbeat_ms = ready->heartbeat_ms ? ready->heartbeat_ms : self->config.heartbeat_ms;
    sb_worker_t *worker = sb_registry_add (self->registry, identity, ready->service,
                                           ready->credit, heartbeat_ms, now);
    if (!worker) {
        sb_log_warn ("worker_refused", "service=%s reason=registry_full", ready->service);
        (void) s_send_worker (self, identity, SB_CMD_DISCONNECT);
        return;
    }
    self->counters.workers_registered++;
    zhashx_delete (self->workerless, worker->service);
    if (s_quota_worker (self, worker))
        s_ask_limits (self, now, true);
    sb_log_info ("worker_ready", "service=%s credit=%u heartbeat_ms=%u workers=%zu",
                 worker->service, worker->credit, worker->heartbeat_ms,
                 sb_registry_service_size (self->registry, worker->service));
    s_dispatch_jobs (self, worker->service);
}

//  Action route_result: a RESULT from a registered worker.
static void
s_route_result (sb_broker_t *self, sb_worker_t *worker, sb_msg_t *result)
{
    sb_flight_t *flight = sb_inflight_lookup (self->inflight, result->corr_id);
    if (!flight || flight->worker != worker) {
        //  Released long ago, or never ours: nothing to give credit back for
        self->counters.late_results_dropped++;
        sb_log_debug ("late_result_dropped", "corr_id=%s held=%s",
                      result->corr_id, flight ? "elsewhere" : "no");
        return;
    }
    if (flight->state == SB_FLIGHT_EXPIRED) {
        //  The gateway was told `timeout`; the result must not reach it
        self->counters.late_results_dropped++;
        sb_log_debug ("late_result_dropped", "corr_id=%s held=expired", result->corr_id);
        s_release (self, &flight);
    }
    else {
        self->counters.results_routed++;
        s_send_reply (self, flight->from_worker, flight->gateway, flight->corr_id,
                      result->status, &result->payload,
                      flight->quota ? &flight->policy : NULL, 0);
        s_release (self, &flight);
    }
    s_dispatch_jobs (self, worker->service);
}


//  --------------------------------------------------------------------------
//  Messages inside a running call: cancel, notify, ask, answer

//  The running job `corr_id` may carry one more call message from this
//  side; counts the refusal otherwise. Returns the job or NULL.
static sb_flight_t *
s_call_flight (sb_broker_t *self, const char *corr_id, const char *command)
{
    sb_flight_t *flight = sb_inflight_lookup (self->inflight, corr_id);
    if (!flight || flight->state != SB_FLIGHT_RUNNING
    ||  flight->call_messages >= SB_MAX_CALL_MESSAGES) {
        self->counters.call_messages_dropped++;
        sb_log_debug ("call_message_dropped", "command=%s corr_id=%s held=%s",
                      command, corr_id, flight ? "not running or over cap" : "no");
        return NULL;
    }
    flight->call_messages++;
    return flight;
}

//  Action cancel_job: the gateway that asked for a job no longer wants it.
//  A waiting job is dropped; a running one is told to stop and kept as a
//  tombstone (like a timed-out job) so its worker's credit comes back with
//  the worker's RESULT `cancelled`, or after the grace period. Nothing is
//  answered: the client cancelled, so it expects no response. `from_worker`:
//  the CANCEL came on the backend from `asker`, which may only cancel its
//  own requests.
static void
s_cancel_job (sb_broker_t *self, sb_msg_t *cancel, zframe_t *asker, bool from_worker)
{
    sb_flight_t *flight = sb_inflight_lookup (self->inflight, cancel->corr_id);
    if (!flight || flight->state == SB_FLIGHT_EXPIRED
    ||  flight->from_worker != from_worker || !zframe_eq (flight->gateway, asker)) {
        self->counters.call_messages_dropped++;     //  not held, done, or not this asker's
        sb_log_debug ("cancel_dropped", "corr_id=%s from=%s held=%s", cancel->corr_id,
                      from_worker? "worker": "gateway", flight? "not by this asker": "no");
        return;
    }
    self->counters.jobs_cancelled++;
    if (flight->state == SB_FLIGHT_QUEUED) {
        s_release (self, &flight);
        return;
    }
    sb_msg_t msg = { 0 };
    if (sb_msg_set_cancel (&msg, flight->corr_id) != 0
    ||  sb_msg_send (self->backend, &msg, flight->worker->identity) != 0)
        sb_log_warn ("cancel_not_sent", "corr_id=%s: the job runs to its deadline", flight->corr_id);
    sb_msg_reset (&msg);
    flight->state = SB_FLIGHT_EXPIRED;
    self->counters.jobs_running--;
    zframe_destroy (&flight->payload);
    sb_inflight_set_due (self->inflight, flight,
                         sb_clock_mono_ms () + self->config.late_grace_ms);
}

//  Action route_answer: a client's response to a worker's ASK, from any
//  gateway (the JSON-RPC id names the call, so no gateway keeps state).
//  The tenant must be the job's: a gateway cannot answer for another.
static void
s_route_answer (sb_broker_t *self, sb_msg_t *answer)
{
    sb_flight_t *flight = s_call_flight (self, answer->corr_id, "answer");
    if (!flight)
        return;
    if (flight->from_worker) {
        //  A worker's request passes no ASK to any client: nothing to answer
        self->counters.call_messages_dropped++;
        return;
    }
    if (strcmp (flight->tenant, answer->tenant) != 0) {
        self->counters.call_messages_dropped++;
        sb_log_warn ("cross_tenant_refused", "command=answer corr_id=%s job_tenant=%s from_tenant=%s",
                     answer->corr_id, flight->tenant, answer->tenant);
        return;
    }
    if (sb_msg_send (self->backend, answer, flight->worker->identity) == 0)
        self->counters.call_messages_routed++;
}

//  Action route_to_gateway: a NOTIFY or ASK from the worker holding the job
//  goes to the gateway that asked for it.
static void
s_route_to_gateway (sb_broker_t *self, sb_worker_t *worker, sb_msg_t *msg)
{
    sb_flight_t *flight = s_call_flight (self, msg->corr_id, sb_cmd_name (msg->command));
    if (!flight)
        return;
    if (flight->worker != worker) {
        self->counters.call_messages_dropped++;
        return;
    }
    if (flight->from_worker) {
        //  A worker asked for this job: no client could show it
        self->counters.call_messages_dropped++;
        sb_log_debug ("call_message_dropped", "command=%s corr_id=%s: a worker's request",
                      sb_cmd_name (msg->command), msg->corr_id);
        return;
    }
    if (sb_msg_send (self->frontend, msg, flight->gateway) == 0)
        self->counters.call_messages_routed++;
}


//  --------------------------------------------------------------------------
//  Gateways and broadcasts

//  Action touch_gateway: any well-formed message from a gateway keeps it
//  on the list of those a BROADCAST goes to.
static void
s_touch_gateway (sb_broker_t *self, zframe_t *gateway, int64_t now)
{
    int rc = sb_gateways_touch (self->gateways, gateway, now);
    if (rc == SB_GATEWAYS_ADDED) {
        self->counters.gateways_joined++;
        sb_log_info ("gateway_joined", "gateways=%zu", sb_gateways_size (self->gateways));
    }
    else
    if (rc == SB_GATEWAYS_FULL) {
        //  Its jobs are still served; only broadcasts miss it
        if (self->counters.gateways_refused++ == 0)
            sb_log_warn ("gateway_refused", "gateways=%zu: the table is full (SB_MAX_GATEWAYS); "
                         "this gateway gets no broadcasts", sb_gateways_size (self->gateways));
    }
}

//  Action forget_gateway: a gateway said DISCONNECT.
static void
s_forget_gateway (sb_broker_t *self, zframe_t *gateway)
{
    if (sb_gateways_remove (self->gateways, gateway) == 0) {
        self->counters.gateways_expired++;
        sb_log_info ("gateway_left", "reason=disconnect gateways=%zu",
                     sb_gateways_size (self->gateways));
    }
}

static void
s_frame_destroy (void **item_p)
{
    zframe_destroy ((zframe_t **) item_p);
}

//  Action fan_out: sends a BROADCAST with the tenant, topic and payload of
//  `news` (a BROADCAST or a PUBLISH; the payload unread) to every gateway
//  known but `except` (NULL: none). A gateway that cannot take its copy is
//  forgotten until it is heard from again. Copies are counted in
//  broadcasts_delivered / broadcasts_undeliverable.
static void
s_fan_out (sb_broker_t *self, sb_msg_t *news, zframe_t *except)
{
    zlistx_t *targets = zlistx_new ();
    zlistx_t *failed = zlistx_new ();
    assert (targets && failed);
    zlistx_set_destructor (failed, s_frame_destroy);
    sb_gateways_collect (self->gateways, targets);
    size_t delivered = 0;
    for (zframe_t *gateway = (zframe_t *) zlistx_first (targets); gateway;
         gateway = (zframe_t *) zlistx_next (targets)) {
        if (except && zframe_eq (gateway, except))
            continue;
        sb_msg_t copy = { 0 };
        zframe_t *payload = news->payload? zframe_dup (news->payload): NULL;
        int rc = sb_msg_set_broadcast (&copy, news->tenant, news->topic, &payload);
        if (rc == 0)
            rc = sb_msg_send (self->frontend, &copy, gateway);
        sb_msg_reset (&copy);
        if (rc == 0) {
            delivered++;
            self->counters.broadcasts_delivered++;
        }
        else {
            self->counters.broadcasts_undeliverable++;
            zlistx_add_end (failed, zframe_dup (gateway));
        }
    }
    zlistx_destroy (&targets);
    for (zframe_t *gateway = (zframe_t *) zlistx_first (failed); gateway;
         gateway = (zframe_t *) zlistx_next (failed))
        if (sb_gateways_remove (self->gateways, gateway) == 0) {
            self->counters.gateways_expired++;
            sb_log_info ("gateway_left", "reason=unreachable gateways=%zu",
                         sb_gateways_size (self->gateways));
        }
    sb_log_debug (sb_cmd_name (news->command), "tenant=%s topic=%s bytes=%zu delivered=%zu failed=%zu",
                  news->tenant, news->topic, news->payload? zframe_size (news->payload): 0,
                  delivered, zlistx_size (failed));
    zlistx_destroy (&failed);
}

//  Action broadcast: passes a BROADCAST from `sender` to every other
//  gateway known, unread (the sender applied it already).
static void
s_broadcast (sb_broker_t *self, sb_msg_t *broadcast, zframe_t *sender)
{
    self->counters.broadcasts_received++;
    s_fan_out (self, broadcast, sender);
}

/*  The topics a worker may PUBLISH (PROTOCOL.md "Webhooks"); a PUBLISH
    about any other is refused. The broker reads only the topic, never the
    payload: the receiving gateways check it. */
static const char *const s_publish_topics [] = {
    "resource_updated",         /* payload: a resource URI whose contents changed */
};

static bool
s_publish_topic_allowed (const char *topic)
{
    for (size_t i = 0; i < sizeof s_publish_topics / sizeof s_publish_topics [0]; i++)
        if (streq (topic, s_publish_topics [i]))
            return true;
    return false;
}

//  Action refuse_publish: counts and (rate-limited) logs a PUBLISH that
//  goes nowhere. `worker` may be NULL (a gateway, or an unregistered peer).
static void
s_refuse_publish (sb_broker_t *self, sb_msg_t *publish, sb_worker_t *worker, const char *why)
{
    self->counters.publish_refused++;
    int64_t now = sb_clock_mono_ms ();
    if (now < self->publish_log_at) {
        self->publish_suppressed++;
        return;
    }
    sb_log_warn ("publish_refused", "reason=%s service=%s tenant=%s topic=%s suppressed=%llu",
                 why, worker? worker->service: "-", publish->tenant, publish->topic,
                 (unsigned long long) self->publish_suppressed);
    self->publish_suppressed = 0;
    self->publish_log_at = now + SB_LOG_RATE_MS;
}

//  Action publish: a registered worker's PUBLISH about a topic workers may
//  publish goes to every gateway known as a BROADCAST, the same tenant,
//  topic and payload (no sender to leave out: the news is from a worker).
//  Anything else is refused.
static void
s_publish (sb_broker_t *self, sb_msg_t *publish, sb_worker_t *worker)
{
    if (!worker)
        s_refuse_publish (self, publish, NULL, "unregistered_worker");
    else
    if (!s_publish_topic_allowed (publish->topic))
        s_refuse_publish (self, publish, worker, "topic_not_allowed");
    else {
        self->counters.publishes++;
        s_fan_out (self, publish, NULL);
    }
}

//  Action expire_gateways: forgets the gateways not heard from lately.
static void
s_expire_gateways (sb_broker_t *self, int64_t now)
{
    size_t gone = sb_gateways_expire (self->gateways, now);
    if (gone) {
        self->counters.gateways_expired += gone;
        sb_log_info ("gateway_left", "reason=expired count=%zu gateways=%zu",
                     gone, sb_gateways_size (self->gateways));
    }
}


//  --------------------------------------------------------------------------
//  Timers

//  Action expire_jobs: answers `timeout` for every job whose deadline has
//  passed; a running one stays as a tombstone holding its worker's credit
//  until its late result comes or the grace period ends.
static void
s_expire_jobs (sb_broker_t *self, int64_t now)
{
    sb_flight_t *flight;
    while ((flight = sb_inflight_due (self->inflight, now))) {
        if (flight->state == SB_FLIGHT_QUEUED)
            s_answer (self, &flight, SB_STATUS_TIMEOUT, NULL);
        else
        if (flight->state == SB_FLIGHT_RUNNING) {
            s_reply_flight (self, flight, SB_STATUS_TIMEOUT, NULL);
            flight->state = SB_FLIGHT_EXPIRED;
            self->counters.jobs_running--;
            zframe_destroy (&flight->payload);
            sb_inflight_set_due (self->inflight, flight,
                                 flight->deadline + self->config.late_grace_ms);
        }
        else {
            char service [SB_MAX_SERVICE_LEN + 1];
            memcpy (service, flight->service, sizeof service);
            sb_log_warn ("job_abandoned", "corr_id=%s service=%s: no result within the grace period",
                         flight->corr_id, service);
            s_release (self, &flight);
            s_dispatch_jobs (self, service);
        }
    }
}

//  Action refuse_workerless: answers `unavailable` for every job waiting
//  for a service whose no-worker grace has passed, and forgets the
//  departure times older than the grace (the start time then stands in,
//  which is older still).
static void
s_refuse_workerless (sb_broker_t *self, int64_t now)
{
    zlistx_t *refused = zlistx_new ();
    assert (refused);
    for (sb_queue_t *queue = (sb_queue_t *) zhashx_first (self->queues); queue;
         queue = (sb_queue_t *) zhashx_next (self->queues))
        if (sb_queue_size (queue) > 0 && s_workerless (self, sb_queue_service (queue), now))
            zlistx_add_end (refused, queue);
    for (sb_queue_t *queue = (sb_queue_t *) zlistx_first (refused); queue;
         queue = (sb_queue_t *) zlistx_next (refused)) {
        size_t count = 0;
        while (sb_queue_size (queue) > 0) {
            sb_flight_t *flight = sb_queue_pop (queue);
            s_answer (self, &flight, SB_STATUS_UNAVAILABLE, NULL);
            count++;
        }
        sb_log_warn ("jobs_unavailable", "service=%s count=%zu: no worker within %u ms",
                     sb_queue_service (queue), count, self->config.no_worker_grace_ms);
    }
    zlistx_destroy (&refused);

    zlistx_t *old = zlistx_new ();
    assert (old);
    for (int64_t *left_at = (int64_t *) zhashx_first (self->workerless); left_at;
         left_at = (int64_t *) zhashx_next (self->workerless))
        if (now - *left_at >= (int64_t) self->config.no_worker_grace_ms)
            zlistx_add_end (old, sb_unconst (zhashx_cursor (self->workerless)));
    for (const char *service = (const char *) zlistx_first (old); service;
         service = (const char *) zlistx_next (old)) {
        char name [SB_MAX_SERVICE_LEN + 1];
        snprintf (name, sizeof name, "%s", service);
        zhashx_delete (self->workerless, name);
    }
    zlistx_destroy (&old);
}

//  Action heartbeat_workers: expires silent workers and heartbeats the
//  others at their own interval; drops empty queues.
static void
s_heartbeat_workers (sb_broker_t *self, int64_t now)
{
    zlistx_t *workers = zlistx_new ();
    assert (workers);
    sb_registry_collect (self->registry, workers);
    for (sb_worker_t *worker = (sb_worker_t *) zlistx_first (workers); worker;
         worker = (sb_worker_t *) zlistx_next (workers)) {
        const char *reason = NULL;
        if (worker->unreachable)
            reason = "unreachable";
        else
        if (now >= worker->expires_at)
            reason = "expired";
        else
        if (now >= worker->heartbeat_at) {
            worker->heartbeat_at = now + worker->heartbeat_ms;
            if (s_send_worker (self, worker->identity, SB_CMD_HEARTBEAT))
                reason = "unreachable";
        }
        if (reason) {
            char service [SB_MAX_SERVICE_LEN + 1];
            memcpy (service, worker->service, sizeof service);
            s_expire_worker (self, &worker, reason);
            s_dispatch_jobs (self, service);
        }
    }
    zlistx_destroy (&workers);

    //  A queue costs memory only while it has jobs waiting
    zlistx_t *empty = zlistx_new ();
    assert (empty);
    for (sb_queue_t *queue = (sb_queue_t *) zhashx_first (self->queues); queue;
         queue = (sb_queue_t *) zhashx_next (self->queues))
        if (sb_queue_size (queue) == 0)
            zlistx_add_end (empty, sb_unconst (sb_queue_service (queue)));
    for (const char *service = (const char *) zlistx_first (empty); service;
         service = (const char *) zlistx_next (empty)) {
        char name [SB_MAX_SERVICE_LEN + 1];
        snprintf (name, sizeof name, "%s", service);
        zhashx_delete (self->queues, name);
    }
    zlistx_destroy (&empty);
}

//  One stats line per plan (sb_quota_each_plan).
static void
s_log_plan (const sb_quota_plan_stats_t *stats, void *arg)
{
    (void) arg;
    sb_log_info ("quota_plan_stats",
                 "{\"plan\":\"%s\",\"tenants\":%llu,\"admitted\":%llu,\"limited_in_flight\":%llu,"
                 "\"limited_rate\":%llu,\"limited_monthly\":%llu,\"limited_budget\":%llu}",
                 stats->plan, (unsigned long long) stats->tenants,
                 (unsigned long long) stats->admitted,
                 (unsigned long long) stats->refused [SB_REFUSAL_IN_FLIGHT],
                 (unsigned long long) stats->refused [SB_REFUSAL_RATE],
                 (unsigned long long) stats->refused [SB_REFUSAL_MONTHLY],
                 (unsigned long long) stats->refused [SB_REFUSAL_BUDGET]);
}

//  The quota counters, and a line per plan.
static void
s_log_quota_stats (sb_broker_t *self, const sb_broker_counters_t *c)
{
    if (!self->quota)
        return;
    sb_log_info ("quota_stats",
                 "{\"jobs_metered\":%llu,\"limited_in_flight\":%llu,\"limited_rate\":%llu,"
                 "\"limited_monthly\":%llu,\"limited_budget\":%llu,\"limits_received\":%llu,"
                 "\"limits_entries\":%llu,\"limits_wanted\":%llu,\"limits_loaded\":%llu,"
                 "\"usage_batches_sent\":%llu,\"usage_batches_acked\":%llu,"
                 "\"usage_batches_resent\":%llu,\"usage_acks_stale\":%llu,"
                 "\"quota_tenants\":%llu,\"quota_memory\":%zu}",
                 (unsigned long long) c->jobs_metered, (unsigned long long) c->limited_in_flight,
                 (unsigned long long) c->limited_rate, (unsigned long long) c->limited_monthly,
                 (unsigned long long) c->limited_budget, (unsigned long long) c->limits_received,
                 (unsigned long long) c->limits_entries, (unsigned long long) c->limits_wanted,
                 (unsigned long long) c->limits_loaded,
                 (unsigned long long) c->usage_batches_sent,
                 (unsigned long long) c->usage_batches_acked,
                 (unsigned long long) c->usage_batches_resent,
                 (unsigned long long) c->usage_acks_stale,
                 (unsigned long long) c->quota_tenants, sb_quota_memory (self->quota));
    sb_quota_each_plan (self->quota, s_log_plan, NULL);
}

static void
s_log_stats (sb_broker_t *self)
{
    sb_broker_counters_t c;
    sb_broker_counters (self, &c);
    sb_log_info ("broker_stats",
                 "{\"jobs_received\":%llu,\"jobs_dispatched\":%llu,\"jobs_retried\":%llu,"
                 "\"jobs_replied\":%llu,\"results_routed\":%llu,\"timeouts\":%llu,"
                 "\"worker_lost\":%llu,\"overloaded\":%llu,\"duplicates\":%llu,\"unavailable\":%llu,"
                 "\"malformed_frontend\":%llu,\"malformed_backend\":%llu,\"bad_version\":%llu,"
                 "\"late_results_dropped\":%llu,\"unknown_worker_dropped\":%llu,"
                 "\"replies_undeliverable\":%llu,\"workers_registered\":%llu,"
                 "\"workers_expired\":%llu,\"workers_disconnected\":%llu,"
                 "\"jobs_cancelled\":%llu,\"call_messages_routed\":%llu,"
                 "\"call_messages_dropped\":%llu,\"broadcasts_received\":%llu,"
                 "\"broadcasts_delivered\":%llu,\"broadcasts_undeliverable\":%llu,"
                 "\"gateways_joined\":%llu,\"gateways_expired\":%llu,\"gateways_refused\":%llu,"
                 "\"gateways\":%llu,\"worker_requests\":%llu,\"worker_requests_refused\":%llu,"
                 "\"worker_replies\":%llu,\"publishes\":%llu,\"publish_refused\":%llu,"
                 "\"workers\":%llu,\"jobs_queued\":%llu,\"jobs_running\":%llu}",
                 (unsigned long long) c.jobs_received, (unsigned long long) c.jobs_dispatched,
                 (unsigned long long) c.jobs_retried, (unsigned long long) c.jobs_replied,
                 (unsigned long long) c.results_routed, (unsigned long long) c.timeouts,
                 (unsigned long long) c.worker_lost, (unsigned long long) c.overloaded,
                 (unsigned long long) c.duplicates, (unsigned long long) c.unavailable,
                 (unsigned long long) c.malformed_frontend,
                 (unsigned long long) c.malformed_backend, (unsigned long long) c.bad_version,
                 (unsigned long long) c.late_results_dropped,
                 (unsigned long long) c.unknown_worker_dropped,
                 (unsigned long long) c.replies_undeliverable,
                 (unsigned long long) c.workers_registered, (unsigned long long) c.workers_expired,
                 (unsigned long long) c.workers_disconnected,
                 (unsigned long long) c.jobs_cancelled, (unsigned long long) c.call_messages_routed,
                 (unsigned long long) c.call_messages_dropped,
                 (unsigned long long) c.broadcasts_received, (unsigned long long) c.broadcasts_delivered,
                 (unsigned long long) c.broadcasts_undeliverable, (unsigned long long) c.gateways_joined,
                 (unsigned long long) c.gateways_expired, (unsigned long long) c.gateways_refused,
                 (unsigned long long) c.gateways, (unsigned long long) c.worker_requests,
                 (unsigned long long) c.worker_requests_refused,
                 (unsigned long long) c.worker_replies, (unsigned long long) c.publishes,
                 (unsigned long long) c.publish_refused, (unsigned long long) c.workers,
                 (unsigned long long) c.jobs_queued, (unsigned long long) c.jobs_running);
    s_log_quota_stats (self, &c);
}


//  --------------------------------------------------------------------------
//  Socket events

//  Reads up to SB_BROKER_BATCH messages from the gateways.
static void
s_frontend_ready (sb_broker_t *self)
{
    int64_t now = sb_clock_mono_ms ();
    for (int i = 0; i < SB_BROKER_BATCH; i++) {
        sb_msg_t msg = { 0 };
        zframe_t *gateway = NULL;
        int rc = sb_msg_recv (self->frontend, &msg, &gateway);
        if (rc == SB_MSG_NONE)
            break;
        if (rc == SB_MSG_MALFORMED)
            s_malformed (self, true, "undecodable");
        else
        if (rc == SB_MSG_BAD_VERSION) {
            self->counters.bad_version++;
            if (gateway && msg.corr_id [0])
                s_reply (self, false, gateway, msg.corr_id, SB_STATUS_BAD_VERSION, NULL);
        }
        else
        switch (msg.command) {
            case SB_CMD_REQUEST:
                s_touch_gateway (self, gateway, now);
                if (msg.parent [0]) {
                    //  Only workers ask on behalf of a job they hold
                    s_malformed (self, true, "request with parent");
                    s_reply (self, false, gateway, msg.corr_id, SB_STATUS_MALFORMED, NULL);
                }
                else
                    s_accept_job (self, &msg, &gateway, NULL, 0);
                break;
            case SB_CMD_CANCEL:
                s_touch_gateway (self, gateway, now);
                s_cancel_job (self, &msg, gateway, false);
                break;
            case SB_CMD_ANSWER:
                s_touch_gateway (self, gateway, now);
                s_route_answer (self, &msg);
                break;
            case SB_CMD_BROADCAST:
                s_touch_gateway (self, gateway, now);
                s_broadcast (self, &msg, gateway);
                break;
            case SB_CMD_HEARTBEAT: {
                //  Gateways hold no credit: a heartbeat keeps them known, and
                //  ours back tells them the broker lives (an unsendable one
                //  means the gateway is gone: nothing to do)
                s_touch_gateway (self, gateway, now);
                sb_msg_t beat = { 0 };
                sb_msg_set_heartbeat (&beat);
                (void) !sb_msg_send (self->frontend, &beat, gateway);
                sb_msg_reset (&beat);
                break;
            }
            case SB_CMD_DISCONNECT:
                s_forget_gateway (self, gateway);
                break;
            case SB_CMD_PUBLISH:
                //  Only workers publish; gateways BROADCAST
                s_malformed (self, true, "publish from a gateway");
                s_refuse_publish (self, &msg, NULL, "from_gateway");
                break;
            default:
                s_malformed (self, true, sb_cmd_name (msg.command));
                break;
        }
        sb_msg_reset (&msg);
        zframe_destroy (&gateway);
    }
}

//  Reads up to SB_BROKER_BATCH messages from the workers.
static void
s_backend_ready (sb_broker_t *self)
{
    for (int i = 0; i < SB_BROKER_BATCH; i++) {
        sb_msg_t msg = { 0 };
        zframe_t *identity = NULL;
        int rc = sb_msg_recv (self->backend, &msg, &identity);
        if (rc == SB_MSG_NONE)
            break;
        if (rc == SB_MSG_MALFORMED)
            s_malformed (self, false, "undecodable");
        else
        if (rc == SB_MSG_BAD_VERSION)
            self->counters.bad_version++;
        else {
            sb_worker_t *worker = sb_registry_lookup (self->registry, identity);
            if (worker)
                sb_registry_touch (worker, sb_clock_mono_ms ());
            switch (msg.command) {
                case SB_CMD_READY:
                    s_register_worker (self, &msg, identity, worker);
                    break;
                case SB_CMD_REQUEST:
                    s_accept_worker_request (self, worker, &msg, identity);
                    break;
                case SB_CMD_CANCEL:
                    if (worker)
                        s_cancel_job (self, &msg, identity, true);
                    else
                        self->counters.unknown_worker_dropped++;
                    break;
                case SB_CMD_NOTIFY:
                case SB_CMD_ASK:
                    if (worker)
                        s_route_to_gateway (self, worker, &msg);
                    else
                        self->counters.unknown_worker_dropped++;
                    break;
                case SB_CMD_HEARTBEAT:
                case SB_CMD_RESULT:
                    if (!worker) {
                        //  Forgotten (expired, or the broker restarted): make it register again
                        self->counters.unknown_worker_dropped++;
                        (void) s_send_worker (self, identity, SB_CMD_DISCONNECT);
                    }
                    else
                    if (msg.command == SB_CMD_RESULT)
                        s_route_result (self, worker, &msg);
                    break;
                case SB_CMD_LIMITS:
                    s_apply_limits (self, worker, &msg);
                    break;
                case SB_CMD_PUBLISH:
                    s_publish (self, &msg, worker);
                    break;
                case SB_CMD_USAGE_ACK:
                    if (s_quota_worker (self, worker))
                        s_usage_acked (self, &msg);
                    else
                        s_malformed (self, false, "usage_ack from a peer outside the quota service");
                    break;
                case SB_CMD_DISCONNECT:
                    if (worker) {
                        char service [SB_MAX_SERVICE_LEN + 1];
                        memcpy (service, worker->service, sizeof service);
                        s_expire_worker (self, &worker, "disconnect");
                        s_dispatch_jobs (self, service);
                    }
                    break;
                default:
                    s_malformed (self, false, sb_cmd_name (msg.command));
                    break;
            }
        }
        sb_msg_reset (&msg);
        zframe_destroy (&identity);
    }
}


//  --------------------------------------------------------------------------
//  Stopping

//  Action drain_begin: stop taking jobs; waiting jobs never ran, so the
//  gateways may safely send them again elsewhere.
static void
s_drain_begin (sb_broker_t *self, int64_t now)
{
    self->draining = true;
    self->drain_deadline = now + self->config.drain_ms;
    zlistx_t *all = zlistx_new ();
    assert (all);
    sb_inflight_collect_all (self->inflight, all);
    size_t refused = 0;
    for (sb_flight_t *flight = (sb_flight_t *) zlistx_first (all); flight;
         flight = (sb_flight_t *) zlistx_next (all))
        if (flight->state == SB_FLIGHT_QUEUED) {
            s_answer (self, &flight, SB_STATUS_OVERLOADED, NULL);
            refused++;
        }
    zlistx_destroy (&all);
    //  The last counts leave now; the loop waits (up to drain_ms) for the ack
    if (self->quota && self->usage_pending)
        self->usage_pending_at = now - SB_BROKER_USAGE_RESEND_MS;
    s_flush_usage (self, now);
    sb_log_info ("draining", "running=%llu refused=%zu drain_ms=%u",
                 (unsigned long long) self->counters.jobs_running, refused,
                 self->config.drain_ms);
}

//  Action drain_end: answers what is still running, tells workers to go.
static void
s_drain_end (sb_broker_t *self)
{
    zlistx_t *all = zlistx_new ();
    assert (all);
    sb_inflight_collect_all (self->inflight, all);
    for (sb_flight_t *flight = (sb_flight_t *) zlistx_first (all); flight;
         flight = (sb_flight_t *) zlistx_next (all)) {
        if (flight->state == SB_FLIGHT_EXPIRED)
            s_release (self, &flight);
        else
            s_answer (self, &flight, flight->state == SB_FLIGHT_RUNNING
                      ? SB_STATUS_WORKER_LOST : SB_STATUS_OVERLOADED, NULL);
    }
    zlistx_destroy (&all);
    zlistx_t *workers = zlistx_new ();
    assert (workers);
    sb_registry_collect (self->registry, workers);
    for (sb_worker_t *worker = (sb_worker_t *) zlistx_first (workers); worker;
         worker = (sb_worker_t *) zlistx_next (workers)) {
        (void) s_send_worker (self, worker->identity, SB_CMD_DISCONNECT);
        sb_registry_remove (self->registry, &worker);
    }
    zlistx_destroy (&workers);
    s_log_stats (self);
    sb_log_info ("stopped", "drained");
}


//  --------------------------------------------------------------------------
//  The loop

//  While draining: a usage batch still waits for its ack and a worker of
//  the quota service could send it.
static bool
s_usage_waiting (sb_broker_t *self)
{
    return self->usage_pending
        && sb_registry_service_size (self->registry, self->quota_service) > 0;
}

//  Handles one command from the actor pipe. Returns true to end at once.
static bool
s_pipe_ready (sb_broker_t *self, zsock_t *pipe, bool *stop_requested)
{
    zmsg_t *msg = zmsg_recv (pipe);
    if (!msg)
        return true;
    char *command = zmsg_popstr (msg);
    bool terminate = false;
    if (!command || streq (command, "$TERM"))
        terminate = true;
    else
    if (streq (command, "STOP"))
        *stop_requested = true;
    else
    if (streq (command, "COUNTERS")) {
        sb_broker_counters_t counters;
        sb_broker_counters (self, &counters);
        zframe_t *frame = zframe_new (&counters, sizeof counters);
        zframe_send (&frame, pipe, 0);
    }
    free (command);
    zmsg_destroy (&msg);
    return terminate;
}

int
sb_broker_run (sb_broker_t *self, volatile sig_atomic_t *stop, zsock_t *pipe)
{
    zmq_pollitem_t items [3] = {
        { zsock_resolve (self->frontend), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->backend), 0, ZMQ_POLLIN, 0 },
        { pipe ? zsock_resolve (pipe) : NULL, 0, ZMQ_POLLIN, 0 },
    };
    int nitems = pipe ? 3 : 2;
    bool stop_requested = false;
    int rc = 0;
    while (true) {
        int64_t now = sb_clock_mono_ms ();
        if (!self->draining && (stop_requested || (stop && *stop)))
            s_drain_begin (self, now);
        if (self->draining
        && ((self->counters.jobs_running == 0 && !s_usage_waiting (self))
            || now >= self->drain_deadline))
            break;

        int64_t wake = self->tick_at < self->usage_flush_at ? self->tick_at : self->usage_flush_at;
        int64_t next_due = sb_inflight_next_due (self->inflight);
        if (next_due < wake)
            wake = next_due;
        long timeout = wake > now ? (long) (wake - now) : 0;
        if (zmq_poll (items, nitems, timeout) < 0) {
            if (zmq_errno () == EINTR)
                continue;       //  a signal: the stop flag is checked above
            sb_log_error ("poll_failed", "error=%s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        if (pipe && (items [2].revents & ZMQ_POLLIN)
        &&  s_pipe_ready (self, pipe, &stop_requested))
            return 0;           //  $TERM: end at once, no drain
        if (items [0].revents & ZMQ_POLLIN)
            s_frontend_ready (self);
        if (items [1].revents & ZMQ_POLLIN)
            s_backend_ready (self);

        now = sb_clock_mono_ms ();
        s_expire_jobs (self, now);
        if (now >= self->tick_at) {
            s_heartbeat_workers (self, now);
            s_refuse_workerless (self, now);
            s_expire_gateways (self, now);
            s_ask_limits (self, now, false);
            self->tick_at = now + SB_BROKER_TICK_MS;
        }
        if (now >= self->usage_flush_at) {
            s_flush_usage (self, now);
            self->usage_flush_at = now + self->config.usage_flush_ms;
        }
        if (self->config.stats_ms && now >= self->stats_at) {
            s_log_stats (self);
            self->stats_at = now + self->config.stats_ms;
        }
    }
    s_drain_end (self);
    return rc;
}
