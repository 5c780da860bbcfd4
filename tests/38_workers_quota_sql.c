/*  tests/38_workers_quota_sql.c — the quota service's SQL (migration
    014_quotas) against a real PostgreSQL, on a fresh database of the test
    cluster migrated by sb_db_migrate:

      - the seeded plans' limits, the demo tenant moved to custom (audited),
        the limits' CHECKs (negative, absurd, burst without a rate);
      - quota_period_start: anchors 1, 15, 28 and out of range, exactly at
        the boundary and a second before, February of leap and common
        years, across a year, whatever the session's time zone;
      - limits_version: set on insert, moved on by a change of a limit, a
        plan or an anchor and by nothing else; quota_version the highest;
        quota_plans_since; versions handed out in commit order (a second
        writer waits for the first to commit);
      - quota_tenants_since pages by id (every tenant once, in order, at
        most p_limit a page), only tenants changed since the version, with
        the current period and the calls stored for it;
      - quota_usage_record: a batch counted once however often it comes
        (false the second time, nothing changed), per broker; entries of a
        tenant's period or minute merged, refusals summed by reason;
        unknown tenants skipped; a malformed batch refused whole (and its
        seq still free); old minutes and batches pruned. */
#include "sb_db.h"
#include "sb_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_CONNINFO  1024        /* conninfo strings built here */
#define S_TENANTS       250         /* tenants paged through */
#define S_PAGE          100         /* tenants per page */
#define S_WAIT_MS       10000       /* a blocked writer must show as waiting within this */

static char *s_conninfo;            /* the fixture's */
static char s_db [S_MAX_CONNINFO];  /* the fresh database's */
static PGconn *s_pg;                /* on it, switchboard.system on */

//  ---------------------------------------------------------------------
//  Helpers

