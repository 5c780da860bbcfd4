/*  gateway/sb_gateway_main.c — sb-gateway: options, logging, signals, and
    the gateway component's loop. SIGTERM/SIGINT stop it gracefully; SIGHUP
    reloads the connectors folder and the TLS certificate. */
#include "sb_gateway.h"
#include "sb_config.h"
#include "sb_log.h"
#include "sb_sched.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>

static sb_gateway_t *s_gateway;
static volatile sig_atomic_t s_stop;
static volatile sig_atomic_t s_hangup;     /* SIGHUP seen (also during start-up) */

static void
s_on_signal (int signum)
{
    s_stop = 1;
    if (s_gateway)
        sb_gateway_stop (s_gateway);
}

//  SIGHUP: reload the connectors and the TLS certificate (the loop does it).
static void
s_on_hangup (int signum)
{
    s_hangup = 1;
    if (s_gateway)
        sb_gateway_request_reload (s_gateway);
}

int
main (int argc, char **argv)
{
    sb_config_t *config = sb_config_new ("sb-gateway", sb_gateway_options);
    if (!config)
        return 2;
    int rc = sb_config_load (config, argc, argv);
    if (rc) {
        sb_config_destroy (&config);
        return rc == 1? 0: 2;
    }
    sb_log_level_t level;
    if (sb_log_level_parse (sb_config_str (config, "log-level"), &level)) {
        fprintf (stderr, "sb-gateway: unknown --log-level '%s'\n", sb_config_str (config, "log-level"));
        sb_config_destroy (&config);
        return 2;
    }
    sb_log_init ("gateway", level);
    if (sb_sched_apply (sb_config_str (config, "cpu-policy"))) {
        sb_config_destroy (&config);
        return 2;
    }

    //  Our handlers, not CZMQ's: they only set flags the loop checks.
    zsys_handler_set (NULL);
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    struct sigaction hangup = { .sa_handler = s_on_hangup };
    sigemptyset (&hangup.sa_mask);
    sigaction (SIGHUP, &hangup, NULL);
    signal (SIGPIPE, SIG_IGN);

    s_gateway = sb_gateway_new (config);
    if (!s_gateway) {
        sb_config_destroy (&config);
        return 1;
    }
    if (s_stop)
        sb_gateway_stop (s_gateway);
    if (s_hangup)                       //  came while the connectors were loading
        sb_gateway_request_reload (s_gateway);
    rc = sb_gateway_run (s_gateway);
    sb_gateway_t *gateway = s_gateway;
    s_gateway = NULL;
    sb_gateway_destroy (&gateway);
    sb_config_destroy (&config);
    return rc;
}
