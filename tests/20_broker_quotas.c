/*  tests/20_broker_quotas.c — the broker's quotas end to end in-process
    (PROTOCOL.md "Quotas"): an sb_broker_actor with an injected wall clock,
    DEALER sockets playing gateways, an `api` worker and workers of the
    quota service, all speaking sb_msg. Covers: the `limited` REPLY's shape
    and the rate policy on every REPLY of a metered job; rate exactness
    from 3 gateway sockets at once (never more than burst + rate × t);
    the in-flight cap and its release; LIMITS applied, plan changes, LIMITS
    from another service refused; USAGE want=1 when the first quota worker
    registers; the USAGE flush, its ack, its resend with the same seq and
    the last flush on drain; a month rollover with the injected clock;
    upstream budgets; plan weights in the fair queues; a worker's metered
    REQUEST refused; quotas off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"
#include "sb_clock.h"
#include "sb_quota.h"
#include "sb_quota_msg.h"

#define S_JAN_FIRST     1767225600ll    /* 2026-01-01T00:00:00Z */
#define S_JAN_LAST_S    1769903999ll    /* 2026-01-31T23:59:59Z */
#define S_FEB_FIRST     1769904000ll    /* 2026-02-01T00:00:00Z */
#define S_MAR_FIRST     1772323200ll    /* 2026-03-01T00:00:00Z */
#define S_USAGE_WAIT_MS 8000            /* a resend comes after SB_BROKER_USAGE_RESEND_MS */

//  The wall clock the broker reads (Unix ms), moved by the tests.
static int64_t s_wall_ms = S_JAN_LAST_S * 1000;

static int64_t
s_fake_wall (void *arg)
{
    return __atomic_load_n ((int64_t *) arg, __ATOMIC_SEQ_CST);
}

static void
s_set_wall (int64_t ms)
{
    __atomic_store_n (&s_wall_ms, ms, __ATOMIC_SEQ_CST);
}

//  A config with the fake wall clock, defaults rate/burst/in-flight as given.
static void
s_config (sb_broker_config_t *config, uint32_t rate, uint32_t burst, uint32_t in_flight)
{
    tb_config (config);
    config->wall_ms = s_fake_wall;
    config->wall_arg = &s_wall_ms;
    config->default_rate = rate;
    config->default_burst = burst;
    config->default_in_flight = in_flight;
    config->usage_flush_ms = 60000;     //  a test that wants flushes lowers it
    config->quota_service = "token";
}

static void
s_send (zsock_t *sock, sb_msg_t *msg)
{
    assert_int_equal (sb_msg_send (sock, msg, NULL), 0);
    sb_msg_reset (msg);
}

//  A metered REQUEST for service "api".
static void
s_metered (zsock_t *gateway, const char *corr_id, const char *tenant, uint32_t cost,
           const char *conn, uint32_t budget_limit, uint32_t budget_window_s)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new ("call", 4);
    assert_int_equal (sb_msg_set_request (&msg, corr_id, "api", tenant, 10000, 0, &payload), 0);
    assert_int_equal (sb_msg_set_metering (&msg, cost, conn, budget_limit, budget_window_s), 0);
    s_send (gateway, &msg);
}

//  The next message on `sock` is `command` (heartbeats skipped).
static void
s_expect (zsock_t *sock, sb_msg_t *msg, sb_cmd_t command, int timeout_ms)
{
    sb_msg_reset (msg);
    assert_int_equal (tb_recv (sock, msg, timeout_ms, true), SB_MSG_OK);
    assert_int_equal (msg->command, command);
}

//  Nothing but heartbeats arrives on `sock` for TB_QUIET_MS.
static void
s_expect_quiet (zsock_t *sock)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (sock, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
}

//  The worker takes one JOB and answers it ok; returns nothing.
static void
s_serve_one (zsock_t *worker, char *corr_id, size_t size)
{
    sb_msg_t msg = { 0 };
    s_expect (worker, &msg, SB_CMD_JOB, TB_WAIT_MS);
    snprintf (corr_id, size, "%s", msg.corr_id);
    tb_result (worker, msg.corr_id, SB_STATUS_OK, "done");
    sb_msg_reset (&msg);
}

