/*  workers/sb_api.c — the api role (see sb_api.h).

    Each tools/call job owns one s_call_t: its rendered request, one curl
    easy handle (reused across retries), the headers and the response
    buffer. The multi handle is shared by all calls, so connections to an
    upstream stay open and are reused between jobs (keep-alive). A call is
    in one of two states: transferring (easy handle in the multi) or
    waiting to retry (retry_at set, handle out of the multi) — and, for a
    tool that needs confirmation (destructiveHint, "confirm"), first
    waiting for the user's answer to an elicitation (ask_id set).

    A call of a tool that may become a task (taskSupport optional or
    required) sends the promote signal when its upstream request is still
    running --task-promote-ms after its first attempt started (promote_at,
    one reactor timer for the nearest); the gateway decides whether the
    call becomes a task, and the call goes on the same either way.

    Every mapped result of a tool with an outputSchema is checked against
    it; a mismatch is answered as an isError result, never passed on.

    A connector whose credential is each tenant's (auth.credential
    `tenant`) first gets the calling tenant's credential (sb_api_creds: a
    cache, else one worker request to the token service shared by every
    call waiting for it) and renders the request against the base URL its
    vars make. An upstream 401 with such a credential asks again with
    `stale` and retries the call once. No connection: an isError result
    with the link to connect — or, for a client that takes URL-mode
    elicitation, the link as a question, then a poll of the credential
    every SB_API_CONNECT_POLL_MS until the connection is made (the call
    then runs) or the job's time runs short. */
#include "sb_api.h"
#include "sb_api_creds.h"
#include "sb_crypto.h"
#include "sb_json.h"
#include "sb_clock.h"
#include "sb_curl_loop.h"
#include "sb_connector.h"
#include "sb_log.h"
#include "sb_payload.h"
#include "sb_text.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct _s_call_t s_call_t;

struct _sb_api_t {
    sb_worker_t *worker;            /* our worker (borrowed) */
    sb_reactor_t *reactor;          /* its loop (borrowed) */
    sb_connectors_t *connectors;    /* loaded connector definitions (one reference) */
    char *connectors_dir;           /* the folder, re-read by sb_api_reload */
    char *connector_urls;           /* base-URL overrides applied to every load */
    sb_curl_loop_t *curl;           /* the multi handle on our reactor */
    CURLM *multi;                   /* its multi handle: all transfers, the connection cache */
    int retry_timer;                /* reactor timer for the nearest retry */
    int promote_timer;              /* reactor timer for the nearest promote signal */
    int64_t promote_due;            /* when it is set to fire, -1: not set */
    uint32_t promote_ms;            /* --task-promote-ms */
    zlistx_t *calls;                /* every live s_call_t (owned via their jobs) */
    const sb_api_builtins_t *builtins;  /* runners of builtin tools, or NULL (borrowed) */
    void *builtin_state;            /* their state, when builtins is set */
    CURL *idle [SB_API_IDLE_HANDLES];   /* finished transfer handles, reset, for reuse */
    size_t idle_count;
    sb_api_creds_t *creds;          /* tenants' credentials (sb_api_creds.h) */
};

struct _s_call_t {
    sb_api_t *api;                  /* owner */
    sb_worker_job_t *job;           /* the job this call answers */
    void *handle;                   /* our item in api->calls */
    sb_connectors_t *set;           /* a reference to the set tool and connector belong to */
    const sb_tool_t *tool;          /* tool being run (borrowed from set) */
    const sb_connector_t *connector;/* its connector (borrowed from set) */
    sb_upstream_req_t req;          /* rendered request */
    CURL *easy;                     /* transfer handle */
    struct curl_slist *headers;     /* request headers */
    bool in_multi;                  /* easy handle is in api->multi */
    bool retry_safe;                /* request may be sent again */
    int attempt;                    /* attempts started so far */
    int64_t retry_at;               /* monotonic time of the next attempt, -1: none */
    int64_t promote_at;             /* when to send the promote signal, -1: never or sent */
    char *body;                     /* response so far */
    size_t body_len;                /* bytes in body */
    size_t body_alloc;              /* bytes allocated */
    size_t body_cap;                /* most bytes accepted */
    bool too_large;                 /* the cap was hit */
    int ask_id;                     /* confirmation asked, answer pending (> 0) */
    const char *confirmation;       /* _meta.confirmation of the result, or NULL */
    char *not_asked;                /* why the client could not be asked, or NULL */
    char errbuf [CURL_ERROR_SIZE];  /* curl's error text */
    json_t *args;                   /* the arguments (checked), owned */
    sb_api_creds_wait_t *cred_wait; /* waiting for the token service, or NULL */
    uint64_t cred_version;          /* version of the tenant credential sent, 0: none */
    bool reauthed;                  /* asked again after an upstream 401 */
    bool polling;                   /* the user is connecting: retry_at is the next poll */
    int connect_ask;                /* the URL elicitation asked, answer pending (> 0) */
    sb_cred_state_t connect_state;  /* missing or broken, while connecting */
    char *connect_url;              /* where to connect, or NULL */
    char *connect_detail;           /* the token service's sentence, or NULL */
};

//  ---------------------------------------------------------------------
//  Results

static char *
s_dump (json_t *value)
{
    char *text = value ? json_dumps (value, JSON_COMPACT) : NULL;
    json_decref (value);
    return text;
}

//  A CallToolResult with isError true, a sentence for a person and _meta.
static json_t *
s_error_json (const char *error_type, const char *text, long upstream_status)
{
    json_t *meta = json_pack ("{s:s}", "error_type", error_type);
    if (meta && upstream_status > 0)
        json_object_set_new (meta, "upstream_status", json_integer (upstream_status));
    return json_pack ("{s:[{s:s,s:s}],s:b,s:o}",
                      "content", "type", "text", "text", text,
                      "isError", 1, "_meta", meta ? meta : json_object ());
}

static char *
s_error_result (const char *error_type, const char *text, long upstream_status)
{
    return s_dump (s_error_json (error_type, text, upstream_status));
}

static void
s_answer_ok (sb_worker_job_t **job_p, char *json)
{
    if (json)
        sb_worker_job_done (job_p, SB_STATUS_OK, json);
    else
        sb_worker_job_fail (job_p, "could not build the result");
    free (json);
}

