/*  tools/sb_admin_main.c — sb-admin: the operator's command line over the
    admin API (docs/ADMIN.md). Each command is one HTTP request to a
    gateway's /admin/… with the operator key as a Bearer token; the answer
    is printed as a table, or as JSON with --json.

        sb-admin [--url URL] [--admin-key-file F] [--cacert F] [--json] <command>

    Exit codes: 0 done, 1 refused by the server (its sentence on stderr),
    2 a usage or local error (bad arguments, unreadable key or password
    file), 3 the server cannot be reached (connection, TLS, timeout).
    The key is read with sb_secret_read_file and never printed; a password
    the tool generates is printed once, on stdout. Synchronous libcurl: a
    command line waits for its one answer. */
#include "sb_crypto.h"
#include "sb_json.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_ADMIN_DEFAULT_URL        "http://127.0.0.1:8080"
#define SB_ADMIN_MAX_RESPONSE       (4 * 1024 * 1024)   /* bytes of an answer we read */
#define SB_ADMIN_TIMEOUT_MS         60000               /* one request, at most */
#define SB_ADMIN_CONNECT_MS         10000               /* connecting, at most */
#define SB_ADMIN_MAX_ARGS           8                   /* positional arguments of a command */
#define SB_ADMIN_PASSWORD_BYTES     18                  /* random bytes of a generated password (24 chars) */
#define SB_ADMIN_MAX_URL            4096                /* bytes of a request URL */
#define SB_ADMIN_MAX_API_KEY        16384               /* bytes of an API key (the token service's SB_MAX_CONN_SECRET) */
#define SB_ADMIN_MAX_DIGITS         16                  /* digits of a plan limit option (2^53 has 16) */
#define SB_ADMIN_MAX_OPTIONS        16                  /* --option k=v of one webhook endpoint */

enum { S_OK = 0, S_REFUSED = 1, S_USAGE = 2, S_UNREACHABLE = 3, S_UNAVAILABLE = 4 };

static const char s_usage [] =
    "usage: sb-admin [--url URL] [--admin-key-file FILE] [--cacert FILE] [--json] COMMAND\n"
    "\n"
    "  tenant create ID NAME [--plan PLAN]    create a tenant (plan: free unless given)\n"
    "  tenant list                            list tenants\n"
    "  tenant show ID                         one tenant, with counts\n"
    "  tenant delete ID                       delete a tenant and every row it owns\n"
    "  tenant plan ID PLAN                    set a tenant's plan\n"
    "  plan list                              list plans with their limits\n"
    "  plan show ID                           one plan's limits\n"
    "  plan create ID NAME [LIMITS]           create a plan (a limit not given: unlimited)\n"
    "  plan set ID LIMITS                     change a plan's limits (the others stay);\n"
    "                                         brokers apply it within seconds\n"
    "      LIMITS: [--rate N] [--burst N] [--in-flight N] [--monthly N|unlimited]\n"
    "              [--weight N]   (per minute with a burst, calls at once, calls per\n"
    "              billing period, fair-queue weight 1-100; 0 = unlimited)\n"
    "  tenant anchor ID DAY                   set a tenant's billing day (1-28)\n"
    "  usage TENANT                           a tenant's usage: this period, this minute,\n"
    "                                         refusals by reason, its plan's limits\n"
    "  user add TENANT EMAIL [--password-file FILE]\n"
    "                                         add a user (without a file: a generated\n"
    "                                         password, printed once)\n"
    "  user list TENANT                       list a tenant's users\n"
    "  user remove TENANT USER_ID             remove a user\n"
    "  user password TENANT USER_ID [--password-file FILE]\n"
    "                                         reset a password (revokes the user's tokens)\n"
    "  client list                            list OAuth clients\n"
    "  client revoke CLIENT_ID                revoke a client in every tenant\n"
    "  tokens revoke TENANT [--user USER_ID]  revoke refresh tokens of a tenant or a user\n"
    "  keys rotate                            make a new signing key current\n"
    "  connections list TENANT                a tenant's connections (never a secret)\n"
    "  connections add-key TENANT CONNECTOR [--key-file FILE]\n"
    "                                         store a tenant's API key for a connector:\n"
    "                                         the first line of FILE, else of stdin\n"
    "                                         (never an argument)\n"
    "  connections delete TENANT CONNECTOR    forget a tenant's connection\n"
    "  connection-keys list                   the data keys sealing connection secrets\n"
    "  connection-keys rotate                 make a new data key current, then re-seal\n"
    "                                         every connection, webhook endpoint and\n"
    "                                         subscription under it, printing progress\n"
    "  audit [TENANT] [--limit N] [--before ID]\n"
    "                                         the audit log, newest first\n"
    "  webhooks endpoint create TENANT CONNECTOR --scheme S [--secret-file F]\n"
    "                   [--option K=V]...     an inbound endpoint: prints its ID, its\n"
    "                                         path /webhooks/ID and (without a file)\n"
    "                                         the generated secret, once. S: stripe,\n"
    "                                         github, shopify, slack, standard,\n"
    "                                         salesforce, hmac\n"
    "  webhooks endpoint list TENANT          a tenant's endpoints (never a secret)\n"
    "  webhooks endpoint show ID              one endpoint, its event count\n"
    "  webhooks endpoint rotate ID [--secret-file F] [--overlap-s N]\n"
    "                                         a new secret; the old one verifies too\n"
    "                                         for N seconds (default 86400, 0: none)\n"
    "  webhooks endpoint disable|enable|delete ID\n"
    "  webhooks subscribe TENANT URL [--types a,b*] [--connector C] [--rate N]\n"
    "                   [--in-flight N]       send the tenant's events to URL, signed\n"
    "                                         (Standard Webhooks): prints the ID and its\n"
    "                                         whsec_ secret, once\n"
    "  webhooks subscriptions TENANT          a tenant's subscriptions\n"
    "  webhooks unsubscribe ID                delete a subscription\n"
    "  webhooks subscription enable ID        re-enable a disabled subscription\n"
    "  webhooks dead TENANT [--limit N] [--before ID]\n"
    "                                         dead letters, newest first\n"
    "  webhooks replay DELIVERY_ID | --all TENANT [--limit N]\n"
    "                                         dead letters back to pending (attempts kept)\n"
    "  webhooks events TENANT [--connector C] [--limit N] [--before ID]\n"
    "                                         the tenant's event log, newest first\n"
    "  webhooks attempts DELIVERY_ID          a delivery and every attempt\n"
    "\n"
    "  --url URL              the gateway (default $SB_ADMIN_URL, else " SB_ADMIN_DEFAULT_URL ")\n"
    "  --admin-key-file FILE  the operator key, first line (default $SB_ADMIN_KEY_FILE)\n"
    "  --cacert FILE          CA certificates to verify an https gateway with\n"
    "  --json                 print the server's JSON answer instead of a table\n"
    "\n"
    "Exit: 0 done, 1 refused by the server, 2 usage or local error, 3 server unreachable,\n"
    "      4 the server is there but cannot serve now (HTTP 503, 504): try again.\n";

//  The command line, parsed.
typedef struct {
    const char *url;            /* --url */
    const char *key_file;       /* --admin-key-file */
    const char *cacert;         /* --cacert */
    const char *plan;           /* --plan */
    const char *password_file;  /* --password-file */
    const char *user;           /* --user */
    const char *limit;          /* --limit */
    const char *before;         /* --before */
    const char *api_key_file;   /* --key-file: an API key */
    const char *rate;           /* --rate: a plan's calls per minute */
    const char *burst;          /* --burst */
    const char *in_flight;      /* --in-flight */
    const char *monthly;        /* --monthly: a number or "unlimited" */
    const char *weight;         /* --weight */
    const char *scheme;         /* --scheme: a webhook endpoint's */
    const char *secret_file;    /* --secret-file: a webhook endpoint's secret */
    const char *overlap_s;      /* --overlap-s: a rotation's */
    const char *types;          /* --types: a subscription's event types, a,b* */
    const char *connector;      /* --connector */
    const char *all;            /* --all TENANT: replay every dead letter */
    const char *options [SB_ADMIN_MAX_OPTIONS];     /* --option K=V, in order */
    int option_count;
    bool json;                  /* --json */
    const char *args [SB_ADMIN_MAX_ARGS];   /* positional: the command and its arguments */
    int count;                  /* positional arguments */
} s_cli_t;

//  One request and its answer.
typedef struct {
    char *body;                 /* the answer, NUL-terminated */
    size_t len;                 /* its bytes */
    bool too_big;               /* it passed SB_ADMIN_MAX_RESPONSE */
} s_answer_t;

//  Says what is wrong with the command line; returns S_USAGE.
static int
s_usage_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static int
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "sb-admin: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n(sb-admin --help lists the commands)\n");
    va_end (args);
    return S_USAGE;
}

