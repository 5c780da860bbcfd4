/*  broker/sb_broker_main.c — sb-broker: reads its options, runs the broker
    component until SIGTERM or SIGINT, drains, exits 0. */
#include <signal.h>
#include <string.h>

#include "sb_broker.h"
#include "sb_queue.h"
#include "sb_quota_msg.h"
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
    { "quotas", SB_OPT_BOOL, "on", 0, 0,
      "SB_BROKER_QUOTAS", "enforce per-tenant quotas (plans, upstream budgets) and weight the "
      "fair queues by plan (off: no limits, every tenant weighs 1)" },
    { "quota-service", SB_OPT_STR, "token", 0, 0,
      "SB_BROKER_QUOTA_SERVICE", "service whose workers send the plans (LIMITS) and store the "
      "usage counts (USAGE)" },
    { "usage-flush-ms", SB_OPT_INT, "1000", SB_MIN_USAGE_FLUSH_MS, SB_MAX_USAGE_FLUSH_MS,
      "SB_BROKER_USAGE_FLUSH_MS", "period of the usage flush to the quota service (a broker "
      "that dies loses at most about this much of the counts, plus a batch not acknowledged)" },
    { "default-rate", SB_OPT_INT, "600", 0, SB_QUOTA_MAX_RATE,
      "SB_BROKER_DEFAULT_RATE", "cost units per minute of tenants without a known plan "
      "(0: unlimited)" },
    { "default-burst", SB_OPT_INT, "100", 0, SB_QUOTA_MAX_BURST,
      "SB_BROKER_DEFAULT_BURST", "burst of tenants without a known plan (at least 1 when "
      "--default-rate is set)" },
    { "default-in-flight", SB_OPT_INT, "32", 0, SB_QUOTA_MAX_IN_FLIGHT,
      "SB_BROKER_DEFAULT_IN_FLIGHT", "metered jobs alive at once of a tenant without a known "
      "plan (0: unlimited)" },
    { "default-weight", SB_OPT_INT, "1", 1, SB_QUOTA_MAX_WEIGHT,
      "SB_BROKER_DEFAULT_WEIGHT", "fair-queue weight of tenants without a known plan" },
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
    settings.quotas = sb_config_bool (config, "quotas");
    settings.quota_service = sb_config_str (config, "quota-service");
    settings.usage_flush_ms = (uint32_t) sb_config_int (config, "usage-flush-ms");
    settings.default_rate = (uint32_t) sb_config_int (config, "default-rate");
    settings.default_burst = (uint32_t) sb_config_int (config, "default-burst");
    settings.default_in_flight = (uint32_t) sb_config_int (config, "default-in-flight");
    settings.default_weight = (uint32_t) sb_config_int (config, "default-weight");
    if (settings.default_rate > 0 && settings.default_burst < 1) {
        fprintf (stderr, "sb-broker: --default-burst must be at least 1 when --default-rate "
                 "is set (got rate %u, burst 0)\n", settings.default_rate);
        sb_config_destroy (&config);
        return 2;
    }
    size_t service_len = strlen (settings.quota_service);
    if (service_len < 1 || service_len > SB_MAX_SERVICE_LEN) {
        fprintf (stderr, "sb-broker: --quota-service must be 1..%d bytes\n", SB_MAX_SERVICE_LEN);
        sb_config_destroy (&config);
        return 2;
    }

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
