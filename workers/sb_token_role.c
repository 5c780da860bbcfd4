/*  workers/sb_token_role.c — the token role (see sb_token_role.h).

    The asynchronous connection lives on the worker's reactor
    (workers/sb_db_loop.h). A ping that the database does not answer in
    time is answered "unavailable" by the loop's guard timer; the query's
    late answer then finds no job. */
#include "sb_token_role.h"
#include "sb_clock.h"
#include "sb_db.h"
#include "sb_log.h"
#include "sb_db_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct _sb_token_role_t {
    sb_worker_t *worker;        /* our worker (borrowed) */
    sb_db_loop_t *db_loop;      /* asynchronous connection on the worker's reactor */
};

static const char s_unavailable [] = "{\"pong\":false,\"role\":\"token\",\"db\":\"unavailable\"}";

static void
s_on_ping_result (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1) {
        char *end = NULL;
        errno = 0;
        long long count = strtoll (PQgetvalue (res, 0, 0), &end, 10);
        char text [128];
        snprintf (text, sizeof text,
                  "{\"pong\":true,\"role\":\"token\",\"db\":\"ok\",\"migrations\":%lld}",
                  errno || !end || *end ? -1LL : count);
        sb_worker_job_done (job_p, SB_STATUS_OK, text);
    }
    else {
        sb_log_warn ("db_unavailable", "ping: %s", error ? error : PQresultErrorMessage (res));
        sb_worker_job_done (job_p, SB_STATUS_OK, s_unavailable);
    }
}

static void
s_on_ping_give_up (sb_worker_job_t **job_p, void *arg)
{
    sb_log_warn ("db_unavailable", "ping: no answer from the database in time");
    sb_worker_job_done (job_p, SB_STATUS_OK, s_unavailable);
}

static void
s_ping (sb_token_role_t *self, sb_worker_job_t *job)
{
    if (sb_db_loop_jobs (self->db_loop) >= SB_MAX_TOKEN_PINGS) {
        sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
        return;
    }
    int64_t left = sb_clock_left_ms (sb_worker_job_deadline (job));
    int64_t wait = left - 20 < SB_TOKEN_PING_DB_MS ? left - 20 : SB_TOKEN_PING_DB_MS;
    int rc = sb_db_loop_job_query (self->db_loop, job, sb_clock_mono_ms () + (wait > 0 ? wait : 0),
                                   "SELECT count(*) FROM schema_migrations", 0, NULL,
                                   s_on_ping_result, s_on_ping_give_up, NULL);
    if (rc == -1)
        sb_worker_job_fail (&job, "out of memory");
    else
    if (rc)
        sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
}

static void
s_start (void *state, sb_worker_job_t *job)
{
    sb_token_role_t *self = state;
    const char *op = sb_worker_job_spec (job)->op;
    if (strcmp (op, "ping") == 0)
        s_ping (self, job);
    else
        sb_worker_job_fail_unknown_op (&job);
}

static void
s_abandon (void *state, sb_worker_job_t *job)
{
    sb_token_role_t *self = state;
    sb_db_loop_job_abandon (self->db_loop, job);
}

const sb_worker_role_t sb_token_role = { s_start, s_abandon };

sb_token_role_t *
sb_token_role_new (sb_worker_t *worker, const char *conninfo, const char *migrations_dir)
{
    if (!conninfo || !*conninfo) {
        sb_log_error ("db_missing", "--db (or SB_DATABASE_URL) is required with --role token");
        return NULL;
    }
    if (sb_db_prepare (conninfo, migrations_dir, SB_TOKEN_CONNECT_TIMEOUT_MS))
        return NULL;
    sb_token_role_t *self = calloc (1, sizeof (sb_token_role_t));
    if (!self)
        return NULL;
    self->worker = worker;
    self->db_loop = sb_db_loop_new (sb_worker_reactor (worker), conninfo);
    if (!self->db_loop) {
        sb_log_error ("token_init_failed", "cannot set up the database connection");
        sb_token_role_destroy (&self);
        return NULL;
    }
    sb_log_info ("token_ready", "database migrated (%s)", migrations_dir);
    return self;
}

void
sb_token_role_destroy (sb_token_role_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_token_role_t *self = *self_p;
    sb_db_loop_destroy (&self->db_loop);    //  jobs still waiting stay the worker's
    free (self);
    *self_p = NULL;
}
