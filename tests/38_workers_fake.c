/*  tests/38_workers_fake.c — fake broker and fake upstream for the worker
    integration tests (see 38_workers_fake.h). Test code: simple, blocking
    where the test thread can afford it, always with a deadline. */
#include "38_workers_fake.h"
#include "sb_harness.h"
#include "sb_attr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FAKE_MAX_REQUEST    65536   /* request head + body, bytes */

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  ---------------------------------------------------------------------
//  Fake broker

fake_broker_t *
fake_broker_new (int port)
{
    fake_broker_t *self = calloc (1, sizeof (fake_broker_t));
    if (!self)
        return NULL;
    self->port = port;
    self->answer_heartbeats = true;
    snprintf (self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", port);
    //  A just-closed ROUTER releases its port asynchronously: retry the bind
    int64_t deadline = s_now_ms () + 5000;
    while (true) {
        self->router = zsock_new (ZMQ_ROUTER);
        zsock_set_linger (self->router, 0);
        if (zsock_bind (self->router, "%s", self->endpoint) == port)
            break;
        zsock_destroy (&self->router);
        if (s_now_ms () > deadline) {
            free (self);
            return NULL;
        }
        zpoller_t *idle = zpoller_new (NULL);
        zpoller_wait (idle, 20);        // brief pause between bind attempts
        zpoller_destroy (&idle);
    }
    return self;
}

void
fake_broker_destroy (fake_broker_t **self_p)
{
    fake_broker_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->router);
    zframe_destroy (&self->worker);
    free (self);
    *self_p = NULL;
}

static void
s_send_cmd (fake_broker_t *self, zframe_t *to, sb_msg_t *msg)
{
    int rc = sb_msg_send (self->router, msg, to);
    assert (rc == 0);
    (void) rc;
    sb_msg_reset (msg);
}

int
fake_broker_recv (fake_broker_t *self, sb_msg_t *msg, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    void *handle = zsock_resolve (self->router);
    while (true) {
        int64_t left = deadline - s_now_ms ();
        if (left < 0)
            return -1;
        zmq_pollitem_t item = { handle, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) left) <= 0)
            continue;
        zframe_t *from = NULL;
        sb_msg_t in = { 0 };
        int rc = sb_msg_recv (self->router, &in, &from);
        if (rc != SB_MSG_OK) {
            zframe_destroy (&from);
            sb_msg_reset (&in);
            continue;
        }
        bool known = self->worker && from && zframe_eq (self->worker, from);
        if (in.command == SB_CMD_READY) {
            zframe_destroy (&self->worker);
            self->worker = from;
            *msg = in;
            return 0;
        }
        if (!known) {
            if (self->disconnect_unknown) {
                sb_msg_t bye = { 0 };
                sb_msg_set_disconnect (&bye);
                s_send_cmd (self, from, &bye);
            }
            zframe_destroy (&from);
            sb_msg_reset (&in);
            continue;
        }
        if (in.command == SB_CMD_HEARTBEAT) {
            self->heartbeats++;
            if (self->answer_heartbeats) {
                sb_msg_t beat = { 0 };
                sb_msg_set_heartbeat (&beat);
                s_send_cmd (self, from, &beat);
            }
            zframe_destroy (&from);
            sb_msg_reset (&in);
            continue;
        }
        if (in.command == SB_CMD_LIMITS && !self->keep_limits) {
            self->limits++;
            zframe_destroy (&from);
            sb_msg_reset (&in);
            continue;
        }
        zframe_destroy (&from);
        *msg = in;
        return 0;
    }
}

int
fake_broker_wait_heartbeats (fake_broker_t *self, int count, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    while (self->heartbeats < count) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            return -1;
        sb_msg_t msg = { 0 };
        //  Anything else arriving meanwhile is unexpected in the callers
        if (fake_broker_recv (self, &msg, left > 50 ? 50 : (int) left) == 0) {
            sb_msg_reset (&msg);
            return -1;
        }
    }
    return 0;
}

