/*  proto/sb_msg.h — the switchboard wire protocol codec (envelope layer).

    Every message between gateway, broker and workers is a ZeroMQ multipart
    message of one or two frames (see proto/PROTOCOL.md):

        frame 0  header   msgpack array [version, command, fields…]
        frame 1  payload  opaque bytes (REQUEST, REPLY, JOB, RESULT, NOTIFY,
                          ASK, ANSWER, BROADCAST, LIMITS, USAGE, PUBLISH)

    On a ROUTER socket the routing-id frame comes first; sb_msg_recv and
    sb_msg_send handle it. This codec is the only code that reads or writes
    the header. The payload is never parsed here: the broker passes it
    through unread; gateways and workers decode it with proto/sb_job.h.

    Decoding checks every bound and type; any violation is one `malformed`
    outcome, never an assert.
*/
#ifndef SB_MSG_H_INCLUDED
#define SB_MSG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define SB_PROTO_VERSION        1

/* Every limit of the protocol (field bounds, heartbeat timing). */
#include "sb_limits.h"

/* Return codes of sb_msg_decode / sb_msg_recv. */
#define SB_MSG_OK               0
#define SB_MSG_NONE            -1   /* nothing received (interrupted / EAGAIN) */
#define SB_MSG_MALFORMED       -2   /* received and dropped: not a valid message */
#define SB_MSG_BAD_VERSION     -3   /* well-formed header of another protocol version */

typedef enum {
    SB_CMD_REQUEST    = 1,  /* gateway (or worker, with parent) → broker: run a job */
    SB_CMD_REPLY      = 2,  /* broker → gateway (or asking worker): the job's outcome */
    SB_CMD_READY      = 3,  /* worker → broker: I serve <service> with <credit> slots */
    SB_CMD_JOB        = 4,  /* broker → worker: run this job */
    SB_CMD_RESULT     = 5,  /* worker → broker: the job's outcome */
    SB_CMD_HEARTBEAT  = 6,  /* either way: I am alive */
    SB_CMD_DISCONNECT = 7,  /* either way: I am leaving / forget me */
    SB_CMD_NOTIFY     = 8,  /* worker → broker → asking gateway: a notification inside a call */
    SB_CMD_CANCEL     = 9,  /* asker → broker → worker: stop this job, answer nothing */
    SB_CMD_ASK        = 10, /* worker → broker → asking gateway: a request to the client */
    SB_CMD_ANSWER     = 11, /* any gateway → broker → worker: the client's response to an ASK */
    SB_CMD_BROADCAST  = 12, /* gateway → broker → every other gateway: news for all of them */
    SB_CMD_LIMITS     = 13, /* quota-service worker → broker: plans and tenants (sb_quota_msg.h) */
    SB_CMD_USAGE      = 14, /* broker → quota-service worker: counts to store; want = send LIMITS */
    SB_CMD_USAGE_ACK  = 15, /* worker → broker: the USAGE of this seq is stored */
    SB_CMD_PUBLISH    = 16, /* worker → broker → every gateway (as BROADCAST): news for all */
} sb_cmd_t;

#define SB_CMD_MIN SB_CMD_REQUEST
#define SB_CMD_MAX SB_CMD_PUBLISH

typedef enum {
    SB_STATUS_OK          = 0,  /* the worker ran the job; payload is its result */
    SB_STATUS_TIMEOUT     = 1,  /* the deadline passed before a result came */
    SB_STATUS_WORKER_LOST = 2,  /* the worker died holding a job not safe to retry */
    SB_STATUS_OVERLOADED  = 3,  /* a bounded queue was full; try again later */
    SB_STATUS_MALFORMED   = 4,  /* the request was not a valid message */
    SB_STATUS_BAD_VERSION = 5,  /* the peer speaks another protocol version */
    SB_STATUS_FAILED      = 6,  /* the worker could not run the job; payload says why */
    SB_STATUS_DUPLICATE   = 7,  /* a job with this correlation ID is already in flight */
    SB_STATUS_CANCELLED   = 8,  /* RESULT only: the worker stopped the job after CANCEL */
    SB_STATUS_UNAVAILABLE = 9,  /* no worker serves the service, or the broker is unreachable */
    SB_STATUS_LIMITED     = 10, /* a quota refused the job before it was queued (msg.quota says which) */
} sb_status_t;