//  Reads argv into `cli`. Returns 0, S_USAGE after saying why, or -1 when
//  --help was asked (usage printed).
static int
s_parse (int argc, char **argv, s_cli_t *cli)
{
    static const struct { const char *name; size_t offset; } options [] = {
        { "--url", offsetof (s_cli_t, url) },
        { "--admin-key-file", offsetof (s_cli_t, key_file) },
        { "--cacert", offsetof (s_cli_t, cacert) },
        { "--plan", offsetof (s_cli_t, plan) },
        { "--password-file", offsetof (s_cli_t, password_file) },
        { "--user", offsetof (s_cli_t, user) },
        { "--limit", offsetof (s_cli_t, limit) },
        { "--before", offsetof (s_cli_t, before) },
        { "--key-file", offsetof (s_cli_t, api_key_file) },
        { "--rate", offsetof (s_cli_t, rate) },
        { "--burst", offsetof (s_cli_t, burst) },
        { "--in-flight", offsetof (s_cli_t, in_flight) },
        { "--monthly", offsetof (s_cli_t, monthly) },
        { "--weight", offsetof (s_cli_t, weight) },
        { "--scheme", offsetof (s_cli_t, scheme) },
        { "--secret-file", offsetof (s_cli_t, secret_file) },
        { "--overlap-s", offsetof (s_cli_t, overlap_s) },
        { "--types", offsetof (s_cli_t, types) },
        { "--connector", offsetof (s_cli_t, connector) },
        { "--all", offsetof (s_cli_t, all) },
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            fputs (s_usage, stdout);
            return -1;
        }
        if (strcmp (arg, "--json") == 0) {
            cli->json = true;
            continue;
        }
        if (strcmp (arg, "--option") == 0 || strncmp (arg, "--option=", 9) == 0) {
            const char *value = arg [8] == '='? arg + 9: NULL;
            if (!value && i + 1 >= argc)
                return s_usage_error ("%s", "--option needs a value K=V");
            if (!value)
                value = argv [++i];
            if (cli->option_count == SB_ADMIN_MAX_OPTIONS)
                return s_usage_error ("more than %d --option", SB_ADMIN_MAX_OPTIONS);
            cli->options [cli->option_count++] = value;
            continue;
        }
        if (strncmp (arg, "--", 2) == 0) {
            size_t name_len = strcspn (arg, "=");
            const char *value = arg [name_len] == '='? arg + name_len + 1: NULL;
            bool known = false;
            for (size_t k = 0; k < sizeof options / sizeof options [0]; k++) {
                if (strlen (options [k].name) != name_len
                ||  strncmp (options [k].name, arg, name_len) != 0)
                    continue;
                if (!value) {
                    if (i + 1 >= argc)
                        return s_usage_error ("%s needs a value", options [k].name);
                    value = argv [++i];
                }
                const char **slot = (const char **) ((char *) cli + options [k].offset);
                if (*slot)
                    return s_usage_error ("%s given twice", options [k].name);
                *slot = value;
                known = true;
            }
            if (!known)
                return s_usage_error ("unknown option %s", arg);
            continue;
        }
        if (cli->count == SB_ADMIN_MAX_ARGS)
            return s_usage_error ("too many arguments (%s…)", arg);
        cli->args [cli->count++] = arg;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  HTTP

static size_t
s_on_data (char *data, size_t size, size_t count, void *arg)
{
    s_answer_t *answer = arg;
    size_t bytes = size * count;
    if (answer->len + bytes > SB_ADMIN_MAX_RESPONSE) {
        answer->too_big = true;
        return 0;
    }
    char *body = realloc (answer->body, answer->len + bytes + 1);
    if (!body)
        return 0;
    memcpy (body + answer->len, data, bytes);
    answer->body = body;
    answer->len += bytes;
    answer->body [answer->len] = 0;
    return bytes;
}

//  Appends `text` percent-encoded (all but unreserved characters) to `url`.
static int
s_append_escaped (char *url, size_t size, const char *text)
{
    size_t used = strlen (url);
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
                  || *c == '-' || *c == '_' || *c == '.' || *c == '~';
        int n = plain? snprintf (url + used, size - used, "%c", *c)
                     : snprintf (url + used, size - used, "%%%02X", *c);
        if (n < 0 || (size_t) n >= size - used)
            return -1;
        used += (size_t) n;
    }
    return 0;
}

//  Appends plain `text` to `url`.
static int
s_append (char *url, size_t size, const char *text)
{
    size_t used = strlen (url);
    int n = snprintf (url + used, size - used, "%s", text);
    return n < 0 || (size_t) n >= size - used? -1: 0;
}

//  Sends `method` to `url` with the key and `body` (NULL: none). Returns
//  S_OK with *status and the answer, or S_UNREACHABLE / S_USAGE after
//  saying why on stderr.
static int
s_request (const s_cli_t *cli, const char *key, const char *method, const char *url,
           const char *body, long *status, s_answer_t *answer)
{
    int rc = S_UNREACHABLE;
    CURL *curl = curl_easy_init ();
    struct curl_slist *headers = NULL;
    char *auth = NULL;
    size_t auth_len = strlen ("authorization: Bearer ") + strlen (key) + 1;
    auth = malloc (auth_len);
    if (!curl || !auth) {
        fprintf (stderr, "sb-admin: out of memory\n");
        rc = S_USAGE;
        goto out;
    }
    snprintf (auth, auth_len, "authorization: Bearer %s", key);
    headers = curl_slist_append (headers, auth);
    headers = curl_slist_append (headers, "accept: application/json");
    if (body)
        headers = curl_slist_append (headers, "content-type: application/json");
    char error [CURL_ERROR_SIZE] = "";
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) SB_ADMIN_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) SB_ADMIN_CONNECT_MS);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cli->cacert)
        curl_easy_setopt (curl, CURLOPT_CAINFO, cli->cacert);
    if (body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    }
    CURLcode code = curl_easy_perform (curl);
    if (answer->too_big) {
        fprintf (stderr, "sb-admin: the server's answer is larger than %d bytes\n", SB_ADMIN_MAX_RESPONSE);
        rc = S_REFUSED;
    }
    else
    if (code != CURLE_OK)
        fprintf (stderr, "sb-admin: cannot reach %s: %s\n", cli->url,
                 *error? error: curl_easy_strerror (code));
    else {
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, status);
        rc = S_OK;
    }
out:
    curl_slist_free_all (headers);
    if (auth) {
        sb_crypto_wipe (auth, auth_len);
        free (auth);
    }
    curl_easy_cleanup (curl);
    return rc;
}

//  ---------------------------------------------------------------------
//  Output

static const char *
s_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value? value: "-";
}

//  A member as text: a string, a number, or "-" (into `buf`).
static const char *
s_text (const json_t *object, const char *key, char *buf, size_t size)
{
    json_t *value = json_object_get (object, key);
    if (json_is_string (value))
        return json_string_value (value);
    if (json_is_integer (value)) {
        snprintf (buf, size, "%lld", (long long) json_integer_value (value));
        return buf;
    }
    if (json_is_boolean (value))
        return json_is_true (value)? "yes": "no";
    return "-";
}

//  "key n, key n…" of an object of counts.
static void
s_print_counts (const json_t *counts)
{
    const char *key;
    json_t *value;
    const char *sep = "";
    json_object_foreach (sb_unconst (counts), key, value) {
        printf ("%s%s %lld", sep, key, (long long) json_integer_value (value));
        sep = ", ";
    }
    printf ("\n");
}

static void
s_print_tenants (const json_t *list)
{
    char users [24];
    printf ("%-32s %-10s %-24s %6s  %s\n", "ID", "PLAN", "CREATED", "USERS", "NAME");
    size_t i;
    json_t *t;
    json_array_foreach (sb_unconst (list), i, t)
        printf ("%-32s %-10s %-24s %6s  %s\n", s_str (t, "id"), s_str (t, "plan"),
                s_str (t, "created_at"), s_text (t, "users", users, sizeof users), s_str (t, "name"));
}

//  A plan limit as text: "unlimited" for 0 (when `zero_unlimited`) or
//  null, else the number (into `buf`).
static const char *
s_limit (const json_t *object, const char *key, bool zero_unlimited, char *buf, size_t size)
{
    json_t *value = json_object_get (object, key);
    if (json_is_null (value) || (zero_unlimited && json_is_integer (value)
                                 && json_integer_value (value) == 0))
        return "unlimited";
    return s_text (object, key, buf, size);
}

static void
s_print_plans (const json_t *list)
{
    char rate [24], burst [24], in_flight [24], monthly [24], weight [24], tenants [24];
    printf ("%-16s %10s %9s %10s %12s %6s %8s  %s\n", "ID", "RATE/MIN", "BURST", "IN_FLIGHT",
            "MONTHLY", "WEIGHT", "TENANTS", "NAME");
    size_t i;
    json_t *p;
    json_array_foreach (sb_unconst (list), i, p)
        printf ("%-16s %10s %9s %10s %12s %6s %8s  %s\n", s_str (p, "id"),
                s_limit (p, "rate_per_min", true, rate, sizeof rate),
                s_text (p, "burst", burst, sizeof burst),
                s_limit (p, "max_in_flight", true, in_flight, sizeof in_flight),
                s_limit (p, "monthly_calls", true, monthly, sizeof monthly),
                s_text (p, "weight", weight, sizeof weight),
                s_text (p, "tenants", tenants, sizeof tenants), s_str (p, "name"));
}

