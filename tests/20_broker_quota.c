/*  tests/20_broker_quota.c — unit tests of the broker's quota table
    (broker/sb_quota.c; PROTOCOL.md "Quotas"): pure, no sockets, with a
    simulated monotonic clock and a fake wall clock. GCRA exactness over
    every window of random arrivals, burst, cost > 1, unlimited plans, the
    in-flight cap, monthly allowances and their rollover at the billing
    anchor, the stored `used` applied once, plan changes, upstream budgets,
    usage batching with the carry of a rolled-over period, weights, the
    overflow past max_tenants, and the memory 100,000 tenants take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_quota.h"

//  Wall clocks (Unix ms)
#define JAN_01          1767225600000ll     /* 2026-01-01T00:00:00Z */
#define JAN_15          1768435200000ll     /* 2026-01-15T00:00:00Z */
#define JAN_31_LAST     1769903999000ll     /* 2026-01-31T23:59:59Z */
#define FEB_01          1769904000000ll     /* 2026-02-01T00:00:00Z */
#define FEB_14_LAST     1771113599000ll     /* 2026-02-14T23:59:59Z */
#define FEB_15          1771113600000ll     /* 2026-02-15T00:00:00Z */
#define DEC_01          1764547200000ll     /* 2025-12-01T00:00:00Z */
#define LEAP_DAY_NOON   1835438400000ll     /* 2028-02-29T12:00:00Z */
#define MAR_01_2028     1835481600000ll     /* 2028-03-01T00:00:00Z */

#define MAX_EVENTS      4000                /* admissions one exactness run keeps */
#define MEMORY_TENANTS  100000              /* tenants of the memory test */
#define MEMORY_BUDGET   (40u << 20)         /* "a few tens of MB" for them, at most */

//  A small deterministic generator (tests repeat exactly).
static uint64_t s_seed = 88172645463325252ull;

static uint32_t
s_random (uint32_t bound)
{
    s_seed ^= s_seed << 13;
    s_seed ^= s_seed >> 7;
    s_seed ^= s_seed << 17;
    return (uint32_t) (s_seed % bound);
}

static sb_quota_t *
s_table (uint32_t rate, uint32_t burst, uint32_t in_flight, uint64_t monthly, uint32_t weight,
         size_t max_tenants)
{
    sb_quota_config_t config = { .max_tenants = max_tenants };
    config.defaults.rate = rate;
    config.defaults.burst = burst;
    config.defaults.in_flight = in_flight;
    config.defaults.monthly = monthly;
    config.defaults.weight = weight;
    sb_quota_t *quota = sb_quota_new (&config);
    assert_non_null (quota);
    return quota;
}

static sb_quota_entry_t
s_plan (const char *id, uint32_t rate, uint32_t burst, uint32_t in_flight, uint64_t monthly,
        uint32_t weight)
{
    sb_quota_entry_t entry;
    memset (&entry, 0, sizeof (entry));
    entry.is_plan = true;
    snprintf (entry.plan.id, sizeof (entry.plan.id), "%s", id);
    entry.plan.rate = rate;
    entry.plan.burst = burst;
    entry.plan.in_flight = in_flight;
    entry.plan.monthly = monthly;
    entry.plan.weight = weight;
    return entry;
}

static sb_quota_entry_t
s_tenant (const char *id, const char *plan, uint32_t anchor, int64_t period_ms, uint64_t used)
{
    sb_quota_entry_t entry;
    memset (&entry, 0, sizeof (entry));
    snprintf (entry.tenant.id, sizeof (entry.tenant.id), "%s", id);
    snprintf (entry.tenant.plan, sizeof (entry.tenant.plan), "%s", plan);
    entry.tenant.anchor = anchor;
    entry.tenant.period = period_ms / 1000;
    entry.tenant.used = used;
    return entry;
}

//  Admits a job without budget; returns the state (NULL when refused).
static sb_quota_state_t *
s_admit (sb_quota_t *quota, const char *tenant, uint32_t cost, int64_t now_ms, int64_t wall_ms,
         sb_quota_verdict_t *verdict)
{
    return sb_quota_admit (quota, tenant, cost, NULL, 0, 0, now_ms, wall_ms, verdict);
}

static void
test_config (void **state)
{
    sb_quota_config_t config = { .max_tenants = 10 };
    config.defaults.weight = 1;
    sb_quota_t *quota = sb_quota_new (&config);
    assert_non_null (quota);
    assert_int_equal (sb_quota_tenants (quota), 0);
    assert_false (sb_quota_loaded (quota));
    sb_quota_set_loaded (quota);
    assert_true (sb_quota_loaded (quota));
    sb_quota_destroy (&quota);
    sb_quota_destroy (&quota);
    assert_null (quota);

    //  Every bound of the config is refused
    sb_quota_config_t bad = config;
    bad.max_tenants = 0;
    assert_null (sb_quota_new (&bad));
    bad = config;
    bad.max_tenants = SB_QUOTA_MAX_TENANTS + 1;
    assert_null (sb_quota_new (&bad));
    bad = config;
    bad.defaults.weight = 0;
    assert_null (sb_quota_new (&bad));
    bad = config;
    bad.defaults.weight = SB_QUOTA_MAX_WEIGHT + 1;
    assert_null (sb_quota_new (&bad));
    bad = config;
    bad.defaults.rate = 10;     //  a rate needs a burst
    assert_null (sb_quota_new (&bad));
    bad = config;
    bad.defaults.rate = SB_QUOTA_MAX_RATE + 1;
    bad.defaults.burst = 1;
    assert_null (sb_quota_new (&bad));
    bad = config;
    bad.defaults.in_flight = SB_QUOTA_MAX_IN_FLIGHT + 1;
    assert_null (sb_quota_new (&bad));
    bad = config;
    bad.defaults.monthly = SB_MAX_QUOTA_VALUE + 1;
    assert_null (sb_quota_new (&bad));
}

