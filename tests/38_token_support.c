/*  tests/38_token_support.c — the fixture 38_workers_conn_keys and
    38_workers_admin_webhooks share (38_token_support.h). */
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_token_support.h"
#include "sb_attr.h"
#include "sb_conn.h"
#include "sb_harness.h"
#include "sb_http_payload.h"

tk_proc_t tk_a, tk_in;
sb_token_role_t *tk_in_role;
char tk_prefix [32];
char *tk_conninfo;
PGconn *tk_pg;
char tk_dir [64];

static char s_tag [8];              /* names this run's files: "ck", "wha" */
static sb_worker_t *s_in_worker;
static pthread_t s_in_thread;
static int s_seq;

//  ---------------------------------------------------------------------
//  Rows

PGresult *
tk_sql (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    const char *params [] = { p1, p2, p3 };
    PGresult *res = PQexecParams (tk_pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType rc = PQresultStatus (res);
    if (rc != PGRES_COMMAND_OK && rc != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    return res;
}

//  The first value of `sql` as a new string ("" for NULL).
char *
tk_value (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    PGresult *res = tk_sql (sql, n, p1, p2, p3);
    if (PQntuples (res) != 1)
        fail_msg ("%s: %d rows", sql, PQntuples (res));
    char *value = strdup (PQgetvalue (res, 0, 0));
    PQclear (res);
    return value;
}

long long
tk_number (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    char *text = tk_value (sql, n, p1, p2, p3);
    long long value = strtoll (text, NULL, 10);
    free (text);
    return value;
}

const char *
tk_tenant (const char *name)
{
    static char tenants [8][64];
    static int next;
    char *tenant = tenants [next++ % 8];
    snprintf (tenant, 64, "%s-%s", tk_prefix, name);
    return tenant;
}

void
tk_create_tenant (const char *id)
{
    PQclear (tk_sql ("INSERT INTO tenants (id, name) VALUES ($1, $1)", 1, id, NULL, NULL));
}


//  ---------------------------------------------------------------------
//  Jobs

void
tk_send (tk_proc_t *proc, const char *op, const char *data, char corr_id [32])
{
    snprintf (corr_id, 32, "k%d", ++s_seq);
    sb_job_t job = { .op = sb_unconst (op), .data = sb_unconst (data) };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    assert_int_equal (fake_broker_send_job (proc->broker, corr_id, TK_WAIT_MS, 0, &payload), 0);
}

char *
tk_wait (tk_proc_t *proc, const char *corr_id, sb_status_t *status)
{
    char *text = NULL;
    if (fake_broker_result (proc->broker, corr_id, TK_WAIT_MS, status, &text))
        fail_msg ("no RESULT %s", corr_id);
    return text;
}

//  Op `op` with `data` on `proc`: the result parsed (new), *status set.
json_t *
tk_op (tk_proc_t *proc, const char *op, const char *data, sb_status_t *status)
{
    char corr_id [32];
    tk_send (proc, op, data, corr_id);
    char *text = tk_wait (proc, corr_id, status);
    json_t *json = json_loads (text, 0, NULL);
    if (*status == SB_STATUS_OK && !json)
        fail_msg ("%s: not JSON: %s", op, text);
    free (text);
    return json;
}

char *
tk_admin_encode (const char *method, const char *path, const char *query, const char *body)
{
    sb_http_request_t request = {
        .method = sb_unconst (method), .path = sb_unconst (path),
        .query = sb_unconst (query? query: ""), .body = sb_unconst (body? body: ""),
        .body_len = body? strlen (body): 0, .remote = sb_unconst ("127.0.0.1")
    };
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    return data;
}

//  An admin/http answer: the status and the body (new JSON); `text` the
//  body as sent, when asked for.
json_t *
tk_admin_answer (const char *what, char *result, int *status, char **text)
{
    sb_http_response_t response = { 0 };
    const char *why = NULL;
    if (sb_http_response_decode (result, strlen (result), &response, &why))
        fail_msg ("%s: not an HTTP response (%s): %s", what, why, result);
    assert_string_equal (sb_http_response_header (&response, "content-type"), "application/json");
    json_t *json = json_loads (response.body, 0, NULL);
    if (!json_is_object (json))
        fail_msg ("%s: body is no JSON object: %s", what, response.body);
    *status = response.status;
    if (text)
        *text = strdup (response.body);
    sb_http_response_clear (&response);
    return json;
}

json_t *
tk_admin (tk_proc_t *proc, int want, const char *method, const char *path, const char *query,
         const char *body, char **text)
{
    char *data = tk_admin_encode (method, path, query, body);
    char corr_id [32];
    tk_send (proc, "admin/http", data, corr_id);
    free (data);
    sb_status_t job_status;
    char *result = tk_wait (proc, corr_id, &job_status);
    if (job_status != SB_STATUS_OK)
        fail_msg ("%s %s: job ended %s: %s", method, path, sb_status_name (job_status), result);
    int status = 0;
    json_t *json = tk_admin_answer (path, result, &status, text);
    free (result);
    if (status != want) {
        char *dump = json_dumps (json, JSON_COMPACT);
        fail_msg ("%s %s: status %d, want %d: %s", method, path, status, want, dump);
    }
    return json;
}

void
tk_refused (int want, const char *code, const char *words, const char *method, const char *path,
           const char *query, const char *body)
{
    json_t *json = tk_admin (&tk_a, want, method, path, query, body, NULL);
    const char *error = json_string_value (json_object_get (json, "error"));
    const char *message = json_string_value (json_object_get (json, "message"));
    if (!error || strcmp (error, code) != 0 || !message || (words && !strstr (message, words)))
        fail_msg ("%s %s: want %s mentioning \"%s\", got %s: %s", method, path, code,
                  words? words: "", error? error: "(none)", message? message: "(none)");
    json_decref (json);
}

const char *
tk_path (const char *format, ...)
{
    static char path [512];
    va_list args;
    va_start (args, format);
    vsnprintf (path, sizeof path, format, args);
    va_end (args);
    return path;
}

const char *
tk_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    if (!value)
        fail_msg ("no string \"%s\"", key);
    return value;
}


//  ---------------------------------------------------------------------
//  The in-process worker: test/seal {tenant, connector, column, plain |
//  repeat}, test/open {key_id, tenant, connector, column, sealed},
//  test/plain {need_id}.

static void
s_sealed (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    json_t *data = arg;
    const char *plain = json_string_value (json_object_get (data, "plain"));
    char *owned = NULL;
    size_t len = plain? strlen (plain): 0;
    if (!plain) {
        len = (size_t) json_integer_value (json_object_get (data, "repeat"));
        owned = malloc (len + 1);
        memset (owned, 'a', len);
        owned [len] = 0;
        plain = owned;
    }
    size_t sealed_len = 0;
    uint8_t *sealed = sb_conn_seal (tk_in_role, key_id, json_string_value (json_object_get (data, "tenant")),
                                    json_string_value (json_object_get (data, "connector")),
                                    json_string_value (json_object_get (data, "column")),
                                    plain, len, &sealed_len);
    char *text = sealed? sb_conn_bytea_text (sealed, sealed_len): NULL;
    json_t *result = json_pack ("{s:s, s:s?}", "key_id", key_id, "sealed", text);
    char *dump = json_dumps (result, JSON_COMPACT);
    sb_worker_job_done (job_p, SB_STATUS_OK, dump);
    free (dump);
    json_decref (result);
    free (text);
    free (sealed);
    free (owned);
    json_decref (data);
}

static void
s_opened (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    json_t *data = arg;
    size_t len = 0;
    uint8_t *sealed = sb_conn_bytea_parse (json_string_value (json_object_get (data, "sealed")), &len);
    char *plain = sealed? sb_conn_open (tk_in_role, json_string_value (json_object_get (data, "key_id")),
                                        json_string_value (json_object_get (data, "tenant")),
                                        json_string_value (json_object_get (data, "connector")),
                                        json_string_value (json_object_get (data, "column")),
                                        sealed, len): NULL;
    json_t *result = json_pack ("{s:s, s:s?}", "current", key_id, "plain", plain);
    char *dump = json_dumps (result, JSON_COMPACT);
    sb_worker_job_done (job_p, SB_STATUS_OK, dump);
    free (dump);
    json_decref (result);
    free (plain);
    free (sealed);
    json_decref (data);
}

static void
s_plain_ready (const char *key_id, const char *error, void *arg)
{
    sb_worker_job_t *job = arg;
    if (!key_id) {
        sb_worker_job_fail (&job, error);
        return;
    }
    char text [128];
    snprintf (text, sizeof text, "{\"key_id\":\"%s\"}", key_id);
    sb_worker_job_done (&job, SB_STATUS_OK, text);
}

static void
s_data_free (void *arg)
{
    json_decref (arg);
}

static void
s_in_start (void *state, sb_worker_job_t *job)
{
    const char *op = sb_worker_job_spec (job)->op;
    const char *text = sb_worker_job_spec (job)->data;
    json_t *data = text? json_loads (text, 0, NULL): NULL;
    if (strcmp (op, "test/seal") == 0)
        sb_conn_keys_ready (state, job, NULL, s_sealed, data, s_data_free);
    else
    if (strcmp (op, "test/open") == 0)
        sb_conn_keys_ready (state, job, json_string_value (json_object_get (data, "key_id")),
                            s_opened, data, s_data_free);
    else
    if (strcmp (op, "test/plain") == 0) {
        sb_conn_keys_ready_plain (state, json_string_value (json_object_get (data, "need_id")),
                                  s_plain_ready, job);
        json_decref (data);
    }
    else
    if (strcmp (op, "test/stop") == 0) {
        json_decref (data);
        sb_worker_stop (sb_worker_job_worker (job));
        sb_worker_job_done (&job, SB_STATUS_OK, "{}");
    }
    else {
        json_decref (data);
        sb_token_role.start (state, job);
    }
}

static void
s_in_abandon (void *state, sb_worker_job_t *job)
{
    sb_token_role.abandon (state, job);
}

static const sb_worker_role_t s_in_ops = { s_in_start, s_in_abandon };

static void *
s_in_run (void *arg)
{
    return (void *) (intptr_t) sb_worker_run (s_in_worker);
}


//  Opens in-process: the plain text (new) or NULL when it does not open;
//  *status not OK when the key cannot be had.
char *
tk_open (const char *key_id, const char *tenant, const char *connector, const char *column,
        const char *sealed, sb_status_t *status)
{
    json_t *data = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "key_id", key_id, "tenant", tenant,
                              "connector", connector, "column", column, "sealed", sealed);
    char *text = json_dumps (data, JSON_COMPACT);
    json_decref (data);
    json_t *result = tk_op (&tk_in, "test/open", text, status);
    free (text);
    const char *plain = json_string_value (json_object_get (result, "plain"));
    char *copy = plain? strdup (plain): NULL;
    json_decref (result);
    return copy;
}