//  A metered REQUEST (as s_metered) that the worker `api` serves; the
//  REPLY, left in `msg`, is ok.
static void
s_call_ok (zsock_t *gateway, zsock_t *api, sb_msg_t *msg, const char *corr_id,
           const char *tenant, uint32_t cost, const char *conn, uint32_t budget_limit,
           uint32_t budget_window_s)
{
    char served [SB_MAX_CORR_ID_LEN + 1];
    s_metered (gateway, corr_id, tenant, cost, conn, budget_limit, budget_window_s);
    s_serve_one (api, served, sizeof served);
    s_expect (gateway, msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_int_equal (msg->status, SB_STATUS_OK);
}

//  A metered REQUEST (as s_metered) the broker refuses at once; the REPLY,
//  left in `msg`, is limited.
static void
s_call_limited (zsock_t *gateway, sb_msg_t *msg, const char *corr_id, const char *tenant,
                uint32_t cost, const char *conn, uint32_t budget_limit,
                uint32_t budget_window_s)
{
    s_metered (gateway, corr_id, tenant, cost, conn, budget_limit, budget_window_s);
    s_expect (gateway, msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_int_equal (msg->status, SB_STATUS_LIMITED);
}

//  Room for the entries of one USAGE; the caller frees it.
static sb_usage_entry_t *
s_entries_new (void)
{
    sb_usage_entry_t *entries = (sb_usage_entry_t *) calloc (SB_QUOTA_MAX_ENTRIES,
                                                             sizeof (sb_usage_entry_t));
    assert_non_null (entries);
    return entries;
}

//  Ends a test: resets `msg`, closes the quota worker (NULL: none), the
//  gateway and the api worker, stops the broker.
static void
s_stop (tb_broker_t **broker, sb_msg_t *msg, zsock_t **token, zsock_t **gateway, zsock_t **api)
{
    sb_msg_reset (msg);
    if (token)
        zsock_destroy (token);
    zsock_destroy (gateway);
    zsock_destroy (api);
    tb_broker_stop (broker);
}

static sb_quota_entry_t
s_plan (const char *id, uint32_t rate, uint32_t burst, uint32_t in_flight, uint64_t monthly,
        uint32_t weight)
{
    sb_quota_entry_t entry;
    memset (&entry, 0, sizeof entry);
    entry.is_plan = true;
    snprintf (entry.plan.id, sizeof entry.plan.id, "%s", id);
    entry.plan.rate = rate;
    entry.plan.burst = burst;
    entry.plan.in_flight = in_flight;
    entry.plan.monthly = monthly;
    entry.plan.weight = weight;
    return entry;
}

static sb_quota_entry_t
s_tenant (const char *id, const char *plan, uint32_t anchor, int64_t period, uint64_t used)
{
    sb_quota_entry_t entry;
    memset (&entry, 0, sizeof entry);
    snprintf (entry.tenant.id, sizeof entry.tenant.id, "%s", id);
    snprintf (entry.tenant.plan, sizeof entry.tenant.plan, "%s", plan);
    entry.tenant.anchor = anchor;
    entry.tenant.period = period;
    entry.tenant.used = used;
    return entry;
}

//  Sends LIMITS and waits until the broker counted it applied.
static void
s_limits (tb_broker_t *broker, zsock_t *quota_worker, uint64_t seq, uint32_t snapshot,
          const sb_quota_entry_t *entries, size_t count)
{
    uint64_t before = tb_counters (broker).limits_received;
    zframe_t *payload = sb_quota_limits_encode (entries, count);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_limits (&msg, seq, snapshot, &payload), 0);
    s_send (quota_worker, &msg);
    assert_true (TB_WAIT (broker, limits_received, before + 1));
}

//  Receives USAGE on the quota worker and decodes its entries.
static void
s_usage (zsock_t *quota_worker, sb_msg_t *msg, sb_usage_entry_t *entries, size_t *count,
         int timeout_ms)
{
    s_expect (quota_worker, msg, SB_CMD_USAGE, timeout_ms);
    assert_true (msg->seq >= 1);
    assert_true (strlen (msg->broker_id) >= 1);
    *count = 0;
    if (msg->payload)
        assert_int_equal (sb_quota_usage_decode (msg->payload, entries, SB_QUOTA_MAX_ENTRIES,
                                                 count), 0);
}

static void
s_ack (zsock_t *quota_worker, uint64_t seq)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_usage_ack (&msg, seq), 0);
    s_send (quota_worker, &msg);
}

//  The entry of `tenant` for `period` among `entries`, or NULL.
static const sb_usage_entry_t *
s_find (const sb_usage_entry_t *entries, size_t count, const char *tenant, int64_t period)
{
    for (size_t i = 0; i < count; i++)
        if (streq (entries [i].tenant, tenant) && entries [i].period == period)
            return &entries [i];
    return NULL;
}


//  --------------------------------------------------------------------------

