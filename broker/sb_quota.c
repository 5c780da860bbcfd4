/*  broker/sb_quota.c — every tenant's quotas in the broker's memory. See
    sb_quota.h and proto/PROTOCOL.md "Quotas".

    Tenants live in an open-addressing table (linear probing; a tenant is
    never removed) of pointers to states allocated one by one, so a state's
    address stays valid for the jobs that hold it; each state carries its
    ID inline, sized to fit (tests/20_broker_quota.c measures 100,000
    tenants). Plans are an array whose slot 0 is the defaults; a tenant
    names a plan slot even before that plan's limits arrive (the defaults'
    limits apply meanwhile).

    The rate is GCRA in cost units, in exact integers. Time is counted in
    units of 1/rate ms, so that the emission interval T (60 s / rate) is
    60000 units whatever the rate; `tat` (the theoretical arrival time) is
    kept as whole ms plus a fraction in those units, and a job of cost c is
    admitted at `now` when max (tat, now) + c × T − now ≤ burst × T, which
    then becomes the new tat. Over any interval [t0, t1], the jobs admitted
    in it move tat by Σc × T, from at least t0 to at most t1 + burst × T,
    hence Σc ≤ burst + rate × (t1 − t0) / 60 s. (A plan's new rate converts
    the fraction, rounding up: the only rounding, and it only ever admits
    less.)

    Usage: each tenant counts what it has not yet handed to a flush;
    tenants with counts are chained in admission order (the dirty list) so
    sb_quota_take_usage costs what it takes. A period that rolls over with
    counts still untaken moves them to the carry list, flushed first. */
#include "sb_quota.h"

#include <czmq.h>
#include <string.h>

#include "sb_log.h"

#define SB_QUOTA_INTERVAL       60000ll             /* T in units of 1/rate ms: rates are per minute */
#define SB_QUOTA_RATE_WINDOW_S  60u                 /* window_s of the rate policy */
#define SB_QUOTA_AHEAD_CAP      (INT64_MAX / 4)     /* a lead past it (absurd plan changes) is capped */
#define SB_QUOTA_MIN_CAPACITY   1024u               /* initial slots of the tenant table */
#define SB_QUOTA_DEFAULT_ID     "default"           /* the defaults' plan ID */
#define SB_QUOTA_RING           (SB_QUOTA_BUDGET_SLOTS + 1)   /* the window's slots + the current one */

#define S_HEARD     0x1u    /* a LIMITS entry named the tenant (its `used` was considered) */
#define S_DIRTY     0x2u    /* on the dirty list */
#define S_OVERFLOW  0x4u    /* the shared state of tenants past max_tenants */

//  A connection's upstream budget: requests per rolling window, counted in
//  SB_QUOTA_BUDGET_SLOTS slots of window / SLOTS plus the current one.
typedef struct _s_budget_t {
    struct _s_budget_t *next;               /* the tenant's next budget */
    int64_t slot;                           /* newest slot counted: now_ms × SLOTS / window_ms */
    uint32_t window_s;                      /* window the slots divide */
    uint32_t counts [SB_QUOTA_RING];        /* slot k counts at k % SB_QUOTA_RING */
    char conn [];                           /* connector name */
} s_budget_t;

struct _sb_quota_state_t {
    int64_t tat_ms;                         /* GCRA theoretical arrival time: whole monotonic ms */
    uint32_t tat_frac;                      /* and its fraction, in 1/tat_rate ms (< tat_rate) */
    uint32_t tat_rate;                      /* the rate the fraction is counted in (0: none yet) */
    int64_t period_start;                   /* Unix s: billing period start; 0 = not computed */
    int64_t period_end;                     /* Unix s: its end */
    uint64_t used;                          /* cost units of the period, stored `used` included */
    uint64_t calls;                         /* cost units admitted, not yet taken */
    uint64_t refused [SB_REFUSAL_COUNT];    /* refusals not yet taken */
    sb_quota_state_t *dirty_next;           /* next on the dirty list */
    s_budget_t *budgets;                    /* connections with a budget, owned */
    uint32_t in_flight;                     /* metered jobs admitted, not released */
    uint16_t plan;                          /* slot in `plans` (0 = the defaults) */
    uint8_t anchor;                         /* billing day 1..SB_QUOTA_MAX_ANCHOR */
    uint8_t flags;                          /* S_* */
    char id [];                             /* tenant ID */
};

