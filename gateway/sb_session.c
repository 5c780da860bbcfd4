/*  gateway/sb_session.c — signed, stateless MCP session IDs and the
    bounded set of sessions ended on this gateway. */
#include "sb_session.h"
#include "sb_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_SESSION_PREFIX       "s1."
#define SB_SESSION_NONCE_LEN    12          /* random bytes per session */
#define SB_MAX_SESSION_PAYLOAD  320         /* decoded payload, bytes */

typedef struct {
    uint8_t mac [SB_HMAC_SHA256_LEN];       /* the ended session's signature */
    int64_t expires_at;                     /* when it would age out anyway */
} s_ended_t;

struct _sb_sessions_t {
    uint8_t session_key [SB_HMAC_SHA256_LEN];   /* signs session IDs */
    uint8_t cursor_key [SB_HMAC_SHA256_LEN];    /* signs list cursors */
    uint8_t user_key [SB_HMAC_SHA256_LEN];      /* keys the digest of a session's user */
    s_ended_t *ended;                           /* SB_MAX_ENDED_SESSIONS slots */
    size_t ended_count;                         /* slots in use (packed at the front) */
    sb_sessions_end_fn *on_end;                 /* called by sb_sessions_end, or NULL */
    void *on_end_arg;                           /* its argument */
};

sb_sessions_t *
sb_sessions_new (const uint8_t *secret, size_t secret_len)
{
    sb_sessions_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ended = calloc (SB_MAX_ENDED_SESSIONS, sizeof (s_ended_t));
    if (!self->ended) {
        free (self);
        return NULL;
    }
    static const char session_label [] = "switchboard mcp session v1";
    static const char cursor_label [] = "switchboard mcp cursor v1";
    static const char user_label [] = "switchboard mcp session user v1";
    sb_hmac_sha256 (secret, secret_len, (const uint8_t *) session_label,
                    sizeof session_label - 1, self->session_key);
    sb_hmac_sha256 (secret, secret_len, (const uint8_t *) cursor_label,
                    sizeof cursor_label - 1, self->cursor_key);
    sb_hmac_sha256 (secret, secret_len, (const uint8_t *) user_label,
                    sizeof user_label - 1, self->user_key);
    return self;
}

void
sb_sessions_destroy (sb_sessions_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_sessions_t *self = *self_p;
    free (self->ended);
    memset (self, 0, sizeof *self);
    free (self);
    *self_p = NULL;
}

const uint8_t *
sb_sessions_cursor_key (sb_sessions_t *self)
{
    return self->cursor_key;
}

unsigned
sb_session_caps_from_json (const void *capabilities)
{
    const json_t *caps = capabilities;
    if (!json_is_object (caps))
        return 0;
    unsigned bits = 0;
    if (json_is_object (json_object_get (caps, "sampling")))
        bits |= SB_CLIENT_SAMPLING;
    json_t *elicitation = json_object_get (caps, "elicitation");
    if (json_is_object (elicitation)) {
        bits |= SB_CLIENT_ELICITATION;
        if (json_object_get (elicitation, "url"))
            bits |= SB_CLIENT_ELICIT_URL;
    }
    if (json_is_object (json_object_get (caps, "roots")))
        bits |= SB_CLIENT_ROOTS;
    return bits;
}

//  The digest of user `subject` that a session carries.
static void
s_user_digest (sb_sessions_t *self, const char *subject, uint8_t out [SB_SESSION_USER_LEN])
{
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (self->user_key, sizeof self->user_key, (const uint8_t *) subject,
                    strlen (subject), mac);
    memcpy (out, mac, SB_SESSION_USER_LEN);
}

char *
sb_sessions_issue (sb_sessions_t *self, const char *tenant, const char *subject,
                   const char *protocol, unsigned caps, int64_t now)
{
    char *id = NULL, *payload_b64 = NULL, *mac_b64 = NULL, *payload = NULL, *user_b64 = NULL;
    uint8_t nonce [SB_SESSION_NONCE_LEN], user [SB_SESSION_USER_LEN];
    char nonce_hex [2 * SB_SESSION_NONCE_LEN + 1];
    if (!subject || !subject [0] || sb_crypto_random (nonce, sizeof nonce))
        return NULL;
    sb_hex_encode (nonce, sizeof nonce, nonce_hex);
    s_user_digest (self, subject, user);
    user_b64 = sb_base64url_encode (user, sizeof user);
    if (!user_b64)
        return NULL;
    json_t *doc = json_pack ("{s:s, s:s, s:s, s:i, s:I, s:s}", "t", tenant, "u", user_b64,
                             "v", protocol, "c", (int) caps, "i", (json_int_t) now,
                             "n", nonce_hex);
    payload = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    if (!payload || strlen (payload) > SB_MAX_SESSION_PAYLOAD)
        goto out;
    payload_b64 = sb_base64url_encode ((const uint8_t *) payload, strlen (payload));
    if (!payload_b64)
        goto out;
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 (self->session_key, sizeof self->session_key,
                    (const uint8_t *) payload_b64, strlen (payload_b64), mac);
    mac_b64 = sb_base64url_encode (mac, sizeof mac);
    if (!mac_b64)
        goto out;
    size_t prefix = strlen (SB_SESSION_PREFIX), plen = strlen (payload_b64), mlen = strlen (mac_b64);
    if (prefix + plen + 1 + mlen > SB_MAX_SESSION_ID_LEN)
        goto out;
    id = malloc (prefix + plen + 1 + mlen + 1);
    if (!id)
        goto out;
    memcpy (id, SB_SESSION_PREFIX, prefix);
    memcpy (id + prefix, payload_b64, plen);
    id [prefix + plen] = '.';
    memcpy (id + prefix + plen + 1, mac_b64, mlen + 1);
out:
    free (user_b64);
    free (payload);
    free (payload_b64);
    free (mac_b64);
    return id;
}

