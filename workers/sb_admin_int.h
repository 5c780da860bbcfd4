/*  workers/sb_admin_int.h — what the admin API (sb_admin.c) lends the
    modules that serve some of its routes (sb_conn_admin.c, sb_wh_admin.c): its answers
    ({"error", "message"} refusals, JSON bodies, the relayed answer of an
    admin SQL function) and its checks of what a request names. Every
    function that checks answers the job itself when the check fails, so
    a handler reads as a straight line:

        if (sb_admin_tenant_check (&job, tenant))
            return;             //  answered 400
*/
#ifndef SB_ADMIN_INT_H_INCLUDED
#define SB_ADMIN_INT_H_INCLUDED

#include <jansson.h>

#include "sb_oauth_form.h"
#include "sb_token_int.h"

#define SB_ADMIN_MAX_MESSAGE    512     /* bytes of a formatted refusal's sentence */

/*  Ends the job with `status` and {"error": code, "message": message}. */
void sb_admin_refuse (sb_worker_job_t **job_p, int status, const char *code, const char *message);

/*  As sb_admin_refuse, the message formatted (at most
    SB_ADMIN_MAX_MESSAGE bytes; longer is cut). */
void sb_admin_refusef (sb_worker_job_t **job_p, int status, const char *code,
                       const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

/*  Ends the job with `status` and `doc` (taken) as its JSON body; a NULL
    `doc` (a failed json_pack) or one that cannot be written ends the job
    "failed" (out of memory). */
void sb_admin_json (sb_worker_job_t **job_p, int status, json_t *doc);

/*  A statement of an admin request failed: logs admin_failed with `what`
    (NULL: nothing) and why (`error`, or `res`'s message), and answers 500
    server_error, saying the token worker's log tells why. */
void sb_admin_db_failed (sb_worker_job_t **job_p, const char *what, const PGresult *res,
                         const char *error);

/*  An sb_token_query answer: relays an admin SQL function's answer,
    {"status", "body"}, as the response (anything else: 500 as
    sb_admin_db_failed). `arg`, static text or NULL, names the event
    written to the process log with the body on success, for what the
    audit log cannot keep (the body never holds a secret). */
void sb_admin_on_answer (sb_worker_job_t **job_p, const PGresult *res, const char *error,
                         void *arg);

/*  Checks a tenant id as tenants' CHECK takes it, ^[a-z0-9][a-z0-9_-]{0,62}$.
    Returns 0, or -1 having answered 400. */
int sb_admin_tenant_check (sb_worker_job_t **job_p, const char *id)
    SB_MUST_USE;

/*  Reads the query parameter `name` whose text is `text` (NULL: absent)
    as a whole number from 1 to `max`. Returns 0 with *value (`fallback`
    when absent), or -1 having answered 400. */
int sb_admin_query_count (sb_worker_job_t **job_p, const char *name, const char *text,
                          long long fallback, long long max, long long *value)
    SB_MUST_USE;

/*  The webhook routes (sb_wh_admin.c, docs/ADMIN.md "Webhooks"): serves
    an admin/http job whose method and path sb_admin.c matched to one of
    tenants/{id}/webhooks, webhooks/{id}[/rotate|/disable|/enable],
    tenants/{id}/subscriptions, subscriptions/{id}[/enable],
    tenants/{id}/dead-letters[/replay], deliveries/{id}/replay|attempts,
    tenants/{id}/events. `http`, `segments` (`count` decoded path segments
    after /admin/) and `query` (NULL when none) are borrowed for the call;
    the query is checked here. Ends the job now or later. */
void sb_wh_admin_http (sb_token_role_t *self, sb_worker_job_t *job,
                       const sb_http_request_t *http, char *const *segments, size_t count,
                       const sb_oauth_form_t *query);

#endif