//  Runs `sql` with `n` text parameters; fails unless it succeeds.
static void
s_exec (PGconn *conn, const char *sql, int n, ...)
{
    const char *params [4] = { 0 };
    va_list args;
    va_start (args, n);
    for (int i = 0; i < n && i < 4; i++)
        params [i] = va_arg (args, const char *);
    va_end (args);
    PGresult *res = PQexecParams (conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType rc = PQresultStatus (res);
    if (rc != PGRES_COMMAND_OK && rc != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    PQclear (res);
}

//  The first cell of `sql` ($1, $2 = p1, p2) as text, into a static buffer.
static const char *
s_text (const char *sql, const char *p1, const char *p2)
{
    static char value [1024];
    const char *params [] = { p1, p2 };
    int n = p2? 2: p1? 1: 0;
    PGresult *res = PQexecParams (s_pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s (%d rows)", sql, PQresultErrorMessage (res), PQntuples (res));
    snprintf (value, sizeof value, "%s", PQgetisnull (res, 0, 0)? "(null)": PQgetvalue (res, 0, 0));
    PQclear (res);
    return value;
}

static long long
s_number (const char *sql, const char *p1, const char *p2)
{
    return strtoll (s_text (sql, p1, p2), NULL, 10);
}

//  Runs `sql`, which must fail with a message containing `words`.
static void
s_fails (const char *sql, const char *words)
{
    PGresult *res = PQexec (s_pg, sql);
    if (PQresultStatus (res) != PGRES_FATAL_ERROR)
        fail_msg ("%s: succeeded, want an error about %s", sql, words);
    if (!strstr (PQresultErrorMessage (res), words))
        fail_msg ("%s: %s, want %s", sql, PQresultErrorMessage (res), words);
    PQclear (res);
}

//  quota_usage_record ($1, $2, $3) as "t", "f" or the error.
static const char *
s_record (const char *broker, const char *seq, const char *entries)
{
    static char answer [512];
    const char *params [] = { broker, seq, entries };
    PGresult *res = PQexecParams (s_pg, "SELECT quota_usage_record ($1, $2::bigint, $3::jsonb)",
                                  3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1)
        snprintf (answer, sizeof answer, "%s", PQgetvalue (res, 0, 0));
    else
        snprintf (answer, sizeof answer, "error: %s", PQresultErrorMessage (res));
    PQclear (res);
    return answer;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_seeds_and_checks (void **state)
{
    static const struct { const char *id, *limits; } seeds [] = {
        { "free",       "60 30 4 1000 1" },
        { "pro",        "1200 300 32 100000 4" },
        { "enterprise", "12000 2000 256 0 16" },
        { "custom",     "0 0 0 0 4" },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds [0]; i++)
        assert_string_equal (s_text ("SELECT concat_ws (' ', rate_per_min, burst, max_in_flight,"
                                     " monthly_calls, weight) FROM plans WHERE id = $1",
                                     seeds [i].id, NULL), seeds [i].limits);
    assert_string_equal (s_text ("SELECT plan FROM tenants WHERE id = 'demo'", NULL, NULL), "custom");
    assert_int_equal (s_number ("SELECT count(*) FROM audit_log WHERE tenant_id = 'demo'"
                                " AND action = 'plan_set' AND actor = 'migration'"
                                " AND detail->>'from' = 'pro' AND detail->>'to' = 'custom'",
                                NULL, NULL), 1);
    assert_int_equal (s_number ("SELECT count(*) FROM tenants WHERE limits_version IS NULL",
                                NULL, NULL), 0);

    s_fails ("INSERT INTO plans (id, name, rate_per_min, burst) VALUES ('x1', 'X', -1, 1)",
             "plans_rate_per_min_range");
    s_fails ("INSERT INTO plans (id, name, rate_per_min, burst) VALUES ('x1', 'X', 10000001, 1)",
             "plans_rate_per_min_range");
    s_fails ("INSERT INTO plans (id, name, rate_per_min) VALUES ('x1', 'X', 10)",
             "plans_burst_with_rate");
    s_fails ("INSERT INTO plans (id, name, max_in_flight) VALUES ('x1', 'X', 100001)",
             "plans_max_in_flight_range");
    s_fails ("INSERT INTO plans (id, name, monthly_calls) VALUES ('x1', 'X', 9007199254740993)",
             "plans_monthly_calls_range");
    s_fails ("INSERT INTO plans (id, name, weight) VALUES ('x1', 'X', 0)", "plans_weight_range");
    s_fails ("INSERT INTO plans (id, name, weight) VALUES ('x1', 'X', 101)", "plans_weight_range");
    s_fails ("UPDATE tenants SET billing_anchor = 29 WHERE id = 'demo'",
             "tenants_billing_anchor_range");
    s_fails ("UPDATE tenants SET billing_anchor = 0 WHERE id = 'demo'",
             "tenants_billing_anchor_range");
}

static void
test_period_start (void **state)
{
    static const struct { const char *anchor, *now, *start; } cases [] = {
        { "1",  "2026-01-31T23:59:59Z", "2026-01-01T00:00:00Z" },
        { "1",  "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z" },
        { "15", "2026-02-14T23:59:59Z", "2026-01-15T00:00:00Z" },
        { "15", "2026-02-15T00:00:00Z", "2026-02-15T00:00:00Z" },
        { "15", "2026-01-10T08:00:00Z", "2025-12-15T00:00:00Z" },       //  across a year
        { "28", "2024-02-29T12:00:00Z", "2024-02-28T00:00:00Z" },       //  leap year
        { "28", "2024-03-01T00:00:00Z", "2024-02-28T00:00:00Z" },
        { "28", "2026-02-27T23:59:59Z", "2026-01-28T00:00:00Z" },
        { "28", "2026-03-27T00:00:00Z", "2026-02-28T00:00:00Z" },
        { "0",  "2026-03-27T00:00:00Z", "2026-03-01T00:00:00Z" },       //  out of range: 1
        { "31", "2026-03-27T00:00:00Z", "2026-03-01T00:00:00Z" },
        { "1",  "1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z" },
    };
    static const char *const zones [] = { "UTC", "Pacific/Chatham", "America/St_Johns" };
    for (size_t z = 0; z < sizeof zones / sizeof zones [0]; z++) {
        s_exec (s_pg, "SELECT set_config ('TimeZone', $1, false)", 1, zones [z]);
        for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
            const char *params [] = { cases [i].anchor, cases [i].now };
            PGresult *res = PQexecParams (s_pg,
                "SELECT to_char (quota_period_start ($1::int, $2::timestamptz) AT TIME ZONE 'UTC',"
                "                'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                2, NULL, params, NULL, NULL, 0);
            assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
            if (strcmp (PQgetvalue (res, 0, 0), cases [i].start) != 0)
                fail_msg ("anchor %s at %s (TimeZone %s): %s, want %s", cases [i].anchor,
                          cases [i].now, zones [z], PQgetvalue (res, 0, 0), cases [i].start);
            PQclear (res);
        }
    }
    s_exec (s_pg, "SELECT set_config ('TimeZone', 'UTC', false)", 0);
}

//  Waits until backend `pid` waits on a lock; fails after S_WAIT_MS.
static void
s_wait_blocked (int pid)
{
    char text [16];
    snprintf (text, sizeof text, "%d", pid);
    for (int waited = 0; waited < S_WAIT_MS; waited += 10) {
        //  The statistics are read once per transaction unless cleared
        s_exec (s_pg, "SELECT pg_stat_clear_snapshot ()", 0);
        if (s_number ("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int"
                      " AND wait_event_type = 'Lock'", text, NULL) == 1)
            return;
        poll (NULL, 0, 10);
    }
    fail_msg ("backend %d never waited on a lock", pid);
}

static void
test_versions (void **state)
{
    long long start = s_number ("SELECT quota_version ()", NULL, NULL);
    assert_true (start > 0);
    s_exec (s_pg, "INSERT INTO plans (id, name, rate_per_min, burst) VALUES ('v1', 'V', 10, 5)", 0);
    long long v1 = s_number ("SELECT limits_version FROM plans WHERE id = 'v1'", NULL, NULL);
    assert_true (v1 > start);
    assert_int_equal (s_number ("SELECT quota_version ()", NULL, NULL), v1);
    char since [24], version [24];
    snprintf (since, sizeof since, "%lld", start);
    snprintf (version, sizeof version, "%lld", v1);
    assert_string_equal (s_text ("SELECT string_agg (concat_ws (' ', id, rate, burst, in_flight,"
                                 " monthly, weight, version = $2::bigint), ',')"
                                 " FROM quota_plans_since ($1::bigint)", since, version),
                         "v1 10 5 0 0 1 t");
    assert_int_equal (s_number ("SELECT count(*) FROM quota_plans_since (0)", NULL, NULL), 5);

    //  The name is not a limit; each limit is.
    s_exec (s_pg, "UPDATE plans SET name = 'Vee' WHERE id = 'v1'", 0);
    assert_int_equal (s_number ("SELECT limits_version FROM plans WHERE id = 'v1'", NULL, NULL), v1);
    static const char *const changes [] = {
        "UPDATE plans SET rate_per_min = 11 WHERE id = 'v1'",
        "UPDATE plans SET burst = 6 WHERE id = 'v1'",
        "UPDATE plans SET max_in_flight = 2 WHERE id = 'v1'",
        "UPDATE plans SET monthly_calls = 100 WHERE id = 'v1'",
        "UPDATE plans SET weight = 3 WHERE id = 'v1'",
    };
    long long last = v1;
    for (size_t i = 0; i < sizeof changes / sizeof changes [0]; i++) {
        s_exec (s_pg, changes [i], 0);
        long long now = s_number ("SELECT limits_version FROM plans WHERE id = 'v1'", NULL, NULL);
        if (now <= last)
            fail_msg ("%s: version %lld, was %lld", changes [i], now, last);
        last = now;
    }
    //  A tenant: insert, plan, anchor move it on; its name does not.
    s_exec (s_pg, "INSERT INTO tenants (id, name, plan) VALUES ('vt', 'T', 'free')", 0);
    long long t1 = s_number ("SELECT limits_version FROM tenants WHERE id = 'vt'", NULL, NULL);
    assert_true (t1 > last);
    s_exec (s_pg, "UPDATE tenants SET name = 'Tee' WHERE id = 'vt'", 0);
    assert_int_equal (s_number ("SELECT limits_version FROM tenants WHERE id = 'vt'", NULL, NULL), t1);
    s_exec (s_pg, "UPDATE tenants SET plan = 'v1' WHERE id = 'vt'", 0);
    long long t2 = s_number ("SELECT limits_version FROM tenants WHERE id = 'vt'", NULL, NULL);
    assert_true (t2 > t1);
    s_exec (s_pg, "UPDATE tenants SET billing_anchor = 9 WHERE id = 'vt'", 0);
    long long t3 = s_number ("SELECT limits_version FROM tenants WHERE id = 'vt'", NULL, NULL);
    assert_true (t3 > t2);
    assert_int_equal (s_number ("SELECT quota_version ()", NULL, NULL), t3);

    //  Commit order: a writer that numbers a change holds the numbering
    //  until it commits, so a later writer gets a higher number and the
    //  poller never sees the later one without the earlier.
    char *error = NULL;
    PGconn *other = sb_db_connect_blocking (s_db, 10000, &error);
    assert_non_null (other);
    s_exec (s_pg, "BEGIN", 0);
    s_exec (s_pg, "UPDATE plans SET weight = 4 WHERE id = 'v1'", 0);
    assert_int_equal (PQsendQuery (other, "UPDATE tenants SET billing_anchor = 10 WHERE id = 'vt'"), 1);
    s_wait_blocked (PQbackendPID (other));
    s_exec (s_pg, "COMMIT", 0);
    PGresult *res;
    while ((res = PQgetResult (other))) {
        assert_int_equal (PQresultStatus (res), PGRES_COMMAND_OK);
        PQclear (res);
    }
    PQfinish (other);
    long long plan_version = s_number ("SELECT limits_version FROM plans WHERE id = 'v1'", NULL, NULL);
    long long tenant_version = s_number ("SELECT limits_version FROM tenants WHERE id = 'vt'", NULL, NULL);
    assert_true (plan_version > t3);
    assert_true (tenant_version > plan_version);

    s_exec (s_pg, "DELETE FROM tenants WHERE id = 'vt'", 0);
    s_exec (s_pg, "DELETE FROM plans WHERE id = 'v1'", 0);
}

static void
test_tenants_since_paging (void **state)
{
    long long before = s_number ("SELECT quota_version ()", NULL, NULL);
    char since [24];
    snprintf (since, sizeof since, "%lld", before);
    char count [16];
    snprintf (count, sizeof count, "%d", S_TENANTS);
    //  Anchors 1..28 in turn; ids p000…p249
    s_exec (s_pg, "INSERT INTO tenants (id, name, plan, billing_anchor)"
                  " SELECT 'p' || lpad (i::text, 3, '0'), 'P', 'pro', 1 + i % 28"
                  " FROM generate_series (0, $1::int - 1) i", 1, count);
    //  Usage stored: p007 in its current period, p008 in the one before.
    s_exec (s_pg, "INSERT INTO usage_months (tenant_id, period_start, calls)"
                  " SELECT 'p007', quota_period_start (billing_anchor, now ()), 4711"
                  " FROM tenants WHERE id = 'p007'", 0);
    s_exec (s_pg, "INSERT INTO usage_months (tenant_id, period_start, calls)"
                  " SELECT 'p008', quota_period_start (billing_anchor, now ()) - interval '1 month', 99"
                  " FROM tenants WHERE id = 'p008'", 0);

    char after [64] = "";
    char page [16];
    snprintf (page, sizeof page, "%d", S_PAGE);
    int seen = 0, pages = 0;
    while (true) {
        const char *params [] = { since, after, page };
        PGresult *res = PQexecParams (s_pg,
            "SELECT s.id, s.plan, s.anchor, s.used, s.version,"
            "       s.period = extract (epoch FROM quota_period_start (t.billing_anchor, now ()))::bigint,"
            "       s.anchor = t.billing_anchor"
            " FROM quota_tenants_since ($1::bigint, $2, $3::int) s JOIN tenants t ON t.id = s.id",
            3, NULL, params, NULL, NULL, 0);
        assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
        int rows = PQntuples (res);
        assert_true (rows <= S_PAGE);
        for (int r = 0; r < rows; r++) {
            char want [16];
            snprintf (want, sizeof want, "p%03d", seen);
            //  In id order, after the cursor, each once, nothing older
            assert_string_equal (PQgetvalue (res, r, 0), want);
            assert_string_equal (PQgetvalue (res, r, 1), "pro");
            assert_int_equal (atoi (PQgetvalue (res, r, 2)), 1 + seen % 28);
            assert_true (strtoll (PQgetvalue (res, r, 4), NULL, 10) > before);
            assert_string_equal (PQgetvalue (res, r, 5), "t");
            assert_string_equal (PQgetvalue (res, r, 6), "t");
            const char *used = PQgetvalue (res, r, 3);
            assert_string_equal (used, seen == 7? "4711": "0");
            seen++;
        }
        if (rows > 0)
            snprintf (after, sizeof after, "%s", PQgetvalue (res, rows - 1, 0));
        PQclear (res);
        pages++;
        if (rows < S_PAGE)
            break;
    }
    assert_int_equal (seen, S_TENANTS);
    assert_int_equal (pages, (S_TENANTS + S_PAGE) / S_PAGE);
    //  From version 0: the demo tenant too; NULL cursor = from the start
    snprintf (count, sizeof count, "%d", S_TENANTS + 10);
    assert_int_equal (s_number ("SELECT count(*) FROM quota_tenants_since (0, NULL, $1::int)",
                                count, NULL), S_TENANTS + 1);
    assert_int_equal (s_number ("SELECT count(*) FROM quota_tenants_since (0, 'p248', 10)",
                                NULL, NULL), 1);
    //  A change moves one tenant past the version
    long long mid = s_number ("SELECT quota_version ()", NULL, NULL);
    s_exec (s_pg, "UPDATE tenants SET plan = 'free' WHERE id = 'p100'", 0);
    snprintf (since, sizeof since, "%lld", mid);
    assert_string_equal (s_text ("SELECT string_agg (id || ' ' || plan, ',')"
                                 " FROM quota_tenants_since ($1::bigint, '', 1000)", since, NULL),
                         "p100 free");
    s_exec (s_pg, "DELETE FROM tenants WHERE id LIKE 'p%'", 0);
}

static void
test_usage_record (void **state)
{
    s_exec (s_pg, "INSERT INTO tenants (id, name) VALUES ('ua', 'A'), ('ub', 'B')", 0);
    static const char batch [] =
        "[{\"tenant\": \"ua\", \"period\": 1764547200, \"minute\": %lld, \"calls\": 12,"
        "  \"refused\": {\"rate\": 3}},"
        " {\"tenant\": \"ua\", \"period\": 1764547200, \"minute\": %lld, \"calls\": 5,"
        "  \"refused\": {\"rate\": 1, \"monthly\": 2}},"
        " {\"tenant\": \"ua\", \"period\": 1761955200, \"minute\": %lld, \"calls\": 1},"
        " {\"tenant\": \"ub\", \"period\": 1764547200, \"minute\": %lld, \"calls\": 0,"
        "  \"refused\": {\"in_flight\": 7}},"
        " {\"tenant\": \"_admin\", \"period\": 1764547200, \"minute\": %lld, \"calls\": 50},"
        " {\"tenant\": \"gone\", \"period\": 1764547200, \"minute\": %lld, \"calls\": 50}]";
    long long minute = s_number ("SELECT extract (epoch FROM date_trunc ('minute', now ()))::bigint",
                                 NULL, NULL);
    char entries [2048];
    snprintf (entries, sizeof entries, batch, minute, minute, minute, minute, minute, minute);

    assert_string_equal (s_record ("broker-a", "1", entries), "t");
    static const char months [] =
        "SELECT string_agg (concat_ws (' ', tenant_id, extract (epoch FROM period_start)::bigint,"
        "                              calls, refused::text), '; ' ORDER BY tenant_id, period_start)"
        " FROM usage_months";
    static const char want_months [] =
        "ua 1761955200 1 {}; ua 1764547200 17 {\"rate\": 4, \"monthly\": 2}; "
        "ub 1764547200 0 {\"in_flight\": 7}";
    assert_string_equal (s_text (months, NULL, NULL), want_months);
    char minute_text [24];
    snprintf (minute_text, sizeof minute_text, "%lld", minute);
    assert_string_equal (s_text ("SELECT string_agg (concat_ws (' ', tenant_id, calls, refused::text),"
                                 " '; ' ORDER BY tenant_id) FROM usage_minutes"
                                 " WHERE minute = to_timestamp ($1::bigint)", minute_text, NULL),
                         "ua 18 {\"rate\": 4, \"monthly\": 2}; ub 0 {\"in_flight\": 7}");

    //  The same batch again (a resend): false, nothing counted twice.
    assert_string_equal (s_record ("broker-a", "1", entries), "f");
    assert_string_equal (s_record ("broker-a", "1", "[]"), "f");
    assert_string_equal (s_text (months, NULL, NULL), want_months);
    //  Another broker's seq 1 is another batch.
    assert_string_equal (s_record ("broker-b", "1",
        "[{\"tenant\": \"ub\", \"period\": 1764547200, \"minute\": 0, \"calls\": 3,"
        "  \"refused\": {\"in_flight\": 1, \"budget\": 2}}]"), "t");
    assert_string_equal (s_text ("SELECT calls || ' ' || refused::text FROM usage_months"
                                 " WHERE tenant_id = 'ub'", NULL, NULL),
                         "3 {\"budget\": 2, \"in_flight\": 8}");
    //  The minute 0 of 1970 was older than two days: pruned at once.
    assert_int_equal (s_number ("SELECT count(*) FROM usage_minutes WHERE minute < now () - interval '2 days'",
                                NULL, NULL), 0);

    //  Malformed batches store nothing and leave their seq free.
    static const char *const bad [] = {
        "{}",
        "[5]",
        "[{\"period\": 1, \"minute\": 0, \"calls\": 1}]",
        "[{\"tenant\": \"ua\", \"period\": \"1\", \"minute\": 0, \"calls\": 1}]",
        "[{\"tenant\": \"ua\", \"period\": 1, \"minute\": 0, \"calls\": -1}]",
        "[{\"tenant\": \"ua\", \"period\": 1, \"minute\": 0, \"calls\": 1.5}]",
        "[{\"tenant\": \"ua\", \"period\": 1, \"minute\": 0, \"calls\": 9007199254740993}]",
        "[{\"tenant\": \"ua\", \"period\": 1, \"minute\": 0, \"calls\": 1, \"refused\": []}]",
        "[{\"tenant\": \"ua\", \"period\": 1, \"minute\": 0, \"calls\": 1, \"refused\": {\"rate\": \"x\"}}]",
        "[{\"tenant\": \"ua\", \"period\": 1, \"minute\": 0, \"calls\": 1}, 7]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        const char *answer = s_record ("broker-a", "2", bad [i]);
        if (!strstr (answer, "error: ") || !strstr (answer, "quota_usage_record"))
            fail_msg ("%s: %s, want a refusal", bad [i], answer);
    }
    assert_non_null (strstr (s_record ("", "2", "[]"), "broker id"));
    assert_non_null (strstr (s_record ("broker-a", "-1", "[]"), "seq"));
    assert_string_equal (s_text (months, NULL, NULL),
        "ua 1761955200 1 {}; ua 1764547200 17 {\"rate\": 4, \"monthly\": 2}; "
        "ub 1764547200 3 {\"budget\": 2, \"in_flight\": 8}");
    assert_string_equal (s_record ("broker-a", "2", "[]"), "t");

    //  Batches older than a day are forgotten when the next one comes.
    s_exec (s_pg, "UPDATE usage_batches SET recorded_at = now () - interval '25 hours'"
                  " WHERE broker_id = 'broker-a' AND seq = 1", 0);
    assert_string_equal (s_record ("broker-a", "3", "[]"), "t");
    assert_int_equal (s_number ("SELECT count(*) FROM usage_batches WHERE broker_id = 'broker-a'",
                                NULL, NULL), 2);

    //  Deleting a tenant deletes its usage.
    s_exec (s_pg, "DELETE FROM tenants WHERE id IN ('ua', 'ub')", 0);
    assert_int_equal (s_number ("SELECT count(*) FROM usage_months", NULL, NULL), 0);
    assert_int_equal (s_number ("SELECT count(*) FROM usage_minutes", NULL, NULL), 0);
}

//  ---------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    char admin [S_MAX_CONNINFO], sql [128];
    snprintf (admin, sizeof admin, "%s user=postgres dbname=postgres", s_conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (admin, 10000, &error);
    if (!conn) {
        fprintf (stderr, "admin connect: %s\n", error);
        return -1;
    }
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS sbtest_quota_%d", (int) getpid ());
    PQclear (PQexec (conn, sql));
    snprintf (sql, sizeof sql, "CREATE DATABASE sbtest_quota_%d OWNER switchboard", (int) getpid ());
    PGresult *res = PQexec (conn, sql);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
    PQclear (res);
    PQfinish (conn);
    if (rc)
        return -1;
    snprintf (s_db, sizeof s_db, "%s dbname=sbtest_quota_%d", s_conninfo, (int) getpid ());
    s_pg = sb_db_connect_blocking (s_db, 10000, &error);
    if (!s_pg || sb_db_migrate (s_pg, SB_SOURCE_DIR "/db/migrations", &error)) {
        fprintf (stderr, "migrate: %s\n", error? error: "?");
        free (error);
        return -1;
    }
    PQclear (PQexec (s_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    return 0;
}

static int
s_teardown (void **state)
{
    PQfinish (s_pg);
    char admin [S_MAX_CONNINFO], sql [128];
    snprintf (admin, sizeof admin, "%s user=postgres dbname=postgres", s_conninfo);
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (admin, 10000, &error);
    int rc = -1;
    if (conn) {
        snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS sbtest_quota_%d", (int) getpid ());
        PGresult *res = PQexec (conn, sql);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
        PQclear (res);
        PQfinish (conn);
    }
    free (error);
    free (s_conninfo);
    return rc;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_seeds_and_checks),
        cmocka_unit_test (test_period_start),
        cmocka_unit_test (test_versions),
        cmocka_unit_test (test_tenants_since_paging),
        cmocka_unit_test (test_usage_record),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
