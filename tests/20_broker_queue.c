/*  tests/20_broker_queue.c — unit tests of the broker's data structures:
    per-tenant queues with their limits, served by weighted deficit round
    robin (sb_queue: shares by weight and by cost), the
    in-flight table's deadline heap (sb_inflight), worker picking by credit
    and load (sb_registry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sb_inflight.h"
#include "sb_queue.h"
#include "sb_registry.h"

static sb_flight_t *
s_add (sb_inflight_t *table, const char *corr_id, const char *tenant, int64_t deadline)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new ("p", 1);
    assert_int_equal (sb_msg_set_request (&msg, corr_id, "api", tenant, 1000, 0, &payload), 0);
    zframe_t *gateway = zframe_new ("gw", 2);
    sb_flight_t *flight = sb_inflight_add (table, &msg, &gateway, deadline);
    assert_non_null (flight);
    assert_null (gateway);
    assert_null (msg.payload);
    return flight;
}

static void
test_round_robin_and_limits (void **state)
{
    sb_inflight_t *table = sb_inflight_new (100);
    sb_queue_t *queue = sb_queue_new ("api", 3, 5);
    assert_non_null (table);
    assert_non_null (queue);
    assert_int_equal (sb_queue_push (queue, s_add (table, "a1", "A", 10), 1), SB_QUEUE_OK);
    assert_int_equal (sb_queue_push (queue, s_add (table, "a2", "A", 10), 1), SB_QUEUE_OK);
    assert_int_equal (sb_queue_push (queue, s_add (table, "a3", "A", 10), 1), SB_QUEUE_OK);
    sb_flight_t *a4 = s_add (table, "a4", "A", 10);
    assert_int_equal (sb_queue_push (queue, a4, 1), SB_QUEUE_TENANT_FULL);
    assert_int_equal (sb_queue_push (queue, s_add (table, "b1", "B", 10), 1), SB_QUEUE_OK);
    assert_int_equal (sb_queue_push (queue, s_add (table, "c1", "C", 10), 1), SB_QUEUE_OK);
    sb_flight_t *d1 = s_add (table, "d1", "D", 10);
    assert_int_equal (sb_queue_push (queue, d1, 1), SB_QUEUE_SERVICE_FULL);
    assert_int_equal (sb_queue_size (queue), 5);
    assert_int_equal (sb_queue_tenants (queue), 3);

    //  A retry goes first in its tenant's FIFO, beyond the limits
    sb_flight_t *a0 = s_add (table, "a0", "A", 10);
    assert_int_equal (sb_queue_push_front (queue, a0, 1), SB_QUEUE_OK);
    //  Removing from the middle keeps the order of the rest
    sb_flight_t *a2 = sb_inflight_lookup (table, "a2");
    sb_queue_remove (queue, a2);

    const char *expected [] = { "a0", "b1", "c1", "a1", "a3" };
    for (int i = 0; i < 5; i++) {
        sb_flight_t *flight = sb_queue_pop (queue);
        assert_non_null (flight);
        assert_string_equal (flight->corr_id, expected [i]);
        assert_null (flight->tqueue);
    }
    assert_null (sb_queue_pop (queue));
    assert_int_equal (sb_queue_size (queue), 0);
    assert_int_equal (sb_queue_tenants (queue), 0);
    sb_queue_destroy (&queue);
    sb_queue_destroy (&queue);
    assert_null (queue);
    sb_inflight_destroy (&table);
    assert_null (table);
}

//  A job of `tenant` costing `cost` (0: not metered) with a fresh corr_id.
static sb_flight_t *
s_add_cost (sb_inflight_t *table, const char *tenant, uint32_t cost)
{
    static unsigned int serial;
    char corr_id [32];
    snprintf (corr_id, sizeof corr_id, "%s-%u", tenant, ++serial);
    sb_flight_t *flight = s_add (table, corr_id, tenant, 1000);
    flight->cost = cost;
    return flight;
}

//  Pops `pops` jobs, topping up each tenant so all stay backlogged, and
//  counts the jobs and cost units served per tenant (index in `tenants`).
static void
s_serve_backlogged (sb_inflight_t *table, sb_queue_t *queue, size_t count,
                    const char **tenants, const uint32_t *weights, const uint32_t *costs,
                    size_t pops, size_t *jobs, uint64_t *units)
{
    for (size_t i = 0; i < count; i++) {
        jobs [i] = 0;
        units [i] = 0;
        for (int j = 0; j < 20; j++)
            assert_int_equal (sb_queue_push (queue, s_add_cost (table, tenants [i], costs [i]),
                                             weights [i]), SB_QUEUE_OK);
    }
    for (size_t n = 0; n < pops; n++) {
        sb_flight_t *flight = sb_queue_pop (queue);
        assert_non_null (flight);
        size_t i = 0;
        while (i < count && !streq (flight->tenant, tenants [i]))
            i++;
        assert_true (i < count);
        jobs [i]++;
        units [i] += flight->cost ? flight->cost : 1;
        sb_inflight_remove (table, &flight);
        assert_int_equal (sb_queue_push (queue, s_add_cost (table, tenants [i], costs [i]),
                                         weights [i]), SB_QUEUE_OK);
    }
    //  Every tenant stayed backlogged the whole time
    assert_int_equal (sb_queue_tenants (queue), count);
    while (sb_queue_size (queue) > 0) {
        sb_flight_t *flight = sb_queue_pop (queue);
        assert_non_null (flight);
        sb_inflight_remove (table, &flight);
    }
    assert_int_equal (sb_inflight_size (table), 0);
}

static void
test_drr_weights (void **state)
{
    sb_inflight_t *table = sb_inflight_new (1000);
    sb_queue_t *queue = sb_queue_new ("api", 100, 1000);
    assert_non_null (table);
    assert_non_null (queue);
    size_t jobs [3];
    uint64_t units [3];

    //  Weights 1 and 4, both backlogged, cost 1: shares 1:4 exactly per 5 pops
    const char *two [] = { "light", "heavy" };
    uint32_t weights [] = { 1, 4 };
    uint32_t unit_costs [] = { 1, 1 };
    s_serve_backlogged (table, queue, 2, two, weights, unit_costs, 1000, jobs, units);
    print_message ("weights 1:4 → jobs %zu:%zu\n", jobs [0], jobs [1]);
    assert_int_equal (jobs [0], 200);
    assert_int_equal (jobs [1], 800);

    //  The interleaving is fine-grained: a turn is weight × SB_DRR_QUANTUM
    //  jobs of cost 1, so the light tenant never waits more than 4 jobs
    for (int j = 0; j < 10; j++) {
        assert_int_equal (sb_queue_push (queue, s_add_cost (table, "light", 1), 1), SB_QUEUE_OK);
        assert_int_equal (sb_queue_push (queue, s_add_cost (table, "heavy", 1), 4), SB_QUEUE_OK);
    }
    const char *order = "LHHHHLHHHHLHHLLLLLLL";
    for (size_t n = 0; n < strlen (order); n++) {
        sb_flight_t *flight = sb_queue_pop (queue);
        assert_non_null (flight);
        assert_string_equal (flight->tenant, order [n] == 'L' ? "light" : "heavy");
        sb_inflight_remove (table, &flight);
    }
    assert_null (sb_queue_pop (queue));

    //  Cost counts, not jobs: equal weights, costs 3 and 1 → equal units
    const char *costly [] = { "big", "small" };
    uint32_t equal [] = { 1, 1 };
    uint32_t mixed_costs [] = { 3, 1 };
    s_serve_backlogged (table, queue, 2, costly, equal, mixed_costs, 800, jobs, units);
    print_message ("costs 3 and 1 → jobs %zu:%zu units %llu:%llu\n", jobs [0], jobs [1],
                   (unsigned long long) units [0], (unsigned long long) units [1]);
    assert_true (units [0] >= 597 && units [0] <= 603);
    assert_true (units [1] >= 597 && units [1] <= 603);

    //  Costs far above the quantum (1000 with weight 1, 500 with weight
    //  2): units still 1:2, so jobs 1:4, and each pop is quick (the rounds
    //  nobody can use are added at once, not walked one by one)
    const char *dear [] = { "huge", "plain" };
    uint32_t dear_weights [] = { 1, 2 };
    uint32_t dear_costs [] = { 1000, 500 };
    int64_t started = zclock_mono ();
    s_serve_backlogged (table, queue, 2, dear, dear_weights, dear_costs, 500, jobs, units);
    int64_t took = zclock_mono () - started;
    print_message ("costs 1000/500 weights 1/2 → jobs %zu:%zu units %llu:%llu in %lld ms\n",
                   jobs [0], jobs [1], (unsigned long long) units [0],
                   (unsigned long long) units [1], (long long) took);
    assert_true (jobs [0] >= 99 && jobs [0] <= 101);
    assert_true (jobs [1] >= 399 && jobs [1] <= 401);
    assert_true (took < 2000);

    //  An unmetered job (cost 0) counts as 1: against cost 2, jobs 2:1
    const char *plain [] = { "unmetered", "double" };
    uint32_t zero_costs [] = { 0, 2 };
    s_serve_backlogged (table, queue, 2, plain, equal, zero_costs, 600, jobs, units);
    assert_true (jobs [0] >= 398 && jobs [0] <= 402);
    assert_true (jobs [1] >= 198 && jobs [1] <= 202);

    //  A weight out of range is clamped, never zero
    assert_int_equal (sb_queue_push (queue, s_add_cost (table, "zero", 1), 0), SB_QUEUE_OK);
    assert_int_equal (sb_queue_push (queue, s_add_cost (table, "zero", 1), 1000000), SB_QUEUE_OK);
    for (int j = 0; j < 2; j++) {
        sb_flight_t *flight = sb_queue_pop (queue);
        assert_non_null (flight);
        sb_inflight_remove (table, &flight);
    }
    assert_null (sb_queue_pop (queue));
    sb_queue_destroy (&queue);
    sb_inflight_destroy (&table);
}

static void
test_deadline_heap (void **state)
{
    sb_inflight_t *table = sb_inflight_new (4);
    int64_t deadlines [] = { 50, 10, 40, 20 };
    const char *ids [] = { "j50", "j10", "j40", "j20" };
    for (int i = 0; i < 4; i++)
        s_add (table, ids [i], "T", deadlines [i]);
    //  Full: the fifth is refused and nothing is taken
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, "j5", "api", "T", 1000, 0, NULL), 0);
    zframe_t *gateway = zframe_new ("gw", 2);
    assert_null (sb_inflight_add (table, &msg, &gateway, 5));
    assert_non_null (gateway);
    zframe_destroy (&gateway);

    assert_int_equal (sb_inflight_next_due (table), 10);
    assert_null (sb_inflight_due (table, 9));
    //  Postponing the earliest puts it last
    sb_inflight_set_due (table, sb_inflight_lookup (table, "j10"), 100);
    const char *order [] = { "j20", "j40", "j50", "j10" };
    for (int i = 0; i < 4; i++) {
        sb_flight_t *flight = sb_inflight_due (table, 1000);
        assert_non_null (flight);
        assert_string_equal (flight->corr_id, order [i]);
        sb_inflight_remove (table, &flight);
        assert_null (flight);
    }
    assert_int_equal (sb_inflight_size (table), 0);
    assert_int_equal (sb_inflight_next_due (table), INT64_MAX);
    assert_null (sb_inflight_lookup (table, "j20"));
    sb_inflight_destroy (&table);
}

static void
test_registry_pick (void **state)
{
    sb_registry_t *registry = sb_registry_new (2);
    zframe_t *id1 = zframe_new ("w1", 2);
    zframe_t *id2 = zframe_new ("w2", 2);
    zframe_t *id3 = zframe_new ("w3", 2);
    sb_worker_t *w1 = sb_registry_add (registry, id1, "api", 2, 10, 0);
    sb_worker_t *w2 = sb_registry_add (registry, id2, "api", 1, 1000, 0);
    assert_non_null (w1);
    assert_non_null (w2);
    assert_int_equal (w1->heartbeat_ms, SB_MIN_HEARTBEAT_MS);     //  clamped
    assert_null (sb_registry_add (registry, id3, "api", 1, 1000, 0));  //  full
    assert_ptr_equal (sb_registry_lookup (registry, id2), w2);
    assert_null (sb_registry_lookup (registry, id3));
    assert_null (sb_registry_pick (registry, "token"));

    //  Least loaded first, rotating among equals, never past credit
    sb_worker_t *first = sb_registry_pick (registry, "api");
    first->running++;
    sb_worker_t *second = sb_registry_pick (registry, "api");
    assert_ptr_not_equal (first, second);
    second->running++;
    sb_worker_t *third = sb_registry_pick (registry, "api");
    assert_ptr_equal (third, w1);
    w1->running++;
    assert_null (sb_registry_pick (registry, "api"));
    w1->unreachable = true;
    w1->running = 0;
    assert_null (sb_registry_pick (registry, "api"));

    sb_registry_remove (registry, &w1);
    assert_null (w1);
    assert_int_equal (sb_registry_service_size (registry, "api"), 1);
    sb_registry_remove (registry, &w2);
    assert_int_equal (sb_registry_size (registry), 0);
    zframe_destroy (&id1);
    zframe_destroy (&id2);
    zframe_destroy (&id3);
    sb_registry_destroy (&registry);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_robin_and_limits),
        cmocka_unit_test (test_drr_weights),
        cmocka_unit_test (test_deadline_heap),
        cmocka_unit_test (test_registry_pick),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
