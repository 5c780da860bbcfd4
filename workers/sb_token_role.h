/*  workers/sb_token_role.h — the token role. Issue #2 gives it start-up
    (blocking connect and migrations, before the loop) and a "ping" that
    proves its asynchronous PostgreSQL connection works:

        {"pong":true,"role":"token","db":"ok","migrations":N}
        {"pong":false,"role":"token","db":"unavailable"}   (within SB_TOKEN_PING_DB_MS)

    The OAuth server's stateful steps and upstream token refresh come in
    later issues. */
#ifndef SB_TOKEN_ROLE_H_INCLUDED
#define SB_TOKEN_ROLE_H_INCLUDED

#include "sb_attr.h"
#include "sb_worker.h"

#define SB_TOKEN_CONNECT_TIMEOUT_MS 10000   /* start-up connect, at most */
#define SB_TOKEN_PING_DB_MS         1000    /* a ping waits this long for the database */
#define SB_MAX_TOKEN_PINGS          256     /* pings waiting for the database at once */

typedef struct _sb_token_role_t sb_token_role_t;

/*  Connects to `conninfo` (blocking, bounded by SB_TOKEN_CONNECT_TIMEOUT_MS),
    applies the migrations in `migrations_dir`, then opens the asynchronous
    connection on the worker's reactor. Returns NULL with an error logged. */
sb_token_role_t *sb_token_role_new (sb_worker_t *worker, const char *conninfo,
                                    const char *migrations_dir) SB_MUST_USE;

/*  Closes the connection, frees the role and nulls the caller's pointer. */
void sb_token_role_destroy (sb_token_role_t **self_p);

/*  The callbacks to pass to sb_worker_set_role with the sb_token_role_t. */
extern const sb_worker_role_t sb_token_role;

#endif
