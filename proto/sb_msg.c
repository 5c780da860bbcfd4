/*  proto/sb_msg.c — the envelope codec: header frame encode/decode over
    msgpack-c, and non-blocking send/receive over ZeroMQ sockets.

    Every read of wire data goes through a bounds or type check that fails
    into SB_MSG_MALFORMED. The layout of each command is the table
    s_layouts below, so encoder and decoder cannot drift apart; PROTOCOL.md
    documents the same table for people.
*/
#include "sb_msg.h"
#include "sb_msgpack.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>
#include <sys/random.h>

/*  Field kinds in a header array, after [version, command]. */
typedef enum {
    F_END = 0,
    F_CORR_ID,
    F_SERVICE,
    F_TENANT,
    F_TIMEOUT,
    F_FLAGS,
    F_ATTEMPT,
    F_CREDIT,
    F_HEARTBEAT,
    F_STATUS,
    F_ASK_ID,
    F_TOPIC,
    F_RETRY_AFTER,
    F_PARENT,       /* REQUEST: "" from a gateway, which reads as absent */
    F_COST,         /* REQUEST: quota cost units */
    F_CONN,         /* REQUEST: connector of the upstream budget, "" = none */
    F_BUDGET_LIMIT, /* REQUEST: upstream requests per budget window */
    F_BUDGET_WINDOW,/* REQUEST: the budget's window, seconds */
    F_REASON,       /* REPLY: which quota refused, "" = none */
    F_SCOPE,        /* REPLY: the plan (or connector) the quota group describes */
    F_LIMIT,        /* REPLY: the limit described */
    F_REMAINING,    /* REPLY: what is left of it */
    F_RESET_S,      /* REPLY: seconds until it is whole again */
    F_WINDOW_S,     /* REPLY: its window, seconds */
    F_SEQ,          /* LIMITS USAGE USAGE_ACK: sequence number */
    F_SNAPSHOT,     /* LIMITS: change, snapshot part, last part */
    F_WANT,         /* USAGE: the broker wants a full snapshot */
    F_BROKER_ID,    /* USAGE: the broker process's random ID */
    F_OPTIONAL,     /* not a field: those after it may be absent on the wire */
} s_field_t;

#define S_MAX_FIELDS    11      /* most fields of any command (REQUEST) */
#define S_MAX_ELEMENTS  16      /* longest header array accepted (newer peers may add fields) */
#define S_MAX_FRAMES    3       /* routing id + header + payload */

typedef struct {
    const char *name;                   /* for logs */
    bool has_payload;                   /* carries frame 1 */
    s_field_t fields [S_MAX_FIELDS + 1]; /* order on the wire, F_END-terminated */
} s_layout_t;

static const s_layout_t s_layouts [SB_CMD_MAX + 1] = {
    [SB_CMD_REQUEST]    = { "request", true,
                            { F_CORR_ID, F_SERVICE, F_TENANT, F_TIMEOUT, F_FLAGS,
                              F_OPTIONAL, F_PARENT, F_COST, F_CONN, F_BUDGET_LIMIT,
                              F_BUDGET_WINDOW, F_END } },
    [SB_CMD_REPLY]      = { "reply", true,
                            { F_CORR_ID, F_STATUS, F_OPTIONAL, F_RETRY_AFTER, F_REASON,
                              F_SCOPE, F_LIMIT, F_REMAINING, F_RESET_S, F_WINDOW_S, F_END } },
    [SB_CMD_READY]      = { "ready", false, { F_SERVICE, F_CREDIT, F_HEARTBEAT, F_END } },
    [SB_CMD_JOB]        = { "job", true,
                            { F_CORR_ID, F_TENANT, F_TIMEOUT, F_FLAGS, F_ATTEMPT, F_END } },
    [SB_CMD_RESULT]     = { "result", true, { F_CORR_ID, F_STATUS, F_END } },
    [SB_CMD_HEARTBEAT]  = { "heartbeat", false, { F_END } },
    [SB_CMD_DISCONNECT] = { "disconnect", false, { F_END } },
    [SB_CMD_NOTIFY]     = { "notify", true, { F_CORR_ID, F_END } },
    [SB_CMD_CANCEL]     = { "cancel", false, { F_CORR_ID, F_END } },
    [SB_CMD_ASK]        = { "ask", true, { F_CORR_ID, F_ASK_ID, F_END } },
    [SB_CMD_ANSWER]     = { "answer", true, { F_CORR_ID, F_TENANT, F_ASK_ID, F_END } },
    [SB_CMD_BROADCAST]  = { "broadcast", true, { F_TENANT, F_TOPIC, F_END } },
    [SB_CMD_LIMITS]     = { "limits", true, { F_SEQ, F_SNAPSHOT, F_END } },
    [SB_CMD_USAGE]      = { "usage", true, { F_SEQ, F_WANT, F_BROKER_ID, F_END } },
    [SB_CMD_USAGE_ACK]  = { "usage_ack", false, { F_SEQ, F_END } },
    [SB_CMD_PUBLISH]    = { "publish", true, { F_TENANT, F_TOPIC, F_END } },
};

