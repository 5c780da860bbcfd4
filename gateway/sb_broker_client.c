/*  gateway/sb_broker_client.c — DEALER socket to the broker on the h2o loop,
    and the in-flight table (correlation ID → waiting call).

    Lifetimes: a call lives in the table from a successful send until exactly
    one of: its REPLY arrives, its local deadline fires, or its requester
    cancels it. Each path removes it from the table and unlinks its timer
    before anything else, so no path sees a freed call.

    A heartbeat timer sends HEARTBEAT every SB_GATEWAY_HEARTBEAT_MS (and
    one at start), so the broker keeps this gateway on its broadcast list;
    the broker answers each, and any message from it marks it alive. The
    same timer notices SB_BROKER_SILENT_MS of silence (logged once), after
    which requests are refused at once (SB_BROKER_UNREACHABLE). */
#include "sb_broker_client.h"
#include "sb_clock.h"
#include "sb_job.h"
#include "sb_log.h"
#include "sb_payload.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SB_BROKER_DRAIN_BATCH   1024    /* messages read per wake-up before yielding */

struct _sb_broker_call_t {
    h2o_timeout_entry_t timer;              /* local deadline */
    sb_broker_client_t *client;             /* owner */
    char corr_id [SB_MAX_CORR_ID_LEN + 1];  /* key in the in-flight table */
    sb_broker_reply_fn *cb;                 /* who wants the outcome */
    sb_broker_event_fn *on_event;           /* who wants NOTIFY and ASK, or NULL */
    sb_broker_quota_fn *on_quota;           /* who wants the REPLY's quota group, or NULL */
    void *arg;                              /* cb's, on_event's and on_quota's argument */
};

struct _sb_broker_client_t {
    h2o_loop_t *loop;                       /* the gateway's event loop (borrowed) */
    zsock_t *sock;                          /* DEALER connected to the broker */
    h2o_socket_t *watcher;                  /* h2o's view of ZMQ_FD (never reads it) */
    zhashx_t *inflight;                     /* corr_id → sb_broker_call_t (not owned by hash) */
    uint32_t timeout_ms;                    /* job deadline sent with every REQUEST */
    h2o_timeout_t deadline;                 /* timeout_ms + grace: local deadlines */
    uint32_t long_timeout_ms;               /* job deadline of sb_broker_client_request_long */
    h2o_timeout_t long_deadline;            /* long_timeout_ms + grace */
    uint32_t http_timeout_ms;               /* job deadline of sb_broker_client_request_http */
    h2o_timeout_t http_deadline;            /* http_timeout_ms + grace */
    uint32_t webhook_timeout_ms;            /* job deadline of SB_BROKER_DEADLINE_WEBHOOK */
    h2o_timeout_t webhook_deadline;         /* webhook_timeout_ms + grace */
    h2o_timeout_t soon;                     /* 0 ms: drain again on the next loop turn */
    h2o_timeout_entry_t drain_entry;        /* linked into `soon` when a drain is due */
    uint64_t dropped;                       /* replies nobody waited for, malformed frames */
    h2o_timeout_t heartbeat;                /* SB_GATEWAY_HEARTBEAT_MS */
    h2o_timeout_entry_t heartbeat_entry;    /* linked into `heartbeat` while the client lives */
    sb_broker_broadcast_fn *on_broadcast;   /* who wants BROADCASTs, or NULL */
    void *on_broadcast_arg;                 /* its argument */
    uint64_t broadcasts_sent;               /* BROADCASTs queued to the broker */
    uint64_t broadcasts_received;           /* BROADCASTs from other gateways */
    int64_t heard_at;                       /* monotonic ms: last message from the broker (or start) */
    bool silent;                            /* the broker was held unreachable (for the log lines) */
};

static void s_drain (sb_broker_client_t *self);

//  Removes `call` from the table and its timer; the caller frees it.
static void
s_call_detach (sb_broker_call_t *call)
{
    if (h2o_timeout_is_linked (&call->timer))
        h2o_timeout_unlink (&call->timer);
    zhashx_delete (call->client->inflight, call->corr_id);
}

