/*  workers/sb_worker.c — the worker core: broker session (READY, heartbeats,
    liveness, reconnect with backoff), job table with deadlines, graceful
    drain. See sb_worker.h. The role does the work; this file only moves
    jobs in and results out. The questions of 2026-07-28 calls are settled
    in sb_inputs.c; the shapes of results come from payload/sb_payload.h. */
#include "sb_worker.h"
#include "sb_worker_int.h"
#include "sb_crypto.h"
#include "sb_inputs.h"
#include "sb_payload.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_DRAIN_PER_TURN   256     /* messages read before other work gets a turn */
/*  Messages queued to the broker at most: ZeroMQ's default of 1000 plus a
    full table of requests, so SB_MAX_WORKER_REQUESTS sent in one turn fit. */
#define SB_WORKER_SNDHWM        (1000 + SB_MAX_WORKER_REQUESTS)

static volatile sig_atomic_t s_interrupted = 0;

static void
s_on_signal (int signum)
{
    s_interrupted = 1;
}

void
sb_worker_handle_signals (void)
{
    zsys_handler_set (NULL);        // CZMQ must not install its own handler
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
}

static void
s_request_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

sb_worker_t *
sb_worker_new (const char *endpoint, const char *service, uint32_t credit, uint32_t heartbeat_ms)
{
    if (!endpoint || !service || strlen (service) > SB_MAX_SERVICE_LEN
    ||  credit == 0 || credit > SB_MAX_CREDIT || heartbeat_ms == 0)
        return NULL;
    sb_worker_t *self = calloc (1, sizeof (sb_worker_t));
    if (!self)
        return NULL;
    self->endpoint = strdup (endpoint);
    snprintf (self->service, sizeof self->service, "%s", service);
    self->credit = credit;
    self->heartbeat_ms = heartbeat_ms;
    self->reactor = sb_reactor_new ();
    self->jobs = zhashx_new ();
    self->requests = zhashx_new ();
    if (self->requests)
        zhashx_set_destructor (self->requests, s_request_destroy);
    self->requests_due_ms = INT64_MAX;
    self->settle = zlistx_new ();
    if (self->settle)
        zlistx_set_destructor (self->settle, (zlistx_destructor_fn *) zstr_free);
    self->reconnect_ms = 0;
    self->earliest_ms = INT64_MAX;
    self->backoff_ms = heartbeat_ms < 1000 ? heartbeat_ms : 1000;
    if (!self->endpoint || !self->reactor || !self->jobs || !self->settle || !self->requests) {
        sb_worker_destroy (&self);
        return NULL;
    }
    return self;
}

void
sb_worker_job_free (sb_worker_job_t **job_p)
{
    sb_worker_job_t *job = *job_p;
    if (!job)
        return;
    sb_job_clear (&job->spec);
    for (size_t i = 0; i < SB_MAX_ASKS_PER_JOB; i++) {
        free (job->asks [i].request);
        free (job->asks [i].answer);
    }
    json_decref (job->inputs);
    json_decref (job->used);
    free (job);
    *job_p = NULL;
}

//  Abandons every job: the role releases its state, nothing is answered.
static void
s_abandon_all (sb_worker_t *self)
{
    zlistx_t *keys = zhashx_keys (self->jobs);
    if (!keys)
        return;
    for (const char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        sb_worker_job_t *job = zhashx_lookup (self->jobs, key);
        if (!job)
            continue;
        zhashx_delete (self->jobs, key);
        if (job->started && self->role && self->role->abandon)
            self->role->abandon (self->role_state, job);
        sb_worker_job_free (&job);
    }
    zlistx_destroy (&keys);
}

