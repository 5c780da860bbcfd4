/*  tests/sb_farm.c — starts and stops a whole farm for end-to-end tests.
    See sb_farm.h. Every failure to come up fails the test at once with a
    message naming the part, rather than leaving a later check to time out. */
#include "sb_farm.h"
#include "sb_harness.h"

#include <assert.h>
#include <jansson.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SB_FARM_SANDBOX_KEY "sandbox-key"   /* the sandbox's default API key */

static void
s_fail (const char *what)
{
    fprintf (stderr, "sb_farm: %s\n", what);
    abort ();
}

static void
s_write_key (sb_farm_t *farm)
{
    char dir [] = "/tmp/sb-farm-XXXXXX";
    if (!mkdtemp (dir))
        s_fail ("cannot make a temporary folder");
    snprintf (farm->key_file, sizeof farm->key_file, "%s/token.key", dir);
    FILE *urandom = fopen ("/dev/urandom", "rb");
    FILE *key = fopen (farm->key_file, "w");
    if (!urandom || !key)
        s_fail ("cannot write the token key");
    for (int i = 0; i < 32; i++)
        fprintf (key, "%02x", (unsigned) fgetc (urandom) & 0xff);
    fprintf (key, "\n");
    fclose (key);
    fclose (urandom);
    snprintf (farm->session_key_file, sizeof farm->session_key_file, "%s/session.key", dir);
    if (sb_harness_write_key (farm->session_key_file))
        s_fail ("cannot write the session key");
    snprintf (farm->secret_key_file, sizeof farm->secret_key_file, "%s/secret.key", dir);
    if (sb_harness_write_key (farm->secret_key_file))
        s_fail ("cannot write the master secret");
}

int
sb_farm_mint (sb_farm_t *farm, const char *tenant, const char *subject, char *token, size_t size)
{
    char command [1024];
    snprintf (command, sizeof command,
              "%s --key-file %s --tenant %s --subject %s --client-id e2e-tests "
              "--audience %s/mcp --ttl 3600",
              sb_harness_bin ("sb-token"), farm->key_file, tenant, subject, farm->gateway_url);
    FILE *pipe = popen (command, "r");
    if (!pipe)
        return -1;
    if (!fgets (token, (int) size, pipe))
        *token = 0;
    token [strcspn (token, "\r\n")] = 0;
    return pclose (pipe) == 0 && strlen (token) >= 20? 0: -1;
}

static void
s_mint_token (sb_farm_t *farm)
{
    if (sb_farm_mint (farm, "demo", "e2e", farm->token, sizeof farm->token))
        s_fail ("sb-token printed no token");
}

static pid_t
s_start_worker (sb_farm_t *farm, const char *role)
{
    char connector_urls [128], credit [16];
    snprintf (connector_urls, sizeof connector_urls, "sandbox-crm=%s", farm->sandbox_url);
    snprintf (credit, sizeof credit, "%d", farm->opts.api_credit > 0 ? farm->opts.api_credit : 16);
    //  The webhook worker stores events in PostgreSQL when the farm has it
    //  (the token worker's farm), and opens the endpoints' secrets with the
    //  token worker's master secret.
    bool webhook = strcmp (role, "webhook") == 0;
    bool with_db = strcmp (role, "token") == 0 || strcmp (role, "task") == 0
                || (webhook && !farm->opts.no_token_worker);
    bool with_secret = with_db && strcmp (role, "task") != 0;
    char *conninfo = with_db ? sb_harness_pg_conninfo () : NULL;
    if (with_db && !conninfo)
        s_fail ("no test PostgreSQL: the pg_start fixture did not run");
    //  The api workers run the conformance fixtures too: the test worker.
    bool api = strcmp (role, "api") == 0;
    const char *argv [] = {
        sb_harness_bin (api ? "sb-worker-fixtures" : "sb-worker"), "--role", role,
        "--broker", farm->backend, "--credit", credit, "--heartbeat-ms", "500",
        "--connectors", SB_TEST_CONNECTORS, "--connector-urls", connector_urls,
        "--db", conninfo ? conninfo : "",
        with_secret ? "--secret-key-file" : NULL, farm->secret_key_file, NULL
    };
    const char *env [] = { "SB_SANDBOX_CRM_TOKEN=" SB_FARM_SANDBOX_KEY, NULL };
    pid_t pid = sb_harness_spawn (argv, env);
    free (conninfo);
    if (pid < 0)
        s_fail ("cannot start sb-worker");
    return pid;
}