static void
s_call_expired (h2o_timeout_entry_t *entry)
{
    sb_broker_call_t *call = H2O_STRUCT_FROM_MEMBER (sb_broker_call_t, timer, entry);
    sb_log_warn ("call_timeout", "corr_id=%s no reply before the local deadline", call->corr_id);
    s_call_detach (call);
    call->cb (call->arg, SB_STATUS_TIMEOUT, NULL, 0);
    free (call);
}

static void
s_on_readable (h2o_socket_t *watcher, const char *err)
{
    sb_broker_client_t *self = watcher->data;
    s_drain (self);
}

static void
s_on_drain_due (h2o_timeout_entry_t *entry)
{
    sb_broker_client_t *self = H2O_STRUCT_FROM_MEMBER (sb_broker_client_t, drain_entry, entry);
    s_drain (self);
}

//  Schedules a drain on the next loop turn (after a send, or after a batch).
static void
s_drain_soon (sb_broker_client_t *self)
{
    if (!h2o_timeout_is_linked (&self->drain_entry))
        h2o_timeout_link (self->loop, &self->soon, &self->drain_entry);
}

//  Something came from the broker: it is alive.
static void
s_heard (sb_broker_client_t *self)
{
    self->heard_at = sb_clock_mono_ms ();
    if (self->silent) {
        self->silent = false;
        sb_log_info ("broker_reachable", "calls are sent again");
    }
}

//  True while the broker is heard from; logs (once) when it falls silent.
static bool
s_alive (sb_broker_client_t *self)
{
    if (sb_broker_client_reachable (self))
        return true;
    if (!self->silent) {
        self->silent = true;
        sb_log_warn ("broker_unreachable", "nothing from the broker for %u ms: tool calls are "
                     "answered unavailable at once until it answers again", SB_BROKER_SILENT_MS);
    }
    return false;
}

//  Sends HEARTBEAT now and arms the next one; notes when the broker has
//  been silent too long.
static void
s_heartbeat (sb_broker_client_t *self)
{
    (void) s_alive (self);
    sb_msg_t msg = { 0 };
    sb_msg_set_heartbeat (&msg);
    if (sb_msg_send (self->sock, &msg, NULL))
        sb_log_debug ("heartbeat_not_sent", "the broker is unreachable or slow");
    sb_msg_reset (&msg);
    h2o_timeout_link (self->loop, &self->heartbeat, &self->heartbeat_entry);
    s_drain_soon (self);
}

static void
s_on_heartbeat_due (h2o_timeout_entry_t *entry)
{
    sb_broker_client_t *self = H2O_STRUCT_FROM_MEMBER (sb_broker_client_t, heartbeat_entry, entry);
    s_heartbeat (self);
}

