/*  workers/sb_token_role.c — the token role (see sb_token_role.h).

    The asynchronous sb_db_t lives on the worker's reactor: its socket is
    watched for what libpq wants, and a timer covers sb_db_timeout_ms. After
    every call into sb_db the registration is brought up to date, because
    the socket changes when the connection is re-established.

    A ping's context outlives its job when the database is slow: the guard
    timer answers the job "unavailable" and detaches it; the context is
    freed when sb_db finally calls back (it always does, once). */
#include "workers/sb_token_role.h"
#include "common/sb_clock.h"
#include "common/sb_db.h"
#include "common/sb_log.h"

#include <czmq.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sb_token_role_t *role;      /* owner */
    sb_worker_job_t *job;       /* job to answer, NULL once answered or abandoned */
    void *handle;               /* item in role->pings while job is set */
    int64_t give_up_ms;         /* answer "unavailable" at this monotonic time */
} s_ping_t;

struct _sb_token_role_t {
    sb_worker_t *worker;        /* our worker (borrowed) */
    sb_reactor_t *reactor;      /* its loop (borrowed) */
    sb_db_t *db;                /* asynchronous connection */
    int db_fd;                  /* fd currently watched, -1: none */
    int db_timer;               /* reactor timer for sb_db_timeout_ms */
    int guard_timer;            /* reactor timer for the nearest ping give-up */
    zlistx_t *pings;            /* s_ping_t waiting for the database (not owned) */
};

static const char s_unavailable [] = "{\"pong\":false,\"role\":\"token\",\"db\":\"unavailable\"}";

static void s_db_sync (sb_token_role_t *self);

static void
s_on_db_fd (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    sb_token_role_t *self = arg;
    sb_db_process (self->db);
    s_db_sync (self);
}

static void
s_on_db_timer (sb_reactor_t *reactor, void *arg)
{
    sb_token_role_t *self = arg;
    sb_db_process (self->db);
    s_db_sync (self);
}

//  Brings the reactor's view of the database socket and timer up to date.
static void
s_db_sync (sb_token_role_t *self)
{
    int fd = sb_db_fd (self->db);
    //  sb_db speaks poll(2) bits; zmq_poll wants ZMQ_POLL* (POLLOUT is 4, ZMQ_POLLOUT 2)
    short db_wants = fd >= 0 ? sb_db_wants (self->db) : 0;
    short wants = (db_wants & (POLLIN | ZMQ_POLLIN) ? ZMQ_POLLIN : 0)
                | (db_wants & (POLLOUT | ZMQ_POLLOUT) ? ZMQ_POLLOUT : 0);
    if (self->db_fd >= 0 && (self->db_fd != fd || !wants)) {
        sb_reactor_unwatch_fd (self->reactor, self->db_fd);
        self->db_fd = -1;
    }
    if (fd >= 0 && wants) {
        if (sb_reactor_watch_fd (self->reactor, fd, wants, s_on_db_fd, self) == 0)
            self->db_fd = fd;
        else
            sb_log_error ("reactor_full", "cannot watch the database socket");
    }
    int timeout = sb_db_timeout_ms (self->db);
    sb_reactor_timer_set (self->reactor, self->db_timer,
                          timeout < 0 ? -1 : sb_clock_mono_ms () + timeout);
}

static void
s_arm_guard (sb_token_role_t *self)
{
    int64_t due = -1;
    for (s_ping_t *ping = zlistx_first (self->pings); ping; ping = zlistx_next (self->pings))
        if (due < 0 || ping->give_up_ms < due)
            due = ping->give_up_ms;
    sb_reactor_timer_set (self->reactor, self->guard_timer, due);
}

//  Detaches the ping from its job (the job is answered or gone).
static sb_worker_job_t *
s_ping_detach (s_ping_t *ping)
{
    sb_worker_job_t *job = ping->job;
    if (job) {
        sb_worker_job_set_data (job, NULL);
        ping->job = NULL;
    }
    if (ping->handle) {
        zlistx_delete (ping->role->pings, ping->handle);
        ping->handle = NULL;
    }
    return job;
}

static void
s_on_ping_result (const PGresult *res, const char *error, void *arg)
{
    s_ping_t *ping = arg;
    sb_worker_job_t *job = s_ping_detach (ping);
    if (job) {
        if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1) {
            char *end = NULL;
            errno = 0;
            long long count = strtoll (PQgetvalue (res, 0, 0), &end, 10);
            char text [128];
            snprintf (text, sizeof text,
                      "{\"pong\":true,\"role\":\"token\",\"db\":\"ok\",\"migrations\":%lld}",
                      errno || !end || *end ? -1LL : count);
            sb_worker_job_done (&job, SB_STATUS_OK, text);
        }
        else {
            sb_log_warn ("db_unavailable", "ping: %s", error ? error : PQresultErrorMessage (res));
            sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
        }
    }
    free (ping);
}

