/*  tests/38_workers_quota_sync.c — the quota service of the token role
    (workers/sb_quota_sync.c) as a real sb-worker --role token against a
    fake broker speaking sb_msg and the real test PostgreSQL, reached
    through a TCP proxy the test can cut:

      - USAGE want=1 → a snapshot: every plan, then every tenant in parts
        of at most SB_QUOTA_MAX_ENTRIES (3 plans and 2,500 tenants of this
        run: 3 parts or more), the last one marked 2, plans before tenants,
        each tenant once with its plan, anchor, current period and the
        calls stored for that period; the empty batch acknowledged;
      - USAGE with entries → rows in usage_months and usage_minutes and
        USAGE_ACK; the same seq again → ACKed again and counted once; an
        unknown tenant's entry skipped;
      - a plan's rate and a tenant's anchor changed in SQL → LIMITS
        snapshot 0 naming them (and not the unchanged plans) within 2 s;
      - a malformed USAGE payload → no ACK, and the worker goes on;
      - the database cut → no ACK; back → the broker's resend of the
        same seq is stored once and ACKed.

    Plans and tenants of this run start with a prefix unique to it; every
    row is deleted at the end. */
#include <czmq.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_harness.h"
#include "sb_quota_msg.h"

#define HEARTBEAT_MS    10000       /* the test talks to PostgreSQL between messages */
#define POLL_MS         200         /* --limits-poll-ms */
#define CHANGE_MS       2000        /* a change reaches the broker within this */
#define WAIT_MS         30000       /* a snapshot or an ACK, at most */
#define TENANTS         2500        /* tenants of this run */
#define PLANS           3           /* plans of this run */
#define USED            4711        /* calls stored for the first tenant's period */

static fake_broker_t *s_broker;     /* the fake broker the worker registers with */
static fake_proxy_t *s_proxy;       /* the worker's way to PostgreSQL */
static pid_t s_pid = -1;            /* sb-worker --role token */
static char s_prefix [32];          /* plans, tenants and broker ids of this run */
static char *s_conninfo;            /* the test PostgreSQL */
static PGconn *s_pg;                /* a blocking connection with switchboard.system on */
static sb_quota_entry_t s_entries [SB_QUOTA_MAX_ENTRIES];   /* a decoded LIMITS */

//  ---------------------------------------------------------------------
//  Helpers

