/*  tests/38_token_support.h — the fixture of the token role's tests that
    seal secrets (38_workers_conn_keys, 38_workers_admin_webhooks): one
    sb-worker --role token process A (others as the test wants) behind a
    fake broker, an in-process token worker that seals and opens through
    the role (test ops), and the real test PostgreSQL, every worker on the
    shared test master secret.

    The in-process worker serves test/seal {tenant, connector, column,
    plain | repeat} ({key_id, sealed}), test/open {key_id, tenant,
    connector, column, sealed} ({current, plain}), test/plain {need_id}
    ({key_id}) and test/stop; every other op goes to the token role.

    Tenants of a run carry tk_prefix and are deleted by tk_stop. A failed
    check fails the cmocka test. */
#ifndef SB_TOKEN_SUPPORT_H_INCLUDED
#define SB_TOKEN_SUPPORT_H_INCLUDED

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "38_workers_fake.h"
#include "sb_token_role.h"

#define TK_HEARTBEAT_MS 20000       /* long: the test talks to one worker while the others wait */
#define TK_WAIT_MS      15000       /* a RESULT, at most */
#define TK_SECRET_FILE  SB_SOURCE_DIR "/tests/fixtures/conn-master-secret"

/*  A connector whose one tool is `name` (the end of a definition's JSON). */
#define TK_TOOL(name) "\"tools\":[{\"name\":\"" name "\",\"description\":\"d\"," \
    "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"method\":\"GET\",\"path\":\"/v1/x\"}," \
    "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}"

typedef struct {
    fake_broker_t *broker;
    pid_t pid;                      /* -1: in-process */
    char log [128];                 /* its stderr */
} tk_proc_t;

extern tk_proc_t tk_a;              /* worker process A */
extern tk_proc_t tk_in;             /* the in-process worker */
extern sb_token_role_t *tk_in_role; /* its role */
extern char tk_prefix [32];         /* this run's tenants start "<prefix>-" */
extern char *tk_conninfo;
extern PGconn *tk_pg;               /* the test's own connection, switchboard.system on */
extern char tk_dir [64];            /* the connectors of this run */

//  Rows

/*  Runs `sql` with `n` text parameters; fails the test when it fails. */
PGresult *tk_sql (const char *sql, int n, const char *p1, const char *p2, const char *p3);

/*  The one value of `sql` as a new string ("" for NULL). */
char *tk_value (const char *sql, int n, const char *p1, const char *p2, const char *p3);

/*  The same as a number. */
long long tk_number (const char *sql, int n, const char *p1, const char *p2, const char *p3);

/*  "<prefix>-<name>" (one of 8 static buffers, reused in turn). */
const char *tk_tenant (const char *name);

/*  Inserts tenant `id`. */
void tk_create_tenant (const char *id);

//  Jobs

/*  Sends op `op` with `data` to `proc`; its correlation id into `corr_id`. */
void tk_send (tk_proc_t *proc, const char *op, const char *data, char corr_id [32]);

/*  The RESULT of `corr_id` (new text), *status set; fails after TK_WAIT_MS. */
char *tk_wait (tk_proc_t *proc, const char *corr_id, sb_status_t *status);

/*  Op `op` with `data` on `proc`: the result parsed (new), *status set. */
json_t *tk_op (tk_proc_t *proc, const char *op, const char *data, sb_status_t *status);

/*  An admin/http job's data: the request encoded (new). */
char *tk_admin_encode (const char *method, const char *path, const char *query, const char *body);

/*  An admin/http RESULT `result` (`what` names it in a failure): the
    status into *status, the JSON object body (new); `text` the body as
    sent, when asked for (new). */
json_t *tk_admin_answer (const char *what, char *result, int *status, char **text);

/*  An admin/http job on `proc`: the answer's JSON body (new), which must
    have status `want`; `text` the body as sent, when asked for (new). */
json_t *tk_admin (tk_proc_t *proc, int want, const char *method, const char *path,
                  const char *query, const char *body, char **text);

/*  An admin request to A answered `want` with error `code` and a message
    holding `words` (NULL: any). */
void tk_refused (int want, const char *code, const char *words, const char *method,
                 const char *path, const char *query, const char *body);

/*  The path formatted (a static buffer). */
const char *tk_path (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

/*  The string member `key` of `object` (borrowed); fails when absent. */
const char *tk_str (const json_t *object, const char *key);

/*  Opens in-process: the plain text (new) or NULL when it does not open;
    *status not OK when the key cannot be had. */
char *tk_open (const char *key_id, const char *tenant, const char *connector, const char *column,
               const char *sealed, sb_status_t *status);

//  Set-up and clean-up

/*  Connects tk_pg and makes tk_dir; `tag` (at most 7 characters) names
    the run's prefix and files. Returns 0 or -1. */
int tk_start (const char *tag);

/*  Writes `text` into tk_dir/`name`. */
void tk_write (const char *name, const char *text);

/*  Starts sb-worker --role token `name` behind a new fake broker, its
    stderr into proc->log, on tk_dir's connectors. Returns 0 once it is
    READY, or -1. */
int tk_proc_start (tk_proc_t *proc, const char *name);

/*  Starts the in-process worker (tk_in). Returns 0 once it is READY, or -1. */
int tk_in_start (void);

/*  Stops `proc` (number `i` in what is said), its broker, its log; false
    when it did not exit 0. */
bool tk_proc_stop (tk_proc_t *proc, int i);

/*  Stops the in-process worker, deletes the run's tenants and `files` of
    tk_dir, and tk_dir. Returns 0, or -1 when the tenants could not be
    deleted. */
int tk_stop (const char *const *files, size_t count);

#endif
