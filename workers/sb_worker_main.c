/*  workers/sb_worker_main.c — sb-worker: one executable, three roles.

        sb-worker --role api|token|webhook --broker tcp://127.0.0.1:5556 …

    Reads the configuration, builds the worker core and the chosen role,
    runs the loop until SIGTERM/SIGINT has drained it, exits 0. Exit 2 on a
    configuration error, 1 when start-up fails. */
#include "common/sb_config.h"
#include "common/sb_log.h"
#include "workers/sb_api.h"
#include "workers/sb_token_role.h"
#include "workers/sb_webhook_role.h"
#include "workers/sb_worker.h"

#include <stdlib.h>
#include <string.h>

#ifndef SB_DEFAULT_CONNECTORS_DIR
#define SB_DEFAULT_CONNECTORS_DIR "connectors"
#endif
#ifndef SB_DEFAULT_MIGRATIONS_DIR
#define SB_DEFAULT_MIGRATIONS_DIR "common/migrations"
#endif

static const sb_option_t s_options [] = {
    { "role", SB_OPT_STR, "api", 0, 0, "SB_WORKER_ROLE",
      "what this worker does: api, token or webhook" },
    { "broker", SB_OPT_STR, "tcp://127.0.0.1:5556", 0, 0, "SB_WORKER_BROKER",
      "the broker's backend endpoint" },
    { "credit", SB_OPT_INT, "64", 1, SB_MAX_CREDIT, "SB_WORKER_CREDIT",
      "jobs this worker holds at once" },
    { "heartbeat-ms", SB_OPT_INT, "1000", 50, 60000, "SB_WORKER_HEARTBEAT_MS",
      "heartbeat interval; the broker is presumed gone after 3 silent intervals" },
    { "connectors", SB_OPT_STR, SB_DEFAULT_CONNECTORS_DIR, 0, 0, "SB_CONNECTORS_DIR",
      "folder of connector definitions (api role)" },
    { "connector-urls", SB_OPT_STR, "", 0, 0, "SB_CONNECTOR_URLS",
      "base-URL overrides, \"name=url,name2=url2\" (api role)" },
    { "db", SB_OPT_STR, "", 0, 0, "SB_DATABASE_URL",
      "PostgreSQL conninfo (token role)" },
    { "migrations", SB_OPT_STR, SB_DEFAULT_MIGRATIONS_DIR, 0, 0, "SB_MIGRATIONS_DIR",
      "folder of numbered SQL migrations (token role)" },
    { "log-level", SB_OPT_STR, "info", 0, 0, "SB_LOG_LEVEL",
      "debug, info, warn or error" },
    { NULL }
};

int
main (int argc, char **argv)
{
    int exit_code = 1;
    sb_api_t *api = NULL;
    sb_token_role_t *token = NULL;
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
    if (strcmp (role, "api") && strcmp (role, "token") && strcmp (role, "webhook")) {
        fprintf (stderr, "sb-worker: --role must be api, token or webhook, not \"%s\"\n", role);
        sb_config_destroy (&config);
        return 2;
    }
    sb_worker_handle_signals ();
    worker = sb_worker_new (sb_config_str (config, "broker"), role,
                            (uint32_t) sb_config_int (config, "credit"),
                            (uint32_t) sb_config_int (config, "heartbeat-ms"));
    if (!worker) {
        sb_log_error ("start_failed", "cannot create the worker");
        goto out;
    }
    if (strcmp (role, "api") == 0) {
        api = sb_api_new (worker, sb_config_str (config, "connectors"),
                          sb_config_str (config, "connector-urls"));
        if (!api)
            goto out;
        sb_worker_set_role (worker, &sb_api_role, api);
    }
    else
    if (strcmp (role, "token") == 0) {
        token = sb_token_role_new (worker, sb_config_str (config, "db"),
                                   sb_config_str (config, "migrations"));
        if (!token)
            goto out;
        sb_worker_set_role (worker, &sb_token_role, token);
    }
    else
        sb_worker_set_role (worker, &sb_webhook_role, NULL);

    rc = sb_worker_run (worker);
    if (rc == 0)
        exit_code = 0;
out:
    //  Roles first: their fds and timers live on the worker's reactor
    sb_api_destroy (&api);
    sb_token_role_destroy (&token);
    sb_worker_destroy (&worker);
    sb_config_destroy (&config);
    return exit_code;
}
