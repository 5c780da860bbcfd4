/*  gateway/sb_session.h — MCP sessions (Mcp-Session-Id) that any gateway
    process validates without shared storage, and the bounded set of
    sessions ended by DELETE.

    A session ID is "s1.<payload>.<mac>": payload is base64url of compact
    JSON {"t":tenant,"u":user,"v":negotiated version,"c":client capability
    bits,"i":issued-at seconds,"n":random nonce}, where user is base64url of
    a keyed digest of the token's `sub` (bounded size, and the ID does not
    show who the user is); mac is base64url of
    HMAC-SHA256(payload) under a key derived from the session key
    (--session-key-file, a secret of its own, not the token key). Every
    character is visible ASCII, as the transport requires. Whoever holds the
    session key can verify it; nobody else can forge or alter one.

    Ending a session: DELETE puts its signature in the ended set of the
    gateway that received it, and that gateway broadcasts the end through
    the broker (sb_cluster.h), so every other gateway puts it in its own
    set too. A gateway that missed the broadcast (not connected to the
    broker at that moment) accepts the ID until the session ages out
    (SB_MAX_SESSION_AGE_S). The set is bounded (SB_MAX_ENDED_SESSIONS, the
    ends of every gateway together): when it is full the entry closest to
    its own expiry is forgotten first. */
#ifndef SB_SESSION_H_INCLUDED
#define SB_SESSION_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_attr.h"
#include "sb_crypto.h"
#include "sb_msg.h"

#define SB_MAX_SESSION_ID_LEN    384         /* Mcp-Session-Id, bytes */
#define SB_MAX_SESSION_AGE_S     86400       /* a session older than this is unknown (404) */
#define SB_SESSION_SKEW_S        300         /* issued-at this far in the future still accepted */
#define SB_MAX_ENDED_SESSIONS    4096        /* ended sessions each gateway remembers */
#define SB_MAX_PROTOCOL_LEN      16          /* "2025-11-25" */
#define SB_SESSION_USER_LEN      16          /* digest of the user in a session, bytes */

/* Client capability bits carried in the session. */
#define SB_CLIENT_SAMPLING       0x01u
#define SB_CLIENT_ELICITATION    0x02u
#define SB_CLIENT_ROOTS          0x04u
#define SB_CLIENT_ELICIT_URL     0x08u

/*  A verified session. */
typedef struct {
    char tenant [SB_MAX_TENANT_LEN + 1];        /* the tenant it was issued to */
    uint8_t user [SB_SESSION_USER_LEN];         /* digest of the user it was issued to */
    char protocol [SB_MAX_PROTOCOL_LEN + 1];    /* negotiated protocol version */
    unsigned caps;                              /* SB_CLIENT_* bits */
    int64_t issued_at;                          /* seconds since the epoch */
    uint8_t mac [SB_HMAC_SHA256_LEN];           /* the signature: the session's identity */
} sb_session_t;

typedef struct _sb_sessions_t sb_sessions_t;

/*  Creates the session authority; its keys are derived from `secret`, the
    session key (one for session IDs, one for the user digest in them, one
    for list cursors, from which requestState's is derived). Returns NULL on
    failure. */
sb_sessions_t *sb_sessions_new (const uint8_t *secret, size_t secret_len) SB_MUST_USE;

/*  Destroys it and nulls the caller's pointer. Idempotent. */
void sb_sessions_destroy (sb_sessions_t **self_p);

/*  Issues a new session ID (new string, caller frees) for `tenant`, the
    user `subject` (the token's sub, non-empty), `protocol` and `caps`,
    issued at `now` (seconds). NULL on failure. */
char *sb_sessions_issue (sb_sessions_t *self, const char *tenant, const char *subject,
                         const char *protocol, unsigned caps, int64_t now) SB_MUST_USE;

/*  True when the verified `session` belongs to `tenant` and `subject`:
    the only one who may use it. Another user of the same tenant is as
    much a stranger to it as another tenant. */
bool sb_sessions_owned_by (sb_sessions_t *self, const sb_session_t *session,
                           const char *tenant, const char *subject) SB_MUST_USE;

/*  Verifies `len` bytes of `id` at time `now`: signature, shape, age, and
    that it was not ended here. Returns 0 and fills *session, or -1. */
int sb_sessions_verify (sb_sessions_t *self, const char *id, size_t len, int64_t now,
                        sb_session_t *session) SB_MUST_USE;

/*  Ends `session` on this gateway (the caller tells the others), calling
    the end hook, if one is set, first. */
void sb_sessions_end (sb_sessions_t *self, const sb_session_t *session, int64_t now);

/*  Sets the hook sb_sessions_end calls with the ended session and `arg`
    (e.g. to forget the session's resource subscriptions); NULL: none. */
typedef void (sb_sessions_end_fn) (const sb_session_t *session, void *arg);
void sb_sessions_on_end (sb_sessions_t *self, sb_sessions_end_fn *fn, void *arg);

/*  Sessions in the ended set now (after dropping expired ones at `now`). */
size_t sb_sessions_ended_count (sb_sessions_t *self, int64_t now);

/*  The key for signing list cursors (SB_HMAC_SHA256_LEN bytes, borrowed). */
const uint8_t *sb_sessions_cursor_key (sb_sessions_t *self);

/*  The client capability bits of an initialize request's "capabilities"
    object (a jansson json_t *, may be NULL). */
unsigned sb_session_caps_from_json (const void *capabilities);

#endif