//  60/min is one unit a second: a fresh tenant gets the burst at once,
//  then one unit per second; retry_after_ms is exact.
static void
test_burst (void **state)
{
    sb_quota_t *quota = s_table (60, 5, 0, 0, 1, 100);
    sb_quota_verdict_t verdict;
    int64_t now = 5000;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_non_null (s_admit (quota, "acme", 1, now, JAN_01, &verdict));
        assert_string_equal (verdict.quota.reason, "");
        assert_string_equal (verdict.quota.scope, "default");
        assert_int_equal (verdict.quota.limit, 60);
        assert_int_equal (verdict.quota.remaining, 5 - i);
        assert_int_equal (verdict.quota.reset_s, i);
        assert_int_equal (verdict.quota.window_s, 60);
        assert_int_equal (verdict.retry_after_ms, 0);
    }
    assert_null (s_admit (quota, "acme", 1, now, JAN_01, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_RATE);
    assert_string_equal (verdict.quota.reason, "rate");
    assert_string_equal (verdict.quota.scope, "default");
    assert_int_equal (verdict.quota.limit, 60);
    assert_int_equal (verdict.quota.remaining, 0);
    assert_int_equal (verdict.quota.reset_s, 5);
    assert_int_equal (verdict.retry_after_ms, 1000);
    //  One ms early is still refused, and says 1 ms; on time is admitted
    assert_null (s_admit (quota, "acme", 1, now + 999, JAN_01, &verdict));
    assert_int_equal (verdict.retry_after_ms, 1);
    assert_non_null (s_admit (quota, "acme", 1, now + 1000, JAN_01, &verdict));
    assert_int_equal (verdict.quota.remaining, 0);
    //  Another tenant has its own bucket
    assert_non_null (s_admit (quota, "other", 1, now + 1000, JAN_01, &verdict));
    assert_int_equal (verdict.quota.remaining, 4);
    //  After the bucket refills (5 s), the whole burst again
    for (int i = 0; i < 5; i++)
        assert_non_null (s_admit (quota, "acme", 1, now + 6000, JAN_01, &verdict));
    assert_null (s_admit (quota, "acme", 1, now + 6000, JAN_01, &verdict));
    sb_quota_destroy (&quota);
}

