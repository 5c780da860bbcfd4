/*  gateway/sb_subs.c — the subscription table (see sb_subs.h): a hash of
    session key → the session's owner, expiry and URIs (an array in the
    order subscribed, at most SB_MAX_SUBS_PER_SESSION); and the listen
    streams of 2026-07-28, a list oldest first with a hash by number. */
#include "sb_subs.h"
#include "sb_attr.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STR2(x) #x
#define S_STR(x) S_STR2 (x)                 /* a limit's digits, for sentences */

/*  One session's subscriptions. */
typedef struct {
    char *owner;                                /* its streams' owner (Mcp-Session-Id) */
    int64_t expires;                            /* forgotten by sb_subs_purge after this */
    char *uris [SB_MAX_SUBS_PER_SESSION];       /* followed URIs, in the order subscribed */
    size_t count;                               /* entries in uris */
    size_t bytes;                               /* owner and URIs, bytes (counted in the total) */
} s_session_t;

/*  One listen stream (2026-07-28 subscriptions/listen). */
struct _sb_subs_listener_t {
    sb_subs_t *table;                           /* the table holding it */
    uint64_t number;                            /* unique on the table, never reused */
    char key [24];                              /* number in decimal: its key in `listeners` */
    char *tenant;                               /* whose */
    char *id;                                   /* its request's JSON-RPC id, JSON text */
    unsigned lists;                             /* SB_LIST_* it follows */
    char *uris [SB_MAX_LISTEN_URIS];            /* resource URIs it follows, as asked */
    size_t count;                               /* entries in uris */
    size_t bytes;                               /* tenant, id and URIs (counted in the total) */
    void *stream;                               /* where its notifications go (borrowed) */
    sb_subs_listener_t *prev, *next;            /* the table's list, oldest first */
};

struct _sb_subs_t {
    zhashx_t *sessions;                         /* key → s_session_t (owned) */
    size_t bytes;                               /* every session's and listener's bytes */
    zhashx_t *listeners;                        /* number (decimal) → listener (borrowed from the list) */
    sb_subs_listener_t *oldest, *newest;        /* listen streams, owned */
    uint64_t last_number;                       /* last listener number given */
};

static void
s_session_free (void **item_p)
{
    s_session_t *session = *item_p;
    if (!session)
        return;
    for (size_t i = 0; i < session->count; i++)
        free (session->uris [i]);
    free (session->owner);
    free (session);
    *item_p = NULL;
}

sb_subs_t *
sb_subs_new (void)
{
    sb_subs_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->sessions = zhashx_new ();
    self->listeners = zhashx_new ();
    if (!self->sessions || !self->listeners) {
        zhashx_destroy (&self->sessions);
        zhashx_destroy (&self->listeners);
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->sessions, s_session_free);
    return self;
}

static void s_listener_free (sb_subs_listener_t *listener);

void
sb_subs_destroy (sb_subs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_subs_t *self = *self_p;
    zhashx_destroy (&self->sessions);
    zhashx_destroy (&self->listeners);
    while (self->oldest) {
        sb_subs_listener_t *next = self->oldest->next;
        s_listener_free (self->oldest);
        self->oldest = next;
    }
    free (self);
    *self_p = NULL;
}

//  Forgets session `key` (and its bytes).
static void
s_forget (sb_subs_t *self, const char *key)
{
    s_session_t *session = zhashx_lookup (self->sessions, key);
    if (!session)
        return;
    self->bytes -= session->bytes;
    zhashx_delete (self->sessions, key);
}

//  The index of `uri` in the session, or -1.
static int
s_find (const s_session_t *session, const char *uri)
{
    for (size_t i = 0; i < session->count; i++)
        if (strcmp (session->uris [i], uri) == 0)
            return (int) i;
    return -1;
}

int
sb_subs_add (sb_subs_t *self, const char *key, const char *owner, int64_t expires,
             int64_t now, const char *uri)
{
    if (!key || !*key || strlen (key) > SB_MAX_SUB_KEY_LEN
    ||  !owner || !*owner || strlen (owner) > SB_MAX_SUB_OWNER_LEN || !uri)
        return SB_SUBS_INVALID;
    size_t uri_len = strlen (uri);
    if (uri_len > SB_MAX_SUB_URI_LEN)
        return SB_SUBS_URI_TOO_LONG;
    s_session_t *session = zhashx_lookup (self->sessions, key);
    if (session && s_find (session, uri) >= 0)
        return SB_SUBS_OK;
    if (session && session->count == SB_MAX_SUBS_PER_SESSION)
        return SB_SUBS_SESSION_FULL;
    size_t need = uri_len + 1 + (session? 0: strlen (owner) + 1);
    if (self->bytes + need > SB_MAX_SUBS_BYTES
    ||  (!session && zhashx_size (self->sessions) == SB_MAX_SUB_SESSIONS)) {
        //  Room made by sessions that aged out, never by evicting live ones.
        sb_subs_purge (self, now);
        session = zhashx_lookup (self->sessions, key);
        need = uri_len + 1 + (session? 0: strlen (owner) + 1);
        if (self->bytes + need > SB_MAX_SUBS_BYTES
        ||  (!session && zhashx_size (self->sessions) == SB_MAX_SUB_SESSIONS))
            return SB_SUBS_TABLE_FULL;
    }
    char *copy = strdup (uri);
    if (!copy)
        return SB_SUBS_NO_MEMORY;
    if (!session) {
        session = calloc (1, sizeof *session);
        if (!session || !(session->owner = strdup (owner))) {
            free (session);
            free (copy);
            return SB_SUBS_NO_MEMORY;
        }
        session->bytes = strlen (owner) + 1;
        self->bytes += session->bytes;
        zhashx_insert (self->sessions, key, session);
    }
    session->expires = expires;
    session->uris [session->count++] = copy;
    session->bytes += uri_len + 1;
    self->bytes += uri_len + 1;
    return SB_SUBS_OK;
}