#define SB_STATUS_MAX SB_STATUS_LIMITED

/* LIMITS snapshot: what the message's entries are (PROTOCOL.md "Quotas"). */
#define SB_SNAPSHOT_CHANGE      0u  /* changes since the last LIMITS */
#define SB_SNAPSHOT_PART        1u  /* one part of a full snapshot */
#define SB_SNAPSHOT_LAST        2u  /* the last part of a full snapshot */

/* Flags of REQUEST and JOB. */
#define SB_FLAG_RETRY_SAFE      0x1u    /* may be re-dispatched if its worker dies */
#define SB_FLAGS_KNOWN          0x1u

/*  REPLY's quota group (PROTOCOL.md "Quotas"): with status `limited`, the
    limit that refused the job; on any other REPLY to a metered job, the
    tenant's rate policy at admission (reason ""); all zero otherwise. */
typedef struct {
    char reason [SB_MAX_REASON_LEN + 1];    /* "rate" "monthly" "in_flight" "budget", or "" */
    char scope [SB_MAX_SCOPE_LEN + 1];      /* the plan, or (budget) the connector */
    uint64_t limit;                         /* the limit described, 0..SB_MAX_QUOTA_VALUE */
    uint64_t remaining;                     /* what is left of it now, 0..SB_MAX_QUOTA_VALUE */
    uint32_t reset_s;                       /* seconds until it is whole again (period end) */
    uint32_t window_s;                      /* its window: 60, the period, the budget's; 0 */
} sb_msg_quota_t;

/*  One decoded message. A value type: fields not used by `command` are zero.
    `payload` is owned by the message; sb_msg_reset frees it. */
typedef struct {
    sb_cmd_t command;                       /* which message this is */
    char corr_id [SB_MAX_CORR_ID_LEN + 1];  /* every command but READY HEARTBEAT DISCONNECT */
    char service [SB_MAX_SERVICE_LEN + 1];  /* REQUEST READY: service name ("api", "token"…) */
    char tenant [SB_MAX_TENANT_LEN + 1];    /* REQUEST JOB ANSWER: tenant the job runs for;
                                               BROADCAST: tenant whose token caused it;
                                               PUBLISH: tenant the news is for */
    char topic [SB_MAX_TOPIC_LEN + 1];      /* BROADCAST PUBLISH: what it is about ("session_ended"…) */
    uint32_t timeout_ms;                    /* REQUEST JOB: time left before the deadline */
    uint32_t flags;                         /* REQUEST JOB: SB_FLAG_* */
    uint32_t attempt;                       /* JOB: 1 for the first dispatch, 2… for retries */
    uint32_t credit;                        /* READY: how many jobs the worker holds at once */
    uint32_t heartbeat_ms;                  /* READY: the worker's heartbeat interval */
    uint32_t ask_id;                        /* ASK ANSWER: the request's number within its job */
    sb_status_t status;                     /* REPLY RESULT: outcome */
    uint32_t retry_after_ms;                /* REPLY (optional, 0 = none): try again after this */
    char parent [SB_MAX_CORR_ID_LEN + 1];   /* REQUEST (optional, "" = none): from a worker, the
                                               corr_id of the job it asks on behalf of */
    uint32_t cost;                          /* REQUEST (optional): 0..SB_MAX_COST, 0 = not metered */
    char conn [SB_MAX_CONN_LEN + 1];        /* REQUEST (optional, "" = none): the connector whose
                                               per-connection upstream budget the job spends */
    uint32_t budget_limit;                  /* REQUEST (optional): requests per window, 0 = none */
    uint32_t budget_window_s;               /* REQUEST (optional): the budget's window */
    sb_msg_quota_t quota;                   /* REPLY (optional): see sb_msg_quota_t */
    uint64_t seq;                           /* LIMITS USAGE USAGE_ACK: 1..SB_MAX_QUOTA_VALUE */
    uint32_t snapshot;                      /* LIMITS: 0 a change, 1 a snapshot part, 2 its last */
    uint32_t want;                          /* USAGE: 1 = the broker wants a full snapshot */
    char broker_id [SB_MAX_BROKER_ID_LEN + 1]; /* USAGE: the broker process's random ID */
    zframe_t *payload;                      /* REQUEST REPLY JOB RESULT NOTIFY ASK ANSWER
                                               BROADCAST LIMITS USAGE PUBLISH: body, owned */
} sb_msg_t;

