/*  gateway/sb_sse.c — SSE streams, the replay ring and keep-alives.

    Two objects per stream: the logical stream (sb_sse_t, owned by the hub
    for GET streams or by a call for POST streams) and the connection
    (s_conn_t, one HTTP response, freed when h2o disposes the request).
    Either may go first; each unhooks itself from the other. */
#include "sb_sse.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct _s_conn_t s_conn_t;

struct _sb_sse_t {
    sb_sse_hub_t *hub;          /* owner of the table */
    uint64_t number;            /* stream number on this gateway */
    uint64_t seq;               /* last event sequence used */
    char *owner;                /* who may resume, owned */
    bool standalone;            /* GET or listen stream: freed with its connection */
    bool listen;                /* a listen stream: no session's (sb_sse.h) */
    bool unnumbered;            /* no event IDs, nothing kept for resumption */
    sb_sse_gone_fn *on_gone;    /* its client left (POST or listen stream), or NULL */
    void *gone_arg;             /* on_gone's argument */
    int64_t expires_ms;         /* GET or listen stream: ended then (wall clock), 0: never */
    s_conn_t *conn;             /* current connection, or NULL */
    sb_sse_t *prev, *next;      /* hub's list of open streams */
};

struct _s_conn_t {
    h2o_generator_t generator;  /* must be first: h2o calls us back with it */
    h2o_req_t *req;             /* NULL once h2o stopped us */
    sb_sse_t *stream;           /* attached stream, or NULL */
    char *pending;              /* bytes waiting for the next h2o_send, owned */
    size_t pending_len, pending_cap;
    char *inflight;             /* bytes h2o is sending now, owned */
    size_t inflight_cap;
    bool sending;               /* an h2o_send awaits proceed */
    bool final;                 /* end the response once pending is out */
    bool done;                  /* the final h2o_send was made */
    bool flushing;              /* re-entrancy guard */
};

typedef struct {
    s_conn_t *conn;             /* freed when the request is disposed */
} s_conn_ref_t;

typedef struct {
    uint64_t stream, seq;       /* identity of the event */
    char *owner;                /* who may read it, owned */
    char *text;                 /* the SSE bytes, owned */
    size_t len;                 /* bytes of text */
} s_event_t;

struct _sb_sse_hub_t {
    h2o_loop_t *loop;                   /* the gateway's loop */
    char tag [9];                       /* random per process: 8 hex digits */
    uint64_t next_stream;               /* last stream number given */
    sb_sse_t *streams;                  /* open streams */
    s_event_t *ring;                    /* SB_MAX_SSE_REPLAY slots */
    size_t head, count, bytes;          /* oldest slot, events, their bytes */
    h2o_timeout_t keepalive;            /* SB_SSE_PROBE_MS */
    h2o_timeout_entry_t keepalive_entry;
    uint64_t ticks;                     /* keepalive timer runs so far */
};


//  Appends a string literal; its length is counted by the compiler, never
//  by hand (a hand count once sent a stray NUL after ": stream open").
#define S_APPEND_LITERAL(conn, literal) s_conn_append ((conn), (literal), sizeof (literal) - 1)

static void s_conn_flush (s_conn_t *conn);

//  --------------------------------------------------------------------------
//  Connections

static int
s_conn_append (s_conn_t *conn, const char *data, size_t len)
{
    if (!conn->req || conn->done || conn->final)
        return 0;
    if (conn->pending_len + len > SB_MAX_SSE_PENDING) {
        sb_log_warn ("sse_overflow", "a client reads too slowly; its stream is ended");
        conn->final = true;
        return -1;
    }
    if (conn->pending_len + len > conn->pending_cap) {
        size_t cap = conn->pending_cap? conn->pending_cap: 1024;
        while (cap < conn->pending_len + len)
            cap *= 2;
        char *grown = realloc (conn->pending, cap);
        if (!grown)
            return -1;
        conn->pending = grown;
        conn->pending_cap = cap;
    }
    memcpy (conn->pending + conn->pending_len, data, len);
    conn->pending_len += len;
    return 0;
}

//  Unhooks stream and connection; a standalone stream dies with it.
static void s_stream_free (sb_sse_t *stream);