//  Handles one decoded message from the broker.
static void
s_dispatch (sb_broker_client_t *self, sb_msg_t *msg)
{
    const uint8_t *data = msg->payload? zframe_data (msg->payload): NULL;
    size_t size = msg->payload? zframe_size (msg->payload): 0;
    if (msg->command == SB_CMD_BROADCAST) {
        self->broadcasts_received++;
        sb_log_debug ("broadcast_received", "tenant=%s topic=%s bytes=%zu",
                      msg->tenant, msg->topic, size);
        if (self->on_broadcast)
            self->on_broadcast (self->on_broadcast_arg, msg->tenant, msg->topic, data, size);
        return;
    }
    if (msg->command == SB_CMD_NOTIFY || msg->command == SB_CMD_ASK) {
        sb_broker_call_t *call = zhashx_lookup (self->inflight, msg->corr_id);
        if (!call || !call->on_event) {
            self->dropped++;
            sb_log_info ("event_dropped", "corr_id=%s command=%s: no call waits for it",
                         msg->corr_id, sb_cmd_name (msg->command));
            return;
        }
        call->on_event (call->arg, msg->command,
                        msg->command == SB_CMD_ASK? msg->ask_id: 0, data, size);
        return;
    }
    if (msg->command != SB_CMD_REPLY) {
        if (msg->command != SB_CMD_HEARTBEAT)
            sb_log_debug ("broker_message_ignored", "command=%s", sb_cmd_name (msg->command));
        return;
    }
    sb_broker_call_t *call = zhashx_lookup (self->inflight, msg->corr_id);
    if (!call) {
        self->dropped++;
        sb_log_info ("reply_dropped", "corr_id=%s status=%s: no call waits for it",
                     msg->corr_id, sb_status_name (msg->status));
        return;
    }
    s_call_detach (call);
    //  The quota group first: the reply callback answers with it.
    if (call->on_quota && (msg->status == SB_STATUS_LIMITED || msg->quota.limit > 0))
        call->on_quota (call->arg, &msg->quota, msg->retry_after_ms);
    zframe_t *advice = NULL;
    if (msg->status == SB_STATUS_UNAVAILABLE && size == 0) {
        //  The broker's retry advice, as the result detail the status
        //  mapping reads (whole seconds, rounded up; 1 when it gave none).
        //  A payload marks the outcome as the broker's, not this gateway's
        sb_failure_t failure = { 0 };
        uint64_t seconds = msg->retry_after_ms? (msg->retry_after_ms + 999) / 1000: 1;
        failure.retry_after = (int) (seconds < SB_MAX_RETRY_AFTER_S? seconds: SB_MAX_RETRY_AFTER_S);
        char *detail = sb_payload_failure_encode (&failure);
        advice = detail? sb_job_result_encode (detail): NULL;
        free (detail);
        if (advice) {
            data = zframe_data (advice);
            size = zframe_size (advice);
        }
    }
    call->cb (call->arg, msg->status, data, size);
    zframe_destroy (&advice);
    free (call);
}

//  Reads every message waiting on the socket, up to one batch.
static void
s_drain (sb_broker_client_t *self)
{
    for (int i = 0; i < SB_BROKER_DRAIN_BATCH; i++) {
        sb_msg_t msg = { 0 };
        int rc = sb_msg_recv (self->sock, &msg, NULL);
        if (rc == SB_MSG_NONE)
            return;
        s_heard (self);         //  even a bad frame shows the broker is there
        if (rc == SB_MSG_OK)
            s_dispatch (self, &msg);
        else {
            self->dropped++;
            sb_log_warn ("broker_frame_malformed", "rc=%d: dropped", rc);
        }
        sb_msg_reset (&msg);
    }
    s_drain_soon (self);     //  more may wait; let HTTP work run first
}

sb_broker_client_t *
sb_broker_client_new (h2o_loop_t *loop, const char *endpoint, uint32_t timeout_ms)
{
    return sb_broker_client_new_long (loop, endpoint, timeout_ms, timeout_ms);
}

sb_broker_client_t *
sb_broker_client_new_long (h2o_loop_t *loop, const char *endpoint, uint32_t timeout_ms,
                           uint32_t long_timeout_ms)
{
    return sb_broker_client_new_all (loop, endpoint, timeout_ms, long_timeout_ms, timeout_ms);
}

