/*  workers/sb_task_role.c — the task role (see sb_task_role.h).

    Each op is checked here first (fields, data's JSON shape, limits) and
    then is ONE call of a function of migration 003 (task_create, task_get,
    task_finish, task_update, task_cancel) with every value a parameter.
    One statement per op matters: the asynchronous connection is shared by
    every job, so nothing here may hold a transaction open across loop
    turns; the functions lock what they read-modify-write.

    As in the token role, the connection lives on the worker's reactor
    (workers/sb_db_loop.h), and a job the database does not answer in time
    is ended before its deadline by the loop's guard timer; the query's
    late answer then finds no job. */
#include "sb_task_role.h"
#include "sb_attr.h"
#include "sb_clock.h"
#include "sb_db.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_payload.h"
#include "sb_db_loop.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_GUARD_MARGIN_MS   20      /* a job is ended this long before its deadline */
#define S_UNAVAILABLE       "the task store is unavailable"
#define S_MAX_PROBLEM       160     /* a refusal sentence written here, bytes */

typedef enum {
    S_OP_PING,
    S_OP_CREATE,
    S_OP_GET,
    S_OP_FINISH,
    S_OP_UPDATE,
    S_OP_CANCEL,
} s_kind_t;

struct _sb_task_role_t {
    sb_worker_t *worker;        /* our worker (borrowed) */
    sb_reactor_t *reactor;      /* its loop (borrowed) */
    sb_db_loop_t *db_loop;      /* asynchronous connection on the reactor */
    int sweep_timer;            /* reactor timer for the next sweep */
    bool sweeping;              /* a sweep query is out */
    bool closing;               /* being destroyed: callbacks only clean up */
};

static const char s_pong_down [] = "{\"pong\":false,\"role\":\"task\",\"db\":\"unavailable\"}";

//  ---------------------------------------------------------------------------
//  Ops waiting for the database

//  An op's kind as the argument of its sb_db_loop callbacks, and back.
#define S_KIND_ARG(kind)    ((void *) (intptr_t) (kind))
#define S_ARG_KIND(arg)     ((s_kind_t) (intptr_t) (arg))

//  Ends a job whose op could not get an answer from the database.
static void
s_fail_unavailable (sb_worker_job_t **job_p, s_kind_t kind)
{
    if (kind == S_OP_PING)
        sb_worker_job_done (job_p, SB_STATUS_OK, s_pong_down);
    else
        sb_worker_job_fail (job_p, S_UNAVAILABLE);
}

static void
s_on_op_give_up (sb_worker_job_t **job_p, void *arg)
{
    sb_log_warn ("db_unavailable", "task store: no answer from the database in time");
    s_fail_unavailable (job_p, S_ARG_KIND (arg));
}

//  Ends the job with `result` (taken JSON, may be NULL: out of memory).
static void
s_done_json (sb_worker_job_t **job_p, json_t *result)
{
    char *text = result ? sb_json_dump (result, NULL) : NULL;
    json_decref (result);
    if (text)
        sb_worker_job_done (job_p, SB_STATUS_OK, text);
    else
        sb_worker_job_fail (job_p, "out of memory");
    free (text);
}

//  ---------------------------------------------------------------------------
//  Rows to answers

//  A column's integer value; -1 when it is NULL or not an integer.
static long long
s_int_value (const PGresult *res, int row, int col)
{
    if (PQgetisnull (res, row, col))
        return -1;
    char *end = NULL;
    errno = 0;
    long long value = strtoll (PQgetvalue (res, row, col), &end, 10);
    return errno || !end || *end ? -1 : value;
}

//  A column's JSON text as a new tree; NULL when it is NULL or not JSON.
static json_t *
s_json_value (const PGresult *res, int row, int col)
{
    if (PQgetisnull (res, row, col))
        return NULL;
    return sb_json_parse (PQgetvalue (res, row, col), (size_t) PQgetlength (res, row, col),
                          JSON_DECODE_ANY, NULL);
}

static bool
s_bool_value (const PGresult *res, int row, int col)
{
    return !PQgetisnull (res, row, col) && strcmp (PQgetvalue (res, row, col), "t") == 0;
}