static const char *s_status_names [SB_STATUS_MAX + 1] = {
    "ok", "timeout", "worker_lost", "overloaded", "malformed",
    "bad_version", "failed", "duplicate", "cancelled", "unavailable",
    "limited",
};

/*  Bounds of numeric fields: a value outside is malformed. */
#define S_MIN_HEARTBEAT_MS  50u
#define S_MAX_HEARTBEAT_MS  60000u
#define S_MAX_ATTEMPT       100u
#define S_MAX_WANT          1u

const char *
sb_cmd_name (sb_cmd_t command)
{
    if (command >= SB_CMD_MIN && command <= SB_CMD_MAX)
        return s_layouts [command].name;
    return "unknown";
}

const char *
sb_status_name (sb_status_t status)
{
    if ((unsigned) status <= SB_STATUS_MAX)
        return s_status_names [status];
    return "unknown";
}

void
sb_msg_reset (sb_msg_t *self)
{
    zframe_destroy (&self->payload);
    memset (self, 0, sizeof *self);
}

//  Identifiers (correlation ID, service, tenant) are 1..max printable ASCII
//  characters without spaces: they appear in logs and metric labels.
static bool
s_valid_ident (const char *text, size_t len, size_t max)
{
    return sb_msgpack_ident_valid (text, len, max);
}

//  The optional strings (REQUEST conn, REPLY reason and scope) are empty
//  or an identifier.
static bool
s_valid_opt_ident (const char *text, size_t len, size_t max)
{
    return len == 0 || s_valid_ident (text, len, max);
}

//  A REQUEST's budget needs its connection and a window; a window alone
//  (no budget) is harmless and kept as sent.
static bool
s_valid_budget (const sb_msg_t *self)
{
    if (self->budget_limit > SB_MAX_BUDGET_LIMIT || self->budget_window_s > SB_MAX_BUDGET_WINDOW_S)
        return false;
    if (self->budget_limit > 0 && (self->conn [0] == 0 || self->budget_window_s == 0))
        return false;
    return true;
}

static int
s_copy_ident (char *dest, const char *src, size_t max)
{
    if (!src)
        return -1;
    size_t len = strlen (src);
    if (!s_valid_ident (src, len, max))
        return -1;
    memcpy (dest, src, len + 1);
    return 0;
}


//  --------------------------------------------------------------------------
//  Encoding

/*  Packs into a fixed buffer: the header can never grow past its limit. */
typedef struct {
    char data [SB_MAX_HEADER_SIZE];     /* packed bytes */
    size_t size;                        /* bytes used */
    bool overflow;                      /* a write did not fit */
} s_fixed_buf_t;

static int
s_fixed_write (void *data, const char *buf, size_t len)
{
    s_fixed_buf_t *fb = (s_fixed_buf_t *) data;
    if (len > sizeof fb->data - fb->size) {
        fb->overflow = true;
        return -1;
    }
    memcpy (fb->data + fb->size, buf, len);
    fb->size += len;
    return 0;
}