//  A job costs `cost` units of the bucket; a cost above the burst is
//  never admitted.
static void
test_cost (void **state)
{
    sb_quota_t *quota = s_table (60, 10, 0, 0, 1, 100);
    sb_quota_verdict_t verdict;
    assert_non_null (s_admit (quota, "acme", 4, 0, JAN_01, &verdict));
    assert_int_equal (verdict.quota.remaining, 6);
    assert_non_null (s_admit (quota, "acme", 4, 0, JAN_01, &verdict));
    assert_int_equal (verdict.quota.remaining, 2);
    assert_null (s_admit (quota, "acme", 4, 0, JAN_01, &verdict));
    assert_int_equal (verdict.quota.remaining, 2);
    assert_int_equal (verdict.retry_after_ms, 2000);
    assert_non_null (s_admit (quota, "acme", 2, 0, JAN_01, &verdict));
    assert_int_equal (verdict.quota.remaining, 0);
    assert_int_equal (verdict.quota.reset_s, 10);
    //  Cost 11 > burst 10: refused even with a full bucket
    assert_null (s_admit (quota, "acme", 11, 0, JAN_01, &verdict));
    assert_int_equal (verdict.retry_after_ms, 10000);
    assert_null (s_admit (quota, "acme", 11, 20000, JAN_01, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_RATE);
    assert_non_null (s_admit (quota, "acme", 10, 20000, JAN_01, &verdict));
    sb_quota_destroy (&quota);
}

//  Random arrivals under several rates and bursts: in every window
//  [t_i, t_j] of admissions, Σcost ≤ burst + rate × (t_j − t_i) / 60 s;
//  and every refusal is needed: with the job, some window ending now
//  would reach beyond that bound. In units of 1/60000 of a cost unit,
//  so that the arithmetic is exact: a window [s, now] can take the job
//  when (A[s, now] + cost) × 60000 ≤ burst × 60000 + rate × (now − s).
//  `spread`: time moves on one arrival in `spread` (many jobs in one ms).
static void
s_exactness_run (uint32_t rate, uint32_t burst, uint32_t max_cost, uint32_t max_gap_ms,
                 uint32_t spread)
{
    sb_quota_t *quota = s_table (rate, burst, 0, 0, 1, 10);
    static int64_t times [MAX_EVENTS];
    static int64_t sums [MAX_EVENTS + 1];      //  sums [k] = Σcost of admissions before k
    const int64_t scale = 60000;
    size_t admitted = 0;
    int64_t now = 1000 + s_random (100000);
    //  min over admissions i of (sums [i] × scale − rate × times [i]): the
    //  tightest window ending now starts at one of them (or now)
    int64_t tightest = INT64_MAX;
    uint32_t refused = 0;
    while (admitted < MAX_EVENTS) {
        uint32_t cost = 1 + s_random (max_cost);
        int64_t now_term = sums [admitted] * scale - (int64_t) rate * now;
        int64_t least = tightest < now_term ? tightest : now_term;
        //  room (× scale) in the tightest window ending now
        int64_t room = (int64_t) burst * scale + (int64_t) rate * now
                     - sums [admitted] * scale + least;
        sb_quota_verdict_t verdict;
        sb_quota_state_t *state = s_admit (quota, "t", cost, now, JAN_01, &verdict);
        if (state) {
            if ((int64_t) cost * scale > room)
                fail_msg ("rate %u burst %u: cost %u admitted at %lld with room %lld/60000",
                          rate, burst, cost, (long long) now, (long long) room);
            int64_t term = sums [admitted] * scale - (int64_t) rate * now;
            if (term < tightest)
                tightest = term;
            times [admitted] = now;
            sums [admitted + 1] = sums [admitted] + cost;
            admitted++;
            sb_quota_release (quota, state);
        }
        else {
            assert_int_equal (verdict.refusal, SB_REFUSAL_RATE);
            assert_true (verdict.retry_after_ms >= 1);
            if ((int64_t) cost * scale <= room)
                fail_msg ("rate %u burst %u: cost %u refused at %lld with room %lld/60000",
                          rate, burst, cost, (long long) now, (long long) room);
            refused++;
        }
        if (s_random (spread) == 0)
            now += s_random (max_gap_ms + 1);
    }
    //  Every window of admissions, explicitly
    for (size_t i = 0; i < admitted; i++)
        for (size_t j = i; j < admitted; j++) {
            int64_t units = sums [j + 1] - sums [i];
            if (units * scale > (int64_t) burst * scale + (int64_t) rate * (times [j] - times [i]))
                fail_msg ("rate %u burst %u: %lld units in [%lld, %lld]", rate, burst,
                          (long long) units, (long long) times [i], (long long) times [j]);
        }
    assert_true (refused > 0);
    sb_quota_destroy (&quota);
}

static void
test_rate_exactness (void **state)
{
    //  rate, burst, max cost, max gap, spread: arrivals outrun each rate
    s_exactness_run (60, 1, 1, 500, 1);
    s_exactness_run (7, 3, 2, 4000, 1);
    s_exactness_run (37, 10, 3, 1500, 1);
    s_exactness_run (600, 100, 5, 20, 1);
    s_exactness_run (1000, 50, 1, 60, 1);
    s_exactness_run (7000000, 2000, 10, 1, 100);
    s_exactness_run (12000, 2000, 100, 2, 1);
    s_exactness_run (100, 5, 8, 3000, 1);      //  costs above the burst too
}

//  A plan's rate and burst changing under a busy tenant (the bucket's
//  fraction converted to the new rate): every window after the change
//  holds the new bound.
static void
test_rate_change (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 0, 0, 1, 10);
    const uint32_t rates [] = { 7, 13, 1000, 37 };
    const uint32_t bursts [] = { 3, 2, 40, 5 };
    static int64_t times [MAX_EVENTS];
    static int64_t sums [MAX_EVENTS + 1];
    int64_t now = 5000;
    for (int phase = 0; phase < 4; phase++) {
        sb_quota_entry_t entries [] = {
            s_plan ("p", rates [phase], bursts [phase], 0, 0, 1),
            s_tenant ("t", "p", 1, JAN_01, 0),
        };
        sb_quota_apply (quota, entries, 2, JAN_01);
        size_t admitted = 0;
        for (int i = 0; i < 3000 && admitted < MAX_EVENTS; i++) {
            uint32_t cost = 1 + s_random (2);
            sb_quota_verdict_t verdict;
            sb_quota_state_t *job = s_admit (quota, "t", cost, now, JAN_01, &verdict);
            if (job) {
                times [admitted] = now;
                sums [admitted + 1] = sums [admitted] + cost;
                admitted++;
                sb_quota_release (quota, job);
            }
            now += s_random (60000 / rates [phase]);
        }
        assert_true (admitted > bursts [phase]);
        for (size_t i = 0; i < admitted; i++)
            for (size_t j = i; j < admitted; j++)
                if ((sums [j + 1] - sums [i]) * 60000 > (int64_t) bursts [phase] * 60000
                    + (int64_t) rates [phase] * (times [j] - times [i]))
                    fail_msg ("phase %d: %lld units in [%lld, %lld]", phase,
                              (long long) (sums [j + 1] - sums [i]), (long long) times [i],
                              (long long) times [j]);
    }
    sb_quota_destroy (&quota);
}

static void
test_unlimited (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 0, 0, 1, 10);
    sb_quota_verdict_t verdict;
    for (int i = 0; i < 10000; i++) {
        assert_non_null (s_admit (quota, "big", SB_MAX_COST, 7, JAN_01, &verdict));
        assert_string_equal (verdict.quota.reason, "");
        assert_string_equal (verdict.quota.scope, "");
        assert_int_equal (verdict.quota.limit, 0);
        assert_int_equal (verdict.quota.remaining, 0);
        assert_int_equal (verdict.quota.window_s, 0);
    }
    sb_usage_entry_t usage [4];
    assert_int_equal (sb_quota_take_usage (quota, JAN_01, usage, 4), 1);
    assert_int_equal (usage [0].calls, 10000ull * SB_MAX_COST);
    sb_quota_destroy (&quota);
}