void
sb_worker_destroy (sb_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_worker_t *self = *self_p;
    if (self->jobs) {
        s_abandon_all (self);
        zhashx_destroy (&self->jobs);
    }
    zlistx_destroy (&self->settle);
    zhashx_destroy (&self->requests);       //  frees them; no callback is called
    if (self->sock && self->reactor)
        sb_reactor_unwatch_socket (self->reactor, self->sock);
    zsock_destroy (&self->sock);
    sb_reactor_destroy (&self->reactor);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

void
sb_worker_set_role (sb_worker_t *self, const sb_worker_role_t *role, void *state)
{
    self->role = role;
    self->role_state = state;
}

sb_reactor_t *
sb_worker_reactor (sb_worker_t *self)
{
    return self->reactor;
}

const char *
sb_worker_service (sb_worker_t *self)
{
    return self->service;
}

void
sb_worker_stop (sb_worker_t *self)
{
    self->stopping = true;
}

size_t
sb_worker_jobs (sb_worker_t *self)
{
    return zhashx_size (self->jobs);
}

//  ---------------------------------------------------------------------
//  Sending

static int
s_send (sb_worker_t *self, sb_msg_t *msg)
{
    if (!self->sock) {
        sb_msg_reset (msg);
        return -1;
    }
    int rc = sb_msg_send (self->sock, msg, NULL);
    sb_msg_reset (msg);
    //  Any message proves we are alive: the heartbeat is only for silence
    if (rc == 0)
        self->next_heartbeat_ms = sb_clock_mono_ms () + self->heartbeat_ms;
    if (rc)
        sb_log_warn ("send_failed", "could not queue a message to the broker");
    return rc;
}

void
sb_worker_send_result (sb_worker_t *self, const char *corr_id, sb_status_t status, const char *json)
{
    zframe_t *payload = sb_job_result_encode (json);
    if (!payload) {
        status = SB_STATUS_FAILED;
        payload = sb_job_result_encode ("{\"error\":\"result too large\"}");
    }
    sb_msg_t msg = { 0 };
    if (sb_msg_set_result (&msg, corr_id, status, &payload)) {
        zframe_destroy (&payload);
        sb_log_error ("result_unsendable", "corr_id too long");
        return;
    }
    s_send (self, &msg);
}

//  Sends NOTIFY (ask_id 0) or ASK carrying JSON text in a result map.
int
sb_worker_send_call_message (sb_worker_t *self, const char *corr_id, uint32_t ask_id, const char *json)
{
    zframe_t *payload = sb_job_result_encode (json);
    if (!payload)
        return -1;
    sb_msg_t msg = { 0 };
    int rc = ask_id ? sb_msg_set_ask (&msg, corr_id, ask_id, &payload)
                    : sb_msg_set_notify (&msg, corr_id, &payload);
    zframe_destroy (&payload);
    if (rc) {
        sb_msg_reset (&msg);
        return -1;
    }
    return s_send (self, &msg);
}

void
sb_worker_send_failed (sb_worker_t *self, const char *corr_id, sb_status_t status, const char *message)
{
    sb_failure_t failure = { .message = sb_unconst (message) };
    char *text = sb_payload_failure_encode (&failure);
    sb_worker_send_result (self, corr_id, status, text ? text : "{\"error\":\"failed\"}");
    free (text);
}

static void
s_send_heartbeat (sb_worker_t *self)
{
    sb_msg_t msg = { 0 };
    sb_msg_set_heartbeat (&msg);
    s_send (self, &msg);
}

//  ---------------------------------------------------------------------
//  Session: socket, READY, liveness

static void s_on_socket (sb_reactor_t *reactor, int fd, short revents, void *arg);

static void
s_session_end (sb_worker_t *self)
{
    if (self->sock) {
        sb_reactor_unwatch_socket (self->reactor, self->sock);
        zsock_set_linger (self->sock, 0);
        zsock_destroy (&self->sock);
    }
    s_abandon_all (self);
    //  The broker will never answer what we asked on that socket: each
    //  request ends `unavailable`, at the next turn of the loop
    for (sb_worker_request_t *request = zhashx_first (self->requests); request;
         request = zhashx_next (self->requests))
        request->lost = true;
    if (zhashx_size (self->requests))
        self->requests_due_ms = 0;
}

static int
s_session_start (sb_worker_t *self)
{
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock)
        return -1;
    zsock_set_linger (self->sock, 0);
    zsock_set_sndhwm (self->sock, SB_WORKER_SNDHWM);
    zsock_set_reconnect_ivl (self->sock, 100);
    zsock_set_reconnect_ivl_max (self->sock, 2000);
    if (zsock_connect (self->sock, "%s", self->endpoint)) {
        sb_log_error ("connect_failed", "cannot connect to %s", self->endpoint);
        zsock_destroy (&self->sock);
        return -1;
    }
    if (sb_reactor_watch_socket (self->reactor, self->sock, s_on_socket, self)) {
        zsock_destroy (&self->sock);
        return -1;
    }
    sb_msg_t msg = { 0 };
    if (sb_msg_set_ready (&msg, self->service, self->credit, self->heartbeat_ms) == 0)
        s_send (self, &msg);
    int64_t now = sb_clock_mono_ms ();
    self->last_recv_ms = now;
    self->next_heartbeat_ms = now + self->heartbeat_ms;
    self->reconnect_ms = -1;
    self->sessions++;
    sb_log_debug ("session_start", "READY to %s credit=%u heartbeat_ms=%u service=%s",
                  self->endpoint, self->credit, self->heartbeat_ms, self->service);
    if (!self->registered_log) {
        self->registered_log = true;
        //  The role goes last: "token" followed by a value reads as a secret to sb_log
        sb_log_info ("ready", "registered with broker=%s credit=%u role=%s",
                     self->endpoint, self->credit, self->service);
    }
    return 0;
}