static void
s_on_guard_timer (sb_reactor_t *reactor, void *arg)
{
    sb_token_role_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    s_ping_t *ping = zlistx_first (self->pings);
    while (ping) {
        s_ping_t *next = zlistx_next (self->pings);
        if (ping->give_up_ms <= now) {
            sb_worker_job_t *job = s_ping_detach (ping);       // ping freed by its callback
            sb_log_warn ("db_unavailable", "ping: no answer from the database in time");
            sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
        }
        ping = next;
    }
    s_arm_guard (self);
}

static void
s_ping (sb_token_role_t *self, sb_worker_job_t *job)
{
    if (zlistx_size (self->pings) >= SB_MAX_TOKEN_PINGS) {
        sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
        return;
    }
    s_ping_t *ping = calloc (1, sizeof (s_ping_t));
    if (!ping) {
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    ping->role = self;
    ping->job = job;
    int64_t left = sb_clock_left_ms (sb_worker_job_deadline (job));
    int64_t wait = left - 20 < SB_TOKEN_PING_DB_MS ? left - 20 : SB_TOKEN_PING_DB_MS;
    ping->give_up_ms = sb_clock_mono_ms () + (wait > 0 ? wait : 0);
    if (sb_db_query (self->db, "SELECT count(*) FROM schema_migrations", 0, NULL,
                     s_on_ping_result, ping)) {
        free (ping);
        sb_worker_job_done (&job, SB_STATUS_OK, s_unavailable);
        return;
    }
    ping->handle = zlistx_add_end (self->pings, ping);
    sb_worker_job_set_data (job, ping);
    s_arm_guard (self);
    sb_db_process (self->db);
    s_db_sync (self);
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
    s_ping_t *ping = sb_worker_job_data (job);
    if (ping) {
        s_ping_detach (ping);          // freed when the database calls back
        s_arm_guard ((sb_token_role_t *) state);
    }
}

const sb_worker_role_t sb_token_role = { s_start, s_abandon };

sb_token_role_t *
sb_token_role_new (sb_worker_t *worker, const char *conninfo, const char *migrations_dir)
{
    if (!conninfo || !*conninfo) {
        sb_log_error ("db_missing", "--db (or SB_DATABASE_URL) is required with --role token");
        return NULL;
    }
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (conninfo, SB_TOKEN_CONNECT_TIMEOUT_MS, &error);
    if (!conn) {
        sb_log_error ("db_connect_failed", "%s", error ? error : "cannot connect");
        free (error);
        return NULL;
    }
    int rc = sb_db_migrate (conn, migrations_dir, &error);
    PQfinish (conn);
    if (rc) {
        sb_log_error ("db_migrate_failed", "%s", error ? error : "migrations failed");
        free (error);
        return NULL;
    }
    sb_token_role_t *self = calloc (1, sizeof (sb_token_role_t));
    if (!self)
        return NULL;
    self->worker = worker;
    self->reactor = sb_worker_reactor (worker);
    self->db_fd = -1;
    self->db_timer = sb_reactor_timer_new (self->reactor, s_on_db_timer, self);
    self->guard_timer = sb_reactor_timer_new (self->reactor, s_on_guard_timer, self);
    self->pings = zlistx_new ();
    self->db = sb_db_new (conninfo);
    if (self->db_timer < 0 || self->guard_timer < 0 || !self->pings || !self->db) {
        sb_log_error ("token_init_failed", "cannot set up the database connection");
        sb_token_role_destroy (&self);
        return NULL;
    }
    sb_db_process (self->db);           // start connecting now, not at the first ping
    s_db_sync (self);
    sb_log_info ("token_ready", "database migrated (%s)", migrations_dir);
    return self;
}

void
sb_token_role_destroy (sb_token_role_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_token_role_t *self = *self_p;
    //  Jobs still waiting are the worker's to abandon; detach them first
    s_ping_t *ping;
    while (self->pings && (ping = zlistx_first (self->pings)))
        s_ping_detach (ping);
    if (self->db_fd >= 0)
        sb_reactor_unwatch_fd (self->reactor, self->db_fd);
    sb_db_destroy (&self->db);          // calls back each pending query: frees pings
    zlistx_destroy (&self->pings);
    if (self->reactor) {
        sb_reactor_timer_free (self->reactor, self->db_timer);
        sb_reactor_timer_free (self->reactor, self->guard_timer);
    }
    free (self);
    *self_p = NULL;
}