static void
test_in_flight (void **state)
{
    sb_quota_t *quota = s_table (60, 10, 3, 0, 1, 10);
    sb_quota_verdict_t verdict;
    sb_quota_state_t *jobs [3];
    for (int i = 0; i < 3; i++) {
        jobs [i] = s_admit (quota, "acme", 1, 0, JAN_01, &verdict);
        assert_non_null (jobs [i]);
    }
    assert_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_IN_FLIGHT);
    assert_string_equal (verdict.quota.reason, "in_flight");
    assert_string_equal (verdict.quota.scope, "default");
    assert_int_equal (verdict.quota.limit, 3);
    assert_int_equal (verdict.quota.remaining, 0);
    assert_int_equal (verdict.retry_after_ms, SB_QUOTA_IN_FLIGHT_RETRY_MS);
    //  The refusals charged nothing: the bucket still has 7
    sb_quota_release (quota, jobs [1]);
    sb_quota_release (quota, NULL);
    sb_quota_state_t *again = s_admit (quota, "acme", 1, 0, JAN_01, &verdict);
    assert_non_null (again);
    assert_int_equal (verdict.quota.remaining, 6);
    assert_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    sb_quota_release (quota, jobs [0]);
    sb_quota_release (quota, jobs [2]);
    sb_quota_release (quota, again);
    for (int i = 0; i < 3; i++)
        assert_non_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    sb_quota_destroy (&quota);
}

//  Monthly allowance 100 in cost units; calendar months by default, day 15
//  for "beta"; the period ends at 00:00:00 UTC of the anchor day.
static void
test_monthly_rollover (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 0, 0, 1, 10);
    sb_quota_entry_t entries [] = {
        s_plan ("metered", 0, 0, 0, 100, 1),
        s_tenant ("acme", "metered", 1, JAN_01, 0),
        s_tenant ("beta", "metered", 15, JAN_15, 0),
    };
    sb_quota_apply (quota, entries, 3, JAN_31_LAST);
    sb_quota_verdict_t verdict;
    for (int i = 0; i < 10; i++) {
        assert_non_null (s_admit (quota, "acme", 10, 0, JAN_31_LAST, &verdict));
        assert_non_null (s_admit (quota, "beta", 10, 0, JAN_31_LAST, &verdict));
    }
    assert_null (s_admit (quota, "acme", 1, 0, JAN_31_LAST + 500, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_MONTHLY);
    assert_string_equal (verdict.quota.reason, "monthly");
    assert_string_equal (verdict.quota.scope, "metered");
    assert_int_equal (verdict.quota.limit, 100);
    assert_int_equal (verdict.quota.remaining, 0);
    assert_int_equal (verdict.quota.reset_s, 1);
    assert_int_equal (verdict.quota.window_s, 31 * 86400);
    assert_int_equal (verdict.retry_after_ms, 500);
    assert_null (s_admit (quota, "beta", 1, 0, JAN_31_LAST, &verdict));
    assert_int_equal (verdict.quota.reset_s, (FEB_15 - JAN_31_LAST) / 1000);
    assert_int_equal (verdict.retry_after_ms, SB_MAX_RETRY_AFTER_MS);

    //  Midnight: acme's month is new, beta's is not
    assert_non_null (s_admit (quota, "acme", 10, 0, FEB_01, &verdict));
    assert_null (s_admit (quota, "beta", 1, 0, FEB_01, &verdict));
    assert_null (s_admit (quota, "beta", 1, 0, FEB_14_LAST, &verdict));
    assert_int_equal (verdict.quota.window_s, 31 * 86400);
    assert_non_null (s_admit (quota, "beta", 1, 0, FEB_15, &verdict));

    //  The usage: January's counts carried, then the new periods'
    sb_usage_entry_t usage [8];
    size_t count = sb_quota_take_usage (quota, FEB_15 + 61000, usage, 8);
    assert_int_equal (count, 4);
    assert_string_equal (usage [0].tenant, "acme");
    assert_int_equal (usage [0].period, JAN_01 / 1000);
    assert_int_equal (usage [0].calls, 100);
    assert_int_equal (usage [0].refused [SB_REFUSAL_MONTHLY], 1);
    assert_int_equal (usage [0].minute, FEB_15 / 1000 + 60);
    assert_string_equal (usage [1].tenant, "beta");
    assert_int_equal (usage [1].period, JAN_15 / 1000);
    assert_int_equal (usage [1].calls, 100);
    assert_int_equal (usage [1].refused [SB_REFUSAL_MONTHLY], 3);
    assert_string_equal (usage [2].tenant, "acme");
    assert_int_equal (usage [2].period, FEB_01 / 1000);
    assert_int_equal (usage [2].calls, 10);
    assert_string_equal (usage [3].tenant, "beta");
    assert_int_equal (usage [3].period, FEB_15 / 1000);
    assert_int_equal (usage [3].calls, 1);
    assert_int_equal (sb_quota_take_usage (quota, FEB_15 + 61000, usage, 8), 0);

    //  A new anchor moves the period at once: what the old one counted is
    //  carried, used starts again (the stored `used` is not applied twice)
    assert_non_null (s_admit (quota, "acme", 1, 0, FEB_15, &verdict));
    sb_quota_entry_t moved = s_tenant ("acme", "metered", 15, FEB_15, 50);
    sb_quota_apply (quota, &moved, 1, FEB_15);
    for (int i = 0; i < 10; i++)
        assert_non_null (s_admit (quota, "acme", 10, 0, FEB_15, &verdict));
    assert_null (s_admit (quota, "acme", 10, 0, FEB_15, &verdict));
    assert_int_equal (verdict.quota.window_s, 28 * 86400);
    count = sb_quota_take_usage (quota, FEB_15, usage, 8);
    assert_int_equal (count, 2);
    assert_int_equal (usage [0].period, FEB_01 / 1000);
    assert_int_equal (usage [0].calls, 1);
    assert_int_equal (usage [1].period, FEB_15 / 1000);
    assert_int_equal (usage [1].calls, 100);
    assert_int_equal (usage [1].refused [SB_REFUSAL_MONTHLY], 1);

    //  A leap year's February has 29 days
    sb_quota_entry_t leap = s_tenant ("leap", "metered", 1, LEAP_DAY_NOON, 0);
    sb_quota_apply (quota, &leap, 1, LEAP_DAY_NOON);
    assert_non_null (s_admit (quota, "leap", 100, 0, LEAP_DAY_NOON, &verdict));
    assert_null (s_admit (quota, "leap", 1, 0, LEAP_DAY_NOON, &verdict));
    assert_int_equal (verdict.quota.window_s, 29 * 86400);
    assert_int_equal (verdict.quota.reset_s, (MAR_01_2028 - LEAP_DAY_NOON) / 1000);
    assert_non_null (s_admit (quota, "leap", 100, 0, MAR_01_2028, &verdict));
    sb_quota_destroy (&quota);
}