static void
s_conn_detach (s_conn_t *conn)
{
    sb_sse_t *stream = conn->stream;
    conn->stream = NULL;
    if (!stream)
        return;
    stream->conn = NULL;
    if (stream->standalone) {
        //  The owner forgets it first (a listen stream's table entry),
        //  whether the client left or the stream overflowed.
        if (stream->on_gone) {
            sb_sse_gone_fn *fn = stream->on_gone;
            stream->on_gone = NULL;
            fn (stream->gone_arg);
        }
        s_stream_free (stream);
    }
    else
    if (stream->on_gone && !conn->done) {
        //  The client left an open POST stream. Last thing here: the
        //  callback may free the stream.
        sb_sse_gone_fn *fn = stream->on_gone;
        stream->on_gone = NULL;
        fn (stream->gone_arg);
    }
}

static void
s_conn_flush (s_conn_t *conn)
{
    if (conn->flushing)
        return;
    conn->flushing = true;
    while (conn->req && !conn->sending && !conn->done && (conn->pending_len || conn->final)) {
        char *swap = conn->inflight;
        size_t swap_cap = conn->inflight_cap;
        conn->inflight = conn->pending;
        conn->inflight_cap = conn->pending_cap;
        size_t len = conn->pending_len;
        conn->pending = swap;
        conn->pending_cap = swap_cap;
        conn->pending_len = 0;
        h2o_iovec_t buf = h2o_iovec_init (conn->inflight, len);
        conn->sending = true;
        if (conn->final) {
            //  The last send: h2o may dispose the request inside it.
            conn->done = true;
            s_conn_detach (conn);
            h2o_send (conn->req, &buf, len? 1: 0, H2O_SEND_STATE_FINAL);
            return;
        }
        h2o_send (conn->req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
    }
    conn->flushing = false;
}

static void
s_on_proceed (h2o_generator_t *generator, h2o_req_t *req)
{
    s_conn_t *conn = (s_conn_t *) generator;
    conn->sending = false;
    s_conn_flush (conn);
}

static void
s_on_stop (h2o_generator_t *generator, h2o_req_t *req)
{
    s_conn_t *conn = (s_conn_t *) generator;
    conn->req = NULL;
    s_conn_detach (conn);
}

static void
s_on_disposed (void *p)
{
    s_conn_ref_t *ref = p;
    s_conn_t *conn = ref->conn;
    conn->req = NULL;
    s_conn_detach (conn);
    free (conn->pending);
    free (conn->inflight);
    free (conn);
}

//  Starts the response on `req` and returns its connection.
static s_conn_t *
s_conn_start (h2o_req_t *req)
{
    s_conn_t *conn = calloc (1, sizeof *conn);
    if (!conn)
        return NULL;
    s_conn_ref_t *ref = h2o_mem_alloc_shared (&req->pool, sizeof *ref, s_on_disposed);
    ref->conn = conn;
    conn->req = req;
    conn->generator.proceed = s_on_proceed;
    conn->generator.stop = s_on_stop;
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = SIZE_MAX;
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                    H2O_STRLIT ("text/event-stream"));
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                    H2O_STRLIT ("no-cache"));
    h2o_add_header_by_str (&req->pool, &req->res.headers, H2O_STRLIT ("x-accel-buffering"), 0,
                           NULL, H2O_STRLIT ("no"));
    h2o_start_response (req, &conn->generator);
    return conn;
}

static void
s_conn_end (s_conn_t *conn)
{
    conn->final = true;
    s_conn_flush (conn);
}

//  --------------------------------------------------------------------------
//  Streams

static void
s_stream_free (sb_sse_t *stream)
{
    sb_sse_hub_t *hub = stream->hub;
    if (stream->prev)
        stream->prev->next = stream->next;
    else
        hub->streams = stream->next;
    if (stream->next)
        stream->next->prev = stream->prev;
    if (stream->conn) {
        s_conn_t *conn = stream->conn;
        conn->stream = NULL;
        stream->conn = NULL;
        s_conn_end (conn);
    }
    free (stream->owner);
    free (stream);
}

static void
s_event_id (sb_sse_hub_t *hub, uint64_t stream, uint64_t seq, char *out, size_t size)
{
    snprintf (out, size, "%s.%" PRIu64 ".%" PRIu64, hub->tag, stream, seq);
}

static void
s_ring_drop_oldest (sb_sse_hub_t *hub)
{
    s_event_t *event = &hub->ring [hub->head];
    hub->bytes -= event->len;
    free (event->owner);
    free (event->text);
    memset (event, 0, sizeof *event);
    hub->head = (hub->head + 1) % SB_MAX_SSE_REPLAY;
    hub->count--;
}