//  The display name at the start of a sentence ("The CRM").
static void
s_capitalise (char *text)
{
    if (text [0] >= 'a' && text [0] <= 'z')
        text [0] = (char) (text [0] - 'a' + 'A');
}

//  ---------------------------------------------------------------------
//  Calls

static void s_call_credential (s_call_t *call, uint64_t stale);
static void s_call_run (s_call_t *call, const sb_cred_t *cred);

//  Frees the request headers, wiping them first (one holds the credential).
static void
s_headers_free (s_call_t *call)
{
    for (struct curl_slist *item = call->headers; item; item = item->next)
        sb_crypto_wipe (item->data, strlen (item->data));
    curl_slist_free_all (call->headers);
    call->headers = NULL;
}

static void
s_call_destroy (s_call_t **call_p)
{
    s_call_t *call = *call_p;
    if (!call)
        return;
    if (call->easy) {
        sb_api_t *api = call->api;
        if (call->in_multi)
            curl_multi_remove_handle (api->multi, call->easy);
        //  Kept for the next call: reset drops every option (URL, headers,
        //  this call's pointers) and keeps nothing of the call's but the
        //  multi handle's connection cache, which holds no request data.
        if (api->idle_count < SB_API_IDLE_HANDLES) {
            curl_easy_reset (call->easy);
            api->idle [api->idle_count++] = call->easy;
        }
        else
            curl_easy_cleanup (call->easy);
    }
    if (call->handle)
        zlistx_delete (call->api->calls, call->handle);
    sb_api_creds_cancel (call->api->creds, &call->cred_wait);
    s_headers_free (call);
    sb_upstream_req_clear (&call->req);
    free (call->body);
    free (call->not_asked);
    json_decref (call->args);
    free (call->connect_url);
    free (call->connect_detail);
    sb_connectors_destroy (&call->set);     //  the last call on a replaced set frees it
    free (call);
    *call_p = NULL;
}

//  Adds what the user was asked, if anything, to the result's _meta.
static void
s_note_confirmation (s_call_t *call, json_t *result)
{
    if (!call->confirmation || !json_is_object (result))
        return;
    json_t *meta = json_object_get (result, "_meta");
    if (!json_is_object (meta)) {
        meta = json_object ();
        json_object_set_new (result, "_meta", meta);
    }
    json_object_set_new (meta, "confirmation", json_string (call->confirmation));
    if (call->not_asked)
        json_object_set_new (meta, "confirmation_note", json_string (call->not_asked));
}

//  Checks a mapped result against the tool's outputSchema; a result that
//  breaks the contract is replaced by an isError result naming the problem.
static json_t *
s_check_output (s_call_t *call, json_t *result, long status)
{
    if (!result || json_is_true (json_object_get (result, "isError")))
        return result;
    char *error = NULL;
    if (sb_tool_check_output (call->tool, json_object_get (result, "structuredContent"), &error) == 0)
        return result;
    sb_log_warn ("output_mismatch", "corr_id=%s tool=%s: %s", sb_worker_job_corr_id (call->job),
                 sb_tool_name (call->tool), error ? error : "no detail");
    char text [768];
    snprintf (text, sizeof text,
              "%s answered, but the data does not match what the tool %s promises (%.300s), so it "
              "was not passed on. This is a problem in the connector, not in your request.",
              sb_connector_display_name (call->connector),
              sb_tool_name (call->tool), error ? error : "outputSchema mismatch");
    if (text [0] >= 'a' && text [0] <= 'z')
        text [0] = (char) (text [0] - 'a' + 'A');   // "the CRM answered" starts a sentence
    free (error);
    json_decref (result);
    return s_error_json ("output_mismatch", text, status);
}

//  Ends the job with `json` (taken) as an OK result and frees the call.
static void
s_call_finish (s_call_t *call, char *json)
{
    sb_worker_job_t *job = call->job;
    sb_worker_job_set_data (job, NULL);
    s_call_destroy (&call);
    s_answer_ok (&job, json);
}

static size_t
s_on_write (char *data, size_t size, size_t nmemb, void *arg)
{
    s_call_t *call = arg;
    size_t bytes = size * nmemb;
    if (bytes > call->body_cap - call->body_len) {
        call->too_large = true;
        return 0;                   // curl aborts with CURLE_WRITE_ERROR
    }
    if (call->body_len + bytes + 1 > call->body_alloc) {
        size_t want = call->body_alloc ? call->body_alloc : 16384;
        while (want < call->body_len + bytes + 1)
            want *= 2;
        if (want > call->body_cap + 1)
            want = call->body_cap + 1;
        char *grown = realloc (call->body, want);
        if (!grown)
            return 0;
        call->body = grown;
        call->body_alloc = want;
    }
    memcpy (call->body + call->body_len, data, bytes);
    call->body_len += bytes;
    call->body [call->body_len] = 0;
    return bytes;
}

//  Sets up the transfer of the rendered request with `auth`, the
//  credential's header value (borrowed), or NULL: the connector's shared
//  one. Again after a 401, with the new credential.
static int
s_call_prepare (s_call_t *call, const char *tenant_auth)
{
    sb_api_t *api = call->api;
    if (!call->easy)
        call->easy = api->idle_count? api->idle [--api->idle_count]: curl_easy_init ();
    CURL *easy = call->easy;
    if (!easy)
        return -1;
    s_headers_free (call);
    const char *method = call->req.method;
    call->headers = curl_slist_append (call->headers, "Accept: application/json");
    call->headers = curl_slist_append (call->headers, "User-Agent: switchboard/0.1");
    call->headers = curl_slist_append (call->headers, "Expect:");
    if (call->req.body)
        call->headers = curl_slist_append (call->headers, "Content-Type: application/json");
    //  The credential goes under the header its scheme names: Authorization
    //  for bearer, the connector's own (X-API-Key…) for api_key_header.
    char *auth = tenant_auth ? strdup (tenant_auth) : sb_connector_auth_header (call->connector);
    const char *auth_name = sb_connector_auth_header_name (call->connector);
    if (auth && auth_name) {
        size_t size = strlen (auth_name) + strlen (auth) + 3;
        char *line = malloc (size);
        if (line) {
            snprintf (line, size, "%s: %s", auth_name, auth);
            call->headers = curl_slist_append (call->headers, line);
            explicit_bzero (line, size);
            free (line);
        }
    }
    if (auth) {
        sb_crypto_wipe (auth, strlen (auth));
        free (auth);
    }
    if (!call->headers)
        return -1;

    curl_easy_setopt (easy, CURLOPT_URL, call->req.url);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_write);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt (easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) call->body_cap);
    if (strcmp (method, "GET") == 0)
        curl_easy_setopt (easy, CURLOPT_HTTPGET, 1L);
    else {
        curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt (easy, CURLOPT_POSTFIELDS, call->req.body ? call->req.body : "");
        curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE,
                          (curl_off_t) (call->req.body ? strlen (call->req.body) : 0));
    }
    return 0;
}

