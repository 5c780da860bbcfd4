/*  workers/sb_curl_loop.h — a libcurl multi handle driven by a worker's
    reactor: curl's sockets become watched fds, its timeout one reactor
    timer, and every finished transfer is handed to the owner's callback.
    The api role's upstream calls (sb_api.c) and the token role's Client ID
    Metadata Document fetches (sb_cimd.c) each own one. Nothing blocks:
    curl is only ever driven by curl_multi_socket_action from the reactor
    (and by the owner's curl_multi_add_handle). */
#ifndef SB_CURL_LOOP_H_INCLUDED
#define SB_CURL_LOOP_H_INCLUDED

#include <curl/curl.h>

#include "sb_attr.h"
#include "sb_reactor.h"

typedef struct _sb_curl_loop_t sb_curl_loop_t;

/*  A transfer of the loop's multi handle ended with `code`. The callee
    must curl_multi_remove_handle (easy) (it may then free or reuse it). */
typedef void (sb_curl_done_fn) (CURL *easy, CURLcode code, void *arg);

/*  Creates a multi handle on `reactor` (borrowed; must outlive the loop),
    taking one of its timers; `done` is called with `arg` for every
    finished transfer. Returns NULL when out of memory or timers. */
sb_curl_loop_t *sb_curl_loop_new (sb_reactor_t *reactor, sb_curl_done_fn *done, void *arg)
    SB_MUST_USE;

/*  Cleans the multi handle up (the owner has removed its easy handles
    first), frees the timer and nulls the caller's pointer. Idempotent. */
void sb_curl_loop_destroy (sb_curl_loop_t **self_p);

/*  The multi handle, for curl_multi_add_handle/_remove_handle/_setopt. */
CURLM *sb_curl_loop_multi (sb_curl_loop_t *self);

#endif