int
fake_broker_send_job (fake_broker_t *self, const char *corr_id, uint32_t timeout_ms,
                      uint32_t flags, zframe_t **payload)
{
    if (!self->worker) {
        zframe_destroy (payload);
        return -1;
    }
    sb_msg_t msg = { 0 };
    msg.command = SB_CMD_JOB;
    snprintf (msg.corr_id, sizeof msg.corr_id, "%s", corr_id);
    snprintf (msg.tenant, sizeof msg.tenant, "%s", "demo");
    msg.timeout_ms = timeout_ms;
    msg.flags = flags;
    msg.attempt = 1;
    msg.payload = payload && *payload ? *payload : zframe_new_empty ();
    if (payload)
        *payload = NULL;
    int rc = sb_msg_send (self->router, &msg, self->worker);
    sb_msg_reset (&msg);
    return rc;
}

int
fake_broker_send_op (fake_broker_t *self, const char *corr_id, uint32_t timeout_ms,
                     uint32_t flags, const char *op, const char *tool, const char *args)
{
    sb_job_t job = {
        .op = sb_unconst (op),
        .connector = !tool ? NULL : strncmp (tool, "test_", 5) && strncmp (tool, "json_schema_", 12)
                   ? (char *) "sandbox-crm" : (char *) "conformance",
        .tool = sb_unconst (tool),
        .args = sb_unconst (args),
    };
    zframe_t *payload = sb_job_encode (&job);
    if (!payload)
        return -1;
    return fake_broker_send_job (self, corr_id, timeout_ms, flags, &payload);
}

int
fake_broker_result (fake_broker_t *self, const char *corr_id, int timeout_ms,
                    sb_status_t *status, char **json)
{
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (self, &msg, timeout_ms))
        return -1;
    int rc = -1;
    if (msg.command == SB_CMD_RESULT && strcmp (msg.corr_id, corr_id) == 0 && msg.payload) {
        sb_job_result_t result = { 0 };
        if (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload), &result) == 0) {
            *status = msg.status;
            *json = result.result;
            result.result = NULL;
            rc = 0;
        }
        sb_job_result_clear (&result);
    }
    else
        fprintf (stderr, "fake broker: expected RESULT %s, got %s %s\n",
                 corr_id, sb_cmd_name (msg.command), msg.corr_id);
    sb_msg_reset (&msg);
    return rc;
}

int
fake_broker_ask (fake_broker_t *self, const char *corr_id, int timeout_ms,
                 uint32_t *ask_id, char **json)
{
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (self, &msg, timeout_ms))
        return -1;
    int rc = -1;
    if (msg.command == SB_CMD_ASK && strcmp (msg.corr_id, corr_id) == 0 && msg.payload) {
        sb_job_result_t request = { 0 };
        if (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload), &request) == 0) {
            *ask_id = msg.ask_id;
            *json = request.result;
            request.result = NULL;
            rc = 0;
        }
        sb_job_result_clear (&request);
    }
    else
        fprintf (stderr, "fake broker: expected ASK %s, got %s %s\n",
                 corr_id, sb_cmd_name (msg.command), msg.corr_id);
    sb_msg_reset (&msg);
    return rc;
}

int
fake_broker_answer (fake_broker_t *self, const char *corr_id, uint32_t ask_id,
                    const char *response_json)
{
    zframe_t *payload = sb_job_result_encode (response_json);
    if (!self->worker || !payload) {
        zframe_destroy (&payload);
        return -1;
    }
    sb_msg_t msg = { 0 };
    if (sb_msg_set_answer (&msg, corr_id, "demo", ask_id, &payload)) {
        zframe_destroy (&payload);
        sb_msg_reset (&msg);
        return -1;
    }
    int rc = sb_msg_send (self->router, &msg, self->worker);
    sb_msg_reset (&msg);
    return rc;
}

//  ---------------------------------------------------------------------
//  Fake upstream