static void
s_arm_promote_timer (sb_api_t *self)
{
    int64_t due = -1;
    for (s_call_t *call = zlistx_first (self->calls); call; call = zlistx_next (self->calls))
        if (call->promote_at >= 0 && (due < 0 || call->promote_at < due))
            due = call->promote_at;
    self->promote_due = due;
    sb_reactor_timer_set (self->reactor, self->promote_timer, due);
}

//  Calls whose upstream request has run --task-promote-ms: the promote
//  signal, once (the call itself goes on).
static void
s_on_promote_timer (sb_reactor_t *reactor, void *arg)
{
    sb_api_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    for (s_call_t *call = zlistx_first (self->calls); call; call = zlistx_next (self->calls)) {
        if (call->promote_at < 0 || call->promote_at > now)
            continue;
        call->promote_at = -1;
        if (sb_worker_job_promote (call->job))
            sb_log_warn ("promote_failed", "corr_id=%s tool=%s", sb_worker_job_corr_id (call->job),
                         sb_tool_name (call->tool));
        else
            sb_log_debug ("call_promoted", "corr_id=%s tool=%s after %u ms",
                          sb_worker_job_corr_id (call->job), sb_tool_name (call->tool),
                          self->promote_ms);
    }
    s_arm_promote_timer (self);
}

//  Starts (or restarts) the transfer with the time the job has left.
static int
s_call_start (s_call_t *call)
{
    int64_t left = sb_clock_left_ms (sb_worker_job_deadline (call->job));
    long timeout = sb_connector_timeout_ms (call->connector);
    if (timeout <= 0 || timeout > left)
        timeout = (long) left;
    if (timeout <= 0)
        timeout = 1;
    call->body_len = 0;
    call->too_large = false;
    call->errbuf [0] = 0;
    call->retry_at = -1;
    call->attempt++;
    if (call->attempt == 1 && sb_tool_task_support (call->tool) != SB_TASK_FORBIDDEN) {
        //  Every call waits the same promote_ms, so a new one is never due
        //  before those already waiting: the timer changes only when unset.
        call->promote_at = sb_clock_mono_ms () + call->api->promote_ms;
        if (call->api->promote_due < 0) {
            call->api->promote_due = call->promote_at;
            sb_reactor_timer_set (call->api->reactor, call->api->promote_timer, call->promote_at);
        }
    }
    curl_easy_setopt (call->easy, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt (call->easy, CURLOPT_CONNECTTIMEOUT_MS,
                      timeout < SB_API_CONNECT_TIMEOUT_MS ? timeout : SB_API_CONNECT_TIMEOUT_MS);
    if (curl_multi_add_handle (call->api->multi, call->easy) != CURLM_OK)
        return -1;
    call->in_multi = true;
    return 0;
}

static void
s_arm_retry_timer (sb_api_t *self)
{
    int64_t due = -1;
    for (s_call_t *call = zlistx_first (self->calls); call; call = zlistx_next (self->calls))
        if (call->retry_at >= 0 && (due < 0 || call->retry_at < due))
            due = call->retry_at;
    sb_reactor_timer_set (self->reactor, self->retry_timer, due);
}

//  Schedules another attempt if the request allows it and time remains.
//  Returns true when a retry was scheduled.
static bool
s_call_retry (s_call_t *call, long retry_after_s)
{
    if (call->attempt >= SB_API_MAX_ATTEMPTS)
        return false;
    int64_t backoff = SB_API_BACKOFF_BASE_MS << (call->attempt - 1);
    if (backoff > SB_API_BACKOFF_MAX_MS)
        backoff = SB_API_BACKOFF_MAX_MS;
    //  Equal jitter: half fixed, half random, so retries from many jobs spread out
    int64_t wait = backoff / 2 + arc4random_uniform ((uint32_t) (backoff / 2) + 1);
    if (retry_after_s > 0 && retry_after_s * 1000 > wait)
        wait = retry_after_s * 1000;
    int64_t now = sb_clock_mono_ms ();
    if (now + wait + SB_API_MIN_ATTEMPT_MS >= sb_worker_job_deadline (call->job))
        return false;
    call->retry_at = now + wait;
    sb_log_info ("upstream_retry", "corr_id=%s tool=%s attempt=%d in %lld ms",
                 sb_worker_job_corr_id (call->job), sb_tool_name (call->tool),
                 call->attempt + 1, (long long) wait);
    s_arm_retry_timer (call->api);
    return true;
}

static bool
s_is_connect_error (CURLcode code)
{
    return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST
        || code == CURLE_COULDNT_RESOLVE_PROXY;
}

//  A transfer ended: retry, or answer the job.
static void
s_call_done (s_call_t *call, CURLcode code)
{
    curl_multi_remove_handle (call->api->multi, call->easy);
    call->in_multi = false;
    long status = 0;
    curl_easy_getinfo (call->easy, CURLINFO_RESPONSE_CODE, &status);
    const char *name = sb_connector_name (call->connector);
    char text [512];

    if (code == CURLE_OK && status == 401 && call->cred_version > 0) {
        const char *tenant = sb_worker_job_tenant (call->job);
        if (!call->reauthed) {
            //  Refused (revoked, expired early): drop it, ask for a newer
            //  one and send the call once more with it.
            call->reauthed = true;
            sb_log_info ("upstream_refused_credential", "corr_id=%s tenant=%s connector=%s "
                         "version=%llu: asking again", sb_worker_job_corr_id (call->job), tenant,
                         name, (unsigned long long) call->cred_version);
            sb_api_creds_evict (call->api->creds, tenant, name, call->cred_version);
            s_call_credential (call, call->cred_version);
            return;
        }
        sb_log_warn ("upstream_refused_credential", "corr_id=%s tenant=%s connector=%s "
                     "version=%llu: again after asking anew", sb_worker_job_corr_id (call->job),
                     tenant, name, (unsigned long long) call->cred_version);
        sb_api_creds_evict (call->api->creds, tenant, name, call->cred_version);
        snprintf (text, sizeof text, "%s refused the connection's credentials, also after they were "
                  "renewed. Connect your account again, then ask again.",
                  sb_connector_display_name (call->connector));
        s_capitalise (text);
        s_call_finish (call, s_error_result ("connection_refused", text, status));
        return;
    }
    if (code == CURLE_OK) {
        bool transient = status == 429 || status == 502 || status == 503 || status == 504;
        if (transient && call->retry_safe) {
            curl_off_t retry_after = 0;
            curl_easy_getinfo (call->easy, CURLINFO_RETRY_AFTER, &retry_after);
            if (s_call_retry (call, (long) retry_after))
                return;
        }
        json_t *result = sb_tool_map_result (call->tool, status, call->body ? call->body : "",
                                             call->body_len);
        result = s_check_output (call, result, status);
        s_note_confirmation (call, result);
        sb_log_debug ("upstream_done", "corr_id=%s tool=%s status=%ld bytes=%zu attempts=%d",
                      sb_worker_job_corr_id (call->job), sb_tool_name (call->tool),
                      status, call->body_len, call->attempt);
        char *printed = result? sb_tool_result_text (result)
                      : s_error_result ("upstream_error", "The upstream answer could not be read.", status);
        json_decref (result);
        s_call_finish (call, printed);
        return;
    }
    if (call->too_large || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf (text, sizeof text,
                  "%s returned more data than switchboard accepts (over %zu bytes). "
                  "Try a narrower request, for example with a smaller limit.",
                  name, call->body_cap);
        s_call_finish (call, s_error_result ("response_too_large", text, status));
        return;
    }
    if (s_is_connect_error (code) && s_call_retry (call, 0))
        return;       // never reached the upstream: safe to send again
    if (sb_clock_left_ms (sb_worker_job_deadline (call->job)) == 0) {
        s_call_finish (call, NULL);     // the job's deadline cut the transfer: nothing to say
        return;
    }

    sb_log_warn ("upstream_failed", "corr_id=%s tool=%s curl=%d (%s)",
                 sb_worker_job_corr_id (call->job), sb_tool_name (call->tool), (int) code,
                 call->errbuf [0] ? call->errbuf : curl_easy_strerror (code));
    if (code == CURLE_OPERATION_TIMEDOUT) {
        snprintf (text, sizeof text,
                  "%s did not answer in time, so the request was given up. Please try again later.", name);
        s_call_finish (call, s_error_result ("upstream_timeout", text, 0));
    }
    else {
        snprintf (text, sizeof text,
                  "%s could not be reached right now (%s). Please try again later.",
                  name, curl_easy_strerror (code));
        s_call_finish (call, s_error_result ("upstream_unreachable", text, 0));
    }
}

//  A transfer ended (sb_curl_loop): its call goes on, or a handle no call
//  owns any more is dropped from the multi.
static void
s_on_curl_done (CURL *easy, CURLcode code, void *arg)
{
    sb_api_t *self = arg;
    s_call_t *call = NULL;
    curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &call);
    if (call)
        s_call_done (call, code);
    else
        curl_multi_remove_handle (self->multi, easy);
}

