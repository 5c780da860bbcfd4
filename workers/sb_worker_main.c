/*  workers/sb_worker_main.c — sb-worker: one executable, four roles.

        sb-worker --role api|token|task|webhook --broker tcp://127.0.0.1:5556 …

    Reads the configuration, builds the worker core and the chosen role,
    runs the loop until SIGTERM/SIGINT has drained it, exits 0. Exit 2 on a
    configuration error, 1 when start-up fails. SIGHUP reloads the api
    role's connectors folder (sb_api_reload); the other roles load none and
    only log it. The handler sets a flag and writes a byte to a pipe the
    loop watches, so the loop does the reload.

    The product's api role runs no builtin tools. The test worker
    sb-worker-fixtures is this same file built with SB_WORKER_BUILTINS
    naming the sb_api_builtins_t table of the conformance fixtures
    (tests/fixtures.cmake), so tests run the product's main with them. */
#include "sb_config.h"
#include "sb_log.h"
#include "sb_sched.h"
#include "sb_api.h"
#include "sb_quota_sync.h"
#include "sb_task_role.h"
#include "sb_token_role.h"
#include "sb_webhook_role.h"
#include "sb_wh_deliver.h"
#include "sb_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SB_DEFAULT_CONNECTORS_DIR
#define SB_DEFAULT_CONNECTORS_DIR "connectors"
#endif
#ifndef SB_DEFAULT_MIGRATIONS_DIR
#define SB_DEFAULT_MIGRATIONS_DIR "db/migrations"
#endif
#ifdef SB_WORKER_BUILTINS
extern const sb_api_builtins_t SB_WORKER_BUILTINS;
#define S_BUILTINS (&SB_WORKER_BUILTINS)
#else
#define S_BUILTINS NULL         /* the product: no builtin tools */
#endif

static const sb_option_t s_options [] = {
    { "role", SB_OPT_STR, "api", 0, 0, "SB_WORKER_ROLE",
      "what this worker does: api, token, task or webhook" },
    { "broker", SB_OPT_STR, "tcp://127.0.0.1:5556", 0, 0, "SB_WORKER_BROKER",
      "the broker's backend endpoint" },
    { "credit", SB_OPT_INT, "64", 1, SB_MAX_CREDIT, "SB_WORKER_CREDIT",
      "jobs this worker holds at once" },
    { "heartbeat-ms", SB_OPT_INT, "1000", SB_MIN_HEARTBEAT_MS, SB_MAX_HEARTBEAT_MS,
      "SB_WORKER_HEARTBEAT_MS",
      "heartbeat interval; the broker is presumed gone after 3 silent intervals" },
    { "connectors", SB_OPT_STR, SB_DEFAULT_CONNECTORS_DIR, 0, 0, "SB_CONNECTORS_DIR",
      "folder of connector definitions, or folders separated by ':' (api and token roles)" },
    { "connector-urls", SB_OPT_STR, "", 0, 0, "SB_CONNECTOR_URLS",
      "base-URL overrides, \"name=url,name2=url2\" (api and token roles)" },
    { "task-promote-ms", SB_OPT_INT, "1000", 1, SB_MAX_TASK_PROMOTE_MS, "SB_TASK_PROMOTE_MS",
      "api role: promote a call of a task-capable connector tool to a task when its upstream request runs longer than this" },
    { "db", SB_OPT_STR, "", 0, 0, "SB_DATABASE_URL",
      "PostgreSQL conninfo (token, task and webhook roles)" },
    { "migrations", SB_OPT_STR, SB_DEFAULT_MIGRATIONS_DIR, 0, 0, "SB_MIGRATIONS_DIR",
      "folder of numbered SQL migrations (token, task and webhook roles)" },
    { "issuer", SB_OPT_STR, "", 0, 0, "SB_ISSUER",
      "token role: the authorization server's URL, the gateways' --public-url (https; http only on loopback); empty: OAuth jobs are refused" },
    { "secret-key-file", SB_OPT_STR, "", 0, 0, "SB_SECRET_KEY_FILE",
      "token and webhook roles: file whose first line (32-64 bytes) is the master secret that seals signing keys, connection keys and CSRF tokens (the webhook role opens webhook secrets with it); without it, SB_SECRET_KEY may hold the secret itself" },
    { "hash-threads", SB_OPT_INT, "1", 1, SB_MAX_TOKEN_HASH_THREADS, "SB_HASH_THREADS",
      "token role: threads that run Argon2id password hashing off the event loop" },
    { "cimd-allow-hosts", SB_OPT_STR, "", 0, 0, "SB_CIMD_ALLOW_HOSTS",
      "token role, FOR TESTS ONLY: comma-separated IP addresses that Client ID Metadata Document fetches may connect to although the SSRF guard refuses them (loopback, private…)" },
    { "cimd-ca-file", SB_OPT_STR, "", 0, 0, "SB_CIMD_CA_FILE",
      "token role: PEM CA bundle that verifies Client ID Metadata Document servers instead of the system's (tests, private CAs)" },
    { "refresh-window-s", SB_OPT_INT, "300", 1, SB_MAX_REFRESH_WINDOW_S, "SB_REFRESH_WINDOW_S",
      "token role: the refresh sweep renews tenants' OAuth connections whose access token ends within this many seconds" },
    { "refresh-sweep-ms", SB_OPT_INT, "5000", 0, SB_MAX_REFRESH_SWEEP_MS, "SB_REFRESH_SWEEP_MS",
      "token role: how often the refresh sweep runs (0: never; connections are then refreshed only when a call needs them)" },
    { "limits-poll-ms", SB_OPT_INT, "1000", SB_MIN_LIMITS_POLL_MS, SB_MAX_LIMITS_POLL_MS,
      "SB_LIMITS_POLL_MS",
      "token role: how often the quota service looks for changed plans and tenants and pushes them to the broker (LIMITS)" },
    { "webhook-batch-max", SB_OPT_INT, "256", 1, SB_WH_MAX_BATCH_MAX, "SB_WEBHOOK_BATCH_MAX",
      "webhook role: events one statement commits at most (group commit: requests verified while a commit runs wait for the next one); 1: every request is committed alone" },
    { "webhook-deliver-max", SB_OPT_INT, "64", 0, SB_WH_DELIVER_MAX, "SB_WEBHOOK_DELIVER_MAX",
      "webhook role: deliveries out (to tenants' subscriptions) this worker holds at once, claimed from PostgreSQL; 0: this worker delivers nothing" },
    { "webhook-retry-schedule", SB_OPT_STR, SB_WH_DELIVER_SCHEDULE, 0, 0, "SB_WEBHOOK_RETRY_SCHEDULE",
      "webhook role: a delivery's attempts, as seconds to wait before each, comma-separated: the first 0 (at once), each next one after a failed attempt, ±20% jitter; after the last attempt the delivery is a dead letter" },
    { "webhook-delivery-timeout-ms", SB_OPT_INT, "10000", 1, SB_WH_DELIVER_MAX_TIMEOUT_MS,
      "SB_WEBHOOK_DELIVERY_TIMEOUT_MS",
      "webhook role: one delivery attempt, connect to the last byte of the answer, at most" },
    { "webhook-disable-after-s", SB_OPT_INT, "432000", 1, SB_WH_DELIVER_MAX_DISABLE_S,
      "SB_WEBHOOK_DISABLE_AFTER_S",
      "webhook role: a subscription whose deliveries all fail for longer than this is disabled (its pending deliveries become dead letters, its tenant's audit log says so)" },
    { "webhook-allow-hosts", SB_OPT_STR, "", 0, 0, "SB_WEBHOOK_ALLOW_HOSTS",
      "webhook role, FOR TESTS ONLY: comma-separated IP addresses that deliveries may connect to although the SSRF guard refuses them (loopback, private…)" },
    { "log-level", SB_OPT_STR, "info", 0, 0, "SB_LOG_LEVEL",
      "debug, info, warn or error" },
    SB_CPU_POLICY_OPTION,
    { .name = NULL }
};