//  Drops ended entries whose session has aged out anyway.
static void
s_ended_expire (sb_sessions_t *self, int64_t now)
{
    for (size_t i = 0; i < self->ended_count; ) {
        if (self->ended [i].expires_at <= now)
            self->ended [i] = self->ended [--self->ended_count];
        else
            i++;
    }
}

static bool
s_ended_has (sb_sessions_t *self, const uint8_t *mac)
{
    for (size_t i = 0; i < self->ended_count; i++)
        if (sb_crypto_equal (self->ended [i].mac, mac, SB_HMAC_SHA256_LEN))
            return true;
    return false;
}

int
sb_sessions_verify (sb_sessions_t *self, const char *id, size_t len, int64_t now,
                    sb_session_t *session)
{
    memset (session, 0, sizeof *session);
    size_t prefix = strlen (SB_SESSION_PREFIX);
    if (len <= prefix || len > SB_MAX_SESSION_ID_LEN || memcmp (id, SB_SESSION_PREFIX, prefix) != 0)
        return -1;
    const char *payload_b64 = id + prefix;
    const char *dot = memchr (payload_b64, '.', len - prefix);
    if (!dot)
        return -1;
    size_t payload_len = (size_t) (dot - payload_b64);
    const char *mac_b64 = dot + 1;
    size_t mac_len = len - prefix - payload_len - 1;
    uint8_t mac [SB_HMAC_SHA256_LEN], given [SB_HMAC_SHA256_LEN + 4];
    size_t given_len = 0;
    if (payload_len == 0
    ||  sb_base64url_decode_strict (mac_b64, mac_len, given, sizeof given, &given_len)
    ||  given_len != SB_HMAC_SHA256_LEN)
        return -1;
    sb_hmac_sha256 (self->session_key, sizeof self->session_key,
                    (const uint8_t *) payload_b64, payload_len, mac);
    if (!sb_crypto_equal (mac, given, SB_HMAC_SHA256_LEN))
        return -1;

    //  Signed by us: the payload is ours, but check it all the same.
    uint8_t payload [SB_MAX_SESSION_PAYLOAD + 4];
    size_t size = 0;
    if (sb_base64url_decode_strict (payload_b64, payload_len, payload, sizeof payload, &size))
        return -1;
    json_t *doc = sb_json_parse ((const char *) payload, size, 0, NULL);
    json_t *tenant = json_object_get (doc, "t");
    json_t *user = json_object_get (doc, "u");
    json_t *protocol = json_object_get (doc, "v");
    json_t *caps = json_object_get (doc, "c");
    json_t *issued = json_object_get (doc, "i");
    int rc = -1;
    if (!json_is_string (tenant) || json_string_length (tenant) == 0
    ||  json_string_length (tenant) > SB_MAX_TENANT_LEN
    ||  !json_is_string (protocol) || json_string_length (protocol) > SB_MAX_PROTOCOL_LEN
    ||  !json_is_integer (caps) || !json_is_integer (issued) || !json_is_string (user))
        goto out;
    uint8_t user_digest [SB_SESSION_USER_LEN];
    size_t user_len = 0;
    if (sb_base64url_decode_strict (json_string_value (user), json_string_length (user),
                                    user_digest, sizeof user_digest, &user_len)
    ||  user_len != SB_SESSION_USER_LEN)
        goto out;
    int64_t issued_at = json_integer_value (issued);
    if (issued_at > now + SB_SESSION_SKEW_S || now - issued_at > SB_MAX_SESSION_AGE_S)
        goto out;
    if (s_ended_has (self, mac))
        goto out;
    snprintf (session->tenant, sizeof session->tenant, "%s", json_string_value (tenant));
    snprintf (session->protocol, sizeof session->protocol, "%s", json_string_value (protocol));
    memcpy (session->user, user_digest, sizeof user_digest);
    session->caps = (unsigned) json_integer_value (caps);
    session->issued_at = issued_at;
    memcpy (session->mac, mac, sizeof mac);
    rc = 0;
out:
    json_decref (doc);
    return rc;
}

bool
sb_sessions_owned_by (sb_sessions_t *self, const sb_session_t *session,
                      const char *tenant, const char *subject)
{
    if (!subject || !subject [0] || strcmp (session->tenant, tenant) != 0)
        return false;
    uint8_t user [SB_SESSION_USER_LEN];
    s_user_digest (self, subject, user);
    return sb_crypto_equal (user, session->user, sizeof user);
}

void
sb_sessions_end (sb_sessions_t *self, const sb_session_t *session, int64_t now)
{
    if (self->on_end)
        self->on_end (session, self->on_end_arg);
    s_ended_expire (self, now);
    if (s_ended_has (self, session->mac))
        return;
    if (self->ended_count == SB_MAX_ENDED_SESSIONS) {
        //  Full: forget the entry that would expire first.
        size_t soonest = 0;
        for (size_t i = 1; i < self->ended_count; i++)
            if (self->ended [i].expires_at < self->ended [soonest].expires_at)
                soonest = i;
        self->ended [soonest] = self->ended [--self->ended_count];
    }
    s_ended_t *entry = &self->ended [self->ended_count++];
    memcpy (entry->mac, session->mac, sizeof entry->mac);
    entry->expires_at = session->issued_at + SB_MAX_SESSION_AGE_S + 1;
}

size_t
sb_sessions_ended_count (sb_sessions_t *self, int64_t now)
{
    s_ended_expire (self, now);
    return self->ended_count;
}

void
sb_sessions_on_end (sb_sessions_t *self, sb_sessions_end_fn *fn, void *arg)
{
    self->on_end = fn;
    self->on_end_arg = arg;
}