//  The broker went quiet or told us to go: start over after `wait_ms`.
static void
s_session_reset (sb_worker_t *self, uint32_t wait_ms, const char *why)
{
    sb_log_warn ("broker_lost", "%s; %zu job(s) abandoned, %zu request(s) unanswered; "
                 "reconnecting in %u ms", why, zhashx_size (self->jobs),
                 zhashx_size (self->requests), wait_ms);
    s_session_end (self);
    self->reconnect_ms = sb_clock_mono_ms () + wait_ms;
}

//  ---------------------------------------------------------------------
//  Jobs

static void s_expire_jobs (sb_worker_t *self, int64_t now);

static void
s_on_job (sb_worker_t *self, sb_msg_t *msg)
{
    if (zhashx_lookup (self->jobs, msg->corr_id)) {
        sb_log_warn ("job_duplicate", "corr_id=%s already held; dropped", msg->corr_id);
        return;
    }
    if (self->stopping) {
        sb_worker_send_failed (self, msg->corr_id, SB_STATUS_OVERLOADED, "worker is shutting down");
        return;
    }
    //  The broker enforces credit and frees a slot at the job's deadline,
    //  a moment before we see that deadline pass here: purge first, and
    //  keep only a safety limit against a broker that ignores credit.
    s_expire_jobs (self, sb_clock_mono_ms ());
    if (zhashx_size (self->jobs) >= SB_WORKER_MAX_JOBS (self->credit)) {
        sb_worker_send_failed (self, msg->corr_id, SB_STATUS_OVERLOADED, "worker credit exhausted");
        return;
    }
    if (msg->timeout_ms == 0) {
        sb_log_warn ("job_expired", "corr_id=%s arrived with no time left", msg->corr_id);
        return;
    }
    sb_worker_job_t *job = calloc (1, sizeof (sb_worker_job_t));
    if (!job) {
        sb_worker_send_failed (self, msg->corr_id, SB_STATUS_FAILED, "out of memory");
        return;
    }
    job->worker = self;
    memcpy (job->corr_id, msg->corr_id, sizeof job->corr_id);
    memcpy (job->tenant, msg->tenant, sizeof job->tenant);
    job->flags = msg->flags;
    job->attempt = msg->attempt;
    job->deadline_ms = sb_clock_mono_ms () + msg->timeout_ms;
    if (job->deadline_ms < self->earliest_ms)
        self->earliest_ms = job->deadline_ms;

    const uint8_t *data = msg->payload ? zframe_data (msg->payload) : NULL;
    size_t size = msg->payload ? zframe_size (msg->payload) : 0;
    if (!data || sb_job_decode (data, size, &job->spec) != 0 || !job->spec.op) {
        sb_log_warn ("job_malformed", "corr_id=%s payload of %zu bytes undecodable",
                     job->corr_id, size);
        sb_worker_send_failed (self, job->corr_id, SB_STATUS_FAILED, "malformed job");
        sb_worker_job_free (&job);
        return;
    }
    if (sb_inputs_load (job)) {
        sb_log_warn ("job_malformed", "corr_id=%s inputs are not a JSON object", job->corr_id);
        sb_worker_send_failed (self, job->corr_id, SB_STATUS_FAILED, "malformed job");
        sb_worker_job_free (&job);
        return;
    }
    if (zhashx_insert (self->jobs, job->corr_id, job)) {
        sb_worker_send_failed (self, job->corr_id, SB_STATUS_FAILED, "job table error");
        sb_worker_job_free (&job);
        return;
    }
    sb_log_debug ("job_start", "corr_id=%s op=%s tenant=%s timeout_ms=%u",
                  job->corr_id, job->spec.op, job->tenant, msg->timeout_ms);
    job->started = true;
    if (self->role && self->role->start)
        self->role->start (self->role_state, job);      // may end the job at once
    else
        sb_worker_job_fail (&job, "worker has no role");
}

static void
s_expire_jobs (sb_worker_t *self, int64_t now)
{
    //  Called per job and per turn: walk the jobs only when one may be due
    if (now < self->earliest_ms)
        return;
    zlistx_t *expired = NULL;
    self->earliest_ms = INT64_MAX;
    for (sb_worker_job_t *job = zhashx_first (self->jobs); job; job = zhashx_next (self->jobs)) {
        if (job->deadline_ms <= now) {
            if (!expired)
                expired = zlistx_new ();
            if (expired)
                zlistx_add_end (expired, job);
            else
                self->earliest_ms = now;        //  try again next turn
        }
        else
        if (job->deadline_ms < self->earliest_ms)
            self->earliest_ms = job->deadline_ms;
    }
    if (!expired)
        return;
    for (sb_worker_job_t *job = zlistx_first (expired); job; job = zlistx_next (expired)) {
        sb_log_info ("job_deadline", "corr_id=%s op=%s abandoned at its deadline",
                     job->corr_id, job->spec.op);
        zhashx_delete (self->jobs, job->corr_id);
        if (self->role && self->role->abandon)
            self->role->abandon (self->role_state, job);
        sb_worker_job_t *victim = job;
        sb_worker_job_free (&victim);
    }
    zlistx_destroy (&expired);
}