//  "rate 3, monthly 1" of a refusals object, or "none".
static void
s_print_refused (const json_t *refused)
{
    if (json_object_size (refused) == 0)
        printf ("none\n");
    else
        s_print_counts (refused);
}

static void
s_print_usage (const json_t *body)
{
    char a [24], b [24], c [24], d [24], e [24];
    json_t *limits = json_object_get (body, "limits");
    json_t *period = json_object_get (body, "period");
    json_t *month = json_object_get (body, "month");
    json_t *minute = json_object_get (body, "minute");
    printf ("tenant %s, plan %s: rate %s/min (burst %s), %s in flight, %s per period, weight %s\n",
            s_str (body, "tenant"), s_str (body, "plan"),
            s_limit (limits, "rate_per_min", true, a, sizeof a), s_text (limits, "burst", b, sizeof b),
            s_limit (limits, "max_in_flight", true, c, sizeof c),
            s_limit (limits, "monthly_calls", true, d, sizeof d), s_text (limits, "weight", e, sizeof e));
    printf ("period  %s to %s (billing day %s)\n", s_str (period, "start"), s_str (period, "end"),
            s_text (body, "billing_anchor", a, sizeof a));
    printf ("month   %s calls of %s", s_text (month, "calls", a, sizeof a),
            s_limit (month, "allowance", false, b, sizeof b));
    if (json_is_integer (json_object_get (month, "remaining")))
        printf (", %s remaining", s_text (month, "remaining", c, sizeof c));
    printf ("; refused: ");
    s_print_refused (json_object_get (month, "refused"));
    printf ("minute  %s: %s calls; refused: ", s_str (minute, "start"),
            s_text (minute, "calls", a, sizeof a));
    s_print_refused (json_object_get (minute, "refused"));
}

static void
s_print_endpoints (const json_t *list)
{
    printf ("%-28s %-20s %-10s %-7s %-16s %-24s %s\n", "ID", "CONNECTOR", "SCHEME", "ENABLED",
            "KEY", "PREVIOUS_UNTIL", "CREATED");
    size_t i;
    json_t *e;
    char a [24];
    json_array_foreach (sb_unconst (list), i, e)
        printf ("%-28s %-20s %-10s %-7s %-16s %-24s %s\n", s_str (e, "id"), s_str (e, "connector"),
                s_str (e, "scheme"), s_text (e, "enabled", a, sizeof a), s_str (e, "key_id"),
                s_str (e, "previous_until"), s_str (e, "created_at"));
}

static void
s_print_subscriptions (const json_t *list)
{
    printf ("%-28s %-7s %6s %9s %8s %6s %-16s %-20s %s\n", "ID", "ENABLED", "RATE", "IN_FLIGHT",
            "PENDING", "DEAD", "CONNECTOR", "TYPES", "URL");
    size_t i;
    json_t *row;
    char a [24], b [24], c [24], d [24], e [24];
    json_array_foreach (sb_unconst (list), i, row) {
        char *types = sb_json_dump (json_object_get (row, "types"), NULL);
        printf ("%-28s %-7s %6s %9s %8s %6s %-16s %-20s %s\n", s_str (row, "id"),
                s_text (row, "enabled", a, sizeof a), s_text (row, "rate_per_s", b, sizeof b),
                s_text (row, "max_in_flight", c, sizeof c), s_text (row, "pending", d, sizeof d),
                s_text (row, "dead", e, sizeof e), s_str (row, "connector"), types? types: "-",
                s_str (row, "url"));
        if (json_is_string (json_object_get (row, "disabled_at")))
            printf ("    disabled at %s: %s\n", s_str (row, "disabled_at"),
                    s_str (row, "disabled_reason"));
        free (types);
    }
}

static void
s_print_deliveries (const json_t *list)
{
    printf ("%-10s %-28s %-10s %-24s %-8s %8s %6s %-24s %s\n", "ID", "SUBSCRIPTION", "EVENT",
            "TYPE", "STATE", "ATTEMPTS", "LAST", "FINISHED", "LAST_ERROR");
    size_t i;
    json_t *row;
    char a [24], b [24], c [24], d [24];
    json_array_foreach (sb_unconst (list), i, row)
        printf ("%-10s %-28s %-10s %-24s %-8s %8s %6s %-24s %s\n", s_text (row, "id", a, sizeof a),
                s_str (row, "subscription"), s_text (row, "event", b, sizeof b),
                s_str (row, "type"), s_str (row, "state"), s_text (row, "attempts", c, sizeof c),
                s_text (row, "last_status", d, sizeof d), s_str (row, "finished_at"),
                s_str (row, "last_error"));
}

//  The answers of `webhooks …` commands. Returns false for another command.
static bool
s_print_webhooks (const char *cmd, const json_t *body)
{
    char a [24], b [24];
    size_t i;
    json_t *row;
    json_t *endpoint = json_object_get (body, "endpoint");
    json_t *subscription = json_object_get (body, "subscription");
    if (strcmp (cmd, "webhooks endpoint list") == 0)
        s_print_endpoints (json_object_get (body, "endpoints"));
    else
    if (strcmp (cmd, "webhooks endpoint create") == 0 || strcmp (cmd, "webhooks endpoint show") == 0
    ||  strcmp (cmd, "webhooks endpoint disable") == 0
    ||  strcmp (cmd, "webhooks endpoint enable") == 0) {
        json_t *one = json_array ();
        json_array_append (one, endpoint);
        s_print_endpoints (one);
        json_decref (one);
        printf ("path: %s\n", s_str (endpoint, "path"));
        if (json_is_integer (json_object_get (endpoint, "events")))
            printf ("events: %s\n", s_text (endpoint, "events", a, sizeof a));
    }
    else
    if (strcmp (cmd, "webhooks endpoint rotate") == 0) {
        printf ("endpoint %s: new secret sealed under data key %s; ", s_str (endpoint, "id"),
                s_str (endpoint, "key_id"));
        if (json_is_string (json_object_get (endpoint, "previous_until")))
            printf ("the previous one verifies too until %s\n", s_str (endpoint, "previous_until"));
        else
            printf ("the previous one no longer verifies\n");
    }
    else
    if (strcmp (cmd, "webhooks endpoint delete") == 0)
        printf ("endpoint %s of tenant %s deleted, with its %s events\n", s_str (body, "endpoint"),
                s_str (body, "tenant"), s_text (body, "events", a, sizeof a));
    else
    if (strcmp (cmd, "webhooks subscribe") == 0 || strcmp (cmd, "webhooks subscription enable") == 0) {
        json_t *one = json_array ();
        json_array_append (one, subscription);
        s_print_subscriptions (one);
        json_decref (one);
    }
    else
    if (strcmp (cmd, "webhooks subscriptions") == 0)
        s_print_subscriptions (json_object_get (body, "subscriptions"));
    else
    if (strcmp (cmd, "webhooks unsubscribe") == 0)
        printf ("subscription %s of tenant %s deleted\n", s_str (body, "subscription"),
                s_str (body, "tenant"));
    else
    if (strcmp (cmd, "webhooks dead") == 0) {
        s_print_deliveries (json_object_get (body, "deliveries"));
        if (json_is_integer (json_object_get (body, "next_before")))
            printf ("(more: --before %s)\n", s_text (body, "next_before", a, sizeof a));
    }
    else
    if (strcmp (cmd, "webhooks replay") == 0) {
        json_t *delivery = json_object_get (body, "delivery");
        if (delivery)
            printf ("delivery %s is pending again (%s attempts so far)\n",
                    s_text (delivery, "id", a, sizeof a), s_text (delivery, "attempts", b, sizeof b));
        else
            printf ("tenant %s: %s dead letters pending again, %s still dead\n",
                    s_str (body, "tenant"), s_text (body, "replayed", a, sizeof a),
                    s_text (body, "remaining", b, sizeof b));
    }
    else
    if (strcmp (cmd, "webhooks events") == 0) {
        printf ("%-10s %-20s %-28s %-24s %8s %-24s %s\n", "ID", "CONNECTOR", "ENDPOINT", "TYPE",
                "BYTES", "RECEIVED", "KEY");
        json_array_foreach (json_object_get (body, "events"), i, row)
            printf ("%-10s %-20s %-28s %-24s %8s %-24s %s\n", s_text (row, "id", a, sizeof a),
                    s_str (row, "connector"), s_str (row, "endpoint"), s_str (row, "type"),
                    s_text (row, "bytes", b, sizeof b), s_str (row, "received_at"),
                    s_str (row, "key"));
        if (json_is_integer (json_object_get (body, "next_before")))
            printf ("(more: --before %s)\n", s_text (body, "next_before", a, sizeof a));
    }
    else
    if (strcmp (cmd, "webhooks attempts") == 0) {
        json_t *one = json_array ();
        json_array_append (one, json_object_get (body, "delivery"));
        s_print_deliveries (one);
        json_decref (one);
        printf ("%-24s %6s %10s  %-32s %s\n", "AT", "STATUS", "LATENCY_MS", "ERROR", "EXCERPT");
        json_array_foreach (json_object_get (body, "attempts"), i, row)
            printf ("%-24s %6s %10s  %-32s %.80s\n", s_str (row, "at"),
                    s_text (row, "status", a, sizeof a), s_text (row, "latency_ms", b, sizeof b),
                    s_str (row, "error"), s_str (row, "excerpt"));
    }
    else
        return false;
    //  A secret made by the server is in this one answer only.
    if (json_is_string (json_object_get (body, "secret")))
        printf ("secret: %s\n(generated; shown once: the server keeps it sealed and never shows "
                "it again)\n", s_str (body, "secret"));
    return true;
}

