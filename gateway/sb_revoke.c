/*  gateway/sb_revoke.c — the revocation list: a pool of
    SB_MAX_REVOCATIONS entries, each in one hash chain keyed by its whole
    scope (tenant, subject, client_id), so that a token is checked with
    one exact probe per scope it could fall in. See sb_revoke.h. */
#include "sb_revoke.h"

#include <stdlib.h>
#include <string.h>

/*  One revocation; `next` chains it in its bucket, or the free list. */
typedef struct {
    bool used;
    char tenant [SB_MAX_TENANT_LEN + 1];            /* "" for a client's */
    char subject [SB_REVOKE_MAX_SUBJECT + 1];       /* "" for all subjects */
    char *client_id;                                /* NULL but for a client's */
    int64_t revoked_at;
    uint32_t bucket;
    int32_t next;
} s_entry_t;

struct _sb_revoke_t {
    s_entry_t entries [SB_MAX_REVOCATIONS];
    int32_t buckets [SB_REVOKE_BUCKETS];            /* first entry of each chain, -1: none */
    int32_t free_list;                              /* first unused entry, -1: none */
    size_t count;                                   /* entries used */
    int64_t floor;                                  /* tokens with iat <= floor refused, 0: none */
};

//  FNV-1a over the scope, its three parts kept apart by a byte none holds.
static uint32_t
s_bucket_of (const char *tenant, const char *subject, const char *client_id)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    const char *parts [3] = { tenant, subject, client_id };
    for (int p = 0; p < 3; p++) {
        for (const unsigned char *c = (const unsigned char *) parts [p]; *c; c++)
            hash = (hash ^ *c) * 0x100000001b3ULL;
        hash = (hash ^ 0x1f) * 0x100000001b3ULL;
    }
    return (uint32_t) ((hash ^ (hash >> 32)) & (SB_REVOKE_BUCKETS - 1));
}

sb_revoke_t *
sb_revoke_new (void)
{
    sb_revoke_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    for (size_t b = 0; b < SB_REVOKE_BUCKETS; b++)
        self->buckets [b] = -1;
    for (int32_t i = 0; i < SB_MAX_REVOCATIONS; i++)
        self->entries [i].next = i + 1 < SB_MAX_REVOCATIONS? i + 1: -1;
    self->free_list = 0;
    return self;
}

void
sb_revoke_destroy (sb_revoke_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_revoke_t *self = *self_p;
    for (size_t i = 0; i < SB_MAX_REVOCATIONS; i++)
        free (self->entries [i].client_id);
    free (self);
    *self_p = NULL;
}

//  Takes entry `at` out of its chain and back to the free list.
static void
s_remove (sb_revoke_t *self, int32_t at)
{
    s_entry_t *entry = &self->entries [at];
    int32_t *link = &self->buckets [entry->bucket];
    while (*link != at)
        link = &self->entries [*link].next;
    *link = entry->next;
    free (entry->client_id);
    memset (entry, 0, sizeof *entry);
    entry->next = self->free_list;
    self->free_list = at;
    self->count--;
}

//  The entry of exactly this scope, or -1. Unlinks expired entries met on the way.
static int32_t
s_find (sb_revoke_t *self, const char *tenant, const char *subject, const char *client_id,
        int64_t now_s)
{
    int32_t at = self->buckets [s_bucket_of (tenant, subject, client_id)];
    while (at >= 0) {
        s_entry_t *entry = &self->entries [at];
        int32_t next = entry->next;
        if (entry->revoked_at + SB_REVOKE_KEEP_S < now_s)
            s_remove (self, at);
        else
        if (strcmp (entry->tenant, tenant) == 0 && strcmp (entry->subject, subject) == 0
        &&  strcmp (entry->client_id? entry->client_id: "", client_id) == 0)
            return at;
        at = next;
    }
    return -1;
}

//  Makes room when the list is full: expired entries go; if none did, the
//  oldest revocation goes and raises the floor. Returns true when it did that.
static bool
s_make_room (sb_revoke_t *self, int64_t now_s)
{
    int32_t oldest = -1;
    for (int32_t i = 0; i < SB_MAX_REVOCATIONS; i++) {
        s_entry_t *entry = &self->entries [i];
        if (!entry->used)
            continue;
        if (entry->revoked_at + SB_REVOKE_KEEP_S < now_s)
            s_remove (self, i);
        else
        if (oldest < 0 || entry->revoked_at < self->entries [oldest].revoked_at)
            oldest = i;
    }
    if (self->count < SB_MAX_REVOCATIONS)
        return false;
    if (self->entries [oldest].revoked_at > self->floor)
        self->floor = self->entries [oldest].revoked_at;
    s_remove (self, oldest);
    return true;
}

