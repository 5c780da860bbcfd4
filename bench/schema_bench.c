/*  bench/schema_bench.c — sb-schema-bench: how long the JSON Schema checker
    (schema/sb_schema*.c) takes on the hot path, without a farm.

    Loads the connectors folder, maps a fixed sandbox-like search_accounts
    body (10 accounts, 11 fields each, as the sandbox CRM answers) through
    the tool's result mapping, as the api worker does, then times N checks
    of the mapped structuredContent against the tool's outputSchema
    (sb_tool_check_output, once per call in the api worker) and N checks of
    tools/call arguments against its inputSchema (sb_tool_check_args, once
    per call in the gateway). Each row also has a failing twin (the last
    account's "employees" a string; an unknown argument), so the error path
    is measured and its sentence is shown, too.

    Each row runs R rounds of N checks and prints the CPU time per check
    (this thread's CPU clock, steadier than wall time on a shared machine)
    as the best and the median round. Not a test: it asserts only that the
    checks answer as expected, so a broken build cannot print a fast figure.

    Usage: sb-schema-bench [-n checks] [-r rounds] [connectors-dir] */
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_connector.h"

#define S_ACCOUNTS      10          /* accounts in the mapped page */
#define S_MAX_ROUNDS    101         /* rounds one row may run */
#define S_BODY_MAX      8192        /* bytes of the upstream body */

//  What one row times: a check of `value`, expected to pass or not.
typedef struct {
    const char *name;               /* the row's label */
    const sb_tool_t *tool;          /* the tool checked against */
    bool output;                    /* outputSchema (else inputSchema) */
    const json_t *value;            /* structuredContent or arguments */
    bool passes;                    /* the check must pass */
} s_row_t;

static double
s_cpu_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &now);
    return (double) now.tv_sec * 1e6 + (double) now.tv_nsec / 1e3;
}

static int
s_check (const s_row_t *row, char **error)
{
    return row->output ? sb_tool_check_output (row->tool, row->value, error)
                       : sb_tool_check_args (row->tool, row->value, error);
}

static int
s_by_value (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

//  Runs and prints one row.
static void
s_run (const s_row_t *row, long checks, int rounds)
{
    char *error = NULL;
    int rc = s_check (row, &error);
    if ((rc == 0) != row->passes) {
        fprintf (stderr, "sb-schema-bench: %s: the check %s (%s)\n", row->name,
                 rc ? "failed" : "passed", error ? error : "no message");
        exit (1);
    }
    double per_check [S_MAX_ROUNDS];
    for (int round = 0; round < rounds; round++) {
        double start = s_cpu_us ();
        for (long i = 0; i < checks; i++) {
            char *why = NULL;
            if (s_check (row, &why) != rc)
                abort ();
            free (why);
        }
        per_check [round] = (s_cpu_us () - start) / (double) checks;
    }
    qsort (per_check, (size_t) rounds, sizeof per_check [0], s_by_value);
    printf ("%-28s %8.2f %8.2f   %s\n", row->name, per_check [0], per_check [rounds / 2],
            error ? error : "ok");
    free (error);
}

//  The upstream body the sandbox CRM answers GET /v1/accounts?q=…&limit=10
//  with: ten accounts, each with the sandbox's eleven fields.
static json_t *
s_body (void)
{
    static const char *const names [] = {
        "Acme Corporation", "Acme Industries", "Acme Logistics", "Acme Holdings",
        "Acme Labs", "Acme Foods", "Acme Energy", "Acme Systems", "Acme Partners",
        "Acme Robotics"
    };
    static const char *const cities [][2] = {
        { "Berlin", "DE" }, { "Austin", "US" }, { "Lyon", "FR" }, { "Osaka", "JP" },
        { "Toronto", "CA" }
    };
    static const char *const industries [] = {
        "Manufacturing", "Retail", "Software", "Healthcare", "Logistics"
    };
    json_t *items = json_array ();
    for (size_t i = 0; i < S_ACCOUNTS; i++) {
        char id [32], website [96], phone [32];
        snprintf (id, sizeof id, "acc_%04zu", i * 7 + 3);
        snprintf (website, sizeof website, "https://www.acme-%zu.example", i);
        snprintf (phone, sizeof phone, "+1-555-%04zu", 1000 + i * 37);
        json_int_t employees = (json_int_t) (120 + i * 913);
        json_array_append_new (items, json_pack (
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}",
            "id", id, "name", names [i], "industry", industries [i % 5],
            "website", website, "phone", phone, "city", cities [i % 5][0],
            "country", cities [i % 5][1], "employees", employees,
            "annual_revenue", employees * (json_int_t) 87000, "owner", "Dana Whitfield",
            "created_at", "2025-03-14"));
    }
    return json_pack ("{s:o, s:s, s:i}", "items", items, "next_cursor", "c2FuZGJveDoxMA",
                      "total", 42);
}