static void
s_on_retry_timer (sb_reactor_t *reactor, void *arg)
{
    sb_api_t *self = arg;
    int64_t now = sb_clock_mono_ms ();
    zlistx_t *due = zlistx_new ();
    for (s_call_t *call = zlistx_first (self->calls); call; call = zlistx_next (self->calls))
        if (call->retry_at >= 0 && call->retry_at <= now && due)
            zlistx_add_end (due, call);
    for (s_call_t *call = due ? zlistx_first (due) : NULL; call; call = zlistx_next (due)) {
        if (call->polling) {
            //  The user is connecting: is the connection made?
            call->retry_at = -1;
            s_call_credential (call, 0);
            continue;
        }
        if (s_call_start (call)) {
            char text [256];
            snprintf (text, sizeof text, "%s could not be called (internal error). Please try again.",
                      sb_connector_name (call->connector));
            s_call_finish (call, s_error_result ("internal_error", text, 0));
        }
    }
    zlistx_destroy (&due);
    s_arm_retry_timer (self);
}

//  ---------------------------------------------------------------------
//  Confirmation by elicitation (destructive or "confirm" tools)

//  Starts the upstream transfer of a call that was held for confirmation.
static void
s_call_go (s_call_t *call)
{
    if (s_call_start (call)) {
        char text [256];
        snprintf (text, sizeof text, "%s could not be called (internal error). Please try again.",
                  sb_connector_name (call->connector));
        s_call_finish (call, s_error_result ("internal_error", text, 0));
        return;
    }
    sb_log_debug ("upstream_start", "corr_id=%s tool=%s %s %s", sb_worker_job_corr_id (call->job),
                  sb_tool_name (call->tool), call->req.method, call->req.url);
}

//  Nothing was done: the user said no or dismissed the question. Not an
//  error for a tool without outputSchema (the model should not retry and
//  ask again); an isError result otherwise, as a result without
//  structuredContent would break the tool's contract.
static void
s_call_declined (s_call_t *call, const char *action)
{
    char text [512];
    const char *what = sb_tool_title (call->tool);
    const char *where = sb_connector_display_name (call->connector);
    if (strcmp (action, "cancel") == 0)
        snprintf (text, sizeof text, "Nothing was done: the confirmation for \"%s\" in %s was "
                  "dismissed without an answer.", what, where);
    else
        snprintf (text, sizeof text, "Nothing was done: the user did not confirm \"%s\" in %s.",
                  what, where);
    call->confirmation = strcmp (action, "cancel") == 0 ? "cancelled" : "declined";
    json_t *result = sb_tool_output_schema (call->tool)
                   ? s_error_json ("not_confirmed", text, 0)
                   : json_pack ("{s:[{s:s,s:s}]}", "content", "type", "text", "text", text);
    s_note_confirmation (call, result);
    sb_log_info ("call_not_confirmed", "corr_id=%s tool=%s action=%s",
                 sb_worker_job_corr_id (call->job), sb_tool_name (call->tool), action);
    s_call_finish (call, s_dump (result));
}