//  A LIMITS entry's `used` adds once, only for the current period.
static void
test_used_applied_once (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 0, 0, 1, 10);
    sb_quota_verdict_t verdict;
    //  "early" runs 5 units before the broker hears of it
    assert_non_null (s_admit (quota, "early", 5, 0, JAN_31_LAST, &verdict));
    sb_quota_entry_t entries [] = {
        s_plan ("metered", 0, 0, 0, 100, 1),
        s_tenant ("acme", "metered", 1, JAN_01, 90),
        s_tenant ("stale", "metered", 1, DEC_01, 90),
        s_tenant ("early", "metered", 1, JAN_01, 90),
    };
    sb_quota_apply (quota, entries, 4, JAN_31_LAST);
    assert_non_null (s_admit (quota, "acme", 10, 0, JAN_31_LAST, &verdict));
    assert_null (s_admit (quota, "acme", 1, 0, JAN_31_LAST, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_MONTHLY);
    //  A later entry does not add it again, nor reset it
    sb_quota_entry_t later [] = {
        s_tenant ("acme", "metered", 1, JAN_01, 0),
        s_tenant ("stale", "metered", 1, JAN_01, 90),
    };
    sb_quota_apply (quota, later, 2, JAN_31_LAST);
    assert_null (s_admit (quota, "acme", 1, 0, JAN_31_LAST, &verdict));
    assert_int_equal (verdict.quota.remaining, 0);
    //  "stale" named December: nothing added, then or later
    assert_non_null (s_admit (quota, "stale", 100, 0, JAN_31_LAST, &verdict));
    assert_null (s_admit (quota, "stale", 1, 0, JAN_31_LAST, &verdict));
    //  "early": 5 counted + 90 stored
    assert_non_null (s_admit (quota, "early", 5, 0, JAN_31_LAST, &verdict));
    assert_null (s_admit (quota, "early", 1, 0, JAN_31_LAST, &verdict));
    assert_int_equal (verdict.quota.remaining, 0);
    sb_quota_destroy (&quota);
}

static void
s_collect (const sb_quota_plan_stats_t *stats, void *arg)
{
    sb_quota_plan_stats_t *out = (sb_quota_plan_stats_t *) arg;
    while (out->plan [0])
        out++;
    *out = *stats;
}