/*  Frees the payload and zeroes every field. Safe on a zeroed message. */
void sb_msg_reset (sb_msg_t *self);

/*  Encodes `self` into a new zmsg (header frame, then payload frame when the
    command carries one; an absent payload is sent as an empty frame).
    Moves self->payload into the zmsg (self->payload becomes NULL).
    Returns NULL when a field breaks a limit (caller's bug, never wire data). */
zmsg_t *sb_msg_encode (sb_msg_t *self) __attribute__ ((warn_unused_result));

/*  Decodes the frames of *zmsg_p (routing frame already removed) into `self`
    and destroys the zmsg. Returns SB_MSG_OK, SB_MSG_MALFORMED or
    SB_MSG_BAD_VERSION; on error `self` is reset. */
int sb_msg_decode (zmsg_t **zmsg_p, sb_msg_t *self) __attribute__ ((warn_unused_result));

/*  Decodes one header frame from raw bytes (the fuzz target's entry point).
    On success self->payload is NULL. Same returns as sb_msg_decode. */
int sb_msg_decode_header (const uint8_t *data, size_t size, sb_msg_t *self)
    __attribute__ ((warn_unused_result));

/*  Receives one message from `sock` without blocking. When `routing_id` is
    not NULL the socket is a ROUTER: the first frame is returned there (the
    caller owns it). Returns SB_MSG_OK, SB_MSG_NONE, SB_MSG_MALFORMED or
    SB_MSG_BAD_VERSION. Whenever `*routing_id` is set — on errors too, so
    the peer can be told — the caller owns it and must destroy it. */
int sb_msg_recv (void *sock, sb_msg_t *self, zframe_t **routing_id)
    __attribute__ ((warn_unused_result));

/*  Encodes and sends `self` on `sock` without blocking, prefixed by
    `routing_id` (borrowed) when not NULL. Moves self->payload. Returns 0, or
    -1 when the message could not be queued (peer gone, HWM reached). */
int sb_msg_send (void *sock, sb_msg_t *self, zframe_t *routing_id)
    __attribute__ ((warn_unused_result));

/*  Convenience builders: fill `self` (reset first) for a command. `payload`
    is taken (may be NULL). Strings longer than their limit return -1. */
int sb_msg_set_request (sb_msg_t *self, const char *corr_id, const char *service,
                        const char *tenant, uint32_t timeout_ms, uint32_t flags,
                        zframe_t **payload) __attribute__ ((warn_unused_result));
/*  REQUEST from a worker on behalf of the job `parent` it holds
    (PROTOCOL.md "Worker requests"): as sb_msg_set_request, plus `parent`
    (1..SB_MAX_CORR_ID_LEN bytes; NULL or "" returns -1). */
int sb_msg_set_worker_request (sb_msg_t *self, const char *corr_id, const char *service,
                               const char *tenant, uint32_t timeout_ms, uint32_t flags,
                               const char *parent, zframe_t **payload)
    __attribute__ ((warn_unused_result));
int sb_msg_set_reply (sb_msg_t *self, const char *corr_id, sb_status_t status,
                      zframe_t **payload) __attribute__ ((warn_unused_result));