struct fake_upstream_t {
    int listen_fd;              /* listening socket */
    int port;                   /* its port */
    char url [64];              /* http://127.0.0.1:port */
    pthread_t acceptor;         /* accept thread */
    atomic_bool stop;           /* ask threads to end */
    atomic_int conns_open;      /* connection threads alive */
    atomic_int connections;     /* connections accepted */
    atomic_int requests;        /* requests received */
    atomic_int inflight;        /* requests in progress */
    atomic_int max_inflight;    /* most in progress at once */
    atomic_int delay_ms;        /* response delay */
    atomic_int fail_left;       /* 503s still to give */
    atomic_int retry_after_s;   /* Retry-After of those, -1: none */
    atomic_size_t padding;      /* pad responses to this many bytes */
    atomic_bool bad_output;     /* account lists break the outputSchema */
    atomic_int tasks_created;   /* POST /v1/tasks served */
    pthread_mutex_t lock;       /* guards last_auth and refused */
    char last_auth [256];       /* Authorization of the last request */
    char refused [1024];        /* "\n"-separated Authorization values answered 401 */
};

typedef struct {
    fake_upstream_t *up;
    int fd;
} s_conn_arg_t;

static int
s_wait_readable (fake_upstream_t *up, int fd)
{
    while (!atomic_load (&up->stop)) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int rc = poll (&pfd, 1, 100);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
    return -1;
}

