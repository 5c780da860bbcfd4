/*  tests/38_fake_provider.c — a fake OAuth 2 token endpoint (see
    38_fake_provider.h). */
#include "38_fake_provider.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FAKE_MAX_REQUEST    (256 * 1024)    /* bytes of a request, at most */
#define FAKE_MAX_TOKEN      128             /* bytes of a token it issues */

struct _fake_provider_t {
    int fd;                         /* listening socket */
    char url [64];
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool stop;
    int active;                     /* connection threads running */
    fake_mode_t mode;
    char *raw;
    bool rotate;
    int expires_in;
    int delay_ms;
    char accept [FAKE_MAX_TOKEN];   /* the refresh token accepted, "" any */
    int serial;                     /* tokens issued */
    int grants, requests, mismatches;
    char last_body [4096];
    char last_auth [512];
    char last_access [FAKE_MAX_TOKEN], last_refresh [FAKE_MAX_TOKEN];
};

typedef struct {
    fake_provider_t *self;
    int fd;
} s_conn_t;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_send_all (int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t) n;
    }
}

//  The value of form field `name` in `body`, URL-decoded into `out`.
static bool
s_form_get (const char *body, const char *name, char *out, size_t size)
{
    size_t name_len = strlen (name);
    const char *p = body;
    while (p && *p) {
        size_t n = strcspn (p, "&");
        if (n > name_len && strncmp (p, name, name_len) == 0 && p [name_len] == '=') {
            size_t at = 0;
            for (const char *v = p + name_len + 1; v < p + n && at + 1 < size; v++) {
                if (*v == '+')
                    out [at++] = ' ';
                else
                if (*v == '%' && v + 2 < p + n + 1) {
                    char hex [3] = { v [1], v [2], 0 };
                    out [at++] = (char) strtol (hex, NULL, 16);
                    v += 2;
                }
                else
                    out [at++] = *v;
            }
            out [at] = 0;
            return true;
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return false;
}

static void
s_answer_json (int fd, int status, const char *extra_headers, const char *json)
{
    char head [512];
    int len = snprintf (head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                        "Cache-Control: no-store\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                        status, extra_headers? extra_headers: "", strlen (json));
    s_send_all (fd, head, (size_t) len);
    s_send_all (fd, json, strlen (json));
}

static void *
s_serve (void *arg)
{
    s_conn_t conn = *(s_conn_t *) arg;
    free (arg);
    fake_provider_t *self = conn.self;
    char *request = malloc (FAKE_MAX_REQUEST + 1);
    size_t len = 0;
    size_t body_at = 0, content_length = 0;
    bool whole = false;
    while (request && len < FAKE_MAX_REQUEST) {
        struct pollfd pfd = { conn.fd, POLLIN, 0 };
        if (poll (&pfd, 1, 5000) <= 0)
            break;
        ssize_t n = recv (conn.fd, request + len, FAKE_MAX_REQUEST - len, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
        request [len] = 0;
        char *end = strstr (request, "\r\n\r\n");
        if (end && !body_at) {
            body_at = (size_t) (end + 4 - request);
            const char *cl = strcasestr (request, "\r\ncontent-length:");
            content_length = cl? strtoul (cl + 17, NULL, 10): 0;
        }
        if (body_at && len >= body_at + content_length) {
            whole = true;
            break;
        }
    }
    if (whole) {
        const char *body = request + body_at;
        char auth [512] = "";
        const char *a = strcasestr (request, "\r\nauthorization:");
        if (a && a < body) {
            a += 16;
            while (*a == ' ')
                a++;
            size_t n = strcspn (a, "\r\n");
            snprintf (auth, sizeof auth, "%.*s", (int) n, a);
        }
        char grant [64] = "", presented [FAKE_MAX_TOKEN * 2] = "";
        s_form_get (body, "grant_type", grant, sizeof grant);
        s_form_get (body, "refresh_token", presented, sizeof presented);
        pthread_mutex_lock (&self->lock);
        self->requests++;
        snprintf (self->last_body, sizeof self->last_body, "%s", body);
        snprintf (self->last_auth, sizeof self->last_auth, "%s", auth);
        fake_mode_t mode = self->mode;
        char *raw = self->raw? strdup (self->raw): NULL;
        int delay_ms = self->delay_ms;
        pthread_cond_broadcast (&self->changed);
        pthread_mutex_unlock (&self->lock);
        if (delay_ms)
            usleep ((useconds_t) delay_ms * 1000);
        if (mode == FAKE_TOKENS) {
            pthread_mutex_lock (&self->lock);
            bool refresh = strcmp (grant, "refresh_token") == 0;
            bool refused = refresh && self->accept [0] && strcmp (presented, self->accept) != 0;
            char json [1024];
            if (refused) {
                self->mismatches++;
                snprintf (json, sizeof json, "{\"error\":\"invalid_grant\","
                          "\"error_description\":\"unknown refresh token\"}");
            }
            else {
                int n = ++self->serial;
                self->grants++;
                snprintf (self->last_access, sizeof self->last_access, "at-%d", n);
                if (self->rotate || !refresh)
                    snprintf (self->last_refresh, sizeof self->last_refresh, "rt-%d", n);
                else
                    snprintf (self->last_refresh, sizeof self->last_refresh, "%.127s", presented);
                if (self->accept [0] || !refresh)
                    snprintf (self->accept, sizeof self->accept, "%s", self->last_refresh);
                char refresh_part [FAKE_MAX_TOKEN + 32] = "";
                if (self->rotate || !refresh)
                    snprintf (refresh_part, sizeof refresh_part, ",\"refresh_token\":\"%s\"",
                              self->last_refresh);
                snprintf (json, sizeof json, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
                          "\"expires_in\":%d%s,\"scope\":\"read write\","
                          "\"instance_url\":\"%s/instance\"}",
                          self->last_access, self->expires_in, refresh_part, self->url);
            }
            pthread_mutex_unlock (&self->lock);
            s_answer_json (conn.fd, refused? 400: 200, NULL, json);
        }
        else
        if (mode == FAKE_INVALID_GRANT)
            s_answer_json (conn.fd, 400, NULL, "{\"error\":\"invalid_grant\","
                           "\"error_description\":\"the refresh token was revoked\"}");
        else
        if (mode == FAKE_UNAVAILABLE)
            s_answer_json (conn.fd, 503, "Retry-After: 1\r\n", "{\"error\":\"temporarily_unavailable\"}");
        else
        if (mode == FAKE_RAW && raw)
            s_send_all (conn.fd, raw, strlen (raw));
        else {
            //  Hang: hold the connection until the client goes or the server stops
            while (true) {
                pthread_mutex_lock (&self->lock);
                bool stop = self->stop;
                pthread_mutex_unlock (&self->lock);
                struct pollfd pfd = { conn.fd, POLLIN, 0 };
                char byte;
                if (stop || (poll (&pfd, 1, 50) > 0 && recv (conn.fd, &byte, 1, 0) <= 0))
                    break;
            }
        }
        free (raw);
    }
    free (request);
    close (conn.fd);
    pthread_mutex_lock (&self->lock);
    self->active--;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

static void *
s_accept (void *arg)
{
    fake_provider_t *self = arg;
    while (true) {
        pthread_mutex_lock (&self->lock);
        bool stop = self->stop;
        pthread_mutex_unlock (&self->lock);
        if (stop)
            break;
        struct pollfd pfd = { self->fd, POLLIN, 0 };
        if (poll (&pfd, 1, 50) <= 0)
            continue;
        int fd = accept (self->fd, NULL, NULL);
        if (fd < 0)
            continue;
        s_conn_t *conn = malloc (sizeof *conn);
        pthread_t thread;
        if (!conn) {
            close (fd);
            continue;
        }
        *conn = (s_conn_t) { self, fd };
        pthread_mutex_lock (&self->lock);
        self->active++;
        pthread_mutex_unlock (&self->lock);
        if (pthread_create (&thread, NULL, s_serve, conn) != 0) {
            close (fd);
            free (conn);
            pthread_mutex_lock (&self->lock);
            self->active--;
            pthread_mutex_unlock (&self->lock);
            continue;
        }
        pthread_detach (thread);
    }
    return NULL;
}

fake_provider_t *
fake_provider_new (void)
{
    fake_provider_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->rotate = true;
    self->expires_in = 3600;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->changed, NULL);
    self->fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    if (self->fd < 0 || bind (self->fd, (struct sockaddr *) &addr, sizeof addr)
    ||  listen (self->fd, 256) || getsockname (self->fd, (struct sockaddr *) &addr, &addr_len)
    ||  pthread_create (&self->acceptor, NULL, s_accept, self) != 0) {
        if (self->fd >= 0)
            close (self->fd);
        free (self);
        return NULL;
    }
    snprintf (self->url, sizeof self->url, "http://127.0.0.1:%d", ntohs (addr.sin_port));
    return self;
}

void
fake_provider_destroy (fake_provider_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fake_provider_t *self = *self_p;
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->acceptor, NULL);
    pthread_mutex_lock (&self->lock);
    while (self->active > 0)
        pthread_cond_wait (&self->changed, &self->lock);
    pthread_mutex_unlock (&self->lock);
    close (self->fd);
    free (self->raw);
    free (self);
    *self_p = NULL;
}

const char *
fake_provider_url (fake_provider_t *self)
{
    return self->url;
}

void
fake_provider_set (fake_provider_t *self, fake_mode_t mode, const char *raw)
{
    pthread_mutex_lock (&self->lock);
    self->mode = mode;
    free (self->raw);
    self->raw = raw? strdup (raw): NULL;
    pthread_mutex_unlock (&self->lock);
}

void
fake_provider_tokens (fake_provider_t *self, bool rotate, int expires_in, int delay_ms)
{
    pthread_mutex_lock (&self->lock);
    self->rotate = rotate;
    self->expires_in = expires_in;
    self->delay_ms = delay_ms;
    pthread_mutex_unlock (&self->lock);
}

void
fake_provider_accept (fake_provider_t *self, const char *refresh_token)
{
    pthread_mutex_lock (&self->lock);
    snprintf (self->accept, sizeof self->accept, "%s", refresh_token? refresh_token: "");
    pthread_mutex_unlock (&self->lock);
}

static int
s_read_int (fake_provider_t *self, const int *field)
{
    pthread_mutex_lock (&self->lock);
    int value = *field;
    pthread_mutex_unlock (&self->lock);
    return value;
}

int
fake_provider_grants (fake_provider_t *self)
{
    return s_read_int (self, &self->grants);
}

int
fake_provider_requests (fake_provider_t *self)
{
    return s_read_int (self, &self->requests);
}

int
fake_provider_mismatches (fake_provider_t *self)
{
    return s_read_int (self, &self->mismatches);
}

int
fake_provider_wait_requests (fake_provider_t *self, int count, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    pthread_mutex_lock (&self->lock);
    while (self->requests < count && s_now_ms () < deadline) {
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_nsec += 50 * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait (&self->changed, &self->lock, &until);
    }
    int rc = self->requests >= count? 0: -1;
    pthread_mutex_unlock (&self->lock);
    return rc;
}

void
fake_provider_last_body (fake_provider_t *self, char *out, size_t size)
{
    pthread_mutex_lock (&self->lock);
    snprintf (out, size, "%s", self->last_body);
    pthread_mutex_unlock (&self->lock);
}

void
fake_provider_last_authorization (fake_provider_t *self, char *out, size_t size)
{
    pthread_mutex_lock (&self->lock);
    snprintf (out, size, "%s", self->last_auth);
    pthread_mutex_unlock (&self->lock);
}

void
fake_provider_last_tokens (fake_provider_t *self, char *access, char *refresh, size_t size)
{
    pthread_mutex_lock (&self->lock);
    snprintf (access, size, "%s", self->last_access);
    snprintf (refresh, size, "%s", self->last_refresh);
    pthread_mutex_unlock (&self->lock);
}
