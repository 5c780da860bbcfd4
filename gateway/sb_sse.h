/*  gateway/sb_sse.h — Server-Sent Events streams of the Streamable HTTP
    transport on the gateway's h2o loop: POST responses streamed as SSE,
    standalone GET streams for server messages, event IDs, keep-alives and
    resumption by Last-Event-ID.

    Each stream has an ID unique on this gateway; each event on it an ID
    "<gateway tag>.<stream>.<seq>" (the tag is random per process, so an ID
    from another gateway is recognised as foreign). Every event with data is
    also kept in a per-gateway replay ring (SB_MAX_SSE_REPLAY events and
    SB_MAX_SSE_REPLAY_BYTES at most; the oldest go first) with the owner
    (session) that may read it back. A GET carrying Last-Event-ID of a stream
    owned by the same session gets the events after that ID replayed; if the
    stream is still open (a tool call still running after its POST
    connection went away) the GET connection takes its place and receives
    the rest. Resumption only works on the gateway that holds the ring.

    A client leaving does not end a POST stream: its call keeps running and
    its result goes to the ring for a later resumption. Standalone GET
    streams end when the client leaves, when their session is ended, or
    when the gateway stops.

    A listen stream (2026-07-28 subscriptions/listen: a POST response that
    stays open) is standalone in that the hub frees it when its client
    leaves, telling its owner first (sb_sse_on_gone); but it belongs to no
    session: the session calls (count, notify, broadcast, close) pass it
    by, and its owner sends to it and ends it itself.

    h2o 2.2.5 allows one h2o_send in flight per request: data written while
    one is in flight waits in a per-connection buffer (SB_MAX_SSE_PENDING
    bytes; past it the connection is ended). */
#ifndef SB_SSE_H_INCLUDED
#define SB_SSE_H_INCLUDED

#include "sb_attr.h"
#include "sb_http.h"

#include <stdbool.h>
#include <stdint.h>

#define SB_MAX_SSE_STREAMS        4                 /* standalone GET streams per session */
#define SB_MAX_SSE_REPLAY         1024              /* events kept for resumption per gateway */
#define SB_MAX_SSE_REPLAY_BYTES   (16u << 20)       /* their total size, bytes */
#define SB_MAX_SSE_PENDING        (8u << 20)        /* unsent bytes per connection */
#define SB_MAX_SSE_EVENT_ID_LEN   64                /* Last-Event-ID accepted, bytes */
#define SB_SSE_KEEPALIVE_MS       15000             /* comment line on idle streams */
#define SB_SSE_PROBE_MS           1000              /* the same on 2026-07-28 call streams */
#define SB_SSE_RETRY_MS           1000              /* "retry:" sent in priming events */

typedef struct _sb_sse_hub_t sb_sse_hub_t;
typedef struct _sb_sse_t sb_sse_t;

/*  Creates the hub (stream table, replay ring, keep-alive timer) on `loop`. */
sb_sse_hub_t *sb_sse_hub_new (h2o_loop_t *loop) SB_MUST_USE;

/*  Ends every connection (final chunk), frees every stream and the ring,
    and nulls the caller's pointer. Idempotent. POST streams still held by
    callers must have been ended first. */
void sb_sse_hub_destroy (sb_sse_hub_t **self_p);

/*  How a stream behaves (flags for sb_sse_open). */
#define SB_SSE_STANDALONE   1   /* a GET stream, freed by the hub when its connection ends;
                                   otherwise a POST stream the caller ends with sb_sse_end */
#define SB_SSE_PRIMING      2   /* send an event with an ID, "retry:" and empty data first
                                   (2025-11-25) */
#define SB_SSE_UNNUMBERED   4   /* events carry no ID and are not kept for resumption
                                   (2026-07-28: no Last-Event-ID) */
#define SB_SSE_LISTEN       8   /* with SB_SSE_STANDALONE: a listen stream (see above); probed
                                   every SB_SSE_PROBE_MS like a 2026-07-28 call stream */
#define SB_SSE_QUIET        16  /* without SB_SSE_PRIMING: nothing is written at open, so the
                                   headers leave with the first event (a call answered before
                                   any notification takes one write, not three) */