//  A task_view row (migration 003) as a Task (`detailed` false) or a
//  DetailedTask. Returns a new object, or NULL when the row is not one.
static json_t *
s_task_of (const PGresult *res, int row, bool detailed)
{
    if (PQnfields (res) != 10)
        return NULL;
    json_t *task = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I}",
                              "taskId", PQgetvalue (res, row, 0),
                              "status", PQgetvalue (res, row, 1),
                              "createdAt", PQgetvalue (res, row, 3),
                              "lastUpdatedAt", PQgetvalue (res, row, 4),
                              "ttlMs", (json_int_t) s_int_value (res, row, 5),
                              "pollIntervalMs", (json_int_t) s_int_value (res, row, 6));
    if (!task || !detailed)
        return task;
    if (!PQgetisnull (res, row, 2)
    &&  json_object_set_new (task, "statusMessage", json_string (PQgetvalue (res, row, 2))))
        goto fail;
    const char *status = PQgetvalue (res, row, 1);
    const char *field = strcmp (status, "completed") == 0 ? "result"
                      : strcmp (status, "failed") == 0 ? "error"
                      : strcmp (status, "input_required") == 0 ? "inputRequests" : NULL;
    int col = strcmp (status, "completed") == 0 ? 7 : strcmp (status, "failed") == 0 ? 8 : 9;
    if (field) {
        json_t *value = s_json_value (res, row, col);
        if (!json_is_object (value) || json_object_set_new (task, field, value)) {
            if (!json_is_object (value))
                json_decref (value);
            goto fail;
        }
    }
    return task;
fail:
    json_decref (task);
    return NULL;
}

//  The answer to `kind` from its query's rows; NULL when they are not
//  what the function returns (a mismatched schema). `*refused` is set to
//  a sentence when the op cannot be done (create: the id is another's).
static json_t *
s_answer_of (s_kind_t kind, const PGresult *res, const char **refused)
{
    int rows = PQntuples (res);
    switch (kind) {
        case S_OP_PING: {
            long long count = rows == 1 ? s_int_value (res, 0, 0) : -1;
            return json_pack ("{s:b, s:s, s:s, s:I}", "pong", 1, "role", "task", "db", "ok",
                              "migrations", (json_int_t) count);
        }
        case S_OP_CREATE: {
            if (rows == 0) {
                *refused = "task/create: this task id is already in use";
                return NULL;
            }
            json_t *task = s_task_of (res, 0, false);
            return task ? json_pack ("{s:o}", "task", task) : NULL;
        }
        case S_OP_GET: {
            if (rows == 0)
                return json_pack ("{s:b}", "found", 0);
            json_t *task = s_task_of (res, 0, true);
            return task ? json_pack ("{s:b, s:o}", "found", 1, "task", task) : NULL;
        }
        case S_OP_FINISH:
            return rows == 1 && PQnfields (res) == 1
                 ? json_pack ("{s:b}", "applied", s_bool_value (res, 0, 0)) : NULL;
        case S_OP_CANCEL:
            return rows == 1 && PQnfields (res) == 1
                 ? json_pack ("{s:b}", "found", s_bool_value (res, 0, 0)) : NULL;
        case S_OP_UPDATE: {
            if (rows == 0)
                return json_pack ("{s:b}", "found", 0);
            if (PQnfields (res) != 7)
                return NULL;
            if (!s_bool_value (res, 0, 0))
                return json_pack ("{s:b}", "found", 1);
            long long caps = s_int_value (res, 0, 5), round = s_int_value (res, 0, 6);
            if (caps < 0 || caps > UINT32_MAX || round < 1)
                return NULL;
            return json_pack ("{s:b, s:{s:s, s:s, s:s, s:s, s:I, s:I}}", "found", 1, "resume",
                              "connector", PQgetvalue (res, 0, 1), "tool", PQgetvalue (res, 0, 2),
                              "args", PQgetvalue (res, 0, 3), "inputs", PQgetvalue (res, 0, 4),
                              "caps", (json_int_t) caps, "round", (json_int_t) round);
        }
    }
    return NULL;
}

static const char *
s_kind_name (s_kind_t kind)
{
    static const char *names [] = { "ping", "task/create", "task/get", "task/finish",
                                    "task/update", "task/cancel" };
    return names [kind];
}

