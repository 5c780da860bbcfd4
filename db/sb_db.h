/*  db/sb_db.h — PostgreSQL access: start-up connection and migrations
    (blocking, before any loop runs) and an asynchronous connection for use
    inside event loops (libpq non-blocking API; never blocks).

    Loop usage:
        sb_db_t *db = sb_db_new (conninfo);
        … poll sb_db_fd (db) for sb_db_wants (db) (poll(2) bits POLLIN /
          POLLOUT; translate them for zmq_poll, whose ZMQ_POLLOUT differs),
          then call sb_db_process (db);
          also call sb_db_process at least every sb_db_timeout_ms (db).
        sb_db_query (db, "SELECT $1::int", 1, params, on_done, arg);
    Queries run one at a time in FIFO order. If the connection breaks,
    pending callbacks get an error and the connection is re-established
    with backoff; no query waits without a deadline. */
#ifndef SB_DB_H_INCLUDED
#define SB_DB_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>

#include "sb_attr.h"

#define SB_MAX_DB_QUEUE         1024    /* queued async queries per connection */
#define SB_DB_QUERY_TIMEOUT_MS  5000    /* a query still unanswered after this fails */

/*  Blocking connect for start-up. Returns the connection or NULL with
    *error a new string. Gives up after `timeout_ms`. */
PGconn *sb_db_connect_blocking (const char *conninfo, int timeout_ms, char **error) SB_MUST_USE;

/*  Applies the numbered migrations (NNN_name.sql, in order) in `dir` that
    are not yet recorded in table schema_migrations, each in its own
    transaction, under an advisory lock so concurrent starters are safe.
    Idempotent. Returns 0, or -1 with *error a new string. Blocking. */
int sb_db_migrate (PGconn *conn, const char *dir, char **error)
    SB_MUST_USE;

/*  Checks that the connection's role is bound by row-level security: not
    a superuser, no BYPASSRLS. Returns 0, or -1 with *error a new string
    saying which role and what to do. Blocking. */
int sb_db_check_role (PGconn *conn, char **error) SB_MUST_USE;

/*  Start-up of a process that uses the database: a blocking connect (at
    most `timeout_ms`), sb_db_check_role (a role that bypasses row-level
    security is refused) and sb_db_migrate of `dir`, then the connection
    is closed. Returns 0, or -1 after logging why (db_connect_failed,
    db_role_bypasses_rls, db_migrate_failed). Blocking: call it before
    any loop runs. */
int sb_db_prepare (const char *conninfo, const char *dir, int timeout_ms)
    SB_MUST_USE;

typedef struct _sb_db_t sb_db_t;

/*  Called once per query: `res` (borrowed, NULL on error) or `error`. */
typedef void (sb_db_cb_t) (const PGresult *res, const char *error, void *arg);

/*  Creates an asynchronous connection (connects lazily, non-blocking). */
sb_db_t *sb_db_new (const char *conninfo) SB_MUST_USE;

/*  Destroys it; pending callbacks are called with error "shutting down". */
void sb_db_destroy (sb_db_t **self_p);

/*  Queues a parameterised query. Returns 0, or -1 when the queue is full
    (SB_MAX_DB_QUEUE) — the callback is then not called. */
int sb_db_query (sb_db_t *self, const char *sql, int nparams,
                 const char *const *params, sb_db_cb_t *cb, void *arg)
    SB_MUST_USE;

/*  The socket to poll (-1 when not connected) and the events wanted. */
int sb_db_fd (sb_db_t *self);
short sb_db_wants (sb_db_t *self);

/*  Milliseconds until sb_db_process must run again at the latest (-1: none). */
int sb_db_timeout_ms (sb_db_t *self);

/*  Advances connection, sending, results, timeouts and reconnects. */
void sb_db_process (sb_db_t *self);

/*  True when the connection is up. */
bool sb_db_connected (sb_db_t *self);

#endif
