/*  tests/20_broker_support.c — shared helpers of the broker tests.
    See 20_broker_support.h. */
#include "20_broker_support.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_clock.h"

#define TB_CHECK(cond, ...) do { if (!(cond)) { \
    fprintf (stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); abort (); } } while (0)

void
tb_config (sb_broker_config_t *config)
{
    sb_broker_config_defaults (config);
    config->frontend = "tcp://127.0.0.1:*";
    config->backend = "tcp://127.0.0.1:*";
    config->stats_ms = 0;
    //  Many tests use `token` as an ordinary service: no quota worker
    //  traffic (USAGE) reaches it; 20_broker_quotas names its own
    config->quota_service = "quotas";
}

tb_broker_t *
tb_broker_start (const sb_broker_config_t *config)
{
    sb_broker_config_t defaults;
    if (!config) {
        tb_config (&defaults);
        config = &defaults;
    }
    tb_broker_t *self = (tb_broker_t *) calloc (1, sizeof (tb_broker_t));
    TB_CHECK (self, "out of memory");
    self->actor = sb_broker_actor_start (config, &self->frontend, &self->backend);
    TB_CHECK (self->actor, "broker did not start");
    return self;
}

void
tb_broker_stop (tb_broker_t **self_p)
{
    tb_broker_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    zstr_free (&self->frontend);
    zstr_free (&self->backend);
    free (self);
    *self_p = NULL;
}

sb_broker_counters_t
tb_counters (tb_broker_t *broker)
{
    sb_broker_counters_t counters;
    int rc = sb_broker_actor_counters (broker->actor, &counters, TB_WAIT_MS);
    TB_CHECK (rc == 0, "broker did not answer COUNTERS");
    return counters;
}

bool
tb_wait_counter (tb_broker_t *broker, size_t offset, uint64_t value, int timeout_ms)
{
    int64_t deadline = sb_clock_mono_ms () + timeout_ms;
    while (true) {
        sb_broker_counters_t counters = tb_counters (broker);
        uint64_t now_value;
        memcpy (&now_value, (const char *) &counters + offset, sizeof now_value);
        if (now_value >= value)
            return true;
        if (sb_clock_mono_ms () >= deadline)
            return false;
        zmq_poll (NULL, 0, 2);      //  back-off between two polls of the condition
    }
}

static zsock_t *
s_dealer (const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    TB_CHECK (sock, "no socket");
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, 2000);
    int rc = zsock_connect (sock, "%s", endpoint);
    TB_CHECK (rc == 0, "connect %s", endpoint);
    return sock;
}

zsock_t *
tb_gateway (tb_broker_t *broker)
{
    return s_dealer (broker->frontend);
}

zsock_t *
tb_worker (tb_broker_t *broker, const char *service, uint32_t credit, uint32_t heartbeat_ms)
{
    uint64_t before = tb_counters (broker).workers_registered;
    zsock_t *sock = s_dealer (broker->backend);
    sb_msg_t msg = { 0 };
    int rc = sb_msg_set_ready (&msg, service, credit, heartbeat_ms);
    TB_CHECK (rc == 0, "ready");
    zmsg_t *zmsg = sb_msg_encode (&msg);
    TB_CHECK (zmsg, "encode ready");
    rc = zmsg_send (&zmsg, sock);
    TB_CHECK (rc == 0, "send ready");
    TB_CHECK (tb_wait_counter (broker, offsetof (sb_broker_counters_t, workers_registered),
                               before + 1, TB_WAIT_MS),
              "worker for %s never registered", service);
    return sock;
}

static void
s_send (zsock_t *sock, sb_msg_t *msg)
{
    zmsg_t *zmsg = sb_msg_encode (msg);
    TB_CHECK (zmsg, "encode %s", sb_cmd_name (msg->command));
    int rc = zmsg_send (&zmsg, sock);      //  blocking (sndtimeo): a test socket may wait
    TB_CHECK (rc == 0, "send %s", sb_cmd_name (msg->command));
    sb_msg_reset (msg);
}

void
tb_request (zsock_t *gateway, const char *corr_id, const char *service,
            const char *tenant, uint32_t timeout_ms, uint32_t flags, const char *body)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new (body, strlen (body));
    int rc = sb_msg_set_request (&msg, corr_id, service, tenant, timeout_ms, flags, &payload);
    TB_CHECK (rc == 0, "request %s", corr_id);
    s_send (gateway, &msg);
}

void
tb_result (zsock_t *worker, const char *corr_id, sb_status_t status, const char *body)
{
    sb_msg_t msg = { 0 };
    zframe_t *payload = zframe_new (body, strlen (body));
    int rc = sb_msg_set_result (&msg, corr_id, status, &payload);
    TB_CHECK (rc == 0, "result %s", corr_id);
    s_send (worker, &msg);
}

void
tb_send_raw (zsock_t *sock, int count, ...)
{
    va_list args;
    va_start (args, count);
    zmsg_t *zmsg = zmsg_new ();
    for (int i = 0; i < count; i++) {
        const void *data = va_arg (args, const void *);
        size_t size = va_arg (args, size_t);
        zmsg_addmem (zmsg, data, size);
    }
    va_end (args);
    int rc = zmsg_send (&zmsg, sock);
    TB_CHECK (rc == 0, "send raw");
}

int
tb_recv (zsock_t *sock, sb_msg_t *msg, int timeout_ms, bool skip_heartbeats)
{
    int64_t deadline = sb_clock_mono_ms () + timeout_ms;
    while (true) {
        int64_t left = deadline - sb_clock_mono_ms ();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc <= 0)
            return SB_MSG_NONE;
        rc = sb_msg_recv (sock, msg, NULL);
        if (rc == SB_MSG_NONE)
            continue;
        if (rc == SB_MSG_OK && skip_heartbeats && msg->command == SB_CMD_HEARTBEAT)
            continue;
        return rc;
    }
}

bool
tb_payload_is (const sb_msg_t *msg, const char *body)
{
    if (!msg->payload)
        return false;
    size_t len = strlen (body);
    return zframe_size (msg->payload) == len
        && memcmp (zframe_data (msg->payload), body, len) == 0;
}