static volatile sig_atomic_t s_hangup;     /* SIGHUP seen, reload not done yet */
static int s_wake [2] = { -1, -1 };         /* self-pipe: the handler writes, the loop reads */

static void
s_on_hangup (int signum)
{
    int saved = errno;
    s_hangup = 1;
    if (s_wake [1] >= 0 && write (s_wake [1], "h", 1) < 0) {
        //  Full pipe: a wake-up is already pending.
    }
    errno = saved;
}

//  The pipe is readable: drain it and do the reload the flag asks for.
static void
s_on_wake (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    char drain [64];
    while (read (fd, drain, sizeof drain) > 0)
        ;
    if (!s_hangup)
        return;
    s_hangup = 0;
    sb_api_t *api = arg;
    if (api)
        sb_api_reload (api);            //  logs connectors_reloaded or connectors_reload_failed
    else
        sb_log_info ("reload_ignored", "SIGHUP: this role loads no connectors");
}

//  SIGHUP sets the flag and wakes the pipe from now on (installed before
//  start-up work, so an early SIGHUP never kills the process). Returns 0
//  or -1.
static int
s_handle_hangup (void)
{
    if (pipe2 (s_wake, O_NONBLOCK | O_CLOEXEC))
        return -1;
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_hangup;
    action.sa_flags = SA_RESTART;
    sigemptyset (&action.sa_mask);
    return sigaction (SIGHUP, &action, NULL);
}