//  The client's response to the confirmation question.
static void
s_on_confirm (sb_worker_job_t *job, const char *response_json, void *arg)
{
    s_call_t *call = arg;
    call->ask_id = 0;
    json_t *result = NULL, *error = NULL;
    const char *why = NULL;
    if (sb_payload_answer_decode (response_json, response_json ? strlen (response_json) : 0,
                                  &result, &error, &why) == 0 && !json_is_object (result)) {
        json_decref (result);
        result = NULL;
    }
    if (!result) {
        //  The client cannot be asked (no elicitation capability, no stream):
        //  it has its own confirmations; go ahead and say so in _meta.
        const char *message = error ? json_string_value (json_object_get (error, "message")) : why;
        call->confirmation = "not_asked";
        call->not_asked = strdup (message ? message : "the client gave no answer");
        sb_log_info ("confirmation_not_asked", "corr_id=%s tool=%s: %s",
                     sb_worker_job_corr_id (job), sb_tool_name (call->tool),
                     call->not_asked ? call->not_asked : "");
        json_decref (error);
        s_call_go (call);
        return;
    }
    const char *action = json_string_value (json_object_get (result, "action"));
    json_t *confirm = json_object_get (json_object_get (result, "content"), "confirm");
    if (action && strcmp (action, "accept") == 0 && json_is_true (confirm)) {
        call->confirmation = "accepted";
        json_decref (result);
        s_call_go (call);
        return;
    }
    s_call_declined (call, action && strcmp (action, "cancel") == 0 ? "cancel" : "decline");
    json_decref (result);
}

//  Asks the user to confirm the call (form elicitation, one boolean).
//  Returns 0, or -1 when the question could not be sent.
static int
s_call_ask (s_call_t *call)
{
    char *message = sb_tool_confirm_message (call->tool, call->args);
    json_t *request = message ? json_pack (
        "{s:s, s:{s:s, s:s, s:{s:s, s:{s:{s:s, s:s, s:s, s:b}}, s:[s]}}}",
        "method", "elicitation/create",
        "params", "mode", "form", "message", message,
        "requestedSchema", "type", "object", "properties", "confirm",
        "type", "boolean", "title", "Confirm",
        "description", "Yes to go ahead; no and nothing is done.", "default", 0,
        "required", "confirm") : NULL;
    free (message);
    char *text = s_dump (request);
    int id = text ? sb_worker_job_ask (call->job, text, s_on_confirm, call) : -1;
    free (text);
    if (id < 0)
        return -1;
    call->ask_id = id;
    sb_log_debug ("confirmation_asked", "corr_id=%s tool=%s ask=%d",
                  sb_worker_job_corr_id (call->job), sb_tool_name (call->tool), id);
    return 0;
}

//  ---------------------------------------------------------------------
//  Running a call, with the tenant's credential when the connector needs it

//  Ends the job as failed (no result for the client) and frees the call.
static void
s_call_fail (s_call_t *call, const char *why)
{
    sb_worker_job_t *job = call->job;
    sb_worker_job_set_data (job, NULL);
    s_call_destroy (&call);
    sb_worker_job_fail (&job, why);
}

//  An isError result about the connection: `error_type`, the sentence,
//  and in _meta the link to connect and when to try again (when known).
static char *
s_conn_error (const char *error_type, const char *text, const char *connect_url,
              uint32_t retry_after_s)
{
    json_t *result = s_error_json (error_type, text, 0);
    json_t *meta = json_object_get (result, "_meta");
    if (json_is_object (meta) && connect_url)
        json_object_set_new (meta, "connect_url", json_string (connect_url));
    if (json_is_object (meta) && retry_after_s)
        json_object_set_new (meta, "retry_after", json_integer (retry_after_s));
    return s_dump (result);
}