static void
s_on_op_result (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_kind_t kind = S_ARG_KIND (arg);
    const char *refused = NULL;
    json_t *answer = NULL;
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK)
        answer = s_answer_of (kind, res, &refused);
    if (answer)
        s_done_json (job_p, answer);
    else
    if (refused)
        sb_worker_job_fail (job_p, refused);
    else {
        sb_log_warn ("db_unavailable", "%s: %s", s_kind_name (kind),
                     error ? error : res ? "unexpected rows" : "no result");
        s_fail_unavailable (job_p, kind);
    }
}

//  Queues `sql` with `params` for the job; the answer comes in s_on_op_result.
static void
s_submit (sb_task_role_t *self, sb_worker_job_t *job, s_kind_t kind, const char *sql,
          int nparams, const char *const *params)
{
    if (sb_db_loop_jobs (self->db_loop) >= SB_MAX_TASK_OPS) {
        sb_log_warn ("db_busy", "%s: %d jobs already wait for the database", s_kind_name (kind),
                     SB_MAX_TASK_OPS);
        s_fail_unavailable (&job, kind);
        return;
    }
    int64_t left = sb_clock_left_ms (sb_worker_job_deadline (job)) - S_GUARD_MARGIN_MS;
    if (kind == S_OP_PING && left > SB_TASK_PING_DB_MS)
        left = SB_TASK_PING_DB_MS;
    int rc = sb_db_loop_job_query (self->db_loop, job, sb_clock_mono_ms () + (left > 0 ? left : 0),
                                   sql, nparams, params, s_on_op_result, s_on_op_give_up,
                                   S_KIND_ARG (kind));
    if (rc == -1)
        sb_worker_job_fail (&job, "out of memory");
    else
    if (rc)
        s_fail_unavailable (&job, kind);
}

//  ---------------------------------------------------------------------------
//  Checking what a job brings

//  True when `text` is valid UTF-8 (PostgreSQL refuses the rest with an
//  error that would read as an outage).
static bool
s_utf8 (const char *text)
{
    json_t *string = json_string (text);
    json_decref (string);
    return string != NULL;
}

//  Parses `text` as a JSON object; NULL when it is absent or not one.
static json_t *
s_object (const char *text)
{
    json_t *value = text ? sb_json_parse (text, strlen (text), 0, NULL) : NULL;
    if (value && !json_is_object (value)) {
        json_decref (value);
        value = NULL;
    }
    return value;
}

//  An integer member of `object` within min..max, or -1.
static json_int_t
s_member_int (const json_t *object, const char *key, json_int_t min, json_int_t max)
{
    json_t *value = json_object_get (object, key);
    if (!json_is_integer (value))
        return -1;
    json_int_t number = json_integer_value (value);
    return number >= min && number <= max ? number : -1;
}

//  The fields every op but ping needs; ends the job with a sentence and
//  returns -1 when one is missing or bad.
static int
s_check_job (sb_worker_job_t **job_p, bool needs_subject)
{
    const sb_job_t *spec = sb_worker_job_spec (*job_p);
    char sentence [128];
    const char *missing = !spec->task ? "a task id"
                        : needs_subject && !spec->subject ? "a subject"
                        : needs_subject && !s_utf8 (spec->subject) ? "a subject in UTF-8"
                        : !*sb_worker_job_tenant (*job_p) ? "a tenant" : NULL;
    if (!missing)
        return 0;
    snprintf (sentence, sizeof sentence, "%s needs %s", spec->op, missing);
    sb_worker_job_fail (job_p, sentence);
    return -1;
}

//  ---------------------------------------------------------------------------
//  The ops