static void
s_pack_str (msgpack_packer *pk, const char *text)
{
    size_t len = strlen (text);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

//  The largest payload `command` may carry.
static size_t
s_payload_limit (sb_cmd_t command)
{
    return command == SB_CMD_BROADCAST || command == SB_CMD_PUBLISH?
           SB_MAX_BROADCAST_SIZE: SB_MAX_PAYLOAD_SIZE;
}

//  Checks the fields the command uses; a failure is a caller bug.
static bool
s_encodable (const sb_msg_t *self)
{
    if (self->command < SB_CMD_MIN || self->command > SB_CMD_MAX)
        return false;
    for (const s_field_t *f = s_layouts [self->command].fields; *f != F_END; f++) {
        switch (*f) {
            case F_CORR_ID:
                if (!s_valid_ident (self->corr_id, strlen (self->corr_id), SB_MAX_CORR_ID_LEN))
                    return false;
                break;
            case F_SERVICE:
                if (!s_valid_ident (self->service, strlen (self->service), SB_MAX_SERVICE_LEN))
                    return false;
                break;
            case F_TENANT:
                if (!s_valid_ident (self->tenant, strlen (self->tenant), SB_MAX_TENANT_LEN))
                    return false;
                break;
            case F_TIMEOUT:
                if (self->timeout_ms == 0 || self->timeout_ms > SB_MAX_TIMEOUT_MS)
                    return false;
                break;
            case F_CREDIT:
                if (self->credit == 0 || self->credit > SB_MAX_CREDIT)
                    return false;
                break;
            case F_HEARTBEAT:
                if (self->heartbeat_ms < S_MIN_HEARTBEAT_MS || self->heartbeat_ms > S_MAX_HEARTBEAT_MS)
                    return false;
                break;
            case F_ATTEMPT:
                if (self->attempt == 0 || self->attempt > S_MAX_ATTEMPT)
                    return false;
                break;
            case F_STATUS:
                if ((unsigned) self->status > SB_STATUS_MAX)
                    return false;
                break;
            case F_ASK_ID:
                if (self->ask_id == 0)
                    return false;
                break;
            case F_TOPIC:
                if (!s_valid_ident (self->topic, strlen (self->topic), SB_MAX_TOPIC_LEN))
                    return false;
                break;
            case F_RETRY_AFTER:
                if (self->retry_after_ms > SB_MAX_RETRY_AFTER_MS)
                    return false;
                break;
            case F_PARENT:
                if (!s_valid_opt_ident (self->parent, strlen (self->parent), SB_MAX_CORR_ID_LEN))
                    return false;
                break;
            case F_COST:
                if (self->cost > SB_MAX_COST)
                    return false;
                break;
            case F_CONN:
                if (!s_valid_opt_ident (self->conn, strlen (self->conn), SB_MAX_CONN_LEN))
                    return false;
                break;
            case F_BUDGET_LIMIT:
            case F_BUDGET_WINDOW:
                if (!s_valid_budget (self))
                    return false;
                break;
            case F_REASON:
                if (!s_valid_opt_ident (self->quota.reason, strlen (self->quota.reason),
                                        SB_MAX_REASON_LEN))
                    return false;
                break;
            case F_SCOPE:
                if (!s_valid_opt_ident (self->quota.scope, strlen (self->quota.scope),
                                        SB_MAX_SCOPE_LEN))
                    return false;
                break;
            case F_LIMIT:
                if (self->quota.limit > SB_MAX_QUOTA_VALUE)
                    return false;
                break;
            case F_REMAINING:
                if (self->quota.remaining > SB_MAX_QUOTA_VALUE)
                    return false;
                break;
            case F_SEQ:
                if (self->seq == 0 || self->seq > SB_MAX_QUOTA_VALUE)
                    return false;
                break;
            case F_SNAPSHOT:
                if (self->snapshot > SB_SNAPSHOT_LAST)
                    return false;
                break;
            case F_WANT:
                if (self->want > S_MAX_WANT)
                    return false;
                break;
            case F_BROKER_ID:
                if (!s_valid_ident (self->broker_id, strlen (self->broker_id), SB_MAX_BROKER_ID_LEN))
                    return false;
                break;
            case F_RESET_S:
            case F_WINDOW_S:
            case F_FLAGS:
            case F_OPTIONAL:
            case F_END:
                break;
        }
    }
    if (self->payload && zframe_size (self->payload) > s_payload_limit (self->command))
        return false;
    return true;
}

static zframe_t *
s_encode_header (const sb_msg_t *self)
{
    s_fixed_buf_t fb = { .size = 0 };
    msgpack_packer pk;
    msgpack_packer_init (&pk, &fb, s_fixed_write);

    //  A sender of this revision writes every field, the optional ones too
    //  (a gateway's REQUEST has parent "": cost and the rest follow it).
    const s_layout_t *layout = &s_layouts [self->command];
    size_t nfields = 0, written = 0;
    while (layout->fields [nfields] != F_END) {
        if (layout->fields [nfields] != F_OPTIONAL)
            written++;
        nfields++;
    }

    msgpack_pack_array (&pk, 2 + written);
    msgpack_pack_uint32 (&pk, SB_PROTO_VERSION);
    msgpack_pack_uint32 (&pk, (uint32_t) self->command);
    for (size_t i = 0; i < nfields; i++) {
        switch (layout->fields [i]) {
            case F_CORR_ID:   s_pack_str (&pk, self->corr_id); break;
            case F_SERVICE:   s_pack_str (&pk, self->service); break;
            case F_TENANT:    s_pack_str (&pk, self->tenant); break;
            case F_TIMEOUT:   msgpack_pack_uint32 (&pk, self->timeout_ms); break;
            case F_FLAGS:     msgpack_pack_uint32 (&pk, self->flags & SB_FLAGS_KNOWN); break;
            case F_ATTEMPT:   msgpack_pack_uint32 (&pk, self->attempt); break;
            case F_CREDIT:    msgpack_pack_uint32 (&pk, self->credit); break;
            case F_HEARTBEAT: msgpack_pack_uint32 (&pk, self->heartbeat_ms); break;
            case F_STATUS:    msgpack_pack_uint32 (&pk, (uint32_t) self->status); break;
            case F_ASK_ID:    msgpack_pack_uint32 (&pk, self->ask_id); break;
            case F_TOPIC:     s_pack_str (&pk, self->topic); break;
            case F_RETRY_AFTER: msgpack_pack_uint32 (&pk, self->retry_after_ms); break;
            case F_PARENT:    s_pack_str (&pk, self->parent); break;
            case F_COST:      msgpack_pack_uint32 (&pk, self->cost); break;
            case F_CONN:      s_pack_str (&pk, self->conn); break;
            case F_BUDGET_LIMIT: msgpack_pack_uint32 (&pk, self->budget_limit); break;
            case F_BUDGET_WINDOW: msgpack_pack_uint32 (&pk, self->budget_window_s); break;
            case F_REASON:    s_pack_str (&pk, self->quota.reason); break;
            case F_SCOPE:     s_pack_str (&pk, self->quota.scope); break;
            case F_LIMIT:     msgpack_pack_uint64 (&pk, self->quota.limit); break;
            case F_REMAINING: msgpack_pack_uint64 (&pk, self->quota.remaining); break;
            case F_RESET_S:   msgpack_pack_uint32 (&pk, self->quota.reset_s); break;
            case F_WINDOW_S:  msgpack_pack_uint32 (&pk, self->quota.window_s); break;
            case F_SEQ:       msgpack_pack_uint64 (&pk, self->seq); break;
            case F_SNAPSHOT:  msgpack_pack_uint32 (&pk, self->snapshot); break;
            case F_WANT:      msgpack_pack_uint32 (&pk, self->want); break;
            case F_BROKER_ID: s_pack_str (&pk, self->broker_id); break;
            case F_OPTIONAL:
            case F_END:       break;
        }
    }
    if (fb.overflow)
        return NULL;
    return zframe_new (fb.data, fb.size);
}

zmsg_t *
sb_msg_encode (sb_msg_t *self)
{
    if (!s_encodable (self))
        return NULL;
    zframe_t *header = s_encode_header (self);
    if (!header)
        return NULL;
    zmsg_t *zmsg = zmsg_new ();
    zmsg_append (zmsg, &header);
    if (s_layouts [self->command].has_payload) {
        zframe_t *payload = self->payload ? self->payload : zframe_new_empty ();
        self->payload = NULL;
        zmsg_append (zmsg, &payload);
    }
    else
        zframe_destroy (&self->payload);
    return zmsg;
}


//  --------------------------------------------------------------------------
//  Decoding

static int
s_get_u32 (const msgpack_object *o, uint32_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return -1;
    *out = (uint32_t) o->via.u64;
    return 0;
}

static int
s_get_quota_value (const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > SB_MAX_QUOTA_VALUE)
        return -1;
    *out = o->via.u64;
    return 0;
}

