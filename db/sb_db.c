/*  db/sb_db.c — PostgreSQL access layer: a blocking start-up connection,
    numbered migrations under an advisory lock, and an asynchronous
    connection (libpq non-blocking API) that event loops drive through
    sb_db_fd / sb_db_wants / sb_db_timeout_ms / sb_db_process.

    The asynchronous connection is a small state machine:

        DOWN ──(retry time reached)──▶ CONNECTING ──(PQconnectPoll OK)──▶ UP
          ▲                               │                               │
          └──────(failure: backoff)───────┴───(broken / query timeout)────┘

    Queries wait in one FIFO (at most SB_MAX_DB_QUEUE); the head is sent
    with PQsendQueryParams and flushed with PQflush; its results are
    collected with PQconsumeInput / PQisBusy / PQgetResult. Each query has a
    deadline (SB_DB_QUERY_TIMEOUT_MS from when it was queued). libpq in
    PostgreSQL 15 has no non-blocking cancel, so a query that overruns its
    deadline on the wire costs the connection: it is closed and reopened at
    once. Nothing here waits on a socket; readiness is tested with a
    zero-timeout poll(). One libpq caveat: with `host=NAME` (not an
    address) PQconnectStart resolves the name synchronously; use addresses,
    or names the local resolver answers at once (compose service names).

    sb_db_wants returns poll(2) bits (POLLIN = 1, POLLOUT = 4); zmq_poll
    users translate POLLOUT to ZMQ_POLLOUT (2). */
#include "sb_db.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_DB_PARAMS        64          /* parameters of one query */
#define SB_MAX_DB_SQL           (64 * 1024) /* length of one query's text, bytes */
#define SB_MAX_MIGRATIONS       1000        /* migration files in one folder */
#define SB_MAX_MIGRATION_FILE   (1024 * 1024) /* size of one migration file, bytes */
#define SB_MAX_DB_ERROR         512         /* length of an error message, bytes */
#define SB_DB_CONNECT_TIMEOUT_MS 5000       /* one asynchronous connection attempt */
#define SB_DB_BACKOFF_MIN_MS    100         /* first retry after a failed connect */
#define SB_DB_BACKOFF_MAX_MS    5000        /* longest wait between attempts */
#define SB_DB_MIGRATE_LOCK      "7400319"   /* advisory lock key for sb_db_migrate */
#define SB_DB_MIGRATE_LOCK_WAIT "120s"      /* longest wait for another migrator */

/* ---------------------------------------------------------------------- */
/*  Blocking part: start-up connection and migrations                      */