static void
s_ring_add (sb_sse_hub_t *hub, sb_sse_t *stream, char *text, size_t len)
{
    char *owner = strdup (stream->owner);
    if (!owner || len > SB_MAX_SSE_REPLAY_BYTES) {
        free (owner);
        free (text);
        return;
    }
    while (hub->count == SB_MAX_SSE_REPLAY || hub->bytes + len > SB_MAX_SSE_REPLAY_BYTES)
        s_ring_drop_oldest (hub);
    s_event_t *event = &hub->ring [(hub->head + hub->count) % SB_MAX_SSE_REPLAY];
    event->stream = stream->number;
    event->seq = stream->seq;
    event->owner = owner;
    event->text = text;
    event->len = len;
    hub->count++;
    hub->bytes += len;
}

sb_sse_t *
sb_sse_open (sb_sse_hub_t *self, h2o_req_t *req, const char *owner, int flags)
{
    bool standalone = flags & SB_SSE_STANDALONE;
    bool unnumbered = flags & SB_SSE_UNNUMBERED;
    bool priming = (flags & SB_SSE_PRIMING) && !unnumbered;
    sb_sse_t *stream = calloc (1, sizeof *stream);
    if (!stream || !(stream->owner = strdup (owner))) {
        free (stream);
        return NULL;
    }
    s_conn_t *conn = s_conn_start (req);
    if (!conn) {
        free (stream->owner);
        free (stream);
        return NULL;
    }
    stream->hub = self;
    stream->number = ++self->next_stream;
    stream->standalone = standalone;
    stream->listen = standalone && (flags & SB_SSE_LISTEN);
    stream->unnumbered = unnumbered;
    stream->next = self->streams;
    if (self->streams)
        self->streams->prev = stream;
    self->streams = stream;
    stream->conn = conn;
    conn->stream = stream;
    if (priming) {
        char id [SB_MAX_SSE_EVENT_ID_LEN], text [SB_MAX_SSE_EVENT_ID_LEN + 64];
        s_event_id (self, stream->number, 0, id, sizeof id);
        int n = snprintf (text, sizeof text, "id: %s\nretry: %d\ndata: \n\n", id, SB_SSE_RETRY_MS);
        s_conn_append (conn, text, (size_t) n);
    }
    else
    if (!(flags & SB_SSE_QUIET))    //  a comment, so that the headers go out now
        S_APPEND_LITERAL (conn, ": stream open\n\n");
    sb_log_debug ("sse_opened", "stream=%" PRIu64 " standalone=%d listen=%d", stream->number,
                  standalone, stream->listen);
    s_conn_flush (conn);
    return stream;
}

//  One event on `stream`; with `last`, the stream ends after it (freed),
//  the event and the final chunk going out in one h2o_send.
static int
s_send (sb_sse_t *stream, const char *json, bool last)
{
    char id [SB_MAX_SSE_EVENT_ID_LEN] = "";
    if (!stream->unnumbered)
        s_event_id (stream->hub, stream->number, ++stream->seq, id, sizeof id);
    //  ["id: …\n"] "event: message\n" + one "data: " line per line of json.
    size_t lines = 1;
    for (const char *p = json; *p; p++)
        lines += *p == '\n';
    size_t size = strlen (id) + 32 + strlen (json) + 7 * lines + 2;
    char *text = malloc (size);
    if (!text) {
        if (last)
            s_stream_free (stream);
        return -1;
    }
    size_t len = (size_t) snprintf (text, size, "%s%s%sevent: message\n",
                                    *id? "id: ": "", id, *id? "\n": "");
    const char *line = json;
    while (true) {
        size_t n = strcspn (line, "\n");
        memcpy (text + len, "data: ", 6);
        memcpy (text + len + 6, line, n);
        len += 6 + n;
        text [len++] = '\n';
        if (!line [n])
            break;
        line += n + 1;
    }
    text [len++] = '\n';
    //  Flushing comes last: a connection past SB_MAX_SSE_PENDING ends in it,
    //  and a standalone stream is freed with its connection.
    s_conn_t *conn = stream->conn;
    if (conn)
        s_conn_append (conn, text, len);
    if (stream->unnumbered)
        free (text);                //  nobody can ask for it again
    else
        s_ring_add (stream->hub, stream, text, len);
    if (last)
        s_stream_free (stream);     //  ends the connection: pending bytes and final chunk
    else
    if (conn)
        s_conn_flush (conn);
    return 0;
}

