/*  gateway/sb_ratelimit.h — what the gateway tells people and clients about
    the broker's quotas (proto/PROTOCOL.md "Quotas"): a REPLY `limited`
    turned into one sentence (which limit, how much of it is used, when it
    resets, and for a plan's limit the upgrade hint), an error_type and a
    retry_after; and a REPLY's quota group turned into the RateLimit-Policy
    and RateLimit response fields of draft-ietf-httpapi-ratelimit-headers
    (-08 and later: `"<policy>";q=<quota>;w=<window>` and
    `"<policy>";r=<remaining>;t=<reset>`).

    Pure: no sockets, no h2o, no clock (the caller passes the time), so the
    sentences are unit-tested exactly. sb_call.c answers a tools/call with
    them (an isError CallToolResult), sb_http_job.c an HTTP job (429 with
    Retry-After). */
#ifndef SB_RATELIMIT_H_INCLUDED
#define SB_RATELIMIT_H_INCLUDED

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_msg.h"

#define SB_MAX_LIMITED_SENTENCE     512     /* a refusal's sentence, bytes */
#define SB_MAX_RATELIMIT_FIELD      160     /* a RateLimit(-Policy) field value, bytes */
#define SB_MAX_LIMITED_RETRY_S      (31 * 86400)    /* retry_after of a refusal, at most (a month) */

/*  A refusal, as people and machines read it. */
typedef struct {
    const char *error_type;     /* "rate_limited", "monthly_quota_exceeded", "too_many_in_flight",
                                   "upstream_budget_exhausted"; "limited" for a reason this
                                   gateway does not know (static string) */
    int retry_after;            /* seconds until a retry may pass, 1..SB_MAX_LIMITED_RETRY_S */
    char sentence [SB_MAX_LIMITED_SENTENCE];    /* one clear sentence (or two) for a person */
} sb_limited_t;

/*  Fills `out` for a REPLY `limited` with `quota` and `retry_after_ms`.
    `what` names the jobs counted ("tool calls", "admin API requests";
    NULL: "tool calls"); `service` is what the sentence calls a budget's
    connector (its display name, e.g. "the CRM"; NULL: the quota's
    scope). `now_s` (Unix seconds)
    dates a monthly allowance's renewal. retry_after is the REPLY's advice
    rounded up to whole seconds, at least 1; for `monthly`, at least the
    period's end (reset_s), since the protocol caps retry_after_ms at an
    hour. */
void sb_limited_describe (const sb_msg_quota_t *quota, uint32_t retry_after_ms, const char *what,
                          const char *service, int64_t now_s, sb_limited_t *out);

/*  The CallToolResult for `limited`: isError, its sentence as the one text
    content, _meta {"error_type", "retry_after"}. New reference, NULL when
    out of memory. */
json_t *sb_limited_result (const sb_limited_t *limited) SB_MUST_USE;

/*  The RateLimit-Policy and RateLimit field values for `quota` into
    `policy` and `state` (each at least SB_MAX_RATELIMIT_FIELD bytes): the
    policy is named by the scope (the plan, or a budget's connector;
    "default" when empty), q = limit, w = window_s; r = remaining (at most
    limit), t = reset_s. Returns 0, or -1 when the group describes no
    windowed limit (limit or window_s 0: no policy, an in-flight cap) or
    the scope is not a plain name (letters, digits, '-', '_', '.'). */
int sb_ratelimit_fields (const sb_msg_quota_t *quota, char *policy, char *state) SB_MUST_USE;

#endif