sb_broker_client_t *
sb_broker_client_new_all (h2o_loop_t *loop, const char *endpoint, uint32_t timeout_ms,
                          uint32_t long_timeout_ms, uint32_t http_timeout_ms)
{
    sb_broker_client_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->loop = loop;
    self->heard_at = sb_clock_mono_ms ();   //  it has one silence period to answer first
    self->timeout_ms = timeout_ms;
    self->long_timeout_ms = long_timeout_ms;
    self->http_timeout_ms = http_timeout_ms;
    self->webhook_timeout_ms = http_timeout_ms;
    self->inflight = zhashx_new ();
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->inflight || !self->sock)
        goto fail;
    zsock_set_linger (self->sock, 0);
    zsock_set_sndhwm (self->sock, SB_BROKER_SNDHWM);
    zsock_set_rcvhwm (self->sock, SB_BROKER_SNDHWM);
    if (zsock_connect (self->sock, "%s", endpoint)) {
        sb_log_error ("broker_connect_failed", "endpoint=%s", endpoint);
        goto fail;
    }
    h2o_timeout_init (loop, &self->deadline, (uint64_t) timeout_ms + SB_BROKER_GRACE_MS);
    h2o_timeout_init (loop, &self->long_deadline, (uint64_t) long_timeout_ms + SB_BROKER_GRACE_MS);
    h2o_timeout_init (loop, &self->http_deadline, (uint64_t) http_timeout_ms + SB_BROKER_GRACE_MS);
    h2o_timeout_init (loop, &self->webhook_deadline, (uint64_t) http_timeout_ms + SB_BROKER_GRACE_MS);
    h2o_timeout_init (loop, &self->soon, 0);
    h2o_timeout_init (loop, &self->heartbeat, SB_GATEWAY_HEARTBEAT_MS);
    self->drain_entry.cb = s_on_drain_due;
    self->heartbeat_entry.cb = s_on_heartbeat_due;
    self->watcher = h2o_evloop_socket_create (loop, zsock_fd (self->sock), H2O_SOCKET_FLAG_DONT_READ);
    if (!self->watcher) {
        h2o_timeout_dispose (loop, &self->deadline);
        h2o_timeout_dispose (loop, &self->long_deadline);
        h2o_timeout_dispose (loop, &self->http_deadline);
        h2o_timeout_dispose (loop, &self->webhook_deadline);
        h2o_timeout_dispose (loop, &self->soon);
        h2o_timeout_dispose (loop, &self->heartbeat);
        goto fail;
    }
    self->watcher->data = self;
    h2o_socket_read_start (self->watcher, s_on_readable);
    s_heartbeat (self);         //  queued until connected: the broker knows us at once
    return self;
fail:
    zsock_destroy (&self->sock);
    zhashx_destroy (&self->inflight);
    free (self);
    return NULL;
}

void
sb_broker_client_destroy (sb_broker_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_broker_client_t *self = *self_p;
    sb_broker_call_t *call;
    while ((call = zhashx_first (self->inflight))) {
        s_call_detach (call);
        free (call);
    }
    if (h2o_timeout_is_linked (&self->drain_entry))
        h2o_timeout_unlink (&self->drain_entry);
    if (h2o_timeout_is_linked (&self->heartbeat_entry))
        h2o_timeout_unlink (&self->heartbeat_entry);
    //  Detach the fd from h2o without closing it: it belongs to libzmq.
    h2o_socket_export_t info;
    if (h2o_socket_export (self->watcher, &info) == 0)
        h2o_buffer_dispose (&info.input);
    h2o_timeout_dispose (self->loop, &self->deadline);
    h2o_timeout_dispose (self->loop, &self->long_deadline);
    h2o_timeout_dispose (self->loop, &self->http_deadline);
    h2o_timeout_dispose (self->loop, &self->webhook_deadline);
    h2o_timeout_dispose (self->loop, &self->soon);
    h2o_timeout_dispose (self->loop, &self->heartbeat);
    zsock_destroy (&self->sock);
    zhashx_destroy (&self->inflight);
    free (self);
    *self_p = NULL;
}

void
sb_broker_client_set_webhook_timeout (sb_broker_client_t *self, uint32_t timeout_ms)
{
    //  No call waits on the old timeout yet (the contract): it can be replaced.
    assert (h2o_linklist_is_empty (&self->webhook_deadline._entries));
    h2o_timeout_dispose (self->loop, &self->webhook_deadline);
    self->webhook_timeout_ms = timeout_ms;
    h2o_timeout_init (self->loop, &self->webhook_deadline, (uint64_t) timeout_ms + SB_BROKER_GRACE_MS);
}

static int
s_request (sb_broker_client_t *self, const char *service, const char *tenant, uint32_t flags,
           sb_broker_deadline_t which, const sb_broker_meter_t *meter, zframe_t **payload,
           sb_broker_reply_fn *cb, void *arg,
           sb_broker_call_t **call_p);

