/*  proto/sb_limits.h — the wire protocol's limits, in one place: the bounds
    of the envelope's fields and the heartbeat timing every peer keeps
    (proto/PROTOCOL.md, "Heartbeats" and "Gateway heartbeats"). The broker,
    gateways and workers take these from here; none defines its own.
    sb_msg.h includes this header. */
#ifndef SB_LIMITS_H_INCLUDED
#define SB_LIMITS_H_INCLUDED

/* Hard limits: a frame that exceeds one is malformed. */
#define SB_MAX_CORR_ID_LEN      64          /* correlation ID, bytes */
#define SB_MAX_SERVICE_LEN      32          /* service name, bytes */
#define SB_MAX_TENANT_LEN       64          /* tenant ID, bytes */
#define SB_MAX_HEADER_SIZE      512         /* encoded header frame, bytes */
#define SB_MAX_PAYLOAD_SIZE     (4u << 20)  /* payload frame, bytes (4 MiB) */
#define SB_MAX_TIMEOUT_MS       600000u     /* longest deadline a job may ask for */
#define SB_MAX_CREDIT           10000u      /* most jobs one worker may hold */
#define SB_MAX_TOPIC_LEN        32          /* BROADCAST topic, bytes */
#define SB_MAX_BROADCAST_SIZE   4096u       /* BROADCAST payload, bytes (a session ID and a URI fit) */
#define SB_MAX_RETRY_AFTER_MS   3600000u    /* REPLY retry_after_ms: an hour at most */
#define SB_MAX_WORKER_REQUESTS  1024u       /* REQUESTs one worker has in flight at once */

/* Webhooks (PROTOCOL.md "Webhooks"). */
#define SB_MAX_JOB_BODY         (1u << 20)  /* a job's raw `body` (msgpack bin), bytes */
#define SB_MAX_WEBHOOK_HEADERS  64u         /* request headers a webhook job carries */
#define SB_MAX_WEBHOOK_HEADER_BYTES (16u * 1024)  /* their names and values in all, bytes */
#define SB_MAX_RESOURCE_URI_LEN 2048u       /* a resource_updated PUBLISH payload, bytes */

/* Quotas (PROTOCOL.md "Quotas"): REQUEST's metering fields, REPLY's quota
   group, LIMITS and USAGE. */
#define SB_MAX_COST             1000u       /* REQUEST cost: units one job counts */
#define SB_MAX_CONN_LEN         128         /* REQUEST conn (a connector name), bytes */
#define SB_MAX_BUDGET_LIMIT     1000000000u /* REQUEST budget_limit: upstream requests per window */
#define SB_MAX_BUDGET_WINDOW_S  2592000u    /* REQUEST budget_window_s: 30 days */
#define SB_MAX_REASON_LEN       32          /* REPLY reason, bytes */
#define SB_MAX_SCOPE_LEN        64          /* REPLY scope (a plan ID or a connector), bytes */
#define SB_MAX_QUOTA_VALUE      9007199254740992ull /* REPLY limit/remaining, entries' counts: 2^53 */
#define SB_MAX_BROKER_ID_LEN    64          /* USAGE broker_id, bytes */
#define SB_QUOTA_MAX_ENTRIES    1000u       /* entries in one LIMITS or USAGE payload */
#define SB_MAX_PLAN_LEN         63          /* plan ID, bytes (^[a-z0-9][a-z0-9_-]{0,62}$) */

/* Worker heartbeats: READY gives the interval, which the broker clamps to
   [SB_MIN_HEARTBEAT_MS, SB_MAX_HEARTBEAT_MS] and also heartbeats the worker
   at. Either side presumes the other gone after SB_HEARTBEAT_LIVENESS
   silent intervals: the broker expires the worker, the worker reconnects. */
#define SB_MIN_HEARTBEAT_MS     50u         /* shortest heartbeat interval */
#define SB_MAX_HEARTBEAT_MS     60000u      /* longest heartbeat interval */
#define SB_DEFAULT_HEARTBEAT_MS 1000u       /* a worker's, and the broker's for READY giving 0 */
#define SB_HEARTBEAT_LIVENESS   3u          /* silent intervals before a peer is presumed gone */

/* Gateways heartbeat the broker at this interval; the broker forgets a
   gateway (sends it no BROADCAST) after SB_GATEWAY_LIVENESS silent ones,
   and answers each with a HEARTBEAT: a gateway that hears nothing from the
   broker for SB_GATEWAY_LIVENESS intervals holds it unreachable. */
#define SB_GATEWAY_HEARTBEAT_MS 1000u
#define SB_GATEWAY_LIVENESS     SB_HEARTBEAT_LIVENESS

#endif
