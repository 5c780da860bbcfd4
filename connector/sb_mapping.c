/*  connector/sb_mapping.c — turns an upstream HTTP response into an MCP
    CallToolResult.

    Success gives a short text for the model to read ("Found 3 accounts:
    Acme Corp (Manufacturing), …") and the mapped data as structuredContent;
    printed by sb_tool_result_text, it also carries that JSON as a second
    text item (MCP: a tool that returns structured content should return
    the same JSON as text, for clients that do not read structuredContent).
    Failure gives isError with one sentence a person understands and a
    machine-readable _meta {error_type, upstream_status, retry_after}. The
    text stays short on purpose: ChatGPT reads all of it on every call. */
#include "sb_connector_int.h"
#include "sb_attr.h"
#include "sb_json.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_LABEL_TEXT 120   /* one item's "Title (subtitle)" in a summary, bytes */

/*  A bounded text being built; longer text is cut with "…". */
typedef struct {
    char data [SB_MAX_SUMMARY_TEXT];    /* NUL-terminated */
    size_t len;                         /* bytes used */
    bool full;                          /* something was cut */
} s_text_t;

//  Appends at most `max` bytes of `text`, never splitting a UTF-8 sequence.
static void
s_text_add_n (s_text_t *self, const char *text, size_t len, size_t max)
{
    static const char ellipsis [] = "\xE2\x80\xA6";     /* … */
    if (self->full)
        return;
    size_t room = sizeof self->data - 1 - self->len;
    size_t limit = max < room ? max : room;
    bool cut = false;
    if (len > limit) {
        cut = true;
        len = limit >= 3 ? limit - 3 : 0;
        while (len > 0 && ((unsigned char) text [len] & 0xC0) == 0x80)
            len--;
    }
    memcpy (self->data + self->len, text, len);
    self->len += len;
    if (cut) {
        if (self->len + 3 < sizeof self->data) {
            memcpy (self->data + self->len, ellipsis, 3);
            self->len += 3;
        }
        if (limit == room)
            self->full = true;
    }
    self->data [self->len] = 0;
}

static void
s_text_add (s_text_t *self, const char *text)
{
    s_text_add_n (self, text, strlen (text), SIZE_MAX);
}