static void
test_limited_reply_shape (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 60, 2, 0);
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };

    //  Burst 2: two admitted and dispatched, the third refused at once
    s_metered (gateway, "c1", "acme", 1, NULL, 0, 0);
    s_metered (gateway, "c2", "acme", 1, NULL, 0, 0);
    s_call_limited (gateway, &msg, "c3", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "c3");
    assert_string_equal (sb_status_name (msg.status), "limited");
    assert_string_equal (msg.quota.reason, "rate");
    assert_string_equal (msg.quota.scope, "default");
    assert_int_equal (msg.quota.limit, 60);
    assert_int_equal (msg.quota.remaining, 0);
    assert_int_equal (msg.quota.window_s, 60);
    assert_int_equal (msg.quota.reset_s, 2);
    //  One call a second: the next fits in at most a second
    assert_true (msg.retry_after_ms >= 900 && msg.retry_after_ms <= 1000);
    assert_true (!msg.payload || zframe_size (msg.payload) == 0);

    //  The admitted ones carry the rate policy as it stood at admission
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    for (int i = 0; i < 2; i++) {
        s_serve_one (api, corr_id, sizeof corr_id);
        s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
        assert_int_equal (msg.status, SB_STATUS_OK);
        assert_true (tb_payload_is (&msg, "done"));
        assert_string_equal (msg.quota.reason, "");
        assert_string_equal (msg.quota.scope, "default");
        assert_int_equal (msg.quota.limit, 60);
        assert_int_equal (msg.quota.window_s, 60);
        assert_int_equal (msg.quota.remaining, streq (msg.corr_id, "c1") ? 1 : 0);
        assert_int_equal (msg.retry_after_ms, 0);
    }

    //  An unmetered job of the same tenant is not limited and carries no policy
    tb_request (gateway, "free1", "api", "acme", 5000, 0, "oauth");
    s_serve_one (api, corr_id, sizeof corr_id);
    s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_string_equal (msg.corr_id, "free1");
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_string_equal (msg.quota.scope, "");
    assert_int_equal (msg.quota.limit, 0);

    //  Another tenant has its own bucket
    s_call_ok (gateway, api, &msg, "o1", "other", 1, NULL, 0, 0);

    //  A cost above the burst is never admitted
    s_call_limited (gateway, &msg, "dear", "fresh", 3, NULL, 0, 0);
    assert_string_equal (msg.quota.reason, "rate");

    sb_broker_counters_t counters = tb_counters (broker);
    assert_int_equal (counters.jobs_metered, 3);
    assert_int_equal (counters.limited_rate, 2);
    assert_int_equal (counters.limited_in_flight, 0);
    assert_int_equal (counters.jobs_queued, 0);
    s_stop (&broker, &msg, NULL, &gateway, &api);
}

//  Three gateways send as fast as the broker answers for `duration_ms`;
//  counts what was admitted against burst + rate × t.
static void
test_rate_exactness (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    const uint32_t rate = 1200, burst = 10;
    const int64_t duration_ms = 1500;
    sb_broker_config_t config;
    s_config (&config, rate, burst, 0);
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10000, 1000);
    zsock_t *gateways [3];
    for (int g = 0; g < 3; g++)
        gateways [g] = tb_gateway (broker);

    uint64_t sent = 0, admitted = 0, limited = 0, answered = 0;
    int64_t started = sb_clock_mono_ms ();
    int64_t last_reply = started;
    bool sending = true;
    unsigned int serial = 0;
    while (sending || answered < sent) {
        int64_t now = sb_clock_mono_ms ();
        if (sending && now - started >= duration_ms)
            sending = false;
        if (sending) {
            //  One request from each gateway per turn: they arrive interleaved
            for (int g = 0; g < 3; g++) {
                char corr_id [32];
                snprintf (corr_id, sizeof corr_id, "r%u", ++serial);
                s_metered (gateways [g], corr_id, "hammer", 1, NULL, 0, 0);
                sent++;
            }
        }
        //  The worker answers what it got; the gateways count their REPLYs
        sb_msg_t msg = { 0 };
        while (tb_recv (api, &msg, 0, true) == SB_MSG_OK) {
            if (msg.command == SB_CMD_JOB)
                tb_result (api, msg.corr_id, SB_STATUS_OK, "ok");
            sb_msg_reset (&msg);
        }
        for (int g = 0; g < 3; g++)
            while (tb_recv (gateways [g], &msg, sending ? 0 : 5, true) == SB_MSG_OK) {
                assert_int_equal (msg.command, SB_CMD_REPLY);
                if (msg.status == SB_STATUS_LIMITED) {
                    limited++;
                    assert_string_equal (msg.quota.reason, "rate");
                    assert_true (msg.retry_after_ms >= 1);
                }
                else {
                    assert_int_equal (msg.status, SB_STATUS_OK);
                    admitted++;
                }
                answered++;
                last_reply = sb_clock_mono_ms ();
                sb_msg_reset (&msg);
            }
        assert_true (sb_clock_mono_ms () - started < 20000);
        if (sending)
            zmq_poll (NULL, 0, 1);
    }
    //  Every admission happened between the first send and the last reply
    int64_t span_ms = last_reply - started;
    uint64_t ceiling = burst + (uint64_t) rate * (uint64_t) span_ms / 60000;
    uint64_t floor_ = burst + (uint64_t) rate * (uint64_t) duration_ms / 60000 / 2;
    print_message ("sent %llu admitted %llu limited %llu in %lld ms: at most %llu allowed\n",
                   (unsigned long long) sent, (unsigned long long) admitted,
                   (unsigned long long) limited, (long long) span_ms,
                   (unsigned long long) ceiling);
    assert_true (admitted <= ceiling);
    assert_true (admitted >= floor_);
    assert_true (limited > 0);
    assert_int_equal (admitted + limited, sent);
    sb_broker_counters_t counters = tb_counters (broker);
    assert_int_equal (counters.jobs_metered, admitted);
    assert_int_equal (counters.limited_rate, limited);
    for (int g = 0; g < 3; g++)
        zsock_destroy (&gateways [g]);
    zsock_destroy (&api);
    tb_broker_stop (&broker);
}