static void
s_create (sb_task_role_t *self, sb_worker_job_t *job)
{
    if (s_check_job (&job, true))
        return;
    const sb_job_t *spec = sb_worker_job_spec (job);
    const char *problem = NULL;
    json_t *args = NULL, *inputs = NULL, *data = NULL;
    if (!spec->connector || !spec->tool || !s_utf8 (spec->connector) || !s_utf8 (spec->tool))
        problem = "task/create needs the connector and tool the task runs";
    else
    if (!(args = s_object (spec->args)))
        problem = "task/create: args must be a JSON object";
    else
    if (spec->inputs && !(inputs = s_object (spec->inputs)))
        problem = "task/create: inputs must be a JSON object";
    else
    if (!(data = s_object (spec->data)))
        problem = "task/create: data must be a JSON object with ttlMs, pollIntervalMs and runMs";
    json_int_t ttl = s_member_int (data, "ttlMs", 1, SB_MAX_TASK_TTL_MS);
    json_int_t poll = s_member_int (data, "pollIntervalMs", 1, SB_MAX_TASK_POLL_MS);
    json_int_t run = s_member_int (data, "runMs", 1, SB_MAX_TASK_RUN_MS);
    if (!problem && ttl < 0)
        problem = "task/create: ttlMs must be an integer from 1 to 86400000";
    else
    if (!problem && poll < 0)
        problem = "task/create: pollIntervalMs must be an integer from 1 to 3600000";
    else
    if (!problem && run < 0)
        problem = "task/create: runMs must be an integer from 1 to 600000";
    json_decref (args);
    json_decref (inputs);
    json_decref (data);
    if (problem) {
        sb_worker_job_fail (&job, problem);
        return;
    }
    char caps [16], round [16], ttl_text [16], poll_text [16], run_text [16];
    snprintf (caps, sizeof caps, "%u", spec->caps);
    snprintf (round, sizeof round, "%u", spec->round ? spec->round : 1);
    snprintf (ttl_text, sizeof ttl_text, "%lld", (long long) ttl);
    snprintf (poll_text, sizeof poll_text, "%lld", (long long) poll);
    snprintf (run_text, sizeof run_text, "%lld", (long long) run);
    const char *params [] = {
        sb_worker_job_tenant (job), spec->task, spec->subject, spec->connector, spec->tool,
        spec->args, spec->inputs ? spec->inputs : "{}", caps, round, ttl_text, poll_text, run_text
    };
    s_submit (self, job, S_OP_CREATE,
              "SELECT * FROM task_create ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
              12, params);
}

static void
s_get (sb_task_role_t *self, sb_worker_job_t *job)
{
    if (s_check_job (&job, true))
        return;
    const sb_job_t *spec = sb_worker_job_spec (job);
    const char *params [] = { sb_worker_job_tenant (job), spec->task, spec->subject };
    s_submit (self, job, S_OP_GET, "SELECT * FROM task_get ($1, $2, $3)", 3, params);
}

static void
s_cancel (sb_task_role_t *self, sb_worker_job_t *job)
{
    if (s_check_job (&job, true))
        return;
    const sb_job_t *spec = sb_worker_job_spec (job);
    const char *params [] = { sb_worker_job_tenant (job), spec->task, spec->subject };
    s_submit (self, job, S_OP_CANCEL, "SELECT task_cancel ($1, $2, $3)", 3, params);
}

static void
s_update (sb_task_role_t *self, sb_worker_job_t *job)
{
    if (s_check_job (&job, true))
        return;
    const sb_job_t *spec = sb_worker_job_spec (job);
    json_t *responses = s_object (spec->data);
    json_decref (responses);
    if (!responses) {
        sb_worker_job_fail (&job, "task/update: data must be the client's inputResponses, "
                                  "a JSON object");
        return;
    }
    const char *params [] = { sb_worker_job_tenant (job), spec->task, spec->subject, spec->data };
    s_submit (self, job, S_OP_UPDATE, "SELECT * FROM task_update ($1, $2, $3, $4)", 4, params);
}