int
main (int argc, char *argv [])
{
    long checks = 20000;
    int rounds = 7;
    const char *dir = SB_SOURCE_DIR "/connectors";
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-n") == 0 && i + 1 < argc)
            checks = strtol (argv [++i], NULL, 10);
        else
        if (strcmp (argv [i], "-r") == 0 && i + 1 < argc)
            rounds = (int) strtol (argv [++i], NULL, 10);
        else
        if (argv [i][0] != '-')
            dir = argv [i];
        else {
            fprintf (stderr, "usage: sb-schema-bench [-n checks] [-r rounds] [connectors-dir]\n");
            return 2;
        }
    }
    if (checks < 1 || rounds < 1 || rounds > S_MAX_ROUNDS) {
        fprintf (stderr, "sb-schema-bench: -n must be at least 1, -r 1 to %d\n", S_MAX_ROUNDS);
        return 2;
    }
    char *error = NULL;
    sb_connectors_t *connectors = sb_connectors_load (dir, &error);
    if (!connectors) {
        fprintf (stderr, "sb-schema-bench: %s\n", error ? error : "cannot load connectors");
        free (error);
        return 1;
    }
    const sb_tool_t *tool = sb_connectors_find_tool (connectors, "search_accounts");
    if (!tool) {
        fprintf (stderr, "sb-schema-bench: no search_accounts tool in %s\n", dir);
        return 1;
    }
    //  Map the body as the api worker does; check what the mapping made.
    json_t *body = s_body ();
    char *text = json_dumps (body, JSON_COMPACT);
    assert (text && strlen (text) < S_BODY_MAX);
    json_t *result = sb_tool_map_result (tool, 200, text, strlen (text));
    json_t *structured = json_object_get (result, "structuredContent");
    if (!json_is_object (structured)
    ||  json_array_size (json_object_get (structured, "items")) != S_ACCOUNTS) {
        fprintf (stderr, "sb-schema-bench: the mapping made no %d-item page\n", S_ACCOUNTS);
        return 1;
    }
    json_t *broken = json_deep_copy (structured);
    json_t *last = json_array_get (json_object_get (broken, "items"), S_ACCOUNTS - 1);
    json_object_set_new (last, "employees", json_string ("many"));
    json_t *args = json_pack ("{s:s, s:i}", "query", "acme", "limit", 10);
    json_t *bad_args = json_pack ("{s:s, s:i, s:s}", "query", "acme", "limit", 10,
                                  "sort", "name");

    const s_row_t rows [] = {
        { "output, 10 accounts", tool, true, structured, true },
        { "output, last one broken", tool, true, broken, false },
        { "arguments", tool, false, args, true },
        { "arguments, one unknown", tool, false, bad_args, false },
    };
    printf ("search_accounts: %ld checks x %d rounds, CPU us per check\n", checks, rounds);
    printf ("%-28s %8s %8s   %s\n", "check", "best", "median", "answer");
    for (size_t i = 0; i < sizeof rows / sizeof rows [0]; i++)
        s_run (&rows [i], checks, rounds);

    json_decref (bad_args);
    json_decref (args);
    json_decref (broken);
    json_decref (result);
    free (text);
    json_decref (body);
    sb_connectors_destroy (&connectors);
    return 0;
}
