/*  tests/fuzz/fuzz_session.c — fuzz target for the Mcp-Session-Id decoder
    (gateway/sb_session.c: sb_sessions_verify), which reads a header every
    request after initialize carries.

    Each input is verified twice: as sent (an ID only the key can sign, so
    almost always refused), and with its payload re-signed under the
    session key — derived from the token key as sb_sessions_new does, which
    the first input checks against a real sb_sessions_issue — so that the
    payload parsing behind the signature is reached with any bytes as well.
    Invariants: verify returns 0 or -1 and reads only the bytes given; a
    session that verifies has a tenant and a protocol that fit, was issued
    inside the accepted window, re-issued (to S_USER) verifies to the same
    fields and belongs to S_USER of its tenant and to no other user, and
    once ended verifies no more. A violation aborts.

    Seeds (tests/fuzz/corpus/session): IDs issued by sb_sessions_issue
    with this target's key for user S_USER, and near misses (another
    prefix, no dot, a short MAC, a payload that is not JSON, no user). With -DSB_FUZZ=ON (clang) this
    is a libFuzzer target; otherwise tests/fuzz/sb_fuzz_replay.c replays
    the corpus on every ctest run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_session.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_session: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

#define S_NOW       1750000000              /* the fuzz clock, seconds */
#define S_PREFIX    "s1."                   /* what every session ID starts with */
#define S_LABEL     "switchboard mcp session v1"    /* sb_session.c's session key label */
#define S_USER      "alice"                 /* the user the seeds were issued to */

//  The token key the seeds were issued under: 32 bytes 0x01, 0x02, … 0x20.
static const uint8_t s_key [32] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};

static sb_sessions_t *s_sessions;
static uint8_t s_session_key [SB_HMAC_SHA256_LEN];

//  "s1.<payload>.<mac>" for `payload` (`len` bytes), MAC made with the
//  session key. New string.
static char *
s_sign (const char *payload, size_t len)
{
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (s_session_key, sizeof s_session_key, (const uint8_t *) payload, len, mac);
    char *mac_b64 = sb_base64url_encode (mac, sizeof mac);
    CHECK (mac_b64);
    size_t prefix = strlen (S_PREFIX), mac_len = strlen (mac_b64);
    char *id = malloc (prefix + len + 1 + mac_len + 1);
    CHECK (id);
    memcpy (id, S_PREFIX, prefix);
    memcpy (id + prefix, payload, len);
    id [prefix + len] = '.';
    memcpy (id + prefix + len + 1, mac_b64, mac_len + 1);
    free (mac_b64);
    return id;
}

//  The session key, derived as sb_sessions_new does; checked once against
//  an ID it issued, so that re-signing here can never drift from it.
static void
s_setup (void)
{
    s_sessions = sb_sessions_new (s_key, sizeof s_key);
    CHECK (s_sessions);
    sb_hmac_sha256 (s_key, sizeof s_key, (const uint8_t *) S_LABEL, strlen (S_LABEL), s_session_key);
    char *issued = sb_sessions_issue (s_sessions, "acme", S_USER, "2025-11-25", 3, S_NOW);
    CHECK (issued);
    const char *payload = issued + strlen (S_PREFIX);
    const char *dot = strchr (payload, '.');
    CHECK (dot);
    char *signed_here = s_sign (payload, (size_t) (dot - payload));
    CHECK (strcmp (signed_here, issued) == 0);
    free (signed_here);
    free (issued);
}

//  True when JSON writes `text` with an escape (or more than one byte).
static bool
s_needs_escape (const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\')
            return true;
    return false;
}

//  Verifies `len` bytes at `id` (a copy of exactly that size, so that
//  ASan sees any read past them) and checks what a success says.
static int
s_verify (const char *id, size_t len)
{
    char *copy = malloc (len? len: 1);
    CHECK (copy);
    memcpy (copy, id, len);
    sb_session_t session;
    int rc = sb_sessions_verify (s_sessions, copy, len, S_NOW, &session);
    CHECK (rc == 0 || rc == -1);
    if (rc == 0) {
        size_t tenant_len = strnlen (session.tenant, sizeof session.tenant);
        CHECK (tenant_len > 0 && tenant_len < sizeof session.tenant);
        CHECK (strnlen (session.protocol, sizeof session.protocol) < sizeof session.protocol);
        CHECK (session.issued_at <= S_NOW + SB_SESSION_SKEW_S);
        CHECK (S_NOW - session.issued_at <= SB_MAX_SESSION_AGE_S);

        //  Issued again from what it says, it verifies to the same.
        CHECK (!sb_sessions_owned_by (s_sessions, &session, session.tenant, "mallory"));
        char *again = sb_sessions_issue (s_sessions, session.tenant, S_USER, session.protocol,
                                         session.caps, session.issued_at);
        //  (Unless escaping its text overflows the payload: the gateway
        //  issues only tenants a token carried, [A-Za-z0-9._:-].)
        CHECK (again || s_needs_escape (session.tenant) || s_needs_escape (session.protocol));
        if (!again) {
            free (copy);
            return rc;
        }
        sb_session_t round;
        CHECK (sb_sessions_verify (s_sessions, again, strlen (again), S_NOW, &round) == 0);
        CHECK (strcmp (round.tenant, session.tenant) == 0);
        CHECK (strcmp (round.protocol, session.protocol) == 0);
        CHECK (round.caps == session.caps && round.issued_at == session.issued_at);
        CHECK (sb_sessions_owned_by (s_sessions, &round, session.tenant, S_USER));
        CHECK (!sb_sessions_owned_by (s_sessions, &round, session.tenant, "mallory"));
        free (again);

        //  Ended, it is refused; the ended set is cleared for the next input.
        sb_sessions_end (s_sessions, &session, S_NOW);
        CHECK (sb_sessions_verify (s_sessions, copy, len, S_NOW, &round) == -1);
        sb_sessions_destroy (&s_sessions);
        s_sessions = sb_sessions_new (s_key, sizeof s_key);
        CHECK (s_sessions);
    }
    free (copy);
    return rc;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_sessions)
        s_setup ();
    if (size > 2 * SB_MAX_SESSION_ID_LEN)
        return 0;               //  refused on length alone; nothing to learn
    const char *text = (const char *) data;
    s_verify (text, size);

    //  The payload re-signed: the input's part between "s1." and the first
    //  dot after it, or the whole input when it does not start so.
    size_t prefix = strlen (S_PREFIX);
    const char *payload = text;
    size_t len = size;
    if (size >= prefix && memcmp (text, S_PREFIX, prefix) == 0) {
        payload = text + prefix;
        len = size - prefix;
        const char *dot = memchr (payload, '.', len);
        if (dot)
            len = (size_t) (dot - payload);
    }
    if (memchr (payload, '.', len))
        return 0;               //  a dot would end the payload early
    char *id = s_sign (payload, len);
    s_verify (id, strlen (S_PREFIX) + len + 1 + strlen (id + prefix + len + 1));
    free (id);
    return 0;
}
