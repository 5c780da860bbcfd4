/*  broker/sb_broker_main.c — sb-broker: reads its options, runs the broker
    component until SIGTERM or SIGINT, drains, exits 0. */
#include <signal.h>
#include <string.h>

#include "sb_broker.h"
#include "sb_queue.h"
#include "sb_config.h"
#include "sb_log.h"
#include "sb_sched.h"

static const sb_option_t s_options [] = {
    { "frontend", SB_OPT_STR, "tcp://127.0.0.1:5555", 0, 0,
      "SB_BROKER_FRONTEND", "endpoint gateways connect to (ROUTER)" },
    { "backend", SB_OPT_STR, "tcp://127.0.0.1:5556", 0, 0,
      "SB_BROKER_BACKEND", "endpoint workers connect to (ROUTER)" },
    { "log-level", SB_OPT_STR, "info", 0, 0,
      "SB_LOG_LEVEL", "debug, info, warn or error" },
    SB_CPU_POLICY_OPTION,
    { "heartbeat-ms", SB_OPT_INT, "1000", SB_MIN_HEARTBEAT_MS, SB_MAX_HEARTBEAT_MS,
      "SB_BROKER_HEARTBEAT_MS", "heartbeat interval for workers that do not give one" },
    { "max-tenant-queue", SB_OPT_INT, "1000", 1, SB_MAX_TENANT_QUEUE,
      "SB_BROKER_MAX_TENANT_QUEUE", "jobs waiting per (service, tenant) before `overloaded`" },
    { "max-service-queue", SB_OPT_INT, "10000", 1, SB_MAX_SERVICE_QUEUE,
      "SB_BROKER_MAX_SERVICE_QUEUE", "jobs waiting per service before `overloaded`" },
    { "max-attempts", SB_OPT_INT, "3", 1, SB_MAX_ATTEMPTS,
      "SB_BROKER_MAX_ATTEMPTS", "dispatches of a retry-safe job before `worker_lost`" },
    { "late-grace-ms", SB_OPT_INT, "5000", 0, 600000,
      "SB_BROKER_LATE_GRACE_MS", "how long a timed-out job keeps its worker's credit" },
    { "stats-ms", SB_OPT_INT, "10000", 0, 3600000,
      "SB_BROKER_STATS_MS", "period of the counters log line (0: never)" },
    { "drain-ms", SB_OPT_INT, "5000", 0, 600000,
      "SB_BROKER_DRAIN_MS", "on SIGTERM, longest wait for running jobs" },
    { "no-worker-grace-ms", SB_OPT_INT, "2000", 0, 600000,
      "SB_BROKER_NO_WORKER_GRACE_MS", "how long jobs wait for a service with no worker "
      "(from the start, or from its last worker leaving) before `unavailable`" },
    { .name = NULL }
};

static volatile sig_atomic_t s_stop = 0;   /* set by SIGTERM/SIGINT, read by the loop */

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

int
main (int argc, char **argv)
{
    sb_config_t *config = sb_config_new ("sb-broker", s_options);
    if (!config)
        return 2;
    int rc = sb_config_load (config, argc, argv);
    if (rc) {
        sb_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    sb_log_level_t level = SB_LOG_INFO;
    if (sb_log_level_parse (sb_config_str (config, "log-level"), &level)) {
        fprintf (stderr, "sb-broker: --log-level must be debug, info, warn or error\n");
        sb_config_destroy (&config);
        return 2;
    }
    sb_log_init ("broker", level);
    if (sb_sched_apply (sb_config_str (config, "cpu-policy"))) {
        sb_config_destroy (&config);
        return 2;
    }

    //  Our handlers only set a flag; CZMQ's own would also set one we don't read
    zsys_handler_set (NULL);
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    sb_broker_config_t settings;
    sb_broker_config_defaults (&settings);
    settings.frontend = sb_config_str (config, "frontend");
    settings.backend = sb_config_str (config, "backend");
    settings.heartbeat_ms = (uint32_t) sb_config_int (config, "heartbeat-ms");
    settings.max_tenant_queue = (uint32_t) sb_config_int (config, "max-tenant-queue");
    settings.max_service_queue = (uint32_t) sb_config_int (config, "max-service-queue");
    settings.max_attempts = (uint32_t) sb_config_int (config, "max-attempts");
    settings.late_grace_ms = (uint32_t) sb_config_int (config, "late-grace-ms");
    settings.stats_ms = (uint32_t) sb_config_int (config, "stats-ms");
    settings.drain_ms = (uint32_t) sb_config_int (config, "drain-ms");
    settings.no_worker_grace_ms = (uint32_t) sb_config_int (config, "no-worker-grace-ms");

    sb_broker_t *broker = sb_broker_new (&settings);
    if (!broker) {
        sb_config_destroy (&config);
        return 1;
    }
    sb_log_info ("ready", "frontend=%s backend=%s",
                 sb_broker_frontend (broker), sb_broker_backend (broker));
    rc = sb_broker_run (broker, &s_stop, NULL);
    sb_broker_destroy (&broker);
    sb_config_destroy (&config);
    zsys_shutdown ();
    return rc ? 1 : 0;
}