int
sb_sse_send (sb_sse_t *stream, const char *json)
{
    return s_send (stream, json, false);
}

int
sb_sse_send_last (sb_sse_t **stream_p, const char *json)
{
    sb_sse_t *stream = *stream_p;
    *stream_p = NULL;
    return s_send (stream, json, true);
}

void
sb_sse_on_gone (sb_sse_t *stream, sb_sse_gone_fn *fn, void *arg)
{
    stream->on_gone = fn;
    stream->gone_arg = arg;
}

void
sb_sse_set_expiry (sb_sse_t *stream, int64_t wall_ms)
{
    stream->expires_ms = wall_ms;
}

void
sb_sse_end (sb_sse_t **stream_p)
{
    if (!stream_p || !*stream_p)
        return;
    s_stream_free (*stream_p);
    *stream_p = NULL;
}

bool
sb_sse_connected (sb_sse_t *stream)
{
    return stream->conn != NULL;
}

//  Parses "<tag>.<stream>.<seq>" of this hub.
static int
s_parse_id (sb_sse_hub_t *self, const char *text, size_t len, uint64_t *stream, uint64_t *seq)
{
    char copy [SB_MAX_SSE_EVENT_ID_LEN];
    if (len == 0 || len >= sizeof copy)
        return -1;
    memcpy (copy, text, len);
    copy [len] = 0;
    size_t tag_len = strlen (self->tag);
    if (len <= tag_len + 1 || memcmp (copy, self->tag, tag_len) != 0 || copy [tag_len] != '.')
        return -1;
    char *p = copy + tag_len + 1, *end = NULL;
    if (*p < '0' || *p > '9')
        return -1;
    *stream = strtoull (p, &end, 10);
    if (*end != '.' || end [1] < '0' || end [1] > '9')
        return -1;
    p = end + 1;
    *seq = strtoull (p, &end, 10);
    if (*end || *stream == 0 || *stream > self->next_stream)
        return -1;
    return 0;
}

int
sb_sse_resume (sb_sse_hub_t *self, h2o_req_t *req, const char *owner, const char *last_id, size_t len)
{
    uint64_t number = 0, seq = 0;
    if (s_parse_id (self, last_id, len, &number, &seq))
        return -1;
    sb_sse_t *live = self->streams;
    while (live && live->number != number)
        live = live->next;
    //  A 2026-07-28 stream (a call's, a listen stream) is not resumable:
    //  its number is never handed out, and no other request may take it.
    if (live && (strcmp (live->owner, owner) != 0 || live->unnumbered))
        return -1;
    bool known = live != NULL;
    for (size_t i = 0; i < self->count && !known; i++) {
        s_event_t *event = &self->ring [(self->head + i) % SB_MAX_SSE_REPLAY];
        known = event->stream == number && strcmp (event->owner, owner) == 0;
    }
    if (!known)
        return -1;
    s_conn_t *conn = s_conn_start (req);
    if (!conn)
        return -1;
    for (size_t i = 0; i < self->count; i++) {
        s_event_t *event = &self->ring [(self->head + i) % SB_MAX_SSE_REPLAY];
        if (event->stream == number && event->seq > seq && strcmp (event->owner, owner) == 0)
            s_conn_append (conn, event->text, event->len);
    }
    if (live) {
        if (live->conn) {               //  the old connection gives way
            s_conn_t *old = live->conn;
            old->stream = NULL;
            live->conn = NULL;
            s_conn_end (old);
        }
        live->conn = conn;
        conn->stream = live;
        S_APPEND_LITERAL (conn, ": resumed\n\n");
        s_conn_flush (conn);
    }
    else
        s_conn_end (conn);
    sb_log_debug ("sse_resumed", "stream=%" PRIu64 " after=%" PRIu64 " live=%d",
                  number, seq, live != NULL);
    return 0;
}

size_t
sb_sse_count (sb_sse_hub_t *self, const char *owner)
{
    size_t count = 0;
    for (sb_sse_t *s = self->streams; s; s = s->next)
        count += s->standalone && !s->listen && strcmp (s->owner, owner) == 0;
    return count;
}

