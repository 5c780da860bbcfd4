/*  tests/20_broker_queue.c — unit tests of the broker's data structures:
    per-tenant round-robin queues with their limits (sb_queue), the
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
    assert_int_equal (sb_queue_push (queue, s_add (table, "a1", "A", 10)), SB_QUEUE_OK);
    assert_int_equal (sb_queue_push (queue, s_add (table, "a2", "A", 10)), SB_QUEUE_OK);
    assert_int_equal (sb_queue_push (queue, s_add (table, "a3", "A", 10)), SB_QUEUE_OK);
    sb_flight_t *a4 = s_add (table, "a4", "A", 10);
    assert_int_equal (sb_queue_push (queue, a4), SB_QUEUE_TENANT_FULL);
    assert_int_equal (sb_queue_push (queue, s_add (table, "b1", "B", 10)), SB_QUEUE_OK);
    assert_int_equal (sb_queue_push (queue, s_add (table, "c1", "C", 10)), SB_QUEUE_OK);
    sb_flight_t *d1 = s_add (table, "d1", "D", 10);
    assert_int_equal (sb_queue_push (queue, d1), SB_QUEUE_SERVICE_FULL);
    assert_int_equal (sb_queue_size (queue), 5);
    assert_int_equal (sb_queue_tenants (queue), 3);

    //  A retry goes first in its tenant's FIFO, beyond the limits
    sb_flight_t *a0 = s_add (table, "a0", "A", 10);
    assert_int_equal (sb_queue_push_front (queue, a0), SB_QUEUE_OK);
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
        cmocka_unit_test (test_deadline_heap),
        cmocka_unit_test (test_registry_pick),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
