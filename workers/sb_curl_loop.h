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
#include <stdbool.h>
#include <stddef.h>

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

/*  Sets on `easy` what every request a worker makes on its own behalf
    sets: `url`, only `protocols` ("https", "http,https"), no redirect
    followed, no signals, the TLS peer and host verified, at most
    `max_bytes` of answer, `headers` (borrowed: they must outlive the
    transfer), `on_write` and `on_header` with `arg` as their data, `arg`
    as the private pointer, and `errbuf` (CURL_ERROR_SIZE bytes) for
    curl's sentence. The caller sets the timeouts and what else its
    request needs. */
void sb_curl_easy_defaults (CURL *easy, const char *url, const char *protocols,
                            struct curl_slist *headers, curl_off_t max_bytes,
                            curl_write_callback on_write, curl_write_callback on_header,
                            void *arg, char *errbuf);

/*  Appends `n` bytes of `data` (what a write callback gets) to `body`,
    `*len` bytes used of room for `max` and a NUL, and keeps it
    NUL-terminated. Returns false, appending nothing, when the answer
    would pass `max`: the callback then returns 0 and curl aborts. */
bool sb_curl_body_append (char *body, size_t *len, size_t max, const char *data, size_t n);

/*  When the header line `data` (`n` bytes, as a header callback gets it)
    is header `name` (with its colon: "retry-after:"; any case), copies
    its value, what follows the colon cut to `size` - 1 bytes, into
    `value` and returns true; else false. */
bool sb_curl_header_value (const char *data, size_t n, const char *name, char *value,
                           size_t size);

#endif