//  The outcome `data` stands for, as the parameters of task_finish (texts
//  into `texts`, owned by the caller). Returns a sentence (static, or
//  written into `why`) when data is not an outcome, NULL when the
//  parameters are set.
static const char *
s_finish_params (const json_t *data, char *texts [4], char *round, size_t round_size,
                 const char **status_p, char *why, size_t why_size)
{
    const char *status = json_string_value (json_object_get (data, "status"));
    *status_p = status;
    if (!status)
        return "task/finish: data must be a JSON object with a status";
    if (strcmp (status, "completed") == 0) {
        json_t *result = json_object_get (data, "result");
        if (!json_is_object (result))
            return "task/finish: a completed task needs a result object";
        size_t size = 0;
        texts [0] = sb_json_dump (result, &size);
        if (texts [0] && size > SB_MAX_TASK_OUTCOME_SIZE) {
            //  Kept as failed: a task/get answer must fit in one payload.
            free (texts [0]);
            texts [0] = NULL;
            char message [160];
            snprintf (message, sizeof message, "The task's result was too large to keep "
                      "(%zu bytes; at most %d).", size, (int) SB_MAX_TASK_OUTCOME_SIZE);
            json_t *error = json_pack ("{s:i, s:s}", "code", -32603, "message", message);
            texts [1] = error ? sb_json_dump (error, NULL) : NULL;
            texts [2] = strdup (message);
            json_decref (error);
            *status_p = "failed";
            return texts [1] && texts [2] ? NULL : "out of memory";
        }
        return texts [0] ? NULL : "out of memory";
    }
    if (strcmp (status, "failed") == 0) {
        json_t *error = json_object_get (data, "error");
        json_t *code = json_object_get (error, "code");
        json_t *message = json_object_get (error, "message");
        if (!json_is_integer (code) || !json_is_string (message))
            return "task/finish: a failed task needs an error object with an integer code "
                   "and a string message";
        json_t *kept = json_pack ("{s:O, s:O}", "code", code, "message", message);
        if (kept && json_object_get (error, "data"))
            json_object_set (kept, "data", json_object_get (error, "data"));
        size_t size = 0;
        texts [1] = kept ? sb_json_dump (kept, &size) : NULL;
        json_decref (kept);
        if (texts [1] && size > SB_MAX_TASK_OUTCOME_SIZE)
            return "task/finish: the error is too large";
        texts [2] = strdup (json_string_value (message));
        return texts [1] && texts [2] ? NULL : "out of memory";
    }
    if (strcmp (status, "input_required") == 0) {
        json_t *requests = json_object_get (data, "inputRequests");
        //  The questions as the worker's input-required result had them
        //  (payload/sb_payload.h), which the gateway passed on.
        const char *problem = sb_payload_input_requests_check (requests);
        if (problem) {
            snprintf (why, why_size, "task/finish: %s", problem);
            return why;
        }
        json_t *inputs = json_object_get (data, "inputs");
        if (inputs && !json_is_object (inputs))
            return "task/finish: inputs must be an object of the answers kept";
        json_int_t number = s_member_int (data, "round", 1, SB_MAX_INPUT_ROUNDS);
        if (number < 0)
            return "task/finish: round must be an integer from 1 to 16";
        size_t size = 0;
        texts [3] = sb_json_dump (requests, &size);
        if (texts [3] && size > SB_MAX_TASK_OUTCOME_SIZE)
            return "task/finish: the inputRequests are too large";
        texts [0] = inputs ? sb_json_dump (inputs, NULL) : strdup ("{}");
        snprintf (round, round_size, "%lld", (long long) number);
        //  texts [0] carries the inputs here (task_finish's p_inputs)
        return texts [0] && texts [3] ? NULL : "out of memory";
    }
    return "task/finish: status must be completed, failed or input_required";
}