/*  Starts a 200 text/event-stream response on `req` (headers the caller
    added stay; X-Accel-Buffering: no is added so proxies pass events on at
    once) and returns its stream. `owner` (copied) names who may resume it
    (the session ID, or "tenant:<t>" without one). `flags`: SB_SSE_*.
    Returns NULL when out of memory (nothing was sent). */
sb_sse_t *sb_sse_open (sb_sse_hub_t *self, h2o_req_t *req, const char *owner, int flags)
    SB_MUST_USE;

/*  Called once when the client's connection goes away while a stream is
    still open (never after sb_sse_end). A POST stream stays valid and the
    callback may end it; a standalone stream is freed by the hub right
    after the callback returns, so the callback must not end it or send on
    it, only forget it. */
typedef void (sb_sse_gone_fn) (void *arg);

/*  Sets the callback for a stream's connection going away. Under
    2026-07-28, closing the response stream cancels the request (a call)
    or ends the subscription (a listen stream). */
void sb_sse_on_gone (sb_sse_t *stream, sb_sse_gone_fn *fn, void *arg);

/*  Sends one JSON-RPC message (JSON text, no newlines needed) as an event
    with a new ID, and keeps it for resumption. Returns 0, or -1 when out of
    memory. The stream need not be connected. */
int sb_sse_send (sb_sse_t *stream, const char *json) SB_MUST_USE;

/*  sb_sse_send, then sb_sse_end, the event and the end of the response
    leaving in one write when the connection is idle. Nulls *stream_p;
    the stream is ended even when sending fails (-1, out of memory). */
int sb_sse_send_last (sb_sse_t **stream_p, const char *json) SB_MUST_USE;

/*  Ends a GET or listen stream cleanly (final chunk; its owner told first
    through on_gone, as when the client leaves) once the wall clock passes
    `wall_ms`: the expiry of the access token that opened it, so a stream
    never outlives the right to read it. Checked every SB_SSE_PROBE_MS.
    0 (the default): no end. POST streams end with their call. */
void sb_sse_set_expiry (sb_sse_t *stream, int64_t wall_ms);

/*  Ends a POST or listen stream: final chunk if connected, then forgets it
    (its events stay replayable; its on_gone is not called). Nulls the
    caller's pointer. */
void sb_sse_end (sb_sse_t **stream_p);

/*  True while the stream has a connection. */
bool sb_sse_connected (sb_sse_t *stream);

/*  Resumes after `last_id` (len bytes) for `owner` on `req`: replays the
    events after it, then attaches `req` to the stream if it is still open,
    or ends the response. Returns 0 when it answered `req`, -1 when the ID
    is not one of this gateway's streams for this owner, or names an
    SB_SSE_UNNUMBERED stream (nothing sent). */
int sb_sse_resume (sb_sse_hub_t *self, h2o_req_t *req, const char *owner,
                   const char *last_id, size_t len) SB_MUST_USE;

/*  Standalone streams of `owner` open now (listen streams not counted). */
size_t sb_sse_count (sb_sse_hub_t *self, const char *owner);

/*  Sends `json` on every standalone stream of `owner` (server-initiated
    messages: list_changed, resources/updated…). Returns how many. */
size_t sb_sse_notify (sb_sse_hub_t *self, const char *owner, const char *json);

/*  Sends `json` on every standalone stream of every owner (a change that
    concerns every session, e.g. notifications/tools/list_changed). Returns
    how many. */
size_t sb_sse_broadcast (sb_sse_hub_t *self, const char *json);

/*  Whether the standalone streams of `owner` get a message (sb_sse_notify_if). */
typedef bool (sb_sse_owner_fn) (const char *owner, void *arg);

/*  Sends `json` on every standalone stream whose owner `want` accepts (a
    change that concerns some sessions, e.g. one tenant's). Returns how many. */
size_t sb_sse_notify_if (sb_sse_hub_t *self, const char *json, sb_sse_owner_fn *want, void *arg);

/*  Ends the standalone streams of `owner` (NULL: of everyone) cleanly;
    not the listen streams, which their owner ends. */
void sb_sse_close_standalone (sb_sse_hub_t *self, const char *owner);

#endif
