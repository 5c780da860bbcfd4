/*  workers/sb_task_role.h — the task role (service "task"): the task store
    of the MCP Tasks extension (SEP-2663). Tasks live in PostgreSQL, table
    `tasks` (db/migrations/003_tasks.sql), written only by this role, so
    any gateway can answer tasks/get, tasks/update and tasks/cancel for any
    task by sending a job here. The tenant is always the JOB's tenant; a
    task of another tenant or (get, update, cancel) another subject is "not
    found", never told apart from an unknown one; the store writes such an
    attempt to the audit log as task_refused under the job's tenant
    (db/migrations/009_audit_refusals.sql).

    Ops (job fields; RESULT ok with the JSON text shown):

      task/create  task, subject, connector, tool, args (JSON object text),
                   inputs (JSON object text; absent: {}), caps, round,
                   data {"ttlMs": 1..86400000, "pollIntervalMs": 1..3600000,
                         "runMs": 1..600000}
                   → {"task": Task}
                   Task = {"taskId","status","createdAt","lastUpdatedAt",
                           "ttlMs","pollIntervalMs"}
                   The same task id again for the same subject (a retried
                   job) answers the task as it is.
      task/get     task, subject
                   → {"found":false} | {"found":true,"task": DetailedTask}
                   DetailedTask = Task plus "statusMessage" when set and, by
                   status: completed "result", failed "error",
                   input_required "inputRequests" (the outstanding ones).
                   A task working past its run deadline is failed first.
      task/finish  task, data: {"status":"completed","result":{…}}
                              | {"status":"failed","error":{code,message[,data]}}
                              | {"status":"input_required","inputRequests":{…},
                                 "inputs":{…},"round":N}
                   → {"applied":true|false}  (false: unknown or not working)
      task/update  task, subject, data: the client's inputResponses object
                   → {"found":false} | {"found":true}
                   | {"found":true,"resume":{"connector","tool","args",
                                             "inputs","caps","round"}}
                   (resume: the last outstanding request was answered; one
                   caller only ever sees it for a round)
      task/cancel  task, subject → {"found":false} | {"found":true}
      ping         → {"pong":true,"role":"task","db":"ok","migrations":N}
                   | {"pong":false,"role":"task","db":"unavailable"}

    A job whose fields or data break these shapes ends RESULT failed with
    a sentence saying what is wrong; a database error or a database that
    does not answer before the job's deadline ends it failed with
    {"error":"the task store is unavailable"}. Tasks older than their ttlMs
    are not found and are deleted by a sweep: at start, then every
    SB_TASK_SWEEP_MS, at most SB_TASK_SWEEP_MAX rows each time. */
#ifndef SB_TASK_ROLE_H_INCLUDED
#define SB_TASK_ROLE_H_INCLUDED

#include "sb_attr.h"
#include "sb_worker.h"

#define SB_TASK_CONNECT_TIMEOUT_MS  10000       /* start-up connect, at most */
#define SB_TASK_PING_DB_MS          1000        /* a ping waits this long for the database */
#define SB_TASK_SWEEP_MS            60000       /* between two sweeps of expired tasks */
#define SB_TASK_SWEEP_MAX           1000        /* tasks one sweep deletes, at most */
#define SB_MAX_TASK_OPS             1024        /* jobs waiting for the database at once */
#define SB_MAX_TASK_TTL_MS          86400000    /* ttlMs: a task is kept a day at most */
#define SB_MAX_TASK_POLL_MS         3600000     /* pollIntervalMs, at most */
#define SB_MAX_TASK_RUN_MS          600000      /* runMs: one run of a task's job, at most */
/*  Largest result, error or inputRequests text a task keeps: room is left
    for the rest of a task/get answer within SB_MAX_JSON_SIZE. A larger
    completed result is kept as a failed task saying so. */
#define SB_MAX_TASK_OUTCOME_SIZE    (SB_MAX_JSON_SIZE - 4096)

typedef struct _sb_task_role_t sb_task_role_t;

/*  Connects to `conninfo` (blocking, bounded by SB_TASK_CONNECT_TIMEOUT_MS),
    applies the migrations in `migrations_dir` (idempotent, under the
    migrations' advisory lock, so it may run beside the token role), then
    opens the asynchronous connection on the worker's reactor and arms the
    sweep. Returns NULL with an error logged. */
sb_task_role_t *sb_task_role_new (sb_worker_t *worker, const char *conninfo,
                                  const char *migrations_dir) SB_MUST_USE;

/*  Closes the connection, frees the role and nulls the caller's pointer.
    Jobs still waiting are left to the worker to abandon. Idempotent. */
void sb_task_role_destroy (sb_task_role_t **self_p);

/*  The callbacks to pass to sb_worker_set_role with the sb_task_role_t. */
extern const sb_worker_role_t sb_task_role;

#endif