/*  Formats an error into a new string for an `char **error` out-parameter. */
static void
s_set_error (char **error, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_set_error (char **error, const char *fmt, ...)
{
    if (!error)
        return;
    char buf [SB_MAX_DB_ERROR];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (buf, sizeof buf, fmt, ap);
    va_end (ap);
    //  libpq messages end in a newline; logs and callers do not want it.
    size_t len = strlen (buf);
    while (len > 0 && (buf [len - 1] == '\n' || buf [len - 1] == ' '))
        buf [--len] = 0;
    free (*error);
    *error = strdup (buf);
}

/*  Waits (poll) until the socket is ready for `events` or `timeout_ms`
    passes. Returns >0 ready, 0 timeout, -1 error. */
static int
s_wait_fd (int fd, short events, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int rc;
    do
        rc = poll (&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc;
}

/*  Server notices (e.g. "already exists, skipping") go to the log, not to
    stderr as libpq's default would print them. */
static void
s_on_notice (void *arg, const char *message)
{
    size_t len = strlen (message);
    while (len > 0 && message [len - 1] == '\n')
        len--;
    sb_log_debug ("db_notice", "%.*s", (int) len, message);
}

/*  One connection attempt, bounded by `deadline` (monotonic ms). */
static PGconn *
s_connect_once (const char *conninfo, int64_t deadline, char **error)
{
    PGconn *conn = PQconnectStart (conninfo);
    if (!conn) {
        s_set_error (error, "out of memory");
        return NULL;
    }
    if (PQstatus (conn) == CONNECTION_BAD) {
        s_set_error (error, "%s", PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
        if (status == PGRES_POLLING_FAILED) {
            s_set_error (error, "%s", PQerrorMessage (conn));
            PQfinish (conn);
            return NULL;
        }
        int64_t left = sb_clock_left_ms (deadline);
        short events = status == PGRES_POLLING_READING? POLLIN: POLLOUT;
        int rc = left > 0? s_wait_fd (PQsocket (conn), events, (int) left): 0;
        if (rc <= 0) {
            s_set_error (error, "timed out connecting to PostgreSQL");
            PQfinish (conn);
            return NULL;
        }
        status = PQconnectPoll (conn);
    }
    PQsetNoticeProcessor (conn, s_on_notice, NULL);
    return conn;
}

PGconn *
sb_db_connect_blocking (const char *conninfo, int timeout_ms, char **error)
{
    //  The database may still be starting (compose, a restart): retry
    //  until the deadline, then report the last reason.
    int64_t deadline = sb_clock_mono_ms () + timeout_ms;
    while (true) {
        PGconn *conn = s_connect_once (conninfo, deadline, error);
        if (conn)
            return conn;
        int64_t left = sb_clock_left_ms (deadline);
        if (left <= 0)
            return NULL;
        s_wait_fd (-1, 0, left < 200? (int) left: 200);
    }
}

/*  Runs one statement (no parameters); 0 when it succeeded. */
static int
s_exec (PGconn *conn, const char *sql, char **error)
{
    PGresult *res = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (res);
    int rc = 0;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        s_set_error (error, "%s", res? PQresultErrorMessage (res): PQerrorMessage (conn));
        rc = -1;
    }
    PQclear (res);
    return rc;
}

/*  One migration file found in the folder. */
typedef struct {
    long version;           /* the NNN prefix */
    char *name;             /* file name, owned */
} s_migration_t;

static int
s_migration_cmp (const void *a, const void *b)
{
    const s_migration_t *ma = a, *mb = b;
    return (ma->version > mb->version) - (ma->version < mb->version);
}

/*  Parses "NNN_name.sql" → version; -1 when the name is not a migration. */
static long
s_migration_version (const char *name)
{
    size_t len = strlen (name);
    if (len < 9 || strcmp (name + len - 4, ".sql") != 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (name [i] < '0' || name [i] > '9')
            return -1;
    if (name [3] != '_')
        return -1;
    return (name [0] - '0') * 100 + (name [1] - '0') * 10 + (name [2] - '0');
}

/*  Lists the migrations of `dir`, sorted. Returns the count or -1. */
static int
s_list_migrations (const char *dir, s_migration_t *list, char **error)
{
    DIR *handle = opendir (dir);
    if (!handle) {
        s_set_error (error, "cannot open migrations folder %s: %s", dir, strerror (errno));
        return -1;
    }
    int count = 0;
    struct dirent *entry;
    //  cppcheck-suppress readdirCalled ; readdir_r is deprecated: readdir is safe on a DIR
    //  no other thread reads
    while ((entry = readdir (handle))) {
        long version = s_migration_version (entry->d_name);
        if (version < 0)
            continue;
        if (count == SB_MAX_MIGRATIONS) {
            s_set_error (error, "more than %d migrations in %s", SB_MAX_MIGRATIONS, dir);
            goto fail;
        }
        list [count].version = version;
        list [count].name = strdup (entry->d_name);
        if (!list [count].name) {
            s_set_error (error, "out of memory");
            goto fail;
        }
        count++;
    }
    closedir (handle);
    qsort (list, count, sizeof list [0], s_migration_cmp);
    for (int i = 1; i < count; i++)
        if (list [i].version == list [i - 1].version) {
            s_set_error (error, "two migrations numbered %03ld: %s and %s",
                         list [i].version, list [i - 1].name, list [i].name);
            for (int j = 0; j < count; j++)
                free (list [j].name);
            return -1;
        }
    return count;
fail:
    closedir (handle);
    for (int j = 0; j < count; j++)
        free (list [j].name);
    return -1;
}

/*  Reads a whole file (at most SB_MAX_MIGRATION_FILE) into a new string. */
static char *
s_read_file (const char *path, char **error)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        s_set_error (error, "cannot read %s: %s", path, strerror (errno));
        return NULL;
    }
    char *text = malloc (SB_MAX_MIGRATION_FILE + 1);
    size_t size = text? fread (text, 1, SB_MAX_MIGRATION_FILE + 1, file): 0;
    bool failed = !text || ferror (file);
    fclose (file);
    if (failed || size > SB_MAX_MIGRATION_FILE) {
        s_set_error (error, failed? "cannot read %s": "%s is larger than the migration limit", path);
        free (text);
        return NULL;
    }
    text [size] = 0;
    return text;
}

/*  True when `version` is already recorded. -1 on error. */
static int
s_migration_applied (PGconn *conn, long version, char **error)
{
    char number [32];
    snprintf (number, sizeof number, "%ld", version);
    const char *params [] = { number };
    PGresult *res = PQexecParams (conn,
        "SELECT 1 FROM schema_migrations WHERE version = $1::int",
        1, NULL, params, NULL, NULL, 0);
    int rc;
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        s_set_error (error, "%s", PQresultErrorMessage (res));
        rc = -1;
    }
    else
        rc = PQntuples (res) > 0;
    PQclear (res);
    return rc;
}