//  ---------------------------------------------------------------------
//  Input

//  CANCEL: the client gave up on the call. The role lets go of the job and
//  the broker gets RESULT `cancelled` so it can give our credit back.
static void
s_on_cancel (sb_worker_t *self, sb_msg_t *msg)
{
    sb_worker_job_t *job = zhashx_lookup (self->jobs, msg->corr_id);
    if (!job)
        return;             //  already finished: the broker drops that result
    sb_log_info ("job_cancelled", "corr_id=%s op=%s", job->corr_id, job->spec.op);
    zhashx_delete (self->jobs, job->corr_id);
    if (job->started && self->role && self->role->abandon)
        self->role->abandon (self->role_state, job);
    sb_worker_send_result (self, job->corr_id, SB_STATUS_CANCELLED, "{\"cancelled\":true}");
    sb_worker_job_free (&job);
}

//  ANSWER: the client's response to one of a job's asks.
static void
s_on_answer (sb_worker_t *self, sb_msg_t *msg)
{
    sb_worker_job_t *job = zhashx_lookup (self->jobs, msg->corr_id);
    if (!job)
        return;
    if (job->inputs) {
        //  Its questions go back as an input-required result, never as ASK.
        sb_log_warn ("answer_unexpected", "corr_id=%s ask=%u: a 2026-07-28 job asks no ANSWER",
                     job->corr_id, msg->ask_id);
        return;
    }
    for (size_t i = 0; i < SB_MAX_ASKS_PER_JOB; i++) {
        if (job->asks [i].id != msg->ask_id)
            continue;
        sb_job_result_t response = { 0 };
        if (!msg->payload
        ||  sb_job_result_decode (zframe_data (msg->payload), zframe_size (msg->payload), &response)) {
            sb_log_warn ("answer_malformed", "corr_id=%s ask=%u", job->corr_id, msg->ask_id);
            return;
        }
        sb_worker_answer_fn *on_answer = job->asks [i].on_answer;
        void *arg = job->asks [i].arg;
        job->asks [i].id = 0;               //  free the slot before the callback may end the job
        on_answer (job, response.result, arg);
        sb_job_result_clear (&response);
        return;
    }
}

//  REPLY: the outcome of one of our requests to another service.
static void
s_on_reply (sb_worker_t *self, sb_msg_t *msg)
{
    sb_worker_request_t *request = zhashx_lookup (self->requests, msg->corr_id);
    if (!request) {
        self->replies_dropped++;
        sb_log_debug ("reply_dropped", "corr_id=%s status=%s: no request of ours waits for it "
                      "(%llu so far)", msg->corr_id, sb_status_name (msg->status),
                      (unsigned long long) self->replies_dropped);
        return;
    }
    sb_job_result_t result = { 0 };
    if ((msg->status == SB_STATUS_OK || msg->status == SB_STATUS_FAILED)
    &&  msg->payload && zframe_size (msg->payload)
    &&  sb_job_result_decode (zframe_data (msg->payload), zframe_size (msg->payload), &result))
        sb_log_warn ("reply_malformed", "corr_id=%s status=%s: result undecodable",
                     msg->corr_id, sb_status_name (msg->status));
    sb_worker_reply_fn *on_reply = request->on_reply;
    void *arg = request->arg;
    sb_log_debug ("request_done", "corr_id=%s status=%s", msg->corr_id,
                  sb_status_name (msg->status));
    //  Forget it before the callback, which may ask again or cancel others
    zhashx_delete (self->requests, msg->corr_id);
    on_reply (msg->status, result.result, msg->retry_after_ms, arg);
    //  A reply may carry a secret (a tenant's credential): wipe both
    //  copies before they are freed.
    if (result.result)
        sb_crypto_wipe (result.result, strlen (result.result));
    sb_job_result_clear (&result);
    if (msg->payload)
        sb_crypto_wipe (zframe_data (msg->payload), zframe_size (msg->payload));
}