//  Counts of a period that rolled over before a flush took them.
typedef struct _s_carry_t {
    struct _s_carry_t *next;                /* next in the carry list */
    sb_usage_entry_t entry;                 /* minute left 0 until taken */
} s_carry_t;

//  A plan slot: limits (once known) and counters.
typedef struct {
    sb_quota_plan_t limits;                 /* the plan's limits; id set even when unknown */
    bool known;                             /* limits arrived (slot 0: always) */
    uint64_t tenants;                       /* tenants naming it */
    uint64_t admitted;                      /* jobs admitted under its limits */
    uint64_t refused [SB_REFUSAL_COUNT];    /* refusals under its limits */
} s_plan_t;

struct _sb_quota_t {
    size_t max_tenants;                     /* cap on `count` */
    sb_quota_state_t **slots;               /* open addressing; NULL = free */
    size_t capacity;                        /* slots, a power of 2 */
    size_t count;                           /* tenants held */
    sb_quota_state_t *overflow;             /* shared by tenants past max_tenants, owned */
    bool overflow_logged;                   /* the first overflow was logged */
    s_plan_t *plans;                        /* SB_QUOTA_MAX_PLANS + 1 slots, 0 = defaults */
    size_t plan_count;                      /* slots in use, defaults included */
    zhashx_t *plan_index;                   /* plan ID → slot (as a pointer-sized integer) */
    sb_quota_state_t *dirty_head;           /* tenants with counts, oldest first */
    sb_quota_state_t *dirty_tail;           /* last on the dirty list */
    s_carry_t *carry_head;                  /* rolled-over counts, oldest first, owned */
    s_carry_t *carry_tail;                  /* last on the carry list */
    size_t budgets;                         /* budgets held, ≤ SB_QUOTA_MAX_BUDGETS */
    bool budgets_logged;                    /* the budget cap was logged */
    size_t bytes;                           /* heap used by states, budgets and carries */
    bool loaded;                            /* a full snapshot was applied */
};


//  --------------------------------------------------------------------------
//  Small helpers

//  Bytes glibc's malloc takes for a block of `size` (header, 16-byte
//  alignment, 32-byte minimum): what sb_quota_memory counts.
static size_t
s_chunk (size_t size)
{
    size_t chunk = (size + sizeof (size_t) + 15) & ~(size_t) 15;
    return chunk < 32 ? 32 : chunk;
}

static uint64_t
s_add_sat (uint64_t a, uint64_t b, uint64_t max)
{
    return a > max || b > max - a ? max : a + b;
}

static int64_t
s_mul_sat (int64_t a, int64_t b, int64_t max)
{
    return b != 0 && a > max / b ? max : a * b;
}

static int64_t
s_ceil_div (int64_t a, int64_t b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

static uint32_t
s_retry_ms (int64_t ms)
{
    if (ms < 1)
        return 1;
    return ms > (int64_t) SB_MAX_RETRY_AFTER_MS ? SB_MAX_RETRY_AFTER_MS : (uint32_t) ms;
}

static uint32_t
s_u32 (int64_t value)
{
    if (value < 0)
        return 0;
    return value > (int64_t) UINT32_MAX ? UINT32_MAX : (uint32_t) value;
}

//  Copies `src` into `dst` (room for `size` bytes, cut to fit): snprintf
//  is too slow for every admission.
static void
s_copy (char *dst, size_t size, const char *src)
{
    size_t len = strnlen (src, size - 1);
    memcpy (dst, src, len);
    dst [len] = '\0';
}

//  FNV-1a, 64 bits.
static uint64_t
s_hash (const char *key)
{
    uint64_t hash = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *) key; *p; p++) {
        hash ^= *p;
        hash *= 1099511628211ull;
    }
    return hash;
}

//  The plan's limits made safe to compute with (the codec already bounds
//  them; this keeps a caller's bug from dividing by zero).
static void
s_sanitize (sb_quota_plan_t *limits)
{
    if (limits->rate > SB_QUOTA_MAX_RATE)
        limits->rate = SB_QUOTA_MAX_RATE;
    if (limits->burst > SB_QUOTA_MAX_BURST)
        limits->burst = SB_QUOTA_MAX_BURST;
    if (limits->rate && limits->burst < 1)
        limits->burst = 1;
    if (limits->in_flight > SB_QUOTA_MAX_IN_FLIGHT)
        limits->in_flight = SB_QUOTA_MAX_IN_FLIGHT;
    if (limits->monthly > SB_MAX_QUOTA_VALUE)
        limits->monthly = SB_MAX_QUOTA_VALUE;
    if (limits->weight < 1)
        limits->weight = 1;
    if (limits->weight > SB_QUOTA_MAX_WEIGHT)
        limits->weight = SB_QUOTA_MAX_WEIGHT;
}


