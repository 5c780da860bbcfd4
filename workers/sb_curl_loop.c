/*  workers/sb_curl_loop.c — curl multi on the reactor (see
    sb_curl_loop.h): the socket callback watches and unwatches fds, the
    timer callback arms the one reactor timer, and after every socket
    action the finished transfers are read and handed on. Also what a
    worker's own requests set on every easy handle, and header reading. */
#include "sb_curl_loop.h"
#include "sb_clock.h"
#include "sb_log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>

struct _sb_curl_loop_t {
    sb_reactor_t *reactor;          /* the worker's loop (borrowed) */
    CURLM *multi;                   /* the transfers */
    int timer;                      /* reactor timer curl asked for */
    sb_curl_done_fn *done;          /* the owner's callback */
    void *arg;                      /* and its argument */
};

static void
s_check_done (sb_curl_loop_t *self)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        //  Read both before the callback: removing the handle frees msg
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        self->done (easy, code, self->arg);
    }
}

static void
s_on_fd (sb_reactor_t *reactor, int fd, short revents, void *arg)
{
    sb_curl_loop_t *self = arg;
    int flags = 0;
    if (revents & ZMQ_POLLIN)
        flags |= CURL_CSELECT_IN;
    if (revents & ZMQ_POLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (revents & ZMQ_POLLERR)
        flags |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action (self->multi, fd, flags, &running);
    s_check_done (self);
}

static void
s_on_timer (sb_reactor_t *reactor, void *arg)
{
    sb_curl_loop_t *self = arg;
    int running = 0;
    curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_check_done (self);
}

static int
s_socket_cb (CURL *easy, curl_socket_t fd, int what, void *arg, void *socketp)
{
    sb_curl_loop_t *self = arg;
    if (what == CURL_POLL_REMOVE) {
        sb_reactor_unwatch_fd (self->reactor, fd);
        return 0;
    }
    short events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= ZMQ_POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= ZMQ_POLLOUT;
    if (sb_reactor_watch_fd (self->reactor, fd, events, s_on_fd, self)) {
        sb_log_error ("reactor_full", "cannot watch upstream socket %d", fd);
        return -1;
    }
    return 0;
}

static int
s_timer_cb (CURLM *multi, long timeout_ms, void *arg)
{
    sb_curl_loop_t *self = arg;
    sb_reactor_timer_set (self->reactor, self->timer,
                          timeout_ms < 0 ? -1 : sb_clock_mono_ms () + timeout_ms);
    return 0;
}

sb_curl_loop_t *
sb_curl_loop_new (sb_reactor_t *reactor, sb_curl_done_fn *done, void *arg)
{
    sb_curl_loop_t *self = calloc (1, sizeof (sb_curl_loop_t));
    if (!self)
        return NULL;
    self->reactor = reactor;
    self->done = done;
    self->arg = arg;
    curl_global_init (CURL_GLOBAL_DEFAULT);
    self->multi = curl_multi_init ();
    self->timer = sb_reactor_timer_new (reactor, s_on_timer, self);
    if (!self->multi || self->timer < 0) {
        sb_curl_loop_destroy (&self);
        return NULL;
    }
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETFUNCTION, s_socket_cb);
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERDATA, self);
    return self;
}

void
sb_curl_loop_destroy (sb_curl_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_curl_loop_t *self = *self_p;
    if (self->multi)
        curl_multi_cleanup (self->multi);
    if (self->timer >= 0)
        sb_reactor_timer_free (self->reactor, self->timer);
    free (self);
    *self_p = NULL;
}

CURLM *
sb_curl_loop_multi (sb_curl_loop_t *self)
{
    return self->multi;
}

void
sb_curl_easy_defaults (CURL *easy, const char *url, const char *protocols,
                       struct curl_slist *headers, curl_off_t max_bytes,
                       curl_write_callback on_write, curl_write_callback on_header,
                       void *arg, char *errbuf)
{
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_MAXFILESIZE_LARGE, max_bytes);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, arg);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, arg);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, arg);
    curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt (easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt (easy, CURLOPT_SSL_VERIFYHOST, 2L);
}

bool
sb_curl_body_append (char *body, size_t *len, size_t max, const char *data, size_t n)
{
    if (*len > max || n > max - *len)
        return false;
    memcpy (body + *len, data, n);
    *len += n;
    body [*len] = 0;
    return true;
}

bool
sb_curl_header_value (const char *data, size_t n, const char *name, char *value, size_t size)
{
    size_t name_len = strlen (name);
    if (size == 0 || n <= name_len || strncasecmp (data, name, name_len) != 0)
        return false;
    size_t len = n - name_len;
    if (len >= size)
        len = size - 1;
    memcpy (value, data + name_len, len);
    value [len] = 0;
    return true;
}