static void
s_finish (sb_task_role_t *self, sb_worker_job_t *job)
{
    if (s_check_job (&job, false))
        return;
    const sb_job_t *spec = sb_worker_job_spec (job);
    json_t *data = s_object (spec->data);
    char *texts [4] = { NULL, NULL, NULL, NULL };
    char round [16] = "";
    const char *status = NULL;
    char why [S_MAX_PROBLEM];
    const char *problem = data ? s_finish_params (data, texts, round, sizeof round, &status,
                                                  why, sizeof why)
                               : "task/finish: data must be a JSON object with a status";
    if (problem)
        sb_worker_job_fail (&job, problem);
    else {
        bool input_required = strcmp (status, "input_required") == 0;
        const char *params [] = {
            sb_worker_job_tenant (job), spec->task, status,
            input_required ? NULL : texts [0],      //  p_result
            texts [1],                              //  p_error
            texts [2],                              //  p_status_message
            texts [3],                              //  p_input_requests
            input_required ? texts [0] : NULL,      //  p_inputs
            input_required ? round : NULL,          //  p_round
        };
        s_submit (self, job, S_OP_FINISH,
                  "SELECT task_finish ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9, params);
    }
    for (int i = 0; i < 4; i++)
        free (texts [i]);
    json_decref (data);
}

static void
s_ping (sb_task_role_t *self, sb_worker_job_t *job)
{
    s_submit (self, job, S_OP_PING, "SELECT count(*) FROM schema_migrations", 0, NULL);
}

static void
s_start (void *state, sb_worker_job_t *job)
{
    sb_task_role_t *self = state;
    const char *op = sb_worker_job_spec (job)->op;
    sb_log_debug ("task_op", "op=%s tenant=%s", op, sb_worker_job_tenant (job));
    if (strcmp (op, "task/get") == 0)
        s_get (self, job);
    else
    if (strcmp (op, "task/create") == 0)
        s_create (self, job);
    else
    if (strcmp (op, "task/finish") == 0)
        s_finish (self, job);
    else
    if (strcmp (op, "task/update") == 0)
        s_update (self, job);
    else
    if (strcmp (op, "task/cancel") == 0)
        s_cancel (self, job);
    else
    if (strcmp (op, "ping") == 0)
        s_ping (self, job);
    else
        sb_worker_job_fail_unknown_op (&job);
}

static void
s_abandon (void *state, sb_worker_job_t *job)
{
    sb_task_role_t *self = state;
    sb_db_loop_job_abandon (self->db_loop, job);
}

const sb_worker_role_t sb_task_role = { s_start, s_abandon };

//  ---------------------------------------------------------------------------
//  The sweep of expired tasks

static void
s_on_sweep_result (const PGresult *res, const char *error, void *arg)
{
    sb_task_role_t *self = arg;
    self->sweeping = false;
    if (self->closing)
        return;
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1) {
        long long count = s_int_value (res, 0, 0);
        if (count > 0)
            sb_log_info ("tasks_swept", "deleted %lld expired tasks", count);
    }
    else
        sb_log_warn ("tasks_sweep_failed", "%s: trying again in %d ms",
                     error ? error : "unexpected rows", SB_TASK_SWEEP_MS);
}

static void
s_on_sweep_timer (sb_reactor_t *reactor, void *arg)
{
    sb_task_role_t *self = arg;
    sb_reactor_timer_set (self->reactor, self->sweep_timer,
                          sb_clock_mono_ms () + SB_TASK_SWEEP_MS);
    if (self->sweeping)
        return;                         //  the last one has not come back yet
    char limit [16];
    snprintf (limit, sizeof limit, "%d", SB_TASK_SWEEP_MAX);
    const char *params [] = { limit };
    //  Set first: the connection runs on at once and may call back already
    self->sweeping = true;
    if (sb_db_loop_query (self->db_loop, "SELECT task_sweep ($1)", 1, params,
                          s_on_sweep_result, self)) {
        self->sweeping = false;
        sb_log_warn ("tasks_sweep_failed", "the database queue is full: trying again in %d ms",
                     SB_TASK_SWEEP_MS);
    }
}

//  ---------------------------------------------------------------------------
//  Life cycle

sb_task_role_t *
sb_task_role_new (sb_worker_t *worker, const char *conninfo, const char *migrations_dir)
{
    if (!conninfo || !*conninfo) {
        sb_log_error ("db_missing", "--db (or SB_DATABASE_URL) is required with --role task");
        return NULL;
    }
    if (sb_db_prepare (conninfo, migrations_dir, SB_TASK_CONNECT_TIMEOUT_MS))
        return NULL;
    sb_task_role_t *self = calloc (1, sizeof (sb_task_role_t));
    if (!self)
        return NULL;
    self->worker = worker;
    self->reactor = sb_worker_reactor (worker);
    self->db_loop = sb_db_loop_new (self->reactor, conninfo);
    self->sweep_timer = sb_reactor_timer_new (self->reactor, s_on_sweep_timer, self);
    if (!self->db_loop || self->sweep_timer < 0) {
        sb_log_error ("task_init_failed", "cannot set up the database connection");
        sb_task_role_destroy (&self);
        return NULL;
    }
    //  The first sweep at once: tasks that expired while no worker ran go first.
    sb_reactor_timer_set (self->reactor, self->sweep_timer, sb_clock_mono_ms ());
    sb_log_info ("task_ready", "database migrated (%s)", migrations_dir);
    return self;
}

void
sb_task_role_destroy (sb_task_role_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_task_role_t *self = *self_p;
    self->closing = true;
    //  Jobs still waiting stay the worker's; the sweep's callback only cleans up
    sb_db_loop_destroy (&self->db_loop);
    if (self->reactor)
        sb_reactor_timer_free (self->reactor, self->sweep_timer);
    free (self);
    *self_p = NULL;
}