//  Runs `sql` with up to three text parameters; it must succeed.
static void
s_exec (const char *sql, const char *p1, const char *p2, const char *p3)
{
    const char *params [] = { p1, p2, p3 };
    int count = p3? 3: p2? 2: p1? 1: 0;
    PGresult *res = PQexecParams (s_pg, sql, count, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus (res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    PQclear (res);
}

//  The one integer `sql` answers (NULL: -1).
static long long
s_number (const char *sql, const char *p1, const char *p2)
{
    const char *params [] = { p1, p2 };
    PGresult *res = PQexecParams (s_pg, sql, p2? 2: p1? 1: 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    long long value = PQgetisnull (res, 0, 0)? -1: strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    return value;
}

//  The name of one of this run's plans or tenants (a static buffer each).
static const char *
s_plan (int at)
{
    static char names [PLANS][48];
    snprintf (names [at], sizeof names [at], "%s-p%d", s_prefix, at);
    return names [at];
}

static const char *
s_tenant (int at)
{
    static char name [48];
    snprintf (name, sizeof name, "%s-t%05d", s_prefix, at);
    return name;
}

//  The index of this run's tenant `id`, or -1.
static int
s_tenant_index (const char *id)
{
    size_t len = strlen (s_prefix);
    if (strncmp (id, s_prefix, len) || strncmp (id + len, "-t", 2))
        return -1;
    return (int) strtol (id + len + 2, NULL, 10);
}

//  The limits every plan of this run was created with.
static uint32_t
s_rate (int at)
{
    return 100 * (uint32_t) (at + 1);
}

static void
s_send (sb_msg_t *msg)
{
    assert_non_null (s_broker->worker);
    assert_int_equal (sb_msg_send (s_broker->router, msg, s_broker->worker), 0);
    sb_msg_reset (msg);
}

//  Sends USAGE (seq, want) from broker `broker` with `count` entries.
static void
s_usage (uint64_t seq, uint32_t want, const char *broker, const sb_usage_entry_t *entries,
         size_t count)
{
    zframe_t *payload = count? sb_quota_usage_encode (entries, count): NULL;
    if (count)
        assert_non_null (payload);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_usage (&msg, seq, want, broker, &payload), 0);
    s_send (&msg);
}

//  Waits for USAGE_ACK `seq`, dropping LIMITS. Other ACKs fail the test.
//  Returns 0, or -1 when none came within `timeout_ms`.
static int
s_ack (uint64_t seq, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        sb_msg_t msg = { 0 };
        if (fake_broker_recv (s_broker, &msg, (int) (deadline - zclock_mono ())))
            break;
        sb_cmd_t command = msg.command;
        uint64_t got = msg.seq;
        sb_msg_reset (&msg);
        if (command == SB_CMD_USAGE_ACK && got == seq)
            return 0;
        if (command == SB_CMD_USAGE_ACK)
            fail_msg ("USAGE_ACK %llu while waiting for %llu", (unsigned long long) got,
                      (unsigned long long) seq);
        if (command != SB_CMD_LIMITS)
            fail_msg ("unexpected %s", sb_cmd_name (command));
    }
    return -1;
}

//  An entry for this run's tenant `at` (anchor 1 + at % 28).
static sb_usage_entry_t
s_entry (int at, uint64_t calls, uint64_t rate_refused)
{
    sb_usage_entry_t entry = { .calls = calls };
    snprintf (entry.tenant, sizeof entry.tenant, "%s", s_tenant (at));
    int64_t now = (int64_t) time (NULL), end;
    sb_quota_period (now, 1 + (uint32_t) at % 28, &entry.period, &end);
    entry.minute = now - now % 60;
    entry.refused [SB_REFUSAL_RATE] = rate_refused;
    return entry;
}

//  usage_months.calls of tenant `at` for its current period (-1: no row).
static long long
s_month_calls (int at)
{
    return s_number ("SELECT (SELECT calls FROM usage_months WHERE tenant_id = $1 "
                     "AND period_start = quota_period_start (billing_anchor, now ())) "
                     "FROM tenants WHERE id = $1", s_tenant (at), NULL);
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_snapshot (void **state)
{
    char broker [64];
    snprintf (broker, sizeof broker, "%s-b1", s_prefix);
    s_usage (1, 1, broker, NULL, 0);
    bool acked = false, last = false, tenant_seen = false;
    int parts = 0, plans = 0, tenants = 0;
    static bool seen [TENANTS + 1];
    int64_t now = (int64_t) time (NULL);
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (!(last && acked)) {
        sb_msg_t msg = { 0 };
        if (zclock_mono () >= deadline
        ||  fake_broker_recv (s_broker, &msg, (int) (deadline - zclock_mono ())))
            fail_msg ("no complete snapshot: %d part(s), last %s, ack %s", parts,
                      last? "seen": "not seen", acked? "seen": "not seen");
        if (msg.command == SB_CMD_USAGE_ACK) {
            assert_int_equal (msg.seq, 1);      //  an empty batch: acknowledged at once
            acked = true;
            sb_msg_reset (&msg);
            continue;
        }
        assert_int_equal (msg.command, SB_CMD_LIMITS);
        assert_true (msg.seq >= 1);
        //  A push of changes (the worker's first poll) may come too
        if (msg.snapshot == 0 || last) {
            sb_msg_reset (&msg);
            continue;
        }
        parts++;
        last = msg.snapshot == 2;
        size_t count = 0;
        assert_non_null (msg.payload);
        assert_int_equal (sb_quota_limits_decode (msg.payload, s_entries, SB_QUOTA_MAX_ENTRIES,
                                                  &count), 0);
        assert_true (count <= SB_QUOTA_MAX_ENTRIES);
        sb_msg_reset (&msg);
        for (size_t at = 0; at < count; at++) {
            const sb_quota_entry_t *entry = &s_entries [at];
            if (entry->is_plan) {
                assert_false (tenant_seen);     //  every plan before any tenant
                for (int p = 0; p < PLANS; p++)
                    if (strcmp (entry->plan.id, s_plan (p)) == 0) {
                        assert_int_equal (entry->plan.rate, s_rate (p));
                        assert_int_equal (entry->plan.burst, 10 * (p + 1));
                        assert_int_equal (entry->plan.in_flight, p);
                        assert_int_equal (entry->plan.monthly, p == 2? 0: 1000 * (p + 1));
                        assert_int_equal (entry->plan.weight, p + 1);
                        plans++;
                    }
                continue;
            }
            tenant_seen = true;
            int index = s_tenant_index (entry->tenant.id);
            if (index < 0)
                continue;                       //  another test's tenant
            assert_true (index >= 1 && index <= TENANTS);
            assert_false (seen [index]);
            seen [index] = true;
            tenants++;
            assert_string_equal (entry->tenant.plan, s_plan (index % PLANS));
            assert_int_equal (entry->tenant.anchor, 1 + index % 28);
            int64_t start, end;
            sb_quota_period (now, entry->tenant.anchor, &start, &end);
            if (entry->tenant.period != start) {
                //  A period may have begun since `now` was read
                sb_quota_period ((int64_t) time (NULL), entry->tenant.anchor, &start, &end);
                assert_int_equal (entry->tenant.period, start);
            }
            assert_int_equal (entry->tenant.used, index == 1? USED: 0);
        }
    }
    assert_int_equal (plans, PLANS);
    assert_int_equal (tenants, TENANTS);
    assert_true (parts >= 3);
}

static void
test_usage_stored (void **state)
{
    char broker [64];
    snprintf (broker, sizeof broker, "%s-b2", s_prefix);
    sb_usage_entry_t entries [3] = { s_entry (2, 5, 2), s_entry (3, 7, 0), s_entry (4, 3, 0) };
    entries [0].refused [SB_REFUSAL_MONTHLY] = 1;
    snprintf (entries [2].tenant, sizeof entries [2].tenant, "%s-gone", s_prefix);
    s_usage (10, 0, broker, entries, 3);
    assert_int_equal (s_ack (10, WAIT_MS), 0);
    assert_int_equal (s_month_calls (2), 5);
    assert_int_equal (s_month_calls (3), 7);
    assert_int_equal (s_number ("SELECT (refused->>'rate')::int FROM usage_months "
                                "WHERE tenant_id = $1", s_tenant (2), NULL), 2);
    assert_int_equal (s_number ("SELECT (refused->>'monthly')::int FROM usage_months "
                                "WHERE tenant_id = $1", s_tenant (2), NULL), 1);
    char minute [24];
    snprintf (minute, sizeof minute, "%lld", (long long) entries [0].minute);
    assert_int_equal (s_number ("SELECT calls FROM usage_minutes WHERE tenant_id = $1 "
                                "AND minute = to_timestamp ($2::bigint)", s_tenant (2), minute), 5);
    assert_int_equal (s_number ("SELECT count(*) FROM usage_months WHERE tenant_id = $1",
                                entries [2].tenant, NULL), 0);

    //  The broker sends the same batch again: ACKed, counted once
    s_usage (10, 0, broker, entries, 3);
    assert_int_equal (s_ack (10, WAIT_MS), 0);
    assert_int_equal (s_month_calls (2), 5);
    assert_int_equal (s_number ("SELECT count(*) FROM usage_batches WHERE broker_id = $1",
                                broker, NULL), 1);

    //  The next batch adds
    sb_usage_entry_t next = s_entry (2, 3, 0);
    s_usage (11, 0, broker, &next, 1);
    assert_int_equal (s_ack (11, WAIT_MS), 0);
    assert_int_equal (s_month_calls (2), 8);
    assert_int_equal (s_number ("SELECT (refused->>'rate')::int FROM usage_months "
                                "WHERE tenant_id = $1", s_tenant (2), NULL), 2);
}

//  Waits for a LIMITS change (snapshot 0) with an entry `match` accepts,
//  within CHANGE_MS; fails the test otherwise. `match` sees each decoded
//  message whole and returns true when it holds the change.
static void
s_expect_change (bool (*match) (const sb_quota_entry_t *entries, size_t count), const char *what)
{
    int64_t deadline = zclock_mono () + CHANGE_MS;
    while (true) {
        sb_msg_t msg = { 0 };
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || fake_broker_recv (s_broker, &msg, (int) left))
            fail_msg ("no LIMITS change with %s within %d ms", what, CHANGE_MS);
        assert_int_equal (msg.command, SB_CMD_LIMITS);
        size_t count = 0;
        bool found = msg.snapshot == 0 && msg.payload
                  && sb_quota_limits_decode (msg.payload, s_entries, SB_QUOTA_MAX_ENTRIES,
                                             &count) == 0
                  && match (s_entries, count);
        sb_msg_reset (&msg);
        if (found)
            return;
    }
}

static bool
s_plan_changed (const sb_quota_entry_t *entries, size_t count)
{
    bool found = false;
    for (size_t at = 0; at < count; at++) {
        if (!entries [at].is_plan)
            continue;
        if (strcmp (entries [at].plan.id, s_plan (1)) == 0)
            found = entries [at].plan.rate == 777 && entries [at].plan.burst == 77;
        //  A change names what changed, not the plans left alone
        assert_string_not_equal (entries [at].plan.id, s_plan (0));
        assert_string_not_equal (entries [at].plan.id, s_plan (2));
    }
    return found;
}

static bool
s_tenant_changed (const sb_quota_entry_t *entries, size_t count)
{
    for (size_t at = 0; at < count; at++)
        if (!entries [at].is_plan && strcmp (entries [at].tenant.id, s_tenant (5)) == 0) {
            int64_t start, end;
            sb_quota_period ((int64_t) time (NULL), 15, &start, &end);
            return entries [at].tenant.anchor == 15 && entries [at].tenant.plan [0]
                && entries [at].tenant.period == start;
        }
    return false;
}

static void
test_changes_pushed (void **state)
{
    s_exec ("UPDATE plans SET rate_per_min = 777, burst = 77 WHERE id = $1", s_plan (1), NULL, NULL);
    s_expect_change (s_plan_changed, "the plan's new rate");
    s_exec ("UPDATE tenants SET billing_anchor = 15 WHERE id = $1", s_tenant (5), NULL, NULL);
    s_expect_change (s_tenant_changed, "the tenant's new anchor");
}

static void
test_malformed_usage (void **state)
{
    char broker [64];
    snprintf (broker, sizeof broker, "%s-b3", s_prefix);
    zframe_t *payload = zframe_new ("\x91\x01", 2);    //  an array of one integer
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_usage (&msg, 30, 0, broker, &payload), 0);
    s_send (&msg);
    //  No ACK for 30: the next ACK is 31's
    s_usage (31, 0, broker, NULL, 0);
    assert_int_equal (s_ack (31, WAIT_MS), 0);
}

