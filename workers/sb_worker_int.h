/*  workers/sb_worker_int.h — what the worker core (sb_worker.c) shares with
    the settlement of 2026-07-28 questions (sb_inputs.c): the worker's and
    the job's structures and the core's sending helpers. Private to
    workers/: roles use sb_worker.h only. */
#ifndef SB_WORKER_INT_H_INCLUDED
#define SB_WORKER_INT_H_INCLUDED

#include <czmq.h>
#include <jansson.h>

#include "sb_worker.h"

struct _sb_worker_job_t {
    sb_worker_t *worker;                    /* owner */
    char corr_id [SB_MAX_CORR_ID_LEN + 1];  /* correlation ID from the JOB */
    char tenant [SB_MAX_TENANT_LEN + 1];    /* tenant the job runs for */
    uint32_t flags;                         /* SB_FLAG_* */
    uint32_t attempt;                       /* dispatch attempt */
    int64_t deadline_ms;                    /* monotonic deadline */
    sb_job_t spec;                          /* decoded payload */
    void *data;                             /* role's per-job state */
    bool started;                           /* handed to the role */
    uint32_t last_ask_id;                   /* ids of this job's asks count from 1 */
    struct {
        uint32_t id;                        /* 0 = free slot */
        sb_worker_answer_fn *on_answer;     /* callback */
        void *arg;                          /* its argument */
        char key [SB_MAX_INPUT_KEY_LEN + 1];/* 2026-07-28: its inputRequests key */
        char *request;                      /* 2026-07-28: open, the request to send back */
        char *answer;                       /* 2026-07-28: settled, the response to deliver */
    } asks [SB_MAX_ASKS_PER_JOB];           /* questions awaiting the client's answer */
    json_t *inputs;                         /* 2026-07-28: the client's answers, or NULL */
    json_t *used;                           /* 2026-07-28: keys answered from inputs */
    uint32_t delivered;                     /* 2026-07-28: answers delivered so far */
    bool queued;                            /* 2026-07-28: in the worker's settle list */
    bool promoted;                          /* the promote signal was sent */
};

/*  A request this worker sent to another service (sb_worker_request). */
typedef struct {
    int64_t id;                             /* the caller's handle, > 0 */
    char corr_id [SB_MAX_CORR_ID_LEN + 1];  /* the REQUEST's own corr_id */
    int64_t deadline_ms;                    /* deadline plus SB_WORKER_REQUEST_GRACE_MS */
    bool lost;                              /* the session it was sent on ended */
    sb_worker_reply_fn *on_reply;           /* called once, from the loop */
    void *arg;                              /* its argument */
} sb_worker_request_t;

struct _sb_worker_t {
    char *endpoint;                 /* broker backend endpoint */
    char service [SB_MAX_SERVICE_LEN + 1];  /* role name we serve */
    uint32_t credit;                /* jobs held at once */
    uint32_t heartbeat_ms;          /* our heartbeat interval */
    const sb_worker_role_t *role;   /* role callbacks */
    void *role_state;               /* role object */
    sb_reactor_t *reactor;          /* the event loop */
    zsock_t *sock;                  /* DEALER to the broker, NULL between sessions */
    int timer;                      /* core timer id */
    zhashx_t *jobs;                 /* corr_id → sb_worker_job_t * (not owned by the hash) */
    zlistx_t *settle;               /* corr_ids of 2026-07-28 jobs with questions to settle */
    int64_t earliest_ms;            /* no held job's deadline comes before this (a bound,
                                       made exact by each walk of the jobs; INT64_MAX: none) */
    int64_t last_recv_ms;           /* when the broker last spoke */
    int64_t next_heartbeat_ms;      /* when we send our next heartbeat */
    int64_t reconnect_ms;           /* when to open a new session (-1: in session) */
    uint32_t backoff_ms;            /* wait before the next reconnect */
    bool stopping;                  /* drain requested */
    bool registered_log;            /* "ready" event already logged */
    uint64_t malformed;             /* frames dropped as malformed */
    zhashx_t *requests;             /* corr_id → sb_worker_request_t * (owned) */
    int64_t last_request_id;        /* ids of requests count from 1 */
    int64_t requests_due_ms;        /* no pending request ends before this (INT64_MAX: none) */
    uint64_t replies_dropped;       /* REPLYs for no request of ours (cancelled, unknown) */
    sb_worker_usage_fn *on_usage;   /* USAGE handler (the quota service), NULL: none */
    void *usage_arg;                /* its argument */
    uint64_t usage_dropped;         /* USAGE received with no handler */
    uint64_t sessions;              /* sessions opened so far (sb_worker_sessions) */
};

/*  Sends RESULT(status, `json`) for `corr_id` (too large: failed). */
void sb_worker_send_result (sb_worker_t *self, const char *corr_id, sb_status_t status,
                            const char *json);

/*  Sends RESULT(status) with a failure whose error is `message`. */
void sb_worker_send_failed (sb_worker_t *self, const char *corr_id, sb_status_t status,
                            const char *message);

/*  Sends NOTIFY (ask_id 0) or ASK carrying `json` in a result map.
    Returns 0, or -1 when it could not be sent. */
int sb_worker_send_call_message (sb_worker_t *self, const char *corr_id, uint32_t ask_id,
                                 const char *json);

/*  Frees *job_p and what it holds (not its role state) and nulls it. */
void sb_worker_job_free (sb_worker_job_t **job_p);

#endif