//  USAGE: counts to store, or (want) a request for the limits; the
//  quota service's handler takes the payload.
static void
s_on_usage (sb_worker_t *self, sb_msg_t *msg)
{
    if (!self->on_usage) {
        self->usage_dropped++;
        sb_log_warn ("usage_dropped", "seq=%llu from broker=%s: this role stores no usage "
                     "(%llu so far)", (unsigned long long) msg->seq, msg->broker_id,
                     (unsigned long long) self->usage_dropped);
        return;
    }
    zframe_t *payload = msg->payload;
    msg->payload = NULL;
    self->on_usage (self->usage_arg, msg->seq, msg->want != 0, msg->broker_id, &payload);
    zframe_destroy (&payload);          //  the handler's, unless it forgot
}

//  Ends the requests whose session ended (unavailable) or whose deadline
//  plus grace passed (timeout). Callbacks may send or cancel requests.
static void
s_expire_requests (sb_worker_t *self, int64_t now)
{
    if (now < self->requests_due_ms)
        return;
    self->requests_due_ms = INT64_MAX;
    zlistx_t *due = zlistx_new ();
    if (!due) {
        self->requests_due_ms = now;            //  try again next turn
        return;
    }
    zlistx_set_destructor (due, (zlistx_destructor_fn *) zstr_free);
    for (sb_worker_request_t *request = zhashx_first (self->requests); request;
         request = zhashx_next (self->requests)) {
        if (request->lost || request->deadline_ms <= now) {
            char *corr_id = strdup (request->corr_id);
            if (corr_id)
                zlistx_add_end (due, corr_id);
            else
                self->requests_due_ms = now;    //  try again next turn
        }
        else
        if (request->deadline_ms < self->requests_due_ms)
            self->requests_due_ms = request->deadline_ms;
    }
    for (char *corr_id = zlistx_first (due); corr_id; corr_id = zlistx_next (due)) {
        //  A callback before may have cancelled this one
        sb_worker_request_t *request = zhashx_lookup (self->requests, corr_id);
        if (!request)
            continue;
        sb_status_t status = request->lost? SB_STATUS_UNAVAILABLE: SB_STATUS_TIMEOUT;
        sb_log_info ("request_ended", "corr_id=%s %s: no REPLY will come", corr_id,
                     sb_status_name (status));
        sb_worker_reply_fn *on_reply = request->on_reply;
        void *arg = request->arg;
        zhashx_delete (self->requests, corr_id);
        on_reply (status, NULL, 0, arg);
    }
    zlistx_destroy (&due);
}

static void
s_handle (sb_worker_t *self, sb_msg_t *msg)
{
    switch (msg->command) {
        case SB_CMD_REPLY:
            s_on_reply (self, msg);
            break;
        case SB_CMD_JOB:
            s_on_job (self, msg);
            break;
        case SB_CMD_CANCEL:
            s_on_cancel (self, msg);
            break;
        case SB_CMD_ANSWER:
            s_on_answer (self, msg);
            break;
        case SB_CMD_USAGE:
            s_on_usage (self, msg);
            break;
        case SB_CMD_HEARTBEAT:
            break;
        case SB_CMD_DISCONNECT:
            //  The broker does not know us (restarted, or expired us)
            if (!self->stopping)
                s_session_reset (self, 0, "broker sent DISCONNECT");
            break;
        default:
            sb_log_warn ("unexpected_command", "%s from broker dropped", sb_cmd_name (msg->command));
            break;
    }
}

//  Reads until the socket is empty: ZeroMQ signals edge-style.
static void
s_drain (sb_worker_t *self)
{
    for (int count = 0; self->sock && count < SB_MAX_DRAIN_PER_TURN; count++) {
        sb_msg_t msg = { 0 };
        int rc = sb_msg_recv (self->sock, &msg, NULL);
        if (rc == SB_MSG_NONE)
            break;
        self->last_recv_ms = sb_clock_mono_ms ();
        self->backoff_ms = self->heartbeat_ms < 1000 ? self->heartbeat_ms : 1000;
        if (rc == SB_MSG_OK)
            s_handle (self, &msg);
        else {
            self->malformed++;
            sb_log_warn ("frame_malformed", "dropped a %s message from the broker (%llu so far)",
                         rc == SB_MSG_BAD_VERSION ? "wrong-version" : "malformed",
                         (unsigned long long) self->malformed);
        }
        sb_msg_reset (&msg);
    }
}

static void
s_on_socket (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    s_drain ((sb_worker_t *) arg);
}

static bool
s_socket_readable (sb_worker_t *self)
{
    return self->sock && (zsock_events (self->sock) & ZMQ_POLLIN);
}

