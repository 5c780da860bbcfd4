/*  oauth/sb_oauth_meta.c — the metadata document, the authorization
    response redirects and client registration validation (see
    sb_oauth_meta.h). JSON goes through jansson trees and sb_json, never
    by hand. */
#include "sb_oauth_meta.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_json.h"
#include "sb_oauth_form.h"

//  Splits an http(s) URL's authority: returns true when `uri` starts with
//  "https://" or "http://", has a non-empty host, no userinfo, an all-digit
//  port if any, and only visible ASCII; sets *https and *loopback.
static bool
s_http_url (const char *uri, bool *https, bool *loopback, bool *has_query_or_fragment)
{
    const char *rest;
    if (strncmp (uri, "https://", 8) == 0) {
        *https = true;
        rest = uri + 8;
    }
    else
    if (strncmp (uri, "http://", 7) == 0) {
        *https = false;
        rest = uri + 7;
    }
    else
        return false;
    size_t len = strlen (uri);
    if (len > SB_OAUTH_MAX_URI)
        return false;
    for (const unsigned char *p = (const unsigned char *) uri; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    size_t authority = strcspn (rest, "/?#");
    if (authority == 0 || memchr (rest, '@', authority))
        return false;
    //  host[:port]; an IPv6 host is bracketed.
    size_t host_len = authority;
    if (rest [0] == '[') {
        const char *close = memchr (rest, ']', authority);
        if (!close)
            return false;
        host_len = (size_t) (close - rest) + 1;
    }
    else {
        const char *colon = memchr (rest, ':', authority);
        if (colon)
            host_len = (size_t) (colon - rest);
    }
    if (host_len == 0)
        return false;
    if (host_len < authority) {
        if (rest [host_len] != ':' || host_len + 1 == authority)
            return false;
        for (size_t i = host_len + 1; i < authority; i++)
            if (rest [i] < '0' || rest [i] > '9')
                return false;
    }
    *loopback = (host_len == 9 && strncmp (rest, "127.0.0.1", 9) == 0)
             || (host_len == 9 && strncmp (rest, "localhost", 9) == 0)
             || (host_len == 5 && strncmp (rest, "[::1]", 5) == 0);
    *has_query_or_fragment = strpbrk (rest + authority, "?#") != NULL;
    return true;
}

bool
sb_oauth_issuer_valid (const char *issuer)
{
    bool https, loopback, query;
    if (strlen (issuer) > SB_OAUTH_MAX_ISSUER
    ||  !s_http_url (issuer, &https, &loopback, &query))
        return false;
    size_t len = strlen (issuer);
    return (https || loopback) && !query && issuer [len - 1] != '/';
}

bool
sb_oauth_redirect_uri_valid (const char *uri)
{
    bool https, loopback, query;
    if (!s_http_url (uri, &https, &loopback, &query))
        return false;
    return (https || loopback) && !strchr (uri, '#');
}

const char *
sb_oauth_auth_name (sb_oauth_auth_t auth)
{
    switch (auth) {
        case SB_OAUTH_AUTH_NONE:    return "none";
        case SB_OAUTH_AUTH_BASIC:   return "client_secret_basic";
        case SB_OAUTH_AUTH_POST:    return "client_secret_post";
    }
    return "none";
}

//  A JSON array of the space-separated tokens of `list`.
static json_t *
s_token_array (const char *list)
{
    json_t *array = json_array ();
    const char *p = list;
    while (array && *p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn (p, " ");
        if (n && json_array_append_new (array, json_stringn (p, n))) {
            json_decref (array);
            return NULL;
        }
        p += n;
    }
    return array;
}

static int
s_set_url (json_t *doc, const char *member, const char *issuer, const char *path)
{
    size_t len = strlen (issuer) + strlen (path) + 1;
    char *url = malloc (len);
    if (!url)
        return -1;
    snprintf (url, len, "%s%s", issuer, path);
    int rc = json_object_set_new (doc, member, json_string (url));
    free (url);
    return rc;
}

char *
sb_oauth_metadata_json (const char *issuer, const char *scopes_supported)
{
    if (!sb_oauth_issuer_valid (issuer) || !sb_oauth_scope_valid (scopes_supported))
        return NULL;
    char *text = NULL;
    json_t *doc = json_object ();
    if (!doc)
        return NULL;
    int rc = json_object_set_new (doc, "issuer", json_string (issuer));
    rc |= s_set_url (doc, "authorization_endpoint", issuer, "/authorize");
    rc |= s_set_url (doc, "token_endpoint", issuer, "/token");
    rc |= s_set_url (doc, "registration_endpoint", issuer, "/register");
    rc |= s_set_url (doc, "revocation_endpoint", issuer, "/revoke");
    rc |= s_set_url (doc, "jwks_uri", issuer, "/.well-known/jwks.json");
    rc |= json_object_set_new (doc, "scopes_supported", s_token_array (scopes_supported));
    rc |= json_object_set_new (doc, "response_types_supported", s_token_array ("code"));
    rc |= json_object_set_new (doc, "response_modes_supported", s_token_array ("query"));
    rc |= json_object_set_new (doc, "grant_types_supported",
                               s_token_array ("authorization_code refresh_token"));
    rc |= json_object_set_new (doc, "token_endpoint_auth_methods_supported",
                               s_token_array ("none client_secret_basic client_secret_post"));
    rc |= json_object_set_new (doc, "revocation_endpoint_auth_methods_supported",
                               s_token_array ("none client_secret_basic client_secret_post"));
    rc |= json_object_set_new (doc, "code_challenge_methods_supported", s_token_array ("S256"));
    rc |= json_object_set_new (doc, "authorization_response_iss_parameter_supported", json_true ());
    rc |= json_object_set_new (doc, "client_id_metadata_document_supported", json_true ());
    if (rc == 0)
        text = sb_json_dump (doc, NULL);
    json_decref (doc);
    return text;
}

//  Appends "<sep><name>=<escaped value>" to the URL being built.
static int
s_param (char **url, size_t *len, const char *name, const char *value)
{
    if (!value || !*value)
        return 0;
    const char *sep = strchr (*url, '?')? "&": "?";
    if (sb_oauth_query_append (url, len, SB_OAUTH_MAX_REDIRECT_URL, sep, false)
    ||  sb_oauth_query_append (url, len, SB_OAUTH_MAX_REDIRECT_URL, name, false)
    ||  sb_oauth_query_append (url, len, SB_OAUTH_MAX_REDIRECT_URL, "=", false)
    ||  sb_oauth_query_append (url, len, SB_OAUTH_MAX_REDIRECT_URL, value, true))
        return -1;
    return 0;
}

static char *
s_redirect (const char *redirect_uri, const char *names [], const char *values [], size_t count)
{
    if (strchr (redirect_uri, '#'))
        return NULL;            //  RFC 6749 §3.1.2: no fragment, ever
    char *url = NULL;
    size_t len = 0;
    if (sb_oauth_query_append (&url, &len, SB_OAUTH_MAX_REDIRECT_URL, redirect_uri, false))
        return NULL;
    for (size_t i = 0; i < count; i++) {
        if (s_param (&url, &len, names [i], values [i])) {
            free (url);
            return NULL;
        }
    }
    return url;
}

char *
sb_oauth_code_redirect (const char *redirect_uri, const char *code, const char *state,
                        const char *issuer)
{
    if (!code || !*code || !issuer || !*issuer)
        return NULL;
    const char *names [] = { "code", "state", "iss" };
    const char *values [] = { code, state, issuer };
    return s_redirect (redirect_uri, names, values, 3);
}

char *
sb_oauth_error_redirect (const char *redirect_uri, const sb_oauth_error_t *error,
                         const char *state, const char *issuer)
{
    if (!issuer || !*issuer)
        return NULL;
    const char *names [] = { "error", "error_description", "state", "iss" };
    const char *values [] = { sb_oauth_code_name (error->code), error->description, state, issuer };
    return s_redirect (redirect_uri, names, values, 4);
}

//  --------------------------------------------------------------------
//  Registration

static void
s_refuse (sb_oauth_register_outcome_t *outcome, sb_oauth_code_t code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_refuse (sb_oauth_register_outcome_t *outcome, sb_oauth_code_t code, const char *format, ...)
{
    memset (outcome, 0, sizeof *outcome);
    outcome->kind = SB_OAUTH_REFUSED;
    outcome->error.code = code;
    outcome->error.status = 400;
    va_list args;
    va_start (args, format);
    vsnprintf (outcome->error.description, sizeof outcome->error.description, format, args);
    va_end (args);
}

//  Reads a member that must be an array of strings into bits by `names`;
//  returns -1 (and refuses) when it is not, or names something unknown.
static int
s_string_set (json_t *doc, const char *member, const char *const names [], size_t count,
              unsigned int *bits, sb_oauth_register_outcome_t *outcome)
{
    json_t *array = json_object_get (doc, member);
    if (!array)
        return 0;
    if (!json_is_array (array) || json_array_size (array) == 0) {
        s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA, "%s must be a non-empty array of strings.",
                  member);
        return -1;
    }
    *bits = 0;
    size_t index;
    json_t *item;
    json_array_foreach (array, index, item) {
        const char *text = json_string_value (item);
        size_t i = 0;
        while (text && i < count && strcmp (text, names [i]) != 0)
            i++;
        if (!text || i == count) {
            s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA,
                      "%s holds a value this server does not support.", member);
            return -1;
        }
        *bits |= 1u << i;
    }
    return 0;
}