static void
test_in_flight_cap (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 0, 0, 2);
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 1, 1000);     //  credit 1: the second waits queued
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };

    s_metered (gateway, "f1", "acme", 1, NULL, 0, 0);
    s_metered (gateway, "f2", "acme", 1, NULL, 0, 0);
    s_call_limited (gateway, &msg, "f3", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "f3");
    assert_string_equal (msg.quota.reason, "in_flight");
    assert_string_equal (msg.quota.scope, "default");
    assert_int_equal (msg.quota.limit, 2);
    assert_int_equal (msg.quota.remaining, 0);
    assert_int_equal (msg.quota.window_s, 0);
    assert_int_equal (msg.retry_after_ms, SB_QUOTA_IN_FLIGHT_RETRY_MS);
    //  Rate unlimited: the admitted ones carry an all-zero policy
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    s_serve_one (api, corr_id, sizeof corr_id);
    assert_string_equal (corr_id, "f1");
    s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_string_equal (msg.corr_id, "f1");
    assert_int_equal (msg.quota.limit, 0);

    //  f1 answered: its slot is free again (f2 still counts, queued or running)
    s_metered (gateway, "f4", "acme", 1, NULL, 0, 0);
    s_call_limited (gateway, &msg, "f5", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "f5");
    //  A job lost with its worker releases its slot too: the worker
    //  leaves holding f2 (answered worker_lost); f4 waits for a new one
    s_expect (api, &msg, SB_CMD_JOB, TB_WAIT_MS);
    assert_string_equal (msg.corr_id, "f2");
    sb_msg_t bye = { 0 };
    sb_msg_set_disconnect (&bye);
    s_send (api, &bye);
    s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_string_equal (msg.corr_id, "f2");
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);
    assert_string_equal (msg.quota.scope, "");     //  rate unlimited: an all-zero policy
    zsock_destroy (&api);
    api = tb_worker (broker, "api", 10, 1000);
    s_metered (gateway, "f6", "acme", 1, NULL, 0, 0);   //  f4 and f6 alive: the cap
    s_call_limited (gateway, &msg, "f7", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "f7");
    for (int i = 0; i < 2; i++)
        s_serve_one (api, corr_id, sizeof corr_id);
    for (int i = 0; i < 2; i++) {
        s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
        assert_int_equal (msg.status, SB_STATUS_OK);
    }
    s_call_ok (gateway, api, &msg, "f8", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "f8");
    assert_int_equal (tb_counters (broker).limited_in_flight, 3);
    s_stop (&broker, &msg, NULL, &gateway, &api);
}

