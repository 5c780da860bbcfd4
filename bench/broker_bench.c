/*  bench/broker_bench.c — sb-broker-bench: what per-tenant quotas cost the
    broker (issue 22's benchmark; bench/quotas starts the sb-broker
    processes and runs it). Two commands, each driving real sb-broker
    processes over TCP with this program's own DEALER sockets speaking
    sb_msg: gateways sending REQUESTs of cost 1, api workers answering
    every JOB at once with RESULT ok, and a fake worker of the quota
    service ("token") that answers USAGE want=1 with a LIMITS snapshot
    (one plan, "bench", that never refuses: rate 10^7 per minute, burst
    10^7, in_flight 100000, monthly 2^53) and every USAGE with USAGE_ACK.

    route     jobs routed per second by a broker started with --quotas on
              against one started with --quotas off, in one run: ROUNDS
              rounds of ROUND_MS each, the two brokers in turn (on, off,
              on, off…), WINDOW jobs in flight, TENANTS tenants in turn;
              prints each round, the medians and the ratio. Checks every
              REPLY: status ok, and the rate policy of the plan "bench" on
              the quotas-on broker's (none on the other's), so a broker that
              did not apply its quotas cannot print a figure.
    memory    the resident memory (VmRSS, /proc/PID/status) of a broker
              (--quotas on) before its quota worker answers, after a
              LIMITS snapshot of TENANTS tenants (seen applied: a job of
              the last tenant answered with its plan's policy), and after
              one job of every tenant (each tenant's bucket in use).

    Usage: sb-broker-bench route --on FRONTEND,BACKEND --off FRONTEND,BACKEND
                                 [--on-pid PID --off-pid PID] [--tenants N] [--rounds N] [--round-ms MS]
                                 [--window N] [--gateways N] [--workers N]
           sb-broker-bench memory --broker FRONTEND,BACKEND --pid PID
                                  [--tenants N]
    Exit: 0, 1 when a check failed or a broker did not answer, 2 bad usage. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_clock.h"
#include "sb_msg.h"
#include "sb_quota_msg.h"

#define S_PLAN              "bench"     /* the plan every tenant is on */
#define S_PLAN_RATE         10000000u   /* per minute: never the limit here */
#define S_PLAN_BURST        10000000u
#define S_PLAN_IN_FLIGHT    100000u
#define S_PLAN_MONTHLY      SB_MAX_QUOTA_VALUE
#define S_MAX_SOCKETS       16          /* gateways + workers of one rig, at most */
#define S_MAX_ROUNDS        21          /* --rounds */
#define S_MAX_TENANTS       1000000     /* --tenants */
#define S_MAX_WINDOW        4096        /* --window: jobs in flight */
#define S_PAYLOAD_BYTES     64          /* each REQUEST's payload */
#define S_WORKER_CREDIT     1000        /* each fake api worker's */
#define S_HEARTBEAT_MS      1000        /* the fake workers' heartbeat */
#define S_READY_HEARTBEAT_MS 10000      /* the interval READY gives: the rig not in its
                                           round is not pumped for up to a round */
#define S_TIMEOUT_MS        30000       /* each job's deadline */
#define S_READY_MS          20000       /* a broker must answer the probe within this */
#define S_DRAIN_MS          20000       /* a round's last replies must come within this */

//  One broker and the sockets this program drives it with.
typedef struct {
    const char *name;                   /* "on", "off", "memory" */
    bool quotas;                        /* the broker runs --quotas on */
    size_t gateway_count;               /* gateways [0..gateway_count) */
    size_t worker_count;                /* workers [0..worker_count) */
    zsock_t *gateways [S_MAX_SOCKETS];  /* DEALERs on the frontend */
    zsock_t *workers [S_MAX_SOCKETS];   /* DEALERs on the backend, service "api" */
    zsock_t *quota;                     /* DEALER on the backend, service "token" */
    size_t tenants;                     /* tenants named in the snapshot, used in turn */
    bool hold_snapshot;                 /* do not answer want yet (memory) */
    bool want_seen;                     /* a USAGE with want=1 came */
    bool snapshot_sent;                 /* the LIMITS snapshot went out */
    bool sending;                       /* each REPLY sends the next REQUEST */
    uint64_t next_id;                   /* correlation IDs and tenant turns */
    size_t next_gateway;                /* round robin over the gateways */
    size_t outstanding;                 /* REQUESTs not yet answered */
    uint64_t ok;                        /* REPLYs ok with the expected policy */
    uint64_t bad;                       /* any other REPLY */
    char bad_example [160];             /* the first bad REPLY, described */
    uint64_t usage_batches;             /* USAGE messages acknowledged */
    uint64_t limits_seq;                /* LIMITS seq sent last */
    int64_t heartbeat_at;               /* next worker heartbeat, monotonic ms */
    char probe_id [SB_MAX_CORR_ID_LEN + 1];     /* the probe waited for, "" = none */
    bool probe_done;                    /* its REPLY came as expected */
    long pid;                           /* the broker's PID (0: unknown): its CPU time */
} s_rig_t;