pid_t
sb_farm_add_api_worker (sb_farm_t *farm)
{
    if (farm->api_count >= SB_FARM_MAX_WORKERS)
        s_fail ("too many api workers");
    pid_t pid = s_start_worker (farm, "api");
    farm->api_workers [farm->api_count++] = pid;
    return pid;
}

sb_farm_t *
sb_farm_start (const sb_farm_opts_t *opts)
{
    sb_farm_t *farm = calloc (1, sizeof *farm);
    assert (farm);
    farm->opts = *opts;
    signal (SIGPIPE, SIG_IGN);

    int sandbox_port = sb_harness_free_port ();
    int gateway_port = sb_harness_free_port ();
    int frontend_port = sb_harness_free_port ();
    int backend_port = sb_harness_free_port ();
    snprintf (farm->sandbox_url, sizeof farm->sandbox_url, "http://127.0.0.1:%d", sandbox_port);
    snprintf (farm->gateway_url, sizeof farm->gateway_url, "http://127.0.0.1:%d", gateway_port);
    snprintf (farm->frontend, sizeof farm->frontend, "tcp://127.0.0.1:%d", frontend_port);
    snprintf (farm->backend, sizeof farm->backend, "tcp://127.0.0.1:%d", backend_port);
    s_write_key (farm);

    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", sandbox_port);
    const char *sandbox_argv [] = { sb_harness_bin ("sb-sandbox"), "--listen", listen,
                                    "--api-key", SB_FARM_SANDBOX_KEY, NULL };
    farm->sandbox = sb_harness_spawn (sandbox_argv, NULL);

    const char *broker_argv [] = { sb_harness_bin ("sb-broker"), "--frontend", farm->frontend,
                                   "--backend", farm->backend, NULL };
    farm->broker = sb_harness_spawn (broker_argv, NULL);

    for (int i = 0; i < opts->api_workers; i++)
        sb_farm_add_api_worker (farm);
    if (!opts->no_token_worker) {
        farm->token_worker = s_start_worker (farm, "token");
        farm->task_worker = s_start_worker (farm, "task");
    }
    farm->webhook_worker = s_start_worker (farm, "webhook");

    char timeout [16];
    snprintf (timeout, sizeof timeout, "%d", opts->call_timeout_ms > 0 ? opts->call_timeout_ms : 10000);
    snprintf (listen, sizeof listen, "127.0.0.1:%d", gateway_port);
    const char *gateway_argv [] = { sb_harness_bin ("sb-gateway"), "--listen", listen,
                                    "--broker", farm->frontend, "--token-key-file", farm->key_file,
                                    "--session-key-file", farm->session_key_file,
                                    "--public-url", farm->gateway_url,
                                    "--connectors", SB_TEST_CONNECTORS,
                                    "--call-timeout-ms", timeout, NULL };
    farm->gateway = sb_harness_spawn (gateway_argv, NULL);

    char url [128];
    snprintf (url, sizeof url, "%s/healthz", farm->sandbox_url);
    if (farm->sandbox < 0 || sb_harness_wait_http_ok (url, SB_HARNESS_WAIT_MS))
        s_fail ("sb-sandbox did not come up");
    if (farm->broker < 0 || sb_harness_wait_port (frontend_port, SB_HARNESS_WAIT_MS))
        s_fail ("sb-broker did not come up");
    snprintf (url, sizeof url, "%s/healthz", farm->gateway_url);
    if (farm->gateway < 0 || sb_harness_wait_http_ok (url, SB_HARNESS_WAIT_MS))
        s_fail ("sb-gateway did not come up");
    s_mint_token (farm);
    return farm;
}

