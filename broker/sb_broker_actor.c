/*  broker/sb_broker_actor.c — the broker on its own thread (a zactor), so
    tests can start it in-process and talk to it: its endpoints come back on
    start, "COUNTERS" returns its counters, "STOP" drains, "$TERM" ends.
    The product's own process uses sb_broker_run directly (sb_broker_main.c). */
#include "sb_broker.h"
#include "sb_attr.h"
#include "sb_log.h"

#include <string.h>

void
sb_broker_actor (zsock_t *pipe, void *args)
{
    sb_broker_t *self = sb_broker_new ((const sb_broker_config_t *) args);
    zsock_signal (pipe, 0);
    if (!self) {
        zstr_send (pipe, "ERROR");
        //  Wait for $TERM so zactor_destroy does not block
        char *command = zstr_recv (pipe);
        free (command);
        return;
    }
    zstr_sendx (pipe, "READY", sb_broker_frontend (self), sb_broker_backend (self), NULL);
    if (sb_broker_run (self, NULL, pipe))
        sb_log_error ("broker_failed", "the broker actor's loop ended on a socket error");
    sb_broker_destroy (&self);
}

zactor_t *
sb_broker_actor_start (const sb_broker_config_t *config, char **frontend, char **backend)
{
    zactor_t *actor = zactor_new (sb_broker_actor, sb_unconst (config));
    if (!actor)
        return NULL;
    char *status = NULL;
    *frontend = NULL;
    *backend = NULL;
    if (zstr_recvx (actor, &status, frontend, backend, NULL) < 0
    ||  !status || !streq (status, "READY") || !*frontend || !*backend) {
        free (status);
        zstr_free (frontend);
        zstr_free (backend);
        zactor_destroy (&actor);
        return NULL;
    }
    free (status);
    return actor;
}

int
sb_broker_actor_counters (zactor_t *actor, sb_broker_counters_t *out, int timeout_ms)
{
    if (zstr_send (actor, "COUNTERS"))
        return -1;
    zsock_t *sock = zactor_sock (actor);
    zpoller_t *poller = zpoller_new (sock, NULL);
    if (!poller)
        return -1;
    void *which = zpoller_wait (poller, timeout_ms);
    zpoller_destroy (&poller);
    if (which != sock)
        return -1;
    zframe_t *frame = zframe_recv (sock);
    int rc = -1;
    if (frame && zframe_size (frame) == sizeof *out) {
        memcpy (out, zframe_data (frame), sizeof *out);
        rc = 0;
    }
    zframe_destroy (&frame);
    return rc;
}