//  A tenant naming a plan not yet received runs under the defaults; a
//  plan's new limits apply to the next admission.
static void
test_plan_change (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 1, 0, 2, 10);
    sb_quota_verdict_t verdict;
    sb_quota_entry_t tenant = s_tenant ("acme", "pro", 1, JAN_01, 0);
    sb_quota_apply (quota, &tenant, 1, JAN_01);
    assert_int_equal (sb_quota_weight (quota, "acme"), 2);
    sb_quota_state_t *first = s_admit (quota, "acme", 1, 0, JAN_01, &verdict);
    assert_non_null (first);
    assert_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    assert_string_equal (verdict.quota.scope, "default");

    sb_quota_entry_t pro = s_plan ("pro", 600, 100, 2, 0, 4);
    sb_quota_apply (quota, &pro, 1, JAN_01);
    assert_int_equal (sb_quota_weight (quota, "acme"), 4);
    assert_non_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    assert_string_equal (verdict.quota.scope, "pro");
    assert_int_equal (verdict.quota.limit, 600);
    assert_int_equal (verdict.quota.remaining, 99);
    assert_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_IN_FLIGHT);
    assert_string_equal (verdict.quota.scope, "pro");
    assert_int_equal (verdict.quota.limit, 2);

    //  A bigger in_flight: admitted at once; a rate: the next admission
    pro = s_plan ("pro", 60, 2, 3, 0, 4);
    sb_quota_apply (quota, &pro, 1, JAN_01);
    assert_non_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    assert_int_equal (verdict.quota.limit, 60);
    assert_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_IN_FLIGHT);
    sb_quota_release (quota, first);
    assert_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_RATE);

    //  Moving the tenant to another plan
    sb_quota_entry_t moves [] = {
        s_plan ("enterprise", 0, 0, 0, 0, 16),
        s_tenant ("acme", "enterprise", 1, JAN_01, 0),
        s_tenant ("beta", "pro", 1, JAN_01, 0),
    };
    sb_quota_apply (quota, moves, 3, JAN_01);
    assert_int_equal (sb_quota_weight (quota, "acme"), 16);
    assert_int_equal (sb_quota_weight (quota, "beta"), 4);
    for (int i = 0; i < 50; i++)
        assert_non_null (s_admit (quota, "acme", 1, 0, JAN_01, &verdict));

    //  Per-plan counters (a tenant on an unknown plan counts as "default")
    sb_quota_entry_t gamma = s_tenant ("gamma", "unheard", 1, JAN_01, 0);
    sb_quota_apply (quota, &gamma, 1, JAN_01);
    assert_int_equal (sb_quota_weight (quota, "gamma"), 2);
    sb_quota_plan_stats_t stats [8];
    memset (stats, 0, sizeof (stats));
    sb_quota_each_plan (quota, s_collect, stats);
    assert_string_equal (stats [0].plan, "default");
    assert_int_equal (stats [0].tenants, 1);
    assert_int_equal (stats [0].admitted, 1);
    assert_int_equal (stats [0].refused [SB_REFUSAL_IN_FLIGHT], 1);
    assert_string_equal (stats [1].plan, "pro");
    assert_int_equal (stats [1].tenants, 1);
    assert_int_equal (stats [1].admitted, 2);
    assert_int_equal (stats [1].refused [SB_REFUSAL_IN_FLIGHT], 2);
    assert_int_equal (stats [1].refused [SB_REFUSAL_RATE], 1);
    assert_string_equal (stats [2].plan, "enterprise");
    assert_int_equal (stats [2].tenants, 1);
    assert_int_equal (stats [2].admitted, 50);
    assert_string_equal (stats [3].plan, "");
    sb_quota_destroy (&quota);
}

//  A connection's budget: 5 requests per 24 s (slots of 1 s).
static void
test_budget (void **state)
{
    sb_quota_t *quota = s_table (60, 10, 0, 0, 1, 10);
    sb_quota_verdict_t verdict;
    int64_t now = 100000;       //  the start of slot 100
    for (int i = 0; i < 5; i++)
        assert_non_null (sb_quota_admit (quota, "acme", 1, "salesforce", 5, 24, now, JAN_01,
                                         &verdict));
    assert_null (sb_quota_admit (quota, "acme", 1, "salesforce", 5, 24, now + 10, JAN_01,
                                 &verdict));
    assert_int_equal (verdict.refusal, SB_REFUSAL_BUDGET);
    assert_string_equal (verdict.quota.reason, "budget");
    assert_string_equal (verdict.quota.scope, "salesforce");
    assert_int_equal (verdict.quota.limit, 5);
    assert_int_equal (verdict.quota.remaining, 0);
    assert_int_equal (verdict.quota.window_s, 24);
    //  Slot 100 leaves the sum at slot 125
    assert_int_equal (verdict.retry_after_ms, 25000 - 10);
    assert_int_equal (verdict.quota.reset_s, 25);
    //  The budget refusal charged nothing else: the bucket has 5 left
    assert_non_null (sb_quota_admit (quota, "acme", 1, "github", 5, 24, now + 10, JAN_01,
                                     &verdict));
    assert_int_equal (verdict.quota.remaining, 4);
    //  Another tenant's connection is another budget
    assert_non_null (sb_quota_admit (quota, "beta", 1, "salesforce", 5, 24, now, JAN_01,
                                     &verdict));
    //  Still spent one ms before the slot, whole again on it
    assert_null (sb_quota_admit (quota, "acme", 1, "salesforce", 5, 24, now + 24999, JAN_01,
                                 &verdict));
    assert_int_equal (verdict.retry_after_ms, 1);
    assert_non_null (sb_quota_admit (quota, "acme", 1, "salesforce", 5, 24, now + 25000, JAN_01,
                                     &verdict));
    assert_int_equal (verdict.quota.remaining, 9);   //  the rate policy, not the budget
    sb_quota_destroy (&quota);
}

//  Random arrivals against a budget: no window of window_s holds more
//  than the limit, and every refusal's retry is when it is admitted.
static void
test_budget_exactness (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 0, 0, 1, 10);
    const uint32_t limit = 20, window_s = 7;
    static int64_t times [MAX_EVENTS];
    size_t admitted = 0;
    int64_t now = 12345;
    while (admitted < MAX_EVENTS) {
        sb_quota_verdict_t verdict;
        if (sb_quota_admit (quota, "t", 1, "c", limit, window_s, now, JAN_01, &verdict))
            times [admitted++] = now;
        else {
            assert_int_equal (verdict.refusal, SB_REFUSAL_BUDGET);
            //  The retry lands on a slot start: at most 25 slots away
            assert_true (verdict.retry_after_ms >= 1);
            assert_true (verdict.retry_after_ms <= window_s * 1000 * 25 / 24 + 1);
        }
        now += s_random (120);
    }
    size_t first = 0;
    for (size_t j = 0; j < admitted; j++) {
        while (times [j] - times [first] > (int64_t) window_s * 1000)
            first++;
        if (j - first + 1 > limit)
            fail_msg ("%zu requests in [%lld, %lld]", j - first + 1,
                      (long long) times [first], (long long) times [j]);
    }
    //  Refused at most one slot early: under overload, every 25 slots
    //  (window + one slot, W') let `limit` through, so over the run
    //  admitted ≥ limit × (span / W' − 2); × 24 for integers
    int64_t span = times [admitted - 1] - times [0];
    int64_t window25 = (int64_t) window_s * 1000 * 25;     //  W' × 24
    assert_true ((int64_t) admitted * window25 >= (int64_t) limit * (24 * span - 2 * window25));
    sb_quota_destroy (&quota);
}

