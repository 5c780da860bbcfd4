/*  tests/20_broker_support.h — what the broker tests share: an in-process
    broker (sb_broker_actor on tcp://127.0.0.1:*), raw DEALER sockets playing
    gateway and worker through the proto codec, and waits that poll for a
    reply or a counter with a deadline (never a fixed sleep). */
#ifndef SB_BROKER_SUPPORT_H_INCLUDED
#define SB_BROKER_SUPPORT_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include "sb_broker.h"
#include "sb_msg.h"

#define TB_WAIT_MS      3000    /* default wait for something that must happen */
#define TB_QUIET_MS     150     /* wait that shows something does NOT happen */

typedef struct {
    zactor_t *actor;            /* the broker thread */
    char *frontend;             /* its gateway endpoint */
    char *backend;              /* its worker endpoint */
} tb_broker_t;

/*  Starts a broker with `config` (NULL: defaults with tcp://127.0.0.1:*). Asserts. */
tb_broker_t *tb_broker_start (const sb_broker_config_t *config);
void tb_broker_stop (tb_broker_t **self_p);

/*  Default config bound to ephemeral ports, quiet stats, quota service
    "quotas" (so tests' `token` workers get no USAGE). */
void tb_config (sb_broker_config_t *config);

/*  The broker's counters now. Asserts that the broker answered. */
sb_broker_counters_t tb_counters (tb_broker_t *broker);

/*  Polls the counters until `field` (an sb_broker_counters_t member
    offset) reaches `value`. Returns true, or false after timeout_ms. */
bool tb_wait_counter (tb_broker_t *broker, size_t offset, uint64_t value, int timeout_ms);
#define TB_WAIT(broker, field, value) \
    tb_wait_counter ((broker), offsetof (sb_broker_counters_t, field), (value), TB_WAIT_MS)

/*  A DEALER connected to the frontend (a gateway). */
zsock_t *tb_gateway (tb_broker_t *broker);

/*  A DEALER connected to the backend that has sent READY and is
    registered (waits on workers_registered). */
zsock_t *tb_worker (tb_broker_t *broker, const char *service, uint32_t credit,
                    uint32_t heartbeat_ms);

/*  Sends a REQUEST whose payload is `body` (text). Asserts it was queued. */
void tb_request (zsock_t *gateway, const char *corr_id, const char *service,
                 const char *tenant, uint32_t timeout_ms, uint32_t flags, const char *body);

/*  Sends a RESULT whose payload is `body` (text). */
void tb_result (zsock_t *worker, const char *corr_id, sb_status_t status, const char *body);

/*  Sends raw frames (count, then pairs of const void *data, size_t size). */
void tb_send_raw (zsock_t *sock, int count, ...);

/*  Receives one message within timeout_ms, skipping HEARTBEATs when
    `skip_heartbeats`. Returns SB_MSG_OK or the codec's error, or
    SB_MSG_NONE on timeout. */
int tb_recv (zsock_t *sock, sb_msg_t *msg, int timeout_ms, bool skip_heartbeats);

/*  True when the payload of `msg` is exactly `body`. */
bool tb_payload_is (const sb_msg_t *msg, const char *body);

#endif