int
sb_broker_client_request (sb_broker_client_t *self, const char *service,
                          const char *tenant, uint32_t flags, zframe_t **payload,
                          sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **call_p)
{
    return s_request (self, service, tenant, flags, SB_BROKER_DEADLINE_CALL, NULL, payload, cb, arg,
                      call_p);
}

int
sb_broker_client_request_long (sb_broker_client_t *self, const char *service,
                               const char *tenant, uint32_t flags, zframe_t **payload,
                               sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **call_p)
{
    return s_request (self, service, tenant, flags, SB_BROKER_DEADLINE_LONG, NULL, payload, cb, arg,
                      call_p);
}

int
sb_broker_client_request_metered (sb_broker_client_t *self, const char *service,
                                  const char *tenant, uint32_t flags, sb_broker_deadline_t deadline,
                                  const sb_broker_meter_t *meter, zframe_t **payload,
                                  sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **call_p)
{
    return s_request (self, service, tenant, flags, deadline, meter, payload, cb, arg, call_p);
}

int
sb_broker_client_request_http (sb_broker_client_t *self, const char *service,
                               const char *tenant, uint32_t flags, zframe_t **payload,
                               sb_broker_reply_fn *cb, void *arg, sb_broker_call_t **call_p)
{
    return s_request (self, service, tenant, flags, SB_BROKER_DEADLINE_HTTP, NULL, payload, cb, arg,
                      call_p);
}

static int
s_request (sb_broker_client_t *self, const char *service, const char *tenant, uint32_t flags,
           sb_broker_deadline_t which, const sb_broker_meter_t *meter, zframe_t **payload,
           sb_broker_reply_fn *cb, void *arg,
           sb_broker_call_t **call_p)
{
    uint32_t timeout_ms = which == SB_BROKER_DEADLINE_LONG? self->long_timeout_ms
                        : which == SB_BROKER_DEADLINE_HTTP? self->http_timeout_ms
                        : which == SB_BROKER_DEADLINE_WEBHOOK? self->webhook_timeout_ms: self->timeout_ms;
    h2o_timeout_t *deadline = which == SB_BROKER_DEADLINE_LONG? &self->long_deadline
                            : which == SB_BROKER_DEADLINE_HTTP? &self->http_deadline
                            : which == SB_BROKER_DEADLINE_WEBHOOK? &self->webhook_deadline: &self->deadline;
    int rc = SB_BROKER_SENT;
    sb_broker_call_t *call = NULL;
    sb_msg_t msg = { 0 };

    if (!s_alive (self)) {
        rc = SB_BROKER_UNREACHABLE;
        goto out;
    }
    if (zhashx_size (self->inflight) >= SB_MAX_GATEWAY_INFLIGHT) {
        rc = SB_BROKER_FULL;
        goto out;
    }
    call = calloc (1, sizeof *call);
    if (!call) {
        rc = SB_BROKER_BUSY;
        goto out;
    }
    call->client = self;
    call->cb = cb;
    call->arg = arg;
    call->timer.cb = s_call_expired;
    sb_msg_new_corr_id (call->corr_id);
    if (sb_msg_set_request (&msg, call->corr_id, service, tenant, timeout_ms, flags, payload)
    ||  (meter && sb_msg_set_metering (&msg, meter->cost, meter->conn, meter->budget_limit,
                                       meter->budget_window_s))) {
        rc = SB_BROKER_INVALID;
        goto out;
    }
    if (sb_msg_send (self->sock, &msg, NULL)) {
        rc = SB_BROKER_BUSY;
        goto out;
    }
    //  Cannot collide: IDs are 128 random bits.
    zhashx_insert (self->inflight, call->corr_id, call);
    h2o_timeout_link (self->loop, deadline, &call->timer);
    *call_p = call;
    call = NULL;
out:
    //  Sending may have consumed the fd's edge: read again soon either way.
    s_drain_soon (self);
    if (payload)
        zframe_destroy (payload);
    sb_msg_reset (&msg);
    free (call);
    return rc;
}