//  ---------------------------------------------------------------------
//  Set-up and clean-up

int
tk_start (const char *tag)
{
    snprintf (s_tag, sizeof s_tag, "%s", tag);
    tk_conninfo = sb_harness_pg_conninfo ();
    if (!tk_conninfo)
        return -1;
    snprintf (tk_prefix, sizeof tk_prefix, "%s%x%04x", tag, (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    tk_pg = PQconnectdb (tk_conninfo);
    if (PQstatus (tk_pg) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (tk_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    snprintf (tk_dir, sizeof tk_dir, "/tmp/sb-38-%s-%d", tag, (int) getpid ());
    mkdir (tk_dir, 0700);
    return 0;
}

void
tk_write (const char *name, const char *text)
{
    char path [256];
    snprintf (path, sizeof path, "%s/%s", tk_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

int
tk_proc_start (tk_proc_t *proc, const char *name)
{
    proc->broker = fake_broker_new (sb_harness_free_port ());
    if (!proc->broker)
        return -1;
    snprintf (proc->log, sizeof proc->log, "/tmp/sb-38-%s-%d-%s.log", s_tag, (int) getpid (),
              name);
    char heartbeat [16], db [1024], migrations [512], connectors [128];
    snprintf (heartbeat, sizeof heartbeat, "%d", TK_HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", tk_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    snprintf (connectors, sizeof connectors, "--connectors=%s", tk_dir);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", proc->broker->endpoint,
        "--credit", "4", "--heartbeat-ms", heartbeat, "--hash-threads", "1", db, migrations,
        "--secret-key-file=" TK_SECRET_FILE, connectors, "--log-level", "debug", NULL
    };
    proc->pid = sb_harness_spawn_logged (argv, NULL, proc->log);
    if (proc->pid <= 0)
        return -1;
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (proc->broker, &msg, 30000) || msg.command != SB_CMD_READY)
        return -1;
    sb_msg_reset (&msg);
    return 0;
}

int
tk_in_start (void)
{
    tk_in.pid = -1;
    tk_in.broker = fake_broker_new (sb_harness_free_port ());
    if (!tk_in.broker)
        return -1;
    s_in_worker = sb_worker_new (tk_in.broker->endpoint, "token", 4, TK_HEARTBEAT_MS);
    if (!s_in_worker)
        return -1;
    char migrations [512];
    snprintf (migrations, sizeof migrations, "%s/db/migrations", SB_SOURCE_DIR);
    sb_token_config_t config = {
        .conninfo = tk_conninfo, .migrations_dir = migrations, .issuer = "",
        .secret_key_file = TK_SECRET_FILE, .connectors_dir = tk_dir, .hash_threads = 1
    };
    tk_in_role = sb_token_role_new (s_in_worker, &config);
    if (!tk_in_role)
        return -1;
    sb_worker_set_role (s_in_worker, &s_in_ops, tk_in_role);
    if (pthread_create (&s_in_thread, NULL, s_in_run, NULL))
        return -1;
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (tk_in.broker, &msg, 30000) || msg.command != SB_CMD_READY)
        return -1;
    sb_msg_reset (&msg);
    return 0;
}

bool
tk_proc_stop (tk_proc_t *proc, int i)
{
    bool clean = true;
    if (proc->pid > 0) {
        int wstatus = sb_harness_stop (proc->pid);
        if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != 0) {
            fprintf (stderr, "token worker %d did not exit cleanly (0x%x)\n", i, (unsigned) wstatus);
            clean = false;
        }
    }
    fake_broker_destroy (&proc->broker);
    unlink (proc->log);
    return clean;
}

int
tk_stop (const char *const *files, size_t count)
{
    if (s_in_worker && tk_in.broker && tk_in.broker->worker) {
        char corr_id [32];
        tk_send (&tk_in, "test/stop", NULL, corr_id);
        sb_status_t status;
        free (tk_wait (&tk_in, corr_id, &status));
        void *rc = NULL;
        pthread_join (s_in_thread, &rc);
    }
    sb_token_role_destroy (&tk_in_role);
    sb_worker_destroy (&s_in_worker);
    fake_broker_destroy (&tk_in.broker);
    int rc = -1;
    if (tk_pg && PQstatus (tk_pg) == CONNECTION_OK) {
        char pattern [48];
        snprintf (pattern, sizeof pattern, "%s-%%", tk_prefix);
        const char *params [] = { pattern };
        PGresult *res = PQexecParams (tk_pg, "DELETE FROM tenants WHERE id LIKE $1",
                                      1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear (res);
    }
    PQfinish (tk_pg);
    for (size_t i = 0; i < count; i++) {
        char path [256];
        snprintf (path, sizeof path, "%s/%s", tk_dir, files [i]);
        unlink (path);
    }
    rmdir (tk_dir);
    free (tk_conninfo);
    return rc;
}