//  Stops one process and checks it drained cleanly: exit 0 on SIGTERM. A
//  sanitizer report (leak, UB) at exit makes the status non-zero, so this
//  is what carries ASan/UBSan findings in child processes into the test.
static int
s_stop_clean (pid_t pid, const char *name)
{
    if (pid <= 0)
        return 0;
    int status = sb_harness_stop (pid);
    if (status != -1 && WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return 0;
    fprintf (stderr, "sb_farm: %s (pid %d) did not exit cleanly (status 0x%x)\n",
             name, (int) pid, (unsigned) status);
    return -1;
}

void
sb_farm_stop (sb_farm_t **farm_p)
{
    sb_farm_t *farm = *farm_p;
    if (!farm)
        return;
    //  Gateway first (no new calls), then workers, then broker and sandbox.
    int failures = 0;
    failures += s_stop_clean (farm->gateway, "sb-gateway") != 0;
    failures += s_stop_clean (farm->token_worker, "sb-worker --role token") != 0;
    failures += s_stop_clean (farm->task_worker, "sb-worker --role task") != 0;
    failures += s_stop_clean (farm->webhook_worker, "sb-worker --role webhook") != 0;
    for (int i = 0; i < farm->api_count; i++)
        failures += s_stop_clean (farm->api_workers [i], "sb-worker-fixtures --role api") != 0;
    failures += s_stop_clean (farm->broker, "sb-broker") != 0;
    failures += s_stop_clean (farm->sandbox, "sb-sandbox") != 0;
    unlink (farm->key_file);
    unlink (farm->session_key_file);
    unlink (farm->secret_key_file);
    char *slash = strrchr (farm->key_file, '/');
    if (slash) {
        *slash = 0;
        rmdir (farm->key_file);
    }
    free (farm);
    *farm_p = NULL;
    if (failures)
        s_fail ("a process of the farm did not stop cleanly");
}

int
sb_farm_mcp (sb_farm_t *farm, const char *body, long *status, char **resp)
{
    char url [128], auth [2200];
    snprintf (url, sizeof url, "%s/mcp", farm->gateway_url);
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", farm->token);
    const char *headers [] = { auth, "Content-Type: application/json",
                               "Accept: application/json, text/event-stream", NULL };
    return sb_harness_http ("POST", url, headers, body, strlen (body), 30000, status, resp);
}

void
sb_farm_sandbox_faults (sb_farm_t *farm, const char *json)
{
    char url [128];
    snprintf (url, sizeof url, "%s/_sandbox/faults", farm->sandbox_url);
    const char *headers [] = { "Content-Type: application/json", NULL };
    long status = 0;
    if (sb_harness_http ("POST", url, headers, json, strlen (json), 5000, &status, NULL)
    ||  status / 100 != 2)
        s_fail ("the sandbox refused the fault configuration");
}

char *
sb_farm_sandbox_stats (sb_farm_t *farm)
{
    char url [128];
    snprintf (url, sizeof url, "%s/_sandbox/stats", farm->sandbox_url);
    long status = 0;
    char *body = NULL;
    if (sb_harness_http ("GET", url, NULL, NULL, 0, 5000, &status, &body) || status != 200)
        s_fail ("the sandbox gave no stats");
    return body;
}

sb_farm_call_t
sb_farm_call_start (sb_farm_t *farm, const char *body)
{
    int fds [2];
    if (pipe (fds))
        s_fail ("pipe failed");
    pid_t pid = fork ();
    if (pid < 0)
        s_fail ("fork failed");
    if (pid == 0) {
        close (fds [0]);
        long status = 0;
        char *resp = NULL;
        int rc = sb_farm_mcp (farm, body, &status, &resp);
        dprintf (fds [1], "%ld\n%s", rc ? -1L : status, resp ? resp : "");
        _exit (0);
    }
    close (fds [1]);
    return (sb_farm_call_t) { .pid = pid, .fd = fds [0] };
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
sb_farm_call_finish (sb_farm_call_t *call, int timeout_ms, long *status, char **resp)
{
    size_t size = 0, cap = 4096;
    char *data = malloc (cap);
    int64_t deadline = s_now_ms () + timeout_ms;
    int rc = -1;
    while (s_now_ms () < deadline) {
        struct pollfd pfd = { .fd = call->fd, .events = POLLIN };
        if (poll (&pfd, 1, (int) (deadline - s_now_ms ())) <= 0)
            continue;
        if (size + 1024 >= cap)
            data = realloc (data, cap *= 2);
        ssize_t n = read (call->fd, data + size, cap - size - 1);
        if (n <= 0) {
            rc = 0;         //  EOF: the child wrote everything
            break;
        }
        size += (size_t) n;
    }
    data [size] = 0;
    close (call->fd);
    if (rc)
        kill (call->pid, SIGKILL);
    waitpid (call->pid, NULL, 0);
    if (rc == 0) {
        char *newline = strchr (data, '\n');
        *status = strtol (data, NULL, 10);
        *resp = strdup (newline ? newline + 1 : "");
    }
    free (data);
    return rc;
}

int
sb_farm_sandbox_wait (sb_farm_t *farm, const char *field, long value, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    while (s_now_ms () < deadline) {
        char *body = sb_farm_sandbox_stats (farm);
        json_t *stats = json_loads (body, 0, NULL);
        free (body);
        json_t *number = json_object_get (stats, field);
        bool reached = json_is_integer (number) && json_integer_value (number) >= value;
        json_decref (stats);
        if (reached)
            return 0;
        struct timespec pause = { 0, 20 * 1000000 };   //  poll interval, not a synchronisation sleep
        nanosleep (&pause, NULL);
    }
    return -1;
}