int
main (int argc, char **argv)
{
    int exit_code = 1;
    sb_api_t *api = NULL;
    sb_token_role_t *token = NULL;
    sb_task_role_t *task = NULL;
    sb_webhook_role_t *webhook = NULL;
    sb_worker_t *worker = NULL;
    sb_config_t *config = sb_config_new ("sb-worker", s_options);
    if (!config)
        return 1;
    int rc = sb_config_load (config, argc, argv);
    if (rc) {
        sb_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    sb_log_level_t level;
    if (sb_log_level_parse (sb_config_str (config, "log-level"), &level)) {
        fprintf (stderr, "sb-worker: unknown --log-level \"%s\"\n", sb_config_str (config, "log-level"));
        sb_config_destroy (&config);
        return 2;
    }
    const char *role = sb_config_str (config, "role");
    char proc [48];
    snprintf (proc, sizeof proc, "worker-%.32s", role);
    sb_log_init (proc, level);
    if (sb_sched_apply (sb_config_str (config, "cpu-policy"))) {
        sb_config_destroy (&config);
        return 2;
    }
    if (strcmp (role, "api") && strcmp (role, "token") && strcmp (role, "task")
    &&  strcmp (role, "webhook")) {
        fprintf (stderr, "sb-worker: --role must be api, token, task or webhook, not \"%s\"\n", role);
        sb_config_destroy (&config);
        return 2;
    }
    sb_worker_handle_signals ();
    if (s_handle_hangup ()) {
        sb_log_error ("start_failed", "cannot handle SIGHUP: %s", strerror (errno));
        goto out;
    }
    worker = sb_worker_new (sb_config_str (config, "broker"), role,
                            (uint32_t) sb_config_int (config, "credit"),
                            (uint32_t) sb_config_int (config, "heartbeat-ms"));
    if (!worker) {
        sb_log_error ("start_failed", "cannot create the worker");
        goto out;
    }
    if (strcmp (role, "api") == 0) {
        api = sb_api_new (worker, sb_config_str (config, "connectors"),
                          sb_config_str (config, "connector-urls"), S_BUILTINS);
        if (!api || sb_api_set_task_promote_ms (api, (uint32_t) sb_config_int (config, "task-promote-ms")))
            goto out;
        sb_worker_set_role (worker, &sb_api_role, api);
    }
    else
    if (strcmp (role, "token") == 0) {
        sb_token_config_t token_config = {
            .conninfo = sb_config_str (config, "db"),
            .migrations_dir = sb_config_str (config, "migrations"),
            .issuer = sb_config_str (config, "issuer"),
            .secret_key_file = sb_config_str (config, "secret-key-file"),
            .hash_threads = (int) sb_config_int (config, "hash-threads"),
            .cimd_allow_hosts = sb_config_str (config, "cimd-allow-hosts"),
            .cimd_ca_file = sb_config_str (config, "cimd-ca-file"),
            .connectors_dir = sb_config_str (config, "connectors"),
            .connector_urls = sb_config_str (config, "connector-urls"),
            .refresh_window_s = (int) sb_config_int (config, "refresh-window-s"),
            .refresh_sweep_ms = (int) sb_config_int (config, "refresh-sweep-ms"),
            .limits_poll_ms = (int) sb_config_int (config, "limits-poll-ms"),
        };
        token = sb_token_role_new (worker, &token_config);
        if (!token)
            goto out;
        sb_worker_set_role (worker, &sb_token_role, token);
    }
    else
    if (strcmp (role, "task") == 0) {
        task = sb_task_role_new (worker, sb_config_str (config, "db"),
                                 sb_config_str (config, "migrations"));
        if (!task)
            goto out;
        sb_worker_set_role (worker, &sb_task_role, task);
    }
    else {
        sb_webhook_config_t webhook_config = {
            .conninfo = sb_config_str (config, "db"),
            .migrations_dir = sb_config_str (config, "migrations"),
            .secret_key_file = sb_config_str (config, "secret-key-file"),
            .batch_max = (int) sb_config_int (config, "webhook-batch-max"),
            .deliver_max = (int) sb_config_int (config, "webhook-deliver-max"),
            .retry_schedule = sb_config_str (config, "webhook-retry-schedule"),
            .delivery_timeout_ms = (int) sb_config_int (config, "webhook-delivery-timeout-ms"),
            .disable_after_s = (int) sb_config_int (config, "webhook-disable-after-s"),
            .allow_hosts = sb_config_str (config, "webhook-allow-hosts"),
        };
        webhook = sb_webhook_role_new (worker, &webhook_config);
        if (!webhook)
            goto out;
        sb_worker_set_role (worker, &sb_webhook_role, webhook);
    }
    //  A SIGHUP that came during start-up is waiting in the pipe.
    if (sb_reactor_watch_fd (sb_worker_reactor (worker), s_wake [0], ZMQ_POLLIN, s_on_wake, api)) {
        sb_log_error ("start_failed", "cannot watch the SIGHUP pipe");
        goto out;
    }

    rc = sb_worker_run (worker);
    if (rc == 0)
        exit_code = 0;
out:
    //  Roles first: their fds and timers live on the worker's reactor
    sb_api_destroy (&api);
    sb_token_role_destroy (&token);
    sb_task_role_destroy (&task);
    sb_webhook_role_destroy (&webhook);
    sb_worker_destroy (&worker);
    for (int i = 0; i < 2; i++)
        if (s_wake [i] >= 0)
            close (s_wake [i]);
    sb_config_destroy (&config);
    return exit_code;
}