//  Prints the answer of a command that succeeded (`cmd` "tenant list"…).
static void
s_print (const char *cmd, const json_t *body)
{
    char a [24], b [24], c [24];
    size_t i;
    json_t *row;
    if (s_print_webhooks (cmd, body))
        ;                       //  printed there
    else
    if (strcmp (cmd, "tenant list") == 0)
        s_print_tenants (json_object_get (body, "tenants"));
    else
    if (strcmp (cmd, "tenant create") == 0 || strcmp (cmd, "tenant show") == 0
    ||  strcmp (cmd, "tenant plan") == 0) {
        json_t *tenant = json_object_get (body, "tenant");
        json_t *one = json_array ();
        json_array_append (one, tenant);
        s_print_tenants (one);
        json_decref (one);
        if (json_object_get (tenant, "active_refresh_families"))
            printf ("grants %s, active refresh token families %s\n",
                    s_text (tenant, "oauth_grants", a, sizeof a),
                    s_text (tenant, "active_refresh_families", b, sizeof b));
    }
    else
    if (strcmp (cmd, "tenant delete") == 0) {
        printf ("tenant %s deleted: ", s_str (body, "tenant"));
        s_print_counts (json_object_get (body, "deleted"));
    }
    else
    if (strcmp (cmd, "plan list") == 0)
        s_print_plans (json_object_get (body, "plans"));
    else
    if (strcmp (cmd, "plan show") == 0 || strcmp (cmd, "plan create") == 0
    ||  strcmp (cmd, "plan set") == 0) {
        json_t *one = json_array ();
        json_array_append (one, json_object_get (body, "plan"));
        s_print_plans (one);
        json_decref (one);
        if (json_is_false (json_object_get (body, "changed")))
            printf ("(unchanged)\n");
    }
    else
    if (strcmp (cmd, "tenant anchor") == 0) {
        json_t *tenant = json_object_get (body, "tenant");
        printf ("tenant %s: billing day %s of each month (00:00 UTC)%s\n", s_str (tenant, "id"),
                s_text (tenant, "billing_anchor", a, sizeof a),
                json_is_false (json_object_get (body, "changed"))? ", unchanged": "");
    }
    else
    if (strcmp (cmd, "usage") == 0)
        s_print_usage (body);
    else
    if (strcmp (cmd, "user list") == 0 || strcmp (cmd, "user add") == 0) {
        json_t *list = json_object_get (body, "users");
        json_t *one = NULL;
        if (!list) {
            one = list = json_array ();
            json_array_append (list, json_object_get (body, "user"));
        }
        printf ("%-10s %-40s %-24s %-24s %s\n", "ID", "EMAIL", "CREATED", "DISABLED", "ACTIVE_TOKENS");
        json_array_foreach (list, i, row)
            printf ("%-10s %-40s %-24s %-24s %s\n", s_text (row, "id", a, sizeof a), s_str (row, "email"),
                    s_str (row, "created_at"), s_str (row, "disabled_at"),
                    s_text (row, "active_refresh_families", b, sizeof b));
        json_decref (one);
    }
    else
    if (strcmp (cmd, "user remove") == 0) {
        printf ("user %s removed from tenant %s: ", s_text (body, "user_id", a, sizeof a),
                s_str (body, "tenant"));
        s_print_counts (json_object_get (body, "deleted"));
    }
    else
    if (strcmp (cmd, "user password") == 0)
        printf ("password of user %s reset; %s refresh token families revoked, %s codes deleted\n",
                s_text (body, "user_id", a, sizeof a),
                s_text (body, "refresh_families_revoked", b, sizeof b),
                s_text (body, "codes_deleted", c, sizeof c));
    else
    if (strcmp (cmd, "client list") == 0) {
        printf ("%-48s %-18s %6s  %-24s %s\n", "CLIENT_ID", "KIND", "GRANTS", "REVOKED", "NAME");
        json_array_foreach (json_object_get (body, "clients"), i, row)
            printf ("%-48s %-18s %6s  %-24s %s\n", s_str (row, "client_id"), s_str (row, "kind"),
                    s_text (row, "grants", a, sizeof a), s_str (row, "revoked_at"),
                    s_str (row, "client_name"));
    }
    else
    if (strcmp (cmd, "client revoke") == 0) {
        printf ("client %s revoked at %s: ", s_str (body, "client_id"), s_str (body, "revoked_at"));
        s_print_counts (json_object_get (body, "deleted"));
    }
    else
    if (strcmp (cmd, "tokens revoke") == 0)
        printf ("%s refresh token families revoked in tenant %s\n",
                s_text (body, "refresh_families_revoked", a, sizeof a), s_str (body, "tenant"));
    else
    if (strcmp (cmd, "audit") == 0) {
        printf ("%-10s %-24s %-24s %-10s %-18s %s\n", "ID", "AT", "TENANT", "ACTOR", "ACTION", "DETAIL");
        json_array_foreach (json_object_get (body, "entries"), i, row) {
            char *detail = sb_json_dump (json_object_get (row, "detail"), NULL);
            printf ("%-10s %-24s %-24s %-10s %-18s %s\n", s_text (row, "id", a, sizeof a),
                    s_str (row, "at"), s_str (row, "tenant"), s_str (row, "actor"),
                    s_str (row, "action"), detail? detail: "-");
            free (detail);
        }
        if (json_is_integer (json_object_get (body, "next_before")))
            printf ("(more: --before %s)\n", s_text (body, "next_before", a, sizeof a));
    }
    else
    if (strcmp (cmd, "connections list") == 0) {
        printf ("%-24s %-8s %-10s %7s  %-16s %-24s %-24s %s\n", "CONNECTOR", "KIND", "STATUS",
                "VERSION", "KEY", "EXPIRES", "UPDATED", "DETAIL");
        json_array_foreach (json_object_get (body, "connections"), i, row)
            printf ("%-24s %-8s %-10s %7s  %-16s %-24s %-24s %s\n", s_str (row, "connector"),
                    s_str (row, "kind"), s_str (row, "status"), s_text (row, "version", a, sizeof a),
                    s_str (row, "key_id"), s_str (row, "expires_at"), s_str (row, "updated_at"),
                    s_str (row, "status_detail"));
    }
    else
    if (strcmp (cmd, "connections add-key") == 0) {
        json_t *connection = json_object_get (body, "connection");
        printf ("tenant %s: the API key of %s is stored (version %s, sealed under data key %s)\n",
                s_str (body, "tenant"), s_str (connection, "connector"),
                s_text (connection, "version", a, sizeof a), s_str (connection, "key_id"));
    }
    else
    if (strcmp (cmd, "connections delete") == 0)
        printf ("tenant %s: connection to %s deleted\n", s_str (body, "tenant"),
                s_str (body, "connector"));
    else
    if (strcmp (cmd, "connection-keys list") == 0) {
        char d [24], e [24];
        printf ("%-16s %-7s %-24s %-24s %11s %13s %17s %21s\n", "ID", "CURRENT", "CREATED",
                "RETIRED", "CONNECTIONS", "CONNECT_FLOWS", "WEBHOOK_ENDPOINTS",
                "WEBHOOK_SUBSCRIPTIONS");
        json_array_foreach (json_object_get (body, "keys"), i, row)
            printf ("%-16s %-7s %-24s %-24s %11s %13s %17s %21s\n", s_str (row, "id"),
                    s_text (row, "current", a, sizeof a), s_str (row, "created_at"),
                    s_str (row, "retired_at"), s_text (row, "connections", b, sizeof b),
                    s_text (row, "connect_flows", c, sizeof c),
                    s_text (row, "webhook_endpoints", d, sizeof d),
                    s_text (row, "webhook_subscriptions", e, sizeof e));
    }
    else
    if (strcmp (cmd, "connection-keys rotate") == 0)
        printf ("data key %s is current (was %s)\n", s_str (body, "current"),
                s_str (body, "previous"));
    else {
        char *text = json_dumps (body, JSON_INDENT (2));
        printf ("%s\n", text? text: "");
        free (text);
    }
    if (json_is_true (json_object_get (body, "more")))
        printf ("(more rows than one answer holds)\n");
}