int
sb_subs_remove (sb_subs_t *self, const char *key, const char *uri)
{
    s_session_t *session = key && uri? zhashx_lookup (self->sessions, key): NULL;
    int index = session? s_find (session, uri): -1;
    if (index < 0)
        return -1;
    size_t len = strlen (session->uris [index]) + 1;
    free (session->uris [index]);
    memmove (&session->uris [index], &session->uris [index + 1],
             (session->count - (size_t) index - 1) * sizeof (char *));
    session->count--;
    session->bytes -= len;
    self->bytes -= len;
    if (session->count == 0)
        s_forget (self, key);
    return 0;
}

void
sb_subs_drop (sb_subs_t *self, const char *key)
{
    if (key)
        s_forget (self, key);
}

size_t
sb_subs_purge (sb_subs_t *self, int64_t now)
{
    zlistx_t *expired = zlistx_new ();
    if (!expired)
        return 0;
    for (s_session_t *session = zhashx_first (self->sessions); session;
         session = zhashx_next (self->sessions))
        if (session->expires < now)
            zlistx_add_end (expired, sb_unconst (zhashx_cursor (self->sessions)));
    //  The keys are the table's own: delete after the walk, one by one.
    size_t count = 0;
    for (const char *key = zlistx_first (expired); key; key = zlistx_next (expired)) {
        char copy [SB_MAX_SUB_KEY_LEN + 1];
        snprintf (copy, sizeof copy, "%s", key);
        s_forget (self, copy);
        count++;
    }
    zlistx_destroy (&expired);
    return count;
}

bool
sb_subs_has (sb_subs_t *self, const char *key, const char *uri)
{
    s_session_t *session = key && uri? zhashx_lookup (self->sessions, key): NULL;
    return session && s_find (session, uri) >= 0;
}

size_t
sb_subs_count (sb_subs_t *self, const char *key)
{
    s_session_t *session = key? zhashx_lookup (self->sessions, key): NULL;
    return session? session->count: 0;
}

size_t
sb_subs_sessions (sb_subs_t *self)
{
    return zhashx_size (self->sessions);
}

size_t
sb_subs_bytes (sb_subs_t *self)
{
    return self->bytes;
}

void
sb_subs_each (sb_subs_t *self, sb_subs_fn *fn, void *arg)
{
    for (s_session_t *session = zhashx_first (self->sessions); session;
         session = zhashx_next (self->sessions))
        for (size_t i = 0; i < session->count; i++)
            fn (session->owner, session->uris [i], arg);
}

//  ---------------------------------------------------------------------------
//  Listen streams

static void
s_listener_free (sb_subs_listener_t *listener)
{
    for (size_t i = 0; i < listener->count; i++)
        free (listener->uris [i]);
    free (listener->tenant);
    free (listener->id);
    free (listener);
}

int
sb_subs_listen_add (sb_subs_t *self, const char *tenant, const char *id, unsigned lists,
                    const char *const *uris, size_t count, sb_subs_listener_t **listener_p)
{
    *listener_p = NULL;
    if (!tenant || !*tenant || strlen (tenant) > SB_MAX_SUB_KEY_LEN
    ||  !id || !*id || strlen (id) > SB_MAX_LISTEN_ID_LEN || (count && !uris))
        return SB_SUBS_INVALID;
    if (count > SB_MAX_LISTEN_URIS)
        return SB_SUBS_TOO_MANY_URIS;
    size_t need = strlen (tenant) + 1 + strlen (id) + 1;
    for (size_t i = 0; i < count; i++) {
        if (!uris [i])
            return SB_SUBS_INVALID;
        size_t len = strlen (uris [i]);
        if (len > SB_MAX_SUB_URI_LEN)
            return SB_SUBS_URI_TOO_LONG;
        need += len + 1;
    }
    if (zhashx_size (self->listeners) >= SB_MAX_LISTEN_STREAMS)
        return SB_SUBS_LISTEN_FULL;
    if (sb_subs_listeners (self, tenant) >= SB_MAX_LISTEN_PER_TENANT)
        return SB_SUBS_TENANT_FULL;
    if (self->bytes + need > SB_MAX_SUBS_BYTES)
        return SB_SUBS_TABLE_FULL;
    sb_subs_listener_t *listener = calloc (1, sizeof *listener);
    if (!listener)
        return SB_SUBS_NO_MEMORY;
    listener->tenant = strdup (tenant);
    listener->id = strdup (id);
    bool ok = listener->tenant && listener->id;
    for (size_t i = 0; ok && i < count; i++) {
        bool seen = false;
        for (size_t j = 0; j < listener->count && !seen; j++)
            seen = strcmp (listener->uris [j], uris [i]) == 0;
        if (seen)
            continue;
        if (!(listener->uris [listener->count] = strdup (uris [i])))
            ok = false;
        else
            listener->bytes += strlen (uris [i]) + 1, listener->count++;
    }
    listener->table = self;
    listener->number = ++self->last_number;
    snprintf (listener->key, sizeof listener->key, "%" PRIu64, listener->number);
    if (!ok || zhashx_insert (self->listeners, listener->key, listener)) {
        s_listener_free (listener);
        return SB_SUBS_NO_MEMORY;
    }
    listener->lists = lists;
    listener->bytes += strlen (tenant) + 1 + strlen (id) + 1;
    self->bytes += listener->bytes;
    listener->prev = self->newest;
    if (self->newest)
        self->newest->next = listener;
    else
        self->oldest = listener;
    self->newest = listener;
    *listener_p = listener;
    return SB_SUBS_OK;
}