//  Usage leaves in batches of at most `max`, each tenant once per batch.
static void
test_take_usage (void **state)
{
    sb_quota_t *quota = s_table (60, 1, 0, 0, 1, 5000);
    sb_quota_verdict_t verdict;
    char id [32];
    for (int i = 0; i < 2500; i++) {
        snprintf (id, sizeof (id), "tenant-%d", i);
        assert_non_null (s_admit (quota, id, 1, 0, JAN_01 + 30000, &verdict));
    }
    //  The first tenant is also refused twice
    assert_null (s_admit (quota, "tenant-0", 1, 0, JAN_01 + 30000, &verdict));
    assert_null (s_admit (quota, "tenant-0", 1, 0, JAN_01 + 30000, &verdict));
    static sb_usage_entry_t usage [SB_QUOTA_MAX_ENTRIES];
    size_t total = 0;
    uint64_t calls = 0;
    size_t batches [3] = { 1000, 1000, 500 };
    for (int b = 0; b < 3; b++) {
        size_t count = sb_quota_take_usage (quota, JAN_01 + 61500, usage, SB_QUOTA_MAX_ENTRIES);
        assert_int_equal (count, batches [b]);
        for (size_t i = 0; i < count; i++) {
            assert_int_equal (usage [i].minute, JAN_01 / 1000 + 60);
            assert_int_equal (usage [i].period, JAN_01 / 1000);
            calls += usage [i].calls;
        }
        if (b == 0) {
            assert_string_equal (usage [0].tenant, "tenant-0");
            assert_int_equal (usage [0].refused [SB_REFUSAL_RATE], 2);
        }
        total += count;
    }
    assert_int_equal (total, 2500);
    assert_int_equal (calls, 2500);
    assert_int_equal (sb_quota_take_usage (quota, JAN_01 + 61500, usage, 10), 0);
    //  New counts come back in the next take, and `max` is honoured
    assert_non_null (s_admit (quota, "tenant-7", 1, 60000, JAN_01 + 62000, &verdict));
    assert_non_null (s_admit (quota, "tenant-9", 1, 60000, JAN_01 + 62000, &verdict));
    assert_int_equal (sb_quota_take_usage (quota, JAN_01 + 62000, usage, 1), 1);
    assert_string_equal (usage [0].tenant, "tenant-7");
    assert_int_equal (sb_quota_take_usage (quota, JAN_01 + 62000, usage, 1), 1);
    assert_string_equal (usage [0].tenant, "tenant-9");
    assert_int_equal (sb_quota_take_usage (quota, JAN_01 + 62000, usage, 1), 0);
    sb_quota_destroy (&quota);
}

static void
test_weights (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 0, 0, 3, 10);
    sb_quota_entry_t entries [] = {
        s_plan ("free", 0, 0, 0, 0, 1),
        s_plan ("pro", 0, 0, 0, 0, 4),
        s_tenant ("a", "free", 1, JAN_01, 0),
        s_tenant ("b", "pro", 1, JAN_01, 0),
    };
    sb_quota_apply (quota, entries, 4, JAN_01);
    assert_int_equal (sb_quota_tenants (quota), 2);
    assert_int_equal (sb_quota_weight (quota, "a"), 1);
    assert_int_equal (sb_quota_weight (quota, "b"), 4);
    assert_int_equal (sb_quota_weight (quota, "nobody"), 3);
    assert_int_equal (sb_quota_tenants (quota), 2);     //  weight creates no state
    sb_quota_destroy (&quota);
}

//  Past max_tenants, new tenants share one state under the defaults and
//  LIMITS entries for them are dropped.
static void
test_overflow (void **state)
{
    sb_quota_t *quota = s_table (0, 0, 1, 0, 1, 2);
    sb_quota_verdict_t verdict;
    assert_non_null (s_admit (quota, "a", 1, 0, JAN_01, &verdict));
    assert_non_null (s_admit (quota, "b", 1, 0, JAN_01, &verdict));
    sb_quota_state_t *c = s_admit (quota, "c", 1, 0, JAN_01, &verdict);
    assert_non_null (c);
    assert_null (s_admit (quota, "d", 1, 0, JAN_01, &verdict));     //  c's slot is d's
    assert_int_equal (verdict.refusal, SB_REFUSAL_IN_FLIGHT);
    assert_int_equal (sb_quota_tenants (quota), 2);
    sb_quota_entry_t entries [] = {
        s_plan ("pro", 0, 0, 5, 0, 4),
        s_tenant ("e", "pro", 1, JAN_01, 0),
        s_tenant ("a", "pro", 1, JAN_01, 0),
    };
    sb_quota_apply (quota, entries, 3, JAN_01);
    assert_int_equal (sb_quota_tenants (quota), 2);
    assert_int_equal (sb_quota_weight (quota, "e"), 1);
    assert_int_equal (sb_quota_weight (quota, "a"), 4);
    sb_quota_release (quota, c);
    assert_non_null (s_admit (quota, "d", 1, 0, JAN_01, &verdict));
    //  The shared state's counts belong to no tenant: not in the usage
    sb_usage_entry_t usage [8];
    assert_int_equal (sb_quota_take_usage (quota, JAN_01, usage, 8), 2);
    assert_string_equal (usage [0].tenant, "a");
    assert_string_equal (usage [1].tenant, "b");
    sb_quota_destroy (&quota);
}