//  An optional string: "" or an identifier (an empty `out` for "").
static int
s_get_opt_ident (const msgpack_object *o, char *out, size_t max)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return -1;
    if (!s_valid_opt_ident (o->via.str.ptr, o->via.str.size, max))
        return -1;
    memcpy (out, o->via.str.ptr, o->via.str.size);
    out [o->via.str.size] = 0;
    return 0;
}

static int
s_get_ident (const msgpack_object *o, char *out, size_t max)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return -1;
    if (!s_valid_ident (o->via.str.ptr, o->via.str.size, max))
        return -1;
    memcpy (out, o->via.str.ptr, o->via.str.size);
    out [o->via.str.size] = 0;
    return 0;
}

static int
s_decode_field (s_field_t field, const msgpack_object *o, sb_msg_t *self)
{
    uint32_t value = 0;
    switch (field) {
        case F_CORR_ID: return s_get_ident (o, self->corr_id, SB_MAX_CORR_ID_LEN);
        case F_SERVICE: return s_get_ident (o, self->service, SB_MAX_SERVICE_LEN);
        case F_TENANT:  return s_get_ident (o, self->tenant, SB_MAX_TENANT_LEN);
        case F_TOPIC:   return s_get_ident (o, self->topic, SB_MAX_TOPIC_LEN);
        case F_BROKER_ID: return s_get_ident (o, self->broker_id, SB_MAX_BROKER_ID_LEN);
        case F_PARENT:  return s_get_opt_ident (o, self->parent, SB_MAX_CORR_ID_LEN);
        case F_CONN:    return s_get_opt_ident (o, self->conn, SB_MAX_CONN_LEN);
        case F_REASON:  return s_get_opt_ident (o, self->quota.reason, SB_MAX_REASON_LEN);
        case F_SCOPE:   return s_get_opt_ident (o, self->quota.scope, SB_MAX_SCOPE_LEN);
        case F_LIMIT:   return s_get_quota_value (o, &self->quota.limit);
        case F_REMAINING: return s_get_quota_value (o, &self->quota.remaining);
        case F_SEQ:
            if (s_get_quota_value (o, &self->seq) || self->seq == 0)
                return -1;
            return 0;
        case F_OPTIONAL:
        case F_END:     return -1;
        default:        break;
    }
    if (s_get_u32 (o, &value))
        return -1;
    switch (field) {
        case F_TIMEOUT:
            if (value == 0 || value > SB_MAX_TIMEOUT_MS)
                return -1;
            self->timeout_ms = value;
            return 0;
        case F_FLAGS:
            self->flags = value & SB_FLAGS_KNOWN;   //  unknown flags from newer peers are ignored
            return 0;
        case F_ATTEMPT:
            if (value == 0 || value > S_MAX_ATTEMPT)
                return -1;
            self->attempt = value;
            return 0;
        case F_CREDIT:
            if (value == 0 || value > SB_MAX_CREDIT)
                return -1;
            self->credit = value;
            return 0;
        case F_HEARTBEAT:
            if (value < S_MIN_HEARTBEAT_MS || value > S_MAX_HEARTBEAT_MS)
                return -1;
            self->heartbeat_ms = value;
            return 0;
        case F_STATUS:
            if (value > SB_STATUS_MAX)
                return -1;
            self->status = (sb_status_t) value;
            return 0;
        case F_ASK_ID:
            if (value == 0)
                return -1;
            self->ask_id = value;
            return 0;
        case F_RETRY_AFTER:
            if (value > SB_MAX_RETRY_AFTER_MS)
                return -1;
            self->retry_after_ms = value;
            return 0;
        case F_COST:
            if (value > SB_MAX_COST)
                return -1;
            self->cost = value;
            return 0;
        case F_BUDGET_LIMIT:
            if (value > SB_MAX_BUDGET_LIMIT)
                return -1;
            self->budget_limit = value;
            return 0;
        case F_BUDGET_WINDOW:
            if (value > SB_MAX_BUDGET_WINDOW_S)
                return -1;
            self->budget_window_s = value;
            return 0;
        case F_RESET_S:
            self->quota.reset_s = value;
            return 0;
        case F_WINDOW_S:
            self->quota.window_s = value;
            return 0;
        case F_SNAPSHOT:
            if (value > SB_SNAPSHOT_LAST)
                return -1;
            self->snapshot = value;
            return 0;
        case F_WANT:
            if (value > S_MAX_WANT)
                return -1;
            self->want = value;
            return 0;
        default:
            return -1;
    }
}