//  Heartbeats, liveness, reconnect and deadlines; returns the next due time.
static int64_t
s_tick (sb_worker_t *self)
{
    int64_t now = sb_clock_mono_ms ();
    if (self->sock) {
        int64_t silent = now - self->last_recv_ms;
        if (silent >= (int64_t) SB_HEARTBEAT_LIVENESS * self->heartbeat_ms && !self->stopping) {
            uint32_t wait = self->backoff_ms;
            self->backoff_ms = wait * 2 > SB_WORKER_MAX_BACKOFF_MS
                             ? SB_WORKER_MAX_BACKOFF_MS : wait * 2;
            s_session_reset (self, wait, "no message from the broker");
        }
        else
        if (now >= self->next_heartbeat_ms) {
            s_send_heartbeat (self);
            self->next_heartbeat_ms = now + self->heartbeat_ms;
        }
    }
    if (!self->sock && self->reconnect_ms >= 0 && now >= self->reconnect_ms && !self->stopping) {
        if (s_session_start (self)) {
            self->reconnect_ms = now + SB_WORKER_MAX_BACKOFF_MS;
            sb_log_error ("session_failed", "cannot open a socket; retrying");
        }
    }
    s_expire_jobs (self, now);
    s_expire_requests (self, now);
    sb_inputs_settle_all (self);

    int64_t due = now + self->heartbeat_ms;
    if (self->sock) {
        if (self->next_heartbeat_ms < due)
            due = self->next_heartbeat_ms;
        int64_t dead = self->last_recv_ms + (int64_t) SB_HEARTBEAT_LIVENESS * self->heartbeat_ms;
        if (dead < due)
            due = dead;
    }
    else
    if (self->reconnect_ms >= 0 && self->reconnect_ms < due)
        due = self->reconnect_ms;
    if (self->earliest_ms < due)
        due = self->earliest_ms;
    if (self->requests_due_ms < due)
        due = self->requests_due_ms;
    return due;
}

static void
s_on_timer (sb_reactor_t *reactor, void *arg)
{
    //  Work happens in s_tick, called every turn; the timer only wakes us
}

int
sb_worker_run (sb_worker_t *self)
{
    self->timer = sb_reactor_timer_new (self->reactor, s_on_timer, self);
    if (self->timer < 0 || s_session_start (self))
        return -1;
    int64_t drain_until = -1;
    while (true) {
        if (s_interrupted && !self->stopping) {
            self->stopping = true;
            sb_log_info ("draining", "stop requested; %zu job(s) in flight", zhashx_size (self->jobs));
        }
        if (self->stopping) {
            if (drain_until < 0)
                drain_until = sb_clock_mono_ms () + SB_MAX_WORKER_DRAIN_MS;
            if (zhashx_size (self->jobs) == 0 || sb_clock_mono_ms () >= drain_until)
                break;
        }
        int64_t due = s_tick (self);
        sb_reactor_timer_set (self->reactor, self->timer, due);
        if (sb_reactor_run_once (self->reactor, -1)) {
            sb_log_error ("poll_failed", "zmq_poll: %s", zmq_strerror (errno));
            return -1;
        }
        //  Sends may have consumed the edge: read whatever is waiting
        while (s_socket_readable (self))
            s_drain (self);
    }
    s_abandon_all (self);
    if (self->sock) {
        sb_msg_t msg = { 0 };
        sb_msg_set_disconnect (&msg);
        s_send (self, &msg);
        sb_reactor_unwatch_socket (self->reactor, self->sock);
        zsock_set_linger (self->sock, SB_WORKER_DRAIN_LINGER_MS);
        zsock_destroy (&self->sock);
    }
    sb_log_info ("stopped", "drained; role=%s", self->service);
    return 0;
}

//  ---------------------------------------------------------------------
//  Job accessors and completion

const char *
sb_worker_job_corr_id (const sb_worker_job_t *job)
{
    return job->corr_id;
}

const char *
sb_worker_job_tenant (const sb_worker_job_t *job)
{
    return job->tenant;
}

const sb_job_t *
sb_worker_job_spec (const sb_worker_job_t *job)
{
    return &job->spec;
}

int64_t
sb_worker_job_deadline (const sb_worker_job_t *job)
{
    return job->deadline_ms;
}

uint32_t
sb_worker_job_flags (const sb_worker_job_t *job)
{
    return job->flags;
}

uint32_t
sb_worker_job_attempt (const sb_worker_job_t *job)
{
    return job->attempt;
}

sb_worker_t *
sb_worker_job_worker (const sb_worker_job_t *job)
{
    return job->worker;
}

void
sb_worker_job_set_data (sb_worker_job_t *job, void *data)
{
    job->data = data;
}

void *
sb_worker_job_data (const sb_worker_job_t *job)
{
    return job->data;
}

