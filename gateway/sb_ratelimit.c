/*  gateway/sb_ratelimit.c — quota refusals in words, and the RateLimit
    header fields (see sb_ratelimit.h). Every number a sentence shows comes
    from the REPLY's quota group; nothing here guesses a limit. */
#include "sb_ratelimit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define S_UPGRADE_HINT  "ask your administrator for a bigger plan"

//  `value` with thousands separators ("100,000") into `buf` (≥ 32 bytes).
static void
s_count (uint64_t value, char *buf, size_t cap)
{
    char digits [24];
    int len = snprintf (digits, sizeof digits, "%llu", (unsigned long long) value);
    size_t out = 0;
    for (int i = 0; i < len && out + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf [out++] = ',';
        buf [out++] = digits [i];
    }
    buf [out] = 0;
}

//  "1 second", "45 seconds", "3 minutes", "5 hours", "12 days": `seconds`
//  rounded up to the largest unit that keeps the figure small.
static void
s_duration (uint64_t seconds, char *buf, size_t cap)
{
    static const struct { uint64_t size; const char *name; } units [] = {
        { 2 * 86400, "day" }, { 2 * 3600, "hour" }, { 2 * 60, "minute" },
    };
    static const uint64_t unit_size [] = { 86400, 3600, 60 };
    for (size_t i = 0; i < sizeof units / sizeof units [0]; i++)
        if (seconds >= units [i].size) {
            uint64_t n = (seconds + unit_size [i] - 1) / unit_size [i];
            snprintf (buf, cap, "%llu %ss", (unsigned long long) n, units [i].name);
            return;
        }
    snprintf (buf, cap, "%llu second%s", (unsigned long long) seconds, seconds == 1? "": "s");
}

//  A window's length as the sentence says it: "minute", "24 hours",
//  "7 days", "hour", "90 seconds" (exact units only).
static void
s_window (uint64_t seconds, char *buf, size_t cap)
{
    if (seconds == 60 || seconds == 3600 || seconds == 86400)
        snprintf (buf, cap, "%s", seconds == 60? "minute": seconds == 3600? "hour": "24 hours");
    else
    if (seconds % 86400 == 0)
        snprintf (buf, cap, "%llu days", (unsigned long long) (seconds / 86400));
    else
    if (seconds % 3600 == 0)
        snprintf (buf, cap, "%llu hours", (unsigned long long) (seconds / 3600));
    else
    if (seconds % 60 == 0)
        snprintf (buf, cap, "%llu minutes", (unsigned long long) (seconds / 60));
    else
        snprintf (buf, cap, "%llu seconds", (unsigned long long) seconds);
}

void
sb_limited_describe (const sb_msg_quota_t *quota, uint32_t retry_after_ms, const char *what,
                     const char *service, int64_t now_s, sb_limited_t *out)
{
    memset (out, 0, sizeof *out);
    if (!what)
        what = "tool calls";
    uint64_t retry = ((uint64_t) retry_after_ms + 999) / 1000;
    if (strcmp (quota->reason, "monthly") == 0 && retry < quota->reset_s)
        retry = quota->reset_s;
    if (retry < 1)
        retry = 1;
    if (retry > SB_MAX_LIMITED_RETRY_S)
        retry = SB_MAX_LIMITED_RETRY_S;
    out->retry_after = (int) retry;

    char limit [32], remaining [32], used [32], again [48], reset [48], window [48];
    s_count (quota->limit, limit, sizeof limit);
    s_count (quota->remaining, remaining, sizeof remaining);
    s_count (quota->remaining < quota->limit? quota->limit - quota->remaining: 0, used, sizeof used);
    s_duration (retry, again, sizeof again);
    s_duration (quota->reset_s, reset, sizeof reset);
    s_window (quota->window_s, window, sizeof window);
    const char *plan = quota->scope [0]? quota->scope: "default";

    if (strcmp (quota->reason, "rate") == 0) {
        out->error_type = "rate_limited";
        char left [128] = "none are left right now";
        if (quota->remaining > 0)
            snprintf (left, sizeof left, "only %s %s left right now, fewer than this call counts",
                      remaining, quota->remaining == 1? "is": "are");
        snprintf (out->sentence, sizeof out->sentence,
                  "Rate limit reached: your plan \"%s\" allows %s %s per minute, and %s (the "
                  "allowance refills completely in %s). Try again in %s, or " S_UPGRADE_HINT ".",
                  plan, limit, what, left, reset, again);
    }
    else
    if (strcmp (quota->reason, "monthly") == 0) {
        out->error_type = "monthly_quota_exceeded";
        char date [48] = "";
        time_t renew = (time_t) (now_s + quota->reset_s);
        struct tm tm;
        if (gmtime_r (&renew, &tm))
            strftime (date, sizeof date, "on %Y-%m-%d at %H:%M UTC ", &tm);
        snprintf (out->sentence, sizeof out->sentence,
                  "Monthly quota reached: you have used %s of the %s %s your plan \"%s\" includes "
                  "per billing month. It renews %s(in %s); to go on before then, "
                  S_UPGRADE_HINT ".", used, limit, what, plan, date, reset);
    }
    else
    if (strcmp (quota->reason, "in_flight") == 0) {
        out->error_type = "too_many_in_flight";
        snprintf (out->sentence, sizeof out->sentence,
                  "Too many %s at once: your plan \"%s\" allows %s running at the same time, "
                  "and that many are running now. Try again in %s, when one has finished, or "
                  S_UPGRADE_HINT ".", what, plan, limit, again);
    }
    else
    if (strcmp (quota->reason, "budget") == 0) {
        out->error_type = "upstream_budget_exhausted";
        const char *name = service && *service? service: quota->scope [0]? quota->scope: "the service";
        snprintf (out->sentence, sizeof out->sentence,
                  "Usage budget of %s used up: your connection may make %s calls every %s, and "
                  "%s %s left (a limit of that service, not of your plan). It is whole again in "
                  "%s; try again in %s.", name, limit, window,
                  quota->remaining? remaining: "none", quota->remaining == 1? "is": "are", reset, again);
    }
    else {
        out->error_type = "limited";
        snprintf (out->sentence, sizeof out->sentence,
                  "A usage limit refused this call. Try again in %s.", again);
    }
}

json_t *
sb_limited_result (const sb_limited_t *limited)
{
    return json_pack ("{s:[{s:s, s:s}], s:b, s:{s:s, s:i}}",
                      "content", "type", "text", "text", limited->sentence,
                      "isError", 1,
                      "_meta", "error_type", limited->error_type,
                      "retry_after", (json_int_t) limited->retry_after);
}

//  True when `name` is a non-empty plain name a quoted sf-string carries as it is.
static bool
s_plain (const char *name)
{
    if (!*name)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
        ||    *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

int
sb_ratelimit_fields (const sb_msg_quota_t *quota, char *policy, char *state)
{
    const char *name = quota->scope [0]? quota->scope: "default";
    if (quota->limit == 0 || quota->window_s == 0 || !s_plain (name))
        return -1;
    uint64_t remaining = quota->remaining < quota->limit? quota->remaining: quota->limit;
    snprintf (policy, SB_MAX_RATELIMIT_FIELD, "\"%s\";q=%llu;w=%u", name,
              (unsigned long long) quota->limit, quota->window_s);
    snprintf (state, SB_MAX_RATELIMIT_FIELD, "\"%s\";r=%llu;t=%u", name,
              (unsigned long long) remaining, quota->reset_s);
    return 0;
}