//  --------------------------------------------------------------------------
//  Construction

sb_quota_t *
sb_quota_new (const sb_quota_config_t *config)
{
    const sb_quota_plan_t *d = &config->defaults;
    if (config->max_tenants < 1 || config->max_tenants > SB_QUOTA_MAX_TENANTS
    ||  d->rate > SB_QUOTA_MAX_RATE || d->burst > SB_QUOTA_MAX_BURST
    ||  (d->rate && d->burst < 1) || d->in_flight > SB_QUOTA_MAX_IN_FLIGHT
    ||  d->monthly > SB_MAX_QUOTA_VALUE || d->weight < 1 || d->weight > SB_QUOTA_MAX_WEIGHT)
        return NULL;
    sb_quota_t *self = (sb_quota_t *) calloc (1, sizeof (sb_quota_t));
    if (!self)
        return NULL;
    self->max_tenants = config->max_tenants;
    self->capacity = SB_QUOTA_MIN_CAPACITY;
    self->slots = (sb_quota_state_t **) calloc (self->capacity, sizeof (sb_quota_state_t *));
    self->plans = (s_plan_t *) calloc (SB_QUOTA_MAX_PLANS + 1, sizeof (s_plan_t));
    self->plan_index = zhashx_new ();
    self->overflow = (sb_quota_state_t *) calloc (1, sizeof (sb_quota_state_t) + 1);
    if (!self->slots || !self->plans || !self->plan_index || !self->overflow) {
        sb_quota_destroy (&self);
        return NULL;
    }
    self->overflow->anchor = 1;
    self->overflow->flags = S_OVERFLOW;
    self->plans [0].limits = *d;
    snprintf (self->plans [0].limits.id, sizeof (self->plans [0].limits.id), "%s",
              SB_QUOTA_DEFAULT_ID);
    self->plans [0].known = true;
    self->plan_count = 1;
    return self;
}

static void
s_state_free (sb_quota_state_t *state)
{
    while (state->budgets) {
        s_budget_t *next = state->budgets->next;
        free (state->budgets);
        state->budgets = next;
    }
    free (state);
}