/*  Applies one migration file in its own transaction and records it. */
static int
s_apply_migration (PGconn *conn, const char *dir, const s_migration_t *migration,
                   char **error)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s/%s", dir, migration->name) >= (int) sizeof path) {
        s_set_error (error, "migration path too long");
        return -1;
    }
    char *sql = s_read_file (path, error);
    if (!sql)
        return -1;
    int rc = s_exec (conn, "BEGIN", error);
    if (rc)
        goto out;
    rc = s_exec (conn, sql, error);
    if (rc) {
        char *reason = error && *error? strdup (*error): NULL;
        s_set_error (error, "migration %s failed: %s", migration->name, reason? reason: "?");
        free (reason);
        goto rollback;
    }
    char number [32];
    snprintf (number, sizeof number, "%ld", migration->version);
    const char *params [] = { number, migration->name };
    PGresult *res = PQexecParams (conn,
        "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_COMMAND_OK) {
        s_set_error (error, "%s", PQresultErrorMessage (res));
        rc = -1;
    }
    PQclear (res);
    if (rc)
        goto rollback;
    rc = s_exec (conn, "COMMIT", error);
    if (rc == 0)
        sb_log_info ("db_migrated", "applied migration %s", migration->name);
    goto out;
rollback:
    PQclear (PQexec (conn, "ROLLBACK"));
out:
    free (sql);
    return rc;
}

int
sb_db_migrate (PGconn *conn, const char *dir, char **error)
{
    if (!dir || !*dir)
        dir = SB_DEFAULT_MIGRATIONS_DIR;
    s_migration_t *list = calloc (SB_MAX_MIGRATIONS, sizeof *list);
    if (!list) {
        s_set_error (error, "out of memory");
        return -1;
    }
    int count = s_list_migrations (dir, list, error);
    if (count < 0) {
        free (list);
        return -1;
    }
    //  One migrator at a time across every process that starts now; the
    //  lock wait is bounded so a stuck peer cannot hold us forever.
    int rc = s_exec (conn, "SET lock_timeout = '" SB_DB_MIGRATE_LOCK_WAIT "'", error);
    if (rc)
        goto out;
    rc = s_exec (conn, "SELECT pg_advisory_lock(" SB_DB_MIGRATE_LOCK ")", error);
    if (rc)
        goto out;
    rc = s_exec (conn,
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "  version    int PRIMARY KEY,"
        "  name       text NOT NULL,"
        "  applied_at timestamptz NOT NULL DEFAULT now())", error);
    for (int i = 0; rc == 0 && i < count; i++) {
        int applied = s_migration_applied (conn, list [i].version, error);
        if (applied < 0)
            rc = -1;
        else
        if (!applied)
            rc = s_apply_migration (conn, dir, &list [i], error);
    }
    PQclear (PQexec (conn, "SELECT pg_advisory_unlock(" SB_DB_MIGRATE_LOCK ")"));
    PQclear (PQexec (conn, "RESET lock_timeout"));
out:
    for (int i = 0; i < count; i++)
        free (list [i].name);
    free (list);
    return rc;
}