//  No usable connection, and no question to ask about it: the sentence
//  that says what to do, the link in _meta.
static void
s_call_connect_required (s_call_t *call, sb_cred_state_t state, const char *detail,
                         const char *connect_url, const char *note)
{
    const char *where = sb_connector_display_name (call->connector);
    char text [1024];
    if (state == SB_CRED_BROKEN && connect_url)
        snprintf (text, sizeof text, "The connection to %s no longer works%s%.300s%s. Connect your "
                  "account again: %s — then ask again.%s", where, detail ? " (" : "",
                  detail ? detail : "", detail ? ")" : "", connect_url, note ? note : "");
    else
    if (state == SB_CRED_BROKEN)
        snprintf (text, sizeof text, "The connection to %s no longer works%s%.300s%s. An "
                  "administrator needs to add a new API key for it (sb-admin connections add-key).",
                  where, detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
    else
    if (connect_url)
        snprintf (text, sizeof text, "To use %s, connect your account: %s — then ask again.%s",
                  where, connect_url, note ? note : "");
    else
        snprintf (text, sizeof text, "To use %s, this account needs its API key for it: an "
                  "administrator adds it (sb-admin connections add-key), then ask again.", where);
    sb_log_info ("connection_required", "corr_id=%s tenant=%s connector=%s state=%s",
                 sb_worker_job_corr_id (call->job), sb_worker_job_tenant (call->job),
                 sb_connector_name (call->connector), state == SB_CRED_BROKEN ? "broken" : "missing");
    s_call_finish (call, s_conn_error (state == SB_CRED_BROKEN ? "connection_broken"
                                                                : "connection_required",
                                       text, connect_url, 0));
}

//  Renders the request (against the base URL `cred`'s vars make, or the
//  connector's own when `cred` is NULL: the shared credential), sets up the
//  transfer with the credential and starts it, or first asks the user to
//  confirm a tool that needs it.
static void
s_call_run (s_call_t *call, const sb_cred_t *cred)
{
    char text [512];
    char *error = NULL;
    char *auth = NULL;
    int rc;
    sb_upstream_req_clear (&call->req);
    if (cred) {
        char *base = sb_connector_base_url_for (call->connector, cred->vars);
        if (!base) {
            //  The provider's answer lacked what the address is made of
            sb_log_warn ("connection_vars_bad", "corr_id=%s tenant=%s connector=%s version=%llu",
                         sb_worker_job_corr_id (call->job), sb_worker_job_tenant (call->job),
                         sb_connector_name (call->connector), (unsigned long long) cred->version);
            sb_api_creds_evict (call->api->creds, sb_worker_job_tenant (call->job),
                                sb_connector_name (call->connector), cred->version);
            s_call_connect_required (call, SB_CRED_BROKEN, "its address is missing from what the "
                                     "provider gave", NULL, NULL);
            return;
        }
        rc = sb_tool_render_at (call->tool, base, call->args, &call->req, &error);
        free (base);
        auth = sb_connector_auth_value (call->connector, cred->secret);
        call->cred_version = cred->version;
    }
    else
        rc = sb_tool_render (call->tool, call->args, &call->req, &error);
    if (rc) {
        snprintf (text, sizeof text, "The arguments for %s were not accepted: %s",
                  sb_tool_name (call->tool), error ? error : "invalid arguments");
        free (error);
        if (auth) {
            sb_crypto_wipe (auth, strlen (auth));
            free (auth);
        }
        s_call_finish (call, s_error_result ("invalid_arguments", text, 0));
        return;
    }
    if (cred && !auth && sb_connector_auth_header_name (call->connector)) {
        //  A secret with CR/LF: nothing we could send
        s_call_connect_required (call, SB_CRED_BROKEN, "its credential cannot be sent", NULL, NULL);
        return;
    }
    rc = s_call_prepare (call, auth);
    if (auth) {
        sb_crypto_wipe (auth, strlen (auth));
        free (auth);
    }
    if (rc) {
        s_call_fail (call, "could not start the upstream request");
        return;
    }
    if (sb_tool_needs_confirmation (call->tool) && !call->confirmation) {
        //  Nothing is sent upstream until the user says yes (s_on_confirm).
        if (s_call_ask (call)) {
            snprintf (text, sizeof text, "Nothing was done: %s needs your confirmation, and the "
                      "question could not be sent. Please try again.", sb_tool_name (call->tool));
            s_call_finish (call, s_error_result ("internal_error", text, 0));
        }
        return;
    }
    if (s_call_start (call)) {
        s_call_fail (call, "could not start the upstream request");
        return;
    }
    sb_log_debug ("upstream_start", "corr_id=%s tool=%s %s %s", sb_worker_job_corr_id (call->job),
                  sb_tool_name (call->tool), call->req.method, call->req.url);
}

//  Waits SB_API_CONNECT_POLL_MS before asking for the credential again
//  (the user is connecting), while the job has time for it and the call.
static void
s_call_poll_later (s_call_t *call)
{
    int64_t now = sb_clock_mono_ms ();
    if (now + SB_API_CONNECT_POLL_MS + SB_API_CONNECT_MIN_LEFT_MS >= sb_worker_job_deadline (call->job)) {
        s_call_connect_required (call, call->connect_state, call->connect_detail, call->connect_url,
                                 " (The connection was not made while this call could wait.)");
        return;
    }
    call->polling = true;
    call->retry_at = now + SB_API_CONNECT_POLL_MS;
    s_arm_retry_timer (call->api);
}

//  The client's response to the URL elicitation: accepted → wait for the
//  connection; declined, dismissed or not asked → the sentence with the link.
static void
s_on_connect_answer (sb_worker_job_t *job, const char *response_json, void *arg)
{
    s_call_t *call = arg;
    call->connect_ask = 0;
    json_t *result = NULL, *error = NULL;
    const char *why = NULL;
    const char *action = NULL;
    if (sb_payload_answer_decode (response_json, response_json ? strlen (response_json) : 0,
                                  &result, &error, &why) == 0)
        action = json_string_value (json_object_get (result, "action"));
    sb_log_info ("connect_answer", "corr_id=%s connector=%s action=%s", sb_worker_job_corr_id (job),
                 sb_connector_name (call->connector), action ? action : "(none)");
    bool accepted = action && strcmp (action, "accept") == 0;
    const char *note = !action ? NULL
                     : strcmp (action, "decline") == 0 ? " (The request to connect was declined.)"
                     : strcmp (action, "cancel") == 0 ? " (The request to connect was dismissed.)"
                     : NULL;
    json_decref (result);
    json_decref (error);
    if (accepted)
        s_call_poll_later (call);
    else
        s_call_connect_required (call, call->connect_state, call->connect_detail,
                                 call->connect_url, note);
}

//  Asks the client to open the link (elicitation/create, mode "url",
//  MCP 2025-11-25). Returns 0, or -1 when it could not be asked.
static int
s_call_ask_connect (s_call_t *call)
{
    uint8_t random [16];
    char elicitation_id [2 * sizeof random + 1];
    if (sb_crypto_random (random, sizeof random))
        return -1;
    for (size_t i = 0; i < sizeof random; i++)
        snprintf (elicitation_id + 2 * i, 3, "%02x", random [i]);
    char message [256];
    snprintf (message, sizeof message, "Connect %s to continue",
              sb_connector_display_name (call->connector));
    char *text = s_dump (json_pack ("{s:s, s:{s:s, s:s, s:s, s:s}}",
                                    "method", "elicitation/create",
                                    "params", "mode", "url", "message", message,
                                    "url", call->connect_url, "elicitationId", elicitation_id));
    int id = text ? sb_worker_job_ask_key (call->job, "connect", text, s_on_connect_answer, call) : -1;
    free (text);
    if (id < 0)
        return -1;
    call->connect_ask = id;
    sb_log_info ("connect_asked", "corr_id=%s connector=%s ask=%d", sb_worker_job_corr_id (call->job),
                 sb_connector_name (call->connector), id);
    return 0;
}

//  May the client be asked to open a link? A 2026-07-28 call (inputs)
//  carries the client's capabilities; for a session's call the gateway
//  refuses a question the session did not declare, which s_on_connect_answer
//  turns into the sentence with the link.
static bool
s_can_ask_url (s_call_t *call)
{
    const sb_job_t *spec = sb_worker_job_spec (call->job);
    return spec->inputs ? (spec->caps & SB_JOB_CAP_ELICIT_URL) != 0 : true;
}

//  The token service's answer for the call.
static void
s_on_credential (const sb_cred_t *cred, void *arg)
{
    s_call_t *call = arg;
    call->cred_wait = NULL;
    const char *where = sb_connector_display_name (call->connector);
    char text [768];
    switch (cred->state) {
        case SB_CRED_CONNECTED:
            if (call->polling)
                sb_log_info ("connection_made", "corr_id=%s connector=%s version=%llu",
                             sb_worker_job_corr_id (call->job), sb_connector_name (call->connector),
                             (unsigned long long) cred->version);
            call->polling = false;
            s_call_run (call, cred);
            return;
        case SB_CRED_MISSING:
        case SB_CRED_BROKEN:
            if (call->polling) {
                s_call_poll_later (call);       //  not yet
                return;
            }
            call->connect_state = cred->state;
            free (call->connect_url);
            free (call->connect_detail);
            call->connect_url = cred->connect_url ? strdup (cred->connect_url) : NULL;
            call->connect_detail = cred->detail ? strdup (cred->detail) : NULL;
            if (call->connect_url && s_can_ask_url (call) && s_call_ask_connect (call) == 0)
                return;
            s_call_connect_required (call, call->connect_state, call->connect_detail,
                                     call->connect_url, NULL);
            return;
        case SB_CRED_FAILED:
            snprintf (text, sizeof text, "%.400s", cred->detail ? cred->detail
                      : "the credentials could not be read right now; please try again later");
            s_capitalise (text);
            sb_log_warn ("credential_failed", "corr_id=%s connector=%s retry_after=%u",
                         sb_worker_job_corr_id (call->job), sb_connector_name (call->connector),
                         cred->retry_after_s);
            s_call_finish (call, s_conn_error ("credentials_failed", text, NULL, cred->retry_after_s));
            return;
        case SB_CRED_ASK_AGAIN:
            s_call_credential (call, 0);        //  with this call's own subject
            return;
        case SB_CRED_UNAVAILABLE:
        default:
            snprintf (text, sizeof text, "Switchboard could not get the credentials for %s in time. "
                      "Please try again later.", where);
            sb_log_warn ("credential_unavailable", "corr_id=%s connector=%s",
                         sb_worker_job_corr_id (call->job), sb_connector_name (call->connector));
            s_call_finish (call, s_conn_error ("credentials_unavailable", text, NULL, 0));
            return;
    }
}

//  Gets the tenant's credential: from the cache, or from the token service
//  (`stale` > 0: the version the upstream refused), then runs the call.
static void
s_call_credential (s_call_t *call, uint64_t stale)
{
    sb_api_t *api = call->api;
    const char *tenant = sb_worker_job_tenant (call->job);
    const char *name = sb_connector_name (call->connector);
    sb_cred_t cred;
    if (!stale && sb_api_creds_lookup (api->creds, tenant, name, &cred)) {
        s_call_run (call, &cred);
        return;
    }
    const char *why = NULL;
    call->cred_wait = sb_api_creds_fetch (api->creds, call->job, name, stale, s_on_credential,
                                          call, &why);
    if (!call->cred_wait) {
        sb_log_warn ("credential_request_failed", "corr_id=%s connector=%s: %s",
                     sb_worker_job_corr_id (call->job), name, why);
        sb_cred_t none = { .state = SB_CRED_UNAVAILABLE };
        s_on_credential (&none, call);
    }
}

//  ---------------------------------------------------------------------
//  Role callbacks

static void
s_tools_call (sb_api_t *self, sb_worker_job_t *job)
{
    const sb_job_t *spec = sb_worker_job_spec (job);
    char text [512];
    if (!spec->tool) {
        sb_worker_job_fail (&job, "malformed job: tools/call without a tool");
        return;
    }
    const sb_tool_t *tool = sb_connectors_find_tool (self->connectors, spec->tool);
    const sb_connector_t *connector = tool ? sb_tool_connector (tool) : NULL;
    if (!tool || (spec->connector && *spec->connector
              && strcmp (spec->connector, sb_connector_name (connector)) != 0)) {
        snprintf (text, sizeof text, "The tool \"%.128s\" is not available on this worker.", spec->tool);
        s_answer_ok (&job, s_error_result ("unknown_tool", text, 0));
        return;
    }
    json_error_t jerr;
    const char *args_text = spec->args && *spec->args ? spec->args : "{}";
    json_t *args = sb_json_parse (args_text, strlen (args_text), JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object (args)) {
        json_decref (args);
        sb_worker_job_fail (&job, "malformed job: args is not a JSON object");
        return;
    }
    char *error = NULL;
    if (sb_tool_builtin (tool)) {
        //  A builtin the worker runs itself (s_load made sure it has it):
        //  no upstream request.
        if (sb_tool_check_args (tool, args, &error)) {
            snprintf (text, sizeof text, "The arguments for %s were not accepted: %s",
                      sb_tool_name (tool), error ? error : "invalid arguments");
            free (error);
            s_answer_ok (&job, s_error_result ("invalid_arguments", text, 0));
        }
        else
            self->builtins->start (self->builtin_state, job, sb_tool_builtin (tool), args);
        json_decref (args);
        return;
    }
    s_call_t *call = calloc (1, sizeof (s_call_t));
    if (!call) {
        json_decref (args);
        sb_worker_job_fail (&job, "out of memory");
        return;
    }
    call->api = self;
    call->job = job;
    call->set = sb_connectors_ref (self->connectors);
    call->tool = tool;
    call->connector = connector;
    call->args = args;
    call->retry_at = -1;
    call->promote_at = -1;
    call->retry_safe = (sb_worker_job_flags (job) & SB_FLAG_RETRY_SAFE) || sb_tool_retry_safe (tool);
    size_t cap = sb_connector_max_response (connector);
    call->body_cap = cap > 0 && cap < SB_MAX_API_RESPONSE ? cap : SB_MAX_API_RESPONSE;

    if (sb_tool_check_args (tool, args, &error)) {
        snprintf (text, sizeof text, "The arguments for %s were not accepted: %s",
                  sb_tool_name (tool), error ? error : "invalid arguments");
        free (error);
        s_call_destroy (&call);
        s_answer_ok (&job, s_error_result ("invalid_arguments", text, 0));
        return;
    }
    call->handle = zlistx_add_end (self->calls, call);
    if (!call->handle) {
        s_call_destroy (&call);
        sb_worker_job_fail (&job, "could not start the upstream request");
        return;
    }
    sb_worker_job_set_data (job, call);
    if (sb_connector_credential (connector) == SB_CREDENTIAL_TENANT)
        s_call_credential (call, 0);    //  then s_call_run with it
    else
        s_call_run (call, NULL);
}

static void
s_start (void *state, sb_worker_job_t *job)
{
    sb_api_t *self = state;
    const char *op = sb_worker_job_spec (job)->op;
    if (strcmp (op, "tools/call") == 0)
        s_tools_call (self, job);
    else
    if (strcmp (op, "ping") == 0)
        sb_worker_job_done (&job, SB_STATUS_OK, "{\"pong\":true,\"role\":\"api\"}");
    else
        sb_worker_job_fail_unknown_op (&job);
}

static void
s_abandon (void *state, sb_worker_job_t *job)
{
    sb_api_t *self = state;
    if (self->builtins && self->builtins->abandon (self->builtin_state, job))
        return;
    s_call_t *call = sb_worker_job_data (job);
    if (call) {
        sb_worker_job_set_data (job, NULL);
        s_call_destroy (&call);           // removes the transfer from the multi
        s_arm_retry_timer (self);
    }
}

const sb_worker_role_t sb_api_role = { s_start, s_abandon };

int
sb_api_set_task_promote_ms (sb_api_t *self, uint32_t promote_ms)
{
    if (!self || promote_ms == 0 || promote_ms > SB_MAX_TASK_PROMOTE_MS)
        return -1;
    self->promote_ms = promote_ms;
    return 0;
}

//  ---------------------------------------------------------------------
//  Lifecycle

//  Loads the connectors folders with the base-URL overrides, refusing a
//  builtin tool this worker has no runner for. Returns the set, or NULL
//  with *error a new sentence.
static sb_connectors_t *
s_load (sb_api_t *self, char **error)
{
    const char *dir = self->connectors_dir;
    char *why = NULL;
    sb_connectors_t *set = sb_connectors_load (dir, &why);
    if (!set) {
        *error = sb_strfmt ("%s: %s", dir, why ? why : "cannot load");
        free (why);
        return NULL;
    }
    if (*self->connector_urls && sb_connectors_set_base_urls (set, self->connector_urls)) {
        *error = sb_strfmt ("bad --connector-urls \"%s\"", self->connector_urls);
        sb_connectors_destroy (&set);
        return NULL;
    }
    for (size_t i = 0; i < sb_connectors_tool_count (set); i++) {
        const sb_tool_t *tool = sb_connectors_tool_at (set, i);
        if (sb_tool_builtin (tool) && !sb_tool_gateway_builtin (tool)
        &&  !(self->builtins && self->builtins->known (sb_tool_builtin (tool)))) {
            *error = sb_strfmt ("%s: tool \"%s\": this worker has no builtin \"%s\" (builtin "
                                "tools are test fixtures: sb-worker-fixtures runs them)", dir,
                                sb_tool_name (tool), sb_tool_builtin (tool));
            sb_connectors_destroy (&set);
            return NULL;
        }
    }
    return set;
}

int
sb_api_reload (sb_api_t *self)
{
    char *error = NULL;
    sb_connectors_t *fresh = s_load (self, &error);
    if (!fresh) {
        sb_log_error ("connectors_reload_failed", "%s (the %zu tool(s) loaded before stay)",
                      error ? error : "out of memory", sb_connectors_tool_count (self->connectors));
        free (error);
        return -1;
    }
    sb_connectors_t *before = self->connectors;
    self->connectors = fresh;
    sb_log_info ("connectors_reloaded", "dir=%s tools=%zu calls_on_old_set=%d", self->connectors_dir,
                 sb_connectors_tool_count (fresh), sb_connectors_refs (before) - 1);
    sb_connectors_destroy (&before);        //  calls in flight hold their own references
    return 0;
}

sb_api_t *
sb_api_new (sb_worker_t *worker, const char *connectors_dir, const char *connector_urls,
            const sb_api_builtins_t *builtins)
{
    sb_api_t *self = calloc (1, sizeof (sb_api_t));
    if (!self)
        return NULL;
    self->worker = worker;
    self->reactor = sb_worker_reactor (worker);
    self->retry_timer = -1;
    self->promote_timer = -1;
    self->promote_due = -1;
    self->promote_ms = SB_API_TASK_PROMOTE_MS;
    self->builtins = builtins;
    self->connectors_dir = strdup (connectors_dir);
    self->connector_urls = strdup (connector_urls ? connector_urls : "");
    char *error = NULL;
    self->connectors = self->connectors_dir && self->connector_urls ? s_load (self, &error) : NULL;
    if (!self->connectors) {
        sb_log_error ("connectors_invalid", "%s", error ? error : "out of memory");
        free (error);
        sb_api_destroy (&self);
        return NULL;
    }
    if (builtins) {
        self->builtin_state = builtins->create (self->reactor);
        if (!self->builtin_state) {
            sb_api_destroy (&self);
            return NULL;
        }
    }
    self->curl = sb_curl_loop_new (self->reactor, s_on_curl_done, self);
    self->multi = self->curl ? sb_curl_loop_multi (self->curl) : NULL;
    self->calls = zlistx_new ();
    self->creds = sb_api_creds_new (worker);
    self->retry_timer = sb_reactor_timer_new (self->reactor, s_on_retry_timer, self);
    self->promote_timer = sb_reactor_timer_new (self->reactor, s_on_promote_timer, self);
    if (!self->multi || !self->calls || !self->creds || self->retry_timer < 0
    ||  self->promote_timer < 0) {
        sb_log_error ("api_init_failed", "cannot set up the curl multi handle");
        sb_api_destroy (&self);
        return NULL;
    }
    curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, (long) SB_API_CACHED_CONNECTIONS);
    curl_multi_setopt (self->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) SB_API_MAX_CONNECTIONS);
    sb_log_info ("api_ready", "%zu tool(s) from %s", sb_connectors_tool_count (self->connectors),
                 connectors_dir);
    return self;
}

void
sb_api_destroy (sb_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_api_t *self = *self_p;
    if (self->calls) {
        //  Calls still here belong to jobs the worker has not abandoned yet
        s_call_t *call;
        while ((call = zlistx_first (self->calls))) {
            sb_worker_job_set_data (call->job, NULL);
            s_call_destroy (&call);
        }
        zlistx_destroy (&self->calls);
    }
    sb_api_creds_destroy (&self->creds);
    if (self->builtins && self->builtin_state)
        self->builtins->destroy (&self->builtin_state);
    while (self->idle_count)
        curl_easy_cleanup (self->idle [--self->idle_count]);
    sb_curl_loop_destroy (&self->curl);
    self->multi = NULL;
    if (self->reactor) {
        sb_reactor_timer_free (self->reactor, self->retry_timer);
        sb_reactor_timer_free (self->reactor, self->promote_timer);
    }
    sb_connectors_destroy (&self->connectors);
    free (self->connectors_dir);
    free (self->connector_urls);
    free (self);
    *self_p = NULL;
}
