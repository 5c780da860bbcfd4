/*  tests/30_gateway_ratelimit.c — quota refusals in words and the RateLimit
    header fields (gateway/sb_ratelimit.h), pure: for each reason the
    broker gives (rate, monthly, in_flight, budget, and one it does not
    know) the exact sentence, error_type and retry_after; retry_after
    rounded up, at least 1, a month's end for monthly; the
    CallToolResult's shape; the field values of draft-ietf-httpapi-
    ratelimit-headers and when there are none; and sb_mcp_call_reply's
    answer to a `limited` REPLY that came without its quota group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_mcp.h"
#include "sb_ratelimit.h"

//  2026-12-07T21:00:00Z
#define NOW_S   1796677200

static sb_msg_quota_t
s_quota (const char *reason, const char *scope, uint64_t limit, uint64_t remaining,
         uint32_t reset_s, uint32_t window_s)
{
    sb_msg_quota_t quota;
    memset (&quota, 0, sizeof quota);
    snprintf (quota.reason, sizeof quota.reason, "%s", reason);
    snprintf (quota.scope, sizeof quota.scope, "%s", scope);
    quota.limit = limit;
    quota.remaining = remaining;
    quota.reset_s = reset_s;
    quota.window_s = window_s;
    return quota;
}

static void
test_rate (void **state)
{
    (void) state;
    sb_msg_quota_t quota = s_quota ("rate", "pro", 1200, 0, 15, 60);
    sb_limited_t limited;
    sb_limited_describe (&quota, 1001, NULL, NULL, NOW_S, &limited);
    assert_string_equal (limited.error_type, "rate_limited");
    assert_int_equal (limited.retry_after, 2);      //  1.001 s rounds up
    assert_string_equal (limited.sentence,
        "Rate limit reached: your plan \"pro\" allows 1,200 tool calls per minute, and none are "
        "left right now (the allowance refills completely in 15 seconds). Try again in 2 seconds, "
        "or ask your administrator for a bigger plan.");

    //  Some left, but fewer than a costly tool counts.
    quota = s_quota ("rate", "free", 60, 3, 57, 60);
    sb_limited_describe (&quota, 40000, NULL, NULL, NOW_S, &limited);
    assert_int_equal (limited.retry_after, 40);
    assert_non_null (strstr (limited.sentence, "only 3 are left right now, fewer than this call counts"));
    assert_non_null (strstr (limited.sentence, "Try again in 40 seconds"));

    //  No advice at all still says 1 second, never 0.
    sb_limited_describe (&quota, 0, NULL, NULL, NOW_S, &limited);
    assert_int_equal (limited.retry_after, 1);
    assert_non_null (strstr (limited.sentence, "Try again in 1 second,"));
}

static void
test_monthly (void **state)
{
    (void) state;
    //  Renews in 24 days and 3 hours: 2027-01-01T00:00:00Z.
    sb_msg_quota_t quota = s_quota ("monthly", "free", 1000, 0, 24 * 86400 + 3 * 3600, 2678400);
    sb_limited_t limited;
    //  The broker caps its advice at an hour (PROTOCOL.md): the period's end wins.
    sb_limited_describe (&quota, 3600000, NULL, NULL, NOW_S, &limited);
    assert_string_equal (limited.error_type, "monthly_quota_exceeded");
    assert_int_equal (limited.retry_after, 24 * 86400 + 3 * 3600);
    assert_string_equal (limited.sentence,
        "Monthly quota reached: you have used 1,000 of the 1,000 tool calls your plan \"free\" "
        "includes per billing month. It renews on 2027-01-01 at 00:00 UTC (in 25 days); to go on "
        "before then, ask your administrator for a bigger plan.");
    //  Part of it left (a costly tool): the usage shows it.
    quota = s_quota ("monthly", "pro", 100000, 4, 3600, 2592000);
    sb_limited_describe (&quota, 0, NULL, NULL, NOW_S, &limited);
    assert_non_null (strstr (limited.sentence, "used 99,996 of the 100,000 tool calls"));
    assert_non_null (strstr (limited.sentence, "on 2026-12-07 at 22:00 UTC (in 60 minutes)"));
    assert_int_equal (limited.retry_after, 3600);
    //  A month's end is as far as retry_after goes.
    quota = s_quota ("monthly", "pro", 5, 0, UINT32_MAX, 2592000);
    sb_limited_describe (&quota, 0, NULL, NULL, NOW_S, &limited);
    assert_int_equal (limited.retry_after, SB_MAX_LIMITED_RETRY_S);
}

static void
test_in_flight_budget_other (void **state)
{
    (void) state;
    sb_msg_quota_t quota = s_quota ("in_flight", "free", 4, 0, 1, 0);
    sb_limited_t limited;
    sb_limited_describe (&quota, 1000, NULL, NULL, NOW_S, &limited);
    assert_string_equal (limited.error_type, "too_many_in_flight");
    assert_int_equal (limited.retry_after, 1);
    assert_string_equal (limited.sentence,
        "Too many tool calls at once: your plan \"free\" allows 4 running at the same time, and that "
        "many are running now. Try again in 1 second, when one has finished, or ask your "
        "administrator for a bigger plan.");
    //  What the jobs are called, for the admin API's.
    quota = s_quota ("in_flight", "default", 1, 0, 1, 0);
    sb_limited_describe (&quota, 1000, "admin API requests", NULL, NOW_S, &limited);
    assert_non_null (strstr (limited.sentence, "Too many admin API requests at once: your plan "
                                               "\"default\" allows 1 running"));
    quota = s_quota ("rate", "default", 60, 0, 1, 60);
    sb_limited_describe (&quota, 1000, "admin API requests", NULL, NOW_S, &limited);
    assert_non_null (strstr (limited.sentence, "allows 60 admin API requests per minute"));

    //  A budget: the service's limit, not the plan's; named for people.
    quota = s_quota ("budget", "salesforce", 100000, 0, 5 * 3600, 86400);
    sb_limited_describe (&quota, 120000, NULL, "Salesforce", NOW_S, &limited);
    assert_string_equal (limited.error_type, "upstream_budget_exhausted");
    assert_int_equal (limited.retry_after, 120);
    assert_string_equal (limited.sentence,
        "Usage budget of Salesforce used up: your connection may make 100,000 calls every 24 hours, "
        "and none are left (a limit of that service, not of your plan). It is whole again in "
        "5 hours; try again in 2 minutes.");
    assert_null (strstr (limited.sentence, "bigger plan"));
    //  Without a display name: the connector as the broker names it.
    quota = s_quota ("budget", "crm", 10, 1, 30, 90);
    sb_limited_describe (&quota, 500, NULL, NULL, NOW_S, &limited);
    assert_non_null (strstr (limited.sentence, "Usage budget of crm used up"));
    assert_non_null (strstr (limited.sentence, "10 calls every 90 seconds, and 1 is left"));

    //  A reason this gateway does not know: generic, still with its advice.
    quota = s_quota ("cosmic", "x", 0, 0, 0, 0);
    sb_limited_describe (&quota, 7000, NULL, NULL, NOW_S, &limited);
    assert_string_equal (limited.error_type, "limited");
    assert_string_equal (limited.sentence, "A usage limit refused this call. Try again in 7 seconds.");
}

static void
test_result (void **state)
{
    (void) state;
    sb_msg_quota_t quota = s_quota ("rate", "pro", 1200, 0, 15, 60);
    sb_limited_t limited;
    sb_limited_describe (&quota, 2500, NULL, NULL, NOW_S, &limited);
    json_t *result = sb_limited_result (&limited);
    assert_non_null (result);
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_t *content = json_object_get (result, "content");
    assert_int_equal (json_array_size (content), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (content, 0), "type")), "text");
    assert_string_equal (json_string_value (json_object_get (json_array_get (content, 0), "text")),
                         limited.sentence);
    json_t *meta = json_object_get (result, "_meta");
    assert_int_equal (json_object_size (meta), 2);
    assert_string_equal (json_string_value (json_object_get (meta, "error_type")), "rate_limited");
    assert_int_equal (json_integer_value (json_object_get (meta, "retry_after")), 3);
    json_decref (result);

    //  A `limited` REPLY mapped without its group (no quota callback): the
    //  same shape, generic words.
    json_t *id = json_integer (9);
    char *text = sb_mcp_call_reply (id, SB_STATUS_LIMITED, NULL, 0);
    json_t *reply = json_loads (text, 0, NULL);
    assert_non_null (reply);
    result = json_object_get (reply, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    meta = json_object_get (result, "_meta");
    assert_string_equal (json_string_value (json_object_get (meta, "error_type")), "limited");
    assert_int_equal (json_integer_value (json_object_get (meta, "retry_after")), 1);
    json_decref (reply);
    json_decref (id);
    free (text);
}

static void
test_fields (void **state)
{
    (void) state;
    char policy [SB_MAX_RATELIMIT_FIELD], fields [SB_MAX_RATELIMIT_FIELD];
    sb_msg_quota_t quota = s_quota ("", "pro", 1200, 1187, 1, 60);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), 0);
    assert_string_equal (policy, "\"pro\";q=1200;w=60");
    assert_string_equal (fields, "\"pro\";r=1187;t=1");
    //  A refusal: nothing left; a budget is named by its connector.
    quota = s_quota ("budget", "sandbox-crm", 100000, 0, 18000, 86400);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), 0);
    assert_string_equal (policy, "\"sandbox-crm\";q=100000;w=86400");
    assert_string_equal (fields, "\"sandbox-crm\";r=0;t=18000");
    //  Remaining never above the quota (a burst larger than the rate).
    quota = s_quota ("", "big", 10, 30, 120, 60);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), 0);
    assert_string_equal (fields, "\"big\";r=10;t=120");
    //  No scope: "default".
    quota = s_quota ("", "", 5, 5, 0, 60);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), 0);
    assert_string_equal (policy, "\"default\";q=5;w=60");
    //  None: an unlimited plan (all 0), an in-flight cap (no window), a
    //  scope a quoted string would have to escape.
    quota = s_quota ("", "", 0, 0, 0, 0);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), -1);
    quota = s_quota ("in_flight", "free", 4, 0, 1, 0);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), -1);
    quota = s_quota ("", "a\"b", 4, 0, 1, 60);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), -1);
    quota = s_quota ("", "a b", 4, 0, 1, 60);
    assert_int_equal (sb_ratelimit_fields (&quota, policy, fields), -1);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_rate),
        cmocka_unit_test (test_monthly),
        cmocka_unit_test (test_in_flight_budget_other),
        cmocka_unit_test (test_result),
        cmocka_unit_test (test_fields),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