void
sb_quota_destroy (sb_quota_t **self_p)
{
    sb_quota_t *self = *self_p;
    if (!self)
        return;
    if (self->slots)
        for (size_t i = 0; i < self->capacity; i++)
            if (self->slots [i])
                s_state_free (self->slots [i]);
    free (self->slots);
    if (self->overflow)
        s_state_free (self->overflow);
    while (self->carry_head) {
        s_carry_t *next = self->carry_head->next;
        free (self->carry_head);
        self->carry_head = next;
    }
    free (self->plans);
    zhashx_destroy (&self->plan_index);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Tenants

//  The slot holding `tenant`, or the free slot where it would go.
static size_t
s_probe (sb_quota_t *self, const char *tenant)
{
    size_t mask = self->capacity - 1;
    size_t i = (size_t) s_hash (tenant) & mask;
    while (self->slots [i] && strcmp (self->slots [i]->id, tenant) != 0)
        i = (i + 1) & mask;
    return i;
}

static sb_quota_state_t *
s_lookup (sb_quota_t *self, const char *tenant)
{
    return self->slots [s_probe (self, tenant)];
}

//  Doubles the table. -1 when out of memory (the table is unchanged).
static int
s_grow (sb_quota_t *self)
{
    size_t old_capacity = self->capacity;
    sb_quota_state_t **old = self->slots;
    sb_quota_state_t **slots = (sb_quota_state_t **) calloc (old_capacity * 2,
                                                             sizeof (sb_quota_state_t *));
    if (!slots)
        return -1;
    self->slots = slots;
    self->capacity = old_capacity * 2;
    for (size_t i = 0; i < old_capacity; i++)
        if (old [i])
            self->slots [s_probe (self, old [i]->id)] = old [i];
    free (old);
    return 0;
}

//  The shared state of tenants past max_tenants (logged the first time).
static sb_quota_state_t *
s_overflow (sb_quota_t *self, const char *tenant)
{
    if (!self->overflow_logged) {
        sb_log_warn ("quota_tenants_full", "max_tenants=%zu tenant=%s: tenants past the cap "
                     "share one state under the default limits", self->max_tenants, tenant);
        self->overflow_logged = true;
    }
    return self->overflow;
}

//  A new tenant's state, or NULL at the cap or out of memory.
static sb_quota_state_t *
s_insert (sb_quota_t *self, const char *tenant)
{
    if (self->count >= self->max_tenants)
        return NULL;
    if ((self->count + 1) * 2 > self->capacity && s_grow (self))
        return NULL;
    size_t len = strlen (tenant);
    sb_quota_state_t *state = (sb_quota_state_t *) calloc (1, sizeof (sb_quota_state_t) + len + 1);
    if (!state)
        return NULL;
    memcpy (state->id, tenant, len + 1);
    state->anchor = 1;
    self->slots [s_probe (self, tenant)] = state;
    self->count++;
    self->bytes += s_chunk (sizeof (sb_quota_state_t) + len + 1);
    self->plans [0].tenants++;
    return state;
}

//  The tenant's state, created when absent; the overflow state past the
//  cap or out of memory. Never NULL.
static sb_quota_state_t *
s_require (sb_quota_t *self, const char *tenant)
{
    sb_quota_state_t *state = s_lookup (self, tenant);
    if (!state)
        state = s_insert (self, tenant);
    return state ? state : s_overflow (self, tenant);
}

//  The plan whose limits apply to `state`.
static s_plan_t *
s_effective (sb_quota_t *self, const sb_quota_state_t *state)
{
    s_plan_t *plan = &self->plans [state->plan];
    return plan->known ? plan : &self->plans [0];
}

//  Puts `state` on the dirty list (the overflow state never goes: it
//  counts no usage, which would belong to no one tenant).
static void
s_mark_dirty (sb_quota_t *self, sb_quota_state_t *state)
{
    if (state->flags & (S_DIRTY | S_OVERFLOW))
        return;
    state->flags |= S_DIRTY;
    state->dirty_next = NULL;
    if (self->dirty_tail)
        self->dirty_tail->dirty_next = state;
    else
        self->dirty_head = state;
    self->dirty_tail = state;
}

//  Moves the state's untaken counts of its current period to the carry
//  list. Out of memory, they are lost (logged).
static void
s_carry (sb_quota_t *self, sb_quota_state_t *state)
{
    bool any = state->calls > 0;
    for (int r = 0; r < SB_REFUSAL_COUNT; r++)
        any = any || state->refused [r] > 0;
    if (!any)
        return;
    s_carry_t *carry = (s_carry_t *) calloc (1, sizeof (s_carry_t));
    if (!carry) {
        sb_log_error ("quota_usage_lost", "tenant=%s period=%lld calls=%llu: out of memory",
                      state->id, (long long) state->period_start,
                      (unsigned long long) state->calls);
    }
    else {
        snprintf (carry->entry.tenant, sizeof (carry->entry.tenant), "%s", state->id);
        carry->entry.period = state->period_start;
        carry->entry.calls = state->calls;
        memcpy (carry->entry.refused, state->refused, sizeof (carry->entry.refused));
        if (self->carry_tail)
            self->carry_tail->next = carry;
        else
            self->carry_head = carry;
        self->carry_tail = carry;
        self->bytes += s_chunk (sizeof (s_carry_t));
    }
    state->calls = 0;
    memset (state->refused, 0, sizeof (state->refused));
}

//  Brings the state's billing period up to `wall_s`: computes it the
//  first time, and when `force` (the anchor changed) or the period ended,
//  moves to the current one (a different one restarts `used` at 0 and
//  carries the untaken counts). A wall clock stepped back inside the
//  period changes nothing.
static void
s_period_update (sb_quota_t *self, sb_quota_state_t *state, int64_t wall_s, bool force)
{
    if (!force && state->period_end && wall_s < state->period_end)
        return;
    int64_t start, end;
    sb_quota_period (wall_s, state->anchor, &start, &end);
    if (state->period_end && start == state->period_start) {
        state->period_end = end;
        return;
    }
    if (state->period_end)
        s_carry (self, state);
    state->period_start = start;
    state->period_end = end;
    state->used = 0;
}


//  --------------------------------------------------------------------------
//  Budgets

//  The (tenant, conn) budget over `window_s`, created when absent (a new
//  window restarts its counts); NULL at the cap or out of memory (then
//  the budget is not enforced, logged once).
static s_budget_t *
s_budget_require (sb_quota_t *self, sb_quota_state_t *state, const char *conn,
                  uint32_t window_s)
{
    s_budget_t *budget = state->budgets;
    while (budget && strcmp (budget->conn, conn) != 0)
        budget = budget->next;
    if (budget) {
        if (budget->window_s != window_s) {
            memset (budget->counts, 0, sizeof (budget->counts));
            budget->window_s = window_s;
        }
        return budget;
    }
    size_t len = strlen (conn);
    if (self->budgets < SB_QUOTA_MAX_BUDGETS)
        budget = (s_budget_t *) calloc (1, sizeof (s_budget_t) + len + 1);
    if (!budget) {
        if (!self->budgets_logged)
            sb_log_error ("quota_budgets_full", "budgets=%zu tenant=%s conn=%s: upstream "
                          "budget not enforced", self->budgets, state->id, conn);
        self->budgets_logged = true;
        return NULL;
    }
    memcpy (budget->conn, conn, len + 1);
    budget->window_s = window_s;
    budget->next = state->budgets;
    state->budgets = budget;
    self->budgets++;
    self->bytes += s_chunk (sizeof (s_budget_t) + len + 1);
    return budget;
}

//  Position of slot `slot` in the ring (slots may be negative only in
//  arithmetic on the oldest ones).
static size_t
s_ring (int64_t slot)
{
    return (size_t) (((slot % SB_QUOTA_RING) + SB_QUOTA_RING) % SB_QUOTA_RING);
}

static int64_t
s_slot_of (int64_t now_ms, uint32_t window_s)
{
    return now_ms * SB_QUOTA_BUDGET_SLOTS / ((int64_t) window_s * 1000);
}

//  First ms of slot `slot`.
static int64_t
s_slot_start_ms (int64_t slot, uint32_t window_s)
{
    int64_t window_ms = (int64_t) window_s * 1000;
    return (slot * window_ms + SB_QUOTA_BUDGET_SLOTS - 1) / SB_QUOTA_BUDGET_SLOTS;
}

//  Moves the ring to now's slot (clearing the slots that fell out) and
//  returns the requests counted in the window and the current slot.
static uint64_t
s_budget_sum (s_budget_t *budget, int64_t now_ms)
{
    int64_t slot = s_slot_of (now_ms, budget->window_s);
    if (slot > budget->slot) {
        int64_t first = slot - budget->slot > SB_QUOTA_RING ? slot - SB_QUOTA_RING + 1
                                                            : budget->slot + 1;
        for (int64_t k = first; k <= slot; k++)
            budget->counts [s_ring (k)] = 0;
        budget->slot = slot;
    }
    uint64_t sum = 0;
    for (int i = 0; i < SB_QUOTA_RING; i++)
        sum += budget->counts [i];
    return sum;
}


//  --------------------------------------------------------------------------
//  Admission

//  How far the tenant's tat is ahead of `now_ms`, in 1/rate ms (0 when
//  the bucket is full), converting the fraction first if the plan's rate
//  changed (rounding up).
static int64_t
s_ahead (sb_quota_state_t *state, uint32_t rate, int64_t now_ms)
{
    if (state->tat_rate != rate) {
        uint64_t frac = state->tat_rate == 0 ? 0
                      : ((uint64_t) state->tat_frac * rate + state->tat_rate - 1) / state->tat_rate;
        state->tat_ms += (int64_t) (frac / rate);
        state->tat_frac = (uint32_t) (frac % rate);
        state->tat_rate = rate;
    }
    if (state->tat_ms < now_ms)
        return 0;
    return s_mul_sat (state->tat_ms - now_ms, rate, SB_QUOTA_AHEAD_CAP) + state->tat_frac;
}

//  The rate policy of `plan` for a bucket `ahead` (1/rate ms) of now.
static void
s_rate_policy (const s_plan_t *plan, int64_t ahead, sb_msg_quota_t *quota)
{
    const sb_quota_plan_t *limits = &plan->limits;
    int64_t tau = (int64_t) limits->burst * SB_QUOTA_INTERVAL;
    s_copy (quota->scope, sizeof (quota->scope), limits->id);
    quota->limit = limits->rate;
    quota->remaining = ahead < tau ? (uint64_t) ((tau - ahead) / SB_QUOTA_INTERVAL) : 0;
    quota->reset_s = s_u32 (s_ceil_div (ahead, (int64_t) limits->rate * 1000));
    quota->window_s = SB_QUOTA_RATE_WINDOW_S;
}

static void
s_refuse (sb_quota_t *self, sb_quota_state_t *state, s_plan_t *plan, sb_refusal_t reason,
          sb_quota_verdict_t *verdict)
{
    verdict->refusal = reason;
    s_copy (verdict->quota.reason, sizeof (verdict->quota.reason), sb_refusal_name (reason));
    if (!(state->flags & S_OVERFLOW))
        state->refused [reason]++;
    plan->refused [reason]++;
    s_mark_dirty (self, state);
}

sb_quota_state_t *
sb_quota_admit (sb_quota_t *self, const char *tenant, uint32_t cost, const char *conn,
                uint32_t budget_limit, uint32_t budget_window_s, int64_t now_ms,
                int64_t wall_ms, sb_quota_verdict_t *verdict)
{
    memset (verdict, 0, sizeof (*verdict));
    if (cost < 1)
        cost = 1;
    if (cost > SB_MAX_COST)
        cost = SB_MAX_COST;
    int64_t wall_s = wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000;
    sb_quota_state_t *state = s_require (self, tenant);
    s_period_update (self, state, wall_s, false);
    s_plan_t *plan = s_effective (self, state);
    const sb_quota_plan_t *limits = &plan->limits;
    sb_msg_quota_t *quota = &verdict->quota;

    //  In flight: the tenant's metered jobs alive
    if (limits->in_flight && state->in_flight >= limits->in_flight) {
        s_copy (quota->scope, sizeof (quota->scope), limits->id);
        quota->limit = limits->in_flight;
        quota->remaining = 0;
        quota->reset_s = s_u32 (s_ceil_div (SB_QUOTA_IN_FLIGHT_RETRY_MS, 1000));
        verdict->retry_after_ms = SB_QUOTA_IN_FLIGHT_RETRY_MS;
        s_refuse (self, state, plan, SB_REFUSAL_IN_FLIGHT, verdict);
        return NULL;
    }
    //  Rate: GCRA, see the top of the file
    int64_t lead = 0;           //  the tat's lead over now after the charge
    if (limits->rate) {
        int64_t tau = (int64_t) limits->burst * SB_QUOTA_INTERVAL;
        int64_t charge = (int64_t) cost * SB_QUOTA_INTERVAL;
        int64_t ahead = s_ahead (state, limits->rate, now_ms);
        lead = ahead + charge;
        if (lead > tau) {
            s_rate_policy (plan, ahead, quota);
            //  Admissible once the lead has shrunk by lead − tau; a cost
            //  above the burst never is: it gets the time until the bucket
            //  is full
            int64_t wait = charge > tau ? ahead : lead - tau;
            verdict->retry_after_ms = s_retry_ms (s_ceil_div (wait, limits->rate));
            s_refuse (self, state, plan, SB_REFUSAL_RATE, verdict);
            return NULL;
        }
    }
    //  Monthly: the billing period's allowance
    if (limits->monthly && (state->used > limits->monthly
                            || limits->monthly - state->used < cost)) {
        s_copy (quota->scope, sizeof (quota->scope), limits->id);
        quota->limit = limits->monthly;
        quota->remaining = state->used < limits->monthly ? limits->monthly - state->used : 0;
        quota->reset_s = s_u32 (state->period_end - wall_s);
        quota->window_s = s_u32 (state->period_end - state->period_start);
        verdict->retry_after_ms = s_retry_ms (state->period_end * 1000 - wall_ms);
        s_refuse (self, state, plan, SB_REFUSAL_MONTHLY, verdict);
        return NULL;
    }
    //  Budget: the connection's upstream requests in the rolling window
    s_budget_t *budget = NULL;
    if (conn && *conn && budget_limit && budget_window_s) {
        budget = s_budget_require (self, state, conn, budget_window_s);
        uint64_t sum = budget ? s_budget_sum (budget, now_ms) : 0;
        if (budget && sum + 1 > budget_limit) {
            //  Admissible at the first slot whose oldest counts, dropping
            //  out, bring the sum under the limit
            int64_t slot = budget->slot;
            uint64_t left = sum;
            int64_t k = 1;
            for (; k < SB_QUOTA_RING; k++) {
                left -= budget->counts [s_ring (slot - SB_QUOTA_BUDGET_SLOTS + k - 1)];
                if (left + 1 <= budget_limit)
                    break;
            }
            int64_t reset_ms = s_slot_start_ms (slot + SB_QUOTA_RING, budget_window_s) - now_ms;
            s_copy (quota->scope, sizeof (quota->scope), conn);
            quota->limit = budget_limit;
            quota->remaining = sum < budget_limit ? budget_limit - sum : 0;
            quota->reset_s = s_u32 (s_ceil_div (reset_ms, 1000));
            quota->window_s = budget_window_s;
            verdict->retry_after_ms
                = s_retry_ms (s_slot_start_ms (slot + k, budget_window_s) - now_ms);
            s_refuse (self, state, plan, SB_REFUSAL_BUDGET, verdict);
            return NULL;
        }
    }
    //  Admitted: charge all four
    state->in_flight++;
    if (limits->rate) {
        state->tat_ms = now_ms + lead / limits->rate;
        state->tat_frac = (uint32_t) (lead % limits->rate);
        s_rate_policy (plan, lead, quota);
    }
    state->used = s_add_sat (state->used, cost, SB_MAX_QUOTA_VALUE);
    if (!(state->flags & S_OVERFLOW))
        state->calls = s_add_sat (state->calls, cost, SB_MAX_QUOTA_VALUE);
    if (budget)
        budget->counts [s_ring (budget->slot)]++;
    plan->admitted++;
    s_mark_dirty (self, state);
    return state;
}

void
sb_quota_release (sb_quota_t *self, sb_quota_state_t *state)
{
    if (state && state->in_flight > 0)
        state->in_flight--;
}

uint32_t
sb_quota_weight (sb_quota_t *self, const char *tenant)
{
    sb_quota_state_t *state = s_lookup (self, tenant);
    const s_plan_t *plan = state ? s_effective (self, state) : &self->plans [0];
    return plan->limits.weight;
}


//  --------------------------------------------------------------------------
//  LIMITS

//  The slot of plan `id`, created (unknown) when absent; -1 past the cap.
static int
s_plan_require (sb_quota_t *self, const char *id)
{
    void *found = zhashx_lookup (self->plan_index, id);
    if (found)
        return (int) (uintptr_t) found;
    if (self->plan_count > SB_QUOTA_MAX_PLANS)
        return -1;
    size_t slot = self->plan_count;
    s_plan_t *plan = &self->plans [slot];
    memset (plan, 0, sizeof (*plan));
    snprintf (plan->limits.id, sizeof (plan->limits.id), "%s", id);
    plan->limits.weight = 1;
    if (zhashx_insert (self->plan_index, plan->limits.id, (void *) (uintptr_t) slot))
        return -1;
    self->plan_count++;
    return (int) slot;
}

static void
s_apply_plan (sb_quota_t *self, const sb_quota_plan_t *limits)
{
    int slot = s_plan_require (self, limits->id);
    if (slot < 0) {
        sb_log_warn ("quota_plan_dropped", "plan=%s max_plans=%d: plan not held",
                     limits->id, SB_QUOTA_MAX_PLANS);
        return;
    }
    s_plan_t *plan = &self->plans [slot];
    plan->limits = *limits;
    s_sanitize (&plan->limits);
    plan->known = true;
}

//  Returns -1 when the tenant is dropped (past the cap).
static int
s_apply_tenant (sb_quota_t *self, const sb_quota_tenant_t *entry, int64_t wall_s)
{
    sb_quota_state_t *state = s_lookup (self, entry->id);
    if (!state)
        state = s_insert (self, entry->id);
    if (!state)
        return -1;
    int slot = s_plan_require (self, entry->plan);
    if (slot < 0)
        sb_log_warn ("quota_plan_dropped", "plan=%s tenant=%s max_plans=%d: the tenant keeps "
                     "its plan", entry->plan, entry->id, SB_QUOTA_MAX_PLANS);
    else
    if ((uint16_t) slot != state->plan) {
        self->plans [state->plan].tenants--;
        self->plans [slot].tenants++;
        state->plan = (uint16_t) slot;
    }
    //  As sb_quota_period reads it (the codec already bounds it)
    uint8_t anchor = entry->anchor < 1 ? 1
                   : entry->anchor > SB_QUOTA_MAX_ANCHOR ? SB_QUOTA_MAX_ANCHOR
                   : (uint8_t) entry->anchor;
    bool moved = anchor != state->anchor;
    state->anchor = anchor;
    s_period_update (self, state, wall_s, moved);
    if (!(state->flags & S_HEARD)) {
        state->flags |= S_HEARD;
        if (entry->period == state->period_start)
            state->used = s_add_sat (state->used, entry->used, SB_MAX_QUOTA_VALUE);
    }
    return 0;
}

void
sb_quota_apply (sb_quota_t *self, const sb_quota_entry_t *entries, size_t count,
                int64_t wall_ms)
{
    int64_t wall_s = wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000;
    size_t dropped = 0;
    const char *first_dropped = NULL;
    for (size_t i = 0; i < count; i++) {
        if (entries [i].is_plan)
            s_apply_plan (self, &entries [i].plan);
        else
        if (s_apply_tenant (self, &entries [i].tenant, wall_s)) {
            if (!first_dropped)
                first_dropped = entries [i].tenant.id;
            dropped++;
        }
    }
    if (dropped)
        sb_log_warn ("quota_tenants_dropped", "count=%zu first=%s max_tenants=%zu: LIMITS "
                     "entries past the cap are not held", dropped, first_dropped,
                     self->max_tenants);
}

void
sb_quota_set_loaded (sb_quota_t *self)
{
    self->loaded = true;
}

bool
sb_quota_loaded (sb_quota_t *self)
{
    return self->loaded;
}


//  --------------------------------------------------------------------------
//  USAGE

size_t
sb_quota_take_usage (sb_quota_t *self, int64_t wall_ms, sb_usage_entry_t *out, size_t max)
{
    int64_t wall_s = wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000;
    int64_t minute = wall_s - ((wall_s % 60) + 60) % 60;
    size_t taken = 0;
    while (taken < max && self->carry_head) {
        s_carry_t *carry = self->carry_head;
        self->carry_head = carry->next;
        if (!self->carry_head)
            self->carry_tail = NULL;
        out [taken] = carry->entry;
        out [taken].minute = minute;
        taken++;
        self->bytes -= s_chunk (sizeof (s_carry_t));
        free (carry);
    }
    while (taken < max && self->dirty_head) {
        sb_quota_state_t *state = self->dirty_head;
        self->dirty_head = state->dirty_next;
        if (!self->dirty_head)
            self->dirty_tail = NULL;
        state->dirty_next = NULL;
        state->flags &= (uint8_t) ~S_DIRTY;
        bool any = state->calls > 0;
        for (int r = 0; r < SB_REFUSAL_COUNT; r++)
            any = any || state->refused [r] > 0;
        if (!any)
            continue;
        sb_usage_entry_t *entry = &out [taken++];
        memset (entry, 0, sizeof (*entry));
        snprintf (entry->tenant, sizeof (entry->tenant), "%s", state->id);
        entry->period = state->period_start;
        entry->minute = minute;
        entry->calls = state->calls;
        memcpy (entry->refused, state->refused, sizeof (entry->refused));
        state->calls = 0;
        memset (state->refused, 0, sizeof (state->refused));
    }
    return taken;
}


//  --------------------------------------------------------------------------
//  Figures

size_t
sb_quota_tenants (sb_quota_t *self)
{
    return self->count;
}

size_t
sb_quota_memory (sb_quota_t *self)
{
    //  zhashx's items for the plan index: an item and a key copy each
    return s_chunk (sizeof (sb_quota_t))
         + s_chunk (self->capacity * sizeof (sb_quota_state_t *))
         + s_chunk ((SB_QUOTA_MAX_PLANS + 1) * sizeof (s_plan_t))
         + (self->plan_count - 1) * (s_chunk (48) + s_chunk (SB_MAX_PLAN_LEN + 1))
         + s_chunk (sizeof (sb_quota_state_t) + 1)
         + self->bytes;
}

void
sb_quota_each_plan (sb_quota_t *self, sb_quota_plan_fn *fn, void *arg)
{
    sb_quota_plan_stats_t stats;
    memset (&stats, 0, sizeof (stats));
    const s_plan_t *defaults = &self->plans [0];
    snprintf (stats.plan, sizeof (stats.plan), "%s", defaults->limits.id);
    stats.admitted = defaults->admitted;
    memcpy (stats.refused, defaults->refused, sizeof (stats.refused));
    //  Tenants on a plan not yet received run under the defaults
    for (size_t i = 0; i < self->plan_count; i++)
        if (i == 0 || !self->plans [i].known)
            stats.tenants += self->plans [i].tenants;
    fn (&stats, arg);
    for (size_t i = 1; i < self->plan_count; i++) {
        const s_plan_t *plan = &self->plans [i];
        if (!plan->known)
            continue;
        memset (&stats, 0, sizeof (stats));
        snprintf (stats.plan, sizeof (stats.plan), "%s", plan->limits.id);
        stats.tenants = plan->tenants;
        stats.admitted = plan->admitted;
        memcpy (stats.refused, plan->refused, sizeof (stats.refused));
        fn (&stats, arg);
    }
}