//  ---------------------------------------------------------------------
//  Commands

//  A password: the first line of --password-file, or a generated one
//  (*generated set). New string (sb_secret_free), or NULL after saying why.
static char *
s_password (const s_cli_t *cli, bool *generated)
{
    *generated = false;
    if (cli->password_file) {
        char *why = NULL;
        char *password = sb_secret_read_file (cli->password_file, &why);
        if (!password) {
            fprintf (stderr, "sb-admin: --password-file: %s\n", why? why: "out of memory");
            free (why);
        }
        return password;
    }
    uint8_t bytes [SB_ADMIN_PASSWORD_BYTES];
    if (sb_crypto_random (bytes, sizeof bytes)) {
        fprintf (stderr, "sb-admin: no randomness for a password\n");
        return NULL;
    }
    char *password = sb_base64url_encode (bytes, sizeof bytes);
    sb_crypto_wipe (bytes, sizeof bytes);
    *generated = password != NULL;
    return password;
}

//  An API key: the first line of --key-file, else of stdin (one line, at
//  most SB_ADMIN_MAX_API_KEY bytes, without its line end). New string
//  (sb_secret_free), or NULL after saying why. Never from an argument: a
//  command line is seen by every user of the machine (ps, /proc).
static char *
s_api_key (const s_cli_t *cli)
{
    FILE *file = stdin;
    const char *from = "stdin";
    if (cli->api_key_file) {
        file = fopen (cli->api_key_file, "r");
        from = "--key-file";
        if (!file) {
            fprintf (stderr, "sb-admin: --key-file %s: %s\n", cli->api_key_file, strerror (errno));
            return NULL;
        }
    }
    size_t size = SB_ADMIN_MAX_API_KEY + 3;         //  the key, CR LF, NUL
    char *key = calloc (1, size);
    bool read = key && fgets (key, (int) size, file) != NULL;
    if (file != stdin)
        fclose (file);
    if (!key) {
        fprintf (stderr, "sb-admin: out of memory\n");
        return NULL;
    }
    size_t len = read? strcspn (key, "\r\n"): 0;
    const char *why = NULL;
    if (!read || len == 0)
        why = "no API key (its first line is empty)";
    else
    if (len > SB_ADMIN_MAX_API_KEY)
        why = "the API key is longer than 16384 bytes";
    if (why) {
        fprintf (stderr, "sb-admin: %s: %s\n", from, why);
        sb_secret_free (&key);
        return NULL;
    }
    key [len] = 0;
    return key;
}

//  What one command sends: method, URL, body; filled by s_command.
typedef struct {
    char cmd [32];              /* "tenant create"… */
    const char *method;
    char url [SB_ADMIN_MAX_URL];
    json_t *body;               /* NULL: no body */
    char *password;             /* sb_secret_free; printed once when generated */
    char *api_key;              /* sb_secret_free; never printed */
    char *secret;               /* a webhook secret from --secret-file: sb_secret_free; never printed */
    bool generated;             /* the password was generated here */
} s_call_t;

//  The options of a plan's limits, as s_expect_args takes them.
#define S_LIMIT_OPTIONS "rate burst in-flight monthly weight"

//  Checks the argument count and the options a command takes.
static int
s_expect_args (const s_cli_t *cli, int min, int max, const char *options, const char *usage)
{
    if (cli->count - 2 < min || cli->count - 2 > max)
        return s_usage_error ("usage: sb-admin %s", usage);
    const struct { const char *name; const char *value; } given [] = {
        { "plan", cli->plan }, { "password-file", cli->password_file }, { "user", cli->user },
        { "limit", cli->limit }, { "before", cli->before }, { "key-file", cli->api_key_file },
        { "rate", cli->rate }, { "burst", cli->burst }, { "in-flight", cli->in_flight },
        { "monthly", cli->monthly }, { "weight", cli->weight }, { "scheme", cli->scheme },
        { "secret-file", cli->secret_file }, { "overlap-s", cli->overlap_s },
        { "types", cli->types }, { "connector", cli->connector }, { "all", cli->all },
        { "option", cli->option_count? "": NULL },
    };
    for (size_t k = 0; k < sizeof given / sizeof given [0]; k++)
        if (given [k].value && !strstr (options, given [k].name))
            return s_usage_error ("this command takes no --%s", given [k].name);
    return 0;
}

//  A positive whole number argument, as text; S_USAGE when not.
static int
s_number_arg (const char *what, const char *text)
{
    bool ok = text && *text >= '1' && *text <= '9' && strlen (text) <= 18;
    for (const char *c = text; ok && *c; c++)
        ok = *c >= '0' && *c <= '9';
    return ok? 0: s_usage_error ("%s must be a positive whole number", what);
}