static void
test_limits_and_plan_change (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 0, 0, 0);
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };
    sb_usage_entry_t *entries = s_entries_new ();
    size_t count = 0;

    //  The first worker of the quota service is asked for a snapshot at once
    zsock_t *token = tb_worker (broker, "token", 10, 1000);
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_int_equal (msg.want, 1);
    assert_int_equal (count, 0);
    char broker_id [SB_MAX_BROKER_ID_LEN + 1];
    snprintf (broker_id, sizeof broker_id, "%s", msg.broker_id);
    assert_int_equal (tb_counters (broker).limits_loaded, 0);

    //  LIMITS from a worker of another service is malformed and not applied
    uint64_t malformed = tb_counters (broker).malformed_backend;
    sb_quota_entry_t wrong [] = { s_plan ("gold", 60, 1, 0, 0, 4) };
    zframe_t *payload = sb_quota_limits_encode (wrong, 1);
    assert_int_equal (sb_msg_set_limits (&msg, 1, SB_SNAPSHOT_LAST, &payload), 0);
    s_send (api, &msg);
    assert_true (TB_WAIT (broker, malformed_backend, malformed + 1));
    assert_int_equal (tb_counters (broker).limits_received, 0);

    //  The snapshot in two parts: plans, then tenants
    sb_quota_entry_t plans [] = { s_plan ("gold", 60, 1, 0, 0, 4) };
    s_limits (broker, token, 1, SB_SNAPSHOT_PART, plans, 1);
    assert_int_equal (tb_counters (broker).limits_loaded, 0);
    sb_quota_entry_t tenants [] = { s_tenant ("acme", "gold", 1, S_JAN_FIRST, 0) };
    s_limits (broker, token, 2, SB_SNAPSHOT_LAST, tenants, 1);
    sb_broker_counters_t counters = tb_counters (broker);
    assert_int_equal (counters.limits_loaded, 1);
    assert_int_equal (counters.limits_entries, 2);
    assert_int_equal (counters.limits_wanted, 1);
    assert_true (counters.quota_tenants >= 1);

    //  acme is on gold now: 60/min burst 1
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    s_metered (gateway, "g1", "acme", 1, NULL, 0, 0);
    s_call_limited (gateway, &msg, "g2", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "g2");
    assert_string_equal (msg.quota.scope, "gold");
    assert_int_equal (msg.quota.limit, 60);
    s_serve_one (api, corr_id, sizeof corr_id);
    s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_string_equal (msg.corr_id, "g1");
    assert_string_equal (msg.quota.scope, "gold");
    //  A tenant not named keeps the defaults (unlimited here)
    s_call_ok (gateway, api, &msg, "n1", "nobody", 1, NULL, 0, 0);

    //  The plan changes (a change, snapshot 0): the next admission uses it
    sb_quota_entry_t change [] = { s_plan ("gold", 60000, 3000, 0, 0, 4) };
    s_limits (broker, token, 3, SB_SNAPSHOT_CHANGE, change, 1);
    s_call_ok (gateway, api, &msg, "g3", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "g3");
    assert_int_equal (msg.quota.limit, 60000);
    //  And a tenant moved to another plan (beta ran under the defaults)
    s_call_ok (gateway, api, &msg, "b1", "beta", 1, NULL, 0, 0);
    assert_string_equal (msg.quota.scope, "");
    sb_quota_entry_t move [] = { s_plan ("tiny", 60, 1, 1, 0, 1),
                                 s_tenant ("beta", "tiny", 1, S_JAN_FIRST, 0) };
    s_limits (broker, token, 4, SB_SNAPSHOT_CHANGE, move, 2);
    s_metered (gateway, "b2", "beta", 1, NULL, 0, 0);
    s_call_limited (gateway, &msg, "b3", "beta", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "b3");
    assert_string_equal (msg.quota.reason, "in_flight");
    assert_string_equal (msg.quota.scope, "tiny");
    s_serve_one (api, corr_id, sizeof corr_id);
    s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_string_equal (msg.corr_id, "b2");
    assert_string_equal (msg.quota.scope, "tiny");
    assert_int_equal (msg.quota.limit, 60);

    //  A malformed LIMITS payload from the quota worker is dropped
    malformed = tb_counters (broker).malformed_backend;
    payload = zframe_new ("\x91\xc0", 2);
    assert_int_equal (sb_msg_set_limits (&msg, 5, SB_SNAPSHOT_CHANGE, &payload), 0);
    s_send (token, &msg);
    assert_true (TB_WAIT (broker, malformed_backend, malformed + 1));

    //  Loaded: a second quota worker is not asked for a snapshot again
    zsock_t *token2 = tb_worker (broker, "token", 10, 1000);
    s_expect_quiet (token2);
    assert_int_equal (tb_counters (broker).limits_wanted, 1);
    free (entries);
    zsock_destroy (&token2);
    s_stop (&broker, &msg, &token, &gateway, &api);
}