static void
test_db_down (void **state)
{
    char broker [64], app [64];
    snprintf (broker, sizeof broker, "%s-b4", s_prefix);
    snprintf (app, sizeof app, "%s-worker", s_prefix);
    long long before = s_month_calls (2);
    fake_proxy_set_down (s_proxy, true);
    //  The worker's connections are gone when PostgreSQL no longer lists them
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (s_number ("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                     app, NULL) > 0) {
        if (zclock_mono () > deadline)
            fail_msg ("the worker's database connection outlived the proxy");
        zclock_sleep (20);
    }
    sb_usage_entry_t entry = s_entry (2, 100, 0);
    s_usage (40, 0, broker, &entry, 1);
    //  The statement fails: no ACK (the broker will send the batch again)
    assert_int_equal (s_ack (40, 2000), -1);
    assert_int_equal (s_month_calls (2), before);

    //  Back: the broker's resends; the first stored is counted, every one ACKed
    fake_proxy_set_down (s_proxy, false);
    deadline = zclock_mono () + WAIT_MS;
    bool acked = false;
    while (!acked && zclock_mono () < deadline) {
        s_usage (40, 0, broker, &entry, 1);
        acked = s_ack (40, 1000) == 0;
    }
    assert_true (acked);
    assert_int_equal (s_month_calls (2), before + 100);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "qs%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    s_pg = PQconnectdb (s_conninfo);
    if (PQstatus (s_pg) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (s_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    //  The worker reaches PostgreSQL through the proxy, under a name the
    //  test finds in pg_stat_activity
    const char *port_at = strstr (s_conninfo, "port=");
    if (!port_at)
        return -1;
    s_proxy = fake_proxy_new ((int) strtol (port_at + 5, NULL, 10));
    s_broker = fake_broker_new (sb_harness_free_port ());
    if (!s_proxy || !s_broker)
        return -1;
    s_broker->keep_limits = true;
    char heartbeat [16], poll [16], db [1024], migrations [512];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (poll, sizeof poll, "%d", POLL_MS);
    snprintf (db, sizeof db, "--db=%s host=127.0.0.1 port=%d application_name=%s-worker",
              s_conninfo, fake_proxy_port (s_proxy), s_prefix);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", s_broker->endpoint,
        "--credit", "4", "--heartbeat-ms", heartbeat, "--limits-poll-ms", poll, db, migrations,
        NULL
    };
    s_pid = sb_harness_spawn (argv, NULL);
    if (s_pid <= 0)
        return -1;
    sb_msg_t msg = { 0 };
    //  It migrates before it registers: allow for that
    if (fake_broker_recv (s_broker, &msg, 30000) || msg.command != SB_CMD_READY)
        return -1;
    sb_msg_reset (&msg);
    //  Its migrations are in: the rows of this run
    //  Plans p0 (rate 100, burst 10, in-flight 0, monthly 1000, weight 1),
    //  p1, p2 (monthly unlimited); tenant i on plan i % 3, anchor 1 + i % 28
    for (int p = 0; p < PLANS; p++) {
        char sql [512];
        snprintf (sql, sizeof sql, "INSERT INTO plans (id, name, rate_per_min, burst, "
                  "max_in_flight, monthly_calls, weight) VALUES ($1, 'Quota sync test', "
                  "%u, %d, %d, %d, %d)", s_rate (p), 10 * (p + 1), p, p == 2? 0: 1000 * (p + 1),
                  p + 1);
        s_exec (sql, s_plan (p), NULL, NULL);
    }
    s_exec ("INSERT INTO tenants (id, name, plan, billing_anchor) "
            "SELECT $1 || '-t' || lpad (g::text, 5, '0'), 'Quota sync test', "
            "$1 || '-p' || (g % 3)::text, 1 + g % 28 FROM generate_series (1, 2500) g",
            s_prefix, NULL, NULL);
    s_exec ("INSERT INTO usage_months (tenant_id, period_start, calls) "
            "SELECT id, quota_period_start (billing_anchor, now ()), 4711 FROM tenants "
            "WHERE id = $1", s_tenant (1), NULL, NULL);
    return 0;
}

static int
s_teardown (void **state)
{
    bool clean = true;
    if (s_pid > 0) {
        int wstatus = sb_harness_stop (s_pid);
        clean = WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0;
        if (!clean)
            fprintf (stderr, "the token worker did not exit cleanly (0x%x)\n", (unsigned) wstatus);
    }
    fake_broker_destroy (&s_broker);
    fake_proxy_destroy (&s_proxy);
    int rc = -1;
    if (s_pg && PQstatus (s_pg) == CONNECTION_OK) {
        char pattern [48];
        snprintf (pattern, sizeof pattern, "%s-%%", s_prefix);
        const char *params [] = { pattern };
        const char *sqls [] = {
            "DELETE FROM tenants WHERE id LIKE $1",         //  their usage rows go with them
            "DELETE FROM plans WHERE id LIKE $1",
            "DELETE FROM usage_batches WHERE broker_id LIKE $1",
        };
        rc = 0;
        for (size_t at = 0; at < sizeof sqls / sizeof sqls [0]; at++) {
            PGresult *res = PQexecParams (s_pg, sqls [at], 1, NULL, params, NULL, NULL, 0);
            if (PQresultStatus (res) != PGRES_COMMAND_OK) {
                fprintf (stderr, "%s: %s", sqls [at], PQresultErrorMessage (res));
                rc = -1;
            }
            PQclear (res);
        }
    }
    PQfinish (s_pg);
    free (s_conninfo);
    return clean? rc: -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_snapshot),
        cmocka_unit_test (test_usage_stored),
        cmocka_unit_test (test_changes_pushed),
        cmocka_unit_test (test_malformed_usage),
        cmocka_unit_test (test_db_down),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