static int
s_parse_long (const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

static int
s_send (zsock_t *sock, sb_msg_t *msg)
{
    int rc = sb_msg_send (zsock_resolve (sock), msg, NULL);
    sb_msg_reset (msg);
    return rc;
}

static zsock_t *
s_dealer (const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, 100000);
    zsock_set_rcvhwm (sock, 100000);
    if (zsock_connect (sock, "%s", endpoint)) {
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

static zsock_t *
s_worker (const char *endpoint, const char *service, uint32_t credit)
{
    zsock_t *sock = s_dealer (endpoint);
    sb_msg_t msg = { 0 };
    if (!sock || sb_msg_set_ready (&msg, service, credit, S_READY_HEARTBEAT_MS) || s_send (sock, &msg)) {
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

//  "FRONTEND,BACKEND" → a rig with its sockets connected. Returns 0 or -1.
static int
s_rig_open (s_rig_t *rig, const char *name, bool quotas, const char *endpoints,
            size_t gateways, size_t workers, size_t tenants)
{
    memset (rig, 0, sizeof *rig);
    rig->name = name;
    rig->quotas = quotas;
    rig->tenants = tenants;
    const char *comma = strchr (endpoints, ',');
    if (!comma || comma == endpoints || !comma [1] || (size_t) (comma - endpoints) >= 256) {
        fprintf (stderr, "sb-broker-bench: endpoints are FRONTEND,BACKEND, not %s\n", endpoints);
        return -1;
    }
    char frontend [256];
    snprintf (frontend, sizeof frontend, "%.*s", (int) (comma - endpoints), endpoints);
    const char *backend = comma + 1;
    for (size_t i = 0; i < gateways; i++)
        if (!(rig->gateways [rig->gateway_count++] = s_dealer (frontend)))
            return -1;
    for (size_t i = 0; i < workers; i++)
        if (!(rig->workers [rig->worker_count++] = s_worker (backend, "api", S_WORKER_CREDIT)))
            return -1;
    rig->quota = s_worker (backend, "token", 1);
    rig->heartbeat_at = sb_clock_mono_ms () + S_HEARTBEAT_MS;
    return rig->quota ? 0 : -1;
}

static void
s_rig_close (s_rig_t *rig)
{
    for (size_t i = 0; i < rig->gateway_count; i++)
        zsock_destroy (&rig->gateways [i]);
    for (size_t i = 0; i < rig->worker_count; i++) {
        sb_msg_t msg = { 0 };
        sb_msg_set_disconnect (&msg);
        (void) s_send (rig->workers [i], &msg);
        zsock_destroy (&rig->workers [i]);
    }
    if (rig->quota) {
        sb_msg_t msg = { 0 };
        sb_msg_set_disconnect (&msg);
        (void) s_send (rig->quota, &msg);
        zsock_destroy (&rig->quota);
    }
}

static void
s_tenant_id (size_t index, char *buf, size_t size)
{
    snprintf (buf, size, "t%07zu", index);
}

//  Sends one REQUEST of cost 1 for `tenant` (index) with corr_id `id`.
static int
s_request (s_rig_t *rig, size_t tenant, const char *id)
{
    char tenant_id [SB_MAX_TENANT_LEN + 1];
    s_tenant_id (tenant, tenant_id, sizeof tenant_id);
    static const char body [S_PAYLOAD_BYTES] = { 0 };
    zframe_t *payload = zframe_new (body, sizeof body);
    sb_msg_t msg = { 0 };
    if (sb_msg_set_request (&msg, id, "api", tenant_id, S_TIMEOUT_MS, 0, &payload)
    ||  sb_msg_set_metering (&msg, 1, NULL, 0, 0)) {
        zframe_destroy (&payload);
        sb_msg_reset (&msg);
        return -1;
    }
    zsock_t *gateway = rig->gateways [rig->next_gateway++ % rig->gateway_count];
    if (s_send (gateway, &msg))
        return -1;
    rig->outstanding++;
    return 0;
}

static int
s_request_next (s_rig_t *rig)
{
    char id [SB_MAX_CORR_ID_LEN + 1];
    uint64_t n = rig->next_id++;
    snprintf (id, sizeof id, "%s-%llu", rig->name, (unsigned long long) n);
    return s_request (rig, (size_t) (n % rig->tenants), id);
}

//  The snapshot: the plan, then every tenant, SB_QUOTA_MAX_ENTRIES a
//  message, the last marked 2.
static int
s_send_snapshot (s_rig_t *rig)
{
    static sb_quota_entry_t entries [SB_QUOTA_MAX_ENTRIES];
    int64_t start = 0, end = 0;
    sb_quota_period (sb_clock_wall_ms () / 1000, 1, &start, &end);
    size_t total = rig->tenants + 1, done = 0;
    while (done < total) {
        size_t count = 0;
        for (; count < SB_QUOTA_MAX_ENTRIES && done < total; count++, done++) {
            sb_quota_entry_t *e = &entries [count];
            memset (e, 0, sizeof *e);
            if (done == 0) {
                e->is_plan = true;
                snprintf (e->plan.id, sizeof e->plan.id, "%s", S_PLAN);
                e->plan.rate = S_PLAN_RATE;
                e->plan.burst = S_PLAN_BURST;
                e->plan.in_flight = S_PLAN_IN_FLIGHT;
                e->plan.monthly = S_PLAN_MONTHLY;
                e->plan.weight = 1;
            }
            else {
                s_tenant_id (done - 1, e->tenant.id, sizeof e->tenant.id);
                snprintf (e->tenant.plan, sizeof e->tenant.plan, "%s", S_PLAN);
                e->tenant.anchor = 1;
                e->tenant.period = start;
                e->tenant.used = 0;
            }
        }
        zframe_t *payload = sb_quota_limits_encode (entries, count);
        sb_msg_t msg = { 0 };
        if (!payload
        ||  sb_msg_set_limits (&msg, ++rig->limits_seq, done == total ? 2 : 1, &payload)
        ||  s_send (rig->quota, &msg)) {
            zframe_destroy (&payload);
            fprintf (stderr, "sb-broker-bench: could not send LIMITS\n");
            return -1;
        }
    }
    rig->snapshot_sent = true;
    return 0;
}

//  Checks one REPLY against what the rig expects.
static void
s_on_reply (s_rig_t *rig, sb_msg_t *msg)
{
    if (rig->outstanding > 0)
        rig->outstanding--;
    bool policy = strcmp (msg->quota.scope, S_PLAN) == 0 && msg->quota.limit == S_PLAN_RATE;
    bool good = msg->status == SB_STATUS_OK && (rig->quotas ? policy : msg->quota.scope [0] == 0);
    if (rig->probe_id [0] && strcmp (msg->corr_id, rig->probe_id) == 0) {
        rig->probe_done = good;
        rig->probe_id [0] = 0;
        return;
    }
    if (good)
        rig->ok++;
    else {
        if (rig->bad++ == 0)
            snprintf (rig->bad_example, sizeof rig->bad_example,
                      "status %s, reason '%s', scope '%s', limit %llu",
                      sb_status_name (msg->status), msg->quota.reason, msg->quota.scope,
                      (unsigned long long) msg->quota.limit);
    }
}

//  Handles one message from `sock` (gateway, worker or the quota worker).
static int
s_handle (s_rig_t *rig, zsock_t *sock, int kind)
{
    sb_msg_t msg = { 0 };
    int rc = sb_msg_recv (zsock_resolve (sock), &msg, NULL);
    if (rc == SB_MSG_NONE)
        return 0;
    if (rc != SB_MSG_OK) {
        fprintf (stderr, "sb-broker-bench: %s: a malformed message from the broker\n", rig->name);
        return -1;
    }
    rc = 0;
    if (kind == 0 && msg.command == SB_CMD_REPLY) {
        s_on_reply (rig, &msg);
        if (rig->sending)
            rc = s_request_next (rig);
    }
    else
    if (kind == 1 && msg.command == SB_CMD_JOB) {
        zframe_t *payload = msg.payload;
        msg.payload = NULL;
        char id [SB_MAX_CORR_ID_LEN + 1];
        snprintf (id, sizeof id, "%s", msg.corr_id);
        sb_msg_reset (&msg);
        rc = sb_msg_set_result (&msg, id, SB_STATUS_OK, &payload);
        rc = rc? rc: s_send (sock, &msg);
    }
    else
    if (kind == 2 && msg.command == SB_CMD_USAGE) {
        if (msg.want)
            rig->want_seen = true;
        uint64_t seq = msg.seq;
        sb_msg_reset (&msg);
        rc = sb_msg_set_usage_ack (&msg, seq);
        rc = rc? rc: s_send (sock, &msg);
        rig->usage_batches++;
        if (!rc && rig->want_seen && !rig->snapshot_sent && !rig->hold_snapshot)
            rc = s_send_snapshot (rig);
    }
    sb_msg_reset (&msg);
    return rc;
}

//  Polls every socket of the rig for up to `timeout_ms`, handling what
//  comes; sends the workers' heartbeats. Returns 0 or -1.
static int
s_pump (s_rig_t *rig, int timeout_ms)
{
    zmq_pollitem_t items [2 * S_MAX_SOCKETS + 1];
    zsock_t *socks [2 * S_MAX_SOCKETS + 1];
    int kinds [2 * S_MAX_SOCKETS + 1];
    size_t n = 0;
    for (size_t i = 0; i < rig->gateway_count; i++, n++) {
        socks [n] = rig->gateways [i];
        kinds [n] = 0;
    }
    for (size_t i = 0; i < rig->worker_count; i++, n++) {
        socks [n] = rig->workers [i];
        kinds [n] = 1;
    }
    socks [n] = rig->quota;
    kinds [n++] = 2;
    for (size_t i = 0; i < n; i++)
        items [i] = (zmq_pollitem_t) { zsock_resolve (socks [i]), 0, ZMQ_POLLIN, 0 };
    int rc = zmq_poll (items, (int) n, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    for (size_t i = 0; i < n; i++)
        //  Drain each ready socket, a bounded batch at a time.
        for (int batch = 0; batch < 256 && (items [i].revents & ZMQ_POLLIN); batch++) {
            if (!(zsock_events (socks [i]) & ZMQ_POLLIN))
                break;
            if (s_handle (rig, socks [i], kinds [i]))
                return -1;
        }
    int64_t now = sb_clock_mono_ms ();
    if (now >= rig->heartbeat_at) {
        rig->heartbeat_at = now + S_HEARTBEAT_MS;
        for (size_t i = 0; i < rig->worker_count; i++) {
            sb_msg_t msg = { 0 };
            sb_msg_set_heartbeat (&msg);
            (void) s_send (rig->workers [i], &msg);
        }
        sb_msg_t msg = { 0 };
        sb_msg_set_heartbeat (&msg);
        (void) s_send (rig->quota, &msg);
    }
    return 0;
}

//  Sends a probe job for tenant `tenant` until one is answered as the rig
//  expects (quotas on: the plan's policy, so the snapshot is applied).
static int
s_probe (s_rig_t *rig, size_t tenant)
{
    int64_t deadline = sb_clock_mono_ms () + S_READY_MS;
    int attempt = 0;
    while (sb_clock_mono_ms () < deadline) {
        snprintf (rig->probe_id, sizeof rig->probe_id, "%s-probe-%d", rig->name, attempt++);
        rig->probe_done = false;
        if (s_request (rig, tenant, rig->probe_id))
            return -1;
        int64_t wait_until = sb_clock_mono_ms () + 2000;
        while (rig->probe_id [0] && sb_clock_mono_ms () < wait_until)
            if (s_pump (rig, 50))
                return -1;
        if (rig->probe_done)
            return 0;
        //  Not yet (no worker registered, defaults): a little later.
        int64_t pause = sb_clock_mono_ms () + 100;
        while (sb_clock_mono_ms () < pause)
            if (s_pump (rig, 20))
                return -1;
    }
    fprintf (stderr, "sb-broker-bench: %s: the broker never answered a probe as expected%s\n",
             rig->name, rig->quotas ? " (with the plan's policy: no snapshot applied?)" : "");
    return -1;
}

//  CPU time (user + system, all threads) of `pid` in µs from
//  /proc/PID/stat, or -1.
static double
s_cpu_us (long pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%ld/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char line [1024];
    char *got = fgets (line, sizeof line, file);
    fclose (file);
    //  The fields after the ")" that ends the command name: utime is the
    //  12th, stime the 13th.
    char *paren = got ? strrchr (line, ')') : NULL;
    if (!paren)
        return -1;
    unsigned long long utime = 0, stime = 0;
    if (sscanf (paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                &utime, &stime) != 2)
        return -1;
    return (double) (utime + stime) * 1e6 / (double) sysconf (_SC_CLK_TCK);
}

//  One measured round: WINDOW jobs in flight for `round_ms`; returns the
//  jobs answered per second in *rate, after draining the window.
static int
s_round (s_rig_t *rig, size_t window, int round_ms, double *rate, double *cpu_per_job)
{
    uint64_t ok_before = rig->ok, bad_before = rig->bad;
    double cpu_before = rig->pid ? s_cpu_us (rig->pid) : -1;
    rig->sending = true;
    int64_t start = sb_clock_mono_ms ();
    for (size_t i = 0; i < window; i++)
        if (s_request_next (rig))
            return -1;
    while (sb_clock_mono_ms () - start < round_ms)
        if (s_pump (rig, 10))
            return -1;
    uint64_t answered = rig->ok - ok_before + rig->bad - bad_before;
    int64_t elapsed = sb_clock_mono_ms () - start;
    rig->sending = false;
    int64_t deadline = sb_clock_mono_ms () + S_DRAIN_MS;
    while (rig->outstanding > 0 && sb_clock_mono_ms () < deadline)
        if (s_pump (rig, 10))
            return -1;
    if (rig->outstanding > 0) {
        fprintf (stderr, "sb-broker-bench: %s: %zu jobs never answered\n", rig->name, rig->outstanding);
        return -1;
    }
    if (rig->bad > bad_before) {
        fprintf (stderr, "sb-broker-bench: %s: %llu answers not as expected, the first: %s\n",
                 rig->name, (unsigned long long) (rig->bad - bad_before), rig->bad_example);
        return -1;
    }
    *rate = (double) answered * 1000.0 / (double) (elapsed > 0 ? elapsed : 1);
    //  The broker's CPU over the whole round, drain included, per job answered.
    double cpu_after = rig->pid ? s_cpu_us (rig->pid) : -1;
    uint64_t all = rig->ok - ok_before;
    *cpu_per_job = cpu_before >= 0 && cpu_after >= 0 && all ? (cpu_after - cpu_before) / (double) all : 0;
    return 0;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static double
s_median (const double *values, size_t count)
{
    double sorted [S_MAX_ROUNDS];
    memcpy (sorted, values, count * sizeof *values);
    qsort (sorted, count, sizeof *sorted, s_compare);
    return count % 2 ? sorted [count / 2] : (sorted [count / 2 - 1] + sorted [count / 2]) / 2;
}

static int
s_route (const char *on, const char *off, long on_pid, long off_pid, size_t tenants, size_t rounds,
         int round_ms, size_t window, size_t gateways, size_t workers)
{
    s_rig_t rigs [2];
    int rc = s_rig_open (&rigs [0], "on", true, on, gateways, workers, tenants);
    rc = rc? rc: s_rig_open (&rigs [1], "off", false, off, gateways, workers, tenants);
    rigs [0].pid = on_pid;
    rigs [1].pid = off_pid;
    //  Ready: the snapshot applied on one, a job answered on the other.
    rc = rc? rc: s_probe (&rigs [0], tenants - 1);
    rc = rc? rc: s_probe (&rigs [1], tenants - 1);
    double rates [2][S_MAX_ROUNDS], cpus [2][S_MAX_ROUNDS];
    if (!rc) {
        printf ("broker route: %zu tenants on plan %s (never refuses), cost 1, %zu jobs in flight, "
                "%zu gateways, %zu api workers, %zu rounds of %d ms each side\n",
                tenants, S_PLAN, window, gateways, workers, rounds, round_ms);
        //  A warm-up round each, not counted.
        double ignored, ignored_cpu;
        rc = s_round (&rigs [0], window, round_ms / 2, &ignored, &ignored_cpu);
        rc = rc? rc: s_round (&rigs [1], window, round_ms / 2, &ignored, &ignored_cpu);
    }
    for (size_t r = 0; !rc && r < rounds; r++) {
        rc = s_round (&rigs [0], window, round_ms, &rates [0][r], &cpus [0][r]);
        rc = rc? rc: s_round (&rigs [1], window, round_ms, &rates [1][r], &cpus [1][r]);
        if (!rc)
            printf ("round %zu: quotas on %.0f jobs/s (broker %.2f µs CPU a job), "
                    "off %.0f jobs/s (%.2f µs)\n",
                    r + 1, rates [0][r], cpus [0][r], rates [1][r], cpus [1][r]);
        fflush (stdout);
    }
    if (!rc) {
        double on_median = s_median (rates [0], rounds);
        double off_median = s_median (rates [1], rounds);
        printf ("median: quotas on %.0f jobs/s, off %.0f jobs/s; on/off %.3f (overhead %.1f%%); "
                "USAGE batches acknowledged by the fake quota worker: %llu\n",
                on_median, off_median, on_median / off_median,
                (1.0 - on_median / off_median) * 100.0,
                (unsigned long long) rigs [0].usage_batches);
        double on_cpu = s_median (cpus [0], rounds), off_cpu = s_median (cpus [1], rounds);
        if (on_pid && off_pid)
            printf ("median broker CPU a job: quotas on %.2f µs, off %.2f µs; on/off %.3f "
                    "(overhead %.1f%%)\n", on_cpu, off_cpu, on_cpu / off_cpu,
                    (on_cpu / off_cpu - 1.0) * 100.0);
        printf ("route_on=%.0f route_off=%.0f ratio=%.3f cpu_on_us=%.2f cpu_off_us=%.2f\n",
                on_median, off_median, on_median / off_median, on_cpu, off_cpu);
    }
    s_rig_close (&rigs [0]);
    s_rig_close (&rigs [1]);
    return rc ? 1 : 0;
}

//  VmRSS of `pid` in KiB, or -1.
static long
s_rss_kib (long pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%ld/status", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char line [256];
    long kib = -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, "VmRSS:", 6) == 0) {
            char *end = NULL;
            kib = strtol (line + 6, &end, 10);
            break;
        }
    fclose (file);
    return kib;
}

static int
s_memory (const char *endpoints, long pid, size_t tenants)
{
    s_rig_t rig;
    int rc = s_rig_open (&rig, "memory", true, endpoints, 1, 1, tenants);
    rig.hold_snapshot = true;
    //  The quota worker registered: the broker asks for the snapshot.
    int64_t deadline = sb_clock_mono_ms () + S_READY_MS;
    while (!rc && !rig.want_seen && sb_clock_mono_ms () < deadline)
        rc = s_pump (&rig, 50);
    if (!rc && !rig.want_seen) {
        fprintf (stderr, "sb-broker-bench: the broker never sent USAGE want=1\n");
        rc = -1;
    }
    long before = rc ? -1 : s_rss_kib (pid);
    int64_t loaded_ms = 0;
    if (!rc) {
        int64_t start = sb_clock_mono_ms ();
        rig.hold_snapshot = false;
        rc = s_send_snapshot (&rig);
        rc = rc? rc: s_probe (&rig, tenants - 1);
        loaded_ms = sb_clock_mono_ms () - start;
    }
    long loaded = rc ? -1 : s_rss_kib (pid);
    double rate = 0;
    if (!rc) {
        //  One job of every tenant, in turn (the probe was one more).
        rig.next_id = 0;
        rig.sending = true;
        size_t window = 256;
        for (size_t i = 0; i < window && !rc; i++)
            rc = s_request_next (&rig);
        int64_t start = sb_clock_mono_ms ();
        while (!rc && rig.ok + rig.bad + rig.outstanding < tenants)
            rc = s_pump (&rig, 10);
        rig.sending = false;
        deadline = sb_clock_mono_ms () + S_DRAIN_MS;
        while (!rc && rig.outstanding > 0 && sb_clock_mono_ms () < deadline)
            rc = s_pump (&rig, 10);
        if (!rc && (rig.outstanding || rig.bad)) {
            fprintf (stderr, "sb-broker-bench: %zu jobs unanswered, %llu not as expected (%s)\n",
                     rig.outstanding, (unsigned long long) rig.bad, rig.bad_example);
            rc = -1;
        }
        rate = (double) (rig.ok + rig.bad) * 1000.0 / (double) (sb_clock_mono_ms () - start + 1);
    }
    long used = rc ? -1 : s_rss_kib (pid);
    if (!rc) {
        printf ("broker memory: VmRSS %ld KiB before LIMITS; %ld KiB with %zu tenants loaded "
                "(snapshot applied in %lld ms); %ld KiB after one job of each (%.0f jobs/s)\n",
                before, loaded, tenants, (long long) loaded_ms, used, rate);
        printf ("per tenant: %.0f bytes loaded, %.0f bytes after a job each\n",
                (double) (loaded - before) * 1024.0 / (double) tenants,
                (double) (used - before) * 1024.0 / (double) tenants);
        printf ("rss_before_kib=%ld rss_loaded_kib=%ld rss_used_kib=%ld tenants=%zu\n",
                before, loaded, used, tenants);
    }
    s_rig_close (&rig);
    return rc ? 1 : 0;
}

static int
s_usage (void)
{
    fprintf (stderr,
        "usage: sb-broker-bench route --on FRONTEND,BACKEND --off FRONTEND,BACKEND\n"
        "                             [--on-pid PID --off-pid PID] [--tenants N] [--rounds N] [--round-ms MS] [--window N]\n"
        "                             [--gateways N] [--workers N]\n"
        "       sb-broker-bench memory --broker FRONTEND,BACKEND --pid PID [--tenants N]\n");
    return 2;
}

int
main (int argc, char **argv)
{
    if (argc < 2)
        return s_usage ();
    const char *command = argv [1];
    const char *on = NULL, *off = NULL, *broker = NULL;
    long tenants = 0, rounds = 5, round_ms = 2000, window = 256, gateways = 3, workers = 2, pid = 0;
    long on_pid = 0, off_pid = 0;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc)
            return s_usage ();
        const char *name = argv [i], *value = argv [i + 1];
        int rc = 0;
        if (strcmp (name, "--on") == 0)
            on = value;
        else
        if (strcmp (name, "--off") == 0)
            off = value;
        else
        if (strcmp (name, "--broker") == 0)
            broker = value;
        else
        if (strcmp (name, "--tenants") == 0)
            rc = s_parse_long (value, 1, S_MAX_TENANTS, &tenants);
        else
        if (strcmp (name, "--rounds") == 0)
            rc = s_parse_long (value, 1, S_MAX_ROUNDS, &rounds);
        else
        if (strcmp (name, "--round-ms") == 0)
            rc = s_parse_long (value, 100, 20000, &round_ms);
        else
        if (strcmp (name, "--window") == 0)
            rc = s_parse_long (value, 1, S_MAX_WINDOW, &window);
        else
        if (strcmp (name, "--gateways") == 0)
            rc = s_parse_long (value, 1, S_MAX_SOCKETS, &gateways);
        else
        if (strcmp (name, "--workers") == 0)
            rc = s_parse_long (value, 1, S_MAX_SOCKETS, &workers);
        else
        if (strcmp (name, "--pid") == 0)
            rc = s_parse_long (value, 1, 1L << 22, &pid);
        else
        if (strcmp (name, "--on-pid") == 0)
            rc = s_parse_long (value, 1, 1L << 22, &on_pid);
        else
        if (strcmp (name, "--off-pid") == 0)
            rc = s_parse_long (value, 1, 1L << 22, &off_pid);
        else
            rc = -1;
        if (rc) {
            fprintf (stderr, "sb-broker-bench: bad option %s %s\n", name, value);
            return s_usage ();
        }
    }
    zsys_init ();
    zsys_set_sndhwm (100000);
    zsys_set_rcvhwm (100000);
    if (strcmp (command, "route") == 0 && on && off)
        return s_route (on, off, on_pid, off_pid, (size_t) (tenants ? tenants : 1000), (size_t) rounds,
                        (int) round_ms, (size_t) window, (size_t) gateways, (size_t) workers);
    if (strcmp (command, "memory") == 0 && broker && pid)
        return s_memory (broker, pid, (size_t) (tenants ? tenants : 100000));
    return s_usage ();
}
