/*  broker/sb_quota.h — every tenant's quotas, in the broker's memory
    (proto/PROTOCOL.md "Quotas"; docs/QUOTAS.md).

    Holds the plans and tenants the quota service sent in LIMITS, and for
    each tenant: a GCRA bucket (the plan's rate per minute and burst, in
    cost units), the count of metered jobs alive (the in-flight cap), the
    billing period and what it used, and the counts not yet flushed; for
    each connection with an upstream budget, a rolling window of
    SB_QUOTA_BUDGET_SLOTS slots. No database, no payload, no clock of its
    own: the caller passes the monotonic and the wall clock, so tests can
    move time (a month rollover) at will.

    A tenant's state is created at its first job or its first LIMITS entry
    and lives as long as the sb_quota_t (bounded by max_tenants; past it,
    unknown tenants share one overflow state under the defaults, and that
    is logged; the overflow state's counts belong to no one tenant and
    are not reported by sb_quota_take_usage). Tenants not named by LIMITS,
    and tenants whose plan has not arrived, run under the default limits
    (config.defaults). Past SB_QUOTA_MAX_BUDGETS connections, a new
    connection's budget is not enforced (logged once).

    Single-threaded, like the broker; every call is O(1) (amortized; an
    admission with a budget walks the tenant's budgeted connections) but
    sb_quota_take_usage (O(entries taken)) and sb_quota_apply (O(entries)).
*/
#ifndef SB_QUOTA_H_INCLUDED
#define SB_QUOTA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_msg.h"
#include "sb_quota_msg.h"

#define SB_QUOTA_MAX_TENANTS    1000000     /* hard cap: tenants held */
#define SB_QUOTA_MAX_PLANS      1024        /* hard cap: plans held */
#define SB_QUOTA_MAX_BUDGETS    1000000     /* hard cap: connections with a budget */
#define SB_QUOTA_BUDGET_SLOTS   24          /* slots of a budget's rolling window */
#define SB_QUOTA_IN_FLIGHT_RETRY_MS 1000    /* retry_after_ms of an in_flight refusal */

typedef struct _sb_quota_t sb_quota_t;
typedef struct _sb_quota_state_t sb_quota_state_t;    /* one tenant's state, opaque */

typedef struct {
    sb_quota_plan_t defaults;   /* limits of tenants without a known plan (id "default") */
    size_t max_tenants;         /* 1..SB_QUOTA_MAX_TENANTS */
} sb_quota_config_t;

/*  What sb_quota_admit decided. On refusal `quota` names the limit
    (reason non-empty) and retry_after_ms when to come back; on admission
    `quota` is the rate policy after the charge (reason "", all zero
    when the rate is unlimited) and retry_after_ms is 0. */
typedef struct {
    sb_msg_quota_t quota;
    sb_refusal_t refusal;       /* valid when refused */
    uint32_t retry_after_ms;    /* 1..SB_MAX_RETRY_AFTER_MS when refused */
} sb_quota_verdict_t;

/*  Counters of one plan (defaults are "default"), for the stats line. */
typedef struct {
    char plan [SB_MAX_PLAN_LEN + 1];
    uint64_t tenants;                       /* tenants on it now */
    uint64_t admitted;                      /* metered jobs admitted */
    uint64_t refused [SB_REFUSAL_COUNT];    /* by reason */
} sb_quota_plan_stats_t;

/*  Creates the table. NULL on bad config or out of memory. */
sb_quota_t *sb_quota_new (const sb_quota_config_t *config) SB_MUST_USE;

/*  Frees everything; nulls the caller's pointer. Idempotent. */
void sb_quota_destroy (sb_quota_t **self_p);

/*  Admits or refuses a metered job of `tenant` costing `cost`
    (1..SB_MAX_COST) at monotonic `now_ms` and wall `wall_ms`, with an
    optional upstream budget (`conn` NULL or "" for none; else
    budget_limit requests per budget_window_s for (tenant, conn)).
    Checks, in order, in_flight, rate, monthly, budget. Admitted: charges
    all four (in_flight +1, the bucket and the period `cost`, the budget
    1), counts `cost` toward the next usage flush, fills `verdict` and
    returns the tenant's state, which the caller keeps until the job is
    answered and then passes to sb_quota_release. Refused: charges
    nothing, counts the refusal (usage and plan stats), fills `verdict`
    and returns NULL. A period that ended by `wall_ms` is rolled over
    first (used back to 0; a wall clock stepped back keeps the period).
    A job whose cost exceeds its plan's burst is never admitted (refused
    `rate`, retry_after_ms the time until the bucket is full): a plan's
    burst must cover its dearest tool. A budget refusal's scope is `conn`
    cut to SB_MAX_SCOPE_LEN bytes. */
sb_quota_state_t *sb_quota_admit (sb_quota_t *self, const char *tenant, uint32_t cost,
                                  const char *conn, uint32_t budget_limit,
                                  uint32_t budget_window_s, int64_t now_ms, int64_t wall_ms,
                                  sb_quota_verdict_t *verdict) SB_MUST_USE;

/*  A job admitted with `state` was answered (any status): frees its
    in-flight slot. */
void sb_quota_release (sb_quota_t *self, sb_quota_state_t *state);

/*  The scheduling weight of `tenant` (its plan's; the defaults' when the
    tenant or its plan is unknown). Does not create state. */
uint32_t sb_quota_weight (sb_quota_t *self, const char *tenant);

/*  Applies LIMITS entries in order (plans replace a plan's limits;
    tenants set plan and anchor, and add `used` the first time a tenant is
    heard of when `period` is its current period at `wall_ms`). Entries
    beyond the caps are dropped and logged. */
void sb_quota_apply (sb_quota_t *self, const sb_quota_entry_t *entries, size_t count,
                     int64_t wall_ms);

/*  A full snapshot's last part was applied / whether one ever was. */
void sb_quota_set_loaded (sb_quota_t *self);
bool sb_quota_loaded (sb_quota_t *self);

/*  Moves up to `max` tenants' unflushed counts into `out` (one entry per
    tenant and period with anything to report; a period that rolled over
    since the last take gives its own entry), stamping `minute` from
    `wall_ms`, and zeroes them. Returns the number of entries written;
    the rest stay for the next call. */
size_t sb_quota_take_usage (sb_quota_t *self, int64_t wall_ms, sb_usage_entry_t *out,
                            size_t max) SB_MUST_USE;

/*  Tenants held, and an estimate of the bytes the table uses. */
size_t sb_quota_tenants (sb_quota_t *self);
size_t sb_quota_memory (sb_quota_t *self);

/*  Calls `fn` once per plan (the defaults included) with its counters. */
typedef void (sb_quota_plan_fn) (const sb_quota_plan_stats_t *stats, void *arg);
void sb_quota_each_plan (sb_quota_t *self, sb_quota_plan_fn *fn, void *arg);

#endif