void
sb_worker_job_done (sb_worker_job_t **job_p, sb_status_t status, const char *result_json)
{
    if (!job_p || !*job_p)
        return;
    sb_worker_job_t *job = *job_p;
    sb_worker_t *self = job->worker;
    if (zhashx_lookup (self->jobs, job->corr_id) == job) {
        zhashx_delete (self->jobs, job->corr_id);
        if (sb_clock_mono_ms () < job->deadline_ms)
            sb_worker_send_result (self, job->corr_id, status, result_json ? result_json : "null");
        else
            sb_log_info ("job_late", "corr_id=%s finished after its deadline; dropped", job->corr_id);
        sb_log_debug ("job_done", "corr_id=%s status=%s", job->corr_id, sb_status_name (status));
    }
    sb_worker_job_free (job_p);
}

void
sb_worker_job_fail (sb_worker_job_t **job_p, const char *message)
{
    if (!job_p || !*job_p)
        return;
    sb_failure_t failure = { .message = sb_unconst (message) };
    char *text = sb_payload_failure_encode (&failure);
    sb_worker_job_done (job_p, SB_STATUS_FAILED, text ? text : "{\"error\":\"failed\"}");
    free (text);
}

void
sb_worker_job_fail_unknown_op (sb_worker_job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    char message [SB_MAX_OP_LEN + 32];
    snprintf (message, sizeof message, "unknown op %s", sb_worker_job_spec (*job_p)->op);
    sb_worker_job_fail (job_p, message);
}

int
sb_worker_job_notify (sb_worker_job_t *job, const char *notification_json)
{
    if (!job || !notification_json)
        return -1;
    return sb_worker_send_call_message (job->worker, job->corr_id, 0, notification_json);
}

int
sb_worker_job_promote (sb_worker_job_t *job)
{
    if (!job)
        return -1;
    if (job->promoted)
        return 0;
    if (sb_worker_send_call_message (job->worker, job->corr_id, 0, SB_PAYLOAD_PROMOTE_JSON))
        return -1;
    job->promoted = true;
    sb_log_debug ("job_promote", "corr_id=%s", job->corr_id);
    return 0;
}

int
sb_worker_job_ask_key (sb_worker_job_t *job, const char *key, const char *request_json,
                       sb_worker_answer_fn *on_answer, void *arg)
{
    if (!job || !request_json || !on_answer)
        return -1;
    for (size_t i = 0; i < SB_MAX_ASKS_PER_JOB; i++) {
        if (job->asks [i].id)
            continue;
        uint32_t id = job->last_ask_id + 1;
        if (job->inputs ? sb_inputs_ask (job, i, id, key, request_json)
                        : sb_worker_send_call_message (job->worker, job->corr_id, id, request_json))
            return -1;
        job->last_ask_id = id;
        job->asks [i].id = id;
        job->asks [i].on_answer = on_answer;
        job->asks [i].arg = arg;
        return (int) id;
    }
    return -1;
}

int
sb_worker_job_ask (sb_worker_job_t *job, const char *request_json,
                   sb_worker_answer_fn *on_answer, void *arg)
{
    return sb_worker_job_ask_key (job, NULL, request_json, on_answer, arg);
}

uint32_t
sb_worker_job_round (const sb_worker_job_t *job)
{
    return job->inputs ? job->spec.round : 0;
}