static void
test_usage_flush_ack_resend (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 60, 3, 0);
    config.usage_flush_ms = 50;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, SB_MAX_HEARTBEAT_MS);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };
    sb_usage_entry_t *entries = s_entries_new ();
    size_t count = 0;

    //  Counted before any quota worker is there: kept until one is
    for (int i = 0; i < 4; i++) {
        char corr_id [16];
        snprintf (corr_id, sizeof corr_id, "u%d", i);
        s_metered (gateway, corr_id, "acme", 1, NULL, 0, 0);
    }
    s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_int_equal (msg.status, SB_STATUS_LIMITED);
    assert_int_equal (tb_counters (broker).usage_batches_sent, 0);

    //  Heartbeat 60 s: the test socket stays silent through the 5 s resend wait
    zsock_t *token = tb_worker (broker, "token", 10, SB_MAX_HEARTBEAT_MS);
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_int_equal (msg.want, 1);
    uint64_t want_seq = msg.seq;
    s_ack (token, msg.seq);            //  the want's ack is not a batch's: stale
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_int_equal (msg.want, 0);
    uint64_t seq = msg.seq;
    assert_int_equal (count, 1);
    assert_string_equal (entries [0].tenant, "acme");
    assert_int_equal (entries [0].period, S_JAN_FIRST);
    assert_int_equal (entries [0].minute, S_JAN_LAST_S - S_JAN_LAST_S % 60);
    assert_int_equal (entries [0].calls, 3);
    assert_int_equal (entries [0].refused [SB_REFUSAL_RATE], 1);
    zframe_t *first = zframe_dup (msg.payload);

    //  Meanwhile counting goes on; no second batch while the first waits
    s_metered (gateway, "late", "other", 1, NULL, 0, 0);
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    for (int i = 0; i < 4; i++)
        s_serve_one (api, corr_id, sizeof corr_id);
    s_expect_quiet (token);
    //  No ack within SB_BROKER_USAGE_RESEND_MS: the same batch again, same
    //  seq; and no snapshot within SB_BROKER_WANT_MS: want=1 again (a new
    //  seq), in either order
    bool resent = false, wanted = false;
    for (int i = 0; i < 2; i++) {
        s_usage (token, &msg, entries, &count, S_USAGE_WAIT_MS);
        if (msg.want) {
            assert_false (wanted);
            wanted = true;
            assert_true (msg.seq > seq && msg.seq != want_seq);
            assert_int_equal (count, 0);
        }
        else {
            assert_false (resent);
            resent = true;
            assert_int_equal (msg.seq, seq);
            assert_true (zframe_eq (msg.payload, first));
        }
    }
    assert_true (resent && wanted);
    assert_int_equal (tb_counters (broker).usage_batches_resent, 1);
    assert_int_equal (tb_counters (broker).limits_wanted, 2);
    zframe_destroy (&first);
    s_limits (broker, token, 1, SB_SNAPSHOT_LAST, NULL, 0);    //  loaded: no more wants
    s_ack (token, seq);
    assert_true (TB_WAIT (broker, usage_batches_acked, 1));
    //  Then the next batch, with what was counted meanwhile
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_true (msg.seq > seq);
    assert_int_equal (count, 1);
    assert_string_equal (entries [0].tenant, "other");
    assert_int_equal (entries [0].calls, 1);
    s_ack (token, msg.seq);
    assert_true (TB_WAIT (broker, usage_batches_acked, 2));
    sb_broker_counters_t counters = tb_counters (broker);
    assert_int_equal (counters.usage_batches_sent, 2);
    assert_int_equal (counters.usage_acks_stale, 1);
    assert_int_equal (counters.limits_wanted, 2);

    //  One more job: the next periodic flush carries it
    s_call_ok (gateway, api, &msg, "last", "acme", 1, NULL, 0, 0);
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_int_equal (count, 1);
    assert_int_equal (entries [0].calls, 1);
    s_ack (token, msg.seq);
    assert_true (TB_WAIT (broker, usage_batches_acked, 3));
    free (entries);
    s_stop (&broker, &msg, &token, &gateway, &api);
}

static void
test_last_flush_on_drain (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 0, 0, 0);
    config.usage_flush_ms = SB_MAX_USAGE_FLUSH_MS;     //  only the drain flushes
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, 1000);
    zsock_t *token = tb_worker (broker, "token", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };
    sb_usage_entry_t *entries = s_entries_new ();
    size_t count = 0;
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_int_equal (msg.want, 1);

    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    s_metered (gateway, "d1", "acme", 2, NULL, 0, 0);
    s_serve_one (api, corr_id, sizeof corr_id);
    s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    s_expect_quiet (token);
    assert_int_equal (zstr_send (broker->actor, "STOP"), 0);
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_int_equal (msg.want, 0);
    assert_int_equal (count, 1);
    assert_string_equal (entries [0].tenant, "acme");
    assert_int_equal (entries [0].calls, 2);
    s_ack (token, msg.seq);
    //  Acked and nothing running: the broker ends and tells its workers to go
    s_expect (token, &msg, SB_CMD_DISCONNECT, TB_WAIT_MS);
    free (entries);
    s_stop (&broker, &msg, &token, &gateway, &api);
}