int
sb_msg_decode_header (const uint8_t *data, size_t size, sb_msg_t *self)
{
    sb_msg_reset (self);
    if (!data || size == 0 || size > SB_MAX_HEADER_SIZE || sb_msgpack_check (data, size))
        return SB_MSG_MALFORMED;

    int rc = SB_MSG_MALFORMED;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next (&unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size)
        goto out;               //  not one complete msgpack object, or trailing bytes

    const msgpack_object *root = &unpacked.data;
    if (root->type != MSGPACK_OBJECT_ARRAY
    ||  root->via.array.size < 2 || root->via.array.size > S_MAX_ELEMENTS)
        goto out;
    const msgpack_object *items = root->via.array.ptr;

    uint32_t version = 0, command = 0;
    if (s_get_u32 (&items [0], &version) || s_get_u32 (&items [1], &command))
        goto out;
    if (version != SB_PROTO_VERSION) {
        //  Best effort: keep the correlation ID so the peer can be answered.
        if (root->via.array.size > 2)
            (void) s_get_ident (&items [2], self->corr_id, SB_MAX_CORR_ID_LEN);
        rc = SB_MSG_BAD_VERSION;
        goto out;
    }
    if (command < SB_CMD_MIN || command > SB_CMD_MAX)
        goto out;
    self->command = (sb_cmd_t) command;

    const s_layout_t *layout = &s_layouts [command];
    size_t index = 2;
    bool optional = false;
    for (const s_field_t *f = layout->fields; *f != F_END; f++) {
        if (*f == F_OPTIONAL) {
            optional = true;
            continue;
        }
        if (index >= root->via.array.size) {
            if (optional)
                break;          //  an older peer: the rest reads as 0
            goto out;
        }
        if (s_decode_field (*f, &items [index], self))
            goto out;
        index++;
    }
    //  Fields that bound each other: a budget needs its connection and window.
    if (self->command == SB_CMD_REQUEST && !s_valid_budget (self))
        goto out;
    rc = SB_MSG_OK;
out:
    msgpack_unpacked_destroy (&unpacked);
    if (rc == SB_MSG_MALFORMED)
        sb_msg_reset (self);
    else if (rc == SB_MSG_BAD_VERSION) {
        char corr_id [SB_MAX_CORR_ID_LEN + 1];
        memcpy (corr_id, self->corr_id, sizeof corr_id);
        sb_msg_reset (self);
        memcpy (self->corr_id, corr_id, sizeof corr_id);
    }
    return rc;
}