void
sb_worker_job_fail_rpc (sb_worker_job_t **job_p, const char *error_json)
{
    if (!job_p || !*job_p)
        return;
    json_t *error = error_json ? json_loads (error_json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    sb_failure_t failure = {
        .message = sb_unconst (json_string_value (json_object_get (error, "message"))),
        .rpc_error = error
    };
    char *text = sb_payload_rpc_error_ok (error) ? sb_payload_failure_encode (&failure) : NULL;
    if (text)
        sb_worker_job_done (job_p, SB_STATUS_FAILED, text);
    else
        sb_worker_job_fail (job_p, "the tool could not be run");
    free (text);
    json_decref (error);
}

//  ---------------------------------------------------------------------
//  Asking another service

int64_t
sb_worker_request (sb_worker_job_t *parent, const char *service, const sb_job_t *job,
                   uint32_t timeout_ms, uint32_t flags, sb_worker_reply_fn *on_reply,
                   void *arg)
{
    if (!parent || !service || !job || !on_reply || timeout_ms == 0)
        return -1;
    sb_worker_t *self = parent->worker;
    if (!self->sock) {
        sb_log_warn ("request_refused", "parent=%s service=%s: no connection to the broker",
                     parent->corr_id, service);
        return -1;
    }
    if (strcmp (service, self->service) == 0) {
        sb_log_warn ("request_refused", "parent=%s: a worker may not ask its own service %s",
                     parent->corr_id, service);
        return -1;
    }
    if (zhashx_size (self->requests) >= SB_MAX_WORKER_REQUESTS) {
        sb_log_warn ("request_refused", "parent=%s service=%s: %u requests in flight",
                     parent->corr_id, service, SB_MAX_WORKER_REQUESTS);
        return -1;
    }
    //  The broker cuts the deadline to the parent's time left; so do we,
    //  so our timer does not outlive what the broker will wait
    int64_t now = sb_clock_mono_ms ();
    int64_t left = parent->deadline_ms - now;
    if (left <= 0) {
        sb_log_warn ("request_refused", "parent=%s service=%s: the parent has no time left",
                     parent->corr_id, service);
        return -1;
    }
    if ((int64_t) timeout_ms > left)
        timeout_ms = (uint32_t) left;

    sb_worker_request_t *request = calloc (1, sizeof (sb_worker_request_t));
    if (!request)
        return -1;
    sb_msg_new_corr_id (request->corr_id);
    request->id = ++self->last_request_id;
    request->deadline_ms = now + timeout_ms + SB_WORKER_REQUEST_GRACE_MS;
    request->on_reply = on_reply;
    request->arg = arg;

    zframe_t *payload = sb_job_encode (job);
    sb_msg_t msg = { 0 };
    int rc = payload ? sb_msg_set_worker_request (&msg, request->corr_id, service, parent->tenant,
                                                  timeout_ms, flags, parent->corr_id, &payload)
                     : -1;
    zframe_destroy (&payload);
    if (rc) {
        sb_msg_reset (&msg);
        sb_log_warn ("request_refused", "parent=%s service=%s: the job does not encode",
                     parent->corr_id, service);
        free (request);
        return -1;
    }
    if (zhashx_lookup (self->requests, request->corr_id)
    ||  zhashx_insert (self->requests, request->corr_id, request)) {
        sb_msg_reset (&msg);
        free (request);
        return -1;
    }
    if (s_send (self, &msg)) {
        zhashx_delete (self->requests, request->corr_id);
        return -1;
    }
    if (request->deadline_ms < self->requests_due_ms)
        self->requests_due_ms = request->deadline_ms;
    sb_log_debug ("request_sent", "corr_id=%s parent=%s service=%s op=%s timeout_ms=%u",
                  request->corr_id, parent->corr_id, service, job->op, timeout_ms);
    return request->id;
}

void
sb_worker_request_cancel (sb_worker_t *self, int64_t id)
{
    if (!self || id <= 0)
        return;
    for (sb_worker_request_t *request = zhashx_first (self->requests); request;
         request = zhashx_next (self->requests)) {
        if (request->id == id) {
            sb_log_debug ("request_forgotten", "corr_id=%s", request->corr_id);
            zhashx_delete (self->requests, request->corr_id);
            return;
        }
    }
}

size_t
sb_worker_requests (sb_worker_t *self)
{
    return zhashx_size (self->requests);
}

//  ---------------------------------------------------------------------
//  Quotas: the quota service's messages

void
sb_worker_on_usage (sb_worker_t *self, sb_worker_usage_fn *fn, void *arg)
{
    self->on_usage = fn;
    self->usage_arg = arg;
}

int
sb_worker_send_limits (sb_worker_t *self, uint64_t seq, uint32_t snapshot, zframe_t **payload)
{
    sb_msg_t msg = { 0 };
    if (!self->sock || sb_msg_set_limits (&msg, seq, snapshot, payload)) {
        zframe_destroy (payload);
        sb_msg_reset (&msg);
        return -1;
    }
    return s_send (self, &msg);
}

uint64_t
sb_worker_sessions (sb_worker_t *self)
{
    return self->sessions;
}

int
sb_worker_send_usage_ack (sb_worker_t *self, uint64_t seq)
{
    sb_msg_t msg = { 0 };
    if (!self->sock || sb_msg_set_usage_ack (&msg, seq)) {
        sb_msg_reset (&msg);
        return -1;
    }
    return s_send (self, &msg);
}

//  ---------------------------------------------------------------------
//  Publishing: news for every gateway (PROTOCOL.md "Webhooks")

int
sb_worker_publish (sb_worker_t *self, const char *tenant, const char *topic,
                   const void *payload, size_t len)
{
    if (!self->sock || len > SB_MAX_BROADCAST_SIZE || (len && !payload))
        return -1;
    zframe_t *frame = zframe_new (payload, len);
    if (!frame)
        return -1;
    sb_msg_t msg = { 0 };
    if (sb_msg_set_publish (&msg, tenant, topic, &frame)) {
        zframe_destroy (&frame);
        sb_msg_reset (&msg);
        return -1;
    }
    return s_send (self, &msg);
}