static void
test_month_rollover (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 0, 0, 0);
    config.usage_flush_ms = 50;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, 1000);
    zsock_t *token = tb_worker (broker, "token", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };
    sb_usage_entry_t *entries = s_entries_new ();
    size_t count = 0;
    s_usage (token, &msg, entries, &count, TB_WAIT_MS);
    assert_int_equal (msg.want, 1);

    //  2 a month, 1 already stored for January: one more fits
    sb_quota_entry_t limits [] = { s_plan ("tiny", 0, 0, 0, 2, 1),
                                   s_tenant ("acme", "tiny", 1, S_JAN_FIRST, 1) };
    s_limits (broker, token, 1, SB_SNAPSHOT_LAST, limits, 2);
    s_call_ok (gateway, api, &msg, "m1", "acme", 1, NULL, 0, 0);
    s_call_limited (gateway, &msg, "m2", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.quota.reason, "monthly");
    assert_string_equal (msg.quota.scope, "tiny");
    assert_int_equal (msg.quota.limit, 2);
    assert_int_equal (msg.quota.remaining, 0);
    assert_int_equal (msg.quota.reset_s, 1);
    assert_int_equal (msg.quota.window_s, S_FEB_FIRST - S_JAN_FIRST);
    assert_int_equal (msg.retry_after_ms, 1000);

    //  Midnight UTC, February 1st: a new period, the count starts again
    s_set_wall (S_FEB_FIRST * 1000);
    s_call_ok (gateway, api, &msg, "m3", "acme", 1, NULL, 0, 0);
    assert_string_equal (msg.corr_id, "m3");
    s_call_ok (gateway, api, &msg, "m4", "acme", 1, NULL, 0, 0);
    s_call_limited (gateway, &msg, "m5", "acme", 1, NULL, 0, 0);
    assert_int_equal (msg.quota.window_s, S_MAR_FIRST - S_FEB_FIRST);

    //  The usage reports each period on its own
    uint64_t jan_calls = 0, feb_calls = 0, jan_refused = 0, feb_refused = 0;
    int64_t deadline = sb_clock_mono_ms () + TB_WAIT_MS;
    while ((jan_calls < 1 || feb_calls < 2 || jan_refused < 1 || feb_refused < 1)
    &&     sb_clock_mono_ms () < deadline) {
        s_usage (token, &msg, entries, &count, TB_WAIT_MS);
        const sb_usage_entry_t *jan = s_find (entries, count, "acme", S_JAN_FIRST);
        const sb_usage_entry_t *feb = s_find (entries, count, "acme", S_FEB_FIRST);
        if (jan) {
            jan_calls += jan->calls;
            jan_refused += jan->refused [SB_REFUSAL_MONTHLY];
        }
        if (feb) {
            feb_calls += feb->calls;
            feb_refused += feb->refused [SB_REFUSAL_MONTHLY];
        }
        s_ack (token, msg.seq);
    }
    assert_int_equal (jan_calls, 1);
    assert_int_equal (jan_refused, 1);
    assert_int_equal (feb_calls, 2);
    assert_int_equal (feb_refused, 1);
    assert_int_equal (tb_counters (broker).limited_monthly, 2);
    free (entries);
    s_stop (&broker, &msg, &token, &gateway, &api);
}

static void
test_budget (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 0, 0, 0);
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };

    //  2 upstream requests per hour for (acme, salesforce)
    for (int i = 0; i < 2; i++) {
        char id [16];
        snprintf (id, sizeof id, "b%d", i);
        s_call_ok (gateway, api, &msg, id, "acme", 1, "salesforce", 2, 3600);
    }
    s_call_limited (gateway, &msg, "b2", "acme", 1, "salesforce", 2, 3600);
    assert_string_equal (msg.quota.reason, "budget");
    assert_string_equal (msg.quota.scope, "salesforce");
    assert_int_equal (msg.quota.limit, 2);
    assert_int_equal (msg.quota.remaining, 0);
    assert_int_equal (msg.quota.window_s, 3600);
    assert_true (msg.retry_after_ms >= 1 && msg.retry_after_ms <= 3600 * 1000);
    //  Another connector, and another tenant's salesforce, have their own budgets
    s_call_ok (gateway, api, &msg, "b3", "acme", 1, "hubspot", 2, 3600);
    s_call_ok (gateway, api, &msg, "b4", "globex", 1, "salesforce", 2, 3600);
    //  A short window recovers: 1 per 2 s
    s_call_ok (gateway, api, &msg, "s1", "acme", 1, "fast", 1, 2);
    s_call_limited (gateway, &msg, "s2", "acme", 1, "fast", 1, 2);
    uint32_t wait_ms = msg.retry_after_ms;
    assert_true (wait_ms >= 1 && wait_ms <= 2100);
    zmq_poll (NULL, 0, (long) wait_ms + 50);    //  the time the broker itself gave
    s_call_ok (gateway, api, &msg, "s3", "acme", 1, "fast", 1, 2);
    assert_string_equal (msg.corr_id, "s3");
    assert_int_equal (tb_counters (broker).limited_budget, 2);
    s_stop (&broker, &msg, NULL, &gateway, &api);
}

//  The fair queues take each tenant's weight from its plan: with weights 1
//  and 4 and both backlogged behind a busy worker, 2 of the next 10 jobs
//  go to the light tenant and 8 to the heavy one.
static void
test_plan_weights (void **state)
{
    s_set_wall (S_JAN_LAST_S * 1000);
    sb_broker_config_t config;
    s_config (&config, 0, 0, 0);
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 1, 1000);
    zsock_t *token = tb_worker (broker, "token", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };
    sb_quota_entry_t limits [] = { s_plan ("light", 0, 0, 0, 0, 1),
                                   s_plan ("heavy", 0, 0, 0, 0, 4),
                                   s_tenant ("lo", "light", 1, S_JAN_FIRST, 0),
                                   s_tenant ("hi", "heavy", 1, S_JAN_FIRST, 0) };
    s_limits (broker, token, 1, SB_SNAPSHOT_LAST, limits, 4);

    tb_request (gateway, "block", "api", "lo", 10000, 0, "x");
    s_expect (api, &msg, SB_CMD_JOB, TB_WAIT_MS);
    for (int i = 0; i < 10; i++) {
        char id [16];
        snprintf (id, sizeof id, "lo%d", i);
        tb_request (gateway, id, "api", "lo", 10000, 0, "x");
        snprintf (id, sizeof id, "hi%d", i);
        tb_request (gateway, id, "api", "hi", 10000, 0, "x");
    }
    assert_true (TB_WAIT (broker, jobs_queued, 20));
    tb_result (api, "block", SB_STATUS_OK, "done");
    char order [11] = "";
    for (int i = 0; i < 10; i++) {
        s_expect (api, &msg, SB_CMD_JOB, TB_WAIT_MS);
        order [i] = msg.corr_id [0] == 'l' ? 'L' : 'H';
        tb_result (api, msg.corr_id, SB_STATUS_OK, "done");
    }
    print_message ("dispatch order with weights 1 (L) and 4 (H): %s\n", order);
    assert_string_equal (order, "LHHHHLHHHH");
    s_stop (&broker, &msg, &token, &gateway, &api);
}