//  The plan limits given as options, as members of `body` (a limit's
//  range is the server's to check: its refusal names it). Returns 0, or
//  S_USAGE having said which option is not a whole number.
static int
s_plan_limits (const s_cli_t *cli, json_t *body)
{
    const struct { const char *option; const char *key; const char *value; } limits [] = {
        { "--rate", "rate_per_min", cli->rate }, { "--burst", "burst", cli->burst },
        { "--in-flight", "max_in_flight", cli->in_flight },
        { "--monthly", "monthly_calls", cli->monthly }, { "--weight", "weight", cli->weight },
    };
    for (size_t k = 0; k < sizeof limits / sizeof limits [0]; k++) {
        const char *text = limits [k].value;
        if (!text)
            continue;
        if (text == cli->monthly && strcmp (text, "unlimited") == 0) {
            json_object_set_new (body, limits [k].key, json_null ());
            continue;
        }
        bool ok = *text && strlen (text) <= SB_ADMIN_MAX_DIGITS;
        for (const char *c = text; ok && *c; c++)
            ok = *c >= '0' && *c <= '9';
        if (!ok)
            return s_usage_error ("%s must be a whole number (0 = unlimited)%s", limits [k].option,
                                  text == cli->monthly? " or \"unlimited\"": "");
        json_object_set_new (body, limits [k].key, json_integer (strtoll (text, NULL, 10)));
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  webhooks …

//  Checks that the arguments from index `first` on number min..max and
//  that only `options` are given (as s_expect_args).
static int
s_wh_args (const s_cli_t *cli, int first, int min, int max, const char *options,
           const char *usage)
{
    int count = cli->count - first;
    if (count < min || count > max)
        return s_usage_error ("usage: sb-admin webhooks %s", usage);
    s_cli_t copy = *cli;
    copy.count = 2 + min;                   //  s_expect_args: the options only
    return s_expect_args (&copy, min, min, options, usage);
}

//  --option K=V… as a JSON object (a value of digits is a number).
static json_t *
s_wh_options (const s_cli_t *cli)
{
    json_t *options = json_object ();
    for (int i = 0; options && i < cli->option_count; i++) {
        const char *text = cli->options [i];
        const char *equals = strchr (text, '=');
        if (!equals || equals == text) {
            s_usage_error ("--option %s: write it K=V", text);
            json_decref (options);
            return NULL;
        }
        char key [64];
        snprintf (key, sizeof key, "%.*s", (int) (equals - text), text);
        const char *value = equals + 1;
        bool number = *value && strlen (value) <= SB_ADMIN_MAX_DIGITS;
        for (const char *c = value; number && *c; c++)
            number = *c >= '0' && *c <= '9';
        json_object_set_new (options, key, number? json_integer (strtoll (value, NULL, 10))
                                                 : json_string (value));
    }
    return options;
}

//  --types a,b* as a JSON array.
static json_t *
s_wh_types (const char *text)
{
    json_t *types = json_array ();
    const char *p = text;
    while (types && *p) {
        size_t len = strcspn (p, ",");
        if (len)
            json_array_append_new (types, json_stringn (p, len));
        p += len + (p [len] == ','? 1: 0);
    }
    return types;
}

//  The webhook secret of --secret-file (its first line). S_USAGE when it
//  cannot be read.
static int
s_wh_secret (const s_cli_t *cli, s_call_t *call)
{
    if (!cli->secret_file)
        return 0;
    char *why = NULL;
    call->secret = sb_secret_read_file (cli->secret_file, &why);
    if (call->secret)
        return 0;
    fprintf (stderr, "sb-admin: --secret-file: %s\n", why? why: "out of memory");
    free (why);
    return S_USAGE;
}

//  Appends "<a>/<escaped b>[/<c>]" to `url`.
static int
s_wh_path (char *url, size_t size, const char *a, const char *b, const char *c)
{
    int rc = s_append (url, size, a);
    rc = rc? rc: s_append (url, size, "/");
    rc = rc? rc: s_append_escaped (url, size, b);
    if (c) {
        rc = rc? rc: s_append (url, size, "/");
        rc = rc? rc: s_append (url, size, c);
    }
    return rc;
}

//  Appends "<sep>name=<escaped value>" when value is set; *sep becomes "&".
static int
s_wh_param (char *url, size_t size, const char **sep, const char *name, const char *value)
{
    if (!value)
        return 0;
    int rc = s_append (url, size, *sep);
    rc = rc? rc: s_append (url, size, name);
    rc = rc? rc: s_append (url, size, "=");
    rc = rc? rc: s_append_escaped (url, size, value);
    *sep = "&";
    return rc;
}

//  Builds the request of a `webhooks …` command. Returns 0 or S_USAGE.
static int
s_webhooks (const s_cli_t *cli, s_call_t *call, char *url, size_t size)
{
    const char *verb = cli->count > 1? cli->args [1]: "";
    const char *sub = cli->count > 2? cli->args [2]: "";
    int rc = 0;
    if (strcmp (verb, "endpoint") == 0) {
        const char *a1 = cli->count > 3? cli->args [3]: NULL;
        const char *a2 = cli->count > 4? cli->args [4]: NULL;
        snprintf (call->cmd, sizeof call->cmd, "webhooks endpoint %s", sub);
        if (strcmp (sub, "create") == 0) {
            static const char usage [] = "endpoint create TENANT CONNECTOR --scheme S "
                                         "[--secret-file F] [--option K=V]...";
            if ((rc = s_wh_args (cli, 3, 2, 2, "scheme secret-file option", usage)))
                return rc;
            if (!cli->scheme)
                return s_usage_error ("usage: sb-admin webhooks %s (--scheme is required)", usage);
            json_t *options = s_wh_options (cli);
            if (!options || s_wh_secret (cli, call)) {
                json_decref (options);
                return S_USAGE;
            }
            call->method = "POST";
            call->body = json_pack ("{s:s, s:s, s:o}", "connector", a2, "scheme", cli->scheme,
                                    "options", options);
            if (call->secret)
                json_object_set_new (call->body, "secret", json_string (call->secret));
            rc = s_wh_path (url, size, "tenants", a1, "webhooks");
        }
        else
        if (strcmp (sub, "list") == 0) {
            if ((rc = s_wh_args (cli, 3, 1, 1, "", "endpoint list TENANT")))
                return rc;
            call->method = "GET";
            rc = s_wh_path (url, size, "tenants", a1, "webhooks");
        }
        else
        if (strcmp (sub, "show") == 0 || strcmp (sub, "delete") == 0) {
            if ((rc = s_wh_args (cli, 3, 1, 1, "", strcmp (sub, "show") == 0? "endpoint show ID"
                                                                           : "endpoint delete ID")))
                return rc;
            call->method = strcmp (sub, "show") == 0? "GET": "DELETE";
            rc = s_wh_path (url, size, "webhooks", a1, NULL);
        }
        else
        if (strcmp (sub, "rotate") == 0) {
            if ((rc = s_wh_args (cli, 3, 1, 1, "secret-file overlap-s",
                                 "endpoint rotate ID [--secret-file F] [--overlap-s N]")))
                return rc;
            bool zero = cli->overlap_s && strcmp (cli->overlap_s, "0") == 0;
            if (cli->overlap_s && !zero && s_number_arg ("--overlap-s", cli->overlap_s))
                return S_USAGE;
            if (s_wh_secret (cli, call))
                return S_USAGE;
            call->method = "POST";
            call->body = json_object ();
            if (cli->overlap_s)
                json_object_set_new (call->body, "overlap_s",
                                     json_integer (strtoll (cli->overlap_s, NULL, 10)));
            if (call->secret)
                json_object_set_new (call->body, "secret", json_string (call->secret));
            rc = s_wh_path (url, size, "webhooks", a1, "rotate");
        }
        else
        if (strcmp (sub, "disable") == 0 || strcmp (sub, "enable") == 0) {
            if ((rc = s_wh_args (cli, 3, 1, 1, "", "endpoint disable|enable ID")))
                return rc;
            call->method = "POST";
            rc = s_wh_path (url, size, "webhooks", a1, sub);
        }
        else
            return s_usage_error ("unknown command \"webhooks endpoint %s\"", sub);
        return rc? s_usage_error ("%s", "the request URL is too long"): 0;
    }
    const char *a1 = cli->count > 2? cli->args [2]: NULL;
    const char *a2 = cli->count > 3? cli->args [3]: NULL;
    snprintf (call->cmd, sizeof call->cmd, "webhooks %s", verb);
    if (strcmp (verb, "subscribe") == 0) {
        if ((rc = s_wh_args (cli, 2, 2, 2, "types connector rate in-flight",
                             "subscribe TENANT URL [--types a,b*] [--connector C] [--rate N] "
                             "[--in-flight N]")))
            return rc;
        if ((cli->rate && s_number_arg ("--rate", cli->rate))
        ||  (cli->in_flight && s_number_arg ("--in-flight", cli->in_flight)))
            return S_USAGE;
        call->method = "POST";
        call->body = json_pack ("{s:s}", "url", a2);
        if (cli->types)
            json_object_set_new (call->body, "types", s_wh_types (cli->types));
        if (cli->connector)
            json_object_set_new (call->body, "connector", json_string (cli->connector));
        if (cli->rate)
            json_object_set_new (call->body, "rate_per_s", json_integer (strtoll (cli->rate, NULL, 10)));
        if (cli->in_flight)
            json_object_set_new (call->body, "max_in_flight",
                                 json_integer (strtoll (cli->in_flight, NULL, 10)));
        rc = s_wh_path (url, size, "tenants", a1, "subscriptions");
    }
    else
    if (strcmp (verb, "subscriptions") == 0) {
        if ((rc = s_wh_args (cli, 2, 1, 1, "", "subscriptions TENANT")))
            return rc;
        call->method = "GET";
        rc = s_wh_path (url, size, "tenants", a1, "subscriptions");
    }
    else
    if (strcmp (verb, "unsubscribe") == 0) {
        if ((rc = s_wh_args (cli, 2, 1, 1, "", "unsubscribe ID")))
            return rc;
        call->method = "DELETE";
        rc = s_wh_path (url, size, "subscriptions", a1, NULL);
    }
    else
    if (strcmp (verb, "subscription") == 0) {
        snprintf (call->cmd, sizeof call->cmd, "webhooks subscription %s", sub);
        if (strcmp (sub, "enable") != 0)
            return s_usage_error ("%s", "usage: sb-admin webhooks subscription enable ID");
        if ((rc = s_wh_args (cli, 3, 1, 1, "", "subscription enable ID")))
            return rc;
        call->method = "POST";
        rc = s_wh_path (url, size, "subscriptions", cli->args [3], "enable");
    }
    else
    if (strcmp (verb, "dead") == 0 || strcmp (verb, "events") == 0) {
        bool dead = strcmp (verb, "dead") == 0;
        if ((rc = s_wh_args (cli, 2, 1, 1, dead? "limit before": "connector limit before",
                             dead? "dead TENANT [--limit N] [--before ID]"
                                 : "events TENANT [--connector C] [--limit N] [--before ID]")))
            return rc;
        if ((cli->limit && s_number_arg ("--limit", cli->limit))
        ||  (cli->before && s_number_arg ("--before", cli->before)))
            return S_USAGE;
        call->method = "GET";
        rc = s_wh_path (url, size, "tenants", a1, dead? "dead-letters": "events");
        const char *sep = "?";
        rc = rc? rc: s_wh_param (url, size, &sep, "connector", cli->connector);
        rc = rc? rc: s_wh_param (url, size, &sep, "limit", cli->limit);
        rc = rc? rc: s_wh_param (url, size, &sep, "before", cli->before);
    }
    else
    if (strcmp (verb, "replay") == 0) {
        if (cli->all) {
            if ((rc = s_wh_args (cli, 2, 0, 0, "all limit", "replay --all TENANT [--limit N]")))
                return rc;
            if (cli->limit && s_number_arg ("--limit", cli->limit))
                return S_USAGE;
            const char *sep = "?";
            rc = s_wh_path (url, size, "tenants", cli->all, "dead-letters/replay");
            rc = rc? rc: s_wh_param (url, size, &sep, "limit", cli->limit);
        }
        else {
            if ((rc = s_wh_args (cli, 2, 1, 1, "", "replay DELIVERY_ID | --all TENANT")))
                return rc;
            if (s_number_arg ("DELIVERY_ID", a1))
                return S_USAGE;
            rc = s_wh_path (url, size, "deliveries", a1, "replay");
        }
        call->method = "POST";
    }
    else
    if (strcmp (verb, "attempts") == 0) {
        if ((rc = s_wh_args (cli, 2, 1, 1, "", "attempts DELIVERY_ID")))
            return rc;
        if (s_number_arg ("DELIVERY_ID", a1))
            return S_USAGE;
        call->method = "GET";
        rc = s_wh_path (url, size, "deliveries", a1, "attempts");
    }
    else
        return s_usage_error ("unknown command \"webhooks %s\"", verb);
    (void) a2;
    return rc? s_usage_error ("%s", "the request URL is too long"): 0;
}

//  Builds the request of the command in `cli`. Returns 0 or S_USAGE.
static int
s_command (const s_cli_t *cli, s_call_t *call)
{
    if (cli->count < 1)
        return s_usage_error ("%s", "a command is needed");
    const char *noun = cli->args [0];
    const char *verb = cli->count > 1? cli->args [1]: "";
    const char *a1 = cli->count > 2? cli->args [2]: NULL;
    const char *a2 = cli->count > 3? cli->args [3]: NULL;
    int rc = 0;
    char *url = call->url;
    size_t size = sizeof call->url;
    if (s_append (url, size, cli->url) || s_append (url, size, "/admin/"))
        return s_usage_error ("%s", "--url is too long");
    snprintf (call->cmd, sizeof call->cmd, "%s %s", noun, verb);
    if (strcmp (noun, "webhooks") == 0)
        return s_webhooks (cli, call, url, size);
    if (strcmp (noun, "usage") == 0) {
        snprintf (call->cmd, sizeof call->cmd, "usage");
        if ((rc = s_expect_args (cli, 0, 0, "", "usage TENANT")))
            return rc;
        call->method = "GET";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, cli->args [1]);
        rc = rc? rc: s_append (url, size, "/usage");
    }
    else
    if (strcmp (noun, "audit") == 0) {
        snprintf (call->cmd, sizeof call->cmd, "audit");
        if ((rc = s_expect_args (cli, -1, 0, "limit before", "audit [TENANT] [--limit N] [--before ID]")))
            return rc;
        if ((cli->limit && s_number_arg ("--limit", cli->limit))
        ||  (cli->before && s_number_arg ("--before", cli->before)))
            return S_USAGE;
        call->method = "GET";
        rc = s_append (url, size, "audit?");
        const char *sep = "";
        if (cli->count == 2) {
            rc = rc? rc: s_append (url, size, "tenant=");
            rc = rc? rc: s_append_escaped (url, size, cli->args [1]);
            sep = "&";
        }
        if (cli->limit) {
            rc = rc? rc: s_append (url, size, sep);
            rc = rc? rc: s_append (url, size, "limit=");
            rc = rc? rc: s_append (url, size, cli->limit);
            sep = "&";
        }
        if (cli->before) {
            rc = rc? rc: s_append (url, size, sep);
            rc = rc? rc: s_append (url, size, "before=");
            rc = rc? rc: s_append (url, size, cli->before);
        }
    }
    else
    if (strcmp (call->cmd, "tenant create") == 0) {
        if ((rc = s_expect_args (cli, 2, 2, "plan", "tenant create ID NAME [--plan PLAN]")))
            return rc;
        call->method = "POST";
        rc = s_append (url, size, "tenants");
        call->body = json_pack ("{s:s, s:s}", "id", a1, "name", a2);
        if (cli->plan)
            json_object_set_new (call->body, "plan", json_string (cli->plan));
    }
    else
    if (strcmp (call->cmd, "tenant list") == 0) {
        if ((rc = s_expect_args (cli, 0, 0, "", "tenant list")))
            return rc;
        call->method = "GET";
        rc = s_append (url, size, "tenants");
    }
    else
    if (strcmp (call->cmd, "tenant show") == 0 || strcmp (call->cmd, "tenant delete") == 0) {
        if ((rc = s_expect_args (cli, 1, 1, "", strcmp (verb, "show")? "tenant delete ID": "tenant show ID")))
            return rc;
        call->method = strcmp (verb, "show") == 0? "GET": "DELETE";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
    }
    else
    if (strcmp (call->cmd, "tenant plan") == 0) {
        if ((rc = s_expect_args (cli, 2, 2, "", "tenant plan ID PLAN")))
            return rc;
        call->method = "PUT";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/plan");
        call->body = json_pack ("{s:s}", "plan", a2);
    }
    else
    if (strcmp (call->cmd, "plan list") == 0) {
        if ((rc = s_expect_args (cli, 0, 0, "", "plan list")))
            return rc;
        call->method = "GET";
        rc = s_append (url, size, "plans");
    }
    else
    if (strcmp (call->cmd, "plan show") == 0) {
        if ((rc = s_expect_args (cli, 1, 1, "", "plan show ID")))
            return rc;
        call->method = "GET";
        rc = s_append (url, size, "plans/");
        rc = rc? rc: s_append_escaped (url, size, a1);
    }
    else
    if (strcmp (call->cmd, "plan create") == 0) {
        if ((rc = s_expect_args (cli, 2, 2, S_LIMIT_OPTIONS, "plan create ID NAME [--rate N] "
                                 "[--burst N] [--in-flight N] [--monthly N|unlimited] [--weight N]")))
            return rc;
        call->method = "POST";
        rc = s_append (url, size, "plans");
        call->body = json_pack ("{s:s, s:s}", "id", a1, "name", a2);
        if (s_plan_limits (cli, call->body))
            return S_USAGE;
    }
    else
    if (strcmp (call->cmd, "plan set") == 0) {
        static const char usage [] = "plan set ID [--rate N] [--burst N] [--in-flight N] "
                                     "[--monthly N|unlimited] [--weight N] (at least one)";
        if ((rc = s_expect_args (cli, 1, 1, S_LIMIT_OPTIONS, usage)))
            return rc;
        call->method = "PUT";
        rc = s_append (url, size, "plans/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        call->body = json_object ();
        if (s_plan_limits (cli, call->body))
            return S_USAGE;
        if (json_object_size (call->body) == 0)
            return s_usage_error ("usage: sb-admin %s", usage);
    }
    else
    if (strcmp (call->cmd, "tenant anchor") == 0) {
        if ((rc = s_expect_args (cli, 2, 2, "", "tenant anchor ID DAY")))
            return rc;
        if (s_number_arg ("DAY", a2))
            return S_USAGE;
        call->method = "PUT";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/billing-anchor");
        call->body = json_pack ("{s:I}", "day", (json_int_t) strtoll (a2, NULL, 10));
    }
    else
    if (strcmp (call->cmd, "user add") == 0 || strcmp (call->cmd, "user password") == 0) {
        bool add = strcmp (verb, "add") == 0;
        if ((rc = s_expect_args (cli, 2, 2, "password-file",
                                 add? "user add TENANT EMAIL [--password-file FILE]"
                                    : "user password TENANT USER_ID [--password-file FILE]")))
            return rc;
        if (!add && s_number_arg ("USER_ID", a2))
            return S_USAGE;
        call->password = s_password (cli, &call->generated);
        if (!call->password)
            return S_USAGE;
        call->method = add? "POST": "PUT";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/users");
        if (!add) {
            rc = rc? rc: s_append (url, size, "/");
            rc = rc? rc: s_append (url, size, a2);
            rc = rc? rc: s_append (url, size, "/password");
        }
        call->body = add? json_pack ("{s:s, s:s}", "email", a2, "password", call->password)
                        : json_pack ("{s:s}", "password", call->password);
    }
    else
    if (strcmp (call->cmd, "user list") == 0) {
        if ((rc = s_expect_args (cli, 1, 1, "", "user list TENANT")))
            return rc;
        call->method = "GET";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/users");
    }
    else
    if (strcmp (call->cmd, "user remove") == 0) {
        if ((rc = s_expect_args (cli, 2, 2, "", "user remove TENANT USER_ID")))
            return rc;
        if (s_number_arg ("USER_ID", a2))
            return S_USAGE;
        call->method = "DELETE";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/users/");
        rc = rc? rc: s_append (url, size, a2);
    }
    else
    if (strcmp (call->cmd, "client list") == 0) {
        if ((rc = s_expect_args (cli, 0, 0, "", "client list")))
            return rc;
        call->method = "GET";
        rc = s_append (url, size, "clients");
    }
    else
    if (strcmp (call->cmd, "client revoke") == 0) {
        if ((rc = s_expect_args (cli, 1, 1, "", "client revoke CLIENT_ID")))
            return rc;
        call->method = "DELETE";
        rc = s_append (url, size, "clients/");
        rc = rc? rc: s_append_escaped (url, size, a1);
    }
    else
    if (strcmp (call->cmd, "tokens revoke") == 0) {
        if ((rc = s_expect_args (cli, 1, 1, "user", "tokens revoke TENANT [--user USER_ID]")))
            return rc;
        if (cli->user && s_number_arg ("--user", cli->user))
            return S_USAGE;
        call->method = "DELETE";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/tokens");
        if (cli->user) {
            rc = rc? rc: s_append (url, size, "?user=");
            rc = rc? rc: s_append (url, size, cli->user);
        }
    }
    else
    if (strcmp (call->cmd, "keys rotate") == 0) {
        if ((rc = s_expect_args (cli, 0, 0, "", "keys rotate")))
            return rc;
        call->method = "POST";
        rc = s_append (url, size, "keys/rotate");
    }
    else
    if (strcmp (call->cmd, "connections list") == 0) {
        if ((rc = s_expect_args (cli, 1, 1, "", "connections list TENANT")))
            return rc;
        call->method = "GET";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/connections");
    }
    else
    if (strcmp (call->cmd, "connections add-key") == 0
    ||  strcmp (call->cmd, "connections delete") == 0) {
        bool add = strcmp (verb, "add-key") == 0;
        if ((rc = s_expect_args (cli, 2, 2, add? "key-file": "",
                                 add? "connections add-key TENANT CONNECTOR [--key-file FILE]"
                                    : "connections delete TENANT CONNECTOR")))
            return rc;
        if (add) {
            call->api_key = s_api_key (cli);
            if (!call->api_key)
                return S_USAGE;
            call->body = json_pack ("{s:s}", "api_key", call->api_key);
        }
        call->method = add? "PUT": "DELETE";
        rc = s_append (url, size, "tenants/");
        rc = rc? rc: s_append_escaped (url, size, a1);
        rc = rc? rc: s_append (url, size, "/connections/");
        rc = rc? rc: s_append_escaped (url, size, a2);
    }
    else
    if (strcmp (call->cmd, "connection-keys list") == 0
    ||  strcmp (call->cmd, "connection-keys rotate") == 0) {
        bool list = strcmp (verb, "list") == 0;
        if ((rc = s_expect_args (cli, 0, 0, "", list? "connection-keys list"
                                                    : "connection-keys rotate")))
            return rc;
        call->method = list? "GET": "POST";
        rc = s_append (url, size, list? "connection-keys": "connection-keys/rotate");
    }
    else
        return s_usage_error ("unknown command \"%s\"", call->cmd);
    if (rc)
        return s_usage_error ("%s", "the request URL is too long");
    return 0;
}

//  The answer of a request the server answered with `status`: its JSON
//  object (new), or NULL with *rc S_REFUSED or S_UNAVAILABLE after saying
//  why on stderr.
static json_t *
s_answer_doc (long status, const s_answer_t *answer, int *rc)
{
    json_t *doc = answer->body? sb_json_parse (answer->body, answer->len, 0, NULL): NULL;
    *rc = S_OK;
    if (status < 200 || status > 299) {
        const char *message = json_string_value (json_object_get (doc, "message"));
        if (!message)
            message = json_string_value (json_object_get (doc, "error_description"));
        bool later = status == 503 || status == 504;     //  the token service, not the request
        fprintf (stderr, "sb-admin: %s (HTTP %ld%s%s): %s\n", later? "unavailable, try again": "refused",
                 status,
                 json_is_string (json_object_get (doc, "error"))? ", ": "",
                 json_is_string (json_object_get (doc, "error"))? json_string_value (json_object_get (doc, "error")): "",
                 message? message: status == 401? "the operator key was not accepted"
                                                : "the server gave no reason");
        *rc = later? S_UNAVAILABLE: S_REFUSED;
    }
    else
    if (!json_is_object (doc)) {
        fprintf (stderr, "sb-admin: the server's answer (HTTP %ld) is not a JSON object\n", status);
        *rc = S_REFUSED;
    }
    if (*rc) {
        json_decref (doc);
        doc = NULL;
    }
    return doc;
}

//  After a rotation: POST connection-keys/reseal until no connection is
//  left under an older key, printing each call's progress. Stops (1) when
//  a call moves nothing while rows remain: they do not open under any key
//  the token service holds.
static int
s_reseal_all (const s_cli_t *cli, const char *key)
{
    char url [SB_ADMIN_MAX_URL] = "";
    if (s_append (url, sizeof url, cli->url)
    ||  s_append (url, sizeof url, "/admin/connection-keys/reseal"))
        return s_usage_error ("%s", "--url is too long");
    if (curl_global_init (CURL_GLOBAL_DEFAULT)) {
        fprintf (stderr, "sb-admin: libcurl cannot start\n");
        return S_USAGE;
    }
    int rc = S_OK;
    long long total = 0;
    while (true) {
        s_answer_t answer = { 0 };
        long status = 0;
        rc = s_request (cli, key, "POST", url, NULL, &status, &answer);
        json_t *doc = rc? NULL: s_answer_doc (status, &answer, &rc);
        free (answer.body);
        if (rc)
            break;
        json_int_t resealed = json_integer_value (json_object_get (doc, "resealed"));
        json_int_t changed = json_integer_value (json_object_get (doc, "changed"));
        json_int_t failed = json_integer_value (json_object_get (doc, "failed"));
        json_int_t remaining = json_integer_value (json_object_get (doc, "remaining"));
        total += resealed;
        if (cli->json) {
            char *text = json_dumps (doc, JSON_COMPACT);
            printf ("%s\n", text? text: "");
            free (text);
        }
        else {
            printf ("re-sealed %lld (%lld in all), %lld remaining", (long long) resealed, total,
                    (long long) remaining);
            size_t i;
            json_t *id;
            json_array_foreach (json_object_get (doc, "retired"), i, id)
                printf ("%s%s", i? ", ": "; retired ", json_string_value (id));
            printf ("\n");
        }
        fflush (stdout);
        json_decref (doc);
        if (remaining == 0)
            break;
        if (resealed == 0 && changed == 0) {
            fprintf (stderr, "sb-admin: %lld rows stay under older data keys: %lld do not open "
                     "(the token service's log names them; delete them with sb-admin connections "
                     "delete or webhooks endpoint delete / unsubscribe, or restore the key they "
                     "were sealed under)\n", (long long) remaining, (long long) failed);
            rc = S_REFUSED;
            break;
        }
    }
    curl_global_cleanup ();
    return rc;
}

int
main (int argc, char **argv)
{
    s_cli_t cli = { 0 };
    int rc = s_parse (argc, argv, &cli);
    if (rc)
        return rc == -1? S_OK: rc;
    if (!cli.url)
        cli.url = getenv ("SB_ADMIN_URL");
    if (!cli.url || !*cli.url)
        cli.url = SB_ADMIN_DEFAULT_URL;
    if (!cli.key_file)
        cli.key_file = getenv ("SB_ADMIN_KEY_FILE");
    size_t url_len = strlen (cli.url);
    if (url_len && cli.url [url_len - 1] == '/')
        return s_usage_error ("--url %s must not end with '/'", cli.url);
    if (strncmp (cli.url, "http://", 7) != 0 && strncmp (cli.url, "https://", 8) != 0)
        return s_usage_error ("--url %s must be an http:// or https:// URL", cli.url);

    s_call_t call = { 0 };
    char *key = NULL;
    char *body = NULL;
    s_answer_t answer = { 0 };
    json_t *doc = NULL;
    rc = s_command (&cli, &call);
    if (rc)
        goto out;
    if (!cli.key_file || !*cli.key_file) {
        rc = s_usage_error ("%s", "--admin-key-file (or $SB_ADMIN_KEY_FILE) is required");
        goto out;
    }
    char *why = NULL;
    key = sb_secret_read_file (cli.key_file, &why);
    if (!key) {
        fprintf (stderr, "sb-admin: --admin-key-file: %s\n", why? why: "out of memory");
        free (why);
        rc = S_USAGE;
        goto out;
    }
    if (call.body && !(body = sb_json_dump (call.body, NULL))) {
        fprintf (stderr, "sb-admin: an argument is not valid UTF-8\n");
        rc = S_USAGE;
        goto out;
    }
    if (curl_global_init (CURL_GLOBAL_DEFAULT)) {
        fprintf (stderr, "sb-admin: libcurl cannot start\n");
        rc = S_USAGE;
        goto out;
    }
    long status = 0;
    rc = s_request (&cli, key, call.method, call.url, body, &status, &answer);
    curl_global_cleanup ();
    if (rc)
        goto out;
    doc = s_answer_doc (status, &answer, &rc);
    if (rc)
        goto out;
    if (cli.json) {
        char *text = json_dumps (doc, JSON_INDENT (2));
        printf ("%s\n", text? text: "");
        free (text);
    }
    else
        s_print (call.cmd, doc);
    if (call.generated)
        printf ("password: %s\n(generated; shown once, not stored anywhere but as a hash)\n", call.password);
    rc = S_OK;
    if (strcmp (call.cmd, "connection-keys rotate") == 0)
        rc = s_reseal_all (&cli, key);
out:
    if (body) {
        sb_crypto_wipe (body, strlen (body));
        free (body);
    }
    json_decref (call.body);
    sb_secret_free (&call.password);
    sb_secret_free (&call.api_key);
    sb_secret_free (&call.secret);
    sb_secret_free (&key);
    json_decref (doc);
    free (answer.body);
    return rc;
}
