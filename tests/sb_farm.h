/*  tests/sb_farm.h — a whole farm for end-to-end tests: the sandbox SaaS,
    the broker, api/token/task/webhook workers and a gateway, each a real process
    on 127.0.0.1 with free ports, plus a signed token for tenant "demo". The
    token and webhook workers share a master secret (--secret-key-file) and,
    unless no_token_worker, PostgreSQL (the ctest fixture). The
    gateway and the api workers load the product's connectors and the
    conformance fixtures (SB_TEST_CONNECTORS); the api workers are the test
    worker sb-worker-fixtures, which runs the fixtures' builtin tools.

        sb_farm_t *farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1 });
        long status; char *body;
        sb_farm_mcp (farm, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &status, &body);
        sb_farm_stop (&farm);

    Processes are stopped by PID; PostgreSQL comes from the ctest fixture. */
#ifndef SB_FARM_H_INCLUDED
#define SB_FARM_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>

#define SB_FARM_MAX_WORKERS 8   /* api workers one farm may run */

typedef struct {
    int api_workers;            /* api workers to start (0 allowed) */
    int api_credit;             /* credit of each api worker (0: default) */
    int call_timeout_ms;        /* gateway --call-timeout-ms (0: default) */
    bool no_token_worker;       /* skip the token and task workers (and PostgreSQL) */
} sb_farm_opts_t;

typedef struct {
    pid_t sandbox;                          /* sb-sandbox */
    pid_t broker;                           /* sb-broker */
    pid_t gateway;                          /* sb-gateway */
    pid_t token_worker;                     /* sb-worker --role token */
    pid_t task_worker;                      /* sb-worker --role task */
    pid_t webhook_worker;                   /* sb-worker --role webhook */
    pid_t api_workers [SB_FARM_MAX_WORKERS];/* sb-worker-fixtures --role api */
    int api_count;                          /* entries used above */
    char sandbox_url [64];                  /* http://127.0.0.1:P */
    char gateway_url [64];                  /* http://127.0.0.1:P */
    char frontend [64];                     /* tcp://127.0.0.1:P (gateways) */
    char backend [64];                      /* tcp://127.0.0.1:P (workers) */
    char key_file [256];                    /* token signing key */
    char session_key_file [256];            /* session key, shared by the farm's gateways */
    char secret_key_file [256];             /* master secret of the token and webhook workers */
    char token [2048];                      /* bearer token for tenant demo */
    sb_farm_opts_t opts;                    /* what was asked */
} sb_farm_t;

/*  Starts a farm; asserts (fails the test) if any part does not come up. */
sb_farm_t *sb_farm_start (const sb_farm_opts_t *opts);

/*  Stops every process by PID (SIGTERM) and frees the farm; fails the test
    unless each exits 0 (so sanitizer reports at exit are caught). Idempotent. */
void sb_farm_stop (sb_farm_t **farm_p);

/*  Mints a bearer token for `tenant` and `subject` (the user) that the
    farm's gateway accepts, into `token` (`size` bytes). Returns 0, or -1
    when sb-token failed. */
int sb_farm_mint (sb_farm_t *farm, const char *tenant, const char *subject, char *token, size_t size);

/*  Starts one more api worker; returns its PID. */
pid_t sb_farm_add_api_worker (sb_farm_t *farm);

/*  POSTs a JSON-RPC body to the gateway's /mcp with the farm's token. */
int sb_farm_mcp (sb_farm_t *farm, const char *body, long *status, char **resp);

/*  Configures sandbox faults (JSON body for POST /_sandbox/faults). */
void sb_farm_sandbox_faults (sb_farm_t *farm, const char *json);

/*  GET /_sandbox/stats as parsed JSON text (caller frees). */
char *sb_farm_sandbox_stats (sb_farm_t *farm);

/*  A call in flight in a child process, so a test can act (kill a worker)
    while it waits. */
typedef struct {
    pid_t pid;      /* child doing the HTTP call */
    int fd;         /* read end: status line then body */
} sb_farm_call_t;

/*  Starts POST /mcp with `body` in a child process. */
sb_farm_call_t sb_farm_call_start (sb_farm_t *farm, const char *body);

/*  Waits up to timeout_ms for the call; returns 0 with *status and *resp
    (new) filled, or -1 if it did not finish in time (child is killed). */
int sb_farm_call_finish (sb_farm_call_t *call, int timeout_ms, long *status, char **resp);

/*  Polls GET /_sandbox/stats until its integer field `field` is >= value.
    Returns 0, or -1 after timeout_ms. */
int sb_farm_sandbox_wait (sb_farm_t *farm, const char *field, long value, int timeout_ms);

#endif