size_t
sb_sse_notify (sb_sse_hub_t *self, const char *owner, const char *json)
{
    //  A send may end its own stream (a reader too slow: the connection
    //  ends and a standalone stream goes with it), so step on first.
    size_t count = 0;
    for (sb_sse_t *s = self->streams, *next; s; s = next) {
        next = s->next;
        if (s->standalone && !s->listen && strcmp (s->owner, owner) == 0 && sb_sse_send (s, json) == 0)
            count++;
    }
    return count;
}

size_t
sb_sse_broadcast (sb_sse_hub_t *self, const char *json)
{
    size_t count = 0;
    for (sb_sse_t *s = self->streams, *next; s; s = next) {
        next = s->next;                 //  as in sb_sse_notify
        if (s->standalone && !s->listen && sb_sse_send (s, json) == 0)
            count++;
    }
    return count;
}

size_t
sb_sse_notify_if (sb_sse_hub_t *self, const char *json, sb_sse_owner_fn *want, void *arg)
{
    size_t count = 0;
    for (sb_sse_t *s = self->streams, *next; s; s = next) {
        next = s->next;                 //  as in sb_sse_notify
        if (s->standalone && !s->listen && want (s->owner, arg) && sb_sse_send (s, json) == 0)
            count++;
    }
    return count;
}

void
sb_sse_close_standalone (sb_sse_hub_t *self, const char *owner)
{
    sb_sse_t *s = self->streams;
    while (s) {
        sb_sse_t *next = s->next;
        if (s->standalone && !s->listen && (!owner || strcmp (s->owner, owner) == 0))
            s_stream_free (s);
        s = next;
    }
}

//  --------------------------------------------------------------------------
//  Hub

static void
s_on_keepalive (h2o_timeout_entry_t *entry)
{
    sb_sse_hub_t *self = (sb_sse_hub_t *) ((char *) entry - offsetof (sb_sse_hub_t, keepalive_entry));
    //  Every stream gets a comment each SB_SSE_KEEPALIVE_MS; a 2026-07-28
    //  call's or listen stream every tick, since writing is how an
    //  HTTP/1.1 server learns that its client left (h2o reads nothing
    //  while it answers), and there leaving cancels the call or ends the
    //  subscription.
    bool all = ++self->ticks % (SB_SSE_KEEPALIVE_MS / SB_SSE_PROBE_MS) == 0;
    int64_t now = sb_clock_wall_ms ();
    sb_sse_t *next;
    for (sb_sse_t *s = self->streams; s; s = next) {
        next = s->next;     //  a flush may end the connection and free s
        if (s->standalone && s->expires_ms && now >= s->expires_ms) {
            //  Its token expired: the owner forgets it first, as when the
            //  client leaves; the client reconnects with a fresh token.
            sb_log_info ("sse_expired", "stream=%" PRIu64 " listen=%d: the access token expired",
                         s->number, s->listen);
            if (s->on_gone) {
                sb_sse_gone_fn *fn = s->on_gone;
                s->on_gone = NULL;
                fn (s->gone_arg);
            }
            s_stream_free (s);
            continue;
        }
        if (s->conn && (all || (s->unnumbered && (!s->standalone || s->listen)))) {
            S_APPEND_LITERAL (s->conn, ": keep-alive\n\n");
            s_conn_flush (s->conn);
        }
    }
    h2o_timeout_link (self->loop, &self->keepalive, &self->keepalive_entry);
}

sb_sse_hub_t *
sb_sse_hub_new (h2o_loop_t *loop)
{
    sb_sse_hub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ring = calloc (SB_MAX_SSE_REPLAY, sizeof (s_event_t));
    uint8_t tag [4];
    if (!self->ring || sb_crypto_random (tag, sizeof tag)) {
        free (self->ring);
        free (self);
        return NULL;
    }
    sb_hex_encode (tag, sizeof tag, self->tag);
    self->loop = loop;
    h2o_timeout_init (loop, &self->keepalive, SB_SSE_PROBE_MS);
    self->keepalive_entry.cb = s_on_keepalive;
    h2o_timeout_link (loop, &self->keepalive, &self->keepalive_entry);
    return self;
}

void
sb_sse_hub_destroy (sb_sse_hub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_sse_hub_t *self = *self_p;
    while (self->streams)
        s_stream_free (self->streams);
    while (self->count)
        s_ring_drop_oldest (self);
    if (h2o_timeout_is_linked (&self->keepalive_entry))
        h2o_timeout_unlink (&self->keepalive_entry);
    h2o_timeout_dispose (self->loop, &self->keepalive);
    free (self->ring);
    free (self);
    *self_p = NULL;
}