int
sb_msg_decode (zmsg_t **zmsg_p, sb_msg_t *self)
{
    sb_msg_reset (self);
    zmsg_t *zmsg = *zmsg_p;
    *zmsg_p = NULL;
    if (!zmsg)
        return SB_MSG_MALFORMED;

    int rc = SB_MSG_MALFORMED;
    size_t frames = zmsg_size (zmsg);
    if (frames < 1 || frames > 2)
        goto out;
    zframe_t *header = zmsg_first (zmsg);
    rc = sb_msg_decode_header (zframe_data (header), zframe_size (header), self);
    if (rc)
        goto out;

    rc = SB_MSG_MALFORMED;
    bool has_payload = s_layouts [self->command].has_payload;
    if (has_payload != (frames == 2))
        goto out;
    if (has_payload) {
        zframe_t *payload = zmsg_next (zmsg);
        if (zframe_size (payload) > s_payload_limit (self->command))
            goto out;
        zmsg_remove (zmsg, payload);
        self->payload = payload;
    }
    rc = SB_MSG_OK;
out:
    if (rc == SB_MSG_MALFORMED)
        sb_msg_reset (self);
    zmsg_destroy (&zmsg);
    return rc;
}


//  --------------------------------------------------------------------------
//  Socket I/O (non-blocking)

int
sb_msg_recv (void *sock, sb_msg_t *self, zframe_t **routing_id)
{
    sb_msg_reset (self);
    if (routing_id)
        *routing_id = NULL;
    void *handle = zsock_resolve (sock);

    //  Read every part of one message, even a malformed one, so the next
    //  receive starts at a message boundary. Keep at most S_MAX_FRAMES.
    zmsg_t *zmsg = NULL;
    size_t parts = 0;
    bool oversized = false;
    while (true) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        int flags = parts == 0 ? ZMQ_DONTWAIT : 0;
        if (zmq_msg_recv (&part, handle, flags) < 0) {
            zmq_msg_close (&part);
            if (parts == 0)
                return SB_MSG_NONE;
            break;      //  interrupted mid-message: treat what we have as malformed
        }
        bool more = zmq_msg_more (&part);
        if (parts < S_MAX_FRAMES && zmq_msg_size (&part) <= SB_MAX_PAYLOAD_SIZE) {
            if (!zmsg)
                zmsg = zmsg_new ();
            zmsg_addmem (zmsg, zmq_msg_data (&part), zmq_msg_size (&part));
        }
        else
            oversized = true;
        parts++;
        zmq_msg_close (&part);
        if (!more)
            break;
    }
    if (routing_id && zmsg)
        *routing_id = zmsg_pop (zmsg);
    if (oversized || (routing_id && !*routing_id)) {
        zmsg_destroy (&zmsg);
        return SB_MSG_MALFORMED;
    }
    return sb_msg_decode (&zmsg, self);
}