void
sb_subs_listen_remove (sb_subs_listener_t **listener_p)
{
    if (!listener_p || !*listener_p)
        return;
    sb_subs_listener_t *listener = *listener_p;
    sb_subs_t *self = listener->table;
    zhashx_delete (self->listeners, listener->key);
    if (listener->prev)
        listener->prev->next = listener->next;
    else
        self->oldest = listener->next;
    if (listener->next)
        listener->next->prev = listener->prev;
    else
        self->newest = listener->prev;
    self->bytes -= listener->bytes;
    s_listener_free (listener);
    *listener_p = NULL;
}

void
sb_subs_listen_set_stream (sb_subs_listener_t *listener, void *stream)
{
    listener->stream = stream;
}

uint64_t
sb_subs_listen_number (const sb_subs_listener_t *listener)
{
    return listener->number;
}

sb_subs_listener_t *
sb_subs_listen_lookup (sb_subs_t *self, uint64_t number)
{
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, number);
    return zhashx_lookup (self->listeners, key);
}

void *
sb_subs_listen_stream (const sb_subs_listener_t *listener)
{
    return listener->stream;
}

const char *
sb_subs_listen_id (const sb_subs_listener_t *listener)
{
    return listener->id;
}

const char *
sb_subs_listen_tenant (const sb_subs_listener_t *listener)
{
    return listener->tenant;
}

unsigned
sb_subs_listen_lists (const sb_subs_listener_t *listener)
{
    return listener->lists;
}

size_t
sb_subs_listen_uri_count (const sb_subs_listener_t *listener)
{
    return listener->count;
}

const char *
sb_subs_listen_uri (const sb_subs_listener_t *listener, size_t index)
{
    return index < listener->count? listener->uris [index]: NULL;
}

size_t
sb_subs_listeners (sb_subs_t *self, const char *tenant)
{
    if (!tenant)
        return zhashx_size (self->listeners);
    size_t count = 0;
    for (sb_subs_listener_t *l = self->oldest; l; l = l->next)
        count += strcmp (l->tenant, tenant) == 0;
    return count;
}

void
sb_subs_listen_each (sb_subs_t *self, sb_subs_listen_fn *fn, void *arg)
{
    for (sb_subs_listener_t *l = self->oldest; l; l = l->next)
        fn (l, arg);
}

const char *
sb_subs_strerror (int rc)
{
    switch (rc) {
        case SB_SUBS_OK:
            return "Subscribed.";
        case SB_SUBS_URI_TOO_LONG:
            return "The resource URI is too long to subscribe to (at most "
                   S_STR (SB_MAX_SUB_URI_LEN) " bytes).";
        case SB_SUBS_SESSION_FULL:
            return "This session already follows " S_STR (SB_MAX_SUBS_PER_SESSION) " resources, the most one "
                   "session may; "
                   "unsubscribe from one first.";
        case SB_SUBS_TABLE_FULL:
            return "This server follows as many resource subscriptions as it can hold right now; "
                   "try again later.";
        case SB_SUBS_INVALID:
            return "resources/subscribe needs a session (an Mcp-Session-Id from initialize): "
                   "updates are sent on the session's GET stream.";
        case SB_SUBS_TOO_MANY_URIS:
            return "A subscriptions/listen stream may follow at most " S_STR (SB_MAX_LISTEN_URIS)
                   " resources (resourceSubscriptions); open another stream for the rest.";
        case SB_SUBS_TENANT_FULL:
            return "This organisation already has " S_STR (SB_MAX_LISTEN_PER_TENANT) " subscriptions/listen "
                   "streams open on this server, the most it may; close one first.";
        case SB_SUBS_LISTEN_FULL:
            return "This server has as many subscriptions/listen streams open as it can hold right now; "
                   "try again later.";
        default:
            return "The subscription could not be stored (out of memory); try again.";
    }
}