//  Copies an optional string member; -1 (and refuses) when not a string
//  or longer than `max`.
static int
s_string_member (json_t *doc, const char *member, char *out, size_t max,
                 sb_oauth_register_outcome_t *outcome)
{
    json_t *value = json_object_get (doc, member);
    out [0] = 0;
    if (!value)
        return 0;
    if (!json_is_string (value) || json_string_length (value) > max
    ||  strlen (json_string_value (value)) != json_string_length (value)) {
        s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA,
                  "%s must be a string of at most %zu bytes.", member, max);
        return -1;
    }
    memcpy (out, json_string_value (value), json_string_length (value) + 1);
    return 0;
}

static int
s_register (json_t *doc, const char *scopes_supported, sb_oauth_client_metadata_t *metadata,
            sb_oauth_register_outcome_t *outcome)
{
    json_t *uris = json_object_get (doc, "redirect_uris");
    if (!json_is_array (uris) || json_array_size (uris) == 0) {
        s_refuse (outcome, SB_OAUTH_INVALID_REDIRECT_URI,
                  "redirect_uris is required: a non-empty array of URIs.");
        return -1;
    }
    if (json_array_size (uris) > SB_OAUTH_MAX_REDIRECT_URIS) {
        s_refuse (outcome, SB_OAUTH_INVALID_REDIRECT_URI,
                  "A client may register at most %d redirect URIs.", SB_OAUTH_MAX_REDIRECT_URIS);
        return -1;
    }
    size_t index;
    json_t *item;
    json_array_foreach (uris, index, item) {
        const char *uri = json_string_value (item);
        if (!uri || strlen (uri) != json_string_length (item) || !sb_oauth_redirect_uri_valid (uri)) {
            s_refuse (outcome, SB_OAUTH_INVALID_REDIRECT_URI,
                      "Redirect URI %zu must be https (or http on a loopback host) without a fragment.",
                      index + 1);
            return -1;
        }
        memcpy (metadata->redirect_uris [index], uri, strlen (uri) + 1);
        metadata->redirect_uri_count++;
    }
    //  token_endpoint_auth_method: RFC 7591 §2's default is client_secret_basic.
    static const char *const auth_names [] = { "none", "client_secret_basic", "client_secret_post" };
    static const sb_oauth_auth_t auths [] = { SB_OAUTH_AUTH_NONE, SB_OAUTH_AUTH_BASIC, SB_OAUTH_AUTH_POST };
    metadata->auth = SB_OAUTH_AUTH_BASIC;
    json_t *method = json_object_get (doc, "token_endpoint_auth_method");
    if (method) {
        const char *text = json_string_value (method);
        size_t i = 0;
        while (text && i < 3 && strcmp (text, auth_names [i]) != 0)
            i++;
        if (!text || i == 3) {
            s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA,
                      "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post.");
            return -1;
        }
        metadata->auth = auths [i];
    }
    static const char *const grant_names [] = { "authorization_code", "refresh_token" };
    static const char *const response_names [] = { "code" };
    metadata->grants = SB_OAUTH_GRANT_BIT_CODE;
    unsigned int responses = 1;
    if (s_string_set (doc, "grant_types", grant_names, 2, &metadata->grants, outcome)
    ||  s_string_set (doc, "response_types", response_names, 1, &responses, outcome))
        return -1;
    //  RFC 7591 §2.1: the code grant and the code response type go together;
    //  without the code grant a client could never get a refresh token.
    if (!(metadata->grants & SB_OAUTH_GRANT_BIT_CODE)) {
        s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA,
                  "grant_types must include authorization_code.");
        return -1;
    }
    if (s_string_member (doc, "client_name", metadata->client_name, SB_OAUTH_MAX_CLIENT_NAME, outcome)
    ||  s_string_member (doc, "scope", metadata->scope, SB_OAUTH_MAX_SCOPE, outcome))
        return -1;
    if (metadata->scope [0] && (!sb_oauth_scope_valid (metadata->scope)
                            ||  !sb_oauth_scope_subset (metadata->scope, scopes_supported))) {
        s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA, "scope names a scope this server does not offer.");
        return -1;
    }
    return 0;
}

void
sb_oauth_register_validate (const char *body, size_t len, const char *scopes_supported,
                            sb_oauth_register_outcome_t *outcome)
{
    memset (outcome, 0, sizeof *outcome);
    if (len > SB_OAUTH_MAX_REGISTER_BODY) {
        s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA, "The registration request is too long.");
        return;
    }
    json_t *doc = sb_json_parse (body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object (doc)) {
        s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA,
                  "The registration request must be a JSON object.");
        json_decref (doc);
        return;
    }
    sb_oauth_client_metadata_t *metadata = calloc (1, sizeof *metadata);
    if (!metadata)
        s_refuse (outcome, SB_OAUTH_INVALID_CLIENT_METADATA, "The server ran out of memory.");
    else
    if (s_register (doc, scopes_supported, metadata, outcome) == 0) {
        outcome->kind = SB_OAUTH_VALID;
        outcome->metadata = *metadata;
    }
    free (metadata);
    json_decref (doc);
}