int
sb_msg_send (void *sock, sb_msg_t *self, zframe_t *routing_id)
{
    zmsg_t *zmsg = sb_msg_encode (self);
    if (!zmsg)
        return -1;
    void *handle = zsock_resolve (sock);
    int rc = 0;
    size_t parts = zmsg_size (zmsg);
    if (routing_id
    &&  zmq_send (handle, zframe_data (routing_id), zframe_size (routing_id),
                  ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        rc = -1;
    for (zframe_t *frame = zmsg_first (zmsg); frame && rc == 0; frame = zmsg_next (zmsg)) {
        int flags = ZMQ_DONTWAIT | (--parts ? ZMQ_SNDMORE : 0);
        if (zmq_send (handle, zframe_data (frame), zframe_size (frame), flags) < 0)
            rc = -1;
    }
    zmsg_destroy (&zmsg);
    return rc;
}


//  --------------------------------------------------------------------------
//  Builders

int
sb_msg_set_request (sb_msg_t *self, const char *corr_id, const char *service,
                    const char *tenant, uint32_t timeout_ms, uint32_t flags,
                    zframe_t **payload)
{
    sb_msg_reset (self);
    if (payload) {
        self->payload = *payload;
        *payload = NULL;
    }
    self->command = SB_CMD_REQUEST;
    self->timeout_ms = timeout_ms;
    self->flags = flags;
    if (s_copy_ident (self->corr_id, corr_id, SB_MAX_CORR_ID_LEN)
    ||  s_copy_ident (self->service, service, SB_MAX_SERVICE_LEN)
    ||  s_copy_ident (self->tenant, tenant, SB_MAX_TENANT_LEN))
        return -1;
    return 0;
}

int
sb_msg_set_worker_request (sb_msg_t *self, const char *corr_id, const char *service,
                           const char *tenant, uint32_t timeout_ms, uint32_t flags,
                           const char *parent, zframe_t **payload)
{
    int rc = sb_msg_set_request (self, corr_id, service, tenant, timeout_ms, flags, payload);
    if (rc)
        return rc;
    if (!parent || !*parent)
        return -1;              //  a worker's REQUEST always names its parent
    return s_copy_ident (self->parent, parent, SB_MAX_CORR_ID_LEN);
}

static int
s_set_outcome (sb_msg_t *self, sb_cmd_t command, const char *corr_id,
               sb_status_t status, zframe_t **payload)
{
    sb_msg_reset (self);
    if (payload) {
        self->payload = *payload;
        *payload = NULL;
    }
    self->command = command;
    self->status = status;
    return s_copy_ident (self->corr_id, corr_id, SB_MAX_CORR_ID_LEN);
}

int
sb_msg_set_reply (sb_msg_t *self, const char *corr_id, sb_status_t status, zframe_t **payload)
{
    return s_set_outcome (self, SB_CMD_REPLY, corr_id, status, payload);
}

int
sb_msg_set_result (sb_msg_t *self, const char *corr_id, sb_status_t status, zframe_t **payload)
{
    return s_set_outcome (self, SB_CMD_RESULT, corr_id, status, payload);
}

int
sb_msg_set_ready (sb_msg_t *self, const char *service, uint32_t credit, uint32_t heartbeat_ms)
{
    sb_msg_reset (self);
    self->command = SB_CMD_READY;
    self->credit = credit;
    self->heartbeat_ms = heartbeat_ms;
    return s_copy_ident (self->service, service, SB_MAX_SERVICE_LEN);
}

void
sb_msg_set_heartbeat (sb_msg_t *self)
{
    sb_msg_reset (self);
    self->command = SB_CMD_HEARTBEAT;
}

int
sb_msg_set_notify (sb_msg_t *self, const char *corr_id, zframe_t **payload)
{
    sb_msg_reset (self);
    if (payload) {
        self->payload = *payload;
        *payload = NULL;
    }
    self->command = SB_CMD_NOTIFY;
    return s_copy_ident (self->corr_id, corr_id, SB_MAX_CORR_ID_LEN);
}

int
sb_msg_set_cancel (sb_msg_t *self, const char *corr_id)
{
    sb_msg_reset (self);
    self->command = SB_CMD_CANCEL;
    return s_copy_ident (self->corr_id, corr_id, SB_MAX_CORR_ID_LEN);
}

int
sb_msg_set_ask (sb_msg_t *self, const char *corr_id, uint32_t ask_id, zframe_t **payload)
{
    int rc = sb_msg_set_notify (self, corr_id, payload);
    self->command = SB_CMD_ASK;
    self->ask_id = ask_id;
    return rc;
}

int
sb_msg_set_answer (sb_msg_t *self, const char *corr_id, const char *tenant,
                   uint32_t ask_id, zframe_t **payload)
{
    int rc = sb_msg_set_notify (self, corr_id, payload);
    self->command = SB_CMD_ANSWER;
    self->ask_id = ask_id;
    if (rc == 0)
        rc = s_copy_ident (self->tenant, tenant, SB_MAX_TENANT_LEN);
    return rc;
}

void
sb_msg_set_disconnect (sb_msg_t *self)
{
    sb_msg_reset (self);
    self->command = SB_CMD_DISCONNECT;
}

int
sb_msg_set_broadcast (sb_msg_t *self, const char *tenant, const char *topic, zframe_t **payload)
{
    sb_msg_reset (self);
    if (payload) {
        self->payload = *payload;
        *payload = NULL;
    }
    self->command = SB_CMD_BROADCAST;
    if (s_copy_ident (self->tenant, tenant, SB_MAX_TENANT_LEN)
    ||  s_copy_ident (self->topic, topic, SB_MAX_TOPIC_LEN))
        return -1;
    return 0;
}

int
sb_msg_set_publish (sb_msg_t *self, const char *tenant, const char *topic, zframe_t **payload)
{
    //  The same fields and bounds as BROADCAST; only the command differs.
    int rc = sb_msg_set_broadcast (self, tenant, topic, payload);
    self->command = SB_CMD_PUBLISH;
    return rc;
}

int
sb_msg_set_metering (sb_msg_t *self, uint32_t cost, const char *conn,
                     uint32_t budget_limit, uint32_t budget_window_s)
{
    if (self->command != SB_CMD_REQUEST || cost > SB_MAX_COST)
        return -1;
    if (cost > 0 && self->parent [0])
        return -1;              //  a worker's REQUEST is never metered (the broker refuses it)
    char copy [SB_MAX_CONN_LEN + 1] = "";
    if (conn && *conn && s_copy_ident (copy, conn, SB_MAX_CONN_LEN))
        return -1;
    bool no_budget = budget_limit == 0 && budget_window_s == 0;
    bool budget = copy [0]
               && budget_limit >= 1 && budget_limit <= SB_MAX_BUDGET_LIMIT
               && budget_window_s >= 1 && budget_window_s <= SB_MAX_BUDGET_WINDOW_S;
    if (!no_budget && !budget)
        return -1;
    self->cost = cost;
    memcpy (self->conn, copy, sizeof self->conn);
    self->budget_limit = budget_limit;
    self->budget_window_s = budget_window_s;
    return 0;
}

int
sb_msg_set_limits (sb_msg_t *self, uint64_t seq, uint32_t snapshot, zframe_t **payload)
{
    sb_msg_reset (self);
    if (payload) {
        self->payload = *payload;
        *payload = NULL;
    }
    self->command = SB_CMD_LIMITS;
    self->seq = seq;
    self->snapshot = snapshot;
    if (seq == 0 || seq > SB_MAX_QUOTA_VALUE || snapshot > SB_SNAPSHOT_LAST)
        return -1;
    return 0;
}

int
sb_msg_set_usage (sb_msg_t *self, uint64_t seq, uint32_t want, const char *broker_id,
                  zframe_t **payload)
{
    sb_msg_reset (self);
    if (payload) {
        self->payload = *payload;
        *payload = NULL;
    }
    self->command = SB_CMD_USAGE;
    self->seq = seq;
    self->want = want;
    if (seq == 0 || seq > SB_MAX_QUOTA_VALUE || want > S_MAX_WANT)
        return -1;
    return s_copy_ident (self->broker_id, broker_id, SB_MAX_BROKER_ID_LEN);
}

int
sb_msg_set_usage_ack (sb_msg_t *self, uint64_t seq)
{
    sb_msg_reset (self);
    self->command = SB_CMD_USAGE_ACK;
    self->seq = seq;
    if (seq == 0 || seq > SB_MAX_QUOTA_VALUE)
        return -1;
    return 0;
}

//  Random bytes are fetched SB_CORR_POOL at a time: one getrandom call per
//  32 IDs instead of one per call. The pool is per thread; a forked child
//  that goes on without exec would repeat its parent's next IDs, and no
//  switchboard process does that.
#define SB_CORR_POOL  512

void
sb_msg_new_corr_id (char *buf)
{
    static __thread uint8_t pool [SB_CORR_POOL];
    static __thread size_t used = SB_CORR_POOL;
    enum { ID_BYTES = 16 };
    if (used + ID_BYTES > sizeof pool) {
        size_t got = 0;
        while (got < sizeof pool) {
            ssize_t n = getrandom (pool + got, sizeof pool - got, 0);
            if (n < 0 && errno != EINTR)
                abort ();   //  no kernel randomness: nothing sensible to continue with
            if (n > 0)
                got += (size_t) n;
        }
        used = 0;
    }
    const uint8_t *bytes = pool + used;
    static const char hex [] = "0123456789abcdef";
    for (size_t i = 0; i < ID_BYTES; i++) {
        buf [2 * i] = hex [bytes [i] >> 4];
        buf [2 * i + 1] = hex [bytes [i] & 0xf];
    }
    buf [2 * ID_BYTES] = 0;
    explicit_bzero (pool + used, ID_BYTES);     //  an ID's bytes are not kept once given out
    used += ID_BYTES;
}