sb_revoke_rc_t
sb_revoke_add (sb_revoke_t *self, const char *tenant, const char *subject, const char *client_id,
               int64_t revoked_at, int64_t now_s)
{
    tenant = tenant? tenant: "";
    subject = subject? subject: "";
    client_id = client_id? client_id: "";
    bool by_tenant = *tenant && !*client_id;
    bool by_client = !*tenant && !*subject && *client_id;
    if (!self || !(by_tenant || by_client) || strlen (tenant) > SB_MAX_TENANT_LEN
    ||  strlen (subject) > SB_REVOKE_MAX_SUBJECT || strlen (client_id) > SB_TOKEN_MAX_CLIENT_ID
    ||  revoked_at <= 0 || revoked_at > now_s + SB_TOKEN_CLOCK_SKEW_S)
        return SB_REVOKE_INVALID;
    if (revoked_at + SB_REVOKE_KEEP_S < now_s)
        return SB_REVOKE_STALE;
    int32_t at = s_find (self, tenant, subject, client_id, now_s);
    if (at >= 0) {
        s_entry_t *entry = &self->entries [at];
        if (revoked_at > entry->revoked_at)
            entry->revoked_at = revoked_at;
        return SB_REVOKE_KEPT;
    }
    char *copy = *client_id? strdup (client_id): NULL;
    if (*client_id && !copy)
        return SB_REVOKE_NOMEM;
    bool full = self->count == SB_MAX_REVOCATIONS && s_make_room (self, now_s);
    at = self->free_list;
    s_entry_t *entry = &self->entries [at];
    self->free_list = entry->next;
    entry->used = true;
    memcpy (entry->tenant, tenant, strlen (tenant) + 1);
    memcpy (entry->subject, subject, strlen (subject) + 1);
    entry->client_id = copy;
    entry->revoked_at = revoked_at;
    entry->bucket = s_bucket_of (tenant, subject, client_id);
    entry->next = self->buckets [entry->bucket];
    self->buckets [entry->bucket] = at;
    self->count++;
    return full? SB_REVOKE_FULL: SB_REVOKE_ADDED;
}

//  True when an entry of this scope revokes a token issued at `issued_at`.
static bool
s_revoked (sb_revoke_t *self, const char *tenant, const char *subject, const char *client_id,
           int64_t issued_at, int64_t now_s)
{
    int32_t at = s_find (self, tenant, subject, client_id, now_s);
    return at >= 0 && issued_at <= self->entries [at].revoked_at;
}

sb_revoke_why_t
sb_revoke_check (sb_revoke_t *self, const sb_token_claims_t *claims, int64_t now_s)
{
    if (!self || !claims)
        return SB_REVOKE_NONE;
    if (self->floor && self->floor + SB_REVOKE_KEEP_S < now_s)
        self->floor = 0;            //  every token it refused has expired
    if (self->floor && claims->issued_at <= self->floor)
        return SB_REVOKE_BY_FLOOR;
    if (self->count == 0)
        return SB_REVOKE_NONE;
    if (s_revoked (self, claims->tenant, "", "", claims->issued_at, now_s))
        return SB_REVOKE_BY_TENANT;
    if (*claims->subject && strlen (claims->subject) <= SB_REVOKE_MAX_SUBJECT
    &&  s_revoked (self, claims->tenant, claims->subject, "", claims->issued_at, now_s))
        return SB_REVOKE_BY_SUBJECT;
    if (*claims->client_id && s_revoked (self, "", "", claims->client_id, claims->issued_at, now_s))
        return SB_REVOKE_BY_CLIENT;
    return SB_REVOKE_NONE;
}

const char *
sb_revoke_reason (sb_revoke_why_t why)
{
    switch (why) {
        case SB_REVOKE_NONE:       return "The access token is not revoked.";
        case SB_REVOKE_BY_TENANT:  return "The access tokens of its organisation were revoked.";
        case SB_REVOKE_BY_SUBJECT: return "The access tokens of its user were revoked.";
        case SB_REVOKE_BY_CLIENT:  return "The access tokens of its client were revoked.";
        case SB_REVOKE_BY_FLOOR:   return "It was issued before a revocation this gateway could "
                                          "not keep; sign in again or refresh it.";
    }
    return "The access token was revoked.";
}

size_t
sb_revoke_size (const sb_revoke_t *self)
{
    return self? self->count: 0;
}

int64_t
sb_revoke_floor (const sb_revoke_t *self)
{
    return self? self->floor: 0;
}
