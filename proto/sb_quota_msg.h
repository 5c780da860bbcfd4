/*  proto/sb_quota_msg.h — the payloads of LIMITS and USAGE (PROTOCOL.md
    "Quotas"): what the quota service tells the broker about plans and
    tenants, and the counts the broker hands back to be stored.

    Each payload is a msgpack array of maps, at most SB_QUOTA_MAX_ENTRIES
    long. This codec is the only code that writes or reads them; the broker
    links it (they are the broker's own messages, not a job's payload,
    which it never reads). Decoding checks every bound and type: any
    violation makes the whole payload malformed, never an assert.
*/
#ifndef SB_QUOTA_MSG_H_INCLUDED
#define SB_QUOTA_MSG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "sb_limits.h"

#define SB_QUOTA_MAX_RATE       10000000u   /* plan rate, cost units per minute */
#define SB_QUOTA_MAX_BURST      10000000u   /* plan burst, cost units */
#define SB_QUOTA_MAX_IN_FLIGHT  100000u     /* plan in_flight cap */
#define SB_QUOTA_MAX_WEIGHT     100u        /* plan weight (at least 1) */
#define SB_QUOTA_MAX_ANCHOR     28u         /* billing day of the month, 1..28 */

/*  Why a quota refused a job; names as on the wire ("rate"…). */
typedef enum {
    SB_REFUSAL_IN_FLIGHT = 0,   /* "in_flight": too many of the tenant's metered jobs alive */
    SB_REFUSAL_RATE      = 1,   /* "rate": the plan's per-minute rate and burst */
    SB_REFUSAL_MONTHLY   = 2,   /* "monthly": the period's allowance is spent */
    SB_REFUSAL_BUDGET    = 3,   /* "budget": the connection's upstream budget is spent */
    SB_REFUSAL_COUNT     = 4
} sb_refusal_t;

/*  A plan's limits. 0 in rate, in_flight or monthly = unlimited. */
typedef struct {
    char id [SB_MAX_PLAN_LEN + 1];  /* ^[a-z0-9][a-z0-9_-]{0,62}$ */
    uint32_t rate;                  /* cost units per minute, 0..SB_QUOTA_MAX_RATE */
    uint32_t burst;                 /* 0..SB_QUOTA_MAX_BURST, ≥ 1 when rate is set */
    uint32_t in_flight;             /* 0..SB_QUOTA_MAX_IN_FLIGHT */
    uint64_t monthly;               /* cost units per billing period, 0..SB_MAX_QUOTA_VALUE */
    uint32_t weight;                /* 1..SB_QUOTA_MAX_WEIGHT */
} sb_quota_plan_t;

/*  A tenant: its plan, billing anchor and what was stored of its period. */
typedef struct {
    char id [SB_MAX_TENANT_LEN + 1];    /* 1..64 printable bytes, no space */
    char plan [SB_MAX_PLAN_LEN + 1];    /* a plan ID */
    uint32_t anchor;                    /* billing day 1..SB_QUOTA_MAX_ANCHOR */
    int64_t period;                     /* Unix s: start of the period `used` counts, ≥ 0 */
    uint64_t used;                      /* cost units stored for it, 0..SB_MAX_QUOTA_VALUE */
} sb_quota_tenant_t;

/*  One LIMITS entry: "k" is "plan" or "tenant". */
typedef struct {
    bool is_plan;                   /* true: `plan` is set; false: `tenant` */
    sb_quota_plan_t plan;
    sb_quota_tenant_t tenant;
} sb_quota_entry_t;

/*  One USAGE entry: what a tenant spent since the last flush. */
typedef struct {
    char tenant [SB_MAX_TENANT_LEN + 1];
    int64_t period;                     /* Unix s: start of the billing period counted */
    int64_t minute;                     /* Unix s: start of the minute of the flush */
    uint64_t calls;                     /* cost units admitted, 0..SB_MAX_QUOTA_VALUE */
    uint64_t refused [SB_REFUSAL_COUNT];/* refusals by reason */
} sb_usage_entry_t;

/*  "in_flight", "rate", "monthly", "budget"; "unknown" for another value. */
const char *sb_refusal_name (sb_refusal_t reason);

/*  The refusal named `name`, or -1. */
int sb_refusal_from_name (const char *name);

/*  Encodes `count` (0..SB_QUOTA_MAX_ENTRIES) LIMITS entries as a new frame.
    Returns NULL when an entry breaks a bound above (a caller's bug). */
zframe_t *sb_quota_limits_encode (const sb_quota_entry_t *entries, size_t count)
    __attribute__ ((warn_unused_result));

/*  Decodes a LIMITS payload into `entries` (room for `max`, give
    SB_QUOTA_MAX_ENTRIES) and sets `*count`. An empty frame holds no
    entries. Every key above is required, once; unknown keys are ignored,
    and so is an entry whose "k" is another string (a newer service's
    kind). Returns 0, or -1 when the payload is malformed (more than `max`
    entries, a bound broken, a type wrong; then *count is 0). */
int sb_quota_limits_decode (const zframe_t *payload, sb_quota_entry_t *entries, size_t max,
                            size_t *count)
    __attribute__ ((warn_unused_result));

/*  The same two for USAGE entries: "tenant", "period", "minute", "calls"
    required, "refused" a map of reason names to counts (the encoder leaves
    zero counts out; the decoder reads a missing map or reason as 0; an
    unknown reason, or one given twice, is malformed). */
zframe_t *sb_quota_usage_encode (const sb_usage_entry_t *entries, size_t count)
    __attribute__ ((warn_unused_result));
int sb_quota_usage_decode (const zframe_t *payload, sb_usage_entry_t *entries, size_t max,
                           size_t *count)
    __attribute__ ((warn_unused_result));

/*  The billing period around `now_s` (Unix seconds) for billing day
    `anchor` (1..28; 0, no anchor known, is taken as 1; above 28 as 28, the
    last day every month has): `*start` the latest instant ≤ now_s that is
    00:00:00 UTC on day `anchor` of a month, `*end` the same day of the
    next month (exclusive). Pure calendar arithmetic in UTC: no time zone,
    no locale. now_s is clamped to ±2^53. The broker and the quota service
    both use this definition (the service's SQL mirrors it; it only ever
    sees anchors 1..28). */
void sb_quota_period (int64_t now_s, uint32_t anchor, int64_t *start, int64_t *end);

#endif