static int
s_write_all (int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

static void
s_respond (fake_upstream_t *up, int fd, int status, const char *extra_headers, const char *body)
{
    size_t pad = atomic_load (&up->padding);
    size_t body_len = strlen (body);
    char *padded = NULL;
    if (pad > body_len + 16 && body [0] == '{') {
        //  {"pad":"xxxx…", <rest of the object>
        padded = malloc (pad + 1);
        size_t fill = pad - body_len - 10;
        int head = snprintf (padded, pad + 1, "{\"pad\":\"");
        memset (padded + head, 'x', fill);
        snprintf (padded + head + fill, pad + 1 - head - fill, "\",%s", body + 1);
        body = padded;
        body_len = strlen (padded);
    }
    char head [512];
    int n = snprintf (head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: keep-alive\r\n%s\r\n",
                      status, status == 200 ? "OK" : status == 201 ? "Created" : status == 503 ? "Service Unavailable" : status == 401 ? "Unauthorized" : "Not Found",
                      body_len, extra_headers ? extra_headers : "");
    if (s_write_all (fd, head, (size_t) n) == 0)
        s_write_all (fd, body, body_len);
    free (padded);
}

static void
s_handle_request (fake_upstream_t *up, int fd, const char *method, const char *target)
{
    int now = atomic_fetch_add (&up->inflight, 1) + 1;
    int seen = atomic_load (&up->max_inflight);
    while (now > seen && !atomic_compare_exchange_weak (&up->max_inflight, &seen, now))
        ;
    int delay = atomic_load (&up->delay_ms);
    if (delay > 0) {
        //  Simulated upstream latency (the server's work, not test synchronisation)
        struct timespec ts = { delay / 1000, (long) (delay % 1000) * 1000000L };
        nanosleep (&ts, NULL);
    }
    int fails = atomic_load (&up->fail_left);
    bool fail = false;
    while (fails > 0 && !(fail = atomic_compare_exchange_weak (&up->fail_left, &fails, fails - 1)))
        ;
    atomic_fetch_sub (&up->inflight, 1);
    if (fail) {
        char headers [64] = "";
        int retry_after = atomic_load (&up->retry_after_s);
        if (retry_after >= 0)
            snprintf (headers, sizeof headers, "Retry-After: %d\r\n", retry_after);
        s_respond (up, fd, 503, headers, "{\"error\":\"temporarily unavailable\"}");
        return;
    }
    const char *prefix = "/v1/accounts/";
    if (strcmp (method, "POST") == 0 && strcmp (target, "/v1/tasks") == 0) {
        atomic_fetch_add (&up->tasks_created, 1);
        s_respond (up, fd, 201, NULL,
                   "{\"id\":\"task_0001\",\"title\":\"Call back\",\"status\":\"open\","
                   "\"priority\":\"high\",\"due_date\":null}");
    }
    else
    if (strncmp (target, prefix, strlen (prefix)) == 0) {
        char id [64];
        snprintf (id, sizeof id, "%.*s", (int) strcspn (target + strlen (prefix), "?/ "),
                  target + strlen (prefix));
        if (strcmp (id, "acc_missing") == 0) {
            s_respond (up, fd, 404, NULL, "{\"error\":\"account not found\"}");
            return;
        }
        char body [512];
        snprintf (body, sizeof body,
                  "{\"id\":\"%s\",\"name\":\"Acme Manufacturing\",\"industry\":\"Manufacturing\","
                  "\"city\":\"Berlin\",\"country\":\"DE\",\"employees\":1200}", id);
        s_respond (up, fd, 200, NULL, body);
    }
    else
    if (strncmp (target, "/v1/accounts", 12) == 0 && atomic_load (&up->bad_output))
        s_respond (up, fd, 200, NULL,
                   "{\"items\":[{\"id\":\"acc_0001\",\"name\":1001,"
                   "\"industry\":\"Manufacturing\",\"city\":\"Berlin\"}],\"next_cursor\":null}");
    else
    if (strncmp (target, "/v1/accounts", 12) == 0)
        s_respond (up, fd, 200, NULL,
                   "{\"items\":[{\"id\":\"acc_0001\",\"name\":\"Acme Manufacturing\","
                   "\"industry\":\"Manufacturing\",\"city\":\"Berlin\"},"
                   "{\"id\":\"acc_0002\",\"name\":\"Globex\",\"industry\":\"Energy\","
                   "\"city\":\"Oslo\"}],\"next_cursor\":null}");
    else
        s_respond (up, fd, 404, NULL, "{\"error\":\"no such endpoint\"}");
}

static void *
s_conn_thread (void *arg)
{
    s_conn_arg_t *conn = arg;
    fake_upstream_t *up = conn->up;
    int fd = conn->fd;
    free (conn);
    char *buf = malloc (FAKE_MAX_REQUEST + 1);
    size_t used = 0;
    while (buf && s_wait_readable (up, fd) == 0) {
        ssize_t n = recv (fd, buf + used, FAKE_MAX_REQUEST - used, 0);
        if (n <= 0)
            break;
        used += (size_t) n;
        buf [used] = 0;
        //  Serve every complete request in the buffer
        while (true) {
            char *end = strstr (buf, "\r\n\r\n");
            if (!end)
                break;
            size_t head_len = (size_t) (end - buf) + 4;
            size_t content_length = 0;
            char *cl = strcasestr (buf, "\r\nContent-Length:");
            if (cl && cl < end)
                content_length = strtoul (cl + 17, NULL, 10);
            if (used < head_len + content_length)
                break;
            char *auth = strcasestr (buf, "\r\nAuthorization: ");
            bool refuse = false;
            if (auth && auth < end) {
                pthread_mutex_lock (&up->lock);
                snprintf (up->last_auth, sizeof up->last_auth, "%.*s",
                          (int) strcspn (auth + 17, "\r"), auth + 17);
                size_t len = strlen (up->last_auth);
                for (const char *at = up->refused; *at; at += strcspn (at, "\n") + (at [strcspn (at, "\n")] != 0))
                    if (strcspn (at, "\n") == len && strncmp (at, up->last_auth, len) == 0)
                        refuse = true;
                pthread_mutex_unlock (&up->lock);
            }
            char method [16], target [2048];
            if (sscanf (buf, "%15s %2047s", method, target) != 2)
                goto done;
            atomic_fetch_add (&up->requests, 1);
            if (refuse)
                s_respond (up, fd, 401, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n",
                           "{\"error\":\"invalid_token\"}");
            else
                s_handle_request (up, fd, method, target);
            size_t consumed = head_len + content_length;
            memmove (buf, buf + consumed, used - consumed);
            used -= consumed;
            buf [used] = 0;
        }
        if (used >= FAKE_MAX_REQUEST)
            break;
    }
done:
    free (buf);
    close (fd);
    atomic_fetch_sub (&up->conns_open, 1);
    return NULL;
}

static void *
s_accept_thread (void *arg)
{
    fake_upstream_t *up = arg;
    while (s_wait_readable (up, up->listen_fd) == 0) {
        int fd = accept (up->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add (&up->connections, 1);
        s_conn_arg_t *conn = malloc (sizeof (s_conn_arg_t));
        conn->up = up;
        conn->fd = fd;
        atomic_fetch_add (&up->conns_open, 1);
        pthread_t thread;
        if (pthread_create (&thread, NULL, s_conn_thread, conn) == 0)
            pthread_detach (thread);
        else {
            close (fd);
            free (conn);
            atomic_fetch_sub (&up->conns_open, 1);
        }
    }
    return NULL;
}

fake_upstream_t *
fake_upstream_new (void)
{
    fake_upstream_t *self = calloc (1, sizeof (fake_upstream_t));
    pthread_mutex_init (&self->lock, NULL);
    atomic_store (&self->retry_after_s, -1);
    self->listen_fd = socket (AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt (self->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind (self->listen_fd, (struct sockaddr *) &addr, sizeof addr)
    ||  listen (self->listen_fd, 128)
    ||  getsockname (self->listen_fd, (struct sockaddr *) &addr, &len)) {
        close (self->listen_fd);
        free (self);
        return NULL;
    }
    self->port = ntohs (addr.sin_port);
    snprintf (self->url, sizeof self->url, "http://127.0.0.1:%d", self->port);
    pthread_create (&self->acceptor, NULL, s_accept_thread, self);
    return self;
}

void
fake_upstream_destroy (fake_upstream_t **self_p)
{
    fake_upstream_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stop, true);
    pthread_join (self->acceptor, NULL);
    close (self->listen_fd);
    //  Connection threads notice `stop` within one poll interval
    int64_t deadline = s_now_ms () + 5000;
    while (atomic_load (&self->conns_open) > 0 && s_now_ms () < deadline) {
        struct pollfd none;
        poll (&none, 0, 10);
    }
    if (atomic_load (&self->conns_open) == 0) {
        pthread_mutex_destroy (&self->lock);
        free (self);
    }
    *self_p = NULL;
}

const char *
fake_upstream_url (fake_upstream_t *self)
{
    return self->url;
}

void
fake_upstream_set_delay (fake_upstream_t *self, int delay_ms)
{
    atomic_store (&self->delay_ms, delay_ms);
}

void
fake_upstream_fail_next (fake_upstream_t *self, int count, int retry_after_s)
{
    atomic_store (&self->retry_after_s, retry_after_s);
    atomic_store (&self->fail_left, count);
}

void
fake_upstream_set_padding (fake_upstream_t *self, size_t bytes)
{
    atomic_store (&self->padding, bytes);
}

int
fake_upstream_requests (fake_upstream_t *self)
{
    return atomic_load (&self->requests);
}

int
fake_upstream_max_inflight (fake_upstream_t *self)
{
    return atomic_load (&self->max_inflight);
}

int
fake_upstream_connections (fake_upstream_t *self)
{
    return atomic_load (&self->connections);
}

int
fake_upstream_tasks_created (fake_upstream_t *self)
{
    return atomic_load (&self->tasks_created);
}

void
fake_upstream_set_bad_output (fake_upstream_t *self, bool bad_output)
{
    atomic_store (&self->bad_output, bad_output);
}

void
fake_upstream_last_auth (fake_upstream_t *self, char *buf, size_t size)
{
    pthread_mutex_lock (&self->lock);
    snprintf (buf, size, "%s", self->last_auth);
    pthread_mutex_unlock (&self->lock);
}

void
fake_upstream_reset (fake_upstream_t *self)
{
    atomic_store (&self->requests, 0);
    atomic_store (&self->max_inflight, 0);
    atomic_store (&self->connections, 0);
    atomic_store (&self->delay_ms, 0);
    atomic_store (&self->fail_left, 0);
    atomic_store (&self->padding, 0);
    atomic_store (&self->bad_output, false);
    atomic_store (&self->tasks_created, 0);
    pthread_mutex_lock (&self->lock);
    self->last_auth [0] = 0;
    self->refused [0] = 0;
    pthread_mutex_unlock (&self->lock);
}

void
fake_upstream_refuse_auth (fake_upstream_t *self, const char *auth)
{
    pthread_mutex_lock (&self->lock);
    size_t used = strlen (self->refused);
    snprintf (self->refused + used, sizeof self->refused - used, "%s%s", used ? "\n" : "", auth);
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  Fake network

struct fake_proxy_t {
    int listen_fd;              /* listening socket */
    int port;                   /* its port */
    int target_port;            /* where connections go */
    pthread_t acceptor;         /* accept thread */
    atomic_bool stop;           /* ask threads to end */
    atomic_bool down;           /* cut: close everything, refuse new */
    atomic_int pipes_open;      /* forwarding threads alive */
};

typedef struct {
    fake_proxy_t *proxy;
    int a, b;                   /* client side, server side */
} s_pipe_t;

static void *
s_pipe_thread (void *arg)
{
    s_pipe_t *pipe = arg;
    fake_proxy_t *proxy = pipe->proxy;
    char buf [16384];
    while (!atomic_load (&proxy->stop) && !atomic_load (&proxy->down)) {
        struct pollfd pfd [2] = { { pipe->a, POLLIN, 0 }, { pipe->b, POLLIN, 0 } };
        int rc = poll (pfd, 2, 50);
        if (rc < 0 && errno != EINTR)
            break;
        bool broken = false;
        for (int i = 0; i < 2 && rc > 0 && !broken; i++) {
            if (!pfd [i].revents)
                continue;
            ssize_t n = recv (pfd [i].fd, buf, sizeof buf, 0);
            if (n <= 0 || s_write_all (i == 0 ? pipe->b : pipe->a, buf, (size_t) n))
                broken = true;
        }
        if (broken)
            break;
    }
    close (pipe->a);
    close (pipe->b);
    free (pipe);
    atomic_fetch_sub (&proxy->pipes_open, 1);
    return NULL;
}

static void *
s_proxy_accept_thread (void *arg)
{
    fake_proxy_t *proxy = arg;
    while (!atomic_load (&proxy->stop)) {
        struct pollfd pfd = { proxy->listen_fd, POLLIN, 0 };
        if (poll (&pfd, 1, 50) <= 0)
            continue;
        int fd = accept (proxy->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        if (atomic_load (&proxy->down)) {
            close (fd);
            continue;
        }
        int out = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (proxy->target_port) };
        addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        if (out < 0 || connect (out, (struct sockaddr *) &addr, sizeof addr)) {
            close (fd);
            if (out >= 0)
                close (out);
            continue;
        }
        s_pipe_t *pipe = malloc (sizeof (s_pipe_t));
        pipe->proxy = proxy;
        pipe->a = fd;
        pipe->b = out;
        atomic_fetch_add (&proxy->pipes_open, 1);
        pthread_t thread;
        if (pthread_create (&thread, NULL, s_pipe_thread, pipe) == 0)
            pthread_detach (thread);
        else {
            close (fd);
            close (out);
            free (pipe);
            atomic_fetch_sub (&proxy->pipes_open, 1);
        }
    }
    return NULL;
}

fake_proxy_t *
fake_proxy_new (int target_port)
{
    fake_proxy_t *self = calloc (1, sizeof (fake_proxy_t));
    self->target_port = target_port;
    self->listen_fd = socket (AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt (self->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind (self->listen_fd, (struct sockaddr *) &addr, sizeof addr)
    ||  listen (self->listen_fd, 64)
    ||  getsockname (self->listen_fd, (struct sockaddr *) &addr, &len)) {
        close (self->listen_fd);
        free (self);
        return NULL;
    }
    self->port = ntohs (addr.sin_port);
    pthread_create (&self->acceptor, NULL, s_proxy_accept_thread, self);
    return self;
}

void
fake_proxy_destroy (fake_proxy_t **self_p)
{
    fake_proxy_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stop, true);
    pthread_join (self->acceptor, NULL);
    close (self->listen_fd);
    int64_t deadline = s_now_ms () + 5000;
    while (atomic_load (&self->pipes_open) > 0 && s_now_ms () < deadline) {
        struct pollfd none;
        poll (&none, 0, 10);
    }
    if (atomic_load (&self->pipes_open) == 0)
        free (self);
    *self_p = NULL;
}

int
fake_proxy_port (fake_proxy_t *self)
{
    return self->port;
}

void
fake_proxy_set_down (fake_proxy_t *self, bool down)
{
    atomic_store (&self->down, down);
}