void
sb_broker_client_cancel (sb_broker_client_t *self, sb_broker_call_t **call_p)
{
    if (!call_p || !*call_p)
        return;
    s_call_detach (*call_p);
    free (*call_p);
    *call_p = NULL;
}

void
sb_broker_client_on_event (sb_broker_call_t *call, sb_broker_event_fn *fn)
{
    call->on_event = fn;
}

void
sb_broker_client_on_quota (sb_broker_call_t *call, sb_broker_quota_fn *fn)
{
    call->on_quota = fn;
}

const char *
sb_broker_call_corr_id (const sb_broker_call_t *call)
{
    return call->corr_id;
}

int
sb_broker_client_abort (sb_broker_client_t *self, sb_broker_call_t **call_p)
{
    if (!call_p || !*call_p)
        return 0;
    sb_msg_t msg = { 0 };
    int rc = sb_msg_set_cancel (&msg, (*call_p)->corr_id) || sb_msg_send (self->sock, &msg, NULL)? -1: 0;
    sb_msg_reset (&msg);
    if (rc)
        sb_log_warn ("cancel_not_sent", "corr_id=%s: the job runs to its deadline", (*call_p)->corr_id);
    s_drain_soon (self);
    sb_broker_client_cancel (self, call_p);
    return rc;
}

int
sb_broker_client_answer (sb_broker_client_t *self, const char *corr_id, const char *tenant,
                         uint32_t ask_id, zframe_t **payload)
{
    int rc = SB_BROKER_SENT;
    sb_msg_t msg = { 0 };
    if (ask_id == 0 || sb_msg_set_answer (&msg, corr_id, tenant, ask_id, payload))
        rc = SB_BROKER_INVALID;
    else
    if (sb_msg_send (self->sock, &msg, NULL))
        rc = SB_BROKER_BUSY;
    s_drain_soon (self);
    if (payload)
        zframe_destroy (payload);
    sb_msg_reset (&msg);
    return rc;
}

int
sb_broker_client_broadcast (sb_broker_client_t *self, const char *tenant, const char *topic,
                            const void *payload, size_t size)
{
    int rc = SB_BROKER_SENT;
    sb_msg_t msg = { 0 };
    zframe_t *frame = size <= SB_MAX_BROADCAST_SIZE? zframe_new (payload, size): NULL;
    if (!frame || sb_msg_set_broadcast (&msg, tenant, topic, &frame))
        rc = SB_BROKER_INVALID;
    else
    if (sb_msg_send (self->sock, &msg, NULL))
        rc = SB_BROKER_BUSY;
    else
        self->broadcasts_sent++;
    s_drain_soon (self);
    zframe_destroy (&frame);
    sb_msg_reset (&msg);
    return rc;
}

void
sb_broker_client_on_broadcast (sb_broker_client_t *self, sb_broker_broadcast_fn *fn, void *arg)
{
    self->on_broadcast = fn;
    self->on_broadcast_arg = arg;
}

uint64_t
sb_broker_client_broadcasts_sent (sb_broker_client_t *self)
{
    return self->broadcasts_sent;
}

uint64_t
sb_broker_client_broadcasts_received (sb_broker_client_t *self)
{
    return self->broadcasts_received;
}

void
sb_broker_client_expire_all (sb_broker_client_t *self)
{
    sb_broker_call_t *call;
    while ((call = zhashx_first (self->inflight))) {
        s_call_detach (call);
        call->cb (call->arg, SB_STATUS_TIMEOUT, NULL, 0);
        free (call);
    }
}

bool
sb_broker_client_reachable (sb_broker_client_t *self)
{
    return sb_clock_mono_ms () - self->heard_at < (int64_t) SB_BROKER_SILENT_MS;
}

size_t
sb_broker_client_pending (sb_broker_client_t *self)
{
    return zhashx_size (self->inflight);
}

uint64_t
sb_broker_client_dropped (sb_broker_client_t *self)
{
    return self->dropped;
}