static void
test_worker_request_with_cost (void **state)
{
    sb_broker_config_t config;
    s_config (&config, 0, 0, 0);
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };
    tb_request (gateway, "p1", "api", "acme", 5000, 0, "parent");
    s_expect (api, &msg, SB_CMD_JOB, TB_WAIT_MS);
    //  The worker asks on behalf of p1, metered: malformed, whatever the quotas
    zframe_t *payload = zframe_new ("x", 1);
    assert_int_equal (sb_msg_set_worker_request (&msg, "w1", "db", "acme", 1000, 0, "p1",
                                                 &payload), 0);
    msg.cost = 1;
    s_send (api, &msg);
    s_expect (api, &msg, SB_CMD_REPLY, TB_WAIT_MS);
    assert_string_equal (msg.corr_id, "w1");
    assert_int_equal (msg.status, SB_STATUS_MALFORMED);
    assert_int_equal (tb_counters (broker).worker_requests_refused, 1);
    s_stop (&broker, &msg, NULL, &gateway, &api);
}

static void
test_quotas_off (void **state)
{
    sb_broker_config_t config;
    s_config (&config, 60, 1, 1);
    config.quotas = false;
    config.usage_flush_ms = 50;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *api = tb_worker (broker, "api", 10, 1000);
    zsock_t *token = tb_worker (broker, "token", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    sb_msg_t msg = { 0 };
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    //  Far past rate, burst and in-flight: all admitted, no policy on the REPLYs
    for (int i = 0; i < 5; i++) {
        char id [16];
        snprintf (id, sizeof id, "x%d", i);
        s_metered (gateway, id, "acme", 1, "salesforce", 1, 3600);
    }
    for (int i = 0; i < 5; i++)
        s_serve_one (api, corr_id, sizeof corr_id);
    for (int i = 0; i < 5; i++) {
        s_expect (gateway, &msg, SB_CMD_REPLY, TB_WAIT_MS);
        assert_int_equal (msg.status, SB_STATUS_OK);
        assert_int_equal (msg.quota.limit, 0);
        assert_string_equal (msg.quota.scope, "");
    }
    //  LIMITS from the quota service is ignored, not malformed; no USAGE ever
    sb_quota_entry_t plans [] = { s_plan ("gold", 60, 1, 0, 0, 4) };
    zframe_t *payload = sb_quota_limits_encode (plans, 1);
    assert_int_equal (sb_msg_set_limits (&msg, 1, SB_SNAPSHOT_LAST, &payload), 0);
    s_send (token, &msg);
    assert_true (TB_WAIT (broker, limits_ignored, 1));
    s_expect_quiet (token);
    sb_broker_counters_t counters = tb_counters (broker);
    assert_int_equal (counters.jobs_metered, 0);
    assert_int_equal (counters.limits_received, 0);
    assert_int_equal (counters.usage_batches_sent, 0);
    assert_int_equal (counters.limits_wanted, 0);
    assert_int_equal (counters.malformed_backend, 0);
    s_stop (&broker, &msg, &token, &gateway, &api);
}

static void
test_bad_config (void **state)
{
    sb_broker_config_t config;
    s_config (&config, 60, 0, 0);           //  a rate needs a burst
    char *frontend = NULL, *backend = NULL;
    assert_null (sb_broker_actor_start (&config, &frontend, &backend));
    s_config (&config, 0, 0, 0);
    config.quota_service = "";
    assert_null (sb_broker_actor_start (&config, &frontend, &backend));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_limited_reply_shape),
        cmocka_unit_test (test_rate_exactness),
        cmocka_unit_test (test_in_flight_cap),
        cmocka_unit_test (test_limits_and_plan_change),
        cmocka_unit_test (test_usage_flush_ack_resend),
        cmocka_unit_test (test_last_flush_on_drain),
        cmocka_unit_test (test_month_rollover),
        cmocka_unit_test (test_budget),
        cmocka_unit_test (test_plan_weights),
        cmocka_unit_test (test_worker_request_with_cost),
        cmocka_unit_test (test_quotas_off),
        cmocka_unit_test (test_bad_config),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
