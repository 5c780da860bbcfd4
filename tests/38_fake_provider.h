/*  tests/38_fake_provider.h — a fake OAuth 2 token endpoint for the
    tests of workers/sb_provider.c and sb_connections.c: a plain socket
    server on 127.0.0.1 in a thread of the test (one thread per
    connection, one answer per connection), which counts the grants it
    was asked for, remembers the last request, and answers as the test
    sets it: tokens (rotating the refresh token or not), invalid_grant,
    503 with Retry-After, a raw answer, or nothing at all (hang). */
#ifndef SB_FAKE_PROVIDER_H_INCLUDED
#define SB_FAKE_PROVIDER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    FAKE_TOKENS = 0,        /* 200 with tokens (see rotate, expires_in, instance_url) */
    FAKE_INVALID_GRANT,     /* 400 invalid_grant */
    FAKE_UNAVAILABLE,       /* 503, Retry-After: 1 */
    FAKE_RAW,               /* `raw` as it is (a whole HTTP response) */
    FAKE_HANG,              /* read the request, never answer */
} fake_mode_t;

typedef struct _fake_provider_t fake_provider_t;

/*  Starts the server on a free port. NULL on failure. */
fake_provider_t *fake_provider_new (void);
void fake_provider_destroy (fake_provider_t **self_p);

/*  "http://127.0.0.1:<port>" (borrowed). */
const char *fake_provider_url (fake_provider_t *self);

/*  How the next requests are answered. `raw` (copied) only for FAKE_RAW. */
void fake_provider_set (fake_provider_t *self, fake_mode_t mode, const char *raw);

/*  Tokens: rotate the refresh token on each refresh (true by default);
    expires_in (3600 by default); answer this many ms late (0). */
void fake_provider_tokens (fake_provider_t *self, bool rotate, int expires_in, int delay_ms);

/*  The refresh token the provider accepts now ("" accepts any): a refresh
    with another one is answered invalid_grant and counted as a mismatch.
    On a rotating refresh the new token becomes the accepted one. */
void fake_provider_accept (fake_provider_t *self, const char *refresh_token);

/*  Grants answered with tokens, requests received, refreshes with a
    refresh token it did not accept. */
int fake_provider_grants (fake_provider_t *self);
int fake_provider_requests (fake_provider_t *self);
int fake_provider_mismatches (fake_provider_t *self);

/*  Waits until `count` requests were received (0) or `timeout_ms` passed (-1). */
int fake_provider_wait_requests (fake_provider_t *self, int count, int timeout_ms);

/*  The last request's body and Authorization header value ("" if none),
    copied into `out`. */
void fake_provider_last_body (fake_provider_t *self, char *out, size_t size);
void fake_provider_last_authorization (fake_provider_t *self, char *out, size_t size);

/*  The access and refresh tokens of the last tokens answer ("at-<n>", "rt-<n>"). */
void fake_provider_last_tokens (fake_provider_t *self, char *access, char *refresh, size_t size);

#endif
