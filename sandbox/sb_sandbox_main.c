/*  sandbox/sb_sandbox_main.c — sb-sandbox: the CRM-like SaaS API that the demo, the
    tests and the benchmark call through the sandbox-crm connector.
    A thin main: options (common/sb_config), signals, then sb_sandbox_run. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_config.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_sched.h"
#include "sb_sandbox.h"

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static const sb_option_t s_options [] = {
    { "listen", SB_OPT_STR, "127.0.0.1:8090", 0, 0, "SB_SANDBOX_LISTEN",
      "address:port to serve the sandbox CRM API on (port 0 picks a free one)" },
    { "api-key", SB_OPT_STR, "sandbox-key", 0, 0, "SB_SANDBOX_API_KEY",
      "the Bearer API key clients must send" },
    { "api-key-file", SB_OPT_STR, "", 0, 0, "SB_SANDBOX_API_KEY_FILE",
      "a file whose first line is the API key (a Compose secret); overrides --api-key" },
    { "api-key-header", SB_OPT_STR, "", 0, 0, "SB_SANDBOX_API_KEY_HEADER",
      "when set (e.g. X-API-Key), the API key is wanted bare in this header instead of "
      "as Authorization: Bearer" },
    { "oauth-client-id", SB_OPT_STR, "", 0, 0, "SB_SANDBOX_OAUTH_CLIENT_ID",
      "when set, the sandbox is also an OAuth 2 provider (/oauth/authorize, /oauth/token, "
      "/oauth/revoke) for this one client" },
    { "oauth-client-secret", SB_OPT_STR, "", 0, 0, "SB_SANDBOX_OAUTH_CLIENT_SECRET",
      "the OAuth client's secret (client_secret_basic or client_secret_post); empty: a public "
      "client" },
    { "oauth-client-secret-file", SB_OPT_STR, "", 0, 0, "SB_SANDBOX_OAUTH_CLIENT_SECRET_FILE",
      "a file whose first line is the OAuth client secret; overrides --oauth-client-secret" },
    { "oauth-access-ttl-s", SB_OPT_INT, "3600", 1, 86400, "SB_SANDBOX_OAUTH_ACCESS_TTL_S",
      "lifetime of the provider's access tokens, seconds" },
    { "oauth-refresh-grace-s", SB_OPT_INT, "0", 0, 86400, "SB_SANDBOX_OAUTH_REFRESH_GRACE_S",
      "how long a rotated-away refresh token still refreshes, seconds (its reuse after that "
      "revokes the grant)" },
    { "oauth-rotate", SB_OPT_BOOL, "yes", 0, 0, "SB_SANDBOX_OAUTH_ROTATE",
      "a new refresh token on every refresh (no: the first one stays and refresh answers "
      "carry none)" },
    { "oauth-instance-url", SB_OPT_STR, "", 0, 0, "SB_SANDBOX_OAUTH_INSTANCE_URL",
      "instance_url in token answers (empty: http://127.0.0.1:<port>)" },
    { "seed", SB_OPT_INT, "42", 0, 2147483647, "SB_SANDBOX_SEED",
      "seed of the generated data (same seed, same records)" },
    { "log-level", SB_OPT_STR, "info", 0, 0, "SB_LOG_LEVEL",
      "debug, info, warn or error" },
    SB_CPU_POLICY_OPTION,
    { .name = NULL }
};

int
main (int argc, char *argv [])
{
    sb_config_t *config = sb_config_new ("sb-sandbox", s_options);
    int rc = sb_config_load (config, argc, argv);
    if (rc) {
        sb_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    sb_log_level_t level;
    if (sb_log_level_parse (sb_config_str (config, "log-level"), &level)) {
        sb_log_init ("sandbox", SB_LOG_INFO);
        sb_log_error ("bad_option", "log-level must be debug, info, warn or error");
        sb_config_destroy (&config);
        return 2;
    }
    sb_log_init ("sandbox", level);
    if (sb_sched_apply (sb_config_str (config, "cpu-policy"))) {
        sb_config_destroy (&config);
        return 2;
    }

    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    char *key_from_file = NULL;
    char *secret_from_file = NULL;
    const char *key_file = sb_config_str (config, "api-key-file");
    if (*key_file) {
        char *why = NULL;
        key_from_file = sb_secret_read_file (key_file, &why);
        if (!key_from_file) {
            fprintf (stderr, "sb-sandbox: --api-key-file: %s\n", why);
            free (why);
            sb_config_destroy (&config);
            return 2;
        }
    }
    const char *secret_file = sb_config_str (config, "oauth-client-secret-file");
    if (*secret_file) {
        char *why = NULL;
        secret_from_file = sb_secret_read_file (secret_file, &why);
        if (!secret_from_file) {
            fprintf (stderr, "sb-sandbox: --oauth-client-secret-file: %s\n", why);
            free (why);
            sb_secret_free (&key_from_file);
            sb_config_destroy (&config);
            return 2;
        }
    }
    sb_sandbox_t *sandbox = sb_sandbox_new (sb_config_str (config, "listen"),
                                            key_from_file ? key_from_file
                                                          : sb_config_str (config, "api-key"),
                                            sb_config_str (config, "api-key-header"),
                                            (unsigned) sb_config_int (config, "seed"));
    if (sandbox && *sb_config_str (config, "oauth-client-id")) {
        sb_sandbox_oauth_config_t oauth = {
            .client_id = sb_config_str (config, "oauth-client-id"),
            .client_secret = secret_from_file ? secret_from_file
                                              : sb_config_str (config, "oauth-client-secret"),
            .access_ttl_s = sb_config_int (config, "oauth-access-ttl-s"),
            .refresh_grace_s = sb_config_int (config, "oauth-refresh-grace-s"),
            .rotate = sb_config_bool (config, "oauth-rotate"),
            .instance_url = sb_config_str (config, "oauth-instance-url")
        };
        if (sb_sandbox_enable_oauth (sandbox, &oauth))
            sb_sandbox_destroy (&sandbox);
    }
    sb_config_destroy (&config);
    sb_secret_free (&key_from_file);
    sb_secret_free (&secret_from_file);
    if (!sandbox)
        return 1;
    rc = sb_sandbox_run (sandbox, &s_stop);
    sb_sandbox_destroy (&sandbox);
    return rc ? 1 : 0;
}