static void
s_text_addf (s_text_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
s_text_addf (s_text_t *self, const char *fmt, ...)
{
    char buf [SB_MAX_SUMMARY_TEXT];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (buf, sizeof buf, fmt, ap);
    va_end (ap);
    s_text_add (self, buf);
}

//  Copies printable text of a scalar value into buf; returns false if
//  there is nothing to show.
static bool
s_scalar_text (const json_t *value, char *buf, size_t size)
{
    if (json_is_string (value)) {
        const char *text = json_string_value (value);
        size_t at = 0;
        for (size_t i = 0; text [i] && at + 1 < size; i++)
            buf [at++] = ((unsigned char) text [i] < 0x20) ? ' ' : text [i];
        buf [at] = 0;
        return at > 0;
    }
    if (json_is_integer (value)) {
        snprintf (buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
        return true;
    }
    if (json_is_real (value)) {
        snprintf (buf, size, "%g", json_real_value (value));
        return true;
    }
    if (json_is_boolean (value)) {
        snprintf (buf, size, "%s", json_is_true (value) ? "true" : "false");
        return true;
    }
    return false;
}

//  Appends "Title (sub1, sub2)" for one item.
static void
s_text_add_label (s_text_t *self, const sb_tool_t *tool, const json_t *item)
{
    char value [SB_MAX_LABEL_TEXT];
    s_text_t label = { .len = 0 };
    const json_t *title = tool->title_field ? json_object_get (item, tool->title_field) : NULL;
    if (!title)
        title = json_object_get (item, "name");
    if (!title)
        title = json_object_get (item, "id");
    if (s_scalar_text (title, value, sizeof value))
        s_text_add (&label, value);
    else
        s_text_add (&label, "(untitled)");
    size_t index;
    json_t *field;
    int shown = 0;
    json_array_foreach (tool->subtitle_fields, index, field) {
        const json_t *sub = json_object_get (item, json_string_value (field));
        if (!s_scalar_text (sub, value, sizeof value))
            continue;
        s_text_add (&label, shown++ ? ", " : " (");
        s_text_add (&label, value);
    }
    if (shown)
        s_text_add (&label, ")");
    s_text_add_n (self, label.data, label.len, SB_MAX_LABEL_TEXT);
}

//  Appends the summary template with {count}, {noun}, {Noun}.
static void
s_text_add_summary (s_text_t *self, const sb_tool_t *tool, long count)
{
    const char *noun = count == 1 || count < 0 ? tool->noun : tool->noun_plural;
    const char *p = tool->summary;
    while (*p) {
        if (strncmp (p, "{count}", 7) == 0) {
            s_text_addf (self, "%ld", count < 0 ? 1 : count);
            p += 7;
        }
        else
        if (strncmp (p, "{noun}", 6) == 0) {
            s_text_add (self, noun);
            p += 6;
        }
        else
        if (strncmp (p, "{Noun}", 6) == 0) {
            char first [2] = { (char) toupper ((unsigned char) noun [0]), 0 };
            s_text_add (self, first);
            s_text_add (self, noun + 1);
            p += 6;
        }
        else {
            s_text_add_n (self, p, 1, 1);
            p++;
        }
    }
}

//  RFC 6901 JSON pointer lookup (borrowed result or NULL).
static json_t *
s_pointer_get (json_t *root, const char *pointer)
{
    json_t *node = root;
    const char *p = pointer;
    while (node && *p == '/') {
        p++;
        char token [256];
        size_t len = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~' && (*p == '0' || *p == '1'))
                c = *p++ == '0' ? '~' : '/';
            if (len + 1 >= sizeof token)
                return NULL;
            token [len++] = c;
        }
        token [len] = 0;
        if (json_is_object (node))
            node = json_object_get (node, token);
        else
        if (json_is_array (node)) {
            char *end = NULL;
            unsigned long index = strtoul (token, &end, 10);
            node = (len && end && *end == 0) ? json_array_get (node, index) : NULL;
        }
        else
            node = NULL;
    }
    return *p ? NULL : node;
}

//  --------------------------------------------------------------------------
//  The "result" block of a tool definition

static char *
s_strdup_or_null (const char *text)
{
    return text ? strdup (text) : NULL;
}

int
sb_mapping_parse (sb_tool_t *self, const json_t *result, const char *where, char **why)
{
    //  The format checked the shape: a mapping of "list" or "object", JSON
    //  pointers, arrays of strings, a noun.
    const char *pointer = sb_def_string (result, "pointer");
    const char *text = sb_def_string (result, "summary");
    char *error = NULL;
    if (text && sb_template_check (text, NULL, NULL, &error)) {
        *why = sb_strfmt ("%s/result/summary: %s", where, error);
        free (error);
        return -1;
    }
    self->map_kind = strcmp (sb_def_string (result, "mapping"), "list") == 0 ? SB_MAP_LIST
                                                                          : SB_MAP_OBJECT;
    self->summary = strdup (text ? text
                            : self->map_kind == SB_MAP_LIST ? "Found {count} {noun}" : "{Noun}");
    self->pointer = strdup (pointer ? pointer : "");
    self->cursor_pointer = s_strdup_or_null (sb_def_string (result, "next_cursor"));
    self->total_pointer = s_strdup_or_null (sb_def_string (result, "total"));
    self->title_field = s_strdup_or_null (sb_def_string (result, "title"));
    json_t *subtitle = json_object_get (result, "subtitle");
    if (subtitle)
        self->subtitle_fields = json_incref (subtitle);
    json_t *fields = json_object_get (result, "fields");
    if (fields)
        self->fields = json_incref (fields);
    self->noun = strdup (sb_def_string (result, "noun"));
    text = sb_def_string (result, "noun_plural");
    self->noun_plural = text ? strdup (text) : sb_strfmt ("%ss", self->noun);
    return 0;
}

//  Keeps only `fields` of an object (new reference). The kept values are
//  shared with `item`, not copied: results are built, checked, printed and
//  freed, and nothing writes into them on the way. Field names were checked
//  as UTF-8 when the connector loaded.
static json_t *
s_project (const json_t *item, const json_t *fields)
{
    if (!fields || !json_is_object (item))
        return json_deep_copy (item);
    json_t *out = json_object ();
    size_t index;
    json_t *field;
    json_array_foreach (fields, index, field) {
        json_t *value = json_object_getn (item, json_string_value (field), json_string_length (field));
        if (value && json_object_setn_nocheck (out, json_string_value (field),
                                               json_string_length (field), value) != 0) {
            json_decref (out);
            return NULL;
        }
    }
    return out;
}

//  The error result: one sentence plus _meta.
static json_t *
s_error_result (const char *text, const char *error_type, long status, long retry_after)
{
    json_t *meta = json_pack ("{s:s}", "error_type", error_type);
    if (status > 0)
        json_object_set_new (meta, "upstream_status", json_integer (status));
    if (retry_after >= 0)
        json_object_set_new (meta, "retry_after", json_integer (retry_after));
    return json_pack ("{s:[{s:s, s:s}], s:b, s:o}",
                      "content", "type", "text", "text", text,
                      "isError", 1,
                      "_meta", meta);
}

//  A success: the summary and structuredContent (taken). The same JSON as
//  text is added when the result is printed (sb_tool_result_text), so the
//  data is serialised once. NULL when out of memory.
static json_t *
s_ok_result (const char *summary, json_t *structured)
{
    return json_pack ("{s:[{s:s, s:s}], s:o, s:b}", "content", "type", "text", "text", summary,
                      "structuredContent", structured, "isError", 0);
}

//  The connector's display name with its first letter capitalised.
static void
s_text_add_display (s_text_t *self, const sb_tool_t *tool)
{
    const char *name = tool->connector->display_name;
    char first [2] = { (char) toupper ((unsigned char) name [0]), 0 };
    s_text_add (self, first);
    s_text_add (self, name + 1);
}

static json_t *
s_map_success (const sb_tool_t *tool, long status, const char *body, size_t body_len)
{
    s_text_t text = { .len = 0 };
    json_t *root = NULL;
    json_t *result = NULL;
    if (body_len == 0 && tool->map_kind == SB_MAP_OBJECT) {
        //  204 No Content and friends: the call worked, there is nothing to show.
        s_text_add_summary (&text, tool, -1);
        s_text_add (&text, ".");
        return s_ok_result (text.data, json_object ());
    }
    root = body ? sb_json_parse (body, body_len, 0, NULL) : NULL;
    json_t *target = root ? s_pointer_get (root, tool->pointer) : NULL;
    bool shape_ok = tool->map_kind == SB_MAP_LIST ? json_is_array (target)
                                                  : json_is_object (target);
    if (!shape_ok) {
        s_text_add_display (&text, tool);
        s_text_add (&text, " sent an answer switchboard could not read");
        s_text_addf (&text, " (HTTP %ld, %s). Try again, or tell an admin if it persists.",
                     status, root ? "unexpected shape" : "not JSON");
        result = s_error_result (text.data, "upstream_invalid_response", status, -1);
        goto out;
    }
    if (tool->map_kind == SB_MAP_LIST) {
        size_t count = json_array_size (target);
        json_t *items = json_array ();
        size_t index;
        json_t *item;
        json_array_foreach (target, index, item)
            json_array_append_new (items, s_project (item, tool->fields));
        json_t *structured = json_pack ("{s:o, s:I}", "items", items,
                                        "count", (json_int_t) count);
        json_t *cursor = tool->cursor_pointer ? s_pointer_get (root, tool->cursor_pointer) : NULL;
        if (json_is_string (cursor) && json_string_length (cursor) > 0)
            json_object_set (structured, "next_cursor", cursor);

        //  With a total from the upstream, sentences count all matches,
        //  not just this page.
        size_t total = count;
        json_t *total_value = tool->total_pointer ? s_pointer_get (root, tool->total_pointer)
                                                  : NULL;
        if (json_is_integer (total_value) && json_integer_value (total_value) >= (json_int_t) count) {
            total = (size_t) json_integer_value (total_value);
            json_object_set_new (structured, "total", json_integer ((json_int_t) total));
        }
        s_text_add_summary (&text, tool, (long) total);
        size_t shown = count < SB_MAX_SUMMARY_ITEMS ? count : SB_MAX_SUMMARY_ITEMS;
        for (index = 0; index < shown; index++) {
            s_text_add (&text, index ? "; " : ": ");
            s_text_add_label (&text, tool, json_array_get (target, index));
        }
        if (total > shown)
            s_text_addf (&text, "; and %zu more", total - shown);
        s_text_add (&text, ".");
        if (json_object_get (structured, "next_cursor"))
            s_text_add (&text, " More results are available (next_cursor).");
        result = s_ok_result (text.data, structured);
    }
    else {
        json_t *structured = s_project (target, tool->fields);
        s_text_add_summary (&text, tool, -1);
        s_text_add (&text, ": ");
        s_text_add_label (&text, tool, target);
        s_text_add (&text, ".");
        result = s_ok_result (text.data, structured);
    }
out:
    json_decref (root);
    return result;
}

//  The upstream's own error message, if it sent one we can quote.
static bool
s_upstream_message (const char *body, size_t body_len, char *buf, size_t size)
{
    json_t *root = body ? sb_json_parse (body, body_len, 0, NULL) : NULL;
    json_t *message = json_object_get (root, "message");
    if (!json_is_string (message))
        message = json_object_get (root, "error_description");
    if (!json_is_string (message))
        message = json_object_get (root, "error");
    bool found = s_scalar_text (message, buf, size);
    json_decref (root);
    return found;
}

static long
s_retry_after (const char *body, size_t body_len)
{
    json_t *root = body ? sb_json_parse (body, body_len, 0, NULL) : NULL;
    json_t *value = json_object_get (root, "retry_after");
    long seconds = -1;
    if (json_is_integer (value) && json_integer_value (value) >= 0
    &&  json_integer_value (value) <= 86400)
        seconds = (long) json_integer_value (value);
    json_decref (root);
    return seconds;
}

json_t *
sb_tool_map_result (const sb_tool_t *self, long http_status,
                    const char *body, size_t body_len)
{
    if (http_status >= 200 && http_status < 300)
        return s_map_success (self, http_status, body, body_len);

    s_text_t text = { .len = 0 };
    if (http_status == 401 || http_status == 403) {
        s_text_add_display (&text, self);
        s_text_add (&text, " refused switchboard's credentials; an admin needs to re-connect it.");
        return s_error_result (text.data, "upstream_auth", http_status, -1);
    }
    if (http_status == 404) {
        if (self->map_kind == SB_MAP_OBJECT)
            s_text_addf (&text, "No %s with that ID exists.", self->noun);
        else {
            s_text_add_display (&text, self);
            s_text_addf (&text, " could not find any %s for that request (HTTP 404).",
                         self->noun_plural);
        }
        return s_error_result (text.data, "not_found", http_status, -1);
    }
    if (http_status == 429) {
        long retry_after = s_retry_after (body, body_len);
        s_text_add_display (&text, self);
        if (retry_after >= 0)
            s_text_addf (&text, " is rate-limiting switchboard; try again in %ld second%s.",
                         retry_after, retry_after == 1 ? "" : "s");
        else
            s_text_add (&text, " is rate-limiting switchboard; try again in a minute.");
        return s_error_result (text.data, "upstream_rate_limited", http_status, retry_after);
    }
    if (http_status >= 500 && http_status < 600) {
        s_text_add_display (&text, self);
        s_text_addf (&text, " is having problems right now (HTTP %ld). Try again in a minute.",
                     http_status);
        return s_error_result (text.data, "upstream_unavailable", http_status, -1);
    }
    if (http_status >= 400 && http_status < 500) {
        char message [SB_MAX_UPSTREAM_MESSAGE];
        s_text_add_display (&text, self);
        s_text_addf (&text, " rejected the request (HTTP %ld)", http_status);
        if (s_upstream_message (body, body_len, message, sizeof message)) {
            s_text_add (&text, ": ");
            s_text_add_n (&text, message, strlen (message), SB_MAX_UPSTREAM_MESSAGE);
            size_t len = text.len;
            if (len && text.data [len - 1] != '.' && text.data [len - 1] != '!'
            &&  text.data [len - 1] != '?')
                s_text_add (&text, ".");
        }
        else
            s_text_add (&text, ".");
        return s_error_result (text.data, "upstream_rejected", http_status, -1);
    }
    s_text_add_display (&text, self);
    s_text_addf (&text, " gave an answer switchboard did not expect (HTTP %ld).", http_status);
    return s_error_result (text.data, "upstream_unexpected", http_status, -1);
}

char *
sb_tool_result_text (const json_t *result)
{
    json_t *structured = json_object_get (result, "structuredContent");
    json_t *content = json_object_get (result, "content");
    if (!json_is_object (structured) || !json_is_array (content)
    ||  json_is_true (json_object_get (result, "isError")))
        return sb_json_dump (result, NULL);
    //  The data once as text; the rest around it, without the data, which
    //  is spliced back in instead of being serialised a second time.
    size_t data_len = 0;
    char *data = sb_json_dump (structured, &data_len);
    json_t *items = json_copy (content);
    json_t *rest = json_copy (sb_unconst (result));
    //  The text item, without json_pack's UTF-8 pass over text sb_json_dump
    //  has just written (valid by construction).
    json_t *item = data? json_object (): NULL;
    bool built = item && items && rest
        && json_object_set_new_nocheck (item, "type", json_string_nocheck ("text")) == 0
        && json_object_set_new_nocheck (item, "text", json_stringn_nocheck (data, data_len)) == 0;
    if (!built) {
        json_decref (item);
        item = NULL;
    }
    char *head = NULL, *text = NULL;
    if (item
    &&  json_array_append_new (items, item) == 0        //  takes the item, even on failure
    &&  json_object_set (rest, "content", items) == 0
    &&  json_object_del (rest, "structuredContent") == 0)
        head = sb_json_dump (rest, NULL);
    size_t head_len = head? strlen (head): 0;
    if (head_len >= 2 && head [head_len - 1] == '}') {
        static const char key [] = ",\"structuredContent\":";
        text = malloc (head_len - 1 + sizeof key - 1 + data_len + 2);
        if (text) {
            char *at = text;
            memcpy (at, head, head_len - 1);        at += head_len - 1;
            memcpy (at, key, sizeof key - 1);       at += sizeof key - 1;
            memcpy (at, data, data_len);            at += data_len;
            memcpy (at, "}", 2);
        }
    }
    free (head);
    free (data);
    json_decref (items);
    json_decref (rest);
    return text;
}