int
sb_db_check_role (PGconn *conn, char **error)
{
    PGresult *res = PQexec (conn,
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user");
    int rc = 0;
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
        s_set_error (error, "cannot read the role's attributes: %s", PQresultErrorMessage (res));
        rc = -1;
    }
    else
    if (strcmp (PQgetvalue (res, 0, 1), "f") != 0 || strcmp (PQgetvalue (res, 0, 2), "f") != 0) {
        s_set_error (error, "the database role \"%s\" is a superuser or has BYPASSRLS, so "
                     "row-level security would not isolate tenants; connect as an "
                     "application role (NOSUPERUSER NOBYPASSRLS), as scripts/pg.sh and "
                     "docker/postgres-init/10-app-role.sh create it",
                     PQgetvalue (res, 0, 0));
        rc = -1;
    }
    PQclear (res);
    return rc;
}

int
sb_db_prepare (const char *conninfo, const char *dir, int timeout_ms)
{
    char *error = NULL;
    PGconn *conn = sb_db_connect_blocking (conninfo, timeout_ms, &error);
    if (!conn) {
        sb_log_error ("db_connect_failed", "%s", error ? error : "cannot connect");
        free (error);
        return -1;
    }
    //  Tenant isolation rests on row-level security, which a superuser or
    //  a BYPASSRLS role skips: such a role is refused before anything runs.
    if (sb_db_check_role (conn, &error)) {
        PQfinish (conn);
        sb_log_error ("db_role_bypasses_rls", "%s", error ? error : "role check failed");
        free (error);
        return -1;
    }
    //  Several processes may start at once: sb_db_migrate's advisory lock
    //  makes the others wait while one migrates.
    int rc = sb_db_migrate (conn, dir, &error);
    PQfinish (conn);
    if (rc) {
        sb_log_error ("db_migrate_failed", "%s", error ? error : "migrations failed");
        free (error);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/*  Asynchronous connection                                                */

typedef enum {
    S_DOWN,                 /* no connection; next attempt at retry_at */
    S_CONNECTING,           /* PQconnectPoll in progress */
    S_UP,                   /* connected, queries may be sent */
} s_state_t;

typedef struct _s_query_t s_query_t;
struct _s_query_t {
    s_query_t *next;        /* next in the FIFO */
    char *sql;              /* query text, owned */
    int nparams;            /* number of parameters */
    char **params;          /* parameter values, owned (entries may be NULL) */
    sb_db_cb_t *cb;         /* completion callback */
    void *arg;              /* callback argument */
    int64_t deadline;       /* monotonic ms after which it fails */
};

struct _sb_db_t {
    char *conninfo;         /* libpq connection string, owned */
    PGconn *conn;           /* the connection, NULL when DOWN */
    s_state_t state;        /* see the diagram at the top */
    PostgresPollingStatusType polling; /* CONNECTING: what PQconnectPoll waits for */
    int64_t connect_deadline;   /* CONNECTING: give up at this time */
    int64_t retry_at;       /* DOWN: next connection attempt */
    int backoff_ms;         /* current retry delay */
    bool was_up;            /* connected at least once (for log wording) */
    s_query_t *head;        /* oldest query (the one on the wire when sent) */
    s_query_t *tail;        /* newest query */
    size_t queued;          /* queries in the FIFO */
    bool sent;              /* head has been sent */
    bool flushing;          /* PQflush has more output to write */
    PGresult *result;       /* head's result collected so far */
};

static void
s_query_free (s_query_t **query_p)
{
    s_query_t *query = *query_p;
    if (!query)
        return;
    for (int i = 0; i < query->nparams; i++)
        free (query->params [i]);
    free (query->params);
    free (query->sql);
    free (query);
    *query_p = NULL;
}

/*  Removes the head and calls its callback (after unlinking, so a callback
    may queue new queries). */
static void
s_complete_head (sb_db_t *self, const PGresult *res, const char *error)
{
    s_query_t *query = self->head;
    assert (query);
    self->head = query->next;
    if (!self->head)
        self->tail = NULL;
    self->queued--;
    self->sent = false;
    self->flushing = false;
    query->cb (res, error, query->arg);
    s_query_free (&query);
}

/*  Fails every queued query with `error`. */
static void
s_fail_all (sb_db_t *self, const char *error)
{
    //  Only the queries queued now: ones queued by callbacks wait for the
    //  next connection.
    size_t count = self->queued;
    while (count-- && self->head)
        s_complete_head (self, NULL, error);
}

/*  Closes the connection; the next attempt is at now + delay_ms. */
static void
s_close (sb_db_t *self, int delay_ms)
{
    if (self->conn)
        PQfinish (self->conn);
    self->conn = NULL;
    PQclear (self->result);
    self->result = NULL;
    self->state = S_DOWN;
    self->sent = false;
    self->flushing = false;
    self->retry_at = sb_clock_mono_ms () + delay_ms;
}

/*  The connection failed or broke: close, fail what was pending, back off. */
static void
s_broken (sb_db_t *self, const char *what)
{
    char error [SB_MAX_DB_ERROR];
    const char *reason = self->conn? PQerrorMessage (self->conn): "";
    //  libpq's message runs over several lines; the first one says it.
    size_t reason_len = strcspn (reason, "\n");
    if (reason_len == 0) {
        reason = "connection lost";
        reason_len = strlen (reason);
    }
    snprintf (error, sizeof error, "database %s: %.*s", what, (int) reason_len, reason);
    if (self->backoff_ms == SB_DB_BACKOFF_MIN_MS || self->state == S_UP)
        sb_log_warn ("db_down", "%s; retrying with backoff", error);
    //  Jitter (±25%) so many workers do not reconnect in step.
    int delay = self->backoff_ms - self->backoff_ms / 4 + rand () % (self->backoff_ms / 2 + 1);
    self->backoff_ms = self->backoff_ms * 2 > SB_DB_BACKOFF_MAX_MS?
                       SB_DB_BACKOFF_MAX_MS: self->backoff_ms * 2;
    s_close (self, delay);
    s_fail_all (self, error);
}

/*  True when `fd` is ready for `events` right now (zero-timeout poll). */
static bool
s_ready (int fd, short events)
{
    if (fd < 0)
        return false;
    struct pollfd pfd = { .fd = fd, .events = events };
    int rc = poll (&pfd, 1, 0);
    return rc > 0 && (pfd.revents & (events | POLLERR | POLLHUP));
}

/*  DOWN → CONNECTING when the retry time has come. */
static void
s_start_connect (sb_db_t *self)
{
    self->conn = PQconnectStart (self->conninfo);
    if (!self->conn || PQstatus (self->conn) == CONNECTION_BAD) {
        s_broken (self, "connect failed");
        return;
    }
    self->state = S_CONNECTING;
    self->polling = PGRES_POLLING_WRITING;
    self->connect_deadline = sb_clock_mono_ms () + SB_DB_CONNECT_TIMEOUT_MS;
}

/*  Advances PQconnectPoll when its socket is ready. */
static void
s_advance_connect (sb_db_t *self)
{
    if (sb_clock_left_ms (self->connect_deadline) == 0) {
        s_broken (self, "connect timed out");
        return;
    }
    short events = self->polling == PGRES_POLLING_READING? POLLIN: POLLOUT;
    if (!s_ready (PQsocket (self->conn), events))
        return;
    self->polling = PQconnectPoll (self->conn);
    if (self->polling == PGRES_POLLING_FAILED)
        s_broken (self, "connect failed");
    else
    if (self->polling == PGRES_POLLING_OK) {
        if (PQsetnonblocking (self->conn, 1)) {
            s_broken (self, "set non-blocking failed");
            return;
        }
        PQsetNoticeProcessor (self->conn, s_on_notice, NULL);
        self->state = S_UP;
        self->backoff_ms = SB_DB_BACKOFF_MIN_MS;
        if (self->was_up)
            sb_log_info ("db_up", "reconnected to PostgreSQL");
        self->was_up = true;
    }
}

/*  Fails queries whose deadline passed. An overdue query on the wire
    costs the connection (no non-blocking cancel in libpq 15). */
static void
s_expire (sb_db_t *self)
{
    int64_t now = sb_clock_mono_ms ();
    if (self->head && self->sent && self->head->deadline <= now) {
        sb_log_warn ("db_query_timeout", "query overran %d ms; reconnecting",
                     SB_DB_QUERY_TIMEOUT_MS);
        s_close (self, 0);
        s_complete_head (self, NULL, "database query timed out");
    }
    //  FIFO order means deadlines are in order: stop at the first live one.
    while (self->head && !self->sent && self->head->deadline <= now)
        s_complete_head (self, NULL, "database query timed out");
}

/*  True when a result reports an error. */
static bool
s_result_failed (const PGresult *res)
{
    ExecStatusType status = PQresultStatus (res);
    return status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK
        && status != PGRES_EMPTY_QUERY;
}

/*  UP: sends the head, flushes, reads results. Loops while progress is made
    without waiting. */
static void
s_advance_up (sb_db_t *self)
{
    while (self->state == S_UP) {
        if (!PQconsumeInput (self->conn)) {
            s_broken (self, "connection lost");
            return;
        }
        PGnotify *notify;
        while ((notify = PQnotifies (self->conn)))
            PQfreemem (notify);

        if (self->head && !self->sent) {
            s_query_t *query = self->head;
            if (!PQsendQueryParams (self->conn, query->sql, query->nparams, NULL,
                                    (const char *const *) query->params, NULL, NULL, 0)) {
                if (PQstatus (self->conn) == CONNECTION_BAD) {
                    s_broken (self, "connection lost");
                    return;
                }
                char error [SB_MAX_DB_ERROR];
                snprintf (error, sizeof error, "%s", PQerrorMessage (self->conn));
                s_complete_head (self, NULL, error);
                continue;
            }
            self->sent = true;
            self->flushing = true;
        }
        if (self->flushing) {
            int rc = PQflush (self->conn);
            if (rc < 0) {
                s_broken (self, "connection lost");
                return;
            }
            self->flushing = rc == 1;
        }
        if (!self->sent || PQisBusy (self->conn))
            return;                 //  wait for the socket

        //  Collect every result of the head; keep the first error, else the last.
        PGresult *res;
        while (!PQisBusy (self->conn) && (res = PQgetResult (self->conn))) {
            if (self->result && s_result_failed (self->result))
                PQclear (res);
            else {
                PQclear (self->result);
                self->result = res;
            }
        }
        if (PQisBusy (self->conn))
            return;                 //  more results to come
        //  PQgetResult returned NULL: the head is answered.
        PGresult *result = self->result;
        self->result = NULL;
        if (!result)
            s_complete_head (self, NULL, "database returned no result");
        else
        if (!s_result_failed (result))
            s_complete_head (self, result, NULL);
        else {
            char error [SB_MAX_DB_ERROR];
            snprintf (error, sizeof error, "%s", PQresultErrorMessage (result));
            size_t len = strlen (error);
            while (len > 0 && error [len - 1] == '\n')
                error [--len] = 0;
            s_complete_head (self, NULL, *error? error: PQresStatus (PQresultStatus (result)));
        }
        PQclear (result);
        if (PQstatus (self->conn) == CONNECTION_BAD) {
            s_broken (self, "connection lost");
            return;
        }
    }
}

sb_db_t *
sb_db_new (const char *conninfo)
{
    sb_db_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup (conninfo? conninfo: "");
    if (!self->conninfo) {
        free (self);
        return NULL;
    }
    self->state = S_DOWN;
    self->backoff_ms = SB_DB_BACKOFF_MIN_MS;
    self->retry_at = sb_clock_mono_ms ();   //  connect on the first sb_db_process
    return self;
}

void
sb_db_destroy (sb_db_t **self_p)
{
    sb_db_t *self = *self_p;
    if (!self)
        return;
    s_close (self, 0);
    //  Callbacks may queue more; fail those too until the FIFO is empty.
    while (self->head)
        s_complete_head (self, NULL, "shutting down");
    free (self->conninfo);
    free (self);
    *self_p = NULL;
}

int
sb_db_query (sb_db_t *self, const char *sql, int nparams,
             const char *const *params, sb_db_cb_t *cb, void *arg)
{
    assert (self && sql && cb);
    if (self->queued >= SB_MAX_DB_QUEUE || nparams < 0 || nparams > SB_MAX_DB_PARAMS
    ||  strlen (sql) > SB_MAX_DB_SQL)
        return -1;
    s_query_t *query = calloc (1, sizeof *query);
    if (!query)
        return -1;
    query->sql = strdup (sql);
    query->params = calloc (nparams? nparams: 1, sizeof (char *));
    if (!query->sql || !query->params)
        goto fail;
    for (int i = 0; i < nparams; i++, query->nparams++)
        if (params [i] && !(query->params [i] = strdup (params [i])))
            goto fail;
    query->cb = cb;
    query->arg = arg;
    query->deadline = sb_clock_mono_ms () + SB_DB_QUERY_TIMEOUT_MS;
    if (self->tail)
        self->tail->next = query;
    else
        self->head = query;
    self->tail = query;
    self->queued++;
    return 0;
fail:
    s_query_free (&query);
    return -1;
}

int
sb_db_fd (sb_db_t *self)
{
    assert (self);
    return self->conn? PQsocket (self->conn): -1;
}

short
sb_db_wants (sb_db_t *self)
{
    assert (self);
    if (self->state == S_CONNECTING)
        return self->polling == PGRES_POLLING_READING? POLLIN: POLLOUT;
    if (self->state == S_UP) {
        //  Always readable interest: results, notices and a closed socket.
        short events = POLLIN;
        if (self->flushing || (self->head && !self->sent))
            events |= POLLOUT;
        return events;
    }
    return 0;
}

int
sb_db_timeout_ms (sb_db_t *self)
{
    assert (self);
    int64_t next = INT64_MAX;
    if (self->state == S_DOWN)
        next = self->retry_at;
    else
    if (self->state == S_CONNECTING)
        next = self->connect_deadline;
    else
    if (self->head && !self->sent)
        next = sb_clock_mono_ms ();         //  ready to send now
    if (self->head && self->head->deadline < next)
        next = self->head->deadline;
    if (next == INT64_MAX)
        return -1;
    int64_t left = sb_clock_left_ms (next);
    return left > INT32_MAX? INT32_MAX: (int) left;
}

void
sb_db_process (sb_db_t *self)
{
    assert (self);
    s_expire (self);
    if (self->state == S_DOWN && sb_clock_left_ms (self->retry_at) == 0)
        s_start_connect (self);
    if (self->state == S_CONNECTING)
        s_advance_connect (self);
    if (self->state == S_UP)
        s_advance_up (self);
    //  Queries queued by callbacks while the connection was failing may
    //  already be overdue.
    s_expire (self);
}

bool
sb_db_connected (sb_db_t *self)
{
    assert (self);
    return self->state == S_UP;
}