/*  Sets REQUEST's metering fields on a message built by sb_msg_set_request
    (PROTOCOL.md "Quotas"): cost 0..SB_MAX_COST, `conn` NULL or "" for none
    (else 1..SB_MAX_CONN_LEN printable ASCII bytes, no space), a budget only
    with `conn` (budget_limit 1..SB_MAX_BUDGET_LIMIT and budget_window_s
    1..SB_MAX_BUDGET_WINDOW_S, or both 0). Returns 0, or -1 on a value out
    of bounds (nothing changed), on a message that is not a REQUEST, and on
    a worker's REQUEST (parent set) with cost > 0: only gateways meter
    jobs, and the broker refuses a metered worker REQUEST as malformed
    (a test that sends one sets `cost` itself; the codec carries it). */
int sb_msg_set_metering (sb_msg_t *self, uint32_t cost, const char *conn,
                         uint32_t budget_limit, uint32_t budget_window_s)
    __attribute__ ((warn_unused_result));
/*  LIMITS (seq 1..SB_MAX_QUOTA_VALUE, snapshot SB_SNAPSHOT_*) with its
    entries (sb_quota_msg.h), USAGE (seq ≥ 1, want 0/1, broker_id
    1..SB_MAX_BROKER_ID_LEN printable bytes, no space; payload of usage
    entries, may be NULL = empty) and USAGE_ACK (seq ≥ 1). Return 0, or -1
    on a value out of bounds (the message is then not encodable). */
int sb_msg_set_limits (sb_msg_t *self, uint64_t seq, uint32_t snapshot, zframe_t **payload)
    __attribute__ ((warn_unused_result));
int sb_msg_set_usage (sb_msg_t *self, uint64_t seq, uint32_t want, const char *broker_id,
                      zframe_t **payload) __attribute__ ((warn_unused_result));
int sb_msg_set_usage_ack (sb_msg_t *self, uint64_t seq) __attribute__ ((warn_unused_result));
int sb_msg_set_result (sb_msg_t *self, const char *corr_id, sb_status_t status,
                       zframe_t **payload) __attribute__ ((warn_unused_result));
int sb_msg_set_ready (sb_msg_t *self, const char *service, uint32_t credit,
                      uint32_t heartbeat_ms) __attribute__ ((warn_unused_result));
void sb_msg_set_heartbeat (sb_msg_t *self);
int sb_msg_set_notify (sb_msg_t *self, const char *corr_id, zframe_t **payload)
    __attribute__ ((warn_unused_result));
int sb_msg_set_cancel (sb_msg_t *self, const char *corr_id) __attribute__ ((warn_unused_result));
int sb_msg_set_ask (sb_msg_t *self, const char *corr_id, uint32_t ask_id, zframe_t **payload)
    __attribute__ ((warn_unused_result));
int sb_msg_set_answer (sb_msg_t *self, const char *corr_id, const char *tenant,
                       uint32_t ask_id, zframe_t **payload) __attribute__ ((warn_unused_result));
void sb_msg_set_disconnect (sb_msg_t *self);

/*  BROADCAST for `tenant` about `topic` (1..SB_MAX_TOPIC_LEN printable
    ASCII bytes, no space). A payload larger than SB_MAX_BROADCAST_SIZE
    makes sb_msg_encode fail (and is malformed on the wire). */
int sb_msg_set_broadcast (sb_msg_t *self, const char *tenant, const char *topic,
                          zframe_t **payload) __attribute__ ((warn_unused_result));

/*  PUBLISH for `tenant` about `topic` (PROTOCOL.md "Webhooks"): the same
    fields, bounds and payload limit as BROADCAST; sent by a worker, which
    the broker turns into a BROADCAST to every gateway. */
int sb_msg_set_publish (sb_msg_t *self, const char *tenant, const char *topic,
                        zframe_t **payload) __attribute__ ((warn_unused_result));

/*  Names for logs and metrics: "request", "reply"…; "ok", "timeout"…
    Unknown values give "unknown". */
const char *sb_cmd_name (sb_cmd_t command);
const char *sb_status_name (sb_status_t status);

/*  A fresh random correlation ID: 32 lowercase hex characters into `buf`
    (at least 33 bytes). */
void sb_msg_new_corr_id (char *buf);

#endif