static size_t
s_rss_bytes (void)
{
    FILE *file = fopen ("/proc/self/statm", "r");
    assert_non_null (file);
    unsigned long size = 0, resident = 0;
    assert_int_equal (fscanf (file, "%lu %lu", &size, &resident), 2);
    fclose (file);
    return (size_t) resident * (size_t) sysconf (_SC_PAGESIZE);
}

//  100,000 tenants from LIMITS (1000 a message, as the quota service sends
//  them), each with one admission: the table's estimate and the RSS.
static void
test_memory_100k (void **state)
{
    size_t rss_before = s_rss_bytes ();
    sb_quota_t *quota = s_table (600, 100, 32, 0, 1, SB_QUOTA_MAX_TENANTS);
    static sb_quota_entry_t entries [SB_QUOTA_MAX_ENTRIES];
    const char *plans [] = { "free", "pro", "enterprise", "custom" };
    for (int p = 0; p < 4; p++)
        entries [p] = s_plan (plans [p], 60 * (p + 1), 30, 4, 1000, 1 + p);
    sb_quota_apply (quota, entries, 4, JAN_01);
    char id [SB_MAX_TENANT_LEN + 1];
    for (int base = 0; base < MEMORY_TENANTS; base += SB_QUOTA_MAX_ENTRIES) {
        for (int i = 0; i < (int) SB_QUOTA_MAX_ENTRIES; i++) {
            snprintf (id, sizeof (id), "tenant-%06d", base + i);
            entries [i] = s_tenant (id, plans [(base + i) % 4], 1 + (base + i) % 28, JAN_01, 7);
        }
        sb_quota_apply (quota, entries, SB_QUOTA_MAX_ENTRIES, JAN_01);
    }
    assert_int_equal (sb_quota_tenants (quota), MEMORY_TENANTS);
    sb_quota_verdict_t verdict;
    for (int i = 0; i < MEMORY_TENANTS; i++) {
        snprintf (id, sizeof (id), "tenant-%06d", i);
        sb_quota_state_t *job = s_admit (quota, id, 1, 0, JAN_01 + 1000, &verdict);
        assert_non_null (job);
        sb_quota_release (quota, job);
    }
    size_t memory = sb_quota_memory (quota);
    size_t rss = s_rss_bytes () - rss_before;
    //  (the sanitizers' allocator and shadow make the RSS meaningless)
#ifndef __SANITIZE_ADDRESS__
    printf ("100000 tenants: sb_quota_memory %zu bytes (%.1f MB, %zu per tenant), "
            "RSS +%zu bytes (%.1f MB)\n", memory, memory / 1048576.0,
            memory / MEMORY_TENANTS, rss, rss / 1048576.0);
    assert_true (memory < MEMORY_BUDGET);
    assert_true (rss < MEMORY_BUDGET);
    //  The estimate is an estimate: it stays within a factor 2 of the RSS
    assert_true (memory * 2 > rss && memory < rss * 2);
#else
    (void) rss;
    assert_true (memory < MEMORY_BUDGET);
#endif
    sb_quota_destroy (&quota);
}

//  What one admission and its release cost with 1,000 tenants on finite
//  plans that never refuse (printed, never asserted: a figure for the
//  broker's overhead, bench/quotas measures the whole broker).
static void
test_admit_cost (void **state)
{
    sb_quota_t *quota = s_table (SB_QUOTA_MAX_RATE, SB_QUOTA_MAX_BURST, 1000, 0, 1, 10000);
    char ids [1000][16];
    for (int i = 0; i < 1000; i++)
        snprintf (ids [i], sizeof (ids [i]), "tenant-%d", i);
    const int rounds = 1000000;
    sb_quota_verdict_t verdict;
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < rounds; i++) {
        sb_quota_state_t *job = s_admit (quota, ids [i % 1000], 1, i / 1000, JAN_01 + i / 1000,
                                         &verdict);
        assert_non_null (job);
        sb_quota_release (quota, job);
    }
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / rounds;
    printf ("admit + release, 1000 tenants: %.0f ns\n", ns);
    sb_usage_entry_t usage [SB_QUOTA_MAX_ENTRIES];
    assert_int_equal (sb_quota_take_usage (quota, JAN_01 + 1000000, usage, SB_QUOTA_MAX_ENTRIES),
                      1000);
    assert_int_equal (usage [0].calls, rounds / 1000);
    sb_quota_destroy (&quota);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_config),
        cmocka_unit_test (test_burst),
        cmocka_unit_test (test_cost),
        cmocka_unit_test (test_rate_exactness),
        cmocka_unit_test (test_rate_change),
        cmocka_unit_test (test_unlimited),
        cmocka_unit_test (test_in_flight),
        cmocka_unit_test (test_monthly_rollover),
        cmocka_unit_test (test_used_applied_once),
        cmocka_unit_test (test_plan_change),
        cmocka_unit_test (test_budget),
        cmocka_unit_test (test_budget_exactness),
        cmocka_unit_test (test_take_usage),
        cmocka_unit_test (test_weights),
        cmocka_unit_test (test_overflow),
        cmocka_unit_test (test_memory_100k),
        cmocka_unit_test (test_admit_cost),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
